//! The MPTCP state of one subflow (RFC 8684 sections 3.2 and 3.3): what the connection's data
//! level needs per subflow, next to the subflow's TCB but not inside it.
//!
//! - the DSS mapping being received (mappings are per subflow, section 3.3.1);
//! - which data sequence numbers the bytes we sent on it carry (`SentMappings`), for the DSS
//!   of every (re)transmission and for reinjection when the subflow dies;
//! - the join handshake until its HMAC verified, the address IDs and the backup flag.

use std::collections::VecDeque;

use super::address::SignalQueue;
use super::join::JoinHandshake;
use super::mapping::MappingAssembly;
use super::send_buffer::DataRange;
use super::ResetReason;
use crate::Payload;

/// One range of bytes we sent on a subflow: subflow relative sequence numbers (1 is the first
/// data byte) from `subflow_seq` map to data sequence numbers from `data_seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SentMapping {
    subflow_seq: u32,
    data_seq: u64,
    len: u32,
}

/// The largest range one entry covers: entries merge while both spaces continue, up to this.
const MAX_MAPPING_SPAN: u32 = 1 << 30;

/// The data sequence numbers of the bytes queued on one subflow and not yet acknowledged by
/// it, in subflow order.
#[derive(Debug, Default)]
pub struct SentMappings {
    entries: VecDeque<SentMapping>,
}

impl SentMappings {
    /// Bytes from `subflow_seq` carry data from `data_seq` on.
    pub fn record(&mut self, subflow_seq: u32, data_seq: u64, len: u32) {
        if let Some(last) = self.entries.back_mut() {
            let continues = last.subflow_seq.wrapping_add(last.len) == subflow_seq
                && last.data_seq.wrapping_add(u64::from(last.len)) == data_seq;
            if continues && last.len.saturating_add(len) <= MAX_MAPPING_SPAN {
                last.len += len;
                return;
            }
        }
        self.entries.push_back(SentMapping {
            subflow_seq,
            data_seq,
            len,
        });
    }

    /// The data sequence number of the byte at `subflow_seq`. New data is looked up at the
    /// back, a retransmission further in.
    pub fn data_seq_of(&self, subflow_seq: u32) -> Option<u64> {
        self.entries.iter().rev().find_map(|entry| {
            let offset = subflow_seq.wrapping_sub(entry.subflow_seq);
            (offset < entry.len).then(|| entry.data_seq.wrapping_add(u64::from(offset)))
        })
    }

    /// The subflow acknowledged everything before `subflow_seq`: those bytes reached the
    /// peer, and are its data level's to deliver.
    pub fn acknowledge(&mut self, subflow_seq: u32) {
        while let Some(front) = self.entries.front_mut() {
            let acked = subflow_seq.wrapping_sub(front.subflow_seq);
            if acked as i32 <= 0 {
                break;
            }
            if acked >= front.len {
                crate::queue::pop_front_reusing(&mut self.entries);
                continue;
            }
            front.subflow_seq = subflow_seq;
            front.data_seq = front.data_seq.wrapping_add(u64::from(acked));
            front.len -= acked;
            break;
        }
    }

    /// The subflow still waits for its acknowledgement of `data_seq`: its own retransmissions
    /// will carry it.
    pub fn covers(&self, data_seq: u64) -> bool {
        self.entries.iter().any(|entry| {
            let offset = data_seq.wrapping_sub(entry.data_seq);
            offset < u64::from(entry.len)
        })
    }

    /// The data ranges still waiting for this subflow's acknowledgement.
    pub fn outstanding(&self) -> impl Iterator<Item = DataRange> + '_ {
        self.entries.iter().map(|entry| DataRange {
            data_seq: entry.data_seq,
            len: entry.len,
        })
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Where a subflow stands in the join handshake (section 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinState {
    /// The initial subflow, which MP_CAPABLE opened (section 3.1).
    Initial,
    /// Joined with MP_JOIN; the third ACK's HMAC is still to verify.
    Pending(JoinHandshake),
    /// Joined, and the HMAC verified.
    Verified { local_address_id: u8 },
}

/// The MPTCP state of one subflow.
#[derive(Debug)]
pub struct SubflowMptcp<P> {
    pub join: JoinState,
    /// The peer's address ID for this subflow's address (section 3.4; 0 for the initial one).
    pub remote_address_id: u8,
    /// Section 3.3.8: the peer asked (MP_JOIN's B bit or MP_PRIO) that this subflow be used
    /// only when no other works.
    pub backup: bool,
    /// Section 3.3.8 the other way: we asked the peer with MP_PRIO to treat this subflow as
    /// a backup, and use it so ourselves.
    pub local_backup: bool,
    /// ADD_ADDR, REMOVE_ADDR and MP_PRIO options waiting for a pure ACK of this subflow.
    pub signals: SignalQueue,
    /// A DSS from the peer has been seen on this subflow.
    pub data_seen: bool,
    pub assembly: MappingAssembly<P>,
    pub sent: SentMappings,
    /// What our RST on this subflow says in MP_TCPRST when it is this subflow's own matter
    /// (a join that failed); otherwise the connection's reason applies.
    pub reset_reason: Option<ResetReason>,
    /// Our RST on this subflow carries MP_FAIL with this data sequence number: a mapping
    /// received on it failed its checksum while other subflows go on (section 3.7).
    pub failed_mapping: Option<u64>,
}

impl<P: Payload> SubflowMptcp<P> {
    pub fn initial() -> Self {
        Self::with_join(JoinState::Initial, 0, false)
    }

    pub fn joining(handshake: JoinHandshake, remote_address_id: u8, backup: bool) -> Self {
        Self::with_join(JoinState::Pending(handshake), remote_address_id, backup)
    }

    fn with_join(join: JoinState, remote_address_id: u8, backup: bool) -> Self {
        SubflowMptcp {
            join,
            remote_address_id,
            backup,
            local_backup: false,
            signals: SignalQueue::default(),
            data_seen: false,
            assembly: MappingAssembly::new(),
            sent: SentMappings::default(),
            reset_reason: None,
            failed_mapping: None,
        }
    }

    /// The subflow may carry data: the initial one, or a join whose HMAC verified.
    pub fn is_usable(&self) -> bool {
        !matches!(self.join, JoinState::Pending(_))
    }

    /// The scheduler sends on it only while no regular subflow works (section 3.3.8): the
    /// peer asked so, or we did.
    pub fn is_backup(&self) -> bool {
        self.backup || self.local_backup
    }

    /// Our address ID on this subflow.
    pub fn local_address_id(&self) -> u8 {
        match self.join {
            JoinState::Initial => 0,
            JoinState::Pending(handshake) => handshake.local_address_id,
            JoinState::Verified { local_address_id } => local_address_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_follow_merged_and_separate_ranges_and_acknowledgements() {
        let mut sent = SentMappings::default();
        sent.record(1, 1000, 100);
        sent.record(101, 1100, 100); // continues both spaces: merged
        sent.record(201, 5000, 50); // another part of the data stream
        assert_eq!(sent.data_seq_of(1), Some(1000));
        assert_eq!(sent.data_seq_of(150), Some(1149));
        assert_eq!(sent.data_seq_of(201), Some(5000));
        assert_eq!(sent.data_seq_of(250), Some(5049));
        assert_eq!(sent.data_seq_of(251), None);
        sent.acknowledge(151);
        assert_eq!(
            sent.data_seq_of(100),
            None,
            "acknowledged bytes are forgotten"
        );
        let outstanding: Vec<_> = sent.outstanding().collect();
        assert_eq!(
            outstanding,
            [
                DataRange {
                    data_seq: 1150,
                    len: 50
                },
                DataRange {
                    data_seq: 5000,
                    len: 50
                }
            ]
        );
    }

    #[test]
    fn subflow_sequence_numbers_wrap() {
        let mut sent = SentMappings::default();
        sent.record(u32::MAX - 9, 7, 20);
        assert_eq!(sent.data_seq_of(u32::MAX), Some(16));
        assert_eq!(sent.data_seq_of(5), Some(22));
        sent.acknowledge(2);
        assert_eq!(sent.data_seq_of(2), Some(19));
        assert_eq!(sent.data_seq_of(u32::MAX), None);
    }
}
