//! Fuzz targets for every parser of `mpterm-wire` that reads untrusted bytes.
//!
//! Each target checks, for any input:
//! - no panic in `new_checked`, `parse` or any accessor of a checked view;
//! - what `new_checked` accepts has the lengths the view promises;
//! - what `parse` accepts re-emits, and the emitted bytes parse back to the same
//!   representation (where the format is canonical, the emitted bytes are the input's);
//! - checksums written by the crate verify with the crate.
//!
//! (The pcap reader in `mpterm-wire`'s `capture.rs` is test-only code that reads committed
//! fixtures, never network input, so it has no target.)

use core::net::Ipv4Addr;

use mpterm_wire::arp::{self, ArpPacket, ArpRepr};
use mpterm_wire::checksum::{dss_pseudo_header, internet_checksum, pseudo_header_v4, Checksum};
use mpterm_wire::ethernet::{self, EthernetFrame, EthernetRepr};
use mpterm_wire::icmp::{self, IcmpEchoRepr, IcmpPacket};
use mpterm_wire::ipv4::{self, Ipv4Packet, Ipv4Repr};
use mpterm_wire::mptcp::{self, parse_add_addr_v0, MptcpOption};
use mpterm_wire::tcp::{self, TcpOptions, TcpRepr, TcpSegment};
use mpterm_wire::WireError;

use crate::byte_reader::ByteReader;

/// A whole received frame, dissected as the engine does: Ethernet, then ARP or IPv4, then
/// ICMP or TCP with its options.
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
                ipv4::PROTOCOL_TCP => tcp_segment_from(repr.src, repr.dst, packet.payload()),
                _ => {}
            }
        }
        Err(WireError::Checksum) => assert!(!checksum_ok),
        Err(WireError::Unsupported) => assert!(checksum_ok && packet.is_fragment()),
        Err(error) => panic!("Ipv4Repr::parse: unexpected {error:?}"),
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
    tcp_segment_from(src, dst, reader.bytes(data.len()));
}

fn tcp_segment_from(src: Ipv4Addr, dst: Ipv4Addr, data: &[u8]) {
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
        segment.verify_checksum_v4(src, dst),
    );

    // The checksum the crate writes verifies.
    if data.len() <= usize::from(u16::MAX) {
        let mut header = data[..header_len].to_vec();
        tcp::fill_checksum_v4(&mut header, src, dst, segment.payload());
        let mut whole = header;
        whole.extend_from_slice(segment.payload());
        let refilled = TcpSegment::new_checked(&whole[..]).expect("same header length");
        assert!(refilled.verify_checksum_v4(src, dst));
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
