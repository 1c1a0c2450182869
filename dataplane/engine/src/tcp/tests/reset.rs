//! RST rules (RFC 9293 3.10.7, RFC 5961 section 3.2) and challenge ACKs.

use super::*;

fn rst(from: &Tcb<Bytes>, seq: SeqNumber) -> TcpRepr<'static> {
    TcpRepr {
        src_port: from.local().port(),
        dst_port: from.remote().port(),
        seq,
        ack: SeqNumber(0),
        flags: TcpFlags::RST,
        window: 0,
        options: TcpOptions::default(),
    }
}

/// Checks the three RST cases on `tcb`, whose RCV.NXT is `rcv_nxt`: outside the window it is
/// ignored, inside but not exact it draws a challenge ACK, exact it closes.
fn check_rst_rules(tcb: &mut Tcb<Bytes>, peer: &Tcb<Bytes>, now: Instant, rcv_nxt: SeqNumber) {
    let state = tcb.state();
    drain(tcb, now);
    tcb.handle_segment(now, &rst(peer, rcv_nxt + 1_000_000), None);
    assert_eq!(tcb.state(), state, "out-of-window RST is ignored");
    assert!(
        drain(tcb, now).is_empty(),
        "no answer to an out-of-window RST"
    );

    tcb.handle_segment(now, &rst(peer, rcv_nxt + 100), None);
    assert_eq!(tcb.state(), state, "in-window inexact RST does not reset");
    let challenge = drain(tcb, now);
    assert_eq!(challenge.len(), 1, "challenge ACK in {state:?}");
    if state == TcpState::SynReceived {
        // Before the handshake completes the challenge is the SYN-ACK again.
        assert_eq!(challenge[0].repr.flags, TcpFlags::SYN | TcpFlags::ACK);
    } else {
        assert!(is_pure_ack(&challenge[0]));
    }
    assert_eq!(challenge[0].repr.ack, rcv_nxt);

    tcb.handle_segment(now, &rst(peer, rcv_nxt), None);
    assert_eq!(
        tcb.state(),
        TcpState::Closed,
        "exact RST resets in {state:?}"
    );
    assert_eq!(tcb.close_reason(), Some(CloseReason::ResetByPeer));
    assert!(drain(tcb, now).is_empty(), "nothing is sent after a reset");
}

#[test]
fn rst_in_established_follows_the_exact_match_rule() {
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(5000, 5))).unwrap();
    pair.pump(|_, _| true);
    let rcv_nxt = CLIENT_ISS + 1 + 5000;
    let now = pair.now;
    check_rst_rules(&mut pair.server, &pair.client, now, rcv_nxt);
}

#[test]
fn rst_in_syn_received_follows_the_exact_match_rule() {
    let now = Instant::from_nanos(5);
    let mut client = Tcb::<Bytes>::connect(now, CLIENT, SERVER, CLIENT_ISS, MSS, tuning());
    let syn = client.poll_segment(now).unwrap();
    let mut server =
        Tcb::<Bytes>::accept(now, SERVER, CLIENT, &syn.repr, SERVER_ISS, MSS, tuning());
    assert_eq!(server.state(), TcpState::SynReceived);
    check_rst_rules(&mut server, &client, now, CLIENT_ISS + 1);
}

#[test]
fn rst_in_closing_states_follows_the_exact_match_rule() {
    // FIN-WAIT-2 on the client, CLOSE-WAIT on the server.
    let mut pair = Pair::new();
    pair.client.close();
    pair.pump(|_, _| true);
    assert_eq!(pair.client.state(), TcpState::FinWait2);
    assert_eq!(pair.server.state(), TcpState::CloseWait);
    let now = pair.now;
    check_rst_rules(&mut pair.client, &pair.server, now, SERVER_ISS + 1);
    check_rst_rules(&mut pair.server, &pair.client, now, CLIENT_ISS + 2);

    // LAST-ACK on the server (its FIN unacknowledged), FIN-WAIT-1 on a fresh client.
    let mut pair = Pair::new();
    pair.client.close();
    pair.pump(|_, _| true);
    pair.server.close();
    drain(&mut pair.server, pair.now);
    assert_eq!(pair.server.state(), TcpState::LastAck);
    let now = pair.now;
    check_rst_rules(&mut pair.server, &pair.client, now, CLIENT_ISS + 2);

    let mut pair = Pair::new();
    pair.client.close();
    drain(&mut pair.client, pair.now);
    assert_eq!(pair.client.state(), TcpState::FinWait1);
    let now = pair.now;
    check_rst_rules(&mut pair.client, &pair.server, now, SERVER_ISS + 1);
}

#[test]
fn rst_in_time_wait_is_ignored() {
    let mut pair = Pair::new();
    pair.client.close();
    pair.pump(|_, _| true);
    pair.server.close();
    pair.pump(|_, _| true);
    assert_eq!(pair.client.state(), TcpState::TimeWait);
    let now = pair.now;
    // RFC 1337: even an exactly matching RST leaves TIME-WAIT to its timer.
    let reset = TcpRepr {
        src_port: SERVER.port(),
        dst_port: CLIENT.port(),
        seq: SERVER_ISS + 2,
        ack: SeqNumber(0),
        flags: TcpFlags::RST,
        window: 0,
        options: TcpOptions::default(),
    };
    pair.client.handle_segment(now, &reset, None);
    assert_eq!(pair.client.state(), TcpState::TimeWait);
    assert_eq!(pair.client.close_reason(), None);
}

#[test]
fn rst_in_syn_sent_needs_an_acceptable_ack() {
    let now = Instant::from_nanos(5);
    let mut client = Tcb::<Bytes>::connect(now, CLIENT, SERVER, CLIENT_ISS, MSS, tuning());
    client.poll_segment(now).unwrap();
    let mut reset = TcpRepr {
        src_port: SERVER.port(),
        dst_port: CLIENT.port(),
        seq: SeqNumber(0),
        ack: CLIENT_ISS + 5,
        flags: TcpFlags::RST | TcpFlags::ACK,
        window: 0,
        options: TcpOptions::default(),
    };
    client.handle_segment(now, &reset, None);
    assert_eq!(
        client.state(),
        TcpState::SynSent,
        "RST with a wrong ACK is ignored"
    );
    assert!(client.poll_segment(now).is_none(), "never answer a RST");
    reset.flags = TcpFlags::RST;
    client.handle_segment(now, &reset, None);
    assert_eq!(
        client.state(),
        TcpState::SynSent,
        "RST without ACK is ignored"
    );
    reset.flags = TcpFlags::RST | TcpFlags::ACK;
    reset.ack = CLIENT_ISS + 1;
    client.handle_segment(now, &reset, None);
    assert_eq!(client.state(), TcpState::Closed);
    assert_eq!(client.close_reason(), Some(CloseReason::ResetByPeer));
}

#[test]
fn abort_sends_a_reset_the_peer_accepts() {
    let mut pair = Pair::new();
    pair.client.send(Bytes::from(pattern(3000, 6))).unwrap();
    pair.pump(|_, _| true);
    pair.client.abort();
    assert_eq!(pair.client.state(), TcpState::Closed);
    assert_eq!(pair.client.close_reason(), Some(CloseReason::Aborted));
    let reset = drain(&mut pair.client, pair.now);
    assert_eq!(reset.len(), 1);
    assert!(reset[0].repr.flags.contains(TcpFlags::RST));
    deliver(&mut pair.server, pair.now, &reset[0]);
    assert_eq!(pair.server.state(), TcpState::Closed);
    assert_eq!(pair.server.close_reason(), Some(CloseReason::ResetByPeer));
}

#[test]
fn syn_in_a_synchronized_state_draws_a_challenge_ack() {
    let mut pair = Pair::new();
    let syn = pair.log[0].1.clone();
    deliver(&mut pair.server, pair.now, &syn);
    assert_eq!(pair.server.state(), TcpState::Established);
    let answer = drain(&mut pair.server, pair.now);
    assert_eq!(answer.len(), 1);
    assert!(is_pure_ack(&answer[0]));
}

#[test]
fn rst_in_closing_follows_the_exact_match_rule() {
    let mut pair = Pair::new();
    pair.client.close();
    pair.server.close();
    let client_fin = drain(&mut pair.client, pair.now);
    let server_fin = drain(&mut pair.server, pair.now);
    deliver(&mut pair.server, pair.now, &client_fin[0]);
    deliver(&mut pair.client, pair.now, &server_fin[0]);
    assert_eq!(pair.client.state(), TcpState::Closing);
    let now = pair.now;
    check_rst_rules(&mut pair.client, &pair.server, now, SERVER_ISS + 2);
}
