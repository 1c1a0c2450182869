//! `mpterm`: the command-line entry point of the MPTCP termination appliance.
//!
//! It loads and validates the configuration, sets up logging and signal handling, starts a
//! worker thread for the data plane while the main thread, the control thread, logs statistics
//! and serves the operator's control socket (`control.socket`), until SIGINT or SIGTERM asks it
//! to stop. Exit codes: 0 on success, 1 when the data plane fails, 2 for a bad command line or
//! configuration (the same code clap uses for usage errors).
//!
//! `mpterm ctl --socket PATH COMMAND...` is the operator's client: it sends one command to a
//! running mpterm's control socket and prints the reply line. Exit codes: 0 for an `ok:` reply,
//! 1 for an `error:` reply, 2 for a bad command line, 3 when no reply came.

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
use mpterm_control::operator::{self, ConnectionsReport, OperatorHandle, Outcome};
use mpterm_control::{ControlSocket, StatsRegistry};
use thiserror::Error;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

/// Exit code for a configuration that cannot be used.
const EXIT_BAD_CONFIG: u8 = 2;
/// Exit code for a failure after start-up.
const EXIT_RUNTIME_FAILURE: u8 = 1;
/// Exit code of `mpterm ctl` when the appliance refused the command.
const EXIT_COMMAND_REFUSED: u8 = 1;
/// Exit code of `mpterm ctl` when no reply came.
const EXIT_NO_REPLY: u8 = 3;
/// Longest the control thread sleeps before looking at the stop flag again, so that shutdown
/// never waits a whole stats interval.
const STOP_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Longest the control thread sleeps between two looks at the control socket, when there is
/// one: an operator's command waits at most this long, plus the worker's housekeeping interval.
const CONTROL_SOCKET_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Kernel-bypass MPTCP (RFC 8684) termination appliance on DPDK.
#[derive(Debug, Parser)]
#[command(
    name = "mpterm",
    version,
    about,
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Path of the TOML configuration file (see control/examples/mpterm.toml).
    #[arg(long, value_name = "FILE", required = true)]
    config: Option<PathBuf>,

    /// Validate the configuration, print a summary and exit without starting the data plane.
    #[arg(long)]
    check_config: bool,

    /// Log level (trace, debug, info, warn, error, off); overrides RUST_LOG and the config.
    #[arg(long, value_name = "LEVEL", value_parser = parse_log_level_argument)]
    log_level: Option<tracing::level_filters::LevelFilter>,

    /// How often to log the summed worker statistics, in milliseconds; 0 disables it.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    stats_interval_ms: u64,

    #[command(subcommand)]
    command: Option<CliCommand>,
}

#[derive(Debug, clap::Subcommand)]
enum CliCommand {
    /// Sends one operator command to a running mpterm (its control.socket) and prints the reply.
    Ctl(CtlArgs),
}

#[derive(Debug, clap::Args)]
struct CtlArgs {
    /// The appliance's control socket (control.socket in its configuration).
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,

    /// How long to wait for the reply, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    timeout_ms: u64,

    /// The command: withdraw ADDRESS, announce ADDRESS, backup ADDRESS on|off, report, help.
    #[arg(required = true, num_args = 1.., value_name = "COMMAND")]
    command: Vec<String>,
}

/// `mpterm ctl`: one command, one reply line on stdout.
fn run_ctl(args: &CtlArgs) -> ExitCode {
    let line = args.command.join(" ");
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    match mpterm_control::control_socket::send_command(&args.socket, &line, timeout) {
        Ok(reply) => {
            println!("{reply}");
            if reply.starts_with("ok") {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_COMMAND_REFUSED)
            }
        }
        Err(error) => {
            eprintln!("mpterm ctl: {error}");
            ExitCode::from(EXIT_NO_REPLY)
        }
    }
}

fn parse_log_level_argument(word: &str) -> Result<tracing::level_filters::LevelFilter, String> {
    config::parse_log_level(word).ok_or_else(|| format!("expected one of {LOG_LEVEL_NAMES}"))
}

/// Why the data plane stopped with an error. Each message is one line that names what failed.
#[derive(Debug, Error)]
enum DataplaneError {
    /// DPDK refused a call (EAL arguments, pools).
    #[error(transparent)]
    Dpdk(#[from] Box<mpterm_dpdk::DpdkError>),
    /// An interface names a DPDK port that does not exist.
    #[error("interface {interface}: port {port}: {source}")]
    Port {
        interface: String,
        port: String,
        source: Box<mpterm_dpdk::DpdkError>,
    },
    /// The operating system's random generator failed.
    #[error("cannot seed the random generator from the operating system")]
    Random,
    /// The worker thread could not be started.
    #[error("cannot start the worker thread: {0}")]
    WorkerThread(std::io::Error),
    /// The worker thread panicked (its message is already on stderr).
    #[error("the worker thread panicked")]
    WorkerPanicked,
    /// The operator's control socket could not be opened.
    #[error(transparent)]
    ControlSocket(#[from] mpterm_control::ControlSocketError),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(CliCommand::Ctl(args)) = &cli.command {
        return run_ctl(args);
    }
    let Some(config_path) = cli.config.clone() else {
        // clap requires --config unless a subcommand is given.
        eprintln!("mpterm: --config FILE is required");
        return ExitCode::from(EXIT_BAD_CONFIG);
    };

    // The configuration is loaded before logging exists because it supplies the log level, so
    // its error goes straight to stderr, as one line.
    let config = match Config::from_file(&config_path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("mpterm: {error}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };

    if cli.check_config {
        print!("{}", config_summary(&config_path, &config));
        return ExitCode::SUCCESS;
    }

    init_logging(cli.log_level, &config);

    let stop = Arc::new(AtomicBool::new(false));
    if let Err(error) = install_signal_handlers(&stop) {
        error!(%error, "cannot install signal handlers");
        return ExitCode::from(EXIT_RUNTIME_FAILURE);
    }
    // SIGUSR1 asks the worker to log its connections and their subflows, once.
    let report = Arc::new(AtomicBool::new(false));
    if let Err(error) =
        signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&report))
    {
        error!(%error, "cannot install the SIGUSR1 handler");
        return ExitCode::from(EXIT_RUNTIME_FAILURE);
    }

    // One worker for now: the configuration describes a single pinned worker.
    let stats = StatsRegistry::new(1);
    info!(
        config = %config_path.display(),
        interfaces = config.interfaces.len(),
        proxies = config.proxies.len(),
        "starting"
    );
    let result = run_dataplane(
        &config,
        Arc::clone(&stop),
        report,
        stats.clone(),
        Duration::from_millis(cli.stats_interval_ms),
    );

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

/// Starts DPDK (EAL, pools, ports), runs the worker on a thread of its own and makes this thread
/// the control thread: it logs the summed statistics every `stats_interval` (never, when zero)
/// and serves the operator's control socket (when configured) until `stop` is set, then joins
/// the worker and stops the ports.
fn run_dataplane(
    config: &Config,
    stop: Arc<AtomicBool>,
    report: Arc<AtomicBool>,
    stats: StatsRegistry,
    stats_interval: Duration,
) -> Result<(), DataplaneError> {
    use mpterm_dpdk::{Eal, Mempool, Port, PortConfig, TscClock};
    use mpterm_worker::{Dpdk, DpdkRx, MbufPayload, SharedTokens, TxPools, Worker, WorkerPort};
    use rand_chacha::rand_core::SeedableRng;

    // The control socket first: a path in use fails start-up before DPDK takes the ports.
    let mut control_socket = match &config.control.socket {
        Some(path) => {
            let socket = ControlSocket::bind(path)?;
            info!(path = %path.display(), "control socket listening");
            Some(socket)
        }
        None => None,
    };
    let (operator_handle, operator_requests) = operator::operator_channel();

    let eal = Eal::init(&config.eal_args).map_err(Box::new)?;
    // All packet memory is allocated here and bounded by these pools (the formula is in
    // mpterm_worker::PoolPlan and the README).
    let port_config = PortConfig::default();
    let plan = mpterm_worker::PoolPlan::for_config(config, &port_config);
    let pool = |name, mbufs, data_room| {
        Mempool::new(&eal, name, mbufs, mpterm_worker::POOL_CACHE, data_room).map_err(Box::new)
    };
    let rx_pool = pool("mpterm_rx", plan.rx_mbufs, plan.data_room)?;
    let tx_pool = pool("mpterm_tx", plan.tx_mbufs, plan.data_room)?;
    let indirect_pool = pool("mpterm_indirect", plan.indirect_mbufs, 0)?;
    info!(
        rx_mbufs = plan.rx_mbufs,
        tx_mbufs = plan.tx_mbufs,
        indirect_mbufs = plan.indirect_mbufs,
        data_room = plan.data_room,
        megabytes = plan.memory_bytes() / 1_000_000,
        "mempools created"
    );

    let mut ports = Vec::with_capacity(config.interfaces.len());
    let mut queues = Vec::with_capacity(config.interfaces.len());
    let mut macs = Vec::with_capacity(config.interfaces.len());
    for interface in &config.interfaces {
        let port_error = |source| DataplaneError::Port {
            interface: interface.name.clone(),
            port: interface.port.clone(),
            source: Box::new(source),
        };
        let mut port = Port::by_name(&eal, &interface.port).map_err(port_error)?;
        port.configure(&port_config, &rx_pool).map_err(port_error)?;
        port.start().map_err(port_error)?;
        if let Err(error) = port.enable_promiscuous() {
            // Frames for our MAC still arrive; nothing is lost but other hosts' frames.
            tracing::debug!(port = %interface.port, %error, "promiscuous mode not available");
        }
        let mac = port.mac_address().map_err(port_error)?;
        info!(interface = %interface.name, port = %interface.port, address = %interface.address,
            mac = %format_mac(mac), "port started");
        queues.push((
            port.take_rx_queue(0).map_err(port_error)?,
            port.take_tx_queue(0).map_err(port_error)?,
        ));
        macs.push(mac);
        ports.push(port);
    }

    // The engine's generator picks MPTCP keys and initial sequence numbers, so it is seeded from
    // the operating system's secure source (RFC 8684 section 2.1, RFC 9293 section 3.4.1).
    let mut seed = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
        .map_err(|_| DataplaneError::Random)?;
    let rng = rand_chacha::ChaCha20Rng::from_seed(seed);
    let tokens = Arc::new(mpterm_control::TokenTable::new());
    let engine_config = mpterm_worker::engine_config(config, &macs);
    let announced: Vec<usize> = config
        .interfaces
        .iter()
        .enumerate()
        .filter_map(|(index, interface)| interface.announce.then_some(index))
        .collect();
    let worker_stats = stats
        .worker(0)
        .expect("the registry was made for one worker");
    let core = config.worker.core;

    let summary = thread::scope(|scope| {
        let (eal, stop_flag, report_flag) = (&eal, &*stop, &*report);
        let pools = TxPools {
            header: &tx_pool,
            indirect: &indirect_pool,
        };
        // Mbufs (and so the engine holding them) never cross threads: everything that owns one
        // is built on the worker thread itself. Every DPDK handle borrows `eal`, so the worker
        // can only run on a scoped thread: the scope ends, and the worker with it, before the
        // EAL can be cleaned up.
        let worker_thread = thread::Builder::new()
            .name("mpterm-worker".to_owned())
            .spawn_scoped(scope, move || {
                if let Some(core) = core {
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                        tracing::warn!(core, "cannot pin the worker to its core; running unpinned");
                    }
                }
                match eal.register_current_thread() {
                    Ok(lcore) => tracing::debug!(lcore, "worker registered with the EAL"),
                    // Bursts work without it; only the mempool caches are lost.
                    Err(error) => tracing::warn!(%error, "worker not registered with the EAL"),
                }
                let ports = queues
                    .into_iter()
                    .map(|(rx, tx)| WorkerPort::<Dpdk>::new(DpdkRx::new(rx), tx))
                    .collect();
                let mut engine = mpterm_engine::Engine::<MbufPayload, _, _>::new(
                    engine_config,
                    rng,
                    SharedTokens::new(tokens, 0),
                );
                // ADD_ADDR (RFC 8684 section 3.4.1) for the interfaces configured with
                // `announce = true`, before any connection exists.
                for &index in &announced {
                    if let Err(error) =
                        engine.announce_address(mpterm_engine::Instant::ZERO, index, None)
                    {
                        tracing::warn!(%error, index, "address not announced");
                    }
                }
                let mut worker =
                    Worker::new(engine, ports, pools, TscClock::new(eal), worker_stats);
                worker.set_operator_requests(operator_requests);
                info!(?core, "worker running");
                worker.run_with(stop_flag, |engine| {
                    if report_flag.swap(false, Ordering::Relaxed) {
                        log_connections(&mpterm_worker::operator::connections_report(engine));
                    }
                });
                WorkerSummary {
                    counters: worker.counters(),
                    connections: worker.engine().connection_count(),
                }
            })
            .map_err(DataplaneError::WorkerThread)?;
        let mut control = control_socket.as_mut().map(|socket| OperatorControl {
            socket,
            handle: &operator_handle,
            config,
        });
        report_until_stopped(stats_interval, stop_flag, &stats, control.as_mut(), || {
            worker_thread.is_finished()
        });
        stop_flag.store(true, Ordering::Relaxed);
        worker_thread
            .join()
            .map_err(|_| DataplaneError::WorkerPanicked)
    })?;
    info!(
        tx_dropped_full = summary.counters.tx_dropped_full,
        tx_dropped_no_mbuf = summary.counters.tx_dropped_no_mbuf,
        rx_dropped_segmented = summary.counters.rx_dropped_segmented,
        connections = summary.connections,
        "worker stopped"
    );
    for port in &mut ports {
        if let Err(error) = port.stop() {
            tracing::warn!(%error, "port stop failed");
        }
    }
    Ok(())
}

/// What the worker thread hands back when it stops.
#[derive(Debug)]
struct WorkerSummary {
    counters: mpterm_worker::WorkerCounters,
    connections: usize,
}

/// The operator's control socket, served by the control thread.
struct OperatorControl<'a> {
    socket: &'a mut ControlSocket,
    handle: &'a OperatorHandle,
    config: &'a Config,
}

impl OperatorControl<'_> {
    /// Answers every command line waiting on the socket: parsed, applied by the worker at its
    /// next housekeeping, logged.
    fn serve(&mut self) {
        let (handle, config) = (self.handle, self.config);
        self.socket.poll(|line| {
            let result = operator::execute_line(line, &config.interfaces, handle);
            let reply = operator::reply_line(&result);
            match &result {
                Ok(Outcome::Report(report)) => log_connections(report),
                Ok(Outcome::Help) => {}
                Ok(_) => info!(command = line.trim(), %reply, "operator command"),
                Err(_) => tracing::warn!(command = line.trim(), %reply, "operator command refused"),
            }
            reply
        });
    }
}

/// The control thread's loop: logs the summed worker statistics every `interval` (never when it
/// is zero) and serves the control socket (when there is one) until `stop` is set or
/// `worker_done` says the worker ended on its own. It looks at the flag every
/// [`STOP_POLL_INTERVAL`] (the socket every [`CONTROL_SOCKET_POLL_INTERVAL`]), so shutdown
/// never waits a whole stats interval.
fn report_until_stopped(
    interval: Duration,
    stop: &AtomicBool,
    stats: &StatsRegistry,
    mut control: Option<&mut OperatorControl<'_>>,
    worker_done: impl Fn() -> bool,
) {
    let poll_interval = if control.is_some() {
        CONTROL_SOCKET_POLL_INTERVAL
    } else {
        STOP_POLL_INTERVAL
    };
    let mut next_report = Instant::now() + interval;
    while !stop.load(Ordering::Relaxed) && !worker_done() {
        if let Some(control) = control.as_deref_mut() {
            control.serve();
        }
        let now = Instant::now();
        if interval.is_zero() {
            thread::sleep(poll_interval);
            continue;
        }
        if now >= next_report {
            info!(totals = %one_line(&stats.total()), "statistics");
            next_report = now + interval;
        }
        thread::sleep(poll_interval.min(next_report.saturating_duration_since(now)));
    }
}

fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
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

/// One log line per subflow of every connection (SIGUSR1 and the `report` command ask for it):
/// its path, state, RTT, congestion window and bytes, for an operator looking at how a client's
/// paths are used.
fn log_connections(report: &ConnectionsReport) {
    info!(connections = report.connections, "connection report");
    for subflow in &report.subflows {
        info!(
            connection = subflow.connection,
            subflow = subflow.subflow,
            interface = subflow.interface,
            local = %subflow.local,
            remote = %subflow.remote,
            state = %subflow.state,
            joining = subflow.joining,
            backup = subflow.backup,
            stale = subflow.stale,
            local_address_id = subflow.local_address_id,
            remote_address_id = subflow.remote_address_id,
            rtt_us = subflow.rtt_us,
            congestion_window = subflow.congestion_window,
            bytes_sent = subflow.bytes_sent,
            bytes_received = subflow.bytes_received,
            "subflow"
        );
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
    let _ = writeln!(
        out,
        "tcp: connect_timeout_ms={} max_time_wait={} time_wait_reuse={} ecn={} local_port_range={}-{}",
        tcp.connect_timeout_ms,
        tcp.max_time_wait,
        tcp.time_wait_reuse,
        tcp.ecn,
        tcp.local_port_range.0,
        tcp.local_port_range.1
    );
    for (name, side) in [("client", &tcp.client), ("backend", &tcp.backend)] {
        let keepalive = if side.keepalive {
            format!(
                "idle {} ms, every {} ms, {} probes",
                side.keepalive_idle_ms, side.keepalive_interval_ms, side.keepalive_probes
            )
        } else {
            "off".to_owned()
        };
        let user_timeout = match side.user_timeout_ms {
            0 => "off".to_owned(),
            ms => format!("{ms} ms"),
        };
        let _ = writeln!(
            out,
            "tcp.{name}: keepalive {keepalive}; fin_wait_2_timeout {} ms; user_timeout {user_timeout}",
            side.fin_wait_2_timeout_ms
        );
    }
    let core = config
        .worker
        .core
        .map_or_else(|| "unpinned".to_owned(), |core| core.to_string());
    let _ = writeln!(out, "worker: burst={} core={}", config.worker.burst, core);
    let _ = writeln!(out, "log: level={}", config.log.level);
    let socket = config
        .control
        .socket
        .as_ref()
        .map_or_else(|| "none".to_owned(), |path| path.display().to_string());
    let _ = writeln!(out, "control: socket={socket}");
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
    fn the_appliance_needs_a_config_and_ctl_needs_a_socket_and_a_command() {
        let run = Cli::try_parse_from(["mpterm", "--config", "a.toml"]).unwrap();
        assert_eq!(run.config, Some(PathBuf::from("a.toml")));
        assert!(run.command.is_none());
        assert!(Cli::try_parse_from(["mpterm"]).is_err());

        let ctl = Cli::try_parse_from([
            "mpterm",
            "ctl",
            "--socket",
            "/run/m.sock",
            "backup",
            "198.18.1.2",
            "on",
        ])
        .unwrap();
        match ctl.command {
            Some(CliCommand::Ctl(args)) => {
                assert_eq!(args.socket, PathBuf::from("/run/m.sock"));
                assert_eq!(args.command, ["backup", "198.18.1.2", "on"]);
            }
            other => panic!("expected ctl, got {other:?}"),
        }
        assert!(Cli::try_parse_from(["mpterm", "ctl", "--socket", "/run/m.sock"]).is_err());
        assert!(Cli::try_parse_from(["mpterm", "ctl", "report"]).is_err());
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
