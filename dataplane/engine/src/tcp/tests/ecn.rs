//! ECN between two blocks (RFC 3168): set up by the SYNs, CE echoed with ECE until CWR, and an
//! ECE reducing the window once per window of data.

use super::*;

fn ecn_tuning(ecn: bool) -> TcpTuning {
    TcpTuning { ecn, ..tuning() }
}

#[test]
fn both_syns_set_ecn_up_and_either_side_can_refuse() {
    let pair = Pair::with_tunings(ecn_tuning(true), ecn_tuning(true));
    assert!(pair.client.ecn_enabled() && pair.server.ecn_enabled());
    // Section 6.1.1: the SYN says ECE and CWR, the SYN-ACK ECE alone.
    let (_, syn) = &pair.log[0];
    assert!(syn.repr.flags.contains(TcpFlags::ECE | TcpFlags::CWR));
    let (_, syn_ack) = pair
        .log
        .iter()
        .find(|(dir, s)| *dir == Dir::ToClient && s.repr.flags.contains(TcpFlags::SYN))
        .unwrap();
    assert!(syn_ack.repr.flags.contains(TcpFlags::ECE));
    assert!(!syn_ack.repr.flags.contains(TcpFlags::CWR));
    for (client, server) in [(true, false), (false, true)] {
        let pair = Pair::with_tunings(ecn_tuning(client), ecn_tuning(server));
        assert!(!pair.client.ecn_enabled() && !pair.server.ecn_enabled());
        // Only a SYN that asks; nothing after it says ECE.
        assert!(pair.log[1..]
            .iter()
            .all(|(_, s)| !s.repr.flags.contains(TcpFlags::ECE)));
    }
}

#[test]
fn a_ce_mark_is_echoed_until_the_peers_cwr_and_the_sender_reduces_once_per_window() {
    let mut pair = Pair::with_tunings(ecn_tuning(true), ecn_tuning(true));
    // Let the window grow past its initial size.
    let mut received = Vec::new();
    pair.client
        .send(Bytes::from(pattern(12 * 1024, 1)))
        .unwrap();
    pair.pump(|_, _| true);
    read_all(&mut pair.server, &mut received);
    pair.pump(|_, _| true);
    let window_before = pair.client.congestion_window();
    // A router marks one data segment CE.
    pair.client.send(Bytes::from(pattern(8 * 988, 2))).unwrap();
    let data = drain(&mut pair.client, pair.now);
    assert!(data.len() >= 4);
    assert!(data.iter().all(|s| !s.repr.flags.contains(TcpFlags::CWR)));
    pair.now = pair.now + HOP;
    let mut acks = Vec::new();
    for (index, segment) in data.iter().enumerate() {
        if index == 1 {
            pair.server.note_congestion_experienced();
        }
        deliver(&mut pair.server, pair.now, segment);
        acks.extend(drain(&mut pair.server, pair.now));
    }
    assert_eq!(pair.server.counters().ecn_ce_received, 1);
    // Section 6.1.3: every ACK from the marked segment on says ECE.
    let echoing: Vec<bool> = acks
        .iter()
        .map(|ack| ack.repr.flags.contains(TcpFlags::ECE))
        .collect();
    let first = echoing.iter().position(|&e| e).expect("the mark is echoed");
    assert!(echoing[first..].iter().all(|&e| e), "{echoing:?}");
    // Section 6.1.2: the first ECE reduces the window, the others of that window do not.
    pair.now = pair.now + HOP;
    for ack in &acks {
        deliver(&mut pair.client, pair.now, ack);
    }
    assert_eq!(pair.client.counters().ecn_window_reductions, 1);
    assert!(pair.client.congestion_window() < window_before);
    assert_eq!(
        pair.client.counters().retransmissions,
        0,
        "nothing was lost"
    );
    // The next new data segment says CWR, once; the receiver stops echoing.
    pair.client.send(Bytes::from(pattern(2 * 988, 3))).unwrap();
    let next = drain(&mut pair.client, pair.now);
    assert!(next[0].repr.flags.contains(TcpFlags::CWR));
    assert!(next[1..]
        .iter()
        .all(|s| !s.repr.flags.contains(TcpFlags::CWR)));
    pair.now = pair.now + HOP;
    for segment in &next {
        deliver(&mut pair.server, pair.now, segment);
    }
    let after_cwr = drain(&mut pair.server, pair.now);
    assert!(!after_cwr.is_empty());
    assert!(after_cwr
        .iter()
        .all(|s| !s.repr.flags.contains(TcpFlags::ECE)));
    pair.pump(|_, _| true);
    read_all(&mut pair.server, &mut received);
    pair.pump(|_, _| true);
    assert_eq!(pair.client.counters().ecn_window_reductions, 1);
    // A later mark, in a later window, reduces again.
    pair.server.note_congestion_experienced();
    pair.client.send(Bytes::from(pattern(988, 4))).unwrap();
    let one = drain(&mut pair.client, pair.now);
    deliver(&mut pair.server, pair.now, &one[0]);
    pair.pump(|_, _| true);
    assert_eq!(pair.client.counters().ecn_window_reductions, 2);
}

#[test]
fn without_ecn_set_up_marks_and_echoes_do_nothing() {
    let mut pair = Pair::new();
    assert!(!pair.client.ecn_enabled());
    pair.client.send(Bytes::from(pattern(4 * 988, 5))).unwrap();
    let data = drain(&mut pair.client, pair.now);
    pair.server.note_congestion_experienced();
    for segment in &data {
        deliver(&mut pair.server, pair.now, segment);
    }
    let mut acks = drain(&mut pair.server, pair.now);
    assert!(acks.iter().all(|s| !s.repr.flags.contains(TcpFlags::ECE)));
    for ack in acks.iter_mut() {
        // A peer that sets ECE anyway is not heard.
        ack.repr.flags = ack.repr.flags | TcpFlags::ECE;
        deliver(&mut pair.client, pair.now, ack);
    }
    assert_eq!(pair.server.counters().ecn_ce_received, 0);
    assert_eq!(pair.client.counters().ecn_window_reductions, 0);
}
