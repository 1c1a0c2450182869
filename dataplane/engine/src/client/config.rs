//! What a [`super::ClientEngine`] is built from, and the checks it must pass.

use core::net::SocketAddrV4;
use core::ops::RangeInclusive;

use crate::{InterfaceConfig, TcpTuning};

/// The smallest and largest MTU the client accepts: IPv4's minimum datagram every host must
/// take (RFC 791), and jumbo frames.
pub const MTU_RANGE: RangeInclusive<u16> = 576..=9000;

/// Everything a client endpoint needs: its one interface, the server it connects to, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The endpoint's own interface: MAC, IPv4 address and prefix, gateway, MTU.
    pub interface: InterfaceConfig,
    /// Every connection goes to this address and port.
    pub server: SocketAddrV4,
    /// Ask for MPTCP version 1 in the SYN (RFC 8684 section 3.1); plain TCP otherwise.
    pub mptcp: bool,
    /// Ask for DSS checksums (the MP_CAPABLE A bit). They are used when either side asks.
    pub dss_checksums: bool,
    pub tcp: TcpTuning,
    /// Connections held at once; every table is sized from it when the endpoint is built.
    pub max_connections: usize,
    /// Local ports of the connections (Linux's `ip_local_port_range`).
    pub local_ports: RangeInclusive<u16>,
    /// A port whose TIME-WAIT used timestamps may be reused after one second (RFC 6191,
    /// Linux's `tcp_tw_reuse`); without it a port waits out its whole TIME-WAIT.
    pub time_wait_reuse: bool,
    /// Verify the TCP checksum of every received segment. A driver whose NIC has verified it
    /// already may turn this off and save a pass over the payload (with DSS checksums on, the
    /// DSS checksum still covers the data).
    pub verify_tcp_checksums: bool,
}

impl ClientConfig {
    /// A configuration with the defaults of a Linux client: MPTCP with DSS checksums, no ECN, 1024
    /// connections, ports 49152..=65535, TIME-WAIT reuse, checksums verified.
    pub fn new(interface: InterfaceConfig, server: SocketAddrV4) -> Self {
        ClientConfig {
            interface,
            server,
            mptcp: true,
            dss_checksums: true,
            // A Linux client (`tcp_ecn = 2`) does not ask for ECN.
            tcp: TcpTuning {
                ecn: false,
                ..TcpTuning::default()
            },
            max_connections: 1024,
            local_ports: 49152..=65535,
            time_wait_reuse: true,
            verify_tcp_checksums: true,
        }
    }

    /// Checks what the endpoint relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_connections == 0 || self.max_connections > u32::MAX as usize {
            return Err(ConfigError::ConnectionLimit(self.max_connections));
        }
        if self.local_ports.is_empty() || *self.local_ports.start() == 0 {
            return Err(ConfigError::PortRange {
                first: *self.local_ports.start(),
                last: *self.local_ports.end(),
            });
        }
        let mtu = self.interface.mtu;
        if !MTU_RANGE.contains(&mtu) {
            return Err(ConfigError::Mtu(mtu));
        }
        let server = *self.server.ip();
        if server == self.interface.address {
            return Err(ConfigError::ServerIsOwnAddress);
        }
        if !self.interface.is_on_link(server) {
            match self.interface.gateway {
                None => return Err(ConfigError::NoRouteToServer),
                Some(gateway) if !self.interface.is_on_link(gateway) => {
                    return Err(ConfigError::GatewayOffLink)
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The number of local ports in the range.
    pub(crate) fn port_count(&self) -> usize {
        usize::from(self.local_ports.end() - self.local_ports.start()) + 1
    }
}

/// A [`ClientConfig`] the endpoint cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("max_connections must be 1..=4294967295, not {0}")]
    ConnectionLimit(usize),
    #[error("local port range {first}..={last} is empty or starts at port 0")]
    PortRange { first: u16, last: u16 },
    #[error("MTU {0} is outside 576..=9000")]
    Mtu(u16),
    #[error("the server address is the client's own")]
    ServerIsOwnAddress,
    #[error("the server is off-link and no gateway is configured")]
    NoRouteToServer,
    #[error("the gateway is outside the interface's prefix")]
    GatewayOffLink,
}
