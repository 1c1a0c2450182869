//! The one safe layer over DPDK (`dpdk-sys`): EAL start-up, mempools, ports with per-queue burst
//! handles, owned mbufs, shared read-only payload views and the TSC clock.
//!
//! All `unsafe` code of the dataplane lives in this crate; every block states why it is sound, and
//! no safe use of the API can reach freed memory or panic on a range (see below and
//! [`MbufSlice`]).
//! The API is burst-shaped: [`RxQueue::rx_burst`] fills an [`MbufBatch`] of [`BURST_SIZE`],
//! [`TxQueue::tx_burst`] drains one, and nothing on that path allocates.
//!
//! EAL arguments known to work on the project's machines (Debian's DPDK 22.11, no hugepages):
//! `--no-huge -m 256 --no-pci --no-shconf -l 0 --vdev=net_ring0` (tests) and
//! `--no-huge -m 512 --no-pci --no-shconf --vdev=net_af_packet0,iface=a0` (lab). `--in-memory`
//! together with `--no-huge` is refused by this EAL.
//!
//! # No handle outlives the EAL
//!
//! Dropping the [`Eal`] runs `rte_eal_cleanup`, which releases every mempool, mbuf and device.
//! So every handle that refers to memory or devices the EAL owns ([`Mempool`], [`Port`],
//! [`RxQueue`], [`TxQueue`], [`Mbuf`], [`MbufSlice`], [`MbufBatch`] and its [`Drain`]) carries
//! the lifetime `'eal` of a shared borrow of the `Eal` it derives from, as a zero-sized
//! `PhantomData<&'eal Eal>`: the handles cost nothing more at run time, and the borrow checker
//! refuses to move or drop the `Eal` while any of them lives, to hand one to a thread that may
//! outlive it (use `std::thread::scope`), or to keep one in a `static`. Each type's
//! documentation shows the refused program as a `compile_fail` test. The lifetime is
//! covariant, so a handle can always be used under a shorter borrow. [`Eal::init`] succeeds at
//! most once per process, so there is one `Eal` to borrow. [`TscClock`] carries no lifetime: once
//! it has read the TSC frequency, it only reads the CPU's cycle counter, which needs nothing the
//! EAL owns. Mbufs, slices and batches are per-core (`!Send`); queues may be moved to the worker
//! thread that polls them (`Send`, `!Sync`, each handed out once by a port opened once).
//!
//! The shape of a program (the compiled but not run example the `compile_fail` tests vary):
//!
//! ```no_run
//! use mpterm_dpdk::{Eal, Mbuf, MbufBatch, Mempool, Port, PortConfig};
//!
//! let args = ["--no-huge", "-m", "256", "--no-pci", "--vdev=net_ring0"].map(String::from);
//! let eal = Eal::init(&args)?;
//! let pool = Mempool::new(&eal, "pool", 1023, 0, Mempool::DEFAULT_DATA_ROOM)?;
//! let mut port = Port::by_name(&eal, "net_ring0")?;
//! port.configure(&PortConfig::default(), &pool)?;
//! let (mut rx, mut tx) = (port.take_rx_queue(0)?, port.take_tx_queue(0)?);
//! port.start()?;
//! std::thread::scope(|scope| {
//!     // The worker thread borrows what it uses; the scope ends before the EAL can go.
//!     scope.spawn(|| {
//!         let mut batch = MbufBatch::new();
//!         batch.push(Mbuf::alloc(&pool).expect("an mbuf")).expect("room");
//!         tx.tx_burst(&mut batch);
//!         rx.rx_burst(&mut batch);
//!     });
//! });
//! port.stop()?;
//! drop((rx, tx, port, pool));
//! drop(eal); // rte_eal_cleanup: nothing refers to DPDK memory any more
//! # Ok::<(), mpterm_dpdk::DpdkError>(())
//! ```

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
