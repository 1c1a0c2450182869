//! No allocation per packet in the client engine in steady state: a counting global allocator
//! counts the allocations made inside the client engine's calls (the harness marks them),
//! during a bulk transfer both ways once its queues have grown to their bounds.

mod client_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use client_support::*;

struct CountingAllocator;

static CLIENT_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; the counter only reads a
// thread-local flag without a destructor, which needs no allocation.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn count() {
    if IN_CLIENT.try_with(|flag| flag.get()).unwrap_or(false) {
        CLIENT_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn the_client_allocates_nothing_per_packet_in_steady_state() {
    for checksums in [true, false] {
        let mut lab = Lab::new(
            41,
            client_config(true, checksums, 8),
            server_config(checksums),
            BackendBehaviour::Bulk {
                download: 32 * 1024 * KIB,
            },
        );
        let id = lab.open(pattern(32 * 1024 * KIB, 41), ClosePolicy::AfterSending);
        // Warm up: handshake, ARP, and every queue grown to what the windows let it hold.
        lab.run_until(|lab| {
            let app = &lab.apps[&id];
            app.queued >= 8 * 1024 * KIB && app.received.len() >= 8 * 1024 * KIB
        });
        let before = CLIENT_ALLOCATIONS.load(Ordering::Relaxed);
        let frames_before = lab.frames_to_client + lab.frames_to_server;
        lab.run_until(|lab| {
            let app = &lab.apps[&id];
            app.queued >= 24 * 1024 * KIB && app.received.len() >= 24 * 1024 * KIB
        });
        let allocations = CLIENT_ALLOCATIONS.load(Ordering::Relaxed) - before;
        let frames = lab.frames_to_client + lab.frames_to_server - frames_before;
        assert!(frames > 20_000, "{frames} frames measured");
        assert_eq!(
            allocations, 0,
            "the client allocated {allocations} times over {frames} frames (checksums {checksums})"
        );
        lab.run_until(|lab| lab.all_ended() && lab.backend.done.len() == 1);
        lab.check_data();
    }
}

/// Short connections one after another: what a connection costs in allocations on the
/// client (the TCB's queues, the data level's, the application buffer: each grows once per
/// connection), bounded so that a regression to allocating per packet shows.
#[test]
fn a_short_connection_allocates_a_bounded_few_times() {
    const CONNECTIONS: u64 = 200;
    let mut client = client_config(true, true, 16);
    client.local_ports = 40_000..=40_999;
    let mut lab = Lab::new(
        42,
        client,
        server_config(true),
        BackendBehaviour::Answer {
            request: 100,
            answer: 300,
        },
    );
    let run_one = |lab: &mut Lab, index: u64| {
        let id = lab.open(pattern(100, index), ClosePolicy::AfterSending);
        lab.run_until(|lab| lab.apps[&id].ended.is_some() && lab.server.connection_count() == 0);
        lab.advance(core::time::Duration::from_millis(1));
    };
    run_one(&mut lab, 0);
    let before = CLIENT_ALLOCATIONS.load(Ordering::Relaxed);
    for index in 1..=CONNECTIONS {
        run_one(&mut lab, index);
    }
    let per_connection = (CLIENT_ALLOCATIONS.load(Ordering::Relaxed) - before) / CONNECTIONS;
    eprintln!("{per_connection} allocations per short connection in the client");
    assert!(
        per_connection <= 12,
        "{per_connection} allocations per connection"
    );
    lab.check_data();
}
