//! The timers: retransmission and persist (RFC 6298, RFC 9293 3.8.6.1), handshake, TIME-WAIT,
//! keepalive (RFC 9293 3.8.4), the delayed ACK (RFC 9293 3.8.6.3), FIN-WAIT-2, the user timeout (RFC 5482) and FASTCLOSE_WAIT
//! (RFC 8684 section 3.5).

use super::*;

/// MP_FASTCLOSE ACKs sent in FASTCLOSE_WAIT before the TCB gives up waiting for the peer's
/// RST and sends one itself. RFC 8684 section 3.5 asks for a limit without naming one.
pub const FAST_CLOSE_ATTEMPTS: u32 = 3;

impl<P: Payload> Tcb<P> {
    /// The earliest instant at which [`Tcb::handle_timeout`] has work. It names only timers
    /// that [`Tcb::handle_timeout`] serves in the current state, so a deadline it returns is
    /// always in the future once that has run: the engine calls it in a loop until nothing
    /// is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            TcpState::Closed => return None,
            TcpState::FastCloseWait => return self.rto_deadline,
            _ => {}
        }
        [
            self.rto_deadline,
            self.time_wait_deadline,
            self.handshake_deadline,
            self.fin_wait_2_deadline,
            self.keepalive_deadline(),
            self.user_timeout_deadline(),
            self.loss_detection_deadline(),
            self.delayed_ack.deadline(),
            self.pacer.deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due = |deadline: Option<Instant>| deadline.is_some_and(|deadline| deadline <= now);
        if due(self.handshake_deadline) {
            self.rst_pending = self.state == TcpState::SynReceived;
            self.enter_closed(CloseReason::TimedOut);
            return;
        }
        if due(self.time_wait_deadline) {
            self.enter_closed(CloseReason::Graceful);
            return;
        }
        if self.state == TcpState::FastCloseWait {
            if due(self.rto_deadline) {
                self.on_fast_close_timeout(now);
            }
            return;
        }
        if due(self.delayed_ack.deadline()) {
            self.on_delayed_ack_timeout();
        }
        if due(self.pacer.deadline()) {
            self.on_pacing_timeout();
        }
        if due(self.user_timeout_deadline()) {
            self.abort_with(CloseReason::UserTimeout);
            return;
        }
        if due(self.fin_wait_2_deadline) {
            self.abort_with(CloseReason::FinWait2Timeout);
            return;
        }
        if due(self.keepalive_deadline()) {
            self.on_keepalive_timeout();
            if self.is_closed() {
                return;
            }
        }
        if due(self.loss_detection_deadline()) {
            self.on_loss_detection_timeout(now);
        }
        if due(self.rto_deadline) {
            self.on_retransmission_timeout(now);
        }
    }

    /// Keepalive (RFC 9293 section 3.8.4, RFC 1122 section 4.2.3.6): only a synchronized
    /// connection with nothing outstanding, idle for `idle`, is probed; probe `n` is due
    /// `n * interval` later; one interval after the last probe the connection is given up.
    pub(super) fn keepalive_deadline(&self) -> Option<Instant> {
        let keepalive = self.tuning.liveness.keepalive?;
        if !matches!(
            self.state,
            TcpState::Established | TcpState::CloseWait | TcpState::FinWait2
        ) || self.has_outstanding()
        {
            return None;
        }
        let probes = keepalive
            .interval
            .saturating_mul(self.keepalive_probes_sent);
        Some(self.last_received + keepalive.idle + probes)
    }

    fn on_keepalive_timeout(&mut self) {
        let Some(keepalive) = self.tuning.liveness.keepalive else {
            return;
        };
        if self.keepalive_probes_sent >= keepalive.probes {
            self.abort_with(CloseReason::KeepaliveTimeout);
            return;
        }
        self.keepalive_probes_sent += 1;
        self.keepalive_probe_pending = true;
    }

    /// RFC 5482's user timeout: data or a FIN outstanding for this long without progress.
    pub(super) fn user_timeout_deadline(&self) -> Option<Instant> {
        if !self.is_synchronized() || matches!(self.state, TcpState::TimeWait) {
            return None;
        }
        let user_timeout = self.tuning.liveness.user_timeout?;
        self.stalled_since.map(|since| since + user_timeout)
    }

    /// Starts the user-timeout clock when something waits for an acknowledgement; progress
    /// (a new ACK) stops it, see [`Tcb::on_new_ack`].
    pub(super) fn note_outstanding(&mut self, now: Instant) {
        if self.stalled_since.is_none() && self.has_outstanding() {
            self.stalled_since = Some(now);
        }
    }

    /// Data, or a FIN, waits to be sent or acknowledged.
    pub(super) fn has_outstanding(&self) -> bool {
        self.snd_max != self.snd_una
            || !self.send_queue.is_empty()
            || (self.fin_queued
                && self
                    .fin_seq
                    .is_none_or(|fin| self.snd_una.distance_from(fin) <= 0))
    }

    fn on_fast_close_timeout(&mut self, now: Instant) {
        self.rto_deadline = None;
        if self.fast_close_attempts >= FAST_CLOSE_ATTEMPTS {
            // Section 3.5: no RST came back; end it with a RST carrying MP_FASTCLOSE.
            self.rst_pending = true;
            self.rst_is_fast_close = true;
            self.enter_closed(CloseReason::Aborted);
            return;
        }
        self.rto_backoff = (self.rto_backoff + 1).min(16);
        self.fast_close_ack_pending = true;
        self.arm_retransmission_timer(now);
    }

    pub(super) fn on_retransmission_timeout(&mut self, now: Instant) {
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
        let restart = self.units.front().map_or(self.snd_una, |unit| unit.start);
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
        if self.sack_recovery() && self.consecutive_timeouts == 1 {
            self.keep_state_for_undo();
        }
        // RFC 5681 section 3.1 equation 4, RFC 6582 section 4: go back to the first unit.
        self.congestion.on_timeout(flight, mss, self.snd_max);
        if self.sack_recovery() {
            self.on_timeout_recovery();
        }
        self.snd_nxt = restart;
        self.duplicate_acks = 0;
        self.retransmit_head = false;
    }

    pub(super) fn arm_retransmission_timer(&mut self, now: Instant) {
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
}
