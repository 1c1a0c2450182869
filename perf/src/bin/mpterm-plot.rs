//! `mpterm-plot RESULT.json... --out DIR`: draws the SVG figures of mpterm benchmark reports
//! (see `mpterm_perf::plot` for which figures each kind gets).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Draws SVG figures of mpterm-perf/1 result reports.
#[derive(Debug, Parser)]
#[command(name = "mpterm-plot")]
struct Arguments {
    /// Report files (JSON, schema mpterm-perf/1).
    #[arg(required = true)]
    reports: Vec<PathBuf>,
    /// Directory for the SVG files (created if missing); each is named after its report.
    #[arg(long, default_value = ".")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    let mut failed = false;
    // Every report is tried, so that one bad file does not hide the figures of the others.
    for report in &arguments.reports {
        match mpterm_perf::plot::plot_file(report, &arguments.out) {
            Ok(written) => {
                for path in written {
                    println!("{}", path.display());
                }
            }
            Err(error) => {
                eprintln!("mpterm-plot: {}: {error}", report.display());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
