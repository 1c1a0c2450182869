//! The in-memory link: buffers recycle, views slice without copying, frames cross whole.

use super::*;

#[test]
fn a_buffer_returns_to_its_pool_with_its_last_view() {
    let pool = BufferPool::new(2, 64);
    let buffer = pool.alloc_copy(b"hello world").expect("a buffer");
    let view = buffer.slice(6..11);
    assert_eq!(view.as_ref(), b"world");
    assert_eq!(pool.in_use(), 1);
    drop(buffer);
    assert_eq!(pool.in_use(), 1, "the slice still holds it");
    drop(view);
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn an_empty_pool_and_an_oversized_fill_give_none_and_leak_nothing() {
    let pool = BufferPool::new(1, 8);
    assert!(pool.alloc_copy(b"too long for it").is_none());
    assert_eq!(pool.in_use(), 0, "a failed fill gives the buffer back");
    let held = pool.alloc_copy(b"ok").expect("a buffer");
    assert!(pool.alloc_copy(b"x").is_none(), "the pool is empty");
    drop(held);
    assert!(pool.alloc_copy(b"x").is_some());
}

#[test]
fn slices_are_clamped_never_a_panic() {
    let pool = BufferPool::new(1, 16);
    let buffer = pool.alloc_copy(b"0123456789").expect("a buffer");
    assert_eq!(buffer.slice(8..100).as_ref(), b"89");
    assert_eq!(buffer.slice(50..60).as_ref(), b"");
    assert_eq!(buffer.slice(2..6).slice(1..3).as_ref(), b"34");
}

#[test]
fn frames_cross_the_link_whole_and_only_when_carried() {
    let a_pool = BufferPool::new(8, 256);
    let b_pool = BufferPool::new(8, 256);
    let (link, mut a, mut b) = MemoryLink::new(4, a_pool.clone(), b_pool.clone());
    let mut frames = MemoryFrames::new(a_pool.clone());
    let payload = a_pool.alloc_copy(&[7u8; 200]).expect("payload");
    let mut burst = MemoryBurst::default();
    burst
        .push(frames.build(b"header", Some(&payload)).expect("chained"))
        .expect("room");
    burst
        .push(
            frames
                .build(b"small", Some(&payload.slice(0..3)))
                .expect("copied"),
        )
        .expect("room");
    assert_eq!(a.tx.tx_burst(&mut burst), 2);
    assert_eq!(
        b.rx.rx_burst(),
        0,
        "nothing arrives before the wire carries it"
    );
    assert_eq!(link.carry(), 2);
    assert_eq!(b.rx.rx_burst(), 2);
    let mut received = Vec::new();
    b.rx.drain(|frame| received.push(frame.as_ref().to_vec()));
    let mut expected = b"header".to_vec();
    expected.extend_from_slice(&[7; 200]);
    assert_eq!(received[0], expected);
    assert_eq!(received[1], b"small\x07\x07\x07");
    assert_eq!(link.a_to_b().frames, 2);
    assert_eq!(b_pool.in_use(), 0, "received frames went back to b's pool");
    drop(payload);
    assert_eq!(a_pool.in_use(), 0, "sent frames went back to a's pool");
    assert!(link.is_idle());
    let _ = &mut a.rx;
    let _ = &mut b.tx;
}

#[test]
fn a_full_transmit_ring_refuses_and_keeps_the_rest_in_order() {
    let pool = BufferPool::new(16, 64);
    let (link, mut a, mut b) = MemoryLink::new(2, pool.clone(), pool.clone());
    let mut frames = MemoryFrames::new(pool.clone());
    let mut burst = MemoryBurst::default();
    for index in 0..3u8 {
        burst
            .push(frames.build(&[index; 10], None).expect("frame"))
            .expect("room");
    }
    assert_eq!(a.tx.tx_burst(&mut burst), 2, "the ring holds two");
    assert_eq!(burst.len(), 1);
    link.carry();
    assert_eq!(a.tx.tx_burst(&mut burst), 1);
    link.carry();
    let mut firsts = Vec::new();
    while b.rx.rx_burst() > 0 {
        b.rx.drain(|frame| firsts.push(frame.as_ref()[0]));
        link.carry();
    }
    assert_eq!(firsts, [0, 1, 2]);
}
