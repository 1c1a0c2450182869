//! One proxied connection: the client side (a subflow, MPTCP or fallen back to plain TCP) and
//! the backend side (plain TCP), with the relay that moves payload handles between them.
//!
//! Flow control crosses the appliance through bounded buffers: the relay moves data from one
//! side's receive queue into the other side's send queue only while that send queue has room,
//! so a slow reader on one side closes the window on the other.

use core::net::SocketAddrV4;

use mpterm_wire::tcp::TcpRepr;

use crate::mptcp::{MptcpError, MptcpSession};
use crate::tcp::{CloseReason, OutgoingSegment, ReceivedMapping, Tcb, TcbCounters};
use crate::{Instant, Payload};

/// Which side of a proxied connection a segment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Client,
    Backend,
}

/// Events the engine counts or acts on, produced while a connection runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionEvents {
    pub client_established: bool,
    pub fell_back: bool,
    pub checksum_failure: bool,
    pub mapping_mismatch: bool,
    pub backend_failed: bool,
}

/// A client connection relayed to a backend.
#[derive(Debug)]
pub struct ProxiedConnection<P: Payload> {
    pub id: u64,
    pub client: Tcb<P>,
    pub mptcp: Option<MptcpSession<P>>,
    pub backend: Option<Tcb<P>>,
    pub backend_address: SocketAddrV4,
    /// Data from the backend not yet taken by the client side.
    backend_leftover: Option<P>,
    /// Data from the client not yet taken by the backend side (plain TCP path).
    client_leftover: Option<P>,
    /// Payload bytes queued toward the client, for the DATA_FIN's data sequence number.
    bytes_to_client: u64,
    client_closed_toward: bool,
    /// The backend connection completed its handshake at some point.
    backend_established: bool,
    backend_closed_toward: bool,
    events: ConnectionEvents,
}

impl<P: Payload> ProxiedConnection<P> {
    pub fn new(
        id: u64,
        client: Tcb<P>,
        mptcp: Option<MptcpSession<P>>,
        backend_address: SocketAddrV4,
    ) -> Self {
        ProxiedConnection {
            id,
            client,
            mptcp,
            backend: None,
            backend_address,
            backend_leftover: None,
            client_leftover: None,
            bytes_to_client: 0,
            client_closed_toward: false,
            backend_closed_toward: false,
            backend_established: false,
            events: ConnectionEvents::default(),
        }
    }

    /// Takes the events gathered since the last call.
    pub fn take_events(&mut self) -> ConnectionEvents {
        core::mem::take(&mut self.events)
    }

    /// The client side finished its handshake and no backend connection exists yet.
    pub fn needs_backend(&self) -> bool {
        self.backend.is_none() && self.client.is_synchronized()
    }

    /// Both sides are closed and nothing remains to send.
    pub fn is_finished(&self) -> bool {
        self.client.is_closed()
            && self
                .backend
                .as_ref()
                .is_none_or(|backend| backend.is_closed())
    }

    /// The MSS the backend should use so its segments fit the client side without splitting:
    /// the client's payload per segment plus the timestamp option the backend will add.
    pub fn backend_mss_hint(&self) -> usize {
        self.client.max_payload_per_segment() + 12
    }

    pub fn counters(&self) -> TcbCounters {
        let client = self.client.counters();
        let backend = self
            .backend
            .as_ref()
            .map(|b| b.counters())
            .unwrap_or_default();
        TcbCounters {
            retransmissions: client.retransmissions + backend.retransmissions,
            rto_expirations: client.rto_expirations + backend.rto_expirations,
            fast_retransmits: client.fast_retransmits + backend.fast_retransmits,
            out_of_window: client.out_of_window + backend.out_of_window,
        }
    }

    /// A segment for the client side.
    pub fn handle_client_segment(&mut self, now: Instant, repr: &TcpRepr<'_>, payload: Option<P>) {
        let was_synchronized = self.client.is_synchronized();
        let payload_len = payload.as_ref().map_or(0, |p| p.len());
        let mut mapping: Option<ReceivedMapping> = None;
        if let Some(session) = self.mptcp.as_mut() {
            let (received_mapping, outcome) =
                session.handle_options(&repr.options, repr.flags, payload_len);
            mapping = received_mapping;
            if outcome.fell_back {
                self.events.fell_back = true;
                self.client.set_owner_option_reserve(0);
            }
            if outcome.data_fin_reached {
                self.client.request_ack();
            }
        }
        self.client.handle_segment(now, repr, payload, mapping);
        if !was_synchronized && self.client.is_synchronized() {
            self.events.client_established = true;
        }
        self.relay();
    }

    /// A segment for the backend side.
    pub fn handle_backend_segment(&mut self, now: Instant, repr: &TcpRepr<'_>, payload: Option<P>) {
        if let Some(backend) = self.backend.as_mut() {
            backend.handle_segment(now, repr, payload, None);
        }
        self.relay();
    }

    pub fn attach_backend(&mut self, backend: Tcb<P>) {
        self.backend = Some(backend);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let client = self.client.poll_timeout();
        let backend = self.backend.as_ref().and_then(|b| b.poll_timeout());
        match (client, backend) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.client.handle_timeout(now);
        if let Some(backend) = self.backend.as_mut() {
            backend.handle_timeout(now);
        }
        self.relay();
    }

    /// The next segment to send on either side, client side first.
    pub fn poll_segment(&mut self, now: Instant) -> Option<(Side, OutgoingSegment<P>)> {
        if let Some(mut segment) = self.client.poll_segment(now) {
            if let Some(session) = self.mptcp.as_ref() {
                session.decorate(&mut segment);
            }
            return Some((Side::Client, segment));
        }
        let backend = self.backend.as_mut()?;
        backend
            .poll_segment(now)
            .map(|segment| (Side::Backend, segment))
    }

    /// Moves data between the sides and propagates closes and resets.
    pub fn relay(&mut self) {
        if self
            .backend
            .as_ref()
            .is_some_and(|backend| backend.is_synchronized())
        {
            self.backend_established = true;
        }
        self.relay_client_to_backend();
        self.relay_backend_to_client();
        self.propagate_resets();
        if let Some(session) = self.mptcp.as_ref() {
            self.client.set_owner_held_bytes(session.held_bytes());
        }
    }

    fn relay_client_to_backend(&mut self) {
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
                None => self.client_leftover.take(),
            };
            if let Some(payload) = ready {
                if let Some(rest) = push_bounded(backend, payload) {
                    match self.mptcp.as_mut() {
                        Some(session) => session.push_front_ready(rest),
                        None => self.client_leftover = Some(rest),
                    }
                    break;
                }
                continue;
            }
            // Nothing ready: take more from the client subflow.
            let Some(chunk) = self.client.recv() else {
                break;
            };
            let Some(session) = self.mptcp.as_mut() else {
                self.client_leftover = Some(chunk.payload);
                continue;
            };
            match session.handle_subflow_data(chunk) {
                Ok(outcome) if outcome.data_fin_reached => self.client.request_ack(),
                Ok(_) => {}
                Err(error) => {
                    self.fail_mptcp(error);
                    return;
                }
            }
        }
        // The client finished sending: close toward the backend once everything is passed on.
        let client_done = match self.mptcp.as_mut() {
            Some(session) if !session.has_fallen_back() => {
                if self.client.peer_finished() && session.peer_closed_subflow() {
                    self.client.request_ack();
                }
                session.peer_finished()
            }
            Some(session) => self.client.peer_finished() && !session.has_ready(),
            None => self.client.peer_finished() && self.client_leftover.is_none(),
        };
        if client_done {
            self.backend_closed_toward = true;
            backend.close();
        }
    }

    fn relay_backend_to_client(&mut self) {
        let Some(backend) = self.backend.as_mut() else {
            return;
        };
        if self.client_closed_toward || !self.client.is_synchronized() {
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
            let len = payload.len();
            match push_bounded(&mut self.client, payload) {
                None => self.bytes_to_client += len as u64,
                Some(rest) => {
                    self.bytes_to_client += (len - rest.len()) as u64;
                    self.backend_leftover = Some(rest);
                    break;
                }
            }
        }
        if backend.peer_finished() && self.backend_leftover.is_none() && !self.client_closed_toward
        {
            self.client_closed_toward = true;
            if let Some(session) = self.mptcp.as_mut() {
                // RFC 8684 section 3.3.3: the DATA_FIN rides on the subflow FIN.
                session.close(self.bytes_to_client);
            }
            self.client.close();
        }
    }

    fn propagate_resets(&mut self) {
        let client_reset = matches!(
            self.client.close_reason(),
            Some(CloseReason::ResetByPeer | CloseReason::TimedOut | CloseReason::Aborted)
        );
        if let Some(backend) = self.backend.as_mut() {
            let backend_reset = matches!(
                backend.close_reason(),
                Some(CloseReason::ResetByPeer | CloseReason::TimedOut | CloseReason::Aborted)
            );
            if client_reset && !backend.is_closed() {
                backend.abort();
            }
            if backend_reset && !self.client.is_closed() {
                // A backend that never completed its handshake could not be reached.
                self.events.backend_failed |= !self.backend_established;
                self.client.abort();
            }
        }
    }

    fn fail_mptcp(&mut self, error: MptcpError) {
        match error {
            MptcpError::ChecksumFailed => self.events.checksum_failure = true,
            MptcpError::MappingMismatch => self.events.mapping_mismatch = true,
        }
        // RFC 8684 section 3.7 lets a single-subflow connection whose checksum failed send
        // MP_FAIL and fall back to an infinite mapping when no data was lost in between.
        // Deviation, recorded: we do not implement MP_FAIL yet and reset instead (the "cannot
        // fall back" branch of the same section), so corrupted data never reaches the backend;
        // both sides learn of it by RST and the counters say why.
        self.client.abort();
        if let Some(backend) = self.backend.as_mut() {
            backend.abort();
        }
    }

    /// Aborts both sides (e.g. a backend that cannot be reached).
    pub fn abort(&mut self) {
        self.client.abort();
        if let Some(backend) = self.backend.as_mut() {
            backend.abort();
        }
    }
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
