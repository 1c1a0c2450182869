//! The buffer seam: the engine holds payload by handle, never by copy.

use core::ops::Range;

use mpterm_wire::checksum::Checksum;

/// A read-only, contiguous byte buffer that is cheap to clone (a reference count) and to slice.
///
/// The DPDK worker implements it for its mbuf slices, so the payload of a segment received on
/// one side leaves on the other side in the same mbuf; tests use [`bytes::Bytes`]-like buffers.
/// The engine never copies payload except to compute checksums.
pub trait Payload: Clone + AsRef<[u8]> {
    /// The bytes of `range` that lie within the buffer, as a buffer of their own.
    ///
    /// Total, never a panic: a range reaching beyond the end is clamped to the end, and an
    /// inverted or empty range (or one starting at or after the end) gives an empty buffer. The
    /// engine computes ranges from what it checked, but a range derived from network input must
    /// never be able to bring the worker down (`slice(2..9)` of 5 bytes is bytes 2..5;
    /// `slice(4..1)` and `slice(7..9)` are empty).
    fn slice(&self, range: Range<usize>) -> Self;

    /// The ones'-complement sum (RFC 1071) of exactly this buffer's bytes, when one was
    /// computed and kept with the handle. The engine sums a received payload once, for its TCP
    /// checksum, and keeps the sum here: the DSS checksum of its mapping, the TCP checksum of
    /// the segment that relays it and of every retransmission add it instead of reading the
    /// bytes again (sums compose, RFC 1071 section 2).
    ///
    /// A handle that keeps one must drop it from every slice that does not cover the whole
    /// buffer (the sum would be wrong for it). The default keeps none: every checksum then
    /// reads the bytes.
    fn payload_sum(&self) -> Option<Checksum> {
        None
    }

    /// Keeps `sum`, which the caller computed over exactly this buffer's bytes.
    fn set_payload_sum(&mut self, sum: Checksum) {
        let _ = sum;
    }

    fn len(&self) -> usize {
        self.as_ref().len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `range` cut to a buffer of `len` bytes, as [`Payload::slice`] requires:
/// `start <= end <= len` always.
#[cfg(any(test, feature = "bytes"))]
fn clamp(range: Range<usize>, len: usize) -> Range<usize> {
    let end = range.end.min(len);
    range.start.min(end)..end
}

#[cfg(any(test, feature = "bytes"))]
impl Payload for bytes::Bytes {
    fn slice(&self, range: Range<usize>) -> Self {
        // `Bytes::slice` panics on a range outside the buffer; the clamped one never is.
        bytes::Bytes::slice(self, clamp(range, self.len()))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::Payload;

    fn five() -> Bytes {
        Bytes::from_static(b"hello")
    }

    /// `Payload::slice` through the trait, not `Bytes`'s own (panicking) inherent method.
    fn slice(payload: &Bytes, range: core::ops::Range<usize>) -> Bytes {
        Payload::slice(payload, range)
    }

    #[test]
    fn ranges_within_the_buffer_give_their_bytes() {
        assert_eq!(slice(&five(), 0..5), "hello");
        assert_eq!(slice(&five(), 1..3), "el");
        assert_eq!(
            slice(&slice(&five(), 1..5), 1..3),
            "ll",
            "a slice of a slice"
        );
    }

    #[test]
    fn a_range_reaching_beyond_the_end_is_clamped() {
        assert_eq!(slice(&five(), 2..9), "llo");
        assert_eq!(slice(&five(), 0..usize::MAX), "hello");
        assert_eq!(
            slice(&slice(&five(), 1..4), 2..10),
            "l",
            "clamped to the slice"
        );
    }

    #[test]
    fn inverted_empty_and_past_the_end_ranges_give_an_empty_buffer() {
        let (from, to) = (4, 1);
        assert!(slice(&five(), from..to).is_empty(), "inverted");
        assert!(slice(&five(), 3..3).is_empty(), "empty");
        assert!(slice(&five(), 5..5).is_empty(), "at the end");
        assert!(slice(&five(), 7..9).is_empty(), "past the end");
        assert!(slice(&five(), usize::MAX..usize::MAX).is_empty());
        let (high, low) = (usize::MAX, 0);
        assert!(slice(&five(), high..low).is_empty());
        assert!(slice(&Bytes::new(), 0..1).is_empty(), "an empty buffer");
    }
}
