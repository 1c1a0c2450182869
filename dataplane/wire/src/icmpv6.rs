//! ICMPv6 (RFC 4443): echo request and reply (section 4), and the two neighbour discovery
//! messages that resolve addresses (RFC 4861, sections 4.3 and 4.4) with their link-layer
//! address options (section 4.6.1, Ethernet form of RFC 2464 section 6). These are the only
//! ICMPv6 messages mpterm answers.
//!
//! The checksum covers the IPv6 pseudo-header (RFC 8200 section 8.1, RFC 4443 section 2.3), so
//! [`Icmpv6Repr::parse`] and [`Icmpv6Repr::emit`] take the packet's addresses. The hop limit
//! 255 that neighbour discovery insists on is in the IPv6 header, not here: the receiver checks
//! [`crate::ipv6::Ipv6Repr::hop_limit`] against [`crate::ipv6::ND_HOP_LIMIT`].

use core::net::Ipv6Addr;

use crate::checksum::pseudo_header_v6;
use crate::ethernet::EthernetAddress;
use crate::ipv6::{solicited_node_multicast, NEXT_HEADER_ICMPV6};
use crate::WireError;

/// The length every ICMPv6 message has at least: type, code, checksum and a 32-bit field whose
/// meaning depends on the type (identifier and sequence number of an echo).
pub const HEADER_LEN: usize = 8;
/// The length of a neighbour solicitation or advertisement without options: the header and
/// the target address.
pub const ND_HEADER_LEN: usize = 24;
/// The length of an Ethernet link-layer address option: type, length 1 (eight bytes) and
/// six address bytes (RFC 2464, section 6).
pub const LINK_ADDR_OPTION_LEN: usize = 8;

/// ICMPv6 type of an echo request.
pub const TYPE_ECHO_REQUEST: u8 = 128;
/// ICMPv6 type of an echo reply.
pub const TYPE_ECHO_REPLY: u8 = 129;
/// ICMPv6 type of a neighbour solicitation.
pub const TYPE_NEIGHBOR_SOLICIT: u8 = 135;
/// ICMPv6 type of a neighbour advertisement.
pub const TYPE_NEIGHBOR_ADVERT: u8 = 136;

/// Neighbour discovery option type of the source link-layer address (RFC 4861, section 4.6.1).
pub const OPTION_SOURCE_LINK_ADDR: u8 = 1;
/// Neighbour discovery option type of the target link-layer address (RFC 4861, section 4.6.1).
pub const OPTION_TARGET_LINK_ADDR: u8 = 2;

mod field {
    use core::ops::{Range, RangeFrom};

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const IDENTIFIER: Range<usize> = 4..6;
    pub const SEQUENCE: Range<usize> = 6..8;
    pub const ECHO_DATA: RangeFrom<usize> = 8..;
    /// The R, S and O flags of an advertisement, then reserved bits.
    pub const ND_FLAGS: usize = 4;
    /// The flags (advertisement) or reserved bits (solicitation) and the rest of the word.
    pub const ND_RESERVED: Range<usize> = 4..8;
    pub const ND_TARGET: Range<usize> = 8..24;
    pub const ND_OPTIONS: RangeFrom<usize> = 24..;
}

/// A zero-copy view of an ICMPv6 message. [`Icmpv6Packet::new_checked`] guarantees the 8-byte
/// header, and the 24 bytes of a neighbour solicitation or advertisement for those types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Wraps a buffer without checking it.
    pub fn new_unchecked(buffer: T) -> Icmpv6Packet<T> {
        Icmpv6Packet { buffer }
    }

    /// Wraps a buffer after [`Icmpv6Packet::check_len`]. The buffer must be exactly the
    /// ICMPv6 message (the IPv6 payload), because the checksum covers all of it.
    pub fn new_checked(buffer: T) -> Result<Icmpv6Packet<T>, WireError> {
        let packet = Icmpv6Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the header is inside the buffer, and for a neighbour solicitation or
    /// advertisement the target address too (RFC 4861 sections 7.1.1 and 7.1.2: "ICMP length
    /// ... is 24 or more octets").
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if is_neighbor_discovery(self.msg_type()) && len < ND_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn read_u16(&self, range: core::ops::Range<usize>) -> u16 {
        let bytes = &self.buffer.as_ref()[range];
        u16::from_be_bytes([bytes[0], bytes[1]])
    }

    /// The message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// The message code.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    /// The echo identifier (bytes 4 and 5 of any message).
    pub fn identifier(&self) -> u16 {
        self.read_u16(field::IDENTIFIER)
    }

    /// The echo sequence number (bytes 6 and 7 of any message).
    pub fn sequence(&self) -> u16 {
        self.read_u16(field::SEQUENCE)
    }

    /// The echo data after the header.
    pub fn echo_data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::ECHO_DATA]
    }

    /// The flags of a neighbour advertisement (byte 4 of any message, reserved bits masked
    /// off: RFC 4861 section 4.4 has receivers ignore them).
    pub fn neighbor_flags(&self) -> NeighborFlags {
        NeighborFlags(self.buffer.as_ref()[field::ND_FLAGS] & NeighborFlags::ALL.0)
    }

    /// The target address of a neighbour solicitation or advertisement; `None` for a message
    /// shorter than 24 bytes (which no checked solicitation or advertisement is).
    pub fn target_addr(&self) -> Option<Ipv6Addr> {
        let bytes: [u8; 16] = self
            .buffer
            .as_ref()
            .get(field::ND_TARGET)?
            .try_into()
            .ok()?;
        Some(Ipv6Addr::from(bytes))
    }

    /// The option area of a neighbour solicitation or advertisement, after the target
    /// address (empty for a shorter message).
    pub fn nd_options(&self) -> &[u8] {
        self.buffer.as_ref().get(field::ND_OPTIONS).unwrap_or(&[])
    }

    /// True when the checksum over the IPv6 pseudo-header and the whole message verifies
    /// (RFC 4443, section 2.3). A message longer than 2^32 - 1 bytes never verifies.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let bytes = self.buffer.as_ref();
        let Ok(length) = u32::try_from(bytes.len()) else {
            return false;
        };
        let mut sum = pseudo_header_v6(src, dst, NEXT_HEADER_ICMPV6, length);
        sum.add_bytes(bytes);
        sum.finish() == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Computes the checksum over the pseudo-header and the whole buffer and stores it. A
    /// buffer shorter than the header is left unchanged.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let bytes = self.buffer.as_mut();
        if bytes.len() < HEADER_LEN {
            return;
        }
        bytes[field::CHECKSUM].copy_from_slice(&[0, 0]);
        let length = bytes.len() as u32;
        let mut sum = pseudo_header_v6(src, dst, NEXT_HEADER_ICMPV6, length);
        sum.add_bytes(bytes);
        bytes[field::CHECKSUM].copy_from_slice(&sum.finish().to_be_bytes());
    }
}

fn is_neighbor_discovery(msg_type: u8) -> bool {
    matches!(msg_type, TYPE_NEIGHBOR_SOLICIT | TYPE_NEIGHBOR_ADVERT)
}

/// The flags of a neighbour advertisement (RFC 4861, section 4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NeighborFlags(pub u8);

impl NeighborFlags {
    /// R: the sender is a router.
    pub const ROUTER: NeighborFlags = NeighborFlags(0x80);
    /// S: the advertisement answers a solicitation sent to the target's unicast address or
    /// its solicited-node group.
    pub const SOLICITED: NeighborFlags = NeighborFlags(0x40);
    /// O: the advertisement overrides a cached link-layer address.
    pub const OVERRIDE: NeighborFlags = NeighborFlags(0x20);
    /// R, S and O: every flag the message defines.
    pub const ALL: NeighborFlags = NeighborFlags(0xe0);

    /// True when every flag of `other` is set.
    pub fn contains(self, other: NeighborFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for NeighborFlags {
    type Output = NeighborFlags;
    fn bitor(self, other: NeighborFlags) -> NeighborFlags {
        NeighborFlags(self.0 | other.0)
    }
}

/// An ICMPv6 message mpterm reads or writes. Echo data is carried separately, as in
/// [`crate::icmp::IcmpEchoRepr`], so that a reply reuses the request's bytes without copying
/// them; a neighbour discovery message is written whole, its link-layer option included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6Repr {
    /// Type 128 (RFC 4443, section 4.1).
    EchoRequest {
        /// The identifier, echoed unchanged in the reply.
        identifier: u16,
        /// The sequence number, echoed unchanged in the reply.
        sequence: u16,
    },
    /// Type 129 (RFC 4443, section 4.2).
    EchoReply {
        /// The request's identifier.
        identifier: u16,
        /// The request's sequence number.
        sequence: u16,
    },
    /// Type 135 (RFC 4861, section 4.3).
    NeighborSolicit {
        /// The address whose link-layer address is asked for.
        target: Ipv6Addr,
        /// The sender's link-layer address (absent in duplicate address detection, from the
        /// unspecified address).
        source_link_addr: Option<EthernetAddress>,
    },
    /// Type 136 (RFC 4861, section 4.4).
    NeighborAdvert {
        /// R, S and O.
        flags: NeighborFlags,
        /// The address whose link-layer address this announces.
        target: Ipv6Addr,
        /// The target's link-layer address.
        target_link_addr: Option<EthernetAddress>,
    },
}

impl Icmpv6Repr {
    /// Parses a checked message carried from `src` to `dst`.
    ///
    /// - Echo request and reply, neighbour solicitation and advertisement with code 0 only;
    ///   other types and codes are `Unsupported` (RFC 4861 sections 7.1.1 and 7.1.2 want ND
    ///   messages with another code discarded, which the caller does for `Unsupported`).
    /// - The checksum must verify (`Checksum`).
    /// - The rest of RFC 4861's validity checks on a solicitation or advertisement, except
    ///   the hop limit (the caller's), are `Malformed`: a multicast target; an option of
    ///   length zero or running past the message; a link-layer address option that is not the
    ///   8-byte Ethernet form; a solicitation from the unspecified address that carries a
    ///   source link-layer address or is not sent to the target's solicited-node group; an
    ///   advertisement to a multicast address with the S flag set. Options of other types are
    ///   skipped (section 4.6: "silently ignore any options they do not recognize"), and of a
    ///   repeated link-layer address option the first counts.
    pub fn parse(
        packet: &Icmpv6Packet<&[u8]>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
    ) -> Result<Icmpv6Repr, WireError> {
        match (packet.msg_type(), packet.code()) {
            (
                TYPE_ECHO_REQUEST | TYPE_ECHO_REPLY | TYPE_NEIGHBOR_SOLICIT | TYPE_NEIGHBOR_ADVERT,
                0,
            ) => {}
            _ => return Err(WireError::Unsupported),
        }
        if !packet.verify_checksum(src, dst) {
            return Err(WireError::Checksum);
        }
        let identifier = packet.identifier();
        let sequence = packet.sequence();
        match packet.msg_type() {
            TYPE_ECHO_REQUEST => Ok(Icmpv6Repr::EchoRequest {
                identifier,
                sequence,
            }),
            TYPE_ECHO_REPLY => Ok(Icmpv6Repr::EchoReply {
                identifier,
                sequence,
            }),
            TYPE_NEIGHBOR_SOLICIT => {
                let target = nd_target(packet)?;
                let source_link_addr =
                    link_addr_option(packet.nd_options(), OPTION_SOURCE_LINK_ADDR)?;
                if src.is_unspecified()
                    && (source_link_addr.is_some() || dst != solicited_node_multicast(target))
                {
                    return Err(WireError::Malformed);
                }
                Ok(Icmpv6Repr::NeighborSolicit {
                    target,
                    source_link_addr,
                })
            }
            _ => {
                let target = nd_target(packet)?;
                let target_link_addr =
                    link_addr_option(packet.nd_options(), OPTION_TARGET_LINK_ADDR)?;
                let flags = packet.neighbor_flags();
                if dst.is_multicast() && flags.contains(NeighborFlags::SOLICITED) {
                    return Err(WireError::Malformed);
                }
                Ok(Icmpv6Repr::NeighborAdvert {
                    flags,
                    target,
                    target_link_addr,
                })
            }
        }
    }

    /// The number of bytes [`Icmpv6Repr::emit`] writes: 8 for an echo header, 24 for a
    /// solicitation or advertisement and 8 more with a link-layer address option.
    pub fn buffer_len(&self) -> usize {
        match self {
            Icmpv6Repr::EchoRequest { .. } | Icmpv6Repr::EchoReply { .. } => HEADER_LEN,
            Icmpv6Repr::NeighborSolicit {
                source_link_addr: link_addr,
                ..
            }
            | Icmpv6Repr::NeighborAdvert {
                target_link_addr: link_addr,
                ..
            } => ND_HEADER_LEN + link_addr.map_or(0, |_| LINK_ADDR_OPTION_LEN),
        }
    }

    /// Writes the message at the start of `buf`, with a checksum over the pseudo-header of
    /// `src` and `dst`, the message and `payload`, and returns the length written. `payload`
    /// is what the caller transmits right after the message: the echo data (a reply's is the
    /// request's), empty for neighbour discovery. A message longer than an IPv6 payload can be
    /// (65535 bytes; mpterm sends no jumbograms) is `Malformed`.
    pub fn emit(
        &self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        buf: &mut [u8],
        payload: &[u8],
    ) -> Result<usize, WireError> {
        let len = self.buffer_len();
        let total_len = u16::try_from(len + payload.len()).map_err(|_| WireError::Malformed)?;
        let out = buf.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        out[field::CODE] = 0;
        out[field::CHECKSUM].copy_from_slice(&[0, 0]);
        match *self {
            Icmpv6Repr::EchoRequest {
                identifier,
                sequence,
            }
            | Icmpv6Repr::EchoReply {
                identifier,
                sequence,
            } => {
                out[field::TYPE] = if matches!(self, Icmpv6Repr::EchoRequest { .. }) {
                    TYPE_ECHO_REQUEST
                } else {
                    TYPE_ECHO_REPLY
                };
                out[field::IDENTIFIER].copy_from_slice(&identifier.to_be_bytes());
                out[field::SEQUENCE].copy_from_slice(&sequence.to_be_bytes());
            }
            Icmpv6Repr::NeighborSolicit {
                target,
                source_link_addr,
            } => {
                out[field::TYPE] = TYPE_NEIGHBOR_SOLICIT;
                out[field::ND_RESERVED].copy_from_slice(&[0; 4]);
                out[field::ND_TARGET].copy_from_slice(&target.octets());
                emit_link_addr_option(out, OPTION_SOURCE_LINK_ADDR, source_link_addr);
            }
            Icmpv6Repr::NeighborAdvert {
                flags,
                target,
                target_link_addr,
            } => {
                out[field::TYPE] = TYPE_NEIGHBOR_ADVERT;
                out[field::ND_RESERVED].copy_from_slice(&[flags.0 & NeighborFlags::ALL.0, 0, 0, 0]);
                out[field::ND_TARGET].copy_from_slice(&target.octets());
                emit_link_addr_option(out, OPTION_TARGET_LINK_ADDR, target_link_addr);
            }
        }
        let mut sum = pseudo_header_v6(src, dst, NEXT_HEADER_ICMPV6, u32::from(total_len));
        sum.add_bytes(out);
        sum.add_bytes(payload);
        out[field::CHECKSUM].copy_from_slice(&sum.finish().to_be_bytes());
        Ok(len)
    }
}

/// The target of a checked solicitation or advertisement; a multicast target is `Malformed`
/// (RFC 4861 sections 7.1.1 and 7.1.2).
fn nd_target(packet: &Icmpv6Packet<&[u8]>) -> Result<Ipv6Addr, WireError> {
    let target = packet.target_addr().ok_or(WireError::Truncated)?;
    if target.is_multicast() {
        return Err(WireError::Malformed);
    }
    Ok(target)
}

/// Walks a neighbour discovery option area (RFC 4861, section 4.6): every option must have a
/// non-zero length inside the area; the first option of type `wanted` must be an Ethernet
/// link-layer address, whose address is returned.
fn link_addr_option(mut options: &[u8], wanted: u8) -> Result<Option<EthernetAddress>, WireError> {
    let mut found = None;
    while !options.is_empty() {
        let [kind, units, ..] = *options else {
            return Err(WireError::Malformed);
        };
        let len = usize::from(units) * 8;
        if len == 0 || len > options.len() {
            return Err(WireError::Malformed);
        }
        if kind == wanted && found.is_none() {
            if len != LINK_ADDR_OPTION_LEN {
                return Err(WireError::Malformed);
            }
            found = EthernetAddress::from_bytes(&options[2..len]);
        }
        options = &options[len..];
    }
    Ok(found)
}

/// Writes a link-layer address option after the target address, when there is an address.
fn emit_link_addr_option(out: &mut [u8], kind: u8, address: Option<EthernetAddress>) {
    if let Some(address) = address {
        let option = &mut out[ND_HEADER_LEN..ND_HEADER_LEN + LINK_ADDR_OPTION_LEN];
        option[0] = kind;
        option[1] = (LINK_ADDR_OPTION_LEN / 8) as u8;
        option[2..].copy_from_slice(address.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::bytes;
    use crate::capture_ipv6::{self as capture, ipv6_payload, CLIENT, SERVER};
    use crate::ipv6::ALL_NODES;

    const CLIENT_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const SERVER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

    /// A fixture's ICMPv6 message with the packet's source and destination.
    fn message(fixture: &str) -> (Ipv6Addr, Ipv6Addr, Vec<u8>) {
        let frame = bytes(fixture);
        let (src, dst, payload) = ipv6_payload(&frame);
        (src, dst, payload.to_vec())
    }

    fn parse(src: Ipv6Addr, dst: Ipv6Addr, bytes: &[u8]) -> Result<Icmpv6Repr, WireError> {
        Icmpv6Repr::parse(&Icmpv6Packet::new_checked(bytes)?, src, dst)
    }

    /// Re-computes the checksum after a test changed a byte, so that the check under test is
    /// the one that fails.
    fn refill(src: Ipv6Addr, dst: Ipv6Addr, bytes: &mut [u8]) {
        Icmpv6Packet::new_unchecked(bytes).fill_checksum(src, dst);
    }

    #[test]
    fn parses_captured_echo_request() {
        // 80 00 90 92 6a 4b 00 01 and 56 bytes of ping data.
        let (src, dst, bytes) = message(capture::ECHO_REQUEST);
        let view = Icmpv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(view.msg_type(), TYPE_ECHO_REQUEST);
        assert_eq!(view.code(), 0);
        assert_eq!(view.checksum(), 0x9092);
        assert!(view.verify_checksum(src, dst));
        assert!(!view.verify_checksum(dst, Ipv6Addr::LOCALHOST));
        assert_eq!(view.echo_data().len(), 56);
        assert_eq!(
            Icmpv6Repr::parse(&view, src, dst),
            Ok(Icmpv6Repr::EchoRequest {
                identifier: 27211,
                sequence: 1,
            })
        );
    }

    #[test]
    fn emits_the_reply_linux_sent() {
        let (_, _, request) = message(capture::ECHO_REQUEST);
        let (src, dst, reply) = message(capture::ECHO_REPLY);
        assert_eq!((src, dst), (SERVER, CLIENT));
        let repr = Icmpv6Repr::EchoReply {
            identifier: 27211,
            sequence: 1,
        };
        assert_eq!(parse(src, dst, &reply), Ok(repr));
        let mut out = [0u8; 10];
        assert_eq!(repr.emit(src, dst, &mut out, &request[8..]), Ok(HEADER_LEN));
        // 81 00 8f 92 6a 4b 00 01: Linux's header byte for byte, checksum included.
        assert_eq!(&out[..HEADER_LEN], &reply[..HEADER_LEN]);
        assert_eq!(&out[HEADER_LEN..], &[0, 0]);
    }

    #[test]
    fn echo_round_trip_with_odd_payload() {
        let repr = Icmpv6Repr::EchoRequest {
            identifier: 0xbeef,
            sequence: 0xffff,
        };
        let payload = [1u8, 2, 3, 4, 5];
        let mut out = [0u8; 13];
        repr.emit(SERVER, CLIENT, &mut out, &payload).unwrap();
        out[8..].copy_from_slice(&payload);
        assert_eq!(parse(SERVER, CLIENT, &out), Ok(repr));
        // Source and destination are summed alike, so only another address fails.
        assert_eq!(parse(CLIENT, SERVER, &out), Ok(repr));
        assert_eq!(parse(SERVER, ALL_NODES, &out), Err(WireError::Checksum));
    }

    #[test]
    fn parses_captured_neighbor_solicitation() {
        // 87 00 37 93 00 00 00 00, target 2001:2::2, option 01 01 02:00:00:00:00:01.
        let (src, dst, bytes) = message(capture::NEIGHBOR_SOLICIT);
        assert_eq!(dst, solicited_node_multicast(SERVER));
        let view = Icmpv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(view.msg_type(), TYPE_NEIGHBOR_SOLICIT);
        assert_eq!(view.target_addr(), Some(SERVER));
        assert_eq!(view.nd_options(), &bytes[24..]);
        assert_eq!(
            Icmpv6Repr::parse(&view, src, dst),
            Ok(Icmpv6Repr::NeighborSolicit {
                target: SERVER,
                source_link_addr: Some(CLIENT_MAC),
            })
        );
    }

    #[test]
    fn parses_captured_duplicate_address_detection_and_skips_its_nonce() {
        // From ::, no source link-layer address, and a nonce option (type 14, RFC 7527) that
        // this crate does not know.
        let (src, dst, bytes) = message(capture::DAD_NEIGHBOR_SOLICIT);
        assert!(src.is_unspecified());
        assert_eq!(bytes[24], 14);
        assert_eq!(
            parse(src, dst, &bytes),
            Ok(Icmpv6Repr::NeighborSolicit {
                target: SERVER,
                source_link_addr: None,
            })
        );
    }

    #[test]
    fn emits_the_solicitation_and_advertisement_linux_sent() {
        for (fixture, repr) in [
            (
                capture::NEIGHBOR_SOLICIT,
                Icmpv6Repr::NeighborSolicit {
                    target: SERVER,
                    source_link_addr: Some(CLIENT_MAC),
                },
            ),
            (
                capture::NEIGHBOR_ADVERT,
                Icmpv6Repr::NeighborAdvert {
                    flags: NeighborFlags::SOLICITED | NeighborFlags::OVERRIDE,
                    target: SERVER,
                    target_link_addr: Some(SERVER_MAC),
                },
            ),
        ] {
            let (src, dst, bytes) = message(fixture);
            assert_eq!(parse(src, dst, &bytes), Ok(repr));
            let mut out = [0xffu8; 40];
            assert_eq!(repr.emit(src, dst, &mut out, &[]), Ok(32));
            assert_eq!(repr.buffer_len(), 32);
            assert_eq!(&out[..32], &bytes[..], "{repr:?}");
            assert_eq!(&out[32..], &[0xff; 8], "nothing written past the message");
        }
    }

    #[test]
    fn parses_captured_advertisement_flags() {
        // 88 00 b3 93 60 00 00 00: S and O, not R.
        let (src, dst, bytes) = message(capture::NEIGHBOR_ADVERT);
        let view = Icmpv6Packet::new_checked(&bytes[..]).unwrap();
        let flags = view.neighbor_flags();
        assert!(flags.contains(NeighborFlags::SOLICITED));
        assert!(flags.contains(NeighborFlags::OVERRIDE));
        assert!(!flags.contains(NeighborFlags::ROUTER));
        // Reserved bits are ignored.
        let mut reserved = bytes.clone();
        reserved[4] |= 0x1f;
        reserved[7] = 0xff;
        refill(src, dst, &mut reserved);
        assert_eq!(parse(src, dst, &reserved), parse(src, dst, &bytes));
    }

    #[test]
    fn round_trip_without_link_layer_options() {
        let target = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 2);
        for repr in [
            Icmpv6Repr::NeighborSolicit {
                target,
                source_link_addr: None,
            },
            Icmpv6Repr::NeighborAdvert {
                flags: NeighborFlags::ALL,
                target,
                target_link_addr: None,
            },
        ] {
            let mut out = [0u8; 24];
            assert_eq!(repr.emit(target, CLIENT, &mut out, &[]), Ok(24));
            assert_eq!(parse(target, CLIENT, &out), Ok(repr));
        }
    }

    #[test]
    fn other_types_and_codes_are_unsupported() {
        // A router solicitation as captured, and echo and ND messages with code 1.
        let (src, dst, bytes) = message(capture::ROUTER_SOLICIT);
        assert_eq!(parse(src, dst, &bytes), Err(WireError::Unsupported));
        for fixture in [
            capture::ECHO_REQUEST,
            capture::NEIGHBOR_SOLICIT,
            capture::NEIGHBOR_ADVERT,
        ] {
            let (src, dst, mut bytes) = message(fixture);
            bytes[1] = 1;
            refill(src, dst, &mut bytes);
            assert_eq!(parse(src, dst, &bytes), Err(WireError::Unsupported));
        }
        // ICMPv4's echo request type means nothing in ICMPv6.
        let (src, dst, mut bytes) = message(capture::ECHO_REQUEST);
        bytes[0] = 8;
        refill(src, dst, &mut bytes);
        assert_eq!(parse(src, dst, &bytes), Err(WireError::Unsupported));
    }

    #[test]
    fn bad_checksums_are_reported() {
        for fixture in [
            capture::ECHO_REQUEST,
            capture::NEIGHBOR_SOLICIT,
            capture::NEIGHBOR_ADVERT,
        ] {
            let (src, dst, bytes) = message(fixture);
            for at in [2, 9, bytes.len() - 1] {
                let mut corrupted = bytes.clone();
                corrupted[at] ^= 0x01;
                assert_eq!(parse(src, dst, &corrupted), Err(WireError::Checksum));
            }
            // The pseudo-header counts: the same bytes between other addresses fail.
            assert_eq!(parse(src, ALL_NODES, &bytes), Err(WireError::Checksum));
        }
    }

    #[test]
    fn truncated_messages_are_rejected() {
        let (src, dst, bytes) = message(capture::NEIGHBOR_SOLICIT);
        for len in 0..ND_HEADER_LEN {
            assert_eq!(
                Icmpv6Packet::new_checked(&bytes[..len]),
                Err(WireError::Truncated),
                "{len} bytes"
            );
        }
        // A cut option is malformed once the checksum verifies again.
        for len in ND_HEADER_LEN + 1..bytes.len() {
            let mut cut = bytes[..len].to_vec();
            refill(src, dst, &mut cut);
            assert_eq!(parse(src, dst, &cut), Err(WireError::Malformed), "{len}");
        }
        let (src, dst, echo) = message(capture::ECHO_REQUEST);
        for len in 0..HEADER_LEN {
            assert_eq!(
                Icmpv6Packet::new_checked(&echo[..len]),
                Err(WireError::Truncated)
            );
        }
        for len in HEADER_LEN..echo.len() {
            assert_eq!(parse(src, dst, &echo[..len]), Err(WireError::Checksum));
        }
        // The short accessors of a short message answer without panicking.
        let short = Icmpv6Packet::new_checked(&echo[..HEADER_LEN]).unwrap();
        assert_eq!(short.target_addr(), None);
        assert!(short.nd_options().is_empty());
    }

    #[test]
    fn invalid_neighbor_discovery_is_malformed() {
        let (src, dst, solicit) = message(capture::NEIGHBOR_SOLICIT);
        let (na_src, na_dst, advert) = message(capture::NEIGHBOR_ADVERT);
        let (dad_src, dad_dst, dad) = message(capture::DAD_NEIGHBOR_SOLICIT);
        let check = |src, dst, original: &[u8], change: &dyn Fn(&mut Vec<u8>)| {
            let mut bytes = original.to_vec();
            change(&mut bytes);
            refill(src, dst, &mut bytes);
            parse(src, dst, &bytes)
        };
        // A multicast target.
        let multicast_target = |b: &mut Vec<u8>| b[8..24].copy_from_slice(&ALL_NODES.octets());
        assert_eq!(
            check(src, dst, &solicit, &multicast_target),
            Err(WireError::Malformed)
        );
        assert_eq!(
            check(na_src, na_dst, &advert, &multicast_target),
            Err(WireError::Malformed)
        );
        // An option of length zero, of the type looked for or of another (which would
        // otherwise be skipped forever), and one running past the message.
        assert_eq!(
            check(src, dst, &solicit, &|b| b[25] = 0),
            Err(WireError::Malformed)
        );
        assert_eq!(
            check(dad_src, dad_dst, &dad, &|b| b[25] = 0),
            Err(WireError::Malformed)
        );
        assert_eq!(
            check(src, dst, &solicit, &|b| b[25] = 2),
            Err(WireError::Malformed)
        );
        // A source link-layer option of 16 bytes (not Ethernet's).
        assert_eq!(
            check(src, dst, &solicit, &|b| {
                b[25] = 2;
                b.extend_from_slice(&[0; 8]);
            }),
            Err(WireError::Malformed)
        );
        // Duplicate address detection with a source link-layer address, or to another group.
        let with_source_option = |b: &mut Vec<u8>| b[24..].copy_from_slice(&solicit[24..]);
        assert_eq!(
            check(dad_src, dad_dst, &dad, &with_source_option),
            Err(WireError::Malformed)
        );
        assert_eq!(
            check(dad_src, ALL_NODES, &dad, &|_| {}),
            Err(WireError::Malformed)
        );
        assert_eq!(
            check(dad_src, SERVER, &dad, &|_| {}),
            Err(WireError::Malformed)
        );
        // A solicited advertisement to a multicast address; unsolicited is fine.
        assert_eq!(
            check(na_src, ALL_NODES, &advert, &|_| {}),
            Err(WireError::Malformed)
        );
        assert_eq!(
            check(na_src, ALL_NODES, &advert, &|b| b[4] = 0x20),
            Ok(Icmpv6Repr::NeighborAdvert {
                flags: NeighborFlags::OVERRIDE,
                target: SERVER,
                target_link_addr: Some(SERVER_MAC),
            })
        );
    }

    #[test]
    fn unknown_and_repeated_options() {
        let (src, dst, solicit) = message(capture::NEIGHBOR_SOLICIT);
        // A target link-layer option in a solicitation and an unknown 16-byte option are
        // skipped; a second source link-layer option does not replace the first.
        let mut bytes = solicit[..24].to_vec();
        bytes.extend_from_slice(&[OPTION_TARGET_LINK_ADDR, 1, 9, 9, 9, 9, 9, 9]);
        bytes.extend_from_slice(&[200, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&solicit[24..]);
        bytes.extend_from_slice(&[OPTION_SOURCE_LINK_ADDR, 1, 7, 7, 7, 7, 7, 7]);
        refill(src, dst, &mut bytes);
        assert_eq!(
            parse(src, dst, &bytes),
            Ok(Icmpv6Repr::NeighborSolicit {
                target: SERVER,
                source_link_addr: Some(CLIENT_MAC),
            })
        );
    }

    #[test]
    fn emit_errors_and_short_fill() {
        let repr = Icmpv6Repr::NeighborAdvert {
            flags: NeighborFlags::SOLICITED,
            target: SERVER,
            target_link_addr: Some(SERVER_MAC),
        };
        assert_eq!(
            repr.emit(SERVER, CLIENT, &mut [0; 31], &[]),
            Err(WireError::BufferTooSmall)
        );
        let echo = Icmpv6Repr::EchoReply {
            identifier: 1,
            sequence: 1,
        };
        let payload = vec![0u8; 65535 - HEADER_LEN];
        assert_eq!(echo.emit(SERVER, CLIENT, &mut [0; 8], &payload), Ok(8));
        assert_eq!(
            echo.emit(SERVER, CLIENT, &mut [0; 8], &[0; 65535 - 7]),
            Err(WireError::Malformed)
        );
        let mut short = [7u8; 7];
        Icmpv6Packet::new_unchecked(&mut short[..]).fill_checksum(SERVER, CLIENT);
        assert_eq!(short, [7; 7]);
    }

    #[test]
    fn checksum_vector_computed_by_hand() {
        // An echo request from 2001:2::1 to 2001:2::2, id 0x1234, seq 0x0001, data "ab",
        // summed with Python's struct as 16-bit words (RFC 8200 section 8.1 layout):
        // pseudo-header 2001 0002 0000*5 0001 | 2001 0002 0000*5 0002 | 0000 000a | 0000 003a,
        // message 8000 0000 1234 0001 6162: sum 0x133e4, folded 0x33e5, checksum 0xcc1a.
        let repr = Icmpv6Repr::EchoRequest {
            identifier: 0x1234,
            sequence: 1,
        };
        let mut out = [0u8; 8];
        repr.emit(CLIENT, SERVER, &mut out, b"ab").unwrap();
        assert_eq!(u16::from_be_bytes([out[2], out[3]]), 0xcc1a);
    }
}
