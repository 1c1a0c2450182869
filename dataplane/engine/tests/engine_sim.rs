//! The whole engine in a simulated network, driven by Ethernet frames: a client control block
//! (plain TCP or MPTCP, active open) on interface 0, a backend control block (passive: it
//! accepts the engine's SYN) on interface 1. The harness answers the engine's ARP requests for
//! the backend and the client; links have delay, seeded loss, reordering and duplication, and
//! virtual time jumps to the next deadline. A failing run prints its seed; `SIM_SEED=<seed>`
//! replays only that seed.

mod common;

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use bytes::Bytes;
use common::{
    decode_segment, encode_segment, parse_frame, pattern, sha256, tcp_frame, tuning, App, Buf,
    Link, LinkConfig, Parsed,
};
use mpterm_engine::mptcp::expand_data_seq;
use mpterm_engine::mptcp_keys::derive_from_key;
use mpterm_engine::tcp::{CloseReason, OutgoingSegment, Tcb, TcpState};
use mpterm_engine::{Engine, EngineConfig, Instant, InterfaceConfig, ProxyRule, TokenRegistry};
use mpterm_wire::arp::{ArpOperation, ArpRepr};
use mpterm_wire::checksum::dss_pseudo_header;
use mpterm_wire::ethernet::{self, EthernetAddress, EthernetRepr};
use mpterm_wire::mptcp::{DataSeqWire, Dss, DssMapping, MpCapable, MptcpOption};
use mpterm_wire::tcp::{SackBlocks, TcpFlags, TcpRepr};
use mpterm_wire::SeqNumber;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

const KIB: usize = 1024;
const CLIENT_SIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const BACKEND_SIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
const BACKEND_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x20];
const APPLIANCE_CLIENT_SIDE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const APPLIANCE_BACKEND_SIDE: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const BACKEND: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 2), 6000);
const LISTEN: SocketAddrV4 = SocketAddrV4::new(APPLIANCE_CLIENT_SIDE, 5000);
const ONE_WAY_DELAY: Duration = Duration::from_millis(5);
const VIRTUAL_TIME_LIMIT: Duration = Duration::from_secs(3600);
const CLIENT_KEY: u64 = 0x0123_4567_89ab_cdef;

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
        self.registered.retain(|t| *t != token);
    }
}

fn config() -> EngineConfig {
    EngineConfig {
        interfaces: vec![
            InterfaceConfig {
                mac: CLIENT_SIDE_MAC,
                address: APPLIANCE_CLIENT_SIDE,
                prefix_len: 24,
                gateway: None,
                mtu: 1500,
            },
            InterfaceConfig {
                mac: BACKEND_SIDE_MAC,
                address: APPLIANCE_BACKEND_SIDE,
                prefix_len: 24,
                gateway: None,
                mtu: 1500,
            },
        ],
        proxies: vec![ProxyRule {
            listen: LISTEN,
            backend: BACKEND,
        }],
        client_tcp: tuning(),
        backend_tcp: tuning(),
        mptcp_checksum_required: true,
        max_connections: 8,
        max_time_wait: 1024,
        time_wait_reuse: true,
        local_ports: 49152..=65535,
    }
}

/// The MPTCP side of the simulated client (RFC 8684 with one subflow): adds MP_CAPABLE to
/// the SYN and the third ACK, a DSS with a checksummed mapping to every data segment and a
/// DATA_ACK to every segment, and checks the mappings of what it receives.
#[derive(Debug)]
struct MptcpClient {
    local_idsn: u64,
    remote_key: Option<u64>,
    remote_idsn: u64,
    /// Data-level bytes received in order (single subflow: the subflow bytes).
    received: u64,
    /// The engine's mappings whose checksum was verified.
    verified_mappings: u64,
    /// The index of the mapping whose checksum is corrupted (to test the engine's check);
    /// mapping 0 rides on MP_CAPABLE, the later ones on DSS.
    corrupt_mapping: Option<u32>,
    mappings_sent: u32,
    /// The engine sent a DSS: it has our key, MP_CAPABLE is no longer needed (section 3.1).
    confirmed: bool,
    /// The client subflow's ISN, to place the DATA_FIN after the last data byte.
    client_iss: SeqNumber,
    /// The engine's DATA_FIN, once seen (section 3.3.3).
    remote_data_fin: Option<u64>,
}

impl MptcpClient {
    fn new(corrupt_mapping: Option<u32>, client_iss: SeqNumber) -> MptcpClient {
        MptcpClient {
            local_idsn: derive_from_key(CLIENT_KEY).initial_data_seq,
            remote_key: None,
            remote_idsn: 0,
            received: 0,
            verified_mappings: 0,
            corrupt_mapping,
            mappings_sent: 0,
            confirmed: false,
            client_iss,
            remote_data_fin: None,
        }
    }

    /// One subflow: data sequence = IDSN + relative subflow sequence (section 3.3).
    fn data_seq(&self, relative_seq: u32) -> u64 {
        self.local_idsn.wrapping_add(u64::from(relative_seq))
    }

    /// The data-level length and DSS checksum (section 3.3.1) of a mapping covering exactly
    /// `payload` at `relative_seq`; one is corrupted when the test asks for it.
    fn mapping_checksum(&mut self, relative_seq: u32, payload: &[u8]) -> (u16, u16) {
        let length = payload.len() as u16;
        let mut sum = dss_pseudo_header(self.data_seq(relative_seq), relative_seq, length, 0);
        sum.add_bytes(payload);
        let mut checksum = sum.finish();
        if self.corrupt_mapping == Some(self.mappings_sent) {
            checksum ^= 0x0101;
        }
        self.mappings_sent += 1;
        (length, checksum)
    }

    fn decorate(&mut self, segment: &mut OutgoingSegment<Buf>) {
        let flags = segment.repr.flags;
        if flags.contains(TcpFlags::SYN) {
            segment.repr.options.mptcp[0] = Some(MptcpOption::MpCapable(MpCapable {
                version: 1,
                checksum_required: true,
                extensibility: false,
                no_new_subflows_to_source: false,
                hmac_sha256: true,
                sender_key: None,
                receiver_key: None,
                data_level_length: None,
                checksum: None,
            }));
            return;
        }
        let Some(remote_key) = self.remote_key else {
            return;
        };
        let first_data_or_ack = segment.payload.is_none() || segment.relative_seq == 1;
        if !self.confirmed && first_data_or_ack {
            // RFC 8684 section 3.1: the third ACK carries both keys. When data is ready at
            // once it rides on that segment with a data-level length and checksum, mapped to
            // IDSN + 1 at subflow sequence 1. Like Linux, the client repeats MP_CAPABLE on
            // ACKs and on (re)transmissions of the first data until the server's DSS shows
            // it has the keys; later data carries DSS mappings.
            let (data_level_length, checksum) = match segment.payload.as_ref() {
                Some(payload) => {
                    let (length, checksum) =
                        self.mapping_checksum(segment.relative_seq, &payload.0);
                    (Some(length), Some(checksum))
                }
                None => (None, None),
            };
            segment.repr.options.mptcp[0] = Some(MptcpOption::MpCapable(MpCapable {
                version: 1,
                checksum_required: true,
                extensibility: false,
                no_new_subflows_to_source: false,
                hmac_sha256: true,
                sender_key: Some(CLIENT_KEY),
                receiver_key: Some(remote_key),
                data_level_length,
                checksum,
            }));
            return;
        }
        // Section 3.3.2: the next data sequence number expected; a DATA_FIN counts as one.
        let mut next = self.remote_idsn.wrapping_add(1 + self.received);
        if self.remote_data_fin == Some(next) {
            next = next.wrapping_add(1);
        }
        let data_ack = Some(DataSeqWire::Bits32(next as u32));
        if segment.repr.flags.contains(TcpFlags::FIN) {
            // Section 3.3.3: the DATA_FIN rides on the subflow FIN, mapped to subflow
            // sequence 0 with length 1, right after the last data byte.
            let relative_fin = segment.repr.seq.distance_from(self.client_iss) as u32;
            let fin = self.data_seq(relative_fin);
            segment.repr.options.mptcp[0] = Some(MptcpOption::Dss(Dss {
                data_ack,
                mapping: Some(DssMapping {
                    data_seq: DataSeqWire::Bits64(fin),
                    subflow_seq: 0,
                    data_level_length: 1,
                    checksum: Some(dss_pseudo_header(fin, 0, 1, 0).finish()),
                }),
                data_fin: true,
            }));
            return;
        }
        let mapping = segment.payload.as_ref().map(|payload| {
            let (length, checksum) = self.mapping_checksum(segment.relative_seq, &payload.0);
            DssMapping {
                data_seq: DataSeqWire::Bits64(self.data_seq(segment.relative_seq)),
                subflow_seq: segment.relative_seq,
                data_level_length: length,
                checksum: Some(checksum),
            }
        });
        segment.repr.options.mptcp[0] = Some(MptcpOption::Dss(Dss {
            data_ack,
            mapping,
            data_fin: false,
        }));
        // A pure ACK may carry SACK blocks up to the full option space: keep as many as fit
        // next to the DSS.
        while segment.repr.options.encoded_len() > mpterm_wire::tcp::MAX_OPTIONS_LEN {
            let blocks = segment.repr.options.sack_blocks;
            let mut fewer = SackBlocks::default();
            for &(left, right) in &blocks.as_slice()[..blocks.len().saturating_sub(1)] {
                fewer.push(left, right);
            }
            assert!(!blocks.is_empty(), "options do not fit: {:?}", segment.repr);
            segment.repr.options.sack_blocks = fewer;
        }
    }

    /// Looks at a segment from the engine before the client's TCB takes it.
    fn observe(&mut self, repr: &TcpRepr<'_>, payload: Option<&Buf>) {
        for option in repr.options.mptcp.iter().flatten() {
            match option {
                MptcpOption::MpCapable(capable) if repr.flags.contains(TcpFlags::SYN) => {
                    assert_eq!(capable.version, 1);
                    assert!(capable.checksum_required, "checksums were asked for");
                    let key = capable.sender_key.expect("the SYN-ACK carries the key");
                    self.remote_key = Some(key);
                    self.remote_idsn = derive_from_key(key).initial_data_seq;
                }
                MptcpOption::Dss(_) if !self.confirmed => {
                    self.confirmed = true;
                    self.observe(repr, payload);
                    return;
                }
                MptcpOption::Dss(Dss {
                    mapping: Some(mapping),
                    data_fin,
                    ..
                }) => {
                    if *data_fin {
                        let start = expand_data_seq(mapping.data_seq, self.remote_idsn);
                        let fin = start.wrapping_add(u64::from(mapping.data_level_length) - 1);
                        self.remote_data_fin = Some(fin);
                    }
                    let Some(payload) = payload else { continue };
                    if usize::from(mapping.data_level_length) != payload.0.len() {
                        continue;
                    }
                    let data_seq = expand_data_seq(mapping.data_seq, self.remote_idsn);
                    let checksum = mapping.checksum.expect("checksums are in use");
                    let mut sum = dss_pseudo_header(
                        data_seq,
                        mapping.subflow_seq,
                        mapping.data_level_length,
                        checksum,
                    );
                    sum.add_bytes(&payload.0);
                    assert_eq!(sum.finish(), 0, "the engine's DSS checksum verifies");
                    // One subflow: the mapping maps subflow bytes one to one.
                    assert_eq!(
                        data_seq.wrapping_sub(self.remote_idsn),
                        u64::from(mapping.subflow_seq),
                        "data sequence follows the subflow sequence"
                    );
                    self.verified_mappings += 1;
                }
                _ => {}
            }
        }
    }
}

struct Net {
    now: Instant,
    seed: u64,
    engine: Engine<Buf, ChaCha8Rng, Tokens>,
    client: Tcb<Buf>,
    client_app: App,
    mptcp: Option<MptcpClient>,
    backend: Option<Tcb<Buf>>,
    backend_app: App,
    /// 0: client to engine, 1: engine to client, 2: backend to engine, 3: engine to backend.
    links: [Link; 4],
    arp_answered: u64,
    resets_to_client: u64,
    /// Drops chosen by a test among the engine's segments toward the client:
    /// `(repr, payload length, the engine's ISS toward the client) -> drop`.
    drop_to_client: Option<ScriptedDrop>,
    dropped_to_client: u64,
    /// The same for the client's segments toward the engine (the ISS argument is the
    /// client's own).
    drop_from_client: Option<ScriptedDrop>,
    dropped_from_client: u64,
    /// The backend answers the engine's SYN with RST (nothing listens).
    refuse_backend: bool,
}

type ScriptedDrop = Box<dyn FnMut(&TcpRepr<'_>, usize, SeqNumber) -> bool>;

impl Net {
    fn new(
        seed: u64,
        link: LinkConfig,
        up: Bytes,
        down: Bytes,
        client_port: u16,
        mptcp: Option<MptcpClient>,
    ) -> Net {
        let now = Instant::from_nanos(1_000_000_000);
        let mut client = Tcb::connect(
            now,
            SocketAddrV4::new(CLIENT_IP, client_port),
            LISTEN,
            client_iss(seed),
            1460,
            tuning(),
        );
        if mptcp.is_some() {
            // Room for the DSS this harness adds to every data segment.
            client.set_owner_option_reserve(28);
        }
        Net {
            now,
            seed,
            engine: Engine::new(config(), ChaCha8Rng::seed_from_u64(seed), Tokens::default()),
            client,
            client_app: App::new(up),
            mptcp,
            backend: None,
            backend_app: App::new(down),
            links: [0, 1, 2, 3].map(|i| Link::new(link, seed.wrapping_mul(8) + i)),
            arp_answered: 0,
            resets_to_client: 0,
            drop_to_client: None,
            dropped_to_client: 0,
            drop_from_client: None,
            dropped_from_client: 0,
            refuse_backend: false,
        }
    }

    fn context(&self) -> String {
        format!(
            "seed {} at {:?} virtual: client {:?} {:?}, backend {:?}, engine {:?}",
            self.seed,
            Duration::from_nanos(self.now.as_nanos()),
            self.client.state(),
            self.client.counters(),
            self.backend.as_ref().map(|b| (b.state(), b.counters())),
            self.engine.counters(),
        )
    }

    /// Answers an ARP request the engine sent on `interface` for a host the harness plays.
    fn answer_arp(&mut self, interface: usize, request: &ArpRepr) {
        let (host_mac, host_ip) = match interface {
            0 => (CLIENT_MAC, CLIENT_IP),
            _ => (BACKEND_MAC, *BACKEND.ip()),
        };
        if request.operation != ArpOperation::Request || request.target_ip != host_ip {
            return;
        }
        let reply = ArpRepr {
            operation: ArpOperation::Reply,
            sender_mac: EthernetAddress(host_mac),
            sender_ip: host_ip,
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

    fn scripted_drop_to_client(&mut self, frame: &[u8]) -> bool {
        let engine_iss = self.client.irs();
        let Some(drop) = self.drop_to_client.as_mut() else {
            return false;
        };
        let Parsed::Tcp {
            src, dst, segment, ..
        } = parse_frame(frame)
        else {
            return false;
        };
        let (repr, payload) = decode_segment(segment, src, dst);
        drop(&repr, payload.map_or(0, |p| p.0.len()), engine_iss)
    }

    fn step(&mut self) -> bool {
        let mut moved = false;
        // The client.
        self.client_app.write(&mut self.client);
        while let Some(mut segment) = self.client.poll_segment(self.now) {
            moved = true;
            if let Some(mptcp) = self.mptcp.as_mut() {
                mptcp.decorate(&mut segment);
            }
            if let Some(drop) = self.drop_from_client.as_mut() {
                let len = segment.payload.as_ref().map_or(0, |p| p.0.len());
                if drop(&segment.repr, len, self.client.iss()) {
                    self.dropped_from_client += 1;
                    continue;
                }
            }
            let bytes = encode_segment(&segment, CLIENT_IP, APPLIANCE_CLIENT_SIDE);
            let frame = tcp_frame(
                CLIENT_MAC,
                CLIENT_SIDE_MAC,
                CLIENT_IP,
                APPLIANCE_CLIENT_SIDE,
                &bytes,
            );
            self.links[0].send(self.now, frame);
        }
        // The backend.
        if let Some(backend) = self.backend.as_mut() {
            self.backend_app.write(backend);
            while let Some(segment) = backend.poll_segment(self.now) {
                moved = true;
                let bytes = encode_segment(&segment, *BACKEND.ip(), APPLIANCE_BACKEND_SIDE);
                let frame = tcp_frame(
                    BACKEND_MAC,
                    BACKEND_SIDE_MAC,
                    *BACKEND.ip(),
                    APPLIANCE_BACKEND_SIDE,
                    &bytes,
                );
                self.links[2].send(self.now, frame);
            }
        }
        // The engine: ARP is answered at once, everything else goes onto the links.
        if self
            .engine
            .poll_timeout()
            .is_some_and(|deadline| deadline <= self.now)
        {
            self.engine.handle_timeout(self.now);
        }
        while let Some(transmit) = self.engine.poll_transmit(self.now) {
            moved = true;
            let mut frame = transmit.header.as_slice().to_vec();
            if let Some(payload) = &transmit.payload {
                frame.extend_from_slice(&payload.0);
            }
            if let Parsed::Arp(arp, _) = parse_frame(&frame) {
                self.answer_arp(transmit.interface, &arp);
                continue;
            }
            if transmit.interface == 0 && self.scripted_drop_to_client(&frame) {
                self.dropped_to_client += 1;
                continue;
            }
            let link = if transmit.interface == 0 { 1 } else { 3 };
            self.links[link].send(self.now, frame);
        }
        // Arrivals.
        for frame in self.links[0].arrivals(self.now) {
            moved = true;
            self.engine
                .handle_frame(self.now, 0, Buf(Bytes::from(frame)));
        }
        for frame in self.links[2].arrivals(self.now) {
            moved = true;
            self.engine
                .handle_frame(self.now, 1, Buf(Bytes::from(frame)));
        }
        for frame in self.links[1].arrivals(self.now) {
            moved = true;
            let Parsed::Tcp {
                src_mac,
                src,
                dst,
                segment,
            } = parse_frame(&frame)
            else {
                continue;
            };
            assert_eq!(src_mac, EthernetAddress(CLIENT_SIDE_MAC));
            assert_eq!(dst, CLIENT_IP);
            let (repr, payload) = decode_segment(segment, src, dst);
            // A RST answering a stray ACK from TIME-WAIT, after the engine released the
            // connection, is ordinary (RFC 9293 3.10.7.1); count only resets of live ones.
            if repr.flags.contains(TcpFlags::RST) && self.client.state() != TcpState::TimeWait {
                self.resets_to_client += 1;
            }
            if let Some(mptcp) = self.mptcp.as_mut() {
                mptcp.observe(&repr, payload.as_ref());
            }
            self.client.handle_segment(self.now, &repr, payload);
        }
        for frame in self.links[3].arrivals(self.now) {
            moved = true;
            let Parsed::Tcp {
                src_mac,
                src,
                dst,
                segment,
            } = parse_frame(&frame)
            else {
                continue;
            };
            assert_eq!(src_mac, EthernetAddress(BACKEND_SIDE_MAC));
            assert_eq!(dst, *BACKEND.ip());
            assert_eq!(src, APPLIANCE_BACKEND_SIDE);
            let (repr, payload) = decode_segment(segment, src, dst);
            match self.backend.as_mut() {
                Some(backend) => backend.handle_segment(self.now, &repr, payload),
                None if self.refuse_backend => {
                    // RFC 9293 3.10.7.1: a SYN to a closed port gets <SEQ=0><ACK=SEQ+1><RST,ACK>.
                    if repr.flags.contains(TcpFlags::RST) {
                        continue;
                    }
                    let reset = TcpRepr {
                        src_port: repr.dst_port,
                        dst_port: repr.src_port,
                        seq: SeqNumber(0),
                        ack: repr.seq + 1,
                        flags: TcpFlags::RST | TcpFlags::ACK,
                        window: 0,
                        options: Default::default(),
                    };
                    let mut bytes = vec![0u8; reset.header_len()];
                    reset.emit(&mut bytes).unwrap();
                    mpterm_wire::tcp::fill_checksum_v4(&mut bytes, dst, src, &[]);
                    let frame = tcp_frame(BACKEND_MAC, BACKEND_SIDE_MAC, dst, src, &bytes);
                    self.links[2].send(self.now, frame);
                }
                None => {
                    assert_eq!(repr.flags, TcpFlags::SYN, "the engine opens with a SYN");
                    assert_eq!(repr.dst_port, BACKEND.port());
                    let remote = SocketAddrV4::new(src, repr.src_port);
                    let iss = SeqNumber((self.seed as u32).wrapping_mul(7919));
                    self.backend = Some(Tcb::accept(
                        self.now,
                        BACKEND,
                        remote,
                        &repr,
                        iss,
                        1460,
                        tuning(),
                    ));
                }
            }
        }
        // Applications read.
        self.client_app.read(&mut self.client);
        if let Some(mptcp) = self.mptcp.as_mut() {
            mptcp.received = self.client_app.received.len() as u64;
        }
        if let Some(backend) = self.backend.as_mut() {
            self.backend_app.read(backend);
        }
        moved
    }

    fn jump(&mut self) -> bool {
        let mut deadlines: Vec<Instant> =
            self.links.iter().filter_map(Link::next_arrival).collect();
        deadlines.extend(self.client.poll_timeout());
        deadlines.extend(self.backend.as_ref().and_then(Tcb::poll_timeout));
        deadlines.extend(self.engine.poll_timeout());
        let Some(next) = deadlines.into_iter().min() else {
            return false;
        };
        self.now = self.now.max(next);
        self.client.handle_timeout(self.now);
        if let Some(backend) = self.backend.as_mut() {
            backend.handle_timeout(self.now);
        }
        true
    }

    /// Runs until `done` holds or nothing is left to do.
    fn drive_until(&mut self, mut done: impl FnMut(&Net) -> bool) {
        let limit = self.now + VIRTUAL_TIME_LIMIT;
        loop {
            while self.step() {}
            if done(self) {
                return;
            }
            assert!(self.now < limit, "virtual time limit: {}", self.context());
            if !self.jump() {
                return;
            }
        }
    }

    fn all_data_arrived(&self) -> bool {
        self.backend_app.received.len() == self.client_app.outgoing.len()
            && self.client_app.received.len() == self.backend_app.outgoing.len()
    }

    fn check_data(&self) {
        for (what, received, sent) in [
            (
                "backend",
                &self.backend_app.received,
                &self.client_app.outgoing,
            ),
            (
                "client",
                &self.client_app.received,
                &self.backend_app.outgoing,
            ),
        ] {
            assert!(
                received[..] == sent[..],
                "{what} received {} bytes (sha256 {}), expected {} (sha256 {}): {}",
                received.len(),
                sha256(received),
                sent.len(),
                sha256(sent),
                self.context()
            );
        }
    }
}

fn client_iss(seed: u64) -> SeqNumber {
    SeqNumber((seed as u32).wrapping_mul(0x9e37_79b9))
}

fn seeds(defaults: &[u64]) -> Vec<u64> {
    match std::env::var("SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("SIM_SEED is a number")],
        Err(_) => defaults.to_vec(),
    }
}

/// Plain TCP through the proxy both ways; both ends close after their data.
fn run_plain(seed: u64, link: LinkConfig, up: usize, down: usize) -> Net {
    eprintln!("engine sim seed {seed} (replay with SIM_SEED={seed}), link {link:?}");
    let mut net = Net::new(
        seed,
        link,
        pattern(up, seed),
        pattern(down, !seed),
        40_000,
        None,
    );
    net.drive_until(|net| {
        net.all_data_arrived()
            && net.client.is_closed()
            && net.backend.as_ref().is_some_and(Tcb::is_closed)
            && net.engine.connection_count() == 0
    });
    net.check_data();
    assert_eq!(net.engine.connection_count(), 0, "{}", net.context());
    for tcb in [&net.client, net.backend.as_ref().unwrap()] {
        assert_eq!(
            tcb.close_reason(),
            Some(CloseReason::Graceful),
            "{}",
            net.context()
        );
    }
    assert!(
        net.arp_answered >= 1,
        "the engine resolved the backend by ARP"
    );
    let counters = net.engine.counters();
    assert_eq!(counters.connections_accepted, 1);
    assert_eq!(counters.connections_established, 1, "{}", net.context());
    assert_eq!(counters.rx_dropped_malformed, 0);
    assert_eq!(counters.mptcp_connections, 0);
    net
}

#[test]
fn plain_tcp_through_the_proxy_on_clean_links() {
    for seed in seeds(&[1]) {
        let net = run_plain(
            seed,
            LinkConfig::clean(ONE_WAY_DELAY),
            1024 * KIB,
            1024 * KIB,
        );
        assert_eq!(
            net.engine.counters().retransmissions,
            0,
            "{}",
            net.context()
        );
        assert_eq!(net.engine.connection_count(), 0, "{}", net.context());
    }
}

#[test]
fn plain_tcp_through_the_proxy_on_lossy_links() {
    for seed in seeds(&[5, 6, 7]) {
        let net = run_plain(
            seed,
            LinkConfig::lossy(ONE_WAY_DELAY, 0.02),
            1024 * KIB,
            1024 * KIB,
        );
        let lost_toward_engine = net.links[0].stats.lost + net.links[2].stats.lost;
        let lost_from_engine = net.links[1].stats.lost + net.links[3].stats.lost;
        assert!(lost_toward_engine > 0 && lost_from_engine > 0);
        assert!(
            net.engine.counters().retransmissions > 0,
            "the engine retransmitted what its links lost: {}",
            net.context()
        );
        let harness_retransmissions = net.client.counters().retransmissions
            + net.backend.as_ref().unwrap().counters().retransmissions;
        assert!(harness_retransmissions > 0);
    }
}

#[test]
fn plain_tcp_through_the_proxy_recovers_a_lost_tail_by_timeout() {
    // No random loss: the engine's segment carrying the last downstream byte toward the client
    // is dropped, and so is its first retransmission; nothing follows it, so only the
    // engine's retransmission timer can recover it.
    for seed in seeds(&[9, 10]) {
        eprintln!("engine sim seed {seed} (replay with SIM_SEED={seed})");
        let down = 64 * KIB;
        let mut net = Net::new(
            seed,
            LinkConfig::clean(ONE_WAY_DELAY),
            pattern(1000, seed),
            pattern(down, !seed),
            40_001,
            None,
        );
        let mut dropped = 0;
        net.drop_to_client = Some(Box::new(move |repr, len, engine_iss| {
            let tail = engine_iss + 1 + down as u32;
            let carries_tail = len > 0 && repr.seq + len as u32 == tail;
            if carries_tail && dropped < 2 {
                dropped += 1;
                return true;
            }
            false
        }));
        net.drive_until(|net| {
            net.all_data_arrived()
                && net.client.is_closed()
                && net.backend.as_ref().is_some_and(Tcb::is_closed)
        });
        net.check_data();
        assert_eq!(net.dropped_to_client, 2, "{}", net.context());
        assert!(
            net.engine.counters().rto_expirations >= 1,
            "{}",
            net.context()
        );
    }
}

#[test]
fn mptcp_client_data_reaches_the_backend_through_checksummed_mappings() {
    let seed = 3;
    eprintln!("engine sim seed {seed}");
    let mut net = Net::new(
        seed,
        LinkConfig::clean(ONE_WAY_DELAY),
        pattern(256 * KIB, seed),
        pattern(128 * KIB, !seed),
        40_002,
        Some(MptcpClient::new(None, client_iss(seed))),
    );
    net.drive_until(|net| net.all_data_arrived());
    net.check_data();
    let counters = *net.engine.counters();
    assert_eq!(counters.mptcp_connections, 1, "{}", net.context());
    assert_eq!(counters.mptcp_fallbacks, 0, "{}", net.context());
    assert_eq!(counters.dss_checksum_failures, 0);
    assert_eq!(counters.dss_mapping_mismatches, 0);
    let mptcp = net.mptcp.as_ref().unwrap();
    assert!(
        mptcp.remote_key.is_some(),
        "SYN-ACK carried MP_CAPABLE with a key"
    );
    assert!(
        mptcp.verified_mappings > 0,
        "the engine's data carried verifiable DSS checksums"
    );
    assert_eq!(net.resets_to_client, 0, "{}", net.context());
    assert_ne!(
        net.client.close_reason(),
        Some(CloseReason::ResetByPeer),
        "{}",
        net.context()
    );
}

/// Sends 64 KiB over MPTCP with mapping `corrupt` carrying a wrong DSS checksum, and checks
/// that the failure is counted, the client is reset and no byte of the bad mapping (or after
/// it) reaches the backend.
fn corrupted_mapping(seed: u64, corrupt: u32, client_port: u16) {
    eprintln!("engine sim seed {seed}, corrupted mapping {corrupt}");
    let up = pattern(64 * KIB, seed);
    let mut net = Net::new(
        seed,
        LinkConfig::clean(ONE_WAY_DELAY),
        up.clone(),
        Bytes::new(),
        client_port,
        Some(MptcpClient::new(Some(corrupt), client_iss(seed))),
    );
    net.drive_until(|net| net.client.is_closed());
    let counters = *net.engine.counters();
    assert_eq!(counters.mptcp_connections, 1, "{}", net.context());
    assert_eq!(counters.dss_checksum_failures, 1, "{}", net.context());
    assert!(
        net.resets_to_client >= 1,
        "the client was reset: {}",
        net.context()
    );
    assert_eq!(net.client.state(), TcpState::Closed, "{}", net.context());
    assert_eq!(net.client.close_reason(), Some(CloseReason::ResetByPeer));
    // Only whole mappings before the corrupted one may have been relayed.
    let relayed = &net.backend_app.received;
    assert!(relayed.len() < up.len(), "{}", net.context());
    assert!(
        relayed[..] == up[..relayed.len()],
        "relayed bytes are a prefix"
    );
    assert_eq!(net.engine.connection_count(), 0, "{}", net.context());
}

#[test]
fn mptcp_corrupted_first_mapping_is_counted_and_resets() {
    corrupted_mapping(4, 0, 40_003);
}

#[test]
fn mptcp_corrupted_later_dss_mapping_is_counted_and_resets() {
    corrupted_mapping(5, 5, 40_004);
}

#[test]
fn mptcp_transfer_both_ways_on_lossy_links() {
    // Retransmissions on both sides of the proxy must carry the mappings of the original
    // segments (RFC 8684 section 3.3.1), or the receiving side reports a mismatch.
    for seed in seeds(&[13, 14]) {
        eprintln!("engine sim seed {seed} (replay with SIM_SEED={seed})");
        let mut net = Net::new(
            seed,
            LinkConfig::lossy(ONE_WAY_DELAY, 0.02),
            pattern(512 * KIB, seed),
            pattern(512 * KIB, !seed),
            40_005,
            Some(MptcpClient::new(None, client_iss(seed))),
        );
        net.drive_until(|net| net.all_data_arrived());
        net.check_data();
        let counters = *net.engine.counters();
        assert_eq!(counters.mptcp_connections, 1, "{}", net.context());
        assert_eq!(counters.mptcp_fallbacks, 0, "{}", net.context());
        assert_eq!(counters.dss_checksum_failures, 0, "{}", net.context());
        assert_eq!(counters.dss_mapping_mismatches, 0, "{}", net.context());
        assert!(counters.retransmissions > 0, "{}", net.context());
        assert!(
            net.client.counters().retransmissions > 0,
            "{}",
            net.context()
        );
    }
}

#[test]
fn mptcp_connection_closes_gracefully_with_data_fins() {
    for seed in seeds(&[15, 16]) {
        eprintln!("engine sim seed {seed} (replay with SIM_SEED={seed})");
        let mut net = Net::new(
            seed,
            LinkConfig::lossy(ONE_WAY_DELAY, 0.01),
            pattern(128 * KIB, seed),
            pattern(96 * KIB, !seed),
            40_006,
            Some(MptcpClient::new(None, client_iss(seed))),
        );
        net.drive_until(|net| {
            net.all_data_arrived()
                && net.client.is_closed()
                && net.backend.as_ref().is_some_and(Tcb::is_closed)
                && net.engine.connection_count() == 0
        });
        net.check_data();
        let counters = *net.engine.counters();
        assert_eq!(counters.mptcp_fallbacks, 0, "{}", net.context());
        assert_eq!(counters.dss_mapping_mismatches, 0, "{}", net.context());
        assert_eq!(net.resets_to_client, 0, "{}", net.context());
        assert!(
            net.mptcp.as_ref().unwrap().remote_data_fin.is_some(),
            "the engine sent a DATA_FIN"
        );
        assert_eq!(
            net.client.close_reason(),
            Some(CloseReason::Graceful),
            "{}",
            net.context()
        );
        assert_eq!(
            net.backend.as_ref().unwrap().close_reason(),
            Some(CloseReason::Graceful),
            "{}",
            net.context()
        );
        assert_eq!(net.engine.connection_count(), 0, "{}", net.context());
    }
}

#[test]
fn mptcp_survives_losing_the_first_data_segment() {
    // The client's first data segment (MP_CAPABLE with both keys and data) is lost once; the
    // segments after it arrive with DSS mappings before the engine has the client's key. The
    // engine must keep those mappings (64-bit data sequence numbers need no key to expand)
    // or fall back to TCP (RFC 8684 section 3.7), not reset the connection.
    let seed = 17;
    eprintln!("engine sim seed {seed}");
    let mut net = Net::new(
        seed,
        LinkConfig::clean(ONE_WAY_DELAY),
        pattern(64 * KIB, seed),
        pattern(16 * KIB, !seed),
        40_007,
        Some(MptcpClient::new(None, client_iss(seed))),
    );
    let mut dropped = false;
    net.drop_from_client = Some(Box::new(move |repr, len, _| {
        let first_data = len > 0
            && !dropped
            && repr
                .options
                .mptcp
                .iter()
                .flatten()
                .any(|o| matches!(o, MptcpOption::MpCapable(_)));
        dropped |= first_data;
        first_data
    }));
    // The proxy acknowledges the client's data once it holds it, so the client may finish
    // before the backend has read everything: drive until both ends have all their data.
    net.drive_until(|net| net.all_data_arrived());
    assert_eq!(net.dropped_from_client, 1, "{}", net.context());
    net.check_data();
    assert_eq!(net.resets_to_client, 0, "{}", net.context());
    assert_eq!(
        net.engine.counters().dss_mapping_mismatches,
        0,
        "{}",
        net.context()
    );
}

#[test]
fn refused_backend_connection_resets_the_client() {
    let seed = 18;
    eprintln!("engine sim seed {seed}");
    let mut net = Net::new(
        seed,
        LinkConfig::clean(ONE_WAY_DELAY),
        pattern(8 * KIB, seed),
        Bytes::new(),
        40_008,
        None,
    );
    net.refuse_backend = true;
    net.drive_until(|net| net.client.is_closed() && net.engine.connection_count() == 0);
    assert_eq!(net.client.state(), TcpState::Closed, "{}", net.context());
    assert_eq!(
        net.client.close_reason(),
        Some(CloseReason::ResetByPeer),
        "{}",
        net.context()
    );
    assert!(net.resets_to_client >= 1, "{}", net.context());
    assert_eq!(net.engine.connection_count(), 0, "{}", net.context());
    assert!(net.backend.is_none());
    assert_eq!(
        net.engine.counters().backend_connect_failures,
        1,
        "{}",
        net.context()
    );
}

#[test]
fn client_abort_mid_transfer_resets_the_backend() {
    let seed = 19;
    eprintln!("engine sim seed {seed}");
    let mut net = Net::new(
        seed,
        LinkConfig::clean(ONE_WAY_DELAY),
        pattern(512 * KIB, seed),
        pattern(512 * KIB, !seed),
        40_009,
        None,
    );
    net.drive_until(|net| net.backend_app.received.len() >= 64 * KIB);
    net.client.abort();
    net.drive_until(|net| {
        net.backend.as_ref().is_some_and(Tcb::is_closed) && net.engine.connection_count() == 0
    });
    let backend = net.backend.as_ref().unwrap();
    assert_eq!(backend.state(), TcpState::Closed, "{}", net.context());
    assert_eq!(
        backend.close_reason(),
        Some(CloseReason::ResetByPeer),
        "{}",
        net.context()
    );
    assert_eq!(net.engine.connection_count(), 0, "{}", net.context());
    // What the backend got is a prefix of what the client sent.
    let got = &net.backend_app.received;
    assert!(got[..] == net.client_app.outgoing[..got.len()]);
}

#[test]
fn backend_abort_mid_transfer_resets_the_client() {
    let seed = 20;
    eprintln!("engine sim seed {seed}");
    let mut net = Net::new(
        seed,
        LinkConfig::clean(ONE_WAY_DELAY),
        pattern(512 * KIB, seed),
        pattern(512 * KIB, !seed),
        40_010,
        None,
    );
    net.drive_until(|net| net.client_app.received.len() >= 64 * KIB);
    net.backend.as_mut().unwrap().abort();
    net.drive_until(|net| net.client.is_closed() && net.engine.connection_count() == 0);
    assert_eq!(net.client.state(), TcpState::Closed, "{}", net.context());
    assert_eq!(
        net.client.close_reason(),
        Some(CloseReason::ResetByPeer),
        "{}",
        net.context()
    );
    // The backend was reached: its reset is not a connect failure.
    assert_eq!(
        net.engine.counters().backend_connect_failures,
        0,
        "{}",
        net.context()
    );
    assert_eq!(net.engine.connection_count(), 0, "{}", net.context());
    let got = &net.client_app.received;
    assert!(got[..] == net.backend_app.outgoing[..got.len()]);
}
