//! Seeded data for byte-exact checks that costs almost nothing per byte.
//!
//! A [`Pattern`] owns one buffer of [`PERIOD`] pseudo-random bytes (ChaCha8 from a seed) plus
//! [`MAX_CHUNK_LEN`] bytes of slack that repeat its beginning. Stream `s` is the buffer read
//! in a circle from phase `s * STREAM_STRIDE`: the byte at offset `o` of stream `s` is
//! `buf[(o + s * STREAM_STRIDE) % PERIOD]`. Because of the slack, any run of up to
//! [`MAX_CHUNK_LEN`] bytes of any stream is one contiguous slice of the buffer, so producing
//! data is a slice ([`Pattern::chunk`]) and checking it is one `memcmp` ([`Pattern::verify`]).
//!
//! Two more things make the pattern fit a benchmark where neither side may be the bottleneck:
//! - [`Pattern::identify`] tells a receiver which stream a connection carries from its first
//!   [`IDENTIFY_LEN`] bytes (the buffer is drawn so that every phase starts with a distinct
//!   8-byte window), so sender and receiver need not agree on stream numbers beforehand;
//! - [`Pattern::chunk_sum`] gives the ones'-complement sum (RFC 1071) of any chunk in constant
//!   time from a prefix sum, so a sender fills the TCP checksum of a pattern segment without
//!   reading its payload again.
//!
//! Streams are numbered modulo [`STREAMS`]: stream `s` and stream `s + STREAMS` are the same
//! bytes.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// Bytes in one period of every stream.
pub const PERIOD: usize = 1 << 16;
/// The longest run [`Pattern::chunk`] returns in one slice: one jumbo frame's worth (MTU 9000),
/// more than any TCP segment mpterm sends.
pub const MAX_CHUNK_LEN: usize = 9000;
/// Distinct streams. `STREAM_STRIDE` is odd, hence coprime with [`PERIOD`], so every stream
/// below this number starts at a phase of its own.
pub const STREAMS: u64 = PERIOD as u64;
/// Bytes from the start of a stream that [`Pattern::identify`] needs.
pub const IDENTIFY_LEN: usize = 8;

/// How far apart (in bytes of the buffer) consecutive streams start. Odd, and far from 0 and
/// from `PERIOD / 2`, so that streams with nearby numbers do not overlap for long.
const STREAM_STRIDE: u64 = 40_503;
/// `STREAM_STRIDE`'s multiplicative inverse modulo [`PERIOD`]: phase to stream number.
const STREAM_STRIDE_INVERSE: u64 = inverse_mod_period(STREAM_STRIDE);
const PHASE_MASK: u64 = PERIOD as u64 - 1;
const BUFFER_LEN: usize = PERIOD + MAX_CHUNK_LEN;

/// Newton's iteration for the inverse of an odd number modulo 2^16: each step doubles the
/// number of correct low bits, starting from 3 (any odd `x` is its own inverse modulo 8).
const fn inverse_mod_period(odd: u64) -> u64 {
    let mut inverse = odd;
    let mut step = 0;
    while step < 4 {
        inverse = inverse.wrapping_mul(2u64.wrapping_sub(odd.wrapping_mul(inverse)));
        step += 1;
    }
    inverse & PHASE_MASK
}

/// Seeded stream data; see the module documentation. About 1 MiB in all (the buffer, its
/// prefix sums and the identification index), built once.
pub struct Pattern {
    seed: u64,
    /// `PERIOD` random bytes, then the first `MAX_CHUNK_LEN` of them again.
    buffer: Box<[u8]>,
    /// `word_sums[k]`: the sum of the big-endian 16-bit words at buffer offsets `0, 2, ..,
    /// 2k - 2`. Fewer than 2^16 words of at most 0xffff each, so a `u32` never overflows.
    word_sums: Box<[u32]>,
    /// `(first 8 bytes as a big-endian u64, phase)` for every phase, sorted by the bytes.
    index: Box<[(u64, u16)]>,
}

impl core::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pattern").field("seed", &self.seed).finish()
    }
}

impl Pattern {
    /// Builds the pattern of `seed`. The same seed gives the same bytes on every machine.
    pub fn new(seed: u64) -> Pattern {
        // A draw whose 8-byte windows are not all distinct cannot identify every stream; the
        // chance is about 2^-33, and then the next draw of the same generator is taken, so the
        // result still depends on the seed alone.
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        loop {
            let mut buffer = vec![0u8; BUFFER_LEN].into_boxed_slice();
            rng.fill_bytes(&mut buffer[..PERIOD]);
            let (head, slack) = buffer.split_at_mut(PERIOD);
            slack.copy_from_slice(&head[..MAX_CHUNK_LEN]);
            if let Some(index) = build_index(&buffer) {
                let word_sums = build_word_sums(&buffer);
                return Pattern {
                    seed,
                    buffer,
                    word_sums,
                    index,
                };
            }
        }
    }

    /// The seed this pattern was built from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The bytes of `stream` from `offset` on, `len` of them but at most [`MAX_CHUNK_LEN`]:
    /// a slice of the buffer, no copy. Callers that need more take several chunks.
    pub fn chunk(&self, stream: u64, offset: u64, len: usize) -> &[u8] {
        let start = phase(stream, offset);
        &self.buffer[start..start + len.min(MAX_CHUNK_LEN)]
    }

    /// The whole buffer: [`PERIOD`] bytes and the slack. A sender that hands out payload by
    /// reference (the pipeline's client) keeps one copy of it and slices it at
    /// [`Pattern::position`].
    pub fn as_bytes(&self) -> &[u8] {
        &self.buffer
    }

    /// Where in [`Pattern::as_bytes`] the bytes of `stream` from `offset` on start; the next
    /// [`MAX_CHUNK_LEN`] bytes from there are the stream's.
    pub fn position(&self, stream: u64, offset: u64) -> usize {
        phase(stream, offset)
    }

    /// True when `bytes` are exactly the bytes of `stream` from `offset` on (any length).
    pub fn verify(&self, stream: u64, offset: u64, bytes: &[u8]) -> bool {
        let mut at = offset;
        for piece in bytes.chunks(MAX_CHUNK_LEN) {
            if piece != self.chunk(stream, at, piece.len()) {
                return false;
            }
            at = at.wrapping_add(piece.len() as u64);
        }
        true
    }

    /// Fills `out` with the bytes of `stream` from `offset` on (any length).
    pub fn copy_to(&self, stream: u64, offset: u64, out: &mut [u8]) {
        let mut at = offset;
        for piece in out.chunks_mut(MAX_CHUNK_LEN) {
            piece.copy_from_slice(self.chunk(stream, at, piece.len()));
            at = at.wrapping_add(piece.len() as u64);
        }
    }

    /// The stream (below [`STREAMS`]) whose first bytes are `first`, which must hold at least
    /// [`IDENTIFY_LEN`] bytes from offset 0 of the stream; `None` when it holds fewer or no
    /// stream starts that way. Only the first [`IDENTIFY_LEN`] bytes are looked at: check the
    /// rest with [`Pattern::verify`].
    pub fn identify(&self, first: &[u8]) -> Option<u64> {
        let window: [u8; IDENTIFY_LEN] = first.get(..IDENTIFY_LEN)?.try_into().ok()?;
        let key = u64::from_be_bytes(window);
        let at = self
            .index
            .binary_search_by_key(&key, |&(window, _)| window)
            .ok()?;
        let phase = u64::from(self.index[at].1);
        Some(phase.wrapping_mul(STREAM_STRIDE_INVERSE) & PHASE_MASK)
    }

    /// The ones'-complement sum (RFC 1071), folded to 16 bits and not complemented, of
    /// `self.chunk(stream, offset, len)` taken as big-endian 16-bit words from its first byte
    /// (an odd last byte is the high half of a word). Constant time: it reads two prefix sums.
    /// Added with `Checksum::add_u16` after an even number of other bytes, it gives the same
    /// checksum as adding the chunk's bytes.
    pub fn chunk_sum(&self, stream: u64, offset: u64, len: usize) -> u16 {
        let len = len.min(MAX_CHUNK_LEN);
        if len == 0 {
            return 0;
        }
        let start = phase(stream, offset);
        let end = start + len;
        // Sum in the buffer's own word alignment: whole words inside [start, end), then the
        // partial words at either end.
        let first_whole = start.div_ceil(2);
        let after_whole = (end / 2).max(first_whole);
        let mut sum = u64::from(self.word_sums[after_whole] - self.word_sums[first_whole]);
        if start % 2 == 1 {
            sum += u64::from(self.buffer[start]);
        }
        if end % 2 == 1 {
            sum += u64::from(self.buffer[end - 1]) << 8;
        }
        let folded = fold_to_16(sum);
        // A chunk that starts at an odd buffer offset has every byte in the other half of its
        // word; the sum of swapped words is the swapped sum (RFC 1071, section 2(B)).
        if start % 2 == 1 {
            folded.swap_bytes()
        } else {
            folded
        }
    }
}

/// The buffer offset where byte `offset` of `stream` lies. Wrapping arithmetic is exact here:
/// `PERIOD` divides 2^64.
fn phase(stream: u64, offset: u64) -> usize {
    (offset.wrapping_add(stream.wrapping_mul(STREAM_STRIDE)) & PHASE_MASK) as usize
}

fn fold_to_16(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The sorted first-8-bytes index, or `None` when two phases start alike.
fn build_index(buffer: &[u8]) -> Option<Box<[(u64, u16)]>> {
    let mut index: Vec<(u64, u16)> = (0..PERIOD)
        .map(|phase| {
            let mut window = [0u8; IDENTIFY_LEN];
            window.copy_from_slice(&buffer[phase..phase + IDENTIFY_LEN]);
            (u64::from_be_bytes(window), phase as u16)
        })
        .collect();
    index.sort_unstable();
    let distinct = index.windows(2).all(|pair| pair[0].0 != pair[1].0);
    distinct.then(|| index.into_boxed_slice())
}

fn build_word_sums(buffer: &[u8]) -> Box<[u32]> {
    let mut sums = Vec::with_capacity(buffer.len() / 2 + 1);
    let mut running = 0u32;
    sums.push(running);
    for word in buffer.chunks_exact(2) {
        running += u32::from(u16::from_be_bytes([word[0], word[1]]));
        sums.push(running);
    }
    sums.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stride_inverse_is_an_inverse() {
        assert_eq!(STREAM_STRIDE % 2, 1);
        assert_eq!(
            STREAM_STRIDE.wrapping_mul(STREAM_STRIDE_INVERSE) & PHASE_MASK,
            1
        );
    }

    #[test]
    fn the_slack_repeats_the_start() {
        let pattern = Pattern::new(1);
        assert_eq!(
            &pattern.buffer[PERIOD..],
            &pattern.buffer[..MAX_CHUNK_LEN],
            "a chunk that crosses the end of the period reads on from its start"
        );
    }
}
