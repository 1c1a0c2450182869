//! An in-memory link: the worker's packet I/O without DPDK, for the pipeline benchmark, the
//! hot-path tests and any peer written against the same traits.
//!
//! The pieces mirror DPDK's so that the worker does the same work on them:
//! - [`BufferPool`] is a mempool: a fixed number of fixed-size buffers, all allocated when the
//!   pool is made; a buffer returns to the pool when its last handle drops.
//! - [`PoolBuffer`] is a received mbuf as the engine's payload: a reference-counted view,
//!   sliced and cloned without a copy.
//! - [`MemoryFrame`] is a frame ready to send: a header buffer with the payload chained behind
//!   it (copied into the header buffer below [`CHAIN_THRESHOLD`] bytes, like mbufs).
//! - [`MemoryLink`] is the wire between two ends. What one end transmits waits in that
//!   direction's transmit ring until [`MemoryLink::carry`] moves it, linearised into a buffer of
//!   the receiving end's pool, into the receiving end's ring: the work a NIC's DMA does, done
//!   outside either end's loop, so that it is charged to neither.
//!
//! Everything is single-threaded (`Rc`, `RefCell`): one thread drives both ends and the link,
//! which is what makes the pipeline benchmark deterministic. Nothing allocates after
//! construction: rings and bursts are presized, and buffers are recycled.

use core::cell::RefCell;
use core::ops::Range;
use std::collections::VecDeque;
use std::rc::Rc;

use mpterm_engine::Payload;
use mpterm_wire::checksum::Checksum;

use super::{BurstRx, FrameBuilder, PacketIo};
use crate::io::dpdk::CHAIN_THRESHOLD;
use crate::transmit::{BurstTx, FrameBurst};

/// Frames per burst, as on DPDK (`mpterm_dpdk::BURST_SIZE`).
pub const MEMORY_BURST: usize = 32;

/// The in-memory link as the worker's packet I/O.
#[derive(Debug)]
pub struct Memory;

impl PacketIo for Memory {
    type Payload = PoolBuffer;
    type Rx = MemoryRx;
    type Tx = MemoryTx;
    type Builder = MemoryFrames;
    const STAGE_CYCLES: bool = true;
}

/// What the pool's buffers share: the free list, presized to hold them all.
#[derive(Debug)]
struct PoolShared {
    free: RefCell<Vec<Rc<[u8]>>>,
    buffer_size: usize,
    buffers: usize,
}

/// A fixed set of fixed-size buffers, allocated once.
#[derive(Debug, Clone)]
pub struct BufferPool {
    shared: Rc<PoolShared>,
}

impl BufferPool {
    /// `buffers` buffers of `buffer_size` bytes each, allocated here and never again.
    pub fn new(buffers: usize, buffer_size: usize) -> Self {
        let free = (0..buffers)
            .map(|_| Rc::<[u8]>::from(vec![0u8; buffer_size]))
            .collect();
        BufferPool {
            shared: Rc::new(PoolShared {
                free: RefCell::new(free),
                buffer_size,
                buffers,
            }),
        }
    }

    /// The size of every buffer.
    pub fn buffer_size(&self) -> usize {
        self.shared.buffer_size
    }

    /// Buffers free now.
    pub fn available(&self) -> usize {
        self.shared.free.borrow().len()
    }

    /// Buffers handed out and not yet returned.
    pub fn in_use(&self) -> usize {
        self.shared.buffers - self.available()
    }

    /// A buffer filled by `fill`, which writes into the whole buffer and returns how many
    /// bytes it wrote (at most the buffer size), or `None` to give the buffer back. `None`
    /// also when the pool is empty.
    pub fn alloc_with(&self, fill: impl FnOnce(&mut [u8]) -> Option<usize>) -> Option<PoolBuffer> {
        let mut bytes = self.shared.free.borrow_mut().pop()?;
        // Only the pool held it (a buffer returns when its last handle drops), so it is unique.
        let written = match Rc::get_mut(&mut bytes) {
            Some(buffer) => fill(buffer),
            None => None,
        };
        let mut buffer = PoolBuffer {
            bytes: Some(bytes),
            start: 0,
            end: 0,
            pool: Rc::clone(&self.shared),
            sum: None,
        };
        // Dropping `buffer` on the way out of a failed fill returns it to the pool.
        let written = written.filter(|&written| written <= self.shared.buffer_size)?;
        buffer.end = written as u32;
        Some(buffer)
    }

    /// A buffer holding a copy of `bytes`; `None` when the pool is empty or `bytes` does not fit.
    pub fn alloc_copy(&self, bytes: &[u8]) -> Option<PoolBuffer> {
        self.alloc_with(|buffer| {
            let target = buffer.get_mut(..bytes.len())?;
            target.copy_from_slice(bytes);
            Some(bytes.len())
        })
    }
}

/// A reference-counted view into a pool buffer: what a received frame becomes, and the payload
/// the engine slices, holds and relays. The buffer goes back to its pool with its last view.
#[derive(Debug, Clone)]
pub struct PoolBuffer {
    /// Always `Some` until dropped (taken in `drop` to return it to the pool).
    bytes: Option<Rc<[u8]>>,
    start: u32,
    end: u32,
    pool: Rc<PoolShared>,
    /// The sum of exactly `start..end`, once the engine has computed it.
    sum: Option<Checksum>,
}

impl AsRef<[u8]> for PoolBuffer {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        match &self.bytes {
            Some(bytes) => &bytes[self.start as usize..self.end as usize],
            None => &[],
        }
    }
}

impl Payload for PoolBuffer {
    /// The bytes of `range` within the view, clamped to it (the trait's contract: never a panic).
    #[inline]
    fn slice(&self, range: Range<usize>) -> Self {
        let len = (self.end - self.start) as usize;
        let end = range.end.min(len);
        let start = range.start.min(end);
        let whole = start == 0 && end == len;
        PoolBuffer {
            bytes: self.bytes.clone(),
            start: self.start + start as u32,
            end: self.start + end as u32,
            pool: Rc::clone(&self.pool),
            sum: self.sum.filter(|_| whole),
        }
    }

    fn payload_sum(&self) -> Option<Checksum> {
        self.sum
    }

    fn set_payload_sum(&mut self, sum: Checksum) {
        self.sum = Some(sum);
    }
}

impl Drop for PoolBuffer {
    fn drop(&mut self) {
        if let Some(bytes) = self.bytes.take() {
            if Rc::strong_count(&bytes) == 1 {
                // The free list was made with room for every buffer: this push never allocates.
                self.pool.free.borrow_mut().push(bytes);
            }
        }
    }
}

/// A frame ready to send: headers, and the payload chained behind them without a copy.
#[derive(Debug)]
pub struct MemoryFrame {
    header: PoolBuffer,
    payload: Option<PoolBuffer>,
}

impl MemoryFrame {
    /// A frame of `header` followed by `payload`.
    pub fn new(header: PoolBuffer, payload: Option<PoolBuffer>) -> Self {
        MemoryFrame { header, payload }
    }

    /// The frame's length on the wire.
    pub fn len(&self) -> usize {
        self.header.as_ref().len() + self.payload.as_ref().map_or(0, |p| p.as_ref().len())
    }

    /// Whether the frame has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies the whole frame into `target`; returns the length, or `None` if it does not fit.
    pub fn linearize_into(&self, target: &mut [u8]) -> Option<usize> {
        let header = self.header.as_ref();
        let payload = self.payload.as_ref().map_or(&[][..], |p| p.as_ref());
        let total = header.len() + payload.len();
        let target = target.get_mut(..total)?;
        target[..header.len()].copy_from_slice(header);
        target[header.len()..].copy_from_slice(payload);
        Some(total)
    }
}

/// Builds [`MemoryFrame`]s from one pool, with DPDK's copy-or-chain rule ([`CHAIN_THRESHOLD`]).
#[derive(Debug, Clone)]
pub struct MemoryFrames {
    pool: BufferPool,
}

impl MemoryFrames {
    /// A builder drawing header buffers from `pool`.
    pub fn new(pool: BufferPool) -> Self {
        MemoryFrames { pool }
    }
}

impl FrameBuilder for MemoryFrames {
    type Payload = PoolBuffer;
    type Frame = MemoryFrame;

    fn build(&mut self, header: &[u8], payload: Option<&PoolBuffer>) -> Option<MemoryFrame> {
        match payload {
            Some(payload) if payload.as_ref().len() >= CHAIN_THRESHOLD => {
                let header = self.pool.alloc_copy(header)?;
                Some(MemoryFrame::new(header, Some(payload.clone())))
            }
            Some(payload) => {
                let payload = payload.as_ref();
                let frame = self.pool.alloc_with(|buffer| {
                    let total = header.len() + payload.len();
                    let target = buffer.get_mut(..total)?;
                    target[..header.len()].copy_from_slice(header);
                    target[header.len()..].copy_from_slice(payload);
                    Some(total)
                })?;
                Some(MemoryFrame::new(frame, None))
            }
            None => Some(MemoryFrame::new(self.pool.alloc_copy(header)?, None)),
        }
    }
}

/// A burst of at most [`MEMORY_BURST`] frames.
#[derive(Debug)]
pub struct MemoryBurst {
    frames: VecDeque<MemoryFrame>,
}

impl Default for MemoryBurst {
    fn default() -> Self {
        MemoryBurst {
            frames: VecDeque::with_capacity(MEMORY_BURST),
        }
    }
}

impl FrameBurst for MemoryBurst {
    type Frame = MemoryFrame;

    fn push(&mut self, frame: MemoryFrame) -> Result<(), MemoryFrame> {
        if self.is_full() {
            return Err(frame);
        }
        self.frames.push_back(frame);
        Ok(())
    }

    fn len(&self) -> usize {
        self.frames.len()
    }

    fn is_full(&self) -> bool {
        self.frames.len() == MEMORY_BURST
    }

    fn clear(&mut self) {
        self.frames.clear();
    }
}

/// One direction of the link.
#[derive(Debug)]
struct Direction {
    /// The sender's transmit ring: frames sent, not yet carried.
    in_flight: VecDeque<MemoryFrame>,
    /// The receiver's receive ring: frames carried, not yet received.
    arrived: VecDeque<PoolBuffer>,
    /// Descriptors in each ring.
    ring_size: usize,
    /// The receiving end's pool, which carried frames are copied into.
    receiver_pool: BufferPool,
    counters: DirectionCounters,
}

/// What one direction of a [`MemoryLink`] carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionCounters {
    /// Frames moved into the receiver's ring.
    pub frames: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Frames dropped because they did not fit a buffer of the receiver's pool.
    pub dropped_too_long: u64,
}

impl Direction {
    fn new(ring_size: usize, receiver_pool: BufferPool) -> Self {
        Direction {
            in_flight: VecDeque::with_capacity(ring_size),
            arrived: VecDeque::with_capacity(ring_size),
            ring_size,
            receiver_pool,
            counters: DirectionCounters::default(),
        }
    }

    /// Moves frames from the transmit ring into the receive ring while the receive ring has
    /// room and the receiver's pool has buffers; the rest wait (a lossless link).
    fn carry(&mut self) -> usize {
        let mut carried = 0;
        while self.arrived.len() < self.ring_size {
            let Some(frame) = self.in_flight.front() else {
                break;
            };
            let length = frame.len();
            if length > self.receiver_pool.buffer_size() {
                self.in_flight.pop_front();
                self.counters.dropped_too_long += 1;
                continue;
            }
            let Some(buffer) = self
                .receiver_pool
                .alloc_with(|target| frame.linearize_into(target))
            else {
                break;
            };
            self.in_flight.pop_front();
            self.arrived.push_back(buffer);
            self.counters.frames += 1;
            self.counters.bytes += length as u64;
            carried += 1;
        }
        carried
    }
}

/// The wire between two ends, `a` and `b`.
#[derive(Debug, Clone)]
pub struct MemoryLink {
    a_to_b: Rc<RefCell<Direction>>,
    b_to_a: Rc<RefCell<Direction>>,
}

/// One end of a [`MemoryLink`]: its receiving and transmitting halves.
#[derive(Debug)]
pub struct MemoryEnd {
    pub rx: MemoryRx,
    pub tx: MemoryTx,
}

impl MemoryLink {
    /// A link with rings of `ring_size` descriptors each way; frames arriving at end `a` are
    /// copied into buffers of `a_pool`, frames arriving at `b` into `b_pool`.
    pub fn new(
        ring_size: usize,
        a_pool: BufferPool,
        b_pool: BufferPool,
    ) -> (MemoryLink, MemoryEnd, MemoryEnd) {
        let a_to_b = Rc::new(RefCell::new(Direction::new(ring_size, b_pool)));
        let b_to_a = Rc::new(RefCell::new(Direction::new(ring_size, a_pool)));
        let end =
            |outgoing: &Rc<RefCell<Direction>>, incoming: &Rc<RefCell<Direction>>| MemoryEnd {
                rx: MemoryRx {
                    direction: Rc::clone(incoming),
                    batch: VecDeque::with_capacity(MEMORY_BURST),
                },
                tx: MemoryTx {
                    direction: Rc::clone(outgoing),
                },
            };
        let a = end(&a_to_b, &b_to_a);
        let b = end(&b_to_a, &a_to_b);
        (MemoryLink { a_to_b, b_to_a }, a, b)
    }

    /// Carries what both ends sent into the other's receive ring; returns the frames moved.
    pub fn carry(&self) -> usize {
        self.a_to_b.borrow_mut().carry() + self.b_to_a.borrow_mut().carry()
    }

    /// Whether frames wait in either direction, sent or carried.
    pub fn is_idle(&self) -> bool {
        [&self.a_to_b, &self.b_to_a].iter().all(|direction| {
            let direction = direction.borrow();
            direction.in_flight.is_empty() && direction.arrived.is_empty()
        })
    }

    /// What was carried from `a` to `b`.
    pub fn a_to_b(&self) -> DirectionCounters {
        self.a_to_b.borrow().counters
    }

    /// What was carried from `b` to `a`.
    pub fn b_to_a(&self) -> DirectionCounters {
        self.b_to_a.borrow().counters
    }
}

/// The receiving half of a [`MemoryEnd`].
#[derive(Debug)]
pub struct MemoryRx {
    direction: Rc<RefCell<Direction>>,
    batch: VecDeque<PoolBuffer>,
}

impl BurstRx for MemoryRx {
    type Payload = PoolBuffer;

    fn rx_burst(&mut self) -> usize {
        let mut direction = self.direction.borrow_mut();
        let mut received = 0;
        while self.batch.len() < MEMORY_BURST {
            let Some(frame) = direction.arrived.pop_front() else {
                break;
            };
            self.batch.push_back(frame);
            received += 1;
        }
        received
    }

    fn drain(&mut self, mut deliver: impl FnMut(PoolBuffer)) -> u64 {
        while let Some(frame) = self.batch.pop_front() {
            deliver(frame);
        }
        0
    }
}

/// The transmitting half of a [`MemoryEnd`].
#[derive(Debug)]
pub struct MemoryTx {
    direction: Rc<RefCell<Direction>>,
}

impl BurstTx for MemoryTx {
    type Burst = MemoryBurst;

    /// Takes frames from the front of the burst while the transmit ring has room.
    fn tx_burst(&mut self, burst: &mut MemoryBurst) -> usize {
        let mut direction = self.direction.borrow_mut();
        let mut taken = 0;
        while direction.in_flight.len() < direction.ring_size {
            let Some(frame) = burst.frames.pop_front() else {
                break;
            };
            direction.in_flight.push_back(frame);
            taken += 1;
        }
        taken
    }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
