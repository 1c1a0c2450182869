//! The buffer seam: the engine holds payload by handle, never by copy.

use core::ops::Range;

/// A read-only, contiguous byte buffer that is cheap to clone (a reference count) and to slice.
///
/// The DPDK worker implements it for its mbuf slices, so the payload of a segment received on
/// one side leaves on the other side in the same mbuf; tests use [`bytes::Bytes`]-like buffers.
/// The engine never copies payload except to compute checksums.
pub trait Payload: Clone + AsRef<[u8]> {
    /// The same bytes restricted to `range`. The engine only passes ranges inside `0..len()`.
    fn slice(&self, range: Range<usize>) -> Self;

    fn len(&self) -> usize {
        self.as_ref().len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(any(test, feature = "bytes"))]
impl Payload for bytes::Bytes {
    fn slice(&self, range: Range<usize>) -> Self {
        bytes::Bytes::slice(self, range)
    }
}
