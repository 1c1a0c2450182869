//! Loss recovery with SACK: the scoreboard of sent units (RFC 2018, RFC 6675's pipe), loss
//! detection by RACK with tail loss probes (RFC 8985), and the sending rate in recovery by
//! proportional rate reduction (RFC 6937).
//!
//! Data is sent, and sent again, in whole units (see [`SentUnit`]): a unit is SACKed only when
//! a block covers all of it, marked lost as a whole and retransmitted as a whole.
//!
//! Without SACK (the peer did not offer it) none of this runs: duplicate ACKs and NewReno's
//! fast recovery (RFC 6582) do, as before.
//!
//! - Delivered units (cumulatively acknowledged or SACKed) advance RACK's newest delivered
//!   transmission (`rack_sent_at`, `rack_end`) and its RTT (RFC 8985 section 6.2 steps 1-2);
//!   one delivered before a unit sent earlier shows reordering (step 3).
//! - Any unit sent before the newest delivered one and outstanding for longer than RACK's RTT
//!   plus the reordering window is lost (step 5), wherever it lies in sequence space (a
//!   delivered retransmission shows a lost tail above every SACK block); one not yet that
//!   old arms the reordering timer. Lost units are sent again first, before new data.
//! - The first loss of an episode enters recovery: the congestion control's fast recovery
//!   sets the slow-start threshold, and until everything sent before the loss is
//!   acknowledged PRR decides how much may be sent on each ACK (RFC 6937, with the
//!   slow-start reduction bound, PRR-SSRB).
//! - With data in flight and no loss being repaired, a probe timeout of two smoothed RTTs
//!   sends one segment (new data, or the last unit again) so that a lost tail is reported
//!   by SACK instead of waiting for the retransmission timer (RFC 8985 section 7).
//! - A D-SACK (RFC 2883: the first block below the cumulative ACK, or inside the second)
//!   reports a spurious retransmission: it widens the reordering window (RFC 8985 7.2).
//! - SACK blocks that are empty, reversed or beyond what was sent are counted and ignored.

use super::*;

/// A worst-case delayed ACK, added to the probe timeout when one segment is in flight (RFC
/// 8985 section 7.2, WCDelAckT).
const WORST_CASE_DELAYED_ACK: Duration = Duration::from_millis(200);
/// The probe timeout before any RTT is known (RFC 8985 section 7.2).
const PROBE_TIMEOUT_WITHOUT_RTT: Duration = Duration::from_secs(1);
/// The probe timeout's floor: shorter ones would fire before a delayed ACK could come.
const MIN_PROBE_TIMEOUT: Duration = Duration::from_millis(10);
/// The reordering window grows by a quarter of the minimum RTT for each round trip with a
/// D-SACK, up to this many quarters (RFC 8985 section 6.2 bounds it by the smoothed RTT as
/// well).
const MAX_REORDERING_WINDOW_MULTIPLIER: u32 = 16;
/// Loss recoveries a widened reordering window lasts (RFC 8985 section 6.2, RACK.reo_wnd_persist;
/// Linux's `TCP_RACK_RECOVERY_THRESH`).
const REORDERING_PERSIST_RECOVERIES: u32 = 16;
/// RFC 6675's DupThresh: with this many segments SACKed above a hole and no reordering seen,
/// RACK waits no reordering window (RFC 8985 section 6.2 step 4).
const DUPLICATE_THRESHOLD: u32 = 3;

/// One unit of sent data: the bytes it was first sent with, sent again only whole and alone
/// (an MPTCP DSS mapping is attached to a unit, and RFC 8684 section 3.3.1 lets a receiver
/// that holds part of a mapping accept only the identical mapping again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SentUnit {
    pub start: SeqNumber,
    pub len: u32,
    /// When it was last sent.
    pub sent_at: Instant,
    /// A SACK block covered all of it: the peer holds it.
    pub sacked: bool,
    /// Marked lost, and not sent again since.
    pub lost: bool,
    /// Sent more than once.
    pub retransmitted: bool,
    /// The unit as first sent, which its DSS mapping covers: the same as `start` and `len`
    /// except for a piece of a unit cut up for a smaller path MTU (see `path_mtu.rs`).
    pub mapped_start: SeqNumber,
    pub mapped_len: u32,
}

impl SentUnit {
    pub fn new(start: SeqNumber, len: u32, sent_at: Instant) -> Self {
        SentUnit {
            start,
            len,
            sent_at,
            sacked: false,
            lost: false,
            retransmitted: false,
            mapped_start: start,
            mapped_len: len,
        }
    }

    /// A piece of a larger unit, sent again on its own.
    pub fn is_split(&self) -> bool {
        self.mapped_start != self.start || self.mapped_len != self.len
    }

    pub fn end(&self) -> SeqNumber {
        self.start + self.len
    }

    /// RFC 8985 section 6.2's "sent after": later in time, or at the same time further on.
    fn sent_after(&self, sent_at: Instant, end: SeqNumber) -> bool {
        self.sent_at > sent_at || (self.sent_at == sent_at && self.end().distance_from(end) > 0)
    }
}

/// The scoreboard's totals and RACK-TLP's and PRR's state of one TCB.
#[derive(Debug, Clone, Default)]
pub(super) struct Recovery {
    /// Bytes of outstanding units a SACK block covered.
    sacked_bytes: u32,
    /// Bytes of outstanding units marked lost and not sent again since.
    pub(super) lost_bytes: u32,
    /// RACK.xmit_ts and RACK.end_seq: the newest transmission known delivered.
    rack_sent_at: Option<Instant>,
    rack_end: SeqNumber,
    /// RACK.rtt: the round trip of that transmission.
    rack_rtt: Duration,
    /// The smallest round trip seen, for the reordering window.
    min_rtt: Option<Duration>,
    pub(super) reordering_seen: bool,
    /// Quarters of the minimum RTT the reordering window spans (RACK.reo_wnd_incr: grows with
    /// D-SACKs, once per round trip).
    pub(super) reordering_window_multiplier: u32,
    /// RACK.dsack_round: SND.MAX when a D-SACK last widened the window; none widens it again
    /// until SND.UNA is beyond it.
    dsack_round: Option<SeqNumber>,
    /// RACK.reo_wnd_persist: loss recoveries left before a window widened by D-SACKs falls
    /// back to its start.
    reordering_persist: u32,
    /// RACK's reordering timer: the earliest time an outstanding unit becomes lost.
    reorder_deadline: Option<Instant>,
    /// The tail loss probe's timer.
    probe_deadline: Option<Instant>,
    /// The timer fired: the next poll sends the probe.
    probe_pending: bool,
    /// SND.MAX when the probe left; no other probe until it is acknowledged.
    probe_outstanding: Option<SeqNumber>,
    /// In loss recovery: SND.MAX when it began (RFC 6675's RecoveryPoint).
    recovery_point: Option<SeqNumber>,
    /// PRR: bytes delivered to the receiver and sent by us since recovery began, the flight
    /// when it began, and what may be sent now.
    prr_delivered: u32,
    prr_out: u32,
    recover_flight: u32,
    prr_allowance: u32,
    /// The congestion state before the latest reduction, while it may still be undone.
    pub(super) undo: Option<undo::Undo>,
}

/// What the SACK blocks of one acknowledgement did.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct SackOutcome {
    /// Bytes newly SACKed.
    pub newly_sacked: u32,
}

impl<P: Payload> Tcb<P> {
    /// SACK-based recovery is in use: the peer offered SACK (RFC 2018) and so did we.
    pub(super) fn sack_recovery(&self) -> bool {
        self.negotiated.sack_permitted
    }

    /// RFC 6675's pipe: bytes outstanding that are neither SACKed nor lost.
    pub(super) fn pipe(&self) -> u32 {
        let outstanding = self.snd_max.distance_from(self.snd_una).max(0) as u32;
        outstanding
            .saturating_sub(self.recovery.sacked_bytes)
            .saturating_sub(self.recovery.lost_bytes)
    }

    pub(super) fn in_loss_recovery(&self) -> bool {
        self.recovery.recovery_point.is_some()
    }

    /// Forgets every sent unit and the recovery state (the connection ends, or gives up its
    /// data).
    pub(super) fn clear_sent_units(&mut self) {
        self.units.clear();
        self.recovery = Recovery::default();
    }

    /// The units of an acknowledgement: RACK learns from every unit the cumulative ACK `ack`
    /// covers and from every unit its SACK blocks cover (RFC 2018 section 3: a block's edges
    /// are the first byte held and the one after the last). Called before the cumulative
    /// acknowledgement releases anything.
    pub(super) fn update_scoreboard(
        &mut self,
        now: Instant,
        ack: SeqNumber,
        blocks: &SackBlocks,
    ) -> SackOutcome {
        let mut outcome = SackOutcome::default();
        // Units the cumulative ACK delivers: RACK needs only the most recently sent of them
        // (in sequence order unless one was sent again), so they are looked at, not noted.
        let mut newest: Option<SentUnit> = None;
        for unit in self.units.iter() {
            if unit.end().distance_from(ack) > 0 {
                break;
            }
            if !unit.sacked
                && newest.is_none_or(|newest| unit.sent_after(newest.sent_at, newest.end()))
            {
                newest = Some(*unit);
            }
        }
        if let Some(unit) = newest {
            self.note_delivered(now, unit);
        }
        for (position, &(left, right)) in blocks.as_slice().iter().enumerate() {
            if right.distance_from(left) <= 0
                || right.distance_from(self.snd_max) > 0
                || i64::from(self.snd_una.distance_from(left)) > i64::from(self.max_send_window)
            {
                // Empty, reversed, beyond what was sent or far before anything outstanding.
                self.counters.sack_blocks_invalid += 1;
                continue;
            }
            // RFC 2883 section 4: a D-SACK is the first block, below the cumulative ACK or
            // inside the second block.
            let inside_second = blocks.as_slice().get(1).is_some_and(|&(l2, r2)| {
                left.distance_from(l2) >= 0 && right.distance_from(r2) <= 0
            });
            if position == 0 && (right.distance_from(ack) <= 0 || inside_second) {
                self.counters.dsacks_received += 1;
                self.on_dsack();
                self.note_dsack_for_undo(left, right);
                continue;
            }
            if right.distance_from(ack) <= 0 {
                // An old block, below what is acknowledged already.
                continue;
            }
            outcome.newly_sacked += self.mark_sacked(now, left, right);
        }
        outcome
    }

    /// Marks the outstanding units `left..right` covers wholly as SACKed; the bytes marked.
    fn mark_sacked(&mut self, now: Instant, left: SeqNumber, right: SeqNumber) -> u32 {
        let mut marked = 0;
        let mut index = self
            .units
            .partition_point(|unit| unit.start.distance_from(left) < 0);
        while let Some(unit) = self.units.get(index).copied() {
            if unit.end().distance_from(right) > 0 {
                break;
            }
            if !unit.sacked {
                self.note_delivered(now, unit);
                let unit = &mut self.units[index];
                unit.sacked = true;
                if unit.lost {
                    unit.lost = false;
                    self.recovery.lost_bytes = self.recovery.lost_bytes.saturating_sub(unit.len);
                }
                self.recovery.sacked_bytes += unit.len;
                marked += unit.len;
            }
            index += 1;
        }
        marked
    }

    /// RFC 8985 section 6.2 steps 1-3 for a unit just delivered.
    fn note_delivered(&mut self, now: Instant, unit: SentUnit) {
        let rtt = now.saturating_since(unit.sent_at);
        let recovery = &mut self.recovery;
        // Step 2: a retransmitted unit delivered sooner than any round trip was delivered by
        // its original; it tells nothing of the retransmission.
        if unit.retransmitted && recovery.min_rtt.is_some_and(|min| rtt < min) {
            return;
        }
        recovery.min_rtt = Some(recovery.min_rtt.map_or(rtt, |min| min.min(rtt)));
        let newer = recovery
            .rack_sent_at
            .is_none_or(|sent_at| unit.sent_after(sent_at, recovery.rack_end));
        if newer {
            recovery.rack_sent_at = Some(unit.sent_at);
            recovery.rack_end = unit.end();
            recovery.rack_rtt = rtt;
        } else if !unit.retransmitted && unit.end().distance_from(recovery.rack_end) < 0 {
            // Step 3: delivered after a unit sent later than it.
            recovery.reordering_seen = true;
        }
    }

    /// A D-SACK: a retransmission was spurious, the path reorders more than the window
    /// allowed. RFC 8985 section 6.2 step 4: the window widens by a quarter of the minimum
    /// RTT at most once per round trip, however many D-SACKs the round brings (a burst of
    /// spurious retransmissions is one misjudgement), and stays widened for
    /// [`REORDERING_PERSIST_RECOVERIES`] loss recoveries (as Linux's
    /// `tcp_rack_update_reo_wnd`).
    fn on_dsack(&mut self) {
        let snd_una = self.snd_una;
        let snd_max = self.snd_max;
        let recovery = &mut self.recovery;
        recovery.reordering_seen = true;
        // A round has passed once data sent after the last widening is acknowledged: SND.UNA
        // beyond that SND.MAX (Linux: a D-SACK counts only on an ACK for a packet sent after
        // the last widening; RFC 8985's SND.UNA >= dsack_round would let every D-SACK of a
        // fully acknowledged flight widen it again).
        if recovery
            .dsack_round
            .is_some_and(|round| snd_una.distance_from(round) <= 0)
        {
            return;
        }
        recovery.dsack_round = Some(snd_max);
        recovery.reordering_window_multiplier =
            (recovery.reordering_window_multiplier + 1).clamp(2, MAX_REORDERING_WINDOW_MULTIPLIER);
        recovery.reordering_persist = REORDERING_PERSIST_RECOVERIES;
    }

    /// RFC 8985 section 6.2 step 4: how long past RACK's RTT a unit may be outstanding
    /// before it is lost.
    fn reordering_window(&self) -> Duration {
        let recovery = &self.recovery;
        let sacked_segments =
            recovery.sacked_bytes / (self.max_payload_per_segment() as u32).max(1);
        if !recovery.reordering_seen
            && (recovery.recovery_point.is_some() || sacked_segments >= DUPLICATE_THRESHOLD)
        {
            return Duration::ZERO;
        }
        let Some(min_rtt) = recovery.min_rtt else {
            return Duration::ZERO;
        };
        let multiplier = recovery.reordering_window_multiplier.max(1);
        let window = min_rtt / 4 * multiplier;
        match self.rtt.smoothed() {
            Some(smoothed) => window.min(smoothed),
            None => window,
        }
    }

    /// RFC 8985 section 6.2 step 5: marks as lost every outstanding unit sent before the
    /// newest delivered one and outstanding past RACK's RTT and the reordering window, and
    /// arms the reordering timer for the next that would be. The first loss of an episode
    /// enters recovery.
    ///
    /// Every unit sent before RACK's newest delivered transmission is looked at, wherever it
    /// lies in sequence space: a retransmission that is delivered also shows the units sent
    /// before it, above the highest SACKed one, lost (a lost tail, or new data sent before
    /// the repair), as Linux's `tcp_rack_detect_loss` walks every packet sent before it. The
    /// walk ends at the first unit that was never sent again and was sent after RACK's:
    /// units follow it in the order they were first sent, so every later one was sent later.
    pub(super) fn detect_losses(&mut self, now: Instant) {
        self.recovery.reorder_deadline = None;
        let Some(rack_sent_at) = self.recovery.rack_sent_at else {
            return;
        };
        let rack_end = self.recovery.rack_end;
        let deadline_after = self.recovery.rack_rtt + self.reordering_window();
        let mut newly_lost = false;
        let mut next_deadline: Option<Instant> = None;
        for index in 0..self.units.len() {
            let unit = self.units[index];
            if unit.sacked || unit.lost {
                continue;
            }
            if unit.sent_after(rack_sent_at, rack_end) {
                if unit.retransmitted {
                    continue;
                }
                break;
            }
            let lost_at = unit.sent_at + deadline_after;
            if lost_at <= now {
                self.units[index].lost = true;
                self.recovery.lost_bytes += unit.len;
                self.counters.rack_lost_segments += 1;
                newly_lost = true;
            } else {
                next_deadline = Some(next_deadline.map_or(lost_at, |d| d.min(lost_at)));
            }
        }
        self.recovery.reorder_deadline = next_deadline;
        if newly_lost && self.recovery.recovery_point.is_none() {
            self.enter_loss_recovery();
        }
    }

    /// The first loss of an episode (RFC 6675 section 5 step 4, RFC 6937): the congestion
    /// control reduces its threshold once; PRR paces what is sent until the recovery point.
    fn enter_loss_recovery(&mut self) {
        let mss = self.max_payload_per_segment() as u32;
        let flight = self.snd_max.distance_from(self.snd_una).max(0) as u32;
        self.keep_state_for_undo();
        if self
            .congestion
            .enter_fast_recovery(self.snd_una, self.snd_max, flight, mss)
        {
            self.counters.fast_retransmits += 1;
        }
        let recovery = &mut self.recovery;
        recovery.recovery_point = Some(self.snd_max);
        recovery.prr_delivered = 0;
        recovery.prr_out = 0;
        recovery.recover_flight = flight.max(1);
        // RFC 6937bis: the first ACK of recovery may always send one segment.
        recovery.prr_allowance = mss;
        recovery.probe_deadline = None;
        recovery.probe_pending = false;
        self.timed_segment = None;
    }

    /// After an acknowledgement: leave recovery once the recovery point is acknowledged,
    /// else let PRR decide what may be sent for the bytes this ACK delivered (RFC 6937
    /// section 3, PRR-SSRB).
    pub(super) fn after_ack_in_recovery(&mut self, delivered: u32) {
        let Some(point) = self.recovery.recovery_point else {
            return;
        };
        if self.snd_una.distance_from(point) >= 0 {
            self.end_loss_recovery();
            self.congestion.on_loss_recovery_end();
            return;
        }
        let mss = self.max_payload_per_segment() as u32;
        let pipe = self.pipe();
        let threshold = self.congestion.slow_start_threshold();
        let recovery = &mut self.recovery;
        recovery.prr_delivered = recovery.prr_delivered.saturating_add(delivered);
        let send_count = if pipe > threshold {
            let target = (u64::from(recovery.prr_delivered) * u64::from(threshold))
                .div_ceil(u64::from(recovery.recover_flight));
            (target.min(u64::from(u32::MAX)) as u32).saturating_sub(recovery.prr_out)
        } else {
            let limit = recovery
                .prr_delivered
                .saturating_sub(recovery.prr_out)
                .max(delivered)
                .saturating_add(mss);
            threshold.saturating_sub(pipe).min(limit)
        };
        recovery.prr_allowance = send_count;
    }

    /// The episode is over (its recovery point acknowledged, or its reduction undone): PRR
    /// no longer limits what is sent.
    pub(super) fn end_loss_recovery(&mut self) {
        let recovery = &mut self.recovery;
        recovery.recovery_point = None;
        recovery.prr_allowance = 0;
        // RFC 8985 section 6.2 step 4: after 16 recoveries without a D-SACK the window
        // starts again from a quarter of the minimum RTT.
        if recovery.reordering_persist > 0 {
            recovery.reordering_persist -= 1;
            if recovery.reordering_persist == 0 {
                recovery.reordering_window_multiplier = 0;
            }
        }
    }

    /// Bytes congestion control lets us send now beyond what is in flight: in recovery
    /// PRR's allowance, else the window less the pipe.
    pub(super) fn congestion_room(&self) -> usize {
        if self.in_loss_recovery() {
            self.recovery.prr_allowance as usize
        } else {
            self.congestion.window().saturating_sub(self.pipe()) as usize
        }
    }

    /// `bytes` went out (new data or a retransmission): PRR counts them in recovery.
    pub(super) fn note_sent_in_recovery(&mut self, bytes: u32) {
        if self.in_loss_recovery() {
            let recovery = &mut self.recovery;
            recovery.prr_out = recovery.prr_out.saturating_add(bytes);
            recovery.prr_allowance = recovery.prr_allowance.saturating_sub(bytes);
        }
    }

    /// Units are marked lost and not sent again yet.
    pub(super) fn has_lost_units(&self) -> bool {
        self.recovery.lost_bytes > 0
    }

    /// The first unit marked lost and not sent again, if congestion control lets one go now.
    pub(super) fn next_lost_unit(&self) -> Option<SentUnit> {
        if self.recovery.lost_bytes == 0 {
            return None;
        }
        let unit = self.units.iter().find(|unit| unit.lost).copied()?;
        (self.congestion_room() >= unit.len as usize || self.pipe() == 0).then_some(unit)
    }

    /// Records that the unit starting at `start` was sent again now.
    pub(super) fn note_unit_resent(&mut self, now: Instant, start: SeqNumber) {
        let index = self
            .units
            .partition_point(|unit| unit.start.distance_from(start) < 0);
        if let Some(unit) = self.units.get_mut(index).filter(|unit| unit.start == start) {
            unit.sent_at = now;
            unit.retransmitted = true;
            let len = unit.len;
            if unit.lost {
                unit.lost = false;
                self.recovery.lost_bytes = self.recovery.lost_bytes.saturating_sub(len);
            }
            self.note_retransmission_for_undo(start, len);
        }
    }

    /// The bytes of a unit the cumulative ACK releases leave the scoreboard's totals.
    pub(super) fn forget_released_unit(&mut self, unit: SentUnit) {
        if unit.sacked {
            self.recovery.sacked_bytes = self.recovery.sacked_bytes.saturating_sub(unit.len);
        }
        if unit.lost {
            self.recovery.lost_bytes = self.recovery.lost_bytes.saturating_sub(unit.len);
        }
    }

    /// A retransmission timeout (RFC 8985 section 6.3): every unit not SACKed is lost, so the
    /// pipe empties and they go again in order from the restarted window; recovery and the
    /// probe end.
    pub(super) fn on_timeout_recovery(&mut self) {
        let mut lost_bytes = 0;
        for unit in self.units.iter_mut().filter(|unit| !unit.sacked) {
            unit.lost = true;
            lost_bytes += unit.len;
        }
        let recovery = &mut self.recovery;
        recovery.lost_bytes = lost_bytes;
        recovery.recovery_point = None;
        recovery.prr_allowance = 0;
        recovery.reorder_deadline = None;
        recovery.probe_deadline = None;
        recovery.probe_pending = false;
        recovery.probe_outstanding = None;
    }

    /// RFC 8985 section 7.2: (re)arms the probe timeout while data is in flight, nothing is
    /// being repaired and no probe is outstanding; never later than the retransmission timer.
    pub(super) fn arm_probe_timer(&mut self, now: Instant) {
        let recovery = &self.recovery;
        let outstanding = self.snd_max.distance_from(self.snd_una) > 0;
        let probe_allowed = self.sack_recovery()
            && matches!(
                self.state,
                TcpState::Established
                    | TcpState::CloseWait
                    | TcpState::FinWait1
                    | TcpState::Closing
                    | TcpState::LastAck
            )
            && outstanding
            // A closed window is the persist timer's (RFC 9293 3.8.6.1), not a lost tail.
            && self.snd_wnd > 0
            && recovery.recovery_point.is_none()
            && recovery.lost_bytes == 0
            && recovery.probe_outstanding.is_none()
            && !recovery.probe_pending;
        if !probe_allowed {
            self.recovery.probe_deadline = None;
            return;
        }
        let mut timeout = match self.rtt.smoothed() {
            Some(smoothed) => smoothed * 2,
            None => PROBE_TIMEOUT_WITHOUT_RTT,
        };
        let one_segment_in_flight = self.units.len() == 1;
        if one_segment_in_flight {
            timeout += WORST_CASE_DELAYED_ACK;
        }
        let mut deadline = now + timeout.max(MIN_PROBE_TIMEOUT);
        if let Some(rto) = self.rto_deadline {
            deadline = deadline.min(rto);
        }
        self.recovery.probe_deadline = Some(deadline);
    }

    /// The earliest loss-detection deadline: the reordering timer or the probe timeout.
    pub(super) fn loss_detection_deadline(&self) -> Option<Instant> {
        match (self.recovery.reorder_deadline, self.recovery.probe_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the reordering timer and the probe timeout if due.
    pub(super) fn on_loss_detection_timeout(&mut self, now: Instant) {
        if self.recovery.reorder_deadline.is_some_and(|due| due <= now) {
            self.detect_losses(now);
        }
        if self.recovery.probe_deadline.is_some_and(|due| due <= now) {
            self.recovery.probe_deadline = None;
            self.recovery.probe_pending = true;
            // The probe goes first; the retransmission timer runs on from it (section
            // 7.3), also when both were due at once.
            self.rto_deadline = None;
            self.arm_retransmission_timer(now);
        }
    }

    /// The tail loss probe the timer asked for (RFC 8985 section 7.3): one new segment if the
    /// peer's window takes one, else the last unit not SACKed again. The retransmission timer
    /// runs on from it.
    pub(super) fn poll_probe(&mut self, now: Instant) -> Option<OutgoingSegment<P>> {
        if !core::mem::take(&mut self.recovery.probe_pending) {
            return None;
        }
        let in_flight = self.snd_nxt.distance_from(self.snd_una).max(0) as usize;
        let unsent = self.data_end_seq().distance_from(self.snd_nxt).max(0) as usize;
        let receive_room = (self.snd_wnd as usize).saturating_sub(in_flight);
        let segment = if unsent > 0 && receive_room > 0 && self.snd_nxt == self.snd_max {
            self.new_unit(now, receive_room)
        } else {
            let last = self.units.iter().rev().find(|unit| !unit.sacked).copied()?;
            self.send_unit(now, last)
        }?;
        self.counters.tlp_probes += 1;
        self.recovery.probe_outstanding = Some(self.snd_max);
        self.recovery.probe_deadline = None;
        self.rto_deadline = None;
        self.arm_retransmission_timer(now);
        Some(segment)
    }

    /// An acknowledgement at or beyond the probe's SND.MAX ends the probe.
    pub(super) fn note_probe_acknowledged(&mut self) {
        if self
            .recovery
            .probe_outstanding
            .is_some_and(|end| self.snd_una.distance_from(end) >= 0)
        {
            self.recovery.probe_outstanding = None;
        }
    }
}
