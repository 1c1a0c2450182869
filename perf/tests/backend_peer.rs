//! The backend peer against the engine's own TCP (`Tcb`, active open): uploads and downloads
//! arrive byte for byte, a changed byte is caught, losses are repaired, and the peer answers
//! ARP, RSTs and a full table as TCP says.

mod common;

use common::{
    client_tuning, parse_peer_frame, peer_config, segment_frame, Dir, Harness, Verdict, CLIENT_IP,
    CLIENT_MAC, PEER, PEER_MAC, SEED,
};
use mpterm_engine::tcp::{CloseReason, TcpState};
use mpterm_perf::backend_peer::BackendPeer;
use mpterm_perf::pattern::Pattern;
use mpterm_wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use mpterm_wire::ethernet::{
    EthernetAddress, EthernetFrame, EthernetRepr, ETHERTYPE_ARP, ETHERTYPE_IPV4,
};
use mpterm_wire::tcp::{TcpFlags, TcpOptions, TcpRepr};
use mpterm_wire::SeqNumber;

const MIB: u64 = 1 << 20;
const ROUNDS: usize = 200_000;

/// The relative payload offset and length of a data segment the peer sent, if it is one.
fn data_of(frame: &[u8]) -> Option<(SeqNumber, usize)> {
    let (_, repr, payload) = parse_peer_frame(frame);
    (!payload.is_empty()).then_some((repr.seq, payload.len()))
}

#[test]
fn an_upload_is_verified_byte_for_byte_and_closed_in_order() {
    let mut lab = Harness::new(peer_config());
    lab.connect(77, MIB, 0);
    assert!(lab.run(ROUNDS));
    let counters = lab.peer.counters();
    assert_eq!(counters.bytes_received, MIB);
    assert_eq!(counters.bytes_verified, MIB);
    assert_eq!(counters.mismatches, 0);
    assert_eq!(counters.connections_accepted, 1);
    assert_eq!(counters.connections_closed, 1);
    assert_eq!(counters.segments_retransmitted, 0);
    assert_eq!(lab.peer.open_connections(), 0, "the slot is free");
    assert_eq!(lab.clients[0].tcb.state(), TcpState::TimeWait);
    // One ACK per burst: far fewer ACKs than the ~720 data segments.
    assert!(
        lab.frames_to_client < lab.frames_to_peer,
        "{} frames to the client for {} to the peer",
        lab.frames_to_client,
        lab.frames_to_peer
    );
}

#[test]
fn a_download_arrives_byte_for_byte() {
    let mut config = peer_config();
    config.download_bytes = MIB;
    let mut lab = Harness::new(config);
    lab.connect(0, 0, MIB);
    assert!(lab.run(ROUNDS));
    let client = &lab.clients[0];
    assert!(client.download_is_exact(&lab.pattern));
    assert_eq!(
        client.download_stream(&lab.pattern),
        Some(0),
        "the first connection"
    );
    let counters = lab.peer.counters();
    assert_eq!(counters.bytes_sent, MIB);
    assert_eq!(counters.downloads_completed, 1);
    assert_eq!(counters.bytes_retransmitted, 0);
    assert_eq!(counters.connections_closed, 1);
    assert_eq!(lab.peer.open_connections(), 0);
    assert_eq!(client.tcb.state(), TcpState::TimeWait);
}

#[test]
fn many_connections_move_both_ways_at_once_each_on_a_stream_of_its_own() {
    let mut config = peer_config();
    config.download_bytes = 96 * 1024;
    let mut lab = Harness::new(config);
    let connections = 32;
    for i in 0..connections {
        lab.connect(1000 + i, 64 * 1024 + i * 100, 96 * 1024);
    }
    assert!(lab.run(ROUNDS));
    let mut streams = std::collections::BTreeSet::new();
    for client in &lab.clients {
        assert!(
            client.download_is_exact(&lab.pattern),
            "port {}",
            client.port()
        );
        streams.insert(client.download_stream(&lab.pattern).unwrap());
        assert_eq!(client.tcb.state(), TcpState::TimeWait);
    }
    assert_eq!(streams.len(), connections as usize, "{streams:?}");
    let uploaded: u64 = (0..connections).map(|i| 64 * 1024 + i * 100).sum();
    let counters = lab.peer.counters();
    assert_eq!(counters.bytes_verified, uploaded);
    assert_eq!(counters.mismatches, 0);
    assert_eq!(counters.bytes_sent, connections * 96 * 1024);
    assert_eq!(counters.connections_closed, connections);
    assert_eq!(lab.peer.open_connections(), 0);
}

#[test]
fn a_changed_byte_with_a_valid_checksum_is_a_mismatch() {
    let mut lab = Harness::new(peer_config());
    let client = lab.connect(5, MIB, 0);
    lab.clients[client].upload_corruption = Some((300_000, 0x20));
    assert!(lab.run(ROUNDS));
    let counters = lab.peer.counters();
    assert_eq!(counters.bytes_received, MIB, "everything was taken");
    assert_eq!(counters.mismatches, 1, "one segment differs");
    assert!(counters.bytes_verified < MIB && counters.bytes_verified > MIB - 9000);
}

#[test]
fn a_frame_with_a_bad_checksum_is_dropped_and_its_data_sent_again() {
    let mut lab = Harness::new(peer_config());
    lab.connect(6, 256 * 1024, 0);
    let mut data_frames = 0;
    lab.link = Box::new(move |dir, frame| {
        // The 20th data frame to the peer arrives with a payload byte changed.
        if dir == Dir::ToPeer && frame.len() > 1000 {
            data_frames += 1;
            if data_frames == 20 {
                let mut changed = frame.to_vec();
                changed[600] ^= 0x01;
                return Verdict::Replace(changed);
            }
        }
        Verdict::Pass
    });
    assert!(lab.run(ROUNDS));
    let counters = lab.peer.counters();
    assert_eq!(counters.dropped_bad_checksum, 1);
    assert_eq!(counters.bytes_verified, 256 * 1024);
    assert_eq!(counters.mismatches, 0);
    assert!(counters.out_of_order_dropped > 0, "the gap was seen");
}

#[test]
fn a_lost_download_segment_is_sent_again_after_three_duplicate_acks() {
    let mut config = peer_config();
    config.download_bytes = MIB;
    let mut lab = Harness::new(config);
    lab.connect(0, 0, MIB);
    let mut data_frames = 0;
    lab.link = Box::new(move |dir, frame| {
        if dir == Dir::ToClient && data_of(frame).is_some() {
            data_frames += 1;
            if data_frames == 30 {
                return Verdict::Drop;
            }
        }
        Verdict::Pass
    });
    assert!(lab.run(ROUNDS));
    assert!(lab.clients[0].download_is_exact(&lab.pattern));
    let counters = lab.peer.counters();
    assert_eq!(counters.fast_retransmits, 1);
    assert_eq!(counters.segments_retransmitted, 1);
    assert_eq!(
        counters.retransmission_timeouts, 0,
        "repaired without the timer"
    );
    assert_eq!(counters.bytes_sent, MIB);
}

#[test]
fn a_lost_syn_ack_and_a_lost_fin_are_sent_again_on_timeout() {
    let mut config = peer_config();
    config.download_bytes = 10_000;
    let mut lab = Harness::new(config);
    lab.connect(9, 10_000, 10_000);
    let (mut syn_acks, mut fins) = (0, 0);
    lab.link = Box::new(move |dir, frame| {
        if dir == Dir::ToClient {
            let (_, repr, _) = parse_peer_frame(frame);
            if repr.flags.contains(TcpFlags::SYN) {
                syn_acks += 1;
                if syn_acks == 1 {
                    return Verdict::Drop;
                }
            }
            if repr.flags.contains(TcpFlags::FIN) {
                fins += 1;
                if fins == 1 {
                    return Verdict::Drop;
                }
            }
        }
        Verdict::Pass
    });
    assert!(lab.run(ROUNDS));
    assert!(lab.clients[0].download_is_exact(&lab.pattern));
    assert_eq!(lab.clients[0].tcb.state(), TcpState::TimeWait);
    let counters = lab.peer.counters();
    assert_eq!(counters.retransmission_timeouts, 2);
    assert_eq!(counters.bytes_verified, 10_000);
    assert_eq!(counters.connections_closed, 1);
    assert_eq!(lab.peer.open_connections(), 0);
}

#[test]
fn a_lossy_link_both_ways_still_moves_every_byte() {
    let mut config = peer_config();
    config.download_bytes = 512 * 1024;
    let mut lab = Harness::new(config);
    for i in 0..4 {
        lab.connect(200 + i, 512 * 1024, 512 * 1024);
    }
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    lab.link = Box::new(move |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        if state % 50 == 0 {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    });
    assert!(lab.run(ROUNDS));
    for client in &lab.clients {
        assert!(client.download_is_exact(&lab.pattern));
        assert!(client.is_finished(), "{:?}", client.tcb.state());
    }
    let counters = lab.peer.counters();
    assert_eq!(counters.bytes_verified, 4 * 512 * 1024);
    assert_eq!(counters.mismatches, 0);
    assert_eq!(counters.bytes_sent, 4 * 512 * 1024);
    assert!(counters.segments_retransmitted > 0);
}

#[test]
fn the_source_stays_within_the_window_of_a_client_that_does_not_read() {
    let mut config = peer_config();
    config.download_bytes = MIB;
    let mut lab = Harness::new(config);
    let client = lab.connect(0, 0, MIB);
    lab.clients[client].reading = false;
    // The client's window closes: the peer stops, then probes on its timer.
    assert!(!lab.run(400), "the peer keeps probing a closed window");
    let window = u64::from(client_tuning().receive_buffer);
    let buffered = lab.clients[client].tcb.received_buffered() as u64;
    let counters = lab.peer.counters();
    assert!(buffered <= window, "{buffered} bytes held");
    assert!(
        counters.bytes_sent <= window + 1,
        "{} sent into a window of {window}",
        counters.bytes_sent
    );
    assert!(counters.bytes_sent >= window / 2);
    lab.clients[client].reading = true;
    assert!(lab.run(ROUNDS));
    assert!(lab.clients[client].download_is_exact(&lab.pattern));
    assert_eq!(lab.peer.counters().connections_closed, 1);
}

#[test]
fn arp_requests_for_the_peer_are_answered_and_others_are_not() {
    let mut peer = BackendPeer::new(peer_config());
    let mut out = vec![0u8; peer.max_frame_len()];
    let request = |target| {
        let mut frame = vec![0u8; 42];
        EthernetRepr {
            src: CLIENT_MAC,
            dst: EthernetAddress::BROADCAST,
            ethertype: ETHERTYPE_ARP,
        }
        .emit(&mut frame)
        .unwrap();
        ArpRepr {
            operation: ArpOperation::Request,
            sender_mac: CLIENT_MAC,
            sender_ip: CLIENT_IP,
            target_mac: EthernetAddress([0; 6]),
            target_ip: target,
        }
        .emit(&mut frame[14..])
        .unwrap();
        frame
    };
    peer.handle_frame(0, &request(core::net::Ipv4Addr::new(198, 19, 0, 9)));
    assert_eq!(peer.poll_frame(0, &mut out), None);
    assert_eq!(peer.counters().dropped_not_for_us, 1);
    peer.handle_frame(0, &request(*PEER.ip()));
    let len = peer.poll_frame(0, &mut out).expect("an ARP reply");
    assert_eq!(len, 60, "padded to the Ethernet minimum");
    let ethernet = EthernetFrame::new_checked(&out[..len]).unwrap();
    assert_eq!(ethernet.dst_addr(), CLIENT_MAC);
    assert_eq!(ethernet.src_addr(), PEER_MAC);
    let reply = ArpRepr::parse(&ArpPacket::new_checked(ethernet.payload()).unwrap()).unwrap();
    assert_eq!(reply.operation, ArpOperation::Reply);
    assert_eq!((reply.sender_mac, reply.sender_ip), (PEER_MAC, *PEER.ip()));
    assert_eq!((reply.target_mac, reply.target_ip), (CLIENT_MAC, CLIENT_IP));
    assert_eq!(peer.poll_frame(0, &mut out), None);
    assert_eq!(peer.counters().arp_replies, 1);
}

#[test]
fn a_reset_from_the_client_frees_the_slot() {
    let mut config = peer_config();
    config.download_bytes = 64 * MIB;
    let mut lab = Harness::new(config);
    let client = lab.connect(0, 0, 64 * MIB);
    assert!(!lab.run(20), "still moving");
    assert_eq!(lab.peer.open_connections(), 1);
    lab.clients[client].tcb.abort();
    lab.run(ROUNDS);
    assert_eq!(lab.peer.open_connections(), 0);
    assert_eq!(lab.peer.counters().connections_reset, 1);
}

#[test]
fn a_syn_beyond_the_table_is_refused_with_a_reset() {
    let mut config = peer_config();
    config.max_connections = 2;
    config.download_bytes = 1000;
    let mut lab = Harness::new(config);
    for i in 0..3 {
        lab.connect(i, 1000, 1000);
    }
    assert!(lab.run(ROUNDS));
    let refused = &lab.clients[2];
    assert_eq!(refused.tcb.state(), TcpState::Closed);
    assert_eq!(refused.tcb.close_reason(), Some(CloseReason::ResetByPeer));
    assert!(lab.clients[..2]
        .iter()
        .all(|c| c.download_is_exact(&lab.pattern)));
    let counters = lab.peer.counters();
    assert_eq!(counters.connections_refused, 1);
    assert_eq!(counters.connections_accepted, 2);
    assert_eq!(counters.resets_sent, 1);
}

/// A bare segment from the client address.
fn segment(src_port: u16, dst_port: u16, seq: u32, ack: u32, flags: TcpFlags) -> Vec<u8> {
    let repr = TcpRepr {
        src_port,
        dst_port,
        seq: SeqNumber(seq),
        ack: SeqNumber(ack),
        flags,
        window: 1000,
        options: TcpOptions::default(),
    };
    segment_frame(CLIENT_IP, &repr, &[])
}

#[test]
fn segments_for_no_connection_are_answered_with_a_reset() {
    let mut peer = BackendPeer::new(peer_config());
    let mut out = vec![0u8; peer.max_frame_len()];
    // An ACK for nothing: <SEQ=SEG.ACK><CTL=RST> (RFC 9293 3.10.7.1).
    peer.handle_frame(0, &segment(41_000, PEER.port(), 500, 12_345, TcpFlags::ACK));
    let len = peer.poll_frame(0, &mut out).unwrap();
    let (port, repr, _) = parse_peer_frame(&out[..len]);
    assert_eq!(port, 41_000);
    assert_eq!(repr.flags, TcpFlags::RST);
    assert_eq!(repr.seq, SeqNumber(12_345));
    // A SYN to a port nobody listens on: <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>.
    peer.handle_frame(0, &segment(41_001, 7, 900, 0, TcpFlags::SYN));
    let len = peer.poll_frame(0, &mut out).unwrap();
    let (_, repr, _) = parse_peer_frame(&out[..len]);
    assert_eq!(repr.flags, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!((repr.seq, repr.ack), (SeqNumber(0), SeqNumber(901)));
    // A RST is never answered.
    peer.handle_frame(0, &segment(41_002, PEER.port(), 1, 0, TcpFlags::RST));
    assert_eq!(peer.poll_frame(0, &mut out), None);
    let counters = peer.counters();
    assert_eq!(counters.resets_sent, 2);
    assert_eq!(counters.connections_refused, 1);
    assert_eq!(peer.open_connections(), 0);
}

#[test]
fn frames_that_are_not_for_the_peer_or_broken_are_counted() {
    let mut peer = BackendPeer::new(peer_config());
    let mut out = vec![0u8; peer.max_frame_len()];
    peer.handle_frame(0, &[0u8; 10]);
    let mut syn = segment(41_000, PEER.port(), 1, 0, TcpFlags::SYN);
    syn[14 + 8] = 1; // TTL changed, IPv4 header checksum now wrong.
    peer.handle_frame(0, &syn);
    let mut other_mac = segment(41_000, PEER.port(), 1, 0, TcpFlags::SYN);
    other_mac[0] = 0x04;
    peer.handle_frame(0, &other_mac);
    let mut truncated = segment(41_000, PEER.port(), 1, 0, TcpFlags::SYN);
    truncated.truncate(14 + 20 + 10);
    peer.handle_frame(0, &truncated);
    let mut ipv6 = segment(41_000, PEER.port(), 1, 0, TcpFlags::SYN);
    ipv6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    peer.handle_frame(0, &ipv6);
    assert_eq!(peer.poll_frame(0, &mut out), None);
    let counters = peer.counters();
    assert_eq!(counters.frames_received, 5);
    assert_eq!(counters.dropped_malformed, 2, "short frame, truncated IPv4");
    assert_eq!(counters.dropped_bad_checksum, 1);
    assert_eq!(counters.dropped_not_for_us, 2, "another MAC, IPv6");
    assert_eq!(counters.connections_accepted, 0);
    assert_eq!(peer.poll_frame(0, &mut [0u8; 100]), None);
    assert_eq!(peer.counters().buffer_too_small, 1);
    let _ = ETHERTYPE_IPV4;
}

#[test]
fn uploads_that_are_no_stream_or_too_short_to_tell_are_mismatches() {
    let pattern = Pattern::new(SEED);
    // Garbage from the first byte on.
    let mut lab = Harness::new(peer_config());
    let client = lab.connect(3, 20_000, 0);
    lab.clients[client].upload_corruption = Some((2, 0xff));
    assert!(lab.run(ROUNDS));
    assert_eq!(lab.peer.counters().mismatches, 1, "counted once per stream");
    assert_eq!(lab.peer.counters().bytes_verified, 0);
    // Five bytes and a FIN: no stream can be told from them.
    let mut lab = Harness::new(peer_config());
    lab.connect(3, 5, 0);
    assert!(lab.run(ROUNDS));
    let counters = lab.peer.counters();
    assert_eq!(counters.bytes_received, 5);
    assert_eq!(counters.mismatches, 1);
    assert_eq!(counters.connections_closed, 1);
    let _ = pattern;
}
