//! The receive buffer: in-order chunks for the owner and an out-of-order queue, bounded in
//! bytes and in segments.

use std::collections::VecDeque;

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
            capacity,
            max_out_of_order,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
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
        // Move now-contiguous out-of-order segments across.
        self.out_of_order
            .sort_by(|a, b| a.seq.distance_from(next).cmp(&b.seq.distance_from(next)));
        while let Some(first) = self.out_of_order.first() {
            let gap = first.seq.distance_from(next);
            if gap > 0 {
                break;
            }
            let entry = self.out_of_order.remove(0);
            self.out_of_order_bytes -= entry.payload.len();
            let already = (-gap) as usize;
            if already >= entry.payload.len() {
                continue;
            }
            let payload = entry.payload.slice(already..entry.payload.len());
            next = next + payload.len() as u32;
            outcome.in_order_advance += payload.len();
            self.push_in_order(
                entry.relative_seq.wrapping_add(already as u32),
                payload,
                entry.mapping,
            );
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

    fn insert_out_of_order(
        &mut self,
        seq: SeqNumber,
        relative_seq: u32,
        payload: P,
        mapping: Option<ReceivedMapping>,
        outcome: &mut InsertOutcome,
    ) {
        let end = seq + payload.len() as u32;
        // An exact or covering duplicate adds nothing.
        if self.out_of_order.iter().any(|entry| {
            entry.seq.distance_from(seq) <= 0
                && (entry.seq + entry.payload.len() as u32).distance_from(end) >= 0
        }) {
            return;
        }
        if self.out_of_order.len() >= self.max_out_of_order {
            outcome.dropped = true;
            return;
        }
        self.out_of_order_bytes += payload.len();
        self.out_of_order.push(OutOfOrder {
            seq,
            relative_seq,
            payload,
            mapping,
        });
    }

    /// The out-of-order data as merged `[left, right)` ranges, for SACK blocks (RFC 2018).
    pub fn out_of_order_ranges(
        &self,
        rcv_nxt: SeqNumber,
    ) -> impl Iterator<Item = (SeqNumber, SeqNumber)> + '_ {
        let mut ranges: Vec<(SeqNumber, SeqNumber)> = self
            .out_of_order
            .iter()
            .map(|entry| (entry.seq, entry.seq + entry.payload.len() as u32))
            .collect();
        ranges.sort_by_key(|(left, _)| left.distance_from(rcv_nxt));
        let mut merged: Vec<(SeqNumber, SeqNumber)> = Vec::with_capacity(ranges.len());
        for (left, right) in ranges {
            match merged.last_mut() {
                Some((_, last_right)) if left.distance_from(*last_right) <= 0 => {
                    *last_right = last_right.max(right)
                }
                _ => merged.push((left, right)),
            }
        }
        merged.into_iter()
    }
}
