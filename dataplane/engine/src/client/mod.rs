//! The engine in the MPTCP client role: an endpoint that opens connections to one server and
//! speaks MPTCP version 1 (RFC 8684) or plain TCP over them, sans-IO like the server
//! [`crate::Engine`]. It drives the pipeline benchmark (in memory, against the server engine)
//! and the load generator (over DPDK ports, against mpterm or Linux's own MPTCP server).
//!
//! It behaves as Linux's client does (net/mptcp/options.c, subflow.c): MP_CAPABLE without a
//! key in the SYN, the server's key from the SYN-ACK, both keys in the third ACK and on the
//! first data (with its data-level length and checksum) until the server's DATA_ACK shows it
//! has our key, then a DSS mapping of exactly each data segment and a DATA_ACK on every
//! segment; a SYN-ACK or first answer without MPTCP is a fallback to TCP (section 3.7).
//!
//! Built on the engine's parts: the subflow is a [`crate::tcp::Tcb`] (active open), received
//! mappings are assembled and verified by [`crate::mptcp::MappingAssembly`], next hops resolve
//! through the engine's ARP cache, keys through [`crate::mptcp_keys`].
//!
//! One job per file: `endpoint.rs` the frame path, tables and timers; `connection.rs` one
//! connection (TCB, data level, application buffer, how it ended); `session.rs` the MPTCP data
//! level, `options.rs` the server's options, `decorate.rs` ours; `ports.rs` local ports and
//! TIME-WAIT; `ready.rs` received data for the application; `frame.rs` outgoing frames;
//! `api.rs`, `config.rs` and `counters.rs` the public types.
//!
//! Cost per packet: no allocation in steady state (every table is sized from
//! `max_connections` when the endpoint is built; a connection's own queues grow to their
//! bounds once), no hashing on the data path (a segment's connection is found by its local
//! port), payload held by handle, and one pass over an outgoing payload for both the DSS and
//! the TCP checksum.

mod api;
mod config;
mod connection;
mod counters;
mod decorate;
mod endpoint;
mod frame;
mod options;
mod ports;
mod ready;
mod session;

pub use api::{
    ClientError, ClientEvent, ClosedReason, ConnectionCounters, ConnectionId, ConnectionInfo,
    PeerReset,
};
pub use config::{ClientConfig, ConfigError, MTU_RANGE};
pub use counters::ClientCounters;
pub use endpoint::ClientEngine;
