//! SACK-based loss recovery (RFC 2018, RFC 6675, RFC 8985, RFC 6937) between two blocks:
//! the scoreboard, RACK's reordering window, bad SACK blocks and D-SACKs.

use mpterm_wire::tcp::SackBlocks;

use super::*;

/// Ten full segments from the client; the server gets all but `lost`, and its ACKs (with
/// SACK blocks) are returned, undelivered.
fn ten_segments_with_holes(pair: &mut Pair, lost: &[usize]) -> (Vec<Segment>, Vec<Segment>) {
    pair.client
        .send(Bytes::from(pattern(10 * 988, 31)))
        .unwrap();
    let segments = drain(&mut pair.client, pair.now);
    assert_eq!(segments.len(), 10);
    pair.now = pair.now + HOP;
    let mut acks = Vec::new();
    for (index, segment) in segments.iter().enumerate() {
        if !lost.contains(&index) {
            deliver(&mut pair.server, pair.now, segment);
            acks.extend(drain(&mut pair.server, pair.now));
        }
    }
    pair.now = pair.now + HOP;
    (segments, acks)
}

/// Delivers `segments` to `tcb` one by one and returns everything it sent in answer.
fn deliver_each(tcb: &mut Tcb<Bytes>, now: Instant, segments: &[Segment]) -> Vec<Segment> {
    let mut answers = Vec::new();
    for segment in segments {
        deliver(tcb, now, segment);
        answers.extend(drain(tcb, now));
    }
    answers
}

fn retransmissions(segments: &[Segment]) -> Vec<SeqNumber> {
    segments
        .iter()
        .filter(|s| s.is_retransmission)
        .map(|s| s.repr.seq)
        .collect()
}

#[test]
fn sacked_segments_are_never_sent_again_and_the_holes_are() {
    let mut pair = Pair::new();
    let (segments, acks) = ten_segments_with_holes(&mut pair, &[0, 4]);
    assert!(
        acks.iter()
            .any(|ack| !ack.repr.options.sack_blocks.is_empty()),
        "the receiver reports what it holds"
    );
    let sent = deliver_each(&mut pair.client, pair.now, &acks);
    // A full RTT has passed since the holes were sent: RACK marks both lost at once.
    assert_eq!(
        retransmissions(&sent),
        [segments[0].repr.seq, segments[4].repr.seq],
        "exactly the two holes, in order"
    );
    assert_eq!(pair.client.counters().rack_lost_segments, 2);
    assert_eq!(pair.client.counters().fast_retransmits, 1, "one recovery");
    for retransmission in sent.iter().filter(|s| s.is_retransmission) {
        deliver(&mut pair.server, pair.now, retransmission);
    }
    let acks = drain(&mut pair.server, pair.now);
    deliver(&mut pair.client, pair.now, acks.last().unwrap());
    assert!(pair.client.all_sent_acknowledged());
    assert_eq!(pair.client.counters().rto_expirations, 0);
    let mut got = Vec::new();
    read_all(&mut pair.server, &mut got);
    assert!(got == pattern(10 * 988, 31));
}

#[test]
fn a_reordered_segment_within_the_reordering_window_is_not_sent_again() {
    let mut pair = Pair::new();
    // Segment 0 is held back, not lost: the SACK of segment 1 comes back a round trip later.
    // With one segment SACKed (below DupThresh) and no recovery, RACK waits a reordering
    // window (min RTT / 4) beyond its RTT before it calls segment 0 lost (RFC 8985 6.2), and
    // the held-back segment arrives within it.
    pair.client
        .send(Bytes::from(pattern(10 * 988, 32)))
        .unwrap();
    let segments = drain(&mut pair.client, pair.now);
    pair.now = pair.now + HOP;
    let mut acks = Vec::new();
    for segment in &segments[1..] {
        deliver(&mut pair.server, pair.now, segment);
        acks.extend(drain(&mut pair.server, pair.now));
    }
    pair.now = pair.now + HOP;
    // Only the first SACK arrives: one segment SACKed, below DupThresh, no recovery yet.
    deliver(&mut pair.client, pair.now, &acks[0]);
    assert!(retransmissions(&drain(&mut pair.client, pair.now)).is_empty());
    assert_eq!(pair.client.counters().rack_lost_segments, 0);
    let deadline = pair.client.poll_timeout().unwrap();
    assert!(
        deadline > pair.now,
        "the reordering timer waits beyond RACK's RTT"
    );
    // The held-back segment arrives before the timer: nothing is lost.
    deliver(&mut pair.server, pair.now, &segments[0]);
    let ack = drain(&mut pair.server, pair.now);
    deliver(&mut pair.client, pair.now, ack.last().unwrap());
    pair.now = deadline;
    pair.client.handle_timeout(pair.now);
    assert!(retransmissions(&drain(&mut pair.client, pair.now)).is_empty());
    assert!(pair.client.all_sent_acknowledged());
    assert_eq!(pair.client.counters().rack_lost_segments, 0);
    assert_eq!(pair.client.counters().retransmissions, 0);
}

#[test]
fn sack_blocks_outside_what_was_sent_are_counted_and_ignored() {
    let mut pair = Pair::new();
    let (segments, acks) = ten_segments_with_holes(&mut pair, &[0]);
    let mut ack = acks.last().unwrap().clone();
    let snd_max = segments[9].repr.seq + 988;
    let mut blocks = SackBlocks::default();
    // Reversed, empty, and beyond SND.MAX: each ignored and counted.
    blocks.push(segments[5].repr.seq, segments[3].repr.seq);
    blocks.push(segments[2].repr.seq, segments[2].repr.seq);
    blocks.push(snd_max, snd_max + 5000);
    ack.repr.options.sack_blocks = blocks;
    deliver(&mut pair.client, pair.now, &ack);
    assert_eq!(pair.client.counters().sack_blocks_invalid, 3);
    // Nothing was SACKed by them, so nothing is judged lost.
    assert!(retransmissions(&drain(&mut pair.client, pair.now)).is_empty());
    assert_eq!(pair.client.counters().rack_lost_segments, 0);
    // The genuine ACKs still work.
    for ack in &acks {
        deliver(&mut pair.client, pair.now, ack);
    }
    assert_eq!(
        retransmissions(&drain(&mut pair.client, pair.now)),
        [segments[0].repr.seq]
    );
}

#[test]
fn a_dsack_is_counted_and_widens_the_reordering_window() {
    let mut pair = Pair::new();
    let (segments, acks) = ten_segments_with_holes(&mut pair, &[]);
    for ack in &acks {
        deliver(&mut pair.client, pair.now, ack);
    }
    assert!(pair.client.all_sent_acknowledged());
    // RFC 2883: the peer reports segment 3 received twice, below the cumulative ACK.
    let mut dsack = acks.last().unwrap().clone();
    let mut blocks = SackBlocks::default();
    blocks.push(segments[3].repr.seq, segments[3].repr.seq + 988);
    dsack.repr.options.sack_blocks = blocks;
    deliver(&mut pair.client, pair.now, &dsack);
    assert_eq!(pair.client.counters().dsacks_received, 1);
    assert_eq!(pair.client.counters().sack_blocks_invalid, 0);
    assert!(pair.client.recovery.reordering_seen);
}

/// A D-SACK for `segment` (988 bytes), carried on a copy of `ack`.
fn dsack_for(ack: &Segment, segment: &Segment) -> Segment {
    let mut dsack = ack.clone();
    let mut blocks = SackBlocks::default();
    blocks.push(segment.repr.seq, segment.repr.seq + 988);
    dsack.repr.options.sack_blocks = blocks;
    dsack
}

#[test]
fn the_reordering_window_widens_once_per_round_trip_of_dsacks_for_sixteen_recoveries() {
    // RFC 8985 section 6.2 step 4: RACK.reo_wnd_incr grows at most once per round trip. Three
    // spurious retransmissions reported in one round were once three widenings.
    let mut pair = Pair::new();
    let (segments, acks) = ten_segments_with_holes(&mut pair, &[]);
    for ack in &acks {
        deliver(&mut pair.client, pair.now, ack);
    }
    let last_ack = acks.last().unwrap();
    for index in [3, 4, 5] {
        deliver(
            &mut pair.client,
            pair.now,
            &dsack_for(last_ack, &segments[index]),
        );
    }
    assert_eq!(pair.client.counters().dsacks_received, 3);
    assert_eq!(pair.client.recovery.reordering_window_multiplier, 2);

    // A round later (new data sent and acknowledged past SND.MAX of the first widening),
    // the next D-SACK widens it again.
    pair.client.send(Bytes::from(pattern(988, 32))).unwrap();
    let more = drain(&mut pair.client, pair.now);
    assert_eq!(more.len(), 1);
    deliver(&mut pair.server, pair.now, &more[0]);
    let more_acks = drain(&mut pair.server, pair.now);
    deliver(&mut pair.client, pair.now, more_acks.last().unwrap());
    assert!(pair.client.all_sent_acknowledged());
    deliver(
        &mut pair.client,
        pair.now,
        &dsack_for(more_acks.last().unwrap(), &more[0]),
    );
    assert_eq!(pair.client.counters().dsacks_received, 4);
    assert_eq!(pair.client.recovery.reordering_window_multiplier, 3);

    // Sixteen loss recoveries without a D-SACK later, it starts from a quarter again.
    for _ in 0..15 {
        pair.client.end_loss_recovery();
    }
    assert_eq!(pair.client.recovery.reordering_window_multiplier, 3);
    pair.client.end_loss_recovery();
    assert_eq!(pair.client.recovery.reordering_window_multiplier, 0);
}

#[test]
fn without_sack_nothing_of_the_scoreboard_runs() {
    let mut pair = Pair::without_sack();
    let (_, acks) = ten_segments_with_holes(&mut pair, &[0]);
    assert!(acks
        .iter()
        .all(|ack| ack.repr.options.sack_blocks.is_empty()));
    for ack in &acks {
        deliver(&mut pair.client, pair.now, ack);
        drain(&mut pair.client, pair.now);
    }
    // Duplicate ACKs and NewReno did it.
    assert_eq!(pair.client.counters().fast_retransmits, 1);
    assert_eq!(pair.client.counters().rack_lost_segments, 0);
    assert_eq!(pair.client.counters().tlp_probes, 0);
}

#[test]
fn an_unanswered_flight_gets_one_probe_then_the_timer() {
    // RFC 8985 section 7: every ACK of a flight is lost. The probe timeout (two SRTTs, at
    // most the retransmission timer) sends the last segment again, once; the retransmission
    // timer then runs on from the probe and fires as before.
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(3 * 988, 33))).unwrap();
    let flight = drain(&mut pair.client, pair.now);
    assert_eq!(flight.len(), 3);
    let probe_at = pair.client.poll_timeout().unwrap();
    pair.now = probe_at;
    pair.client.handle_timeout(pair.now);
    let probe = drain(&mut pair.client, pair.now);
    assert_eq!(probe.len(), 1, "one probe");
    assert_eq!(
        probe[0].repr.seq, flight[2].repr.seq,
        "the last segment again"
    );
    assert_eq!(pair.client.counters().tlp_probes, 1);
    assert_eq!(pair.client.counters().rto_expirations, 0);
    // No second probe: the next deadline is the retransmission timer, from the probe on.
    let rto_at = pair.client.poll_timeout().unwrap();
    assert!(rto_at > probe_at);
    pair.now = rto_at;
    pair.client.handle_timeout(pair.now);
    let resent = drain(&mut pair.client, pair.now);
    assert_eq!(pair.client.counters().rto_expirations, 1);
    assert_eq!(pair.client.counters().tlp_probes, 1);
    assert_eq!(
        resent[0].repr.seq, flight[0].repr.seq,
        "the timer goes back to the start"
    );
}

#[test]
fn a_duplicate_segment_is_reported_with_a_dsack_once() {
    // RFC 2883 section 4: the receiver of a segment wholly below RCV.NXT reports it as the
    // first SACK block of its next ACK; the sender counts it.
    let mut pair = Pair::new();
    let (segments, acks) = ten_segments_with_holes(&mut pair, &[]);
    for ack in &acks {
        deliver(&mut pair.client, pair.now, ack);
    }
    deliver(&mut pair.server, pair.now, &segments[2]);
    let answer = drain(&mut pair.server, pair.now);
    assert_eq!(answer.len(), 1);
    let blocks = answer[0].repr.options.sack_blocks.as_slice();
    assert_eq!(
        blocks,
        [(segments[2].repr.seq, segments[2].repr.seq + 988)],
        "the duplicate, below the cumulative ACK"
    );
    deliver(&mut pair.client, pair.now, &answer[0]);
    assert_eq!(pair.client.counters().dsacks_received, 1);
    // Reported once: a later ACK carries no D-SACK.
    pair.server.request_ack();
    let later = drain(&mut pair.server, pair.now);
    assert!(later
        .iter()
        .all(|ack| ack.repr.options.sack_blocks.is_empty()));
}

#[test]
fn sack_recovery_ends_with_the_window_at_the_threshold() {
    // RFC 6937 section 3 (PRR's end, as Linux): once the recovery point is acknowledged the
    // window is the slow-start threshold, not NewReno's FlightSize + SMSS, which with
    // nothing left in flight would start again from two segments.
    let mut pair = Pair::new();
    let (_, acks) = ten_segments_with_holes(&mut pair, &[0]);
    let sent = deliver_each(&mut pair.client, pair.now, &acks);
    let threshold = pair.client.congestion.slow_start_threshold();
    assert!(pair.client.in_loss_recovery());
    for retransmission in sent.iter().filter(|s| s.is_retransmission) {
        deliver(&mut pair.server, pair.now, retransmission);
    }
    let acks = drain(&mut pair.server, pair.now);
    deliver(&mut pair.client, pair.now, acks.last().unwrap());
    assert!(pair.client.all_sent_acknowledged());
    assert!(!pair.client.in_loss_recovery());
    assert!(threshold > 2 * 988);
    assert_eq!(pair.client.congestion_window(), threshold);
}

#[test]
fn a_tail_sent_before_a_delivered_retransmission_is_lost_by_rack_not_the_timer() {
    // RFC 8985 section 6.2 step 5: segments 0 and 9 are lost. The SACKs of 1-8 show 0 lost;
    // its retransmission is delivered and acknowledged cumulatively. Segment 9 lies above
    // every SACK block, but it was sent before that retransmission and its ACK has not come:
    // RACK calls it lost then, instead of leaving it to the retransmission timer.
    let mut pair = Pair::new();
    let (segments, acks) = ten_segments_with_holes(&mut pair, &[0, 9]);
    let sent = deliver_each(&mut pair.client, pair.now, &acks);
    assert_eq!(retransmissions(&sent), [segments[0].repr.seq]);
    pair.now = pair.now + HOP;
    for retransmission in &sent {
        deliver(&mut pair.server, pair.now, retransmission);
    }
    let acks = drain(&mut pair.server, pair.now);
    assert_eq!(acks.last().unwrap().repr.ack, segments[9].repr.seq);
    pair.now = pair.now + HOP;
    deliver(&mut pair.client, pair.now, acks.last().unwrap());
    let sent = drain(&mut pair.client, pair.now);
    assert_eq!(
        retransmissions(&sent),
        [segments[9].repr.seq],
        "the tail goes again on the ACK of the retransmission"
    );
    assert_eq!(pair.client.counters().rack_lost_segments, 2);
    pair.now = pair.now + HOP;
    deliver(&mut pair.server, pair.now, &sent[0]);
    let acks = drain(&mut pair.server, pair.now);
    pair.now = pair.now + HOP;
    deliver(&mut pair.client, pair.now, acks.last().unwrap());
    assert!(pair.client.all_sent_acknowledged());
    assert_eq!(pair.client.counters().rto_expirations, 0);
    let mut got = Vec::new();
    read_all(&mut pair.server, &mut got);
    assert!(got == pattern(10 * 988, 31));
}

#[test]
fn in_recovery_an_owner_feeding_by_send_room_gets_room_and_a_lost_retransmission_is_found() {
    // An owner that queues only what `send_room` offers (the MPTCP scheduler) must get room in
    // recovery as PRR allows (RFC 6937), although the SACKed bytes above the hole are still
    // unacknowledged: new data after the retransmission is what lets RACK find that the
    // retransmission was lost too (RFC 8985 section 6.2), before the retransmission timer.
    let mut pair = Pair::new();
    let (segments, acks) = ten_segments_with_holes(&mut pair, &[0]);
    let sent = deliver_each(&mut pair.client, pair.now, &acks);
    assert_eq!(retransmissions(&sent), [segments[0].repr.seq]);
    // The retransmission is lost. The owner queues what the TCB has room for.
    let room = pair.client.send_room();
    assert!(room >= 988, "PRR lets new data go in recovery: room {room}");
    let more = pattern(room, 77);
    pair.client.send(Bytes::from(more.clone())).unwrap();
    let new_data = drain(&mut pair.client, pair.now);
    assert!(!new_data.is_empty() && new_data.iter().all(|s| !s.is_retransmission));
    pair.now = pair.now + HOP;
    let acks = deliver_each(&mut pair.server, pair.now, &new_data);
    pair.now = pair.now + HOP;
    let sent = deliver_each(&mut pair.client, pair.now, &acks);
    assert_eq!(
        retransmissions(&sent),
        [segments[0].repr.seq],
        "the lost retransmission goes again once later data is SACKed"
    );
    pair.now = pair.now + HOP;
    for segment in &sent {
        deliver(&mut pair.server, pair.now, segment);
    }
    let acks = drain(&mut pair.server, pair.now);
    pair.now = pair.now + HOP;
    deliver(&mut pair.client, pair.now, acks.last().unwrap());
    assert!(pair.client.all_sent_acknowledged());
    assert_eq!(pair.client.counters().rto_expirations, 0);
    let mut got = Vec::new();
    read_all(&mut pair.server, &mut got);
    let mut expected = pattern(10 * 988, 31);
    expected.extend_from_slice(&more);
    assert!(got == expected);
}
