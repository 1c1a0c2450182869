//! FIN, TIME-WAIT and closing states.

use super::*;

#[test]
fn fin_both_ways_then_time_wait_then_closed() {
    let mut pair = Pair::new();
    pair.client.send(Bytes::from_static(b"request")).unwrap();
    pair.client.close();
    assert_eq!(pair.client.send_capacity(), 0, "no data after close");
    pair.pump(|_, _| true);
    assert_eq!(pair.client.state(), TcpState::FinWait2);
    assert_eq!(pair.server.state(), TcpState::CloseWait);
    assert!(!pair.server.peer_finished(), "data still unread");
    let mut got = Vec::new();
    read_all(&mut pair.server, &mut got);
    assert_eq!(got, b"request");
    assert!(pair.server.peer_finished());
    assert!(pair.client.all_sent_acknowledged());

    pair.server.send(Bytes::from_static(b"response")).unwrap();
    pair.server.close();
    let fin = drain(&mut pair.server, pair.now);
    assert_eq!(pair.server.state(), TcpState::LastAck);
    let fin_segment = fin
        .iter()
        .find(|s| s.repr.flags.contains(TcpFlags::FIN))
        .unwrap();
    for segment in &fin {
        deliver(&mut pair.client, pair.now, segment);
    }
    assert_eq!(pair.client.state(), TcpState::TimeWait);
    let ack = drain(&mut pair.client, pair.now);
    assert_eq!(ack.len(), 1);
    // A retransmitted FIN in TIME-WAIT is acknowledged again.
    deliver(&mut pair.client, pair.now, fin_segment);
    let again = drain(&mut pair.client, pair.now);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].repr.ack, ack[0].repr.ack);
    deliver(&mut pair.server, pair.now, &ack[0]);
    assert_eq!(pair.server.state(), TcpState::Closed);
    assert_eq!(pair.server.close_reason(), Some(CloseReason::Graceful));
    assert!(pair.server.poll_timeout().is_none());

    let mut got = Vec::new();
    read_all(&mut pair.client, &mut got);
    assert_eq!(got, b"response");
    assert!(pair.client.peer_finished());
    // TIME-WAIT lasts `time_wait`, then the block is closed.
    let deadline = pair.client.poll_timeout().expect("TIME-WAIT timer");
    assert_eq!(deadline, pair.now + tuning().time_wait);
    pair.client
        .handle_timeout(Instant::from_nanos(deadline.as_nanos() - 1));
    assert_eq!(pair.client.state(), TcpState::TimeWait);
    pair.client.handle_timeout(deadline);
    assert_eq!(pair.client.state(), TcpState::Closed);
    assert_eq!(pair.client.close_reason(), Some(CloseReason::Graceful));
}

#[test]
fn simultaneous_close_goes_through_closing_to_time_wait() {
    let mut pair = Pair::new();
    pair.client.close();
    pair.server.close();
    let client_fin = drain(&mut pair.client, pair.now);
    let server_fin = drain(&mut pair.server, pair.now);
    assert_eq!(pair.client.state(), TcpState::FinWait1);
    assert_eq!(pair.server.state(), TcpState::FinWait1);
    // The FINs cross.
    deliver(&mut pair.server, pair.now, &client_fin[0]);
    deliver(&mut pair.client, pair.now, &server_fin[0]);
    assert_eq!(pair.client.state(), TcpState::Closing);
    assert_eq!(pair.server.state(), TcpState::Closing);
    pair.pump(|_, _| true);
    assert_eq!(pair.client.state(), TcpState::TimeWait);
    assert_eq!(pair.server.state(), TcpState::TimeWait);
    pair.advance(tuning().time_wait);
    assert_eq!(pair.client.state(), TcpState::Closed);
    assert_eq!(pair.server.state(), TcpState::Closed);
}

#[test]
fn lost_fin_is_retransmitted_by_the_timer() {
    let mut pair = Pair::new();
    pair.client.close();
    let mut dropped = false;
    pair.pump(|_, s| {
        let first_fin = s.repr.flags.contains(TcpFlags::FIN) && !dropped;
        dropped |= first_fin;
        !first_fin
    });
    assert_eq!(pair.client.state(), TcpState::FinWait1);
    assert!(pair.advance_to_next_timeout());
    pair.pump(|_, _| true);
    assert_eq!(pair.client.state(), TcpState::FinWait2);
    assert_eq!(pair.server.state(), TcpState::CloseWait);
    assert_eq!(pair.client.counters().retransmissions, 1);
}

#[test]
fn fin_beyond_a_gap_takes_effect_when_the_gap_fills() {
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(1500, 4))).unwrap();
    pair.client.close();
    let segments = drain(&mut pair.client, pair.now);
    assert_eq!(segments.len(), 3, "two data segments and the FIN");
    deliver(&mut pair.server, pair.now, &segments[1]);
    deliver(&mut pair.server, pair.now, &segments[2]);
    assert_eq!(pair.server.state(), TcpState::Established);
    deliver(&mut pair.server, pair.now, &segments[0]);
    assert_eq!(pair.server.state(), TcpState::CloseWait);
    let ack = drain(&mut pair.server, pair.now);
    assert_eq!(ack.last().unwrap().repr.ack, CLIENT_ISS + 1 + 1500 + 1);
}
