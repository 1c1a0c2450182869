//! Frames to the engine, built with `mpterm-wire` and correct checksums, and the checks on
//! every frame the engine sends.

use core::net::Ipv4Addr;
use core::ops::Range;

use bytes::Bytes;
use mpterm_engine::mptcp::expand_data_seq;
use mpterm_engine::{InterfaceConfig, Payload};
use mpterm_wire::arp::{ArpPacket, ArpRepr};
use mpterm_wire::checksum::dss_pseudo_header;
use mpterm_wire::ethernet::{self, EthernetAddress, EthernetFrame, EthernetRepr};
use mpterm_wire::icmp::{IcmpEchoKind, IcmpEchoRepr, IcmpPacket};
use mpterm_wire::ipv4::{self, Ipv4Packet, Ipv4Repr};
use mpterm_wire::mptcp::MptcpOption;
use mpterm_wire::tcp::{self, TcpOptions, TcpRepr, TcpSegment};

/// The payload type the engine runs on here: a reference-counted byte slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameBuffer(pub Bytes);

impl AsRef<[u8]> for FrameBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Payload for FrameBuffer {
    /// Total, as the trait asks: a range beyond the end is cut at the end.
    fn slice(&self, range: Range<usize>) -> Self {
        let end = range.end.min(self.0.len());
        FrameBuffer(self.0.slice(range.start.min(end)..end))
    }
}

/// Ethernet addressing of a frame to the engine.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
}

pub fn ethernet_frame(link: Link, ethertype: u16, body: &[u8]) -> FrameBuffer {
    let mut bytes = vec![0u8; ethernet::HEADER_LEN + body.len()];
    let header = EthernetRepr {
        src: EthernetAddress(link.src_mac),
        dst: EthernetAddress(link.dst_mac),
        ethertype,
    };
    header
        .emit(&mut bytes)
        .expect("room for the Ethernet header");
    bytes[ethernet::HEADER_LEN..].copy_from_slice(body);
    FrameBuffer(Bytes::from(bytes))
}

/// An IPv4 packet (no options, Don't Fragment) around `payload`.
pub fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload: &[u8]) -> Vec<u8> {
    let mut packet = vec![0u8; ipv4::HEADER_LEN + payload.len()];
    let header = Ipv4Repr {
        src,
        dst,
        protocol,
        payload_len: payload.len() as u16,
        ttl: 64,
    };
    header
        .emit(&mut packet)
        .expect("payloads here are far below 64 KiB");
    packet[ipv4::HEADER_LEN..].copy_from_slice(payload);
    packet
}

/// A TCP segment from `src` to `dst`: the header of `repr`, then `raw_options` appended to
/// its options (NOP-padded to a multiple of four, cut at 40 bytes of options), then
/// `payload`, with the checksum filled in.
pub fn tcp_segment(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    repr: &TcpRepr<'_>,
    raw_options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let mut repr = *repr;
    fit_options(&mut repr.options);
    let mut header = vec![0u8; tcp::HEADER_LEN + tcp::MAX_OPTIONS_LEN];
    let emitted = repr.emit(&mut header).expect("options were fitted");
    header.truncate(emitted);
    let room = tcp::HEADER_LEN + tcp::MAX_OPTIONS_LEN - emitted;
    header.extend_from_slice(&raw_options[..raw_options.len().min(room)]);
    while header.len() % 4 != 0 {
        header.push(tcp::option_kind::NOP);
    }
    let header_len = header.len();
    TcpSegment::new_unchecked(&mut header[..]).set_header_len(header_len);
    tcp::fill_checksum_v4(&mut header, src, dst, payload);
    header.extend_from_slice(payload);
    header
}

/// A raw TCP header (already at least 20 bytes) with its checksum filled in.
pub fn raw_tcp_segment(src: Ipv4Addr, dst: Ipv4Addr, header: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut segment = header.to_vec();
    tcp::fill_checksum_v4(&mut segment, src, dst, payload);
    segment.extend_from_slice(payload);
    segment
}

/// Drops SACK blocks, then timestamps, then the second MPTCP option until the options fit in
/// the 40 bytes of a TCP header.
fn fit_options(options: &mut TcpOptions<'_>) {
    while options.encoded_len() > tcp::MAX_OPTIONS_LEN && !options.sack_blocks.is_empty() {
        let mut fewer = options.sack_blocks;
        fewer.clear();
        for &(left, right) in &options.sack_blocks.as_slice()[1..] {
            fewer.push(left, right);
        }
        options.sack_blocks = fewer;
    }
    if options.encoded_len() > tcp::MAX_OPTIONS_LEN {
        options.timestamps = None;
    }
    if options.encoded_len() > tcp::MAX_OPTIONS_LEN {
        options.mptcp[1] = None;
    }
}

pub fn arp_frame(link: Link, arp: &ArpRepr) -> FrameBuffer {
    let mut body = [0u8; 46];
    arp.emit(&mut body).expect("room for ARP");
    ethernet_frame(link, ethernet::ETHERTYPE_ARP, &body)
}

/// What the checks learned about one frame the engine sent.
#[derive(Debug)]
pub enum Emitted<'a> {
    Arp(ArpRepr),
    IcmpEchoReply,
    Tcp {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        repr: TcpRepr<'a>,
        payload: &'a [u8],
    },
}

/// Checks one frame the engine sent on `interface`: it parses with `mpterm-wire` at every
/// layer, comes from the interface's own MAC and from one of the engine's addresses (the weak
/// host model: an answer leaves by the port its request came in on, from the address it was
/// sent to), carries valid IPv4, ICMP and
/// TCP checksums, fits the interface's MTU, and every complete DSS mapping on it verifies
/// (RFC 8684 section 3.3.1; checksums are always negotiated here). Panics otherwise.
pub fn check_emitted<'a>(
    interface: &InterfaceConfig,
    own_addresses: &[Ipv4Addr],
    frame: &'a [u8],
    client_idsn_reference: impl Fn(Ipv4Addr, Ipv4Addr, u16) -> Option<u64>,
) -> Emitted<'a> {
    let ethernet = EthernetFrame::new_checked(frame).expect("emitted frame: Ethernet header");
    assert_eq!(
        ethernet.src_addr(),
        EthernetAddress(interface.mac),
        "emitted frame: source MAC is not the interface's"
    );
    let body: &'a [u8] = &frame[ethernet::HEADER_LEN..];
    match ethernet.ethertype() {
        ethernet::ETHERTYPE_ARP => {
            let arp = ArpPacket::new_checked(body)
                .and_then(|packet| ArpRepr::parse(&packet))
                .expect("emitted ARP parses");
            assert_eq!(arp.sender_ip, interface.address, "emitted ARP: sender");
            assert_eq!(arp.sender_mac, EthernetAddress(interface.mac));
            Emitted::Arp(arp)
        }
        ethernet::ETHERTYPE_IPV4 => {
            assert!(
                frame.len() <= ethernet::HEADER_LEN + usize::from(interface.mtu),
                "emitted frame of {} bytes exceeds the MTU {}",
                frame.len(),
                interface.mtu
            );
            let packet = Ipv4Packet::new_checked(body).expect("emitted IPv4 checks");
            let ip = Ipv4Repr::parse(&packet).expect("emitted IPv4 parses (checksum, no fragment)");
            assert!(
                own_addresses.contains(&ip.src),
                "emitted IPv4: source address {} is not ours",
                ip.src
            );
            let total_len = usize::from(packet.total_len());
            assert!(
                total_len == body.len() || (frame.len() == 60 && total_len < body.len()),
                "emitted IPv4: total length {total_len} for {} bytes",
                body.len()
            );
            let payload: &'a [u8] = &body[packet.header_len()..usize::from(packet.total_len())];
            match ip.protocol {
                ipv4::PROTOCOL_ICMP => {
                    let icmp = IcmpPacket::new_checked(payload)
                        .and_then(|packet| IcmpEchoRepr::parse(&packet))
                        .expect("emitted ICMP parses with a valid checksum");
                    assert_eq!(icmp.kind, IcmpEchoKind::Reply);
                    Emitted::IcmpEchoReply
                }
                ipv4::PROTOCOL_TCP => {
                    let segment = TcpSegment::new_checked(payload).expect("emitted TCP checks");
                    assert!(
                        segment.verify_checksum_v4(ip.src, ip.dst),
                        "emitted TCP checksum is wrong"
                    );
                    let body: &'a [u8] = &payload[segment.header_len()..];
                    let repr = TcpRepr::parse(&segment).expect("emitted TCP options parse");
                    let reference = client_idsn_reference(ip.src, ip.dst, repr.dst_port);
                    check_dss_checksums(&repr, body, reference);
                    Emitted::Tcp {
                        src: ip.src,
                        dst: ip.dst,
                        repr,
                        payload: body,
                    }
                }
                protocol => panic!("the engine sent IP protocol {protocol}"),
            }
        }
        ethertype => panic!("the engine sent ethertype {ethertype:#06x}"),
    }
}

/// A mapping that covers exactly this segment's payload carries a DSS checksum, and it
/// verifies. `reference` is the receiver's expected data sequence number, for 32-bit DSNs.
fn check_dss_checksums(repr: &TcpRepr<'_>, payload: &[u8], reference: Option<u64>) {
    for option in repr.options.mptcp.iter().flatten() {
        let MptcpOption::Dss(dss) = option else {
            continue;
        };
        let Some(mapping) = dss.mapping else {
            continue;
        };
        if payload.is_empty() || usize::from(mapping.data_level_length) != payload.len() {
            continue;
        }
        let checksum = mapping
            .checksum
            .expect("a data mapping carries a DSS checksum when checksums are negotiated");
        let Some(reference) = reference else {
            continue;
        };
        let data_seq = expand_data_seq(mapping.data_seq, reference);
        let mut sum = dss_pseudo_header(
            data_seq,
            mapping.subflow_seq,
            mapping.data_level_length,
            checksum,
        );
        sum.add_bytes(payload);
        assert_eq!(sum.finish(), 0, "the engine's DSS checksum does not verify");
    }
}
