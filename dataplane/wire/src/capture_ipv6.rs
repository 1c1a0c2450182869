//! IPv6 frames captured from Linux 6.18 between two network namespaces over one veth pair, with
//! checksum offload off so that every checksum on the wire is the one Linux computed.
//! `testdata/capture-linux-ipv6.sh` recreates the capture (nonces, flow labels, timestamps and
//! sequence numbers differ on every run); the pcap file it produced is
//! `testdata/linux-ipv6.pcap`. Each constant is one Ethernet frame as hex (decode it with
//! [`crate::capture::bytes`]), split into the Ethernet header, the fixed IPv6 header
//! (first word pair, source, destination), then the upper layer, with the tcpdump summary above
//! it.
//!
//! Hosts: 2001:2::1 at 02:00:00:00:00:01 (c0) and 2001:2::2 at 02:00:00:00:00:02 (s0), both with
//! link-local addresses fe80::ff:fe00:1 and fe80::ff:fe00:2.

// The unit tests each use a different subset of the fixtures.
#![allow(dead_code)]

use core::net::Ipv6Addr;

/// 2001:2::1, the host that pings and connects.
pub const CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
/// 2001:2::2, the host that answers.
pub const SERVER: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);

/// :: > ff02::1:ff00:2: ICMP6, neighbor solicitation, who has 2001:2::2, nonce option (14); hlim
/// 255
pub const DAD_NEIGHBOR_SOLICIT: &str = "
    33 33 ff 00 00 02 02 00 00 00 00 02 86 dd
    60 00 00 00 00 20 3a ff
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    ff 02 00 00 00 00 00 00 00 00 00 01 ff 00 00 02
    87 00 db 7e 00 00 00 00
    20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 02
    0e 01 34 de 21 e8 1a 53
";

/// 2001:2::1 > ff02::1:ff00:2: ICMP6, neighbor solicitation, who has 2001:2::2, source link-address
/// option 02:00:00:00:00:01; hlim 255
pub const NEIGHBOR_SOLICIT: &str = "
    33 33 ff 00 00 02 02 00 00 00 00 01 86 dd
    60 00 00 00 00 20 3a ff
    20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 01
    ff 02 00 00 00 00 00 00 00 00 00 01 ff 00 00 02
    87 00 37 93 00 00 00 00
    20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 02
    01 01 02 00 00 00 00 01
";

/// 2001:2::2 > 2001:2::1: ICMP6, neighbor advertisement, tgt is 2001:2::2, Flags [solicited,
/// override], destination link-address option 02:00:00:00:00:02; hlim 255
pub const NEIGHBOR_ADVERT: &str = "
    02 00 00 00 00 01 02 00 00 00 00 02 86 dd
    60 00 00 00 00 20 3a ff
    20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 02
    20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 01
    88 00 b3 93 60 00 00 00
    20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 02
    02 01 02 00 00 00 00 02
";

/// 2001:2::1 > 2001:2::2: ICMP6, echo request, id 27211, seq 1, flowlabel 0x7a117, hlim 64, payload
/// length 64
pub const ECHO_REQUEST: &str = "
    02 00 00 00 00 02 02 00 00 00 00 01 86 dd
    60 07 a1 17 00 40 3a 40
    20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 01
    20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 02
    80 00 90 92 6a 4b 00 01
    27 5c 0f 6b 00 00 00 00 4d 03 02 00 00 00 00 00 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f
    20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f 30 31 32 33 34 35 36 37
";

/// 2001:2::2 > 2001:2::1: ICMP6, echo reply, id 27211, seq 1, flowlabel 0x69650, hlim 64, payload
/// length 64
pub const ECHO_REPLY: &str = "
    02 00 00 00 00 01 02 00 00 00 00 02 86 dd
    60 06 96 50 00 40 3a 40
    20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 02
    20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 01
    81 00 8f 92 6a 4b 00 01
    27 5c 0f 6b 00 00 00 00 4d 03 02 00 00 00 00 00 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f
    20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f 30 31 32 33 34 35 36 37
";

/// 2001:2::1.59044 > 2001:2::2.10000: Flags [S], cksum 0x3721, seq 164208646, win 64800, options
/// [mss 1440,sackOK,TS val 1999545619 ecr 0,nop,wscale 10], length 0
pub const TCP_SYN: &str = "
    02 00 00 00 00 02 02 00 00 00 00 01 86 dd
    60 0d ef 39 00 28 06 40
    20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 01
    20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 02
    e6 a4 27 10 09 c9 a0 06 00 00 00 00 a0 02 fd 20 37 21 00 00
    02 04 05 a0 04 02 08 0a 77 2e a5 13 00 00 00 00 01 03 03 0a
";

/// 2001:2::1.59044 > 2001:2::2.10000: Flags [P.], cksum 0x5bba, seq 1:11, ack 1, win 64, options
/// [nop,nop,TS val 1999545619 ecr 1090671168], length 10 ("hello ipv6")
pub const TCP_DATA: &str = "
    02 00 00 00 00 02 02 00 00 00 00 01 86 dd
    60 0d ef 39 00 2a 06 40
    20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 01
    20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 02
    e6 a4 27 10 09 c9 a0 07 8f 05 c0 ff 80 18 00 40 5b ba 00 00
    01 01 08 0a 77 2e a5 13 41 02 52 40
    68 65 6c 6c 6f 20 69 70 76 36
";

/// 2001:2::2.10000 > 2001:2::1.59044: Flags [P.], cksum 0xffb7, seq 1:17, ack 12, win 63, options
/// [nop,nop,TS val 1090671168 ecr 1999545619], length 16 ("reply hello ipv6")
pub const TCP_SERVER_DATA: &str = "
    02 00 00 00 00 01 02 00 00 00 00 02 86 dd
    60 07 62 39 00 30 06 40
    20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 02
    20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 01
    27 10 e6 a4 8f 05 c0 ff 09 c9 a0 12 80 18 00 3f ff b7 00 00
    01 01 08 0a 41 02 52 40 77 2e a5 13
    72 65 70 6c 79 20 68 65 6c 6c 6f 20 69 70 76 36
";

/// fe80::ff:fe00:1 > ff02::16: HBH (rtalert: 0x0000) (padn), ICMP6 multicast listener report v2;
/// hlim 1, next header 0 (hop-by-hop options)
pub const MLD_REPORT_HOP_BY_HOP: &str = "
    33 33 00 00 00 16 02 00 00 00 00 01 86 dd
    60 00 00 00 00 24 00 01
    fe 80 00 00 00 00 00 00 00 00 00 ff fe 00 00 01
    ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 16
    3a 00 05 02 00 00 01 00
    8f 00 72 07 00 00 00 01 04 00 00 00 ff 02 00 00 00 00 00 00 00 00 00 01 ff 00 00 01
";

/// fe80::ff:fe00:2 > ff02::2: ICMP6, router solicitation, source link-address option
/// 02:00:00:00:00:02; hlim 255
pub const ROUTER_SOLICIT: &str = "
    33 33 00 00 00 02 02 00 00 00 00 02 86 dd
    60 00 00 00 00 10 3a ff
    fe 80 00 00 00 00 00 00 00 00 00 ff fe 00 00 02
    ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 02
    85 00 7b 2a 00 00 00 00
    01 01 02 00 00 00 00 02
";

/// The IPv6 payload of an Ethernet/IPv6 fixture frame (the offsets come straight from the
/// payload length field), with its source and destination.
pub fn ipv6_payload(frame: &[u8]) -> (Ipv6Addr, Ipv6Addr, &[u8]) {
    let ip = &frame[14..];
    let payload_len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    let address = |bytes: &[u8]| Ipv6Addr::from(<[u8; 16]>::try_from(bytes).expect("16 bytes"));
    (
        address(&ip[8..24]),
        address(&ip[24..40]),
        &ip[40..40 + payload_len],
    )
}
