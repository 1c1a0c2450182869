//! One client connection: the subflow's TCB, the MPTCP data level when MPTCP is in use, the
//! data waiting for the application, and what the application should learn about it.

use mpterm_wire::checksum::Checksum;
use mpterm_wire::tcp::TcpRepr;

use super::api::{ClosedReason, ConnectionCounters, ConnectionInfo, PeerReset};
use super::ready::ReadyQueue;
use super::session::ClientSession;
use crate::mptcp::{MptcpError, OptionOutcome, ResetReason};
use crate::tcp::{CloseReason, OutgoingSegment, OwnerVerdict, Tcb, TcpState};
use crate::{Instant, Payload};

/// What happened on a connection that the endpoint turns into events and counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Notices {
    /// The handshake completed: `Some(mptcp)`.
    pub established: Option<bool>,
    pub fell_back: bool,
    pub peer_finished: bool,
    pub checksum_failure: bool,
    pub mapping_mismatch: bool,
    pub fast_close_received: bool,
    pub fast_close_ignored: bool,
    pub tcprst_received: bool,
}

/// How the connection ended, once it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Closed(ClosedReason),
    Reset(PeerReset),
}

#[derive(Debug)]
pub(crate) struct ClientConnection<P: Payload> {
    pub tcb: Tcb<P>,
    /// The data level; `None` for a connection that never asked for MPTCP.
    session: Option<ClientSession<P>>,
    ready: ReadyQueue<P>,
    counters: ConnectionCounters,
    notices: Notices,
    /// Set where the TCB's own close reason does not say enough: the application aborted,
    /// the server reset or fast-closed, or its data failed verification.
    cause: Option<Ending>,
    peer_finished_noticed: bool,
    /// The application closed before the handshake completed: the FIN (and DATA_FIN) follow
    /// the queued data once the connection is established, as after a Linux socket's
    /// `shutdown` following a non-blocking `connect` (RFC 9293 3.10.4 would delete the TCB in
    /// SYN-SENT and lose the data the application already handed over).
    close_pending: bool,
}

impl<P: Payload> ClientConnection<P> {
    pub(crate) fn new(tcb: Tcb<P>, session: Option<ClientSession<P>>) -> Self {
        ClientConnection {
            tcb,
            session,
            ready: ReadyQueue::new(),
            counters: ConnectionCounters::default(),
            notices: Notices::default(),
            cause: None,
            peer_finished_noticed: false,
            close_pending: false,
        }
    }

    pub(crate) fn session(&self) -> Option<&ClientSession<P>> {
        self.session.as_ref()
    }

    /// MPTCP is in use: asked for, accepted by the server and not fallen back.
    fn speaks_mptcp(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.is_mptcp())
    }

    pub(crate) fn take_notices(&mut self) -> Notices {
        core::mem::take(&mut self.notices)
    }

    pub(crate) fn counters(&self) -> ConnectionCounters {
        let bytes_acked = match self.session.as_ref().filter(|s| !s.has_fallen_back()) {
            Some(session) => session.bytes_acked(),
            None => self.counters.bytes_acked,
        };
        ConnectionCounters {
            bytes_acked,
            retransmissions: self.tcb.counters().retransmissions,
            ..self.counters
        }
    }

    /// Plain TCP: what the subflow has acknowledged is what left its send queue. Taken only
    /// while the TCB is open: a reset or an abort empties the queue without any ACK.
    fn note_subflow_acked(&mut self) {
        if !self.tcb.is_closed() {
            self.counters.bytes_acked = self.counters.bytes_sent - self.tcb.send_queued() as u64;
        }
    }

    pub(crate) fn info(&self) -> ConnectionInfo {
        ConnectionInfo {
            state: self.tcb.state(),
            mptcp: self.speaks_mptcp(),
            dss_checksums: self.speaks_mptcp()
                && self.session.as_ref().is_some_and(|s| s.checksums_enabled()),
            fully_established: self
                .session
                .as_ref()
                .is_some_and(|s| s.is_fully_established()),
            counters: self.counters(),
        }
    }

    // ----- the application's side -----

    pub(crate) fn send_capacity(&self) -> usize {
        self.tcb.send_capacity()
    }

    pub(crate) fn send(&mut self, payload: P) -> Result<(), P> {
        let len = payload.len();
        self.tcb.send(payload)?;
        self.counters.bytes_sent += len as u64;
        if let Some(session) = self.session.as_mut() {
            session.note_queued(len);
        }
        Ok(())
    }

    pub(crate) fn recv(&mut self) -> Option<P> {
        let payload = self.ready.pop()?;
        self.counters.bytes_received += payload.len() as u64;
        self.update_held_bytes();
        Some(payload)
    }

    /// FIN after the queued data, and the DATA_FIN with it (RFC 8684 section 3.3.3).
    pub(crate) fn close(&mut self) {
        if self.tcb.state() == TcpState::SynSent {
            self.close_pending = true;
            return;
        }
        if let Some(session) = self.session.as_mut() {
            session.close();
        }
        self.tcb.close();
    }

    /// Ends the connection at once: a RST, which carries MP_FASTCLOSE while MPTCP is in use
    /// (RFC 8684 section 3.5; Linux's close with a zero linger time does the same).
    pub(crate) fn abort(&mut self) {
        if self.tcb.is_closed() {
            return;
        }
        if let Some(session) = self.session.as_mut() {
            session.start_fast_close();
        }
        self.cause
            .get_or_insert(Ending::Closed(ClosedReason::Aborted));
        self.ready.clear();
        self.tcb.abort();
    }

    // ----- the network's side -----

    /// A segment from the server for this connection. Returns true when it was the SYN-ACK
    /// that completed the handshake.
    pub(crate) fn handle_segment(
        &mut self,
        now: Instant,
        repr: &TcpRepr<'_>,
        payload: Option<P>,
    ) -> bool {
        let was_connecting = self.tcb.state() == TcpState::SynSent;
        let payload_len = payload.as_ref().map_or(0, |p| p.len());
        let mut outcome = OptionOutcome::default();
        match self.session.as_mut().filter(|s| !s.has_fallen_back()) {
            Some(session) => {
                self.tcb
                    .handle_segment_with(now, repr, payload, |segment, accepted| {
                        let verdict = session.handle_options(segment, payload_len, accepted);
                        outcome = verdict.outcome;
                        OwnerVerdict {
                            mapping: verdict.mapping,
                            withhold: false,
                        }
                    })
            }
            None => self.tcb.handle_segment(now, repr, payload),
        }
        let established = was_connecting && self.tcb.is_synchronized();
        if established {
            self.on_established(repr);
            if core::mem::take(&mut self.close_pending) {
                self.close();
            }
        }
        self.take_outcome(outcome);
        if self.tcb.close_reason() == Some(CloseReason::ResetByPeer) {
            self.cause.get_or_insert(Ending::Reset(PeerReset {
                fast_close: outcome.fast_close_received,
                reason: outcome.peer_reset,
            }));
        }
        self.take_subflow_data();
        self.note_subflow_acked();
        established
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.tcb.handle_timeout(now);
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.tcb.poll_timeout()
    }

    /// The next segment to send, with our options and its payload's sum.
    pub(crate) fn poll_segment(&mut self, now: Instant) -> Option<(OutgoingSegment<P>, Checksum)> {
        let mut segment = self.tcb.poll_segment(now)?;
        let mut payload_sum = Checksum::new();
        if let Some(payload) = segment.payload.as_ref() {
            payload_sum.add_bytes(payload.as_ref());
        }
        if let Some(session) = self.session.as_ref() {
            session.decorate(&mut segment, payload_sum);
        }
        Some((segment, payload_sum))
    }

    /// The SYN-ACK was accepted: MPTCP, or plain TCP from here on.
    fn on_established(&mut self, syn_ack: &TcpRepr<'_>) {
        let mptcp = match self.session.as_mut() {
            Some(session) => {
                let mptcp = session.handle_syn_ack(syn_ack);
                if !mptcp {
                    self.notices.fell_back = true;
                    self.tcb.set_owner_option_reserve(0);
                }
                mptcp
            }
            None => false,
        };
        self.notices.established = Some(mptcp);
    }

    fn take_outcome(&mut self, outcome: OptionOutcome) {
        if outcome.fell_back {
            self.notices.fell_back = true;
            self.tcb.set_owner_option_reserve(0);
        }
        if outcome.data_fin_reached {
            self.tcb.request_ack();
        }
        self.notices.fast_close_ignored |= outcome.fast_close_ignored;
        self.notices.tcprst_received |= outcome.peer_reset.is_some();
        if outcome.fast_close_received {
            // RFC 8684 section 3.5: the server ended the connection; answer with a RST that
            // carries MP_FASTCLOSE and MP_TCPRST, as Linux does, and end it here too.
            self.notices.fast_close_received = true;
            self.cause.get_or_insert(Ending::Reset(PeerReset {
                fast_close: true,
                reason: outcome.peer_reset,
            }));
            if let Some(session) = self.session.as_mut() {
                session.start_fast_close();
            }
            self.ready.clear();
            self.tcb.fast_close_answered();
        }
        if let Some(error) = outcome.error {
            self.fail(error);
        }
    }

    /// Moves the subflow's in-order data to the data level (and on to the application's
    /// queue), then tells the TCB what is still held, for its receive window.
    fn take_subflow_data(&mut self) {
        while let Some(chunk) = self.tcb.recv() {
            match self.session.as_mut() {
                Some(session) => match session.handle_subflow_data(chunk, &mut self.ready) {
                    Ok(true) => self.tcb.request_ack(),
                    Ok(false) => {}
                    Err(error) => {
                        self.fail(error);
                        return;
                    }
                },
                None => self.ready.push(chunk.payload),
            }
        }
        if let Some(session) = self.session.as_mut() {
            if self.tcb.peer_finished()
                && !session.has_fallen_back()
                && session.peer_closed_subflow()
            {
                self.tcb.request_ack();
            }
        }
        self.update_held_bytes();
        let finished = match self.session.as_ref().filter(|s| !s.has_fallen_back()) {
            Some(session) => session.peer_finished(),
            None => self.tcb.peer_finished(),
        };
        if finished && !self.peer_finished_noticed {
            self.peer_finished_noticed = true;
            self.notices.peer_finished = true;
        }
    }

    fn update_held_bytes(&mut self) {
        let held = self.ready.bytes() + self.session.as_ref().map_or(0, |s| s.held_bytes());
        self.tcb.set_owner_held_bytes(held);
    }

    /// The server's data did not verify: reset the connection, saying why in MP_TCPRST, as
    /// the server engine does (RFC 8684 section 3.7 would allow MP_FAIL and a fallback when
    /// nothing was lost in between; like the server, we do not implement MP_FAIL).
    fn fail(&mut self, error: MptcpError) {
        let reason = match error {
            MptcpError::ChecksumFailed => {
                self.notices.checksum_failure = true;
                ResetReason::MiddleboxInterference
            }
            MptcpError::MappingMismatch => {
                self.notices.mapping_mismatch = true;
                ResetReason::MptcpError
            }
        };
        if let Some(session) = self.session.as_mut() {
            session.set_reset_reason(reason);
        }
        self.cause
            .get_or_insert(Ending::Closed(ClosedReason::Mptcp(error)));
        self.ready.clear();
        self.tcb.abort();
    }

    // ----- the end -----

    /// The connection needs its slot no more: the subflow is closed or in TIME-WAIT, and the
    /// application has taken what arrived, unless the end was abortive (a reset or a timeout
    /// discards what was not taken, as a socket does).
    pub(crate) fn is_finished(&self) -> bool {
        let subflow_done = self.tcb.is_closed() || self.tcb.state() == TcpState::TimeWait;
        let graceful = self.ending() == Ending::Closed(ClosedReason::Graceful);
        subflow_done && (self.ready.is_empty() || !graceful)
    }

    /// How it ended; meaningful once [`ClientConnection::is_finished`].
    pub(crate) fn ending(&self) -> Ending {
        if let Some(cause) = self.cause {
            return cause;
        }
        match self.tcb.close_reason() {
            None | Some(CloseReason::Graceful) => Ending::Closed(ClosedReason::Graceful),
            Some(CloseReason::Aborted) => Ending::Closed(ClosedReason::Aborted),
            Some(CloseReason::ResetByPeer) => Ending::Reset(PeerReset::default()),
            Some(reason) => Ending::Closed(ClosedReason::TimedOut(reason)),
        }
    }
}
