//! The link emulator's state machines together, as the DPDK loop drives them: frames offered
//! to an [`ImpairedLink`], held in a [`HoldQueue`] and taken out when due.

use mpterm_perf::linkem::cli::{parse_rate, parse_time};
use mpterm_perf::linkem::hold::HoldQueue;
use mpterm_perf::linkem::impairment::{ImpairedLink, Impairment, Probability, Verdict};

/// The lab's access link: 80 Mbit/s, 10 ms each way.
fn lab_link() -> Impairment {
    Impairment {
        rate_bps: parse_rate("80mbit").unwrap(),
        delay_ns: parse_time("10ms").unwrap().as_nanos() as u64,
        queue_bytes: 256 << 10,
        ..Impairment::default()
    }
}

/// Offers each `(time, frame number)` and drains what is due, in 10 us steps as a busy loop
/// would; returns `(frame number, time it left)` in the order frames left.
fn run_through(link: &mut ImpairedLink, offers: &[(u64, u32)], len: u32) -> Vec<(u32, u64)> {
    let mut held = HoldQueue::with_capacity(4096);
    let mut left = vec![];
    let mut next = offers.iter().peekable();
    let mut now = 0;
    while next.peek().is_some() || !held.is_empty() {
        while let Some(&&(at, frame)) = next.peek() {
            if at > now {
                break;
            }
            next.next();
            match link.offer(now, len) {
                Verdict::Drop => {}
                Verdict::DeliverAt(due) => held.push(due, frame).unwrap(),
                Verdict::Duplicate(first, second) => {
                    held.push(first, frame).unwrap();
                    held.push(second, frame).unwrap();
                }
            }
        }
        while let Some(frame) = held.pop_due(now) {
            left.push((frame, now));
        }
        now += 10_000;
    }
    left
}

#[test]
fn a_ping_across_the_lab_link_and_back_takes_20_ms_and_a_little() {
    let mut there = ImpairedLink::new(lab_link(), 1);
    let mut back = ImpairedLink::new(lab_link(), 2);
    let arrived = run_through(&mut there, &[(0, 0)], 98);
    let (_, at) = arrived[0];
    let returned = run_through(&mut back, &[(0, 0)], 98);
    let rtt = at + returned[0].1;
    // 2 x (10 ms + 9.8 us on the wire), rounded up to the 10 us loop step.
    assert!((20_000_000..=20_040_000).contains(&rtt), "{rtt} ns");
}

#[test]
fn a_bulk_transfer_leaves_in_order_at_the_link_rate_and_the_queue_absorbs_a_short_excess() {
    let mut link = ImpairedLink::new(lab_link(), 3);
    // 1514-byte frames offered at 100 Mbit/s for 100 ms into 80 Mbit/s: the 20 Mbit/s excess
    // adds up to 250 kB, which the 256 KiB queue still holds.
    let gap_ns = 1514 * 8 * 10;
    let offers: Vec<(u64, u32)> = (0..826).map(|i| (i as u64 * gap_ns, i)).collect();
    let left = run_through(&mut link, &offers, 1514);
    assert!(left.windows(2).all(|pair| pair[0].0 < pair[1].0));
    let counters = *link.counters();
    assert_eq!(counters.dropped_queue + left.len() as u64, 826);
    assert_eq!(counters.dropped_queue, 0);
    let first = left.first().unwrap().1;
    let last = left.last().unwrap().1;
    let goodput = (left.len() - 1) as f64 * 1514.0 * 8.0 / ((last - first) as f64 / 1e9);
    assert!(
        (goodput - 80e6).abs() / 80e6 < 0.01,
        "{goodput} bit/s out of an 80 Mbit/s link"
    );
}

#[test]
fn a_longer_overload_fills_the_queue_and_then_drops() {
    let mut link = ImpairedLink::new(lab_link(), 4);
    // 100 Mbit/s offered for 500 ms into 80 Mbit/s with 256 KiB of queue.
    let gap_ns = 1514 * 8 * 10;
    let offers: Vec<(u64, u32)> = (0..4128).map(|i| (i as u64 * gap_ns, i)).collect();
    let left = run_through(&mut link, &offers, 1514);
    let dropped = link.counters().dropped_queue;
    assert!(dropped > 0);
    assert_eq!(dropped + left.len() as u64, 4128);
    // What passed is what the wire carried in the offer's 500 ms plus the queue's 256 KiB.
    let expected = 500e-3 * 80e6 / (1514.0 * 8.0) + f64::from(256 << 10) / 1514.0;
    assert!(
        (left.len() as f64 - expected).abs() <= 2.0,
        "{} passed, {expected} expected",
        left.len()
    );
}

#[test]
fn impairments_compose_without_losing_count_of_a_frame() {
    let impairment = Impairment {
        jitter_ns: 1_000_000,
        loss: Probability::per_mille(5),
        reorder: Probability::per_mille(10),
        reorder_delay_ns: 2_000_000,
        duplicate: Probability::per_mille(1),
        ..lab_link()
    };
    let mut link = ImpairedLink::new(impairment, 5);
    let offers: Vec<(u64, u32)> = (0..20_000).map(|i| (i as u64 * 200_000, i)).collect();
    let left = run_through(&mut link, &offers, 1000);
    let counters = *link.counters();
    assert_eq!(counters.offered_frames, 20_000);
    assert_eq!(counters.passed_frames + counters.dropped(), 20_000);
    assert_eq!(
        left.len() as u64,
        counters.passed_frames + counters.duplicated
    );
    assert!(counters.reordered > 0 && counters.duplicated > 0 && counters.dropped_random > 0);
    let out_of_order = left.windows(2).filter(|pair| pair[0].0 > pair[1].0).count();
    assert!(out_of_order > 0);
}
