//! mpterm control plane: everything that is shared by, or sits beside, the per-core workers
//! but is never on the per-packet path.
//!
//! - [`config`]: the TOML configuration file, parsed and validated into typed structs.
//! - [`token_table`]: the MPTCP token table (RFC 8684 section 2.1) shared by all workers,
//!   touched on connection setup, teardown and MP_JOIN only.
//! - [`stats`]: per-worker counters published without locks and summed by the control thread.
//! - [`operator`]: the operator's commands (withdraw, announce, backup, report), parsed against
//!   the configuration and handed to the worker through a channel it polls at housekeeping.
//! - [`control_socket`]: the Unix socket the control thread serves those commands on, and the
//!   client of `mpterm ctl`.

#![deny(unsafe_code)]

pub mod config;
pub mod control_socket;
pub mod operator;
pub mod stats;
pub mod token_table;

pub use config::{Config, ConfigError};
pub use control_socket::{ControlSocket, ControlSocketError};
pub use operator::{OperatorHandle, OperatorRequests};
pub use stats::{StatsRegistry, StatsSnapshot, WorkerStats};
pub use token_table::{ConnectionOwner, TokenInUse, TokenTable};
