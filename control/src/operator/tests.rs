//! The command parser against a configuration, reply lines, and the request channel.

use std::net::Ipv4Addr;

use super::*;
use crate::Config;

const CONFIG: &str = r#"
[[interface]]
name = "client-side"
port = "net_af_packet0"
address = "198.18.0.2/24"

[[interface]]
name = "backend-side"
port = "net_af_packet1"
address = "198.19.0.1/24"

[[interface]]
name = "client-side-2"
port = "net_af_packet2"
address = "198.18.1.2/24"
address6 = "2001:2:0:1::2/64"

[[proxy]]
listen = "198.18.0.2:5000"
backend = "198.19.0.2:6000"
"#;

fn interfaces() -> Vec<InterfaceConfig> {
    Config::from_toml_str(CONFIG).unwrap().interfaces
}

fn parse(line: &str) -> Result<Command, CommandError> {
    parse_command(line, &interfaces())
}

fn second_path() -> AddressTarget {
    AddressTarget {
        interface: 2,
        address: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)),
    }
}

#[test]
fn commands_name_an_address_by_its_interface() {
    assert_eq!(
        parse("withdraw 198.18.1.2"),
        Ok(Command::Worker(WorkerCommand::Withdraw(second_path())))
    );
    assert_eq!(
        parse("  ANNOUNCE\t198.18.1.2  "),
        Ok(Command::Worker(WorkerCommand::Announce(second_path())))
    );
    assert_eq!(
        parse("backup 198.18.1.2 on"),
        Ok(Command::Worker(WorkerCommand::Backup {
            target: second_path(),
            backup: true
        }))
    );
    assert_eq!(
        parse("backup 198.18.0.2 OFF"),
        Ok(Command::Worker(WorkerCommand::Backup {
            target: AddressTarget {
                interface: 0,
                address: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2))
            },
            backup: false
        }))
    );
    assert_eq!(parse("report"), Ok(Command::Worker(WorkerCommand::Report)));
    assert_eq!(parse("help"), Ok(Command::Help));
    // An interface's IPv6 address names it too.
    assert_eq!(
        parse("withdraw 2001:2:0:1::2"),
        Ok(Command::Worker(WorkerCommand::Withdraw(AddressTarget {
            interface: 2,
            address: "2001:2:0:1::2".parse().unwrap(),
        })))
    );
}

#[test]
fn an_address_of_no_interface_is_refused_with_the_known_ones() {
    let error = parse("withdraw 198.18.9.2").unwrap_err();
    assert_eq!(
        error,
        CommandError::UnknownAddress {
            address: IpAddr::V4(Ipv4Addr::new(198, 18, 9, 2)),
            known: "198.18.0.2, 198.19.0.1, 198.18.1.2, 2001:2:0:1::2".to_owned()
        }
    );
    assert_eq!(
        error.to_string(),
        "198.18.9.2 is not an address of this appliance (its addresses: 198.18.0.2, 198.19.0.1, 198.18.1.2, 2001:2:0:1::2)"
    );
}

#[test]
fn bad_lines_are_refused_with_a_reason() {
    assert_eq!(parse(""), Err(CommandError::Empty));
    assert_eq!(parse("   \t "), Err(CommandError::Empty));
    assert_eq!(
        parse("remove 198.18.1.2"),
        Err(CommandError::UnknownCommand("remove".to_owned()))
    );
    assert_eq!(
        parse("withdraw"),
        Err(CommandError::MissingArgument {
            command: "withdraw",
            expected: "an address of this appliance"
        })
    );
    assert_eq!(
        parse("withdraw 198.18.1"),
        Err(CommandError::InvalidAddress("198.18.1".to_owned()))
    );
    assert_eq!(
        parse("withdraw 2001:2:0:1::2:"),
        Err(CommandError::InvalidAddress("2001:2:0:1::2:".to_owned()))
    );
    assert!(
        matches!(
            parse("withdraw 2001:2::1"),
            Err(CommandError::UnknownAddress { .. })
        ),
        "an IPv6 address of no interface"
    );
    assert_eq!(
        parse("withdraw 198.18.1.2 now"),
        Err(CommandError::UnexpectedArgument {
            command: "withdraw",
            argument: "now".to_owned()
        })
    );
    assert_eq!(
        parse("report all"),
        Err(CommandError::UnexpectedArgument {
            command: "report",
            argument: "all".to_owned()
        })
    );
    assert_eq!(
        parse("backup 198.18.1.2"),
        Err(CommandError::MissingArgument {
            command: "backup",
            expected: "on or off after the address"
        })
    );
    assert_eq!(
        parse("backup 198.18.1.2 yes"),
        Err(CommandError::InvalidSwitch("yes".to_owned()))
    );
    assert_eq!(
        parse("backup 198.18.1.2 on off"),
        Err(CommandError::UnexpectedArgument {
            command: "backup",
            argument: "off".to_owned()
        })
    );
    let long = format!("withdraw {}", " ".repeat(MAX_LINE_BYTES));
    assert_eq!(parse(&long), Err(CommandError::LineTooLong));
}

#[test]
fn replies_are_one_line_starting_with_ok_or_error() {
    let ok = reply_line(&Ok(Outcome::BackupSet { subflows: 2 }));
    assert_eq!(ok, "ok: MP_PRIO queued on 2 subflows");
    let refused = reply_line(&Err(parse("withdraw 10").unwrap_err().into()));
    assert_eq!(refused, "error: invalid IP address \"10\"");
    let multi_line = reply_line(&Err(ApplyError::Refused("one\ntwo".to_owned()).into()));
    assert_eq!(multi_line, "error: one two");
    assert!(reply_line(&Ok(Outcome::Help)).starts_with("ok: commands: withdraw ADDRESS"));
}

#[test]
fn a_report_lists_its_subflows_up_to_a_bound() {
    let subflow = |index: u8| SubflowReport {
        connection: 7,
        subflow: index,
        interface: 2,
        local: "198.18.1.2:5000".parse().unwrap(),
        remote: "198.18.1.1:40000".parse().unwrap(),
        state: "Established".to_owned(),
        joining: false,
        backup: true,
        stale: false,
        local_address_id: 3,
        remote_address_id: 0,
        rtt_us: 120,
        congestion_window: 14_480,
        bytes_sent: 10,
        bytes_received: 20,
    };
    let report = ConnectionsReport {
        connections: 1,
        subflows: vec![subflow(1)],
    };
    assert_eq!(
        reply_line(&Ok(Outcome::Report(report))),
        "ok: 1 connections, 1 subflows; connection 7 subflow 1 198.18.1.2:5000<-198.18.1.1:40000 \
         Established backup ids 3/0 rtt 120 us cwnd 14480 sent 10 received 20"
    );
    let many = ConnectionsReport {
        connections: 40,
        subflows: (0..40).map(|_| subflow(0)).collect(),
    };
    let line = reply_line(&Ok(Outcome::Report(many)));
    assert_eq!(
        line.matches("connection 7 subflow").count(),
        MAX_REPORTED_SUBFLOWS
    );
    assert!(line.ends_with("; 8 more in the log"), "{line}");
}

#[test]
fn a_request_is_answered_by_whoever_serves_the_channel() {
    let (handle, requests) = operator_channel();
    let worker = std::thread::spawn(move || {
        let mut seen = Vec::new();
        while seen.is_empty() {
            serve_requests(&requests, |command| {
                seen.push(*command);
                Ok(Outcome::BackupSet { subflows: 3 })
            });
            std::thread::sleep(Duration::from_millis(1));
        }
        seen
    });
    let result = execute_line("backup 198.18.1.2 on", &interfaces(), &handle);
    assert_eq!(result, Ok(Outcome::BackupSet { subflows: 3 }));
    assert_eq!(
        worker.join().unwrap(),
        vec![WorkerCommand::Backup {
            target: second_path(),
            backup: true
        }]
    );
    // The worker is gone: its receiver dropped with its thread.
    assert_eq!(
        execute_line("report", &interfaces(), &handle),
        Err(OperatorError::Apply(ApplyError::WorkerGone))
    );
    // A bad line never reaches the worker.
    assert_eq!(
        execute_line("withdraw 198.18.9.9", &interfaces(), &handle),
        Err(OperatorError::Command(CommandError::UnknownAddress {
            address: IpAddr::V4(Ipv4Addr::new(198, 18, 9, 9)),
            known: "198.18.0.2, 198.19.0.1, 198.18.1.2, 2001:2:0:1::2".to_owned()
        }))
    );
}

#[test]
fn a_worker_that_does_not_serve_times_out_and_a_full_queue_is_busy() {
    let (handle, requests) = operator_channel();
    assert_eq!(
        handle.execute(WorkerCommand::Report, Duration::from_millis(20)),
        Err(ApplyError::WorkerTimeout)
    );
    // The timed-out request still waits; the worker answers it into the void.
    for _ in 1..REQUEST_QUEUE {
        assert_eq!(
            handle.execute(WorkerCommand::Report, Duration::ZERO),
            Err(ApplyError::WorkerTimeout)
        );
    }
    assert_eq!(
        handle.execute(WorkerCommand::Report, Duration::ZERO),
        Err(ApplyError::WorkerBusy)
    );
    assert_eq!(
        serve_requests(&requests, |_| Ok(Outcome::Announced)),
        REQUEST_QUEUE
    );
}
