//! Data-level reliability (RFC 8684 sections 3.3.6 and 3.7): stale and dead subflows hand
//! their data to the others, the data-level retransmission timer resends what every subflow
//! delivered but the DATA_ACK never covered, and a subflow whose mapping failed its checksum
//! is closed with MP_FAIL while another goes on.

use crate::mptcp::address::Signal;
use crate::mptcp::{DataRange, FailureState, ResetReason};
use crate::tcp::CloseReason;
use crate::{Instant, Payload};

use super::{
    ProxiedConnection, Subflow, DATA_RETRANSMISSION_BYTES, MAX_DATA_RTO, MIN_DATA_RTO,
    STALE_AFTER_TIMEOUTS,
};

impl<P: Payload> ProxiedConnection<P> {
    /// The data-level retransmission timer (RFC 8684 section 3.3.6, as Linux's
    /// `mptcp_retransmit_timer`): data a subflow delivered can still be missing at the data
    /// level (a receiver that dropped it for want of room), and no subflow will send it again.
    /// While data waits for a DATA_ACK, a timer of the subflows' longest RTO runs; progress of
    /// the DATA_ACK restarts it, and its expiry sends the first bytes not DATA_ACKed again.
    pub(super) fn watch_data_ack(&mut self, now: Instant) {
        let Some(session) = self.mptcp.as_ref() else {
            return;
        };
        let buffer = session.send_buffer();
        let unacknowledged = buffer.unacknowledged();
        let outstanding = unacknowledged != buffer.scheduled_end();
        if !outstanding || session.has_fallen_back() {
            self.data_retransmission = None;
            self.data_rto_backoff = 0;
            return;
        }
        if self.data_retransmission.is_none() || unacknowledged != self.data_ack_seen {
            if unacknowledged != self.data_ack_seen {
                self.data_rto_backoff = 0;
            }
            self.data_ack_seen = unacknowledged;
            self.data_retransmission = Some(now + self.data_rto());
        }
    }

    pub(super) fn data_rto(&self) -> core::time::Duration {
        let longest = self
            .subflows
            .iter()
            .flatten()
            .filter(|subflow| subflow.is_open() && subflow.mptcp.is_usable())
            .map(|subflow| subflow.tcb.retransmission_timeout())
            .max()
            .unwrap_or(MIN_DATA_RTO)
            .max(MIN_DATA_RTO);
        (longest * (1u32 << self.data_rto_backoff.min(8))).min(MAX_DATA_RTO)
    }

    pub(super) fn retransmit_at_data_level(&mut self, now: Instant) {
        self.data_retransmission = None;
        let Some(session) = self.mptcp.as_mut() else {
            return;
        };
        let unacknowledged = session.send_buffer().unacknowledged();
        // A subflow that has not had its own acknowledgement for the first byte missing will
        // send it again itself (or die, and hand it over): only bytes every subflow delivered
        // are retransmitted here. Sending queued data the window holds back would only
        // duplicate it.
        let carried = self
            .subflows
            .iter()
            .flatten()
            .any(|subflow| subflow.is_open() && subflow.mptcp.sent.covers(unacknowledged));
        if carried {
            self.data_ack_seen = unacknowledged;
            self.data_retransmission = Some(now + self.data_rto());
            return;
        }
        let Some(session) = self.mptcp.as_mut() else {
            return;
        };
        let buffer = session.send_buffer_mut();
        let outstanding = buffer.scheduled_end().wrapping_sub(unacknowledged);
        if outstanding == 0 {
            return;
        }
        buffer.reinject(DataRange {
            data_seq: unacknowledged,
            len: outstanding.min(u64::from(DATA_RETRANSMISSION_BYTES)) as u32,
        });
        self.events.data_retransmissions += 1;
        self.infinite_fallback_allowed = false;
        self.data_rto_backoff += 1;
        self.data_ack_seen = unacknowledged;
        self.data_retransmission = Some(now + self.data_rto());
    }

    /// Marks stalled subflows stale and hands the data of stale or dead ones to the others.
    pub(super) fn watch_subflows(&mut self) {
        let Some(session) = self.mptcp.as_mut() else {
            return;
        };
        let others_open = |this: usize, subflows: &[Option<Subflow<P>>]| {
            subflows.iter().enumerate().any(|(index, subflow)| {
                index != this
                    && subflow.as_ref().is_some_and(|subflow| {
                        subflow.is_open() && !subflow.stale && subflow.mptcp.is_usable()
                    })
            })
        };
        for index in 0..self.subflows.len() {
            let Some(subflow) = self.subflows[index].as_ref() else {
                continue;
            };
            let timeouts = subflow.tcb.consecutive_timeouts();
            let died = subflow
                .tcb
                .close_reason()
                .is_some_and(CloseReason::is_abortive);
            let stalled = timeouts >= STALE_AFTER_TIMEOUTS;
            let alternative = others_open(index, &self.subflows);
            let Some(subflow) = self.subflows[index].as_mut() else {
                continue;
            };
            if timeouts == 0 && subflow.stale {
                // It answered again: back in service.
                subflow.stale = false;
                subflow.reinjected = false;
            }
            if stalled && subflow.is_open() {
                subflow.stale = true;
            }
            if (died || stalled) && !subflow.reinjected && alternative {
                subflow.reinjected = true;
                let mut any = false;
                for range in subflow.mptcp.sent.outstanding() {
                    session.send_buffer_mut().reinject(range);
                    any = true;
                }
                if died {
                    subflow.mptcp.sent.clear();
                }
                // A failover is data moving off a subflow, or a subflow that carried data
                // dying abortively (a timeout, a reset); a graceful close, or a join that
                // never completed, is none.
                let failed = died
                    && subflow.mptcp.is_usable()
                    && subflow
                        .tcb
                        .close_reason()
                        .is_some_and(CloseReason::is_abortive);
                if any || failed {
                    self.events.failovers += 1;
                }
            }
        }
    }

    /// Another subflow than `index` is open, joined and not stale.
    pub(super) fn another_subflow_works(&self, index: usize) -> bool {
        self.subflows.iter().enumerate().any(|(position, subflow)| {
            position != index
                && subflow.as_ref().is_some_and(|subflow| {
                    subflow.is_open() && subflow.mptcp.is_usable() && !subflow.stale
                })
        })
    }

    /// RFC 8684 section 3.7: a mapping that failed its checksum on one subflow while others
    /// work closes that subflow with a RST carrying MP_FAIL (where the failed mapping starts)
    /// and MP_TCPRST "middlebox interference". Its bytes were held unverified and are dropped,
    /// never delivered; the client sends them again on another subflow, as it does for any
    /// subflow that dies, and our data on it is reinjected (`watch_subflows`).
    pub(super) fn fail_subflow(&mut self, index: usize) {
        let Some(subflow) = self.subflows.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        self.events.checksum_failure = true;
        self.events.subflows_failed += 1;
        let data_seq = subflow.mptcp.assembly.current_data_seq().unwrap_or(0);
        subflow.mptcp.failed_mapping = Some(data_seq);
        subflow.mptcp.reset_reason = Some(ResetReason::MiddleboxInterference);
        subflow.tcb.abort();
    }

    /// An infinite mapping may still map the rest of the connection onto subflow `index`
    /// (RFC 8684 section 3.7): it is the initial and only subflow, no join ever took part,
    /// nothing was sent twice at the data level, and the connection is neither fallen back
    /// nor being torn down (Linux's `allow_infinite_fallback`).
    fn single_path_fallback_allowed(&self, index: usize) -> bool {
        self.infinite_fallback_allowed
            && index == 0
            && self.subflow_count() == 1
            && self.mptcp.as_ref().is_some_and(|session| {
                session.is_fully_established()
                    && !session.has_fallen_back()
                    && !session.is_fast_closing()
            })
    }

    /// Section 3.7, the receiver's side: a mapping failed its checksum on the only subflow.
    /// The RFC has the receiver send MP_FAIL on the subflow-level ACK, naming where the
    /// mapping starts, and the sender answer with an infinite mapping that acts retroactively
    /// from the last byte DATA_ACKed, after which the connection is plain TCP. A Linux sender
    /// treats everything its subflow had acknowledged as delivered once it fell back
    /// (`__mptcp_clean_una`), so the failed bytes must not have been acknowledged at the TCP
    /// level: they are dropped unverified (never delivered, never DATA_ACKed) and the
    /// subflow's receive side goes back to where the mapping starts, so that the client's TCP
    /// sends them again, before or after its fallback. Possible only while fallback is
    /// allowed, no earlier MP_FAIL is pending, and no ACK of ours covered any byte of the
    /// mapping (one that spans segments already acknowledged is not); otherwise false, and
    /// the connection is reset as the section's other branch says.
    pub(super) fn fail_only_subflow(&mut self, index: usize) -> bool {
        if !self.single_path_fallback_allowed(index) {
            return false;
        }
        let Some(session) = self.mptcp.as_mut() else {
            return false;
        };
        if session.failure() != FailureState::None {
            return false;
        }
        let Some(subflow) = self.subflows.get_mut(index).and_then(Option::as_mut) else {
            return false;
        };
        let Some(data_seq) = subflow.mptcp.assembly.current_data_seq() else {
            return false;
        };
        let Some(start) = subflow.mptcp.assembly.discard() else {
            return false;
        };
        if !subflow.tcb.rewind_receive(start) {
            return false;
        }
        session.note_mp_fail_sent();
        subflow.mptcp.signals.push(Signal::MpFail { data_seq });
        self.events.checksum_failure = true;
        self.events.checksum_rewinds += 1;
        true
    }

    /// Section 3.7, the sender's side: the client's MP_FAIL (on an ACK) says a mapping of
    /// ours failed its checksum. On the only subflow, while fallback is allowed, we answer as
    /// Linux expects (`mptcp_pm_mp_fail_received`): MP_FAIL back on a pure ACK (which stops
    /// the client's wait for an answer) and the infinite mapping on our next new data
    /// segment, then plain TCP. The client delivered the failed mapping as it arrived (Linux
    /// does), which is what the infinite mapping makes of it. An MP_FAIL answering ours is
    /// only counted. Where fallback is not allowed, the subflow is closed if another works
    /// (its data goes to the others), else the connection is reset.
    pub(super) fn answer_mp_fail(&mut self, index: u8, data_seq: u64) {
        let index = usize::from(index);
        let Some(session) = self.mptcp.as_ref() else {
            return;
        };
        if session.failure() != FailureState::None || session.has_fallen_back() {
            return;
        }
        if self.single_path_fallback_allowed(index) {
            let Some(subflow) = self.subflows.get_mut(index).and_then(Option::as_mut) else {
                return;
            };
            subflow.mptcp.signals.push(Signal::MpFail { data_seq });
            if let Some(session) = self.mptcp.as_mut() {
                session.owe_infinite_mapping();
            }
            return;
        }
        if self.another_subflow_works(index) {
            if let Some(subflow) = self.subflows.get_mut(index).and_then(Option::as_mut) {
                subflow.mptcp.reset_reason = Some(ResetReason::MiddleboxInterference);
                subflow.tcb.abort();
            }
            return;
        }
        self.events.failure_resets += 1;
        self.reset_connection(ResetReason::MiddleboxInterference);
    }
}
