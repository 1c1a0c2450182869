//! Segment production: windows advertised, options, the handshake, acknowledgements, new data
//! in units, retransmission of whole units and the FIN.

use super::*;

impl<P: Payload> Tcb<P> {
    /// The receive window we can offer now: buffer space not taken by in-order data the owner
    /// has not read yet. Out-of-order data lies inside this window, so it does not narrow it;
    /// in-order plus out-of-order bytes therefore never exceed the buffer.
    pub(super) fn receive_window(&self) -> usize {
        self.receive_queue
            .capacity()
            .saturating_sub(self.receive_queue.in_order_bytes() + self.owner_held_bytes)
    }

    /// RCV.WND: the window as last advertised, or wider if the buffer allows (the right edge
    /// never moves left, RFC 9293 section 3.8.6.2.2).
    pub(super) fn acceptable_window(&self) -> usize {
        let promised = self
            .advertised_right_edge
            .distance_from(self.rcv_nxt)
            .max(0) as usize;
        self.receive_window().max(promised)
    }

    /// The window field for an outgoing segment, never shrinking the advertised right edge.
    pub(super) fn window_field(&mut self) -> u16 {
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
        // The field counts units of 2^shift bytes: what was promised is rounded up, not down,
        // so that RCV.NXT moving by a part of a unit never pulls the right edge left (Linux's
        // `tcp_select_window` aligns a window it must not shrink up to the scale the same way).
        let promised_units = promised.div_ceil(1 << shift);
        let field = (window >> shift)
            .max(promised_units)
            .min(u32::from(u16::MAX));
        let right_edge = self.rcv_nxt + (field << shift);
        if right_edge.distance_from(self.advertised_right_edge) > 0 {
            self.advertised_right_edge = right_edge;
        }
        field as u16
    }

    pub(super) fn base_options(&self, now: Instant) -> TcpOptions<'static> {
        let mut options = TcpOptions::default();
        if self.negotiated.timestamps {
            options.timestamps = Some(Timestamps {
                value: now.timestamp_millis().max(1),
                echo_reply: self.ts_recent,
            });
        }
        options
    }

    pub(super) fn syn_options(&self, now: Instant) -> TcpOptions<'static> {
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

    /// SACK blocks for an outgoing segment, at most `limit` (RFC 2018 section 4): a pending
    /// D-SACK first, once (RFC 2883 section 4), then the out-of-order data.
    pub(super) fn sack_blocks(&mut self, limit: usize) -> SackBlocks {
        if !self.negotiated.sack_permitted || limit == 0 {
            return SackBlocks::default();
        }
        let Some((left, right)) = self.dsack_pending.take() else {
            return self.receive_queue.sack_blocks(limit);
        };
        let mut blocks = SackBlocks::default();
        blocks.push(left, right);
        for &(left, right) in self.receive_queue.sack_blocks(limit - 1).as_slice() {
            blocks.push(left, right);
        }
        blocks
    }

    /// RCV.NXT goes out as an acknowledgement.
    fn note_ack_sent(&mut self) {
        let acknowledges_new_data = self.rcv_nxt.distance_from(self.highest_ack_sent) > 0;
        if acknowledges_new_data {
            self.highest_ack_sent = self.rcv_nxt;
        }
        self.delayed_ack.on_ack_sent(acknowledges_new_data);
    }

    pub(super) fn make_repr(
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
        let flags = if flags.contains(TcpFlags::SYN) {
            flags
        } else {
            flags | self.segment_ecn_flags(false)
        };
        let (ack, flags) = if flags.contains(TcpFlags::ACK) || self.state != TcpState::SynSent {
            self.note_ack_sent();
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
        if let Some(seq) = self.reset_at.take() {
            let repr = TcpRepr {
                src_port: self.local.port(),
                dst_port: self.remote.port(),
                seq,
                ack: SeqNumber(0),
                flags: TcpFlags::RST,
                window: 0,
                options: TcpOptions::default(),
            };
            return Some(OutgoingSegment {
                repr,
                payload: None,
                relative_seq: 0,
                is_retransmission: false,
                kind: SegmentKind::Regular,
                split_from: None,
            });
        }
        if self.rst_pending {
            self.rst_pending = false;
            self.note_ack_sent();
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
            let kind = if core::mem::take(&mut self.rst_is_fast_close) {
                SegmentKind::FastClose
            } else {
                SegmentKind::Regular
            };
            return Some(OutgoingSegment {
                repr,
                payload: None,
                relative_seq: 0,
                is_retransmission: false,
                kind,
                split_from: None,
            });
        }
        match self.state {
            TcpState::Closed => None,
            TcpState::SynSent | TcpState::SynReceived => self.poll_handshake(now),
            TcpState::FastCloseWait => self.poll_fast_close_wait(now),
            _ => {
                let segment = self.poll_synchronized(now);
                self.note_outstanding(now);
                segment
            }
        }
    }

    /// FASTCLOSE_WAIT sends one pure ACK per attempt; the owner adds MP_FASTCLOSE to it.
    pub(super) fn poll_fast_close_wait(&mut self, now: Instant) -> Option<OutgoingSegment<P>> {
        if !core::mem::take(&mut self.fast_close_ack_pending) {
            return None;
        }
        self.fast_close_attempts += 1;
        let options = self.base_options(now);
        let repr = self.make_repr(self.pure_ack_seq(), TcpFlags::ACK, options);
        Some(OutgoingSegment {
            repr,
            payload: None,
            relative_seq: 0,
            is_retransmission: self.fast_close_attempts > 1,
            kind: SegmentKind::FastClose,
            split_from: None,
        })
    }

    /// A keepalive probe (RFC 9293 section 3.8.4, RFC 1122 section 4.2.3.6): SEG.SEQ =
    /// SND.UNA - 1 and no data, so that the peer, which has seen that octet, answers with an
    /// ACK.
    pub(super) fn keepalive_probe(&mut self, now: Instant) -> OutgoingSegment<P> {
        self.keepalive_probe_pending = false;
        self.counters.keepalive_probes += 1;
        let options = self.base_options(now);
        let repr = self.make_repr(self.snd_una - 1, TcpFlags::ACK, options);
        OutgoingSegment {
            repr,
            payload: None,
            relative_seq: 0,
            is_retransmission: false,
            kind: SegmentKind::KeepaliveProbe,
            split_from: None,
        }
    }

    pub(super) fn poll_handshake(&mut self, now: Instant) -> Option<OutgoingSegment<P>> {
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
        let flags = TcpFlags::SYN | self.syn_ecn_flags();
        let repr = self.make_repr(self.iss, flags, options);
        Some(OutgoingSegment {
            repr,
            payload: None,
            relative_seq: 0,
            is_retransmission,
            kind: SegmentKind::Regular,
            split_from: None,
        })
    }

    pub(super) fn poll_synchronized(&mut self, now: Instant) -> Option<OutgoingSegment<P>> {
        if self.state == TcpState::TimeWait {
            return self.take_pure_ack(now);
        }
        if let Some(segment) = self.poll_probe(now) {
            return Some(segment);
        }
        if self.has_data_to_send() && !self.pacing_allows(now) {
            // Data waits for the pacer's deadline; ACKs and probes do not.
            if self.keepalive_probe_pending {
                return Some(self.keepalive_probe(now));
            }
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
        // RFC 8985: units marked lost go again before new data, as congestion control allows.
        if let Some(unit) = self.next_lost_unit() {
            if let Some(segment) = self.send_unit(now, unit) {
                return Some(segment);
            }
        }
        if let Some(segment) = self.next_new_segment(now) {
            return Some(segment);
        }
        if self.keepalive_probe_pending {
            return Some(self.keepalive_probe(now));
        }
        self.take_pure_ack(now)
    }

    /// A pure ACK now, ahead of whatever data waits, for the owner to carry an option that
    /// fits on no data segment (RFC 8684 section 3.4's ADD_ADDR and REMOVE_ADDR, section
    /// 3.3.8's MP_PRIO; Linux sends them on an ACK of their own too). `None` unless the
    /// connection is synchronized and not closing abortively.
    pub fn signal_ack(&mut self, now: Instant) -> Option<OutgoingSegment<P>> {
        if !matches!(
            self.state,
            TcpState::Established
                | TcpState::FinWait1
                | TcpState::FinWait2
                | TcpState::CloseWait
                | TcpState::Closing
                | TcpState::LastAck
        ) || self.rst_pending
        {
            return None;
        }
        let options = self.base_options(now);
        let repr = self.make_repr(self.pure_ack_seq(), TcpFlags::ACK, options);
        Some(OutgoingSegment {
            repr,
            payload: None,
            relative_seq: 0,
            is_retransmission: false,
            kind: SegmentKind::Regular,
            split_from: None,
        })
    }

    /// The sequence number of a segment without data: one the peer accepts (RFC 9293
    /// 3.10.7.4). SND.MAX, not SND.NXT: after a timeout SND.NXT goes back, and a zero-length
    /// segment below the peer's RCV.NXT is unacceptable, so its acknowledgement would be
    /// dropped (with both sides in recovery neither would ever see an ACK). But never past
    /// the peer's window, where a zero-window probe's byte puts SND.MAX: there the right edge
    /// (as Linux's `tcp_acceptable_seq`).
    fn pure_ack_seq(&self) -> SeqNumber {
        let window_end = self.snd_una + self.snd_wnd;
        if self.snd_max.distance_from(window_end) > 0 {
            window_end
        } else {
            self.snd_max
        }
    }

    pub(super) fn take_pure_ack(&mut self, now: Instant) -> Option<OutgoingSegment<P>> {
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
        let repr = self.make_repr(self.pure_ack_seq(), TcpFlags::ACK, options);
        Some(OutgoingSegment {
            repr,
            payload: None,
            relative_seq: 0,
            is_retransmission: false,
            kind: SegmentKind::Regular,
            split_from: None,
        })
    }

    /// Data due again after a timeout, new data, or the FIN, within the congestion and send
    /// windows.
    pub(super) fn next_new_segment(&mut self, now: Instant) -> Option<OutgoingSegment<P>> {
        // After a timeout SND.NXT went back: the units from it go again in order, but those
        // the peer SACKed are skipped (RFC 6675 section 5.1).
        while self.snd_nxt.distance_from(self.snd_max) < 0 {
            match self.unit_at(self.snd_nxt) {
                Some(unit) if unit.sacked => self.snd_nxt = unit.end(),
                _ => break,
            }
        }
        let resending =
            self.snd_nxt.distance_from(self.snd_max) < 0 && self.fin_seq != Some(self.snd_nxt);
        if resending {
            if self.usable_window() == 0 && !self.window_probe_pending {
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
            let usable = self.usable_window();
            if usable > 0 && self.worth_sending(usable, unsent, in_flight) {
                return self.new_unit(now, usable);
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

    /// Whether a data segment would go now if pacing let it: a retransmission is due, or
    /// new or resent data fits the windows.
    fn has_data_to_send(&self) -> bool {
        let unsent = self.data_end_seq().distance_from(self.snd_nxt) > 0;
        (self.retransmit_head && self.snd_max != self.snd_una)
            || self.has_lost_units()
            || (unsent && self.usable_window() > 0)
    }

    /// Sender silly window avoidance (RFC 9293 section 3.8.6.2.1): with `usable` bytes of
    /// window, send only a full segment, the rest of the queued data, half the largest window
    /// the peer offered, or anything when nothing is in flight (no ACK would come to open the
    /// window further). Without it, a window opened a few bytes at a time is filled a few
    /// bytes at a time, and since each unit is later acknowledged and resent whole, the tiny
    /// segments perpetuate themselves.
    pub(super) fn worth_sending(&self, usable: usize, unsent: usize, in_flight: usize) -> bool {
        usable >= self.max_payload_per_segment()
            || unsent <= usable
            || in_flight == 0
            || usable >= self.max_send_window as usize / 2
    }

    /// Bytes that may go now: what both the peer's window and congestion control allow
    /// beyond what is in flight (without SACK, SND.NXT - SND.UNA is the flight; with it,
    /// RFC 6675's pipe, and PRR in recovery).
    pub(super) fn usable_window(&self) -> usize {
        let in_flight = self.snd_nxt.distance_from(self.snd_una).max(0) as usize;
        let receive_room = (self.snd_wnd as usize).saturating_sub(in_flight);
        let congestion_room = if self.sack_recovery() {
            self.congestion_room()
        } else {
            (self.congestion.window() as usize).saturating_sub(in_flight)
        };
        receive_room.min(congestion_room)
    }

    /// The unit that starts at `seq`, if any.
    pub(super) fn unit_at(&self, seq: SeqNumber) -> Option<recovery::SentUnit> {
        let index = self
            .units
            .partition_point(|unit| unit.start.distance_from(seq) < 0);
        self.units
            .get(index)
            .copied()
            .filter(|unit| unit.start == seq)
    }

    pub(super) fn fin_segment(
        &mut self,
        now: Instant,
        is_retransmission: bool,
    ) -> OutgoingSegment<P> {
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
            kind: SegmentKind::Regular,
            split_from: None,
        }
    }

    /// Sends a unit again, whole; a piece of a split unit says what it was cut from.
    pub(super) fn send_unit(
        &mut self,
        now: Instant,
        unit: recovery::SentUnit,
    ) -> Option<OutgoingSegment<P>> {
        let (start, len) = (unit.start, unit.len);
        let payload = self
            .send_queue
            .slice(self.stream_offset(start), len as usize)?;
        if start.distance_from(self.released_seq) < 0 || payload.len() != len as usize {
            return None;
        }
        let split_from = if unit.is_split() {
            // The whole unit came from one queued buffer, which holds all of it as long as
            // any piece is unacknowledged, also bytes released before SND.UNA.
            let whole = self.retained_slice(unit.mapped_start, unit.mapped_len)?;
            Some(SplitUnit {
                relative_seq: unit.mapped_start.distance_from(self.iss) as u32,
                payload: whole,
            })
        } else {
            None
        };
        self.counters.retransmissions += 1;
        // Karn: a retransmission invalidates the timing of what it covers.
        if self
            .timed_segment
            .is_some_and(|(timed, _)| timed.distance_from(start) >= 0)
        {
            self.timed_segment = None;
        }
        self.note_unit_resent(now, start);
        self.note_sent_in_recovery(len);
        let mut segment = self.data_segment(now, start, payload);
        segment.split_from = split_from;
        Some(segment)
    }

    /// Sends up to `limit` new bytes (and at most one segment) as a new unit.
    pub(super) fn new_unit(&mut self, now: Instant, limit: usize) -> Option<OutgoingSegment<P>> {
        let seq = self.snd_nxt;
        let limit = limit.min(self.max_payload_per_segment());
        let payload = self.send_queue.slice(self.stream_offset(seq), limit)?;
        let len = payload.len() as u32;
        self.units.push_back(recovery::SentUnit::new(seq, len, now));
        if self.timed_segment.is_none() {
            self.timed_segment = Some((seq, now));
        }
        self.note_sent_in_recovery(len);
        let segment = self.data_segment(now, seq, payload);
        // RFC 8985 section 7.2: new data (re)starts the probe timeout.
        self.arm_probe_timer(now);
        Some(segment)
    }

    /// The segment carrying `payload` from `seq`; advances SND.NXT and SND.MAX past it.
    pub(super) fn data_segment(
        &mut self,
        now: Instant,
        seq: SeqNumber,
        payload: P,
    ) -> OutgoingSegment<P> {
        let end = seq + payload.len() as u32;
        let is_retransmission = seq.distance_from(self.snd_max) < 0;
        self.note_paced(now, payload.len());
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
            // RFC 9293 section 3.7.1 (RFC 6691): data and options together stay within the
            // peer's MSS. A unit was cut to leave room for the timestamps only, so a full one
            // carries as many SACK blocks as still fit, which may be none.
            let budget = usize::from(self.send_mss()).saturating_sub(payload.len());
            while options.encoded_len() > budget && !options.sack_blocks.is_empty() {
                options.sack_blocks.pop();
            }
        }
        let mut flags = TcpFlags::ACK | self.segment_ecn_flags(!is_retransmission);
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
            kind: SegmentKind::Regular,
            split_from: None,
        }
    }
}
