//! Counters the workers publish and the control thread reads, without locks.
//!
//! # Why workers publish snapshots instead of bumping atomics
//!
//! A worker counts events in a plain [`StatsSnapshot`] it owns (ordinary `u64` additions, no
//! atomic instruction and no shared cache line on the per-packet path). Every few milliseconds
//! it calls [`WorkerStats::publish`], which stores the absolute values into that worker's
//! [`WorkerStats`] with `Relaxed` atomic stores. The control thread reads each worker's
//! published values with [`WorkerStats::snapshot`] and sums them through
//! [`StatsRegistry::total`].
//!
//! Consequences, accepted on purpose: a reader sees values up to one publish interval old, and
//! a snapshot taken while a worker publishes may mix counters from two publishes (each counter
//! is individually correct and never goes backwards, but two counters need not be from the
//! same instant). Both are fine for monitoring. Since each `WorkerStats` has exactly one
//! writer, a store of the absolute value is never lost the way a concurrent read-modify-write
//! could be.

use std::fmt;
use std::ops::{Add, AddAssign};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Declares every counter once and derives from that list the plain snapshot struct, the
/// atomic per-worker struct, and the code that copies between them, so the three can never
/// disagree about which counters exist.
macro_rules! define_counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// Plain copy of every counter: what a worker keeps locally and updates per packet,
        /// and what readers get back. Sums over workers with `+`.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct StatsSnapshot {
            $($(#[doc = $doc])* pub $name: u64,)*
        }

        impl StatsSnapshot {
            /// Names of all counters, in declaration (and display) order.
            pub const COUNTER_NAMES: &'static [&'static str] = &[$(stringify!($name),)*];

            /// Every counter as a `(name, value)` pair, in declaration order.
            pub fn counters(&self) -> impl Iterator<Item = (&'static str, u64)> {
                [$((stringify!($name), self.$name),)*].into_iter()
            }
        }

        impl AddAssign<&StatsSnapshot> for StatsSnapshot {
            fn add_assign(&mut self, other: &StatsSnapshot) {
                // Wrapping, like the hardware counters these mirror, so a long-lived sum
                // never panics in a debug build.
                $(self.$name = self.$name.wrapping_add(other.$name);)*
            }
        }

        /// One worker's published counters: one atomic per counter, written only by that
        /// worker through [`WorkerStats::publish`] and read by anyone. Aligned to a cache line
        /// so two workers' counters never share one.
        #[repr(align(64))]
        #[derive(Debug, Default)]
        pub struct WorkerStats {
            $($name: AtomicU64,)*
        }

        impl WorkerStats {
            /// Stores `snapshot` as this worker's current absolute counter values. Meant to be
            /// called by the owning worker only, every few milliseconds, not per packet.
            pub fn publish(&self, snapshot: &StatsSnapshot) {
                $(self.$name.store(snapshot.$name, Ordering::Relaxed);)*
            }

            /// The most recently published values.
            pub fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot {
                    $($name: self.$name.load(Ordering::Relaxed),)*
                }
            }
        }
    };
}

define_counters! {
    /// Frames received from the port.
    rx_packets,
    /// Frames handed to the port for transmission.
    tx_packets,
    /// Bytes of received frames.
    rx_bytes,
    /// Bytes of transmitted frames.
    tx_bytes,
    /// Received frames dropped because a header did not parse or a checksum was wrong.
    rx_dropped_malformed,
    /// Received frames dropped because they were addressed to someone else.
    rx_dropped_not_for_us,
    /// Received TCP segments that matched no connection or listener.
    rx_dropped_no_connection,
    /// Frames dropped because the transmit queue was full.
    tx_dropped_full,
    /// ARP requests for one of our addresses that were answered (RFC 826).
    arp_requests_answered,
    /// ARP replies received and learned.
    arp_replies_received,
    /// ICMP and ICMPv6 echo requests answered (RFC 792, RFC 4443).
    icmp_echo_answered,
    /// TCP resets sent.
    tcp_rst_sent,
    /// Client connections accepted (SYN answered).
    connections_accepted,
    /// Connections that reached ESTABLISHED.
    connections_established,
    /// Connections fully closed and released.
    connections_closed,
    /// Client connections that negotiated MPTCP.
    mptcp_connections,
    /// MPTCP connections that fell back to plain TCP (RFC 8684 section 3.7).
    mptcp_fallbacks,
    /// DSS mappings whose checksum did not verify (RFC 8684 section 3.3.1).
    dss_checksum_failures,
    /// DSS mappings that contradicted an earlier mapping or the data received.
    dss_mapping_mismatches,
    /// Segments sent again for any reason.
    retransmissions,
    /// Retransmission timer expirations (RFC 6298).
    rto_expirations,
    /// Fast retransmits on duplicate acknowledgements (RFC 5681, RFC 6582).
    fast_retransmits,
    /// Backend connections that could not be established.
    backend_connect_failures,
    /// TCP resets received.
    tcp_rst_received,
    /// Connection sides that ended because retransmissions or the handshake timed out.
    tcp_timeouts,
    /// Connection sides reset by their peer.
    tcp_resets_by_peer,
    /// TCP options of unknown kind or MPTCP options of unknown subtype (accepted, skipped).
    rx_unknown_options,
    /// Segments (or parts) outside the receive window, dropped.
    rx_dropped_out_of_window,
    /// Connection attempts refused (no listener or `max_connections` reached), answered by RST.
    connections_refused,
    /// Frames not sent because the next hop's MAC address was not (yet) resolved by ARP.
    tx_dropped_no_neighbor,
    /// Frames not built because a transmit mempool was empty.
    tx_dropped_no_mbuf,
    /// Received frames spread over several mbufs, dropped (the data room is sized so that none
    /// should be).
    rx_dropped_segmented,
    /// Replies of the engine's own (ARP, ICMP, RST) dropped while the transmit ring was full.
    tx_dropped_backlog,
    /// Segments whose ACK acknowledged data never sent or far too old (RFC 5961 section 5.2).
    rx_dropped_bad_ack,
    /// In-window RSTs and SYNs answered with a challenge ACK (RFC 5961).
    challenge_acks_sent,
    /// Client segments held back until the MP_CAPABLE with the client's key arrived.
    mptcp_withheld_before_key,
    /// MPTCP connections ended with MP_FASTCLOSE by us (a backend failed or expired).
    mptcp_fastcloses_sent,
    /// MPTCP connections the client ended with MP_FASTCLOSE.
    mptcp_fastcloses_received,
    /// MP_FASTCLOSE options ignored because they did not carry our key.
    mptcp_fastcloses_ignored,
    /// MP_JOIN SYNs refused with RST and MP_TCPRST (the reasons are counted below).
    mptcp_joins_refused,
    /// MP_JOIN SYNs received (RFC 8684 section 3.2).
    mptcp_join_syns_received,
    /// Joins whose third ACK carried the right HMAC: subflows added.
    mptcp_joins_established,
    /// Join SYNs for a token no connection has (refused, MP_TCPRST reason 1).
    mptcp_join_unknown_token,
    /// Join SYNs beyond a connection's subflow limit (refused).
    mptcp_join_over_limit,
    /// Join SYNs for a connection that takes none now (refused).
    mptcp_join_not_accepted,
    /// Joins whose third ACK carried a wrong HMAC (reset).
    mptcp_join_hmac_failures,
    /// DATA_ACKs for data never sent, ignored.
    mptcp_data_acks_beyond_sent,
    /// MP_PRIO options received.
    mptcp_prio_received,
    /// Bytes sent again on another subflow than the one that first carried them.
    mptcp_reinjected_bytes,
    /// Subflows that died or stalled while another took over their data.
    mptcp_subflow_failovers,
    /// Verified data pieces the client sent twice, trimmed.
    mptcp_data_duplicates,
    /// Verified data dropped for lack of room in the connection's receive window.
    mptcp_data_overflows,
    /// Data-level retransmission timeouts: the DATA_ACK stalled, its first bytes sent again.
    mptcp_data_retransmissions,
    /// ADD_ADDR options sent, retransmissions included (RFC 8684 section 3.4.1).
    mptcp_add_addr_sent,
    /// Our ADD_ADDRs the client echoed.
    mptcp_add_addr_echoed,
    /// Our ADD_ADDRs given up unechoed after their last transmission.
    mptcp_add_addr_unanswered,
    /// The client's ADD_ADDRs with a valid HMAC, recorded and echoed.
    mptcp_add_addr_received,
    /// The client's ADD_ADDRs with a wrong HMAC, ignored.
    mptcp_add_addr_bad_hmac,
    /// REMOVE_ADDR options sent (RFC 8684 section 3.4.2).
    mptcp_remove_addr_sent,
    /// Address IDs the client removed that named a subflow or an address it announced.
    mptcp_remove_addr_received,
    /// Address IDs the client removed that named nothing, ignored.
    mptcp_remove_addr_unknown,
    /// Subflows reset because their address was removed or withdrawn.
    mptcp_remove_addr_subflows_closed,
    /// MP_PRIO options sent (RFC 8684 section 3.3.8).
    mptcp_prio_sent,
    /// Subflows closed with MP_FAIL for a failed DSS checksum while another went on.
    mptcp_subflows_failed,
    /// MP_FAIL options sent on an ACK of the only subflow (RFC 8684 section 3.7): a checksum failed there, or the client's MP_FAIL is answered.
    mptcp_mp_fail_sent,
    /// MP_FAIL options from clients, on an ACK or on a RST.
    mptcp_mp_fail_received,
    /// Infinite mappings sent in answer to a client's MP_FAIL: the connection fell back to TCP.
    mptcp_infinite_mappings_sent,
    /// Infinite mappings from clients: the connection fell back to TCP.
    mptcp_infinite_mappings_received,
    /// Mappings that failed their checksum on the only subflow and were taken back at the TCP level (never acknowledged, never delivered), so that the client sent them again.
    mptcp_checksum_rewinds,
    /// Connections reset after a failed checksum or an MP_FAIL because neither another subflow nor an infinite-mapping fallback could carry on.
    mptcp_fail_resets,
    /// Keepalive probes sent on idle connections.
    keepalive_probes_sent,
    /// Connection sides given up because the peer answered no keepalive probe.
    keepalive_timeouts,
    /// Connection sides given up after the FIN-WAIT-2 timeout.
    fin_wait_2_timeouts,
    /// Connection sides given up after the user timeout (data unacknowledged, no progress).
    user_timeouts,
    /// Connection sides moved into the TIME-WAIT table.
    time_wait_entered,
    /// Connection sides closed at once because the TIME-WAIT table was full.
    time_wait_overflows,
    /// Backend source ports reused from TIME-WAIT (RFC 6191).
    time_wait_reused,
    /// Retransmitted FINs acknowledged from the TIME-WAIT table.
    time_wait_acks_sent,
    /// Other segments for a four-tuple in TIME-WAIT, dropped.
    rx_dropped_time_wait,
    /// IPv6 neighbour solicitations for one of our addresses answered (RFC 4861).
    neighbor_solicitations_answered,
    /// Received SACK blocks that were empty, reversed or beyond what was sent, ignored.
    rx_sack_blocks_invalid,
    /// D-SACKs received (RFC 2883): a peer got a segment twice.
    dsacks_received,
    /// Segments RACK marked lost (RFC 8985).
    rack_lost_segments,
    /// Tail loss probes sent (RFC 8985 section 7).
    tlp_probes_sent,
    /// Segments dropped by PAWS: a timestamp older than the peer's last (RFC 7323).
    rx_dropped_paws,
    /// ACKs sent by the delayed-ACK timer (RFC 9293 section 3.8.6.3).
    delayed_acks_sent,
    /// Congestion reductions undone: D-SACKs showed every retransmission of the episode
    /// needless (RFC 2883 section 5).
    spurious_reductions_undone,
    /// ICMP fragmentation-needed and packet-too-big errors that lowered an MSS (RFC 1191, RFC 8201).
    icmp_mtu_lowered,
    /// ICMP errors quoting a segment of no connection, ignored.
    icmp_errors_no_connection,
    /// ICMP errors whose quoted sequence number is not of data in flight (RFC 5927), ignored.
    icmp_errors_outside_window,
    /// Fragmentation-needed and packet-too-big errors with an MTU below the floor (IPv4 552, IPv6 1280), ignored.
    icmp_mtu_below_floor,
    /// Other ICMP errors about data in flight, and MTUs not below the one in use: soft errors, counted only.
    icmp_errors_ignored,
    /// Accepted segments marked CE on connections with ECN (RFC 3168).
    ecn_ce_received,
    /// Congestion window reductions for an ECE (RFC 3168 section 6.1.2).
    ecn_window_reductions,
    /// Times a data segment waited for the pacer (`tcp.pacing`).
    pacing_delays,
    /// Gauge: connections held now (client and backend side count as one).
    connections_open,
    /// Gauge: connection sides in the TIME-WAIT table now.
    time_wait_open,
}

impl Add for StatsSnapshot {
    type Output = StatsSnapshot;

    fn add(mut self, other: StatsSnapshot) -> StatsSnapshot {
        self += &other;
        self
    }
}

impl AddAssign for StatsSnapshot {
    fn add_assign(&mut self, other: StatsSnapshot) {
        *self += &other;
    }
}

impl std::iter::Sum for StatsSnapshot {
    fn sum<I: Iterator<Item = StatsSnapshot>>(iter: I) -> StatsSnapshot {
        iter.fold(StatsSnapshot::default(), Add::add)
    }
}

impl fmt::Display for StatsSnapshot {
    /// One `name=value` line per counter, in declaration order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in self.counters() {
            writeln!(f, "{name}={value}")?;
        }
        Ok(())
    }
}

/// The published counters of every worker, shared between the workers (each holds its own
/// `Arc<WorkerStats>`) and the control thread (which sums them).
#[derive(Debug, Clone)]
pub struct StatsRegistry {
    workers: Vec<Arc<WorkerStats>>,
}

impl StatsRegistry {
    /// A registry with `worker_count` zeroed workers, indexed `0..worker_count`.
    pub fn new(worker_count: usize) -> Self {
        Self {
            workers: (0..worker_count)
                .map(|_| Arc::new(WorkerStats::default()))
                .collect(),
        }
    }

    /// Number of workers.
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// The stats of worker `index`, for that worker to publish into; `None` if out of range.
    pub fn worker(&self, index: usize) -> Option<Arc<WorkerStats>> {
        self.workers.get(index).cloned()
    }

    /// Each worker's latest published values, in worker order.
    pub fn per_worker(&self) -> Vec<StatsSnapshot> {
        self.workers
            .iter()
            .map(|worker| worker.snapshot())
            .collect()
    }

    /// The sum over all workers of their latest published values.
    pub fn total(&self) -> StatsSnapshot {
        self.workers.iter().map(|worker| worker.snapshot()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every counter set to its 1-based position, so a crossed wire between two fields shows.
    fn distinct_values() -> StatsSnapshot {
        StatsSnapshot {
            rx_packets: 1,
            tx_packets: 2,
            rx_bytes: 3,
            tx_bytes: 4,
            rx_dropped_malformed: 5,
            rx_dropped_not_for_us: 6,
            rx_dropped_no_connection: 7,
            tx_dropped_full: 8,
            arp_requests_answered: 9,
            arp_replies_received: 10,
            icmp_echo_answered: 11,
            tcp_rst_sent: 12,
            connections_accepted: 13,
            connections_established: 14,
            connections_closed: 15,
            mptcp_connections: 16,
            mptcp_fallbacks: 17,
            dss_checksum_failures: 18,
            dss_mapping_mismatches: 19,
            retransmissions: 20,
            rto_expirations: 21,
            fast_retransmits: 22,
            backend_connect_failures: 23,
            tcp_rst_received: 24,
            tcp_timeouts: 25,
            tcp_resets_by_peer: 26,
            rx_unknown_options: 27,
            rx_dropped_out_of_window: 28,
            connections_refused: 29,
            tx_dropped_no_neighbor: 30,
            tx_dropped_no_mbuf: 31,
            rx_dropped_segmented: 32,
            tx_dropped_backlog: 33,
            rx_dropped_bad_ack: 34,
            challenge_acks_sent: 35,
            mptcp_withheld_before_key: 36,
            mptcp_fastcloses_sent: 37,
            mptcp_fastcloses_received: 38,
            mptcp_fastcloses_ignored: 39,
            mptcp_joins_refused: 40,
            mptcp_join_syns_received: 41,
            mptcp_joins_established: 42,
            mptcp_join_unknown_token: 43,
            mptcp_join_over_limit: 44,
            mptcp_join_not_accepted: 45,
            mptcp_join_hmac_failures: 46,
            mptcp_data_acks_beyond_sent: 47,
            mptcp_prio_received: 48,
            mptcp_reinjected_bytes: 49,
            mptcp_subflow_failovers: 50,
            mptcp_data_duplicates: 51,
            mptcp_data_overflows: 52,
            mptcp_data_retransmissions: 53,
            mptcp_add_addr_sent: 54,
            mptcp_add_addr_echoed: 55,
            mptcp_add_addr_unanswered: 56,
            mptcp_add_addr_received: 57,
            mptcp_add_addr_bad_hmac: 58,
            mptcp_remove_addr_sent: 59,
            mptcp_remove_addr_received: 60,
            mptcp_remove_addr_unknown: 61,
            mptcp_remove_addr_subflows_closed: 62,
            mptcp_prio_sent: 63,
            mptcp_subflows_failed: 64,
            mptcp_mp_fail_sent: 65,
            mptcp_mp_fail_received: 66,
            mptcp_infinite_mappings_sent: 67,
            mptcp_infinite_mappings_received: 68,
            mptcp_checksum_rewinds: 69,
            mptcp_fail_resets: 70,
            keepalive_probes_sent: 71,
            keepalive_timeouts: 72,
            fin_wait_2_timeouts: 73,
            user_timeouts: 74,
            time_wait_entered: 75,
            time_wait_overflows: 76,
            time_wait_reused: 77,
            time_wait_acks_sent: 78,
            rx_dropped_time_wait: 79,
            neighbor_solicitations_answered: 80,
            rx_sack_blocks_invalid: 81,
            dsacks_received: 82,
            rack_lost_segments: 83,
            tlp_probes_sent: 84,
            rx_dropped_paws: 85,
            delayed_acks_sent: 86,
            spurious_reductions_undone: 87,
            icmp_mtu_lowered: 88,
            icmp_errors_no_connection: 89,
            icmp_errors_outside_window: 90,
            icmp_mtu_below_floor: 91,
            icmp_errors_ignored: 92,
            ecn_ce_received: 93,
            ecn_window_reductions: 94,
            pacing_delays: 95,
            connections_open: 96,
            time_wait_open: 97,
        }
    }

    #[test]
    fn publish_then_snapshot_round_trips_every_counter() {
        let local = distinct_values();
        let stats = WorkerStats::default();
        stats.publish(&local);
        let published = stats.snapshot();
        assert_eq!(published, local);
        for (position, (name, value)) in published.counters().enumerate() {
            assert_eq!(value, position as u64 + 1, "counter {name}");
            assert_eq!(StatsSnapshot::COUNTER_NAMES[position], name);
        }
        assert_eq!(StatsSnapshot::COUNTER_NAMES.len(), 97);
    }

    #[test]
    fn publish_stores_absolute_values_not_increments() {
        let stats = WorkerStats::default();
        let mut local = StatsSnapshot {
            tx_packets: 10,
            ..StatsSnapshot::default()
        };
        stats.publish(&local);
        local.tx_packets = 15;
        stats.publish(&local);
        assert_eq!(stats.snapshot().tx_packets, 15);
    }

    #[test]
    fn addition_sums_each_counter_separately() {
        let first = StatsSnapshot {
            rx_packets: 3,
            tcp_rst_sent: 1,
            ..StatsSnapshot::default()
        };
        let second = StatsSnapshot {
            rx_packets: 4,
            retransmissions: 9,
            ..StatsSnapshot::default()
        };
        let sum = first + second;
        assert_eq!(sum.rx_packets, 7);
        assert_eq!(sum.tcp_rst_sent, 1);
        assert_eq!(sum.retransmissions, 9);
        assert_eq!(sum.tx_packets, 0);
    }

    #[test]
    fn registry_total_sums_all_workers() {
        let registry = StatsRegistry::new(3);
        assert_eq!(registry.worker_count(), 3);
        for index in 0..3 {
            let stats = registry.worker(index).unwrap();
            stats.publish(&StatsSnapshot {
                rx_bytes: 100 * (index as u64 + 1),
                mptcp_connections: 1,
                ..StatsSnapshot::default()
            });
        }
        assert!(registry.worker(3).is_none());
        let total = registry.total();
        assert_eq!(total.rx_bytes, 600);
        assert_eq!(total.mptcp_connections, 3);
        assert_eq!(registry.per_worker()[1].rx_bytes, 200);
    }

    #[test]
    fn publishes_from_worker_threads_are_visible_to_the_reader() {
        let registry = StatsRegistry::new(2);
        std::thread::scope(|scope| {
            for index in 0..2 {
                let stats = registry.worker(index).unwrap();
                scope.spawn(move || {
                    let mut local = StatsSnapshot::default();
                    for _ in 0..1000 {
                        local.rx_packets += 1;
                        stats.publish(&local);
                    }
                });
            }
        });
        assert_eq!(registry.total().rx_packets, 2000);
    }

    #[test]
    fn display_prints_one_name_value_line_per_counter() {
        let snapshot = StatsSnapshot {
            rx_packets: 5,
            fast_retransmits: 2,
            ..StatsSnapshot::default()
        };
        let text = snapshot.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), StatsSnapshot::COUNTER_NAMES.len());
        assert_eq!(lines[0], "rx_packets=5");
        assert!(lines.contains(&"fast_retransmits=2"));
        assert!(lines.contains(&"tx_packets=0"));
    }

    #[test]
    fn worker_stats_occupy_whole_cache_lines() {
        assert_eq!(std::mem::align_of::<WorkerStats>(), 64);
        assert_eq!(std::mem::size_of::<WorkerStats>() % 64, 0);
    }
}
