//! Runs one input through a fuzz target outside the fuzzer; for the engine target it prints
//! every step and every frame the engine sends.
//!
//! Usage: `mpterm-fuzz-explain TARGET FILE`

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [target, file] = args.as_slice() else {
        eprintln!("usage: mpterm-fuzz-explain TARGET FILE");
        return ExitCode::from(2);
    };
    let Some(target) = mpterm_fuzz::target(target) else {
        eprintln!("mpterm-fuzz-explain: no target {target}");
        return ExitCode::from(2);
    };
    let input = match std::fs::read(file) {
        Ok(input) => input,
        Err(error) => {
            eprintln!("mpterm-fuzz-explain: {file}: {error}");
            return ExitCode::FAILURE;
        }
    };
    if target.name == "engine_frames" {
        mpterm_fuzz::engine::explain_engine_frames(&input);
    } else {
        (target.run)(&input);
    }
    eprintln!("{}: no failure", target.name);
    ExitCode::SUCCESS
}
