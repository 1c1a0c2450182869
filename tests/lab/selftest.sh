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
#   reset one of 64 connections k (connection burst)  ECONNRESET on 1 of 64 connections
#   tell the client 3 s late    m (backend reset)     send() or recv() failed more than 2 s after
#                                                       the reset
#   give up on the backend at   m (never answers,     send() or recv() failed before the 3 s backend
#     1 s instead of 3 s          3 s expected)         connect timeout
#
# Then, in the mpterm-mode topology (a0/b0 without addresses) and without mpterm, it checks that
# nothing answers for the appliance's address (so no scenario can pass thanks to the app
# namespace's kernel), and that a DPDK process on a0 (dpdk-testpmd, icmpecho) does get frames
# from and to the client.
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

# expect_failure NAME REASON_REGEX FAULT_ARGS -- [SCENARIO_FUNCTION] SCENARIO_ARGS...
# SCENARIO_FUNCTION is scenario_transfer unless given.
expect_failure() {
    local name="$1" reason="$2"
    shift 2
    local fault_args=()
    while [[ "$1" != -- ]]; do
        fault_args+=("$1")
        shift
    done
    shift
    local scenario=scenario_transfer
    if [[ "${1:-}" == scenario_* ]]; then
        scenario="$1"
        shift
    fi
    local transcript="$LAB_OUT/selftest-$name.txt"
    STANDIN_EXTRA_ARGS=("${fault_args[@]}")
    LAST_VERDICT="" LAST_DETAIL=""
    if appliance_start 1 "selftest-$name" >"$transcript" 2>&1; then
        "$scenario" "$name" "$@" >>"$transcript" 2>&1
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
    echo "lab self-test: faulty kernel stand-in, then the mpterm topology without mpterm; prefix=$LAB_PREFIX out=$LAB_OUT"
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
    # The connection burst's reset count: one connection of the burst aborted by the appliance.
    expect_failure reset-one-of-burst "ECONNRESET on 1 of $BURST_CONNECTIONS connections" \
        --fault reset-nth:5 -- --c2b "$BURST_BYTES" --b2c "$BURST_BYTES" \
        --connections "$BURST_CONNECTIONS" --expect-error-kind ECONNRESET=0
    # The backend failure scenarios' timing, both bounds: an appliance that lets the client
    # find out 3 s after the backend's reset, and one whose backend connect timeout is 1 s
    # when the configuration says 3 s.
    APPLIANCE_CONNECT_TIMEOUT_MS="$FAILURE_CONNECT_TIMEOUT_MS" expect_failure late-fastclose \
        "(send|recv)\\(\\) failed [0-9.]+ s after the backend's reset, bound $FAILURE_MAX_GAP_S s" \
        --fault abort-delay-ms:3000 -- scenario_backend_failure --reset
    APPLIANCE_CONNECT_TIMEOUT_MS="$FAILURE_CONNECT_TIMEOUT_MS" expect_failure early-give-up \
        "before the $((FAILURE_CONNECT_TIMEOUT_MS / 1000)) s backend connect timeout" \
        --backend-connect-timeout 1 -- scenario_backend_failure --never-answers

    # The mpterm-mode topology (no addresses on a0/b0), checked without mpterm.
    lab_down_quiet
    LAB_APPLIANCE=mpterm lab_up
    check_kernel_silent
    check_dpdk_echo

    echo "$SELFTEST_PASSED passed, $SELFTEST_FAILED failed"
    ((SELFTEST_FAILED == 0))
}

selftest_verdict() {
    local verdict="$1" name="$2" detail="$3"
    if [[ "$verdict" == PASS ]]; then
        SELFTEST_PASSED=$((SELFTEST_PASSED + 1))
    else
        SELFTEST_FAILED=$((SELFTEST_FAILED + 1))
    fi
    echo "$verdict selftest-$name: $detail"
}

# With no appliance running, nothing may answer for the appliance's addresses: otherwise a
# scenario could pass thanks to the app namespace's kernel instead of mpterm.
check_kernel_silent() {
    local out="$LAB_OUT/selftest-kernel-silent.txt"
    if lab_exec client ping -c 2 -W 1 "$LAB_APP_CLIENT_ADDR" >"$out" 2>&1; then
        selftest_verdict FAIL kernel-silent "something answered ping for $LAB_APP_CLIENT_ADDR with no appliance running"
        return 0
    fi
    if lab_exec client timeout 10 "$LAB_PYTHON" -c 'import socket,sys
s = socket.socket(); s.settimeout(4)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
except OSError:
    sys.exit(1)' "$LAB_APP_CLIENT_ADDR" "$LAB_LISTEN_PORT" >>"$out" 2>&1; then
        selftest_verdict FAIL kernel-silent "a TCP connect to $LAB_APP_CLIENT_ADDR:$LAB_LISTEN_PORT succeeded with no appliance running"
        return 0
    fi
    selftest_verdict PASS kernel-silent "with no appliance, neither ping nor TCP to $LAB_APP_CLIENT_ADDR gets an answer"
}

# A DPDK process on a0 (dpdk-testpmd in icmpecho mode, which answers ARP and ICMP echo) is
# reachable from the client: the lab's DPDK side (af_packet PMD in the address-less namespace,
# offloads off, --no-huge) carries frames both ways, independently of mpterm.
check_dpdk_echo() {
    local log="$LAB_OUT/selftest-dpdk-echo.log" testpmd
    testpmd="$(command -v dpdk-testpmd || true)"
    if [[ -z "$testpmd" ]]; then
        selftest_verdict FAIL dpdk-echo "dpdk-testpmd not found (Debian package dpdk; tests/setup.sh installs it)"
        return 0
    fi
    # --stats-period keeps the non-interactive testpmd running until it is signalled.
    ip netns exec "$(lab_ns_app)" timeout 60 "$testpmd" --no-huge -m 256 --no-pci --no-shconf \
        "--vdev=net_af_packet0,iface=$LAB_IF_APP_CLIENT" -- \
        --forward-mode=icmpecho --nb-cores=1 --total-num-mbufs=2048 --stats-period=5 \
        >"$log" 2>&1 &
    local pid=$! replied=no i
    for ((i = 0; i < 15; i++)); do
        if lab_exec client ping -c 1 -W 1 "$LAB_APP_CLIENT_ADDR" >/dev/null 2>&1; then
            replied=yes
            break
        fi
        kill -0 "$pid" 2>/dev/null || break
    done
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [[ "$replied" == yes ]]; then
        selftest_verdict PASS dpdk-echo "dpdk-testpmd (icmpecho, net_af_packet on $LAB_IF_APP_CLIENT) answered the client's ping"
    else
        selftest_verdict FAIL dpdk-echo "no ping reply through dpdk-testpmd on $LAB_IF_APP_CLIENT"
        tail -n 30 "$log"
    fi
}

selftest_main "$@"
