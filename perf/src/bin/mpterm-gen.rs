//! `mpterm-gen`: the MPTCP load generator over a DPDK port, and (`mpterm-gen serve`) the plain
//! TCP server the lab puts at the far end. See `perf/README.md` ("Load generator") and
//! [`mpterm_perf::gen`].
//!
//! Exit status: 0 when every connection completed byte-exact, 1 when any failed (or DPDK
//! could not start), 2 for a command line that cannot be used.

use std::process::ExitCode;

use clap::Parser;
use mpterm_perf::gen::cli::{Cli, Command, GenerateConfig};
use mpterm_perf::gen::dpdk::{describe_target, run, RunOutput};
use mpterm_perf::gen::serve::serve;
use mpterm_perf::gen::summary::{GenResult, RunFigures};
use mpterm_perf::report::{Report, ReportKind};

const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Serve(args)) => match serve(&args) {
            Ok(served) => {
                let failed = served.iter().filter(|c| c.failure.is_some()).count();
                println!("serve: {} connections, {} failed", served.len(), failed);
                if failed == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(EXIT_FAILED)
                }
            }
            Err(error) => {
                eprintln!("mpterm-gen serve: {error}");
                ExitCode::from(EXIT_FAILED)
            }
        },
        None => match cli.generate.validate() {
            Ok(config) => generate(&config),
            Err(error) => {
                eprintln!("mpterm-gen: {error}");
                ExitCode::from(EXIT_USAGE)
            }
        },
    }
}

fn generate(config: &GenerateConfig) -> ExitCode {
    let parameters = parameters(config);
    let mut report = Report::new(ReportKind::Gen, parameters.clone());
    eprintln!("mpterm-gen: {}", describe_target(config));
    let output = match run(config) {
        Ok(output) => output,
        Err(error) => {
            eprintln!("mpterm-gen: {error}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let RunOutput {
        records,
        window_ns,
        client,
        driver,
        app,
        port,
        series,
        cpu,
        window_replicas,
    } = output;
    let result = GenResult::new(RunFigures {
        records: &records,
        window_ns,
        cpu,
        client: &client,
        driver,
        app,
        port,
        series,
    });
    println!("{}", result.summary_line(&client));
    for record in records.iter().filter(|r| r.is_failed()).take(10) {
        println!(
            "mpterm-gen: connection {} failed: {}",
            record.connection,
            record.reason.as_deref().unwrap_or("?")
        );
    }
    if let Some(path) = &config.timeseries_json {
        let mut series_report = Report::new(ReportKind::LabTimeseries, parameters);
        series_report.started_at = report.started_at.clone();
        let written = result
            .series
            .iter()
            .try_for_each(|series| series_report.push(series))
            .and_then(|()| series_report.write(path));
        if let Err(error) = written {
            eprintln!("mpterm-gen: {error}");
            return ExitCode::from(EXIT_FAILED);
        }
    }
    if let Some(path) = &config.json {
        if let Some(parameters) = report.parameters.as_object_mut() {
            parameters.insert("window_replicas".into(), window_replicas.into());
        }
        let written = report.push(&result).and_then(|()| report.write(path));
        if let Err(error) = written {
            eprintln!("mpterm-gen: {error}");
            return ExitCode::from(EXIT_FAILED);
        }
    }
    if result.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

/// The report's `parameters`: the checked options.
fn parameters(config: &GenerateConfig) -> serde_json::Value {
    serde_json::json!({
        "vdev": config.vdev,
        "address": format!("{}/{}", config.address.address, config.address.prefix_len),
        "gateway": config.gateway.map(|gateway| gateway.to_string()),
        "server": config.server.to_string(),
        "connections": config.concurrency,
        "rate": config.rate.unwrap_or(0.0),
        "total": config.total,
        "size": config.size.unwrap_or(0),
        "direction": config.direction.name(),
        "duration_s": config.duration.map_or(0.0, |d| d.as_secs_f64()),
        "dss_checksum": config.dss_checksums,
        "mptcp": config.mptcp,
        "mtu": config.mtu,
        "seed": config.seed,
        "buffer": config.buffer,
        "interval_ms": config.interval.as_millis() as u64,
        "timeout_s": config.timeout.as_secs_f64(),
        "eal_args": config.eal_args,
    })
}
