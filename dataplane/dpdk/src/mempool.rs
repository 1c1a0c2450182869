//! Packet buffer pools (`rte_pktmbuf_pool_create`).

use std::ffi::CString;
use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::eal::Eal;
use crate::error::DpdkError;

/// A pool of packet mbufs, created once at start-up and shared by the queues and workers.
///
/// Dropping the handle does not free the pool: ports keep pointers to it for their receive
/// queues and mbufs in flight point into it, so its memory is released by `rte_eal_cleanup`
/// (when [`Eal`] is dropped). Pool names are global to the process and must be unique.
///
/// DPDK's default pool (a multi-producer, multi-consumer ring) is safe to use from several
/// threads at once, so the handle is `Send + Sync`.
///
/// The handle borrows the [`Eal`] it was created with, so the EAL cannot be cleaned up while a
/// pool handle (or any mbuf from it) lives, nor can the handle go to a thread that may outlive
/// the EAL:
///
/// ```compile_fail,E0505
/// # use mpterm_dpdk::{Eal, Mempool};
/// let eal = Eal::init(&[]).unwrap();
/// let pool = Mempool::new(&eal, "pool", 1023, 0, Mempool::DEFAULT_DATA_ROOM).unwrap();
/// drop(eal); // refused: `pool` still borrows the EAL
/// println!("{} free", pool.available());
/// ```
///
/// ```compile_fail,E0597
/// # use mpterm_dpdk::{Eal, Mempool};
/// let eal = Eal::init(&[]).unwrap();
/// let pool = Mempool::new(&eal, "pool", 1023, 0, Mempool::DEFAULT_DATA_ROOM).unwrap();
/// // Refused: an unscoped thread may outlive `eal` (`std::thread::scope` is the way).
/// std::thread::spawn(move || println!("{} free", pool.available()));
/// ```
#[derive(Debug)]
pub struct Mempool<'eal> {
    raw: NonNull<dpdk_sys::rte_mempool>,
    capacity: u32,
    _eal: PhantomData<&'eal Eal>,
}

// SAFETY: rte_mempool get/put operations of the default ring-based pool are multi-thread safe;
// the handle holds no thread-local state.
unsafe impl Send for Mempool<'_> {}
// SAFETY: as above; `&Mempool` only allows allocating from and inspecting the pool.
unsafe impl Sync for Mempool<'_> {}

impl<'eal> Mempool<'eal> {
    /// Creates a pool of `n_mbufs` mbufs with a per-lcore cache of `cache` and `data_room` bytes
    /// of buffer each (headroom included: use [`Mempool::DEFAULT_DATA_ROOM`] for 2048 bytes of
    /// frame after the 128-byte headroom). The pool may live on any NUMA socket, which `--no-huge`
    /// needs.
    ///
    /// A pool that feeds an af_packet receive queue needs at least the default data room: the
    /// PMD refuses a queue whose mbufs cannot hold a whole ring frame, which also guarantees that
    /// received frames are single-segment. A pool used only for indirect mbufs
    /// ([`crate::alloc_frame_chained`]) can have a data room of 0.
    pub fn new(
        _eal: &'eal Eal,
        name: &str,
        n_mbufs: u32,
        cache: u32,
        data_room: u16,
    ) -> Result<Mempool<'eal>, DpdkError> {
        let c_name = CString::new(name).map_err(|_| DpdkError::NulInArgument(name.to_owned()))?;
        // SAFETY: c_name is a valid NUL-terminated string; the EAL is initialised (`_eal`).
        let raw = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(
                c_name.as_ptr(),
                n_mbufs,
                cache,
                0,
                data_room,
                dpdk_sys::SOCKET_ID_ANY,
            )
        };
        let raw = NonNull::new(raw)
            .ok_or_else(|| DpdkError::from_rte_errno(format!("rte_pktmbuf_pool_create({name})")))?;
        Ok(Mempool {
            raw,
            capacity: n_mbufs,
            _eal: PhantomData,
        })
    }

    /// The data room DPDK uses by default: 2048 bytes of frame after `RTE_PKTMBUF_HEADROOM`.
    pub const DEFAULT_DATA_ROOM: u16 = dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16;

    /// The number of mbufs the pool was created with.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// The number of mbufs currently free in the pool (including the per-lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: raw is a live pool.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// The number of mbufs currently handed out (in queues, batches, handles).
    pub fn in_use(&self) -> u32 {
        // SAFETY: raw is a live pool.
        unsafe { dpdk_sys::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }

    pub(crate) fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.raw.as_ptr()
    }
}
