#!/usr/bin/env bash
# Runs every test: installs what is missing (tests/setup.sh), builds mpterm, runs cargo's tests
# for the whole workspace, fuzzes every target briefly (tests/fuzz.sh), the lab's self-test, the
# namespace lab scenarios against the appliance, then the load generator's lab test.
#
#   APPLIANCE=mpterm (default)   the lab runs target/release/mpterm, built here first
#   APPLIANCE=kernel-standin     the lab runs the Linux-kernel stand-in (no mpterm build needed)
#
# Every step runs even if an earlier one failed (except that the lab does not run a stale mpterm
# binary when the build failed); the exit status is non-zero if any step failed. The last line
# adds up every test counted by cargo and by the lab: "total: N passed, N failed" (a step that
# failed without counting anything counts as one failure).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
export APPLIANCE="${APPLIANCE:-mpterm}"
if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

RUN_LOG_DIR="$(mktemp -d /tmp/mpterm-run-all.XXXXXX)"
trap 'rm -rf "$RUN_LOG_DIR"' EXIT

failed_steps=()
step_counted_failures=0
total_passed=0
total_failed=0

# Adds up the counts a step printed: cargo's "test result: ok. N passed; M failed" lines and the
# lab's "N passed, M failed" line.
count_results() {
    local log="$1" passed failed
    read -r passed failed < <(awk '
        /^test result: / { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
        /^[0-9]+ passed, [0-9]+ failed$/ { p += $1; f += $3 }
        END { print p + 0, f + 0 }' "$log")
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
    step_counted_failures=$failed
}

step() {
    local name="$1"
    shift
    local log="$RUN_LOG_DIR/$name.log" started=$SECONDS rc
    echo "=== run-all: $name: $*"
    "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    count_results "$log"
    if ((rc == 0)); then
        echo "=== run-all: $name: ok ($((SECONDS - started)) s)"
        return 0
    fi
    echo "=== run-all: $name: FAILED, exit $rc ($((SECONDS - started)) s)"
    failed_steps+=("$name")
    ((step_counted_failures > 0)) || total_failed=$((total_failed + 1))
    return 1
}

if ! step setup bash tests/setup.sh; then
    echo "run-all: setup failed, nothing else can run"
    echo "total: $total_passed passed, $total_failed failed"
    exit 1
fi

build_ok=yes
if [[ "$APPLIANCE" == mpterm ]]; then
    # mpterm, and the link emulator that lab-middlebox and lab-faults put on the client's paths.
    step build cargo build --release -p mpterm -p mpterm-perf --bin mpterm --bin mpterm-linkem || build_ok=no
fi

step cargo-test cargo test --workspace --release

# Coverage-guided fuzzing, a bounded time per target (FUZZ_SECONDS); cargo-test above already
# replayed the committed corpus.
step fuzz bash tests/fuzz.sh

# The lab's own checks, proven able to fail (faulty kernel stand-in; no mpterm involved).
step lab-selftest bash tests/lab/selftest.sh

if [[ "$build_ok" == yes ]]; then
    step lab-scenarios bash tests/lab/scenarios.sh
    # Several client paths: every extra endpoint of the Linux client joins (2 and 4 paths),
    # both directions byte-exact (tests/lab/multipath.sh; about 20 s).
    step lab-multipath bash tests/lab/multipath.sh
    # The client learns mpterm's second address only from ADD_ADDR and joins it
    # (tests/lab/addaddr.sh; about 10 s).
    step lab-addaddr bash tests/lab/addaddr.sh
    # IPv4 and IPv6 subflows in one connection: an IPv6 initial subflow (neighbour discovery
    # answered by mpterm) and an IPv4 join to an announced address (tests/lab/ipv6.sh; ~10 s).
    step lab-ipv6 bash tests/lab/ipv6.sh
    # Operator commands on the running appliance (mpterm ctl): withdraw mid-transfer counted by
    # the client as RmAddr, backup as MPPrioRx (tests/lab/operator.sh; about 15 s).
    step lab-operator bash tests/lab/operator.sh
    # MP_FAIL through a payload-rewriting middlebox (mpterm-linkem --rewrite): a subflow
    # closed and the transfer completed on the other path, both ways; on one path the
    # connection ends without a corrupted byte reaching the backend (tests/lab/middlebox.sh;
    # about 20 s).
    step lab-middlebox bash tests/lab/middlebox.sh
    # Failover and backup (issue 7): a path cut with `ip link set ... down` halfway through a
    # 64 MiB download or upload, and a backup path idle (< 5 %) until the primary is cut;
    # byte-exact, both paths through mpterm-linkem (tests/lab/multipath-faults.sh, groups
    # failover and backup; 45-60 s).
    step lab-faults env FAULTS_GROUPS="failover backup" bash tests/lab/multipath-faults.sh
    # Why every path's emulator has a network namespace of its own: two of them in one
    # namespace, with pids chosen so, collide on DPDK's PACKET_FANOUT group number and the
    # second fails; in their own namespaces both start (tests/lab/linkem.sh; about 5 s).
    step lab-linkem-fanout bash tests/lab/linkem.sh fanout-check
    # TCP on lossy paths (issue 8): 1 % and 5 % random loss, 2 % reordering by 10 ms, a 100 ms
    # RTT with burst loss, through mpterm-linkem on the client's path, both directions at once
    # on one connection, byte-exact (tests/lab/lossy.sh; about 3 minutes on 05a0a4a).
    step lab-lossy bash tests/lab/lossy.sh
else
    echo "=== run-all: lab-scenarios: not run, mpterm did not build"
    failed_steps+=(lab-scenarios lab-multipath lab-addaddr lab-ipv6 lab-operator lab-middlebox lab-faults lab-linkem-fanout lab-lossy)
    total_failed=$((total_failed + 9))
fi

# The load generator on DPDK against Linux's own MPTCP server, and through mpterm when it was
# built (perf/lab/gen-test.sh; about 20 s).
if [[ "$APPLIANCE" == mpterm && "$build_ok" == yes ]]; then
    step gen-test bash perf/lab/gen-test.sh linux mpterm
else
    step gen-test bash perf/lab/gen-test.sh linux
fi

if ((${#failed_steps[@]} > 0)); then
    echo "run-all: FAILED steps: ${failed_steps[*]}"
else
    echo "run-all: all steps passed"
fi
echo "total: $total_passed passed, $total_failed failed"
((${#failed_steps[@]} == 0))
