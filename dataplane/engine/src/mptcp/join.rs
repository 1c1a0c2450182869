//! MP_JOIN, responder side (RFC 8684 section 3.2): the HMACs that authenticate a new subflow
//! and the state of a joining subflow until its third ACK verified.
//!
//! The responder (us, host B) answers the SYN's nonce with its own and the leftmost 64 bits of
//! HMAC-SHA256(Key-B + Key-A, R-B + R-A); the initiator's third ACK carries the leftmost 160
//! bits of HMAC-SHA256(Key-A + Key-B, R-A + R-B). Keys and nonces are concatenated in network
//! byte order, as Linux does (`subflow_generate_hmac` in net/mptcp/subflow.c).

use ring::hmac;

/// Bytes of the HMAC the third ACK carries (section 3.2: the leftmost 160 bits).
pub const JOIN_ACK_HMAC_LEN: usize = 20;

/// HMAC-SHA256 keyed by `key_1 + key_2` over `nonce_1 + nonce_2`.
fn join_hmac(key_1: u64, key_2: u64, nonce_1: u32, nonce_2: u32) -> hmac::Tag {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&key_1.to_be_bytes());
    key[8..].copy_from_slice(&key_2.to_be_bytes());
    let mut message = [0u8; 8];
    message[..4].copy_from_slice(&nonce_1.to_be_bytes());
    message[4..].copy_from_slice(&nonce_2.to_be_bytes());
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), &message)
}

/// The truncated HMAC of our SYN-ACK: we are B, the client A.
pub fn syn_ack_hmac(local_key: u64, remote_key: u64, local_nonce: u32, remote_nonce: u32) -> u64 {
    let tag = join_hmac(local_key, remote_key, local_nonce, remote_nonce);
    let mut leftmost = [0u8; 8];
    leftmost.copy_from_slice(&tag.as_ref()[..8]);
    u64::from_be_bytes(leftmost)
}

/// The HMAC the client's third ACK must carry.
pub fn third_ack_hmac(
    local_key: u64,
    remote_key: u64,
    local_nonce: u32,
    remote_nonce: u32,
) -> [u8; JOIN_ACK_HMAC_LEN] {
    let tag = join_hmac(remote_key, local_key, remote_nonce, local_nonce);
    let mut leftmost = [0u8; JOIN_ACK_HMAC_LEN];
    leftmost.copy_from_slice(&tag.as_ref()[..JOIN_ACK_HMAC_LEN]);
    leftmost
}

/// A subflow that arrived with MP_JOIN and has not yet proved, with the third ACK's HMAC,
/// that its initiator knows the connection's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinHandshake {
    pub local_nonce: u32,
    pub remote_nonce: u32,
    /// Our address ID on this subflow (section 3.4: 0 is the initial subflow's address).
    pub local_address_id: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors computed independently (Python `hmac.new(key, msg, hashlib.sha256)` over the
    /// big-endian concatenations).
    #[test]
    fn hmacs_match_independent_hmac_sha256() {
        let (key_b, key_a) = (0x0102_0304_0506_0708_u64, 0x1112_1314_1516_1718_u64);
        let (nonce_b, nonce_a) = (0xaabb_ccdd_u32, 0x0011_2233_u32);
        assert_eq!(
            syn_ack_hmac(key_b, key_a, nonce_b, nonce_a),
            0x0a2b_3913_8126_2a88
        );
        assert_eq!(
            third_ack_hmac(key_b, key_a, nonce_b, nonce_a),
            [
                0x02, 0xf0, 0x37, 0xa7, 0x62, 0xef, 0x49, 0x1e, 0xa5, 0x4d, 0x58, 0x43, 0x3d, 0xed,
                0x59, 0xcc, 0xfd, 0x88, 0xa7, 0x40
            ]
        );
    }

    #[test]
    fn each_direction_has_its_own_hmac() {
        // B's SYN-ACK HMAC is keyed Key-B + Key-A; the third ACK's, Key-A + Key-B: swapping
        // the roles gives the other one, and the two differ.
        let (key_b, key_a, nonce_b, nonce_a) = (1, 2, 3, 4);
        let syn_ack = syn_ack_hmac(key_b, key_a, nonce_b, nonce_a);
        let third_ack = third_ack_hmac(key_b, key_a, nonce_b, nonce_a);
        assert_ne!(third_ack[..8], syn_ack.to_be_bytes()[..]);
        let as_if_a_responded = syn_ack_hmac(key_a, key_b, nonce_a, nonce_b);
        assert_eq!(third_ack[..8], as_if_a_responded.to_be_bytes()[..]);
    }
}
