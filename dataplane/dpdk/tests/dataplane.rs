//! Runs DPDK for real: EAL, mempool, ring loopback port, bursts, mbuf slices, chained frames,
//! and (with a veth pair) af_packet transmit of a chained frame.
//!
//! The EAL can be initialised once per process, so everything runs in one `#[test]`, scenario
//! after scenario.

use std::ops::Bound;
use std::process::Command;
use std::time::Duration;

use mpterm_dpdk::{
    alloc_frame_chained, alloc_frame_copied, DpdkError, Eal, Mbuf, MbufBatch, MbufSlice, Mempool,
    Port, PortConfig, RxQueue, TscClock, TxQueue, BURST_SIZE,
};

/// Local experimental ethertype (IEEE 802 "local experimental 1"), so that test frames cannot be
/// confused with anything the kernel sends on the veth.
const TEST_ETHERTYPE: [u8; 2] = [0x88, 0xb5];
const ETHERNET_HEADER_LEN: u16 = 14;

/// A veth pair that is deleted when the guard drops, also when the test fails.
struct VethPair {
    a: String,
    b: String,
}

impl VethPair {
    fn create() -> VethPair {
        let pid = std::process::id() % 100_000;
        let pair = VethPair {
            a: format!("mpdk{pid}a"),
            b: format!("mpdk{pid}b"),
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

fn test_frame_header(frame: &mut Mbuf, source: [u8; 6]) {
    let header = &mut frame.data_mut()[..usize::from(ETHERNET_HEADER_LEN)];
    header[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    header[6..12].copy_from_slice(&source);
    header[12..14].copy_from_slice(&TEST_ETHERTYPE);
}

fn packet_bytes(mbuf: &Mbuf) -> Vec<u8> {
    mbuf.segments().flatten().copied().collect()
}

/// Polls `rx` until `count` frames carrying the test ethertype arrived (others are dropped) or
/// a second passed.
fn receive_test_frames<'eal>(rx: &mut RxQueue<'eal>, count: usize) -> Vec<Mbuf<'eal>> {
    let mut frames = Vec::new();
    let mut batch = MbufBatch::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while frames.len() < count && std::time::Instant::now() < deadline {
        rx.rx_burst(&mut batch);
        for mbuf in batch.drain() {
            if mbuf.data().get(12..14) == Some(&TEST_ETHERTYPE[..]) {
                frames.push(mbuf);
            }
        }
    }
    frames
}

#[test]
fn dpdk_scenarios() {
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
    assert!(matches!(
        Eal::init(&args),
        Err(DpdkError::EalAlreadyInitialised)
    ));
    assert_eq!(
        eal.current_lcore(),
        Some(0),
        "the main thread runs on lcore 0 (-l 0)"
    );
    assert_eq!(Port::count(&eal), 3);

    let pool = Mempool::new(&eal, "test_pool", 4095, 0, Mempool::DEFAULT_DATA_ROOM).expect("pool");
    let indirect_pool = Mempool::new(&eal, "test_indirect", 255, 0, 0).expect("indirect pool");
    assert!(
        matches!(
            Mempool::new(&eal, "test_pool", 63, 0, 256),
            Err(DpdkError::Call { .. })
        ),
        "pool names are unique"
    );
    assert_eq!(pool.in_use(), 0);

    ring_loopback(&eal, &pool, &indirect_pool);
    af_packet_chained_transmit(&eal, &pool, &indirect_pool, &veth);
    tsc_clock(&eal);
    unknown_port(&eal);
    registered_worker_thread(&eal, &pool);
    assert_eq!(pool.in_use(), 0, "every test mbuf went back to the pool");
}

fn registered_worker_thread(eal: &Eal, pool: &Mempool<'_>) {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                assert_eq!(eal.current_lcore(), None, "a plain thread has no lcore id");
                let lcore = eal.register_current_thread().expect("register");
                assert_ne!(lcore, 0, "lcore 0 is the main thread's");
                assert_eq!(eal.current_lcore(), Some(lcore));
                let mbuf = Mbuf::alloc(pool).expect("alloc on a worker thread");
                assert_eq!(pool.in_use(), 1);
                drop(mbuf);
            })
            .join()
            .expect("worker thread");
    });
}

fn ring_loopback<'eal>(eal: &'eal Eal, pool: &Mempool<'eal>, indirect_pool: &Mempool<'eal>) {
    // Without arguments net_ring creates one ring per queue pair and uses it for both directions,
    // so whatever is sent on queue 0 is received on queue 0.
    let mut port = Port::by_name(eal, "net_ring0").expect("net_ring0");
    port.configure(&PortConfig::default(), pool)
        .expect("configure");
    assert!(
        port.take_tx_queue(1).is_err(),
        "only one tx queue was configured"
    );
    let mut rx = port.take_rx_queue(0).expect("rx queue 0");
    let mut tx = port.take_tx_queue(0).expect("tx queue 0");
    assert!(port.take_rx_queue(0).is_err(), "a queue is handed out once");
    // A second handle on the port could hand out queue 0 again, and reconfiguring would free
    // the driver's queues under `rx` and `tx`: both are refused.
    assert!(matches!(
        Port::by_name(eal, "net_ring0"),
        Err(DpdkError::PortAlreadyOpen(_))
    ));
    assert!(matches!(
        Port::by_id(eal, port.id()),
        Err(DpdkError::PortAlreadyOpen(_))
    ));
    assert!(matches!(
        port.configure(&PortConfig::default(), pool),
        Err(DpdkError::QueuesInUse(_))
    ));
    port.start().expect("start");
    assert!(port.link_status().expect("link").up);
    let mac = port.mac_address().expect("mac");
    let in_use_after_start = pool.in_use();

    // A full burst of copied frames goes out and comes back byte for byte.
    let mut batch = MbufBatch::new();
    for index in 0..BURST_SIZE {
        let payload = vec![index as u8; 100 + index];
        let mut frame = alloc_frame_copied(pool, ETHERNET_HEADER_LEN, &payload).expect("frame");
        test_frame_header(&mut frame, mac);
        assert!(batch.push(frame).is_ok());
    }
    assert!(batch.is_full());
    assert_eq!(tx.tx_burst(&mut batch), BURST_SIZE);
    assert!(batch.is_empty());
    let mut received = MbufBatch::new();
    assert_eq!(rx.rx_burst(&mut received), BURST_SIZE);
    for (index, frame) in received.drain().enumerate() {
        assert_eq!(frame.pkt_len() as usize, 14 + 100 + index);
        assert_eq!(&frame.data()[6..12], &mac);
        assert!(frame.data()[14..].iter().all(|&byte| byte == index as u8));
    }
    let stats = port.stats().expect("stats");
    assert_eq!(stats.opackets, BURST_SIZE as u64);
    assert_eq!(stats.ipackets, BURST_SIZE as u64);
    assert_eq!(
        pool.in_use(),
        in_use_after_start,
        "drained frames went back to the pool"
    );

    mbuf_editing(pool);
    slices_and_chains(pool, indirect_pool, &mut rx, &mut tx, mac);
    full_ring_keeps_unsent(pool, &mut rx, &mut tx, mac);
    assert_eq!(pool.in_use(), in_use_after_start, "no mbuf leaked");
    assert_eq!(
        indirect_pool.in_use(),
        0,
        "indirect mbufs were detached and freed"
    );
    port.stop().expect("stop");
}

/// Fills the ring until a burst is only partly taken, then checks that the untaken frames stay in
/// the batch, in order, at the front.
fn full_ring_keeps_unsent<'eal>(
    pool: &Mempool<'eal>,
    rx: &mut RxQueue<'eal>,
    tx: &mut TxQueue<'eal>,
    mac: [u8; 6],
) {
    let in_use_before = pool.in_use();
    let mut batch = MbufBatch::new();
    let mut sent_total = 0usize;
    let mut partial = None;
    for _ in 0..200 {
        for _ in batch.len()..BURST_SIZE {
            let sequence = (sent_total + batch.len()) as u32;
            let mut frame = alloc_frame_copied(pool, ETHERNET_HEADER_LEN, &sequence.to_be_bytes())
                .expect("frame");
            test_frame_header(&mut frame, mac);
            batch.push(frame).expect("room");
        }
        let sent = tx.tx_burst(&mut batch);
        sent_total += sent;
        if sent < BURST_SIZE {
            partial = Some(sent);
            break;
        }
    }
    let sent = partial.expect("the ring filled up within 200 bursts");
    assert_eq!(
        batch.len(),
        BURST_SIZE - sent,
        "unsent frames stay in the batch"
    );
    let first_unsent = u32::from_be_bytes(
        batch.drain().next().unwrap().data()[14..18]
            .try_into()
            .unwrap(),
    );
    assert_eq!(
        first_unsent as usize, sent_total,
        "the first unsent frame is at the front"
    );
    assert!(batch.is_empty(), "a dropped drain frees the rest");

    let mut received = MbufBatch::new();
    let mut expected_sequence = 0u32;
    while rx.rx_burst(&mut received) > 0 {
        for frame in received.drain() {
            let sequence = u32::from_be_bytes(frame.data()[14..18].try_into().unwrap());
            assert_eq!(sequence, expected_sequence, "frames come back in order");
            expected_sequence += 1;
        }
    }
    assert_eq!(expected_sequence as usize, sent_total);
    assert_eq!(pool.in_use(), in_use_before);
}

fn mbuf_editing(pool: &Mempool) {
    let mut mbuf = Mbuf::alloc(pool).expect("alloc");
    assert_eq!(mbuf.pkt_len(), 0);
    let headroom = mbuf.headroom();
    assert_eq!(headroom, 128, "RTE_PKTMBUF_HEADROOM");
    mbuf.append(4).expect("append").copy_from_slice(b"data");
    mbuf.prepend(4).expect("prepend").copy_from_slice(b"head");
    assert_eq!(mbuf.data(), b"headdata");
    assert!(mbuf.adj(2));
    assert!(mbuf.trim(1));
    assert_eq!(mbuf.data(), b"addat");
    assert!(!mbuf.adj(6), "cannot remove more than the data");
    assert!(
        mbuf.prepend(headroom + 10).is_none(),
        "prepend beyond the headroom fails"
    );
    assert!(
        mbuf.append(mbuf.tailroom() + 1).is_none(),
        "append beyond the tailroom fails"
    );
    assert_eq!(
        mbuf.data(),
        b"addat",
        "failed edits leave the data unchanged"
    );

    let mut tail = Mbuf::alloc(pool).expect("alloc tail");
    tail.append(3).expect("append").copy_from_slice(b"xyz");
    mbuf.chain(tail).expect("chain");
    assert_eq!(mbuf.segment_count(), 2);
    assert_eq!(mbuf.pkt_len(), 8);
    assert_eq!(packet_bytes(&mbuf), b"addatxyz");
    assert!(
        mbuf.append(1).is_none(),
        "no append into a chained packet's last segment"
    );
    let chained = mbuf
        .into_slice()
        .expect_err("a chained packet is not one slice");
    drop(chained);
}

fn slices_and_chains<'eal>(
    pool: &Mempool<'eal>,
    indirect_pool: &Mempool<'eal>,
    rx: &mut RxQueue<'eal>,
    tx: &mut TxQueue<'eal>,
    mac: [u8; 6],
) {
    let payload: Vec<u8> = (0..200u8).collect();
    let mut frame = alloc_frame_copied(pool, ETHERNET_HEADER_LEN, &payload).expect("frame");
    test_frame_header(&mut frame, mac);
    let mut batch = MbufBatch::new();
    batch.push(frame).expect("push");
    assert_eq!(tx.tx_burst(&mut batch), 1);
    let mut received = receive_test_frames(rx, 1);
    assert_eq!(received.len(), 1);
    let in_use_with_frame = pool.in_use();

    // Slices share the received mbuf: clone and sub-slice take references, drop releases them.
    let whole = received.pop().unwrap().into_slice().expect("contiguous");
    assert_eq!(whole.refcount(), 1);
    assert_eq!(whole.len(), 214);
    let tcp_payload = whole.get(14..).expect("within the frame");
    assert_eq!(whole.refcount(), 2);
    assert_eq!(tcp_payload.as_slice(), &payload[..]);
    let copy = tcp_payload.clone();
    let middle = copy.slice_clamped(50..60);
    assert_eq!(whole.refcount(), 4);
    assert_eq!(middle.as_slice(), &payload[50..60]);
    assert!(
        copy.get(150..201).is_none(),
        "out-of-range sub-slice is refused"
    );
    assert!(copy.get(200..).is_some_and(|empty| empty.is_empty()));
    assert_eq!(whole.refcount(), 4, "a refused get took no reference");
    clamped_slices_never_panic(&copy, &payload);
    assert_eq!(
        whole.refcount(),
        4,
        "the clamped views released their references"
    );
    drop(copy);
    drop(whole);
    assert_eq!(middle.refcount(), 2);
    assert_eq!(
        pool.in_use(),
        in_use_with_frame,
        "the mbuf stays while a slice holds it"
    );

    // Zero-copy transmit: header mbuf + indirect mbuf attached to the slice's bytes.
    let mut chained =
        alloc_frame_chained(pool, indirect_pool, ETHERNET_HEADER_LEN, &middle).expect("chained");
    assert_eq!(middle.refcount(), 3, "the indirect mbuf holds a reference");
    assert_eq!(chained.segment_count(), 2);
    assert_eq!(
        chained.data().len(),
        14,
        "data_mut covers the header segment only"
    );
    test_frame_header(&mut chained, mac);
    assert_eq!(indirect_pool.in_use(), 1);
    batch.push(chained).expect("push");
    assert_eq!(tx.tx_burst(&mut batch), 1);
    let looped = receive_test_frames(rx, 1);
    assert_eq!(looped.len(), 1);
    let bytes = packet_bytes(&looped[0]);
    assert_eq!(&bytes[14..], &payload[50..60]);
    assert_eq!(looped[0].pkt_len(), 24);
    drop(looped);
    assert_eq!(
        middle.refcount(),
        2,
        "freeing the chain released the indirect reference"
    );
    assert_eq!(indirect_pool.in_use(), 0);
    drop(tcp_payload);
    drop(middle);

    // Unsent mbufs stay in the batch: a burst larger than the queue's free space keeps the rest.
    let empty = alloc_frame_chained(pool, indirect_pool, 20, &received_empty_slice(pool))
        .expect("header-only frame");
    assert_eq!(empty.segment_count(), 1);
    assert_eq!(empty.pkt_len(), 20);
}

/// `slice_clamped` on a 200-byte view holding `expected`: the bytes of the range that lie within
/// the view, cut at its end; inverted ranges and ranges past the end give empty views; bounds at
/// `usize::MAX` do not overflow. Every view is a reference on the one mbuf.
fn clamped_slices_never_panic(view: &MbufSlice<'_>, expected: &[u8]) {
    assert_eq!(view.len(), 200);
    let refcount = view.refcount();
    let past_end = view.slice_clamped(150..201);
    assert_eq!(past_end.as_slice(), &expected[150..200], "cut at the end");
    assert_eq!(view.slice_clamped(..201).as_slice(), expected);
    assert_eq!(view.slice_clamped(..=usize::MAX).as_slice(), expected);
    assert_eq!(view.slice_clamped(190..).as_slice(), &expected[190..]);
    let (from, to) = (60, 50);
    let inverted = view.slice_clamped(from..to);
    assert!(inverted.is_empty(), "an inverted range gives an empty view");
    assert!(view.slice_clamped(200..200).is_empty());
    assert!(view.slice_clamped(250..300).is_empty(), "beyond the end");
    assert!(view.slice_clamped(250..).is_empty());
    let after_max = (Bound::Excluded(usize::MAX), Bound::Unbounded);
    assert!(view.slice_clamped(after_max).is_empty(), "no overflow");
    assert!(view.slice_clamped(from..=to).is_empty());
    assert_eq!(
        view.refcount(),
        refcount + 2,
        "two views kept, the rest dropped"
    );
    drop((past_end, inverted));
    assert_eq!(view.refcount(), refcount);
}

/// An empty slice of a fresh mbuf (exercises the header-only path of `alloc_frame_chained`).
fn received_empty_slice<'eal>(pool: &Mempool<'eal>) -> MbufSlice<'eal> {
    Mbuf::alloc(pool)
        .expect("alloc")
        .into_slice()
        .expect("contiguous")
}

fn af_packet_chained_transmit<'eal>(
    eal: &'eal Eal,
    pool: &Mempool<'eal>,
    indirect_pool: &Mempool<'eal>,
    veth: &VethPair,
) {
    let mut sender = Port::by_name(eal, "net_af_packet0").expect("net_af_packet0");
    let mut receiver = Port::by_name(eal, "net_af_packet1").expect("net_af_packet1");
    for port in [&mut sender, &mut receiver] {
        port.configure(&PortConfig::default(), pool)
            .expect("configure af_packet");
        port.start().expect("start af_packet");
    }
    receiver.enable_promiscuous().expect("promiscuous");
    let mut tx = sender.take_tx_queue(0).expect("tx");
    let mut rx = receiver.take_rx_queue(0).expect("rx");
    let mac = sender.mac_address().expect("mac");

    // The payload comes from a received-style mbuf: build it, turn it into a slice, chain it.
    let mut source = Mbuf::alloc(pool).expect("alloc");
    source
        .append(1000)
        .expect("append")
        .iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = (i * 7) as u8);
    let expected: Vec<u8> = source.data()[100..900].to_vec();
    let slice = source
        .into_slice()
        .expect("contiguous")
        .get(100..900)
        .expect("within the frame");
    let mut frame =
        alloc_frame_chained(pool, indirect_pool, ETHERNET_HEADER_LEN, &slice).expect("frame");
    test_frame_header(&mut frame, mac);
    let mut batch = MbufBatch::new();
    batch.push(frame).expect("push");
    assert_eq!(tx.tx_burst(&mut batch), 1);
    assert_eq!(
        indirect_pool.in_use(),
        0,
        "af_packet copies and frees the chain at once"
    );
    assert_eq!(slice.refcount(), 1);

    let frames = receive_test_frames(&mut rx, 1);
    assert_eq!(
        frames.len(),
        1,
        "the chained frame crossed the veth {} -> {}",
        veth.a,
        veth.b
    );
    let bytes = packet_bytes(&frames[0]);
    assert_eq!(bytes.len(), 814);
    assert_eq!(&bytes[6..12], &mac);
    assert_eq!(
        &bytes[14..],
        &expected[..],
        "payload segment transmitted byte for byte"
    );
    assert!(sender.stats().expect("stats").opackets >= 1);
    drop(frames);
    drop(slice);
    for port in [&mut sender, &mut receiver] {
        port.stop().expect("stop");
    }
}

fn tsc_clock(eal: &Eal) {
    let clock = TscClock::new(eal);
    assert!(clock.hz() > 1_000_000, "TSC runs at MHz rates");
    let before = clock.elapsed();
    std::thread::sleep(Duration::from_millis(20));
    let slept = clock.elapsed() - before;
    assert!(slept >= Duration::from_millis(19), "slept {slept:?}");
    assert!(slept < Duration::from_secs(2), "slept {slept:?}");
    let second = clock.duration_to_cycles(Duration::from_secs(1));
    assert_eq!(second, clock.hz());
    assert_eq!(clock.cycles_to_duration(second), Duration::from_secs(1));
}

fn unknown_port(eal: &Eal) {
    let error = Port::by_name(eal, "net_nonexistent9").expect_err("no such port");
    assert!(error.to_string().contains("net_nonexistent9"), "{error}");
    assert!(matches!(
        Port::by_id(eal, 999),
        Err(DpdkError::InvalidPortId(999))
    ));
}
