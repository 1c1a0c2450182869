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
    pub operation: ArpOperation,
    pub sender_mac: EthernetAddress,
    pub sender_ip: Ipv4Addr,
    pub target_mac: EthernetAddress,
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
