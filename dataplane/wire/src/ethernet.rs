//! Ethernet II frames (RFC 894): destination, source, EtherType, payload. The frame check
//! sequence is stripped by the NIC and never seen here.

use core::fmt;
use core::net::Ipv6Addr;

use crate::WireError;

/// The length of an Ethernet II header without VLAN tags.
pub const HEADER_LEN: usize = 14;

/// EtherType of IPv4 (RFC 894).
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP (RFC 826).
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of IPv6 (RFC 2464).
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

mod field {
    use core::ops::{Range, RangeFrom};

    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const PAYLOAD: RangeFrom<usize> = 14..;
}

/// A 48-bit IEEE 802 MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// The all-ones broadcast address.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

    /// Reads an address from the first six bytes of `bytes`; `None` when there are fewer.
    pub fn from_bytes(bytes: &[u8]) -> Option<EthernetAddress> {
        let octets: [u8; 6] = bytes.get(..6)?.try_into().ok()?;
        Some(EthernetAddress(octets))
    }

    /// The address as bytes, in transmission order.
    pub fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// True for ff:ff:ff:ff:ff:ff.
    pub fn is_broadcast(&self) -> bool {
        *self == EthernetAddress::BROADCAST
    }

    /// True when the I/G bit (least significant bit of the first octet) is set; broadcast is
    /// a multicast address too.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// True for an individual (neither multicast nor broadcast) address.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// The Ethernet multicast address an IPv6 multicast group is sent to: 33:33 followed by
    /// the group's low 32 bits (RFC 2464, section 7), e.g. 33:33:ff:00:00:02 for the
    /// solicited-node group ff02::1:ff00:2. `None` for an address that is not multicast.
    pub fn from_ipv6_multicast(group: Ipv6Addr) -> Option<EthernetAddress> {
        if !group.is_multicast() {
            return None;
        }
        let [.., a, b, c, d] = group.octets();
        Some(EthernetAddress([0x33, 0x33, a, b, c, d]))
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// A zero-copy view of an Ethernet II frame. After [`EthernetFrame::new_checked`] succeeds no
/// accessor panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    pub fn new_unchecked(buffer: T) -> EthernetFrame<T> {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer after checking that it holds at least a full header.
    pub fn new_checked(buffer: T) -> Result<EthernetFrame<T>, WireError> {
        let frame = EthernetFrame::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks that the buffer holds at least a full header.
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

    /// The destination MAC address.
    pub fn dst_addr(&self) -> EthernetAddress {
        read_address(&self.buffer.as_ref()[field::DESTINATION])
    }

    /// The source MAC address.
    pub fn src_addr(&self) -> EthernetAddress {
        read_address(&self.buffer.as_ref()[field::SOURCE])
    }

    /// The EtherType of the payload.
    pub fn ethertype(&self) -> u16 {
        let bytes = &self.buffer.as_ref()[field::ETHERTYPE];
        u16::from_be_bytes([bytes[0], bytes[1]])
    }

    /// Everything after the header, including any padding up to the 60-byte minimum frame.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC address.
    pub fn set_dst_addr(&mut self, address: EthernetAddress) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&address.0);
    }

    /// Sets the source MAC address.
    pub fn set_src_addr(&mut self, address: EthernetAddress) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&address.0);
    }

    /// Sets the EtherType.
    pub fn set_ethertype(&mut self, ethertype: u16) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&ethertype.to_be_bytes());
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

fn read_address(bytes: &[u8]) -> EthernetAddress {
    let mut octets = [0; 6];
    octets.copy_from_slice(bytes);
    EthernetAddress(octets)
}

/// The fields of an Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    /// The source MAC address.
    pub src: EthernetAddress,
    /// The destination MAC address.
    pub dst: EthernetAddress,
    /// The EtherType of the payload (see the `ETHERTYPE_*` constants).
    pub ethertype: u16,
}

impl EthernetRepr {
    /// Reads the header of a checked frame. It cannot fail: every 14-byte header is valid.
    pub fn parse(frame: &EthernetFrame<&[u8]>) -> EthernetRepr {
        EthernetRepr {
            src: frame.src_addr(),
            dst: frame.dst_addr(),
            ethertype: frame.ethertype(),
        }
    }

    /// The number of bytes [`EthernetRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 14-byte header at the start of `buf` and returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let header = buf.get_mut(..HEADER_LEN).ok_or(WireError::BufferTooSmall)?;
        let mut frame = EthernetFrame::new_unchecked(header);
        frame.set_dst_addr(self.dst);
        frame.set_src_addr(self.src);
        frame.set_ethertype(self.ethertype);
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture;

    const CLIENT: EthernetAddress = EthernetAddress([0xee, 0x05, 0x68, 0x1c, 0x60, 0x76]);

    #[test]
    fn parses_captured_broadcast_frame() {
        let frame = capture::bytes(capture::ARP_REQUEST);
        let view = EthernetFrame::new_checked(&frame[..]).unwrap();
        assert_eq!(view.dst_addr(), EthernetAddress::BROADCAST);
        assert_eq!(view.src_addr(), CLIENT);
        assert_eq!(view.ethertype(), ETHERTYPE_ARP);
        assert_eq!(view.payload(), &frame[14..]);
        assert_eq!(
            EthernetRepr::parse(&view),
            EthernetRepr {
                src: CLIENT,
                dst: EthernetAddress::BROADCAST,
                ethertype: ETHERTYPE_ARP,
            }
        );
    }

    #[test]
    fn emits_captured_header() {
        let frame = capture::bytes(capture::ICMP_ECHO_REQUEST);
        let repr = EthernetRepr {
            src: CLIENT,
            dst: EthernetAddress([0xee, 0xce, 0xd0, 0x48, 0xf4, 0x99]),
            ethertype: ETHERTYPE_IPV4,
        };
        let mut out = [0u8; 20];
        assert_eq!(repr.emit(&mut out), Ok(HEADER_LEN));
        assert_eq!(&out[..HEADER_LEN], &frame[..HEADER_LEN]);
        assert_eq!(
            &out[HEADER_LEN..],
            &[0; 6],
            "nothing written past the header"
        );
        let view = EthernetFrame::new_checked(&out[..]).unwrap();
        assert_eq!(EthernetRepr::parse(&view), repr);
    }

    #[test]
    fn setters_round_trip() {
        let mut buffer = [0u8; 14];
        let mut view = EthernetFrame::new_checked(&mut buffer[..]).unwrap();
        view.set_dst_addr(CLIENT);
        view.set_src_addr(EthernetAddress::BROADCAST);
        view.set_ethertype(ETHERTYPE_IPV6);
        assert_eq!(view.dst_addr(), CLIENT);
        assert_eq!(view.src_addr(), EthernetAddress::BROADCAST);
        assert_eq!(view.ethertype(), 0x86dd);
        assert!(view.payload_mut().is_empty());
    }

    #[test]
    fn truncated_frames_are_rejected() {
        let frame = capture::bytes(capture::ARP_REQUEST);
        for len in 0..HEADER_LEN {
            assert_eq!(
                EthernetFrame::new_checked(&frame[..len]),
                Err(WireError::Truncated),
                "{len} bytes"
            );
        }
        assert!(EthernetFrame::new_checked(&frame[..HEADER_LEN]).is_ok());
    }

    #[test]
    fn emit_into_short_buffer_fails() {
        let repr = EthernetRepr {
            src: CLIENT,
            dst: CLIENT,
            ethertype: ETHERTYPE_IPV4,
        };
        assert_eq!(repr.emit(&mut [0; 13]), Err(WireError::BufferTooSmall));
    }

    #[test]
    fn address_classes() {
        assert!(EthernetAddress::BROADCAST.is_broadcast());
        assert!(EthernetAddress::BROADCAST.is_multicast());
        assert!(!CLIENT.is_broadcast());
        assert!(!CLIENT.is_multicast());
        assert!(CLIENT.is_unicast());
        let ipv4_multicast = EthernetAddress([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]);
        assert!(ipv4_multicast.is_multicast() && !ipv4_multicast.is_broadcast());
        assert_eq!(CLIENT.to_string(), "ee:05:68:1c:60:76");
        assert_eq!(EthernetAddress::from_bytes(&[1, 2, 3, 4, 5]), None);
        assert_eq!(
            EthernetAddress::from_bytes(&[1, 2, 3, 4, 5, 6, 7]),
            Some(EthernetAddress([1, 2, 3, 4, 5, 6]))
        );
    }

    #[test]
    fn ipv6_multicast_addresses_map_to_33_33() {
        // Linux sent its solicitation for 2001:2::2 (group ff02::1:ff00:2) to 33:33:ff:00:00:02
        // and its MLD report for ff02::16 to 33:33:00:00:00:16.
        let solicit = capture::bytes(crate::capture_ipv6::NEIGHBOR_SOLICIT);
        let group = crate::ipv6::solicited_node_multicast(crate::capture_ipv6::SERVER);
        let mapped = EthernetAddress::from_ipv6_multicast(group).unwrap();
        assert_eq!(
            mapped,
            EthernetFrame::new_checked(&solicit[..]).unwrap().dst_addr()
        );
        assert!(mapped.is_multicast() && !mapped.is_broadcast());
        let report = capture::bytes(crate::capture_ipv6::MLD_REPORT_HOP_BY_HOP);
        assert_eq!(
            EthernetAddress::from_ipv6_multicast("ff02::16".parse().unwrap()),
            Some(EthernetFrame::new_checked(&report[..]).unwrap().dst_addr())
        );
        let group = "ff05::1:3:a1b2:c3d4".parse().unwrap();
        assert_eq!(
            EthernetAddress::from_ipv6_multicast(group),
            Some(EthernetAddress([0x33, 0x33, 0xa1, 0xb2, 0xc3, 0xd4]))
        );
        assert_eq!(
            EthernetAddress::from_ipv6_multicast(crate::capture_ipv6::SERVER),
            None
        );
    }
}
