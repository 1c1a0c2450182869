//! Building outgoing frames: headers written by the caller, payload either copied or attached
//! without a copy.
//!
//! Both functions return an [`Mbuf`] whose first segment starts with `header_len` zeroed bytes
//! for the caller to fill through [`Mbuf::data_mut`]`()[..header_len]`.
//!
//! Which one the worker should use: DPDK 22.11's af_packet PMD (`eth_af_packet_tx` in
//! `drivers/net/af_packet/rte_eth_af_packet.c`) walks the segment chain (`tmp_mbuf->next`) and
//! copies every segment into the kernel's TX ring, and announces `RTE_ETH_TX_OFFLOAD_MULTI_SEGS`,
//! so chained frames are sent correctly (the integration test checks a chained frame's bytes
//! after a ring loopback). [`alloc_frame_chained`] therefore saves our copy of the payload; the
//! PMD still makes its one copy into the socket ring. [`alloc_frame_copied`] is for small payloads,
//! where an extra indirect mbuf costs more than copying the bytes, and for drivers without
//! multi-segment transmit.
//!
//! Measured on the 2-core development machine (`cargo bench -p mpterm-dpdk --bench bursts --
//! --warm-up-time 1 --measurement-time 3`, build, fill and free one frame with a 54-byte header):
//! 1400 bytes copied 53 ns, 1400 bytes chained 53 ns; a payload sub-slice (clone + drop) 13 ns.
//! Chaining therefore buys no time at full-size segments on this machine; what it does save is
//! the payload's share of the pool's data rooms while frames wait in a tx batch.

use crate::mbuf::{Mbuf, MbufSlice};
use crate::mempool::Mempool;

/// Why a frame could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The pool had no free mbuf.
    #[error("mbuf pool exhausted")]
    PoolExhausted,
    /// Header and payload do not fit in one mbuf's data room (copy) or the header does not (chain).
    #[error("frame of {0} bytes does not fit in an mbuf")]
    TooLong(usize),
    /// DPDK refused to chain the payload segment.
    #[error("mbuf chain limit reached")]
    ChainLimit,
}

/// Allocates one mbuf holding `header_len` zeroed header bytes followed by a copy of `payload`.
pub fn alloc_frame_copied<'eal>(
    pool: &Mempool<'eal>,
    header_len: u16,
    payload: &[u8],
) -> Result<Mbuf<'eal>, FrameError> {
    let total = usize::from(header_len) + payload.len();
    let total_u16 = u16::try_from(total).map_err(|_| FrameError::TooLong(total))?;
    let mut frame = Mbuf::alloc(pool).ok_or(FrameError::PoolExhausted)?;
    let bytes = frame
        .append_unzeroed(total_u16)
        .ok_or(FrameError::TooLong(total))?;
    let (header, body) = bytes.split_at_mut(usize::from(header_len));
    header.fill(0);
    body.copy_from_slice(payload);
    Ok(frame)
}

/// Allocates a header mbuf of `header_len` zeroed bytes from `header_pool` and chains `payload`
/// behind it without copying: an mbuf from `indirect_pool` is attached to the payload's buffer
/// (`rte_pktmbuf_attach`, which takes a reference on it) and narrowed to the slice's bytes.
///
/// `indirect_pool` may be the same as `header_pool`; a separate pool with a data room of 0 avoids
/// wasting a full buffer per indirect mbuf. An empty payload gives a header-only frame.
pub fn alloc_frame_chained<'eal>(
    header_pool: &Mempool<'eal>,
    indirect_pool: &Mempool<'eal>,
    header_len: u16,
    payload: &MbufSlice<'eal>,
) -> Result<Mbuf<'eal>, FrameError> {
    let mut frame = Mbuf::alloc(header_pool).ok_or(FrameError::PoolExhausted)?;
    frame
        .append(header_len)
        .ok_or(FrameError::TooLong(usize::from(header_len)))?;
    if payload.is_empty() {
        return Ok(frame);
    }
    let payload_len =
        u16::try_from(payload.len()).map_err(|_| FrameError::TooLong(payload.len()))?;
    let indirect = Mbuf::alloc(indirect_pool).ok_or(FrameError::PoolExhausted)?;
    let data_off = u16::try_from(payload.offset_in_buffer())
        .map_err(|_| FrameError::TooLong(payload.len()))?;
    // SAFETY: `indirect` is a fresh direct mbuf with refcnt 1, as rte_pktmbuf_attach requires;
    // the payload's mbuf is alive (the slice holds a reference) and attach takes one more, which
    // the indirect mbuf releases when it is freed (after transmission). The slice's bytes lie in
    // that buffer at data_off..data_off+payload_len, so narrowing the view keeps it in bounds.
    // The indirect mbuf is only read from here on (MbufSlice invariant).
    unsafe {
        let raw = indirect.as_ptr();
        dpdk_sys::shim_rte_pktmbuf_attach(raw, payload.mbuf_ptr());
        (*raw).data_off = data_off;
        (*raw).data_len = payload_len;
        (*raw).pkt_len = u32::from(payload_len);
    }
    frame.chain(indirect).map_err(|_| FrameError::ChainLimit)?;
    Ok(frame)
}
