//! The bodies of mpterm's fuzz targets, as plain functions over a byte slice.
//!
//! Each function here is one target: it must never panic on any input, and it checks the
//! properties written on it with `assert!`, so that a broken property is a crash the fuzzer
//! reports. The nightly-only cargo-fuzz crate (`dataplane/fuzz`) wraps every function in a
//! `fuzz_target!` of the same name; this crate builds on stable, and its integration test
//! replays every committed corpus file (`dataplane/fuzz/corpus/NAME/`) through the matching
//! function, so `cargo test` keeps the corpus passing.
//!
//! - [`wire`]: every parser of `mpterm-wire` that reads bytes from the network: no panic, every
//!   accessor of a checked view is safe, and what parses re-emits and re-parses to the same
//!   representation. IPv6 and ICMPv6 share the `ipv4_packet` and `icmp_packet` targets (see
//!   [`wire`]), so the fuzzing run takes no longer for them.
//! - [`engine`]: `Engine::handle_frame` fed sequences of frames around a live MPTCP
//!   connection, with invariants on everything the engine emits and counts.
//! - [`seeds`]: the seed inputs, made from the captured Linux frames in
//!   `dataplane/wire/testdata/` and from scripted connection scenarios.
#![forbid(unsafe_code)]

pub mod byte_reader;
pub mod engine;
pub mod pcap;
pub mod seeds;
pub mod wire;

/// One fuzz target: its name (the cargo-fuzz binary and the corpus directory) and its body.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target, in the order `tests/fuzz.sh` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "ethernet_frame",
        run: wire::ethernet_frame,
    },
    Target {
        name: "arp_packet",
        run: wire::arp_packet,
    },
    Target {
        name: "ipv4_packet",
        run: wire::ip_packet,
    },
    Target {
        name: "icmp_packet",
        run: wire::icmp_message,
    },
    Target {
        name: "tcp_segment",
        run: wire::tcp_segment,
    },
    Target {
        name: "tcp_options",
        run: wire::tcp_options,
    },
    Target {
        name: "mptcp_option",
        run: wire::mptcp_option,
    },
    Target {
        name: "checksum",
        run: wire::checksum,
    },
    Target {
        name: "engine_frames",
        run: engine::engine_frames,
    },
];

/// The target named `name`, if there is one.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().copied().find(|target| target.name == name)
}
