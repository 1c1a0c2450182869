//! ICMP (RFC 792) and ICMPv6 (RFC 4443) error messages that quote a TCP segment: destination
//! unreachable (fragmentation needed among them, RFC 1191), packet too big (RFC 8201), time
//! exceeded and parameter problem. The quoted bytes are the start of a packet we sent: its IP
//! header and at least the first 8 bytes of its TCP header (ports and sequence number), which
//! is all a receiver may rely on (RFC 792; RFC 5927 section 4.1 on validating them).
//!
//! [`IcmpErrorRepr::parse_v4`] and [`IcmpErrorRepr::parse_v6`] take a checked message view and
//! verify its checksum; a quoted packet that is not TCP, or is shorter than its IP header plus
//! 8 bytes, is `Unsupported` or `Truncated`. IPv6 extension headers in the quote are not
//! followed (mpterm sends none).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::checksum::{pseudo_header_v6, Checksum};
use crate::icmp::IcmpPacket;
use crate::icmpv6::Icmpv6Packet;
use crate::ipv6::NEXT_HEADER_ICMPV6;
use crate::{SeqNumber, WireError};

/// ICMP destination unreachable (RFC 792).
pub const TYPE_DESTINATION_UNREACHABLE: u8 = 3;
/// ICMP time exceeded (RFC 792).
pub const TYPE_TIME_EXCEEDED: u8 = 11;
/// ICMP parameter problem (RFC 792).
pub const TYPE_PARAMETER_PROBLEM: u8 = 12;
/// The destination-unreachable code "fragmentation needed and DF set" (RFC 1191 section 4).
pub const CODE_FRAGMENTATION_NEEDED: u8 = 4;
/// ICMPv6 destination unreachable (RFC 4443 section 3.1).
pub const TYPE_V6_DESTINATION_UNREACHABLE: u8 = 1;
/// ICMPv6 packet too big (RFC 4443 section 3.2).
pub const TYPE_V6_PACKET_TOO_BIG: u8 = 2;
/// ICMPv6 time exceeded (RFC 4443 section 3.3).
pub const TYPE_V6_TIME_EXCEEDED: u8 = 3;
/// ICMPv6 parameter problem (RFC 4443 section 3.4).
pub const TYPE_V6_PARAMETER_PROBLEM: u8 = 4;

/// The ICMP error header: type, code, checksum and 4 bytes whose meaning depends on the type.
const ERROR_HEADER_LEN: usize = 8;
/// The TCP bytes every quote must hold: ports and sequence number.
const QUOTED_TCP_LEN: usize = 8;
const IPV4_MIN_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;
const PROTOCOL_TCP: u8 = 6;

/// True for the ICMP types that quote a packet of ours.
pub fn is_error_type_v4(msg_type: u8) -> bool {
    matches!(
        msg_type,
        TYPE_DESTINATION_UNREACHABLE | TYPE_TIME_EXCEEDED | TYPE_PARAMETER_PROBLEM
    )
}

/// True for the ICMPv6 types that quote a packet of ours (RFC 4443 section 3).
pub fn is_error_type_v6(msg_type: u8) -> bool {
    matches!(
        msg_type,
        TYPE_V6_DESTINATION_UNREACHABLE
            | TYPE_V6_PACKET_TOO_BIG
            | TYPE_V6_TIME_EXCEEDED
            | TYPE_V6_PARAMETER_PROBLEM
    )
}

/// What the quoted packet's headers say: the four-tuple as we sent it (source is ours) and the
/// sequence number of the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotedTcp {
    /// The quoted packet's source address: ours.
    pub src: IpAddr,
    /// The quoted packet's destination: our peer.
    pub dst: IpAddr,
    /// Our port.
    pub src_port: u16,
    /// The peer's port.
    pub dst_port: u16,
    /// The quoted segment's sequence number.
    pub seq: SeqNumber,
}

/// What the error reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpErrorKind {
    /// Fragmentation needed (ICMP type 3 code 4; `mtu` is the next-hop MTU, 0 from routers
    /// older than RFC 1191) or packet too big (ICMPv6 type 2).
    PacketTooBig {
        /// The MTU the reporting router can forward.
        mtu: u32,
    },
    /// Any other error (unreachable, time exceeded, parameter problem).
    Other {
        /// The message type.
        msg_type: u8,
        /// The message code.
        code: u8,
    },
}

/// An ICMP or ICMPv6 error about a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpErrorRepr {
    /// What the error says.
    pub kind: IcmpErrorKind,
    /// The segment it is about.
    pub quoted: QuotedTcp,
}

impl IcmpErrorRepr {
    /// Parses an ICMP (IPv4) error: a type of [`is_error_type_v4`] (others are
    /// `Unsupported`), a verified checksum (`Checksum`), and a quoted IPv4 packet carrying TCP.
    pub fn parse_v4(packet: &IcmpPacket<&[u8]>) -> Result<IcmpErrorRepr, WireError> {
        let bytes = packet.into_inner();
        let (msg_type, code) = (packet.msg_type(), packet.code());
        if !is_error_type_v4(msg_type) {
            return Err(WireError::Unsupported);
        }
        if !packet.verify_checksum() {
            return Err(WireError::Checksum);
        }
        let kind = if msg_type == TYPE_DESTINATION_UNREACHABLE && code == CODE_FRAGMENTATION_NEEDED
        {
            // RFC 1191 section 4: the low-order 16 bits of the unused field.
            IcmpErrorKind::PacketTooBig {
                mtu: u32::from(u16::from_be_bytes([bytes[6], bytes[7]])),
            }
        } else {
            IcmpErrorKind::Other { msg_type, code }
        };
        let quote = &bytes[ERROR_HEADER_LEN..];
        let first = *quote.first().ok_or(WireError::Truncated)?;
        if first >> 4 != 4 {
            return Err(WireError::Malformed);
        }
        let header_len = usize::from(first & 0x0f) * 4;
        if header_len < IPV4_MIN_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if quote.len() < header_len + QUOTED_TCP_LEN {
            return Err(WireError::Truncated);
        }
        if quote[9] != PROTOCOL_TCP {
            return Err(WireError::Unsupported);
        }
        let src = Ipv4Addr::new(quote[12], quote[13], quote[14], quote[15]);
        let dst = Ipv4Addr::new(quote[16], quote[17], quote[18], quote[19]);
        let quoted = quoted_tcp(IpAddr::V4(src), IpAddr::V4(dst), &quote[header_len..]);
        Ok(IcmpErrorRepr { kind, quoted })
    }

    /// Parses an ICMPv6 error from `src` to `dst` (the checksum covers them, RFC 4443 section
    /// 2.3): a type of [`is_error_type_v6`], a verified checksum, and a quoted IPv6 packet
    /// whose next header is TCP.
    pub fn parse_v6(
        packet: &Icmpv6Packet<&[u8]>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
    ) -> Result<IcmpErrorRepr, WireError> {
        let bytes = packet.into_inner();
        let (msg_type, code) = (packet.msg_type(), packet.code());
        if !is_error_type_v6(msg_type) {
            return Err(WireError::Unsupported);
        }
        if !packet.verify_checksum(src, dst) {
            return Err(WireError::Checksum);
        }
        let kind = if msg_type == TYPE_V6_PACKET_TOO_BIG {
            IcmpErrorKind::PacketTooBig {
                mtu: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            }
        } else {
            IcmpErrorKind::Other { msg_type, code }
        };
        let quote = &bytes[ERROR_HEADER_LEN..];
        if quote.len() < IPV6_HEADER_LEN + QUOTED_TCP_LEN {
            return Err(WireError::Truncated);
        }
        if quote[0] >> 4 != 6 {
            return Err(WireError::Malformed);
        }
        if quote[6] != PROTOCOL_TCP {
            return Err(WireError::Unsupported);
        }
        let address = |range: core::ops::Range<usize>| {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&quote[range]);
            IpAddr::V6(Ipv6Addr::from(octets))
        };
        let quoted = quoted_tcp(address(8..24), address(24..40), &quote[IPV6_HEADER_LEN..]);
        Ok(IcmpErrorRepr { kind, quoted })
    }

    /// The length [`IcmpErrorRepr::emit_v4`] and [`IcmpErrorRepr::emit_v6`] write: the error
    /// header, a minimal IP header and 8 bytes of TCP.
    pub fn buffer_len(&self) -> usize {
        let ip = match self.quoted.src {
            IpAddr::V4(_) => IPV4_MIN_HEADER_LEN,
            IpAddr::V6(_) => IPV6_HEADER_LEN,
        };
        ERROR_HEADER_LEN + ip + QUOTED_TCP_LEN
    }

    /// Writes the message as an IPv4 router would (the quote's total length and checksum
    /// fields are left zero; no receiver reads them). For tests and tools: mpterm sends no
    /// ICMP errors. `Malformed` unless the quoted addresses are IPv4.
    pub fn emit_v4(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (self.quoted.src, self.quoted.dst) else {
            return Err(WireError::Malformed);
        };
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        out.fill(0);
        match self.kind {
            IcmpErrorKind::PacketTooBig { mtu } => {
                out[0] = TYPE_DESTINATION_UNREACHABLE;
                out[1] = CODE_FRAGMENTATION_NEEDED;
                out[6..8].copy_from_slice(&(mtu.min(u32::from(u16::MAX)) as u16).to_be_bytes());
            }
            IcmpErrorKind::Other { msg_type, code } => {
                out[0] = msg_type;
                out[1] = code;
            }
        }
        let quote = &mut out[ERROR_HEADER_LEN..];
        quote[0] = 0x45;
        quote[8] = 64;
        quote[9] = PROTOCOL_TCP;
        quote[12..16].copy_from_slice(&src.octets());
        quote[16..20].copy_from_slice(&dst.octets());
        self.emit_quoted_tcp(&mut quote[IPV4_MIN_HEADER_LEN..]);
        let mut sum = Checksum::new();
        sum.add_bytes(out);
        out[2..4].copy_from_slice(&sum.finish().to_be_bytes());
        Ok(len)
    }

    /// Writes the message as an ICMPv6 error from `src` to `dst` (for the checksum). For tests
    /// and tools. `Malformed` unless the quoted addresses are IPv6.
    pub fn emit_v6(
        &self,
        buf: &mut [u8],
        src: Ipv6Addr,
        dst: Ipv6Addr,
    ) -> Result<usize, WireError> {
        let (IpAddr::V6(quoted_src), IpAddr::V6(quoted_dst)) = (self.quoted.src, self.quoted.dst)
        else {
            return Err(WireError::Malformed);
        };
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        out.fill(0);
        match self.kind {
            IcmpErrorKind::PacketTooBig { mtu } => {
                out[0] = TYPE_V6_PACKET_TOO_BIG;
                out[4..8].copy_from_slice(&mtu.to_be_bytes());
            }
            IcmpErrorKind::Other { msg_type, code } => {
                out[0] = msg_type;
                out[1] = code;
            }
        }
        let quote = &mut out[ERROR_HEADER_LEN..];
        quote[0] = 0x60;
        quote[5] = QUOTED_TCP_LEN as u8;
        quote[6] = PROTOCOL_TCP;
        quote[7] = 64;
        quote[8..24].copy_from_slice(&quoted_src.octets());
        quote[24..40].copy_from_slice(&quoted_dst.octets());
        self.emit_quoted_tcp(&mut quote[IPV6_HEADER_LEN..]);
        let mut sum = pseudo_header_v6(src, dst, NEXT_HEADER_ICMPV6, len as u32);
        sum.add_bytes(out);
        out[2..4].copy_from_slice(&sum.finish().to_be_bytes());
        Ok(len)
    }

    fn emit_quoted_tcp(&self, out: &mut [u8]) {
        out[0..2].copy_from_slice(&self.quoted.src_port.to_be_bytes());
        out[2..4].copy_from_slice(&self.quoted.dst_port.to_be_bytes());
        out[4..8].copy_from_slice(&self.quoted.seq.0.to_be_bytes());
    }
}

/// The ports and sequence number at the start of a quoted TCP header (at least 8 bytes).
fn quoted_tcp(src: IpAddr, dst: IpAddr, tcp: &[u8]) -> QuotedTcp {
    QuotedTcp {
        src,
        dst,
        src_port: u16::from_be_bytes([tcp[0], tcp[1]]),
        dst_port: u16::from_be_bytes([tcp[2], tcp[3]]),
        seq: SeqNumber(u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted_v4() -> QuotedTcp {
        QuotedTcp {
            src: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
            dst: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
            src_port: 5000,
            dst_port: 40000,
            seq: SeqNumber(0x0102_0304),
        }
    }

    #[test]
    fn fragmentation_needed_round_trips_with_the_bytes_of_rfc_1191() {
        let repr = IcmpErrorRepr {
            kind: IcmpErrorKind::PacketTooBig { mtu: 1400 },
            quoted: quoted_v4(),
        };
        let mut buf = [0u8; 64];
        let len = repr.emit_v4(&mut buf).unwrap();
        assert_eq!(len, 36);
        assert_eq!(&buf[..2], &[3, 4]);
        assert_eq!(&buf[6..8], &1400u16.to_be_bytes());
        assert_eq!(&buf[8 + 20 + 4..8 + 20 + 8], &[1, 2, 3, 4]);
        let packet = IcmpPacket::new_checked(&buf[..len]).unwrap();
        assert_eq!(IcmpErrorRepr::parse_v4(&packet), Ok(repr));
    }

    #[test]
    fn ipv4_errors_need_a_checksum_a_tcp_quote_and_eight_bytes_of_it() {
        let repr = IcmpErrorRepr {
            kind: IcmpErrorKind::Other {
                msg_type: TYPE_DESTINATION_UNREACHABLE,
                code: 3,
            },
            quoted: quoted_v4(),
        };
        let mut buf = [0u8; 64];
        let len = repr.emit_v4(&mut buf).unwrap();
        let parse =
            |bytes: &[u8]| IcmpErrorRepr::parse_v4(&IcmpPacket::new_checked(bytes).unwrap());
        assert_eq!(parse(&buf[..len]), Ok(repr));
        let mut corrupt = buf;
        corrupt[len - 1] ^= 1;
        assert_eq!(parse(&corrupt[..len]), Err(WireError::Checksum));
        // A quote cut inside the TCP bytes (checksum fixed up to match).
        let mut short = buf;
        let cut = len - 1;
        short[2..4].fill(0);
        let mut sum = Checksum::new();
        sum.add_bytes(&short[..cut]);
        short[2..4].copy_from_slice(&sum.finish().to_be_bytes());
        assert_eq!(parse(&short[..cut]), Err(WireError::Truncated));
        // Echo messages are not errors.
        let echo = [8u8, 0, 0xf7, 0xff, 0, 0, 0, 0];
        assert_eq!(parse(&echo), Err(WireError::Unsupported));
    }

    #[test]
    fn packet_too_big_round_trips_and_binds_the_checksum_to_the_addresses() {
        let router: Ipv6Addr = "2001:2:0:9::1".parse().unwrap();
        let ours: Ipv6Addr = "2001:2:0:1::2".parse().unwrap();
        let repr = IcmpErrorRepr {
            kind: IcmpErrorKind::PacketTooBig { mtu: 1280 },
            quoted: QuotedTcp {
                src: IpAddr::V6(ours),
                dst: IpAddr::V6("2001:2:0:1::1".parse().unwrap()),
                src_port: 5000,
                dst_port: 40000,
                seq: SeqNumber(7),
            },
        };
        let mut buf = [0u8; 64];
        let len = repr.emit_v6(&mut buf, router, ours).unwrap();
        assert_eq!(len, 56);
        assert_eq!(buf[0], TYPE_V6_PACKET_TOO_BIG);
        let packet = Icmpv6Packet::new_checked(&buf[..len]).unwrap();
        assert_eq!(IcmpErrorRepr::parse_v6(&packet, router, ours), Ok(repr));
        assert_eq!(
            IcmpErrorRepr::parse_v6(&packet, "2001:2:0:9::2".parse().unwrap(), ours),
            Err(WireError::Checksum)
        );
    }
}
