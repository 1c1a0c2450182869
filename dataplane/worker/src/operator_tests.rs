//! The worker applying the operator's commands, on the in-memory link (no DPDK): through the
//! request channel at its housekeeping, and what each command does to the engine.

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
            })
            .collect(),
        proxies: vec![ProxyRule {
            listen: std::net::SocketAddrV4::new(address(0), 5000),
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
        address: Ipv4Addr::new(198, 18, interface as u8, 2),
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
