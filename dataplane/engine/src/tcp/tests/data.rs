//! Data both ways.

use super::*;

#[test]
fn data_flows_both_ways_byte_exact() {
    let mut pair = Pair::new();
    let up = pattern(200_000, 0x11);
    let down = pattern(150_001, 0x22);
    let (at_server, at_client) = transfer(&mut pair, &up, &down, |_, _| true);
    assert!(at_server == up, "client to server bytes differ");
    assert!(at_client == down, "server to client bytes differ");
    assert_eq!(pair.client.counters().retransmissions, 0);
    assert!(pair.client.all_sent_acknowledged());
    assert!(pair.server.all_sent_acknowledged());
    // Segments never exceed the negotiated payload size.
    let largest = pair.log.iter().map(|(_, s)| payload_len(s)).max().unwrap();
    assert_eq!(largest, usize::from(MSS) - 12);
}

#[test]
fn data_survives_sequence_number_wrap() {
    // CLIENT_ISS is 4096 below 2^32: the client's sequence numbers wrap during the transfer.
    let mut pair = Pair::new();
    let up = pattern(20_000, 0x33);
    let (at_server, _) = transfer(&mut pair, &up, &[], |_, _| true);
    assert!(at_server == up);
    assert!(pair
        .log
        .iter()
        .any(|(dir, s)| *dir == Dir::ToServer && s.repr.seq.0 < 100_000));
}

#[test]
fn relative_sequence_numbers_count_from_one() {
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(2500, 3))).unwrap();
    let segments = drain(&mut pair.client, pair.now);
    let relative: Vec<u32> = segments.iter().map(|s| s.relative_seq).collect();
    assert_eq!(relative, vec![1, 989, 1977]);
    for segment in &segments {
        deliver(&mut pair.server, pair.now, segment);
    }
    let first = pair.server.recv().unwrap();
    assert_eq!(first.subflow_seq, 1);
    let second = pair.server.recv().unwrap();
    assert_eq!(second.subflow_seq, 989);
}
