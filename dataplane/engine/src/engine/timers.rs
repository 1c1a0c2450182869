//! The engine's timers: one heap of connection deadlines (at most one live entry per slot,
//! superseded ones dropped when it is full), the neighbour cache's and TIME-WAIT's.

use core::cmp::Reverse;
use core::net::IpAddr;

use mpterm_wire::arp::{ArpOperation, ArpRepr};
use mpterm_wire::ethernet::EthernetAddress;
use rand_core::RngCore;

use super::{Engine, TokenRegistry};
use crate::{Instant, Payload};

impl<P: Payload, R: RngCore, T: TokenRegistry> Engine<P, R, T> {
    /// Puts the connection's next deadline into the heap, unless a live entry is already due
    /// at or before it.
    pub(super) fn arm_timer(&mut self, slot: usize) {
        let Some(entry) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Some(deadline) = entry.connection.poll_timeout() else {
            return;
        };
        if entry.armed.is_none_or(|armed| deadline < armed) {
            entry.armed = Some(deadline);
            let id = entry.connection.id;
            if self.timers.len() == self.timers.capacity() {
                self.compact_timers();
            }
            self.timers.push(Reverse((deadline, slot, id)));
        }
    }

    /// Drops the timer entries no connection waits for any more (a deadline that moved
    /// earlier, as a tail loss probe's does whenever the flight grows past one segment; a
    /// connection gone), so that the heap stays within the capacity it was given at start-up:
    /// at most one entry per slot is live.
    fn compact_timers(&mut self) {
        let slots = &self.slots;
        self.timers.retain(|Reverse((deadline, slot, id))| {
            slots
                .get(*slot)
                .and_then(Option::as_ref)
                .is_some_and(|entry| entry.connection.id == *id && entry.armed == Some(*deadline))
        });
    }

    // ----- timers -----

    /// The earliest instant at which [`Engine::handle_timeout`] must be called. It may be
    /// early (a timer that was pushed back): the call then finds nothing to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let connection = self
            .timers
            .peek()
            .map(|Reverse((deadline, _, _))| *deadline);
        [
            connection,
            self.neighbors.poll_timeout(),
            self.time_wait.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs every timer due at `now`.
    ///
    /// A connection's deadline is after `now` once its timers have run (see
    /// [`Tcb::poll_timeout`](crate::tcp::Tcb::poll_timeout)), so each entry due is taken once.
    /// The loop takes at most as many entries as the heap held when it began: a connection
    /// that broke that rule would find its past deadline due again forever, and the worker
    /// would never go back to its queues (the lab saw it, a paced connection fast-closed).
    /// With the bound such a defect costs a busy loop, and a debug build stops on it.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.time_wait.expire(now);
        let mut entries_left = self.timers.len();
        while let Some(Reverse((deadline, slot, id))) = self.timers.peek().copied() {
            if deadline > now {
                break;
            }
            if entries_left == 0 {
                debug_assert!(false, "connection {id:?} is due again at {now:?}");
                break;
            }
            entries_left -= 1;
            self.timers.pop();
            let Some(entry) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            if entry.connection.id != id || entry.armed != Some(deadline) {
                continue;
            }
            entry.armed = None;
            if entry
                .connection
                .poll_timeout()
                .is_some_and(|due| due <= now)
            {
                entry.connection.handle_timeout(now);
            }
            self.after_activity(now, slot);
        }
        let mut dropped = 0;
        while let Some(request) = self.neighbors.poll_requests(now, &mut dropped) {
            if self.backlog_full() {
                continue;
            }
            match request.address {
                IpAddr::V4(target_ip) => {
                    let arp = ArpRepr {
                        operation: ArpOperation::Request,
                        sender_mac: self.macs[request.interface],
                        sender_ip: self.config.interfaces[request.interface].address,
                        target_mac: EthernetAddress([0; 6]),
                        target_ip,
                    };
                    self.queue_arp(request.interface, EthernetAddress::BROADCAST, &arp);
                }
                IpAddr::V6(target) => self.queue_neighbor_solicitation(request.interface, target),
            }
        }
        self.counters.tx_dropped_no_neighbor += dropped;
    }
}
