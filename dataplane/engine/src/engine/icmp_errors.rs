//! ICMP and ICMPv6 errors about our TCP segments (RFC 5927): fragmentation needed (RFC 1191)
//! and packet too big (RFC 8201) lower the MSS of the connection side they quote; every other
//! error is a soft error, counted and otherwise ignored (RFC 5461: no connection is aborted on
//! an ICMP error, which anyone on the path can forge).
//!
//! An error acts only after validation against the connection: the quoted four-tuple must be
//! a live flow's (our address and port as the source) and the quoted sequence number of data
//! in flight (`Tcb::quotes_data_in_flight`). MTUs below the floor are ignored, so that a forged
//! report cannot shrink segments to nothing: IPv4 552 (Linux's `net.ipv4.route.min_pmtu`;
//! RFC 1191's 68 would allow 28-byte segments), IPv6 1280 (RFC 8200 section 5: every link
//! carries it; RFC 8201 section 4: never below it).

use core::net::{IpAddr, SocketAddr};

use mpterm_wire::icmp_error::{IcmpErrorKind, IcmpErrorRepr};
use rand_core::RngCore;

use super::{Engine, TokenRegistry};
use crate::tcp::IcmpRejection;
use crate::{Instant, Payload};

/// The smallest IPv4 path MTU an ICMP report may set (Linux's `min_pmtu`: 512 + 20 + 20).
pub(super) const IPV4_MIN_PATH_MTU: u32 = 552;
/// The IPv6 minimum link MTU (RFC 8200 section 5).
pub(super) const IPV6_MIN_PATH_MTU: u32 = 1280;
/// IPv4 and TCP headers without options.
const IPV4_TCP_HEADERS: u32 = 40;
/// IPv6 and TCP headers without options or extension headers.
const IPV6_TCP_HEADERS: u32 = 60;

impl<P: Payload, R: RngCore, T: TokenRegistry> Engine<P, R, T> {
    /// An ICMP or ICMPv6 error whose checksum verified, quoting a TCP segment.
    pub(super) fn handle_icmp_error(&mut self, now: Instant, error: IcmpErrorRepr) {
        let quoted = error.quoted;
        let local = SocketAddr::new(quoted.src, quoted.src_port);
        let remote = SocketAddr::new(quoted.dst, quoted.dst_port);
        let Some((slot, side)) = self.flows.get(&(local, remote)).copied() else {
            self.counters.icmp_errors_no_connection += 1;
            return;
        };
        let Some(tcb) = self
            .slots
            .get_mut(slot)
            .and_then(Option::as_mut)
            .and_then(|entry| entry.connection.tcb_mut(side))
        else {
            self.counters.icmp_errors_no_connection += 1;
            return;
        };
        if !tcb.quotes_data_in_flight(quoted.seq) {
            self.counters.icmp_errors_outside_window += 1;
            return;
        }
        let IcmpErrorKind::PacketTooBig { mtu } = error.kind else {
            self.counters.icmp_errors_ignored += 1;
            return;
        };
        let (floor, headers) = match local.ip() {
            IpAddr::V4(_) => (IPV4_MIN_PATH_MTU, IPV4_TCP_HEADERS),
            IpAddr::V6(_) => (IPV6_MIN_PATH_MTU, IPV6_TCP_HEADERS),
        };
        if mtu < floor {
            self.counters.icmp_mtu_below_floor += 1;
            return;
        }
        let path_mss = (mtu - headers).min(u32::from(u16::MAX)) as u16;
        match tcb.lower_path_mss(quoted.seq, path_mss) {
            Ok(()) => {
                self.counters.icmp_mtu_lowered += 1;
                // The pieces of what no longer fits go out at once.
                self.after_activity(now, slot);
            }
            Err(IcmpRejection::SequenceOutsideWindow) => {
                self.counters.icmp_errors_outside_window += 1
            }
            Err(IcmpRejection::NotSmaller) => self.counters.icmp_errors_ignored += 1,
        }
    }
}
