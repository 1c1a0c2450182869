//! Operator commands applied to the engine (the control socket's `withdraw`, `announce`,
//! `backup` and `report`; [`mpterm_control::operator`] parses them). The worker applies them at
//! its periodic housekeeping, beside the counter publication, never per packet: the engine is
//! the worker's alone, so a command waits for the worker to come to it.

use mpterm_control::operator::{
    ApplyError, ConnectionsReport, Outcome, Reply, SubflowReport, WorkerCommand,
};
use mpterm_engine::{AddressError, Engine, Instant, Payload, TokenRegistry};
use rand_core::RngCore;

/// Carries out `command` on `engine` at `now`.
pub fn apply_command<P: Payload, R: RngCore, T: TokenRegistry>(
    engine: &mut Engine<P, R, T>,
    now: Instant,
    command: &WorkerCommand,
) -> Reply {
    match *command {
        WorkerCommand::Withdraw(target) => {
            let reset_before = engine.counters().mptcp_remove_addr_subflows_closed;
            engine
                .withdraw_address(now, target.interface)
                .map_err(refusal)?;
            Ok(Outcome::Withdrawn {
                subflows_reset: engine.counters().mptcp_remove_addr_subflows_closed - reset_before,
            })
        }
        WorkerCommand::Announce(target) => {
            engine
                .announce_address(now, target.interface, None)
                .map_err(refusal)?;
            Ok(Outcome::Announced)
        }
        WorkerCommand::Backup { target, backup } => {
            let subflows = engine
                .set_address_backup(now, target.interface, backup)
                .map_err(refusal)?;
            Ok(Outcome::BackupSet { subflows })
        }
        WorkerCommand::Report => Ok(Outcome::Report(connections_report(engine))),
    }
}

/// Every connection's subflows, as an operator sees them.
pub fn connections_report<P: Payload, R: RngCore, T: TokenRegistry>(
    engine: &Engine<P, R, T>,
) -> ConnectionsReport {
    let mut report = ConnectionsReport {
        connections: engine.connection_count(),
        subflows: Vec::new(),
    };
    engine.visit_connections(|connection, subflows| {
        for subflow in subflows {
            report.subflows.push(SubflowReport {
                connection,
                subflow: subflow.index,
                interface: subflow.interface,
                local: subflow.local,
                remote: subflow.remote,
                state: format!("{:?}", subflow.state),
                joining: subflow.joining,
                backup: subflow.backup,
                stale: subflow.stale,
                local_address_id: subflow.local_address_id,
                remote_address_id: subflow.remote_address_id,
                rtt_us: subflow
                    .smoothed_rtt
                    .map_or(0, |rtt| u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX)),
                congestion_window: subflow.congestion_window,
                bytes_sent: subflow.bytes_sent,
                bytes_received: subflow.bytes_received,
            });
        }
    });
    report
}

/// The engine's refusal as the operator's error.
fn refusal(error: AddressError) -> ApplyError {
    match error {
        AddressError::NoSuchInterface(interface) => ApplyError::NoSuchInterface(interface),
        AddressError::TooManyAddresses => ApplyError::TooManyAddresses {
            limit: mpterm_engine::mptcp::address::MAX_ADDRESSES,
        },
        other => ApplyError::Refused(other.to_string()),
    }
}
