//! The client endpoint's counters. The names follow the server engine's [`crate::Counters`]
//! where the meaning is the same, so that one report reads both.

use crate::tcp::TcbCounters;

/// What the client endpoint has seen and done since it was built. Every drop of bad input is
/// counted here under its cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCounters {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    /// Frames whose Ethernet, ARP, IPv4 or TCP header did not parse or verify.
    pub rx_dropped_malformed: u64,
    /// Frames for another host, another protocol, or from another server.
    pub rx_dropped_not_for_us: u64,
    /// TCP segments for a local port with no connection (answered with RST).
    pub rx_dropped_no_connection: u64,
    /// TCP options of unknown kind or MPTCP options of unknown subtype.
    pub rx_unknown_options: u64,
    /// Frames dropped because the next hop's MAC stayed unknown.
    pub tx_dropped_no_neighbor: u64,
    /// Frames of our own (ARP, RSTs, TIME-WAIT ACKs) dropped because too many waited.
    pub tx_dropped_backlog: u64,
    pub arp_requests_answered: u64,
    pub arp_replies_received: u64,
    pub tcp_rst_sent: u64,
    pub tcp_rst_received: u64,
    /// Connections started with [`super::ClientEngine::connect`].
    pub connections_opened: u64,
    pub connections_established: u64,
    /// Connections whose slot was given back.
    pub connections_closed: u64,
    /// Connections the server accepted with MP_CAPABLE.
    pub mptcp_connections: u64,
    /// Connections that fell back to plain TCP: a SYN-ACK without MP_CAPABLE, a first answer
    /// without any MPTCP option (RFC 8684 section 3.7), or an infinite mapping.
    pub mptcp_fallbacks: u64,
    pub dss_checksum_failures: u64,
    pub dss_mapping_mismatches: u64,
    /// Server MP_FASTCLOSE options carrying our key (section 3.5).
    pub mptcp_fastcloses_received: u64,
    /// MP_FASTCLOSE options with another key, ignored.
    pub mptcp_fastcloses_ignored: u64,
    /// RSTs from the server that carried MP_TCPRST (section 3.6).
    pub mptcp_tcprst_received: u64,
    /// Keys drawn again because their token was taken by another connection here.
    pub token_collisions: u64,
    pub retransmissions: u64,
    pub rto_expirations: u64,
    pub fast_retransmits: u64,
    /// Connections that ended because retransmissions or the handshake timed out.
    pub tcp_timeouts: u64,
    /// Connections reset by the server.
    pub tcp_resets_by_peer: u64,
    pub rx_dropped_out_of_window: u64,
    pub rx_dropped_bad_ack: u64,
    pub challenge_acks_sent: u64,
    pub keepalive_probes_sent: u64,
    pub keepalive_timeouts: u64,
    pub fin_wait_2_timeouts: u64,
    pub user_timeouts: u64,
    /// Connections whose port went into TIME-WAIT when their slot was given back.
    pub time_wait_entered: u64,
    /// Ports taken over from TIME-WAIT (RFC 6191).
    pub time_wait_reused: u64,
    /// Retransmitted FINs acknowledged from TIME-WAIT.
    pub time_wait_acks_sent: u64,
    /// Other segments for a port in TIME-WAIT, dropped.
    pub rx_dropped_time_wait: u64,
    /// Events dropped because the application let too many wait.
    pub events_dropped: u64,
}

impl ClientCounters {
    /// Adds what a connection's TCB counted since `before`.
    pub(crate) fn add_tcb(&mut self, now: TcbCounters, before: TcbCounters) {
        self.retransmissions += now.retransmissions - before.retransmissions;
        self.rto_expirations += now.rto_expirations - before.rto_expirations;
        self.fast_retransmits += now.fast_retransmits - before.fast_retransmits;
        self.rx_dropped_out_of_window += now.out_of_window - before.out_of_window;
        self.rx_dropped_bad_ack += now.unacceptable_acks - before.unacceptable_acks;
        self.challenge_acks_sent += now.challenge_acks - before.challenge_acks;
        self.keepalive_probes_sent += now.keepalive_probes - before.keepalive_probes;
    }
}
