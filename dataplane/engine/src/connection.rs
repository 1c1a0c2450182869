//! One proxied connection: the client side (a subflow, MPTCP or fallen back to plain TCP) and
//! the backend side (plain TCP), with the relay that moves payload handles between them.
//!
//! Flow control crosses the appliance through bounded buffers: the relay moves data from one
//! side's receive queue into the other side's send queue only while that send queue has room,
//! so a slow reader on one side closes the window on the other. The client's data enters the
//! MPTCP data level as soon as it arrives, whatever the backend does: data held here for the
//! connection is data received at the connection level, so the DATA_ACK moves (RFC 8684
//! section 3.3.2) while the backend is still being connected.
//!
//! Failures cross too: a backend that resets, times out or cannot be reached ends the client's
//! MPTCP connection with MP_FASTCLOSE (RFC 8684 section 3.5), which a Linux client acts on at
//! once, where it ignores a plain RST on its only subflow until `net.mptcp.close_timeout`.

use core::net::SocketAddrV4;

use mpterm_wire::tcp::TcpRepr;

use crate::mptcp::{MptcpError, MptcpSession, OptionOutcome, ResetReason};
use crate::tcp::{CloseReason, OutgoingSegment, OwnerVerdict, Tcb, TcbCounters, TcpState};
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
    /// We ended the client's MPTCP connection with MP_FASTCLOSE.
    pub fast_close_sent: bool,
    /// The client ended it with an MP_FASTCLOSE carrying our key.
    pub fast_close_received: bool,
    /// An MP_FASTCLOSE with another key was ignored.
    pub fast_close_ignored: bool,
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
    /// No backend connection could be opened (no route, no port): none is tried again.
    backend_unavailable: bool,
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
            backend_unavailable: false,
            events: ConnectionEvents::default(),
        }
    }

    /// Takes the events gathered since the last call.
    pub fn take_events(&mut self) -> ConnectionEvents {
        core::mem::take(&mut self.events)
    }

    /// The client side finished its handshake and no backend connection exists or was tried.
    pub fn needs_backend(&self) -> bool {
        self.backend.is_none() && !self.backend_unavailable && self.client.is_synchronized()
    }

    /// Every side is closed or in TIME-WAIT: the connection needs its slot no more (what
    /// TIME-WAIT still does is kept in the engine's TIME-WAIT table).
    pub fn is_finished(&self) -> bool {
        let done = |tcb: &Tcb<P>| tcb.is_closed() || tcb.state() == TcpState::TimeWait;
        done(&self.client) && self.backend.as_ref().is_none_or(done)
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
            unacceptable_acks: client.unacceptable_acks + backend.unacceptable_acks,
            challenge_acks: client.challenge_acks + backend.challenge_acks,
            withheld: client.withheld + backend.withheld,
            keepalive_probes: client.keepalive_probes + backend.keepalive_probes,
        }
    }

    /// A segment for the client side. Its MPTCP options are read only if the subflow accepts
    /// the segment (see [`Tcb::handle_segment_with`]).
    pub fn handle_client_segment(&mut self, now: Instant, repr: &TcpRepr<'_>, payload: Option<P>) {
        let was_synchronized = self.client.is_synchronized();
        let payload_len = payload.as_ref().map_or(0, |p| p.len());
        let mut outcome = OptionOutcome::default();
        let session = &mut self.mptcp;
        self.client
            .handle_segment_with(now, repr, payload, |segment, accepted| {
                let Some(session) = session.as_mut() else {
                    return OwnerVerdict::default();
                };
                let verdict = session.handle_options(segment, payload_len, accepted);
                outcome = verdict.outcome;
                OwnerVerdict {
                    mapping: verdict.mapping,
                    withhold: verdict.withhold,
                }
            });
        self.take_option_outcome(outcome);
        if !was_synchronized && self.client.is_synchronized() {
            self.events.client_established = true;
        }
        self.relay(now);
    }

    fn take_option_outcome(&mut self, outcome: OptionOutcome) {
        if outcome.fell_back {
            self.events.fell_back = true;
            self.client.set_owner_option_reserve(0);
        }
        if outcome.data_fin_reached {
            self.client.request_ack();
        }
        self.events.fast_close_ignored |= outcome.fast_close_ignored;
        if outcome.fast_close_received {
            // RFC 8684 section 3.5: answer with a RST, and the backend is reset in turn.
            self.events.fast_close_received = true;
            self.client.fast_close_answered();
        }
        if let Some(error) = outcome.error {
            self.fail_mptcp(error);
        }
    }

    /// A segment for the backend side.
    pub fn handle_backend_segment(&mut self, now: Instant, repr: &TcpRepr<'_>, payload: Option<P>) {
        if let Some(backend) = self.backend.as_mut() {
            backend.handle_segment(now, repr, payload);
        }
        self.relay(now);
    }

    pub fn attach_backend(&mut self, backend: Tcb<P>) {
        self.backend = Some(backend);
    }

    /// No backend connection can be opened for this client: it is told at once.
    pub fn backend_unavailable(&mut self, now: Instant) {
        self.backend_unavailable = true;
        self.events.backend_failed = true;
        self.end_client(now, ResetReason::LackOfResources);
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
        self.relay(now);
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

    /// Moves data between the sides and propagates closes and failures.
    pub fn relay(&mut self, now: Instant) {
        if self
            .backend
            .as_ref()
            .is_some_and(|backend| backend.is_synchronized())
        {
            self.backend_established = true;
        }
        self.take_client_data();
        self.relay_client_to_backend();
        self.relay_backend_to_client();
        self.propagate_failures(now);
        if let Some(session) = self.mptcp.as_ref() {
            self.client.set_owner_held_bytes(session.held_bytes());
        }
    }

    /// Takes the client subflow's in-order data into the MPTCP data level, whether or not a
    /// backend is there to take it: the mappings are verified and the DATA_ACK moves now.
    /// The bytes stay accounted in the subflow's receive window until the backend has them.
    fn take_client_data(&mut self) {
        let Some(session) = self.mptcp.as_mut() else {
            return;
        };
        while let Some(chunk) = self.client.recv() {
            match session.handle_subflow_data(chunk) {
                Ok(outcome) if outcome.data_fin_reached => self.client.request_ack(),
                Ok(_) => {}
                Err(error) => {
                    self.fail_mptcp(error);
                    return;
                }
            }
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
                None => self
                    .client_leftover
                    .take()
                    .or_else(|| self.client.recv().map(|chunk| chunk.payload)),
            };
            let Some(payload) = ready else {
                break;
            };
            if let Some(rest) = push_bounded(backend, payload) {
                match self.mptcp.as_mut() {
                    Some(session) => session.push_front_ready(rest),
                    None => self.client_leftover = Some(rest),
                }
                break;
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

    /// A side that ended abortively (reset, timed out, aborted) takes the other side down.
    fn propagate_failures(&mut self, now: Instant) {
        let client_failed = self
            .client
            .close_reason()
            .is_some_and(CloseReason::is_abortive);
        let Some(backend) = self.backend.as_mut() else {
            return;
        };
        let backend_failed = backend.close_reason().is_some_and(CloseReason::is_abortive);
        if client_failed && !backend.is_closed() {
            backend.abort();
        }
        if backend_failed && self.client_still_open() {
            // A backend that never completed its handshake could not be reached.
            self.events.backend_failed |= !self.backend_established;
            self.end_client(now, ResetReason::Unspecified);
        }
    }

    /// The client side has not ended yet, and is not being ended.
    fn client_still_open(&self) -> bool {
        !matches!(
            self.client.state(),
            TcpState::Closed | TcpState::TimeWait | TcpState::FastCloseWait
        )
    }

    /// Ends the client side at once: an MPTCP client that has our key is fast-closed (RFC
    /// 8684 section 3.5), any other gets a RST (with MP_TCPRST saying `reason`, section 3.6,
    /// while MPTCP is in use).
    fn end_client(&mut self, now: Instant, reason: ResetReason) {
        if !self.client_still_open() {
            return;
        }
        let fast_close = match self.mptcp.as_mut() {
            Some(session) => {
                session.set_reset_reason(reason);
                session.start_fast_close()
            }
            None => false,
        };
        if fast_close && self.client.is_synchronized() {
            self.events.fast_close_sent = true;
            self.client.fast_close(now);
        } else {
            self.client.abort();
        }
    }

    fn fail_mptcp(&mut self, error: MptcpError) {
        let reason = match error {
            MptcpError::ChecksumFailed => {
                self.events.checksum_failure = true;
                ResetReason::MiddleboxInterference
            }
            MptcpError::MappingMismatch => {
                self.events.mapping_mismatch = true;
                ResetReason::MptcpError
            }
        };
        // RFC 8684 section 3.7 lets a single-subflow connection whose checksum failed send
        // MP_FAIL and fall back to an infinite mapping when no data was lost in between.
        // Deviation, recorded: we do not implement MP_FAIL yet and reset instead (the "cannot
        // fall back" branch of the same section), so corrupted data never reaches the backend;
        // both sides learn of it by RST (with MP_TCPRST saying why) and the counters say why.
        if let Some(session) = self.mptcp.as_mut() {
            session.set_reset_reason(reason);
        }
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
