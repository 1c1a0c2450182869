//! When received data is acknowledged: delayed ACKs and quick ACKs (RFC 9293 section 3.8.6.3,
//! RFC 5681 section 4.2, RFC 1122 section 4.2.3.2), with the choices Linux makes where the RFCs
//! leave room (net/ipv4/tcp_input.c: `tcp_event_data_recv`, `__tcp_ack_snd_check`, the
//! quick-ACK mode; net/ipv4/tcp.c: `__tcp_cleanup_rbuf`).
//!
//! Acknowledged at once (an ACK owed now, `ack_pending`):
//! - at least every second full-sized segment: more than one receive MSS (the largest segment
//!   the peer sent, Linux's `rcv_mss`) received since the last ACK we sent;
//! - out-of-order data and data that fills part of a gap, one duplicate ACK each (counted in
//!   `immediate_acks`, see `receive_payload`), and data that fills the last gap;
//! - in quick-ACK mode: the first segments of a connection, and again after the peer was silent
//!   for longer than the retransmission timeout, every segment is acknowledged until
//!   `receive window / (2 * receive MSS)` ACKs (2 to 16) went out, so that a sender in slow
//!   start is not held back by our timer;
//! - a short segment with PSH, once the owner has taken everything received (Linux's
//!   `ICSK_ACK_PUSHED`: the end of the peer's write, nothing more follows soon);
//! - a receive window that opened significantly: to at least twice what the peer may still
//!   send, when that is at most half the buffer (see `Tcb::consider_window_update`);
//! - everything else that asks for an ACK (FIN, challenge ACKs, out-of-window segments, the
//!   owner's requests) as before.
//!
//! Anything else waits for [`DELAYED_ACK_TIMEOUT`] and goes with the next segment we send
//! anyway. The engine works in bursts: every ACK owed by the segments of one receive burst
//! still goes out as one (as Linux's GRO does), except the duplicate ACKs that RFC 5681 asks
//! for one per segment.
//!
//! Not done as Linux does: Linux's adaptive timeout (`ato`, 40 ms growing towards 200 ms with
//! the peer's inter-arrival time) and its interactive (`pingpong`) mode, in which a short
//! segment is not acknowledged at once because an answer is expected to carry the ACK. A
//! fixed 40 ms is Linux's starting and bulk-transfer value, far below RFC 9293's limit of 0.5 s
//! and below the sender's minimum RTO (200 ms in Linux and here), so a delayed ACK never
//! triggers a spurious retransmission.

use super::*;

/// How long an acknowledgement may wait for a second segment or data of ours to ride on:
/// Linux's `TCP_DELACK_MIN` and `TCP_ATO_MIN` (RFC 9293 section 3.8.6.3: less than 0.5 s).
pub const DELAYED_ACK_TIMEOUT: Duration = Duration::from_millis(40);
/// Quick ACKs at most in one quick-ACK period (Linux's `TCP_MAX_QUICKACKS`).
const MAX_QUICK_ACKS: u32 = 16;
/// Quick ACKs at least in one quick-ACK period (Linux's floor in `tcp_incr_quickack`).
const MIN_QUICK_ACKS: u32 = 2;
/// The receive MSS assumed before the peer sent a segment (Linux's `TCP_MIN_RCVMSS`).
const INITIAL_RECEIVE_MSS: u16 = 536;

/// The receiver's acknowledgement state beyond what is owed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DelayedAck {
    /// When the delayed ACK is due; `None` when nothing waits for it.
    deadline: Option<Instant>,
    /// ACKs of new data still to send at once (quick-ACK mode while non-zero).
    quick_acks: u32,
    /// The largest payload the peer sent in one segment, at most our MSS: what "a full-sized
    /// segment" is.
    receive_mss: u16,
    /// A short segment with PSH arrived since the last ACK we sent.
    pushed: bool,
    /// When the last data segment arrived (`None`: no data yet, the connection starts).
    last_data_at: Option<Instant>,
}

impl DelayedAck {
    pub(super) fn new(local_mss: u16) -> Self {
        DelayedAck {
            deadline: None,
            quick_acks: 0,
            receive_mss: INITIAL_RECEIVE_MSS.min(local_mss).max(1),
            pushed: false,
            last_data_at: None,
        }
    }

    /// The delayed-ACK deadline, for the TCB's timers.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// An ACK went out: nothing waits any more; one quick ACK fewer if it acknowledged new
    /// data.
    pub(super) fn on_ack_sent(&mut self, acknowledged_new_data: bool) {
        self.deadline = None;
        self.pushed = false;
        if acknowledged_new_data {
            self.quick_acks = self.quick_acks.saturating_sub(1);
        }
    }

    /// The connection ends or gives up its data: no ACK waits.
    pub(super) fn clear(&mut self) {
        self.deadline = None;
        self.pushed = false;
        self.quick_acks = 0;
    }
}

impl<P: Payload> Tcb<P> {
    /// In-order data of `len` bytes arrived (with `push`, the segment's PSH flag) and did not
    /// already call for an immediate ACK: decides between acknowledging it now and arming the
    /// delayed-ACK timer.
    pub(super) fn schedule_ack_for_data(&mut self, now: Instant, len: usize, push: bool) {
        let rto = self.rtt.rto();
        let ack = &mut self.delayed_ack;
        // Linux's tcp_event_data_recv: the first data of a connection, or data after a silence
        // longer than the RTO (the sender restarts from a small window), enters quick-ACK mode.
        let restart = ack
            .last_data_at
            .is_none_or(|at| now.saturating_since(at) > rto);
        ack.last_data_at = Some(now);
        if restart {
            let segment = u32::from(ack.receive_mss.max(1));
            let window = self.receive_queue.capacity() as u32;
            let budget = (window / (2 * segment)).clamp(MIN_QUICK_ACKS, MAX_QUICK_ACKS);
            ack.quick_acks = ack.quick_acks.max(budget);
        }
        let len = len.min(usize::from(self.local_mss)) as u16;
        if len >= ack.receive_mss {
            ack.receive_mss = len;
        } else if push {
            ack.pushed = true;
        }
        let unacknowledged = self.rcv_nxt.distance_from(self.highest_ack_sent).max(0) as u32;
        // RFC 5681 section 4.2: an ACK for at least every second full-sized segment; Linux
        // acknowledges once more than one receive MSS is unacknowledged.
        if ack.quick_acks > 0 || unacknowledged > u32::from(ack.receive_mss) {
            self.ack_pending = true;
        } else if ack.deadline.is_none() {
            ack.deadline = Some(now + DELAYED_ACK_TIMEOUT);
        }
    }

    /// The owner took in-order data: a short pushed segment is acknowledged as soon as
    /// everything received has been read (Linux's `__tcp_cleanup_rbuf`).
    pub(super) fn ack_after_owner_read(&mut self) {
        if self.delayed_ack.pushed
            && self.delayed_ack.deadline.is_some()
            && self.receive_queue.in_order_bytes() == 0
        {
            self.ack_pending = true;
        }
    }

    /// The delayed-ACK timer expired: the ACK goes out with the next poll.
    pub(super) fn on_delayed_ack_timeout(&mut self) {
        self.delayed_ack.deadline = None;
        if self.is_synchronized() && self.rcv_nxt != self.highest_ack_sent {
            self.ack_pending = true;
            self.counters.delayed_acks += 1;
        }
    }
}

#[cfg(test)]
impl<P: Payload> Tcb<P> {
    /// Makes this TCB acknowledge every data segment at once, for test models of a receiver
    /// without delayed ACKs.
    pub(crate) fn acknowledge_every_segment(&mut self) {
        self.delayed_ack.quick_acks = u32::MAX;
    }
}
