#!/usr/bin/env bash
# Coverage-guided fuzzing of mpterm's wire parsers and engine with cargo-fuzz (libFuzzer) on
# the nightly toolchain. The targets are dataplane/fuzz/fuzz_targets/*.rs; their bodies and
# checks live in dataplane/fuzz-targets (crate mpterm-fuzz), whose `cargo test` replays the
# committed corpus dataplane/fuzz/corpus/TARGET/ on stable.
#
#   bash tests/fuzz.sh [TARGET...]        every target (or the ones named), FUZZ_SECONDS each
#
#   FUZZ_SECONDS=N      time per target (default 15: about 2.5 minutes for all nine, plus the
#                       build); a longer run is e.g. FUZZ_SECONDS=600 bash tests/fuzz.sh
#   FUZZ_UPDATE_CORPUS=1  new inputs are written into the committed corpus (then minimise it
#                       to the edges it covers: cargo +nightly fuzz cmin --fuzz-dir
#                       dataplane/fuzz -a -s none TARGET -- -use_counters=0);
#                       by default they go to a temporary directory and the tree stays clean
#   FUZZ_ARTIFACTS=DIR  where crashing inputs are kept (default /tmp/fuzz-crashes)
#
# Installs cargo-fuzz from crates.io when it is missing. Prints, per target, the executions
# and whether it crashed (with the command that replays the crash), and ends with one line
# "N passed, M failed" (one count per target). Exit status 1 if any target crashed, except
# for crashes of the known, unfixed bugs listed in dataplane/fuzz/known-crashes (reported,
# not counted; such a target runs in libFuzzer's fork mode so that it goes on after them).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

FUZZ_DIR=dataplane/fuzz
FUZZ_SECONDS="${FUZZ_SECONDS:-15}"
FUZZ_ARTIFACTS="${FUZZ_ARTIFACTS:-/tmp/fuzz-crashes}"
ALL_TARGETS=(ethernet_frame arp_packet ipv4_packet icmp_packet tcp_segment tcp_options
    mptcp_option checksum engine_frames)
if (($# > 0)); then
    targets=("$@")
else
    targets=("${ALL_TARGETS[@]}")
fi
# Debug assertions and overflow checks on (arithmetic overflow is a finding too); no
# sanitizer: the fuzzed crates forbid or deny unsafe code, and ASan would halve the speed.
BUILD_FLAGS=(--fuzz-dir "$FUZZ_DIR" --debug-assertions --sanitizer none)

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "fuzz: the nightly toolchain is not installed (rustup toolchain install nightly);"
    echo "fuzz: the corpus is still replayed by cargo test on stable"
    echo "0 passed, 0 failed"
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    if ! cargo install cargo-fuzz --locked; then
        echo "fuzz: cargo install cargo-fuzz failed"
        echo "0 passed, ${#targets[@]} failed"
        exit 1
    fi
fi

if ! cargo +nightly fuzz build "${BUILD_FLAGS[@]}"; then
    echo "fuzz: the fuzz targets did not build"
    echo "0 passed, ${#targets[@]} failed"
    exit 1
fi

WORK_DIR="$(mktemp -d /tmp/mpterm-fuzz.XXXXXX)"
trap 'rm -rf "$WORK_DIR"' EXIT
KNOWN_CRASHES="$FUZZ_DIR/known-crashes"
CARGO_RELEASE_DIR="${CARGO_TARGET_DIR:-$PWD/target}/release"
# mpterm-fuzz-seeds writes the seeds (captured Linux frames, scripted engine scenarios), which
# join the corpus as inputs; mpterm-fuzz-explain replays a crashing input for its message.
if ! cargo build --quiet --release -p mpterm-fuzz --bins ||
    ! "$CARGO_RELEASE_DIR/mpterm-fuzz-seeds" "$WORK_DIR/seeds" >/dev/null; then
    echo "fuzz: the seed inputs could not be written"
    echo "0 passed, ${#targets[@]} failed"
    exit 1
fi
EXPLAIN="$CARGO_RELEASE_DIR/mpterm-fuzz-explain"

# The panic message of one crashing input, replayed outside the fuzzer.
panic_message() {
    local target="$1" input="$2"
    timeout 120 "$EXPLAIN" "$target" "$input" 2>&1 | grep -A1 ' panicked at ' | sed -n 2p
}

# The bugs each target is known to hit (dataplane/fuzz/known-crashes), by panic message.
known_messages() {
    local target="$1"
    [[ -f "$KNOWN_CRASHES" ]] || return 0
    awk -F'\t' -v target="$target" '!/^#/ && $1 == target { print $2 }' "$KNOWN_CRASHES"
}

passed=0
failed=0
for target in "${targets[@]}"; do
    corpus="$FUZZ_DIR/corpus/$target"
    artifacts="$WORK_DIR/artifacts/$target"
    mkdir -p "$corpus" "$artifacts" "$FUZZ_ARTIFACTS/$target"
    if [[ "${FUZZ_UPDATE_CORPUS:-0}" == 1 ]]; then
        inputs=("$corpus" "$WORK_DIR/seeds/$target")
    else
        # libFuzzer writes new inputs into the first directory: a scratch one.
        mkdir -p "$WORK_DIR/new/$target"
        inputs=("$WORK_DIR/new/$target" "$corpus" "$WORK_DIR/seeds/$target")
    fi
    mapfile -t known < <(known_messages "$target")
    fuzz_args=(-max_total_time="$FUZZ_SECONDS" -timeout=20 -max_len=4096 -print_final_stats=1
        -artifact_prefix="$artifacts/")
    if ((${#known[@]} > 0)); then
        # A target with a known, unfixed bug runs in fork mode, which goes on after a crash,
        # so that the known bug neither ends the run nor hides a new one.
        fuzz_args+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    fi
    log="$WORK_DIR/$target.log"
    started=$SECONDS
    cargo +nightly fuzz run "${BUILD_FLAGS[@]}" "$target" "${inputs[@]}" -- "${fuzz_args[@]}" \
        >"$log" 2>&1
    rc=$?
    elapsed=$((SECONDS - started))
    executions="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    if [[ -z "$executions" ]]; then
        executions="$(sed -n 's/^#\([0-9]*\): cov:.*/\1/p' "$log" | tail -n 1)"
    fi
    new_crashes=()
    known_crashes=0
    for input in "$artifacts"/*; do
        [[ -e "$input" ]] || continue
        cp "$input" "$FUZZ_ARTIFACTS/$target/"
        kept="$FUZZ_ARTIFACTS/$target/$(basename "$input")"
        message="$(panic_message "$target" "$input")"
        is_known=no
        for pattern in "${known[@]}"; do
            if [[ -n "$message" && "$message" == *"$pattern"* ]]; then
                is_known=yes
            fi
        done
        if [[ "$is_known" == yes ]]; then
            known_crashes=$((known_crashes + 1))
        else
            new_crashes+=("$kept: ${message:-no panic when replayed (timeout or out of memory?)}")
        fi
    done
    if ((rc != 0)) && ((${#new_crashes[@]} == 0)); then
        new_crashes+=("the fuzzer exited with status $rc and kept no input")
    fi
    known_note=""
    if ((known_crashes > 0)); then
        known_note=", $known_crashes crashing inputs of known bugs (dataplane/fuzz/known-crashes)"
    fi
    if ((${#new_crashes[@]} == 0)); then
        if ((known_crashes > 0)); then
            echo "fuzz: $target: ${executions:-?} executions in $elapsed s, no new crash$known_note"
        else
            echo "fuzz: $target: ${executions:-?} executions in $elapsed s, no crash"
        fi
        passed=$((passed + 1))
    else
        echo "fuzz: $target: CRASHED, ${executions:-?} executions in $elapsed s$known_note; the fuzzer's last lines:"
        grep -v '^#' "$log" | tail -n 30 | sed 's/^/    /'
        for crash in "${new_crashes[@]}"; do
            echo "fuzz: $target: crash: $crash"
        done
        echo "fuzz: $target: replay one with"
        echo "    cargo run -p mpterm-fuzz --bin mpterm-fuzz-explain -- $target FILE"
        echo "    cargo +nightly fuzz run ${BUILD_FLAGS[*]} $target FILE"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
((failed == 0))
