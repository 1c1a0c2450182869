//! Shared pieces of the simulated networks: a payload type, seeded lossy links with virtual
//! time, and TCP segments and Ethernet frames encoded and parsed with `mpterm-wire`, so every
//! segment crosses the simulated link as bytes.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod engine_net;
pub mod multipath_client;
pub mod multipath_net;

use core::net::{Ipv4Addr, SocketAddrV4};
use core::ops::Range;
use core::time::Duration;

use bytes::Bytes;
use mpterm_engine::tcp::{OutgoingSegment, Tcb};
use mpterm_engine::{Instant, Payload, TcpTuning};
use mpterm_wire::ethernet::{self, EthernetAddress, EthernetFrame, EthernetRepr};
use mpterm_wire::ipv4::{self, Ipv4Packet, Ipv4Repr};
use mpterm_wire::tcp::{self, TcpRepr, TcpSegment};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Payload for the simulations: a reference-counted byte slice. (The crate's own `Bytes`
/// implementation of [`Payload`] exists only under its `bytes` feature.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buf(pub Bytes);

impl AsRef<[u8]> for Buf {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Payload for Buf {
    fn slice(&self, range: Range<usize>) -> Self {
        Buf(self.0.slice(range))
    }
}

/// Deterministic test data for stream `salt`.
pub fn pattern(len: usize, salt: u64) -> Bytes {
    let mut rng = ChaCha8Rng::seed_from_u64(salt);
    let mut data = vec![0u8; len];
    rng.fill_bytes(&mut data);
    Bytes::from(data)
}

/// SHA-256 of `data`, for short failure messages about large transfers.
pub fn sha256(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 100 Mbit/s.
pub const LINK_RATE: u64 = 12_500_000;

/// Impairments of one direction of a link.
#[derive(Debug, Clone, Copy)]
pub struct LinkConfig {
    pub delay: Duration,
    /// Serialization rate: a packet occupies the link for its length divided by this rate,
    /// so a burst arrives spread out, as on a real link (the queue before it is unbounded).
    pub bytes_per_second: u64,
    /// Probability that a packet is lost.
    pub loss: f64,
    /// Probability that a packet is held back by up to two extra delays (so it arrives after
    /// packets sent later).
    pub reorder: f64,
    /// Probability that a packet arrives twice.
    pub duplicate: f64,
    /// Each packet's delay grows by a random share of this, seeded; packets keep their order
    /// (a later one never arrives before an earlier one), unlike with `reorder`.
    pub jitter: Duration,
    /// Every packet put on the link in this interval is lost: the link is cut, both ends
    /// still up.
    pub blackout: Option<Blackout>,
}

/// A time interval in which a link carries nothing.
#[derive(Debug, Clone, Copy)]
pub struct Blackout {
    pub from: Instant,
    pub until: Instant,
}

impl Blackout {
    fn covers(&self, at: Instant) -> bool {
        self.from <= at && at < self.until
    }
}

impl LinkConfig {
    pub fn clean(delay: Duration) -> LinkConfig {
        LinkConfig {
            delay,
            bytes_per_second: LINK_RATE,
            loss: 0.0,
            reorder: 0.0,
            duplicate: 0.0,
            jitter: Duration::ZERO,
            blackout: None,
        }
    }

    pub fn lossy(delay: Duration, loss: f64) -> LinkConfig {
        LinkConfig {
            delay,
            bytes_per_second: LINK_RATE,
            loss,
            reorder: 0.02,
            duplicate: 0.01,
            jitter: Duration::ZERO,
            blackout: None,
        }
    }
}

/// Counts of what a link did to the packets it carried.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkStats {
    pub sent: u64,
    pub lost: u64,
    pub reordered: u64,
    pub duplicated: u64,
    /// Packets lost to a blackout (not counted in `lost`).
    pub blacked_out: u64,
    /// Of `lost`, the packets that carried TCP payload (the rest were pure ACKs).
    pub lost_with_payload: u64,
}

/// Whether a TCP segment (as the simulated links carry them) has payload: longer than its
/// header (data offset, RFC 9293 section 3.1).
fn carries_tcp_payload(segment: &[u8]) -> bool {
    segment
        .get(12)
        .is_some_and(|&offset| segment.len() > usize::from(offset >> 4) * 4)
}

/// One direction of a link: packets in flight with their arrival times.
#[derive(Debug)]
pub struct Link {
    pub config: LinkConfig,
    rng: ChaCha8Rng,
    /// `(arrival, sequence of sending, bytes)`; the sequence keeps equal arrivals in order.
    in_flight: Vec<(Instant, u64, Vec<u8>)>,
    sent: u64,
    /// When the link finishes serializing what it was given so far.
    busy_until: Instant,
    /// The latest arrival of a packet that kept its order: jitter never moves one before it.
    last_in_order_arrival: Instant,
    pub stats: LinkStats,
}

impl Link {
    pub fn new(config: LinkConfig, seed: u64) -> Link {
        Link {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            in_flight: Vec::new(),
            sent: 0,
            busy_until: Instant::ZERO,
            last_in_order_arrival: Instant::ZERO,
            stats: LinkStats::default(),
        }
    }

    fn chance(&mut self, probability: f64) -> bool {
        probability > 0.0 && (self.rng.next_u32() as f64) < probability * 4_294_967_296.0
    }

    /// Puts a packet on the link at `now`; it may be lost, delayed or doubled.
    pub fn send(&mut self, now: Instant, packet: Vec<u8>) {
        self.stats.sent += 1;
        // The packet waits for the link, then takes its serialization time, lost or not.
        let serialization = Duration::from_nanos(
            (packet.len() as u64 * 1_000_000_000)
                .checked_div(self.config.bytes_per_second)
                .unwrap_or(0),
        );
        let departure = self.busy_until.max(now) + serialization;
        self.busy_until = departure;
        if self.config.blackout.is_some_and(|cut| cut.covers(now)) {
            self.stats.blacked_out += 1;
            return;
        }
        if self.chance(self.config.loss) {
            self.stats.lost += 1;
            if carries_tcp_payload(&packet) {
                self.stats.lost_with_payload += 1;
            }
            return;
        }
        let copies = if self.chance(self.config.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut delay = self.config.delay;
            let jitter = self.config.jitter.as_nanos() as u64;
            if jitter > 0 {
                delay += Duration::from_nanos(u64::from(self.rng.next_u32()) % (jitter + 1));
            }
            let mut arrival = departure + delay;
            if self.chance(self.config.reorder) {
                self.stats.reordered += 1;
                let extra =
                    u64::from(self.rng.next_u32()) % (2 * self.config.delay.as_nanos() as u64 + 1);
                arrival = arrival + Duration::from_nanos(extra);
            } else {
                arrival = arrival.max(self.last_in_order_arrival);
                self.last_in_order_arrival = arrival;
            }
            self.sent += 1;
            self.in_flight.push((arrival, self.sent, packet.clone()));
        }
    }

    /// The earliest arrival still in flight.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.in_flight.iter().map(|(at, _, _)| *at).min()
    }

    /// Removes and returns the packets that have arrived by `now`, in arrival order.
    pub fn arrivals(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut due: Vec<(Instant, u64, Vec<u8>)> = Vec::new();
        let mut index = 0;
        while index < self.in_flight.len() {
            if self.in_flight[index].0 <= now {
                due.push(self.in_flight.swap_remove(index));
            } else {
                index += 1;
            }
        }
        due.sort_by_key(|(at, order, _)| (*at, *order));
        due.into_iter().map(|(_, _, bytes)| bytes).collect()
    }

    pub fn is_idle(&self) -> bool {
        self.in_flight.is_empty()
    }
}

/// The TCP segment bytes (header, options, payload) of `segment`, checksummed for `src` to
/// `dst`: `TcpRepr::emit` plus `fill_checksum_v4`.
pub fn encode_segment(segment: &OutgoingSegment<Buf>, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let payload: &[u8] = segment.payload.as_ref().map_or(&[], |p| p.as_ref());
    let header_len = segment.repr.header_len();
    let mut bytes = vec![0u8; header_len + payload.len()];
    segment
        .repr
        .emit(&mut bytes)
        .expect("the Tcb emits valid headers");
    bytes[header_len..].copy_from_slice(payload);
    let (header, payload) = bytes.split_at_mut(header_len);
    tcp::fill_checksum_v4(header, src, dst, payload);
    bytes
}

/// Parses segment bytes back: checked, checksum verified, the repr and a copy of the payload.
pub fn decode_segment(bytes: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> (TcpRepr<'_>, Option<Buf>) {
    let segment = TcpSegment::new_checked(bytes).expect("segment length");
    assert!(
        segment.verify_checksum_v4(src, dst),
        "TCP checksum of an emitted segment"
    );
    let payload = segment.payload();
    let payload = (!payload.is_empty()).then(|| Buf(Bytes::copy_from_slice(payload)));
    let repr = TcpRepr::parse(&segment).expect("emitted segment parses");
    (repr, payload)
}

/// An Ethernet + IPv4 + TCP frame.
pub fn tcp_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    segment: &[u8],
) -> Vec<u8> {
    let mut frame = vec![0u8; ethernet::HEADER_LEN + ipv4::HEADER_LEN + segment.len()];
    EthernetRepr {
        src: EthernetAddress(src_mac),
        dst: EthernetAddress(dst_mac),
        ethertype: ethernet::ETHERTYPE_IPV4,
    }
    .emit(&mut frame)
    .unwrap();
    Ipv4Repr {
        src,
        dst,
        protocol: ipv4::PROTOCOL_TCP,
        payload_len: segment.len() as u16,
        ttl: 64,
    }
    .emit(&mut frame[ethernet::HEADER_LEN..])
    .unwrap();
    frame[ethernet::HEADER_LEN + ipv4::HEADER_LEN..].copy_from_slice(segment);
    frame
}

/// What a frame from the engine carries, as far as the harness cares.
#[derive(Debug)]
pub enum Parsed<'a> {
    Arp(mpterm_wire::arp::ArpRepr, EthernetAddress),
    Tcp {
        src_mac: EthernetAddress,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        segment: &'a [u8],
    },
    Other,
}

pub fn parse_frame(frame: &[u8]) -> Parsed<'_> {
    let ethernet = EthernetFrame::new_checked(frame).expect("Ethernet header");
    let repr = EthernetRepr::parse(&ethernet);
    match repr.ethertype {
        ethernet::ETHERTYPE_ARP => {
            let packet = mpterm_wire::arp::ArpPacket::new_checked(&frame[ethernet::HEADER_LEN..])
                .expect("ARP length");
            let arp = mpterm_wire::arp::ArpRepr::parse(&packet).expect("ARP parses");
            Parsed::Arp(arp, repr.src)
        }
        ethernet::ETHERTYPE_IPV4 => {
            let ip = Ipv4Packet::new_checked(&frame[ethernet::HEADER_LEN..]).expect("IPv4");
            assert!(ip.verify_checksum(), "IPv4 header checksum");
            let ip_repr = Ipv4Repr::parse(&ip).expect("IPv4 parses");
            if ip_repr.protocol != ipv4::PROTOCOL_TCP {
                return Parsed::Other;
            }
            let start = ethernet::HEADER_LEN + ip.header_len();
            let end = ethernet::HEADER_LEN + usize::from(ip.total_len());
            Parsed::Tcp {
                src_mac: repr.src,
                src: ip_repr.src,
                dst: ip_repr.dst,
                segment: &frame[start..end],
            }
        }
        _ => Parsed::Other,
    }
}

/// An application on top of a [`Tcb`]: writes `outgoing` as fast as the send buffer takes it,
/// closes once all is queued, and collects what arrives.
#[derive(Debug)]
pub struct App {
    pub outgoing: Bytes,
    pub queued: usize,
    pub received: Vec<u8>,
    pub closed: bool,
    /// Largest receive-queue occupancy seen.
    pub max_buffered: usize,
}

impl App {
    pub fn new(outgoing: Bytes) -> App {
        App {
            outgoing,
            queued: 0,
            received: Vec::new(),
            closed: false,
            max_buffered: 0,
        }
    }

    /// Queues what fits (in chunks of at most 16 KiB) and closes after the last byte. Like an
    /// application on a blocking socket, it writes only once the connection is established.
    pub fn write(&mut self, tcb: &mut Tcb<Buf>) {
        if !tcb.is_synchronized() {
            return;
        }
        while self.queued < self.outgoing.len() {
            let len = (self.outgoing.len() - self.queued)
                .min(16 * 1024)
                .min(tcb.send_capacity());
            if len == 0 {
                break;
            }
            let chunk = Buf(self.outgoing.slice(self.queued..self.queued + len));
            tcb.send(chunk).expect("send within capacity");
            self.queued += len;
        }
        if self.queued == self.outgoing.len() && !self.closed && tcb.is_synchronized() {
            tcb.close();
            self.closed = true;
        }
    }

    /// Records the receive-queue occupancy, then reads everything in order.
    pub fn read(&mut self, tcb: &mut Tcb<Buf>) {
        self.read_at_most(tcb, usize::MAX);
    }

    /// Like [`App::read`], but takes at most `budget` bytes (whole chunks); returns how many.
    pub fn read_at_most(&mut self, tcb: &mut Tcb<Buf>, budget: usize) -> usize {
        self.max_buffered = self.max_buffered.max(tcb.received_buffered());
        let mut taken = 0;
        while taken < budget {
            let Some(chunk) = tcb.recv() else { break };
            taken += chunk.payload.0.len();
            self.received.extend_from_slice(chunk.payload.as_ref());
        }
        taken
    }
}

pub fn tuning() -> TcpTuning {
    TcpTuning {
        receive_buffer: 256 * 1024,
        send_buffer: 256 * 1024,
        initial_rto: Duration::from_secs(1),
        min_rto: Duration::from_millis(200),
        max_rto: Duration::from_secs(60),
        time_wait: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(30),
        ..TcpTuning::default()
    }
}

pub fn socket(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), port)
}
