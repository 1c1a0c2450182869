//! The sans-IO TCP/MPTCP engine of mpterm.
//!
//! It takes frames and the current time in, and hands frames, the next timer deadline and
//! counters out. It contains no DPDK, no clock, no threads and no `unsafe`.
//!
//! Call order for a driver, once per loop iteration:
//! 1. [`Engine::handle_frame`] for every received frame;
//! 2. [`Engine::handle_timeout`] when `now` has reached [`Engine::poll_timeout`];
//! 3. [`Engine::poll_transmit`] until it returns `None`, or until the driver cannot send more
//!    (a full transmit ring): frames not polled stay in the engine, which builds connection
//!    segments only when polled, so stopping early is how a driver pushes back. The engine's
//!    own replies (ARP, ICMP, RSTs) wait in a bounded backlog meanwhile.
#![forbid(unsafe_code)]

pub mod client;
mod config;
mod connection;
mod counters;
mod engine;
pub mod mptcp;
pub mod mptcp_keys;
mod neighbor;
mod payload;
mod queue;
pub mod scheduler;
pub mod tcp;
mod time;
mod time_wait;
mod transmit;

pub use client::{ClientConfig, ClientEngine, ClientEvent, ConnectionId};
pub use config::{
    CongestionAlgorithm, EngineConfig, InterfaceConfig, Ipv6Interface, Keepalive, Liveness,
    ProxyRule, TcpTuning,
};
pub use connection::SubflowView;
pub use counters::Counters;
pub use engine::{AddressError, Engine, TokenRegistry};
pub use payload::Payload;
pub use time::Instant;
pub use transmit::{HeaderBytes, Transmit, MAX_HEADER_LEN};
