//! The generator's loop allocates nothing per packet: a counting global allocator counts what
//! `Generator::poll_once` allocates during the steady state of a transfer through mpterm's
//! worker in memory (tests/gen_support). Records are made per connection and series samples
//! per interval, so what is left is the series' occasional growth (a `Vec` doubling), far
//! fewer than one allocation per interval, let alone per packet.

mod gen_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use gen_support::{Bench, Setup};
use mpterm_perf::report::Direction;

struct CountingAllocator;

thread_local! {
    /// Set while this thread runs the generator's loop.
    static IN_GENERATOR: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    if IN_GENERATOR.with(Cell::get) {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counting touches
// only thread-local cells, which allocate nothing.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through `alloc`/`realloc` above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn steady_state_allocations(direction: Direction, connections: usize) -> (u64, u64, u64) {
    const SIZE: u64 = 24 << 20;
    let mut bench = Bench::new(Setup::new(direction, connections, SIZE));
    let moved = |bench: &Bench| {
        let totals = bench.generator.app().totals();
        totals.upload + totals.download
    };
    let all = SIZE
        * connections as u64
        * if direction == Direction::Bidirectional {
            2
        } else {
            1
        };
    // Warm up: every queue of every party reaches its size.
    while moved(&bench) < all / 4 {
        bench.turn();
    }
    let frames_of = |bench: &Bench| {
        let counters = bench.generator.counters();
        counters.rx_frames + counters.tx_frames
    };
    let (turns, frames_before) = (bench.turns, frames_of(&bench));
    let before = ALLOCATIONS.with(Cell::get);
    while moved(&bench) < 3 * all / 4 {
        bench.turn_with(|generator, now| {
            IN_GENERATOR.with(|flag| flag.set(true));
            generator.poll_once(now);
            IN_GENERATOR.with(|flag| flag.set(false));
        });
    }
    let allocations = ALLOCATIONS.with(Cell::get) - before;
    let frames = frames_of(&bench) - frames_before;
    (allocations, bench.turns - turns, frames)
}

#[test]
fn no_allocation_per_packet_in_steady_state() {
    for (direction, connections) in [
        (Direction::Upload, 1),
        (Direction::Download, 1),
        (Direction::Bidirectional, 8),
    ] {
        let (allocations, turns, frames) = steady_state_allocations(direction, connections);
        println!("{direction:?} x{connections}: {allocations} allocations in {turns} turns, {frames} frames in and out");
        assert!(frames > 1000, "a steady state of some length");
        // The series grows by doubling: a handful of reallocations per tracked series.
        assert!(
            allocations <= 2 * (1 + connections as u64) * 4,
            "{direction:?}: {allocations} allocations in {turns} turns ({frames} frames)"
        );
    }
}
