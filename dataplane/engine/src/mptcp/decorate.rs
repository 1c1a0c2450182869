//! Our MPTCP options on the segments the subflow sends (RFC 8684 section 3).

use mpterm_wire::checksum;
use mpterm_wire::mptcp::{DataSeqWire, Dss, DssMapping, MpCapable, MpJoin, MptcpOption};
use mpterm_wire::tcp::{TcpFlags, MAX_OPTIONS_LEN};

use super::address::{place_signal, Signal};
use super::join::syn_ack_hmac;
use super::subflow::{JoinState, SubflowMptcp};
use super::MptcpSession;
use crate::tcp::{OutgoingSegment, SegmentKind};
use crate::Payload;

impl<P: Payload> MptcpSession<P> {
    /// Adds our MPTCP options to a segment about to leave on `subflow`.
    pub fn decorate(&self, subflow: &SubflowMptcp<P>, segment: &mut OutgoingSegment<P>) {
        if self.fallen_back {
            // Section 3.7: a fallen-back subflow is plain TCP.
            return;
        }
        let flags = segment.repr.flags;
        if flags.contains(TcpFlags::RST) {
            self.decorate_reset(subflow, segment);
            return;
        }
        if flags.contains(TcpFlags::SYN) {
            if let JoinState::Pending(handshake) = subflow.join {
                self.decorate_join_syn_ack(handshake, segment);
                return;
            }
            // Section 3.1: the SYN/ACK carries our key; A if either side wants checksums.
            segment.repr.options.mptcp[0] = Some(MptcpOption::MpCapable(MpCapable {
                version: 1,
                checksum_required: self.checksums,
                extensibility: false,
                no_new_subflows_to_source: self.deny_join_to_initial,
                hmac_sha256: true,
                sender_key: Some(self.local_key),
                receiver_key: None,
                data_level_length: None,
                checksum: None,
            }));
            return;
        }
        // The subflow is established only once the client's key is known (see
        // `handle_handshake_ack`), so every segment after the SYN/ACK has an option here.
        let Some(remote_key) = self.remote_key else {
            return;
        };
        if segment.kind == SegmentKind::FastClose {
            // Section 3.5: the ACK of FASTCLOSE_WAIT carries the receiver's key alone.
            segment.repr.options.mptcp[0] = Some(MptcpOption::MpFastclose {
                receiver_key: remote_key,
            });
            return;
        }
        self.decorate_with_dss(subflow, segment);
    }

    /// Puts the oldest signal queued on `subflow` (ADD_ADDR, REMOVE_ADDR, MP_PRIO) on
    /// `segment`, a pure ACK from [`crate::tcp::Tcb::signal_ack`], beside the DATA_ACK when
    /// both fit (see [`place_signal`]). Returns the signal it carries.
    pub fn decorate_signal(
        &self,
        subflow: &mut SubflowMptcp<P>,
        segment: &mut OutgoingSegment<P>,
    ) -> Option<Signal> {
        if self.fallen_back || self.remote_key.is_none() {
            return None;
        }
        let signal = subflow.signals.pop()?;
        self.decorate(subflow, segment);
        place_signal(&mut segment.repr.options, signal);
        Some(signal)
    }

    /// Section 3.2: the SYN-ACK of a join carries our nonce, our address ID and the leftmost
    /// 64 bits of our HMAC. The backup flag is the peer's to set: we do not ask for one.
    fn decorate_join_syn_ack(
        &self,
        handshake: super::join::JoinHandshake,
        segment: &mut OutgoingSegment<P>,
    ) {
        let Some(remote_key) = self.remote_key else {
            return;
        };
        segment.repr.options.mptcp[0] = Some(MptcpOption::MpJoin(MpJoin::SynAck {
            backup: false,
            address_id: handshake.local_address_id,
            truncated_hmac: syn_ack_hmac(
                self.local_key,
                remote_key,
                handshake.local_nonce,
                handshake.remote_nonce,
            ),
            sender_nonce: handshake.local_nonce,
        }));
    }

    /// Section 3.6: our RSTs say why in MP_TCPRST; the one that ends a fast close also
    /// carries MP_FASTCLOSE (as Linux sends them, `mptcp_established_options`).
    fn decorate_reset(&self, subflow: &SubflowMptcp<P>, segment: &mut OutgoingSegment<P>) {
        let options = &mut segment.repr.options;
        let reason = subflow.reset_reason.unwrap_or(self.reset_reason);
        let reset = Some(MptcpOption::MpTcpRst(reason.option()));
        match (self.remote_key, subflow.failed_mapping) {
            (Some(receiver_key), _)
                if segment.kind == SegmentKind::FastClose || self.fast_closing =>
            {
                options.mptcp = [Some(MptcpOption::MpFastclose { receiver_key }), reset];
            }
            // Section 3.7: a subflow closed for a failed checksum says where, on its RST.
            (_, Some(data_seq)) => {
                options.mptcp = [Some(MptcpOption::MpFail { data_seq }), reset];
            }
            _ => options.mptcp[0] = reset,
        }
    }

    /// Section 3.7: the infinite mapping we owe the peer since its MP_FAIL goes on the first
    /// new data segment: a DSS mapping of data-level length 0 (checksum 0, as Linux sends it)
    /// that acts retroactively from the last byte the peer DATA_ACKed, which on the only
    /// subflow, with nothing sent twice, lies that many bytes before this segment in the
    /// subflow's sequence space. From then on the connection is plain TCP both ways. Returns
    /// whether this segment carries it.
    pub fn apply_owed_infinite_mapping(&mut self, segment: &mut OutgoingSegment<P>) -> bool {
        if self.failure != super::FailureState::InfiniteMappingOwed
            || self.fallen_back
            || segment.payload.is_none()
            || segment.is_retransmission
            || segment.repr.flags.contains(TcpFlags::RST)
        {
            return false;
        }
        let Some(MptcpOption::Dss(dss)) = segment.repr.options.mptcp[0].as_mut() else {
            return false;
        };
        let Some(mapping) = dss.mapping.as_mut() else {
            return false;
        };
        let DataSeqWire::Bits64(segment_data_seq) = mapping.data_seq else {
            return false;
        };
        let acknowledged = self.send.unacknowledged();
        let behind = segment_data_seq.wrapping_sub(acknowledged);
        if behind < 1 << 31 {
            mapping.data_seq = DataSeqWire::Bits64(acknowledged);
            mapping.subflow_seq = segment.relative_seq.wrapping_sub(behind as u32);
        }
        mapping.data_level_length = 0;
        mapping.checksum = self.checksums.then_some(0);
        dss.data_fin = false;
        self.fallen_back = true;
        self.failure = super::FailureState::None;
        true
    }

    fn decorate_with_dss(&self, subflow: &SubflowMptcp<P>, segment: &mut OutgoingSegment<P>) {
        let flags = segment.repr.flags;
        let data_ack = Some(DataSeqWire::Bits64(self.data_ack()));
        let mut dss = Dss {
            data_ack,
            mapping: None,
            data_fin: false,
        };
        let mapped = segment.payload.as_ref().and_then(|payload| {
            // Every byte queued on a subflow was recorded with its data sequence number.
            let data_seq = subflow.sent.data_seq_of(segment.relative_seq)?;
            match &segment.split_from {
                // Section 3.3.1: a mapping, once sent, never changes. A piece of a unit cut
                // for a smaller path MTU carries the whole unit's mapping (a mapping may span
                // segments); the unit's data sequence numbers run on with its subflow ones, as
                // it came from one recorded range, whose start may be acknowledged already.
                Some(whole) => {
                    let behind = segment.relative_seq.wrapping_sub(whole.relative_seq);
                    let data_seq = data_seq.wrapping_sub(u64::from(behind));
                    Some((&whole.payload, whole.relative_seq, data_seq))
                }
                None => Some((payload, segment.relative_seq, data_seq)),
            }
        });
        if let Some((payload, subflow_seq, data_seq)) = mapped {
            let length = payload.len() as u16;
            dss.mapping = Some(DssMapping {
                data_seq: DataSeqWire::Bits64(data_seq),
                subflow_seq,
                data_level_length: length,
                checksum: self.checksums.then(|| {
                    // Section 3.3.1: pseudo-header with the checksum field zero, then the data.
                    let mut sum = checksum::dss_pseudo_header(data_seq, subflow_seq, length, 0);
                    // The payload's sum from its arrival, when it is relayed whole.
                    match payload.payload_sum() {
                        Some(payload_sum) => sum.add_checksum(payload_sum),
                        None => sum.add_bytes(payload.as_ref()),
                    }
                    sum.finish()
                }),
            });
        } else if flags.contains(TcpFlags::FIN) {
            if let Some(fin) = self.local_data_fin {
                // Section 3.3.3: a DATA_FIN without data maps subflow sequence 0, length 1.
                dss.data_fin = true;
                dss.mapping = Some(DssMapping {
                    data_seq: DataSeqWire::Bits64(fin),
                    subflow_seq: 0,
                    data_level_length: 1,
                    checksum: self
                        .checksums
                        .then(|| checksum::dss_pseudo_header(fin, 0, 1, 0).finish()),
                });
            }
        }
        let options = &mut segment.repr.options;
        options.mptcp[0] = Some(MptcpOption::Dss(dss));
        // Keep the option space within 40 bytes: SACK blocks give way to the DSS.
        while options.encoded_len() > MAX_OPTIONS_LEN && !options.sack_blocks.is_empty() {
            options.sack_blocks.pop();
        }
    }
}
