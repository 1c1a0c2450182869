#!/usr/bin/env bash
# Proves that the lab's checks can fail: runs scenarios against a deliberately broken kernel
# stand-in and passes only if each scenario FAILS for the expected reason. Independent of
# APPLIANCE (it always uses the stand-in, whose faults are injected by peer.py standin-proxy).
#
#   fault                       scenario              the check that must catch it
#   flip one bit c->b           a (64 MiB c->b)       SHA-256 client sent != backend received
#   cut b->c after 1 MiB        b (64 MiB b->c)       client received fewer bytes than sent
#   listen without MPTCP        c (bidir)             client fell back; MPCapableFallbackSYNACK+1
#   buffer c->b without bound   f (slow backend)      appliance RSS growth above the bound
#
# Ends with "N passed, N failed" like scenarios.sh.
set -euo pipefail

export LAB_APPLIANCE=kernel-standin
LAB_PREFIX="${LAB_PREFIX:-mpts$$}"
SELFTEST_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/lab/scenarios.sh
source "$SELFTEST_DIR/scenarios.sh"

SELFTEST_PASSED=0
SELFTEST_FAILED=0

# expect_failure NAME REASON_REGEX FAULT_ARGS -- SCENARIO_TRANSFER_ARGS...
expect_failure() {
    local name="$1" reason="$2"
    shift 2
    local fault_args=()
    while [[ "$1" != -- ]]; do
        fault_args+=("$1")
        shift
    done
    shift
    local transcript="$LAB_OUT/selftest-$name.txt"
    STANDIN_EXTRA_ARGS=("${fault_args[@]}")
    LAST_VERDICT="" LAST_DETAIL=""
    if appliance_start 1 "selftest-$name" >"$transcript" 2>&1; then
        scenario_transfer "$name" "$@" >>"$transcript" 2>&1
    else
        LAST_VERDICT=FAIL LAST_DETAIL="stand-in did not start"
    fi
    appliance_stop
    if [[ "$LAST_VERDICT" == FAIL && "$LAST_DETAIL" =~ $reason ]]; then
        SELFTEST_PASSED=$((SELFTEST_PASSED + 1))
        echo "PASS selftest-$name: the lab caught the fault (${fault_args[*]}): ${BASH_REMATCH[0]}"
    else
        SELFTEST_FAILED=$((SELFTEST_FAILED + 1))
        echo "FAIL selftest-$name: expected a failure matching /$reason/, got $LAST_VERDICT: $LAST_DETAIL"
        cat "$transcript"
    fi
}

selftest_main() {
    if [[ $EUID -ne 0 ]]; then
        echo "selftest.sh must run as root" >&2
        exit 2
    fi
    lab_install_trap
    mkdir -p "$LAB_OUT"
    local size="$TRANSFER_BYTES"
    echo "lab self-test: faulty kernel stand-in, prefix=$LAB_PREFIX out=$LAB_OUT"
    LAB_CHECKSUM=1 lab_up
    lab_set_client_mptcp 1

    expect_failure corrupt-c2b 'client->backend differs' \
        --fault "corrupt-c2b:$((size / 2 + 12345))" -- --c2b "$size"
    expect_failure truncate-b2c 'received [0-9]+ bytes, expected' \
        --fault "truncate-b2c:$((1024 * 1024))" -- --b2c "$size"
    expect_failure no-mptcp 'MPCapableFallbackSYNACK delta 1' \
        --listen-plain-tcp -- --c2b "$size" --b2c "$size"
    # The same RSS bound as the real slow-backend scenario: it must catch an appliance that
    # ignores back-pressure.
    expect_failure unbounded-buffer 'rss: FAIL' \
        --fault unbounded-c2b -- --c2b "$size" --read-delay-ms "$SLOW_READ_DELAY_MS" --rss

    echo "$SELFTEST_PASSED passed, $SELFTEST_FAILED failed"
    ((SELFTEST_FAILED == 0))
}

selftest_main "$@"
