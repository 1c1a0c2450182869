//! The command line of `mpterm-gen`: the generator's options (the default command) and
//! `serve`, and their checks.

use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use core::time::Duration;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::report::Direction;

/// The EAL arguments used when none follow `--`: what mpterm's lab uses (no hugepages, no PCI
/// scan, no shared config so that several DPDK processes can run at once).
pub const DEFAULT_EAL_ARGS: [&str; 5] = ["--no-huge", "-m", "512", "--no-pci", "--no-shconf"];

#[derive(Debug, Parser)]
#[command(
    name = "mpterm-gen",
    about = "MPTCP load generator over DPDK ports: mpterm's client-role engine, every byte verified",
    long_about = None,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub generate: GenerateArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// A plain TCP server for the lab (std::net, a thread per connection): verifies what it
    /// receives against the pattern and sends its download; run it under `mptcpize run` to
    /// make it an MPTCP server.
    Serve(ServeArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Toggle {
    On,
    Off,
}

impl Toggle {
    pub fn is_on(self) -> bool {
        self == Toggle::On
    }
}

/// Which way the data goes, seen from the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Way {
    Upload,
    Download,
    Both,
}

impl Way {
    pub fn direction(self) -> Direction {
        match self {
            Way::Upload => Direction::Upload,
            Way::Download => Direction::Download,
            Way::Both => Direction::Bidirectional,
        }
    }
}

/// The generator's options.
#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// The DPDK device (devargs), e.g. `net_af_packet0,iface=g0` or
    /// `net_af_xdp0,iface=g0,start_queue=0,queue_count=1`; passed to the EAL as `--vdev`.
    #[arg(long, value_name = "DEVARGS", required = true)]
    pub vdev: Option<String>,
    /// The generator's own address and on-link prefix.
    #[arg(long, value_name = "A.B.C.D/LEN", value_parser = parse_interface_address, required = true)]
    pub address: Option<InterfaceAddress>,
    /// Next hop for a server outside the prefix.
    #[arg(long, value_name = "A.B.C.D")]
    pub gateway: Option<Ipv4Addr>,
    /// The server every connection goes to.
    #[arg(long, value_name = "A.B.C.D:PORT", required = true)]
    pub server: Option<SocketAddrV4>,
    /// Connections open at once, at most.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub connections: usize,
    /// New connections per second; 0 opens all of them at once and keeps them until their
    /// transfer is done.
    #[arg(long, value_name = "R", default_value_t = 0.0)]
    pub rate: f64,
    /// Connections to open in all (default: --connections at rate 0, no limit at a rate).
    #[arg(long, value_name = "N")]
    pub total: Option<u64>,
    /// Bytes per connection, each way the direction says (K, M, G, KiB, MiB, GiB suffixes);
    /// 0 moves data until --duration ends.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, default_value = "16MiB")]
    pub size: u64,
    #[arg(long, value_enum, default_value = "upload")]
    pub direction: Way,
    /// Stop opening connections after this many seconds (those open finish their transfer);
    /// 0 for no limit.
    #[arg(long, value_name = "S", default_value_t = 0.0)]
    pub duration: f64,
    /// Ask for DSS checksums (RFC 8684 section 3.3.1).
    #[arg(long, value_enum, default_value = "on")]
    pub dss_checksum: Toggle,
    /// Ask for MPTCP (off: plain TCP).
    #[arg(long, value_enum, default_value = "on")]
    pub mptcp: Toggle,
    /// The generator's MTU (576..=9000): its MSS is MTU - 40. A device must pass frames this
    /// big (af_packet: its `framesz` devarg).
    #[arg(long, default_value_t = 1500)]
    pub mtu: u16,
    /// Seed of the pattern data; the server must use the same.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Send and receive buffer per connection (the window it advertises).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, default_value = "1MiB")]
    pub buffer: u64,
    /// Write the report (kind `gen`) here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write the goodput series as a `lab-timeseries` report (for mpterm-plot).
    #[arg(long, value_name = "FILE")]
    pub timeseries_json: Option<PathBuf>,
    /// Length of one interval of the goodput series.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub interval_ms: u64,
    /// The longest the whole run may take; connections still open then are aborted and fail.
    #[arg(long, value_name = "S", default_value_t = 300.0)]
    pub timeout: f64,
    /// EAL arguments (after `--`); default: --no-huge -m 512 --no-pci --no-shconf.
    #[arg(last = true, value_name = "EAL ARGS")]
    pub eal: Vec<String>,
}

/// An IPv4 address with its on-link prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceAddress {
    pub address: Ipv4Addr,
    pub prefix_len: u8,
}

/// `a.b.c.d/len` with `len` at most 32.
pub fn parse_interface_address(text: &str) -> Result<InterfaceAddress, String> {
    let (address, prefix) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not A.B.C.D/LEN"))?;
    let address: Ipv4Addr = address
        .parse()
        .map_err(|_| format!("{address:?} is not an IPv4 address"))?;
    let prefix_len: u8 = prefix
        .parse()
        .ok()
        .filter(|len| *len <= 32)
        .ok_or_else(|| format!("prefix length {prefix:?} is not 0..=32"))?;
    Ok(InterfaceAddress {
        address,
        prefix_len,
    })
}

/// A byte count: digits with an optional suffix K, M, G (powers of 1000) or KiB, MiB, GiB
/// (powers of 1024).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(digits_end);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a byte count"))?;
    let unit: u64 = match suffix {
        "" => 1,
        "K" | "k" => 1000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(format!("unknown unit {suffix:?} (K, M, G, KiB, MiB, GiB)")),
    };
    number
        .checked_mul(unit)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Why the generator's options cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArgsError {
    #[error("--connections must be at least 1")]
    NoConnections,
    #[error("--rate must be a finite number >= 0, not {0}")]
    Rate(f64),
    #[error("--duration must be a finite number >= 0, not {0}")]
    Duration(f64),
    #[error("--size 0 (transfer until --duration ends) needs --duration")]
    EndlessWithoutDuration,
    #[error("--rate needs --duration or --total, or it never stops opening connections")]
    RateWithoutEnd,
    #[error("--interval-ms must be at least 1")]
    Interval,
    #[error("--mtu {0} is outside 576..=9000")]
    Mtu(u16),
    #[error("--buffer must be 64KiB..=1GiB, not {0}")]
    Buffer(u64),
    #[error("--timeout must be a finite number of seconds beyond --duration, not {0}")]
    Timeout(f64),
    #[error("--vdev, --address and --server are required")]
    Missing,
    #[error("--vdev {0:?} names no device")]
    Vdev(String),
}

/// The generator's options once checked.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateConfig {
    /// The `--vdev` argument for the EAL.
    pub vdev: String,
    /// The DPDK port name: the devargs up to the first comma.
    pub port_name: String,
    pub address: InterfaceAddress,
    pub gateway: Option<Ipv4Addr>,
    pub server: SocketAddrV4,
    pub concurrency: usize,
    /// `None` opens every connection at once.
    pub rate: Option<f64>,
    pub total: Option<u64>,
    /// `None`: move data until the duration ends.
    pub size: Option<u64>,
    pub direction: Direction,
    pub duration: Option<Duration>,
    pub dss_checksums: bool,
    pub mptcp: bool,
    pub mtu: u16,
    pub seed: u64,
    pub buffer: u32,
    pub json: Option<PathBuf>,
    pub timeseries_json: Option<PathBuf>,
    pub interval: Duration,
    pub timeout: Duration,
    /// Every argument for `rte_eal_init`, the `--vdev` included.
    pub eal_args: Vec<String>,
}

impl GenerateArgs {
    /// Checks the options and fills in what they imply.
    pub fn validate(&self) -> Result<GenerateConfig, ArgsError> {
        let (Some(vdev), Some(address), Some(server)) =
            (self.vdev.clone(), self.address, self.server)
        else {
            return Err(ArgsError::Missing);
        };
        let port_name = vdev.split(',').next().unwrap_or("").trim().to_string();
        if port_name.is_empty() {
            return Err(ArgsError::Vdev(vdev));
        }
        if self.connections == 0 {
            return Err(ArgsError::NoConnections);
        }
        if !self.rate.is_finite() || self.rate < 0.0 {
            return Err(ArgsError::Rate(self.rate));
        }
        if !self.duration.is_finite() || self.duration < 0.0 {
            return Err(ArgsError::Duration(self.duration));
        }
        let duration = (self.duration > 0.0).then(|| Duration::from_secs_f64(self.duration));
        let rate = (self.rate > 0.0).then_some(self.rate);
        let size = (self.size > 0).then_some(self.size);
        if size.is_none() && duration.is_none() {
            return Err(ArgsError::EndlessWithoutDuration);
        }
        let total = match (rate, self.total) {
            (_, Some(total)) => Some(total),
            (None, None) => Some(self.connections as u64),
            (Some(_), None) if duration.is_some() => None,
            (Some(_), None) => return Err(ArgsError::RateWithoutEnd),
        };
        if self.interval_ms == 0 {
            return Err(ArgsError::Interval);
        }
        if !mpterm_engine::client::MTU_RANGE.contains(&self.mtu) {
            return Err(ArgsError::Mtu(self.mtu));
        }
        if !(64 << 10..=1 << 30).contains(&self.buffer) {
            return Err(ArgsError::Buffer(self.buffer));
        }
        if !self.timeout.is_finite() || self.timeout <= self.duration {
            return Err(ArgsError::Timeout(self.timeout));
        }
        let mut eal_args: Vec<String> = if self.eal.is_empty() {
            DEFAULT_EAL_ARGS.iter().map(|arg| arg.to_string()).collect()
        } else {
            self.eal.clone()
        };
        eal_args.push(format!("--vdev={vdev}"));
        Ok(GenerateConfig {
            vdev,
            port_name,
            address,
            gateway: self.gateway,
            server,
            concurrency: self.connections,
            rate,
            total,
            size,
            direction: self.direction.direction(),
            duration,
            dss_checksums: self.dss_checksum.is_on(),
            mptcp: self.mptcp.is_on(),
            mtu: self.mtu,
            seed: self.seed,
            buffer: self.buffer as u32,
            json: self.json.clone(),
            timeseries_json: self.timeseries_json.clone(),
            interval: Duration::from_millis(self.interval_ms),
            timeout: Duration::from_secs_f64(self.timeout),
            eal_args,
        })
    }
}

/// The options of `mpterm-gen serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Where to listen.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// Bytes of pattern to send on every connection (stream = the connection's number, from 0).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, default_value = "0")]
    pub download: u64,
    /// Send pattern until the client ends its stream, instead of --download bytes.
    #[arg(long)]
    pub until_eof: bool,
    /// Seed of the pattern data; the generator must use the same.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Exit once this many connections have ended (0: serve until killed). The exit status
    /// is 1 if any of them failed.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub connections: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("mpterm-gen").chain(args.iter().copied()))
    }

    const REQUIRED: [&str; 6] = [
        "--vdev",
        "net_af_packet0,iface=g0",
        "--address",
        "198.18.0.1/24",
        "--server",
        "198.18.0.2:5000",
    ];

    fn generate(extra: &[&str]) -> Result<GenerateConfig, ArgsError> {
        let args: Vec<&str> = REQUIRED.iter().chain(extra).copied().collect();
        let cli = parse(&args).expect("the command line parses");
        assert!(cli.command.is_none());
        cli.generate.validate()
    }

    #[test]
    fn the_defaults() {
        let config = generate(&[]).unwrap();
        assert_eq!(config.port_name, "net_af_packet0");
        assert_eq!(
            config.address,
            InterfaceAddress {
                address: Ipv4Addr::new(198, 18, 0, 1),
                prefix_len: 24
            }
        );
        assert_eq!(config.server, "198.18.0.2:5000".parse().unwrap());
        assert_eq!(config.concurrency, 1);
        assert_eq!(config.rate, None);
        assert_eq!(config.total, Some(1), "at rate 0, --connections in all");
        assert_eq!(config.size, Some(16 << 20));
        assert_eq!(config.direction, Direction::Upload);
        assert!(config.dss_checksums && config.mptcp);
        assert_eq!(config.mtu, 1500);
        assert_eq!(config.interval, Duration::from_millis(100));
        assert_eq!(
            config.eal_args,
            [
                "--no-huge",
                "-m",
                "512",
                "--no-pci",
                "--no-shconf",
                "--vdev=net_af_packet0,iface=g0"
            ]
        );
    }

    #[test]
    fn every_option() {
        let config = generate(&[
            "--gateway",
            "198.18.0.254",
            "--connections",
            "64",
            "--rate",
            "500",
            "--duration",
            "2.5",
            "--size",
            "0",
            "--direction",
            "both",
            "--dss-checksum",
            "off",
            "--mptcp",
            "off",
            "--mtu",
            "9000",
            "--seed",
            "7",
            "--buffer",
            "256KiB",
            "--json",
            "out.json",
            "--timeseries-json",
            "series.json",
            "--interval-ms",
            "10",
            "--timeout",
            "60",
            "--",
            "--no-huge",
            "-m",
            "256",
            "--file-prefix=gen",
        ])
        .unwrap();
        assert_eq!(config.gateway, Some(Ipv4Addr::new(198, 18, 0, 254)));
        assert_eq!(config.concurrency, 64);
        assert_eq!(config.rate, Some(500.0));
        assert_eq!(config.total, None, "a rate with a duration has no total");
        assert_eq!(config.duration, Some(Duration::from_millis(2500)));
        assert_eq!(config.size, None);
        assert_eq!(config.direction, Direction::Bidirectional);
        assert!(!config.dss_checksums && !config.mptcp);
        assert_eq!(config.mtu, 9000);
        assert_eq!(config.seed, 7);
        assert_eq!(config.buffer, 256 << 10);
        assert_eq!(config.json, Some(PathBuf::from("out.json")));
        assert_eq!(config.timeseries_json, Some(PathBuf::from("series.json")));
        assert_eq!(config.interval, Duration::from_millis(10));
        assert_eq!(config.timeout, Duration::from_secs(60));
        assert_eq!(
            config.eal_args,
            [
                "--no-huge",
                "-m",
                "256",
                "--file-prefix=gen",
                "--vdev=net_af_packet0,iface=g0"
            ]
        );
    }

    #[test]
    fn refused_combinations_say_why() {
        assert_eq!(
            generate(&["--connections", "0"]),
            Err(ArgsError::NoConnections)
        );
        assert_eq!(
            generate(&["--size", "0"]),
            Err(ArgsError::EndlessWithoutDuration)
        );
        assert_eq!(generate(&["--rate", "10"]), Err(ArgsError::RateWithoutEnd));
        assert_eq!(
            generate(&["--rate", "10", "--total", "100"]).map(|c| c.total),
            Ok(Some(100))
        );
        assert_eq!(generate(&["--rate=-1"]), Err(ArgsError::Rate(-1.0)));
        assert_eq!(generate(&["--mtu", "9001"]), Err(ArgsError::Mtu(9001)));
        assert_eq!(generate(&["--interval-ms", "0"]), Err(ArgsError::Interval));
        assert_eq!(
            generate(&["--buffer", "1000"]),
            Err(ArgsError::Buffer(1000))
        );
        assert_eq!(
            generate(&["--duration", "10", "--timeout", "10"]),
            Err(ArgsError::Timeout(10.0))
        );
    }

    #[test]
    fn malformed_values_are_usage_errors() {
        let with = |extra: &[&str]| {
            let args: Vec<&str> = REQUIRED.iter().chain(extra).copied().collect();
            parse(&args).map(|_| ())
        };
        for bad in [
            &["--size", "12XB"][..],
            &["--direction", "sideways"],
            &["--dss-checksum", "maybe"],
            &["--server", "198.18.0.2"],
            &["--address", "198.18.0.1/33"],
        ] {
            assert!(with(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(
            parse(&["--vdev", "x"]).is_err(),
            "--address, --server missing"
        );
        assert!(
            parse(&["--address", "198.18.0.1"]).is_err(),
            "no prefix length"
        );
    }

    #[test]
    fn serve_needs_no_generator_options() {
        let cli = parse(&[
            "serve",
            "--listen",
            "198.18.0.2:5000",
            "--download",
            "16MiB",
            "--seed",
            "3",
            "--connections",
            "8",
        ])
        .unwrap();
        let Some(Command::Serve(serve)) = cli.command else {
            panic!("serve");
        };
        assert_eq!(serve.listen, "198.18.0.2:5000".parse().unwrap());
        assert_eq!(serve.download, 16 << 20);
        assert!(!serve.until_eof);
        assert_eq!(serve.seed, 3);
        assert_eq!(serve.connections, 8);
        assert!(
            parse(&["serve", "--listen", "198.18.0.2:5000", "--vdev", "x"]).is_err(),
            "generator options do not mix with serve"
        );
    }

    #[test]
    fn byte_counts_and_addresses() {
        assert_eq!(parse_bytes("0"), Ok(0));
        assert_eq!(parse_bytes("1500"), Ok(1500));
        assert_eq!(parse_bytes("4K"), Ok(4000));
        assert_eq!(parse_bytes("2M"), Ok(2_000_000));
        assert_eq!(parse_bytes("1G"), Ok(1_000_000_000));
        assert_eq!(parse_bytes("64KiB"), Ok(65536));
        assert_eq!(parse_bytes("16MiB"), Ok(16 << 20));
        assert_eq!(parse_bytes("3GiB"), Ok(3 << 30));
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("MiB").is_err());
        assert!(parse_bytes("1.5M").is_err());
        assert!(parse_bytes("99999999999GiB").is_err(), "overflow");
        assert_eq!(
            parse_interface_address("10.0.0.1/8"),
            Ok(InterfaceAddress {
                address: Ipv4Addr::new(10, 0, 0, 1),
                prefix_len: 8
            })
        );
        assert!(parse_interface_address("10.0.0.1").is_err());
        assert!(parse_interface_address("10.0.0/8").is_err());
        assert!(parse_interface_address("10.0.0.1/x").is_err());
    }
}
