//! TCP headers and options (RFC 9293, section 3.1; RFC 7323 window scale and timestamps;
//! RFC 2018 SACK; RFC 8684 MPTCP options, parsed in [`crate::mptcp`]).

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::checksum::{pseudo_header_v4, pseudo_header_v6, Checksum};
use crate::ipv4::PROTOCOL_TCP;
use crate::ipv6::NEXT_HEADER_TCP;
use crate::mptcp::MptcpOption;
use crate::seq::SeqNumber;
use crate::WireError;

/// The length of a header without options.
pub const HEADER_LEN: usize = 20;
/// The most option bytes a header can carry (data offset 15 words).
pub const MAX_OPTIONS_LEN: usize = 40;

/// Option kinds (IANA "TCP Option Kind Numbers").
pub mod option_kind {
    /// End of option list (RFC 9293, section 3.2).
    pub const END: u8 = 0;
    /// No-operation (RFC 9293, section 3.2).
    pub const NOP: u8 = 1;
    /// Maximum segment size (RFC 9293, section 3.2).
    pub const MSS: u8 = 2;
    /// Window scale (RFC 7323, section 2.2).
    pub const WINDOW_SCALE: u8 = 3;
    /// SACK permitted (RFC 2018, section 2).
    pub const SACK_PERMITTED: u8 = 4;
    /// SACK (RFC 2018, section 3).
    pub const SACK: u8 = 5;
    /// Timestamps (RFC 7323, section 3.2).
    pub const TIMESTAMPS: u8 = 8;
    /// Multipath TCP (RFC 8684, section 2).
    pub const MPTCP: u8 = 30;
}

mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

// Owned TCP header representation (the engine's API).

/// TCP control bits (RFC 9293, section 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// The acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// The urgent pointer field is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN echo (RFC 3168).
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion window reduced (RFC 3168).
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// True when every bit of `other` is set in `self`.
    pub fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | other.0)
    }
}

/// Up to four SACK blocks (RFC 2018), each `[left, right)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SackBlocks {
    blocks: [(SeqNumber, SeqNumber); 4],
    len: u8,
}

impl SackBlocks {
    /// Appends a block; returns false (and keeps the list) when four are already held.
    pub fn push(&mut self, left: SeqNumber, right: SeqNumber) -> bool {
        if self.len as usize == self.blocks.len() {
            return false;
        }
        self.blocks[self.len as usize] = (left, right);
        self.len += 1;
        true
    }

    /// The blocks in the order they were pushed.
    pub fn as_slice(&self) -> &[(SeqNumber, SeqNumber)] {
        &self.blocks[..self.len as usize]
    }

    /// The number of blocks held.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when no block is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Removes every block.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Removes the last block, if any (the one pushed last is the least important, RFC 2018
    /// section 4).
    pub fn pop(&mut self) {
        self.len = self.len.saturating_sub(1);
    }
}

/// RFC 7323 timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamps {
    /// TSval: the sender's clock.
    pub value: u32,
    /// TSecr: the TSval most recently received.
    pub echo_reply: u32,
}

/// Every TCP option mpterm understands, parsed from or to be emitted into one header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpOptions<'a> {
    /// Maximum segment size (SYN only).
    pub mss: Option<u16>,
    /// Window scale shift count (SYN only, RFC 7323, section 2).
    pub window_scale: Option<u8>,
    /// SACK permitted (SYN only, RFC 2018, section 2).
    pub sack_permitted: bool,
    /// SACK blocks (RFC 2018, section 3).
    pub sack_blocks: SackBlocks,
    /// Timestamps (RFC 7323, section 3).
    pub timestamps: Option<Timestamps>,
    /// At most two MPTCP options per segment (e.g. DSS with MP_PRIO); further ones are
    /// counted in `unknown_options` by the parser.
    pub mptcp: [Option<MptcpOption<'a>>; 2],
    /// Options skipped because their kind is unknown (counted by the caller).
    pub unknown_options: u8,
}

/// Option lengths, kind and length octets included.
const MSS_LEN: usize = 4;
const WINDOW_SCALE_LEN: usize = 3;
const SACK_PERMITTED_LEN: usize = 2;
const TIMESTAMPS_LEN: usize = 10;
const SACK_BLOCK_LEN: usize = 8;

impl<'a> TcpOptions<'a> {
    /// Parses the option bytes of a header (RFC 9293, section 3.2). Unknown kinds are skipped
    /// and counted; End of Option List stops parsing; an option whose length octet is missing,
    /// below 2 or past the end is `Malformed`, and so is a known option with a length its
    /// RFC does not allow, or an MPTCP option that [`MptcpOption::parse`] rejects. A third
    /// MPTCP option is counted in `unknown_options`.
    pub fn parse(bytes: &'a [u8]) -> Result<TcpOptions<'a>, WireError> {
        let mut options = TcpOptions::default();
        let mut rest = bytes;
        while let Some((&kind, after_kind)) = rest.split_first() {
            match kind {
                option_kind::END => break,
                option_kind::NOP => {
                    rest = after_kind;
                    continue;
                }
                _ => {}
            }
            let len = usize::from(*after_kind.first().ok_or(WireError::Malformed)?);
            if len < 2 || len > rest.len() {
                return Err(WireError::Malformed);
            }
            let (option, after) = rest.split_at(len);
            rest = after;
            let body = &option[2..];
            match kind {
                option_kind::MSS => {
                    if len != MSS_LEN {
                        return Err(WireError::Malformed);
                    }
                    options.mss = Some(u16::from_be_bytes([body[0], body[1]]));
                }
                option_kind::WINDOW_SCALE => {
                    if len != WINDOW_SCALE_LEN {
                        return Err(WireError::Malformed);
                    }
                    // RFC 7323, section 2.3: a shift above 14 is used as 14. The value is
                    // kept as received; clamping is the engine's rule to apply.
                    options.window_scale = Some(body[0]);
                }
                option_kind::SACK_PERMITTED => {
                    if len != SACK_PERMITTED_LEN {
                        return Err(WireError::Malformed);
                    }
                    options.sack_permitted = true;
                }
                option_kind::SACK => {
                    // RFC 2018, section 3: length 2 + 8n, n at least 1.
                    if len < 2 + SACK_BLOCK_LEN || (len - 2) % SACK_BLOCK_LEN != 0 {
                        return Err(WireError::Malformed);
                    }
                    for block in body.chunks_exact(SACK_BLOCK_LEN) {
                        let left = u32::from_be_bytes([block[0], block[1], block[2], block[3]]);
                        let right = u32::from_be_bytes([block[4], block[5], block[6], block[7]]);
                        options.sack_blocks.push(SeqNumber(left), SeqNumber(right));
                    }
                }
                option_kind::TIMESTAMPS => {
                    if len != TIMESTAMPS_LEN {
                        return Err(WireError::Malformed);
                    }
                    options.timestamps = Some(Timestamps {
                        value: u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
                        echo_reply: u32::from_be_bytes([body[4], body[5], body[6], body[7]]),
                    });
                }
                option_kind::MPTCP => match options.mptcp.iter_mut().find(|slot| slot.is_none()) {
                    Some(slot) => {
                        *slot = Some(MptcpOption::parse(option).map_err(|_| WireError::Malformed)?)
                    }
                    None => options.unknown_options = options.unknown_options.saturating_add(1),
                },
                _ => options.unknown_options = options.unknown_options.saturating_add(1),
            }
        }
        Ok(options)
    }

    /// The number of option bytes [`TcpOptions::emit`] writes, padded to a multiple of 4.
    pub fn encoded_len(&self) -> usize {
        let len = self.unpadded_len();
        len.div_ceil(4) * 4
    }

    fn unpadded_len(&self) -> usize {
        let mut len = 0;
        if self.mss.is_some() {
            len += MSS_LEN;
        }
        if self.window_scale.is_some() {
            len += 1 + WINDOW_SCALE_LEN;
        }
        // SACK-permitted takes the place of the two NOPs before the timestamps when both are
        // present, as Linux lays out its SYNs; alone it is NOP-padded to 4.
        len += match (self.sack_permitted, self.timestamps.is_some()) {
            (true, true) => SACK_PERMITTED_LEN + TIMESTAMPS_LEN,
            (true, false) => 2 + SACK_PERMITTED_LEN,
            (false, true) => 2 + TIMESTAMPS_LEN,
            (false, false) => 0,
        };
        if !self.sack_blocks.is_empty() {
            len += 2 + 2 + SACK_BLOCK_LEN * self.sack_blocks.len();
        }
        for option in self.mptcp.iter().flatten() {
            len += option.encoded_len();
        }
        len
    }

    /// Writes the options into `buf` in the order MSS, NOP + window scale, SACK-permitted,
    /// timestamps (NOP NOP TS, or SACK-permitted TS), NOP NOP SACK, MPTCP options, then NOPs
    /// up to a multiple of 4, and returns [`TcpOptions::encoded_len`]. More than 40 bytes is
    /// `Malformed`; a short buffer is `BufferTooSmall`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let len = self.encoded_len();
        if len > MAX_OPTIONS_LEN {
            return Err(WireError::Malformed);
        }
        let out = buf.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        let mut at = 0;
        if let Some(mss) = self.mss {
            out[at] = option_kind::MSS;
            out[at + 1] = MSS_LEN as u8;
            out[at + 2..at + 4].copy_from_slice(&mss.to_be_bytes());
            at += MSS_LEN;
        }
        if let Some(shift) = self.window_scale {
            out[at] = option_kind::NOP;
            out[at + 1] = option_kind::WINDOW_SCALE;
            out[at + 2] = WINDOW_SCALE_LEN as u8;
            out[at + 3] = shift;
            at += 1 + WINDOW_SCALE_LEN;
        }
        if self.sack_permitted {
            if self.timestamps.is_none() {
                out[at] = option_kind::NOP;
                out[at + 1] = option_kind::NOP;
                at += 2;
            }
            out[at] = option_kind::SACK_PERMITTED;
            out[at + 1] = SACK_PERMITTED_LEN as u8;
            at += SACK_PERMITTED_LEN;
        }
        if let Some(timestamps) = self.timestamps {
            if !self.sack_permitted {
                out[at] = option_kind::NOP;
                out[at + 1] = option_kind::NOP;
                at += 2;
            }
            out[at] = option_kind::TIMESTAMPS;
            out[at + 1] = TIMESTAMPS_LEN as u8;
            out[at + 2..at + 6].copy_from_slice(&timestamps.value.to_be_bytes());
            out[at + 6..at + 10].copy_from_slice(&timestamps.echo_reply.to_be_bytes());
            at += TIMESTAMPS_LEN;
        }
        if !self.sack_blocks.is_empty() {
            out[at] = option_kind::NOP;
            out[at + 1] = option_kind::NOP;
            out[at + 2] = option_kind::SACK;
            out[at + 3] = (2 + SACK_BLOCK_LEN * self.sack_blocks.len()) as u8;
            at += 4;
            for (left, right) in self.sack_blocks.as_slice() {
                out[at..at + 4].copy_from_slice(&left.0.to_be_bytes());
                out[at + 4..at + 8].copy_from_slice(&right.0.to_be_bytes());
                at += SACK_BLOCK_LEN;
            }
        }
        for option in self.mptcp.iter().flatten() {
            at += option.emit(&mut out[at..])?;
        }
        // Padding with NOPs rather than End of Option List: Linux pads its MPTCP options the
        // same way, and a NOP is never mistaken for the end by a middlebox.
        out[at..].fill(option_kind::NOP);
        Ok(len)
    }
}

/// A zero-copy view of a TCP segment. [`TcpSegment::new_checked`] validates the data offset
/// once, after which no accessor panics. The buffer must end where the segment ends (the IPv4
/// payload), because the payload and the checksum run to the end of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpSegment<T> {
    /// Wraps a buffer without checking it.
    pub fn new_unchecked(buffer: T) -> TcpSegment<T> {
        TcpSegment { buffer }
    }

    /// Wraps a buffer after [`TcpSegment::check_len`].
    pub fn new_checked(buffer: T) -> Result<TcpSegment<T>, WireError> {
        let segment = TcpSegment::new_unchecked(buffer);
        segment.check_len()?;
        Ok(segment)
    }

    /// Checks that the fixed header is present, the data offset is at least 5 words and the
    /// header it announces lies within the buffer.
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if header_len > len {
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

    fn read_u32(&self, range: core::ops::Range<usize>) -> u32 {
        let bytes = &self.buffer.as_ref()[range];
        u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    }

    /// The source port.
    pub fn src_port(&self) -> u16 {
        self.read_u16(field::SRC_PORT)
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        self.read_u16(field::DST_PORT)
    }

    /// The sequence number.
    pub fn seq_number(&self) -> SeqNumber {
        SeqNumber(self.read_u32(field::SEQ_NUM))
    }

    /// The acknowledgment number (meaningful only with ACK set).
    pub fn ack_number(&self) -> SeqNumber {
        SeqNumber(self.read_u32(field::ACK_NUM))
    }

    /// The header length in bytes (data offset times four).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFFSET] >> 4) * 4
    }

    /// The eight control bits (CWR to FIN).
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// The (unscaled) window field.
    pub fn window_len(&self) -> u16 {
        self.read_u16(field::WINDOW)
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    /// The urgent pointer.
    pub fn urgent_pointer(&self) -> u16 {
        self.read_u16(field::URGENT)
    }

    /// The option bytes between the fixed header and the data.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The data after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// True when the checksum over the IPv4 pseudo-header, header and payload verifies
    /// (RFC 9293, section 3.1). A segment longer than 65535 bytes cannot be carried by IPv4
    /// and never verifies.
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let bytes = self.buffer.as_ref();
        let Ok(length) = u16::try_from(bytes.len()) else {
            return false;
        };
        let mut sum = pseudo_header_v4(src, dst, PROTOCOL_TCP, length);
        sum.add_bytes(bytes);
        sum.finish() == 0
    }

    /// [`TcpSegment::verify_checksum_v4`] with the payload's sum computed by the caller
    /// ([`Checksum::of`] over [`TcpSegment::payload`]), so that the same sum can serve the DSS
    /// checksum too: the payload is read once. Only the header is summed here.
    pub fn verify_checksum_v4_with_payload_sum(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        payload_sum: Checksum,
    ) -> bool {
        let bytes = self.buffer.as_ref();
        let Ok(length) = u16::try_from(bytes.len()) else {
            return false;
        };
        let mut sum = pseudo_header_v4(src, dst, PROTOCOL_TCP, length);
        // The header is a whole number of 32-bit words, so the payload's sum follows it at an
        // even position.
        sum.add_bytes(&bytes[..self.header_len()]);
        sum.add_checksum(payload_sum);
        sum.finish() == 0
    }

    /// True when the checksum over the IPv6 pseudo-header (RFC 8200, section 8.1), header and
    /// payload verifies. The pseudo-header's length is 32 bits wide; a segment longer than
    /// that never verifies.
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let bytes = self.buffer.as_ref();
        let Ok(length) = u32::try_from(bytes.len()) else {
            return false;
        };
        let mut sum = pseudo_header_v6(src, dst, NEXT_HEADER_TCP, length);
        sum.add_bytes(bytes);
        sum.finish() == 0
    }

    /// [`TcpSegment::verify_checksum_v6`] with the payload's sum computed by the caller, as
    /// [`TcpSegment::verify_checksum_v4_with_payload_sum`] does for IPv4: only the header is
    /// summed here.
    pub fn verify_checksum_v6_with_payload_sum(
        &self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        payload_sum: Checksum,
    ) -> bool {
        let bytes = self.buffer.as_ref();
        let Ok(length) = u32::try_from(bytes.len()) else {
            return false;
        };
        let mut sum = pseudo_header_v6(src, dst, NEXT_HEADER_TCP, length);
        // The header is a whole number of 32-bit words: the payload's sum follows it at an even
        // position.
        sum.add_bytes(&bytes[..self.header_len()]);
        sum.add_checksum(payload_sum);
        sum.finish() == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpSegment<T> {
    fn write_u16(&mut self, range: core::ops::Range<usize>, value: u16) {
        self.buffer.as_mut()[range].copy_from_slice(&value.to_be_bytes());
    }

    fn write_u32(&mut self, range: core::ops::Range<usize>, value: u32) {
        self.buffer.as_mut()[range].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the source port.
    pub fn set_src_port(&mut self, port: u16) {
        self.write_u16(field::SRC_PORT, port);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, port: u16) {
        self.write_u16(field::DST_PORT, port);
    }

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, seq: SeqNumber) {
        self.write_u32(field::SEQ_NUM, seq.0);
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, ack: SeqNumber) {
        self.write_u32(field::ACK_NUM, ack.0);
    }

    /// Sets the header length in bytes (a multiple of 4 between 20 and 60); the reserved bits
    /// are cleared.
    pub fn set_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::DATA_OFFSET] = ((header_len / 4) as u8) << 4;
    }

    /// Sets the control bits.
    pub fn set_flags(&mut self, flags: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = flags.0;
    }

    /// Sets the window field.
    pub fn set_window_len(&mut self, window: u16) {
        self.write_u16(field::WINDOW, window);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, checksum: u16) {
        self.write_u16(field::CHECKSUM, checksum);
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_pointer(&mut self, pointer: u16) {
        self.write_u16(field::URGENT, pointer);
    }
}

/// A TCP header without addresses and payload (RFC 9293, section 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    /// The source port.
    pub src_port: u16,
    /// The destination port.
    pub dst_port: u16,
    /// The sequence number of the first octet (or of the SYN/FIN).
    pub seq: SeqNumber,
    /// The acknowledgment number (meaningful with ACK).
    pub ack: SeqNumber,
    /// The control bits.
    pub flags: TcpFlags,
    /// The window field as sent (unscaled).
    pub window: u16,
    /// The options in the header.
    pub options: TcpOptions<'a>,
}

impl<'a> TcpRepr<'a> {
    /// Parses a checked segment and all its options (see [`TcpOptions::parse`]). The checksum
    /// is not verified here: it needs the IP addresses ([`TcpSegment::verify_checksum_v4`]).
    pub fn parse(segment: &TcpSegment<&'a [u8]>) -> Result<TcpRepr<'a>, WireError> {
        let buffer: &'a [u8] = segment.buffer;
        let options = TcpOptions::parse(&buffer[HEADER_LEN..segment.header_len()])?;
        Ok(TcpRepr {
            src_port: segment.src_port(),
            dst_port: segment.dst_port(),
            seq: segment.seq_number(),
            ack: segment.ack_number(),
            flags: segment.flags(),
            window: segment.window_len(),
            options,
        })
    }

    /// The header length [`TcpRepr::emit`] writes: 20 plus the padded options.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.encoded_len()
    }

    /// Writes header and options with a zero checksum and urgent pointer, and returns the
    /// header length. Fill the checksum with [`fill_checksum_v4`] once the payload is known.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let header_len = self.header_len();
        if header_len > HEADER_LEN + MAX_OPTIONS_LEN {
            return Err(WireError::Malformed);
        }
        let out = buf.get_mut(..header_len).ok_or(WireError::BufferTooSmall)?;
        self.options.emit(&mut out[HEADER_LEN..])?;
        let mut segment = TcpSegment::new_unchecked(out);
        segment.set_src_port(self.src_port);
        segment.set_dst_port(self.dst_port);
        segment.set_seq_number(self.seq);
        segment.set_ack_number(self.ack);
        segment.set_header_len(header_len);
        segment.set_flags(self.flags);
        segment.set_window_len(self.window);
        segment.set_checksum(0);
        segment.set_urgent_pointer(0);
        Ok(header_len)
    }
}

/// Computes the TCP checksum over the IPv4 pseudo-header, `header` (whose checksum field is
/// treated as zero) and `payload`, and writes it into bytes 16..18 of `header` (RFC 9293,
/// section 3.1). The header and payload may live in different buffers, as they do when the
/// payload is a separate mbuf segment. A `header` shorter than 20 bytes is left unchanged.
pub fn fill_checksum_v4(header: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) {
    fill_checksum_v4_with_payload_sum(header, src, dst, payload.len(), Checksum::of(payload));
}

/// [`fill_checksum_v4`] with the payload's sum known already (cached with the payload when it
/// was received or first sent): only the header is summed. `header` holds the whole TCP
/// header, an even number of bytes.
pub fn fill_checksum_v4_with_payload_sum(
    header: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    payload_len: usize,
    payload_sum: Checksum,
) {
    if header.len() < HEADER_LEN {
        return;
    }
    header[field::CHECKSUM].copy_from_slice(&[0, 0]);
    let length = (header.len() + payload_len) as u16;
    let mut sum = pseudo_header_v4(src, dst, PROTOCOL_TCP, length);
    sum.add_bytes(header);
    sum.add_checksum(payload_sum);
    header[field::CHECKSUM].copy_from_slice(&sum.finish().to_be_bytes());
}

/// Computes the TCP checksum over the IPv6 pseudo-header (RFC 8200, section 8.1), `header`
/// (whose checksum field is treated as zero) and `payload`, and writes it into bytes 16..18 of
/// `header`, as [`fill_checksum_v4`] does for IPv4. A `header` shorter than 20 bytes is left
/// unchanged.
pub fn fill_checksum_v6(header: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr, payload: &[u8]) {
    fill_checksum_v6_with_payload_sum(header, src, dst, payload.len(), Checksum::of(payload));
}

/// [`fill_checksum_v6`] with the payload's sum known already: only the header is summed.
/// `header` holds the whole TCP header, an even number of bytes.
pub fn fill_checksum_v6_with_payload_sum(
    header: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    payload_len: usize,
    payload_sum: Checksum,
) {
    if header.len() < HEADER_LEN {
        return;
    }
    header[field::CHECKSUM].copy_from_slice(&[0, 0]);
    let length = (header.len() + payload_len) as u32;
    let mut sum = pseudo_header_v6(src, dst, NEXT_HEADER_TCP, length);
    sum.add_bytes(header);
    sum.add_checksum(payload_sum);
    header[field::CHECKSUM].copy_from_slice(&sum.finish().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture;
    use crate::mptcp::{DataSeqWire, Dss, DssMapping, MpCapable, MpJoin, MpTcpRst};

    /// A captured frame's TCP segment with its IPv4 source and destination.
    fn segment(fixture: &str) -> (Ipv4Addr, Ipv4Addr, Vec<u8>) {
        let frame = capture::bytes(fixture);
        let (src, dst, segment) = capture::ipv4_payload(&frame);
        (src, dst, segment.to_vec())
    }

    #[test]
    fn checksums_with_a_cached_payload_sum_equal_the_direct_ones() {
        let (src, dst, bytes) = segment(capture::MP_CAPABLE_SYN);
        let mut segment_bytes = bytes.clone();
        segment_bytes.extend((0..1001u32).map(|i| (i * 13) as u8));
        let header_len = TcpSegment::new_checked(&bytes[..]).unwrap().header_len();
        let (header, payload) = segment_bytes.split_at_mut(header_len);
        let mut direct = header.to_vec();
        fill_checksum_v4(&mut direct, src, dst, payload);
        fill_checksum_v4_with_payload_sum(header, src, dst, payload.len(), Checksum::of(payload));
        assert_eq!(&direct[..], &header[..], "the same checksum field");
        let segment = TcpSegment::new_checked(&segment_bytes[..]).unwrap();
        let sum = Checksum::of(segment.payload());
        assert!(segment.verify_checksum_v4(src, dst));
        assert!(segment.verify_checksum_v4_with_payload_sum(src, dst, sum));
        let mut wrong = sum;
        wrong.add_u16(1);
        assert!(!segment.verify_checksum_v4_with_payload_sum(src, dst, wrong));
    }

    fn linux_capable(sender_key: Option<u64>, receiver_key: Option<u64>) -> MptcpOption<'static> {
        MptcpOption::MpCapable(MpCapable {
            version: 1,
            checksum_required: true,
            extensibility: false,
            no_new_subflows_to_source: false,
            hmac_sha256: true,
            sender_key,
            receiver_key,
            data_level_length: None,
            checksum: None,
        })
    }

    /// Emits `repr`, fills the checksum, and checks the result against the captured segment
    /// header byte for byte (for segments whose option order is the one `emit` uses).
    fn assert_emits_capture(fixture: &str, repr: &TcpRepr<'_>) {
        let (src, dst, bytes) = segment(fixture);
        let header_len = usize::from(bytes[12] >> 4) * 4;
        let mut out = [0u8; 60];
        assert_eq!(repr.emit(&mut out), Ok(header_len));
        assert_eq!(repr.header_len(), header_len);
        assert_eq!(&out[16..18], &[0, 0], "emit leaves the checksum zero");
        fill_checksum_v4(&mut out[..header_len], src, dst, &bytes[header_len..]);
        assert_eq!(&out[..header_len], &bytes[..header_len]);
    }

    #[test]
    fn parses_captured_syn() {
        // Flags [S], seq 3907622620, win 64240, options [mss 1460,sackOK,TS val 2251290734
        // ecr 0,nop,wscale 10,mptcp 4 capable v1 csum].
        let (src, dst, bytes) = segment(capture::MP_CAPABLE_SYN);
        let view = TcpSegment::new_checked(&bytes[..]).unwrap();
        assert_eq!(view.src_port(), 44690);
        assert_eq!(view.dst_port(), 10000);
        assert_eq!(view.seq_number(), SeqNumber(3_907_622_620));
        assert_eq!(view.ack_number(), SeqNumber(0));
        assert_eq!(view.flags(), TcpFlags::SYN);
        assert_eq!(view.window_len(), 64240);
        assert_eq!(view.header_len(), 44);
        assert_eq!(view.options().len(), 24);
        assert!(view.payload().is_empty());
        assert!(view.verify_checksum_v4(src, dst));
        assert!(!view.verify_checksum_v4(dst, Ipv4Addr::new(198, 18, 0, 3)));
        let repr = TcpRepr::parse(&view).unwrap();
        assert_eq!(repr.src_port, 44690);
        assert_eq!(repr.flags, TcpFlags::SYN);
        let options = repr.options;
        assert_eq!(options.mss, Some(1460));
        assert!(options.sack_permitted);
        assert_eq!(
            options.timestamps,
            Some(Timestamps {
                value: 2_251_290_734,
                echo_reply: 0
            })
        );
        assert_eq!(options.window_scale, Some(10));
        assert_eq!(options.mptcp, [Some(linux_capable(None, None)), None]);
        assert_eq!(options.unknown_options, 0);
        assert!(options.sack_blocks.is_empty());
    }

    #[test]
    fn emits_syn_ack_in_its_own_option_order() {
        // The captured SYN/ACK carries MSS, SACK-permitted + TS, NOP + WS, MP_CAPABLE; `emit`
        // writes MSS, NOP + WS, SACK-permitted + TS, MP_CAPABLE (same 28 bytes, other order).
        let (src, dst, bytes) = segment(capture::MP_CAPABLE_SYN_ACK);
        let view = TcpSegment::new_checked(&bytes[..]).unwrap();
        assert!(view.verify_checksum_v4(src, dst));
        let repr = TcpRepr::parse(&view).unwrap();
        assert_eq!(repr.flags, TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(repr.ack, SeqNumber(3_907_622_621));
        assert_eq!(
            repr.options.mptcp[0],
            Some(linux_capable(Some(0x4ef8_acc5_9681_e63d), None))
        );
        let expected_options = [
            0x02, 0x04, 0x05, 0xb4, // MSS 1460
            0x01, 0x03, 0x03, 0x0a, // NOP, window scale 10
            0x04, 0x02, // SACK permitted
            0x08, 0x0a, 0x22, 0xff, 0xd8, 0x48, 0x86, 0x2f, 0xf8, 0x6e, // timestamps
            0x1e, 0x0c, 0x01, 0x81, 0x4e, 0xf8, 0xac, 0xc5, 0x96, 0x81, 0xe6,
            0x3d, // MP_CAPABLE
        ];
        let mut out = [0u8; 60];
        assert_eq!(repr.emit(&mut out), Ok(52));
        assert_eq!(
            &out[..16],
            &bytes[..16],
            "ports, numbers, offset, flags, window"
        );
        assert_eq!(&out[16..20], &[0, 0, 0, 0]);
        assert_eq!(&out[20..52], &expected_options);
        let emitted = TcpSegment::new_checked(&out[..52]).unwrap();
        assert_eq!(TcpRepr::parse(&emitted), Ok(repr));
    }

    #[test]
    fn emits_captured_third_ack() {
        // [nop,nop,TS val 2251290734 ecr 587192392,mptcp 20 capable v1 csum {..}].
        let (_, _, bytes) = segment(capture::MP_CAPABLE_ACK);
        let repr = TcpRepr::parse(&TcpSegment::new_checked(&bytes[..]).unwrap()).unwrap();
        assert_eq!(
            repr.options.mptcp[0],
            Some(linux_capable(
                Some(0xfbfe_ad4d_d7d9_3e14),
                Some(0x4ef8_acc5_9681_e63d)
            ))
        );
        assert_emits_capture(capture::MP_CAPABLE_ACK, &repr);
    }

    #[test]
    fn parses_and_emits_captured_data_segment() {
        // Flags [P.], seq 1:12, length 11, options [nop,nop,TS,mptcp 24 dss ...].
        let (src, dst, bytes) = segment(capture::DSS_FIRST_DATA);
        let view = TcpSegment::new_checked(&bytes[..]).unwrap();
        assert!(view.verify_checksum_v4(src, dst));
        assert_eq!(view.payload(), b"hello mptcp");
        let repr = TcpRepr::parse(&view).unwrap();
        assert_eq!(repr.flags, TcpFlags::PSH | TcpFlags::ACK);
        assert_eq!(
            repr.options.mptcp[0],
            Some(MptcpOption::Dss(Dss {
                data_ack: Some(DataSeqWire::Bits32(1_593_742_231)),
                mapping: Some(DssMapping {
                    data_seq: DataSeqWire::Bits64(6_944_833_978_441_844_624),
                    subflow_seq: 1,
                    data_level_length: 11,
                    checksum: Some(0xfb6f),
                }),
                data_fin: false,
            }))
        );
        assert_emits_capture(capture::DSS_FIRST_DATA, &repr);
    }

    #[test]
    fn parses_and_emits_two_mptcp_options() {
        // DSS + MP_PRIO + NOP, DSS + REMOVE_ADDR, and MP_FASTCLOSE + MP_TCPRST on a RST.
        for fixture in [
            capture::MP_PRIO_BACKUP,
            capture::REMOVE_ADDR,
            capture::FASTCLOSE_RESET,
        ] {
            let (src, dst, bytes) = segment(fixture);
            let view = TcpSegment::new_checked(&bytes[..]).unwrap();
            assert!(view.verify_checksum_v4(src, dst));
            let repr = TcpRepr::parse(&view).unwrap();
            assert!(repr.options.mptcp.iter().all(Option::is_some));
            assert_emits_capture(fixture, &repr);
        }
        let (_, _, bytes) = segment(capture::FASTCLOSE_RESET);
        let repr = TcpRepr::parse(&TcpSegment::new_checked(&bytes[..]).unwrap()).unwrap();
        assert!(repr.flags.contains(TcpFlags::RST));
        assert_eq!(
            repr.options.mptcp,
            [
                Some(MptcpOption::MpFastclose {
                    receiver_key: 0x85c6_dcb0_acb9_e192
                }),
                Some(MptcpOption::MpTcpRst(MpTcpRst {
                    flags: 0,
                    reason: 0
                })),
            ]
        );
    }

    #[test]
    fn parses_captured_mp_join_handshake() {
        let (_, _, syn) = segment(capture::MP_JOIN_SYN);
        let repr = TcpRepr::parse(&TcpSegment::new_checked(&syn[..]).unwrap()).unwrap();
        assert_eq!(
            repr.options.mptcp[0],
            Some(MptcpOption::MpJoin(MpJoin::Syn {
                backup: false,
                address_id: 1,
                receiver_token: 0xcfd5_43f2,
                sender_nonce: 0x3576_6c84,
            }))
        );
        for fixture in [capture::MP_JOIN_ACK, capture::DSS_ACK32, capture::DATA_FIN] {
            let (_, _, bytes) = segment(fixture);
            let repr = TcpRepr::parse(&TcpSegment::new_checked(&bytes[..]).unwrap()).unwrap();
            assert!(repr.options.mptcp[0].is_some());
            assert_emits_capture(fixture, &repr);
        }
    }

    #[test]
    fn fill_checksum_matches_linux() {
        let (src, dst, bytes) = segment(capture::DSS_SERVER_DATA);
        let header_len = usize::from(bytes[12] >> 4) * 4;
        let mut header = bytes[..header_len].to_vec();
        header[16] ^= 0xff;
        fill_checksum_v4(&mut header, src, dst, &bytes[header_len..]);
        assert_eq!(&header[..], &bytes[..header_len]);
        // A short header is left alone rather than indexed out of bounds.
        let mut short = [7u8; 19];
        fill_checksum_v4(&mut short, src, dst, &[]);
        assert_eq!(short, [7; 19]);
    }

    fn options_of(bytes: &[u8]) -> Result<TcpOptions<'_>, WireError> {
        TcpOptions::parse(bytes)
    }

    #[test]
    fn each_option_alone() {
        // (option bytes as Linux sent them in the captured SYN, or as RFC 2018 lays out SACK;
        // the options that field holds; what `emit` writes for them, NOP-aligned).
        let mut sack_blocks = SackBlocks::default();
        sack_blocks.push(SeqNumber(0x0102_0304), SeqNumber(0x0506_0708));
        let cases: [(&[u8], TcpOptions<'static>, &[u8]); 5] = [
            (
                &[0x02, 0x04, 0x05, 0xb4],
                TcpOptions {
                    mss: Some(1460),
                    ..TcpOptions::default()
                },
                &[0x02, 0x04, 0x05, 0xb4],
            ),
            (
                &[0x03, 0x03, 0x0a],
                TcpOptions {
                    window_scale: Some(10),
                    ..TcpOptions::default()
                },
                &[0x01, 0x03, 0x03, 0x0a],
            ),
            (
                &[0x04, 0x02],
                TcpOptions {
                    sack_permitted: true,
                    ..TcpOptions::default()
                },
                &[0x01, 0x01, 0x04, 0x02],
            ),
            (
                &[0x08, 0x0a, 0x86, 0x2f, 0xf8, 0x6e, 0x00, 0x00, 0x00, 0x00],
                TcpOptions {
                    timestamps: Some(Timestamps {
                        value: 2_251_290_734,
                        echo_reply: 0,
                    }),
                    ..TcpOptions::default()
                },
                &[
                    0x01, 0x01, 0x08, 0x0a, 0x86, 0x2f, 0xf8, 0x6e, 0x00, 0x00, 0x00, 0x00,
                ],
            ),
            (
                &[0x05, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8],
                TcpOptions {
                    sack_blocks,
                    ..TcpOptions::default()
                },
                &[0x01, 0x01, 0x05, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8],
            ),
        ];
        for (bytes, expected, emitted) in cases {
            assert_eq!(options_of(bytes), Ok(expected), "{bytes:02x?}");
            for len in 1..bytes.len() {
                assert_eq!(
                    options_of(&bytes[..len]),
                    Err(WireError::Malformed),
                    "{len}-byte prefix of {bytes:02x?}"
                );
            }
            let mut out = [0u8; 40];
            assert_eq!(expected.encoded_len(), emitted.len());
            assert_eq!(expected.emit(&mut out), Ok(emitted.len()));
            assert_eq!(&out[..emitted.len()], emitted);
            assert_eq!(options_of(emitted), Ok(expected));
            assert_eq!(
                expected.emit(&mut out[..emitted.len() - 1]),
                Err(WireError::BufferTooSmall)
            );
        }
    }

    #[test]
    fn unknown_kinds_are_skipped_and_counted() {
        // Kind 34 (TFO cookie, length 2), kind 254 (experimental, length 4), then MSS.
        let options = options_of(&[34, 2, 254, 4, 0xf9, 0x89, 2, 4, 0x05, 0xb4]).unwrap();
        assert_eq!(options.unknown_options, 2);
        assert_eq!(options.mss, Some(1460));
    }

    #[test]
    fn end_of_list_stops_parsing() {
        // MSS, EOL, then bytes that would be malformed if they were read.
        let options = options_of(&[2, 4, 0x05, 0xb4, 0, 3, 0, 0xff]).unwrap();
        assert_eq!(options.mss, Some(1460));
        assert_eq!(options.window_scale, None);
    }

    #[test]
    fn bad_option_lengths_are_malformed() {
        let cases: [&[u8]; 12] = [
            &[2],                         // kind without a length octet
            &[99, 1],                     // length below 2
            &[99, 0, 0, 0],               // length 0
            &[99, 5, 0, 0],               // length past the end
            &[2, 3, 5],                   // MSS length 3
            &[2, 5, 5, 0xb4, 0],          // MSS length 5
            &[3, 4, 7, 0],                // window scale length 4
            &[4, 3, 0],                   // SACK permitted length 3
            &[8, 8, 0, 0, 0, 0, 0, 0],    // timestamps length 8
            &[5, 2],                      // SACK without a block
            &[5, 9, 0, 0, 0, 0, 0, 0, 0], // SACK length not 2 + 8n
            &[30, 5, 0x01, 0x81, 0],      // MP_CAPABLE length 5
        ];
        for bytes in cases {
            assert_eq!(options_of(bytes), Err(WireError::Malformed), "{bytes:02x?}");
        }
    }

    #[test]
    fn third_mptcp_option_is_counted() {
        let bytes = [
            30, 3, 0x51, // MP_PRIO
            30, 4, 0x40, 6, // REMOVE_ADDR
            30, 3, 0x50, // MP_PRIO again
            1, 1,
        ];
        let options = options_of(&bytes).unwrap();
        assert_eq!(
            options.mptcp,
            [
                Some(MptcpOption::MpPrio {
                    backup: true,
                    address_id: None
                }),
                Some(MptcpOption::RemoveAddr { address_ids: &[6] }),
            ]
        );
        assert_eq!(options.unknown_options, 1);
    }

    #[test]
    fn sack_blocks_round_trip() {
        // RFC 2018, section 3: NOP NOP SACK with three blocks.
        let bytes = [
            1, 1, 5, 26, 0, 0, 0x03, 0xe8, 0, 0, 0x07, 0xd0, 0, 0, 0x0b, 0xb8, 0, 0, 0x0f, 0xa0,
            0xff, 0xff, 0xff, 0xf0, 0x00, 0x00, 0x00, 0x10,
        ];
        let options = options_of(&bytes).unwrap();
        assert_eq!(
            options.sack_blocks.as_slice(),
            &[
                (SeqNumber(1000), SeqNumber(2000)),
                (SeqNumber(3000), SeqNumber(4000)),
                (SeqNumber(0xffff_fff0), SeqNumber(0x10)),
            ]
        );
        assert_eq!(options.encoded_len(), bytes.len());
        let mut out = [0u8; 40];
        assert_eq!(options.emit(&mut out), Ok(bytes.len()));
        assert_eq!(&out[..bytes.len()], &bytes);
    }

    #[test]
    fn sack_permitted_alone_is_nop_padded() {
        let options = TcpOptions {
            sack_permitted: true,
            ..TcpOptions::default()
        };
        let mut out = [0u8; 8];
        assert_eq!(options.emit(&mut out), Ok(4));
        assert_eq!(&out[..4], &[1, 1, 4, 2]);
        assert_eq!(options_of(&out[..4]), Ok(options));
    }

    #[test]
    fn encoded_len_is_what_emit_writes() {
        let mut sack_blocks = SackBlocks::default();
        sack_blocks.push(SeqNumber(1), SeqNumber(2));
        let dss = MptcpOption::Dss(Dss {
            data_ack: Some(DataSeqWire::Bits64(1)),
            mapping: None,
            data_fin: false,
        });
        let prio = MptcpOption::MpPrio {
            backup: true,
            address_id: None,
        };
        let timestamps = Some(Timestamps {
            value: 1,
            echo_reply: 2,
        });
        let cases = [
            (TcpOptions::default(), 0),
            (
                TcpOptions {
                    mss: Some(1460),
                    window_scale: Some(7),
                    sack_permitted: true,
                    timestamps,
                    ..TcpOptions::default()
                },
                20,
            ),
            (
                TcpOptions {
                    timestamps,
                    sack_blocks,
                    mptcp: [Some(dss), Some(prio)],
                    ..TcpOptions::default()
                },
                12 + 12 + 12 + 4, // 3 bytes of MP_PRIO padded by one NOP
            ),
            (
                TcpOptions {
                    mptcp: [Some(prio), None],
                    ..TcpOptions::default()
                },
                4,
            ),
        ];
        for (options, len) in cases {
            assert_eq!(options.encoded_len(), len);
            let mut out = [0xeeu8; 48];
            assert_eq!(options.emit(&mut out), Ok(len));
            assert!(out[len..].iter().all(|&byte| byte == 0xee));
            assert_eq!(options_of(&out[..len]), Ok(options));
        }
    }

    #[test]
    fn more_than_forty_option_bytes_are_refused() {
        let mut sack_blocks = SackBlocks::default();
        for n in 0..4 {
            sack_blocks.push(SeqNumber(n), SeqNumber(n + 1));
        }
        let repr = TcpRepr {
            src_port: 1,
            dst_port: 2,
            seq: SeqNumber(0),
            ack: SeqNumber(0),
            flags: TcpFlags::ACK,
            window: 0,
            options: TcpOptions {
                timestamps: Some(Timestamps {
                    value: 0,
                    echo_reply: 0,
                }),
                sack_blocks,
                ..TcpOptions::default()
            },
        };
        assert_eq!(repr.options.encoded_len(), 48);
        assert_eq!(repr.emit(&mut [0; 80]), Err(WireError::Malformed));
        let mut three = repr;
        three.options.sack_blocks = SackBlocks::default();
        for n in 0..3 {
            three
                .options
                .sack_blocks
                .push(SeqNumber(n), SeqNumber(n + 1));
        }
        assert_eq!(three.header_len(), 60);
        assert_eq!(three.emit(&mut [0; 59]), Err(WireError::BufferTooSmall));
        assert_eq!(three.emit(&mut [0; 60]), Ok(60));
    }

    #[test]
    fn header_checks() {
        let (_, _, bytes) = segment(capture::DSS_FIRST_DATA);
        let header_len = usize::from(bytes[12] >> 4) * 4;
        for len in 0..header_len {
            assert_eq!(
                TcpSegment::new_checked(&bytes[..len]),
                Err(WireError::Truncated),
                "{len} bytes"
            );
        }
        for offset in 0..5u8 {
            let mut bad = bytes.clone();
            bad[12] = offset << 4;
            assert_eq!(TcpSegment::new_checked(&bad[..]), Err(WireError::Malformed));
        }
    }

    #[test]
    fn setters_round_trip() {
        let mut buffer = [0u8; 20];
        let mut view = TcpSegment::new_unchecked(&mut buffer[..]);
        view.set_src_port(1);
        view.set_dst_port(2);
        view.set_seq_number(SeqNumber(3));
        view.set_ack_number(SeqNumber(4));
        view.set_header_len(20);
        view.set_flags(TcpFlags::FIN | TcpFlags::ACK);
        view.set_window_len(5);
        view.set_checksum(6);
        view.set_urgent_pointer(7);
        let view = TcpSegment::new_checked(&buffer[..]).unwrap();
        assert_eq!(
            (
                view.src_port(),
                view.dst_port(),
                view.seq_number(),
                view.ack_number()
            ),
            (1, 2, SeqNumber(3), SeqNumber(4))
        );
        assert_eq!(view.flags(), TcpFlags(0x11));
        assert_eq!(
            (view.window_len(), view.checksum(), view.urgent_pointer()),
            (5, 6, 7)
        );
    }
}

#[cfg(test)]
mod ipv6_checksum_tests {
    use super::*;
    use crate::capture::bytes;
    use crate::capture_ipv6::{self as capture, ipv6_payload, CLIENT, SERVER};

    fn segment(fixture: &str) -> (Ipv6Addr, Ipv6Addr, Vec<u8>) {
        let frame = bytes(fixture);
        let (src, dst, segment) = ipv6_payload(&frame);
        (src, dst, segment.to_vec())
    }

    #[test]
    fn captured_segments_verify_over_ipv6() {
        for fixture in [
            capture::TCP_SYN,
            capture::TCP_DATA,
            capture::TCP_SERVER_DATA,
        ] {
            let (src, dst, bytes) = segment(fixture);
            let view = TcpSegment::new_checked(&bytes[..]).unwrap();
            let sum = Checksum::of(view.payload());
            assert!(view.verify_checksum_v6(src, dst), "{fixture}");
            assert!(view.verify_checksum_v6_with_payload_sum(src, dst, sum));
            // Swapped addresses sum the same; another address does not.
            assert!(!view.verify_checksum_v6(src, Ipv6Addr::LOCALHOST));
            let mut wrong = sum;
            wrong.add_u16(1);
            assert!(!view.verify_checksum_v6_with_payload_sum(src, dst, wrong));
        }
        // "hello ipv6" arrived in the data segment.
        let (_, _, bytes) = segment(capture::TCP_DATA);
        assert_eq!(
            TcpSegment::new_checked(&bytes[..]).unwrap().payload(),
            b"hello ipv6"
        );
    }

    #[test]
    fn fill_checksum_v6_matches_linux() {
        // Flags [P.], cksum 0xffb7: 16 bytes of data after a 32-byte header, from the server.
        let (src, dst, bytes) = segment(capture::TCP_SERVER_DATA);
        assert_eq!((src, dst), (SERVER, CLIENT));
        let header_len = usize::from(bytes[12] >> 4) * 4;
        let (header, payload) = bytes.split_at(header_len);
        let mut direct = header.to_vec();
        direct[16] ^= 0xff;
        fill_checksum_v6(&mut direct, src, dst, payload);
        assert_eq!(&direct[..], header);
        let mut cached = header.to_vec();
        cached[17] ^= 0x55;
        fill_checksum_v6_with_payload_sum(
            &mut cached,
            src,
            dst,
            payload.len(),
            Checksum::of(payload),
        );
        assert_eq!(&cached[..], header);
        // The SYN has no payload: cksum 0x3721.
        let (src, dst, syn) = segment(capture::TCP_SYN);
        let mut header = syn.clone();
        header[16..18].copy_from_slice(&[0, 0]);
        fill_checksum_v6(&mut header, src, dst, &[]);
        assert_eq!(&header[16..18], &[0x37, 0x21]);
        // A short header is left alone rather than indexed out of bounds.
        let mut short = [7u8; 19];
        fill_checksum_v6(&mut short, src, dst, &[]);
        assert_eq!(short, [7; 19]);
    }

    #[test]
    fn ipv4_mapped_addresses_give_the_ipv4_checksum() {
        // An independent cross-check of the two pseudo-headers: with IPv4-mapped addresses
        // (::ffff:a.b.c.d, RFC 4291 section 2.5.5.2) the IPv6 pseudo-header adds two 0xffff
        // words, which are ones'-complement zero, and the 32-bit length and the next header
        // sum as IPv4's 16-bit length and protocol do: the checksums are the same.
        let (src, dst, mut bytes) = segment(capture::TCP_DATA);
        let header_len = usize::from(bytes[12] >> 4) * 4;
        let (v4_src, v4_dst) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2));
        let (header, payload) = bytes.split_at_mut(header_len);
        fill_checksum_v4(header, v4_src, v4_dst, payload);
        let view = TcpSegment::new_checked(&bytes[..]).unwrap();
        assert!(view.verify_checksum_v4(v4_src, v4_dst));
        assert!(view.verify_checksum_v6(v4_src.to_ipv6_mapped(), v4_dst.to_ipv6_mapped()));
        assert!(!view.verify_checksum_v6(src, dst));
    }
}
