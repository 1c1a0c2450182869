//! MP_JOIN, the responder's side (RFC 8684 section 3.2): a SYN naming one of our tokens
//! becomes a subflow of that connection, or is refused with the reason.

use mpterm_wire::mptcp::{MpJoin, MptcpOption};
use mpterm_wire::tcp::TcpRepr;
use mpterm_wire::SeqNumber;
use rand_core::RngCore;

use super::{Arrival, Engine, TokenRegistry};
use crate::connection::{Side, Subflow};
use crate::mptcp::join::JoinHandshake;
use crate::mptcp::{MptcpSession, ResetReason, SubflowMptcp, DSS_OPTION_RESERVE};
use crate::tcp::Tcb;
use crate::Payload;

impl<P: Payload, R: RngCore, T: TokenRegistry> Engine<P, R, T> {
    /// RFC 8684 section 3.2: an MP_JOIN SYN asks to add a subflow to the connection its token
    /// names. A join for a token we never issued, for a connection that takes no subflow now,
    /// or beyond the subflow limit is answered with a RST carrying MP_TCPRST (section 3.6) and
    /// nothing of it is kept, as Linux answers (`subflow_check_req`): "MPTCP-specific error"
    /// for an unknown token, "administratively prohibited" for the rest. An accepted join is a
    /// subflow in SYN-RECEIVED whose SYN-ACK carries our HMAC; it carries data once the third
    /// ACK's HMAC verified.
    pub(super) fn handle_join(&mut self, syn: Arrival<'_, '_>, join: JoinSyn) {
        self.counters.mptcp_join_syns_received += 1;
        let Some(slot) = self.local_tokens.get(&join.token).copied() else {
            self.counters.mptcp_join_unknown_token += 1;
            self.refuse_join(syn, ResetReason::MptcpError);
            return;
        };
        let Some(entry) = self.slots.get(slot).and_then(Option::as_ref) else {
            self.counters.mptcp_join_unknown_token += 1;
            self.refuse_join(syn, ResetReason::MptcpError);
            return;
        };
        let connection = &entry.connection;
        if !connection.accepts_joins() {
            self.counters.mptcp_join_not_accepted += 1;
            self.refuse_join(syn, ResetReason::AdministrativelyProhibited);
            return;
        }
        if connection.subflow_count() >= self.config.mptcp_max_subflows {
            self.counters.mptcp_join_over_limit += 1;
            self.refuse_join(syn, ResetReason::AdministrativelyProhibited);
            return;
        }
        let initial_local = connection.subflow(0).map(|initial| initial.tcb.local());
        // Section 3.1: with the C bit set, the initial address takes no join.
        let denies_initial = connection
            .mptcp
            .as_ref()
            .is_some_and(MptcpSession::denies_join_to_initial);
        if denies_initial && initial_local == Some(syn.local) {
            self.counters.mptcp_join_not_accepted += 1;
            self.refuse_join(syn, ResetReason::AdministrativelyProhibited);
            return;
        }
        let local_address_id = self.address_id(syn.local.ip(), initial_local);
        let handshake = JoinHandshake {
            local_nonce: self.rng.next_u32(),
            remote_nonce: join.nonce,
            local_address_id,
        };
        let iss = SeqNumber(self.rng.next_u32());
        let local_mss = self.config.interfaces[syn.interface].mss_for(syn.local.ip());
        let mut tcb = Tcb::accept(
            syn.now,
            syn.local,
            syn.remote,
            syn.repr,
            iss,
            local_mss,
            self.config.client_tcp,
        );
        tcb.set_owner_option_reserve(DSS_OPTION_RESERVE);
        let subflow = Subflow::new(
            tcb,
            syn.interface,
            SubflowMptcp::joining(handshake, join.address_id, join.backup),
        );
        let Some(entry) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Some(index) = entry.connection.add_subflow(subflow) else {
            self.counters.mptcp_join_over_limit += 1;
            self.refuse_join(syn, ResetReason::AdministrativelyProhibited);
            return;
        };
        self.flows
            .insert((syn.local, syn.remote), (slot, Side::Subflow(index)));
        self.after_activity(syn.now, slot);
    }

    fn refuse_join(&mut self, syn: Arrival<'_, '_>, reason: ResetReason) {
        self.counters.mptcp_joins_refused += 1;
        self.send_reset(syn, Some(reason));
    }
}

/// What an MP_JOIN SYN (RFC 8684 section 3.2) asks for.
#[derive(Debug, Clone, Copy)]
pub(super) struct JoinSyn {
    token: u32,
    nonce: u32,
    address_id: u8,
    backup: bool,
}

pub(super) fn mp_join_syn(syn: &TcpRepr<'_>) -> Option<JoinSyn> {
    syn.options
        .mptcp
        .iter()
        .flatten()
        .find_map(|option| match option {
            MptcpOption::MpJoin(MpJoin::Syn {
                receiver_token,
                sender_nonce,
                address_id,
                backup,
            }) => Some(JoinSyn {
                token: *receiver_token,
                nonce: *sender_nonce,
                address_id: *address_id,
                backup: *backup,
            }),
            _ => None,
        })
}
