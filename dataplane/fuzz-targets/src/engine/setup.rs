//! The engine under test and the live connection every engine fuzz input starts from.

use core::net::{Ipv4Addr, SocketAddrV4};

use mpterm_engine::{EngineConfig, InterfaceConfig, ProxyRule, TcpTuning};
use mpterm_wire::tcp::TcpFlags;
use mpterm_wire::SeqNumber;

use super::peer::{MptcpPeer, Peer, Role};
use super::script::{SegmentSpec, Step};
use super::Harness;

pub const CLIENT_SIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const BACKEND_SIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
pub const SECOND_CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];
pub const BACKEND_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x20];
pub const APPLIANCE_CLIENT_SIDE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub const APPLIANCE_BACKEND_SIDE: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// Another host on the client link (new connections and joins may come from it).
pub const SECOND_CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);
/// A client beyond the link: the engine has no route back to it.
pub const OFF_LINK_CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 7, 1);
pub const BACKEND: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 2), 6000);
pub const LISTEN: SocketAddrV4 = SocketAddrV4::new(APPLIANCE_CLIENT_SIDE, 5000);
pub const CLIENT_PORT: u16 = 40000;
pub const CLIENT_KEY: u64 = 0x0123_4567_89ab_cdef;
pub const CLIENT_ISS: SeqNumber = SeqNumber(0xfff0_0000);
/// The backend's ISS for the engine's first connection; later backend peers count up.
pub const BACKEND_ISS: SeqNumber = SeqNumber(0x7fff_ff00);
/// Few connection slots, so that churn reaches the limit.
pub const MAX_CONNECTIONS: usize = 4;
/// The engine's RNG seed: keys and ISNs are the same on every run.
pub const ENGINE_SEED: u64 = 0x6d70_7465_726d;
/// Bytes each side sends during setup.
const SETUP_DATA: u16 = 100;

/// The configuration of the engine under test. Kept in this one function so that it follows
/// changes to `EngineConfig` and `TcpTuning` in one place.
pub fn fuzz_engine_config() -> EngineConfig {
    let small_buffers = TcpTuning {
        receive_buffer: 64 * 1024,
        send_buffer: 64 * 1024,
        ..TcpTuning::default()
    };
    EngineConfig {
        interfaces: vec![
            InterfaceConfig {
                mac: CLIENT_SIDE_MAC,
                address: APPLIANCE_CLIENT_SIDE,
                prefix_len: 24,
                gateway: None,
                mtu: 1500,
                // The address of the IPv6 capture fixtures' server, so that their frames
                // (seeds of the garbage input) are ours.
                ipv6: Some(mpterm_engine::Ipv6Interface {
                    address: core::net::Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2),
                    prefix_len: 64,
                    gateway: None,
                }),
            },
            InterfaceConfig {
                mac: BACKEND_SIDE_MAC,
                address: APPLIANCE_BACKEND_SIDE,
                prefix_len: 24,
                gateway: None,
                mtu: 1500,
                ipv6: None,
            },
        ],
        proxies: vec![ProxyRule {
            listen: LISTEN.into(),
            backend: BACKEND,
            scheduler: mpterm_engine::scheduler::SchedulerKind::default(),
        }],
        // Small buffers (the configuration's minimum), so that a few bursts fill windows.
        client_tcp: small_buffers,
        backend_tcp: small_buffers,
        mptcp_checksum_required: true,
        max_connections: MAX_CONNECTIONS,
        // Few TIME-WAIT entries and backend ports, so that churn exhausts both.
        max_time_wait: 4,
        mptcp_max_subflows: 8,
        mptcp_allow_join_initial_address: true,
        time_wait_reuse: true,
        local_ports: 49152..=49159,
    }
}

/// Flags of a segment spec: the spec XORs ACK into its flags byte.
fn spec_flags(flags: TcpFlags) -> u8 {
    flags.0 ^ TcpFlags::ACK.0
}

impl Harness {
    /// An engine with one live MPTCP connection: a Linux-like client did the MP_CAPABLE
    /// handshake with DSS checksums (RFC 8684 section 3.1), the engine connected to the
    /// backend, and each side sent 100 bytes that the other received and acknowledged.
    /// Peer 0 is the client, peer 1 the backend. Panics when the engine does not get there:
    /// every input would then test nothing.
    pub fn with_live_connection() -> Harness {
        let mut harness = Harness::new(fuzz_engine_config());
        harness.peers.push(Peer::new(
            Role::Client,
            0,
            CLIENT_MAC,
            SocketAddrV4::new(CLIENT_IP, CLIENT_PORT),
            LISTEN,
            CLIENT_ISS,
            Some(MptcpPeer::new(CLIENT_KEY)),
        ));
        let segment = |peer, flags, payload_len| {
            Step::Segment(SegmentSpec {
                peer,
                flags: spec_flags(flags),
                payload_len,
                ..SegmentSpec::default()
            })
        };

        harness.apply(&segment(0, TcpFlags::SYN, 0));
        let client = &harness.peers[0];
        assert!(
            client.rcv_nxt.is_some()
                && client
                    .mptcp
                    .as_ref()
                    .is_some_and(|m| m.engine_key.is_some()),
            "setup: the engine did not answer the MP_CAPABLE SYN with its key"
        );
        // The third ACK with both keys; the engine resolves the backend and connects.
        harness.apply(&segment(0, TcpFlags::ACK, 0));
        assert!(
            harness.peers.len() == 2 && harness.peers[1].role == Role::Backend,
            "setup: the engine did not connect to the backend"
        );
        harness.apply(&segment(1, TcpFlags::SYN | TcpFlags::ACK, 0));
        harness.apply(&segment(0, TcpFlags::ACK | TcpFlags::PSH, SETUP_DATA));
        harness.apply(&segment(1, TcpFlags::ACK | TcpFlags::PSH, SETUP_DATA));
        harness.apply(&segment(0, TcpFlags::ACK, 0));
        harness.apply(&segment(1, TcpFlags::ACK, 0));
        for (peer, name) in harness.peers.iter().zip(["client", "backend"]) {
            assert_eq!(
                peer.bytes_received,
                u64::from(SETUP_DATA),
                "setup: the {name} did not receive the other side's data"
            );
        }
        assert!(
            harness.peers[0].mptcp.as_ref().is_some_and(|m| m.confirmed),
            "setup: the engine sent no DSS"
        );
        let counters = harness.engine.counters();
        assert_eq!(harness.engine.connection_count(), 1, "setup: connections");
        assert_eq!(
            (counters.mptcp_connections, counters.mptcp_fallbacks),
            (1, 0),
            "setup: MPTCP was not negotiated"
        );
        harness
    }
}
