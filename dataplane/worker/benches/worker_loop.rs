//! What one turn of the worker's loop costs on a DPDK port: the figure behind the claim that the
//! packet-I/O seam adds nothing on the DPDK path.
//!
//! Two `net_memif` ports, the two ends of one in-process link (server and client role on one
//! abstract socket). Each iteration the bench's peer end (untimed) sends a burst of 32 ICMP echo
//! requests to the appliance's address; then, timed, the worker runs `poll_once` once: it
//! receives the 32 requests, runs them through the engine and transmits 32 echo replies (built
//! frames, copied payload); the peer (untimed) receives and frees them. So one iteration is 32
//! frames received and 32 transmitted through the real rx burst, mbuf wrapping, engine, frame
//! building and tx burst. (`net_ring` cannot make a two-port link by devargs in 22.11: a
//! `nodeaction` names the device, so two ports cannot attach to one ring.)
//!
//! Run with `cargo bench -p mpterm-worker --bench worker_loop` (as root, like the tests).

use std::sync::Arc;
use std::time::{Duration, Instant as WallClock};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mpterm_control::{StatsRegistry, TokenTable};
use mpterm_dpdk::{
    alloc_frame_copied, Eal, MbufBatch, Mempool, Port, PortConfig, TscClock, BURST_SIZE,
};
use mpterm_engine::{Engine, EngineConfig, InterfaceConfig, TcpTuning};
use mpterm_worker::{Dpdk, DpdkRx, SharedTokens, TxPools, Worker, WorkerPort};
use rand_chacha::rand_core::SeedableRng;

const APPLIANCE_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const APPLIANCE_ADDRESS: [u8; 4] = [198, 18, 210, 2];
const PEER_ADDRESS: [u8; 4] = [198, 18, 210, 1];

/// An ICMP echo request from the peer to the appliance, 98 bytes like `ping`'s default.
fn echo_request(sequence: u16) -> Vec<u8> {
    let mut frame = Vec::with_capacity(98);
    frame.extend_from_slice(&APPLIANCE_MAC);
    frame.extend_from_slice(&PEER_MAC);
    frame.extend_from_slice(&[0x08, 0x00]);
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&84u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 1;
    ip[12..16].copy_from_slice(&PEER_ADDRESS);
    ip[16..20].copy_from_slice(&APPLIANCE_ADDRESS);
    let sum = internet_checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    frame.extend_from_slice(&ip);
    let mut icmp = vec![0u8; 64];
    icmp[0] = 8;
    icmp[4..6].copy_from_slice(&0x4d50u16.to_be_bytes());
    icmp[6..8].copy_from_slice(&sequence.to_be_bytes());
    for (index, byte) in icmp[8..].iter_mut().enumerate() {
        *byte = index as u8;
    }
    let sum = internet_checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    frame.extend_from_slice(&icmp);
    frame
}

fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn worker_loop(c: &mut Criterion) {
    // An abstract socket (memif's default) named by the process: nothing is left on disk and
    // two runs never collide.
    let socket = format!("/run/mpterm-worker-loop-{}.sock", std::process::id());
    let args: Vec<String> = [
        "--no-huge".to_owned(),
        "-m".to_owned(),
        "256".to_owned(),
        "--no-pci".to_owned(),
        "--no-shconf".to_owned(),
        "-l".to_owned(),
        "0".to_owned(),
        format!("--vdev=net_memif0,role=server,socket={socket}"),
        format!("--vdev=net_memif1,role=client,socket={socket}"),
    ]
    .to_vec();
    let eal = Eal::init(&args).expect("EAL");
    let rx_pool = Mempool::new(&eal, "wl_rx", 8191, 256, Mempool::DEFAULT_DATA_ROOM).expect("pool");
    let tx_pool = Mempool::new(&eal, "wl_tx", 4095, 256, Mempool::DEFAULT_DATA_ROOM).expect("pool");
    let indirect_pool = Mempool::new(&eal, "wl_indirect", 4095, 256, 0).expect("pool");
    let peer_pool =
        Mempool::new(&eal, "wl_peer", 4095, 256, Mempool::DEFAULT_DATA_ROOM).expect("pool");
    let mut appliance_port = Port::by_name(&eal, "net_memif0").expect("net_memif0");
    let mut peer_port = Port::by_name(&eal, "net_memif1").expect("net_memif1");
    for port in [&mut appliance_port, &mut peer_port] {
        port.configure(&PortConfig::default(), &rx_pool)
            .expect("configure");
    }
    let appliance_rx = appliance_port.take_rx_queue(0).expect("rx");
    let appliance_tx = appliance_port.take_tx_queue(0).expect("tx");
    let mut peer_tx = peer_port.take_tx_queue(0).expect("tx");
    let mut peer_rx = peer_port.take_rx_queue(0).expect("rx");
    for port in [&mut appliance_port, &mut peer_port] {
        port.start().expect("start");
    }
    // memif connects its two ends over its control socket in the EAL's interrupt thread.
    let deadline = WallClock::now() + Duration::from_secs(5);
    while ![&appliance_port, &peer_port]
        .iter()
        .all(|port| port.link_status().is_ok_and(|status| status.up))
    {
        assert!(WallClock::now() < deadline, "the memif link came up");
        std::thread::sleep(Duration::from_millis(10));
    }

    let config = EngineConfig {
        interfaces: vec![InterfaceConfig {
            mac: APPLIANCE_MAC,
            address: APPLIANCE_ADDRESS.into(),
            prefix_len: 24,
            gateway: None,
            mtu: 1500,
            ipv6: None,
        }],
        proxies: Vec::new(),
        client_tcp: TcpTuning::default(),
        backend_tcp: TcpTuning::default(),
        mptcp_checksum_required: true,
        max_connections: 16,
        max_time_wait: 16,
        mptcp_max_subflows: 8,
        mptcp_allow_join_initial_address: true,
        time_wait_reuse: true,
        local_ports: 49152..=65535,
    };
    let engine = Engine::new(
        config,
        rand_chacha::ChaCha20Rng::seed_from_u64(1),
        SharedTokens::new(Arc::new(TokenTable::new()), 0),
    );
    let registry = StatsRegistry::new(1);
    let mut worker = Worker::new(
        engine,
        vec![WorkerPort::<Dpdk>::new(
            DpdkRx::new(appliance_rx),
            appliance_tx,
        )],
        TxPools {
            header: &tx_pool,
            indirect: &indirect_pool,
        },
        TscClock::new(&eal),
        registry.worker(0).expect("worker 0"),
    );

    let requests: Vec<Vec<u8>> = (0..BURST_SIZE as u16).map(echo_request).collect();
    let mut outgoing = MbufBatch::new();
    let mut incoming = MbufBatch::new();
    let mut group = c.benchmark_group("worker_loop");
    group.throughput(Throughput::Elements(BURST_SIZE as u64));
    group.bench_function("icmp_echo_burst_of_32", |b| {
        b.iter_custom(|iterations| {
            let mut timed = Duration::ZERO;
            for _ in 0..iterations {
                for request in &requests {
                    let frame = alloc_frame_copied(&peer_pool, 0, request).expect("frame");
                    outgoing.push(frame).expect("room");
                }
                let sent = peer_tx.tx_burst(&mut outgoing);
                assert_eq!(sent, BURST_SIZE, "the ring takes the burst");
                let started = WallClock::now();
                let moved = worker.poll_once();
                timed += started.elapsed();
                assert_eq!(moved, 2 * BURST_SIZE, "32 received, 32 replies sent");
                let mut replies = 0;
                let deadline = WallClock::now() + Duration::from_secs(1);
                while replies < BURST_SIZE {
                    assert!(
                        WallClock::now() < deadline,
                        "{replies} of 32 replies arrived"
                    );
                    replies += peer_rx.rx_burst(&mut incoming);
                    incoming.clear();
                    // Frames a full ring refused go out on the next turn.
                    worker.poll_once();
                }
            }
            timed
        });
    });
    group.finish();
    let answered = worker.engine().counters().icmp_echo_answered;
    assert!(answered > 0, "the engine answered the requests");
    drop(worker);
    drop(outgoing);
    drop(incoming);
    for port in [&mut appliance_port, &mut peer_port] {
        port.stop().expect("stop");
    }
}

criterion_group!(benches, worker_loop);
criterion_main!(benches);
