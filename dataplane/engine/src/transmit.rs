//! What the engine hands to the driver for transmission.

/// Room for Ethernet (14) + IPv4 (20) + TCP with full options (60) and then some.
pub const MAX_HEADER_LEN: usize = 128;

/// The headers of one outgoing frame, built by the engine.
#[derive(Clone, Copy)]
pub struct HeaderBytes {
    bytes: [u8; MAX_HEADER_LEN],
    len: u8,
}

impl HeaderBytes {
    pub(crate) fn new() -> HeaderBytes {
        HeaderBytes {
            bytes: [0; MAX_HEADER_LEN],
            len: 0,
        }
    }

    pub(crate) fn buffer_mut(&mut self) -> &mut [u8; MAX_HEADER_LEN] {
        &mut self.bytes
    }

    pub(crate) fn set_len(&mut self, len: usize) {
        debug_assert!(len <= MAX_HEADER_LEN);
        self.len = len.min(MAX_HEADER_LEN) as u8;
    }

    /// Writes the Ethernet destination (the first six bytes), once the next hop is resolved.
    pub(crate) fn set_destination_mac(&mut self, mac: [u8; 6]) {
        self.bytes[..6].copy_from_slice(&mac);
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl core::fmt::Debug for HeaderBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "HeaderBytes({} bytes)", self.len)
    }
}

/// One frame to send: `header` followed by `payload` on interface `interface`. The driver
/// either copies the payload behind the header or chains the payload's buffer.
#[derive(Debug, Clone)]
pub struct Transmit<P> {
    pub interface: usize,
    pub header: HeaderBytes,
    pub payload: Option<P>,
}

impl<P: crate::Payload> Transmit<P> {
    /// Length of the whole frame.
    pub fn len(&self) -> usize {
        self.header.as_slice().len() + self.payload.as_ref().map_or(0, |p| p.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
