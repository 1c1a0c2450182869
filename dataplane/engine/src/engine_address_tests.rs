//! Frame-level tests of address management (RFC 8684 section 3.4) and of the priorities we
//! ask for (section 3.3.8): ADD_ADDR announced, retransmitted until echoed and given up after
//! its bound; the client's ADD_ADDR echoed or, with a bad HMAC, ignored; REMOVE_ADDR both
//! ways; MP_PRIO both ways. The engine has two client-facing interfaces (198.18.0.2 and
//! 198.18.1.2) and the backend's; the client talks to it over the first.

use core::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use bytes::Bytes;
use mpterm_wire::ethernet::{self, EthernetAddress, EthernetFrame, EthernetRepr};
use mpterm_wire::ipv4::{self, Ipv4Packet, Ipv4Repr};
use mpterm_wire::mptcp::{AddAddr, MpCapable, MpJoin, MptcpOption};
use mpterm_wire::tcp::{self, TcpFlags, TcpOptions, TcpRepr, TcpSegment};
use mpterm_wire::SeqNumber;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::mptcp::address::{add_addr_hmac, ADD_ADDR_MAX_TRANSMISSIONS, ADD_ADDR_RETRY_AFTER};
use crate::mptcp::join::{syn_ack_hmac, third_ack_hmac};
use crate::{InterfaceConfig, TcpTuning};

const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
const FIRST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const FIRST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const SECOND: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const CLIENT_KEY: u64 = 0x1111_2222_3333_4444;
/// Our address ID for the second interface: its place among the interfaces plus one.
const SECOND_ID: u8 = 2;

#[derive(Debug, Default)]
struct Tokens;

impl TokenRegistry for Tokens {
    fn try_register(&mut self, _token: u32, _connection_id: u64) -> bool {
        true
    }
    fn release(&mut self, _token: u32) {}
}

type TestEngine = Engine<Bytes, ChaCha8Rng, Tokens>;

fn interface(mac: [u8; 6], address: Ipv4Addr) -> InterfaceConfig {
    InterfaceConfig {
        mac,
        address,
        prefix_len: 24,
        gateway: None,
        mtu: 1500,
        ipv6: None,
    }
}

fn engine() -> TestEngine {
    let config = EngineConfig {
        interfaces: vec![
            interface(FIRST_MAC, FIRST),
            interface([0x02, 0, 0, 0, 0, 3], SECOND),
            interface([0x02, 0, 0, 0, 0, 2], Ipv4Addr::new(198, 19, 0, 1)),
        ],
        proxies: vec![ProxyRule {
            listen: SocketAddrV4::new(FIRST, 5000).into(),
            backend: SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 2), 6000),
            scheduler: crate::scheduler::SchedulerKind::default(),
        }],
        client_tcp: TcpTuning::default(),
        backend_tcp: TcpTuning::default(),
        mptcp_checksum_required: false,
        max_connections: 4,
        max_time_wait: 64,
        mptcp_max_subflows: 8,
        mptcp_allow_join_initial_address: true,
        time_wait_reuse: true,
        local_ports: 49152..=65535,
    };
    Engine::new(config, ChaCha8Rng::seed_from_u64(11), Tokens)
}

/// A segment from the client (always over the first interface) to `destination`.
fn from_client(repr: &TcpRepr<'_>, destination: Ipv4Addr) -> Bytes {
    let tcp_len = repr.header_len();
    let mut bytes = vec![0u8; ethernet::HEADER_LEN + ipv4::HEADER_LEN + tcp_len];
    EthernetRepr {
        src: EthernetAddress(CLIENT_MAC),
        dst: EthernetAddress(FIRST_MAC),
        ethertype: ethernet::ETHERTYPE_IPV4,
    }
    .emit(&mut bytes)
    .unwrap();
    let body = &mut bytes[ethernet::HEADER_LEN..];
    Ipv4Repr {
        src: CLIENT,
        dst: destination,
        protocol: ipv4::PROTOCOL_TCP,
        payload_len: tcp_len as u16,
        ttl: 64,
    }
    .emit(body)
    .unwrap();
    repr.emit(&mut body[ipv4::HEADER_LEN..]).unwrap();
    tcp::fill_checksum_v4(&mut body[ipv4::HEADER_LEN..], CLIENT, destination, &[]);
    Bytes::from(bytes)
}

/// What the engine sent toward the client, as (source address, segment).
struct Sent(Vec<Vec<u8>>);

impl Sent {
    fn collect(engine: &mut TestEngine, now: Instant) -> Sent {
        let mut frames = Vec::new();
        while let Some(transmit) = engine.poll_transmit(now) {
            let mut bytes = transmit.header.as_slice().to_vec();
            if let Some(payload) = transmit.payload {
                bytes.extend_from_slice(&payload);
            }
            frames.push(bytes);
        }
        Sent(frames)
    }

    fn segments(&self) -> Vec<(Ipv4Addr, TcpRepr<'_>)> {
        self.0
            .iter()
            .filter(|frame| {
                EthernetFrame::new_checked(&frame[..])
                    .is_ok_and(|e| e.ethertype() == ethernet::ETHERTYPE_IPV4)
            })
            .filter_map(|frame| {
                let ip = Ipv4Packet::new_checked(&frame[ethernet::HEADER_LEN..]).ok()?;
                if ip.dst_addr() != CLIENT {
                    return None;
                }
                let start = ethernet::HEADER_LEN + ip.header_len();
                let end = ethernet::HEADER_LEN + usize::from(ip.total_len());
                let segment = TcpSegment::new_checked(&frame[start..end]).ok()?;
                Some((ip.src_addr(), TcpRepr::parse(&segment).ok()?))
            })
            .collect()
    }

    /// The MPTCP options of the segments toward the client, with their destination port.
    fn options(&self) -> Vec<(u16, MptcpOption<'_>)> {
        self.segments()
            .into_iter()
            .flat_map(|(_, repr)| {
                repr.options
                    .mptcp
                    .into_iter()
                    .flatten()
                    .map(move |option| (repr.dst_port, option))
            })
            .collect()
    }

    fn add_addrs(&self) -> Vec<AddAddr> {
        self.options()
            .into_iter()
            .filter_map(|(_, option)| match option {
                MptcpOption::AddAddr(add) => Some(add),
                _ => None,
            })
            .collect()
    }
}

fn capable(sender_key: Option<u64>, receiver_key: Option<u64>) -> TcpOptions<'static> {
    let mut options = TcpOptions::default();
    options.mptcp[0] = Some(MptcpOption::MpCapable(MpCapable {
        version: 1,
        checksum_required: false,
        extensibility: false,
        no_new_subflows_to_source: false,
        hmac_sha256: true,
        sender_key,
        receiver_key,
        data_level_length: None,
        checksum: None,
    }));
    options
}

fn segment(port: u16, seq: u32, ack: SeqNumber, options: TcpOptions<'static>) -> TcpRepr<'static> {
    TcpRepr {
        src_port: port,
        dst_port: 5000,
        seq: SeqNumber(seq),
        ack,
        flags: TcpFlags::ACK,
        window: 64240,
        options,
    }
}

/// One MPTCP connection from port 40000, fully established.
struct Client {
    engine: TestEngine,
    server_key: u64,
    /// Our next sequence number per client port (the initial subflow's, the join's).
    server_seq: SeqNumber,
    /// What the client's third ACK left in the engine's output.
    established: Sent,
}

impl Client {
    fn connect(mut engine: TestEngine) -> Client {
        let syn = TcpRepr {
            flags: TcpFlags::SYN,
            ack: SeqNumber(0),
            ..segment(40000, 1000, SeqNumber(0), capable(Some(CLIENT_KEY), None))
        };
        engine.handle_frame(Instant::ZERO, 0, from_client(&syn, FIRST));
        let sent = Sent::collect(&mut engine, Instant::ZERO);
        let (_, syn_ack) = sent.segments()[0];
        let Some(MptcpOption::MpCapable(MpCapable {
            sender_key: Some(server_key),
            ..
        })) = syn_ack.options.mptcp[0]
        else {
            panic!("no key in {syn_ack:?}")
        };
        let server_seq = syn_ack.seq + 1;
        let third = segment(
            40000,
            1001,
            server_seq,
            capable(Some(CLIENT_KEY), Some(server_key)),
        );
        engine.handle_frame(Instant::ZERO, 0, from_client(&third, FIRST));
        let established = Sent::collect(&mut engine, Instant::ZERO);
        Client {
            engine,
            server_key,
            server_seq,
            established,
        }
    }

    /// A pure ACK on the initial subflow carrying `option`.
    fn send_option(&mut self, now: Instant, option: MptcpOption<'static>) -> Sent {
        let mut options = TcpOptions::default();
        options.mptcp[0] = Some(option);
        let ack = segment(40000, 1001, self.server_seq, options);
        self.engine.handle_frame(now, 0, from_client(&ack, FIRST));
        Sent::collect(&mut self.engine, now)
    }

    fn timeout(&mut self, now: Instant) -> Sent {
        self.engine.handle_timeout(now);
        Sent::collect(&mut self.engine, now)
    }

    /// Joins a subflow from port 40001 to `destination`, client address ID 5; returns our
    /// address ID for it.
    fn join(&mut self, destination: Ipv4Addr) -> u8 {
        let token = crate::mptcp_keys::derive_from_key(self.server_key).token;
        let mut options = TcpOptions::default();
        options.mptcp[0] = Some(MptcpOption::MpJoin(MpJoin::Syn {
            backup: false,
            address_id: 5,
            receiver_token: token,
            sender_nonce: 0x5555_aaaa,
        }));
        let syn = TcpRepr {
            flags: TcpFlags::SYN,
            ..segment(40001, 7000, SeqNumber(0), options)
        };
        self.engine
            .handle_frame(Instant::ZERO, 0, from_client(&syn, destination));
        let sent = Sent::collect(&mut self.engine, Instant::ZERO);
        let (_, syn_ack) = sent.segments()[0];
        let Some(MptcpOption::MpJoin(MpJoin::SynAck {
            truncated_hmac,
            sender_nonce,
            address_id,
            ..
        })) = syn_ack.options.mptcp[0]
        else {
            panic!("no MP_JOIN in {syn_ack:?}")
        };
        assert_eq!(
            truncated_hmac,
            syn_ack_hmac(self.server_key, CLIENT_KEY, sender_nonce, 0x5555_aaaa)
        );
        let hmac = third_ack_hmac(self.server_key, CLIENT_KEY, sender_nonce, 0x5555_aaaa);
        let mut options = TcpOptions::default();
        options.mptcp[0] = Some(MptcpOption::MpJoin(MpJoin::Ack { hmac }));
        let third = segment(40001, 7001, syn_ack.seq + 1, options);
        self.engine
            .handle_frame(Instant::ZERO, 0, from_client(&third, destination));
        Sent::collect(&mut self.engine, Instant::ZERO);
        assert_eq!(self.engine.counters().mptcp_joins_established, 1);
        address_id
    }

    fn our_add_addr(&self, port: Option<u16>) -> AddAddr {
        AddAddr {
            echo: false,
            address_id: SECOND_ID,
            address: IpAddr::V4(SECOND),
            port,
            truncated_hmac: Some(add_addr_hmac(
                self.server_key,
                CLIENT_KEY,
                SECOND_ID,
                IpAddr::V4(SECOND),
                port,
            )),
        }
    }

    fn views(&self) -> Vec<SubflowView> {
        let mut views = Vec::new();
        self.engine
            .visit_connections(|_, subflows| views.extend(subflows));
        views
    }

    fn connection_id(&self) -> u64 {
        let mut id = 0;
        self.engine
            .visit_connections(|connection, _| id = connection);
        id
    }
}

fn at(seconds: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(seconds)
}

fn announcing_engine(port: Option<u16>) -> TestEngine {
    let mut engine = engine();
    engine.announce_address(Instant::ZERO, 1, port).unwrap();
    engine
}

#[test]
fn the_second_address_is_announced_with_its_hmac_on_a_pure_ack_once_fully_established() {
    let client = Client::connect(announcing_engine(None));
    let announced = client.established.add_addrs();
    assert_eq!(announced, [client.our_add_addr(None)]);
    // It rides on a pure ACK of the initial subflow, beside the DATA_ACK (12 + 16 + 12 bytes).
    let carrier = client
        .established
        .segments()
        .into_iter()
        .find(|(_, repr)| {
            repr.options
                .mptcp
                .iter()
                .any(|o| matches!(o, Some(MptcpOption::AddAddr(_))))
        })
        .unwrap();
    assert_eq!(carrier.0, FIRST);
    assert_eq!(carrier.1.flags, TcpFlags::ACK);
    assert_eq!(carrier.1.dst_port, 40000);
    assert!(matches!(
        carrier.1.options.mptcp[0],
        Some(MptcpOption::Dss(_))
    ));
    assert_eq!(client.engine.counters().mptcp_add_addr_sent, 1);

    // The address the connection was opened to is never announced to it.
    let mut first_only = engine();
    first_only.announce_address(Instant::ZERO, 0, None).unwrap();
    assert!(Client::connect(first_only)
        .established
        .add_addrs()
        .is_empty());
    assert_eq!(
        engine().announce_address(Instant::ZERO, 9, None),
        Err(AddressError::NoSuchInterface(9))
    );
}

#[test]
fn an_address_announced_later_reaches_established_connections_with_its_port() {
    let mut client = Client::connect(engine());
    assert!(client.established.add_addrs().is_empty());
    client
        .engine
        .announce_address(at(1), 1, Some(7000))
        .unwrap();
    let sent = Sent::collect(&mut client.engine, at(1));
    // The ADD_ADDR with its port (18 bytes) beside the DATA_ACK: this client uses no
    // timestamps, so both fit (with them, the DSS would give way: `address.rs`'s tests).
    assert_eq!(sent.add_addrs(), [client.our_add_addr(Some(7000))]);
    assert!(sent
        .segments()
        .iter()
        .all(|(_, repr)| repr.options.encoded_len() <= tcp::MAX_OPTIONS_LEN));
}

#[test]
fn an_announcement_is_sent_again_until_echoed() {
    let mut client = Client::connect(announcing_engine(None));
    let ours = client.our_add_addr(None);
    assert_eq!(client.timeout(at(1)).add_addrs(), []);
    let retry = Instant::ZERO + ADD_ADDR_RETRY_AFTER;
    assert_eq!(client.timeout(retry).add_addrs(), [ours]);
    let echo = AddAddr {
        echo: true,
        truncated_hmac: None,
        ..ours
    };
    client.send_option(retry, MptcpOption::AddAddr(echo));
    for seconds in 3..20 {
        assert_eq!(client.timeout(at(seconds)).add_addrs(), [], "echoed");
    }
    let counters = *client.engine.counters();
    assert_eq!(counters.mptcp_add_addr_sent, 2);
    assert_eq!(counters.mptcp_add_addr_echoed, 1);
    assert_eq!(counters.mptcp_add_addr_unanswered, 0);
}

#[test]
fn an_announcement_never_echoed_is_given_up_after_its_last_transmission() {
    let mut client = Client::connect(announcing_engine(None));
    let mut sent = client.established.add_addrs().len();
    for seconds in 1..30 {
        sent += client.timeout(at(seconds)).add_addrs().len();
    }
    assert_eq!(sent, usize::from(ADD_ADDR_MAX_TRANSMISSIONS));
    let counters = *client.engine.counters();
    assert_eq!(
        counters.mptcp_add_addr_sent,
        u64::from(ADD_ADDR_MAX_TRANSMISSIONS)
    );
    assert_eq!(counters.mptcp_add_addr_unanswered, 1);
    assert_eq!(counters.mptcp_add_addr_echoed, 0);
}

fn client_announcement(hmac: u64) -> AddAddr {
    AddAddr {
        echo: false,
        address_id: 4,
        address: IpAddr::V4(Ipv4Addr::new(198, 18, 7, 1)),
        port: None,
        truncated_hmac: Some(hmac),
    }
}

#[test]
fn the_clients_announcement_is_echoed_and_one_with_a_bad_hmac_ignored() {
    let mut client = Client::connect(engine());
    let good = client_announcement(add_addr_hmac(
        CLIENT_KEY,
        client.server_key,
        4,
        IpAddr::V4(Ipv4Addr::new(198, 18, 7, 1)),
        None,
    ));
    let sent = client.send_option(at(1), MptcpOption::AddAddr(good));
    let echo = AddAddr {
        echo: true,
        truncated_hmac: None,
        ..good
    };
    assert_eq!(sent.add_addrs(), [echo]);
    // The HMAC keyed the wrong way round is as bad as any other.
    let bad = client_announcement(add_addr_hmac(
        client.server_key,
        CLIENT_KEY,
        4,
        IpAddr::V4(Ipv4Addr::new(198, 18, 7, 1)),
        None,
    ));
    assert_eq!(
        client
            .send_option(at(2), MptcpOption::AddAddr(bad))
            .add_addrs(),
        []
    );
    let counters = *client.engine.counters();
    assert_eq!(counters.mptcp_add_addr_received, 1);
    assert_eq!(counters.mptcp_add_addr_bad_hmac, 1);
    assert_eq!(
        client.views().len(),
        1,
        "the server opens no subflow itself"
    );
}

#[test]
fn the_clients_remove_addr_resets_the_subflows_of_that_address_and_an_unknown_id_is_ignored() {
    let mut client = Client::connect(engine());
    client.join(FIRST);
    assert_eq!(client.views().len(), 2);
    let unknown = client.send_option(at(1), MptcpOption::RemoveAddr { address_ids: &[9] });
    assert!(
        unknown.segments().is_empty(),
        "nothing to do: {:?}",
        unknown.segments()
    );
    assert_eq!(client.engine.counters().mptcp_remove_addr_unknown, 1);
    let sent = client.send_option(at(2), MptcpOption::RemoveAddr { address_ids: &[5] });
    let resets: Vec<u16> = sent
        .segments()
        .into_iter()
        .filter(|(_, repr)| repr.flags.contains(TcpFlags::RST))
        .map(|(_, repr)| repr.dst_port)
        .collect();
    assert_eq!(resets, [40001], "the join from address ID 5 is reset");
    let counters = *client.engine.counters();
    assert_eq!(counters.mptcp_remove_addr_received, 1);
    assert_eq!(counters.mptcp_remove_addr_subflows_closed, 1);
    assert_eq!(counters.mptcp_remove_addr_unknown, 1);
    assert!(client
        .views()
        .iter()
        .any(|view| view.index == 0 && view.state == crate::tcp::TcpState::Established));
}

#[test]
fn a_withdrawn_address_is_removed_with_remove_addr_and_its_subflows_reset() {
    let mut client = Client::connect(announcing_engine(None));
    let id = client.join(SECOND);
    assert_eq!(id, SECOND_ID, "the join came to the announced address");
    client.engine.withdraw_address(at(1), 1).unwrap();
    let sent = client.timeout(at(1));
    let segments = sent.segments();
    let removal = segments
        .iter()
        .find(|(_, repr)| {
            repr.options.mptcp.iter().flatten().any(|option| {
                *option
                    == MptcpOption::RemoveAddr {
                        address_ids: &[SECOND_ID],
                    }
            })
        })
        .expect("REMOVE_ADDR sent");
    assert_eq!(removal.1.dst_port, 40000, "on the subflow that stays");
    assert!(segments
        .iter()
        .any(|(source, repr)| *source == SECOND && repr.flags.contains(TcpFlags::RST)));
    let counters = *client.engine.counters();
    assert_eq!(counters.mptcp_remove_addr_sent, 1);
    assert_eq!(counters.mptcp_remove_addr_subflows_closed, 1);
    // And no more ADD_ADDR for it, echoed or not.
    for seconds in 2..10 {
        assert_eq!(client.timeout(at(seconds)).add_addrs(), []);
    }
}

#[test]
fn mp_prio_both_ways() {
    let mut client = Client::connect(engine());
    let id = client.connection_id();
    client
        .engine
        .set_subflow_backup(at(1), id, 0, true)
        .unwrap();
    let sent = Sent::collect(&mut client.engine, at(1));
    assert!(sent.options().contains(&(
        40000,
        MptcpOption::MpPrio {
            backup: true,
            address_id: None
        }
    )));
    assert!(client.views()[0].backup);
    assert_eq!(client.engine.counters().mptcp_prio_sent, 1);
    assert_eq!(
        client.engine.set_subflow_backup(at(1), id, 3, true),
        Err(AddressError::NoSuchSubflow {
            connection: id,
            subflow: 3
        })
    );
    assert_eq!(
        client.engine.set_subflow_backup(at(1), id + 1, 0, true),
        Err(AddressError::NoSuchConnection(id + 1))
    );
    client
        .engine
        .set_subflow_backup(at(2), id, 0, false)
        .unwrap();
    Sent::collect(&mut client.engine, at(2));
    assert!(!client.views()[0].backup);

    // The client's MP_PRIO marks the subflow it arrives on.
    client.send_option(
        at(3),
        MptcpOption::MpPrio {
            backup: true,
            address_id: None,
        },
    );
    assert!(client.views()[0].backup);
    assert_eq!(client.engine.counters().mptcp_prio_received, 1);
}
