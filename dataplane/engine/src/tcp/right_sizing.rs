//! Receive-buffer autotuning by dynamic right-sizing, as Linux does it (`tcp_rcv_space_adjust`,
//! `tcp_rcv_rtt_measure` and `tcp_rcv_rtt_measure_ts` in net/ipv4/tcp_input.c, and
//! `mptcp_rcv_space_adjust` for the MPTCP data level).
//!
//! A connection side starts with a small receive buffer and, once per receiver RTT, looks at
//! how many bytes its owner read in that RTT: a side whose owner drains it fast needs about
//! twice that in flight (the sender's next round, and a loss to recover), more while the rate
//! still climbs; a side read slowly keeps its small buffer. The buffer only grows, up to the
//! configured maximum, so the memory a connection holds is still bounded by that maximum
//! (ARCHITECTURE.md, "Memory is bounded"), and the window's right edge never moves left.
//!
//! [`ReceiveBufferSizing`] decides the size from the bytes read; [`ReceiverRtt`] estimates the
//! RTT the receiver sees, from the echoes of our timestamps or, without timestamps, from the
//! time a window's worth of data takes to arrive. Both are pure: time is handed in.

use core::time::Duration;

use mpterm_wire::SeqNumber;

use crate::{Instant, TcpTuning};

/// Segments of data assumed read in the round before the first measurement (Linux starts from
/// `TCP_INIT_CWND` segments): the first round must read more than the sender's initial window
/// for the buffer to grow.
const INITIAL_ROUND_SEGMENTS: usize = 10;

/// The receive buffer of one connection side (or of an MPTCP connection's data level): its
/// current size and the measurement that grows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveBufferSizing {
    size: usize,
    maximum: usize,
    autotuning: bool,
    /// Bytes the owner read since `round_start`.
    read_this_round: usize,
    /// Bytes read in the last round that was larger than the one before it (Linux's
    /// `rcvq_space.space`): a round must beat it for the buffer to grow.
    best_round: usize,
    /// When the current round began; `None` until the first data arrives.
    round_start: Option<Instant>,
}

impl ReceiveBufferSizing {
    /// A buffer of `maximum` bytes at most. With `autotuning` it starts at `initial` (clamped
    /// to the maximum) and grows; without, it is `maximum` from the start.
    pub fn new(initial: usize, maximum: usize, autotuning: bool) -> Self {
        let size = if autotuning {
            initial.min(maximum)
        } else {
            maximum
        };
        ReceiveBufferSizing {
            size,
            maximum,
            autotuning,
            read_this_round: 0,
            best_round: 0,
            round_start: None,
        }
    }

    /// The receive buffer `tuning` configures for a connection side.
    pub fn for_tuning(tuning: &TcpTuning) -> Self {
        ReceiveBufferSizing::new(
            tuning.receive_buffer_initial as usize,
            tuning.receive_buffer as usize,
            tuning.receive_buffer_autotuning,
        )
    }

    /// The buffer's current size in bytes: what may be advertised and held.
    pub fn size(&self) -> usize {
        self.size
    }

    pub fn maximum(&self) -> usize {
        self.maximum
    }

    /// The buffer may still grow.
    pub fn is_tuning(&self) -> bool {
        self.autotuning && self.size < self.maximum
    }

    /// The owner took `bytes` out of the buffer.
    pub fn note_read(&mut self, bytes: usize) {
        if self.is_tuning() {
            self.read_this_round = self.read_this_round.saturating_add(bytes);
        }
    }

    /// Ends the current round if it lasted `rtt` (the receiver's RTT estimate) and grows the
    /// buffer from what was read in it; `segment` is the size of one full segment. Returns
    /// the new size when it grew.
    ///
    /// The new size is twice the bytes read in the round, and twice more the relative growth
    /// over the best round before (a sender in slow start doubles each round, and the window
    /// we advertise now is used a round later), as Linux's `tcp_rcv_space_adjust`.
    pub fn end_round(
        &mut self,
        now: Instant,
        rtt: Option<Duration>,
        segment: usize,
    ) -> Option<usize> {
        if !self.is_tuning() {
            return None;
        }
        let Some(start) = self.round_start else {
            self.start_round(now, segment);
            return None;
        };
        let rtt = rtt?;
        if now.saturating_since(start) < rtt {
            return None;
        }
        let read = core::mem::take(&mut self.read_this_round);
        self.round_start = Some(now);
        if read <= self.best_round {
            return None;
        }
        let previous = self.best_round.max(1) as u64;
        let read = read as u64;
        let window = read.saturating_mul(2);
        let growth = window.saturating_mul(read - previous) / previous;
        let target = window.saturating_add(growth.saturating_mul(2));
        self.best_round = read as usize;
        let target = target.min(self.maximum as u64) as usize;
        if target <= self.size {
            return None;
        }
        self.size = target;
        Some(target)
    }

    /// The first round begins (Linux's `tcp_init_buffer_space`): the sender's initial window
    /// is taken as what was read before it.
    fn start_round(&mut self, now: Instant, segment: usize) {
        self.round_start = Some(now);
        self.read_this_round = 0;
        self.best_round = self.size.min(INITIAL_ROUND_SEGMENTS * segment.max(1));
    }

    /// Sets the size from outside: an MPTCP subflow's buffer follows its connection's data
    /// level (RFC 8684 section 3.3.4), which tunes itself; this one then no longer does. The
    /// size only grows, and never beyond the maximum.
    pub fn follow(&mut self, size: usize) {
        self.autotuning = false;
        self.size = self.size.max(size.min(self.maximum));
    }
}

/// The RTT as the receiver sees it (Linux's `rcv_rtt_est`), for a side that may only ever send
/// ACKs and so never times a segment of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceiverRtt {
    estimate: Option<Duration>,
    /// The last timestamp echo a sample was taken from: one sample per echo value.
    last_echo: Option<u32>,
    /// Without timestamps: the sequence number one window beyond RCV.NXT and when that window
    /// was offered; once RCV.NXT passes it, a window's worth arrived in about one RTT.
    window_mark: Option<(SeqNumber, Instant)>,
}

impl ReceiverRtt {
    pub fn estimate(&self) -> Option<Duration> {
        self.estimate
    }

    /// A data segment of `len` bytes echoed `echo` (the timestamp clock, milliseconds, RFC 7323
    /// section 4): the time since we sent that value is one RTT sample, smoothed by 1/8. Only
    /// full segments count (`segment`), once per echo value, and a zero difference is one
    /// clock tick, as in Linux's `tcp_rcv_rtt_measure_ts`.
    pub fn on_timestamp_echo(&mut self, now: Instant, echo: u32, len: usize, segment: usize) {
        if echo == 0 || self.last_echo == Some(echo) || len < segment {
            return;
        }
        self.last_echo = Some(echo);
        let elapsed_ms = now.timestamp_millis().wrapping_sub(echo);
        // An echo from the future, or older than a minute, is no sample.
        if elapsed_ms > 60_000 {
            return;
        }
        let sample = Duration::from_millis(u64::from(elapsed_ms.max(1)));
        self.estimate = Some(match self.estimate {
            Some(estimate) => (estimate * 7 + sample) / 8,
            None => sample,
        });
    }

    /// Without timestamps: RCV.NXT moved to `receive_next` with `window` bytes offered. When a
    /// whole window offered at the mark has arrived, the time it took is a sample, and the
    /// estimate keeps the smallest (a sender that paused makes a sample too long, never too
    /// short), as Linux's `tcp_rcv_rtt_measure`.
    pub fn on_window_progress(&mut self, now: Instant, receive_next: SeqNumber, window: usize) {
        if let Some((mark, since)) = self.window_mark {
            if receive_next.distance_from(mark) < 0 {
                return;
            }
            let sample = now.saturating_since(since).max(Duration::from_micros(1));
            self.estimate = Some(
                self.estimate
                    .map_or(sample, |estimate| estimate.min(sample)),
            );
        }
        self.window_mark = Some((receive_next + window as u32, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1448;
    const RTT: Duration = Duration::from_millis(100);

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn a_round_read_fast_grows_the_buffer_to_twice_and_more() {
        let mut sizing = ReceiveBufferSizing::new(128 * 1024, 6 << 20, true);
        assert_eq!(
            sizing.end_round(at(0), Some(RTT), MSS),
            None,
            "first round begins"
        );
        sizing.note_read(128 * 1024);
        assert_eq!(
            sizing.end_round(at(50), Some(RTT), MSS),
            None,
            "half an RTT"
        );
        let grown = sizing.end_round(at(100), Some(RTT), MSS).expect("grows");
        // Read 128 KiB against 10 segments before: 2 x read plus twice the relative growth.
        assert!(grown >= 2 * 128 * 1024, "{grown}");
        assert_eq!(sizing.size(), grown);
    }

    #[test]
    fn a_round_read_slowly_keeps_the_buffer() {
        let mut sizing = ReceiveBufferSizing::new(128 * 1024, 6 << 20, true);
        sizing.end_round(at(0), Some(RTT), MSS);
        for round in 1..=20 {
            sizing.note_read(8 * MSS);
            assert_eq!(sizing.end_round(at(round * 100), Some(RTT), MSS), None);
        }
        assert_eq!(sizing.size(), 128 * 1024);
    }

    #[test]
    fn growth_stops_at_the_maximum_and_then_measures_nothing() {
        let mut sizing = ReceiveBufferSizing::new(64 * 1024, 1 << 20, true);
        sizing.end_round(at(0), Some(RTT), MSS);
        let mut read = 64 * 1024;
        for round in 1..=10 {
            sizing.note_read(read);
            sizing.end_round(at(round * 100), Some(RTT), MSS);
            assert!(sizing.size() <= 1 << 20);
            read *= 2;
        }
        assert_eq!(sizing.size(), 1 << 20);
        assert!(!sizing.is_tuning());
    }

    #[test]
    fn without_autotuning_the_buffer_is_the_maximum() {
        let mut sizing = ReceiveBufferSizing::new(64 * 1024, 1 << 20, false);
        assert_eq!(sizing.size(), 1 << 20);
        sizing.end_round(at(0), Some(RTT), MSS);
        sizing.note_read(1 << 20);
        assert_eq!(sizing.end_round(at(100), Some(RTT), MSS), None);
    }

    #[test]
    fn no_round_ends_without_an_rtt_estimate() {
        let mut sizing = ReceiveBufferSizing::new(64 * 1024, 1 << 20, true);
        sizing.end_round(at(0), None, MSS);
        sizing.note_read(1 << 20);
        assert_eq!(sizing.end_round(at(10_000), None, MSS), None);
        assert!(sizing.end_round(at(10_000), Some(RTT), MSS).is_some());
    }

    #[test]
    fn a_follower_only_grows_and_stays_within_its_maximum() {
        let mut sizing = ReceiveBufferSizing::new(64 * 1024, 1 << 20, true);
        sizing.follow(512 * 1024);
        assert_eq!(sizing.size(), 512 * 1024);
        sizing.follow(128 * 1024);
        assert_eq!(sizing.size(), 512 * 1024, "never shrinks");
        sizing.follow(8 << 20);
        assert_eq!(sizing.size(), 1 << 20);
        assert!(!sizing.is_tuning());
    }

    #[test]
    fn timestamp_echoes_give_a_smoothed_rtt_once_per_echo() {
        let mut rtt = ReceiverRtt::default();
        rtt.on_timestamp_echo(at(1100), 1000, MSS, MSS);
        assert_eq!(rtt.estimate(), Some(Duration::from_millis(100)));
        // The same echo again, and a runt segment, are no samples.
        rtt.on_timestamp_echo(at(1500), 1000, MSS, MSS);
        rtt.on_timestamp_echo(at(1500), 1200, 100, MSS);
        assert_eq!(rtt.estimate(), Some(Duration::from_millis(100)));
        rtt.on_timestamp_echo(at(1380), 1200, MSS, MSS);
        // 7/8 x 100 + 1/8 x 180 = 110 ms.
        assert_eq!(rtt.estimate(), Some(Duration::from_millis(110)));
        // An echo from the future is ignored.
        rtt.on_timestamp_echo(at(1400), 2000, MSS, MSS);
        assert_eq!(rtt.estimate(), Some(Duration::from_millis(110)));
    }

    #[test]
    fn without_timestamps_a_window_arriving_is_a_sample_and_the_least_is_kept() {
        let mut rtt = ReceiverRtt::default();
        rtt.on_window_progress(at(0), SeqNumber(1000), 10_000);
        rtt.on_window_progress(at(50), SeqNumber(6000), 10_000);
        assert_eq!(rtt.estimate(), None, "the window has not arrived yet");
        rtt.on_window_progress(at(120), SeqNumber(11_000), 10_000);
        assert_eq!(rtt.estimate(), Some(Duration::from_millis(120)));
        rtt.on_window_progress(at(400), SeqNumber(21_000), 10_000);
        assert_eq!(
            rtt.estimate(),
            Some(Duration::from_millis(120)),
            "the least is kept"
        );
    }
}
