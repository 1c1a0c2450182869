//! `mpterm-linkem`: the lab's link emulator (this kernel has no netem), a bridge between two
//! DPDK ports that impairs each direction on its own.
//!
//! - [`impairment`]: one direction as a sans-IO state machine: rate and a bounded queue, delay
//!   and jitter, random and Gilbert-Elliott loss, reordering, duplication, cut;
//! - [`rewrite`]: the payload rewriter, an ALG that changes a byte and fixes the TCP checksum
//!   (what MPTCP's MP_FAIL is for);
//! - [`hold`]: the time-ordered queue of frames waiting for their delivery time;
//! - [`cli`]: the command line, shared options with per-direction overrides;
//! - [`dpdk`]: the loop over the two ports.

pub mod cli;
pub mod dpdk;
pub mod hold;
pub mod impairment;
pub mod rewrite;
