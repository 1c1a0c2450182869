//! The one error type of the wire crate: a value, never a panic.

use core::fmt;

/// Why a header or option could not be parsed or emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The buffer is shorter than the header or option claims.
    Truncated,
    /// A length, offset or field value is impossible (e.g. a TCP data offset below 5).
    Malformed,
    /// A checksum did not verify.
    Checksum,
    /// A well-formed header of a kind this crate does not handle (e.g. IPv4 options on a
    /// fragment, an ARP for another hardware type).
    Unsupported,
    /// The output buffer is too small for the header being emitted.
    BufferTooSmall,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            WireError::Truncated => "truncated",
            WireError::Malformed => "malformed",
            WireError::Checksum => "bad checksum",
            WireError::Unsupported => "unsupported",
            WireError::BufferTooSmall => "output buffer too small",
        };
        f.write_str(text)
    }
}

impl std::error::Error for WireError {}
