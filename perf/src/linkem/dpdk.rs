//! The emulator over two DPDK ports: one loop on the EAL's main lcore that receives a burst on
//! each port, asks that direction's [`ImpairedLink`] what becomes of each frame, holds the mbuf
//! (no copy) in the direction's [`HoldQueue`] until it is due, and transmits what is due on the
//! other port.
//!
//! Memory is allocated once, before the loop: one mbuf pool for both ports (its size bounds the
//! frames held, `--frames`), and each direction's hold queue with room for as many. Per frame the
//! loop allocates nothing and copies nothing, except for a duplicated frame, whose second copy
//! is a fresh mbuf filled with the frame's bytes (duplicates are rare; an indirect mbuf would
//! share the data but needs a second pool for little gain).
//!
//! By default the loop polls without pause, one core at 100 %; `--idle-sleep` makes it sleep
//! when nothing arrived and nothing is due within the sleep, which leaves the core to the
//! programs under test on a small machine.
//!
//! A direction with a rewrite plan (`--rewrite`) changes the planned segments in place, in the
//! received mbuf, once the impairment has let them through (a lost frame is not counted).
//!
//! Cutting a path at run time: SIGUSR1 sets both directions down, SIGUSR2 restores them
//! (frames already held still arrive). `ip link set ... down` on a veth works as well.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mpterm_dpdk::{
    DpdkError, Eal, Mbuf, MbufBatch, Mempool, Port, PortConfig, PortStats, RxQueue, TscClock,
    TxQueue, BURST_SIZE,
};

use super::cli::LinkemConfig;
use super::hold::HoldQueue;
use super::impairment::{ImpairedLink, LinkCounters, Verdict};
use super::rewrite::PayloadRewriter;

/// Per-lcore cache of the pool: one lcore, a few bursts.
const POOL_CACHE: u32 = 128;
/// What that cache may keep beyond its size (DPDK lets it grow to 1.5 times).
const CACHE_SLACK: u32 = POOL_CACHE + POOL_CACHE / 2;

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("DPDK: {0}")]
    Dpdk(#[from] DpdkError),
    #[error("port {port}: {source}")]
    Port { port: String, source: DpdkError },
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
}

/// What the loop did in one direction beyond the impairment's own counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForwardCounters {
    /// Frames handed to the transmitting port.
    pub sent: u64,
    /// Frames dropped because the hold queue was full (the pool bounds it first, normally).
    pub dropped_hold_full: u64,
    /// Second copies not made: no mbuf left, or a chained frame.
    pub duplicate_not_made: u64,
    /// TCP segments whose payload was rewritten (`--rewrite`).
    pub rewritten: u64,
}

/// One direction's state, what it did, and the port counters at the end.
#[derive(Debug, Clone, Copy)]
pub struct DirectionSummary {
    pub name: &'static str,
    pub link: LinkCounters,
    pub forward: ForwardCounters,
    pub held: usize,
}

impl DirectionSummary {
    /// One line of counters.
    pub fn line(&self) -> String {
        let link = &self.link;
        format!(
            "{}: offered {} ({} B), passed {}, sent {}, held {}, dropped: down {}, queue {}, \
             random {}, burst {}, hold-full {}; reordered {}, duplicated {} ({} not made), \
             rewritten {}",
            self.name,
            link.offered_frames,
            link.offered_bytes,
            link.passed_frames,
            self.forward.sent,
            self.held,
            link.dropped_down,
            link.dropped_queue,
            link.dropped_random,
            link.dropped_burst,
            self.forward.dropped_hold_full,
            link.reordered,
            link.duplicated,
            self.forward.duplicate_not_made,
            self.forward.rewritten,
        )
    }
}

/// What a run leaves behind.
#[derive(Debug)]
pub struct RunSummary {
    pub directions: [DirectionSummary; 2],
    pub ports: [Option<PortStats>; 2],
}

/// One direction: frames received on one port leave on the other.
struct Direction<'eal> {
    name: &'static str,
    link: ImpairedLink,
    rewriter: PayloadRewriter,
    rx: RxQueue<'eal>,
    tx: TxQueue<'eal>,
    held: HoldQueue<Mbuf<'eal>>,
    /// Due frames the transmitting port has not taken yet, in order.
    outgoing: MbufBatch<'eal>,
    received: MbufBatch<'eal>,
    counters: ForwardCounters,
}

impl<'eal> Direction<'eal> {
    /// Receives one burst and gives each frame its fate; returns how many frames came.
    fn receive(&mut self, now_ns: u64, pool: &Mempool<'eal>) -> usize {
        let received_now = self.rx.rx_burst(&mut self.received);
        if received_now == 0 {
            return 0;
        }
        let Direction {
            link,
            rewriter,
            held,
            received,
            counters,
            ..
        } = self;
        for mut frame in received.drain() {
            let verdict = link.offer(now_ns, frame.pkt_len());
            if verdict != Verdict::Drop && rewriter.process(frame.data_mut()) {
                counters.rewritten = rewriter.rewritten();
            }
            match verdict {
                Verdict::Drop => drop(frame),
                Verdict::DeliverAt(due) => hold(held, counters, due, frame),
                Verdict::Duplicate(first, second) => {
                    let copy = copy_of(&frame, pool);
                    hold(held, counters, first, frame);
                    match copy {
                        Some(copy) => hold(held, counters, second, copy),
                        None => counters.duplicate_not_made += 1,
                    }
                }
            }
        }
        received_now
    }

    /// Whether nothing needs the loop before `until_ns`: no frame waits for the port, and none
    /// is due by then.
    fn idle_until(&self, until_ns: u64) -> bool {
        self.outgoing.is_empty() && self.held.next_due().is_none_or(|due| due > until_ns)
    }

    /// Transmits the frames due (a burst at most per turn); those the port refuses wait.
    fn transmit(&mut self, now_ns: u64) {
        while !self.outgoing.is_full() {
            let Some(frame) = self.held.pop_due(now_ns) else {
                break;
            };
            // Cannot fail: the batch is not full.
            let _ = self.outgoing.push(frame);
        }
        if !self.outgoing.is_empty() {
            self.counters.sent += self.tx.tx_burst(&mut self.outgoing) as u64;
        }
    }

    fn summary(&self) -> DirectionSummary {
        DirectionSummary {
            name: self.name,
            link: *self.link.counters(),
            forward: self.counters,
            held: self.held.len() + self.outgoing.len(),
        }
    }
}

fn hold<'eal>(
    held: &mut HoldQueue<Mbuf<'eal>>,
    counters: &mut ForwardCounters,
    due_ns: u64,
    frame: Mbuf<'eal>,
) {
    if held.push(due_ns, frame).is_err() {
        counters.dropped_hold_full += 1;
    }
}

/// A second mbuf with the frame's bytes, for a duplicate.
fn copy_of<'eal>(frame: &Mbuf<'eal>, pool: &Mempool<'eal>) -> Option<Mbuf<'eal>> {
    if !frame.is_contiguous() {
        return None;
    }
    let mut copy = Mbuf::alloc(pool)?;
    copy.append(frame.data_len())?.copy_from_slice(frame.data());
    Some(copy)
}

/// The signals the loop reacts to.
struct Signals {
    stop: Arc<AtomicBool>,
    cut: Arc<AtomicBool>,
    restore: Arc<AtomicBool>,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
        let signals = Signals {
            stop: Arc::new(AtomicBool::new(false)),
            cut: Arc::new(AtomicBool::new(false)),
            restore: Arc::new(AtomicBool::new(false)),
        };
        for signal in [SIGINT, SIGTERM] {
            // A second SIGINT or SIGTERM while the first is handled ends the process at once.
            signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&signals.stop))?;
            signal_hook::flag::register(signal, Arc::clone(&signals.stop))?;
        }
        signal_hook::flag::register(SIGUSR1, Arc::clone(&signals.cut))?;
        signal_hook::flag::register(SIGUSR2, Arc::clone(&signals.restore))?;
        Ok(signals)
    }
}

/// Opens, configures and starts a port; hands back its queues.
fn open_port<'eal>(
    eal: &'eal Eal,
    name: &str,
    pool: &Mempool<'eal>,
) -> Result<(Port<'eal>, RxQueue<'eal>, TxQueue<'eal>), RunError> {
    let port_error = |source| RunError::Port {
        port: name.to_owned(),
        source,
    };
    let mut port = Port::by_name(eal, name).map_err(port_error)?;
    port.configure(&PortConfig::default(), pool)
        .map_err(port_error)?;
    port.start().map_err(port_error)?;
    // A bridge forwards frames for every address.
    port.enable_promiscuous().map_err(port_error)?;
    let rx = port.take_rx_queue(0).map_err(port_error)?;
    let tx = port.take_tx_queue(0).map_err(port_error)?;
    Ok((port, rx, tx))
}

/// Runs the emulator until SIGINT or SIGTERM (or `--duration`), printing counters to stderr.
pub fn run(config: &LinkemConfig) -> Result<RunSummary, RunError> {
    let signals = Signals::install().map_err(RunError::Signals)?;
    let eal = Eal::init(&config.eal_args)?;
    let port_config = PortConfig::default();
    let ring_mbufs = 2 * u32::from(port_config.rx_descriptors);
    let pool_mbufs = config.frames + ring_mbufs + 4 * BURST_SIZE as u32 + CACHE_SLACK;
    let pool = Mempool::new(
        &eal,
        "linkem",
        pool_mbufs,
        POOL_CACHE,
        Mempool::DEFAULT_DATA_ROOM,
    )?;
    let (port_a, rx_a, tx_a) = open_port(&eal, &config.ports[0], &pool)?;
    let (port_b, rx_b, tx_b) = open_port(&eal, &config.ports[1], &pool)?;
    let held_frames = config.frames as usize;
    let mut directions = [
        Direction {
            name: "a-to-b",
            link: ImpairedLink::new(config.a_to_b, config.seed.wrapping_mul(2)),
            rewriter: PayloadRewriter::new(config.a_to_b_rewrite),
            rx: rx_a,
            tx: tx_b,
            held: HoldQueue::with_capacity(held_frames),
            outgoing: MbufBatch::new(),
            received: MbufBatch::new(),
            counters: ForwardCounters::default(),
        },
        Direction {
            name: "b-to-a",
            link: ImpairedLink::new(config.b_to_a, config.seed.wrapping_mul(2) + 1),
            rewriter: PayloadRewriter::new(config.b_to_a_rewrite),
            rx: rx_b,
            tx: tx_a,
            held: HoldQueue::with_capacity(held_frames),
            outgoing: MbufBatch::new(),
            received: MbufBatch::new(),
            counters: ForwardCounters::default(),
        },
    ];

    let clock = TscClock::new(&eal);
    let nanos = |duration: Duration| duration.as_nanos() as u64;
    let stats_every_ns = nanos(config.stats_interval);
    let mut next_stats_ns = stats_every_ns;
    let end_ns = config.duration.map(nanos);
    eprintln!(
        "mpterm-linkem: {} <-> {}; SIGUSR1 cuts the link, SIGUSR2 restores it",
        config.ports[0], config.ports[1]
    );
    let idle_sleep_ns = nanos(config.idle_sleep);
    while !signals.stop.load(Ordering::Relaxed) {
        let now_ns = nanos(clock.elapsed());
        let mut received = 0;
        for direction in &mut directions {
            received += direction.receive(now_ns, &pool);
            direction.transmit(now_ns);
        }
        // One system call per idle turn, never per frame: it gives the core back to the
        // programs under test, at the cost of up to the sleep (plus timer slack) of latency.
        if idle_sleep_ns > 0
            && received == 0
            && directions
                .iter()
                .all(|direction| direction.idle_until(now_ns + idle_sleep_ns))
        {
            std::thread::sleep(config.idle_sleep);
        }
        if signals.cut.swap(false, Ordering::Relaxed) {
            directions.iter_mut().for_each(|d| d.link.set_down(true));
            eprintln!("mpterm-linkem: link cut (SIGUSR1)");
        }
        if signals.restore.swap(false, Ordering::Relaxed) {
            directions.iter_mut().for_each(|d| d.link.set_down(false));
            eprintln!("mpterm-linkem: link restored (SIGUSR2)");
        }
        if stats_every_ns > 0 && now_ns >= next_stats_ns {
            next_stats_ns += stats_every_ns;
            for direction in &directions {
                eprintln!("{}", direction.summary().line());
            }
        }
        if end_ns.is_some_and(|end| now_ns >= end) {
            break;
        }
    }
    let summary = RunSummary {
        directions: [directions[0].summary(), directions[1].summary()],
        ports: [port_a.stats().ok(), port_b.stats().ok()],
    };
    // Held mbufs go back to the pool before the ports stop and the pool and EAL go.
    drop(directions);
    for mut port in [port_a, port_b] {
        let _ = port.stop();
    }
    Ok(summary)
}
