//! ICMP echo request and reply (RFC 792, "Echo or Echo Reply Message"), the only ICMP messages
//! mpterm answers.

use crate::checksum::Checksum;
use crate::WireError;

/// The length of an echo header: type, code, checksum, identifier, sequence number.
pub const HEADER_LEN: usize = 8;

/// ICMP type of an echo reply.
pub const TYPE_ECHO_REPLY: u8 = 0;
/// ICMP type of an echo request.
pub const TYPE_ECHO_REQUEST: u8 = 8;

mod field {
    use core::ops::{Range, RangeFrom};

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const IDENTIFIER: Range<usize> = 4..6;
    pub const SEQUENCE: Range<usize> = 6..8;
    pub const PAYLOAD: RangeFrom<usize> = 8..;
}

/// A zero-copy view of an ICMP message with the 8-byte header every message type shares in
/// size. [`IcmpPacket::new_checked`] guarantees those 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    /// Wraps a buffer without checking it.
    pub fn new_unchecked(buffer: T) -> IcmpPacket<T> {
        IcmpPacket { buffer }
    }

    /// Wraps a buffer of at least [`HEADER_LEN`] bytes. The buffer must be exactly the ICMP
    /// message (the IPv4 payload), because the checksum covers all of it.
    pub fn new_checked(buffer: T) -> Result<IcmpPacket<T>, WireError> {
        let packet = IcmpPacket::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the header is inside the buffer.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
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

    /// The echo identifier.
    pub fn identifier(&self) -> u16 {
        self.read_u16(field::IDENTIFIER)
    }

    /// The echo sequence number.
    pub fn sequence(&self) -> u16 {
        self.read_u16(field::SEQUENCE)
    }

    /// True when the checksum over the whole message verifies (RFC 792: "the checksum is the
    /// 16-bit ones's complement of the one's complement sum of the ICMP message").
    pub fn verify_checksum(&self) -> bool {
        let mut sum = Checksum::new();
        sum.add_bytes(self.buffer.as_ref());
        sum.finish() == 0
    }

    /// The echo data after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

/// Whether an echo message asks or answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpEchoKind {
    /// Type 8.
    Request,
    /// Type 0.
    Reply,
}

impl IcmpEchoKind {
    /// The ICMP type value.
    pub fn msg_type(self) -> u8 {
        match self {
            IcmpEchoKind::Request => TYPE_ECHO_REQUEST,
            IcmpEchoKind::Reply => TYPE_ECHO_REPLY,
        }
    }
}

/// An echo request or reply header; the data is carried separately so that a reply can reuse
/// the request's payload bytes without copying them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpEchoRepr {
    /// Request or reply.
    pub kind: IcmpEchoKind,
    /// The identifier, echoed unchanged in the reply.
    pub identifier: u16,
    /// The sequence number, echoed unchanged in the reply.
    pub sequence: u16,
}

impl IcmpEchoRepr {
    /// Parses a checked message: echo types with code 0 only (other types and codes are
    /// `Unsupported`), and the checksum must verify (`Checksum`).
    pub fn parse(packet: &IcmpPacket<&[u8]>) -> Result<IcmpEchoRepr, WireError> {
        let kind = match (packet.msg_type(), packet.code()) {
            (TYPE_ECHO_REQUEST, 0) => IcmpEchoKind::Request,
            (TYPE_ECHO_REPLY, 0) => IcmpEchoKind::Reply,
            _ => return Err(WireError::Unsupported),
        };
        if !packet.verify_checksum() {
            return Err(WireError::Checksum);
        }
        Ok(IcmpEchoRepr {
            kind,
            identifier: packet.identifier(),
            sequence: packet.sequence(),
        })
    }

    /// The number of bytes [`IcmpEchoRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 8-byte header at the start of `buf` with a checksum that covers the header
    /// and `payload` (which the caller transmits right after the header), and returns 8.
    pub fn emit(&self, buf: &mut [u8], payload: &[u8]) -> Result<usize, WireError> {
        let out = buf.get_mut(..HEADER_LEN).ok_or(WireError::BufferTooSmall)?;
        out[field::TYPE] = self.kind.msg_type();
        out[field::CODE] = 0;
        out[field::CHECKSUM].copy_from_slice(&[0, 0]);
        out[field::IDENTIFIER].copy_from_slice(&self.identifier.to_be_bytes());
        out[field::SEQUENCE].copy_from_slice(&self.sequence.to_be_bytes());
        let mut sum = Checksum::new();
        sum.add_bytes(out);
        sum.add_bytes(payload);
        out[field::CHECKSUM].copy_from_slice(&sum.finish().to_be_bytes());
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture;

    fn message(fixture: &str) -> Vec<u8> {
        let frame = capture::bytes(fixture);
        capture::ipv4_payload(&frame).2.to_vec()
    }

    #[test]
    fn parses_captured_request() {
        // 08 00 a4 ad 09 f3 00 01 and 56 bytes of ping data.
        let bytes = message(capture::ICMP_ECHO_REQUEST);
        let view = IcmpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(view.msg_type(), TYPE_ECHO_REQUEST);
        assert_eq!(view.code(), 0);
        assert_eq!(view.checksum(), 0xa4ad);
        assert!(view.verify_checksum());
        assert_eq!(view.payload().len(), 56);
        assert_eq!(
            IcmpEchoRepr::parse(&view),
            Ok(IcmpEchoRepr {
                kind: IcmpEchoKind::Request,
                identifier: 2547,
                sequence: 1,
            })
        );
    }

    #[test]
    fn emits_the_reply_linux_sent() {
        let request = message(capture::ICMP_ECHO_REQUEST);
        let reply = message(capture::ICMP_ECHO_REPLY);
        let repr = IcmpEchoRepr {
            kind: IcmpEchoKind::Reply,
            identifier: 2547,
            sequence: 1,
        };
        let mut out = [0u8; 10];
        assert_eq!(repr.emit(&mut out, &request[8..]), Ok(HEADER_LEN));
        assert_eq!(&out[..HEADER_LEN], &reply[..HEADER_LEN]);
        assert_eq!(&out[HEADER_LEN..], &[0, 0]);
    }

    #[test]
    fn round_trip_with_odd_payload() {
        let repr = IcmpEchoRepr {
            kind: IcmpEchoKind::Request,
            identifier: 0xbeef,
            sequence: 0xffff,
        };
        let payload = [1u8, 2, 3, 4, 5];
        let mut out = [0u8; 13];
        repr.emit(&mut out, &payload).unwrap();
        out[8..].copy_from_slice(&payload);
        let view = IcmpPacket::new_checked(&out[..]).unwrap();
        assert_eq!(view.payload(), &payload);
        assert_eq!(IcmpEchoRepr::parse(&view), Ok(repr));
    }

    #[test]
    fn bad_checksum_is_reported() {
        let mut bytes = message(capture::ICMP_ECHO_REQUEST);
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        let view = IcmpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(IcmpEchoRepr::parse(&view), Err(WireError::Checksum));
    }

    #[test]
    fn other_types_and_codes_are_unsupported() {
        let original = message(capture::ICMP_ECHO_REQUEST);
        // Destination unreachable, time exceeded, and an echo request with code 1.
        for (msg_type, code) in [(3, 1), (11, 0), (8, 1)] {
            let mut bytes = original.clone();
            bytes[0] = msg_type;
            bytes[1] = code;
            let view = IcmpPacket::new_checked(&bytes[..]).unwrap();
            assert_eq!(IcmpEchoRepr::parse(&view), Err(WireError::Unsupported));
        }
    }

    #[test]
    fn truncated_messages_are_rejected() {
        let bytes = message(capture::ICMP_ECHO_REQUEST);
        for len in 0..HEADER_LEN {
            assert_eq!(
                IcmpPacket::new_checked(&bytes[..len]),
                Err(WireError::Truncated)
            );
        }
        // With the header present but data cut off, the checksum no longer verifies.
        for len in HEADER_LEN..bytes.len() {
            let view = IcmpPacket::new_checked(&bytes[..len]).unwrap();
            assert!(IcmpEchoRepr::parse(&view).is_err(), "{len} bytes");
        }
    }

    #[test]
    fn emit_into_short_buffer_fails() {
        let repr = IcmpEchoRepr {
            kind: IcmpEchoKind::Reply,
            identifier: 1,
            sequence: 1,
        };
        assert_eq!(repr.emit(&mut [0; 7], &[]), Err(WireError::BufferTooSmall));
    }
}
