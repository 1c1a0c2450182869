//! MPTCP version 1, server side (RFC 8684): the data-level state of one connection.
//!
//! The TCP layer ([`crate::tcp::Tcb`]) runs each subflow; this module reads the MPTCP options
//! of the segments the subflow accepted (`options.rs`), assembles received DSS mappings and
//! verifies their checksums (`mapping.rs`), delivers data in data-sequence order, and
//! decorates outgoing subflow segments with MP_CAPABLE, DSS, MP_FASTCLOSE or MP_TCPRST options
//! (`decorate.rs`). A connection owns a set of subflows ([`SubflowSet`]); it holds exactly
//! one so far, the seam for joins is the set.

mod decorate;
mod mapping;
mod options;

use std::collections::VecDeque;

use mpterm_wire::mptcp::{DataSeqWire, MpTcpRst};

pub use mapping::{MappingAssembly, MappingError};
pub use options::{OptionOutcome, OptionsVerdict};

use crate::mptcp_keys::{derive_from_key, KeyDerivation};
use crate::tcp::ReceivedChunk;
use crate::Payload;

/// Option bytes the subflow reserves for a DSS with a 64-bit DATA_ACK, a 64-bit mapping and a
/// checksum (RFC 8684 section 3.3, figure 5): 4 + 8 + 8 + 4 + 2 + 2.
pub const DSS_OPTION_RESERVE: usize = 28;

/// The most subflows one connection may hold. Only the initial subflow exists until MP_JOIN
/// is implemented.
pub const MAX_SUBFLOWS: usize = 8;

/// Identifies a subflow within its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubflowId(pub u8);

/// The subflows of one connection (RFC 8684 section 2). Holds one today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubflowSet {
    ids: [Option<SubflowId>; MAX_SUBFLOWS],
}

impl SubflowSet {
    /// A set with the initial subflow (id 0, address ID 0 per RFC 8684 section 3.4).
    pub fn with_initial() -> Self {
        let mut ids = [None; MAX_SUBFLOWS];
        ids[0] = Some(SubflowId(0));
        SubflowSet { ids }
    }

    pub fn len(&self) -> usize {
        self.ids.iter().flatten().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = SubflowId> + '_ {
        self.ids.iter().flatten().copied()
    }
}

/// Why an MPTCP connection must be reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MptcpError {
    /// A DSS checksum did not verify (RFC 8684 section 3.3.1).
    ChecksumFailed,
    /// A mapping contradicted an earlier one or the data it should cover (section 3.3.1).
    MappingMismatch,
}

impl From<MappingError> for MptcpError {
    fn from(error: MappingError) -> Self {
        match error {
            MappingError::Checksum => MptcpError::ChecksumFailed,
            MappingError::Mismatch => MptcpError::MappingMismatch,
        }
    }
}

/// Why we reset a subflow, as MP_TCPRST tells the peer (RFC 8684 section 3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetReason {
    Unspecified,
    /// An error in the processing of MPTCP options, e.g. an MP_JOIN for an unknown token.
    MptcpError,
    /// No resources to serve the connection (connection slots, ports).
    LackOfResources,
    /// Refused by policy, e.g. an MP_JOIN while joins are not accepted.
    AdministrativelyProhibited,
    /// Data that does not verify: a middlebox changed it (a failed DSS checksum).
    MiddleboxInterference,
}

impl ResetReason {
    /// The reason code of section 3.6.
    pub fn code(self) -> u8 {
        match self {
            ResetReason::Unspecified => 0x00,
            ResetReason::MptcpError => 0x01,
            ResetReason::LackOfResources => 0x02,
            ResetReason::AdministrativelyProhibited => 0x03,
            ResetReason::MiddleboxInterference => 0x06,
        }
    }

    /// Section 3.6 flag T: the error is temporary, the peer may try again.
    pub fn is_transient(self) -> bool {
        matches!(self, ResetReason::LackOfResources)
    }

    /// The option carrying this reason.
    pub fn option(self) -> MpTcpRst {
        MpTcpRst {
            flags: if self.is_transient() {
                MpTcpRst::FLAG_TRANSIENT
            } else {
                0
            },
            reason: self.code(),
        }
    }
}

/// Data-level state of one MPTCP connection.
#[derive(Debug)]
pub struct MptcpSession<P: Payload> {
    subflows: SubflowSet,
    local_key: u64,
    local: KeyDerivation,
    /// Known once the third ACK (or the first data) arrived (section 3.1).
    remote_key: Option<u64>,
    remote: Option<KeyDerivation>,
    /// Both ends use DSS checksums: either asked with the A bit (section 3.1).
    checksums: bool,
    /// The connection fell back to plain TCP (section 3.7).
    fallen_back: bool,
    /// A DSS from the peer has been seen, so its first data carries one.
    data_seen: bool,

    // Receive direction (client to us).
    /// Next data sequence number we expect (our DATA_ACK).
    rcv_data_nxt: u64,
    assembly: MappingAssembly<P>,
    /// Data verified and in data-sequence order, waiting for the relay.
    ready: VecDeque<P>,
    ready_bytes: usize,
    /// Data sequence number of the peer's DATA_FIN, once announced.
    peer_data_fin: Option<u64>,
    peer_data_fin_reached: bool,

    // Send direction (us to client).
    /// Data sequence number of relative subflow sequence 1 on the initial subflow.
    send_data_base: u64,
    /// Highest DATA_ACK received.
    snd_data_una: u64,
    /// Data sequence number of our DATA_FIN once we close.
    local_data_fin: Option<u64>,

    /// The connection is being fast-closed (section 3.5): our RST carries MP_FASTCLOSE.
    fast_closing: bool,
    /// What our next RST on the subflow says in MP_TCPRST (section 3.6).
    reset_reason: ResetReason,
}

impl<P: Payload> MptcpSession<P> {
    /// A server-side session for a client SYN that asked for MPTCP v1 (section 3.1): our key is
    /// `local_key` (its token already registered), `client_wants_checksums` is the SYN's A bit.
    pub fn new(local_key: u64, checksum_required: bool, client_wants_checksums: bool) -> Self {
        let local = derive_from_key(local_key);
        let send_data_base = local.initial_data_seq.wrapping_add(1);
        MptcpSession {
            subflows: SubflowSet::with_initial(),
            local_key,
            local,
            remote_key: None,
            remote: None,
            // RFC 8684 section 3.1: checksums are used if either host sets A.
            checksums: checksum_required || client_wants_checksums,
            fallen_back: false,
            data_seen: false,
            rcv_data_nxt: 0,
            assembly: MappingAssembly::new(),
            ready: VecDeque::new(),
            ready_bytes: 0,
            peer_data_fin: None,
            peer_data_fin_reached: false,
            send_data_base,
            snd_data_una: send_data_base,
            local_data_fin: None,
            fast_closing: false,
            reset_reason: ResetReason::Unspecified,
        }
    }

    pub fn token(&self) -> u32 {
        self.local.token
    }

    pub fn subflows(&self) -> &SubflowSet {
        &self.subflows
    }

    pub fn checksums_enabled(&self) -> bool {
        self.checksums
    }

    pub fn has_fallen_back(&self) -> bool {
        self.fallen_back
    }

    /// Section 3.5: the connection ends at once; the subflow's FASTCLOSE_WAIT segments and its
    /// final RST carry MP_FASTCLOSE with the peer's key. Only possible once the key is known.
    pub fn start_fast_close(&mut self) -> bool {
        if self.remote_key.is_none() || self.fallen_back {
            return false;
        }
        self.fast_closing = true;
        true
    }

    pub fn is_fast_closing(&self) -> bool {
        self.fast_closing
    }

    /// Sets what the MP_TCPRST of our next RST says.
    pub fn set_reset_reason(&mut self, reason: ResetReason) {
        self.reset_reason = reason;
    }

    /// The peer's key is known: the connection is fully established (section 3.1).
    pub fn is_fully_established(&self) -> bool {
        self.remote_key.is_some()
    }

    /// Bytes held here that still count against the subflow's receive window.
    pub fn held_bytes(&self) -> usize {
        self.ready_bytes + self.assembly.held_bytes()
    }

    /// The peer ended its data stream and everything before it was taken.
    pub fn peer_finished(&self) -> bool {
        self.peer_data_fin_reached && self.ready.is_empty()
    }

    /// Our DATA_FIN is acknowledged by a DATA_ACK.
    pub fn local_data_fin_acknowledged(&self) -> bool {
        self.local_data_fin
            .is_some_and(|fin| self.snd_data_una > fin)
    }

    /// The next verified in-order data for the relay.
    pub fn pop_ready(&mut self) -> Option<P> {
        let payload = self.ready.pop_front()?;
        self.ready_bytes -= payload.len();
        Some(payload)
    }

    /// Puts back what the relay could not pass on.
    pub fn push_front_ready(&mut self, payload: P) {
        self.ready_bytes += payload.len();
        self.ready.push_front(payload);
    }

    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    fn learn_remote_key(&mut self, key: u64) {
        if self.remote_key.is_none() {
            let remote = derive_from_key(key);
            self.remote_key = Some(key);
            // Section 3.3: the first data byte of the peer is its IDSN + 1.
            self.rcv_data_nxt = remote.initial_data_seq.wrapping_add(1);
            self.remote = Some(remote);
        }
    }

    /// Takes in-order subflow payload (from [`crate::tcp::Tcb::recv`]) into the data level.
    pub fn handle_subflow_data(
        &mut self,
        chunk: ReceivedChunk<P>,
    ) -> Result<OptionOutcome, MptcpError> {
        let mut outcome = OptionOutcome::default();
        if self.fallen_back {
            self.rcv_data_nxt = self.rcv_data_nxt.wrapping_add(chunk.payload.len() as u64);
            self.push_ready(chunk.payload);
            return Ok(outcome);
        }
        self.assembly.add(chunk, self.checksums)?;
        while let Some((data_seq, payload)) = self.assembly.pop_released() {
            self.deliver_in_data_order(data_seq, payload)?;
        }
        let announced = self
            .assembly
            .take_verified_data_fin()
            .is_some_and(|fin| self.announce_peer_data_fin(fin));
        outcome.data_fin_reached = announced || self.try_reach_peer_data_fin();
        Ok(outcome)
    }

    /// Section 3.3.1: data arrives at the data level by data sequence number. Bytes already
    /// received (a data-level retransmission) are trimmed; a gap cannot occur with one subflow
    /// and is a mapping error rather than a silent loss.
    fn deliver_in_data_order(&mut self, data_seq: u64, payload: P) -> Result<(), MptcpError> {
        let end = data_seq.wrapping_add(payload.len() as u64);
        if end.wrapping_sub(self.rcv_data_nxt) as i64 <= 0 {
            return Ok(());
        }
        let offset = self.rcv_data_nxt.wrapping_sub(data_seq) as i64;
        if offset < 0 {
            return Err(MptcpError::MappingMismatch);
        }
        let payload = if offset > 0 {
            payload.slice(offset as usize..payload.len())
        } else {
            payload
        };
        self.rcv_data_nxt = end;
        self.push_ready(payload);
        Ok(())
    }

    fn push_ready(&mut self, payload: P) {
        if !payload.is_empty() {
            self.ready_bytes += payload.len();
            self.ready.push_back(payload);
        }
    }

    /// Section 3.3.3: the peer's DATA_FIN takes data sequence number `fin`. The first one
    /// announced counts, as in Linux (`mptcp_update_rcv_data_fin`); one before data already
    /// received cannot be the end of the stream and is ignored. Returns true when the
    /// DATA_FIN is reached with it.
    fn announce_peer_data_fin(&mut self, fin: u64) -> bool {
        match self.peer_data_fin {
            Some(_) => {}
            None if data_seq_after(self.rcv_data_nxt, fin) => return false,
            None => self.peer_data_fin = Some(fin),
        }
        self.try_reach_peer_data_fin()
    }

    fn try_reach_peer_data_fin(&mut self) -> bool {
        match self.peer_data_fin {
            Some(fin) if !self.peer_data_fin_reached && fin == self.rcv_data_nxt => {
                self.rcv_data_nxt = fin.wrapping_add(1);
                self.peer_data_fin_reached = true;
                true
            }
            _ => false,
        }
    }

    /// Marks our data stream finished after `bytes_sent` data bytes on the subflow: the DATA_FIN
    /// takes the next data sequence number (section 3.3.3).
    pub fn close(&mut self, bytes_sent: u64) {
        if self.local_data_fin.is_none() {
            self.local_data_fin = Some(self.send_data_base.wrapping_add(bytes_sent));
        }
    }

    /// A subflow FIN with all data delivered is the end of the peer's stream too when it never
    /// sent a DATA_FIN and we hold one subflow (a lenient reading of section 3.3.3).
    pub fn peer_closed_subflow(&mut self) -> bool {
        if self.peer_data_fin.is_none() && self.assembly.held_bytes() == 0 {
            self.peer_data_fin = Some(self.rcv_data_nxt);
            return self.try_reach_peer_data_fin();
        }
        false
    }
}

/// True when `a` is after `b` in the 64-bit data sequence space, across wrap-around.
fn data_seq_after(a: u64, b: u64) -> bool {
    (a.wrapping_sub(b) as i64) > 0
}

/// Expands a data sequence number received in 32 bits to the 64-bit value nearest to
/// `reference` (RFC 8684 section 3.3: the low bits of the full number).
pub fn expand_data_seq(wire: DataSeqWire, reference: u64) -> u64 {
    match wire {
        DataSeqWire::Bits64(value) => value,
        DataSeqWire::Bits32(low) => {
            let candidate = (reference & !0xffff_ffff) | u64::from(low);
            let distance = candidate.wrapping_sub(reference) as i64;
            if distance > i64::from(i32::MAX) {
                candidate.wrapping_sub(1 << 32)
            } else if distance < i64::from(i32::MIN) {
                candidate.wrapping_add(1 << 32)
            } else {
                candidate
            }
        }
    }
}

#[cfg(test)]
mod tests;
