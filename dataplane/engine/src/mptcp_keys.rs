//! MPTCP key material (RFC 8684, section 3.1): the token and the initial data sequence number
//! are both taken from SHA-256 of the 64-bit key.

use ring::digest;

/// The token and initial data sequence number derived from one key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyDerivation {
    /// The most significant 32 bits of SHA-256(key): names the connection (section 3.2).
    pub token: u32,
    /// The least significant 64 bits of SHA-256(key): the data sequence number of the SYN; the
    /// first data byte is IDSN + 1 (section 3.3).
    pub initial_data_seq: u64,
}

// Deliberately no Debug with the values of a key anywhere in this module: keys never reach logs.
impl core::fmt::Debug for KeyDerivation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyDerivation")
            .field("token", &format_args!("{:08x}", self.token))
            .finish_non_exhaustive()
    }
}

/// Derives token and IDSN from `key`. The key is hashed in network byte order, as Linux does
/// (net/mptcp/crypto.c `mptcp_crypto_key_sha`).
pub fn derive_from_key(key: u64) -> KeyDerivation {
    let hash = digest::digest(&digest::SHA256, &key.to_be_bytes());
    let bytes = hash.as_ref();
    let token = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let mut low = [0u8; 8];
    low.copy_from_slice(&bytes[24..32]);
    KeyDerivation {
        token,
        initial_data_seq: u64::from_be_bytes(low),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors computed independently (Python hashlib over the big-endian key bytes).
    #[test]
    fn token_and_idsn_match_independent_sha256() {
        let derived = derive_from_key(0x0102_0304_0506_0708);
        assert_eq!(derived.token, 0x6684_0dda);
        assert_eq!(derived.initial_data_seq, 0xf5a1_01d3_d29d_6f72);
        let zero = derive_from_key(0);
        assert_eq!(zero.token, 0xaf55_70f5);
        assert_eq!(zero.initial_data_seq, 0xe5b2_328d_e0e8_3dfc);
    }

    #[test]
    fn debug_output_never_shows_the_idsn() {
        let text = format!("{:?}", derive_from_key(0x0102_0304_0506_0708));
        assert!(text.contains("66840dda"));
        assert!(!text.to_lowercase().contains("f5a101d3"));
    }
}
