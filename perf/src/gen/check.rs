//! Checking a received stream against the pattern: identified from its first 8 bytes, then
//! compared byte for byte. The generator checks its downloads with it, `serve` its uploads.

use super::record::FailureReason;
use crate::pattern::{Pattern, IDENTIFY_LEN};

/// The check of one received stream: the stream, once identified, and how far it verified.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamCheck {
    pub stream: Option<u64>,
    /// The first bytes, gathered until there are [`IDENTIFY_LEN`] of them.
    head: [u8; IDENTIFY_LEN],
    pub head_len: usize,
    /// Bytes that matched the stream, from its start.
    pub verified: u64,
}

impl StreamCheck {
    /// Checks the next received bytes; returns how many more bytes are now verified.
    pub fn take(&mut self, pattern: &Pattern, mut bytes: &[u8]) -> Result<u64, FailureReason> {
        let before = self.verified;
        let stream = match self.stream {
            Some(stream) => stream,
            None => {
                let take = (IDENTIFY_LEN - self.head_len).min(bytes.len());
                self.head[self.head_len..self.head_len + take].copy_from_slice(&bytes[..take]);
                self.head_len += take;
                bytes = &bytes[take..];
                if self.head_len < IDENTIFY_LEN {
                    return Ok(0);
                }
                // `identify` matched all of the first 8 bytes: they are verified.
                let stream = pattern
                    .identify(&self.head)
                    .ok_or(FailureReason::Mismatch {
                        offset: 0,
                        stream: None,
                    })?;
                self.stream = Some(stream);
                self.verified = IDENTIFY_LEN as u64;
                stream
            }
        };
        if !pattern.verify(stream, self.verified, bytes) {
            return Err(FailureReason::Mismatch {
                offset: self.verified,
                stream: Some(stream),
            });
        }
        self.verified += bytes.len() as u64;
        Ok(self.verified - before)
    }

    /// Bytes received, verified or not yet identified.
    pub fn received(&self) -> u64 {
        if self.stream.is_some() {
            self.verified
        } else {
            self.head_len as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_is_identified_from_its_first_bytes_however_they_arrive() {
        let pattern = Pattern::new(9);
        let mut expected = vec![0u8; 20_000];
        pattern.copy_to(4242, 0, &mut expected);
        let mut check = StreamCheck::default();
        let mut verified = 0;
        for piece in [
            &expected[..3],
            &expected[3..5],
            &expected[5..9000],
            &expected[9000..],
        ] {
            verified += check.take(&pattern, piece).expect("the pattern's bytes");
        }
        assert_eq!(check.stream, Some(4242));
        assert_eq!(verified, 20_000);
        assert_eq!(check.received(), 20_000);
    }

    #[test]
    fn a_changed_byte_or_an_unknown_start_fails() {
        let pattern = Pattern::new(9);
        let mut bytes = vec![0u8; 4000];
        pattern.copy_to(17, 0, &mut bytes);
        bytes[3000] ^= 1;
        let mut check = StreamCheck::default();
        assert_eq!(check.take(&pattern, &bytes[..2000]), Ok(2000));
        assert_eq!(
            check.take(&pattern, &bytes[2000..]),
            Err(FailureReason::Mismatch {
                offset: 2000,
                stream: Some(17)
            })
        );
        let mut unknown = StreamCheck::default();
        let garbage = [0xffu8; 8];
        let outcome = unknown.take(&pattern, &garbage);
        // Practically never a stream start; if it is one, the next check catches it.
        if pattern.identify(&garbage).is_none() {
            assert_eq!(
                outcome,
                Err(FailureReason::Mismatch {
                    offset: 0,
                    stream: None
                })
            );
        }
        let mut short = StreamCheck::default();
        assert_eq!(short.take(&pattern, &bytes[..5]), Ok(0));
        assert_eq!(short.received(), 5, "held until 8 bytes arrived");
    }
}
