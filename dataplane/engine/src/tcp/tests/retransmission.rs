//! Retransmission: the timer, fast retransmit, NewReno, giving up.

use super::*;

#[test]
fn retransmission_timeout_backs_off_exponentially() {
    // The timer alone: without SACK no tail loss probe comes first (see sack.rs and sim.rs).
    let mut pair = Pair::without_sack();
    // One handshake round trip of two hops: SRTT 10 ms, RTO clamped to the 200 ms minimum.
    pair.client.send(Bytes::from(pattern(500, 15))).unwrap();
    let first = drain(&mut pair.client, pair.now);
    assert_eq!(first.len(), 1);
    let sent_at = pair.now;
    assert_eq!(
        pair.client.poll_timeout(),
        Some(sent_at + Duration::from_millis(200))
    );
    let mut expected = sent_at;
    for attempt in 0..5u32 {
        let rto = Duration::from_millis(200) * (1 << attempt);
        expected = expected + rto;
        assert_eq!(
            pair.client.poll_timeout(),
            Some(expected),
            "attempt {attempt}"
        );
        pair.now = expected;
        pair.client.handle_timeout(pair.now);
        let again = drain(&mut pair.client, pair.now);
        assert_eq!(again.len(), 1);
        assert!(again[0].is_retransmission);
        assert_eq!(again[0].repr.seq, first[0].repr.seq);
        assert_eq!(again[0].payload, first[0].payload);
        assert_eq!(
            pair.client.counters().rto_expirations,
            u64::from(attempt) + 1
        );
    }
    // The sixth retransmission arrives; the ACK stops the timer and the backoff.
    deliver(&mut pair.server, pair.now, &pair.log[0].1.clone());
    let retransmitted = pair.client.poll_timeout().unwrap();
    pair.now = retransmitted;
    pair.client.handle_timeout(pair.now);
    let again = drain(&mut pair.client, pair.now);
    deliver(&mut pair.server, pair.now, &again[0]);
    let ack = drain(&mut pair.server, pair.now);
    deliver(&mut pair.client, pair.now, ack.last().unwrap());
    assert!(pair.client.all_sent_acknowledged());
    assert_eq!(pair.client.poll_timeout(), None);
    // New data gets a timer without the backoff.
    pair.client.send(Bytes::from_static(b"more")).unwrap();
    drain(&mut pair.client, pair.now);
    let rto = pair.client.poll_timeout().unwrap() - pair.now;
    assert!(
        rto <= Duration::from_secs(1),
        "backoff was not reset: {rto:?}"
    );
}

#[test]
fn three_duplicate_acks_trigger_fast_retransmit() {
    let mut pair = Pair::without_sack();
    pair.client
        .send(Bytes::from(pattern(10 * 988, 16)))
        .unwrap();
    let segments = drain(&mut pair.client, pair.now);
    assert_eq!(segments.len(), 10);
    let mut dup_acks = Vec::new();
    for segment in &segments[1..] {
        deliver(&mut pair.server, pair.now, segment);
        dup_acks.extend(drain(&mut pair.server, pair.now));
    }
    assert_eq!(dup_acks.len(), 9);
    assert!(dup_acks.iter().all(|a| a.repr.ack == CLIENT_ISS + 1));
    for (index, ack) in dup_acks.iter().enumerate() {
        deliver(&mut pair.client, pair.now, ack);
        let out = drain(&mut pair.client, pair.now);
        if index == 2 {
            assert_eq!(out.len(), 1, "fast retransmit on the third duplicate");
            assert_eq!(out[0].repr.seq, CLIENT_ISS + 1);
            assert!(out[0].is_retransmission);
            assert_eq!(out[0].payload, segments[0].payload);
        } else {
            assert!(out.iter().all(|s| !s.is_retransmission));
        }
    }
    assert_eq!(pair.client.counters().fast_retransmits, 1);
    assert_eq!(pair.client.counters().rto_expirations, 0);
    deliver(&mut pair.server, pair.now, &segments[0]);
    let mut got = Vec::new();
    read_all(&mut pair.server, &mut got);
    assert!(got == pattern(10 * 988, 16));
}

#[test]
fn newreno_partial_ack_retransmits_the_next_hole_without_a_timeout() {
    let mut pair = Pair::without_sack();
    let data = pattern(10 * 988, 17);
    pair.client.send(Bytes::from(data.clone())).unwrap();
    let segments = drain(&mut pair.client, pair.now);
    assert_eq!(segments.len(), 10);
    // Segments 0 and 4 are lost.
    let mut acks = Vec::new();
    for (index, segment) in segments.iter().enumerate() {
        if index != 0 && index != 4 {
            deliver(&mut pair.server, pair.now, segment);
            acks.extend(drain(&mut pair.server, pair.now));
        }
    }
    let mut retransmitted = Vec::new();
    for ack in &acks {
        deliver(&mut pair.client, pair.now, ack);
        retransmitted.extend(
            drain(&mut pair.client, pair.now)
                .into_iter()
                .filter(|s| s.is_retransmission),
        );
    }
    assert_eq!(retransmitted.len(), 1);
    assert_eq!(retransmitted[0].repr.seq, CLIENT_ISS + 1);
    // The retransmission fills hole 0: the ACK is partial (up to segment 4).
    deliver(&mut pair.server, pair.now, &retransmitted[0]);
    let partial = drain(&mut pair.server, pair.now);
    assert_eq!(partial.last().unwrap().repr.ack, CLIENT_ISS + 1 + 4 * 988);
    deliver(&mut pair.client, pair.now, partial.last().unwrap());
    let next = drain(&mut pair.client, pair.now);
    let hole = next
        .iter()
        .find(|s| s.is_retransmission)
        .expect("partial ACK retransmits the next hole");
    assert_eq!(hole.repr.seq, CLIENT_ISS + 1 + 4 * 988);
    deliver(&mut pair.server, pair.now, hole);
    let full = drain(&mut pair.server, pair.now);
    deliver(&mut pair.client, pair.now, full.last().unwrap());
    assert!(pair.client.all_sent_acknowledged());
    assert_eq!(pair.client.counters().fast_retransmits, 1);
    assert_eq!(pair.client.counters().rto_expirations, 0);
    let mut got = Vec::new();
    read_all(&mut pair.server, &mut got);
    assert!(got == data);
}

#[test]
fn repeated_timeouts_give_up_with_a_reset() {
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(3000, 18))).unwrap();
    let mut resets = 0;
    for _ in 0..40 {
        drain(&mut pair.client, pair.now)
            .iter()
            .filter(|s| s.repr.flags.contains(TcpFlags::RST))
            .for_each(|_| resets += 1);
        if pair.client.is_closed() {
            break;
        }
        let deadline = pair
            .client
            .poll_timeout()
            .expect("timer runs while data is unacked");
        pair.now = deadline;
        pair.client.handle_timeout(pair.now);
    }
    resets += drain(&mut pair.client, pair.now)
        .iter()
        .filter(|s| s.repr.flags.contains(TcpFlags::RST))
        .count();
    assert_eq!(pair.client.state(), TcpState::Closed);
    assert_eq!(pair.client.close_reason(), Some(CloseReason::TimedOut));
    assert_eq!(pair.client.counters().rto_expirations, 15);
    assert_eq!(resets, 1, "one RST tells the peer");
    assert!(pair.client.poll_timeout().is_none());
}

#[test]
fn handshake_times_out_on_both_sides() {
    let now = Instant::from_nanos(5);
    let mut client = Tcb::<Bytes>::connect(now, CLIENT, SERVER, CLIENT_ISS, MSS, tuning());
    let syn = client.poll_segment(now).unwrap();
    let mut syns = 1;
    let mut at = now;
    let mut gaps = Vec::new();
    while !client.is_closed() {
        let deadline = client.poll_timeout().expect("a handshake timer");
        gaps.push(deadline - at);
        at = deadline;
        client.handle_timeout(at);
        syns += drain(&mut client, at)
            .iter()
            .filter(|s| s.repr.flags == TcpFlags::SYN)
            .count();
    }
    assert_eq!(client.close_reason(), Some(CloseReason::TimedOut));
    assert_eq!(at, now + tuning().connect_timeout);
    // 1 + 2 + 4 + 8 = 15 s of retransmissions, then the 30 s connect timeout cuts the 16 s wait.
    assert_eq!(
        &gaps[..4],
        &[1, 2, 4, 8].map(Duration::from_secs),
        "SYN backoff"
    );
    assert_eq!(syns, 5);

    let mut server =
        Tcb::<Bytes>::accept(now, SERVER, CLIENT, &syn.repr, SERVER_ISS, MSS, tuning());
    let mut syn_acks = 0;
    let mut last = Vec::new();
    let mut at = now;
    while !server.is_closed() {
        last = drain(&mut server, at);
        syn_acks += last
            .iter()
            .filter(|s| s.repr.flags == TcpFlags::SYN | TcpFlags::ACK)
            .count();
        at = server.poll_timeout().expect("a handshake timer");
        server.handle_timeout(at);
    }
    // The first SYN-ACK and retransmissions after 1, 3, 7 and 15 s; the next would be at 31 s.
    assert_eq!(syn_acks, 5);
    assert_eq!(server.close_reason(), Some(CloseReason::TimedOut));
    let after = drain(&mut server, at);
    assert!(
        after
            .iter()
            .chain(&last)
            .any(|s| s.repr.flags.contains(TcpFlags::RST)),
        "a half-open passive connection is reset"
    );
}

#[test]
fn lossy_exchange_recovers_every_byte() {
    // Drops every seventh segment in each direction, retransmissions included.
    let mut pair = Pair::new();
    let up = pattern(120_000, 19);
    let down = pattern(90_000, 20);
    let mut count = 0u32;
    let (at_server, at_client) = transfer(&mut pair, &up, &down, |_, _| {
        count += 1;
        count % 7 != 0
    });
    assert!(at_server == up);
    assert!(at_client == down);
    let retransmissions =
        pair.client.counters().retransmissions + pair.server.counters().retransmissions;
    assert!(retransmissions > 0);
}

#[test]
fn acknowledgements_stay_acceptable_while_both_sides_retransmit() {
    // Both directions lose a whole flight and time out; each side's pure ACKs must still be
    // accepted by the other, whose RCV.NXT is beyond the rewound SND.NXT. Without SACK, so
    // that the timer and not a tail loss probe fires first.
    let mut pair = Pair::without_sack();
    pair.client.send(Bytes::from(pattern(3 * 988, 21))).unwrap();
    pair.server.send(Bytes::from(pattern(3 * 988, 22))).unwrap();
    let up = drain(&mut pair.client, pair.now);
    let down = drain(&mut pair.server, pair.now);
    // Every data segment arrives, but every ACK for them is lost.
    for segment in &up {
        deliver(&mut pair.server, pair.now, segment);
    }
    for segment in &down {
        deliver(&mut pair.client, pair.now, segment);
    }
    drain(&mut pair.client, pair.now);
    drain(&mut pair.server, pair.now);
    // Both time out and rewind to their first unacknowledged byte.
    pair.advance(Duration::from_millis(200));
    assert_eq!(pair.client.counters().rto_expirations, 1);
    assert_eq!(pair.server.counters().rto_expirations, 1);
    pair.pump(|_, _| true);
    assert!(pair.client.all_sent_acknowledged());
    assert!(pair.server.all_sent_acknowledged());
    assert_eq!(pair.client.poll_timeout(), None);
    assert_eq!(pair.server.poll_timeout(), None);
}

#[test]
fn out_of_order_segments_received_in_one_batch_each_get_a_duplicate_ack() {
    // A driver hands a whole receive burst over before polling: every out-of-order segment
    // still owes its own duplicate ACK, or the sender never sees three.
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(6 * 988, 23))).unwrap();
    let segments = drain(&mut pair.client, pair.now);
    for segment in &segments[1..] {
        deliver(&mut pair.server, pair.now, segment);
    }
    let acks = drain(&mut pair.server, pair.now);
    assert_eq!(acks.len(), 5);
    assert!(acks
        .iter()
        .all(|a| is_pure_ack(a) && a.repr.ack == CLIENT_ISS + 1));
    for ack in &acks {
        deliver(&mut pair.client, pair.now, ack);
    }
    assert_eq!(pair.client.counters().fast_retransmits, 1);
    // The hole filled: one cumulative ACK, no further duplicates.
    deliver(&mut pair.server, pair.now, &segments[0]);
    let acks = drain(&mut pair.server, pair.now);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].repr.ack, CLIENT_ISS + 1 + 6 * 988);
}

#[test]
fn sender_does_not_fill_a_small_window_opening_with_a_small_segment() {
    // RFC 9293 3.8.6.2.1: the peer offers 1500 bytes and its MSS is 1000. After one full
    // segment 500 bytes of window remain: too little to be worth a segment while the first
    // one is unacknowledged.
    let now = Instant::from_nanos(5);
    let syn = TcpRepr {
        src_port: CLIENT.port(),
        dst_port: SERVER.port(),
        seq: CLIENT_ISS,
        ack: SeqNumber(0),
        flags: TcpFlags::SYN,
        window: 1500,
        options: TcpOptions {
            mss: Some(1000),
            ..TcpOptions::default()
        },
    };
    let mut server = Tcb::<Bytes>::accept(now, SERVER, CLIENT, &syn, SERVER_ISS, MSS, tuning());
    server.poll_segment(now).unwrap();
    let mut ack = TcpRepr {
        seq: CLIENT_ISS + 1,
        ack: SERVER_ISS + 1,
        flags: TcpFlags::ACK,
        ..syn
    };
    server.handle_segment(now, &ack, None);
    server.send(Bytes::from(pattern(5000, 24))).unwrap();
    let sent: Vec<usize> = drain(&mut server, now).iter().map(payload_len).collect();
    assert_eq!(sent, vec![1000]);
    // The first segment is acknowledged: 1500 bytes of window, one full segment goes.
    ack.ack = SERVER_ISS + 1001;
    server.handle_segment(now, &ack, None);
    let sent: Vec<usize> = drain(&mut server, now).iter().map(payload_len).collect();
    assert_eq!(sent, vec![1000]);
    // With nothing in flight a partial window is used (no ACK would come otherwise).
    ack.ack = SERVER_ISS + 2001;
    ack.window = 600;
    server.handle_segment(now, &ack, None);
    let sent: Vec<usize> = drain(&mut server, now).iter().map(payload_len).collect();
    assert_eq!(sent, vec![600]);
}

#[test]
fn persist_probes_give_up_when_the_peer_stops_answering() {
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(20_000, 25))).unwrap();
    pair.pump(|_, _| true);
    assert_eq!(pair.server.received_buffered(), 16 * 1024, "window closed");
    // The peer vanishes: probes go unanswered, and the sender gives up like any timeout.
    let mut probes = 0;
    while !pair.client.is_closed() {
        let deadline = pair.client.poll_timeout().expect("the persist timer runs");
        pair.now = deadline;
        pair.client.handle_timeout(pair.now);
        probes += drain(&mut pair.client, pair.now)
            .iter()
            .filter(|s| payload_len(s) > 0)
            .count();
        assert!(probes < 100, "the sender never gives up");
    }
    assert_eq!(pair.client.close_reason(), Some(CloseReason::TimedOut));
    assert_eq!(probes, 15);
}

#[test]
fn receiver_does_not_advertise_a_small_window_opening() {
    // RFC 1122 4.2.3.3: with the buffer full, reading less than an MSS must not show the
    // sender a tiny window, even in an ACK sent for another reason.
    let mut pair = Pair::new();
    pair.client
        .send(Bytes::from(pattern(16 * 1024, 26)))
        .unwrap();
    pair.pump(|_, _| true);
    assert_eq!(pair.server.received_buffered(), 16 * 1024);
    let (_, last_ack) = pair
        .log
        .iter()
        .rev()
        .find(|(dir, _)| *dir == Dir::ToClient)
        .unwrap();
    assert_eq!(last_ack.repr.window, 0);
    let (_, first_data) = pair
        .log
        .iter()
        .find(|(_, s)| payload_len(s) > 0)
        .unwrap()
        .clone();
    pair.server.recv().unwrap(); // 988 bytes, less than the MSS of 1000
    deliver(&mut pair.server, pair.now, &first_data); // an old duplicate draws an ACK
    let ack = drain(&mut pair.server, pair.now);
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].repr.window, 0, "988 bytes are not worth advertising");
    pair.server.recv().unwrap();
    let update = drain(&mut pair.server, pair.now);
    assert_eq!(update.len(), 1);
    assert_eq!(update[0].repr.window, 2 * 988);
}
