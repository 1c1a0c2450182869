#!/usr/bin/env bash
# Runs every test: installs what is missing (tests/setup.sh), builds mpterm, runs cargo's tests
# for the whole workspace, then the namespace lab scenarios against the appliance.
#
#   APPLIANCE=mpterm (default)   the lab runs target/release/mpterm, built here first
#   APPLIANCE=kernel-standin     the lab runs the Linux-kernel stand-in (no mpterm build needed)
#
# Every step runs even if an earlier one failed (except that the lab does not run a stale mpterm
# binary when the build failed); the exit status is non-zero if any step failed. The last line is
# the lab's "N passed, N failed".
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
export APPLIANCE="${APPLIANCE:-mpterm}"
if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

failed_steps=()
step() {
    local name="$1"
    shift
    echo "=== run-all: $name: $*"
    local started=$SECONDS
    if "$@"; then
        echo "=== run-all: $name: ok ($((SECONDS - started)) s)"
        return 0
    fi
    echo "=== run-all: $name: FAILED ($((SECONDS - started)) s)"
    failed_steps+=("$name")
    return 1
}

step setup bash tests/setup.sh || { echo "run-all: setup failed, nothing else can run"; exit 1; }

build_ok=yes
if [[ "$APPLIANCE" == mpterm ]]; then
    step build cargo build --release -p mpterm || build_ok=no
fi

step cargo-test cargo test --workspace --release

# The lab's own checks, proven able to fail (faulty kernel stand-in; no mpterm involved).
step lab-selftest bash tests/lab/selftest.sh

if [[ "$build_ok" == yes ]]; then
    step lab-scenarios bash tests/lab/scenarios.sh
else
    echo "=== run-all: lab-scenarios: not run, mpterm did not build"
    failed_steps+=(lab-scenarios)
fi

if ((${#failed_steps[@]} > 0)); then
    echo "run-all: FAILED steps: ${failed_steps[*]}"
    exit 1
fi
echo "run-all: all steps passed"
