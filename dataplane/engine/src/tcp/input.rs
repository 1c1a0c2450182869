//! Segment arrival (RFC 9293, section 3.10.7): acceptability, RST and SYN checks, ACK
//! processing with congestion control, payload and FIN.

use super::*;

impl<P: Payload> Tcb<P> {
    /// Processes one received segment of a connection whose owner reads no options of its own
    /// (plain TCP: the backend side, a client that fell back).
    pub fn handle_segment(&mut self, now: Instant, segment: &TcpRepr<'_>, payload: Option<P>) {
        self.handle_segment_with(now, segment, payload, |_, _| OwnerVerdict::default());
    }

    /// Processes one received segment (RFC 9293, section 3.10.7). `owner_options` is called
    /// once the segment has passed the checks that make it acceptable (sequence number, RST
    /// and SYN rules, the ACK value), and only then, so that an out-of-window or forged
    /// segment never reaches the owner's state (the MPTCP options, RFC 8684). It is called
    /// where Linux calls `mptcp_incoming_options`: for a RST that resets the connection, and
    /// for every other acceptable segment before its ACK, payload and FIN take effect.
    pub fn handle_segment_with(
        &mut self,
        now: Instant,
        segment: &TcpRepr<'_>,
        payload: Option<P>,
        owner_options: impl FnOnce(&TcpRepr<'_>, Accepted) -> OwnerVerdict,
    ) {
        // The CE mark the owner noted belongs to this segment alone.
        let ce = core::mem::take(&mut self.arriving_congestion_experienced);
        match self.state {
            TcpState::Closed => {}
            TcpState::SynSent => self.handle_in_syn_sent(now, segment),
            TcpState::FastCloseWait => self.handle_in_fast_close_wait(segment, owner_options),
            _ => {
                self.handle_synchronizing_or_synchronized(now, segment, payload, owner_options, ce)
            }
        }
        self.adjust_receive_buffer(now);
    }

    pub(super) fn handle_in_syn_sent(&mut self, now: Instant, segment: &TcpRepr<'_>) {
        let flags = segment.flags;
        // RFC 9293 3.10.7.3, first: the ACK must acknowledge our SYN.
        let ack_acceptable = flags.contains(TcpFlags::ACK) && segment.ack == self.iss + 1;
        if flags.contains(TcpFlags::ACK) && !ack_acceptable {
            // "<SEQ=SEG.ACK><CTL=RST>": the RST a stale peer (an old incarnation of this
            // four-tuple, still in LAST-ACK) accepts without a challenge, clearing its state.
            if !flags.contains(TcpFlags::RST) {
                self.reset_at = Some(segment.ack);
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
        self.highest_ack_sent = self.rcv_nxt;
        self.apply_peer_syn_options(&segment.options, false);
        self.note_syn_ack_ecn(flags);
        self.snd_una = segment.ack;
        self.snd_wnd = u32::from(segment.window);
        self.max_send_window = self.snd_wnd;
        self.snd_wl1 = segment.seq;
        self.snd_wl2 = segment.ack;
        if let Some(timestamps) = segment.options.timestamps {
            self.ts_recent = timestamps.value;
            self.ts_recent_at = now;
        }
        self.on_handshake_acknowledged(now);
        self.heard_from_peer(now);
        self.ack_pending = true;
    }

    /// FASTCLOSE_WAIT (RFC 8684 section 3.5): the peer's RST ends it, and so does its own
    /// MP_FASTCLOSE (both ends closing at once: the owner answers it, see
    /// [`Tcb::fast_close_answered`]). Everything else is ignored: the data is given up.
    ///
    /// The same acceptability rules hold as in any synchronized state: a RST counts only at
    /// RCV.NXT (RFC 5961 section 3.2); an in-window one elsewhere gets the MP_FASTCLOSE ACK
    /// again, as its challenge ACK, which a peer that has already closed answers with a RST at
    /// exactly RCV.NXT. Only segments in the window with an acceptable ACK reach the owner.
    pub(super) fn handle_in_fast_close_wait(
        &mut self,
        segment: &TcpRepr<'_>,
        owner_options: impl FnOnce(&TcpRepr<'_>, Accepted) -> OwnerVerdict,
    ) {
        if segment.flags.contains(TcpFlags::RST) {
            if segment.seq == self.rcv_nxt {
                owner_options(segment, Accepted::Reset);
                self.enter_closed(CloseReason::Aborted);
            } else if self.rst_in_window(segment.seq) {
                self.counters.challenge_acks += 1;
                self.fast_close_ack_pending = true;
            } else {
                self.counters.out_of_window += 1;
            }
            return;
        }
        if !self.segment_acceptable(segment.seq, 0) {
            self.counters.out_of_window += 1;
            return;
        }
        if segment.flags.contains(TcpFlags::SYN) || !segment.flags.contains(TcpFlags::ACK) {
            return;
        }
        if !self.ack_value_acceptable(segment.ack) {
            self.counters.unacceptable_acks += 1;
            return;
        }
        owner_options(segment, Accepted::Synchronized);
    }

    pub(super) fn handle_synchronizing_or_synchronized(
        &mut self,
        now: Instant,
        segment: &TcpRepr<'_>,
        payload: Option<P>,
        owner_options: impl FnOnce(&TcpRepr<'_>, Accepted) -> OwnerVerdict,
        ce: bool,
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

        // RFC 7323 section 5.3 R1 (PAWS), before the sequence number check.
        if self.paws_rejects(now, segment) {
            self.counters.paws_rejected += 1;
            if !flags.contains(TcpFlags::RST) {
                self.ack_pending = true;
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
                let end = segment.seq + payload_len;
                if payload_len > 0 && end.distance_from(self.rcv_nxt) <= 0 {
                    // RFC 2883 section 4: a duplicate is reported in the next ACK.
                    self.dsack_pending = Some((segment.seq, end));
                }
                if self.state == TcpState::FinWait2 && self.receive_window() == 0 {
                    // A zero-window probe: the peer would send, our own closed window holds
                    // it back; FIN-WAIT-2 is not stuck on the peer's side.
                    self.fin_wait_2_deadline = Some(now + self.tuning.liveness.fin_wait_2_timeout);
                }
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
                owner_options(segment, Accepted::Reset);
                self.send_queue.clear();
                self.clear_sent_units();
                self.enter_closed(CloseReason::ResetByPeer);
            } else {
                self.counters.challenge_acks += 1;
                self.ack_pending = true;
            }
            return;
        }

        // Fourth: a SYN in a synchronized state gets a challenge ACK (RFC 5961, section 4).
        if flags.contains(TcpFlags::SYN) {
            self.counters.challenge_acks += 1;
            self.ack_pending = true;
            return;
        }

        // Fifth: the ACK field. Its value is checked before anything of the segment takes
        // effect, the owner's options included.
        if !flags.contains(TcpFlags::ACK) {
            return;
        }
        let completes_handshake = self.state == TcpState::SynReceived;
        if completes_handshake {
            if segment.ack != self.iss + 1 {
                // RFC 9293 3.10.7.4 answers an unacceptable ACK in SYN-RECEIVED with
                // <SEQ=SEG.ACK><CTL=RST>; we send a challenge ACK instead, which the peer
                // resolves the same way.
                self.counters.unacceptable_acks += 1;
                self.ack_pending = true;
                return;
            }
        } else if !self.ack_value_acceptable(segment.ack) {
            // RFC 9293 3.10.7.4: an ACK of data not yet sent is answered with an ACK and the
            // segment dropped; RFC 5961 section 5.2 does the same for an ACK older than
            // SND.UNA - MAX.SND.WND, which only a blind attacker sends.
            self.counters.unacceptable_acks += 1;
            self.ack_pending = true;
            return;
        }

        // The segment is acceptable: now, and only now, the owner reads its options.
        let kind = if completes_handshake {
            Accepted::HandshakeAck
        } else {
            Accepted::Synchronized
        };
        let verdict = owner_options(segment, kind);
        if verdict.withhold {
            self.counters.withheld += 1;
            return;
        }
        let mapping = verdict.mapping;
        self.heard_from_peer(now);
        self.on_ecn_input(flags, ce);

        if completes_handshake {
            self.snd_una = segment.ack;
            self.on_handshake_acknowledged(now);
        }
        self.process_ack(now, segment, payload_len);
        if let Some(timestamps) = segment.options.timestamps {
            // RFC 7323 section 4.3: remember the peer's clock from the segment that holds
            // Last.ACK.sent, so that with delayed ACKs the echo is the earliest unacknowledged
            // segment's and the peer's RTT includes the delay.
            if segment.seq.distance_from(self.highest_ack_sent) <= 0 {
                self.ts_recent = timestamps.value;
                self.ts_recent_at = now;
            }
            if self.negotiated.timestamps {
                self.receiver_rtt.on_timestamp_echo(
                    now,
                    timestamps.echo_reply,
                    payload_len as usize,
                    usize::from(DEFAULT_PEER_MSS),
                );
            }
        }

        // Seventh: segment text.
        if let Some(payload) = payload.filter(|p| !p.is_empty()) {
            if matches!(
                self.state,
                TcpState::Established | TcpState::FinWait1 | TcpState::FinWait2
            ) {
                if self.state == TcpState::FinWait2 {
                    // A half-closed peer still sending is not stuck.
                    self.fin_wait_2_deadline = Some(now + self.tuning.liveness.fin_wait_2_timeout);
                }
                let push = flags.contains(TcpFlags::PSH);
                self.receive_payload(now, segment.seq, payload, mapping, push);
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

    /// PAWS (RFC 7323 section 5.3): with timestamps in use, a non-RST segment whose TSval is
    /// older than TS.Recent (modulo 2^32) is an old duplicate, unless TS.Recent has not been
    /// refreshed for 24 days (section 5.5), when it is taken as the new TS.Recent. A RST is left
    /// to RFC 5961's exact-match check; a segment without timestamps is accepted, as Linux
    /// does.
    pub(super) fn paws_rejects(&mut self, now: Instant, segment: &TcpRepr<'_>) -> bool {
        const TS_RECENT_LIFETIME: Duration = Duration::from_secs(24 * 24 * 3600);
        if !self.negotiated.timestamps || segment.flags.contains(TcpFlags::RST) {
            return false;
        }
        let Some(timestamps) = segment.options.timestamps else {
            return false;
        };
        let older = (timestamps.value.wrapping_sub(self.ts_recent) as i32) < 0;
        if !older {
            return false;
        }
        if now.saturating_since(self.ts_recent_at) > TS_RECENT_LIFETIME {
            self.ts_recent = timestamps.value;
            self.ts_recent_at = now;
            return false;
        }
        true
    }

    /// RFC 9293 3.10.7.4, second: a RST is in the window when its sequence number is.
    pub(super) fn rst_in_window(&self, seq: SeqNumber) -> bool {
        let offset = seq.distance_from(self.rcv_nxt);
        offset >= 0 && (offset as usize) < self.acceptable_window().max(1)
    }

    /// RFC 9293 3.10.7.4 fifth with RFC 5961 section 5.2: an acceptable ACK value lies in
    /// SND.UNA - MAX.SND.WND ..= SND.MAX (SND.MAX, not SND.NXT: after a timeout SND.NXT went
    /// back, and ACKs of what was sent before are still valid).
    pub(super) fn ack_value_acceptable(&self, ack: SeqNumber) -> bool {
        ack.distance_from(self.snd_max) <= 0
            && i64::from(self.snd_una.distance_from(ack)) <= i64::from(self.max_send_window)
    }

    /// An acceptable segment arrived: the peer is alive.
    pub(super) fn heard_from_peer(&mut self, now: Instant) {
        self.last_received = now;
        self.keepalive_probes_sent = 0;
        self.keepalive_probe_pending = false;
    }

    /// RFC 9293 3.10.7.4 table: is any part of the segment inside the receive window?
    pub(super) fn segment_acceptable(&self, seq: SeqNumber, len: u32) -> bool {
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

    /// ACK processing (RFC 9293 3.10.7.4, fifth) of an ACK whose value is acceptable.
    pub(super) fn process_ack(&mut self, now: Instant, segment: &TcpRepr<'_>, payload_len: u32) {
        let ack = segment.ack;
        let window = u32::from(segment.window) << self.negotiated.send_window_shift;
        if window == 0 {
            // RFC 9293 3.8.6.1: a peer that answers probes with a zero window is alive; the
            // sender keeps probing as long as it does.
            self.consecutive_timeouts = 0;
        }
        let newly_acked = ack.distance_from(self.snd_una);
        let sack = self.sack_recovery();
        let sacked = if sack {
            self.update_scoreboard(now, ack, &segment.options.sack_blocks)
                .newly_sacked
        } else {
            0
        };
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
        if sack {
            // RFC 8985: losses from what this ACK delivered; PRR's allowance for it.
            self.detect_losses(now);
            self.after_ack_in_recovery(newly_acked.max(0) as u32 + sacked);
            self.note_probe_acknowledged();
            if newly_acked > 0 || sacked > 0 {
                self.arm_probe_timer(now);
            }
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
        if segment.flags.contains(TcpFlags::ECE) {
            // RFC 3168 section 6.1.2, after the ACK and any loss it revealed took effect.
            self.on_ecn_echo();
        }
    }

    pub(super) fn on_new_ack(&mut self, now: Instant, ack: SeqNumber, segment: &TcpRepr<'_>) {
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
        // Progress: the user-timeout clock starts again with the next outstanding byte.
        self.stalled_since = None;

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
                self.congestion
                    .on_rtt_sample(Duration::from_millis(u64::from(elapsed)));
                sampled = true;
            }
        }
        if let Some((seq, sent_at)) = self.timed_segment {
            if ack.distance_from(seq) > 0 {
                if !sampled {
                    self.rtt.sample(now.saturating_since(sent_at));
                    self.congestion.on_rtt_sample(now.saturating_since(sent_at));
                }
                self.timed_segment = None;
            }
        }

        let mss = self.max_payload_per_segment() as u32;
        let flight = self.snd_max.distance_from(ack).max(0) as u32;
        let smoothed = self.rtt.smoothed();
        let partial = self
            .congestion
            .on_ack_at(now, smoothed, ack, acked, flight, mss);
        if partial && !self.sack_recovery() {
            // RFC 6582 section 3.2 step 5: a partial acknowledgement retransmits the next hole
            // (with SACK, RACK knows the holes).
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
    pub(super) fn release_acknowledged(&mut self, ack: SeqNumber) {
        while let Some(&unit) = self.units.front() {
            if unit.end().distance_from(ack) <= 0 {
                self.units.pop_front();
                self.forget_released_unit(unit);
            } else {
                break;
            }
        }
        let release = match self.units.front() {
            Some(unit) => unit.start,
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
    pub(super) fn data_end_seq(&self) -> SeqNumber {
        self.released_seq + self.send_queue.len() as u32
    }

    /// The send queue's stream offset of sequence number `seq` (at or after `released_seq`).
    pub(super) fn stream_offset(&self, seq: SeqNumber) -> u64 {
        self.send_queue.released() + seq.distance_from(self.released_seq).max(0) as u64
    }

    pub(super) fn on_duplicate_ack(&mut self) {
        if self.sack_recovery() {
            // With SACK, RACK detects losses (see `recovery`), not the duplicate count.
            return;
        }
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

    pub(super) fn receive_payload(
        &mut self,
        now: Instant,
        seq: SeqNumber,
        payload: P,
        mapping: Option<ReceivedMapping>,
        push: bool,
    ) {
        let relative = seq.distance_from(self.irs) as u32;
        let window = self.acceptable_window();
        let offset = seq.distance_from(self.rcv_nxt);
        let len = payload.len();
        let gap_before = self.receive_queue.has_out_of_order();
        let accepted =
            self.receive_queue
                .insert(self.rcv_nxt, offset, relative, payload, mapping, window);
        if accepted.in_order_advance > 0 {
            self.rcv_nxt = self.rcv_nxt + accepted.in_order_advance as u32;
            if !self.negotiated.timestamps {
                let window = self.acceptable_window();
                self.receiver_rtt
                    .on_window_progress(now, self.rcv_nxt, window);
            }
        }
        if accepted.dropped {
            self.counters.out_of_window += 1;
        }
        if offset > 0 || self.receive_queue.has_out_of_order() {
            // Out-of-order data, or data that fills part of a gap, is acknowledged at once and
            // each time (RFC 5681 section 4.2).
            self.immediate_acks = self.immediate_acks.saturating_add(1);
            self.ack_pending = true;
        } else if gap_before || accepted.in_order_advance == 0 {
            // Data that fills the last gap (RFC 5681 section 4.2), or that brought nothing
            // new (a partial duplicate, or dropped for want of room): at once.
            self.ack_pending = true;
        } else {
            self.schedule_ack_for_data(now, len, push);
        }
    }

    pub(super) fn receive_fin(&mut self, now: Instant) {
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

    pub(super) fn on_handshake_acknowledged(&mut self, now: Instant) {
        self.state = TcpState::Established;
        self.handshake_deadline = None;
        self.syn_pending = false;
        self.rto_deadline = None;
        self.rto_backoff = 0;
        let mss = self.max_payload_per_segment() as u32;
        self.congestion = Congestion::new(self.tuning.congestion_control, mss as u16);
        if let Some((_, sent_at)) = self.timed_segment.take() {
            self.rtt.sample(now.saturating_since(sent_at));
        }
    }

    pub(super) fn on_fin_acknowledged(&mut self, now: Instant) {
        match self.state {
            TcpState::FinWait1 => {
                self.state = TcpState::FinWait2;
                self.fin_wait_2_deadline = Some(now + self.tuning.liveness.fin_wait_2_timeout);
            }
            TcpState::Closing => self.enter_time_wait(now),
            TcpState::LastAck => self.enter_closed(CloseReason::Graceful),
            _ => {}
        }
    }

    pub(super) fn enter_time_wait(&mut self, now: Instant) {
        self.state = TcpState::TimeWait;
        self.rto_deadline = None;
        self.fin_wait_2_deadline = None;
        self.stalled_since = None;
        self.time_wait_deadline = Some(now + self.tuning.time_wait);
    }

    pub(super) fn enter_closed(&mut self, reason: CloseReason) {
        self.state = TcpState::Closed;
        self.close_reason.get_or_insert(reason);
        self.rto_deadline = None;
        self.time_wait_deadline = None;
        self.handshake_deadline = None;
        self.fin_wait_2_deadline = None;
        self.stalled_since = None;
        self.ack_pending = false;
        self.immediate_acks = 0;
        self.delayed_ack.clear();
        self.pacer.clear();
        self.syn_pending = false;
        self.keepalive_probe_pending = false;
        self.fast_close_ack_pending = false;
    }

    pub(super) fn apply_peer_syn_options(&mut self, options: &TcpOptions<'_>, passive: bool) {
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
}
