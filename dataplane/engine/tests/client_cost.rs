//! What the client engine costs per data segment next to the server engine it feeds, both in
//! one process on the same frames (the harness times every call of each). A figure, not a
//! timed test: run it with
//! `cargo test -p mpterm-engine --release --test client_cost -- --ignored --nocapture`.

mod client_support;

use std::cell::Cell;

use client_support::*;

const BYTES: usize = 64 * 1024 * KIB;
/// Payload per data segment at MTU 1500 with timestamps and a full DSS.
const SEGMENT: usize = 1420;

fn measure(what: &str, checksums: bool, verify_tcp: bool, upload: usize, download: usize) {
    let mut config = client_config(true, checksums, 4);
    config.verify_tcp_checksums = verify_tcp;
    let mut lab = Lab::new(
        61,
        config,
        server_config(checksums),
        BackendBehaviour::Bulk { download },
    );
    lab.open(pattern(upload, 61), ClosePolicy::AfterSending);
    CLIENT_NANOS.with(|n| n.set(0));
    SERVER_NANOS.with(|n| n.set(0));
    TIMING.with(|t| t.set(true));
    lab.run_until(|lab| lab.all_ended() && lab.backend.done.len() == 1);
    TIMING.with(|t| t.set(false));
    lab.check_data();
    let segments = ((upload + download) / SEGMENT) as f64;
    let client = CLIENT_NANOS.with(Cell::get) as f64 / segments;
    let server = SERVER_NANOS.with(Cell::get) as f64 / segments;
    println!(
        "{what:<44} client {client:6.0} ns/segment, server engine {server:6.0} ns/segment \
         (client/server {:.2})",
        client / server
    );
}

#[test]
#[ignore = "a figure, not a test: run with --ignored --nocapture"]
fn client_cost_per_segment_next_to_the_server_engine() {
    measure("upload, DSS checksums", true, true, BYTES, 0);
    measure("upload, no DSS checksums", false, true, BYTES, 0);
    measure("download, DSS checksums", true, true, 0, BYTES);
    measure(
        "download, DSS checksums, TCP sum not verified",
        true,
        false,
        0,
        BYTES,
    );
    measure("download, no DSS checksums", false, true, 0, BYTES);
}
