//! The whole-engine simulation harness: see `tests/engine_sim.rs`.

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use bytes::Bytes;
use mpterm_engine::mptcp::expand_data_seq;
use mpterm_engine::mptcp_keys::derive_from_key;
use mpterm_engine::tcp::{OutgoingSegment, Tcb, TcpState};
use mpterm_engine::{Engine, EngineConfig, Instant, InterfaceConfig, ProxyRule, TokenRegistry};
use mpterm_wire::arp::{ArpOperation, ArpRepr};
use mpterm_wire::checksum::dss_pseudo_header;
use mpterm_wire::ethernet::{self, EthernetAddress, EthernetRepr};
use mpterm_wire::icmp_error::{IcmpErrorKind, IcmpErrorRepr, QuotedTcp};
use mpterm_wire::ipv4::{self, Ipv4Repr};
use mpterm_wire::mptcp::{DataSeqWire, Dss, DssMapping, MpCapable, MpTcpRst, MptcpOption};
use mpterm_wire::tcp::{SackBlocks, TcpFlags, TcpRepr};
use mpterm_wire::SeqNumber;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{
    decode_segment, encode_segment, parse_frame, sha256, tcp_frame, tuning, App, Buf, Link,
    LinkConfig, Parsed,
};

pub const KIB: usize = 1024;
pub const CLIENT_SIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
pub const BACKEND_SIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
pub const BACKEND_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x20];
pub const APPLIANCE_CLIENT_SIDE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub const APPLIANCE_BACKEND_SIDE: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The router of [`Net::client_path_mtu`], on the client's path.
pub const ROUTER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
pub const BACKEND: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 2), 6000);
pub const LISTEN: SocketAddrV4 = SocketAddrV4::new(APPLIANCE_CLIENT_SIDE, 5000);
pub const ONE_WAY_DELAY: Duration = Duration::from_millis(5);
pub const VIRTUAL_TIME_LIMIT: Duration = Duration::from_secs(3600);
pub const CLIENT_KEY: u64 = 0x0123_4567_89ab_cdef;

#[derive(Debug, Default)]
pub struct Tokens {
    pub registered: Vec<u32>,
}

impl TokenRegistry for Tokens {
    fn try_register(&mut self, token: u32, _connection_id: u64) -> bool {
        if self.registered.contains(&token) {
            return false;
        }
        self.registered.push(token);
        true
    }

    fn release(&mut self, token: u32) {
        self.registered.retain(|t| *t != token);
    }
}

pub fn config() -> EngineConfig {
    EngineConfig {
        interfaces: vec![
            InterfaceConfig {
                mac: CLIENT_SIDE_MAC,
                address: APPLIANCE_CLIENT_SIDE,
                prefix_len: 24,
                gateway: None,
                mtu: 1500,
                ipv6: None,
            },
            InterfaceConfig {
                mac: BACKEND_SIDE_MAC,
                address: APPLIANCE_BACKEND_SIDE,
                prefix_len: 24,
                gateway: None,
                mtu: 1500,
                ipv6: None,
            },
        ],
        proxies: vec![ProxyRule {
            listen: LISTEN.into(),
            backend: BACKEND,
            scheduler: mpterm_engine::scheduler::SchedulerKind::default(),
        }],
        client_tcp: tuning(),
        backend_tcp: tuning(),
        mptcp_checksum_required: true,
        max_connections: 8,
        max_time_wait: 1024,
        mptcp_max_subflows: 8,
        mptcp_allow_join_initial_address: true,
        time_wait_reuse: true,
        local_ports: 49152..=65535,
    }
}

/// The MPTCP side of the simulated client (RFC 8684 with one subflow): adds MP_CAPABLE to
/// the SYN and the third ACK, a DSS with a checksummed mapping to every data segment and a
/// DATA_ACK to every segment, and checks the mappings of what it receives.
#[derive(Debug)]
pub struct MptcpClient {
    pub local_idsn: u64,
    pub remote_key: Option<u64>,
    pub remote_idsn: u64,
    /// Data-level bytes received in order (single subflow: the subflow bytes).
    pub received: u64,
    /// The engine's mappings whose checksum was verified.
    pub verified_mappings: u64,
    /// Mappings that spanned several segments (the engine cut a unit for a smaller path
    /// MTU), verified once all their bytes had come: their checksum covers all of them.
    pub verified_spanning_mappings: u64,
    /// Spanning mappings being filled in: subflow sequence of their start, data sequence,
    /// checksum, their bytes and which of them came.
    pub spanning: Vec<SpanningMapping>,
    /// The index of the mapping whose checksum is corrupted (to test the engine's check);
    /// mapping 0 rides on MP_CAPABLE, the later ones on DSS.
    pub corrupt_mapping: Option<u32>,
    pub mappings_sent: u32,
    /// The engine sent a DSS: it has our key, MP_CAPABLE is no longer needed (section 3.1).
    pub confirmed: bool,
    /// The client subflow's ISN, to place the DATA_FIN after the last data byte.
    pub client_iss: SeqNumber,
    /// The engine's DATA_FIN, once seen (section 3.3.3).
    pub remote_data_fin: Option<u64>,
    /// The client fell back to TCP, as Linux does when a segment of the engine at its ISN + 1
    /// carries no MPTCP option before the connection is fully established
    /// (`check_fully_established`, MPCapableDataFallback).
    pub fell_back: bool,
    /// The highest DATA_ACK the engine sent, as a count of our data-level bytes.
    pub data_acked: u64,
    /// When an MP_FASTCLOSE carrying our key arrived (the client then resets, as Linux does).
    pub fast_close_received_at: Option<Instant>,
    /// MP_FASTCLOSE options with another key.
    pub foreign_fast_closes: u64,
    /// The MP_TCPRST options on the engine's RSTs.
    pub reset_reasons: Vec<MpTcpRst>,
    /// Our own RSTs carry MP_FASTCLOSE (the client fast-closes).
    pub fast_closing: bool,
    /// The next pure ACK carries MP_FASTCLOSE with this key (the client application aborts
    /// the connection; a test may give a wrong key).
    pub send_fast_close_with: Option<u64>,
    /// Linux's MPTCP-level retransmission timer (`mptcp_retransmit_timer`, 200 ms at least):
    /// counts how often it would have sent data again because the DATA_ACK stalled behind the
    /// subflow's acknowledgements (the MPTcpExt counter MPTCPRetrans).
    pub data_level_retransmissions: u64,
    /// Since when the DATA_ACK has lagged behind the subflow's acknowledgements.
    pub data_ack_stalled_since: Option<Instant>,
    /// The client's first mapping, when it spans several segments: Linux maps its first write
    /// whole and repeats MP_CAPABLE, with that mapping, on every segment of it until the
    /// connection is fully established (seen in the lab: five segments of the first 8 KiB).
    pub first_mapping: Option<Bytes>,
    /// Answer the engine's MP_FAIL as Linux does on its only subflow
    /// (`mptcp_pm_mp_fail_received`, RFC 8684 section 3.7): MP_FAIL back on the next pure
    /// ACK, the infinite mapping on the next new data segment, then plain TCP. When false,
    /// the client ignores it, as Linux does where it may not fall back.
    pub answers_mp_fail: bool,
    /// MP_FAIL options the engine sent (on ACKs).
    pub mp_fail_received: u32,
    /// Our MP_FAIL answer waits for a pure ACK.
    pub mp_fail_answer_pending: Option<u64>,
    /// Our infinite mapping waits for the next new data segment.
    pub infinite_mapping_pending: bool,
    pub infinite_mappings_sent: u32,
    /// Pretend the engine's mapping with this index (counting from 0) failed its checksum,
    /// as Linux does when a middlebox rewrote it: MP_FAIL on the next pure ACK, the data
    /// delivered all the same (`subflow_check_data_avail`), then wait for the infinite
    /// mapping.
    pub fail_engine_mapping: Option<u64>,
    /// We sent MP_FAIL ourselves: the engine's MP_FAIL is its answer.
    pub sent_mp_fail: bool,
    /// Infinite mappings from the engine (Linux's InfiniteMapRx).
    pub infinite_mappings_received: u32,
}

/// Linux's smallest MPTCP-level retransmission timeout (`TCP_RTO_MIN`).
pub const DATA_LEVEL_RTO: Duration = Duration::from_millis(200);

impl MptcpClient {
    pub fn new(corrupt_mapping: Option<u32>, client_iss: SeqNumber) -> MptcpClient {
        MptcpClient {
            local_idsn: derive_from_key(CLIENT_KEY).initial_data_seq,
            remote_key: None,
            remote_idsn: 0,
            received: 0,
            verified_mappings: 0,
            verified_spanning_mappings: 0,
            spanning: Vec::new(),
            corrupt_mapping,
            mappings_sent: 0,
            confirmed: false,
            client_iss,
            remote_data_fin: None,
            fell_back: false,
            data_acked: 0,
            fast_close_received_at: None,
            foreign_fast_closes: 0,
            reset_reasons: Vec::new(),
            fast_closing: false,
            send_fast_close_with: None,
            data_level_retransmissions: 0,
            data_ack_stalled_since: None,
            first_mapping: None,
            answers_mp_fail: false,
            mp_fail_received: 0,
            mp_fail_answer_pending: None,
            infinite_mapping_pending: false,
            infinite_mappings_sent: 0,
            fail_engine_mapping: None,
            sent_mp_fail: false,
            infinite_mappings_received: 0,
        }
    }

    /// One subflow: data sequence = IDSN + relative subflow sequence (section 3.3).
    pub fn data_seq(&self, relative_seq: u32) -> u64 {
        self.local_idsn.wrapping_add(u64::from(relative_seq))
    }

    /// The data-level length and DSS checksum (section 3.3.1) of a mapping covering exactly
    /// `payload` at `relative_seq`; one is corrupted when the test asks for it.
    pub fn mapping_checksum(&mut self, relative_seq: u32, payload: &[u8]) -> (u16, u16) {
        let length = payload.len() as u16;
        let mut sum = dss_pseudo_header(self.data_seq(relative_seq), relative_seq, length, 0);
        sum.add_bytes(payload);
        let mut checksum = sum.finish();
        if self.corrupt_mapping == Some(self.mappings_sent) {
            checksum ^= 0x0101;
        }
        self.mappings_sent += 1;
        (length, checksum)
    }

    pub fn decorate(&mut self, segment: &mut OutgoingSegment<Buf>) {
        let flags = segment.repr.flags;
        if flags.contains(TcpFlags::SYN) {
            segment.repr.options.mptcp[0] = Some(MptcpOption::MpCapable(MpCapable {
                version: 1,
                checksum_required: true,
                extensibility: false,
                no_new_subflows_to_source: false,
                hmac_sha256: true,
                sender_key: None,
                receiver_key: None,
                data_level_length: None,
                checksum: None,
            }));
            return;
        }
        let Some(remote_key) = self.remote_key else {
            return;
        };
        if self.fell_back {
            return;
        }
        if flags.contains(TcpFlags::RST) {
            if self.fast_closing {
                // Linux's fast close: RST with MP_FASTCLOSE and MP_TCPRST.
                segment.repr.options.mptcp = [
                    Some(MptcpOption::MpFastclose {
                        receiver_key: remote_key,
                    }),
                    Some(MptcpOption::MpTcpRst(MpTcpRst {
                        flags: 0,
                        reason: 0,
                    })),
                ];
            }
            return;
        }
        if self.infinite_mapping_pending
            && segment.payload.is_some()
            && !segment.is_retransmission
            && !flags.contains(TcpFlags::FIN)
        {
            // Linux's `mptcp_update_infinite_map`: the new data segment's own mapping with a
            // data-level length of 0 (and checksum 0), then fallback.
            self.infinite_mapping_pending = false;
            self.infinite_mappings_sent += 1;
            segment.repr.options.mptcp[0] = Some(MptcpOption::Dss(Dss {
                data_ack: None,
                mapping: Some(DssMapping {
                    data_seq: DataSeqWire::Bits64(self.data_seq(segment.relative_seq)),
                    subflow_seq: segment.relative_seq,
                    data_level_length: 0,
                    checksum: Some(0),
                }),
                data_fin: false,
            }));
            self.fell_back = true;
            return;
        }
        if segment.payload.is_none() && !flags.contains(TcpFlags::FIN) {
            if let Some(data_seq) = self.mp_fail_answer_pending.take() {
                let next = self.remote_idsn.wrapping_add(1 + self.received);
                segment.repr.options.mptcp = [
                    Some(MptcpOption::Dss(Dss {
                        data_ack: Some(DataSeqWire::Bits64(next)),
                        mapping: None,
                        data_fin: false,
                    })),
                    Some(MptcpOption::MpFail { data_seq }),
                ];
                segment.repr.options.sack_blocks = SackBlocks::default();
                return;
            }
            if let Some(receiver_key) = self.send_fast_close_with.take() {
                segment.repr.options.mptcp[0] = Some(MptcpOption::MpFastclose { receiver_key });
                return;
            }
        }
        if let Some(first) = self.first_mapping.clone() {
            if segment.payload.is_some() && segment.relative_seq < 1 + first.len() as u32 {
                self.decorate_in_first_mapping(segment, &first, remote_key);
                return;
            }
        }
        // Linux sends MP_CAPABLE only on the segments at its ISN + 1 (the third ACK, the first
        // data and their retransmissions), until the connection is fully established
        // (`mptcp_established_options_mp`).
        let at_first_sequence = segment.repr.seq == self.client_iss + 1;
        if !self.confirmed && at_first_sequence {
            // RFC 8684 section 3.1: the third ACK carries both keys. When data is ready at
            // once it rides on that segment with a data-level length and checksum, mapped to
            // IDSN + 1 at subflow sequence 1. Like Linux, the client repeats MP_CAPABLE on
            // ACKs and on (re)transmissions of the first data until the server's DSS shows
            // it has the keys; later data carries DSS mappings.
            let (data_level_length, checksum) = match segment.payload.as_ref() {
                Some(payload) => {
                    let (length, checksum) =
                        self.mapping_checksum(segment.relative_seq, &payload.0);
                    (Some(length), Some(checksum))
                }
                None => (None, None),
            };
            segment.repr.options.mptcp[0] = Some(MptcpOption::MpCapable(MpCapable {
                version: 1,
                checksum_required: true,
                extensibility: false,
                no_new_subflows_to_source: false,
                hmac_sha256: true,
                sender_key: Some(CLIENT_KEY),
                receiver_key: Some(remote_key),
                data_level_length,
                checksum,
            }));
            return;
        }
        // Section 3.3.2: the next data sequence number expected; a DATA_FIN counts as one.
        let mut next = self.remote_idsn.wrapping_add(1 + self.received);
        if self.remote_data_fin == Some(next) {
            next = next.wrapping_add(1);
        }
        let data_ack = Some(DataSeqWire::Bits32(next as u32));
        if segment.repr.flags.contains(TcpFlags::FIN) {
            // Section 3.3.3: the DATA_FIN rides on the subflow FIN, mapped to subflow
            // sequence 0 with length 1, right after the last data byte.
            let relative_fin = segment.repr.seq.distance_from(self.client_iss) as u32;
            let fin = self.data_seq(relative_fin);
            segment.repr.options.mptcp[0] = Some(MptcpOption::Dss(Dss {
                data_ack,
                mapping: Some(DssMapping {
                    data_seq: DataSeqWire::Bits64(fin),
                    subflow_seq: 0,
                    data_level_length: 1,
                    checksum: Some(dss_pseudo_header(fin, 0, 1, 0).finish()),
                }),
                data_fin: true,
            }));
            return;
        }
        let mapping = segment.payload.as_ref().map(|payload| {
            let (length, checksum) = self.mapping_checksum(segment.relative_seq, &payload.0);
            DssMapping {
                data_seq: DataSeqWire::Bits64(self.data_seq(segment.relative_seq)),
                subflow_seq: segment.relative_seq,
                data_level_length: length,
                checksum: Some(checksum),
            }
        });
        segment.repr.options.mptcp[0] = Some(MptcpOption::Dss(Dss {
            data_ack,
            mapping,
            data_fin: false,
        }));
        // A pure ACK may carry SACK blocks up to the full option space: keep as many as fit
        // next to the DSS.
        while segment.repr.options.encoded_len() > mpterm_wire::tcp::MAX_OPTIONS_LEN {
            let blocks = segment.repr.options.sack_blocks;
            let mut fewer = SackBlocks::default();
            for &(left, right) in &blocks.as_slice()[..blocks.len().saturating_sub(1)] {
                fewer.push(left, right);
            }
            assert!(!blocks.is_empty(), "options do not fit: {:?}", segment.repr);
            segment.repr.options.sack_blocks = fewer;
        }
    }

    /// A data segment inside the first mapping: MP_CAPABLE with both keys and the whole
    /// mapping while the connection is not fully established, the same mapping in a DSS after.
    fn decorate_in_first_mapping(
        &mut self,
        segment: &mut OutgoingSegment<Buf>,
        first: &Bytes,
        remote_key: u64,
    ) {
        let length = first.len() as u16;
        let mut sum = dss_pseudo_header(self.data_seq(1), 1, length, 0);
        sum.add_bytes(first);
        let checksum = sum.finish();
        segment.repr.options.mptcp[0] = Some(if self.confirmed {
            MptcpOption::Dss(Dss {
                data_ack: Some(DataSeqWire::Bits64(
                    self.remote_idsn.wrapping_add(1 + self.received),
                )),
                mapping: Some(DssMapping {
                    data_seq: DataSeqWire::Bits64(self.data_seq(1)),
                    subflow_seq: 1,
                    data_level_length: length,
                    checksum: Some(checksum),
                }),
                data_fin: false,
            })
        } else {
            MptcpOption::MpCapable(MpCapable {
                version: 1,
                checksum_required: true,
                extensibility: false,
                no_new_subflows_to_source: false,
                hmac_sha256: true,
                sender_key: Some(CLIENT_KEY),
                receiver_key: Some(remote_key),
                data_level_length: Some(length),
                checksum: Some(checksum),
            })
        });
    }

    /// Looks at a segment from the engine before the client's TCB takes it; `engine_iss` is
    /// the engine's ISN toward the client (known once the SYN-ACK arrived).
    pub fn observe(
        &mut self,
        now: Instant,
        repr: &TcpRepr<'_>,
        payload: Option<&Buf>,
        engine_iss: SeqNumber,
    ) {
        if self.fell_back {
            return;
        }
        let syn = repr.flags.contains(TcpFlags::SYN);
        let options = repr.options.mptcp.iter().flatten();
        if !syn && !self.confirmed && self.remote_key.is_some() && repr.seq == engine_iss + 1 {
            // `check_fully_established` on the client: a DATA_ACK makes the connection fully
            // established; a segment with no MPTCP option at all makes it fall back.
            let data_ack = options
                .clone()
                .any(|option| matches!(option, MptcpOption::Dss(dss) if dss.data_ack.is_some()));
            let capable = options
                .clone()
                .any(|option| matches!(option, MptcpOption::MpCapable(_)));
            if data_ack {
                self.confirmed = true;
            } else if !capable && !repr.flags.contains(TcpFlags::RST) {
                self.fell_back = true;
                return;
            }
        }
        for option in repr.options.mptcp.iter().flatten() {
            match option {
                MptcpOption::MpFastclose { receiver_key } => {
                    if *receiver_key == CLIENT_KEY {
                        self.fast_close_received_at.get_or_insert(now);
                    } else {
                        self.foreign_fast_closes += 1;
                    }
                }
                MptcpOption::MpTcpRst(reset) => self.reset_reasons.push(*reset),
                MptcpOption::MpFail { data_seq } if !repr.flags.contains(TcpFlags::RST) => {
                    self.mp_fail_received += 1;
                    if self.answers_mp_fail
                        && !self.sent_mp_fail
                        && self.infinite_mappings_sent == 0
                    {
                        self.mp_fail_answer_pending = Some(*data_seq);
                        self.infinite_mapping_pending = true;
                    }
                }
                MptcpOption::Dss(Dss {
                    data_ack: Some(ack),
                    ..
                }) => {
                    let ack = expand_data_seq(*ack, self.local_idsn.wrapping_add(1));
                    let acked = ack.wrapping_sub(self.local_idsn.wrapping_add(1));
                    if acked < 1 << 40 {
                        self.data_acked = self.data_acked.max(acked);
                    }
                }
                _ => {}
            }
        }
        for option in repr.options.mptcp.iter().flatten() {
            match option {
                MptcpOption::MpCapable(capable) if repr.flags.contains(TcpFlags::SYN) => {
                    assert_eq!(capable.version, 1);
                    assert!(capable.checksum_required, "checksums were asked for");
                    let key = capable.sender_key.expect("the SYN-ACK carries the key");
                    self.remote_key = Some(key);
                    self.remote_idsn = derive_from_key(key).initial_data_seq;
                }
                MptcpOption::Dss(Dss {
                    mapping: Some(mapping),
                    data_fin,
                    ..
                }) => {
                    if *data_fin {
                        let start = expand_data_seq(mapping.data_seq, self.remote_idsn);
                        let fin = start.wrapping_add(u64::from(mapping.data_level_length) - 1);
                        self.remote_data_fin = Some(fin);
                    }
                    let Some(payload) = payload else { continue };
                    if mapping.data_level_length == 0 {
                        // Section 3.7: the engine's infinite mapping; plain TCP from here.
                        self.infinite_mappings_received += 1;
                        self.fell_back = true;
                        continue;
                    }
                    if usize::from(mapping.data_level_length) != payload.0.len() {
                        let relative = repr.seq.distance_from(engine_iss) as u32;
                        self.note_spanning_piece(mapping, relative, &payload.0);
                        continue;
                    }
                    if self.fail_engine_mapping == Some(self.verified_mappings) {
                        let data_seq = expand_data_seq(mapping.data_seq, self.remote_idsn);
                        self.mp_fail_answer_pending = Some(data_seq);
                        self.sent_mp_fail = true;
                    }
                    let data_seq = expand_data_seq(mapping.data_seq, self.remote_idsn);
                    let checksum = mapping.checksum.expect("checksums are in use");
                    let mut sum = dss_pseudo_header(
                        data_seq,
                        mapping.subflow_seq,
                        mapping.data_level_length,
                        checksum,
                    );
                    sum.add_bytes(&payload.0);
                    assert_eq!(sum.finish(), 0, "the engine's DSS checksum verifies");
                    // One subflow: the mapping maps subflow bytes one to one.
                    assert_eq!(
                        data_seq.wrapping_sub(self.remote_idsn),
                        u64::from(mapping.subflow_seq),
                        "data sequence follows the subflow sequence"
                    );
                    self.verified_mappings += 1;
                }
                _ => {}
            }
        }
    }
}

/// A DSS mapping that spans several segments, assembled as its pieces arrive.
#[derive(Debug)]
pub struct SpanningMapping {
    pub subflow_seq: u32,
    pub data_seq: u64,
    pub checksum: u16,
    pub bytes: Vec<u8>,
    pub arrived: Vec<bool>,
}

impl MptcpClient {
    /// A segment carrying `payload` at relative sequence `relative` under a mapping longer
    /// than itself: the mapping must cover it and be the same on every piece (RFC 8684
    /// section 3.3.1, as Linux's `get_mapping_status` insists); once every byte came, the
    /// checksum over all of them must verify.
    fn note_spanning_piece(&mut self, mapping: &DssMapping, relative: u32, payload: &[u8]) {
        let data_seq = expand_data_seq(mapping.data_seq, self.remote_idsn);
        let length = u32::from(mapping.data_level_length);
        let offset = relative.wrapping_sub(mapping.subflow_seq);
        assert!(
            offset < length && offset + payload.len() as u32 <= length,
            "a piece lies inside its mapping"
        );
        assert_eq!(
            data_seq.wrapping_sub(self.remote_idsn),
            u64::from(mapping.subflow_seq),
            "data sequence follows the subflow sequence"
        );
        let checksum = mapping.checksum.expect("checksums are in use");
        let index = match self
            .spanning
            .iter()
            .position(|span| span.subflow_seq == mapping.subflow_seq)
        {
            Some(index) => {
                let span = &self.spanning[index];
                assert_eq!(
                    (span.data_seq, span.checksum, span.bytes.len() as u32),
                    (data_seq, checksum, length),
                    "every piece repeats the same mapping"
                );
                index
            }
            None => {
                self.spanning.push(SpanningMapping {
                    subflow_seq: mapping.subflow_seq,
                    data_seq,
                    checksum,
                    bytes: vec![0; length as usize],
                    arrived: vec![false; length as usize],
                });
                self.spanning.len() - 1
            }
        };
        let span = &mut self.spanning[index];
        let range = offset as usize..offset as usize + payload.len();
        span.bytes[range.clone()].copy_from_slice(payload);
        span.arrived[range].fill(true);
        if span.arrived.iter().all(|&arrived| arrived) {
            let span = self.spanning.swap_remove(index);
            let mut sum = dss_pseudo_header(
                span.data_seq,
                span.subflow_seq,
                span.bytes.len() as u16,
                span.checksum,
            );
            sum.add_bytes(&span.bytes);
            assert_eq!(sum.finish(), 0, "a spanning mapping's checksum verifies");
            self.verified_spanning_mappings += 1;
        }
    }
}

/// The ARP reply of the host the harness plays on `interface` (the client on 0, the backend
/// on 1) to the engine's `request`, if it asks for that host.
pub fn arp_reply_for(interface: usize, request: &ArpRepr) -> Option<Vec<u8>> {
    let (host_mac, host_ip) = match interface {
        0 => (CLIENT_MAC, CLIENT_IP),
        _ => (BACKEND_MAC, *BACKEND.ip()),
    };
    if request.operation != ArpOperation::Request || request.target_ip != host_ip {
        return None;
    }
    let reply = ArpRepr {
        operation: ArpOperation::Reply,
        sender_mac: EthernetAddress(host_mac),
        sender_ip: host_ip,
        target_mac: request.sender_mac,
        target_ip: request.sender_ip,
    };
    let mut frame = vec![0u8; 60];
    let len = EthernetRepr {
        src: EthernetAddress(host_mac),
        dst: request.sender_mac,
        ethertype: ethernet::ETHERTYPE_ARP,
    }
    .emit(&mut frame)
    .unwrap();
    reply.emit(&mut frame[len..]).unwrap();
    Some(frame)
}

pub struct Net {
    pub now: Instant,
    pub seed: u64,
    pub engine: Engine<Buf, ChaCha8Rng, Tokens>,
    pub client: Tcb<Buf>,
    pub client_app: App,
    pub mptcp: Option<MptcpClient>,
    pub backend: Option<Tcb<Buf>>,
    pub backend_app: App,
    /// 0: client to engine, 1: engine to client, 2: backend to engine, 3: engine to backend.
    pub links: [Link; 4],
    pub arp_answered: u64,
    pub resets_to_client: u64,
    /// Drops chosen by a test among the engine's segments toward the client:
    /// `(repr, payload length, the engine's ISS toward the client) -> drop`.
    pub drop_to_client: Option<ScriptedDrop>,
    pub dropped_to_client: u64,
    /// The same for the client's segments toward the engine (the ISS argument is the
    /// client's own).
    pub drop_from_client: Option<ScriptedDrop>,
    pub dropped_from_client: u64,
    /// The backend answers the engine's SYN with RST (nothing listens).
    pub refuse_backend: bool,
    /// The backend's host drops the engine's SYNs until then (a silent backend).
    pub backend_silent_until: Option<Instant>,
    /// The backend application resets its connection once it has received this many bytes.
    pub backend_reset_after: Option<usize>,
    /// When the backend application reset its connection.
    pub backend_reset_at: Option<Instant>,
    /// The client's link is down: nothing reaches the client or comes from it.
    pub client_vanished: bool,
    /// The backend's link is down.
    pub backend_vanished: bool,
    /// When the client's TCB closed.
    pub client_closed_at: Option<Instant>,
    /// A middlebox strips every MPTCP option from the client's segments after its SYN.
    pub strip_options_from_client: bool,
    /// A router on the client's path forwards IP packets of at most this many bytes toward
    /// the client; larger ones (all carry DF) it drops, answering with ICMP fragmentation
    /// needed (RFC 1191).
    pub client_path_mtu: Option<usize>,
    /// Frames that router dropped, and so reported.
    pub too_big_to_client: u64,
}

pub type ScriptedDrop = Box<dyn FnMut(&TcpRepr<'_>, usize, SeqNumber) -> bool>;

impl Net {
    pub fn new(
        seed: u64,
        link: LinkConfig,
        up: Bytes,
        down: Bytes,
        client_port: u16,
        mptcp: Option<MptcpClient>,
    ) -> Net {
        Net::with_config(seed, link, up, down, client_port, mptcp, config())
    }

    /// [`Net::new`] with an engine configuration of the test's own.
    pub fn with_config(
        seed: u64,
        link: LinkConfig,
        up: Bytes,
        down: Bytes,
        client_port: u16,
        mptcp: Option<MptcpClient>,
        config: EngineConfig,
    ) -> Net {
        let now = Instant::from_nanos(1_000_000_000);
        let mut client = Tcb::connect(
            now,
            SocketAddrV4::new(CLIENT_IP, client_port),
            LISTEN,
            client_iss(seed),
            1460,
            tuning(),
        );
        if mptcp.is_some() {
            // Room for the DSS this harness adds to every data segment.
            client.set_owner_option_reserve(28);
        }
        Net {
            now,
            seed,
            engine: Engine::new(config, ChaCha8Rng::seed_from_u64(seed), Tokens::default()),
            client,
            client_app: App::new(up),
            mptcp,
            backend: None,
            backend_app: App::new(down),
            links: [0, 1, 2, 3].map(|i| Link::new(link, seed.wrapping_mul(8) + i)),
            arp_answered: 0,
            resets_to_client: 0,
            drop_to_client: None,
            dropped_to_client: 0,
            drop_from_client: None,
            dropped_from_client: 0,
            refuse_backend: false,
            backend_silent_until: None,
            backend_reset_after: None,
            backend_reset_at: None,
            client_vanished: false,
            backend_vanished: false,
            client_closed_at: None,
            strip_options_from_client: false,
            client_path_mtu: None,
            too_big_to_client: 0,
        }
    }

    /// A segment as the client's host would send it (correct checksums), straight into the
    /// engine: for blind and forged segments the client's TCB never sent.
    pub fn inject_from_client(&mut self, repr: &TcpRepr<'_>, payload: &[u8]) {
        let header_len = repr.header_len();
        let mut bytes = vec![0u8; header_len + payload.len()];
        repr.emit(&mut bytes).expect("a valid forged header");
        bytes[header_len..].copy_from_slice(payload);
        let (header, body) = bytes.split_at_mut(header_len);
        mpterm_wire::tcp::fill_checksum_v4(header, CLIENT_IP, APPLIANCE_CLIENT_SIDE, body);
        let frame = tcp_frame(
            CLIENT_MAC,
            CLIENT_SIDE_MAC,
            CLIENT_IP,
            APPLIANCE_CLIENT_SIDE,
            &bytes,
        );
        self.engine
            .handle_frame(self.now, 0, Buf(Bytes::from(frame)));
    }

    pub fn context(&self) -> String {
        format!(
            "seed {} at {:?} virtual: client {:?} {:?}, backend {:?}, engine {:?}",
            self.seed,
            Duration::from_nanos(self.now.as_nanos()),
            self.client.state(),
            self.client.counters(),
            self.backend.as_ref().map(|b| (b.state(), b.counters())),
            self.engine.counters(),
        )
    }

    /// Answers an ARP request the engine sent on `interface` for a host the harness plays.
    pub fn answer_arp(&mut self, interface: usize, request: &ArpRepr) {
        if let Some(frame) = arp_reply_for(interface, request) {
            self.arp_answered += 1;
            self.engine
                .handle_frame(self.now, interface, Buf(Bytes::from(frame)));
        }
    }

    pub fn scripted_drop_to_client(&mut self, frame: &[u8]) -> bool {
        let engine_iss = self.client.irs();
        let Some(drop) = self.drop_to_client.as_mut() else {
            return false;
        };
        let Some((_, _, repr, payload)) = decode_tcp_frame(frame) else {
            return false;
        };
        drop(&repr, payload.map_or(0, |p| p.0.len()), engine_iss)
    }

    /// The router of [`Net::client_path_mtu`]: true when `frame` is too big for it, in which
    /// case the ICMP error quoting it is on its way to the engine.
    fn too_big_for_client_path(&mut self, frame: &[u8]) -> bool {
        let Some(mtu) = self.client_path_mtu else {
            return false;
        };
        if frame.len() - ethernet::HEADER_LEN <= mtu {
            return false;
        }
        let Some((src, dst, repr, _)) = decode_tcp_frame(frame) else {
            return false;
        };
        let error = IcmpErrorRepr {
            kind: IcmpErrorKind::PacketTooBig { mtu: mtu as u32 },
            quoted: QuotedTcp {
                src: src.into(),
                dst: dst.into(),
                src_port: repr.src_port,
                dst_port: repr.dst_port,
                seq: repr.seq,
            },
        };
        let mut message = vec![0u8; error.buffer_len()];
        error.emit_v4(&mut message).unwrap();
        let mut body = vec![0u8; ipv4::HEADER_LEN + message.len()];
        Ipv4Repr {
            src: ROUTER_IP,
            dst: src,
            protocol: ipv4::PROTOCOL_ICMP,
            payload_len: message.len() as u16,
            ttl: 64,
        }
        .emit(&mut body)
        .unwrap();
        body[ipv4::HEADER_LEN..].copy_from_slice(&message);
        let mut icmp = vec![0u8; ethernet::HEADER_LEN + body.len()];
        EthernetRepr {
            src: EthernetAddress(CLIENT_MAC),
            dst: EthernetAddress(CLIENT_SIDE_MAC),
            ethertype: ethernet::ETHERTYPE_IPV4,
        }
        .emit(&mut icmp)
        .unwrap();
        icmp[ethernet::HEADER_LEN..].copy_from_slice(&body);
        // The error comes back over the client's link, behind what is already on it.
        self.links[0].send(self.now, icmp);
        true
    }

    /// Puts what the client's TCB has to send on its link; true if it sent anything.
    fn send_client_segments(&mut self) -> bool {
        let mut moved = false;
        while let Some(mut segment) = self.client.poll_segment(self.now) {
            moved = true;
            if let Some(mptcp) = self.mptcp.as_mut() {
                mptcp.decorate(&mut segment);
            }
            if let Some(drop) = self.drop_from_client.as_mut() {
                let len = segment.payload.as_ref().map_or(0, |p| p.0.len());
                if drop(&segment.repr, len, self.client.iss()) {
                    self.dropped_from_client += 1;
                    continue;
                }
            }
            if self.client_vanished {
                continue;
            }
            if self.strip_options_from_client && !segment.repr.flags.contains(TcpFlags::SYN) {
                segment.repr.options.mptcp = [None, None];
            }
            let bytes = encode_segment(&segment, CLIENT_IP, APPLIANCE_CLIENT_SIDE);
            let frame = tcp_frame(
                CLIENT_MAC,
                CLIENT_SIDE_MAC,
                CLIENT_IP,
                APPLIANCE_CLIENT_SIDE,
                &bytes,
            );
            self.links[0].send(self.now, frame);
        }
        moved
    }

    pub fn step(&mut self) -> bool {
        let mut moved = false;
        // The client.
        self.client_app.write(&mut self.client);
        moved |= self.send_client_segments();
        // The backend.
        if let Some(backend) = self.backend.as_mut() {
            self.backend_app.write(backend);
            while let Some(segment) = backend.poll_segment(self.now) {
                moved = true;
                if self.backend_vanished {
                    continue;
                }
                let bytes = encode_segment(&segment, *BACKEND.ip(), APPLIANCE_BACKEND_SIDE);
                let frame = tcp_frame(
                    BACKEND_MAC,
                    BACKEND_SIDE_MAC,
                    *BACKEND.ip(),
                    APPLIANCE_BACKEND_SIDE,
                    &bytes,
                );
                self.links[2].send(self.now, frame);
            }
        }
        // The engine: ARP is answered at once, everything else goes onto the links.
        if self
            .engine
            .poll_timeout()
            .is_some_and(|deadline| deadline <= self.now)
        {
            self.engine.handle_timeout(self.now);
        }
        while let Some(transmit) = self.engine.poll_transmit(self.now) {
            moved = true;
            let mut frame = transmit.header.as_slice().to_vec();
            if let Some(payload) = &transmit.payload {
                frame.extend_from_slice(&payload.0);
            }
            if let Parsed::Arp(arp, _) = parse_frame(&frame) {
                self.answer_arp(transmit.interface, &arp);
                continue;
            }
            if transmit.interface == 0 && self.scripted_drop_to_client(&frame) {
                self.dropped_to_client += 1;
                continue;
            }
            if transmit.interface == 0 && self.too_big_for_client_path(&frame) {
                self.too_big_to_client += 1;
                continue;
            }
            let link = if transmit.interface == 0 { 1 } else { 3 };
            let vanished = match link {
                1 => self.client_vanished,
                _ => self.backend_vanished,
            };
            if !vanished {
                self.links[link].send(self.now, frame);
            }
        }
        // Arrivals.
        for frame in self.links[0].arrivals(self.now) {
            moved = true;
            self.engine
                .handle_frame(self.now, 0, Buf(Bytes::from(frame)));
        }
        for frame in self.links[2].arrivals(self.now) {
            moved = true;
            self.engine
                .handle_frame(self.now, 1, Buf(Bytes::from(frame)));
        }
        for frame in self.links[1].arrivals(self.now) {
            moved = true;
            let Parsed::Tcp {
                src_mac,
                src,
                dst,
                segment,
            } = parse_frame(&frame)
            else {
                continue;
            };
            assert_eq!(src_mac, EthernetAddress(CLIENT_SIDE_MAC));
            assert_eq!(dst, CLIENT_IP);
            let (repr, payload) = decode_segment(segment, src, dst);
            // A RST answering a stray ACK from TIME-WAIT, after the engine released the
            // connection, is ordinary (RFC 9293 3.10.7.1); count only resets of live ones.
            if repr.flags.contains(TcpFlags::RST) && self.client.state() != TcpState::TimeWait {
                self.resets_to_client += 1;
            }
            let engine_iss = self.client.irs();
            if let Some(mptcp) = self.mptcp.as_mut() {
                mptcp.observe(self.now, &repr, payload.as_ref(), engine_iss);
            }
            let was_connecting = self.client.state() == TcpState::SynSent;
            self.client.handle_segment(self.now, &repr, payload);
            if was_connecting && self.client.is_synchronized() {
                // Like Linux, the third ACK leaves as soon as the SYN-ACK arrives, before
                // the application writes (net/ipv4/tcp_input.c, tcp_rcv_synsent_state_process).
                self.send_client_segments();
            }
            let fast_closed = self
                .mptcp
                .as_mut()
                .filter(|mptcp| mptcp.fast_close_received_at.is_some() && !mptcp.fast_closing);
            if let Some(mptcp) = fast_closed {
                // Linux answers MP_FASTCLOSE with a RST carrying MP_FASTCLOSE and MP_TCPRST
                // and ends the connection (ECONNRESET for the application).
                mptcp.fast_closing = true;
                self.client.abort();
            }
        }
        for frame in self.links[3].arrivals(self.now) {
            moved = true;
            let Parsed::Tcp {
                src_mac,
                src,
                dst,
                segment,
            } = parse_frame(&frame)
            else {
                continue;
            };
            assert_eq!(src_mac, EthernetAddress(BACKEND_SIDE_MAC));
            assert_eq!(dst, *BACKEND.ip());
            assert_eq!(src, APPLIANCE_BACKEND_SIDE);
            let (repr, payload) = decode_segment(segment, src, dst);
            if self.backend.is_none()
                && self
                    .backend_silent_until
                    .is_some_and(|until| self.now < until)
            {
                // The backend's host drops the SYN: no answer at all.
                continue;
            }
            match self.backend.as_mut() {
                Some(backend) => backend.handle_segment(self.now, &repr, payload),
                None if self.refuse_backend => {
                    // RFC 9293 3.10.7.1: a SYN to a closed port gets <SEQ=0><ACK=SEQ+1><RST,ACK>.
                    if repr.flags.contains(TcpFlags::RST) {
                        continue;
                    }
                    let reset = TcpRepr {
                        src_port: repr.dst_port,
                        dst_port: repr.src_port,
                        seq: SeqNumber(0),
                        ack: repr.seq + 1,
                        flags: TcpFlags::RST | TcpFlags::ACK,
                        window: 0,
                        options: Default::default(),
                    };
                    let mut bytes = vec![0u8; reset.header_len()];
                    reset.emit(&mut bytes).unwrap();
                    mpterm_wire::tcp::fill_checksum_v4(&mut bytes, dst, src, &[]);
                    let frame = tcp_frame(BACKEND_MAC, BACKEND_SIDE_MAC, dst, src, &bytes);
                    self.links[2].send(self.now, frame);
                }
                None => {
                    assert!(
                        repr.flags.contains(TcpFlags::SYN) && !repr.flags.contains(TcpFlags::ACK),
                        "the engine opens with a SYN"
                    );
                    assert_eq!(repr.dst_port, BACKEND.port());
                    let remote = SocketAddrV4::new(src, repr.src_port);
                    let iss = SeqNumber((self.seed as u32).wrapping_mul(7919));
                    self.backend = Some(Tcb::accept(
                        self.now,
                        BACKEND,
                        remote,
                        &repr,
                        iss,
                        1460,
                        tuning(),
                    ));
                }
            }
        }
        // Applications read.
        self.client_app.read(&mut self.client);
        if let Some(mptcp) = self.mptcp.as_mut() {
            mptcp.received = self.client_app.received.len() as u64;
        }
        if let Some(backend) = self.backend.as_mut() {
            self.backend_app.read(backend);
            let reset_due = self
                .backend_reset_after
                .is_some_and(|after| self.backend_app.received.len() >= after);
            if reset_due && self.backend_reset_at.is_none() {
                backend.abort();
                self.backend_reset_at = Some(self.now);
            }
        }
        if self.client.is_closed() && self.client_closed_at.is_none() {
            self.client_closed_at = Some(self.now);
        }
        self.watch_data_level_acknowledgement();
        moved
    }

    /// Models Linux's MPTCP-level retransmission timer: data the subflow has acknowledged but
    /// the DATA_ACK has not is sent again every [`DATA_LEVEL_RTO`].
    fn watch_data_level_acknowledgement(&mut self) {
        let subflow_acked = (self.client_app.queued - self.client.send_queued()) as u64;
        let now = self.now;
        let closed = self.client.is_closed();
        let Some(mptcp) = self.mptcp.as_mut().filter(|m| !m.fell_back && !closed) else {
            return;
        };
        if subflow_acked <= mptcp.data_acked {
            mptcp.data_ack_stalled_since = None;
            return;
        }
        match mptcp.data_ack_stalled_since {
            None => mptcp.data_ack_stalled_since = Some(now),
            Some(since) if now - since >= DATA_LEVEL_RTO => {
                mptcp.data_level_retransmissions += 1;
                mptcp.data_ack_stalled_since = Some(now);
            }
            Some(_) => {}
        }
    }

    pub fn jump(&mut self) -> bool {
        let mut deadlines: Vec<Instant> =
            self.links.iter().filter_map(Link::next_arrival).collect();
        if let Some(since) = self.mptcp.as_ref().and_then(|m| m.data_ack_stalled_since) {
            deadlines.push(since + DATA_LEVEL_RTO);
        }
        deadlines.extend(self.client.poll_timeout());
        deadlines.extend(self.backend.as_ref().and_then(Tcb::poll_timeout));
        deadlines.extend(self.engine.poll_timeout());
        let Some(next) = deadlines.into_iter().min() else {
            return false;
        };
        self.now = self.now.max(next);
        self.client.handle_timeout(self.now);
        if let Some(backend) = self.backend.as_mut() {
            backend.handle_timeout(self.now);
        }
        true
    }

    /// Runs until `done` holds or nothing is left to do.
    pub fn drive_until(&mut self, mut done: impl FnMut(&Net) -> bool) {
        let limit = self.now + VIRTUAL_TIME_LIMIT;
        loop {
            while self.step() {}
            if done(self) {
                return;
            }
            assert!(self.now < limit, "virtual time limit: {}", self.context());
            if !self.jump() {
                return;
            }
        }
    }

    pub fn all_data_arrived(&self) -> bool {
        self.backend_app.received.len() == self.client_app.outgoing.len()
            && self.client_app.received.len() == self.backend_app.outgoing.len()
    }

    pub fn check_data(&self) {
        for (what, received, sent) in [
            (
                "backend",
                &self.backend_app.received,
                &self.client_app.outgoing,
            ),
            (
                "client",
                &self.client_app.received,
                &self.backend_app.outgoing,
            ),
        ] {
            assert!(
                received[..] == sent[..],
                "{what} received {} bytes (sha256 {}), expected {} (sha256 {}): {}",
                received.len(),
                sha256(received),
                sent.len(),
                sha256(sent),
                self.context()
            );
        }
    }
}

pub fn client_iss(seed: u64) -> SeqNumber {
    SeqNumber((seed as u32).wrapping_mul(0x9e37_79b9))
}

pub fn seeds(defaults: &[u64]) -> Vec<u64> {
    match std::env::var("SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("SIM_SEED is a number")],
        Err(_) => defaults.to_vec(),
    }
}

/// The TCP segment an Ethernet frame carries, with its IPv4 addresses; `None` for any other
/// frame.
fn decode_tcp_frame(frame: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, TcpRepr<'_>, Option<Buf>)> {
    let Parsed::Tcp {
        src, dst, segment, ..
    } = parse_frame(frame)
    else {
        return None;
    };
    let (repr, payload) = decode_segment(segment, src, dst);
    Some((src, dst, repr, payload))
}
