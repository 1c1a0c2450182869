//! The MPTCP token table: which worker and connection own each local token.
//!
//! RFC 8684 section 2.1 and 3.1: each MPTCP connection is identified locally by a 32-bit token
//! derived from the key this host sent in MP_CAPABLE (the most significant 32 bits of
//! SHA-256(key); the derivation lives in the engine crate). Section 3.2: an MP_JOIN SYN names
//! the connection it wants to join only by the receiver's token, and can arrive on any path and
//! therefore at any worker, so the mapping from token to owner must be shared by every worker.
//! Section 3.1 also asks that a token be unique among this host's connections: a key whose
//! token is already in use must be replaced by a fresh key, which is what
//! [`TokenTable::try_insert`] failing with [`TokenInUse`] tells the caller to do.
//!
//! # Cost model
//!
//! The table is touched only on connection setup (insert), teardown (remove) and MP_JOIN SYN
//! handling (lookup), never for a data packet, so a lock is acceptable here. It is still
//! split into shards, selected by the token's low bits, each behind its own `Mutex` and on its
//! own cache line, so that workers setting up connections at the same time rarely wait for
//! one another. Tokens are SHA-256 output, so the low bits spread evenly over the shards.
//!
//! The maps use the standard library's `HashMap` with its randomly seeded SipHash: a peer
//! chooses its own keys and could grind them for tokens that collide in a weaker,
//! predictable hash, and the per-lookup cost difference does not matter off the data path.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use thiserror::Error;

/// Default number of shards: a power of two comfortably above the worker counts this
/// appliance runs with, so two workers rarely contend for the same shard.
pub const DEFAULT_SHARDS: usize = 16;

/// The connection that owns a token: which worker runs it and its index in that worker's
/// connection table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionOwner {
    /// Index of the worker (one per core) that runs the connection.
    pub worker: u16,
    /// The connection's identifier inside that worker (the engine's 64-bit connection id, which
    /// is never reused within a worker's lifetime).
    pub connection: u64,
}

impl fmt::Display for ConnectionOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "worker {} connection {}", self.worker, self.connection)
    }
}

/// The token is already owned by another connection; RFC 8684 section 3.1 requires the caller
/// to pick a new key (and so a new token) instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("MPTCP token {token:#010x} is already owned by {owner}")]
pub struct TokenInUse {
    /// The token that could not be inserted.
    pub token: u32,
    /// The connection that already owns it.
    pub owner: ConnectionOwner,
}

/// One shard on its own cache line, so that locking one shard never invalidates the line
/// another core is using for a neighbouring shard.
#[repr(align(64))]
#[derive(Debug, Default)]
struct Shard {
    owners: Mutex<HashMap<u32, ConnectionOwner>>,
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, HashMap<u32, ConnectionOwner>> {
        // A poisoned lock means another thread panicked while holding it. Every critical
        // section here is a single map call that leaves the map consistent, so the data is
        // still valid and the table keeps working rather than spreading the panic.
        self.owners.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Map from local MPTCP token to the connection that owns it, shared by all workers
/// (typically as `Arc<TokenTable>`). Every method takes `&self` and is safe to call from any
/// thread.
#[derive(Debug)]
pub struct TokenTable {
    shards: Box<[Shard]>,
    shard_mask: u32,
}

impl Default for TokenTable {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenTable {
    /// An empty table with [`DEFAULT_SHARDS`] shards.
    pub fn new() -> Self {
        Self::with_shards(DEFAULT_SHARDS)
    }

    /// An empty table with `shards` shards, rounded up to a power of two (at least one) so a
    /// shard is picked with a mask.
    pub fn with_shards(shards: usize) -> Self {
        let shards = shards.clamp(1, 1 << 16).next_power_of_two();
        let shard_mask = u32::try_from(shards - 1).unwrap_or(u32::MAX);
        Self {
            shards: (0..shards).map(|_| Shard::default()).collect(),
            shard_mask,
        }
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    fn shard(&self, token: u32) -> &Shard {
        // The mask keeps the index below the shard count, which is a power of two.
        &self.shards[(token & self.shard_mask) as usize]
    }

    /// Records `owner` as the owner of `token`, unless some connection already owns it.
    /// Check and insert happen under one lock, so of several concurrent inserts of one token
    /// exactly one succeeds.
    pub fn try_insert(&self, token: u32, owner: ConnectionOwner) -> Result<(), TokenInUse> {
        let mut owners = self.shard(token).lock();
        match owners.entry(token) {
            std::collections::hash_map::Entry::Occupied(existing) => Err(TokenInUse {
                token,
                owner: *existing.get(),
            }),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(owner);
                Ok(())
            }
        }
    }

    /// Forgets `token`, returning the owner it had. Called when the connection that inserted
    /// it is torn down, after which the token may be handed out again.
    pub fn remove(&self, token: u32) -> Option<ConnectionOwner> {
        self.shard(token).lock().remove(&token)
    }

    /// The owner of `token`, if any: how an MP_JOIN SYN finds the connection it joins
    /// (RFC 8684 section 3.2).
    pub fn lookup(&self, token: u32) -> Option<ConnectionOwner> {
        self.shard(token).lock().get(&token).copied()
    }

    /// Number of tokens in the table. Shards are counted one after another, so while other
    /// threads insert or remove, the sum is approximate (it is meant for statistics).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().len()).sum()
    }

    /// Whether the table holds no token (with the same caveat as [`TokenTable::len`]).
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|shard| shard.lock().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    fn owner(worker: u16, connection: u64) -> ConnectionOwner {
        ConnectionOwner { worker, connection }
    }

    #[test]
    fn insert_then_lookup_returns_the_owner() {
        let table = TokenTable::new();
        assert!(table.is_empty());
        table.try_insert(0xdead_beef, owner(1, 7)).unwrap();
        table.try_insert(0x0000_0001, owner(0, 3)).unwrap();
        assert_eq!(table.lookup(0xdead_beef), Some(owner(1, 7)));
        assert_eq!(table.lookup(0x0000_0001), Some(owner(0, 3)));
        assert_eq!(table.lookup(0x0000_0002), None);
        assert_eq!(table.len(), 2);
        assert!(!table.is_empty());
    }

    #[test]
    fn second_insert_of_a_token_fails_and_keeps_the_first_owner() {
        let table = TokenTable::new();
        table.try_insert(42, owner(0, 1)).unwrap();
        let error = table.try_insert(42, owner(1, 2)).unwrap_err();
        assert_eq!(
            error,
            TokenInUse {
                token: 42,
                owner: owner(0, 1)
            }
        );
        assert_eq!(table.lookup(42), Some(owner(0, 1)));
        assert_eq!(table.len(), 1);
        assert_eq!(
            error.to_string(),
            "MPTCP token 0x0000002a is already owned by worker 0 connection 1"
        );
    }

    #[test]
    fn removal_frees_the_token_for_reuse() {
        let table = TokenTable::new();
        table.try_insert(99, owner(0, 1)).unwrap();
        assert_eq!(table.remove(99), Some(owner(0, 1)));
        assert_eq!(table.lookup(99), None);
        assert_eq!(table.remove(99), None);
        assert!(table.is_empty());
        table.try_insert(99, owner(1, 5)).unwrap();
        assert_eq!(table.lookup(99), Some(owner(1, 5)));
    }

    #[test]
    fn tokens_in_the_same_shard_stay_distinct() {
        let table = TokenTable::with_shards(4);
        assert_eq!(table.shard_count(), 4);
        // These all have the same two low bits and so land in one shard.
        for (index, token) in [0x10_u32, 0x20, 0x30, 0x1000_0000].into_iter().enumerate() {
            table.try_insert(token, owner(0, index as u64)).unwrap();
        }
        assert_eq!(table.lookup(0x20), Some(owner(0, 1)));
        assert_eq!(table.lookup(0x1000_0000), Some(owner(0, 3)));
        assert_eq!(table.len(), 4);
    }

    #[test]
    fn shard_count_is_rounded_to_a_power_of_two() {
        assert_eq!(TokenTable::with_shards(0).shard_count(), 1);
        assert_eq!(TokenTable::with_shards(5).shard_count(), 8);
        assert_eq!(TokenTable::new().shard_count(), DEFAULT_SHARDS);
    }

    #[test]
    fn concurrent_inserts_never_give_one_token_two_owners() {
        const THREADS: u16 = 4;
        const TOKENS: u32 = 5_000;
        let table = Arc::new(TokenTable::with_shards(4));
        let start = Arc::new(Barrier::new(usize::from(THREADS)));
        let handles: Vec<_> = (0..THREADS)
            .map(|worker| {
                let table = Arc::clone(&table);
                let start = Arc::clone(&start);
                std::thread::spawn(move || {
                    start.wait();
                    // Every thread races for the same TOKENS distinct tokens (an odd
                    // multiplier is a bijection on u32), each starting at a different place.
                    let first_step = u32::from(worker) * (TOKENS / u32::from(THREADS));
                    let mut won = Vec::new();
                    for offset in 0..TOKENS {
                        let step = (first_step + offset) % TOKENS;
                        let token = step.wrapping_mul(2_654_435_761);
                        if table
                            .try_insert(token, owner(worker, u64::from(step)))
                            .is_ok()
                        {
                            won.push(token);
                        }
                    }
                    (worker, won)
                })
            })
            .collect();
        let mut winner_by_token = HashMap::new();
        for handle in handles {
            let (worker, won) = handle.join().unwrap();
            for token in won {
                let previous = winner_by_token.insert(token, worker);
                assert_eq!(previous, None, "token {token:#x} was won twice");
                assert_eq!(table.lookup(token).map(|owner| owner.worker), Some(worker));
            }
        }
        assert_eq!(
            winner_by_token.len(),
            TOKENS as usize,
            "some token was never won"
        );
        assert_eq!(table.len(), TOKENS as usize);
    }
}
