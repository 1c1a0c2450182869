//! Flow control: windows, slow readers, window updates, silly window avoidance.

use super::*;

#[test]
fn slow_reader_stops_the_sender_and_a_window_update_restarts_it() {
    let mut pair = Pair::new();
    let data = Bytes::from(pattern(100_000, 13));
    let mut sent = 0;
    let mut got = Vec::new();
    feed(&mut pair.client, &data, &mut sent);
    pair.pump(|_, _| true);
    feed(&mut pair.client, &data, &mut sent);
    pair.pump(|_, _| true);
    // The reader reads nothing: the sender fills exactly the 16 KiB window and stops.
    assert_eq!(pair.server.received_buffered(), 16 * 1024);
    let last_ack = pair
        .log
        .iter()
        .rev()
        .find(|(dir, _)| *dir == Dir::ToClient)
        .unwrap();
    assert_eq!(last_ack.1.repr.window, 0);
    assert_eq!(pair.client.send_queued(), 32 * 1024, "send buffer full");
    assert_eq!(pair.client.send_capacity(), 0);

    // The persist timer probes; the probes draw zero-window ACKs; the sender never gives up
    // and the receiver never buffers more than its window.
    let mut probes = 0;
    for _ in 0..25 {
        assert!(pair.advance_to_next_timeout());
        let before = pair.log.len();
        pair.pump(|_, _| true);
        probes += pair.log[before..]
            .iter()
            .filter(|(dir, s)| *dir == Dir::ToServer && payload_len(s) > 0)
            .count();
        assert_eq!(pair.server.received_buffered(), 16 * 1024);
    }
    assert!(probes >= 20, "one probe per persist timeout, got {probes}");
    assert_eq!(pair.client.state(), TcpState::Established);
    assert_eq!(
        pair.client.counters().rto_expirations,
        0,
        "probes are not losses"
    );

    // The reader drains: a window update goes out and the transfer completes.
    read_all(&mut pair.server, &mut got);
    let update = drain(&mut pair.server, pair.now);
    assert_eq!(update.len(), 1, "window update");
    assert!(update[0].repr.window > 0);
    deliver(&mut pair.client, pair.now, &update[0]);
    for _ in 0..1000 {
        feed(&mut pair.client, &data, &mut sent);
        let exchanged = pair.pump(|_, _| true);
        assert!(pair.server.received_buffered() <= 16 * 1024);
        read_all(&mut pair.server, &mut got);
        if got.len() == data.len() {
            break;
        }
        if exchanged == 0 {
            pair.advance_to_next_timeout();
        }
    }
    assert!(got == data[..], "bytes differ after the window reopened");
}

#[test]
fn window_update_is_sent_only_when_the_window_opens_enough() {
    let mut pair = Pair::new();
    pair.client
        .send(Bytes::from(pattern(16 * 1024, 14)))
        .unwrap();
    pair.pump(|_, _| true);
    assert_eq!(pair.server.received_buffered(), 16 * 1024);
    // Reading one small chunk opens less than an MSS: no update (receiver SWS avoidance).
    pair.server.recv().unwrap(); // 988 bytes
    assert!(drain(&mut pair.server, pair.now).is_empty());
    pair.server.recv().unwrap();
    let update = drain(&mut pair.server, pair.now);
    assert_eq!(update.len(), 1);
    assert_eq!(update[0].repr.window, 2 * 988);
}

#[test]
fn acknowledgements_stay_acceptable_while_a_zero_window_probe_is_out() {
    // The client's window probe is one byte beyond the server's closed window. The server
    // then sends data: the client's ACK of it must lie within the server's window (at its
    // RCV.NXT), or the server (like Linux's tcp_sequence) drops it and never learns that
    // its data arrived.
    let mut pair = Pair::new();
    let data = Bytes::from(pattern(100_000, 14));
    let mut sent = 0;
    feed(&mut pair.client, &data, &mut sent);
    pair.pump(|_, _| true);
    feed(&mut pair.client, &data, &mut sent);
    pair.pump(|_, _| true);
    assert_eq!(pair.server.received_buffered(), 16 * 1024);
    assert!(pair.advance_to_next_timeout());
    let probes = drain(&mut pair.client, pair.now);
    assert!(
        probes.iter().any(|s| payload_len(s) == 1),
        "a one-byte probe"
    );
    pair.server.send(Bytes::from(pattern(1000, 15))).unwrap();
    for segment in drain(&mut pair.server, pair.now) {
        deliver(&mut pair.client, pair.now, &segment);
    }
    let mut acks = drain(&mut pair.client, pair.now);
    if acks.is_empty() {
        assert!(pair.advance_to_next_timeout());
        acks = drain(&mut pair.client, pair.now);
    }
    assert!(!acks.is_empty());
    let dropped_before = pair.server.counters().out_of_window;
    for ack in &acks {
        deliver(&mut pair.server, pair.now, ack);
    }
    assert_eq!(pair.server.counters().out_of_window, dropped_before);
    assert!(pair.server.all_sent_acknowledged());
}
