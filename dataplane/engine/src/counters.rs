//! Plain counters kept by the engine; the worker publishes them.

/// What the engine has seen and done, counted since it was created. Every drop of bad input
/// is counted here under its cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    /// Frames whose Ethernet, ARP, IPv4, ICMP or TCP header did not parse or verify.
    pub rx_dropped_malformed: u64,
    /// Frames for another host, another protocol or an address we do not own.
    pub rx_dropped_not_for_us: u64,
    /// TCP segments that matched no connection or listener.
    pub rx_dropped_no_connection: u64,
    /// TCP options of unknown kind or MPTCP options of unknown or unexpected subtype.
    pub rx_unknown_options: u64,
    /// Transmissions dropped because no next-hop MAC was known and the wait queue was full.
    pub tx_dropped_no_neighbor: u64,
    /// Replies of the engine's own (ARP, ICMP, RST, TIME-WAIT ACK) dropped because too many
    /// waited to be polled (the driver's transmit ring was full).
    pub tx_dropped_backlog: u64,
    pub arp_requests_answered: u64,
    pub arp_replies_received: u64,
    /// ICMP and ICMPv6 echo requests answered (RFC 792, RFC 4443 section 4.2).
    pub icmp_echo_answered: u64,
    pub tcp_rst_sent: u64,
    pub tcp_rst_received: u64,
    pub connections_accepted: u64,
    pub connections_established: u64,
    pub connections_closed: u64,
    pub connections_refused: u64,
    pub mptcp_connections: u64,
    pub mptcp_fallbacks: u64,
    pub dss_checksum_failures: u64,
    pub dss_mapping_mismatches: u64,
    pub retransmissions: u64,
    pub rto_expirations: u64,
    pub fast_retransmits: u64,
    pub backend_connect_failures: u64,
    /// Connection sides that ended because retransmissions or the handshake timed out.
    pub tcp_timeouts: u64,
    /// Connection sides reset by their peer.
    pub tcp_resets_by_peer: u64,
    /// Segments dropped because they fell outside the receive window or buffer.
    pub rx_dropped_out_of_window: u64,
    /// Segments dropped because their ACK acknowledged data never sent, or was older than
    /// the send window allows (RFC 5961 section 5.2).
    pub rx_dropped_bad_ack: u64,
    /// In-window RSTs and SYNs that did not match, answered with a challenge ACK (RFC 5961).
    pub challenge_acks_sent: u64,
    /// Client segments held back unacknowledged because the MP_CAPABLE carrying the client's
    /// key had not arrived yet (the client sends it again; RFC 8684 section 3.1).
    pub mptcp_withheld_before_key: u64,
    /// MPTCP connections we ended with MP_FASTCLOSE (RFC 8684 section 3.5).
    pub mptcp_fastcloses_sent: u64,
    /// MPTCP connections the client ended with an MP_FASTCLOSE carrying our key.
    pub mptcp_fastcloses_received: u64,
    /// MP_FASTCLOSE options ignored because they did not carry our key.
    pub mptcp_fastcloses_ignored: u64,
    /// MP_JOIN SYNs answered with RST and MP_TCPRST, for any of the reasons below.
    pub mptcp_joins_refused: u64,
    /// MP_JOIN SYNs received (RFC 8684 section 3.2).
    pub mptcp_join_syns_received: u64,
    /// Joins whose third ACK carried the right HMAC: subflows added to a connection.
    pub mptcp_joins_established: u64,
    /// Join SYNs for a token no connection of ours has.
    pub mptcp_join_unknown_token: u64,
    /// Join SYNs beyond a connection's subflow limit (`mptcp.max_subflows`).
    pub mptcp_join_over_limit: u64,
    /// Join SYNs for a connection that takes none (not fully established, fallen back, closing).
    pub mptcp_join_not_accepted: u64,
    /// Joins whose third ACK carried a wrong HMAC, reset.
    pub mptcp_join_hmac_failures: u64,
    /// DATA_ACKs for data never sent, ignored (RFC 8684 section 3.3.2).
    pub mptcp_data_acks_beyond_sent: u64,
    /// MP_PRIO options received (section 3.3.8).
    pub mptcp_prio_received: u64,
    /// Bytes sent again on another subflow than the one that first carried them.
    pub mptcp_reinjected_bytes: u64,
    /// Subflows that died or stalled while another took over their data.
    pub mptcp_subflow_failovers: u64,
    /// Verified data pieces the client sent twice (its reinjections), trimmed.
    pub mptcp_data_duplicates: u64,
    /// Verified data dropped for lack of room in the connection-level receive window.
    pub mptcp_data_overflows: u64,
    /// Data-level retransmission timeouts (RFC 8684 section 3.3.6): the DATA_ACK stalled
    /// while the subflows had delivered everything, so its first bytes were sent again.
    pub mptcp_data_retransmissions: u64,
    /// ADD_ADDR options we sent, retransmissions included (RFC 8684 section 3.4.1).
    pub mptcp_add_addr_sent: u64,
    /// Our ADD_ADDRs the client echoed.
    pub mptcp_add_addr_echoed: u64,
    /// Our ADD_ADDRs given up unechoed after their last transmission.
    pub mptcp_add_addr_unanswered: u64,
    /// The client's ADD_ADDRs with a valid HMAC, recorded and echoed.
    pub mptcp_add_addr_received: u64,
    /// The client's ADD_ADDRs with a wrong HMAC, ignored.
    pub mptcp_add_addr_bad_hmac: u64,
    /// REMOVE_ADDR options we sent (section 3.4.2).
    pub mptcp_remove_addr_sent: u64,
    /// Address IDs the client removed that named a subflow or an address it announced.
    pub mptcp_remove_addr_received: u64,
    /// Address IDs the client removed that named nothing, ignored.
    pub mptcp_remove_addr_unknown: u64,
    /// Subflows reset because their address was removed (by the client or withdrawn by us).
    pub mptcp_remove_addr_subflows_closed: u64,
    /// MP_PRIO options we sent (section 3.3.8).
    pub mptcp_prio_sent: u64,
    /// Subflows closed with MP_FAIL (RFC 8684 section 3.7): a DSS checksum failed on them while
    /// another subflow went on; their unverified bytes were dropped, never delivered.
    pub mptcp_subflows_failed: u64,
    /// MP_FAIL options sent on an ACK of the only subflow (RFC 8684 section 3.7): a checksum failed there, or the client's MP_FAIL is answered.
    pub mptcp_mp_fail_sent: u64,
    /// MP_FAIL options from clients, on an ACK or on a RST.
    pub mptcp_mp_fail_received: u64,
    /// Infinite mappings sent in answer to a client's MP_FAIL: the connection fell back to TCP.
    pub mptcp_infinite_mappings_sent: u64,
    /// Infinite mappings from clients: the connection fell back to TCP.
    pub mptcp_infinite_mappings_received: u64,
    /// Mappings that failed their checksum on the only subflow and were taken back at the TCP level (never acknowledged, never delivered), so that the client sent them again.
    pub mptcp_checksum_rewinds: u64,
    /// Connections reset after a failed checksum or an MP_FAIL because neither another subflow nor an infinite-mapping fallback could carry on.
    pub mptcp_fail_resets: u64,
    pub keepalive_probes_sent: u64,
    /// Connection sides given up because an idle peer answered no keepalive probe.
    pub keepalive_timeouts: u64,
    /// Connection sides given up after FIN-WAIT-2 lasted longer than its timeout.
    pub fin_wait_2_timeouts: u64,
    /// Connection sides given up after data went unacknowledged for the user timeout.
    pub user_timeouts: u64,
    /// Connection sides moved to the TIME-WAIT table when their connection was released.
    pub time_wait_entered: u64,
    /// Connection sides closed at once because the TIME-WAIT table was full.
    pub time_wait_overflows: u64,
    /// Backend source ports taken over from a TIME-WAIT entry (RFC 6191).
    pub time_wait_reused: u64,
    /// Retransmitted FINs acknowledged from the TIME-WAIT table.
    pub time_wait_acks_sent: u64,
    /// Other segments for a four-tuple in TIME-WAIT, dropped.
    pub rx_dropped_time_wait: u64,
    /// IPv6 neighbour solicitations for one of our addresses answered with an advertisement
    /// (RFC 4861 section 7.2.4).
    pub neighbor_solicitations_answered: u64,
    /// Received SACK blocks that were empty, reversed or beyond what was sent: ignored
    /// (RFC 2018).
    pub rx_sack_blocks_invalid: u64,
    /// D-SACKs received (RFC 2883): a peer got a segment twice.
    pub dsacks_received: u64,
    /// Segments RACK marked lost (RFC 8985 section 6).
    pub rack_lost_segments: u64,
    /// Tail loss probes sent (RFC 8985 section 7).
    pub tlp_probes_sent: u64,
    /// Segments dropped by PAWS: a timestamp older than the peer's last (RFC 7323 section 5).
    pub rx_dropped_paws: u64,
    /// ACKs sent by the delayed-ACK timer (RFC 9293 section 3.8.6.3): received data that no
    /// second segment and no data of ours acknowledged within 40 ms.
    pub delayed_acks_sent: u64,
    /// Congestion reductions undone because D-SACKs showed every retransmission of their
    /// episode needless (RFC 2883 section 5).
    pub spurious_reductions_undone: u64,
    /// ICMP fragmentation-needed and ICMPv6 packet-too-big errors that lowered a connection
    /// side's MSS (RFC 1191, RFC 8201).
    pub icmp_mtu_lowered: u64,
    /// ICMP and ICMPv6 errors quoting a TCP segment of no connection of ours: ignored.
    pub icmp_errors_no_connection: u64,
    /// ICMP and ICMPv6 errors whose quoted sequence number is not of data in flight
    /// (SND.UNA..=SND.MAX, RFC 5927 section 4.1): ignored.
    pub icmp_errors_outside_window: u64,
    /// Fragmentation-needed and packet-too-big errors naming an MTU below the floor (IPv4 552,
    /// Linux's `min_pmtu`; IPv6 1280): ignored.
    pub icmp_mtu_below_floor: u64,
    /// Other ICMP errors about a connection's data in flight (unreachable, time exceeded,
    /// parameter problem; and MTUs not below the one in use): counted, nothing else, as soft
    /// errors (RFC 5461).
    pub icmp_errors_ignored: u64,
    /// Accepted segments whose IP header said CE, on connections that set ECN up (RFC 3168).
    pub ecn_ce_received: u64,
    /// Congestion window reductions for an ECE from a peer (RFC 3168 section 6.1.2).
    pub ecn_window_reductions: u64,
    /// Times a data segment waited for the pacer (`tcp.pacing`): it would have left sooner
    /// than the congestion window over the RTT allows.
    pub pacing_delays: u64,
}
