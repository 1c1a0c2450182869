//! One proxied connection: the client side (an MPTCP connection of one or more subflows, or
//! plain TCP) and the backend side (plain TCP), with the relay that moves payload handles
//! between them.
//!
//! The client side is shaped as RFC 8684 section 2 describes it. Each subflow is a TCB of its
//! own, with its own path, congestion control and RTT, and its MPTCP state beside it
//! ([`SubflowMptcp`]); the connection-level data state is the [`MptcpSession`]: the data-level
//! send buffer that holds payload until DATA_ACK, the reassembly across subflows, one
//! receive window (section 3.3.4) that every subflow advertises, and the [`Scheduler`] that
//! maps data onto subflows. A subflow's TCB knows nothing of the connection; the connection
//! finds it by its index.
//!
//! Flow control crosses the appliance through bounded buffers: the relay moves data from one
//! side's receive queue into the other side's send buffer only while that buffer has room, so
//! a slow reader on one side closes the window on the other. The client's data enters the
//! MPTCP data level as soon as it arrives, whatever the backend does: data held here for the
//! connection is data received at the connection level, so the DATA_ACK moves (RFC 8684
//! section 3.3.2) while the backend is still being connected.
//!
//! Failures cross too. A subflow that dies or stalls hands its data not yet DATA_ACKed to the
//! others (reinjection, section 3.3.6); the connection lives while any subflow lives. A backend
//! that resets, times out or cannot be reached ends the client's MPTCP connection with
//! MP_FASTCLOSE (section 3.5), which a Linux client acts on at once, where it ignores a plain
//! RST on its only subflow until `net.mptcp.close_timeout`.

use core::net::{IpAddr, SocketAddr, SocketAddrV4};

use mpterm_wire::mptcp::{AddAddr, MptcpOption};
use mpterm_wire::tcp::TcpRepr;
use smallvec::{smallvec, SmallVec};

use crate::mptcp::address::{add_addr_hmac, AddressBook, Signal};

use crate::mptcp::MAX_SUBFLOWS;
use crate::mptcp::{MptcpError, MptcpSession, OptionOutcome, ResetReason, SubflowMptcp};
use crate::scheduler::{Candidate, ConnectionScheduler, SchedulerKind};
use crate::tcp::{CloseReason, OutgoingSegment, OwnerVerdict, Tcb, TcbCounters, TcpState};
use crate::{Instant, Payload};

mod addresses;
mod relay;
mod reliability;
mod scheduling;

/// Retransmission timeouts in a row after which a subflow is stale: the scheduler leaves it
/// alone and its data goes to the other subflows, until it is acknowledged again (Linux's
/// `stale_loss_cnt` is 4 retransmissions; a timeout here already means a whole window lost).
const STALE_AFTER_TIMEOUTS: u32 = 2;

/// The data-level retransmission timer never fires sooner (Linux's `TCP_RTO_MIN` for its
/// `mptcp_retransmit_timer`) nor backs off beyond the longest.
const MIN_DATA_RTO: core::time::Duration = core::time::Duration::from_millis(200);
const MAX_DATA_RTO: core::time::Duration = core::time::Duration::from_secs(60);
/// What one data-level retransmission sends again from the first byte not DATA_ACKed.
const DATA_RETRANSMISSION_BYTES: u32 = 16 * 1460;
/// The data-level window must have room for this much before new data is scheduled, unless
/// nothing is outstanding (sender SWS avoidance; a conservative full segment).
const MIN_FULL_SEGMENT: usize = 1200;

/// Which side of a proxied connection a segment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The client side: the subflow with this index in its connection.
    Subflow(u8),
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
    /// Joins whose third ACK verified.
    pub joins_established: u32,
    /// Joins whose third ACK carried a wrong HMAC.
    pub join_hmac_failures: u32,
    /// DATA_ACKs for data never sent.
    pub data_acks_beyond_sent: u32,
    /// MP_PRIO options received.
    pub priorities_received: u32,
    /// Bytes sent again on another subflow than the one that first carried them.
    pub reinjected_bytes: u64,
    /// Subflows that died or went stale while another could take over their data.
    pub failovers: u32,
    /// Verified data pieces received twice (a reinjection by the peer).
    pub data_duplicates: u32,
    /// Verified data dropped for lack of room in the connection's receive window.
    pub data_overflows: u32,
    /// Data-level retransmission timeouts: the DATA_ACK stalled, its first bytes sent again.
    pub data_retransmissions: u32,
    /// ADD_ADDR options of ours sent, retransmissions included (section 3.4.1).
    pub add_addr_sent: u32,
    /// Our announcements the client echoed.
    pub add_addr_echoed: u32,
    /// Our announcements given up unechoed after the last transmission.
    pub add_addr_unanswered: u32,
    /// The client's ADD_ADDRs with a valid HMAC: recorded and echoed.
    pub add_addr_received: u32,
    /// The client's ADD_ADDRs with a wrong HMAC: ignored.
    pub add_addr_bad_hmac: u32,
    /// REMOVE_ADDR options of ours sent (section 3.4.2).
    pub remove_addr_sent: u32,
    /// Address IDs the client removed that named a subflow or an address it announced.
    pub remove_addr_received: u32,
    /// Address IDs the client removed that named nothing: ignored.
    pub remove_addr_unknown: u32,
    /// Subflows reset because their address was removed, by the client or by us.
    pub remove_addr_subflows_closed: u32,
    /// MP_PRIO options of ours sent (section 3.3.8).
    pub priorities_sent: u32,
    /// Subflows closed with MP_FAIL for a failed DSS checksum while others went on.
    pub subflows_failed: u32,
    /// MP_FAIL options we sent on an ACK of the only subflow (section 3.7): for a checksum
    /// that failed here, or answering the client's.
    pub mp_fail_sent: u32,
    /// MP_FAIL options from the client, on an ACK or on a RST.
    pub mp_fail_received: u32,
    /// Infinite mappings we sent (the client's MP_FAIL on the only subflow): fallen back.
    pub infinite_mappings_sent: u32,
    /// Infinite mappings the client sent: fallen back.
    pub infinite_mappings_received: u32,
    /// Mappings that failed their checksum on the only subflow, taken back at the TCP level
    /// (never acknowledged, never delivered) so that the client sends their bytes again.
    pub checksum_rewinds: u32,
    /// Connections reset after a failed checksum or an MP_FAIL because neither another
    /// subflow nor an infinite-mapping fallback could carry on (section 3.7).
    pub failure_resets: u32,
}

/// One subflow of the client side: its TCB, the interface it came in on and its MPTCP state.
#[derive(Debug)]
pub struct Subflow<P: Payload> {
    pub tcb: Tcb<P>,
    pub interface: usize,
    pub mptcp: SubflowMptcp<P>,
    /// The scheduler leaves it alone: its retransmissions time out.
    stale: bool,
    /// Its data not yet acknowledged was handed to the other subflows.
    reinjected: bool,
    /// The subflow's bytes sent and received, for the connection's view.
    bytes_sent: u64,
    bytes_received: u64,
}

impl<P: Payload> Subflow<P> {
    pub fn new(tcb: Tcb<P>, interface: usize, mptcp: SubflowMptcp<P>) -> Self {
        Subflow {
            tcb,
            interface,
            mptcp,
            stale: false,
            reinjected: false,
            bytes_sent: 0,
            bytes_received: 0,
        }
    }

    /// Closed, or in TIME-WAIT: the subflow needs its place in the connection no more.
    pub fn is_finished(&self) -> bool {
        self.tcb.is_closed() || self.tcb.state() == TcpState::TimeWait
    }

    fn is_open(&self) -> bool {
        !matches!(
            self.tcb.state(),
            TcpState::Closed | TcpState::TimeWait | TcpState::FastCloseWait
        )
    }
}

/// What an operator sees of one subflow (issue: visibility per connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubflowView {
    pub index: u8,
    pub interface: usize,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: TcpState,
    pub backup: bool,
    pub stale: bool,
    /// The join's HMAC has not verified yet.
    pub joining: bool,
    pub remote_address_id: u8,
    pub local_address_id: u8,
    pub smoothed_rtt: Option<core::time::Duration>,
    pub congestion_window: u32,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl<P: Payload> Subflow<P> {
    fn view(&self, index: u8) -> SubflowView {
        SubflowView {
            index,
            interface: self.interface,
            local: self.tcb.local(),
            remote: self.tcb.remote(),
            state: self.tcb.state(),
            backup: self.mptcp.is_backup(),
            stale: self.stale,
            joining: !self.mptcp.is_usable(),
            remote_address_id: self.mptcp.remote_address_id,
            local_address_id: self.mptcp.local_address_id(),
            smoothed_rtt: self.tcb.smoothed_rtt(),
            congestion_window: self.tcb.congestion_window(),
            bytes_sent: self.bytes_sent,
            bytes_received: self.bytes_received,
        }
    }
}

/// A client connection relayed to a backend.
#[derive(Debug)]
pub struct ProxiedConnection<P: Payload> {
    pub id: u64,
    /// The client side's subflows by index; a finished one leaves its place empty for a join
    /// to reuse. Index 0 is the initial subflow.
    subflows: SmallVec<[Option<Subflow<P>>; 1]>,
    pub mptcp: Option<MptcpSession<P>>,
    scheduler: ConnectionScheduler,
    /// The scheduler's view of the subflows, rebuilt for each segment (no allocation).
    candidates: [Candidate; MAX_SUBFLOWS],
    pub backend: Option<Tcb<P>>,
    pub backend_address: SocketAddrV4,
    /// Data from the backend not yet taken by the client side.
    backend_leftover: Option<P>,
    /// Data from the client not yet taken by the backend side (plain TCP path).
    client_leftover: Option<P>,
    /// The initial subflow completed its handshake.
    client_synchronized: bool,
    client_closed_toward: bool,
    /// The subflows were told to close after the data level's last byte.
    subflows_closed: bool,
    /// The backend connection completed its handshake at some point.
    backend_established: bool,
    /// No backend connection could be opened (no route, no port): none is tried again.
    backend_unavailable: bool,
    backend_closed_toward: bool,
    /// The counters of subflows already taken out.
    retired_counters: TcbCounters,
    /// The data-level retransmission timer (see [`ProxiedConnection::watch_data_ack`]).
    data_retransmission: Option<Instant>,
    data_rto_backoff: u32,
    /// The DATA_ACK when the timer was last armed.
    data_ack_seen: u64,
    /// Our announcements and the client's (section 3.4).
    addresses: AddressBook,
    /// Our addresses were offered to this connection once it was fully established.
    addresses_offered: bool,
    /// Both data streams are still contiguous on the initial subflow: no join ever took part
    /// and nothing was sent twice at the data level, so an infinite mapping may map the rest
    /// of the connection onto that subflow (RFC 8684 section 3.7; Linux's
    /// `allow_infinite_fallback`).
    infinite_fallback_allowed: bool,
    events: ConnectionEvents,
}

impl<P: Payload> ProxiedConnection<P> {
    pub fn new(
        id: u64,
        initial: Subflow<P>,
        mptcp: Option<MptcpSession<P>>,
        backend_address: SocketAddrV4,
        scheduler: SchedulerKind,
    ) -> Self {
        let subflows = smallvec![Some(initial)];
        ProxiedConnection {
            id,
            subflows,
            mptcp,
            scheduler: ConnectionScheduler::new(scheduler),
            candidates: [Candidate::default(); MAX_SUBFLOWS],
            backend: None,
            backend_address,
            backend_leftover: None,
            client_leftover: None,
            client_synchronized: false,
            client_closed_toward: false,
            subflows_closed: false,
            backend_established: false,
            backend_unavailable: false,
            backend_closed_toward: false,
            retired_counters: TcbCounters::default(),
            data_retransmission: None,
            data_rto_backoff: 0,
            data_ack_seen: 0,
            addresses: AddressBook::default(),
            addresses_offered: false,
            infinite_fallback_allowed: true,
            events: ConnectionEvents::default(),
        }
    }

    /// Takes the events gathered since the last call.
    pub fn take_events(&mut self) -> ConnectionEvents {
        core::mem::take(&mut self.events)
    }

    /// The TCB of one side (a subflow or the backend), if it is still there.
    pub fn tcb_mut(&mut self, side: Side) -> Option<&mut Tcb<P>> {
        match side {
            Side::Subflow(index) => self
                .subflows
                .get_mut(usize::from(index))
                .and_then(Option::as_mut)
                .map(|subflow| &mut subflow.tcb),
            Side::Backend => self.backend.as_mut(),
        }
    }

    pub fn subflow(&self, index: u8) -> Option<&Subflow<P>> {
        self.subflows.get(usize::from(index))?.as_ref()
    }

    /// The subflows with their indices.
    pub fn subflows(&self) -> impl Iterator<Item = (u8, &Subflow<P>)> + '_ {
        self.subflows
            .iter()
            .enumerate()
            .filter_map(|(index, subflow)| Some((index as u8, subflow.as_ref()?)))
    }

    /// The subflows as an operator sees them.
    pub fn subflow_views(&self) -> impl Iterator<Item = SubflowView> + '_ {
        self.subflows().map(|(index, subflow)| subflow.view(index))
    }

    /// Subflows held (open, or closing but not finished).
    pub fn subflow_count(&self) -> usize {
        self.subflows.iter().flatten().count()
    }

    /// Adds a subflow that arrived with MP_JOIN (RFC 8684 section 3.2); its index.
    pub fn add_subflow(&mut self, subflow: Subflow<P>) -> Option<u8> {
        if let Some(index) = self.subflows.iter().position(Option::is_none) {
            self.subflows[index] = Some(subflow);
            return Some(index as u8);
        }
        if self.subflows.len() >= crate::mptcp::MAX_SUBFLOWS {
            return None;
        }
        self.subflows.push(Some(subflow));
        Some((self.subflows.len() - 1) as u8)
    }

    /// Takes out a finished subflow (for the engine's flow table and TIME-WAIT) while another
    /// goes on; its data was reinjected when it died. The last subflow stays until the
    /// connection ends.
    pub fn take_finished_subflow(&mut self) -> Option<(u8, Subflow<P>)> {
        if self.subflow_count() < 2 {
            return None;
        }
        let index = self
            .subflows
            .iter()
            .position(|subflow| subflow.as_ref().is_some_and(Subflow::is_finished))?;
        let subflow = self.subflows[index].take()?;
        add_counters(&mut self.retired_counters, &subflow.tcb.counters());
        Some((index as u8, subflow))
    }

    /// The client side finished its handshake and no backend connection exists or was tried.
    pub fn needs_backend(&self) -> bool {
        self.backend.is_none() && !self.backend_unavailable && self.client_synchronized
    }

    /// Every side is closed or in TIME-WAIT: the connection needs its slot no more (what
    /// TIME-WAIT still does is kept in the engine's TIME-WAIT table).
    pub fn is_finished(&self) -> bool {
        let done = |tcb: &Tcb<P>| tcb.is_closed() || tcb.state() == TcpState::TimeWait;
        self.subflows.iter().flatten().all(Subflow::is_finished)
            && self.backend.as_ref().is_none_or(done)
    }

    /// Accepts a join only while the connection is fully established, has not fallen back and
    /// is not being torn down (RFC 8684 section 3.2: a join needs both keys). Our DATA_FIN does
    /// not stop joins: the client may still send on new subflows, as Linux lets it.
    pub fn accepts_joins(&self) -> bool {
        self.mptcp.as_ref().is_some_and(|session| {
            session.is_fully_established()
                && !session.has_fallen_back()
                && !session.is_fast_closing()
        }) && self.client_still_open()
    }

    /// The MSS the backend should use so its segments fit the client side without splitting:
    /// the initial subflow's payload per segment plus the timestamp option the backend adds.
    pub fn backend_mss_hint(&self) -> usize {
        self.subflows
            .iter()
            .flatten()
            .map(|subflow| subflow.tcb.max_payload_per_segment())
            .min()
            .unwrap_or(536)
            + 12
    }

    pub fn counters(&self) -> TcbCounters {
        let mut total = self
            .backend
            .as_ref()
            .map(|b| b.counters())
            .unwrap_or_default();
        add_counters(&mut total, &self.retired_counters);
        for subflow in self.subflows.iter().flatten() {
            add_counters(&mut total, &subflow.tcb.counters());
        }
        total
    }

    /// A segment for subflow `index`. Its MPTCP options are read only if the subflow accepts
    /// the segment (see [`Tcb::handle_segment_with`]).
    pub fn handle_subflow_segment(
        &mut self,
        now: Instant,
        index: u8,
        repr: &TcpRepr<'_>,
        payload: Option<P>,
    ) {
        let Some(subflow) = self
            .subflows
            .get_mut(usize::from(index))
            .and_then(Option::as_mut)
        else {
            return;
        };
        let payload_len = payload.as_ref().map_or(0, |p| p.len());
        let mut outcome = OptionOutcome::default();
        let session = &mut self.mptcp;
        let subflow_mptcp = &mut subflow.mptcp;
        subflow
            .tcb
            .handle_segment_with(now, repr, payload, |segment, accepted| {
                let Some(session) = session.as_mut() else {
                    return OwnerVerdict::default();
                };
                let verdict = session.handle_options(subflow_mptcp, segment, payload_len, accepted);
                outcome = verdict.outcome;
                OwnerVerdict {
                    mapping: verdict.mapping,
                    withhold: verdict.withhold,
                }
            });
        subflow
            .mptcp
            .sent
            .acknowledge(subflow.tcb.unacknowledged_relative_seq());
        subflow.bytes_received += payload_len as u64;
        self.take_option_outcome(now, index, outcome);
        if !self.client_synchronized
            && index == 0
            && self
                .subflow(0)
                .is_some_and(|subflow| subflow.tcb.is_synchronized())
        {
            self.client_synchronized = true;
            self.events.client_established = true;
        }
        self.relay(now);
    }

    fn take_option_outcome(&mut self, now: Instant, index: u8, outcome: OptionOutcome) {
        let Some(subflow) = self
            .subflows
            .get_mut(usize::from(index))
            .and_then(Option::as_mut)
        else {
            return;
        };
        if outcome.fell_back {
            self.events.fell_back = true;
            subflow.tcb.set_owner_option_reserve(0);
        }
        if outcome.data_fin_reached {
            subflow.tcb.request_ack();
        }
        if outcome.join_verified {
            // Section 3.2: the fourth ACK tells the initiator its third ACK arrived; only then
            // does it send data on the subflow.
            self.events.joins_established += 1;
            self.infinite_fallback_allowed = false;
            subflow.tcb.request_ack();
        }
        if outcome.infinite_mapping {
            self.events.infinite_mappings_received += 1;
        }
        if outcome.join_hmac_failed {
            self.events.join_hmac_failures += 1;
            subflow.mptcp.reset_reason = Some(ResetReason::AdministrativelyProhibited);
            subflow.tcb.abort();
        }
        if let Some((backup, address_id)) = outcome.priority {
            self.events.priorities_received += 1;
            self.set_backup(index, backup, address_id);
        }
        self.events.data_acks_beyond_sent += u32::from(outcome.data_ack_beyond_sent);
        self.events.data_duplicates += outcome.data_duplicates;
        self.events.data_overflows += outcome.data_overflows;
        self.events.fast_close_ignored |= outcome.fast_close_ignored;
        if outcome.fast_close_received {
            // RFC 8684 section 3.5: answer with a RST on every subflow, and the backend is
            // reset in turn.
            self.events.fast_close_received = true;
            for (position, subflow) in self.subflows.iter_mut().enumerate() {
                if let Some(subflow) = subflow.as_mut() {
                    if position == usize::from(index) {
                        subflow.tcb.fast_close_answered();
                    } else {
                        subflow.tcb.abort();
                    }
                }
            }
        }
        self.take_address_outcome(index, &outcome);
        if outcome.mp_fail_on_reset {
            // Section 3.7: the client closed this subflow for a checksum that failed on it; it
            // dropped those bytes after its subflow acknowledged them, so no subflow resends
            // them: the data-level retransmission does, at once.
            self.events.mp_fail_received += 1;
            self.data_retransmission = Some(now);
        }
        if let Some(data_seq) = outcome.mp_fail {
            self.events.mp_fail_received += 1;
            self.answer_mp_fail(index, data_seq);
        }
        if let Some(error) = outcome.error {
            self.fail_mptcp(now, error);
        }
    }

    /// Section 3.3.8: MP_PRIO changes the backup flag of the subflow it arrived on, or, with
    /// an address ID, of every subflow from that address.
    fn set_backup(&mut self, index: u8, backup: bool, address_id: Option<u8>) {
        for (position, subflow) in self.subflows.iter_mut().enumerate() {
            let Some(subflow) = subflow.as_mut() else {
                continue;
            };
            let applies = match address_id {
                Some(id) => subflow.mptcp.remote_address_id == id,
                None => position == usize::from(index),
            };
            if applies {
                subflow.mptcp.backup = backup;
            }
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
        let backend = self.backend.as_ref().and_then(|b| b.poll_timeout());
        self.subflows
            .iter()
            .flatten()
            .filter_map(|subflow| subflow.tcb.poll_timeout())
            .chain(backend)
            .chain(self.data_retransmission)
            .chain(self.announcement_timeout())
            .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        for subflow in self.subflows.iter_mut().flatten() {
            subflow.tcb.handle_timeout(now);
        }
        if self.data_retransmission.is_some_and(|due| due <= now) {
            self.retransmit_at_data_level(now);
        }
        if self.announcement_timeout().is_some_and(|due| due <= now) {
            self.send_due_announcements(now);
        }
        if let Some(backend) = self.backend.as_mut() {
            backend.handle_timeout(now);
        }
        self.relay(now);
    }

    /// The next segment to send on either side, client side first.
    pub fn poll_segment(&mut self, now: Instant) -> Option<(Side, OutgoingSegment<P>)> {
        for (index, subflow) in self.subflows.iter_mut().enumerate() {
            let Some(subflow) = subflow.as_mut() else {
                continue;
            };
            if !subflow.mptcp.signals.is_empty() {
                if let Some(segment) = self
                    .mptcp
                    .as_ref()
                    .and_then(|session| signal_segment(now, session, subflow, &mut self.events))
                {
                    return Some((Side::Subflow(index as u8), segment));
                }
            }
            if let Some(mut segment) = subflow.tcb.poll_segment(now) {
                if let Some(session) = self.mptcp.as_mut() {
                    session.decorate(&subflow.mptcp, &mut segment);
                    // Section 3.7: the RST that closes a subflow for a failed checksum carries
                    // MP_FAIL; it is counted as the MP_FAIL on a pure ACK is.
                    if matches!(
                        segment.repr.options.mptcp[0],
                        Some(MptcpOption::MpFail { .. })
                    ) {
                        self.events.mp_fail_sent += 1;
                    }
                    if session.apply_owed_infinite_mapping(&mut segment) {
                        self.events.infinite_mappings_sent += 1;
                        self.events.fell_back = true;
                        subflow.tcb.set_owner_option_reserve(0);
                    }
                }
                subflow.bytes_sent += segment.payload.as_ref().map_or(0, |p| p.len() as u64);
                return Some((Side::Subflow(index as u8), segment));
            }
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
        self.take_client_data(now);
        self.relay_client_to_backend();
        self.relay_backend_to_client();
        self.watch_subflows();
        self.schedule();
        self.watch_data_ack(now);
        self.close_subflows_when_done();
        self.propagate_failures(now);
        self.update_receive_windows(now);
        self.couple_congestion_control();
    }

    /// The client side ended abortively (every subflow is gone, the last one abortively) and
    /// takes the backend down; a backend that failed takes the client side down.
    fn propagate_failures(&mut self, now: Instant) {
        let client_failed = !self.client_still_open()
            && self.subflows.iter().flatten().any(|subflow| {
                subflow
                    .tcb
                    .close_reason()
                    .is_some_and(CloseReason::is_abortive)
            });
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

    /// Some subflow of the client side has not ended yet, and is not being ended.
    fn client_still_open(&self) -> bool {
        self.subflows.iter().flatten().any(Subflow::is_open)
    }

    /// Ends the client side at once: an MPTCP client that has our key is fast-closed (RFC
    /// 8684 section 3.5) on one subflow and the others reset; any other gets a RST (with
    /// MP_TCPRST saying `reason`, section 3.6, while MPTCP is in use).
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
        let mut fast_closed = false;
        for subflow in self.subflows.iter_mut().flatten() {
            if !subflow.is_open() {
                continue;
            }
            if fast_close && !fast_closed && subflow.tcb.is_synchronized() {
                fast_closed = true;
                self.events.fast_close_sent = true;
                subflow.tcb.fast_close(now);
            } else {
                subflow.tcb.abort();
            }
        }
    }

    /// Ends the whole connection for an MPTCP error no subflow and no fallback can get past.
    /// A checksum failure comes here only when neither another subflow (`fail_subflow`) nor
    /// an infinite-mapping fallback (`fail_only_subflow`) can carry on (RFC 8684 section
    /// 3.7): the unverified bytes were never delivered. The client is fast-closed (section
    /// 3.5, with MP_TCPRST "middlebox interference"): a Linux client ignores a RST on its only
    /// subflow until its `net.mptcp.close_timeout` (60 s), and went on retransmitting into
    /// the reset connection in the lab. A mapping mismatch resets every subflow. The backend
    /// is reset either way, and the counters say why.
    fn fail_mptcp(&mut self, now: Instant, error: MptcpError) {
        match error {
            MptcpError::ChecksumFailed => {
                self.events.checksum_failure = true;
                self.events.failure_resets += 1;
                self.end_client(now, ResetReason::MiddleboxInterference);
                if let Some(backend) = self.backend.as_mut() {
                    backend.abort();
                }
            }
            MptcpError::MappingMismatch => {
                self.events.mapping_mismatch = true;
                self.reset_connection(ResetReason::MptcpError);
            }
        }
    }

    /// Resets every subflow (with MP_TCPRST saying `reason`) and the backend.
    fn reset_connection(&mut self, reason: ResetReason) {
        if let Some(session) = self.mptcp.as_mut() {
            session.set_reset_reason(reason);
        }
        for subflow in self.subflows.iter_mut().flatten() {
            subflow.tcb.abort();
        }
        if let Some(backend) = self.backend.as_mut() {
            backend.abort();
        }
    }
}

/// A pure ACK carrying the oldest signal queued on `subflow` (ADD_ADDR, REMOVE_ADDR or
/// MP_PRIO), counted; a subflow that can send no more forgets its signals.
fn signal_segment<P: Payload>(
    now: Instant,
    session: &MptcpSession<P>,
    subflow: &mut Subflow<P>,
    events: &mut ConnectionEvents,
) -> Option<OutgoingSegment<P>> {
    let Some(mut segment) = subflow.tcb.signal_ack(now) else {
        if !subflow.is_open() || session.has_fallen_back() {
            subflow.mptcp.signals.clear();
        }
        return None;
    };
    match session.decorate_signal(&mut subflow.mptcp, &mut segment)? {
        Signal::AddAddr(add) if !add.echo => events.add_addr_sent += 1,
        Signal::AddAddr(_) => {}
        Signal::RemoveAddr(_) => events.remove_addr_sent += 1,
        Signal::Priority { .. } => events.priorities_sent += 1,
        Signal::MpFail { .. } => events.mp_fail_sent += 1,
    }
    Some(segment)
}

fn add_counters(total: &mut TcbCounters, more: &TcbCounters) {
    total.retransmissions += more.retransmissions;
    total.rto_expirations += more.rto_expirations;
    total.fast_retransmits += more.fast_retransmits;
    total.out_of_window += more.out_of_window;
    total.unacceptable_acks += more.unacceptable_acks;
    total.challenge_acks += more.challenge_acks;
    total.withheld += more.withheld;
    total.keepalive_probes += more.keepalive_probes;
    total.sack_blocks_invalid += more.sack_blocks_invalid;
    total.dsacks_received += more.dsacks_received;
    total.rack_lost_segments += more.rack_lost_segments;
    total.tlp_probes += more.tlp_probes;
    total.paws_rejected += more.paws_rejected;
    total.delayed_acks += more.delayed_acks;
    total.spurious_reductions_undone += more.spurious_reductions_undone;
    total.ecn_ce_received += more.ecn_ce_received;
    total.ecn_window_reductions += more.ecn_window_reductions;
    total.pacing_delays += more.pacing_delays;
}
