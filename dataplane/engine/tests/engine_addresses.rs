//! Address management and priorities in the deterministic multipath simulation
//! (`common::multipath_net`): a subflow we mark backup with MP_PRIO (RFC 8684 section 3.3.8)
//! carries almost nothing while the other works, and withdrawing an address no subflow uses
//! (section 3.4.2) changes nothing of a transfer.

mod common;

use core::time::Duration;

use common::multipath_net::*;
use common::pattern;
use mpterm_engine::SubflowView;

fn two_paths(seed: u64, down: usize) -> MultipathNet {
    eprintln!("multipath sim seed {seed} (replay with SIM_SEED={seed})");
    let specs = vec![
        PathSpec::clean(Duration::from_millis(5)),
        PathSpec::clean(Duration::from_millis(10)),
    ];
    let mut net = MultipathNet::new(
        seed,
        multipath_config(2, 8),
        vec![(specs, pattern(64 * KIB, seed), pattern(down, !seed))],
        ClientScheduler::RoundRobin,
    );
    net.record_views = true;
    net
}

/// Drives until the join is established; the connection's id and its two subflows' views.
fn joined(net: &mut MultipathNet) -> (u64, Vec<SubflowView>) {
    let mut found = None;
    net.drive_until(|net| {
        let mut views = Vec::new();
        let mut id = 0;
        net.engine.visit_connections(|connection, subflows| {
            id = connection;
            views.extend(subflows.filter(|view| !view.joining));
        });
        if views.len() == 2 {
            found = Some((id, views));
            return true;
        }
        net.finished()
    });
    found.expect("the second path joined")
}

#[test]
fn a_subflow_we_mark_backup_carries_almost_nothing_while_the_other_works() {
    for seed in seeds(&[21]) {
        let down = 2048 * KIB;
        let mut net = two_paths(seed, down);
        let (id, views) = joined(&mut net);
        let initial = views.iter().find(|view| view.index == 0).unwrap();
        let before = initial.bytes_sent;
        let now = net.now;
        net.engine.set_subflow_backup(now, id, 0, true).unwrap();
        net.drive_until(|net| net.finished());
        net.check_data();
        let views = net.views_of(0);
        let initial = views.iter().find(|view| view.index == 0).unwrap();
        assert!(initial.backup, "{views:?}");
        let total: u64 = views.iter().map(|view| view.bytes_sent).sum();
        let after_mark = initial.bytes_sent - before;
        let share = after_mark as f64 / (total - before) as f64;
        eprintln!("backup share after MP_PRIO: {:.2}%", share * 100.0);
        assert!(
            share < 0.05,
            "backup carried {:.2}%: {views:?}",
            share * 100.0
        );
        assert_eq!(net.engine.counters().mptcp_prio_sent, 1);
    }
}

#[test]
fn withdrawing_an_address_no_subflow_uses_disturbs_nothing() {
    for seed in seeds(&[22]) {
        let mut net = two_paths(seed, 2048 * KIB);
        let (_, views) = joined(&mut net);
        // The simulated client joins the address it connected to (our address ID 0).
        assert!(views.iter().all(|view| view.local_address_id == 0));
        let now = net.now;
        net.engine.withdraw_address(now, 1).unwrap();
        net.drive_until(|net| net.finished());
        net.check_data();
        let counters = *net.engine.counters();
        assert_eq!(counters.mptcp_remove_addr_sent, 0, "it was never announced");
        assert_eq!(counters.mptcp_remove_addr_subflows_closed, 0);
        assert_eq!(counters.mptcp_subflow_failovers, 0);
    }
}
