//! Frames held until their delivery time: a min-heap on (time, arrival order), so that frames
//! due at the same instant leave in the order they came. Its capacity is fixed when it is made
//! (no allocation per frame); a full queue hands the frame back, and the caller drops it.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One held frame.
#[derive(Debug)]
struct Held<T> {
    due_ns: u64,
    order: u64,
    frame: T,
}

impl<T> PartialEq for Held<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.due_ns, self.order) == (other.due_ns, other.order)
    }
}

impl<T> Eq for Held<T> {}

impl<T> PartialOrd for Held<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Held<T> {
    /// Reversed: `BinaryHeap` is a max-heap, and the earliest frame must come out first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.due_ns, other.order).cmp(&(self.due_ns, self.order))
    }
}

/// The time-ordered queue of one direction.
#[derive(Debug)]
pub struct HoldQueue<T> {
    heap: BinaryHeap<Held<T>>,
    capacity: usize,
    next_order: u64,
}

impl<T> HoldQueue<T> {
    /// A queue for up to `capacity` frames, allocated now.
    pub fn with_capacity(capacity: usize) -> HoldQueue<T> {
        HoldQueue {
            heap: BinaryHeap::with_capacity(capacity),
            capacity,
            next_order: 0,
        }
    }

    /// Holds `frame` until `due_ns`; a full queue gives it back.
    pub fn push(&mut self, due_ns: u64, frame: T) -> Result<(), T> {
        if self.heap.len() >= self.capacity {
            return Err(frame);
        }
        let order = self.next_order;
        self.next_order += 1;
        self.heap.push(Held {
            due_ns,
            order,
            frame,
        });
        Ok(())
    }

    /// The earliest frame if it is due at `now_ns`.
    pub fn pop_due(&mut self, now_ns: u64) -> Option<T> {
        if self.heap.peek()?.due_ns > now_ns {
            return None;
        }
        self.heap.pop().map(|held| held.frame)
    }

    /// When the earliest frame is due.
    pub fn next_due(&self) -> Option<u64> {
        self.heap.peek().map(|held| held.due_ns)
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no frame is held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_leave_by_time_then_by_arrival() {
        let mut queue = HoldQueue::with_capacity(8);
        for (due, frame) in [(30, 'a'), (10, 'b'), (20, 'c'), (10, 'd'), (20, 'e')] {
            queue.push(due, frame).unwrap();
        }
        assert_eq!(queue.pop_due(5), None);
        assert_eq!(queue.next_due(), Some(10));
        let mut out = vec![];
        while let Some(frame) = queue.pop_due(25) {
            out.push(frame);
        }
        assert_eq!(out, ['b', 'd', 'c', 'e']);
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.pop_due(30), Some('a'));
        assert!(queue.is_empty());
    }

    #[test]
    fn a_full_queue_gives_the_frame_back_and_never_grows() {
        let mut queue = HoldQueue::with_capacity(2);
        let allocated = queue.heap.capacity();
        queue.push(1, 1).unwrap();
        queue.push(2, 2).unwrap();
        assert_eq!(queue.push(3, 3), Err(3));
        assert_eq!(queue.heap.capacity(), allocated);
    }
}
