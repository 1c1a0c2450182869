//! The MPTCP options of the server's segments, read only for segments the subflow's TCP layer
//! accepted (`Tcb::handle_segment_with`): a blind segment cannot move our DATA_ACK, announce a
//! DATA_FIN, force a fallback or end the connection. The SYN-ACK is read apart
//! ([`ClientSession::handle_syn_ack`]): the TCB takes it in SYN-SENT without the owner's hook.

use mpterm_wire::checksum;
use mpterm_wire::mptcp::{DataSeqWire, Dss, MptcpOption};
use mpterm_wire::tcp::{TcpFlags, TcpRepr};

use super::session::{data_seq_after, ClientSession};
use crate::mptcp::{expand_data_seq, MptcpError, OptionOutcome, OptionsVerdict};
use crate::tcp::{Accepted, ReceivedMapping};
use crate::Payload;

impl<P: Payload> ClientSession<P> {
    /// Reads the MPTCP options of an accepted server segment before the TCP layer takes its
    /// payload. The verdict never withholds: a client has the server's key from the SYN-ACK.
    pub(crate) fn handle_options(
        &mut self,
        segment: &TcpRepr<'_>,
        payload_len: usize,
        accepted: Accepted,
    ) -> OptionsVerdict {
        let mut verdict = OptionsVerdict::default();
        if self.fallen_back {
            // Section 3.7: a fallen-back subflow is plain TCP; no option of it is read.
            return verdict;
        }
        if accepted == Accepted::Reset {
            self.read_reset_options(segment, &mut verdict.outcome);
            return verdict;
        }
        if !self.fully_established && segment.seq == self.server_first_seq {
            self.check_fully_established(segment, &mut verdict);
            if self.fallen_back {
                return verdict;
            }
        }
        for option in segment.options.mptcp.iter().flatten() {
            match option {
                MptcpOption::Dss(dss) => self.handle_dss(dss, payload_len, &mut verdict),
                MptcpOption::MpFastclose { receiver_key } => {
                    self.note_fast_close(*receiver_key, &mut verdict.outcome)
                }
                // A server sends no MP_CAPABLE after its SYN-ACK; ADD_ADDR, MP_PRIO and the
                // rest need more subflows than this client opens: read and ignored.
                _ => {}
            }
        }
        verdict
    }

    /// Linux's `check_fully_established` for the first subflow of a client: the server's
    /// first segment after its SYN-ACK (at its ISN + 1) either carries a DATA_ACK, which shows
    /// it took our key from the third ACK or the first data, or it carries no MPTCP option at
    /// all, which means the server (or a middlebox) fell back to TCP: so do we (RFC 8684
    /// section 3.7, MPCapableDataFallback). Deviation, recorded: a segment there with other
    /// MPTCP options only (an MP_FASTCLOSE before any data) neither falls back nor
    /// establishes, where Linux falls back; its MP_FASTCLOSE is then acted on.
    fn check_fully_established(&mut self, segment: &TcpRepr<'_>, verdict: &mut OptionsVerdict) {
        let mut options = segment.options.mptcp.iter().flatten().peekable();
        if options.peek().is_none() {
            self.fallen_back = true;
            verdict.outcome.fell_back = true;
            return;
        }
        let data_ack = options.any(|option| {
            matches!(
                option,
                MptcpOption::Dss(Dss {
                    data_ack: Some(_),
                    ..
                })
            )
        });
        self.fully_established |= data_ack;
    }

    /// Section 3.6 and 3.5: the server's RST may say why in MP_TCPRST and may carry its
    /// MP_FASTCLOSE.
    fn read_reset_options(&self, segment: &TcpRepr<'_>, outcome: &mut OptionOutcome) {
        for option in segment.options.mptcp.iter().flatten() {
            match option {
                MptcpOption::MpTcpRst(reset) if segment.flags.contains(TcpFlags::RST) => {
                    outcome.peer_reset = Some(*reset)
                }
                MptcpOption::MpFastclose { receiver_key } => {
                    self.note_fast_close(*receiver_key, outcome)
                }
                _ => {}
            }
        }
    }

    /// Section 3.5: an MP_FASTCLOSE counts only with our key, as Linux checks
    /// (`mptcp_incoming_options`: `msk->local_key == mp_opt.rcvr_key`).
    fn note_fast_close(&self, receiver_key: u64, outcome: &mut OptionOutcome) {
        if receiver_key == self.local_key {
            outcome.fast_close_received = true;
        } else {
            outcome.fast_close_ignored = true;
        }
    }

    fn handle_dss(&mut self, dss: &Dss, payload_len: usize, verdict: &mut OptionsVerdict) {
        if let Some(ack) = dss.data_ack {
            // Section 3.3.2: a cumulative DATA_ACK; one beyond what we queued (and our
            // DATA_FIN) is ignored, as Linux ignores it (`ack_update_msk`).
            let ack = expand_data_seq(ack, self.snd_data_una);
            let limit = self
                .send_data_end
                .wrapping_add(u64::from(self.local_data_fin.is_some()));
            if data_seq_after(ack, self.snd_data_una) && !data_seq_after(ack, limit) {
                self.snd_data_una = ack;
                verdict.outcome.data_acked = true;
            }
        }
        let Some(mapping) = dss.mapping else {
            return;
        };
        self.use_64bit_ack = matches!(mapping.data_seq, DataSeqWire::Bits64(_));
        let data_seq = expand_data_seq(mapping.data_seq, self.rcv_data_nxt);
        if mapping.data_level_length == 0 {
            // Section 3.7: an infinite mapping, the server fell back. Bytes of a mapping whose
            // checksum is still incomplete could never be verified: rather than lose them,
            // the connection is reset.
            if self.assembly.held_bytes() > 0 {
                verdict.outcome.error = Some(MptcpError::MappingMismatch);
                return;
            }
            self.fallen_back = true;
            verdict.outcome.fell_back = true;
            return;
        }
        if dss.data_fin {
            if mapping.subflow_seq == 0 && mapping.data_level_length == 1 {
                // Section 3.3.3: a DATA_FIN without data maps subflow sequence 0, length 1,
                // and section 3.3.1 checksums it like any mapping.
                match self.verify_data_fin_checksum(data_seq, mapping.checksum) {
                    Ok(()) => {
                        verdict.outcome.data_fin_reached |= self.announce_peer_data_fin(data_seq)
                    }
                    Err(error) => verdict.outcome.error = Some(error),
                }
                return;
            }
            if payload_len == 0 {
                // A mapping with data on a segment without any: its DATA_FIN comes with the
                // data that the mapping covers.
                return;
            }
        }
        verdict.mapping = Some(ReceivedMapping {
            data_seq,
            subflow_seq: mapping.subflow_seq,
            data_level_length: mapping.data_level_length,
            checksum: mapping.checksum,
            data_fin: dss.data_fin,
        });
    }

    /// Section 3.3.1: with checksums in use a DATA_FIN-only mapping's checksum covers the
    /// pseudo-header alone; a missing one is as bad as a wrong one.
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
