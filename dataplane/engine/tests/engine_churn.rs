//! Connection churn toward one backend: many short MPTCP connections, each a small request and
//! a small answer, where the client closes first, so that mpterm is the active closer toward
//! the backend and its backend side ends in TIME-WAIT.
//!
//! With a 16,384-port range and a 60 s TIME-WAIT that used to cap new connections at about 270
//! a second per backend address, and TIME-WAIT entries held connection slots. Now TIME-WAIT is
//! kept apart from the connections, and a timestamped TIME-WAIT port is reused after a second
//! (RFC 6191, as Linux's `tcp_tw_reuse`).
//!
//! The network here is lossless with a fixed delay; frames cross as wire bytes.

mod common;

use core::net::SocketAddrV4;
use core::time::Duration;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use bytes::Bytes;
use common::engine_net::{
    arp_reply_for, client_iss, config, MptcpClient, Tokens, APPLIANCE_BACKEND_SIDE,
    APPLIANCE_CLIENT_SIDE, BACKEND, BACKEND_MAC, BACKEND_SIDE_MAC, CLIENT_IP, CLIENT_MAC,
    CLIENT_SIDE_MAC, LISTEN,
};
use common::{decode_segment, encode_segment, parse_frame, tcp_frame, tuning, Buf, Parsed};
use mpterm_engine::tcp::Tcb;
use mpterm_engine::{Engine, EngineConfig, Instant};
use mpterm_wire::arp::ArpRepr;
use mpterm_wire::tcp::TcpFlags;
use mpterm_wire::SeqNumber;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

const ONE_WAY: Duration = Duration::from_micros(500);
const REQUEST: usize = 200;
const ANSWER: usize = 300;

/// One client connection and what it has seen.
struct Client {
    tcb: Tcb<Buf>,
    mptcp: MptcpClient,
    request: Vec<u8>,
    sent: usize,
    received: Vec<u8>,
}

/// One backend connection: reads the request until the FIN, then answers and closes.
struct Backend {
    tcb: Tcb<Buf>,
    received: Vec<u8>,
    answered: bool,
}

/// Where a frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Hop {
    /// The engine, on that interface.
    Engine(usize),
    Client,
    Backend,
}

/// A frame on its way: arrival time, sending order, destination, bytes.
type InFlight = Reverse<(Instant, u64, Hop, Vec<u8>)>;

struct Churn {
    now: Instant,
    engine: Engine<Buf, ChaCha8Rng, Tokens>,
    clients: HashMap<u16, Client>,
    backends: HashMap<u16, Backend>,
    in_flight: BinaryHeap<InFlight>,
    sequence: u64,
    completed: u64,
    failed: u64,
    most_connections: usize,
}

fn request_for(port: u16, round: u64) -> Vec<u8> {
    (0..REQUEST)
        .map(|i| (i as u64 ^ u64::from(port) ^ round) as u8)
        .collect()
}

/// The backend's answer: derived from the request, so each connection checks its own.
fn answer_to(request: &[u8]) -> Vec<u8> {
    (0..ANSWER)
        .map(|i| request[i % request.len()].wrapping_add(i as u8))
        .collect()
}

impl Churn {
    fn new(config: EngineConfig) -> Churn {
        Churn {
            now: Instant::from_nanos(1_000_000_000),
            engine: Engine::new(config, ChaCha8Rng::seed_from_u64(1), Tokens::default()),
            clients: HashMap::new(),
            backends: HashMap::new(),
            in_flight: BinaryHeap::new(),
            sequence: 0,
            completed: 0,
            failed: 0,
            most_connections: 0,
        }
    }

    fn send(&mut self, hop: Hop, frame: Vec<u8>) {
        self.sequence += 1;
        self.in_flight
            .push(Reverse((self.now + ONE_WAY, self.sequence, hop, frame)));
    }

    fn open(&mut self, port: u16, round: u64) {
        let iss = client_iss(u64::from(port) ^ (round << 16));
        let mut tcb = Tcb::connect(
            self.now,
            SocketAddrV4::new(CLIENT_IP, port),
            LISTEN,
            iss,
            1460,
            tuning(),
        );
        tcb.set_owner_option_reserve(28);
        let client = Client {
            tcb,
            mptcp: MptcpClient::new(None, iss),
            request: request_for(port, round),
            sent: 0,
            received: Vec::new(),
        };
        self.clients.insert(port, client);
        self.pump_client(port);
    }

    /// The client writes its request once connected, closes, and sends what its TCB has.
    fn pump_client(&mut self, port: u16) {
        let mut frames = Vec::new();
        let Some(client) = self.clients.get_mut(&port) else {
            return;
        };
        if client.tcb.is_synchronized() && client.sent < client.request.len() {
            let chunk = Bytes::copy_from_slice(&client.request[client.sent..]);
            client.sent += chunk.len();
            client
                .tcb
                .send(Buf(chunk))
                .expect("room for a small request");
            client.tcb.close();
        }
        while let Some(mut segment) = client.tcb.poll_segment(self.now) {
            client.mptcp.decorate(&mut segment);
            let bytes = encode_segment(&segment, CLIENT_IP, APPLIANCE_CLIENT_SIDE);
            frames.push(tcp_frame(
                CLIENT_MAC,
                CLIENT_SIDE_MAC,
                CLIENT_IP,
                APPLIANCE_CLIENT_SIDE,
                &bytes,
            ));
        }
        for frame in frames {
            self.send(Hop::Engine(0), frame);
        }
    }

    fn pump_backend(&mut self, port: u16) {
        let mut frames = Vec::new();
        let Some(backend) = self.backends.get_mut(&port) else {
            return;
        };
        while let Some(chunk) = backend.tcb.recv() {
            backend.received.extend_from_slice(chunk.payload.as_ref());
        }
        if backend.tcb.peer_finished() && !backend.answered {
            backend.answered = true;
            let answer = Bytes::from(answer_to(&backend.received));
            backend
                .tcb
                .send(Buf(answer))
                .expect("room for a small answer");
            backend.tcb.close();
        }
        while let Some(segment) = backend.tcb.poll_segment(self.now) {
            let bytes = encode_segment(&segment, *BACKEND.ip(), APPLIANCE_BACKEND_SIDE);
            frames.push(tcp_frame(
                BACKEND_MAC,
                BACKEND_SIDE_MAC,
                *BACKEND.ip(),
                APPLIANCE_BACKEND_SIDE,
                &bytes,
            ));
        }
        if backend.tcb.is_closed() {
            self.backends.remove(&port);
        }
        for frame in frames {
            self.send(Hop::Engine(1), frame);
        }
    }

    fn pump_engine(&mut self) {
        if self
            .engine
            .poll_timeout()
            .is_some_and(|deadline| deadline <= self.now)
        {
            self.engine.handle_timeout(self.now);
        }
        while let Some(transmit) = self.engine.poll_transmit(self.now) {
            let mut frame = transmit.header.as_slice().to_vec();
            if let Some(payload) = &transmit.payload {
                frame.extend_from_slice(&payload.0);
            }
            if let Parsed::Arp(arp, _) = parse_frame(&frame) {
                self.answer_arp(transmit.interface, &arp);
                continue;
            }
            let hop = if transmit.interface == 0 {
                Hop::Client
            } else {
                Hop::Backend
            };
            self.send(hop, frame);
        }
        self.most_connections = self.most_connections.max(self.engine.connection_count());
    }

    fn answer_arp(&mut self, interface: usize, request: &ArpRepr) {
        if let Some(frame) = arp_reply_for(interface, request) {
            self.engine
                .handle_frame(self.now, interface, Buf(Bytes::from(frame)));
        }
    }

    fn deliver(&mut self, hop: Hop, frame: Vec<u8>) {
        match hop {
            Hop::Engine(interface) => {
                self.engine
                    .handle_frame(self.now, interface, Buf(Bytes::from(frame)));
            }
            Hop::Client => self.deliver_to_client(&frame),
            Hop::Backend => self.deliver_to_backend(&frame),
        }
    }

    fn deliver_to_client(&mut self, frame: &[u8]) {
        let Parsed::Tcp {
            src, dst, segment, ..
        } = parse_frame(frame)
        else {
            return;
        };
        let (repr, payload) = decode_segment(segment, src, dst);
        let port = repr.dst_port;
        let Some(client) = self.clients.get_mut(&port) else {
            return;
        };
        let engine_iss = client.tcb.irs();
        client
            .mptcp
            .observe(self.now, &repr, payload.as_ref(), engine_iss);
        if repr.flags.contains(TcpFlags::RST) {
            self.failed += 1;
        }
        client.tcb.handle_segment(self.now, &repr, payload);
        while let Some(chunk) = client.tcb.recv() {
            client.received.extend_from_slice(chunk.payload.as_ref());
        }
        client.mptcp.received = client.received.len() as u64;
        let finished = client.tcb.peer_finished() && client.tcb.all_sent_acknowledged();
        let reset = client.tcb.is_closed() && !finished;
        self.pump_client(port);
        if reset {
            self.clients.remove(&port);
            return;
        }
        if finished {
            // The client's own TIME-WAIT is its host's business; the connection is over.
            let client = self.clients.remove(&port).expect("the client");
            assert_eq!(
                client.received,
                answer_to(&client.request),
                "client port {port} got the answer to its own request"
            );
            assert!(!client.mptcp.fell_back, "client port {port} fell back");
            self.completed += 1;
        }
    }

    fn deliver_to_backend(&mut self, frame: &[u8]) {
        let Parsed::Tcp {
            src, dst, segment, ..
        } = parse_frame(frame)
        else {
            return;
        };
        let (repr, payload) = decode_segment(segment, src, dst);
        let port = repr.src_port;
        match self.backends.get_mut(&port) {
            Some(backend) => backend.tcb.handle_segment(self.now, &repr, payload),
            None if repr.flags.contains(TcpFlags::SYN) && !repr.flags.contains(TcpFlags::ACK) => {
                let remote = SocketAddrV4::new(src, port);
                let iss = SeqNumber(u32::from(port).wrapping_mul(0x9e37_79b9));
                let tcb = Tcb::accept(self.now, BACKEND, remote, &repr, iss, 1460, tuning());
                self.backends.insert(
                    port,
                    Backend {
                        tcb,
                        received: Vec::new(),
                        answered: false,
                    },
                );
            }
            // A segment for a backend connection that is gone (its RST is of no interest).
            None => return,
        }
        self.pump_backend(port);
    }

    /// Runs until `until`, opening a connection every `interval` on the next client port.
    fn run(&mut self, until: Instant, interval: Duration, total: u64) -> u64 {
        let mut next_open = self.now;
        let mut opened = 0u64;
        let mut port: u16 = 1024;
        let mut round = 0u64;
        while self.now < until {
            if opened < total && next_open <= self.now {
                while self.clients.contains_key(&port) {
                    port = if port == u16::MAX { 1024 } else { port + 1 };
                }
                self.open(port, round);
                opened += 1;
                next_open = next_open + interval;
                if port == u16::MAX {
                    round += 1;
                }
                port = if port == u16::MAX { 1024 } else { port + 1 };
            }
            self.pump_engine();
            // The next event: a frame arrival, a timer or the next connection.
            let mut next = until;
            if let Some(Reverse((at, _, _, _))) = self.in_flight.peek() {
                next = next.min(*at);
            }
            if let Some(deadline) = self.engine.poll_timeout() {
                next = next.min(deadline);
            }
            if opened < total {
                next = next.min(next_open);
            }
            for client in self.clients.values() {
                if let Some(deadline) = client.tcb.poll_timeout() {
                    next = next.min(deadline);
                }
            }
            self.now = self.now.max(next);
            while let Some(Reverse((at, _, _, _))) = self.in_flight.peek() {
                if *at > self.now {
                    break;
                }
                let Reverse((_, _, hop, frame)) = self.in_flight.pop().expect("peeked");
                self.deliver(hop, frame);
            }
            let due: Vec<u16> = self
                .clients
                .iter()
                .filter(|(_, c)| c.tcb.poll_timeout().is_some_and(|d| d <= self.now))
                .map(|(port, _)| *port)
                .collect();
            for port in due {
                if let Some(client) = self.clients.get_mut(&port) {
                    client.tcb.handle_timeout(self.now);
                }
                self.pump_client(port);
            }
            if opened == total && self.clients.is_empty() && self.in_flight.is_empty() {
                break;
            }
        }
        // The engine releases what finished when it is polled.
        self.pump_engine();
        opened
    }
}

fn churn_config(ports: core::ops::RangeInclusive<u16>, reuse: bool) -> EngineConfig {
    let mut config = config();
    config.max_connections = 1024;
    config.max_time_wait = 1 << 20;
    config.time_wait_reuse = reuse;
    config.local_ports = ports;
    config
}

#[test]
fn a_hundred_thousand_short_connections_to_one_backend_within_a_minute() {
    let mut churn = Churn::new(churn_config(49152..=65535, true));
    let started = churn.now;
    // 2000 new connections a second for 50 s: seven times the old TIME-WAIT cap.
    let total = 100_000;
    let opened = churn.run(
        started + Duration::from_secs(60),
        Duration::from_micros(500),
        total,
    );
    assert_eq!(opened, total);
    let counters = *churn.engine.counters();
    assert_eq!(
        churn.completed, total,
        "every connection completed byte-exact; {} failed; {counters:?}",
        churn.failed
    );
    assert!(churn.now - started <= Duration::from_secs(60));
    assert_eq!(counters.backend_connect_failures, 0, "{counters:?}");
    assert_eq!(counters.connections_closed, total);
    assert_eq!(counters.mptcp_connections, total);
    assert_eq!(counters.mptcp_fallbacks, 0);
    assert_eq!(
        counters.time_wait_entered, total,
        "every backend side ended in TIME-WAIT"
    );
    assert!(
        counters.time_wait_reused >= total - 16_384,
        "ports were reused: {counters:?}"
    );
    assert_eq!(counters.time_wait_overflows, 0);
    assert!(
        churn.most_connections <= 64,
        "TIME-WAIT holds no connection slot: at most {} live at once",
        churn.most_connections
    );
    assert!(churn.engine.time_wait_count() <= 16_384);
}

#[test]
fn without_reuse_the_port_range_bounds_the_churn_and_the_clients_learn_it() {
    // The remaining bound when the backend does not do timestamps, or reuse is off: the
    // port range per TIME-WAIT duration. A 100-port range serves 100 connections; the next
    // ones find no port, and their clients are told at once (MP_FASTCLOSE), not left hanging.
    let mut churn = Churn::new(churn_config(50_000..=50_099, false));
    let started = churn.now;
    let opened = churn.run(
        started + Duration::from_secs(5),
        Duration::from_millis(5),
        150,
    );
    assert_eq!(opened, 150);
    let counters = *churn.engine.counters();
    assert_eq!(churn.completed, 100, "{counters:?}");
    assert_eq!(counters.backend_connect_failures, 50, "{counters:?}");
    assert_eq!(counters.time_wait_reused, 0);
    assert_eq!(counters.mptcp_fastcloses_sent, 50);

    // The same range with reuse serves them all.
    let mut churn = Churn::new(churn_config(50_000..=50_099, true));
    let started = churn.now;
    churn.run(
        started + Duration::from_secs(5),
        Duration::from_millis(15),
        150,
    );
    assert_eq!(churn.completed, 150, "{:?}", churn.engine.counters());
    assert!(churn.engine.counters().time_wait_reused >= 50);
}

#[test]
fn a_retransmitted_fin_in_time_wait_is_acknowledged_from_the_table() {
    // The backend's FIN is acknowledged, the connection released into the TIME-WAIT table;
    // the same FIN again (as if the ACK was lost) gets the same ACK from the table.
    let mut churn = Churn::new(churn_config(50_000..=50_000, true));
    let started = churn.now;
    churn.run(
        started + Duration::from_secs(1),
        Duration::from_millis(1),
        1,
    );
    assert_eq!(churn.completed, 1);
    assert_eq!(churn.engine.time_wait_count(), 1);
    assert_eq!(churn.engine.connection_count(), 0);
    let acks_before = churn.engine.counters().time_wait_acks_sent;
    // Forge the backend's FIN again: from its last sequence number, acknowledging ours.
    let fin = mpterm_wire::tcp::TcpRepr {
        src_port: BACKEND.port(),
        dst_port: 50_000,
        seq: SeqNumber(u32::from(50_000u16).wrapping_mul(0x9e37_79b9)) + 1 + ANSWER as u32,
        ack: SeqNumber(0),
        flags: TcpFlags::FIN | TcpFlags::ACK,
        window: 1000,
        options: Default::default(),
    };
    let mut bytes = vec![0u8; fin.header_len()];
    fin.emit(&mut bytes).unwrap();
    mpterm_wire::tcp::fill_checksum_v4(&mut bytes, *BACKEND.ip(), APPLIANCE_BACKEND_SIDE, &[]);
    let frame = tcp_frame(
        BACKEND_MAC,
        BACKEND_SIDE_MAC,
        *BACKEND.ip(),
        APPLIANCE_BACKEND_SIDE,
        &bytes,
    );
    churn
        .engine
        .handle_frame(churn.now, 1, Buf(Bytes::from(frame)));
    let ack = churn.engine.poll_transmit(churn.now).expect("an ACK");
    let header = ack.header.as_slice().to_vec();
    let Parsed::Tcp {
        src, dst, segment, ..
    } = parse_frame(&header)
    else {
        panic!("not TCP")
    };
    let (repr, _) = decode_segment(segment, src, dst);
    assert_eq!(repr.flags, TcpFlags::ACK);
    assert_eq!(repr.ack, fin.seq + 1, "acknowledges the FIN");
    assert_eq!(churn.engine.counters().time_wait_acks_sent, acks_before + 1);
}
