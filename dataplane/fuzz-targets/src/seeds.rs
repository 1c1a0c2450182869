//! Seed inputs for every target: the frames Linux MPTCP sent in the committed captures
//! (`dataplane/wire/testdata/*.pcap`), cut at the layer each wire target parses, and scripted
//! scenarios around the live connection for the engine target.
//!
//! `cargo run -p mpterm-fuzz --bin mpterm-fuzz-seeds -- DIR` writes them to `DIR/TARGET/`;
//! `tests/fuzz.sh` adds them to the corpus before fuzzing, and the committed corpus is the
//! minimised union of seeds and what the fuzzer found.

use std::collections::BTreeSet;

use mpterm_wire::ethernet::{self, EthernetFrame};
use mpterm_wire::ipv4::{self, Ipv4Packet};
use mpterm_wire::ipv6::{self, Ipv6Packet};
use mpterm_wire::mptcp::{
    self, AddAddr, DataSeqWire, Dss, DssMapping, MpCapable, MpJoin, MpTcpRst, MptcpOption,
};
use mpterm_wire::tcp::{self, TcpFlags, TcpSegment};

use crate::engine::script::{dss_tweak, encode, DssTweak, OptionChoices, SegmentSpec, Step};
use crate::pcap;

const CAPTURES: [&[u8]; 3] = [
    include_bytes!("../../wire/testdata/linux-mptcp-path0.pcap"),
    include_bytes!("../../wire/testdata/linux-mptcp-path1.pcap"),
    include_bytes!("../../wire/testdata/linux-ipv6.pcap"),
];

/// The seeds of `target`, without duplicates, in a stable order.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let frames: Vec<&[u8]> = CAPTURES
        .iter()
        .flat_map(|file| pcap::ethernet_frames(file).expect("the committed captures are pcap"))
        .collect();
    let mut seeds = BTreeSet::new();
    let layers = frames.iter().map(|frame| Layers::of(frame));
    match target {
        "ethernet_frame" => seeds.extend(frames.iter().map(|frame| frame.to_vec())),
        "arp_packet" => seeds.extend(layers.filter_map(|l| l.arp.map(<[u8]>::to_vec))),
        // The ipv4_packet and icmp_packet targets take IPv6 and ICMPv6 too (crate::wire).
        "ipv4_packet" => seeds.extend(layers.filter_map(|l| l.ip.map(<[u8]>::to_vec))),
        "icmp_packet" => seeds.extend(layers.filter_map(|l| l.icmp.map(<[u8]>::to_vec))),
        "tcp_segment" => seeds.extend(layers.filter_map(|l| l.tcp_with_addresses)),
        "tcp_options" => {
            seeds.extend(layers.filter_map(|l| l.tcp_options.map(<[u8]>::to_vec)));
            seeds.extend(mptcp_option_forms().into_iter().map(|mut option| {
                while option.len() % 4 != 0 {
                    option.insert(0, tcp::option_kind::NOP);
                }
                option
            }));
        }
        "mptcp_option" => {
            seeds.extend(layers.flat_map(|l| l.mptcp_options));
            seeds.extend(mptcp_option_forms());
        }
        "checksum" => seeds.extend(layers.filter_map(|l| l.ip).map(|packet| {
            // Chunk boundaries at odd and even offsets, then the packet.
            let mut input = vec![3, 1, 20, 33];
            input.extend_from_slice(packet);
            input
        })),
        "engine_frames" => seeds.extend(engine_scripts().iter().map(|steps| encode(steps))),
        _ => {}
    }
    seeds.into_iter().collect()
}

/// One captured frame cut at every layer a wire target starts from.
#[derive(Debug, Default)]
struct Layers<'a> {
    arp: Option<&'a [u8]>,
    /// An IPv4 or IPv6 packet, without Ethernet padding.
    ip: Option<&'a [u8]>,
    /// An ICMP or ICMPv6 message.
    icmp: Option<&'a [u8]>,
    /// Source and destination address, then the segment (the `tcp_segment` input format).
    tcp_with_addresses: Option<Vec<u8>>,
    tcp_options: Option<&'a [u8]>,
    mptcp_options: Vec<Vec<u8>>,
}

impl<'a> Layers<'a> {
    fn of(frame: &'a [u8]) -> Layers<'a> {
        let mut layers = Layers::default();
        let Ok(ethernet) = EthernetFrame::new_checked(frame) else {
            return layers;
        };
        let body = &frame[ethernet::HEADER_LEN..];
        match ethernet.ethertype() {
            ethernet::ETHERTYPE_ARP => layers.arp = Some(body),
            ethernet::ETHERTYPE_IPV4 => {
                let Ok(packet) = Ipv4Packet::new_checked(body) else {
                    return layers;
                };
                let total_len = usize::from(packet.total_len());
                let payload = &body[packet.header_len()..total_len];
                layers.ip = Some(&body[..total_len]);
                match packet.protocol() {
                    ipv4::PROTOCOL_ICMP => layers.icmp = Some(payload),
                    ipv4::PROTOCOL_TCP => {
                        let mut input = packet.src_addr().octets().to_vec();
                        input.extend_from_slice(&packet.dst_addr().octets());
                        input.extend_from_slice(payload);
                        layers.tcp_with_addresses = Some(input);
                        if let Ok(segment) = TcpSegment::new_checked(payload) {
                            let options = &payload[tcp::HEADER_LEN..segment.header_len()];
                            layers.tcp_options = Some(options);
                            layers.mptcp_options = mptcp_options_in(options);
                        }
                    }
                    _ => {}
                }
            }
            ethernet::ETHERTYPE_IPV6 => {
                let Ok(packet) = Ipv6Packet::new_checked(body) else {
                    return layers;
                };
                let end = ipv6::HEADER_LEN + usize::from(packet.payload_len());
                let payload = &body[ipv6::HEADER_LEN..end];
                layers.ip = Some(&body[..end]);
                match packet.next_header() {
                    ipv6::NEXT_HEADER_ICMPV6 => layers.icmp = Some(payload),
                    // The tcp_segment target's input carries IPv4 addresses; an IPv6 segment
                    // reaches TCP through the ethernet_frame and ipv4_packet targets, and
                    // gives its options here.
                    ipv6::NEXT_HEADER_TCP => {
                        if let Ok(segment) = TcpSegment::new_checked(payload) {
                            let options = &payload[tcp::HEADER_LEN..segment.header_len()];
                            layers.tcp_options = Some(options);
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        layers
    }
}

/// The MPTCP options in a TCP option area, each as its own bytes.
fn mptcp_options_in(mut options: &[u8]) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    while let Some(&kind) = options.first() {
        match kind {
            tcp::option_kind::END => break,
            tcp::option_kind::NOP => options = &options[1..],
            _ => {
                let len = usize::from(options.get(1).copied().unwrap_or(0));
                if len < 2 || len > options.len() {
                    break;
                }
                if kind == mptcp::OPTION_KIND {
                    found.push(options[..len].to_vec());
                }
                options = &options[len..];
            }
        }
    }
    found
}

/// Every form of every MPTCP option subtype as RFC 8684 section 3 lays it out (and the RFC
/// 6824 forms still read), emitted by `mpterm-wire`: the layouts the captures do not show.
fn mptcp_option_forms() -> Vec<Vec<u8>> {
    let capable = MpCapable {
        version: 1,
        checksum_required: true,
        extensibility: false,
        no_new_subflows_to_source: false,
        hmac_sha256: true,
        sender_key: None,
        receiver_key: None,
        data_level_length: None,
        checksum: None,
    };
    let key = Some(0x1122_3344_5566_7788);
    let mut options = vec![
        MptcpOption::MpCapable(capable),
        MptcpOption::MpCapable(MpCapable {
            sender_key: key,
            ..capable
        }),
        MptcpOption::MpCapable(MpCapable {
            version: 0,
            sender_key: key,
            ..capable
        }),
        MptcpOption::MpCapable(MpCapable {
            sender_key: key,
            receiver_key: key,
            ..capable
        }),
        MptcpOption::MpCapable(MpCapable {
            sender_key: key,
            receiver_key: key,
            data_level_length: Some(100),
            ..capable
        }),
        MptcpOption::MpCapable(MpCapable {
            sender_key: key,
            receiver_key: key,
            data_level_length: Some(100),
            checksum: Some(0xabcd),
            ..capable
        }),
        MptcpOption::MpJoin(MpJoin::Syn {
            backup: true,
            address_id: 1,
            receiver_token: 0x0102_0304,
            sender_nonce: 0x0506_0708,
        }),
        MptcpOption::MpJoin(MpJoin::SynAck {
            backup: false,
            address_id: 2,
            truncated_hmac: 0x1112_1314_1516_1718,
            sender_nonce: 0x191a_1b1c,
        }),
        MptcpOption::MpJoin(MpJoin::Ack { hmac: [0x2a; 20] }),
        MptcpOption::RemoveAddr { address_ids: &[3] },
        MptcpOption::RemoveAddr {
            address_ids: &[4, 5, 6],
        },
        MptcpOption::MpPrio {
            backup: true,
            address_id: None,
        },
        MptcpOption::MpPrio {
            backup: false,
            address_id: Some(7),
        },
        MptcpOption::MpFail {
            data_seq: 0x0102_0304_0506_0708,
        },
        MptcpOption::MpFastclose {
            receiver_key: 0x1122_3344_5566_7788,
        },
        MptcpOption::MpTcpRst(MpTcpRst {
            flags: MpTcpRst::FLAG_TRANSIENT,
            reason: 3,
        }),
    ];
    let widths = [
        None,
        Some(DataSeqWire::Bits32(0x0102_0304)),
        Some(DataSeqWire::Bits64(0x0102_0304_0506_0708)),
    ];
    for data_ack in widths {
        for data_seq in widths {
            for (checksum, data_fin) in [(None, false), (Some(0x1234), false), (Some(0x1234), true)]
            {
                let mapping = data_seq.map(|data_seq| DssMapping {
                    data_seq,
                    subflow_seq: 1,
                    data_level_length: 1400,
                    checksum,
                });
                options.push(MptcpOption::Dss(Dss {
                    data_ack,
                    mapping,
                    data_fin,
                }));
            }
        }
    }
    let addresses = [
        core::net::IpAddr::from([198, 18, 1, 2]),
        core::net::IpAddr::from([0x2001, 2, 0, 0, 0, 0, 0, 2]),
    ];
    let mut v0_forms = Vec::new();
    for address in addresses {
        for port in [None, Some(5000)] {
            for echo in [false, true] {
                let add = AddAddr {
                    echo,
                    address_id: 8,
                    address,
                    port,
                    truncated_hmac: (!echo).then_some(0x0102_0304_0506_0708),
                };
                options.push(MptcpOption::AddAddr(add));
                let mut out = [0u8; mptcp::MAX_OPTION_LEN];
                let v0 = AddAddr {
                    echo: false,
                    truncated_hmac: None,
                    ..add
                };
                if let Ok(len) = v0.emit_v0(&mut out) {
                    v0_forms.push(out[..len].to_vec());
                }
            }
        }
    }
    let mut forms: Vec<Vec<u8>> = options
        .iter()
        .map(|option| {
            let mut out = [0u8; mptcp::MAX_OPTION_LEN];
            let len = option.emit(&mut out).expect("every form emits");
            out[..len].to_vec()
        })
        .collect();
    forms.extend(v0_forms);
    // A subtype RFC 8684 does not define.
    forms.push(vec![mptcp::OPTION_KIND, 4, 0xf0, 0]);
    forms
}

fn segment(peer: u8, flags: TcpFlags, payload_len: u16) -> SegmentSpec {
    SegmentSpec {
        peer,
        flags: flags.0 ^ TcpFlags::ACK.0,
        payload_len,
        ..SegmentSpec::default()
    }
}

fn ack(peer: u8) -> Step {
    Step::Segment(segment(peer, TcpFlags::ACK, 0))
}

fn data(peer: u8, payload_len: u16) -> Step {
    Step::Segment(segment(peer, TcpFlags::ACK | TcpFlags::PSH, payload_len))
}

fn with_options(peer: u8, payload_len: u16, options: OptionChoices) -> Step {
    Step::Segment(SegmentSpec {
        options,
        ..segment(peer, TcpFlags::ACK | TcpFlags::PSH, payload_len)
    })
}

fn dss(flags: u8) -> OptionChoices {
    OptionChoices {
        dss: Some(DssTweak {
            flags,
            ..DssTweak::default()
        }),
        ..OptionChoices::default()
    }
}

fn extra_mptcp(subtype: u8, body: &[u8]) -> OptionChoices {
    OptionChoices {
        extra_mptcp: Some((subtype, body.to_vec())),
        ..OptionChoices::default()
    }
}

/// About 84 s: past TIME-WAIT, the longest RTO and the connect timeout.
const LONG_WAIT: Step = Step::Wait { amount: 0xbfff };
/// About 1 s.
const SECOND: Step = Step::Wait { amount: 0x6c35 };

/// Scenarios around the live connection (peer 0 the client, peer 1 the backend): transfers,
/// closes, resets, loss and timers, idle peers, DSS errors, every MPTCP option subtype,
/// connection churn up to the limit, joins, ARP, ICMP and garbage.
pub fn engine_scripts() -> Vec<Vec<Step>> {
    let client_close = vec![
        Step::Segment(segment(0, TcpFlags::FIN | TcpFlags::ACK, 0)),
        ack(1),
        Step::Segment(segment(1, TcpFlags::FIN | TcpFlags::ACK, 0)),
        ack(0),
        LONG_WAIT,
    ];
    let backend_close = vec![
        data(1, 500),
        Step::Segment(segment(1, TcpFlags::FIN | TcpFlags::ACK, 0)),
        ack(0),
        data(0, 300),
        ack(1),
        Step::Segment(segment(0, TcpFlags::FIN | TcpFlags::ACK, 0)),
        ack(1),
        LONG_WAIT,
    ];
    let bulk_both_ways = vec![
        Step::Burst {
            peer: 0,
            segments: 48,
            size: 0,
        },
        ack(1),
        Step::Burst {
            peer: 1,
            segments: 48,
            size: 0,
        },
        ack(0),
        SECOND,
        ack(0),
        ack(1),
    ];
    let zero_window_and_idle = vec![
        Step::Burst {
            peer: 1,
            segments: 64,
            size: 0,
        },
        Step::Segment(SegmentSpec {
            window_reduction: u16::MAX,
            ..segment(0, TcpFlags::ACK, 0)
        }),
        Step::NextTimer,
        Step::NextTimer,
        LONG_WAIT,
        LONG_WAIT,
        ack(0),
    ];
    let loss_and_retransmission = vec![
        data(1, 1000),
        Step::NextTimer,
        Step::NextTimer,
        ack(0),
        Step::Segment(SegmentSpec {
            seq_delta: 1000,
            ..segment(0, TcpFlags::ACK, 1000)
        }),
        data(0, 1000),
        Step::Segment(SegmentSpec {
            seq_delta: -1000,
            ..segment(0, TcpFlags::ACK, 1000)
        }),
        Step::NextTimer,
        ack(1),
    ];
    let resets = vec![
        data(0, 10),
        Step::Segment(segment(0, TcpFlags::RST, 0)),
        ack(1),
        Step::Segment(segment(1, TcpFlags::RST, 0)),
        Step::NewConnection { kind: 0, port: 0 },
        Step::Segment(segment(2, TcpFlags::ACK, 0)),
        Step::Segment(segment(3, TcpFlags::SYN | TcpFlags::ACK, 0)),
        data(2, 10),
        Step::Segment(SegmentSpec {
            seq_delta: 5000,
            ..segment(3, TcpFlags::RST, 0)
        }),
    ];
    let dss_errors = vec![
        with_options(0, 200, dss(dss_tweak::BAD_CHECKSUM)),
        with_options(0, 200, dss(dss_tweak::NO_CHECKSUM)),
        with_options(0, 200, dss(dss_tweak::DATA_SEQ_32 | dss_tweak::DATA_ACK_64)),
        with_options(0, 0, dss(dss_tweak::DATA_FIN)),
        with_options(
            0,
            200,
            OptionChoices {
                dss: Some(DssTweak {
                    data_seq_delta: 7,
                    length_delta: -3,
                    ..DssTweak::default()
                }),
                ..OptionChoices::default()
            },
        ),
        with_options(0, 0, dss(dss_tweak::EMPTY_MAPPING | dss_tweak::NO_DATA_ACK)),
        ack(1),
    ];
    let key = 0x0123_4567_89ab_cdefu64.to_be_bytes();
    let mut fastclose = vec![0];
    fastclose.extend_from_slice(&[0x5a; 8]);
    let mptcp_subtypes = vec![
        with_options(
            0,
            0,
            extra_mptcp(0x30, &[5, 198, 18, 1, 2, 1, 2, 3, 4, 5, 6, 7, 8]),
        ),
        with_options(0, 0, extra_mptcp(0x31, &[5, 198, 18, 1, 2])),
        with_options(0, 0, extra_mptcp(0x40, &[5])),
        with_options(0, 0, extra_mptcp(0x51, &[])),
        with_options(0, 0, extra_mptcp(0x80, &[1])),
        with_options(0, 0, extra_mptcp(0x90, &[])),
        with_options(0, 0, extra_mptcp(0x60, &[0, 0, 0, 0, 0, 0, 0, 0, 1])),
        with_options(0, 0, extra_mptcp(0x01, &[0x81, 0, 0, 0, 0, 0, 0, 0, 0])),
        with_options(
            0,
            0,
            OptionChoices {
                no_mptcp: true,
                ..extra_mptcp(
                    0x10,
                    &[
                        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
                    ],
                )
            },
        ),
        with_options(0, 0, extra_mptcp(0x70, &fastclose)),
        with_options(0, 0, extra_mptcp(0x70, &[[0].as_slice(), &key].concat())),
    ];
    let churn = vec![
        Step::NewConnection { kind: 0, port: 0 },
        Step::NewConnection { kind: 1, port: 0 },
        Step::NewConnection { kind: 2, port: 0 },
        Step::NewConnection { kind: 3, port: 0 },
        Step::NewConnection {
            kind: 0x0c,
            port: 0,
        },
        Step::NewConnection {
            kind: 0x15,
            port: 0,
        },
        Step::Segment(segment(2, TcpFlags::ACK, 0)),
        Step::Segment(segment(4, TcpFlags::ACK, 0)),
        Step::NextTimer,
        LONG_WAIT,
        Step::NewConnection { kind: 6, port: 0 },
        Step::NewConnection {
            kind: 0,
            port: 40000,
        },
    ];
    let joins_and_link = vec![
        Step::Join {
            kind: 0,
            address_id: 1,
            token: 0,
            nonce: 0x1234_5678,
        },
        Step::Join {
            kind: 7,
            address_id: 2,
            token: 0xdead_beef,
            nonce: 1,
        },
        Step::Arp {
            kind: 0,
            interface: 0,
            mac_byte: 0x10,
        },
        Step::Arp {
            kind: 0x23,
            interface: 1,
            mac_byte: 0x21,
        },
        Step::Arp {
            kind: 0x5e,
            interface: 2,
            mac_byte: 0,
        },
        Step::Icmp {
            kind: 0,
            payload_len: 56,
        },
        Step::Icmp {
            kind: 0x13,
            payload_len: 0,
        },
        Step::Icmp {
            kind: 0x2e,
            payload_len: 9,
        },
        Step::Garbage {
            interface: 0,
            flags: 3,
            bytes: (0..60).collect(),
        },
        Step::Garbage {
            interface: 1,
            flags: 0x0b,
            bytes: [[0u8; 14].as_slice(), &[0x46, 0, 0, 40], &[0; 36]].concat(),
        },
        Step::RawTcp {
            peer: 0,
            keep_ports: false,
            header: [
                [0u8; 12].as_slice(),
                &[0x70, 0x12, 0xff, 0xff, 0, 0, 0, 0],
                &[2, 4, 5, 0xb4, 1, 3, 3, 0x0e],
            ]
            .concat(),
            payload_len: 3,
        },
        Step::Segment(SegmentSpec {
            misaddress: Some(6),
            ..segment(0, TcpFlags::ACK, 10)
        }),
        Step::Segment(SegmentSpec {
            misaddress: Some(0x81),
            ..segment(0, TcpFlags::ACK, 10)
        }),
        Step::Segment(SegmentSpec {
            options: OptionChoices {
                sack: vec![(100, 200), (500, 10)],
                raw: vec![4, 2, 30, 2],
                ..OptionChoices::default()
            },
            ..segment(1, TcpFlags::ACK, 0)
        }),
    ];
    vec![
        Vec::new(),
        client_close,
        backend_close,
        bulk_both_ways,
        zero_window_and_idle,
        loss_and_retransmission,
        resets,
        dss_errors,
        mptcp_subtypes,
        churn,
        joins_and_link,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::script::decode;

    #[test]
    fn every_target_has_seeds() {
        for target in crate::TARGETS {
            let seeds = seeds(target.name);
            assert!(!seeds.is_empty(), "{}: no seeds", target.name);
            for seed in &seeds {
                (target.run)(seed);
            }
        }
    }

    #[test]
    fn captured_frames_reach_every_layer() {
        assert!(seeds("arp_packet").len() >= 2);
        assert!(seeds("icmp_packet").len() >= 2);
        // IPv6 with ICMPv6, TCP and a hop-by-hop header; neighbour solicitations (135) and
        // advertisements (136) and echoes (128, 129) for the ICMPv6 parser.
        let next_headers: BTreeSet<u8> = seeds("ipv4_packet")
            .iter()
            .filter(|packet| packet[0] >> 4 == 6)
            .map(|packet| packet[6])
            .collect();
        assert_eq!(next_headers, BTreeSet::from([0, 6, 58]));
        let icmpv6_types: BTreeSet<u8> = seeds("icmp_packet").iter().map(|m| m[0]).collect();
        assert!(
            [128, 129, 135, 136]
                .iter()
                .all(|t| icmpv6_types.contains(t)),
            "{icmpv6_types:?}"
        );
        assert!(seeds("tcp_segment").len() > 40);
        // Every subtype of RFC 8684 (0 to 8), and one it does not define.
        let subtypes: BTreeSet<u8> = seeds("mptcp_option").iter().map(|o| o[2] >> 4).collect();
        assert_eq!(subtypes.len(), 10, "{subtypes:?}");
    }

    #[test]
    fn engine_scripts_encode_exactly() {
        for script in engine_scripts() {
            assert_eq!(decode(&encode(&script)), script);
        }
    }
}
