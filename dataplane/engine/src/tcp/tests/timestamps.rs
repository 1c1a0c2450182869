//! Timestamps (RFC 7323): PAWS drops old duplicates; TS.Recent follows the left edge.

use super::*;

/// A data segment from the client with its timestamp value replaced by `value`.
fn with_timestamp(segment: &Segment, value: u32) -> Segment {
    let mut segment = segment.clone();
    let timestamps = segment
        .repr
        .options
        .timestamps
        .as_mut()
        .expect("timestamps in use");
    timestamps.value = value;
    segment
}

#[test]
fn a_segment_with_an_older_timestamp_is_dropped_and_acknowledged() {
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(2 * 988, 41))).unwrap();
    let segments = drain(&mut pair.client, pair.now);
    assert_eq!(segments.len(), 2);
    let first_ts = segments[0].repr.options.timestamps.unwrap().value;
    deliver(&mut pair.server, pair.now, &segments[0]);
    drain(&mut pair.server, pair.now);
    // The second segment carries a timestamp older than the first (an old duplicate from an
    // earlier wrap of the sequence space would): dropped, counted, answered with an ACK.
    let old = with_timestamp(&segments[1], first_ts.wrapping_sub(1000));
    deliver(&mut pair.server, pair.now, &old);
    assert_eq!(pair.server.counters().paws_rejected, 1);
    let answer = drain(&mut pair.server, pair.now);
    assert_eq!(answer.len(), 1);
    assert_eq!(
        answer[0].repr.ack, segments[1].repr.seq,
        "the dropped segment's bytes are not acknowledged"
    );
    // The genuine segment is taken.
    deliver(&mut pair.server, pair.now, &segments[1]);
    let mut got = Vec::new();
    read_all(&mut pair.server, &mut got);
    assert!(got == pattern(2 * 988, 41));
    assert_eq!(pair.server.counters().paws_rejected, 1);
}

#[test]
fn timestamps_compare_modulo_two_to_the_thirty_second() {
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(2 * 988, 42))).unwrap();
    let segments = drain(&mut pair.client, pair.now);
    // Two steps of almost half the space each: the second value is numerically below the
    // handshake's, past the wrap, and still newer than TS.Recent, so it is accepted.
    let start = segments[0].repr.options.timestamps.unwrap().value;
    let first = start.wrapping_add(0x7fff_ff00);
    let second = first.wrapping_add(0x7fff_ff00);
    assert!(second < start, "the second value wrapped");
    deliver(
        &mut pair.server,
        pair.now,
        &with_timestamp(&segments[0], first),
    );
    drain(&mut pair.server, pair.now);
    deliver(
        &mut pair.server,
        pair.now,
        &with_timestamp(&segments[1], second),
    );
    assert_eq!(pair.server.counters().paws_rejected, 0);
    let mut got = Vec::new();
    read_all(&mut pair.server, &mut got);
    assert_eq!(got.len(), 2 * 988);
}

#[test]
fn a_reset_with_an_old_timestamp_is_left_to_the_exact_match_rule() {
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(988, 43))).unwrap();
    let segments = drain(&mut pair.client, pair.now);
    deliver(&mut pair.server, pair.now, &segments[0]);
    drain(&mut pair.server, pair.now);
    let mut reset = with_timestamp(&segments[0], 1);
    reset.repr.flags = TcpFlags::RST;
    reset.repr.seq = pair.server.receive_next();
    reset.payload = None;
    deliver(&mut pair.server, pair.now, &reset);
    assert_eq!(pair.server.counters().paws_rejected, 0);
    assert_eq!(
        pair.server.state(),
        TcpState::Closed,
        "an exact RST still resets"
    );
}
