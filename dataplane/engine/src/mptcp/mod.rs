//! MPTCP version 1, server side (RFC 8684): the data-level state of one connection.
//!
//! The TCP layer ([`crate::tcp::Tcb`]) runs each subflow; this module reads the MPTCP options
//! of incoming segments, assembles received DSS mappings, verifies their checksums, delivers
//! data in data-sequence order, and decorates outgoing subflow segments with MP_CAPABLE or
//! DSS options. A connection owns a set of subflows ([`SubflowSet`]); this issue fills it with
//! exactly one, the seam for joins is the set.

mod mapping;

use std::collections::VecDeque;

use mpterm_wire::checksum;
use mpterm_wire::mptcp::{DataSeqWire, Dss, DssMapping, MpCapable, MptcpOption};
use mpterm_wire::tcp::{TcpFlags, TcpOptions};

pub use mapping::{MappingAssembly, MappingError};

use crate::mptcp_keys::{derive_from_key, KeyDerivation};
use crate::tcp::{OutgoingSegment, ReceivedChunk, ReceivedMapping};
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

/// What an incoming segment's MPTCP options told the session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OptionOutcome {
    /// The peer's DATA_ACK moved forward.
    pub data_acked: bool,
    /// The connection fell back to plain TCP with this segment (RFC 8684 section 3.7).
    pub fell_back: bool,
    /// The peer's DATA_FIN became deliverable: data-level end of stream.
    pub data_fin_reached: bool,
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

    /// Reads the MPTCP options of a segment received on the subflow, before the TCP layer
    /// takes its payload. Returns the mapping to keep with the payload, expanded to 64 bits.
    pub fn handle_options(
        &mut self,
        options: &TcpOptions<'_>,
        flags: TcpFlags,
        payload_len: usize,
    ) -> (Option<ReceivedMapping>, OptionOutcome) {
        let mut outcome = OptionOutcome::default();
        if self.fallen_back {
            return (None, outcome);
        }
        let mut mapping = None;
        let mut saw_mptcp = false;
        for option in options.mptcp.iter().flatten() {
            match option {
                MptcpOption::MpCapable(capable) => {
                    saw_mptcp = true;
                    self.handle_mp_capable(capable, payload_len, &mut mapping);
                }
                MptcpOption::Dss(dss) => {
                    saw_mptcp = true;
                    self.handle_dss(dss, &mut mapping, &mut outcome);
                }
                // Other subtypes need several subflows or are not used by a server yet; they
                // are accepted and ignored (counted by the engine as unexpected).
                _ => {}
            }
        }
        // RFC 8684 section 3.7: data without any MPTCP option before the first DSS means a
        // middlebox stripped the options: fall back to regular TCP.
        if payload_len > 0 && !saw_mptcp && !self.data_seen && !flags.contains(TcpFlags::SYN) {
            self.fallen_back = true;
            outcome.fell_back = true;
            return (None, outcome);
        }
        if payload_len > 0 && saw_mptcp {
            self.data_seen = true;
        }
        (mapping, outcome)
    }

    fn handle_mp_capable(
        &mut self,
        capable: &MpCapable,
        payload_len: usize,
        mapping: &mut Option<ReceivedMapping>,
    ) {
        // Section 3.1: the third ACK echoes both keys; the sender key is the client's.
        let Some(client_key) = capable.sender_key else {
            return;
        };
        if capable
            .receiver_key
            .is_some_and(|key| key != self.local_key)
        {
            return;
        }
        self.learn_remote_key(client_key);
        // The first data may ride on MP_CAPABLE with a data-level length: it maps the data to
        // the peer's IDSN + 1 at relative subflow sequence 1 (section 3.1, as Linux does).
        if let (Some(length), Some(remote)) = (capable.data_level_length, self.remote) {
            if payload_len > 0 {
                *mapping = Some(ReceivedMapping {
                    data_seq: remote.initial_data_seq.wrapping_add(1),
                    subflow_seq: 1,
                    data_level_length: length,
                    checksum: capable.checksum,
                    data_fin: false,
                });
            }
        }
    }

    fn handle_dss(
        &mut self,
        dss: &Dss,
        mapping: &mut Option<ReceivedMapping>,
        outcome: &mut OptionOutcome,
    ) {
        if let Some(ack) = dss.data_ack {
            // Section 3.3.2: a DATA_ACK is cumulative; 32-bit ones are the low bits.
            let ack = expand_data_seq(ack, self.snd_data_una);
            let within_sent = self
                .local_data_fin
                .is_none_or(|fin| !data_seq_after(ack, fin.wrapping_add(1)));
            if data_seq_after(ack, self.snd_data_una) && within_sent {
                self.snd_data_una = ack;
                outcome.data_acked = true;
            }
        }
        let Some(dss_mapping) = dss.mapping else {
            return;
        };
        // A segment may overtake the first data (which carries the client's key on
        // MP_CAPABLE): its mapping is kept with the payload as long as its data sequence
        // number is a full 64-bit one; a 32-bit one cannot be placed without the key's IDSN.
        let data_seq = match (self.remote.is_some(), dss_mapping.data_seq) {
            (true, wire) => expand_data_seq(wire, self.rcv_data_nxt),
            (false, DataSeqWire::Bits64(data_seq)) => data_seq,
            (false, DataSeqWire::Bits32(_)) => return,
        };
        if dss_mapping.data_level_length == 0 {
            // Section 3.7: an infinite mapping, the peer fell back.
            self.fallen_back = true;
            outcome.fell_back = true;
            return;
        }
        if dss.data_fin {
            // Section 3.3.3: the DATA_FIN is the mapping's last data-level octet.
            let fin = data_seq.wrapping_add(u64::from(dss_mapping.data_level_length) - 1);
            self.peer_data_fin.get_or_insert(fin);
            if dss_mapping.subflow_seq == 0 && dss_mapping.data_level_length == 1 {
                // A DATA_FIN with no data (section 3.3.3): no subflow bytes are mapped.
                outcome.data_fin_reached |= self.try_reach_peer_data_fin();
                return;
            }
        }
        *mapping = Some(ReceivedMapping {
            data_seq,
            subflow_seq: dss_mapping.subflow_seq,
            data_level_length: dss_mapping.data_level_length,
            checksum: dss_mapping.checksum,
            data_fin: dss.data_fin,
        });
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
        outcome.data_fin_reached = self.try_reach_peer_data_fin();
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

    /// Adds our MPTCP options to a segment about to leave on the subflow.
    pub fn decorate(&self, segment: &mut OutgoingSegment<P>) {
        let flags = segment.repr.flags;
        if flags.contains(TcpFlags::RST) || self.fallen_back {
            return;
        }
        let options = &mut segment.repr.options;
        if flags.contains(TcpFlags::SYN) {
            // Section 3.1: the SYN/ACK carries our key; A if either side wants checksums.
            options.mptcp[0] = Some(MptcpOption::MpCapable(MpCapable {
                version: 1,
                checksum_required: self.checksums,
                extensibility: false,
                no_new_subflows_to_source: false,
                hmac_sha256: true,
                sender_key: Some(self.local_key),
                receiver_key: None,
                data_level_length: None,
                checksum: None,
            }));
            return;
        }
        let Some(_) = self.remote else { return };
        let data_ack = Some(DataSeqWire::Bits64(self.rcv_data_nxt));
        let mut dss = Dss {
            data_ack,
            mapping: None,
            data_fin: false,
        };
        if let Some(payload) = segment.payload.as_ref() {
            let data_seq = self
                .send_data_base
                .wrapping_add(u64::from(segment.relative_seq.wrapping_sub(1)));
            let length = payload.len() as u16;
            dss.mapping = Some(DssMapping {
                data_seq: DataSeqWire::Bits64(data_seq),
                subflow_seq: segment.relative_seq,
                data_level_length: length,
                checksum: self.checksums.then(|| {
                    // Section 3.3.1: pseudo-header with the checksum field zero, then the data.
                    let mut sum =
                        checksum::dss_pseudo_header(data_seq, segment.relative_seq, length, 0);
                    sum.add_bytes(payload.as_ref());
                    sum.finish()
                }),
            });
        } else if flags.contains(TcpFlags::FIN) {
            if let Some(fin) = self.local_data_fin {
                // Section 3.3.3: a DATA_FIN without data maps subflow sequence 0, length 1.
                dss.data_fin = true;
                dss.mapping = Some(DssMapping {
                    data_seq: DataSeqWire::Bits64(fin),
                    subflow_seq: 0,
                    data_level_length: 1,
                    checksum: self
                        .checksums
                        .then(|| checksum::dss_pseudo_header(fin, 0, 1, 0).finish()),
                });
            }
        }
        options.mptcp[0] = Some(MptcpOption::Dss(dss));
        // Keep the option space within 40 bytes: SACK blocks give way to the DSS.
        while options.encoded_len() > 40 && !options.sack_blocks.is_empty() {
            let mut fewer = mpterm_wire::tcp::SackBlocks::default();
            let keep = options.sack_blocks.len() - 1;
            for &(left, right) in &options.sack_blocks.as_slice()[..keep] {
                fewer.push(left, right);
            }
            options.sack_blocks = fewer;
        }
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
