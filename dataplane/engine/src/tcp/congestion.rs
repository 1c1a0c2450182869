//! NewReno congestion control (RFC 5681, RFC 6582).

use mpterm_wire::SeqNumber;

/// Congestion window, slow-start threshold and the fast-recovery state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewReno {
    window: u32,
    slow_start_threshold: u32,
    /// Bytes acknowledged in congestion avoidance since the window last grew.
    acked_in_avoidance: u32,
    in_fast_recovery: bool,
    /// RFC 6582 `recover`: the highest sequence number sent when recovery (or a timeout)
    /// began; a new fast recovery starts only once it is acknowledged.
    recover: Option<SeqNumber>,
}

impl NewReno {
    /// RFC 6928: an initial window of ten segments (at most 14600 bytes beyond two segments).
    pub fn new(mss: u16) -> Self {
        let mss = u32::from(mss.max(1));
        NewReno {
            window: (10 * mss).min((2 * mss).max(14_600)),
            slow_start_threshold: u32::MAX,
            acked_in_avoidance: 0,
            in_fast_recovery: false,
            recover: None,
        }
    }

    pub fn window(&self) -> u32 {
        self.window
    }

    pub fn slow_start_threshold(&self) -> u32 {
        self.slow_start_threshold
    }

    pub fn in_fast_recovery(&self) -> bool {
        self.in_fast_recovery
    }

    /// New data acknowledged up to `ack`, `acked` bytes; `flight` is what is still
    /// outstanding. Returns true on a partial acknowledgement during fast recovery, when the
    /// caller must retransmit the next unacknowledged segment (RFC 6582 section 3.2 step 5).
    pub fn on_ack(&mut self, ack: SeqNumber, acked: u32, flight: u32, mss: u32) -> bool {
        if self.in_fast_recovery {
            let recover = self.recover.unwrap_or(ack);
            if ack.distance_from(recover) >= 0 {
                // Full acknowledgement (step 6): deflate the window.
                self.in_fast_recovery = false;
                self.window = self.slow_start_threshold.min(flight.max(mss) + mss);
                return false;
            }
            // Partial acknowledgement: deflate by the amount acknowledged, add back one MSS.
            self.window = self
                .window
                .saturating_sub(acked)
                .saturating_add(mss)
                .max(mss);
            return true;
        }
        if self.window < self.slow_start_threshold {
            // RFC 5681 section 3.1 with RFC 3465 byte counting (L = 2 * SMSS).
            self.window = self.window.saturating_add(acked.min(2 * mss));
        } else {
            self.acked_in_avoidance = self.acked_in_avoidance.saturating_add(acked);
            if self.acked_in_avoidance >= self.window {
                self.acked_in_avoidance -= self.window;
                self.window = self.window.saturating_add(mss);
            }
        }
        false
    }

    /// Three duplicate acknowledgements (RFC 6582 section 3.2 steps 1 and 2). Returns true when
    /// fast retransmit starts; false when the duplicates belong to a hole already recovered.
    pub fn enter_fast_recovery(
        &mut self,
        snd_una: SeqNumber,
        snd_max: SeqNumber,
        flight: u32,
        mss: u32,
    ) -> bool {
        if self.in_fast_recovery {
            return false;
        }
        if let Some(recover) = self.recover {
            // The cumulative ACK must cover more than `recover` (step 1).
            if snd_una.distance_from(recover) <= 0 {
                return false;
            }
        }
        self.slow_start_threshold = (flight / 2).max(2 * mss);
        self.window = self.slow_start_threshold + 3 * mss;
        self.recover = Some(snd_max);
        self.in_fast_recovery = true;
        true
    }

    /// A further duplicate acknowledgement during fast recovery (step 4).
    pub fn inflate(&mut self, mss: u32) {
        if self.in_fast_recovery {
            self.window = self.window.saturating_add(mss);
        }
    }

    /// The retransmission timer expired (RFC 5681 section 3.1 equation 4, RFC 6582 section 4).
    pub fn on_timeout(&mut self, flight: u32, mss: u32, snd_max: SeqNumber) {
        self.slow_start_threshold = (flight / 2).max(2 * mss);
        self.window = mss;
        self.acked_in_avoidance = 0;
        self.in_fast_recovery = false;
        self.recover = Some(snd_max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;

    #[test]
    fn slow_start_then_avoidance() {
        let mut cc = NewReno::new(MSS as u16);
        assert_eq!(cc.window(), 10 * MSS);
        cc.on_ack(SeqNumber(1000), 1000, 0, MSS);
        assert_eq!(cc.window(), 11 * MSS);
        cc.on_timeout(20 * MSS, MSS, SeqNumber(50_000));
        assert_eq!(cc.window(), MSS);
        assert_eq!(cc.slow_start_threshold(), 10 * MSS);
        for _ in 0..9 {
            cc.on_ack(SeqNumber(60_000), MSS, 0, MSS);
        }
        assert_eq!(cc.window(), 10 * MSS);
        // Congestion avoidance: one MSS per window of acknowledged bytes.
        for _ in 0..10 {
            cc.on_ack(SeqNumber(70_000), MSS, 0, MSS);
        }
        assert_eq!(cc.window(), 11 * MSS);
    }

    #[test]
    fn fast_recovery_partial_and_full_ack() {
        let mut cc = NewReno::new(MSS as u16);
        assert!(cc.enter_fast_recovery(SeqNumber(0), SeqNumber(10_000), 10_000, MSS));
        assert_eq!(cc.slow_start_threshold(), 5_000);
        assert_eq!(cc.window(), 8_000);
        cc.inflate(MSS);
        assert_eq!(cc.window(), 9_000);
        // Partial: retransmit the next hole.
        assert!(cc.on_ack(SeqNumber(2_000), 2_000, 8_000, MSS));
        assert_eq!(cc.window(), 8_000);
        // Full: leave recovery with cwnd = min(ssthresh, flight + mss).
        assert!(!cc.on_ack(SeqNumber(10_000), 8_000, 0, MSS));
        assert!(!cc.in_fast_recovery());
        assert_eq!(cc.window(), 2_000);
        // Duplicates for data sent before `recover` do not start another recovery.
        assert!(!cc.enter_fast_recovery(SeqNumber(10_000), SeqNumber(20_000), 10_000, MSS));
        assert!(cc.enter_fast_recovery(SeqNumber(10_001), SeqNumber(20_000), 10_000, MSS));
    }
}
