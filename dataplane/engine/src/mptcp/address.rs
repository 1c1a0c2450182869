//! Address management (RFC 8684 section 3.4): the addresses we announce with ADD_ADDR and
//! withdraw with REMOVE_ADDR, the client's announcements we echo and record, and the signals
//! (ADD_ADDR, REMOVE_ADDR, MP_PRIO) waiting on a subflow for a pure ACK to carry them.
//!
//! None of these fit beside a DSS mapping in the 40 bytes of option space (a 28-byte DSS
//! and 12 bytes of timestamps leave nothing), so, as Linux does (`mptcp_established_options`
//! with `drop_other_suboptions`), each leaves on a pure ACK of its own, beside the DATA_ACK when
//! that still fits, alone otherwise.
//!
//! Every table here has a fixed size: nothing is allocated when a connection announces.

use core::net::IpAddr;
use core::time::Duration;

use mpterm_wire::mptcp::{AddAddr, MptcpOption};
use mpterm_wire::tcp::{TcpOptions, MAX_OPTIONS_LEN};
use ring::hmac;

use crate::Instant;

/// Addresses one connection announces, and client addresses it records, at most. The
/// appliance has a handful of access links; the client's own path manager announces fewer
/// (Linux's `add_addr_signal_max` is 8).
pub const MAX_ADDRESSES: usize = 8;

/// How long an ADD_ADDR waits for its echo before it is sent again. Linux waits
/// `net.mptcp.add_addr_timeout` (2 minutes), a figure for the Internet at large; an echo
/// comes back within one round trip, so a few seconds cover a lost option or a lost echo on
/// any path a lab or an access network has, without flooding a client that never echoes.
pub const ADD_ADDR_RETRY_AFTER: Duration = Duration::from_secs(2);

/// Transmissions of one ADD_ADDR at most (the first and two more, as Linux's
/// `ADD_ADDR_RETRANS_MAX` is 3): a client that echoes none is not asked again.
pub const ADD_ADDR_MAX_TRANSMISSIONS: u8 = 3;

/// One address ID for each value, so that a REMOVE_ADDR option (which borrows its list)
/// can name any one of them from a `'static` segment.
static ADDRESS_IDS: [u8; 256] = {
    let mut ids = [0u8; 256];
    let mut id = 0;
    while id < 256 {
        ids[id] = id as u8;
        id += 1;
    }
    ids
};

/// Section 3.4.1: the truncated HMAC of an ADD_ADDR, HMAC-SHA256 keyed by the sender's key
/// followed by the receiver's over the address ID, the address and the port (zero when the
/// option carries none), as Linux computes it (`add_addr_generate_hmac`). The option carries
/// the rightmost 64 bits of the tag (section 3.4.1 and Linux alike).
pub fn add_addr_hmac(
    sender_key: u64,
    receiver_key: u64,
    address_id: u8,
    address: IpAddr,
    port: Option<u16>,
) -> u64 {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&sender_key.to_be_bytes());
    key[8..].copy_from_slice(&receiver_key.to_be_bytes());
    let mut message = [0u8; 1 + 16 + 2];
    message[0] = address_id;
    let mut len = 1;
    match address {
        IpAddr::V4(v4) => {
            message[1..5].copy_from_slice(&v4.octets());
            len += 4;
        }
        IpAddr::V6(v6) => {
            message[1..17].copy_from_slice(&v6.octets());
            len += 16;
        }
    }
    message[len..len + 2].copy_from_slice(&port.unwrap_or(0).to_be_bytes());
    len += 2;
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), &message[..len]);
    let mut rightmost = [0u8; 8];
    rightmost.copy_from_slice(&tag.as_ref()[tag.as_ref().len() - 8..]);
    u64::from_be_bytes(rightmost)
}

/// Whether an ADD_ADDR (or its echo) names this address: ID, address and port.
fn same_address(option: &AddAddr, address_id: u8, address: IpAddr, port: Option<u16>) -> bool {
    option.address_id == address_id && option.address == address && option.port == port
}

/// One of our addresses announced on a connection (section 3.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announcement {
    pub address_id: u8,
    pub address: IpAddr,
    pub port: Option<u16>,
    /// Times the option has been handed to a subflow.
    pub transmissions: u8,
    /// When it is due again, while no echo came; `None` once echoed or given up.
    pub retry_at: Option<Instant>,
    pub echoed: bool,
}

/// An address the client announced, with a valid HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddress {
    pub address_id: u8,
    pub address: IpAddr,
    pub port: Option<u16>,
}

/// What the connection knows of addresses: its announcements and the client's.
#[derive(Debug, Default)]
pub struct AddressBook {
    announced: [Option<Announcement>; MAX_ADDRESSES],
    remote: [Option<RemoteAddress>; MAX_ADDRESSES],
}

impl AddressBook {
    /// Starts announcing `address` under `address_id`; false when it is announced already or
    /// the table is full.
    pub fn announce(&mut self, address_id: u8, address: IpAddr, port: Option<u16>) -> bool {
        if self.announcement(address_id).is_some() {
            return false;
        }
        let Some(free) = self.announced.iter_mut().find(|slot| slot.is_none()) else {
            return false;
        };
        *free = Some(Announcement {
            address_id,
            address,
            port,
            transmissions: 0,
            retry_at: None,
            echoed: false,
        });
        true
    }

    pub fn announcement(&self, address_id: u8) -> Option<&Announcement> {
        self.announced
            .iter()
            .flatten()
            .find(|announcement| announcement.address_id == address_id)
    }

    pub fn announcements(&self) -> impl Iterator<Item = &Announcement> + '_ {
        self.announced.iter().flatten()
    }

    /// Forgets an announcement (the address is withdrawn); false when there was none.
    pub fn withdraw(&mut self, address_id: u8) -> bool {
        for slot in &mut self.announced {
            if slot.is_some_and(|a| a.address_id == address_id) {
                *slot = None;
                return true;
            }
        }
        false
    }

    /// The announcements due to be sent now: never sent, or unechoed past their retry time
    /// with transmissions left. Each is marked sent, its next retry armed; those past the
    /// bound are given up, counted in `given_up`.
    pub fn take_due(
        &mut self,
        now: Instant,
        mut send: impl FnMut(&Announcement) -> bool,
        given_up: &mut u32,
    ) {
        for announcement in self.announced.iter_mut().flatten() {
            if announcement.echoed {
                continue;
            }
            let due = match announcement.retry_at {
                None => announcement.transmissions == 0,
                Some(at) => at <= now,
            };
            if !due {
                continue;
            }
            if announcement.transmissions >= ADD_ADDR_MAX_TRANSMISSIONS {
                announcement.retry_at = None;
                *given_up += 1;
                continue;
            }
            if send(announcement) {
                announcement.transmissions += 1;
            }
            announcement.retry_at = Some(now + ADD_ADDR_RETRY_AFTER);
        }
    }

    /// The earliest retry of an unechoed announcement.
    pub fn next_retry(&self) -> Option<Instant> {
        self.announced
            .iter()
            .flatten()
            .filter_map(|announcement| announcement.retry_at)
            .min()
    }

    /// The client echoed one of our announcements; false when it names none.
    pub fn echoed(&mut self, echo: &AddAddr) -> bool {
        for announcement in self.announced.iter_mut().flatten() {
            let ours = announcement.address;
            if same_address(echo, announcement.address_id, ours, announcement.port) {
                let first = !announcement.echoed;
                announcement.echoed = true;
                announcement.retry_at = None;
                return first;
            }
        }
        false
    }

    /// Records an address the client announced (a repeat replaces the entry of its ID, as
    /// section 3.4.1 lets an ID be reused for another address); a full table keeps what it
    /// has.
    pub fn record_remote(&mut self, add: &AddAddr) {
        let entry = RemoteAddress {
            address_id: add.address_id,
            address: add.address,
            port: add.port,
        };
        if let Some(known) = self
            .remote
            .iter_mut()
            .flatten()
            .find(|known| known.address_id == add.address_id)
        {
            *known = entry;
            return;
        }
        if let Some(free) = self.remote.iter_mut().find(|slot| slot.is_none()) {
            *free = Some(entry);
        }
    }

    /// Forgets the client's address `address_id`; false when none was recorded.
    pub fn forget_remote(&mut self, address_id: u8) -> bool {
        for slot in &mut self.remote {
            if slot.is_some_and(|known| known.address_id == address_id) {
                *slot = None;
                return true;
            }
        }
        false
    }

    pub fn remote_addresses(&self) -> impl Iterator<Item = &RemoteAddress> + '_ {
        self.remote.iter().flatten()
    }
}

/// The address IDs of one received REMOVE_ADDR, copied out of the segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemovedIds {
    ids: [u8; MAX_ADDRESSES],
    len: u8,
    /// IDs beyond what is kept here (a list longer than any path manager sends).
    pub dropped: u8,
}

impl RemovedIds {
    pub fn from_list(list: &[u8]) -> Self {
        let mut removed = RemovedIds::default();
        for &id in list {
            removed.push(id);
        }
        removed
    }

    fn push(&mut self, id: u8) {
        match self.ids.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = id;
                self.len += 1;
            }
            None => self.dropped = self.dropped.saturating_add(1),
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.ids[..usize::from(self.len)]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0 && self.dropped == 0
    }
}

/// One option waiting on a subflow for a pure ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Our ADD_ADDR (with its HMAC) or our echo of the client's (section 3.4.1).
    AddAddr(AddAddr),
    /// REMOVE_ADDR for one of our address IDs (section 3.4.2).
    RemoveAddr(u8),
    /// MP_PRIO for this subflow (section 3.3.8).
    Priority { backup: bool },
    /// MP_FAIL on the subflow-level ACK (section 3.7): a checksum failed on the only subflow
    /// at this data sequence number, or our answer to the peer's.
    MpFail { data_seq: u64 },
}

impl Signal {
    pub fn option(self) -> MptcpOption<'static> {
        match self {
            Signal::AddAddr(add) => MptcpOption::AddAddr(add),
            Signal::RemoveAddr(id) => MptcpOption::RemoveAddr {
                address_ids: core::slice::from_ref(&ADDRESS_IDS[usize::from(id)]),
            },
            // Section 3.3.8: version 1's MP_PRIO names no address; it is about its subflow.
            Signal::Priority { backup } => MptcpOption::MpPrio {
                backup,
                address_id: None,
            },
            Signal::MpFail { data_seq } => MptcpOption::MpFail { data_seq },
        }
    }
}

/// Signals queued on one subflow, in order; a few at most.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignalQueue {
    queued: [Option<Signal>; 4],
    /// Entries in use, so that the output path checks one byte.
    len: u8,
}

impl SignalQueue {
    /// Queues `signal`; one that replaces an earlier of its kind and address takes its place
    /// (a newer priority, an ADD_ADDR sent again). False when the queue is full.
    pub fn push(&mut self, signal: Signal) -> bool {
        let same = |queued: &Signal| match (queued, &signal) {
            (Signal::Priority { .. }, Signal::Priority { .. }) => true,
            (Signal::AddAddr(a), Signal::AddAddr(b)) => {
                a.echo == b.echo && a.address_id == b.address_id
            }
            (Signal::RemoveAddr(a), Signal::RemoveAddr(b)) => a == b,
            (Signal::MpFail { .. }, Signal::MpFail { .. }) => true,
            _ => false,
        };
        if let Some(slot) = self.queued.iter_mut().flatten().find(|queued| same(queued)) {
            *slot = signal;
            return true;
        }
        match self.queued.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = Some(signal);
                self.len += 1;
                true
            }
            None => false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes the oldest signal.
    pub fn pop(&mut self) -> Option<Signal> {
        let first = self.queued[0].take()?;
        self.queued.rotate_left(1);
        self.len -= 1;
        Some(first)
    }

    /// Forgets everything queued (the subflow cannot send any more).
    pub fn clear(&mut self) {
        *self = SignalQueue::default();
    }
}

/// Puts `signal` on a pure ACK whose options are `options` (timestamps, maybe SACK blocks and
/// a DSS carrying the DATA_ACK in the first MPTCP slot): beside the DSS when everything fits in
/// 40 bytes, else SACK blocks give way, and then the DSS, as Linux drops its other suboptions.
pub fn place_signal(options: &mut TcpOptions<'static>, signal: Signal) {
    options.mptcp[1] = Some(signal.option());
    while options.encoded_len() > MAX_OPTIONS_LEN && !options.sack_blocks.is_empty() {
        options.sack_blocks.pop();
    }
    if options.encoded_len() > MAX_OPTIONS_LEN {
        options.mptcp = [Some(signal.option()), None];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    /// Vectors computed independently with Python:
    /// `hmac.new(key_a.to_bytes(8,'big') + key_b.to_bytes(8,'big'), msg, hashlib.sha256)
    /// .digest()[-8:]`, msg = ID, the address's octets, the port in two bytes (0 if none).
    #[test]
    fn add_addr_hmac_matches_independent_hmac_sha256() {
        let (key_a, key_b) = (0x0102_0304_0506_0708_u64, 0x1112_1314_1516_1718_u64);
        let address = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
        assert_eq!(
            add_addr_hmac(key_a, key_b, 2, address, None),
            0xd698_7507_e66d_0741
        );
        assert_eq!(
            add_addr_hmac(key_a, key_b, 2, address, Some(5000)),
            0x1463_5a03_b077_9a3e
        );
        let v6 = IpAddr::V6("2001:2::2".parse().unwrap());
        assert_eq!(
            add_addr_hmac(key_a, key_b, 7, v6, Some(443)),
            0xb4b5_471c_4469_b4f4
        );
        // The receiver checks with the keys the other way round: they differ.
        assert_ne!(
            add_addr_hmac(key_b, key_a, 2, address, None),
            add_addr_hmac(key_a, key_b, 2, address, None)
        );
    }

    #[test]
    fn announcements_are_retried_until_echoed_and_given_up_after_the_bound() {
        let mut book = AddressBook::default();
        let address = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
        assert!(book.announce(2, address, None));
        assert!(!book.announce(2, address, None), "announced once");
        let start = Instant::from_nanos(1_000_000_000);
        let mut given_up = 0;
        let mut sent = 0;
        book.take_due(
            start,
            |_| {
                sent += 1;
                true
            },
            &mut given_up,
        );
        assert_eq!(sent, 1);
        assert_eq!(book.next_retry(), Some(start + ADD_ADDR_RETRY_AFTER));
        book.take_due(
            start,
            |_| {
                sent += 1;
                true
            },
            &mut given_up,
        );
        assert_eq!(sent, 1, "not due before its retry");
        let mut now = start;
        for _ in 0..5 {
            now = now + ADD_ADDR_RETRY_AFTER;
            book.take_due(
                now,
                |_| {
                    sent += 1;
                    true
                },
                &mut given_up,
            );
        }
        assert_eq!(u8::try_from(sent).unwrap(), ADD_ADDR_MAX_TRANSMISSIONS);
        assert_eq!(given_up, 1);
        assert_eq!(book.next_retry(), None);

        let mut book = AddressBook::default();
        book.announce(3, address, Some(7000));
        book.take_due(start, |_| true, &mut given_up);
        let echo = |port| AddAddr {
            echo: true,
            address_id: 3,
            address,
            port,
            truncated_hmac: None,
        };
        assert!(!book.echoed(&echo(None)), "the port is part of the address");
        assert!(book.echoed(&echo(Some(7000))));
        assert_eq!(
            book.next_retry(),
            None,
            "an echoed announcement is not sent again"
        );
    }

    #[test]
    fn a_signal_keeps_the_data_ack_when_it_fits_and_drops_it_when_not() {
        use mpterm_wire::mptcp::{DataSeqWire, Dss};
        use mpterm_wire::tcp::Timestamps;
        let base = || {
            let mut options = TcpOptions {
                timestamps: Some(Timestamps {
                    value: 1,
                    echo_reply: 2,
                }),
                ..TcpOptions::default()
            };
            options.mptcp[0] = Some(MptcpOption::Dss(Dss {
                data_ack: Some(DataSeqWire::Bits64(9)),
                mapping: None,
                data_fin: false,
            }));
            options
        };
        let add = |port| {
            Signal::AddAddr(AddAddr {
                echo: false,
                address_id: 1,
                address: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)),
                port,
                truncated_hmac: Some(1),
            })
        };
        // 12 (timestamps) + 12 (DSS, DATA_ACK) + 16 (ADD_ADDR) = 40.
        let mut options = base();
        place_signal(&mut options, add(None));
        assert!(matches!(options.mptcp[0], Some(MptcpOption::Dss(_))));
        assert!(matches!(options.mptcp[1], Some(MptcpOption::AddAddr(_))));
        // With a port the ADD_ADDR is 18 bytes: the DSS gives way.
        let mut options = base();
        place_signal(&mut options, add(Some(5000)));
        assert!(matches!(options.mptcp[0], Some(MptcpOption::AddAddr(_))));
        assert_eq!(options.mptcp[1], None);
        assert!(options.encoded_len() <= MAX_OPTIONS_LEN);
        let mut options = base();
        place_signal(&mut options, Signal::RemoveAddr(200));
        assert_eq!(
            options.mptcp[1],
            Some(MptcpOption::RemoveAddr {
                address_ids: &[200]
            })
        );
    }

    #[test]
    fn signal_queue_replaces_its_kind_and_keeps_order() {
        let mut queue = SignalQueue::default();
        assert!(queue.push(Signal::Priority { backup: true }));
        assert!(queue.push(Signal::RemoveAddr(3)));
        assert!(queue.push(Signal::Priority { backup: false }));
        assert_eq!(queue.pop(), Some(Signal::Priority { backup: false }));
        assert_eq!(queue.pop(), Some(Signal::RemoveAddr(3)));
        assert_eq!(queue.pop(), None);
        assert!(queue.is_empty());
    }
}
