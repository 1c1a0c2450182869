//! Reordering, duplicates and SACK.

use super::*;

#[test]
fn out_of_order_segments_are_held_and_sacked() {
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(4 * 988, 7))).unwrap();
    let segments = drain(&mut pair.client, pair.now);
    assert_eq!(segments.len(), 4);
    let base = CLIENT_ISS + 1;
    // Segment 1 is lost; 2 and 3 arrive, then 0.
    deliver(&mut pair.server, pair.now, &segments[2]);
    let ack = drain(&mut pair.server, pair.now);
    assert_eq!(ack.len(), 1, "out-of-order data is acknowledged at once");
    assert_eq!(ack[0].repr.ack, base);
    assert_eq!(
        ack[0].repr.options.sack_blocks.as_slice(),
        &[(base + 2 * 988, base + 3 * 988)]
    );
    deliver(&mut pair.server, pair.now, &segments[0]);
    let ack = drain(&mut pair.server, pair.now);
    assert_eq!(ack[0].repr.ack, base + 988);
    assert_eq!(
        ack[0].repr.options.sack_blocks.as_slice(),
        &[(base + 2 * 988, base + 3 * 988)]
    );
    deliver(&mut pair.server, pair.now, &segments[3]);
    let ack = drain(&mut pair.server, pair.now);
    assert_eq!(
        ack[0].repr.options.sack_blocks.as_slice(),
        &[(base + 2 * 988, base + 4 * 988)],
        "adjacent blocks merge"
    );
    assert_eq!(pair.server.received_buffered(), 3 * 988);
    let mut got = Vec::new();
    read_all(&mut pair.server, &mut got);
    assert_eq!(got.len(), 988, "only in-order data is readable");
    deliver(&mut pair.server, pair.now, &segments[1]);
    let ack = drain(&mut pair.server, pair.now);
    assert_eq!(ack[0].repr.ack, base + 4 * 988);
    assert!(ack[0].repr.options.sack_blocks.is_empty());
    read_all(&mut pair.server, &mut got);
    assert!(got == pattern(4 * 988, 7));
}

#[test]
fn data_segments_carry_only_the_sack_blocks_that_fit_in_the_mss() {
    // Found by the engine fuzz target: a full-sized data segment sent while out-of-order data
    // was held carried timestamps and SACK blocks on top of a full MSS of payload, beyond the
    // MTU. RFC 9293 section 3.7.1: the data and the options sent together fit the MSS.
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(3 * 988, 3))).unwrap();
    let segments = drain(&mut pair.client, pair.now);
    deliver(&mut pair.server, pair.now, &segments[2]);
    drain(&mut pair.server, pair.now);
    // The server now holds a gap; its data segments to the client offer SACK blocks.
    pair.server
        .send(Bytes::from(pattern(988 + 500, 4)))
        .unwrap();
    let out = drain(&mut pair.server, pair.now);
    let with_data: Vec<_> = out.iter().filter(|s| payload_len(s) > 0).collect();
    assert_eq!(with_data.len(), 2);
    for segment in &with_data {
        let options = segment.repr.options.encoded_len();
        assert!(
            payload_len(segment) + options <= usize::from(MSS),
            "{} bytes of data and {options} of options exceed the MSS",
            payload_len(segment)
        );
    }
    assert!(
        with_data[0].repr.options.sack_blocks.is_empty(),
        "a full segment has no room for a block"
    );
    assert_eq!(
        with_data[1].repr.options.sack_blocks.len(),
        1,
        "a short one carries it"
    );
}

#[test]
fn first_sack_block_reports_the_latest_segment() {
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(6 * 988, 8))).unwrap();
    let segments = drain(&mut pair.client, pair.now);
    let base = CLIENT_ISS + 1;
    deliver(&mut pair.server, pair.now, &segments[1]);
    deliver(&mut pair.server, pair.now, &segments[5]);
    deliver(&mut pair.server, pair.now, &segments[3]);
    let ack = drain(&mut pair.server, pair.now);
    let blocks = ack.last().unwrap().repr.options.sack_blocks;
    assert_eq!(
        blocks.as_slice(),
        &[
            (base + 3 * 988, base + 4 * 988),
            (base + 988, base + 2 * 988),
            (base + 5 * 988, base + 6 * 988),
        ]
    );
}

#[test]
fn no_sack_blocks_when_sack_was_not_negotiated() {
    let now = Instant::from_nanos(5);
    let syn = TcpRepr {
        src_port: CLIENT.port(),
        dst_port: SERVER.port(),
        seq: CLIENT_ISS,
        ack: SeqNumber(0),
        flags: TcpFlags::SYN,
        window: 65535,
        options: TcpOptions {
            mss: Some(1000),
            timestamps: Some(Timestamps {
                value: 1,
                echo_reply: 0,
            }),
            ..TcpOptions::default()
        },
    };
    let mut server = Tcb::<Bytes>::accept(now, SERVER, CLIENT, &syn, SERVER_ISS, MSS, tuning());
    server.poll_segment(now).unwrap();
    let ack = TcpRepr {
        seq: CLIENT_ISS + 1,
        ack: SERVER_ISS + 1,
        flags: TcpFlags::ACK,
        options: TcpOptions::default(),
        ..syn
    };
    server.handle_segment(now, &ack, None);
    let data = TcpRepr {
        seq: CLIENT_ISS + 1001,
        ..ack
    };
    server.handle_segment(now, &data, Some(Bytes::from(pattern(100, 9))));
    let answer = drain(&mut server, now);
    assert_eq!(answer.len(), 1);
    assert_eq!(answer[0].repr.ack, CLIENT_ISS + 1);
    assert!(answer[0].repr.options.sack_blocks.is_empty());
}

impl Pair {
    /// Hands the server a segment of the client's stream `data` covering `[from, to)`, as the
    /// client would send it.
    fn forge_to_server(&mut self, data: &[u8], from: usize, to: usize) {
        let mut repr = self.log[2].1.repr;
        repr.seq = CLIENT_ISS + 1 + from as u32;
        repr.flags = TcpFlags::ACK;
        let payload = Bytes::copy_from_slice(&data[from..to]);
        self.server.handle_segment(self.now, &repr, Some(payload));
    }
}

#[test]
fn duplicate_and_overlapping_segments_deliver_each_byte_once() {
    let mut pair = Pair::new();
    let data = pattern(6000, 10);
    let pieces = [
        (1000, 2000),
        (1000, 2000), // exact duplicate, out of order
        (1500, 2500), // overlaps the tail of the held segment
        (3000, 3500),
        (2800, 4000), // covers a held segment entirely
        (0, 1200),    // fills the head and overlaps what is held
        (0, 1000),    // old duplicate
        (3900, 6000),
        (2400, 3100), // fills the last hole, overlapping both sides
        (5000, 5500), // old duplicate inside delivered data
    ];
    let mut got = Vec::new();
    for (from, to) in pieces {
        pair.forge_to_server(&data, from, to);
        assert!(pair.server.received_buffered() <= 6000);
        read_all(&mut pair.server, &mut got);
    }
    assert_eq!(got.len(), data.len());
    assert!(got == data, "bytes differ");
    let acks = drain(&mut pair.server, pair.now);
    assert_eq!(acks.last().unwrap().repr.ack, CLIENT_ISS + 1 + 6000);
}

#[test]
fn out_of_order_data_within_the_advertised_window_is_kept() {
    // A 16 KiB buffer: out-of-order data must not narrow the window the sender was promised.
    let mut pair = Pair::new();
    let data = pattern(16 * 1024, 11);
    let base = CLIENT_ISS + 1;
    pair.forge_to_server(&data, 1000, 15_000);
    pair.forge_to_server(&data, 15_000, 16 * 1024);
    assert_eq!(pair.server.counters().out_of_window, 0);
    pair.forge_to_server(&data, 0, 1000);
    let acks = drain(&mut pair.server, pair.now);
    assert_eq!(acks.last().unwrap().repr.ack, base + 16 * 1024);
    assert_eq!(
        acks.last().unwrap().repr.window,
        0,
        "buffer full, nothing read"
    );
    assert_eq!(pair.server.received_buffered(), 16 * 1024);
    let mut got = Vec::new();
    read_all(&mut pair.server, &mut got);
    assert!(got == data);
}

#[test]
fn data_beyond_the_window_is_trimmed_and_counted() {
    let mut pair = Pair::new();
    let data = pattern(20_000, 12);
    pair.forge_to_server(&data, 0, 20_000);
    assert_eq!(pair.server.received_buffered(), 16 * 1024);
    assert_eq!(pair.server.counters().out_of_window, 1);
    pair.forge_to_server(&data, 17_000, 18_000);
    assert_eq!(pair.server.received_buffered(), 16 * 1024);
    assert_eq!(pair.server.counters().out_of_window, 2);
}
