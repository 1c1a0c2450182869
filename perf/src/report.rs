//! The one JSON format of every benchmark result of mpterm (`schema: "mpterm-perf/1"`), so that
//! one plot tool ([`crate::plot`], `mpterm-plot`) reads them all.
//!
//! ```json
//! { "schema": "mpterm-perf/1", "kind": "pipeline",
//!   "machine": {"cpu": "...", "cores": 2, "kernel": "6.1.0-...", "hostname": "..."},
//!   "commit": "f6b9190+dirty", "started_at": "2026-01-02T03:04:05Z",
//!   "command": "the command line", "parameters": {...}, "results": [...] }
//! ```
//!
//! `parameters` and `results` are free-form per kind; the kinds the plot tool draws have typed
//! result structs here ([`PipelineResult`], [`ConnectionRateResult`], [`SideBySideResult`],
//! [`TimeSeries`]) that writers push with [`Report::push`] and readers get back with
//! [`Report::results_as`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `schema` of every report this crate writes and the only one it reads.
pub const SCHEMA: &str = "mpterm-perf/1";

/// What a report measured, which decides the shape of its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportKind {
    /// One worker core's data path, driven in process: [`PipelineResult`]s.
    Pipeline,
    /// New MPTCP connections per second through the pipeline: [`ConnectionRateResult`]s.
    ConnectionRate,
    /// The lab's transfers through mpterm and through the anchor: [`SideBySideResult`]s.
    LabSideBySide,
    /// Goodput over time per connection of a lab run: [`TimeSeries`].
    LabTimeseries,
    /// What `mpterm-gen` measured; its results are the generator's own.
    Gen,
}

impl ReportKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [ReportKind; 5] = [
        ReportKind::Pipeline,
        ReportKind::ConnectionRate,
        ReportKind::LabSideBySide,
        ReportKind::LabTimeseries,
        ReportKind::Gen,
    ];

    /// The name used in the JSON `kind` field.
    pub fn name(self) -> &'static str {
        match self {
            ReportKind::Pipeline => "pipeline",
            ReportKind::ConnectionRate => "connection-rate",
            ReportKind::LabSideBySide => "lab-side-by-side",
            ReportKind::LabTimeseries => "lab-timeseries",
            ReportKind::Gen => "gen",
        }
    }

    /// The kind of a JSON `kind` name.
    pub fn from_name(name: &str) -> Option<ReportKind> {
        ReportKind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

impl core::fmt::Display for ReportKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a report could not be read, written or converted.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("schema is {found:?}, expected {SCHEMA:?}")]
    Schema { found: String },
    #[error(
        "unknown report kind {0:?} (known: pipeline, connection-rate, lab-side-by-side, \
         lab-timeseries, gen)"
    )]
    UnknownKind(String),
    #[error("not a report: {0}")]
    Shape(#[source] serde_json::Error),
    #[error("result {index} is not a {expected}: {source}")]
    Result {
        index: usize,
        expected: &'static str,
        source: serde_json::Error,
    },
}

/// The machine a report was measured on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// The first `model name` of /proc/cpuinfo.
    pub cpu: String,
    /// Logical CPUs online.
    pub cores: u32,
    /// The kernel release (`uname -r`).
    pub kernel: String,
    pub hostname: String,
}

impl Machine {
    /// Reads the machine's description from /proc; a field that cannot be read is "unknown".
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == "model name").then(|| value.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".to_string());
        let processors = cpuinfo
            .lines()
            .filter(|line| line.split(':').next().map(str::trim) == Some("processor"))
            .count() as u32;
        let cores = if processors > 0 {
            processors
        } else {
            std::thread::available_parallelism().map_or(0, |n| n.get() as u32)
        };
        Machine {
            cpu,
            cores,
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            hostname: read_trimmed("/proc/sys/kernel/hostname"),
        }
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_string())
        .ok()
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The commit of the working tree around the current directory (see [`commit_of`]).
pub fn detect_commit() -> String {
    commit_of(Path::new("."))
}

/// The commit of the working tree around `dir`: `git rev-parse --short HEAD`, with `+dirty`
/// when `git status --porcelain` lists anything, or "unknown" outside git.
pub fn commit_of(dir: &Path) -> String {
    let Some(head) = git(dir, &["rev-parse", "--short", "HEAD"]) else {
        return "unknown".to_string();
    };
    let head = head.trim().to_string();
    match git(dir, &["status", "--porcelain"]) {
        Some(status) if !status.trim().is_empty() => format!("{head}+dirty"),
        Some(_) => head,
        // A tree whose status cannot be read is not known to be clean.
        None => format!("{head}+dirty"),
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8(output.stdout).ok()
}

/// `time` as RFC 3339 in UTC with whole seconds, e.g. `2026-01-02T03:04:05Z`. Times before
/// 1970 are written as 1970-01-01T00:00:00Z.
pub fn rfc3339_utc(time: SystemTime) -> String {
    let seconds = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (seconds / 86_400) as i64;
    let of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01: shift the epoch to 0000-03-01
/// so that a leap day ends each year, then split into 400-year eras (146,097 days each),
/// years of the era and days of the year (March-based months of 153 days per five months).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let march_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * march_month + 2) / 5 + 1) as u32;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The command line of this process, each argument that needs it in single quotes, so that it
/// can be pasted into a shell.
pub fn command_line() -> String {
    std::env::args()
        .map(|arg| shell_quote(&arg))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// One benchmark result file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    pub kind: ReportKind,
    pub machine: Machine,
    /// See [`detect_commit`].
    pub commit: String,
    /// When the measurement started, RFC 3339 UTC.
    pub started_at: String,
    /// The command line that produced the report.
    pub command: String,
    /// Kind-specific settings of the run.
    pub parameters: Value,
    /// Kind-specific result objects.
    pub results: Vec<Value>,
}

impl Report {
    /// A report started now by this process: machine, commit, time and command line are
    /// detected, results are empty.
    pub fn new(kind: ReportKind, parameters: Value) -> Report {
        Report {
            schema: SCHEMA.to_string(),
            kind,
            machine: Machine::detect(),
            commit: detect_commit(),
            started_at: rfc3339_utc(SystemTime::now()),
            command: command_line(),
            parameters,
            results: Vec::new(),
        }
    }

    /// Appends one result (any of the typed result structs, or the kind's own).
    pub fn push<T: Serialize>(&mut self, result: &T) -> Result<(), ReportError> {
        let value = serde_json::to_value(result).map_err(ReportError::Json)?;
        self.results.push(value);
        Ok(())
    }

    /// Every result read as a `T`; the first that does not fit is an error naming it.
    pub fn results_as<T: DeserializeOwned>(&self) -> Result<Vec<T>, ReportError> {
        self.results
            .iter()
            .enumerate()
            .map(|(index, value)| {
                T::deserialize(value).map_err(|source| ReportError::Result {
                    index,
                    expected: core::any::type_name::<T>()
                        .rsplit("::")
                        .next()
                        .unwrap_or("result"),
                    source,
                })
            })
            .collect()
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // A report holds only strings, numbers, arrays and maps with string keys: it always
        // serializes.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses a report, checking its schema and kind first so that a file of another schema
    /// or an unknown kind gets an error saying so.
    pub fn from_json(text: &str) -> Result<Report, ReportError> {
        let value: Value = serde_json::from_str(text).map_err(ReportError::Json)?;
        let schema = value.get("schema").and_then(Value::as_str).unwrap_or("");
        if schema != SCHEMA {
            return Err(ReportError::Schema {
                found: schema.to_string(),
            });
        }
        let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
        if ReportKind::from_name(kind).is_none() {
            return Err(ReportError::UnknownKind(kind.to_string()));
        }
        serde_json::from_value(value).map_err(ReportError::Shape)
    }

    /// Writes the report to `path` as pretty JSON with a final newline.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), ReportError> {
        let path = path.as_ref();
        let mut text = self.to_json();
        text.push('\n');
        std::fs::write(path, text).map_err(|source| ReportError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a report written by [`Report::write`] (or by any tool that follows the schema).
    pub fn read(path: impl AsRef<Path>) -> Result<Report, ReportError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Report::from_json(&text)
    }
}

/// Which way the measured bytes went, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Client to backend.
    Upload,
    /// Backend to client.
    Download,
    /// Both at once (lab transfers only).
    #[serde(alias = "bidir", alias = "both")]
    Bidirectional,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Upload => "upload",
            Direction::Download => "download",
            Direction::Bidirectional => "bidirectional",
        }
    }
}

/// TSC cycles per packet spent in each stage of the worker's data path. `total` is measured on
/// its own (a whole iteration), so it may exceed the sum of the stages: the rest is the loop.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct StageCycles {
    pub rx: f64,
    pub parse: f64,
    pub engine: f64,
    pub checksum: f64,
    pub tx: f64,
    pub total: f64,
}

impl StageCycles {
    /// The stages by name, in data-path order (`total` excluded).
    pub fn stages(&self) -> [(&'static str, f64); 5] {
        [
            ("rx", self.rx),
            ("parse", self.parse),
            ("engine", self.engine),
            ("checksum", self.checksum),
            ("tx", self.tx),
        ]
    }
}

/// One configuration of the pipeline benchmark (kind `pipeline`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineResult {
    /// `upload` or `download`.
    pub direction: Direction,
    /// DSS checksums on.
    pub checksum: bool,
    pub mtu: u16,
    /// Concurrent connections.
    pub connections: u32,
    /// Payload bits per second delivered, divided by 10^9.
    pub goodput_gbps: f64,
    /// Packets through the worker per second, both ways.
    pub packets_per_second: f64,
    pub cycles_per_packet: StageCycles,
    /// Payload bytes delivered.
    pub bytes: u64,
    /// Packets through the worker, both ways.
    pub packets: u64,
    /// Duration of the measurement.
    pub seconds: f64,
}

impl PipelineResult {
    /// A short name of the configuration, e.g. `upload csum on, MTU 1500, 64 conn`.
    pub fn label(&self) -> String {
        format!(
            "{} csum {}, MTU {}, {} conn",
            self.direction.name(),
            if self.checksum { "on" } else { "off" },
            self.mtu,
            self.connections
        )
    }
}

/// New MPTCP connections per second (kind `connection-rate`): handshake with key and token,
/// backend connect, one small request and answer relayed, close.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionRateResult {
    pub connections_per_second: f64,
    /// Connections completed in the measurement.
    pub connections: u64,
    pub seconds: f64,
    /// TSC cycles of the worker per completed connection.
    pub cycles_per_connection: f64,
    /// Optional name of the configuration (e.g. `csum on`), shown under its bar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// One transfer of the side-by-side lab run (kind `lab-side-by-side`): the same transfer
/// through mpterm and through the anchor (Linux MPTCP with HAProxy under mptcpize). The lab
/// writes more fields than these (per-run CPU accounting, subflows); they are kept in the
/// report and ignored here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SideBySideResult {
    /// What was moved, e.g. `1000 MiB`.
    pub transfer: String,
    /// Client paths (subflows).
    pub paths: u32,
    pub direction: Direction,
    /// Connections at once, when the run says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<u32>,
    /// Which repetition of the transfer, when it was measured more than once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<u32>,
    pub mpterm_gbps: f64,
    pub anchor_gbps: f64,
    /// `mpterm_gbps / anchor_gbps`; null when the anchor moved nothing.
    pub ratio: Option<f64>,
    /// CPU seconds of the appliance per GiB moved; null when it could not be counted.
    pub mpterm_cpu_s_per_gib: Option<f64>,
    pub anchor_cpu_s_per_gib: Option<f64>,
}

impl SideBySideResult {
    /// A short name of the pair without its run, e.g. `1000 MiB upload, 2 paths` (with
    /// `, 8 conn` when more than one connection ran at once).
    pub fn label(&self) -> String {
        let paths = if self.paths == 1 { "path" } else { "paths" };
        let connections = match self.connections {
            Some(n) if n > 1 => format!(", {n} conn"),
            _ => String::new(),
        };
        format!(
            "{} {}, {} {paths}{connections}",
            self.transfer,
            self.direction.name(),
            self.paths
        )
    }
}

/// Bytes per interval of one connection and direction (kind `lab-timeseries`, and any kind
/// that records goodput over time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSeries {
    /// e.g. `mpterm conn 3 download`.
    pub label: String,
    pub interval_ms: u64,
    /// Payload bytes moved in each interval, the first starting when the run started.
    pub bytes: Vec<u64>,
}

impl TimeSeries {
    /// `(seconds at the end of the interval, Mbit/s during it)` for each interval.
    pub fn mbps_points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        let interval_s = self.interval_ms as f64 / 1000.0;
        self.bytes.iter().enumerate().map(move |(i, &bytes)| {
            let mbps = if interval_s > 0.0 {
                bytes as f64 * 8.0 / interval_s / 1e6
            } else {
                0.0
            };
            ((i + 1) as f64 * interval_s, mbps)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        let at = |seconds: u64| rfc3339_utc(UNIX_EPOCH + std::time::Duration::from_secs(seconds));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(951_868_799), "2000-02-29T23:59:59Z");
        assert_eq!(at(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(at(1_735_689_600), "2025-01-01T00:00:00Z");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("--out=dir/x.json"), "--out=dir/x.json");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
