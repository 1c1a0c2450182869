//! The retransmission, persist, handshake and TIME-WAIT timers (RFC 6298, RFC 9293).

use super::*;

impl<P: Payload> Tcb<P> {
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
