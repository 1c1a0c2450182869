//! The worker's hot path stays clean, checked on the whole data path of the pipeline
//! benchmark (the real worker loop, engine and in-memory packet I/O):
//! - no heap allocation in the worker's turns in steady state (a counting global allocator,
//!   read around every turn);
//! - the shared token table, the one lock the engine takes, is taken per connection, never
//!   per packet;
//! - no system call per packet (`strace -c` of the pipeline binary: moving four times the
//!   bytes makes no more system calls).
//!
//! Connection tables sized at start-up are checked in the engine's own tests
//! (`tables_are_sized_at_start_up_and_never_grow_under_load`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use mpterm_perf::pipeline::{run_transfer, PipelineConfig};
use mpterm_perf::report::Direction;

/// Counts every allocation and reallocation of the process.
struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator, with the caller's contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above, i.e. from the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`; `ptr` and `layout` are the caller's, from this allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// The counter is the process's: tests that read it must not run at once.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

fn steady_state(direction: Direction, checksums: bool, connections: u32) {
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut config = PipelineConfig::new(direction, checksums, 1500, connections);
    // 64 MiB (per connection up to eight): with pacing the windows, and the queues sized to
    // them, take longer to reach their steady size, and at 32 MiB the last growth steps of
    // 64 connections still fell in the measured half (128 allocations, none with 128 MiB).
    config.bytes_per_connection =
        (64 << 20) * u64::from(connections.min(8)) / u64::from(connections);
    let outcome = run_transfer(config, Some(allocations)).expect("the transfer completes");
    let frames = outcome.frames_counted_for_allocations;
    let allocated = outcome.worker_allocations.expect("the probe was given");
    assert!(frames > 5_000, "the steady state saw {frames} frames");
    // A connection's queues grow (by doubling) to the size its window needs and keep that
    // capacity; with 64 connections a few still take their last step in the second half.
    // An allocation per packet would be thousands; one connection must show none at all.
    let allowed = if connections == 1 {
        0
    } else {
        u64::from(connections)
    };
    assert!(
        allocated <= allowed,
        "{direction:?} checksums {checksums} {connections} connections: {allocated} \
         allocations in the worker's turns over {frames} frames"
    );
    // Register and release once per connection; a retry on a token collision at most.
    assert!(
        outcome.token_table_calls <= 3 * u64::from(connections),
        "{} token table calls for {connections} connections and {} frames",
        outcome.token_table_calls,
        outcome.packets()
    );
    assert!(outcome.token_table_calls >= 2 * u64::from(connections));
}

#[test]
fn upload_allocates_nothing_per_packet_in_steady_state() {
    steady_state(Direction::Upload, true, 64);
    steady_state(Direction::Upload, false, 1);
}

#[test]
fn download_allocates_nothing_per_packet_in_steady_state() {
    steady_state(Direction::Download, true, 64);
    steady_state(Direction::Download, false, 1);
}

/// The system calls `mpterm-pipeline` makes moving `mib` MiB up and down over 64 connections,
/// counted by `strace -f -c`.
fn system_calls(mib: u64) -> u64 {
    let summary = std::env::temp_dir().join(format!(
        "mpterm-hot-path-strace-{}-{mib}.txt",
        std::process::id()
    ));
    let results = std::env::temp_dir().join(format!(
        "mpterm-hot-path-results-{}-{mib}.json",
        std::process::id()
    ));
    let status = Command::new("strace")
        .args(["-f", "-c", "-o"])
        .arg(&summary)
        .arg(env!("CARGO_BIN_EXE_mpterm-pipeline"))
        .args([
            "--direction",
            "upload,download",
            "--checksum",
            "on",
            "--mtu",
            "1500",
            "--connections",
            "64",
            "--mib",
            &mib.to_string(),
            "--rate-connections",
            "0",
            "--out",
        ])
        .arg(&results)
        .status()
        .expect("strace runs (tests/setup.sh installs it)");
    assert!(status.success(), "mpterm-pipeline under strace: {status}");
    let text = std::fs::read_to_string(&summary).expect("strace's summary");
    let _ = std::fs::remove_file(&summary);
    let _ = std::fs::remove_file(&results);
    // The summary's last line: "100.00 ... <calls> [<errors>] total".
    let total = text
        .lines()
        .find(|line| line.trim_end().ends_with("total"))
        .unwrap_or_else(|| panic!("no total in strace's summary:\n{text}"));
    // Columns: % time, seconds, usecs/call, calls, errors (may be blank), "total".
    let fields: Vec<&str> = total.split_whitespace().collect();
    fields
        .get(3)
        .and_then(|calls| calls.parse().ok())
        .unwrap_or_else(|| panic!("no call count in {total:?}"))
}

#[test]
fn no_system_call_per_packet() {
    let small = system_calls(8);
    let large = system_calls(32);
    // 24 MiB more each way is about 35,000 more data segments and their ACKs through the
    // worker; setup and teardown make the same calls in both runs (page faults are not system
    // calls, but a pool that grew would show as mmap/brk).
    assert!(
        large <= small + 64,
        "{small} system calls moving 8 MiB each way, {large} moving 32 MiB"
    );
}
