//! The client engine's API on its own: handles that go stale, limits that give errors, the
//! configuration's checks, ARP, and bad frames that are counted, never a panic.

mod client_support;

use core::net::Ipv4Addr;

use bytes::Bytes;
use client_support::*;
use mpterm_engine::client::{ClientEngine, ClientError, ConfigError};
use mpterm_engine::Instant;
use mpterm_wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use mpterm_wire::ethernet::{self, EthernetAddress, EthernetFrame, EthernetRepr};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

const T0: Instant = Instant::ZERO;

fn engine(max_connections: usize) -> ClientEngine<Bytes, ChaCha8Rng> {
    ClientEngine::new(
        client_config(true, true, max_connections),
        ChaCha8Rng::seed_from_u64(1),
    )
    .unwrap()
}

#[test]
fn a_stale_handle_reaches_nothing() {
    let mut lab = Lab::new(
        51,
        client_config(true, true, 1),
        server_config(true),
        BackendBehaviour::Bulk { download: 1000 },
    );
    let first = lab.open(pattern(1000, 1), ClosePolicy::AfterSending);
    lab.run_until(|lab| lab.all_ended());
    // The one slot is reused by the next connection; the old handle must not reach it.
    let second = lab.open(pattern(1000, 2), ClosePolicy::AfterPeerFinished);
    assert_eq!(first.index(), second.index());
    assert_ne!(first, second);
    lab.run_until(|lab| lab.apps[&second].established.is_some());
    let payload = Bytes::from_static(b"not for the new connection");
    assert_eq!(lab.client.send(first, payload.clone()), Err(payload));
    assert_eq!(lab.client.send_capacity(first), 0);
    assert!(lab.client.recv(first).is_none());
    assert_eq!(lab.client.close(first), Err(ClientError::UnknownConnection));
    assert_eq!(lab.client.abort(first), Err(ClientError::UnknownConnection));
    assert!(lab.client.connection_info(first).is_err());
    assert!(lab.client.connection_info(second).is_ok());
    lab.run_until(|lab| lab.all_ended());
    lab.check_data();
}

#[test]
fn slots_and_ports_run_out_with_an_error() {
    let mut client = engine(2);
    client.connect(T0).unwrap();
    client.connect(T0).unwrap();
    assert_eq!(client.connect(T0), Err(ClientError::NoFreeSlot));

    let mut config = client_config(true, true, 4);
    config.local_ports = 50_000..=50_001;
    let mut client: ClientEngine<Bytes, _> =
        ClientEngine::new(config, ChaCha8Rng::seed_from_u64(2)).unwrap();
    client.connect(T0).unwrap();
    client.connect(T0).unwrap();
    assert_eq!(client.connect(T0), Err(ClientError::NoFreePort));
    assert_eq!(client.connection_count(), 2);
    assert_eq!(
        client.tokens_in_use(),
        2,
        "no token kept by a failed connect"
    );
}

#[test]
fn a_send_beyond_the_buffer_is_given_back() {
    let mut client = engine(1);
    let id = client.connect(T0).unwrap();
    let capacity = client.send_capacity(id);
    assert!(
        capacity > 0,
        "data may be queued before the handshake completes"
    );
    let too_big = Bytes::from(vec![7u8; capacity + 1]);
    assert_eq!(client.send(id, too_big.clone()), Err(too_big));
    client.send(id, Bytes::from(vec![7u8; capacity])).unwrap();
    assert_eq!(client.send_capacity(id), 0);
    assert_eq!(
        client.connection_info(id).unwrap().counters.bytes_sent,
        capacity as u64
    );
}

#[test]
fn the_configuration_is_checked() {
    let new = |edit: fn(&mut mpterm_engine::client::ClientConfig)| {
        let mut config = client_config(true, true, 4);
        edit(&mut config);
        ClientEngine::<Bytes, _>::new(config, ChaCha8Rng::seed_from_u64(3)).err()
    };
    assert_eq!(
        new(|c| c.max_connections = 0),
        Some(ConfigError::ConnectionLimit(0))
    );
    assert!(matches!(
        new(|c| c.local_ports = 0..=10),
        Some(ConfigError::PortRange { .. })
    ));
    assert_eq!(new(|c| c.interface.mtu = 100), Some(ConfigError::Mtu(100)));
    assert_eq!(
        new(|c| c.server.set_ip(CLIENT_IP)),
        Some(ConfigError::ServerIsOwnAddress)
    );
    assert_eq!(
        new(|c| c.server.set_ip(Ipv4Addr::new(10, 0, 0, 1))),
        Some(ConfigError::NoRouteToServer)
    );
    assert_eq!(
        new(|c| {
            c.server.set_ip(Ipv4Addr::new(10, 0, 0, 1));
            c.interface.gateway = Some(Ipv4Addr::new(10, 0, 0, 254));
        }),
        Some(ConfigError::GatewayOffLink)
    );
    assert_eq!(
        new(|c| {
            c.server.set_ip(Ipv4Addr::new(10, 0, 0, 1));
            c.interface.gateway = Some(Ipv4Addr::new(198, 18, 0, 254));
        }),
        None
    );
}

fn arp_request(target: Ipv4Addr) -> Bytes {
    let mut frame = vec![0u8; 60];
    let len = EthernetRepr {
        src: EthernetAddress(SERVER_CLIENT_SIDE_MAC),
        dst: EthernetAddress::BROADCAST,
        ethertype: ethernet::ETHERTYPE_ARP,
    }
    .emit(&mut frame)
    .unwrap();
    ArpRepr {
        operation: ArpOperation::Request,
        sender_mac: EthernetAddress(SERVER_CLIENT_SIDE_MAC),
        sender_ip: SERVER_IP,
        target_mac: EthernetAddress([0; 6]),
        target_ip: target,
    }
    .emit(&mut frame[len..])
    .unwrap();
    Bytes::from(frame)
}

#[test]
fn arp_for_our_address_is_answered_and_the_server_is_resolved() {
    let mut client = engine(1);
    client.handle_frame(T0, 0, arp_request(Ipv4Addr::new(198, 18, 0, 99)));
    assert!(client.poll_transmit(T0).is_none(), "not our address");
    client.handle_frame(T0, 0, arp_request(CLIENT_IP));
    let reply = client.poll_transmit(T0).expect("an ARP reply");
    let frame = frame_bytes(&reply);
    let ethernet_frame = EthernetFrame::new_checked(&frame[..]).unwrap();
    assert_eq!(
        ethernet_frame.dst_addr(),
        EthernetAddress(SERVER_CLIENT_SIDE_MAC)
    );
    let arp =
        ArpRepr::parse(&ArpPacket::new_checked(&frame[ethernet::HEADER_LEN..]).unwrap()).unwrap();
    assert_eq!(arp.operation, ArpOperation::Reply);
    assert_eq!(arp.sender_ip, CLIENT_IP);
    assert_eq!(arp.sender_mac, EthernetAddress(CLIENT_MAC));
    assert_eq!(client.counters().arp_requests_answered, 1);

    // The request taught us the server's MAC: a SYN leaves without asking.
    client.connect(T0).unwrap();
    let syn = frame_bytes(&client.poll_transmit(T0).expect("the SYN"));
    let (repr, _) = tcp_of(&syn).expect("a TCP segment, not an ARP request");
    assert_eq!(repr.dst_port, LISTEN.port());
    assert_eq!(&syn[..6], &SERVER_CLIENT_SIDE_MAC);
}

#[test]
fn without_the_servers_mac_the_syn_waits_for_arp() {
    let mut client = engine(1);
    client.connect(T0).unwrap();
    let request = frame_bytes(&client.poll_transmit(T0).expect("an ARP request"));
    let arp =
        ArpRepr::parse(&ArpPacket::new_checked(&request[ethernet::HEADER_LEN..]).unwrap()).unwrap();
    assert_eq!(arp.operation, ArpOperation::Request);
    assert_eq!(arp.target_ip, SERVER_IP);
    assert!(client.poll_transmit(T0).is_none(), "the SYN waits");
    let mut reply = vec![0u8; 60];
    let len = EthernetRepr {
        src: EthernetAddress(SERVER_CLIENT_SIDE_MAC),
        dst: EthernetAddress(CLIENT_MAC),
        ethertype: ethernet::ETHERTYPE_ARP,
    }
    .emit(&mut reply)
    .unwrap();
    ArpRepr {
        operation: ArpOperation::Reply,
        sender_mac: EthernetAddress(SERVER_CLIENT_SIDE_MAC),
        sender_ip: SERVER_IP,
        target_mac: EthernetAddress(CLIENT_MAC),
        target_ip: CLIENT_IP,
    }
    .emit(&mut reply[len..])
    .unwrap();
    client.handle_frame(T0, 0, Bytes::from(reply));
    let syn = frame_bytes(&client.poll_transmit(T0).expect("the SYN, released"));
    assert!(tcp_of(&syn).is_some());
    assert_eq!(client.counters().arp_replies_received, 1);
}

#[test]
fn bad_frames_are_counted_never_a_panic() {
    let mut client = engine(1);
    // Truncated Ethernet, and an Ethernet header with a broken IPv4 packet behind it.
    client.handle_frame(T0, 0, Bytes::from_static(&[1, 2, 3]));
    let mut frame = arp_request(CLIENT_IP).to_vec();
    frame[12..14].copy_from_slice(&ethernet::ETHERTYPE_IPV4.to_be_bytes());
    frame[..6].copy_from_slice(&CLIENT_MAC);
    client.handle_frame(T0, 0, Bytes::from(frame.clone()));
    // Every truncation of a real segment.
    let mut lab = Lab::new(
        52,
        client_config(true, true, 1),
        server_config(true),
        BackendBehaviour::Bulk { download: 4000 },
    );
    let captured = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let keep = captured.clone();
    lab.to_client = Some(Box::new(move |frame| {
        keep.borrow_mut().push(frame.clone());
        true
    }));
    lab.open(pattern(4000, 52), ClosePolicy::AfterSending);
    lab.run_until(|lab| lab.all_ended());
    lab.check_data();
    for frame in captured.borrow().iter() {
        for len in 0..frame.len() {
            client.handle_frame(T0, 0, Bytes::copy_from_slice(&frame[..len]));
        }
        // A flipped bit anywhere.
        for bit in (0..frame.len() * 8).step_by(7) {
            let mut bad = frame.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            client.handle_frame(T0, 0, Bytes::from(bad));
        }
    }
    while client.poll_transmit(T0).is_some() {}
    let counters = *client.counters();
    assert!(counters.rx_dropped_malformed > 0);
    assert!(counters.rx_dropped_not_for_us > 0);
    client.handle_frame(T0, 7, Bytes::from(frame));
    assert_eq!(
        client.counters().rx_dropped_not_for_us,
        counters.rx_dropped_not_for_us + 1,
        "a frame on an interface the client does not have"
    );
}

/// A server beyond the prefix is reached through the gateway: its MAC is the one asked for.
#[test]
fn an_off_link_server_is_reached_through_the_gateway() {
    let mut config = client_config(true, true, 1);
    let gateway = Ipv4Addr::new(198, 18, 0, 254);
    config.server.set_ip(Ipv4Addr::new(10, 1, 2, 3));
    config.interface.gateway = Some(gateway);
    let mut client: ClientEngine<Bytes, _> =
        ClientEngine::new(config, ChaCha8Rng::seed_from_u64(4)).unwrap();
    client.connect(T0).unwrap();
    let request = frame_bytes(&client.poll_transmit(T0).expect("an ARP request"));
    let arp =
        ArpRepr::parse(&ArpPacket::new_checked(&request[ethernet::HEADER_LEN..]).unwrap()).unwrap();
    assert_eq!(arp.target_ip, gateway);
}
