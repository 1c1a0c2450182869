//! Connections that end: both sides close, every slot, token and port comes back, TIME-WAIT
//! runs out; and 10,000 short connections one after another (connect, a small request, a small
//! answer, close) leave nothing behind, on the client or the server.

mod client_support;

use core::time::Duration;

use client_support::*;
use mpterm_engine::client::{ClientEvent, ClosedReason};

/// Connect, a request of 100 bytes, an answer of 300, close.
const REQUEST: usize = 100;
const ANSWER: usize = 300;
/// TIME-WAIT of both engines in these tests (the default, 60 s).
const TIME_WAIT: Duration = Duration::from_secs(60);

fn short_exchange_lab(seed: u64, client_ports: u16) -> Lab {
    let mut client = client_config(true, true, 16);
    client.local_ports = 40_000..=40_000 + client_ports - 1;
    Lab::new(
        seed,
        client,
        server_config(true),
        BackendBehaviour::Answer {
            request: REQUEST,
            answer: ANSWER,
        },
    )
}

fn assert_graceful(lab: &Lab, app: &ClientApp) {
    match app.ended {
        Some(ClientEvent::Closed {
            reason: ClosedReason::Graceful,
            counters,
            ..
        }) => {
            assert_eq!(counters.bytes_sent, REQUEST as u64);
            assert_eq!(counters.bytes_acked, REQUEST as u64);
            assert_eq!(counters.bytes_received, ANSWER as u64);
        }
        ref other => panic!("{:?}: {other:?}: {}", app.id, lab.context()),
    }
}

#[test]
fn a_closed_connection_gives_back_its_slot_token_and_port() {
    let mut lab = short_exchange_lab(31, 16);
    let id = lab.open(pattern(REQUEST, 31), ClosePolicy::AfterSending);
    lab.run_until(|lab| lab.all_ended());
    lab.check_data();
    assert_graceful(&lab, &lab.apps[&id]);
    assert_eq!(lab.client.connection_count(), 0);
    assert_eq!(lab.client.tokens_in_use(), 0);
    assert_eq!(lab.server.connection_count(), 0);
    // The client closed first: its port waits out TIME-WAIT, as the server's backend side does.
    assert_eq!(lab.client.time_wait_count(), 1);
    assert_eq!(lab.client.counters().time_wait_entered, 1);
    assert_eq!(lab.server.time_wait_count(), 1);
    // The handle is stale now.
    assert!(lab.client.connection_info(id).is_err());
    assert!(lab.client.recv(id).is_none());
    lab.advance(TIME_WAIT + Duration::from_secs(1));
    assert_eq!(lab.client.time_wait_count(), 0);
    assert_eq!(lab.server.time_wait_count(), 0);
    assert_eq!(lab.client.poll_timeout(), None, "no timer left behind");
}

/// Connect, request, answer, close, 10,000 times in a row, 1 ms apart, through 2,000 client
/// ports: after the first 2,000 every port is taken over from TIME-WAIT (RFC 6191).
#[test]
fn ten_thousand_short_connections_leave_no_state_behind() {
    const CONNECTIONS: usize = 10_000;
    let mut lab = short_exchange_lab(32, 2_000);
    for index in 0..CONNECTIONS {
        let id = lab.open(pattern(REQUEST, index as u64), ClosePolicy::AfterSending);
        lab.run_until(|lab| lab.apps[&id].ended.is_some() && lab.server.connection_count() == 0);
        assert_graceful(&lab, &lab.apps[&id]);
        assert_eq!(lab.client.connection_count(), 0, "{}", lab.context());
        lab.advance(Duration::from_millis(1));
    }
    lab.check_data();
    let client = *lab.client.counters();
    let server = *lab.server.counters();
    assert_eq!(client.connections_opened, CONNECTIONS as u64);
    assert_eq!(client.connections_closed, CONNECTIONS as u64);
    assert_eq!(client.mptcp_connections, CONNECTIONS as u64);
    assert_eq!(server.mptcp_connections, CONNECTIONS as u64);
    assert_eq!(client.mptcp_fallbacks + server.mptcp_fallbacks, 0);
    assert_eq!(client.tcp_resets_by_peer, 0);
    assert_eq!(client.rx_dropped_no_connection, 0);
    assert!(
        client.time_wait_reused >= (CONNECTIONS - 2_000) as u64,
        "ports were taken over from TIME-WAIT: {client:?}"
    );
    assert_eq!(lab.client.tokens_in_use(), 0);
    assert_eq!(lab.server.connection_count(), 0);
    assert!(lab.server_tokens.registered.borrow().is_empty());
    assert!(lab.backend.connections.is_empty());
    lab.advance(TIME_WAIT + Duration::from_secs(1));
    assert_eq!(lab.client.time_wait_count(), 0);
    assert_eq!(lab.server.time_wait_count(), 0);
    assert_eq!(lab.client.poll_timeout(), None, "no timer left behind");
}
