//! Liveness limits: the FIN-WAIT-2 timeout.

use super::*;

#[test]
fn fin_wait_2_behind_our_own_zero_window_is_not_cut() {
    // Found in review: a peer that answers a half-close with a large response, read slowly on
    // our side, can only probe our zero window; those probes did not count as life, and
    // FIN-WAIT-2 ended after its timeout with the peer alive and the response cut short.
    let mut ours = tuning();
    ours.liveness.fin_wait_2_timeout = Duration::from_secs(60);
    let mut pair = Pair::with_tunings(ours, tuning());
    pair.client.close();
    pair.pump(|_, _| true);
    assert_eq!(pair.client.state(), TcpState::FinWait2);
    let response = Bytes::from(pattern(64 * 1024, 3));
    let mut sent = 0;
    let start = pair.now;
    while pair.now - start < Duration::from_secs(90) {
        feed(&mut pair.server, &response, &mut sent);
        pair.pump(|_, _| true);
        // Our side reads nothing: its buffer fills and its window stays closed.
        if !pair.advance_to_next_timeout() {
            break;
        }
    }
    assert_eq!(
        pair.client.state(),
        TcpState::FinWait2,
        "{:?}",
        pair.client.close_reason()
    );
    assert!(pair.client.received_buffered() > 0);
}
