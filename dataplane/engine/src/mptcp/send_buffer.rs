//! The connection-level send buffer (RFC 8684 section 3.3): data toward the peer, keyed by
//! data sequence number, held until a DATA_ACK covers it, whatever subflow carried it.
//!
//! Subflows take slices of it by reference (the payload is never copied): the scheduler hands
//! the next unscheduled range to a subflow, and when a subflow stalls or dies, the ranges it
//! held that the peer has not DATA_ACKed are queued for reinjection on another subflow
//! (section 3.3.6). A subflow's own ACK does not free anything here: only the DATA_ACK does.

use std::collections::VecDeque;

use crate::tcp::SendQueue;
use crate::Payload;

/// A range of the data sequence space to be sent (again) on some subflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataRange {
    pub data_seq: u64,
    pub len: u32,
}

/// Ranges waiting for reinjection at most; more are merged into the last one when contiguous
/// or dropped from the queue (the data stays buffered, and the subflows' own retransmissions
/// and the next reinjection pass still cover it).
const MAX_REINJECTION_RANGES: usize = 256;

/// Data toward the peer from the first byte not DATA_ACKed to the last byte queued.
#[derive(Debug)]
pub struct DataSendBuffer<P> {
    /// Data sequence number of stream offset 0 (our IDSN + 1).
    base: u64,
    queue: SendQueue<P>,
    /// Stream offset of the first byte no subflow has been given yet.
    scheduled: u64,
    /// Ranges given to a subflow that can no longer deliver them.
    reinjection: VecDeque<DataRange>,
    /// Where in the queue the next unscheduled byte was last found (see
    /// [`SendQueue::slice_from_cursor`]): new data is taken in order.
    cursor: core::cell::Cell<u64>,
}

impl<P: Payload> DataSendBuffer<P> {
    pub fn new(base: u64, capacity: usize) -> Self {
        DataSendBuffer {
            base,
            queue: SendQueue::new(capacity),
            scheduled: 0,
            reinjection: VecDeque::new(),
            cursor: core::cell::Cell::new(0),
        }
    }

    /// Bytes the relay may still queue.
    pub fn free_space(&self) -> usize {
        self.queue.free_space()
    }

    /// Queues data after everything queued so far.
    pub fn push(&mut self, payload: P) {
        self.queue.push(payload);
    }

    /// Data sequence number one past the last queued byte.
    pub fn end(&self) -> u64 {
        self.base.wrapping_add(self.queue.end())
    }

    /// Bytes ever queued: the offset of the DATA_FIN when the stream ends here.
    pub fn queued_total(&self) -> u64 {
        self.queue.end()
    }

    /// Data sequence number one past the last byte given to a subflow: the highest a DATA_ACK
    /// may acknowledge (section 3.3.2).
    pub fn scheduled_end(&self) -> u64 {
        self.base.wrapping_add(self.scheduled)
    }

    /// Data sequence number of the first byte not DATA_ACKed.
    pub fn unacknowledged(&self) -> u64 {
        self.base.wrapping_add(self.queue.released())
    }

    /// True when every queued byte has been given to a subflow and nothing waits for
    /// reinjection.
    pub fn all_scheduled(&self) -> bool {
        self.scheduled == self.queue.end() && self.reinjection.is_empty()
    }

    /// True when the peer DATA_ACKed every queued byte.
    pub fn all_acknowledged(&self) -> bool {
        self.queue.is_empty()
    }

    /// The DATA_ACK moved to `data_ack`: the bytes before it are freed.
    pub fn acknowledge(&mut self, data_ack: u64) {
        // The caller refuses a DATA_ACK beyond what was sent; one covering our DATA_FIN too
        // frees everything.
        let offset = data_ack.wrapping_sub(self.base).min(self.scheduled);
        self.queue.release_to(offset);
        let released = self.queue.released();
        let base = self.base;
        // Reinjection ranges now acknowledged are dropped, partial ones trimmed.
        self.reinjection.retain_mut(|range| {
            let start = range.data_seq.wrapping_sub(base);
            let end = start + u64::from(range.len);
            if end <= released {
                return false;
            }
            if start < released {
                range.data_seq = base.wrapping_add(released);
                range.len = (end - released) as u32;
            }
            true
        });
    }

    /// The next range to send: a reinjection first, else new data; up to `limit` bytes, from
    /// one buffer only. The flag says it is a reinjection.
    pub fn peek_next(&self, limit: usize) -> Option<(u64, P, bool)> {
        if let Some(range) = self.reinjection.front() {
            let offset = range.data_seq.wrapping_sub(self.base);
            let limit = limit.min(range.len as usize);
            if let Some(payload) = self.queue.slice(offset, limit) {
                return Some((range.data_seq, payload, true));
            }
        }
        let mut cursor = self.cursor.get();
        let payload = self
            .queue
            .slice_from_cursor(self.scheduled, limit, &mut cursor);
        self.cursor.set(cursor);
        Some((self.base.wrapping_add(self.scheduled), payload?, false))
    }

    /// Marks `len` bytes from `data_seq` (returned by [`Self::peek_next`]) as given to a
    /// subflow.
    pub fn consume(&mut self, data_seq: u64, len: usize, reinjection: bool) {
        if reinjection {
            if let Some(range) = self.reinjection.front_mut() {
                let taken = (len as u32).min(range.len);
                range.data_seq = data_seq.wrapping_add(u64::from(taken));
                range.len -= taken;
                if range.len == 0 {
                    crate::queue::pop_front_reusing(&mut self.reinjection);
                }
            }
            return;
        }
        self.scheduled = (self.scheduled + len as u64).min(self.queue.end());
    }

    /// Everything given to subflows so far counts as delivered by them: after a fallback to
    /// plain TCP (section 3.7) the one subflow's own reliability is all there is, and no
    /// DATA_ACK will come to free the buffer.
    pub fn release_scheduled(&mut self) {
        self.queue.release_to(self.scheduled);
        self.reinjection.clear();
    }

    /// Queues a range for reinjection, unless it is DATA_ACKed already.
    pub fn reinject(&mut self, range: DataRange) {
        let released = self.queue.released();
        let start = range.data_seq.wrapping_sub(self.base);
        let end = start + u64::from(range.len);
        if end <= released || start >= self.scheduled {
            return;
        }
        let start = start.max(released);
        let range = DataRange {
            data_seq: self.base.wrapping_add(start),
            len: (end - start) as u32,
        };
        if let Some(last) = self.reinjection.back_mut() {
            if last.data_seq.wrapping_add(u64::from(last.len)) == range.data_seq {
                last.len += range.len;
                return;
            }
        }
        if self.reinjection.len() < MAX_REINJECTION_RANGES {
            self.reinjection.push_back(range);
        }
    }

    /// Ranges waiting for reinjection.
    pub fn reinjection_pending(&self) -> bool {
        !self.reinjection.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn buffer() -> DataSendBuffer<Bytes> {
        let mut buffer = DataSendBuffer::new(1000, 1 << 16);
        buffer.push(Bytes::from_static(b"abcdefgh"));
        buffer.push(Bytes::from_static(b"ijkl"));
        buffer
    }

    #[test]
    fn new_data_is_scheduled_in_order_and_freed_only_by_the_data_ack() {
        let mut buffer = buffer();
        let (seq, payload, again) = buffer.peek_next(5).unwrap();
        assert_eq!((seq, &payload[..], again), (1000, &b"abcde"[..], false));
        buffer.consume(seq, payload.len(), again);
        let (seq, payload, _) = buffer.peek_next(100).unwrap();
        assert_eq!(
            (seq, &payload[..]),
            (1005, &b"fgh"[..]),
            "one buffer at a time"
        );
        buffer.consume(seq, payload.len(), false);
        assert_eq!(buffer.scheduled_end(), 1008);
        buffer.acknowledge(1004);
        assert_eq!(buffer.unacknowledged(), 1004);
        assert!(!buffer.all_scheduled());
        let (seq, payload, _) = buffer.peek_next(100).unwrap();
        buffer.consume(seq, payload.len(), false);
        assert!(buffer.all_scheduled());
        buffer.acknowledge(1012);
        assert!(buffer.all_acknowledged());
    }

    #[test]
    fn reinjection_comes_first_and_skips_what_the_data_ack_covers() {
        let mut buffer = buffer();
        while let Some((seq, payload, again)) = buffer.peek_next(4) {
            buffer.consume(seq, payload.len(), again);
        }
        buffer.acknowledge(1002);
        buffer.reinject(DataRange {
            data_seq: 1000,
            len: 6,
        });
        buffer.reinject(DataRange {
            data_seq: 1006,
            len: 2,
        });
        let (seq, payload, again) = buffer.peek_next(100).unwrap();
        assert_eq!((seq, &payload[..], again), (1002, &b"cdefgh"[..], true));
        buffer.consume(seq, 3, true);
        buffer.acknowledge(1006);
        let (seq, payload, again) = buffer.peek_next(100).unwrap();
        assert_eq!((seq, &payload[..], again), (1006, &b"gh"[..], true));
        buffer.consume(seq, 2, true);
        assert!(buffer.peek_next(100).is_none());
        assert!(!buffer.reinjection_pending());
    }

    #[test]
    fn ranges_never_scheduled_or_already_acknowledged_are_not_reinjected() {
        let mut buffer = buffer();
        buffer.reinject(DataRange {
            data_seq: 1000,
            len: 4,
        });
        assert!(!buffer.reinjection_pending(), "nothing was scheduled yet");
        let (seq, payload, _) = buffer.peek_next(8).unwrap();
        buffer.consume(seq, payload.len(), false);
        buffer.acknowledge(1008);
        buffer.reinject(DataRange {
            data_seq: 1000,
            len: 8,
        });
        assert!(!buffer.reinjection_pending());
    }
}
