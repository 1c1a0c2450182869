//! Throughput of the Internet checksum (RFC 1071) and of the MPTCP DSS checksum (RFC 8684,
//! section 3.3.1) over the payload sizes a segment or a DSS mapping carries: a small segment,
//! a medium one, a standard MTU, a page and a jumbo frame.
//!
//! Run with `cargo bench -p mpterm-perf --bench checksum`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mpterm_wire::checksum::{dss_pseudo_header, internet_checksum};

const SIZES: [usize; 5] = [64, 512, 1500, 4096, 9000];

/// Deterministic, non-trivial payload bytes (a zero buffer could flatter an implementation).
fn payload(len: usize) -> Vec<u8> {
    let mut state: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

fn bench_internet_checksum(c: &mut Criterion) {
    let mut group = c.benchmark_group("internet_checksum");
    for size in SIZES {
        let data = payload(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &data, |b, data| {
            b.iter(|| internet_checksum(black_box(data)))
        });
    }
    group.finish();
}

fn bench_dss_checksum(c: &mut Criterion) {
    let mut group = c.benchmark_group("dss_checksum");
    for size in SIZES {
        let data = payload(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &data, |b, data| {
            b.iter(|| {
                let mut sum = dss_pseudo_header(
                    black_box(0x0123_4567_89ab_cdef),
                    black_box(1),
                    data.len() as u16,
                    0,
                );
                sum.add_bytes(black_box(data));
                sum.finish()
            })
        });
    }
    group.finish();
}

/// A DSS mapping that arrives in odd-sized pieces (here 1448-byte segments after a 1-byte
/// head), the case the streaming accumulator exists for.
fn bench_dss_checksum_chunked(c: &mut Criterion) {
    let mut group = c.benchmark_group("dss_checksum_chunked");
    for size in SIZES {
        let data = payload(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &data, |b, data| {
            b.iter(|| {
                let mut sum = dss_pseudo_header(1, 1, data.len() as u16, 0);
                let (head, tail) = data.split_at(1);
                sum.add_bytes(black_box(head));
                for chunk in tail.chunks(1448) {
                    sum.add_bytes(black_box(chunk));
                }
                sum.finish()
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_internet_checksum,
    bench_dss_checksum,
    bench_dss_checksum_chunked
);
criterion_main!(benches);
