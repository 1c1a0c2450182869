//! Path MTU discovery from ICMP reports (RFC 1191 for IPv4, RFC 8201 for IPv6): a router that
//! could not forward a segment of ours says how large a packet it can forward, and the segments
//! we send from then on fit. The engine finds the connection from the quoted four-tuple and
//! turns the MTU into an MSS; here the report is checked against the connection (RFC 5927
//! section 4.1: the quoted sequence number must be of data in flight) and applied.
//!
//! The segments in flight that no longer fit are sent again at once (as Linux's
//! `tcp_simple_retransmit`): each such unit of the scoreboard is cut into pieces of the new
//! size, all marked lost, so that they go before new data as congestion control allows (the
//! window is not reduced: nothing says the path is congested). A piece is a unit of its own
//! from then on (SACKed, lost and sent again alone), but it remembers the unit it was cut from:
//! an MPTCP subflow repeats that unit's DSS mapping, the one the peer may already hold, on
//! every piece (RFC 8684 section 3.3.1: a mapping never changes once sent; a mapping may span
//! several segments, as Linux's own TSO segments do).
//!
//! Not done: RFC 8899 packetization-layer probing, and raising the MSS again when the path
//! grows (RFC 1191 section 6.3's ten-minute timer): an MSS once lowered stays for the
//! connection's life.

use super::*;

impl<P: Payload> Tcb<P> {
    /// The MSS an ICMP report set, if one did.
    pub fn path_mss(&self) -> Option<u16> {
        (self.path_mss != u16::MAX).then_some(self.path_mss)
    }

    /// Whether an ICMP error quoting sequence number `seq` can be about this connection: it
    /// lies in SND.UNA..=SND.MAX, what we sent and the peer has not acknowledged (RFC 5927
    /// section 4.1; Linux's `tcp_v4_err` and `tcp_v6_err` check SND.UNA..=SND.NXT, and its
    /// SND.NXT never goes back, which is SND.MAX here).
    pub fn quotes_data_in_flight(&self, seq: SeqNumber) -> bool {
        !matches!(self.state, TcpState::Closed | TcpState::TimeWait)
            && seq.distance_from(self.snd_una) >= 0
            && seq.distance_from(self.snd_max) <= 0
    }

    /// An ICMP fragmentation-needed or packet-too-big error quoting sequence number
    /// `quoted_seq` says the path takes segments of at most `path_mss` bytes (options and
    /// data). Checked against the connection first; the engine has checked the MTU against
    /// its floor. Units in flight larger than the new payload size are cut and sent again.
    pub fn lower_path_mss(
        &mut self,
        quoted_seq: SeqNumber,
        path_mss: u16,
    ) -> Result<(), IcmpRejection> {
        if !self.quotes_data_in_flight(quoted_seq) {
            return Err(IcmpRejection::SequenceOutsideWindow);
        }
        if path_mss >= self.send_mss() {
            return Err(IcmpRejection::NotSmaller);
        }
        self.path_mss = path_mss;
        self.split_units_too_big();
        Ok(())
    }

    /// Cuts every outstanding unit the peer has not SACKed that is larger than one segment
    /// now into pieces of at most one segment, all marked lost (sent again before new data).
    /// Pieces wholly below SND.UNA (of a unit partly acknowledged) are released.
    fn split_units_too_big(&mut self) {
        let max = self.max_payload_per_segment() as u32;
        let mut index = 0;
        while let Some(unit) = self.units.get(index).copied() {
            if unit.sacked || unit.len <= max {
                index += 1;
                continue;
            }
            if unit.lost {
                self.recovery.lost_bytes = self.recovery.lost_bytes.saturating_sub(unit.len);
            }
            let mut offset = 0;
            let mut position = index;
            while offset < unit.len {
                let len = max.min(unit.len - offset);
                let piece = recovery::SentUnit {
                    start: unit.start + offset,
                    len,
                    lost: true,
                    ..unit
                };
                if position == index {
                    self.units[position] = piece;
                } else {
                    self.units.insert(position, piece);
                }
                self.recovery.lost_bytes += len;
                offset += len;
                position += 1;
            }
            index = position;
        }
        // Karn: a segment about to be sent again times nothing.
        self.timed_segment = None;
        self.release_acknowledged(self.snd_una);
    }

    /// `len` bytes from `seq` from the send queue, also before SND.UNA while their buffer is
    /// held (the start of a split unit that was partly acknowledged).
    pub(super) fn retained_slice(&self, seq: SeqNumber, len: u32) -> Option<P> {
        let before_released = i64::from(seq.distance_from(self.released_seq));
        let offset = u64::try_from(self.send_queue.released() as i64 + before_released).ok()?;
        self.send_queue.slice_retained(offset, len as usize)
    }
}
