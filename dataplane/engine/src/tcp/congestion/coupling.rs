//! The connection-wide quantities of coupled congestion control, computed from every subflow's
//! window and smoothed RTT: a pure function of the subflows' samples, in integer arithmetic.
//!
//! RFC 6356 section 3 (LIA) grows subflow i, per `bytes_acked` in congestion avoidance, by
//!
//! ```text
//! min(alpha * bytes_acked * MSS_i / cwnd_total, bytes_acked * MSS_i / cwnd_i)
//! alpha = cwnd_total * max_i(cwnd_i / rtt_i^2) / (sum_i(cwnd_i / rtt_i))^2
//! ```
//!
//! Growing one MSS per `cwnd_total / alpha` acknowledged bytes is the first term, and with k
//! the subflow that maximises `cwnd_k / rtt_k^2`, `cwnd_total / alpha` simplifies to
//! `S_k^2 / cwnd_k` with `S_k = sum_i(cwnd_i * rtt_k / rtt_i)`: bytes, with no division of
//! small quantities. (RFC 6356 section 4.1 asks for exactly this care with fixed point.)
//!
//! OLIA (draft-khalili-mptcp-congestion-control-05 section 3) grows path r, per acknowledged
//! segment, by `(w_r / rtt_r^2) / (sum_p(w_p / rtt_p))^2 + epsilon_r / w_r` (windows in
//! segments). Its first term is one MSS per `S_r^2 / w_r` acknowledged bytes, the same shape as
//! LIA's with r's own RTT. `epsilon_r` moves window from the paths with the largest window (M)
//! to the presumably best paths (B, largest `l_p / rtt_p^2`, `l_p` the bytes between losses)
//! that are not among them: `1 / (n * |B \ M|)` for those, `-1 / (n * |M|)` for M, 0 otherwise
//! and for everyone when `B \ M` is empty.

use core::time::Duration;

/// `alpha` is reported with this many fractional bits: `1 << ALPHA_SCALE_SHIFT` is 1.
pub const ALPHA_SCALE_SHIFT: u32 = 16;
/// Fractional bits of the sum of `window / rtt` (bytes per microsecond).
const RATE_SHIFT: u32 = 32;
/// RTTs are counted in microseconds, at most `u32::MAX` (71 minutes), so that every product
/// below fits in 128 bits.
const MAX_RTT_MICROS: u128 = u32::MAX as u128;
/// Loss intervals are capped at 2^48 bytes (256 TiB) for the same reason.
const MAX_LOSS_INTERVAL: u128 = 1 << 48;

/// What one subflow tells its connection about its path ([`super::Tcb::congestion_sample`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CongestionSample {
    /// The congestion window in bytes, not inflated by fast recovery.
    pub window: u32,
    pub smoothed_rtt: Duration,
    /// OLIA's `l_r`: bytes acknowledged between the last two losses, or since the last one if
    /// that is more (0 for other algorithms).
    pub loss_interval_bytes: u64,
}

impl CongestionSample {
    fn window_bytes(&self) -> u128 {
        u128::from(self.window.max(1))
    }

    fn rtt_micros(&self) -> u128 {
        self.smoothed_rtt.as_micros().clamp(1, MAX_RTT_MICROS)
    }

    fn rtt_squared(&self) -> u128 {
        self.rtt_micros() * self.rtt_micros()
    }

    fn loss_interval(&self) -> u128 {
        u128::from(self.loss_interval_bytes).min(MAX_LOSS_INTERVAL)
    }
}

/// OLIA's `epsilon_r` for one path: `numerator / denominator`, the numerator -1, 0 or 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OliaEpsilon {
    numerator: i8,
    denominator: u32,
}

impl OliaEpsilon {
    pub const ZERO: OliaEpsilon = OliaEpsilon {
        numerator: 0,
        denominator: 1,
    };

    pub fn numerator(&self) -> i8 {
        self.numerator
    }

    pub fn denominator(&self) -> u32 {
        self.denominator
    }
}

/// One subflow's snapshot of its connection's coupling ([`ConnectionCoupling::for_subflow`]),
/// handed to it with [`super::Tcb::set_congestion_coupling`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CongestionCoupling {
    lia_bytes_per_mss: u32,
    olia_bytes_per_mss: u32,
    olia_epsilon: OliaEpsilon,
}

impl CongestionCoupling {
    /// LIA: `cwnd_total / alpha`, the bytes to acknowledge per MSS of increase before RFC 6356's
    /// cap by the subflow's own window.
    pub fn lia_bytes_per_mss(&self) -> u32 {
        self.lia_bytes_per_mss
    }

    /// OLIA: the bytes to acknowledge per MSS of increase of the first term alone.
    pub fn olia_bytes_per_mss(&self) -> u32 {
        self.olia_bytes_per_mss
    }

    pub fn olia_epsilon(&self) -> OliaEpsilon {
        self.olia_epsilon
    }
}

/// The quantities of one MPTCP connection's coupled congestion control, from every subflow's
/// sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCoupling {
    subflows: u32,
    total_window: u64,
    /// `sum_p(w_p / rtt_p)`, bytes per microsecond with [`RATE_SHIFT`] fractional bits.
    sum_of_rates: u128,
    lia_bytes_per_mss: u32,
    alpha: u64,
    largest_window: u32,
    largest_window_count: u32,
    /// The best path's `l_p` and `rtt_p^2`: `l / rtt^2` is compared by cross-multiplying.
    best_loss_interval: u128,
    best_rtt_squared: u128,
    /// `|B \ M|`: best paths without the largest window.
    collected_count: u32,
}

impl ConnectionCoupling {
    /// The coupling of the subflows sampled in `samples` (each counted once); `None` when there
    /// is none. Two passes over the samples, no allocation.
    pub fn from_samples(samples: &[CongestionSample]) -> Option<Self> {
        let first = samples.first()?;
        let mut total_window = 0u64;
        let mut sum_of_rates = 0u128;
        // LIA's k: the largest cwnd / rtt^2, compared as w_i * rtt_k^2 > w_k * rtt_i^2.
        let mut steepest = first;
        let mut largest_window = 0u32;
        let mut best = first;
        for sample in samples {
            total_window += u64::from(sample.window);
            sum_of_rates += (sample.window_bytes() << RATE_SHIFT) / sample.rtt_micros();
            if sample.window_bytes() * steepest.rtt_squared()
                > steepest.window_bytes() * sample.rtt_squared()
            {
                steepest = sample;
            }
            largest_window = largest_window.max(sample.window);
            if sample.loss_interval() * best.rtt_squared()
                > best.loss_interval() * sample.rtt_squared()
            {
                best = sample;
            }
        }
        let best_loss_interval = best.loss_interval();
        let best_rtt_squared = best.rtt_squared();
        let mut largest_window_count = 0u32;
        let mut collected_count = 0u32;
        for sample in samples {
            if sample.window == largest_window {
                largest_window_count += 1;
            } else if is_best(sample, best_loss_interval, best_rtt_squared) {
                collected_count += 1;
            }
        }

        // RFC 6356 section 3 as `S_k^2 / cwnd_k` (see the module's comment).
        let spread = spread_at(sum_of_rates, steepest);
        let spread_squared = spread.saturating_mul(spread);
        let lia_bytes_per_mss = clamp_to_u32(spread_squared / steepest.window_bytes());
        let alpha = ((u128::from(total_window) << ALPHA_SCALE_SHIFT) * steepest.window_bytes())
            / spread_squared;
        Some(ConnectionCoupling {
            subflows: samples.len().min(u32::MAX as usize) as u32,
            total_window,
            sum_of_rates,
            lia_bytes_per_mss,
            alpha: alpha.min(u128::from(u64::MAX)) as u64,
            largest_window,
            largest_window_count,
            best_loss_interval,
            best_rtt_squared,
            collected_count,
        })
    }

    /// RFC 6356's `cwnd_total`, in bytes.
    pub fn total_window(&self) -> u64 {
        self.total_window
    }

    /// RFC 6356's `alpha` with [`ALPHA_SCALE_SHIFT`] fractional bits.
    pub fn alpha(&self) -> u64 {
        self.alpha
    }

    pub fn subflows(&self) -> u32 {
        self.subflows
    }

    /// The snapshot of subflow `sample` (one of those the coupling was computed from).
    pub fn for_subflow(&self, sample: &CongestionSample) -> CongestionCoupling {
        let spread = spread_at(self.sum_of_rates, sample);
        let olia_bytes_per_mss = match spread.checked_mul(spread) {
            Some(squared) => clamp_to_u32(squared / sample.window_bytes()),
            None => u32::MAX,
        };
        let olia_epsilon = if self.collected_count == 0 {
            OliaEpsilon::ZERO
        } else if sample.window == self.largest_window {
            OliaEpsilon {
                numerator: -1,
                denominator: self.subflows * self.largest_window_count,
            }
        } else if is_best(sample, self.best_loss_interval, self.best_rtt_squared) {
            OliaEpsilon {
                numerator: 1,
                denominator: self.subflows * self.collected_count,
            }
        } else {
            OliaEpsilon::ZERO
        };
        CongestionCoupling {
            lia_bytes_per_mss: self.lia_bytes_per_mss,
            olia_bytes_per_mss,
            olia_epsilon,
        }
    }
}

/// `sum_p(w_p * rtt_x / rtt_p)` in bytes, rounded to the nearest (so that one subflow's is its
/// own window exactly), at least 1.
fn spread_at(sum_of_rates: u128, sample: &CongestionSample) -> u128 {
    let half = 1u128 << (RATE_SHIFT - 1);
    ((sum_of_rates * sample.rtt_micros() + half) >> RATE_SHIFT).max(1)
}

/// Whether `sample` is among the paths with the largest `l / rtt^2` (OLIA's B).
fn is_best(sample: &CongestionSample, best_loss_interval: u128, best_rtt_squared: u128) -> bool {
    sample.loss_interval() * best_rtt_squared == best_loss_interval * sample.rtt_squared()
}

fn clamp_to_u32(value: u128) -> u32 {
    value.clamp(1, u128::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;

    fn sample(window: u32, rtt_ms: u64) -> CongestionSample {
        CongestionSample {
            window,
            smoothed_rtt: Duration::from_millis(rtt_ms),
            loss_interval_bytes: 0,
        }
    }

    /// RFC 6356 section 3's alpha, in floating point, as the reference.
    fn reference_alpha(samples: &[(f64, f64)]) -> f64 {
        let total: f64 = samples.iter().map(|(w, _)| w).sum();
        let steepest = samples.iter().map(|(w, r)| w / (r * r)).fold(0.0, f64::max);
        let sum: f64 = samples.iter().map(|(w, r)| w / r).sum();
        total * steepest / (sum * sum)
    }

    fn alpha_of(coupling: &ConnectionCoupling) -> f64 {
        coupling.alpha() as f64 / f64::from(1u32 << ALPHA_SCALE_SHIFT)
    }

    #[test]
    fn one_subflow_has_alpha_one_and_its_own_window_as_count() {
        let coupling = ConnectionCoupling::from_samples(&[sample(20 * MSS, 30)]).unwrap();
        assert_eq!(coupling.alpha(), 1 << ALPHA_SCALE_SHIFT);
        assert_eq!(coupling.total_window(), u64::from(20 * MSS));
        let snapshot = coupling.for_subflow(&sample(20 * MSS, 30));
        assert_eq!(snapshot.lia_bytes_per_mss(), 20 * MSS);
        assert_eq!(snapshot.olia_bytes_per_mss(), 20 * MSS);
        assert_eq!(snapshot.olia_epsilon(), OliaEpsilon::ZERO);
    }

    #[test]
    fn equal_subflows_have_alpha_one_over_n() {
        // RFC 6356 section 3: n equal paths give alpha = 1/n, and the total grows by
        // alpha * MSS per RTT of each: one MSS / n per RTT in all, n times slower than one flow.
        for n in [2usize, 3, 4] {
            let samples = vec![sample(10 * MSS, 40); n];
            let coupling = ConnectionCoupling::from_samples(&samples).unwrap();
            assert_eq!(
                coupling.alpha(),
                (1 << ALPHA_SCALE_SHIFT) / n as u64,
                "n = {n}"
            );
            // cwnd_total / alpha = n * w / (1 / n) = n^2 * w.
            let snapshot = coupling.for_subflow(&samples[0]);
            assert_eq!(snapshot.lia_bytes_per_mss(), (n * n) as u32 * 10 * MSS);
        }
    }

    #[test]
    fn unequal_subflows_match_the_rfc_formula() {
        // Worked by hand: w = (10, 40) segments, rtt = (10 ms, 40 ms). cwnd/rtt^2 = 0.1 and
        // 0.025 (k = the first), sum(cwnd/rtt) = 1 + 1 = 2, alpha = 50 * 0.1 / 4 = 1.25.
        let samples = [sample(10 * MSS, 10), sample(40 * MSS, 40)];
        let coupling = ConnectionCoupling::from_samples(&samples).unwrap();
        assert_eq!(coupling.alpha(), 5 << (ALPHA_SCALE_SHIFT - 2));
        // cwnd_total / alpha = 50 / 1.25 = 40 segments.
        assert_eq!(
            coupling.for_subflow(&samples[1]).lia_bytes_per_mss(),
            40 * MSS
        );

        for case in [
            [(10, 10), (10, 100)],
            [(64, 5), (7, 250)],
            [(3, 300), (90, 12)],
            [(1000, 1), (2, 2000)],
        ] {
            let samples: Vec<_> = case.iter().map(|&(w, r)| sample(w * MSS, r)).collect();
            let coupling = ConnectionCoupling::from_samples(&samples).unwrap();
            let float: Vec<_> = case
                .iter()
                .map(|&(w, r)| (f64::from(w * MSS), r as f64))
                .collect();
            let expected = reference_alpha(&float);
            let alpha = alpha_of(&coupling);
            assert!(
                (alpha - expected).abs() <= expected * 1e-3 + 1e-4,
                "{case:?}: alpha {alpha}, RFC 6356 gives {expected}"
            );
            let total = float.iter().map(|(w, _)| w).sum::<f64>();
            let count = f64::from(coupling.for_subflow(&samples[0]).lia_bytes_per_mss());
            assert!(
                (count - total / expected).abs() <= total / expected * 1e-3 + 1.0,
                "{case:?}: {count} bytes per MSS, RFC 6356 gives {}",
                total / expected
            );
        }
    }

    #[test]
    fn olia_first_term_uses_each_paths_own_rtt() {
        // Paths (10 segments, 10 ms) and (40 segments, 40 ms): sum(w/rtt) = 2 segments/ms.
        // Path 1: (w/rtt^2) / sum^2 = 0.1 / 4 per segment: one MSS per 40 segments.
        // Path 2: 0.025 / 4: one MSS per 160 segments.
        let samples = [sample(10 * MSS, 10), sample(40 * MSS, 40)];
        let coupling = ConnectionCoupling::from_samples(&samples).unwrap();
        assert_eq!(
            coupling.for_subflow(&samples[0]).olia_bytes_per_mss(),
            40 * MSS
        );
        assert_eq!(
            coupling.for_subflow(&samples[1]).olia_bytes_per_mss(),
            160 * MSS
        );
    }

    #[test]
    fn olia_epsilon_moves_window_from_the_largest_to_the_best_path() {
        let with_interval = |window, rtt_ms, loss_interval_bytes| CongestionSample {
            loss_interval_bytes,
            ..sample(window, rtt_ms)
        };
        // Path 0 has the largest window but losses every 100 KB; path 1 a smaller window and
        // losses every 1 MB at the same RTT: it is the best path and not in M.
        let samples = [
            with_interval(40 * MSS, 20, 100_000),
            with_interval(10 * MSS, 20, 1_000_000),
            with_interval(10 * MSS, 20, 10_000),
        ];
        let coupling = ConnectionCoupling::from_samples(&samples).unwrap();
        let epsilon = |i: usize| coupling.for_subflow(&samples[i]).olia_epsilon();
        assert_eq!((epsilon(0).numerator(), epsilon(0).denominator()), (-1, 3));
        assert_eq!((epsilon(1).numerator(), epsilon(1).denominator()), (1, 3));
        assert_eq!(epsilon(2), OliaEpsilon::ZERO);

        // When the best path also has the largest window, nothing moves.
        let samples = [
            with_interval(40 * MSS, 20, 1_000_000),
            with_interval(10 * MSS, 20, 100_000),
        ];
        let coupling = ConnectionCoupling::from_samples(&samples).unwrap();
        for sample in &samples {
            assert_eq!(
                coupling.for_subflow(sample).olia_epsilon(),
                OliaEpsilon::ZERO
            );
        }
    }

    #[test]
    fn extreme_samples_neither_overflow_nor_divide_by_zero() {
        let samples = [
            CongestionSample {
                window: u32::MAX,
                smoothed_rtt: Duration::ZERO,
                loss_interval_bytes: u64::MAX,
            },
            CongestionSample {
                window: 0,
                smoothed_rtt: Duration::from_secs(1 << 40),
                loss_interval_bytes: 0,
            },
        ];
        let coupling = ConnectionCoupling::from_samples(&samples).unwrap();
        for sample in &samples {
            let snapshot = coupling.for_subflow(sample);
            assert!(snapshot.lia_bytes_per_mss() >= 1);
            assert!(snapshot.olia_bytes_per_mss() >= 1);
        }
        assert!(ConnectionCoupling::from_samples(&[]).is_none());
    }
}
