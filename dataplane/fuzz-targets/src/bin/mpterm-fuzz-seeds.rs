//! Writes the seed inputs of every fuzz target to `DIR/TARGET/seed-NNN`.
//!
//! Usage: `mpterm-fuzz-seeds DIR`

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: mpterm-fuzz-seeds DIR");
        return ExitCode::from(2);
    };
    for target in mpterm_fuzz::TARGETS {
        let target_dir = dir.join(target.name);
        let seeds = mpterm_fuzz::seeds::seeds(target.name);
        let written = std::fs::create_dir_all(&target_dir).and_then(|()| {
            for (index, seed) in seeds.iter().enumerate() {
                std::fs::write(target_dir.join(format!("seed-{index:03}")), seed)?;
            }
            Ok(())
        });
        if let Err(error) = written {
            eprintln!("mpterm-fuzz-seeds: {}: {error}", target_dir.display());
            return ExitCode::FAILURE;
        }
        println!("{}: {} seeds", target.name, seeds.len());
    }
    ExitCode::SUCCESS
}
