//! The fuzz input of the engine target, decoded as a script of steps around the live
//! connection, and the writer that encodes scripts for seed inputs.
//!
//! Every byte string decodes to a script: each step starts with a tag byte whose low nibble
//! picks the kind of step, then reads its fields. Numbers are relative to what the harness's
//! peers know (their next sequence number, what they have received), and zero means "the
//! correct value", so short or zero-filled inputs are well-formed traffic and the fuzzer
//! spends its mutations on deviations from it.

use crate::byte_reader::ByteReader;

/// Steps beyond this are ignored, to keep one input's run short.
pub const MAX_STEPS: usize = 256;
/// Payload bytes one segment may carry (beyond the interfaces' MSS on purpose).
pub const MAX_PAYLOAD: u16 = 2048;
/// Segments one burst may send.
pub const MAX_BURST: u8 = 64;
/// Raw option bytes one segment may add after the harness's own options.
pub const MAX_RAW_OPTIONS: u8 = 40;
/// Body bytes of an extra MPTCP option (after kind, length and subtype octet).
pub const MAX_EXTRA_OPTION_BODY: u8 = 37;
/// Length of a garbage frame.
pub const MAX_GARBAGE: u16 = 1600;

/// One thing that happens to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// One TCP segment from peer `spec.peer` on its flow.
    Segment(SegmentSpec),
    /// `segments` in-order data segments of `size` bytes from a peer, with its usual options.
    Burst { peer: u8, segments: u8, size: u16 },
    /// A SYN to the listener from a new client port; `kind` picks the MPTCP flavour.
    NewConnection { kind: u8, port: u16 },
    /// A SYN with MP_JOIN (RFC 8684 section 3.2) to the listener.
    Join {
        kind: u8,
        address_id: u8,
        token: u32,
        nonce: u32,
    },
    /// An ARP packet; `kind` picks the operation, sender and target.
    Arp {
        kind: u8,
        interface: u8,
        mac_byte: u8,
    },
    /// An ICMP echo request (or something near it).
    Icmp { kind: u8, payload_len: u8 },
    /// A TCP header of arbitrary bytes on a peer's flow, with correct IPv4 and TCP checksums.
    RawTcp {
        peer: u8,
        keep_ports: bool,
        header: Vec<u8>,
        payload_len: u8,
    },
    /// Arbitrary bytes as a frame.
    Garbage {
        interface: u8,
        flags: u8,
        bytes: Vec<u8>,
    },
    /// Virtual time passes: `amount` (low 12 bits) times 10 us times 2^(high 4 bits).
    Wait { amount: u16 },
    /// Virtual time jumps to the engine's next timer.
    NextTimer,
}

/// A segment relative to its peer's view of the flow.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SegmentSpec {
    pub peer: u8,
    /// XORed with ACK, so zero is a plain ACK.
    pub flags: u8,
    pub seq_delta: i16,
    pub ack_delta: i16,
    /// Subtracted from the largest window.
    pub window_reduction: u16,
    pub payload_len: u16,
    pub options: OptionChoices,
    /// How the segment is misaddressed, if it is (see `frames::Misaddress`).
    pub misaddress: Option<u8>,
}

/// What the peer puts in the option area besides its usual options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OptionChoices {
    pub no_timestamps: bool,
    /// Leaves out the peer's usual MPTCP option (MP_CAPABLE or DSS).
    pub no_mptcp: bool,
    /// A DSS in place of the usual MPTCP option, changed from the correct one.
    pub dss: Option<DssTweak>,
    /// An extra MPTCP option of any subtype: the subtype octet and the body.
    pub extra_mptcp: Option<(u8, Vec<u8>)>,
    /// Raw bytes appended to the option area.
    pub raw: Vec<u8>,
    /// SACK blocks relative to what the peer has received: (left delta, length).
    pub sack: Vec<(i16, u16)>,
    /// The payload is taken from the input instead of the peer's stream.
    pub payload_from_input: Option<Vec<u8>>,
}

/// Deviations of a DSS from the correct one (RFC 8684 section 3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DssTweak {
    pub data_seq_delta: i16,
    pub subflow_seq_delta: i16,
    pub length_delta: i8,
    pub data_ack_delta: i16,
    /// `dss_tweak::*` bits.
    pub flags: u8,
}

/// The bits of [`DssTweak::flags`].
pub mod dss_tweak {
    pub const DATA_SEQ_32: u8 = 0x01;
    pub const DATA_ACK_64: u8 = 0x02;
    pub const NO_DATA_ACK: u8 = 0x04;
    pub const NO_MAPPING: u8 = 0x08;
    pub const DATA_FIN: u8 = 0x10;
    pub const BAD_CHECKSUM: u8 = 0x20;
    pub const NO_CHECKSUM: u8 = 0x40;
    /// A mapping also on a segment without payload.
    pub const EMPTY_MAPPING: u8 = 0x80;
}

mod tag {
    pub const CLIENT_SEGMENT: u8 = 0;
    pub const BACKEND_SEGMENT: u8 = 1;
    pub const PEER_SEGMENT: u8 = 2;
    pub const BURST: u8 = 3;
    pub const NEW_CONNECTION: u8 = 4;
    pub const JOIN: u8 = 5;
    pub const ARP: u8 = 6;
    pub const ICMP: u8 = 7;
    pub const RAW_TCP: u8 = 8;
    pub const GARBAGE: u8 = 9;
    pub const WAIT: u8 = 10;
    pub const NEXT_TIMER: u8 = 11;
    /// 12..=15: a pure ACK with the usual options from peer `tag - 12`.
    pub const ACK_FROM_PEER: u8 = 12;
}

mod option_bits {
    pub const NO_TIMESTAMPS: u8 = 0x01;
    pub const NO_MPTCP: u8 = 0x02;
    pub const DSS: u8 = 0x04;
    pub const EXTRA_MPTCP: u8 = 0x08;
    pub const RAW: u8 = 0x10;
    pub const MISADDRESS: u8 = 0x20;
    pub const SACK: u8 = 0x40;
    pub const PAYLOAD_FROM_INPUT: u8 = 0x80;
}

/// Decodes a whole input into at most [`MAX_STEPS`] steps.
pub fn decode(data: &[u8]) -> Vec<Step> {
    let mut reader = ByteReader::new(data);
    let mut steps = Vec::new();
    while !reader.is_empty() && steps.len() < MAX_STEPS {
        steps.push(decode_step(&mut reader));
    }
    steps
}

fn decode_step(reader: &mut ByteReader<'_>) -> Step {
    let tag = reader.u8() & 0x0f;
    match tag {
        tag::CLIENT_SEGMENT => Step::Segment(decode_segment(reader, 0)),
        tag::BACKEND_SEGMENT => Step::Segment(decode_segment(reader, 1)),
        tag::PEER_SEGMENT => {
            let peer = reader.u8();
            Step::Segment(decode_segment(reader, peer))
        }
        tag::BURST => Step::Burst {
            peer: reader.u8(),
            segments: reader.u8() % MAX_BURST + 1,
            size: reader.u16() % MAX_PAYLOAD,
        },
        tag::NEW_CONNECTION => Step::NewConnection {
            kind: reader.u8(),
            port: reader.u16(),
        },
        tag::JOIN => Step::Join {
            kind: reader.u8(),
            address_id: reader.u8(),
            token: reader.u32(),
            nonce: reader.u32(),
        },
        tag::ARP => Step::Arp {
            kind: reader.u8(),
            interface: reader.u8(),
            mac_byte: reader.u8(),
        },
        tag::ICMP => Step::Icmp {
            kind: reader.u8(),
            payload_len: reader.u8(),
        },
        tag::RAW_TCP => {
            let peer = reader.u8();
            let header_len_byte = reader.u8();
            let header_len = 20 + usize::from(header_len_byte & 0x3f) % 41;
            let payload_len = reader.u8();
            Step::RawTcp {
                peer,
                keep_ports: header_len_byte & 0x80 != 0,
                header: reader.bytes(header_len).to_vec(),
                payload_len,
            }
        }
        tag::GARBAGE => {
            let interface = reader.u8();
            let flags = reader.u8();
            let len = usize::from(reader.u16() % MAX_GARBAGE);
            Step::Garbage {
                interface,
                flags,
                bytes: reader.bytes(len).to_vec(),
            }
        }
        tag::WAIT => Step::Wait {
            amount: reader.u16(),
        },
        tag::NEXT_TIMER => Step::NextTimer,
        peer => Step::Segment(SegmentSpec {
            peer: peer - tag::ACK_FROM_PEER,
            ..SegmentSpec::default()
        }),
    }
}

fn decode_segment(reader: &mut ByteReader<'_>, peer: u8) -> SegmentSpec {
    let flags = reader.u8();
    let seq_delta = reader.i16();
    let ack_delta = reader.i16();
    let window_reduction = reader.u16();
    let payload_len = reader.u16() % MAX_PAYLOAD;
    let bits = reader.u8();
    let mut options = OptionChoices {
        no_timestamps: bits & option_bits::NO_TIMESTAMPS != 0,
        no_mptcp: bits & option_bits::NO_MPTCP != 0,
        ..OptionChoices::default()
    };
    if bits & option_bits::DSS != 0 {
        options.dss = Some(DssTweak {
            data_seq_delta: reader.i16(),
            subflow_seq_delta: reader.i16(),
            length_delta: reader.i8(),
            data_ack_delta: reader.i16(),
            flags: reader.u8(),
        });
    }
    if bits & option_bits::EXTRA_MPTCP != 0 {
        let subtype = reader.u8();
        let len = usize::from(reader.u8() % (MAX_EXTRA_OPTION_BODY + 1));
        options.extra_mptcp = Some((subtype, reader.bytes(len).to_vec()));
    }
    if bits & option_bits::RAW != 0 {
        let len = usize::from(reader.u8() % (MAX_RAW_OPTIONS + 1));
        options.raw = reader.bytes(len).to_vec();
    }
    let misaddress = (bits & option_bits::MISADDRESS != 0).then(|| reader.u8());
    if bits & option_bits::SACK != 0 {
        let count = reader.u8() % 4 + 1;
        options.sack = (0..count).map(|_| (reader.i16(), reader.u16())).collect();
    }
    if bits & option_bits::PAYLOAD_FROM_INPUT != 0 {
        options.payload_from_input = Some(reader.bytes(usize::from(payload_len)).to_vec());
    }
    SegmentSpec {
        peer,
        flags,
        seq_delta,
        ack_delta,
        window_reduction,
        payload_len,
        options,
        misaddress,
    }
}

/// Encodes steps in the input format, for seeds. Values must be in the ranges the decoder
/// produces (`decode(&encode(steps)) == steps`, checked by the tests of every seed).
pub fn encode(steps: &[Step]) -> Vec<u8> {
    let mut out = Vec::new();
    for step in steps {
        encode_step(&mut out, step);
    }
    out
}

fn encode_step(out: &mut Vec<u8>, step: &Step) {
    match step {
        Step::Segment(spec) => encode_segment(out, spec),
        Step::Burst {
            peer,
            segments,
            size,
        } => {
            out.extend_from_slice(&[tag::BURST, *peer, segments - 1]);
            out.extend_from_slice(&size.to_be_bytes());
        }
        Step::NewConnection { kind, port } => {
            out.extend_from_slice(&[tag::NEW_CONNECTION, *kind]);
            out.extend_from_slice(&port.to_be_bytes());
        }
        Step::Join {
            kind,
            address_id,
            token,
            nonce,
        } => {
            out.extend_from_slice(&[tag::JOIN, *kind, *address_id]);
            out.extend_from_slice(&token.to_be_bytes());
            out.extend_from_slice(&nonce.to_be_bytes());
        }
        Step::Arp {
            kind,
            interface,
            mac_byte,
        } => out.extend_from_slice(&[tag::ARP, *kind, *interface, *mac_byte]),
        Step::Icmp { kind, payload_len } => {
            out.extend_from_slice(&[tag::ICMP, *kind, *payload_len])
        }
        Step::RawTcp {
            peer,
            keep_ports,
            header,
            payload_len,
        } => {
            let len_byte = (header.len() - 20) as u8 | if *keep_ports { 0x80 } else { 0 };
            out.extend_from_slice(&[tag::RAW_TCP, *peer, len_byte, *payload_len]);
            out.extend_from_slice(header);
        }
        Step::Garbage {
            interface,
            flags,
            bytes,
        } => {
            out.extend_from_slice(&[tag::GARBAGE, *interface, *flags]);
            out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        Step::Wait { amount } => {
            out.push(tag::WAIT);
            out.extend_from_slice(&amount.to_be_bytes());
        }
        Step::NextTimer => out.push(tag::NEXT_TIMER),
    }
}

fn encode_segment(out: &mut Vec<u8>, spec: &SegmentSpec) {
    match spec.peer {
        0 => out.push(tag::CLIENT_SEGMENT),
        1 => out.push(tag::BACKEND_SEGMENT),
        peer => out.extend_from_slice(&[tag::PEER_SEGMENT, peer]),
    }
    out.push(spec.flags);
    out.extend_from_slice(&spec.seq_delta.to_be_bytes());
    out.extend_from_slice(&spec.ack_delta.to_be_bytes());
    out.extend_from_slice(&spec.window_reduction.to_be_bytes());
    out.extend_from_slice(&spec.payload_len.to_be_bytes());
    let options = &spec.options;
    let mut bits = 0;
    for (present, bit) in [
        (options.no_timestamps, option_bits::NO_TIMESTAMPS),
        (options.no_mptcp, option_bits::NO_MPTCP),
        (options.dss.is_some(), option_bits::DSS),
        (options.extra_mptcp.is_some(), option_bits::EXTRA_MPTCP),
        (!options.raw.is_empty(), option_bits::RAW),
        (spec.misaddress.is_some(), option_bits::MISADDRESS),
        (!options.sack.is_empty(), option_bits::SACK),
        (
            options.payload_from_input.is_some(),
            option_bits::PAYLOAD_FROM_INPUT,
        ),
    ] {
        if present {
            bits |= bit;
        }
    }
    out.push(bits);
    if let Some(dss) = options.dss {
        out.extend_from_slice(&dss.data_seq_delta.to_be_bytes());
        out.extend_from_slice(&dss.subflow_seq_delta.to_be_bytes());
        out.push(dss.length_delta as u8);
        out.extend_from_slice(&dss.data_ack_delta.to_be_bytes());
        out.push(dss.flags);
    }
    if let Some((subtype, body)) = &options.extra_mptcp {
        out.extend_from_slice(&[*subtype, body.len() as u8]);
        out.extend_from_slice(body);
    }
    if !options.raw.is_empty() {
        out.push(options.raw.len() as u8);
        out.extend_from_slice(&options.raw);
    }
    if let Some(misaddress) = spec.misaddress {
        out.push(misaddress);
    }
    if !options.sack.is_empty() {
        out.push(options.sack.len() as u8 - 1);
        for (left, len) in &options.sack {
            out.extend_from_slice(&left.to_be_bytes());
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    if let Some(payload) = &options.payload_from_input {
        out.extend_from_slice(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_bytes_are_plain_acks_from_the_client() {
        let steps = decode(&[0; 10]);
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0], Step::Segment(SegmentSpec::default()));
    }

    #[test]
    fn every_kind_of_step_round_trips() {
        let steps = vec![
            Step::Segment(SegmentSpec {
                peer: 3,
                flags: 0x19,
                seq_delta: -5,
                ack_delta: 7,
                window_reduction: 100,
                payload_len: 12,
                options: OptionChoices {
                    no_timestamps: true,
                    no_mptcp: false,
                    dss: Some(DssTweak {
                        data_seq_delta: 1,
                        subflow_seq_delta: -1,
                        length_delta: 2,
                        data_ack_delta: -3,
                        flags: dss_tweak::BAD_CHECKSUM,
                    }),
                    extra_mptcp: Some((0x70, vec![1, 2, 3])),
                    raw: vec![1, 1, 4, 2],
                    sack: vec![(10, 20), (-4, 1)],
                    payload_from_input: Some(vec![9; 12]),
                },
                misaddress: Some(3),
            }),
            Step::Segment(SegmentSpec {
                peer: 1,
                payload_len: 1,
                ..SegmentSpec::default()
            }),
            Step::Burst {
                peer: 0,
                segments: 64,
                size: 1400,
            },
            Step::NewConnection { kind: 2, port: 9 },
            Step::Join {
                kind: 1,
                address_id: 2,
                token: 3,
                nonce: 4,
            },
            Step::Arp {
                kind: 5,
                interface: 1,
                mac_byte: 0x20,
            },
            Step::Icmp {
                kind: 1,
                payload_len: 56,
            },
            Step::RawTcp {
                peer: 0,
                keep_ports: true,
                header: vec![0x50; 24],
                payload_len: 3,
            },
            Step::Garbage {
                interface: 0,
                flags: 1,
                bytes: vec![0xff; 30],
            },
            Step::Wait { amount: 0x1234 },
            Step::NextTimer,
        ];
        assert_eq!(decode(&encode(&steps)), steps);
    }

    #[test]
    fn long_inputs_are_cut_at_max_steps() {
        assert_eq!(decode(&[tag::NEXT_TIMER; 1000]).len(), MAX_STEPS);
    }
}
