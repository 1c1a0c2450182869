//! Ethernet ports and their per-queue burst handles.

use std::cell::Cell;
use std::ffi::CString;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::eal::Eal;
use crate::error::{check, DpdkError};
use crate::mbuf::MbufBatch;
use crate::mempool::Mempool;

/// The most queues of each direction a port can hand out (one per worker core).
pub const MAX_QUEUES: u16 = 64;

/// One bit per DPDK port id: set once a [`Port`] handle for that id exists. A port is opened at
/// most once per process, so its handle's record of which queues it handed out is the only one:
/// two handles could each hand out "queue 0", and two threads bursting on one queue at once
/// would race inside the driver.
static OPENED_PORTS: AtomicU64 = AtomicU64::new(0);
const _: () = assert!(
    dpdk_sys::RTE_MAX_ETHPORTS <= u64::BITS,
    "one bit per port id"
);

/// How a port is set up: queue counts and ring sizes. No offloads are requested: the virtual
/// devices in the lab (af_packet, ring, null) offer none that matter, so checksums are computed in
/// software.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortConfig {
    /// Number of receive queues.
    pub rx_queues: u16,
    /// Number of transmit queues.
    pub tx_queues: u16,
    /// Descriptors per receive queue.
    pub rx_descriptors: u16,
    /// Descriptors per transmit queue.
    pub tx_descriptors: u16,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
        }
    }
}

/// Whether the link is up, and at what speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    /// The link is up.
    pub up: bool,
    /// Speed in Mbit/s as the driver reports it (0 when unknown).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// Port counters from `rte_eth_stats_get`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames received.
    pub ipackets: u64,
    /// Frames sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Frames dropped by the hardware/driver because the rx queue was full.
    pub imissed: u64,
    /// Erroneous received frames.
    pub ierrors: u64,
    /// Failed transmissions.
    pub oerrors: u64,
    /// Receive buffer allocation failures.
    pub rx_nombuf: u64,
}

/// One ethernet device (a `--vdev` such as `net_af_packet0` or a PCI device).
///
/// The port owns its queues: [`Port::take_rx_queue`] and [`Port::take_tx_queue`] hand out each
/// queue at most once, which is what makes the lock-free burst functions safe to call from the
/// queue's owner. To keep that true, a port can be opened once per process (a second
/// [`Port::by_name`] for it is refused with [`DpdkError::PortAlreadyOpen`], also after the first
/// handle was dropped), and it cannot be configured again once a queue was handed out
/// ([`DpdkError::QueuesInUse`]): reconfiguring frees the driver's queues under the handles.
/// Stopping is allowed: a stopped port's bursts move nothing.
///
/// The port and its queues borrow the [`Eal`]:
///
/// ```compile_fail,E0505
/// # use mpterm_dpdk::{Eal, Port};
/// let eal = Eal::init(&[]).unwrap();
/// let port = Port::by_name(&eal, "net_ring0").unwrap();
/// let rx = port.take_rx_queue(0).unwrap();
/// drop(port); // allowed: the device lives until the EAL is cleaned up
/// drop(eal); // refused: `rx` still borrows the EAL
/// drop(rx);
/// ```
#[derive(Debug)]
pub struct Port<'eal> {
    id: u16,
    configured: Option<PortConfig>,
    rx_taken: Cell<u64>,
    tx_taken: Cell<u64>,
    started: bool,
    _eal: PhantomData<&'eal Eal>,
}

impl<'eal> Port<'eal> {
    /// Looks a port up by device name (e.g. `net_ring0`, `net_af_packet1`) and opens it; a port
    /// already opened in this process is refused.
    pub fn by_name(_eal: &'eal Eal, name: &str) -> Result<Port<'eal>, DpdkError> {
        let c_name = CString::new(name).map_err(|_| DpdkError::NulInArgument(name.to_owned()))?;
        let mut id = 0u16;
        // SAFETY: c_name is NUL-terminated; id is a valid out-pointer.
        let code = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(c_name.as_ptr(), &mut id) };
        if code != 0 {
            return Err(DpdkError::PortNotFound(name.to_owned()));
        }
        Port::open(id)
    }

    /// Looks a port up by id and opens it; a port already opened in this process is refused.
    pub fn by_id(_eal: &'eal Eal, id: u16) -> Result<Port<'eal>, DpdkError> {
        // SAFETY: rte_eth_dev_is_valid_port accepts any id.
        if unsafe { dpdk_sys::rte_eth_dev_is_valid_port(id) } == 0 {
            return Err(DpdkError::InvalidPortId(id));
        }
        Port::open(id)
    }

    /// The number of ports the EAL found.
    pub fn count(_eal: &Eal) -> u16 {
        // SAFETY: no preconditions once the EAL is initialised.
        unsafe { dpdk_sys::rte_eth_dev_count_avail() }
    }

    /// Claims port `id` (a valid port, so below `RTE_MAX_ETHPORTS`) for this handle.
    fn open(id: u16) -> Result<Port<'eal>, DpdkError> {
        let bit = 1u64
            .checked_shl(u32::from(id))
            .ok_or(DpdkError::InvalidPortId(id))?;
        if OPENED_PORTS.fetch_or(bit, Ordering::SeqCst) & bit != 0 {
            return Err(DpdkError::PortAlreadyOpen(id));
        }
        Ok(Port {
            id,
            configured: None,
            rx_taken: Cell::new(0),
            tx_taken: Cell::new(0),
            started: false,
            _eal: PhantomData,
        })
    }

    /// The DPDK port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Configures the device and sets up every queue; receive queues take their mbufs from
    /// `rx_pool`. Must happen before [`Port::start`] (or after [`Port::stop`]), and before any
    /// queue is handed out: once one is, this is refused ([`DpdkError::QueuesInUse`]).
    pub fn configure(
        &mut self,
        config: &PortConfig,
        rx_pool: &Mempool<'eal>,
    ) -> Result<(), DpdkError> {
        if self.rx_taken.get() != 0 || self.tx_taken.get() != 0 {
            return Err(DpdkError::QueuesInUse(self.id));
        }
        if config.rx_queues > MAX_QUEUES || config.tx_queues > MAX_QUEUES {
            return Err(DpdkError::Call {
                call: format!("configure port {}", self.id),
                errno: 22,
                message: format!("at most {MAX_QUEUES} queues per direction"),
            });
        }
        let port = self.id;
        // An all-zero rte_eth_conf requests no offloads, no RSS, default MTU.
        let conf = dpdk_sys::rte_eth_conf::default();
        // SAFETY: conf is a valid configuration that outlives the call.
        let code = unsafe {
            dpdk_sys::rte_eth_dev_configure(port, config.rx_queues, config.tx_queues, &conf)
        };
        check(|| format!("rte_eth_dev_configure(port {port})"), code)?;
        let mut rx_descriptors = config.rx_descriptors;
        let mut tx_descriptors = config.tx_descriptors;
        // SAFETY: both are valid in/out pointers.
        let code = unsafe {
            dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(
                port,
                &mut rx_descriptors,
                &mut tx_descriptors,
            )
        };
        check(
            || format!("rte_eth_dev_adjust_nb_rx_tx_desc(port {port})"),
            code,
        )?;
        // SAFETY: the port is valid.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(port) };
        let socket = u32::try_from(socket).unwrap_or(dpdk_sys::SOCKET_ID_ANY as u32);
        for queue in 0..config.rx_queues {
            // SAFETY: the pool lives until rte_eal_cleanup (Mempool never frees it), which cannot
            // happen while this port borrows the EAL; NULL rxconf means the driver's defaults.
            let code = unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(
                    port,
                    queue,
                    rx_descriptors,
                    socket,
                    std::ptr::null(),
                    rx_pool.as_ptr(),
                )
            };
            check(
                || format!("rte_eth_rx_queue_setup(port {port}, queue {queue})"),
                code,
            )?;
        }
        for queue in 0..config.tx_queues {
            // SAFETY: NULL txconf means the driver's defaults.
            let code = unsafe {
                dpdk_sys::rte_eth_tx_queue_setup(
                    port,
                    queue,
                    tx_descriptors,
                    socket,
                    std::ptr::null(),
                )
            };
            check(
                || format!("rte_eth_tx_queue_setup(port {port}, queue {queue})"),
                code,
            )?;
        }
        self.configured = Some(*config);
        Ok(())
    }

    /// Starts the device: after this, bursts move frames.
    pub fn start(&mut self) -> Result<(), DpdkError> {
        // SAFETY: the port id is valid.
        let code = unsafe { dpdk_sys::rte_eth_dev_start(self.id) };
        let port = self.id;
        check(|| format!("rte_eth_dev_start(port {port})"), code)?;
        self.started = true;
        Ok(())
    }

    /// Stops the device.
    pub fn stop(&mut self) -> Result<(), DpdkError> {
        // SAFETY: the port id is valid.
        let code = unsafe { dpdk_sys::rte_eth_dev_stop(self.id) };
        let port = self.id;
        check(|| format!("rte_eth_dev_stop(port {port})"), code)?;
        self.started = false;
        Ok(())
    }

    /// Receives all frames regardless of destination MAC.
    pub fn enable_promiscuous(&mut self) -> Result<(), DpdkError> {
        // SAFETY: the port id is valid.
        let code = unsafe { dpdk_sys::rte_eth_promiscuous_enable(self.id) };
        let port = self.id;
        check(|| format!("rte_eth_promiscuous_enable(port {port})"), code)
    }

    /// The port's MAC address.
    pub fn mac_address(&self) -> Result<[u8; 6], DpdkError> {
        let mut address = dpdk_sys::rte_ether_addr::default();
        // SAFETY: address is a valid out-pointer.
        let code = unsafe { dpdk_sys::rte_eth_macaddr_get(self.id, &mut address) };
        let port = self.id;
        check(|| format!("rte_eth_macaddr_get(port {port})"), code)?;
        Ok(address.addr_bytes)
    }

    /// The link status, without waiting for auto-negotiation.
    pub fn link_status(&self) -> Result<LinkStatus, DpdkError> {
        let mut link = dpdk_sys::rte_eth_link::default();
        // SAFETY: link is a valid out-pointer.
        let code = unsafe { dpdk_sys::rte_eth_link_get_nowait(self.id, &mut link) };
        let port = self.id;
        check(|| format!("rte_eth_link_get_nowait(port {port})"), code)?;
        Ok(LinkStatus {
            up: link.link_status() != 0,
            speed_mbps: link.link_speed,
            full_duplex: link.link_duplex() != 0,
        })
    }

    /// The port's counters.
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        let mut stats = dpdk_sys::rte_eth_stats::default();
        // SAFETY: stats is a valid out-pointer.
        let code = unsafe { dpdk_sys::rte_eth_stats_get(self.id, &mut stats) };
        let port = self.id;
        check(|| format!("rte_eth_stats_get(port {port})"), code)?;
        Ok(PortStats {
            ipackets: stats.ipackets,
            opackets: stats.opackets,
            ibytes: stats.ibytes,
            obytes: stats.obytes,
            imissed: stats.imissed,
            ierrors: stats.ierrors,
            oerrors: stats.oerrors,
            rx_nombuf: stats.rx_nombuf,
        })
    }

    /// Hands out receive queue `queue`; each queue can be taken once.
    pub fn take_rx_queue(&self, queue: u16) -> Result<RxQueue<'eal>, DpdkError> {
        let count = self.configured.map_or(0, |config| config.rx_queues);
        take(&self.rx_taken, queue, count).ok_or(DpdkError::QueueUnavailable {
            kind: "rx",
            port: self.id,
            queue,
        })?;
        Ok(RxQueue {
            port: self.id,
            queue,
            _marker: PhantomData,
        })
    }

    /// Hands out transmit queue `queue`; each queue can be taken once.
    pub fn take_tx_queue(&self, queue: u16) -> Result<TxQueue<'eal>, DpdkError> {
        let count = self.configured.map_or(0, |config| config.tx_queues);
        take(&self.tx_taken, queue, count).ok_or(DpdkError::QueueUnavailable {
            kind: "tx",
            port: self.id,
            queue,
        })?;
        Ok(TxQueue {
            port: self.id,
            queue,
            _marker: PhantomData,
        })
    }
}

/// Marks `queue` taken in `taken` if it is below `count` and not yet taken.
fn take(taken: &Cell<u64>, queue: u16, count: u16) -> Option<()> {
    if queue >= count {
        return None;
    }
    let bit = 1u64 << queue;
    if taken.get() & bit != 0 {
        return None;
    }
    taken.set(taken.get() | bit);
    Some(())
}

/// The marker of a queue handle: it borrows the [`Eal`] for `'eal`, may move to another thread
/// (`&Eal` and `Cell` are `Send`) but cannot be shared between threads (`Cell` is not `Sync`).
/// Zero-sized.
type QueueMarker<'eal> = PhantomData<(&'eal Eal, Cell<()>)>;

/// The receiving end of one queue of a port. It may move to the worker thread that polls it
/// (`Send`), but only one thread can use it (`!Sync`, not `Clone`), as DPDK requires.
#[derive(Debug)]
pub struct RxQueue<'eal> {
    port: u16,
    queue: u16,
    _marker: QueueMarker<'eal>,
}

impl<'eal> RxQueue<'eal> {
    /// Receives up to the batch's free capacity of frames, appending them to `batch`; returns how
    /// many arrived. Never allocates.
    pub fn rx_burst(&mut self, batch: &mut MbufBatch<'eal>) -> usize {
        let (slots, room) = batch.spare_slots();
        if room == 0 {
            return 0;
        }
        // SAFETY: slots points to `room` writable pointer slots inside the batch; this handle is
        // the queue's only user; the driver writes at most `room` owned mbufs.
        let received =
            unsafe { dpdk_sys::shim_rte_eth_rx_burst(self.port, self.queue, slots, room as u16) };
        let received = usize::from(received).min(room);
        // SAFETY: the driver filled exactly `received` slots with mbufs now owned by the batch.
        unsafe { batch.commit_filled(received) };
        received
    }

    /// The port id.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The queue id.
    pub fn queue(&self) -> u16 {
        self.queue
    }
}

/// The transmitting end of one queue of a port; see [`RxQueue`] for the ownership rules.
#[derive(Debug)]
pub struct TxQueue<'eal> {
    port: u16,
    queue: u16,
    _marker: QueueMarker<'eal>,
}

impl<'eal> TxQueue<'eal> {
    /// Hands the batch's mbufs to the driver, front first; returns how many it took.
    ///
    /// Mbufs the driver did not take (its ring was full) stay in `batch`, moved to the front and
    /// in order, so the caller decides whether to retry on the next loop turn or to drop them
    /// ([`MbufBatch::clear`]). The driver frees the mbufs it took once sent. Never allocates.
    ///
    /// "Taken" is not "sent on the wire": 22.11's af_packet PMD copies each frame into the
    /// kernel's TX ring and frees it at once, silently drops (and counts as taken) frames longer
    /// than its ring frame (2048 bytes by default), and, when the ring is full, calls `poll()`
    /// once before giving up the rest of the burst. Such drops show in [`PortStats::oerrors`].
    pub fn tx_burst(&mut self, batch: &mut MbufBatch<'eal>) -> usize {
        let (mbufs, count) = batch.filled_slots();
        if count == 0 {
            return 0;
        }
        // SAFETY: mbufs points to `count` owned, valid mbufs; the driver takes ownership of the
        // first `sent`; this handle is the queue's only user.
        let sent =
            unsafe { dpdk_sys::shim_rte_eth_tx_burst(self.port, self.queue, mbufs, count as u16) };
        let sent = usize::from(sent).min(count);
        batch.consume_front(sent);
        sent
    }

    /// The port id.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The queue id.
    pub fn queue(&self) -> u16 {
        self.queue
    }
}
