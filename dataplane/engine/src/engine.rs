//! The engine: the appliance's own addresses (ARP, ICMP echo; for IPv6 neighbour discovery
//! and ICMPv6 echo in [`ipv6`]), the listeners, the table of proxied connections and the
//! timers, driven by frames in and frames out. Joins are in [`join`], address management in
//! [`addresses`].

mod addresses;
mod icmp_errors;
mod ipv6;
mod join;
mod output;
mod timers;

use core::cmp::Reverse;
use core::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::collections::{BinaryHeap, VecDeque};

use hashbrown::HashMap;
use mpterm_wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use mpterm_wire::checksum::Checksum;
use mpterm_wire::ethernet::{self, EthernetAddress, EthernetFrame, EthernetRepr};
use mpterm_wire::icmp::{IcmpEchoKind, IcmpEchoRepr, IcmpPacket};
use mpterm_wire::icmp_error::{is_error_type_v4, IcmpErrorRepr};
use mpterm_wire::ipv4::{self, Ipv4Packet, Ipv4Repr};
use mpterm_wire::mptcp::MptcpOption;
use mpterm_wire::tcp::{TcpFlags, TcpOptions, TcpRepr, TcpSegment};
use mpterm_wire::SeqNumber;
use rand_core::RngCore;

use crate::connection::{ConnectionEvents, ProxiedConnection, Side, Subflow, SubflowView};
use crate::mptcp::{MptcpSession, ResetReason, SubflowMptcp, DSS_OPTION_RESERVE};
use crate::mptcp_keys::derive_from_key;
use crate::neighbor::NeighborCache;
use crate::tcp::{CloseReason, ReceiveBufferSizing, Tcb, TcbCounters};
use crate::time_wait::{FlowKey, TimeWaitEntry, TimeWaitTable};
use crate::{Counters, EngineConfig, HeaderBytes, Instant, Payload, ProxyRule, Transmit};
use join::mp_join_syn;
use output::IpPair;

/// Where MPTCP tokens are registered so that they stay unique across workers
/// (RFC 8684, section 3.2: a token names one connection on this host).
pub trait TokenRegistry {
    /// Claims `token` for the connection the engine numbers `connection_id`; false when the
    /// token is already in use (the engine then draws another key).
    fn try_register(&mut self, token: u32, connection_id: u64) -> bool;
    /// Releases a token claimed earlier.
    fn release(&mut self, token: u32);
}

/// Why an address-management or priority request of the operator could not be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("no interface {0}")]
    NoSuchInterface(usize),
    #[error(
        "more than {} addresses announced",
        crate::mptcp::address::MAX_ADDRESSES
    )]
    TooManyAddresses,
    #[error("no connection {0}")]
    NoSuchConnection(u64),
    #[error("connection {connection} has no subflow {subflow} that can carry data")]
    NoSuchSubflow { connection: u64, subflow: u8 },
}

/// One of our addresses that connections are told of with ADD_ADDR (RFC 8684 section 3.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AnnouncedInterface {
    interface: usize,
    /// The port joins should use, when not the connection's own.
    port: Option<u16>,
}

/// Keys drawn before giving up on a unique token and serving the client as plain TCP.
const KEY_ATTEMPTS: usize = 16;
const DEFAULT_TTL: u8 = 64;
/// Frames the engine makes up by itself (ARP, ICMP echo replies, RSTs, TIME-WAIT ACKs) that
/// may wait to be polled at once. A driver whose transmit ring is full stops polling (the
/// worker's push-back); replies beyond this are dropped and counted rather than queued
/// without bound. Connection segments are not affected: they are produced only when polled.
const MAX_UNSOLICITED_BACKLOG: usize = 1024;
/// Timer heap entries reserved per connection: one armed deadline, and room for superseded
/// ones (a deadline moved earlier leaves the later entry until it expires).
const TIMER_ENTRIES_PER_CONNECTION: usize = 4;
const IPV4_HEADER_END: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN;
const IPV6_HEADER_END: usize = ethernet::HEADER_LEN + mpterm_wire::ipv6::HEADER_LEN;

#[derive(Debug)]
struct Slot<P: Payload> {
    connection: ProxiedConnection<P>,
    backend_interface: usize,
    backend_local: Option<SocketAddr>,
    /// The deadline for which a timer entry is queued, if any.
    armed: Option<Instant>,
    /// Queued for output polling.
    dirty: bool,
    /// Connection counters already added to the engine totals.
    counted: TcbCounters,
}

/// A TCP segment that matched no connection, with where and when it arrived.
#[derive(Debug, Clone, Copy)]
struct Arrival<'s, 'r> {
    now: Instant,
    interface: usize,
    /// Our address and port.
    local: SocketAddr,
    /// The sender's address and port.
    remote: SocketAddr,
    repr: &'s TcpRepr<'r>,
    payload_len: usize,
}

/// One worker's TCP/MPTCP engine. See the crate documentation for the call order.
pub struct Engine<P: Payload, R: RngCore, T: TokenRegistry> {
    config: EngineConfig,
    macs: Vec<EthernetAddress>,
    rng: R,
    tokens: T,
    counters: Counters,
    neighbors: NeighborCache<P>,
    slots: Vec<Option<Slot<P>>>,
    free_slots: Vec<usize>,
    live_connections: usize,
    flows: HashMap<FlowKey, (usize, Side)>,
    /// Connection sides in TIME-WAIT, apart from the connections (see [`crate::time_wait`]).
    time_wait: TimeWaitTable,
    /// The MPTCP tokens of this engine's connections, with their slots (RFC 8684 section 3.2:
    /// a token names one connection).
    local_tokens: HashMap<u32, usize>,
    next_connection_id: u64,
    next_ephemeral_port: u16,
    /// Frames ready to leave (ARP, ICMP, resets, frames whose next hop just resolved).
    output: VecDeque<Transmit<P>>,
    /// Connections that may have segments to send.
    dirty: VecDeque<usize>,
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    /// The interfaces whose addresses fully established connections are told of.
    announced: Vec<AnnouncedInterface>,
}

impl<P: Payload, R: RngCore, T: TokenRegistry> core::fmt::Debug for Engine<P, R, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("connections", &self.live_connections)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl<P: Payload, R: RngCore, T: TokenRegistry> Engine<P, R, T> {
    pub fn new(config: EngineConfig, mut rng: R, tokens: T) -> Self {
        let macs = config
            .interfaces
            .iter()
            .map(|interface| EthernetAddress(interface.mac))
            .collect();
        let time_wait = TimeWaitTable::new(config.max_time_wait);
        let ports = config.local_ports.clone();
        let span = u32::from(ports.end().saturating_sub(*ports.start())) + 1;
        let next_ephemeral_port = ports.start() + (rng.next_u32() % span) as u16;
        // Every table is sized here for `max_connections`, so that none grows or rehashes
        // under load (a rehash of a large table stalls the worker for milliseconds).
        let connections = config.max_connections;
        Engine {
            macs,
            rng,
            tokens,
            counters: Counters::default(),
            neighbors: NeighborCache::default(),
            slots: Vec::with_capacity(connections),
            free_slots: Vec::with_capacity(connections),
            live_connections: 0,
            // Each connection has a client-side and a backend-side flow.
            flows: HashMap::with_capacity(2 * connections),
            time_wait,
            local_tokens: HashMap::with_capacity(connections),
            next_connection_id: 1,
            next_ephemeral_port,
            output: VecDeque::with_capacity(MAX_UNSOLICITED_BACKLOG),
            dirty: VecDeque::with_capacity(connections),
            timers: BinaryHeap::with_capacity(TIMER_ENTRIES_PER_CONNECTION * connections),
            announced: Vec::with_capacity(crate::mptcp::address::MAX_ADDRESSES),
            config,
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Connections currently held (client side plus backend side count as one).
    pub fn connection_count(&self) -> usize {
        self.live_connections
    }

    /// Calls `visit` with each connection's id and its subflows as an operator sees them.
    pub fn visit_connections(
        &self,
        mut visit: impl FnMut(u64, &mut dyn Iterator<Item = SubflowView>),
    ) {
        for entry in self.slots.iter().flatten() {
            visit(entry.connection.id, &mut entry.connection.subflow_views());
        }
    }

    /// Connection sides currently in the TIME-WAIT table.
    pub fn time_wait_count(&self) -> usize {
        self.time_wait.len()
    }

    /// Four-tuples in the demultiplexing table: every subflow and every backend side held.
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// MPTCP tokens this engine holds for its connections (each also in the token registry).
    pub fn token_count(&self) -> usize {
        self.local_tokens.len()
    }

    // ----- input -----

    /// A frame received on interface `interface` (an index into `EngineConfig::interfaces`).
    pub fn handle_frame(&mut self, now: Instant, interface: usize, frame: P) {
        self.counters.rx_frames += 1;
        self.counters.rx_bytes += frame.len() as u64;
        if interface >= self.macs.len() {
            self.counters.rx_dropped_not_for_us += 1;
            return;
        }
        let Ok(ethernet_frame) = EthernetFrame::new_checked(frame.as_ref()) else {
            self.counters.rx_dropped_malformed += 1;
            return;
        };
        let destination = ethernet_frame.dst_addr();
        let ethertype = ethernet_frame.ethertype();
        // IPv6 has no broadcast: neighbour solicitations come to a multicast group
        // (33:33:ff:..), which `handle_ipv6` checks is one of ours.
        let multicast_ipv6 = ethertype == ethernet::ETHERTYPE_IPV6 && destination.is_multicast();
        if destination != self.macs[interface] && !destination.is_broadcast() && !multicast_ipv6 {
            self.counters.rx_dropped_not_for_us += 1;
            return;
        }
        let source_mac = ethernet_frame.src_addr();
        match ethertype {
            ethernet::ETHERTYPE_ARP => self.handle_arp(now, interface, &frame),
            ethernet::ETHERTYPE_IPV4 => self.handle_ipv4(now, interface, source_mac, &frame),
            ethernet::ETHERTYPE_IPV6 => self.handle_ipv6(now, interface, source_mac, &frame),
            _ => self.counters.rx_dropped_not_for_us += 1,
        }
    }

    /// RFC 826 "Packet Reception": merge the sender, answer requests for our address.
    fn handle_arp(&mut self, now: Instant, interface: usize, frame: &P) {
        let bytes = &frame.as_ref()[ethernet::HEADER_LEN..];
        let repr = match ArpPacket::new_checked(bytes).and_then(|packet| ArpRepr::parse(&packet)) {
            Ok(repr) => repr,
            Err(_) => {
                self.counters.rx_dropped_malformed += 1;
                return;
            }
        };
        let own_address = self.config.interfaces[interface].address;
        let for_us = repr.target_ip == own_address;
        if for_us
            || self
                .neighbors
                .lookup(now, interface, IpAddr::V4(repr.sender_ip))
                .is_some()
        {
            self.neighbors.learn(
                now,
                interface,
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
                if self.backlog_full() {
                    return;
                }
                let reply = ArpRepr {
                    operation: ArpOperation::Reply,
                    sender_mac: self.macs[interface],
                    sender_ip: own_address,
                    target_mac: repr.sender_mac,
                    target_ip: repr.sender_ip,
                };
                self.queue_arp(interface, repr.sender_mac, &reply);
                self.counters.arp_requests_answered += 1;
            }
            ArpOperation::Reply => self.counters.arp_replies_received += 1,
        }
    }

    /// True, with the drop counted, when no more frames of the engine's own may be queued.
    fn backlog_full(&mut self) -> bool {
        let full = self.output.len() >= MAX_UNSOLICITED_BACKLOG;
        self.counters.tx_dropped_backlog += u64::from(full);
        full
    }

    fn queue_arp(&mut self, interface: usize, destination: EthernetAddress, arp: &ArpRepr) {
        let mut header = HeaderBytes::new();
        let buffer = header.buffer_mut();
        let ethernet = EthernetRepr {
            src: self.macs[interface],
            dst: destination,
            ethertype: ethernet::ETHERTYPE_ARP,
        };
        let written = ethernet.emit(&mut buffer[..]).and_then(|eth_len| {
            arp.emit(&mut buffer[eth_len..])
                .map(|arp_len| eth_len + arp_len)
        });
        if let Ok(len) = written {
            // Pad to the Ethernet minimum of 60 bytes without the FCS.
            header.set_len(len.max(60));
            self.output.push_back(Transmit {
                interface,
                header,
                payload: None,
            });
        }
    }

    fn handle_ipv4(
        &mut self,
        now: Instant,
        interface: usize,
        source_mac: EthernetAddress,
        frame: &P,
    ) {
        let bytes = &frame.as_ref()[ethernet::HEADER_LEN..];
        let packet = match Ipv4Packet::new_checked(bytes) {
            Ok(packet) => packet,
            Err(_) => {
                self.counters.rx_dropped_malformed += 1;
                return;
            }
        };
        let repr = match Ipv4Repr::parse(&packet) {
            Ok(repr) => repr,
            Err(mpterm_wire::WireError::Unsupported) => {
                self.counters.rx_dropped_not_for_us += 1;
                return;
            }
            Err(_) => {
                self.counters.rx_dropped_malformed += 1;
                return;
            }
        };
        // The weak host model (RFC 1122 section 3.3.4.2), as Linux: a packet for any of our
        // addresses is ours on any port, so that a client's subflow toward our first address
        // may arrive over its second access link. Answers leave by the port it arrived on.
        if !self
            .config
            .interfaces
            .iter()
            .any(|interface| interface.address == repr.dst)
        {
            self.counters.rx_dropped_not_for_us += 1;
            return;
        }
        let interface_config = &self.config.interfaces[interface];
        // A peer on the link answers from its own MAC: learn it, sparing an ARP round trip.
        let source = IpAddr::V4(repr.src);
        if interface_config.is_on_link(repr.src)
            && self.neighbors.lookup(now, interface, source) != Some(source_mac)
        {
            self.neighbors
                .learn(now, interface, source, source_mac, &mut self.output);
        }
        let payload_start = ethernet::HEADER_LEN + packet.header_len();
        let payload_end = ethernet::HEADER_LEN + usize::from(packet.total_len());
        match repr.protocol {
            ipv4::PROTOCOL_ICMP => self.handle_icmp(
                now,
                interface,
                source_mac,
                &repr,
                frame,
                payload_start..payload_end,
            ),
            ipv4::PROTOCOL_TCP => self.handle_tcp(
                now,
                interface,
                IpPair::V4(repr.src, repr.dst),
                frame,
                payload_start..payload_end,
                packet.dscp_ecn() & 0b11 == output::ECN_CE,
            ),
            _ => self.counters.rx_dropped_not_for_us += 1,
        }
    }

    /// RFC 792: an echo reply carries the request's identifier, sequence number and data. The
    /// data leaves in the request's own buffer. Errors about our segments go to
    /// [`icmp_errors`].
    fn handle_icmp(
        &mut self,
        now: Instant,
        interface: usize,
        source_mac: EthernetAddress,
        ip: &Ipv4Repr,
        frame: &P,
        range: core::ops::Range<usize>,
    ) {
        let (start, end) = (range.start, range.end);
        let packet = match IcmpPacket::new_checked(&frame.as_ref()[start..end]) {
            Ok(packet) => packet,
            Err(_) => {
                self.counters.rx_dropped_malformed += 1;
                return;
            }
        };
        if is_error_type_v4(packet.msg_type()) {
            match IcmpErrorRepr::parse_v4(&packet) {
                Ok(error) => self.handle_icmp_error(now, error),
                Err(mpterm_wire::WireError::Unsupported) => {
                    self.counters.rx_dropped_not_for_us += 1
                }
                Err(_) => self.counters.rx_dropped_malformed += 1,
            }
            return;
        }
        let request = match IcmpEchoRepr::parse(&packet) {
            Ok(repr) if repr.kind == IcmpEchoKind::Request => repr,
            Ok(_) | Err(mpterm_wire::WireError::Unsupported) => {
                self.counters.rx_dropped_not_for_us += 1;
                return;
            }
            Err(_) => {
                self.counters.rx_dropped_malformed += 1;
                return;
            }
        };
        if self.backlog_full() {
            return;
        }
        let data = frame.slice(start + mpterm_wire::icmp::HEADER_LEN..end);
        let reply = IcmpEchoRepr {
            kind: IcmpEchoKind::Reply,
            ..request
        };
        let mut header = HeaderBytes::new();
        let buffer = header.buffer_mut();
        let ethernet = EthernetRepr {
            src: self.macs[interface],
            dst: source_mac,
            ethertype: ethernet::ETHERTYPE_IPV4,
        };
        let icmp_len = mpterm_wire::icmp::HEADER_LEN + data.len();
        let ip_reply = Ipv4Repr {
            src: ip.dst,
            dst: ip.src,
            protocol: ipv4::PROTOCOL_ICMP,
            payload_len: icmp_len as u16,
            ttl: DEFAULT_TTL,
        };
        let emitted = ethernet.emit(&mut buffer[..]).is_ok()
            && ip_reply.emit(&mut buffer[ethernet::HEADER_LEN..]).is_ok()
            && reply
                .emit(&mut buffer[IPV4_HEADER_END..], data.as_ref())
                .is_ok();
        if emitted {
            header.set_len(IPV4_HEADER_END + mpterm_wire::icmp::HEADER_LEN);
            self.output.push_back(Transmit {
                interface,
                header,
                payload: (!data.is_empty()).then_some(data),
            });
            self.counters.icmp_echo_answered += 1;
        }
    }

    /// A TCP segment in `frame[range]`, from and to `ip`'s addresses (either family), whose
    /// IP header said CE (RFC 3168 section 5) when `congestion_experienced`.
    fn handle_tcp(
        &mut self,
        now: Instant,
        interface: usize,
        ip: IpPair,
        frame: &P,
        range: core::ops::Range<usize>,
        congestion_experienced: bool,
    ) {
        let (start, end) = (range.start, range.end);
        let segment = match TcpSegment::new_checked(&frame.as_ref()[start..end]) {
            Ok(segment) => segment,
            Err(_) => {
                self.counters.rx_dropped_malformed += 1;
                return;
            }
        };
        // The payload is read once: its sum verifies the TCP checksum here and stays with the
        // payload handle for the DSS checksum and for the segment that relays it.
        let payload_sum = Checksum::of(segment.payload());
        let checksum_ok = match ip {
            IpPair::V4(src, dst) => {
                segment.verify_checksum_v4_with_payload_sum(src, dst, payload_sum)
            }
            IpPair::V6(src, dst) => {
                segment.verify_checksum_v6_with_payload_sum(src, dst, payload_sum)
            }
        };
        if !checksum_ok {
            self.counters.rx_dropped_malformed += 1;
            return;
        }
        let repr = match TcpRepr::parse(&segment) {
            Ok(repr) => repr,
            Err(_) => {
                // RFC 9293 3.1: a malformed option; the segment is dropped and counted.
                self.counters.rx_dropped_malformed += 1;
                return;
            }
        };
        self.counters.rx_unknown_options += u64::from(repr.options.unknown_options);
        for option in repr.options.mptcp.iter().flatten() {
            if matches!(option, MptcpOption::Unknown { .. }) {
                self.counters.rx_unknown_options += 1;
            }
        }
        let payload_start = start + segment.header_len();
        let payload = (payload_start < end).then(|| {
            let mut payload = frame.slice(payload_start..end);
            payload.set_payload_sum(payload_sum);
            payload
        });
        let local = SocketAddr::new(ip.dst(), repr.dst_port);
        let remote = SocketAddr::new(ip.src(), repr.src_port);
        if repr.flags.contains(TcpFlags::RST) {
            self.counters.tcp_rst_received += 1;
        }
        if let Some((slot, side)) = self.flows.get(&(local, remote)).copied() {
            if congestion_experienced {
                let tcb = self.slots.get_mut(slot).and_then(Option::as_mut);
                if let Some(tcb) = tcb.and_then(|entry| entry.connection.tcb_mut(side)) {
                    tcb.note_congestion_experienced();
                }
            }
            self.deliver(now, slot, side, &repr, payload);
            return;
        }
        let arrival = Arrival {
            now,
            interface,
            local,
            remote,
            repr: &repr,
            payload_len: payload.as_ref().map_or(0, |p| p.len()),
        };
        if self.time_wait.contains(&(local, remote)) {
            self.handle_time_wait(arrival);
        } else {
            self.handle_unmatched(arrival);
        }
    }

    fn deliver(
        &mut self,
        now: Instant,
        slot: usize,
        side: Side,
        repr: &TcpRepr<'_>,
        payload: Option<P>,
    ) {
        let Some(entry) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        match side {
            Side::Subflow(index) => entry
                .connection
                .handle_subflow_segment(now, index, repr, payload),
            Side::Backend => entry.connection.handle_backend_segment(now, repr, payload),
        }
        self.after_activity(now, slot);
    }

    /// A segment for a four-tuple in TIME-WAIT (RFC 9293 section 3.10.7.4, TIME-WAIT): a
    /// retransmitted FIN is acknowledged again; a RST is ignored (RFC 1337); a SYN to a
    /// listener that is newer than the old connection, by sequence number or timestamp, starts a
    /// new one (RFC 6191, as Linux's `tcp_timewait_state_process`); the rest is dropped.
    fn handle_time_wait(&mut self, arrival: Arrival<'_, '_>) {
        let Arrival {
            now,
            local,
            remote,
            repr,
            ..
        } = arrival;
        let Some(entry) = self.time_wait.get(&(local, remote)).copied() else {
            return;
        };
        let flags = repr.flags;
        if flags.contains(TcpFlags::SYN) && !flags.contains(TcpFlags::ACK) {
            let newer_seq = repr.seq.distance_from(entry.receive_next) > 0;
            let newer_timestamp = match (entry.ts_recent, repr.options.timestamps) {
                (Some(recent), Some(timestamps)) => {
                    (timestamps.value.wrapping_sub(recent) as i32) > 0
                }
                _ => false,
            };
            if newer_seq || newer_timestamp {
                // The entry gives way only if the SYN really starts a connection (it may be
                // an MP_JOIN, or find no room), so look up after trying.
                self.handle_unmatched(arrival);
                if self.flows.contains_key(&(local, remote)) {
                    self.time_wait.remove(&(local, remote));
                }
                return;
            }
        }
        if flags.contains(TcpFlags::FIN) && !flags.contains(TcpFlags::RST) {
            if self.backlog_full() {
                return;
            }
            self.counters.time_wait_acks_sent += 1;
            let mut options = TcpOptions::default();
            if let Some(recent) = entry.ts_recent {
                options.timestamps = Some(mpterm_wire::tcp::Timestamps {
                    value: now.timestamp_millis().max(1),
                    echo_reply: recent,
                });
            }
            let ack = TcpRepr {
                src_port: local.port(),
                dst_port: remote.port(),
                seq: entry.send_next,
                ack: entry.receive_next,
                flags: TcpFlags::ACK,
                window: entry.window,
                options,
            };
            if let Some(ip) = IpPair::of(local.ip(), remote.ip()) {
                self.transmit_tcp(now, entry.interface, ip, &ack, None, false);
            }
            return;
        }
        self.counters.rx_dropped_time_wait += 1;
    }

    /// A segment for no connection: a SYN to a listener opens one; anything else but a RST is
    /// answered with RST (RFC 9293, section 3.10.7.1).
    fn handle_unmatched(&mut self, arrival: Arrival<'_, '_>) {
        let repr = arrival.repr;
        let is_syn = repr.flags.contains(TcpFlags::SYN) && !repr.flags.contains(TcpFlags::ACK);
        if is_syn && !repr.flags.contains(TcpFlags::RST) {
            if let Some(join) = mp_join_syn(repr) {
                self.handle_join(arrival, join);
                return;
            }
        }
        let rule = self
            .config
            .proxies
            .iter()
            .copied()
            .find(|rule| rule.listen == arrival.local);
        if is_syn && !repr.flags.contains(TcpFlags::RST) {
            if let Some(rule) = rule {
                if self.live_connections < self.config.max_connections {
                    self.accept(arrival, rule);
                    return;
                }
                self.counters.connections_refused += 1;
            }
        }
        self.counters.rx_dropped_no_connection += 1;
        if !repr.flags.contains(TcpFlags::RST) {
            self.send_reset(arrival, None);
        }
    }

    /// RFC 9293 section 3.10.7.1: the RST answering a segment that matched no connection;
    /// with `reason`, it carries MP_TCPRST (RFC 8684 section 3.6).
    fn send_reset(&mut self, arrival: Arrival<'_, '_>, reason: Option<ResetReason>) {
        let Arrival {
            now,
            interface,
            local,
            remote,
            repr,
            payload_len,
        } = arrival;
        if self.backlog_full() {
            return;
        }
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
        let mut options = TcpOptions::default();
        options.mptcp[0] = reason.map(|reason| MptcpOption::MpTcpRst(reason.option()));
        let reset = TcpRepr {
            src_port: local.port(),
            dst_port: remote.port(),
            seq,
            ack,
            flags,
            window: 0,
            options,
        };
        self.counters.tcp_rst_sent += 1;
        if let Some(ip) = IpPair::of(local.ip(), remote.ip()) {
            self.transmit_tcp(now, interface, ip, &reset, None, false);
        }
    }

    fn accept(&mut self, arrival: Arrival<'_, '_>, rule: ProxyRule) {
        let Arrival {
            now,
            interface,
            local,
            remote,
            repr: syn,
            ..
        } = arrival;
        let Some(backend_route) = self.route(*rule.backend.ip()) else {
            self.counters.backend_connect_failures += 1;
            self.send_reset(arrival, None);
            return;
        };
        let id = self.next_connection_id;
        self.next_connection_id += 1;
        let iss = SeqNumber(self.rng.next_u32());
        let local_mss = self.config.interfaces[interface].mss_for(local.ip());
        let mut client = Tcb::accept(
            now,
            local,
            remote,
            syn,
            iss,
            local_mss,
            self.config.client_tcp,
        );
        let session = self.open_mptcp_session(syn, id);
        if session.is_some() {
            client.set_owner_option_reserve(DSS_OPTION_RESERVE);
            self.counters.mptcp_connections += 1;
        }
        let initial = Subflow::new(client, interface, SubflowMptcp::initial());
        let connection = ProxiedConnection::new(id, initial, session, rule.backend, rule.scheduler);
        let slot = Slot {
            connection,
            backend_interface: backend_route.0,
            backend_local: None,
            armed: None,
            dirty: false,
            counted: TcbCounters::default(),
        };
        let index = match self.free_slots.pop() {
            Some(index) => {
                self.slots[index] = Some(slot);
                index
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        };
        self.live_connections += 1;
        if let Some(session) = self.slots[index]
            .as_ref()
            .and_then(|slot| slot.connection.mptcp.as_ref())
        {
            self.local_tokens.insert(session.token(), index);
        }
        self.flows
            .insert((local, remote), (index, Side::Subflow(0)));
        self.counters.connections_accepted += 1;
        self.after_activity(now, index);
    }

    /// RFC 8684 section 3.1: a SYN with MP_CAPABLE version 1 gets a session with a fresh key
    /// whose token is unique; version 0 (RFC 6824) is not offered, so such a client falls back
    /// to plain TCP, as section 3.1 prescribes for a version we do not support.
    fn open_mptcp_session(
        &mut self,
        syn: &TcpRepr<'_>,
        connection_id: u64,
    ) -> Option<MptcpSession<P>> {
        let capable = syn
            .options
            .mptcp
            .iter()
            .flatten()
            .find_map(|option| match option {
                MptcpOption::MpCapable(capable) => Some(*capable),
                _ => None,
            })?;
        if capable.version != 1 {
            self.counters.mptcp_fallbacks += 1;
            return None;
        }
        for _ in 0..KEY_ATTEMPTS {
            let key = self.rng.next_u64();
            let token = derive_from_key(key).token;
            if self.tokens.try_register(token, connection_id) {
                let mut session = MptcpSession::new(
                    key,
                    self.config.mptcp_checksum_required,
                    capable.checksum_required,
                    self.config.client_tcp.send_buffer as usize,
                    ReceiveBufferSizing::for_tuning(&self.config.client_tcp),
                );
                if !self.config.mptcp_allow_join_initial_address {
                    session.deny_join_to_initial();
                }
                return Some(session);
            }
        }
        self.counters.mptcp_fallbacks += 1;
        None
    }

    /// After any input or timer on a connection: open the backend when the client is ready,
    /// account events and counters, queue for output and re-arm the timer.
    fn after_activity(&mut self, now: Instant, slot: usize) {
        let Some(entry) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let events = entry.connection.take_events();
        if events.client_established {
            self.counters.connections_established += 1;
        }
        if events.checksum_failure {
            self.counters.dss_checksum_failures += 1;
        }
        if events.mapping_mismatch {
            self.counters.dss_mapping_mismatches += 1;
        }
        if events.backend_failed {
            self.counters.backend_connect_failures += 1;
        }
        self.counters.mptcp_fastcloses_sent += u64::from(events.fast_close_sent);
        self.counters.mptcp_fastcloses_received += u64::from(events.fast_close_received);
        self.counters.mptcp_fastcloses_ignored += u64::from(events.fast_close_ignored);
        count_multipath_events(&mut self.counters, &events);
        let ready_for_announcements = entry.connection.ready_for_announcements();
        if entry.connection.needs_backend() {
            self.open_backend(now, slot);
        }
        if ready_for_announcements {
            self.offer_addresses(now, slot);
        }
        self.mark_dirty(slot);
        self.arm_timer(slot);
    }

    fn open_backend(&mut self, now: Instant, slot: usize) {
        let Some(entry) = self.slots.get(slot).and_then(Option::as_ref) else {
            return;
        };
        let backend = entry.connection.backend_address;
        let interface = entry.backend_interface;
        let local_ip = self.config.interfaces[interface].address;
        let mss_hint = entry.connection.backend_mss_hint();
        let Some((port, reused)) = self.allocate_port(now, local_ip, backend) else {
            if let Some(entry) = self.slots.get_mut(slot).and_then(Option::as_mut) {
                entry.connection.backend_unavailable(now);
            }
            return;
        };
        let local = SocketAddr::V4(SocketAddrV4::new(local_ip, port));
        let path_mss = usize::from(self.config.interfaces[interface].mss_for(local.ip()));
        let local_mss = path_mss.min(mss_hint) as u16;
        let iss = match reused {
            // Linux's `tcp_twsk_unique`: the new connection starts a window beyond the old
            // one's last sequence number, so no old duplicate falls into the new window.
            Some(old) => old.send_next + 65_535 + 2,
            None => SeqNumber(self.rng.next_u32()),
        };
        let backend = SocketAddr::V4(backend);
        let tcb = Tcb::connect(now, local, backend, iss, local_mss, self.config.backend_tcp);
        if let Some(entry) = self.slots.get_mut(slot).and_then(Option::as_mut) {
            entry.connection.attach_backend(tcb);
            entry.backend_local = Some(local);
        }
        self.flows.insert((local, backend), (slot, Side::Backend));
    }

    /// A source port toward `remote` that no connection uses: a free one, or one whose
    /// TIME-WAIT may be reused (then its entry is taken out and returned).
    fn allocate_port(
        &mut self,
        now: Instant,
        local_ip: Ipv4Addr,
        remote: SocketAddrV4,
    ) -> Option<(u16, Option<TimeWaitEntry>)> {
        let (first, last) = (
            *self.config.local_ports.start(),
            *self.config.local_ports.end(),
        );
        let span = usize::from(last.saturating_sub(first)) + 1;
        for _ in 0..span {
            let port = self.next_ephemeral_port;
            self.next_ephemeral_port = if port >= last { first } else { port + 1 };
            let flow = (
                SocketAddr::V4(SocketAddrV4::new(local_ip, port)),
                SocketAddr::V4(remote),
            );
            if self.flows.contains_key(&flow) {
                continue;
            }
            if !self.time_wait.contains(&flow) {
                return Some((port, None));
            }
            if self.config.time_wait_reuse && self.time_wait.reusable(&flow, now) {
                self.counters.time_wait_reused += 1;
                return Some((port, self.time_wait.remove(&flow)));
            }
        }
        None
    }

    fn mark_dirty(&mut self, slot: usize) {
        if let Some(entry) = self.slots.get_mut(slot).and_then(Option::as_mut) {
            if !entry.dirty {
                entry.dirty = true;
                self.dirty.push_back(slot);
            }
        }
    }

    fn account_counters(&mut self, slot: usize) {
        let Some(entry) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let now = entry.connection.counters();
        let before = entry.counted;
        self.counters.retransmissions += now.retransmissions - before.retransmissions;
        self.counters.rto_expirations += now.rto_expirations - before.rto_expirations;
        self.counters.fast_retransmits += now.fast_retransmits - before.fast_retransmits;
        self.counters.rx_dropped_out_of_window += now.out_of_window - before.out_of_window;
        self.counters.rx_dropped_bad_ack += now.unacceptable_acks - before.unacceptable_acks;
        self.counters.challenge_acks_sent += now.challenge_acks - before.challenge_acks;
        self.counters.mptcp_withheld_before_key += now.withheld - before.withheld;
        self.counters.keepalive_probes_sent += now.keepalive_probes - before.keepalive_probes;
        self.counters.rx_sack_blocks_invalid +=
            now.sack_blocks_invalid - before.sack_blocks_invalid;
        self.counters.dsacks_received += now.dsacks_received - before.dsacks_received;
        self.counters.rack_lost_segments += now.rack_lost_segments - before.rack_lost_segments;
        self.counters.tlp_probes_sent += now.tlp_probes - before.tlp_probes;
        self.counters.rx_dropped_paws += now.paws_rejected - before.paws_rejected;
        self.counters.delayed_acks_sent += now.delayed_acks - before.delayed_acks;
        self.counters.spurious_reductions_undone +=
            now.spurious_reductions_undone - before.spurious_reductions_undone;
        self.counters.ecn_ce_received += now.ecn_ce_received - before.ecn_ce_received;
        self.counters.ecn_window_reductions +=
            now.ecn_window_reductions - before.ecn_window_reductions;
        self.counters.pacing_delays += now.pacing_delays - before.pacing_delays;
        entry.counted = now;
    }

    /// Moves what a side in TIME-WAIT still needs into the TIME-WAIT table, if there is room.
    fn keep_time_wait(&mut self, flow: FlowKey, interface: usize, tcb: &Tcb<P>) {
        let Some(view) = tcb.time_wait_view() else {
            return;
        };
        let entry = TimeWaitEntry {
            interface,
            entered: view.entered,
            expires: view.expires,
            send_next: view.send_next,
            receive_next: view.receive_next,
            window: view.window,
            ts_recent: view.ts_recent,
        };
        if self.time_wait.insert(flow, entry) {
            self.counters.time_wait_entered += 1;
        } else {
            self.counters.time_wait_overflows += 1;
        }
    }

    fn count_close_reason(&mut self, reason: CloseReason) {
        match reason {
            CloseReason::TimedOut => self.counters.tcp_timeouts += 1,
            CloseReason::ResetByPeer => self.counters.tcp_resets_by_peer += 1,
            CloseReason::KeepaliveTimeout => self.counters.keepalive_timeouts += 1,
            CloseReason::FinWait2Timeout => self.counters.fin_wait_2_timeouts += 1,
            CloseReason::UserTimeout => self.counters.user_timeouts += 1,
            CloseReason::Graceful | CloseReason::Aborted => {}
        }
    }

    /// A subflow leaves the flow table, into TIME-WAIT if it is there.
    fn release_subflow(&mut self, subflow: &Subflow<P>) {
        let flow = (subflow.tcb.local(), subflow.tcb.remote());
        self.flows.remove(&flow);
        self.keep_time_wait(flow, subflow.interface, &subflow.tcb);
        if let Some(reason) = subflow.tcb.close_reason() {
            self.count_close_reason(reason);
        }
    }

    /// Subflows that finished while their connection goes on give back their place.
    fn release_finished_subflows(&mut self, slot: usize) {
        loop {
            let Some(entry) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            if entry.connection.is_finished() {
                return;
            }
            let Some((_, subflow)) = entry.connection.take_finished_subflow() else {
                return;
            };
            self.release_subflow(&subflow);
        }
    }

    fn release_if_finished(&mut self, slot: usize) {
        let finished = self
            .slots
            .get(slot)
            .and_then(Option::as_ref)
            .is_some_and(|entry| entry.connection.is_finished());
        if !finished {
            return;
        }
        let Some(entry) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let connection = &entry.connection;
        for (_, subflow) in connection.subflows() {
            self.release_subflow(subflow);
        }
        if let (Some(local), Some(backend)) = (entry.backend_local, connection.backend.as_ref()) {
            let backend_flow = (local, backend.remote());
            self.flows.remove(&backend_flow);
            self.keep_time_wait(backend_flow, entry.backend_interface, backend);
        }
        if let Some(session) = connection.mptcp.as_ref() {
            self.tokens.release(session.token());
            self.local_tokens.remove(&session.token());
        }
        let backend_reason = connection
            .backend
            .as_ref()
            .and_then(|backend| backend.close_reason());
        if let Some(reason) = backend_reason {
            self.count_close_reason(reason);
        }
        self.free_slots.push(slot);
        self.live_connections -= 1;
        self.counters.connections_closed += 1;
    }
}

/// The multipath events of one connection into the engine's totals.
fn count_multipath_events(counters: &mut Counters, events: &ConnectionEvents) {
    // A fallback happens on input, or as our infinite mapping leaves (section 3.7).
    counters.mptcp_fallbacks += u64::from(events.fell_back);
    counters.mptcp_joins_established += u64::from(events.joins_established);
    counters.mptcp_join_hmac_failures += u64::from(events.join_hmac_failures);
    counters.mptcp_data_acks_beyond_sent += u64::from(events.data_acks_beyond_sent);
    counters.mptcp_prio_received += u64::from(events.priorities_received);
    counters.mptcp_reinjected_bytes += events.reinjected_bytes;
    counters.mptcp_subflow_failovers += u64::from(events.failovers);
    counters.mptcp_data_duplicates += u64::from(events.data_duplicates);
    counters.mptcp_data_overflows += u64::from(events.data_overflows);
    counters.mptcp_data_retransmissions += u64::from(events.data_retransmissions);
    counters.mptcp_add_addr_sent += u64::from(events.add_addr_sent);
    counters.mptcp_add_addr_echoed += u64::from(events.add_addr_echoed);
    counters.mptcp_add_addr_unanswered += u64::from(events.add_addr_unanswered);
    counters.mptcp_add_addr_received += u64::from(events.add_addr_received);
    counters.mptcp_add_addr_bad_hmac += u64::from(events.add_addr_bad_hmac);
    counters.mptcp_remove_addr_sent += u64::from(events.remove_addr_sent);
    counters.mptcp_remove_addr_received += u64::from(events.remove_addr_received);
    counters.mptcp_remove_addr_unknown += u64::from(events.remove_addr_unknown);
    counters.mptcp_remove_addr_subflows_closed += u64::from(events.remove_addr_subflows_closed);
    counters.mptcp_prio_sent += u64::from(events.priorities_sent);
    counters.mptcp_subflows_failed += u64::from(events.subflows_failed);
    counters.mptcp_mp_fail_sent += u64::from(events.mp_fail_sent);
    counters.mptcp_mp_fail_received += u64::from(events.mp_fail_received);
    counters.mptcp_infinite_mappings_sent += u64::from(events.infinite_mappings_sent);
    counters.mptcp_infinite_mappings_received += u64::from(events.infinite_mappings_received);
    counters.mptcp_checksum_rewinds += u64::from(events.checksum_rewinds);
    counters.mptcp_fail_resets += u64::from(events.failure_resets);
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "engine_address_tests.rs"]
mod address_tests;

#[cfg(test)]
#[path = "engine_ipv6_tests.rs"]
mod ipv6_tests;
