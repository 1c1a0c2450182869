//! The committed engine corpus still reaches the engine's paths for bad and unkind input: a
//! harness or engine change that made the scripts stop reaching them (a setup that no longer
//! matches, inputs that no longer decode to what they did) fails here instead of silently
//! fuzzing less.

use std::path::Path;

use mpterm_engine::Counters;
use mpterm_fuzz::engine::run_engine_frames;

#[test]
fn the_engine_corpus_reaches_every_kind_of_drop_reset_and_timeout() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/engine_frames");
    let mut reached = Counters::default();
    for entry in std::fs::read_dir(&dir).expect("the engine corpus") {
        let input = std::fs::read(entry.expect("corpus entry").path()).expect("corpus file");
        let counters = run_engine_frames(&input);
        let add = |total: &mut u64, value: u64| *total += u64::from(value > 0);
        add(
            &mut reached.rx_dropped_malformed,
            counters.rx_dropped_malformed,
        );
        add(
            &mut reached.rx_dropped_not_for_us,
            counters.rx_dropped_not_for_us,
        );
        add(
            &mut reached.rx_dropped_no_connection,
            counters.rx_dropped_no_connection,
        );
        add(
            &mut reached.rx_dropped_out_of_window,
            counters.rx_dropped_out_of_window,
        );
        add(&mut reached.rx_unknown_options, counters.rx_unknown_options);
        add(
            &mut reached.arp_requests_answered,
            counters.arp_requests_answered,
        );
        add(&mut reached.icmp_echo_answered, counters.icmp_echo_answered);
        add(&mut reached.tcp_rst_received, counters.tcp_rst_received);
        add(
            &mut reached.connections_refused,
            counters.connections_refused,
        );
        add(&mut reached.mptcp_fallbacks, counters.mptcp_fallbacks);
        add(
            &mut reached.dss_checksum_failures,
            counters.dss_checksum_failures,
        );
        add(&mut reached.retransmissions, counters.retransmissions);
        add(&mut reached.rto_expirations, counters.rto_expirations);
        add(&mut reached.tcp_timeouts, counters.tcp_timeouts);
        add(&mut reached.tcp_resets_by_peer, counters.tcp_resets_by_peer);
        add(&mut reached.connections_closed, counters.connections_closed);
    }
    // Each counter now holds how many corpus inputs made it move.
    let text = format!("{reached:?}");
    for (name, inputs) in [
        ("rx_dropped_malformed", reached.rx_dropped_malformed),
        ("rx_dropped_not_for_us", reached.rx_dropped_not_for_us),
        ("rx_dropped_no_connection", reached.rx_dropped_no_connection),
        ("rx_dropped_out_of_window", reached.rx_dropped_out_of_window),
        ("rx_unknown_options", reached.rx_unknown_options),
        ("arp_requests_answered", reached.arp_requests_answered),
        ("icmp_echo_answered", reached.icmp_echo_answered),
        ("tcp_rst_received", reached.tcp_rst_received),
        ("connections_refused", reached.connections_refused),
        ("mptcp_fallbacks", reached.mptcp_fallbacks),
        ("dss_checksum_failures", reached.dss_checksum_failures),
        ("retransmissions", reached.retransmissions),
        ("rto_expirations", reached.rto_expirations),
        ("tcp_timeouts", reached.tcp_timeouts),
        ("tcp_resets_by_peer", reached.tcp_resets_by_peer),
        ("connections_closed", reached.connections_closed),
    ] {
        assert!(inputs > 0, "no corpus input moves {name}: {text}");
    }
}
