//! One path that holds where the network is unkind: the whole engine between a Linux-like
//! MPTCP client and a TCP backend (the harness of `tests/engine_sim.rs`), with early loss,
//! failing and silent backends, blind and forged segments, and peers that vanish.
//!
//! Every test here pinned a defect: before its fix, the test failed. `SIM_SEED=<seed>` replays
//! one seed where a test runs several.

mod common;

use core::time::Duration;

use bytes::Bytes;
use common::engine_net::*;
use common::{pattern, LinkConfig};
use mpterm_engine::tcp::{CloseReason, TcpState};
use mpterm_engine::{EngineConfig, Keepalive, Liveness};
use mpterm_wire::checksum::dss_pseudo_header;
use mpterm_wire::mptcp::{DataSeqWire, Dss, DssMapping, MptcpOption};
use mpterm_wire::tcp::{TcpFlags, TcpOptions, TcpRepr};
use mpterm_wire::SeqNumber;

fn mptcp_net(seed: u64, up: Bytes, down: Bytes, port: u16, config: EngineConfig) -> Net {
    eprintln!("engine sim seed {seed} (replay with SIM_SEED={seed})");
    Net::with_config(
        seed,
        LinkConfig::clean(ONE_WAY_DELAY),
        up,
        down,
        port,
        Some(MptcpClient::new(None, client_iss(seed))),
        config,
    )
}

fn is_mp_capable(repr: &TcpRepr<'_>) -> bool {
    repr.options
        .mptcp
        .iter()
        .flatten()
        .any(|option| matches!(option, MptcpOption::MpCapable(_)))
}

fn mptcp(net: &Net) -> &MptcpClient {
    net.mptcp.as_ref().expect("an MPTCP client")
}

// ----- early loss -----

#[test]
fn losing_the_third_ack_and_the_first_data_keeps_mptcp_and_the_bytes() {
    // The client's third ACK and its first data segment, the two that carry its key in
    // MP_CAPABLE, are both lost once; its next segments carry only DSS options. The engine
    // used to complete the handshake without the key and acknowledge them without any MPTCP
    // option, which a Linux client takes for the server's fallback; its plain data then met the
    // engine's mapping check and the connection was reset.
    for seed in seeds(&[21, 22, 23]) {
        let mut net = mptcp_net(
            seed,
            pattern(256 * KIB, seed),
            pattern(128 * KIB, !seed),
            41_000,
            config(),
        );
        let mut dropped = 0;
        net.drop_from_client = Some(Box::new(move |repr, _, _| {
            let first_two_keyed = !repr.flags.contains(TcpFlags::SYN) && is_mp_capable(repr);
            if first_two_keyed && dropped < 2 {
                dropped += 1;
                return true;
            }
            false
        }));
        net.drive_until(|net| {
            net.all_data_arrived()
                && net.client.is_closed()
                && net.backend.as_ref().is_some_and(|b| b.is_closed())
                && net.engine.connection_count() == 0
        });
        assert_eq!(net.dropped_from_client, 2, "{}", net.context());
        net.check_data();
        let counters = *net.engine.counters();
        assert!(
            !mptcp(&net).fell_back,
            "the client fell back: {}",
            net.context()
        );
        assert_eq!(counters.mptcp_fallbacks, 0, "{}", net.context());
        assert_eq!(counters.dss_mapping_mismatches, 0, "{}", net.context());
        assert!(
            counters.mptcp_withheld_before_key > 0,
            "DSS segments before the key were withheld: {}",
            net.context()
        );
        assert_eq!(net.resets_to_client, 0, "{}", net.context());
        assert_eq!(net.client.close_reason(), Some(CloseReason::Graceful));
    }
}

#[test]
fn losing_the_first_transmission_of_a_first_mapping_spread_over_segments_keeps_mptcp() {
    // What the lab saw Linux 6.18 do: its first write is one mapping, and every segment of it
    // carries MP_CAPABLE with both keys and the whole mapping. The third ACK and the first
    // transmission of every one of those segments are lost; the retransmissions deliver.
    let seed = 37;
    let up = pattern(128 * KIB, seed);
    let mut net = mptcp_net(seed, up.clone(), pattern(64 * KIB, !seed), 41_014, config());
    net.mptcp.as_mut().unwrap().first_mapping = Some(up.slice(..16 * KIB));
    let mut lost = std::collections::HashSet::new();
    net.drop_from_client = Some(Box::new(move |repr, _, _| {
        let keyed = !repr.flags.contains(TcpFlags::SYN) && is_mp_capable(repr);
        keyed && lost.insert(repr.seq)
    }));
    net.drive_until(|net| {
        net.all_data_arrived() && net.client.is_closed() && net.engine.connection_count() == 0
    });
    assert!(net.dropped_from_client >= 3, "{}", net.context());
    net.check_data();
    assert!(!mptcp(&net).fell_back, "{}", net.context());
    let counters = *net.engine.counters();
    assert_eq!(counters.mptcp_fallbacks, 0);
    assert_eq!(counters.dss_mapping_mismatches, 0);
    assert_eq!(counters.dss_checksum_failures, 0);
    assert_eq!(net.resets_to_client, 0);
}

#[test]
fn losing_the_third_ack_alone_costs_nothing() {
    // Only the third ACK is lost: the first data segment carries the key again.
    let seed = 24;
    let mut net = mptcp_net(
        seed,
        pattern(64 * KIB, seed),
        pattern(64 * KIB, !seed),
        41_001,
        config(),
    );
    let mut dropped = false;
    net.drop_from_client = Some(Box::new(move |repr, len, _| {
        let third_ack = len == 0 && !repr.flags.contains(TcpFlags::SYN) && is_mp_capable(repr);
        let drop = third_ack && !dropped;
        dropped |= drop;
        drop
    }));
    net.drive_until(|net| net.all_data_arrived());
    net.check_data();
    assert_eq!(net.dropped_from_client, 1);
    assert!(!mptcp(&net).fell_back);
    assert_eq!(net.engine.counters().mptcp_withheld_before_key, 0);
    assert_eq!(
        net.client.counters().rto_expirations,
        0,
        "{}",
        net.context()
    );
}

#[test]
fn a_stripped_handshake_falls_back_on_both_sides_and_keeps_the_bytes() {
    // RFC 8684 section 3.7: a middlebox that strips every MPTCP option after the SYNs leaves
    // a third ACK without any; both ends fall back and the bytes pass as plain TCP.
    let seed = 25;
    let mut net = mptcp_net(
        seed,
        pattern(64 * KIB, seed),
        pattern(64 * KIB, !seed),
        41_002,
        config(),
    );
    net.strip_options_from_client = true;
    net.drive_until(|net| net.all_data_arrived());
    net.check_data();
    assert!(mptcp(&net).fell_back, "{}", net.context());
    assert_eq!(net.engine.counters().mptcp_fallbacks, 1);
    assert_eq!(net.resets_to_client, 0);
}

// ----- backends that fail -----

#[test]
fn a_backend_reset_mid_transfer_fast_closes_the_client_at_once() {
    // A Linux client ignores a plain RST on its only subflow for net.mptcp.close_timeout
    // (60 s); MP_FASTCLOSE with its key ends the connection at once (RFC 8684 section 3.5).
    let seed = 26;
    let mut net = mptcp_net(
        seed,
        pattern(512 * KIB, seed),
        pattern(512 * KIB, !seed),
        41_003,
        config(),
    );
    net.backend_reset_after = Some(64 * KIB);
    net.drive_until(|net| net.client.is_closed() && net.engine.connection_count() == 0);
    let reset_at = net.backend_reset_at.expect("the backend reset");
    let fast_close_at = mptcp(&net)
        .fast_close_received_at
        .expect("the client got MP_FASTCLOSE with its key");
    assert!(
        fast_close_at - reset_at <= 4 * ONE_WAY_DELAY,
        "MP_FASTCLOSE {:?} after the backend's reset: {}",
        fast_close_at - reset_at,
        net.context()
    );
    let counters = *net.engine.counters();
    assert_eq!(counters.mptcp_fastcloses_sent, 1, "{}", net.context());
    assert_eq!(
        counters.backend_connect_failures, 0,
        "the backend was reached"
    );
    // The client answered with its RST, which ended FASTCLOSE_WAIT without a RST of ours.
    assert_eq!(net.client.close_reason(), Some(CloseReason::Aborted));
    assert!(mptcp(&net).reset_reasons.is_empty(), "{}", net.context());
    let got = &net.client_app.received;
    assert!(got[..] == net.backend_app.outgoing[..got.len()], "a prefix");
}

/// The backend resets at points of a transfer both ways, so that some resets find the data
/// toward the client waiting for the pacer. That once left a past deadline behind, which the engine
/// found due again and again: the lab's worker hung in its timer loop.
#[test]
fn a_backend_reset_while_the_pacer_holds_data_fast_closes_the_client() {
    for (round, reset_after_kib) in (96..=480).step_by(32).enumerate() {
        let seed = 60 + round as u64;
        let mut net = mptcp_net(
            seed,
            pattern(2048 * KIB, seed),
            pattern(2048 * KIB, !seed),
            41_010 + round as u16,
            config(),
        );
        net.backend_reset_after = Some(reset_after_kib * KIB);
        net.drive_until(|net| net.client.is_closed() && net.engine.connection_count() == 0);
        assert!(
            mptcp(&net).fast_close_received_at.is_some(),
            "reset after {reset_after_kib} KiB: {}",
            net.context()
        );
        assert_eq!(net.engine.counters().mptcp_fastcloses_sent, 1);
        assert!(
            net.engine.counters().pacing_delays > 0,
            "the pacer held data: {}",
            net.context()
        );
    }
}

#[test]
fn a_backend_that_never_answers_fast_closes_the_client_after_the_connect_timeout() {
    let seed = 27;
    let mut config = config();
    config.backend_tcp.connect_timeout = Duration::from_secs(3);
    let mut net = mptcp_net(seed, pattern(64 * KIB, seed), Bytes::new(), 41_004, config);
    let started = net.now;
    net.backend_silent_until = Some(started + Duration::from_secs(3600));
    net.drive_until(|net| net.client.is_closed() && net.engine.connection_count() == 0);
    let fast_close_at = mptcp(&net)
        .fast_close_received_at
        .expect("the client got MP_FASTCLOSE with its key");
    let waited = fast_close_at - started;
    assert!(
        waited >= Duration::from_secs(3) && waited <= Duration::from_secs(3) + 8 * ONE_WAY_DELAY,
        "MP_FASTCLOSE after {waited:?}: {}",
        net.context()
    );
    let counters = *net.engine.counters();
    assert_eq!(counters.backend_connect_failures, 1, "{}", net.context());
    assert_eq!(counters.mptcp_fastcloses_sent, 1);
    assert!(net.backend.is_none());
}

#[test]
fn an_unanswered_fast_close_is_repeated_then_ends_with_a_reset_carrying_it() {
    // RFC 8684 section 3.5: FASTCLOSE_WAIT repeats MP_FASTCLOSE after each RTO and, after a
    // bounded number of attempts, sends a RST (with MP_FASTCLOSE and MP_TCPRST) and forgets the
    // connection. The client's host drops the first two.
    let seed = 28;
    let mut net = mptcp_net(
        seed,
        pattern(256 * KIB, seed),
        pattern(256 * KIB, !seed),
        41_005,
        config(),
    );
    net.backend_reset_after = Some(16 * KIB);
    let mut dropped = 0;
    net.drop_to_client = Some(Box::new(move |repr, _, _| {
        let fast_close = repr
            .options
            .mptcp
            .iter()
            .flatten()
            .any(|option| matches!(option, MptcpOption::MpFastclose { .. }));
        if fast_close && dropped < 2 {
            dropped += 1;
            return true;
        }
        false
    }));
    net.drive_until(|net| net.client.is_closed() && net.engine.connection_count() == 0);
    assert_eq!(net.dropped_to_client, 2, "{}", net.context());
    assert!(mptcp(&net).fast_close_received_at.is_some());

    // Now a client that has vanished: nobody answers; the engine gives up on its own.
    let seed = 29;
    let mut net = mptcp_net(
        seed,
        pattern(256 * KIB, seed),
        pattern(256 * KIB, !seed),
        41_006,
        config(),
    );
    net.drive_until(|net| net.backend_app.received.len() >= 16 * KIB);
    net.client_vanished = true;
    net.backend.as_mut().unwrap().abort();
    let aborted_at = net.now;
    net.drive_until(|net| net.engine.connection_count() == 0);
    assert!(
        net.now - aborted_at < Duration::from_secs(30),
        "FASTCLOSE_WAIT is bounded: {}",
        net.context()
    );
    assert_eq!(net.engine.counters().mptcp_fastcloses_sent, 1);
}

#[test]
fn blind_segments_in_fastclose_wait_neither_strip_nor_end_it() {
    // Found in review: in FASTCLOSE_WAIT the options of a segment with an unacceptable ACK
    // were read, so a blind infinite mapping made the session fall back and strip
    // MP_FASTCLOSE from the remaining attempts and from the final RST; and any in-window
    // RST ended the attempts. The client here receives nothing (its host drops it all), so
    // every attempt and the final RST are seen.
    let seed = 38;
    let mut net = mptcp_net(
        seed,
        pattern(256 * KIB, seed),
        pattern(256 * KIB, !seed),
        41_015,
        config(),
    );
    net.backend_reset_after = Some(16 * KIB);
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let record = seen.clone();
    net.drop_to_client = Some(Box::new(move |repr, _, _| {
        let options: Vec<_> = repr.options.mptcp.iter().flatten().copied().collect();
        let fast_close = options
            .iter()
            .any(|option| matches!(option, MptcpOption::MpFastclose { .. }));
        if fast_close || !record.borrow().is_empty() {
            let reset = options
                .iter()
                .any(|option| matches!(option, MptcpOption::MpTcpRst(_)));
            record
                .borrow_mut()
                .push((repr.flags.contains(TcpFlags::RST), fast_close, reset));
            return true;
        }
        false
    }));
    net.drive_until(|net| net.engine.counters().mptcp_fastcloses_sent == 1);
    let rcv_nxt = net.client.send_max();
    let snd_max = net.client.receive_next();
    // An infinite mapping, in the window but with an ACK of data never sent.
    let mut infinite = forged(&net, rcv_nxt, snd_max + 0x1000_0000, TcpFlags::ACK);
    infinite.options.mptcp[0] = Some(MptcpOption::Dss(Dss {
        data_ack: None,
        mapping: Some(DssMapping {
            data_seq: DataSeqWire::Bits64(12345),
            subflow_seq: 1,
            data_level_length: 0,
            checksum: Some(0),
        }),
        data_fin: false,
    }));
    net.inject_from_client(&infinite, b"x");
    // A RST in the window but not at RCV.NXT.
    net.inject_from_client(
        &forged(&net, rcv_nxt + 999, SeqNumber(0), TcpFlags::RST),
        &[],
    );
    net.client_vanished = true;
    net.drive_until(|net| net.engine.connection_count() == 0);
    let seen = seen.borrow();
    assert_eq!(
        net.engine.counters().mptcp_fallbacks,
        0,
        "{}",
        net.context()
    );
    assert!(
        seen.len() > usize::try_from(mpterm_engine::tcp::FAST_CLOSE_ATTEMPTS).unwrap(),
        "every attempt, a challenge and the RST: {seen:?}"
    );
    assert!(
        seen.iter().all(|&(_, fast_close, _)| fast_close),
        "every segment carries MP_FASTCLOSE: {seen:?}"
    );
    assert_eq!(
        seen.last(),
        Some(&(true, true, true)),
        "the final RST carries MP_FASTCLOSE and MP_TCPRST"
    );
}

#[test]
fn a_client_fast_close_with_our_key_resets_both_sides_and_a_wrong_key_is_ignored() {
    let seed = 30;
    let mut net = mptcp_net(
        seed,
        pattern(32 * KIB, seed),
        pattern(1024 * KIB, !seed),
        41_007,
        config(),
    );
    // The client sends its bytes and then only acknowledges (pure ACKs), keeping its side open.
    net.client_app.closed = true;
    net.drive_until(|net| {
        net.backend_app.received.len() == 32 * KIB && net.client.send_queued() == 0
    });
    let engine_key = mptcp(&net).remote_key.expect("the engine's key");
    // A wrong key first: nothing happens.
    net.mptcp.as_mut().unwrap().send_fast_close_with = Some(engine_key ^ 1);
    net.client.request_ack();
    net.drive_until(|net| net.engine.counters().mptcp_fastcloses_ignored == 1);
    assert_eq!(net.engine.connection_count(), 1);
    assert_eq!(net.engine.counters().mptcp_fastcloses_received, 0);
    // Then ours: the engine answers with RST and resets the backend.
    net.mptcp.as_mut().unwrap().send_fast_close_with = Some(engine_key);
    net.client.request_ack();
    net.drive_until(|net| {
        net.client.is_closed()
            && net.backend.as_ref().is_some_and(|b| b.is_closed())
            && net.engine.connection_count() == 0
    });
    assert_eq!(net.engine.counters().mptcp_fastcloses_received, 1);
    assert_eq!(
        net.backend.as_ref().unwrap().close_reason(),
        Some(CloseReason::ResetByPeer)
    );
    assert!(net.resets_to_client >= 1, "{}", net.context());
}

#[test]
fn the_data_ack_moves_while_the_backend_connects() {
    // The engine used to hold the client's first bytes in the subflow until a backend
    // existed, so its DATA_ACK stalled and Linux sent them again at the MPTCP level every
    // 200 ms. Data the engine holds for the connection is received at the connection level.
    // What the client sends fits in the initial receive window (128 KiB): with no backend
    // to pass it to, nothing is read and autotuning rightly keeps the window there.
    let seed = 31;
    let up = 120 * KIB;
    let mut net = mptcp_net(
        seed,
        pattern(up, seed),
        pattern(64 * KIB, !seed),
        41_008,
        config(),
    );
    let started = net.now;
    net.backend_silent_until = Some(started + Duration::from_secs(10));
    net.drive_until(|net| net.now >= started + Duration::from_secs(5));
    assert!(net.backend.is_none(), "the backend is still silent");
    assert!(
        mptcp(&net).data_acked >= up as u64,
        "everything the client sent is DATA_ACKed: {} of {up}: {}",
        mptcp(&net).data_acked,
        net.context()
    );
    net.drive_until(|net| net.all_data_arrived());
    net.check_data();
    assert_eq!(
        mptcp(&net).data_level_retransmissions,
        0,
        "no MPTCP-level retransmission: {}",
        net.context()
    );
}

// ----- blind and forged segments -----

/// A DSS option with a DATA_FIN-only mapping (RFC 8684 section 3.3.3) at `data_seq`.
fn data_fin_options(data_seq: u64, right_checksum: bool) -> TcpOptions<'static> {
    let mut checksum = dss_pseudo_header(data_seq, 0, 1, 0).finish();
    if !right_checksum {
        checksum ^= 0x0f0f;
    }
    let mut options = TcpOptions::default();
    options.mptcp[0] = Some(MptcpOption::Dss(Dss {
        data_ack: None,
        mapping: Some(DssMapping {
            data_seq: DataSeqWire::Bits64(data_seq),
            subflow_seq: 0,
            data_level_length: 1,
            checksum: Some(checksum),
        }),
        data_fin: true,
    }));
    options
}

fn forged(net: &Net, seq: SeqNumber, ack: SeqNumber, flags: TcpFlags) -> TcpRepr<'static> {
    TcpRepr {
        src_port: net.client.local().port(),
        dst_port: LISTEN.port(),
        seq,
        ack,
        flags,
        window: 1024,
        options: TcpOptions::default(),
    }
}

#[test]
fn blind_segments_change_nothing_and_are_counted() {
    // Before the fix, MPTCP options were read before the TCP acceptability check: a single
    // out-of-window segment with a bogus DATA_FIN made the engine ignore the real one, so the
    // backend stayed in FIN-WAIT-2 and the slot was never freed; the same path forced a
    // fallback. Only segments the TCP layer accepts may act on MPTCP state.
    let seed = 32;
    let mut net = mptcp_net(
        seed,
        pattern(256 * KIB, seed),
        pattern(256 * KIB, !seed),
        41_009,
        config(),
    );
    net.drive_until(|net| net.backend_app.received.len() >= 64 * KIB);
    let before = *net.engine.counters();
    let rcv_nxt = net.client.send_max(); // what the engine expects next, give or take flight
    let snd_max = net.client.receive_next(); // what the engine has sent, give or take flight
    let far = rcv_nxt + 0x4000_0000;
    let client_idsn = mpterm_engine::mptcp_keys::derive_from_key(CLIENT_KEY).initial_data_seq;
    // 1. A DATA_FIN far outside the window, at a data sequence number in the middle of the
    //    stream (checksum right: a blind attacker can compute it).
    let mut fin = forged(&net, far, snd_max, TcpFlags::ACK);
    fin.options = data_fin_options(client_idsn.wrapping_add(1000), true);
    net.inject_from_client(&fin, &[]);
    // 2. Data without any MPTCP option out of the window: a fallback trigger.
    net.inject_from_client(&forged(&net, far, snd_max, TcpFlags::ACK), b"plain bytes");
    // 3. An infinite mapping out of the window: another fallback trigger.
    let mut infinite = forged(&net, far, snd_max, TcpFlags::ACK);
    infinite.options.mptcp[0] = Some(MptcpOption::Dss(Dss {
        data_ack: None,
        mapping: Some(DssMapping {
            data_seq: DataSeqWire::Bits64(client_idsn.wrapping_add(1)),
            subflow_seq: 1,
            data_level_length: 0,
            checksum: Some(0),
        }),
        data_fin: false,
    }));
    net.inject_from_client(&infinite, b"x");
    // 4. A RST outside the window, and one inside it but not at RCV.NXT (challenge ACK).
    net.inject_from_client(&forged(&net, far, SeqNumber(0), TcpFlags::RST), &[]);
    net.inject_from_client(
        &forged(&net, rcv_nxt + 5000, SeqNumber(0), TcpFlags::RST),
        &[],
    );
    // 5. A SYN inside the window (challenge ACK).
    net.inject_from_client(
        &forged(&net, rcv_nxt + 100, SeqNumber(0), TcpFlags::SYN),
        &[],
    );
    // 6. An in-window DATA_FIN whose ACK acknowledges data never sent.
    let mut bad_ack = forged(&net, rcv_nxt, snd_max + 0x1000_0000, TcpFlags::ACK);
    bad_ack.options = data_fin_options(client_idsn.wrapping_add(1000), true);
    net.inject_from_client(&bad_ack, &[]);
    // The engine totals its connections' counters when it polls them.
    while net.step() {}
    let counters = *net.engine.counters();
    assert_eq!(
        counters.rx_dropped_out_of_window - before.rx_dropped_out_of_window,
        4,
        "{}",
        net.context()
    );
    assert_eq!(counters.challenge_acks_sent - before.challenge_acks_sent, 2);
    assert_eq!(counters.rx_dropped_bad_ack - before.rx_dropped_bad_ack, 1);
    assert_eq!(counters.mptcp_fallbacks, 0);
    assert_eq!(counters.tcp_resets_by_peer, 0);
    // The connection carries on and closes with the real DATA_FINs.
    net.drive_until(|net| {
        net.all_data_arrived()
            && net.client.is_closed()
            && net.backend.as_ref().is_some_and(|b| b.is_closed())
            && net.engine.connection_count() == 0
    });
    net.check_data();
    assert!(!mptcp(&net).fell_back);
    assert_eq!(net.engine.counters().mptcp_fallbacks, 0);
    assert_eq!(net.client.close_reason(), Some(CloseReason::Graceful));
    assert_eq!(
        net.backend.as_ref().unwrap().close_reason(),
        Some(CloseReason::Graceful)
    );
}

#[test]
fn a_data_fin_mapping_with_a_bad_checksum_is_a_checksum_failure() {
    // RFC 8684 section 3.3: a mapping that carries only a DATA_FIN is checksum-verified like
    // any other. Sent in sequence (so the TCP layer accepts it) with a wrong checksum, it must
    // not end the stream: it is counted as a checksum failure and resets the connection.
    let seed = 33;
    let mut net = mptcp_net(
        seed,
        pattern(64 * KIB, seed),
        pattern(64 * KIB, !seed),
        41_010,
        config(),
    );
    // The client keeps its side open, so that once all is acknowledged its next sequence
    // number is the one the engine expects.
    net.client_app.closed = true;
    net.drive_until(|net| {
        net.backend_app.received.len() == 64 * KIB && net.client.send_queued() == 0
    });
    let client_idsn = mpterm_engine::mptcp_keys::derive_from_key(CLIENT_KEY).initial_data_seq;
    let sent = net.client_app.queued as u64;
    let mut fin = forged(
        &net,
        net.client.send_max(),
        net.client.receive_next(),
        TcpFlags::ACK,
    );
    fin.options = data_fin_options(client_idsn.wrapping_add(1 + sent), false);
    net.inject_from_client(&fin, &[]);
    while net.step() {}
    assert_eq!(
        net.engine.counters().dss_checksum_failures,
        1,
        "{}",
        net.context()
    );
    net.drive_until(|net| net.engine.connection_count() == 0);
    assert!(net.backend_app.received.len() as u64 <= sent);
}

// ----- idle and dead peers -----

fn liveness(keepalive: Option<Keepalive>, fin_wait_2: u64, user_timeout: u64) -> Liveness {
    Liveness {
        keepalive,
        fin_wait_2_timeout: Duration::from_secs(fin_wait_2),
        user_timeout: Some(Duration::from_secs(user_timeout)),
    }
}

#[test]
fn a_vanished_idle_client_expires_by_keepalive_and_the_backend_is_reset() {
    let seed = 34;
    let keepalive = Keepalive {
        idle: Duration::from_secs(10),
        interval: Duration::from_secs(2),
        probes: 3,
    };
    let mut config = config();
    config.client_tcp.liveness = liveness(Some(keepalive), 60, 180);
    config.backend_tcp.liveness = Liveness::retransmission_limit_only(Duration::from_secs(60));
    let mut net = mptcp_net(
        seed,
        pattern(16 * KIB, seed),
        pattern(16 * KIB, !seed),
        41_011,
        config,
    );
    // Both sides keep their connection open after the data: the client and the backend never
    // close, so only the idle timers can end it.
    net.client_app.closed = true;
    net.backend_app.closed = true;
    net.drive_until(|net| net.all_data_arrived());
    // An idle client that answers its probes is kept.
    let idle_since = net.now;
    net.drive_until(|net| net.now >= idle_since + Duration::from_secs(60));
    assert_eq!(net.engine.connection_count(), 1, "{}", net.context());
    assert!(net.engine.counters().keepalive_probes_sent >= 3);
    assert_eq!(net.engine.counters().keepalive_timeouts, 0);
    // One that vanished is given up after idle + probes x interval. It vanishes right after
    // it answered a probe, so that the idle clock starts then.
    let probes = net.engine.counters().keepalive_probes_sent;
    net.drive_until(|net| net.engine.counters().keepalive_probes_sent > probes);
    let probed_at = net.now;
    net.drive_until(|net| net.now > probed_at && net.links.iter().all(|link| link.is_idle()));
    net.client_vanished = true;
    let vanished_at = net.now;
    let probes_before = net.engine.counters().keepalive_probes_sent;
    net.drive_until(|net| {
        net.engine.connection_count() == 0 && net.backend.as_ref().is_some_and(|b| b.is_closed())
    });
    let took = net.now - vanished_at;
    assert!(
        took >= Duration::from_secs(10 + 2 * 3) - 4 * ONE_WAY_DELAY
            && took <= Duration::from_secs(10 + 2 * 3) + 4 * ONE_WAY_DELAY,
        "the vanished client was given up after {took:?}: {}",
        net.context()
    );
    let counters = *net.engine.counters();
    assert_eq!(counters.keepalive_timeouts, 1, "{}", net.context());
    assert_eq!(counters.keepalive_probes_sent - probes_before, 3);
    assert_eq!(
        net.backend.as_ref().unwrap().close_reason(),
        Some(CloseReason::ResetByPeer),
        "the backend learns of it"
    );
}

#[test]
fn a_backend_stuck_half_closed_expires_in_fin_wait_2() {
    // The client closes; the engine closes toward the backend, which acknowledges but never
    // sends its FIN (an application that never closes): FIN-WAIT-2 lasted forever.
    let seed = 35;
    let mut config = config();
    config.backend_tcp.liveness = liveness(None, 20, 180);
    // The backend sends nothing, so nothing but the timer can end FIN-WAIT-2.
    let mut net = mptcp_net(seed, pattern(16 * KIB, seed), Bytes::new(), 41_012, config);
    net.backend_app.closed = true;
    net.drive_until(|net| {
        net.all_data_arrived()
            && net
                .backend
                .as_ref()
                .is_some_and(|b| b.state() == TcpState::CloseWait)
    });
    let half_closed_at = net.now;
    net.drive_until(|net| {
        net.engine.connection_count() == 0
            && net.client.is_closed()
            && net.backend.as_ref().is_some_and(|b| b.is_closed())
    });
    let took = net.now - half_closed_at;
    assert!(
        took >= Duration::from_secs(19) && took <= Duration::from_secs(21),
        "FIN-WAIT-2 ended after {took:?}: {}",
        net.context()
    );
    assert_eq!(
        net.engine.counters().fin_wait_2_timeouts,
        1,
        "{}",
        net.context()
    );
    assert_eq!(
        net.backend.as_ref().unwrap().close_reason(),
        Some(CloseReason::ResetByPeer),
        "the backend is reset"
    );
    assert!(
        mptcp(&net).fast_close_received_at.is_some(),
        "the client learns of it: {}",
        net.context()
    );
}

#[test]
fn data_toward_a_vanished_client_expires_by_the_user_timeout() {
    let seed = 36;
    let mut config = config();
    config.client_tcp.liveness = liveness(None, 60, 20);
    let mut net = mptcp_net(
        seed,
        pattern(64 * KIB, seed),
        pattern(1024 * KIB, !seed),
        41_013,
        config,
    );
    net.drive_until(|net| net.client_app.received.len() >= 64 * KIB);
    net.client_vanished = true;
    let vanished_at = net.now;
    net.drive_until(|net| {
        net.engine.connection_count() == 0 && net.backend.as_ref().is_some_and(|b| b.is_closed())
    });
    let took = net.now - vanished_at;
    assert!(
        took <= Duration::from_secs(21),
        "given up after {took:?}: {}",
        net.context()
    );
    let counters = *net.engine.counters();
    assert_eq!(counters.user_timeouts, 1, "{}", net.context());
    assert_eq!(counters.tcp_timeouts, 0, "before the retransmission limit");
    assert_eq!(
        net.backend.as_ref().unwrap().close_reason(),
        Some(CloseReason::ResetByPeer)
    );
    assert_nothing_left(&net);
}

// ----- limits (issue 8 part 4): a side given up ends the other, and nothing stays -----

/// A FIN-WAIT-2 timeout longer than the retransmission limit takes (about 8 minutes with
/// backoff), so that the limit, not the other side's half-close, ends these connections.
const LONG_FIN_WAIT_2: Duration = Duration::from_secs(3000);

/// Nothing of a connection is left in the engine: no slot, no flow in the demultiplexing
/// table, no token, no timer due, no TIME-WAIT entry (an abort leaves none).
fn assert_nothing_left(net: &Net) {
    assert_eq!(net.engine.connection_count(), 0, "{}", net.context());
    assert_eq!(net.engine.flow_count(), 0, "flows left: {}", net.context());
    assert_eq!(
        net.engine.token_count(),
        0,
        "tokens left: {}",
        net.context()
    );
    assert_eq!(net.engine.time_wait_count(), 0, "{}", net.context());
    assert!(
        net.engine
            .poll_timeout()
            .is_none_or(|deadline| deadline > net.now),
        "{}",
        net.context()
    );
}

#[test]
fn data_toward_a_vanished_client_expires_by_the_retransmission_limit_and_nothing_stays() {
    // No user timeout: only the retransmission limit (RFC 9293 3.8.3 R2, 15 as Linux's
    // tcp_retries2) gives up the client, and the backend is reset in turn.
    let seed = 37;
    let mut config = config();
    config.client_tcp.liveness = Liveness::retransmission_limit_only(LONG_FIN_WAIT_2);
    // The backend side's FIN-WAIT-2 timeout is as long, so that the retransmission limit
    // toward the client is what ends the connection: with the default 60 s the backend side,
    // whose FIN the backend peer (blocked behind the closed window) never answers with its
    // own, would end it first.
    config.backend_tcp.liveness = Liveness::retransmission_limit_only(LONG_FIN_WAIT_2);
    let mut net = mptcp_net(
        seed,
        pattern(64 * KIB, seed),
        pattern(1024 * KIB, !seed),
        41_014,
        config,
    );
    net.drive_until(|net| net.client_app.received.len() >= 64 * KIB);
    net.client_vanished = true;
    net.drive_until(|net| {
        net.engine.connection_count() == 0 && net.backend.as_ref().is_some_and(|b| b.is_closed())
    });
    let counters = *net.engine.counters();
    assert_eq!(counters.tcp_timeouts, 1, "{}", net.context());
    assert_eq!(counters.user_timeouts, 0, "{}", net.context());
    // The backend peer, behind our closed window for the 8 minutes the limit takes, gives up
    // by its own user timeout (180 s) first; the reset toward a live backend is the user
    // timeout test's above.
    assert!(net.backend.as_ref().unwrap().is_closed());
    assert_nothing_left(&net);
}

#[test]
fn data_toward_a_vanished_backend_expires_by_the_user_timeout_and_the_client_is_fast_closed() {
    // The reverse: the backend stops answering while the client's upload flows. The backend
    // side is given up after its user timeout (20 s here), and the client learns it from
    // MP_FASTCLOSE (RFC 8684 section 3.5), not from a plain RST a Linux client would ignore
    // for 60 s.
    let seed = 38;
    let mut config = config();
    config.backend_tcp.liveness = liveness(None, 60, 20);
    let mut net = mptcp_net(
        seed,
        pattern(1024 * KIB, seed),
        pattern(16 * KIB, !seed),
        41_015,
        config,
    );
    net.drive_until(|net| net.backend_app.received.len() >= 64 * KIB);
    net.backend_vanished = true;
    let vanished_at = net.now;
    net.drive_until(|net| net.engine.connection_count() == 0 && net.client.is_closed());
    // 20 s from the last progress: the backend's last ACKs were in flight when it vanished.
    let took = net.now - vanished_at;
    assert!(
        took >= Duration::from_secs(20) && took <= Duration::from_secs(22),
        "given up after {took:?}: {}",
        net.context()
    );
    let counters = *net.engine.counters();
    assert_eq!(counters.user_timeouts, 1, "{}", net.context());
    assert_eq!(counters.tcp_timeouts, 0, "{}", net.context());
    assert!(
        mptcp(&net).fast_close_received_at.is_some(),
        "the client learns of it: {}",
        net.context()
    );
    assert_nothing_left(&net);
}

#[test]
fn data_toward_a_vanished_backend_expires_by_the_retransmission_limit_and_the_client_is_fast_closed(
) {
    let seed = 39;
    let mut config = config();
    config.backend_tcp.liveness = Liveness::retransmission_limit_only(LONG_FIN_WAIT_2);
    // The client side waits as long, so that the backend side's retransmission limit, not
    // the client side's own FIN-WAIT-2 timeout or keepalive, is what ends the connection.
    config.client_tcp.liveness = Liveness::retransmission_limit_only(LONG_FIN_WAIT_2);
    let mut net = mptcp_net(
        seed,
        pattern(1024 * KIB, seed),
        pattern(16 * KIB, !seed),
        41_016,
        config,
    );
    net.drive_until(|net| net.backend_app.received.len() >= 64 * KIB);
    net.backend_vanished = true;
    net.drive_until(|net| net.engine.connection_count() == 0 && net.client.is_closed());
    let counters = *net.engine.counters();
    assert_eq!(counters.tcp_timeouts, 1, "{}", net.context());
    assert_eq!(counters.user_timeouts, 0, "{}", net.context());
    assert!(
        mptcp(&net).fast_close_received_at.is_some(),
        "the client learns of it: {}",
        net.context()
    );
    assert_nothing_left(&net);
}
