//! The seeded pattern: its bytes are what the module documentation says, streams differ, a
//! changed byte fails, streams are identified from their first bytes and chunk sums are the
//! Internet checksum's.

use mpterm_perf::pattern::{Pattern, IDENTIFY_LEN, MAX_CHUNK_LEN, PERIOD, STREAMS};
use mpterm_wire::checksum::Checksum;

/// The byte at `offset` of `stream`, one at a time.
fn byte_at(pattern: &Pattern, stream: u64, offset: u64) -> u8 {
    pattern.chunk(stream, offset, 1)[0]
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_others() {
    let (one, again, other) = (Pattern::new(7), Pattern::new(7), Pattern::new(8));
    assert_eq!(one.chunk(3, 100, 4096), again.chunk(3, 100, 4096));
    assert_ne!(one.chunk(3, 100, 4096), other.chunk(3, 100, 4096));
    assert_eq!(one.seed(), 7);
}

#[test]
fn a_chunk_is_the_stream_byte_after_byte_also_across_the_period() {
    let pattern = Pattern::new(1);
    for (stream, offset) in [
        (0, 0),
        (5, 1234),
        (9, PERIOD as u64 - 10),
        (2, u64::MAX - 20),
    ] {
        let chunk = pattern.chunk(stream, offset, MAX_CHUNK_LEN);
        assert_eq!(chunk.len(), MAX_CHUNK_LEN);
        for (i, &byte) in chunk.iter().enumerate() {
            let at = offset.wrapping_add(i as u64);
            assert_eq!(
                byte,
                byte_at(&pattern, stream, at),
                "stream {stream} offset {at}"
            );
        }
    }
    // The stream repeats with the period.
    assert_eq!(
        pattern.chunk(4, 10, 100),
        pattern.chunk(4, 10 + PERIOD as u64, 100)
    );
}

#[test]
fn a_chunk_is_at_most_max_chunk_len() {
    let pattern = Pattern::new(1);
    assert_eq!(pattern.chunk(0, 0, MAX_CHUNK_LEN + 1).len(), MAX_CHUNK_LEN);
    assert_eq!(pattern.chunk(0, 0, 0).len(), 0);
}

#[test]
fn different_streams_differ() {
    let pattern = Pattern::new(2);
    let first = pattern.chunk(0, 0, 1460).to_vec();
    for stream in 1..1000 {
        let other = pattern.chunk(stream, 0, 1460);
        assert_ne!(other, &first[..], "stream {stream} starts like stream 0");
        // Not even a short run at the same offset is shared.
        assert_ne!(&other[..16], &first[..16], "stream {stream}");
    }
    assert_eq!(
        pattern.chunk(STREAMS + 3, 0, 64),
        pattern.chunk(3, 0, 64),
        "streams are numbered modulo STREAMS"
    );
}

#[test]
fn verify_accepts_the_stream_and_refuses_any_changed_byte() {
    let pattern = Pattern::new(3);
    let offset = 70_000;
    let mut bytes = vec![0u8; 3 * MAX_CHUNK_LEN + 17];
    pattern.copy_to(11, offset, &mut bytes);
    assert!(pattern.verify(11, offset, &bytes));
    assert!(!pattern.verify(12, offset, &bytes), "another stream");
    assert!(!pattern.verify(11, offset + 1, &bytes), "another offset");
    for at in [0, 1, MAX_CHUNK_LEN - 1, MAX_CHUNK_LEN, bytes.len() - 1] {
        bytes[at] ^= 0x01;
        assert!(!pattern.verify(11, offset, &bytes), "flipped bit at {at}");
        bytes[at] ^= 0x01;
    }
    assert!(pattern.verify(11, offset, &bytes));
    assert!(pattern.verify(11, offset, &[]));
}

#[test]
fn copy_to_writes_the_chunks() {
    let pattern = Pattern::new(4);
    let mut bytes = vec![0u8; 20_000];
    pattern.copy_to(6, 5, &mut bytes);
    assert_eq!(&bytes[..MAX_CHUNK_LEN], pattern.chunk(6, 5, MAX_CHUNK_LEN));
    assert_eq!(
        &bytes[MAX_CHUNK_LEN..2 * MAX_CHUNK_LEN],
        pattern.chunk(6, 5 + MAX_CHUNK_LEN as u64, MAX_CHUNK_LEN)
    );
}

#[test]
fn every_stream_is_identified_from_its_first_bytes() {
    let pattern = Pattern::new(5);
    for stream in 0..STREAMS {
        assert_eq!(
            pattern.identify(pattern.chunk(stream, 0, IDENTIFY_LEN)),
            Some(stream)
        );
    }
    assert_eq!(
        pattern.identify(pattern.chunk(70_000, 0, 100)),
        Some(70_000 % STREAMS),
        "longer input; stream number taken modulo STREAMS"
    );
    assert_eq!(
        pattern.identify(&pattern.chunk(1, 0, IDENTIFY_LEN)[..IDENTIFY_LEN - 1]),
        None,
        "too short"
    );
    let mut changed = pattern.chunk(1, 0, IDENTIFY_LEN).to_vec();
    changed[3] ^= 0x80;
    assert_ne!(pattern.identify(&changed), Some(1));
    assert_eq!(pattern.identify(&[0; IDENTIFY_LEN]), None);
}

#[test]
fn chunk_sums_are_the_ones_complement_sum_of_the_chunk() {
    let pattern = Pattern::new(6);
    let mut state = 0x1234_5678_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut cases = vec![
        (0, 0, 0),
        (0, 0, 1),
        (0, 1, 1),
        (0, 1, 2),
        (0, 0, MAX_CHUNK_LEN),
        (3, 1, MAX_CHUNK_LEN),
        (0, PERIOD as u64 - 1, 3),
    ];
    for _ in 0..2000 {
        let stream = next() % 100;
        let offset = next() % (3 * PERIOD as u64);
        let len = (next() % (MAX_CHUNK_LEN as u64 + 1)) as usize;
        cases.push((stream, offset, len));
    }
    for (stream, offset, len) in cases {
        let bytes = pattern.chunk(stream, offset, len);
        let mut reference = Checksum::new();
        reference.add_bytes(bytes);
        assert_eq!(
            pattern.chunk_sum(stream, offset, len),
            reference.folded(),
            "stream {stream} offset {offset} len {len}"
        );
        // Added after an even-length header, as a TCP sender does.
        let header = [0x45u8, 0x00, 0x12, 0x34];
        let mut by_bytes = Checksum::new();
        by_bytes.add_bytes(&header);
        by_bytes.add_bytes(bytes);
        let mut by_sum = Checksum::new();
        by_sum.add_bytes(&header);
        by_sum.add_u16(pattern.chunk_sum(stream, offset, len));
        assert_eq!(by_sum.finish(), by_bytes.finish());
    }
}
