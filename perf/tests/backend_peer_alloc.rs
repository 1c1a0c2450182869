//! The backend peer allocates nothing per frame: a counting global allocator watches every
//! call into the peer (handshakes, data both ways, losses, retransmissions, closes) once it is
//! built. A test binary of its own, so that the allocator sees this test alone.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::{peer_config, Dir, Harness, Verdict};

struct CountingAllocator;

thread_local! {
    /// Set while this thread runs inside the peer.
    static IN_PEER: Cell<bool> = const { Cell::new(false) };
    /// Allocations this thread made while `IN_PEER` was set (per thread, so that tests
    /// running at the same time do not see each other's).
    static ALLOCATIONS_IN_PEER: Cell<u64> = const { Cell::new(0) };
}

fn count_if_in_peer() {
    if IN_PEER.with(Cell::get) {
        ALLOCATIONS_IN_PEER.with(|count| count.set(count.get() + 1));
    }
}

fn allocations_in_peer() -> u64 {
    ALLOCATIONS_IN_PEER.with(Cell::get)
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counting touches
// only const-initialised thread-locals without destructors, which do not allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_if_in_peer();
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through `alloc`/`realloc` above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_if_in_peer();
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn no_frame_makes_the_peer_allocate() {
    let mut config = peer_config();
    config.download_bytes = 256 * 1024;
    config.max_connections = 16;
    let mut lab = Harness::new(config);
    lab.around_peer = |inside| IN_PEER.with(|flag| flag.set(inside));
    // One connection more than there are slots (refused), then, once those have ended, as
    // many again: slots, index entries and queue places are reused.
    for i in 0..17 {
        lab.connect(i, 128 * 1024, 256 * 1024);
    }
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    lab.link = Box::new(move |_: Dir, _: &[u8]| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        if state % 100 == 0 {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    });
    assert!(lab.run(500_000));
    assert_eq!(lab.peer.open_connections(), 0);
    for i in 17..33 {
        lab.connect(i, 128 * 1024, 256 * 1024);
    }
    assert!(lab.run(500_000));
    let counters = lab.peer.counters();
    assert_eq!(counters.connections_accepted, 32);
    assert_eq!(
        counters.connections_refused, 1,
        "the 17th of the first batch"
    );
    assert_eq!(counters.connections_closed, 32);
    assert!(counters.segments_retransmitted > 0, "losses were repaired");
    assert_eq!(counters.mismatches, 0);
    assert_eq!(counters.bytes_verified, 32 * 128 * 1024);
    assert_eq!(counters.bytes_sent, 32 * 256 * 1024);
    assert_eq!(
        allocations_in_peer(),
        0,
        "allocations inside handle_frame/poll_frame"
    );
}

#[test]
fn the_allocation_counter_sees_allocations() {
    // The counter is live: an allocation while the flag is set is counted.
    let before = allocations_in_peer();
    IN_PEER.with(|flag| flag.set(true));
    let boxed = std::hint::black_box(Box::new([0u8; 64]));
    IN_PEER.with(|flag| flag.set(false));
    drop(boxed);
    assert_eq!(allocations_in_peer(), before + 1);
}
