//! `mpterm-gen`, the MPTCP load generator: mpterm's client-role engine
//! ([`mpterm_engine::client::ClientEngine`]) over a real DPDK port, with connections, rate,
//! size, direction and duration from its command line, every byte verified against the seeded
//! [`crate::pattern`], and a `gen` report ([`summary::GenResult`]).
//!
//! ```text
//!   cli ──> dpdk::run ──> driver::Generator<Dpdk>: rx burst -> ClientEngine -> tx burst
//!                               │                         ^
//!                               └── app::LoadApp: schedule, upload from windows, download check
//! ```
//!
//! One job per module:
//! - [`cli`]: the command line and its checks;
//! - [`schedule`]: when connections open (at once or at a rate, capped, until a total or a
//!   duration);
//! - [`windows`]: the pattern in overlapping buffers that fit an mbuf, sliced for upload;
//! - [`check`]: a received stream identified and verified against the pattern;
//! - [`app`]: the application over the client engine: connections, data, how each ended;
//! - [`record`], [`series`], [`summary`]: per-connection records, goodput per interval, the
//!   report's result and summary line;
//! - [`driver`]: the loop over the worker's packet I/O (DPDK or in memory), with
//!   [`idle`]'s backoff;
//! - [`dpdk`]: EAL, pools and port, and the run;
//! - [`serve`]: the plain TCP server the lab runs as the far end;
//! - [`cpu`]: the process's CPU time.

pub mod app;
pub mod check;
pub mod cli;
pub mod cpu;
pub mod dpdk;
pub mod driver;
pub mod idle;
pub mod record;
pub mod schedule;
pub mod series;
pub mod serve;
pub mod summary;
pub mod windows;
