//! The frames the harness's hosts send to the engine, one builder per kind of step: segments
//! on a peer's flow (and misaddressed ones), SYNs of new connections and of MP_JOIN, ARP,
//! ICMP echo, raw TCP headers and garbage.

use core::net::{Ipv4Addr, SocketAddrV4};

use bytes::Bytes;
use mpterm_engine::mptcp_keys::derive_from_key;
use mpterm_engine::Instant;
use mpterm_wire::arp::{ArpOperation, ArpRepr};
use mpterm_wire::ethernet::{self, EthernetAddress};
use mpterm_wire::icmp::{IcmpEchoKind, IcmpEchoRepr};
use mpterm_wire::ipv4;
use mpterm_wire::mptcp::{MpCapable, MpJoin, MptcpOption};
use mpterm_wire::tcp::{TcpFlags, TcpOptions, TcpRepr, Timestamps};
use mpterm_wire::SeqNumber;

use super::frames::{self, FrameBuffer, Link};
use super::peer::{MptcpPeer, Peer, Role};
use super::script::SegmentSpec;
use super::setup::*;
use super::{Harness, MAX_PEERS};

impl Harness {
    pub(super) fn deliver(&mut self, interface: usize, frame: FrameBuffer) {
        self.engine.handle_frame(self.now, interface, frame);
        self.settle();
    }

    pub(super) fn send_segment(&mut self, spec: &SegmentSpec) {
        let index = usize::from(spec.peer) % self.peers.len();
        let peer = &self.peers[index];
        let segment = peer.build(spec, self.now);
        let mut src = *peer.address.ip();
        let mut dst = *peer.appliance.ip();
        let mut repr = segment.repr;
        let mut link = self.link_from(peer);
        let mut interface = peer.interface;
        let mut bad_checksum = false;
        if let Some(misaddress) = spec.misaddress {
            match misaddress % 8 {
                0 => repr.dst_port = repr.dst_port.wrapping_add(1),
                1 => repr.src_port = repr.src_port.wrapping_add(1),
                2 => dst = self.config.interfaces[1 - interface.min(1)].address,
                3 => link.dst_mac = EthernetAddress::BROADCAST.0,
                4 => link.dst_mac[5] ^= 0x80,
                5 => interface = 1 - interface.min(1),
                6 => interface = self.config.interfaces.len(),
                _ => bad_checksum = true,
            }
            src = if misaddress & 0x80 != 0 {
                OFF_LINK_CLIENT_IP
            } else {
                src
            };
        }
        let mut tcp = frames::tcp_segment(src, dst, &repr, &segment.raw_options, &segment.payload);
        if bad_checksum {
            tcp[16] ^= 0x01;
        }
        let packet = frames::ipv4_packet(src, dst, ipv4::PROTOCOL_TCP, &tcp);
        if spec.misaddress.is_none() {
            self.peers[index].sent(&segment);
        }
        self.deliver(
            interface,
            frames::ethernet_frame(link, ethernet::ETHERTYPE_IPV4, &packet),
        );
    }

    pub(super) fn link_from(&self, peer: &Peer) -> Link {
        Link {
            src_mac: peer.mac,
            dst_mac: self.config.interfaces[peer.interface].mac,
        }
    }

    /// A SYN to the listener from a new port: `kind & 7` picks MPTCP version 1 with or
    /// without checksums, plain TCP, version 0, an MP_CAPABLE of the wrong form, a SYN with
    /// data, or two MP_CAPABLE options; `kind & 0x08` sends from the second client host,
    /// `kind & 0x10` from a host off the link.
    pub(super) fn new_connection(&mut self, kind: u8, port: u16) {
        let ip = if kind & 0x10 != 0 {
            OFF_LINK_CLIENT_IP
        } else if kind & 0x08 != 0 {
            SECOND_CLIENT_IP
        } else {
            CLIENT_IP
        };
        let port = if port == 0 { self.next_port() } else { port };
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
        let mut options = [None, None];
        let mut payload_len = 0;
        let key = CLIENT_KEY ^ u64::from(port) << 16;
        match kind & 0x07 {
            0 => options[0] = Some(capable),
            1 => {
                options[0] = Some(MpCapable {
                    checksum_required: false,
                    ..capable
                })
            }
            2 => {}
            3 => {
                options[0] = Some(MpCapable {
                    version: 0,
                    sender_key: Some(key),
                    ..capable
                })
            }
            4 => {
                options[0] = Some(MpCapable {
                    sender_key: Some(key),
                    receiver_key: Some(!key),
                    ..capable
                })
            }
            5 => {
                options[0] = Some(capable);
                payload_len = 20;
            }
            _ => {
                options = [
                    Some(capable),
                    Some(MpCapable {
                        version: 0,
                        ..capable
                    }),
                ]
            }
        }
        let mptcp = options[0].map(|_| MptcpPeer::new(key));
        let iss = SeqNumber(u32::from(port).wrapping_mul(0x9e37_79b9));
        let peer = Peer::new(
            Role::Client,
            0,
            if ip == SECOND_CLIENT_IP {
                SECOND_CLIENT_MAC
            } else {
                CLIENT_MAC
            },
            SocketAddrV4::new(ip, port),
            LISTEN,
            iss,
            mptcp,
        );
        let mut tcp_options = syn_options(self.now);
        tcp_options.mptcp = options.map(|option| option.map(MptcpOption::MpCapable));
        self.send_syn(peer, tcp_options, payload_len);
    }

    /// A SYN with MP_JOIN (RFC 8684 section 3.2): `kind & 2` uses the token from the input
    /// instead of the live connection's, `kind & 4` comes from the second client host,
    /// `kind & 1` is the backup bit.
    pub(super) fn join(&mut self, kind: u8, address_id: u8, token: u32, nonce: u32) {
        let live_token = self.peers[0]
            .mptcp
            .as_ref()
            .and_then(|session| session.engine_key)
            .map_or(0, |key| derive_from_key(key).token);
        let (ip, mac) = if kind & 4 != 0 {
            (SECOND_CLIENT_IP, SECOND_CLIENT_MAC)
        } else {
            (CLIENT_IP, CLIENT_MAC)
        };
        let port = self.next_port();
        let mut options = syn_options(self.now);
        options.mptcp[0] = Some(MptcpOption::MpJoin(MpJoin::Syn {
            backup: kind & 1 != 0,
            address_id,
            receiver_token: if kind & 2 != 0 { token } else { live_token },
            sender_nonce: nonce,
        }));
        let peer = Peer::new(
            Role::Client,
            0,
            mac,
            SocketAddrV4::new(ip, port),
            LISTEN,
            SeqNumber(nonce),
            None,
        );
        self.send_syn(peer, options, 0);
    }

    pub(super) fn send_syn(
        &mut self,
        mut peer: Peer,
        options: TcpOptions<'static>,
        payload_len: usize,
    ) {
        let repr = TcpRepr {
            src_port: peer.address.port(),
            dst_port: peer.appliance.port(),
            seq: peer.iss,
            ack: SeqNumber(0),
            flags: TcpFlags::SYN,
            window: u16::MAX,
            options,
        };
        let payload = vec![0x5a; payload_len];
        let tcp = frames::tcp_segment(
            *peer.address.ip(),
            *peer.appliance.ip(),
            &repr,
            &[],
            &payload,
        );
        let packet = frames::ipv4_packet(
            *peer.address.ip(),
            *peer.appliance.ip(),
            ipv4::PROTOCOL_TCP,
            &tcp,
        );
        let link = self.link_from(&peer);
        peer.snd_nxt = peer.iss + (1 + payload_len as u32);
        // A SYN on a tracked flow (a port the input reused) leaves that flow's peer as it is.
        let tracked = self
            .peers
            .iter()
            .any(|known| known.address == peer.address && known.appliance == peer.appliance);
        if !tracked && self.peers.len() < MAX_PEERS {
            self.peers.push(peer);
        }
        self.deliver(
            0,
            frames::ethernet_frame(link, ethernet::ETHERTYPE_IPV4, &packet),
        );
    }

    pub(super) fn next_port(&mut self) -> u16 {
        let port = self.next_client_port;
        self.next_client_port = self.next_client_port.wrapping_add(1).max(1024);
        port
    }

    /// An ARP packet on `interface % 3` (2 is no interface): `kind & 1` reply or request,
    /// `(kind >> 1) & 3` the sender (the client, the backend, the second client, the
    /// appliance's own address), `(kind >> 3) & 3` the target (the interface's address, the
    /// other interface's, a stranger, the client), `kind & 0x20` broadcast, `kind & 0x40` a
    /// hardware type that does not parse.
    pub(super) fn arp(&mut self, kind: u8, interface: u8, mac_byte: u8) {
        let interface = usize::from(interface % 3);
        let own = self.config.interfaces[interface.min(1)].address;
        let other = self.config.interfaces[1 - interface.min(1)].address;
        let sender_ip =
            [CLIENT_IP, *BACKEND.ip(), SECOND_CLIENT_IP, own][usize::from(kind >> 1) & 3];
        let target_ip =
            [own, other, Ipv4Addr::new(198, 18, 0, 99), CLIENT_IP][usize::from(kind >> 3) & 3];
        let sender_mac = [0x02, 0, 0, 0, 0, mac_byte];
        let arp = ArpRepr {
            operation: if kind & 1 != 0 {
                ArpOperation::Reply
            } else {
                ArpOperation::Request
            },
            sender_mac: EthernetAddress(sender_mac),
            sender_ip,
            target_mac: EthernetAddress(if kind & 1 != 0 {
                self.config.interfaces[interface.min(1)].mac
            } else {
                [0; 6]
            }),
            target_ip,
        };
        let link = Link {
            src_mac: sender_mac,
            dst_mac: if kind & 0x20 != 0 {
                EthernetAddress::BROADCAST.0
            } else {
                self.config.interfaces[interface.min(1)].mac
            },
        };
        let mut frame = frames::arp_frame(link, &arp).0.to_vec();
        if kind & 0x40 != 0 {
            frame[ethernet::HEADER_LEN + 1] = 6;
        }
        self.deliver(interface, FrameBuffer(Bytes::from(frame)));
    }

    /// An ICMP echo request to the appliance: `kind & 1` a bad checksum, `& 2` a fragment,
    /// `& 4` an echo reply instead, `& 8` to the other interface's address, `& 0x10` from the
    /// backend on interface 1, `& 0x20` code 1.
    pub(super) fn icmp(&mut self, kind: u8, payload_len: u8) {
        let (interface, src, mac) = if kind & 0x10 != 0 {
            (1, *BACKEND.ip(), BACKEND_MAC)
        } else {
            (0, CLIENT_IP, CLIENT_MAC)
        };
        let dst = self.config.interfaces[if kind & 8 != 0 {
            1 - interface
        } else {
            interface
        }]
        .address;
        let echo = IcmpEchoRepr {
            kind: if kind & 4 != 0 {
                IcmpEchoKind::Reply
            } else {
                IcmpEchoKind::Request
            },
            identifier: 0x1234,
            sequence: u16::from(payload_len),
        };
        let data: Vec<u8> = (0..payload_len).collect();
        let mut message = vec![0u8; 8 + data.len()];
        echo.emit(&mut message, &data).expect("room for ICMP");
        message[8..].copy_from_slice(&data);
        if kind & 0x20 != 0 {
            message[1] = 1;
        }
        if kind & 1 != 0 {
            message[2] ^= 0xff;
        }
        let mut packet = frames::ipv4_packet(src, dst, ipv4::PROTOCOL_ICMP, &message);
        if kind & 2 != 0 {
            packet[6] = 0x20; // More Fragments, then the header checksum again.
            let mut view = ipv4::Ipv4Packet::new_unchecked(&mut packet[..]);
            view.fill_checksum();
        }
        let link = Link {
            src_mac: mac,
            dst_mac: self.config.interfaces[interface].mac,
        };
        self.deliver(
            interface,
            frames::ethernet_frame(link, ethernet::ETHERTYPE_IPV4, &packet),
        );
    }

    /// A TCP header of the input's bytes on a peer's flow (its own ports unless
    /// `keep_ports`), with correct IPv4 and TCP checksums.
    pub(super) fn raw_tcp(&mut self, peer: u8, keep_ports: bool, header: &[u8], payload_len: u8) {
        let peer = &self.peers[usize::from(peer) % self.peers.len()];
        let mut header = header.to_vec();
        header.resize(header.len().max(20), 0);
        if !keep_ports {
            header[0..2].copy_from_slice(&peer.address.port().to_be_bytes());
            header[2..4].copy_from_slice(&peer.appliance.port().to_be_bytes());
        }
        let payload = vec![0xa5; usize::from(payload_len)];
        let (src, dst) = (*peer.address.ip(), *peer.appliance.ip());
        let tcp = frames::raw_tcp_segment(src, dst, &header, &payload);
        let packet = frames::ipv4_packet(src, dst, ipv4::PROTOCOL_TCP, &tcp);
        let (interface, link) = (peer.interface, self.link_from(peer));
        self.deliver(
            interface,
            frames::ethernet_frame(link, ethernet::ETHERTYPE_IPV4, &packet),
        );
    }

    /// The input's bytes as a frame on `interface % 3`: `flags & 1` addresses it to the
    /// interface's MAC, `& 2` marks it IPv4, `& 4` ARP, `& 16` IPv6 (interface 0 has an IPv6
    /// address), `& 8` fixes its IPv4 header checksum.
    pub(super) fn garbage(&mut self, interface: u8, flags: u8, bytes: &[u8]) {
        let interface = usize::from(interface % 3);
        let mut frame = bytes.to_vec();
        if flags & 1 != 0 && frame.len() >= 6 {
            frame[..6].copy_from_slice(&self.config.interfaces[interface.min(1)].mac);
        }
        if frame.len() >= ethernet::HEADER_LEN {
            if flags & 2 != 0 {
                frame[12..14].copy_from_slice(&ethernet::ETHERTYPE_IPV4.to_be_bytes());
            } else if flags & 4 != 0 {
                frame[12..14].copy_from_slice(&ethernet::ETHERTYPE_ARP.to_be_bytes());
            } else if flags & 16 != 0 {
                frame[12..14].copy_from_slice(&ethernet::ETHERTYPE_IPV6.to_be_bytes());
            }
        }
        if flags & 8 != 0 && frame.len() >= ethernet::HEADER_LEN + ipv4::HEADER_LEN {
            let ip = &mut frame[ethernet::HEADER_LEN..];
            let header_len = usize::from(ip[0] & 0x0f) * 4;
            if (ipv4::HEADER_LEN..=ip.len()).contains(&header_len) {
                ipv4::Ipv4Packet::new_unchecked(&mut ip[..]).fill_checksum();
            }
        }
        self.deliver(interface, FrameBuffer(Bytes::from(frame)));
    }
}

/// Options of a SYN from a Linux-like host: MSS, SACK-permitted, timestamps, window scale.
fn syn_options(now: Instant) -> TcpOptions<'static> {
    TcpOptions {
        mss: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamps: Some(Timestamps {
            value: now.timestamp_millis(),
            echo_reply: 0,
        }),
        ..TcpOptions::default()
    }
}
