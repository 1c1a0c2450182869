//! mpterm-gen's loop ([`Generator`] over the in-memory packet I/O) against mpterm's own worker
//! loop and a backend peer, all on this thread in turns, as the pipeline benchmark wires them:
//!
//! ```text
//!  Generator<Memory> (client engine + load app) <=link=> Worker<Memory> (mpterm) <=link=> BackendPeer
//! ```
//!
//! The backend peer verifies uploads against the pattern and sends downloads of stream `k` for
//! its `k`-th connection, so a run checks the generator's own verdicts against an independent
//! one.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use std::sync::Arc;

use mpterm_control::{StatsRegistry, TokenTable};
use mpterm_dpdk::TscClock;
use mpterm_engine::client::{ClientConfig, ClientEngine};
use mpterm_engine::{Engine, EngineConfig, Instant, InterfaceConfig, ProxyRule, TcpTuning};
use mpterm_perf::backend_peer::{BackendPeer, BackendPeerConfig};
use mpterm_perf::gen::app::{references_per_slot, LoadApp, LoadConfig};
use mpterm_perf::gen::driver::Generator;
use mpterm_perf::gen::schedule::OpenPlan;
use mpterm_perf::gen::windows::{replicas_for, PatternWindows, WINDOWS, WINDOW_LEN};
use mpterm_perf::pattern::Pattern;
use mpterm_perf::report::Direction;
use mpterm_wire::ethernet::EthernetAddress;
use mpterm_worker::io::memory::{
    BufferPool, Memory, MemoryEnd, MemoryFrame, MemoryFrames, MemoryLink, MemoryRx, MemoryTx,
};
use mpterm_worker::{BurstRx, SharedTokens, Transmitter, Worker, WorkerPort};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x0c, 0x01];
const WORKER_CLIENT_SIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xa0, 0x01];
const WORKER_BACKEND_SIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xa0, 0x02];
const BACKEND_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x5e, 0x01];
const CLIENT_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const WORKER_CLIENT_SIDE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const WORKER_BACKEND_SIDE: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
const BACKEND_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
const RING_SIZE: usize = 1024;
const BUFFER: usize = 256 << 10;
/// Wall time a run may take before the test gives up on it.
const WALL_LIMIT: Duration = Duration::from_secs(60);

/// One run's settings.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    pub direction: Direction,
    pub size: Option<u64>,
    pub plan: OpenPlan,
    pub mptcp: bool,
    pub checksums: bool,
    /// Bytes the backend sends on each connection.
    pub backend_download: u64,
    /// Seed of the generator's pattern.
    pub seed: u64,
    /// Seed of the backend's pattern (another one makes every byte "wrong").
    pub backend_seed: u64,
    pub mtu: u16,
}

impl Setup {
    /// `connections` at once, `size` bytes each the way `direction` says.
    pub fn new(direction: Direction, connections: usize, size: u64) -> Setup {
        let downloads = direction != Direction::Upload;
        Setup {
            direction,
            size: Some(size),
            plan: OpenPlan {
                concurrency: connections,
                rate: None,
                duration: None,
                total: Some(connections as u64),
            },
            mptcp: true,
            checksums: true,
            backend_download: if downloads { size } else { 0 },
            seed: 21,
            backend_seed: 21,
            mtu: 1500,
        }
    }
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

/// The three parties and their two links.
pub struct Bench {
    clock: TscClock,
    pub generator: Generator<Memory, ChaCha8Rng>,
    pub worker: Worker<Memory, ChaCha8Rng, SharedTokens>,
    pub backend: BackendPeer,
    client_link: MemoryLink,
    backend_link: MemoryLink,
    backend_rx: MemoryRx,
    backend_tx: Transmitter<MemoryTx>,
    backend_pool: BufferPool,
    /// Generator turns taken.
    pub turns: u64,
}

impl Bench {
    pub fn new(setup: Setup) -> Bench {
        let clock = TscClock::calibrated(Duration::from_millis(20));
        let mtu = setup.mtu;
        let mss = usize::from(mtu) - 40;
        let buffer_size = usize::from(mtu) + 64;
        let slots = setup.plan.concurrency;
        let tuning = TcpTuning {
            receive_buffer: BUFFER as u32,
            send_buffer: BUFFER as u32,
            ..TcpTuning::default()
        };
        let engine = Engine::new(
            EngineConfig {
                interfaces: vec![
                    interface(WORKER_CLIENT_SIDE_MAC, WORKER_CLIENT_SIDE, mtu),
                    interface(WORKER_BACKEND_SIDE_MAC, WORKER_BACKEND_SIDE, mtu),
                ],
                proxies: vec![ProxyRule {
                    listen: SocketAddrV4::new(WORKER_CLIENT_SIDE, 5000).into(),
                    backend: SocketAddrV4::new(BACKEND_ADDRESS, 6000),
                    scheduler: mpterm_engine::scheduler::SchedulerKind::default(),
                }],
                client_tcp: tuning,
                backend_tcp: tuning,
                mptcp_checksum_required: setup.checksums,
                max_connections: slots + 16,
                max_time_wait: 4096,
                mptcp_max_subflows: 8,
                mptcp_allow_join_initial_address: true,
                time_wait_reuse: true,
                local_ports: 1024..=65535,
            },
            ChaCha8Rng::seed_from_u64(setup.seed),
            SharedTokens::new(Arc::new(TokenTable::new()), 0),
        );
        let frames = |per_connection: usize| slots * (per_connection / mss + 64) + 4 * RING_SIZE;
        let worker_pool = BufferPool::new(2 * frames(2 * BUFFER), buffer_size);
        let client_pool = BufferPool::new(frames(BUFFER), buffer_size);
        let backend_rx_pool = BufferPool::new(4 * RING_SIZE, buffer_size);
        let (client_link, client_end, worker_client_end) =
            MemoryLink::new(RING_SIZE, client_pool, worker_pool.clone());
        let (backend_link, worker_backend_end, backend_end) =
            MemoryLink::new(RING_SIZE, worker_pool, backend_rx_pool);
        let registry = StatsRegistry::new(1);
        let worker = Worker::new(
            engine,
            vec![
                WorkerPort::<Memory>::new(worker_client_end.rx, worker_client_end.tx),
                WorkerPort::<Memory>::new(worker_backend_end.rx, worker_backend_end.tx),
            ],
            MemoryFrames::new(BufferPool::new(8 * RING_SIZE, buffer_size)),
            clock,
            registry.worker(0).expect("one worker"),
        );

        let mut client_config = ClientConfig::new(
            interface(CLIENT_MAC, CLIENT_ADDRESS, mtu),
            SocketAddrV4::new(WORKER_CLIENT_SIDE, 5000),
        );
        client_config.mptcp = setup.mptcp;
        client_config.dss_checksums = setup.checksums;
        client_config.max_connections = slots;
        client_config.local_ports = 1024..=65535;
        client_config.tcp = tuning;
        let client = ClientEngine::new(client_config, ChaCha8Rng::seed_from_u64(setup.seed + 1))
            .expect("a valid client configuration");
        let pattern = Pattern::new(setup.seed);
        let replicas = replicas_for(slots, references_per_slot(BUFFER, mss));
        let window_pool = BufferPool::new(replicas * WINDOWS, WINDOW_LEN);
        let windows =
            PatternWindows::new(&pattern, replicas, |bytes| window_pool.alloc_copy(bytes))
                .expect("the window pool holds every window");
        let app = LoadApp::new(
            LoadConfig {
                direction: setup.direction,
                size: setup.size,
                mptcp: setup.mptcp,
                plan: setup.plan,
                interval_ns: 10_000_000,
                mss,
            },
            pattern,
            windows,
            slots,
        );
        let MemoryEnd { rx, tx } = client_end;
        let generator = Generator::<Memory, _>::new(
            client,
            app,
            rx,
            tx,
            MemoryFrames::new(BufferPool::new(8 * RING_SIZE, buffer_size)),
        );

        let mut backend_config = BackendPeerConfig::new(
            EthernetAddress(BACKEND_MAC),
            SocketAddrV4::new(BACKEND_ADDRESS, 6000),
        );
        backend_config.mss = mss as u16;
        backend_config.max_connections = slots + 16;
        backend_config.pattern_seed = setup.backend_seed;
        backend_config.download_bytes = setup.backend_download;
        backend_config.receive_window = BUFFER as u32;
        let MemoryEnd {
            rx: backend_rx,
            tx: backend_tx,
        } = backend_end;
        Bench {
            clock,
            generator,
            worker,
            backend: BackendPeer::new(backend_config),
            client_link,
            backend_link,
            backend_rx,
            backend_tx: Transmitter::new(vec![backend_tx]),
            backend_pool: BufferPool::new(8 * RING_SIZE, buffer_size),
            turns: 0,
        }
    }

    pub fn now(&self) -> Instant {
        Instant::from_nanos(self.clock.elapsed().as_nanos() as u64)
    }

    /// One turn of everyone, the generator's through `generator_turn`.
    pub fn turn_with(
        &mut self,
        generator_turn: impl FnOnce(&mut Generator<Memory, ChaCha8Rng>, Instant),
    ) {
        let now = self.now();
        generator_turn(&mut self.generator, now);
        self.turns += 1;
        self.client_link.carry();
        self.backend_link.carry();
        self.worker.poll_once();
        self.client_link.carry();
        self.backend_link.carry();
        self.backend_turn();
        self.backend_link.carry();
    }

    pub fn turn(&mut self) {
        self.turn_with(|generator, now| {
            generator.poll_once(now);
        });
    }

    fn backend_turn(&mut self) {
        let now = self.now();
        let now_ns = now.as_nanos();
        self.backend_rx.rx_burst();
        let backend = &mut self.backend;
        self.backend_rx
            .drain(|frame| backend.handle_frame(now_ns, frame.as_ref()));
        // Polling runs the peer's timers too (its retransmissions).
        while self.backend_tx.ready(now) {
            let backend = &mut self.backend;
            let Some(frame) = self
                .backend_pool
                .alloc_with(|buffer| backend.poll_frame(now_ns, buffer))
            else {
                break;
            };
            self.backend_tx.queue(now, 0, MemoryFrame::new(frame, None));
        }
        self.backend_tx.flush(now);
    }

    /// Turns until every connection has ended; then the run is finished. Panics past the wall
    /// limit, with everyone's counters.
    pub fn run(&mut self) {
        let started = std::time::Instant::now();
        while !self.generator.app().is_finished(self.now()) {
            self.turn();
            assert!(
                started.elapsed() < WALL_LIMIT,
                "stuck: {:?}; worker {:?}; backend {:?}",
                self.generator,
                self.worker.engine().counters(),
                self.backend.counters()
            );
        }
        let now = self.now();
        self.generator.finish(now);
    }
}
