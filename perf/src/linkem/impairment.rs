//! One direction of an emulated link, as a sans-IO state machine: it is told when a frame
//! arrives and how long it is, and answers when (and whether, and how often) the frame leaves.
//!
//! The model, in the order a frame meets it:
//! 1. `down`: every frame is dropped.
//! 2. The serialisation queue: a frame leaves at the link rate after its predecessor. The bytes
//!    waiting for the wire are bounded; a frame that does not fit is tail-dropped.
//! 3. Loss on the wire (the frame has used its share of the rate): random loss, then the
//!    Gilbert-Elliott burst model (good and bad states; everything is lost in the bad state).
//! 4. Propagation: `delay` plus a uniform jitter in `[-jitter, +jitter]`. Jitter alone never
//!    reorders: a frame never arrives before the one ahead of it (FIFO, as on a real path whose
//!    delay varies).
//! 5. Reordering: with its probability a frame is held `reorder_delay` longer than FIFO would
//!    allow, so that the frames after it overtake it.
//! 6. Duplication: with its probability the frame arrives twice.
//!
//! All randomness comes from a seeded ChaCha8 stream, so a seed and a sequence of offers give
//! one answer.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// A probability in parts per million, so that 0.05 % is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Probability(u32);

impl Probability {
    /// One million parts: certainty.
    pub const PARTS: u32 = 1_000_000;
    /// Never.
    pub const NEVER: Probability = Probability(0);
    /// Always.
    pub const ALWAYS: Probability = Probability(Self::PARTS);

    /// `parts` per million, clamped to certainty.
    pub fn per_million(parts: u32) -> Probability {
        Probability(parts.min(Self::PARTS))
    }

    /// `parts` per thousand, clamped to certainty.
    pub fn per_mille(parts: u32) -> Probability {
        Probability::per_million(parts.saturating_mul(1000))
    }

    /// The parts per million.
    pub fn parts_per_million(self) -> u32 {
        self.0
    }

    /// Whether it can ever happen.
    pub fn is_never(self) -> bool {
        self.0 == 0
    }

    /// A draw that comes true with this probability. Multiply-and-shift maps the 32-bit draw to
    /// `[0, PARTS)` without the bias of a modulo worth mentioning (below 2.4e-4 relative).
    fn happens(self, rng: &mut ChaCha8Rng) -> bool {
        if self.0 == 0 {
            return false;
        }
        let draw = (u64::from(rng.next_u32()) * u64::from(Self::PARTS)) >> 32;
        draw < u64::from(self.0)
    }
}

/// The Gilbert-Elliott two-state loss model (Gilbert's simple form): in the good state no frame
/// is lost by it, in the bad state every frame is. Each frame first moves the chain: good to bad
/// with `p`, bad to good with `r`. Mean burst length is `1 / r` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BurstLoss {
    /// Probability of going from good to bad.
    pub p: Probability,
    /// Probability of going from bad to good.
    pub r: Probability,
}

/// How one direction of the link is impaired. The default impairs nothing: unlimited rate, no
/// delay, no loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Impairment {
    /// The link rate in bits per second; 0 is unlimited (no serialisation, no queue).
    pub rate_bps: u64,
    /// One-way propagation delay, in nanoseconds.
    pub delay_ns: u64,
    /// Uniform jitter around the delay, in nanoseconds (the delay never goes below 0).
    pub jitter_ns: u64,
    /// Random, independent loss.
    pub loss: Probability,
    /// Bursty loss; `None` is off.
    pub burst_loss: Option<BurstLoss>,
    /// Probability that a frame is held back and overtaken.
    pub reorder: Probability,
    /// How much longer a reordered frame is held, in nanoseconds.
    pub reorder_delay_ns: u64,
    /// Probability that a frame arrives twice.
    pub duplicate: Probability,
    /// Bytes that may wait for the wire (a rate must be set); frames beyond are tail-dropped.
    pub queue_bytes: u64,
    /// The link is cut: every frame is dropped.
    pub down: bool,
}

/// What happens to one offered frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The frame is lost (see [`LinkCounters`] for why).
    Drop,
    /// The frame arrives at this time (ns, the offer's clock).
    DeliverAt(u64),
    /// The frame arrives twice, at these times (the first is never later than the second).
    Duplicate(u64, u64),
}

/// What one direction did, frame by frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkCounters {
    pub offered_frames: u64,
    pub offered_bytes: u64,
    /// Frames given a delivery time (a duplicated frame counts once here).
    pub passed_frames: u64,
    pub passed_bytes: u64,
    pub dropped_down: u64,
    /// Tail drops: the serialisation queue was full.
    pub dropped_queue: u64,
    pub dropped_random: u64,
    pub dropped_burst: u64,
    pub reordered: u64,
    pub duplicated: u64,
}

impl LinkCounters {
    /// Every frame dropped, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_down + self.dropped_queue + self.dropped_random + self.dropped_burst
    }
}

const PICOS_PER_NANO: u64 = 1000;
const PICOS_PER_SECOND: u128 = 1_000_000_000_000;

/// One direction of the emulated link.
#[derive(Debug)]
pub struct ImpairedLink {
    impairment: Impairment,
    rng: ChaCha8Rng,
    /// When the wire is free again, in picoseconds: picoseconds keep the rate exact to well
    /// under 0.1 % even for minimum-size frames at 10 Gbit/s, where nanoseconds would not.
    wire_free_at_ps: u64,
    /// The latest delivery time given to a frame that keeps its place (FIFO floor).
    last_in_order_ns: u64,
    in_burst: bool,
    counters: LinkCounters,
}

impl ImpairedLink {
    /// A link direction with its impairment and its own seeded random stream.
    pub fn new(impairment: Impairment, seed: u64) -> ImpairedLink {
        ImpairedLink {
            impairment,
            rng: ChaCha8Rng::seed_from_u64(seed),
            wire_free_at_ps: 0,
            last_in_order_ns: 0,
            in_burst: false,
            counters: LinkCounters::default(),
        }
    }

    /// The impairment in force.
    pub fn impairment(&self) -> &Impairment {
        &self.impairment
    }

    /// Cuts (`true`) or restores (`false`) the link; frames already given a time still arrive.
    pub fn set_down(&mut self, down: bool) {
        self.impairment.down = down;
    }

    /// What it did so far.
    pub fn counters(&self) -> &LinkCounters {
        &self.counters
    }

    /// The bytes waiting for the wire at `now_ns`.
    pub fn queued_bytes(&self, now_ns: u64) -> u64 {
        let now_ps = now_ns.saturating_mul(PICOS_PER_NANO);
        let waiting_ps = self.wire_free_at_ps.saturating_sub(now_ps);
        (u128::from(waiting_ps) * u128::from(self.impairment.rate_bps) / (8 * PICOS_PER_SECOND))
            as u64
    }

    /// A frame of `frame_len` bytes arrives at `now_ns` (a monotonic clock): when does it leave?
    pub fn offer(&mut self, now_ns: u64, frame_len: u32) -> Verdict {
        self.counters.offered_frames += 1;
        self.counters.offered_bytes += u64::from(frame_len);
        if self.impairment.down {
            self.counters.dropped_down += 1;
            return Verdict::Drop;
        }
        let Some(on_wire_ns) = self.serialise(now_ns, frame_len) else {
            self.counters.dropped_queue += 1;
            return Verdict::Drop;
        };
        if self.impairment.loss.happens(&mut self.rng) {
            self.counters.dropped_random += 1;
            return Verdict::Drop;
        }
        if self.lost_in_burst() {
            self.counters.dropped_burst += 1;
            return Verdict::Drop;
        }
        let arrival = self.arrival(on_wire_ns);
        self.counters.passed_frames += 1;
        self.counters.passed_bytes += u64::from(frame_len);
        if self.impairment.duplicate.happens(&mut self.rng) {
            self.counters.duplicated += 1;
            Verdict::Duplicate(arrival, arrival)
        } else {
            Verdict::DeliverAt(arrival)
        }
    }

    /// Puts the frame on the wire after its predecessors: the time its last bit left, or `None`
    /// when the queue has no room for it.
    fn serialise(&mut self, now_ns: u64, frame_len: u32) -> Option<u64> {
        let rate = self.impairment.rate_bps;
        if rate == 0 {
            return Some(now_ns);
        }
        if self.queued_bytes(now_ns) + u64::from(frame_len) > self.impairment.queue_bytes {
            return None;
        }
        let now_ps = now_ns.saturating_mul(PICOS_PER_NANO);
        let start_ps = self.wire_free_at_ps.max(now_ps);
        let transmit_ps = (u128::from(frame_len) * 8 * PICOS_PER_SECOND / u128::from(rate)) as u64;
        self.wire_free_at_ps = start_ps.saturating_add(transmit_ps);
        Some(self.wire_free_at_ps / PICOS_PER_NANO)
    }

    /// Moves the Gilbert-Elliott chain one frame on; whether this frame is lost in a burst.
    fn lost_in_burst(&mut self) -> bool {
        let Some(burst) = self.impairment.burst_loss else {
            return false;
        };
        let leave = if self.in_burst { burst.r } else { burst.p };
        if leave.happens(&mut self.rng) {
            self.in_burst = !self.in_burst;
        }
        self.in_burst
    }

    /// When a frame whose last bit left at `on_wire_ns` arrives.
    fn arrival(&mut self, on_wire_ns: u64) -> u64 {
        let jitter = self.impairment.jitter_ns;
        let propagated = if jitter == 0 {
            on_wire_ns + self.impairment.delay_ns
        } else {
            // Uniform in [0, 2 * jitter], by multiply-and-shift as above.
            let span = 2 * jitter + 1;
            let draw = ((u128::from(self.rng.next_u64()) * u128::from(span)) >> 64) as u64;
            (on_wire_ns + self.impairment.delay_ns + draw).saturating_sub(jitter)
        };
        let in_order = propagated.max(self.last_in_order_ns);
        if self.impairment.reorder.happens(&mut self.rng) {
            // Not the FIFO floor: the frames after it may arrive before it.
            self.counters.reordered += 1;
            return in_order + self.impairment.reorder_delay_ns;
        }
        self.last_in_order_ns = in_order;
        in_order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MBIT: u64 = 1_000_000;

    /// Offers `count` frames of `len` bytes at once per `every_ns`, returning the verdicts.
    fn offer_paced(link: &mut ImpairedLink, count: u64, len: u32, every_ns: u64) -> Vec<Verdict> {
        (0..count).map(|i| link.offer(i * every_ns, len)).collect()
    }

    fn delivered(verdicts: &[Verdict]) -> Vec<u64> {
        verdicts
            .iter()
            .flat_map(|verdict| match *verdict {
                Verdict::Drop => vec![],
                Verdict::DeliverAt(at) => vec![at],
                Verdict::Duplicate(first, second) => vec![first, second],
            })
            .collect()
    }

    #[test]
    fn the_rate_is_honoured_within_one_percent_over_10000_frames() {
        for (rate, len) in [(80 * MBIT, 1514), (80 * MBIT, 64), (10_000 * MBIT, 64)] {
            let mut link = ImpairedLink::new(
                Impairment {
                    rate_bps: rate,
                    queue_bytes: u64::MAX,
                    ..Impairment::default()
                },
                1,
            );
            // Every frame arrives at once: the wire alone paces them.
            let verdicts = offer_paced(&mut link, 10_000, len, 0);
            let times = delivered(&verdicts);
            assert_eq!(times.len(), 10_000);
            let last = *times.last().unwrap();
            let bits = 10_000.0 * f64::from(len) * 8.0;
            let measured = bits / (last as f64 / 1e9);
            let error = (measured - rate as f64).abs() / rate as f64;
            assert!(error < 0.01, "{rate} bit/s, {len} B: {measured} ({error})");
        }
    }

    #[test]
    fn an_idle_link_sends_a_frame_after_its_serialisation_time_only() {
        let mut link = ImpairedLink::new(
            Impairment {
                rate_bps: 80 * MBIT,
                delay_ns: 10_000_000,
                queue_bytes: 1 << 20,
                ..Impairment::default()
            },
            1,
        );
        // 1500 bytes at 80 Mbit/s take 150 us.
        assert_eq!(link.offer(0, 1500), Verdict::DeliverAt(10_150_000));
        // A second one a second later finds the wire idle.
        assert_eq!(
            link.offer(1_000_000_000, 1500),
            Verdict::DeliverAt(1_010_150_000)
        );
    }

    #[test]
    fn random_loss_is_within_tolerance_for_a_seed() {
        let mut link = ImpairedLink::new(
            Impairment {
                loss: Probability::per_mille(5),
                ..Impairment::default()
            },
            7,
        );
        offer_paced(&mut link, 100_000, 100, 1000);
        let lost = link.counters().dropped_random;
        // Expected 500, standard deviation about 22: 4 sigma either way.
        assert!((410..=590).contains(&lost), "{lost} lost of 100,000");
        assert_eq!(link.counters().dropped(), lost);
        assert_eq!(link.counters().passed_frames, 100_000 - lost);
    }

    #[test]
    fn the_same_seed_gives_the_same_answers_and_another_seed_does_not() {
        let impairment = Impairment {
            jitter_ns: 1_000_000,
            delay_ns: 5_000_000,
            loss: Probability::per_mille(10),
            reorder: Probability::per_mille(10),
            reorder_delay_ns: 1_000_000,
            ..Impairment::default()
        };
        let run = |seed| offer_paced(&mut ImpairedLink::new(impairment, seed), 5000, 100, 10_000);
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn burst_loss_loses_in_runs_at_the_model_s_rate() {
        // p = 1 %, r = 25 %: stationary loss p / (p + r) = 3.85 %, mean burst 4 frames.
        let mut link = ImpairedLink::new(
            Impairment {
                burst_loss: Some(BurstLoss {
                    p: Probability::per_mille(10),
                    r: Probability::per_mille(250),
                }),
                ..Impairment::default()
            },
            11,
        );
        let verdicts = offer_paced(&mut link, 100_000, 100, 1000);
        let lost = link.counters().dropped_burst;
        assert!((3300..=4400).contains(&lost), "{lost} lost");
        let bursts = verdicts
            .windows(2)
            .filter(|pair| pair[0] != Verdict::Drop && pair[1] == Verdict::Drop)
            .count() as u64;
        let mean_burst = lost as f64 / bursts as f64;
        assert!((3.3..=4.7).contains(&mean_burst), "mean burst {mean_burst}");
    }

    #[test]
    fn jitter_without_reorder_never_reorders() {
        let mut link = ImpairedLink::new(
            Impairment {
                rate_bps: 80 * MBIT,
                delay_ns: 10_000_000,
                jitter_ns: 2_000_000,
                queue_bytes: u64::MAX,
                duplicate: Probability::per_mille(10),
                ..Impairment::default()
            },
            5,
        );
        let times = delivered(&offer_paced(&mut link, 10_000, 1000, 50_000));
        assert!(times.windows(2).all(|pair| pair[0] <= pair[1]));
        // The jitter did move frames: not every frame arrives exactly `delay` after leaving.
        let distinct_gaps: std::collections::BTreeSet<u64> =
            times.windows(2).map(|pair| pair[1] - pair[0]).collect();
        assert!(distinct_gaps.len() > 100);
    }

    #[test]
    fn reorder_holds_frames_back_so_that_later_ones_overtake_them() {
        let mut link = ImpairedLink::new(
            Impairment {
                delay_ns: 1_000_000,
                reorder: Probability::per_mille(10),
                reorder_delay_ns: 500_000,
                ..Impairment::default()
            },
            9,
        );
        let times = delivered(&offer_paced(&mut link, 10_000, 100, 10_000));
        let reordered = link.counters().reordered;
        assert!((60..=140).contains(&reordered), "{reordered}");
        // Each held frame is overtaken by the 49 or 50 sent within its extra 500 us, so it
        // arrives after its successor (two held frames in a row show as one such step).
        let overtaken = times.windows(2).filter(|pair| pair[0] > pair[1]).count() as u64;
        assert!(
            overtaken <= reordered && overtaken + 3 >= reordered,
            "{overtaken}"
        );
    }

    #[test]
    fn duplicates_are_counted_and_delivered_twice() {
        let mut link = ImpairedLink::new(
            Impairment {
                duplicate: Probability::per_mille(20),
                ..Impairment::default()
            },
            13,
        );
        let verdicts = offer_paced(&mut link, 50_000, 100, 1000);
        let twice = verdicts
            .iter()
            .filter(|verdict| matches!(verdict, Verdict::Duplicate(..)))
            .count() as u64;
        assert_eq!(twice, link.counters().duplicated);
        // Expected 1000, standard deviation about 31.
        assert!((870..=1130).contains(&twice), "{twice}");
        assert_eq!(delivered(&verdicts).len() as u64, 50_000 + twice);
    }

    #[test]
    fn a_link_that_is_down_drops_everything_until_it_is_restored() {
        let mut link = ImpairedLink::new(
            Impairment {
                down: true,
                ..Impairment::default()
            },
            1,
        );
        let verdicts = offer_paced(&mut link, 1000, 100, 1000);
        assert!(verdicts.iter().all(|verdict| *verdict == Verdict::Drop));
        assert_eq!(link.counters().dropped_down, 1000);
        link.set_down(false);
        assert_eq!(link.offer(2_000_000, 100), Verdict::DeliverAt(2_000_000));
    }

    #[test]
    fn the_queue_is_bounded_in_bytes_and_tail_drops_are_counted() {
        let mut link = ImpairedLink::new(
            Impairment {
                rate_bps: 8 * MBIT, // 1 byte per microsecond
                queue_bytes: 10_000,
                ..Impairment::default()
            },
            1,
        );
        // 100 frames of 1000 bytes at once: 10 fit, the rest are dropped.
        let verdicts = offer_paced(&mut link, 100, 1000, 0);
        let passed = verdicts.iter().filter(|v| **v != Verdict::Drop).count();
        assert_eq!(passed, 10);
        assert_eq!(link.counters().dropped_queue, 90);
        assert_eq!(link.queued_bytes(0), 10_000);
        // After 1 ms the wire took 1000 bytes: room for one more frame, not two.
        assert_ne!(link.offer(1_000_000, 1000), Verdict::Drop);
        assert_eq!(link.offer(1_000_000, 1000), Verdict::Drop);
    }
}
