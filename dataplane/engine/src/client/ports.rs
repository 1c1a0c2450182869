//! The client's local ports: which connection uses each, and which wait out TIME-WAIT.
//!
//! Every connection goes to the one server, so the local port alone names a flow: the table
//! is an array indexed by port, sized once from the configured range, and finding a segment's
//! connection is an index, not a hash. A connection released in TIME-WAIT leaves a few words
//! here (RFC 9293 section 3.6.1) to acknowledge a retransmitted FIN and keep the port from
//! being reused too early; with timestamps a port may be taken over after one second (RFC
//! 6191, Linux's `tcp_tw_reuse`).

use std::collections::VecDeque;

use crate::time_wait::{TimeWaitEntry, REUSE_AFTER};
use crate::Instant;

/// What one local port is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PortUse {
    Free,
    /// The slot of the connection that holds it.
    Connection(u32),
    TimeWait(TimeWaitEntry),
}

#[derive(Debug)]
pub(crate) struct PortTable {
    first: u16,
    ports: Vec<PortUse>,
    /// Where the search for a free port goes on.
    next: usize,
    /// `(expires, port)` in the order entries were made. A connection enters TIME-WAIT before
    /// its slot is given back (the application may still be reading), so a later entry may
    /// expire a little earlier than one before it: it is then removed with that one, slightly
    /// late, never early. An entry reused or replaced leaves a stale key, skipped on expiry.
    expiry: VecDeque<(Instant, u16)>,
    time_wait: usize,
}

impl PortTable {
    /// A table for the ports `first..=last` (a non-empty range).
    pub(crate) fn new(first: u16, last: u16, start: usize) -> Self {
        let count = usize::from(last.saturating_sub(first)) + 1;
        PortTable {
            first,
            ports: vec![PortUse::Free; count],
            next: start % count,
            // Room for every port twice over: stale keys beyond that are compacted away.
            expiry: VecDeque::with_capacity(2 * count + 16),
            time_wait: 0,
        }
    }

    fn index(&self, port: u16) -> Option<usize> {
        let index = usize::from(port.checked_sub(self.first)?);
        (index < self.ports.len()).then_some(index)
    }

    pub(crate) fn get(&self, port: u16) -> PortUse {
        self.index(port)
            .map_or(PortUse::Free, |index| self.ports[index])
    }

    pub(crate) fn time_wait_count(&self) -> usize {
        self.time_wait
    }

    /// A port no connection uses: a free one, or, with `reuse`, one whose TIME-WAIT used
    /// timestamps and is a second old (its entry is returned, for the new ISS). The port is
    /// not marked used: [`PortTable::attach`] does that.
    pub(crate) fn find_free(
        &mut self,
        now: Instant,
        reuse: bool,
    ) -> Option<(u16, Option<TimeWaitEntry>)> {
        let count = self.ports.len();
        for _ in 0..count {
            let index = self.next;
            self.next = (index + 1) % count;
            let port = self.first + index as u16;
            match self.ports[index] {
                PortUse::Free => return Some((port, None)),
                PortUse::TimeWait(entry)
                    if reuse && entry.ts_recent.is_some() && now - entry.entered >= REUSE_AFTER =>
                {
                    return Some((port, Some(entry)));
                }
                _ => {}
            }
        }
        None
    }

    /// `port` belongs to the connection in `slot` (taking it over from TIME-WAIT if need be).
    pub(crate) fn attach(&mut self, port: u16, slot: u32) {
        if let Some(index) = self.index(port) {
            if matches!(self.ports[index], PortUse::TimeWait(_)) {
                self.time_wait -= 1;
            }
            self.ports[index] = PortUse::Connection(slot);
        }
    }

    /// The connection on `port` is gone; with `time_wait`, the port waits it out.
    pub(crate) fn release(&mut self, port: u16, time_wait: Option<TimeWaitEntry>) {
        let Some(index) = self.index(port) else {
            return;
        };
        self.ports[index] = match time_wait {
            Some(entry) => {
                self.time_wait += 1;
                if self.expiry.len() == self.expiry.capacity() {
                    self.compact_expiry();
                }
                self.expiry.push_back((entry.expires, port));
                PortUse::TimeWait(entry)
            }
            None => PortUse::Free,
        };
    }

    /// Drops the expiry keys of entries that no longer exist.
    fn compact_expiry(&mut self) {
        let (first, ports) = (self.first, &self.ports);
        self.expiry.retain(|&(expires, port)| {
            matches!(ports[usize::from(port - first)], PortUse::TimeWait(entry) if entry.expires == expires)
        });
    }

    /// Frees the ports whose TIME-WAIT is over at `now`.
    pub(crate) fn expire(&mut self, now: Instant) {
        while let Some(&(expires, port)) = self.expiry.front() {
            if expires > now {
                break;
            }
            self.expiry.pop_front();
            let index = usize::from(port - self.first);
            if matches!(self.ports[index], PortUse::TimeWait(entry) if entry.expires == expires) {
                self.ports[index] = PortUse::Free;
                self.time_wait -= 1;
            }
        }
    }

    /// When the oldest TIME-WAIT entry ends (perhaps a stale key: the call finds nothing).
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.expiry.front().map(|&(expires, _)| expires)
    }
}
