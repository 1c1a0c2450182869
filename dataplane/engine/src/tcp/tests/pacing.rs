//! Pacing (see `tcp::pacing`): data leaves at 2 x window / SRTT in slow start, in bursts of
//! at most a millisecond's worth, with the pacer's deadline as a timer; ACKs are not held.

use super::*;
use crate::tcp::SegmentKind;

fn paced() -> TcpTuning {
    TcpTuning {
        receive_buffer: 1 << 20,
        send_buffer: 1 << 20,
        pacing: true,
        ..tuning()
    }
}

/// Sends ten segments' worth and returns, per instant the client was polled, the instant and
/// the data segments it sent then.
fn sending_times(pair: &mut Pair) -> Vec<(Instant, usize)> {
    pair.client
        .send(Bytes::from(pattern(10 * 988, 51)))
        .unwrap();
    let mut times = Vec::new();
    let mut sent = 0;
    while sent < 10 {
        let burst = drain(&mut pair.client, pair.now)
            .iter()
            .filter(|segment| payload_len(segment) > 0)
            .count();
        if burst > 0 {
            times.push((pair.now, burst));
        }
        sent += burst;
        if sent < 10 {
            let deadline = pair.client.poll_timeout().expect("the pacer's deadline");
            assert!(deadline > pair.now, "a deadline in the future");
            pair.now = deadline;
            pair.client.handle_timeout(pair.now);
        }
    }
    times
}

#[test]
fn slow_start_data_leaves_in_millisecond_bursts_at_twice_window_over_rtt() {
    let mut pair = Pair::with_tunings(paced(), paced());
    // The handshake measured a 10 ms RTT; the window is 10 segments of 988 bytes: 2 x 9880 B
    // per 10 ms is about 2 MB/s, a segment every 0.5 ms, three at once within the 1 ms horizon.
    let times = sending_times(&mut pair);
    let start = times[0].0;
    assert!(times.iter().all(|&(_, burst)| burst <= 3), "{times:?}");
    assert!(times.len() >= 4, "{times:?}");
    let span = times.last().unwrap().0.saturating_since(start);
    assert!(
        span >= Duration::from_micros(3000) && span <= Duration::from_millis(5),
        "ten segments over {span:?}: {times:?}"
    );
    assert!(pair.client.counters().pacing_delays > 0);
}

#[test]
fn without_pacing_the_window_goes_at_once() {
    let unpaced = TcpTuning {
        pacing: false,
        ..paced()
    };
    let mut pair = Pair::with_tunings(unpaced, unpaced);
    let times = sending_times(&mut pair);
    assert_eq!(times, [(times[0].0, 10)]);
}

#[test]
fn an_acknowledgement_does_not_wait_for_the_pacer() {
    let mut pair = Pair::with_tunings(paced(), paced());
    pair.client
        .send(Bytes::from(pattern(10 * 988, 52)))
        .unwrap();
    let first = drain(&mut pair.client, pair.now);
    assert!(first.len() < 10, "the pacer holds data back");
    // Data from the server arrives while the client's data waits: the ACK leaves at once.
    pair.server.send(Bytes::from(pattern(500, 53))).unwrap();
    for segment in drain(&mut pair.server, pair.now) {
        deliver(&mut pair.client, pair.now, &segment);
    }
    let answer = drain(&mut pair.client, pair.now);
    assert!(
        answer
            .iter()
            .any(|segment| segment.repr.ack == pair.server.snd_max),
        "{answer:?}"
    );
    assert!(answer.iter().all(|segment| payload_len(segment) == 0));
}

/// The lab's backend-reset scenario hung the worker: a connection fast-closed while the pacer
/// held its data kept the pacer's deadline, which FASTCLOSE_WAIT's timers never serve, so the
/// engine found the same past deadline due again and again and never went back to its queues.
#[test]
fn a_fast_close_while_data_waits_for_the_pacer_leaves_no_past_deadline() {
    let mut pair = Pair::with_tunings(paced(), paced());
    pair.client
        .send(Bytes::from(pattern(10 * 988, 54)))
        .unwrap();
    drain(&mut pair.client, pair.now);
    let paced_until = pair
        .client
        .poll_timeout()
        .expect("the pacer holds data back");
    pair.client.fast_close(pair.now);
    let sent = drain(&mut pair.client, pair.now);
    assert!(
        matches!(&sent[..], [segment] if segment.kind == SegmentKind::FastClose),
        "one FASTCLOSE_WAIT ACK: {sent:?}"
    );

    pair.now = pair.now.max(paced_until);
    pair.client.handle_timeout(pair.now);
    let next = pair
        .client
        .poll_timeout()
        .expect("FASTCLOSE_WAIT's retransmission timer");
    assert!(
        next > pair.now,
        "a deadline at {next:?}, not after {:?}",
        pair.now
    );
    assert!(
        drain(&mut pair.client, pair.now).is_empty(),
        "no data after the fast close"
    );
}
