//! Tests of every MPTCP option subtype: fixtures, parse, emit, round trip, truncation.

use super::*;

/// The common checks of every fixture: parse gives `expected`, emit gives the bytes back,
/// every shorter prefix is an error, and a short output buffer is refused.
fn check(bytes: &[u8], expected: MptcpOption<'_>) {
    assert_eq!(
        MptcpOption::parse(bytes),
        Ok(expected),
        "parse {bytes:02x?}"
    );
    assert_eq!(expected.encoded_len(), bytes.len());
    let mut out = [0u8; MAX_OPTION_LEN + 1];
    assert_eq!(expected.emit(&mut out), Ok(bytes.len()));
    assert_eq!(&out[..bytes.len()], bytes, "emit");
    assert_eq!(out[bytes.len()], 0, "nothing written past the option");
    assert_eq!(
        expected.emit(&mut out[..bytes.len() - 1]),
        Err(WireError::BufferTooSmall)
    );
    for len in 0..bytes.len() {
        assert!(
            MptcpOption::parse(&bytes[..len]).is_err(),
            "{len}-byte prefix of {bytes:02x?}"
        );
    }
    // Bytes after the declared length belong to the next option.
    let mut longer = bytes.to_vec();
    longer.extend_from_slice(&[1, 1, 0]);
    assert_eq!(MptcpOption::parse(&longer), Ok(expected));
}

/// Every length but the valid ones is `Malformed` (the buffer always holds them all).
fn check_only_lengths(header: [u8; 4], valid: &[usize]) {
    for len in 3..=MAX_OPTION_LEN {
        let mut bytes = [0u8; MAX_OPTION_LEN];
        bytes[..4].copy_from_slice(&header);
        bytes[1] = len as u8;
        let result = MptcpOption::parse(&bytes[..len]);
        if valid.contains(&len) {
            assert!(result.is_ok(), "length {len} of {header:02x?}");
        } else {
            assert_eq!(
                result,
                Err(WireError::Malformed),
                "length {len} of {header:02x?}"
            );
        }
    }
}

fn capable(flags_byte: u8) -> MpCapable {
    MpCapable {
        version: 1,
        checksum_required: flags_byte & 0x80 != 0,
        extensibility: flags_byte & 0x40 != 0,
        no_new_subflows_to_source: flags_byte & 0x20 != 0,
        hmac_sha256: flags_byte & 0x01 != 0,
        sender_key: None,
        receiver_key: None,
        data_level_length: None,
        checksum: None,
    }
}

// MP_CAPABLE (RFC 8684, section 3.1).

#[test]
fn mp_capable_syn_from_linux() {
    // Linux SYN with checksums enabled: "mptcp 4 capable v1 csum".
    check(
        &[0x1e, 0x04, 0x01, 0x81],
        MptcpOption::MpCapable(capable(0x81)),
    );
}

#[test]
fn mp_capable_syn_ack_from_linux() {
    let bytes = [
        0x1e, 0x0c, 0x01, 0x81, 0x4e, 0xf8, 0xac, 0xc5, 0x96, 0x81, 0xe6, 0x3d,
    ];
    let mut expected = capable(0x81);
    expected.sender_key = Some(0x4ef8_acc5_9681_e63d);
    check(&bytes, MptcpOption::MpCapable(expected));
}

#[test]
fn mp_capable_third_ack_from_linux() {
    let bytes = [
        0x1e, 0x14, 0x01, 0x81, 0xfb, 0xfe, 0xad, 0x4d, 0xd7, 0xd9, 0x3e, 0x14, 0x4e, 0xf8, 0xac,
        0xc5, 0x96, 0x81, 0xe6, 0x3d,
    ];
    let mut expected = capable(0x81);
    expected.sender_key = Some(0xfbfe_ad4d_d7d9_3e14);
    expected.receiver_key = Some(0x4ef8_acc5_9681_e63d);
    check(&bytes, MptcpOption::MpCapable(expected));
}

#[test]
fn mp_capable_with_data_level_length() {
    // RFC 8684, figure 4, length 22: both keys, then the data-level length (here 0x0102).
    // Flags: H only, plus C (0x20) to see it parsed.
    let bytes = [
        0x1e, 0x16, 0x01, 0x21, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x01, 0x02,
    ];
    let mut expected = capable(0x21);
    expected.sender_key = Some(0x0102_0304_0506_0708);
    expected.receiver_key = Some(0x090a_0b0c_0d0e_0f10);
    expected.data_level_length = Some(0x0102);
    assert!(expected.no_new_subflows_to_source && !expected.checksum_required);
    check(&bytes, MptcpOption::MpCapable(expected));
}

#[test]
fn mp_capable_with_data_level_length_and_checksum() {
    // Length 24: as above with a 2-byte checksum (0xbeef) after the data-level length.
    let bytes = [
        0x1e, 0x18, 0x01, 0x81, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x00, 0x0b,
        0xbe, 0xef,
    ];
    let mut expected = capable(0x81);
    expected.sender_key = Some(0x0102_0304_0506_0708);
    expected.receiver_key = Some(0x090a_0b0c_0d0e_0f10);
    expected.data_level_length = Some(11);
    expected.checksum = Some(0xbeef);
    check(&bytes, MptcpOption::MpCapable(expected));
}

#[test]
fn mp_capable_version_0_syn() {
    // RFC 6824, section 3.1: version 0 sends the sender's key on the SYN (length 12);
    // flags A and H (HMAC-SHA1 there) set, B as the extensibility bit.
    let bytes = [
        0x1e, 0x0c, 0x00, 0xc1, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11,
    ];
    let mut expected = capable(0xc1);
    expected.version = 0;
    expected.sender_key = Some(0xaabb_ccdd_eeff_0011);
    assert!(expected.extensibility);
    check(&bytes, MptcpOption::MpCapable(expected));
}

#[test]
fn mp_capable_lengths() {
    check_only_lengths([0x1e, 0, 0x01, 0x81], &[4, 12, 20, 22, 24]);
}

#[test]
fn mp_capable_impossible_field_combinations_are_not_emitted() {
    let mut buf = [0u8; 40];
    let mut receiver_only = capable(0x01);
    receiver_only.receiver_key = Some(1);
    let mut checksum_only = capable(0x01);
    checksum_only.sender_key = Some(1);
    checksum_only.receiver_key = Some(2);
    checksum_only.checksum = Some(3);
    let mut length_without_receiver = capable(0x01);
    length_without_receiver.sender_key = Some(1);
    length_without_receiver.data_level_length = Some(1);
    for bad in [receiver_only, checksum_only, length_without_receiver] {
        assert_eq!(
            MptcpOption::MpCapable(bad).emit(&mut buf),
            Err(WireError::Malformed)
        );
        assert_eq!(MptcpOption::MpCapable(bad).encoded_len(), 0);
    }
}

// MP_JOIN (RFC 8684, section 3.2).

#[test]
fn mp_join_syn_from_linux() {
    // "mptcp 12 join id 1 token 0xcfd543f2 nonce 0x35766c84".
    let bytes = [
        0x1e, 0x0c, 0x10, 0x01, 0xcf, 0xd5, 0x43, 0xf2, 0x35, 0x76, 0x6c, 0x84,
    ];
    check(
        &bytes,
        MptcpOption::MpJoin(MpJoin::Syn {
            backup: false,
            address_id: 1,
            receiver_token: 0xcfd5_43f2,
            sender_nonce: 0x3576_6c84,
        }),
    );
}

#[test]
fn mp_join_syn_with_backup() {
    // Figure 5 with B set and address ID 7.
    let bytes = [0x1e, 0x0c, 0x11, 0x07, 0, 0, 0, 1, 0, 0, 0, 2];
    check(
        &bytes,
        MptcpOption::MpJoin(MpJoin::Syn {
            backup: true,
            address_id: 7,
            receiver_token: 1,
            sender_nonce: 2,
        }),
    );
}

#[test]
fn mp_join_syn_ack_from_linux() {
    // "mptcp 16 join id 5 hmac 0x3c72f30bdb6cae37 nonce 0x3c3682b4".
    let bytes = [
        0x1e, 0x10, 0x10, 0x05, 0x3c, 0x72, 0xf3, 0x0b, 0xdb, 0x6c, 0xae, 0x37, 0x3c, 0x36, 0x82,
        0xb4,
    ];
    check(
        &bytes,
        MptcpOption::MpJoin(MpJoin::SynAck {
            backup: false,
            address_id: 5,
            truncated_hmac: 0x3c72_f30b_db6c_ae37,
            sender_nonce: 0x3c36_82b4,
        }),
    );
}

#[test]
fn mp_join_syn_ack_backup_from_linux() {
    // "mptcp 16 join backup id 5 hmac 0x93485e443c4687c1 nonce 0xb26ee212".
    let bytes = [
        0x1e, 0x10, 0x11, 0x05, 0x93, 0x48, 0x5e, 0x44, 0x3c, 0x46, 0x87, 0xc1, 0xb2, 0x6e, 0xe2,
        0x12,
    ];
    check(
        &bytes,
        MptcpOption::MpJoin(MpJoin::SynAck {
            backup: true,
            address_id: 5,
            truncated_hmac: 0x9348_5e44_3c46_87c1,
            sender_nonce: 0xb26e_e212,
        }),
    );
}

#[test]
fn mp_join_ack_from_linux() {
    // "mptcp 24 join hmac 0x23f11612fc09025333faa023c27f8e54d359113e".
    let hmac = [
        0x23, 0xf1, 0x16, 0x12, 0xfc, 0x09, 0x02, 0x53, 0x33, 0xfa, 0xa0, 0x23, 0xc2, 0x7f, 0x8e,
        0x54, 0xd3, 0x59, 0x11, 0x3e,
    ];
    let mut bytes = vec![0x1e, 0x18, 0x10, 0x00];
    bytes.extend_from_slice(&hmac);
    check(&bytes, MptcpOption::MpJoin(MpJoin::Ack { hmac }));
}

#[test]
fn mp_join_lengths() {
    check_only_lengths([0x1e, 0, 0x10, 0x01], &[12, 16, 24]);
}

// DSS (RFC 8684, section 3.3).

#[test]
fn dss_data_ack_32_from_linux() {
    // "mptcp 8 dss ack 1159120784": flags A.
    check(
        &[0x1e, 0x08, 0x20, 0x01, 0x45, 0x16, 0xc7, 0x90],
        MptcpOption::Dss(Dss {
            data_ack: Some(DataSeqWire::Bits32(0x4516_c790)),
            mapping: None,
            data_fin: false,
        }),
    );
}

#[test]
fn dss_data_ack_64_from_linux() {
    // "mptcp 12 dss ack 6944833978441844635": flags A a.
    check(
        &[
            0x1e, 0x0c, 0x20, 0x03, 0x60, 0x61, 0x01, 0xb5, 0x45, 0x16, 0xc7, 0x9b,
        ],
        MptcpOption::Dss(Dss {
            data_ack: Some(DataSeqWire::Bits64(6_944_833_978_441_844_635)),
            mapping: None,
            data_fin: false,
        }),
    );
}

#[test]
fn dss_ack_32_mapping_64_checksum_from_linux() {
    // "mptcp 24 dss ack 1593742231 seq 6944833978441844624 subseq 1 len 11 csum 0xfb6f":
    // flags A M m.
    let bytes = [
        0x1e, 0x18, 0x20, 0x0d, 0x5e, 0xfe, 0x93, 0x97, 0x60, 0x61, 0x01, 0xb5, 0x45, 0x16, 0xc7,
        0x90, 0x00, 0x00, 0x00, 0x01, 0x00, 0x0b, 0xfb, 0x6f,
    ];
    check(
        &bytes,
        MptcpOption::Dss(Dss {
            data_ack: Some(DataSeqWire::Bits32(1_593_742_231)),
            mapping: Some(DssMapping {
                data_seq: DataSeqWire::Bits64(6_944_833_978_441_844_624),
                subflow_seq: 1,
                data_level_length: 11,
                checksum: Some(0xfb6f),
            }),
            data_fin: false,
        }),
    );
}

#[test]
fn dss_ack_64_mapping_64_checksum_from_linux() {
    // "mptcp 28 dss ack 6944833978441847638 seq 14739310790519460759 subseq 1 len 26 csum
    // 0xdf8f": flags A a M m.
    let bytes = [
        0x1e, 0x1c, 0x20, 0x0f, 0x60, 0x61, 0x01, 0xb5, 0x45, 0x16, 0xd3, 0x56, 0xcc, 0x8c, 0x8d,
        0x12, 0x5e, 0xfe, 0x93, 0x97, 0x00, 0x00, 0x00, 0x01, 0x00, 0x1a, 0xdf, 0x8f,
    ];
    check(
        &bytes,
        MptcpOption::Dss(Dss {
            data_ack: Some(DataSeqWire::Bits64(6_944_833_978_441_847_638)),
            mapping: Some(DssMapping {
                data_seq: DataSeqWire::Bits64(14_739_310_790_519_460_759),
                subflow_seq: 1,
                data_level_length: 26,
                checksum: Some(0xdf8f),
            }),
            data_fin: false,
        }),
    );
}

#[test]
fn dss_data_fin_from_linux() {
    // "mptcp 28 dss fin ack 14739310790519460785 seq 6944833978441847648 subseq 0 len 1
    // csum 0x8571": flags F A a M m, the DATA_FIN-only mapping of section 3.3.3.
    let bytes = [
        0x1e, 0x1c, 0x20, 0x1f, 0xcc, 0x8c, 0x8d, 0x12, 0x5e, 0xfe, 0x93, 0xb1, 0x60, 0x61, 0x01,
        0xb5, 0x45, 0x16, 0xd3, 0x60, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x85, 0x71,
    ];
    check(
        &bytes,
        MptcpOption::Dss(Dss {
            data_ack: Some(DataSeqWire::Bits64(14_739_310_790_519_460_785)),
            mapping: Some(DssMapping {
                data_seq: DataSeqWire::Bits64(6_944_833_978_441_847_648),
                subflow_seq: 0,
                data_level_length: 1,
                checksum: Some(0x8571),
            }),
            data_fin: true,
        }),
    );
}

#[test]
fn dss_mapping_32_without_checksum() {
    // Figure 9 with flags M only: DSN 4 bytes, subflow seq, length, no checksum.
    let bytes = [
        0x1e, 0x0e, 0x20, 0x04, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x10, 0x00, 0x05, 0xb4,
    ];
    check(
        &bytes,
        MptcpOption::Dss(Dss {
            data_ack: None,
            mapping: Some(DssMapping {
                data_seq: DataSeqWire::Bits32(0x1122_3344),
                subflow_seq: 0x1000,
                data_level_length: 1460,
                checksum: None,
            }),
            data_fin: false,
        }),
    );
}

/// Builds a DSS option byte by byte from figure 9, independently of `emit`.
fn dss_bytes(ack: u8, seq: u8, checksum: bool, fin: bool) -> (Vec<u8>, Dss) {
    let mut flags = 0u8;
    let mut body = Vec::new();
    let data_ack = match ack {
        4 => {
            flags |= 0x01;
            body.extend_from_slice(&[0xa1, 0xa2, 0xa3, 0xa4]);
            Some(DataSeqWire::Bits32(0xa1a2_a3a4))
        }
        8 => {
            flags |= 0x03;
            body.extend_from_slice(&[0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8]);
            Some(DataSeqWire::Bits64(0xa1a2_a3a4_a5a6_a7a8))
        }
        _ => None,
    };
    let data_seq = match seq {
        4 => {
            flags |= 0x04;
            body.extend_from_slice(&[0xd1, 0xd2, 0xd3, 0xd4]);
            Some(DataSeqWire::Bits32(0xd1d2_d3d4))
        }
        8 => {
            flags |= 0x0c;
            body.extend_from_slice(&[0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8]);
            Some(DataSeqWire::Bits64(0xd1d2_d3d4_d5d6_d7d8))
        }
        _ => None,
    };
    let mapping = data_seq.map(|data_seq| {
        body.extend_from_slice(&[0x00, 0x00, 0x00, 0x2a, 0x01, 0x00]);
        if checksum {
            body.extend_from_slice(&[0xc5, 0xc6]);
        }
        DssMapping {
            data_seq,
            subflow_seq: 42,
            data_level_length: 256,
            checksum: checksum.then_some(0xc5c6),
        }
    });
    if fin {
        flags |= 0x10;
    }
    let mut bytes = vec![0x1e, 4 + body.len() as u8, 0x20, flags];
    bytes.extend_from_slice(&body);
    let dss = Dss {
        data_ack,
        mapping,
        data_fin: fin,
    };
    (bytes, dss)
}

#[test]
fn dss_every_flag_combination() {
    let mut forms = 0;
    for ack in [0, 4, 8] {
        for seq in [0, 4, 8] {
            for checksum in [false, true] {
                if checksum && seq == 0 {
                    continue;
                }
                for fin in [false, true] {
                    let (bytes, dss) = dss_bytes(ack, seq, checksum, fin);
                    check(&bytes, MptcpOption::Dss(dss));
                    forms += 1;
                }
            }
        }
    }
    assert_eq!(forms, 30);
}

#[test]
fn dss_lengths_must_match_flags() {
    // Flags A M m: 4 + 4 + 14 = 22, or 24 with a checksum; nothing else.
    check_only_lengths([0x1e, 0, 0x20, 0x0d], &[22, 24]);
    // No mapping: a checksum cannot be present, so only the exact length is valid.
    check_only_lengths([0x1e, 0, 0x20, 0x03], &[12]);
    check_only_lengths([0x1e, 0, 0x20, 0x00], &[4]);
}

#[test]
fn dss_width_flags_without_their_fields_are_ignored() {
    // Flags a and m without A and M (as Linux reads them): an empty DSS.
    assert_eq!(
        MptcpOption::parse(&[0x1e, 0x04, 0x20, 0x0a]),
        Ok(MptcpOption::Dss(Dss {
            data_ack: None,
            mapping: None,
            data_fin: false,
        }))
    );
}

// ADD_ADDR (RFC 8684, section 3.4.1; RFC 6824 for version 0).

#[test]
fn add_addr_v4_from_linux() {
    // "mptcp 16 add-addr v1 id 5 198.18.1.2 hmac 0xa17eef9f293a6c29".
    let bytes = [
        0x1e, 0x10, 0x30, 0x05, 0xc6, 0x12, 0x01, 0x02, 0xa1, 0x7e, 0xef, 0x9f, 0x29, 0x3a, 0x6c,
        0x29,
    ];
    check(
        &bytes,
        MptcpOption::AddAddr(AddAddr {
            echo: false,
            address_id: 5,
            address: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)),
            port: None,
            truncated_hmac: Some(0xa17e_ef9f_293a_6c29),
        }),
    );
}

#[test]
fn add_addr_v4_echo_from_linux() {
    // "mptcp 8 add-addr v1-echo id 5 198.18.1.2".
    check(
        &[0x1e, 0x08, 0x31, 0x05, 0xc6, 0x12, 0x01, 0x02],
        MptcpOption::AddAddr(AddAddr {
            echo: true,
            address_id: 5,
            address: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)),
            port: None,
            truncated_hmac: None,
        }),
    );
}

#[test]
fn add_addr_v6_from_linux() {
    // "mptcp 28 add-addr v1 id 6 2001:2::2 hmac 0x8807acf80c13d51d".
    let bytes = [
        0x1e, 0x1c, 0x30, 0x06, 0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x02,
        0x88, 0x07, 0xac, 0xf8, 0x0c, 0x13, 0xd5, 0x1d,
    ];
    check(
        &bytes,
        MptcpOption::AddAddr(AddAddr {
            echo: false,
            address_id: 6,
            address: IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2)),
            port: None,
            truncated_hmac: Some(0x8807_acf8_0c13_d51d),
        }),
    );
}

#[test]
fn add_addr_v6_echo_from_linux() {
    // "mptcp 20 add-addr v1-echo id 6 2001:2::2".
    let bytes = [
        0x1e, 0x14, 0x31, 0x06, 0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x02,
    ];
    check(
        &bytes,
        MptcpOption::AddAddr(AddAddr {
            echo: true,
            address_id: 6,
            address: IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2)),
            port: None,
            truncated_hmac: None,
        }),
    );
}

#[test]
fn add_addr_v4_with_port() {
    // Figure 12: address, port 8080 (0x1f90), then the HMAC; length 18.
    let bytes = [
        0x1e, 0x12, 0x30, 0x09, 198, 18, 1, 2, 0x1f, 0x90, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    check(
        &bytes,
        MptcpOption::AddAddr(AddAddr {
            echo: false,
            address_id: 9,
            address: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)),
            port: Some(8080),
            truncated_hmac: Some(0x0102_0304_0506_0708),
        }),
    );
}

#[test]
fn add_addr_v6_echo_with_port() {
    // Length 22: IPv6 address and port, echo so no HMAC.
    let bytes = [
        0x1e, 0x16, 0x31, 0x02, 0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x09,
        0x00, 0x50,
    ];
    check(
        &bytes,
        MptcpOption::AddAddr(AddAddr {
            echo: true,
            address_id: 2,
            address: IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 9)),
            port: Some(80),
            truncated_hmac: None,
        }),
    );
}

#[test]
fn add_addr_lengths() {
    check_only_lengths([0x1e, 0, 0x30, 0x01], &[16, 18, 28, 30]);
    check_only_lengths([0x1e, 0, 0x31, 0x01], &[8, 10, 20, 22]);
}

#[test]
fn add_addr_echo_and_hmac_must_agree_on_emit() {
    let mut add = AddAddr {
        echo: true,
        address_id: 1,
        address: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
        port: None,
        truncated_hmac: Some(1),
    };
    let mut buf = [0u8; 40];
    assert_eq!(
        MptcpOption::AddAddr(add).emit(&mut buf),
        Err(WireError::Malformed)
    );
    add.echo = false;
    add.truncated_hmac = None;
    assert_eq!(
        MptcpOption::AddAddr(add).emit(&mut buf),
        Err(WireError::Malformed)
    );
}

/// The checks of [`check`] for the version 0 ADD_ADDR functions.
fn check_v0(bytes: &[u8], expected: AddAddr) {
    assert_eq!(parse_add_addr_v0(bytes), Ok(expected));
    let mut out = [0u8; MAX_OPTION_LEN];
    assert_eq!(expected.emit_v0(&mut out), Ok(bytes.len()));
    assert_eq!(&out[..bytes.len()], bytes);
    assert_eq!(
        expected.emit_v0(&mut out[..bytes.len() - 1]),
        Err(WireError::BufferTooSmall)
    );
    for len in 0..bytes.len() {
        assert!(parse_add_addr_v0(&bytes[..len]).is_err(), "{len} bytes");
    }
}

#[test]
fn add_addr_version_0() {
    // RFC 6824, figure 12: IPVer 4, address ID 3, 198.18.1.2; then with port 443.
    let v4 = AddAddr {
        echo: false,
        address_id: 3,
        address: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)),
        port: None,
        truncated_hmac: None,
    };
    check_v0(&[0x1e, 0x08, 0x34, 0x03, 198, 18, 1, 2], v4);
    check_v0(
        &[0x1e, 0x0a, 0x34, 0x03, 198, 18, 1, 2, 0x01, 0xbb],
        AddAddr {
            port: Some(443),
            ..v4
        },
    );
    let v6 = AddAddr {
        address: IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2)),
        ..v4
    };
    let mut bytes = vec![0x1e, 0x14, 0x36, 0x03];
    bytes.extend_from_slice(&[0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    check_v0(&bytes, v6);
    bytes[1] = 0x16;
    bytes.extend_from_slice(&[0x01, 0xbb]);
    check_v0(
        &bytes,
        AddAddr {
            port: Some(443),
            ..v6
        },
    );
}

#[test]
fn add_addr_version_0_rejects_mismatches() {
    // IPVer 6 with an IPv4 length, IPVer 5, and another subtype.
    for bytes in [
        [0x1e, 0x08, 0x36, 0x03, 198, 18, 1, 2],
        [0x1e, 0x08, 0x35, 0x03, 198, 18, 1, 2],
        [0x1e, 0x08, 0x44, 0x03, 198, 18, 1, 2],
    ] {
        assert_eq!(parse_add_addr_v0(&bytes), Err(WireError::Malformed));
    }
    let echo = AddAddr {
        echo: true,
        address_id: 0,
        address: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)),
        port: None,
        truncated_hmac: None,
    };
    assert_eq!(echo.emit_v0(&mut [0; 40]), Err(WireError::Malformed));
}

// REMOVE_ADDR (section 3.4.2).

#[test]
fn remove_addr_from_linux() {
    // "mptcp 4 rem-addr id 6".
    check(
        &[0x1e, 0x04, 0x40, 0x06],
        MptcpOption::RemoveAddr { address_ids: &[6] },
    );
}

#[test]
fn remove_addr_several_ids() {
    check(
        &[0x1e, 0x06, 0x40, 0x01, 0x02, 0x07],
        MptcpOption::RemoveAddr {
            address_ids: &[1, 2, 7],
        },
    );
}

#[test]
fn remove_addr_needs_an_id() {
    assert_eq!(
        MptcpOption::parse(&[0x1e, 0x03, 0x40]),
        Err(WireError::Malformed)
    );
    assert_eq!(
        MptcpOption::RemoveAddr { address_ids: &[] }.emit(&mut [0; 8]),
        Err(WireError::Malformed)
    );
}

// MP_PRIO (section 3.3.8).

#[test]
fn mp_prio_from_linux() {
    // "mptcp 3 prio backup" (Linux follows it with a NOP).
    check(
        &[0x1e, 0x03, 0x51],
        MptcpOption::MpPrio {
            backup: true,
            address_id: None,
        },
    );
    check(
        &[0x1e, 0x03, 0x50],
        MptcpOption::MpPrio {
            backup: false,
            address_id: None,
        },
    );
}

#[test]
fn mp_prio_version_0() {
    // RFC 6824, figure 11: length 4 with the address ID.
    check(
        &[0x1e, 0x04, 0x51, 0x02],
        MptcpOption::MpPrio {
            backup: true,
            address_id: Some(2),
        },
    );
    check_only_lengths([0x1e, 0, 0x51, 0x02], &[3, 4]);
}

// MP_FAIL (section 3.7), MP_FASTCLOSE (section 3.5), MP_TCPRST (section 3.6).

#[test]
fn mp_fail() {
    // Figure 16: subtype 6, 12 reserved bits, the 64-bit DSN.
    check(
        &[
            0x1e, 0x0c, 0x60, 0x00, 0x60, 0x61, 0x01, 0xb5, 0x45, 0x16, 0xc7, 0x9b,
        ],
        MptcpOption::MpFail {
            data_seq: 6_944_833_978_441_844_635,
        },
    );
    check_only_lengths([0x1e, 0, 0x60, 0x00], &[12]);
}

#[test]
fn mp_fastclose_from_linux() {
    // "mptcp 12 fast-close key 0x85c6dcb0acb9e192".
    check(
        &[
            0x1e, 0x0c, 0x70, 0x00, 0x85, 0xc6, 0xdc, 0xb0, 0xac, 0xb9, 0xe1, 0x92,
        ],
        MptcpOption::MpFastclose {
            receiver_key: 0x85c6_dcb0_acb9_e192,
        },
    );
    check_only_lengths([0x1e, 0, 0x70, 0x00], &[12]);
}

#[test]
fn mp_tcprst_from_linux() {
    // Linux's abort: "mptcp 4" with flags 0 and reason 0 (unspecified).
    check(
        &[0x1e, 0x04, 0x80, 0x00],
        MptcpOption::MpTcpRst(MpTcpRst {
            flags: 0,
            reason: 0,
        }),
    );
}

#[test]
fn mp_tcprst_transient_with_reason() {
    // Flag T and reason 0x06 (middlebox interference).
    check(
        &[0x1e, 0x04, 0x81, 0x06],
        MptcpOption::MpTcpRst(MpTcpRst {
            flags: MpTcpRst::FLAG_TRANSIENT,
            reason: 6,
        }),
    );
    check_only_lengths([0x1e, 0, 0x81, 0x06], &[4]);
}

// Framing shared by all subtypes.

#[test]
fn unknown_subtype_is_a_value() {
    assert_eq!(
        MptcpOption::parse(&[0x1e, 0x05, 0xf0, 0x01, 0x02]),
        Ok(MptcpOption::Unknown { subtype: 0xf })
    );
    assert_eq!(
        MptcpOption::Unknown { subtype: 0xf }.emit(&mut [0; 8]),
        Err(WireError::Unsupported)
    );
}

#[test]
fn framing_errors() {
    // Not kind 30; length below 3; length beyond the slice.
    assert_eq!(
        MptcpOption::parse(&[0x1d, 0x04, 0x01, 0x81]),
        Err(WireError::Malformed)
    );
    assert_eq!(
        MptcpOption::parse(&[0x1e, 0x02, 0x01, 0x81]),
        Err(WireError::Malformed)
    );
    assert_eq!(
        MptcpOption::parse(&[0x1e, 0x05, 0x01, 0x81]),
        Err(WireError::Truncated)
    );
    assert_eq!(MptcpOption::parse(&[0x1e]), Err(WireError::Truncated));
}
