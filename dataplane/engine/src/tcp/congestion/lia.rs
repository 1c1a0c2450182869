//! LIA, the Linked Increases Algorithm (RFC 6356): coupled congestion avoidance for the
//! subflows of one MPTCP connection.
//!
//! Slow start, fast recovery and the timeout stay those of NewReno (RFC 6356 section 3: "the
//! algorithm only applies to the increase phase of the congestion avoidance state"; a loss
//! halves the subflow's own window). In congestion avoidance subflow i grows, per
//! `bytes_acked`, by `min(alpha * bytes_acked * MSS_i / cwnd_total, bytes_acked * MSS_i /
//! cwnd_i)`: one MSS per `max(cwnd_total / alpha, cwnd_i)` acknowledged bytes, where
//! `cwnd_total / alpha` comes from the connection ([`super::ConnectionCoupling`]).

use mpterm_wire::SeqNumber;

use super::new_reno::AckOutcome;
use super::{CongestionControl, CongestionCoupling, NewReno};

/// One subflow's LIA state: NewReno's, and the latest snapshot of its connection's coupling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lia {
    reno: NewReno,
    coupling: Option<CongestionCoupling>,
}

impl Lia {
    pub fn new(mss: u16) -> Self {
        Lia {
            reno: NewReno::new(mss),
            coupling: None,
        }
    }

    /// Bytes to acknowledge per MSS of increase in congestion avoidance: RFC 6356's first
    /// term, capped by the second (never faster than NewReno on this subflow alone).
    fn bytes_per_mss(&self) -> u32 {
        let own = self.reno.window();
        self.coupling
            .map_or(own, |coupling| coupling.lia_bytes_per_mss().max(own))
    }
}

impl CongestionControl for Lia {
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
        match self.reno.on_ack_outside_avoidance(ack, acked, flight, mss) {
            AckOutcome::Handled {
                retransmit_next_hole,
            } => retransmit_next_hole,
            AckOutcome::CongestionAvoidance => {
                let bytes_per_mss = self.bytes_per_mss();
                self.reno.grow_in_avoidance(acked, mss, bytes_per_mss);
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
        self.reno.enter_fast_recovery(snd_una, snd_max, flight, mss)
    }

    fn inflate(&mut self, mss: u32) {
        self.reno.inflate(mss);
    }

    fn on_loss_recovery_end(&mut self) {
        self.reno.on_loss_recovery_end();
    }

    fn on_timeout(&mut self, flight: u32, mss: u32, snd_max: SeqNumber) {
        self.reno.on_timeout(flight, mss, snd_max);
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

    /// A LIA and a NewReno state both in congestion avoidance at `window` bytes.
    fn in_avoidance(window: u32) -> (Lia, NewReno) {
        let mut reno = NewReno::new(MSS as u16);
        // A timeout at twice the window sets the threshold to it; slow start climbs back.
        reno.on_timeout(2 * window, MSS, SeqNumber(0));
        while reno.window() < window {
            reno.on_ack(SeqNumber(1), MSS, 0, MSS);
        }
        assert_eq!(reno.window(), window);
        (
            Lia {
                reno,
                coupling: None,
            },
            reno,
        )
    }

    fn sample(window: u32, rtt_ms: u64) -> CongestionSample {
        CongestionSample {
            window,
            smoothed_rtt: Duration::from_millis(rtt_ms),
            loss_interval_bytes: 0,
        }
    }

    #[test]
    fn without_a_coupling_lia_is_newreno() {
        let (mut lia, mut reno) = in_avoidance(10 * MSS);
        // Slow start, avoidance, fast recovery with a partial and a full ACK, a timeout: the
        // same calls give the same answers and windows.
        for step in 0..400u32 {
            let ack = SeqNumber(step * MSS);
            let flight = 8 * MSS;
            match step % 97 {
                50 => assert_eq!(
                    lia.enter_fast_recovery(ack, ack + 10 * MSS, flight, MSS),
                    reno.enter_fast_recovery(ack, ack + 10 * MSS, flight, MSS)
                ),
                51 | 52 => {
                    lia.inflate(MSS);
                    reno.inflate(MSS);
                }
                90 => {
                    lia.on_timeout(flight, MSS, ack + 5 * MSS);
                    reno.on_timeout(flight, MSS, ack + 5 * MSS);
                }
                _ => assert_eq!(
                    lia.on_ack(ack, MSS, flight, MSS),
                    reno.on_ack(ack, MSS, flight, MSS)
                ),
            }
            assert_eq!(lia.window(), reno.window(), "step {step}");
            assert_eq!(lia.slow_start_threshold(), reno.slow_start_threshold());
            assert_eq!(lia.in_fast_recovery(), reno.in_fast_recovery());
        }
    }

    #[test]
    fn two_equal_subflows_each_grow_a_quarter_as_fast_as_newreno() {
        // Two subflows of 20 segments at 30 ms: alpha = 1/2, cwnd_total = 40 segments, so
        // each grows one MSS per 80 segments acknowledged, NewReno one per 20.
        let (mut lia, mut reno) = in_avoidance(20 * MSS);
        let samples = [sample(20 * MSS, 30), sample(20 * MSS, 30)];
        let coupling = ConnectionCoupling::from_samples(&samples).unwrap();
        lia.set_coupling(Some(coupling.for_subflow(&samples[0])));
        for _ in 0..80 {
            lia.on_ack(SeqNumber(1), MSS, 0, MSS);
            reno.on_ack(SeqNumber(1), MSS, 0, MSS);
        }
        assert_eq!(lia.window(), 21 * MSS);
        assert!(reno.window() >= 23 * MSS, "NewReno at {}", reno.window());
        // Fewer acknowledged bytes than 80 segments grow nothing more.
        for _ in 0..79 {
            lia.on_ack(SeqNumber(1), MSS, 0, MSS);
        }
        assert_eq!(lia.window(), 21 * MSS);
    }

    #[test]
    fn the_increase_is_capped_by_newrenos() {
        // A short path beside a long one: alpha = 1.25 (see the coupling tests), so
        // cwnd_total / alpha = 40 segments. A subflow whose own window is larger than that
        // (60 segments) would grow faster than NewReno by the first term alone; RFC 6356's
        // second term holds it at NewReno's pace, one MSS per its own window.
        let samples = [sample(10 * MSS, 10), sample(40 * MSS, 40)];
        let coupling = ConnectionCoupling::from_samples(&samples).unwrap();
        assert!(coupling.alpha() > 1 << super::super::ALPHA_SCALE_SHIFT);
        let snapshot = coupling.for_subflow(&samples[0]);
        assert_eq!(snapshot.lia_bytes_per_mss(), 40 * MSS);
        let (mut capped, mut reno) = in_avoidance(60 * MSS);
        capped.set_coupling(Some(snapshot));
        for _ in 0..600 {
            capped.on_ack(SeqNumber(1), MSS, 0, MSS);
            reno.on_ack(SeqNumber(1), MSS, 0, MSS);
            assert_eq!(capped.window(), reno.window());
        }
        // Below 40 segments the first term governs: slower than NewReno.
        let (mut coupled, mut reno) = in_avoidance(20 * MSS);
        coupled.set_coupling(Some(snapshot));
        for _ in 0..42 {
            coupled.on_ack(SeqNumber(1), MSS, 0, MSS);
            reno.on_ack(SeqNumber(1), MSS, 0, MSS);
        }
        assert_eq!(coupled.window(), 21 * MSS);
        assert_eq!(reno.window(), 22 * MSS);
    }

    #[test]
    fn taking_the_coupling_back_restores_newreno() {
        let (mut lia, mut reno) = in_avoidance(20 * MSS);
        let samples = [sample(20 * MSS, 30), sample(20 * MSS, 30)];
        let coupling = ConnectionCoupling::from_samples(&samples).unwrap();
        lia.set_coupling(Some(coupling.for_subflow(&samples[0])));
        lia.set_coupling(None);
        for _ in 0..100 {
            lia.on_ack(SeqNumber(1), MSS, 0, MSS);
            reno.on_ack(SeqNumber(1), MSS, 0, MSS);
            assert_eq!(lia.window(), reno.window());
        }
    }
}
