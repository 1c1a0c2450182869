//! The pattern as payload buffers the client engine sends by reference.
//!
//! The generator hands the client engine slices of buffers that already hold the pattern, so
//! upload payload is never copied or generated per packet. On DPDK those buffers are mbufs,
//! and an mbuf's data room is at most 65,535 bytes: the pattern's buffer ([`PERIOD`] bytes
//! plus [`MAX_CHUNK_LEN`] of slack, 74,536 in all) does not fit one. It is covered instead by
//! [`WINDOWS`] overlapping windows: window `i` holds buffer bytes
//! `[i * WINDOW_STRIDE, i * WINDOW_STRIDE + WINDOW_LEN)`, and since every window reaches
//! [`MAX_CHUNK_LEN`] beyond the start of the next one, any run of at most [`MAX_CHUNK_LEN`]
//! bytes that starts below [`PERIOD`] (every chunk of every stream does, see
//! [`Pattern::position`]) lies inside the window its start falls in ([`locate`]).
//!
//! An mbuf counts its references in 16 bits, and every chunk queued on a connection (and every
//! frame on its way out that chains one) holds one. So the windows come in replicas: each
//! connection slot uses the replica `slot % replicas`, and [`replicas_for`] picks enough of them
//! that the references one replica can collect stay below [`REFERENCE_BUDGET`]. A window that
//! is near the limit anyway refuses to give out another slice ([`PatternWindows::slice`]
//! returns `None`), and the caller tries again later, when acknowledgments have released some.

use mpterm_engine::Payload;
use mpterm_worker::io::memory::PoolBuffer;
use mpterm_worker::MbufPayload;

use crate::pattern::{Pattern, MAX_CHUNK_LEN, PERIOD};

/// How far apart consecutive windows start, in bytes of the pattern buffer.
pub const WINDOW_STRIDE: usize = 8192;
/// Bytes in one window: a stride plus the longest chunk, so that chunks starting anywhere in
/// the stride end inside the window.
pub const WINDOW_LEN: usize = WINDOW_STRIDE + MAX_CHUNK_LEN;
/// Windows that cover every start below [`PERIOD`].
pub const WINDOWS: usize = PERIOD.div_ceil(WINDOW_STRIDE);
/// References one replica's windows may collect by design: the 16-bit counter's range less
/// room for the transient references of frames in flight.
pub const REFERENCE_BUDGET: usize = 60_000;
/// References at which a window refuses further slices, as a backstop should the design bound
/// ever be wrong: the counter must never wrap (`MbufSlice` aborts the process rather).
pub const REFERENCE_LIMIT: usize = 64_000;

/// Where a run of `len` bytes that starts at `position` of the pattern buffer lies: the window
/// and the offset inside it. `None` when no window holds it whole (a start at or beyond
/// [`PERIOD`], or more than [`MAX_CHUNK_LEN`] bytes).
pub fn locate(position: usize, len: usize) -> Option<(usize, usize)> {
    if position >= PERIOD || len > MAX_CHUNK_LEN {
        return None;
    }
    let window = position / WINDOW_STRIDE;
    let start = position - window * WINDOW_STRIDE;
    (start + len <= WINDOW_LEN).then_some((window, start))
}

/// The buffer bytes window `window` holds.
pub fn window_range(window: usize) -> core::ops::Range<usize> {
    let start = window * WINDOW_STRIDE;
    start..start + WINDOW_LEN
}

/// How many replicas keep every window's references within [`REFERENCE_BUDGET`] when
/// `slots` connection slots each hold at most `references_per_slot` references at once
/// (`slots` share the replicas round-robin, and in the worst case all of a replica's
/// connections hold all their references in one window).
pub fn replicas_for(slots: usize, references_per_slot: usize) -> usize {
    let per_replica = (REFERENCE_BUDGET / references_per_slot.max(1)).max(1);
    slots.div_ceil(per_replica).max(1)
}

/// A payload buffer that can say how many references share it.
pub trait WindowBuffer: Payload {
    /// References on the underlying buffer now, or `None` when the count is not bounded.
    fn references(&self) -> Option<usize>;
}

impl WindowBuffer for MbufPayload<'_> {
    fn references(&self) -> Option<usize> {
        Some(usize::from(self.as_mbuf_slice().refcount()))
    }
}

impl WindowBuffer for PoolBuffer {
    /// An `Rc` counts in a `usize`: no limit worth checking.
    fn references(&self) -> Option<usize> {
        None
    }
}

/// Every replica of every window, each a buffer holding its bytes of the pattern.
#[derive(Debug)]
pub struct PatternWindows<B> {
    /// `replicas * WINDOWS` buffers: replica `r`'s window `w` at `r * WINDOWS + w`.
    buffers: Vec<B>,
    replicas: usize,
}

impl<B: WindowBuffer> PatternWindows<B> {
    /// `replicas` copies of the windows of `pattern`, each buffer made by `make` from the
    /// window's bytes; `None` when `make` fails (no memory for a buffer).
    pub fn new(
        pattern: &Pattern,
        replicas: usize,
        mut make: impl FnMut(&[u8]) -> Option<B>,
    ) -> Option<Self> {
        let replicas = replicas.max(1);
        let bytes = pattern.as_bytes();
        let mut buffers = Vec::with_capacity(replicas * WINDOWS);
        for _ in 0..replicas {
            for window in 0..WINDOWS {
                let buffer = make(&bytes[window_range(window)])?;
                if buffer.len() != WINDOW_LEN {
                    return None;
                }
                buffers.push(buffer);
            }
        }
        Some(PatternWindows { buffers, replicas })
    }

    pub fn replicas(&self) -> usize {
        self.replicas
    }

    /// `len` bytes of the pattern buffer from `position` (see [`Pattern::position`]) as a slice
    /// of a window of the replica for connection slot `slot`: no copy, one more reference.
    /// `None` when no window holds the run (see [`locate`]) or the window is at
    /// [`REFERENCE_LIMIT`].
    pub fn slice(&self, slot: usize, position: usize, len: usize) -> Option<B> {
        let (window, start) = locate(position, len)?;
        let buffer = &self.buffers[(slot % self.replicas) * WINDOWS + window];
        if buffer
            .references()
            .is_some_and(|references| references >= REFERENCE_LIMIT)
        {
            return None;
        }
        Some(buffer.slice(start..start + len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::STREAMS;

    /// A plain buffer for the tests, with a settable reference count.
    #[derive(Debug, Clone)]
    struct TestBuffer {
        bytes: std::rc::Rc<Vec<u8>>,
        range: core::ops::Range<usize>,
        references: Option<usize>,
    }

    impl AsRef<[u8]> for TestBuffer {
        fn as_ref(&self) -> &[u8] {
            &self.bytes[self.range.clone()]
        }
    }

    impl Payload for TestBuffer {
        fn slice(&self, range: core::ops::Range<usize>) -> Self {
            let len = self.range.len();
            let end = range.end.min(len);
            let start = range.start.min(end);
            TestBuffer {
                bytes: self.bytes.clone(),
                range: self.range.start + start..self.range.start + end,
                references: self.references,
            }
        }
    }

    impl WindowBuffer for TestBuffer {
        fn references(&self) -> Option<usize> {
            self.references
        }
    }

    fn windows(pattern: &Pattern, replicas: usize) -> PatternWindows<TestBuffer> {
        PatternWindows::new(pattern, replicas, |bytes| {
            Some(TestBuffer {
                bytes: std::rc::Rc::new(bytes.to_vec()),
                range: 0..bytes.len(),
                references: Some(1),
            })
        })
        .expect("windows")
    }

    #[test]
    fn the_windows_cover_the_whole_buffer_and_fit_an_mbuf() {
        let pattern = Pattern::new(3);
        assert_eq!(WINDOWS, 8);
        assert_eq!(
            window_range(WINDOWS - 1).end,
            pattern.as_bytes().len(),
            "the last window ends where the slack ends"
        );
        // An mbuf's data room is a u16 and includes the 128-byte headroom.
        const { assert!(WINDOW_LEN + 128 <= u16::MAX as usize) };
    }

    #[test]
    fn every_start_and_length_maps_to_one_window_holding_the_run() {
        // Every start below the period, with the lengths at the edges of the windows.
        for position in 0..PERIOD {
            for len in [0, 1, MAX_CHUNK_LEN - 1, MAX_CHUNK_LEN] {
                let (window, start) = locate(position, len).expect("every run has a window");
                let range = window_range(window);
                assert_eq!(range.start + start, position);
                assert!(range.start + start + len <= range.end, "{position} {len}");
            }
        }
        assert_eq!(locate(PERIOD, 1), None, "starts are below the period");
        assert_eq!(locate(0, MAX_CHUNK_LEN + 1), None, "no chunk is that long");
    }

    #[test]
    fn every_stream_offset_and_length_gives_the_stream_bytes() {
        let pattern = Pattern::new(11);
        let windows = windows(&pattern, 3);
        // Every phase of the buffer is reached by stream 0's offsets 0..PERIOD, and other
        // streams are the same phases shifted: cover stream 0 fully, and a spread of others.
        let lengths = [1, 7, 1448, 8952, MAX_CHUNK_LEN];
        for offset in 0..PERIOD as u64 {
            let len = lengths[offset as usize % lengths.len()];
            check(&pattern, &windows, 0, offset, len);
        }
        for stream in (0..STREAMS).step_by(997) {
            for offset in (0..3 * PERIOD as u64).step_by(4099) {
                for len in lengths {
                    check(&pattern, &windows, stream, offset, len);
                }
            }
        }
    }

    fn check(
        pattern: &Pattern,
        windows: &PatternWindows<TestBuffer>,
        stream: u64,
        offset: u64,
        len: usize,
    ) {
        let position = pattern.position(stream, offset);
        // Slots beyond the replicas wrap around to them.
        let slot = (offset as usize + stream as usize) % (windows.replicas() + 2);
        let slice = windows
            .slice(slot, position, len)
            .expect("a window holds it");
        assert_eq!(slice.as_ref().len(), len);
        assert!(
            pattern.verify(stream, offset, slice.as_ref()),
            "stream {stream} offset {offset} len {len} slot {slot}"
        );
    }

    #[test]
    fn a_window_at_its_reference_limit_gives_out_nothing() {
        let pattern = Pattern::new(5);
        let mut windows = windows(&pattern, 1);
        assert!(windows.slice(0, 100, 1000).is_some());
        windows.buffers[0].references = Some(REFERENCE_LIMIT);
        assert!(windows.slice(0, 100, 1000).is_none(), "window 0 is full");
        assert!(
            windows.slice(0, WINDOW_STRIDE, 1000).is_some(),
            "window 1 is not"
        );
    }

    #[test]
    fn replicas_keep_each_within_the_budget() {
        assert_eq!(replicas_for(1, 1000), 1);
        assert_eq!(replicas_for(60, 1000), 1);
        assert_eq!(replicas_for(61, 1000), 2);
        assert_eq!(replicas_for(10_000, 726), 122);
        assert_eq!(replicas_for(3, 100_000), 3, "one slot per replica at least");
    }
}
