//! Zero-copy views and owned representations of the headers mpterm speaks.
#![deny(unsafe_code)]

pub mod error;
pub mod seq;
pub mod mptcp {
    include!("mptcp_types.rs");
}
pub mod tcp {
    include!("tcp_types.rs");
}

pub use error::WireError;
pub use seq::SeqNumber;
