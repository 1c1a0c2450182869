//! Undoing a congestion reduction that D-SACKs show needless (RFC 2883 section 5; Linux's
//! `tcp_try_undo_dsack`).

use mpterm_wire::tcp::SackBlocks;

use super::*;

/// Ten full segments from the client; the first is held back by the network (`held_back`,
/// delivered later) or lost. The rest reach the server and its SACKs reach the client, which
/// marks the first lost and sends it again. Returns the first segment, its retransmission and
/// the window before the reduction.
fn recovery_of_the_first_segment(pair: &mut Pair) -> (Segment, Segment, u32) {
    pair.client
        .send(Bytes::from(pattern(10 * 988, 41)))
        .unwrap();
    let segments = drain(&mut pair.client, pair.now);
    assert_eq!(segments.len(), 10);
    let window_before = pair.client.congestion_window();
    pair.now = pair.now + HOP;
    let mut acks = Vec::new();
    for segment in &segments[1..] {
        deliver(&mut pair.server, pair.now, segment);
        acks.extend(drain(&mut pair.server, pair.now));
    }
    pair.now = pair.now + HOP;
    let mut sent = Vec::new();
    for ack in &acks {
        deliver(&mut pair.client, pair.now, ack);
        sent.extend(drain(&mut pair.client, pair.now));
    }
    let retransmission = sent
        .into_iter()
        .find(|segment| segment.is_retransmission)
        .expect("RACK sends the first segment again");
    assert_eq!(retransmission.repr.seq, segments[0].repr.seq);
    assert!(
        pair.client.congestion_window() < window_before,
        "the recovery reduced the window"
    );
    (segments[0].clone(), retransmission, window_before)
}

#[test]
fn a_reduction_whose_only_retransmission_was_needless_is_undone() {
    let mut pair = Pair::new();
    let (original, retransmission, window_before) = recovery_of_the_first_segment(&mut pair);
    // The held-back original arrives, then the retransmission: the server reports the second
    // copy as a D-SACK.
    pair.now = pair.now + HOP;
    deliver(&mut pair.server, pair.now, &original);
    let mut acks = drain(&mut pair.server, pair.now);
    deliver(&mut pair.server, pair.now, &retransmission);
    acks.extend(drain(&mut pair.server, pair.now));
    pair.now = pair.now + HOP;
    for ack in &acks {
        deliver(&mut pair.client, pair.now, ack);
    }
    assert_eq!(pair.client.counters().dsacks_received, 1);
    assert_eq!(pair.client.counters().spurious_reductions_undone, 1);
    assert_eq!(pair.client.congestion_window(), window_before);
    assert!(pair.client.all_sent_acknowledged());
}

#[test]
fn a_reduction_for_a_real_loss_is_kept_and_a_network_duplicate_does_not_undo_it() {
    let mut pair = Pair::new();
    let (original, retransmission, window_before) = recovery_of_the_first_segment(&mut pair);
    // The original was lost: only the retransmission arrives, and no D-SACK comes.
    pair.now = pair.now + HOP;
    deliver(&mut pair.server, pair.now, &retransmission);
    let acks = drain(&mut pair.server, pair.now);
    pair.now = pair.now + HOP;
    for ack in &acks {
        deliver(&mut pair.client, pair.now, ack);
    }
    assert!(pair.client.all_sent_acknowledged());
    let reduced = pair.client.congestion_window();
    assert!(reduced < window_before);
    // A D-SACK of a segment never sent twice (the network duplicated it) reports nothing
    // about the retransmission.
    let mut duplicate = acks.last().unwrap().clone();
    let mut blocks = SackBlocks::default();
    blocks.push(original.repr.seq + 5 * 988, original.repr.seq + 6 * 988);
    duplicate.repr.options.sack_blocks = blocks;
    deliver(&mut pair.client, pair.now, &duplicate);
    assert_eq!(pair.client.counters().dsacks_received, 1);
    assert_eq!(pair.client.counters().spurious_reductions_undone, 0);
    assert_eq!(pair.client.congestion_window(), reduced);
}
