//! Connection sides in TIME-WAIT, kept apart from the connections (RFC 9293 section 3.6.1).
//!
//! A connection whose sides are all closed or in TIME-WAIT releases its slot, its MPTCP token
//! and its buffers at once; what TIME-WAIT still has to do, acknowledging a retransmitted FIN
//! and keeping old duplicates of the four-tuple away, needs a few words per side, held here
//! until the 2 MSL timer runs out. The table is bounded: when it is full a side that would
//! enter TIME-WAIT is closed at once and counted, as Linux does past `tcp_max_tw_buckets`.
//!
//! Backend connections churn through source ports: mpterm is the active closer toward the
//! backend whenever the client closes first. A port whose TIME-WAIT used timestamps may be
//! reused for a new connection to the same backend once the entry is a second old (RFC 6191,
//! Linux's `tcp_tw_reuse`): the new SYN's sequence number starts beyond the old connection's,
//! and its timestamps are newer, so the peer tells old duplicates from new segments.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use hashbrown::HashMap;
use mpterm_wire::SeqNumber;

use crate::Instant;
use core::net::SocketAddr;
use core::time::Duration;

/// How old a TIME-WAIT entry must be before its four-tuple is reused: one second, as Linux
/// (`tcp_twsk_unique`), so that the new connection's millisecond timestamps are beyond the
/// old one's on any peer clock of at least 1 Hz (RFC 7323 section 5.4).
pub const REUSE_AFTER: Duration = Duration::from_secs(1);

/// A TCP flow as seen from the appliance: our address and port, then the peer's.
pub type FlowKey = (SocketAddr, SocketAddr);

/// What TIME-WAIT remembers of a connection side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWaitEntry {
    pub interface: usize,
    /// When the entry was made and when it ends.
    pub entered: Instant,
    pub expires: Instant,
    /// Our sequence number after our FIN (SND.NXT), for the ACK of a retransmitted FIN.
    pub send_next: SeqNumber,
    /// The peer's sequence number after its FIN (RCV.NXT).
    pub receive_next: SeqNumber,
    /// The window field of our last segment.
    pub window: u16,
    /// The peer's last timestamp, when timestamps were in use (RFC 7323).
    pub ts_recent: Option<u32>,
}

/// The TIME-WAIT entries, with their expiry order.
#[derive(Debug)]
pub struct TimeWaitTable {
    entries: HashMap<FlowKey, TimeWaitEntry>,
    /// Every entry's expiry, earliest first. Sides enter TIME-WAIT before their connection is
    /// released, so the entries do not arrive in expiry order. An entry removed early (reused)
    /// leaves a stale key here, skipped on expiry; when stale keys outnumber the live entries
    /// the heap is rebuilt, so it never holds more than twice the table (plus a little).
    expiry: BinaryHeap<Reverse<(Instant, FlowKey)>>,
    capacity: usize,
}

/// Stale expiry keys tolerated beyond the live entries before the heap is rebuilt.
const STALE_KEY_SLACK: usize = 1024;

impl TimeWaitTable {
    /// A table of at most `capacity` entries, sized for them now so that it never rehashes
    /// under load (the expiry heap holds at most twice the table plus the slack).
    pub fn new(capacity: usize) -> Self {
        TimeWaitTable {
            entries: HashMap::with_capacity(capacity),
            expiry: BinaryHeap::with_capacity(2 * capacity + STALE_KEY_SLACK),
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Keeps `entry` for `flow`; false when the table is full (the caller closes the side
    /// at once).
    pub fn insert(&mut self, flow: FlowKey, entry: TimeWaitEntry) -> bool {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&flow) {
            return false;
        }
        self.entries.insert(flow, entry);
        self.expiry.push(Reverse((entry.expires, flow)));
        if self.expiry.len() > 2 * self.entries.len() + STALE_KEY_SLACK {
            let entries = &self.entries;
            self.expiry
                .retain(|Reverse((expires, flow))| is_live(entries, flow, *expires));
        }
        true
    }

    pub fn get(&self, flow: &FlowKey) -> Option<&TimeWaitEntry> {
        self.entries.get(flow)
    }

    pub fn contains(&self, flow: &FlowKey) -> bool {
        self.entries.contains_key(flow)
    }

    pub fn remove(&mut self, flow: &FlowKey) -> Option<TimeWaitEntry> {
        self.entries.remove(flow)
    }

    /// Whether a new connection may take over `flow` at `now` (RFC 6191): the old one used
    /// timestamps and its TIME-WAIT has lasted [`REUSE_AFTER`].
    pub fn reusable(&self, flow: &FlowKey, now: Instant) -> bool {
        self.entries
            .get(flow)
            .is_some_and(|entry| entry.ts_recent.is_some() && now - entry.entered >= REUSE_AFTER)
    }

    /// When the earliest entry ends (perhaps a stale key: the call then finds nothing).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.expiry.peek().map(|Reverse((expires, _))| *expires)
    }

    /// Removes every entry whose time is up at `now`; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut expired = 0;
        while let Some(&Reverse((expires, flow))) = self.expiry.peek() {
            if expires > now {
                break;
            }
            self.expiry.pop();
            if is_live(&self.entries, &flow, expires) {
                self.entries.remove(&flow);
                expired += 1;
            }
        }
        expired
    }

    /// Expiry keys held, live and stale (for tests of the bound).
    #[cfg(test)]
    pub fn expiry_keys(&self) -> usize {
        self.expiry.len()
    }
}

/// Whether an expiry key still belongs to its entry: a stale one (the entry was reused or
/// replaced) has another expiry.
fn is_live(entries: &HashMap<FlowKey, TimeWaitEntry>, flow: &FlowKey, expires: Instant) -> bool {
    entries
        .get(flow)
        .is_some_and(|entry| entry.expires == expires)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, SocketAddrV4};

    fn flow(port: u16) -> FlowKey {
        (
            SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 1), port).into(),
            SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 2), 6000).into(),
        )
    }

    fn entry(entered: u64, ts: bool) -> TimeWaitEntry {
        let entered = Instant::from_nanos(entered * 1_000_000_000);
        TimeWaitEntry {
            interface: 1,
            entered,
            expires: entered + Duration::from_secs(60),
            send_next: SeqNumber(1),
            receive_next: SeqNumber(2),
            window: 100,
            ts_recent: ts.then_some(7),
        }
    }

    #[test]
    fn entries_expire_in_order_and_reused_ones_are_skipped() {
        let mut table = TimeWaitTable::new(3);
        assert!(table.insert(flow(1), entry(0, true)));
        assert!(table.insert(flow(2), entry(1, true)));
        assert!(table.insert(flow(3), entry(2, false)));
        assert!(!table.insert(flow(4), entry(3, true)), "the table is full");
        assert_eq!(table.len(), 3);
        // Reuse of flow 1 removes it; a later entry for the same flow replaces it.
        assert!(table.remove(&flow(1)).is_some());
        assert!(table.insert(flow(1), entry(30, true)));
        assert_eq!(
            table.poll_timeout(),
            Some(Instant::from_nanos(60_000_000_000))
        );
        assert_eq!(
            table.expire(Instant::from_nanos(61_000_000_000)),
            1,
            "flow 2"
        );
        assert!(
            table.contains(&flow(1)),
            "the stale key of the first flow 1 was skipped"
        );
        assert!(table.contains(&flow(3)));
        assert_eq!(table.expire(Instant::from_nanos(100_000_000_000)), 2);
        assert_eq!(table.len(), 0);
        assert_eq!(table.poll_timeout(), None);
    }

    #[test]
    fn entries_expire_by_deadline_even_when_they_arrive_out_of_order() {
        let mut table = TimeWaitTable::new(8);
        table.insert(flow(1), entry(20, true));
        table.insert(flow(2), entry(5, true));
        assert_eq!(
            table.poll_timeout(),
            Some(Instant::from_nanos(65_000_000_000))
        );
        assert_eq!(table.expire(Instant::from_nanos(66_000_000_000)), 1);
        assert!(table.contains(&flow(1)));
    }

    #[test]
    fn reuse_churn_keeps_the_expiry_keys_bounded() {
        // Reviewed: every reuse left a stale key behind, so at 16,384 reuses a second the
        // heap grew to a million keys with a table of 16,384 entries.
        let mut table = TimeWaitTable::new(100);
        for round in 0..10_000u64 {
            let port = (round % 100) as u16;
            table.remove(&flow(port));
            assert!(table.insert(flow(port), entry(round, true)));
        }
        assert_eq!(table.len(), 100);
        assert!(table.expiry_keys() <= 2 * 100 + STALE_KEY_SLACK + 1);
    }

    #[test]
    fn only_timestamped_entries_a_second_old_are_reusable() {
        let mut table = TimeWaitTable::new(8);
        table.insert(flow(1), entry(10, true));
        table.insert(flow(2), entry(10, false));
        let early = Instant::from_nanos(10_500_000_000);
        let later = Instant::from_nanos(11_000_000_000);
        assert!(!table.reusable(&flow(1), early));
        assert!(table.reusable(&flow(1), later));
        assert!(!table.reusable(&flow(2), later), "no timestamps, no reuse");
        assert!(!table.reusable(&flow(3), later), "no entry");
    }
}
