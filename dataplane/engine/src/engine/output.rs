//! Output: frames the engine's connections send (Ethernet, IPv4 or IPv6, and TCP headers
//! around a segment's payload), next-hop resolution, and the poll that hands frames to the
//! driver.

use core::net::{IpAddr, Ipv4Addr};

use mpterm_wire::checksum::Checksum;
use mpterm_wire::ethernet::{self, EthernetAddress, EthernetRepr};
use mpterm_wire::ipv4::{self, Ipv4Packet, Ipv4Repr};
use mpterm_wire::ipv6::{Ipv6Packet, Ipv6Repr};
use mpterm_wire::tcp::{self, TcpFlags, TcpRepr};
use rand_core::RngCore;

use super::{
    count_multipath_events, Engine, TokenRegistry, DEFAULT_TTL, IPV4_HEADER_END, IPV6_HEADER_END,
};
use crate::connection::Side;
use crate::tcp::OutgoingSegment;
use crate::{HeaderBytes, Instant, Payload, Transmit};

impl<P: Payload, R: RngCore, T: TokenRegistry> Engine<P, R, T> {
    /// The next frame to send, if any.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit<P>> {
        loop {
            if let Some(frame) = crate::queue::pop_front_reusing(&mut self.output) {
                self.counters.tx_frames += 1;
                self.counters.tx_bytes += frame.len() as u64;
                return Some(frame);
            }
            let slot = *self.dirty.front()?;
            let Some(entry) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
                crate::queue::pop_front_reusing(&mut self.dirty);
                continue;
            };
            match entry.connection.poll_segment(now) {
                Some((side, segment)) => self.transmit_segment(now, slot, side, segment),
                None => {
                    crate::queue::pop_front_reusing(&mut self.dirty);
                    entry.dirty = false;
                    // Signals (ADD_ADDR, REMOVE_ADDR, MP_PRIO, MP_FAIL) and our infinite
                    // mapping are counted as they leave.
                    let events = entry.connection.take_events();
                    count_multipath_events(&mut self.counters, &events);
                    self.account_counters(slot);
                    self.arm_timer(slot);
                    self.release_finished_subflows(slot);
                    self.release_if_finished(slot);
                }
            }
        }
    }

    pub(super) fn transmit_segment(
        &mut self,
        now: Instant,
        slot: usize,
        side: Side,
        segment: OutgoingSegment<P>,
    ) {
        let Some(entry) = self.slots.get(slot).and_then(Option::as_ref) else {
            return;
        };
        let (interface, local, remote) = match side {
            Side::Subflow(index) => match entry.connection.subflow(index) {
                Some(subflow) => (subflow.interface, subflow.tcb.local(), subflow.tcb.remote()),
                None => return,
            },
            Side::Backend => match (entry.backend_local, entry.connection.backend.as_ref()) {
                (Some(local), Some(backend)) => (entry.backend_interface, local, backend.remote()),
                _ => return,
            },
        };
        if segment.repr.flags.contains(TcpFlags::RST) {
            self.counters.tcp_rst_sent += 1;
        }
        // RFC 3168 section 6.1.5: ECT(0) on new data of a connection that set ECN up; never
        // on a retransmission, a pure ACK, a SYN or a RST (as Linux's tcp_ecn_send).
        let ect = segment.payload.as_ref().is_some_and(|p| !p.is_empty())
            && !segment.is_retransmission
            && !segment.repr.flags.contains(TcpFlags::SYN)
            && !segment.repr.flags.contains(TcpFlags::RST)
            && match side {
                Side::Subflow(index) => entry
                    .connection
                    .subflow(index)
                    .is_some_and(|subflow| subflow.tcb.ecn_enabled()),
                Side::Backend => entry
                    .connection
                    .backend
                    .as_ref()
                    .is_some_and(|backend| backend.ecn_enabled()),
            };
        let Some(ip) = IpPair::of(local.ip(), remote.ip()) else {
            debug_assert!(false, "a flow's addresses are of one family");
            return;
        };
        self.transmit_tcp(now, interface, ip, &segment.repr, segment.payload, ect);
    }

    /// Builds Ethernet, IP (of the addresses' family) and TCP headers for a segment and
    /// queues the frame, or holds it until the next hop's MAC is known. `ect` marks the IP
    /// header ECN-capable, ECT(0) (RFC 3168 section 5).
    pub(super) fn transmit_tcp(
        &mut self,
        now: Instant,
        interface: usize,
        ip: IpPair,
        repr: &TcpRepr<'_>,
        payload: Option<P>,
        ect: bool,
    ) {
        let mut header = HeaderBytes::new();
        let payload_bytes: &[u8] = payload.as_ref().map_or(&[], |p| p.as_ref());
        let tcp_len = repr.header_len();
        let ip_payload_len = (tcp_len + payload_bytes.len()) as u16;
        let dst = ip.dst();
        let ethernet = EthernetRepr {
            src: self.macs[interface],
            dst: EthernetAddress([0; 6]),
            ethertype: ip.ethertype(),
        };
        let buffer = header.buffer_mut();
        let ip_end = ip.header_end();
        let ip_emitted = match ip {
            IpPair::V4(src, dst) => Ipv4Repr {
                src,
                dst,
                protocol: ipv4::PROTOCOL_TCP,
                payload_len: ip_payload_len,
                ttl: DEFAULT_TTL,
            }
            .emit(&mut buffer[ethernet::HEADER_LEN..])
            .is_ok(),
            IpPair::V6(src, dst) => Ipv6Repr {
                src,
                dst,
                next_header: mpterm_wire::ipv6::NEXT_HEADER_TCP,
                payload_len: ip_payload_len,
                hop_limit: DEFAULT_TTL,
            }
            .emit(&mut buffer[ethernet::HEADER_LEN..])
            .is_ok(),
        };
        let emitted = ethernet.emit(&mut buffer[..]).is_ok()
            && ip_emitted
            && repr.emit(&mut buffer[ip_end..]).is_ok();
        if !emitted {
            // Options that do not fit are a bug in the caller, never input from the network.
            debug_assert!(false, "segment headers do not fit");
            return;
        }
        if ect {
            mark_ect0(ip, &mut buffer[ethernet::HEADER_LEN..ip_end]);
        }
        // A payload relayed whole (or sent again) carries the sum taken when it arrived.
        let payload_sum = payload
            .as_ref()
            .and_then(Payload::payload_sum)
            .unwrap_or_else(|| Checksum::of(payload_bytes));
        let tcp_header = &mut buffer[ip_end..ip_end + tcp_len];
        match ip {
            IpPair::V4(src, dst) => tcp::fill_checksum_v4_with_payload_sum(
                tcp_header,
                src,
                dst,
                payload_bytes.len(),
                payload_sum,
            ),
            IpPair::V6(src, dst) => tcp::fill_checksum_v6_with_payload_sum(
                tcp_header,
                src,
                dst,
                payload_bytes.len(),
                payload_sum,
            ),
        }
        header.set_len(ip_end + tcp_len);
        let payload = payload.filter(|p| !p.is_empty());
        let next_hop = self.next_hop(interface, dst);
        let mut frame = Transmit {
            interface,
            header,
            payload,
        };
        match self.neighbors.lookup(now, interface, next_hop) {
            Some(mac) => {
                frame.header.set_destination_mac(mac.0);
                self.output.push_back(frame);
            }
            None => {
                if !self.neighbors.wait_for(now, interface, next_hop, frame) {
                    self.counters.tx_dropped_no_neighbor += 1;
                }
            }
        }
    }

    /// The interface and next hop toward IPv4 `destination` (a backend): on-link first, then
    /// a gateway.
    pub(super) fn route(&self, destination: Ipv4Addr) -> Option<(usize, Ipv4Addr)> {
        let interfaces = &self.config.interfaces;
        if let Some(index) = interfaces.iter().position(|i| i.is_on_link(destination)) {
            return Some((index, destination));
        }
        interfaces
            .iter()
            .enumerate()
            .find_map(|(index, i)| i.gateway.map(|gateway| (index, gateway)))
    }

    /// The address to resolve on `interface` for `destination`: itself when on-link, else the
    /// interface's gateway of that family.
    pub(super) fn next_hop(&self, interface: usize, destination: IpAddr) -> IpAddr {
        let config = &self.config.interfaces[interface];
        if config.is_on_link_ip(destination) {
            return destination;
        }
        let gateway = match destination {
            IpAddr::V4(_) => config.gateway.map(IpAddr::V4),
            IpAddr::V6(_) => config.ipv6.and_then(|ipv6| ipv6.gateway).map(IpAddr::V6),
        };
        gateway.unwrap_or(destination)
    }
}

/// RFC 3168 section 5: ECT(0) is the ECN field's 0b10. IPv4's header checksum covers it.
fn mark_ect0(ip: IpPair, header: &mut [u8]) {
    match ip {
        IpPair::V4(..) => {
            let mut packet = Ipv4Packet::new_unchecked(header);
            packet.set_dscp_ecn(ECN_ECT0);
            packet.fill_checksum();
        }
        IpPair::V6(..) => {
            let mut packet = Ipv6Packet::new_unchecked(header);
            packet.set_version_class_flow(ECN_ECT0, 0);
        }
    }
}

/// The IP header's ECN field (RFC 3168 section 5): ECT(0), and CE.
pub(super) const ECN_ECT0: u8 = 0b10;
pub(super) const ECN_CE: u8 = 0b11;

/// The source and destination addresses of one packet, of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IpPair {
    V4(Ipv4Addr, Ipv4Addr),
    V6(core::net::Ipv6Addr, core::net::Ipv6Addr),
}

impl IpPair {
    /// The pair, if both addresses are of one family.
    pub(super) fn of(src: IpAddr, dst: IpAddr) -> Option<IpPair> {
        match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => Some(IpPair::V4(src, dst)),
            (IpAddr::V6(src), IpAddr::V6(dst)) => Some(IpPair::V6(src, dst)),
            _ => None,
        }
    }

    pub(super) fn src(self) -> IpAddr {
        match self {
            IpPair::V4(src, _) => IpAddr::V4(src),
            IpPair::V6(src, _) => IpAddr::V6(src),
        }
    }

    pub(super) fn dst(self) -> IpAddr {
        match self {
            IpPair::V4(_, dst) => IpAddr::V4(dst),
            IpPair::V6(_, dst) => IpAddr::V6(dst),
        }
    }

    pub(super) fn ethertype(self) -> u16 {
        match self {
            IpPair::V4(..) => ethernet::ETHERTYPE_IPV4,
            IpPair::V6(..) => ethernet::ETHERTYPE_IPV6,
        }
    }

    /// Where the IP header of a frame of this family ends (no IPv4 options, no IPv6
    /// extension headers: mpterm sends none).
    pub(super) fn header_end(self) -> usize {
        match self {
            IpPair::V4(..) => IPV4_HEADER_END,
            IpPair::V6(..) => IPV6_HEADER_END,
        }
    }
}
