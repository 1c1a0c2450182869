//! Tests of the worker's pieces that need no DPDK: the token adapter, the configuration
//! conversion and the counter mapping.

use super::*;

/// The configuration the tests use: two interfaces, one proxy, non-default tuning.
pub(crate) const TEST_CONFIG: &str = r#"
[eal]
args = ["--no-huge"]

[[interface]]
name = "client-side"
port = "net_af_packet0"
address = "198.18.200.2/24"
gateway = "198.18.200.254"
mtu = 1400

[[interface]]
name = "backend-side"
port = "net_af_packet1"
address = "198.19.200.1/24"

[mptcp]
checksum = "off"

[tcp]
receive_buffer = 131072
send_buffer = 262144
initial_rto_ms = 700
min_rto_ms = 150
time_wait_ms = 5000
max_connections = 1234

[[proxy]]
listen = "198.18.200.2:5000"
backend = "198.19.200.3:6000"
"#;

#[test]
fn engine_config_takes_every_setting_from_the_appliance_config() {
    let config = mpterm_control::Config::from_toml_str(TEST_CONFIG).unwrap();
    let macs = [[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]];
    let engine = engine_config(&config, &macs);

    assert_eq!(engine.interfaces.len(), 2);
    let client = &engine.interfaces[0];
    assert_eq!(client.mac, macs[0]);
    assert_eq!(
        client.address,
        "198.18.200.2".parse::<std::net::Ipv4Addr>().unwrap()
    );
    assert_eq!(client.prefix_len, 24);
    assert_eq!(client.gateway, Some("198.18.200.254".parse().unwrap()));
    assert_eq!(client.mtu, 1400);
    let backend = &engine.interfaces[1];
    assert_eq!(backend.mac, macs[1]);
    assert_eq!(backend.gateway, None);
    assert_eq!(backend.mtu, 1500);

    assert_eq!(engine.proxies.len(), 1);
    assert_eq!(
        engine.proxies[0].listen,
        "198.18.200.2:5000".parse().unwrap()
    );
    assert_eq!(
        engine.proxies[0].backend,
        "198.19.200.3:6000".parse().unwrap()
    );

    for tuning in [&engine.client_tcp, &engine.backend_tcp] {
        assert_eq!(tuning.receive_buffer, 131_072);
        assert_eq!(tuning.send_buffer, 262_144);
        assert_eq!(tuning.initial_rto, Duration::from_millis(700));
        assert_eq!(tuning.min_rto, Duration::from_millis(150));
        assert_eq!(tuning.time_wait, Duration::from_millis(5000));
    }
    assert!(!engine.mptcp_checksum_required);
    assert_eq!(engine.max_connections, 1234);
}

#[test]
fn checksum_required_reaches_the_engine() {
    let text = TEST_CONFIG.replace("checksum = \"off\"", "checksum = \"required\"");
    let config = mpterm_control::Config::from_toml_str(&text).unwrap();
    assert!(engine_config(&config, &[[0; 6], [0; 6]]).mptcp_checksum_required);
}

#[test]
fn pacing_is_on_by_default_and_the_switch_reaches_both_sides() {
    let config = mpterm_control::Config::from_toml_str(TEST_CONFIG).unwrap();
    let engine = engine_config(&config, &[[0; 6], [0; 6]]);
    assert!(engine.client_tcp.pacing && engine.backend_tcp.pacing);
    let text = TEST_CONFIG.replace("[tcp]\n", "[tcp]\npacing = false\n");
    let config = mpterm_control::Config::from_toml_str(&text).unwrap();
    let engine = engine_config(&config, &[[0; 6], [0; 6]]);
    assert!(!engine.client_tcp.pacing && !engine.backend_tcp.pacing);
}

#[test]
fn ecn_is_on_by_default_and_the_switch_reaches_both_sides() {
    let config = mpterm_control::Config::from_toml_str(TEST_CONFIG).unwrap();
    let engine = engine_config(&config, &[[0; 6], [0; 6]]);
    assert!(engine.client_tcp.ecn && engine.backend_tcp.ecn);
    let text = TEST_CONFIG.replace("[tcp]\n", "[tcp]\necn = false\n");
    assert_ne!(text, TEST_CONFIG, "the fixture has a [tcp] section");
    let config = mpterm_control::Config::from_toml_str(&text).unwrap();
    let engine = engine_config(&config, &[[0; 6], [0; 6]]);
    assert!(!engine.client_tcp.ecn && !engine.backend_tcp.ecn);
}

#[test]
fn congestion_control_reaches_each_side() {
    for (word, algorithm) in [
        ("cubic", mpterm_engine::CongestionAlgorithm::Cubic),
        ("newreno", mpterm_engine::CongestionAlgorithm::NewReno),
        ("lia", mpterm_engine::CongestionAlgorithm::Lia),
        ("olia", mpterm_engine::CongestionAlgorithm::Olia),
    ] {
        let text = TEST_CONFIG.replace(
            "[tcp]\n",
            &format!("[tcp]\ncongestion_control = \"{word}\"\nbackend_congestion_control = \"newreno\"\n"),
        );
        assert_ne!(text, TEST_CONFIG, "the fixture has a [tcp] section");
        let config = mpterm_control::Config::from_toml_str(&text).unwrap();
        let engine = engine_config(&config, &[[0; 6], [0; 6]]);
        assert_eq!(engine.client_tcp.congestion_control, algorithm, "{word}");
        assert_eq!(
            engine.backend_tcp.congestion_control,
            mpterm_engine::CongestionAlgorithm::NewReno
        );
    }
    // Both sides default to CUBIC.
    let engine = engine_config(
        &mpterm_control::Config::from_toml_str(TEST_CONFIG).unwrap(),
        &[[0; 6], [0; 6]],
    );
    assert_eq!(
        engine.client_tcp.congestion_control,
        mpterm_engine::CongestionAlgorithm::Cubic
    );
    assert_eq!(
        engine.backend_tcp.congestion_control,
        mpterm_engine::CongestionAlgorithm::Cubic
    );
}

#[test]
fn the_subflow_limit_and_the_scheduler_reach_the_engine() {
    let config = mpterm_control::Config::from_toml_str(TEST_CONFIG).unwrap();
    let engine = engine_config(&config, &[[0; 6], [0; 6]]);
    assert_eq!(engine.mptcp_max_subflows, 8);
    assert!(engine.mptcp_allow_join_initial_address);
    assert_eq!(
        engine.proxies[0].scheduler,
        mpterm_engine::scheduler::SchedulerKind::LowestRtt
    );
    let text = TEST_CONFIG
        .replace(
            "[mptcp]\n",
            "[mptcp]\nmax_subflows = 3\nallow_join_initial_address = false\n",
        )
        .replace(
            "backend = \"198.19.200.3:6000\"",
            "backend = \"198.19.200.3:6000\"\nscheduler = \"round-robin\"",
        );
    let config = mpterm_control::Config::from_toml_str(&text).unwrap();
    let engine = engine_config(&config, &[[0; 6], [0; 6]]);
    assert_eq!(engine.mptcp_max_subflows, 3);
    assert!(!engine.mptcp_allow_join_initial_address);
    assert_eq!(
        engine.proxies[0].scheduler,
        mpterm_engine::scheduler::SchedulerKind::RoundRobin
    );
}

#[test]
fn token_adapter_registers_full_connection_ids_and_refuses_duplicates() {
    let table = Arc::new(TokenTable::new());
    let mut worker_three = SharedTokens::new(Arc::clone(&table), 3);
    let mut worker_four = SharedTokens::new(Arc::clone(&table), 4);
    let large_id = u64::from(u32::MAX) + 7;

    assert!(worker_three.try_register(0xfeed_beef, large_id));
    assert_eq!(
        table.lookup(0xfeed_beef),
        Some(ConnectionOwner {
            worker: 3,
            connection: large_id
        })
    );
    // RFC 8684 section 3.1: a token in use must not be handed out twice.
    assert!(!worker_four.try_register(0xfeed_beef, 1));
    assert!(!worker_three.try_register(0xfeed_beef, 2));

    worker_three.release(0xfeed_beef);
    assert_eq!(table.lookup(0xfeed_beef), None);
    assert!(worker_four.try_register(0xfeed_beef, 1));
}

#[test]
fn snapshot_maps_every_engine_counter() {
    // Distinct values, so that a counter published under the wrong name is caught.
    let engine = Counters {
        rx_frames: 1,
        rx_bytes: 2,
        tx_frames: 3,
        tx_bytes: 4,
        rx_dropped_malformed: 5,
        rx_dropped_not_for_us: 6,
        rx_dropped_no_connection: 7,
        tx_dropped_no_neighbor: 8,
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
        tx_dropped_backlog: 30,
        rx_dropped_bad_ack: 31,
        challenge_acks_sent: 32,
        mptcp_withheld_before_key: 33,
        mptcp_fastcloses_sent: 34,
        mptcp_fastcloses_received: 35,
        mptcp_fastcloses_ignored: 36,
        mptcp_joins_refused: 37,
        mptcp_join_syns_received: 500,
        mptcp_joins_established: 501,
        mptcp_join_unknown_token: 502,
        mptcp_join_over_limit: 503,
        mptcp_join_not_accepted: 504,
        mptcp_join_hmac_failures: 505,
        mptcp_data_acks_beyond_sent: 506,
        mptcp_prio_received: 507,
        mptcp_reinjected_bytes: 508,
        mptcp_subflow_failovers: 509,
        mptcp_data_duplicates: 510,
        mptcp_data_overflows: 511,
        mptcp_data_retransmissions: 9511,
        mptcp_add_addr_sent: 9600,
        mptcp_add_addr_echoed: 9601,
        mptcp_add_addr_unanswered: 9602,
        mptcp_add_addr_received: 9603,
        mptcp_add_addr_bad_hmac: 9604,
        mptcp_remove_addr_sent: 9605,
        mptcp_remove_addr_received: 9606,
        mptcp_remove_addr_unknown: 9607,
        mptcp_remove_addr_subflows_closed: 9608,
        mptcp_prio_sent: 9609,
        mptcp_subflows_failed: 79511,
        mptcp_mp_fail_sent: 79600,
        mptcp_mp_fail_received: 79601,
        mptcp_infinite_mappings_sent: 79602,
        mptcp_infinite_mappings_received: 79603,
        mptcp_checksum_rewinds: 79604,
        mptcp_fail_resets: 79605,
        keepalive_probes_sent: 38,
        keepalive_timeouts: 39,
        fin_wait_2_timeouts: 40,
        user_timeouts: 41,
        time_wait_entered: 42,
        time_wait_overflows: 43,
        time_wait_reused: 44,
        time_wait_acks_sent: 45,
        rx_dropped_time_wait: 46,
        neighbor_solicitations_answered: 49,
        rx_sack_blocks_invalid: 50,
        dsacks_received: 51,
        rack_lost_segments: 52,
        tlp_probes_sent: 53,
        rx_dropped_paws: 54,
        delayed_acks_sent: 55,
        spurious_reductions_undone: 56,
        icmp_mtu_lowered: 57,
        icmp_errors_no_connection: 58,
        icmp_errors_outside_window: 59,
        icmp_mtu_below_floor: 60,
        icmp_errors_ignored: 61,
        ecn_ce_received: 62,
        ecn_window_reductions: 63,
        pacing_delays: 64,
    };
    let gauges = Gauges {
        connections_open: 47,
        time_wait_open: 48,
    };
    let worker = WorkerCounters {
        tx_dropped_full: 100,
        tx_dropped_no_mbuf: 200,
        rx_dropped_segmented: 300,
    };
    let expected = StatsSnapshot {
        rx_packets: 1,
        rx_bytes: 2,
        tx_packets: 3,
        tx_bytes: 4,
        rx_dropped_malformed: 5,
        rx_dropped_not_for_us: 6,
        rx_dropped_no_connection: 7,
        tx_dropped_full: 100,
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
        tx_dropped_no_neighbor: 8,
        tx_dropped_no_mbuf: 200,
        rx_dropped_segmented: 300,
        tx_dropped_backlog: 30,
        rx_dropped_bad_ack: 31,
        challenge_acks_sent: 32,
        mptcp_withheld_before_key: 33,
        mptcp_fastcloses_sent: 34,
        mptcp_fastcloses_received: 35,
        mptcp_fastcloses_ignored: 36,
        mptcp_joins_refused: 37,
        mptcp_join_syns_received: 500,
        mptcp_joins_established: 501,
        mptcp_join_unknown_token: 502,
        mptcp_join_over_limit: 503,
        mptcp_join_not_accepted: 504,
        mptcp_join_hmac_failures: 505,
        mptcp_data_acks_beyond_sent: 506,
        mptcp_prio_received: 507,
        mptcp_reinjected_bytes: 508,
        mptcp_subflow_failovers: 509,
        mptcp_data_duplicates: 510,
        mptcp_data_overflows: 511,
        mptcp_data_retransmissions: 9511,
        mptcp_add_addr_sent: 9600,
        mptcp_add_addr_echoed: 9601,
        mptcp_add_addr_unanswered: 9602,
        mptcp_add_addr_received: 9603,
        mptcp_add_addr_bad_hmac: 9604,
        mptcp_remove_addr_sent: 9605,
        mptcp_remove_addr_received: 9606,
        mptcp_remove_addr_unknown: 9607,
        mptcp_remove_addr_subflows_closed: 9608,
        mptcp_prio_sent: 9609,
        mptcp_subflows_failed: 79511,
        mptcp_mp_fail_sent: 79600,
        mptcp_mp_fail_received: 79601,
        mptcp_infinite_mappings_sent: 79602,
        mptcp_infinite_mappings_received: 79603,
        mptcp_checksum_rewinds: 79604,
        mptcp_fail_resets: 79605,
        keepalive_probes_sent: 38,
        keepalive_timeouts: 39,
        fin_wait_2_timeouts: 40,
        user_timeouts: 41,
        time_wait_entered: 42,
        time_wait_overflows: 43,
        time_wait_reused: 44,
        time_wait_acks_sent: 45,
        rx_dropped_time_wait: 46,
        neighbor_solicitations_answered: 49,
        rx_sack_blocks_invalid: 50,
        dsacks_received: 51,
        rack_lost_segments: 52,
        tlp_probes_sent: 53,
        rx_dropped_paws: 54,
        delayed_acks_sent: 55,
        spurious_reductions_undone: 56,
        icmp_mtu_lowered: 57,
        icmp_errors_no_connection: 58,
        icmp_errors_outside_window: 59,
        icmp_mtu_below_floor: 60,
        icmp_errors_ignored: 61,
        ecn_ce_received: 62,
        ecn_window_reductions: 63,
        pacing_delays: 64,
        connections_open: 47,
        time_wait_open: 48,
    };
    assert_eq!(snapshot(&engine, &worker, &gauges), expected);
}

#[test]
fn idle_worker_spins_then_sleeps_longer_and_longer_but_never_past_a_timer() {
    // One cycle per nanosecond, spin for 200 us.
    let spin = IDLE_SPIN.as_nanos() as u64;
    let mut idle = IdleBackoff::new(spin, 1_000);
    assert_eq!(
        idle.after_iteration(0, false, 1_000 + spin - 1, None),
        None,
        "still spinning"
    );
    let mut sleeps = Vec::new();
    for step in 0..10 {
        sleeps.push(
            idle.after_iteration(0, false, 1_000 + spin + step, None)
                .unwrap(),
        );
    }
    assert_eq!(sleeps[0], IDLE_SLEEP_MIN);
    assert_eq!(sleeps[1], IDLE_SLEEP_MIN * 2);
    assert_eq!(sleeps[2], IDLE_SLEEP_MIN * 4);
    assert_eq!(*sleeps.last().unwrap(), IDLE_SLEEP_MAX);
    assert!(sleeps.windows(2).all(|pair| pair[0] <= pair[1]));

    // A due timer shortens the sleep; one that is due now means no sleep.
    let timer = Duration::from_micros(30);
    assert_eq!(
        idle.after_iteration(0, false, 2 * spin, Some(timer)),
        Some(timer)
    );
    assert_eq!(
        idle.after_iteration(0, false, 2 * spin, Some(Duration::ZERO)),
        None
    );

    // A frame ends the idle spell: spinning again, and the next sleep is short again.
    assert_eq!(idle.after_iteration(1, false, 3 * spin, None), None);
    assert_eq!(idle.after_iteration(0, false, 3 * spin + 10, None), None);
    assert_eq!(
        idle.after_iteration(0, false, 4 * spin, None),
        Some(IDLE_SLEEP_MIN)
    );

    // Frames a full ring refused are waiting: busy, however long no frame moved.
    assert_eq!(idle.after_iteration(0, true, 10 * spin, None), None);
    assert_eq!(idle.after_iteration(0, true, 20 * spin, None), None);
    assert_eq!(
        idle.after_iteration(0, false, 20 * spin + 10, None),
        None,
        "holding counted as busy: spinning again first"
    );
    assert_eq!(
        idle.after_iteration(0, false, 21 * spin, None),
        Some(IDLE_SLEEP_MIN)
    );
}
