//! Owned mbufs ([`Mbuf`]), shared read-only views of received data ([`MbufSlice`]) and the
//! fixed-size burst container ([`MbufBatch`]).
//!
//! Each of them carries the lifetime `'eal` of the [`Eal`] borrow its pool was created under, so
//! none can outlive `rte_eal_cleanup` (see the crate documentation); the marker is zero-sized.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::ptr::NonNull;

use crate::eal::Eal;
use crate::mempool::Mempool;

/// The marker every per-core mbuf handle carries: it borrows the [`Eal`] for `'eal` (so the
/// handle cannot outlive DPDK's memory) and holds a raw pointer type (so the handle is neither
/// `Send` nor `Sync`: mbufs belong to the core that allocated or received them). Zero-sized.
type PerCoreMarker<'eal> = PhantomData<(&'eal Eal, *mut ())>;

/// The number of mbufs one rx or tx burst moves at most (DPDK's customary burst of 32).
pub const BURST_SIZE: usize = 32;

/// An owned packet buffer (possibly a chain of segments); freed with `rte_pktmbuf_free` on drop.
///
/// Invariant: the first segment is a direct mbuf whose data only this handle can reach, so
/// [`Mbuf::data_mut`] hands out a unique `&mut [u8]`. Later segments may be indirect (attached to
/// the buffer of an [`MbufSlice`]); they are never written through this handle.
///
/// Mbufs are per-core objects: the type is neither `Send` nor `Sync`. An mbuf borrows the
/// [`Eal`] (not the [`Mempool`] handle, which frees nothing when dropped), so it cannot outlive
/// DPDK's memory:
///
/// ```compile_fail,E0505
/// # use mpterm_dpdk::{Eal, Mbuf, Mempool};
/// let eal = Eal::init(&[]).unwrap();
/// let pool = Mempool::new(&eal, "pool", 1023, 0, Mempool::DEFAULT_DATA_ROOM).unwrap();
/// let mbuf = Mbuf::alloc(&pool).unwrap();
/// drop(pool); // allowed: the pool's memory lives until the EAL is cleaned up
/// drop(eal); // refused: `mbuf` still borrows the EAL
/// drop(mbuf);
/// ```
///
/// Nor can it be made `'static` (leaked, or kept in a static) to escape the borrow:
///
/// ```compile_fail,E0597
/// # use mpterm_dpdk::{Eal, Mbuf, Mempool};
/// let eal = Eal::init(&[]).unwrap();
/// let pool = Mempool::new(&eal, "pool", 1023, 0, Mempool::DEFAULT_DATA_ROOM).unwrap();
/// let mbuf: &'static mut Mbuf = Box::leak(Box::new(Mbuf::alloc(&pool).unwrap()));
/// ```
pub struct Mbuf<'eal> {
    raw: NonNull<dpdk_sys::rte_mbuf>,
    /// Ties the handle to the EAL and keeps it on the core that owns it.
    _marker: PerCoreMarker<'eal>,
}

impl<'eal> Mbuf<'eal> {
    /// Allocates an empty mbuf (no data, default headroom) from `pool`, or `None` if it is empty.
    pub fn alloc(pool: &Mempool<'eal>) -> Option<Mbuf<'eal>> {
        // SAFETY: pool is a live mempool; the returned mbuf is fresh, direct and has refcnt 1.
        let raw = unsafe { dpdk_sys::shim_rte_pktmbuf_alloc(pool.as_ptr()) };
        // SAFETY: a non-null mbuf from rte_pktmbuf_alloc is owned by nobody else.
        NonNull::new(raw).map(|raw| unsafe { Mbuf::from_raw(raw) })
    }

    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    ///
    /// `raw` must be a valid mbuf that the caller owns (it is freed when the handle drops) and
    /// whose first segment is a direct mbuf no one else references.
    /// The mbuf must also come from a pool created under this EAL borrow, `'eal` (every mbuf
    /// of the process does: there is one EAL).
    pub(crate) unsafe fn from_raw(raw: NonNull<dpdk_sys::rte_mbuf>) -> Mbuf<'eal> {
        Mbuf {
            raw,
            _marker: PhantomData,
        }
    }

    /// Gives up ownership without freeing.
    pub(crate) fn into_raw(self) -> NonNull<dpdk_sys::rte_mbuf> {
        let raw = self.raw;
        std::mem::forget(self);
        raw
    }

    fn head(&self) -> &dpdk_sys::rte_mbuf {
        // SAFETY: raw is a valid mbuf owned by this handle for its whole life.
        unsafe { self.raw.as_ref() }
    }

    /// The length of the whole packet (all segments).
    pub fn pkt_len(&self) -> u32 {
        self.head().pkt_len
    }

    /// The length of the data in the first segment.
    pub fn data_len(&self) -> u16 {
        self.head().data_len
    }

    /// The number of segments in the chain.
    pub fn segment_count(&self) -> u16 {
        self.head().nb_segs
    }

    /// Whether all of the packet's bytes are in the first segment, so [`Mbuf::data`] shows all of
    /// it.
    pub fn is_contiguous(&self) -> bool {
        self.segment_count() == 1
    }

    /// The ethernet port the mbuf was received on.
    pub fn port(&self) -> u16 {
        self.head().port
    }

    /// Free bytes in front of the data of the first segment.
    pub fn headroom(&self) -> u16 {
        // SAFETY: raw is a valid mbuf.
        unsafe { dpdk_sys::shim_rte_pktmbuf_headroom(self.raw.as_ptr()) }
    }

    /// Free bytes after the data of the last segment.
    pub fn tailroom(&self) -> u16 {
        // SAFETY: raw is a valid mbuf.
        unsafe { dpdk_sys::shim_rte_pktmbuf_tailroom(self.raw.as_ptr()) }
    }

    /// The data of the first segment.
    pub fn data(&self) -> &[u8] {
        // SAFETY: buf_addr + data_off points to data_len initialised bytes of the first segment,
        // which live as long as the handle; nobody writes them while `&self` is borrowed.
        unsafe {
            std::slice::from_raw_parts(
                dpdk_sys::shim_rte_pktmbuf_mtod(self.raw.as_ptr()).cast::<u8>(),
                usize::from(self.data_len()),
            )
        }
    }

    /// The data of the first segment, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`; the first segment is direct and referenced only by this handle
        // (type invariant), and `&mut self` makes the borrow unique.
        unsafe {
            std::slice::from_raw_parts_mut(
                dpdk_sys::shim_rte_pktmbuf_mtod(self.raw.as_ptr()).cast::<u8>(),
                usize::from(self.data_len()),
            )
        }
    }

    /// The data of every segment, in order (the first is [`Mbuf::data`]).
    pub fn segments(&self) -> Segments<'_> {
        Segments {
            next: self.raw.as_ptr(),
            _packet: PhantomData,
        }
    }

    /// Grows the packet by `len` bytes at the end (of the last segment) and returns the new bytes,
    /// or `None` (packet unchanged) if the tailroom is too small.
    ///
    /// The buffer may still hold an earlier packet's bytes there; they are zeroed so that no stale
    /// data leaks into a frame.
    pub fn append(&mut self, len: u16) -> Option<&mut [u8]> {
        let bytes = self.append_unzeroed(len)?;
        bytes.fill(0);
        Some(bytes)
    }

    /// Like [`Mbuf::append`], but the new bytes keep whatever the buffer held (a previous
    /// packet's bytes, never uninitialised memory: DPDK buffers are allocated once and reused).
    /// For callers that overwrite all of them at once, saving the zeroing pass.
    pub(crate) fn append_unzeroed(&mut self, len: u16) -> Option<&mut [u8]> {
        if !self.is_contiguous() {
            // The new bytes would be in a last segment that may be an indirect (shared) one.
            return None;
        }
        // SAFETY: raw is a valid mbuf; on success the returned pointer addresses `len` bytes of
        // this handle's (direct, unshared) first segment.
        unsafe {
            let start = dpdk_sys::shim_rte_pktmbuf_append(self.raw.as_ptr(), len);
            if start.is_null() {
                return None;
            }
            Some(std::slice::from_raw_parts_mut(
                start.cast::<u8>(),
                usize::from(len),
            ))
        }
    }

    /// Grows the packet by `len` bytes at the front and returns them (zeroed), or `None` if the
    /// headroom is too small.
    pub fn prepend(&mut self, len: u16) -> Option<&mut [u8]> {
        // SAFETY: raw is a valid mbuf; on success the pointer addresses `len` bytes at the start
        // of the first segment, which this handle owns exclusively.
        unsafe {
            let start = dpdk_sys::shim_rte_pktmbuf_prepend(self.raw.as_ptr(), len);
            if start.is_null() {
                return None;
            }
            let bytes = std::slice::from_raw_parts_mut(start.cast::<u8>(), usize::from(len));
            bytes.fill(0);
            Some(bytes)
        }
    }

    /// Removes `len` bytes from the front of the first segment; `false` (unchanged) if it holds
    /// fewer.
    pub fn adj(&mut self, len: u16) -> bool {
        // SAFETY: raw is a valid mbuf; rte_pktmbuf_adj checks the length itself.
        !unsafe { dpdk_sys::shim_rte_pktmbuf_adj(self.raw.as_ptr(), len) }.is_null()
    }

    /// Removes `len` bytes from the end of the last segment; `false` (unchanged) if it holds
    /// fewer.
    pub fn trim(&mut self, len: u16) -> bool {
        // SAFETY: raw is a valid mbuf; rte_pktmbuf_trim checks the length itself.
        unsafe { dpdk_sys::shim_rte_pktmbuf_trim(self.raw.as_ptr(), len) == 0 }
    }

    /// Appends `tail`'s segments to this packet. On failure (the chain would exceed DPDK's
    /// segment limit) the packet is unchanged and `tail` is handed back.
    pub fn chain(&mut self, tail: Mbuf<'eal>) -> Result<(), Mbuf<'eal>> {
        // SAFETY: both are valid mbufs; on success the head owns the tail's segments, so the tail
        // handle is forgotten without freeing.
        let code =
            unsafe { dpdk_sys::shim_rte_pktmbuf_chain(self.raw.as_ptr(), tail.raw.as_ptr()) };
        if code == 0 {
            tail.into_raw();
            Ok(())
        } else {
            Err(tail)
        }
    }

    /// Turns a contiguous received packet into a shared read-only [`MbufSlice`] over its data;
    /// a chained packet is handed back unchanged (the worker can only parse contiguous frames).
    pub fn into_slice(self) -> Result<MbufSlice<'eal>, Mbuf<'eal>> {
        if !self.is_contiguous() {
            return Err(self);
        }
        let start = self.data().as_ptr();
        let len = u32::from(self.data_len());
        let raw = self.into_raw();
        // The reference the Mbuf held (refcnt 1) now belongs to the slice.
        Ok(MbufSlice {
            mbuf: raw,
            start,
            len,
            _marker: PhantomData,
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut dpdk_sys::rte_mbuf {
        self.raw.as_ptr()
    }
}

impl Drop for Mbuf<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle owns the mbuf chain; after this nothing refers to it.
        unsafe { dpdk_sys::shim_rte_pktmbuf_free(self.raw.as_ptr()) }
    }
}

impl fmt::Debug for Mbuf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mbuf")
            .field("pkt_len", &self.pkt_len())
            .field("data_len", &self.data_len())
            .field("segments", &self.segment_count())
            .finish()
    }
}

/// Iterator over the data of each segment of an [`Mbuf`].
#[derive(Debug)]
pub struct Segments<'a> {
    next: *mut dpdk_sys::rte_mbuf,
    /// The packet's bytes are borrowed for `'a` (which the packet's `'eal` outlives).
    _packet: PhantomData<&'a [u8]>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.next.is_null() {
            return None;
        }
        // SAFETY: `next` is a segment of the chain borrowed for 'a; its data_len bytes at
        // buf_addr + data_off are initialised and not written while the packet is borrowed.
        unsafe {
            let segment = &*self.next;
            let data = std::slice::from_raw_parts(
                dpdk_sys::shim_rte_pktmbuf_mtod(self.next).cast::<u8>(),
                usize::from(segment.data_len),
            );
            self.next = segment.next;
            Some(data)
        }
    }
}

/// A reference-counted, read-only view of a byte range of a received frame's data.
///
/// Cloning increments the mbuf's reference count (`rte_mbuf_refcnt_update(+1)`), dropping
/// releases one reference (`rte_pktmbuf_free`, which returns the mbuf to its pool when the count
/// reaches zero). No copy of the bytes is ever made. This is the payload type the sans-IO engine
/// is generic over; a slice can go out again without a copy through
/// [`crate::frame::alloc_frame_chained`].
///
/// Invariant: once an mbuf backs a slice, its data is never written again (every handle to it is
/// an `MbufSlice` or an indirect mbuf reading it), so `as_slice` may hand out `&[u8]` freely.
///
/// No method panics on a range: [`MbufSlice::get`] refuses one that does not lie within the
/// view, [`MbufSlice::slice_clamped`] cuts it to the view. Like [`Mbuf`], a slice borrows the
/// [`Eal`]:
///
/// ```compile_fail,E0505
/// # use mpterm_dpdk::{Eal, Mbuf, Mempool};
/// let eal = Eal::init(&[]).unwrap();
/// let pool = Mempool::new(&eal, "pool", 1023, 0, Mempool::DEFAULT_DATA_ROOM).unwrap();
/// let slice = Mbuf::alloc(&pool).unwrap().into_slice().unwrap();
/// drop(eal); // refused: `slice` still borrows the EAL
/// drop(slice);
/// ```
pub struct MbufSlice<'eal> {
    mbuf: NonNull<dpdk_sys::rte_mbuf>,
    start: *const u8,
    len: u32,
    _marker: PerCoreMarker<'eal>,
}

impl<'eal> MbufSlice<'eal> {
    /// The viewed bytes. Inlined across crates: the engine reads payload through it per
    /// segment.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: start..start+len lies within the data of the mbuf, which stays alive and
        // unmodified while this slice holds a reference to it.
        unsafe { std::slice::from_raw_parts(self.start, self.len as usize) }
    }

    /// The number of viewed bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the view is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A new view of `range` within this view (taking another reference on the mbuf), or `None`
    /// if the range does not lie within it (or is inverted).
    pub fn get(&self, range: impl RangeBounds<usize>) -> Option<MbufSlice<'eal>> {
        let (start, end) = self.checked_bounds(&range)?;
        Some(self.narrowed(start, end))
    }

    /// A new view of the bytes of `range` that lie within this view (taking another reference
    /// on the mbuf): a range reaching beyond the end is cut at the end, and an inverted range,
    /// or one starting at or after the end, gives an empty view. Never panics, so it is safe for
    /// ranges computed from network input (it is the contract of the engine's
    /// `Payload::slice`, which the worker implements with it).
    pub fn slice_clamped(&self, range: impl RangeBounds<usize>) -> MbufSlice<'eal> {
        let (start, end) = self.clamped_bounds(&range);
        self.narrowed(start, end)
    }

    /// A new view of `start..end`, which the caller has checked lies within this view.
    fn narrowed(&self, start: usize, end: usize) -> MbufSlice<'eal> {
        debug_assert!(start <= end && end <= self.len());
        let mut view = self.clone();
        // SAFETY: start <= end <= len, so the pointer stays within (or one past) the viewed bytes.
        view.start = unsafe { self.start.add(start) };
        // end - start <= len, which is a u32.
        view.len = (end - start) as u32;
        view
    }

    /// Resolves `range` against this view's length; `None` if it does not lie within it.
    fn checked_bounds(&self, range: &impl RangeBounds<usize>) -> Option<(usize, usize)> {
        let start = match range.start_bound() {
            Bound::Included(&start) => start,
            Bound::Excluded(&start) => start.checked_add(1)?,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&end) => end.checked_add(1)?,
            Bound::Excluded(&end) => end,
            Bound::Unbounded => self.len(),
        };
        (start <= end && end <= self.len()).then_some((start, end))
    }

    /// Resolves `range` against this view's length, cut to it: `start <= end <= len` always.
    fn clamped_bounds(&self, range: &impl RangeBounds<usize>) -> (usize, usize) {
        let len = self.len();
        let start = match range.start_bound() {
            Bound::Included(&start) => start,
            Bound::Excluded(&start) => start.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&end) => end.saturating_add(1),
            Bound::Excluded(&end) => end,
            Bound::Unbounded => len,
        };
        let end = end.min(len);
        (start.min(end), end)
    }

    /// The current reference count of the underlying mbuf (for tests and diagnostics).
    pub fn refcount(&self) -> u16 {
        // SAFETY: the mbuf is alive while this view holds a reference.
        unsafe { dpdk_sys::shim_rte_mbuf_refcnt_read(self.mbuf.as_ptr()) }
    }

    /// The underlying direct mbuf, to attach an indirect mbuf to it.
    pub(crate) fn mbuf_ptr(&self) -> *mut dpdk_sys::rte_mbuf {
        self.mbuf.as_ptr()
    }

    /// The offset of the first viewed byte from the start of the mbuf's buffer.
    pub(crate) fn offset_in_buffer(&self) -> usize {
        // SAFETY: start points into the mbuf's buffer, which begins at buf_addr.
        unsafe {
            let buffer = self.mbuf.as_ref().buf_addr.cast::<u8>().cast_const();
            usize::try_from(self.start.offset_from(buffer)).expect("slice starts inside its buffer")
        }
    }
}

impl Clone for MbufSlice<'_> {
    /// Takes one more reference on the mbuf.
    ///
    /// # Panics
    ///
    /// Aborts the process if the mbuf already has `u16::MAX` references: the 16-bit counter
    /// would wrap and free the buffer under live views (the same policy as `Arc`'s overflow
    /// check).
    fn clone(&self) -> Self {
        if self.refcount() == u16::MAX {
            std::process::abort();
        }
        // SAFETY: the mbuf is alive (this view holds a reference); the new view owns the extra
        // reference taken here, and the count cannot wrap (checked above; views are per-core, so
        // no other thread adds references between the check and the update).
        unsafe { dpdk_sys::shim_rte_mbuf_refcnt_update(self.mbuf.as_ptr(), 1) };
        MbufSlice {
            mbuf: self.mbuf,
            start: self.start,
            len: self.len,
            _marker: PhantomData,
        }
    }
}

impl Drop for MbufSlice<'_> {
    fn drop(&mut self) {
        // SAFETY: this view owns one reference; rte_pktmbuf_free releases exactly one and returns
        // the mbuf to its pool when it was the last.
        unsafe { dpdk_sys::shim_rte_pktmbuf_free(self.mbuf.as_ptr()) }
    }
}

impl AsRef<[u8]> for MbufSlice<'_> {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl fmt::Debug for MbufSlice<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MbufSlice").field("len", &self.len).finish()
    }
}

/// A fixed-capacity batch of up to [`BURST_SIZE`] owned mbufs: the unit of rx and tx bursts.
///
/// The storage is inline, so filling and draining a batch never allocates. Mbufs left in a batch
/// are freed when it is dropped or [`MbufBatch::clear`]ed.
///
/// A batch takes the EAL lifetime of the mbufs put into it (or of the queue that fills it), so a
/// batch holding mbufs cannot outlive the EAL either:
///
/// ```compile_fail,E0505
/// # use mpterm_dpdk::{Eal, Mbuf, MbufBatch, Mempool};
/// let eal = Eal::init(&[]).unwrap();
/// let pool = Mempool::new(&eal, "pool", 1023, 0, Mempool::DEFAULT_DATA_ROOM).unwrap();
/// let mut batch = MbufBatch::new();
/// batch.push(Mbuf::alloc(&pool).unwrap()).unwrap();
/// drop(eal); // refused: `batch` holds an mbuf that borrows the EAL
/// drop(batch);
/// ```
pub struct MbufBatch<'eal> {
    mbufs: [*mut dpdk_sys::rte_mbuf; BURST_SIZE],
    len: usize,
    _marker: PerCoreMarker<'eal>,
}

impl<'eal> MbufBatch<'eal> {
    /// An empty batch.
    pub fn new() -> MbufBatch<'eal> {
        MbufBatch {
            mbufs: [std::ptr::null_mut(); BURST_SIZE],
            len: 0,
            _marker: PhantomData,
        }
    }

    /// The number of mbufs in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the batch holds no mbuf.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the batch is full.
    pub fn is_full(&self) -> bool {
        self.len == BURST_SIZE
    }

    /// Free slots left.
    pub fn remaining_capacity(&self) -> usize {
        BURST_SIZE - self.len
    }

    /// Adds an mbuf at the end; a full batch hands it back.
    pub fn push(&mut self, mbuf: Mbuf<'eal>) -> Result<(), Mbuf<'eal>> {
        if self.is_full() {
            return Err(mbuf);
        }
        self.mbufs[self.len] = mbuf.into_raw().as_ptr();
        self.len += 1;
        Ok(())
    }

    /// Removes and returns the last mbuf.
    pub fn pop(&mut self) -> Option<Mbuf<'eal>> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        let raw = std::mem::replace(&mut self.mbufs[self.len], std::ptr::null_mut());
        // SAFETY: slots below len hold owned, valid mbufs (rx results or pushed Mbufs).
        NonNull::new(raw).map(|raw| unsafe { Mbuf::from_raw(raw) })
    }

    /// Removes all mbufs in order, as owned handles.
    pub fn drain(&mut self) -> Drain<'_, 'eal> {
        Drain {
            batch: self,
            next: 0,
        }
    }

    /// Frees every mbuf in the batch.
    pub fn clear(&mut self) {
        if self.len > 0 {
            // SAFETY: slots below len hold owned, valid mbufs; they are forgotten right after.
            unsafe {
                dpdk_sys::shim_rte_pktmbuf_free_bulk(self.mbufs.as_mut_ptr(), self.len as u32);
            }
            self.len = 0;
        }
    }

    /// The slots after the filled ones, for an rx burst to fill.
    pub(crate) fn spare_slots(&mut self) -> (*mut *mut dpdk_sys::rte_mbuf, usize) {
        // SAFETY: len <= BURST_SIZE, so the pointer stays within the array.
        (
            unsafe { self.mbufs.as_mut_ptr().add(self.len) },
            BURST_SIZE - self.len,
        )
    }

    /// Records that `count` more slots were filled with owned mbufs.
    ///
    /// # Safety
    ///
    /// The `count` slots after the filled ones must now hold valid mbufs owned by the batch.
    pub(crate) unsafe fn commit_filled(&mut self, count: usize) {
        debug_assert!(self.len + count <= BURST_SIZE);
        self.len += count;
    }

    /// The filled slots, for a tx burst to send.
    pub(crate) fn filled_slots(&mut self) -> (*mut *mut dpdk_sys::rte_mbuf, usize) {
        (self.mbufs.as_mut_ptr(), self.len)
    }

    /// Forgets the first `count` mbufs (the driver took them) and moves the rest to the front.
    pub(crate) fn consume_front(&mut self, count: usize) {
        let count = count.min(self.len);
        self.mbufs.copy_within(count..self.len, 0);
        self.len -= count;
    }
}

impl Default for MbufBatch<'_> {
    fn default() -> Self {
        MbufBatch::new()
    }
}

impl Drop for MbufBatch<'_> {
    fn drop(&mut self) {
        self.clear();
    }
}

impl fmt::Debug for MbufBatch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MbufBatch").field("len", &self.len).finish()
    }
}

/// Iterator returned by [`MbufBatch::drain`]; mbufs not taken are freed when it drops.
#[derive(Debug)]
pub struct Drain<'a, 'eal> {
    batch: &'a mut MbufBatch<'eal>,
    next: usize,
}

impl<'eal> Iterator for Drain<'_, 'eal> {
    type Item = Mbuf<'eal>;

    fn next(&mut self) -> Option<Mbuf<'eal>> {
        if self.next >= self.batch.len {
            return None;
        }
        let raw = std::mem::replace(&mut self.batch.mbufs[self.next], std::ptr::null_mut());
        self.next += 1;
        // SAFETY: slots below len hold owned, valid mbufs; the slot is nulled so it is not freed
        // twice.
        NonNull::new(raw).map(|raw| unsafe { Mbuf::from_raw(raw) })
    }
}

impl Drop for Drain<'_, '_> {
    fn drop(&mut self) {
        // Free what was not taken, then empty the batch.
        for slot in &mut self.batch.mbufs[self.next..self.batch.len] {
            let raw = std::mem::replace(slot, std::ptr::null_mut());
            if !raw.is_null() {
                // SAFETY: the slot held an owned, valid mbuf and is now cleared.
                unsafe { dpdk_sys::shim_rte_pktmbuf_free(raw) };
            }
        }
        self.batch.len = 0;
    }
}
