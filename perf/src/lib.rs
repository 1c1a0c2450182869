//! Benchmarks of mpterm. The criterion benches live in `benches/`:
//!
//! - `checksum`: the Internet checksum and the DSS checksum, 64 to 9000 bytes, in bytes/s;
//! - `token`: MPTCP key-to-token (and IDSN) derivations per second.
//!
//! Run one with `cargo bench -p mpterm-perf --bench NAME`.
