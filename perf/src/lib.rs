//! Benchmarks of mpterm and what they share.
//!
//! - [`report`]: the one JSON result format (`mpterm-perf/1`) and its typed results;
//! - [`pattern`]: seeded stream data that costs a slice to produce and a `memcmp` to check;
//! - [`backend_peer`]: a cheap acknowledging sink and source standing in for the backend
//!   server, as a sans-IO state machine over Ethernet frames;
//! - [`plot`]: SVG figures of reports (the `mpterm-plot` binary);
//! - [`gen`]: the MPTCP load generator over DPDK ports (the `mpterm-gen` binary);
//! - [`linkem`]: the lab's link emulator between two DPDK ports (the `mpterm-linkem` binary).
//!
//! The criterion benches live in `benches/`:
//! - `checksum`: the Internet checksum and the DSS checksum, 64 to 9000 bytes, in bytes/s;
//! - `token`: MPTCP key-to-token (and IDSN) derivations per second.
//!
//! Run one with `cargo bench -p mpterm-perf --bench NAME`. `perf/README.md` says how each
//! figure is reproduced.

pub mod backend_peer;
pub mod gen;
pub mod linkem;
pub mod pattern;
pub mod pipeline;
pub mod plot;
pub mod report;
