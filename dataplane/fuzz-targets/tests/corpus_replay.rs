//! Replays every committed corpus file (`dataplane/fuzz/corpus/TARGET/*`) through its target,
//! on stable Rust, so that `cargo test` keeps every input the fuzzer ever kept passing.
//! A failing file is named in the panic message; `tests/fuzz.sh` documents how to rerun it
//! under the fuzzer.

use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn replay(target: &str) {
    let run = mpterm_fuzz::target(target)
        .unwrap_or_else(|| panic!("no target {target}"))
        .run;
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: the corpus is empty", dir.display());
    for file in files {
        let input = std::fs::read(&file).expect("corpus file");
        let outcome = std::panic::catch_unwind(|| run(&input));
        assert!(outcome.is_ok(), "{target}: {} fails", file.display());
    }
}

#[test]
fn every_target_has_a_committed_corpus() {
    for target in mpterm_fuzz::TARGETS {
        assert!(
            corpus_dir(target.name).is_dir(),
            "{}: no corpus",
            target.name
        );
    }
}

macro_rules! replay_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*
        #[test]
        fn every_target_is_replayed() {
            let replayed = [$(stringify!($name)),*];
            for target in mpterm_fuzz::TARGETS {
                assert!(replayed.contains(&target.name), "{} is not replayed", target.name);
            }
        }
    };
}

replay_tests!(
    ethernet_frame,
    arp_packet,
    ipv4_packet,
    icmp_packet,
    tcp_segment,
    tcp_options,
    mptcp_option,
    checksum,
    engine_frames,
);
