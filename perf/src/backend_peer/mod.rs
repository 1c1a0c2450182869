//! The pipeline benchmark's stand-in for the backend server: a cheap acknowledging sink and
//! source of [`Pattern`] data, as a sans-IO state machine over Ethernet/IPv4/TCP frames.
//!
//! It answers ARP for its address and accepts every SYN to its listening port (a SYN-ACK with
//! MSS, window scale when offered, timestamps when offered and configured; no SACK). Per
//! connection it is:
//! - a **sink**: in-order payload is taken at once (the advertised window never shrinks), its
//!   stream found from its first [`IDENTIFY_LEN`] bytes ([`Pattern::identify`]) and every
//!   segment compared with the pattern; a segment that differs is counted in
//!   [`BackendPeerCounters::mismatches`], which fails the run. Out-of-order segments are
//!   dropped and answered with a duplicate ACK (the benchmark's path is lossless, so they are
//!   rare, and the sender's fast retransmit repairs them).
//! - a **source** of [`BackendPeer::set_download`] bytes of pattern stream `k % STREAMS` (`k`
//!   counting accepted connections from 0), MSS-sized within the peer's advertised window,
//!   with sender silly-window avoidance (RFC 9293 section 3.8.6.2.1). One segment from
//!   SND.UNA is sent again after three duplicate ACKs (RFC 5681 section 3.2), everything from
//!   SND.UNA after a retransmission timeout (a fixed one: the path is lossless, the timer only
//!   has to make progress certain); a closed window is probed when the timer expires.
//! - closed by the peer: a FIN is answered with our FIN once the download is sent, and the
//!   slot is freed when that FIN is acknowledged; an acceptable RST (RFC 5961 section 3.2:
//!   exactly at RCV.NXT) frees it at once. A segment for no connection gets a RST (RFC 9293
//!   section 3.10.7.1).
//!
//! Output is owed, not sent: [`BackendPeer::handle_frame`] marks what a connection owes (one
//! ACK per connection however many of its segments arrived, the SYN-ACK, data the window
//! allows) and [`BackendPeer::poll_frame`] writes one whole frame at a time into the caller's
//! buffer, taking owing connections in turn. The connection table, its index and both queues
//! are sized in [`BackendPeer::new`]: nothing is allocated per frame.

use core::net::{Ipv4Addr, SocketAddrV4};
use std::collections::VecDeque;

use hashbrown::HashMap;
use mpterm_wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use mpterm_wire::checksum::pseudo_header_v4;
use mpterm_wire::ethernet::{
    EthernetAddress, EthernetFrame, EthernetRepr, ETHERTYPE_ARP, ETHERTYPE_IPV4,
    HEADER_LEN as ETHERNET_HEADER_LEN,
};
use mpterm_wire::ipv4::{Ipv4Packet, Ipv4Repr, HEADER_LEN as IPV4_HEADER_LEN, PROTOCOL_TCP};
use mpterm_wire::tcp::{
    TcpFlags, TcpOptions, TcpRepr, TcpSegment, Timestamps, HEADER_LEN as TCP_HEADER_LEN,
    MAX_OPTIONS_LEN,
};
use mpterm_wire::{SeqNumber, WireError};
use serde::Serialize;

use crate::pattern::{Pattern, IDENTIFY_LEN, MAX_CHUNK_LEN, STREAMS};

mod connection;

use connection::{process_ack, take_payload, AckOutcome, Connection, State, UploadCheck};

/// RFC 9293 section 3.7.1: the MSS assumed when a SYN carries none.
const DEFAULT_PEER_MSS: u16 = 536;
/// RFC 7323 section 2.3: the largest window scale shift.
const MAX_WINDOW_SHIFT: u8 = 14;
/// Bytes the timestamps option takes in every segment (NOP NOP TS).
const TIMESTAMPS_SPACE: usize = 12;
/// ARP replies and RSTs waiting to be sent; more are dropped (and counted).
const CONTROL_QUEUE_LEN: usize = 64;
/// The shortest Ethernet frame without its FCS; shorter frames are padded with zeros.
const MIN_FRAME_LEN: usize = 60;
const TTL: u8 = 64;

/// How a [`BackendPeer`] behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendPeerConfig {
    pub mac: EthernetAddress,
    /// Our address and listening port.
    pub listen: SocketAddrV4,
    /// The MSS we advertise (MTU - 40), also the most payload per segment we send (the peer's
    /// MSS may lower it). At most [`MAX_CHUNK_LEN`].
    pub mss: u16,
    /// The window we advertise, in bytes. The sink takes data at once, so it stays open.
    pub receive_window: u32,
    /// Connections held at once; further SYNs get a RST.
    pub max_connections: usize,
    /// Use RFC 7323 timestamps with peers that offer them.
    pub timestamps: bool,
    /// Verify the TCP checksum of every segment (the IPv4 header checksum is always
    /// verified). Off, the sink does not read the payload twice; the pattern check still
    /// compares every byte.
    pub verify_tcp_checksum: bool,
    /// The retransmission timeout, fixed.
    pub retransmission_timeout_ns: u64,
    /// Consecutive timeouts without an acceptable ACK after which a connection is given up.
    pub max_timeouts: u32,
    /// Seed of the [`Pattern`] both directions use.
    pub pattern_seed: u64,
    /// Bytes every newly accepted connection sends (see [`BackendPeer::set_download`]).
    pub download_bytes: u64,
}

impl BackendPeerConfig {
    /// A sink at `listen` with the defaults: MSS 1460, a 4 MiB window, 16,384 connections,
    /// timestamps, checksums verified, a 200 ms timeout given up after 8, seed 0, no download.
    pub fn new(mac: EthernetAddress, listen: SocketAddrV4) -> BackendPeerConfig {
        BackendPeerConfig {
            mac,
            listen,
            mss: 1460,
            receive_window: 4 << 20,
            max_connections: 16_384,
            timestamps: true,
            verify_tcp_checksum: true,
            retransmission_timeout_ns: 200_000_000,
            max_timeouts: 8,
            pattern_seed: 0,
            download_bytes: 0,
        }
    }
}

/// What the peer has done. A run whose `mismatches` is not zero failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BackendPeerCounters {
    pub frames_received: u64,
    pub frames_sent: u64,
    /// Frames that no parser accepted (Ethernet, ARP, IPv4, TCP and its options).
    pub dropped_malformed: u64,
    /// IPv4 header or TCP checksum wrong.
    pub dropped_bad_checksum: u64,
    /// Other EtherTypes, protocols, addresses; ARP not asking for us.
    pub dropped_not_for_us: u64,
    pub arp_replies: u64,
    pub connections_accepted: u64,
    /// SYNs refused with a RST: the table was full or the port is not ours.
    pub connections_refused: u64,
    /// Both FINs exchanged and ours acknowledged.
    pub connections_closed: u64,
    /// Ended by the peer's RST.
    pub connections_reset: u64,
    /// Given up after `max_timeouts` timeouts in a row.
    pub connections_timed_out: u64,
    pub resets_sent: u64,
    /// ARP replies and RSTs dropped because their queue was full.
    pub control_dropped: u64,
    /// `poll_frame` calls whose buffer was shorter than [`BackendPeer::max_frame_len`].
    pub buffer_too_small: u64,
    /// In-order upload payload taken.
    pub bytes_received: u64,
    /// Upload payload found equal to the pattern.
    pub bytes_verified: u64,
    /// Upload segments that differ from their stream, streams whose first bytes match no
    /// stream, and streams that ended before [`IDENTIFY_LEN`] bytes could identify them.
    pub mismatches: u64,
    /// Download payload sent for the first time.
    pub bytes_sent: u64,
    pub bytes_retransmitted: u64,
    pub segments_retransmitted: u64,
    pub fast_retransmits: u64,
    pub retransmission_timeouts: u64,
    pub out_of_order_dropped: u64,
    /// Connections whose whole download was acknowledged.
    pub downloads_completed: u64,
}

/// One segment a connection owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    SynAck,
    /// Payload at `offset`; `advances` is false for the retransmission after duplicate ACKs,
    /// which leaves SND.NXT where it is.
    Data {
        offset: u64,
        len: u64,
        advances: bool,
    },
    Fin {
        advances: bool,
    },
    Ack,
}

/// A frame that belongs to no connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    ArpReply {
        mac: EthernetAddress,
        ip: Ipv4Addr,
    },
    /// RFC 9293 section 3.10.7.1: `<SEQ=seq><CTL=RST>` or, with `ack`,
    /// `<SEQ=seq><ACK=ack><CTL=RST,ACK>`.
    Reset {
        mac: EthernetAddress,
        remote: SocketAddrV4,
        seq: SeqNumber,
        ack: Option<SeqNumber>,
    },
}

/// How a connection ended, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Closed,
    Reset,
    TimedOut,
}

/// The backend stand-in; see the module documentation.
pub struct BackendPeer {
    config: BackendPeerConfig,
    pattern: Pattern,
    /// The shift of our window field when the peer scales windows.
    receive_shift: u8,
    slots: Vec<Option<Connection>>,
    /// `queued[slot]`: the slot is in `ready` (kept across reuse of the slot).
    queued: Vec<bool>,
    free: Vec<u32>,
    by_remote: HashMap<u64, u32>,
    /// Slots owing output, in turn.
    ready: VecDeque<u32>,
    control: VecDeque<Control>,
    /// No connection's timer expires before this (it may be early; never late).
    next_timer_ns: u64,
    accepted: u64,
    counters: BackendPeerCounters,
}

impl core::fmt::Debug for BackendPeer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BackendPeer")
            .field("config", &self.config)
            .field("open_connections", &self.by_remote.len())
            .field("counters", &self.counters)
            .finish()
    }
}

impl BackendPeer {
    /// A peer with every table sized for `config.max_connections`.
    pub fn new(config: BackendPeerConfig) -> BackendPeer {
        let mut config = config;
        config.mss = config.mss.clamp(64, MAX_CHUNK_LEN as u16);
        let capacity = config.max_connections;
        BackendPeer {
            receive_shift: window_shift_for(config.receive_window),
            pattern: Pattern::new(config.pattern_seed),
            slots: vec![None; capacity],
            queued: vec![false; capacity],
            free: (0..capacity as u32).rev().collect(),
            by_remote: HashMap::with_capacity(capacity),
            ready: VecDeque::with_capacity(capacity),
            control: VecDeque::with_capacity(CONTROL_QUEUE_LEN),
            next_timer_ns: u64::MAX,
            accepted: 0,
            counters: BackendPeerCounters::default(),
            config,
        }
    }

    pub fn config(&self) -> &BackendPeerConfig {
        &self.config
    }

    /// The pattern both directions use (the client side builds the same one from the seed).
    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    pub fn counters(&self) -> BackendPeerCounters {
        self.counters
    }

    pub fn open_connections(&self) -> usize {
        self.by_remote.len()
    }

    /// Bytes every connection accepted from now on sends; connections already open keep
    /// theirs.
    pub fn set_download(&mut self, bytes_per_connection: u64) {
        self.config.download_bytes = bytes_per_connection;
    }

    /// The longest frame [`BackendPeer::poll_frame`] writes: the buffer it needs.
    pub fn max_frame_len(&self) -> usize {
        ETHERNET_HEADER_LEN
            + IPV4_HEADER_LEN
            + TCP_HEADER_LEN
            + MAX_OPTIONS_LEN
            + usize::from(self.config.mss)
    }

    /// When a retransmission timer may expire next: call [`BackendPeer::poll_frame`] at that
    /// time even if no frame arrived. It may be early, never late.
    pub fn poll_timeout_ns(&self) -> Option<u64> {
        (self.next_timer_ns != u64::MAX).then_some(self.next_timer_ns)
    }

    /// Takes one received frame. Whatever it makes us owe is sent by
    /// [`BackendPeer::poll_frame`].
    pub fn handle_frame(&mut self, now_ns: u64, frame: &[u8]) {
        self.counters.frames_received += 1;
        let Ok(ethernet) = EthernetFrame::new_checked(frame) else {
            self.counters.dropped_malformed += 1;
            return;
        };
        match ethernet.ethertype() {
            ETHERTYPE_ARP => self.handle_arp(ethernet.payload()),
            ETHERTYPE_IPV4 if ethernet.dst_addr() == self.config.mac => {
                self.handle_ipv4(now_ns, ethernet.src_addr(), ethernet.payload())
            }
            _ => self.counters.dropped_not_for_us += 1,
        }
    }

    fn handle_arp(&mut self, bytes: &[u8]) {
        let parsed = ArpPacket::new_checked(bytes).and_then(|packet| ArpRepr::parse(&packet));
        let arp = match parsed {
            Ok(arp) => arp,
            Err(_) => {
                self.counters.dropped_malformed += 1;
                return;
            }
        };
        if arp.operation != ArpOperation::Request || arp.target_ip != *self.config.listen.ip() {
            self.counters.dropped_not_for_us += 1;
            return;
        }
        self.push_control(Control::ArpReply {
            mac: arp.sender_mac,
            ip: arp.sender_ip,
        });
    }

    fn handle_ipv4(&mut self, now_ns: u64, src_mac: EthernetAddress, bytes: &[u8]) {
        let Ok(packet) = Ipv4Packet::new_checked(bytes) else {
            self.counters.dropped_malformed += 1;
            return;
        };
        let ip = match Ipv4Repr::parse(&packet) {
            Ok(ip) => ip,
            Err(WireError::Checksum) => {
                self.counters.dropped_bad_checksum += 1;
                return;
            }
            Err(_) => {
                self.counters.dropped_malformed += 1;
                return;
            }
        };
        if ip.dst != *self.config.listen.ip() || ip.protocol != PROTOCOL_TCP {
            self.counters.dropped_not_for_us += 1;
            return;
        }
        let Ok(segment) = TcpSegment::new_checked(packet.payload()) else {
            self.counters.dropped_malformed += 1;
            return;
        };
        if self.config.verify_tcp_checksum && !segment.verify_checksum_v4(ip.src, ip.dst) {
            self.counters.dropped_bad_checksum += 1;
            return;
        }
        let Ok(tcp) = TcpRepr::parse(&segment) else {
            self.counters.dropped_malformed += 1;
            return;
        };
        let remote = SocketAddrV4::new(ip.src, tcp.src_port);
        self.handle_tcp(now_ns, src_mac, remote, &tcp, segment.payload());
    }

    fn handle_tcp(
        &mut self,
        now_ns: u64,
        mac: EthernetAddress,
        remote: SocketAddrV4,
        tcp: &TcpRepr<'_>,
        payload: &[u8],
    ) {
        let flags = tcp.flags;
        if tcp.dst_port != self.config.listen.port() {
            if flags.contains(TcpFlags::SYN) && !flags.contains(TcpFlags::ACK) {
                self.counters.connections_refused += 1;
            }
            self.answer_with_reset(mac, remote, tcp, payload.len());
            return;
        }
        if let Some(&slot) = self.by_remote.get(&remote_key(remote)) {
            self.handle_connection_segment(now_ns, slot as usize, mac, tcp, payload);
            return;
        }
        if flags.contains(TcpFlags::SYN)
            && !flags.contains(TcpFlags::ACK)
            && !flags.contains(TcpFlags::RST)
        {
            self.accept(mac, remote, tcp);
        } else {
            self.answer_with_reset(mac, remote, tcp, payload.len());
        }
    }

    /// RFC 9293 section 3.10.7.1: a segment for no connection is answered with a RST, unless
    /// it is one.
    fn answer_with_reset(
        &mut self,
        mac: EthernetAddress,
        remote: SocketAddrV4,
        tcp: &TcpRepr<'_>,
        payload_len: usize,
    ) {
        if tcp.flags.contains(TcpFlags::RST) {
            return;
        }
        let reset = if tcp.flags.contains(TcpFlags::ACK) {
            Control::Reset {
                mac,
                remote,
                seq: tcp.ack,
                ack: None,
            }
        } else {
            let length = payload_len as u32
                + u32::from(tcp.flags.contains(TcpFlags::SYN))
                + u32::from(tcp.flags.contains(TcpFlags::FIN));
            Control::Reset {
                mac,
                remote,
                seq: SeqNumber(0),
                ack: Some(tcp.seq + length),
            }
        };
        self.push_control(reset);
    }

    fn push_control(&mut self, control: Control) {
        if self.control.len() < CONTROL_QUEUE_LEN {
            self.control.push_back(control);
        } else {
            self.counters.control_dropped += 1;
        }
    }

    fn accept(&mut self, mac: EthernetAddress, remote: SocketAddrV4, syn: &TcpRepr<'_>) {
        let Some(slot) = self.free.pop() else {
            self.counters.connections_refused += 1;
            self.answer_with_reset(mac, remote, syn, 0);
            return;
        };
        let number = self.accepted;
        self.accepted += 1;
        self.counters.connections_accepted += 1;
        let options = &syn.options;
        let timestamps = self.config.timestamps && options.timestamps.is_some();
        let window_scaling = options.window_scale.is_some();
        let peer_mss = options.mss.unwrap_or(DEFAULT_PEER_MSS);
        let option_space = if timestamps { TIMESTAMPS_SPACE } else { 0 };
        let send_mss = usize::from(peer_mss.min(self.config.mss))
            .saturating_sub(option_space)
            .max(1) as u64;
        let iss = SeqNumber(mix(self.config.pattern_seed ^ number) as u32);
        let connection = Connection {
            remote,
            remote_mac: mac,
            state: State::SynReceived,
            irs: syn.seq,
            received: 0,
            fin_received: false,
            upload: UploadCheck::Identifying {
                first: [0; IDENTIFY_LEN],
                held: 0,
            },
            ts_recent: options.timestamps.map_or(0, |ts| ts.value),
            iss,
            download_total: self.config.download_bytes,
            download_stream: number % STREAMS,
            snd_una: 0,
            snd_nxt: 0,
            snd_max: 0,
            // RFC 9293 3.10.7.2: the SYN's window is never scaled.
            peer_window: u64::from(syn.window),
            wl1: syn.seq,
            wl2: iss,
            send_shift: options
                .window_scale
                .map_or(0, |shift| shift.min(MAX_WINDOW_SHIFT)),
            window_scaling,
            timestamps,
            send_mss,
            duplicate_acks: 0,
            retransmit_head: false,
            probe_pending: false,
            rto_deadline: None,
            timeouts_in_row: 0,
            syn_ack_owed: true,
            ack_owed: false,
        };
        self.by_remote.insert(remote_key(remote), slot);
        self.slots[slot as usize] = Some(connection);
        self.enqueue(slot as usize);
    }

    fn handle_connection_segment(
        &mut self,
        now_ns: u64,
        slot: usize,
        mac: EthernetAddress,
        tcp: &TcpRepr<'_>,
        payload: &[u8],
    ) {
        let rto = self.config.retransmission_timeout_ns;
        let receive_window = u64::from(self.config.receive_window);
        let Some(connection) = self.slots[slot].as_mut() else {
            return;
        };
        let flags = tcp.flags;
        let receive_next = connection.receive_next();
        if flags.contains(TcpFlags::RST) {
            // RFC 5961 section 3.2: only a RST exactly at RCV.NXT resets; one elsewhere in the
            // window gets a challenge ACK, one outside it is ignored.
            let ahead = tcp.seq.distance_from(receive_next);
            if ahead == 0 {
                self.release(slot, Ending::Reset);
            } else if ahead > 0 && (ahead as u64) < receive_window {
                connection.ack_owed = true;
                self.enqueue(slot);
            }
            return;
        }
        if flags.contains(TcpFlags::SYN) {
            if connection.state == State::SynReceived && tcp.seq == connection.irs {
                // Our SYN-ACK was lost: the SYN came again.
                connection.syn_ack_owed = true;
            } else {
                // RFC 5961 section 4.2: a SYN on a synchronized connection gets a challenge
                // ACK.
                connection.ack_owed = true;
            }
            self.enqueue(slot);
            return;
        }
        if !flags.contains(TcpFlags::ACK) {
            // RFC 9293 3.10.7.4, fifth: a segment without ACK is dropped.
            return;
        }
        if connection.state == State::SynReceived {
            if tcp.ack != connection.seq_at(0) {
                let remote = connection.remote;
                self.push_control(Control::Reset {
                    mac,
                    remote,
                    seq: tcp.ack,
                    ack: None,
                });
                return;
            }
            connection.state = State::Synchronized;
            connection.syn_ack_owed = false;
            connection.rto_deadline = None;
            connection.peer_window = u64::from(tcp.window) << connection.send_shift;
            connection.wl1 = tcp.seq;
            connection.wl2 = tcp.ack;
        }
        if let Some(ts) = tcp.options.timestamps {
            // RFC 7323 section 4.3: echo the TSval of a segment that covers RCV.NXT.
            if connection.timestamps && tcp.seq.distance_from(receive_next) <= 0 {
                connection.ts_recent = ts.value;
            }
        }
        let carries_data = !payload.is_empty() || flags.contains(TcpFlags::FIN);
        match process_ack(connection, now_ns, rto, tcp, carries_data) {
            AckOutcome::Unacceptable => {
                // RFC 9293 3.10.7.4: an ACK of something not yet sent is answered and dropped.
                connection.ack_owed = true;
                self.enqueue(slot);
                return;
            }
            AckOutcome::Progress { download_completed } => {
                if download_completed {
                    self.counters.downloads_completed += 1;
                }
            }
            AckOutcome::FastRetransmit => self.counters.fast_retransmits += 1,
            AckOutcome::Nothing => {}
        }
        if !payload.is_empty() {
            take_payload(
                connection,
                &self.pattern,
                &mut self.counters,
                tcp.seq,
                payload,
            );
        }
        if flags.contains(TcpFlags::FIN) {
            let fin_seq = tcp.seq + payload.len() as u32;
            if !connection.fin_received && fin_seq == connection.receive_next() {
                connection.fin_received = true;
            }
            connection.ack_owed = true;
        }
        if connection.fin_received && connection.fin_acknowledged() {
            self.release(slot, Ending::Closed);
            return;
        }
        if connection.snd_una == connection.snd_max
            && connection.snd_nxt < connection.download_total
            && connection.peer_window == 0
            && connection.rto_deadline.is_none()
        {
            // A closed window with nothing in flight: the timer will probe it.
            let deadline = now_ns.saturating_add(rto);
            connection.rto_deadline = Some(deadline);
            self.next_timer_ns = self.next_timer_ns.min(deadline);
        }
        if let Some(deadline) = connection.rto_deadline {
            self.next_timer_ns = self.next_timer_ns.min(deadline);
        }
        if connection.next_output().is_some() {
            self.enqueue(slot);
        }
    }

    fn enqueue(&mut self, slot: usize) {
        if !self.queued[slot] {
            self.queued[slot] = true;
            self.ready.push_back(slot as u32);
        }
    }

    fn release(&mut self, slot: usize, ending: Ending) {
        let Some(connection) = self.slots[slot].take() else {
            return;
        };
        if let UploadCheck::Identifying { held, .. } = connection.upload {
            if held > 0 {
                // Too short to tell which stream it was: not proven, so not passed.
                self.counters.mismatches += 1;
            }
        }
        self.by_remote.remove(&remote_key(connection.remote));
        self.free.push(slot as u32);
        match ending {
            Ending::Closed => self.counters.connections_closed += 1,
            Ending::Reset => self.counters.connections_reset += 1,
            Ending::TimedOut => self.counters.connections_timed_out += 1,
        }
    }

    /// Writes the next frame owed into `out` and returns its length, or `None` when nothing is
    /// owed (or `out` is shorter than [`BackendPeer::max_frame_len`]). Expired timers are run
    /// first.
    pub fn poll_frame(&mut self, now_ns: u64, out: &mut [u8]) -> Option<usize> {
        if out.len() < self.max_frame_len() {
            self.counters.buffer_too_small += 1;
            return None;
        }
        if now_ns >= self.next_timer_ns {
            self.run_timers(now_ns);
        }
        if let Some(control) = self.control.pop_front() {
            let len = self.emit_control(control, out);
            self.counters.frames_sent += 1;
            return Some(len);
        }
        while let Some(slot) = self.ready.pop_front() {
            let slot = slot as usize;
            self.queued[slot] = false;
            let Some(connection) = self.slots[slot].as_ref() else {
                continue;
            };
            let Some(output) = connection.next_output() else {
                continue;
            };
            let len = self.emit_output(slot, output, now_ns, out);
            self.apply_output(slot, output, now_ns);
            if self.slots[slot]
                .as_ref()
                .is_some_and(|c| c.next_output().is_some())
            {
                self.enqueue(slot);
            }
            self.counters.frames_sent += 1;
            return Some(len);
        }
        None
    }

    /// Expires every timer due by `now_ns` and finds the next one.
    fn run_timers(&mut self, now_ns: u64) {
        let mut next = u64::MAX;
        for slot in 0..self.slots.len() {
            let Some(connection) = self.slots[slot].as_mut() else {
                continue;
            };
            match connection.rto_deadline {
                Some(deadline) if deadline <= now_ns => {}
                Some(deadline) => {
                    next = next.min(deadline);
                    continue;
                }
                None => continue,
            }
            connection.rto_deadline = None;
            connection.timeouts_in_row += 1;
            if connection.timeouts_in_row > self.config.max_timeouts {
                self.release(slot, Ending::TimedOut);
                continue;
            }
            self.counters.retransmission_timeouts += 1;
            if connection.state == State::SynReceived {
                connection.syn_ack_owed = true;
            } else {
                // RFC 6298 section 5.4: retransmit from the oldest unacknowledged byte; at
                // least one byte goes even into a closed window (RFC 9293 section 3.8.6.1:
                // the probe), so that the timer is armed again whatever the window.
                connection.snd_nxt = connection.snd_una;
                connection.retransmit_head = false;
                connection.duplicate_acks = 0;
                connection.probe_pending = true;
            }
            self.enqueue(slot);
        }
        self.next_timer_ns = next;
    }

    /// Records what sending `output` did to the connection.
    fn apply_output(&mut self, slot: usize, output: Output, now_ns: u64) {
        let rto = self.config.retransmission_timeout_ns;
        let Some(connection) = self.slots[slot].as_mut() else {
            return;
        };
        connection.ack_owed = false;
        let occupies_sequence = match output {
            Output::SynAck => {
                connection.syn_ack_owed = false;
                true
            }
            Output::Data {
                offset,
                len,
                advances,
            } => {
                let end = offset + len;
                let fresh = end.saturating_sub(connection.snd_max.max(offset));
                self.counters.bytes_sent += fresh;
                if fresh < len {
                    self.counters.bytes_retransmitted += len - fresh;
                    self.counters.segments_retransmitted += 1;
                }
                if advances {
                    connection.snd_nxt = end;
                } else {
                    connection.retransmit_head = false;
                }
                connection.snd_max = connection.snd_max.max(end);
                connection.probe_pending = false;
                true
            }
            Output::Fin { advances } => {
                let end = connection.fin_offset() + 1;
                if connection.snd_max >= end {
                    self.counters.segments_retransmitted += 1;
                }
                if advances {
                    connection.snd_nxt = end;
                } else {
                    connection.retransmit_head = false;
                }
                connection.snd_max = connection.snd_max.max(end);
                true
            }
            Output::Ack => false,
        };
        if occupies_sequence && connection.rto_deadline.is_none() {
            let deadline = now_ns.saturating_add(rto);
            connection.rto_deadline = Some(deadline);
            self.next_timer_ns = self.next_timer_ns.min(deadline);
        }
    }

    fn emit_control(&mut self, control: Control, out: &mut [u8]) -> usize {
        match control {
            Control::ArpReply { mac, ip } => {
                self.counters.arp_replies += 1;
                let arp = ArpRepr {
                    operation: ArpOperation::Reply,
                    sender_mac: self.config.mac,
                    sender_ip: *self.config.listen.ip(),
                    target_mac: mac,
                    target_ip: ip,
                };
                let ethernet = EthernetRepr {
                    src: self.config.mac,
                    dst: mac,
                    ethertype: ETHERTYPE_ARP,
                };
                // `out` holds at least `max_frame_len` bytes, far more than these 42.
                let len = ethernet.emit(out).unwrap_or(0)
                    + arp.emit(&mut out[ETHERNET_HEADER_LEN..]).unwrap_or(0);
                pad(out, len)
            }
            Control::Reset {
                mac,
                remote,
                seq,
                ack,
            } => {
                self.counters.resets_sent += 1;
                let flags = if ack.is_some() {
                    TcpFlags::RST | TcpFlags::ACK
                } else {
                    TcpFlags::RST
                };
                let header = SegmentHeader {
                    mac,
                    remote,
                    seq,
                    ack: ack.unwrap_or(SeqNumber(0)),
                    flags,
                    window: 0,
                    options: TcpOptions::default(),
                };
                self.emit_segment(&header, None, out)
            }
        }
    }

    fn emit_output(&self, slot: usize, output: Output, now_ns: u64, out: &mut [u8]) -> usize {
        let Some(connection) = self.slots[slot].as_ref() else {
            return 0;
        };
        let timestamps = connection.timestamps.then_some(Timestamps {
            value: (now_ns / 1_000_000) as u32,
            echo_reply: connection.ts_recent,
        });
        let mut header = SegmentHeader {
            mac: connection.remote_mac,
            remote: connection.remote,
            seq: connection.seq_at(connection.snd_nxt),
            ack: connection.receive_next(),
            flags: TcpFlags::ACK,
            window: self.window_field(connection),
            options: TcpOptions {
                timestamps,
                ..TcpOptions::default()
            },
        };
        let mut payload = None;
        match output {
            Output::SynAck => {
                header.seq = connection.iss;
                header.flags = TcpFlags::SYN | TcpFlags::ACK;
                // RFC 7323 section 2.2: the window of a SYN is never scaled.
                header.window = self.config.receive_window.min(u32::from(u16::MAX)) as u16;
                header.options.mss = Some(self.config.mss);
                header.options.window_scale =
                    connection.window_scaling.then_some(self.receive_shift);
            }
            Output::Data { offset, len, .. } => {
                header.seq = connection.seq_at(offset);
                header.flags = TcpFlags::ACK | TcpFlags::PSH;
                payload = Some(PatternRun {
                    stream: connection.download_stream,
                    offset,
                    len: len as usize,
                });
            }
            Output::Fin { .. } => {
                header.seq = connection.seq_at(connection.fin_offset());
                header.flags = TcpFlags::FIN | TcpFlags::ACK;
            }
            Output::Ack => {}
        }
        self.emit_segment(&header, payload, out)
    }

    /// Our window field: the whole receive window, scaled when the peer scales windows.
    fn window_field(&self, connection: &Connection) -> u16 {
        let window = if connection.window_scaling {
            self.config.receive_window >> self.receive_shift
        } else {
            self.config.receive_window
        };
        window.min(u32::from(u16::MAX)) as u16
    }

    /// Writes Ethernet, IPv4 and TCP headers and the pattern payload into `out` and returns
    /// the frame's length. The TCP checksum adds the payload's sum from the pattern's prefix
    /// sums instead of reading the payload again.
    fn emit_segment(
        &self,
        header: &SegmentHeader,
        payload: Option<PatternRun>,
        out: &mut [u8],
    ) -> usize {
        let tcp_at = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN;
        let repr = TcpRepr {
            src_port: self.config.listen.port(),
            dst_port: header.remote.port(),
            seq: header.seq,
            ack: header.ack,
            flags: header.flags,
            window: header.window,
            options: header.options,
        };
        // Options here are at most MSS, window scale and timestamps (20 bytes) and `out` holds
        // `max_frame_len` bytes, so none of the emits below can fail.
        let Ok(header_len) = repr.emit(&mut out[tcp_at..]) else {
            return 0;
        };
        let payload_at = tcp_at + header_len;
        let payload_len = payload.map_or(0, |run| run.len);
        let mut payload_sum = 0;
        if let Some(run) = payload {
            let bytes = self.pattern.chunk(run.stream, run.offset, run.len);
            out[payload_at..payload_at + bytes.len()].copy_from_slice(bytes);
            payload_sum = self.pattern.chunk_sum(run.stream, run.offset, run.len);
        }
        let segment_len = header_len + payload_len;
        let src = *self.config.listen.ip();
        let dst = *header.remote.ip();
        let ip = Ipv4Repr {
            src,
            dst,
            protocol: PROTOCOL_TCP,
            payload_len: segment_len as u16,
            ttl: TTL,
        };
        let ethernet = EthernetRepr {
            src: self.config.mac,
            dst: header.mac,
            ethertype: ETHERTYPE_IPV4,
        };
        if ip.emit(&mut out[ETHERNET_HEADER_LEN..]).is_err() || ethernet.emit(out).is_err() {
            return 0;
        }
        let mut sum = pseudo_header_v4(src, dst, PROTOCOL_TCP, segment_len as u16);
        sum.add_bytes(&out[tcp_at..payload_at]);
        sum.add_u16(payload_sum);
        out[tcp_at + 16..tcp_at + 18].copy_from_slice(&sum.finish().to_be_bytes());
        pad(out, payload_at + payload_len)
    }
}

/// The TCP header fields of a segment to emit.
#[derive(Debug, Clone, Copy)]
struct SegmentHeader {
    mac: EthernetAddress,
    remote: SocketAddrV4,
    seq: SeqNumber,
    ack: SeqNumber,
    flags: TcpFlags,
    window: u16,
    options: TcpOptions<'static>,
}

/// Payload taken from the pattern.
#[derive(Debug, Clone, Copy)]
struct PatternRun {
    stream: u64,
    offset: u64,
    len: usize,
}

/// Zero-fills a frame shorter than the Ethernet minimum and returns its length.
fn pad(out: &mut [u8], len: usize) -> usize {
    if len >= MIN_FRAME_LEN {
        return len;
    }
    out[len..MIN_FRAME_LEN].fill(0);
    MIN_FRAME_LEN
}

fn remote_key(remote: SocketAddrV4) -> u64 {
    (u64::from(u32::from(*remote.ip())) << 16) | u64::from(remote.port())
}

/// SplitMix64's finaliser: initial sequence numbers that differ per connection.
fn mix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The smallest shift that lets `window` bytes be advertised (RFC 7323, section 2.3).
fn window_shift_for(window: u32) -> u8 {
    let mut shift = 0u8;
    while shift < MAX_WINDOW_SHIFT && (u32::from(u16::MAX) << shift) < window {
        shift += 1;
    }
    shift
}
