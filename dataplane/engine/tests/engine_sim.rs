//! The whole engine in a simulated network, driven by Ethernet frames: a client control block
//! (plain TCP or MPTCP, active open) on interface 0, a backend control block (passive: it
//! accepts the engine's SYN) on interface 1. The harness answers the engine's ARP requests for
//! the backend and the client; links have delay, seeded loss, reordering and duplication, and
//! virtual time jumps to the next deadline. A failing run prints its seed; `SIM_SEED=<seed>`
//! replays only that seed.
//!
//! The client's MPTCP side behaves as Linux's does where the engine's correctness depends on
//! it (net/mptcp/options.c): it sends MP_CAPABLE only on segments at its ISN + 1 until the
//! engine's DATA_ACK arrives, and it falls back to TCP when an engine segment at the engine's
//! ISN + 1 carries no MPTCP option before then (`check_fully_established`).

mod common;

use bytes::Bytes;
use common::engine_net::*;
use common::{pattern, LinkConfig};
use mpterm_engine::tcp::{CloseReason, Tcb, TcpState};
use mpterm_wire::mptcp::MptcpOption;

/// Plain TCP through the proxy both ways; both ends close after their data.
fn run_plain(seed: u64, link: LinkConfig, up: usize, down: usize) -> Net {
    eprintln!("engine sim seed {seed} (replay with SIM_SEED={seed}), link {link:?}");
    let mut net = Net::new(
        seed,
        link,
        pattern(up, seed),
        pattern(down, !seed),
        40_000,
        None,
    );
    net.drive_until(|net| {
        net.all_data_arrived()
            && net.client.is_closed()
            && net.backend.as_ref().is_some_and(Tcb::is_closed)
            && net.engine.connection_count() == 0
    });
    net.check_data();
    assert_eq!(net.engine.connection_count(), 0, "{}", net.context());
    for tcb in [&net.client, net.backend.as_ref().unwrap()] {
        assert_eq!(
            tcb.close_reason(),
            Some(CloseReason::Graceful),
            "{}",
            net.context()
        );
    }
    assert!(
        net.arp_answered >= 1,
        "the engine resolved the backend by ARP"
    );
    let counters = net.engine.counters();
    assert_eq!(counters.connections_accepted, 1);
    assert_eq!(counters.connections_established, 1, "{}", net.context());
    assert_eq!(counters.rx_dropped_malformed, 0);
    assert_eq!(counters.mptcp_connections, 0);
    net
}

#[test]
fn plain_tcp_through_the_proxy_on_clean_links() {
    for seed in seeds(&[1]) {
        let net = run_plain(
            seed,
            LinkConfig::clean(ONE_WAY_DELAY),
            1024 * KIB,
            1024 * KIB,
        );
        assert_eq!(
            net.engine.counters().retransmissions,
            0,
            "{}",
            net.context()
        );
        assert_eq!(net.engine.connection_count(), 0, "{}", net.context());
    }
}

#[test]
fn plain_tcp_through_the_proxy_on_lossy_links() {
    for seed in seeds(&[5, 6, 7]) {
        let net = run_plain(
            seed,
            LinkConfig::lossy(ONE_WAY_DELAY, 0.02),
            1024 * KIB,
            1024 * KIB,
        );
        let lost_toward_engine = net.links[0].stats.lost + net.links[2].stats.lost;
        let lost_from_engine = net.links[1].stats.lost + net.links[3].stats.lost;
        assert!(lost_toward_engine > 0 && lost_from_engine > 0);
        assert!(
            net.engine.counters().retransmissions > 0,
            "the engine retransmitted what its links lost: {}",
            net.context()
        );
        let harness_retransmissions = net.client.counters().retransmissions
            + net.backend.as_ref().unwrap().counters().retransmissions;
        assert!(harness_retransmissions > 0);
    }
}

#[test]
fn plain_tcp_through_the_proxy_recovers_a_lost_tail_by_timeout() {
    // No random loss: the engine's segment carrying the last downstream byte toward the client
    // is dropped, and so is its first retransmission; nothing follows it, so only the
    // engine's retransmission timer can recover it.
    for seed in seeds(&[9, 10]) {
        eprintln!("engine sim seed {seed} (replay with SIM_SEED={seed})");
        let down = 64 * KIB;
        let mut net = Net::new(
            seed,
            LinkConfig::clean(ONE_WAY_DELAY),
            pattern(1000, seed),
            pattern(down, !seed),
            40_001,
            None,
        );
        let mut dropped = 0;
        net.drop_to_client = Some(Box::new(move |repr, len, engine_iss| {
            let tail = engine_iss + 1 + down as u32;
            let carries_tail = len > 0 && repr.seq + len as u32 == tail;
            if carries_tail && dropped < 2 {
                dropped += 1;
                return true;
            }
            false
        }));
        net.drive_until(|net| {
            net.all_data_arrived()
                && net.client.is_closed()
                && net.backend.as_ref().is_some_and(Tcb::is_closed)
        });
        net.check_data();
        assert_eq!(net.dropped_to_client, 2, "{}", net.context());
        assert!(
            net.engine.counters().rto_expirations >= 1,
            "{}",
            net.context()
        );
    }
}

#[test]
fn mptcp_client_data_reaches_the_backend_through_checksummed_mappings() {
    let seed = 3;
    eprintln!("engine sim seed {seed}");
    let mut net = Net::new(
        seed,
        LinkConfig::clean(ONE_WAY_DELAY),
        pattern(256 * KIB, seed),
        pattern(128 * KIB, !seed),
        40_002,
        Some(MptcpClient::new(None, client_iss(seed))),
    );
    net.drive_until(|net| net.all_data_arrived());
    net.check_data();
    let counters = *net.engine.counters();
    assert_eq!(counters.mptcp_connections, 1, "{}", net.context());
    assert_eq!(counters.mptcp_fallbacks, 0, "{}", net.context());
    assert_eq!(counters.dss_checksum_failures, 0);
    assert_eq!(counters.dss_mapping_mismatches, 0);
    let mptcp = net.mptcp.as_ref().unwrap();
    assert!(
        mptcp.remote_key.is_some(),
        "SYN-ACK carried MP_CAPABLE with a key"
    );
    assert!(
        mptcp.verified_mappings > 0,
        "the engine's data carried verifiable DSS checksums"
    );
    assert_eq!(net.resets_to_client, 0, "{}", net.context());
    assert_ne!(
        net.client.close_reason(),
        Some(CloseReason::ResetByPeer),
        "{}",
        net.context()
    );
}

/// Sends 64 KiB over MPTCP on one subflow with mapping `corrupt` carrying a wrong DSS
/// checksum (as if a middlebox had rewritten its payload). RFC 8684 section 3.7: the engine
/// sends MP_FAIL on the subflow-level ACK and takes the mapping's bytes back unacknowledged,
/// so they never reach the backend and the client's TCP sends them again. A client that
/// answers as Linux does (`answers_mp_fail`) sends the infinite mapping and both fall back
/// to TCP; one that ignores MP_FAIL resends the bytes with their mapping, verified this
/// time. Either way the backend gets exactly what the client sent, and nobody is reset.
/// `bytes` should leave data unsent when MP_FAIL arrives if the infinite mapping is to come
/// (Linux puts it on new data only).
fn corrupted_mapping_on_the_only_subflow(
    seed: u64,
    corrupt: u32,
    client_port: u16,
    answers_mp_fail: bool,
    bytes: usize,
) {
    eprintln!("engine sim seed {seed}, corrupted mapping {corrupt}, answers {answers_mp_fail}");
    let up = pattern(bytes, seed);
    let mut client = MptcpClient::new(Some(corrupt), client_iss(seed));
    client.answers_mp_fail = answers_mp_fail;
    let mut net = Net::new(
        seed,
        LinkConfig::clean(ONE_WAY_DELAY),
        up.clone(),
        Bytes::new(),
        client_port,
        Some(client),
    );
    net.drive_until(|net| net.all_data_arrived() && net.client.is_closed());
    net.check_data();
    let counters = *net.engine.counters();
    let context = net.context();
    assert_eq!(counters.mptcp_connections, 1, "{context}");
    assert_eq!(counters.dss_checksum_failures, 1, "{context}");
    assert_eq!(counters.mptcp_checksum_rewinds, 1, "{context}");
    assert_eq!(counters.mptcp_mp_fail_sent, 1, "{context}");
    assert_eq!(counters.mptcp_fail_resets, 0, "{context}");
    assert_eq!(net.resets_to_client, 0, "{context}");
    let mptcp = net.mptcp.as_ref().expect("an MPTCP client");
    assert_eq!(mptcp.mp_fail_received, 1, "{context}");
    if answers_mp_fail {
        assert_eq!(mptcp.infinite_mappings_sent, 1, "{context}");
        assert_eq!(counters.mptcp_infinite_mappings_received, 1, "{context}");
        assert_eq!(counters.mptcp_fallbacks, 1, "{context}");
    } else {
        assert_eq!(counters.mptcp_infinite_mappings_received, 0, "{context}");
        assert_eq!(counters.mptcp_fallbacks, 0, "{context}");
    }
    assert_ne!(
        net.client.close_reason(),
        Some(CloseReason::ResetByPeer),
        "{context}"
    );
}

#[test]
fn mptcp_corrupted_first_mapping_is_failed_and_sent_again() {
    corrupted_mapping_on_the_only_subflow(4, 0, 40_003, false, 64 * KIB);
}

#[test]
fn mptcp_corrupted_later_mapping_is_failed_and_sent_again() {
    corrupted_mapping_on_the_only_subflow(5, 5, 40_004, false, 64 * KIB);
}

#[test]
fn mptcp_corrupted_mapping_falls_back_with_the_clients_infinite_mapping() {
    for (seed, corrupt) in [(6, 5), (7, 20), (8, 1)] {
        corrupted_mapping_on_the_only_subflow(
            seed,
            corrupt,
            40_010 + seed as u16,
            true,
            2048 * KIB,
        );
    }
}

#[test]
fn mptcp_clients_mp_fail_on_the_only_subflow_gets_the_infinite_mapping() {
    // RFC 8684 section 3.7, the engine as the sender: a Linux client found a mapping of ours
    // corrupted (it delivers it as it came and sends MP_FAIL). The engine answers with
    // MP_FAIL, which ends the client's wait, and the infinite mapping on its next new data
    // segment; both sides are plain TCP from there, and nothing is lost either way.
    let seed = 9;
    let mut client = MptcpClient::new(None, client_iss(seed));
    client.fail_engine_mapping = Some(10);
    let mut net = Net::new(
        seed,
        LinkConfig::clean(ONE_WAY_DELAY),
        pattern(256 * KIB, seed),
        pattern(2048 * KIB, !seed),
        40_020,
        Some(client),
    );
    net.drive_until(|net| net.all_data_arrived());
    net.check_data();
    let counters = *net.engine.counters();
    let context = net.context();
    assert_eq!(counters.mptcp_mp_fail_received, 1, "{context}");
    assert_eq!(counters.mptcp_mp_fail_sent, 1, "the answer: {context}");
    assert_eq!(counters.mptcp_infinite_mappings_sent, 1, "{context}");
    assert_eq!(counters.mptcp_fallbacks, 1, "{context}");
    assert_eq!(counters.dss_checksum_failures, 0, "{context}");
    assert_eq!(counters.mptcp_fail_resets, 0, "{context}");
    assert_eq!(net.resets_to_client, 0, "{context}");
    let mptcp = net.mptcp.as_ref().expect("an MPTCP client");
    assert_eq!(mptcp.mp_fail_received, 1, "{context}");
    assert_eq!(mptcp.infinite_mappings_received, 1, "{context}");
}

#[test]
fn mptcp_transfer_both_ways_on_lossy_links() {
    // Retransmissions on both sides of the proxy must carry the mappings of the original
    // segments (RFC 8684 section 3.3.1), or the receiving side reports a mismatch.
    for seed in seeds(&[13, 14]) {
        eprintln!("engine sim seed {seed} (replay with SIM_SEED={seed})");
        let mut net = Net::new(
            seed,
            LinkConfig::lossy(ONE_WAY_DELAY, 0.02),
            pattern(512 * KIB, seed),
            pattern(512 * KIB, !seed),
            40_005,
            Some(MptcpClient::new(None, client_iss(seed))),
        );
        net.drive_until(|net| net.all_data_arrived());
        net.check_data();
        let counters = *net.engine.counters();
        assert_eq!(counters.mptcp_connections, 1, "{}", net.context());
        assert_eq!(counters.mptcp_fallbacks, 0, "{}", net.context());
        assert_eq!(counters.dss_checksum_failures, 0, "{}", net.context());
        assert_eq!(counters.dss_mapping_mismatches, 0, "{}", net.context());
        assert!(counters.retransmissions > 0, "{}", net.context());
        assert!(
            net.client.counters().retransmissions > 0,
            "{}",
            net.context()
        );
    }
}

#[test]
fn mptcp_connection_closes_gracefully_with_data_fins() {
    for seed in seeds(&[15, 16]) {
        eprintln!("engine sim seed {seed} (replay with SIM_SEED={seed})");
        let mut net = Net::new(
            seed,
            LinkConfig::lossy(ONE_WAY_DELAY, 0.01),
            pattern(128 * KIB, seed),
            pattern(96 * KIB, !seed),
            40_006,
            Some(MptcpClient::new(None, client_iss(seed))),
        );
        net.drive_until(|net| {
            net.all_data_arrived()
                && net.client.is_closed()
                && net.backend.as_ref().is_some_and(Tcb::is_closed)
                && net.engine.connection_count() == 0
        });
        net.check_data();
        let counters = *net.engine.counters();
        assert_eq!(counters.mptcp_fallbacks, 0, "{}", net.context());
        assert_eq!(counters.dss_mapping_mismatches, 0, "{}", net.context());
        assert_eq!(net.resets_to_client, 0, "{}", net.context());
        assert!(
            net.mptcp.as_ref().unwrap().remote_data_fin.is_some(),
            "the engine sent a DATA_FIN"
        );
        assert_eq!(
            net.client.close_reason(),
            Some(CloseReason::Graceful),
            "{}",
            net.context()
        );
        assert_eq!(
            net.backend.as_ref().unwrap().close_reason(),
            Some(CloseReason::Graceful),
            "{}",
            net.context()
        );
        assert_eq!(net.engine.connection_count(), 0, "{}", net.context());
    }
}

#[test]
fn mptcp_survives_losing_the_first_data_segment() {
    // The client's first data segment (MP_CAPABLE with both keys and data) is lost once; the
    // segments after it arrive with DSS mappings before the engine has the client's key. The
    // engine must keep those mappings (64-bit data sequence numbers need no key to expand)
    // or fall back to TCP (RFC 8684 section 3.7), not reset the connection.
    let seed = 17;
    eprintln!("engine sim seed {seed}");
    let mut net = Net::new(
        seed,
        LinkConfig::clean(ONE_WAY_DELAY),
        pattern(64 * KIB, seed),
        pattern(16 * KIB, !seed),
        40_007,
        Some(MptcpClient::new(None, client_iss(seed))),
    );
    let mut dropped = false;
    net.drop_from_client = Some(Box::new(move |repr, len, _| {
        let first_data = len > 0
            && !dropped
            && repr
                .options
                .mptcp
                .iter()
                .flatten()
                .any(|o| matches!(o, MptcpOption::MpCapable(_)));
        dropped |= first_data;
        first_data
    }));
    // The proxy acknowledges the client's data once it holds it, so the client may finish
    // before the backend has read everything: drive until both ends have all their data.
    net.drive_until(|net| net.all_data_arrived());
    assert_eq!(net.dropped_from_client, 1, "{}", net.context());
    net.check_data();
    assert_eq!(net.resets_to_client, 0, "{}", net.context());
    assert_eq!(
        net.engine.counters().dss_mapping_mismatches,
        0,
        "{}",
        net.context()
    );
}

#[test]
fn refused_backend_connection_resets_the_client() {
    let seed = 18;
    eprintln!("engine sim seed {seed}");
    let mut net = Net::new(
        seed,
        LinkConfig::clean(ONE_WAY_DELAY),
        pattern(8 * KIB, seed),
        Bytes::new(),
        40_008,
        None,
    );
    net.refuse_backend = true;
    net.drive_until(|net| net.client.is_closed() && net.engine.connection_count() == 0);
    assert_eq!(net.client.state(), TcpState::Closed, "{}", net.context());
    assert_eq!(
        net.client.close_reason(),
        Some(CloseReason::ResetByPeer),
        "{}",
        net.context()
    );
    assert!(net.resets_to_client >= 1, "{}", net.context());
    assert_eq!(net.engine.connection_count(), 0, "{}", net.context());
    assert!(net.backend.is_none());
    assert_eq!(
        net.engine.counters().backend_connect_failures,
        1,
        "{}",
        net.context()
    );
}

#[test]
fn client_abort_mid_transfer_resets_the_backend() {
    let seed = 19;
    eprintln!("engine sim seed {seed}");
    let mut net = Net::new(
        seed,
        LinkConfig::clean(ONE_WAY_DELAY),
        pattern(512 * KIB, seed),
        pattern(512 * KIB, !seed),
        40_009,
        None,
    );
    net.drive_until(|net| net.backend_app.received.len() >= 64 * KIB);
    net.client.abort();
    net.drive_until(|net| {
        net.backend.as_ref().is_some_and(Tcb::is_closed) && net.engine.connection_count() == 0
    });
    let backend = net.backend.as_ref().unwrap();
    assert_eq!(backend.state(), TcpState::Closed, "{}", net.context());
    assert_eq!(
        backend.close_reason(),
        Some(CloseReason::ResetByPeer),
        "{}",
        net.context()
    );
    assert_eq!(net.engine.connection_count(), 0, "{}", net.context());
    // What the backend got is a prefix of what the client sent.
    let got = &net.backend_app.received;
    assert!(got[..] == net.client_app.outgoing[..got.len()]);
}

#[test]
fn backend_abort_mid_transfer_resets_the_client() {
    let seed = 20;
    eprintln!("engine sim seed {seed}");
    let mut net = Net::new(
        seed,
        LinkConfig::clean(ONE_WAY_DELAY),
        pattern(512 * KIB, seed),
        pattern(512 * KIB, !seed),
        40_010,
        None,
    );
    net.drive_until(|net| net.client_app.received.len() >= 64 * KIB);
    net.backend.as_mut().unwrap().abort();
    net.drive_until(|net| net.client.is_closed() && net.engine.connection_count() == 0);
    assert_eq!(net.client.state(), TcpState::Closed, "{}", net.context());
    assert_eq!(
        net.client.close_reason(),
        Some(CloseReason::ResetByPeer),
        "{}",
        net.context()
    );
    // The backend was reached: its reset is not a connect failure.
    assert_eq!(
        net.engine.counters().backend_connect_failures,
        0,
        "{}",
        net.context()
    );
    assert_eq!(net.engine.connection_count(), 0, "{}", net.context());
    let got = &net.client_app.received;
    assert!(got[..] == net.backend_app.outgoing[..got.len()]);
}
