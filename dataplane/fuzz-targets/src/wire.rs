//! Fuzz targets for every parser of `mpterm-wire` that reads untrusted bytes.
//!
//! Each target checks, for any input:
//! - no panic in `new_checked`, `parse` or any accessor of a checked view;
//! - what `new_checked` accepts has the lengths the view promises;
//! - what `parse` accepts re-emits, and the emitted bytes parse back to the same
//!   representation (where the format is canonical, the emitted bytes are the input's);
//! - checksums written by the crate verify with the crate.
//!
//! IPv6 and ICMPv6 have no targets of their own, so that `tests/fuzz.sh` takes no longer: the
//! `ipv4_packet` target runs [`ip_packet`], which takes an input whose version nibble is 6 as
//! IPv6, the `icmp_packet` target runs [`icmp_message`], which parses its input as ICMP and as
//! ICMPv6, `ethernet_frame` follows EtherType 0x86dd, and `tcp_segment` and `checksum` check
//! the IPv6 pseudo-header beside IPv4's.
//!
//! (The pcap reader in `mpterm-wire`'s `capture.rs` is test-only code that reads committed
//! fixtures, never network input, so it has no target.)

use core::net::{Ipv4Addr, Ipv6Addr};

use mpterm_wire::arp::{self, ArpPacket, ArpRepr};
use mpterm_wire::checksum::{
    dss_pseudo_header, internet_checksum, pseudo_header_v4, pseudo_header_v6, Checksum,
};
use mpterm_wire::ethernet::{self, EthernetAddress, EthernetFrame, EthernetRepr};
use mpterm_wire::icmp::{self, IcmpEchoRepr, IcmpPacket};
use mpterm_wire::icmpv6::{self, Icmpv6Packet, Icmpv6Repr, NeighborFlags};
use mpterm_wire::ipv4::{self, Ipv4Packet, Ipv4Repr};
use mpterm_wire::ipv6::{self, Ipv6Packet, Ipv6Repr};
use mpterm_wire::mptcp::{self, parse_add_addr_v0, MptcpOption};
use mpterm_wire::tcp::{self, TcpOptions, TcpRepr, TcpSegment};
use mpterm_wire::WireError;

use crate::byte_reader::ByteReader;

/// A whole received frame, dissected as the engine does: Ethernet, then ARP, IPv4 or IPv6,
/// then ICMP, ICMPv6 or TCP with its options.
pub fn ethernet_frame(data: &[u8]) {
    let frame = match EthernetFrame::new_checked(data) {
        Ok(frame) => frame,
        Err(error) => {
            assert_eq!(error, WireError::Truncated);
            assert!(data.len() < ethernet::HEADER_LEN);
            return;
        }
    };
    let payload = frame.payload();
    assert_eq!(payload.len(), data.len() - ethernet::HEADER_LEN);
    let repr = EthernetRepr::parse(&frame);
    assert_eq!(repr.dst, frame.dst_addr());
    assert_eq!(repr.src, frame.src_addr());
    assert_eq!(repr.ethertype, frame.ethertype());
    let _ = (
        repr.dst.is_broadcast(),
        repr.dst.is_multicast(),
        repr.src.is_unicast(),
    );
    // The Ethernet header is canonical: emitting the parsed header gives the input's bytes.
    let mut out = [0u8; ethernet::HEADER_LEN];
    assert_eq!(repr.emit(&mut out), Ok(ethernet::HEADER_LEN));
    assert_eq!(out[..], data[..ethernet::HEADER_LEN]);
    assert_eq!(repr.buffer_len(), ethernet::HEADER_LEN);
    match repr.ethertype {
        ethernet::ETHERTYPE_ARP => arp_packet(payload),
        ethernet::ETHERTYPE_IPV4 => ipv4_packet(payload),
        ethernet::ETHERTYPE_IPV6 => ipv6_packet(payload),
        _ => {}
    }
}

/// An ARP packet (RFC 826) as the engine receives it after the Ethernet header.
pub fn arp_packet(data: &[u8]) {
    let packet = match ArpPacket::new_checked(data) {
        Ok(packet) => packet,
        Err(error) => {
            assert_eq!(error, WireError::Truncated);
            assert!(data.len() < arp::PACKET_LEN);
            return;
        }
    };
    let _ = (
        packet.hardware_type(),
        packet.protocol_type(),
        packet.hardware_len(),
        packet.protocol_len(),
        packet.operation(),
        packet.sender_hardware_addr(),
        packet.sender_protocol_addr(),
        packet.target_hardware_addr(),
        packet.target_protocol_addr(),
    );
    let Ok(repr) = ArpRepr::parse(&packet) else {
        return;
    };
    // Only the Ethernet/IPv4 form with operation 1 or 2 parses, and that form is canonical.
    let mut out = [0u8; arp::PACKET_LEN];
    assert_eq!(repr.emit(&mut out), Ok(arp::PACKET_LEN));
    assert_eq!(out[..], data[..arp::PACKET_LEN]);
    let again = ArpRepr::parse(&ArpPacket::new_checked(&out[..]).expect("emitted ARP checks"));
    assert_eq!(again, Ok(repr));
}

/// An IPv4 packet (RFC 791) and, inside it, ICMP or TCP.
pub fn ipv4_packet(data: &[u8]) {
    let Ok(packet) = Ipv4Packet::new_checked(data) else {
        return;
    };
    let header_len = packet.header_len();
    let total_len = usize::from(packet.total_len());
    assert!(packet.version() == 4);
    assert!((ipv4::HEADER_LEN..=60).contains(&header_len));
    assert!(header_len <= total_len && total_len <= data.len());
    assert_eq!(packet.options().len(), header_len - ipv4::HEADER_LEN);
    assert_eq!(packet.payload().len(), total_len - header_len);
    let _ = (
        packet.dscp_ecn(),
        packet.identification(),
        packet.dont_fragment(),
        packet.more_fragments(),
        packet.fragment_offset(),
        packet.ttl(),
        packet.protocol(),
        packet.checksum(),
    );
    let checksum_ok = packet.verify_checksum();

    // The checksum the crate writes verifies, with or without options.
    let mut header = data[..header_len].to_vec();
    let mut refilled = Ipv4Packet::new_unchecked(&mut header[..]);
    refilled.fill_checksum();
    assert!(Ipv4Packet::new_unchecked(&header[..]).verify_checksum());

    match Ipv4Repr::parse(&packet) {
        Ok(repr) => {
            assert!(checksum_ok && !packet.is_fragment());
            assert_eq!(usize::from(repr.payload_len), total_len - header_len);
            let mut whole = vec![0u8; ipv4::HEADER_LEN];
            assert_eq!(repr.emit(&mut whole), Ok(ipv4::HEADER_LEN));
            whole.extend_from_slice(packet.payload());
            let emitted = Ipv4Packet::new_checked(&whole[..]).expect("emitted IPv4 checks");
            assert!(emitted.verify_checksum() && emitted.dont_fragment());
            assert_eq!(Ipv4Repr::parse(&emitted), Ok(repr));
            assert_eq!(emitted.payload(), packet.payload());
            match repr.protocol {
                ipv4::PROTOCOL_ICMP => icmp_packet(packet.payload()),
                ipv4::PROTOCOL_TCP => {
                    tcp_segment_from(Addresses::V4(repr.src, repr.dst), packet.payload())
                }
                _ => {}
            }
        }
        Err(WireError::Checksum) => assert!(!checksum_ok),
        Err(WireError::Unsupported) => assert!(checksum_ok && packet.is_fragment()),
        Err(error) => panic!("Ipv4Repr::parse: unexpected {error:?}"),
    }
}

/// An IP packet of either version, told apart by the version nibble (the `ipv4_packet`
/// target's body).
pub fn ip_packet(data: &[u8]) {
    match data.first().map(|byte| byte >> 4) {
        Some(6) => ipv6_packet(data),
        _ => ipv4_packet(data),
    }
}

/// An IPv6 packet (RFC 8200 section 3) and, inside it, ICMPv6 or TCP. Extension headers are
/// not followed: such a packet parses with the extension header's number as next header.
pub fn ipv6_packet(data: &[u8]) {
    let packet = match Ipv6Packet::new_checked(data) {
        Ok(packet) => packet,
        Err(WireError::Truncated) => {
            let declared = data.get(4..6).map(|b| u16::from_be_bytes([b[0], b[1]]));
            assert!(
                data.len() < ipv6::HEADER_LEN
                    || ipv6::HEADER_LEN + usize::from(declared.unwrap_or(0)) > data.len()
            );
            return;
        }
        Err(error) => {
            assert_eq!(error, WireError::Malformed);
            assert_ne!(data[0] >> 4, 6);
            return;
        }
    };
    assert_eq!(packet.version(), 6);
    assert_eq!(packet.payload().len(), usize::from(packet.payload_len()));
    assert!(ipv6::HEADER_LEN + packet.payload().len() <= data.len());
    let _ = (
        packet.traffic_class(),
        packet.flow_label(),
        packet.hop_limit(),
        ipv6::is_extension_header(packet.next_header()),
    );
    let repr = match Ipv6Repr::parse(&packet) {
        Ok(repr) => repr,
        Err(error) => {
            assert_eq!(error, WireError::Malformed);
            assert!(packet.src_addr().is_multicast());
            return;
        }
    };
    // The emitted header differs from the input's in traffic class and flow label only.
    let mut whole = vec![0u8; ipv6::HEADER_LEN];
    assert_eq!(repr.emit(&mut whole), Ok(ipv6::HEADER_LEN));
    assert_eq!(whole[4..ipv6::HEADER_LEN], data[4..ipv6::HEADER_LEN]);
    whole.extend_from_slice(packet.payload());
    let emitted = Ipv6Packet::new_checked(&whole[..]).expect("emitted IPv6 checks");
    assert_eq!(Ipv6Repr::parse(&emitted), Ok(repr));
    assert_eq!((emitted.traffic_class(), emitted.flow_label()), (0, 0));
    let addresses = Addresses::V6(repr.src, repr.dst);
    match repr.next_header {
        ipv6::NEXT_HEADER_ICMPV6 => icmpv6_packet_from(repr.src, repr.dst, packet.payload()),
        ipv6::NEXT_HEADER_TCP => tcp_segment_from(addresses, packet.payload()),
        _ => {}
    }
}

/// The same bytes as an ICMP message and as an ICMPv6 message (the `icmp_packet` target's
/// body): between two unicast addresses, and from the unspecified address to the solicited-node
/// group of the target's address, as duplicate address detection sends.
pub fn icmp_message(data: &[u8]) {
    icmp_packet(data);
    let client = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
    let server = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);
    icmpv6_packet_from(client, server, data);
    let target = Icmpv6Packet::new_unchecked(data)
        .target_addr()
        .unwrap_or(server);
    let group = ipv6::solicited_node_multicast(target);
    icmpv6_packet_from(Ipv6Addr::UNSPECIFIED, group, data);
}

/// An ICMPv6 message (RFC 4443, RFC 4861) from `src` to `dst`: as received, and again with
/// its checksum repaired, so that mutated bytes reach the neighbour discovery checks that
/// follow the checksum.
fn icmpv6_packet_from(src: Ipv6Addr, dst: Ipv6Addr, data: &[u8]) {
    let packet = match Icmpv6Packet::new_checked(data) {
        Ok(packet) => packet,
        Err(error) => {
            assert_eq!(error, WireError::Truncated);
            assert!(data.len() < icmpv6::ND_HEADER_LEN);
            return;
        }
    };
    let checksum_ok = packet.verify_checksum(src, dst);
    match Icmpv6Repr::parse(&packet, src, dst) {
        Ok(repr) => {
            assert!(checksum_ok);
            check_icmpv6_repr(src, dst, &packet, repr);
        }
        Err(WireError::Checksum) => assert!(!checksum_ok),
        Err(_) => {}
    }
    let mut repaired = data.to_vec();
    let mut view = Icmpv6Packet::new_unchecked(&mut repaired[..]);
    view.fill_checksum(src, dst);
    let packet = Icmpv6Packet::new_checked(&repaired[..]).expect("the same length");
    assert!(packet.verify_checksum(src, dst));
    let _ = (packet.identifier(), packet.sequence(), packet.checksum());
    match Icmpv6Repr::parse(&packet, src, dst) {
        Ok(repr) => check_icmpv6_repr(src, dst, &packet, repr),
        Err(WireError::Checksum) => panic!("a filled ICMPv6 checksum does not verify"),
        Err(_) => {}
    }
}

/// A parsed ICMPv6 message agrees with its view, and re-emits to bytes that parse back to it.
fn check_icmpv6_repr(src: Ipv6Addr, dst: Ipv6Addr, packet: &Icmpv6Packet<&[u8]>, repr: Icmpv6Repr) {
    let data: &[u8] = match repr {
        Icmpv6Repr::EchoRequest { .. } | Icmpv6Repr::EchoReply { .. } => {
            assert_eq!(packet.echo_data().len(), packet.into_inner().len() - 8);
            packet.echo_data()
        }
        Icmpv6Repr::NeighborSolicit {
            target,
            source_link_addr,
        } => {
            check_neighbor_discovery(packet, target, source_link_addr);
            assert!(!src.is_unspecified() || source_link_addr.is_none());
            &[]
        }
        Icmpv6Repr::NeighborAdvert {
            flags,
            target,
            target_link_addr,
        } => {
            check_neighbor_discovery(packet, target, target_link_addr);
            assert_eq!(flags.0 & !NeighborFlags::ALL.0, 0);
            assert!(!dst.is_multicast() || !flags.contains(NeighborFlags::SOLICITED));
            &[]
        }
    };
    let len = repr.buffer_len();
    let mut out = vec![0u8; len];
    assert_eq!(repr.emit(src, dst, &mut out, data), Ok(len));
    out.extend_from_slice(data);
    let emitted = Icmpv6Packet::new_checked(&out[..]).expect("emitted ICMPv6 checks");
    assert!(emitted.verify_checksum(src, dst));
    assert_eq!(Icmpv6Repr::parse(&emitted, src, dst), Ok(repr));
}

fn check_neighbor_discovery(
    packet: &Icmpv6Packet<&[u8]>,
    target: Ipv6Addr,
    link_addr: Option<EthernetAddress>,
) {
    assert_eq!(packet.target_addr(), Some(target));
    assert!(!target.is_multicast());
    assert_eq!(
        packet.nd_options().len() % 8,
        0,
        "options are whole 8-byte units"
    );
    if let Some(address) = link_addr {
        assert!(packet
            .nd_options()
            .chunks(8)
            .any(|option| option[1] == 1 && option[2..] == address.0));
    }
}

/// An ICMP message (RFC 792); only echo request and reply parse.
pub fn icmp_packet(data: &[u8]) {
    let Ok(packet) = IcmpPacket::new_checked(data) else {
        assert!(data.len() < icmp::HEADER_LEN);
        return;
    };
    let _ = (
        packet.msg_type(),
        packet.code(),
        packet.checksum(),
        packet.identifier(),
        packet.sequence(),
    );
    assert_eq!(packet.payload().len(), data.len() - icmp::HEADER_LEN);
    let _ = mpterm_wire::icmp_error::IcmpErrorRepr::parse_v4(&packet);
    let Ok(repr) = IcmpEchoRepr::parse(&packet) else {
        return;
    };
    assert!(packet.verify_checksum());
    let mut out = data.to_vec();
    assert_eq!(repr.emit(&mut out, packet.payload()), Ok(icmp::HEADER_LEN));
    let emitted = IcmpPacket::new_checked(&out[..]).expect("emitted ICMP checks");
    assert!(emitted.verify_checksum());
    assert_eq!(IcmpEchoRepr::parse(&emitted), Ok(repr));
}

/// A TCP segment (RFC 9293 section 3.1): the first 8 bytes are the IPv4 source and
/// destination for the checksum, the rest is the segment.
pub fn tcp_segment(data: &[u8]) {
    let mut reader = ByteReader::new(data);
    let src = Ipv4Addr::from(reader.u32());
    let dst = Ipv4Addr::from(reader.u32());
    let segment = reader.bytes(data.len());
    tcp_segment_from(Addresses::V4(src, dst), segment);
    // The IPv6 pseudo-header of IPv4-mapped addresses sums as IPv4's (two 0xffff words are
    // ones'-complement zero, RFC 1071): the v6 checksum paths against the v4 ones.
    if let Ok(view) = TcpSegment::new_checked(segment) {
        let mapped = Addresses::V6(src.to_ipv6_mapped(), dst.to_ipv6_mapped());
        assert_eq!(
            view.verify_checksum_v4(src, dst),
            mapped.verify(&view),
            "IPv4 and IPv4-mapped IPv6 checksums disagree"
        );
    }
}

/// The addresses a TCP segment's checksum covers, of either family.
#[derive(Debug, Clone, Copy)]
enum Addresses {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

impl Addresses {
    /// The segment's checksum verifies, the same with the payload's sum computed apart.
    fn verify(self, segment: &TcpSegment<&[u8]>) -> bool {
        let payload_sum = Checksum::of(segment.payload());
        let (direct, with_sum) = match self {
            Addresses::V4(src, dst) => (
                segment.verify_checksum_v4(src, dst),
                segment.verify_checksum_v4_with_payload_sum(src, dst, payload_sum),
            ),
            Addresses::V6(src, dst) => (
                segment.verify_checksum_v6(src, dst),
                segment.verify_checksum_v6_with_payload_sum(src, dst, payload_sum),
            ),
        };
        assert_eq!(direct, with_sum, "a cached payload sum changes the verdict");
        direct
    }

    /// Fills the checksum of `header`, directly and from the payload's sum, which must agree.
    fn fill(self, header: &mut [u8], payload: &[u8]) {
        let mut from_sum = header.to_vec();
        let sum = Checksum::of(payload);
        match self {
            Addresses::V4(src, dst) => {
                tcp::fill_checksum_v4(header, src, dst, payload);
                tcp::fill_checksum_v4_with_payload_sum(&mut from_sum, src, dst, payload.len(), sum);
            }
            Addresses::V6(src, dst) => {
                tcp::fill_checksum_v6(header, src, dst, payload);
                tcp::fill_checksum_v6_with_payload_sum(&mut from_sum, src, dst, payload.len(), sum);
            }
        }
        assert_eq!(
            header,
            &from_sum[..],
            "a cached payload sum changes the checksum"
        );
    }
}

fn tcp_segment_from(addresses: Addresses, data: &[u8]) {
    let segment = match TcpSegment::new_checked(data) {
        Ok(segment) => segment,
        Err(error) => {
            let declared_len = usize::from(data.get(12).copied().unwrap_or(0) >> 4) * 4;
            match error {
                WireError::Truncated => {
                    assert!(data.len() < tcp::HEADER_LEN || declared_len > data.len())
                }
                WireError::Malformed => assert!(declared_len < tcp::HEADER_LEN),
                error => panic!("TcpSegment::new_checked: unexpected {error:?}"),
            }
            return;
        }
    };
    let header_len = segment.header_len();
    assert!((tcp::HEADER_LEN..=60).contains(&header_len) && header_len <= data.len());
    assert_eq!(segment.options().len(), header_len - tcp::HEADER_LEN);
    assert_eq!(segment.payload().len(), data.len() - header_len);
    let _ = (
        segment.src_port(),
        segment.dst_port(),
        segment.seq_number(),
        segment.ack_number(),
        segment.flags(),
        segment.window_len(),
        segment.checksum(),
        segment.urgent_pointer(),
        addresses.verify(&segment),
    );

    // The checksum the crate writes verifies.
    if data.len() <= usize::from(u16::MAX) {
        let mut header = data[..header_len].to_vec();
        addresses.fill(&mut header, segment.payload());
        let mut whole = header;
        whole.extend_from_slice(segment.payload());
        let refilled = TcpSegment::new_checked(&whole[..]).expect("same header length");
        assert!(addresses.verify(&refilled));
    }

    let repr = match TcpRepr::parse(&segment) {
        Ok(repr) => repr,
        Err(error) => {
            assert_eq!(error, WireError::Malformed);
            assert!(TcpOptions::parse(segment.options()).is_err());
            return;
        }
    };
    assert_eq!(repr.src_port, segment.src_port());
    assert_eq!(repr.seq, segment.seq_number());
    assert_eq!(repr.flags, segment.flags());
    let mut out = [0u8; tcp::HEADER_LEN + tcp::MAX_OPTIONS_LEN + 4];
    match repr.emit(&mut out) {
        Ok(len) => {
            assert_eq!(len, repr.header_len());
            let emitted = TcpSegment::new_checked(&out[..len]).expect("emitted TCP checks");
            assert_eq!(emitted.header_len(), len);
            let again = TcpRepr::parse(&emitted).expect("an emitted header parses");
            let mut expected = repr;
            // Options of unknown kind are counted, not kept, so they are not re-emitted.
            expected.options.unknown_options = 0;
            assert_eq!(again, expected);
        }
        Err(error) => explain_options_refusal(&repr.options, error),
    }
}

/// Why parsed options may fail to emit: an unknown MPTCP subtype has no body to emit, and
/// options laid out compactly by the sender may no longer fit once laid out canonically.
fn explain_options_refusal(options: &TcpOptions<'_>, error: WireError) {
    match error {
        WireError::Unsupported => assert!(options
            .mptcp
            .iter()
            .any(|option| matches!(option, Some(MptcpOption::Unknown { .. })))),
        WireError::Malformed => assert!(
            options.encoded_len() > tcp::MAX_OPTIONS_LEN,
            "options of {} bytes refused: {options:?}",
            options.encoded_len()
        ),
        error => panic!("TcpOptions::emit: unexpected {error:?} for {options:?}"),
    }
}

/// The TCP option area (RFC 9293 section 3.2, RFC 7323, RFC 2018, RFC 8684), of any length.
pub fn tcp_options(data: &[u8]) {
    let Ok(options) = TcpOptions::parse(data) else {
        return;
    };
    let encoded_len = options.encoded_len();
    assert_eq!(encoded_len % 4, 0);
    let mut out = [0u8; 256];
    match options.emit(&mut out) {
        Ok(len) => {
            assert_eq!(len, encoded_len);
            let again = TcpOptions::parse(&out[..len]).expect("emitted options parse");
            let mut expected = options;
            expected.unknown_options = 0;
            assert_eq!(again, expected);
        }
        Err(error) => explain_options_refusal(&options, error),
    }
}

/// One MPTCP option (RFC 8684 section 3; RFC 6824 ADD_ADDR and MP_PRIO).
pub fn mptcp_option(data: &[u8]) {
    if let Ok(option) = MptcpOption::parse(data) {
        assert!(data.len() >= 3 && data[0] == mptcp::OPTION_KIND);
        let declared_len = usize::from(data[1]);
        assert!(declared_len >= 3 && declared_len <= data.len());
        let mut out = [0u8; 256];
        match option.emit(&mut out) {
            Ok(len) => {
                // Every subtype's length is exact, so the re-emitted option is as long as the
                // one received.
                assert_eq!(len, option.encoded_len());
                assert_eq!(len, declared_len, "{option:?}");
                assert_eq!(MptcpOption::parse(&out[..len]), Ok(option));
                assert_eq!(
                    option.emit(&mut out[..len - 1]),
                    Err(WireError::BufferTooSmall)
                );
            }
            Err(WireError::Unsupported) => {
                assert!(matches!(option, MptcpOption::Unknown { .. }));
            }
            Err(WireError::Malformed) => {
                assert!(
                    matches!(option, MptcpOption::RemoveAddr { address_ids } if address_ids.len() + 3 > mptcp::MAX_OPTION_LEN),
                    "{option:?}"
                );
            }
            Err(error) => panic!("MptcpOption::emit: unexpected {error:?} for {option:?}"),
        }
    }
    if let Ok(add) = parse_add_addr_v0(data) {
        let mut out = [0u8; 64];
        let len = add.emit_v0(&mut out).expect("a parsed v0 ADD_ADDR emits");
        assert_eq!(len, usize::from(data[1]));
        assert_eq!(parse_add_addr_v0(&out[..len]), Ok(add));
    }
}

/// The Internet checksum (RFC 1071) against a plain word-by-word reference, summed in one
/// piece, streamed in chunks, and combined from separately summed chunks. The first byte
/// says how many chunk boundaries follow (one byte each), the rest is the data.
pub fn checksum(data: &[u8]) {
    let mut reader = ByteReader::new(data);
    let boundary_count = usize::from(reader.u8() % 8);
    let mut boundaries: Vec<usize> = reader
        .bytes(boundary_count)
        .iter()
        .map(|&b| usize::from(b))
        .collect();
    let bytes = reader.bytes(data.len());
    boundaries.retain(|&at| at <= bytes.len());
    boundaries.sort_unstable();

    let expected = reference_checksum(bytes);
    assert_eq!(internet_checksum(bytes), expected);

    let mut streamed = Checksum::new();
    let mut combined = Checksum::new();
    let mut start = 0;
    for end in boundaries.into_iter().chain([bytes.len()]) {
        let chunk = &bytes[start..end];
        streamed.add_bytes(chunk);
        let mut part = Checksum::new();
        part.add_bytes(chunk);
        combined.add_checksum(part);
        start = end;
    }
    assert_eq!(streamed.finish(), expected, "streamed");
    assert_eq!(combined.finish(), expected, "combined");

    // The pseudo-headers are sums of their fields as laid out on the wire.
    let mut fields = ByteReader::new(bytes);
    let (src, dst, length) = (fields.u32(), fields.u32(), fields.u16());
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.to_be_bytes());
    pseudo.extend_from_slice(&dst.to_be_bytes());
    pseudo.extend_from_slice(&[0, ipv4::PROTOCOL_TCP]);
    pseudo.extend_from_slice(&length.to_be_bytes());
    let sum = pseudo_header_v4(src.into(), dst.into(), ipv4::PROTOCOL_TCP, length);
    assert_eq!(sum.finish(), reference_checksum(&pseudo));
    // The IPv6 pseudo-header (RFC 8200 section 8.1), from the first 37 bytes.
    let mut v6_fields = ByteReader::new(bytes);
    let mut address = || {
        let words = [
            v6_fields.u32(),
            v6_fields.u32(),
            v6_fields.u32(),
            v6_fields.u32(),
        ];
        Ipv6Addr::from_bits(
            words
                .iter()
                .fold(0, |bits, &word| bits << 32 | u128::from(word)),
        )
    };
    let (v6_src, v6_dst) = (address(), address());
    let (v6_length, next_header) = (v6_fields.u32(), v6_fields.u8());
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&v6_src.octets());
    pseudo.extend_from_slice(&v6_dst.octets());
    pseudo.extend_from_slice(&v6_length.to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, next_header]);
    assert_eq!(
        pseudo_header_v6(v6_src, v6_dst, next_header, v6_length).finish(),
        reference_checksum(&pseudo)
    );
    let (data_seq, subflow_seq, dll, field) = (
        u64::from(fields.u32()) << 32 | u64::from(fields.u32()),
        fields.u32(),
        fields.u16(),
        fields.u16(),
    );
    let mut dss = Vec::new();
    dss.extend_from_slice(&data_seq.to_be_bytes());
    dss.extend_from_slice(&subflow_seq.to_be_bytes());
    dss.extend_from_slice(&dll.to_be_bytes());
    dss.extend_from_slice(&field.to_be_bytes());
    assert_eq!(
        dss_pseudo_header(data_seq, subflow_seq, dll, field).finish(),
        reference_checksum(&dss)
    );
}

/// RFC 1071 section 4.1, the obvious way: big-endian 16-bit words, the odd byte padded with
/// zero, end-around carry, one's complement.
fn reference_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    for pair in bytes.chunks(2) {
        let high = u64::from(pair[0]) << 8;
        let low = pair.get(1).map_or(0, |&b| u64::from(b));
        sum += high | low;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_checksum_matches_rfc_1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (folded).
        assert_eq!(
            reference_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        assert_eq!(reference_checksum(&[]), 0xffff);
        assert_eq!(reference_checksum(&[0x12]), !0x1200);
    }

    #[test]
    fn targets_reject_nothing_on_empty_and_short_input() {
        for target in crate::TARGETS {
            for len in 0..4 {
                (target.run)(&[0x45; 4][..len]);
            }
        }
    }
}
