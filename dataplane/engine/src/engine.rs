//! The engine: interfaces, neighbours, connections and the proxy relay, driven by frames in and
//! frames out. (API skeleton; the body is being written.)

use crate::{Counters, EngineConfig, Instant, Payload, Transmit};
use rand_core::RngCore;

/// Where MPTCP tokens are registered so that they stay unique across workers
/// (RFC 8684, section 3.2: a token names one connection on this host).
pub trait TokenRegistry {
    /// Claims `token` for the connection the engine numbers `connection_id`; false when the
    /// token is already in use (the engine then draws another key).
    fn try_register(&mut self, token: u32, connection_id: u64) -> bool;
    /// Releases a token claimed earlier.
    fn release(&mut self, token: u32);
}

/// One worker's TCP/MPTCP engine. See the crate documentation for the call order.
pub struct Engine<P: Payload, R: RngCore, T: TokenRegistry> {
    config: EngineConfig,
    rng: R,
    tokens: T,
    counters: Counters,
    _payload: core::marker::PhantomData<P>,
}

impl<P: Payload, R: RngCore, T: TokenRegistry> core::fmt::Debug for Engine<P, R, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl<P: Payload, R: RngCore, T: TokenRegistry> Engine<P, R, T> {
    pub fn new(config: EngineConfig, rng: R, tokens: T) -> Self {
        Engine {
            config,
            rng,
            tokens,
            counters: Counters::default(),
            _payload: core::marker::PhantomData,
        }
    }

    /// A frame received on interface `interface` (an index into `EngineConfig::interfaces`).
    pub fn handle_frame(&mut self, now: Instant, interface: usize, frame: P) {
        let _ = (
            now,
            interface,
            frame,
            &self.config,
            &mut self.rng,
            &mut self.tokens,
        );
        self.counters.rx_frames += 1;
    }

    /// The next frame to send, if any.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit<P>> {
        let _ = now;
        None
    }

    /// The earliest instant at which [`Engine::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Connections currently held (client side plus backend side count as one).
    pub fn connection_count(&self) -> usize {
        0
    }
}
