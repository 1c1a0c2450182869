//! The holding logic on in-memory ports whose rings refuse frames, and the push-back into a real
//! engine: deterministic, no DPDK.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;

use mpterm_control::TokenTable;
use mpterm_engine::{Engine, Instant, Payload};
use rand_chacha::rand_core::SeedableRng;

use super::*;
use crate::SharedTokens;

/// Frames per burst in these tests: small, so that bursts fill and split often.
const TEST_BURST: usize = 4;

/// A burst of at most [`TEST_BURST`] frames.
#[derive(Debug)]
struct MemoryBurst<F> {
    frames: VecDeque<F>,
}

impl<F> Default for MemoryBurst<F> {
    fn default() -> Self {
        MemoryBurst {
            frames: VecDeque::with_capacity(TEST_BURST),
        }
    }
}

impl<F> FrameBurst for MemoryBurst<F> {
    type Frame = F;

    fn push(&mut self, frame: F) -> Result<(), F> {
        if self.is_full() {
            return Err(frame);
        }
        self.frames.push_back(frame);
        Ok(())
    }

    fn len(&self) -> usize {
        self.frames.len()
    }

    fn is_full(&self) -> bool {
        self.frames.len() == TEST_BURST
    }

    fn clear(&mut self) {
        self.frames.clear();
    }
}

/// The ring behind an in-memory port: it takes frames while it has `room`, and what it took
/// waits in `ring` until the test drains it (as the wire would).
#[derive(Debug)]
struct Ring<F> {
    room: usize,
    ring: VecDeque<F>,
    delivered: Vec<F>,
}

impl<F> Ring<F> {
    /// Moves up to `count` frames from the ring to `delivered`, freeing their room.
    fn drain(&mut self, count: usize) {
        for _ in 0..count.min(self.ring.len()) {
            let frame = self.ring.pop_front().expect("counted");
            self.delivered.push(frame);
            self.room += 1;
        }
    }
}

/// A port that refuses frames while its ring is full.
#[derive(Debug, Clone)]
struct MemoryPort<F> {
    ring: Rc<RefCell<Ring<F>>>,
}

impl<F> MemoryPort<F> {
    fn with_room(room: usize) -> Self {
        MemoryPort {
            ring: Rc::new(RefCell::new(Ring {
                room,
                ring: VecDeque::new(),
                delivered: Vec::new(),
            })),
        }
    }

    fn drain(&self, count: usize) {
        self.ring.borrow_mut().drain(count);
    }

    fn drain_all(&self) {
        self.drain(usize::MAX);
    }

    fn delivered(&self) -> Vec<F>
    where
        F: Clone,
    {
        self.ring.borrow().delivered.clone()
    }
}

impl<F> BurstTx for MemoryPort<F> {
    type Burst = MemoryBurst<F>;

    fn tx_burst(&mut self, burst: &mut MemoryBurst<F>) -> usize {
        let mut ring = self.ring.borrow_mut();
        let taken = ring.room.min(burst.frames.len());
        for frame in burst.frames.drain(..taken) {
            ring.ring.push_back(frame);
        }
        ring.room -= taken;
        taken
    }
}

fn at_millis(millis: u64) -> Instant {
    Instant::from_nanos(millis * 1_000_000)
}

#[test]
fn frames_a_full_ring_refuses_are_held_and_all_arrive_in_order() {
    // Port 0's ring holds 5 frames and drains slowly; port 1 takes everything.
    let slow = MemoryPort::<u32>::with_room(5);
    let fast = MemoryPort::<u32>::with_room(usize::MAX);
    let mut transmitter = Transmitter::new(vec![slow.clone(), fast.clone()]);
    let now = at_millis(1);
    let mut refusals = 0;
    let mut most_held = 0;
    for frame in 0..300u32 {
        // Mostly for the slow port, every third frame for the fast one.
        let port = usize::from(frame % 3 == 2);
        while !transmitter.ready(now) {
            refusals += 1;
            most_held = most_held.max(transmitter.held_frames());
            assert!(
                transmitter.is_holding(now),
                "a worker holding frames must not sleep"
            );
            slow.drain(3);
        }
        transmitter.queue(now, port, frame);
    }
    while transmitter.held_frames() > 0 {
        assert!(transmitter.is_holding(now));
        slow.drain_all();
        transmitter.ready(now);
        transmitter.flush(now);
    }
    slow.drain_all();
    fast.drain_all();

    assert!(refusals > 0, "the slow ring pushed back");
    assert!(
        most_held <= 2 * TEST_BURST + 1,
        "at most one burst per port and one frame aside: {most_held}"
    );
    let expected_slow: Vec<u32> = (0..300).filter(|frame| frame % 3 != 2).collect();
    let expected_fast: Vec<u32> = (0..300).filter(|frame| frame % 3 == 2).collect();
    assert_eq!(
        slow.delivered(),
        expected_slow,
        "every frame, once, in order"
    );
    assert_eq!(
        fast.delivered(),
        expected_fast,
        "every frame, once, in order"
    );
    assert_eq!(transmitter.dropped(), 0, "nothing dropped");
    assert!(!transmitter.is_holding(now));
}

#[test]
fn a_refused_frame_stops_pulling_until_its_port_takes_it() {
    let port = MemoryPort::<u32>::with_room(TEST_BURST);
    let mut transmitter = Transmitter::new(vec![port.clone()]);
    let now = at_millis(1);
    // One burst fills the ring, a second fills the pending burst, the next frame goes aside.
    for frame in 0..(2 * TEST_BURST as u32) {
        assert!(transmitter.ready(now));
        transmitter.queue(now, 0, frame);
    }
    assert!(
        transmitter.ready(now),
        "the pending burst is full, nothing is aside yet"
    );
    transmitter.queue(now, 0, 8);
    assert_eq!(transmitter.held_frames(), TEST_BURST + 1);
    assert!(!transmitter.ready(now), "held aside: stop pulling");
    assert!(!transmitter.ready(now), "still refused");
    transmitter.flush(now);
    assert_eq!(
        transmitter.held_frames(),
        TEST_BURST + 1,
        "nothing sent, nothing lost"
    );

    port.drain(1);
    assert!(
        transmitter.ready(now),
        "one slot freed: the aside frame fits"
    );
    assert_eq!(transmitter.held_frames(), TEST_BURST);
    port.drain_all();
    transmitter.flush(now);
    port.drain_all();
    assert_eq!(port.delivered(), (0..9).collect::<Vec<_>>());
    assert_eq!(transmitter.dropped(), 0);
}

#[test]
fn a_port_that_takes_nothing_for_the_timeout_is_given_up_and_its_drops_counted() {
    let dead = MemoryPort::<u32>::with_room(0);
    let live = MemoryPort::<u32>::with_room(usize::MAX);
    let mut transmitter = Transmitter::new(vec![dead.clone(), live.clone()]);
    let start = at_millis(100);
    for frame in 0..=TEST_BURST as u32 {
        assert!(transmitter.ready(start));
        transmitter.queue(start, 0, frame);
    }
    assert!(
        !transmitter.ready(start),
        "the dead port holds everyone up for now"
    );
    let almost = Instant::from_nanos(start.as_nanos() + STUCK_PORT_TIMEOUT.as_nanos() as u64 - 1);
    assert!(
        !transmitter.ready(almost),
        "not given up before the timeout"
    );
    assert!(transmitter.is_holding(almost));
    assert_eq!(transmitter.dropped(), 0);

    let later = start + STUCK_PORT_TIMEOUT;
    assert!(transmitter.ready(later), "given up: pulling goes on");
    assert_eq!(
        transmitter.dropped(),
        1,
        "the frame held aside is freed and counted"
    );
    assert!(
        !transmitter.is_holding(later),
        "a stuck port does not keep the worker awake"
    );
    // Further frames for the dead port are counted drops; the live port is not held up.
    for frame in 100..110 {
        assert!(transmitter.ready(later));
        transmitter.queue(later, 0, frame);
        transmitter.queue(later, 1, frame);
    }
    assert_eq!(transmitter.dropped(), 11);
    transmitter.flush(later);
    live.drain_all();
    assert_eq!(live.delivered(), (100..110).collect::<Vec<_>>());

    // The port comes back: its pending burst goes out first, and it is no longer stuck.
    dead.ring.borrow_mut().room = usize::MAX;
    transmitter.flush(later);
    dead.drain_all();
    assert_eq!(dead.delivered(), (0..TEST_BURST as u32).collect::<Vec<_>>());
    dead.ring.borrow_mut().room = 0;
    for frame in 200..=(200 + TEST_BURST as u32) {
        assert!(transmitter.ready(later));
        transmitter.queue(later, 0, frame);
    }
    assert!(!transmitter.ready(later), "a fresh refusal holds again");
    assert_eq!(transmitter.dropped(), 11);
}

#[test]
fn held_frames_are_counted_when_discarded_and_unknown_ports_are_counted() {
    let port = MemoryPort::<u32>::with_room(0);
    let mut transmitter = Transmitter::new(vec![port]);
    let now = at_millis(1);
    transmitter.queue(now, 7, 99);
    assert_eq!(transmitter.dropped(), 1, "a frame for no port is counted");
    for frame in 0..=TEST_BURST as u32 {
        transmitter.queue(now, 0, frame);
    }
    assert_eq!(transmitter.held_frames(), TEST_BURST + 1);
    transmitter.discard_held();
    assert_eq!(transmitter.held_frames(), 0);
    assert_eq!(transmitter.dropped(), 1 + TEST_BURST as u64 + 1);
    assert!(!transmitter.is_holding(now));
}

/// A shared byte buffer as the engine's payload (no DPDK), clamping as the contract says.
#[derive(Debug, Clone)]
struct SharedBytes {
    bytes: Rc<[u8]>,
    range: Range<usize>,
}

impl SharedBytes {
    fn new(bytes: Vec<u8>) -> Self {
        let range = 0..bytes.len();
        SharedBytes {
            bytes: bytes.into(),
            range,
        }
    }
}

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[self.range.clone()]
    }
}

impl Payload for SharedBytes {
    fn slice(&self, range: Range<usize>) -> Self {
        let end = range.end.min(self.range.len());
        let start = range.start.min(end);
        SharedBytes {
            bytes: Rc::clone(&self.bytes),
            range: self.range.start + start..self.range.start + end,
        }
    }
}

/// An ARP request for the test configuration's interface 0 address from host `index`.
fn arp_request(index: u8) -> SharedBytes {
    let mac = [2, 0, 0, 0, 0, index];
    let mut frame = Vec::with_capacity(60);
    frame.extend_from_slice(&[0xff; 6]);
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&[0x08, 0x06]);
    frame.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]); // Ethernet/IPv4, request
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&[198, 18, 200, 10 + index]);
    frame.extend_from_slice(&[0; 6]);
    frame.extend_from_slice(&[198, 18, 200, 2]);
    frame.resize(60, 0);
    SharedBytes::new(frame)
}

#[test]
fn a_full_ring_leaves_unpulled_frames_in_the_engine_and_loses_none() {
    let config = mpterm_control::Config::from_toml_str(crate::tests::TEST_CONFIG).expect("config");
    let macs = [[2, 0, 0, 0, 1, 1], [2, 0, 0, 0, 1, 2]];
    let mut engine = Engine::new(
        crate::engine_config(&config, &macs),
        rand_chacha::ChaCha20Rng::seed_from_u64(5),
        SharedTokens::new(Arc::new(TokenTable::new()), 0),
    );
    let client_side = MemoryPort::<Vec<u8>>::with_room(7);
    let backend_side = MemoryPort::<Vec<u8>>::with_room(usize::MAX);
    let mut transmitter = Transmitter::new(vec![client_side.clone(), backend_side]);
    let now = at_millis(1);
    const REQUESTS: u8 = 100;
    for index in 0..REQUESTS {
        engine.handle_frame(now, 0, arp_request(index));
    }
    assert_eq!(engine.counters().arp_requests_answered, u64::from(REQUESTS));
    let build =
        |transmit: &mpterm_engine::Transmit<SharedBytes>| Some(transmit.header.as_slice().to_vec());

    let first = pull_from_engine(&mut engine, &mut transmitter, now, build);
    transmitter.flush(now);
    // 7 in the ring, a burst pending, one aside: the rest was never pulled.
    assert_eq!(first.frames, 7 + TEST_BURST + 1);
    assert_eq!(engine.counters().tx_frames, first.frames as u64);
    let mut rounds = 1;
    while engine.counters().tx_frames < u64::from(REQUESTS) || transmitter.held_frames() > 0 {
        client_side.drain(5);
        let pulled = pull_from_engine(&mut engine, &mut transmitter, now, build);
        transmitter.flush(now);
        assert!(
            transmitter.held_frames() <= TEST_BURST + 1,
            "the worker holds a bounded backlog"
        );
        assert_eq!(pulled.unbuilt, 0);
        rounds += 1;
        assert!(rounds < 1000, "the transfer finishes");
    }
    client_side.drain_all();

    let replies = client_side.delivered();
    assert_eq!(
        replies.len(),
        usize::from(REQUESTS),
        "every reply sent once"
    );
    for (index, reply) in replies.iter().enumerate() {
        assert_eq!(&reply[0..6], &[2, 0, 0, 0, 0, index as u8], "in order");
        assert_eq!(&reply[20..22], &[0, 2], "an ARP reply");
    }
    assert_eq!(transmitter.dropped(), 0);
    assert!(engine.poll_transmit(now).is_none());
}
