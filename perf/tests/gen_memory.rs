//! mpterm-gen's loop and application in memory, through mpterm's worker to a backend peer
//! that checks the uploads itself (tests/gen_support): transfers each way complete byte-exact
//! and are reported so, and what is wrong (changed bytes, a short download, a fallback) fails.

mod gen_support;

use core::time::Duration;

use gen_support::{Bench, Setup};
use mpterm_perf::gen::record::ConnectionRecord;
use mpterm_perf::gen::schedule::OpenPlan;
use mpterm_perf::report::Direction;

const SIZE: u64 = 300_000;

fn records(bench: &Bench) -> Vec<ConnectionRecord> {
    bench.generator.app().records().to_vec()
}

fn assert_all_completed(bench: &Bench, connections: usize) -> Vec<ConnectionRecord> {
    let records = records(bench);
    assert_eq!(records.len(), connections);
    for record in &records {
        assert!(record.is_completed(), "{record:?}");
        assert_eq!(record.mptcp, Some(true));
        assert!(record.handshake_ms.is_some_and(|ms| ms > 0.0));
        assert!(record.closed_at_ms.is_some());
    }
    let backend = bench.backend.counters();
    assert_eq!(backend.mismatches, 0, "{backend:?}");
    records
}

#[test]
fn uploads_complete_and_the_backend_verified_every_byte() {
    let mut bench = Bench::new(Setup::new(Direction::Upload, 4, SIZE));
    bench.run();
    let records = assert_all_completed(&bench, 4);
    for record in &records {
        assert_eq!(record.bytes_uploaded, SIZE);
        assert_eq!(record.bytes_downloaded, 0);
        assert_eq!(record.dss_checksums, Some(true));
        assert_eq!(record.upload_stream, Some(record.connection));
    }
    assert_eq!(bench.backend.counters().bytes_verified, 4 * SIZE);
    let totals = bench.generator.app().totals();
    assert_eq!(totals.upload, 4 * SIZE);
    let series = bench.generator.app().series();
    assert_eq!(series[0].label, "gen all upload");
    assert_eq!(
        series[0].bytes.iter().sum::<u64>(),
        4 * SIZE,
        "the series adds up"
    );
    assert_eq!(
        series.len(),
        1 + 4,
        "the run's and each connection's, upload only"
    );
}

#[test]
fn downloads_complete_verified_each_its_own_stream() {
    let mut bench = Bench::new(Setup::new(Direction::Download, 4, SIZE));
    bench.run();
    let records = assert_all_completed(&bench, 4);
    let mut streams: Vec<u64> = records
        .iter()
        .map(|record| {
            assert_eq!(record.bytes_downloaded, SIZE);
            assert_eq!(record.bytes_uploaded, 0);
            record.download_stream.expect("identified")
        })
        .collect();
    streams.sort_unstable();
    assert_eq!(
        streams,
        [0, 1, 2, 3],
        "the backend's k-th connection sends stream k"
    );
    assert_eq!(bench.generator.app().totals().download, 4 * SIZE);
}

#[test]
fn both_ways_at_once_without_checksums_and_at_mtu_9000() {
    let mut setup = Setup::new(Direction::Bidirectional, 3, SIZE);
    setup.checksums = false;
    setup.mtu = 9000;
    let mut bench = Bench::new(setup);
    bench.run();
    for record in assert_all_completed(&bench, 3) {
        assert_eq!(
            (record.bytes_uploaded, record.bytes_downloaded),
            (SIZE, SIZE)
        );
        assert_eq!(record.dss_checksums, Some(false));
    }
    assert_eq!(bench.backend.counters().bytes_verified, 3 * SIZE);
}

#[test]
fn plain_tcp_when_mptcp_is_off() {
    let mut setup = Setup::new(Direction::Bidirectional, 2, SIZE);
    setup.mptcp = false;
    let mut bench = Bench::new(setup);
    bench.run();
    for record in records(&bench) {
        assert!(record.is_completed(), "{record:?}");
        assert_eq!(record.mptcp, Some(false));
        assert_eq!(
            (record.bytes_uploaded, record.bytes_downloaded),
            (SIZE, SIZE)
        );
    }
}

#[test]
fn a_download_of_other_bytes_fails_every_connection() {
    let mut setup = Setup::new(Direction::Download, 3, SIZE);
    setup.backend_seed = setup.seed + 1;
    let mut bench = Bench::new(setup);
    bench.run();
    for record in records(&bench) {
        assert!(record.is_failed(), "{record:?}");
        assert_eq!(record.reason_kind, Some("mismatch"), "{record:?}");
    }
}

#[test]
fn a_short_download_fails_with_its_length() {
    let mut setup = Setup::new(Direction::Bidirectional, 2, SIZE);
    setup.backend_download = SIZE / 3;
    let mut bench = Bench::new(setup);
    bench.run();
    for record in records(&bench) {
        assert!(record.is_failed(), "{record:?}");
        assert_eq!(record.reason_kind, Some("download-length"));
        assert_eq!(record.bytes_downloaded, SIZE / 3);
        assert_eq!(
            record.bytes_uploaded, SIZE,
            "the upload itself went through"
        );
    }
}

#[test]
fn connections_at_a_rate_under_a_cap() {
    let mut setup = Setup::new(Direction::Bidirectional, 2, 20_000);
    setup.plan = OpenPlan {
        concurrency: 2,
        rate: Some(2000.0),
        duration: None,
        total: Some(8),
    };
    let mut bench = Bench::new(setup);
    bench.run();
    let records = assert_all_completed(&bench, 8);
    // Never more than two open at once: each connection opened after all but one of the
    // earlier ones had closed.
    for (index, record) in records.iter().enumerate() {
        let open_then = records[..index]
            .iter()
            .filter(|earlier| earlier.closed_at_ms.unwrap() > record.opened_at_ms)
            .count();
        assert!(
            open_then < 2,
            "connection {index} opened with {open_then} open"
        );
    }
    // At 2,000 a second, the eighth opened at least 3.5 ms after the first.
    assert!(records[7].opened_at_ms - records[0].opened_at_ms >= 3.5);
}

#[test]
fn endless_transfers_stop_when_the_duration_ends() {
    let mut setup = Setup::new(Direction::Upload, 2, 0);
    setup.size = None;
    setup.plan.duration = Some(Duration::from_millis(200));
    let mut bench = Bench::new(setup);
    let started = std::time::Instant::now();
    bench.run();
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        records(&bench)
    );
    for record in assert_all_completed(&bench, 2) {
        assert!(record.bytes_uploaded > 0);
        assert!(record.closed_at_ms.unwrap() >= 200.0);
    }
    let uploaded: u64 = records(&bench).iter().map(|r| r.bytes_uploaded).sum();
    assert_eq!(bench.backend.counters().bytes_verified, uploaded);
}
