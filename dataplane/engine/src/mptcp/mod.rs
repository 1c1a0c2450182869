//! MPTCP version 1, server side (RFC 8684): the data-level state of one connection.
//!
//! The TCP layer ([`crate::tcp::Tcb`]) runs each subflow; this module reads the MPTCP options
//! of the segments the subflow accepted (`options.rs`), assembles received DSS mappings and
//! verifies their checksums (`mapping.rs`), delivers data in data-sequence order, and
//! decorates outgoing subflow segments with MP_CAPABLE, MP_JOIN, DSS, MP_FASTCLOSE or
//! MP_TCPRST options (`decorate.rs`).
//!
//! The session is the connection level of section 2: the keys, the data-level send buffer
//! (`send_buffer.rs`, freed by DATA_ACK only), the reassembly across subflows
//! (`reassembly.rs`) and the DATA_FINs. What belongs to one subflow (its mapping being
//! received, the data sequence numbers of what it carries, its join handshake) is in
//! [`SubflowMptcp`] (`subflow.rs`), which the connection keeps beside the subflow's TCB and
//! hands in with every call; `join.rs` holds the MP_JOIN HMACs; `address.rs` the address
//! management of section 3.4 (ADD_ADDR, REMOVE_ADDR) and the signals waiting for a pure ACK.

pub mod address;
mod decorate;
pub mod join;
mod mapping;
mod options;
pub mod reassembly;
pub mod send_buffer;
pub mod subflow;

use core::time::Duration;
use std::collections::VecDeque;

use mpterm_wire::mptcp::{DataSeqWire, MpTcpRst};

pub use mapping::{MappingAssembly, MappingError};
pub use options::{OptionOutcome, OptionsVerdict};
pub use reassembly::{DataReassembly, Placement};
pub use send_buffer::{DataRange, DataSendBuffer};
pub use subflow::{JoinState, SentMappings, SubflowMptcp};

use crate::mptcp_keys::{derive_from_key, KeyDerivation};
use crate::tcp::{ReceiveBufferSizing, ReceivedChunk};
use crate::{Instant, Payload};

/// Option bytes the subflow reserves for a DSS with a 64-bit DATA_ACK, a 64-bit mapping and a
/// checksum (RFC 8684 section 3.3, figure 5): 4 + 8 + 8 + 4 + 2 + 2.
pub const DSS_OPTION_RESERVE: usize = 28;

/// The most subflows one connection may hold, whatever the configuration says.
pub const MAX_SUBFLOWS: usize = 8;

/// Why an MPTCP connection must be reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MptcpError {
    /// A DSS checksum did not verify (RFC 8684 section 3.3.1).
    ChecksumFailed,
    /// A mapping contradicted an earlier one or the data it should cover (section 3.3.1).
    MappingMismatch,
}

impl From<MappingError> for MptcpError {
    fn from(error: MappingError) -> Self {
        match error {
            MappingError::Checksum => MptcpError::ChecksumFailed,
            MappingError::Mismatch => MptcpError::MappingMismatch,
        }
    }
}

/// Why we reset a subflow, as MP_TCPRST tells the peer (RFC 8684 section 3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetReason {
    Unspecified,
    /// An error in the processing of MPTCP options, e.g. an MP_JOIN for an unknown token.
    MptcpError,
    /// No resources to serve the connection (connection slots, ports).
    LackOfResources,
    /// Refused by policy, e.g. an MP_JOIN while joins are not accepted.
    AdministrativelyProhibited,
    /// Data that does not verify: a middlebox changed it (a failed DSS checksum).
    MiddleboxInterference,
}

impl ResetReason {
    /// The reason code of section 3.6.
    pub fn code(self) -> u8 {
        match self {
            ResetReason::Unspecified => 0x00,
            ResetReason::MptcpError => 0x01,
            ResetReason::LackOfResources => 0x02,
            ResetReason::AdministrativelyProhibited => 0x03,
            ResetReason::MiddleboxInterference => 0x06,
        }
    }

    /// Section 3.6 flag T: the error is temporary, the peer may try again.
    pub fn is_transient(self) -> bool {
        matches!(self, ResetReason::LackOfResources)
    }

    /// The option carrying this reason.
    pub fn option(self) -> MpTcpRst {
        MpTcpRst {
            flags: if self.is_transient() {
                MpTcpRst::FLAG_TRANSIENT
            } else {
                0
            },
            reason: self.code(),
        }
    }
}

/// Data-level state of one MPTCP connection.
#[derive(Debug)]
pub struct MptcpSession<P: Payload> {
    local_key: u64,
    local: KeyDerivation,
    /// Known once the third ACK (or the first data) arrived (section 3.1).
    remote_key: Option<u64>,
    remote: Option<KeyDerivation>,
    /// Both ends use DSS checksums: either asked with the A bit (section 3.1).
    checksums: bool,
    /// The connection fell back to plain TCP (section 3.7).
    fallen_back: bool,

    // Receive direction (client to us).
    /// Data across subflows, put in data-sequence order; its next expected byte is our
    /// DATA_ACK.
    reassembly: DataReassembly<P>,
    /// Data verified and in data-sequence order, waiting for the relay.
    ready: VecDeque<P>,
    ready_bytes: usize,
    /// Data sequence number of the peer's DATA_FIN, once announced.
    peer_data_fin: Option<u64>,
    peer_data_fin_reached: bool,

    // Send direction (us to client).
    /// Data toward the peer until DATA_ACKed (section 3.3.2).
    send: DataSendBuffer<P>,
    /// Data sequence number of our DATA_FIN once we close.
    local_data_fin: Option<u64>,
    /// A DATA_ACK covered our DATA_FIN.
    local_data_fin_acked: bool,

    /// The connection is being fast-closed (section 3.5): our RST carries MP_FASTCLOSE.
    fast_closing: bool,
    /// What our next RST on the subflow says in MP_TCPRST (section 3.6).
    reset_reason: ResetReason,
    /// Our SYN-ACK sets the C bit: no join to the initial address (section 3.1).
    deny_join_to_initial: bool,
    /// Where the connection stands with MP_FAIL on its only subflow (section 3.7).
    failure: FailureState,
    /// The connection-level receive buffer and its autotuning: the one window all subflows
    /// advertise (section 3.3.4) grows with what the relay passes on to the backend.
    receive_buffer: ReceiveBufferSizing,
}

/// MP_FAIL on a connection of one subflow (RFC 8684 section 3.7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FailureState {
    #[default]
    None,
    /// A checksum failed on the only subflow: we sent MP_FAIL and wait for the peer's
    /// infinite mapping (its data goes on, verified, until it comes).
    MpFailSent,
    /// The peer's MP_FAIL arrived: our next new data segment carries the infinite mapping,
    /// then the connection is plain TCP.
    InfiniteMappingOwed,
}

impl<P: Payload> MptcpSession<P> {
    /// A server-side session for a client SYN that asked for MPTCP v1 (section 3.1): our key is
    /// `local_key` (its token already registered), `client_wants_checksums` is the SYN's A bit.
    /// The data-level buffers hold `send_buffer` bytes toward the client and, from it, what
    /// `receive_buffer` allows: its current size is the connection-level receive window every
    /// subflow advertises (section 3.3.4), and its maximum bounds the data held ahead of a gap.
    pub fn new(
        local_key: u64,
        checksum_required: bool,
        client_wants_checksums: bool,
        send_buffer: usize,
        receive_buffer: ReceiveBufferSizing,
    ) -> Self {
        let local = derive_from_key(local_key);
        // Section 3.3: our first data byte is our IDSN + 1.
        let send_data_base = local.initial_data_seq.wrapping_add(1);
        MptcpSession {
            local_key,
            local,
            remote_key: None,
            remote: None,
            // RFC 8684 section 3.1: checksums are used if either host sets A.
            checksums: checksum_required || client_wants_checksums,
            fallen_back: false,
            reassembly: DataReassembly::new(receive_buffer.maximum()),
            receive_buffer,
            ready: VecDeque::new(),
            ready_bytes: 0,
            peer_data_fin: None,
            peer_data_fin_reached: false,
            send: DataSendBuffer::new(send_data_base, send_buffer),
            local_data_fin: None,
            local_data_fin_acked: false,
            fast_closing: false,
            reset_reason: ResetReason::Unspecified,
            deny_join_to_initial: false,
            failure: FailureState::None,
        }
    }

    /// Where the connection stands with MP_FAIL (section 3.7).
    pub fn failure(&self) -> FailureState {
        self.failure
    }

    /// We sent MP_FAIL for a checksum that failed on the only subflow (section 3.7).
    pub fn note_mp_fail_sent(&mut self) {
        self.failure = FailureState::MpFailSent;
    }

    /// The peer's MP_FAIL on the only subflow: we answer with an infinite mapping on our next
    /// new data segment (section 3.7).
    pub fn owe_infinite_mapping(&mut self) {
        self.failure = FailureState::InfiniteMappingOwed;
    }

    /// Section 3.1: our SYN-ACK's C bit tells the client not to join the address it
    /// connected to (an L4 load balancer's), only the ones we announce.
    pub fn deny_join_to_initial(&mut self) {
        self.deny_join_to_initial = true;
    }

    pub fn denies_join_to_initial(&self) -> bool {
        self.deny_join_to_initial
    }

    pub fn token(&self) -> u32 {
        self.local.token
    }

    /// Our key and the peer's, once known: what MP_JOIN's HMACs are keyed with.
    pub fn keys(&self) -> Option<(u64, u64)> {
        self.remote_key.map(|remote| (self.local_key, remote))
    }

    pub fn checksums_enabled(&self) -> bool {
        self.checksums
    }

    pub fn has_fallen_back(&self) -> bool {
        self.fallen_back
    }

    /// Section 3.5: the connection ends at once; the subflow's FASTCLOSE_WAIT segments and its
    /// final RST carry MP_FASTCLOSE with the peer's key. Only possible once the key is known.
    pub fn start_fast_close(&mut self) -> bool {
        if self.remote_key.is_none() || self.fallen_back {
            return false;
        }
        self.fast_closing = true;
        true
    }

    pub fn is_fast_closing(&self) -> bool {
        self.fast_closing
    }

    /// Sets what the MP_TCPRST of our next RST says.
    pub fn set_reset_reason(&mut self, reason: ResetReason) {
        self.reset_reason = reason;
    }

    /// The peer's key is known: the connection is fully established (section 3.1).
    pub fn is_fully_established(&self) -> bool {
        self.remote_key.is_some()
    }

    /// Bytes held at the data level that still count against the connection's receive
    /// window (section 3.3.4): ready for the relay, or ahead of a gap. The subflows' mappings
    /// being assembled are added by the connection.
    pub fn held_bytes(&self) -> usize {
        self.ready_bytes + self.reassembly.ahead_bytes()
    }

    /// The peer ended its data stream and everything before it was taken.
    pub fn peer_finished(&self) -> bool {
        self.peer_data_fin_reached && self.ready.is_empty()
    }

    /// Our DATA_FIN is acknowledged by a DATA_ACK.
    pub fn local_data_fin_acknowledged(&self) -> bool {
        self.local_data_fin_acked
    }

    fn data_fin_acknowledged_to(&mut self, data_ack: u64) {
        if self
            .local_data_fin
            .is_some_and(|fin| data_seq_after(data_ack, fin))
        {
            self.local_data_fin_acked = true;
        }
    }

    /// The data-level send buffer (toward the peer).
    pub fn send_buffer(&self) -> &DataSendBuffer<P> {
        &self.send
    }

    pub fn send_buffer_mut(&mut self) -> &mut DataSendBuffer<P> {
        &mut self.send
    }

    /// Our DATA_FIN is decided: the data stream toward the peer ends.
    pub fn is_closing(&self) -> bool {
        self.local_data_fin.is_some()
    }

    /// The connection-level receive buffer's current size: the window every subflow
    /// advertises, relative to our DATA_ACK, is this less what the data level holds.
    pub fn receive_buffer(&self) -> usize {
        self.receive_buffer.size()
    }

    /// The relay passed `bytes` of the peer's data on (to the backend): the data level's
    /// owner read them, which is what its receive-buffer autotuning measures.
    pub fn note_passed_on(&mut self, bytes: usize) {
        self.receive_buffer.note_read(bytes);
    }

    /// Once per receiver RTT (`rtt`, the largest of the subflows', as Linux's
    /// `mptcp_rcv_space_adjust`), the data-level receive buffer grows from what was passed on
    /// in it (see [`ReceiveBufferSizing`]); `segment` is one full segment. True when it grew.
    pub fn adjust_receive_buffer(
        &mut self,
        now: Instant,
        rtt: Option<Duration>,
        segment: usize,
    ) -> bool {
        self.receive_buffer.end_round(now, rtt, segment).is_some()
    }

    /// The next verified in-order data for the relay.
    pub fn pop_ready(&mut self) -> Option<P> {
        let payload = self.ready.pop_front()?;
        self.ready_bytes -= payload.len();
        Some(payload)
    }

    /// The length of the next verified in-order data for the relay, left in place.
    pub fn next_ready_len(&self) -> Option<usize> {
        self.ready.front().map(Payload::len)
    }

    /// Puts back what the relay could not pass on.
    pub fn push_front_ready(&mut self, payload: P) {
        self.ready_bytes += payload.len();
        self.ready.push_front(payload);
    }

    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    fn learn_remote_key(&mut self, key: u64) {
        if self.remote_key.is_none() {
            let remote = derive_from_key(key);
            self.remote_key = Some(key);
            // Section 3.3: the first data byte of the peer is its IDSN + 1.
            self.reassembly
                .set_next_expected(remote.initial_data_seq.wrapping_add(1));
            self.remote = Some(remote);
        }
    }

    /// Our DATA_ACK: the next data sequence number expected.
    fn data_ack(&self) -> u64 {
        self.reassembly.next_expected()
    }

    /// Takes in-order payload of `subflow` (from [`crate::tcp::Tcb::recv`]) into the data
    /// level.
    pub fn handle_subflow_data(
        &mut self,
        subflow: &mut SubflowMptcp<P>,
        chunk: ReceivedChunk<P>,
    ) -> Result<OptionOutcome, MptcpError> {
        let mut outcome = OptionOutcome::default();
        if self.fallen_back {
            let next = self.reassembly.next_expected();
            self.reassembly
                .set_next_expected(next.wrapping_add(chunk.payload.len() as u64));
            self.push_ready(chunk.payload);
            return Ok(outcome);
        }
        subflow.assembly.add(chunk, self.checksums)?;
        while let Some((data_seq, payload)) = subflow.assembly.pop_released() {
            self.deliver_in_data_order(data_seq, payload, &mut outcome);
        }
        let announced = subflow
            .assembly
            .take_verified_data_fin()
            .is_some_and(|fin| self.announce_peer_data_fin(fin));
        outcome.data_fin_reached = announced || self.try_reach_peer_data_fin();
        Ok(outcome)
    }

    /// Section 3.3.1: data arrives at the data level by data sequence number, from any
    /// subflow; bytes already received (a reinjection) are trimmed, bytes ahead of a gap wait.
    fn deliver_in_data_order(&mut self, data_seq: u64, payload: P, outcome: &mut OptionOutcome) {
        let ready = &mut self.ready;
        let ready_bytes = &mut self.ready_bytes;
        let placement = self.reassembly.insert(data_seq, payload, |payload| {
            if !payload.is_empty() {
                *ready_bytes += payload.len();
                ready.push_back(payload);
            }
        });
        match placement {
            Placement::Duplicate => outcome.data_duplicates += 1,
            Placement::Overflow => outcome.data_overflows += 1,
            Placement::InOrder | Placement::Ahead => {}
        }
    }

    fn push_ready(&mut self, payload: P) {
        if !payload.is_empty() {
            self.ready_bytes += payload.len();
            self.ready.push_back(payload);
        }
    }

    /// Section 3.3.3: the peer's DATA_FIN takes data sequence number `fin`. The first one
    /// announced counts, as in Linux (`mptcp_update_rcv_data_fin`); one before data already
    /// received cannot be the end of the stream and is ignored. Returns true when the
    /// DATA_FIN is reached with it.
    fn announce_peer_data_fin(&mut self, fin: u64) -> bool {
        match self.peer_data_fin {
            Some(_) => {}
            None if data_seq_after(self.data_ack(), fin) => return false,
            None => self.peer_data_fin = Some(fin),
        }
        self.try_reach_peer_data_fin()
    }

    fn try_reach_peer_data_fin(&mut self) -> bool {
        match self.peer_data_fin {
            Some(fin) if !self.peer_data_fin_reached && fin == self.data_ack() => {
                self.reassembly.set_next_expected(fin.wrapping_add(1));
                self.peer_data_fin_reached = true;
                true
            }
            _ => false,
        }
    }

    /// Marks our data stream finished after everything queued in the send buffer: the
    /// DATA_FIN takes the next data sequence number (section 3.3.3).
    pub fn close(&mut self) {
        if self.local_data_fin.is_none() {
            self.local_data_fin = Some(self.send.end());
        }
    }

    /// A subflow FIN with all data delivered is the end of the peer's stream too when it never
    /// sent a DATA_FIN and the connection has that one subflow (a lenient reading of section
    /// 3.3.3). `assembling` is what the subflow's mapping still holds.
    pub fn peer_closed_only_subflow(&mut self, assembling: usize) -> bool {
        if self.peer_data_fin.is_none() && assembling == 0 && self.reassembly.ahead_bytes() == 0 {
            self.peer_data_fin = Some(self.data_ack());
            return self.try_reach_peer_data_fin();
        }
        false
    }
}

/// True when `a` is after `b` in the 64-bit data sequence space, across wrap-around.
fn data_seq_after(a: u64, b: u64) -> bool {
    (a.wrapping_sub(b) as i64) > 0
}

/// Expands a data sequence number received in 32 bits to the 64-bit value nearest to
/// `reference` (RFC 8684 section 3.3: the low bits of the full number).
pub fn expand_data_seq(wire: DataSeqWire, reference: u64) -> u64 {
    match wire {
        DataSeqWire::Bits64(value) => value,
        DataSeqWire::Bits32(low) => {
            let candidate = (reference & !0xffff_ffff) | u64::from(low);
            let distance = candidate.wrapping_sub(reference) as i64;
            if distance > i64::from(i32::MAX) {
                candidate.wrapping_sub(1 << 32)
            } else if distance < i64::from(i32::MIN) {
                candidate.wrapping_add(1 << 32)
            } else {
                candidate
            }
        }
    }
}

#[cfg(test)]
mod tests;
