//! The worker applying the operator's commands, on the in-memory link (no DPDK): through the
//! request channel at its housekeeping, what each command does to the engine, and what leaves
//! on the wire toward a live MPTCP connection (the engine's client role on the far end).

use std::net::Ipv4Addr;

use mpterm_control::operator::{
    operator_channel, AddressTarget, ApplyError, ConnectionsReport, Outcome, WorkerCommand,
};
use mpterm_control::StatsRegistry;
use mpterm_engine::{EngineConfig, InterfaceConfig, ProxyRule, TcpTuning};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::io::memory::{BufferPool, Memory, MemoryFrames, MemoryLink};

type MemoryEngine = Engine<crate::io::memory::PoolBuffer, ChaCha8Rng, SharedTokens>;

/// Interface `i` has address 198.18.i.2; interface 0 listens, the last one is the backend's.
fn engine_config(interfaces: u8) -> EngineConfig {
    let address = |i: u8| Ipv4Addr::new(198, 18, i, 2);
    EngineConfig {
        interfaces: (0..interfaces)
            .map(|i| InterfaceConfig {
                mac: [2, 0, 0, 0, 0, i + 1],
                address: address(i),
                prefix_len: 24,
                gateway: None,
                mtu: 1500,
                ipv6: None,
            })
            .collect(),
        proxies: vec![ProxyRule {
            listen: std::net::SocketAddrV4::new(address(0), 5000).into(),
            backend: std::net::SocketAddrV4::new(Ipv4Addr::new(198, 18, interfaces - 1, 9), 6000),
            scheduler: mpterm_engine::scheduler::SchedulerKind::default(),
        }],
        client_tcp: TcpTuning::default(),
        backend_tcp: TcpTuning::default(),
        mptcp_checksum_required: true,
        max_connections: 16,
        max_time_wait: 16,
        mptcp_max_subflows: 8,
        mptcp_allow_join_initial_address: true,
        time_wait_reuse: true,
        local_ports: 1024..=65535,
    }
}

fn engine(interfaces: u8) -> MemoryEngine {
    Engine::new(
        engine_config(interfaces),
        ChaCha8Rng::seed_from_u64(7),
        SharedTokens::new(Arc::new(TokenTable::new()), 0),
    )
}

fn target(interface: usize) -> AddressTarget {
    AddressTarget {
        interface,
        address: Ipv4Addr::new(198, 18, interface as u8, 2).into(),
    }
}

/// A worker over one in-memory port per interface.
fn memory_worker(interfaces: u8) -> Worker<Memory, ChaCha8Rng, SharedTokens> {
    let ports = (0..interfaces)
        .map(|_| {
            let (_link, end, _far) =
                MemoryLink::new(8, BufferPool::new(8, 1600), BufferPool::new(8, 1600));
            WorkerPort::<Memory>::new(end.rx, end.tx)
        })
        .collect();
    Worker::new(
        engine(interfaces),
        ports,
        MemoryFrames::new(BufferPool::new(8, 1600)),
        TscClock::calibrated(Duration::from_millis(10)),
        StatsRegistry::new(1).worker(0).unwrap(),
    )
}

#[test]
fn the_running_worker_answers_commands_at_its_housekeeping() {
    let mut worker = memory_worker(3);
    let (handle, requests) = operator_channel();
    worker.set_operator_requests(requests);
    let stop = Arc::new(AtomicBool::new(false));
    let operator = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let timeout = Duration::from_secs(5);
            let replies = [
                handle.execute(WorkerCommand::Announce(target(1)), timeout),
                handle.execute(
                    WorkerCommand::Backup {
                        target: target(1),
                        backup: true,
                    },
                    timeout,
                ),
                handle.execute(WorkerCommand::Withdraw(target(1)), timeout),
                handle.execute(WorkerCommand::Report, timeout),
                handle.execute(WorkerCommand::Announce(target(7)), timeout),
            ];
            stop.store(true, Ordering::Relaxed);
            replies
        })
    };
    worker.run_with(&stop, |_| {});
    let replies = operator.join().unwrap();
    assert_eq!(
        replies,
        [
            Ok(Outcome::Announced),
            // No connection holds a subflow on it yet.
            Ok(Outcome::BackupSet { subflows: 0 }),
            Ok(Outcome::Withdrawn { subflows_reset: 0 }),
            Ok(Outcome::Report(ConnectionsReport::default())),
            // The parser checks addresses against the configuration; the engine still
            // refuses an interface it does not have.
            Err(ApplyError::NoSuchInterface(7)),
        ]
    );
}

#[test]
fn a_worker_without_a_request_channel_serves_nothing() {
    let mut worker = memory_worker(2);
    assert_eq!(worker.serve_operator_requests(), 0);
    let (handle, requests) = operator_channel();
    worker.set_operator_requests(requests);
    let waiting =
        std::thread::spawn(move || handle.execute(WorkerCommand::Report, Duration::from_secs(5)));
    // The request is served only when the worker comes to it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut served = 0;
    while served == 0 && std::time::Instant::now() < deadline {
        served = worker.serve_operator_requests();
        std::thread::yield_now();
    }
    assert_eq!(served, 1);
    assert_eq!(
        waiting.join().unwrap(),
        Ok(Outcome::Report(ConnectionsReport::default()))
    );
}

#[test]
fn announce_and_withdraw_change_what_the_engine_announces() {
    // Ten interfaces: more addresses than the engine announces at once.
    let mut engine = engine(10);
    let now = Instant::ZERO;
    let limit = mpterm_engine::mptcp::address::MAX_ADDRESSES;
    for interface in 1..=limit {
        assert_eq!(
            operator::apply_command(
                &mut engine,
                now,
                &WorkerCommand::Announce(target(interface))
            ),
            Ok(Outcome::Announced)
        );
    }
    // Announcing one of them again changes nothing; one more is refused.
    assert_eq!(
        operator::apply_command(&mut engine, now, &WorkerCommand::Announce(target(1))),
        Ok(Outcome::Announced)
    );
    assert_eq!(
        operator::apply_command(&mut engine, now, &WorkerCommand::Announce(target(9))),
        Err(ApplyError::TooManyAddresses { limit })
    );
    // A withdrawn address is no longer announced: it leaves room for another.
    assert_eq!(
        operator::apply_command(&mut engine, now, &WorkerCommand::Withdraw(target(3))),
        Ok(Outcome::Withdrawn { subflows_reset: 0 })
    );
    assert_eq!(
        operator::apply_command(&mut engine, now, &WorkerCommand::Announce(target(9))),
        Ok(Outcome::Announced)
    );
    assert_eq!(
        operator::apply_command(&mut engine, now, &WorkerCommand::Announce(target(3))),
        Err(ApplyError::TooManyAddresses { limit })
    );
}

/// The worker with an MPTCP client (the engine's client role) on the far end of port 0; ports
/// 1 and 2 lead nowhere.
struct ClientLab {
    worker: Worker<Memory, ChaCha8Rng, SharedTokens>,
    client: mpterm_engine::ClientEngine<crate::io::memory::PoolBuffer, ChaCha8Rng>,
    client_rx: crate::io::memory::MemoryRx,
    client_tx: Transmitter<crate::io::memory::MemoryTx>,
    client_frames: MemoryFrames,
    link: MemoryLink,
    clock: TscClock,
}

impl ClientLab {
    fn new() -> ClientLab {
        let clock = TscClock::calibrated(Duration::from_millis(10));
        let pool = || BufferPool::new(256, 1600);
        let (link, client_end, worker_end) = MemoryLink::new(64, pool(), pool());
        let mut ports = vec![WorkerPort::<Memory>::new(worker_end.rx, worker_end.tx)];
        for _ in 1..3 {
            let (_link, end, _far) = MemoryLink::new(64, pool(), pool());
            ports.push(WorkerPort::<Memory>::new(end.rx, end.tx));
        }
        let worker = Worker::new(
            engine(3),
            ports,
            MemoryFrames::new(pool()),
            clock,
            StatsRegistry::new(1).worker(0).unwrap(),
        );
        let config = mpterm_engine::ClientConfig::new(
            InterfaceConfig {
                mac: [2, 0, 0, 0, 0, 0x10],
                address: Ipv4Addr::new(198, 18, 0, 1),
                prefix_len: 24,
                gateway: None,
                mtu: 1500,
                ipv6: None,
            },
            std::net::SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 5000),
        );
        let client = mpterm_engine::ClientEngine::new(config, ChaCha8Rng::seed_from_u64(8))
            .expect("a valid client configuration");
        ClientLab {
            worker,
            client,
            client_rx: client_end.rx,
            client_tx: Transmitter::new(vec![client_end.tx]),
            client_frames: MemoryFrames::new(pool()),
            link,
            clock,
        }
    }

    fn now(&self) -> Instant {
        Instant::from_nanos(self.clock.elapsed().as_nanos() as u64)
    }

    /// One turn of the client, the link both ways and the worker (with its housekeeping).
    fn turn(&mut self) {
        let now = self.now();
        self.client_rx.rx_burst();
        let client = &mut self.client;
        self.client_rx
            .drain(|frame| client.handle_frame(now, 0, frame));
        while self.client.poll_event().is_some() {}
        if self.client.poll_timeout().is_some_and(|at| at <= now) {
            self.client.handle_timeout(now);
        }
        while self.client_tx.ready(now) {
            let Some(transmit) = self.client.poll_transmit(now) else {
                break;
            };
            if let Some(frame) = self
                .client_frames
                .build(transmit.header.as_slice(), transmit.payload.as_ref())
            {
                self.client_tx.queue(now, 0, frame);
            }
        }
        self.client_tx.flush(now);
        self.link.carry();
        self.worker.poll_once();
        self.worker.serve_operator_requests();
        self.link.carry();
    }

    /// Turns until `done` holds, for at most five seconds.
    fn run_until(&mut self, what: &str, mut done: impl FnMut(&Self) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !done(self) {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            self.turn();
        }
    }
}

#[test]
fn commands_reach_a_live_mptcp_connection() {
    let mut lab = ClientLab::new();
    let (handle, requests) = operator_channel();
    lab.worker.set_operator_requests(requests);
    // Interface 1 is announced before the client connects, as `interface.announce` does.
    assert_eq!(
        operator::apply_command(
            lab.worker.engine_mut(),
            Instant::ZERO,
            &WorkerCommand::Announce(target(1))
        ),
        Ok(Outcome::Announced)
    );
    let now = lab.now();
    lab.client.connect(now).expect("a connection");
    // ADD_ADDR leaves once the connection is fully established (RFC 8684 section 3.4.1).
    lab.run_until("the ADD_ADDR", |lab| {
        lab.worker.engine().counters().mptcp_add_addr_sent >= 1
    });

    let operator = std::thread::spawn(move || {
        let timeout = Duration::from_secs(5);
        [
            handle.execute(
                WorkerCommand::Backup {
                    target: target(0),
                    backup: true,
                },
                timeout,
            ),
            handle.execute(WorkerCommand::Withdraw(target(1)), timeout),
            handle.execute(WorkerCommand::Report, timeout),
        ]
    });
    lab.run_until("the operator's replies", |_| operator.is_finished());
    let replies = operator.join().unwrap();
    // The connection's one subflow is on interface 0's address; none is on interface 1's,
    // which was only announced.
    assert_eq!(replies[0], Ok(Outcome::BackupSet { subflows: 1 }));
    assert_eq!(replies[1], Ok(Outcome::Withdrawn { subflows_reset: 0 }));
    match &replies[2] {
        Ok(Outcome::Report(report)) => {
            assert_eq!(report.connections, 1);
            assert_eq!(report.subflows.len(), 1);
            let subflow = &report.subflows[0];
            assert!(subflow.backup, "{subflow}");
            assert_eq!(subflow.state, "Established");
            assert_eq!(subflow.local.ip(), Ipv4Addr::new(198, 18, 0, 2));
        }
        other => panic!("expected a report, got {other:?}"),
    }
    // What the commands queued leaves on the wire: one MP_PRIO (section 3.3.8), one
    // REMOVE_ADDR for the announced address (section 3.4.2).
    lab.run_until("MP_PRIO and REMOVE_ADDR on the wire", |lab| {
        let counters = lab.worker.engine().counters();
        counters.mptcp_prio_sent >= 1 && counters.mptcp_remove_addr_sent >= 1
    });
    for _ in 0..100 {
        lab.turn();
    }
    let counters = lab.worker.engine().counters();
    assert_eq!(counters.mptcp_prio_sent, 1);
    assert_eq!(counters.mptcp_remove_addr_sent, 1);
}
