//! Address management (RFC 8684 section 3.4) and priorities (section 3.3.8): which of our
//! addresses connections are told of, their address IDs, and the operator's requests to
//! announce, withdraw or demote them.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use rand_core::RngCore;

use super::{AddressError, AnnouncedInterface, Engine, TokenRegistry};
use crate::mptcp::address::MAX_ADDRESSES;
use crate::{Instant, Payload};

impl<P: Payload, R: RngCore, T: TokenRegistry> Engine<P, R, T> {
    /// Announces the addresses of `interface` (IPv4, and IPv6 if it has one; with `port` when
    /// joins should use another port than the connection's) with ADD_ADDR to every MPTCP
    /// connection once it is fully established, those established already included. A
    /// connection opened to one of them is not told of that one (it is address ID 0 there).
    pub fn announce_address(
        &mut self,
        now: Instant,
        interface: usize,
        port: Option<u16>,
    ) -> Result<(), AddressError> {
        if interface >= self.config.interfaces.len() {
            return Err(AddressError::NoSuchInterface(interface));
        }
        let full = self.announced.len() >= MAX_ADDRESSES;
        match self.announced.iter_mut().find(|a| a.interface == interface) {
            Some(known) => known.port = port,
            None if full => return Err(AddressError::TooManyAddresses),
            None => self.announced.push(AnnouncedInterface { interface, port }),
        }
        for address in self.interface_addresses(interface) {
            for slot in 0..self.slots.len() {
                let Some(address_id) = self.connection_address_id(slot, address) else {
                    continue;
                };
                if let Some(entry) = self.slots[slot].as_mut() {
                    entry
                        .connection
                        .announce_address(now, address_id, address, port);
                }
                self.after_activity(now, slot);
            }
        }
        Ok(())
    }

    /// Withdraws the addresses of `interface` (they go away): no connection is told of them
    /// any more, and those that were, or have subflows on them, get REMOVE_ADDR and lose those
    /// subflows (section 3.4.2).
    pub fn withdraw_address(&mut self, now: Instant, interface: usize) -> Result<(), AddressError> {
        if interface >= self.config.interfaces.len() {
            return Err(AddressError::NoSuchInterface(interface));
        }
        self.announced.retain(|a| a.interface != interface);
        for address in self.interface_addresses(interface) {
            for slot in 0..self.slots.len() {
                let Some(address_id) = self.connection_address_id(slot, address) else {
                    continue;
                };
                let withdrawn = self.slots[slot]
                    .as_mut()
                    .is_some_and(|entry| entry.connection.withdraw_address(address_id));
                if withdrawn {
                    self.after_activity(now, slot);
                }
            }
        }
        Ok(())
    }

    /// Asks the client with MP_PRIO to use subflow `subflow` of connection `connection` only
    /// as a backup (or again as a regular path), and schedules our data by the same rule.
    pub fn set_subflow_backup(
        &mut self,
        now: Instant,
        connection: u64,
        subflow: u8,
        backup: bool,
    ) -> Result<(), AddressError> {
        let slot = self
            .slots
            .iter()
            .position(|entry| {
                entry
                    .as_ref()
                    .is_some_and(|e| e.connection.id == connection)
            })
            .ok_or(AddressError::NoSuchConnection(connection))?;
        let marked = self.slots[slot]
            .as_mut()
            .is_some_and(|entry| entry.connection.set_local_backup(subflow, backup));
        if !marked {
            return Err(AddressError::NoSuchSubflow {
                connection,
                subflow,
            });
        }
        self.after_activity(now, slot);
        Ok(())
    }

    /// [`Engine::set_subflow_backup`] for every subflow of every connection on an address of
    /// `interface`; how many subflows were marked.
    pub fn set_address_backup(
        &mut self,
        now: Instant,
        interface: usize,
        backup: bool,
    ) -> Result<usize, AddressError> {
        let interface_config = self
            .config
            .interfaces
            .get(interface)
            .ok_or(AddressError::NoSuchInterface(interface))?
            .clone();
        let mut marked = 0;
        for slot in 0..self.slots.len() {
            let Some(entry) = self.slots[slot].as_mut() else {
                continue;
            };
            let mut any = false;
            for index in 0..crate::mptcp::MAX_SUBFLOWS as u8 {
                let matches = entry
                    .connection
                    .subflow(index)
                    .is_some_and(|subflow| interface_config.owns(subflow.tcb.local().ip()));
                if matches && entry.connection.set_local_backup(index, backup) {
                    marked += 1;
                    any = true;
                }
            }
            if any {
                self.after_activity(now, slot);
            }
        }
        Ok(marked)
    }

    /// Our address ID for `address` on the connection in `slot` (section 3.4), unless that
    /// is the address the connection was opened to (ID 0, which the client knows).
    fn connection_address_id(&self, slot: usize, address: IpAddr) -> Option<u8> {
        let entry = self.slots.get(slot)?.as_ref()?;
        let initial_local = entry
            .connection
            .subflow(0)
            .map(|initial| initial.tcb.local());
        if initial_local.is_some_and(|initial| initial.ip() == address) {
            return None;
        }
        Some(self.address_id(address, initial_local))
    }

    /// Tells a connection that just became fully established of our announced addresses.
    pub(super) fn offer_addresses(&mut self, now: Instant, slot: usize) {
        let mut offers = [(0u8, IpAddr::V4(Ipv4Addr::UNSPECIFIED), None); MAX_ADDRESSES];
        let mut count = 0;
        for announced in &self.announced {
            for address in self.interface_addresses(announced.interface) {
                let Some(address_id) = self.connection_address_id(slot, address) else {
                    continue;
                };
                if count < offers.len() {
                    offers[count] = (address_id, address, announced.port);
                    count += 1;
                }
            }
        }
        if let Some(entry) = self.slots.get_mut(slot).and_then(Option::as_mut) {
            entry
                .connection
                .offer_addresses(now, offers[..count].iter().copied());
        }
    }

    /// The addresses of `interface`: its IPv4 address, then its IPv6 address if it has one.
    pub(super) fn interface_addresses(&self, interface: usize) -> InterfaceAddresses {
        let config = &self.config.interfaces[interface];
        let ipv6 = config.ipv6.map(|ipv6| IpAddr::V6(ipv6.address));
        core::iter::once(IpAddr::V4(config.address)).chain(ipv6)
    }

    /// Section 3.4: our address ID for `local`: 0 for the initial subflow's address, else the
    /// address's place among our addresses plus one, the IPv4 addresses of the interfaces in
    /// order first, then their IPv6 addresses (so that an IPv4-only setup keeps IDs 1..=N).
    pub(super) fn address_id(&self, local: IpAddr, initial_local: Option<SocketAddr>) -> u8 {
        if initial_local.is_some_and(|initial| initial.ip() == local) {
            return 0;
        }
        let interfaces = &self.config.interfaces;
        let position = match local {
            IpAddr::V4(v4) => interfaces.iter().position(|i| i.address == v4),
            IpAddr::V6(v6) => interfaces
                .iter()
                .position(|i| i.ipv6.is_some_and(|ipv6| ipv6.address == v6))
                .map(|position| interfaces.len() + position),
        };
        position.map_or(0, |position| (position + 1).min(usize::from(u8::MAX)) as u8)
    }
}

/// The addresses of one interface, not borrowing the engine (see
/// [`Engine::interface_addresses`]).
type InterfaceAddresses =
    core::iter::Chain<core::iter::Once<IpAddr>, core::option::IntoIter<IpAddr>>;
