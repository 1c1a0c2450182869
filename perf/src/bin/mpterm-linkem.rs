//! `mpterm-linkem`: the lab's link emulator between two DPDK ports. See `perf/README.md`
//! ("Link emulator") and [`mpterm_perf::linkem`].
//!
//! Exit status: 0 after SIGINT, SIGTERM or `--duration`; 1 when DPDK or a port could not
//! start; 2 for a command line that cannot be used.

use std::process::ExitCode;

use clap::Parser;
use mpterm_perf::linkem::cli::Cli;
use mpterm_perf::linkem::dpdk::run;

const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let config = match Cli::parse().validate() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("mpterm-linkem: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match run(&config) {
        Ok(summary) => {
            for direction in &summary.directions {
                println!("{}", direction.line());
            }
            for (name, stats) in config.ports.iter().zip(&summary.ports) {
                if let Some(stats) = stats {
                    println!(
                        "{name}: rx {} frames, tx {} frames, imissed {}, oerrors {}, rx_nombuf {}",
                        stats.ipackets,
                        stats.opackets,
                        stats.imissed,
                        stats.oerrors,
                        stats.rx_nombuf
                    );
                }
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("mpterm-linkem: {error}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}
