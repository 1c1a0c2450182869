//! Explicit congestion notification (RFC 3168; AccECN is not implemented): set up by the SYNs
//! (section 6.1.1), a CE mark on an arriving segment echoed with ECE until the peer's CWR
//! (section 6.1.3), and an ECE from the peer taken as congestion: the window is reduced as for
//! a loss, at most once per window of data, and our next new data segment says CWR (section
//! 6.1.2). Which outgoing segments carry ECT(0) in their IP header is the engine's to set from
//! [`Tcb::ecn_enabled`]: new data only, never a retransmission, a pure ACK, a SYN or a RST
//! (section 6.1.5, as Linux's `tcp_ecn_send`). Without ECN set up nothing here acts.

use super::*;

impl<P: Payload> Tcb<P> {
    /// A passive open: a SYN with both ECE and CWR asks for ECN (an "ECN-setup SYN"); it is
    /// used when our tuning allows it, and the SYN-ACK says so with ECE alone.
    pub(super) fn accept_ecn_setup(&mut self, syn_flags: TcpFlags) {
        self.negotiated.ecn = self.tuning.ecn
            && syn_flags.contains(TcpFlags::ECE)
            && syn_flags.contains(TcpFlags::CWR);
    }

    /// An active open: our SYN asked (when the tuning allows), and an "ECN-setup SYN-ACK" has
    /// ECE set and CWR clear; anything else leaves ECN off.
    pub(super) fn note_syn_ack_ecn(&mut self, syn_ack_flags: TcpFlags) {
        self.negotiated.ecn = self.tuning.ecn
            && syn_ack_flags.contains(TcpFlags::ECE)
            && !syn_ack_flags.contains(TcpFlags::CWR);
    }

    /// The ECN flags of our SYN or SYN-ACK.
    pub(super) fn syn_ecn_flags(&self) -> TcpFlags {
        match self.state {
            TcpState::SynSent if self.tuning.ecn => TcpFlags::ECE | TcpFlags::CWR,
            TcpState::SynReceived if self.negotiated.ecn => TcpFlags::ECE,
            _ => TcpFlags::default(),
        }
    }

    /// An accepted segment's ECN signals: its CWR ends our echo, its CE mark (`ce`) starts it
    /// again (a CWR segment may itself be marked), with an acknowledgement at once.
    pub(super) fn on_ecn_input(&mut self, flags: TcpFlags, ce: bool) {
        if !self.negotiated.ecn {
            return;
        }
        if flags.contains(TcpFlags::CWR) {
            self.echo_congestion = false;
        }
        if ce {
            self.counters.ecn_ce_received += 1;
            self.echo_congestion = true;
            self.ack_pending = true;
        }
    }

    /// The ECE of an acceptable acknowledgement (section 6.1.2): congestion, answered like a
    /// loss but once per window of data; not while loss recovery already reduced this window.
    pub(super) fn on_ecn_echo(&mut self) {
        if !self.negotiated.ecn || self.in_loss_recovery() || self.congestion.in_fast_recovery() {
            return;
        }
        // The peer echoes until it sees our CWR: ECEs before that, and those acknowledging no
        // more than the window that was reduced, are about the same congestion.
        if self.cwr_pending
            || self
                .ecn_reduced_until
                .is_some_and(|until| self.snd_una.distance_from(until) <= 0)
        {
            return;
        }
        let mss = self.max_payload_per_segment() as u32;
        let flight = self.snd_max.distance_from(self.snd_una).max(0) as u32;
        self.congestion
            .on_ecn_echo(self.snd_una, self.snd_max, flight, mss);
        self.ecn_reduced_until = Some(self.snd_max);
        self.cwr_pending = true;
        self.counters.ecn_window_reductions += 1;
    }

    /// The ECN flags of a synchronized segment: ECE while a CE mark waits for the peer's CWR;
    /// CWR on the first new data segment after a reduction.
    pub(super) fn segment_ecn_flags(&mut self, new_data: bool) -> TcpFlags {
        let mut flags = TcpFlags::default();
        if !self.negotiated.ecn {
            return flags;
        }
        if self.echo_congestion {
            flags = flags | TcpFlags::ECE;
        }
        if new_data && core::mem::take(&mut self.cwr_pending) {
            flags = flags | TcpFlags::CWR;
        }
        flags
    }
}
