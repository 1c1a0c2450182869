//! IPv4 headers (RFC 791, section 3.1). mpterm neither fragments nor reassembles: fragments are
//! reported as `Unsupported`, and every header it emits has Don't Fragment set.

use core::net::Ipv4Addr;

use crate::checksum::{internet_checksum, Checksum};
use crate::WireError;

/// The length of a header without options, the only kind [`Ipv4Repr::emit`] writes.
pub const HEADER_LEN: usize = 20;

/// Protocol number of ICMP (RFC 792).
pub const PROTOCOL_ICMP: u8 = 1;
/// Protocol number of TCP (RFC 9293).
pub const PROTOCOL_TCP: u8 = 6;

/// The Don't Fragment flag in the flags/fragment-offset word.
const FLAG_DONT_FRAGMENT: u16 = 0x4000;
/// The More Fragments flag in the flags/fragment-offset word.
const FLAG_MORE_FRAGMENTS: u16 = 0x2000;
/// The fragment offset bits of the flags/fragment-offset word.
const FRAGMENT_OFFSET_MASK: u16 = 0x1fff;

mod field {
    use core::ops::Range;

    pub const VERSION_AND_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LEN: Range<usize> = 2..4;
    pub const IDENTIFICATION: Range<usize> = 4..6;
    pub const FLAGS_AND_FRAGMENT_OFFSET: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SOURCE: Range<usize> = 12..16;
    pub const DESTINATION: Range<usize> = 16..20;
}

/// A zero-copy view of an IPv4 packet. [`Ipv4Packet::new_checked`] validates the version, the
/// header length and the total length once, after which no accessor panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checking it.
    pub fn new_unchecked(buffer: T) -> Ipv4Packet<T> {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after [`Ipv4Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Ipv4Packet<T>, WireError> {
        let packet = Ipv4Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks version 4, IHL >= 5 and IHL*4 <= total length <= buffer length. The buffer may
    /// be longer than the total length: Ethernet pads short frames to 60 bytes.
    pub fn check_len(&self) -> Result<(), WireError> {
        let buffer = self.buffer.as_ref();
        if buffer.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.version() != 4 {
            return Err(WireError::Malformed);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len {
            return Err(WireError::Malformed);
        }
        if total_len > buffer.len() {
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

    /// The version field (4 for every checked packet).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION_AND_IHL] >> 4
    }

    /// The header length in bytes (IHL times four), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VERSION_AND_IHL] & 0x0f) * 4
    }

    /// The DSCP and ECN byte (formerly type of service).
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// The length of header plus payload.
    pub fn total_len(&self) -> u16 {
        self.read_u16(field::TOTAL_LEN)
    }

    /// The identification field.
    pub fn identification(&self) -> u16 {
        self.read_u16(field::IDENTIFICATION)
    }

    /// The Don't Fragment flag.
    pub fn dont_fragment(&self) -> bool {
        self.read_u16(field::FLAGS_AND_FRAGMENT_OFFSET) & FLAG_DONT_FRAGMENT != 0
    }

    /// The More Fragments flag.
    pub fn more_fragments(&self) -> bool {
        self.read_u16(field::FLAGS_AND_FRAGMENT_OFFSET) & FLAG_MORE_FRAGMENTS != 0
    }

    /// The fragment offset in bytes.
    pub fn fragment_offset(&self) -> u16 {
        (self.read_u16(field::FLAGS_AND_FRAGMENT_OFFSET) & FRAGMENT_OFFSET_MASK) << 3
    }

    /// True for any fragment of a larger datagram: More Fragments set or a non-zero offset.
    pub fn is_fragment(&self) -> bool {
        self.more_fragments() || self.fragment_offset() != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The protocol of the payload.
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// The header checksum field.
    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    /// The source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SOURCE];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::DESTINATION];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The header options (empty for a 20-byte header).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// True when the header checksum, options included, verifies (RFC 791, section 3.1:
    /// "the 16 bit one's complement of the one's complement sum of all 16 bit words in the
    /// header").
    pub fn verify_checksum(&self) -> bool {
        let mut sum = Checksum::new();
        sum.add_bytes(&self.buffer.as_ref()[..self.header_len()]);
        sum.finish() == 0
    }

    /// The payload: exactly `total_len - header_len` bytes, Ethernet padding excluded.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn write_u16(&mut self, range: core::ops::Range<usize>, value: u16) {
        self.buffer.as_mut()[range].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets version 4 and the header length in bytes (a multiple of 4).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VERSION_AND_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }

    /// Sets the DSCP and ECN byte.
    pub fn set_dscp_ecn(&mut self, value: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = value;
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, value: u16) {
        self.write_u16(field::TOTAL_LEN, value);
    }

    /// Sets the identification field.
    pub fn set_identification(&mut self, value: u16) {
        self.write_u16(field::IDENTIFICATION, value);
    }

    /// Sets the flags/fragment-offset word to Don't Fragment, offset 0 (or to 0).
    pub fn set_dont_fragment(&mut self, dont_fragment: bool) {
        let value = if dont_fragment { FLAG_DONT_FRAGMENT } else { 0 };
        self.write_u16(field::FLAGS_AND_FRAGMENT_OFFSET, value);
    }

    /// Sets the time to live.
    pub fn set_ttl(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value;
    }

    /// Sets the protocol.
    pub fn set_protocol(&mut self, value: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = value;
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, address: Ipv4Addr) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&address.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, address: Ipv4Addr) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&address.octets());
    }

    /// Computes the header checksum over the header (as `header_len` says) and stores it.
    pub fn fill_checksum(&mut self) {
        self.write_u16(field::CHECKSUM, 0);
        let header_len = self.header_len();
        let checksum = internet_checksum(&self.buffer.as_ref()[..header_len]);
        self.write_u16(field::CHECKSUM, checksum);
    }
}

/// The fields of an IPv4 header that mpterm reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// The source address.
    pub src: Ipv4Addr,
    /// The destination address.
    pub dst: Ipv4Addr,
    /// The payload's protocol (see the `PROTOCOL_*` constants).
    pub protocol: u8,
    /// The length of the payload (total length minus header length).
    pub payload_len: u16,
    /// Time to live.
    pub ttl: u8,
}

impl Ipv4Repr {
    /// Parses a checked packet. A bad header checksum is `Checksum`; a fragment is
    /// `Unsupported` (mpterm does not reassemble). Options are allowed and skipped.
    pub fn parse(packet: &Ipv4Packet<&[u8]>) -> Result<Ipv4Repr, WireError> {
        if !packet.verify_checksum() {
            return Err(WireError::Checksum);
        }
        if packet.is_fragment() {
            return Err(WireError::Unsupported);
        }
        Ok(Ipv4Repr {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: packet.total_len() - packet.header_len() as u16,
            ttl: packet.ttl(),
        })
    }

    /// The number of bytes [`Ipv4Repr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes a 20-byte header (no options, DSCP/ECN 0, identification 0, Don't Fragment) with
    /// a correct checksum and returns its length. Identification 0 is allowed on atomic
    /// datagrams (RFC 6864, section 4.1). A payload too long for the 16-bit total length is
    /// `Malformed`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let total_len = self
            .payload_len
            .checked_add(HEADER_LEN as u16)
            .ok_or(WireError::Malformed)?;
        let header = buf.get_mut(..HEADER_LEN).ok_or(WireError::BufferTooSmall)?;
        let mut packet = Ipv4Packet::new_unchecked(header);
        packet.set_version_and_header_len(HEADER_LEN);
        packet.set_dscp_ecn(0);
        packet.set_total_len(total_len);
        packet.set_identification(0);
        packet.set_dont_fragment(true);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src);
        packet.set_dst_addr(self.dst);
        packet.fill_checksum();
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    fn packet(fixture: &str) -> Vec<u8> {
        capture::bytes(fixture)[14..].to_vec()
    }

    /// Rewrites the header checksum after a test changed a header byte.
    fn refill_checksum(bytes: &mut [u8]) {
        Ipv4Packet::new_unchecked(bytes).fill_checksum();
    }

    #[test]
    fn parses_captured_echo_request() {
        // 45 00 00 54 05 16 40 00 40 01 a9 6b c6 12 00 01 c6 12 00 02, then 64 bytes of ICMP.
        let bytes = packet(capture::ICMP_ECHO_REQUEST);
        let view = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(view.version(), 4);
        assert_eq!(view.header_len(), 20);
        assert_eq!(view.total_len(), 84);
        assert_eq!(view.identification(), 0x0516);
        assert!(view.dont_fragment());
        assert!(!view.is_fragment());
        assert_eq!(view.ttl(), 64);
        assert_eq!(view.protocol(), PROTOCOL_ICMP);
        assert_eq!(view.checksum(), 0xa96b);
        assert!(view.verify_checksum());
        assert_eq!(view.src_addr(), CLIENT);
        assert_eq!(view.dst_addr(), SERVER);
        assert_eq!(view.payload(), &bytes[20..84]);
        assert!(view.options().is_empty());
        assert_eq!(
            Ipv4Repr::parse(&view),
            Ok(Ipv4Repr {
                src: CLIENT,
                dst: SERVER,
                protocol: PROTOCOL_ICMP,
                payload_len: 64,
                ttl: 64,
            })
        );
    }

    #[test]
    fn emits_the_header_linux_sent() {
        // Linux's SYN/ACK has identification 0 and DF, the same choices as `emit`.
        let bytes = packet(capture::MP_CAPABLE_SYN_ACK);
        let repr = Ipv4Repr {
            src: SERVER,
            dst: CLIENT,
            protocol: PROTOCOL_TCP,
            payload_len: 52,
            ttl: 64,
        };
        let mut out = [0u8; 24];
        assert_eq!(repr.emit(&mut out), Ok(HEADER_LEN));
        assert_eq!(&out[..HEADER_LEN], &bytes[..HEADER_LEN]);
        assert_eq!(&out[HEADER_LEN..], &[0; 4]);
    }

    #[test]
    fn round_trip() {
        let repr = Ipv4Repr {
            src: Ipv4Addr::new(198, 19, 0, 2),
            dst: Ipv4Addr::new(198, 18, 1, 1),
            protocol: PROTOCOL_TCP,
            payload_len: 1460,
            ttl: 3,
        };
        let mut out = vec![0u8; 1480];
        repr.emit(&mut out).unwrap();
        let view = Ipv4Packet::new_checked(&out[..]).unwrap();
        assert_eq!(view.payload().len(), 1460);
        assert_eq!(Ipv4Repr::parse(&view), Ok(repr));
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut bytes = packet(capture::ICMP_ECHO_REQUEST);
        bytes.extend_from_slice(&[0xaa; 6]);
        let view = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(view.payload().len(), 64);
        assert_eq!(Ipv4Repr::parse(&view).unwrap().payload_len, 64);
    }

    #[test]
    fn header_options_are_skipped() {
        let original = packet(capture::ICMP_ECHO_REQUEST);
        // IHL 6: a 4-byte option area (NOP NOP NOP EOL) between header and payload.
        let mut bytes = original[..20].to_vec();
        bytes.extend_from_slice(&[1, 1, 1, 0]);
        bytes.extend_from_slice(&original[20..]);
        bytes[0] = 0x46;
        bytes[2..4].copy_from_slice(&88u16.to_be_bytes());
        refill_checksum(&mut bytes);
        let view = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(view.header_len(), 24);
        assert_eq!(view.options(), &[1, 1, 1, 0]);
        assert_eq!(view.payload(), &original[20..]);
        assert_eq!(Ipv4Repr::parse(&view).unwrap().payload_len, 64);
    }

    #[test]
    fn bad_checksum_is_reported() {
        let mut bytes = packet(capture::ICMP_ECHO_REQUEST);
        bytes[8] = 63; // TTL changed without updating the checksum.
        let view = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert!(!view.verify_checksum());
        assert_eq!(Ipv4Repr::parse(&view), Err(WireError::Checksum));
    }

    #[test]
    fn fragments_are_unsupported() {
        let original = packet(capture::ICMP_ECHO_REQUEST);
        // More Fragments set; a non-zero offset; both.
        for flags_and_offset in [0x2000u16, 0x0001, 0x2010] {
            let mut bytes = original.clone();
            bytes[6..8].copy_from_slice(&flags_and_offset.to_be_bytes());
            refill_checksum(&mut bytes);
            let view = Ipv4Packet::new_checked(&bytes[..]).unwrap();
            assert!(view.is_fragment());
            assert_eq!(Ipv4Repr::parse(&view), Err(WireError::Unsupported));
        }
    }

    #[test]
    fn impossible_lengths_are_malformed() {
        let original = packet(capture::ICMP_ECHO_REQUEST);
        let cases: [(usize, u8, WireError); 4] = [
            (0, 0x65, WireError::Malformed), // version 6
            (0, 0x44, WireError::Malformed), // IHL 4
            (3, 19, WireError::Malformed),   // total length below the header length
            (3, 85, WireError::Truncated),   // total length beyond the buffer
        ];
        for (offset, value, error) in cases {
            let mut bytes = original.clone();
            bytes[offset] = value;
            assert_eq!(
                Ipv4Packet::new_checked(&bytes[..]),
                Err(error),
                "byte {offset}"
            );
        }
        // IHL 15 (60 bytes) with a total length of 40.
        let mut bytes = original.clone();
        bytes[0] = 0x4f;
        bytes[2..4].copy_from_slice(&40u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&bytes[..]),
            Err(WireError::Malformed)
        );
    }

    #[test]
    fn truncated_packets_are_rejected() {
        let bytes = packet(capture::ICMP_ECHO_REQUEST);
        for len in 0..bytes.len() {
            assert!(
                Ipv4Packet::new_checked(&bytes[..len]).is_err(),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn emit_errors() {
        let mut repr = Ipv4Repr {
            src: CLIENT,
            dst: SERVER,
            protocol: PROTOCOL_TCP,
            payload_len: 0,
            ttl: 64,
        };
        assert_eq!(repr.emit(&mut [0; 19]), Err(WireError::BufferTooSmall));
        repr.payload_len = u16::MAX - 19;
        assert_eq!(repr.emit(&mut [0; 20]), Err(WireError::Malformed));
        repr.payload_len = u16::MAX - 20;
        assert_eq!(repr.emit(&mut [0; 20]), Ok(20));
    }
}
