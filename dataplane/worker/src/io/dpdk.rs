//! The worker's packet I/O on DPDK ports: mbufs in, mbufs out.

use core::marker::PhantomData;
use core::ops::Range;

use mpterm_dpdk::{
    alloc_frame_chained, alloc_frame_copied, Mbuf, MbufBatch, MbufSlice, Mempool, RxQueue, TxQueue,
};
use mpterm_engine::Payload;
use mpterm_wire::checksum::Checksum;

use super::{BurstRx, FrameBuilder, PacketIo};
use crate::transmit::{BurstTx, FrameBurst};

/// Payloads shorter than this are copied behind the header; longer ones are chained (zero copy).
///
/// Measured with `cargo bench -p mpterm-worker --bench frame_build` (build and free one frame,
/// 86-byte header, median ns on the 2-core lab machine; "cold" payloads are spread over 39 MB of
/// mbufs, beyond the 32 MiB L3, like data that waited in a send buffer or is retransmitted):
///
/// | payload bytes | 64 | 128 | 256 | 512 | 1024 | 1448 |
/// | --- | --- | --- | --- | --- | --- | --- |
/// | copied, hot  | 57 | 49 | 60 | 63 | 72 | 73 |
/// | chained, hot | 90 | 86 | 89 | 74 | 85 | 73 |
/// | copied, cold | 75 | 174 | 195 | 280 | 274 | 274 |
/// | chained, cold | 87 | 96 | 93 | 92 | 92 | 82 |
///
/// Chaining costs a flat 75-95 ns (an indirect mbuf and a reference on the received one);
/// copying costs less when the payload is still in cache but grows to three times that when it
/// is not. Below 128 bytes copying wins either way (one or two cache lines); from 128 bytes on,
/// chaining loses at most about 35 ns on hot payload and saves 80-200 ns on cold payload.
pub const CHAIN_THRESHOLD: usize = 128;

/// DPDK ports as the worker's packet I/O. Everything it names borrows the EAL for `'eal`, so a
/// worker on DPDK cannot outlive it.
#[derive(Debug)]
pub struct Dpdk<'eal>(PhantomData<&'eal ()>);

impl<'eal> PacketIo for Dpdk<'eal> {
    type Payload = MbufPayload<'eal>;
    type Rx = DpdkRx<'eal>;
    type Tx = TxQueue<'eal>;
    type Builder = TxPools<'eal>;
}

/// A received mbuf as the engine's payload handle: slicing and cloning take references on the
/// same mbuf, so payload received on one side leaves on the other without a copy. It borrows the
/// EAL like the slice it wraps, so an engine holding payload cannot outlive DPDK's memory either.
/// It keeps the sum of its bytes once the engine has taken it ([`Payload::payload_sum`]).
#[derive(Debug, Clone)]
pub struct MbufPayload<'eal> {
    slice: MbufSlice<'eal>,
    sum: Option<Checksum>,
}

impl<'eal> MbufPayload<'eal> {
    /// The whole of `slice`, with no sum yet.
    pub fn new(slice: MbufSlice<'eal>) -> Self {
        MbufPayload { slice, sum: None }
    }

    /// The mbuf view.
    pub fn as_mbuf_slice(&self) -> &MbufSlice<'eal> {
        &self.slice
    }
}

impl<'eal> From<MbufSlice<'eal>> for MbufPayload<'eal> {
    fn from(slice: MbufSlice<'eal>) -> Self {
        MbufPayload::new(slice)
    }
}

impl AsRef<[u8]> for MbufPayload<'_> {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self.slice.as_slice()
    }
}

impl Payload for MbufPayload<'_> {
    /// The bytes of `range` within the view, clamped, never a panic (the trait's contract); the
    /// sum stays only with a slice of the whole view.
    fn slice(&self, range: Range<usize>) -> Self {
        let whole = range.start == 0 && range.end >= self.slice.len();
        MbufPayload {
            slice: self.slice.slice_clamped(range),
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

/// A DPDK receive queue with the burst it fills.
#[derive(Debug)]
pub struct DpdkRx<'eal> {
    queue: RxQueue<'eal>,
    batch: MbufBatch<'eal>,
}

impl<'eal> DpdkRx<'eal> {
    /// The receiving end over `queue`, with its burst allocated here, once.
    pub fn new(queue: RxQueue<'eal>) -> Self {
        DpdkRx {
            queue,
            batch: MbufBatch::new(),
        }
    }
}

impl<'eal> BurstRx for DpdkRx<'eal> {
    type Payload = MbufPayload<'eal>;

    /// `rte_eth_rx_burst` into the batch.
    fn rx_burst(&mut self) -> usize {
        self.queue.rx_burst(&mut self.batch)
    }

    /// Each mbuf becomes a reference-counted slice; a frame spread over several mbufs (not
    /// expected with the configured data room) is freed and counted.
    fn drain(&mut self, mut deliver: impl FnMut(MbufPayload<'eal>)) -> u64 {
        let mut segmented = 0;
        for mbuf in self.batch.drain() {
            match mbuf.into_slice() {
                Ok(slice) => deliver(MbufPayload::new(slice)),
                Err(frame) => {
                    segmented += 1;
                    drop(frame);
                }
            }
        }
        segmented
    }
}

/// The pools frames are built from.
#[derive(Debug, Clone, Copy)]
pub struct TxPools<'eal> {
    /// Header mbufs, and whole frames when the payload is copied.
    pub header: &'eal Mempool<'eal>,
    /// Indirect mbufs that attach a received payload behind a header.
    pub indirect: &'eal Mempool<'eal>,
}

impl<'eal> FrameBuilder for TxPools<'eal> {
    type Payload = MbufPayload<'eal>;
    type Frame = Mbuf<'eal>;

    fn build(&mut self, header: &[u8], payload: Option<&MbufPayload<'eal>>) -> Option<Mbuf<'eal>> {
        build_frame(*self, header, payload.map(MbufPayload::as_mbuf_slice))
    }
}

/// Builds one frame: `header` (the engine's complete headers), then `payload`, chained without a
/// copy when it is at least [`CHAIN_THRESHOLD`] bytes long, copied behind the header otherwise.
/// `None` when a pool is empty (or the frame cannot fit an mbuf): the caller counts the drop and
/// TCP sends the data again.
pub fn build_frame<'eal>(
    pools: TxPools<'eal>,
    header: &[u8],
    payload: Option<&MbufSlice<'eal>>,
) -> Option<Mbuf<'eal>> {
    let header_len = u16::try_from(header.len()).ok()?;
    let mut frame = match payload {
        Some(payload) if payload.len() >= CHAIN_THRESHOLD => {
            alloc_frame_chained(pools.header, pools.indirect, header_len, payload).ok()?
        }
        Some(payload) => alloc_frame_copied(pools.header, header_len, payload.as_slice()).ok()?,
        None => alloc_frame_copied(pools.header, header_len, &[]).ok()?,
    };
    frame.data_mut()[..header.len()].copy_from_slice(header);
    Some(frame)
}

impl<'eal> FrameBurst for MbufBatch<'eal> {
    type Frame = Mbuf<'eal>;

    fn push(&mut self, frame: Mbuf<'eal>) -> Result<(), Mbuf<'eal>> {
        MbufBatch::push(self, frame)
    }

    fn len(&self) -> usize {
        MbufBatch::len(self)
    }

    fn is_full(&self) -> bool {
        MbufBatch::is_full(self)
    }

    fn clear(&mut self) {
        MbufBatch::clear(self);
    }
}

impl<'eal> BurstTx for TxQueue<'eal> {
    type Burst = MbufBatch<'eal>;

    /// `rte_eth_tx_burst`: the mbufs the driver did not take stay in the batch, in order.
    fn tx_burst(&mut self, burst: &mut MbufBatch<'eal>) -> usize {
        TxQueue::tx_burst(self, burst)
    }
}
