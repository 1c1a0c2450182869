//! ARP packets (RFC 826) for Ethernet hardware addresses and IPv4 protocol addresses, the only
//! combination mpterm resolves.

use core::net::Ipv4Addr;

use crate::ethernet::{EthernetAddress, ETHERTYPE_IPV4};
use crate::WireError;

/// The length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;

/// `ar$hrd` for Ethernet (RFC 826, "Packet format"; IANA hardware type 1).
pub const HARDWARE_ETHERNET: u16 = 1;

mod field {
    use core::ops::Range;

    pub const HARDWARE_TYPE: Range<usize> = 0..2;
    pub const PROTOCOL_TYPE: Range<usize> = 2..4;
    pub const HARDWARE_LEN: usize = 4;
    pub const PROTOCOL_LEN: usize = 5;
    pub const OPERATION: Range<usize> = 6..8;

    // The address fields below hold only for 6-byte hardware and 4-byte protocol addresses,
    // which `ArpRepr::parse` insists on before reading them.
    pub const SENDER_HARDWARE: Range<usize> = 8..14;
    pub const SENDER_PROTOCOL: Range<usize> = 14..18;
    pub const TARGET_HARDWARE: Range<usize> = 18..24;
    pub const TARGET_PROTOCOL: Range<usize> = 24..28;
}

/// The ARP operation code (`ar$op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOperation {
    /// `ares_op$REQUEST` (1).
    Request,
    /// `ares_op$REPLY` (2).
    Reply,
}

impl ArpOperation {
    /// The on-wire value.
    pub fn code(self) -> u16 {
        match self {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
        }
    }
}

/// A zero-copy view of an Ethernet/IPv4 ARP packet. [`ArpPacket::new_checked`] guarantees the
/// 28 bytes every accessor reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps a buffer without checking it.
    pub fn new_unchecked(buffer: T) -> ArpPacket<T> {
        ArpPacket { buffer }
    }

    /// Wraps a buffer holding at least [`PACKET_LEN`] bytes (longer buffers carry Ethernet
    /// padding).
    pub fn new_checked(buffer: T) -> Result<ArpPacket<T>, WireError> {
        let packet = ArpPacket::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that every field is inside the buffer.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < PACKET_LEN {
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

    /// `ar$hrd`.
    pub fn hardware_type(&self) -> u16 {
        self.read_u16(field::HARDWARE_TYPE)
    }

    /// `ar$pro`, an EtherType.
    pub fn protocol_type(&self) -> u16 {
        self.read_u16(field::PROTOCOL_TYPE)
    }

    /// `ar$hln`.
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HARDWARE_LEN]
    }

    /// `ar$pln`.
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL_LEN]
    }

    /// `ar$op` as a raw value.
    pub fn operation(&self) -> u16 {
        self.read_u16(field::OPERATION)
    }

    /// `ar$sha`.
    pub fn sender_hardware_addr(&self) -> EthernetAddress {
        address(&self.buffer.as_ref()[field::SENDER_HARDWARE])
    }

    /// `ar$spa`.
    pub fn sender_protocol_addr(&self) -> Ipv4Addr {
        ipv4(&self.buffer.as_ref()[field::SENDER_PROTOCOL])
    }

    /// `ar$tha`.
    pub fn target_hardware_addr(&self) -> EthernetAddress {
        address(&self.buffer.as_ref()[field::TARGET_HARDWARE])
    }

    /// `ar$tpa`.
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        ipv4(&self.buffer.as_ref()[field::TARGET_PROTOCOL])
    }
}

fn address(bytes: &[u8]) -> EthernetAddress {
    let mut octets = [0; 6];
    octets.copy_from_slice(bytes);
    EthernetAddress(octets)
}

fn ipv4(bytes: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])
}

/// An Ethernet/IPv4 ARP request or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    /// Request or reply.
    pub operation: ArpOperation,
    /// `ar$sha`: the sender's hardware address.
    pub sender_mac: EthernetAddress,
    /// `ar$spa`: the sender's IPv4 address.
    pub sender_ip: Ipv4Addr,
    /// `ar$tha`: the target's hardware address (zero in a request).
    pub target_mac: EthernetAddress,
    /// `ar$tpa`: the IPv4 address being resolved or answered.
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Parses a checked packet. Other hardware or protocol types, or other address lengths,
    /// are `Unsupported`; an operation other than request or reply is `Unsupported` too
    /// (RFC 826 leaves RARP and others to other documents).
    pub fn parse(packet: &ArpPacket<&[u8]>) -> Result<ArpRepr, WireError> {
        if packet.hardware_type() != HARDWARE_ETHERNET
            || packet.protocol_type() != ETHERTYPE_IPV4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(WireError::Unsupported);
        }
        let operation = match packet.operation() {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            _ => return Err(WireError::Unsupported),
        };
        Ok(ArpRepr {
            operation,
            sender_mac: packet.sender_hardware_addr(),
            sender_ip: packet.sender_protocol_addr(),
            target_mac: packet.target_hardware_addr(),
            target_ip: packet.target_protocol_addr(),
        })
    }

    /// The number of bytes [`ArpRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes the 28-byte packet at the start of `buf` and returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let out = buf.get_mut(..PACKET_LEN).ok_or(WireError::BufferTooSmall)?;
        out[field::HARDWARE_TYPE].copy_from_slice(&HARDWARE_ETHERNET.to_be_bytes());
        out[field::PROTOCOL_TYPE].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        out[field::HARDWARE_LEN] = 6;
        out[field::PROTOCOL_LEN] = 4;
        out[field::OPERATION].copy_from_slice(&self.operation.code().to_be_bytes());
        out[field::SENDER_HARDWARE].copy_from_slice(&self.sender_mac.0);
        out[field::SENDER_PROTOCOL].copy_from_slice(&self.sender_ip.octets());
        out[field::TARGET_HARDWARE].copy_from_slice(&self.target_mac.0);
        out[field::TARGET_PROTOCOL].copy_from_slice(&self.target_ip.octets());
        Ok(PACKET_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture;
    use crate::ethernet::HEADER_LEN as ETHERNET_HEADER_LEN;

    const CLIENT_MAC: EthernetAddress = EthernetAddress([0xee, 0x05, 0x68, 0x1c, 0x60, 0x76]);
    const SERVER_MAC: EthernetAddress = EthernetAddress([0xee, 0xce, 0xd0, 0x48, 0xf4, 0x99]);
    const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    fn packet(fixture: &str) -> Vec<u8> {
        capture::bytes(fixture)[ETHERNET_HEADER_LEN..].to_vec()
    }

    fn reply() -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Reply,
            sender_mac: SERVER_MAC,
            sender_ip: SERVER_IP,
            target_mac: CLIENT_MAC,
            target_ip: CLIENT_IP,
        }
    }

    #[test]
    fn parses_captured_request() {
        let bytes = packet(capture::ARP_REQUEST);
        let view = ArpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(view.hardware_type(), 1);
        assert_eq!(view.protocol_type(), 0x0800);
        assert_eq!(view.operation(), 1);
        assert_eq!(
            ArpRepr::parse(&view),
            Ok(ArpRepr {
                operation: ArpOperation::Request,
                sender_mac: CLIENT_MAC,
                sender_ip: CLIENT_IP,
                target_mac: EthernetAddress([0; 6]),
                target_ip: SERVER_IP,
            })
        );
    }

    #[test]
    fn parses_and_emits_captured_reply() {
        let bytes = packet(capture::ARP_REPLY);
        let view = ArpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(ArpRepr::parse(&view), Ok(reply()));
        let mut out = [0u8; PACKET_LEN];
        assert_eq!(reply().emit(&mut out), Ok(PACKET_LEN));
        assert_eq!(&out[..], &bytes[..]);
    }

    #[test]
    fn padded_packet_is_accepted() {
        let mut bytes = packet(capture::ARP_REPLY);
        bytes.extend_from_slice(&[0; 18]);
        let view = ArpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(ArpRepr::parse(&view), Ok(reply()));
    }

    #[test]
    fn truncated_packets_are_rejected() {
        let bytes = packet(capture::ARP_REPLY);
        for len in 0..PACKET_LEN {
            assert_eq!(
                ArpPacket::new_checked(&bytes[..len]),
                Err(WireError::Truncated),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn other_hardware_protocol_or_operation_is_unsupported() {
        let original = packet(capture::ARP_REQUEST);
        // (byte offset, value): hardware type 6 (IEEE 802), protocol IPv6, address lengths,
        // and operation 3 (RARP request).
        for (offset, value) in [(1, 6), (2, 0x86), (4, 8), (5, 16), (7, 3), (6, 1)] {
            let mut bytes = original.clone();
            bytes[offset] = value;
            let view = ArpPacket::new_checked(&bytes[..]).unwrap();
            assert_eq!(
                ArpRepr::parse(&view),
                Err(WireError::Unsupported),
                "byte {offset} = {value}"
            );
        }
    }

    #[test]
    fn emit_into_short_buffer_fails() {
        assert_eq!(
            reply().emit(&mut [0; PACKET_LEN - 1]),
            Err(WireError::BufferTooSmall)
        );
    }
}
