//! The worker on real DPDK: virtual devices, real mempools and mbufs.
//!
//! The EAL starts once per process, so everything runs in one `#[test]`, scenario after
//! scenario. The pools have no per-lcore cache, so `in_use()` is exact and every scenario can
//! check that no mbuf leaked.

use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant as WallClock;

use mpterm_control::StatsRegistry;
use mpterm_dpdk::{
    alloc_frame_copied, Eal, Mbuf, MbufBatch, MbufSlice, Mempool, Port, PortConfig, RxQueue,
    TscClock, BURST_SIZE,
};
use mpterm_engine::Payload;
use rand_chacha::rand_core::SeedableRng;

use super::*;

const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];
/// Our address on the veth link (interface 0 of the test configuration).
const APPLIANCE_ADDRESS: [u8; 4] = [198, 18, 200, 2];
/// The address the test's own port claims when it asks.
const PEER_ADDRESS: [u8; 4] = [198, 18, 200, 1];

/// A veth pair without addresses, deleted when the guard drops, also when the test fails.
struct VethPair {
    a: String,
    b: String,
}

impl VethPair {
    fn create() -> VethPair {
        let pid = std::process::id() % 100_000;
        let pair = VethPair {
            a: format!("mpwk{pid}a"),
            b: format!("mpwk{pid}b"),
        };
        run(&[
            "ip", "link", "add", &pair.a, "type", "veth", "peer", "name", &pair.b,
        ]);
        for name in [&pair.a, &pair.b] {
            // No IPv6 on these links, so the kernel sends nothing on them by itself.
            let _ = Command::new("sysctl")
                .args(["-qw", &format!("net.ipv6.conf.{name}.disable_ipv6=1")])
                .status();
            run(&["ip", "link", "set", name, "up"]);
        }
        pair
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.a]).status();
    }
}

fn run(command: &[&str]) {
    let status = Command::new(command[0])
        .args(&command[1..])
        .status()
        .unwrap_or_else(|error| panic!("{command:?}: {error}"));
    assert!(status.success(), "{command:?} failed: {status}");
}

/// A contiguous mbuf from `pool` holding `bytes`, as the port would hand it over.
fn received<'eal>(pool: &Mempool<'eal>, bytes: &[u8]) -> MbufSlice<'eal> {
    let mut mbuf = Mbuf::alloc(pool).expect("an mbuf");
    mbuf.append(bytes.len() as u16)
        .expect("room")
        .copy_from_slice(bytes);
    mbuf.into_slice().expect("one segment")
}

fn frame_bytes(frame: &Mbuf) -> Vec<u8> {
    frame.segments().flatten().copied().collect()
}

#[test]
fn worker_on_real_dpdk() {
    let veth = VethPair::create();
    let args: Vec<String> = [
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-shconf",
        "-l",
        "0",
        "--vdev=net_ring0",
        &format!("--vdev=net_af_packet0,iface={}", veth.a),
        &format!("--vdev=net_af_packet1,iface={}", veth.b),
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect();
    let eal = Eal::init(&args).expect("EAL init with --no-huge and virtual devices");
    let rx_pool =
        Mempool::new(&eal, "wt_rx", 4095, 0, Mempool::DEFAULT_DATA_ROOM).expect("rx pool");
    let tx_pool =
        Mempool::new(&eal, "wt_tx", 2047, 0, Mempool::DEFAULT_DATA_ROOM).expect("tx pool");
    let indirect_pool = Mempool::new(&eal, "wt_indirect", 1023, 0, 0).expect("indirect pool");
    let pools = TxPools {
        header: &tx_pool,
        indirect: &indirect_pool,
    };

    payload_is_a_shared_view(&rx_pool);
    copied_and_chained_frames_carry_the_same_bytes(pools, &rx_pool);
    frames_a_full_ring_refuses_are_held_and_all_delivered(&eal, pools);
    arp_request_is_answered_and_counters_are_published(&eal, pools, &rx_pool);

    for pool in [&rx_pool, &tx_pool, &indirect_pool] {
        assert_eq!(pool.in_use(), 0, "every mbuf went back to its pool");
    }
}

fn payload_is_a_shared_view(pool: &Mempool<'_>) {
    let bytes: Vec<u8> = (0..200u8).collect();
    let payload = MbufPayload::new(received(pool, &bytes));
    assert_eq!(payload.as_ref(), &bytes[..]);
    assert_eq!(payload.len(), 200);

    let middle = payload.slice(10..60);
    assert_eq!(middle.as_ref(), &bytes[10..60]);
    let inner = middle.slice(5..7);
    assert_eq!(inner.as_ref(), &[15, 16]);
    // Slices and clones are references on the one mbuf, not copies.
    assert_eq!(payload.as_mbuf_slice().refcount(), 3);
    let copy = payload.clone();
    assert_eq!(payload.as_mbuf_slice().refcount(), 4);
    assert_eq!(pool.in_use(), 1);
    drop((copy, middle, inner));
    assert_eq!(payload.as_mbuf_slice().refcount(), 1);

    // `Payload::slice` is total: what of the range lies within the view, clamped; empty for
    // an inverted range or one past the end. A panic here would bring the worker down.
    assert_eq!(payload.slice(150..300).as_ref(), &bytes[150..]);
    assert_eq!(payload.slice(0..usize::MAX).as_ref(), &bytes[..]);
    let (from, to) = (150, 100);
    assert!(payload.slice(from..to).is_empty(), "inverted");
    assert!(payload.slice(200..200).is_empty());
    assert!(payload.slice(250..260).is_empty(), "past the end");
    let middle = payload.slice(10..60);
    assert_eq!(
        middle.slice(40..1000).as_ref(),
        &bytes[50..60],
        "clamped to the slice"
    );
    assert!(middle.slice(60..70).is_empty());
    drop(middle);
    assert_eq!(
        payload.as_mbuf_slice().refcount(),
        1,
        "every clamped view released its reference"
    );
    drop(payload);
    assert_eq!(pool.in_use(), 0);
}

fn copied_and_chained_frames_carry_the_same_bytes<'eal>(
    pools: TxPools<'eal>,
    rx_pool: &Mempool<'eal>,
) {
    let header: Vec<u8> = (0..54u8).map(|byte| byte ^ 0xa5).collect();
    for payload_len in [
        0,
        1,
        CHAIN_THRESHOLD - 1,
        CHAIN_THRESHOLD,
        CHAIN_THRESHOLD + 1,
        1460,
    ] {
        // A received frame whose payload starts after 54 header bytes, like a TCP segment.
        let mut wire = vec![0xeeu8; 54];
        wire.extend((0..payload_len).map(|index| (index * 7 % 251) as u8));
        let received_frame = received(rx_pool, &wire);
        let payload = received_frame.get(54..).expect("within the frame");

        let frame = build_frame(pools, &header, Some(&payload)).expect("a frame");
        let mut expected = header.clone();
        expected.extend_from_slice(payload.as_slice());
        assert_eq!(
            frame_bytes(&frame),
            expected,
            "payload of {payload_len} bytes"
        );
        assert_eq!(frame.pkt_len() as usize, expected.len());

        let chained = payload_len >= CHAIN_THRESHOLD;
        assert_eq!(
            frame.segment_count(),
            if chained { 2 } else { 1 },
            "payload of {payload_len} bytes"
        );
        // Zero copy: a chained frame holds a reference on the received mbuf.
        assert_eq!(
            received_frame.refcount(),
            if chained { 3 } else { 2 },
            "payload of {payload_len} bytes"
        );
        drop(frame);
        assert_eq!(received_frame.refcount(), 2);
    }
    let header_only = build_frame(pools, &header, None).expect("a frame");
    assert_eq!(frame_bytes(&header_only), header);
    drop(header_only);
    assert_eq!(pools.header.in_use(), 0);
    assert_eq!(pools.indirect.in_use(), 0);
    assert_eq!(rx_pool.in_use(), 0);
}

/// `net_ring0` loops its transmit ring back to its receive ring, and nothing drains it but this
/// test: the ring fills, the transmitter holds what it refuses (one burst and one frame aside)
/// and says "not ready" (the worker would stop pulling from the engine), and once the test
/// drains the ring every frame arrives, once and in order, none dropped, no mbuf leaked.
fn frames_a_full_ring_refuses_are_held_and_all_delivered<'eal>(
    eal: &'eal Eal,
    pools: TxPools<'eal>,
) {
    let mut port = Port::by_name(eal, "net_ring0").expect("net_ring0");
    port.configure(&PortConfig::default(), pools.header)
        .expect("configure ring");
    port.start().expect("start ring");
    let mut rx = port.take_rx_queue(0).expect("rx");
    let mut transmitter = Transmitter::new(vec![port.take_tx_queue(0).expect("tx")]);
    let baseline = pools.header.in_use();
    // Enough for the ring (net_ring's default holds 1023 frames) to fill twice over.
    const FRAMES: u32 = 3000;
    let now = Instant::from_nanos(1);
    let mut received = Vec::with_capacity(FRAMES as usize);
    fn drain(rx: &mut RxQueue<'_>, received: &mut Vec<u32>) {
        let mut batch = MbufBatch::new();
        while rx.rx_burst(&mut batch) > 0 {
            for frame in batch.drain() {
                let sequence = frame.data()[14..18].try_into().expect("4 bytes");
                received.push(u32::from_be_bytes(sequence));
            }
        }
    }
    let mut refusals = 0;
    for sequence in 0..FRAMES {
        while !transmitter.ready(now) {
            refusals += 1;
            assert_eq!(
                transmitter.held_frames(),
                BURST_SIZE + 1,
                "one burst pending and one frame aside, no more"
            );
            assert!(transmitter.is_holding(now), "the worker would not sleep");
            drain(&mut rx, &mut received);
        }
        // An Ethernet header's worth of filler, then the sequence number.
        let mut header = [0x11; 18];
        header[14..].copy_from_slice(&sequence.to_be_bytes());
        let frame = build_frame(pools, &header, None).expect("a frame");
        transmitter.queue(now, 0, frame);
    }
    while transmitter.held_frames() > 0 {
        transmitter.ready(now);
        transmitter.flush(now);
        drain(&mut rx, &mut received);
    }
    drain(&mut rx, &mut received);

    assert!(
        refusals >= 2,
        "the ring filled (and was drained) more than once"
    );
    assert_eq!(
        received,
        (0..FRAMES).collect::<Vec<_>>(),
        "all, once, in order"
    );
    assert_eq!(transmitter.dropped(), 0, "tx_dropped_full stays 0");
    assert_eq!(pools.header.in_use(), baseline, "no mbuf leaked");
    drop(transmitter);
    port.stop().expect("stop ring");
}

/// An ARP request for the appliance's address sent from `net_af_packet1` over the veth pair:
/// the worker on `net_af_packet0` receives it, the engine answers, the worker sends the reply
/// (RFC 826), and the counters the control thread reads show it.
fn arp_request_is_answered_and_counters_are_published<'eal>(
    eal: &'eal Eal,
    pools: TxPools<'eal>,
    rx_pool: &Mempool<'eal>,
) {
    let mut appliance_port = Port::by_name(eal, "net_af_packet0").expect("net_af_packet0");
    let mut peer_port = Port::by_name(eal, "net_af_packet1").expect("net_af_packet1");
    for port in [&mut appliance_port, &mut peer_port] {
        port.configure(&PortConfig::default(), rx_pool)
            .expect("configure af_packet");
        port.start().expect("start af_packet");
    }
    let appliance_mac = appliance_port.mac_address().expect("mac");
    let peer_mac = peer_port.mac_address().expect("mac");
    let mut peer_rx = peer_port.take_rx_queue(0).expect("rx");
    let mut peer_tx = peer_port.take_tx_queue(0).expect("tx");

    // One interface: the test configuration without its backend side.
    let config = mpterm_control::Config::from_toml_str(
        &super::tests::TEST_CONFIG
            .replace("198.19.200.1/24", "198.18.201.1/24")
            .replace("198.19.200.3:6000", "198.18.201.3:6000"),
    )
    .expect("config");
    let mut engine_config = engine_config(&config, &[appliance_mac, [2, 0, 0, 0, 0, 9]]);
    engine_config.interfaces.truncate(1);
    engine_config
        .proxies
        .retain(|proxy| proxy.backend.ip().octets() != [198, 18, 201, 3]);
    let engine = Engine::new(
        engine_config,
        rand_chacha::ChaCha20Rng::seed_from_u64(7),
        SharedTokens::new(Arc::new(TokenTable::new()), 0),
    );
    let registry = StatsRegistry::new(1);
    let mut worker = Worker::new(
        engine,
        vec![WorkerPort::<Dpdk>::new(
            DpdkRx::new(appliance_port.take_rx_queue(0).expect("rx")),
            appliance_port.take_tx_queue(0).expect("tx"),
        )],
        pools,
        TscClock::new(eal),
        registry.worker(0).expect("worker 0"),
    );

    let mut request = Vec::with_capacity(60);
    request.extend_from_slice(&[0xff; 6]);
    request.extend_from_slice(&peer_mac);
    request.extend_from_slice(&ETHERTYPE_ARP);
    request.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]); // Ethernet/IPv4, request
    request.extend_from_slice(&peer_mac);
    request.extend_from_slice(&PEER_ADDRESS);
    request.extend_from_slice(&[0; 6]);
    request.extend_from_slice(&APPLIANCE_ADDRESS);
    request.resize(60, 0);
    let mut outgoing = MbufBatch::new();
    outgoing
        .push(alloc_frame_copied(pools.header, 0, &request).expect("request frame"))
        .expect("room");
    assert_eq!(peer_tx.tx_burst(&mut outgoing), 1);

    let mut reply = None;
    let mut incoming = MbufBatch::new();
    let deadline = WallClock::now() + Duration::from_secs(2);
    while reply.is_none() && WallClock::now() < deadline {
        worker.poll_once();
        peer_rx.rx_burst(&mut incoming);
        for frame in incoming.drain() {
            if frame.data().get(12..14) == Some(&ETHERTYPE_ARP[..]) {
                reply = Some(frame.data().to_vec());
            }
        }
    }
    let reply = reply.expect("an ARP reply within 2 s");
    assert_eq!(&reply[0..6], &peer_mac, "to the asker");
    assert_eq!(&reply[6..12], &appliance_mac, "from the appliance's port");
    assert_eq!(&reply[14..22], &[0, 1, 8, 0, 6, 4, 0, 2], "an ARP reply");
    assert_eq!(&reply[22..28], &appliance_mac, "sender hardware address");
    assert_eq!(
        &reply[28..32],
        &APPLIANCE_ADDRESS,
        "sender protocol address"
    );
    assert_eq!(&reply[32..38], &peer_mac, "target hardware address");
    assert_eq!(&reply[38..42], &PEER_ADDRESS, "target protocol address");

    // Counters reach the registry only when published, not per packet.
    assert_eq!(registry.total().arp_requests_answered, 0);
    worker.publish();
    let published = registry.total();
    assert_eq!(published.arp_requests_answered, 1);
    assert!(published.rx_packets >= 1, "{published:?}");
    assert!(published.tx_packets >= 1, "{published:?}");
    assert_eq!(published.tx_dropped_full, 0);

    // `run` returns soon after the stop flag is set, and publishes on the way out.
    let stop = AtomicBool::new(false);
    let started = WallClock::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            stop.store(true, Ordering::Relaxed);
        });
        worker.run(&stop);
    });
    let ran_for = started.elapsed();
    assert!(ran_for >= Duration::from_millis(300), "{ran_for:?}");
    assert!(ran_for < Duration::from_millis(1300), "{ran_for:?}");
    assert_eq!(registry.total().arp_requests_answered, 1);

    drop(worker);
    drop(outgoing);
    for port in [&mut appliance_port, &mut peer_port] {
        port.stop().expect("stop af_packet");
    }
}
