//! The relay between the sides: the client's subflows' data into the data level and on to the
//! backend, the backend's data into the data-level send buffer, the closes that follow the
//! last byte, and the one receive window every subflow advertises (RFC 8684 section 3.3.4).

use crate::mptcp::{MptcpError, MptcpSession};
use crate::tcp::Tcb;
use crate::{Instant, Payload};

use super::{ProxiedConnection, MIN_FULL_SEGMENT};

impl<P: Payload> ProxiedConnection<P> {
    /// Every subflow advertises the connection's one receive window (section 3.3.4): what the
    /// data level holds counts against each of them, and each subflow's buffer is the data
    /// level's, which autotuning grows from what reaches the backend (as Linux's
    /// `mptcp_rcv_space_adjust`: once per the largest of the subflows' receiver RTTs, the
    /// subflows following along).
    pub(super) fn update_receive_windows(&mut self, now: Instant) {
        let Some(session) = self.mptcp.as_mut() else {
            return;
        };
        let open_subflows = || {
            self.subflows
                .iter()
                .flatten()
                .filter(|subflow| subflow.tcb.is_synchronized())
        };
        let rtt = open_subflows()
            .filter_map(|subflow| subflow.tcb.receiver_rtt())
            .max();
        let segment = open_subflows()
            .map(|subflow| usize::from(subflow.tcb.receive_mss()))
            .max()
            .unwrap_or(MIN_FULL_SEGMENT);
        session.adjust_receive_buffer(now, rtt, segment);
        let buffer = session.receive_buffer();
        let assembling: usize = self
            .subflows
            .iter()
            .flatten()
            .map(|subflow| subflow.mptcp.assembly.held_bytes())
            .sum();
        let held = session.held_bytes() + assembling;
        for subflow in self.subflows.iter_mut().flatten() {
            subflow.tcb.follow_receive_buffer(buffer);
            subflow.tcb.set_owner_held_bytes(held);
        }
    }

    /// Takes every subflow's in-order data into the MPTCP data level, whether or not a
    /// backend is there to take it: the mappings are verified and the DATA_ACK moves now.
    /// The bytes stay accounted in the receive window until the backend has them.
    pub(super) fn take_client_data(&mut self, now: Instant) {
        let Some(session) = self.mptcp.as_mut() else {
            return;
        };
        let mut failure = None;
        'subflows: for (index, subflow) in self.subflows.iter_mut().enumerate() {
            let Some(subflow) = subflow.as_mut() else {
                continue;
            };
            while let Some(chunk) = subflow.tcb.recv() {
                match session.handle_subflow_data(&mut subflow.mptcp, chunk) {
                    Ok(outcome) if outcome.data_fin_reached => subflow.tcb.request_ack(),
                    Ok(outcome) => {
                        self.events.data_duplicates += outcome.data_duplicates;
                        self.events.data_overflows += outcome.data_overflows;
                    }
                    Err(error) => {
                        failure = Some((index, error));
                        break 'subflows;
                    }
                }
            }
        }
        match failure {
            Some((index, MptcpError::ChecksumFailed)) if self.another_subflow_works(index) => {
                self.fail_subflow(index)
            }
            Some((index, MptcpError::ChecksumFailed)) if self.fail_only_subflow(index) => {}
            Some((_, error)) => self.fail_mptcp(now, error),
            None => {}
        }
    }

    pub(super) fn relay_client_to_backend(&mut self) {
        let Some(backend) = self.backend.as_mut() else {
            return;
        };
        if !backend.is_synchronized() || self.backend_closed_toward {
            return;
        }
        loop {
            // Pass on what is ready, as far as the backend's send buffer allows. A chunk that
            // must wait stays where it is (checked before it is taken, not taken and put back:
            // the relay runs on every segment, and a backend slower than the client finds its
            // buffer full on about every other one).
            if let Some(next) = self.mptcp.as_ref().and_then(MptcpSession::next_ready_len) {
                if cut_for(next, backend.send_capacity()) == Cut::Wait {
                    break;
                }
            }
            let ready = match self.mptcp.as_mut() {
                Some(session) => session.pop_ready(),
                None => self.client_leftover.take().or_else(|| {
                    self.subflows[0]
                        .as_mut()
                        .and_then(|initial| initial.tcb.recv())
                        .map(|chunk| chunk.payload)
                }),
            };
            let Some(payload) = ready else {
                break;
            };
            let offered = payload.len();
            let rest = push_bounded(backend, payload);
            if let Some(session) = self.mptcp.as_mut() {
                session.note_passed_on(offered - rest.as_ref().map_or(0, |rest| rest.len()));
            }
            if let Some(rest) = rest {
                match self.mptcp.as_mut() {
                    Some(session) => session.push_front_ready(rest),
                    None => self.client_leftover = Some(rest),
                }
                break;
            }
        }
        // The client finished sending: close toward the backend once everything is passed on.
        let only_subflow = self.subflows.iter().flatten().count() == 1;
        let initial = self.subflows[0].as_mut();
        let initial_finished = initial.as_ref().is_some_and(|s| s.tcb.peer_finished());
        let client_done = match (self.mptcp.as_mut(), initial) {
            (Some(session), Some(initial)) if !session.has_fallen_back() => {
                let assembling = initial.mptcp.assembly.held_bytes();
                if only_subflow && initial_finished && session.peer_closed_only_subflow(assembling)
                {
                    initial.tcb.request_ack();
                }
                session.peer_finished()
            }
            (Some(session), _) if !session.has_fallen_back() => session.peer_finished(),
            (Some(session), _) => initial_finished && !session.has_ready(),
            (None, _) => initial_finished && self.client_leftover.is_none(),
        };
        if client_done {
            self.backend_closed_toward = true;
            backend.close();
        }
    }

    pub(super) fn relay_backend_to_client(&mut self) {
        let Some(backend) = self.backend.as_mut() else {
            return;
        };
        if self.client_closed_toward || !self.client_synchronized {
            return;
        }
        loop {
            let payload = match self.backend_leftover.take() {
                Some(payload) => payload,
                None => match backend.recv() {
                    Some(chunk) => chunk.payload,
                    None => break,
                },
            };
            let rest = match self.mptcp.as_mut() {
                Some(session) => push_bounded_data(session, payload),
                None => match self.subflows[0].as_mut() {
                    Some(initial) => push_bounded(&mut initial.tcb, payload),
                    None => Some(payload),
                },
            };
            if let Some(rest) = rest {
                self.backend_leftover = Some(rest);
                break;
            }
        }
        if backend.peer_finished() && self.backend_leftover.is_none() {
            self.client_closed_toward = true;
            match self.mptcp.as_mut() {
                // RFC 8684 section 3.3.3: the DATA_FIN follows the last data byte; the
                // subflows close once it is scheduled (`close_subflows_when_done`).
                Some(session) => session.close(),
                None => {
                    if let Some(initial) = self.subflows[0].as_mut() {
                        initial.tcb.close();
                    }
                }
            }
        }
    }

    /// Closes the subflows after our DATA_FIN: each FIN carries it (section 3.3.3). With
    /// several subflows, only once the peer DATA_ACKed everything, so that a subflow that dies
    /// meanwhile can still have its data reinjected on another.
    pub(super) fn close_subflows_when_done(&mut self) {
        let Some(session) = self.mptcp.as_ref() else {
            return;
        };
        if session.local_data_fin_acknowledged() && session.peer_finished() {
            // The connection's data is done both ways: a stale subflow (a cut path) would
            // only go on retransmitting its FIN into the void until its retries run out.
            for subflow in self.subflows.iter_mut().flatten() {
                if subflow.stale && subflow.is_open() {
                    subflow.tcb.abort();
                }
            }
        }
        if self.subflows_closed {
            // A subflow that joined after our DATA_FIN closes its sending side too.
            for subflow in self.subflows.iter_mut().flatten() {
                if subflow.mptcp.is_usable() && subflow.tcb.send_capacity() > 0 {
                    subflow.tcb.close();
                }
            }
            return;
        }
        if !session.is_closing() {
            return;
        }
        let buffer = session.send_buffer();
        let open = self
            .subflows
            .iter()
            .flatten()
            .filter(|subflow| subflow.is_open())
            .count();
        if !buffer.all_scheduled() || (open > 1 && !buffer.all_acknowledged()) {
            return;
        }
        self.subflows_closed = true;
        for subflow in self.subflows.iter_mut().flatten() {
            subflow.tcb.close();
        }
    }
}

/// Queues `payload` in the data-level send buffer when it fits; returns what waits.
fn push_bounded_data<P: Payload>(session: &mut MptcpSession<P>, payload: P) -> Option<P> {
    let buffer = session.send_buffer_mut();
    match cut_for(payload.len(), buffer.free_space()) {
        Cut::Whole => {
            buffer.push(payload);
            None
        }
        Cut::At(head) => {
            buffer.push(payload.slice(0..head));
            Some(payload.slice(head..payload.len()))
        }
        Cut::Wait => Some(payload),
    }
}

/// How much of a chunk of `len` bytes goes into a send buffer with `capacity` free bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    Whole,
    /// The first `n` bytes now, the rest later.
    At(usize),
    Wait,
}

/// Sender-side silly window avoidance at the relay (RFC 9293 section 3.8.6.2.1): the sending
/// side makes segments from one queued piece at a time, so a chunk cut to the buffer's last
/// free bytes becomes a short segment, and its remainder another. A chunk is cut only where
/// both parts are at least [`MIN_FULL_SEGMENT`]; one that does not fit otherwise waits until
/// it fits whole. The relay's chunks are received segments, smaller than any send buffer, so
/// the wait ends once the other side acknowledges a segment's worth.
///
/// A backend's segments are sized to the client side's (`backend_mss_hint`): cutting them
/// wherever the data-level buffer's free space ended (the rule was "cut when at least 1200
/// bytes are free", and full segments carry 1420) made a fifth of a lossy lab download's
/// segments runts of 4 to 40 bytes, each cut misaligning the free space for the next.
fn cut_for(len: usize, capacity: usize) -> Cut {
    if capacity >= len {
        Cut::Whole
    } else if capacity >= MIN_FULL_SEGMENT && len - capacity >= MIN_FULL_SEGMENT {
        Cut::At(capacity)
    } else {
        Cut::Wait
    }
}

/// Queues `payload` in `tcb`'s send buffer when it fits (cut as [`cut_for`] says); returns
/// what waits.
fn push_bounded<P: Payload>(tcb: &mut Tcb<P>, payload: P) -> Option<P> {
    match cut_for(payload.len(), tcb.send_capacity()) {
        Cut::Whole => tcb.send(payload).err(),
        Cut::At(head) => match tcb.send(payload.slice(0..head)) {
            Ok(()) => Some(payload.slice(head..payload.len())),
            Err(_) => Some(payload),
        },
        Cut::Wait => Some(payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn a_backend_segment_waits_whole_for_room_in_the_data_level_buffer() {
        // 64 KiB less 1300 bytes queued: 1300 free, less than one 1420-byte segment.
        let sizing = crate::tcp::ReceiveBufferSizing::new(1 << 16, 1 << 16, false);
        let mut session = MptcpSession::<Bytes>::new(7, true, true, 1 << 16, sizing);
        session
            .send_buffer_mut()
            .push(Bytes::from(vec![0; (1 << 16) - 1300]));
        let segment = Bytes::from(vec![1; 1420]);
        let waiting = push_bounded_data(&mut session, segment.clone());
        assert_eq!(
            waiting,
            Some(segment),
            "queued whole later, not cut into 1300 and 120"
        );
        assert_eq!(session.send_buffer().free_space(), 1300);
    }

    #[test]
    fn a_chunk_is_cut_only_into_parts_of_a_full_segment_or_more() {
        // A full client-side segment (1420 bytes) with a little less free: it waits whole.
        assert_eq!(cut_for(1420, 1416), Cut::Wait);
        assert_eq!(cut_for(1420, 1200), Cut::Wait);
        assert_eq!(cut_for(1420, 0), Cut::Wait);
        assert_eq!(cut_for(1420, 1420), Cut::Whole);
        assert_eq!(cut_for(600, 4096), Cut::Whole);
        // A large chunk uses the room it has when both parts make full segments.
        assert_eq!(cut_for(9000, 4000), Cut::At(4000));
        assert_eq!(cut_for(9000, 8000), Cut::Wait);
        assert_eq!(cut_for(9000, 1000), Cut::Wait);
    }
}
