//! The transmit side of the worker: built frames are queued per port and sent in bursts, and a
//! frame a port refuses (its transmit ring is full) is held, never freed.
//!
//! Once the engine has handed a frame out it has counted it as sent, and TCP will only send the
//! data again after a retransmission timeout; freeing the frames a full ring refuses was loss we
//! inflicted on ourselves. Instead:
//! - each port has one pending burst (fixed capacity, allocated at start-up); frames the port
//!   does not take stay at its front, in order, and go first on the next attempt;
//! - when a frame is built for a port whose burst is full and still refused, it is held aside
//!   (one slot for the whole worker), and [`Transmitter::ready`] answers no until the port has
//!   taken it: the worker stops pulling frames from the engine, which keeps producing them
//!   lazily from its send queues, so nothing is lost and nothing grows here (push-back);
//! - so the worker holds at most one burst per port plus one frame, and a full ring slows the
//!   sender instead of dropping its segments.
//!
//! A port that takes nothing at all for [`STUCK_PORT_TIMEOUT`] (a dead link, a wedged driver) is
//! given up on: its held frame and every further frame that finds its burst full are freed and
//! counted ([`Transmitter::dropped`], published as `tx_dropped_full`), so that one dead port
//! cannot stall the others for good. Its pending burst is still offered on every flush, and the
//! first frame it takes ends the stuck state.
//!
//! The seam is the burst-shaped [`BurstTx`] trait: DPDK's `TxQueue` implements it with
//! `MbufBatch` bursts (`crate::io::dpdk`), the in-memory link with its own bursts
//! (`crate::io::memory`), and the unit tests with an in-memory ring that refuses frames.

use core::time::Duration;

use mpterm_engine::{Engine, Instant, Payload, TokenRegistry, Transmit};
use rand_core::RngCore;

/// How long a port may refuse every frame before it is taken for stuck and frames for it are
/// dropped rather than held. A full ring drains in microseconds (af_packet hands frames to the
/// kernel at once; a 1024-descriptor NIC ring of full-size frames drains in 1.2 ms at 10 Gbit/s
/// and 12 ms at 1 Gbit/s, but frees descriptors one by one, and any frame taken resets the
/// clock), so 10 ms without a single frame taken means the port is not coming back soon; TCP's
/// retransmission timeout (at least 200 ms) is far longer.
pub const STUCK_PORT_TIMEOUT: Duration = Duration::from_millis(10);

/// A fixed-capacity burst of frames: filled at the back, sent from the front.
pub trait FrameBurst: Default {
    /// One frame, owned (dropping it frees it).
    type Frame;

    /// Adds a frame at the back; a full burst hands it back.
    fn push(&mut self, frame: Self::Frame) -> Result<(), Self::Frame>;

    /// The number of frames in the burst.
    fn len(&self) -> usize;

    /// Whether no more frames fit.
    fn is_full(&self) -> bool;

    /// Whether the burst holds no frame.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Frees every frame in the burst.
    fn clear(&mut self);
}

/// The transmitting end of one port, as the worker drives it.
pub trait BurstTx {
    /// The bursts this port sends.
    type Burst: FrameBurst;

    /// Hands frames from the front of `burst` to the port, and returns how many it took. The
    /// ones it took leave the burst; the rest stay at its front, in order.
    fn tx_burst(&mut self, burst: &mut Self::Burst) -> usize;
}

/// The frame type of a port's bursts.
pub type FrameOf<P> = <<P as BurstTx>::Burst as FrameBurst>::Frame;

/// Every port's pending burst, and the one frame held aside for a port whose burst is full.
pub struct Transmitter<P: BurstTx> {
    ports: Vec<PortQueue<P>>,
    held_aside: Option<HeldFrame<FrameOf<P>>>,
    dropped: u64,
}

/// One port with the burst it has yet to take.
struct PortQueue<P: BurstTx> {
    port: P,
    pending: P::Burst,
    /// When the port last refused a whole burst, if it has taken nothing since.
    refusing_since: Option<Instant>,
}

impl<P: BurstTx> PortQueue<P> {
    /// Offers the pending burst to the port; returns how many frames it took.
    fn send(&mut self, now: Instant) -> usize {
        if self.pending.is_empty() {
            return 0;
        }
        let taken = self.port.tx_burst(&mut self.pending);
        if taken > 0 {
            self.refusing_since = None;
        } else if self.refusing_since.is_none() {
            self.refusing_since = Some(now);
        }
        taken
    }

    /// Whether the port has refused everything for [`STUCK_PORT_TIMEOUT`].
    fn is_stuck(&self, now: Instant) -> bool {
        self.refusing_since
            .is_some_and(|since| now.saturating_since(since) >= STUCK_PORT_TIMEOUT)
    }

    /// Puts `frame` at the back of the pending burst, sending the burst first if it is full and
    /// as soon as it fills; hands the frame back if the port leaves no room.
    fn place(&mut self, now: Instant, frame: FrameOf<P>) -> Result<(), FrameOf<P>> {
        let frame = match self.pending.push(frame) {
            Ok(()) => {
                if self.pending.is_full() {
                    self.send(now);
                }
                return Ok(());
            }
            Err(frame) => frame,
        };
        self.send(now);
        self.pending.push(frame)
    }
}

/// A frame built for `port` that found the port's burst full.
struct HeldFrame<F> {
    port: usize,
    frame: F,
}

impl<P: BurstTx> Transmitter<P> {
    /// A transmitter over `ports` (index `i` is the engine's interface `i`), with one empty
    /// burst each: everything it will ever hold is allocated here.
    pub fn new(ports: Vec<P>) -> Self {
        Transmitter {
            ports: ports
                .into_iter()
                .map(|port| PortQueue {
                    port,
                    pending: P::Burst::default(),
                    refusing_since: None,
                })
                .collect(),
            held_aside: None,
            dropped: 0,
        }
    }

    /// The number of ports.
    pub fn port_count(&self) -> usize {
        self.ports.len()
    }

    /// Whether the worker may pull another frame from the engine.
    ///
    /// First retries the frame held aside, if any, sending its port's burst to make room. While
    /// that port still refuses, the answer is no (push-back), unless the port is stuck (it has
    /// taken nothing for [`STUCK_PORT_TIMEOUT`]): then the frame is freed and counted, and
    /// pulling goes on.
    pub fn ready(&mut self, now: Instant) -> bool {
        let Some(HeldFrame { port, frame }) = self.held_aside.take() else {
            return true;
        };
        let queue = &mut self.ports[port];
        match queue.place(now, frame) {
            Ok(()) => true,
            Err(frame) if queue.is_stuck(now) => {
                drop(frame);
                self.dropped += 1;
                true
            }
            Err(frame) => {
                self.held_aside = Some(HeldFrame { port, frame });
                false
            }
        }
    }

    /// Queues `frame` for `port`; a full burst is sent at once. A frame the port has no room for
    /// is held aside, and [`Transmitter::ready`] turns false until the port takes it.
    ///
    /// Call it only after `ready` said yes. A frame that cannot be kept (the slot aside is
    /// taken, the port is stuck, or there is no such port) is freed and counted, never leaked.
    pub fn queue(&mut self, now: Instant, port: usize, frame: FrameOf<P>) {
        let Some(queue) = self.ports.get_mut(port) else {
            drop(frame);
            self.dropped += 1;
            return;
        };
        if let Err(frame) = queue.place(now, frame) {
            if self.held_aside.is_some() || queue.is_stuck(now) {
                drop(frame);
                self.dropped += 1;
            } else {
                self.held_aside = Some(HeldFrame { port, frame });
            }
        }
    }

    /// Offers every port its pending burst (the end of a loop iteration): what a port refuses
    /// stays pending, in order, for the next attempt.
    pub fn flush(&mut self, now: Instant) {
        for queue in &mut self.ports {
            queue.send(now);
        }
    }

    /// Whether frames wait for a port that is expected to take them soon (any but a stuck
    /// one): an idle worker must not sleep then, since a full ring drains in microseconds.
    pub fn is_holding(&self, now: Instant) -> bool {
        self.held_aside.is_some()
            || self
                .ports
                .iter()
                .any(|queue| !queue.pending.is_empty() && !queue.is_stuck(now))
    }

    /// The frames held: every port's pending burst and the frame held aside.
    pub fn held_frames(&self) -> usize {
        let pending: usize = self.ports.iter().map(|queue| queue.pending.len()).sum();
        pending + usize::from(self.held_aside.is_some())
    }

    /// Frames freed unsent so far: for a stuck port, for no port, or held when the worker
    /// stopped ([`Transmitter::discard_held`]).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Frees every frame still held and counts it as dropped: the worker is stopping.
    pub fn discard_held(&mut self) {
        self.dropped += self.held_frames() as u64;
        self.held_aside = None;
        for queue in &mut self.ports {
            queue.pending.clear();
            queue.refusing_since = None;
        }
    }
}

impl<P: BurstTx> core::fmt::Debug for Transmitter<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Transmitter")
            .field("ports", &self.ports.len())
            .field("held_frames", &self.held_frames())
            .field("dropped", &self.dropped)
            .finish()
    }
}

/// What one [`pull_from_engine`] moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Pulled {
    /// Frames the engine handed out.
    pub frames: usize,
    /// Of those, frames `build` could not build (a pool was empty); freed by the engine's
    /// handle, counted by the caller.
    pub unbuilt: u64,
}

/// Pulls frames from the engine, builds each with `build` and queues it on its port, for as
/// long as the engine has frames and the transmitter is [`ready`](Transmitter::ready). Frames
/// not pulled stay in the engine (its output queue, its connections' send queues, from which it
/// builds segments only when asked) and are pulled on a later loop iteration.
pub(crate) fn pull_from_engine<P, R, T, B>(
    engine: &mut Engine<P, R, T>,
    transmitter: &mut Transmitter<B>,
    now: Instant,
    mut build: impl FnMut(&Transmit<P>) -> Option<FrameOf<B>>,
) -> Pulled
where
    P: Payload,
    R: RngCore,
    T: TokenRegistry,
    B: BurstTx,
{
    let mut pulled = Pulled::default();
    while transmitter.ready(now) {
        let Some(transmit) = engine.poll_transmit(now) else {
            break;
        };
        pulled.frames += 1;
        match build(&transmit) {
            Some(frame) => transmitter.queue(now, transmit.interface, frame),
            None => pulled.unbuilt += 1,
        }
    }
    pulled
}

#[cfg(test)]
#[path = "transmit_tests.rs"]
mod tests;
