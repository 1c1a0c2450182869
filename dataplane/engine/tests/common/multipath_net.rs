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
//! The HMACs of the join are computed here from RFC 8684 section 3.2 with `ring` directly, not
//! with the engine's functions, so that a mistake in those cannot hide itself.

use core::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use core::time::Duration;
use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::Bytes;
use mpterm_engine::mptcp_keys::derive_from_key;
use mpterm_engine::tcp::{OutgoingSegment, OwnerVerdict, ReceivedMapping, Tcb, TcpState};
use mpterm_engine::{
    Engine, EngineConfig, Instant, InterfaceConfig, ProxyRule, SubflowView, TokenRegistry,
};
use mpterm_wire::arp::{ArpOperation, ArpRepr};
use mpterm_wire::checksum::dss_pseudo_header;
use mpterm_wire::ethernet::{self, EthernetAddress, EthernetRepr};
use mpterm_wire::mptcp::{DataSeqWire, Dss, DssMapping, MpCapable, MpJoin, MpTcpRst, MptcpOption};
use mpterm_wire::tcp::{SackBlocks, TcpFlags, TcpOptions, TcpRepr};
use mpterm_wire::SeqNumber;
use rand_chacha::rand_core::{RngCore, SeedableRng};
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

/// HMAC-SHA256 keyed by `key_1 + key_2` over `nonce_1 + nonce_2`, all big-endian (RFC 8684
/// section 3.2, as Linux's `subflow_generate_hmac`).
fn join_hmac(key_1: u64, key_2: u64, nonce_1: u32, nonce_2: u32) -> [u8; 32] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&key_1.to_be_bytes());
    key[8..].copy_from_slice(&key_2.to_be_bytes());
    let mut message = [0u8; 8];
    message[..4].copy_from_slice(&nonce_1.to_be_bytes());
    message[4..].copy_from_slice(&nonce_2.to_be_bytes());
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
        &message,
    );
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// How the client's data level picks the subflow for its next upload segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientScheduler {
    RoundRobin,
    LowestRtt,
}

/// Where a client subflow stands in its handshake (RFC 8684 sections 3.1 and 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinPhase {
    /// Subflow 0, opened with MP_CAPABLE.
    Initial,
    /// The MP_JOIN SYN is out with our nonce.
    SynSent { nonce: u32 },
    /// The SYN-ACK's HMAC verified; the third ACK (MP_JOIN with our full HMAC) goes on every
    /// segment until the engine acknowledges it (the fourth ACK, section 3.2).
    ThirdAckSent { hmac: [u8; 20], last_sent: Instant },
    /// The engine acknowledged the third ACK: the subflow may carry data.
    Established,
    /// The join failed (a RST, or a SYN-ACK whose HMAC did not verify).
    Failed,
}

/// One subflow of a simulated client.
#[derive(Debug)]
pub struct ClientSubflow {
    pub path: usize,
    pub tcb: Tcb<Buf>,
    pub phase: JoinPhase,
    pub backup: bool,
    /// The upload bytes queued on it and not yet acknowledged by it:
    /// `(subflow relative seq, data offset, len)`.
    sent: VecDeque<(u32, u64, u32)>,
    /// Its retransmissions time out: the data level leaves it alone and moved its data away.
    pub stale: bool,
    /// Upload payload bytes queued on it (first transmissions).
    pub bytes_queued: u64,
    /// Download payload bytes it delivered in order.
    pub bytes_delivered: u64,
    /// The MP_TCPRST options on RSTs it received (None: a RST without one).
    pub resets: Vec<Option<MpTcpRst>>,
    /// The engine's SYN-ACK HMAC for this join verified (section 3.2).
    pub syn_ack_hmac_verified: bool,
    /// The engine's address ID from its MP_JOIN SYN-ACK.
    pub engine_address_id: Option<u8>,
    /// Send a wrong HMAC in the third ACK (to test the engine's check).
    pub corrupt_third_ack: bool,
}

impl ClientSubflow {
    /// The data level may queue upload data on it.
    fn carries_data(&self, confirmed: bool) -> bool {
        let phase_ok = match self.phase {
            JoinPhase::Initial => confirmed,
            JoinPhase::Established => true,
            _ => false,
        };
        phase_ok
            && !self.stale
            && matches!(
                self.tcb.state(),
                TcpState::Established | TcpState::CloseWait
            )
    }

    fn is_live(&self) -> bool {
        !matches!(
            self.tcb.state(),
            TcpState::Closed | TcpState::TimeWait | TcpState::SynSent
        ) && !matches!(self.phase, JoinPhase::Failed)
    }
}

/// A path the client opens a subflow on, and how.
#[derive(Debug, Clone, Copy)]
pub struct PathSpec {
    pub link: LinkConfig,
    /// The client's MP_JOIN SYN asks for a backup subflow (B bit, section 3.2).
    pub backup: bool,
}

impl PathSpec {
    pub fn clean(delay: Duration) -> PathSpec {
        PathSpec {
            link: LinkConfig::clean(delay),
            backup: false,
        }
    }
}

/// One simulated MPTCP client: its subflows and its data level.
#[derive(Debug)]
pub struct MpClient {
    pub host: usize,
    pub key: u64,
    idsn: u64,
    pub remote_key: Option<u64>,
    remote_idsn: u64,
    /// The engine's DSS arrived: it has our key (section 3.1), so the connection is fully
    /// established and joins may start.
    pub confirmed: bool,
    pub paths: Vec<PathSpec>,
    pub subflows: Vec<ClientSubflow>,
    pub scheduler: ClientScheduler,
    round_robin: usize,
    /// The first `open_joins` extra paths get a join (the rest stay unused unless a test
    /// asks later).
    pub joins_wanted: usize,
    joins_started: usize,
    rng: ChaCha8Rng,
    next_port: u16,

    // Upload (our data level toward the engine).
    pub upload: Bytes,
    /// Data offset of the next byte never scheduled.
    scheduled: u64,
    /// Ranges to send again on another subflow: `(data offset, len)`.
    reinjection: VecDeque<(u64, u64)>,
    pub reinjected_bytes: u64,
    /// Bytes the engine DATA_ACKed.
    pub data_acked: u64,
    /// Our DATA_FIN takes data offset `upload.len()`; it is sent once the upload is DATA_ACKed.
    pub data_fin_sent: bool,
    pub data_fin_acked: bool,
    data_fin_last_sent: Option<Instant>,
    /// Every subflow was told to close.
    pub subflows_closed: bool,

    // Download (the engine's data level toward us).
    /// The next data offset expected (our DATA_ACK, less the IDSN + 1).
    next_expected: u64,
    ahead: BTreeMap<u64, Bytes>,
    pub received: Vec<u8>,
    /// The engine's DATA_FIN, as a data offset.
    pub remote_data_fin: Option<u64>,
    pub remote_data_fin_reached: bool,
    pub verified_mappings: u64,
    /// Bytes of the engine's data that arrived again (its reinjections) and matched.
    pub duplicate_bytes: u64,
    /// Segments of the engine after its SYN-ACK without any MPTCP option (never allowed).
    pub option_less_segments: u64,
    /// DATA_ACKs of the engine for data we never sent.
    pub data_acks_beyond_sent: u64,
    /// SYN-ACK HMACs of joins that did not verify.
    pub syn_ack_hmac_failures: u64,
    /// The engine's segments with payload, and those of them carrying less than
    /// [`RUNT_BYTES`]: a sender that cuts data to what a window has left sends runts.
    pub data_segments: u64,
    pub runt_segments: u64,
}

impl MpClient {
    pub fn new(
        host: usize,
        seed: u64,
        paths: Vec<PathSpec>,
        upload: Bytes,
        scheduler: ClientScheduler,
    ) -> MpClient {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1000).wrapping_add(host as u64));
        let key = rng.next_u64();
        let joins_wanted = paths.len() - 1;
        MpClient {
            host,
            key,
            idsn: derive_from_key(key).initial_data_seq,
            remote_key: None,
            remote_idsn: 0,
            confirmed: false,
            paths,
            subflows: Vec::new(),
            scheduler,
            round_robin: 0,
            joins_wanted,
            joins_started: 0,
            rng,
            next_port: 40_000,
            upload,
            scheduled: 0,
            reinjection: VecDeque::new(),
            reinjected_bytes: 0,
            data_acked: 0,
            data_fin_sent: false,
            data_fin_acked: false,
            data_fin_last_sent: None,
            subflows_closed: false,
            next_expected: 0,
            ahead: BTreeMap::new(),
            received: Vec::new(),
            remote_data_fin: None,
            remote_data_fin_reached: false,
            verified_mappings: 0,
            duplicate_bytes: 0,
            option_less_segments: 0,
            data_acks_beyond_sent: 0,
            syn_ack_hmac_failures: 0,
            data_segments: 0,
            runt_segments: 0,
        }
    }

    /// The engine's token (section 3.2: from its key), once known.
    pub fn remote_token(&self) -> Option<u32> {
        self.remote_key.map(|key| derive_from_key(key).token)
    }

    fn new_tcb(&mut self, now: Instant, path: usize) -> Tcb<Buf> {
        let port = self.next_port;
        self.next_port += 1;
        let iss = SeqNumber(self.rng.next_u32());
        let mut tcb = Tcb::connect(
            now,
            SocketAddrV4::new(client_address(self.host, path), port),
            listen(),
            iss,
            1460,
            tuning(),
        );
        // Room for the DSS on every data segment.
        tcb.set_owner_option_reserve(28);
        tcb
    }

    fn add_subflow(&mut self, tcb: Tcb<Buf>, path: usize, phase: JoinPhase, backup: bool) {
        self.subflows.push(ClientSubflow {
            path,
            tcb,
            phase,
            backup,
            sent: VecDeque::new(),
            stale: false,
            bytes_queued: 0,
            bytes_delivered: 0,
            resets: Vec::new(),
            syn_ack_hmac_verified: false,
            engine_address_id: None,
            corrupt_third_ack: false,
        });
    }

    /// Opens subflow 0 on path 0.
    pub fn connect(&mut self, now: Instant) {
        let tcb = self.new_tcb(now, 0);
        self.add_subflow(tcb, 0, JoinPhase::Initial, false);
    }

    /// Opens a join on `path` now (the engine's key must be known).
    pub fn open_join(&mut self, now: Instant, path: usize, backup: bool) -> usize {
        let tcb = self.new_tcb(now, path);
        let nonce = self.rng.next_u32();
        self.add_subflow(tcb, path, JoinPhase::SynSent { nonce }, backup);
        self.subflows.len() - 1
    }

    fn data_seq(&self, offset: u64) -> u64 {
        self.idsn.wrapping_add(1).wrapping_add(offset)
    }

    fn remote_offset(&self, data_seq: u64) -> u64 {
        data_seq.wrapping_sub(self.remote_idsn.wrapping_add(1))
    }

    /// Our DATA_ACK (section 3.3.2): the next data sequence number expected, past the
    /// engine's DATA_FIN once reached.
    fn data_ack(&self) -> u64 {
        let mut next = self
            .remote_idsn
            .wrapping_add(1)
            .wrapping_add(self.next_expected);
        if self.remote_data_fin_reached {
            next = next.wrapping_add(1);
        }
        next
    }

    pub fn upload_acknowledged(&self) -> bool {
        self.data_acked == self.upload.len() as u64
    }

    /// The download is complete: the engine's DATA_FIN is reached.
    pub fn download_finished(&self) -> bool {
        self.remote_data_fin_reached
    }

    /// Joins, data scheduling, reinjection and the close: what the client's MPTCP does
    /// between segments.
    pub fn run(&mut self, now: Instant) {
        if self.confirmed {
            while self.joins_started < self.joins_wanted {
                self.joins_started += 1;
                let path = self.joins_started;
                let backup = self.paths[path].backup;
                self.open_join(now, path, backup);
            }
        }
        for subflow in &mut self.subflows {
            if let JoinPhase::ThirdAckSent { last_sent, .. } = subflow.phase {
                // Section 3.2: the third ACK is delivered reliably; without the fourth ACK
                // the client sends it again.
                if now - last_sent >= CLIENT_RETRY {
                    subflow.tcb.request_ack();
                }
            }
        }
        self.watch_subflows();
        self.schedule();
        self.send_data_fin(now);
        if !self.subflows_closed && self.data_fin_acked && self.remote_data_fin_reached {
            // Both data streams ended: the subflows close (as Linux's `mptcp_close`).
            self.subflows_closed = true;
            for subflow in &mut self.subflows {
                subflow.tcb.close();
            }
        }
    }

    /// The client's own deadlines (third ACK and DATA_FIN retries).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let joins = self
            .subflows
            .iter()
            .filter_map(|subflow| match subflow.phase {
                JoinPhase::ThirdAckSent { last_sent, .. } if subflow.is_live() => {
                    Some(last_sent + CLIENT_RETRY)
                }
                _ => None,
            });
        // Only while some subflow can carry it: a deadline nothing can act on would stop
        // virtual time.
        let carrier = self
            .subflows
            .iter()
            .any(|subflow| subflow.carries_data(self.confirmed));
        let data_fin = self
            .data_fin_last_sent
            .filter(|_| self.data_fin_sent && !self.data_fin_acked && carrier)
            .map(|at| at + CLIENT_RETRY);
        let tcbs = self.subflows.iter().filter_map(|s| s.tcb.poll_timeout());
        joins.chain(data_fin).chain(tcbs).min()
    }

    /// A subflow whose retransmissions time out, or that died, hands its data not yet
    /// DATA_ACKed to the others (RFC 8684 section 3.3.6, as Linux's stale subflows); one that
    /// is acknowledged again returns to service.
    fn watch_subflows(&mut self) {
        let data_acked = self.data_acked;
        for index in 0..self.subflows.len() {
            let subflow = &mut self.subflows[index];
            let timeouts = subflow.tcb.consecutive_timeouts();
            let dead = subflow.tcb.is_closed() || matches!(subflow.phase, JoinPhase::Failed);
            if subflow.stale && timeouts == 0 && !dead {
                subflow.stale = false;
            }
            if subflow.stale || !(dead || timeouts >= 2) {
                continue;
            }
            subflow.stale = true;
            let ranges: Vec<(u64, u64)> = subflow
                .sent
                .iter()
                .map(|&(_, offset, len)| (offset, u64::from(len)))
                .collect();
            if dead {
                subflow.sent.clear();
            }
            for (offset, len) in ranges {
                let end = offset + len;
                if end <= data_acked {
                    continue;
                }
                let start = offset.max(data_acked);
                self.reinjection.push_back((start, end - start));
            }
        }
    }

    /// Gives upload data to subflows while any has room: reinjections first.
    fn schedule(&mut self) {
        let total = self.upload.len() as u64;
        if !self.confirmed {
            // Section 3.1: before the engine's DSS shows it has our key, only the first data
            // goes out, on subflow 0 with MP_CAPABLE (mapped to our IDSN + 1 at subflow
            // sequence 1).
            if self.scheduled == 0 && total > 0 {
                if let Some(initial) = self.subflows.first_mut() {
                    if initial.tcb.state() == TcpState::Established {
                        let len = (total as usize).min(initial.tcb.max_payload_per_segment());
                        let seq = initial.tcb.next_queued_relative_seq();
                        if initial.tcb.send(Buf(self.upload.slice(0..len))).is_ok() {
                            initial.sent.push_back((seq, 0, len as u32));
                            initial.bytes_queued += len as u64;
                            self.scheduled = len as u64;
                        }
                    }
                }
            }
            return;
        }
        loop {
            while let Some(&(offset, len)) = self.reinjection.front() {
                if offset + len <= self.data_acked {
                    self.reinjection.pop_front();
                } else {
                    break;
                }
            }
            let (offset, available, reinjection) = match self.reinjection.front() {
                Some(&(offset, len)) => {
                    let start = offset.max(self.data_acked);
                    (start, offset + len - start, true)
                }
                None if self.scheduled < total
                    && self.scheduled - self.data_acked < DATA_WINDOW =>
                {
                    (self.scheduled, total - self.scheduled, false)
                }
                None => return,
            };
            let Some(index) = self.pick_subflow() else {
                return;
            };
            let subflow = &mut self.subflows[index];
            let len = (available as usize)
                .min(subflow.tcb.send_room())
                .min(subflow.tcb.max_payload_per_segment());
            if len == 0 {
                return;
            }
            let seq = subflow.tcb.next_queued_relative_seq();
            let chunk = Buf(self.upload.slice(offset as usize..offset as usize + len));
            if subflow.tcb.send(chunk).is_err() {
                return;
            }
            subflow.sent.push_back((seq, offset, len as u32));
            subflow.bytes_queued += len as u64;
            if reinjection {
                self.reinjected_bytes += len as u64;
                let front = self.reinjection.front_mut().expect("a reinjection range");
                front.1 -= offset + len as u64 - front.0;
                front.0 = offset + len as u64;
                if front.1 == 0 {
                    self.reinjection.pop_front();
                }
            } else {
                self.scheduled += len as u64;
            }
        }
    }

    /// Section 3.3.8 as Linux does it for its own sending: backup subflows only when no
    /// regular one can carry data.
    fn pick_subflow(&mut self) -> Option<usize> {
        let confirmed = self.confirmed;
        let usable: Vec<usize> = (0..self.subflows.len())
            .filter(|&i| self.subflows[i].carries_data(confirmed))
            .collect();
        let any_regular = usable.iter().any(|&i| !self.subflows[i].backup);
        let with_room: Vec<usize> = usable
            .into_iter()
            .filter(|&i| !(any_regular && self.subflows[i].backup))
            .filter(|&i| self.subflows[i].tcb.send_room() > 0)
            .collect();
        match self.scheduler {
            ClientScheduler::RoundRobin => {
                let choice = with_room
                    .iter()
                    .copied()
                    .find(|&i| i >= self.round_robin)
                    .or_else(|| with_room.first().copied())?;
                self.round_robin = choice + 1;
                Some(choice)
            }
            ClientScheduler::LowestRtt => with_room.into_iter().min_by_key(|&i| {
                let rtt = self.subflows[i].tcb.smoothed_rtt();
                (rtt.unwrap_or(Duration::from_millis(100)), i)
            }),
        }
    }

    /// Once the upload is DATA_ACKed, the DATA_FIN (section 3.3.3) rides on a DSS of a live
    /// subflow, sent again until DATA_ACKed.
    fn send_data_fin(&mut self, now: Instant) {
        if !self.upload_acknowledged() || self.data_fin_acked {
            return;
        }
        let due = self
            .data_fin_last_sent
            .is_none_or(|at| now - at >= CLIENT_RETRY);
        if !due {
            return;
        }
        // On every subflow that carries data: one whose path died without our knowing (it
        // had nothing outstanding) must not hold up the end of the stream.
        let confirmed = self.confirmed;
        for subflow in &mut self.subflows {
            if subflow.carries_data(confirmed) {
                self.data_fin_sent = true;
                self.data_fin_last_sent = Some(now);
                subflow.tcb.request_ack();
            }
        }
    }

    /// Our MPTCP options on a segment about to leave on subflow `index`.
    pub fn decorate(&mut self, index: usize, now: Instant, segment: &mut OutgoingSegment<Buf>) {
        let flags = segment.repr.flags;
        let data_ack = self.data_ack();
        let data_fin = self.upload.len() as u64;
        let data_fin_seq = self.data_seq(data_fin);
        let carries_data_fin = self.data_fin_sent && !self.data_fin_acked;
        let (key, remote_key, confirmed, idsn) =
            (self.key, self.remote_key, self.confirmed, self.idsn);
        let subflow = &mut self.subflows[index];
        let options = &mut segment.repr.options;
        if flags.contains(TcpFlags::SYN) {
            options.mptcp[0] = Some(match subflow.phase {
                JoinPhase::SynSent { nonce } => MptcpOption::MpJoin(MpJoin::Syn {
                    backup: subflow.backup,
                    address_id: subflow.path as u8,
                    receiver_token: derive_from_key(remote_key.expect("joins follow the key"))
                        .token,
                    sender_nonce: nonce,
                }),
                _ => MptcpOption::MpCapable(MpCapable {
                    version: 1,
                    checksum_required: true,
                    extensibility: false,
                    no_new_subflows_to_source: false,
                    hmac_sha256: true,
                    sender_key: None,
                    receiver_key: None,
                    data_level_length: None,
                    checksum: None,
                }),
            });
            return;
        }
        if flags.contains(TcpFlags::RST) {
            return;
        }
        let Some(remote_key) = remote_key else {
            return;
        };
        if let JoinPhase::ThirdAckSent { hmac, .. } = subflow.phase {
            // Section 3.2: MP_JOIN with our full HMAC, on every segment until the fourth ACK.
            options.mptcp[0] = Some(MptcpOption::MpJoin(MpJoin::Ack { hmac }));
            subflow.phase = JoinPhase::ThirdAckSent {
                hmac,
                last_sent: now,
            };
            return;
        }
        let payload = segment.payload.as_ref().map(|p| p.0.clone());
        let at_first_sequence = segment.repr.seq == subflow.tcb.iss() + 1;
        if subflow.phase == JoinPhase::Initial && !confirmed && at_first_sequence {
            // Section 3.1: the third ACK and the first data carry both keys; the data, its
            // data-level length and checksum (mapped to IDSN + 1 at subflow sequence 1).
            let (data_level_length, checksum) = match &payload {
                Some(payload) => {
                    let length = payload.len() as u16;
                    let mut sum = dss_pseudo_header(idsn.wrapping_add(1), 1, length, 0);
                    sum.add_bytes(payload);
                    (Some(length), Some(sum.finish()))
                }
                None => (None, None),
            };
            options.mptcp[0] = Some(MptcpOption::MpCapable(MpCapable {
                version: 1,
                checksum_required: true,
                extensibility: false,
                no_new_subflows_to_source: false,
                hmac_sha256: true,
                sender_key: Some(key),
                receiver_key: Some(remote_key),
                data_level_length,
                checksum,
            }));
            return;
        }
        let mapping = payload.as_ref().map(|payload| {
            // Every byte queued on a subflow was recorded with its data offset, and the TCB
            // sends only bytes not yet acknowledged.
            let offset = lookup_offset(&subflow.sent, segment.relative_seq)
                .expect("every queued byte has a mapping");
            let data_seq = idsn.wrapping_add(1).wrapping_add(offset);
            let length = payload.len() as u16;
            let mut sum = dss_pseudo_header(data_seq, segment.relative_seq, length, 0);
            sum.add_bytes(payload);
            DssMapping {
                data_seq: DataSeqWire::Bits64(data_seq),
                subflow_seq: segment.relative_seq,
                data_level_length: length,
                checksum: Some(sum.finish()),
            }
        });
        let (mapping, data_fin) = match mapping {
            Some(mapping) => (Some(mapping), false),
            None if carries_data_fin => (
                // Section 3.3.3: a DATA_FIN without data maps subflow sequence 0, length 1.
                Some(DssMapping {
                    data_seq: DataSeqWire::Bits64(data_fin_seq),
                    subflow_seq: 0,
                    data_level_length: 1,
                    checksum: Some(dss_pseudo_header(data_fin_seq, 0, 1, 0).finish()),
                }),
                true,
            ),
            None => (None, false),
        };
        options.mptcp[0] = Some(MptcpOption::Dss(Dss {
            data_ack: Some(DataSeqWire::Bits64(data_ack)),
            mapping,
            data_fin,
        }));
        trim_sack_to_fit(options);
    }

    /// A segment from the engine on subflow `index`: its options are read, then the TCB takes
    /// it, with the DSS mapping kept beside the payload.
    pub fn handle_segment(
        &mut self,
        now: Instant,
        index: usize,
        repr: &TcpRepr<'_>,
        payload: Option<Buf>,
    ) {
        let flags = repr.flags;
        if let Some(payload) = payload.as_ref() {
            self.data_segments += 1;
            self.runt_segments += u64::from(payload.0.len() < RUNT_BYTES);
        }
        let options: Vec<MptcpOption<'_>> = repr.options.mptcp.iter().flatten().copied().collect();
        if flags.contains(TcpFlags::RST) {
            let reason = options.iter().find_map(|option| match option {
                MptcpOption::MpTcpRst(reset) => Some(*reset),
                _ => None,
            });
            self.subflows[index].resets.push(reason);
            // A join reset before its fourth ACK failed; a RST later ends a working subflow.
            if matches!(
                self.subflows[index].phase,
                JoinPhase::SynSent { .. } | JoinPhase::ThirdAckSent { .. }
            ) {
                self.subflows[index].phase = JoinPhase::Failed;
            }
            self.subflows[index].tcb.handle_segment(now, repr, payload);
            return;
        }
        if flags.contains(TcpFlags::SYN) {
            self.handle_syn_ack(now, index, repr, &options, payload);
            return;
        }
        // The engine's TIME-WAIT table answers a retransmitted FIN with a plain ACK, as
        // Linux's time-wait sockets do; anything else carries an MPTCP option.
        let closing = matches!(
            self.subflows[index].tcb.state(),
            TcpState::Closing | TcpState::LastAck | TcpState::TimeWait
        );
        let plain_ack = flags == TcpFlags::ACK && payload.is_none();
        if options.is_empty() && !(closing && plain_ack) {
            self.option_less_segments += 1;
        }
        let mut mapping = None;
        let mut dss_seen = None;
        for option in &options {
            if let MptcpOption::Dss(dss) = option {
                dss_seen = Some(*dss);
                if let Some(dss_mapping) = dss.mapping {
                    mapping = self.receive_mapping(&dss_mapping, dss.data_fin, payload.as_ref());
                }
            }
        }
        let mut accepted = false;
        self.subflows[index]
            .tcb
            .handle_segment_with(now, repr, payload, |_, _| {
                accepted = true;
                OwnerVerdict {
                    mapping,
                    withhold: false,
                }
            });
        if !accepted {
            return;
        }
        if let Some(dss) = dss_seen {
            if let JoinPhase::ThirdAckSent { .. } = self.subflows[index].phase {
                // The fourth ACK (section 3.2): the engine has our third ACK.
                self.subflows[index].phase = JoinPhase::Established;
            }
            if let Some(ack) = dss.data_ack {
                if self.subflows[index].phase == JoinPhase::Initial {
                    self.confirmed = true;
                }
                self.handle_data_ack(ack);
            }
        }
        let subflow = &mut self.subflows[index];
        let acked = subflow.tcb.unacknowledged_relative_seq();
        while let Some(&(seq, _, len)) = subflow.sent.front() {
            if acked.wrapping_sub(seq.wrapping_add(len)) as i32 >= 0 {
                subflow.sent.pop_front();
            } else {
                break;
            }
        }
    }

    fn handle_syn_ack(
        &mut self,
        now: Instant,
        index: usize,
        repr: &TcpRepr<'_>,
        options: &[MptcpOption<'_>],
        payload: Option<Buf>,
    ) {
        let phase = self.subflows[index].phase;
        match phase {
            JoinPhase::Initial => {
                for option in options {
                    if let MptcpOption::MpCapable(capable) = option {
                        assert_eq!(capable.version, 1);
                        assert!(capable.checksum_required, "checksums were asked for");
                        let key = capable.sender_key.expect("the SYN-ACK carries the key");
                        self.remote_key = Some(key);
                        self.remote_idsn = derive_from_key(key).initial_data_seq;
                    }
                }
                self.subflows[index].tcb.handle_segment(now, repr, payload);
            }
            JoinPhase::SynSent { nonce } => {
                let Some(MptcpOption::MpJoin(MpJoin::SynAck {
                    address_id,
                    truncated_hmac,
                    sender_nonce,
                    ..
                })) = options
                    .iter()
                    .find(|option| matches!(option, MptcpOption::MpJoin(MpJoin::SynAck { .. })))
                    .copied()
                else {
                    // Linux resets a join whose SYN-ACK lacks MP_JOIN.
                    self.subflows[index].phase = JoinPhase::Failed;
                    self.subflows[index].tcb.abort();
                    return;
                };
                let remote_key = self.remote_key.expect("joins follow the key");
                // Section 3.2: the responder's HMAC is keyed Key-B + Key-A over R-B + R-A.
                let expected = join_hmac(remote_key, self.key, sender_nonce, nonce);
                let mut leftmost = [0u8; 8];
                leftmost.copy_from_slice(&expected[..8]);
                let subflow = &mut self.subflows[index];
                subflow.engine_address_id = Some(address_id);
                if u64::from_be_bytes(leftmost) != truncated_hmac {
                    self.syn_ack_hmac_failures += 1;
                    subflow.phase = JoinPhase::Failed;
                    subflow.tcb.abort();
                    return;
                }
                subflow.syn_ack_hmac_verified = true;
                // The third ACK's HMAC is keyed Key-A + Key-B over R-A + R-B.
                let full = join_hmac(self.key, remote_key, nonce, sender_nonce);
                let mut hmac = [0u8; 20];
                hmac.copy_from_slice(&full[..20]);
                if subflow.corrupt_third_ack {
                    hmac[0] ^= 0x80;
                }
                subflow.phase = JoinPhase::ThirdAckSent {
                    hmac,
                    last_sent: now,
                };
                subflow.tcb.handle_segment(now, repr, payload);
            }
            _ => self.subflows[index].tcb.handle_segment(now, repr, payload),
        }
    }

    /// Section 3.3.1: a mapping from the engine covers exactly the payload of its segment and
    /// its checksum verifies; a DATA_FIN mapping (section 3.3.3) records the end of stream.
    fn receive_mapping(
        &mut self,
        mapping: &DssMapping,
        data_fin: bool,
        payload: Option<&Buf>,
    ) -> Option<ReceivedMapping> {
        let DataSeqWire::Bits64(data_seq) = mapping.data_seq else {
            panic!("the engine sends 64-bit data sequence numbers: {mapping:?}");
        };
        let checksum = mapping.checksum.expect("checksums are in use");
        let payload_len = payload.map_or(0, |p| p.0.len());
        if data_fin {
            let fin_data_seq = data_seq
                .wrapping_add(u64::from(mapping.data_level_length))
                .wrapping_sub(1);
            self.remote_data_fin = Some(self.remote_offset(fin_data_seq));
        }
        if payload_len == 0 {
            if data_fin && mapping.subflow_seq == 0 {
                let sum = dss_pseudo_header(data_seq, 0, 1, checksum);
                assert_eq!(sum.finish(), 0, "the engine's DATA_FIN checksum verifies");
            }
            return None;
        }
        let mapped_data = usize::from(mapping.data_level_length) - usize::from(data_fin);
        assert_eq!(
            mapped_data, payload_len,
            "the engine maps each segment's own payload"
        );
        let mut sum = dss_pseudo_header(
            data_seq,
            mapping.subflow_seq,
            mapping.data_level_length,
            checksum,
        );
        sum.add_bytes(&payload.expect("payload").0);
        assert_eq!(sum.finish(), 0, "the engine's DSS checksum verifies");
        self.verified_mappings += 1;
        Some(ReceivedMapping {
            data_seq,
            subflow_seq: mapping.subflow_seq,
            data_level_length: mapping.data_level_length,
            checksum: mapping.checksum,
            data_fin,
        })
    }

    /// Section 3.3.2: the DATA_ACK is cumulative.
    fn handle_data_ack(&mut self, wire: DataSeqWire) {
        let DataSeqWire::Bits64(ack) = wire else {
            panic!("the engine sends 64-bit DATA_ACKs");
        };
        let acked = ack.wrapping_sub(self.idsn.wrapping_add(1));
        let total = self.upload.len() as u64;
        let sent_end = if self.data_fin_sent {
            total + 1
        } else {
            self.scheduled
        };
        if acked > sent_end {
            self.data_acks_beyond_sent += 1;
            return;
        }
        if acked > total {
            self.data_fin_acked = true;
        }
        self.data_acked = self.data_acked.max(acked.min(total));
    }

    /// Takes in-order payload from every subflow into the data level, by the mappings.
    pub fn read(&mut self) {
        for index in 0..self.subflows.len() {
            while let Some(chunk) = self.subflows[index].tcb.recv() {
                let mapping = chunk.mapping.expect("the engine's data carries a mapping");
                let data_seq = mapping.data_seq.wrapping_add(u64::from(
                    chunk.subflow_seq.wrapping_sub(mapping.subflow_seq),
                ));
                let offset = self.remote_offset(data_seq);
                self.subflows[index].bytes_delivered += chunk.payload.0.len() as u64;
                self.deliver(offset, chunk.payload.0);
            }
        }
        if let Some(fin) = self.remote_data_fin {
            if !self.remote_data_fin_reached && fin == self.next_expected {
                self.remote_data_fin_reached = true;
                for subflow in &mut self.subflows {
                    subflow.tcb.request_ack();
                }
            }
        }
    }

    /// Data-level reassembly: data before the next expected byte must repeat what arrived.
    fn deliver(&mut self, offset: u64, data: Bytes) {
        let end = offset + data.len() as u64;
        let overlap_end = end.min(self.next_expected);
        if offset < overlap_end {
            let repeated = &data[..(overlap_end - offset) as usize];
            assert_eq!(
                repeated,
                &self.received[offset as usize..overlap_end as usize],
                "data received twice (a reinjection) is the same data"
            );
            self.duplicate_bytes += repeated.len() as u64;
        }
        if end <= self.next_expected {
            return;
        }
        let keep = match self.ahead.get(&offset) {
            Some(held) => held.len() < data.len(),
            None => true,
        };
        if keep {
            self.ahead.insert(offset, data);
        }
        while let Some((&start, _)) = self.ahead.first_key_value() {
            if start > self.next_expected {
                break;
            }
            let (start, held) = self.ahead.pop_first().expect("an entry");
            let held_end = start + held.len() as u64;
            if held_end > self.next_expected {
                let from = (self.next_expected - start) as usize;
                self.received.extend_from_slice(&held[from..]);
                self.next_expected = held_end;
            }
        }
    }
}

/// The data offset of the byte at `subflow_seq`, from a subflow's record of what it carries.
fn lookup_offset(sent: &VecDeque<(u32, u64, u32)>, subflow_seq: u32) -> Option<u64> {
    sent.iter().rev().find_map(|&(seq, offset, len)| {
        let into = subflow_seq.wrapping_sub(seq);
        (into < len).then(|| offset + u64::from(into))
    })
}

/// A pure ACK may carry SACK blocks up to the full option space: keep as many as fit next to
/// the DSS.
fn trim_sack_to_fit(options: &mut TcpOptions<'static>) {
    while options.encoded_len() > mpterm_wire::tcp::MAX_OPTIONS_LEN {
        let blocks = options.sack_blocks;
        assert!(!blocks.is_empty(), "options do not fit: {options:?}");
        let mut fewer = SackBlocks::default();
        for &(left, right) in &blocks.as_slice()[..blocks.len() - 1] {
            fewer.push(left, right);
        }
        options.sack_blocks = fewer;
    }
}

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
