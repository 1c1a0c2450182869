//! Data-level reassembly across subflows (RFC 8684 section 3.3.1): verified data arrives from
//! every subflow by data sequence number, in any order, and leaves in data-sequence order.
//!
//! Bytes already delivered (a reinjection, or the same data on two subflows) are trimmed; data
//! ahead of the next expected byte waits, sorted, in a bounded queue. The bound is the
//! connection-level receive window (section 3.3.4), which the subflows advertise: a peer that
//! keeps to it never overflows the queue, and data beyond it is dropped and counted, to be
//! sent again by the peer's data-level retransmission.

use std::collections::VecDeque;

use crate::Payload;

/// What became of data handed to [`DataReassembly::insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// At the next expected data sequence number (with anything it made contiguous).
    InOrder,
    /// Ahead of a gap: held until the gap fills.
    Ahead,
    /// Entirely received before: dropped.
    Duplicate,
    /// Ahead of a gap with no room left: dropped.
    Overflow,
}

/// Out-of-order data of one connection, and the next data sequence number expected.
#[derive(Debug)]
pub struct DataReassembly<P> {
    /// The next data sequence number expected (our DATA_ACK).
    next: u64,
    /// Data ahead of `next`, sorted by data sequence number, not overlapping each other.
    ahead: VecDeque<(u64, P)>,
    ahead_bytes: usize,
    capacity: usize,
}

impl<P: Payload> DataReassembly<P> {
    pub fn new(capacity: usize) -> Self {
        DataReassembly {
            next: 0,
            ahead: VecDeque::new(),
            ahead_bytes: 0,
            capacity,
        }
    }

    pub fn next_expected(&self) -> u64 {
        self.next
    }

    /// Sets the next expected data sequence number: once, when the peer's key gives its IDSN;
    /// or after a fallback, when the one subflow's bytes are counted without mappings.
    pub fn set_next_expected(&mut self, next: u64) {
        self.next = next;
    }

    /// Bytes held ahead of a gap.
    pub fn ahead_bytes(&self) -> usize {
        self.ahead_bytes
    }

    /// Places `payload` at `data_seq`; in-order bytes, and anything they made contiguous, go
    /// to `deliver` in order.
    pub fn insert(&mut self, data_seq: u64, payload: P, mut deliver: impl FnMut(P)) -> Placement {
        let Some(payload) = trim_before(data_seq, payload, self.next) else {
            return Placement::Duplicate;
        };
        let data_seq = data_seq_max(data_seq, self.next);
        if data_seq != self.next {
            return self.hold_ahead(data_seq, payload);
        }
        self.next = data_seq.wrapping_add(payload.len() as u64);
        deliver(payload);
        while let Some((start, _)) = self.ahead.front() {
            if after(*start, self.next) {
                break;
            }
            let Some((start, held)) = crate::queue::pop_front_reusing(&mut self.ahead) else {
                break;
            };
            self.ahead_bytes -= held.len();
            if let Some(rest) = trim_before(start, held, self.next) {
                self.next = self.next.wrapping_add(rest.len() as u64);
                deliver(rest);
            }
        }
        Placement::InOrder
    }

    /// Keeps data that starts beyond the next expected byte, in pieces that do not overlap
    /// what is held already (the first copy of a byte wins: every copy verified the same
    /// checksum, or none did).
    fn hold_ahead(&mut self, data_seq: u64, payload: P) -> Placement {
        let end = data_seq.wrapping_add(payload.len() as u64);
        let mut start = data_seq;
        let mut placed = false;
        while after(end, start) {
            // The first entry starting after `start`; the one before may cover it.
            let index = self.ahead.partition_point(|(held, _)| !after(*held, start));
            if let Some((previous, held)) = index.checked_sub(1).and_then(|i| self.ahead.get(i)) {
                let previous_end = previous.wrapping_add(held.len() as u64);
                if after(previous_end, start) {
                    start = previous_end;
                    continue;
                }
            }
            let stop = match self.ahead.get(index) {
                Some((following, _)) if after(end, *following) => *following,
                _ => end,
            };
            let from = start.wrapping_sub(data_seq) as usize;
            let to = stop.wrapping_sub(data_seq) as usize;
            if self.ahead_bytes + (to - from) > self.capacity {
                return Placement::Overflow;
            }
            let piece = payload.slice(from..to);
            self.ahead_bytes += piece.len();
            self.ahead.insert(index, (start, piece));
            placed = true;
            start = stop;
        }
        if placed {
            Placement::Ahead
        } else {
            Placement::Duplicate
        }
    }
}

/// True when `a` is after `b` in the 64-bit data sequence space.
fn after(a: u64, b: u64) -> bool {
    (a.wrapping_sub(b) as i64) > 0
}

fn data_seq_max(a: u64, b: u64) -> u64 {
    if after(a, b) {
        a
    } else {
        b
    }
}

/// The part of `payload` (starting at `data_seq`) from `next` on, if any.
fn trim_before<P: Payload>(data_seq: u64, payload: P, next: u64) -> Option<P> {
    let end = data_seq.wrapping_add(payload.len() as u64);
    if !after(end, next) {
        return None;
    }
    if after(next, data_seq) {
        let cut = next.wrapping_sub(data_seq) as usize;
        return Some(payload.slice(cut..payload.len()));
    }
    Some(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn reassembly() -> (DataReassembly<Bytes>, Vec<u8>) {
        let mut reassembly = DataReassembly::new(64);
        reassembly.set_next_expected(100);
        (reassembly, Vec::new())
    }

    #[test]
    fn data_from_two_subflows_leaves_in_data_order() {
        let (mut r, mut out) = reassembly();
        let mut deliver = |p: Bytes| out.extend_from_slice(&p);
        assert_eq!(
            r.insert(104, Bytes::from_static(b"efgh"), &mut deliver),
            Placement::Ahead
        );
        assert_eq!(
            r.insert(110, Bytes::from_static(b"kl"), &mut deliver),
            Placement::Ahead
        );
        assert_eq!(
            r.insert(100, Bytes::from_static(b"abcd"), &mut deliver),
            Placement::InOrder
        );
        assert_eq!(
            r.insert(108, Bytes::from_static(b"ij"), &mut deliver),
            Placement::InOrder
        );
        assert_eq!(out, b"abcdefghijkl");
        assert_eq!(r.next_expected(), 112);
        assert_eq!(r.ahead_bytes(), 0);
    }

    #[test]
    fn reinjected_and_overlapping_copies_are_trimmed_not_delivered_twice() {
        let (mut r, mut out) = reassembly();
        let mut deliver = |p: Bytes| out.extend_from_slice(&p);
        r.insert(100, Bytes::from_static(b"abcd"), &mut deliver);
        assert_eq!(
            r.insert(100, Bytes::from_static(b"abcd"), &mut deliver),
            Placement::Duplicate
        );
        r.insert(106, Bytes::from_static(b"ghij"), &mut deliver);
        // Overlaps both what was delivered and what is held ahead.
        r.insert(102, Bytes::from_static(b"cdefghijkl"), &mut deliver);
        assert_eq!(out, b"abcdefghijkl");
        assert_eq!(r.ahead_bytes(), 0);
    }

    #[test]
    fn data_beyond_the_window_is_refused() {
        let mut r = DataReassembly::<Bytes>::new(4);
        r.set_next_expected(0);
        let ignore = |_: Bytes| panic!("nothing is in order");
        assert_eq!(
            r.insert(10, Bytes::from_static(b"abcd"), ignore),
            Placement::Ahead
        );
        assert_eq!(
            r.insert(20, Bytes::from_static(b"e"), ignore),
            Placement::Overflow
        );
        assert_eq!(r.ahead_bytes(), 4);
    }
}
