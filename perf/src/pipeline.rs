//! The pipeline benchmark: one mpterm worker's whole data path, driven at full speed without a
//! kernel, a NIC or a second process in the way.
//!
//! ```text
//!  ClientEngine (MPTCP client role)        mpterm Worker<Memory>               BackendPeer
//!  handshake, DSS mappings with  <=link=>  rx, parse, engine, DSS checksum, <=link=> sink and
//!  checksums, DATA_ACKs                    relay, frame building, tx                source
//! ```
//!
//! Everything runs on one thread, in turns: the client's turn, the links carry, the worker's
//! turn, the links carry, the backend's turn. The worker is the real appliance loop
//! ([`mpterm_worker::Worker::poll_once`]) over the in-memory packet I/O; the links do what a
//! NIC's DMA does (copy each frame into a receive buffer of the other side) outside everyone's
//! turn. The figure is **per worker core**: payload bytes delivered divided by the TSC time
//! spent inside the worker's turns, which the worker itself counts by stage
//! ([`mpterm_worker::StageCycles`]). The peers' and the links' cycles are counted too and
//! reported, so that a reader can check the peers cost less than the worker they feed.
//!
//! The window measured is the steady state: from the moment every connection is established
//! to the moment every byte has been delivered (and verified against the seeded
//! [`Pattern`]). The connections are then closed, and a run that did not end cleanly (a
//! mismatch, a reset, a checksum failure, a connection left open) is an error, not a figure.
//!
//! Parse and checksum happen inside the engine's turn; the worker cannot time them apart
//! without putting a clock into the sans-IO engine. They are measured by replay instead: a
//! sample of the frames the worker received in the window is kept (copied outside the worker's
//! turn), and after the run the same wire-crate calls the engine makes (header parsing, the TCP
//! checksum, the DSS checksum) are timed over them; that share is taken out of the engine's and
//! the transmit stage's cycles. See [`ReplaySplit`].

use core::cell::Cell;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use std::rc::Rc;
use std::sync::Arc;

use mpterm_control::{StatsRegistry, TokenTable};
use mpterm_dpdk::TscClock;
use mpterm_engine::client::{ClientConfig, ClientEngine, ClientEvent, ConnectionId};
use mpterm_engine::{
    Engine, EngineConfig, Instant, InterfaceConfig, Payload, ProxyRule, TcpTuning, TokenRegistry,
};
use mpterm_wire::checksum::{dss_pseudo_header, Checksum};
use mpterm_wire::ethernet::{EthernetAddress, EthernetFrame};
use mpterm_wire::ipv4::{Ipv4Packet, Ipv4Repr};
use mpterm_wire::tcp::{TcpRepr, TcpSegment};
use mpterm_worker::io::memory::{
    BufferPool, Memory, MemoryEnd, MemoryFrame, MemoryFrames, MemoryLink, MemoryRx, MemoryTx,
    PoolBuffer,
};
use mpterm_worker::{
    BurstRx, FrameBuilder, SharedTokens, StageCycles, Transmitter, Worker, WorkerPort,
};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use crate::backend_peer::{BackendPeer, BackendPeerConfig, BackendPeerCounters};
use crate::pattern::{Pattern, MAX_CHUNK_LEN};
use crate::report::Direction;

const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x0c, 0x01];
const WORKER_CLIENT_SIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xa0, 0x01];
const WORKER_BACKEND_SIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xa0, 0x02];
const BACKEND_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x5e, 0x01];
const CLIENT_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const WORKER_CLIENT_SIDE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const WORKER_BACKEND_SIDE: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
const BACKEND_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
const LISTEN_PORT: u16 = 5000;
const BACKEND_PORT: u16 = 6000;
/// Descriptors per ring of each link, each way.
const RING_SIZE: usize = 1024;
/// Frames kept for the parse and checksum replay.
const REPLAY_SAMPLE: usize = 4096;
/// Connections the client application serves per turn, round robin.
const APP_CONNECTIONS_PER_TURN: usize = 256;
/// A run that makes no progress for this long (wall time) is stuck: an error.
const STALL_LIMIT: Duration = Duration::from_secs(5);

/// One configuration of the transfer benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineConfig {
    pub direction: Direction,
    /// DSS checksums on (both the client and mpterm ask for them).
    pub checksums: bool,
    /// Of every link (the client's, mpterm's two interfaces, the backend's).
    pub mtu: u16,
    pub connections: u32,
    /// Payload each connection moves.
    pub bytes_per_connection: u64,
    /// Each side's send and receive buffer, per connection, in mpterm and in the client.
    pub buffer_bytes: usize,
    pub seed: u64,
}

impl PipelineConfig {
    /// The defaults for `connections`: 256 MiB moved in all (at least 64 KiB per connection),
    /// buffers of 256 KiB (32 KiB above 1,000 connections, so that 10,000 fit in memory).
    pub fn new(direction: Direction, checksums: bool, mtu: u16, connections: u32) -> Self {
        let connections = connections.max(1);
        let bytes_per_connection = ((256u64 << 20) / u64::from(connections)).max(64 << 10);
        PipelineConfig {
            direction,
            checksums,
            mtu,
            connections,
            bytes_per_connection,
            buffer_bytes: if connections > 1000 {
                32 << 10
            } else {
                256 << 10
            },
            seed: 1,
        }
    }
}

/// Why a run produced no figure.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("the client engine's configuration was refused: {0}")]
    ClientConfig(String),
    #[error("the client could not open connection {index}: {reason}")]
    Connect { index: u32, reason: String },
    #[error("no progress for {STALL_LIMIT:?} during {phase}: {detail}")]
    Stalled { phase: &'static str, detail: String },
    #[error("a connection ended early during {phase}: {detail}")]
    EndedEarly { phase: &'static str, detail: String },
    #[error("data did not verify: {0}")]
    Corrupted(String),
}

/// What the parse and checksum replay measured, in TSC cycles per frame of the sample.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReplaySplit {
    /// Frames replayed.
    pub frames: usize,
    /// Ethernet, IPv4 and TCP headers with options, as the engine parses them.
    pub parse: f64,
    /// Checksums the engine verifies on receipt: one pass over the payload, which serves the
    /// TCP checksum and, when checksums are on, the DSS checksum of data segments.
    pub rx_checksum: f64,
    /// Checksums the engine computes for what it relays, from the payload's cached sum: the
    /// TCP checksum of each data segment sent (its header), and its DSS checksum when it goes
    /// to the client with checksums on.
    pub tx_checksum: f64,
}

/// The figures of one transfer run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransferOutcome {
    pub config: PipelineConfig,
    /// Payload delivered (and verified) inside the window.
    pub bytes: u64,
    /// The worker's cycles inside the window, by stage.
    pub worker: StageCycles,
    pub tsc_hz: u64,
    /// The peers' and links' cycles inside the window.
    pub client_cycles: u64,
    pub backend_cycles: u64,
    pub link_cycles: u64,
    /// Wall time of the window.
    pub wall: Duration,
    pub replay: ReplaySplit,
    /// Data segments that reached the worker in the window (the rest of its frames are ACKs).
    pub data_frames: u64,
    /// Heap allocations inside the worker's turns in the second half of the window (steady
    /// state: every queue has reached its working size), when a probe was given.
    pub worker_allocations: Option<u64>,
    /// Frames the worker received in that second half.
    pub frames_counted_for_allocations: u64,
    /// Calls into the shared token table (its lock) over the whole run, close included.
    pub token_table_calls: u64,
    pub backend: BackendPeerCounters,
}

impl TransferOutcome {
    /// Worker seconds inside the window.
    pub fn worker_seconds(&self) -> f64 {
        self.worker.total() as f64 / self.tsc_hz as f64
    }

    /// Payload Gbit/s per worker core.
    pub fn goodput_gbps(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.worker_seconds() / 1e9
    }

    /// Frames the worker received in the window.
    pub fn packets(&self) -> u64 {
        self.worker.rx_frames
    }

    /// Frames received per worker second.
    pub fn packets_per_second(&self) -> f64 {
        self.packets() as f64 / self.worker_seconds()
    }

    /// Cycles per received frame by stage, parse and checksum taken out of the engine and tx
    /// stages by the replay. The replay times data segments; their share of the frames
    /// received scales it (ACKs' own parsing stays in `engine`).
    pub fn cycles_per_packet(&self) -> crate::report::StageCycles {
        let packets = self.packets().max(1) as f64;
        let per = |cycles: u64| cycles as f64 / packets;
        let data_share = (self.data_frames as f64 / packets).min(1.0);
        let parse = self.replay.parse * data_share;
        let rx_checksum = self.replay.rx_checksum * data_share;
        let tx_checksum = self.replay.tx_checksum * data_share;
        let engine = per(self.worker.engine + self.worker.timers) - parse - rx_checksum;
        let tx = per(self.worker.tx) - tx_checksum;
        crate::report::StageCycles {
            rx: per(self.worker.rx),
            parse,
            engine: engine.max(0.0),
            checksum: rx_checksum + tx_checksum,
            tx: tx.max(0.0),
            total: per(self.worker.total()),
        }
    }
}

/// An optional counter read around each worker turn (the hot-path test's counting allocator).
pub type AllocationProbe = fn() -> u64;

/// The application's view of one client connection.
#[derive(Debug, Clone, Copy, Default)]
struct AppConnection {
    id: Option<ConnectionId>,
    established: bool,
    /// The pattern stream it sends (upload) or was found to receive (download).
    stream: Option<u64>,
    sent: u64,
    received: u64,
    /// Download bytes held back until the stream is identified (fewer than 8 arrived).
    closed: bool,
}

/// The shared token table (the one lock the engine takes), with its calls counted: the
/// hot-path test checks it is taken per connection, never per packet.
#[derive(Debug)]
pub struct CountedTokens {
    inner: SharedTokens,
    calls: Rc<Cell<u64>>,
}

impl TokenRegistry for CountedTokens {
    fn try_register(&mut self, token: u32, connection_id: u64) -> bool {
        self.calls.set(self.calls.get() + 1);
        self.inner.try_register(token, connection_id)
    }

    fn release(&mut self, token: u32) {
        self.calls.set(self.calls.get() + 1);
        self.inner.release(token);
    }
}

type PipelineWorker = Worker<Memory, ChaCha8Rng, CountedTokens>;

/// The three parties and the two links.
struct Pipeline {
    clock: TscClock,
    worker: PipelineWorker,
    client: ClientEngine<PoolBuffer, ChaCha8Rng>,
    client_rx: MemoryRx,
    client_tx: Transmitter<MemoryTx>,
    client_frames: MemoryFrames,
    client_link: MemoryLink,
    backend: BackendPeer,
    backend_rx: MemoryRx,
    backend_tx: Transmitter<MemoryTx>,
    backend_pool: BufferPool,
    backend_link: MemoryLink,
    pattern: Pattern,
    /// The pattern's bytes in a pool buffer, which the client slices for what it sends.
    pattern_buffer: PoolBuffer,
    connections: Vec<AppConnection>,
    /// The connection the application serves first in the next turn.
    next_app_connection: usize,
    /// By client slot index: which entry of `connections` it is.
    by_slot: Vec<u32>,
    download_bytes: u64,
    /// Frames kept for the replay while `recording`.
    sample: Sample,
    recording: bool,
    /// Data segments sent to the worker while `recording` (the replay's frames are a sample
    /// of these).
    data_frames_in_window: u64,
    cycles: PartyCycles,
    allocation_probe: Option<AllocationProbe>,
    /// Whether allocations in the worker's turns are being counted (the second half of the
    /// transfer, once every queue has grown to its working size).
    counting_allocations: bool,
    worker_allocations: u64,
    token_calls: Rc<Cell<u64>>,
    ended_early: Option<String>,
    corrupted: Option<String>,
}

#[derive(Debug, Clone, Copy, Default)]
struct PartyCycles {
    client: u64,
    backend: u64,
    link: u64,
}

fn interface(mac: [u8; 6], address: Ipv4Addr, mtu: u16) -> InterfaceConfig {
    InterfaceConfig {
        mac,
        address,
        prefix_len: 24,
        gateway: None,
        mtu,
        ipv6: None,
    }
}

/// Pool sizes: every buffer a side may hold at once, with room to spare.
fn frames_for(bytes: usize, mss: usize, connections: u32) -> usize {
    let per_connection = bytes.div_ceil(mss.max(1)) + 16;
    (per_connection * connections as usize + 4 * RING_SIZE).min(4 << 20)
}

impl Pipeline {
    fn new(
        config: &PipelineConfig,
        download_bytes: u64,
        time_wait: Duration,
        allocation_probe: Option<AllocationProbe>,
    ) -> Result<Pipeline, PipelineError> {
        let clock = TscClock::calibrated(Duration::from_millis(100));
        let mtu = config.mtu;
        let mss = usize::from(mtu) - 40;
        let buffer_size = usize::from(mtu) + 64;
        let connections = config.connections;
        let slots = connections as usize + 16;
        let tuning = TcpTuning {
            receive_buffer: config.buffer_bytes as u32,
            send_buffer: config.buffer_bytes as u32,
            time_wait,
            ..TcpTuning::default()
        };
        let engine_config = EngineConfig {
            interfaces: vec![
                interface(WORKER_CLIENT_SIDE_MAC, WORKER_CLIENT_SIDE, mtu),
                interface(WORKER_BACKEND_SIDE_MAC, WORKER_BACKEND_SIDE, mtu),
            ],
            proxies: vec![ProxyRule {
                listen: SocketAddrV4::new(WORKER_CLIENT_SIDE, LISTEN_PORT).into(),
                backend: SocketAddrV4::new(BACKEND_ADDRESS, BACKEND_PORT),
                scheduler: mpterm_engine::scheduler::SchedulerKind::default(),
            }],
            client_tcp: tuning,
            backend_tcp: tuning,
            mptcp_checksum_required: config.checksums,
            max_connections: slots,
            max_time_wait: 2 * slots + 65_536,
            mptcp_max_subflows: 8,
            mptcp_allow_join_initial_address: true,
            time_wait_reuse: true,
            local_ports: 1024..=65535,
        };
        let token_calls = Rc::new(Cell::new(0));
        let engine = Engine::new(
            engine_config,
            ChaCha8Rng::seed_from_u64(config.seed),
            CountedTokens {
                inner: SharedTokens::new(Arc::new(TokenTable::new()), 0),
                calls: Rc::clone(&token_calls),
            },
        );

        // Buffers: the worker holds received payload until the other side has it acknowledged.
        let worker_pool = BufferPool::new(
            2 * frames_for(2 * config.buffer_bytes, mss, connections),
            buffer_size,
        );
        let worker_tx_pool = BufferPool::new(8 * RING_SIZE + 4 * MAX_CHUNK_LEN, buffer_size);
        let client_pool = BufferPool::new(
            frames_for(config.buffer_bytes, mss, connections),
            buffer_size,
        );
        let client_tx_pool = BufferPool::new(8 * RING_SIZE, buffer_size);
        let backend_rx_pool = BufferPool::new(4 * RING_SIZE, buffer_size);
        let backend_pool = BufferPool::new(8 * RING_SIZE, buffer_size);
        let (client_link, client_end, worker_client_end) =
            MemoryLink::new(RING_SIZE, client_pool, worker_pool.clone());
        let (backend_link, worker_backend_end, backend_end) =
            MemoryLink::new(RING_SIZE, worker_pool, backend_rx_pool);
        let MemoryEnd {
            rx: client_rx,
            tx: client_tx,
        } = client_end;
        let MemoryEnd {
            rx: backend_rx,
            tx: backend_tx,
        } = backend_end;
        let registry = StatsRegistry::new(1);
        let worker = Worker::new(
            engine,
            vec![
                WorkerPort::<Memory>::new(worker_client_end.rx, worker_client_end.tx),
                WorkerPort::<Memory>::new(worker_backend_end.rx, worker_backend_end.tx),
            ],
            MemoryFrames::new(worker_tx_pool),
            clock,
            registry.worker(0).expect("a registry of one worker"),
        );

        let mut client_config = ClientConfig::new(
            interface(CLIENT_MAC, CLIENT_ADDRESS, mtu),
            SocketAddrV4::new(WORKER_CLIENT_SIDE, LISTEN_PORT),
        );
        client_config.dss_checksums = config.checksums;
        client_config.max_connections = slots;
        client_config.local_ports = 1024..=65535;
        client_config.tcp = tuning;
        let client = ClientEngine::new(client_config, ChaCha8Rng::seed_from_u64(config.seed + 1))
            .map_err(|error| PipelineError::ClientConfig(error.to_string()))?;

        let mut backend_config = BackendPeerConfig::new(
            EthernetAddress(BACKEND_MAC),
            SocketAddrV4::new(BACKEND_ADDRESS, BACKEND_PORT),
        );
        backend_config.mss = mss as u16;
        backend_config.max_connections = slots;
        backend_config.pattern_seed = config.seed;
        backend_config.download_bytes = download_bytes;
        backend_config.receive_window = (config.buffer_bytes as u32).max(65_535);
        let backend = BackendPeer::new(backend_config);

        let pattern = Pattern::new(config.seed);
        let pattern_pool = BufferPool::new(1, pattern.as_bytes().len());
        let pattern_buffer = pattern_pool
            .alloc_copy(pattern.as_bytes())
            .expect("the pattern pool holds the pattern");
        let sample = Sample::new(REPLAY_SAMPLE, buffer_size);
        Ok(Pipeline {
            clock,
            worker,
            client,
            client_rx,
            client_tx: Transmitter::new(vec![client_tx]),
            client_frames: MemoryFrames::new(client_tx_pool),
            client_link,
            backend,
            backend_rx,
            backend_tx: Transmitter::new(vec![backend_tx]),
            backend_pool,
            backend_link,
            pattern,
            pattern_buffer,
            connections: vec![AppConnection::default(); connections as usize],
            next_app_connection: 0,
            by_slot: vec![u32::MAX; slots],
            download_bytes,
            sample,
            recording: false,
            data_frames_in_window: 0,
            cycles: PartyCycles::default(),
            allocation_probe,
            counting_allocations: false,
            worker_allocations: 0,
            token_calls,
            ended_early: None,
            corrupted: None,
        })
    }

    fn now(&self) -> Instant {
        Instant::from_nanos(self.clock.elapsed().as_nanos() as u64)
    }

    fn connect(&mut self, index: u32) -> Result<(), PipelineError> {
        let now = self.now();
        let id = self
            .client
            .connect(now)
            .map_err(|error| PipelineError::Connect {
                index,
                reason: error.to_string(),
            })?;
        self.by_slot[id.index()] = index;
        self.connections[index as usize] = AppConnection {
            id: Some(id),
            stream: Some(u64::from(index)),
            ..AppConnection::default()
        };
        Ok(())
    }

    /// One turn of everyone; `upload` bytes per connection are sent by the client.
    fn turn(&mut self, upload: u64) {
        let started = TscClock::cycles();
        self.client_turn(upload);
        let client_done = TscClock::cycles();
        self.client_link.carry();
        self.backend_link.carry();
        let carried = TscClock::cycles();
        let probe = self.allocation_probe.filter(|_| self.counting_allocations);
        let before = probe.map(|probe| probe());
        self.worker.poll_once();
        if let (Some(probe), Some(before)) = (probe, before) {
            self.worker_allocations += probe() - before;
        }
        let worker_done = TscClock::cycles();
        self.client_link.carry();
        self.backend_link.carry();
        let carried_again = TscClock::cycles();
        self.backend_turn();
        let backend_done = TscClock::cycles();
        self.backend_link.carry();
        let done = TscClock::cycles();
        self.cycles.client += client_done - started;
        self.cycles.link +=
            (carried - client_done) + (carried_again - worker_done) + (done - backend_done);
        self.cycles.backend += backend_done - carried_again;
    }

    fn client_turn(&mut self, upload: u64) {
        let now = self.now();
        self.client_rx.rx_burst();
        let client = &mut self.client;
        self.client_rx
            .drain(|frame| client.handle_frame(now, 0, frame));
        while let Some(event) = self.client.poll_event() {
            self.handle_event(event);
        }
        // The application serves at most APP_CONNECTIONS_PER_TURN connections a turn, in
        // turn: with 10,000 connections, visiting every one every turn made the client cost
        // more than the worker it feeds. A connection's buffers hold several turns of data.
        let count = self.connections.len();
        let visits = count.min(APP_CONNECTIONS_PER_TURN);
        for _ in 0..visits {
            let index = self.next_app_connection;
            self.next_app_connection = (index + 1) % count;
            let connection = self.connections[index];
            let Some(id) = connection.id else { continue };
            if connection.closed {
                continue;
            }
            if connection.sent < upload {
                self.send_upload(index, id, upload);
            }
            if self.download_bytes > 0 {
                self.receive_download(index, id);
            }
        }
        if self
            .client
            .poll_timeout()
            .is_some_and(|deadline| deadline <= now)
        {
            self.client.handle_timeout(now);
        }
        while self.client_tx.ready(now) {
            let Some(transmit) = self.client.poll_transmit(now) else {
                break;
            };
            if self.recording && transmit.payload.is_some() {
                self.data_frames_in_window += 1;
                let header = transmit.header.as_slice();
                let payload = transmit.payload.as_ref().map_or(&[][..], |p| p.as_ref());
                self.sample.record(&[header, payload]);
            }
            if let Some(frame) = self
                .client_frames
                .build(transmit.header.as_slice(), transmit.payload.as_ref())
            {
                self.client_tx.queue(now, 0, frame);
            }
        }
        self.client_tx.flush(now);
    }

    fn send_upload(&mut self, index: usize, id: ConnectionId, upload: u64) {
        let stream = self.connections[index].stream.unwrap_or(index as u64);
        loop {
            let connection = &mut self.connections[index];
            let remaining = upload - connection.sent;
            let room = self.client.send_capacity(id) as u64;
            let len = remaining.min(room).min(MAX_CHUNK_LEN as u64) as usize;
            if len == 0 {
                return;
            }
            let at = self.pattern.position(stream, connection.sent);
            let payload = self.pattern_buffer.slice(at..at + len);
            if self.client.send(id, payload).is_err() {
                return;
            }
            connection.sent += len as u64;
        }
    }

    fn receive_download(&mut self, index: usize, id: ConnectionId) {
        while let Some(payload) = self.client.recv(id) {
            let connection = &mut self.connections[index];
            let bytes = payload.as_ref();
            if connection.received == 0 {
                connection.stream = self.pattern.identify(bytes);
            }
            let verified = connection
                .stream
                .is_some_and(|stream| self.pattern.verify(stream, connection.received, bytes));
            let offset = connection.received;
            let stream = connection.stream;
            connection.received += bytes.len() as u64;
            if !verified && self.corrupted.is_none() {
                self.corrupted = Some(format!(
                    "connection {index} (stream {stream:?}): {} bytes at offset {offset} differ from the pattern; {}",
                    bytes.len(),
                    self.describe_counters()
                ));
            }
        }
    }

    fn handle_event(&mut self, event: ClientEvent) {
        let (id, ended) = match event {
            ClientEvent::Established { id, .. } => (id, None),
            ClientEvent::FellBack { id } => (id, Some(format!("{id:?} fell back to TCP"))),
            ClientEvent::PeerFinished { id } => (id, None),
            ClientEvent::Closed { id, reason, .. } => (id, Some(format!("closed: {reason:?}"))),
            ClientEvent::Reset { id, reset, .. } => (id, Some(format!("reset: {reset:?}"))),
        };
        // A slot freed in this turn may already serve a newer connection (its event waits in
        // the queue while the slot is reused), so the handle decides, not the slot alone.
        let by_slot = self.by_slot.get(id.index()).map(|&index| index as usize);
        let index = match by_slot {
            Some(index)
                if self
                    .connections
                    .get(index)
                    .is_some_and(|c| c.id == Some(id)) =>
            {
                index
            }
            _ => match self.connections.iter().position(|c| c.id == Some(id)) {
                Some(index) => index,
                None => return,
            },
        };
        let connection = &mut self.connections[index];
        match event {
            ClientEvent::Established { .. } => connection.established = true,
            ClientEvent::Closed { .. } | ClientEvent::Reset { .. } => {
                connection.closed = true;
                connection.id = None;
                if let (ClientEvent::Reset { .. }, None) = (event, &self.ended_early) {
                    self.ended_early = ended;
                }
            }
            ClientEvent::FellBack { .. } => {
                if self.ended_early.is_none() {
                    self.ended_early = ended;
                }
            }
            ClientEvent::PeerFinished { .. } => {}
        }
    }

    fn backend_turn(&mut self) {
        let now = self.now();
        let now_ns = now.as_nanos();
        self.backend_rx.rx_burst();
        let backend = &mut self.backend;
        self.backend_rx.drain(|frame| {
            backend.handle_frame(now_ns, frame.as_ref());
        });
        while self.backend_tx.ready(now) {
            let backend = &mut self.backend;
            let Some(frame) = self
                .backend_pool
                .alloc_with(|buffer| backend.poll_frame(now_ns, buffer))
            else {
                break;
            };
            // Data segments (longer than an ACK) from the backend are what the worker parses
            // and verifies in a download.
            if self.recording && frame.as_ref().len() > 128 {
                self.data_frames_in_window += 1;
                self.sample.record(&[frame.as_ref()]);
            }
            self.backend_tx.queue(now, 0, MemoryFrame::new(frame, None));
        }
        self.backend_tx.flush(now);
    }

    /// Turns until `done` holds; an error when nothing moves for [`STALL_LIMIT`].
    fn run_until(
        &mut self,
        phase: &'static str,
        upload: u64,
        mut done: impl FnMut(&Pipeline) -> bool,
        mut progress: impl FnMut(&Pipeline) -> u64,
    ) -> Result<(), PipelineError> {
        let mut last_progress = progress(self);
        let mut last_change = std::time::Instant::now();
        let mut turns = 0u64;
        while !done(self) {
            self.turn(upload);
            if let Some(detail) = self.ended_early.take() {
                return Err(PipelineError::EndedEarly { phase, detail });
            }
            if let Some(detail) = self.corrupted.take() {
                return Err(PipelineError::Corrupted(detail));
            }
            turns += 1;
            if turns % 1024 == 0 {
                let now = progress(self);
                if now != last_progress {
                    last_progress = now;
                    last_change = std::time::Instant::now();
                } else if last_change.elapsed() > STALL_LIMIT {
                    return Err(PipelineError::Stalled {
                        phase,
                        detail: self.describe(),
                    });
                }
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        let established = self.connections.iter().filter(|c| c.established).count();
        let closed = self.connections.iter().filter(|c| c.closed).count();
        format!(
            "{established} established, {closed} closed of {}; worker {:?}; client {:?}; backend {:?}",
            self.connections.len(),
            self.worker.engine().counters(),
            self.client.counters(),
            self.backend.counters()
        )
    }

    fn describe_counters(&self) -> String {
        format!(
            "worker {:?}; client {:?}; backend {:?}",
            self.worker.engine().counters(),
            self.client.counters(),
            self.backend.counters()
        )
    }

    fn delivered(&self) -> u64 {
        if self.download_bytes > 0 {
            self.connections.iter().map(|c| c.received).sum()
        } else {
            self.backend.counters().bytes_verified
        }
    }
}

/// The frames kept for the replay: slots whose capacity is reserved up front, filled in
/// order until full, so recording a frame is one copy and never allocates.
#[derive(Debug)]
struct Sample {
    frames: Vec<Vec<u8>>,
    filled: usize,
}

impl Sample {
    fn new(frames: usize, frame_len: usize) -> Self {
        Sample {
            frames: (0..frames).map(|_| Vec::with_capacity(frame_len)).collect(),
            filled: 0,
        }
    }

    /// Copies the pieces of one frame into the next free slot, if any is left.
    fn record(&mut self, pieces: &[&[u8]]) {
        let Some(slot) = self.frames.get_mut(self.filled) else {
            return;
        };
        self.filled += 1;
        for piece in pieces {
            let room = slot.capacity() - slot.len();
            slot.extend_from_slice(&piece[..piece.len().min(room)]);
        }
    }

    fn recorded(&self) -> &[Vec<u8>] {
        &self.frames[..self.filled]
    }
}

/// Runs one transfer configuration: connect, measure the steady state, close cleanly.
pub fn run_transfer(
    config: PipelineConfig,
    allocation_probe: Option<AllocationProbe>,
) -> Result<TransferOutcome, PipelineError> {
    let (upload, download) = match config.direction {
        Direction::Download => (0, config.bytes_per_connection),
        _ => (config.bytes_per_connection, 0),
    };
    let mut pipeline = Pipeline::new(&config, download, Duration::from_secs(60), allocation_probe)?;
    for index in 0..config.connections {
        pipeline.connect(index)?;
    }
    // Handshakes (and the first data, which may not wait) before the window opens.
    pipeline.run_until(
        "the handshakes",
        upload,
        |p| p.connections.iter().all(|c| c.established),
        |p| p.connections.iter().filter(|c| c.established).count() as u64,
    )?;
    let total = u64::from(config.connections) * config.bytes_per_connection;
    let start_bytes = pipeline.delivered();
    let start_worker = pipeline.worker.stage_cycles();
    let start_parties = pipeline.cycles;
    pipeline.worker_allocations = 0;
    pipeline.recording = true;
    let wall = std::time::Instant::now();
    let half = start_bytes + (total - start_bytes) / 2;
    pipeline.run_until(
        "the first half of the transfer",
        upload,
        |p| p.delivered() >= half,
        Pipeline::delivered,
    )?;
    pipeline.counting_allocations = true;
    let counted_from = pipeline.worker.stage_cycles().rx_frames;
    pipeline.run_until(
        "the transfer",
        upload,
        |p| p.delivered() >= total,
        Pipeline::delivered,
    )?;
    pipeline.counting_allocations = false;
    let frames_counted_for_allocations = pipeline.worker.stage_cycles().rx_frames - counted_from;
    let wall = wall.elapsed();
    pipeline.recording = false;
    let end_worker = pipeline.worker.stage_cycles();
    let worker = end_worker.since(&start_worker);
    let parties = pipeline.cycles;
    let bytes = pipeline.delivered() - start_bytes;
    let worker_allocations = allocation_probe.map(|_| pipeline.worker_allocations);
    let backend = pipeline.backend.counters();
    if backend.mismatches > 0 {
        return Err(PipelineError::Corrupted(format!(
            "the backend saw {} segments differ from the pattern",
            backend.mismatches
        )));
    }
    close_all(&mut pipeline)?;
    let replay = replay(
        pipeline.sample.recorded(),
        config.checksums,
        config.direction,
    );
    Ok(TransferOutcome {
        config,
        bytes,
        worker,
        tsc_hz: pipeline.clock.hz(),
        client_cycles: parties.client - start_parties.client,
        backend_cycles: parties.backend - start_parties.backend,
        link_cycles: parties.link - start_parties.link,
        wall,
        replay,
        data_frames: pipeline.data_frames_in_window,
        worker_allocations,
        frames_counted_for_allocations,
        token_table_calls: pipeline.token_calls.get(),
        backend: pipeline.backend.counters(),
    })
}

/// Closes every connection and runs until each has ended, then checks nothing is left open
/// and no checksum failed.
fn close_all(pipeline: &mut Pipeline) -> Result<(), PipelineError> {
    for connection in &pipeline.connections {
        if let Some(id) = connection.id {
            let _ = pipeline.client.close(id);
        }
    }
    pipeline.run_until(
        "the close",
        0,
        |p| p.connections.iter().all(|c| c.closed) && p.worker.engine().connection_count() == 0,
        |p| p.connections.iter().filter(|c| c.closed).count() as u64,
    )?;
    let counters = pipeline.worker.engine().counters();
    if counters.dss_checksum_failures > 0 || counters.mptcp_fallbacks > 0 {
        return Err(PipelineError::Corrupted(format!(
            "mpterm counted {} DSS checksum failures and {} fallbacks",
            counters.dss_checksum_failures, counters.mptcp_fallbacks
        )));
    }
    Ok(())
}

/// Times, over the sampled frames, the wire-crate calls the engine makes for each: parsing
/// the headers, the one pass over the payload that verifies the TCP checksum and serves the
/// DSS checksum; and what it computes when relaying the payload (the TCP checksum from the
/// cached sum, plus the DSS checksum toward the client in a download). Cycles per sampled
/// frame, the median of five passes.
pub fn replay(sample: &[Vec<u8>], checksums: bool, direction: Direction) -> ReplaySplit {
    let frames: Vec<&[u8]> = sample
        .iter()
        .filter(|frame| !frame.is_empty())
        .map(Vec::as_slice)
        .collect();
    if frames.is_empty() {
        return ReplaySplit::default();
    }
    let per_frame = |cycles: u64| cycles as f64 / frames.len() as f64;
    let median = |mut runs: [f64; 5]| {
        runs.sort_by(f64::total_cmp);
        runs[2]
    };
    let mut parse = [0.0; 5];
    let mut rx_checksum = [0.0; 5];
    let mut tx_checksum = [0.0; 5];
    for pass in 0..5 {
        let started = TscClock::cycles();
        let mut parsed = 0usize;
        for frame in &frames {
            parsed += usize::from(parse_headers(frame).is_some());
        }
        let parsed_at = TscClock::cycles();
        let mut sums = 0u32;
        for frame in &frames {
            sums = sums.wrapping_add(u32::from(verify_checksums(frame, checksums)));
        }
        let verified_at = TscClock::cycles();
        for frame in &frames {
            sums = sums.wrapping_add(u32::from(relay_checksums(
                frame,
                checksums && direction == Direction::Download,
            )));
        }
        let relayed_at = TscClock::cycles();
        core::hint::black_box((parsed, sums));
        parse[pass] = per_frame(parsed_at - started);
        rx_checksum[pass] = per_frame(verified_at - parsed_at);
        tx_checksum[pass] = per_frame(relayed_at - verified_at);
    }
    ReplaySplit {
        frames: frames.len(),
        parse: median(parse),
        rx_checksum: median(rx_checksum),
        tx_checksum: median(tx_checksum),
    }
}

/// The frame's IPv4 header and TCP segment bounds, parsed as the engine parses them.
fn parse_headers(frame: &[u8]) -> Option<(Ipv4Repr, usize, usize)> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    let ip_bytes = ethernet.payload();
    let packet = Ipv4Packet::new_checked(ip_bytes).ok()?;
    let ip = Ipv4Repr::parse(&packet).ok()?;
    let start = mpterm_wire::ethernet::HEADER_LEN + packet.header_len();
    let end = mpterm_wire::ethernet::HEADER_LEN + usize::from(packet.total_len());
    let segment = TcpSegment::new_checked(frame.get(start..end)?).ok()?;
    let repr = TcpRepr::parse(&segment).ok()?;
    core::hint::black_box(&repr);
    Some((ip, start, end))
}

/// What the engine does on receipt: the payload summed once ([`Checksum::of`]), the TCP
/// checksum verified from the header and that sum, and the DSS checksum from the same sum.
fn verify_checksums(frame: &[u8], checksums: bool) -> bool {
    let Some((ip, start, end)) = parse_headers(frame) else {
        return false;
    };
    let Ok(segment) = TcpSegment::new_checked(&frame[start..end]) else {
        return false;
    };
    let payload = segment.payload();
    let payload_sum = Checksum::of(payload);
    let mut ok = segment.verify_checksum_v4_with_payload_sum(ip.src, ip.dst, payload_sum);
    if checksums && !payload.is_empty() {
        let mut sum = dss_pseudo_header(1, 1, payload.len() as u16, 0);
        sum.add_checksum(payload_sum);
        ok ^= core::hint::black_box(sum.finish()) == 0;
    }
    ok
}

/// What the engine does when it relays the frame's payload whole: the TCP checksum of the new
/// segment from its header and the payload's cached sum, and the DSS checksum from the same sum
/// when `dss`. (A payload split across segments is summed again; in the pipeline the sides'
/// MSS match, so that does not happen.)
fn relay_checksums(frame: &[u8], dss: bool) -> u16 {
    let Some((ip, start, end)) = parse_headers(frame) else {
        return 0;
    };
    let Ok(segment) = TcpSegment::new_checked(&frame[start..end]) else {
        return 0;
    };
    let payload = segment.payload();
    if payload.is_empty() {
        return 0;
    }
    let cached = core::hint::black_box(Checksum::new());
    let mut header = [0u8; 60];
    let header_len = segment.header_len().min(header.len());
    header[..header_len].copy_from_slice(&frame[start..start + header_len]);
    mpterm_wire::tcp::fill_checksum_v4_with_payload_sum(
        &mut header[..header_len],
        ip.src,
        ip.dst,
        payload.len(),
        cached,
    );
    let mut result = u16::from_be_bytes([header[16], header[17]]);
    if dss {
        let mut dss_sum = dss_pseudo_header(1, 1, payload.len() as u16, 0);
        dss_sum.add_checksum(cached);
        result ^= dss_sum.finish();
    }
    result
}

/// The connection-rate benchmark: connections opened, used and closed as fast as they go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateConfig {
    /// Connections in all. mpterm's backend side ends each in TIME-WAIT and a port is reused
    /// only after a second (RFC 6191), so this stays below mpterm's 64,512 local ports.
    pub connections: u32,
    /// Connections open at once.
    pub concurrency: u32,
    pub checksums: bool,
    /// The client's request, relayed to the backend.
    pub request_bytes: u64,
    /// The backend's answer, relayed to the client.
    pub answer_bytes: u64,
    pub seed: u64,
}

/// The figures of one connection-rate run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateOutcome {
    pub config: RateConfig,
    /// Connections completed (closed gracefully after request and answer) in the window.
    pub connections: u64,
    pub worker: StageCycles,
    pub tsc_hz: u64,
    pub wall: Duration,
}

impl RateOutcome {
    pub fn worker_seconds(&self) -> f64 {
        self.worker.total() as f64 / self.tsc_hz as f64
    }

    /// New MPTCP connections per worker second.
    pub fn connections_per_second(&self) -> f64 {
        self.connections as f64 / self.worker_seconds()
    }

    pub fn cycles_per_connection(&self) -> f64 {
        self.worker.total() as f64 / self.connections.max(1) as f64
    }
}

/// Each connection: the MPTCP handshake (key, token, IDSN), mpterm's backend connect, a request
/// relayed up and an answer relayed down, the client's close relayed, until `connections` have
/// completed. Measured from the first SYN to the last close.
pub fn run_connection_rate(config: RateConfig) -> Result<RateOutcome, PipelineError> {
    let concurrency = config.concurrency.clamp(1, config.connections.max(1));
    let transfer = PipelineConfig {
        direction: Direction::Upload,
        checksums: config.checksums,
        mtu: 1500,
        connections: concurrency,
        bytes_per_connection: config.request_bytes,
        buffer_bytes: 64 << 10,
        seed: config.seed,
    };
    let mut pipeline = Pipeline::new(
        &transfer,
        config.answer_bytes,
        Duration::from_secs(60),
        None,
    )?;
    // The slots `Pipeline` tracks are the `concurrency` connections open at once: the slot
    // table must outlast the connections that pass through it.
    pipeline.by_slot = vec![u32::MAX; config.connections as usize + concurrency as usize + 16];
    let mut opened = 0u32;
    let mut completed = 0u64;
    let mut closing = vec![false; concurrency as usize];
    let start_worker = pipeline.worker.stage_cycles();
    let wall = std::time::Instant::now();
    let mut last_completed = 0;
    let mut last_change = std::time::Instant::now();
    while completed < u64::from(config.connections) {
        for (index, closing) in closing.iter_mut().enumerate() {
            let connection = pipeline.connections[index];
            if connection.id.is_none() {
                if connection.closed {
                    completed += 1;
                    pipeline.connections[index].closed = false;
                }
                if opened < config.connections {
                    pipeline.connect(index as u32)?;
                    // Every connection sends the same bytes: stream 0.
                    pipeline.connections[index].stream = Some(0);
                    *closing = false;
                    opened += 1;
                }
                continue;
            }
            if !*closing
                && connection.sent >= config.request_bytes
                && connection.received >= config.answer_bytes
            {
                if let Some(id) = connection.id {
                    let _ = pipeline.client.close(id);
                }
                *closing = true;
            }
        }
        pipeline.turn(config.request_bytes);
        if let Some(detail) = pipeline.ended_early.take() {
            return Err(PipelineError::EndedEarly {
                phase: "the connection-rate run",
                detail,
            });
        }
        if let Some(detail) = pipeline.corrupted.take() {
            return Err(PipelineError::Corrupted(detail));
        }
        if completed != last_completed {
            last_completed = completed;
            last_change = std::time::Instant::now();
        } else if last_change.elapsed() > STALL_LIMIT {
            return Err(PipelineError::Stalled {
                phase: "the connection-rate run",
                detail: format!(
                    "{completed} completed; {}; open: {:?}",
                    pipeline.describe(),
                    pipeline
                        .connections
                        .iter()
                        .filter_map(|c| c.id.map(|id| (
                            c.sent,
                            c.received,
                            pipeline.client.connection_info(id)
                        )))
                        .take(3)
                        .collect::<Vec<_>>()
                ),
            });
        }
    }
    let wall = wall.elapsed();
    let end_worker = pipeline.worker.stage_cycles();
    let worker = end_worker.since(&start_worker);
    let backend = pipeline.backend.counters();
    if backend.mismatches > 0 {
        return Err(PipelineError::Corrupted(format!(
            "the backend saw {} segments differ from the pattern",
            backend.mismatches
        )));
    }
    Ok(RateOutcome {
        config,
        connections: completed,
        worker,
        tsc_hz: pipeline.clock.hz(),
        wall,
    })
}
