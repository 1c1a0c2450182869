//! Our MPTCP options on the segments the client's subflow sends (RFC 8684 section 3), as
//! Linux's client writes them (net/mptcp/options.c, `mptcp_established_options`).

use mpterm_wire::checksum::{self, Checksum};
use mpterm_wire::mptcp::{DataSeqWire, Dss, DssMapping, MpCapable, MptcpOption};
use mpterm_wire::tcp::{TcpFlags, MAX_OPTIONS_LEN};

use super::session::ClientSession;
use crate::tcp::{OutgoingSegment, SegmentKind};
use crate::Payload;

impl<P: Payload> ClientSession<P> {
    /// Adds our MPTCP options to a segment about to leave. `payload_sum` is the plain sum of
    /// the segment's payload, computed once for both the DSS and the TCP checksum.
    pub(crate) fn decorate(&self, segment: &mut OutgoingSegment<P>, payload_sum: Checksum) {
        if self.fallen_back {
            // Section 3.7: a fallen-back subflow is plain TCP.
            return;
        }
        let flags = segment.repr.flags;
        if flags.contains(TcpFlags::SYN) {
            // Section 3.1: version 1 SYN, no key; A when we want checksums, H for HMAC-SHA256.
            segment.repr.options.mptcp[0] = Some(MptcpOption::MpCapable(self.capable(None)));
            return;
        }
        let Some(remote_key) = self.remote_key else {
            // Nothing but the SYN leaves before the SYN-ACK, except the bare RST answering a
            // bad ACK in SYN-SENT (RFC 9293 section 3.10.7.3).
            return;
        };
        if flags.contains(TcpFlags::RST) {
            // Section 3.6: our RSTs say why; one that ends the connection at once also carries
            // MP_FASTCLOSE (section 3.5), as Linux sends it.
            let reset = Some(MptcpOption::MpTcpRst(self.reset_reason.option()));
            segment.repr.options.mptcp = if self.fast_close {
                [
                    Some(MptcpOption::MpFastclose {
                        receiver_key: remote_key,
                    }),
                    reset,
                ]
            } else {
                [reset, None]
            };
            return;
        }
        if segment.kind == SegmentKind::FastClose {
            segment.repr.options.mptcp[0] = Some(MptcpOption::MpFastclose {
                receiver_key: remote_key,
            });
            return;
        }
        // Linux's `mptcp_established_options_mp`: MP_CAPABLE only on segments at our ISN + 1
        // (the third ACK, the first data and their retransmissions) and only until the server
        // showed it has our key. Deviation, recorded: Linux gives a FIN there the DSS with the
        // DATA_FIN instead; a server that never got the third ACK cannot place a DSS without
        // our key (mpterm withholds it, waiting for the keys), so a FIN before any data would
        // be sent again without them for ever. With the keys on it, the subflow FIN ends the
        // stream of a single-subflow connection (section 3.3.3, as both mpterm and Linux read
        // a FIN without DATA_FIN when every subflow is closed).
        let at_first_seq = segment.repr.seq == self.first_seq;
        if !self.fully_established && at_first_seq {
            self.decorate_with_capable(segment, remote_key, payload_sum);
            return;
        }
        self.decorate_with_dss(segment, payload_sum);
    }

    fn capable(&self, keys: Option<(u64, u64)>) -> MpCapable {
        MpCapable {
            version: 1,
            checksum_required: self.checksums,
            extensibility: false,
            no_new_subflows_to_source: false,
            hmac_sha256: true,
            sender_key: keys.map(|(sender, _)| sender),
            receiver_key: keys.map(|(_, receiver)| receiver),
            data_level_length: None,
            checksum: None,
        }
    }

    /// Section 3.1: the third ACK carries both keys; the first data carries them too, with
    /// the data-level length of its mapping (at IDSN + 1, relative subflow sequence 1) and,
    /// with checksums, the DSS checksum.
    fn decorate_with_capable(
        &self,
        segment: &mut OutgoingSegment<P>,
        remote_key: u64,
        payload_sum: Checksum,
    ) {
        let mut capable = self.capable(Some((self.local_key, remote_key)));
        if let Some(payload) = segment.payload.as_ref() {
            let length = payload.len() as u16;
            capable.data_level_length = Some(length);
            capable.checksum = self
                .checksums
                .then(|| mapping_checksum(self.send_data_base, 1, length, payload_sum));
        }
        segment.repr.options.mptcp[0] = Some(MptcpOption::MpCapable(capable));
    }

    /// Section 3.3: a DATA_ACK on every segment, a mapping of exactly the segment's payload
    /// on every data segment (so that a retransmission, always of a whole segment, repeats
    /// the identical mapping), the DATA_FIN on the subflow FIN.
    fn decorate_with_dss(&self, segment: &mut OutgoingSegment<P>, payload_sum: Checksum) {
        let data_ack = if self.use_64bit_ack {
            DataSeqWire::Bits64(self.rcv_data_nxt)
        } else {
            DataSeqWire::Bits32(self.rcv_data_nxt as u32)
        };
        let mut dss = Dss {
            data_ack: Some(data_ack),
            mapping: None,
            data_fin: false,
        };
        if let Some(payload) = segment.payload.as_ref() {
            let relative_seq = segment.relative_seq;
            let data_seq = self
                .send_data_base
                .wrapping_add(u64::from(relative_seq.wrapping_sub(1)));
            let length = payload.len() as u16;
            dss.mapping = Some(DssMapping {
                // Linux writes 64-bit mappings only.
                data_seq: DataSeqWire::Bits64(data_seq),
                subflow_seq: relative_seq,
                data_level_length: length,
                checksum: self
                    .checksums
                    .then(|| mapping_checksum(data_seq, relative_seq, length, payload_sum)),
            });
        } else if segment.repr.flags.contains(TcpFlags::FIN) {
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
        // The option space holds 40 bytes: SACK blocks give way to the DSS.
        while options.encoded_len() > MAX_OPTIONS_LEN && !options.sack_blocks.is_empty() {
            options.sack_blocks.pop();
        }
    }
}

/// Section 3.3.1: the DSS checksum over the pseudo-header (checksum field zero) and the data,
/// from the data's sum computed once for the segment. The pseudo-header is 16 bytes, so the
/// data's sum continues it at an even offset.
fn mapping_checksum(data_seq: u64, subflow_seq: u32, length: u16, payload_sum: Checksum) -> u16 {
    let mut sum = checksum::dss_pseudo_header(data_seq, subflow_seq, length, 0);
    sum.add_checksum(payload_sum);
    sum.finish()
}
