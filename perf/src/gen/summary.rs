//! What a run measured, as the `gen` report's result and as the one summary line.

use std::collections::BTreeMap;

use mpterm_engine::client::ClientCounters;
use serde::Serialize;
use serde_json::{Map, Value};

use super::app::AppCounters;
use super::cpu::CpuTime;
use super::driver::DriverCounters;
use super::record::ConnectionRecord;
use crate::report::TimeSeries;

/// Quantiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Distribution {
    pub count: usize,
    pub min: f64,
    pub mean: f64,
    pub median: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Distribution {
    /// `None` for no values. Quantiles are nearest-rank.
    pub fn of(mut values: Vec<f64>) -> Option<Distribution> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let index = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
            values[index]
        };
        Some(Distribution {
            count: values.len(),
            min: values[0],
            mean: values.iter().sum::<f64>() / values.len() as f64,
            median: rank(0.5),
            p90: rank(0.9),
            p99: rank(0.99),
            max: values[values.len() - 1],
        })
    }
}

/// The port's own counters, when the device keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PortFigures {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

/// The one result of a `gen` report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenResult {
    pub connections_opened: u64,
    pub completed: u64,
    pub failed: u64,
    /// Failed connections by reason class (see `FailureReason::kind`).
    pub failures_by_kind: BTreeMap<&'static str, u64>,
    /// Upload bytes the server acknowledged, all connections.
    pub bytes_uploaded: u64,
    /// Download bytes received and verified, all connections.
    pub bytes_downloaded: u64,
    /// From the first connection's SYN to the end of the last connection.
    pub seconds: f64,
    pub upload_gbps: f64,
    pub download_gbps: f64,
    /// Both directions together.
    pub goodput_gbps: f64,
    /// From SYN to established, milliseconds, of the connections that got there.
    pub handshake_ms: Option<Distribution>,
    /// The whole process (every thread, DPDK's included) over the run.
    pub cpu: CpuTime,
    /// CPU seconds per GiB moved (both directions); null when nothing moved.
    pub cpu_s_per_gib: Option<f64>,
    /// The client engine's counters: retransmissions, DSS checksum failures, fallbacks, drops.
    pub client_counters: Value,
    pub driver: DriverCounters,
    pub app: AppCounters,
    pub port: Option<PortFigures>,
    /// Payload bytes per interval: the run's, then the first connections' (`lab-timeseries`
    /// shape).
    pub series: Vec<TimeSeries>,
    pub connection_records: Vec<ConnectionRecord>,
}

/// Everything the result is made from.
#[derive(Debug)]
pub struct RunFigures<'a> {
    pub records: &'a [ConnectionRecord],
    /// The transfer window in nanoseconds, when a connection opened and one ended.
    pub window_ns: Option<(u64, u64)>,
    pub cpu: CpuTime,
    pub client: &'a ClientCounters,
    pub driver: DriverCounters,
    pub app: AppCounters,
    pub port: Option<PortFigures>,
    pub series: Vec<TimeSeries>,
}

impl GenResult {
    pub fn new(figures: RunFigures<'_>) -> GenResult {
        let records = figures.records;
        let completed = records.iter().filter(|r| r.is_completed()).count() as u64;
        let failed = records.iter().filter(|r| r.is_failed()).count() as u64;
        let mut failures_by_kind = BTreeMap::new();
        for kind in records.iter().filter_map(|r| r.reason_kind) {
            *failures_by_kind.entry(kind).or_insert(0) += 1;
        }
        let bytes_uploaded: u64 = records.iter().map(|r| r.bytes_uploaded).sum();
        let bytes_downloaded: u64 = records.iter().map(|r| r.bytes_downloaded).sum();
        let seconds = figures
            .window_ns
            .map_or(0.0, |(first, last)| last.saturating_sub(first) as f64 / 1e9);
        let gbps = |bytes: u64| {
            if seconds > 0.0 {
                bytes as f64 * 8.0 / seconds / 1e9
            } else {
                0.0
            }
        };
        let moved = bytes_uploaded + bytes_downloaded;
        let gib = moved as f64 / f64::from(1u32 << 30);
        GenResult {
            connections_opened: records.len() as u64,
            completed,
            failed,
            failures_by_kind,
            bytes_uploaded,
            bytes_downloaded,
            seconds,
            upload_gbps: gbps(bytes_uploaded),
            download_gbps: gbps(bytes_downloaded),
            goodput_gbps: gbps(moved),
            handshake_ms: Distribution::of(records.iter().filter_map(|r| r.handshake_ms).collect()),
            cpu: figures.cpu,
            cpu_s_per_gib: (moved > 0).then(|| figures.cpu.total_s() / gib),
            client_counters: client_counters_json(figures.client),
            driver: figures.driver,
            app: figures.app,
            port: figures.port,
            series: figures.series,
            connection_records: records.to_vec(),
        }
    }

    /// The run passed: every connection opened completed.
    pub fn passed(&self) -> bool {
        self.failed == 0 && self.completed == self.connections_opened && self.completed > 0
    }

    /// The one line the binary prints.
    pub fn summary_line(&self, client: &ClientCounters) -> String {
        let mib = |bytes: u64| bytes as f64 / f64::from(1u32 << 20);
        let handshake = self.handshake_ms.map_or("none".to_string(), |d| {
            format!("median {:.2} ms, p99 {:.2} ms", d.median, d.p99)
        });
        let failures = if self.failures_by_kind.is_empty() {
            String::new()
        } else {
            let kinds: Vec<String> = self
                .failures_by_kind
                .iter()
                .map(|(kind, count)| format!("{kind} {count}"))
                .collect();
            format!(" ({})", kinds.join(", "))
        };
        format!(
            "mpterm-gen: {} connections: {} completed, {} failed{failures}; \
             upload {:.1} MiB at {:.3} Gbit/s, download {:.1} MiB at {:.3} Gbit/s over {:.3} s; \
             handshake {handshake}; retransmissions {}, DSS checksum failures {}, fallbacks {}; \
             CPU {:.2} s (user {:.2}, system {:.2})",
            self.connections_opened,
            self.completed,
            self.failed,
            mib(self.bytes_uploaded),
            self.upload_gbps,
            mib(self.bytes_downloaded),
            self.download_gbps,
            self.seconds,
            client.retransmissions,
            client.dss_checksum_failures,
            client.mptcp_fallbacks,
            self.cpu.total_s(),
            self.cpu.user_s,
            self.cpu.system_s,
        )
    }
}

/// The client engine's counters as a JSON object, every field by name.
pub fn client_counters_json(counters: &ClientCounters) -> Value {
    let mut map = Map::new();
    macro_rules! fields {
        ($($field:ident),* $(,)?) => {
            // Destructured so that a counter added to the engine fails to compile here until
            // it is listed.
            let ClientCounters { $($field),* } = *counters;
            $(map.insert(stringify!($field).to_string(), Value::from($field));)*
        };
    }
    fields!(
        rx_frames,
        rx_bytes,
        tx_frames,
        tx_bytes,
        rx_dropped_malformed,
        rx_dropped_not_for_us,
        rx_dropped_no_connection,
        rx_unknown_options,
        tx_dropped_no_neighbor,
        tx_dropped_backlog,
        arp_requests_answered,
        arp_replies_received,
        tcp_rst_sent,
        tcp_rst_received,
        connections_opened,
        connections_established,
        connections_closed,
        mptcp_connections,
        mptcp_fallbacks,
        dss_checksum_failures,
        dss_mapping_mismatches,
        mptcp_fastcloses_received,
        mptcp_fastcloses_ignored,
        mptcp_tcprst_received,
        token_collisions,
        retransmissions,
        rto_expirations,
        fast_retransmits,
        tcp_timeouts,
        tcp_resets_by_peer,
        rx_dropped_out_of_window,
        rx_dropped_bad_ack,
        challenge_acks_sent,
        keepalive_probes_sent,
        keepalive_timeouts,
        fin_wait_2_timeouts,
        user_timeouts,
        time_wait_entered,
        time_wait_reused,
        time_wait_acks_sent,
        rx_dropped_time_wait,
        events_dropped,
    );
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::record::FailureReason;

    #[test]
    fn quantiles_are_nearest_rank() {
        let d = Distribution::of((1..=100).map(f64::from).collect()).unwrap();
        assert_eq!(
            (d.min, d.median, d.p90, d.p99, d.max),
            (1.0, 50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(d.mean, 50.5);
        let one = Distribution::of(vec![3.0]).unwrap();
        assert_eq!((one.median, one.p99), (3.0, 3.0));
        assert!(Distribution::of(Vec::new()).is_none());
    }

    #[test]
    fn a_result_adds_up_its_connections() {
        let mut done = ConnectionRecord::opened(0, Some(0), 0.0);
        done.handshake_ms = Some(0.5);
        done.bytes_uploaded = 1 << 20;
        done.bytes_downloaded = 1 << 20;
        done.finish(10.0, None);
        let mut failed = ConnectionRecord::opened(1, Some(1), 0.0);
        failed.bytes_uploaded = 1000;
        failed.finish(10.0, Some(&FailureReason::RunTimeout));
        let records = [done, failed];
        let client = ClientCounters {
            retransmissions: 4,
            ..ClientCounters::default()
        };
        let result = GenResult::new(RunFigures {
            records: &records,
            window_ns: Some((0, 1_000_000_000)),
            cpu: CpuTime {
                user_s: 0.5,
                system_s: 0.5,
            },
            client: &client,
            driver: DriverCounters::default(),
            app: AppCounters::default(),
            port: None,
            series: Vec::new(),
        });
        assert_eq!((result.completed, result.failed), (1, 1));
        assert!(!result.passed());
        assert_eq!(result.failures_by_kind.get("run-timeout"), Some(&1));
        assert_eq!(result.bytes_uploaded, (1 << 20) + 1000);
        let expected_gbps = ((1u64 << 20) + 1000) as f64 * 8.0 / 1e9;
        assert!((result.upload_gbps - expected_gbps).abs() < 1e-12);
        assert_eq!(result.client_counters["retransmissions"], 4);
        assert!(result
            .summary_line(&client)
            .contains("1 completed, 1 failed (run-timeout 1)"));
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["connection_records"][1]["outcome"], "failed");
    }
}
