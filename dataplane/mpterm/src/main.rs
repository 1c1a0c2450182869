//! `mpterm`: the command-line entry point of the MPTCP termination appliance.
//!
//! It loads and validates the configuration, sets up logging and signal handling, starts a
//! statistics reporter, and hands control to the data plane until SIGINT or SIGTERM asks it
//! to stop. Exit codes: 0 on success, 1 when the data plane fails, 2 for a bad command line or
//! configuration (the same code clap uses for usage errors).

#![deny(unsafe_code)]

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use mpterm_control::config::{self, Config, LOG_LEVEL_NAMES};
use mpterm_control::StatsRegistry;
use thiserror::Error;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

/// Exit code for a configuration that cannot be used.
const EXIT_BAD_CONFIG: u8 = 2;
/// Exit code for a failure after start-up.
const EXIT_RUNTIME_FAILURE: u8 = 1;
/// Longest the stats reporter sleeps before looking at the stop flag again, so that shutdown
/// never waits a whole stats interval.
const STOP_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Kernel-bypass MPTCP (RFC 8684) termination appliance on DPDK.
#[derive(Debug, Parser)]
#[command(name = "mpterm", version, about)]
struct Cli {
    /// Path of the TOML configuration file (see control/examples/mpterm.toml).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,

    /// Validate the configuration, print a summary and exit without starting the data plane.
    #[arg(long)]
    check_config: bool,

    /// Log level (trace, debug, info, warn, error, off); overrides RUST_LOG and the config.
    #[arg(long, value_name = "LEVEL", value_parser = parse_log_level_argument)]
    log_level: Option<tracing::level_filters::LevelFilter>,

    /// How often to log the summed worker statistics, in milliseconds; 0 disables it.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    stats_interval_ms: u64,
}

fn parse_log_level_argument(word: &str) -> Result<tracing::level_filters::LevelFilter, String> {
    config::parse_log_level(word).ok_or_else(|| format!("expected one of {LOG_LEVEL_NAMES}"))
}

/// Why the data plane stopped with an error.
#[derive(Debug, Error)]
enum DataplaneError {
    /// The worker crate is not wired in yet; see [`run_dataplane`].
    #[error("dataplane not built yet")]
    NotBuilt,
}

fn main() -> ExitCode {
    let cli = Cli::parse();

    // The configuration is loaded before logging exists because it supplies the log level, so
    // its error goes straight to stderr, as one line.
    let config = match Config::from_file(&cli.config) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("mpterm: {error}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };

    if cli.check_config {
        print!("{}", config_summary(&cli.config, &config));
        return ExitCode::SUCCESS;
    }

    init_logging(cli.log_level, &config);

    let stop = Arc::new(AtomicBool::new(false));
    if let Err(error) = install_signal_handlers(&stop) {
        error!(%error, "cannot install signal handlers");
        return ExitCode::from(EXIT_RUNTIME_FAILURE);
    }

    // One worker for now: the configuration describes a single pinned worker.
    let stats = StatsRegistry::new(1);
    let reporter = spawn_stats_reporter(
        Duration::from_millis(cli.stats_interval_ms),
        Arc::clone(&stop),
        stats.clone(),
    );

    info!(
        config = %cli.config.display(),
        interfaces = config.interfaces.len(),
        proxies = config.proxies.len(),
        "starting"
    );
    let result = run_dataplane(&config, Arc::clone(&stop), stats.clone());

    stop.store(true, Ordering::Relaxed);
    if let Some(reporter) = reporter {
        if reporter.join().is_err() {
            error!("stats reporter thread panicked");
        }
    }
    info!(totals = %one_line(&stats.total()), "final statistics");

    match result {
        Ok(()) => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            error!(%error, "data plane failed");
            ExitCode::from(EXIT_RUNTIME_FAILURE)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// DATA PLANE CALL POINT. The worker crate (mpterm-worker) is not wired in yet: this function
// must be replaced by the real start-up (EAL init, ports, per-core workers) that runs until
// `stop` is set, publishing into `stats`. Until then it fails honestly instead of pretending
// to run.
// ---------------------------------------------------------------------------------------------
fn run_dataplane(
    config: &Config,
    stop: Arc<AtomicBool>,
    stats: StatsRegistry,
) -> Result<(), DataplaneError> {
    let _ = (config, stop, stats);
    Err(DataplaneError::NotBuilt)
}

/// Sets up logging to stderr. Precedence, most specific first: `--log-level`, then `RUST_LOG`
/// (which may hold per-module directives), then `[log] level` from the configuration.
fn init_logging(cli_level: Option<tracing::level_filters::LevelFilter>, config: &Config) {
    let config_filter = || EnvFilter::new(config.log.level.to_string());
    let mut rejected_rust_log = None;
    let filter = match cli_level {
        Some(level) => EnvFilter::new(level.to_string()),
        None => match std::env::var(EnvFilter::DEFAULT_ENV) {
            Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
                .unwrap_or_else(|parse_error| {
                    rejected_rust_log = Some((directives, parse_error));
                    config_filter()
                }),
            _ => config_filter(),
        },
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .init();
    if let Some((directives, parse_error)) = rejected_rust_log {
        tracing::warn!(%directives, %parse_error, "ignoring invalid RUST_LOG");
    }
}

/// SIGINT and SIGTERM set `stop`, which the data plane polls. A second signal while the first
/// is still being handled exits at once with status 1, so a stuck shutdown can be interrupted.
fn install_signal_handlers(stop: &Arc<AtomicBool>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag before the second handler sets it.
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(stop))?;
        signal_hook::flag::register(signal, Arc::clone(stop))?;
    }
    Ok(())
}

/// Starts a thread that logs the summed worker statistics every `interval` until `stop` is
/// set; no thread when `interval` is zero.
fn spawn_stats_reporter(
    interval: Duration,
    stop: Arc<AtomicBool>,
    stats: StatsRegistry,
) -> Option<thread::JoinHandle<()>> {
    if interval.is_zero() {
        return None;
    }
    let spawned = thread::Builder::new()
        .name("mpterm-stats".to_owned())
        .spawn(move || {
            let mut next_report = Instant::now() + interval;
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now >= next_report {
                    info!(totals = %one_line(&stats.total()), "statistics");
                    next_report = now + interval;
                }
                thread::sleep(STOP_POLL_INTERVAL.min(next_report.saturating_duration_since(now)));
            }
        });
    match spawned {
        Ok(handle) => Some(handle),
        Err(spawn_error) => {
            error!(%spawn_error, "cannot start the stats reporter; continuing without it");
            None
        }
    }
}

/// The counters as `name=value` pairs on one line, skipping zeros to keep log lines short.
fn one_line(snapshot: &mpterm_control::StatsSnapshot) -> String {
    let nonzero: Vec<String> = snapshot
        .counters()
        .filter(|(_, value)| *value != 0)
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    if nonzero.is_empty() {
        "all zero".to_owned()
    } else {
        nonzero.join(" ")
    }
}

/// The human-readable summary `--check-config` prints.
fn config_summary(path: &std::path::Path, config: &Config) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    // Writing to a String cannot fail, so the results are ignored on purpose.
    let _ = writeln!(out, "config {} is valid", path.display());
    let _ = writeln!(out, "eal args: {}", config.eal_args.join(" "));
    for interface in &config.interfaces {
        let gateway = interface
            .gateway
            .map_or_else(|| "none".to_owned(), |gateway| gateway.to_string());
        let _ = writeln!(
            out,
            "interface {}: port {} address {}/{} gateway {} mtu {}",
            interface.name,
            interface.port,
            interface.address,
            interface.prefix_len,
            gateway,
            interface.mtu
        );
    }
    for proxy in &config.proxies {
        let via = config
            .route_to(*proxy.backend.ip())
            .map(|route| {
                format!(
                    " via {} next hop {}",
                    config.interfaces[route.interface].name, route.next_hop
                )
            })
            .unwrap_or_default();
        let _ = writeln!(out, "proxy {} -> {}{}", proxy.listen, proxy.backend, via);
    }
    let _ = writeln!(out, "mptcp: {}", config.mptcp);
    let tcp = &config.tcp;
    let _ = writeln!(
        out,
        "tcp: receive_buffer={} send_buffer={} initial_rto_ms={} min_rto_ms={} time_wait_ms={} max_connections={}",
        tcp.receive_buffer,
        tcp.send_buffer,
        tcp.initial_rto_ms,
        tcp.min_rto_ms,
        tcp.time_wait_ms,
        tcp.max_connections
    );
    let core = config
        .worker
        .core
        .map_or_else(|| "unpinned".to_owned(), |core| core.to_string());
    let _ = writeln!(out, "worker: burst={} core={}", config.worker.burst, core);
    let _ = writeln!(out, "log: level={}", config.log.level);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigterm_sets_the_stop_flag() {
        let stop = Arc::new(AtomicBool::new(false));
        install_signal_handlers(&stop).unwrap();
        assert!(!stop.load(Ordering::Relaxed));
        // One signal only: a second one would, by design, end the test process.
        signal_hook::low_level::raise(signal_hook::consts::SIGTERM).unwrap();
        assert!(stop.load(Ordering::Relaxed));
    }

    #[test]
    fn stats_line_lists_only_nonzero_counters() {
        let snapshot = mpterm_control::StatsSnapshot {
            rx_packets: 3,
            tcp_rst_sent: 1,
            ..Default::default()
        };
        assert_eq!(one_line(&snapshot), "rx_packets=3 tcp_rst_sent=1");
        assert_eq!(one_line(&Default::default()), "all zero");
    }
}
