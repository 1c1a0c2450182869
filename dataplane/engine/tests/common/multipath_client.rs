//! The simulated Linux-like MPTCP client of the multipath harness (`multipath_net.rs`): its
//! subflows, joins (with HMACs computed here from RFC 8684 section 3.2 with `ring` directly,
//! not with the engine's functions), data-level scheduling, reinjection and reassembly.

use core::net::SocketAddrV4;
use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use mpterm_engine::mptcp_keys::derive_from_key;
use mpterm_engine::tcp::{OutgoingSegment, OwnerVerdict, ReceivedMapping, Tcb, TcpState};
use mpterm_engine::Instant;
use mpterm_wire::checksum::dss_pseudo_header;
use mpterm_wire::mptcp::{DataSeqWire, Dss, DssMapping, MpCapable, MpJoin, MpTcpRst, MptcpOption};
use mpterm_wire::tcp::{SackBlocks, TcpFlags, TcpOptions, TcpRepr};
use mpterm_wire::SeqNumber;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::multipath_net::{client_address, listen, CLIENT_RETRY, DATA_WINDOW, RUNT_BYTES};
use super::{tuning, Buf, LinkConfig};

/// HMAC-SHA256 keyed by `key_1 + key_2` over `nonce_1 + nonce_2`, all big-endian (RFC 8684
/// section 3.2, as Linux's `subflow_generate_hmac`).
fn join_hmac(key_1: u64, key_2: u64, nonce_1: u32, nonce_2: u32) -> [u8; 32] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&key_1.to_be_bytes());
    key[8..].copy_from_slice(&key_2.to_be_bytes());
    let mut message = [0u8; 8];
    message[..4].copy_from_slice(&nonce_1.to_be_bytes());
    message[4..].copy_from_slice(&nonce_2.to_be_bytes());
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
        &message,
    );
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// How the client's data level picks the subflow for its next upload segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientScheduler {
    RoundRobin,
    LowestRtt,
}

/// Where a client subflow stands in its handshake (RFC 8684 sections 3.1 and 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinPhase {
    /// Subflow 0, opened with MP_CAPABLE.
    Initial,
    /// The MP_JOIN SYN is out with our nonce.
    SynSent { nonce: u32 },
    /// The SYN-ACK's HMAC verified; the third ACK (MP_JOIN with our full HMAC) goes on every
    /// segment until the engine acknowledges it (the fourth ACK, section 3.2).
    ThirdAckSent { hmac: [u8; 20], last_sent: Instant },
    /// The engine acknowledged the third ACK: the subflow may carry data.
    Established,
    /// The join failed (a RST, or a SYN-ACK whose HMAC did not verify).
    Failed,
}

/// One subflow of a simulated client.
#[derive(Debug)]
pub struct ClientSubflow {
    pub path: usize,
    pub tcb: Tcb<Buf>,
    pub phase: JoinPhase,
    pub backup: bool,
    /// The upload bytes queued on it and not yet acknowledged by it:
    /// `(subflow relative seq, data offset, len)`.
    sent: VecDeque<(u32, u64, u32)>,
    /// Its retransmissions time out: the data level leaves it alone and moved its data away.
    pub stale: bool,
    /// Upload payload bytes queued on it (first transmissions).
    pub bytes_queued: u64,
    /// Download payload bytes it delivered in order.
    pub bytes_delivered: u64,
    /// The MP_TCPRST options on RSTs it received (None: a RST without one).
    pub resets: Vec<Option<MpTcpRst>>,
    /// The engine's SYN-ACK HMAC for this join verified (section 3.2).
    pub syn_ack_hmac_verified: bool,
    /// The engine's address ID from its MP_JOIN SYN-ACK.
    pub engine_address_id: Option<u8>,
    /// Send a wrong HMAC in the third ACK (to test the engine's check).
    pub corrupt_third_ack: bool,
}

impl ClientSubflow {
    /// The data level may queue upload data on it.
    fn carries_data(&self, confirmed: bool) -> bool {
        let phase_ok = match self.phase {
            JoinPhase::Initial => confirmed,
            JoinPhase::Established => true,
            _ => false,
        };
        phase_ok
            && !self.stale
            && matches!(
                self.tcb.state(),
                TcpState::Established | TcpState::CloseWait
            )
    }

    fn is_live(&self) -> bool {
        !matches!(
            self.tcb.state(),
            TcpState::Closed | TcpState::TimeWait | TcpState::SynSent
        ) && !matches!(self.phase, JoinPhase::Failed)
    }
}

/// A path the client opens a subflow on, and how.
#[derive(Debug, Clone, Copy)]
pub struct PathSpec {
    pub link: LinkConfig,
    /// The client's MP_JOIN SYN asks for a backup subflow (B bit, section 3.2).
    pub backup: bool,
}

impl PathSpec {
    pub fn clean(delay: Duration) -> PathSpec {
        PathSpec {
            link: LinkConfig::clean(delay),
            backup: false,
        }
    }
}

/// One simulated MPTCP client: its subflows and its data level.
#[derive(Debug)]
pub struct MpClient {
    pub host: usize,
    pub key: u64,
    idsn: u64,
    pub remote_key: Option<u64>,
    remote_idsn: u64,
    /// The engine's DSS arrived: it has our key (section 3.1), so the connection is fully
    /// established and joins may start.
    pub confirmed: bool,
    pub paths: Vec<PathSpec>,
    pub subflows: Vec<ClientSubflow>,
    pub scheduler: ClientScheduler,
    round_robin: usize,
    /// The first `open_joins` extra paths get a join (the rest stay unused unless a test
    /// asks later).
    pub joins_wanted: usize,
    joins_started: usize,
    rng: ChaCha8Rng,
    next_port: u16,

    // Upload (our data level toward the engine).
    pub upload: Bytes,
    /// Data offset of the next byte never scheduled.
    scheduled: u64,
    /// Ranges to send again on another subflow: `(data offset, len)`.
    reinjection: VecDeque<(u64, u64)>,
    pub reinjected_bytes: u64,
    /// Bytes the engine DATA_ACKed.
    pub data_acked: u64,
    /// Our DATA_FIN takes data offset `upload.len()`; it is sent once the upload is DATA_ACKed.
    pub data_fin_sent: bool,
    pub data_fin_acked: bool,
    data_fin_last_sent: Option<Instant>,
    /// Every subflow was told to close.
    pub subflows_closed: bool,

    // Download (the engine's data level toward us).
    /// The next data offset expected (our DATA_ACK, less the IDSN + 1).
    next_expected: u64,
    ahead: BTreeMap<u64, Bytes>,
    pub received: Vec<u8>,
    /// The engine's DATA_FIN, as a data offset.
    pub remote_data_fin: Option<u64>,
    pub remote_data_fin_reached: bool,
    pub verified_mappings: u64,
    /// Bytes of the engine's data that arrived again (its reinjections) and matched.
    pub duplicate_bytes: u64,
    /// Segments of the engine after its SYN-ACK without any MPTCP option (never allowed).
    pub option_less_segments: u64,
    /// DATA_ACKs of the engine for data we never sent.
    pub data_acks_beyond_sent: u64,
    /// SYN-ACK HMACs of joins that did not verify.
    pub syn_ack_hmac_failures: u64,
    /// The engine's segments with payload, and those of them carrying less than
    /// [`RUNT_BYTES`]: a sender that cuts data to what a window has left sends runts.
    pub data_segments: u64,
    pub runt_segments: u64,
}

impl MpClient {
    pub fn new(
        host: usize,
        seed: u64,
        paths: Vec<PathSpec>,
        upload: Bytes,
        scheduler: ClientScheduler,
    ) -> MpClient {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1000).wrapping_add(host as u64));
        let key = rng.next_u64();
        let joins_wanted = paths.len() - 1;
        MpClient {
            host,
            key,
            idsn: derive_from_key(key).initial_data_seq,
            remote_key: None,
            remote_idsn: 0,
            confirmed: false,
            paths,
            subflows: Vec::new(),
            scheduler,
            round_robin: 0,
            joins_wanted,
            joins_started: 0,
            rng,
            next_port: 40_000,
            upload,
            scheduled: 0,
            reinjection: VecDeque::new(),
            reinjected_bytes: 0,
            data_acked: 0,
            data_fin_sent: false,
            data_fin_acked: false,
            data_fin_last_sent: None,
            subflows_closed: false,
            next_expected: 0,
            ahead: BTreeMap::new(),
            received: Vec::new(),
            remote_data_fin: None,
            remote_data_fin_reached: false,
            verified_mappings: 0,
            duplicate_bytes: 0,
            option_less_segments: 0,
            data_acks_beyond_sent: 0,
            syn_ack_hmac_failures: 0,
            data_segments: 0,
            runt_segments: 0,
        }
    }

    /// The engine's token (section 3.2: from its key), once known.
    pub fn remote_token(&self) -> Option<u32> {
        self.remote_key.map(|key| derive_from_key(key).token)
    }

    fn new_tcb(&mut self, now: Instant, path: usize) -> Tcb<Buf> {
        let port = self.next_port;
        self.next_port += 1;
        let iss = SeqNumber(self.rng.next_u32());
        let mut tcb = Tcb::connect(
            now,
            SocketAddrV4::new(client_address(self.host, path), port),
            listen(),
            iss,
            1460,
            tuning(),
        );
        // Room for the DSS on every data segment.
        tcb.set_owner_option_reserve(28);
        tcb
    }

    fn add_subflow(&mut self, tcb: Tcb<Buf>, path: usize, phase: JoinPhase, backup: bool) {
        self.subflows.push(ClientSubflow {
            path,
            tcb,
            phase,
            backup,
            sent: VecDeque::new(),
            stale: false,
            bytes_queued: 0,
            bytes_delivered: 0,
            resets: Vec::new(),
            syn_ack_hmac_verified: false,
            engine_address_id: None,
            corrupt_third_ack: false,
        });
    }

    /// Opens subflow 0 on path 0.
    pub fn connect(&mut self, now: Instant) {
        let tcb = self.new_tcb(now, 0);
        self.add_subflow(tcb, 0, JoinPhase::Initial, false);
    }

    /// Opens a join on `path` now (the engine's key must be known).
    pub fn open_join(&mut self, now: Instant, path: usize, backup: bool) -> usize {
        let tcb = self.new_tcb(now, path);
        let nonce = self.rng.next_u32();
        self.add_subflow(tcb, path, JoinPhase::SynSent { nonce }, backup);
        self.subflows.len() - 1
    }

    fn data_seq(&self, offset: u64) -> u64 {
        self.idsn.wrapping_add(1).wrapping_add(offset)
    }

    fn remote_offset(&self, data_seq: u64) -> u64 {
        data_seq.wrapping_sub(self.remote_idsn.wrapping_add(1))
    }

    /// Our DATA_ACK (section 3.3.2): the next data sequence number expected, past the
    /// engine's DATA_FIN once reached.
    fn data_ack(&self) -> u64 {
        let mut next = self
            .remote_idsn
            .wrapping_add(1)
            .wrapping_add(self.next_expected);
        if self.remote_data_fin_reached {
            next = next.wrapping_add(1);
        }
        next
    }

    pub fn upload_acknowledged(&self) -> bool {
        self.data_acked == self.upload.len() as u64
    }

    /// The download is complete: the engine's DATA_FIN is reached.
    pub fn download_finished(&self) -> bool {
        self.remote_data_fin_reached
    }

    /// Joins, data scheduling, reinjection and the close: what the client's MPTCP does
    /// between segments.
    pub fn run(&mut self, now: Instant) {
        if self.confirmed {
            while self.joins_started < self.joins_wanted {
                self.joins_started += 1;
                let path = self.joins_started;
                let backup = self.paths[path].backup;
                self.open_join(now, path, backup);
            }
        }
        for subflow in &mut self.subflows {
            if let JoinPhase::ThirdAckSent { last_sent, .. } = subflow.phase {
                // Section 3.2: the third ACK is delivered reliably; without the fourth ACK
                // the client sends it again.
                if now - last_sent >= CLIENT_RETRY {
                    subflow.tcb.request_ack();
                }
            }
        }
        self.watch_subflows();
        self.schedule();
        self.send_data_fin(now);
        if !self.subflows_closed && self.data_fin_acked && self.remote_data_fin_reached {
            // Both data streams ended: the subflows close (as Linux's `mptcp_close`).
            self.subflows_closed = true;
            for subflow in &mut self.subflows {
                subflow.tcb.close();
            }
        }
    }

    /// The client's own deadlines (third ACK and DATA_FIN retries).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let joins = self
            .subflows
            .iter()
            .filter_map(|subflow| match subflow.phase {
                JoinPhase::ThirdAckSent { last_sent, .. } if subflow.is_live() => {
                    Some(last_sent + CLIENT_RETRY)
                }
                _ => None,
            });
        // Only while some subflow can carry it: a deadline nothing can act on would stop
        // virtual time.
        let carrier = self
            .subflows
            .iter()
            .any(|subflow| subflow.carries_data(self.confirmed));
        let data_fin = self
            .data_fin_last_sent
            .filter(|_| self.data_fin_sent && !self.data_fin_acked && carrier)
            .map(|at| at + CLIENT_RETRY);
        let tcbs = self.subflows.iter().filter_map(|s| s.tcb.poll_timeout());
        joins.chain(data_fin).chain(tcbs).min()
    }

    /// A subflow whose retransmissions time out, or that died, hands its data not yet
    /// DATA_ACKed to the others (RFC 8684 section 3.3.6, as Linux's stale subflows); one that
    /// is acknowledged again returns to service.
    fn watch_subflows(&mut self) {
        let data_acked = self.data_acked;
        for index in 0..self.subflows.len() {
            let subflow = &mut self.subflows[index];
            let timeouts = subflow.tcb.consecutive_timeouts();
            let dead = subflow.tcb.is_closed() || matches!(subflow.phase, JoinPhase::Failed);
            if subflow.stale && timeouts == 0 && !dead {
                subflow.stale = false;
            }
            if subflow.stale || !(dead || timeouts >= 2) {
                continue;
            }
            subflow.stale = true;
            let ranges: Vec<(u64, u64)> = subflow
                .sent
                .iter()
                .map(|&(_, offset, len)| (offset, u64::from(len)))
                .collect();
            if dead {
                subflow.sent.clear();
            }
            for (offset, len) in ranges {
                let end = offset + len;
                if end <= data_acked {
                    continue;
                }
                let start = offset.max(data_acked);
                self.reinjection.push_back((start, end - start));
            }
        }
    }

    /// Gives upload data to subflows while any has room: reinjections first.
    fn schedule(&mut self) {
        let total = self.upload.len() as u64;
        if !self.confirmed {
            // Section 3.1: before the engine's DSS shows it has our key, only the first data
            // goes out, on subflow 0 with MP_CAPABLE (mapped to our IDSN + 1 at subflow
            // sequence 1).
            if self.scheduled == 0 && total > 0 {
                if let Some(initial) = self.subflows.first_mut() {
                    if initial.tcb.state() == TcpState::Established {
                        let len = (total as usize).min(initial.tcb.max_payload_per_segment());
                        let seq = initial.tcb.next_queued_relative_seq();
                        if initial.tcb.send(Buf(self.upload.slice(0..len))).is_ok() {
                            initial.sent.push_back((seq, 0, len as u32));
                            initial.bytes_queued += len as u64;
                            self.scheduled = len as u64;
                        }
                    }
                }
            }
            return;
        }
        loop {
            while let Some(&(offset, len)) = self.reinjection.front() {
                if offset + len <= self.data_acked {
                    self.reinjection.pop_front();
                } else {
                    break;
                }
            }
            let (offset, available, reinjection) = match self.reinjection.front() {
                Some(&(offset, len)) => {
                    let start = offset.max(self.data_acked);
                    (start, offset + len - start, true)
                }
                None if self.scheduled < total
                    && self.scheduled - self.data_acked < DATA_WINDOW =>
                {
                    (self.scheduled, total - self.scheduled, false)
                }
                None => return,
            };
            let Some(index) = self.pick_subflow() else {
                return;
            };
            let subflow = &mut self.subflows[index];
            let len = (available as usize)
                .min(subflow.tcb.send_room())
                .min(subflow.tcb.max_payload_per_segment());
            if len == 0 {
                return;
            }
            let seq = subflow.tcb.next_queued_relative_seq();
            let chunk = Buf(self.upload.slice(offset as usize..offset as usize + len));
            if subflow.tcb.send(chunk).is_err() {
                return;
            }
            subflow.sent.push_back((seq, offset, len as u32));
            subflow.bytes_queued += len as u64;
            if reinjection {
                self.reinjected_bytes += len as u64;
                let front = self.reinjection.front_mut().expect("a reinjection range");
                front.1 -= offset + len as u64 - front.0;
                front.0 = offset + len as u64;
                if front.1 == 0 {
                    self.reinjection.pop_front();
                }
            } else {
                self.scheduled += len as u64;
            }
        }
    }

    /// Section 3.3.8 as Linux does it for its own sending: backup subflows only when no
    /// regular one can carry data.
    fn pick_subflow(&mut self) -> Option<usize> {
        let confirmed = self.confirmed;
        let usable: Vec<usize> = (0..self.subflows.len())
            .filter(|&i| self.subflows[i].carries_data(confirmed))
            .collect();
        let any_regular = usable.iter().any(|&i| !self.subflows[i].backup);
        let with_room: Vec<usize> = usable
            .into_iter()
            .filter(|&i| !(any_regular && self.subflows[i].backup))
            .filter(|&i| self.subflows[i].tcb.send_room() > 0)
            .collect();
        match self.scheduler {
            ClientScheduler::RoundRobin => {
                let choice = with_room
                    .iter()
                    .copied()
                    .find(|&i| i >= self.round_robin)
                    .or_else(|| with_room.first().copied())?;
                self.round_robin = choice + 1;
                Some(choice)
            }
            ClientScheduler::LowestRtt => with_room.into_iter().min_by_key(|&i| {
                let rtt = self.subflows[i].tcb.smoothed_rtt();
                (rtt.unwrap_or(Duration::from_millis(100)), i)
            }),
        }
    }

    /// Once the upload is DATA_ACKed, the DATA_FIN (section 3.3.3) rides on a DSS of a live
    /// subflow, sent again until DATA_ACKed.
    fn send_data_fin(&mut self, now: Instant) {
        if !self.upload_acknowledged() || self.data_fin_acked {
            return;
        }
        let due = self
            .data_fin_last_sent
            .is_none_or(|at| now - at >= CLIENT_RETRY);
        if !due {
            return;
        }
        // On every subflow that carries data: one whose path died without our knowing (it
        // had nothing outstanding) must not hold up the end of the stream.
        let confirmed = self.confirmed;
        for subflow in &mut self.subflows {
            if subflow.carries_data(confirmed) {
                self.data_fin_sent = true;
                self.data_fin_last_sent = Some(now);
                subflow.tcb.request_ack();
            }
        }
    }

    /// Our MPTCP options on a segment about to leave on subflow `index`.
    pub fn decorate(&mut self, index: usize, now: Instant, segment: &mut OutgoingSegment<Buf>) {
        let flags = segment.repr.flags;
        let data_ack = self.data_ack();
        let data_fin = self.upload.len() as u64;
        let data_fin_seq = self.data_seq(data_fin);
        let carries_data_fin = self.data_fin_sent && !self.data_fin_acked;
        let (key, remote_key, confirmed, idsn) =
            (self.key, self.remote_key, self.confirmed, self.idsn);
        let subflow = &mut self.subflows[index];
        let options = &mut segment.repr.options;
        if flags.contains(TcpFlags::SYN) {
            options.mptcp[0] = Some(match subflow.phase {
                JoinPhase::SynSent { nonce } => MptcpOption::MpJoin(MpJoin::Syn {
                    backup: subflow.backup,
                    address_id: subflow.path as u8,
                    receiver_token: derive_from_key(remote_key.expect("joins follow the key"))
                        .token,
                    sender_nonce: nonce,
                }),
                _ => MptcpOption::MpCapable(MpCapable {
                    version: 1,
                    checksum_required: true,
                    extensibility: false,
                    no_new_subflows_to_source: false,
                    hmac_sha256: true,
                    sender_key: None,
                    receiver_key: None,
                    data_level_length: None,
                    checksum: None,
                }),
            });
            return;
        }
        if flags.contains(TcpFlags::RST) {
            return;
        }
        let Some(remote_key) = remote_key else {
            return;
        };
        if let JoinPhase::ThirdAckSent { hmac, .. } = subflow.phase {
            // Section 3.2: MP_JOIN with our full HMAC, on every segment until the fourth ACK.
            options.mptcp[0] = Some(MptcpOption::MpJoin(MpJoin::Ack { hmac }));
            subflow.phase = JoinPhase::ThirdAckSent {
                hmac,
                last_sent: now,
            };
            return;
        }
        let payload = segment.payload.as_ref().map(|p| p.0.clone());
        let at_first_sequence = segment.repr.seq == subflow.tcb.iss() + 1;
        if subflow.phase == JoinPhase::Initial && !confirmed && at_first_sequence {
            // Section 3.1: the third ACK and the first data carry both keys; the data, its
            // data-level length and checksum (mapped to IDSN + 1 at subflow sequence 1).
            let (data_level_length, checksum) = match &payload {
                Some(payload) => {
                    let length = payload.len() as u16;
                    let mut sum = dss_pseudo_header(idsn.wrapping_add(1), 1, length, 0);
                    sum.add_bytes(payload);
                    (Some(length), Some(sum.finish()))
                }
                None => (None, None),
            };
            options.mptcp[0] = Some(MptcpOption::MpCapable(MpCapable {
                version: 1,
                checksum_required: true,
                extensibility: false,
                no_new_subflows_to_source: false,
                hmac_sha256: true,
                sender_key: Some(key),
                receiver_key: Some(remote_key),
                data_level_length,
                checksum,
            }));
            return;
        }
        let mapping = payload.as_ref().map(|payload| {
            // Every byte queued on a subflow was recorded with its data offset, and the TCB
            // sends only bytes not yet acknowledged.
            let offset = lookup_offset(&subflow.sent, segment.relative_seq)
                .expect("every queued byte has a mapping");
            let data_seq = idsn.wrapping_add(1).wrapping_add(offset);
            let length = payload.len() as u16;
            let mut sum = dss_pseudo_header(data_seq, segment.relative_seq, length, 0);
            sum.add_bytes(payload);
            DssMapping {
                data_seq: DataSeqWire::Bits64(data_seq),
                subflow_seq: segment.relative_seq,
                data_level_length: length,
                checksum: Some(sum.finish()),
            }
        });
        let (mapping, data_fin) = match mapping {
            Some(mapping) => (Some(mapping), false),
            None if carries_data_fin => (
                // Section 3.3.3: a DATA_FIN without data maps subflow sequence 0, length 1.
                Some(DssMapping {
                    data_seq: DataSeqWire::Bits64(data_fin_seq),
                    subflow_seq: 0,
                    data_level_length: 1,
                    checksum: Some(dss_pseudo_header(data_fin_seq, 0, 1, 0).finish()),
                }),
                true,
            ),
            None => (None, false),
        };
        options.mptcp[0] = Some(MptcpOption::Dss(Dss {
            data_ack: Some(DataSeqWire::Bits64(data_ack)),
            mapping,
            data_fin,
        }));
        trim_sack_to_fit(options);
    }

    /// A segment from the engine on subflow `index`: its options are read, then the TCB takes
    /// it, with the DSS mapping kept beside the payload.
    pub fn handle_segment(
        &mut self,
        now: Instant,
        index: usize,
        repr: &TcpRepr<'_>,
        payload: Option<Buf>,
    ) {
        let flags = repr.flags;
        if let Some(payload) = payload.as_ref() {
            self.data_segments += 1;
            self.runt_segments += u64::from(payload.0.len() < RUNT_BYTES);
        }
        let options: Vec<MptcpOption<'_>> = repr.options.mptcp.iter().flatten().copied().collect();
        if flags.contains(TcpFlags::RST) {
            let reason = options.iter().find_map(|option| match option {
                MptcpOption::MpTcpRst(reset) => Some(*reset),
                _ => None,
            });
            self.subflows[index].resets.push(reason);
            // A join reset before its fourth ACK failed; a RST later ends a working subflow.
            if matches!(
                self.subflows[index].phase,
                JoinPhase::SynSent { .. } | JoinPhase::ThirdAckSent { .. }
            ) {
                self.subflows[index].phase = JoinPhase::Failed;
            }
            self.subflows[index].tcb.handle_segment(now, repr, payload);
            return;
        }
        if flags.contains(TcpFlags::SYN) {
            self.handle_syn_ack(now, index, repr, &options, payload);
            return;
        }
        // The engine's TIME-WAIT table answers a retransmitted FIN with a plain ACK, as
        // Linux's time-wait sockets do; anything else carries an MPTCP option.
        let closing = matches!(
            self.subflows[index].tcb.state(),
            TcpState::Closing | TcpState::LastAck | TcpState::TimeWait
        );
        let plain_ack = flags == TcpFlags::ACK && payload.is_none();
        if options.is_empty() && !(closing && plain_ack) {
            self.option_less_segments += 1;
        }
        let mut mapping = None;
        let mut dss_seen = None;
        for option in &options {
            if let MptcpOption::Dss(dss) = option {
                dss_seen = Some(*dss);
                if let Some(dss_mapping) = dss.mapping {
                    mapping = self.receive_mapping(&dss_mapping, dss.data_fin, payload.as_ref());
                }
            }
        }
        let mut accepted = false;
        self.subflows[index]
            .tcb
            .handle_segment_with(now, repr, payload, |_, _| {
                accepted = true;
                OwnerVerdict {
                    mapping,
                    withhold: false,
                }
            });
        if !accepted {
            return;
        }
        if let Some(dss) = dss_seen {
            if let JoinPhase::ThirdAckSent { .. } = self.subflows[index].phase {
                // The fourth ACK (section 3.2): the engine has our third ACK.
                self.subflows[index].phase = JoinPhase::Established;
            }
            if let Some(ack) = dss.data_ack {
                if self.subflows[index].phase == JoinPhase::Initial {
                    self.confirmed = true;
                }
                self.handle_data_ack(ack);
            }
        }
        let subflow = &mut self.subflows[index];
        let acked = subflow.tcb.unacknowledged_relative_seq();
        while let Some(&(seq, _, len)) = subflow.sent.front() {
            if acked.wrapping_sub(seq.wrapping_add(len)) as i32 >= 0 {
                subflow.sent.pop_front();
            } else {
                break;
            }
        }
    }

    fn handle_syn_ack(
        &mut self,
        now: Instant,
        index: usize,
        repr: &TcpRepr<'_>,
        options: &[MptcpOption<'_>],
        payload: Option<Buf>,
    ) {
        let phase = self.subflows[index].phase;
        match phase {
            JoinPhase::Initial => {
                for option in options {
                    if let MptcpOption::MpCapable(capable) = option {
                        assert_eq!(capable.version, 1);
                        assert!(capable.checksum_required, "checksums were asked for");
                        let key = capable.sender_key.expect("the SYN-ACK carries the key");
                        self.remote_key = Some(key);
                        self.remote_idsn = derive_from_key(key).initial_data_seq;
                    }
                }
                self.subflows[index].tcb.handle_segment(now, repr, payload);
            }
            JoinPhase::SynSent { nonce } => {
                let Some(MptcpOption::MpJoin(MpJoin::SynAck {
                    address_id,
                    truncated_hmac,
                    sender_nonce,
                    ..
                })) = options
                    .iter()
                    .find(|option| matches!(option, MptcpOption::MpJoin(MpJoin::SynAck { .. })))
                    .copied()
                else {
                    // Linux resets a join whose SYN-ACK lacks MP_JOIN.
                    self.subflows[index].phase = JoinPhase::Failed;
                    self.subflows[index].tcb.abort();
                    return;
                };
                let remote_key = self.remote_key.expect("joins follow the key");
                // Section 3.2: the responder's HMAC is keyed Key-B + Key-A over R-B + R-A.
                let expected = join_hmac(remote_key, self.key, sender_nonce, nonce);
                let mut leftmost = [0u8; 8];
                leftmost.copy_from_slice(&expected[..8]);
                let subflow = &mut self.subflows[index];
                subflow.engine_address_id = Some(address_id);
                if u64::from_be_bytes(leftmost) != truncated_hmac {
                    self.syn_ack_hmac_failures += 1;
                    subflow.phase = JoinPhase::Failed;
                    subflow.tcb.abort();
                    return;
                }
                subflow.syn_ack_hmac_verified = true;
                // The third ACK's HMAC is keyed Key-A + Key-B over R-A + R-B.
                let full = join_hmac(self.key, remote_key, nonce, sender_nonce);
                let mut hmac = [0u8; 20];
                hmac.copy_from_slice(&full[..20]);
                if subflow.corrupt_third_ack {
                    hmac[0] ^= 0x80;
                }
                subflow.phase = JoinPhase::ThirdAckSent {
                    hmac,
                    last_sent: now,
                };
                subflow.tcb.handle_segment(now, repr, payload);
            }
            _ => self.subflows[index].tcb.handle_segment(now, repr, payload),
        }
    }

    /// Section 3.3.1: a mapping from the engine covers exactly the payload of its segment and
    /// its checksum verifies; a DATA_FIN mapping (section 3.3.3) records the end of stream.
    fn receive_mapping(
        &mut self,
        mapping: &DssMapping,
        data_fin: bool,
        payload: Option<&Buf>,
    ) -> Option<ReceivedMapping> {
        let DataSeqWire::Bits64(data_seq) = mapping.data_seq else {
            panic!("the engine sends 64-bit data sequence numbers: {mapping:?}");
        };
        let checksum = mapping.checksum.expect("checksums are in use");
        let payload_len = payload.map_or(0, |p| p.0.len());
        if data_fin {
            let fin_data_seq = data_seq
                .wrapping_add(u64::from(mapping.data_level_length))
                .wrapping_sub(1);
            self.remote_data_fin = Some(self.remote_offset(fin_data_seq));
        }
        if payload_len == 0 {
            if data_fin && mapping.subflow_seq == 0 {
                let sum = dss_pseudo_header(data_seq, 0, 1, checksum);
                assert_eq!(sum.finish(), 0, "the engine's DATA_FIN checksum verifies");
            }
            return None;
        }
        let mapped_data = usize::from(mapping.data_level_length) - usize::from(data_fin);
        assert_eq!(
            mapped_data, payload_len,
            "the engine maps each segment's own payload"
        );
        let mut sum = dss_pseudo_header(
            data_seq,
            mapping.subflow_seq,
            mapping.data_level_length,
            checksum,
        );
        sum.add_bytes(&payload.expect("payload").0);
        assert_eq!(sum.finish(), 0, "the engine's DSS checksum verifies");
        self.verified_mappings += 1;
        Some(ReceivedMapping {
            data_seq,
            subflow_seq: mapping.subflow_seq,
            data_level_length: mapping.data_level_length,
            checksum: mapping.checksum,
            data_fin,
        })
    }

    /// Section 3.3.2: the DATA_ACK is cumulative.
    fn handle_data_ack(&mut self, wire: DataSeqWire) {
        let DataSeqWire::Bits64(ack) = wire else {
            panic!("the engine sends 64-bit DATA_ACKs");
        };
        let acked = ack.wrapping_sub(self.idsn.wrapping_add(1));
        let total = self.upload.len() as u64;
        let sent_end = if self.data_fin_sent {
            total + 1
        } else {
            self.scheduled
        };
        if acked > sent_end {
            self.data_acks_beyond_sent += 1;
            return;
        }
        if acked > total {
            self.data_fin_acked = true;
        }
        self.data_acked = self.data_acked.max(acked.min(total));
    }

    /// Takes in-order payload from every subflow into the data level, by the mappings.
    pub fn read(&mut self) {
        for index in 0..self.subflows.len() {
            while let Some(chunk) = self.subflows[index].tcb.recv() {
                let mapping = chunk.mapping.expect("the engine's data carries a mapping");
                let data_seq = mapping.data_seq.wrapping_add(u64::from(
                    chunk.subflow_seq.wrapping_sub(mapping.subflow_seq),
                ));
                let offset = self.remote_offset(data_seq);
                self.subflows[index].bytes_delivered += chunk.payload.0.len() as u64;
                self.deliver(offset, chunk.payload.0);
            }
        }
        if let Some(fin) = self.remote_data_fin {
            if !self.remote_data_fin_reached && fin == self.next_expected {
                self.remote_data_fin_reached = true;
                for subflow in &mut self.subflows {
                    subflow.tcb.request_ack();
                }
            }
        }
    }

    /// Data-level reassembly: data before the next expected byte must repeat what arrived.
    fn deliver(&mut self, offset: u64, data: Bytes) {
        let end = offset + data.len() as u64;
        let overlap_end = end.min(self.next_expected);
        if offset < overlap_end {
            let repeated = &data[..(overlap_end - offset) as usize];
            assert_eq!(
                repeated,
                &self.received[offset as usize..overlap_end as usize],
                "data received twice (a reinjection) is the same data"
            );
            self.duplicate_bytes += repeated.len() as u64;
        }
        if end <= self.next_expected {
            return;
        }
        let keep = match self.ahead.get(&offset) {
            Some(held) => held.len() < data.len(),
            None => true,
        };
        if keep {
            self.ahead.insert(offset, data);
        }
        while let Some((&start, _)) = self.ahead.first_key_value() {
            if start > self.next_expected {
                break;
            }
            let (start, held) = self.ahead.pop_first().expect("an entry");
            let held_end = start + held.len() as u64;
            if held_end > self.next_expected {
                let from = (self.next_expected - start) as usize;
                self.received.extend_from_slice(&held[from..]);
                self.next_expected = held_end;
            }
        }
    }
}

/// The data offset of the byte at `subflow_seq`, from a subflow's record of what it carries.
fn lookup_offset(sent: &VecDeque<(u32, u64, u32)>, subflow_seq: u32) -> Option<u64> {
    sent.iter().rev().find_map(|&(seq, offset, len)| {
        let into = subflow_seq.wrapping_sub(seq);
        (into < len).then(|| offset + u64::from(into))
    })
}

/// A pure ACK may carry SACK blocks up to the full option space: keep as many as fit next to
/// the DSS.
fn trim_sack_to_fit(options: &mut TcpOptions<'static>) {
    while options.encoded_len() > mpterm_wire::tcp::MAX_OPTIONS_LEN {
        let blocks = options.sack_blocks;
        assert!(!blocks.is_empty(), "options do not fit: {options:?}");
        let mut fewer = SackBlocks::default();
        for &(left, right) in &blocks.as_slice()[..blocks.len() - 1] {
            fewer.push(left, right);
        }
        options.sack_blocks = fewer;
    }
}
