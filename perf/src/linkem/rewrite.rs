//! Payload rewriting, as an application-level gateway (ALG) or a transparent proxy would do it:
//! one byte of a TCP segment's payload is changed and the TCP checksum is fixed, so that the
//! receiver's TCP takes the segment and only an end-to-end check over the data (MPTCP's DSS
//! checksum, RFC 8684 section 3.3.1) can tell. This is the middlebox of RFC 8684 section 3.7
//! ("Fallback"), which MP_FAIL exists for.
//!
//! What is rewritten, per direction: of the TCP segments that carry payload (a retransmission
//! counts as a segment of its own), the first `skip_segments` pass untouched, then each of the
//! next `segments` has its first payload byte inverted (XOR 0xff), and every later one passes
//! untouched. An inverted byte changes the 16-bit word it sits in by 0xff or 0xff00, never by
//! a multiple of 0xffff, so a ones'-complement sum over the data (the DSS checksum) always
//! changes with it.
//!
//! The TCP checksum is updated incrementally (RFC 1624, equation 3: `HC' = ~(~HC + ~m + m')`
//! for the 16-bit word `m` that became `m'`). The segment's length and addresses do not change,
//! so the IPv4 or IPv6 pseudo-header's part of the sum stays what it was and both are right
//! afterwards. Frames read: Ethernet II with IPv4 (not a fragment) or IPv6 whose next header is
//! TCP; anything else (ARP, VLAN tags, IPv6 extension headers, truncated frames) passes
//! untouched and is not counted as a data segment.
//!
//! Cost: while nothing is left to rewrite, one comparison per frame; before that, a header
//! walk over the first bytes. Nothing is allocated or copied.

const ETHERNET_HEADER: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const IPPROTO_TCP: u8 = 6;
const IPV6_HEADER: usize = 40;
const TCP_MIN_HEADER: usize = 20;
/// Offset of the checksum in the TCP header (RFC 9293 section 3.1).
const TCP_CHECKSUM: usize = 16;
/// What the rewritten byte is XORed with: every bit inverted, so it always changes.
const REWRITE_MASK: u8 = 0xff;

/// Which data segments of one direction are rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RewritePlan {
    /// Data segments passed untouched first.
    pub skip_segments: u64,
    /// Data segments rewritten after those (0: rewriting is off).
    pub segments: u64,
}

/// Where a TCP segment lies in a frame: the TCP header's offset, the payload's, and the end of
/// the segment (the IP packet's end, before any Ethernet padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TcpSegment {
    header: usize,
    payload: usize,
    end: usize,
}

/// One direction's rewriter.
#[derive(Debug, Clone)]
pub struct PayloadRewriter {
    plan: RewritePlan,
    data_segments_seen: u64,
    rewritten: u64,
}

impl PayloadRewriter {
    pub fn new(plan: RewritePlan) -> PayloadRewriter {
        PayloadRewriter {
            plan,
            data_segments_seen: 0,
            rewritten: 0,
        }
    }

    /// Segments rewritten so far.
    pub fn rewritten(&self) -> u64 {
        self.rewritten
    }

    /// Rewrites `frame` in place when the plan says so; whether it did.
    pub fn process(&mut self, frame: &mut [u8]) -> bool {
        if self.rewritten >= self.plan.segments {
            return false;
        }
        let Some(segment) = tcp_segment(frame) else {
            return false;
        };
        if segment.payload >= segment.end {
            return false;
        }
        self.data_segments_seen += 1;
        if self.data_segments_seen <= self.plan.skip_segments {
            return false;
        }
        rewrite_byte(frame, segment, segment.payload);
        self.rewritten += 1;
        true
    }
}

fn read_u16(frame: &[u8], at: usize) -> Option<u16> {
    let bytes = frame.get(at..at + 2)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

/// Finds the TCP segment of an Ethernet frame, if it carries one whole.
fn tcp_segment(frame: &[u8]) -> Option<TcpSegment> {
    let (header, end) = match read_u16(frame, 12)? {
        ETHERTYPE_IPV4 => {
            let ip = ETHERNET_HEADER;
            let version_ihl = *frame.get(ip)?;
            let ihl = usize::from(version_ihl & 0x0f) * 4;
            let total = usize::from(read_u16(frame, ip + 2)?);
            let fragment = read_u16(frame, ip + 6)?;
            // More fragments, or a fragment offset: not a whole segment.
            if version_ihl >> 4 != 4 || ihl < 20 || total < ihl || fragment & 0x3fff != 0 {
                return None;
            }
            if *frame.get(ip + 9)? != IPPROTO_TCP {
                return None;
            }
            (ip + ihl, ip + total)
        }
        ETHERTYPE_IPV6 => {
            let ip = ETHERNET_HEADER;
            if *frame.get(ip)? >> 4 != 6 || *frame.get(ip + 6)? != IPPROTO_TCP {
                return None;
            }
            let payload_length = usize::from(read_u16(frame, ip + 4)?);
            (ip + IPV6_HEADER, ip + IPV6_HEADER + payload_length)
        }
        _ => return None,
    };
    let data_offset = usize::from(*frame.get(header + 12)? >> 4) * 4;
    let payload = header + data_offset;
    if data_offset < TCP_MIN_HEADER || payload > end || end > frame.len() {
        return None;
    }
    Some(TcpSegment {
        header,
        payload,
        end,
    })
}

/// Inverts the byte at `at` (inside the segment) and updates the TCP checksum for it.
fn rewrite_byte(frame: &mut [u8], segment: TcpSegment, at: usize) {
    // The checksum covers the segment as 16-bit words from the TCP header on; a last odd byte
    // is the high half of a word padded with zero.
    let word_start = segment.header + ((at - segment.header) & !1);
    let word = |frame: &[u8]| {
        let high = frame[word_start];
        let low = if word_start + 1 < segment.end {
            frame[word_start + 1]
        } else {
            0
        };
        u16::from_be_bytes([high, low])
    };
    let before = word(frame);
    frame[at] ^= REWRITE_MASK;
    let after = word(frame);
    let checksum_at = segment.header + TCP_CHECKSUM;
    let old_checksum = u16::from_be_bytes([frame[checksum_at], frame[checksum_at + 1]]);
    let new_checksum = incremental_checksum(old_checksum, before, after);
    frame[checksum_at..checksum_at + 2].copy_from_slice(&new_checksum.to_be_bytes());
}

/// RFC 1624 equation 3: the checksum `checksum` once the covered word `before` became `after`.
fn incremental_checksum(checksum: u16, before: u16, after: u16) -> u16 {
    let mut sum = u32::from(!checksum) + u32::from(!before) + u32::from(after);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpterm_wire::checksum::{pseudo_header_v4, pseudo_header_v6, Checksum};
    use std::net::{Ipv4Addr, Ipv6Addr};

    const V4_SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
    const V4_DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const V6_SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 1);
    const V6_DST: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 2);

    /// A TCP header of `header_len` bytes (options as NOPs) with `flags`, then `payload`.
    fn tcp(header_len: usize, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut segment = vec![0u8; header_len];
        segment[0..2].copy_from_slice(&40000u16.to_be_bytes());
        segment[2..4].copy_from_slice(&5000u16.to_be_bytes());
        segment[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
        segment[12] = ((header_len / 4) as u8) << 4;
        segment[13] = flags;
        segment[14..16].copy_from_slice(&65535u16.to_be_bytes());
        segment[20..].fill(1); // NOP options
        segment.extend_from_slice(payload);
        segment
    }

    fn frame_v4(segment: &[u8], padding: usize) -> Vec<u8> {
        let mut frame = vec![0u8; ETHERNET_HEADER];
        frame[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((20 + segment.len()) as u16).to_be_bytes());
        ip[6] = 0x40; // don't fragment
        ip[8] = 64;
        ip[9] = IPPROTO_TCP;
        ip[12..16].copy_from_slice(&V4_SRC.octets());
        ip[16..20].copy_from_slice(&V4_DST.octets());
        let ip_checksum = Checksum::of(&ip).finish();
        ip[10..12].copy_from_slice(&ip_checksum.to_be_bytes());
        frame.extend_from_slice(&ip);
        let mut sum = pseudo_header_v4(V4_SRC, V4_DST, IPPROTO_TCP, segment.len() as u16);
        sum.add_bytes(segment);
        let mut segment = segment.to_vec();
        segment[16..18].copy_from_slice(&sum.finish().to_be_bytes());
        frame.extend_from_slice(&segment);
        frame.extend(std::iter::repeat_n(0, padding));
        frame
    }

    fn frame_v6(segment: &[u8]) -> Vec<u8> {
        let mut frame = vec![0u8; ETHERNET_HEADER];
        frame[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        let mut ip = [0u8; IPV6_HEADER];
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&(segment.len() as u16).to_be_bytes());
        ip[6] = IPPROTO_TCP;
        ip[7] = 64;
        ip[8..24].copy_from_slice(&V6_SRC.octets());
        ip[24..40].copy_from_slice(&V6_DST.octets());
        frame.extend_from_slice(&ip);
        let mut sum = pseudo_header_v6(V6_SRC, V6_DST, IPPROTO_TCP, segment.len() as u32);
        sum.add_bytes(segment);
        let mut segment = segment.to_vec();
        segment[16..18].copy_from_slice(&sum.finish().to_be_bytes());
        frame.extend_from_slice(&segment);
        frame
    }

    /// Whether the frame's TCP checksum verifies over the real pseudo-header (a full pass,
    /// independent of the incremental update).
    fn tcp_checksum_ok(frame: &[u8]) -> bool {
        let segment = tcp_segment(frame).expect("a TCP frame");
        let bytes = &frame[segment.header..segment.end];
        let mut sum = if read_u16(frame, 12) == Some(ETHERTYPE_IPV4) {
            pseudo_header_v4(V4_SRC, V4_DST, IPPROTO_TCP, bytes.len() as u16)
        } else {
            pseudo_header_v6(V6_SRC, V6_DST, IPPROTO_TCP, bytes.len() as u32)
        };
        sum.add_bytes(bytes);
        sum.finish() == 0
    }

    fn payload_of(frame: &[u8]) -> &[u8] {
        let segment = tcp_segment(frame).unwrap();
        &frame[segment.payload..segment.end]
    }

    const ACK: u8 = 0x10;
    const SYN: u8 = 0x02;

    #[test]
    fn a_rewritten_segment_differs_in_one_byte_and_its_tcp_checksum_verifies_v4_and_v6() {
        let payload: Vec<u8> = (0..1400u32).map(|i| (i * 7 + 3) as u8).collect();
        // Header lengths 20 and 40 (MPTCP's DSS with a checksum needs 20 option bytes); odd and
        // even payload lengths; a 1-byte payload (its word is padded with zero).
        for header_len in [20, 32, 40] {
            for len in [1, 2, 3, 1399, 1400] {
                for original in [
                    frame_v4(&tcp(header_len, ACK, &payload[..len]), 0),
                    frame_v4(&tcp(header_len, ACK, &payload[..len]), 6),
                    frame_v6(&tcp(header_len, ACK, &payload[..len])),
                ] {
                    assert!(tcp_checksum_ok(&original));
                    let mut frame = original.clone();
                    let mut rewriter = PayloadRewriter::new(RewritePlan {
                        skip_segments: 0,
                        segments: 1,
                    });
                    assert!(rewriter.process(&mut frame));
                    assert_eq!(rewriter.rewritten(), 1);
                    assert!(
                        tcp_checksum_ok(&frame),
                        "header {header_len}, payload {len}"
                    );
                    let changed: Vec<usize> = (0..frame.len())
                        .filter(|&i| frame[i] != original[i])
                        .collect();
                    let segment = tcp_segment(&frame).unwrap();
                    // The payload byte and the checksum field, nothing else.
                    assert!(changed.contains(&segment.payload));
                    assert!(changed.iter().all(|&i| i == segment.payload
                        || (segment.header + 16..segment.header + 18).contains(&i)));
                    assert_eq!(payload_of(&frame)[0], payload[0] ^ 0xff);
                    assert_eq!(payload_of(&frame)[1..], payload[1..len]);
                }
            }
        }
    }

    #[test]
    fn the_dss_style_sum_over_the_payload_always_changes() {
        // Every value of the first byte, in both word positions: the ones'-complement sum of
        // the payload never comes out the same (so a DSS checksum catches every rewrite).
        for value in 0..=255u8 {
            for len in [1usize, 2] {
                let payload = vec![value; len];
                let original = frame_v4(&tcp(20, ACK, &payload), 0);
                let mut frame = original.clone();
                PayloadRewriter::new(RewritePlan {
                    skip_segments: 0,
                    segments: 1,
                })
                .process(&mut frame);
                let before = Checksum::of(payload_of(&original)).folded();
                let after = Checksum::of(payload_of(&frame)).folded();
                // 0x0000 and 0xffff are the same ones'-complement number.
                let same = |a: u16, b: u16| a == b || (a | b == 0xffff && a & b == 0);
                assert!(!same(before, after), "value {value:#x}, len {len}");
            }
        }
    }

    #[test]
    fn only_the_planned_data_segments_are_rewritten() {
        let mut rewriter = PayloadRewriter::new(RewritePlan {
            skip_segments: 2,
            segments: 3,
        });
        let data = frame_v4(&tcp(20, ACK, b"hello"), 0);
        let pure_ack = frame_v4(&tcp(20, ACK, b""), 6);
        let syn = frame_v4(&tcp(40, SYN, b""), 0);
        let mut outcomes = vec![];
        for _ in 0..4 {
            for original in [&syn, &pure_ack] {
                let mut frame = original.clone();
                assert!(!rewriter.process(&mut frame), "a segment without data");
                assert_eq!(&frame, original);
            }
        }
        for _ in 0..8 {
            let mut frame = data.clone();
            outcomes.push(rewriter.process(&mut frame));
            assert_eq!(outcomes.last() == Some(&true), frame != data);
        }
        assert_eq!(
            outcomes,
            [false, false, true, true, true, false, false, false]
        );
        assert_eq!(rewriter.rewritten(), 3);
    }

    #[test]
    fn a_plan_of_zero_segments_rewrites_nothing() {
        let mut rewriter = PayloadRewriter::new(RewritePlan::default());
        let original = frame_v6(&tcp(20, ACK, b"payload"));
        let mut frame = original.clone();
        assert!(!rewriter.process(&mut frame));
        assert_eq!(frame, original);
        assert_eq!(rewriter.rewritten(), 0);
    }

    #[test]
    fn frames_that_are_not_whole_tcp_segments_pass_untouched() {
        let segment = tcp(20, ACK, b"data data");
        let v4 = frame_v4(&segment, 0);
        let mut cases = vec![];
        // ARP.
        let mut arp = v4.clone();
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        cases.push(arp);
        // UDP.
        let mut udp = v4.clone();
        udp[ETHERNET_HEADER + 9] = 17;
        cases.push(udp);
        // A first fragment (more fragments set) and a later one.
        let mut first_fragment = v4.clone();
        first_fragment[ETHERNET_HEADER + 6] = 0x20;
        cases.push(first_fragment);
        let mut later_fragment = v4.clone();
        later_fragment[ETHERNET_HEADER + 7] = 0x10;
        cases.push(later_fragment);
        // Cut short of its IP length, and cut inside the TCP header.
        cases.push(v4[..v4.len() - 1].to_vec());
        cases.push(v4[..ETHERNET_HEADER + 20 + 10].to_vec());
        // A TCP data offset below 5 words, and one beyond the packet.
        let mut short_offset = v4.clone();
        short_offset[ETHERNET_HEADER + 20 + 12] = 4 << 4;
        cases.push(short_offset);
        let mut long_offset = v4.clone();
        long_offset[ETHERNET_HEADER + 20 + 12] = 15 << 4;
        cases.push(long_offset);
        // IPv6 with an extension header (hop-by-hop) in front of TCP.
        let mut v6_extension = frame_v6(&segment);
        v6_extension[ETHERNET_HEADER + 6] = 0;
        cases.push(v6_extension);
        // Nothing at all, and an Ethernet header only.
        cases.push(vec![]);
        cases.push(v4[..ETHERNET_HEADER].to_vec());
        let mut rewriter = PayloadRewriter::new(RewritePlan {
            skip_segments: 0,
            segments: u64::MAX,
        });
        for (index, original) in cases.iter().enumerate() {
            let mut frame = original.clone();
            assert!(!rewriter.process(&mut frame), "case {index}");
            assert_eq!(&frame, original, "case {index}");
        }
        assert_eq!(rewriter.rewritten(), 0);
    }

    #[test]
    fn the_incremental_update_matches_a_full_recomputation() {
        // RFC 1624's example: a word 0x5555 becomes 0x3285 under checksum 0xdd2f.
        assert_eq!(incremental_checksum(0xdd2f, 0x5555, 0x3285), 0x0000);
        for (checksum, before, after) in [(0x1234, 0x00ff, 0xffff), (0xffff, 0x0000, 0x00ff)] {
            let updated = incremental_checksum(checksum, before, after);
            // Summing the updated checksum with the new word gives what the old one gave with
            // the old word.
            let mut old = Checksum::new();
            old.add_u16(checksum);
            old.add_u16(before);
            let mut new = Checksum::new();
            new.add_u16(updated);
            new.add_u16(after);
            assert_eq!(old.folded() % 0xffff, new.folded() % 0xffff);
        }
    }
}
