//! What the engine needs to know about its interfaces, services and TCP tuning.

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

/// One appliance interface: a port with its own MAC and IPv4 address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceConfig {
    pub mac: [u8; 6],
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    /// Where destinations outside the prefix are sent.
    pub gateway: Option<Ipv4Addr>,
    pub mtu: u16,
}

impl InterfaceConfig {
    /// True when `destination` is inside this interface's prefix.
    pub fn is_on_link(&self, destination: Ipv4Addr) -> bool {
        let mask = if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix_len.min(32)))
        };
        u32::from(destination) & mask == u32::from(self.address) & mask
    }
}

/// Reverse proxy: connections to `listen` are relayed to `backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyRule {
    pub listen: SocketAddrV4,
    pub backend: SocketAddrV4,
}

/// TCP tuning, applied to both the client side and the backend side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpTuning {
    /// Receive buffer per connection in bytes: the most we advertise and hold.
    pub receive_buffer: u32,
    /// Send buffer per connection in bytes: the most we hold unacknowledged or unsent.
    pub send_buffer: u32,
    pub initial_rto: Duration,
    pub min_rto: Duration,
    pub max_rto: Duration,
    pub time_wait: Duration,
    /// How long a handshake may take before the connection is abandoned.
    pub connect_timeout: Duration,
}

impl Default for TcpTuning {
    fn default() -> Self {
        TcpTuning {
            receive_buffer: 1 << 20,
            send_buffer: 1 << 20,
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(60),
            time_wait: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// Everything an [`crate::Engine`] is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    pub interfaces: Vec<InterfaceConfig>,
    pub proxies: Vec<ProxyRule>,
    pub tcp: TcpTuning,
    /// Ask clients for DSS checksums (the MP_CAPABLE A bit, RFC 8684 section 3.1).
    pub mptcp_checksum_required: bool,
    /// Connections (client plus backend pair) held at once; further SYNs are refused with RST.
    pub max_connections: usize,
}
