//! Address management of one connection (RFC 8684 section 3.4) and the priorities we ask for
//! (section 3.3.8): what the connection does with ADD_ADDR, REMOVE_ADDR and MP_PRIO, both
//! ways. The options themselves wait on a subflow's [`crate::mptcp::address::SignalQueue`]
//! until [`ProxiedConnection::poll_segment`] sends them on a pure ACK.

use super::*;

impl<P: Payload> ProxiedConnection<P> {
    /// The connection is fully established and has not been offered our addresses yet: the
    /// engine calls [`ProxiedConnection::offer_addresses`] now. Section 3.4.1 lets either host
    /// announce once the connection is up; we wait for the client's key, which the HMAC needs.
    pub fn ready_for_announcements(&self) -> bool {
        !self.addresses_offered
            && self.mptcp.as_ref().is_some_and(|session| {
                session.is_fully_established()
                    && !session.has_fallen_back()
                    && !session.is_fast_closing()
            })
    }

    /// Announces each of `addresses` (our address ID, the address, a port if it differs
    /// from the connection's) with ADD_ADDR, once.
    pub fn offer_addresses(
        &mut self,
        now: Instant,
        addresses: impl IntoIterator<Item = (u8, IpAddr, Option<u16>)>,
    ) {
        self.addresses_offered = true;
        for (address_id, address, port) in addresses {
            self.addresses.announce(address_id, address, port);
        }
        self.send_due_announcements(now);
    }

    /// One more address to announce, on a connection already offered the others; one not yet
    /// offered gets it with them.
    pub fn announce_address(
        &mut self,
        now: Instant,
        address_id: u8,
        address: IpAddr,
        port: Option<u16>,
    ) {
        if self.addresses_offered && self.addresses.announce(address_id, address, port) {
            self.send_due_announcements(now);
        }
    }

    /// Our address `address_id` goes away (section 3.4.2): its announcement ends, the
    /// subflows on it are reset (their data goes to the others), and REMOVE_ADDR tells the
    /// client on another subflow. False when the connection knew nothing of the address.
    pub fn withdraw_address(&mut self, address_id: u8) -> bool {
        let announced = self.addresses.withdraw(address_id);
        let closed = self.reset_subflows(|subflow| {
            subflow.mptcp.is_usable() && subflow.mptcp.local_address_id() == address_id
        });
        if !announced && closed == 0 {
            return false;
        }
        if let Some(subflow) = self.signalling_subflow(None) {
            subflow.mptcp.signals.push(Signal::RemoveAddr(address_id));
        }
        true
    }

    /// Section 3.3.8: asks the client with MP_PRIO, on subflow `index` itself, to use it only
    /// as a backup (or no longer), and schedules our data by the same rule. False when there
    /// is no such subflow able to carry data.
    pub fn set_local_backup(&mut self, index: u8, backup: bool) -> bool {
        if self
            .mptcp
            .as_ref()
            .is_none_or(MptcpSession::has_fallen_back)
        {
            return false;
        }
        let Some(subflow) = self
            .subflows
            .get_mut(usize::from(index))
            .and_then(Option::as_mut)
        else {
            return false;
        };
        if !subflow.mptcp.is_usable() || !subflow.is_open() {
            return false;
        }
        subflow.mptcp.local_backup = backup;
        subflow.mptcp.signals.push(Signal::Priority { backup });
        true
    }

    /// Hands the announcements that are due to a subflow, gives up those past their bound.
    pub(super) fn send_due_announcements(&mut self, now: Instant) {
        let Some((local_key, remote_key)) = self.mptcp.as_ref().and_then(MptcpSession::keys) else {
            return;
        };
        let mut given_up = 0;
        let subflows = &mut self.subflows;
        self.addresses.take_due(
            now,
            |announcement| {
                let address = announcement.address;
                let add = AddAddr {
                    echo: false,
                    address_id: announcement.address_id,
                    address,
                    port: announcement.port,
                    truncated_hmac: Some(add_addr_hmac(
                        local_key,
                        remote_key,
                        announcement.address_id,
                        address,
                        announcement.port,
                    )),
                };
                signalling_subflow(subflows, None)
                    .is_some_and(|subflow| subflow.mptcp.signals.push(Signal::AddAddr(add)))
            },
            &mut given_up,
        );
        self.events.add_addr_unanswered += given_up;
    }

    /// When the next ADD_ADDR is due again.
    pub(super) fn announcement_timeout(&self) -> Option<Instant> {
        self.addresses.next_retry()
    }

    /// A received ADD_ADDR (its HMAC verified by the session) or REMOVE_ADDR, on subflow
    /// `index`.
    pub(super) fn take_address_outcome(&mut self, index: u8, outcome: &OptionOutcome) {
        if outcome.add_addr_bad_hmac {
            self.events.add_addr_bad_hmac += 1;
        }
        if let Some(add) = outcome.add_addr {
            if add.echo {
                self.events.add_addr_echoed += u32::from(self.addresses.echoed(&add));
            } else {
                // Section 3.4.1: the receiver echoes an announcement, the same address
                // with E set and no HMAC. We record it and open nothing: as the server, we
                // leave joins to the client.
                self.events.add_addr_received += 1;
                self.addresses.record_remote(&add);
                let echo = Signal::AddAddr(AddAddr {
                    echo: true,
                    truncated_hmac: None,
                    ..add
                });
                if let Some(subflow) = self.signalling_subflow(Some(index)) {
                    subflow.mptcp.signals.push(echo);
                }
            }
        }
        let removed = outcome.removed_addresses;
        if removed.is_empty() {
            return;
        }
        self.events.remove_addr_unknown += u32::from(removed.dropped);
        for &address_id in removed.as_slice() {
            // Section 3.4.2: the subflows from the removed address are closed; ours are
            // reset, their data reinjected on the others.
            let closed = self.reset_subflows(|subflow| {
                subflow.mptcp.remote_address_id == address_id && subflow.is_open()
            });
            let forgotten = self.addresses.forget_remote(address_id);
            if closed == 0 && !forgotten {
                self.events.remove_addr_unknown += 1;
            } else {
                self.events.remove_addr_received += 1;
            }
        }
    }

    /// Resets every open subflow `matches` picks; how many.
    fn reset_subflows(&mut self, matches: impl Fn(&Subflow<P>) -> bool) -> u32 {
        let mut closed = 0;
        for subflow in self.subflows.iter_mut().flatten() {
            if subflow.is_open() && matches(subflow) {
                subflow.mptcp.reset_reason = Some(ResetReason::Unspecified);
                subflow.mptcp.signals.clear();
                subflow.tcb.abort();
                closed += 1;
            }
        }
        self.events.remove_addr_subflows_closed += closed;
        closed
    }

    fn signalling_subflow(&mut self, preferred: Option<u8>) -> Option<&mut Subflow<P>> {
        signalling_subflow(&mut self.subflows, preferred)
    }
}

/// The subflow a signal leaves on: `preferred` if it can send, else the first one that can
/// (usable, synchronized, open, not stale).
fn signalling_subflow<P: Payload>(
    subflows: &mut [Option<Subflow<P>>],
    preferred: Option<u8>,
) -> Option<&mut Subflow<P>> {
    let can_signal = |subflow: &Subflow<P>| {
        subflow.mptcp.is_usable()
            && subflow.tcb.is_synchronized()
            && subflow.is_open()
            && !subflow.stale
    };
    let index = preferred
        .map(usize::from)
        .filter(|&index| {
            subflows
                .get(index)
                .and_then(Option::as_ref)
                .is_some_and(can_signal)
        })
        .or_else(|| {
            subflows
                .iter()
                .position(|subflow| subflow.as_ref().is_some_and(can_signal))
        })?;
    subflows.get_mut(index)?.as_mut()
}
