//! Zero-copy views and owned representations of the headers mpterm speaks, in the style of
//! smoltcp's `wire` module.
//!
//! Every header has a view type (`EthernetFrame`, `ArpPacket`, `Ipv4Packet`, `IcmpPacket`,
//! `Ipv6Packet`, `Icmpv6Packet`, `TcpSegment`) over any `T: AsRef<[u8]>`. Its `new_checked`
//! validates the buffer once, after which no accessor panics: bytes from the network reach the
//! rest of mpterm only through `new_checked`, and every problem is a [`WireError`] value. Setters live on views over
//! `AsMut<[u8]>`. A separate owned `*Repr` type has `parse` (from a checked view) and `emit`
//! (into a byte buffer, returning the length written).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod arp;
pub mod checksum;
pub mod error;
pub mod ethernet;
pub mod icmp;
pub mod icmp_error;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod mptcp;
pub mod seq;
pub mod tcp;

#[cfg(test)]
mod capture;
#[cfg(test)]
mod capture_ipv6;

pub use error::WireError;
pub use seq::SeqNumber;
