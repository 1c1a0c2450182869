//! Next-hop resolution, ARP (RFC 826) for IPv4 and neighbour discovery (RFC 4861 section 7)
//! for IPv6: the cache, the requests (ARP request or neighbour solicitation) for unknown next
//! hops, and the frames that wait for an answer.

use core::net::IpAddr;
use core::time::Duration;
use std::collections::VecDeque;

use mpterm_wire::ethernet::EthernetAddress;

use crate::{Instant, Transmit};

/// How long a learned address is trusted before it is asked for again.
const ENTRY_LIFETIME: Duration = Duration::from_secs(300);
/// How often an unanswered request is repeated (RFC 4861 RETRANS_TIMER is 1 s as well).
const REQUEST_INTERVAL: Duration = Duration::from_secs(1);
/// Requests sent before the frames waiting for a next hop are dropped.
const MAX_REQUESTS: u8 = 3;
/// Frames that may wait for resolution at once, over all next hops; TCP recovers the rest.
const MAX_WAITING_FRAMES: usize = 64;
/// Cache entries at most; the oldest entry gives way.
const MAX_ENTRIES: usize = 1024;

#[derive(Debug, Clone, Copy)]
struct Entry {
    interface: usize,
    address: IpAddr,
    mac: EthernetAddress,
    expires: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Resolution {
    interface: usize,
    address: IpAddr,
    next_request: Instant,
    requests_sent: u8,
}

/// A frame whose destination MAC is not known yet.
#[derive(Debug)]
struct Waiting<P> {
    interface: usize,
    next_hop: IpAddr,
    frame: Transmit<P>,
}

/// What [`NeighborCache::poll_requests`] asks the engine to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolutionNeeded {
    pub interface: usize,
    pub address: IpAddr,
}

#[derive(Debug)]
pub struct NeighborCache<P> {
    entries: Vec<Entry>,
    resolutions: Vec<Resolution>,
    waiting: VecDeque<Waiting<P>>,
}

impl<P> Default for NeighborCache<P> {
    fn default() -> Self {
        NeighborCache {
            entries: Vec::new(),
            resolutions: Vec::new(),
            waiting: VecDeque::new(),
        }
    }
}

impl<P> NeighborCache<P> {
    pub fn lookup(
        &self,
        now: Instant,
        interface: usize,
        address: IpAddr,
    ) -> Option<EthernetAddress> {
        self.entries
            .iter()
            .find(|entry| {
                entry.interface == interface && entry.address == address && entry.expires > now
            })
            .map(|entry| entry.mac)
    }

    /// Records `address` at `mac`; returns the frames that waited for it, their destination
    /// MAC filled in.
    pub fn learn(
        &mut self,
        now: Instant,
        interface: usize,
        address: IpAddr,
        mac: EthernetAddress,
        released: &mut VecDeque<Transmit<P>>,
    ) {
        let unusable = match address {
            IpAddr::V4(v4) => v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast(),
            IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast(),
        };
        if mac.is_broadcast() || mac.is_multicast() || unusable {
            return;
        }
        let expires = now + ENTRY_LIFETIME;
        match self
            .entries
            .iter_mut()
            .find(|entry| entry.interface == interface && entry.address == address)
        {
            Some(entry) => {
                entry.mac = mac;
                entry.expires = expires;
            }
            None => {
                if self.entries.len() >= MAX_ENTRIES {
                    if let Some(oldest) =
                        (0..self.entries.len()).min_by_key(|&i| self.entries[i].expires)
                    {
                        self.entries.swap_remove(oldest);
                    }
                }
                self.entries.push(Entry {
                    interface,
                    address,
                    mac,
                    expires,
                });
            }
        }
        self.resolutions
            .retain(|r| !(r.interface == interface && r.address == address));
        let mut index = 0;
        while index < self.waiting.len() {
            if self.waiting[index].interface == interface && self.waiting[index].next_hop == address
            {
                if let Some(mut waiting) = self.waiting.remove(index) {
                    waiting.frame.header.set_destination_mac(mac.0);
                    released.push_back(waiting.frame);
                }
            } else {
                index += 1;
            }
        }
    }

    /// Holds `frame` until `next_hop` resolves. Returns false, dropping the frame, when too
    /// many wait already.
    pub fn wait_for(
        &mut self,
        now: Instant,
        interface: usize,
        next_hop: IpAddr,
        frame: Transmit<P>,
    ) -> bool {
        if !self
            .resolutions
            .iter()
            .any(|r| r.interface == interface && r.address == next_hop)
        {
            self.resolutions.push(Resolution {
                interface,
                address: next_hop,
                next_request: now,
                requests_sent: 0,
            });
        }
        if self.waiting.len() >= MAX_WAITING_FRAMES {
            return false;
        }
        self.waiting.push_back(Waiting {
            interface,
            next_hop,
            frame,
        });
        true
    }

    /// Requests (ARP, or neighbour solicitations for IPv6 next hops) due at `now`; frames whose next hop stayed silent are dropped and counted.
    pub fn poll_requests(&mut self, now: Instant, dropped: &mut u64) -> Option<ResolutionNeeded> {
        let mut index = 0;
        while index < self.resolutions.len() {
            let resolution = self.resolutions[index];
            if resolution.next_request > now {
                index += 1;
                continue;
            }
            if resolution.requests_sent >= MAX_REQUESTS {
                self.resolutions.swap_remove(index);
                let before = self.waiting.len();
                self.waiting.retain(|w| {
                    !(w.interface == resolution.interface && w.next_hop == resolution.address)
                });
                *dropped += (before - self.waiting.len()) as u64;
                continue;
            }
            self.resolutions[index].requests_sent += 1;
            self.resolutions[index].next_request = now + REQUEST_INTERVAL;
            return Some(ResolutionNeeded {
                interface: resolution.interface,
                address: resolution.address,
            });
        }
        None
    }

    /// When the next request or give-up is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.resolutions.iter().map(|r| r.next_request).min()
    }
}
