//! OLIA, the Opportunistic Linked Increases Algorithm (Khalili, Gast, Popovic, Le Boudec,
//! draft-khalili-mptcp-congestion-control-05; the algorithm of UCLouvain's MPTCP kernel):
//! coupled congestion avoidance that, unlike LIA, moves traffic toward the better paths
//! without giving up responsiveness.
//!
//! Slow start, fast recovery and the timeout are NewReno's; a loss halves the subflow's own
//! window. In congestion avoidance path r grows, per acknowledged segment, by
//! `(w_r / rtt_r^2) / (sum_p(w_p / rtt_p))^2 + epsilon_r / w_r` segments (draft section 3),
//! which per acknowledged byte is `1 / olia_bytes_per_mss + epsilon_r / w_r` MSS with `w_r` in
//! bytes ([`super::ConnectionCoupling`] computes both). The sum may be negative on the paths
//! with the largest window: the window then shrinks, never below two segments.
//!
//! The path's `l_r`, bytes acknowledged between its last two losses (or since the last one,
//! if more), is kept here and reported through [`CongestionControl::loss_interval_bytes`].

use mpterm_wire::SeqNumber;

use super::new_reno::AckOutcome;
use super::{CongestionControl, CongestionCoupling, NewReno};

/// One subflow's OLIA state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Olia {
    reno: NewReno,
    coupling: Option<CongestionCoupling>,
    /// Bytes acknowledged in congestion avoidance toward the next MSS of the first term.
    acked_for_first_term: u32,
    /// Bytes acknowledged in congestion avoidance toward the next MSS of the epsilon term,
    /// in its direction `epsilon_sign`.
    acked_for_epsilon: u32,
    epsilon_sign: i8,
    /// Bytes acknowledged since the last loss.
    bytes_since_loss: u64,
    /// Bytes acknowledged between the last two losses.
    bytes_between_losses: u64,
}

impl Olia {
    pub fn new(mss: u16) -> Self {
        Olia {
            reno: NewReno::new(mss),
            coupling: None,
            acked_for_first_term: 0,
            acked_for_epsilon: 0,
            epsilon_sign: 0,
            bytes_since_loss: 0,
            bytes_between_losses: 0,
        }
    }

    /// A loss (fast retransmit or timeout) ends an inter-loss interval. Repeated timeouts
    /// without an acknowledgement in between end none, so they do not wipe the measure.
    fn on_loss(&mut self) {
        if self.bytes_since_loss > 0 {
            self.bytes_between_losses = self.bytes_since_loss;
            self.bytes_since_loss = 0;
        }
    }

    /// The coupled change for `acked` bytes. Each term is counted in bytes as NewReno counts
    /// its increase, so that the arithmetic is exact: the first term grows one MSS per
    /// `olia_bytes_per_mss` bytes, the epsilon term moves one MSS (up or down with its sign)
    /// per `denominator * w_r` bytes. Each moves the window by at most one MSS per
    /// acknowledgement.
    fn avoid_congestion(&mut self, coupling: CongestionCoupling, acked: u32, mss: u32) {
        let first_term = coupling.olia_bytes_per_mss().max(1);
        self.acked_for_first_term = self.acked_for_first_term.saturating_add(acked);
        if self.acked_for_first_term >= first_term {
            self.acked_for_first_term -= first_term;
            self.reno.grow_one_segment(mss);
        }
        let epsilon = coupling.olia_epsilon();
        if epsilon.numerator() != self.epsilon_sign {
            // What was counted toward the other direction no longer applies.
            self.epsilon_sign = epsilon.numerator();
            self.acked_for_epsilon = 0;
        }
        if self.epsilon_sign == 0 {
            return;
        }
        let epsilon_term = epsilon
            .denominator()
            .max(1)
            .saturating_mul(self.reno.window().max(1));
        self.acked_for_epsilon = self.acked_for_epsilon.saturating_add(acked);
        if self.acked_for_epsilon >= epsilon_term {
            self.acked_for_epsilon -= epsilon_term;
            if self.epsilon_sign > 0 {
                self.reno.grow_one_segment(mss);
            } else {
                self.reno.shrink_in_avoidance(mss);
            }
        }
    }
}

impl CongestionControl for Olia {
    fn window(&self) -> u32 {
        self.reno.window()
    }

    fn slow_start_threshold(&self) -> u32 {
        self.reno.slow_start_threshold()
    }

    fn in_fast_recovery(&self) -> bool {
        self.reno.in_fast_recovery()
    }

    fn on_ack(&mut self, ack: SeqNumber, acked: u32, flight: u32, mss: u32) -> bool {
        self.bytes_since_loss = self.bytes_since_loss.saturating_add(u64::from(acked));
        match self.reno.on_ack_outside_avoidance(ack, acked, flight, mss) {
            AckOutcome::Handled {
                retransmit_next_hole,
            } => retransmit_next_hole,
            AckOutcome::CongestionAvoidance => {
                match self.coupling {
                    Some(coupling) => self.avoid_congestion(coupling, acked, mss),
                    None => {
                        let own = self.reno.window();
                        self.reno.grow_in_avoidance(acked, mss, own);
                    }
                }
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
        let entered = self.reno.enter_fast_recovery(snd_una, snd_max, flight, mss);
        if entered {
            self.on_loss();
        }
        entered
    }

    fn inflate(&mut self, mss: u32) {
        self.reno.inflate(mss);
    }

    fn on_loss_recovery_end(&mut self) {
        self.reno.on_loss_recovery_end();
    }

    fn on_timeout(&mut self, flight: u32, mss: u32, snd_max: SeqNumber) {
        self.reno.on_timeout(flight, mss, snd_max);
        self.acked_for_first_term = 0;
        self.acked_for_epsilon = 0;
        self.on_loss();
    }

    fn loss_interval_bytes(&self) -> u64 {
        self.bytes_since_loss.max(self.bytes_between_losses)
    }

    fn set_coupling(&mut self, coupling: Option<CongestionCoupling>) {
        self.coupling = coupling;
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::super::{CongestionSample, ConnectionCoupling};
    use super::*;

    const MSS: u32 = 1000;

    fn in_avoidance(window: u32) -> Olia {
        let mut olia = Olia::new(MSS as u16);
        olia.on_timeout(2 * window, MSS, SeqNumber(0));
        while olia.window() < window {
            olia.on_ack(SeqNumber(1), MSS, 0, MSS);
        }
        assert_eq!(olia.window(), window);
        olia
    }

    fn sample(window: u32, rtt_ms: u64, loss_interval_bytes: u64) -> CongestionSample {
        CongestionSample {
            window,
            smoothed_rtt: Duration::from_millis(rtt_ms),
            loss_interval_bytes,
        }
    }

    #[test]
    fn without_a_coupling_olia_is_newreno() {
        let mut olia = in_avoidance(10 * MSS);
        let mut reno = NewReno::new(MSS as u16);
        reno.on_timeout(20 * MSS, MSS, SeqNumber(0));
        while reno.window() < 10 * MSS {
            reno.on_ack(SeqNumber(1), MSS, 0, MSS);
        }
        for step in 0..300u32 {
            let ack = SeqNumber(step * MSS);
            if step % 101 == 60 {
                assert_eq!(
                    olia.enter_fast_recovery(ack, ack + 10 * MSS, 8 * MSS, MSS),
                    reno.enter_fast_recovery(ack, ack + 10 * MSS, 8 * MSS, MSS)
                );
            } else {
                assert_eq!(
                    olia.on_ack(ack, MSS, 8 * MSS, MSS),
                    reno.on_ack(ack, MSS, 8 * MSS, MSS)
                );
            }
            assert_eq!(olia.window(), reno.window(), "step {step}");
        }
    }

    #[test]
    fn loss_intervals_are_measured_between_losses() {
        let mut olia = Olia::new(MSS as u16);
        for _ in 0..50 {
            olia.on_ack(SeqNumber(1), MSS, 0, MSS);
        }
        assert_eq!(olia.loss_interval_bytes(), u64::from(50 * MSS));
        olia.on_timeout(10 * MSS, MSS, SeqNumber(100));
        // A second timeout without progress ends no interval.
        olia.on_timeout(10 * MSS, MSS, SeqNumber(100));
        assert_eq!(olia.loss_interval_bytes(), u64::from(50 * MSS));
        for _ in 0..80 {
            olia.on_ack(SeqNumber(1), MSS, 0, MSS);
        }
        // l = max(since the last loss, between the last two).
        assert_eq!(olia.loss_interval_bytes(), u64::from(80 * MSS));
        assert!(olia.enter_fast_recovery(SeqNumber(200), SeqNumber(300), 10 * MSS, MSS));
        for _ in 0..10 {
            olia.on_ack(SeqNumber(1), MSS, 0, MSS);
        }
        assert_eq!(olia.loss_interval_bytes(), u64::from(80 * MSS));
    }

    #[test]
    fn equal_paths_grow_like_lia() {
        // Two equal paths (20 segments, 30 ms, the same loss interval): epsilon is 0 and the
        // first term is one MSS per (2 * 20)^2 / 20 = 80 acknowledged segments.
        let samples = [sample(20 * MSS, 30, 1), sample(20 * MSS, 30, 1)];
        let coupling = ConnectionCoupling::from_samples(&samples).unwrap();
        let mut olia = in_avoidance(20 * MSS);
        olia.set_coupling(Some(coupling.for_subflow(&samples[0])));
        for _ in 0..79 {
            olia.on_ack(SeqNumber(1), MSS, 0, MSS);
        }
        assert_eq!(olia.window(), 20 * MSS);
        olia.on_ack(SeqNumber(1), MSS, 0, MSS);
        assert_eq!(olia.window(), 21 * MSS);
    }

    #[test]
    fn epsilon_shifts_window_toward_the_better_path() {
        // Path 0 has the larger window but loses every 100 KB; path 1 a smaller window, the
        // same RTT and losses every 1 MB: it is the best path and not among the largest, so
        // epsilon is -1/2 on path 0 and +1/2 on path 1. The first terms: sum(w / rtt) = 2.5
        // segments per ms, so path 0 grows one MSS per 50^2 / 40 = 62.5 segments, path 1 one
        // per 50^2 / 10 = 250.
        let samples = [
            sample(40 * MSS, 20, 100_000),
            sample(10 * MSS, 20, 1_000_000),
        ];
        // The same paths when the largest is also the best: epsilon is 0, the first terms
        // unchanged.
        let without_epsilon = [sample(40 * MSS, 20, 10_000_000), samples[1]];
        let grow = |samples: &[CongestionSample], path: usize, acks: u32| {
            let coupling = ConnectionCoupling::from_samples(samples).unwrap();
            let mut olia = in_avoidance(samples[path].window);
            olia.set_coupling(Some(coupling.for_subflow(&samples[path])));
            for _ in 0..acks {
                olia.on_ack(SeqNumber(1), MSS, 0, MSS);
            }
            olia.window() / MSS
        };
        // 400 segments: the first term alone gives path 0 six MSS and path 1 one.
        assert_eq!(grow(&without_epsilon, 0, 400), 46);
        assert_eq!(grow(&without_epsilon, 1, 400), 11);
        // Epsilon takes one MSS from path 0 per 2 * w = 80-odd segments (net +0.0035 per
        // segment), and gives path 1 one per 2 * w: dw = dn / (2 w), so w^2 grows by the 400
        // segments, from 100 to 500, and the first term adds one or two more: about 23.
        let largest = grow(&samples, 0, 400);
        let better = grow(&samples, 1, 400);
        assert!(
            (40..=43).contains(&largest),
            "largest path at {largest} segments"
        );
        assert!(
            (22..=25).contains(&better),
            "better path at {better} segments"
        );

        // With three paths, the largest one's net increase is negative: it shrinks.
        // sum(w / rtt) = 5, first term one MSS per 100^2 / 40 = 250 segments, epsilon
        // -1 / (3 * w): net about -0.0043 per segment at w = 40.
        let samples = [
            sample(40 * MSS, 20, 100_000),
            sample(30 * MSS, 20, 1_000_000),
            sample(30 * MSS, 20, 10_000),
        ];
        let coupling = ConnectionCoupling::from_samples(&samples).unwrap();
        let mut largest = in_avoidance(40 * MSS);
        largest.set_coupling(Some(coupling.for_subflow(&samples[0])));
        for _ in 0..1000 {
            largest.on_ack(SeqNumber(1), MSS, 0, MSS);
        }
        assert!(
            (35 * MSS..=37 * MSS).contains(&largest.window()),
            "largest path at {}",
            largest.window()
        );
        // It stays in congestion avoidance rather than slow-starting back up.
        assert!(largest.slow_start_threshold() <= largest.window());
    }
}
