//! mpterm control plane: everything that is shared by, or sits beside, the per-core workers
//! but is never on the per-packet path.
//!
//! - [`config`]: the TOML configuration file, parsed and validated into typed structs.
//! - [`token_table`]: the MPTCP token table (RFC 8684 section 2.1) shared by all workers,
//!   touched on connection setup, teardown and MP_JOIN only.
//! - [`stats`]: per-worker counters published without locks and summed by the control thread.

#![deny(unsafe_code)]

pub mod config;
pub mod stats;
pub mod token_table;

pub use config::{Config, ConfigError};
pub use stats::{StatsRegistry, StatsSnapshot, WorkerStats};
pub use token_table::{ConnectionOwner, TokenInUse, TokenTable};
