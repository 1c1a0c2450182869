//! The receive buffer: in-order chunks for the owner and an out-of-order queue, bounded in
//! bytes and in segments.

use std::collections::VecDeque;

use mpterm_wire::tcp::SackBlocks;
use mpterm_wire::SeqNumber;

use super::{ReceivedChunk, ReceivedMapping};
use crate::Payload;

/// What [`ReceiveQueue::insert`] did with a segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InsertOutcome {
    /// Bytes by which the in-order edge (RCV.NXT) moved.
    pub in_order_advance: usize,
    /// Some bytes were dropped because they lay beyond the window or the queue was full.
    pub dropped: bool,
}

#[derive(Debug)]
struct OutOfOrder<P> {
    seq: SeqNumber,
    relative_seq: u32,
    payload: P,
    mapping: Option<ReceivedMapping>,
}

#[derive(Debug)]
pub struct ReceiveQueue<P> {
    in_order: VecDeque<ReceivedChunk<P>>,
    in_order_bytes: usize,
    out_of_order: Vec<OutOfOrder<P>>,
    out_of_order_bytes: usize,
    /// Sequence number of the latest out-of-order segment, for the first SACK block.
    latest_out_of_order: Option<SeqNumber>,
    capacity: usize,
    max_out_of_order: usize,
}

impl<P: Payload> ReceiveQueue<P> {
    pub fn new(capacity: usize, max_out_of_order: usize) -> Self {
        ReceiveQueue {
            in_order: VecDeque::new(),
            in_order_bytes: 0,
            out_of_order: Vec::new(),
            out_of_order_bytes: 0,
            latest_out_of_order: None,
            capacity,
            max_out_of_order,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Resizes the buffer (receive-buffer autotuning only grows it).
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
    }

    pub fn buffered_bytes(&self) -> usize {
        self.in_order_bytes + self.out_of_order_bytes
    }

    /// True when nothing in order waits for the owner.
    pub fn is_empty(&self) -> bool {
        self.in_order.is_empty()
    }

    pub fn clear(&mut self) {
        self.in_order.clear();
        self.out_of_order.clear();
        self.in_order_bytes = 0;
        self.out_of_order_bytes = 0;
        self.latest_out_of_order = None;
    }

    /// Drops what waits in order for the owner (see [`super::Tcb::rewind_receive`]); data
    /// beyond a gap stays.
    pub fn drop_in_order(&mut self) {
        self.in_order.clear();
        self.in_order_bytes = 0;
    }

    /// True while data beyond a gap is held.
    pub fn has_out_of_order(&self) -> bool {
        !self.out_of_order.is_empty()
    }

    /// Bytes waiting in order for the owner.
    pub fn in_order_bytes(&self) -> usize {
        self.in_order_bytes
    }

    pub fn pop_in_order(&mut self) -> Option<ReceivedChunk<P>> {
        let chunk = self.in_order.pop_front()?;
        self.in_order_bytes -= chunk.payload.len();
        Some(chunk)
    }

    /// Adds a segment's payload. `offset` is its sequence number minus RCV.NXT, `relative_seq`
    /// its sequence number relative to the peer's ISN, `window` the receive window in bytes.
    pub fn insert(
        &mut self,
        rcv_nxt: SeqNumber,
        offset: i32,
        relative_seq: u32,
        payload: P,
        mapping: Option<ReceivedMapping>,
        window: usize,
    ) -> InsertOutcome {
        let mut outcome = InsertOutcome::default();
        let mut payload = payload;
        let mut offset = i64::from(offset);
        let mut relative_seq = relative_seq;
        // Trim what was already received (RFC 9293 3.10.7.4, seventh).
        if offset < 0 {
            let duplicate = (-offset) as usize;
            if duplicate >= payload.len() {
                return outcome;
            }
            payload = payload.slice(duplicate..payload.len());
            relative_seq = relative_seq.wrapping_add(duplicate as u32);
            offset = 0;
        }
        // Trim what lies beyond the window.
        let room = window as i64 - offset;
        if room <= 0 {
            outcome.dropped = true;
            return outcome;
        }
        if payload.len() as i64 > room {
            payload = payload.slice(0..room as usize);
            outcome.dropped = true;
        }
        if offset > 0 {
            self.insert_out_of_order(
                rcv_nxt,
                rcv_nxt + offset as u32,
                relative_seq,
                payload,
                mapping,
                &mut outcome,
            );
            return outcome;
        }
        let mut next = rcv_nxt + payload.len() as u32;
        outcome.in_order_advance += payload.len();
        self.push_in_order(relative_seq, payload, mapping);
        // Move now-contiguous out-of-order segments across, all in one drain (the queue is
        // sorted by sequence and may hold a whole window after a loss).
        let mut reached = next;
        let contiguous = self
            .out_of_order
            .iter()
            .take_while(|entry| {
                let contiguous = entry.seq.distance_from(reached) <= 0;
                if contiguous {
                    let end = entry.seq + entry.payload.len() as u32;
                    if end.distance_from(reached) > 0 {
                        reached = end;
                    }
                }
                contiguous
            })
            .count();
        for entry in self.out_of_order.drain(..contiguous) {
            self.out_of_order_bytes -= entry.payload.len();
            let already = next.distance_from(entry.seq).max(0) as usize;
            if already >= entry.payload.len() {
                continue;
            }
            let payload = entry.payload.slice(already..entry.payload.len());
            next = next + payload.len() as u32;
            outcome.in_order_advance += payload.len();
            self.in_order_bytes += payload.len();
            self.in_order.push_back(ReceivedChunk {
                subflow_seq: entry.relative_seq.wrapping_add(already as u32),
                payload,
                mapping: entry.mapping,
            });
        }
        if self.out_of_order.is_empty() {
            self.latest_out_of_order = None;
        }
        outcome
    }

    fn push_in_order(&mut self, relative_seq: u32, payload: P, mapping: Option<ReceivedMapping>) {
        self.in_order_bytes += payload.len();
        self.in_order.push_back(ReceivedChunk {
            subflow_seq: relative_seq,
            payload,
            mapping,
        });
    }

    /// Stores a segment beyond RCV.NXT. The queue stays sorted by sequence number and its
    /// entries never overlap: entries the new segment covers are replaced, and the new segment
    /// is trimmed where its neighbours already hold the bytes. So the queue holds at most one
    /// window of bytes however the peer slices its retransmissions.
    fn insert_out_of_order(
        &mut self,
        rcv_nxt: SeqNumber,
        seq: SeqNumber,
        relative_seq: u32,
        payload: P,
        mapping: Option<ReceivedMapping>,
        outcome: &mut InsertOutcome,
    ) {
        let offset_of = |seq: SeqNumber| i64::from(seq.distance_from(rcv_nxt));
        let mut start = offset_of(seq);
        let mut end = start + payload.len() as i64;
        let mut relative_seq = relative_seq;
        let mut payload = payload;
        // Entries wholly inside the new segment are superseded by it: they start at or after
        // it (the queue is sorted and does not overlap), so only those from its start on are
        // looked at, up to its end.
        let mut index = self
            .out_of_order
            .partition_point(|entry| offset_of(entry.seq) < start);
        while let Some(entry) = self.out_of_order.get(index) {
            let entry_start = offset_of(entry.seq);
            let entry_end = entry_start + entry.payload.len() as i64;
            if entry_start >= end {
                break;
            }
            if entry_end <= end && entry_end - entry_start < end - start {
                let removed = self.out_of_order.remove(index);
                self.out_of_order_bytes -= removed.payload.len();
            } else {
                index += 1;
            }
        }
        let position = self
            .out_of_order
            .partition_point(|entry| offset_of(entry.seq) < start);
        // Trim the head against the predecessor and the tail against the successor.
        if let Some(previous) = position.checked_sub(1).map(|i| &self.out_of_order[i]) {
            let previous_end = offset_of(previous.seq) + previous.payload.len() as i64;
            if previous_end > start {
                let cut = (previous_end - start).min(end - start);
                start += cut;
                relative_seq = relative_seq.wrapping_add(cut as u32);
            }
        }
        if let Some(next) = self.out_of_order.get(position) {
            end = end.min(offset_of(next.seq).max(start));
        }
        if start >= end {
            // Everything is held already.
            self.latest_out_of_order = Some(seq);
            return;
        }
        let skip = (start - offset_of(seq)) as usize;
        payload = payload.slice(skip..skip + (end - start) as usize);
        if self.out_of_order.len() >= self.max_out_of_order {
            outcome.dropped = true;
            return;
        }
        self.out_of_order_bytes += payload.len();
        let seq = rcv_nxt + start as u32;
        self.latest_out_of_order = Some(seq);
        self.out_of_order.insert(
            position,
            OutOfOrder {
                seq,
                relative_seq,
                payload,
                mapping,
            },
        );
    }

    /// The out-of-order data as merged `[left, right)` ranges in sequence order.
    pub fn out_of_order_ranges(&self) -> impl Iterator<Item = (SeqNumber, SeqNumber)> + '_ {
        let mut entries = self.out_of_order.iter().peekable();
        core::iter::from_fn(move || {
            let first = entries.next()?;
            let left = first.seq;
            let mut right = first.seq + first.payload.len() as u32;
            while let Some(next) = entries.next_if(|next| next.seq.distance_from(right) <= 0) {
                right = right.max(next.seq + next.payload.len() as u32);
            }
            Some((left, right))
        })
    }

    /// Up to `limit` SACK blocks (RFC 2018 section 4): the block holding the most recently
    /// received segment first, then the others in sequence order.
    pub fn sack_blocks(&self, limit: usize) -> SackBlocks {
        let mut blocks = SackBlocks::default();
        let contains_latest = |(left, right): &(SeqNumber, SeqNumber)| {
            self.latest_out_of_order.is_some_and(|latest| {
                latest.distance_from(*left) >= 0 && right.distance_from(latest) > 0
            })
        };
        let latest = self.out_of_order_ranges().find(contains_latest);
        if let Some((left, right)) = latest {
            blocks.push(left, right);
        }
        for range in self.out_of_order_ranges() {
            if blocks.len() >= limit {
                break;
            }
            if Some(range) != latest {
                blocks.push(range.0, range.1);
            }
        }
        blocks
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    const SEGMENT: usize = 1420;

    /// Segments 1..=`count` of `SEGMENT` bytes (segment 0, the hole, left out), then segment 0.
    fn a_window_after_a_loss(queue: &mut ReceiveQueue<Bytes>, count: usize) -> InsertOutcome {
        let rcv_nxt = SeqNumber(1000);
        let window = (count + 1) * SEGMENT;
        let mut dropped = false;
        for index in 1..=count {
            let offset = (index * SEGMENT) as i32;
            let payload = Bytes::from(vec![index as u8; SEGMENT]);
            dropped |= queue
                .insert(rcv_nxt, offset, offset as u32, payload, None, window)
                .dropped;
        }
        let mut outcome = queue.insert(rcv_nxt, 0, 0, Bytes::from(vec![0; SEGMENT]), None, window);
        outcome.dropped |= dropped;
        outcome
    }

    #[test]
    fn a_whole_window_of_segments_after_a_hole_is_held_and_then_delivered_at_once() {
        // 860 segments: a 100 ms path at 100 Mbit/s. The queue's bound (from the receive
        // buffer) is larger; the old fixed 256 dropped the rest.
        let mut queue = ReceiveQueue::new(4 << 20, (4 << 20) / 1200);
        let outcome = a_window_after_a_loss(&mut queue, 860);
        assert!(!outcome.dropped);
        assert_eq!(outcome.in_order_advance, 861 * SEGMENT);
        assert!(!queue.has_out_of_order());
        let mut expected = 0u8;
        while let Some(chunk) = queue.pop_in_order() {
            assert!(chunk.payload.iter().all(|&byte| byte == expected));
            expected = expected.wrapping_add(1);
        }
        assert_eq!(expected, (861 % 256) as u8);
    }

    #[test]
    fn beyond_its_bound_the_queue_drops_new_out_of_order_segments() {
        let mut queue = ReceiveQueue::new(4 << 20, 256);
        let outcome = a_window_after_a_loss(&mut queue, 300);
        assert!(outcome.dropped);
        assert_eq!(outcome.in_order_advance, 257 * SEGMENT);
    }
}
