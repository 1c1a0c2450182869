//! The client engine against the server engine in memory: bulk transfers both ways, byte-exact,
//! over MPTCP with and without DSS checksums, on 1 and 64 connections, and over plain TCP;
//! and the handshake's options as they appear on the wire (RFC 8684 section 3.1).

mod client_support;

use std::cell::RefCell;
use std::rc::Rc;

use client_support::*;
use mpterm_engine::client::{ClientEvent, ClosedReason};
use mpterm_wire::mptcp::{DataSeqWire, Dss, MpCapable, MptcpOption};
use mpterm_wire::tcp::TcpFlags;

/// What the DSS mappings on the wire looked like, one direction.
#[derive(Debug, Default, Clone, Copy)]
struct MappingsSeen {
    with_checksum: u64,
    without_checksum: u64,
}

fn watch_mappings(seen: Rc<RefCell<MappingsSeen>>) -> FrameFilter {
    Box::new(move |frame| {
        if let Some((repr, payload)) = tcp_of(frame) {
            for option in repr.options.mptcp.iter().flatten() {
                if let MptcpOption::Dss(Dss {
                    mapping: Some(mapping),
                    ..
                }) = option
                {
                    if payload.is_empty() {
                        continue;
                    }
                    let mut seen = seen.borrow_mut();
                    match mapping.checksum {
                        Some(_) => seen.with_checksum += 1,
                        None => seen.without_checksum += 1,
                    }
                }
            }
        }
        true
    })
}

struct Run {
    lab: Lab,
    up: Rc<RefCell<MappingsSeen>>,
    down: Rc<RefCell<MappingsSeen>>,
}

/// `connections` connections at once, each sending `upload` bytes and receiving `download`.
fn run_bulk(
    seed: u64,
    mptcp: bool,
    (client_checksums, server_checksums): (bool, bool),
    connections: usize,
    upload: usize,
    download: usize,
) -> Run {
    let mut lab = Lab::new(
        seed,
        client_config(mptcp, client_checksums, 128),
        server_config(server_checksums),
        BackendBehaviour::Bulk { download },
    );
    let up = Rc::new(RefCell::new(MappingsSeen::default()));
    let down = Rc::new(RefCell::new(MappingsSeen::default()));
    lab.to_server = Some(watch_mappings(up.clone()));
    lab.to_client = Some(watch_mappings(down.clone()));
    for index in 0..connections {
        lab.open(
            pattern(upload, seed * 1000 + index as u64),
            ClosePolicy::AfterSending,
        );
    }
    lab.run_until(|lab| lab.all_ended() && lab.backend.done.len() == connections);
    lab.check_data();
    for app in lab.apps.values() {
        match app.ended {
            Some(ClientEvent::Closed {
                reason: ClosedReason::Graceful,
                counters,
                ..
            }) => {
                assert_eq!(counters.bytes_sent, upload as u64);
                assert_eq!(counters.bytes_acked, upload as u64);
                assert_eq!(counters.bytes_received, download as u64);
            }
            ref other => panic!("{:?} ended with {other:?}: {}", app.id, lab.context()),
        }
        assert!(app.peer_finished, "the server's stream ended: {:?}", app.id);
    }
    let client = lab.client.counters();
    let server = lab.server.counters();
    assert_eq!(client.connections_opened, connections as u64);
    assert_eq!(client.connections_established, connections as u64);
    assert_eq!(client.connections_closed, connections as u64);
    assert_eq!(server.connections_accepted, connections as u64);
    for (what, value) in [
        ("client malformed", client.rx_dropped_malformed),
        ("client checksum failures", client.dss_checksum_failures),
        ("client mapping mismatches", client.dss_mapping_mismatches),
        ("client fallbacks", client.mptcp_fallbacks),
        ("client resets", client.tcp_resets_by_peer),
        ("server malformed", server.rx_dropped_malformed),
        ("server checksum failures", server.dss_checksum_failures),
        ("server mapping mismatches", server.dss_mapping_mismatches),
        ("server fallbacks", server.mptcp_fallbacks),
        ("server withheld", server.mptcp_withheld_before_key),
    ] {
        assert_eq!(value, 0, "{what}: {}", lab.context());
    }
    assert_eq!(lab.client.connection_count(), 0);
    assert_eq!(lab.client.tokens_in_use(), 0);
    assert_eq!(lab.server.connection_count(), 0);
    Run { lab, up, down }
}

fn assert_mptcp(run: &Run, connections: usize, checksums: bool) {
    let (client, server) = (run.lab.client.counters(), run.lab.server.counters());
    assert_eq!(client.mptcp_connections, connections as u64);
    assert_eq!(server.mptcp_connections, connections as u64);
    for app in run.lab.apps.values() {
        assert_eq!(app.established, Some(true), "{:?}", app.id);
        assert!(!app.fell_back);
    }
    for (direction, seen) in [("up", *run.up.borrow()), ("down", *run.down.borrow())] {
        let (used, unused) = if checksums {
            (seen.with_checksum, seen.without_checksum)
        } else {
            (seen.without_checksum, seen.with_checksum)
        };
        assert!(used > 0, "{direction}: data mappings {seen:?}");
        assert_eq!(unused, 0, "{direction}: checksums {checksums}: {seen:?}");
    }
}

#[test]
fn one_mptcp_connection_with_checksums_both_ways() {
    let run = run_bulk(1, true, (true, true), 1, 4096 * KIB, 4096 * KIB);
    assert_mptcp(&run, 1, true);
    assert_eq!(run.lab.client.counters().retransmissions, 0);
    assert_eq!(run.lab.server.counters().retransmissions, 0);
}

#[test]
fn one_mptcp_connection_without_checksums_both_ways() {
    let run = run_bulk(2, true, (false, false), 1, 4096 * KIB, 4096 * KIB);
    assert_mptcp(&run, 1, false);
}

#[test]
fn sixty_four_mptcp_connections_with_checksums_both_ways() {
    let run = run_bulk(3, true, (true, true), 64, 256 * KIB, 256 * KIB);
    assert_mptcp(&run, 64, true);
}

#[test]
fn sixty_four_mptcp_connections_without_checksums_both_ways() {
    let run = run_bulk(4, true, (false, false), 64, 256 * KIB, 256 * KIB);
    assert_mptcp(&run, 64, false);
}

#[test]
fn upload_only_and_download_only() {
    let run = run_bulk(5, true, (true, true), 1, 1024 * KIB, 0);
    assert_mptcp_counts(&run, 1);
    let run = run_bulk(6, true, (true, true), 1, 0, 1024 * KIB);
    assert_mptcp_counts(&run, 1);
}

fn assert_mptcp_counts(run: &Run, connections: u64) {
    assert_eq!(run.lab.client.counters().mptcp_connections, connections);
    assert_eq!(run.lab.server.counters().mptcp_connections, connections);
}

/// RFC 8684 section 3.1: checksums are used when either side sets A.
#[test]
fn checksums_asked_for_by_either_side_are_used() {
    for sides in [(true, false), (false, true)] {
        let run = run_bulk(7, true, sides, 2, 256 * KIB, 256 * KIB);
        assert_mptcp(&run, 2, true);
    }
}

#[test]
fn plain_tcp_client_through_the_server() {
    let run = run_bulk(8, false, (true, true), 4, 512 * KIB, 512 * KIB);
    assert_eq!(run.lab.client.counters().mptcp_connections, 0);
    assert_eq!(run.lab.server.counters().mptcp_connections, 0);
    let (up, down) = (*run.up.borrow(), *run.down.borrow());
    assert_eq!(up.with_checksum + up.without_checksum, 0, "no DSS: {up:?}");
    assert_eq!(down.with_checksum + down.without_checksum, 0);
    for app in run.lab.apps.values() {
        assert_eq!(app.established, Some(false));
    }
}

/// A segment of the client's: its flags, payload length and MPTCP options.
type SegmentSeen = (TcpFlags, usize, Vec<MptcpOption<'static>>);

/// The client's side of the handshake as Linux writes it: MP_CAPABLE v1 without a key and
/// with A and H in the SYN; both keys in the third ACK; both keys with the data-level length
/// and checksum on the first data; after the server's DATA_ACK, DSS mappings (64-bit, the
/// segment's length, a checksum) and a DATA_ACK on every segment.
#[test]
fn the_handshake_options_on_the_wire() {
    let mut lab = Lab::new(
        9,
        client_config(true, true, 4),
        server_config(true),
        BackendBehaviour::Bulk { download: 64 * KIB },
    );
    let segments: Rc<RefCell<Vec<SegmentSeen>>> = Rc::default();
    let log = segments.clone();
    lab.to_server = Some(Box::new(move |frame| {
        let (repr, payload) = tcp_of(frame).expect("the client sends TCP (ARP aside)");
        let options = repr
            .options
            .mptcp
            .iter()
            .flatten()
            .filter_map(|option| match option {
                MptcpOption::MpCapable(c) => Some(MptcpOption::MpCapable(*c)),
                MptcpOption::Dss(d) => Some(MptcpOption::Dss(*d)),
                _ => None,
            })
            .collect();
        log.borrow_mut().push((repr.flags, payload.len(), options));
        true
    }));
    // ARP goes first; the filter only sees what the server gets after it.
    lab.to_server = {
        let mut inner = lab.to_server.take().unwrap();
        Some(Box::new(move |frame| {
            tcp_of(frame).is_none() || inner(frame)
        }))
    };
    lab.open(pattern(64 * KIB, 9), ClosePolicy::AfterSending);
    lab.run_until(|lab| lab.all_ended() && lab.backend.done.len() == 1);
    lab.check_data();
    let segments = segments.borrow();
    let capable = |index: usize| match segments[index].2.as_slice() {
        [MptcpOption::MpCapable(capable)] => *capable,
        other => panic!("segment {index}: {other:?}"),
    };
    let syn = capable(0);
    assert_eq!(segments[0].0, TcpFlags::SYN);
    assert_eq!(
        syn,
        MpCapable {
            version: 1,
            checksum_required: true,
            extensibility: false,
            no_new_subflows_to_source: false,
            hmac_sha256: true,
            sender_key: None,
            receiver_key: None,
            data_level_length: None,
            checksum: None,
        }
    );
    let third = capable(1);
    assert_eq!(segments[1].1, 0, "the third ACK carries no data");
    assert!(third.sender_key.is_some() && third.receiver_key.is_some());
    assert_eq!(third.data_level_length, None);
    let first_data = capable(2);
    assert_eq!(first_data.sender_key, third.sender_key);
    assert_eq!(first_data.receiver_key, third.receiver_key);
    assert_eq!(
        first_data.data_level_length,
        Some(segments[2].1 as u16),
        "the first data maps exactly its segment"
    );
    assert!(first_data.checksum.is_some());
    let mut dss_data = 0;
    for (index, (flags, len, options)) in segments.iter().enumerate().skip(3) {
        let [MptcpOption::Dss(dss)] = options.as_slice() else {
            // Segments sent before the server's first DATA_ACK arrived may still be MP_CAPABLE
            // only at the first sequence number; there is none here.
            panic!("segment {index} ({flags:?}, {len} bytes): {options:?}");
        };
        assert!(dss.data_ack.is_some(), "a DATA_ACK on every segment");
        if *len > 0 {
            let mapping = dss.mapping.expect("a mapping on every data segment");
            assert!(matches!(mapping.data_seq, DataSeqWire::Bits64(_)));
            assert_eq!(usize::from(mapping.data_level_length), *len);
            assert!(mapping.checksum.is_some());
            dss_data += 1;
        }
        if flags.contains(TcpFlags::FIN) {
            assert!(dss.data_fin, "the DATA_FIN rides on the FIN");
        }
    }
    assert!(dss_data > 10, "{dss_data} DSS data segments");
}

/// A download only: the client's acknowledgements are all at its ISN + 1, so only the server's
/// DATA_ACK tells it to stop sending MP_CAPABLE (Linux's `check_fully_established`). After
/// that every segment carries a DSS whose DATA_ACK (64 bits, as the server's mappings are)
/// never goes back and finally covers every byte and the DATA_FIN (RFC 8684 section 3.3.2).
#[test]
fn the_data_ack_covers_every_byte_and_the_data_fin() {
    const DOWNLOAD: usize = 256 * KIB;
    let mut lab = Lab::new(
        10,
        client_config(true, true, 4),
        server_config(true),
        BackendBehaviour::Bulk { download: DOWNLOAD },
    );
    let server_key: Rc<RefCell<Option<u64>>> = Rc::default();
    let key = server_key.clone();
    lab.to_client = Some(Box::new(move |frame| {
        if let Some((repr, _)) = tcp_of(frame) {
            for option in repr.options.mptcp.iter().flatten() {
                if let MptcpOption::MpCapable(capable) = option {
                    *key.borrow_mut() = capable.sender_key;
                }
            }
        }
        true
    }));
    let acks: Rc<RefCell<Vec<Option<DataSeqWire>>>> = Rc::default();
    let capable_segments = Rc::new(RefCell::new(0));
    let (log, capable_count) = (acks.clone(), capable_segments.clone());
    lab.to_server = Some(Box::new(move |frame| {
        if let Some((repr, _)) = tcp_of(frame) {
            for option in repr.options.mptcp.iter().flatten() {
                match option {
                    MptcpOption::MpCapable(_) => *capable_count.borrow_mut() += 1,
                    MptcpOption::Dss(dss) => log.borrow_mut().push(dss.data_ack),
                    _ => {}
                }
            }
        }
        true
    }));
    lab.open(bytes::Bytes::new(), ClosePolicy::AfterPeerFinished);
    lab.run_until(|lab| lab.all_ended() && lab.backend.done.len() == 1);
    lab.check_data();
    assert_eq!(
        *capable_segments.borrow(),
        2,
        "the SYN and the third ACK only"
    );
    let idsn =
        mpterm_engine::mptcp_keys::derive_from_key(server_key.borrow().unwrap()).initial_data_seq;
    let acks = acks.borrow();
    assert!(acks.len() > 5, "{} DSS segments", acks.len());
    let mut previous = 0u64;
    for ack in acks.iter() {
        let Some(DataSeqWire::Bits64(ack)) = *ack else {
            panic!("a 64-bit DATA_ACK on every segment: {ack:?}");
        };
        let acked = ack.wrapping_sub(idsn.wrapping_add(1));
        assert!(acked >= previous && acked <= DOWNLOAD as u64 + 1, "{acked}");
        previous = acked;
    }
    assert_eq!(previous, DOWNLOAD as u64 + 1, "every byte and the DATA_FIN");
}
