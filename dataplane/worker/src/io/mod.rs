//! The worker's packet I/O: the small, burst-shaped seam between the run-to-completion loop and
//! whatever carries its frames.
//!
//! A [`PacketIo`] names four things: the payload handle received frames become (what the engine
//! slices and relays), the receiving end of a port ([`BurstRx`]), its transmitting end
//! ([`BurstTx`], with the bursts [`crate::transmit`] holds), and the [`FrameBuilder`] that turns
//! the engine's header plus payload into a frame the port can send. The loop is generic over it,
//! so every call is resolved at compile time: on DPDK the loop is the same machine code as before
//! the seam existed (`cargo bench -p mpterm-worker --bench worker_loop`, figures in the README).
//!
//! Implementations:
//! - [`Dpdk`]: DPDK ports, physical or virtual (`net_af_packet`, `net_af_xdp`, and the
//!   in-process `net_memif` and `net_ring`), with mbufs as payload;
//! - [`memory`]: an in-memory link between two endpoints with pooled, reference-counted
//!   buffers, no DPDK at all; the pipeline benchmark and the hot-path tests run the worker on it.

pub mod dpdk;
pub mod memory;

pub use dpdk::{build_frame, Dpdk, DpdkRx, MbufPayload, TxPools};

use mpterm_engine::Payload;

use crate::transmit::{BurstTx, FrameOf};

/// One kind of packet I/O the worker loop runs on.
pub trait PacketIo {
    /// A received frame, whole and contiguous, as the engine's payload handle.
    type Payload: Payload;
    /// The receiving end of one port.
    type Rx: BurstRx<Payload = Self::Payload>;
    /// The transmitting end of one port.
    type Tx: BurstTx;
    /// Builds the frames the ports send.
    type Builder: FrameBuilder<Payload = Self::Payload, Frame = FrameOf<Self::Tx>>;

    /// Whether the loop counts its cycles by stage ([`crate::StageCycles`]): three more TSC
    /// reads a turn. Off for the appliance's DPDK ports, so that its loop is the loop it was
    /// before the seam; on for the benchmark's in-memory link.
    const STAGE_CYCLES: bool = false;
}

/// The receiving end of one port: a burst at a time, into a batch it owns.
pub trait BurstRx {
    /// What a received frame becomes.
    type Payload;

    /// Receives up to one burst from the port into the receiver's batch; returns how many
    /// frames arrived. Never blocks.
    fn rx_burst(&mut self) -> usize;

    /// Hands every frame of the batch to `deliver`, in arrival order, and empties the batch.
    /// Returns the frames it could not hand over (spread over several buffers) and freed.
    fn drain(&mut self, deliver: impl FnMut(Self::Payload)) -> u64;
}

/// Builds outgoing frames from the engine's output.
pub trait FrameBuilder {
    /// The payload handle the engine hands out with a header.
    type Payload;
    /// A frame ready for a port.
    type Frame;

    /// One frame: `header` (the engine's complete headers) followed by `payload`. `None` when
    /// no buffer is free (or the frame cannot fit one): the caller counts the drop, and TCP
    /// sends the data again.
    fn build(&mut self, header: &[u8], payload: Option<&Self::Payload>) -> Option<Self::Frame>;
}
