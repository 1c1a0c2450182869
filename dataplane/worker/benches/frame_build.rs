//! What building and freeing one outgoing frame costs when the payload is copied behind the
//! header and when it is chained (an indirect mbuf referencing the received one), by payload
//! size: the measurement behind [`mpterm_worker::CHAIN_THRESHOLD`].
//!
//! Run with `cargo bench -p mpterm-worker --bench frame_build` (as root, like the tests).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mpterm_dpdk::{alloc_frame_chained, alloc_frame_copied, Eal, Mbuf, Mempool};

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
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = frame_building
}
criterion_main!(benches);
