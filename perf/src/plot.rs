//! SVG figures of result reports ([`crate::report`]), drawn with `plotters`.
//!
//! | kind | figures (file name after the report's stem) |
//! | --- | --- |
//! | `pipeline` | `-goodput.svg`: goodput per configuration, bars grouped by MTU and connections, one bar per direction and checksum setting; `-cycles.svg`: cycles per packet stacked by stage, one bar per configuration |
//! | `connection-rate` | `-connection-rate.svg`: connections per second, one bar per result |
//! | `lab-side-by-side` | `-side-by-side-goodput.svg` and `-side-by-side-cpu.svg`: mpterm and the anchor next to each other per transfer |
//! | `lab-timeseries` | `-timeseries.svg`: Mbit/s over seconds, one line per series |
//!
//! A `gen` report has no figure of its own: [`render`] says so. Several results of the same
//! pipeline configuration are drawn as their mean.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::{
    ConnectionRateResult, Direction, PipelineResult, Report, ReportError, ReportKind,
    SideBySideResult, TimeSeries,
};

/// Why a report could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("reports of kind {0} have no figure (mpterm-plot draws pipeline, connection-rate, lab-side-by-side and lab-timeseries)")]
    NoFigure(ReportKind),
    #[error("the {0} report has no results to draw")]
    NoResults(ReportKind),
    #[error("drawing failed: {0}")]
    Draw(String),
    #[error("{path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for PlotError {
    fn from(error: DrawingAreaErrorKind<E>) -> Self {
        PlotError::Draw(error.to_string())
    }
}

/// One drawn figure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figure {
    /// What the figure shows, the suffix of its file name (`goodput`, `cycles`, ...).
    pub name: &'static str,
    /// The SVG document.
    pub svg: String,
}

/// Draws every figure of `report`.
pub fn render(report: &Report) -> Result<Vec<Figure>, PlotError> {
    if report.results.is_empty() && report.kind != ReportKind::Gen {
        return Err(PlotError::NoResults(report.kind));
    }
    match report.kind {
        ReportKind::Pipeline => {
            let results: Vec<PipelineResult> = report.results_as()?;
            Ok(vec![
                Figure {
                    name: "goodput",
                    svg: pipeline_goodput(&results)?,
                },
                Figure {
                    name: "cycles",
                    svg: pipeline_cycles(&results)?,
                },
            ])
        }
        ReportKind::ConnectionRate => {
            let results: Vec<ConnectionRateResult> = report.results_as()?;
            Ok(vec![Figure {
                name: "connection-rate",
                svg: connection_rate(&results)?,
            }])
        }
        ReportKind::LabSideBySide => {
            let results: Vec<SideBySideResult> = report.results_as()?;
            Ok(vec![
                Figure {
                    name: "side-by-side-goodput",
                    svg: side_by_side(&results, SideBySideMetric::Goodput)?,
                },
                Figure {
                    name: "side-by-side-cpu",
                    svg: side_by_side(&results, SideBySideMetric::CpuPerGib)?,
                },
            ])
        }
        ReportKind::LabTimeseries => {
            let series: Vec<TimeSeries> = report.results_as()?;
            Ok(vec![Figure {
                name: "timeseries",
                svg: timeseries(&series)?,
            }])
        }
        ReportKind::Gen => Err(PlotError::NoFigure(ReportKind::Gen)),
    }
}

/// Reads the report at `path`, draws it and writes `STEM-NAME.svg` files into `out_dir`
/// (created if missing), STEM being the report's file name without `.json`. Returns the paths
/// written.
pub fn plot_file(path: &Path, out_dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let report = Report::read(path)?;
    let stem = path
        .file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or("report");
    write_figures(&report, stem, out_dir)
}

/// Draws `report` and writes its figures as `STEM-NAME.svg` into `out_dir`.
pub fn write_figures(
    report: &Report,
    stem: &str,
    out_dir: &Path,
) -> Result<Vec<PathBuf>, PlotError> {
    let figures = render(report)?;
    std::fs::create_dir_all(out_dir).map_err(|source| PlotError::Write {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::with_capacity(figures.len());
    for figure in figures {
        let path = out_dir.join(format!("{stem}-{}.svg", figure.name));
        std::fs::write(&path, figure.svg).map_err(|source| PlotError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 600;
const FONT: &str = "sans-serif";

/// Okabe and Ito's colours, told apart also by readers with a colour vision deficiency (their
/// yellow, too faint for a line on white, replaced by a dark wine).
const COLOURS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(86, 180, 233),
    RGBColor(204, 121, 167),
    RGBColor(136, 34, 85),
    RGBColor(0, 0, 0),
];

fn colour(index: usize) -> RGBColor {
    match COLOURS.get(index) {
        Some(colour) => *colour,
        None => {
            let picked = Palette99::pick(index);
            let (r, g, b) = picked.rgb();
            RGBColor(r, g, b)
        }
    }
}

/// The top of a value axis: room above the largest value for the labels over the bars and
/// for a legend of `legend_entries` lines in the upper corner.
fn axis_top(values: impl Iterator<Item = f64>, legend_entries: usize) -> f64 {
    let max = values.filter(|v| v.is_finite()).fold(0.0, f64::max);
    let headroom = 1.15 + 0.06 * legend_entries.min(MAX_NAMED_LINES) as f64;
    if max > 0.0 {
        max * headroom
    } else {
        1.0
    }
}

/// Minor grid lines: barely there, so that the bars and lines stand out.
const LIGHT_GRID: RGBColor = RGBColor(245, 245, 245);

/// Axis numbers without decimals once they are large.
fn axis_number(value: &f64) -> String {
    if value.abs() >= 10.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// The style of a value written centred over the top of its bar.
fn value_label_style() -> TextStyle<'static> {
    TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom))
}

/// An axis of `slots` categories, each one unit wide, with one tick (and label) at the centre
/// of each: plotters' numeric axes place their ticks themselves.
#[derive(Debug, Clone, Copy)]
struct SlotAxis {
    slots: usize,
}

impl Ranged for SlotAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let fraction = value / self.slots.max(1) as f64;
        limit.0 + (f64::from(limit.1 - limit.0) * fraction).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            (0..self.slots).map(|i| i as f64 + 0.5).collect()
        }
    }

    fn range(&self) -> core::ops::Range<f64> {
        0.0..self.slots as f64
    }
}

impl ValueFormatter<f64> for SlotAxis {
    fn format(value: &f64) -> String {
        format!("{value}")
    }
}

/// The label of the slot a key point lies in.
fn slot_label(labels: &[String], at: f64) -> String {
    let index = at.floor();
    if index < 0.0 {
        return String::new();
    }
    labels.get(index as usize).cloned().unwrap_or_default()
}

/// Grouped vertical bars: `groups` along x, one bar per series in each group, `None` where a
/// series has no value in a group.
struct GroupedBars<'a> {
    caption: &'a str,
    x_desc: &'a str,
    y_desc: &'a str,
    groups: Vec<String>,
    series: Vec<String>,
    /// `values[series][group]`.
    values: Vec<Vec<Option<f64>>>,
    value_format: fn(f64) -> String,
}

fn draw_grouped_bars(bars: &GroupedBars<'_>) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let legend_entries = if bars.series.len() > 1 {
            bars.series.len()
        } else {
            0
        };
        let top = axis_top(
            bars.values.iter().flatten().flatten().copied(),
            legend_entries,
        );
        let slots = bars.groups.len();
        let mut chart = ChartBuilder::on(&root)
            .caption(bars.caption, (FONT, 22))
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(72)
            .build_cartesian_2d(SlotAxis { slots }, 0f64..top)?;
        let label_of = |x: &f64| slot_label(&bars.groups, *x);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&label_of)
            .y_label_formatter(&axis_number)
            .light_line_style(LIGHT_GRID)
            .x_desc(bars.x_desc)
            .y_desc(bars.y_desc)
            .label_style((FONT, 14))
            .draw()?;
        let width = 0.8 / bars.series.len().max(1) as f64;
        for (index, (name, values)) in bars.series.iter().zip(&bars.values).enumerate() {
            let fill = colour(index);
            let placed: Vec<(f64, f64)> = values
                .iter()
                .enumerate()
                .filter_map(|(group, value)| {
                    let left = group as f64 + 0.1 + index as f64 * width;
                    value.map(|value| (left, value))
                })
                .collect();
            chart
                .draw_series(placed.iter().map(|&(left, value)| {
                    Rectangle::new([(left, 0.0), (left + width, value)], fill.filled())
                }))?
                .label(name.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], fill.filled()));
            chart.draw_series(placed.iter().map(|&(left, value)| {
                Text::new(
                    (bars.value_format)(value),
                    (left + width / 2.0, value + top * 0.005),
                    value_label_style(),
                )
            }))?;
        }
        if legend_entries > 0 {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font((FONT, 14))
                .draw()?;
        }
        root.present()?;
    }
    Ok(svg)
}

fn one_decimal(value: f64) -> String {
    format!("{value:.1}")
}

fn two_decimals(value: f64) -> String {
    format!("{value:.2}")
}

/// Mean of each key's values, keys in order.
fn means<K: Ord>(pairs: impl Iterator<Item = (K, f64)>) -> BTreeMap<K, f64> {
    let mut sums: BTreeMap<K, (f64, u32)> = BTreeMap::new();
    for (key, value) in pairs {
        let entry = sums.entry(key).or_insert((0.0, 0));
        entry.0 += value;
        entry.1 += 1;
    }
    sums.into_iter()
        .map(|(key, (sum, count))| (key, sum / f64::from(count)))
        .collect()
}

fn pipeline_goodput(results: &[PipelineResult]) -> Result<String, PlotError> {
    let groups: BTreeSet<(u16, u32)> = results.iter().map(|r| (r.mtu, r.connections)).collect();
    let series: BTreeSet<(Direction, bool)> =
        results.iter().map(|r| (r.direction, !r.checksum)).collect();
    let goodput = means(results.iter().map(|r| {
        (
            ((r.mtu, r.connections), (r.direction, !r.checksum)),
            r.goodput_gbps,
        )
    }));
    let values = series
        .iter()
        .map(|s| {
            groups
                .iter()
                .map(|g| goodput.get(&(*g, *s)).copied())
                .collect()
        })
        .collect();
    draw_grouped_bars(&GroupedBars {
        caption: "Pipeline goodput per worker core",
        x_desc: "MTU, concurrent connections",
        y_desc: "goodput (Gbit/s)",
        groups: groups
            .iter()
            .map(|(mtu, connections)| format!("MTU {mtu}, {connections} conn"))
            .collect(),
        series: series
            .iter()
            .map(|(direction, checksum_off)| {
                format!(
                    "{}, DSS csum {}",
                    direction.name(),
                    if *checksum_off { "off" } else { "on" }
                )
            })
            .collect(),
        values,
        value_format: one_decimal,
    })
}

fn pipeline_cycles(results: &[PipelineResult]) -> Result<String, PlotError> {
    // One bar per configuration, in the order (direction, checksum on first, MTU,
    // connections), the first at the top.
    let by_configuration = means(results.iter().flat_map(|r| {
        let key = (r.direction, !r.checksum, r.mtu, r.connections);
        let stages = r.cycles_per_packet.stages();
        let staged: f64 = stages.iter().map(|(_, cycles)| cycles).sum();
        let other = (r.cycles_per_packet.total - staged).max(0.0);
        stages
            .into_iter()
            .chain([("other", other)])
            .enumerate()
            .map(move |(stage, (_, cycles))| ((key, stage), cycles))
    }));
    let configurations: BTreeSet<(Direction, bool, u16, u32)> =
        by_configuration.keys().map(|(key, _)| *key).collect();
    let configurations: Vec<_> = configurations.into_iter().collect();
    let stage_names = ["rx", "parse", "engine", "checksum", "tx", "other"];
    let labels: Vec<String> = configurations
        .iter()
        .map(|(direction, checksum_off, mtu, connections)| {
            format!(
                "{} csum {}, MTU {mtu}, {connections} conn",
                direction.name(),
                if *checksum_off { "off" } else { "on" }
            )
        })
        .collect();
    let totals: Vec<f64> = configurations
        .iter()
        .map(|key| {
            (0..stage_names.len())
                .filter_map(|stage| by_configuration.get(&(*key, stage)))
                .sum()
        })
        .collect();
    let slots = configurations.len();
    // Rows top to bottom: configuration `i` sits in slot `slots - 1 - i`.
    let row_labels: Vec<String> = labels.iter().rev().cloned().collect();
    let height = (140 + 34 * slots as u32).max(360);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        // The legend sits lower right, beside the bars' ends.
        let right = axis_top(totals.iter().copied(), 3);
        let mut chart = ChartBuilder::on(&root)
            .caption("Pipeline TSC cycles per packet, by stage", (FONT, 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(260)
            .build_cartesian_2d(0f64..right, SlotAxis { slots })?;
        let label_of = |y: &f64| slot_label(&row_labels, *y);
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_label_formatter(&label_of)
            .x_label_formatter(&axis_number)
            .light_line_style(LIGHT_GRID)
            .x_desc("cycles per packet")
            .label_style((FONT, 14))
            .draw()?;
        for (stage, name) in stage_names.iter().enumerate() {
            let fill = colour(stage);
            let segments: Vec<Rectangle<(f64, f64)>> = configurations
                .iter()
                .enumerate()
                .filter_map(|(row, key)| {
                    let cycles = *by_configuration.get(&(*key, stage))?;
                    let start: f64 = (0..stage)
                        .filter_map(|earlier| by_configuration.get(&(*key, earlier)))
                        .sum();
                    let slot = (slots - 1 - row) as f64;
                    Some(Rectangle::new(
                        [(start, slot + 0.15), (start + cycles, slot + 0.85)],
                        fill.filled(),
                    ))
                })
                .collect();
            chart
                .draw_series(segments)?
                .label(*name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], fill.filled()));
        }
        chart.draw_series(totals.iter().enumerate().map(|(row, total)| {
            let slot = (slots - 1 - row) as f64;
            Text::new(
                format!("{total:.0}"),
                (total + right * 0.01, slot + 0.6),
                (FONT, 12),
            )
        }))?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 14))
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

fn connection_rate(results: &[ConnectionRateResult]) -> Result<String, PlotError> {
    let groups = results
        .iter()
        .enumerate()
        .map(|(index, r)| {
            r.label
                .clone()
                .unwrap_or_else(|| format!("run {}", index + 1))
        })
        .collect();
    draw_grouped_bars(&GroupedBars {
        caption: "New MPTCP connections per second per worker core",
        x_desc: "",
        y_desc: "connections per second",
        groups,
        series: vec!["connections/s".to_string()],
        values: vec![results
            .iter()
            .map(|r| Some(r.connections_per_second))
            .collect()],
        value_format: |value| format!("{value:.0}"),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SideBySideMetric {
    Goodput,
    CpuPerGib,
}

fn side_by_side(
    results: &[SideBySideResult],
    metric: SideBySideMetric,
) -> Result<String, PlotError> {
    // Repeated runs of one transfer are drawn as their mean, in the order first seen.
    let mut pairs: Vec<(String, Vec<&SideBySideResult>)> = Vec::new();
    for result in results {
        let label = result.label();
        match pairs.iter_mut().find(|(seen, _)| *seen == label) {
            Some((_, runs)) => runs.push(result),
            None => pairs.push((label, vec![result])),
        }
    }
    let mean = |values: Vec<Option<f64>>| -> Option<f64> {
        let present: Vec<f64> = values.into_iter().flatten().collect();
        (!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64)
    };
    let mut groups = Vec::with_capacity(pairs.len());
    let mut mpterm = Vec::with_capacity(pairs.len());
    let mut anchor = Vec::with_capacity(pairs.len());
    for (label, runs) in &pairs {
        let (ours, theirs) = match metric {
            SideBySideMetric::Goodput => (
                mean(runs.iter().map(|r| Some(r.mpterm_gbps)).collect()),
                mean(runs.iter().map(|r| Some(r.anchor_gbps)).collect()),
            ),
            SideBySideMetric::CpuPerGib => (
                mean(runs.iter().map(|r| r.mpterm_cpu_s_per_gib).collect()),
                mean(runs.iter().map(|r| r.anchor_cpu_s_per_gib).collect()),
            ),
        };
        let label = match (metric, ours, theirs) {
            (SideBySideMetric::Goodput, Some(ours), Some(theirs)) if theirs > 0.0 => {
                format!("{label} (x{:.2})", ours / theirs)
            }
            _ => label.clone(),
        };
        groups.push(label);
        mpterm.push(ours);
        anchor.push(theirs);
    }
    let repeated = pairs.iter().any(|(_, runs)| runs.len() > 1);
    let (caption, y_desc) = match (metric, repeated) {
        (SideBySideMetric::Goodput, false) => (
            "Lab goodput: mpterm and the anchor (Linux MPTCP + HAProxy)",
            "goodput (Gbit/s)",
        ),
        (SideBySideMetric::Goodput, true) => (
            "Lab goodput, mean of the runs: mpterm and the anchor (Linux MPTCP + HAProxy)",
            "goodput (Gbit/s)",
        ),
        (SideBySideMetric::CpuPerGib, false) => (
            "Lab CPU per GiB moved: mpterm and the anchor",
            "CPU seconds per GiB",
        ),
        (SideBySideMetric::CpuPerGib, true) => (
            "Lab CPU per GiB moved, mean of the runs: mpterm and the anchor",
            "CPU seconds per GiB",
        ),
    };
    let x_desc = match metric {
        SideBySideMetric::Goodput => "transfer (mpterm/anchor goodput ratio)",
        SideBySideMetric::CpuPerGib => "transfer",
    };
    draw_grouped_bars(&GroupedBars {
        caption,
        x_desc,
        y_desc,
        groups,
        series: vec!["mpterm".to_string(), "anchor".to_string()],
        values: vec![mpterm, anchor],
        value_format: two_decimals,
    })
}

/// Lines with a legend entry; beyond this many the rest are drawn unnamed.
const MAX_NAMED_LINES: usize = 16;

fn timeseries(series: &[TimeSeries]) -> Result<String, PlotError> {
    let points: Vec<Vec<(f64, f64)>> = series.iter().map(|s| s.mbps_points().collect()).collect();
    let end = points
        .iter()
        .flatten()
        .map(|(t, _)| *t)
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let top = axis_top(points.iter().flatten().map(|(_, mbps)| *mbps), series.len());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw_lines(&root, series, &points, end, top)?;
        root.present()?;
    }
    Ok(svg)
}

fn draw_lines(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    series: &[TimeSeries],
    points: &[Vec<(f64, f64)>],
    end: f64,
    top: f64,
) -> Result<(), PlotError> {
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption("Goodput over time per connection", (FONT, 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..end, 0f64..top)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("Mbit/s")
        .y_label_formatter(&axis_number)
        .light_line_style(LIGHT_GRID)
        .label_style((FONT, 14))
        .draw()?;
    for (index, (one, line)) in series.iter().zip(points).enumerate() {
        let stroke = colour(index).stroke_width(2);
        let drawn = chart.draw_series(LineSeries::new(line.iter().copied(), stroke))?;
        if index < MAX_NAMED_LINES {
            drawn
                .label(one.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], stroke));
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .draw()?;
    Ok(())
}
