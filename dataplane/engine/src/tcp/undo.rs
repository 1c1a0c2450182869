//! Undoing a congestion reduction that only spurious retransmissions caused: RFC 2883 section
//! 5's use of D-SACK, in the manner of Linux (`undo_marker`, `undo_retrans` and
//! `tcp_try_undo_dsack` in net/ipv4/tcp_input.c).
//!
//! A path that reorders or suddenly delays packets makes RACK (or the retransmission timer)
//! declare units lost that were not. The congestion control then reduces its window for a loss
//! that never happened, and on a path that reorders often the window never grows. When loss
//! recovery or a retransmission timeout reduces the window, the congestion state from before is
//! kept, with the number of units retransmitted since and the range they cover. Each D-SACK in
//! that range says one retransmission was needless: the peer had the original. Once every
//! retransmission of the episode was reported so, nothing was lost, and the congestion state
//! goes back to the one before the reduction (unless the window has regrown beyond it since).
//! The next reduction replaces the kept state: an episode with a real loss is never undone.

use super::*;
use congestion::Congestion;

/// The congestion state before the latest reduction and what is known of the retransmissions
/// since.
#[derive(Debug, Clone, Copy)]
pub(super) struct Undo {
    before: Congestion,
    /// The sequence range the episode's retransmissions cover; a D-SACK outside it reports a
    /// duplicate the network made, or a retransmission of an older episode.
    retransmitted_from: Option<SeqNumber>,
    retransmitted_to: SeqNumber,
    /// Retransmissions not yet reported needless.
    outstanding_retransmissions: u32,
}

impl<P: Payload> Tcb<P> {
    /// A reduction is about to happen (loss recovery begins, or a first retransmission
    /// timeout): keeps the congestion state before it. A timeout during loss recovery keeps
    /// the recovery's, since the state before the recovery is the one to return to.
    pub(super) fn keep_state_for_undo(&mut self) {
        if self.in_loss_recovery() && self.recovery.undo.is_some() {
            return;
        }
        self.recovery.undo = Some(Undo {
            before: self.congestion,
            retransmitted_from: None,
            retransmitted_to: self.snd_una,
            outstanding_retransmissions: 0,
        });
    }

    /// The unit `start..start + len` is being sent again.
    pub(super) fn note_retransmission_for_undo(&mut self, start: SeqNumber, len: u32) {
        let Some(undo) = &mut self.recovery.undo else {
            return;
        };
        let end = start + len;
        undo.retransmitted_from = Some(match undo.retransmitted_from {
            Some(from) if from.distance_from(start) <= 0 => from,
            _ => start,
        });
        if end.distance_from(undo.retransmitted_to) > 0 {
            undo.retransmitted_to = end;
        }
        undo.outstanding_retransmissions = undo.outstanding_retransmissions.saturating_add(1);
    }

    /// A D-SACK for `left..right`: if it reports one of the episode's retransmissions, one
    /// fewer is outstanding, and with none left the reduction is undone.
    pub(super) fn note_dsack_for_undo(&mut self, left: SeqNumber, right: SeqNumber) {
        let mss = self.max_payload_per_segment().max(1) as u32;
        let Some(undo) = &mut self.recovery.undo else {
            return;
        };
        let Some(from) = undo.retransmitted_from else {
            return;
        };
        if left.distance_from(from) < 0 || right.distance_from(undo.retransmitted_to) > 0 {
            return;
        }
        let segments = (right.distance_from(left).max(1) as u32).div_ceil(mss);
        undo.outstanding_retransmissions =
            undo.outstanding_retransmissions.saturating_sub(segments);
        if undo.outstanding_retransmissions > 0 {
            return;
        }
        let before = undo.before;
        self.recovery.undo = None;
        if before.window() < self.congestion.window() {
            // Regrown beyond it already: nothing to give back.
            return;
        }
        self.congestion = before;
        self.counters.spurious_reductions_undone += 1;
        // The episode's rate limit (PRR) no longer applies: the window is the one from
        // before it.
        self.end_loss_recovery();
    }
}
