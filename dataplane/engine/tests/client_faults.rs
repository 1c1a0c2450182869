//! The client engine against the server engine when the network or the peer misbehaves: a
//! byte changed in flight, a middlebox that strips MP_CAPABLE from the SYN-ACK, the loss of
//! each handshake segment, and connections the server ends (MP_FASTCLOSE, MP_TCPRST) or the
//! client aborts.

mod client_support;

use std::cell::RefCell;
use std::rc::Rc;

use client_support::*;
use mpterm_engine::client::{ClientEvent, ClosedReason, PeerReset};
use mpterm_engine::mptcp::MptcpError;
use mpterm_wire::mptcp::{MpTcpRst, MptcpOption};
use mpterm_wire::tcp::{TcpFlags, TcpRepr};

fn lab(seed: u64, behaviour: BackendBehaviour) -> Lab {
    Lab::new(
        seed,
        client_config(true, true, 8),
        server_config(true),
        behaviour,
    )
}

fn has_mptcp(repr: &TcpRepr<'_>) -> bool {
    repr.options.mptcp.iter().flatten().next().is_some()
}

fn has_capable(repr: &TcpRepr<'_>) -> bool {
    repr.options
        .mptcp
        .iter()
        .flatten()
        .any(|option| matches!(option, MptcpOption::MpCapable(_)))
}

/// One connection, `size` bytes each way, the client closing after sending; runs to the end
/// and checks every byte and that MPTCP held throughout.
fn run_intact_mptcp(mut lab: Lab, size: usize) -> Lab {
    lab.open(pattern(size, 77), ClosePolicy::AfterSending);
    lab.run_until(|lab| lab.all_ended() && lab.backend.done.len() == 1);
    lab.check_data();
    let app = lab.apps.values().next().unwrap();
    assert_eq!(app.established, Some(true), "{}", lab.context());
    assert!(!app.fell_back);
    assert!(
        matches!(
            app.ended,
            Some(ClientEvent::Closed {
                reason: ClosedReason::Graceful,
                ..
            })
        ),
        "{:?}",
        app.ended
    );
    for (what, value) in [
        ("client fallbacks", lab.client.counters().mptcp_fallbacks),
        ("server fallbacks", lab.server.counters().mptcp_fallbacks),
        (
            "client checksum failures",
            lab.client.counters().dss_checksum_failures,
        ),
        (
            "server checksum failures",
            lab.server.counters().dss_checksum_failures,
        ),
        ("client resets", lab.client.counters().tcp_resets_by_peer),
    ] {
        assert_eq!(value, 0, "{what}: {}", lab.context());
    }
    assert_eq!(lab.server.counters().mptcp_connections, 1);
    assert_eq!(lab.server.connection_count(), 0);
    assert_eq!(lab.client.connection_count(), 0);
    lab
}

#[test]
fn a_lost_syn_ack_is_answered_again() {
    let mut lab = lab(
        11,
        BackendBehaviour::Bulk {
            download: 256 * KIB,
        },
    );
    lab.to_client = Some(drop_first(|repr, _| repr.flags.contains(TcpFlags::SYN)));
    let lab = run_intact_mptcp(lab, 256 * KIB);
    assert_eq!(lab.dropped_to_client, 1);
    assert!(lab.client.counters().retransmissions >= 1, "the SYN again");
}

#[test]
fn a_lost_third_ack_is_made_up_for_by_the_first_data() {
    let mut lab = lab(
        12,
        BackendBehaviour::Bulk {
            download: 256 * KIB,
        },
    );
    lab.to_server = Some(drop_first(|repr, len| {
        !repr.flags.contains(TcpFlags::SYN) && len == 0 && has_capable(repr)
    }));
    let lab = run_intact_mptcp(lab, 256 * KIB);
    assert_eq!(lab.dropped_to_server, 1);
}

/// The server never hears the third ACK and the client has nothing to send: the server's
/// SYN-ACK comes again, the client's answer carries the keys again.
#[test]
fn a_lost_third_ack_without_client_data() {
    let mut lab = lab(
        13,
        BackendBehaviour::Bulk {
            download: 256 * KIB,
        },
    );
    lab.to_server = Some(drop_first(|repr, len| {
        !repr.flags.contains(TcpFlags::SYN) && len == 0 && has_capable(repr)
    }));
    lab.open(bytes::Bytes::new(), ClosePolicy::AfterPeerFinished);
    lab.run_until(|lab| lab.all_ended() && lab.backend.done.len() == 1);
    lab.check_data();
    assert_eq!(lab.dropped_to_server, 1);
    assert_eq!(lab.server.counters().mptcp_fallbacks, 0);
    assert_eq!(lab.client.counters().mptcp_fallbacks, 0);
    let app = lab.apps.values().next().unwrap();
    assert_eq!(app.received.len(), 256 * KIB);
}

#[test]
fn a_lost_first_data_segment_is_sent_again() {
    let mut lab = lab(
        14,
        BackendBehaviour::Bulk {
            download: 256 * KIB,
        },
    );
    lab.to_server = Some(drop_first(|_, len| len > 0));
    let lab = run_intact_mptcp(lab, 256 * KIB);
    assert_eq!(lab.dropped_to_server, 1);
    assert!(lab.client.counters().retransmissions >= 1);
}

/// Both the third ACK and the first data are lost: the server has no key when the second data
/// segment arrives and withholds it until the first comes again with MP_CAPABLE.
#[test]
fn lost_third_ack_and_first_data_keep_mptcp() {
    let mut lab = lab(15, BackendBehaviour::Bulk { download: 64 * KIB });
    let mut third_ack = drop_first(|repr, len| {
        !repr.flags.contains(TcpFlags::SYN) && len == 0 && has_capable(repr)
    });
    let mut first_data = drop_first(|_, len| len > 0);
    lab.to_server = Some(Box::new(move |frame| third_ack(frame) && first_data(frame)));
    let lab = run_intact_mptcp(lab, 256 * KIB);
    assert_eq!(lab.dropped_to_server, 2);
    assert!(lab.server.counters().mptcp_withheld_before_key > 0);
}

#[test]
fn a_lost_first_server_data_segment_is_sent_again() {
    let mut lab = lab(
        16,
        BackendBehaviour::Bulk {
            download: 256 * KIB,
        },
    );
    lab.to_client = Some(drop_first(|_, len| len > 0));
    let lab = run_intact_mptcp(lab, 256 * KIB);
    assert_eq!(lab.dropped_to_client, 1);
    assert!(lab.server.counters().retransmissions >= 1);
}

/// RFC 8684 section 3.1: a SYN-ACK without MP_CAPABLE (a middlebox stripped it) leaves plain
/// TCP, which must still carry every byte; the server falls back when the third ACK comes
/// without MPTCP options.
#[test]
fn a_syn_ack_without_mp_capable_gives_plain_tcp() {
    let mut lab = lab(
        17,
        BackendBehaviour::Bulk {
            download: 512 * KIB,
        },
    );
    lab.to_client = Some(Box::new(|frame| {
        let is_syn = tcp_of(frame).is_some_and(|(repr, _)| repr.flags.contains(TcpFlags::SYN));
        if is_syn {
            *frame = rewrite_tcp(frame, |repr| repr.options.mptcp = [None, None]);
        }
        true
    }));
    let options_after_syn = Rc::new(RefCell::new(0u64));
    let seen = options_after_syn.clone();
    lab.to_server = Some(Box::new(move |frame| {
        if let Some((repr, _)) = tcp_of(frame) {
            if !repr.flags.contains(TcpFlags::SYN) && has_mptcp(&repr) {
                *seen.borrow_mut() += 1;
            }
        }
        true
    }));
    lab.open(pattern(512 * KIB, 17), ClosePolicy::AfterSending);
    lab.run_until(|lab| lab.all_ended() && lab.backend.done.len() == 1);
    lab.check_data();
    let app = lab.apps.values().next().unwrap();
    assert_eq!(app.established, Some(false));
    assert!(app.fell_back, "FellBack reported");
    assert!(matches!(
        app.ended,
        Some(ClientEvent::Closed {
            reason: ClosedReason::Graceful,
            ..
        })
    ));
    assert_eq!(lab.client.counters().mptcp_fallbacks, 1);
    assert_eq!(lab.client.counters().mptcp_connections, 0);
    assert_eq!(lab.server.counters().mptcp_fallbacks, 1);
    assert_eq!(*options_after_syn.borrow(), 0, "plain TCP after the SYN");
    assert_eq!(lab.client.tokens_in_use(), 0);
}

/// A middlebox changes one byte of the server's data and fixes the TCP checksum: only the DSS
/// checksum catches it. The client counts it, delivers nothing of the bad mapping and resets
/// the connection, saying why in MP_TCPRST (RFC 8684 sections 3.3.1 and 3.6).
#[test]
fn a_corrupted_server_byte_is_caught_by_the_dss_checksum() {
    let mut lab = lab(
        18,
        BackendBehaviour::Bulk {
            download: 256 * KIB,
        },
    );
    let mut corrupted = false;
    lab.to_client = Some(Box::new(move |frame| {
        if !corrupted && payload_len(frame) > 1000 {
            corrupted = true;
            corrupt_payload(frame, 500);
        }
        true
    }));
    let resets = Rc::new(RefCell::new(Vec::new()));
    let seen = resets.clone();
    lab.to_server = Some(Box::new(move |frame| {
        if let Some((repr, _)) = tcp_of(frame) {
            if repr.flags.contains(TcpFlags::RST) {
                for option in repr.options.mptcp.iter().flatten() {
                    if let MptcpOption::MpTcpRst(reset) = option {
                        seen.borrow_mut().push(*reset);
                    }
                }
            }
        }
        true
    }));
    lab.open(pattern(64 * KIB, 18), ClosePolicy::AfterPeerFinished);
    lab.run_until(|lab| lab.all_ended());
    assert_eq!(lab.client.counters().dss_checksum_failures, 1);
    assert_eq!(lab.server.counters().dss_checksum_failures, 0);
    let app = lab.apps.values().next().unwrap();
    assert!(
        matches!(
            app.ended,
            Some(ClientEvent::Closed {
                reason: ClosedReason::Mptcp(MptcpError::ChecksumFailed),
                ..
            })
        ),
        "{:?}",
        app.ended
    );
    let sent = &lab.backend.done[0].sent;
    assert!(
        app.received.len() < sent.len() && sent.starts_with(&app.received),
        "only data before the bad mapping reached the application ({} bytes)",
        app.received.len()
    );
    assert_eq!(
        *resets.borrow(),
        [MpTcpRst {
            flags: 0,
            reason: 0x06
        }],
        "middlebox interference"
    );
    assert_eq!(lab.server.connection_count(), 0, "{}", lab.context());
    assert_eq!(lab.client.connection_count(), 0);
    assert_eq!(lab.client.tokens_in_use(), 0);
}

/// The server's own DSS check fails on the client's data twice: the first failure on the
/// only subflow is answered with MP_FAIL and the bytes taken back (RFC 8684 section 3.7;
/// this client does not fall back), the second, while that MP_FAIL is pending, resets the
/// connection. The client is told by MP_FASTCLOSE (section 3.5; a Linux client would ignore
/// a RST on its only subflow for its 60 s close timeout), which it reports.
#[test]
fn the_servers_reset_after_a_second_failure_reaches_the_application() {
    let mut lab = lab(19, BackendBehaviour::Bulk { download: 64 * KIB });
    let mut corrupted = 0;
    lab.to_server = Some(Box::new(move |frame| {
        if corrupted < 2 && payload_len(frame) > 1000 {
            corrupted += 1;
            corrupt_payload(frame, 7);
        }
        true
    }));
    lab.open(pattern(256 * KIB, 19), ClosePolicy::AfterSending);
    lab.run_until(|lab| lab.all_ended());
    assert_eq!(lab.server.counters().mptcp_mp_fail_sent, 1);
    assert_eq!(lab.server.counters().mptcp_fail_resets, 1);
    assert_eq!(lab.server.counters().dss_checksum_failures, 2);
    let app = lab.apps.values().next().unwrap();
    match app.ended {
        Some(ClientEvent::Reset { reset, .. }) => assert_eq!(
            reset,
            PeerReset {
                fast_close: true,
                reason: None
            }
        ),
        ref other => panic!("{other:?}"),
    }
    assert_eq!(lab.server.counters().mptcp_fastcloses_sent, 1);
    assert_eq!(lab.client.counters().mptcp_fastcloses_received, 1);
    assert_eq!(lab.client.connection_count(), 0);
}

/// The backend resets; the server ends the client's connection with MP_FASTCLOSE (RFC 8684
/// section 3.5), which the client answers with a RST and reports.
#[test]
fn a_fast_close_from_the_server_ends_the_connection() {
    let mut lab = lab(
        20,
        BackendBehaviour::ResetAfter {
            download: 1024 * KIB,
            after: 32 * KIB,
        },
    );
    lab.open(pattern(1024 * KIB, 20), ClosePolicy::AfterSending);
    lab.run_until(|lab| lab.all_ended());
    let app = lab.apps.values().next().unwrap();
    assert!(
        matches!(
            app.ended,
            Some(ClientEvent::Reset {
                reset: PeerReset {
                    fast_close: true,
                    ..
                },
                ..
            })
        ),
        "{:?}",
        app.ended
    );
    assert_eq!(lab.client.counters().mptcp_fastcloses_received, 1);
    assert_eq!(lab.server.counters().mptcp_fastcloses_sent, 1);
    assert_eq!(lab.server.connection_count(), 0, "{}", lab.context());
    assert_eq!(lab.client.connection_count(), 0);
}

/// The application aborts: our RST carries MP_FASTCLOSE with the server's key, which the
/// server acts on at once.
#[test]
fn an_abort_fast_closes_the_server_side() {
    let mut lab = lab(
        21,
        BackendBehaviour::Bulk {
            download: 1024 * KIB,
        },
    );
    let id = lab.open(pattern(1024 * KIB, 21), ClosePolicy::AfterPeerFinished);
    lab.run_until(|lab| lab.apps[&id].received.len() >= 64 * KIB);
    lab.client.abort(id).expect("a live connection");
    lab.run_until(|lab| lab.all_ended());
    assert!(matches!(
        lab.apps[&id].ended,
        Some(ClientEvent::Closed {
            reason: ClosedReason::Aborted,
            ..
        })
    ));
    assert_eq!(lab.server.counters().mptcp_fastcloses_received, 1);
    assert_eq!(lab.server.connection_count(), 0);
    assert_eq!(lab.client.connection_count(), 0);
}

/// Bytes flipped anywhere in the server's segments (header, options, payload) with the TCP
/// checksum fixed, so that they reach the option parser and the data level: the client counts,
/// resets or goes on, and never panics; whatever reached the application is an exact prefix of
/// what the backend sent; every connection ends and gives its slot back.
#[test]
fn random_corruption_past_the_tcp_checksum_never_panics_the_client() {
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    let (mut caught, mut graceful, mut abortive) = (0, 0, 0);
    for seed in 0..32u64 {
        let mut lab = Lab::new(
            100 + seed,
            client_config(true, true, 8),
            server_config(true),
            BackendBehaviour::Bulk { download: 64 * KIB },
        );
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        // One frame in 8, 16, 32 or 64; half of the flips in the header and its options.
        let rate = 8 << (seed % 4);
        lab.to_client = Some(Box::new(move |frame| {
            if tcp_of(frame).is_some() && rng.next_u32() % rate == 0 {
                let offset = match rng.next_u32() % 2 {
                    0 => rng.next_u32() as usize % 60,
                    _ => rng.next_u32() as usize,
                };
                corrupt_segment(frame, offset, rng.next_u32() as u8);
            }
            true
        }));
        for index in 0..4 {
            lab.open(pattern(64 * KIB, index), ClosePolicy::AfterSending);
        }
        lab.run_until(|lab| lab.apps.values().all(|app| app.ended.is_some()));
        assert_eq!(lab.client.connection_count(), 0, "{}", lab.context());
        assert_eq!(lab.client.tokens_in_use(), 0);
        let counters = lab.client.counters();
        caught += counters.rx_dropped_malformed
            + counters.dss_checksum_failures
            + counters.dss_mapping_mismatches;
        for app in lab.apps.values() {
            match app.ended {
                Some(ClientEvent::Closed {
                    reason: ClosedReason::Graceful,
                    ..
                }) => graceful += 1,
                _ => abortive += 1,
            }
            assert!(
                lab.backend_sent_prefix(&app.received),
                "{:?} received {} bytes that the backend never sent",
                app.id,
                app.received.len()
            );
        }
    }
    eprintln!("{caught} caught; {graceful} graceful, {abortive} abortive ends");
    assert!(caught > 0 && graceful > 0 && abortive > 0);
}
