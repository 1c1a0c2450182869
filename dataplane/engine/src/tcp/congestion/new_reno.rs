//! NewReno congestion control (RFC 5681, RFC 6582): the decoupled algorithm, and the slow
//! start, fast recovery and timeout behaviour that the coupled ones (LIA, OLIA) share with it.

use mpterm_wire::SeqNumber;

use super::CongestionControl;

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

/// What [`NewReno::on_ack_outside_avoidance`] made of an acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AckOutcome {
    /// Fast recovery or slow start took the acknowledgement; `retransmit_next_hole` is the
    /// value [`CongestionControl::on_ack`] returns.
    Handled { retransmit_next_hole: bool },
    /// The window is at or above the slow-start threshold: the algorithm's own congestion
    /// avoidance increase applies.
    CongestionAvoidance,
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

    /// Everything an acknowledgement of new data does except the congestion avoidance
    /// increase: fast recovery (RFC 6582 section 3.2 steps 5 and 6) and slow start (RFC 5681
    /// section 3.1 with RFC 3465 byte counting, L = 2 * SMSS). The coupled algorithms differ
    /// from NewReno only in what follows [`AckOutcome::CongestionAvoidance`].
    pub(super) fn on_ack_outside_avoidance(
        &mut self,
        ack: SeqNumber,
        acked: u32,
        flight: u32,
        mss: u32,
    ) -> AckOutcome {
        if self.in_fast_recovery {
            let recover = self.recover.unwrap_or(ack);
            if ack.distance_from(recover) >= 0 {
                // Full acknowledgement (step 6): deflate the window.
                self.in_fast_recovery = false;
                self.window = self.slow_start_threshold.min(flight.max(mss) + mss);
                return AckOutcome::Handled {
                    retransmit_next_hole: false,
                };
            }
            // Partial acknowledgement: deflate by the amount acknowledged, add back one MSS.
            self.window = self
                .window
                .saturating_sub(acked)
                .saturating_add(mss)
                .max(mss);
            return AckOutcome::Handled {
                retransmit_next_hole: true,
            };
        }
        if self.window < self.slow_start_threshold {
            self.window = self.window.saturating_add(acked.min(2 * mss));
            return AckOutcome::Handled {
                retransmit_next_hole: false,
            };
        }
        AckOutcome::CongestionAvoidance
    }

    /// Congestion avoidance by byte counting: the window grows by one MSS each time
    /// `bytes_per_mss` bytes have been acknowledged. NewReno's own rate, one MSS per window
    /// (RFC 5681 section 3.1), is `bytes_per_mss` = the window; LIA passes a larger count.
    pub(super) fn grow_in_avoidance(&mut self, acked: u32, mss: u32, bytes_per_mss: u32) {
        self.acked_in_avoidance = self.acked_in_avoidance.saturating_add(acked);
        if self.acked_in_avoidance >= bytes_per_mss {
            self.acked_in_avoidance -= bytes_per_mss;
            self.window = self.window.saturating_add(mss);
        }
    }

    /// Sets the window (CUBIC's growth and reduction, computed outside).
    pub(super) fn set_window(&mut self, window: u32) {
        self.window = window;
    }

    /// Sets the slow-start threshold (CUBIC's β and HyStart++'s exit).
    pub(super) fn set_slow_start_threshold(&mut self, threshold: u32) {
        self.slow_start_threshold = threshold;
    }

    /// Grows the window in congestion avoidance by one MSS (OLIA's positive increase).
    pub(super) fn grow_one_segment(&mut self, mss: u32) {
        self.window = self.window.saturating_add(mss);
    }

    /// Shrinks the window in congestion avoidance by one MSS, never below two (RFC 5681's
    /// smallest slow-start threshold), and keeps the threshold at or below the window so that
    /// the next acknowledgement does not take it for slow start (OLIA's negative increase).
    pub(super) fn shrink_in_avoidance(&mut self, mss: u32) {
        self.window = self.window.saturating_sub(mss).max(2 * mss);
        self.slow_start_threshold = self.slow_start_threshold.min(self.window);
    }
}

/// RFC 5681 section 3.1 equation 4: half the flight, at least two segments. With SACK the
/// flight (SND.MAX - SND.UNA) counts the bytes SACKed above a hole, which the window did not
/// limit (RFC 6675's pipe leaves them out), so it can be well above the window; like Linux
/// (`tcp_reno_ssthresh`: half the window) the flight is taken at most as the window, else a
/// path that reorders would hardly ever see the window reduced.
fn half_of_flight(flight: u32, window: u32, mss: u32) -> u32 {
    (flight.min(window) / 2).max(2 * mss)
}

impl CongestionControl for NewReno {
    fn window(&self) -> u32 {
        self.window
    }

    fn slow_start_threshold(&self) -> u32 {
        self.slow_start_threshold
    }

    fn in_fast_recovery(&self) -> bool {
        self.in_fast_recovery
    }

    fn on_ack(&mut self, ack: SeqNumber, acked: u32, flight: u32, mss: u32) -> bool {
        match self.on_ack_outside_avoidance(ack, acked, flight, mss) {
            AckOutcome::Handled {
                retransmit_next_hole,
            } => retransmit_next_hole,
            AckOutcome::CongestionAvoidance => {
                self.grow_in_avoidance(acked, mss, self.window);
                false
            }
        }
    }

    fn enter_fast_recovery(
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
        self.slow_start_threshold = half_of_flight(flight, self.window, mss);
        self.window = self.slow_start_threshold + 3 * mss;
        self.recover = Some(snd_max);
        self.in_fast_recovery = true;
        true
    }

    fn inflate(&mut self, mss: u32) {
        if self.in_fast_recovery {
            self.window = self.window.saturating_add(mss);
        }
    }

    fn on_loss_recovery_end(&mut self) {
        if self.slow_start_threshold != u32::MAX {
            // Still inflated by fast recovery: the inflation measured duplicates, not the path.
            self.window = if self.in_fast_recovery {
                self.slow_start_threshold
            } else {
                self.window.max(self.slow_start_threshold)
            };
        }
        self.in_fast_recovery = false;
    }

    fn on_timeout(&mut self, flight: u32, mss: u32, snd_max: SeqNumber) {
        self.slow_start_threshold = half_of_flight(flight, self.window, mss);
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
        for ack in 1..=10 {
            cc.on_ack(SeqNumber(ack * 1000), 1000, 0, MSS);
        }
        assert_eq!(cc.window(), 20 * MSS);
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
    fn the_threshold_is_half_the_flight_counted_at_most_as_the_window() {
        // With SACK the flight includes bytes SACKed above a hole, which the window did not
        // limit: half of it would hardly reduce at all.
        let mut cc = NewReno::new(MSS as u16);
        assert!(cc.enter_fast_recovery(SeqNumber(0), SeqNumber(30_000), 30_000, MSS));
        assert_eq!(
            cc.slow_start_threshold(),
            5 * MSS,
            "half the 10-segment window"
        );
        let mut cc = NewReno::new(MSS as u16);
        cc.on_timeout(6 * MSS, MSS, SeqNumber(6_000));
        assert_eq!(
            cc.slow_start_threshold(),
            3 * MSS,
            "half a flight below the window"
        );
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
