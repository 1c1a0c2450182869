//! The multipath simulation harness: see `tests/engine_multipath.rs`.
//!
//! The engine has one client-facing interface per path (198.18.k.2/24 on interface k) and the
//! backend interface last (198.19.0.1/24). Each simulated client host `h` has one address per
//! path (198.18.k.(h+1)) and one link pair per path, and plays a Linux-like MPTCP client of
//! its own: subflow 0 opens with MP_CAPABLE to the engine's first address; once the
//! connection is fully established, every further path opens a subflow with MP_JOIN to that
//! same first address (the weak host model: the frame arrives on interface k). The client's
//! data level spreads its upload over its subflows with checksummed DSS mappings whose data
//! sequence numbers have nothing to do with the subflow's, moves data off subflows whose
//! retransmissions time out (reinjection), and reassembles the engine's data by the mappings.
//!
//! The client lives in `multipath_client.rs` (re-exported here); this file holds the
//! addresses, the engine's configuration, the backend and the network that joins them. The
//! join's HMACs are computed there with `ring` directly, not with the engine's functions, so
//! that a mistake in those cannot hide itself.

use core::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use core::time::Duration;
use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use mpterm_engine::tcp::Tcb;
use mpterm_engine::{
    Engine, EngineConfig, Instant, InterfaceConfig, ProxyRule, SubflowView, TokenRegistry,
};
use mpterm_wire::arp::{ArpOperation, ArpRepr};
use mpterm_wire::ethernet::{self, EthernetAddress, EthernetRepr};
use mpterm_wire::mptcp::{MpJoin, MpTcpRst, MptcpOption};
use mpterm_wire::tcp::{TcpFlags, TcpOptions, TcpRepr};
use mpterm_wire::SeqNumber;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{
    decode_segment, encode_segment, parse_frame, sha256, tcp_frame, tuning, App, Buf, Link,
    LinkConfig, Parsed,
};

pub const KIB: usize = 1024;
/// Payload below this is a runt for the engine's download segments (its MSS is 1420 here).
pub const RUNT_BYTES: usize = 1000;
/// The most client paths a simulation has (engine interfaces 0..MAX_PATHS-1).
pub const MAX_PATHS: usize = 4;
pub const BACKEND_SIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 2, 0];
pub const BACKEND_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x20, 0];
pub const APPLIANCE_BACKEND_SIDE: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
pub const BACKEND: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 2), 6000);
pub const LISTEN_PORT: u16 = 5000;
/// A run that has not ended by then is stuck: subflows on dead paths end within the user
/// timeout (180 s), so every run here ends by about 185 s of virtual time.
pub const VIRTUAL_TIME_LIMIT: Duration = Duration::from_secs(600);
/// The client's data level keeps at most this much unacknowledged by DATA_ACK, below the
/// engine's connection-level receive window (section 3.3.4), so that nothing it sends is
/// dropped for lack of room.
pub const DATA_WINDOW: u64 = 192 * 1024;
/// Linux's smallest MPTCP-level retransmission timeout (`TCP_RTO_MIN`): how long the client
/// waits for the acknowledgement of its join's third ACK, or of its DATA_FIN, before sending
/// it again.
pub const CLIENT_RETRY: Duration = Duration::from_millis(200);
/// Bytes of every upload that name the client host, so that the backend knows whose download
/// to send: the upload is this header, then seeded data.
pub const HEADER_LEN: usize = 8;

/// The engine's MAC on the client-facing interface of `path`.
pub fn engine_mac(path: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, 1, path as u8]
}

/// The engine's address on `path`.
pub fn engine_address(path: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, path as u8, 2)
}

/// The listener, on the engine's first address: every subflow goes there.
pub fn listen() -> SocketAddrV4 {
    SocketAddrV4::new(engine_address(0), LISTEN_PORT)
}

/// Client host `host`'s address on `path`: host 0 is 198.18.k.1, host h > 0 198.18.k.(10+h)
/// (198.18.k.2 is the engine's).
pub fn client_address(host: usize, path: usize) -> Ipv4Addr {
    let last = if host == 0 { 1 } else { 10 + host as u8 };
    Ipv4Addr::new(198, 18, path as u8, last)
}

pub fn client_mac(host: usize, path: usize) -> [u8; 6] {
    [0x02, 0, 0, 0x10, path as u8, host as u8]
}

/// Which client host an address on the client side belongs to.
fn host_of(address: Ipv4Addr) -> Option<usize> {
    match address.octets() {
        [198, 18, _, 1] => Some(0),
        [198, 18, _, last] if last > 10 => Some(usize::from(last) - 10),
        _ => None,
    }
}

#[derive(Debug, Default)]
pub struct Tokens {
    pub registered: Vec<u32>,
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
        self.registered.retain(|t| *t != token);
    }
}

/// The engine with `paths` client-facing interfaces and the backend interface after them.
pub fn multipath_config(paths: usize, max_connections: usize) -> EngineConfig {
    let mut interfaces: Vec<InterfaceConfig> = (0..paths)
        .map(|path| InterfaceConfig {
            mac: engine_mac(path),
            address: engine_address(path),
            prefix_len: 24,
            gateway: None,
            mtu: 1500,
            ipv6: None,
        })
        .collect();
    interfaces.push(InterfaceConfig {
        mac: BACKEND_SIDE_MAC,
        address: APPLIANCE_BACKEND_SIDE,
        prefix_len: 24,
        gateway: None,
        mtu: 1500,
        ipv6: None,
    });
    EngineConfig {
        interfaces,
        proxies: vec![ProxyRule {
            listen: listen().into(),
            backend: BACKEND,
            scheduler: mpterm_engine::scheduler::SchedulerKind::default(),
        }],
        client_tcp: tuning(),
        backend_tcp: tuning(),
        mptcp_checksum_required: true,
        max_connections,
        max_time_wait: 4096,
        mptcp_max_subflows: 8,
        mptcp_allow_join_initial_address: true,
        time_wait_reuse: true,
        local_ports: 49152..=65535,
    }
}

/// The simulated client, in its own file.
pub use super::multipath_client::*;

/// The backend's side of one proxied connection.
#[derive(Debug)]
pub struct BackendConnection {
    pub tcb: Tcb<Buf>,
    pub app: App,
    /// The client host whose upload this is, once its header arrived.
    pub client: Option<usize>,
}

/// A segment of the engine toward a client address that matched no client subflow (the
/// answers to forged SYNs).
#[derive(Debug, Clone)]
pub struct StraySegment {
    pub path: usize,
    pub dst: SocketAddrV4,
    pub flags: TcpFlags,
    pub reset: Option<MpTcpRst>,
    pub join_syn_ack: bool,
}

/// The simulated network: the engine, client hosts with one link pair per path, a backend.
pub struct MultipathNet {
    pub now: Instant,
    pub seed: u64,
    pub paths: usize,
    pub engine: Engine<Buf, ChaCha8Rng, Tokens>,
    pub clients: Vec<MpClient>,
    /// `links[host][path]`: `[client to engine, engine to client]`.
    pub links: Vec<Vec<[Link; 2]>>,
    /// `cut[host][path]`: the path drops everything both ways.
    pub cut: Vec<Vec<bool>>,
    /// `[backend to engine, engine to backend]`.
    pub backend_links: [Link; 2],
    pub backends: Vec<BackendConnection>,
    /// Backend connections by the engine's local port.
    backend_by_port: HashMap<u16, usize>,
    /// What each client host's backend connection sends it.
    pub downloads: Vec<Bytes>,
    pub arp_answered: u64,
    pub stray: Vec<StraySegment>,
    /// Keep the engine's view of every subflow ever seen, refreshed as time advances.
    pub record_views: bool,
    /// `(connection id, remote address) -> latest view`.
    pub views: BTreeMap<(u64, SocketAddr), SubflowView>,
}

impl MultipathNet {
    /// `clients[h]` is host h's paths (its path 0 first); each client uploads `uploads[h]`
    /// (after the header) and downloads `downloads[h]`.
    pub fn new(
        seed: u64,
        config: EngineConfig,
        clients: Vec<(Vec<PathSpec>, Bytes, Bytes)>,
        scheduler: ClientScheduler,
    ) -> MultipathNet {
        let now = Instant::from_nanos(1_000_000_000);
        let paths = config.interfaces.len() - 1;
        let mut links = Vec::new();
        let mut hosts = Vec::new();
        let mut downloads = Vec::new();
        for (host, (specs, upload, download)) in clients.into_iter().enumerate() {
            assert!(
                specs.len() <= paths,
                "a client path needs an engine interface"
            );
            let path_links = specs
                .iter()
                .enumerate()
                .map(|(path, spec)| {
                    let base = seed
                        .wrapping_mul(4096)
                        .wrapping_add((host * 16 + path * 2) as u64);
                    [Link::new(spec.link, base), Link::new(spec.link, base + 1)]
                })
                .collect();
            links.push(path_links);
            let mut data = (host as u64).to_be_bytes().to_vec();
            data.extend_from_slice(&upload);
            let mut client = MpClient::new(host, seed, specs, Bytes::from(data), scheduler);
            client.connect(now);
            hosts.push(client);
            downloads.push(download);
        }
        let backend_link = LinkConfig::clean(Duration::from_millis(1));
        MultipathNet {
            now,
            seed,
            paths,
            engine: Engine::new(config, ChaCha8Rng::seed_from_u64(seed), Tokens::default()),
            cut: links
                .iter()
                .map(|l: &Vec<[Link; 2]>| vec![false; l.len()])
                .collect(),
            links,
            clients: hosts,
            backend_links: [
                Link::new(backend_link, seed ^ 0xb0),
                Link::new(backend_link, seed ^ 0xb1),
            ],
            backends: Vec::new(),
            backend_by_port: HashMap::new(),
            downloads,
            arp_answered: 0,
            stray: Vec::new(),
            record_views: false,
            views: BTreeMap::new(),
        }
    }

    /// The backend interface's index.
    fn backend_interface(&self) -> usize {
        self.paths
    }

    /// Cuts `path` of `host`: from now on it drops everything both ways, in flight too.
    pub fn cut_path(&mut self, host: usize, path: usize) {
        self.cut[host][path] = true;
    }

    pub fn context(&self) -> String {
        // The first hosts, and any whose transfer has not ended.
        let clients: Vec<String> = self
            .clients
            .iter()
            .filter(|c| {
                c.host < 4
                    || !(c.upload_acknowledged() && c.data_fin_acked && c.download_finished())
            })
            .map(|c| {
                let subflows: Vec<String> = c
                    .subflows
                    .iter()
                    .map(|s| {
                        format!(
                            "p{} {:?} {:?} stale={} q={} d={}",
                            s.path,
                            s.phase,
                            s.tcb.state(),
                            s.stale,
                            s.bytes_queued,
                            s.bytes_delivered
                        )
                    })
                    .collect();
                format!(
                    "host {}: up {}/{} acked, down {}/{} fin {:?}/{} [{}]",
                    c.host,
                    c.data_acked,
                    c.upload.len(),
                    c.received.len(),
                    self.downloads[c.host].len(),
                    c.remote_data_fin,
                    c.remote_data_fin_reached,
                    subflows.join("; ")
                )
            })
            .take(8)
            .collect();
        format!(
            "seed {} at {:?} virtual: engine {:?}, {} connections; clients: {}",
            self.seed,
            Duration::from_nanos(self.now.as_nanos()),
            self.engine.counters(),
            self.engine.connection_count(),
            clients.join(" | ")
        )
    }

    /// Forges a SYN from `host` on `path` straight into the engine (for join floods and
    /// unknown tokens): source port `port`, MP_JOIN with `token`.
    pub fn inject_join_syn(&mut self, host: usize, path: usize, port: u16, token: u32, nonce: u32) {
        let mut options = TcpOptions {
            mss: Some(1460),
            ..TcpOptions::default()
        };
        options.mptcp[0] = Some(MptcpOption::MpJoin(MpJoin::Syn {
            backup: false,
            address_id: path as u8,
            receiver_token: token,
            sender_nonce: nonce,
        }));
        let repr = TcpRepr {
            src_port: port,
            dst_port: LISTEN_PORT,
            seq: SeqNumber(nonce),
            ack: SeqNumber(0),
            flags: TcpFlags::SYN,
            window: 65_535,
            options,
        };
        let src = client_address(host, path);
        let dst = engine_address(0);
        let mut bytes = vec![0u8; repr.header_len()];
        repr.emit(&mut bytes).expect("a valid SYN");
        mpterm_wire::tcp::fill_checksum_v4(&mut bytes, src, dst, &[]);
        let frame = tcp_frame(client_mac(host, path), engine_mac(path), src, dst, &bytes);
        self.engine
            .handle_frame(self.now, path, Buf(Bytes::from(frame)));
    }

    fn answer_arp(&mut self, interface: usize, request: &ArpRepr) {
        if request.operation != ArpOperation::Request {
            return;
        }
        let host_mac = if interface == self.backend_interface() {
            (request.target_ip == *BACKEND.ip()).then_some(BACKEND_MAC)
        } else {
            host_of(request.target_ip)
                .filter(|&host| client_address(host, interface) == request.target_ip)
                .map(|host| client_mac(host, interface))
        };
        let Some(host_mac) = host_mac else {
            return;
        };
        let reply = ArpRepr {
            operation: ArpOperation::Reply,
            sender_mac: EthernetAddress(host_mac),
            sender_ip: request.target_ip,
            target_mac: request.sender_mac,
            target_ip: request.sender_ip,
        };
        let mut frame = vec![0u8; 60];
        let len = EthernetRepr {
            src: EthernetAddress(host_mac),
            dst: request.sender_mac,
            ethertype: ethernet::ETHERTYPE_ARP,
        }
        .emit(&mut frame)
        .unwrap();
        reply.emit(&mut frame[len..]).unwrap();
        self.arp_answered += 1;
        self.engine
            .handle_frame(self.now, interface, Buf(Bytes::from(frame)));
    }

    /// Puts what host `host`'s subflows have to send on their links.
    fn send_client_segments(&mut self, host: usize) -> bool {
        let mut moved = false;
        let now = self.now;
        let client = &mut self.clients[host];
        for index in 0..client.subflows.len() {
            while let Some(mut segment) = client.subflows[index].tcb.poll_segment(now) {
                moved = true;
                client.decorate(index, now, &mut segment);
                let subflow = &client.subflows[index];
                let path = subflow.path;
                let src = ipv4_of(subflow.tcb.local());
                let dst = ipv4_of(subflow.tcb.remote());
                if self.cut[host][path] {
                    continue;
                }
                let bytes = encode_segment(&segment, src, dst);
                let frame = tcp_frame(client_mac(host, path), engine_mac(path), src, dst, &bytes);
                self.links[host][path][0].send(now, frame);
            }
        }
        moved
    }

    /// A frame from the engine on a client-facing interface reaches its client.
    fn deliver_to_client(&mut self, path: usize, frame: &[u8]) {
        let Parsed::Tcp {
            src_mac,
            src,
            dst,
            segment,
        } = parse_frame(frame)
        else {
            return;
        };
        assert_eq!(
            src_mac,
            EthernetAddress(engine_mac(path)),
            "leaves by its path"
        );
        let (repr, payload) = decode_segment(segment, src, dst);
        let destination = SocketAddr::V4(SocketAddrV4::new(dst, repr.dst_port));
        let source = SocketAddr::V4(SocketAddrV4::new(src, repr.src_port));
        let host = host_of(dst).filter(|&host| host < self.clients.len());
        let index = host.and_then(|host| {
            self.clients[host]
                .subflows
                .iter()
                .position(|s| s.tcb.local() == destination && s.tcb.remote() == source)
        });
        match (host, index) {
            (Some(host), Some(index)) => {
                let now = self.now;
                self.clients[host].handle_segment(now, index, &repr, payload);
                // The data level takes the payload before the ACK leaves, so that the ACK
                // carries the DATA_ACK that covers it (as Linux moves data to the MPTCP socket
                // before `tcp_ack_snd_check`).
                self.clients[host].read();
                if self.clients[host].subflows[index].tcb.is_synchronized() {
                    // Like Linux, the third ACK leaves as soon as the SYN-ACK arrives.
                    self.send_client_segments(host);
                }
            }
            _ => self.stray.push(StraySegment {
                path,
                dst: SocketAddrV4::new(dst, repr.dst_port),
                flags: repr.flags,
                reset: repr.options.mptcp.iter().flatten().find_map(|o| match o {
                    MptcpOption::MpTcpRst(reset) => Some(*reset),
                    _ => None,
                }),
                join_syn_ack: repr
                    .options
                    .mptcp
                    .iter()
                    .flatten()
                    .any(|o| matches!(o, MptcpOption::MpJoin(MpJoin::SynAck { .. }))),
            }),
        }
    }

    fn deliver_to_backend(&mut self, frame: &[u8]) {
        let Parsed::Tcp {
            src, dst, segment, ..
        } = parse_frame(frame)
        else {
            return;
        };
        assert_eq!(dst, *BACKEND.ip());
        assert_eq!(src, APPLIANCE_BACKEND_SIDE);
        let (repr, payload) = decode_segment(segment, src, dst);
        match self.backend_by_port.get(&repr.src_port) {
            Some(&index) => self.backends[index]
                .tcb
                .handle_segment(self.now, &repr, payload),
            None => {
                if !repr.flags.contains(TcpFlags::SYN) || repr.flags.contains(TcpFlags::ACK) {
                    return;
                }
                assert_eq!(repr.dst_port, BACKEND.port());
                let remote = SocketAddrV4::new(src, repr.src_port);
                let iss = SeqNumber((self.seed as u32) ^ u32::from(repr.src_port) << 8);
                let tcb = Tcb::accept(self.now, BACKEND, remote, &repr, iss, 1460, tuning());
                self.backend_by_port
                    .insert(repr.src_port, self.backends.len());
                self.backends.push(BackendConnection {
                    tcb,
                    app: App::new(Bytes::new()),
                    client: None,
                });
            }
        }
    }

    pub fn step(&mut self) -> bool {
        let mut moved = false;
        let now = self.now;
        for host in 0..self.clients.len() {
            self.clients[host].run(now);
            moved |= self.send_client_segments(host);
        }
        for backend in &mut self.backends {
            if backend.client.is_some() {
                backend.app.write(&mut backend.tcb);
            }
            while let Some(segment) = backend.tcb.poll_segment(now) {
                moved = true;
                let bytes = encode_segment(&segment, *BACKEND.ip(), APPLIANCE_BACKEND_SIDE);
                let frame = tcp_frame(
                    BACKEND_MAC,
                    BACKEND_SIDE_MAC,
                    *BACKEND.ip(),
                    APPLIANCE_BACKEND_SIDE,
                    &bytes,
                );
                self.backend_links[0].send(now, frame);
            }
        }
        if self
            .engine
            .poll_timeout()
            .is_some_and(|deadline| deadline <= now)
        {
            self.engine.handle_timeout(now);
        }
        while let Some(transmit) = self.engine.poll_transmit(now) {
            moved = true;
            let mut frame = transmit.header.as_slice().to_vec();
            if let Some(payload) = &transmit.payload {
                frame.extend_from_slice(&payload.0);
            }
            if let Parsed::Arp(arp, _) = parse_frame(&frame) {
                self.answer_arp(transmit.interface, &arp);
                continue;
            }
            if transmit.interface == self.backend_interface() {
                self.backend_links[1].send(now, frame);
                continue;
            }
            let path = transmit.interface;
            let dst = match parse_frame(&frame) {
                Parsed::Tcp { dst, .. } => dst,
                _ => continue,
            };
            match host_of(dst).filter(|&h| h < self.clients.len() && path < self.links[h].len()) {
                Some(host) if !self.cut[host][path] => self.links[host][path][1].send(now, frame),
                Some(_) => {}
                // Answers to forged segments from addresses no client plays: seen at once.
                None => self.deliver_to_client(path, &frame),
            }
        }
        for host in 0..self.clients.len() {
            for path in 0..self.links[host].len() {
                let cut = self.cut[host][path];
                for frame in self.links[host][path][0].arrivals(now) {
                    moved = true;
                    if !cut {
                        self.engine.handle_frame(now, path, Buf(Bytes::from(frame)));
                    }
                }
                for frame in self.links[host][path][1].arrivals(now) {
                    moved = true;
                    if !cut {
                        self.deliver_to_client(path, &frame);
                    }
                }
            }
        }
        let backend_interface = self.backend_interface();
        for frame in self.backend_links[0].arrivals(now) {
            moved = true;
            self.engine
                .handle_frame(now, backend_interface, Buf(Bytes::from(frame)));
        }
        for frame in self.backend_links[1].arrivals(now) {
            moved = true;
            self.deliver_to_backend(&frame);
        }
        for client in &mut self.clients {
            client.read();
        }
        for backend in &mut self.backends {
            backend.app.read(&mut backend.tcb);
            if backend.client.is_none() && backend.app.received.len() >= HEADER_LEN {
                let mut header = [0u8; HEADER_LEN];
                header.copy_from_slice(&backend.app.received[..HEADER_LEN]);
                let host = u64::from_be_bytes(header) as usize;
                assert!(host < self.downloads.len(), "a known client's header");
                backend.client = Some(host);
                backend.app.outgoing = self.downloads[host].clone();
                moved = true;
            }
        }
        moved
    }

    pub fn refresh_views(&mut self) {
        let views = &mut self.views;
        self.engine.visit_connections(|id, subflows| {
            for view in subflows {
                views.insert((id, view.remote), view);
            }
        });
    }

    pub fn jump(&mut self) -> bool {
        if self.record_views {
            self.refresh_views();
        }
        let mut deadlines: Vec<Instant> = Vec::new();
        for host_links in &self.links {
            for pair in host_links {
                deadlines.extend(pair.iter().filter_map(Link::next_arrival));
            }
        }
        deadlines.extend(self.backend_links.iter().filter_map(Link::next_arrival));
        deadlines.extend(self.clients.iter().filter_map(MpClient::poll_timeout));
        deadlines.extend(self.backends.iter().filter_map(|b| b.tcb.poll_timeout()));
        deadlines.extend(self.engine.poll_timeout());
        let Some(next) = deadlines.into_iter().min() else {
            return false;
        };
        self.now = self.now.max(next);
        for client in &mut self.clients {
            for subflow in &mut client.subflows {
                subflow.tcb.handle_timeout(self.now);
            }
        }
        for backend in &mut self.backends {
            backend.tcb.handle_timeout(self.now);
        }
        true
    }

    /// Runs until `done` holds or nothing is left to do; `done` sees the net after every
    /// batch of steps.
    pub fn drive_until(&mut self, mut done: impl FnMut(&mut MultipathNet) -> bool) {
        let limit = self.now + VIRTUAL_TIME_LIMIT;
        loop {
            // Segments bouncing back and forth without time passing (an ACK storm) would
            // never end: stop with the context instead.
            let mut steps = 0u32;
            while self.step() {
                steps += 1;
                assert!(
                    steps < 100_000,
                    "no end to segments at one instant: {}",
                    self.context()
                );
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

    /// The backend connection carrying host `host`'s upload.
    pub fn backend_of(&self, host: usize) -> Option<&BackendConnection> {
        self.backends.iter().find(|b| b.client == Some(host))
    }

    pub fn all_data_arrived(&self) -> bool {
        self.clients.iter().all(|client| {
            client.received.len() == self.downloads[client.host].len()
                && self
                    .backend_of(client.host)
                    .is_some_and(|b| b.app.received.len() == client.upload.len())
        })
    }

    /// Every transfer is over and the engine let go of every connection.
    pub fn finished(&self) -> bool {
        self.all_data_arrived()
            && self.engine.connection_count() == 0
            && self.clients.iter().all(MpClient::download_finished)
    }

    /// Byte-exact both ways for every client.
    pub fn check_data(&self) {
        for client in &self.clients {
            let backend = self.backend_of(client.host).unwrap_or_else(|| {
                panic!("host {} has a backend: {}", client.host, self.context())
            });
            for (what, received, sent) in [
                ("backend", &backend.app.received, &client.upload),
                ("client", &client.received, &self.downloads[client.host]),
            ] {
                assert!(
                    received[..] == sent[..],
                    "host {}: {what} received {} bytes (sha256 {}), expected {} (sha256 {}): {}",
                    client.host,
                    received.len(),
                    sha256(received),
                    sent.len(),
                    sha256(sent),
                    self.context()
                );
            }
            assert_eq!(
                client.option_less_segments,
                0,
                "every engine segment carries an MPTCP option: {}",
                self.context()
            );
            assert_eq!(client.data_acks_beyond_sent, 0, "{}", self.context());
            assert_eq!(client.syn_ack_hmac_failures, 0, "{}", self.context());
        }
    }

    /// The engine's latest view of each subflow of the connection whose initial subflow
    /// comes from `host`.
    pub fn views_of(&self, host: usize) -> Vec<SubflowView> {
        let initial = self.clients[host].subflows[0].tcb.local();
        let Some(&(id, _)) = self.views.keys().find(|(_, remote)| *remote == initial) else {
            return Vec::new();
        };
        self.views
            .iter()
            .filter(|((view_id, _), _)| *view_id == id)
            .map(|(_, view)| *view)
            .collect()
    }
}

pub fn seeds(defaults: &[u64]) -> Vec<u64> {
    match std::env::var("SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("SIM_SEED is a number")],
        Err(_) => defaults.to_vec(),
    }
}

/// The IPv4 address of `address`: the simulated network is IPv4 only.
fn ipv4_of(address: SocketAddr) -> Ipv4Addr {
    match address.ip() {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) => panic!("{v6}: the simulated network is IPv4 only"),
    }
}
