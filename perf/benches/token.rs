//! MPTCP key-to-token derivations per second (RFC 8684 section 3.1: token and IDSN from
//! SHA-256 of the key, with `ring`). Every accepted MPTCP connection pays one derivation for our
//! key and one for the client's, so this bounds the connection set-up rate per core.
//!
//! Run: `cargo bench -p mpterm-perf --bench token`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use mpterm_engine::mptcp_keys::derive_from_key;

fn key_to_token(c: &mut Criterion) {
    let mut group = c.benchmark_group("mptcp_key_derivation");
    group.throughput(Throughput::Elements(1));
    let mut key = 0x0123_4567_89ab_cdefu64;
    group.bench_function("derive_from_key", |b| {
        b.iter(|| {
            // A different key each time, as for real connections.
            key = key.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            black_box(derive_from_key(black_box(key)))
        })
    });
    group.finish();
}

criterion_group!(benches, key_to_token);
criterion_main!(benches);
