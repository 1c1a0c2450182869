//! What building and freeing one outgoing frame costs when the payload is copied behind the
//! header and when it is chained (an indirect mbuf referencing the received one), by payload
//! size: the measurement behind [`mpterm_worker::CHAIN_THRESHOLD`]. And what the worker's
//! transmit path ([`mpterm_worker::Transmitter`], which holds what a full ring refuses) costs
//! over handing a bare batch to the port, on a `net_ring` loopback port.
//!
//! Run with `cargo bench -p mpterm-worker --bench frame_build` (as root, like the tests).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mpterm_dpdk::{
    alloc_frame_chained, alloc_frame_copied, Eal, Mbuf, MbufBatch, Mempool, Port, PortConfig,
    BURST_SIZE,
};
use mpterm_engine::Instant;
use mpterm_worker::Transmitter;

/// Ethernet + IPv4 + TCP with timestamps and a DSS option: a typical MPTCP data header.
const HEADER_LEN: u16 = 86;
const PAYLOAD_SIZES: [usize; 6] = [64, 128, 256, 512, 1024, 1448];

/// Received frames the cold variants cycle through: about 39 MB of mbufs, more than this
/// machine's 32 MiB L3, so each build reads payload that is no longer cached, as when the relay
/// sends data that arrived a while ago.
const COLD_SOURCES: usize = 16383;

fn frame_building(c: &mut Criterion) {
    let args: Vec<String> = [
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-shconf",
        "-l",
        "0",
        "--vdev=net_ring0",
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect();
    let eal = Eal::init(&args).expect("EAL");
    // Caches, as in mpterm, so that allocation and free take the per-lcore path.
    let pool =
        Mempool::new(&eal, "bench_pool", 4095, 256, Mempool::DEFAULT_DATA_ROOM).expect("pool");
    let indirect_pool = Mempool::new(&eal, "bench_indirect", 4095, 256, 0).expect("pool");
    let source_pool = Mempool::new(
        &eal,
        "bench_sources",
        COLD_SOURCES as u32,
        0,
        Mempool::DEFAULT_DATA_ROOM,
    )
    .expect("pool");
    let sources: Vec<_> = (0..COLD_SOURCES)
        .map(|index| {
            let mut source = Mbuf::alloc(&source_pool).expect("alloc");
            source.append(1600).expect("append").fill(index as u8);
            source.into_slice().expect("contiguous")
        })
        .collect();
    let header = [0xa5u8; HEADER_LEN as usize];
    let payload_range = |size: usize| HEADER_LEN as usize..HEADER_LEN as usize + size;

    let mut group = c.benchmark_group("build_and_free_frame");
    for size in PAYLOAD_SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        for cold in [false, true] {
            let temperature = if cold { "cold" } else { "hot" };
            let payloads: Vec<_> = sources[..if cold { COLD_SOURCES } else { 1 }]
                .iter()
                .map(|source| source.slice_clamped(payload_range(size)))
                .collect();
            let mut next = 0;
            let mut pick = move || {
                next = (next + 1) % payloads.len();
                payloads[next].clone()
            };
            group.bench_function(
                BenchmarkId::new(format!("copied_{temperature}"), size),
                |b| {
                    b.iter(|| {
                        let payload = pick();
                        let mut frame = alloc_frame_copied(&pool, HEADER_LEN, payload.as_slice())
                            .expect("frame");
                        frame.data_mut()[..header.len()].copy_from_slice(&header);
                        black_box(frame)
                    })
                },
            );
            group.bench_function(
                BenchmarkId::new(format!("chained_{temperature}"), size),
                |b| {
                    b.iter(|| {
                        let payload = pick();
                        let mut frame =
                            alloc_frame_chained(&pool, &indirect_pool, HEADER_LEN, &payload)
                                .expect("frame");
                        frame.data_mut()[..header.len()].copy_from_slice(&header);
                        black_box(frame)
                    })
                },
            );
        }
    }
    group.finish();

    transmit_path(c, &eal, &pool);
}

/// A burst of 32 header-only frames built, sent through `net_ring0` and received back: once as
/// a bare batch (`push`, `tx_burst`), once through the worker's `Transmitter` (`ready` and
/// `queue` each, `flush`). The ring never fills here, so the difference is the holding logic's
/// cost when it holds nothing, the common case.
fn transmit_path<'eal>(c: &mut Criterion, eal: &'eal Eal, pool: &Mempool<'eal>) {
    let mut port = Port::by_name(eal, "net_ring0").expect("net_ring0");
    port.configure(&PortConfig::default(), pool)
        .expect("configure");
    let mut rx = port.take_rx_queue(0).expect("rx");
    let mut tx = port.take_tx_queue(0).expect("tx");
    port.start().expect("start");
    let mut incoming = MbufBatch::new();

    let mut group = c.benchmark_group("transmit_burst_of_32");
    group.throughput(Throughput::Elements(BURST_SIZE as u64));
    let mut outgoing = MbufBatch::new();
    group.bench_function("bare_batch", |b| {
        b.iter(|| {
            for _ in 0..BURST_SIZE {
                let frame = alloc_frame_copied(pool, 60, &[]).expect("frame");
                outgoing.push(frame).expect("room");
            }
            black_box(tx.tx_burst(&mut outgoing));
            outgoing.clear();
            black_box(rx.rx_burst(&mut incoming));
            incoming.clear();
        });
    });
    let mut transmitter = Transmitter::new(vec![tx]);
    let now = Instant::from_nanos(1);
    group.bench_function("transmitter", |b| {
        b.iter(|| {
            for _ in 0..BURST_SIZE {
                if transmitter.ready(now) {
                    let frame = alloc_frame_copied(pool, 60, &[]).expect("frame");
                    transmitter.queue(now, 0, frame);
                }
            }
            transmitter.flush(now);
            black_box(rx.rx_burst(&mut incoming));
            incoming.clear();
        });
    });
    group.finish();
    assert_eq!(transmitter.dropped(), 0);
    drop(transmitter);
    port.stop().expect("stop");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = frame_building
}
criterion_main!(benches);
