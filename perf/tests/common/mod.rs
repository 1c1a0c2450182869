//! A lab on one thread: plain-TCP clients (`mpterm_engine::tcp::Tcb`, the engine's own TCP in
//! the active-open role) exchange Ethernet frames with a `BackendPeer`, in virtual time, over
//! a link that a test may make lose or change frames.

#![allow(dead_code)]

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use bytes::Bytes;
use mpterm_engine::tcp::{OutgoingSegment, Tcb, TcpState};
use mpterm_engine::{Instant, Liveness, TcpTuning};
use mpterm_perf::backend_peer::{BackendPeer, BackendPeerConfig};
use mpterm_perf::pattern::{Pattern, IDENTIFY_LEN};
use mpterm_wire::ethernet::{EthernetAddress, EthernetFrame, EthernetRepr, ETHERTYPE_IPV4};
use mpterm_wire::ipv4::{Ipv4Packet, Ipv4Repr, PROTOCOL_TCP};
use mpterm_wire::tcp::{fill_checksum_v4, TcpRepr, TcpSegment};
use mpterm_wire::SeqNumber;

pub const CLIENT_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
pub const PEER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
pub const PEER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 2), 6000);
pub const SEED: u64 = 42;
/// One-way delay of every frame.
const HOP_NS: u64 = 20_000;

/// Which way a frame travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    ToPeer,
    ToClient,
}

/// What the link does with one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Drop,
    /// Deliver these bytes instead.
    Replace(Vec<u8>),
}

pub fn peer_config() -> BackendPeerConfig {
    let mut config = BackendPeerConfig::new(PEER_MAC, PEER);
    config.pattern_seed = SEED;
    config.max_connections = 64;
    config
}

pub fn client_tuning() -> TcpTuning {
    TcpTuning {
        receive_buffer: 256 * 1024,
        send_buffer: 256 * 1024,
        liveness: Liveness::retransmission_limit_only(Duration::from_secs(60)),
        ..TcpTuning::default()
    }
}

/// One client connection and what it sends and has received.
pub struct Client {
    pub tcb: Tcb<Bytes>,
    pub upload_stream: u64,
    pub upload_total: u64,
    pub upload_queued: u64,
    /// Bytes to flip in the upload before they are queued: `(offset, xor)`.
    pub upload_corruption: Option<(u64, u8)>,
    pub expect_download: u64,
    pub downloaded: Vec<u8>,
    /// The client takes received data out of its TCB (when false its window fills).
    pub reading: bool,
    pub closed: bool,
}

impl Client {
    pub fn port(&self) -> u16 {
        self.tcb.local().port()
    }

    /// The stream the download carries, found from its first bytes.
    pub fn download_stream(&self, pattern: &Pattern) -> Option<u64> {
        pattern.identify(self.downloaded.get(..IDENTIFY_LEN)?)
    }

    /// The download arrived whole and is the pattern of the stream it identifies.
    pub fn download_is_exact(&self, pattern: &Pattern) -> bool {
        self.downloaded.len() as u64 == self.expect_download
            && (self.expect_download == 0
                || self
                    .download_stream(pattern)
                    .is_some_and(|stream| pattern.verify(stream, 0, &self.downloaded)))
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.tcb.state(), TcpState::TimeWait | TcpState::Closed)
    }
}

/// Decides the fate of each frame on the link.
pub type Link = Box<dyn FnMut(Dir, &[u8]) -> Verdict>;

pub struct Harness {
    pub peer: BackendPeer,
    pub pattern: Pattern,
    pub clients: Vec<Client>,
    pub now_ns: u64,
    pub link: Link,
    /// Called with true before and false after every call into the peer.
    pub around_peer: fn(bool),
    /// Frames each way, counted before the link acts.
    pub frames_to_peer: u64,
    pub frames_to_client: u64,
    buffer: Vec<u8>,
}

impl Harness {
    pub fn new(config: BackendPeerConfig) -> Harness {
        let peer = BackendPeer::new(config);
        let buffer = vec![0u8; peer.max_frame_len()];
        Harness {
            peer,
            pattern: Pattern::new(config.pattern_seed),
            clients: Vec::new(),
            now_ns: 1_000_000_000,
            link: Box::new(|_, _| Verdict::Pass),
            around_peer: |_| {},
            frames_to_peer: 0,
            frames_to_client: 0,
            buffer,
        }
    }

    /// Opens a connection that uploads `upload` bytes of `stream` and expects `download`.
    pub fn connect(&mut self, stream: u64, upload: u64, download: u64) -> usize {
        let index = self.clients.len();
        let local = SocketAddrV4::new(CLIENT_IP, 40_000 + index as u16);
        let iss = SeqNumber(0x8000_0000u32.wrapping_add(index as u32 * 7919));
        let tcb = Tcb::connect(
            Instant::from_nanos(self.now_ns),
            local,
            PEER,
            iss,
            1460,
            client_tuning(),
        );
        self.clients.push(Client {
            tcb,
            upload_stream: stream,
            upload_total: upload,
            upload_queued: 0,
            upload_corruption: None,
            expect_download: download,
            downloaded: Vec::new(),
            reading: true,
            closed: false,
        });
        index
    }

    fn feed_and_read(&mut self) {
        for client in &mut self.clients {
            while client.upload_queued < client.upload_total {
                let left = client.upload_total - client.upload_queued;
                let len = left.min(4096).min(client.tcb.send_capacity() as u64) as usize;
                if len == 0 {
                    break;
                }
                let mut bytes = self
                    .pattern
                    .chunk(client.upload_stream, client.upload_queued, len)
                    .to_vec();
                if let Some((offset, xor)) = client.upload_corruption {
                    if (client.upload_queued..client.upload_queued + len as u64).contains(&offset) {
                        bytes[(offset - client.upload_queued) as usize] ^= xor;
                    }
                }
                client
                    .tcb
                    .send(Bytes::from(bytes))
                    .expect("within capacity");
                client.upload_queued += len as u64;
            }
            if client.reading {
                while let Some(chunk) = client.tcb.recv() {
                    client.downloaded.extend_from_slice(&chunk.payload);
                }
            }
            let uploaded = client.upload_queued == client.upload_total;
            let downloaded = client.downloaded.len() as u64 >= client.expect_download;
            if !client.closed && uploaded && downloaded && client.tcb.is_synchronized() {
                client.tcb.close();
                client.closed = true;
            }
        }
    }

    /// Runs until nothing moves and no timer is left, or for at most `rounds` exchanges.
    /// Returns false when it stopped on the round limit.
    pub fn run(&mut self, rounds: usize) -> bool {
        for _ in 0..rounds {
            self.feed_and_read();
            let mut moved = false;
            let now = Instant::from_nanos(self.now_ns);
            let mut to_peer = Vec::new();
            for client in &mut self.clients {
                while let Some(segment) = client.tcb.poll_segment(now) {
                    to_peer.push(client_frame(&client.tcb, &segment));
                }
            }
            self.now_ns += HOP_NS;
            for frame in to_peer {
                moved = true;
                self.frames_to_peer += 1;
                match (self.link)(Dir::ToPeer, &frame) {
                    Verdict::Pass => self.peer_handle(&frame),
                    Verdict::Replace(other) => self.peer_handle(&other),
                    Verdict::Drop => {}
                }
            }
            let mut to_client = Vec::new();
            loop {
                (self.around_peer)(true);
                let polled = self.peer.poll_frame(self.now_ns, &mut self.buffer);
                (self.around_peer)(false);
                let Some(len) = polled else { break };
                to_client.push(self.buffer[..len].to_vec());
            }
            self.now_ns += HOP_NS;
            for frame in to_client {
                moved = true;
                self.frames_to_client += 1;
                match (self.link)(Dir::ToClient, &frame) {
                    Verdict::Pass => self.client_handle(&frame),
                    Verdict::Replace(other) => self.client_handle(&other),
                    Verdict::Drop => {}
                }
            }
            if !moved && !self.advance_to_next_timer() {
                return true;
            }
            self.run_client_timers();
        }
        false
    }

    fn peer_handle(&mut self, frame: &[u8]) {
        (self.around_peer)(true);
        self.peer.handle_frame(self.now_ns, frame);
        (self.around_peer)(false);
    }

    fn client_handle(&mut self, frame: &[u8]) {
        let now = Instant::from_nanos(self.now_ns);
        let (port, repr, payload) = parse_peer_frame(frame);
        let client = self
            .clients
            .iter_mut()
            .find(|client| client.port() == port)
            .expect("a frame for a client that exists");
        let payload = (!payload.is_empty()).then(|| Bytes::copy_from_slice(payload));
        client.tcb.handle_segment(now, &repr, payload);
    }

    fn run_client_timers(&mut self) {
        let now = Instant::from_nanos(self.now_ns);
        for client in &mut self.clients {
            if client
                .tcb
                .poll_timeout()
                .is_some_and(|deadline| deadline <= now)
            {
                client.tcb.handle_timeout(now);
            }
        }
    }

    /// Moves time to the next deadline of anyone (TIME-WAIT excepted); false when there is
    /// none.
    fn advance_to_next_timer(&mut self) -> bool {
        let clients = self
            .clients
            .iter()
            .filter(|client| client.tcb.state() != TcpState::TimeWait)
            .filter_map(|client| client.tcb.poll_timeout())
            .map(|deadline| deadline.as_nanos());
        let Some(next) = clients.chain(self.peer.poll_timeout_ns()).min() else {
            return false;
        };
        self.now_ns = self.now_ns.max(next);
        true
    }

    pub fn all_finished(&self) -> bool {
        self.clients.iter().all(Client::is_finished)
    }
}

/// The frame a client's segment travels in, checksums filled.
pub fn client_frame(tcb: &Tcb<Bytes>, segment: &OutgoingSegment<Bytes>) -> Vec<u8> {
    let payload: &[u8] = segment.payload.as_deref().unwrap_or(&[]);
    let std::net::IpAddr::V4(src) = tcb.local().ip() else {
        panic!("the simulated clients are IPv4");
    };
    segment_frame(src, &segment.repr, payload)
}

/// An Ethernet frame from the client address carrying `repr` and `payload` to the peer.
pub fn segment_frame(src: Ipv4Addr, repr: &TcpRepr<'_>, payload: &[u8]) -> Vec<u8> {
    let header_len = repr.header_len();
    let tcp_len = header_len + payload.len();
    let mut frame = vec![0u8; 14 + 20 + tcp_len];
    EthernetRepr {
        src: CLIENT_MAC,
        dst: PEER_MAC,
        ethertype: ETHERTYPE_IPV4,
    }
    .emit(&mut frame)
    .unwrap();
    Ipv4Repr {
        src,
        dst: *PEER.ip(),
        protocol: PROTOCOL_TCP,
        payload_len: tcp_len as u16,
        ttl: 64,
    }
    .emit(&mut frame[14..])
    .unwrap();
    repr.emit(&mut frame[34..]).unwrap();
    frame[34 + header_len..].copy_from_slice(payload);
    let (header, rest) = frame[34..].split_at_mut(header_len);
    fill_checksum_v4(header, src, *PEER.ip(), rest);
    frame
}

/// The destination port, TCP header and payload of a frame the peer sent; every checksum
/// must verify and the addresses must be the peer's.
pub fn parse_peer_frame(frame: &[u8]) -> (u16, TcpRepr<'_>, &[u8]) {
    let ethernet = EthernetFrame::new_checked(frame).expect("an Ethernet frame");
    assert_eq!(ethernet.src_addr(), PEER_MAC);
    assert_eq!(ethernet.dst_addr(), CLIENT_MAC);
    assert_eq!(ethernet.ethertype(), ETHERTYPE_IPV4);
    let packet = Ipv4Packet::new_checked(&frame[14..]).expect("an IPv4 packet");
    let ip = Ipv4Repr::parse(&packet).expect("a valid IPv4 header");
    assert_eq!(ip.src, *PEER.ip());
    let tcp_bytes = &frame[14 + packet.header_len()..14 + usize::from(packet.total_len())];
    let segment = TcpSegment::new_checked(tcp_bytes).expect("a TCP segment");
    assert!(
        segment.verify_checksum_v4(ip.src, ip.dst),
        "the peer's TCP checksum"
    );
    let repr = TcpRepr::parse(&segment).expect("TCP options");
    let header_len = segment.header_len();
    (repr.dst_port, repr, &tcp_bytes[header_len..])
}
