//! Received data waiting for the application, in order, held by handle.

use std::collections::VecDeque;

use crate::Payload;

/// The in-order data of one connection that the application has not taken yet. Its bytes still
/// count against the subflow's receive window (see `Tcb::set_owner_held_bytes`), so an
/// application that reads slowly closes the window instead of growing this queue.
#[derive(Debug)]
pub(crate) struct ReadyQueue<P> {
    chunks: VecDeque<P>,
    bytes: usize,
}

impl<P: Payload> ReadyQueue<P> {
    pub(crate) fn new() -> Self {
        ReadyQueue {
            chunks: VecDeque::new(),
            bytes: 0,
        }
    }

    pub(crate) fn push(&mut self, payload: P) {
        if !payload.is_empty() {
            self.bytes += payload.len();
            self.chunks.push_back(payload);
        }
    }

    pub(crate) fn pop(&mut self) -> Option<P> {
        let payload = self.chunks.pop_front()?;
        self.bytes -= payload.len();
        Some(payload)
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.chunks.clear();
        self.bytes = 0;
    }
}
