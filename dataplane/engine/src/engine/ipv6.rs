//! IPv6 on the appliance's own addresses (RFC 8200): TCP for subflows and listeners,
//! neighbour discovery (RFC 4861: solicitations answered, advertisements learned, our own
//! solicitations for next hops) and echo (RFC 4443 section 4). Extension headers are not
//! followed (see `mpterm_wire::ipv6`): such packets are counted and dropped, as are fragments.

use core::net::{IpAddr, Ipv6Addr};

use mpterm_wire::ethernet::{self, EthernetAddress, EthernetRepr};
use mpterm_wire::icmp_error::{is_error_type_v6, IcmpErrorRepr};
use mpterm_wire::icmpv6::{Icmpv6Packet, Icmpv6Repr, NeighborFlags};
use mpterm_wire::ipv6::{self, Ipv6Packet, Ipv6Repr};
use rand_core::RngCore;

use super::{Engine, IpPair, TokenRegistry, DEFAULT_TTL, IPV6_HEADER_END};
use crate::{HeaderBytes, Instant, Payload, Transmit};

impl<P: Payload, R: RngCore, T: TokenRegistry> Engine<P, R, T> {
    pub(super) fn handle_ipv6(
        &mut self,
        now: Instant,
        interface: usize,
        source_mac: EthernetAddress,
        frame: &P,
    ) {
        let bytes = &frame.as_ref()[ethernet::HEADER_LEN..];
        let Ok(packet) = Ipv6Packet::new_checked(bytes) else {
            self.counters.rx_dropped_malformed += 1;
            return;
        };
        let Ok(repr) = Ipv6Repr::parse(&packet) else {
            self.counters.rx_dropped_malformed += 1;
            return;
        };
        let Some(own) = self.config.interfaces[interface].ipv6 else {
            self.counters.rx_dropped_not_for_us += 1;
            return;
        };
        // Ours: any of our unicast addresses (the weak host model, as for IPv4), or, on this
        // link, the all-nodes group and our address's solicited-node group (RFC 4291 2.7.1).
        let unicast_for_us = self
            .config
            .interfaces
            .iter()
            .any(|interface| interface.ipv6.is_some_and(|ipv6| ipv6.address == repr.dst));
        let multicast_for_us =
            repr.dst == ipv6::ALL_NODES || repr.dst == ipv6::solicited_node_multicast(own.address);
        if !unicast_for_us && !multicast_for_us {
            self.counters.rx_dropped_not_for_us += 1;
            return;
        }
        let payload_start = IPV6_HEADER_END;
        let payload_end = IPV6_HEADER_END + usize::from(repr.payload_len);
        match repr.next_header {
            ipv6::NEXT_HEADER_ICMPV6 => self.handle_icmpv6(
                now,
                interface,
                source_mac,
                &repr,
                frame,
                payload_start..payload_end,
            ),
            ipv6::NEXT_HEADER_TCP if unicast_for_us => {
                let source = IpAddr::V6(repr.src);
                // As for IPv4: a peer on the link sends from its own MAC; learn it.
                if own.is_on_link(repr.src)
                    && self.neighbors.lookup(now, interface, source) != Some(source_mac)
                {
                    self.neighbors
                        .learn(now, interface, source, source_mac, &mut self.output);
                }
                self.handle_tcp(
                    now,
                    interface,
                    IpPair::V6(repr.src, repr.dst),
                    frame,
                    payload_start..payload_end,
                    packet.traffic_class() & 0b11 == super::output::ECN_CE,
                );
            }
            // Extension headers, fragments, TCP to a multicast group, other protocols.
            _ => self.counters.rx_dropped_not_for_us += 1,
        }
    }

    fn handle_icmpv6(
        &mut self,
        now: Instant,
        interface: usize,
        source_mac: EthernetAddress,
        ip: &Ipv6Repr,
        frame: &P,
        range: core::ops::Range<usize>,
    ) {
        let Ok(packet) = Icmpv6Packet::new_checked(&frame.as_ref()[range.clone()]) else {
            self.counters.rx_dropped_malformed += 1;
            return;
        };
        if is_error_type_v6(packet.msg_type()) {
            match IcmpErrorRepr::parse_v6(&packet, ip.src, ip.dst) {
                Ok(error) => self.handle_icmp_error(now, error),
                Err(mpterm_wire::WireError::Unsupported) => {
                    self.counters.rx_dropped_not_for_us += 1
                }
                Err(_) => self.counters.rx_dropped_malformed += 1,
            }
            return;
        }
        let message = match Icmpv6Repr::parse(&packet, ip.src, ip.dst) {
            Ok(message) => message,
            Err(mpterm_wire::WireError::Unsupported) => {
                self.counters.rx_dropped_not_for_us += 1;
                return;
            }
            Err(_) => {
                self.counters.rx_dropped_malformed += 1;
                return;
            }
        };
        let neighbor_discovery = matches!(
            message,
            Icmpv6Repr::NeighborSolicit { .. } | Icmpv6Repr::NeighborAdvert { .. }
        );
        // RFC 4861 7.1.1 and 7.1.2: a solicitation or advertisement whose hop limit is not
        // 255 may come from off the link, and is discarded.
        if neighbor_discovery && ip.hop_limit != ipv6::ND_HOP_LIMIT {
            self.counters.rx_dropped_malformed += 1;
            return;
        }
        let own = self.config.interfaces[interface]
            .ipv6
            .map(|ipv6| ipv6.address);
        match message {
            Icmpv6Repr::EchoRequest {
                identifier,
                sequence,
            } if !ip.dst.is_multicast() => {
                let data = frame.slice(range.start + mpterm_wire::icmpv6::HEADER_LEN..range.end);
                let reply = Icmpv6Repr::EchoReply {
                    identifier,
                    sequence,
                };
                if self.queue_icmpv6(interface, source_mac, ip.dst, ip.src, &reply, Some(data)) {
                    self.counters.icmp_echo_answered += 1;
                }
            }
            Icmpv6Repr::NeighborSolicit {
                target,
                source_link_addr,
            } if Some(target) == own => {
                let sender = IpAddr::V6(ip.src);
                // Section 7.2.3: a solicitation with a source link-layer address updates the
                // sender's entry; one from the unspecified address (duplicate address
                // detection) is answered to all nodes, without S (section 7.2.4).
                let (destination, destination_mac, flags) = if ip.src.is_unspecified() {
                    let group = ipv6::ALL_NODES;
                    let Some(mac) = EthernetAddress::from_ipv6_multicast(group) else {
                        return;
                    };
                    (group, mac, NeighborFlags::OVERRIDE)
                } else {
                    let mac = source_link_addr.unwrap_or(source_mac);
                    self.neighbors
                        .learn(now, interface, sender, mac, &mut self.output);
                    (
                        ip.src,
                        mac,
                        NeighborFlags::SOLICITED | NeighborFlags::OVERRIDE,
                    )
                };
                let advert = Icmpv6Repr::NeighborAdvert {
                    flags,
                    target,
                    target_link_addr: Some(self.macs[interface]),
                };
                if self.queue_icmpv6(
                    interface,
                    destination_mac,
                    target,
                    destination,
                    &advert,
                    None,
                ) {
                    self.counters.neighbor_solicitations_answered += 1;
                }
            }
            Icmpv6Repr::NeighborAdvert {
                target,
                target_link_addr: Some(mac),
                flags,
            } => {
                // Section 7.2.5: an advertisement updates an entry we have or asked for; an
                // unsolicited one for an address we know nothing of creates none.
                let address = IpAddr::V6(target);
                let known = self.neighbors.lookup(now, interface, address).is_some();
                if known || flags.contains(NeighborFlags::SOLICITED) {
                    self.neighbors
                        .learn(now, interface, address, mac, &mut self.output);
                } else {
                    self.counters.rx_dropped_not_for_us += 1;
                }
            }
            _ => self.counters.rx_dropped_not_for_us += 1,
        }
    }

    /// Sends a neighbour solicitation for `target` from our IPv6 address on `interface` to
    /// the target's solicited-node group (RFC 4861 section 7.2.2), with our link-layer address.
    pub(super) fn queue_neighbor_solicitation(&mut self, interface: usize, target: Ipv6Addr) {
        let Some(own) = self.config.interfaces[interface].ipv6 else {
            return;
        };
        let group = ipv6::solicited_node_multicast(target);
        let Some(group_mac) = EthernetAddress::from_ipv6_multicast(group) else {
            return;
        };
        let solicitation = Icmpv6Repr::NeighborSolicit {
            target,
            source_link_addr: Some(self.macs[interface]),
        };
        self.queue_icmpv6(
            interface,
            group_mac,
            own.address,
            group,
            &solicitation,
            None,
        );
    }

    /// Queues one ICMPv6 message with `data` after it (an echo reply's is the request's own
    /// bytes, not copied); false when it could not be (backlog full, or it did not fit).
    fn queue_icmpv6(
        &mut self,
        interface: usize,
        destination_mac: EthernetAddress,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        message: &Icmpv6Repr,
        data: Option<P>,
    ) -> bool {
        if self.backlog_full() {
            return false;
        }
        let data_bytes: &[u8] = data.as_ref().map_or(&[], |data| data.as_ref());
        let message_len = message.buffer_len();
        let Ok(payload_len) = u16::try_from(message_len + data_bytes.len()) else {
            self.counters.rx_dropped_malformed += 1;
            return false;
        };
        let neighbor_discovery = !matches!(
            message,
            Icmpv6Repr::EchoRequest { .. } | Icmpv6Repr::EchoReply { .. }
        );
        let ip = Ipv6Repr {
            src,
            dst,
            next_header: ipv6::NEXT_HEADER_ICMPV6,
            payload_len,
            // RFC 4861: neighbour discovery is sent with hop limit 255.
            hop_limit: if neighbor_discovery {
                ipv6::ND_HOP_LIMIT
            } else {
                DEFAULT_TTL
            },
        };
        let ethernet = EthernetRepr {
            src: self.macs[interface],
            dst: destination_mac,
            ethertype: ethernet::ETHERTYPE_IPV6,
        };
        let mut header = HeaderBytes::new();
        let buffer = header.buffer_mut();
        let emitted = ethernet.emit(&mut buffer[..]).is_ok()
            && ip.emit(&mut buffer[ethernet::HEADER_LEN..]).is_ok()
            && message
                .emit(src, dst, &mut buffer[IPV6_HEADER_END..], data_bytes)
                .is_ok();
        if !emitted {
            return false;
        }
        header.set_len(IPV6_HEADER_END + message_len);
        self.output.push_back(Transmit {
            interface,
            header,
            payload: data.filter(|data| !data.is_empty()),
        });
        true
    }
}
