//! IPv6 fixed headers (RFC 8200, section 3) and the multicast addresses neighbour discovery
//! sends to (RFC 4291, section 2.7.1).
//!
//! Extension headers (RFC 8200, section 4) are not followed. A packet's `next_header` is
//! reported as it stands in the fixed header, and [`Ipv6Packet::payload`] is everything after
//! the 40 bytes, so a packet that carries an extension header (hop-by-hop options, routing,
//! fragment, destination options, ...) parses with that header's number as `next_header`:
//! the caller sees a next header that is neither [`NEXT_HEADER_TCP`] nor
//! [`NEXT_HEADER_ICMPV6`] and counts the drop ([`is_extension_header`] tells the two kinds of
//! drop apart). mpterm neither fragments nor reassembles, and a jumbogram (RFC 2675: payload
//! length 0 with a hop-by-hop header) is such a packet too.

use core::net::Ipv6Addr;

use crate::WireError;

/// The length of the fixed header, the only kind [`Ipv6Repr::emit`] writes.
pub const HEADER_LEN: usize = 40;

/// Next header value of TCP (RFC 9293).
pub const NEXT_HEADER_TCP: u8 = 6;
/// Next header value of ICMPv6 (RFC 4443).
pub const NEXT_HEADER_ICMPV6: u8 = 58;
/// Next header value of the hop-by-hop options header (RFC 8200, section 4.3).
pub const NEXT_HEADER_HOP_BY_HOP: u8 = 0;
/// Next header value of the fragment header (RFC 8200, section 4.5).
pub const NEXT_HEADER_FRAGMENT: u8 = 44;
/// Next header value meaning that nothing follows (RFC 8200, section 4.7).
pub const NEXT_HEADER_NONE: u8 = 59;

/// The hop limit every neighbour discovery message is sent with, and the only one a receiver
/// accepts: a node checks it to know the message was not forwarded by a router (RFC 4861,
/// sections 7.1.1 and 7.1.2). The check is the receiver's, on [`Ipv6Repr::hop_limit`].
pub const ND_HOP_LIMIT: u8 = 255;

/// The all-nodes link-local multicast address ff02::1 (RFC 4291, section 2.7.1).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// True for the next header values IANA lists as IPv6 extension headers (RFC 8200 section 4,
/// RFC 7045 section 2, the "IPv6 Extension Header Types" registry): hop-by-hop options (0),
/// routing (43), fragment (44), ESP (50), AH (51), destination options (60), mobility (135),
/// HIP (139), shim6 (140) and the two experimental values (253, 254).
pub fn is_extension_header(next_header: u8) -> bool {
    matches!(
        next_header,
        0 | 43 | 44 | 50 | 51 | 60 | 135 | 139 | 140 | 253 | 254
    )
}

/// The solicited-node multicast address of `address`, ff02::1:ffXX:XXXX with the low 24 bits
/// of `address` (RFC 4291, section 2.7.1): where a neighbour solicitation for `address` is
/// sent, and so a group a node must receive for each of its unicast addresses.
pub fn solicited_node_multicast(address: Ipv6Addr) -> Ipv6Addr {
    const PREFIX: u128 = 0xff02_0000_0000_0000_0000_0001_ff00_0000;
    Ipv6Addr::from_bits(PREFIX | (address.to_bits() & 0x00ff_ffff))
}

mod field {
    use core::ops::{Range, RangeFrom};

    /// Version (4 bits), traffic class (8 bits), flow label (20 bits).
    pub const VERSION_CLASS_FLOW: Range<usize> = 0..4;
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SOURCE: Range<usize> = 8..24;
    pub const DESTINATION: Range<usize> = 24..40;
    pub const PAYLOAD: RangeFrom<usize> = 40..;
}

/// The flow label bits of the first word.
const FLOW_LABEL_MASK: u32 = 0x000f_ffff;

/// A zero-copy view of an IPv6 packet. [`Ipv6Packet::new_checked`] validates the version and
/// the payload length once, after which no accessor panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps a buffer without checking it.
    pub fn new_unchecked(buffer: T) -> Ipv6Packet<T> {
        Ipv6Packet { buffer }
    }

    /// Wraps a buffer after [`Ipv6Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Ipv6Packet<T>, WireError> {
        let packet = Ipv6Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the 40-byte header is there (`Truncated`), version 6 (`Malformed`) and 40 plus
    /// the payload length within the buffer (`Truncated`). The buffer may be longer: Ethernet
    /// pads short frames to 60 bytes.
    pub fn check_len(&self) -> Result<(), WireError> {
        let buffer = self.buffer.as_ref();
        if buffer.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.version() != 6 {
            return Err(WireError::Malformed);
        }
        if HEADER_LEN + usize::from(self.payload_len()) > buffer.len() {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn first_word(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::VERSION_CLASS_FLOW];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    fn read_address(&self, range: core::ops::Range<usize>) -> Ipv6Addr {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&self.buffer.as_ref()[range]);
        Ipv6Addr::from(octets)
    }

    /// The version field (6 for every checked packet).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION_CLASS_FLOW.start] >> 4
    }

    /// The traffic class (DSCP and ECN, RFC 8200 section 7).
    pub fn traffic_class(&self) -> u8 {
        (self.first_word() >> 20) as u8
    }

    /// The 20-bit flow label (RFC 6437).
    pub fn flow_label(&self) -> u32 {
        self.first_word() & FLOW_LABEL_MASK
    }

    /// The length of everything after the fixed header, extension headers included.
    pub fn payload_len(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::PAYLOAD_LEN];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The type of the header after the fixed one (an upper layer or an extension header).
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// The hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// The source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        self.read_address(field::SOURCE)
    }

    /// The destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        self.read_address(field::DESTINATION)
    }

    /// The payload: exactly `payload_len` bytes after the fixed header, Ethernet padding
    /// excluded.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD][..usize::from(self.payload_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets version 6, the traffic class and the flow label (its low 20 bits).
    pub fn set_version_class_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let word = (6 << 28) | (u32::from(traffic_class) << 20) | (flow_label & FLOW_LABEL_MASK);
        self.buffer.as_mut()[field::VERSION_CLASS_FLOW].copy_from_slice(&word.to_be_bytes());
    }

    /// Sets the payload length.
    pub fn set_payload_len(&mut self, value: u16) {
        self.buffer.as_mut()[field::PAYLOAD_LEN].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the next header.
    pub fn set_next_header(&mut self, value: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = value;
    }

    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = value;
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, address: Ipv6Addr) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&address.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, address: Ipv6Addr) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&address.octets());
    }
}

/// The fields of an IPv6 fixed header that mpterm reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    /// The source address.
    pub src: Ipv6Addr,
    /// The destination address.
    pub dst: Ipv6Addr,
    /// The header after the fixed one (see the `NEXT_HEADER_*` constants). Extension headers
    /// are not followed: see the module documentation.
    pub next_header: u8,
    /// The length of the payload after the fixed header.
    pub payload_len: u16,
    /// The hop limit.
    pub hop_limit: u8,
}

impl Ipv6Repr {
    /// Parses a checked packet, whatever its next header. A multicast source address is
    /// `Malformed`: multicast addresses must not be used as source addresses (RFC 4291,
    /// section 2.7), and nothing may be answered to one.
    pub fn parse(packet: &Ipv6Packet<&[u8]>) -> Result<Ipv6Repr, WireError> {
        let src = packet.src_addr();
        if src.is_multicast() {
            return Err(WireError::Malformed);
        }
        Ok(Ipv6Repr {
            src,
            dst: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: packet.payload_len(),
            hop_limit: packet.hop_limit(),
        })
    }

    /// The number of bytes [`Ipv6Repr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 40-byte fixed header (traffic class 0, flow label 0: unlabelled, as RFC 6437
    /// section 2 allows) and returns its length. The payload follows it, written by the caller.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let header = buf.get_mut(..HEADER_LEN).ok_or(WireError::BufferTooSmall)?;
        let mut packet = Ipv6Packet::new_unchecked(header);
        packet.set_version_class_flow(0, 0);
        packet.set_payload_len(self.payload_len);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src);
        packet.set_dst_addr(self.dst);
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::bytes;
    use crate::capture_ipv6::{self as capture, CLIENT, SERVER};

    fn packet(fixture: &str) -> Vec<u8> {
        bytes(fixture)[14..].to_vec()
    }

    #[test]
    fn parses_captured_echo_request() {
        // 60 07 a1 17 00 40 3a 40, then 2001:2::1, 2001:2::2 and 64 bytes of ICMPv6.
        let bytes = packet(capture::ECHO_REQUEST);
        let view = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(view.version(), 6);
        assert_eq!(view.traffic_class(), 0);
        assert_eq!(view.flow_label(), 0x7a117);
        assert_eq!(view.payload_len(), 64);
        assert_eq!(view.next_header(), NEXT_HEADER_ICMPV6);
        assert_eq!(view.hop_limit(), 64);
        assert_eq!(view.src_addr(), CLIENT);
        assert_eq!(view.dst_addr(), SERVER);
        assert_eq!(view.payload(), &bytes[40..104]);
        assert_eq!(
            Ipv6Repr::parse(&view),
            Ok(Ipv6Repr {
                src: CLIENT,
                dst: SERVER,
                next_header: NEXT_HEADER_ICMPV6,
                payload_len: 64,
                hop_limit: 64,
            })
        );
    }

    #[test]
    fn emits_the_header_linux_sent_but_unlabelled() {
        // Linux's neighbour advertisement has flow label 0 and traffic class 0, as `emit`.
        let bytes = packet(capture::NEIGHBOR_ADVERT);
        let repr = Ipv6Repr {
            src: SERVER,
            dst: CLIENT,
            next_header: NEXT_HEADER_ICMPV6,
            payload_len: 32,
            hop_limit: ND_HOP_LIMIT,
        };
        let mut out = [0u8; 44];
        assert_eq!(repr.emit(&mut out), Ok(HEADER_LEN));
        assert_eq!(&out[..HEADER_LEN], &bytes[..HEADER_LEN]);
        assert_eq!(
            &out[HEADER_LEN..],
            &[0; 4],
            "nothing written past the header"
        );
        // A labelled packet differs in the flow label only.
        let labelled = packet(capture::TCP_SYN);
        let repr = Ipv6Repr::parse(&Ipv6Packet::new_checked(&labelled[..]).unwrap()).unwrap();
        repr.emit(&mut out).unwrap();
        assert_eq!(&out[..1], &[0x60]);
        assert_eq!(&out[1..4], &[0, 0, 0]);
        assert_eq!(&out[4..HEADER_LEN], &labelled[4..HEADER_LEN]);
    }

    #[test]
    fn round_trip_with_setters() {
        let repr = Ipv6Repr {
            src: Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 0x10),
            dst: Ipv6Addr::new(0x2001, 2, 0, 0xffff, 0, 0, 0, 1),
            next_header: NEXT_HEADER_TCP,
            payload_len: 1440,
            hop_limit: 1,
        };
        let mut out = vec![0u8; HEADER_LEN + 1440];
        repr.emit(&mut out).unwrap();
        let view = Ipv6Packet::new_checked(&out[..]).unwrap();
        assert_eq!(view.payload().len(), 1440);
        assert_eq!(Ipv6Repr::parse(&view), Ok(repr));

        let mut view = Ipv6Packet::new_unchecked(&mut out[..]);
        view.set_version_class_flow(0xb8, 0xfff_ffff);
        assert_eq!(view.version(), 6);
        assert_eq!(view.traffic_class(), 0xb8);
        assert_eq!(view.flow_label(), 0xf_ffff, "only 20 bits are kept");
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        // A neighbour solicitation is 78 bytes with Ethernet, more than the minimum; a TCP ACK
        // of 2 payload bytes less is padded, as is any buffer a driver hands over too long.
        let mut bytes = packet(capture::TCP_DATA);
        bytes.extend_from_slice(&[0xaa; 6]);
        let view = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(view.payload().len(), 42);
        assert_eq!(Ipv6Repr::parse(&view).unwrap().payload_len, 42);
    }

    #[test]
    fn extension_headers_are_reported_not_followed() {
        // An MLD report behind a hop-by-hop options header: next header 0, the payload starts
        // with the extension header (next header 58 inside it).
        let bytes = packet(capture::MLD_REPORT_HOP_BY_HOP);
        let view = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        let repr = Ipv6Repr::parse(&view).unwrap();
        assert_eq!(repr.next_header, NEXT_HEADER_HOP_BY_HOP);
        assert!(is_extension_header(repr.next_header));
        assert_eq!(view.payload()[0], NEXT_HEADER_ICMPV6);
        assert_eq!(view.payload().len(), 36);
        for upper in [NEXT_HEADER_TCP, NEXT_HEADER_ICMPV6, 17, NEXT_HEADER_NONE] {
            assert!(!is_extension_header(upper), "{upper}");
        }
        assert!(is_extension_header(NEXT_HEADER_FRAGMENT));
    }

    #[test]
    fn wrong_versions_are_malformed() {
        let original = packet(capture::TCP_SYN);
        for first_byte in [0x40, 0x45, 0x00, 0x70, 0xf0] {
            let mut bytes = original.clone();
            bytes[0] = first_byte | (bytes[0] & 0x0f);
            assert_eq!(
                Ipv6Packet::new_checked(&bytes[..]),
                Err(WireError::Malformed),
                "first byte {first_byte:#x}"
            );
        }
    }

    #[test]
    fn truncated_packets_are_rejected() {
        let bytes = packet(capture::NEIGHBOR_SOLICIT);
        for len in 0..bytes.len() {
            assert_eq!(
                Ipv6Packet::new_checked(&bytes[..len]),
                Err(WireError::Truncated),
                "{len} bytes"
            );
        }
        // A payload length one beyond the buffer.
        let mut longer = bytes.clone();
        longer[4..6].copy_from_slice(&33u16.to_be_bytes());
        assert_eq!(
            Ipv6Packet::new_checked(&longer[..]),
            Err(WireError::Truncated)
        );
        assert!(Ipv6Packet::new_checked(&bytes[..]).is_ok());
    }

    #[test]
    fn multicast_sources_are_malformed() {
        let mut bytes = packet(capture::ECHO_REQUEST);
        bytes[8..24].copy_from_slice(&ALL_NODES.octets());
        let view = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Ipv6Repr::parse(&view), Err(WireError::Malformed));
        // The unspecified source of duplicate address detection is not multicast.
        let dad = packet(capture::DAD_NEIGHBOR_SOLICIT);
        let repr = Ipv6Repr::parse(&Ipv6Packet::new_checked(&dad[..]).unwrap()).unwrap();
        assert_eq!(repr.src, Ipv6Addr::UNSPECIFIED);
    }

    #[test]
    fn emit_into_short_buffer_fails() {
        let repr = Ipv6Repr {
            src: CLIENT,
            dst: SERVER,
            next_header: NEXT_HEADER_TCP,
            payload_len: 0,
            hop_limit: 64,
        };
        assert_eq!(repr.emit(&mut [0; 39]), Err(WireError::BufferTooSmall));
        assert_eq!(repr.buffer_len(), HEADER_LEN);
    }

    #[test]
    fn solicited_node_multicast_of_captured_addresses() {
        // The captured solicitation for 2001:2::2 went to ff02::1:ff00:2; the DAD probe for
        // fe80::ff:fe00:1 to ff02::1:ff00:1.
        let solicit = packet(capture::NEIGHBOR_SOLICIT);
        let view = Ipv6Packet::new_checked(&solicit[..]).unwrap();
        assert_eq!(solicited_node_multicast(SERVER), view.dst_addr());
        let link_local = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 1);
        assert_eq!(
            solicited_node_multicast(link_local),
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 1)
        );
        // Only the low 24 bits are taken (RFC 4291 section 2.7.1's example range).
        let address = Ipv6Addr::new(0x2001, 2, 0, 0, 0xaaaa, 0xbbbb, 0xccdd, 0xeeff);
        assert_eq!(
            solicited_node_multicast(address),
            "ff02::1:ffdd:eeff".parse::<Ipv6Addr>().unwrap()
        );
    }
}
