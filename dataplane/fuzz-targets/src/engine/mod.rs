//! The engine target: `Engine::handle_frame` fed a script of frames around a live MPTCP
//! connection.
//!
//! Every input starts from the same engine state ([`Harness::with_live_connection`]): a
//! deterministic RNG and a scripted MP_CAPABLE handshake with DSS checksums, a backend that
//! accepted the engine's connection, and data relayed both ways. The input is then decoded
//! as a script ([`script`]) of segments relative to the live flows (sequence and
//! acknowledgment numbers, flags, window, options, payload), bursts, new connections, MP_JOIN
//! SYNs, ARP, ICMP, raw TCP headers and garbage frames, and waits. Between steps the harness
//! runs every timer that is due (virtual time jumps from deadline to deadline), drains
//! `poll_transmit`, and answers the engine's ARP requests for the hosts it plays.
//!
//! Invariants, checked after every step (a violation panics, which the fuzzer reports):
//! - no panic in the engine;
//! - every frame the engine emits parses with `mpterm-wire` at every layer, with valid IPv4,
//!   ICMP, TCP and DSS checksums, from the interface's own addresses, within its MTU;
//! - `connection_count()` never exceeds `max_connections`;
//! - no counter ever decreases;
//! - the engine does not keep producing work at one instant (a timer that stays due).

mod frames;
mod inputs;
mod peer;
pub mod script;
mod setup;

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use std::collections::VecDeque;

use mpterm_engine::{Counters, Engine, EngineConfig, Instant, TokenRegistry};
use mpterm_wire::arp::{ArpOperation, ArpRepr};
use mpterm_wire::ethernet::{self, EthernetAddress};
use mpterm_wire::ipv4;
use mpterm_wire::tcp::{TcpFlags, TcpRepr};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

use frames::{Emitted, FrameBuffer, Link};
use peer::{Peer, Role};
use script::{SegmentSpec, Step};
pub use setup::fuzz_engine_config;
use setup::*;

/// Peers the harness keeps track of; connections beyond them still happen, untracked.
const MAX_PEERS: usize = 12;
/// Timer rounds at one instant before the harness calls it a livelock.
const MAX_ROUNDS_AT_ONE_INSTANT: usize = 1000;
/// Timer deadlines one wait may run through before time jumps to its end.
const MAX_DEADLINES_PER_WAIT: usize = 20_000;
/// Frames one drain may produce before the harness calls it unbounded output.
const MAX_FRAMES_PER_DRAIN: usize = 100_000;
/// A burst of size zero sends segments of this size.
const DEFAULT_BURST_SEGMENT: u16 = 1400;

/// The target: a live connection, then the script the input decodes to.
pub fn engine_frames(data: &[u8]) {
    run_engine_frames(data);
}

/// [`engine_frames`], returning the engine's counters at the end: what a corpus reaches.
pub fn run_engine_frames(data: &[u8]) -> Counters {
    let mut harness = Harness::with_live_connection();
    for step in script::decode(data) {
        harness.apply(&step);
    }
    *harness.engine.counters()
}

/// The same as [`engine_frames`], printing every step and every frame the engine sends to
/// stderr: for reading a crashing input (`mpterm-fuzz-explain engine_frames FILE`).
pub fn explain_engine_frames(data: &[u8]) {
    let mut harness = Harness::with_live_connection();
    harness.trace = true;
    for (index, step) in script::decode(data).iter().enumerate() {
        eprintln!("step {index} at {:?}: {step:?}", harness.now);
        harness.apply(step);
    }
    eprintln!("end: {harness:?}");
}

/// A token table for one engine (the control crate's shared one does the same across
/// workers).
#[derive(Debug, Default)]
struct Tokens {
    registered: Vec<u32>,
}

impl TokenRegistry for Tokens {
    fn try_register(&mut self, token: u32, _connection_id: u64) -> bool {
        if self.registered.contains(&token) {
            return false;
        }
        self.registered.push(token);
        true
    }

    fn release(&mut self, token: u32) {
        self.registered.retain(|registered| *registered != token);
    }
}

/// The engine, virtual time and the peers around it.
pub struct Harness {
    engine: Engine<FrameBuffer, ChaCha8Rng, Tokens>,
    config: EngineConfig,
    now: Instant,
    peers: Vec<Peer>,
    next_client_port: u16,
    /// Frames the harness's hosts send in answer to the engine (ARP replies).
    answers: VecDeque<(usize, FrameBuffer)>,
    /// The counters after the previous step, by name.
    counters_before: Vec<(String, u64)>,
    /// Prints every frame the engine sends.
    trace: bool,
}

impl core::fmt::Debug for Harness {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Harness")
            .field("now", &self.now)
            .field("engine", &self.engine)
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
}

impl Harness {
    fn new(config: EngineConfig) -> Harness {
        let engine = Engine::new(
            config.clone(),
            ChaCha8Rng::seed_from_u64(ENGINE_SEED),
            Tokens::default(),
        );
        let counters_before = counter_values(engine.counters());
        Harness {
            engine,
            config,
            now: Instant::from_nanos(1_000_000_000),
            peers: Vec::new(),
            next_client_port: CLIENT_PORT + 1,
            answers: VecDeque::new(),
            counters_before,
            trace: false,
        }
    }

    /// Runs one step, then the timers due, the output and the invariant checks.
    pub fn apply(&mut self, step: &Step) {
        match step {
            Step::Segment(spec) => self.send_segment(spec),
            Step::Burst {
                peer,
                segments,
                size,
            } => {
                let payload_len = if *size == 0 {
                    DEFAULT_BURST_SEGMENT
                } else {
                    *size
                };
                for _ in 0..*segments {
                    self.send_segment(&SegmentSpec {
                        peer: *peer,
                        payload_len,
                        ..SegmentSpec::default()
                    });
                }
            }
            Step::NewConnection { kind, port } => self.new_connection(*kind, *port),
            Step::Join {
                kind,
                address_id,
                token,
                nonce,
            } => self.join(*kind, *address_id, *token, *nonce),
            Step::Arp {
                kind,
                interface,
                mac_byte,
            } => self.arp(*kind, *interface, *mac_byte),
            Step::Icmp { kind, payload_len } => self.icmp(*kind, *payload_len),
            Step::RawTcp {
                peer,
                keep_ports,
                header,
                payload_len,
            } => self.raw_tcp(*peer, *keep_ports, header, *payload_len),
            Step::Garbage {
                interface,
                flags,
                bytes,
            } => self.garbage(*interface, *flags, bytes),
            Step::Wait { amount } => {
                let scale = u32::from(amount >> 12);
                let micros = (u64::from(amount & 0x0fff) * 10) << scale;
                self.advance_to(self.now + Duration::from_micros(micros));
            }
            Step::NextTimer => {
                if let Some(deadline) = self.engine.poll_timeout() {
                    self.advance_to(deadline.max(self.now));
                }
            }
        }
        self.settle();
        self.check_invariants();
    }

    // ----- time and output -----

    /// Moves virtual time to `target`, running every timer at its own deadline on the way.
    fn advance_to(&mut self, target: Instant) {
        for _ in 0..MAX_DEADLINES_PER_WAIT {
            match self.engine.poll_timeout() {
                Some(deadline) if deadline <= target => {
                    self.now = self.now.max(deadline);
                    self.settle();
                }
                _ => break,
            }
        }
        self.now = self.now.max(target);
        self.settle();
    }

    /// Runs what is due at `now` until the engine is quiet: timers, output, the hosts'
    /// answers.
    fn settle(&mut self) {
        for _ in 0..MAX_ROUNDS_AT_ONE_INSTANT {
            self.drain();
            if let Some((interface, frame)) = self.answers.pop_front() {
                self.engine.handle_frame(self.now, interface, frame);
                continue;
            }
            match self.engine.poll_timeout() {
                Some(deadline) if deadline <= self.now => self.engine.handle_timeout(self.now),
                _ => return,
            }
        }
        panic!(
            "the engine keeps producing work at one instant: timer {:?} at {:?}",
            self.engine.poll_timeout(),
            self.now
        );
    }

    fn drain(&mut self) {
        for _ in 0..MAX_FRAMES_PER_DRAIN {
            let Some(transmit) = self.engine.poll_transmit(self.now) else {
                return;
            };
            let interface = self
                .config
                .interfaces
                .get(transmit.interface)
                .unwrap_or_else(|| panic!("transmit on interface {}", transmit.interface))
                .clone();
            let mut frame = transmit.header.as_slice().to_vec();
            if let Some(payload) = &transmit.payload {
                frame.extend_from_slice(payload.as_ref());
            }
            if self.trace {
                eprintln!(
                    "  engine -> interface {}: {}",
                    transmit.interface,
                    summary(&frame)
                );
            }
            let peers = &self.peers;
            let own_addresses: Vec<Ipv4Addr> = self
                .config
                .interfaces
                .iter()
                .map(|interface| interface.address)
                .collect();
            let reference = |source: Ipv4Addr, dst: Ipv4Addr, port: u16| {
                peers
                    .iter()
                    .find(|peer| {
                        peer.address == SocketAddrV4::new(dst, port)
                            && *peer.appliance.ip() == source
                    })
                    .and_then(Peer::expected_data_seq)
            };
            match frames::check_emitted(&interface, &own_addresses, &frame, reference) {
                Emitted::Arp(arp) => self.answer_arp(transmit.interface, &arp),
                Emitted::IcmpEchoReply => {}
                Emitted::Tcp {
                    src,
                    dst,
                    repr,
                    payload,
                } => self.observe_tcp(transmit.interface, src, dst, &repr, payload.len()),
            }
        }
        panic!("the engine produced more than {MAX_FRAMES_PER_DRAIN} frames at once");
    }

    /// The hosts the harness plays answer ARP requests for their addresses (RFC 826).
    fn answer_arp(&mut self, interface: usize, request: &ArpRepr) {
        if request.operation != ArpOperation::Request {
            return;
        }
        let host_mac = match (interface, request.target_ip) {
            (0, ip) if ip == CLIENT_IP => CLIENT_MAC,
            (0, ip) if ip == SECOND_CLIENT_IP => SECOND_CLIENT_MAC,
            (1, ip) if ip == *BACKEND.ip() => BACKEND_MAC,
            _ => return,
        };
        let reply = ArpRepr {
            operation: ArpOperation::Reply,
            sender_mac: EthernetAddress(host_mac),
            sender_ip: request.target_ip,
            target_mac: request.sender_mac,
            target_ip: request.sender_ip,
        };
        let link = Link {
            src_mac: host_mac,
            dst_mac: request.sender_mac.0,
        };
        self.answers
            .push_back((interface, frames::arp_frame(link, &reply)));
    }

    /// A segment from the engine: the peer it is for takes it in; the engine's SYN to a
    /// backend makes a new backend peer.
    fn observe_tcp(
        &mut self,
        interface: usize,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        repr: &TcpRepr<'_>,
        payload_len: usize,
    ) {
        let appliance = SocketAddrV4::new(src, repr.src_port);
        let address = SocketAddrV4::new(dst, repr.dst_port);
        if let Some(peer) = self
            .peers
            .iter_mut()
            .find(|peer| peer.address == address && peer.appliance == appliance)
        {
            peer.observe(repr, payload_len);
            return;
        }
        let is_syn = repr.flags.contains(TcpFlags::SYN) && !repr.flags.contains(TcpFlags::ACK);
        if is_syn && address == BACKEND && self.peers.len() < MAX_PEERS {
            let backends = self
                .peers
                .iter()
                .filter(|p| p.role == Role::Backend)
                .count() as u32;
            let mut peer = Peer::new(
                Role::Backend,
                interface,
                BACKEND_MAC,
                address,
                appliance,
                BACKEND_ISS + backends.wrapping_mul(0x0100_0000),
                None,
            );
            peer.observe(repr, payload_len);
            self.peers.push(peer);
        }
    }

    // ----- invariants -----

    fn check_invariants(&mut self) {
        let connections = self.engine.connection_count();
        assert!(
            connections <= self.config.max_connections,
            "{connections} connections held, at most {} configured",
            self.config.max_connections
        );
        let counters = counter_values(self.engine.counters());
        for ((name, before), (_, after)) in self.counters_before.iter().zip(&counters) {
            assert!(
                after >= before,
                "counter {name} went down from {before} to {after}"
            );
        }
        self.counters_before = counters;
    }
}

/// A one-line description of a frame the engine sent, for traces.
fn summary(frame: &[u8]) -> String {
    let parsed = frame
        .get(ethernet::HEADER_LEN..)
        .and_then(|body| ipv4::Ipv4Packet::new_checked(body).ok())
        .and_then(|ip| {
            let segment = mpterm_wire::tcp::TcpSegment::new_checked(ip.payload()).ok()?;
            let repr = TcpRepr::parse(&segment).ok()?;
            Some(format!(
                "{}:{} -> {}:{} flags {:#04x} seq {} ack {} win {} len {} options {:?}",
                ip.src_addr(),
                repr.src_port,
                ip.dst_addr(),
                repr.dst_port,
                repr.flags.0,
                repr.seq,
                repr.ack,
                repr.window,
                segment.payload().len(),
                repr.options
            ))
        });
    parsed.unwrap_or_else(|| format!("{} bytes (not TCP)", frame.len()))
}

/// Every numeric field of the counters, by name, read from their `Debug` form so that
/// counters added to `Counters` later are checked too without touching this harness.
fn counter_values(counters: &Counters) -> Vec<(String, u64)> {
    let text = format!("{counters:?}");
    let fields = text
        .split_once('{')
        .map_or("", |(_, rest)| rest.trim_end_matches('}'));
    fields
        .split(',')
        .filter_map(|field| {
            let (name, value) = field.split_once(':')?;
            Some((name.trim().to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_by_name() {
        let counters = Counters {
            rx_frames: 3,
            tcp_rst_sent: 7,
            ..Counters::default()
        };
        let values = counter_values(&counters);
        assert!(values.len() > 20, "{values:?}");
        assert!(values.contains(&("rx_frames".to_owned(), 3)));
        assert!(values.contains(&("tcp_rst_sent".to_owned(), 7)));
    }

    #[test]
    fn setup_reaches_a_live_connection() {
        let harness = Harness::with_live_connection();
        assert_eq!(harness.peers.len(), 2);
        assert!(harness.engine.counters().connections_established >= 1);
    }

    #[test]
    fn the_invariant_checks_can_fail() {
        let mut harness = Harness::with_live_connection();
        harness.counters_before[0].1 = u64::MAX;
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| harness.check_invariants()));
        assert!(result.is_err(), "a counter that went down is caught");
    }
}
