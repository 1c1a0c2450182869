//! Every report kind the plot tool draws renders SVG with its bars or lines and labels; a
//! report it cannot draw is a clear error, from the library and from `mpterm-plot`.

use std::path::PathBuf;
use std::process::Command;

use mpterm_perf::plot::{render, write_figures, PlotError};
use mpterm_perf::report::{
    ConnectionRateResult, Direction, PipelineResult, Report, ReportError, ReportKind,
    SideBySideResult, StageCycles, TimeSeries,
};
use serde_json::json;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mpterm-plot-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn pipeline_report() -> Report {
    let mut report = Report::new(ReportKind::Pipeline, json!({"seconds": 2}));
    for direction in [Direction::Upload, Direction::Download] {
        for checksum in [true, false] {
            for (mtu, connections) in [(1500, 1), (1500, 64), (9000, 10_000)] {
                let engine = if checksum { 420.0 } else { 300.0 };
                report
                    .push(&PipelineResult {
                        direction,
                        checksum,
                        mtu,
                        connections,
                        goodput_gbps: f64::from(mtu) / 100.0 + f64::from(connections % 7),
                        packets_per_second: 2.0e6,
                        cycles_per_packet: StageCycles {
                            rx: 40.0,
                            parse: 25.0,
                            engine,
                            checksum: if checksum { 180.0 } else { 0.0 },
                            tx: 60.0,
                            total: engine + 300.0,
                        },
                        bytes: 1 << 30,
                        packets: 4_000_000,
                        seconds: 2.0,
                    })
                    .unwrap();
            }
        }
    }
    report
}

/// The text of every `<text>` element, trimmed.
fn texts(svg: &str) -> Vec<&str> {
    svg.split("<text")
        .skip(1)
        .filter_map(|element| {
            let (_, rest) = element.split_once('>')?;
            let (content, _) = rest.split_once("</text>")?;
            Some(content.trim())
        })
        .collect()
}

fn has_text(svg: &str, text: &str) -> bool {
    texts(svg).contains(&text)
}

/// Filled rectangles in an SVG (the background is one of them).
fn filled_rects(svg: &str) -> usize {
    svg.matches("<rect").count()
}

fn assert_svg(svg: &str) {
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    assert!(svg.trim_end().ends_with("</svg>"));
}

#[test]
fn a_pipeline_report_gives_grouped_goodput_bars_and_stacked_cycles() {
    let figures = render(&pipeline_report()).unwrap();
    let names: Vec<&str> = figures.iter().map(|f| f.name).collect();
    assert_eq!(names, ["goodput", "cycles"]);
    let goodput = &figures[0].svg;
    assert_svg(goodput);
    assert!(has_text(goodput, "MTU 1500, 64 conn"), "group labels");
    assert!(has_text(goodput, "MTU 9000, 10000 conn"));
    assert!(has_text(goodput, "upload, DSS csum on"), "legend");
    assert!(has_text(goodput, "download, DSS csum off"));
    assert!(has_text(goodput, "94.0"), "a value over its bar");
    // 12 bars, 4 legend swatches, and the frame's own rectangles.
    assert!(
        filled_rects(goodput) >= 16,
        "{} rects",
        filled_rects(goodput)
    );
    let cycles = &figures[1].svg;
    assert_svg(cycles);
    for stage in ["rx", "parse", "engine", "checksum", "tx", "other"] {
        assert!(has_text(cycles, stage), "legend entry {stage}");
    }
    assert!(has_text(cycles, "download csum off, MTU 9000, 10000 conn"));
    assert!(has_text(cycles, "600"), "the total beside its bar");
    // 12 configurations of 6 stages, less the 6 empty checksum stages drawn as zero width.
    assert!(
        filled_rects(cycles) >= 12 * 5,
        "{} rects",
        filled_rects(cycles)
    );
}

#[test]
fn a_connection_rate_report_gives_bars() {
    let mut report = Report::new(ReportKind::ConnectionRate, json!({}));
    for (label, rate) in [(Some("csum on"), 310_000.0), (None, 280_000.0)] {
        report
            .push(&ConnectionRateResult {
                connections_per_second: rate,
                connections: 1_000_000,
                seconds: 3.3,
                cycles_per_connection: 7000.0,
                label: label.map(str::to_string),
            })
            .unwrap();
    }
    let figures = render(&report).unwrap();
    assert_eq!(figures.len(), 1);
    assert_eq!(figures[0].name, "connection-rate");
    let svg = &figures[0].svg;
    assert_svg(svg);
    assert!(has_text(svg, "csum on") && has_text(svg, "run 2"));
    assert!(has_text(svg, "310000"), "the value over its bar");
}

#[test]
fn a_side_by_side_report_gives_pairs_of_bars() {
    let mut report = Report::new(ReportKind::LabSideBySide, json!({}));
    for run in [1, 2] {
        for paths in [1, 2] {
            report
                .push(&SideBySideResult {
                    transfer: "1000 MiB".to_string(),
                    paths,
                    direction: Direction::Upload,
                    connections: Some(1),
                    run: Some(run),
                    mpterm_gbps: 1.3 * f64::from(paths) + 0.1 * f64::from(run),
                    anchor_gbps: 1.0,
                    ratio: Some(1.3 * f64::from(paths)),
                    mpterm_cpu_s_per_gib: Some(6.0),
                    anchor_cpu_s_per_gib: if run == 1 { Some(8.0) } else { None },
                })
                .unwrap();
        }
    }
    let figures = render(&report).unwrap();
    let names: Vec<&str> = figures.iter().map(|f| f.name).collect();
    assert_eq!(names, ["side-by-side-goodput", "side-by-side-cpu"]);
    for figure in &figures {
        assert_svg(&figure.svg);
        assert!(has_text(&figure.svg, "mpterm") && has_text(&figure.svg, "anchor"));
        assert!(
            figure.svg.contains("mean of the runs"),
            "two runs of each pair"
        );
    }
    // Two runs of 2.7 and 2.8 Gbit/s against 1.0: one pair, their mean.
    let goodput = &figures[0].svg;
    assert!(has_text(goodput, "1000 MiB upload, 2 paths (x2.75)"));
    assert!(has_text(goodput, "2.75"));
    assert_eq!(
        texts(goodput)
            .iter()
            .filter(|t| t.starts_with("1000 MiB"))
            .count(),
        2
    );
    // A figure missing in one run (null) leaves the mean of the others.
    let cpu = &figures[1].svg;
    assert!(has_text(cpu, "1000 MiB upload, 2 paths"));
    assert!(has_text(cpu, "8.00") && has_text(cpu, "6.00"));
}

#[test]
fn a_timeseries_report_gives_one_line_per_series() {
    let mut report = Report::new(ReportKind::LabTimeseries, json!({}));
    for conn in 0..3u64 {
        report
            .push(&TimeSeries {
                label: format!("mpterm conn {conn} download"),
                interval_ms: 100,
                bytes: (0..50)
                    .map(|i| 1_000_000 + i * 10_000 * (conn + 1))
                    .collect(),
            })
            .unwrap();
    }
    let figures = render(&report).unwrap();
    assert_eq!(figures[0].name, "timeseries");
    let svg = &figures[0].svg;
    assert_svg(svg);
    assert!(has_text(svg, "mpterm conn 2 download"));
    // Three lines plus three legend strokes.
    assert!(svg.matches("<polyline").count() >= 6, "{svg}");
    assert!(has_text(svg, "Mbit/s") && has_text(svg, "seconds"));
}

#[test]
fn reports_that_cannot_be_drawn_are_clear_errors() {
    let gen = Report::new(ReportKind::Gen, json!({}));
    let error = render(&gen).unwrap_err();
    assert!(
        matches!(error, PlotError::NoFigure(ReportKind::Gen)),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("kind gen have no figure"),
        "{error}"
    );

    let empty = Report::new(ReportKind::Pipeline, json!({}));
    assert!(matches!(
        render(&empty),
        Err(PlotError::NoResults(ReportKind::Pipeline))
    ));

    let mut wrong = Report::new(ReportKind::LabTimeseries, json!({}));
    wrong.results.push(json!({"label": "x"}));
    assert!(matches!(
        render(&wrong),
        Err(PlotError::Report(ReportError::Result { index: 0, .. }))
    ));
}

#[test]
fn figures_are_written_after_the_report_and_mpterm_plot_does_the_same() {
    let dir = scratch("files");
    let written = write_figures(&pipeline_report(), "run1", &dir.join("out")).unwrap();
    assert_eq!(
        written,
        [
            dir.join("out/run1-goodput.svg"),
            dir.join("out/run1-cycles.svg")
        ]
    );
    for path in &written {
        assert!(std::fs::metadata(path).unwrap().len() > 1000);
    }

    let report_path = dir.join("pipeline-2026.json");
    pipeline_report().write(&report_path).unwrap();
    let unknown_path = dir.join("unknown.json");
    let mut unknown = serde_json::to_value(pipeline_report()).unwrap();
    unknown["kind"] = json!("latency");
    std::fs::write(&unknown_path, unknown.to_string()).unwrap();

    let plot = env!("CARGO_BIN_EXE_mpterm-plot");
    let output = Command::new(plot)
        .arg(&report_path)
        .arg("--out")
        .arg(dir.join("figures"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("pipeline-2026-goodput.svg"), "{stdout}");
    assert!(dir.join("figures/pipeline-2026-cycles.svg").exists());

    let output = Command::new(plot)
        .arg(&unknown_path)
        .arg(&report_path)
        .arg("--out")
        .arg(dir.join("figures"))
        .output()
        .unwrap();
    assert!(!output.status.success(), "an unknown kind fails the run");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("unknown.json: unknown report kind \"latency\""),
        "{stderr}"
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("pipeline-2026-goodput.svg"),
        "the good report is still drawn"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
