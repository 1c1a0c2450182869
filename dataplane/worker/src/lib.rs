//! The per-core worker: a run-to-completion loop over packet I/O around the sans-IO engine.
//!
//! One iteration (the l3fwd shape): receive a burst on every port and hand each frame to the
//! engine; run the engine's timers when due; pull the frames the engine has to send, build each
//! (header copied, payload chained from the received buffer or copied when small) and queue it
//! on its port; transmit the queued bursts. The loop is generic over its [`io::PacketIo`]: DPDK
//! ports ([`io::Dpdk`]) in the appliance, an in-memory link ([`io::memory`]) in the pipeline
//! benchmark and the hot-path tests. A frame a port refuses (its ring is full) is held and
//! sent on a later iteration, and while it waits the worker pulls nothing more from the engine
//! (push-back, see [`transmit`]). Counters are published every [`STATS_PUBLISH_INTERVAL`], never
//! per packet. Nothing in the loop allocates, locks or makes a system call, except the sleep of
//! an idle worker (see [`IDLE_SPIN`]). Operator commands ([`operator`]) wait in a channel that
//! the worker looks at when it publishes its counters, and are applied there.

#![deny(unsafe_code)]

pub mod io;
pub mod operator;
mod pools;
pub mod transmit;

pub use io::dpdk::CHAIN_THRESHOLD;
pub use io::{build_frame, BurstRx, Dpdk, DpdkRx, FrameBuilder, MbufPayload, PacketIo, TxPools};
pub use pools::{PoolPlan, MBUF_OVERHEAD, POOL_CACHE, RX_PAYLOAD_MBUFS};
pub use transmit::{BurstTx, FrameBurst, Transmitter, STUCK_PORT_TIMEOUT};

use core::time::Duration;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mpterm_control::{ConnectionOwner, OperatorRequests, StatsSnapshot, TokenTable, WorkerStats};
use mpterm_dpdk::TscClock;
use mpterm_engine::{Counters, Engine, Instant, TokenRegistry};
use rand_core::RngCore;

/// How often the engine's counters are published for the control thread.
pub const STATS_PUBLISH_INTERVAL: Duration = Duration::from_millis(100);

/// How long the worker keeps polling after the last frame before it starts to sleep. A
/// busy-polling worker owns its core; on the small lab machines the Linux client and backend
/// share the two cores with it, so an idle worker gives its core back. Under load (a frame at
/// least every `IDLE_SPIN`) it never sleeps.
pub const IDLE_SPIN: Duration = Duration::from_micros(200);
/// The first sleep of an idle worker; each further idle sleep doubles, up to [`IDLE_SLEEP_MAX`],
/// so the delay a sleeping worker adds to the next frame stays proportional to how long it has
/// been idle.
pub const IDLE_SLEEP_MIN: Duration = Duration::from_micros(20);
/// The longest sleep, and so the most latency an idle worker adds to the first frame that ends
/// the idle spell (plus the kernel's timer slack, 50 us by default).
///
/// Measured on the 2-core lab machine, release build, mpterm on two idle `net_ring` ports, worker
/// thread CPU time from /proc/PID/task/TID/stat: 3.5 % of a core with this backoff (35 ticks in
/// 10 s, about 830 sleeps a second), against 21 % with a fixed 20 us sleep after 2048 idle
/// iterations (`thread::sleep(20 us)` really sleeps about 120 us there: median of 20000, p99
/// 414 us) and 100 % for a worker that never sleeps. The price is latency: a frame that ends an
/// idle spell of a millisecond or more waits up to about 1.1 ms before it is received.
pub const IDLE_SLEEP_MAX: Duration = Duration::from_millis(1);

/// When an idle worker sleeps: after [`IDLE_SPIN`] without a frame, for [`IDLE_SLEEP_MIN`]
/// doubling up to [`IDLE_SLEEP_MAX`], never past the engine's next timer, and never while it
/// holds frames a port could not take yet (a full ring drains in microseconds).
#[derive(Debug, Clone)]
struct IdleBackoff {
    spin_cycles: u64,
    last_busy_cycles: u64,
    next_sleep: Duration,
}

impl IdleBackoff {
    fn new(spin_cycles: u64, now_cycles: u64) -> Self {
        IdleBackoff {
            spin_cycles,
            last_busy_cycles: now_cycles,
            next_sleep: IDLE_SLEEP_MIN,
        }
    }

    /// After one loop iteration that moved `frames` frames at `now_cycles`: how long to sleep,
    /// if at all; `until_timer` is how long until the engine's next timer is due, and
    /// `holding_frames` whether frames wait for a port to take them (which counts as busy).
    fn after_iteration(
        &mut self,
        frames: usize,
        holding_frames: bool,
        now_cycles: u64,
        until_timer: Option<Duration>,
    ) -> Option<Duration> {
        if frames > 0 || holding_frames {
            self.last_busy_cycles = now_cycles;
            self.next_sleep = IDLE_SLEEP_MIN;
            return None;
        }
        if now_cycles.saturating_sub(self.last_busy_cycles) < self.spin_cycles {
            return None;
        }
        let sleep = until_timer.map_or(self.next_sleep, |until| self.next_sleep.min(until));
        self.next_sleep = (self.next_sleep * 2).min(IDLE_SLEEP_MAX);
        (!sleep.is_zero()).then_some(sleep)
    }
}

/// The shared token table as the engine's [`TokenRegistry`]: a lock per connection set-up and
/// tear-down, never per packet.
#[derive(Debug, Clone)]
pub struct SharedTokens {
    table: Arc<TokenTable>,
    worker: u16,
}

impl SharedTokens {
    /// The adapter for worker number `worker` over the table all workers share.
    pub fn new(table: Arc<TokenTable>, worker: u16) -> Self {
        SharedTokens { table, worker }
    }
}

impl TokenRegistry for SharedTokens {
    fn try_register(&mut self, token: u32, connection_id: u64) -> bool {
        let owner = ConnectionOwner {
            worker: self.worker,
            connection: connection_id,
        };
        self.table.try_insert(token, owner).is_ok()
    }

    fn release(&mut self, token: u32) {
        self.table.remove(token);
    }
}

/// One port's receiving and transmitting ends, as the worker is given them.
pub struct WorkerPort<Io: PacketIo> {
    rx: Io::Rx,
    tx: Io::Tx,
}

impl<Io: PacketIo> WorkerPort<Io> {
    /// A port's receiving and transmitting end.
    pub fn new(rx: Io::Rx, tx: Io::Tx) -> Self {
        WorkerPort { rx, tx }
    }
}

impl<Io: PacketIo> core::fmt::Debug for WorkerPort<Io> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WorkerPort").finish_non_exhaustive()
    }
}

/// TSC cycles the worker spent in each stage of its loop, summed over its iterations (the TSC
/// is read four times per iteration, five when timers ran, never per packet), on packet I/O
/// that asks for it ([`PacketIo::STAGE_CYCLES`]); all zero elsewhere but the frame counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageCycles {
    /// Receiving bursts from the ports (the driver's rx burst; on DPDK the PMD's own work).
    pub rx: u64,
    /// The engine's frame path: parsing, TCP and MPTCP, checksum verification, the relay.
    pub engine: u64,
    /// The engine's timers.
    pub timers: u64,
    /// Pulling frames from the engine (segment production and checksums of what is sent),
    /// building them and transmitting the bursts.
    pub tx: u64,
    /// Frames received.
    pub rx_frames: u64,
    /// Frames pulled from the engine.
    pub tx_frames: u64,
}

impl StageCycles {
    /// All cycles of the loop's work.
    pub fn total(&self) -> u64 {
        self.rx + self.engine + self.timers + self.tx
    }

    /// What was counted between `earlier` (a snapshot of the same worker) and `self`.
    pub fn since(&self, earlier: &StageCycles) -> StageCycles {
        StageCycles {
            rx: self.rx - earlier.rx,
            engine: self.engine - earlier.engine,
            timers: self.timers - earlier.timers,
            tx: self.tx - earlier.tx,
            rx_frames: self.rx_frames - earlier.rx_frames,
            tx_frames: self.tx_frames - earlier.tx_frames,
        }
    }
}

/// Drops the worker itself counts (the engine counts the rest).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerCounters {
    /// Frames freed unsent because they could not be kept: frames for a port that took nothing
    /// for [`STUCK_PORT_TIMEOUT`], and frames still held when the worker stopped. Frames a full
    /// ring refuses are held, not dropped (see [`transmit`]), so with live ports this stays 0.
    pub tx_dropped_full: u64,
    /// Frames that could not be built because a pool was empty.
    pub tx_dropped_no_mbuf: u64,
    /// Received frames spread over several mbufs (not expected with the configured data room).
    pub rx_dropped_segmented: u64,
}

/// A run-to-completion worker over the packet I/O `Io`. On DPDK everything it holds (queues,
/// mbufs, the engine's payload) borrows the EAL for `'eal` (through [`Dpdk`]), so the worker
/// cannot outlive it; `mpterm` runs it on a scoped thread.
pub struct Worker<Io: PacketIo, R: RngCore, T: TokenRegistry> {
    engine: Engine<Io::Payload, R, T>,
    receivers: Vec<Io::Rx>,
    transmitter: Transmitter<Io::Tx>,
    builder: Io::Builder,
    clock: TscClock,
    stats: Arc<WorkerStats>,
    counters: WorkerCounters,
    stages: StageCycles,
    publish_every_cycles: u64,
    /// Where the operator's commands wait, when the binary serves a control socket.
    operator: Option<OperatorRequests>,
}

/// The worker of the appliance: DPDK ports and mbufs.
pub type DpdkWorker<'eal, R, T> = Worker<Dpdk<'eal>, R, T>;

impl<Io: PacketIo, R: RngCore, T: TokenRegistry> core::fmt::Debug for Worker<Io, R, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Worker")
            .field("ports", &self.receivers.len())
            .field("transmitter", &self.transmitter)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl<Io: PacketIo, R: RngCore, T: TokenRegistry> Worker<Io, R, T> {
    /// `ports[i]` must be the port of the engine's interface `i`; `builder` builds every frame
    /// the worker sends.
    pub fn new(
        engine: Engine<Io::Payload, R, T>,
        ports: Vec<WorkerPort<Io>>,
        builder: Io::Builder,
        clock: TscClock,
        stats: Arc<WorkerStats>,
    ) -> Self {
        let publish_every_cycles = clock.duration_to_cycles(STATS_PUBLISH_INTERVAL).max(1);
        let (receivers, transmitters) = ports.into_iter().map(|port| (port.rx, port.tx)).unzip();
        Worker {
            engine,
            receivers,
            transmitter: Transmitter::new(transmitters),
            builder,
            clock,
            stats,
            counters: WorkerCounters::default(),
            stages: StageCycles::default(),
            publish_every_cycles,
            operator: None,
        }
    }

    /// Has [`Worker::run_with`] apply the operator's commands that arrive on `requests`, each
    /// time it publishes its counters.
    pub fn set_operator_requests(&mut self, requests: OperatorRequests) {
        self.operator = Some(requests);
    }

    /// Applies every operator command waiting, answering each on its own reply channel; how
    /// many. Never waits: an empty channel costs one atomic load.
    pub fn serve_operator_requests(&mut self) -> usize {
        let Some(requests) = &self.operator else {
            return 0;
        };
        let now = Instant::from_nanos(self.clock.elapsed().as_nanos() as u64);
        let engine = &mut self.engine;
        mpterm_control::operator::serve_requests(requests, |command| {
            operator::apply_command(engine, now, command)
        })
    }

    /// The engine, for its counters and connection count.
    pub fn engine(&self) -> &Engine<Io::Payload, R, T> {
        &self.engine
    }

    /// The engine, for a driver that plays the application (the pipeline benchmark).
    pub fn engine_mut(&mut self) -> &mut Engine<Io::Payload, R, T> {
        &mut self.engine
    }

    /// The cycles spent per stage so far.
    pub fn stage_cycles(&self) -> StageCycles {
        self.stages
    }

    /// The drops the worker counted itself.
    pub fn counters(&self) -> WorkerCounters {
        WorkerCounters {
            tx_dropped_full: self.transmitter.dropped(),
            ..self.counters
        }
    }

    fn now(&self) -> Instant {
        Instant::from_nanos(self.clock.elapsed().as_nanos() as u64)
    }

    /// Runs until `stop` is set, then frees the frames it still holds (counted in
    /// `tx_dropped_full`) and publishes the final counters.
    pub fn run(&mut self, stop: &AtomicBool) {
        self.run_with(stop, |_| {});
    }

    /// [`Worker::run`], calling `at_publish` with the engine each time the counters are
    /// published (every [`STATS_PUBLISH_INTERVAL`], never per packet): where the binary looks
    /// at the engine on the worker's own thread, e.g. to log its connections when asked. The
    /// operator's commands ([`Worker::set_operator_requests`]) are applied there too.
    pub fn run_with(
        &mut self,
        stop: &AtomicBool,
        mut at_publish: impl FnMut(&Engine<Io::Payload, R, T>),
    ) {
        let mut next_publish = TscClock::cycles();
        let mut idle =
            IdleBackoff::new(self.clock.duration_to_cycles(IDLE_SPIN), TscClock::cycles());
        while !stop.load(Ordering::Relaxed) {
            let frames = self.poll_once();
            let cycles = TscClock::cycles();
            if cycles >= next_publish {
                self.serve_operator_requests();
                self.publish();
                at_publish(&self.engine);
                next_publish = cycles + self.publish_every_cycles;
            }
            // Only an idle iteration may sleep, so only then is the next timer looked up.
            let until_timer = if frames == 0 {
                self.engine.poll_timeout().map(|deadline| {
                    Duration::from_nanos(deadline.as_nanos().saturating_sub(self.now().as_nanos()))
                })
            } else {
                None
            };
            let holding = self.transmitter.is_holding(self.now());
            if let Some(sleep) = idle.after_iteration(frames, holding, cycles, until_timer) {
                std::thread::sleep(sleep);
            }
        }
        // One last chance for the ports to take what is held; the rest is freed and counted.
        self.transmitter.flush(self.now());
        self.transmitter.discard_held();
        self.publish();
    }

    /// One loop iteration; returns the number of frames received and pulled from the engine.
    /// Never inlined: one call per burst costs nothing, and profiles then show the loop's work
    /// under its own name.
    #[inline(never)]
    pub fn poll_once(&mut self) -> usize {
        // One TSC read a turn, the turn's `now`; three more where stages are counted
        // (`PacketIo::STAGE_CYCLES`), never one per packet.
        let stamp = || {
            if Io::STAGE_CYCLES {
                TscClock::cycles()
            } else {
                0
            }
        };
        let started = TscClock::cycles();
        let now = Instant::from_nanos(self.clock.elapsed_at(started).as_nanos() as u64);
        let mut received = 0;
        for receiver in &mut self.receivers {
            received += receiver.rx_burst();
        }
        let received_at = stamp().max(started);
        if received > 0 {
            for (interface, receiver) in self.receivers.iter_mut().enumerate() {
                let engine = &mut self.engine;
                self.counters.rx_dropped_segmented +=
                    receiver.drain(|frame| engine.handle_frame(now, interface, frame));
            }
        }
        let mut engine_done = stamp().max(received_at);
        let mut timer_cycles = 0;
        if self
            .engine
            .poll_timeout()
            .is_some_and(|deadline| deadline <= now)
        {
            self.engine.handle_timeout(now);
            let timers_done = stamp().max(engine_done);
            timer_cycles = timers_done - engine_done;
            engine_done = timers_done;
        }
        let builder = &mut self.builder;
        let pulled =
            transmit::pull_from_engine(&mut self.engine, &mut self.transmitter, now, |transmit| {
                builder.build(transmit.header.as_slice(), transmit.payload.as_ref())
            });
        self.counters.tx_dropped_no_mbuf += pulled.unbuilt;
        self.transmitter.flush(now);
        let done = stamp().max(engine_done);
        self.stages.rx += received_at - started;
        self.stages.engine += (engine_done - received_at) - timer_cycles;
        self.stages.timers += timer_cycles;
        self.stages.tx += done - engine_done;
        self.stages.rx_frames += received as u64;
        self.stages.tx_frames += pulled.frames as u64;
        received + pulled.frames
    }

    /// Publishes the engine's and the worker's counters for the control thread.
    pub fn publish(&self) {
        let gauges = Gauges {
            connections_open: self.engine.connection_count() as u64,
            time_wait_open: self.engine.time_wait_count() as u64,
        };
        let snapshot = snapshot(self.engine.counters(), &self.counters(), &gauges);
        self.stats.publish(&snapshot);
    }
}

/// The engine's current state counts, published beside the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges {
    pub connections_open: u64,
    pub time_wait_open: u64,
}

/// The published view of the engine's and the worker's counters and the gauges.
pub fn snapshot(engine: &Counters, worker: &WorkerCounters, gauges: &Gauges) -> StatsSnapshot {
    StatsSnapshot {
        rx_packets: engine.rx_frames,
        tx_packets: engine.tx_frames,
        rx_bytes: engine.rx_bytes,
        tx_bytes: engine.tx_bytes,
        rx_dropped_malformed: engine.rx_dropped_malformed,
        rx_dropped_not_for_us: engine.rx_dropped_not_for_us,
        rx_dropped_no_connection: engine.rx_dropped_no_connection,
        tx_dropped_full: worker.tx_dropped_full,
        arp_requests_answered: engine.arp_requests_answered,
        arp_replies_received: engine.arp_replies_received,
        icmp_echo_answered: engine.icmp_echo_answered,
        tcp_rst_sent: engine.tcp_rst_sent,
        connections_accepted: engine.connections_accepted,
        connections_established: engine.connections_established,
        connections_closed: engine.connections_closed,
        mptcp_connections: engine.mptcp_connections,
        mptcp_fallbacks: engine.mptcp_fallbacks,
        dss_checksum_failures: engine.dss_checksum_failures,
        dss_mapping_mismatches: engine.dss_mapping_mismatches,
        retransmissions: engine.retransmissions,
        rto_expirations: engine.rto_expirations,
        fast_retransmits: engine.fast_retransmits,
        backend_connect_failures: engine.backend_connect_failures,
        tcp_rst_received: engine.tcp_rst_received,
        tcp_timeouts: engine.tcp_timeouts,
        tcp_resets_by_peer: engine.tcp_resets_by_peer,
        rx_unknown_options: engine.rx_unknown_options,
        rx_dropped_out_of_window: engine.rx_dropped_out_of_window,
        connections_refused: engine.connections_refused,
        tx_dropped_no_neighbor: engine.tx_dropped_no_neighbor,
        tx_dropped_no_mbuf: worker.tx_dropped_no_mbuf,
        rx_dropped_segmented: worker.rx_dropped_segmented,
        tx_dropped_backlog: engine.tx_dropped_backlog,
        rx_dropped_bad_ack: engine.rx_dropped_bad_ack,
        challenge_acks_sent: engine.challenge_acks_sent,
        mptcp_withheld_before_key: engine.mptcp_withheld_before_key,
        mptcp_fastcloses_sent: engine.mptcp_fastcloses_sent,
        mptcp_fastcloses_received: engine.mptcp_fastcloses_received,
        mptcp_fastcloses_ignored: engine.mptcp_fastcloses_ignored,
        mptcp_joins_refused: engine.mptcp_joins_refused,
        mptcp_join_syns_received: engine.mptcp_join_syns_received,
        mptcp_joins_established: engine.mptcp_joins_established,
        mptcp_join_unknown_token: engine.mptcp_join_unknown_token,
        mptcp_join_over_limit: engine.mptcp_join_over_limit,
        mptcp_join_not_accepted: engine.mptcp_join_not_accepted,
        mptcp_join_hmac_failures: engine.mptcp_join_hmac_failures,
        mptcp_data_acks_beyond_sent: engine.mptcp_data_acks_beyond_sent,
        mptcp_prio_received: engine.mptcp_prio_received,
        mptcp_reinjected_bytes: engine.mptcp_reinjected_bytes,
        mptcp_subflow_failovers: engine.mptcp_subflow_failovers,
        mptcp_data_duplicates: engine.mptcp_data_duplicates,
        mptcp_data_overflows: engine.mptcp_data_overflows,
        mptcp_data_retransmissions: engine.mptcp_data_retransmissions,
        mptcp_add_addr_sent: engine.mptcp_add_addr_sent,
        mptcp_add_addr_echoed: engine.mptcp_add_addr_echoed,
        mptcp_add_addr_unanswered: engine.mptcp_add_addr_unanswered,
        mptcp_add_addr_received: engine.mptcp_add_addr_received,
        mptcp_add_addr_bad_hmac: engine.mptcp_add_addr_bad_hmac,
        mptcp_remove_addr_sent: engine.mptcp_remove_addr_sent,
        mptcp_remove_addr_received: engine.mptcp_remove_addr_received,
        mptcp_remove_addr_unknown: engine.mptcp_remove_addr_unknown,
        mptcp_remove_addr_subflows_closed: engine.mptcp_remove_addr_subflows_closed,
        mptcp_prio_sent: engine.mptcp_prio_sent,
        mptcp_subflows_failed: engine.mptcp_subflows_failed,
        mptcp_mp_fail_sent: engine.mptcp_mp_fail_sent,
        mptcp_mp_fail_received: engine.mptcp_mp_fail_received,
        mptcp_infinite_mappings_sent: engine.mptcp_infinite_mappings_sent,
        mptcp_infinite_mappings_received: engine.mptcp_infinite_mappings_received,
        mptcp_checksum_rewinds: engine.mptcp_checksum_rewinds,
        mptcp_fail_resets: engine.mptcp_fail_resets,
        keepalive_probes_sent: engine.keepalive_probes_sent,
        keepalive_timeouts: engine.keepalive_timeouts,
        fin_wait_2_timeouts: engine.fin_wait_2_timeouts,
        user_timeouts: engine.user_timeouts,
        time_wait_entered: engine.time_wait_entered,
        time_wait_overflows: engine.time_wait_overflows,
        time_wait_reused: engine.time_wait_reused,
        time_wait_acks_sent: engine.time_wait_acks_sent,
        rx_dropped_time_wait: engine.rx_dropped_time_wait,
        neighbor_solicitations_answered: engine.neighbor_solicitations_answered,
        rx_sack_blocks_invalid: engine.rx_sack_blocks_invalid,
        dsacks_received: engine.dsacks_received,
        rack_lost_segments: engine.rack_lost_segments,
        tlp_probes_sent: engine.tlp_probes_sent,
        rx_dropped_paws: engine.rx_dropped_paws,
        delayed_acks_sent: engine.delayed_acks_sent,
        spurious_reductions_undone: engine.spurious_reductions_undone,
        icmp_mtu_lowered: engine.icmp_mtu_lowered,
        icmp_errors_no_connection: engine.icmp_errors_no_connection,
        icmp_errors_outside_window: engine.icmp_errors_outside_window,
        icmp_mtu_below_floor: engine.icmp_mtu_below_floor,
        icmp_errors_ignored: engine.icmp_errors_ignored,
        ecn_ce_received: engine.ecn_ce_received,
        ecn_window_reductions: engine.ecn_window_reductions,
        pacing_delays: engine.pacing_delays,
        connections_open: gauges.connections_open,
        time_wait_open: gauges.time_wait_open,
    }
}

/// The engine's configuration from the validated appliance configuration; `macs[i]` is the MAC
/// address of interface `i`'s port.
pub fn engine_config(
    config: &mpterm_control::Config,
    macs: &[[u8; 6]],
) -> mpterm_engine::EngineConfig {
    use mpterm_engine::scheduler::SchedulerKind;
    use mpterm_engine::{EngineConfig, InterfaceConfig, Keepalive, Liveness, ProxyRule, TcpTuning};
    let interfaces = config
        .interfaces
        .iter()
        .zip(macs)
        .map(|(interface, mac)| InterfaceConfig {
            mac: *mac,
            address: interface.address,
            prefix_len: interface.prefix_len,
            gateway: interface.gateway,
            mtu: interface.mtu,
            ipv6: interface.ipv6.map(|ipv6| mpterm_engine::Ipv6Interface {
                address: ipv6.address,
                prefix_len: ipv6.prefix_len,
                gateway: ipv6.gateway,
            }),
        })
        .collect();
    let proxies = config
        .proxies
        .iter()
        .map(|proxy| ProxyRule {
            listen: proxy.listen,
            backend: proxy.backend,
            scheduler: match proxy.scheduler {
                mpterm_control::config::Scheduler::LowestRtt => SchedulerKind::LowestRtt,
                mpterm_control::config::Scheduler::RoundRobin => SchedulerKind::RoundRobin,
            },
        })
        .collect();
    let tcp = &config.tcp;
    let millis = |ms: u32| Duration::from_millis(u64::from(ms));
    let side_tuning = |side: &mpterm_control::config::TcpSideConfig| TcpTuning {
        receive_buffer: tcp.receive_buffer,
        receive_buffer_initial: tcp.receive_buffer_initial,
        receive_buffer_autotuning: tcp.receive_buffer_autotuning,
        send_buffer: tcp.send_buffer,
        initial_rto: millis(tcp.initial_rto_ms),
        min_rto: millis(tcp.min_rto_ms),
        time_wait: millis(tcp.time_wait_ms),
        connect_timeout: millis(tcp.connect_timeout_ms),
        liveness: Liveness {
            keepalive: side.keepalive.then(|| Keepalive {
                idle: millis(side.keepalive_idle_ms),
                interval: millis(side.keepalive_interval_ms),
                probes: side.keepalive_probes,
            }),
            fin_wait_2_timeout: millis(side.fin_wait_2_timeout_ms),
            user_timeout: (side.user_timeout_ms > 0).then(|| millis(side.user_timeout_ms)),
        },
        ecn: tcp.ecn,
        pacing: tcp.pacing,
        ..TcpTuning::default()
    };
    EngineConfig {
        interfaces,
        proxies,
        client_tcp: TcpTuning {
            congestion_control: congestion_algorithm(tcp.congestion_control),
            ..side_tuning(&tcp.client)
        },
        backend_tcp: TcpTuning {
            congestion_control: congestion_algorithm(tcp.backend_congestion_control),
            ..side_tuning(&tcp.backend)
        },
        mptcp_checksum_required: config.mptcp.checksum_required,
        max_connections: tcp.max_connections as usize,
        max_time_wait: tcp.max_time_wait as usize,
        mptcp_max_subflows: usize::from(config.mptcp.max_subflows),
        mptcp_allow_join_initial_address: config.mptcp.allow_join_initial_address,
        time_wait_reuse: tcp.time_wait_reuse,
        local_ports: tcp.local_port_range.0..=tcp.local_port_range.1,
    }
}

/// The engine's value for the configured algorithm (the control crate does not depend on the
/// engine, so each has its own enum).
fn congestion_algorithm(
    algorithm: mpterm_control::config::CongestionAlgorithm,
) -> mpterm_engine::CongestionAlgorithm {
    use mpterm_control::config::CongestionAlgorithm as Configured;
    match algorithm {
        Configured::NewReno => mpterm_engine::CongestionAlgorithm::NewReno,
        Configured::Lia => mpterm_engine::CongestionAlgorithm::Lia,
        Configured::Olia => mpterm_engine::CongestionAlgorithm::Olia,
        Configured::Cubic => mpterm_engine::CongestionAlgorithm::Cubic,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod operator_tests;

/// The tests that run real DPDK (one EAL per process, so one test function); they need root.
#[cfg(test)]
mod dpdk_tests;
