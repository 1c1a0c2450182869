//! The MPTCP options of received segments (RFC 8684 section 3), read only for segments the
//! subflow's TCP layer accepted ([`crate::tcp::Tcb::handle_segment_with`]): a segment outside
//! the window, with an unacceptable ACK or a RST that does not reset the subflow never reaches
//! this code, so a blind one cannot move a DATA_ACK, announce a DATA_FIN or force a fallback.

use mpterm_wire::checksum;
use mpterm_wire::mptcp::{AddAddr, DataSeqWire, Dss, MpCapable, MpJoin, MpTcpRst, MptcpOption};
use mpterm_wire::tcp::{TcpFlags, TcpRepr};

use super::address::{add_addr_hmac, RemovedIds};
use super::join::third_ack_hmac;
use super::subflow::{JoinState, SubflowMptcp};
use super::{expand_data_seq, MptcpError, MptcpSession};
use crate::tcp::{Accepted, ReceivedMapping};
use crate::Payload;

/// What an accepted segment's MPTCP options told the session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OptionOutcome {
    /// The peer's DATA_ACK moved forward.
    pub data_acked: bool,
    /// The connection fell back to plain TCP with this segment (RFC 8684 section 3.7).
    pub fell_back: bool,
    /// The peer's DATA_FIN became deliverable: data-level end of stream.
    pub data_fin_reached: bool,
    /// The peer closed the connection with an MP_FASTCLOSE carrying our key (section 3.5).
    pub fast_close_received: bool,
    /// An MP_FASTCLOSE whose key is not ours: ignored, as Linux ignores it.
    pub fast_close_ignored: bool,
    /// The MP_TCPRST that came with the peer's RST (section 3.6).
    pub peer_reset: Option<MpTcpRst>,
    /// The options break a rule the connection cannot recover from (a DATA_FIN mapping with a
    /// bad or missing checksum).
    pub error: Option<MptcpError>,
    /// A DATA_ACK for data we never sent (section 3.3.2): ignored.
    pub data_ack_beyond_sent: bool,
    /// The third ACK of a join carried the right HMAC: the subflow may carry data.
    pub join_verified: bool,
    /// The third ACK of a join carried a wrong HMAC (section 3.2): the subflow is reset.
    pub join_hmac_failed: bool,
    /// MP_PRIO (section 3.3.8): the backup flag, for this subflow or for the subflows of the
    /// given address ID.
    pub priority: Option<(bool, Option<u8>)>,
    /// Verified data bytes that were all received before (reinjections), in pieces.
    pub data_duplicates: u32,
    /// An ADD_ADDR (section 3.4.1): the client's, its HMAC verified, or its echo of ours.
    pub add_addr: Option<AddAddr>,
    /// A client ADD_ADDR whose HMAC did not verify: ignored.
    pub add_addr_bad_hmac: bool,
    /// The address IDs of a REMOVE_ADDR (section 3.4.2).
    pub removed_addresses: RemovedIds,
    /// Verified data dropped for lack of room ahead of a gap.
    pub data_overflows: u32,
    /// MP_FAIL on a segment that is no RST (section 3.7): the peer found a checksum failure
    /// at this data sequence number on its only subflow, or answers ours.
    pub mp_fail: Option<u64>,
    /// MP_FAIL on the peer's RST: it closed the subflow for a failed checksum.
    pub mp_fail_on_reset: bool,
    /// The peer's infinite mapping (section 3.7): the connection fell back with it.
    pub infinite_mapping: bool,
}

/// The session's answer to the TCP layer for one accepted segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OptionsVerdict {
    /// The mapping to keep with the payload, expanded to 64 bits.
    pub mapping: Option<ReceivedMapping>,
    /// Drop the segment unacknowledged (see [`crate::tcp::OwnerVerdict::withhold`]).
    pub withhold: bool,
    pub outcome: OptionOutcome,
}

impl<P: Payload> MptcpSession<P> {
    /// Reads the MPTCP options of a segment the subflow accepted, before the TCP layer takes
    /// its payload. `accepted` says how the TCP layer accepted it.
    pub fn handle_options(
        &mut self,
        subflow: &mut SubflowMptcp<P>,
        segment: &TcpRepr<'_>,
        payload_len: usize,
        accepted: Accepted,
    ) -> OptionsVerdict {
        let mut verdict = OptionsVerdict::default();
        if self.fallen_back {
            // Section 3.7: after a fallback the subflow is plain TCP; Linux reads no option
            // of it any more (`mptcp_incoming_options`).
            return verdict;
        }
        if self.fast_closing {
            // Section 3.5: the connection is being torn down. Only the peer's own
            // MP_FASTCLOSE (a simultaneous close) or its RST still matter; nothing else may
            // change the session, least of all a fallback that would strip MP_FASTCLOSE from
            // our remaining segments.
            self.handle_reset_options(segment, &mut verdict.outcome);
            return verdict;
        }
        match accepted {
            Accepted::Reset => self.handle_reset_options(segment, &mut verdict.outcome),
            _ if matches!(subflow.join, JoinState::Pending(_)) => {
                self.handle_join_ack(subflow, segment, &mut verdict)
            }
            Accepted::HandshakeAck if self.remote_key.is_none() => {
                self.handle_handshake_ack(subflow, segment, payload_len, &mut verdict)
            }
            Accepted::HandshakeAck | Accepted::Synchronized => {
                self.handle_synchronized_options(subflow, segment, payload_len, &mut verdict)
            }
        }
        verdict
    }

    /// Section 3.2: the third ACK of a join carries MP_JOIN with the initiator's full HMAC.
    /// Until one with the right HMAC arrives, nothing of the subflow is acknowledged: its
    /// segments are withheld (a Linux initiator repeats the MP_JOIN ACK on every segment until
    /// our ACK of it arrives, and sends no data before). A wrong HMAC resets the subflow.
    fn handle_join_ack(
        &mut self,
        subflow: &mut SubflowMptcp<P>,
        segment: &TcpRepr<'_>,
        verdict: &mut OptionsVerdict,
    ) {
        let JoinState::Pending(handshake) = subflow.join else {
            return;
        };
        let received = segment
            .options
            .mptcp
            .iter()
            .flatten()
            .find_map(|option| match option {
                MptcpOption::MpJoin(MpJoin::Ack { hmac }) => Some(*hmac),
                _ => None,
            });
        let (Some(received), Some(remote_key)) = (received, self.remote_key) else {
            verdict.withhold = true;
            return;
        };
        let expected = third_ack_hmac(
            self.local_key,
            remote_key,
            handshake.local_nonce,
            handshake.remote_nonce,
        );
        if received == expected {
            subflow.join = JoinState::Verified {
                local_address_id: handshake.local_address_id,
            };
            verdict.outcome.join_verified = true;
        } else {
            verdict.withhold = true;
            verdict.outcome.join_hmac_failed = true;
        }
    }

    /// Section 3.4.1: an echo (E set, no HMAC) acknowledges one of our announcements; an
    /// announcement of the client's must carry the HMAC keyed by its key then ours, or it is
    /// ignored, as Linux ignores it (`add_addr_hmac_valid`).
    fn handle_add_addr(&self, add: &AddAddr, outcome: &mut OptionOutcome) {
        if add.echo {
            outcome.add_addr = Some(*add);
            return;
        }
        let Some(remote_key) = self.remote_key else {
            return;
        };
        let expected = add_addr_hmac(
            remote_key,
            self.local_key,
            add.address_id,
            add.address,
            add.port,
        );
        if add.truncated_hmac == Some(expected) {
            outcome.add_addr = Some(*add);
        } else {
            outcome.add_addr_bad_hmac = true;
        }
    }

    /// Section 3.6 and 3.5: a RST may carry the peer's reason and an MP_FASTCLOSE.
    fn handle_reset_options(&mut self, segment: &TcpRepr<'_>, outcome: &mut OptionOutcome) {
        for option in segment.options.mptcp.iter().flatten() {
            match option {
                // Section 3.6 (and Linux's parser): MP_TCPRST means something on a RST only.
                MptcpOption::MpTcpRst(reset) if segment.flags.contains(TcpFlags::RST) => {
                    outcome.peer_reset = Some(*reset)
                }
                MptcpOption::MpFastclose { receiver_key } => {
                    self.note_fast_close(*receiver_key, outcome)
                }
                MptcpOption::MpFail { .. } if segment.flags.contains(TcpFlags::RST) => {
                    outcome.mp_fail_on_reset = true
                }
                _ => {}
            }
        }
    }

    /// Section 3.5: act on MP_FASTCLOSE only when it carries our key, as Linux does
    /// (`mptcp_incoming_options`: `msk->local_key == mp_opt.rcvr_key`).
    fn note_fast_close(&self, receiver_key: u64, outcome: &mut OptionOutcome) {
        if receiver_key == self.local_key {
            outcome.fast_close_received = true;
        } else {
            outcome.fast_close_ignored = true;
        }
    }

    /// The segment that completes the subflow's handshake while the client's key is unknown.
    ///
    /// Section 3.1: the third ACK carries both keys in MP_CAPABLE, and so does the first data
    /// segment, and its retransmissions, until the client has seen our DSS. When both the
    /// third ACK and the first data are lost, a later data segment with only a DSS arrives
    /// first. Linux's server falls back to TCP then (`subflow_syn_recv_sock`: "Even OoO DSS
    /// packets coming legitly after dropped or reordered MPC will cause fallback"), and its
    /// option-less ACK makes the Linux client fall back too (`check_fully_established`,
    /// MPCapableDataFallback). Deviation, recorded: we keep MPTCP instead. The segment is
    /// withheld: not acknowledged, the handshake left incomplete, so the client, which sends
    /// MP_CAPABLE on any (re)transmission of its first segment until it sees our DSS, sends
    /// the keys again when its retransmission timer fires. No ACK without an MPTCP option
    /// ever reaches it, so neither side falls back, and the key, which MP_FASTCLOSE and MP_JOIN
    /// need, is not lost. A segment that carries no MPTCP option at all is a middlebox's doing
    /// (section 3.7): then we fall back, as Linux does.
    fn handle_handshake_ack(
        &mut self,
        subflow: &mut SubflowMptcp<P>,
        segment: &TcpRepr<'_>,
        payload_len: usize,
        verdict: &mut OptionsVerdict,
    ) {
        let mut saw_mptcp = false;
        for option in segment.options.mptcp.iter().flatten() {
            saw_mptcp = true;
            if let MptcpOption::MpCapable(capable) = option {
                self.handle_mp_capable(capable, payload_len, &mut verdict.mapping);
            }
        }
        if self.remote_key.is_some() {
            if payload_len > 0 {
                subflow.data_seen = true;
            }
            return;
        }
        if saw_mptcp {
            verdict.withhold = true;
        } else {
            self.fallen_back = true;
            verdict.outcome.fell_back = true;
        }
    }

    fn handle_synchronized_options(
        &mut self,
        subflow: &mut SubflowMptcp<P>,
        segment: &TcpRepr<'_>,
        payload_len: usize,
        verdict: &mut OptionsVerdict,
    ) {
        let mut saw_mptcp = false;
        for option in segment.options.mptcp.iter().flatten() {
            match option {
                MptcpOption::MpCapable(capable) => {
                    saw_mptcp = true;
                    self.handle_mp_capable(capable, payload_len, &mut verdict.mapping);
                }
                MptcpOption::Dss(dss) => {
                    saw_mptcp = true;
                    self.handle_dss(subflow, dss, payload_len, verdict);
                }
                MptcpOption::MpPrio { backup, address_id } => {
                    saw_mptcp = true;
                    verdict.outcome.priority = Some((*backup, *address_id));
                }
                MptcpOption::MpFastclose { receiver_key } => {
                    saw_mptcp = true;
                    self.note_fast_close(*receiver_key, &mut verdict.outcome);
                }
                MptcpOption::AddAddr(add) => {
                    saw_mptcp = true;
                    self.handle_add_addr(add, &mut verdict.outcome);
                }
                MptcpOption::RemoveAddr { address_ids } => {
                    saw_mptcp = true;
                    verdict.outcome.removed_addresses = RemovedIds::from_list(address_ids);
                }
                MptcpOption::MpFail { data_seq } => {
                    saw_mptcp = true;
                    verdict.outcome.mp_fail = Some(*data_seq);
                }
                // Other subtypes are not used by a server yet; they are accepted and ignored.
                _ => saw_mptcp = true,
            }
        }
        // Section 3.7: data without any MPTCP option before the first DSS means a middlebox
        // stripped the options: fall back to regular TCP.
        let syn = segment.flags.contains(TcpFlags::SYN);
        if payload_len > 0 && !saw_mptcp && !subflow.data_seen && !syn {
            self.fallen_back = true;
            verdict.outcome.fell_back = true;
            verdict.mapping = None;
            return;
        }
        if payload_len > 0 && saw_mptcp {
            subflow.data_seen = true;
        }
    }

    fn handle_mp_capable(
        &mut self,
        capable: &MpCapable,
        payload_len: usize,
        mapping: &mut Option<ReceivedMapping>,
    ) {
        // Section 3.1: the third ACK echoes both keys; the sender key is the client's and the
        // receiver key must be ours.
        let (Some(client_key), Some(our_key)) = (capable.sender_key, capable.receiver_key) else {
            return;
        };
        if our_key != self.local_key || self.remote_key.is_some_and(|known| known != client_key) {
            return;
        }
        self.learn_remote_key(client_key);
        // The first data may ride on MP_CAPABLE with a data-level length: it maps the data to
        // the peer's IDSN + 1 at relative subflow sequence 1 (section 3.1, as Linux does).
        if let (Some(length), Some(remote)) = (capable.data_level_length, self.remote) {
            if payload_len > 0 {
                *mapping = Some(ReceivedMapping {
                    data_seq: remote.initial_data_seq.wrapping_add(1),
                    subflow_seq: 1,
                    data_level_length: length,
                    checksum: capable.checksum,
                    data_fin: false,
                });
            }
        }
    }

    fn handle_dss(
        &mut self,
        subflow: &SubflowMptcp<P>,
        dss: &Dss,
        payload_len: usize,
        verdict: &mut OptionsVerdict,
    ) {
        if let Some(ack) = dss.data_ack {
            self.handle_data_ack(ack, &mut verdict.outcome);
        }
        let Some(dss_mapping) = dss.mapping else {
            return;
        };
        let Some(remote) = self.remote else {
            // Only reached for a segment of a connection whose key is unknown, which the
            // handshake rule above never lets be established; nothing can be placed.
            return;
        };
        let data_seq = match dss_mapping.data_seq {
            DataSeqWire::Bits64(data_seq) => data_seq,
            wire => expand_data_seq(wire, self.data_ack().max(remote.initial_data_seq)),
        };
        if dss_mapping.data_level_length == 0 {
            // Section 3.7: an infinite mapping, the peer fell back. Bytes of a mapping whose
            // checksum is still incomplete could then never be verified nor released: rather
            // than lose them silently, the connection is reset.
            if subflow.assembly.held_bytes() > 0 {
                verdict.outcome.error = Some(MptcpError::MappingMismatch);
                return;
            }
            self.fallen_back = true;
            verdict.outcome.fell_back = true;
            verdict.outcome.infinite_mapping = true;
            return;
        }
        if dss.data_fin {
            let data_fin_only = dss_mapping.subflow_seq == 0 && dss_mapping.data_level_length == 1;
            if data_fin_only {
                // Section 3.3.3: a DATA_FIN with no data maps subflow sequence 0, length 1,
                // and section 3.3.1 checksums it like any other mapping.
                if let Err(error) = self.verify_data_fin_checksum(data_seq, dss_mapping.checksum) {
                    verdict.outcome.error = Some(error);
                    return;
                }
                let reached = self.announce_peer_data_fin(data_seq);
                verdict.outcome.data_fin_reached |= reached;
                return;
            }
            if payload_len == 0 {
                // A mapping with data carried by a segment without any: nothing to verify it
                // against, so its DATA_FIN is taken with the data when that arrives.
                return;
            }
            // Section 3.3.3: the DATA_FIN is the mapping's last data-level octet; it counts
            // once the mapping's data verified (see `handle_subflow_data`).
        }
        verdict.mapping = Some(ReceivedMapping {
            data_seq,
            subflow_seq: dss_mapping.subflow_seq,
            data_level_length: dss_mapping.data_level_length,
            checksum: dss_mapping.checksum,
            data_fin: dss.data_fin,
        });
    }

    /// Section 3.3.2: a DATA_ACK is cumulative (32-bit ones are the low bits) and frees the
    /// data-level send buffer. One beyond what any subflow was given, or our DATA_FIN, acks
    /// data never sent: ignored, as Linux ignores it (`check_data_ack`'s "ack beyond
    /// snd_nxt"), and counted.
    fn handle_data_ack(&mut self, wire: DataSeqWire, outcome: &mut OptionOutcome) {
        let unacknowledged = self.send.unacknowledged();
        let ack = expand_data_seq(wire, unacknowledged);
        let sent_end = match self.local_data_fin {
            Some(fin) if self.send.all_scheduled() => fin.wrapping_add(1),
            _ => self.send.scheduled_end(),
        };
        if super::data_seq_after(ack, sent_end) {
            outcome.data_ack_beyond_sent = true;
            return;
        }
        if super::data_seq_after(ack, unacknowledged) {
            self.send.acknowledge(ack);
            self.data_fin_acknowledged_to(ack);
            outcome.data_acked = true;
        }
    }

    /// Section 3.3.1: with checksums in use, a DATA_FIN-only mapping's checksum covers the
    /// pseudo-header alone; a missing one is as bad as a wrong one (section 3.3.0).
    fn verify_data_fin_checksum(
        &self,
        data_seq: u64,
        received: Option<u16>,
    ) -> Result<(), MptcpError> {
        if !self.checksums {
            return Ok(());
        }
        let received = received.ok_or(MptcpError::MappingMismatch)?;
        if checksum::dss_pseudo_header(data_seq, 0, 1, received).finish() != 0 {
            return Err(MptcpError::ChecksumFailed);
        }
        Ok(())
    }
}
