//! The send buffer: payload handles queued by the owner, kept until acknowledged.

use std::collections::VecDeque;

use crate::Payload;

/// Queued payload, from the first byte that may still be sent again to the last queued byte.
/// Positions are stream offsets counted from the first byte ever queued, so a lookup is a
/// binary search, not a walk.
#[derive(Debug)]
pub struct SendQueue<P> {
    /// Each buffer with the stream offset of its first byte.
    buffers: VecDeque<(u64, P)>,
    /// Stream offset of the first byte still held.
    released: u64,
    /// Stream offset one past the last queued byte.
    end: u64,
    capacity: usize,
    /// Buffers released from the front so far: a buffer's place counted from the first one
    /// ever queued is this plus its index, which lets a cursor survive releases.
    popped: u64,
}

impl<P: Payload> SendQueue<P> {
    pub fn new(capacity: usize) -> Self {
        SendQueue {
            buffers: VecDeque::new(),
            released: 0,
            end: 0,
            capacity,
            popped: 0,
        }
    }

    /// Bytes held: not yet acknowledged, or not yet sent.
    pub fn len(&self) -> usize {
        (self.end - self.released) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.released
    }

    /// Stream offset of the first byte still held.
    pub fn released(&self) -> u64 {
        self.released
    }

    /// Stream offset one past the last queued byte.
    pub fn end(&self) -> u64 {
        self.end
    }

    pub fn free_space(&self) -> usize {
        self.capacity.saturating_sub(self.len())
    }

    pub fn push(&mut self, payload: P) {
        let len = payload.len() as u64;
        self.buffers.push_back((self.end, payload));
        self.end += len;
    }

    /// Frees everything before stream offset `offset`.
    pub fn release_to(&mut self, offset: u64) {
        self.released = offset.clamp(self.released, self.end);
        while let Some((start, payload)) = self.buffers.front() {
            if start + payload.len() as u64 <= self.released {
                self.buffers.pop_front();
                self.popped += 1;
            } else {
                break;
            }
        }
    }

    pub fn clear(&mut self) {
        self.popped += self.buffers.len() as u64;
        self.buffers.clear();
        self.released = self.end;
    }

    /// [`SendQueue::slice`] for a reader that moves forward through the queue: `cursor` (the
    /// place of the buffer the last call found, 0 at first) is tried first, then the buffer
    /// after it, before any search. A scheduler taking one segment after the other then finds
    /// each without a binary search.
    pub fn slice_from_cursor(&self, offset: u64, limit: usize, cursor: &mut u64) -> Option<P> {
        if offset < self.released || offset >= self.end || limit == 0 {
            return None;
        }
        let first = cursor.saturating_sub(self.popped) as usize;
        for index in [first, first + 1] {
            let Some((start, payload)) = self.buffers.get(index) else {
                break;
            };
            if *start <= offset && offset < start + payload.len() as u64 {
                *cursor = self.popped + index as u64;
                let from = (offset - start) as usize;
                let to = payload.len().min(from + limit);
                return (from < to).then(|| payload.slice(from..to));
            }
        }
        let index = self.index_holding(offset)?;
        *cursor = self.popped + index as u64;
        self.slice(offset, limit)
    }

    /// The index of the buffer that holds stream offset `offset` (if any still does).
    fn index_holding(&self, offset: u64) -> Option<usize> {
        self.buffers
            .partition_point(|(start, _)| *start <= offset)
            .checked_sub(1)
    }

    /// The buffer that holds stream offset `offset`, and where in it that offset is.
    fn buffer_holding(&self, offset: u64) -> Option<(&P, usize)> {
        let (start, payload) = self.buffers.get(self.index_holding(offset)?)?;
        Some((payload, (offset - start) as usize))
    }

    /// Exactly `len` bytes from stream offset `offset`, from one buffer only, also before
    /// [`SendQueue::released`] as long as that buffer is still held (it holds unreleased
    /// bytes too).
    pub fn slice_retained(&self, offset: u64, len: usize) -> Option<P> {
        if offset >= self.end || len == 0 {
            return None;
        }
        let (payload, from) = self.buffer_holding(offset)?;
        let to = from.checked_add(len)?;
        (to <= payload.len()).then(|| payload.slice(from..to))
    }

    /// Up to `limit` bytes from stream offset `offset`, from one buffer only.
    pub fn slice(&self, offset: u64, limit: usize) -> Option<P> {
        if offset < self.released || offset >= self.end || limit == 0 {
            return None;
        }
        let (payload, from) = self.buffer_holding(offset)?;
        let to = payload.len().min(from + limit);
        (from < to).then(|| payload.slice(from..to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn slices_stay_within_one_buffer_and_follow_releases() {
        let mut queue = SendQueue::new(100);
        queue.push(Bytes::from_static(b"hello "));
        queue.push(Bytes::from_static(b"world"));
        assert_eq!(queue.len(), 11);
        assert_eq!(queue.free_space(), 89);
        assert_eq!(queue.slice(0, 100).unwrap(), Bytes::from_static(b"hello "));
        assert_eq!(queue.slice(4, 100).unwrap(), Bytes::from_static(b"o "));
        assert_eq!(queue.slice(6, 3).unwrap(), Bytes::from_static(b"wor"));
        assert!(queue.slice(11, 3).is_none());
        queue.release_to(8);
        assert_eq!(queue.len(), 3);
        assert!(queue.slice(7, 1).is_none(), "released bytes are gone");
        assert_eq!(queue.slice(8, 100).unwrap(), Bytes::from_static(b"rld"));
        queue.release_to(100);
        assert!(queue.is_empty());
        assert!(queue.slice(11, 1).is_none());
    }

    #[test]
    fn a_cursor_finds_the_same_slices_as_a_search_across_releases() {
        let mut queue = SendQueue::new(1000);
        for word in ["alpha ", "beta ", "gamma ", "delta"] {
            queue.push(Bytes::from(word));
        }
        let mut cursor = 0;
        let mut offset = 0;
        while offset < queue.end() {
            let expected = queue.slice(offset, 4).unwrap();
            let found = queue.slice_from_cursor(offset, 4, &mut cursor).unwrap();
            assert_eq!(found, expected, "at offset {offset}");
            offset += found.len() as u64;
            if offset == 11 {
                queue.release_to(11); // "alpha " and "beta " go
            }
        }
        // Backwards (a reinjection) still finds the right buffer.
        assert_eq!(
            queue.slice_from_cursor(12, 3, &mut cursor).unwrap(),
            Bytes::from_static(b"amm")
        );
        assert!(
            queue.slice_from_cursor(5, 3, &mut cursor).is_none(),
            "released"
        );
    }
}
