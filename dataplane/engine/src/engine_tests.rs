//! Frame-level tests of the engine: ARP, ICMP echo, listener SYNs (plain and MPTCP), resets
//! for segments that match nothing, and bad input counted as drops.

use core::net::{Ipv4Addr, SocketAddrV4};

use bytes::Bytes;
use mpterm_wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use mpterm_wire::ethernet::{self, EthernetAddress, EthernetFrame, EthernetRepr};
use mpterm_wire::icmp::{IcmpEchoKind, IcmpEchoRepr, IcmpPacket};
use mpterm_wire::icmp_error::{IcmpErrorKind, IcmpErrorRepr, QuotedTcp};
use mpterm_wire::ipv4::{self, Ipv4Packet, Ipv4Repr};
use mpterm_wire::mptcp::{MpCapable, MptcpOption};
use mpterm_wire::tcp::{self, TcpFlags, TcpOptions, TcpRepr, TcpSegment};
use mpterm_wire::SeqNumber;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::{InterfaceConfig, TcpTuning};

pub(super) const APPLIANCE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const BACKEND_SIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];
pub(super) const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
const APPLIANCE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

#[derive(Debug, Default)]
pub(super) struct Tokens {
    registered: Vec<u32>,
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

fn engine() -> Engine<Bytes, ChaCha8Rng, Tokens> {
    engine_with(|_| {})
}

/// The test engine with its configuration changed by `adjust`.
pub(super) fn engine_with(
    adjust: impl FnOnce(&mut EngineConfig),
) -> Engine<Bytes, ChaCha8Rng, Tokens> {
    let mut config = EngineConfig {
        interfaces: vec![
            InterfaceConfig {
                mac: APPLIANCE_MAC,
                address: APPLIANCE,
                prefix_len: 24,
                gateway: None,
                mtu: 1500,
                ipv6: None,
            },
            InterfaceConfig {
                mac: BACKEND_SIDE_MAC,
                address: Ipv4Addr::new(198, 19, 0, 1),
                prefix_len: 24,
                gateway: None,
                mtu: 1500,
                ipv6: None,
            },
        ],
        proxies: vec![ProxyRule {
            listen: SocketAddrV4::new(APPLIANCE, 5000).into(),
            backend: SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 2), 6000),
            scheduler: crate::scheduler::SchedulerKind::default(),
        }],
        client_tcp: TcpTuning::default(),
        backend_tcp: TcpTuning::default(),
        mptcp_checksum_required: true,
        max_connections: 4,
        max_time_wait: 1024,
        mptcp_max_subflows: 8,
        mptcp_allow_join_initial_address: true,
        time_wait_reuse: true,
        local_ports: 49152..=65535,
    };
    adjust(&mut config);
    Engine::new(config, ChaCha8Rng::seed_from_u64(7), Tokens::default())
}

fn frame(ethertype: u16, body: &[u8]) -> Bytes {
    let mut bytes = vec![0u8; ethernet::HEADER_LEN + body.len()];
    let repr = EthernetRepr {
        src: EthernetAddress(CLIENT_MAC),
        dst: EthernetAddress(APPLIANCE_MAC),
        ethertype,
    };
    repr.emit(&mut bytes).unwrap();
    bytes[ethernet::HEADER_LEN..].copy_from_slice(body);
    Bytes::from(bytes)
}

fn tcp_frame(repr: &TcpRepr<'_>, payload: &[u8]) -> Bytes {
    let tcp_len = repr.header_len();
    let mut body = vec![0u8; ipv4::HEADER_LEN + tcp_len + payload.len()];
    let ip = Ipv4Repr {
        src: CLIENT,
        dst: APPLIANCE,
        protocol: ipv4::PROTOCOL_TCP,
        payload_len: (tcp_len + payload.len()) as u16,
        ttl: 64,
    };
    ip.emit(&mut body).unwrap();
    repr.emit(&mut body[ipv4::HEADER_LEN..]).unwrap();
    body[ipv4::HEADER_LEN + tcp_len..].copy_from_slice(payload);
    let (header, data) = body[ipv4::HEADER_LEN..].split_at_mut(tcp_len);
    tcp::fill_checksum_v4(header, CLIENT, APPLIANCE, data);
    frame(ethernet::ETHERTYPE_IPV4, &body)
}

pub(super) fn all_output(engine: &mut Engine<Bytes, ChaCha8Rng, Tokens>) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    while let Some(transmit) = engine.poll_transmit(Instant::ZERO) {
        let mut bytes = transmit.header.as_slice().to_vec();
        if let Some(payload) = transmit.payload {
            bytes.extend_from_slice(&payload);
        }
        frames.push(bytes);
    }
    frames
}

pub(super) fn syn(options: TcpOptions<'static>, port: u16) -> TcpRepr<'static> {
    TcpRepr {
        src_port: 40000,
        dst_port: port,
        seq: SeqNumber(1000),
        ack: SeqNumber(0),
        flags: TcpFlags::SYN,
        window: 64240,
        options,
    }
}

fn parse_tcp(frame: &[u8]) -> (Ipv4Addr, TcpRepr<'_>) {
    let ip = Ipv4Packet::new_checked(&frame[ethernet::HEADER_LEN..]).unwrap();
    let src = ip.src_addr();
    let dst = ip.dst_addr();
    let start = ethernet::HEADER_LEN + ip.header_len();
    let end = ethernet::HEADER_LEN + usize::from(ip.total_len());
    let segment = TcpSegment::new_checked(&frame[start..end]).unwrap();
    assert!(
        segment.verify_checksum_v4(src, dst),
        "the engine sent a bad TCP checksum"
    );
    let segment = TcpSegment::new_checked(&frame[start..end]).unwrap();
    (dst, TcpRepr::parse(&segment).unwrap())
}

#[test]
fn arp_request_for_our_address_is_answered() {
    let mut engine = engine();
    let request = ArpRepr {
        operation: ArpOperation::Request,
        sender_mac: EthernetAddress(CLIENT_MAC),
        sender_ip: CLIENT,
        target_mac: EthernetAddress([0; 6]),
        target_ip: APPLIANCE,
    };
    let mut body = [0u8; 28];
    request.emit(&mut body).unwrap();
    engine.handle_frame(Instant::ZERO, 0, frame(ethernet::ETHERTYPE_ARP, &body));
    let output = all_output(&mut engine);
    assert_eq!(output.len(), 1);
    let reply_frame = EthernetFrame::new_checked(&output[0][..]).unwrap();
    assert_eq!(reply_frame.dst_addr(), EthernetAddress(CLIENT_MAC));
    let reply = ArpRepr::parse(&ArpPacket::new_checked(reply_frame.payload()).unwrap()).unwrap();
    assert_eq!(reply.operation, ArpOperation::Reply);
    assert_eq!(reply.sender_mac, EthernetAddress(APPLIANCE_MAC));
    assert_eq!(reply.sender_ip, APPLIANCE);
    assert_eq!(reply.target_ip, CLIENT);
    assert_eq!(engine.counters().arp_requests_answered, 1);

    // A request for someone else's address stays unanswered.
    let other = ArpRepr {
        target_ip: Ipv4Addr::new(198, 18, 0, 99),
        ..request
    };
    other.emit(&mut body).unwrap();
    engine.handle_frame(Instant::ZERO, 0, frame(ethernet::ETHERTYPE_ARP, &body));
    assert!(all_output(&mut engine).is_empty());
}

#[test]
fn icmp_echo_is_answered_with_the_same_data() {
    let mut engine = engine();
    let data = b"ping payload 0123456789";
    let echo = IcmpEchoRepr {
        kind: IcmpEchoKind::Request,
        identifier: 0x1234,
        sequence: 7,
    };
    let mut icmp = vec![0u8; 8 + data.len()];
    echo.emit(&mut icmp, data).unwrap();
    icmp[8..].copy_from_slice(data);
    let mut body = vec![0u8; 20 + icmp.len()];
    let ip = Ipv4Repr {
        src: CLIENT,
        dst: APPLIANCE,
        protocol: ipv4::PROTOCOL_ICMP,
        payload_len: icmp.len() as u16,
        ttl: 64,
    };
    ip.emit(&mut body).unwrap();
    body[20..].copy_from_slice(&icmp);
    engine.handle_frame(Instant::ZERO, 0, frame(ethernet::ETHERTYPE_IPV4, &body));
    let output = all_output(&mut engine);
    assert_eq!(output.len(), 1);
    let ip = Ipv4Packet::new_checked(&output[0][ethernet::HEADER_LEN..]).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!((ip.src_addr(), ip.dst_addr()), (APPLIANCE, CLIENT));
    let packet = IcmpPacket::new_checked(ip.payload()).unwrap();
    let reply = IcmpEchoRepr::parse(&packet).unwrap();
    assert_eq!(
        reply,
        IcmpEchoRepr {
            kind: IcmpEchoKind::Reply,
            identifier: 0x1234,
            sequence: 7
        }
    );
    assert_eq!(packet.payload(), data);
    assert_eq!(engine.counters().icmp_echo_answered, 1);
}

#[test]
fn mptcp_syn_gets_a_syn_ack_with_mp_capable_and_a_registered_token() {
    let mut engine = engine();
    let mut options = TcpOptions {
        mss: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        ..TcpOptions::default()
    };
    options.timestamps = Some(mpterm_wire::tcp::Timestamps {
        value: 1,
        echo_reply: 0,
    });
    options.mptcp[0] = Some(MptcpOption::MpCapable(MpCapable {
        version: 1,
        checksum_required: false,
        extensibility: false,
        no_new_subflows_to_source: false,
        hmac_sha256: true,
        sender_key: None,
        receiver_key: None,
        data_level_length: None,
        checksum: None,
    }));
    engine.handle_frame(Instant::ZERO, 0, tcp_frame(&syn(options, 5000), &[]));
    let output = all_output(&mut engine);
    assert_eq!(output.len(), 1);
    let (dst, syn_ack) = parse_tcp(&output[0]);
    assert_eq!(dst, CLIENT);
    assert_eq!(syn_ack.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(syn_ack.ack, SeqNumber(1001));
    assert_eq!(syn_ack.options.mss, Some(1460));
    assert!(syn_ack.options.window_scale.is_some());
    assert!(syn_ack.options.sack_permitted);
    assert!(syn_ack.options.timestamps.is_some());
    let Some(MptcpOption::MpCapable(capable)) = syn_ack.options.mptcp[0] else {
        panic!("no MP_CAPABLE")
    };
    assert_eq!(capable.version, 1);
    assert!(
        capable.checksum_required,
        "the appliance requires checksums"
    );
    let key = capable.sender_key.expect("key");
    let token = crate::mptcp_keys::derive_from_key(key).token;
    assert_eq!(engine.tokens.registered, vec![token]);
    assert_eq!(engine.counters().mptcp_connections, 1);
    assert_eq!(engine.connection_count(), 1);
}

#[test]
fn version_0_syn_is_served_as_plain_tcp() {
    let mut engine = engine();
    let mut options = TcpOptions {
        mss: Some(1460),
        ..TcpOptions::default()
    };
    options.mptcp[0] = Some(MptcpOption::MpCapable(MpCapable {
        version: 0,
        checksum_required: true,
        extensibility: false,
        no_new_subflows_to_source: false,
        hmac_sha256: false,
        sender_key: Some(42),
        receiver_key: None,
        data_level_length: None,
        checksum: None,
    }));
    engine.handle_frame(Instant::ZERO, 0, tcp_frame(&syn(options, 5000), &[]));
    let output = all_output(&mut engine);
    let (_, syn_ack) = parse_tcp(&output[0]);
    assert_eq!(syn_ack.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert!(syn_ack.options.mptcp.iter().all(Option::is_none));
    assert!(engine.tokens.registered.is_empty());
}

#[test]
fn segment_for_no_connection_is_answered_with_rst() {
    let mut engine = engine();
    // A SYN to a port nobody listens on: RST|ACK acknowledging the SYN (RFC 9293 3.10.7.1).
    engine.handle_frame(
        Instant::ZERO,
        0,
        tcp_frame(&syn(TcpOptions::default(), 5999), &[]),
    );
    let output = all_output(&mut engine);
    let (_, reset) = parse_tcp(&output[0]);
    assert_eq!(reset.flags, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!(reset.ack, SeqNumber(1001));
    // An ACK for no connection: RST with the sequence number the ACK asked for.
    let stray = TcpRepr {
        flags: TcpFlags::ACK,
        ack: SeqNumber(777),
        ..syn(TcpOptions::default(), 5000)
    };
    engine.handle_frame(Instant::ZERO, 0, tcp_frame(&stray, b"data"));
    let output = all_output(&mut engine);
    let (_, reset) = parse_tcp(&output[0]);
    assert_eq!(reset.flags, TcpFlags::RST);
    assert_eq!(reset.seq, SeqNumber(777));
    assert_eq!(engine.counters().rx_dropped_no_connection, 2);
    assert_eq!(engine.counters().tcp_rst_sent, 2);
}

#[test]
fn malformed_frames_are_counted_and_never_answered() {
    let mut engine = engine();
    let good = tcp_frame(&syn(TcpOptions::default(), 5000), &[]);
    // Every truncation of a valid frame, and the frame with a flipped byte.
    for len in 0..good.len() {
        engine.handle_frame(Instant::ZERO, 0, good.slice(0..len));
    }
    let mut corrupted = good.to_vec();
    let last = corrupted.len() - 1;
    corrupted[last] ^= 0x40;
    engine.handle_frame(Instant::ZERO, 0, Bytes::from(corrupted));
    assert!(all_output(&mut engine).is_empty());
    assert_eq!(engine.connection_count(), 0);
    assert_eq!(
        engine.counters().rx_dropped_malformed as usize,
        good.len() + 1
    );
}

pub(super) fn mp_join_syn(receiver_token: u32, src_port: u16) -> TcpRepr<'static> {
    let mut options = TcpOptions {
        mss: Some(1460),
        ..TcpOptions::default()
    };
    options.mptcp[0] = Some(MptcpOption::MpJoin(mpterm_wire::mptcp::MpJoin::Syn {
        backup: false,
        address_id: 1,
        receiver_token,
        sender_nonce: 0x5555_aaaa,
    }));
    TcpRepr {
        src_port,
        ..syn(options, 5000)
    }
}

/// The RST answering an MP_JOIN SYN, with its MP_TCPRST reason code.
fn refused_join(engine: &mut Engine<Bytes, ChaCha8Rng, Tokens>, join: &TcpRepr<'_>) -> u8 {
    engine.handle_frame(Instant::ZERO, 0, tcp_frame(join, &[]));
    let output = all_output(engine);
    assert_eq!(output.len(), 1, "one answer, and no SYN-ACK");
    let (dst, reset) = parse_tcp(&output[0]);
    assert_eq!(dst, CLIENT);
    assert_eq!(reset.flags, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!(reset.ack, join.seq + 1, "the RST acknowledges the SYN");
    let Some(MptcpOption::MpTcpRst(reason)) = reset.options.mptcp[0] else {
        panic!("the RST carries no MP_TCPRST: {reset:?}")
    };
    reason.reason
}

#[test]
fn mp_join_syns_are_refused_with_mp_tcprst_and_leave_no_state() {
    // RFC 8684 section 3.2: a join for a token never issued gets a RST with MP_TCPRST
    // (section 3.6) saying "MPTCP-specific error".
    let mut engine = engine();
    let reason = refused_join(&mut engine, &mp_join_syn(0xdead_beef, 40001));
    assert_eq!(reason, 0x01);
    assert_eq!(engine.connection_count(), 0);
    assert_eq!(engine.counters().connections_accepted, 0);
    assert_eq!(engine.counters().mptcp_joins_refused, 1);
    assert!(engine.tokens.registered.is_empty());

    // A join naming one of our connections before it is fully established (the client's key
    // is not known yet) is refused too, as administratively prohibited.
    let mut options = TcpOptions::default();
    options.mptcp[0] = Some(MptcpOption::MpCapable(MpCapable {
        version: 1,
        checksum_required: false,
        extensibility: false,
        no_new_subflows_to_source: false,
        hmac_sha256: true,
        sender_key: None,
        receiver_key: None,
        data_level_length: None,
        checksum: None,
    }));
    engine.handle_frame(Instant::ZERO, 0, tcp_frame(&syn(options, 5000), &[]));
    all_output(&mut engine);
    let token = engine.tokens.registered[0];
    let reason = refused_join(&mut engine, &mp_join_syn(token, 40002));
    assert_eq!(reason, 0x03);
    assert_eq!(
        engine.connection_count(),
        1,
        "only the MP_CAPABLE connection"
    );
    assert_eq!(engine.counters().connections_accepted, 1);
    assert_eq!(engine.counters().mptcp_joins_refused, 2);
}

#[test]
fn replies_wait_in_a_bounded_backlog_while_nobody_polls() {
    // A driver whose transmit ring is full stops polling; the engine's own replies must not
    // pile up without bound meanwhile. Each SYN to a closed port asks for a RST.
    let mut engine = engine();
    let requests = MAX_UNSOLICITED_BACKLOG as u64 + 500;
    for index in 0..requests {
        let probe = TcpRepr {
            src_port: 1024 + index as u16,
            ..syn(TcpOptions::default(), 5999)
        };
        engine.handle_frame(Instant::ZERO, 0, tcp_frame(&probe, &[]));
    }
    assert_eq!(engine.counters().tx_dropped_backlog, 500);
    assert_eq!(all_output(&mut engine).len(), MAX_UNSOLICITED_BACKLOG);
    // Once polled, replies flow again.
    engine.handle_frame(
        Instant::ZERO,
        0,
        tcp_frame(&syn(TcpOptions::default(), 5999), &[]),
    );
    assert_eq!(all_output(&mut engine).len(), 1);
}

#[test]
fn tables_are_sized_at_start_up_and_never_grow_under_load() {
    let mut config = engine().config.clone();
    config.max_connections = 2000;
    let mut engine: Engine<Bytes, ChaCha8Rng, Tokens> =
        Engine::new(config, ChaCha8Rng::seed_from_u64(9), Tokens::default());
    let capacities = |engine: &Engine<Bytes, ChaCha8Rng, Tokens>| {
        (
            engine.slots.capacity(),
            engine.flows.capacity(),
            engine.local_tokens.capacity(),
            engine.dirty.capacity(),
            engine.timers.capacity(),
        )
    };
    let before = capacities(&engine);
    for port in 0..2000u16 {
        let capable = TcpOptions {
            mptcp: [
                Some(MptcpOption::MpCapable(MpCapable {
                    version: 1,
                    checksum_required: false,
                    extensibility: false,
                    no_new_subflows_to_source: false,
                    hmac_sha256: true,
                    sender_key: None,
                    receiver_key: None,
                    data_level_length: None,
                    checksum: None,
                })),
                None,
            ],
            ..TcpOptions::default()
        };
        let mut request = syn(capable, 5000);
        request.src_port = 10_000 + port;
        engine.handle_frame(Instant::from_nanos(1), 0, tcp_frame(&request, &[]));
        let _ = all_output(&mut engine);
    }
    assert_eq!(engine.connection_count(), 2000, "every SYN was accepted");
    assert_eq!(engine.local_tokens.len(), 2000);
    assert_eq!(
        capacities(&engine),
        before,
        "2,000 connections fit the tables sized at start-up"
    );
}

/// The TCP segments the engine sent toward the client (ARP and backend frames left out).
fn segments_to_client(frames: &[Vec<u8>]) -> Vec<TcpRepr<'_>> {
    frames
        .iter()
        .filter(|frame| {
            EthernetFrame::new_checked(&frame[..])
                .is_ok_and(|ethernet| ethernet.ethertype() == ethernet::ETHERTYPE_IPV4)
        })
        .map(|frame| parse_tcp(frame))
        .filter(|(dst, _)| *dst == CLIENT)
        .map(|(_, repr)| repr)
        .collect()
}

pub(super) const CLIENT_KEY: u64 = 0x1111_2222_3333_4444;

/// An MPTCP connection from port 40000, fully established (the third ACK carried both keys).
/// Returns our key and the SYN-ACK's sequence number.
pub(super) fn established_mptcp(
    engine: &mut Engine<Bytes, ChaCha8Rng, Tokens>,
) -> (u64, SeqNumber) {
    let capable = |sender_key, receiver_key| {
        let mut options = TcpOptions::default();
        options.mptcp[0] = Some(MptcpOption::MpCapable(MpCapable {
            version: 1,
            checksum_required: false,
            extensibility: false,
            no_new_subflows_to_source: false,
            hmac_sha256: true,
            sender_key,
            receiver_key,
            data_level_length: None,
            checksum: None,
        }));
        options
    };
    engine.handle_frame(
        Instant::ZERO,
        0,
        tcp_frame(&syn(capable(Some(CLIENT_KEY), None), 5000), &[]),
    );
    let output = all_output(engine);
    let syn_ack = segments_to_client(&output)[0];
    let Some(MptcpOption::MpCapable(MpCapable {
        sender_key: Some(server_key),
        ..
    })) = syn_ack.options.mptcp[0]
    else {
        panic!("no key in {syn_ack:?}")
    };
    let third_ack = TcpRepr {
        seq: SeqNumber(1001),
        ack: syn_ack.seq + 1,
        flags: TcpFlags::ACK,
        ..syn(capable(Some(CLIENT_KEY), Some(server_key)), 5000)
    };
    engine.handle_frame(Instant::ZERO, 0, tcp_frame(&third_ack, &[]));
    all_output(engine);
    (server_key, syn_ack.seq)
}

/// Sends a join SYN from port 40001 and returns the SYN-ACK's MP_JOIN fields and sequence.
fn join_syn_ack(
    engine: &mut Engine<Bytes, ChaCha8Rng, Tokens>,
    token: u32,
) -> (u64, u32, u8, SeqNumber) {
    engine.handle_frame(Instant::ZERO, 0, tcp_frame(&mp_join_syn(token, 40001), &[]));
    let output = all_output(engine);
    let answers = segments_to_client(&output);
    assert_eq!(answers.len(), 1, "{answers:?}");
    let syn_ack = answers[0];
    assert_eq!(syn_ack.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(syn_ack.dst_port, 40001);
    let Some(MptcpOption::MpJoin(mpterm_wire::mptcp::MpJoin::SynAck {
        truncated_hmac,
        sender_nonce,
        address_id,
        backup,
    })) = syn_ack.options.mptcp[0]
    else {
        panic!("no MP_JOIN in {syn_ack:?}")
    };
    assert!(!backup);
    (truncated_hmac, sender_nonce, address_id, syn_ack.seq)
}

pub(super) fn join_third_ack(server_seq: SeqNumber, hmac: [u8; 20]) -> TcpRepr<'static> {
    let mut options = TcpOptions::default();
    options.mptcp[0] = Some(MptcpOption::MpJoin(mpterm_wire::mptcp::MpJoin::Ack {
        hmac,
    }));
    TcpRepr {
        src_port: 40001,
        seq: SeqNumber(1001),
        ack: server_seq + 1,
        flags: TcpFlags::ACK,
        ..syn(options, 5000)
    }
}

#[test]
fn a_join_with_the_right_hmacs_becomes_a_subflow_and_gets_its_fourth_ack() {
    use crate::mptcp::join::{syn_ack_hmac, third_ack_hmac};
    let mut engine = engine();
    let (server_key, _) = established_mptcp(&mut engine);
    let token = crate::mptcp_keys::derive_from_key(server_key).token;
    let (truncated, server_nonce, address_id, server_seq) = join_syn_ack(&mut engine, token);
    // RFC 8684 section 3.2, as the Linux client checks it (`subflow_thmac_valid`).
    let client_nonce = 0x5555_aaaa;
    assert_eq!(
        truncated,
        syn_ack_hmac(server_key, CLIENT_KEY, server_nonce, client_nonce)
    );
    assert_eq!(
        address_id, 0,
        "the join came to the initial subflow's address"
    );
    let hmac = third_ack_hmac(server_key, CLIENT_KEY, server_nonce, client_nonce);
    engine.handle_frame(
        Instant::ZERO,
        0,
        tcp_frame(&join_third_ack(server_seq, hmac), &[]),
    );
    let output = all_output(&mut engine);
    let answers = segments_to_client(&output);
    assert_eq!(answers.len(), 1, "the fourth ACK: {answers:?}");
    assert_eq!(answers[0].flags, TcpFlags::ACK);
    assert_eq!(answers[0].ack, SeqNumber(1001));
    assert!(
        matches!(answers[0].options.mptcp[0], Some(MptcpOption::Dss(_))),
        "an established subflow's ACK carries the DATA_ACK"
    );
    assert_eq!(engine.counters().mptcp_join_syns_received, 1);
    assert_eq!(engine.counters().mptcp_joins_established, 1);
    let mut subflows = Vec::new();
    engine.visit_connections(|_, views| {
        subflows.extend(views.map(|view| (view.index, view.joining)))
    });
    assert_eq!(subflows, [(0, false), (1, false)]);
}

#[test]
fn a_join_with_a_wrong_hmac_is_reset_and_leaves_the_connection_alone() {
    let mut engine = engine();
    let (server_key, _) = established_mptcp(&mut engine);
    let token = crate::mptcp_keys::derive_from_key(server_key).token;
    let (_, _, _, server_seq) = join_syn_ack(&mut engine, token);
    engine.handle_frame(
        Instant::ZERO,
        0,
        tcp_frame(&join_third_ack(server_seq, [0x42; 20]), &[]),
    );
    let output = all_output(&mut engine);
    let answers = segments_to_client(&output);
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert!(answers[0].flags.contains(TcpFlags::RST));
    let Some(MptcpOption::MpTcpRst(reason)) = answers[0].options.mptcp[0] else {
        panic!("no MP_TCPRST: {:?}", answers[0])
    };
    assert_eq!(reason.reason, 0x03, "administratively prohibited, as Linux");
    assert_eq!(engine.counters().mptcp_join_hmac_failures, 1);
    assert_eq!(engine.counters().mptcp_joins_established, 0);
    assert_eq!(engine.connection_count(), 1);
    let mut subflows = 0;
    engine.visit_connections(|_, views| subflows += views.count());
    assert_eq!(subflows, 1, "the failed join gave back its place");
}

#[test]
fn joins_beyond_the_subflow_limit_are_refused_and_keep_no_state() {
    let mut engine = engine();
    let (server_key, _) = established_mptcp(&mut engine);
    let token = crate::mptcp_keys::derive_from_key(server_key).token;
    // A flood of join SYNs that never complete: the limit (8 with the initial one) holds.
    let mut refused = 0;
    for port in 0..100u16 {
        let join = mp_join_syn(token, 41000 + port);
        engine.handle_frame(Instant::ZERO, 0, tcp_frame(&join, &[]));
        let output = all_output(&mut engine);
        let answers = segments_to_client(&output);
        assert_eq!(answers.len(), 1);
        if answers[0].flags.contains(TcpFlags::RST) {
            refused += 1;
        }
    }
    assert_eq!(refused, 93);
    assert_eq!(engine.counters().mptcp_join_over_limit, 93);
    let mut subflows = 0;
    engine.visit_connections(|_, views| subflows += views.count());
    assert_eq!(subflows, 8);
}

#[test]
fn a_failed_checksum_on_a_joined_subflow_closes_it_with_mp_fail_and_the_connection_goes_on() {
    use crate::mptcp::join::{syn_ack_hmac, third_ack_hmac};
    use mpterm_wire::mptcp::{DataSeqWire, Dss, DssMapping};
    let mut engine = engine();
    let (server_key, _) = established_mptcp(&mut engine);
    let token = crate::mptcp_keys::derive_from_key(server_key).token;
    let (truncated, server_nonce, _, server_seq) = join_syn_ack(&mut engine, token);
    let client_nonce = 0x5555_aaaa;
    assert_eq!(
        truncated,
        syn_ack_hmac(server_key, CLIENT_KEY, server_nonce, client_nonce)
    );
    let hmac = third_ack_hmac(server_key, CLIENT_KEY, server_nonce, client_nonce);
    engine.handle_frame(
        Instant::ZERO,
        0,
        tcp_frame(&join_third_ack(server_seq, hmac), &[]),
    );
    all_output(&mut engine);
    // Data on the joined subflow whose payload a middlebox rewrote: its DSS checksum fails
    // (RFC 8684 section 3.3.1).
    let data = b"rewritten by a middlebox";
    let data_seq = crate::mptcp_keys::derive_from_key(CLIENT_KEY)
        .initial_data_seq
        .wrapping_add(1);
    let mut sum = mpterm_wire::checksum::dss_pseudo_header(data_seq, 1, data.len() as u16, 0);
    sum.add_bytes(b"what the client really sent");
    let mut options = TcpOptions::default();
    options.mptcp[0] = Some(MptcpOption::Dss(Dss {
        data_ack: None,
        mapping: Some(DssMapping {
            data_seq: DataSeqWire::Bits64(data_seq),
            subflow_seq: 1,
            data_level_length: data.len() as u16,
            checksum: Some(sum.finish()),
        }),
        data_fin: false,
    }));
    let segment = TcpRepr {
        src_port: 40001,
        seq: SeqNumber(1001),
        ack: server_seq + 1,
        flags: TcpFlags::ACK | TcpFlags::PSH,
        ..syn(options, 5000)
    };
    engine.handle_frame(Instant::ZERO, 0, tcp_frame(&segment, data));
    let output = all_output(&mut engine);
    let answers = segments_to_client(&output);
    let reset = answers
        .iter()
        .find(|repr| repr.flags.contains(TcpFlags::RST))
        .unwrap_or_else(|| panic!("no RST: {answers:?}"));
    assert_eq!(reset.dst_port, 40001, "only the corrupted subflow is reset");
    // Section 3.7: MP_FAIL names where the failed mapping starts; MP_TCPRST says why.
    assert_eq!(
        reset.options.mptcp[0],
        Some(MptcpOption::MpFail { data_seq })
    );
    let Some(MptcpOption::MpTcpRst(reason)) = reset.options.mptcp[1] else {
        panic!("no MP_TCPRST: {reset:?}")
    };
    assert_eq!(reason.reason, 0x06, "middlebox interference");
    assert_eq!(engine.counters().mptcp_subflows_failed, 1);
    assert_eq!(engine.counters().dss_checksum_failures, 1);
    // The RST's MP_FAIL is counted like any MP_FAIL we send (the lab's Linux client counts it
    // as MPFailRx).
    assert_eq!(engine.counters().mptcp_mp_fail_sent, 1);
    assert_eq!(engine.connection_count(), 1, "the initial subflow goes on");
    let mut subflows = Vec::new();
    engine.visit_connections(|_, views| subflows.extend(views.map(|view| view.index)));
    assert_eq!(subflows, [0]);
}

#[test]
fn behind_a_load_balancer_the_syn_ack_sets_the_c_bit_and_the_initial_address_takes_no_join() {
    // RFC 8684 section 3.1: the C bit tells the client not to join the address it connected
    // to (a load balancer's); joins go to the addresses we announce. One that comes anyway is
    // refused.
    let mut balanced = engine_with(|config| config.mptcp_allow_join_initial_address = false);
    let mut options = TcpOptions::default();
    options.mptcp[0] = Some(MptcpOption::MpCapable(MpCapable {
        version: 1,
        checksum_required: false,
        extensibility: false,
        no_new_subflows_to_source: false,
        hmac_sha256: true,
        sender_key: None,
        receiver_key: None,
        data_level_length: None,
        checksum: None,
    }));
    balanced.handle_frame(Instant::ZERO, 0, tcp_frame(&syn(options, 5000), &[]));
    let output = all_output(&mut balanced);
    let syn_ack = segments_to_client(&output)[0];
    let Some(MptcpOption::MpCapable(capable)) = syn_ack.options.mptcp[0] else {
        panic!("no MP_CAPABLE: {syn_ack:?}")
    };
    assert!(capable.no_new_subflows_to_source, "the C bit");
    let mut balanced = engine_with(|config| config.mptcp_allow_join_initial_address = false);
    let (server_key, _) = established_mptcp(&mut balanced);
    let token = crate::mptcp_keys::derive_from_key(server_key).token;
    assert_eq!(
        refused_join(&mut balanced, &mp_join_syn(token, 40001)),
        0x03
    );
    assert_eq!(balanced.counters().mptcp_join_not_accepted, 1);
    // By default the initial address takes joins and the C bit is clear.
    let mut default = engine();
    let (server_key, _) = established_mptcp(&mut default);
    let token = crate::mptcp_keys::derive_from_key(server_key).token;
    join_syn_ack(&mut default, token);
}

/// A data segment from the client on the initial subflow (port 40000) at relative subflow
/// sequence `relative`, with a DSS mapping of `mapped_len` bytes from there whose checksum
/// covers `checksummed` (a middlebox may change the payload sent with it).
fn client_data(
    server_seq: SeqNumber,
    relative: u32,
    mapped_len: u16,
    checksummed: &[u8],
) -> TcpRepr<'static> {
    use mpterm_wire::mptcp::{DataSeqWire, Dss, DssMapping};
    let data_seq = client_data_seq(relative);
    let mut sum = mpterm_wire::checksum::dss_pseudo_header(data_seq, relative, mapped_len, 0);
    sum.add_bytes(checksummed);
    let mut options = TcpOptions::default();
    options.mptcp[0] = Some(MptcpOption::Dss(Dss {
        data_ack: None,
        mapping: Some(DssMapping {
            data_seq: DataSeqWire::Bits64(data_seq),
            subflow_seq: relative,
            data_level_length: mapped_len,
            checksum: Some(sum.finish()),
        }),
        data_fin: false,
    }));
    TcpRepr {
        seq: SeqNumber(1000 + relative),
        ack: server_seq + 1,
        flags: TcpFlags::ACK | TcpFlags::PSH,
        ..syn(options, 5000)
    }
}

/// The client's data sequence number of its relative subflow byte `relative` (one subflow).
fn client_data_seq(relative: u32) -> u64 {
    crate::mptcp_keys::derive_from_key(CLIENT_KEY)
        .initial_data_seq
        .wrapping_add(u64::from(relative))
}

/// The DATA_ACK of a segment toward the client.
fn data_ack_of(repr: &TcpRepr<'_>) -> Option<u64> {
    repr.options
        .mptcp
        .iter()
        .flatten()
        .find_map(|option| match option {
            MptcpOption::Dss(mpterm_wire::mptcp::Dss {
                data_ack: Some(mpterm_wire::mptcp::DataSeqWire::Bits64(ack)),
                ..
            }) => Some(*ack),
            _ => None,
        })
}

#[test]
fn a_failed_checksum_on_the_only_subflow_sends_mp_fail_and_takes_the_bytes_back() {
    // RFC 8684 section 3.7 on one subflow: MP_FAIL on the subflow-level ACK, naming where the
    // failed mapping starts; its bytes are neither acknowledged (the TCP ACK stays before
    // them, so the client's TCP sends them again) nor DATA_ACKed, nor delivered.
    let mut engine = engine();
    let (_, server_seq) = established_mptcp(&mut engine);
    let sent = b"what the client really sent";
    let rewritten = b"what a middlebox made of it";
    let segment = client_data(server_seq, 1, sent.len() as u16, sent);
    engine.handle_frame(Instant::ZERO, 0, tcp_frame(&segment, rewritten));
    let output = all_output(&mut engine);
    let answers = segments_to_client(&output);
    assert!(
        answers
            .iter()
            .all(|repr| !repr.flags.contains(TcpFlags::RST)),
        "{answers:?}"
    );
    let fail = answers
        .iter()
        .find(|repr| {
            repr.options
                .mptcp
                .iter()
                .flatten()
                .any(|option| matches!(option, MptcpOption::MpFail { .. }))
        })
        .unwrap_or_else(|| panic!("no MP_FAIL: {answers:?}"));
    assert!(fail.options.mptcp.contains(&Some(MptcpOption::MpFail {
        data_seq: client_data_seq(1)
    })));
    for answer in &answers {
        assert_eq!(answer.ack, SeqNumber(1001), "the bytes are taken back");
        assert_eq!(data_ack_of(answer), Some(client_data_seq(1)));
    }
    assert_eq!(engine.counters().dss_checksum_failures, 1);
    assert_eq!(engine.counters().mptcp_checksum_rewinds, 1);
    assert_eq!(engine.counters().mptcp_mp_fail_sent, 1);
    assert_eq!(engine.counters().mptcp_fail_resets, 0);
    // The client's TCP sends the bytes again, intact this time: they verify and count.
    engine.handle_frame(Instant::ZERO, 0, tcp_frame(&segment, sent));
    let output = all_output(&mut engine);
    let answers = segments_to_client(&output);
    let last = answers.last().expect("an ACK");
    assert_eq!(last.ack, SeqNumber(1001 + sent.len() as u32));
    assert_eq!(
        data_ack_of(last),
        Some(client_data_seq(1 + sent.len() as u32))
    );
    assert_eq!(engine.counters().dss_checksum_failures, 1);
    assert_eq!(engine.connection_count(), 1);
}

#[test]
fn a_failed_checksum_on_bytes_already_acknowledged_resets_as_no_fallback_is_possible() {
    // A mapping over two segments: the first was acknowledged before the second completed
    // the mapping and its checksum failed. Those bytes cannot be asked for again, so no
    // fallback can keep the stream whole: the connection is reset (section 3.7's other
    // branch), MP_TCPRST "middlebox interference", nothing of the mapping delivered. The
    // client is told by MP_FASTCLOSE (section 3.5): a Linux client ignores a RST on its only
    // subflow for 60 s (found by the lab's middlebox.sh, where Linux maps 64 KB over 45
    // segments, so this is how a rewritten upload segment on one path always ends).
    let mut engine = engine();
    let (_, server_seq) = established_mptcp(&mut engine);
    let sent = b"twenty bytes of data";
    let first = client_data(server_seq, 1, sent.len() as u16, sent);
    engine.handle_frame(Instant::ZERO, 0, tcp_frame(&first, &sent[..10]));
    let output = all_output(&mut engine);
    assert_eq!(
        segments_to_client(&output).last().map(|a| a.ack),
        Some(SeqNumber(1011))
    );
    let second = TcpRepr {
        seq: SeqNumber(1011),
        options: TcpOptions::default(),
        ..first
    };
    engine.handle_frame(Instant::ZERO, 0, tcp_frame(&second, b"0123456789"));
    let output = all_output(&mut engine);
    let answers = segments_to_client(&output);
    let fast_close = answers
        .iter()
        .find(|repr| matches!(repr.options.mptcp[0], Some(MptcpOption::MpFastclose { .. })))
        .unwrap_or_else(|| panic!("no MP_FASTCLOSE: {answers:?}"));
    assert!(
        !fast_close.flags.contains(TcpFlags::RST),
        "on an ACK, as Linux sends it"
    );
    assert_eq!(engine.counters().mptcp_fastcloses_sent, 1);
    assert_eq!(engine.counters().mptcp_fail_resets, 1);
    assert_eq!(engine.counters().mptcp_checksum_rewinds, 0);
    assert_eq!(engine.counters().mptcp_mp_fail_sent, 0);
}

/// A connection with a verified join on port 40001 besides the initial subflow.
fn joined_mptcp(engine: &mut Engine<Bytes, ChaCha8Rng, Tokens>) -> SeqNumber {
    use crate::mptcp::join::third_ack_hmac;
    let (server_key, server_seq) = established_mptcp(engine);
    let token = crate::mptcp_keys::derive_from_key(server_key).token;
    let (_, server_nonce, _, join_seq) = join_syn_ack(engine, token);
    let hmac = third_ack_hmac(server_key, CLIENT_KEY, server_nonce, 0x5555_aaaa);
    engine.handle_frame(
        Instant::ZERO,
        0,
        tcp_frame(&join_third_ack(join_seq, hmac), &[]),
    );
    all_output(engine);
    assert_eq!(engine.counters().mptcp_joins_established, 1);
    server_seq
}

#[test]
fn the_clients_rst_with_mp_fail_closes_only_that_subflow() {
    // Section 3.7 with several subflows: Linux closes the corrupted one with RST, MP_FAIL
    // and MP_TCPRST 6; the connection goes on over the other (its data is sent again there).
    let mut engine = engine();
    let server_seq = joined_mptcp(&mut engine);
    let options = TcpOptions {
        mptcp: [
            Some(MptcpOption::MpFail {
                data_seq: client_data_seq(1),
            }),
            Some(MptcpOption::MpTcpRst(mpterm_wire::mptcp::MpTcpRst {
                flags: 0,
                reason: 0x06,
            })),
        ],
        ..TcpOptions::default()
    };
    let reset = TcpRepr {
        seq: SeqNumber(1001),
        ack: server_seq + 1,
        flags: TcpFlags::RST | TcpFlags::ACK,
        ..syn(options, 5000)
    };
    engine.handle_frame(Instant::ZERO, 0, tcp_frame(&reset, &[]));
    all_output(&mut engine);
    assert_eq!(engine.counters().mptcp_mp_fail_received, 1);
    assert_eq!(engine.counters().mptcp_fail_resets, 0);
    assert_eq!(engine.connection_count(), 1, "the joined subflow goes on");
}

#[test]
fn an_mp_fail_where_no_fallback_is_allowed_closes_that_subflow() {
    // After a join the streams are no longer contiguous on one subflow: the client's MP_FAIL
    // on an ACK cannot be answered with an infinite mapping (Linux's allow_infinite_fallback
    // is cleared by a join too). The subflow it came on is reset, MP_TCPRST 6, and the
    // connection goes on over the join; no infinite mapping, no MP_FAIL answer.
    let mut engine = engine();
    let server_seq = joined_mptcp(&mut engine);
    let mut options = TcpOptions::default();
    options.mptcp[0] = Some(MptcpOption::MpFail { data_seq: 1234 });
    let ack = TcpRepr {
        seq: SeqNumber(1001),
        ack: server_seq + 1,
        flags: TcpFlags::ACK,
        ..syn(options, 5000)
    };
    engine.handle_frame(Instant::ZERO, 0, tcp_frame(&ack, &[]));
    let output = all_output(&mut engine);
    let answers = segments_to_client(&output);
    let reset = answers
        .iter()
        .find(|repr| repr.flags.contains(TcpFlags::RST))
        .unwrap_or_else(|| panic!("no RST: {answers:?}"));
    assert_eq!(reset.dst_port, 40000);
    assert!(reset.options.mptcp.contains(&Some(MptcpOption::MpTcpRst(
        mpterm_wire::mptcp::MpTcpRst {
            flags: 0,
            reason: 0x06
        }
    ))));
    assert_eq!(engine.counters().mptcp_mp_fail_received, 1);
    assert_eq!(engine.counters().mptcp_mp_fail_sent, 0);
    assert_eq!(engine.counters().mptcp_infinite_mappings_sent, 0);
    assert_eq!(engine.connection_count(), 1);
}

#[test]
fn an_mp_fail_on_the_only_subflow_is_answered_with_mp_fail() {
    // Section 3.7, the sender's side on one subflow: MP_FAIL back on a pure ACK (what ends a
    // Linux client's wait for an answer); the infinite mapping follows on the next new data
    // (the engine simulation checks that, with data toward the client).
    let mut engine = engine();
    let (_, server_seq) = established_mptcp(&mut engine);
    let mut options = TcpOptions::default();
    options.mptcp[0] = Some(MptcpOption::MpFail { data_seq: 4321 });
    let ack = TcpRepr {
        seq: SeqNumber(1001),
        ack: server_seq + 1,
        flags: TcpFlags::ACK,
        ..syn(options, 5000)
    };
    engine.handle_frame(Instant::ZERO, 0, tcp_frame(&ack, &[]));
    let output = all_output(&mut engine);
    let answers = segments_to_client(&output);
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert!(answers[0]
        .options
        .mptcp
        .contains(&Some(MptcpOption::MpFail { data_seq: 4321 })));
    assert!(data_ack_of(&answers[0]).is_some(), "beside the DATA_ACK");
    assert_eq!(engine.counters().mptcp_mp_fail_received, 1);
    assert_eq!(engine.counters().mptcp_mp_fail_sent, 1);
}

#[test]
fn superseded_timer_entries_are_dropped_instead_of_growing_the_heap() {
    // A deadline that moves earlier leaves its old heap entry behind; a tail loss probe's
    // deadline does that whenever the flight grows past one segment. Once the heap is full
    // the entries no connection waits for go, instead of a reallocation (found by the
    // pipeline's hot-path test: 12 allocations in steady state).
    let mut engine = engine();
    established_mptcp(&mut engine);
    let capacity = engine.timers.capacity();
    let far = Instant::from_nanos(u64::MAX / 2);
    while engine.timers.len() < capacity {
        // Entries of a connection id that no slot holds.
        engine.timers.push(Reverse((far, 0, 999)));
    }
    let slot = engine.slots.iter().position(Option::is_some).unwrap();
    engine.slots[slot].as_mut().unwrap().armed = None;
    engine.arm_timer(slot);
    assert_eq!(engine.timers.capacity(), capacity, "no reallocation");
    let left: Vec<_> = engine.timers.iter().map(|Reverse(entry)| *entry).collect();
    let id = engine.slots[slot].as_ref().unwrap().connection.id;
    assert!(
        !left.is_empty() && left.iter().all(|&(_, s, i)| s == slot && i == id),
        "only the connection's own entries are left: {left:?}"
    );
}

/// An ICMP error from a router on the client's path about a segment we sent the client.
fn icmp_error_frame(kind: IcmpErrorKind, dst_port: u16, seq: SeqNumber) -> Bytes {
    let error = IcmpErrorRepr {
        kind,
        quoted: QuotedTcp {
            src: APPLIANCE.into(),
            dst: CLIENT.into(),
            src_port: 5000,
            dst_port,
            seq,
        },
    };
    let mut message = vec![0u8; error.buffer_len()];
    error.emit_v4(&mut message).unwrap();
    let mut body = vec![0u8; ipv4::HEADER_LEN + message.len()];
    let ip = Ipv4Repr {
        src: Ipv4Addr::new(198, 18, 0, 254),
        dst: APPLIANCE,
        protocol: ipv4::PROTOCOL_ICMP,
        payload_len: message.len() as u16,
        ttl: 64,
    };
    ip.emit(&mut body).unwrap();
    body[ipv4::HEADER_LEN..].copy_from_slice(&message);
    frame(ethernet::ETHERTYPE_IPV4, &body)
}

#[test]
fn icmp_errors_act_only_when_they_quote_data_in_flight_of_a_live_connection() {
    let mut engine = engine();
    let options = TcpOptions {
        mss: Some(1460),
        ..TcpOptions::default()
    };
    engine.handle_frame(Instant::ZERO, 0, tcp_frame(&syn(options, 5000), &[]));
    let output = all_output(&mut engine);
    let (_, syn_ack) = parse_tcp(&output[0]);
    let iss = syn_ack.seq;
    let too_big = |mtu| IcmpErrorKind::PacketTooBig { mtu };
    let counters = |engine: &Engine<Bytes, ChaCha8Rng, Tokens>| {
        let c = engine.counters();
        [
            c.icmp_errors_no_connection,
            c.icmp_errors_outside_window,
            c.icmp_mtu_below_floor,
            c.icmp_errors_ignored,
            c.icmp_mtu_lowered,
        ]
    };
    let path_mss = |engine: &Engine<Bytes, ChaCha8Rng, Tokens>| {
        let slot = engine.slots[0].as_ref().unwrap();
        slot.connection.subflow(0).unwrap().tcb.path_mss()
    };
    // Another port: no flow of ours.
    engine.handle_frame(
        Instant::ZERO,
        0,
        icmp_error_frame(too_big(1280), 40001, iss),
    );
    assert_eq!(counters(&engine), [1, 0, 0, 0, 0]);
    // Our SYN-ACK is the only thing in flight: ISS..=ISS+1.
    engine.handle_frame(
        Instant::ZERO,
        0,
        icmp_error_frame(too_big(1280), 40000, iss + 2),
    );
    engine.handle_frame(
        Instant::ZERO,
        0,
        icmp_error_frame(too_big(1280), 40000, iss - 1),
    );
    assert_eq!(counters(&engine), [1, 2, 0, 0, 0]);
    // Below Linux's min_pmtu, and the "0" of a router older than RFC 1191.
    engine.handle_frame(Instant::ZERO, 0, icmp_error_frame(too_big(551), 40000, iss));
    engine.handle_frame(Instant::ZERO, 0, icmp_error_frame(too_big(0), 40000, iss));
    assert_eq!(counters(&engine), [1, 2, 2, 0, 0]);
    // A hard error in the handshake is a soft error here (RFC 5461); the same MTU as now.
    let port_unreachable = IcmpErrorKind::Other {
        msg_type: 3,
        code: 3,
    };
    engine.handle_frame(
        Instant::ZERO,
        0,
        icmp_error_frame(port_unreachable, 40000, iss),
    );
    engine.handle_frame(
        Instant::ZERO,
        0,
        icmp_error_frame(too_big(1500), 40000, iss),
    );
    assert_eq!(counters(&engine), [1, 2, 2, 2, 0]);
    assert_eq!(path_mss(&engine), None, "nothing changed");
    assert_eq!(engine.connection_count(), 1, "and nothing was aborted");
    assert!(all_output(&mut engine).is_empty(), "nor answered");
    // A bad checksum is malformed, not an error about anything.
    let mut corrupt = icmp_error_frame(too_big(1280), 40000, iss).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x40;
    let malformed = engine.counters().rx_dropped_malformed;
    engine.handle_frame(Instant::ZERO, 0, Bytes::from(corrupt));
    assert_eq!(engine.counters().rx_dropped_malformed, malformed + 1);
    // The valid one: MTU 1280 is an MSS of 1240 over IPv4.
    engine.handle_frame(
        Instant::ZERO,
        0,
        icmp_error_frame(too_big(1280), 40000, iss + 1),
    );
    assert_eq!(counters(&engine), [1, 2, 2, 2, 1]);
    assert_eq!(path_mss(&engine), Some(1240));
    // A second report of the same MTU lowers nothing further.
    engine.handle_frame(
        Instant::ZERO,
        0,
        icmp_error_frame(too_big(1280), 40000, iss),
    );
    assert_eq!(counters(&engine), [1, 2, 2, 3, 1]);
}

#[test]
fn a_syn_asking_for_ecn_gets_an_ecn_setup_syn_ack_unless_ecn_is_off() {
    for (ecn, asked, expect_ece) in [
        (true, true, true),
        (true, false, false),
        (false, true, false),
    ] {
        let mut engine = engine_with(|config| config.client_tcp.ecn = ecn);
        let mut request = syn(TcpOptions::default(), 5000);
        if asked {
            request.flags = request.flags | TcpFlags::ECE | TcpFlags::CWR;
        }
        engine.handle_frame(Instant::ZERO, 0, tcp_frame(&request, &[]));
        let output = all_output(&mut engine);
        let (_, syn_ack) = parse_tcp(&output[0]);
        // RFC 3168 section 6.1.1: ECE set, CWR clear; and no ECT on a SYN-ACK.
        assert_eq!(
            syn_ack.flags.contains(TcpFlags::ECE),
            expect_ece,
            "{ecn} {asked}"
        );
        assert!(!syn_ack.flags.contains(TcpFlags::CWR));
        let ip = Ipv4Packet::new_checked(&output[0][ethernet::HEADER_LEN..]).unwrap();
        assert_eq!(ip.dscp_ecn() & 0b11, 0);
    }
}
