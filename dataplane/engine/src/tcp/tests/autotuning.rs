//! Receive-buffer autotuning (`right_sizing.rs`) on a long path: two blocks 50 ms apart each
//! way, a bulk upload, and a server whose owner reads fast or slowly.

use std::collections::VecDeque;

use super::*;

const ONE_WAY: Duration = Duration::from_millis(50);
const INITIAL: u32 = 64 * 1024;
const MAXIMUM: u32 = 1 << 20;

fn autotuned(autotuning: bool) -> TcpTuning {
    TcpTuning {
        receive_buffer: MAXIMUM,
        receive_buffer_initial: INITIAL,
        receive_buffer_autotuning: autotuning,
        send_buffer: 2 << 20,
        ..tuning()
    }
}

/// How the server's owner takes data out of its receive buffer.
#[derive(Debug, Clone, Copy)]
enum Reader {
    /// Everything, as soon as it arrives.
    Fast,
    /// One segment's worth every 10 ms: about 100 KB/s.
    Slow,
}

/// What the run saw of the server's receive side.
#[derive(Debug)]
struct Observed {
    received: usize,
    elapsed: Duration,
    /// The buffer's size after each segment the server handled.
    sizes: Vec<usize>,
    /// The window scale the server's SYN-ACK announced.
    syn_ack_shift: Option<u8>,
    /// Advertised right edges (ACK + scaled window) of the server's segments, in order.
    right_edges: Vec<SeqNumber>,
    /// The largest window the server advertised, scaled.
    largest_window: u32,
}

/// The client uploads `len` bytes to a server reading with `reader`, through 50 ms each way,
/// until everything arrived or `limit` passed.
fn upload(server_tuning: TcpTuning, reader: Reader, len: usize, limit: Duration) -> Observed {
    let start = Instant::from_nanos(1_000_000_000);
    let mut now = start;
    let data = Bytes::from(pattern(len, 7));
    let mut client = Tcb::connect(now, CLIENT, SERVER, CLIENT_ISS, MSS, autotuned(false));
    let mut server: Option<Tcb<Bytes>> = None;
    // Each direction in arrival order: every segment takes the same delay after its
    // predecessor on the link has been serialized.
    let mut in_flight: [VecDeque<(Instant, Dir, Segment)>; 2] = Default::default();
    let (mut upstream_free, mut downstream_free) = (now, now);
    let mut sent = 0;
    let mut received = Vec::with_capacity(len);
    let mut next_slow_read = start;
    let mut observed = Observed {
        received: 0,
        elapsed: Duration::ZERO,
        sizes: Vec::new(),
        syn_ack_shift: None,
        right_edges: Vec::new(),
        largest_window: 0,
    };
    let mut steps = 0u64;
    while received.len() < len && now.saturating_since(start) < limit {
        steps += 1;
        assert!(
            steps < 5_000_000,
            "stuck at {:?}: received {}, client {:?} {:?}",
            now.saturating_since(start),
            received.len(),
            client.state(),
            client.poll_timeout()
        );
        if client.is_synchronized() {
            feed(&mut client, &data, &mut sent);
        }
        for segment in drain(&mut client, now) {
            let at = link_arrival(&mut upstream_free, now, &segment);
            in_flight[0].push_back((at, Dir::ToServer, segment));
        }
        if let Some(server) = server.as_mut() {
            for segment in drain(server, now) {
                if segment.repr.flags.contains(TcpFlags::SYN) {
                    observed.syn_ack_shift = segment.repr.options.window_scale;
                } else {
                    let window = u32::from(segment.repr.window) << 5;
                    observed.largest_window = observed.largest_window.max(window);
                    observed.right_edges.push(segment.repr.ack + window);
                }
                let at = link_arrival(&mut downstream_free, now, &segment);
                in_flight[1].push_back((at, Dir::ToClient, segment));
            }
        }
        // The next event: a segment's arrival, a timer, or the slow reader's next read.
        let arrival = in_flight
            .iter()
            .filter_map(|queue| queue.front().map(|(at, _, _)| *at))
            .min();
        let timers = [
            client.poll_timeout(),
            server.as_ref().and_then(|s| s.poll_timeout()),
        ];
        let slow_read =
            (server.is_some() && matches!(reader, Reader::Slow)).then_some(next_slow_read);
        let Some(next) = timers
            .into_iter()
            .chain([arrival, slow_read])
            .flatten()
            .min()
        else {
            break;
        };
        now = now.max(next);
        // One segment at a time, each side answering before the next arrives.
        let due = in_flight
            .iter_mut()
            .filter(|queue| queue.front().is_some_and(|(at, _, _)| *at <= now))
            .min_by_key(|queue| queue.front().map(|(at, _, _)| *at));
        if let Some((_, dir, segment)) = due.and_then(|queue| queue.pop_front()) {
            match dir {
                Dir::ToClient => deliver(&mut client, now, &segment),
                Dir::ToServer => match server.as_mut() {
                    Some(server) => {
                        deliver(server, now, &segment);
                        observed.sizes.push(server.receive_buffer());
                    }
                    None => {
                        server = Some(Tcb::accept(
                            now,
                            SERVER,
                            CLIENT,
                            &segment.repr,
                            SERVER_ISS,
                            MSS,
                            server_tuning,
                        ))
                    }
                },
            }
        }
        client.handle_timeout(now);
        let Some(server) = server.as_mut() else {
            continue;
        };
        server.handle_timeout(now);
        match reader {
            Reader::Fast => read_all(server, &mut received),
            Reader::Slow if now >= next_slow_read => {
                if let Some(chunk) = server.recv() {
                    received.extend_from_slice(&chunk.payload);
                }
                next_slow_read = now + Duration::from_millis(10);
            }
            Reader::Slow => {}
        }
    }
    assert_eq!(&received[..], &data[..received.len()], "bytes in order");
    observed.received = received.len();
    observed.elapsed = now.saturating_since(start);
    observed
}

/// When `segment`, sent at `now`, arrives over a 50 ms link of 100 Mbit/s whose transmitter is
/// free from `free` on.
fn link_arrival(free: &mut Instant, now: Instant, segment: &Segment) -> Instant {
    const BYTES_PER_SECOND: u64 = 12_500_000;
    let bytes = 40 + payload_len(segment) as u64;
    let start = (*free).max(now);
    *free = start + Duration::from_nanos(bytes * 1_000_000_000 / BYTES_PER_SECOND);
    *free + ONE_WAY
}

fn assert_right_edge_never_moves_left(observed: &Observed) {
    for pair in observed.right_edges.windows(2) {
        assert!(
            pair[1].distance_from(pair[0]) >= 0,
            "the advertised right edge moved left: {:?} then {:?}",
            pair[0],
            pair[1]
        );
    }
}

#[test]
fn a_fast_reader_on_a_long_path_grows_its_window_to_the_maximum_and_no_further() {
    let len = 16 << 20;
    let observed = upload(autotuned(true), Reader::Fast, len, Duration::from_secs(120));
    assert_eq!(observed.received, len);
    // The SYN-ACK's window scale covers the maximum, not the initial buffer (RFC 7323 2.3).
    assert_eq!(observed.syn_ack_shift, Some(5));
    assert_eq!(observed.sizes.first(), Some(&(INITIAL as usize)));
    assert_eq!(observed.sizes.last(), Some(&(MAXIMUM as usize)));
    assert!(observed.sizes.windows(2).all(|pair| pair[0] <= pair[1]));
    assert!(observed.sizes.iter().all(|&size| size <= MAXIMUM as usize));
    assert!(observed.largest_window <= MAXIMUM);
    assert!(
        observed.largest_window > MAXIMUM / 2,
        "the grown buffer is advertised: {}",
        observed.largest_window
    );
    assert_right_edge_never_moves_left(&observed);
    // 16 MiB through a 64 KiB window is 256 round trips, at least 25.6 s; through the grown
    // one it is a few seconds of slow start and then about 16 round trips.
    let pinned = upload(
        autotuned(false),
        Reader::Fast,
        len,
        Duration::from_secs(120),
    );
    let pinned_small = upload(
        TcpTuning {
            receive_buffer: INITIAL,
            ..autotuned(false)
        },
        Reader::Fast,
        len,
        Duration::from_secs(120),
    );
    eprintln!(
        "16 MiB over 100 ms: autotuned {:?}, pinned at the maximum {:?}, pinned at the initial size {:?}",
        observed.elapsed, pinned.elapsed, pinned_small.elapsed
    );
    assert!(observed.elapsed * 4 < pinned_small.elapsed);
    assert!(observed.elapsed < pinned.elapsed + Duration::from_secs(2));
}

#[test]
fn a_slow_reader_keeps_its_initial_window() {
    // A segment every 10 ms is 10 segments per round trip: what the sender's initial window
    // brings already, so the buffer has no reason to grow.
    let observed = upload(
        autotuned(true),
        Reader::Slow,
        4 << 20,
        Duration::from_secs(10),
    );
    assert!(observed.received > 500_000, "{}", observed.received);
    assert!(observed.sizes.iter().all(|&size| size == INITIAL as usize));
    assert!(observed.largest_window <= INITIAL);
    assert_right_edge_never_moves_left(&observed);
}

#[test]
fn without_autotuning_the_window_is_the_maximum_from_the_start() {
    let observed = upload(
        autotuned(false),
        Reader::Slow,
        4 << 20,
        Duration::from_secs(2),
    );
    assert!(observed.sizes.iter().all(|&size| size == MAXIMUM as usize));
    assert!(observed.largest_window > INITIAL);
    // With window scaling a window that would shrink is rounded up to the scale's unit, not
    // down: the right edge never moves left by the bytes the shift cannot express.
    assert_right_edge_never_moves_left(&observed);
}
