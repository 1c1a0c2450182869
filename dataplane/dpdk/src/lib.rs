//! The one safe layer over DPDK (`dpdk-sys`): EAL start-up, mempools, ports with per-queue burst
//! handles, owned mbufs, shared read-only payload views and the TSC clock.
//!
//! All `unsafe` code of the dataplane lives in this crate; every block states why it is sound.
//! The API is burst-shaped: [`RxQueue::rx_burst`] fills an [`MbufBatch`] of [`BURST_SIZE`],
//! [`TxQueue::tx_burst`] drains one, and nothing on that path allocates.
//!
//! EAL arguments known to work on the project's machines (Debian's DPDK 22.11, no hugepages):
//! `--no-huge -m 256 --no-pci --no-shconf -l 0 --vdev=net_ring0` (tests) and
//! `--no-huge -m 512 --no-pci --no-shconf --vdev=net_af_packet0,iface=a0` (lab). `--in-memory`
//! together with `--no-huge` is refused by this EAL.
//!
//! Lifetimes: create one [`Eal`] in `main` and keep it until the end; [`Mempool`]s live until the
//! EAL is cleaned up. Mbufs and slices are per-core (`!Send`); queues may be moved to the worker
//! thread that polls them (`Send`, `!Sync`, each handed out once).

mod eal;
mod error;
pub mod frame;
mod mbuf;
mod mempool;
mod port;
mod time;

pub use eal::Eal;
pub use error::DpdkError;
pub use frame::{alloc_frame_chained, alloc_frame_copied, FrameError};
pub use mbuf::{Drain, Mbuf, MbufBatch, MbufSlice, Segments, BURST_SIZE};
pub use mempool::Mempool;
pub use port::{LinkStatus, Port, PortConfig, PortStats, RxQueue, TxQueue, MAX_QUEUES};
pub use time::TscClock;
