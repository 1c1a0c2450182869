//! Frame-level tests of IPv6 on the appliance: neighbour discovery both ways, ICMPv6 echo, a
//! listener on an IPv6 address, and an IPv6 subflow joining a connection opened over IPv4
//! (issue 7: one connection's subflows may mix families).

use core::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

use bytes::Bytes;
use mpterm_wire::ethernet::{self, EthernetAddress, EthernetFrame, EthernetRepr};
use mpterm_wire::icmp_error::{IcmpErrorKind, IcmpErrorRepr, QuotedTcp};
use mpterm_wire::icmpv6::{Icmpv6Packet, Icmpv6Repr, NeighborFlags};
use mpterm_wire::ipv6::{self, Ipv6Packet, Ipv6Repr};
use mpterm_wire::mptcp::{MpJoin, MptcpOption};
use mpterm_wire::tcp::{self, TcpFlags, TcpOptions, TcpRepr, TcpSegment};
use rand_chacha::ChaCha8Rng;

use super::tests::{
    all_output, engine_with, established_mptcp, join_third_ack, mp_join_syn, syn, Tokens,
    APPLIANCE_MAC, CLIENT_KEY, CLIENT_MAC,
};
use super::*;
use crate::Ipv6Interface;

const APPLIANCE6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 2);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 1);
const ROUTER6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x20];
/// A client beyond the router.
const REMOTE6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 9, 0, 0, 0, 1);

type TestEngine = Engine<Bytes, ChaCha8Rng, Tokens>;

/// The test engine of `engine_tests`, with 2001:2:0:1::2/64 (router fe80::1) on interface 0
/// and a listener on [2001:2:0:1::2]:5000 beside the IPv4 one.
fn engine() -> TestEngine {
    engine_with(|config| {
        config.interfaces[0].ipv6 = Some(Ipv6Interface {
            address: APPLIANCE6,
            prefix_len: 64,
            gateway: Some(ROUTER6),
        });
        let mut rule = config.proxies[0];
        rule.listen = SocketAddr::V6(SocketAddrV6::new(APPLIANCE6, 5000, 0, 0));
        config.proxies.push(rule);
    })
}

fn ipv6_frame(src_mac: [u8; 6], dst_mac: EthernetAddress, ip: Ipv6Repr, upper: &[u8]) -> Bytes {
    let mut bytes = vec![0u8; ethernet::HEADER_LEN + ipv6::HEADER_LEN + upper.len()];
    EthernetRepr {
        src: EthernetAddress(src_mac),
        dst: dst_mac,
        ethertype: ethernet::ETHERTYPE_IPV6,
    }
    .emit(&mut bytes)
    .unwrap();
    ip.emit(&mut bytes[ethernet::HEADER_LEN..]).unwrap();
    bytes[ethernet::HEADER_LEN + ipv6::HEADER_LEN..].copy_from_slice(upper);
    Bytes::from(bytes)
}

fn icmpv6_frame(
    src_mac: [u8; 6],
    dst_mac: EthernetAddress,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    message: &Icmpv6Repr,
    data: &[u8],
) -> Bytes {
    let mut upper = vec![0u8; message.buffer_len() + data.len()];
    let len = message.emit(src, dst, &mut upper, data).unwrap();
    upper[len..].copy_from_slice(data);
    let ip = Ipv6Repr {
        src,
        dst,
        next_header: ipv6::NEXT_HEADER_ICMPV6,
        payload_len: upper.len() as u16,
        hop_limit,
    };
    ipv6_frame(src_mac, dst_mac, ip, &upper)
}

fn tcp6_frame(src_mac: [u8; 6], src: Ipv6Addr, repr: &TcpRepr<'_>, payload: &[u8]) -> Bytes {
    let tcp_len = repr.header_len();
    let mut upper = vec![0u8; tcp_len + payload.len()];
    repr.emit(&mut upper).unwrap();
    upper[tcp_len..].copy_from_slice(payload);
    let (header, data) = upper.split_at_mut(tcp_len);
    tcp::fill_checksum_v6(header, src, APPLIANCE6, data);
    let ip = Ipv6Repr {
        src,
        dst: APPLIANCE6,
        next_header: ipv6::NEXT_HEADER_TCP,
        payload_len: upper.len() as u16,
        hop_limit: 64,
    };
    ipv6_frame(src_mac, EthernetAddress(APPLIANCE_MAC), ip, &upper)
}

/// An IPv6 frame the engine sent: its Ethernet destination, IPv6 header and upper-layer bytes.
fn parse_ipv6(frame: &[u8]) -> (EthernetAddress, Ipv6Repr, Vec<u8>) {
    let ethernet = EthernetFrame::new_checked(frame).unwrap();
    assert_eq!(ethernet.ethertype(), ethernet::ETHERTYPE_IPV6);
    assert_eq!(ethernet.src_addr(), EthernetAddress(APPLIANCE_MAC));
    let packet = Ipv6Packet::new_checked(&frame[ethernet::HEADER_LEN..]).unwrap();
    let repr = Ipv6Repr::parse(&packet).unwrap();
    let upper = packet.payload()[..usize::from(repr.payload_len)].to_vec();
    (ethernet.dst_addr(), repr, upper)
}

fn parse_icmpv6(frame: &[u8]) -> (EthernetAddress, Ipv6Repr, Icmpv6Repr, Vec<u8>) {
    let (mac, ip, upper) = parse_ipv6(frame);
    assert_eq!(ip.next_header, ipv6::NEXT_HEADER_ICMPV6);
    let packet = Icmpv6Packet::new_checked(&upper[..]).unwrap();
    let message = Icmpv6Repr::parse(&packet, ip.src, ip.dst).expect("a valid ICMPv6 checksum");
    let data = upper[mpterm_wire::icmpv6::HEADER_LEN..].to_vec();
    (mac, ip, message, data)
}

/// A TCP segment the engine sent over IPv6, its checksum verified over the IPv6
/// pseudo-header.
fn parse_tcp6(frame: &[u8]) -> (EthernetAddress, Ipv6Repr, TcpRepr<'static>) {
    let (mac, ip, upper) = parse_ipv6(frame);
    assert_eq!(ip.next_header, ipv6::NEXT_HEADER_TCP);
    let upper: &'static [u8] = Box::leak(upper.into_boxed_slice());
    let segment = TcpSegment::new_checked(upper).unwrap();
    assert!(
        segment.verify_checksum_v6(ip.src, ip.dst),
        "the engine sent a bad TCP checksum over IPv6"
    );
    (mac, ip, TcpRepr::parse(&segment).unwrap())
}

fn solicitation_from_client(target: Ipv6Addr, hop_limit: u8) -> Bytes {
    let group = ipv6::solicited_node_multicast(target);
    icmpv6_frame(
        CLIENT_MAC,
        EthernetAddress::from_ipv6_multicast(group).unwrap(),
        CLIENT6,
        group,
        hop_limit,
        &Icmpv6Repr::NeighborSolicit {
            target,
            source_link_addr: Some(EthernetAddress(CLIENT_MAC)),
        },
        &[],
    )
}

#[test]
fn a_neighbour_solicitation_for_our_address_is_advertised_and_teaches_us_the_sender() {
    let mut engine = engine();
    engine.handle_frame(Instant::ZERO, 0, solicitation_from_client(APPLIANCE6, 255));
    let output = all_output(&mut engine);
    assert_eq!(output.len(), 1, "one advertisement");
    let (mac, ip, message, _) = parse_icmpv6(&output[0]);
    assert_eq!(mac, EthernetAddress(CLIENT_MAC));
    assert_eq!((ip.src, ip.dst, ip.hop_limit), (APPLIANCE6, CLIENT6, 255));
    assert_eq!(
        message,
        Icmpv6Repr::NeighborAdvert {
            flags: NeighborFlags::SOLICITED | NeighborFlags::OVERRIDE,
            target: APPLIANCE6,
            target_link_addr: Some(EthernetAddress(APPLIANCE_MAC)),
        }
    );
    assert_eq!(engine.counters().neighbor_solicitations_answered, 1);
    // RFC 4861 7.2.3: the solicitation's source link-layer address was learned.
    assert_eq!(
        engine
            .neighbors
            .lookup(Instant::ZERO, 0, IpAddr::V6(CLIENT6)),
        Some(EthernetAddress(CLIENT_MAC))
    );
}

#[test]
fn solicitations_for_other_targets_or_from_off_link_are_not_answered() {
    let mut engine = engine();
    let elsewhere = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 7);
    engine.handle_frame(Instant::ZERO, 0, solicitation_from_client(elsewhere, 255));
    // RFC 4861 7.1.1: a hop limit below 255 means it was routed, and it is discarded.
    engine.handle_frame(Instant::ZERO, 0, solicitation_from_client(APPLIANCE6, 64));
    assert!(all_output(&mut engine).is_empty());
    assert_eq!(engine.counters().neighbor_solicitations_answered, 0);
    assert_eq!(engine.counters().rx_dropped_malformed, 1);
    assert!(engine.counters().rx_dropped_not_for_us >= 1);
    // An interface without IPv6 answers nothing either.
    engine.handle_frame(Instant::ZERO, 1, solicitation_from_client(APPLIANCE6, 255));
    assert!(all_output(&mut engine).is_empty());
}

#[test]
fn an_icmpv6_echo_request_is_answered_with_its_data() {
    let mut engine = engine();
    let data = b"mpterm ipv6 echo";
    let request = icmpv6_frame(
        CLIENT_MAC,
        EthernetAddress(APPLIANCE_MAC),
        CLIENT6,
        APPLIANCE6,
        64,
        &Icmpv6Repr::EchoRequest {
            identifier: 7,
            sequence: 9,
        },
        data,
    );
    engine.handle_frame(Instant::ZERO, 0, request);
    let output = all_output(&mut engine);
    assert_eq!(output.len(), 1);
    let (mac, ip, message, echoed) = parse_icmpv6(&output[0]);
    assert_eq!(mac, EthernetAddress(CLIENT_MAC));
    assert_eq!((ip.src, ip.dst), (APPLIANCE6, CLIENT6));
    assert_eq!(
        message,
        Icmpv6Repr::EchoReply {
            identifier: 7,
            sequence: 9
        }
    );
    assert_eq!(echoed, data);
    assert_eq!(engine.counters().icmp_echo_answered, 1);
}

#[test]
fn a_syn_to_the_ipv6_listener_gets_a_syn_ack_over_ipv6_with_the_ipv6_mss() {
    let mut engine = engine();
    let mut options = TcpOptions {
        mss: Some(1440),
        ..TcpOptions::default()
    };
    options.window_scale = Some(7);
    engine.handle_frame(
        Instant::ZERO,
        0,
        tcp6_frame(CLIENT_MAC, CLIENT6, &syn(options, 5000), &[]),
    );
    let output = all_output(&mut engine);
    assert_eq!(output.len(), 1, "{output:?}");
    let (mac, ip, syn_ack) = parse_tcp6(&output[0]);
    assert_eq!(
        mac,
        EthernetAddress(CLIENT_MAC),
        "the SYN's sender was learned"
    );
    assert_eq!((ip.src, ip.dst), (APPLIANCE6, CLIENT6));
    assert_eq!(syn_ack.flags, TcpFlags::SYN | TcpFlags::ACK);
    // RFC 9293 3.7.1: MTU 1500 less 40 bytes of IPv6 and 20 of TCP.
    assert_eq!(syn_ack.options.mss, Some(1440));
    assert_eq!(engine.counters().connections_accepted, 1);
}

#[test]
fn an_off_link_client_is_reached_through_the_router_found_by_neighbour_discovery() {
    let mut engine = engine();
    // The SYN came through the router: its source MAC is the router's, not REMOTE6's.
    engine.handle_frame(
        Instant::ZERO,
        0,
        tcp6_frame(ROUTER_MAC, REMOTE6, &syn(TcpOptions::default(), 5000), &[]),
    );
    assert!(all_output(&mut engine).is_empty(), "the SYN-ACK waits");
    // Resolution requests leave from the timer, as ARP requests do.
    assert_eq!(engine.poll_timeout(), Some(Instant::ZERO));
    engine.handle_timeout(Instant::ZERO);
    let output = all_output(&mut engine);
    assert_eq!(output.len(), 1, "a solicitation");
    let (mac, ip, message, _) = parse_icmpv6(&output[0]);
    let group = ipv6::solicited_node_multicast(ROUTER6);
    assert_eq!(mac, EthernetAddress::from_ipv6_multicast(group).unwrap());
    assert_eq!((ip.src, ip.dst, ip.hop_limit), (APPLIANCE6, group, 255));
    assert_eq!(
        message,
        Icmpv6Repr::NeighborSolicit {
            target: ROUTER6,
            source_link_addr: Some(EthernetAddress(APPLIANCE_MAC)),
        }
    );
    let advert = icmpv6_frame(
        ROUTER_MAC,
        EthernetAddress(APPLIANCE_MAC),
        ROUTER6,
        APPLIANCE6,
        255,
        &Icmpv6Repr::NeighborAdvert {
            flags: NeighborFlags::SOLICITED | NeighborFlags::ROUTER,
            target: ROUTER6,
            target_link_addr: Some(EthernetAddress(ROUTER_MAC)),
        },
        &[],
    );
    engine.handle_frame(Instant::ZERO, 0, advert);
    let output = all_output(&mut engine);
    assert_eq!(output.len(), 1, "the SYN-ACK, released");
    let (mac, ip, syn_ack) = parse_tcp6(&output[0]);
    assert_eq!(mac, EthernetAddress(ROUTER_MAC));
    assert_eq!(ip.dst, REMOTE6);
    assert_eq!(syn_ack.flags, TcpFlags::SYN | TcpFlags::ACK);
}

#[test]
fn an_ipv6_subflow_joins_a_connection_opened_over_ipv4() {
    use crate::mptcp::join::{syn_ack_hmac, third_ack_hmac};
    let mut engine = engine();
    let (server_key, _) = established_mptcp(&mut engine);
    let token = crate::mptcp_keys::derive_from_key(server_key).token;
    engine.handle_frame(
        Instant::ZERO,
        0,
        tcp6_frame(CLIENT_MAC, CLIENT6, &mp_join_syn(token, 40001), &[]),
    );
    let output = all_output(&mut engine);
    assert_eq!(output.len(), 1, "{output:?}");
    let (_, ip, syn_ack) = parse_tcp6(&output[0]);
    assert_eq!((ip.src, ip.dst), (APPLIANCE6, CLIENT6));
    let Some(MptcpOption::MpJoin(MpJoin::SynAck {
        truncated_hmac,
        sender_nonce,
        address_id,
        ..
    })) = syn_ack.options.mptcp[0]
    else {
        panic!("no MP_JOIN in {syn_ack:?}")
    };
    let client_nonce = 0x5555_aaaa;
    assert_eq!(
        truncated_hmac,
        syn_ack_hmac(server_key, CLIENT_KEY, sender_nonce, client_nonce)
    );
    // Our IPv6 addresses follow the IPv4 ones: two interfaces, so interface 0's IPv6 is 3.
    assert_eq!(address_id, 3);
    let hmac = third_ack_hmac(server_key, CLIENT_KEY, sender_nonce, client_nonce);
    engine.handle_frame(
        Instant::ZERO,
        0,
        tcp6_frame(CLIENT_MAC, CLIENT6, &join_third_ack(syn_ack.seq, hmac), &[]),
    );
    let output = all_output(&mut engine);
    assert_eq!(output.len(), 1, "the fourth ACK");
    let (_, _, fourth) = parse_tcp6(&output[0]);
    assert_eq!(fourth.flags, TcpFlags::ACK);
    assert_eq!(engine.counters().mptcp_joins_established, 1);
    let mut subflows = Vec::new();
    engine.visit_connections(|_, views| {
        subflows.extend(views.map(|view| (view.local.ip(), view.remote.ip(), view.joining)))
    });
    assert_eq!(
        subflows,
        [
            (
                IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
                IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
                false
            ),
            (IpAddr::V6(APPLIANCE6), IpAddr::V6(CLIENT6), false),
        ],
        "one connection, one subflow of each family"
    );
}

#[test]
fn ipv6_packets_with_extension_headers_or_for_others_are_counted_and_dropped() {
    let mut engine = engine();
    let mut fragment = tcp6_frame(CLIENT_MAC, CLIENT6, &syn(TcpOptions::default(), 5000), &[]);
    // Next header: fragment (44).
    let mut bytes = fragment.to_vec();
    bytes[ethernet::HEADER_LEN + 6] = ipv6::NEXT_HEADER_FRAGMENT;
    fragment = Bytes::from(bytes);
    engine.handle_frame(Instant::ZERO, 0, fragment);
    let stranger = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 0x99);
    let mut bytes =
        tcp6_frame(CLIENT_MAC, CLIENT6, &syn(TcpOptions::default(), 5000), &[]).to_vec();
    bytes[ethernet::HEADER_LEN + 24..ethernet::HEADER_LEN + 40].copy_from_slice(&stranger.octets());
    engine.handle_frame(Instant::ZERO, 0, Bytes::from(bytes));
    let truncated = Bytes::from(vec![0u8; ethernet::HEADER_LEN + 20]);
    let mut truncated = truncated.to_vec();
    EthernetRepr {
        src: EthernetAddress(CLIENT_MAC),
        dst: EthernetAddress(APPLIANCE_MAC),
        ethertype: ethernet::ETHERTYPE_IPV6,
    }
    .emit(&mut truncated)
    .unwrap();
    engine.handle_frame(Instant::ZERO, 0, Bytes::from(truncated));
    assert!(all_output(&mut engine).is_empty());
    assert_eq!(engine.counters().rx_dropped_not_for_us, 2);
    assert_eq!(engine.counters().rx_dropped_malformed, 1);
    assert_eq!(engine.connection_count(), 0);
}

/// An ICMPv6 error from the router about a segment we sent the client over IPv6.
fn icmpv6_error_frame(kind: IcmpErrorKind, dst_port: u16, seq: mpterm_wire::SeqNumber) -> Bytes {
    let error = IcmpErrorRepr {
        kind,
        quoted: QuotedTcp {
            src: APPLIANCE6.into(),
            dst: CLIENT6.into(),
            src_port: 5000,
            dst_port,
            seq,
        },
    };
    let router = Ipv6Addr::new(0x2001, 2, 0, 9, 0, 0, 0, 0xfe);
    let mut upper = vec![0u8; error.buffer_len()];
    error.emit_v6(&mut upper, router, APPLIANCE6).unwrap();
    let ip = Ipv6Repr {
        src: router,
        dst: APPLIANCE6,
        next_header: ipv6::NEXT_HEADER_ICMPV6,
        payload_len: upper.len() as u16,
        hop_limit: 64,
    };
    ipv6_frame(ROUTER_MAC, EthernetAddress(APPLIANCE_MAC), ip, &upper)
}

#[test]
fn a_packet_too_big_lowers_the_mss_of_the_ipv6_flow_it_quotes_and_nothing_else_does() {
    let mut engine = engine();
    let options = TcpOptions {
        mss: Some(1440),
        ..TcpOptions::default()
    };
    engine.handle_frame(
        Instant::ZERO,
        0,
        tcp6_frame(CLIENT_MAC, CLIENT6, &syn(options, 5000), &[]),
    );
    let output = all_output(&mut engine);
    let (_, _, syn_ack) = parse_tcp6(&output[0]);
    let iss = syn_ack.seq;
    let too_big = |mtu| IcmpErrorKind::PacketTooBig { mtu };
    let counters = |engine: &TestEngine| {
        let c = engine.counters();
        [
            c.icmp_errors_no_connection,
            c.icmp_errors_outside_window,
            c.icmp_mtu_below_floor,
            c.icmp_errors_ignored,
            c.icmp_mtu_lowered,
        ]
    };
    let path_mss = |engine: &TestEngine| {
        let slot = engine.slots[0].as_ref().unwrap();
        slot.connection.subflow(0).unwrap().tcb.path_mss()
    };
    engine.handle_frame(
        Instant::ZERO,
        0,
        icmpv6_error_frame(too_big(1280), 40001, iss),
    );
    engine.handle_frame(
        Instant::ZERO,
        0,
        icmpv6_error_frame(too_big(1280), 40000, iss + 9),
    );
    // RFC 8201 section 4: never below the IPv6 minimum link MTU.
    engine.handle_frame(
        Instant::ZERO,
        0,
        icmpv6_error_frame(too_big(1279), 40000, iss),
    );
    let unreachable = IcmpErrorKind::Other {
        msg_type: 1,
        code: 4,
    };
    engine.handle_frame(
        Instant::ZERO,
        0,
        icmpv6_error_frame(unreachable, 40000, iss),
    );
    assert_eq!(counters(&engine), [1, 1, 1, 1, 0]);
    assert_eq!(path_mss(&engine), None);
    assert_eq!(engine.connection_count(), 1);
    // MTU 1400 is an MSS of 1340 over IPv6 (40 bytes of IPv6, 20 of TCP).
    engine.handle_frame(
        Instant::ZERO,
        0,
        icmpv6_error_frame(too_big(1400), 40000, iss),
    );
    assert_eq!(counters(&engine), [1, 1, 1, 1, 1]);
    assert_eq!(path_mss(&engine), Some(1340));
    // The checksum covers the IPv6 addresses: one for another destination does not verify.
    let mut misdirected = icmpv6_error_frame(too_big(1280), 40000, iss).to_vec();
    misdirected[ethernet::HEADER_LEN + 8] ^= 0x01; // the source address
    let malformed = engine.counters().rx_dropped_malformed;
    engine.handle_frame(Instant::ZERO, 0, Bytes::from(misdirected));
    assert_eq!(engine.counters().rx_dropped_malformed, malformed + 1);
    assert_eq!(path_mss(&engine), Some(1340));
}
