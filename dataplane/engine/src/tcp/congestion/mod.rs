//! Congestion control of one TCP connection (or MPTCP subflow), behind one trait.
//!
//! [`CongestionControl`] is the set of calls the control block makes: on an acknowledgement of
//! new data, on the third duplicate acknowledgement and every further one, on a retransmission
//! timeout, and the window queries. The control block holds a [`Congestion`], an enum over the
//! implementations, so that choosing the algorithm in the configuration costs neither an
//! allocation nor an indirect call per packet. (The TCB has no restart after idle, so the trait
//! has none; CUBIC, when it comes, adds a variant and an implementation of the trait.)
//!
//! - [`NewReno`]: decoupled (RFC 5681, RFC 6582), the default and the backend side's.
//! - [`Lia`]: the Linked Increases Algorithm of RFC 6356, coupled across an MPTCP connection's
//!   subflows.
//! - [`Olia`]: the Opportunistic Linked Increases Algorithm (Khalili et al.,
//!   draft-khalili-mptcp-congestion-control-05), coupled likewise.
//!
//! Coupling needs every subflow of the connection, which a TCB does not know (issue 7: a
//! subflow's TCB knows its connection by handle only). So the connection layer gathers each
//! subflow's [`CongestionSample`] ([`Tcb::congestion_sample`]), computes the connection-wide
//! quantities with the pure [`ConnectionCoupling::from_samples`], and hands every subflow its
//! own [`CongestionCoupling`] snapshot ([`Tcb::set_congestion_coupling`]). It should do so again
//! whenever a subflow's window or RTT changed (once per received burst is plenty): the coupled
//! algorithms use the latest snapshot until the next. Without a snapshot (one subflow, or a
//! plain TCP client) LIA and OLIA behave exactly as NewReno.

mod coupling;
mod cubic;
mod lia;
mod new_reno;
mod olia;

#[cfg(test)]
mod tests;

use core::time::Duration;

use mpterm_wire::SeqNumber;

use super::Tcb;
use crate::config::CongestionAlgorithm;
use crate::Payload;
pub use coupling::{
    CongestionCoupling, CongestionSample, ConnectionCoupling, OliaEpsilon, ALPHA_SCALE_SHIFT,
};
pub use cubic::Cubic;
pub use lia::Lia;
pub use new_reno::NewReno;
pub use olia::Olia;

/// The calls the control block makes into congestion control. Windows and counts are in bytes;
/// `mss` is the payload one segment carries.
pub trait CongestionControl {
    /// The congestion window (during fast recovery, inflated by the duplicates).
    fn window(&self) -> u32;

    fn slow_start_threshold(&self) -> u32;

    fn in_fast_recovery(&self) -> bool;

    /// New data acknowledged up to `ack`, `acked` bytes; `flight` is what is still
    /// outstanding. Returns true on a partial acknowledgement during fast recovery, when the
    /// caller must retransmit the next unacknowledged segment (RFC 6582 section 3.2 step 5).
    fn on_ack(&mut self, ack: SeqNumber, acked: u32, flight: u32, mss: u32) -> bool;

    /// Three duplicate acknowledgements (RFC 6582 section 3.2 steps 1 and 2). Returns true
    /// when fast retransmit starts; false when the duplicates belong to a hole already
    /// recovered.
    fn enter_fast_recovery(
        &mut self,
        snd_una: SeqNumber,
        snd_max: SeqNumber,
        flight: u32,
        mss: u32,
    ) -> bool;

    /// A further duplicate acknowledgement during fast recovery (step 4).
    fn inflate(&mut self, mss: u32);

    /// The retransmission timer expired (RFC 5681 section 3.1 equation 4, RFC 6582 section 4).
    fn on_timeout(&mut self, flight: u32, mss: u32, snd_max: SeqNumber);

    /// The window this subflow counts for in its connection's coupling: during fast recovery
    /// the slow-start threshold, since the inflated window measures duplicates, not the path.
    fn window_for_coupling(&self) -> u32 {
        if self.in_fast_recovery() {
            self.slow_start_threshold()
        } else {
            self.window()
        }
    }

    /// Bytes acknowledged between the last two losses or since the last one, whichever is
    /// more: OLIA's measure of how good a path is. Algorithms that do not need it say 0.
    fn loss_interval_bytes(&self) -> u64 {
        0
    }

    /// The peer echoed a congestion mark (RFC 3168 section 6.1.2: ECE), at most once per window
    /// of data: the window is reduced as for a loss, with nothing to retransmit. By default a
    /// fast recovery entered and at once left by an acknowledgement of everything sent, which
    /// leaves the window at the new slow-start threshold.
    fn on_ecn_echo(&mut self, snd_una: SeqNumber, snd_max: SeqNumber, flight: u32, mss: u32) {
        if self.enter_fast_recovery(snd_una, snd_max, flight, mss) {
            self.on_ack(snd_max, 0, flight, mss);
        }
    }

    /// SACK loss recovery ended, its recovery point acknowledged: the window is the
    /// slow-start threshold (RFC 6937 section 3, PRR's end; Linux's `tcp_end_cwnd_reduction`),
    /// not NewReno's min(ssthresh, FlightSize + SMSS) (RFC 6582 section 3.2 step 6), which
    /// guards duplicate-ACK recovery against a burst: PRR kept the flight near the threshold,
    /// and pacing spreads what follows.
    fn on_loss_recovery_end(&mut self);

    /// The connection-wide quantities a coupled algorithm needs; decoupled ones ignore them.
    /// `None` takes a snapshot back (the subflow is alone again).
    fn set_coupling(&mut self, _coupling: Option<CongestionCoupling>) {}
}

/// The congestion control a control block holds: one variant per algorithm, so that dispatch
/// is a `match`, not a call through a pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Congestion {
    NewReno(NewReno),
    Lia(Lia),
    Olia(Olia),
    Cubic(Cubic),
}

/// Calls `$call` on whichever algorithm `$congestion` holds, bound to `$algorithm`.
macro_rules! dispatch {
    ($congestion:expr, $algorithm:ident => $call:expr) => {
        match $congestion {
            Congestion::NewReno($algorithm) => $call,
            Congestion::Lia($algorithm) => $call,
            Congestion::Olia($algorithm) => $call,
            Congestion::Cubic($algorithm) => $call,
        }
    };
}

// The methods mirror `CongestionControl` as inherent ones so that the control block needs no
// trait in scope, and each is a `match` the compiler can inline.
impl Congestion {
    /// A fresh state of `algorithm` for segments of `mss` bytes.
    pub fn new(algorithm: CongestionAlgorithm, mss: u16) -> Self {
        match algorithm {
            CongestionAlgorithm::NewReno => Congestion::NewReno(NewReno::new(mss)),
            CongestionAlgorithm::Lia => Congestion::Lia(Lia::new(mss)),
            CongestionAlgorithm::Olia => Congestion::Olia(Olia::new(mss)),
            CongestionAlgorithm::Cubic => Congestion::Cubic(Cubic::new(mss)),
        }
    }

    pub fn algorithm(&self) -> CongestionAlgorithm {
        match self {
            Congestion::NewReno(_) => CongestionAlgorithm::NewReno,
            Congestion::Lia(_) => CongestionAlgorithm::Lia,
            Congestion::Olia(_) => CongestionAlgorithm::Olia,
            Congestion::Cubic(_) => CongestionAlgorithm::Cubic,
        }
    }

    #[inline]
    pub fn window(&self) -> u32 {
        dispatch!(self, algorithm => algorithm.window())
    }

    #[inline]
    pub fn slow_start_threshold(&self) -> u32 {
        dispatch!(self, algorithm => algorithm.slow_start_threshold())
    }

    #[inline]
    pub fn in_fast_recovery(&self) -> bool {
        dispatch!(self, algorithm => algorithm.in_fast_recovery())
    }

    /// See [`CongestionControl::on_ack`].
    #[inline]
    pub fn on_ack(&mut self, ack: SeqNumber, acked: u32, flight: u32, mss: u32) -> bool {
        dispatch!(self, algorithm => algorithm.on_ack(ack, acked, flight, mss))
    }

    /// [`CongestionControl::on_ack`] with the clock and smoothed RTT, which CUBIC's growth
    /// needs (the others ignore them).
    #[inline]
    pub fn on_ack_at(
        &mut self,
        now: crate::Instant,
        smoothed_rtt: Option<Duration>,
        ack: SeqNumber,
        acked: u32,
        flight: u32,
        mss: u32,
    ) -> bool {
        match self {
            Congestion::Cubic(cubic) => cubic.on_ack_at(now, smoothed_rtt, ack, acked, flight, mss),
            other => other.on_ack(ack, acked, flight, mss),
        }
    }

    /// An RTT sample (HyStart++ in CUBIC's slow start; the others ignore it).
    #[inline]
    pub fn on_rtt_sample(&mut self, rtt: Duration) {
        if let Congestion::Cubic(cubic) = self {
            cubic.on_rtt_sample(rtt);
        }
    }

    /// See [`CongestionControl::enter_fast_recovery`].
    #[inline]
    pub fn enter_fast_recovery(
        &mut self,
        snd_una: SeqNumber,
        snd_max: SeqNumber,
        flight: u32,
        mss: u32,
    ) -> bool {
        dispatch!(self, algorithm => algorithm.enter_fast_recovery(snd_una, snd_max, flight, mss))
    }

    /// See [`CongestionControl::on_ecn_echo`].
    pub fn on_ecn_echo(&mut self, snd_una: SeqNumber, snd_max: SeqNumber, flight: u32, mss: u32) {
        dispatch!(self, algorithm => algorithm.on_ecn_echo(snd_una, snd_max, flight, mss))
    }

    #[inline]
    pub fn inflate(&mut self, mss: u32) {
        dispatch!(self, algorithm => algorithm.inflate(mss))
    }

    #[inline]
    pub fn on_timeout(&mut self, flight: u32, mss: u32, snd_max: SeqNumber) {
        dispatch!(self, algorithm => algorithm.on_timeout(flight, mss, snd_max))
    }

    /// See [`CongestionControl::on_loss_recovery_end`].
    pub fn on_loss_recovery_end(&mut self) {
        dispatch!(self, algorithm => algorithm.on_loss_recovery_end())
    }

    pub fn window_for_coupling(&self) -> u32 {
        dispatch!(self, algorithm => algorithm.window_for_coupling())
    }

    pub fn loss_interval_bytes(&self) -> u64 {
        dispatch!(self, algorithm => algorithm.loss_interval_bytes())
    }

    pub fn set_coupling(&mut self, coupling: Option<CongestionCoupling>) {
        dispatch!(self, algorithm => algorithm.set_coupling(coupling))
    }
}

/// The control block's face toward the connection layer's coupling: what it reads of every
/// subflow, and where it hands each its snapshot back.
impl<P: Payload> Tcb<P> {
    /// The congestion window in bytes.
    pub fn congestion_window(&self) -> u32 {
        self.congestion.window()
    }

    /// The smoothed round-trip time (RFC 6298 SRTT), once measured.
    pub fn smoothed_rtt(&self) -> Option<Duration> {
        self.rtt.smoothed()
    }

    pub fn congestion_algorithm(&self) -> CongestionAlgorithm {
        self.congestion.algorithm()
    }

    /// What this subflow contributes to its connection's coupled congestion control; `None`
    /// before the handshake completed or the first RTT sample, when it is not counted (RFC 6356
    /// section 3 sums over the subflows that carry data).
    pub fn congestion_sample(&self) -> Option<CongestionSample> {
        if !self.is_synchronized() {
            return None;
        }
        Some(CongestionSample {
            window: self.congestion.window_for_coupling(),
            smoothed_rtt: self.rtt.smoothed()?,
            loss_interval_bytes: self.congestion.loss_interval_bytes(),
        })
    }

    /// Hands this subflow its share of the connection's coupling
    /// ([`ConnectionCoupling::for_subflow`]); `None` when it is the only one left. Decoupled
    /// algorithms ignore it. The handshake's end starts congestion control afresh, so the
    /// connection layer couples a subflow once it is established.
    pub fn set_congestion_coupling(&mut self, coupling: Option<CongestionCoupling>) {
        self.congestion.set_coupling(coupling);
    }
}
