//! Path MTU discovery through the whole engine (RFC 1191): a router on the client's path
//! whose MTU is smaller than the client's MSS drops the engine's larger segments and answers
//! each with ICMP fragmentation needed; the engine lowers that subflow's MSS, sends what was
//! lost again in pieces that fit (each repeating the DSS mapping of the segment it was cut
//! from, RFC 8684 section 3.3.1) and everything after at the new size. Byte-exact both ways.

mod common;

use common::engine_net::*;
use common::{pattern, LinkConfig};
use mpterm_engine::tcp::CloseReason;

fn transfer_with_mtu_drop(seed: u64, mptcp: bool, mtu: usize) -> Net {
    eprintln!("engine path MTU seed {seed} (replay with SIM_SEED={seed}), mptcp {mptcp}");
    let mut net = Net::new(
        seed,
        LinkConfig::clean(ONE_WAY_DELAY),
        pattern(128 * KIB, seed),
        pattern(512 * KIB, !seed),
        40_100 + u16::from(mptcp),
        mptcp.then(|| MptcpClient::new(None, client_iss(seed))),
    );
    // The path narrows in the middle of the download, with full segments in flight.
    net.drive_until(|net| net.client_app.received.len() >= 64 * KIB);
    net.client_path_mtu = Some(mtu);
    net.drive_until(|net| net.all_data_arrived());
    net.check_data();
    let counters = *net.engine.counters();
    assert!(net.too_big_to_client > 0, "{}", net.context());
    assert_eq!(
        counters.icmp_mtu_lowered,
        1,
        "the first report lowers the MSS: {}",
        net.context()
    );
    assert_eq!(
        counters.icmp_errors_ignored + 1,
        net.too_big_to_client,
        "the others name the MTU already in use: {}",
        net.context()
    );
    assert_eq!(counters.icmp_errors_no_connection, 0);
    assert_eq!(counters.icmp_errors_outside_window, 0);
    assert_eq!(counters.rto_expirations, 0, "{}", net.context());
    assert_eq!(net.resets_to_client, 0, "{}", net.context());
    assert_ne!(net.client.close_reason(), Some(CloseReason::ResetByPeer));
    net
}

#[test]
fn a_smaller_mtu_on_the_client_path_is_learned_and_the_download_completes() {
    for seed in seeds(&[21, 22]) {
        let net = transfer_with_mtu_drop(seed, true, 1280);
        let counters = net.engine.counters();
        assert_eq!(counters.mptcp_fallbacks, 0, "{}", net.context());
        assert_eq!(counters.dss_checksum_failures, 0);
        let mptcp = net.mptcp.as_ref().unwrap();
        assert!(
            mptcp.verified_spanning_mappings > 0,
            "lost full segments went again in pieces under their own mappings: {}",
            net.context()
        );
        assert!(mptcp.spanning.is_empty(), "every piece arrived");
    }
}

#[test]
fn a_plain_tcp_client_behind_a_smaller_mtu_gets_everything_too() {
    for seed in seeds(&[23]) {
        transfer_with_mtu_drop(seed, false, 576);
    }
}
