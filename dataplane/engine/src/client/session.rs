//! The data level of one MPTCP connection in the client role (RFC 8684 section 3): both keys,
//! the data sequence numbers of each direction, the server's mappings and DATA_FIN.
//!
//! One subflow only, so the data sequence follows the subflow sequence: our relative subflow
//! sequence number `r` carries data sequence number IDSN + r. What the server sends is
//! assembled and verified by the engine's [`MappingAssembly`]; received options are read in
//! `options.rs`, ours are written in `decorate.rs`.

use mpterm_wire::mptcp::MpCapable;
use mpterm_wire::mptcp::MptcpOption;
use mpterm_wire::tcp::TcpRepr;
use mpterm_wire::SeqNumber;

use super::ready::ReadyQueue;
use crate::mptcp::{MappingAssembly, MptcpError, ResetReason};
use crate::mptcp_keys::{derive_from_key, KeyDerivation};
use crate::tcp::ReceivedChunk;
use crate::Payload;

/// Data-level state of one client connection.
#[derive(Debug)]
pub(crate) struct ClientSession<P: Payload> {
    pub(super) local_key: u64,
    local: KeyDerivation,
    /// The server's key, from its SYN-ACK (section 3.1).
    pub(super) remote_key: Option<u64>,
    /// DSS checksums: asked for by us, or turned on by the server's A bit.
    pub(super) checksums: bool,
    /// The server has shown that it holds our key: a DATA_ACK at its first sequence number
    /// (Linux's `check_fully_established`). Until then our segments at our first sequence
    /// number carry MP_CAPABLE with both keys.
    pub(super) fully_established: bool,
    /// The connection is plain TCP from here on (section 3.7).
    pub(super) fallen_back: bool,
    /// Our ISN + 1: the third ACK, the first data and their retransmissions start here.
    pub(super) first_seq: SeqNumber,
    /// The server's ISN + 1, known with its SYN-ACK.
    pub(super) server_first_seq: SeqNumber,
    /// Send the DATA_ACK in 64 bits: the server's last mapping used 64 bits (as Linux does,
    /// `get_mapping_status`).
    pub(super) use_64bit_ack: bool,

    // Receive direction (server to us).
    /// The next data sequence number expected: our DATA_ACK.
    pub(super) rcv_data_nxt: u64,
    pub(super) assembly: MappingAssembly<P>,
    /// The data sequence number of the server's DATA_FIN, once announced.
    peer_data_fin: Option<u64>,
    peer_data_fin_reached: bool,

    // Send direction (us to the server).
    /// Data sequence number of our first data byte: IDSN + 1 (section 3.3).
    pub(super) send_data_base: u64,
    /// The data sequence number after the last byte queued.
    pub(super) send_data_end: u64,
    /// Highest DATA_ACK received.
    pub(super) snd_data_una: u64,
    /// Data sequence number of our DATA_FIN once the application closed.
    pub(super) local_data_fin: Option<u64>,

    /// Our RST carries MP_FASTCLOSE (section 3.5): the application aborted, or we answer the
    /// server's MP_FASTCLOSE, as Linux does.
    pub(super) fast_close: bool,
    /// What the MP_TCPRST of our RST says (section 3.6).
    pub(super) reset_reason: ResetReason,
}

impl<P: Payload> ClientSession<P> {
    /// A session for a connection whose SYN asks for MPTCP v1 with our key `local_key` (its
    /// token already claimed); `first_seq` is our ISN + 1.
    pub(crate) fn new(
        local_key: u64,
        local: KeyDerivation,
        checksums: bool,
        first_seq: SeqNumber,
    ) -> Self {
        let send_data_base = local.initial_data_seq.wrapping_add(1);
        ClientSession {
            local_key,
            local,
            remote_key: None,
            checksums,
            fully_established: false,
            fallen_back: false,
            first_seq,
            server_first_seq: SeqNumber(0),
            use_64bit_ack: false,
            rcv_data_nxt: 0,
            assembly: MappingAssembly::new(),
            peer_data_fin: None,
            peer_data_fin_reached: false,
            send_data_base,
            send_data_end: send_data_base,
            snd_data_una: send_data_base,
            local_data_fin: None,
            fast_close: false,
            reset_reason: ResetReason::Unspecified,
        }
    }

    pub(crate) fn token(&self) -> u32 {
        self.local.token
    }

    pub(crate) fn has_fallen_back(&self) -> bool {
        self.fallen_back
    }

    /// The server accepted MPTCP and the connection has not fallen back.
    pub(crate) fn is_mptcp(&self) -> bool {
        self.remote_key.is_some() && !self.fallen_back
    }

    pub(crate) fn is_fully_established(&self) -> bool {
        self.fully_established
    }

    pub(crate) fn checksums_enabled(&self) -> bool {
        self.checksums
    }

    /// Section 3.1: the SYN-ACK of an MPTCP server carries MP_CAPABLE version 1 with its key;
    /// checksums are on when either side set A. Anything else (no MP_CAPABLE, another version,
    /// no key) is a server that answers as plain TCP: fall back. Returns true for MPTCP.
    pub(crate) fn handle_syn_ack(&mut self, syn_ack: &TcpRepr<'_>) -> bool {
        let capable = syn_ack
            .options
            .mptcp
            .iter()
            .flatten()
            .find_map(|option| match option {
                MptcpOption::MpCapable(capable) => Some(*capable),
                _ => None,
            });
        match capable {
            Some(MpCapable {
                version: 1,
                sender_key: Some(key),
                receiver_key: None,
                checksum_required,
                ..
            }) => {
                self.remote_key = Some(key);
                self.checksums |= checksum_required;
                self.server_first_seq = syn_ack.seq + 1;
                // Section 3.3: the server's first data byte is its IDSN + 1.
                self.rcv_data_nxt = derive_from_key(key).initial_data_seq.wrapping_add(1);
                true
            }
            _ => {
                self.fallen_back = true;
                false
            }
        }
    }

    /// Bytes held for a mapping whose checksum is not verified yet.
    pub(crate) fn held_bytes(&self) -> usize {
        self.assembly.held_bytes()
    }

    /// The server's DATA_FIN was reached: its stream ended.
    pub(crate) fn peer_finished(&self) -> bool {
        self.peer_data_fin_reached
    }

    /// Takes in-order subflow payload into the data level; verified data goes to `ready` in
    /// data-sequence order. Returns true when the server's DATA_FIN was reached with it.
    pub(crate) fn handle_subflow_data(
        &mut self,
        chunk: ReceivedChunk<P>,
        ready: &mut ReadyQueue<P>,
    ) -> Result<bool, MptcpError> {
        if self.fallen_back {
            self.rcv_data_nxt = self.rcv_data_nxt.wrapping_add(chunk.payload.len() as u64);
            ready.push(chunk.payload);
            return Ok(false);
        }
        self.assembly.add(chunk, self.checksums)?;
        while let Some((data_seq, payload)) = self.assembly.pop_released() {
            self.deliver_in_data_order(data_seq, payload, ready)?;
        }
        let announced = self
            .assembly
            .take_verified_data_fin()
            .is_some_and(|fin| self.announce_peer_data_fin(fin));
        Ok(announced || self.try_reach_peer_data_fin())
    }

    /// Section 3.3.1: bytes already received at the data level are trimmed; with one subflow
    /// a gap cannot occur, so one is a mapping error, never a silent loss.
    fn deliver_in_data_order(
        &mut self,
        data_seq: u64,
        payload: P,
        ready: &mut ReadyQueue<P>,
    ) -> Result<(), MptcpError> {
        let end = data_seq.wrapping_add(payload.len() as u64);
        if !data_seq_after(end, self.rcv_data_nxt) {
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
        ready.push(payload);
        Ok(())
    }

    /// Section 3.3.3: the server's DATA_FIN takes data sequence number `fin`; the first one
    /// announced counts (as Linux's `mptcp_update_rcv_data_fin`), and one before data already
    /// received cannot end the stream. Returns true when it is reached with this call.
    pub(super) fn announce_peer_data_fin(&mut self, fin: u64) -> bool {
        if self.peer_data_fin.is_none() {
            if data_seq_after(self.rcv_data_nxt, fin) {
                return false;
            }
            self.peer_data_fin = Some(fin);
        }
        self.try_reach_peer_data_fin()
    }

    fn try_reach_peer_data_fin(&mut self) -> bool {
        match self.peer_data_fin {
            Some(fin) if !self.peer_data_fin_reached && fin == self.rcv_data_nxt => {
                // The DATA_FIN takes one data sequence number: our DATA_ACK covers it.
                self.rcv_data_nxt = fin.wrapping_add(1);
                self.peer_data_fin_reached = true;
                true
            }
            _ => false,
        }
    }

    /// The subflow's FIN with everything delivered ends the server's stream too when it sent
    /// no DATA_FIN: with one subflow nothing more can come (a lenient reading of section
    /// 3.3.3, as the server engine reads it). Returns true when that reached the end.
    pub(crate) fn peer_closed_subflow(&mut self) -> bool {
        if self.peer_data_fin.is_none() && self.assembly.held_bytes() == 0 {
            self.peer_data_fin = Some(self.rcv_data_nxt);
            return self.try_reach_peer_data_fin();
        }
        false
    }

    /// The application queued `bytes` more.
    pub(crate) fn note_queued(&mut self, bytes: usize) {
        self.send_data_end = self.send_data_end.wrapping_add(bytes as u64);
    }

    /// The application closed: the DATA_FIN takes the data sequence number after the last
    /// byte queued (section 3.3.3).
    pub(crate) fn close(&mut self) {
        self.local_data_fin.get_or_insert(self.send_data_end);
    }

    /// Our data bytes the server has acknowledged at the data level.
    pub(crate) fn bytes_acked(&self) -> u64 {
        let queued = self.send_data_end.wrapping_sub(self.send_data_base);
        self.snd_data_una
            .wrapping_sub(self.send_data_base)
            .min(queued)
    }

    /// Our RST is to carry MP_FASTCLOSE (section 3.5): only once the server's key is known
    /// and while MPTCP is in use. Returns whether it will.
    pub(crate) fn start_fast_close(&mut self) -> bool {
        self.fast_close = self.remote_key.is_some() && !self.fallen_back;
        self.fast_close
    }

    pub(crate) fn set_reset_reason(&mut self, reason: ResetReason) {
        self.reset_reason = reason;
    }
}

/// True when `a` is after `b` in the 64-bit data sequence space, across wrap-around.
pub(super) fn data_seq_after(a: u64, b: u64) -> bool {
    (a.wrapping_sub(b) as i64) > 0
}
