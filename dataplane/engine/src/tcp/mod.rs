//! One TCP connection as a sans-IO state machine (RFC 9293), used for both roles: the passive
//! open toward clients and the active open toward backends.
//!
//! Segments come in through [`Tcb::handle_segment`] (or [`Tcb::handle_segment_with`] for an
//! owner that reads options of its own, the MPTCP layer), time through
//! [`Tcb::handle_timeout`]; the application side is [`Tcb::send`], [`Tcb::recv`] and
//! [`Tcb::close`]. Output is pulled with [`Tcb::poll_segment`]. Payload is held by handle
//! ([`Payload`]) from the moment it arrives until it is acknowledged, never copied.
//!
//! Implemented: MSS, window scaling and timestamps (RFC 7323), SACK-permitted negotiation and
//! SACK blocks for out-of-order data (RFC 2018), loss recovery from received SACK blocks with
//! RACK-TLP (RFC 8985) and proportional rate reduction (RFC 6937) in `recovery.rs`, the
//! retransmission timer (RFC 6298), and without SACK fast retransmit and NewReno (RFC 5681,
//! RFC 6582); congestion control NewReno or the coupled LIA and OLIA (`congestion/`), with one
//! immediate duplicate ACK per out-of-order segment, an
//! out-of-order queue that never holds more than the window, FIN and RST both ways (RFC 5961
//! exact-match resets, challenge ACKs and ACK-value checks), TIME_WAIT, zero-window probes,
//! silly window avoidance on both sides (RFC 9293 section 3.8.6.2), bounded buffers with window
//! updates, keepalives (RFC 9293 section 3.8.4), a FIN-WAIT-2 timeout, a user timeout (RFC 5482)
//! and the FASTCLOSE_WAIT of an MPTCP owner (RFC 8684 section 3.5).
//! Only segments that pass the acceptability checks reach the owner's option handler, so a
//! blind segment cannot change MPTCP state.
//! D-SACKs both ways (RFC 2883), PAWS (RFC 7323 section 5), delayed ACKs with quick ACKs (RFC
//! 9293 section 3.8.6.3, as Linux does them; `delayed_ack.rs`). Not implemented: CUBIC, pacing,
//! simultaneous open.
//!
//! Tests: `tests/` runs two blocks back to back (grouped by topic); `tests/sim.rs` runs them over seeded lossy
//! links as wire bytes; `tests/engine_sim.rs` runs the whole engine between two blocks.

mod congestion;
mod delayed_ack;
mod ecn;
mod input;
mod output;
mod pacing;
mod path_mtu;
mod receive;
mod recovery;
mod right_sizing;
mod rtt;
mod send;
mod timers;
mod undo;

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::VecDeque;

use mpterm_wire::tcp::{SackBlocks, TcpFlags, TcpOptions, TcpRepr, Timestamps};
use mpterm_wire::SeqNumber;

use crate::{Instant, Payload, TcpTuning};
pub use congestion::{
    Congestion, CongestionControl, CongestionCoupling, CongestionSample, ConnectionCoupling, Lia,
    NewReno, Olia, OliaEpsilon, ALPHA_SCALE_SHIFT,
};
pub use delayed_ack::DELAYED_ACK_TIMEOUT;
pub use receive::ReceiveQueue;
pub use right_sizing::{ReceiveBufferSizing, ReceiverRtt};
pub use rtt::RttEstimator;
pub use send::SendQueue;
pub use timers::FAST_CLOSE_ATTEMPTS;

/// The largest window scale shift (RFC 7323, section 2.3).
const MAX_WINDOW_SHIFT: u8 = 14;
/// Segments in the out-of-order queue at least, however small the buffer.
const MIN_OUT_OF_ORDER_SEGMENTS: usize = 256;
/// The out-of-order queue holds as many segments as the largest receive buffer holds of this
/// size: a whole window of full segments after a loss (a 100 ms path at 100 Mbit/s has some
/// 860 in flight; 256 made the rest be dropped and sent again), while a peer slicing its data
/// small pins no more received buffers than one sending full segments would.
const OUT_OF_ORDER_SEGMENT_BYTES: usize = 1200;
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
    /// Not an RFC 9293 state: RFC 8684 section 3.5's FASTCLOSE_WAIT, entered through
    /// [`Tcb::fast_close`]. The TCB has given up its data and sends pure ACKs that its owner
    /// marks with MP_FASTCLOSE until the peer answers with RST, or, after a few timeouts,
    /// a RST itself.
    FastCloseWait,
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
    /// An idle peer answered none of the keepalive probes.
    KeepaliveTimeout,
    /// FIN-WAIT-2 lasted longer than the configured timeout without data from the peer.
    FinWait2Timeout,
    /// Data or a FIN went unacknowledged, without progress, for longer than the user timeout.
    UserTimeout,
}

impl CloseReason {
    /// The connection ended without an orderly close on both sides.
    pub fn is_abortive(self) -> bool {
        !matches!(self, CloseReason::Graceful)
    }
}

/// What an outgoing segment is for, beyond its flags, so that the owner decorates it right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SegmentKind {
    #[default]
    Regular,
    /// A pure ACK of FASTCLOSE_WAIT, or the RST that ends it: the owner adds MP_FASTCLOSE.
    FastClose,
    /// A keepalive probe (RFC 9293 section 3.8.4): SND.UNA - 1, no data.
    KeepaliveProbe,
}

/// How a segment the TCP layer accepted reaches the owner's option handler
/// ([`Tcb::handle_segment_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// A RST that resets the connection (RFC 5961 section 3.2).
    Reset,
    /// The acknowledgement of our SYN-ACK that would complete the handshake.
    HandshakeAck,
    /// Any other segment that passed the sequence and acknowledgement checks.
    Synchronized,
}

/// What the owner makes of an accepted segment's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OwnerVerdict {
    /// The DSS mapping to keep with the segment's payload.
    pub mapping: Option<ReceivedMapping>,
    /// Drop the segment without acknowledging it and without changing any state: the owner
    /// waits for a retransmission that carries what it needs (an MPTCP server still missing
    /// the client's key when a DSS arrives before the MP_CAPABLE that carries it).
    pub withhold: bool,
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
    pub kind: SegmentKind,
    /// Set on a piece of a unit that was cut up after the path MTU fell (see
    /// [`Tcb::lower_path_mss`]): the unit as it was first sent. Its DSS mapping is the one to
    /// repeat on every piece, since a mapping once sent never changes (RFC 8684 section
    /// 3.3.1). `None` on every other segment.
    pub split_from: Option<SplitUnit<P>>,
}

/// A unit as it was first sent, before a smaller path MTU cut it into pieces.
#[derive(Debug, Clone)]
pub struct SplitUnit<P> {
    /// Relative subflow sequence number of its first byte (1 is the first data byte).
    pub relative_seq: u32,
    /// All of its bytes.
    pub payload: P,
}

/// Why an ICMP error about a segment of this connection is not acted on (RFC 5927).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpRejection {
    /// The quoted sequence number is not in SND.UNA..=SND.MAX: the error is not about data in
    /// flight (as Linux's `tcp_v4_err`, which drops and counts it).
    SequenceOutsideWindow,
    /// The reported MTU is not smaller than the one in use.
    NotSmaller,
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
    /// Both SYNs set up ECN (RFC 3168 section 6.1.1): our new data carries ECT(0).
    ecn: bool,
}

/// What a TCB in TIME-WAIT hands over to the engine's TIME-WAIT table
/// ([`crate::time_wait`]) when the connection is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWaitView {
    pub entered: Instant,
    pub expires: Instant,
    /// SND.NXT after our FIN.
    pub send_next: SeqNumber,
    /// RCV.NXT after the peer's FIN.
    pub receive_next: SeqNumber,
    /// The window field of an ACK sent now.
    pub window: u16,
    /// The peer's last timestamp, when timestamps are in use.
    pub ts_recent: Option<u32>,
}

/// Counters a connection contributes to the engine totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcbCounters {
    pub retransmissions: u64,
    pub rto_expirations: u64,
    pub fast_retransmits: u64,
    /// Segments dropped because their sequence numbers fell outside the receive window.
    pub out_of_window: u64,
    /// Segments dropped because they acknowledged data never sent, or far older than SND.UNA
    /// (RFC 5961 section 5.2).
    pub unacceptable_acks: u64,
    /// In-window RSTs and SYNs answered with a challenge ACK (RFC 5961 sections 3.2, 4.2).
    pub challenge_acks: u64,
    /// Segments the owner withheld (see [`OwnerVerdict::withhold`]).
    pub withheld: u64,
    pub keepalive_probes: u64,
    /// Received SACK blocks that were empty, reversed or beyond what was sent, ignored.
    pub sack_blocks_invalid: u64,
    /// D-SACKs received (RFC 2883): the peer got a segment twice.
    pub dsacks_received: u64,
    /// Segments RACK marked lost (RFC 8985).
    pub rack_lost_segments: u64,
    /// Tail loss probes sent (RFC 8985 section 7).
    pub tlp_probes: u64,
    /// Segments dropped because their timestamp was older than the peer's last (PAWS, RFC
    /// 7323 section 5).
    pub paws_rejected: u64,
    /// ACKs the delayed-ACK timer sent (RFC 9293 section 3.8.6.3): data that no second
    /// segment and no data of ours acknowledged within [`DELAYED_ACK_TIMEOUT`].
    pub delayed_acks: u64,
    /// Congestion reductions undone because D-SACKs showed every retransmission of their
    /// episode needless (see `undo`).
    pub spurious_reductions_undone: u64,
    /// Times data waited for the pacer (see `pacing`).
    pub pacing_delays: u64,
    /// Accepted segments whose IP header said CE (RFC 3168 section 5).
    pub ecn_ce_received: u64,
    /// Congestion window reductions for an ECE (RFC 3168 section 6.1.2), at most one per
    /// window of data.
    pub ecn_window_reductions: u64,
}

/// Transmission control block: one TCP connection.
#[derive(Debug)]
pub struct Tcb<P: Payload> {
    local: SocketAddr,
    remote: SocketAddr,
    state: TcpState,
    close_reason: Option<CloseReason>,
    tuning: TcpTuning,
    /// Our MSS as advertised (what the path lets us receive).
    local_mss: u16,
    /// The MSS the path lets us send, as the last ICMP fragmentation-needed or packet-too-big
    /// report said (RFC 1191, RFC 8201); `u16::MAX` until one came. Segments fit within the
    /// smaller of it and the peer's MSS.
    path_mss: u16,
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
    /// Data sent and not yet wholly acknowledged, as the units it was first sent in, in
    /// sequence order: the SACK scoreboard (see [`recovery`]).
    units: VecDeque<recovery::SentUnit>,
    pacer: pacing::Pacer,
    /// SACK, RACK-TLP and PRR state (see [`recovery`]).
    recovery: recovery::Recovery,
    /// The owner asked to close: a FIN follows the queued data.
    fin_queued: bool,
    /// Sequence number of our FIN once sent.
    fin_seq: Option<SeqNumber>,
    congestion: Congestion,
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
    /// The receive buffer's size and its autotuning (see [`right_sizing`]); the receive
    /// queue's capacity follows it.
    receive_sizing: ReceiveBufferSizing,
    /// The RTT seen from the receiving side, which paces the autotuning's rounds.
    receiver_rtt: ReceiverRtt,
    /// Bytes the owner holds that still count against our window (e.g. an incomplete mapping).
    owner_held_bytes: usize,
    /// Right edge of the window we last advertised; it never moves left (RFC 9293 3.8.6.2.2).
    advertised_right_edge: SeqNumber,
    /// The highest acknowledgement number we sent: bytes beyond it are not yet acknowledged
    /// to the peer, and may still be taken back ([`Tcb::rewind_receive`]).
    highest_ack_sent: SeqNumber,
    /// Peer's FIN received and acknowledged in sequence.
    fin_received: bool,
    /// Sequence number of a FIN that arrived beyond a gap; it takes effect once RCV.NXT
    /// reaches it, so the peer need not send it again after the hole is filled.
    out_of_order_fin: Option<SeqNumber>,
    /// Latest timestamp to echo (RFC 7323, section 4.3).
    ts_recent: u32,
    /// When `ts_recent` was last set: PAWS trusts it for 24 days (RFC 7323 section 5.5).
    ts_recent_at: Instant,
    /// An acknowledgement is owed now (see [`delayed_ack`] for what waits instead).
    ack_pending: bool,
    /// Delayed and quick ACKs (RFC 9293 section 3.8.6.3, RFC 5681 section 4.2).
    delayed_ack: delayed_ack::DelayedAck,
    /// The IP header of the segment about to be handled said CE (congestion experienced,
    /// RFC 3168 section 5), as the owner noted with [`Tcb::note_congestion_experienced`].
    arriving_congestion_experienced: bool,
    /// A CE mark arrived: every segment we send sets ECE until the peer's CWR (RFC 3168
    /// section 6.1.3).
    echo_congestion: bool,
    /// Our window was reduced for an ECE: the next new data segment sets CWR (section
    /// 6.1.2).
    cwr_pending: bool,
    /// SND.MAX when our window was last reduced for an ECE: ECEs until it is acknowledged
    /// belong to the same window of data and reduce nothing more (section 6.1.2).
    ecn_reduced_until: Option<SeqNumber>,
    /// A segment that arrived wholly below RCV.NXT, reported once as the first SACK block of
    /// the next acknowledgement (a D-SACK, RFC 2883 section 4).
    dsack_pending: Option<(SeqNumber, SeqNumber)>,
    /// Duplicate ACKs owed: one per segment that arrived out of order or filled part of a
    /// gap. RFC 5681 section 4.2 asks for each at once, and the sender's fast retransmit
    /// counts them, so a burst received in one batch must not collapse into one ACK.
    immediate_acks: u8,
    syn_pending: bool,
    rst_pending: bool,
    /// A RST to send at this sequence number without the ACK bit, answering a segment that
    /// acknowledged nothing of ours in SYN-SENT (RFC 9293 section 3.10.7.3); the connection
    /// itself goes on.
    reset_at: Option<SeqNumber>,
    time_wait_deadline: Option<Instant>,
    handshake_deadline: Option<Instant>,
    /// FIN-WAIT-2 ends here unless the peer sends data or its FIN first.
    fin_wait_2_deadline: Option<Instant>,
    /// When the last acceptable segment arrived: the idle clock of keepalives and of the
    /// FIN-WAIT-2 timeout.
    last_received: Instant,
    /// Keepalive probes sent since the peer was last heard.
    keepalive_probes_sent: u32,
    /// The next poll sends a keepalive probe.
    keepalive_probe_pending: bool,
    /// Since when data or a FIN has waited for an acknowledgement without any progress
    /// (RFC 5482 user timeout); `None` while nothing is outstanding.
    stalled_since: Option<Instant>,
    /// Unanswered MP_FASTCLOSE ACKs sent in FASTCLOSE_WAIT.
    fast_close_attempts: u32,
    /// The next poll sends the FASTCLOSE_WAIT ACK.
    fast_close_ack_pending: bool,
    /// The pending RST ends FASTCLOSE_WAIT (the owner adds MP_FASTCLOSE to it).
    rst_is_fast_close: bool,
    counters: TcbCounters,
}

impl<P: Payload> Tcb<P> {
    /// Active open (RFC 9293, section 3.10.1): the returned TCB is in SYN-SENT with a SYN to
    /// send. `local_mss` is what we accept per segment (path MTU minus 40).
    pub fn connect(
        now: Instant,
        local: impl Into<SocketAddr>,
        remote: impl Into<SocketAddr>,
        iss: SeqNumber,
        local_mss: u16,
        tuning: TcpTuning,
    ) -> Self {
        let mut tcb = Tcb::new(
            now,
            local.into(),
            remote.into(),
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

    /// ECN is in use on this connection (RFC 3168): our new data segments should leave with
    /// ECT(0) in their IP header. Never before both SYNs agreed.
    pub fn ecn_enabled(&self) -> bool {
        self.negotiated.ecn
    }

    /// The owner saw CE in the IP header of the segment it hands over next
    /// ([`Tcb::handle_segment`]); counted and echoed only if that segment is accepted.
    pub fn note_congestion_experienced(&mut self) {
        self.arriving_congestion_experienced = true;
    }

    /// Passive open from a received SYN (RFC 9293, section 3.10.7.2): the returned TCB is in
    /// SYN-RECEIVED with a SYN-ACK to send.
    pub fn accept(
        now: Instant,
        local: impl Into<SocketAddr>,
        remote: impl Into<SocketAddr>,
        syn: &TcpRepr<'_>,
        iss: SeqNumber,
        local_mss: u16,
        tuning: TcpTuning,
    ) -> Self {
        let mut tcb = Tcb::new(
            now,
            local.into(),
            remote.into(),
            iss,
            local_mss,
            tuning,
            TcpState::SynReceived,
        );
        tcb.irs = syn.seq;
        tcb.rcv_nxt = syn.seq + 1;
        tcb.advertised_right_edge = tcb.rcv_nxt;
        tcb.highest_ack_sent = tcb.rcv_nxt;
        tcb.apply_peer_syn_options(&syn.options, true);
        tcb.accept_ecn_setup(syn.flags);
        // RFC 9293 3.10.7.2: the SYN's window is not scaled.
        tcb.snd_wnd = u32::from(syn.window);
        tcb.max_send_window = tcb.snd_wnd;
        tcb.snd_wl1 = syn.seq;
        tcb.snd_wl2 = iss;
        tcb
    }

    fn new(
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNumber,
        local_mss: u16,
        tuning: TcpTuning,
        state: TcpState,
    ) -> Self {
        let rtt = RttEstimator::new(tuning.initial_rto, tuning.min_rto, tuning.max_rto);
        let receive_sizing = ReceiveBufferSizing::for_tuning(&tuning);
        Tcb {
            local,
            remote,
            state,
            close_reason: None,
            tuning,
            local_mss,
            path_mss: u16::MAX,
            negotiated: Negotiated {
                peer_mss: DEFAULT_PEER_MSS,
                window_scaling: false,
                send_window_shift: 0,
                receive_window_shift: 0,
                timestamps: false,
                sack_permitted: false,
                ecn: false,
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
            pacer: pacing::Pacer::default(),
            recovery: recovery::Recovery::default(),
            fin_queued: false,
            fin_seq: None,
            congestion: Congestion::new(tuning.congestion_control, DEFAULT_PEER_MSS),
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
                receive_sizing.size(),
                (tuning.receive_buffer as usize / OUT_OF_ORDER_SEGMENT_BYTES)
                    .max(MIN_OUT_OF_ORDER_SEGMENTS),
            ),
            receive_sizing,
            receiver_rtt: ReceiverRtt::default(),
            owner_held_bytes: 0,
            advertised_right_edge: SeqNumber(0),
            highest_ack_sent: SeqNumber(0),
            fin_received: false,
            out_of_order_fin: None,
            ts_recent: 0,
            ts_recent_at: now,
            ack_pending: false,
            delayed_ack: delayed_ack::DelayedAck::new(local_mss),
            arriving_congestion_experienced: false,
            echo_congestion: false,
            cwr_pending: false,
            ecn_reduced_until: None,
            dsack_pending: None,
            immediate_acks: 0,
            syn_pending: true,
            rst_pending: false,
            reset_at: None,
            time_wait_deadline: None,
            handshake_deadline: Some(now + tuning.connect_timeout),
            fin_wait_2_deadline: None,
            last_received: now,
            keepalive_probes_sent: 0,
            keepalive_probe_pending: false,
            stalled_since: None,
            fast_close_attempts: 0,
            fast_close_ack_pending: false,
            rst_is_fast_close: false,
            counters: TcbCounters::default(),
        }
    }

    // ----- getters -----

    pub fn state(&self) -> TcpState {
        self.state
    }

    pub fn local(&self) -> SocketAddr {
        self.local
    }

    pub fn remote(&self) -> SocketAddr {
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

    /// In TIME-WAIT, what the engine's TIME-WAIT table keeps of this TCB.
    pub fn time_wait_view(&self) -> Option<TimeWaitView> {
        if self.state != TcpState::TimeWait {
            return None;
        }
        let shift = self.negotiated.receive_window_shift;
        let expires = self.time_wait_deadline?;
        let entered = expires
            .as_nanos()
            .saturating_sub(self.tuning.time_wait.as_nanos() as u64);
        Some(TimeWaitView {
            entered: Instant::from_nanos(entered),
            expires,
            send_next: self.snd_max,
            receive_next: self.rcv_nxt,
            window: (self.receive_window() >> shift).min(usize::from(u16::MAX)) as u16,
            ts_recent: self.negotiated.timestamps.then_some(self.ts_recent),
        })
    }

    /// SND.MAX: the sequence number after the highest one sent.
    pub fn send_max(&self) -> SeqNumber {
        self.snd_max
    }

    /// RCV.NXT: the next sequence number expected from the peer.
    pub fn receive_next(&self) -> SeqNumber {
        self.rcv_nxt
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

    /// The current retransmission timeout (RFC 6298), before backoff.
    pub fn retransmission_timeout(&self) -> core::time::Duration {
        self.rtt.rto()
    }

    /// The peer's last advertised window, scaled (RFC 7323).
    pub fn send_window(&self) -> u32 {
        self.snd_wnd
    }

    /// Retransmission timeouts in a row without progress.
    pub fn consecutive_timeouts(&self) -> u32 {
        self.consecutive_timeouts
    }

    /// How many more bytes an owner feeding this TCB on demand (an MPTCP scheduler) should
    /// queue now: what congestion control lets go beyond what is in flight, less what is
    /// queued to go already (bytes never sent, units marked lost), within the peer's window
    /// beyond everything queued. With nothing queued, at least one segment, so that a zero
    /// window is still probed.
    ///
    /// What is in flight is RFC 6675's pipe, and in loss recovery what may go is PRR's
    /// allowance (RFC 6937), as for the TCB's own sending: bytes the peer SACKed above a hole
    /// take no room. Counting every unacknowledged byte instead left a TCB in recovery with
    /// nothing new to send: no new data followed the retransmissions, so neither a lost
    /// retransmission nor a lost ACK could be found by RACK (RFC 8985 section 6.2 needs a
    /// later transmission delivered) and both waited for the retransmission timer.
    pub fn send_room(&self) -> usize {
        if self.send_capacity() == 0 {
            return 0;
        }
        let never_sent = self.data_end_seq().distance_from(self.snd_max).max(0) as usize;
        let waiting = never_sent + self.recovery.lost_bytes as usize;
        let congestion_room = self.congestion_room().saturating_sub(waiting);
        let queued_from_una = self.data_end_seq().distance_from(self.snd_una).max(0) as usize;
        let peer_room = (self.snd_wnd.max(1) as usize).saturating_sub(queued_from_una);
        let room = congestion_room.min(peer_room);
        let room = if self.send_queue.is_empty() {
            room.max(self.max_payload_per_segment())
        } else {
            room
        };
        room.min(self.send_capacity())
    }

    /// The relative sequence number (1 is the first data byte) of the first byte not yet
    /// acknowledged.
    pub fn unacknowledged_relative_seq(&self) -> u32 {
        self.snd_una.distance_from(self.iss) as u32
    }

    /// The relative sequence number the next byte queued with [`Tcb::send`] will have.
    pub fn next_queued_relative_seq(&self) -> u32 {
        (self.released_seq + self.send_queue.len() as u32).distance_from(self.iss) as u32
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

    /// The largest segment (options and data, no headers) we send: the peer's MSS, or less
    /// when the path said so ([`Tcb::lower_path_mss`]).
    pub fn send_mss(&self) -> u16 {
        self.negotiated.peer_mss.min(self.path_mss)
    }

    /// The most payload one segment may carry, given the options we put in every segment.
    pub fn max_payload_per_segment(&self) -> usize {
        let timestamps = if self.negotiated.timestamps { 12 } else { 0 };
        let options = (timestamps + self.owner_option_reserve).div_ceil(4) * 4;
        usize::from(self.send_mss())
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

    /// The receive buffer's current size in bytes: what we may advertise and hold at most
    /// (it grows under autotuning, see [`right_sizing`]).
    pub fn receive_buffer(&self) -> usize {
        self.receive_sizing.size()
    }

    /// The RTT as this side's receiver sees it (see [`ReceiverRtt`]), or before its first
    /// sample the sender's smoothed RTT (the handshake's, for a passive open); `None` before
    /// either.
    pub fn receiver_rtt(&self) -> Option<Duration> {
        self.receiver_rtt.estimate().or(self.rtt.smoothed())
    }

    /// Our MSS as advertised: the largest segment the peer sends us.
    pub fn receive_mss(&self) -> u16 {
        self.local_mss
    }

    /// Sizes the receive buffer from outside: an MPTCP subflow advertises its connection's
    /// data-level window (RFC 8684 section 3.3.4), which the connection tunes, so the subflow
    /// stops tuning its own. The buffer only grows, within `tcp.receive_buffer`.
    pub fn follow_receive_buffer(&mut self, bytes: usize) {
        self.receive_sizing.follow(bytes);
        self.apply_receive_buffer_size();
    }

    /// Takes the next in-order received chunk.
    pub fn recv(&mut self) -> Option<ReceivedChunk<P>> {
        let chunk = self.receive_queue.pop_in_order()?;
        self.receive_sizing.note_read(chunk.payload.len());
        self.ack_after_owner_read();
        self.consider_window_update();
        Some(chunk)
    }

    /// RFC 9293 section 3.8.6.2.2 (receiver SWS avoidance): a window that opened by at least
    /// one MSS or half the buffer beyond what we last advertised may be announced. It is
    /// announced at once only when it opened significantly, as Linux's `__tcp_cleanup_rbuf`
    /// decides: what the peer may still send is at most half the buffer and the new window at
    /// least twice that. A smaller opening goes with the next ACK, which the data the peer
    /// can still send brings within the delayed-ACK timeout.
    fn consider_window_update(&mut self) {
        // After the peer's FIN it sends nothing more: a window update would only reach a
        // socket that may be gone, which answers with RST.
        if !self.is_synchronized() || self.fin_received {
            return;
        }
        let available = self.receive_window();
        let possible_edge = self.rcv_nxt + available as u32;
        let opened = possible_edge
            .distance_from(self.advertised_right_edge)
            .max(0) as usize;
        let capacity = self.receive_queue.capacity();
        let remaining = self
            .advertised_right_edge
            .distance_from(self.rcv_nxt)
            .max(0) as usize;
        let significant = remaining <= capacity / 2 && available >= 2 * remaining;
        if significant && opened >= usize::from(self.local_mss).min(capacity / 2) {
            self.ack_pending = true;
        }
    }

    /// Once per receiver RTT, the receive buffer grows from what the owner read in it (see
    /// [`right_sizing`]). The window it opens goes out as a window update when significant;
    /// the right edge already advertised stays where it is or moves right.
    pub(super) fn adjust_receive_buffer(&mut self, now: Instant) {
        if !self.receive_sizing.is_tuning() || !self.is_synchronized() {
            return;
        }
        let rtt = self.receiver_rtt();
        let segment = usize::from(self.local_mss);
        if self.receive_sizing.end_round(now, rtt, segment).is_some() {
            self.apply_receive_buffer_size();
        }
    }

    fn apply_receive_buffer_size(&mut self) {
        let size = self.receive_sizing.size();
        if size != self.receive_queue.capacity() {
            self.receive_queue.set_capacity(size);
            self.consider_window_update();
        }
    }

    /// Takes back every received byte from relative sequence number `relative_seq` on (1 is
    /// the peer's first data byte), as if it had never arrived: RCV.NXT goes back there and
    /// what waits in order beyond it is dropped, so that the peer sends those bytes again.
    /// Possible only while none of them was acknowledged (no ACK we sent covers them) and the
    /// peer's FIN has not been taken; returns whether it was done. Data held beyond a gap
    /// stays. The owner uses it when bytes it could not verify must come again (RFC 8684
    /// section 3.7: a DSS checksum that failed on the only subflow).
    pub fn rewind_receive(&mut self, relative_seq: u32) -> bool {
        let target = self.irs + relative_seq;
        let acknowledged = self.highest_ack_sent.distance_from(target) > 0;
        let beyond = target.distance_from(self.rcv_nxt) > 0;
        if !self.is_synchronized() || self.fin_received || acknowledged || beyond {
            return false;
        }
        self.receive_queue.drop_in_order();
        self.rcv_nxt = target;
        // A duplicate ACK at once: the peer learns where to resend from.
        self.immediate_acks = self.immediate_acks.saturating_add(1);
        self.ack_pending = true;
        true
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
        self.abort_with(CloseReason::Aborted);
    }

    /// Aborts for `reason`: the RST of [`Tcb::abort`], with the cause kept for the counters.
    pub(super) fn abort_with(&mut self, reason: CloseReason) {
        if self.state == TcpState::Closed {
            return;
        }
        if !matches!(self.state, TcpState::SynSent | TcpState::TimeWait) {
            self.rst_pending = true;
            self.rst_is_fast_close = self.state == TcpState::FastCloseWait;
        }
        self.send_queue.clear();
        self.clear_sent_units();
        self.receive_queue.clear();
        self.enter_closed(reason);
    }

    /// RFC 8684 section 3.5: the owner ends the MPTCP connection at once. The TCB gives up the
    /// data it holds both ways and enters FASTCLOSE_WAIT: it sends a pure ACK that the owner
    /// marks with MP_FASTCLOSE (see [`SegmentKind::FastClose`]), repeats it after each
    /// retransmission timeout and closes when the peer answers with RST; after
    /// [`FAST_CLOSE_ATTEMPTS`] unanswered ones it sends a RST itself (also marked). A TCB that
    /// is not synchronized is simply aborted; one in TIME-WAIT is done already.
    pub fn fast_close(&mut self, now: Instant) {
        match self.state {
            TcpState::Closed | TcpState::TimeWait | TcpState::FastCloseWait => {}
            TcpState::SynSent | TcpState::SynReceived => self.abort(),
            _ => {
                self.send_queue.clear();
                self.clear_sent_units();
                self.receive_queue.clear();
                self.state = TcpState::FastCloseWait;
                self.fin_queued = false;
                self.ack_pending = false;
                self.immediate_acks = 0;
                self.delayed_ack.clear();
                self.pacer.clear();
                self.retransmit_head = false;
                self.window_probe_pending = false;
                self.keepalive_probe_pending = false;
                self.fin_wait_2_deadline = None;
                self.stalled_since = None;
                self.fast_close_ack_pending = true;
                self.fast_close_attempts = 0;
                self.rto_deadline = None;
                self.rto_backoff = 0;
                self.arm_retransmission_timer(now);
            }
        }
    }

    /// The peer sent its own MP_FASTCLOSE while we were in FASTCLOSE_WAIT, or asked for one
    /// (RFC 8684 section 3.5): answer with a RST and close.
    pub fn fast_close_answered(&mut self) {
        if self.state != TcpState::Closed {
            self.rst_pending = true;
            self.rst_is_fast_close = false;
            self.send_queue.clear();
            self.clear_sent_units();
            self.receive_queue.clear();
            self.enter_closed(CloseReason::Aborted);
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
