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
            // Pass on what is ready, as far as the backend's send buffer allows.
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

/// Queues `payload` in the data-level send buffer when it fits; returns what waits. A payload
/// is queued whole (the backend's segments are sized to the subflows' MSS, and a piece cut to
/// the buffer's last free bytes would leave the scheduler a runt segment and its remainder
/// another); only one larger than a full segment is split, to use the room it has.
fn push_bounded_data<P: Payload>(session: &mut MptcpSession<P>, payload: P) -> Option<P> {
    let buffer = session.send_buffer_mut();
    let capacity = buffer.free_space();
    if capacity >= payload.len() {
        buffer.push(payload);
        return None;
    }
    if capacity < MIN_FULL_SEGMENT {
        return Some(payload);
    }
    buffer.push(payload.slice(0..capacity));
    Some(payload.slice(capacity..payload.len()))
}

/// Queues as much of `payload` as `tcb` takes; returns the rest.
fn push_bounded<P: Payload>(tcb: &mut Tcb<P>, payload: P) -> Option<P> {
    let capacity = tcb.send_capacity();
    if capacity >= payload.len() {
        return tcb.send(payload).err();
    }
    if capacity == 0 {
        return Some(payload);
    }
    let head = payload.slice(0..capacity);
    let rest = payload.slice(capacity..payload.len());
    match tcb.send(head) {
        Ok(()) => Some(rest),
        Err(_) => Some(payload),
    }
}
