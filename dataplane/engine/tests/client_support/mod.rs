//! The client engine wired to the server engine in memory: `ClientEngine` on the server's
//! interface 0, a backend host of plain `Tcb`s on its interface 1, frames passed as bytes
//! between them at once (no link delay), virtual time jumping to the next deadline. Tests may
//! drop or rewrite frames in either direction between client and server.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use bytes::Bytes;
use mpterm_engine::client::{ClientConfig, ClientEngine, ClientEvent, ConnectionId};
use mpterm_engine::tcp::{Tcb, TcpState};
use mpterm_engine::{
    Engine, EngineConfig, Instant, InterfaceConfig, ProxyRule, TcpTuning, TokenRegistry, Transmit,
};
use mpterm_wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use mpterm_wire::ethernet::{self, EthernetAddress, EthernetFrame, EthernetRepr};
use mpterm_wire::ipv4::{self, Ipv4Packet, Ipv4Repr};
use mpterm_wire::tcp::{self, TcpFlags, TcpRepr, TcpSegment};
use mpterm_wire::SeqNumber;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const KIB: usize = 1024;
pub const SERVER_CLIENT_SIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
pub const SERVER_BACKEND_SIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
pub const BACKEND_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x20];
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub const SERVER_BACKEND_SIDE_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const LISTEN: SocketAddrV4 = SocketAddrV4::new(SERVER_IP, 5000);
pub const BACKEND: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 2), 6000);
pub const VIRTUAL_TIME_LIMIT: Duration = Duration::from_secs(600);

thread_local! {
    /// True while the harness is inside a call of the client engine: a counting allocator
    /// (tests/client_allocations.rs) counts only there.
    pub static IN_CLIENT: Cell<bool> = const { Cell::new(false) };
}

thread_local! {
    /// Time the client and the server engine spent in their calls, when timing is on
    /// (tests/client_cost.rs).
    pub static TIMING: Cell<bool> = const { Cell::new(false) };
    pub static CLIENT_NANOS: Cell<u64> = const { Cell::new(0) };
    pub static SERVER_NANOS: Cell<u64> = const { Cell::new(0) };
}

fn timed<T>(total: &'static std::thread::LocalKey<Cell<u64>>, call: impl FnOnce() -> T) -> T {
    if !TIMING.with(Cell::get) {
        return call();
    }
    let start = std::time::Instant::now();
    let result = call();
    let nanos = start.elapsed().as_nanos() as u64;
    total.with(|total| total.set(total.get() + nanos));
    result
}

/// Runs `call` marked as the client engine's work.
pub fn in_client<T>(call: impl FnOnce() -> T) -> T {
    IN_CLIENT.with(|flag| flag.set(true));
    let result = timed(&CLIENT_NANOS, call);
    IN_CLIENT.with(|flag| flag.set(false));
    result
}

/// Runs `call` as the server engine's work (timed only).
pub fn in_server<T>(call: impl FnOnce() -> T) -> T {
    timed(&SERVER_NANOS, call)
}

/// `Bytes` from a vector, already in its shared form: a `Bytes` made from a `Vec` allocates
/// its reference count on the first clone or slice, which would be counted against whoever
/// slices it first (the engine slicing a frame's payload).
pub fn shared(data: Vec<u8>) -> Bytes {
    let bytes = Bytes::from(data);
    drop(bytes.clone());
    bytes
}

/// The server engine's token registry: a set the test can look into.
#[derive(Debug, Default, Clone)]
pub struct Tokens {
    pub registered: Rc<RefCell<HashSet<u32>>>,
}

impl TokenRegistry for Tokens {
    fn try_register(&mut self, token: u32, _connection_id: u64) -> bool {
        self.registered.borrow_mut().insert(token)
    }

    fn release(&mut self, token: u32) {
        self.registered.borrow_mut().remove(&token);
    }
}

pub fn tuning() -> TcpTuning {
    TcpTuning {
        receive_buffer: 256 * 1024,
        send_buffer: 256 * 1024,
        ..TcpTuning::default()
    }
}

pub fn server_config(checksums: bool) -> EngineConfig {
    EngineConfig {
        interfaces: vec![
            InterfaceConfig {
                mac: SERVER_CLIENT_SIDE_MAC,
                address: SERVER_IP,
                prefix_len: 24,
                gateway: None,
                mtu: 1500,
                ipv6: None,
            },
            InterfaceConfig {
                mac: SERVER_BACKEND_SIDE_MAC,
                address: SERVER_BACKEND_SIDE_IP,
                prefix_len: 24,
                gateway: None,
                mtu: 1500,
                ipv6: None,
            },
        ],
        proxies: vec![ProxyRule {
            listen: LISTEN.into(),
            backend: BACKEND,
            scheduler: mpterm_engine::scheduler::SchedulerKind::default(),
        }],
        client_tcp: tuning(),
        backend_tcp: tuning(),
        mptcp_checksum_required: checksums,
        max_connections: 1024,
        max_time_wait: 1 << 16,
        mptcp_max_subflows: 8,
        mptcp_allow_join_initial_address: true,
        time_wait_reuse: true,
        local_ports: 49152..=65535,
    }
}

pub fn client_config(mptcp: bool, checksums: bool, max_connections: usize) -> ClientConfig {
    let interface = InterfaceConfig {
        mac: CLIENT_MAC,
        address: CLIENT_IP,
        prefix_len: 24,
        gateway: None,
        mtu: 1500,
        ipv6: None,
    };
    ClientConfig {
        mptcp,
        dss_checksums: checksums,
        // As a Linux client (`tcp_ecn = 2`): no ECN asked for.
        tcp: TcpTuning {
            ecn: false,
            ..tuning()
        },
        max_connections,
        ..ClientConfig::new(interface, LISTEN)
    }
}

/// Deterministic test data for stream `salt`.
pub fn pattern(len: usize, salt: u64) -> Bytes {
    let mut rng = ChaCha8Rng::seed_from_u64(salt);
    let mut data = vec![0u8; len];
    rng.fill_bytes(&mut data);
    shared(data)
}

pub fn sha256(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A frame's bytes: header then payload.
pub fn frame_bytes(transmit: &Transmit<Bytes>) -> Vec<u8> {
    let mut frame = transmit.header.as_slice().to_vec();
    if let Some(payload) = &transmit.payload {
        frame.extend_from_slice(payload);
    }
    frame
}

/// The TCP segment of an IPv4 frame: its header and where its payload lies in the frame.
pub fn tcp_of(frame: &[u8]) -> Option<(TcpRepr<'_>, core::ops::Range<usize>)> {
    let ethernet_frame = EthernetFrame::new_checked(frame).ok()?;
    if ethernet_frame.ethertype() != ethernet::ETHERTYPE_IPV4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(&frame[ethernet::HEADER_LEN..]).ok()?;
    if ip.protocol() != ipv4::PROTOCOL_TCP {
        return None;
    }
    let start = ethernet::HEADER_LEN + ip.header_len();
    let end = ethernet::HEADER_LEN + usize::from(ip.total_len());
    let segment = TcpSegment::new_checked(&frame[start..end]).ok()?;
    let payload = start + segment.header_len()..end;
    let repr = TcpRepr::parse(&segment).ok()?;
    Some((repr, payload))
}

/// The payload length of a TCP frame (0 for other frames).
pub fn payload_len(frame: &[u8]) -> usize {
    tcp_of(frame).map_or(0, |(_, payload)| payload.len())
}

/// Flips byte `offset` of a TCP frame's payload and fixes the TCP checksum, as a middlebox
/// that rewrites data would: only the DSS checksum can tell.
pub fn corrupt_payload(frame: &mut [u8], offset: usize) {
    let (src, dst, start, end) = {
        let ip = Ipv4Packet::new_checked(&frame[ethernet::HEADER_LEN..]).unwrap();
        let start = ethernet::HEADER_LEN + ip.header_len();
        let end = ethernet::HEADER_LEN + usize::from(ip.total_len());
        (ip.src_addr(), ip.dst_addr(), start, end)
    };
    let header_len = TcpSegment::new_checked(&frame[start..end])
        .unwrap()
        .header_len();
    frame[start + header_len + offset] ^= 0x5a;
    let (header, payload) = frame[start..end].split_at_mut(header_len);
    tcp::fill_checksum_v4(header, src, dst, payload);
}

/// Flips byte `offset` of a TCP frame's segment (header, options or payload) and fixes the
/// TCP checksum, so that the change gets past it. An offset beyond the segment is taken
/// modulo its length.
pub fn corrupt_segment(frame: &mut [u8], offset: usize, mask: u8) {
    let (src, dst, start, end) = {
        let ip = Ipv4Packet::new_checked(&frame[ethernet::HEADER_LEN..]).unwrap();
        let start = ethernet::HEADER_LEN + ip.header_len();
        let end = ethernet::HEADER_LEN + usize::from(ip.total_len());
        (ip.src_addr(), ip.dst_addr(), start, end)
    };
    let at = start + offset % (end - start);
    // Not the checksum itself: it is recomputed.
    if (at - start) / 2 == 8 {
        return;
    }
    frame[at] ^= mask.max(1);
    let Ok(segment) = TcpSegment::new_checked(&frame[start..end]) else {
        return;
    };
    let header_len = segment.header_len();
    let (header, payload) = frame[start..end].split_at_mut(header_len);
    tcp::fill_checksum_v4(header, src, dst, payload);
}

/// Rebuilds a TCP frame with its header changed by `edit` (the IPv4 length, IPv4 and TCP
/// checksums follow).
pub fn rewrite_tcp(frame: &[u8], edit: impl FnOnce(&mut TcpRepr<'_>)) -> Vec<u8> {
    let ethernet_repr = EthernetRepr::parse(&EthernetFrame::new_checked(frame).unwrap());
    let ip = Ipv4Packet::new_checked(&frame[ethernet::HEADER_LEN..]).unwrap();
    let ip_repr = Ipv4Repr::parse(&ip).unwrap();
    let (mut repr, payload) = tcp_of(frame).unwrap();
    let payload = frame[payload].to_vec();
    edit(&mut repr);
    let tcp_len = repr.header_len();
    let mut out = vec![0u8; ethernet::HEADER_LEN + ipv4::HEADER_LEN + tcp_len + payload.len()];
    ethernet_repr.emit(&mut out).unwrap();
    Ipv4Repr {
        payload_len: (tcp_len + payload.len()) as u16,
        ..ip_repr
    }
    .emit(&mut out[ethernet::HEADER_LEN..])
    .unwrap();
    let start = ethernet::HEADER_LEN + ipv4::HEADER_LEN;
    repr.emit(&mut out[start..]).unwrap();
    out[start + tcp_len..].copy_from_slice(&payload);
    let (header, body) = out[start..].split_at_mut(tcp_len);
    tcp::fill_checksum_v4(header, ip_repr.src, ip_repr.dst, body);
    out
}

/// What a test does with a frame between client and server: `true` delivers it (perhaps
/// rewritten), `false` drops it.
pub type FrameFilter = Box<dyn FnMut(&mut Vec<u8>) -> bool>;

/// Drops the first frame `matches` picks, and only that one.
pub fn drop_first(mut matches: impl FnMut(&TcpRepr<'_>, usize) -> bool + 'static) -> FrameFilter {
    let mut dropped = false;
    Box::new(move |frame| {
        if dropped {
            return true;
        }
        let Some((repr, payload)) = tcp_of(frame) else {
            return true;
        };
        if matches(&repr, payload.len()) {
            dropped = true;
            return false;
        }
        true
    })
}

/// When a client application closes its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosePolicy {
    /// As soon as everything is queued.
    AfterSending,
    /// Once the server's stream ended.
    AfterPeerFinished,
}

/// An application on one client connection.
#[derive(Debug)]
pub struct ClientApp {
    pub id: ConnectionId,
    pub upload: Bytes,
    pub queued: usize,
    pub closed: bool,
    pub policy: ClosePolicy,
    pub received: Vec<u8>,
    pub established: Option<bool>,
    pub fell_back: bool,
    pub peer_finished: bool,
    /// The event that ended the connection.
    pub ended: Option<ClientEvent>,
}

impl ClientApp {
    fn act(&mut self, client: &mut ClientEngine<Bytes, ChaCha8Rng>) {
        if self.ended.is_some() || self.established.is_none() {
            return;
        }
        while self.queued < self.upload.len() {
            let len = (self.upload.len() - self.queued)
                .min(64 * KIB)
                .min(client.send_capacity(self.id));
            if len == 0 {
                break;
            }
            let chunk = self.upload.slice(self.queued..self.queued + len);
            in_client(|| client.send(self.id, chunk)).expect("send within capacity");
            self.queued += len;
        }
        while let Some(data) = in_client(|| client.recv(self.id)) {
            self.received.extend_from_slice(&data);
        }
        let all_queued = self.queued == self.upload.len();
        let close = match self.policy {
            ClosePolicy::AfterSending => all_queued,
            ClosePolicy::AfterPeerFinished => all_queued && self.peer_finished,
        };
        if close && !self.closed {
            self.closed = true;
            client.close(self.id).expect("a live connection closes");
        }
    }
}

/// What the backend application does on each connection.
#[derive(Debug, Clone)]
pub enum BackendBehaviour {
    /// Sends `download` bytes of its own pattern at once, then closes.
    Bulk { download: usize },
    /// Once `request` bytes arrived, sends `answer` bytes and closes.
    Answer { request: usize, answer: usize },
    /// Like `Bulk`, but resets its connection once it has received `after` bytes (the server
    /// then ends the client's connection with MP_FASTCLOSE).
    ResetAfter { download: usize, after: usize },
}

#[derive(Debug)]
pub struct BackendConnection {
    pub tcb: Tcb<Bytes>,
    pub download: Bytes,
    pub queued: usize,
    pub closed: bool,
    pub received: Vec<u8>,
    pub recorded: bool,
}

/// What one backend connection exchanged, kept once it is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub received: Vec<u8>,
    pub sent: Bytes,
}

/// The backend host: answers ARP for its address, accepts every SYN to its port.
#[derive(Debug)]
pub struct Backend {
    pub behaviour: BackendBehaviour,
    pub connections: HashMap<SocketAddrV4, BackendConnection>,
    pub done: Vec<Exchange>,
    pub accepted: u64,
    rng: ChaCha8Rng,
    out: Vec<Vec<u8>>,
}

impl Backend {
    fn new(behaviour: BackendBehaviour, seed: u64) -> Backend {
        Backend {
            behaviour,
            connections: HashMap::new(),
            done: Vec::new(),
            accepted: 0,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0xbac4),
            out: Vec::new(),
        }
    }

    fn handle_frame(&mut self, now: Instant, frame: &[u8]) {
        let ethernet_frame = EthernetFrame::new_checked(frame).expect("Ethernet");
        if ethernet_frame.ethertype() == ethernet::ETHERTYPE_ARP {
            let packet = ArpPacket::new_checked(&frame[ethernet::HEADER_LEN..]).unwrap();
            let arp = ArpRepr::parse(&packet).unwrap();
            if arp.operation == ArpOperation::Request && arp.target_ip == *BACKEND.ip() {
                let reply = ArpRepr {
                    operation: ArpOperation::Reply,
                    sender_mac: EthernetAddress(BACKEND_MAC),
                    sender_ip: *BACKEND.ip(),
                    target_mac: arp.sender_mac,
                    target_ip: arp.sender_ip,
                };
                let mut out = vec![0u8; 60];
                let len = EthernetRepr {
                    src: EthernetAddress(BACKEND_MAC),
                    dst: arp.sender_mac,
                    ethertype: ethernet::ETHERTYPE_ARP,
                }
                .emit(&mut out)
                .unwrap();
                reply.emit(&mut out[len..]).unwrap();
                self.out.push(out);
            }
            return;
        }
        let ip = Ipv4Packet::new_checked(&frame[ethernet::HEADER_LEN..]).unwrap();
        assert!(ip.verify_checksum(), "IPv4 checksum of the server's frame");
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let (repr, payload) = tcp_of(frame).expect("the server sends the backend TCP only");
        let segment =
            TcpSegment::new_checked(&frame[payload.start - repr.header_len()..payload.end])
                .unwrap();
        assert!(
            segment.verify_checksum_v4(src, dst),
            "TCP checksum of the server's segment"
        );
        let data = (!payload.is_empty()).then(|| Bytes::copy_from_slice(&frame[payload]));
        let remote = SocketAddrV4::new(src, repr.src_port);
        if let Some(connection) = self.connections.get_mut(&remote) {
            connection.tcb.handle_segment(now, &repr, data);
            return;
        }
        // The engine's SYN may ask for ECN (ECE and CWR, RFC 3168 section 6.1.1).
        let syn_only = repr.flags.contains(TcpFlags::SYN) && !repr.flags.contains(TcpFlags::ACK);
        if !syn_only || repr.dst_port != BACKEND.port() {
            // Late segments of a connection already forgotten: a real host would reset;
            // the tests never need it.
            return;
        }
        let iss = SeqNumber(self.rng.next_u32());
        let tcb = Tcb::accept(now, BACKEND, remote, &repr, iss, 1460, tuning());
        let download = match self.behaviour {
            BackendBehaviour::Bulk { download } | BackendBehaviour::ResetAfter { download, .. } => {
                pattern(download, self.rng.next_u64())
            }
            BackendBehaviour::Answer { answer, .. } => pattern(answer, self.rng.next_u64()),
        };
        self.accepted += 1;
        self.connections.insert(
            remote,
            BackendConnection {
                tcb,
                download,
                queued: 0,
                closed: false,
                received: Vec::new(),
                recorded: false,
            },
        );
    }

    /// The applications act, then every TCB's segments become frames.
    fn poll(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let behaviour = self.behaviour.clone();
        let mut finished = Vec::new();
        for (remote, connection) in self.connections.iter_mut() {
            let tcb = &mut connection.tcb;
            while let Some(chunk) = tcb.recv() {
                connection.received.extend_from_slice(&chunk.payload);
            }
            let may_send = match behaviour {
                BackendBehaviour::Bulk { .. } => tcb.is_synchronized(),
                BackendBehaviour::Answer { request, .. } => connection.received.len() >= request,
                BackendBehaviour::ResetAfter { after, .. } => {
                    if connection.received.len() >= after && !tcb.is_closed() {
                        tcb.abort();
                    }
                    tcb.is_synchronized()
                }
            };
            if may_send {
                while connection.queued < connection.download.len() {
                    let len = (connection.download.len() - connection.queued)
                        .min(64 * KIB)
                        .min(tcb.send_capacity());
                    if len == 0 {
                        break;
                    }
                    let chunk = connection
                        .download
                        .slice(connection.queued..connection.queued + len);
                    tcb.send(chunk).expect("send within capacity");
                    connection.queued += len;
                }
                if connection.queued == connection.download.len() && !connection.closed {
                    connection.closed = true;
                    tcb.close();
                }
            }
            while let Some(segment) = tcb.poll_segment(now) {
                let payload: &[u8] = segment.payload.as_deref().unwrap_or(&[]);
                let tcp_len = segment.repr.header_len();
                let mut frame =
                    vec![0u8; ethernet::HEADER_LEN + ipv4::HEADER_LEN + tcp_len + payload.len()];
                EthernetRepr {
                    src: EthernetAddress(BACKEND_MAC),
                    dst: EthernetAddress(SERVER_BACKEND_SIDE_MAC),
                    ethertype: ethernet::ETHERTYPE_IPV4,
                }
                .emit(&mut frame)
                .unwrap();
                Ipv4Repr {
                    src: *BACKEND.ip(),
                    dst: *remote.ip(),
                    protocol: ipv4::PROTOCOL_TCP,
                    payload_len: (tcp_len + payload.len()) as u16,
                    ttl: 64,
                }
                .emit(&mut frame[ethernet::HEADER_LEN..])
                .unwrap();
                let start = ethernet::HEADER_LEN + ipv4::HEADER_LEN;
                segment.repr.emit(&mut frame[start..]).unwrap();
                frame[start + tcp_len..].copy_from_slice(payload);
                let (header, body) = frame[start..].split_at_mut(tcp_len);
                tcp::fill_checksum_v4(header, *BACKEND.ip(), *remote.ip(), body);
                self.out.push(frame);
            }
            let done = tcb.is_closed() || tcb.state() == TcpState::TimeWait;
            if done && !connection.recorded {
                connection.recorded = true;
                self.done.push(Exchange {
                    received: core::mem::take(&mut connection.received),
                    sent: connection.download.clone(),
                });
            }
            if tcb.is_closed() {
                finished.push(*remote);
            }
        }
        for remote in finished {
            self.connections.remove(&remote);
        }
        core::mem::take(&mut self.out)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.connections
            .values()
            .filter_map(|connection| connection.tcb.poll_timeout())
            .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        for connection in self.connections.values_mut() {
            connection.tcb.handle_timeout(now);
        }
    }
}

/// Client, server and backend in one process.
pub struct Lab {
    pub now: Instant,
    pub client: ClientEngine<Bytes, ChaCha8Rng>,
    pub server: Engine<Bytes, ChaCha8Rng, Tokens>,
    pub backend: Backend,
    /// The tokens the server holds.
    pub server_tokens: Tokens,
    pub apps: HashMap<ConnectionId, ClientApp>,
    /// Connections in the order they were opened.
    pub opened: Vec<ConnectionId>,
    /// The connections whose application still acts.
    live: Vec<ConnectionId>,
    pub to_server: Option<FrameFilter>,
    pub to_client: Option<FrameFilter>,
    pub dropped_to_server: u64,
    pub dropped_to_client: u64,
    pub frames_to_client: u64,
    pub frames_to_server: u64,
}

impl Lab {
    pub fn new(
        seed: u64,
        client: ClientConfig,
        server: EngineConfig,
        behaviour: BackendBehaviour,
    ) -> Lab {
        let server_tokens = Tokens::default();
        Lab {
            now: Instant::from_nanos(1_000_000_000),
            client: ClientEngine::new(client, ChaCha8Rng::seed_from_u64(seed))
                .expect("a valid client configuration"),
            server: Engine::new(
                server,
                ChaCha8Rng::seed_from_u64(!seed),
                server_tokens.clone(),
            ),
            backend: Backend::new(behaviour, seed),
            server_tokens,
            apps: HashMap::new(),
            opened: Vec::new(),
            live: Vec::new(),
            to_server: None,
            to_client: None,
            dropped_to_server: 0,
            dropped_to_client: 0,
            frames_to_client: 0,
            frames_to_server: 0,
        }
    }

    /// Opens a connection whose application sends `upload` and closes per `policy`.
    pub fn open(&mut self, upload: Bytes, policy: ClosePolicy) -> ConnectionId {
        let id = self.client.connect(self.now).expect("a free slot and port");
        self.opened.push(id);
        self.live.push(id);
        self.apps.insert(
            id,
            ClientApp {
                id,
                upload,
                queued: 0,
                closed: false,
                policy,
                received: Vec::new(),
                established: None,
                fell_back: false,
                peer_finished: false,
                ended: None,
            },
        );
        id
    }

    fn take_events(&mut self) {
        while let Some(event) = self.client.poll_event() {
            let id = match event {
                ClientEvent::Established { id, .. }
                | ClientEvent::FellBack { id }
                | ClientEvent::PeerFinished { id }
                | ClientEvent::Closed { id, .. }
                | ClientEvent::Reset { id, .. } => id,
            };
            let app = self
                .apps
                .get_mut(&id)
                .expect("events name open connections");
            assert!(app.ended.is_none(), "no event after the end: {event:?}");
            match event {
                ClientEvent::Established { mptcp, .. } => {
                    assert!(app.established.is_none(), "established twice");
                    app.established = Some(mptcp);
                }
                ClientEvent::FellBack { .. } => app.fell_back = true,
                ClientEvent::PeerFinished { .. } => app.peer_finished = true,
                ClientEvent::Closed { .. } | ClientEvent::Reset { .. } => app.ended = Some(event),
            }
        }
    }

    /// Moves every frame that can move now; false when nothing moved.
    pub fn step(&mut self) -> bool {
        let mut moved = false;
        let now = self.now;
        if self.client.poll_timeout().is_some_and(|due| due <= now) {
            in_client(|| self.client.handle_timeout(now));
        }
        if self.server.poll_timeout().is_some_and(|due| due <= now) {
            in_server(|| self.server.handle_timeout(now));
        }
        self.backend.handle_timeout(now);
        self.take_events();
        for id in &self.live {
            if let Some(app) = self.apps.get_mut(id) {
                app.act(&mut self.client);
            }
        }
        self.take_events();
        let apps = &self.apps;
        self.live.retain(|id| apps[id].ended.is_none());
        while let Some(transmit) = in_client(|| self.client.poll_transmit(now)) {
            moved = true;
            assert_eq!(transmit.interface, 0);
            let mut frame = frame_bytes(&transmit);
            if let Some(filter) = self.to_server.as_mut() {
                if !filter(&mut frame) {
                    self.dropped_to_server += 1;
                    continue;
                }
            }
            self.frames_to_server += 1;
            let frame = shared(frame);
            in_server(|| self.server.handle_frame(now, 0, frame));
        }
        while let Some(transmit) = in_server(|| self.server.poll_transmit(now)) {
            moved = true;
            let mut frame = frame_bytes(&transmit);
            if transmit.interface == 1 {
                self.backend.handle_frame(now, &frame);
                continue;
            }
            if let Some(filter) = self.to_client.as_mut() {
                if !filter(&mut frame) {
                    self.dropped_to_client += 1;
                    continue;
                }
            }
            self.frames_to_client += 1;
            let frame = shared(frame);
            in_client(|| self.client.handle_frame(now, 0, frame));
        }
        for frame in self.backend.poll(now) {
            moved = true;
            let frame = shared(frame);
            in_server(|| self.server.handle_frame(now, 1, frame));
        }
        self.take_events();
        moved
    }

    /// Jumps to the next deadline; false when there is none.
    pub fn jump(&mut self) -> bool {
        let next = [
            self.client.poll_timeout(),
            self.server.poll_timeout(),
            self.backend.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(next) => {
                self.now = self.now.max(next);
                true
            }
            None => false,
        }
    }

    /// Runs until `done` holds, looking after every step (or until nothing is left to do, or
    /// the virtual time limit).
    pub fn run_until(&mut self, mut done: impl FnMut(&Lab) -> bool) {
        let limit = self.now + VIRTUAL_TIME_LIMIT;
        loop {
            while self.step() {
                if done(self) {
                    return;
                }
            }
            if done(self) {
                return;
            }
            assert!(self.now < limit, "virtual time limit: {}", self.context());
            if !self.jump() {
                return;
            }
        }
    }

    /// Advances virtual time by `duration`, running every timer on the way.
    pub fn advance(&mut self, duration: Duration) {
        let until = self.now + duration;
        loop {
            while self.step() {}
            let next = [
                self.client.poll_timeout(),
                self.server.poll_timeout(),
                self.backend.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(next) if next <= until => self.now = self.now.max(next),
                _ => break,
            }
        }
        self.now = until;
        while self.step() {}
    }

    /// Every client connection has ended, and so has every connection of the server and the
    /// backend.
    pub fn all_ended(&self) -> bool {
        self.apps.values().all(|app| app.ended.is_some())
            && self.server.connection_count() == 0
            && self.backend.connections.values().all(|c| c.recorded)
    }

    pub fn context(&self) -> String {
        format!(
            "at {:?}: client {:?}, server {:?}, backend {} connections",
            Duration::from_nanos(self.now.as_nanos()),
            self.client,
            self.server,
            self.backend.connections.len(),
        )
    }

    /// `data` is the start of what one backend connection sent (finished or not).
    pub fn backend_sent_prefix(&self, data: &[u8]) -> bool {
        let finished = self.backend.done.iter().map(|exchange| &exchange.sent);
        let live = self.backend.connections.values().map(|c| &c.download);
        data.is_empty() || finished.chain(live).any(|sent| sent.starts_with(data))
    }

    /// Every byte each side sent arrived at the other, connection by connection (matched by
    /// content: the backend does not know which client connection a backend one relays).
    pub fn check_data(&self) {
        let mut uploads: Vec<(usize, String)> = self
            .apps
            .values()
            .map(|app| (app.upload.len(), sha256(&app.upload)))
            .collect();
        let mut backend_received: Vec<(usize, String)> = self
            .backend
            .done
            .iter()
            .map(|exchange| (exchange.received.len(), sha256(&exchange.received)))
            .collect();
        uploads.sort();
        backend_received.sort();
        assert_eq!(
            backend_received,
            uploads,
            "what the backend received is what the clients sent: {}",
            self.context()
        );
        let mut downloads: Vec<(usize, String)> = self
            .backend
            .done
            .iter()
            .map(|exchange| (exchange.sent.len(), sha256(&exchange.sent)))
            .collect();
        let mut client_received: Vec<(usize, String)> = self
            .apps
            .values()
            .map(|app| (app.received.len(), sha256(&app.received)))
            .collect();
        downloads.sort();
        client_received.sort();
        assert_eq!(
            client_received,
            downloads,
            "what the clients received is what the backend sent: {}",
            self.context()
        );
    }
}
