//! The handshake and the options it negotiates.

use super::*;

#[test]
fn handshake_negotiates_mss_window_scale_timestamps_and_sack() {
    let big = TcpTuning {
        receive_buffer: 1 << 20,
        ..tuning()
    };
    let pair = Pair::with_tunings(big, big);
    let syn = &pair.log[0].1.repr;
    assert_eq!(syn.flags, TcpFlags::SYN);
    assert_eq!(syn.seq, CLIENT_ISS);
    assert_eq!(syn.options.mss, Some(MSS));
    // 1 MiB needs a shift of 5: 65535 << 4 is just below 2^20.
    assert_eq!(syn.options.window_scale, Some(5));
    assert!(syn.options.sack_permitted);
    assert!(syn.options.timestamps.is_some_and(|ts| ts.echo_reply == 0));

    let (dir, syn_ack) = &pair.log[1];
    assert_eq!(*dir, Dir::ToClient);
    let syn_ack = &syn_ack.repr;
    assert_eq!(syn_ack.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(syn_ack.seq, SERVER_ISS);
    assert_eq!(syn_ack.ack, CLIENT_ISS + 1);
    assert_eq!(syn_ack.options.mss, Some(MSS));
    assert_eq!(syn_ack.options.window_scale, Some(5));
    assert!(syn_ack.options.sack_permitted);
    let ts = syn_ack.options.timestamps.expect("timestamps answered");
    assert_eq!(ts.echo_reply, syn.options.timestamps.unwrap().value);
    // SYN windows are never scaled (RFC 7323 section 2.2).
    assert_eq!(syn.window, u16::MAX);

    let (_, ack) = &pair.log[2];
    assert!(is_pure_ack(ack));
    assert_eq!(ack.repr.ack, SERVER_ISS + 1);
    assert_eq!(ack.repr.seq, CLIENT_ISS + 1);
    // 1 MiB advertised with shift 5.
    assert_eq!(ack.repr.window, ((1u32 << 20) >> 5) as u16);

    for tcb in [&pair.client, &pair.server] {
        assert_eq!(tcb.peer_mss(), MSS);
        assert!(tcb.timestamps_enabled());
        assert!(tcb.sack_permitted());
        // MSS minus the 12 bytes of aligned timestamps.
        assert_eq!(tcb.max_payload_per_segment(), usize::from(MSS) - 12);
    }
}

#[test]
fn passive_open_without_options_uses_defaults_and_offers_nothing_extra() {
    let now = Instant::from_nanos(5);
    let syn = TcpRepr {
        src_port: CLIENT.port(),
        dst_port: SERVER.port(),
        seq: CLIENT_ISS,
        ack: SeqNumber(0),
        flags: TcpFlags::SYN,
        window: 4000,
        options: TcpOptions::default(),
    };
    let big = TcpTuning {
        receive_buffer: 1 << 20,
        ..tuning()
    };
    let mut server = Tcb::<Bytes>::accept(now, SERVER, CLIENT, &syn, SERVER_ISS, MSS, big);
    let syn_ack = server.poll_segment(now).expect("SYN-ACK");
    assert_eq!(syn_ack.repr.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(syn_ack.repr.options.mss, Some(MSS));
    assert_eq!(syn_ack.repr.options.window_scale, None);
    assert!(!syn_ack.repr.options.sack_permitted);
    assert_eq!(syn_ack.repr.options.timestamps, None);
    assert!(!server.timestamps_enabled());
    assert!(!server.sack_permitted());
    assert_eq!(server.peer_mss(), 536, "RFC 9293 3.7.1 default");

    let ack = TcpRepr {
        seq: CLIENT_ISS + 1,
        ack: SERVER_ISS + 1,
        flags: TcpFlags::ACK,
        window: 4000,
        ..syn
    };
    server.handle_segment(now, &ack, None);
    assert_eq!(server.state(), TcpState::Established);
    server.send(Bytes::from(pattern(3000, 1))).unwrap();
    let segments = drain(&mut server, now);
    assert!(!segments.is_empty());
    for segment in &segments {
        assert!(payload_len(segment) <= 536);
        assert_eq!(segment.repr.options.timestamps, None);
        // Without scaling the 1 MiB buffer is advertised as 65535, unscaled.
        assert_eq!(segment.repr.window, u16::MAX);
    }
    // The peer's 4000-byte window limits what is in flight.
    let sent: usize = segments.iter().map(payload_len).sum();
    assert_eq!(sent, 3000);
}

#[test]
fn passive_side_answers_a_window_scale_offer_even_when_it_needs_no_shift() {
    let now = Instant::from_nanos(5);
    let syn = TcpRepr {
        src_port: CLIENT.port(),
        dst_port: SERVER.port(),
        seq: CLIENT_ISS,
        ack: SeqNumber(0),
        flags: TcpFlags::SYN,
        window: 65535,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            ..TcpOptions::default()
        },
    };
    // 16 KiB fits in 16 bits: our shift is 0, but scaling is on because both SYNs carry it.
    let mut server = Tcb::<Bytes>::accept(now, SERVER, CLIENT, &syn, SERVER_ISS, MSS, tuning());
    let syn_ack = server.poll_segment(now).unwrap();
    assert_eq!(syn_ack.repr.options.window_scale, Some(0));
    let ack = TcpRepr {
        seq: CLIENT_ISS + 1,
        ack: SERVER_ISS + 1,
        flags: TcpFlags::ACK,
        window: 2, // 2 << 7 = 256 bytes
        options: TcpOptions::default(),
        ..syn
    };
    server.handle_segment(now, &ack, None);
    server.send(Bytes::from(pattern(5000, 2))).unwrap();
    let sent: usize = drain(&mut server, now).iter().map(payload_len).sum();
    assert_eq!(sent, 256, "the peer's window is scaled by its shift of 7");
}

#[test]
fn active_open_follows_a_syn_ack_without_timestamps_or_sack() {
    let now = Instant::from_nanos(5);
    let mut client = Tcb::<Bytes>::connect(now, CLIENT, SERVER, CLIENT_ISS, MSS, tuning());
    let syn = client.poll_segment(now).unwrap();
    assert!(syn.repr.options.timestamps.is_some());
    let syn_ack = TcpRepr {
        src_port: SERVER.port(),
        dst_port: CLIENT.port(),
        seq: SERVER_ISS,
        ack: CLIENT_ISS + 1,
        flags: TcpFlags::SYN | TcpFlags::ACK,
        window: 8000,
        options: TcpOptions {
            mss: Some(1200),
            ..TcpOptions::default()
        },
    };
    client.handle_segment(now, &syn_ack, None);
    assert_eq!(client.state(), TcpState::Established);
    assert!(!client.timestamps_enabled());
    assert!(!client.sack_permitted());
    assert_eq!(client.peer_mss(), 1200);
    assert_eq!(client.max_payload_per_segment(), 1200);
    let ack = client.poll_segment(now).expect("third ACK");
    assert!(is_pure_ack(&ack));
    assert_eq!(ack.repr.ack, SERVER_ISS + 1);
    assert_eq!(ack.repr.options.timestamps, None);
    assert!(client.poll_segment(now).is_none());
}

#[test]
fn syn_ack_with_a_wrong_ack_gets_a_reset_and_leaves_syn_sent() {
    let now = Instant::from_nanos(5);
    let mut client = Tcb::<Bytes>::connect(now, CLIENT, SERVER, CLIENT_ISS, MSS, tuning());
    client.poll_segment(now).unwrap();
    let bogus = TcpRepr {
        src_port: SERVER.port(),
        dst_port: CLIENT.port(),
        seq: SERVER_ISS,
        ack: CLIENT_ISS + 7,
        flags: TcpFlags::SYN | TcpFlags::ACK,
        window: 8000,
        options: TcpOptions::default(),
    };
    client.handle_segment(now, &bogus, None);
    assert_eq!(client.state(), TcpState::SynSent);
    let rst = client.poll_segment(now).expect("RST");
    // RFC 9293 3.10.7.3: <SEQ=SEG.ACK><CTL=RST>, which the sender accepts without a
    // challenge (before, the RST went out at ISS + 1 with the ACK bit).
    assert_eq!(rst.repr.flags, TcpFlags::RST);
    assert_eq!(rst.repr.seq, bogus.ack);
}

#[test]
fn lost_syn_ack_is_sent_again_for_a_retransmitted_syn() {
    let now = Instant::from_nanos(5);
    let mut client = Tcb::<Bytes>::connect(now, CLIENT, SERVER, CLIENT_ISS, MSS, tuning());
    let syn = client.poll_segment(now).unwrap();
    let mut server =
        Tcb::<Bytes>::accept(now, SERVER, CLIENT, &syn.repr, SERVER_ISS, MSS, tuning());
    let _lost = server.poll_segment(now).unwrap();
    // The client's timer retransmits the SYN after the initial RTO of one second.
    assert_eq!(client.poll_timeout(), Some(now + Duration::from_secs(1)));
    let later = now + Duration::from_secs(1);
    client.handle_timeout(later);
    let syn_again = client.poll_segment(later).expect("SYN retransmission");
    assert_eq!(syn_again.repr.flags, TcpFlags::SYN);
    assert!(syn_again.is_retransmission);
    deliver(&mut server, later, &syn_again);
    let syn_ack = server.poll_segment(later).expect("SYN-ACK again");
    assert_eq!(syn_ack.repr.flags, TcpFlags::SYN | TcpFlags::ACK);
    deliver(&mut client, later, &syn_ack);
    assert_eq!(client.state(), TcpState::Established);
    assert_eq!(client.counters().retransmissions, 1);
}
