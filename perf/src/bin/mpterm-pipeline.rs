//! `mpterm-pipeline`: the pipeline benchmark, one worker core's whole data path in memory.
//!
//! Runs every combination of the given directions, checksum settings, MTUs and connection
//! counts (by default the matrix: upload and download, checksums on and off, MTU 1500
//! and 9000, 1, 64 and 10,000 connections), then the connection rate, prints one line per
//! configuration and writes the results as `mpterm-perf/1` JSON (`--out`, `--rate-out`).
//! See `perf/README.md` for the method and `mpterm-plot` for the figures.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use mpterm_perf::pipeline::{run_connection_rate, run_transfer, PipelineConfig, RateConfig};
use mpterm_perf::report::{ConnectionRateResult, Direction, PipelineResult, Report, ReportKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Toggle {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Way {
    Upload,
    Download,
}

#[derive(Debug, Parser)]
#[command(about = "One mpterm worker core's data path at full speed, in memory")]
struct Args {
    /// Directions to measure.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "upload,download"
    )]
    direction: Vec<Way>,
    /// DSS checksum settings to measure.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "on,off")]
    checksum: Vec<Toggle>,
    /// MTUs to measure.
    #[arg(long, value_delimiter = ',', default_value = "1500,9000")]
    mtu: Vec<u16>,
    /// Concurrent connection counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,64,10000")]
    connections: Vec<u32>,
    /// Payload moved per configuration, in MiB (at least 64 KiB per connection).
    #[arg(long, default_value_t = 256)]
    mib: u64,
    /// Connections opened, used and closed in the connection-rate run (0 skips it).
    #[arg(long, default_value_t = 60_000)]
    rate_connections: u32,
    /// Connections open at once in the connection-rate run.
    #[arg(long, default_value_t = 256)]
    rate_concurrency: u32,
    /// The transfer results (kind `pipeline`).
    #[arg(long, default_value = "perf/results/pipeline.json")]
    out: PathBuf,
    /// The connection-rate result (kind `connection-rate`).
    #[arg(long, default_value = "perf/results/connection-rate.json")]
    rate_out: PathBuf,
    /// Seed of keys, sequence numbers and data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut failures = 0;
    let mut report = Report::new(
        ReportKind::Pipeline,
        serde_json::json!({
            "mib_per_configuration": args.mib,
            "seed": args.seed,
            "method": "one thread; worker cycles counted by stage inside its turns; parse and checksum split by replay",
        }),
    );
    println!(
        "{:<9} {:>4} {:>5} {:>6} | {:>8} {:>10} | {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} | {:>6} {:>6}",
        "direction", "csum", "mtu", "conns", "Gbit/s", "pkt/s", "rx", "parse", "engine", "csum", "tx",
        "total", "client", "backnd"
    );
    for &way in &args.direction {
        for &checksum in &args.checksum {
            for &mtu in &args.mtu {
                for &connections in &args.connections {
                    let direction = match way {
                        Way::Upload => Direction::Upload,
                        Way::Download => Direction::Download,
                    };
                    let mut config =
                        PipelineConfig::new(direction, checksum == Toggle::On, mtu, connections);
                    config.seed = args.seed;
                    config.bytes_per_connection =
                        ((args.mib << 20) / u64::from(config.connections)).max(64 << 10);
                    match run_transfer(config, None) {
                        Ok(outcome) => {
                            let cycles = outcome.cycles_per_packet();
                            let packets = outcome.packets().max(1) as f64;
                            println!(
                                "{:<9} {:>4} {:>5} {:>6} | {:>8.2} {:>10.0} | {:>6.0} {:>6.0} {:>6.0} {:>6.0} {:>6.0} {:>6.0} | {:>6.0} {:>6.0}",
                                direction.name(),
                                if config.checksums { "on" } else { "off" },
                                mtu,
                                connections,
                                outcome.goodput_gbps(),
                                outcome.packets_per_second(),
                                cycles.rx,
                                cycles.parse,
                                cycles.engine,
                                cycles.checksum,
                                cycles.tx,
                                cycles.total,
                                outcome.client_cycles as f64 / packets,
                                outcome.backend_cycles as f64 / packets,
                            );
                            let result = PipelineResult {
                                direction,
                                checksum: config.checksums,
                                mtu,
                                connections,
                                goodput_gbps: outcome.goodput_gbps(),
                                packets_per_second: outcome.packets_per_second(),
                                cycles_per_packet: cycles,
                                bytes: outcome.bytes,
                                packets: outcome.packets(),
                                seconds: outcome.worker_seconds(),
                            };
                            if let Err(error) = report.push(&result) {
                                eprintln!("cannot record the result: {error}");
                                failures += 1;
                            }
                        }
                        Err(error) => {
                            eprintln!(
                                "{} csum {} mtu {mtu} conns {connections}: FAILED: {error}",
                                direction.name(),
                                if config.checksums { "on" } else { "off" },
                            );
                            failures += 1;
                        }
                    }
                }
            }
        }
    }
    if let Err(error) = write(&report, &args.out) {
        eprintln!("{error}");
        failures += 1;
    }
    if args.rate_connections > 0 {
        let config = RateConfig {
            connections: args.rate_connections,
            concurrency: args.rate_concurrency,
            checksums: true,
            request_bytes: 64,
            answer_bytes: 64,
            seed: args.seed,
        };
        match run_connection_rate(config) {
            Ok(outcome) => {
                println!(
                    "connection rate: {:.0} new MPTCP connections per worker second ({} connections, {:.0} worker cycles each, {} at once, DSS checksums on)",
                    outcome.connections_per_second(),
                    outcome.connections,
                    outcome.cycles_per_connection(),
                    config.concurrency,
                );
                let mut report = Report::new(
                    ReportKind::ConnectionRate,
                    serde_json::json!({
                        "concurrency": config.concurrency,
                        "request_bytes": config.request_bytes,
                        "answer_bytes": config.answer_bytes,
                        "checksums": config.checksums,
                        "seed": config.seed,
                    }),
                );
                let result = ConnectionRateResult {
                    connections_per_second: outcome.connections_per_second(),
                    connections: outcome.connections,
                    seconds: outcome.worker_seconds(),
                    cycles_per_connection: outcome.cycles_per_connection(),
                    label: Some(format!("{} at once", config.concurrency)),
                };
                let written = report
                    .push(&result)
                    .map_err(|error| error.to_string())
                    .and_then(|()| write(&report, &args.rate_out));
                if let Err(error) = written {
                    eprintln!("{error}");
                    failures += 1;
                }
            }
            Err(error) => {
                eprintln!("connection rate: FAILED: {error}");
                failures += 1;
            }
        }
    }
    if failures > 0 {
        eprintln!("{failures} configurations failed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn write(report: &Report, path: &PathBuf) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|error| format!("cannot create {}: {error}", parent.display()))?;
    }
    report.write(path).map_err(|error| error.to_string())?;
    println!("wrote {}", path.display());
    Ok(())
}
