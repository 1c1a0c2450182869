//! Costs of the per-packet primitives the worker calls, on a `net_ring` loopback port (no NIC,
//! no kernel): a 32-frame tx+rx round trip, building frames by copy and by chaining, and taking
//! and releasing a payload reference.
//!
//! Run with `cargo bench -p mpterm-dpdk` (as root, like the tests).

use std::hint::black_box;
use std::sync::OnceLock;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mpterm_dpdk::{
    alloc_frame_chained, alloc_frame_copied, Eal, Mbuf, MbufBatch, Mempool, Port, PortConfig,
    BURST_SIZE,
};

const HEADER_LEN: u16 = 54;
const PAYLOAD: [u8; 1400] = [0x5a; 1400];

/// DPDK state shared by all benchmarks. The EAL can start once per process; it lives in a
/// static of its own, never dropped (statics are not), so the pools can borrow it for `'static`.
struct Fixture {
    eal: &'static Eal,
    pool: Mempool<'static>,
    indirect_pool: Mempool<'static>,
}

fn fixture() -> &'static Fixture {
    static EAL: OnceLock<Eal> = OnceLock::new();
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
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
        let eal = EAL.get_or_init(|| Eal::init(&args).expect("EAL"));
        let pool =
            Mempool::new(eal, "bench_pool", 4095, 256, Mempool::DEFAULT_DATA_ROOM).expect("pool");
        let indirect_pool =
            Mempool::new(eal, "bench_indirect", 1023, 64, 0).expect("indirect pool");
        Fixture {
            eal,
            pool,
            indirect_pool,
        }
    })
}

fn ring_round_trip(c: &mut Criterion) {
    let fixture = fixture();
    let mut port = Port::by_name(fixture.eal, "net_ring0").expect("net_ring0");
    port.configure(&PortConfig::default(), &fixture.pool)
        .expect("configure");
    let mut rx = port.take_rx_queue(0).expect("rx");
    let mut tx = port.take_tx_queue(0).expect("tx");
    port.start().expect("start");
    let mut outgoing = MbufBatch::new();
    let mut incoming = MbufBatch::new();

    let mut group = c.benchmark_group("ring_loopback");
    group.throughput(Throughput::Elements(BURST_SIZE as u64));
    group.bench_function("copy_tx_rx_free_burst_of_32", |b| {
        b.iter(|| {
            for _ in 0..BURST_SIZE {
                let frame =
                    alloc_frame_copied(&fixture.pool, HEADER_LEN, &PAYLOAD[..64]).expect("frame");
                let _ = outgoing.push(frame);
            }
            black_box(tx.tx_burst(&mut outgoing));
            outgoing.clear();
            black_box(rx.rx_burst(&mut incoming));
            incoming.clear();
        });
    });
    group.finish();
    port.stop().expect("stop");
}

fn frame_building(c: &mut Criterion) {
    let fixture = fixture();
    let mut source = Mbuf::alloc(&fixture.pool).expect("alloc");
    source
        .append(PAYLOAD.len() as u16)
        .expect("append")
        .copy_from_slice(&PAYLOAD);
    let payload = source.into_slice().expect("contiguous");

    let mut group = c.benchmark_group("frame");
    group.bench_function("copied_1400", |b| {
        b.iter(|| {
            black_box(
                alloc_frame_copied(&fixture.pool, HEADER_LEN, payload.as_slice()).expect("frame"),
            )
        });
    });
    group.bench_function("chained_1400", |b| {
        b.iter(|| {
            black_box(
                alloc_frame_chained(&fixture.pool, &fixture.indirect_pool, HEADER_LEN, &payload)
                    .expect("frame"),
            )
        });
    });
    group.bench_function("slice_clone_drop", |b| {
        b.iter(|| black_box(payload.slice_clamped(100..900)));
    });
    group.finish();
}

criterion_group!(benches, ring_round_trip, frame_building);
criterion_main!(benches);
