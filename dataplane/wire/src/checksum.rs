//! The Internet checksum (RFC 1071) and the pseudo-headers that feed it: the IPv4 pseudo-header
//! of TCP (RFC 9293, section 3.1) and the DSS pseudo-header of MPTCP (RFC 8684, section 3.3.1).
//!
//! [`Checksum`] is a streaming accumulator. It remembers whether it has consumed an odd number
//! of bytes, so a payload that arrives in chunks of any length (one DSS mapping spans several
//! TCP segments, and segments split anywhere) sums to the same value as the whole payload at
//! once.
//!
//! Usage contract:
//! * Generating: start from the pseudo-header with a zero checksum field (or from
//!   [`Checksum::new`] and write zero into the header's checksum field), add every byte that
//!   the checksum covers, then write [`Checksum::finish`] into the checksum field.
//! * Verifying: start from the pseudo-header with the *received* checksum in its checksum
//!   field (or sum a header that still holds the received checksum), add the same bytes, then
//!   the message is intact iff [`Checksum::finish`] returns 0.

use core::net::Ipv4Addr;

/// A running ones'-complement sum of 16-bit big-endian words (RFC 1071, section 2).
///
/// The value is kept unfolded in a `u64` between calls (folded back to 32 bits after each
/// call so it can never overflow), and folding happens once in [`Checksum::folded`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checksum {
    /// Sum of big-endian 16-bit words, not yet folded.
    sum: u64,
    /// True after an odd number of bytes: the next byte is the low half of a word.
    odd: bool,
}

impl Checksum {
    /// An empty sum (the ones'-complement sum of no words is zero).
    pub fn new() -> Checksum {
        Checksum::default()
    }

    /// Adds bytes as if they were appended to every byte added before, whatever the parity of
    /// the length so far.
    pub fn add_bytes(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        if self.odd {
            if let Some((&low, tail)) = rest.split_first() {
                self.sum += u64::from(low);
                self.odd = false;
                rest = tail;
            }
        }
        self.sum += sum_words(rest);
        if rest.len() % 2 == 1 {
            self.odd = true;
        }
        self.sum = fold_to_32(self.sum);
    }

    /// Adds a 16-bit value as one big-endian word. It is placed at the current byte position,
    /// exactly as `add_bytes(&value.to_be_bytes())` would.
    pub fn add_u16(&mut self, value: u16) {
        self.add_bytes(&value.to_be_bytes());
    }

    /// Adds a 32-bit value in network byte order.
    pub fn add_u32(&mut self, value: u32) {
        self.add_bytes(&value.to_be_bytes());
    }

    /// Adds a 64-bit value in network byte order.
    pub fn add_u64(&mut self, value: u64) {
        self.add_bytes(&value.to_be_bytes());
    }

    /// Merges another sum that covers bytes following (at an even offset) the ones in `self`.
    pub fn add_checksum(&mut self, other: Checksum) {
        self.sum = fold_to_32(self.sum + other.sum);
        self.odd ^= other.odd;
    }

    /// The sum folded to 16 bits with end-around carry (RFC 1071, section 4.1), not
    /// complemented.
    pub fn folded(&self) -> u16 {
        let mut sum = self.sum;
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    /// The ones' complement of the folded sum: the value written into a checksum field, and 0
    /// when verifying a message that includes a correct checksum.
    pub fn finish(&self) -> u16 {
        !self.folded()
    }
}

/// Folds a sum so that it fits in 32 bits again; the ones'-complement value is unchanged
/// because 2^32 and 1 are congruent modulo 0xffff.
fn fold_to_32(sum: u64) -> u64 {
    let folded = (sum & 0xffff_ffff) + (sum >> 32);
    (folded & 0xffff_ffff) + (folded >> 32)
}

/// Sums `bytes` as big-endian 16-bit words, the last odd byte as the high half of a word.
///
/// The ones'-complement sum is independent of byte order (RFC 1071, section 2(B)), so the bulk
/// loop adds native-endian 64-bit words into a `u128` (no carry is ever lost: fewer than 2^64
/// additions) and the result is swapped to network order once at the end. Two accumulators
/// let the CPU overlap the additions of consecutive words.
fn sum_words(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(16);
    let mut first: u128 = 0;
    let mut second: u128 = 0;
    for chunk in &mut chunks {
        let (a, b) = chunk.split_at(8);
        first += u128::from(u64::from_ne_bytes(a.try_into().unwrap_or([0; 8])));
        second += u128::from(u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])));
    }
    let total = first + second;
    let mut native = fold_u128(total);
    let mut tail = chunks.remainder();
    while tail.len() >= 2 {
        native += u64::from(u16::from_ne_bytes([tail[0], tail[1]]));
        tail = &tail[2..];
    }
    if let [last] = tail {
        native += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    let mut sum = native;
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    u64::from(u16::from_be(sum as u16))
}

/// Folds a 128-bit sum of 64-bit words into at most 34 bits, preserving the value modulo 0xffff.
fn fold_u128(total: u128) -> u64 {
    let high = (total >> 64) as u64;
    let low = total as u64;
    (low & 0xffff_ffff) + (low >> 32) + (high & 0xffff_ffff) + (high >> 32)
}

/// The Internet checksum of a buffer: the complemented ones'-complement sum (RFC 1071).
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum = Checksum::new();
    sum.add_bytes(data);
    sum.finish()
}

/// The IPv4 pseudo-header that TCP and UDP checksums cover (RFC 9293, section 3.1): source,
/// destination, zero, protocol, and the length of the TCP header plus payload.
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> Checksum {
    let mut sum = Checksum::new();
    sum.add_bytes(&src.octets());
    sum.add_bytes(&dst.octets());
    sum.add_u16(u16::from(protocol));
    sum.add_u16(length);
    sum
}

/// The DSS checksum pseudo-header (RFC 8684, section 3.3.1): the 64-bit data sequence number
/// (always the full 64 bits, whatever width the option carries), the 32-bit subflow sequence
/// number relative to the subflow's initial sequence number, the 16-bit data-level length and
/// the 16-bit checksum field. Linux builds the same 16-byte header in `__mptcp_make_csum`
/// (net/mptcp/options.c) and verifies in `validate_data_csum` (net/mptcp/subflow.c).
///
/// To generate, pass `checksum_field = 0`, add the mapping's payload bytes and write
/// [`Checksum::finish`]. To verify, pass the received checksum, add the payload bytes and
/// accept iff [`Checksum::finish`] is 0.
pub fn dss_pseudo_header(
    data_seq: u64,
    subflow_seq: u32,
    data_level_length: u16,
    checksum_field: u16,
) -> Checksum {
    let mut sum = Checksum::new();
    sum.add_u64(data_seq);
    sum.add_u32(subflow_seq);
    sum.add_u16(data_level_length);
    sum.add_u16(checksum_field);
    sum
}
