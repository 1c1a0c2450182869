//! Scheduling toward the client (RFC 8684 section 3.3.8): the data-level send buffer's next
//! whole segment goes to the subflow the connection's [`crate::scheduler::Scheduler`] picks,
//! within the connection-level window (section 3.3.4); and the coupled congestion control's
//! snapshots (RFC 6356, OLIA) for every established subflow.

use crate::mptcp::MAX_SUBFLOWS;
use crate::scheduler::{Candidate, Scheduler};
use crate::tcp::{CongestionSample, ConnectionCoupling};
use crate::Payload;

use super::{ProxiedConnection, MIN_FULL_SEGMENT};

impl<P: Payload> ProxiedConnection<P> {
    /// Gives the data-level send buffer's next ranges to the subflows the scheduler picks, one
    /// segment at a time, while any has room: reinjections first, then new data.
    pub(super) fn schedule(&mut self) {
        let Some(session) = self.mptcp.as_mut() else {
            return;
        };
        let usable = session.is_fully_established() || session.has_fallen_back();
        if !usable || session.send_buffer().all_scheduled() {
            // Nothing to give out (the common case of a segment from the client).
            if session.has_fallen_back() {
                session.send_buffer_mut().release_scheduled();
            }
            return;
        }
        // RFC 8684 section 3.3.4: the window every subflow advertises is the connection's,
        // relative to the DATA_ACK; the newest (largest, as the windows race) bounds what may
        // be outstanding at the data level, whatever the subflows' own windows allow. A Linux
        // receiver drops data beyond it, after the subflow acknowledged it.
        let window = self
            .subflows
            .iter()
            .flatten()
            .filter(|subflow| subflow.mptcp.is_usable() && subflow.tcb.is_synchronized())
            .map(|subflow| subflow.tcb.send_window())
            .max()
            .unwrap_or(0);
        let window_end = session
            .send_buffer()
            .unacknowledged()
            .wrapping_add(u64::from(window));
        // Section 3.3.8: a backup subflow carries data only while no regular one works,
        // whether or not that one has room in its window now (Linux's `mptcp_subflow_get_send`
        // counts every active non-backup subflow): a full regular window means waiting for
        // its ACKs, not spilling over onto the backup.
        let regular_works = self.subflows.iter().flatten().any(|subflow| {
            !subflow.mptcp.is_backup()
                && !subflow.stale
                && subflow.mptcp.is_usable()
                && subflow.tcb.is_synchronized()
                && subflow.is_open()
        });
        loop {
            if !usable || session.send_buffer().all_scheduled() {
                break;
            }
            // New data only within the connection's window; reinjections always (they are
            // below what was sent).
            // Sender silly window syndrome avoidance at the data level (RFC 9293 section
            // 3.8.6.2.1, as the TCB does for its own window): new data waits for room for a full
            // segment, unless nothing is outstanding at all (then one segment probes the window).
            let buffer = session.send_buffer();
            let window_left = window_end.wrapping_sub(buffer.scheduled_end()) as i64;
            let reinjecting = buffer.reinjection_pending();
            let nothing_outstanding = buffer.unacknowledged() == buffer.scheduled_end();
            let full_segment = MIN_FULL_SEGMENT as i64;
            if !reinjecting
                && !session.has_fallen_back()
                && window_left < full_segment
                && !nothing_outstanding
            {
                break;
            }
            let mut count = 0;
            for (index, subflow) in self.subflows.iter().enumerate() {
                let Some(subflow) = subflow.as_ref() else {
                    continue;
                };
                let tcb = &subflow.tcb;
                if subflow.stale || !subflow.mptcp.is_usable() || !tcb.is_synchronized() {
                    continue;
                }
                if subflow.mptcp.is_backup() && regular_works {
                    continue;
                }
                // A subflow takes whole segments: a slice cut to what its window has left
                // would leave a runt (and its remainder another) that is sent, and sent again,
                // as such. An empty one always has a segment's room (`Tcb::send_room`).
                let room = tcb.send_room();
                if room < tcb.max_payload_per_segment() {
                    continue;
                }
                if count == MAX_SUBFLOWS {
                    break;
                }
                self.candidates[count] = Candidate {
                    index,
                    backup: subflow.mptcp.is_backup(),
                    rtt: tcb.smoothed_rtt(),
                    congestion_window: tcb.congestion_window(),
                    queued: tcb.send_queued(),
                    room,
                };
                count += 1;
            }
            // One candidate needs no policy (the common case of one subflow).
            let choice = match count {
                0 => break,
                1 => 0,
                _ => match self.scheduler.pick(&self.candidates[..count]) {
                    Some(choice) => choice,
                    None => break,
                },
            };
            let Some(&candidate) = self.candidates[..count].get(choice) else {
                break;
            };
            let Some(subflow) = self.subflows[candidate.index].as_mut() else {
                break;
            };
            let limit = subflow.tcb.max_payload_per_segment();
            let Some((data_seq, payload, reinjection)) = session.send_buffer().peek_next(limit)
            else {
                break;
            };
            let len = payload.len();
            let subflow_seq = subflow.tcb.next_queued_relative_seq();
            if subflow.tcb.send(payload).is_err() {
                break;
            }
            subflow.mptcp.sent.record(subflow_seq, data_seq, len as u32);
            session
                .send_buffer_mut()
                .consume(data_seq, len, reinjection);
            if reinjection {
                self.events.reinjected_bytes += len as u64;
                // Data sent twice: an infinite mapping could no longer map the stream.
                self.infinite_fallback_allowed = false;
            }
        }
        if session.has_fallen_back() {
            session.send_buffer_mut().release_scheduled();
        }
    }

    /// Coupled congestion control (RFC 6356, OLIA) sees all subflows: each established one
    /// gets its share of the connection's coupling, computed from every subflow's window and
    /// RTT; a lone subflow gets none and behaves as NewReno. Decoupled algorithms ignore it.
    pub(super) fn couple_congestion_control(&mut self) {
        // A connection that never had a second subflow was never coupled.
        if self.mptcp.is_none() || self.subflows.len() < 2 {
            return;
        }
        let mut samples = [None; crate::mptcp::MAX_SUBFLOWS];
        let unused = CongestionSample {
            window: 0,
            smoothed_rtt: core::time::Duration::ZERO,
            loss_interval_bytes: 0,
        };
        let mut collected = [unused; crate::mptcp::MAX_SUBFLOWS];
        let mut count = 0;
        for (slot, subflow) in self.subflows.iter().enumerate() {
            let Some(subflow) = subflow.as_ref() else {
                continue;
            };
            if !subflow.is_open() || !subflow.mptcp.is_usable() {
                continue;
            }
            if let Some(sample) = subflow.tcb.congestion_sample() {
                samples[slot] = Some(sample);
                collected[count] = sample;
                count += 1;
            }
        }
        let coupling = if count > 1 {
            ConnectionCoupling::from_samples(&collected[..count])
        } else {
            None
        };
        for (slot, subflow) in self.subflows.iter_mut().enumerate() {
            let Some(subflow) = subflow.as_mut() else {
                continue;
            };
            let share = match (coupling.as_ref(), samples[slot].as_ref()) {
                (Some(coupling), Some(sample)) => Some(coupling.for_subflow(sample)),
                _ => None,
            };
            subflow.tcb.set_congestion_coupling(share);
        }
    }
}
