//! The client's outgoing frames: Ethernet, IPv4 and TCP headers in front of a payload handle,
//! and ARP.

use core::net::Ipv4Addr;

use mpterm_wire::arp::ArpRepr;
use mpterm_wire::checksum::{self, Checksum};
use mpterm_wire::ethernet::{self, EthernetAddress, EthernetRepr};
use mpterm_wire::ipv4::{self, Ipv4Repr};
use mpterm_wire::tcp::TcpRepr;

use crate::{HeaderBytes, Payload, Transmit};

const DEFAULT_TTL: u8 = 64;
const IPV4_HEADER_END: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN;
/// Where the checksum field sits in a TCP header (RFC 9293 section 3.1).
const TCP_CHECKSUM_OFFSET: usize = 16;
/// Ethernet frames are at least 60 bytes without the FCS.
const MIN_FRAME_LEN: usize = 60;

/// The frame of one TCP segment from `src` to `dst`, its destination MAC still zero (filled in
/// once the next hop is known). The TCP checksum (RFC 9293 section 3.1) is the pseudo-header
/// and header summed here plus `payload_sum`, the payload's sum computed once for both this
/// and the DSS checksum: the header's length is a multiple of four, so the payload starts at
/// an even offset and the sums compose. `None` only if the options do not fit, a bug of the
/// caller and never a consequence of input.
pub(crate) fn tcp_frame<P: Payload>(
    src_mac: EthernetAddress,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    repr: &TcpRepr<'_>,
    payload: Option<P>,
    payload_sum: Checksum,
) -> Option<Transmit<P>> {
    let payload = payload.filter(|p| !p.is_empty());
    let payload_len = payload.as_ref().map_or(0, |p| p.len());
    let tcp_len = repr.header_len();
    let segment_len = u16::try_from(tcp_len + payload_len).ok()?;
    let mut header = HeaderBytes::new();
    let buffer = header.buffer_mut();
    let ethernet = EthernetRepr {
        src: src_mac,
        dst: EthernetAddress([0; 6]),
        ethertype: ethernet::ETHERTYPE_IPV4,
    };
    let ip = Ipv4Repr {
        src,
        dst,
        protocol: ipv4::PROTOCOL_TCP,
        payload_len: segment_len,
        ttl: DEFAULT_TTL,
    };
    ethernet.emit(&mut buffer[..]).ok()?;
    ip.emit(&mut buffer[ethernet::HEADER_LEN..]).ok()?;
    repr.emit(&mut buffer[IPV4_HEADER_END..]).ok()?;
    let tcp_header = &mut buffer[IPV4_HEADER_END..IPV4_HEADER_END + tcp_len];
    let mut sum = checksum::pseudo_header_v4(src, dst, ipv4::PROTOCOL_TCP, segment_len);
    sum.add_bytes(tcp_header);
    sum.add_checksum(payload_sum);
    tcp_header[TCP_CHECKSUM_OFFSET..TCP_CHECKSUM_OFFSET + 2]
        .copy_from_slice(&sum.finish().to_be_bytes());
    header.set_len(IPV4_HEADER_END + tcp_len);
    Some(Transmit {
        interface: 0,
        header,
        payload,
    })
}

/// An ARP frame (RFC 826), padded to the Ethernet minimum.
pub(crate) fn arp_frame<P>(
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    arp: &ArpRepr,
) -> Option<Transmit<P>> {
    let mut header = HeaderBytes::new();
    let buffer = header.buffer_mut();
    let ethernet = EthernetRepr {
        src: src_mac,
        dst: dst_mac,
        ethertype: ethernet::ETHERTYPE_ARP,
    };
    let ethernet_len = ethernet.emit(&mut buffer[..]).ok()?;
    let arp_len = arp.emit(&mut buffer[ethernet_len..]).ok()?;
    header.set_len((ethernet_len + arp_len).max(MIN_FRAME_LEN));
    Some(Transmit {
        interface: 0,
        header,
        payload: None,
    })
}
