//! The mpterm configuration file: TOML in, validated typed [`Config`] out.
//!
//! Loading happens in two steps so that every mistake is reported once, as one line that names
//! the offending key. First the text is deserialized into private "raw" structs that mirror the
//! file exactly (unknown keys are rejected there, and the path of a wrong or missing key is
//! tracked with `serde_path_to_error`). Then [`Config::from_toml_str`] validates the raw values
//! (address syntax, ranges, duplicates, reachability) and builds the typed structs the rest of
//! the program uses, so no later code has to re-check a string or a range.
//!
//! # Format
//!
//! A complete commented example ships as `control/examples/mpterm.toml`; the tests parse it.
//!
//! ```toml
//! [eal]                             # optional; arguments passed to rte_eal_init as they are
//! args = ["--no-huge", "-m", "512", "--no-pci", "--vdev=net_af_packet0,iface=a0"]
//!
//! [[interface]]                     # one or more
//! name = "client-side"              # label used in logs and stats; unique
//! port = "net_af_packet0"           # DPDK port (device name) this interface owns; unique
//! address = "198.18.0.2/24"         # own IPv4 address and on-link prefix; address unique
//! gateway = "198.18.0.254"          # optional next hop for off-link destinations
//! mtu = 1500                        # optional, 576..=9000, default 1500
//! announce = false                  # optional: tell MPTCP clients of this address (ADD_ADDR)
//! address6 = "2001:2::2/64"         # optional own IPv6 address and on-link prefix (1..=128)
//! gateway6 = "fe80::1"              # optional IPv6 router: on-link or link-local
//!
//! [mptcp]                           # optional
//! checksum = "required"             # "required" (default) or "off"
//! max_subflows = 8                  # subflows per connection, initial one included, 1..=8
//! allow_join_initial_address = true # false: C bit set, joins only to announced addresses
//!
//! [tcp]                             # optional, every key has a default
//! receive_buffer = 6291456          # most bytes per connection direction, 64 KiB..=1 GiB
//! receive_buffer_initial = 131072   # where autotuning starts, 64 KiB..=1 GiB (at most the above)
//! receive_buffer_autotuning = true  # grow each side's buffer as fast as it is read; default true
//! send_buffer = 1048576             # bytes per connection direction, 64 KiB..=1 GiB
//! initial_rto_ms = 1000             # 1..=60000, default 1000 (RFC 6298 section 2.1)
//! min_rto_ms = 200                  # 1..=initial_rto_ms, default 200
//! time_wait_ms = 60000              # 0..=240000, default 60000
//! max_connections = 65536           # 1..=16777216, default 65536
//! connect_timeout_ms = 30000        # handshake timeout, 100..=600000, default 30000
//! max_time_wait = 262144            # TIME-WAIT entries held apart from connections, 0..=16777216
//! time_wait_reuse = true            # reuse a backend port in TIME-WAIT with timestamps (RFC 6191)
//! local_port_range = [49152, 65535] # source ports toward backends, 1024..=65535
//! congestion_control = "cubic"      # client side: "cubic" (default), "newreno", "lia", "olia"
//! backend_congestion_control = "cubic" # backend side: "cubic" (default) or "newreno"
//! ecn = true                        # ECN (RFC 3168): accept a client's, ask backends; default true
//! pacing = true                     # pace data at 1.2-2 x window / RTT, both sides; default true
//!
//! [tcp.client]                      # optional: the client side's liveness limits
//! keepalive = true                  # probe idle connections, default true
//! keepalive_idle_ms = 120000        # 1000..=86400000, default 120000
//! keepalive_interval_ms = 15000     # 100..=3600000, default 15000
//! keepalive_probes = 4              # 1..=100, default 4
//! fin_wait_2_timeout_ms = 60000     # 1000..=3600000, default 60000
//! user_timeout_ms = 180000          # 0 (off) or 1000..=86400000, default 180000
//!
//! [tcp.backend]                     # optional: the same keys for the backend side
//!
//! [[proxy]]                         # one or more
//! listen = "198.18.0.2:5000"        # an interface address (or "[2001:2::2]:5000") and a port; unique
//! backend = "198.19.0.2:6000"       # IPv4; on-link of an interface, or reached through a gateway
//! scheduler = "lowest-rtt"          # toward the client: "lowest-rtt" (default), "round-robin"
//!
//! [worker]                          # optional
//! burst = 32                        # packets per rx/tx burst, 1..=512, default 32
//! core = 1                          # optional CPU core (0..=1023) to pin the worker to
//!
//! [log]                             # optional
//! level = "info"                    # trace, debug, info (default), warn, error or off
//!
//! [control]                         # optional
//! socket = "/run/mpterm.sock"       # the operator's Unix socket (crate::operator); none by default
//! ```
//!
//! # Errors
//!
//! Every failure is a [`ConfigError`] whose `Display` is a single line starting with
//! `config key KEY:` (or `config syntax error` / `cannot read config file` when there is no key
//! yet), for example `config key proxy[0].backend: invalid socket address "198.19.0.2"`.
//! Array entries are numbered from 0 in the order they appear in the file.

use std::collections::HashMap;
use std::fmt;
mod ipv6;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

pub use ipv6::Ipv6InterfaceConfig;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;
use tracing::level_filters::LevelFilter;

/// Smallest accepted per-connection buffer: below one 64 KiB window the TCP window scale option
/// (RFC 7323) would be pointless and throughput on any real path would collapse.
pub const MIN_BUFFER_BYTES: u64 = 64 * 1024;
/// Largest accepted per-connection buffer, so a typo cannot make one connection reserve more
/// memory than the machine has.
pub const MAX_BUFFER_BYTES: u64 = 1024 * 1024 * 1024;
/// Smallest accepted MTU: the IPv4 minimum datagram every host must accept (RFC 791).
pub const MIN_MTU: u64 = 576;
/// Largest accepted MTU: the common jumbo frame size.
pub const MAX_MTU: u64 = 9000;
/// Largest accepted burst size; DPDK drivers commonly cap a burst far below this.
pub const MAX_BURST: u64 = 512;
/// Highest CPU core index accepted for pinning (the size of a Linux `cpu_set_t` minus one).
pub const MAX_CORE: u64 = 1023;
/// Longest accepted TIME-WAIT: 2 * MSL with the RFC 9293 section 3.4.2 MSL of two minutes.
pub const MAX_TIME_WAIT_MS: u64 = 240_000;
/// Longest accepted retransmission timeout; RFC 6298 section 2.5 allows a maximum of at least
/// 60 seconds, and a longer first timeout would only hide a dead path.
pub const MAX_RTO_MS: u64 = 60_000;
/// Largest accepted connection limit (2^24), which keeps connection indexes well inside `u32`.
pub const MAX_CONNECTIONS: u64 = 1 << 24;
/// Largest accepted handshake timeout: ten minutes.
pub const MAX_CONNECT_TIMEOUT_MS: u64 = 600_000;
/// Largest accepted TIME-WAIT table, as large as the connection limit.
pub const MAX_TIME_WAIT_ENTRIES: u64 = 1 << 24;
/// Longest accepted keepalive idle time and user timeout: one day.
pub const MAX_IDLE_MS: u64 = 86_400_000;
/// Longest accepted control socket path, in bytes: a Unix socket address holds 108 bytes on
/// Linux (`sun_path`), the terminating NUL included.
pub const MAX_SOCKET_PATH_BYTES: usize = 107;

/// A configuration that could not be loaded. Each variant's `Display` is exactly one line and,
/// once the file has been parsed, names the key at fault.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The path given to [`Config::from_file`].
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("config syntax error at line {line}: {message}")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// The TOML parser's description.
        message: String,
    },
    /// The TOML is valid but a key is unknown, missing, or has the wrong type.
    #[error("config key {key}: {message}{}", line_suffix(*line))]
    Schema {
        /// Dotted path of the key, e.g. `interface[1].mtu`.
        key: String,
        /// 1-based line of the error, when the parser knows it.
        line: Option<usize>,
        /// The deserializer's description, e.g. ``unknown field `mut` ``.
        message: String,
    },
    /// A value that must be `A.B.C.D/LEN` is not.
    #[error("config key {key}: invalid IPv4 interface address {value:?}, expected A.B.C.D/LEN")]
    InvalidInterfaceAddress {
        /// Dotted path of the key.
        key: String,
        /// The value as written.
        value: String,
    },
    /// A prefix length is larger than 32.
    #[error("config key {key}: prefix length {prefix_len} out of range 0..=32")]
    PrefixLengthOutOfRange {
        /// Dotted path of the key.
        key: String,
        /// The prefix length as written.
        prefix_len: u64,
    },
    /// An interface address is the network or broadcast address of its own prefix, which no
    /// host may use (RFC 1122 section 3.2.1.3); /31 (RFC 3021) and /32 are exempt.
    #[error(
        "config key {key}: {address}/{prefix_len} is the network or broadcast address of its prefix"
    )]
    NotAHostAddress {
        /// Dotted path of the key.
        key: String,
        /// The address.
        address: Ipv4Addr,
        /// The prefix length.
        prefix_len: u8,
    },
    /// A value that must be a plain IPv4 address is not.
    #[error("config key {key}: invalid IPv4 address {value:?}")]
    InvalidAddress {
        /// Dotted path of the key.
        key: String,
        /// The value as written.
        value: String,
    },
    /// A value that must be `A.B.C.D:PORT` is not.
    #[error("config key {key}: invalid socket address {value:?}, expected A.B.C.D:PORT")]
    InvalidSocketAddress {
        /// Dotted path of the key.
        key: String,
        /// The value as written.
        value: String,
    },
    /// A socket address uses port 0, which TCP cannot connect to or listen on by name.
    #[error("config key {key}: port 0 is not allowed in {value}")]
    ZeroPort {
        /// Dotted path of the key.
        key: String,
        /// The socket address as written.
        value: String,
    },
    /// A listen address is neither `A.B.C.D:PORT` nor `[IPV6]:PORT`.
    #[error(
        "config key {key}: invalid listen address {value:?}, expected A.B.C.D:PORT or [IPV6]:PORT"
    )]
    InvalidListenAddress {
        /// Dotted path of the key.
        key: String,
        /// The value as written.
        value: String,
    },
    /// An `address6` is not `IPV6/LEN`.
    #[error("config key {key}: invalid IPv6 interface address {value:?}, expected IPV6/LEN")]
    InvalidIpv6InterfaceAddress {
        /// Dotted path of the key.
        key: String,
        /// The value as written.
        value: String,
    },
    /// A value that must be a plain IPv6 address is not.
    #[error("config key {key}: invalid IPv6 address {value:?}")]
    InvalidAddress6 {
        /// Dotted path of the key.
        key: String,
        /// The value as written.
        value: String,
    },
    /// An `address6` that cannot be a host's own: unspecified, loopback, multicast,
    /// link-local or IPv4-mapped.
    #[error("config key {key}: {address} cannot be an interface's own IPv6 address")]
    NotAnIpv6HostAddress {
        /// Dotted path of the key.
        key: String,
        /// The address.
        address: Ipv6Addr,
    },
    /// A `gateway6` on an interface without `address6`.
    #[error("config key {key}: an IPv6 gateway needs the interface's address6")]
    Ipv6GatewayWithoutAddress {
        /// Dotted path of the key.
        key: String,
    },
    /// A `gateway6` that is neither on-link nor link-local (or is multicast or the own address).
    #[error("config key {key}: {gateway} is not an on-link or link-local router address")]
    Ipv6GatewayNotOnLink {
        /// Dotted path of the key.
        key: String,
        /// The gateway.
        gateway: Ipv6Addr,
    },
    /// A number is outside its accepted range.
    #[error("config key {key}: {value} out of range {min}..={max}")]
    OutOfRange {
        /// Dotted path of the key.
        key: String,
        /// The value as written.
        value: u64,
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
    /// A string that must not be empty is empty.
    #[error("config key {key}: must not be empty")]
    Empty {
        /// Dotted path of the key.
        key: String,
    },
    /// A section that must appear at least once is missing.
    #[error("config key {key}: at least one [[{key}]] section is required")]
    MissingSection {
        /// The array-of-tables name, e.g. `proxy`.
        key: String,
    },
    /// A value that must be unique appears twice.
    #[error("config key {key}: {value} is already used by {first_key}")]
    Duplicate {
        /// Dotted path of the second occurrence.
        key: String,
        /// The repeated value.
        value: String,
        /// Dotted path of the first occurrence.
        first_key: String,
    },
    /// A string value is not one of the accepted words.
    #[error("config key {key}: unknown value {value:?}, expected one of {expected}")]
    UnknownValue {
        /// Dotted path of the key.
        key: String,
        /// The value as written.
        value: String,
        /// The accepted words, comma separated.
        expected: &'static str,
    },
    /// A gateway is not inside the prefix of its own interface, so it could never be resolved
    /// with ARP on that link.
    #[error("config key {key}: gateway {gateway} is not on-link of {address}/{prefix_len}")]
    GatewayNotOnLink {
        /// Dotted path of the key.
        key: String,
        /// The gateway.
        gateway: Ipv4Addr,
        /// The interface's own address.
        address: Ipv4Addr,
        /// The interface's prefix length.
        prefix_len: u8,
    },
    /// A gateway equals its interface's own address.
    #[error("config key {key}: gateway {gateway} is the interface's own address")]
    GatewayIsOwnAddress {
        /// Dotted path of the key.
        key: String,
        /// The gateway.
        gateway: Ipv4Addr,
    },
    /// A proxy listens on an address that no interface owns, so no packet for it would arrive.
    #[error("config key {key}: {listen} is not the address of any interface")]
    ListenNotOnInterface {
        /// Dotted path of the key.
        key: String,
        /// The listen address.
        listen: SocketAddr,
    },
    /// A backend is neither on-link of an interface nor reachable through a gateway.
    #[error(
        "config key {key}: {backend} is not on-link of any interface and no interface has a gateway"
    )]
    BackendUnreachable {
        /// Dotted path of the key.
        key: String,
        /// The backend address.
        backend: SocketAddrV4,
    },
    /// A backend is one of the appliance's own addresses, which would loop traffic to itself.
    #[error("config key {key}: {backend} is an address of this appliance")]
    BackendIsOwnAddress {
        /// Dotted path of the key.
        key: String,
        /// The backend address.
        backend: SocketAddrV4,
    },
    /// A Unix socket path does not fit a socket address.
    #[error(
        "config key {key}: path is {length} bytes long, at most {max} fit a Unix socket address"
    )]
    SocketPathTooLong {
        /// Dotted path of the key.
        key: String,
        /// The path's length in bytes.
        length: usize,
        /// The longest accepted path.
        max: usize,
    },
    /// The minimum RTO is larger than the initial RTO, which RFC 6298 section 2 rules out.
    #[error("config key {key}: {min_rto_ms} is larger than tcp.initial_rto_ms ({initial_rto_ms})")]
    MinRtoAboveInitialRto {
        /// Dotted path of the key.
        key: String,
        /// The minimum RTO.
        min_rto_ms: u64,
        /// The initial RTO.
        initial_rto_ms: u64,
    },
}

fn line_suffix(line: Option<usize>) -> String {
    match line {
        Some(line) => format!(" (line {line})"),
        None => String::new(),
    }
}

/// The validated configuration of one mpterm process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Arguments handed to `rte_eal_init` after the program name.
    pub eal_args: Vec<String>,
    /// The appliance's interfaces, in file order; at least one.
    pub interfaces: Vec<InterfaceConfig>,
    /// MPTCP options.
    pub mptcp: MptcpConfig,
    /// TCP knobs shared by every connection.
    pub tcp: TcpConfig,
    /// The services the appliance terminates, in file order; at least one.
    pub proxies: Vec<ProxyConfig>,
    /// Worker loop settings.
    pub worker: WorkerConfig,
    /// Logging settings.
    pub log: LogConfig,
    /// The operator's control socket.
    pub control: ControlConfig,
}

/// The operator's control socket (see [`crate::operator`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlConfig {
    /// Where mpterm listens for operator commands (a Unix stream socket); none when unset.
    pub socket: Option<PathBuf>,
}

/// One appliance interface: a DPDK port and the IPv4 (and optionally IPv6) identity the
/// appliance has on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// Label used in logs and statistics.
    pub name: String,
    /// DPDK device name of the port this interface owns.
    pub port: String,
    /// The appliance's own address on this link.
    pub address: Ipv4Addr,
    /// Length of the on-link prefix, 0..=32.
    pub prefix_len: u8,
    /// Next hop for destinations outside the on-link prefix.
    pub gateway: Option<Ipv4Addr>,
    /// Largest IPv4 datagram sent on this link, in bytes.
    pub mtu: u16,
    /// MPTCP clients are told of this address with ADD_ADDR (RFC 8684 section 3.4.1) once
    /// their connection is fully established, so that they can join it; for client-facing
    /// interfaces other than the one clients connect to. With `ipv6`, both addresses are.
    pub announce: bool,
    /// The appliance's IPv6 address on this link, if it has one.
    pub ipv6: Option<Ipv6InterfaceConfig>,
}

impl InterfaceConfig {
    /// The network mask of the on-link prefix.
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(prefix_mask(self.prefix_len))
    }

    /// Whether `destination` is inside this interface's on-link prefix, i.e. can be resolved
    /// with ARP directly on this link.
    pub fn is_on_link(&self, destination: Ipv4Addr) -> bool {
        let mask = prefix_mask(self.prefix_len);
        u32::from(destination) & mask == u32::from(self.address) & mask
    }
}

fn prefix_mask(prefix_len: u8) -> u32 {
    // A shift by 32 overflows, so the /0 case is spelled out.
    match prefix_len {
        0 => 0,
        len => u32::MAX << (32 - u32::from(len.min(32))),
    }
}

/// Where to send a packet for some destination: which interface, and which address to resolve
/// with ARP on it (the destination itself when on-link, else the interface's gateway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Index into [`Config::interfaces`].
    pub interface: usize,
    /// The address whose hardware address is needed.
    pub next_hop: Ipv4Addr,
}

/// MPTCP options (RFC 8684).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MptcpConfig {
    /// Whether the appliance requires DSS checksums: it sets the "A" bit of MP_CAPABLE
    /// (RFC 8684 section 3.1), and then every DSS mapping must carry a valid checksum
    /// (section 3.3.1).
    pub checksum_required: bool,
    /// Subflows one connection may hold, the initial one included (RFC 8684 section 3.2):
    /// joins beyond it are refused with MP_TCPRST.
    pub max_subflows: u8,
    /// Joins to a connection's initial address and port are accepted; false sets the C bit
    /// (RFC 8684 section 3.1), for an appliance behind an L4 load balancer.
    pub allow_join_initial_address: bool,
}

impl Default for MptcpConfig {
    fn default() -> Self {
        MptcpConfig {
            checksum_required: true,
            max_subflows: MAX_SUBFLOWS,
            allow_join_initial_address: true,
        }
    }
}

/// The most subflows a connection may be configured to hold (the engine's own bound).
pub const MAX_SUBFLOWS: u8 = 8;

/// How a listener's connections spread data toward the client over their subflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheduler {
    /// The subflow whose data arrives first: lowest RTT while queues are short (Linux's
    /// default scheduler).
    #[default]
    LowestRtt,
    /// Each subflow with room in turn.
    RoundRobin,
}

/// TCP knobs shared by every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpConfig {
    /// Receive buffer per connection direction, in bytes: the most it holds and advertises.
    /// The default, 6 MiB, is Linux's `tcp_rmem[2]`: 100 Mbit/s over 250 ms, or 1 Gbit/s
    /// over 25 ms, with a loss to recover. Autotuning grows only the buffers whose other side
    /// drains them fast toward it, so a slow backend's connections keep the initial size.
    pub receive_buffer: u32,
    /// The receive buffer a connection direction starts with under autotuning, in bytes
    /// (Linux's `tcp_rmem[1]`, 128 KiB, by default); clamped to `receive_buffer`.
    pub receive_buffer_initial: u32,
    /// Receive-buffer autotuning (dynamic right-sizing, as Linux's `tcp_moderate_rcvbuf`):
    /// once per RTT a direction's buffer grows to twice what was read from it in that RTT, up
    /// to `receive_buffer`. Off, every direction advertises `receive_buffer` from the start.
    pub receive_buffer_autotuning: bool,
    /// Send buffer per connection direction, in bytes; when full, the relay stops reading from
    /// the other side, which is how flow control propagates end to end.
    pub send_buffer: u32,
    /// Retransmission timeout before any RTT sample (RFC 6298 section 2.1), in milliseconds.
    pub initial_rto_ms: u32,
    /// Lower bound of the computed RTO, in milliseconds. RFC 6298 section 2.4 says one second;
    /// the default of 200 ms follows Linux, as the kernel peers in the lab do.
    pub min_rto_ms: u32,
    /// How long a connection stays in TIME-WAIT (RFC 9293 section 3.6.1), in milliseconds.
    pub time_wait_ms: u32,
    /// Largest number of simultaneous connections (client side and backend side counted once
    /// per relayed pair); new SYNs beyond it are refused. TIME-WAIT entries do not count.
    pub max_connections: u32,
    /// How long a handshake (client's or backend's) may take, in milliseconds.
    pub connect_timeout_ms: u32,
    /// Connection sides in TIME-WAIT held at once, apart from the connections; when full, a
    /// side that would enter TIME-WAIT is closed at once (as Linux's `tcp_max_tw_buckets`).
    pub max_time_wait: u32,
    /// Whether a new backend connection may reuse a source port whose previous connection is
    /// in TIME-WAIT, when that one used timestamps (RFC 6191, Linux's `tcp_tw_reuse`).
    pub time_wait_reuse: bool,
    /// Source ports for connections toward backends, inclusive (Linux's
    /// `ip_local_port_range`).
    pub local_port_range: (u16, u16),
    /// Congestion control of the client side (MPTCP subflows and plain TCP clients).
    pub congestion_control: CongestionAlgorithm,
    /// Congestion control of the backend side: a decoupled algorithm (nothing to couple).
    pub backend_congestion_control: CongestionAlgorithm,
    /// Explicit congestion notification (RFC 3168) on both sides: taken when a client's SYN
    /// asks for it (as Linux's server side with `tcp_ecn = 2`) and asked of backends.
    pub ecn: bool,
    /// Pacing of data segments from the congestion window and the RTT, on both sides.
    pub pacing: bool,
    /// Liveness limits of the client side.
    pub client: TcpSideConfig,
    /// Liveness limits of the backend side.
    pub backend: TcpSideConfig,
}

/// A congestion control algorithm (`tcp.congestion_control`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CongestionAlgorithm {
    /// NewReno (RFC 5681, RFC 6582), every subflow on its own.
    NewReno,
    /// LIA (RFC 6356): an MPTCP connection's subflows coupled so that together they take no
    /// more than one TCP flow on their best path would.
    Lia,
    /// OLIA (draft-khalili-mptcp-congestion-control-05): coupled like LIA, moving traffic to
    /// the better paths.
    Olia,
    /// CUBIC (RFC 9438) with HyStart++ (RFC 9406), every subflow on its own: Linux's
    /// default, and ours.
    #[default]
    Cubic,
}

impl CongestionAlgorithm {
    /// The configuration file's word for it.
    pub fn name(self) -> &'static str {
        match self {
            CongestionAlgorithm::NewReno => "newreno",
            CongestionAlgorithm::Lia => "lia",
            CongestionAlgorithm::Olia => "olia",
            CongestionAlgorithm::Cubic => "cubic",
        }
    }
}

impl fmt::Display for CongestionAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The limits that keep one connection side from living forever without progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSideConfig {
    /// Keepalive probes on idle connections (RFC 9293 section 3.8.4).
    pub keepalive: bool,
    /// Idle time before the first keepalive probe, in milliseconds.
    pub keepalive_idle_ms: u32,
    /// Time between keepalive probes, in milliseconds.
    pub keepalive_interval_ms: u32,
    /// Unanswered probes before the connection is reset.
    pub keepalive_probes: u32,
    /// The longest FIN-WAIT-2 without data from the peer, in milliseconds.
    pub fin_wait_2_timeout_ms: u32,
    /// The longest time sent data may wait for an acknowledgement without progress, in
    /// milliseconds (RFC 5482); 0 turns it off (the retransmission limit remains).
    pub user_timeout_ms: u32,
}

impl Default for TcpSideConfig {
    fn default() -> Self {
        Self {
            keepalive: true,
            keepalive_idle_ms: 120_000,
            keepalive_interval_ms: 15_000,
            keepalive_probes: 4,
            fin_wait_2_timeout_ms: 60_000,
            user_timeout_ms: 180_000,
        }
    }
}

impl Default for TcpConfig {
    fn default() -> Self {
        Self {
            receive_buffer: 6 * 1024 * 1024,
            receive_buffer_initial: 128 * 1024,
            receive_buffer_autotuning: true,
            send_buffer: 1024 * 1024,
            initial_rto_ms: 1000,
            min_rto_ms: 200,
            time_wait_ms: 60_000,
            max_connections: 65_536,
            connect_timeout_ms: 30_000,
            max_time_wait: 262_144,
            time_wait_reuse: true,
            local_port_range: (49_152, 65_535),
            congestion_control: CongestionAlgorithm::Cubic,
            backend_congestion_control: CongestionAlgorithm::Cubic,
            ecn: true,
            pacing: true,
            client: TcpSideConfig::default(),
            backend: TcpSideConfig::default(),
        }
    }
}

/// One terminated service: MPTCP connections to `listen` are relayed as plain TCP to `backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Address and port the appliance accepts connections on; an interface address of either
    /// family.
    pub listen: SocketAddr,
    /// Address and port the appliance connects to for each accepted connection.
    pub backend: SocketAddrV4,
    /// How data toward the client is spread over its subflows.
    pub scheduler: Scheduler,
}

/// Worker loop settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Packets asked for per receive burst and sent per transmit burst.
    pub burst: u16,
    /// CPU core to pin the worker thread to, if any.
    pub core: Option<usize>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            burst: 32,
            core: None,
        }
    }
}

/// Logging settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// The level used when neither `--log-level` nor `RUST_LOG` says otherwise.
    pub level: LevelFilter,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: LevelFilter::INFO,
        }
    }
}

impl Config {
    /// Reads and validates the configuration file at `path`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// Parses and validates a configuration given as TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let raw = parse_raw(text)?;
        validate(raw)
    }

    /// The interface and next hop for `destination`: the on-link interface with the longest
    /// prefix if there is one, otherwise the first interface (in file order) with a gateway.
    /// Validation uses this same rule to accept a backend, so every configured backend has a
    /// route.
    pub fn route_to(&self, destination: Ipv4Addr) -> Option<Route> {
        let on_link = self
            .interfaces
            .iter()
            .enumerate()
            .filter(|(_, interface)| interface.is_on_link(destination))
            .max_by_key(|(index, interface)| (interface.prefix_len, std::cmp::Reverse(*index)));
        if let Some((interface, _)) = on_link {
            return Some(Route {
                interface,
                next_hop: destination,
            });
        }
        self.interfaces
            .iter()
            .enumerate()
            .find_map(|(interface, config)| {
                config.gateway.map(|next_hop| Route {
                    interface,
                    next_hop,
                })
            })
    }
}

impl fmt::Display for MptcpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let checksum = if self.checksum_required {
            "required"
        } else {
            "off"
        };
        write!(f, "checksum={checksum} max_subflows={}", self.max_subflows)
    }
}

// ---------------------------------------------------------------------------------------------
// Raw structs: the file exactly as written. Numbers are u64 so that range errors are ours (with
// the accepted range in the message) rather than the deserializer's integer-width errors.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    eal: RawEal,
    #[serde(default)]
    interface: Vec<RawInterface>,
    #[serde(default)]
    mptcp: RawMptcp,
    #[serde(default)]
    tcp: RawTcp,
    #[serde(default)]
    proxy: Vec<RawProxy>,
    #[serde(default)]
    worker: RawWorker,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    control: RawControl,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawControl {
    socket: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEal {
    #[serde(default)]
    args: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterface {
    name: String,
    port: String,
    address: String,
    gateway: Option<String>,
    mtu: Option<u64>,
    announce: Option<bool>,
    address6: Option<String>,
    gateway6: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMptcp {
    checksum: Option<String>,
    max_subflows: Option<u64>,
    allow_join_initial_address: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTcp {
    receive_buffer: Option<u64>,
    receive_buffer_initial: Option<u64>,
    receive_buffer_autotuning: Option<bool>,
    send_buffer: Option<u64>,
    initial_rto_ms: Option<u64>,
    min_rto_ms: Option<u64>,
    time_wait_ms: Option<u64>,
    max_connections: Option<u64>,
    connect_timeout_ms: Option<u64>,
    max_time_wait: Option<u64>,
    time_wait_reuse: Option<bool>,
    local_port_range: Option<[u64; 2]>,
    congestion_control: Option<String>,
    backend_congestion_control: Option<String>,
    ecn: Option<bool>,
    pacing: Option<bool>,
    client: Option<RawTcpSide>,
    backend: Option<RawTcpSide>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTcpSide {
    keepalive: Option<bool>,
    keepalive_idle_ms: Option<u64>,
    keepalive_interval_ms: Option<u64>,
    keepalive_probes: Option<u64>,
    fin_wait_2_timeout_ms: Option<u64>,
    user_timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProxy {
    listen: String,
    backend: String,
    scheduler: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorker {
    burst: Option<u64>,
    core: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<String>,
}

fn parse_raw(text: &str) -> Result<RawConfig, ConfigError> {
    let deserializer = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let key = error.path().to_string();
        let inner = error.into_inner();
        let line = inner.span().map(|span| line_of_offset(text, span.start));
        // The TOML message can span several lines; keep the error to one line.
        let message = inner
            .message()
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>()
            .join(", ");
        // serde_path_to_error reports "." for the document root, which is where TOML syntax
        // errors are found: nothing has been deserialized yet, so no key can be named.
        if key == "." || key.is_empty() {
            match line {
                Some(line) if !is_schema_message(&message) => ConfigError::Syntax { line, message },
                _ => ConfigError::Schema {
                    key: "(top level)".to_owned(),
                    line,
                    message,
                },
            }
        } else {
            ConfigError::Schema { key, line, message }
        }
    })
}

/// Whether a root-level deserializer message is about the document's shape (an unknown or
/// missing top-level section) rather than TOML syntax.
fn is_schema_message(message: &str) -> bool {
    ["unknown field", "missing field", "invalid type"]
        .iter()
        .any(|prefix| message.starts_with(prefix))
}

fn line_of_offset(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&byte| byte == b'\n')
        .count()
        + 1
}

// ---------------------------------------------------------------------------------------------
// Validation.

fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    let interfaces = validate_interfaces(&raw.interface)?;
    let mptcp = validate_mptcp(&raw.mptcp)?;
    let tcp = validate_tcp(&raw.tcp)?;
    let worker = validate_worker(&raw.worker)?;
    let log = validate_log(&raw.log)?;
    let control = validate_control(&raw.control)?;
    let mut config = Config {
        eal_args: raw.eal.args,
        interfaces,
        mptcp,
        tcp,
        proxies: Vec::new(),
        worker,
        log,
        control,
    };
    config.proxies = validate_proxies(&raw.proxy, &config)?;
    Ok(config)
}

/// Remembers the first key at which each value of a must-be-unique setting was seen.
struct UniqueValues<T> {
    first_key_by_value: HashMap<T, String>,
}

impl<T: std::hash::Hash + Eq + fmt::Display> UniqueValues<T> {
    fn new() -> Self {
        Self {
            first_key_by_value: HashMap::new(),
        }
    }

    fn insert(&mut self, value: T, key: String) -> Result<(), ConfigError> {
        if let Some(first_key) = self.first_key_by_value.get(&value) {
            return Err(ConfigError::Duplicate {
                key,
                value: value.to_string(),
                first_key: first_key.clone(),
            });
        }
        self.first_key_by_value.insert(value, key);
        Ok(())
    }
}

fn validate_interfaces(raw: &[RawInterface]) -> Result<Vec<InterfaceConfig>, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::MissingSection {
            key: "interface".to_owned(),
        });
    }
    let mut names = UniqueValues::new();
    let mut ports = UniqueValues::new();
    let mut addresses = UniqueValues::new();
    let mut addresses6 = UniqueValues::new();
    let mut interfaces = Vec::with_capacity(raw.len());
    for (index, raw) in raw.iter().enumerate() {
        let key = |field: &str| format!("interface[{index}].{field}");
        let name = non_empty(&raw.name, key("name"))?;
        names.insert(name.clone(), key("name"))?;
        let port = non_empty(&raw.port, key("port"))?;
        ports.insert(port.clone(), key("port"))?;
        let (address, prefix_len) = parse_interface_address(&raw.address, key("address"))?;
        let host_bits = !prefix_mask(prefix_len);
        let host_part = u32::from(address) & host_bits;
        if prefix_len <= 30 && (host_part == 0 || host_part == host_bits) {
            return Err(ConfigError::NotAHostAddress {
                key: key("address"),
                address,
                prefix_len,
            });
        }
        addresses.insert(address, key("address"))?;
        let mut interface = InterfaceConfig {
            name,
            port,
            address,
            prefix_len,
            gateway: None,
            mtu: in_range(raw.mtu.unwrap_or(1500), MIN_MTU, MAX_MTU, key("mtu"))?,
            announce: raw.announce.unwrap_or(false),
            ipv6: None,
        };
        if let Some(gateway) = &raw.gateway {
            let gateway = parse_address(gateway, key("gateway"))?;
            if gateway == address {
                return Err(ConfigError::GatewayIsOwnAddress {
                    key: key("gateway"),
                    gateway,
                });
            }
            if !interface.is_on_link(gateway) {
                return Err(ConfigError::GatewayNotOnLink {
                    key: key("gateway"),
                    gateway,
                    address,
                    prefix_len,
                });
            }
            interface.gateway = Some(gateway);
        }
        match (&raw.address6, &raw.gateway6) {
            (Some(address6), gateway6) => {
                let ipv6 = ipv6::parse_interface(address6, gateway6.as_deref(), key)?;
                addresses6.insert(ipv6.address, key("address6"))?;
                interface.ipv6 = Some(ipv6);
            }
            (None, Some(_)) => {
                return Err(ConfigError::Ipv6GatewayWithoutAddress {
                    key: key("gateway6"),
                })
            }
            (None, None) => {}
        }
        interfaces.push(interface);
    }
    Ok(interfaces)
}

fn validate_mptcp(raw: &RawMptcp) -> Result<MptcpConfig, ConfigError> {
    let checksum_required = match raw.checksum.as_deref() {
        None | Some("required") => true,
        Some("off") => false,
        Some(other) => {
            return Err(ConfigError::UnknownValue {
                key: "mptcp.checksum".to_owned(),
                value: other.to_owned(),
                expected: "required, off",
            })
        }
    };
    let max_subflows = match raw.max_subflows {
        None => MAX_SUBFLOWS,
        Some(value) => in_range(
            value,
            1,
            u64::from(MAX_SUBFLOWS),
            "mptcp.max_subflows".to_owned(),
        )?,
    };
    Ok(MptcpConfig {
        checksum_required,
        max_subflows,
        allow_join_initial_address: raw.allow_join_initial_address.unwrap_or(true),
    })
}

fn validate_tcp(raw: &RawTcp) -> Result<TcpConfig, ConfigError> {
    let defaults = TcpConfig::default();
    let buffer = |value: Option<u64>, default: u32, field: &str| {
        in_range(
            value.unwrap_or(u64::from(default)),
            MIN_BUFFER_BYTES,
            MAX_BUFFER_BYTES,
            format!("tcp.{field}"),
        )
    };
    let receive_buffer: u32 = buffer(
        raw.receive_buffer,
        defaults.receive_buffer,
        "receive_buffer",
    )?;
    let receive_buffer_initial = buffer(
        raw.receive_buffer_initial,
        defaults.receive_buffer_initial,
        "receive_buffer_initial",
    )?
    .min(receive_buffer);
    let send_buffer = buffer(raw.send_buffer, defaults.send_buffer, "send_buffer")?;
    let initial_rto_ms = in_range(
        raw.initial_rto_ms
            .unwrap_or(u64::from(defaults.initial_rto_ms)),
        1,
        MAX_RTO_MS,
        "tcp.initial_rto_ms".to_owned(),
    )?;
    let min_rto_ms: u32 = in_range(
        raw.min_rto_ms.unwrap_or(u64::from(defaults.min_rto_ms)),
        1,
        MAX_RTO_MS,
        "tcp.min_rto_ms".to_owned(),
    )?;
    if min_rto_ms > initial_rto_ms {
        return Err(ConfigError::MinRtoAboveInitialRto {
            key: "tcp.min_rto_ms".to_owned(),
            min_rto_ms: u64::from(min_rto_ms),
            initial_rto_ms: u64::from(initial_rto_ms),
        });
    }
    let time_wait_ms = in_range(
        raw.time_wait_ms.unwrap_or(u64::from(defaults.time_wait_ms)),
        0,
        MAX_TIME_WAIT_MS,
        "tcp.time_wait_ms".to_owned(),
    )?;
    let max_connections = in_range(
        raw.max_connections
            .unwrap_or(u64::from(defaults.max_connections)),
        1,
        MAX_CONNECTIONS,
        "tcp.max_connections".to_owned(),
    )?;
    let connect_timeout_ms = in_range(
        raw.connect_timeout_ms
            .unwrap_or(u64::from(defaults.connect_timeout_ms)),
        100,
        MAX_CONNECT_TIMEOUT_MS,
        "tcp.connect_timeout_ms".to_owned(),
    )?;
    let max_time_wait = in_range(
        raw.max_time_wait
            .unwrap_or(u64::from(defaults.max_time_wait)),
        0,
        MAX_TIME_WAIT_ENTRIES,
        "tcp.max_time_wait".to_owned(),
    )?;
    let local_port_range = match raw.local_port_range {
        None => defaults.local_port_range,
        Some([first, last]) => {
            let key = "tcp.local_port_range".to_owned();
            let first: u16 = in_range(first, 1024, 65_535, key.clone())?;
            let last: u16 = in_range(last, u64::from(first), 65_535, key)?;
            (first, last)
        }
    };
    let congestion_control = congestion_algorithm(
        raw.congestion_control.as_deref(),
        defaults.congestion_control,
        "tcp.congestion_control",
        &[
            CongestionAlgorithm::Cubic,
            CongestionAlgorithm::NewReno,
            CongestionAlgorithm::Lia,
            CongestionAlgorithm::Olia,
        ],
        "cubic, newreno, lia, olia",
    )?;
    // A backend connection is alone: the coupled algorithms have nothing to couple.
    let backend_congestion_control = congestion_algorithm(
        raw.backend_congestion_control.as_deref(),
        defaults.backend_congestion_control,
        "tcp.backend_congestion_control",
        &[CongestionAlgorithm::Cubic, CongestionAlgorithm::NewReno],
        "cubic, newreno",
    )?;
    let side = |raw: &Option<RawTcpSide>, name: &str| match raw {
        Some(raw) => validate_tcp_side(raw, name),
        None => Ok(TcpSideConfig::default()),
    };
    Ok(TcpConfig {
        receive_buffer,
        receive_buffer_initial,
        receive_buffer_autotuning: raw
            .receive_buffer_autotuning
            .unwrap_or(defaults.receive_buffer_autotuning),
        send_buffer,
        initial_rto_ms,
        min_rto_ms,
        time_wait_ms,
        max_connections,
        connect_timeout_ms,
        max_time_wait,
        time_wait_reuse: raw.time_wait_reuse.unwrap_or(defaults.time_wait_reuse),
        local_port_range,
        congestion_control,
        backend_congestion_control,
        ecn: raw.ecn.unwrap_or(defaults.ecn),
        pacing: raw.pacing.unwrap_or(defaults.pacing),
        client: side(&raw.client, "client")?,
        backend: side(&raw.backend, "backend")?,
    })
}

/// The algorithm `name` names among `allowed` (`expected` lists their names for the error),
/// or `default` when the key is absent.
fn congestion_algorithm(
    name: Option<&str>,
    default: CongestionAlgorithm,
    key: &str,
    allowed: &[CongestionAlgorithm],
    expected: &'static str,
) -> Result<CongestionAlgorithm, ConfigError> {
    let Some(name) = name else {
        return Ok(default);
    };
    allowed
        .iter()
        .copied()
        .find(|algorithm| algorithm.name() == name)
        .ok_or_else(|| ConfigError::UnknownValue {
            key: key.to_owned(),
            value: name.to_owned(),
            expected,
        })
}

fn validate_tcp_side(raw: &RawTcpSide, side: &str) -> Result<TcpSideConfig, ConfigError> {
    let defaults = TcpSideConfig::default();
    let key = |field: &str| format!("tcp.{side}.{field}");
    let value = |raw: Option<u64>, default: u32| raw.unwrap_or(u64::from(default));
    let user_timeout_ms = value(raw.user_timeout_ms, defaults.user_timeout_ms);
    let user_timeout_ms = if user_timeout_ms == 0 {
        0
    } else {
        in_range(user_timeout_ms, 1000, MAX_IDLE_MS, key("user_timeout_ms"))?
    };
    Ok(TcpSideConfig {
        keepalive: raw.keepalive.unwrap_or(defaults.keepalive),
        keepalive_idle_ms: in_range(
            value(raw.keepalive_idle_ms, defaults.keepalive_idle_ms),
            1000,
            MAX_IDLE_MS,
            key("keepalive_idle_ms"),
        )?,
        keepalive_interval_ms: in_range(
            value(raw.keepalive_interval_ms, defaults.keepalive_interval_ms),
            100,
            3_600_000,
            key("keepalive_interval_ms"),
        )?,
        keepalive_probes: in_range(
            value(raw.keepalive_probes, defaults.keepalive_probes),
            1,
            100,
            key("keepalive_probes"),
        )?,
        fin_wait_2_timeout_ms: in_range(
            value(raw.fin_wait_2_timeout_ms, defaults.fin_wait_2_timeout_ms),
            1000,
            3_600_000,
            key("fin_wait_2_timeout_ms"),
        )?,
        user_timeout_ms,
    })
}

fn validate_worker(raw: &RawWorker) -> Result<WorkerConfig, ConfigError> {
    let burst = in_range(
        raw.burst
            .unwrap_or(u64::from(WorkerConfig::default().burst)),
        1,
        MAX_BURST,
        "worker.burst".to_owned(),
    )?;
    let core = raw
        .core
        .map(|core| in_range(core, 0, MAX_CORE, "worker.core".to_owned()))
        .transpose()?;
    Ok(WorkerConfig { burst, core })
}

fn validate_control(raw: &RawControl) -> Result<ControlConfig, ConfigError> {
    let Some(socket) = &raw.socket else {
        return Ok(ControlConfig::default());
    };
    let key = "control.socket".to_owned();
    let socket = non_empty(socket, key.clone())?;
    if socket.len() > MAX_SOCKET_PATH_BYTES {
        return Err(ConfigError::SocketPathTooLong {
            key,
            length: socket.len(),
            max: MAX_SOCKET_PATH_BYTES,
        });
    }
    Ok(ControlConfig {
        socket: Some(PathBuf::from(socket)),
    })
}

fn validate_log(raw: &RawLog) -> Result<LogConfig, ConfigError> {
    let level = match raw.level.as_deref() {
        None => LogConfig::default().level,
        Some(word) => parse_log_level(word).ok_or_else(|| ConfigError::UnknownValue {
            key: "log.level".to_owned(),
            value: word.to_owned(),
            expected: LOG_LEVEL_NAMES,
        })?,
    };
    Ok(LogConfig { level })
}

/// The accepted log level names, for error messages.
pub const LOG_LEVEL_NAMES: &str = "trace, debug, info, warn, error, off";

/// Parses a log level name (case-insensitive). Only the names are accepted, not the numbers
/// `tracing` would also take, so that a config file reads the same to everyone.
pub fn parse_log_level(word: &str) -> Option<LevelFilter> {
    let level = match word.to_ascii_lowercase().as_str() {
        "trace" => LevelFilter::TRACE,
        "debug" => LevelFilter::DEBUG,
        "info" => LevelFilter::INFO,
        "warn" => LevelFilter::WARN,
        "error" => LevelFilter::ERROR,
        "off" => LevelFilter::OFF,
        _ => return None,
    };
    Some(level)
}

fn validate_proxies(raw: &[RawProxy], config: &Config) -> Result<Vec<ProxyConfig>, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::MissingSection {
            key: "proxy".to_owned(),
        });
    }
    let mut listens = UniqueValues::new();
    let mut proxies = Vec::with_capacity(raw.len());
    for (index, raw) in raw.iter().enumerate() {
        let key = |field: &str| format!("proxy[{index}].{field}");
        let listen = ipv6::parse_listen(&raw.listen, key("listen"))?;
        let owned = |interface: &InterfaceConfig| match listen.ip() {
            IpAddr::V4(v4) => interface.address == v4,
            IpAddr::V6(v6) => interface.ipv6.is_some_and(|ipv6| ipv6.address == v6),
        };
        if !config.interfaces.iter().any(owned) {
            return Err(ConfigError::ListenNotOnInterface {
                key: key("listen"),
                listen,
            });
        }
        listens.insert(listen, key("listen"))?;
        let backend = parse_socket_address(&raw.backend, key("backend"))?;
        if config
            .interfaces
            .iter()
            .any(|interface| interface.address == *backend.ip())
        {
            return Err(ConfigError::BackendIsOwnAddress {
                key: key("backend"),
                backend,
            });
        }
        if config.route_to(*backend.ip()).is_none() {
            return Err(ConfigError::BackendUnreachable {
                key: key("backend"),
                backend,
            });
        }
        let scheduler = match raw.scheduler.as_deref() {
            None | Some("lowest-rtt") => Scheduler::LowestRtt,
            Some("round-robin") => Scheduler::RoundRobin,
            Some(other) => {
                return Err(ConfigError::UnknownValue {
                    key: key("scheduler"),
                    value: other.to_owned(),
                    expected: "lowest-rtt, round-robin",
                })
            }
        };
        proxies.push(ProxyConfig {
            listen,
            backend,
            scheduler,
        });
    }
    Ok(proxies)
}

fn non_empty(value: &str, key: String) -> Result<String, ConfigError> {
    if value.trim().is_empty() {
        return Err(ConfigError::Empty { key });
    }
    Ok(value.to_owned())
}

fn in_range<T: TryFrom<u64>>(
    value: u64,
    min: u64,
    max: u64,
    key: String,
) -> Result<T, ConfigError> {
    let out_of_range = || ConfigError::OutOfRange {
        key: key.clone(),
        value,
        min,
        max,
    };
    if !(min..=max).contains(&value) {
        return Err(out_of_range());
    }
    // Every bound above fits its target type, so this conversion only fails if a bound is
    // wrong; it is still reported as a range error rather than a panic.
    T::try_from(value).map_err(|_| out_of_range())
}

fn parse_address(value: &str, key: String) -> Result<Ipv4Addr, ConfigError> {
    value.parse().map_err(|_| ConfigError::InvalidAddress {
        key,
        value: value.to_owned(),
    })
}

fn parse_interface_address(value: &str, key: String) -> Result<(Ipv4Addr, u8), ConfigError> {
    let invalid = || ConfigError::InvalidInterfaceAddress {
        key: key.clone(),
        value: value.to_owned(),
    };
    let (address, prefix_len) = value.split_once('/').ok_or_else(invalid)?;
    let address: Ipv4Addr = address.parse().map_err(|_| invalid())?;
    // Only plain decimal digits: `u64::from_str` would also take a leading '+'.
    if prefix_len.is_empty() || !prefix_len.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(invalid());
    }
    let prefix_len: u64 = prefix_len.parse().map_err(|_| invalid())?;
    if prefix_len > 32 {
        return Err(ConfigError::PrefixLengthOutOfRange { key, prefix_len });
    }
    let prefix_len = u8::try_from(prefix_len).map_err(|_| invalid())?;
    Ok((address, prefix_len))
}

fn parse_socket_address(value: &str, key: String) -> Result<SocketAddrV4, ConfigError> {
    let address: SocketAddrV4 = value
        .parse()
        .map_err(|_| ConfigError::InvalidSocketAddress {
            key: key.clone(),
            value: value.to_owned(),
        })?;
    if address.port() == 0 {
        return Err(ConfigError::ZeroPort {
            key,
            value: value.to_owned(),
        });
    }
    Ok(address)
}
