//! The shared result format: what `Report::new` detects, the round trip through a file, typed
//! results, and the errors for files that are not reports of a known kind.

use std::path::PathBuf;

use mpterm_perf::report::{
    commit_of, ConnectionRateResult, Direction, Machine, PipelineResult, Report, ReportError,
    ReportKind, SideBySideResult, StageCycles, TimeSeries, SCHEMA,
};
use serde_json::json;

/// A fresh directory for one test, removed by the test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mpterm-perf-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn pipeline_result() -> PipelineResult {
    PipelineResult {
        direction: Direction::Upload,
        checksum: true,
        mtu: 1500,
        connections: 64,
        goodput_gbps: 12.5,
        packets_per_second: 2.1e6,
        cycles_per_packet: StageCycles {
            rx: 40.0,
            parse: 30.0,
            engine: 300.0,
            checksum: 200.0,
            tx: 50.0,
            total: 700.0,
        },
        bytes: 1 << 30,
        packets: 900_000,
        seconds: 0.7,
    }
}

#[test]
fn a_new_report_describes_this_machine_and_run() {
    let report = Report::new(ReportKind::Pipeline, json!({"seconds": 1}));
    assert_eq!(report.schema, SCHEMA);
    assert_eq!(report.kind, ReportKind::Pipeline);
    assert!(report.machine.cores >= 1);
    assert_ne!(report.machine.cpu, "");
    assert_ne!(
        report.machine.kernel, "unknown",
        "/proc/sys/kernel/osrelease"
    );
    assert_eq!(
        report.machine.kernel,
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap()
            .trim()
    );
    let started = report.started_at.as_bytes();
    assert_eq!(started.len(), 20, "{}", report.started_at);
    assert_eq!(
        (started[4], started[10], started[19]),
        (b'-', b'T', b'Z'),
        "{}",
        report.started_at
    );
    assert!(report.command.contains("report"), "{}", report.command);
    assert!(report.results.is_empty());
    assert_eq!(Machine::detect(), report.machine);
}

#[test]
fn the_commit_is_the_short_head_or_unknown_outside_git() {
    let commit = commit_of(std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
    let head = commit.trim_end_matches("+dirty");
    assert!(
        head.len() >= 7 && head.bytes().all(|b| b.is_ascii_hexdigit()),
        "{commit}"
    );
    let outside = scratch("no-git");
    assert_eq!(commit_of(&outside), "unknown");
    std::fs::remove_dir_all(outside).unwrap();
}

#[test]
fn a_written_report_reads_back_with_its_typed_results() {
    let dir = scratch("round-trip");
    let path = dir.join("pipeline.json");
    let mut report = Report::new(ReportKind::Pipeline, json!({"burst": 32}));
    report.push(&pipeline_result()).unwrap();
    report.write(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"schema\": \"mpterm-perf/1\""), "{text}");
    assert!(text.contains("\"kind\": \"pipeline\""), "{text}");
    assert!(text.contains("\"direction\": \"upload\""), "{text}");
    let read = Report::read(&path).unwrap();
    assert_eq!(read, report);
    assert_eq!(
        read.results_as::<PipelineResult>().unwrap(),
        vec![pipeline_result()]
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn every_typed_result_round_trips() {
    let mut report = Report::new(ReportKind::LabSideBySide, json!({}));
    let pair = SideBySideResult {
        transfer: "1000 MiB".to_string(),
        paths: 2,
        direction: Direction::Bidirectional,
        connections: None,
        run: Some(2),
        mpterm_gbps: 1.4,
        anchor_gbps: 1.0,
        ratio: Some(1.4),
        mpterm_cpu_s_per_gib: Some(5.0),
        anchor_cpu_s_per_gib: None,
    };
    report.push(&pair).unwrap();
    assert_eq!(report.results_as::<SideBySideResult>().unwrap(), vec![pair]);
    // What the lab writes: more fields, nulls where a figure could not be had.
    let lab: SideBySideResult = serde_json::from_value(json!({
        "transfer": "1000 MiB", "paths": 1, "direction": "download", "run": 1,
        "connections": 8, "mpterm_gbps": 1.2, "anchor_gbps": 0.0, "ratio": null,
        "mpterm_cpu_s_per_gib": 4.5, "anchor_cpu_s_per_gib": null,
        "mpterm_subflows": 0, "ok": true
    }))
    .unwrap();
    assert_eq!((lab.ratio, lab.anchor_cpu_s_per_gib), (None, None));
    assert_eq!(lab.label(), "1000 MiB download, 1 path, 8 conn");
    let series = TimeSeries {
        label: "mpterm conn 3 download".to_string(),
        interval_ms: 100,
        bytes: vec![0, 1_250_000, 2_500_000],
    };
    let points: Vec<(f64, f64)> = series.mbps_points().collect();
    let expected = [(0.1, 0.0), (0.2, 100.0), (0.3, 200.0)];
    assert_eq!(points.len(), expected.len());
    for ((t, mbps), (want_t, want_mbps)) in points.iter().zip(expected) {
        assert!(
            (t - want_t).abs() < 1e-9 && (mbps - want_mbps).abs() < 1e-6,
            "{points:?}"
        );
    }
    let rate = ConnectionRateResult {
        connections_per_second: 300_000.0,
        connections: 300_000,
        seconds: 1.0,
        cycles_per_connection: 9000.0,
        label: None,
    };
    let text = serde_json::to_string(&rate).unwrap();
    assert!(
        !text.contains("label"),
        "an absent label is left out: {text}"
    );
    assert_eq!(
        serde_json::from_str::<ConnectionRateResult>(&text).unwrap(),
        rate
    );
    // The lab's shorter spelling of a two-way transfer is accepted.
    assert_eq!(
        serde_json::from_str::<Direction>("\"bidir\"").unwrap(),
        Direction::Bidirectional
    );
}

#[test]
fn a_result_of_the_wrong_shape_is_named() {
    let mut report = Report::new(ReportKind::Pipeline, json!({}));
    report.push(&pipeline_result()).unwrap();
    report.results.push(json!({"direction": "sideways"}));
    match report.results_as::<PipelineResult>() {
        Err(error @ ReportError::Result { index: 1, .. }) => {
            assert!(error.to_string().contains("PipelineResult"), "{error}")
        }
        other => panic!("expected an error for result 1, got {other:?}"),
    }
}

#[test]
fn files_that_are_not_reports_of_a_known_kind_are_refused_clearly() {
    let report = Report::new(ReportKind::Gen, json!({}));
    let mut value = serde_json::to_value(&report).unwrap();
    value["kind"] = json!("throughput");
    let error = Report::from_json(&value.to_string()).unwrap_err();
    assert!(
        matches!(&error, ReportError::UnknownKind(kind) if kind == "throughput"),
        "{error:?}"
    );
    assert!(error
        .to_string()
        .contains("unknown report kind \"throughput\""));

    value["kind"] = json!("gen");
    value["schema"] = json!("mpterm-perf/0");
    let error = Report::from_json(&value.to_string()).unwrap_err();
    assert!(matches!(error, ReportError::Schema { .. }), "{error:?}");

    assert!(matches!(
        Report::from_json("{ not json"),
        Err(ReportError::Json(_))
    ));
    value["schema"] = json!(SCHEMA);
    value.as_object_mut().unwrap().remove("machine");
    assert!(matches!(
        Report::from_json(&value.to_string()),
        Err(ReportError::Shape(_))
    ));
    assert!(matches!(
        Report::read("/nonexistent/report.json"),
        Err(ReportError::Io { .. })
    ));
}

#[test]
fn kind_names_are_the_json_names() {
    for kind in ReportKind::ALL {
        assert_eq!(ReportKind::from_name(kind.name()), Some(kind));
        assert_eq!(
            serde_json::to_value(kind).unwrap(),
            json!(kind.name()),
            "{kind}"
        );
    }
}
