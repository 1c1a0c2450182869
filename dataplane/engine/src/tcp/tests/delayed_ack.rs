//! Delayed ACKs and quick ACKs (RFC 9293 section 3.8.6.3, RFC 5681 section 4.2, Linux's
//! quick-ACK mode; see `tcp/delayed_ack.rs`).

use super::*;
use crate::tcp::DELAYED_ACK_TIMEOUT;

/// The receive buffer of `tuning()` over twice the initial receive MSS (536): Linux's
/// `tcp_incr_quickack` budget for the first data.
const QUICK_ACKS_AT_START: usize = 16 * 1024 / (2 * 536);

/// The client queues `len` bytes of stream data and sends what it may now.
fn client_sends(pair: &mut Pair, len: usize, salt: u8) -> Vec<Segment> {
    pair.client
        .send(Bytes::from(pattern(len, salt)))
        .expect("room in the send buffer");
    drain(&mut pair.client, pair.now)
}

/// Hands `segments` to the server one hop later and returns what it sends back at once.
fn server_receives(pair: &mut Pair, segments: &[Segment]) -> Vec<Segment> {
    pair.now = pair.now + HOP;
    for segment in segments {
        deliver(&mut pair.server, pair.now, segment);
    }
    drain(&mut pair.server, pair.now)
}

/// Delivers the server's segments to the client one hop later.
fn client_receives(pair: &mut Pair, segments: &[Segment]) {
    pair.now = pair.now + HOP;
    for segment in segments {
        deliver(&mut pair.client, pair.now, segment);
    }
}

/// One full segment's worth of payload from the client (its MSS less the timestamps).
fn full(pair: &Pair) -> usize {
    pair.client.max_payload_per_segment()
}

/// Sends lone full segments until one is not acknowledged at once; returns how many were (the
/// quick ACKs), leaving the connection out of quick-ACK mode with nothing unacknowledged.
fn leave_quick_ack_mode(pair: &mut Pair) -> usize {
    let mut quick = 0;
    let mut received = Vec::new();
    loop {
        let segment_len = full(pair);
        let segments = client_sends(pair, segment_len, quick as u8);
        assert_eq!(segments.len(), 1);
        let acks = server_receives(pair, &segments);
        read_all(&mut pair.server, &mut received);
        if acks.is_empty() {
            // Out of quick-ACK mode: the delayed ACK settles it.
            pair.advance(DELAYED_ACK_TIMEOUT);
            let acks = drain(&mut pair.server, pair.now);
            assert_eq!(acks.len(), 1);
            client_receives(pair, &acks);
            return quick;
        }
        assert_eq!(acks.len(), 1, "one ACK per segment in quick-ACK mode");
        assert!(is_pure_ack(&acks[0]));
        client_receives(pair, &acks);
        quick += 1;
        assert!(quick < 100, "quick-ACK mode never ends");
    }
}

#[test]
fn the_first_segments_are_acknowledged_one_by_one_as_in_linux_quick_ack_mode() {
    let mut pair = Pair::new();
    assert_eq!(leave_quick_ack_mode(&mut pair), QUICK_ACKS_AT_START);
    assert_eq!(pair.server.counters().delayed_acks, 1);
}

#[test]
fn one_full_segment_is_acknowledged_by_the_timer_and_not_before() {
    let mut pair = Pair::new();
    leave_quick_ack_mode(&mut pair);
    let before = pair.server.counters().delayed_acks;
    let segment_len = full(&pair);
    let segments = client_sends(&mut pair, segment_len, 1);
    let arrived = pair.now + HOP;
    assert!(server_receives(&mut pair, &segments).is_empty());
    assert_eq!(
        pair.server.poll_timeout(),
        Some(arrived + DELAYED_ACK_TIMEOUT)
    );
    pair.advance(DELAYED_ACK_TIMEOUT - Duration::from_millis(1));
    assert!(drain(&mut pair.server, pair.now).is_empty());
    pair.advance(Duration::from_millis(1));
    let acks = drain(&mut pair.server, pair.now);
    assert_eq!(acks.len(), 1);
    assert!(is_pure_ack(&acks[0]));
    assert_eq!(acks[0].repr.ack, pair.server.receive_next());
    assert_eq!(pair.server.counters().delayed_acks, before + 1);
}

#[test]
fn every_second_full_segment_is_acknowledged_at_once() {
    let mut pair = Pair::new();
    leave_quick_ack_mode(&mut pair);
    let before = pair.server.counters().delayed_acks;
    let len = 2 * full(&pair);
    let segments = client_sends(&mut pair, len, 2);
    assert_eq!(segments.len(), 2);
    // The first alone waits ...
    assert!(server_receives(&mut pair, &segments[..1]).is_empty());
    // ... the second brings one ACK for both, and no timer is left for it.
    let acks = server_receives(&mut pair, &segments[1..]);
    assert_eq!(acks.len(), 1);
    assert!(is_pure_ack(&acks[0]));
    assert_eq!(acks[0].repr.ack, pair.server.receive_next());
    assert_eq!(pair.server.poll_timeout(), None);
    assert_eq!(pair.server.counters().delayed_acks, before);
}

#[test]
fn out_of_order_data_is_acknowledged_at_once_with_sack_and_so_is_the_filled_gap() {
    let mut pair = Pair::new();
    leave_quick_ack_mode(&mut pair);
    let len = 3 * full(&pair);
    let segments = client_sends(&mut pair, len, 3);
    assert_eq!(segments.len(), 3);
    let expected = pair.server.receive_next();
    // The first is lost: each of the other two brings a duplicate ACK with a SACK block.
    for (index, segment) in segments[1..].iter().enumerate() {
        let acks = server_receives(&mut pair, core::slice::from_ref(segment));
        assert_eq!(acks.len(), 1, "segment {index} beyond the gap");
        assert_eq!(acks[0].repr.ack, expected);
        let blocks = acks[0].repr.options.sack_blocks.as_slice();
        let right = segment.repr.seq + payload_len(segment) as u32;
        assert_eq!(blocks.first(), Some(&(segments[1].repr.seq, right)));
    }
    // The retransmission that fills the gap: acknowledged at once, everything.
    let acks = server_receives(&mut pair, &segments[..1]);
    assert_eq!(acks.len(), 1);
    let end = segments[2].repr.seq + payload_len(&segments[2]) as u32;
    assert_eq!(acks[0].repr.ack, end);
    assert!(acks[0].repr.options.sack_blocks.is_empty());
}

#[test]
fn a_short_pushed_segment_is_acknowledged_once_the_owner_has_read_it() {
    let mut pair = Pair::new();
    leave_quick_ack_mode(&mut pair);
    let segments = client_sends(&mut pair, 100, 4);
    assert!(segments[0].repr.flags.contains(TcpFlags::PSH));
    assert!(server_receives(&mut pair, &segments).is_empty());
    let mut received = Vec::new();
    read_all(&mut pair.server, &mut received);
    assert_eq!(received.len(), 100);
    let acks = drain(&mut pair.server, pair.now);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].repr.ack, pair.server.receive_next());
}

#[test]
fn a_short_segment_nobody_reads_waits_for_the_timer() {
    let mut pair = Pair::new();
    leave_quick_ack_mode(&mut pair);
    let before = pair.server.counters().delayed_acks;
    let segments = client_sends(&mut pair, 100, 5);
    assert!(server_receives(&mut pair, &segments).is_empty());
    pair.advance(DELAYED_ACK_TIMEOUT);
    assert_eq!(drain(&mut pair.server, pair.now).len(), 1);
    assert_eq!(pair.server.counters().delayed_acks, before + 1);
}

#[test]
fn data_after_a_silence_longer_than_the_rto_enters_quick_ack_mode_again() {
    let mut pair = Pair::new();
    leave_quick_ack_mode(&mut pair);
    // Well past the server's RTO (200 ms minimum here).
    pair.advance(Duration::from_secs(2));
    let segment_len = full(&pair);
    let segments = client_sends(&mut pair, segment_len, 6);
    let acks = server_receives(&mut pair, &segments);
    assert_eq!(acks.len(), 1, "quick ACK after the silence");
}

#[test]
fn a_closed_window_that_opens_is_announced_at_once() {
    let mut pair = Pair::new();
    leave_quick_ack_mode(&mut pair);
    // The server's owner reads nothing until its buffer (16 KiB) is full.
    let data = Bytes::from(pattern(16 * 1024, 7));
    let mut sent = 0;
    feed(&mut pair.client, &data, &mut sent);
    for _ in 0..20 {
        pair.pump(|_, _| true);
        if pair.server.received_buffered() == data.len() {
            break;
        }
        pair.advance_to_next_timeout();
    }
    assert_eq!(pair.server.received_buffered(), data.len());
    let closed = pair
        .log
        .iter()
        .rev()
        .find(|(dir, _)| *dir == Dir::ToClient)
        .expect("the server's last ACK")
        .1
        .repr
        .window;
    assert_eq!(closed, 0);
    // Reading two segments' worth opens it by more than an MSS: announced at once.
    let mut received = Vec::new();
    while received.len() < 2 * usize::from(MSS) {
        received.extend_from_slice(&pair.server.recv().expect("data").payload);
    }
    let acks = drain(&mut pair.server, pair.now);
    assert_eq!(acks.len(), 1);
    assert!(acks[0].repr.window > 0);
}

#[test]
fn a_window_opening_while_the_peer_may_still_send_most_of_the_buffer_waits() {
    let mut pair = Pair::new();
    leave_quick_ack_mode(&mut pair);
    let len = 2 * full(&pair);
    let segments = client_sends(&mut pair, len, 8);
    let acks = server_receives(&mut pair, &segments);
    assert_eq!(acks.len(), 1);
    let remaining = usize::from(acks[0].repr.window);
    assert!(remaining > 8 * 1024, "the peer may still send {remaining}");
    // The owner reads both segments: the window opens by more than an MSS, but what the peer
    // may still send is more than half the buffer, so it is not worth an ACK of its own
    // (Linux's __tcp_cleanup_rbuf); it goes with the next one.
    let mut received = Vec::new();
    read_all(&mut pair.server, &mut received);
    assert_eq!(received.len(), len);
    assert!(drain(&mut pair.server, pair.now).is_empty());
    assert_eq!(pair.server.poll_timeout(), None);
}

#[test]
fn the_echoed_timestamp_is_the_earliest_unacknowledged_segments() {
    let mut pair = Pair::new();
    leave_quick_ack_mode(&mut pair);
    let segment_len = full(&pair);
    let first = client_sends(&mut pair, segment_len, 9);
    pair.now = pair.now + Duration::from_millis(7);
    let second = client_sends(&mut pair, segment_len, 10);
    let first_value = first[0].repr.options.timestamps.unwrap().value;
    let second_value = second[0].repr.options.timestamps.unwrap().value;
    assert!(second_value > first_value);
    assert!(server_receives(&mut pair, &first).is_empty());
    let acks = server_receives(&mut pair, &second);
    assert_eq!(acks.len(), 1);
    // RFC 7323 section 4.3: TS.Recent comes from the segment holding Last.ACK.sent.
    assert_eq!(
        acks[0].repr.options.timestamps.unwrap().echo_reply,
        first_value
    );
}
