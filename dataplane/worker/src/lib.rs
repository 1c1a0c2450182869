//! The per-core worker: a run-to-completion loop over DPDK queues around the sans-IO engine.
//!
//! One iteration (the l3fwd shape): receive a burst on every port and hand each frame to the
//! engine; run the engine's timers when due; pull the frames the engine has to send, build each
//! (header copied, payload chained from the received mbuf or copied when small) and queue it on
//! its port; transmit the queued bursts. A frame a port refuses (its ring is full) is held and
//! sent on a later iteration, and while it waits the worker pulls nothing more from the engine
//! (push-back, see [`transmit`]). Counters are published every [`STATS_PUBLISH_INTERVAL`], never
//! per packet. Nothing in the loop allocates, locks or makes a system call, except the sleep of
//! an idle worker (see [`IDLE_SPIN`]).

#![deny(unsafe_code)]

mod pools;
pub mod transmit;

pub use pools::{PoolPlan, MBUF_OVERHEAD, POOL_CACHE, RX_PAYLOAD_MBUFS};
pub use transmit::{BurstTx, FrameBurst, Transmitter, STUCK_PORT_TIMEOUT};

use core::ops::Range;
use core::time::Duration;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mpterm_control::{ConnectionOwner, StatsSnapshot, TokenTable, WorkerStats};
use mpterm_dpdk::{
    alloc_frame_chained, alloc_frame_copied, Mbuf, MbufBatch, MbufSlice, Mempool, RxQueue,
    TscClock, TxQueue,
};
use mpterm_engine::{Counters, Engine, Instant, Payload, TokenRegistry};
use rand_core::RngCore;

/// Payloads shorter than this are copied behind the header; longer ones are chained (zero copy).
///
/// Measured with `cargo bench -p mpterm-worker --bench frame_build` (build and free one frame,
/// 86-byte header, median ns on the 2-core lab machine; "cold" payloads are spread over 39 MB of
/// mbufs, beyond the 32 MiB L3, like data that waited in a send buffer or is retransmitted):
///
/// | payload bytes | 64 | 128 | 256 | 512 | 1024 | 1448 |
/// | --- | --- | --- | --- | --- | --- | --- |
/// | copied, hot  | 57 | 49 | 60 | 63 | 72 | 73 |
/// | chained, hot | 90 | 86 | 89 | 74 | 85 | 73 |
/// | copied, cold | 75 | 174 | 195 | 280 | 274 | 274 |
/// | chained, cold | 87 | 96 | 93 | 92 | 92 | 82 |
///
/// Chaining costs a flat 75-95 ns (an indirect mbuf and a reference on the received one);
/// copying costs less when the payload is still in cache but grows to three times that when it
/// is not. Below 128 bytes copying wins either way (one or two cache lines); from 128 bytes on,
/// chaining loses at most about 35 ns on hot payload and saves 80-200 ns on cold payload.
pub const CHAIN_THRESHOLD: usize = 128;

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

/// A received mbuf as the engine's payload handle: slicing and cloning take references on the
/// same mbuf, so payload received on one side leaves on the other without a copy. It borrows the
/// EAL like the slice it wraps, so an engine holding payload cannot outlive DPDK's memory either.
#[derive(Debug, Clone)]
pub struct MbufPayload<'eal>(pub MbufSlice<'eal>);

impl AsRef<[u8]> for MbufPayload<'_> {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl Payload for MbufPayload<'_> {
    /// The bytes of `range` within the view, clamped, never a panic (the trait's contract).
    fn slice(&self, range: Range<usize>) -> Self {
        MbufPayload(self.0.slice_clamped(range))
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

/// One port's queues, as the worker is given them.
#[derive(Debug)]
pub struct WorkerPort<'eal> {
    rx: RxQueue<'eal>,
    tx: TxQueue<'eal>,
}

impl<'eal> WorkerPort<'eal> {
    /// A port's receive and transmit queue.
    pub fn new(rx: RxQueue<'eal>, tx: TxQueue<'eal>) -> Self {
        WorkerPort { rx, tx }
    }
}

/// A receive queue with the burst it fills.
#[derive(Debug)]
struct Receiver<'eal> {
    queue: RxQueue<'eal>,
    batch: MbufBatch<'eal>,
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

/// The pools frames are built from.
#[derive(Debug, Clone, Copy)]
pub struct TxPools<'eal> {
    /// Header mbufs, and whole frames when the payload is copied.
    pub header: &'eal Mempool<'eal>,
    /// Indirect mbufs that attach a received payload behind a header.
    pub indirect: &'eal Mempool<'eal>,
}

/// A run-to-completion worker. Everything it holds (queues, mbufs, the engine's payload)
/// borrows the EAL for `'eal`, so the worker cannot outlive it; `mpterm` runs it on a scoped
/// thread.
pub struct Worker<'eal, R: RngCore, T: TokenRegistry> {
    engine: Engine<MbufPayload<'eal>, R, T>,
    receivers: Vec<Receiver<'eal>>,
    transmitter: Transmitter<TxQueue<'eal>>,
    pools: TxPools<'eal>,
    clock: TscClock,
    stats: Arc<WorkerStats>,
    counters: WorkerCounters,
    publish_every_cycles: u64,
}

impl<R: RngCore, T: TokenRegistry> core::fmt::Debug for Worker<'_, R, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Worker")
            .field("ports", &self.receivers.len())
            .field("transmitter", &self.transmitter)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl<'eal, R: RngCore, T: TokenRegistry> Worker<'eal, R, T> {
    /// `ports[i]` must be the port of the engine's interface `i`.
    pub fn new(
        engine: Engine<MbufPayload<'eal>, R, T>,
        ports: Vec<WorkerPort<'eal>>,
        pools: TxPools<'eal>,
        clock: TscClock,
        stats: Arc<WorkerStats>,
    ) -> Self {
        let publish_every_cycles = clock.duration_to_cycles(STATS_PUBLISH_INTERVAL).max(1);
        let (receivers, transmitters) = ports
            .into_iter()
            .map(|port| {
                let receiver = Receiver {
                    queue: port.rx,
                    batch: MbufBatch::new(),
                };
                (receiver, port.tx)
            })
            .unzip();
        Worker {
            engine,
            receivers,
            transmitter: Transmitter::new(transmitters),
            pools,
            clock,
            stats,
            counters: WorkerCounters::default(),
            publish_every_cycles,
        }
    }

    /// The engine, for its counters and connection count.
    pub fn engine(&self) -> &Engine<MbufPayload<'eal>, R, T> {
        &self.engine
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
        let mut next_publish = TscClock::cycles();
        let mut idle =
            IdleBackoff::new(self.clock.duration_to_cycles(IDLE_SPIN), TscClock::cycles());
        while !stop.load(Ordering::Relaxed) {
            let frames = self.poll_once();
            let cycles = TscClock::cycles();
            if cycles >= next_publish {
                self.publish();
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
    pub fn poll_once(&mut self) -> usize {
        let mut frames = 0;
        let now = self.now();
        for (interface, receiver) in self.receivers.iter_mut().enumerate() {
            let received = receiver.queue.rx_burst(&mut receiver.batch);
            frames += received;
            for mbuf in receiver.batch.drain() {
                match mbuf.into_slice() {
                    Ok(slice) => self.engine.handle_frame(now, interface, MbufPayload(slice)),
                    Err(segmented) => {
                        self.counters.rx_dropped_segmented += 1;
                        drop(segmented);
                    }
                }
            }
        }
        if self
            .engine
            .poll_timeout()
            .is_some_and(|deadline| deadline <= now)
        {
            self.engine.handle_timeout(now);
        }
        let pools = self.pools;
        let pulled =
            transmit::pull_from_engine(&mut self.engine, &mut self.transmitter, now, |transmit| {
                let payload = transmit.payload.as_ref().map(|payload| &payload.0);
                build_frame(pools, transmit.header.as_slice(), payload)
            });
        frames += pulled.frames;
        self.counters.tx_dropped_no_mbuf += pulled.unbuilt;
        self.transmitter.flush(now);
        frames
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

/// Builds one frame: `header` (the engine's complete headers), then `payload`, chained without a
/// copy when it is at least [`CHAIN_THRESHOLD`] bytes long, copied behind the header otherwise.
/// `None` when a pool is empty (or the frame cannot fit an mbuf): the caller counts the drop and
/// TCP sends the data again.
pub fn build_frame<'eal>(
    pools: TxPools<'eal>,
    header: &[u8],
    payload: Option<&MbufSlice<'eal>>,
) -> Option<Mbuf<'eal>> {
    let header_len = u16::try_from(header.len()).ok()?;
    let mut frame = match payload {
        Some(payload) if payload.len() >= CHAIN_THRESHOLD => {
            alloc_frame_chained(pools.header, pools.indirect, header_len, payload).ok()?
        }
        Some(payload) => alloc_frame_copied(pools.header, header_len, payload.as_slice()).ok()?,
        None => alloc_frame_copied(pools.header, header_len, &[]).ok()?,
    };
    frame.data_mut()[..header.len()].copy_from_slice(header);
    Some(frame)
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
        keepalive_probes_sent: engine.keepalive_probes_sent,
        keepalive_timeouts: engine.keepalive_timeouts,
        fin_wait_2_timeouts: engine.fin_wait_2_timeouts,
        user_timeouts: engine.user_timeouts,
        time_wait_entered: engine.time_wait_entered,
        time_wait_overflows: engine.time_wait_overflows,
        time_wait_reused: engine.time_wait_reused,
        time_wait_acks_sent: engine.time_wait_acks_sent,
        rx_dropped_time_wait: engine.rx_dropped_time_wait,
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
        })
        .collect();
    let proxies = config
        .proxies
        .iter()
        .map(|proxy| ProxyRule {
            listen: proxy.listen,
            backend: proxy.backend,
        })
        .collect();
    let tcp = &config.tcp;
    let millis = |ms: u32| Duration::from_millis(u64::from(ms));
    let side_tuning = |side: &mpterm_control::config::TcpSideConfig| TcpTuning {
        receive_buffer: tcp.receive_buffer,
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
        ..TcpTuning::default()
    };
    EngineConfig {
        interfaces,
        proxies,
        client_tcp: side_tuning(&tcp.client),
        backend_tcp: side_tuning(&tcp.backend),
        mptcp_checksum_required: config.mptcp.checksum_required,
        max_connections: tcp.max_connections as usize,
        max_time_wait: tcp.max_time_wait as usize,
        time_wait_reuse: tcp.time_wait_reuse,
        local_ports: tcp.local_port_range.0..=tcp.local_port_range.1,
    }
}

#[cfg(test)]
mod tests;

/// The tests that run real DPDK (one EAL per process, so one test function); they need root.
#[cfg(test)]
mod dpdk_tests;
