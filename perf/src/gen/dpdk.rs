//! The generator over a real DPDK port: EAL, mempools, the port, the pattern windows in mbufs,
//! and the loop on this thread (the EAL's main lcore), until the run is done.
//!
//! Memory is allocated here, once: the receive pool covers the port's ring, a burst and the
//! payload the connections may hold (received out of order, or not yet taken), bounded like
//! mpterm's (`mpterm_worker::RX_PAYLOAD_MBUFS`); the transmit and indirect pools cover the
//! transmit ring, the bursts held and the engine's own frames; the window pool holds the
//! pattern windows, [`WINDOW_LEN`] bytes each.

use mpterm_dpdk::{DpdkError, Eal, Mbuf, Mempool, Port, PortConfig, TscClock, BURST_SIZE};
use mpterm_engine::client::{ClientConfig, ClientCounters, ClientEngine};
use mpterm_engine::{Instant, InterfaceConfig, TcpTuning};
use mpterm_worker::{Dpdk, DpdkRx, MbufPayload, TxPools, POOL_CACHE, RX_PAYLOAD_MBUFS};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::app::{references_per_slot, AppCounters, LoadApp, LoadConfig};
use super::cli::GenerateConfig;
use super::cpu::CpuTime;
use super::driver::{DriverCounters, Generator};
use super::record::ConnectionRecord;
use super::schedule::OpenPlan;
use super::summary::PortFigures;
use super::windows::{replicas_for, PatternWindows, WINDOWS, WINDOW_LEN};
use crate::pattern::Pattern;
use crate::report::TimeSeries;

/// Frames of the engine's own (ARP, RSTs) that may wait, as the client engine bounds them.
const OWN_FRAMES: u32 = 1024;
/// What the lcore caches may keep of a pool (DPDK lets a cache grow to 1.5 times its size),
/// for the main lcore and one more.
const CACHE_SLACK: u32 = 2 * (POOL_CACHE + POOL_CACHE / 2);
/// Headroom DPDK reserves in front of every frame.
const HEADROOM: u16 = Mempool::DEFAULT_DATA_ROOM - 2048;

/// Why a run could not start or ended in error before its connections could.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("DPDK: {0}")]
    Dpdk(#[from] DpdkError),
    #[error("port {port}: {source}")]
    Port { port: String, source: DpdkError },
    #[error("the client engine refused its configuration: {0}")]
    ClientConfig(#[from] mpterm_engine::client::ConfigError),
    #[error("no mbuf for pattern window {0} (the window pool is too small)")]
    Windows(usize),
    #[error("cannot read the operating system's random source: {0}")]
    Random(std::io::Error),
}

/// What a run leaves behind for the report.
#[derive(Debug)]
pub struct RunOutput {
    pub records: Vec<ConnectionRecord>,
    pub window_ns: Option<(u64, u64)>,
    pub client: ClientCounters,
    pub driver: DriverCounters,
    pub app: AppCounters,
    pub port: Option<PortFigures>,
    pub series: Vec<TimeSeries>,
    pub cpu: CpuTime,
    pub window_replicas: usize,
}

/// The client engine's configuration for the run.
pub fn client_config(config: &GenerateConfig, mac: [u8; 6]) -> ClientConfig {
    let interface = InterfaceConfig {
        mac,
        address: config.address.address,
        prefix_len: config.address.prefix_len,
        gateway: config.gateway,
        mtu: config.mtu,
        ipv6: None,
    };
    let mut client = ClientConfig::new(interface, config.server);
    client.mptcp = config.mptcp;
    client.dss_checksums = config.dss_checksums;
    client.max_connections = config.concurrency;
    // Every port but the well-known ones: with TIME-WAIT reuse after one second, 64,512
    // connections a second to one server.
    client.local_ports = 1024..=65535;
    client.tcp = TcpTuning {
        receive_buffer: config.buffer,
        send_buffer: config.buffer,
        ..TcpTuning::default()
    };
    client
}

/// The application's configuration for the run.
pub fn load_config(config: &GenerateConfig) -> LoadConfig {
    LoadConfig {
        direction: config.direction,
        size: config.size,
        mptcp: config.mptcp,
        plan: OpenPlan {
            concurrency: config.concurrency,
            rate: config.rate,
            duration: config.duration,
            total: config.total,
        },
        interval_ns: config.interval.as_nanos() as u64,
        mss: usize::from(config.mtu) - 40,
    }
}

/// Keys and initial sequence numbers come from the operating system's random source, so that
/// runs after one another never reuse a server's TIME-WAIT four-tuple with an older sequence
/// number; the data itself is the seeded pattern.
fn engine_rng() -> Result<ChaCha20Rng, RunError> {
    let mut seed = [0u8; 32];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut seed))
        .map_err(RunError::Random)?;
    Ok(ChaCha20Rng::from_seed(seed))
}

/// Runs the generator over DPDK until every connection has ended (or the run timed out).
pub fn run(config: &GenerateConfig) -> Result<RunOutput, RunError> {
    let eal = Eal::init(&config.eal_args)?;
    let port_config = PortConfig::default();
    let mss = usize::from(config.mtu) - 40;
    let data_room = (config.mtu + 18).max(2048) + HEADROOM;
    let burst = BURST_SIZE as u32;
    let payload_mbufs = (config.concurrency as u64 * (u64::from(config.buffer) / mss as u64 + 16))
        .min(u64::from(RX_PAYLOAD_MBUFS)) as u32;
    let rx_mbufs = u32::from(port_config.rx_descriptors) + burst + payload_mbufs + CACHE_SLACK;
    let tx_mbufs = u32::from(port_config.tx_descriptors) + 2 * burst + 1 + OWN_FRAMES + CACHE_SLACK;
    let replicas = replicas_for(
        config.concurrency,
        references_per_slot(config.buffer as usize, mss),
    );
    let rx_pool = Mempool::new(&eal, "gen_rx", rx_mbufs, POOL_CACHE, data_room)?;
    let tx_pool = Mempool::new(&eal, "gen_tx", tx_mbufs, POOL_CACHE, data_room)?;
    let indirect_pool = Mempool::new(&eal, "gen_indirect", tx_mbufs, POOL_CACHE, 0)?;
    let window_pool = Mempool::new(
        &eal,
        "gen_pattern",
        (replicas * WINDOWS) as u32,
        0,
        WINDOW_LEN as u16 + HEADROOM,
    )?;

    let port_error = |source| RunError::Port {
        port: config.port_name.clone(),
        source,
    };
    let mut port = Port::by_name(&eal, &config.port_name).map_err(port_error)?;
    port.configure(&port_config, &rx_pool).map_err(port_error)?;
    port.start().map_err(port_error)?;
    // Frames for our MAC arrive without it; only frames for other hosts are missed.
    let _ = port.enable_promiscuous();
    let mac = port.mac_address().map_err(port_error)?;
    let rx = DpdkRx::new(port.take_rx_queue(0).map_err(port_error)?);
    let tx = port.take_tx_queue(0).map_err(port_error)?;

    let pattern = Pattern::new(config.seed);
    let mut made = 0;
    let windows = PatternWindows::new(&pattern, replicas, |bytes| {
        made += 1;
        let mut mbuf = Mbuf::alloc(&window_pool)?;
        mbuf.append(u16::try_from(bytes.len()).ok()?)?
            .copy_from_slice(bytes);
        mbuf.into_slice().ok().map(MbufPayload::new)
    })
    .ok_or(RunError::Windows(made))?;

    let clock = TscClock::new(&eal);
    let now = || Instant::from_nanos(clock.elapsed().as_nanos() as u64);
    let client = ClientEngine::new(client_config(config, mac), engine_rng()?)?;
    let app = LoadApp::new(load_config(config), pattern, windows, config.concurrency);
    let pools = TxPools {
        header: &tx_pool,
        indirect: &indirect_pool,
    };
    let mut generator = Generator::<Dpdk, _>::new(client, app, rx, tx, pools);
    let cpu_before = CpuTime::of_this_process();
    generator.run(config.timeout, now);
    let cpu = CpuTime::of_this_process().since(cpu_before);

    let port_figures = port.stats().ok().map(|stats| PortFigures {
        ipackets: stats.ipackets,
        opackets: stats.opackets,
        ibytes: stats.ibytes,
        obytes: stats.obytes,
        imissed: stats.imissed,
        ierrors: stats.ierrors,
        oerrors: stats.oerrors,
        rx_nombuf: stats.rx_nombuf,
    });
    let output = RunOutput {
        records: generator.app().records().to_vec(),
        window_ns: generator.app().transfer_window_ns(),
        client: *generator.client().counters(),
        driver: generator.counters(),
        app: generator.app().counters(),
        port: port_figures,
        series: generator.app().series(),
        cpu,
        window_replicas: replicas,
    };
    drop(generator);
    let _ = port.stop();
    Ok(output)
}

/// The run's endpoints, for messages.
pub fn describe_target(config: &GenerateConfig) -> String {
    format!(
        "{} from {}/{} on {}",
        config.server, config.address.address, config.address.prefix_len, config.port_name
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::cli::{Cli, GenerateArgs};
    use crate::report::Direction;
    use clap::Parser;

    fn generate(args: &[&str]) -> GenerateConfig {
        generate_to("198.18.0.2:5000", args)
    }

    fn generate_to(server: &str, args: &[&str]) -> GenerateConfig {
        let base = [
            "mpterm-gen",
            "--vdev",
            "net_af_packet0,iface=g0",
            "--address",
            "198.18.0.1/24",
            "--server",
            server,
        ];
        let cli = Cli::try_parse_from(base.iter().chain(args).copied()).unwrap();
        let generate: GenerateArgs = cli.generate;
        generate.validate().unwrap()
    }

    #[test]
    fn the_engine_and_the_app_get_what_the_command_line_says() {
        let config = generate(&[
            "--connections",
            "64",
            "--mptcp",
            "on",
            "--dss-checksum",
            "off",
            "--mtu",
            "9000",
            "--buffer",
            "256KiB",
            "--direction",
            "download",
            "--rate",
            "100",
            "--duration",
            "3",
        ]);
        let client = client_config(&config, [2, 0, 0, 0, 0, 1]);
        assert!(client.validate().is_ok());
        assert_eq!(client.max_connections, 64);
        assert!(client.mptcp && !client.dss_checksums);
        assert_eq!(client.interface.mtu, 9000);
        assert_eq!(client.interface.mac, [2, 0, 0, 0, 0, 1]);
        assert_eq!(client.tcp.send_buffer, 256 << 10);
        assert_eq!(client.tcp.receive_buffer, 256 << 10);
        let load = load_config(&config);
        assert_eq!(load.direction, Direction::Download);
        assert_eq!(load.mss, 8960);
        assert_eq!(load.plan.concurrency, 64);
        assert_eq!(load.plan.rate, Some(100.0));
        assert_eq!(load.plan.total, None);
        assert_eq!(load.interval_ns, 100_000_000);
    }

    #[test]
    fn a_server_behind_a_gateway_is_accepted_and_one_without_is_refused() {
        let routed = generate_to("198.19.5.7:80", &["--gateway", "198.18.0.254"]);
        assert!(client_config(&routed, [2; 6]).validate().is_ok());
        let unrouted = generate_to("198.19.5.7:80", &[]);
        assert!(client_config(&unrouted, [2; 6]).validate().is_err());
    }
}
