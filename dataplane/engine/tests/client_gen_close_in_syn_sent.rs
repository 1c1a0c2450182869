//! Found by mpterm-gen (perf/src/gen): an application that queues its whole upload and closes
//! at once, before the handshake has completed, loses the upload, and the connection is
//! reported as closed gracefully.
//!
//! `ClientEngine::close` promises "a FIN, with the DATA_FIN, after the queued data". In
//! SYN-SENT the TCB follows RFC 9293 section 3.10.4 to the letter (CLOSE in SYN-SENT deletes
//! the TCB), so the queued bytes are dropped, and `ClosedReason::Graceful` ("both streams
//! ended and were acknowledged") is reported with nothing acknowledged. A client keeps the
//! close pending until it is established instead (as a Linux socket's `shutdown` after a
//! non-blocking `connect` sends its data and FIN once connected), which the client now does.

mod client_support;

use bytes::Bytes;
use client_support::*;
use mpterm_engine::client::{ClientEngine, ClientEvent, ClosedReason};
use mpterm_engine::Instant;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn a_close_before_the_handshake_completes_keeps_the_queued_data() {
    let mut client: ClientEngine<Bytes, ChaCha8Rng> =
        ClientEngine::new(client_config(true, true, 4), ChaCha8Rng::seed_from_u64(1)).unwrap();
    let now = Instant::from_nanos(1_000_000);
    let id = client.connect(now).unwrap();
    client.send(id, pattern(10_000, 1)).unwrap();
    client.close(id).unwrap();
    while client.poll_transmit(now).is_some() {}
    while let Some(event) = client.poll_event() {
        if let ClientEvent::Closed {
            reason: ClosedReason::Graceful,
            counters,
            ..
        } = event
        {
            assert_eq!(
                counters.bytes_acked, counters.bytes_sent,
                "closed gracefully with queued bytes never sent"
            );
        }
    }
    assert!(
        client.connection_info(id).is_ok(),
        "the connection waits for its handshake, then sends its data and its FIN"
    );
}

#[test]
fn data_queued_and_closed_before_the_handshake_reaches_the_backend_then_the_fin() {
    let mut lab = Lab::new(
        3,
        client_config(true, true, 4),
        server_config(true),
        BackendBehaviour::Bulk { download: 0 },
    );
    let upload = pattern(100_000, 3);
    let id = lab.open(upload.clone(), ClosePolicy::AfterSending);
    // The application hands everything over and closes while the SYN is still unanswered.
    let mut queued = 0;
    while queued < upload.len() {
        let len = (upload.len() - queued).min(lab.client.send_capacity(id));
        assert!(
            len > 0,
            "the send buffer takes the upload before the handshake"
        );
        lab.client
            .send(id, upload.slice(queued..queued + len))
            .unwrap();
        queued += len;
    }
    lab.client.close(id).unwrap();
    let app = lab.apps.get_mut(&id).expect("the app of the connection");
    app.queued = upload.len();
    app.closed = true;
    lab.run_until(|lab| lab.all_ended() && lab.backend.done.len() == 1);
    lab.check_data();
    match lab.apps[&id].ended {
        Some(ClientEvent::Closed {
            reason: ClosedReason::Graceful,
            counters,
            ..
        }) => assert_eq!(counters.bytes_acked, upload.len() as u64),
        ref other => panic!("ended with {other:?}: {}", lab.context()),
    }
}
