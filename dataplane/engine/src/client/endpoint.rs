//! The client endpoint: one interface, connections to one server, driven by frames in and
//! frames out like the server [`crate::Engine`].

use core::cmp::Reverse;
use core::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::collections::{BinaryHeap, VecDeque};

use hashbrown::HashSet;
use mpterm_wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use mpterm_wire::checksum::Checksum;
use mpterm_wire::ethernet::{self, EthernetAddress, EthernetFrame};
use mpterm_wire::ipv4::{self, Ipv4Packet, Ipv4Repr};
use mpterm_wire::mptcp::MptcpOption;
use mpterm_wire::tcp::{TcpFlags, TcpOptions, TcpRepr, TcpSegment, Timestamps};
use mpterm_wire::SeqNumber;
use rand_core::RngCore;

use super::api::{ClientError, ClientEvent, ConnectionId, ConnectionInfo};
use super::config::{ClientConfig, ConfigError};
use super::connection::{ClientConnection, Ending, Notices};
use super::counters::ClientCounters;
use super::frame;
use super::ports::{PortTable, PortUse};
use super::session::ClientSession;
use crate::mptcp::DSS_OPTION_RESERVE;
use crate::mptcp_keys::{derive_from_key, KeyDerivation};
use crate::neighbor::NeighborCache;
use crate::tcp::{CloseReason, Tcb, TcbCounters, TcpState};
use crate::time_wait::TimeWaitEntry;
use crate::{Instant, Payload, Transmit};

/// Keys drawn for one connection before giving up on a token unique on this endpoint.
const KEY_ATTEMPTS: usize = 16;
/// Frames of our own (ARP, RSTs, TIME-WAIT ACKs, frames released by an ARP reply) that may
/// wait to be polled; beyond it they are dropped and counted. Connection segments are made
/// only when polled and are not affected.
const MAX_OWN_FRAMES: usize = 1024;
/// Events one connection produces at most: established, fell back, peer finished, closed.
const EVENTS_PER_CONNECTION: usize = 4;
/// Timer entries per connection slot before stale entries are compacted away.
const TIMERS_PER_CONNECTION: usize = 2;
/// How far the ISS of a connection that takes over a port in TIME-WAIT starts beyond the old
/// connection's last sequence number: a window beyond (Linux's `tcp_twsk_unique`).
const REUSED_ISS_OFFSET: u32 = 65_535 + 2;

/// A connection's MPTCP key with its token and IDSN (RFC 8684 section 3.1).
struct LocalKey {
    key: u64,
    derived: KeyDerivation,
}

#[derive(Debug)]
struct Entry<P: Payload> {
    connection: ClientConnection<P>,
    port: u16,
    /// The deadline for which a timer entry is queued, if any.
    armed: Option<Instant>,
    /// Queued for output polling.
    dirty: bool,
    /// TCB counters already added to the endpoint's.
    counted: TcbCounters,
}

#[derive(Debug)]
struct Slot<P: Payload> {
    /// Counts the connections this slot has held: a handle names slot and generation.
    generation: u32,
    entry: Option<Entry<P>>,
}

/// An MPTCP (or plain TCP) client endpoint, sans-IO. See the crate documentation for the
/// driver's call order, the same as the server engine's; the application's calls
/// ([`ClientEngine::connect`], [`ClientEngine::send`], [`ClientEngine::recv`], ...) may come
/// between any two of the driver's.
///
/// Every table is sized from the configuration when the endpoint is built: in steady state no
/// frame allocates, and no table is rehashed under load.
pub struct ClientEngine<P: Payload, R: RngCore> {
    config: ClientConfig,
    mac: EthernetAddress,
    /// The server, or the gateway toward it.
    next_hop: Ipv4Addr,
    /// Our MSS: what the interface's MTU lets us receive.
    local_mss: u16,
    rng: R,
    counters: ClientCounters,
    neighbors: NeighborCache<P>,
    slots: Vec<Slot<P>>,
    free_slots: Vec<u32>,
    ports: PortTable,
    /// The MPTCP tokens of this endpoint's connections (RFC 8684 section 3.2: a token names
    /// one connection on its host).
    tokens: HashSet<u32>,
    events: VecDeque<ClientEvent>,
    /// Frames of our own, ready to leave.
    output: VecDeque<Transmit<P>>,
    /// Slots whose connection may have segments to send.
    dirty: VecDeque<u32>,
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
}

impl<P: Payload, R: RngCore> core::fmt::Debug for ClientEngine<P, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientEngine")
            .field("server", &self.config.server)
            .field("connections", &self.connection_count())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl<P: Payload, R: RngCore> ClientEngine<P, R> {
    pub fn new(config: ClientConfig, mut rng: R) -> Result<Self, ConfigError> {
        config.validate()?;
        let interface = &config.interface;
        let server = *config.server.ip();
        let next_hop = match interface.gateway {
            Some(gateway) if !interface.is_on_link(server) => gateway,
            _ => server,
        };
        let capacity = config.max_connections;
        let ports = PortTable::new(
            *config.local_ports.start(),
            *config.local_ports.end(),
            rng.next_u32() as usize % config.port_count(),
        );
        Ok(ClientEngine {
            mac: EthernetAddress(interface.mac),
            next_hop,
            local_mss: interface.mtu - 40,
            rng,
            counters: ClientCounters::default(),
            neighbors: NeighborCache::default(),
            slots: (0..capacity)
                .map(|_| Slot {
                    generation: 0,
                    entry: None,
                })
                .collect(),
            // Popped from the end: slot 0 is used first.
            free_slots: (0..capacity as u32).rev().collect(),
            ports,
            tokens: HashSet::with_capacity(capacity),
            events: VecDeque::with_capacity(capacity * EVENTS_PER_CONNECTION + 16),
            output: VecDeque::with_capacity(MAX_OWN_FRAMES),
            dirty: VecDeque::with_capacity(capacity),
            timers: BinaryHeap::with_capacity(capacity * TIMERS_PER_CONNECTION + 16),
            config,
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub fn counters(&self) -> &ClientCounters {
        &self.counters
    }

    /// Connections holding a slot.
    pub fn connection_count(&self) -> usize {
        self.slots.len() - self.free_slots.len()
    }

    /// Local ports waiting out TIME-WAIT.
    pub fn time_wait_count(&self) -> usize {
        self.ports.time_wait_count()
    }

    /// MPTCP tokens held by this endpoint's connections.
    pub fn tokens_in_use(&self) -> usize {
        self.tokens.len()
    }

    // ----- the application's calls -----

    /// Opens a connection to the server: a SYN asking for MPTCP (or plain TCP, per the
    /// configuration) leaves with the next polls.
    pub fn connect(&mut self, now: Instant) -> Result<ConnectionId, ClientError> {
        let index = *self.free_slots.last().ok_or(ClientError::NoFreeSlot)?;
        let (port, reused) = self
            .ports
            .find_free(now, self.config.time_wait_reuse)
            .ok_or(ClientError::NoFreePort)?;
        let key = if self.config.mptcp {
            Some(self.draw_key()?)
        } else {
            None
        };
        self.free_slots.pop();
        if reused.is_some() {
            self.counters.time_wait_reused += 1;
        }
        let iss = match reused {
            Some(old) => old.send_next + REUSED_ISS_OFFSET,
            None => SeqNumber(self.rng.next_u32()),
        };
        let local = SocketAddrV4::new(self.config.interface.address, port);
        let mut tcb = Tcb::connect(
            now,
            local,
            self.config.server,
            iss,
            self.local_mss,
            self.config.tcp,
        );
        let session = key.map(|LocalKey { key, derived }| {
            tcb.set_owner_option_reserve(DSS_OPTION_RESERVE);
            self.tokens.insert(derived.token);
            ClientSession::new(key, derived, self.config.dss_checksums, iss + 1)
        });
        let slot = &mut self.slots[index as usize];
        slot.entry = Some(Entry {
            connection: ClientConnection::new(tcb, session),
            port,
            armed: None,
            dirty: false,
            counted: TcbCounters::default(),
        });
        let id = ConnectionId {
            index,
            generation: slot.generation,
        };
        self.ports.attach(port, index);
        self.counters.connections_opened += 1;
        self.after_activity(index);
        Ok(id)
    }

    /// A key whose token no other connection of this endpoint holds (RFC 8684 section 3.2).
    fn draw_key(&mut self) -> Result<LocalKey, ClientError> {
        for _ in 0..KEY_ATTEMPTS {
            let key = self.rng.next_u64();
            let derived = derive_from_key(key);
            if !self.tokens.contains(&derived.token) {
                return Ok(LocalKey { key, derived });
            }
            self.counters.token_collisions += 1;
        }
        Err(ClientError::NoUniqueToken)
    }

    fn entry(&self, id: ConnectionId) -> Option<&Entry<P>> {
        let slot = self.slots.get(id.index as usize)?;
        (slot.generation == id.generation)
            .then_some(slot.entry.as_ref())
            .flatten()
    }

    fn entry_mut(&mut self, id: ConnectionId) -> Option<&mut Entry<P>> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.entry.as_mut()
    }

    /// Queues `payload` (held by handle, never copied) if the send buffer has room for all of
    /// it; otherwise, or for a stale handle, gives it back.
    pub fn send(&mut self, id: ConnectionId, payload: P) -> Result<(), P> {
        let Some(entry) = self.entry_mut(id) else {
            return Err(payload);
        };
        entry.connection.send(payload)?;
        self.mark_dirty(id.index);
        Ok(())
    }

    /// Bytes [`ClientEngine::send`] takes now; 0 for a stale handle or a closed stream.
    pub fn send_capacity(&self, id: ConnectionId) -> usize {
        self.entry(id)
            .map_or(0, |entry| entry.connection.send_capacity())
    }

    /// The next received data, in data-sequence order.
    pub fn recv(&mut self, id: ConnectionId) -> Option<P> {
        let payload = self.entry_mut(id)?.connection.recv()?;
        // Taking data may open the window (an ACK to send) or let a finished connection go.
        self.mark_dirty(id.index);
        Some(payload)
    }

    /// Ends our stream: a FIN, with the DATA_FIN, after the queued data.
    pub fn close(&mut self, id: ConnectionId) -> Result<(), ClientError> {
        let entry = self.entry_mut(id).ok_or(ClientError::UnknownConnection)?;
        entry.connection.close();
        self.after_activity(id.index);
        Ok(())
    }

    /// Ends the connection at once with a RST (carrying MP_FASTCLOSE while MPTCP is in use);
    /// what was received and not taken is dropped.
    pub fn abort(&mut self, id: ConnectionId) -> Result<(), ClientError> {
        let entry = self.entry_mut(id).ok_or(ClientError::UnknownConnection)?;
        entry.connection.abort();
        self.after_activity(id.index);
        Ok(())
    }

    pub fn connection_info(&self, id: ConnectionId) -> Result<ConnectionInfo, ClientError> {
        self.entry(id)
            .map(|entry| entry.connection.info())
            .ok_or(ClientError::UnknownConnection)
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        crate::queue::pop_front_reusing(&mut self.events)
    }

    fn push_event(&mut self, event: ClientEvent) {
        if self.events.len() < self.events.capacity() {
            self.events.push_back(event);
        } else {
            self.counters.events_dropped += 1;
        }
    }

    // ----- input -----

    /// A frame received on interface `interface` (0: the endpoint has one).
    pub fn handle_frame(&mut self, now: Instant, interface: usize, frame: P) {
        self.counters.rx_frames += 1;
        self.counters.rx_bytes += frame.len() as u64;
        if interface != 0 {
            self.counters.rx_dropped_not_for_us += 1;
            return;
        }
        let Ok(ethernet_frame) = EthernetFrame::new_checked(frame.as_ref()) else {
            self.counters.rx_dropped_malformed += 1;
            return;
        };
        let destination = ethernet_frame.dst_addr();
        if destination != self.mac && !destination.is_broadcast() {
            self.counters.rx_dropped_not_for_us += 1;
            return;
        }
        let source_mac = ethernet_frame.src_addr();
        match ethernet_frame.ethertype() {
            ethernet::ETHERTYPE_ARP => self.handle_arp(now, &frame),
            ethernet::ETHERTYPE_IPV4 => self.handle_ipv4(now, source_mac, &frame),
            _ => self.counters.rx_dropped_not_for_us += 1,
        }
    }

    /// RFC 826 "Packet Reception": merge the sender, answer requests for our address.
    fn handle_arp(&mut self, now: Instant, frame: &P) {
        let bytes = &frame.as_ref()[ethernet::HEADER_LEN..];
        let Ok(repr) = ArpPacket::new_checked(bytes).and_then(|packet| ArpRepr::parse(&packet))
        else {
            self.counters.rx_dropped_malformed += 1;
            return;
        };
        let own_address = self.config.interface.address;
        let for_us = repr.target_ip == own_address;
        if for_us
            || self
                .neighbors
                .lookup(now, 0, IpAddr::V4(repr.sender_ip))
                .is_some()
        {
            self.neighbors.learn(
                now,
                0,
                IpAddr::V4(repr.sender_ip),
                repr.sender_mac,
                &mut self.output,
            );
        }
        if !for_us {
            self.counters.rx_dropped_not_for_us += 1;
            return;
        }
        match repr.operation {
            ArpOperation::Request => {
                let reply = ArpRepr {
                    operation: ArpOperation::Reply,
                    sender_mac: self.mac,
                    sender_ip: own_address,
                    target_mac: repr.sender_mac,
                    target_ip: repr.sender_ip,
                };
                if let Some(frame) = frame::arp_frame(self.mac, repr.sender_mac, &reply) {
                    if self.queue_own(frame) {
                        self.counters.arp_requests_answered += 1;
                    }
                }
            }
            ArpOperation::Reply => self.counters.arp_replies_received += 1,
        }
    }

    /// Queues a frame of our own; false, with the drop counted, when too many wait.
    fn queue_own(&mut self, frame: Transmit<P>) -> bool {
        if self.output.len() >= MAX_OWN_FRAMES {
            self.counters.tx_dropped_backlog += 1;
            return false;
        }
        self.output.push_back(frame);
        true
    }

    fn handle_ipv4(&mut self, now: Instant, source_mac: EthernetAddress, frame: &P) {
        let bytes = &frame.as_ref()[ethernet::HEADER_LEN..];
        let Ok(packet) = Ipv4Packet::new_checked(bytes) else {
            self.counters.rx_dropped_malformed += 1;
            return;
        };
        let ip = match Ipv4Repr::parse(&packet) {
            Ok(ip) => ip,
            Err(mpterm_wire::WireError::Unsupported) => {
                self.counters.rx_dropped_not_for_us += 1;
                return;
            }
            Err(_) => {
                self.counters.rx_dropped_malformed += 1;
                return;
            }
        };
        if ip.dst != self.config.interface.address || ip.protocol != ipv4::PROTOCOL_TCP {
            self.counters.rx_dropped_not_for_us += 1;
            return;
        }
        // A host on the link sends from its own MAC: learn it, sparing an ARP round trip.
        if self.config.interface.is_on_link(ip.src)
            && self.neighbors.lookup(now, 0, IpAddr::V4(ip.src)) != Some(source_mac)
        {
            self.neighbors
                .learn(now, 0, IpAddr::V4(ip.src), source_mac, &mut self.output);
        }
        let start = ethernet::HEADER_LEN + packet.header_len();
        let end = ethernet::HEADER_LEN + usize::from(packet.total_len());
        self.handle_tcp(now, &ip, frame, start, end);
    }

    fn handle_tcp(&mut self, now: Instant, ip: &Ipv4Repr, frame: &P, start: usize, end: usize) {
        let Ok(segment) = TcpSegment::new_checked(&frame.as_ref()[start..end]) else {
            self.counters.rx_dropped_malformed += 1;
            return;
        };
        if self.config.verify_tcp_checksums && !segment.verify_checksum_v4(ip.src, ip.dst) {
            self.counters.rx_dropped_malformed += 1;
            return;
        }
        let Ok(repr) = TcpRepr::parse(&segment) else {
            // RFC 9293 section 3.1: a malformed option; the segment is dropped and counted.
            self.counters.rx_dropped_malformed += 1;
            return;
        };
        self.counters.rx_unknown_options += u64::from(repr.options.unknown_options);
        for option in repr.options.mptcp.iter().flatten() {
            if matches!(option, MptcpOption::Unknown { .. }) {
                self.counters.rx_unknown_options += 1;
            }
        }
        if SocketAddrV4::new(ip.src, repr.src_port) != self.config.server {
            // This endpoint talks to one server only.
            self.counters.rx_dropped_not_for_us += 1;
            return;
        }
        if repr.flags.contains(TcpFlags::RST) {
            self.counters.tcp_rst_received += 1;
        }
        let payload_start = start + segment.header_len();
        let payload = (payload_start < end).then(|| frame.slice(payload_start..end));
        match self.ports.get(repr.dst_port) {
            PortUse::Connection(index) => {
                let Some(entry) = self.slots[index as usize].entry.as_mut() else {
                    // The port table and the slots change together; counted should they not.
                    self.counters.rx_dropped_no_connection += 1;
                    return;
                };
                if entry.connection.handle_segment(now, &repr, payload) {
                    // Like Linux (tcp_rcv_synsent_state_process), the third ACK leaves as soon
                    // as the SYN-ACK is in, whatever the application does next: it carries
                    // our key to the server even if no data follows for a while.
                    self.send_at_once(now, index);
                }
                self.after_activity(index);
            }
            PortUse::TimeWait(entry) => self.handle_time_wait(now, &repr, entry),
            PortUse::Free => {
                let payload_len = payload.as_ref().map_or(0, |p| p.len());
                self.counters.rx_dropped_no_connection += 1;
                if !repr.flags.contains(TcpFlags::RST) {
                    self.send_reset(now, &repr, payload_len);
                }
            }
        }
    }

    /// Polls one segment of a connection into the queue of frames ready to leave.
    fn send_at_once(&mut self, now: Instant, index: u32) {
        if self.output.len() >= MAX_OWN_FRAMES {
            // It stays in the connection, polled as usual.
            return;
        }
        let Some(entry) = self.slots[index as usize].entry.as_mut() else {
            return;
        };
        let Some((segment, payload_sum)) = entry.connection.poll_segment(now) else {
            return;
        };
        if segment.repr.flags.contains(TcpFlags::RST) {
            self.counters.tcp_rst_sent += 1;
        }
        if let Some(frame) = self.addressed_frame(now, &segment.repr, segment.payload, payload_sum)
        {
            self.output.push_back(frame);
        }
    }

    /// A segment for a port in TIME-WAIT (RFC 9293 section 3.10.7.4): a retransmitted FIN is
    /// acknowledged again, a RST ignored (RFC 1337), the rest dropped.
    fn handle_time_wait(&mut self, now: Instant, repr: &TcpRepr<'_>, entry: TimeWaitEntry) {
        let flags = repr.flags;
        if !flags.contains(TcpFlags::FIN) || flags.contains(TcpFlags::RST) {
            self.counters.rx_dropped_time_wait += 1;
            return;
        }
        let mut options = TcpOptions::default();
        if let Some(recent) = entry.ts_recent {
            options.timestamps = Some(Timestamps {
                value: now.timestamp_millis().max(1),
                echo_reply: recent,
            });
        }
        let ack = TcpRepr {
            src_port: repr.dst_port,
            dst_port: repr.src_port,
            seq: entry.send_next,
            ack: entry.receive_next,
            flags: TcpFlags::ACK,
            window: entry.window,
            options,
        };
        if self.send_own_segment(now, &ack) {
            self.counters.time_wait_acks_sent += 1;
        }
    }

    /// RFC 9293 section 3.10.7.1: the RST answering a segment for no connection.
    fn send_reset(&mut self, now: Instant, repr: &TcpRepr<'_>, payload_len: usize) {
        let (seq, ack, flags) = if repr.flags.contains(TcpFlags::ACK) {
            (repr.ack, SeqNumber(0), TcpFlags::RST)
        } else {
            let length = payload_len as u32
                + u32::from(repr.flags.contains(TcpFlags::SYN))
                + u32::from(repr.flags.contains(TcpFlags::FIN));
            (
                SeqNumber(0),
                repr.seq + length,
                TcpFlags::RST | TcpFlags::ACK,
            )
        };
        let reset = TcpRepr {
            src_port: repr.dst_port,
            dst_port: repr.src_port,
            seq,
            ack,
            flags,
            window: 0,
            options: TcpOptions::default(),
        };
        if self.send_own_segment(now, &reset) {
            self.counters.tcp_rst_sent += 1;
        }
    }

    /// Queues a segment of our own (no payload) toward the server.
    fn send_own_segment(&mut self, now: Instant, repr: &TcpRepr<'_>) -> bool {
        if self.output.len() >= MAX_OWN_FRAMES {
            self.counters.tx_dropped_backlog += 1;
            return false;
        }
        match self.addressed_frame(now, repr, None, Checksum::new()) {
            Some(frame) => self.queue_own(frame),
            // Waiting for the next hop, or dropped and counted.
            None => false,
        }
    }

    // ----- timers -----

    /// The earliest instant at which [`ClientEngine::handle_timeout`] must be called. It may be
    /// early (a timer that was pushed back): the call then finds nothing to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let connection = self
            .timers
            .peek()
            .map(|Reverse((deadline, _, _))| *deadline);
        [
            connection,
            self.neighbors.poll_timeout(),
            self.ports.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs every timer due at `now`, each due entry once, as the server role's
    /// [`Engine::handle_timeout`](crate::Engine::handle_timeout) does: at most the entries the
    /// heap held when it began (a debug build asserts on more).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.ports.expire(now);
        let mut entries_left = self.timers.len();
        while let Some(Reverse((deadline, index, generation))) = self.timers.peek().copied() {
            if deadline > now {
                break;
            }
            if entries_left == 0 {
                debug_assert!(false, "slot {index} is due again at {now:?}");
                break;
            }
            entries_left -= 1;
            self.timers.pop();
            let slot = &mut self.slots[index as usize];
            if slot.generation != generation {
                continue;
            }
            let Some(entry) = slot.entry.as_mut().filter(|e| e.armed == Some(deadline)) else {
                continue;
            };
            entry.armed = None;
            if entry
                .connection
                .poll_timeout()
                .is_some_and(|due| due <= now)
            {
                entry.connection.handle_timeout(now);
            }
            self.after_activity(index);
        }
        self.send_arp_requests(now);
    }

    fn send_arp_requests(&mut self, now: Instant) {
        let mut dropped = 0;
        while let Some(request) = self.neighbors.poll_requests(now, &mut dropped) {
            // The generator resolves only IPv4 next hops.
            let IpAddr::V4(target_ip) = request.address else {
                continue;
            };
            let arp = ArpRepr {
                operation: ArpOperation::Request,
                sender_mac: self.mac,
                sender_ip: self.config.interface.address,
                target_mac: EthernetAddress([0; 6]),
                target_ip,
            };
            if let Some(frame) = frame::arp_frame(self.mac, EthernetAddress::BROADCAST, &arp) {
                self.queue_own(frame);
            }
        }
        self.counters.tx_dropped_no_neighbor += dropped;
    }

    // ----- output -----

    /// The next frame to send, if any. As with the server engine, a driver that stops
    /// polling (a full transmit ring) pushes back: segments are made only when polled.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit<P>> {
        loop {
            if let Some(frame) = crate::queue::pop_front_reusing(&mut self.output) {
                return Some(self.count_transmit(frame));
            }
            let &index = self.dirty.front()?;
            let Some(entry) = self.slots[index as usize].entry.as_mut() else {
                crate::queue::pop_front_reusing(&mut self.dirty);
                continue;
            };
            match entry.connection.poll_segment(now) {
                Some((segment, payload_sum)) => {
                    if segment.repr.flags.contains(TcpFlags::RST) {
                        self.counters.tcp_rst_sent += 1;
                    }
                    let frame =
                        self.addressed_frame(now, &segment.repr, segment.payload, payload_sum);
                    if let Some(frame) = frame {
                        return Some(self.count_transmit(frame));
                    }
                    // The frame waits for ARP: the request goes out first.
                    self.send_arp_requests(now);
                }
                None => {
                    crate::queue::pop_front_reusing(&mut self.dirty);
                    entry.dirty = false;
                    let now_counted = entry.connection.tcb.counters();
                    self.counters.add_tcb(now_counted, entry.counted);
                    entry.counted = now_counted;
                    self.arm_timer(index);
                    self.release_if_finished(index);
                }
            }
        }
    }

    fn count_transmit(&mut self, frame: Transmit<P>) -> Transmit<P> {
        self.counters.tx_frames += 1;
        self.counters.tx_bytes += frame.len() as u64;
        frame
    }

    /// The frame of a segment to the server with the next hop's MAC, or `None` when the MAC
    /// is not known yet (the frame then waits for the ARP reply, or is dropped and counted).
    fn addressed_frame(
        &mut self,
        now: Instant,
        repr: &TcpRepr<'_>,
        payload: Option<P>,
        payload_sum: Checksum,
    ) -> Option<Transmit<P>> {
        let mut frame = frame::tcp_frame(
            self.mac,
            self.config.interface.address,
            *self.config.server.ip(),
            repr,
            payload,
            payload_sum,
        )?;
        match self.neighbors.lookup(now, 0, IpAddr::V4(self.next_hop)) {
            Some(mac) => {
                frame.header.set_destination_mac(mac.0);
                Some(frame)
            }
            None => {
                if !self
                    .neighbors
                    .wait_for(now, 0, IpAddr::V4(self.next_hop), frame)
                {
                    self.counters.tx_dropped_no_neighbor += 1;
                }
                None
            }
        }
    }

    // ----- connection bookkeeping -----

    /// After input, a timer or a call on a connection: report what happened, queue it for
    /// output and re-arm its timer.
    fn after_activity(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        let generation = slot.generation;
        let Some(entry) = slot.entry.as_mut() else {
            return;
        };
        let notices = entry.connection.take_notices();
        if notices != Notices::default() {
            self.report(ConnectionId { index, generation }, notices);
        }
        self.mark_dirty(index);
        self.arm_timer(index);
    }

    fn report(&mut self, id: ConnectionId, notices: Notices) {
        if let Some(mptcp) = notices.established {
            self.counters.connections_established += 1;
            self.counters.mptcp_connections += u64::from(mptcp);
            self.push_event(ClientEvent::Established { id, mptcp });
        }
        if notices.fell_back {
            self.counters.mptcp_fallbacks += 1;
            self.push_event(ClientEvent::FellBack { id });
        }
        if notices.peer_finished {
            self.push_event(ClientEvent::PeerFinished { id });
        }
        let counters = &mut self.counters;
        counters.dss_checksum_failures += u64::from(notices.checksum_failure);
        counters.dss_mapping_mismatches += u64::from(notices.mapping_mismatch);
        counters.mptcp_fastcloses_received += u64::from(notices.fast_close_received);
        counters.mptcp_fastcloses_ignored += u64::from(notices.fast_close_ignored);
        counters.mptcp_tcprst_received += u64::from(notices.tcprst_received);
    }

    fn mark_dirty(&mut self, index: u32) {
        if let Some(entry) = self.slots[index as usize].entry.as_mut() {
            if !entry.dirty {
                entry.dirty = true;
                self.dirty.push_back(index);
            }
        }
    }

    fn arm_timer(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        let generation = slot.generation;
        let Some(entry) = slot.entry.as_mut() else {
            return;
        };
        let Some(deadline) = entry.connection.poll_timeout() else {
            return;
        };
        if entry.armed.is_some_and(|armed| armed <= deadline) {
            return;
        }
        entry.armed = Some(deadline);
        if self.timers.len() == self.timers.capacity() {
            self.compact_timers();
        }
        self.timers.push(Reverse((deadline, index, generation)));
    }

    /// Drops the timer entries no connection waits for any more (a deadline moved earlier,
    /// a connection gone), so that the heap stays within the capacity it was given: at most
    /// one entry per slot is live.
    fn compact_timers(&mut self) {
        let slots = &self.slots;
        self.timers
            .retain(|Reverse((deadline, index, generation))| {
                let slot = &slots[*index as usize];
                slot.generation == *generation
                    && slot
                        .entry
                        .as_ref()
                        .is_some_and(|entry| entry.armed == Some(*deadline))
            });
    }

    /// Gives the slot, the port (or its TIME-WAIT) and the token back once the connection
    /// is finished, and tells the application.
    fn release_if_finished(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        if !slot
            .entry
            .as_ref()
            .is_some_and(|entry| entry.connection.is_finished())
        {
            return;
        }
        let Some(entry) = slot.entry.take() else {
            return;
        };
        let id = ConnectionId {
            index,
            generation: slot.generation,
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.free_slots.push(index);
        self.counters.connections_closed += 1;

        let connection = &entry.connection;
        let time_wait = connection.tcb.time_wait_view().map(|view| TimeWaitEntry {
            interface: 0,
            entered: view.entered,
            expires: view.expires,
            send_next: view.send_next,
            receive_next: view.receive_next,
            window: view.window,
            ts_recent: view.ts_recent,
        });
        self.counters.time_wait_entered += u64::from(time_wait.is_some());
        self.ports.release(entry.port, time_wait);
        if let Some(session) = connection.session() {
            self.tokens.remove(&session.token());
        }
        match connection.tcb.close_reason() {
            Some(CloseReason::TimedOut) => self.counters.tcp_timeouts += 1,
            Some(CloseReason::ResetByPeer) => self.counters.tcp_resets_by_peer += 1,
            Some(CloseReason::KeepaliveTimeout) => self.counters.keepalive_timeouts += 1,
            Some(CloseReason::FinWait2Timeout) => self.counters.fin_wait_2_timeouts += 1,
            Some(CloseReason::UserTimeout) => self.counters.user_timeouts += 1,
            Some(CloseReason::Graceful | CloseReason::Aborted) | None => {}
        }
        let counters = connection.counters();
        let event = match connection.ending() {
            Ending::Closed(reason) => ClientEvent::Closed {
                id,
                reason,
                counters,
            },
            Ending::Reset(reset) => ClientEvent::Reset {
                id,
                reset,
                counters,
            },
        };
        debug_assert!(
            connection.tcb.state() == TcpState::TimeWait || connection.tcb.is_closed(),
            "only a finished connection is released"
        );
        self.push_event(event);
    }
}
