//! Pacing: data segments leave at a rate the congestion window and the RTT set, not in
//! window-sized bursts (issue 8; Linux's `sk_pacing_rate` from `tcp_update_pacing_rate`).
//!
//! A burst of a whole window sent back to back at the worker's line rate overflows a shallow
//! access buffer further on (a DSL or LTE link a hundred times slower), and the losses it
//! causes are the ones slow start makes at its end. The rate is the window over the smoothed
//! RTT, times 2 in slow start (so the window can still double each round trip) and 1.2 in
//! congestion avoidance (Linux's `tcp_pacing_ss_ratio` and `tcp_pacing_ca_ratio`).
//!
//! The pacer keeps an earliest departure time: each data segment pushes it on by its length
//! at the rate, from now or from where it was if that is later. A segment may leave while the
//! departure time is at most [`PACING_HORIZON`] ahead of now, so data still leaves in bursts
//! of about a millisecond's worth (Linux's TSO autosizing aims at the same), and the worker
//! needs no timer finer than that. When data waits for the pacer, its departure time is a
//! deadline of the control block like any other timer: the worker sleeps until it, it does
//! not spin. Pure ACKs, SYNs, FINs without data and RSTs are never paced. Before the first
//! RTT sample nothing is paced (the initial window goes at once, as in Linux).

use super::*;

/// How far ahead of now the departure time may be for a segment to leave.
pub(super) const PACING_HORIZON: Duration = Duration::from_millis(1);
/// Rate over window / SRTT in slow start and in congestion avoidance, in percent.
const SLOW_START_RATIO_PERCENT: u64 = 200;
const AVOIDANCE_RATIO_PERCENT: u64 = 120;

/// The earliest departure time of the next data segment, and whether data waits for it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Pacer {
    next_departure: Option<Instant>,
    /// Data was held back: the departure time (less the horizon) is a deadline.
    waiting: bool,
}

impl Pacer {
    /// Whether a data segment may leave at `now`.
    fn allows(&self, now: Instant) -> bool {
        self.next_departure
            .is_none_or(|departure| departure <= now + PACING_HORIZON)
    }

    /// Forgets the departure time and any data held: nothing is left to pace.
    pub(super) fn clear(&mut self) {
        *self = Pacer::default();
    }

    /// When the data held back may leave.
    pub(super) fn deadline(&self) -> Option<Instant> {
        if !self.waiting {
            return None;
        }
        self.next_departure.map(|departure| {
            Instant::from_nanos(
                departure
                    .as_nanos()
                    .saturating_sub(PACING_HORIZON.as_nanos() as u64),
            )
        })
    }
}

impl<P: Payload> Tcb<P> {
    /// The pacing rate in bytes per second, or `None` (no pacing) before an RTT is known or
    /// when pacing is off.
    fn pacing_rate(&self) -> Option<u64> {
        if !self.tuning.pacing {
            return None;
        }
        let srtt = self.rtt.smoothed()?.as_nanos().max(1);
        // In loss recovery PRR decides what is sent and the window of NewReno's fast recovery
        // (deflated by every partial ACK) says nothing of the path: the threshold recovery
        // aims at does.
        let (window, ratio) = if self.in_loss_recovery() {
            (
                self.congestion.slow_start_threshold(),
                AVOIDANCE_RATIO_PERCENT,
            )
        } else if self.congestion.window() < self.congestion.slow_start_threshold() {
            (self.congestion.window(), SLOW_START_RATIO_PERCENT)
        } else {
            (self.congestion.window(), AVOIDANCE_RATIO_PERCENT)
        };
        let window = u64::from(window);
        let rate = u128::from(window) * u128::from(ratio) * 1_000_000_000 / 100 / srtt;
        Some(rate.clamp(1, u128::from(u64::MAX)) as u64)
    }

    /// Whether pacing lets a data segment go now; if not, the pacer's deadline wakes the
    /// connection when it may.
    pub(super) fn pacing_allows(&mut self, now: Instant) -> bool {
        if self.pacer.allows(now) {
            self.pacer.waiting = false;
            return true;
        }
        self.pacer.waiting = true;
        self.counters.pacing_delays += 1;
        false
    }

    /// A data segment of `len` bytes left at `now`: the next may leave `len` at the rate
    /// later.
    pub(super) fn note_paced(&mut self, now: Instant, len: usize) {
        let Some(rate) = self.pacing_rate() else {
            self.pacer.next_departure = None;
            return;
        };
        let from = self
            .pacer
            .next_departure
            .map_or(now, |departure| departure.max(now));
        let interval_ns =
            (len as u128 * 1_000_000_000 / u128::from(rate)).min(u128::from(u64::MAX)) as u64;
        self.pacer.next_departure = Some(from + Duration::from_nanos(interval_ns));
    }

    /// The pacer's timer fired: the data it held may go (the owner polls again).
    pub(super) fn on_pacing_timeout(&mut self) {
        self.pacer.waiting = false;
    }
}
