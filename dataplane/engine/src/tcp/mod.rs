//! One TCP connection as a sans-IO state machine (RFC 9293), used for both roles: the passive
//! open toward clients and the active open toward backends.
//!
//! Segments come in through [`Tcb::handle_segment`], time through [`Tcb::handle_timeout`]; the
//! application side is [`Tcb::send`], [`Tcb::recv`] and [`Tcb::close`]. Output is pulled with
//! [`Tcb::poll_segment`]. Payload is held by handle ([`Payload`]) from the moment it arrives
//! until it is acknowledged, never copied.
//!
//! Implemented: MSS, window scaling and timestamps (RFC 7323), SACK-permitted negotiation and
//! SACK blocks for out-of-order data (RFC 2018; received SACK blocks are accepted but recovery
//! does not use them yet), the retransmission timer (RFC 6298), fast retransmit and NewReno
//! (RFC 5681, RFC 6582) with one immediate duplicate ACK per out-of-order segment, an
//! out-of-order queue that never holds more than the window, FIN and RST both ways (RFC 5961
//! exact-match resets and challenge ACKs), TIME_WAIT, zero-window probes, silly window
//! avoidance on both sides (RFC 9293 section 3.8.6.2) and bounded buffers with window updates.
//! Not implemented: SACK-based loss recovery (RFC 6675), keepalives, PAWS, simultaneous open.
//!
//! Tests: `tests.rs` runs two blocks back to back; `tests/sim.rs` runs them over seeded lossy
//! links as wire bytes; `tests/engine_sim.rs` runs the whole engine between two blocks.

mod congestion;
mod receive;
mod rtt;
mod send;

use core::net::SocketAddrV4;
use core::time::Duration;
use std::collections::VecDeque;

use mpterm_wire::tcp::{SackBlocks, TcpFlags, TcpOptions, TcpRepr, Timestamps};
use mpterm_wire::SeqNumber;

use crate::{Instant, Payload, TcpTuning};
pub use congestion::NewReno;
pub use receive::ReceiveQueue;
pub use rtt::RttEstimator;
pub use send::SendQueue;

/// The largest window scale shift (RFC 7323, section 2.3).
const MAX_WINDOW_SHIFT: u8 = 14;
/// Segments in the out-of-order queue at most; beyond it new out-of-order data is dropped.
const MAX_OUT_OF_ORDER_SEGMENTS: usize = 256;
/// Room reserved in every segment's option space for options the owner adds (MPTCP).
const MAX_OPTION_SPACE: usize = 40;
/// RFC 9293 section 3.7.1: the MSS assumed when the peer sends none.
const DEFAULT_PEER_MSS: u16 = 536;

/// Connection states (RFC 9293, section 3.3.2). LISTEN lives in the engine's listener table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpState {
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
    Closed,
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Both FINs exchanged and acknowledged (after TIME_WAIT where it applies).
    Graceful,
    /// The peer sent an acceptable RST.
    ResetByPeer,
    /// We sent RST (abort by the owner).
    Aborted,
    /// Retransmissions or the handshake timed out.
    TimedOut,
}

/// An MPTCP DSS mapping carried with received payload (RFC 8684, section 3.3.1), already
/// expanded to 64 bits by the owner. The TCP layer keeps it next to the bytes of the segment
/// that carried it, so the owner sees mappings in subflow order even after reordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedMapping {
    pub data_seq: u64,
    /// Relative subflow sequence number of the first mapped byte (1 is the first data byte).
    pub subflow_seq: u32,
    pub data_level_length: u16,
    pub checksum: Option<u16>,
    /// The mapping's last data-level octet is a DATA_FIN (section 3.3.3).
    pub data_fin: bool,
}

/// In-order payload handed to the owner: bytes starting at relative subflow sequence
/// `subflow_seq` (1 is the first data byte), with the mapping of the segment that carried them.
#[derive(Debug, Clone)]
pub struct ReceivedChunk<P> {
    pub subflow_seq: u32,
    pub payload: P,
    pub mapping: Option<ReceivedMapping>,
}

/// A segment ready to be sent. The owner adds its own options (MPTCP) into `repr.options`
/// within `option_space_for_owner` bytes and emits it.
#[derive(Debug, Clone)]
pub struct OutgoingSegment<P> {
    pub repr: TcpRepr<'static>,
    pub payload: Option<P>,
    /// Relative subflow sequence number of the first payload byte (1 is the first data byte).
    pub relative_seq: u32,
    /// True when this segment sends bytes that were sent before.
    pub is_retransmission: bool,
}

/// What the peer negotiated in its SYN (or SYN-ACK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Negotiated {
    peer_mss: u16,
    /// Both SYNs carried the window scale option (RFC 7323 section 2.2).
    window_scaling: bool,
    /// Shift we apply to the peer's window field; None when window scaling is off.
    send_window_shift: u8,
    /// Shift the peer applies to our window field.
    receive_window_shift: u8,
    timestamps: bool,
    sack_permitted: bool,
}

/// Counters a connection contributes to the engine totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcbCounters {
    pub retransmissions: u64,
    pub rto_expirations: u64,
    pub fast_retransmits: u64,
    pub out_of_window: u64,
}

/// Transmission control block: one TCP connection.
#[derive(Debug)]
pub struct Tcb<P: Payload> {
    local: SocketAddrV4,
    remote: SocketAddrV4,
    state: TcpState,
    close_reason: Option<CloseReason>,
    tuning: TcpTuning,
    /// Our MSS as advertised (what the path lets us receive).
    local_mss: u16,
    negotiated: Negotiated,
    /// Bytes of option space the owner reserves in every data segment.
    owner_option_reserve: usize,

    // Send side (RFC 9293 section 3.3.1 names).
    iss: SeqNumber,
    snd_una: SeqNumber,
    snd_nxt: SeqNumber,
    /// Highest sequence number sent so far (`snd_nxt` goes back on a timeout, this does not).
    snd_max: SeqNumber,
    snd_wnd: u32,
    /// The largest window the peer has offered (for sender SWS avoidance).
    max_send_window: u32,
    snd_wl1: SeqNumber,
    snd_wl2: SeqNumber,
    send_queue: SendQueue<P>,
    /// Sequence number of the first byte the send queue still holds.
    released_seq: SeqNumber,
    /// Data sent and not yet wholly acknowledged, as the `(start, length)` units it was first
    /// sent in. A unit is always sent again whole and alone: an MPTCP DSS mapping is attached
    /// to a unit, and RFC 8684 section 3.3.1 lets a receiver that holds part of a mapping
    /// accept only the identical mapping again.
    units: VecDeque<(SeqNumber, u32)>,
    /// The owner asked to close: a FIN follows the queued data.
    fin_queued: bool,
    /// Sequence number of our FIN once sent.
    fin_seq: Option<SeqNumber>,
    congestion: NewReno,
    rtt: RttEstimator,
    duplicate_acks: u32,
    /// RFC 6298 retransmission timer (also the handshake and persist timer).
    rto_deadline: Option<Instant>,
    rto_backoff: u32,
    consecutive_timeouts: u32,
    /// A segment whose round trip is being timed (Karn's algorithm: never a retransmission).
    timed_segment: Option<(SeqNumber, Instant)>,
    /// The next poll should send one retransmission of the first unacknowledged segment.
    retransmit_head: bool,
    /// The persist timer expired: the next poll sends one byte into the zero window.
    window_probe_pending: bool,

    // Receive side.
    irs: SeqNumber,
    rcv_nxt: SeqNumber,
    receive_queue: ReceiveQueue<P>,
    /// Bytes the owner holds that still count against our window (e.g. an incomplete mapping).
    owner_held_bytes: usize,
    /// Right edge of the window we last advertised; it never moves left (RFC 9293 3.8.6.2.2).
    advertised_right_edge: SeqNumber,
    /// Peer's FIN received and acknowledged in sequence.
    fin_received: bool,
    /// Sequence number of a FIN that arrived beyond a gap; it takes effect once RCV.NXT
    /// reaches it, so the peer need not send it again after the hole is filled.
    out_of_order_fin: Option<SeqNumber>,
    /// Latest timestamp to echo (RFC 7323, section 4.3).
    ts_recent: u32,
    ack_pending: bool,
    /// Duplicate ACKs owed: one per segment that arrived out of order or filled part of a
    /// gap. RFC 5681 section 4.2 asks for each at once, and the sender's fast retransmit
    /// counts them, so a burst received in one batch must not collapse into one ACK.
    immediate_acks: u8,
    syn_pending: bool,
    rst_pending: bool,
    time_wait_deadline: Option<Instant>,
    handshake_deadline: Option<Instant>,
    counters: TcbCounters,
}

impl<P: Payload> Tcb<P> {
    /// Active open (RFC 9293, section 3.10.1): the returned TCB is in SYN-SENT with a SYN to
    /// send. `local_mss` is what we accept per segment (path MTU minus 40).
    pub fn connect(
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: SeqNumber,
        local_mss: u16,
        tuning: TcpTuning,
    ) -> Self {
        let mut tcb = Tcb::new(
            now,
            local,
            remote,
            iss,
            local_mss,
            tuning,
            TcpState::SynSent,
        );
        // We offer every option; the peer's SYN-ACK decides what is used.
        tcb.negotiated.receive_window_shift = window_shift_for(tuning.receive_buffer);
        tcb.negotiated.timestamps = true;
        tcb.negotiated.sack_permitted = true;
        tcb
    }

    /// Passive open from a received SYN (RFC 9293, section 3.10.7.2): the returned TCB is in
    /// SYN-RECEIVED with a SYN-ACK to send.
    pub fn accept(
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        syn: &TcpRepr<'_>,
        iss: SeqNumber,
        local_mss: u16,
        tuning: TcpTuning,
    ) -> Self {
        let mut tcb = Tcb::new(
            now,
            local,
            remote,
            iss,
            local_mss,
            tuning,
            TcpState::SynReceived,
        );
        tcb.irs = syn.seq;
        tcb.rcv_nxt = syn.seq + 1;
        tcb.advertised_right_edge = tcb.rcv_nxt;
        tcb.apply_peer_syn_options(&syn.options, true);
        // RFC 9293 3.10.7.2: the SYN's window is not scaled.
        tcb.snd_wnd = u32::from(syn.window);
        tcb.max_send_window = tcb.snd_wnd;
        tcb.snd_wl1 = syn.seq;
        tcb.snd_wl2 = iss;
        tcb
    }

    fn new(
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: SeqNumber,
        local_mss: u16,
        tuning: TcpTuning,
        state: TcpState,
    ) -> Self {
        let rtt = RttEstimator::new(tuning.initial_rto, tuning.min_rto, tuning.max_rto);
        Tcb {
            local,
            remote,
            state,
            close_reason: None,
            tuning,
            local_mss,
            negotiated: Negotiated {
                peer_mss: DEFAULT_PEER_MSS,
                window_scaling: false,
                send_window_shift: 0,
                receive_window_shift: 0,
                timestamps: false,
                sack_permitted: false,
            },
            owner_option_reserve: 0,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            max_send_window: 0,
            snd_wl1: SeqNumber(0),
            snd_wl2: iss,
            send_queue: SendQueue::new(tuning.send_buffer as usize),
            released_seq: iss + 1,
            units: VecDeque::new(),
            fin_queued: false,
            fin_seq: None,
            congestion: NewReno::new(DEFAULT_PEER_MSS),
            rtt,
            duplicate_acks: 0,
            rto_deadline: None,
            rto_backoff: 0,
            consecutive_timeouts: 0,
            timed_segment: None,
            retransmit_head: false,
            window_probe_pending: false,
            irs: SeqNumber(0),
            rcv_nxt: SeqNumber(0),
            receive_queue: ReceiveQueue::new(
                tuning.receive_buffer as usize,
                MAX_OUT_OF_ORDER_SEGMENTS,
            ),
            owner_held_bytes: 0,
            advertised_right_edge: SeqNumber(0),
            fin_received: false,
            out_of_order_fin: None,
            ts_recent: 0,
            ack_pending: false,
            immediate_acks: 0,
            syn_pending: true,
            rst_pending: false,
            time_wait_deadline: None,
            handshake_deadline: Some(now + tuning.connect_timeout),
            counters: TcbCounters::default(),
        }
    }

    // ----- getters -----

    pub fn state(&self) -> TcpState {
        self.state
    }

    pub fn local(&self) -> SocketAddrV4 {
        self.local
    }

    pub fn remote(&self) -> SocketAddrV4 {
        self.remote
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason
    }

    pub fn is_closed(&self) -> bool {
        self.state == TcpState::Closed
    }

    /// True once the handshake completed (ESTABLISHED or any later state but CLOSED).
    pub fn is_synchronized(&self) -> bool {
        !matches!(
            self.state,
            TcpState::SynSent | TcpState::SynReceived | TcpState::Closed
        )
    }

    pub fn counters(&self) -> TcbCounters {
        self.counters
    }

    pub fn iss(&self) -> SeqNumber {
        self.iss
    }

    pub fn irs(&self) -> SeqNumber {
        self.irs
    }

    /// The peer's MSS as negotiated.
    pub fn peer_mss(&self) -> u16 {
        self.negotiated.peer_mss
    }

    pub fn timestamps_enabled(&self) -> bool {
        self.negotiated.timestamps
    }

    pub fn sack_permitted(&self) -> bool {
        self.negotiated.sack_permitted
    }

    /// Bytes the owner may still [`Tcb::send`].
    pub fn send_capacity(&self) -> usize {
        if self.fin_queued
            || !matches!(
                self.state,
                TcpState::SynSent
                    | TcpState::SynReceived
                    | TcpState::Established
                    | TcpState::CloseWait
            )
        {
            return 0;
        }
        self.send_queue.free_space()
    }

    /// Bytes queued for sending and not yet acknowledged.
    pub fn send_queued(&self) -> usize {
        self.send_queue.len()
    }

    /// True when everything queued, and the FIN if one was queued, is acknowledged.
    pub fn all_sent_acknowledged(&self) -> bool {
        self.send_queue.is_empty()
            && (!self.fin_queued
                || self
                    .fin_seq
                    .is_some_and(|fin| self.snd_una.distance_from(fin) > 0))
    }

    /// The peer closed its side and everything before its FIN has been taken with `recv`.
    pub fn peer_finished(&self) -> bool {
        self.fin_received && self.receive_queue.is_empty()
    }

    /// Payload bytes in the receive queue (in order and out of order).
    pub fn received_buffered(&self) -> usize {
        self.receive_queue.buffered_bytes()
    }

    /// The most payload one segment may carry, given the options we put in every segment.
    pub fn max_payload_per_segment(&self) -> usize {
        let timestamps = if self.negotiated.timestamps { 12 } else { 0 };
        let options = (timestamps + self.owner_option_reserve).div_ceil(4) * 4;
        usize::from(self.negotiated.peer_mss)
            .saturating_sub(options.min(MAX_OPTION_SPACE))
            .max(1)
    }

    // ----- mutators from the owner -----

    /// Reserves `bytes` of option space in every segment for the owner's options.
    pub fn set_owner_option_reserve(&mut self, bytes: usize) {
        self.owner_option_reserve = bytes.min(MAX_OPTION_SPACE);
    }

    /// Declares how many received bytes the owner holds outside this TCB that still count
    /// against the receive window.
    pub fn set_owner_held_bytes(&mut self, bytes: usize) {
        let released = bytes < self.owner_held_bytes;
        self.owner_held_bytes = bytes;
        if released {
            self.consider_window_update();
        }
    }

    /// Queues payload for sending. Returns it back if it does not fit in the send buffer or the
    /// connection no longer sends.
    pub fn send(&mut self, payload: P) -> Result<(), P> {
        if payload.is_empty() {
            return Ok(());
        }
        if self.send_capacity() < payload.len() {
            return Err(payload);
        }
        self.send_queue.push(payload);
        Ok(())
    }

    /// Takes the next in-order received chunk.
    pub fn recv(&mut self) -> Option<ReceivedChunk<P>> {
        let chunk = self.receive_queue.pop_in_order()?;
        self.consider_window_update();
        Some(chunk)
    }

    /// RFC 9293 section 3.8.6.2.2 (receiver SWS avoidance): announce a window that opened by at
    /// least one MSS or half the buffer beyond what we last advertised.
    fn consider_window_update(&mut self) {
        // After the peer's FIN it sends nothing more: a window update would only reach a
        // socket that may be gone, which answers with RST.
        if !self.is_synchronized() || self.fin_received {
            return;
        }
        let possible_edge = self.rcv_nxt + self.receive_window() as u32;
        let opened = possible_edge
            .distance_from(self.advertised_right_edge)
            .max(0) as usize;
        if opened >= usize::from(self.local_mss).min(self.receive_queue.capacity() / 2) {
            self.ack_pending = true;
        }
    }

    /// Asks for an acknowledgement (e.g. the owner's DATA_ACK changed).
    pub fn request_ack(&mut self) {
        if self.is_synchronized() {
            self.ack_pending = true;
        }
    }

    /// Closes our sending side: a FIN follows the queued data (RFC 9293, section 3.10.4).
    pub fn close(&mut self) {
        match self.state {
            TcpState::SynSent => self.enter_closed(CloseReason::Graceful),
            TcpState::SynReceived | TcpState::Established | TcpState::CloseWait => {
                self.fin_queued = true
            }
            _ => {}
        }
    }

    /// Aborts: one RST goes out and the TCB is closed (RFC 9293, section 3.10.5).
    pub fn abort(&mut self) {
        if self.state == TcpState::Closed {
            return;
        }
        if !matches!(self.state, TcpState::SynSent | TcpState::TimeWait) {
            self.rst_pending = true;
        }
        self.send_queue.clear();
        self.units.clear();
        self.receive_queue.clear();
        self.enter_closed(CloseReason::Aborted);
    }

    // ----- input -----

    /// Processes one received segment (RFC 9293, section 3.10.7).
    pub fn handle_segment(
        &mut self,
        now: Instant,
        segment: &TcpRepr<'_>,
        payload: Option<P>,
        mapping: Option<ReceivedMapping>,
    ) {
        match self.state {
            TcpState::Closed => {}
            TcpState::SynSent => self.handle_in_syn_sent(now, segment),
            _ => self.handle_synchronizing_or_synchronized(now, segment, payload, mapping),
        }
    }

    fn handle_in_syn_sent(&mut self, now: Instant, segment: &TcpRepr<'_>) {
        let flags = segment.flags;
        // RFC 9293 3.10.7.3, first: the ACK must acknowledge our SYN.
        let ack_acceptable = flags.contains(TcpFlags::ACK) && segment.ack == self.iss + 1;
        if flags.contains(TcpFlags::ACK) && !ack_acceptable {
            if !flags.contains(TcpFlags::RST) {
                self.rst_pending = true;
            }
            return;
        }
        if flags.contains(TcpFlags::RST) {
            if ack_acceptable {
                self.enter_closed(CloseReason::ResetByPeer);
            }
            return;
        }
        if !flags.contains(TcpFlags::SYN) || !ack_acceptable {
            return;
        }
        self.irs = segment.seq;
        self.rcv_nxt = segment.seq + 1;
        self.advertised_right_edge = self.rcv_nxt;
        self.apply_peer_syn_options(&segment.options, false);
        self.snd_una = segment.ack;
        self.snd_wnd = u32::from(segment.window);
        self.max_send_window = self.snd_wnd;
        self.snd_wl1 = segment.seq;
        self.snd_wl2 = segment.ack;
        if let Some(timestamps) = segment.options.timestamps {
            self.ts_recent = timestamps.value;
        }
        self.on_handshake_acknowledged(now);
        self.ack_pending = true;
    }

    fn handle_synchronizing_or_synchronized(
        &mut self,
        now: Instant,
        segment: &TcpRepr<'_>,
        payload: Option<P>,
        mapping: Option<ReceivedMapping>,
    ) {
        let flags = segment.flags;
        let payload_len = payload.as_ref().map_or(0, |p| p.len()) as u32;

        // A retransmitted SYN in SYN-RECEIVED: our SYN-ACK was lost; send it again.
        if self.state == TcpState::SynReceived
            && flags.contains(TcpFlags::SYN)
            && !flags.contains(TcpFlags::ACK)
        {
            if segment.seq == self.irs {
                self.syn_pending = true;
            }
            return;
        }

        // RFC 9293 3.10.7.4, first: sequence number check.
        if !self.segment_acceptable(
            segment.seq,
            payload_len + u32::from(flags.contains(TcpFlags::FIN)),
        ) {
            self.counters.out_of_window += 1;
            if !flags.contains(TcpFlags::RST) {
                self.ack_pending = true;
            }
            return;
        }

        // Second: RST. RFC 5961 section 3.2: only an exact match resets; any other in-window
        // RST gets a challenge ACK.
        if flags.contains(TcpFlags::RST) {
            if self.state == TcpState::TimeWait {
                // RFC 1337: a RST must not cut TIME-WAIT short (both streams are complete).
                return;
            }
            if segment.seq == self.rcv_nxt {
                self.send_queue.clear();
                self.units.clear();
                self.enter_closed(CloseReason::ResetByPeer);
            } else {
                self.ack_pending = true;
            }
            return;
        }

        // Fourth: a SYN in a synchronized state gets a challenge ACK (RFC 5961, section 4).
        if flags.contains(TcpFlags::SYN) {
            self.ack_pending = true;
            return;
        }

        // Fifth: the ACK field.
        if !flags.contains(TcpFlags::ACK) {
            return;
        }
        if self.state == TcpState::SynReceived {
            if segment.ack != self.iss + 1 {
                self.rst_pending_for_ack(segment.ack);
                return;
            }
            self.snd_una = segment.ack;
            self.on_handshake_acknowledged(now);
        }
        if !self.process_ack(now, segment, payload_len) {
            return;
        }

        if let Some(timestamps) = segment.options.timestamps {
            // RFC 7323 section 4.3: remember the peer's clock from segments at the left edge.
            if segment.seq.distance_from(self.rcv_nxt) <= 0 {
                self.ts_recent = timestamps.value;
            }
        }

        // Seventh: segment text.
        if let Some(payload) = payload.filter(|p| !p.is_empty()) {
            if matches!(
                self.state,
                TcpState::Established | TcpState::FinWait1 | TcpState::FinWait2
            ) {
                self.receive_payload(segment.seq, payload, mapping);
            }
        }

        // Eighth: FIN.
        if flags.contains(TcpFlags::FIN) {
            let fin_seq = segment.seq + payload_len;
            if fin_seq == self.rcv_nxt && !self.fin_received {
                self.receive_fin(now);
            } else if self.fin_received {
                // A retransmitted FIN: acknowledge again.
                self.ack_pending = true;
            } else {
                // FIN beyond a gap: acknowledge what we have and take the FIN once the gap
                // is filled.
                if fin_seq.distance_from(self.rcv_nxt) > 0 {
                    self.out_of_order_fin = Some(fin_seq);
                }
                self.ack_pending = true;
            }
        }
        if !self.fin_received && self.out_of_order_fin == Some(self.rcv_nxt) {
            self.out_of_order_fin = None;
            self.receive_fin(now);
        }
    }

    /// RFC 9293 3.10.7.4 table: is any part of the segment inside the receive window?
    fn segment_acceptable(&self, seq: SeqNumber, len: u32) -> bool {
        let window = self.acceptable_window() as u32;
        let offset = seq.distance_from(self.rcv_nxt);
        let end_offset = offset as i64 + i64::from(len);
        match (len, window) {
            (0, 0) => offset == 0,
            (0, _) => offset >= 0 && (offset as u32) < window,
            (_, 0) => false,
            _ => {
                (offset >= 0 && (offset as u32) < window)
                    || (end_offset > 0 && offset < window as i32)
            }
        }
    }

    /// ACK processing (RFC 9293 3.10.7.4, fifth). Returns false when the segment must be dropped.
    fn process_ack(&mut self, now: Instant, segment: &TcpRepr<'_>, payload_len: u32) -> bool {
        let ack = segment.ack;
        if ack.distance_from(self.snd_max) > 0 {
            // Acknowledges something not yet sent.
            self.ack_pending = true;
            return false;
        }
        let window = u32::from(segment.window) << self.negotiated.send_window_shift;
        if window == 0 {
            // RFC 9293 3.8.6.1: a peer that answers probes with a zero window is alive; the
            // sender keeps probing as long as it does.
            self.consecutive_timeouts = 0;
        }
        let newly_acked = ack.distance_from(self.snd_una);
        if newly_acked > 0 {
            self.on_new_ack(now, ack, segment);
        } else if newly_acked == 0
            && payload_len == 0
            && !segment.flags.contains(TcpFlags::FIN)
            && window == self.snd_wnd
            && window != 0
            && self.snd_max != self.snd_una
        {
            // RFC 5681 section 2: a duplicate acknowledgement.
            self.on_duplicate_ack();
        }
        // RFC 9293 3.10.7.4: update the send window from the newest segment.
        if self.snd_wl1.distance_from(segment.seq) < 0
            || (self.snd_wl1 == segment.seq && self.snd_wl2.distance_from(ack) <= 0)
        {
            self.snd_wnd = window;
            self.max_send_window = self.max_send_window.max(window);
            self.snd_wl1 = segment.seq;
            self.snd_wl2 = ack;
        }
        true
    }

    fn on_new_ack(&mut self, now: Instant, ack: SeqNumber, segment: &TcpRepr<'_>) {
        let acked = ack.distance_from(self.snd_una) as u32;
        let fin_acked = self.fin_seq.is_some_and(|fin| ack.distance_from(fin) > 0);
        self.release_acknowledged(ack);
        self.snd_una = ack;
        if self.snd_nxt.distance_from(ack) < 0 {
            self.snd_nxt = ack;
        }
        self.duplicate_acks = 0;
        self.consecutive_timeouts = 0;
        self.rto_backoff = 0;

        // RTT sample (RFC 6298 section 3, Karn's algorithm) or from the echoed timestamp.
        let mut sampled = false;
        if let Some(timestamps) = segment
            .options
            .timestamps
            .filter(|_| self.negotiated.timestamps)
        {
            let sent_millis = timestamps.echo_reply;
            let elapsed = now.timestamp_millis().wrapping_sub(sent_millis);
            if timestamps.echo_reply != 0 && elapsed < 60_000 {
                self.rtt.sample(Duration::from_millis(u64::from(elapsed)));
                sampled = true;
            }
        }
        if let Some((seq, sent_at)) = self.timed_segment {
            if ack.distance_from(seq) > 0 {
                if !sampled {
                    self.rtt.sample(now.saturating_since(sent_at));
                }
                self.timed_segment = None;
            }
        }

        let mss = self.max_payload_per_segment() as u32;
        let flight = self.snd_max.distance_from(ack).max(0) as u32;
        if self.congestion.on_ack(ack, acked, flight, mss) {
            // RFC 6582 section 3.2 step 5: a partial acknowledgement retransmits the next hole.
            self.retransmit_head = true;
        }

        // RFC 6298 section 5.2/5.3.
        if self.snd_una == self.snd_max {
            self.rto_deadline = None;
        } else {
            self.rto_deadline = Some(now + self.rtt.rto());
        }
        if fin_acked {
            self.on_fin_acknowledged(now);
        }
    }

    /// Frees the units `ack` covers wholly; a partly acknowledged unit stays, since it may have
    /// to be sent again whole.
    fn release_acknowledged(&mut self, ack: SeqNumber) {
        while let Some(&(start, len)) = self.units.front() {
            if (start + len).distance_from(ack) <= 0 {
                self.units.pop_front();
            } else {
                break;
            }
        }
        let release = match self.units.front() {
            Some(&(start, _)) => start,
            None => ack.min(self.data_end_seq()),
        };
        let advance = release.distance_from(self.released_seq);
        if advance > 0 {
            self.send_queue
                .release_to(self.send_queue.released() + advance as u64);
            self.released_seq = release;
        }
    }

    /// The sequence number after the last queued byte.
    fn data_end_seq(&self) -> SeqNumber {
        self.released_seq + self.send_queue.len() as u32
    }

    /// The send queue's stream offset of sequence number `seq` (at or after `released_seq`).
    fn stream_offset(&self, seq: SeqNumber) -> u64 {
        self.send_queue.released() + seq.distance_from(self.released_seq).max(0) as u64
    }

    fn on_duplicate_ack(&mut self) {
        let mss = self.max_payload_per_segment() as u32;
        if self.congestion.in_fast_recovery() {
            // RFC 6582 section 3.2 step 4: every further duplicate inflates the window, also
            // after a partial acknowledgement has reset the count.
            self.congestion.inflate(mss);
            return;
        }
        self.duplicate_acks += 1;
        let flight = self.snd_max.distance_from(self.snd_una).max(0) as u32;
        if self.duplicate_acks == 3 {
            // RFC 6582 section 3.2 step 2: enter fast recovery unless this hole was recovered.
            if self
                .congestion
                .enter_fast_recovery(self.snd_una, self.snd_max, flight, mss)
            {
                self.counters.fast_retransmits += 1;
                self.retransmit_head = true;
                self.timed_segment = None;
            }
        }
    }

    fn receive_payload(&mut self, seq: SeqNumber, payload: P, mapping: Option<ReceivedMapping>) {
        let relative = seq.distance_from(self.irs) as u32;
        let window = self.acceptable_window();
        let offset = seq.distance_from(self.rcv_nxt);
        let accepted =
            self.receive_queue
                .insert(self.rcv_nxt, offset, relative, payload, mapping, window);
        if accepted.in_order_advance > 0 {
            self.rcv_nxt = self.rcv_nxt + accepted.in_order_advance as u32;
        }
        if accepted.dropped {
            self.counters.out_of_window += 1;
        }
        // Out-of-order data, or data that fills part of a gap, is acknowledged at once and
        // each time (RFC 5681 section 4.2).
        if offset > 0 || self.receive_queue.has_out_of_order() {
            self.immediate_acks = self.immediate_acks.saturating_add(1);
        }
        self.ack_pending = true;
    }

    fn receive_fin(&mut self, now: Instant) {
        self.fin_received = true;
        self.rcv_nxt = self.rcv_nxt + 1;
        self.ack_pending = true;
        match self.state {
            TcpState::SynReceived | TcpState::Established => self.state = TcpState::CloseWait,
            TcpState::FinWait1 => {
                // Our FIN is not acknowledged yet: simultaneous close.
                self.state = TcpState::Closing;
            }
            TcpState::FinWait2 => self.enter_time_wait(now),
            _ => {}
        }
    }

    fn on_handshake_acknowledged(&mut self, now: Instant) {
        self.state = TcpState::Established;
        self.handshake_deadline = None;
        self.syn_pending = false;
        self.rto_deadline = None;
        self.rto_backoff = 0;
        let mss = self.max_payload_per_segment() as u32;
        self.congestion = NewReno::new(mss as u16);
        if let Some((_, sent_at)) = self.timed_segment.take() {
            self.rtt.sample(now.saturating_since(sent_at));
        }
    }

    fn on_fin_acknowledged(&mut self, now: Instant) {
        match self.state {
            TcpState::FinWait1 => self.state = TcpState::FinWait2,
            TcpState::Closing => self.enter_time_wait(now),
            TcpState::LastAck => self.enter_closed(CloseReason::Graceful),
            _ => {}
        }
    }

    fn enter_time_wait(&mut self, now: Instant) {
        self.state = TcpState::TimeWait;
        self.rto_deadline = None;
        self.time_wait_deadline = Some(now + self.tuning.time_wait);
    }

    fn enter_closed(&mut self, reason: CloseReason) {
        self.state = TcpState::Closed;
        self.close_reason.get_or_insert(reason);
        self.rto_deadline = None;
        self.time_wait_deadline = None;
        self.handshake_deadline = None;
        self.ack_pending = false;
        self.immediate_acks = 0;
        self.syn_pending = false;
    }

    fn rst_pending_for_ack(&mut self, _ack: SeqNumber) {
        // RFC 9293 3.10.7.4: an unacceptable ACK in SYN-RECEIVED gets <SEQ=SEG.ACK><CTL=RST>;
        // we answer with a challenge ACK instead, which the peer resolves the same way.
        self.ack_pending = true;
    }

    fn apply_peer_syn_options(&mut self, options: &TcpOptions<'_>, passive: bool) {
        self.negotiated.peer_mss = options.mss.unwrap_or(DEFAULT_PEER_MSS).max(64);
        // RFC 7323 section 2.2: scaling is on only if both SYNs carry the option.
        match options.window_scale {
            Some(shift) => {
                self.negotiated.window_scaling = true;
                self.negotiated.send_window_shift = shift.min(MAX_WINDOW_SHIFT);
                if passive {
                    self.negotiated.receive_window_shift =
                        window_shift_for(self.tuning.receive_buffer);
                }
            }
            None => {
                self.negotiated.window_scaling = false;
                self.negotiated.send_window_shift = 0;
                self.negotiated.receive_window_shift = 0;
            }
        }
        let peer_timestamps = options.timestamps.is_some();
        let peer_sack = options.sack_permitted;
        if passive {
            self.negotiated.timestamps = peer_timestamps;
            self.negotiated.sack_permitted = peer_sack;
        } else {
            self.negotiated.timestamps &= peer_timestamps;
            self.negotiated.sack_permitted &= peer_sack;
        }
        if let Some(timestamps) = options.timestamps {
            self.ts_recent = timestamps.value;
        }
    }

    // ----- timers -----

    /// The earliest instant at which [`Tcb::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.rto_deadline,
            self.time_wait_deadline,
            self.handshake_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self
            .handshake_deadline
            .is_some_and(|deadline| deadline <= now)
        {
            self.rst_pending = self.state == TcpState::SynReceived;
            self.enter_closed(CloseReason::TimedOut);
            return;
        }
        if self
            .time_wait_deadline
            .is_some_and(|deadline| deadline <= now)
        {
            self.enter_closed(CloseReason::Graceful);
            return;
        }
        if self.rto_deadline.is_some_and(|deadline| deadline <= now) {
            self.on_retransmission_timeout(now);
        }
    }

    fn on_retransmission_timeout(&mut self, now: Instant) {
        self.rto_deadline = None;
        let data_pending = self.data_end_seq().distance_from(self.snd_una) > 0;
        let handshaking = matches!(self.state, TcpState::SynSent | TcpState::SynReceived);
        if !handshaking && self.snd_max == self.snd_una && !data_pending {
            return;
        }
        self.consecutive_timeouts += 1;
        if self.consecutive_timeouts > 15 {
            // RFC 9293 3.8.3 R2: give up after about 15 retransmissions, as Linux does.
            self.rst_pending = self.is_synchronized();
            self.enter_closed(CloseReason::TimedOut);
            return;
        }
        // RFC 6298 section 5.5: back off the timer.
        self.rto_backoff = (self.rto_backoff + 1).min(16);
        self.timed_segment = None;
        if handshaking {
            self.counters.rto_expirations += 1;
            self.syn_pending = true;
            return;
        }
        let restart = self.units.front().map_or(self.snd_una, |&(start, _)| start);
        if self.snd_wnd == 0 && data_pending {
            // RFC 9293 3.8.6.1: the persist timer probes the zero window with one unit (one
            // byte when nothing is in flight); the congestion state is left alone.
            self.window_probe_pending = true;
            self.snd_nxt = restart;
            self.arm_retransmission_timer(now);
            return;
        }
        self.counters.rto_expirations += 1;
        let mss = self.max_payload_per_segment() as u32;
        let flight = self.snd_max.distance_from(self.snd_una).max(0) as u32;
        // RFC 5681 section 3.1 equation 4, RFC 6582 section 4: go back to the first unit.
        self.congestion.on_timeout(flight, mss, self.snd_max);
        self.snd_nxt = restart;
        self.duplicate_acks = 0;
        self.retransmit_head = false;
    }

    fn arm_retransmission_timer(&mut self, now: Instant) {
        if self.rto_deadline.is_none() {
            let backoff = 1u32 << self.rto_backoff.min(16);
            let rto = self
                .rtt
                .rto()
                .saturating_mul(backoff)
                .min(self.tuning.max_rto);
            self.rto_deadline = Some(now + rto);
        }
    }

    // ----- output -----

    /// The receive window we can offer now: buffer space not taken by in-order data the owner
    /// has not read yet. Out-of-order data lies inside this window, so it does not narrow it;
    /// in-order plus out-of-order bytes therefore never exceed the buffer.
    fn receive_window(&self) -> usize {
        self.receive_queue
            .capacity()
            .saturating_sub(self.receive_queue.in_order_bytes() + self.owner_held_bytes)
    }

    /// RCV.WND: the window as last advertised, or wider if the buffer allows (the right edge
    /// never moves left, RFC 9293 section 3.8.6.2.2).
    fn acceptable_window(&self) -> usize {
        let promised = self
            .advertised_right_edge
            .distance_from(self.rcv_nxt)
            .max(0) as usize;
        self.receive_window().max(promised)
    }

    /// The window field for an outgoing segment, never shrinking the advertised right edge.
    fn window_field(&mut self) -> u16 {
        let shift = self.negotiated.receive_window_shift;
        let available = self.receive_window() as u32;
        let promised = self
            .advertised_right_edge
            .distance_from(self.rcv_nxt)
            .max(0) as u32;
        // Receiver SWS avoidance (RFC 9293 3.8.6.2.2, RFC 1122 4.2.3.3): the right edge moves
        // only by at least min(MSS, half the buffer); smaller openings wait, so a slow reader
        // shows the sender a closed window instead of a trickle of tiny ones.
        let threshold = u32::from(self.local_mss).min(self.receive_queue.capacity() as u32 / 2);
        let window = if available >= promised.saturating_add(threshold) {
            available
        } else {
            promised
        };
        let field = (window >> shift).min(u32::from(u16::MAX));
        let right_edge = self.rcv_nxt + (field << shift);
        if right_edge.distance_from(self.advertised_right_edge) > 0 {
            self.advertised_right_edge = right_edge;
        }
        field as u16
    }

    fn base_options(&self, now: Instant) -> TcpOptions<'static> {
        let mut options = TcpOptions::default();
        if self.negotiated.timestamps {
            options.timestamps = Some(Timestamps {
                value: now.timestamp_millis().max(1),
                echo_reply: self.ts_recent,
            });
        }
        options
    }

    fn syn_options(&self, now: Instant) -> TcpOptions<'static> {
        let mut options = TcpOptions {
            mss: Some(self.local_mss),
            ..TcpOptions::default()
        };
        // RFC 7323 section 2.2: the active side always offers; the passive side answers only
        // an offer (with shift 0 if it needs none), since scaling needs both SYNs to carry it.
        if self.state == TcpState::SynSent || self.negotiated.window_scaling {
            options.window_scale = Some(self.negotiated.receive_window_shift);
        }
        options.sack_permitted = self.negotiated.sack_permitted;
        if self.negotiated.timestamps {
            let echo = if self.state == TcpState::SynSent {
                0
            } else {
                self.ts_recent
            };
            options.timestamps = Some(Timestamps {
                value: now.timestamp_millis().max(1),
                echo_reply: echo,
            });
        }
        options
    }

    /// SACK blocks for an outgoing segment, at most `limit` (RFC 2018 section 4).
    fn sack_blocks(&self, limit: usize) -> SackBlocks {
        if self.negotiated.sack_permitted {
            self.receive_queue.sack_blocks(limit)
        } else {
            SackBlocks::default()
        }
    }

    fn make_repr(
        &mut self,
        seq: SeqNumber,
        flags: TcpFlags,
        options: TcpOptions<'static>,
    ) -> TcpRepr<'static> {
        let window = if flags.contains(TcpFlags::SYN) {
            // RFC 7323 section 2.2: the window in a SYN is never scaled.
            self.receive_window().min(usize::from(u16::MAX)) as u16
        } else {
            self.window_field()
        };
        let (ack, flags) = if flags.contains(TcpFlags::ACK) || self.state != TcpState::SynSent {
            (self.rcv_nxt, flags | TcpFlags::ACK)
        } else {
            (SeqNumber(0), flags)
        };
        TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq,
            ack,
            flags,
            window,
            options,
        }
    }

    /// The next segment to send, if any. Call until it returns `None`.
    pub fn poll_segment(&mut self, now: Instant) -> Option<OutgoingSegment<P>> {
        if self.rst_pending {
            self.rst_pending = false;
            let repr = TcpRepr {
                src_port: self.local.port(),
                dst_port: self.remote.port(),
                // SND.MAX: the peer's RCV.NXT once it has everything we sent, which RFC 5961
                // section 3.2 requires of a RST it accepts without a challenge.
                seq: self.snd_max,
                ack: self.rcv_nxt,
                flags: TcpFlags::RST | TcpFlags::ACK,
                window: 0,
                options: TcpOptions::default(),
            };
            return Some(OutgoingSegment {
                repr,
                payload: None,
                relative_seq: 0,
                is_retransmission: false,
            });
        }
        match self.state {
            TcpState::Closed => None,
            TcpState::SynSent | TcpState::SynReceived => self.poll_handshake(now),
            _ => self.poll_synchronized(now),
        }
    }

    fn poll_handshake(&mut self, now: Instant) -> Option<OutgoingSegment<P>> {
        // In SYN-RECEIVED an acknowledgement (e.g. a RFC 5961 challenge ACK) is the SYN-ACK
        // again: the peer has not seen our ISN acknowledged otherwise.
        let ack_as_syn = self.state == TcpState::SynReceived && self.ack_pending;
        if !self.syn_pending && !ack_as_syn {
            return None;
        }
        self.syn_pending = false;
        self.ack_pending = false;
        let is_retransmission = self.snd_max != self.iss;
        if is_retransmission {
            self.counters.retransmissions += 1;
        } else {
            self.timed_segment = Some((self.iss, now));
        }
        self.snd_nxt = self.iss + 1;
        self.snd_max = self.iss + 1;
        self.arm_retransmission_timer(now);
        let options = self.syn_options(now);
        let repr = self.make_repr(self.iss, TcpFlags::SYN, options);
        Some(OutgoingSegment {
            repr,
            payload: None,
            relative_seq: 0,
            is_retransmission,
        })
    }

    fn poll_synchronized(&mut self, now: Instant) -> Option<OutgoingSegment<P>> {
        if self.state == TcpState::TimeWait {
            return self.take_pure_ack(now);
        }
        if self.retransmit_head && self.snd_max != self.snd_una {
            self.retransmit_head = false;
            if let Some(segment) = self
                .units
                .front()
                .copied()
                .and_then(|unit| self.send_unit(now, unit))
            {
                return Some(segment);
            }
        }
        if let Some(segment) = self.next_new_segment(now) {
            return Some(segment);
        }
        self.take_pure_ack(now)
    }

    fn take_pure_ack(&mut self, now: Instant) -> Option<OutgoingSegment<P>> {
        if self.immediate_acks > 0 {
            self.immediate_acks -= 1;
        } else if !self.ack_pending {
            return None;
        }
        self.ack_pending = self.immediate_acks > 0;
        let mut options = self.base_options(now);
        // Timestamps (10 bytes, 12 aligned) leave room for three blocks, none for four.
        let room = if options.timestamps.is_some() { 3 } else { 4 };
        options.sack_blocks = self.sack_blocks(room);
        // SND.MAX, not SND.NXT: after a timeout SND.NXT goes back, and a zero-length segment
        // below the peer's RCV.NXT is unacceptable (RFC 9293 3.10.7.4), so its acknowledgement
        // would be dropped; with both sides in recovery neither would ever see an ACK.
        let repr = self.make_repr(self.snd_max, TcpFlags::ACK, options);
        Some(OutgoingSegment {
            repr,
            payload: None,
            relative_seq: 0,
            is_retransmission: false,
        })
    }

    /// Data due again after a timeout, new data, or the FIN, within the congestion and send
    /// windows.
    fn next_new_segment(&mut self, now: Instant) -> Option<OutgoingSegment<P>> {
        let window = self.snd_wnd.min(self.congestion.window()) as usize;
        let in_flight = self.snd_nxt.distance_from(self.snd_una).max(0) as usize;
        let resending =
            self.snd_nxt.distance_from(self.snd_max) < 0 && self.fin_seq != Some(self.snd_nxt);
        if resending {
            if in_flight >= window && !self.window_probe_pending {
                return None;
            }
            if let Some(unit) = self.unit_at(self.snd_nxt) {
                self.window_probe_pending = false;
                return self.send_unit(now, unit);
            }
            // Not at a unit boundary (cannot happen): continue with unsent data.
            self.snd_nxt = self.snd_max;
        }
        let in_flight = self.snd_nxt.distance_from(self.snd_una).max(0) as usize;
        let unsent = self.data_end_seq().distance_from(self.snd_nxt).max(0) as usize;
        if unsent > 0 {
            if in_flight < window && self.worth_sending(window - in_flight, unsent, in_flight) {
                return self.new_unit(now, window - in_flight);
            }
            if self.window_probe_pending {
                self.window_probe_pending = false;
                return self.new_unit(now, 1);
            }
            if self.snd_wnd == 0 && in_flight == 0 {
                // Zero window: the retransmission timer runs as the persist timer.
                self.arm_retransmission_timer(now);
            }
            return None;
        }
        self.window_probe_pending = false;
        let all_data_out = self.snd_nxt == self.data_end_seq();
        match self.fin_seq {
            None if self.fin_queued && all_data_out => Some(self.fin_segment(now, false)),
            // After a timeout the FIN goes again once the data before it is out.
            Some(fin) if self.snd_nxt == fin && self.snd_una.distance_from(fin) <= 0 => {
                Some(self.fin_segment(now, true))
            }
            _ => None,
        }
    }

    /// Sender silly window avoidance (RFC 9293 section 3.8.6.2.1): with `usable` bytes of
    /// window, send only a full segment, the rest of the queued data, half the largest window
    /// the peer offered, or anything when nothing is in flight (no ACK would come to open the
    /// window further). Without it, a window opened a few bytes at a time is filled a few
    /// bytes at a time, and since each unit is later acknowledged and resent whole, the tiny
    /// segments perpetuate themselves.
    fn worth_sending(&self, usable: usize, unsent: usize, in_flight: usize) -> bool {
        usable >= self.max_payload_per_segment()
            || unsent <= usable
            || in_flight == 0
            || usable >= self.max_send_window as usize / 2
    }

    /// The unit that starts at `seq`, if any.
    fn unit_at(&self, seq: SeqNumber) -> Option<(SeqNumber, u32)> {
        let index = self
            .units
            .partition_point(|&(start, _)| start.distance_from(seq) < 0);
        self.units
            .get(index)
            .copied()
            .filter(|&(start, _)| start == seq)
    }

    fn fin_segment(&mut self, now: Instant, is_retransmission: bool) -> OutgoingSegment<P> {
        let seq = self.snd_nxt;
        self.fin_seq = Some(seq);
        self.snd_nxt = seq + 1;
        if self.snd_nxt.distance_from(self.snd_max) > 0 {
            self.snd_max = self.snd_nxt;
        }
        if is_retransmission {
            self.counters.retransmissions += 1;
        }
        match self.state {
            TcpState::Established | TcpState::SynReceived => self.state = TcpState::FinWait1,
            TcpState::CloseWait => self.state = TcpState::LastAck,
            _ => {}
        }
        self.arm_retransmission_timer(now);
        // This segment carries the acknowledgement: one owed ACK fewer.
        self.immediate_acks = self.immediate_acks.saturating_sub(1);
        self.ack_pending = self.immediate_acks > 0;
        let options = self.base_options(now);
        let repr = self.make_repr(seq, TcpFlags::FIN | TcpFlags::ACK, options);
        OutgoingSegment {
            repr,
            payload: None,
            relative_seq: 0,
            is_retransmission,
        }
    }

    /// Sends a unit again, whole.
    fn send_unit(
        &mut self,
        now: Instant,
        (start, len): (SeqNumber, u32),
    ) -> Option<OutgoingSegment<P>> {
        let payload = self
            .send_queue
            .slice(self.stream_offset(start), len as usize)?;
        if start.distance_from(self.released_seq) < 0 || payload.len() != len as usize {
            return None;
        }
        self.counters.retransmissions += 1;
        // Karn: a retransmission invalidates the timing of what it covers.
        if self
            .timed_segment
            .is_some_and(|(timed, _)| timed.distance_from(start) >= 0)
        {
            self.timed_segment = None;
        }
        Some(self.data_segment(now, start, payload))
    }

    /// Sends up to `limit` new bytes (and at most one segment) as a new unit.
    fn new_unit(&mut self, now: Instant, limit: usize) -> Option<OutgoingSegment<P>> {
        let seq = self.snd_nxt;
        let limit = limit.min(self.max_payload_per_segment());
        let payload = self.send_queue.slice(self.stream_offset(seq), limit)?;
        self.units.push_back((seq, payload.len() as u32));
        if self.timed_segment.is_none() {
            self.timed_segment = Some((seq, now));
        }
        Some(self.data_segment(now, seq, payload))
    }

    /// The segment carrying `payload` from `seq`; advances SND.NXT and SND.MAX past it.
    fn data_segment(&mut self, now: Instant, seq: SeqNumber, payload: P) -> OutgoingSegment<P> {
        let end = seq + payload.len() as u32;
        let is_retransmission = seq.distance_from(self.snd_max) < 0;
        if end.distance_from(self.snd_nxt) > 0 {
            self.snd_nxt = end;
        }
        if end.distance_from(self.snd_max) > 0 {
            self.snd_max = end;
        }
        self.arm_retransmission_timer(now);
        // This segment carries the acknowledgement: one owed ACK fewer.
        self.immediate_acks = self.immediate_acks.saturating_sub(1);
        self.ack_pending = self.immediate_acks > 0;
        let mut options = self.base_options(now);
        if self.owner_option_reserve == 0 {
            // Timestamps (10 bytes, 12 aligned) leave room for three blocks, none for four.
            let room = if options.timestamps.is_some() { 3 } else { 4 };
            options.sack_blocks = self.sack_blocks(room);
        }
        let mut flags = TcpFlags::ACK;
        if end == self.data_end_seq() {
            flags = flags | TcpFlags::PSH;
        }
        let repr = self.make_repr(seq, flags, options);
        let relative_seq = seq.distance_from(self.iss) as u32;
        OutgoingSegment {
            repr,
            payload: Some(payload),
            relative_seq,
            is_retransmission,
        }
    }
}

/// The smallest shift that lets `buffer` bytes be advertised (RFC 7323, section 2.3).
fn window_shift_for(buffer: u32) -> u8 {
    let mut shift = 0u8;
    while shift < MAX_WINDOW_SHIFT && (u32::from(u16::MAX) << shift) < buffer {
        shift += 1;
    }
    shift
}

#[cfg(test)]
mod tests;
