//! Path MTU reports (RFC 1191, RFC 8201) applied to a connection: validation against what is
//! in flight, the units that no longer fit sent again in pieces, new data at the new size.

use super::super::IcmpRejection;
use super::*;

/// The payload of one segment with timestamps at MSS 1000.
const FULL: usize = 988;

/// Five full segments leave the client and are lost (the router that reports the smaller MTU
/// dropped them); the client learns an MSS of 600 from an ICMP error quoting the first.
fn five_lost_then_lowered(pair: &mut Pair) -> Vec<Segment> {
    pair.client.send(Bytes::from(pattern(5 * FULL, 3))).unwrap();
    let lost = drain(&mut pair.client, pair.now);
    assert_eq!(lost.len(), 5);
    assert_eq!(
        pair.client.lower_path_mss(lost[0].repr.seq, 600),
        Ok(()),
        "the quoted segment is in flight"
    );
    assert_eq!(pair.client.send_mss(), 600);
    assert_eq!(pair.client.path_mss(), Some(600));
    lost
}

fn lowered_path_is_repaired_in_pieces(mut pair: Pair) {
    let lost = five_lost_then_lowered(&mut pair);
    let resent = drain(&mut pair.client, pair.now);
    // Each unit of 988 goes again at once as 588 + 400 (600 less 12 bytes of timestamps),
    // before anything else and without waiting for a timeout (Linux's tcp_simple_retransmit).
    assert_eq!(resent.len(), 10, "two pieces per unit");
    for (index, piece) in resent.iter().enumerate() {
        let unit = &lost[index / 2];
        assert!(piece.is_retransmission);
        let expected = if index % 2 == 0 { 588 } else { 400 };
        assert_eq!(payload_len(piece), expected);
        assert!(piece.repr.header_len() - 20 + payload_len(piece) <= 600);
        let whole = piece.split_from.as_ref().expect("a piece names its unit");
        assert_eq!(whole.relative_seq, unit.relative_seq);
        assert_eq!(whole.payload, unit.payload.clone().unwrap());
    }
    assert_eq!(pair.client.counters().rto_expirations, 0);
    // New data is cut at the new size and names no unit.
    pair.client.send(Bytes::from(pattern(2 * FULL, 9))).unwrap();
    let fresh = drain(&mut pair.client, pair.now);
    assert!(!fresh.is_empty());
    for segment in &fresh {
        assert!(!segment.is_retransmission);
        assert!(payload_len(segment) <= 588);
        assert!(segment.split_from.is_none());
    }
    // Everything arrives, in order, byte for byte.
    pair.now = pair.now + HOP;
    for segment in resent.iter().chain(&fresh) {
        deliver(&mut pair.server, pair.now, segment);
    }
    pair.pump(|_, _| true);
    let mut received = Vec::new();
    read_all(&mut pair.server, &mut received);
    let mut expected = pattern(5 * FULL, 3);
    expected.extend(pattern(2 * FULL, 9));
    assert_eq!(received, expected);
    assert_eq!(pair.client.send_queued(), 0, "all acknowledged");
}

#[test]
fn a_smaller_path_mtu_resends_what_no_longer_fits_in_pieces_and_new_data_fits() {
    lowered_path_is_repaired_in_pieces(Pair::new());
}

#[test]
fn without_sack_the_pieces_go_the_same_way() {
    lowered_path_is_repaired_in_pieces(Pair::without_sack());
}

#[test]
fn a_piece_lost_again_is_sent_again_alone_and_still_names_its_unit() {
    let mut pair = Pair::new();
    let lost = five_lost_then_lowered(&mut pair);
    let resent = drain(&mut pair.client, pair.now);
    pair.now = pair.now + HOP;
    // The first piece of the second unit is lost again; the rest arrives and is SACKed.
    for (index, piece) in resent.iter().enumerate() {
        if index != 2 {
            deliver(&mut pair.server, pair.now, piece);
        }
    }
    let acks = drain(&mut pair.server, pair.now);
    pair.now = pair.now + HOP + HOP;
    let mut again = Vec::new();
    for ack in &acks {
        deliver(&mut pair.client, pair.now, ack);
        again.extend(drain(&mut pair.client, pair.now));
    }
    while again.iter().all(|s| !s.is_retransmission) && pair.advance_to_next_timeout() {
        again.extend(drain(&mut pair.client, pair.now));
    }
    let retransmitted: Vec<_> = again.iter().filter(|s| s.is_retransmission).collect();
    assert_eq!(retransmitted[0].repr.seq, resent[2].repr.seq);
    assert_eq!(payload_len(retransmitted[0]), 588);
    let whole = retransmitted[0].split_from.as_ref().unwrap();
    assert_eq!(whole.relative_seq, lost[1].relative_seq);
    assert_eq!(whole.payload.len(), FULL);
}

#[test]
fn reports_about_no_data_in_flight_or_no_smaller_mtu_change_nothing() {
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(3 * FULL, 5))).unwrap();
    let sent = drain(&mut pair.client, pair.now);
    let first = sent[0].repr.seq;
    let after_last = first + (3 * FULL) as u32;
    // RFC 5927 section 4.1: SND.UNA..=SND.MAX only.
    assert_eq!(
        pair.client.lower_path_mss(first - 1, 600),
        Err(IcmpRejection::SequenceOutsideWindow)
    );
    assert_eq!(
        pair.client.lower_path_mss(after_last + 1, 600),
        Err(IcmpRejection::SequenceOutsideWindow)
    );
    assert!(pair.client.quotes_data_in_flight(after_last));
    assert_eq!(
        pair.client.lower_path_mss(first, 1000),
        Err(IcmpRejection::NotSmaller),
        "an MTU equal to the one in use"
    );
    assert_eq!(
        pair.client.lower_path_mss(first, 1400),
        Err(IcmpRejection::NotSmaller),
        "never raised by a report"
    );
    assert_eq!(pair.client.send_mss(), 1000);
    assert_eq!(pair.client.path_mss(), None);
    assert!(
        drain(&mut pair.client, pair.now).is_empty(),
        "nothing resent"
    );
    // Once everything is acknowledged nothing is in flight to be about.
    pair.now = pair.now + HOP;
    for segment in &sent {
        deliver(&mut pair.server, pair.now, segment);
    }
    pair.pump(|_, _| true);
    assert_eq!(
        pair.client.lower_path_mss(first, 600),
        Err(IcmpRejection::SequenceOutsideWindow)
    );
}
