//! What the engine needs to know about its interfaces, services and TCP tuning.

use crate::scheduler::SchedulerKind;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use core::time::Duration;

/// One appliance interface: a port with its own MAC, its IPv4 address and optionally an IPv6
/// address (issue 7: an access link may carry either family, and one connection's subflows may
/// mix them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceConfig {
    pub mac: [u8; 6],
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    /// Where destinations outside the prefix are sent.
    pub gateway: Option<Ipv4Addr>,
    pub mtu: u16,
    /// The interface's IPv6 address, if it has one.
    pub ipv6: Option<Ipv6Interface>,
}

/// The IPv6 address of an interface, with its on-link prefix and router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Interface {
    pub address: Ipv6Addr,
    pub prefix_len: u8,
    /// Where destinations outside the prefix are sent (a router's address, often link-local).
    pub gateway: Option<Ipv6Addr>,
}

impl Ipv6Interface {
    /// True when `destination` is inside this address's prefix, or link-local (RFC 4291
    /// section 2.5.6: fe80::/10 is on every link).
    pub fn is_on_link(&self, destination: Ipv6Addr) -> bool {
        if destination.is_unicast_link_local() {
            return true;
        }
        let mask = if self.prefix_len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.prefix_len.min(128)))
        };
        destination.to_bits() & mask == self.address.to_bits() & mask
    }
}

impl InterfaceConfig {
    /// An interface with an IPv4 address only.
    pub fn ipv4(
        mac: [u8; 6],
        address: Ipv4Addr,
        prefix_len: u8,
        gateway: Option<Ipv4Addr>,
        mtu: u16,
    ) -> Self {
        InterfaceConfig {
            mac,
            address,
            prefix_len,
            gateway,
            mtu,
            ipv6: None,
        }
    }

    /// True when `destination` is inside this interface's prefix.
    pub fn is_on_link(&self, destination: Ipv4Addr) -> bool {
        let mask = if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix_len.min(32)))
        };
        u32::from(destination) & mask == u32::from(self.address) & mask
    }

    /// True when `destination` of either family is on this interface's link.
    pub fn is_on_link_ip(&self, destination: IpAddr) -> bool {
        match destination {
            IpAddr::V4(v4) => self.is_on_link(v4),
            IpAddr::V6(v6) => self.ipv6.is_some_and(|ipv6| ipv6.is_on_link(v6)),
        }
    }

    /// True when `address` is one of this interface's own.
    pub fn owns(&self, address: IpAddr) -> bool {
        match address {
            IpAddr::V4(v4) => v4 == self.address,
            IpAddr::V6(v6) => self.ipv6.is_some_and(|ipv6| ipv6.address == v6),
        }
    }

    /// The interface's address of `address`'s family, if it has one.
    pub fn address_of_family(&self, address: IpAddr) -> Option<IpAddr> {
        match address {
            IpAddr::V4(_) => Some(IpAddr::V4(self.address)),
            IpAddr::V6(_) => self.ipv6.map(|ipv6| IpAddr::V6(ipv6.address)),
        }
    }

    /// The largest TCP MSS a segment of `family`'s headers may carry on this link: the MTU less
    /// the IP and TCP fixed headers (RFC 9293 3.7.1; 40 bytes over IPv4, 60 over IPv6).
    pub fn mss_for(&self, family: IpAddr) -> u16 {
        let headers = match family {
            IpAddr::V4(_) => 40,
            IpAddr::V6(_) => 60,
        };
        self.mtu.saturating_sub(headers)
    }
}

/// Reverse proxy: connections to `listen` are relayed to `backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyRule {
    /// An interface address of either family, and a port.
    pub listen: SocketAddr,
    /// Backends are reached over IPv4.
    pub backend: SocketAddrV4,
    /// How data toward the client is spread over its subflows.
    pub scheduler: SchedulerKind,
}

/// Keepalive probing of an idle connection (RFC 9293 section 3.8.4, RFC 1122 4.2.3.6): after
/// `idle` without a segment from the peer and with nothing outstanding, a probe every
/// `interval`; after `probes` unanswered probes the connection is reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    pub idle: Duration,
    pub interval: Duration,
    pub probes: u32,
}

/// How long one connection side may go without progress before it is given up: the limits
/// that keep a dead peer from holding a slot forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    /// Probes an idle connection; `None` leaves an idle connection alone.
    pub keepalive: Option<Keepalive>,
    /// The longest FIN-WAIT-2 without data from the peer (its zero-window probes count while
    /// our window is closed; pure ACKs and keepalive answers do not, so a peer that never
    /// sends its FIN is ended). Linux's `tcp_fin_timeout` bounds orphaned sockets alike.
    pub fin_wait_2_timeout: Duration,
    /// The longest time data (or a FIN) may wait to be acknowledged without any progress,
    /// whether lost, unanswered or behind a zero window (RFC 5482's user timeout, as Linux's
    /// `TCP_USER_TIMEOUT`); `None` leaves it to the retransmission limit.
    pub user_timeout: Option<Duration>,
}

impl Liveness {
    /// No keepalive and no user timeout: only the retransmission limit ends a connection.
    pub fn retransmission_limit_only(fin_wait_2_timeout: Duration) -> Self {
        Liveness {
            keepalive: None,
            fin_wait_2_timeout,
            user_timeout: None,
        }
    }
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            keepalive: Some(Keepalive {
                idle: Duration::from_secs(120),
                interval: Duration::from_secs(15),
                probes: 4,
            }),
            fin_wait_2_timeout: Duration::from_secs(60),
            user_timeout: Some(Duration::from_secs(180)),
        }
    }
}

/// The congestion control of one connection side (issue 7; see [`crate::tcp::Congestion`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CongestionAlgorithm {
    /// NewReno (RFC 5681, RFC 6582), each connection or subflow on its own.
    NewReno,
    /// LIA (RFC 6356): an MPTCP connection's subflows coupled so that together they take no
    /// more than one TCP flow on their best path; NewReno without a coupling.
    Lia,
    /// OLIA (draft-khalili-mptcp-congestion-control-05): coupled like LIA, moving traffic to
    /// the better paths; NewReno without a coupling.
    Olia,
    /// CUBIC (RFC 9438) with HyStart++ (RFC 9406), each connection or subflow on its own:
    /// the default, as in Linux.
    #[default]
    Cubic,
}

/// The most a connection side's receive buffer grows to by default: Linux's `tcp_rmem[2]`
/// (6 MiB), enough for 100 Mbit/s over 250 ms or 1 Gbit/s over 25 ms with a loss to recover.
pub const DEFAULT_RECEIVE_BUFFER: u32 = 6 << 20;
/// The receive buffer a connection side starts with by default: Linux's `tcp_rmem[1]`
/// (128 KiB).
pub const DEFAULT_RECEIVE_BUFFER_INITIAL: u32 = 128 << 10;

/// TCP tuning of one connection side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpTuning {
    /// Receive buffer per connection side in bytes: the most we advertise and hold. With
    /// `receive_buffer_autotuning` the buffer starts smaller and grows toward it.
    pub receive_buffer: u32,
    /// The receive buffer a connection side starts with under autotuning (clamped to
    /// `receive_buffer`).
    pub receive_buffer_initial: u32,
    /// Dynamic right-sizing of the receive buffer (see `tcp::right_sizing`): it grows, once per
    /// receiver RTT, from `receive_buffer_initial` toward `receive_buffer` as fast as the owner
    /// reads. Off, every side advertises `receive_buffer` from the start.
    pub receive_buffer_autotuning: bool,
    /// Send buffer per connection in bytes: the most we hold unacknowledged or unsent.
    pub send_buffer: u32,
    pub initial_rto: Duration,
    pub min_rto: Duration,
    pub max_rto: Duration,
    pub time_wait: Duration,
    /// How long a handshake may take before the connection is abandoned.
    pub connect_timeout: Duration,
    pub liveness: Liveness,
    pub congestion_control: CongestionAlgorithm,
    /// Explicit congestion notification (RFC 3168): accepted when a peer's SYN asks for it,
    /// and asked for in our own SYNs.
    pub ecn: bool,
    /// Data segments leave at a rate from the congestion window and the RTT, not in
    /// window-sized bursts (see `tcp::pacing`).
    pub pacing: bool,
}

impl Default for TcpTuning {
    fn default() -> Self {
        TcpTuning {
            receive_buffer: DEFAULT_RECEIVE_BUFFER,
            receive_buffer_initial: DEFAULT_RECEIVE_BUFFER_INITIAL,
            receive_buffer_autotuning: true,
            send_buffer: 1 << 20,
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(60),
            time_wait: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(30),
            liveness: Liveness::default(),
            congestion_control: CongestionAlgorithm::Cubic,
            ecn: true,
            pacing: true,
        }
    }
}

/// Everything an [`crate::Engine`] is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    pub interfaces: Vec<InterfaceConfig>,
    pub proxies: Vec<ProxyRule>,
    /// The client side of every connection (the MPTCP subflow, or plain TCP).
    pub client_tcp: TcpTuning,
    /// The backend side of every connection.
    pub backend_tcp: TcpTuning,
    /// Ask clients for DSS checksums (the MP_CAPABLE A bit, RFC 8684 section 3.1).
    pub mptcp_checksum_required: bool,
    /// Connections (client plus backend pair) held at once; further SYNs are refused with RST.
    /// TIME-WAIT entries do not count against it.
    pub max_connections: usize,
    /// Connection sides in TIME-WAIT held at once, apart from the connections.
    pub max_time_wait: usize,
    /// Subflows one MPTCP connection may hold, the initial one included (RFC 8684 section
    /// 3.2; at most [`crate::mptcp::MAX_SUBFLOWS`]). Joins beyond it are refused.
    pub mptcp_max_subflows: usize,
    /// Joins to the address and port of a connection's initial subflow are accepted (Linux's
    /// `net.mptcp.allow_join_initial_addr_port`). Behind an L4 load balancer that address is
    /// the balancer's: then false sets the C bit of our MP_CAPABLE SYN-ACK (RFC 8684 section
    /// 3.1), the client joins only the addresses we announce (ADD_ADDR), and joins to the
    /// initial address are refused.
    pub mptcp_allow_join_initial_address: bool,
    /// A backend source port in TIME-WAIT may be reused for a new connection, when the old one
    /// used timestamps (RFC 6191; Linux's `tcp_tw_reuse`).
    pub time_wait_reuse: bool,
    /// Source ports of connections toward backends (Linux's `ip_local_port_range`).
    pub local_ports: core::ops::RangeInclusive<u16>,
}
