//! Operator commands for a running appliance: the line protocol of the control socket
//! ([`crate::control_socket`]), what the worker is asked to do, and what it answers.
//!
//! One command a line, one reply line each:
//!
//! | command | what it does |
//! | --- | --- |
//! | `withdraw ADDRESS` | REMOVE_ADDR (RFC 8684 section 3.4.2) for that address of ours on every connection; its subflows are reset and their data reinjected on the others |
//! | `announce ADDRESS` | ADD_ADDR (section 3.4.1) for that address on every MPTCP connection, also those opened later |
//! | `backup ADDRESS on\|off` | MP_PRIO (section 3.3.8) on every subflow on that address: use it only as a backup (`on`), or again as a regular path (`off`) |
//! | `report` | logs every connection's subflows, as SIGUSR1 does, and lists them on the reply line |
//! | `help` | the commands |
//!
//! A reply starts with `ok: ` or `error: `. ADDRESS must be the address of one of the
//! appliance's interfaces. The control thread parses a line ([`parse_command`]) and hands a
//! [`WorkerCommand`] to the worker through a channel ([`OperatorRequest`]); the worker applies
//! it at its next periodic housekeeping, never on the per-packet path, and answers on the
//! request's own reply channel.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender};
use thiserror::Error;

use crate::config::InterfaceConfig;

/// The longest command line accepted, in bytes.
pub const MAX_LINE_BYTES: usize = 256;
/// Requests that may wait for the worker at once; the control thread sends one at a time.
pub const REQUEST_QUEUE: usize = 8;
/// How long the control thread waits for the worker's answer; the worker looks for requests
/// every 100 ms (its counter publication).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// Subflows listed on a `report` reply line at most; the log has them all.
pub const MAX_REPORTED_SUBFLOWS: usize = 32;

/// The commands, for `help` and for the error on an unknown one.
pub const COMMANDS: &str =
    "withdraw ADDRESS, announce ADDRESS, backup ADDRESS on|off, report, help";

/// One of the appliance's addresses (IPv4 or IPv6), as a command names it. The command acts on
/// its interface: `withdraw` and `announce` take both addresses of an interface that has an
/// IPv6 one, `backup` every subflow on either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressTarget {
    /// The index of its interface in the configuration (and in the engine).
    pub interface: usize,
    /// The address itself, for replies.
    pub address: IpAddr,
}

/// A command line, parsed and checked against the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `help`, answered by the control thread itself.
    Help,
    /// Everything else, for the worker.
    Worker(WorkerCommand),
}

/// What the worker is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerCommand {
    /// Withdraw an address with REMOVE_ADDR.
    Withdraw(AddressTarget),
    /// Announce an address with ADD_ADDR.
    Announce(AddressTarget),
    /// Mark the subflows on an address as backup, or no longer.
    Backup {
        /// The address whose subflows change priority.
        target: AddressTarget,
        /// `on`: backup only; `off`: a regular path again.
        backup: bool,
    },
    /// The connections and their subflows.
    Report,
}

/// Why a command line was refused before it reached the worker.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CommandError {
    /// The line holds no word.
    #[error("empty command; commands: {COMMANDS}")]
    Empty,
    /// The first word is not a command.
    #[error("unknown command {0:?}; commands: {COMMANDS}")]
    UnknownCommand(String),
    /// A command lacks an argument.
    #[error("{command} needs {expected}")]
    MissingArgument {
        /// The command.
        command: &'static str,
        /// What is missing.
        expected: &'static str,
    },
    /// A command got more words than it takes.
    #[error("{command} takes no argument {argument:?}")]
    UnexpectedArgument {
        /// The command.
        command: &'static str,
        /// The first word too many.
        argument: String,
    },
    /// An address argument is not an IPv4 or IPv6 address.
    #[error("invalid IP address {0:?}")]
    InvalidAddress(String),
    /// An address that no interface of the appliance has.
    #[error("{address} is not an address of this appliance (its addresses: {known})")]
    UnknownAddress {
        /// The address named.
        address: IpAddr,
        /// The appliance's addresses, comma separated.
        known: String,
    },
    /// `backup` takes `on` or `off`.
    #[error("backup takes on or off, not {0:?}")]
    InvalidSwitch(String),
    /// The line is longer than [`MAX_LINE_BYTES`].
    #[error("command longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong,
    /// The line is not UTF-8.
    #[error("command is not UTF-8 text")]
    NotText,
}

/// Parses one command line (without its line end) against the appliance's interfaces.
pub fn parse_command(line: &str, interfaces: &[InterfaceConfig]) -> Result<Command, CommandError> {
    if line.len() > MAX_LINE_BYTES {
        return Err(CommandError::LineTooLong);
    }
    let mut words = line.split_whitespace();
    let Some(first) = words.next() else {
        return Err(CommandError::Empty);
    };
    let command = match first.to_ascii_lowercase().as_str() {
        "help" => Command::Help,
        "report" => Command::Worker(WorkerCommand::Report),
        "withdraw" => Command::Worker(WorkerCommand::Withdraw(target(
            "withdraw",
            words.next(),
            interfaces,
        )?)),
        "announce" => Command::Worker(WorkerCommand::Announce(target(
            "announce",
            words.next(),
            interfaces,
        )?)),
        "backup" => {
            let target = target("backup", words.next(), interfaces)?;
            let backup = match words.next().map(str::to_ascii_lowercase).as_deref() {
                Some("on") => true,
                Some("off") => false,
                Some(_) => {
                    let word = line.split_whitespace().nth(2).unwrap_or_default();
                    return Err(CommandError::InvalidSwitch(word.to_owned()));
                }
                None => {
                    return Err(CommandError::MissingArgument {
                        command: "backup",
                        expected: "on or off after the address",
                    })
                }
            };
            Command::Worker(WorkerCommand::Backup { target, backup })
        }
        _ => return Err(CommandError::UnknownCommand(first.to_owned())),
    };
    if let Some(extra) = words.next() {
        return Err(CommandError::UnexpectedArgument {
            command: command_name(&command),
            argument: extra.to_owned(),
        });
    }
    Ok(command)
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Help => "help",
        Command::Worker(WorkerCommand::Report) => "report",
        Command::Worker(WorkerCommand::Withdraw(_)) => "withdraw",
        Command::Worker(WorkerCommand::Announce(_)) => "announce",
        Command::Worker(WorkerCommand::Backup { .. }) => "backup",
    }
}

/// The interface whose address `word` is.
fn target(
    command: &'static str,
    word: Option<&str>,
    interfaces: &[InterfaceConfig],
) -> Result<AddressTarget, CommandError> {
    let word = word.ok_or(CommandError::MissingArgument {
        command,
        expected: "an address of this appliance",
    })?;
    let address: IpAddr = word
        .parse()
        .map_err(|_| CommandError::InvalidAddress(word.to_owned()))?;
    let owns = |interface: &InterfaceConfig| match address {
        IpAddr::V4(v4) => interface.address == v4,
        IpAddr::V6(v6) => interface.ipv6.is_some_and(|ipv6| ipv6.address == v6),
    };
    interfaces
        .iter()
        .position(owns)
        .map(|interface| AddressTarget { interface, address })
        .ok_or_else(|| CommandError::UnknownAddress {
            address,
            known: interfaces
                .iter()
                .flat_map(|interface| {
                    let ipv6 = interface.ipv6.map(|ipv6| ipv6.address.to_string());
                    core::iter::once(interface.address.to_string()).chain(ipv6)
                })
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// What the worker did (or, for `help`, the control thread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The list of commands.
    Help,
    /// The address is withdrawn; `subflows_reset` subflows on it were reset at once.
    Withdrawn { subflows_reset: u64 },
    /// The address is announced (to connections that are fully established, and later ones).
    Announced,
    /// `subflows` subflows got MP_PRIO.
    BackupSet { subflows: usize },
    /// The connections and their subflows.
    Report(ConnectionsReport),
}

/// Why the worker could not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApplyError {
    /// The engine has no such interface (the configuration and the engine disagree).
    #[error("the worker has no interface {0}")]
    NoSuchInterface(usize),
    /// The engine announces no more addresses.
    #[error("no more addresses can be announced ({limit} at most)")]
    TooManyAddresses { limit: usize },
    /// Another refusal of the engine, in its words.
    #[error("{0}")]
    Refused(String),
    /// The worker did not answer within [`REPLY_TIMEOUT`].
    #[error("the worker did not answer within {} ms", REPLY_TIMEOUT.as_millis())]
    WorkerTimeout,
    /// The worker is gone (stopped or failed).
    #[error("the worker is not running")]
    WorkerGone,
    /// Too many requests wait for the worker.
    #[error("the worker is busy with other requests")]
    WorkerBusy,
}

/// The worker's answer to one request.
pub type Reply = Result<Outcome, ApplyError>;

/// Why a command line was not carried out: refused as written, or by the worker.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OperatorError {
    /// The line is not a valid command.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The worker could not do it.
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// Carries out one command line: parsed against `interfaces`, handed to the worker through
/// `handle` (`help` excepted), waited for at most [`REPLY_TIMEOUT`].
pub fn execute_line(
    line: &str,
    interfaces: &[InterfaceConfig],
    handle: &OperatorHandle,
) -> Result<Outcome, OperatorError> {
    match parse_command(line, interfaces)? {
        Command::Help => Ok(Outcome::Help),
        Command::Worker(command) => Ok(handle.execute(command, REPLY_TIMEOUT)?),
    }
}

/// One subflow of a connection, as `report` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubflowReport {
    /// The engine's connection number.
    pub connection: u64,
    /// The subflow's index in its connection.
    pub subflow: u8,
    /// The interface it came in on.
    pub interface: usize,
    /// Our address and port.
    pub local: std::net::SocketAddr,
    /// The client's address and port.
    pub remote: std::net::SocketAddr,
    /// Its TCP state, as the engine names it.
    pub state: String,
    /// The join's HMAC has not verified yet.
    pub joining: bool,
    /// Used only as a backup (either side asked for it).
    pub backup: bool,
    /// Stalled: its data went to the other subflows.
    pub stale: bool,
    /// Our address ID on it (RFC 8684 section 3.4).
    pub local_address_id: u8,
    /// The client's address ID on it.
    pub remote_address_id: u8,
    /// Smoothed RTT in microseconds (0 before a sample).
    pub rtt_us: u64,
    /// Congestion window in bytes.
    pub congestion_window: u32,
    /// Bytes sent on it.
    pub bytes_sent: u64,
    /// Bytes received on it.
    pub bytes_received: u64,
}

/// Every connection's subflows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionsReport {
    /// Connections open.
    pub connections: usize,
    /// Their subflows.
    pub subflows: Vec<SubflowReport>,
}

impl fmt::Display for SubflowReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "connection {} subflow {} {}<-{} {}{}{}{} ids {}/{} rtt {} us cwnd {} sent {} received {}",
            self.connection,
            self.subflow,
            self.local,
            self.remote,
            self.state,
            if self.joining { " joining" } else { "" },
            if self.backup { " backup" } else { "" },
            if self.stale { " stale" } else { "" },
            self.local_address_id,
            self.remote_address_id,
            self.rtt_us,
            self.congestion_window,
            self.bytes_sent,
            self.bytes_received
        )
    }
}

/// The reply line (without its line end) for a command's result.
pub fn reply_line(result: &Result<Outcome, OperatorError>) -> String {
    match result {
        Ok(outcome) => format!("ok: {}", one_line(&describe(outcome))),
        Err(error) => format!("error: {}", one_line(&error.to_string())),
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Help => format!("commands: {COMMANDS}"),
        Outcome::Withdrawn { subflows_reset } => {
            format!("withdrawn, REMOVE_ADDR queued, {subflows_reset} subflows on it reset")
        }
        Outcome::Announced => "announced with ADD_ADDR".to_owned(),
        Outcome::BackupSet { subflows } => format!("MP_PRIO queued on {subflows} subflows"),
        Outcome::Report(report) => {
            let mut line = format!(
                "{} connections, {} subflows",
                report.connections,
                report.subflows.len()
            );
            for subflow in report.subflows.iter().take(MAX_REPORTED_SUBFLOWS) {
                line.push_str("; ");
                line.push_str(&subflow.to_string());
            }
            if report.subflows.len() > MAX_REPORTED_SUBFLOWS {
                let more = report.subflows.len() - MAX_REPORTED_SUBFLOWS;
                line.push_str(&format!("; {more} more in the log"));
            }
            line
        }
    }
}

/// A reply is one line: line ends inside a message become spaces.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// A command on its way to the worker, with the channel its answer goes back on.
#[derive(Debug)]
pub struct OperatorRequest {
    /// What to do.
    pub command: WorkerCommand,
    /// Where the answer goes; the worker sends exactly one.
    pub reply: Sender<Reply>,
}

/// The worker's end of the request channel.
pub type OperatorRequests = Receiver<OperatorRequest>;

/// The control thread's end of the request channel.
#[derive(Debug, Clone)]
pub struct OperatorHandle {
    requests: Sender<OperatorRequest>,
}

/// A request channel: the control thread's handle and the worker's receiver.
pub fn operator_channel() -> (OperatorHandle, OperatorRequests) {
    let (requests, receiver) = crossbeam::channel::bounded(REQUEST_QUEUE);
    (OperatorHandle { requests }, receiver)
}

impl OperatorHandle {
    /// Hands `command` to the worker and waits (at most `timeout`) for its answer.
    pub fn execute(&self, command: WorkerCommand, timeout: Duration) -> Reply {
        let (reply, answer) = crossbeam::channel::bounded(1);
        self.requests
            .try_send(OperatorRequest { command, reply })
            .map_err(|error| match error {
                crossbeam::channel::TrySendError::Full(_) => ApplyError::WorkerBusy,
                crossbeam::channel::TrySendError::Disconnected(_) => ApplyError::WorkerGone,
            })?;
        match answer.recv_timeout(timeout) {
            Ok(reply) => reply,
            Err(RecvTimeoutError::Timeout) => Err(ApplyError::WorkerTimeout),
            Err(RecvTimeoutError::Disconnected) => Err(ApplyError::WorkerGone),
        }
    }
}

/// Answers every request waiting in `requests` with `apply`, without blocking; how many.
/// The worker calls it at its housekeeping. A requester that gave up is not waited for.
pub fn serve_requests(
    requests: &OperatorRequests,
    mut apply: impl FnMut(&WorkerCommand) -> Reply,
) -> usize {
    let mut served = 0;
    while let Ok(request) = requests.try_recv() {
        // A requester that timed out dropped its end; its answer has nowhere to go.
        let _ = request.reply.send(apply(&request.command));
        served += 1;
    }
    served
}

#[cfg(test)]
mod tests;
