//! The send buffer: payload handles queued by the owner, kept until acknowledged.

use std::collections::VecDeque;

use crate::Payload;

/// Queued payload from the first unacknowledged byte on. Positions are stream offsets counted
/// from the first byte ever queued, so a lookup is a binary search, not a walk.
#[derive(Debug)]
pub struct SendQueue<P> {
    /// Each buffer with the stream offset of its first byte.
    buffers: VecDeque<(u64, P)>,
    /// Stream offset of the first unacknowledged byte.
    acknowledged: u64,
    /// Stream offset one past the last queued byte.
    end: u64,
    capacity: usize,
}

impl<P: Payload> SendQueue<P> {
    pub fn new(capacity: usize) -> Self {
        SendQueue {
            buffers: VecDeque::new(),
            acknowledged: 0,
            end: 0,
            capacity,
        }
    }

    /// Bytes queued and not yet acknowledged.
    pub fn len(&self) -> usize {
        (self.end - self.acknowledged) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.acknowledged
    }

    pub fn free_space(&self) -> usize {
        self.capacity.saturating_sub(self.len())
    }

    pub fn push(&mut self, payload: P) {
        let len = payload.len() as u64;
        self.buffers.push_back((self.end, payload));
        self.end += len;
    }

    /// Releases the first `bytes` queued bytes.
    pub fn acknowledge(&mut self, bytes: usize) {
        self.acknowledged = (self.acknowledged + bytes as u64).min(self.end);
        while let Some((start, payload)) = self.buffers.front() {
            if start + payload.len() as u64 <= self.acknowledged {
                self.buffers.pop_front();
            } else {
                break;
            }
        }
    }

    pub fn clear(&mut self) {
        self.buffers.clear();
        self.acknowledged = self.end;
    }

    /// Up to `limit` bytes starting `offset` bytes after the first unacknowledged byte, from
    /// one buffer only.
    pub fn slice_at(&self, offset: usize, limit: usize) -> Option<P> {
        let position = self.acknowledged + offset as u64;
        if position >= self.end || limit == 0 {
            return None;
        }
        let index = self
            .buffers
            .partition_point(|(start, _)| *start <= position)
            .checked_sub(1)?;
        let (start, payload) = self.buffers.get(index)?;
        let from = (position - start) as usize;
        let to = payload.len().min(from + limit);
        (from < to).then(|| payload.slice(from..to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn slices_stay_within_one_buffer_and_follow_acks() {
        let mut queue = SendQueue::new(100);
        queue.push(Bytes::from_static(b"hello "));
        queue.push(Bytes::from_static(b"world"));
        assert_eq!(queue.len(), 11);
        assert_eq!(queue.free_space(), 89);
        assert_eq!(
            queue.slice_at(0, 100).unwrap(),
            Bytes::from_static(b"hello ")
        );
        assert_eq!(queue.slice_at(4, 100).unwrap(), Bytes::from_static(b"o "));
        assert_eq!(queue.slice_at(6, 3).unwrap(), Bytes::from_static(b"wor"));
        assert!(queue.slice_at(11, 3).is_none());
        queue.acknowledge(8);
        assert_eq!(queue.len(), 3);
        assert_eq!(queue.slice_at(0, 100).unwrap(), Bytes::from_static(b"rld"));
        queue.acknowledge(100);
        assert!(queue.is_empty());
        assert!(queue.slice_at(0, 1).is_none());
    }
}
