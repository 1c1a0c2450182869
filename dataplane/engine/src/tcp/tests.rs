//! Two control blocks wired back to back: every segment one emits is handed to the other,
//! unless a test drops, delays or forges it. Time only moves when a test moves it.

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use bytes::Bytes;
use mpterm_wire::tcp::{TcpFlags, TcpOptions, TcpRepr, Timestamps};
use mpterm_wire::SeqNumber;

use super::{CloseReason, OutgoingSegment, Tcb, TcpState};
use crate::{Instant, Liveness, TcpTuning};

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
        send_buffer: 32 * 1024,
        initial_rto: Duration::from_secs(1),
        min_rto: Duration::from_millis(200),
        max_rto: Duration::from_secs(60),
        time_wait: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(30),
        // Most tests watch the retransmission timer alone; the liveness tests set their own.
        liveness: Liveness::retransmission_limit_only(Duration::from_secs(60)),
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
        let now = Instant::from_nanos(1_000_000_000);
        let mut client = Tcb::connect(now, CLIENT, SERVER, CLIENT_ISS, MSS, client_tuning);
        let syn = client.poll_segment(now).expect("SYN");
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

// ----- handshake and options -----

#[test]
fn handshake_negotiates_mss_window_scale_timestamps_and_sack() {
    let big = TcpTuning {
        receive_buffer: 1 << 20,
        ..tuning()
    };
    let pair = Pair::with_tunings(big, big);
    let syn = &pair.log[0].1.repr;
    assert_eq!(syn.flags, TcpFlags::SYN);
    assert_eq!(syn.seq, CLIENT_ISS);
    assert_eq!(syn.options.mss, Some(MSS));
    // 1 MiB needs a shift of 5: 65535 << 4 is just below 2^20.
    assert_eq!(syn.options.window_scale, Some(5));
    assert!(syn.options.sack_permitted);
    assert!(syn.options.timestamps.is_some_and(|ts| ts.echo_reply == 0));

    let (dir, syn_ack) = &pair.log[1];
    assert_eq!(*dir, Dir::ToClient);
    let syn_ack = &syn_ack.repr;
    assert_eq!(syn_ack.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(syn_ack.seq, SERVER_ISS);
    assert_eq!(syn_ack.ack, CLIENT_ISS + 1);
    assert_eq!(syn_ack.options.mss, Some(MSS));
    assert_eq!(syn_ack.options.window_scale, Some(5));
    assert!(syn_ack.options.sack_permitted);
    let ts = syn_ack.options.timestamps.expect("timestamps answered");
    assert_eq!(ts.echo_reply, syn.options.timestamps.unwrap().value);
    // SYN windows are never scaled (RFC 7323 section 2.2).
    assert_eq!(syn.window, u16::MAX);

    let (_, ack) = &pair.log[2];
    assert!(is_pure_ack(ack));
    assert_eq!(ack.repr.ack, SERVER_ISS + 1);
    assert_eq!(ack.repr.seq, CLIENT_ISS + 1);
    // 1 MiB advertised with shift 5.
    assert_eq!(ack.repr.window, ((1u32 << 20) >> 5) as u16);

    for tcb in [&pair.client, &pair.server] {
        assert_eq!(tcb.peer_mss(), MSS);
        assert!(tcb.timestamps_enabled());
        assert!(tcb.sack_permitted());
        // MSS minus the 12 bytes of aligned timestamps.
        assert_eq!(tcb.max_payload_per_segment(), usize::from(MSS) - 12);
    }
}

#[test]
fn passive_open_without_options_uses_defaults_and_offers_nothing_extra() {
    let now = Instant::from_nanos(5);
    let syn = TcpRepr {
        src_port: CLIENT.port(),
        dst_port: SERVER.port(),
        seq: CLIENT_ISS,
        ack: SeqNumber(0),
        flags: TcpFlags::SYN,
        window: 4000,
        options: TcpOptions::default(),
    };
    let big = TcpTuning {
        receive_buffer: 1 << 20,
        ..tuning()
    };
    let mut server = Tcb::<Bytes>::accept(now, SERVER, CLIENT, &syn, SERVER_ISS, MSS, big);
    let syn_ack = server.poll_segment(now).expect("SYN-ACK");
    assert_eq!(syn_ack.repr.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(syn_ack.repr.options.mss, Some(MSS));
    assert_eq!(syn_ack.repr.options.window_scale, None);
    assert!(!syn_ack.repr.options.sack_permitted);
    assert_eq!(syn_ack.repr.options.timestamps, None);
    assert!(!server.timestamps_enabled());
    assert!(!server.sack_permitted());
    assert_eq!(server.peer_mss(), 536, "RFC 9293 3.7.1 default");

    let ack = TcpRepr {
        seq: CLIENT_ISS + 1,
        ack: SERVER_ISS + 1,
        flags: TcpFlags::ACK,
        window: 4000,
        ..syn
    };
    server.handle_segment(now, &ack, None);
    assert_eq!(server.state(), TcpState::Established);
    server.send(Bytes::from(pattern(3000, 1))).unwrap();
    let segments = drain(&mut server, now);
    assert!(!segments.is_empty());
    for segment in &segments {
        assert!(payload_len(segment) <= 536);
        assert_eq!(segment.repr.options.timestamps, None);
        // Without scaling the 1 MiB buffer is advertised as 65535, unscaled.
        assert_eq!(segment.repr.window, u16::MAX);
    }
    // The peer's 4000-byte window limits what is in flight.
    let sent: usize = segments.iter().map(payload_len).sum();
    assert_eq!(sent, 3000);
}

#[test]
fn passive_side_answers_a_window_scale_offer_even_when_it_needs_no_shift() {
    let now = Instant::from_nanos(5);
    let syn = TcpRepr {
        src_port: CLIENT.port(),
        dst_port: SERVER.port(),
        seq: CLIENT_ISS,
        ack: SeqNumber(0),
        flags: TcpFlags::SYN,
        window: 65535,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            ..TcpOptions::default()
        },
    };
    // 16 KiB fits in 16 bits: our shift is 0, but scaling is on because both SYNs carry it.
    let mut server = Tcb::<Bytes>::accept(now, SERVER, CLIENT, &syn, SERVER_ISS, MSS, tuning());
    let syn_ack = server.poll_segment(now).unwrap();
    assert_eq!(syn_ack.repr.options.window_scale, Some(0));
    let ack = TcpRepr {
        seq: CLIENT_ISS + 1,
        ack: SERVER_ISS + 1,
        flags: TcpFlags::ACK,
        window: 2, // 2 << 7 = 256 bytes
        options: TcpOptions::default(),
        ..syn
    };
    server.handle_segment(now, &ack, None);
    server.send(Bytes::from(pattern(5000, 2))).unwrap();
    let sent: usize = drain(&mut server, now).iter().map(payload_len).sum();
    assert_eq!(sent, 256, "the peer's window is scaled by its shift of 7");
}

#[test]
fn active_open_follows_a_syn_ack_without_timestamps_or_sack() {
    let now = Instant::from_nanos(5);
    let mut client = Tcb::<Bytes>::connect(now, CLIENT, SERVER, CLIENT_ISS, MSS, tuning());
    let syn = client.poll_segment(now).unwrap();
    assert!(syn.repr.options.timestamps.is_some());
    let syn_ack = TcpRepr {
        src_port: SERVER.port(),
        dst_port: CLIENT.port(),
        seq: SERVER_ISS,
        ack: CLIENT_ISS + 1,
        flags: TcpFlags::SYN | TcpFlags::ACK,
        window: 8000,
        options: TcpOptions {
            mss: Some(1200),
            ..TcpOptions::default()
        },
    };
    client.handle_segment(now, &syn_ack, None);
    assert_eq!(client.state(), TcpState::Established);
    assert!(!client.timestamps_enabled());
    assert!(!client.sack_permitted());
    assert_eq!(client.peer_mss(), 1200);
    assert_eq!(client.max_payload_per_segment(), 1200);
    let ack = client.poll_segment(now).expect("third ACK");
    assert!(is_pure_ack(&ack));
    assert_eq!(ack.repr.ack, SERVER_ISS + 1);
    assert_eq!(ack.repr.options.timestamps, None);
    assert!(client.poll_segment(now).is_none());
}

#[test]
fn syn_ack_with_a_wrong_ack_gets_a_reset_and_leaves_syn_sent() {
    let now = Instant::from_nanos(5);
    let mut client = Tcb::<Bytes>::connect(now, CLIENT, SERVER, CLIENT_ISS, MSS, tuning());
    client.poll_segment(now).unwrap();
    let bogus = TcpRepr {
        src_port: SERVER.port(),
        dst_port: CLIENT.port(),
        seq: SERVER_ISS,
        ack: CLIENT_ISS + 7,
        flags: TcpFlags::SYN | TcpFlags::ACK,
        window: 8000,
        options: TcpOptions::default(),
    };
    client.handle_segment(now, &bogus, None);
    assert_eq!(client.state(), TcpState::SynSent);
    let rst = client.poll_segment(now).expect("RST");
    // RFC 9293 3.10.7.3: <SEQ=SEG.ACK><CTL=RST>, which the sender accepts without a
    // challenge (before, the RST went out at ISS + 1 with the ACK bit).
    assert_eq!(rst.repr.flags, TcpFlags::RST);
    assert_eq!(rst.repr.seq, bogus.ack);
}

#[test]
fn lost_syn_ack_is_sent_again_for_a_retransmitted_syn() {
    let now = Instant::from_nanos(5);
    let mut client = Tcb::<Bytes>::connect(now, CLIENT, SERVER, CLIENT_ISS, MSS, tuning());
    let syn = client.poll_segment(now).unwrap();
    let mut server =
        Tcb::<Bytes>::accept(now, SERVER, CLIENT, &syn.repr, SERVER_ISS, MSS, tuning());
    let _lost = server.poll_segment(now).unwrap();
    // The client's timer retransmits the SYN after the initial RTO of one second.
    assert_eq!(client.poll_timeout(), Some(now + Duration::from_secs(1)));
    let later = now + Duration::from_secs(1);
    client.handle_timeout(later);
    let syn_again = client.poll_segment(later).expect("SYN retransmission");
    assert_eq!(syn_again.repr.flags, TcpFlags::SYN);
    assert!(syn_again.is_retransmission);
    deliver(&mut server, later, &syn_again);
    let syn_ack = server.poll_segment(later).expect("SYN-ACK again");
    assert_eq!(syn_ack.repr.flags, TcpFlags::SYN | TcpFlags::ACK);
    deliver(&mut client, later, &syn_ack);
    assert_eq!(client.state(), TcpState::Established);
    assert_eq!(client.counters().retransmissions, 1);
}

// ----- data -----

#[test]
fn data_flows_both_ways_byte_exact() {
    let mut pair = Pair::new();
    let up = pattern(200_000, 0x11);
    let down = pattern(150_001, 0x22);
    let (at_server, at_client) = transfer(&mut pair, &up, &down, |_, _| true);
    assert!(at_server == up, "client to server bytes differ");
    assert!(at_client == down, "server to client bytes differ");
    assert_eq!(pair.client.counters().retransmissions, 0);
    assert!(pair.client.all_sent_acknowledged());
    assert!(pair.server.all_sent_acknowledged());
    // Segments never exceed the negotiated payload size.
    let largest = pair.log.iter().map(|(_, s)| payload_len(s)).max().unwrap();
    assert_eq!(largest, usize::from(MSS) - 12);
}

#[test]
fn data_survives_sequence_number_wrap() {
    // CLIENT_ISS is 4096 below 2^32: the client's sequence numbers wrap during the transfer.
    let mut pair = Pair::new();
    let up = pattern(20_000, 0x33);
    let (at_server, _) = transfer(&mut pair, &up, &[], |_, _| true);
    assert!(at_server == up);
    assert!(pair
        .log
        .iter()
        .any(|(dir, s)| *dir == Dir::ToServer && s.repr.seq.0 < 100_000));
}

#[test]
fn relative_sequence_numbers_count_from_one() {
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(2500, 3))).unwrap();
    let segments = drain(&mut pair.client, pair.now);
    let relative: Vec<u32> = segments.iter().map(|s| s.relative_seq).collect();
    assert_eq!(relative, vec![1, 989, 1977]);
    for segment in &segments {
        deliver(&mut pair.server, pair.now, segment);
    }
    let first = pair.server.recv().unwrap();
    assert_eq!(first.subflow_seq, 1);
    let second = pair.server.recv().unwrap();
    assert_eq!(second.subflow_seq, 989);
}

// ----- close -----

#[test]
fn fin_both_ways_then_time_wait_then_closed() {
    let mut pair = Pair::new();
    pair.client.send(Bytes::from_static(b"request")).unwrap();
    pair.client.close();
    assert_eq!(pair.client.send_capacity(), 0, "no data after close");
    pair.pump(|_, _| true);
    assert_eq!(pair.client.state(), TcpState::FinWait2);
    assert_eq!(pair.server.state(), TcpState::CloseWait);
    assert!(!pair.server.peer_finished(), "data still unread");
    let mut got = Vec::new();
    read_all(&mut pair.server, &mut got);
    assert_eq!(got, b"request");
    assert!(pair.server.peer_finished());
    assert!(pair.client.all_sent_acknowledged());

    pair.server.send(Bytes::from_static(b"response")).unwrap();
    pair.server.close();
    let fin = drain(&mut pair.server, pair.now);
    assert_eq!(pair.server.state(), TcpState::LastAck);
    let fin_segment = fin
        .iter()
        .find(|s| s.repr.flags.contains(TcpFlags::FIN))
        .unwrap();
    for segment in &fin {
        deliver(&mut pair.client, pair.now, segment);
    }
    assert_eq!(pair.client.state(), TcpState::TimeWait);
    let ack = drain(&mut pair.client, pair.now);
    assert_eq!(ack.len(), 1);
    // A retransmitted FIN in TIME-WAIT is acknowledged again.
    deliver(&mut pair.client, pair.now, fin_segment);
    let again = drain(&mut pair.client, pair.now);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].repr.ack, ack[0].repr.ack);
    deliver(&mut pair.server, pair.now, &ack[0]);
    assert_eq!(pair.server.state(), TcpState::Closed);
    assert_eq!(pair.server.close_reason(), Some(CloseReason::Graceful));
    assert!(pair.server.poll_timeout().is_none());

    let mut got = Vec::new();
    read_all(&mut pair.client, &mut got);
    assert_eq!(got, b"response");
    assert!(pair.client.peer_finished());
    // TIME-WAIT lasts `time_wait`, then the block is closed.
    let deadline = pair.client.poll_timeout().expect("TIME-WAIT timer");
    assert_eq!(deadline, pair.now + tuning().time_wait);
    pair.client
        .handle_timeout(Instant::from_nanos(deadline.as_nanos() - 1));
    assert_eq!(pair.client.state(), TcpState::TimeWait);
    pair.client.handle_timeout(deadline);
    assert_eq!(pair.client.state(), TcpState::Closed);
    assert_eq!(pair.client.close_reason(), Some(CloseReason::Graceful));
}

#[test]
fn simultaneous_close_goes_through_closing_to_time_wait() {
    let mut pair = Pair::new();
    pair.client.close();
    pair.server.close();
    let client_fin = drain(&mut pair.client, pair.now);
    let server_fin = drain(&mut pair.server, pair.now);
    assert_eq!(pair.client.state(), TcpState::FinWait1);
    assert_eq!(pair.server.state(), TcpState::FinWait1);
    // The FINs cross.
    deliver(&mut pair.server, pair.now, &client_fin[0]);
    deliver(&mut pair.client, pair.now, &server_fin[0]);
    assert_eq!(pair.client.state(), TcpState::Closing);
    assert_eq!(pair.server.state(), TcpState::Closing);
    pair.pump(|_, _| true);
    assert_eq!(pair.client.state(), TcpState::TimeWait);
    assert_eq!(pair.server.state(), TcpState::TimeWait);
    pair.advance(tuning().time_wait);
    assert_eq!(pair.client.state(), TcpState::Closed);
    assert_eq!(pair.server.state(), TcpState::Closed);
}

#[test]
fn lost_fin_is_retransmitted_by_the_timer() {
    let mut pair = Pair::new();
    pair.client.close();
    let mut dropped = false;
    pair.pump(|_, s| {
        let first_fin = s.repr.flags.contains(TcpFlags::FIN) && !dropped;
        dropped |= first_fin;
        !first_fin
    });
    assert_eq!(pair.client.state(), TcpState::FinWait1);
    assert!(pair.advance_to_next_timeout());
    pair.pump(|_, _| true);
    assert_eq!(pair.client.state(), TcpState::FinWait2);
    assert_eq!(pair.server.state(), TcpState::CloseWait);
    assert_eq!(pair.client.counters().retransmissions, 1);
}

#[test]
fn fin_beyond_a_gap_takes_effect_when_the_gap_fills() {
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(1500, 4))).unwrap();
    pair.client.close();
    let segments = drain(&mut pair.client, pair.now);
    assert_eq!(segments.len(), 3, "two data segments and the FIN");
    deliver(&mut pair.server, pair.now, &segments[1]);
    deliver(&mut pair.server, pair.now, &segments[2]);
    assert_eq!(pair.server.state(), TcpState::Established);
    deliver(&mut pair.server, pair.now, &segments[0]);
    assert_eq!(pair.server.state(), TcpState::CloseWait);
    let ack = drain(&mut pair.server, pair.now);
    assert_eq!(ack.last().unwrap().repr.ack, CLIENT_ISS + 1 + 1500 + 1);
}

// ----- RST (RFC 9293 3.10.7, RFC 5961 section 3.2) -----

fn rst(from: &Tcb<Bytes>, seq: SeqNumber) -> TcpRepr<'static> {
    TcpRepr {
        src_port: from.local().port(),
        dst_port: from.remote().port(),
        seq,
        ack: SeqNumber(0),
        flags: TcpFlags::RST,
        window: 0,
        options: TcpOptions::default(),
    }
}

/// Checks the three RST cases on `tcb`, whose RCV.NXT is `rcv_nxt`: outside the window it is
/// ignored, inside but not exact it draws a challenge ACK, exact it closes.
fn check_rst_rules(tcb: &mut Tcb<Bytes>, peer: &Tcb<Bytes>, now: Instant, rcv_nxt: SeqNumber) {
    let state = tcb.state();
    drain(tcb, now);
    tcb.handle_segment(now, &rst(peer, rcv_nxt + 1_000_000), None);
    assert_eq!(tcb.state(), state, "out-of-window RST is ignored");
    assert!(
        drain(tcb, now).is_empty(),
        "no answer to an out-of-window RST"
    );

    tcb.handle_segment(now, &rst(peer, rcv_nxt + 100), None);
    assert_eq!(tcb.state(), state, "in-window inexact RST does not reset");
    let challenge = drain(tcb, now);
    assert_eq!(challenge.len(), 1, "challenge ACK in {state:?}");
    if state == TcpState::SynReceived {
        // Before the handshake completes the challenge is the SYN-ACK again.
        assert_eq!(challenge[0].repr.flags, TcpFlags::SYN | TcpFlags::ACK);
    } else {
        assert!(is_pure_ack(&challenge[0]));
    }
    assert_eq!(challenge[0].repr.ack, rcv_nxt);

    tcb.handle_segment(now, &rst(peer, rcv_nxt), None);
    assert_eq!(
        tcb.state(),
        TcpState::Closed,
        "exact RST resets in {state:?}"
    );
    assert_eq!(tcb.close_reason(), Some(CloseReason::ResetByPeer));
    assert!(drain(tcb, now).is_empty(), "nothing is sent after a reset");
}

#[test]
fn rst_in_established_follows_the_exact_match_rule() {
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(5000, 5))).unwrap();
    pair.pump(|_, _| true);
    let rcv_nxt = CLIENT_ISS + 1 + 5000;
    let now = pair.now;
    check_rst_rules(&mut pair.server, &pair.client, now, rcv_nxt);
}

#[test]
fn rst_in_syn_received_follows_the_exact_match_rule() {
    let now = Instant::from_nanos(5);
    let mut client = Tcb::<Bytes>::connect(now, CLIENT, SERVER, CLIENT_ISS, MSS, tuning());
    let syn = client.poll_segment(now).unwrap();
    let mut server =
        Tcb::<Bytes>::accept(now, SERVER, CLIENT, &syn.repr, SERVER_ISS, MSS, tuning());
    assert_eq!(server.state(), TcpState::SynReceived);
    check_rst_rules(&mut server, &client, now, CLIENT_ISS + 1);
}

#[test]
fn rst_in_closing_states_follows_the_exact_match_rule() {
    // FIN-WAIT-2 on the client, CLOSE-WAIT on the server.
    let mut pair = Pair::new();
    pair.client.close();
    pair.pump(|_, _| true);
    assert_eq!(pair.client.state(), TcpState::FinWait2);
    assert_eq!(pair.server.state(), TcpState::CloseWait);
    let now = pair.now;
    check_rst_rules(&mut pair.client, &pair.server, now, SERVER_ISS + 1);
    check_rst_rules(&mut pair.server, &pair.client, now, CLIENT_ISS + 2);

    // LAST-ACK on the server (its FIN unacknowledged), FIN-WAIT-1 on a fresh client.
    let mut pair = Pair::new();
    pair.client.close();
    pair.pump(|_, _| true);
    pair.server.close();
    drain(&mut pair.server, pair.now);
    assert_eq!(pair.server.state(), TcpState::LastAck);
    let now = pair.now;
    check_rst_rules(&mut pair.server, &pair.client, now, CLIENT_ISS + 2);

    let mut pair = Pair::new();
    pair.client.close();
    drain(&mut pair.client, pair.now);
    assert_eq!(pair.client.state(), TcpState::FinWait1);
    let now = pair.now;
    check_rst_rules(&mut pair.client, &pair.server, now, SERVER_ISS + 1);
}

#[test]
fn rst_in_time_wait_is_ignored() {
    let mut pair = Pair::new();
    pair.client.close();
    pair.pump(|_, _| true);
    pair.server.close();
    pair.pump(|_, _| true);
    assert_eq!(pair.client.state(), TcpState::TimeWait);
    let now = pair.now;
    // RFC 1337: even an exactly matching RST leaves TIME-WAIT to its timer.
    let reset = TcpRepr {
        src_port: SERVER.port(),
        dst_port: CLIENT.port(),
        seq: SERVER_ISS + 2,
        ack: SeqNumber(0),
        flags: TcpFlags::RST,
        window: 0,
        options: TcpOptions::default(),
    };
    pair.client.handle_segment(now, &reset, None);
    assert_eq!(pair.client.state(), TcpState::TimeWait);
    assert_eq!(pair.client.close_reason(), None);
}

#[test]
fn rst_in_syn_sent_needs_an_acceptable_ack() {
    let now = Instant::from_nanos(5);
    let mut client = Tcb::<Bytes>::connect(now, CLIENT, SERVER, CLIENT_ISS, MSS, tuning());
    client.poll_segment(now).unwrap();
    let mut reset = TcpRepr {
        src_port: SERVER.port(),
        dst_port: CLIENT.port(),
        seq: SeqNumber(0),
        ack: CLIENT_ISS + 5,
        flags: TcpFlags::RST | TcpFlags::ACK,
        window: 0,
        options: TcpOptions::default(),
    };
    client.handle_segment(now, &reset, None);
    assert_eq!(
        client.state(),
        TcpState::SynSent,
        "RST with a wrong ACK is ignored"
    );
    assert!(client.poll_segment(now).is_none(), "never answer a RST");
    reset.flags = TcpFlags::RST;
    client.handle_segment(now, &reset, None);
    assert_eq!(
        client.state(),
        TcpState::SynSent,
        "RST without ACK is ignored"
    );
    reset.flags = TcpFlags::RST | TcpFlags::ACK;
    reset.ack = CLIENT_ISS + 1;
    client.handle_segment(now, &reset, None);
    assert_eq!(client.state(), TcpState::Closed);
    assert_eq!(client.close_reason(), Some(CloseReason::ResetByPeer));
}

#[test]
fn abort_sends_a_reset_the_peer_accepts() {
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(3000, 6))).unwrap();
    pair.pump(|_, _| true);
    pair.client.abort();
    assert_eq!(pair.client.state(), TcpState::Closed);
    assert_eq!(pair.client.close_reason(), Some(CloseReason::Aborted));
    let reset = drain(&mut pair.client, pair.now);
    assert_eq!(reset.len(), 1);
    assert!(reset[0].repr.flags.contains(TcpFlags::RST));
    deliver(&mut pair.server, pair.now, &reset[0]);
    assert_eq!(pair.server.state(), TcpState::Closed);
    assert_eq!(pair.server.close_reason(), Some(CloseReason::ResetByPeer));
}

#[test]
fn syn_in_a_synchronized_state_draws_a_challenge_ack() {
    let mut pair = Pair::new();
    let syn = pair.log[0].1.clone();
    deliver(&mut pair.server, pair.now, &syn);
    assert_eq!(pair.server.state(), TcpState::Established);
    let answer = drain(&mut pair.server, pair.now);
    assert_eq!(answer.len(), 1);
    assert!(is_pure_ack(&answer[0]));
}

// ----- reordering, duplicates, SACK -----

#[test]
fn out_of_order_segments_are_held_and_sacked() {
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(4 * 988, 7))).unwrap();
    let segments = drain(&mut pair.client, pair.now);
    assert_eq!(segments.len(), 4);
    let base = CLIENT_ISS + 1;
    // Segment 1 is lost; 2 and 3 arrive, then 0.
    deliver(&mut pair.server, pair.now, &segments[2]);
    let ack = drain(&mut pair.server, pair.now);
    assert_eq!(ack.len(), 1, "out-of-order data is acknowledged at once");
    assert_eq!(ack[0].repr.ack, base);
    assert_eq!(
        ack[0].repr.options.sack_blocks.as_slice(),
        &[(base + 2 * 988, base + 3 * 988)]
    );
    deliver(&mut pair.server, pair.now, &segments[0]);
    let ack = drain(&mut pair.server, pair.now);
    assert_eq!(ack[0].repr.ack, base + 988);
    assert_eq!(
        ack[0].repr.options.sack_blocks.as_slice(),
        &[(base + 2 * 988, base + 3 * 988)]
    );
    deliver(&mut pair.server, pair.now, &segments[3]);
    let ack = drain(&mut pair.server, pair.now);
    assert_eq!(
        ack[0].repr.options.sack_blocks.as_slice(),
        &[(base + 2 * 988, base + 4 * 988)],
        "adjacent blocks merge"
    );
    assert_eq!(pair.server.received_buffered(), 3 * 988);
    let mut got = Vec::new();
    read_all(&mut pair.server, &mut got);
    assert_eq!(got.len(), 988, "only in-order data is readable");
    deliver(&mut pair.server, pair.now, &segments[1]);
    let ack = drain(&mut pair.server, pair.now);
    assert_eq!(ack[0].repr.ack, base + 4 * 988);
    assert!(ack[0].repr.options.sack_blocks.is_empty());
    read_all(&mut pair.server, &mut got);
    assert!(got == pattern(4 * 988, 7));
}

#[test]
fn data_segments_carry_only_the_sack_blocks_that_fit_in_the_mss() {
    // Found by the engine fuzz target: a full-sized data segment sent while out-of-order data
    // was held carried timestamps and SACK blocks on top of a full MSS of payload, beyond the
    // MTU. RFC 9293 section 3.7.1: the data and the options sent together fit the MSS.
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(3 * 988, 3))).unwrap();
    let segments = drain(&mut pair.client, pair.now);
    deliver(&mut pair.server, pair.now, &segments[2]);
    drain(&mut pair.server, pair.now);
    // The server now holds a gap; its data segments to the client offer SACK blocks.
    pair.server
        .send(Bytes::from(pattern(988 + 500, 4)))
        .unwrap();
    let out = drain(&mut pair.server, pair.now);
    let with_data: Vec<_> = out.iter().filter(|s| payload_len(s) > 0).collect();
    assert_eq!(with_data.len(), 2);
    for segment in &with_data {
        let options = segment.repr.options.encoded_len();
        assert!(
            payload_len(segment) + options <= usize::from(MSS),
            "{} bytes of data and {options} of options exceed the MSS",
            payload_len(segment)
        );
    }
    assert!(
        with_data[0].repr.options.sack_blocks.is_empty(),
        "a full segment has no room for a block"
    );
    assert_eq!(
        with_data[1].repr.options.sack_blocks.len(),
        1,
        "a short one carries it"
    );
}

#[test]
fn first_sack_block_reports_the_latest_segment() {
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(6 * 988, 8))).unwrap();
    let segments = drain(&mut pair.client, pair.now);
    let base = CLIENT_ISS + 1;
    deliver(&mut pair.server, pair.now, &segments[1]);
    deliver(&mut pair.server, pair.now, &segments[5]);
    deliver(&mut pair.server, pair.now, &segments[3]);
    let ack = drain(&mut pair.server, pair.now);
    let blocks = ack.last().unwrap().repr.options.sack_blocks;
    assert_eq!(
        blocks.as_slice(),
        &[
            (base + 3 * 988, base + 4 * 988),
            (base + 988, base + 2 * 988),
            (base + 5 * 988, base + 6 * 988),
        ]
    );
}

#[test]
fn no_sack_blocks_when_sack_was_not_negotiated() {
    let now = Instant::from_nanos(5);
    let syn = TcpRepr {
        src_port: CLIENT.port(),
        dst_port: SERVER.port(),
        seq: CLIENT_ISS,
        ack: SeqNumber(0),
        flags: TcpFlags::SYN,
        window: 65535,
        options: TcpOptions {
            mss: Some(1000),
            timestamps: Some(Timestamps {
                value: 1,
                echo_reply: 0,
            }),
            ..TcpOptions::default()
        },
    };
    let mut server = Tcb::<Bytes>::accept(now, SERVER, CLIENT, &syn, SERVER_ISS, MSS, tuning());
    server.poll_segment(now).unwrap();
    let ack = TcpRepr {
        seq: CLIENT_ISS + 1,
        ack: SERVER_ISS + 1,
        flags: TcpFlags::ACK,
        options: TcpOptions::default(),
        ..syn
    };
    server.handle_segment(now, &ack, None);
    let data = TcpRepr {
        seq: CLIENT_ISS + 1001,
        ..ack
    };
    server.handle_segment(now, &data, Some(Bytes::from(pattern(100, 9))));
    let answer = drain(&mut server, now);
    assert_eq!(answer.len(), 1);
    assert_eq!(answer[0].repr.ack, CLIENT_ISS + 1);
    assert!(answer[0].repr.options.sack_blocks.is_empty());
}

impl Pair {
    /// Hands the server a segment of the client's stream `data` covering `[from, to)`, as the
    /// client would send it.
    fn forge_to_server(&mut self, data: &[u8], from: usize, to: usize) {
        let mut repr = self.log[2].1.repr;
        repr.seq = CLIENT_ISS + 1 + from as u32;
        repr.flags = TcpFlags::ACK;
        let payload = Bytes::copy_from_slice(&data[from..to]);
        self.server.handle_segment(self.now, &repr, Some(payload));
    }
}

#[test]
fn duplicate_and_overlapping_segments_deliver_each_byte_once() {
    let mut pair = Pair::new();
    let data = pattern(6000, 10);
    let pieces = [
        (1000, 2000),
        (1000, 2000), // exact duplicate, out of order
        (1500, 2500), // overlaps the tail of the held segment
        (3000, 3500),
        (2800, 4000), // covers a held segment entirely
        (0, 1200),    // fills the head and overlaps what is held
        (0, 1000),    // old duplicate
        (3900, 6000),
        (2400, 3100), // fills the last hole, overlapping both sides
        (5000, 5500), // old duplicate inside delivered data
    ];
    let mut got = Vec::new();
    for (from, to) in pieces {
        pair.forge_to_server(&data, from, to);
        assert!(pair.server.received_buffered() <= 6000);
        read_all(&mut pair.server, &mut got);
    }
    assert_eq!(got.len(), data.len());
    assert!(got == data, "bytes differ");
    let acks = drain(&mut pair.server, pair.now);
    assert_eq!(acks.last().unwrap().repr.ack, CLIENT_ISS + 1 + 6000);
}

#[test]
fn out_of_order_data_within_the_advertised_window_is_kept() {
    // A 16 KiB buffer: out-of-order data must not narrow the window the sender was promised.
    let mut pair = Pair::new();
    let data = pattern(16 * 1024, 11);
    let base = CLIENT_ISS + 1;
    pair.forge_to_server(&data, 1000, 15_000);
    pair.forge_to_server(&data, 15_000, 16 * 1024);
    assert_eq!(pair.server.counters().out_of_window, 0);
    pair.forge_to_server(&data, 0, 1000);
    let acks = drain(&mut pair.server, pair.now);
    assert_eq!(acks.last().unwrap().repr.ack, base + 16 * 1024);
    assert_eq!(
        acks.last().unwrap().repr.window,
        0,
        "buffer full, nothing read"
    );
    assert_eq!(pair.server.received_buffered(), 16 * 1024);
    let mut got = Vec::new();
    read_all(&mut pair.server, &mut got);
    assert!(got == data);
}

#[test]
fn data_beyond_the_window_is_trimmed_and_counted() {
    let mut pair = Pair::new();
    let data = pattern(20_000, 12);
    pair.forge_to_server(&data, 0, 20_000);
    assert_eq!(pair.server.received_buffered(), 16 * 1024);
    assert_eq!(pair.server.counters().out_of_window, 1);
    pair.forge_to_server(&data, 17_000, 18_000);
    assert_eq!(pair.server.received_buffered(), 16 * 1024);
    assert_eq!(pair.server.counters().out_of_window, 2);
}

// ----- flow control -----

#[test]
fn slow_reader_stops_the_sender_and_a_window_update_restarts_it() {
    let mut pair = Pair::new();
    let data = Bytes::from(pattern(100_000, 13));
    let mut sent = 0;
    let mut got = Vec::new();
    feed(&mut pair.client, &data, &mut sent);
    pair.pump(|_, _| true);
    feed(&mut pair.client, &data, &mut sent);
    pair.pump(|_, _| true);
    // The reader reads nothing: the sender fills exactly the 16 KiB window and stops.
    assert_eq!(pair.server.received_buffered(), 16 * 1024);
    let last_ack = pair
        .log
        .iter()
        .rev()
        .find(|(dir, _)| *dir == Dir::ToClient)
        .unwrap();
    assert_eq!(last_ack.1.repr.window, 0);
    assert_eq!(pair.client.send_queued(), 32 * 1024, "send buffer full");
    assert_eq!(pair.client.send_capacity(), 0);

    // The persist timer probes; the probes draw zero-window ACKs; the sender never gives up
    // and the receiver never buffers more than its window.
    let mut probes = 0;
    for _ in 0..25 {
        assert!(pair.advance_to_next_timeout());
        let before = pair.log.len();
        pair.pump(|_, _| true);
        probes += pair.log[before..]
            .iter()
            .filter(|(dir, s)| *dir == Dir::ToServer && payload_len(s) > 0)
            .count();
        assert_eq!(pair.server.received_buffered(), 16 * 1024);
    }
    assert!(probes >= 20, "one probe per persist timeout, got {probes}");
    assert_eq!(pair.client.state(), TcpState::Established);
    assert_eq!(
        pair.client.counters().rto_expirations,
        0,
        "probes are not losses"
    );

    // The reader drains: a window update goes out and the transfer completes.
    read_all(&mut pair.server, &mut got);
    let update = drain(&mut pair.server, pair.now);
    assert_eq!(update.len(), 1, "window update");
    assert!(update[0].repr.window > 0);
    deliver(&mut pair.client, pair.now, &update[0]);
    for _ in 0..1000 {
        feed(&mut pair.client, &data, &mut sent);
        let exchanged = pair.pump(|_, _| true);
        assert!(pair.server.received_buffered() <= 16 * 1024);
        read_all(&mut pair.server, &mut got);
        if got.len() == data.len() {
            break;
        }
        if exchanged == 0 {
            pair.advance_to_next_timeout();
        }
    }
    assert!(got == data[..], "bytes differ after the window reopened");
}

#[test]
fn window_update_is_sent_only_when_the_window_opens_enough() {
    let mut pair = Pair::new();
    pair.client
        .send(Bytes::from(pattern(16 * 1024, 14)))
        .unwrap();
    pair.pump(|_, _| true);
    assert_eq!(pair.server.received_buffered(), 16 * 1024);
    // Reading one small chunk opens less than an MSS: no update (receiver SWS avoidance).
    pair.server.recv().unwrap(); // 988 bytes
    assert!(drain(&mut pair.server, pair.now).is_empty());
    pair.server.recv().unwrap();
    let update = drain(&mut pair.server, pair.now);
    assert_eq!(update.len(), 1);
    assert_eq!(update[0].repr.window, 2 * 988);
}

// ----- retransmission -----

#[test]
fn retransmission_timeout_backs_off_exponentially() {
    let mut pair = Pair::new();
    // One handshake round trip of two hops: SRTT 10 ms, RTO clamped to the 200 ms minimum.
    pair.client.send(Bytes::from(pattern(500, 15))).unwrap();
    let first = drain(&mut pair.client, pair.now);
    assert_eq!(first.len(), 1);
    let sent_at = pair.now;
    assert_eq!(
        pair.client.poll_timeout(),
        Some(sent_at + Duration::from_millis(200))
    );
    let mut expected = sent_at;
    for attempt in 0..5u32 {
        let rto = Duration::from_millis(200) * (1 << attempt);
        expected = expected + rto;
        assert_eq!(
            pair.client.poll_timeout(),
            Some(expected),
            "attempt {attempt}"
        );
        pair.now = expected;
        pair.client.handle_timeout(pair.now);
        let again = drain(&mut pair.client, pair.now);
        assert_eq!(again.len(), 1);
        assert!(again[0].is_retransmission);
        assert_eq!(again[0].repr.seq, first[0].repr.seq);
        assert_eq!(again[0].payload, first[0].payload);
        assert_eq!(
            pair.client.counters().rto_expirations,
            u64::from(attempt) + 1
        );
    }
    // The sixth retransmission arrives; the ACK stops the timer and the backoff.
    deliver(&mut pair.server, pair.now, &pair.log[0].1.clone());
    let retransmitted = pair.client.poll_timeout().unwrap();
    pair.now = retransmitted;
    pair.client.handle_timeout(pair.now);
    let again = drain(&mut pair.client, pair.now);
    deliver(&mut pair.server, pair.now, &again[0]);
    let ack = drain(&mut pair.server, pair.now);
    deliver(&mut pair.client, pair.now, ack.last().unwrap());
    assert!(pair.client.all_sent_acknowledged());
    assert_eq!(pair.client.poll_timeout(), None);
    // New data gets a timer without the backoff.
    pair.client.send(Bytes::from_static(b"more")).unwrap();
    drain(&mut pair.client, pair.now);
    let rto = pair.client.poll_timeout().unwrap() - pair.now;
    assert!(
        rto <= Duration::from_secs(1),
        "backoff was not reset: {rto:?}"
    );
}

#[test]
fn three_duplicate_acks_trigger_fast_retransmit() {
    let mut pair = Pair::new();
    pair.client
        .send(Bytes::from(pattern(10 * 988, 16)))
        .unwrap();
    let segments = drain(&mut pair.client, pair.now);
    assert_eq!(segments.len(), 10);
    let mut dup_acks = Vec::new();
    for segment in &segments[1..] {
        deliver(&mut pair.server, pair.now, segment);
        dup_acks.extend(drain(&mut pair.server, pair.now));
    }
    assert_eq!(dup_acks.len(), 9);
    assert!(dup_acks.iter().all(|a| a.repr.ack == CLIENT_ISS + 1));
    for (index, ack) in dup_acks.iter().enumerate() {
        deliver(&mut pair.client, pair.now, ack);
        let out = drain(&mut pair.client, pair.now);
        if index == 2 {
            assert_eq!(out.len(), 1, "fast retransmit on the third duplicate");
            assert_eq!(out[0].repr.seq, CLIENT_ISS + 1);
            assert!(out[0].is_retransmission);
            assert_eq!(out[0].payload, segments[0].payload);
        } else {
            assert!(out.iter().all(|s| !s.is_retransmission));
        }
    }
    assert_eq!(pair.client.counters().fast_retransmits, 1);
    assert_eq!(pair.client.counters().rto_expirations, 0);
    deliver(&mut pair.server, pair.now, &segments[0]);
    let mut got = Vec::new();
    read_all(&mut pair.server, &mut got);
    assert!(got == pattern(10 * 988, 16));
}

#[test]
fn newreno_partial_ack_retransmits_the_next_hole_without_a_timeout() {
    let mut pair = Pair::new();
    let data = pattern(10 * 988, 17);
    pair.client.send(Bytes::from(data.clone())).unwrap();
    let segments = drain(&mut pair.client, pair.now);
    assert_eq!(segments.len(), 10);
    // Segments 0 and 4 are lost.
    let mut acks = Vec::new();
    for (index, segment) in segments.iter().enumerate() {
        if index != 0 && index != 4 {
            deliver(&mut pair.server, pair.now, segment);
            acks.extend(drain(&mut pair.server, pair.now));
        }
    }
    let mut retransmitted = Vec::new();
    for ack in &acks {
        deliver(&mut pair.client, pair.now, ack);
        retransmitted.extend(
            drain(&mut pair.client, pair.now)
                .into_iter()
                .filter(|s| s.is_retransmission),
        );
    }
    assert_eq!(retransmitted.len(), 1);
    assert_eq!(retransmitted[0].repr.seq, CLIENT_ISS + 1);
    // The retransmission fills hole 0: the ACK is partial (up to segment 4).
    deliver(&mut pair.server, pair.now, &retransmitted[0]);
    let partial = drain(&mut pair.server, pair.now);
    assert_eq!(partial.last().unwrap().repr.ack, CLIENT_ISS + 1 + 4 * 988);
    deliver(&mut pair.client, pair.now, partial.last().unwrap());
    let next = drain(&mut pair.client, pair.now);
    let hole = next
        .iter()
        .find(|s| s.is_retransmission)
        .expect("partial ACK retransmits the next hole");
    assert_eq!(hole.repr.seq, CLIENT_ISS + 1 + 4 * 988);
    deliver(&mut pair.server, pair.now, hole);
    let full = drain(&mut pair.server, pair.now);
    deliver(&mut pair.client, pair.now, full.last().unwrap());
    assert!(pair.client.all_sent_acknowledged());
    assert_eq!(pair.client.counters().fast_retransmits, 1);
    assert_eq!(pair.client.counters().rto_expirations, 0);
    let mut got = Vec::new();
    read_all(&mut pair.server, &mut got);
    assert!(got == data);
}

#[test]
fn repeated_timeouts_give_up_with_a_reset() {
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(3000, 18))).unwrap();
    let mut resets = 0;
    for _ in 0..40 {
        drain(&mut pair.client, pair.now)
            .iter()
            .filter(|s| s.repr.flags.contains(TcpFlags::RST))
            .for_each(|_| resets += 1);
        if pair.client.is_closed() {
            break;
        }
        let deadline = pair
            .client
            .poll_timeout()
            .expect("timer runs while data is unacked");
        pair.now = deadline;
        pair.client.handle_timeout(pair.now);
    }
    resets += drain(&mut pair.client, pair.now)
        .iter()
        .filter(|s| s.repr.flags.contains(TcpFlags::RST))
        .count();
    assert_eq!(pair.client.state(), TcpState::Closed);
    assert_eq!(pair.client.close_reason(), Some(CloseReason::TimedOut));
    assert_eq!(pair.client.counters().rto_expirations, 15);
    assert_eq!(resets, 1, "one RST tells the peer");
    assert!(pair.client.poll_timeout().is_none());
}

#[test]
fn handshake_times_out_on_both_sides() {
    let now = Instant::from_nanos(5);
    let mut client = Tcb::<Bytes>::connect(now, CLIENT, SERVER, CLIENT_ISS, MSS, tuning());
    let syn = client.poll_segment(now).unwrap();
    let mut syns = 1;
    let mut at = now;
    let mut gaps = Vec::new();
    while !client.is_closed() {
        let deadline = client.poll_timeout().expect("a handshake timer");
        gaps.push(deadline - at);
        at = deadline;
        client.handle_timeout(at);
        syns += drain(&mut client, at)
            .iter()
            .filter(|s| s.repr.flags == TcpFlags::SYN)
            .count();
    }
    assert_eq!(client.close_reason(), Some(CloseReason::TimedOut));
    assert_eq!(at, now + tuning().connect_timeout);
    // 1 + 2 + 4 + 8 = 15 s of retransmissions, then the 30 s connect timeout cuts the 16 s wait.
    assert_eq!(
        &gaps[..4],
        &[1, 2, 4, 8].map(Duration::from_secs),
        "SYN backoff"
    );
    assert_eq!(syns, 5);

    let mut server =
        Tcb::<Bytes>::accept(now, SERVER, CLIENT, &syn.repr, SERVER_ISS, MSS, tuning());
    let mut syn_acks = 0;
    let mut last = Vec::new();
    let mut at = now;
    while !server.is_closed() {
        last = drain(&mut server, at);
        syn_acks += last
            .iter()
            .filter(|s| s.repr.flags == TcpFlags::SYN | TcpFlags::ACK)
            .count();
        at = server.poll_timeout().expect("a handshake timer");
        server.handle_timeout(at);
    }
    // The first SYN-ACK and retransmissions after 1, 3, 7 and 15 s; the next would be at 31 s.
    assert_eq!(syn_acks, 5);
    assert_eq!(server.close_reason(), Some(CloseReason::TimedOut));
    let after = drain(&mut server, at);
    assert!(
        after
            .iter()
            .chain(&last)
            .any(|s| s.repr.flags.contains(TcpFlags::RST)),
        "a half-open passive connection is reset"
    );
}

#[test]
fn lossy_exchange_recovers_every_byte() {
    // Drops every seventh segment in each direction, retransmissions included.
    let mut pair = Pair::new();
    let up = pattern(120_000, 19);
    let down = pattern(90_000, 20);
    let mut count = 0u32;
    let (at_server, at_client) = transfer(&mut pair, &up, &down, |_, _| {
        count += 1;
        count % 7 != 0
    });
    assert!(at_server == up);
    assert!(at_client == down);
    let retransmissions =
        pair.client.counters().retransmissions + pair.server.counters().retransmissions;
    assert!(retransmissions > 0);
}

#[test]
fn acknowledgements_stay_acceptable_while_both_sides_retransmit() {
    // Both directions lose a whole flight and time out; each side's pure ACKs must still be
    // accepted by the other, whose RCV.NXT is beyond the rewound SND.NXT.
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(3 * 988, 21))).unwrap();
    pair.server.send(Bytes::from(pattern(3 * 988, 22))).unwrap();
    let up = drain(&mut pair.client, pair.now);
    let down = drain(&mut pair.server, pair.now);
    // Every data segment arrives, but every ACK for them is lost.
    for segment in &up {
        deliver(&mut pair.server, pair.now, segment);
    }
    for segment in &down {
        deliver(&mut pair.client, pair.now, segment);
    }
    drain(&mut pair.client, pair.now);
    drain(&mut pair.server, pair.now);
    // Both time out and rewind to their first unacknowledged byte.
    pair.advance(Duration::from_millis(200));
    assert_eq!(pair.client.counters().rto_expirations, 1);
    assert_eq!(pair.server.counters().rto_expirations, 1);
    pair.pump(|_, _| true);
    assert!(pair.client.all_sent_acknowledged());
    assert!(pair.server.all_sent_acknowledged());
    assert_eq!(pair.client.poll_timeout(), None);
    assert_eq!(pair.server.poll_timeout(), None);
}

#[test]
fn out_of_order_segments_received_in_one_batch_each_get_a_duplicate_ack() {
    // A driver hands a whole receive burst over before polling: every out-of-order segment
    // still owes its own duplicate ACK, or the sender never sees three.
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(6 * 988, 23))).unwrap();
    let segments = drain(&mut pair.client, pair.now);
    for segment in &segments[1..] {
        deliver(&mut pair.server, pair.now, segment);
    }
    let acks = drain(&mut pair.server, pair.now);
    assert_eq!(acks.len(), 5);
    assert!(acks
        .iter()
        .all(|a| is_pure_ack(a) && a.repr.ack == CLIENT_ISS + 1));
    for ack in &acks {
        deliver(&mut pair.client, pair.now, ack);
    }
    assert_eq!(pair.client.counters().fast_retransmits, 1);
    // The hole filled: one cumulative ACK, no further duplicates.
    deliver(&mut pair.server, pair.now, &segments[0]);
    let acks = drain(&mut pair.server, pair.now);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].repr.ack, CLIENT_ISS + 1 + 6 * 988);
}

#[test]
fn sender_does_not_fill_a_small_window_opening_with_a_small_segment() {
    // RFC 9293 3.8.6.2.1: the peer offers 1500 bytes and its MSS is 1000. After one full
    // segment 500 bytes of window remain: too little to be worth a segment while the first
    // one is unacknowledged.
    let now = Instant::from_nanos(5);
    let syn = TcpRepr {
        src_port: CLIENT.port(),
        dst_port: SERVER.port(),
        seq: CLIENT_ISS,
        ack: SeqNumber(0),
        flags: TcpFlags::SYN,
        window: 1500,
        options: TcpOptions {
            mss: Some(1000),
            ..TcpOptions::default()
        },
    };
    let mut server = Tcb::<Bytes>::accept(now, SERVER, CLIENT, &syn, SERVER_ISS, MSS, tuning());
    server.poll_segment(now).unwrap();
    let mut ack = TcpRepr {
        seq: CLIENT_ISS + 1,
        ack: SERVER_ISS + 1,
        flags: TcpFlags::ACK,
        ..syn
    };
    server.handle_segment(now, &ack, None);
    server.send(Bytes::from(pattern(5000, 24))).unwrap();
    let sent: Vec<usize> = drain(&mut server, now).iter().map(payload_len).collect();
    assert_eq!(sent, vec![1000]);
    // The first segment is acknowledged: 1500 bytes of window, one full segment goes.
    ack.ack = SERVER_ISS + 1001;
    server.handle_segment(now, &ack, None);
    let sent: Vec<usize> = drain(&mut server, now).iter().map(payload_len).collect();
    assert_eq!(sent, vec![1000]);
    // With nothing in flight a partial window is used (no ACK would come otherwise).
    ack.ack = SERVER_ISS + 2001;
    ack.window = 600;
    server.handle_segment(now, &ack, None);
    let sent: Vec<usize> = drain(&mut server, now).iter().map(payload_len).collect();
    assert_eq!(sent, vec![600]);
}

#[test]
fn rst_in_closing_follows_the_exact_match_rule() {
    let mut pair = Pair::new();
    pair.client.close();
    pair.server.close();
    let client_fin = drain(&mut pair.client, pair.now);
    let server_fin = drain(&mut pair.server, pair.now);
    deliver(&mut pair.server, pair.now, &client_fin[0]);
    deliver(&mut pair.client, pair.now, &server_fin[0]);
    assert_eq!(pair.client.state(), TcpState::Closing);
    let now = pair.now;
    check_rst_rules(&mut pair.client, &pair.server, now, SERVER_ISS + 2);
}

#[test]
fn persist_probes_give_up_when_the_peer_stops_answering() {
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(20_000, 25))).unwrap();
    pair.pump(|_, _| true);
    assert_eq!(pair.server.received_buffered(), 16 * 1024, "window closed");
    // The peer vanishes: probes go unanswered, and the sender gives up like any timeout.
    let mut probes = 0;
    while !pair.client.is_closed() {
        let deadline = pair.client.poll_timeout().expect("the persist timer runs");
        pair.now = deadline;
        pair.client.handle_timeout(pair.now);
        probes += drain(&mut pair.client, pair.now)
            .iter()
            .filter(|s| payload_len(s) > 0)
            .count();
        assert!(probes < 100, "the sender never gives up");
    }
    assert_eq!(pair.client.close_reason(), Some(CloseReason::TimedOut));
    assert_eq!(probes, 15);
}

#[test]
fn receiver_does_not_advertise_a_small_window_opening() {
    // RFC 1122 4.2.3.3: with the buffer full, reading less than an MSS must not show the
    // sender a tiny window, even in an ACK sent for another reason.
    let mut pair = Pair::new();
    pair.client
        .send(Bytes::from(pattern(16 * 1024, 26)))
        .unwrap();
    pair.pump(|_, _| true);
    assert_eq!(pair.server.received_buffered(), 16 * 1024);
    let (_, last_ack) = pair
        .log
        .iter()
        .rev()
        .find(|(dir, _)| *dir == Dir::ToClient)
        .unwrap();
    assert_eq!(last_ack.repr.window, 0);
    let (_, first_data) = pair
        .log
        .iter()
        .find(|(_, s)| payload_len(s) > 0)
        .unwrap()
        .clone();
    pair.server.recv().unwrap(); // 988 bytes, less than the MSS of 1000
    deliver(&mut pair.server, pair.now, &first_data); // an old duplicate draws an ACK
    let ack = drain(&mut pair.server, pair.now);
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].repr.window, 0, "988 bytes are not worth advertising");
    pair.server.recv().unwrap();
    let update = drain(&mut pair.server, pair.now);
    assert_eq!(update.len(), 1);
    assert_eq!(update[0].repr.window, 2 * 988);
}

#[test]
fn fin_wait_2_behind_our_own_zero_window_is_not_cut() {
    // Found in review: a peer that answers a half-close with a large response, read slowly on
    // our side, can only probe our zero window; those probes did not count as life, and
    // FIN-WAIT-2 ended after its timeout with the peer alive and the response cut short.
    let mut ours = tuning();
    ours.liveness.fin_wait_2_timeout = Duration::from_secs(60);
    let mut pair = Pair::with_tunings(ours, tuning());
    pair.client.close();
    pair.pump(|_, _| true);
    assert_eq!(pair.client.state(), TcpState::FinWait2);
    let response = Bytes::from(pattern(64 * 1024, 3));
    let mut sent = 0;
    let start = pair.now;
    while pair.now - start < Duration::from_secs(90) {
        feed(&mut pair.server, &response, &mut sent);
        pair.pump(|_, _| true);
        // Our side reads nothing: its buffer fills and its window stays closed.
        if !pair.advance_to_next_timeout() {
            break;
        }
    }
    assert_eq!(
        pair.client.state(),
        TcpState::FinWait2,
        "{:?}",
        pair.client.close_reason()
    );
    assert!(pair.client.received_buffered() > 0);
}
