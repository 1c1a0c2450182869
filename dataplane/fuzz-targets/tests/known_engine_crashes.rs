//! Inputs with which the engine target found engine bugs, as readable scripts. A bug not fixed
//! yet has its test ignored with the bug's description (and a line in
//! `dataplane/fuzz/known-crashes`); once the engine is fixed the test guards the fix, and the
//! input is in the corpus too.

use mpterm_fuzz::engine::engine_frames;
use mpterm_fuzz::engine::script::{encode, SegmentSpec, Step};

/// A data segment toward the backend carries timestamps and a SACK block on top of a full
/// MSS of payload: 1512 bytes of IPv4 on a 1500-byte MTU (RFC 9293 section 3.7.1: the data
/// must shrink by the options sent). `Tcb::max_payload_per_segment` leaves room for
/// timestamps and the owner's reserve only, while the data path adds up to three SACK blocks
/// when the owner reserves nothing (the backend side and plain-TCP clients).
/// Fixed: the data path keeps only the SACK blocks that fit within the peer's MSS.
#[test]
fn sack_blocks_on_a_full_data_segment_exceed_the_mtu() {
    let script = [
        // The backend sends out of order: the engine holds it and SACKs it.
        Step::Segment(SegmentSpec {
            peer: 1,
            seq_delta: 255,
            ack_delta: -141,
            window_reduction: 255,
            payload_len: 2047,
            ..SegmentSpec::default()
        }),
        // The client sends more than an MSS; the engine relays a full segment to the backend.
        Step::Burst {
            peer: 0,
            segments: 1,
            size: 1792,
        },
    ];
    engine_frames(&encode(&script));
}
