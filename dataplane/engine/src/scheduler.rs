//! Which subflow carries the next data toward the client (RFC 8684 section 3.3.8 leaves the
//! policy to the sender).
//!
//! A scheduler sees each usable subflow as a [`Candidate`] and picks one; the connection then
//! gives it one segment's worth of data and asks again. The policies:
//!
//! - [`LowestRtt`], the default, as Linux's default scheduler (`mptcp_subflow_get_send` in
//!   net/mptcp/protocol.c): among the subflows with room in their congestion window, the one
//!   whose data would arrive earliest (queued bytes over its rate plus its round trip), which
//!   for idle subflows is the lowest RTT; backup subflows only when no other works.
//! - [`RoundRobin`]: the next subflow with room, in turn; backups likewise only as a last
//!   resort.
//!
//! A scheduler holds no reference to the connection: the same data in, the same choice out.

use core::time::Duration;

/// What a scheduler knows of one subflow that could take data now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Candidate {
    /// The subflow's index in its connection.
    pub index: usize,
    /// The peer asked that it be used only when no other works (section 3.3.8).
    pub backup: bool,
    /// Smoothed RTT; `None` before the first sample.
    pub rtt: Option<Duration>,
    /// Congestion window in bytes.
    pub congestion_window: u32,
    /// Bytes queued on it and not yet acknowledged.
    pub queued: usize,
    /// Bytes it may still take now (`Tcb::send_room`); candidates always have some.
    pub room: usize,
}

impl Candidate {
    /// When a byte queued now would reach the peer, in nanoseconds: the queue ahead of it at
    /// the subflow's rate (a window per round trip), plus half a round trip.
    fn estimated_delivery_nanos(&self) -> u128 {
        let rtt = self.rtt.unwrap_or(UNMEASURED_RTT).as_nanos().max(1);
        let window = u128::from(self.congestion_window.max(1));
        self.queued as u128 * rtt / window + rtt / 2
    }
}

/// What an unmeasured subflow is assumed to take: a fresh join is tried, but behind subflows
/// known to be fast.
const UNMEASURED_RTT: Duration = Duration::from_millis(100);

/// Picks the subflow for the next segment toward the client.
pub trait Scheduler {
    /// The index (into `candidates`) of the subflow to use, or `None` to send nothing now.
    /// `candidates` holds only subflows with room, established and not stale.
    fn pick(&mut self, candidates: &[Candidate]) -> Option<usize>;
}

/// The configured policy, dispatched without indirection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchedulerKind {
    #[default]
    LowestRtt,
    RoundRobin,
}

/// The scheduler of one connection, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionScheduler {
    LowestRtt(LowestRtt),
    RoundRobin(RoundRobin),
}

impl ConnectionScheduler {
    pub fn new(kind: SchedulerKind) -> Self {
        match kind {
            SchedulerKind::LowestRtt => ConnectionScheduler::LowestRtt(LowestRtt),
            SchedulerKind::RoundRobin => ConnectionScheduler::RoundRobin(RoundRobin::default()),
        }
    }
}

impl Scheduler for ConnectionScheduler {
    fn pick(&mut self, candidates: &[Candidate]) -> Option<usize> {
        match self {
            ConnectionScheduler::LowestRtt(scheduler) => scheduler.pick(candidates),
            ConnectionScheduler::RoundRobin(scheduler) => scheduler.pick(candidates),
        }
    }
}

/// Section 3.3.8: backup subflows carry data only when no regular subflow can.
fn preferred(candidates: &[Candidate]) -> impl Iterator<Item = (usize, &Candidate)> {
    let any_regular = candidates.iter().any(|candidate| !candidate.backup);
    candidates
        .iter()
        .enumerate()
        .filter(move |(_, candidate)| !(any_regular && candidate.backup))
}

/// The subflow whose data arrives earliest: the lowest RTT while queues are short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LowestRtt;

impl Scheduler for LowestRtt {
    fn pick(&mut self, candidates: &[Candidate]) -> Option<usize> {
        preferred(candidates)
            .min_by_key(|(_, candidate)| (candidate.estimated_delivery_nanos(), candidate.index))
            .map(|(position, _)| position)
    }
}

/// Each subflow with room in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoundRobin {
    last: Option<usize>,
}

impl Scheduler for RoundRobin {
    fn pick(&mut self, candidates: &[Candidate]) -> Option<usize> {
        let after_last = |index: usize| self.last.is_none_or(|last| index > last);
        let choice = preferred(candidates)
            .filter(|(_, candidate)| after_last(candidate.index))
            .min_by_key(|(_, candidate)| candidate.index)
            .or_else(|| preferred(candidates).min_by_key(|(_, candidate)| candidate.index))?;
        self.last = Some(choice.1.index);
        Some(choice.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(index: usize, rtt_ms: u64, window: u32, queued: usize) -> Candidate {
        Candidate {
            index,
            backup: false,
            rtt: Some(Duration::from_millis(rtt_ms)),
            congestion_window: window,
            queued,
            room: 1448,
        }
    }

    #[test]
    fn idle_subflows_go_by_lowest_rtt() {
        let candidates = [candidate(0, 40, 14_480, 0), candidate(1, 10, 14_480, 0)];
        assert_eq!(LowestRtt.pick(&candidates), Some(1));
    }

    #[test]
    fn a_fast_path_with_a_long_queue_gives_way_to_an_idle_slow_one() {
        // 10 ms path with ten windows queued: its next byte arrives after ~100 ms; the idle
        // 40 ms path delivers in ~20 ms.
        let fast = candidate(0, 10, 14_480, 144_800);
        let slow = candidate(1, 40, 14_480, 0);
        assert_eq!(LowestRtt.pick(&[fast, slow]), Some(1));
        // With a short queue the fast path still wins.
        let fast = candidate(0, 10, 14_480, 14_480);
        assert_eq!(LowestRtt.pick(&[fast, slow]), Some(0));
    }

    #[test]
    fn backups_carry_data_only_when_nothing_else_can() {
        let mut backup = candidate(0, 1, 14_480, 0);
        backup.backup = true;
        let regular = candidate(1, 50, 14_480, 0);
        assert_eq!(LowestRtt.pick(&[backup, regular]), Some(1));
        assert_eq!(RoundRobin::default().pick(&[backup, regular]), Some(1));
        assert_eq!(LowestRtt.pick(&[backup]), Some(0));
        assert_eq!(LowestRtt.pick(&[]), None);
    }

    #[test]
    fn round_robin_takes_turns() {
        let candidates = [
            candidate(0, 10, 14_480, 0),
            candidate(2, 10, 14_480, 0),
            candidate(5, 10, 14_480, 0),
        ];
        let mut scheduler = RoundRobin::default();
        let picks: Vec<_> = (0..4)
            .map(|_| candidates[scheduler.pick(&candidates).unwrap()].index)
            .collect();
        assert_eq!(picks, [0, 2, 5, 0]);
    }
}
