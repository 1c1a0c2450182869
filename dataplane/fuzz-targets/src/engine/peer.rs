//! The harness's peers: what one end of a TCP flow to the engine knows (its own next sequence
//! number, what it has received in order, the engine's timestamp and MPTCP keys), and how it
//! turns a [`SegmentSpec`] into a segment with the right numbers and options.
//!
//! A peer is a recorder, not a TCP implementation: it sends only what the script says, and it
//! takes in only the engine's in-order bytes (like a receiver without an out-of-order queue).

use core::net::SocketAddrV4;

use mpterm_engine::mptcp::expand_data_seq;
use mpterm_engine::mptcp_keys::derive_from_key;
use mpterm_engine::Instant;
use mpterm_wire::checksum::dss_pseudo_header;
use mpterm_wire::mptcp::{self, DataSeqWire, Dss, DssMapping, MpCapable, MptcpOption};
use mpterm_wire::tcp::{SackBlocks, TcpFlags, TcpOptions, TcpRepr, Timestamps};
use mpterm_wire::SeqNumber;

use super::script::{dss_tweak, DssTweak, SegmentSpec};

/// Which end of a proxied connection a peer plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Connects to the listener (MPTCP or plain TCP).
    Client,
    /// Accepts the engine's connection (plain TCP).
    Backend,
}

/// MSS, window scale and SACK-permitted on every SYN a peer sends (Linux's usual choices).
const PEER_MSS: u16 = 1460;
const PEER_WINDOW_SCALE: u8 = 7;

/// The data-level state of an MPTCP client with one subflow (RFC 8684 sections 3.1 and 3.3).
#[derive(Debug, Clone)]
pub struct MptcpPeer {
    pub key: u64,
    pub idsn: u64,
    pub engine_key: Option<u64>,
    pub engine_idsn: u64,
    /// The engine sent a DSS, so it has our key: MP_CAPABLE is no longer repeated
    /// (section 3.1, as Linux does).
    pub confirmed: bool,
    /// The data sequence number of the engine's DATA_FIN, once seen (section 3.3.3).
    pub engine_data_fin: Option<u64>,
}

impl MptcpPeer {
    pub fn new(key: u64) -> MptcpPeer {
        MptcpPeer {
            key,
            idsn: derive_from_key(key).initial_data_seq,
            engine_key: None,
            engine_idsn: 0,
            confirmed: false,
            engine_data_fin: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Peer {
    pub role: Role,
    pub interface: usize,
    pub mac: [u8; 6],
    /// The peer's own address and port.
    pub address: SocketAddrV4,
    /// The engine's end of the flow.
    pub appliance: SocketAddrV4,
    pub iss: SeqNumber,
    pub snd_nxt: SeqNumber,
    /// The engine's ISS, once its SYN has been seen.
    pub engine_iss: Option<SeqNumber>,
    /// The next in-order sequence number expected from the engine.
    pub rcv_nxt: Option<SeqNumber>,
    /// The engine's last timestamp value (RFC 7323 TS.Recent).
    pub ts_recent: u32,
    pub mptcp: Option<MptcpPeer>,
    /// The peer's payload bytes received in order, for the setup's checks.
    pub bytes_received: u64,
}

/// A segment ready to be framed: header fields and options, raw option bytes, payload.
#[derive(Debug)]
pub struct BuiltSegment {
    pub repr: TcpRepr<'static>,
    pub raw_options: Vec<u8>,
    pub payload: Vec<u8>,
}

impl Peer {
    pub fn new(
        role: Role,
        interface: usize,
        mac: [u8; 6],
        address: SocketAddrV4,
        appliance: SocketAddrV4,
        iss: SeqNumber,
        mptcp: Option<MptcpPeer>,
    ) -> Peer {
        Peer {
            role,
            interface,
            mac,
            address,
            appliance,
            iss,
            snd_nxt: iss,
            engine_iss: None,
            rcv_nxt: None,
            ts_recent: 0,
            mptcp,
            bytes_received: 0,
        }
    }

    /// Builds the segment `spec` describes, relative to what this peer knows.
    pub fn build(&self, spec: &SegmentSpec, now: Instant) -> BuiltSegment {
        let flags = TcpFlags(spec.flags ^ TcpFlags::ACK.0);
        let seq = self.snd_nxt + spec.seq_delta as i32 as u32;
        let rcv_nxt = self.rcv_nxt.unwrap_or(SeqNumber(0));
        let ack = rcv_nxt + spec.ack_delta as i32 as u32;
        let payload = match &spec.options.payload_from_input {
            Some(bytes) => bytes.clone(),
            None => self.stream_bytes(seq, usize::from(spec.payload_len)),
        };
        let mut options = TcpOptions::default();
        if flags.contains(TcpFlags::SYN) {
            options.mss = Some(PEER_MSS);
            options.window_scale = Some(PEER_WINDOW_SCALE);
            options.sack_permitted = true;
        }
        if !spec.options.no_timestamps {
            options.timestamps = Some(Timestamps {
                value: self.timestamp(now),
                echo_reply: if flags.contains(TcpFlags::ACK) {
                    self.ts_recent
                } else {
                    0
                },
            });
        }
        let mut sack = SackBlocks::default();
        for &(left_delta, len) in &spec.options.sack {
            let left = rcv_nxt + left_delta as i32 as u32;
            sack.push(left, left + u32::from(len));
        }
        options.sack_blocks = sack;
        if !spec.options.no_mptcp {
            options.mptcp[0] = self.mptcp_option(flags, seq, &payload, spec.options.dss);
        }
        let mut raw_options = Vec::new();
        if let Some((subtype, body)) = &spec.options.extra_mptcp {
            raw_options.extend_from_slice(&[mptcp::OPTION_KIND, 3 + body.len() as u8, *subtype]);
            raw_options.extend_from_slice(body);
        }
        raw_options.extend_from_slice(&spec.options.raw);
        BuiltSegment {
            repr: TcpRepr {
                src_port: self.address.port(),
                dst_port: self.appliance.port(),
                seq,
                ack,
                flags,
                window: u16::MAX - spec.window_reduction,
                options,
            },
            raw_options,
            payload,
        }
    }

    /// Records that `segment` went to the engine: in-order data, SYN and FIN advance the
    /// peer's next sequence number; retransmissions and out-of-order segments do not.
    pub fn sent(&mut self, segment: &BuiltSegment) {
        if segment.repr.seq != self.snd_nxt {
            return;
        }
        let flags = segment.repr.flags;
        let len = segment.payload.len() as u32
            + u32::from(flags.contains(TcpFlags::SYN))
            + u32::from(flags.contains(TcpFlags::FIN));
        self.snd_nxt = self.snd_nxt + len;
    }

    /// Takes in a segment the engine sent to this peer.
    pub fn observe(&mut self, repr: &TcpRepr<'_>, payload_len: usize) {
        let flags = repr.flags;
        if let Some(timestamps) = repr.options.timestamps {
            self.ts_recent = timestamps.value;
        }
        if flags.contains(TcpFlags::RST) {
            return;
        }
        if flags.contains(TcpFlags::SYN) {
            self.engine_iss = Some(repr.seq);
            self.rcv_nxt = Some(repr.seq + 1);
        } else if let Some(rcv_nxt) = self.rcv_nxt {
            let end = repr.seq + (payload_len as u32 + u32::from(flags.contains(TcpFlags::FIN)));
            if repr.seq <= rcv_nxt && rcv_nxt < end {
                let new_bytes = end.distance_from(rcv_nxt) as u64;
                self.bytes_received += new_bytes.min(payload_len as u64);
                self.rcv_nxt = Some(end);
            }
        }
        let reference = self.expected_data_seq();
        let Some(session) = self.mptcp.as_mut() else {
            return;
        };
        for option in repr.options.mptcp.iter().flatten() {
            match option {
                MptcpOption::MpCapable(capable) if flags.contains(TcpFlags::SYN) => {
                    if let Some(key) = capable.sender_key {
                        session.engine_key = Some(key);
                        session.engine_idsn = derive_from_key(key).initial_data_seq;
                    }
                }
                MptcpOption::Dss(dss) => {
                    session.confirmed = true;
                    if let (true, Some(mapping), Some(reference)) =
                        (dss.data_fin, dss.mapping, reference)
                    {
                        let start = expand_data_seq(mapping.data_seq, reference);
                        let length = u64::from(mapping.data_level_length.max(1));
                        session.engine_data_fin = Some(start.wrapping_add(length - 1));
                    }
                }
                _ => {}
            }
        }
    }

    /// The data sequence number this MPTCP peer expects next from the engine (one subflow:
    /// the engine's IDSN plus the subflow bytes received), for DATA_ACK and for expanding
    /// 32-bit DSNs (RFC 8684 section 3.3.1).
    pub fn expected_data_seq(&self) -> Option<u64> {
        let session = self.mptcp.as_ref()?;
        session.engine_key?;
        let received = self.rcv_nxt?.distance_from(self.engine_iss?) as u32;
        let next = session.engine_idsn.wrapping_add(u64::from(received));
        Some(if session.engine_data_fin == Some(next) {
            next.wrapping_add(1)
        } else {
            next
        })
    }

    fn timestamp(&self, now: Instant) -> u32 {
        // Each peer's clock has its own offset, as real hosts' do.
        now.timestamp_millis()
            .wrapping_add(self.iss.0.rotate_left(7))
    }

    /// The peer's byte stream at `seq`: a pattern that differs per peer and per position.
    fn stream_bytes(&self, seq: SeqNumber, len: usize) -> Vec<u8> {
        let start = seq.distance_from(self.iss) as u32;
        let salt = self.address.port() as u8;
        (0..len as u32)
            .map(|i| (start.wrapping_add(i) as u8).wrapping_mul(31) ^ salt)
            .collect()
    }

    /// The usual MPTCP option of a client (RFC 8684 section 3.1 and 3.3), or a DSS changed as
    /// `tweak` says.
    fn mptcp_option(
        &self,
        flags: TcpFlags,
        seq: SeqNumber,
        payload: &[u8],
        tweak: Option<DssTweak>,
    ) -> Option<MptcpOption<'static>> {
        let session = self.mptcp.as_ref()?;
        let capable = MpCapable {
            version: 1,
            checksum_required: true,
            extensibility: false,
            no_new_subflows_to_source: false,
            hmac_sha256: true,
            sender_key: None,
            receiver_key: None,
            data_level_length: None,
            checksum: None,
        };
        if flags.contains(TcpFlags::SYN) {
            return Some(MptcpOption::MpCapable(capable));
        }
        let engine_key = session.engine_key?;
        let relative_seq = seq.distance_from(self.iss) as u32;
        let data_seq = session.idsn.wrapping_add(u64::from(relative_seq));
        let Some(tweak) = tweak else {
            if !session.confirmed {
                // Section 3.1: the third ACK carries both keys, and the first data (until the
                // engine's DSS shows it has our key) a data-level length and checksum.
                let (data_level_length, checksum) = if payload.is_empty() {
                    (None, None)
                } else {
                    let length = payload.len() as u16;
                    let mut sum = dss_pseudo_header(data_seq, relative_seq, length, 0);
                    sum.add_bytes(payload);
                    (Some(length), Some(sum.finish()))
                };
                return Some(MptcpOption::MpCapable(MpCapable {
                    sender_key: Some(session.key),
                    receiver_key: Some(engine_key),
                    data_level_length,
                    checksum,
                    ..capable
                }));
            }
            return Some(MptcpOption::Dss(self.dss(
                flags,
                relative_seq,
                data_seq,
                payload,
                DssTweak::default(),
            )?));
        };
        Some(MptcpOption::Dss(self.dss(
            flags,
            relative_seq,
            data_seq,
            payload,
            tweak,
        )?))
    }

    /// A DSS with DATA_ACK and, for data or a FIN, a checksummed mapping (section 3.3).
    fn dss(
        &self,
        flags: TcpFlags,
        relative_seq: u32,
        data_seq: u64,
        payload: &[u8],
        tweak: DssTweak,
    ) -> Option<Dss> {
        let next_expected = self.expected_data_seq()?;
        let data_ack = next_expected.wrapping_add(tweak.data_ack_delta as i64 as u64);
        let data_ack = if tweak.flags & dss_tweak::NO_DATA_ACK != 0 {
            None
        } else if tweak.flags & dss_tweak::DATA_ACK_64 != 0 {
            Some(DataSeqWire::Bits64(data_ack))
        } else {
            Some(DataSeqWire::Bits32(data_ack as u32))
        };
        let fin = flags.contains(TcpFlags::FIN);
        let data_fin = fin || tweak.flags & dss_tweak::DATA_FIN != 0;
        let wants_mapping =
            !payload.is_empty() || data_fin || tweak.flags & dss_tweak::EMPTY_MAPPING != 0;
        let mapping = (wants_mapping && tweak.flags & dss_tweak::NO_MAPPING == 0).then(|| {
            // Section 3.3.3: a DATA_FIN alone is mapped to subflow sequence 0, length 1.
            let (subflow_seq, length) = if payload.is_empty() && data_fin {
                (0, 1)
            } else {
                (relative_seq, payload.len() as u16 + u16::from(data_fin))
            };
            let data_seq = data_seq.wrapping_add(tweak.data_seq_delta as i64 as u64);
            let subflow_seq = subflow_seq.wrapping_add(tweak.subflow_seq_delta as i32 as u32);
            let length = length.wrapping_add(tweak.length_delta as i16 as u16);
            let mut sum = dss_pseudo_header(data_seq, subflow_seq, length, 0);
            sum.add_bytes(payload);
            let mut checksum = sum.finish();
            if tweak.flags & dss_tweak::BAD_CHECKSUM != 0 {
                checksum ^= 0x0101;
            }
            DssMapping {
                data_seq: if tweak.flags & dss_tweak::DATA_SEQ_32 != 0 {
                    DataSeqWire::Bits32(data_seq as u32)
                } else {
                    DataSeqWire::Bits64(data_seq)
                },
                subflow_seq,
                data_level_length: length,
                checksum: (tweak.flags & dss_tweak::NO_CHECKSUM == 0).then_some(checksum),
            }
        });
        Some(Dss {
            data_ack,
            mapping,
            data_fin,
        })
    }
}
