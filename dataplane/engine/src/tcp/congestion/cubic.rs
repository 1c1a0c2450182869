//! CUBIC (RFC 9438) with HyStart++ (RFC 9406), decoupled: Linux's default, for paths with a
//! large bandwidth-delay product where NewReno's one segment per round trip is too slow.
//!
//! Fast recovery, the recovery point and the timeout are NewReno's (RFC 9438 sections 4.6 to
//! 4.8 keep them), with CUBIC's multiplicative decrease β = 0.7 and fast convergence. In
//! congestion avoidance the window follows W_cubic(t) = C (t - K)^3 + W_max from the start of
//! the epoch (the first ACK after a reduction), aiming one RTT ahead and never below the
//! Reno-friendly estimate W_est (section 4.3). Slow start grows by the bytes acknowledged until
//! HyStart++ sees the round's minimum RTT rise (section 4.2 of RFC 9406), then by a quarter of
//! them (conservative slow start) for at most five rounds before congestion avoidance.

use core::time::Duration;

use mpterm_wire::SeqNumber;

use super::new_reno::{AckOutcome, NewReno};
use super::CongestionControl;
use crate::Instant;

/// RFC 9438 section 5.1: C = 0.4 segments per second cubed.
const C: f64 = 0.4;
/// RFC 9438 section 4.6: the multiplicative decrease factor.
const BETA: f64 = 0.7;
/// RFC 9438 section 4.3: the Reno-friendly additive increase, 3 (1 - β) / (1 + β).
const ALPHA: f64 = 3.0 * (1.0 - BETA) / (1.0 + BETA);
/// RFC 9406 section 4.3: RTT samples a round needs before it is compared, the bounds of the
/// RTT increase that ends slow start, the growth divisor and the rounds of conservative slow
/// start.
const N_RTT_SAMPLE: u32 = 8;
const MIN_RTT_THRESHOLD: Duration = Duration::from_millis(4);
const MAX_RTT_THRESHOLD: Duration = Duration::from_millis(16);
const CSS_GROWTH_DIVISOR: u32 = 4;
const CSS_ROUNDS: u32 = 5;
/// RFC 3465's L: slow start grows by at most two segments per ACK.
const SLOW_START_LIMIT_SEGMENTS: u32 = 2;

/// HyStart++'s view of slow start (RFC 9406 section 4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct HyStart {
    /// The round ends once an ACK covers this (SND.MAX when it began).
    window_end: Option<SeqNumber>,
    last_round_min_rtt: Option<Duration>,
    current_round_min_rtt: Option<Duration>,
    rtt_samples: u32,
    /// In conservative slow start since the round whose minimum RTT was this.
    css_baseline_min_rtt: Option<Duration>,
    css_rounds: u32,
    /// The latest RTT sample, not yet counted.
    pending_sample: Option<Duration>,
}

impl HyStart {
    /// One ACK in slow start at `ack` with `snd_max` sent; returns the growth divisor (1 in
    /// slow start, 4 in conservative slow start) and whether slow start is over.
    fn on_ack(&mut self, ack: SeqNumber, snd_max: SeqNumber) -> (u32, bool) {
        let mut finished = false;
        if self
            .window_end
            .is_none_or(|end| ack.distance_from(end) >= 0)
        {
            // A new round.
            self.window_end = Some(snd_max);
            self.last_round_min_rtt = self.current_round_min_rtt.take();
            self.rtt_samples = 0;
            if self.css_baseline_min_rtt.is_some() {
                self.css_rounds += 1;
                finished = self.css_rounds >= CSS_ROUNDS;
            }
        }
        if let Some(rtt) = self.pending_sample.take() {
            self.current_round_min_rtt =
                Some(self.current_round_min_rtt.map_or(rtt, |min| min.min(rtt)));
            self.rtt_samples += 1;
        }
        match self.css_baseline_min_rtt {
            None => {
                if let (Some(current), Some(last)) =
                    (self.current_round_min_rtt, self.last_round_min_rtt)
                {
                    let eta = (last / 8).clamp(MIN_RTT_THRESHOLD, MAX_RTT_THRESHOLD);
                    if self.rtt_samples >= N_RTT_SAMPLE && current >= last + eta {
                        self.css_baseline_min_rtt = Some(current);
                        self.css_rounds = 0;
                    }
                }
            }
            Some(baseline) => {
                // The RTT went down again: the increase was spurious, back to slow start.
                if self
                    .current_round_min_rtt
                    .is_some_and(|current| current < baseline)
                {
                    self.css_baseline_min_rtt = None;
                }
            }
        }
        let divisor = if self.css_baseline_min_rtt.is_some() {
            CSS_GROWTH_DIVISOR
        } else {
            1
        };
        (divisor, finished)
    }
}

/// CUBIC's state beside NewReno's slow start, recovery and timeout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cubic {
    reno: NewReno,
    /// W_max in bytes: the window before the last reduction.
    w_max: f64,
    /// W_max before the last reduction, for fast convergence (section 4.7).
    w_last_max: f64,
    /// When the current congestion avoidance epoch began, and K in seconds.
    epoch_start: Option<Instant>,
    k_seconds: f64,
    /// The Reno-friendly estimate W_est in bytes, and the window with its fraction.
    w_est: f64,
    window_exact: f64,
    hystart: HyStart,
    /// The clock and smoothed RTT of the ACK being handled (see `on_ack_at`).
    now: Instant,
    smoothed_rtt: Option<Duration>,
}

impl Eq for Cubic {}

impl Cubic {
    pub fn new(mss: u16) -> Self {
        Cubic {
            reno: NewReno::new(mss),
            w_max: 0.0,
            w_last_max: 0.0,
            epoch_start: None,
            k_seconds: 0.0,
            w_est: 0.0,
            window_exact: 0.0,
            hystart: HyStart::default(),
            now: Instant::ZERO,
            smoothed_rtt: None,
        }
    }

    /// Section 4.6 and 4.7: the window before the reduction becomes W_max (less with fast
    /// convergence), the threshold β times it; the next ACK in avoidance starts an epoch.
    fn on_congestion_event(&mut self, mss: u32) {
        let window = f64::from(self.reno.window());
        if window < self.w_last_max {
            self.w_last_max = window;
            self.w_max = window * (1.0 + BETA) / 2.0;
        } else {
            self.w_last_max = window;
            self.w_max = window;
        }
        let threshold = ((window * BETA) as u32).max(2 * mss);
        self.reno.set_slow_start_threshold(threshold);
        self.epoch_start = None;
        // Slow start is over for HyStart++ once any loss happened.
        self.hystart.css_baseline_min_rtt = None;
    }

    /// Section 4.2-4.4: the congestion avoidance increase for `acked` bytes.
    fn grow_in_avoidance(&mut self, acked: u32, mss: u32) {
        let mss_f = f64::from(mss);
        let window = f64::from(self.reno.window());
        let start = match self.epoch_start {
            Some(start) => start,
            None => {
                self.epoch_start = Some(self.now);
                self.window_exact = window;
                self.w_est = window;
                if self.w_max <= window {
                    self.w_max = window;
                    self.k_seconds = 0.0;
                } else {
                    self.k_seconds = ((self.w_max - window) / mss_f / C).cbrt();
                }
                self.now
            }
        };
        let rtt = self
            .smoothed_rtt
            .unwrap_or(Duration::from_millis(100))
            .as_secs_f64();
        let t = self.now.saturating_since(start).as_secs_f64();
        let cubic_at = |t: f64| (C * (t - self.k_seconds).powi(3)) * mss_f + self.w_max;
        // Section 4.3: W_est grows by α segments per window of acknowledged bytes (1 once it
        // passed W_max).
        let alpha = if self.w_est >= self.w_max { 1.0 } else { ALPHA };
        self.w_est += alpha * f64::from(acked) * mss_f / self.window_exact.max(mss_f);
        if cubic_at(t) < self.w_est {
            self.window_exact = self.w_est;
        } else {
            // Section 4.4: aim at W_cubic one RTT ahead, between cwnd and 1.5 cwnd.
            let target = cubic_at(t + rtt).clamp(self.window_exact, 1.5 * self.window_exact);
            self.window_exact +=
                (target - self.window_exact) / self.window_exact.max(mss_f) * f64::from(acked);
        }
        let grown = self.window_exact.min(f64::from(u32::MAX)) as u32;
        self.reno.set_window(grown.max(self.reno.window()));
    }

    /// An acknowledgement at `now`, with the connection's smoothed RTT: what
    /// [`CongestionControl::on_ack`] does, with the clock CUBIC needs.
    pub fn on_ack_at(
        &mut self,
        now: Instant,
        smoothed_rtt: Option<Duration>,
        ack: SeqNumber,
        acked: u32,
        flight: u32,
        mss: u32,
    ) -> bool {
        self.now = now;
        self.smoothed_rtt = smoothed_rtt;
        self.on_ack(ack, acked, flight, mss)
    }

    /// An RTT sample, for HyStart++.
    pub fn on_rtt_sample(&mut self, rtt: Duration) {
        self.hystart.pending_sample = Some(rtt);
    }
}

impl CongestionControl for Cubic {
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
        let in_slow_start =
            !self.reno.in_fast_recovery() && self.reno.window() < self.reno.slow_start_threshold();
        if in_slow_start {
            // RFC 9406: slow start, or conservative slow start, then avoidance.
            let (divisor, finished) = self.hystart.on_ack(ack, ack + flight);
            let growth = acked.min(SLOW_START_LIMIT_SEGMENTS * mss) / divisor;
            self.reno
                .set_window(self.reno.window().saturating_add(growth));
            if finished {
                self.reno.set_slow_start_threshold(self.reno.window());
                self.hystart.css_baseline_min_rtt = None;
            }
            return false;
        }
        match self.reno.on_ack_outside_avoidance(ack, acked, flight, mss) {
            AckOutcome::Handled {
                retransmit_next_hole,
            } => retransmit_next_hole,
            AckOutcome::CongestionAvoidance => {
                self.grow_in_avoidance(acked, mss);
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
        let window_before = self.reno.window();
        if !self.reno.enter_fast_recovery(snd_una, snd_max, flight, mss) {
            return false;
        }
        // NewReno halved the flight; CUBIC reduces the window by β (section 4.6).
        self.reno.set_window(window_before);
        self.on_congestion_event(mss);
        let threshold = self.reno.slow_start_threshold();
        self.reno.set_window(threshold + 3 * mss);
        true
    }

    fn inflate(&mut self, mss: u32) {
        self.reno.inflate(mss);
    }

    fn on_loss_recovery_end(&mut self) {
        self.reno.on_loss_recovery_end();
    }

    fn on_timeout(&mut self, flight: u32, mss: u32, snd_max: SeqNumber) {
        self.on_congestion_event(mss);
        let threshold = self.reno.slow_start_threshold();
        self.reno.on_timeout(flight, mss, snd_max);
        // Section 4.8: the threshold is β times the window, the window one segment.
        self.reno.set_slow_start_threshold(threshold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;

    fn at_millis(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn a_loss_reduces_the_window_by_beta_and_avoidance_regrows_it_cubically() {
        let mut cc = Cubic::new(MSS as u16);
        // Grow to 100 segments in slow start (no RTT samples: HyStart++ stays out).
        let mut ack = SeqNumber(0);
        while cc.window() < 100 * MSS {
            ack = ack + MSS;
            cc.on_ack_at(at_millis(1), None, ack, MSS, 0, MSS);
        }
        let before = cc.window();
        assert!(cc.enter_fast_recovery(ack, ack + 100 * MSS, 100 * MSS, MSS));
        assert_eq!(cc.slow_start_threshold(), (f64::from(before) * BETA) as u32);
        // Full acknowledgement: recovery ends at the threshold.
        cc.on_ack_at(at_millis(2), None, ack + 100 * MSS, 100 * MSS, 0, MSS);
        assert!(!cc.in_fast_recovery());
        let reduced = cc.window();
        assert!(reduced <= cc.slow_start_threshold());
        // Avoidance over virtual seconds at a 50 ms RTT: concave growth back toward W_max,
        // reached about K = cbrt(W_max (1 - β) / C) seconds later, then convex beyond.
        let rtt = Duration::from_millis(50);
        let k = (f64::from(before) / f64::from(MSS) * (1.0 - BETA) / C).cbrt();
        let mut now_ms = 2u64;
        let mut window_at_k = 0;
        let mut ack = ack + 100 * MSS;
        while now_ms < 2 + (2.0 * k * 1000.0) as u64 {
            now_ms += 5;
            ack = ack + MSS;
            cc.on_ack_at(at_millis(now_ms), Some(rtt), ack, MSS, 50 * MSS, MSS);
            if window_at_k == 0 && now_ms as f64 >= 2.0 + k * 1000.0 {
                window_at_k = cc.window();
            }
        }
        let near = f64::from(window_at_k) / f64::from(before);
        assert!(
            (0.9..=1.1).contains(&near),
            "at K the window is back near W_max: {window_at_k} vs {before}"
        );
        assert!(
            cc.window() > before,
            "beyond K it grows past W_max: {} vs {before}",
            cc.window()
        );
    }

    #[test]
    fn a_second_loss_below_w_max_converges_fast() {
        let mut cc = Cubic::new(MSS as u16);
        cc.reno.set_window(100 * MSS);
        cc.reno.set_slow_start_threshold(50 * MSS);
        assert!(cc.enter_fast_recovery(SeqNumber(0), SeqNumber(100_000), 100 * MSS, MSS));
        assert_eq!(cc.w_max, f64::from(100 * MSS));
        cc.on_ack_at(at_millis(1), None, SeqNumber(100_001), 100_001, 0, MSS);
        // A second loss at 70 segments, below the last W_max: W_max = 70 (1 + β) / 2.
        cc.reno.set_window(70 * MSS);
        assert!(cc.enter_fast_recovery(SeqNumber(100_002), SeqNumber(200_000), 70 * MSS, MSS));
        assert!((cc.w_max - f64::from(70 * MSS) * (1.0 + BETA) / 2.0).abs() < 1.0);
    }

    #[test]
    fn a_timeout_leaves_one_segment_and_beta_times_the_window_as_threshold() {
        let mut cc = Cubic::new(MSS as u16);
        cc.reno.set_window(40 * MSS);
        cc.on_timeout(40 * MSS, MSS, SeqNumber(1000));
        assert_eq!(cc.window(), MSS);
        assert_eq!(cc.slow_start_threshold(), 28 * MSS);
    }

    #[test]
    fn hystart_leaves_slow_start_when_the_rtt_rises_and_grows_a_quarter_as_fast() {
        let mut cc = Cubic::new(MSS as u16);
        let mut ack = SeqNumber(0);
        let mut sent = SeqNumber(20 * MSS);
        let round = |cc: &mut Cubic, rtt_ms: u64, ack: &mut SeqNumber, sent: &mut SeqNumber| {
            // One round: the ACKs of everything sent in the round before, each with an RTT
            // sample; the round ends where SND.MAX was when it began.
            let end = *sent;
            let mut growth = 0;
            while ack.distance_from(end) < 0 {
                *ack = *ack + MSS;
                cc.on_rtt_sample(Duration::from_millis(rtt_ms));
                let before = cc.window();
                cc.on_ack_at(
                    at_millis(1),
                    None,
                    *ack,
                    MSS,
                    end.distance_from(*ack) as u32,
                    MSS,
                );
                growth += cc.window() - before;
                *sent = *sent + MSS;
            }
            growth
        };
        // Two rounds at a flat 40 ms: plain slow start, a segment per segment acknowledged.
        let first = round(&mut cc, 40, &mut ack, &mut sent);
        let second = round(&mut cc, 40, &mut ack, &mut sent);
        assert_eq!(second, first.max(second), "slow start keeps doubling");
        assert!(cc.hystart.css_baseline_min_rtt.is_none());
        // The queue builds: 40 ms + 8 ms > 40 + max(4, 40 / 8): conservative slow start.
        let rising = round(&mut cc, 48, &mut ack, &mut sent);
        assert!(cc.hystart.css_baseline_min_rtt.is_some());
        let css = round(&mut cc, 48, &mut ack, &mut sent);
        assert!(
            css < rising,
            "a quarter of the growth in conservative slow start: {css} vs {rising}"
        );
        // After five rounds of it, congestion avoidance.
        for _ in 0..5 {
            round(&mut cc, 48, &mut ack, &mut sent);
        }
        assert_eq!(
            cc.slow_start_threshold(),
            cc.window().min(cc.slow_start_threshold())
        );
        assert!(
            cc.window() >= cc.slow_start_threshold(),
            "out of slow start"
        );
    }
}

#[cfg(test)]
mod explore {
    use super::*;
    use crate::tcp::congestion::NewReno;

    #[test]
    #[ignore]
    fn average_window_with_periodic_loss() {
        const MSS: u32 = 1448;
        let rtt = Duration::from_millis(20);
        for name in ["cubic", "newreno"] {
            let mut cubic = Cubic::new(MSS as u16);
            let mut reno = NewReno::new(MSS as u16);
            let mut now = Instant::from_nanos(1_000_000_000);
            let mut ack = SeqNumber(0);
            let mut total: u64 = 0;
            let mut samples = 0u64;
            let mut segments = 0u64;
            for _round in 0..3000 {
                let window = if name == "cubic" {
                    cubic.window()
                } else {
                    reno.window()
                };
                let per_round = (window / MSS).max(1);
                for _ in 0..per_round {
                    segments += 1;
                    ack = ack + MSS;
                    if segments % 100 == 0 {
                        if name == "cubic" {
                            cubic.enter_fast_recovery(ack, ack + window, window, MSS);
                            cubic.on_ack_at(now, Some(rtt), ack + window, window, 0, MSS);
                        } else {
                            reno.enter_fast_recovery(ack, ack + window, window, MSS);
                            reno.on_ack(ack + window, window, 0, MSS);
                        }
                        ack = ack + window;
                    } else if name == "cubic" {
                        cubic.on_ack_at(now, Some(rtt), ack, MSS, window, MSS);
                    } else {
                        reno.on_ack(ack, MSS, window, MSS);
                    }
                }
                now = now + rtt;
                total += u64::from(if name == "cubic" {
                    cubic.window()
                } else {
                    reno.window()
                });
                samples += 1;
            }
            eprintln!(
                "EXPLORE {name}: average window {} segments",
                total / samples / u64::from(MSS)
            );
        }
    }
}
