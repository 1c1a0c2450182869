//! Two control blocks wired back to back: every segment one emits is handed to the other,
//! unless a test drops, delays or forges it. Time only moves when a test moves it. This file
//! holds the harness; the tests are grouped by what they exercise.

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use bytes::Bytes;
use mpterm_wire::tcp::{TcpFlags, TcpOptions, TcpRepr, Timestamps};
use mpterm_wire::SeqNumber;

use super::{CloseReason, OutgoingSegment, Tcb, TcpState};
use crate::{CongestionAlgorithm, Instant, Liveness, TcpTuning};

const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000);
const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);
const CLIENT_ISS: SeqNumber = SeqNumber(0xffff_f000);
const SERVER_ISS: SeqNumber = SeqNumber(1_000_000);
const MSS: u16 = 1000;
/// One-way delay the tests pretend each segment takes.
const HOP: Duration = Duration::from_millis(5);

type Segment = OutgoingSegment<Bytes>;

fn tuning() -> TcpTuning {
    TcpTuning {
        receive_buffer: 16 * 1024,
        // The buffer is pinned: the tests count the window in bytes (`right_sizing.rs` grows it).
        receive_buffer_initial: 16 * 1024,
        receive_buffer_autotuning: false,
        send_buffer: 32 * 1024,
        initial_rto: Duration::from_secs(1),
        min_rto: Duration::from_millis(200),
        max_rto: Duration::from_secs(60),
        time_wait: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(30),
        // Most tests watch the retransmission timer alone; the liveness tests set their own.
        liveness: Liveness::retransmission_limit_only(Duration::from_secs(60)),
        congestion_control: CongestionAlgorithm::NewReno,
        // The ECN tests turn it on; flags elsewhere stay as RFC 9293 alone has them.
        ecn: false,
        // The pacing tests turn it on; the others count segments sent at one instant.
        pacing: false,
    }
}

/// Deterministic test data: byte `i` of stream `salt`.
fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ salt)
        .collect()
}

fn drain(tcb: &mut Tcb<Bytes>, now: Instant) -> Vec<Segment> {
    let mut out = Vec::new();
    while let Some(segment) = tcb.poll_segment(now) {
        out.push(segment);
        assert!(out.len() < 10_000, "poll_segment never ends");
    }
    out
}

fn deliver(tcb: &mut Tcb<Bytes>, now: Instant, segment: &Segment) {
    tcb.handle_segment(now, &segment.repr, segment.payload.clone());
}

fn read_all(tcb: &mut Tcb<Bytes>, into: &mut Vec<u8>) {
    while let Some(chunk) = tcb.recv() {
        into.extend_from_slice(&chunk.payload);
    }
}

fn payload_len(segment: &Segment) -> usize {
    segment.payload.as_ref().map_or(0, |p| p.len())
}

fn is_pure_ack(segment: &Segment) -> bool {
    payload_len(segment) == 0
        && segment.repr.flags.contains(TcpFlags::ACK)
        && !segment.repr.flags.contains(TcpFlags::SYN)
        && !segment.repr.flags.contains(TcpFlags::FIN)
        && !segment.repr.flags.contains(TcpFlags::RST)
}

/// Which way a segment travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    ToServer,
    ToClient,
}

struct Pair {
    client: Tcb<Bytes>,
    server: Tcb<Bytes>,
    now: Instant,
    /// Every segment either side emitted, with its direction, in order.
    log: Vec<(Dir, Segment)>,
}

impl Pair {
    /// A client with `client_tuning` connects to a server with `server_tuning`; the handshake
    /// runs to completion.
    fn with_tunings(client_tuning: TcpTuning, server_tuning: TcpTuning) -> Pair {
        Pair::negotiated(client_tuning, server_tuning, true)
    }

    /// A pair whose server does not take the client's SACK-permitted (RFC 2018): loss
    /// recovery by duplicate ACKs and NewReno.
    fn without_sack() -> Pair {
        Pair::negotiated(tuning(), tuning(), false)
    }

    fn negotiated(client_tuning: TcpTuning, server_tuning: TcpTuning, sack: bool) -> Pair {
        let now = Instant::from_nanos(1_000_000_000);
        let mut client = Tcb::connect(now, CLIENT, SERVER, CLIENT_ISS, MSS, client_tuning);
        let mut syn = client.poll_segment(now).expect("SYN");
        syn.repr.options.sack_permitted &= sack;
        let now = now + HOP;
        let server = Tcb::accept(
            now,
            SERVER,
            CLIENT,
            &syn.repr,
            SERVER_ISS,
            MSS,
            server_tuning,
        );
        let mut pair = Pair {
            client,
            server,
            now,
            log: vec![(Dir::ToServer, syn)],
        };
        pair.pump(|_, _| true);
        assert_eq!(pair.client.state(), TcpState::Established);
        assert_eq!(pair.server.state(), TcpState::Established);
        pair
    }

    fn new() -> Pair {
        Pair::with_tunings(tuning(), tuning())
    }

    fn advance(&mut self, by: Duration) {
        self.now = self.now + by;
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
    }

    /// Moves time to the earlier deadline of the two sides and runs the timers.
    fn advance_to_next_timeout(&mut self) -> bool {
        let next = [self.client.poll_timeout(), self.server.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(deadline) => {
                self.now = self.now.max(deadline);
                self.client.handle_timeout(self.now);
                self.server.handle_timeout(self.now);
                true
            }
            None => false,
        }
    }

    /// Exchanges segments until neither side has anything to send. `pass` decides for each
    /// segment whether it arrives. Each round trip takes two hops of time.
    fn pump(&mut self, mut pass: impl FnMut(Dir, &Segment) -> bool) -> usize {
        let mut exchanged = 0;
        for _ in 0..100_000 {
            let to_server = drain(&mut self.client, self.now);
            let to_client = drain(&mut self.server, self.now);
            if to_server.is_empty() && to_client.is_empty() {
                return exchanged;
            }
            self.now = self.now + HOP;
            for segment in to_server {
                exchanged += 1;
                if pass(Dir::ToServer, &segment) {
                    deliver(&mut self.server, self.now, &segment);
                }
                self.log.push((Dir::ToServer, segment));
            }
            for segment in to_client {
                exchanged += 1;
                if pass(Dir::ToClient, &segment) {
                    deliver(&mut self.client, self.now, &segment);
                }
                self.log.push((Dir::ToClient, segment));
            }
        }
        panic!("the two sides never went quiet");
    }
}

/// Queues as much of `data[*sent..]` as the send buffer takes, in chunks of at most 3000 bytes
/// (so segments sometimes end at a buffer boundary).
fn feed(tcb: &mut Tcb<Bytes>, data: &Bytes, sent: &mut usize) {
    while *sent < data.len() {
        let len = (data.len() - *sent).min(3000).min(tcb.send_capacity());
        if len == 0 {
            break;
        }
        tcb.send(data.slice(*sent..*sent + len))
            .expect("send within capacity");
        *sent += len;
    }
}

/// Transfers `up` from client to server and `down` from server to client at the same time,
/// running timers when the sides go quiet, and returns what each side received.
fn transfer(
    pair: &mut Pair,
    up: &[u8],
    down: &[u8],
    mut pass: impl FnMut(Dir, &Segment) -> bool,
) -> (Vec<u8>, Vec<u8>) {
    let (up, down) = (Bytes::copy_from_slice(up), Bytes::copy_from_slice(down));
    let (mut up_sent, mut down_sent) = (0, 0);
    let (mut at_server, mut at_client) = (Vec::new(), Vec::new());
    for _ in 0..10_000 {
        feed(&mut pair.client, &up, &mut up_sent);
        feed(&mut pair.server, &down, &mut down_sent);
        let exchanged = pair.pump(&mut pass);
        read_all(&mut pair.server, &mut at_server);
        read_all(&mut pair.client, &mut at_client);
        assert!(pair.server.received_buffered() <= tuning().receive_buffer as usize);
        if at_server.len() == up.len() && at_client.len() == down.len() {
            return (at_server, at_client);
        }
        if exchanged == 0 && !pair.advance_to_next_timeout() {
            break;
        }
    }
    panic!(
        "transfer stalled: server got {} of {}, client got {} of {}",
        at_server.len(),
        up.len(),
        at_client.len(),
        down.len()
    );
}

mod autotuning;
mod close;
mod data;
mod delayed_ack;
mod ecn;
mod flow_control;
mod handshake;
mod liveness;
mod pacing;
mod path_mtu;
mod reordering;
mod reset;
mod retransmission;
mod sack;
mod timestamps;
mod undo;
