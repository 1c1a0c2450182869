#!/usr/bin/env bash
# Operator commands on a running mpterm (issue 7: REMOVE_ADDR and MP_PRIO as the Linux client
# counts them), sent with `mpterm ctl` to its control socket (config `control.socket`).
#
#   ns client                                ns app (mpterm)
#   c0 198.18.0.1/24 ==veth== a0 198.18.0.2  (path 1; the client connects here)
#   c1 198.18.1.1/24 ==veth== a1 198.18.1.2  (path 2; interface announce = true)
#
# The lab of addaddr.sh: the client has no subflow endpoint (`ip mptcp limits set subflows 1
# add_addr_accepted 1`) and learns 198.18.1.2 only from mpterm's ADD_ADDR, then joins it over
# c1. Every path is rate-limited with tbf (OPERATOR_RATE, 40 Mbit/s: c0 and c1 for the upload,
# the backend's s0 for the download), so that a transfer lasts a few seconds and a command lands
# in the middle of it. One appliance run; each case its own connection, OPERATOR_BYTES each way
# at once (peer.py client and backend), checked byte for byte (length and SHA-256).
#
# operator-withdraw-2paths: once path 2 carried OPERATOR_TRIGGER_BYTES (the join is up and in
#   use), `mpterm ctl withdraw 198.18.1.2`. The reply says one subflow was reset; the client's
#   MPTcpExt deltas: RmAddr == 1 (the REMOVE_ADDR; Linux counts one per address ID it
#   processes), AddAddr == 1, MPJoinSynAckRx == 1, MPPrioRx == 0, no fallback, checksum
#   error, MP_FAIL or MP_FASTCLOSE (MPRstRx is shown: the reset subflow's RST carries
#   MP_TCPRST); the client's subflow from 198.18.1.1 is gone within OPERATOR_CLOSE_TIMEOUT, path 2
#   carries under OPERATOR_QUIET_BYTES from 1 s after the command to the end, and the transfer
#   completes on path 1.
# operator-backup-2paths: `mpterm ctl announce 198.18.1.2` (withdrawn by the first case, so that
#   a new connection learns it again), a new connection; once path 2 carried
#   OPERATOR_TRIGGER_BYTES, `mpterm ctl backup 198.18.1.2 on`: the reply says MP_PRIO went on
#   one subflow; the client's deltas: MPPrioRx == 1, AddAddr == 1, MPJoinSynAckRx == 1,
#   RmAddr == 0, MPRstRx == 0, none of the failures above. Path 2's bytes after the command
#   are shown.
# Both: mpterm's final statistics count mptcp_remove_addr_sent == 1,
#   mptcp_remove_addr_subflows_closed == 1 and mptcp_prio_sent == 1 (checked in the second
#   case's line), and `mpterm ctl` refuses an address that is not mpterm's with an `error:` line
#   and exit status 1.
#
# OPERATOR_NOOP=1 sends `report` instead of withdraw and backup: both cases must then FAIL (the
# checks catch a command that did nothing).
#
#   bash tests/lab/operator.sh     (root; APPLIANCE=mpterm only: the stand-in has no control socket)
#
# Knobs: OPERATOR_BYTES (8 MiB), OPERATOR_RATE (40mbit), OPERATOR_TRIGGER_BYTES (256 KiB),
# OPERATOR_QUIET_BYTES (32 KiB), OPERATOR_TIMEOUT (30 s per transfer), MPTERM_BIN, LAB_PREFIX
# (default ctl<pid>), SCENARIOS.
set -euo pipefail

LAB_PREFIX="${LAB_PREFIX:-ctl$$}"
OPERATOR_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# multipath.sh brings scenarios.sh (record, peer, wait_sockets_closed, ...), lab.sh, appliance.sh
# and multipath_mpterm_counter; its main() runs only when it is executed.
# shellcheck source=tests/lab/multipath.sh
source "$OPERATOR_DIR/multipath.sh"

OPERATOR_BYTES="${OPERATOR_BYTES:-$((8 * 1024 * 1024))}"
OPERATOR_RATE="${OPERATOR_RATE:-40mbit}"
OPERATOR_TRIGGER_BYTES="${OPERATOR_TRIGGER_BYTES:-$((256 * 1024))}"
OPERATOR_QUIET_BYTES="${OPERATOR_QUIET_BYTES:-$((32 * 1024))}"
OPERATOR_TIMEOUT="${OPERATOR_TIMEOUT:-30}"
OPERATOR_CLOSE_TIMEOUT="${OPERATOR_CLOSE_TIMEOUT:-2}"
OPERATOR_NOOP="${OPERATOR_NOOP:-0}"
# Short, outside the work tree: a Unix socket path holds at most 107 bytes.
OPERATOR_SOCKET="/tmp/mpterm-$LAB_PREFIX.sock"

# mpterm ctl against the lab's appliance; prints the reply line, returns ctl's exit status.
operator_ctl() {
    "$MPTERM_BIN" ctl --socket "$OPERATOR_SOCKET" "$@"
}

# tbf on the client's two paths (upload) and on the backend's veth (download): the lab's kernel
# has tbf but no netem (LAB.md).
operator_limit_rates() {
    local dev
    for dev in "$(lab_path_if_client 1)" "$(lab_path_if_client 2)"; do
        lab_exec client tc qdisc replace dev "$dev" root tbf rate "$OPERATOR_RATE" burst 32kb latency 50ms
    done
    lab_exec backend tc qdisc replace dev "$LAB_IF_BACKEND" root tbf rate "$OPERATOR_RATE" burst 32kb latency 50ms
}

# Prints path 2's tx+rx bytes at the client.
operator_path2_bytes() {
    local tx rx
    read -r tx rx <<<"$(lab_if_bytes client "$(lab_path_if_client 2)")"
    echo $((tx + rx))
}

# Waits (bounded by OPERATOR_CLOSE_TIMEOUT) until the client holds no established subflow from
# ADDRESS while its process CLIENT_PID still runs: the subflow closed because of the command,
# not because the transfer ended.
operator_wait_no_subflow_from() {
    local address="$1" client_pid="$2" deadline=$((SECONDS + OPERATOR_CLOSE_TIMEOUT + 1))
    while ((SECONDS < deadline)) && kill -0 "$client_pid" 2>/dev/null; do
        if [[ -z "$(lab_exec client ss -tnH state established src "$address")" ]]; then
            kill -0 "$client_pid" 2>/dev/null && return 0
            return 1
        fi
        sleep 0.05
    done
    return 1
}

# One case on its own connection: OPERATOR_BYTES each way; once path 2 carried
# OPERATOR_TRIGGER_BYTES, `mpterm ctl COMMAND...`; with OP_CLOSED_FROM set, the client's subflow
# from that address must then close while the transfer runs. Leaves the reply in OP_REPLY, path 2's bytes
# at the command in OP_PATH2_AT, 1 s later in OP_PATH2_SETTLED and at the end in OP_PATH2_END;
# appends to OP_PROBLEMS and OP_CHECKED.
OP_PROBLEMS=()
OP_CHECKED=()
operator_transfer_with_command() {
    local dir="$1"
    shift
    mkdir -p "$dir"
    OP_REPLY=""
    OP_PATH2_AT=0
    OP_PATH2_SETTLED=0
    OP_PATH2_END=0
    peer_in client counters snapshot --out "$dir/counters-before.json" ||
        OP_PROBLEMS+=("could not read the client's MPTcpExt counters")
    local path2_start
    path2_start="$(operator_path2_bytes)"

    ip netns exec "$(lab_ns_backend)" "$LAB_PYTHON" "$SCENARIO_DIR/peer.py" backend \
        --listen "$LAB_BACKEND_ADDR:$LAB_BACKEND_PORT" --count 1 --send-bytes "$OPERATOR_BYTES" \
        --seed 2000 --timeout "$((OPERATOR_TIMEOUT + 5))" --ready-file "$dir/backend.ready" \
        --report "$dir/backend.json" >"$dir/backend.log" 2>&1 &
    local backend_pid=$!
    appliance_wait_file "$dir/backend.ready" 10 || OP_PROBLEMS+=("backend did not start listening")
    timeout --kill-after=5 "$((OPERATOR_TIMEOUT + 15))" \
        ip netns exec "$(lab_ns_client)" "$LAB_PYTHON" "$SCENARIO_DIR/peer.py" client --mptcp \
        --connect "$LAB_APP_CLIENT_ADDR:$LAB_LISTEN_PORT" --send-bytes "$OPERATOR_BYTES" \
        --recv-bytes "$OPERATOR_BYTES" --seed 1000 --timeout "$OPERATOR_TIMEOUT" \
        --report "$dir/client-0.json" >"$dir/client.log" 2>&1 &
    local client_pid=$!

    # The command, once path 2 is joined and in use (bounded: the transfer's own timeout).
    local deadline=$((SECONDS + OPERATOR_TIMEOUT)) moved=0
    while ((SECONDS < deadline)) && kill -0 "$client_pid" 2>/dev/null; do
        moved=$(($(operator_path2_bytes) - path2_start))
        ((moved >= OPERATOR_TRIGGER_BYTES)) && break
        sleep 0.02
    done
    if ((moved >= OPERATOR_TRIGGER_BYTES)); then
        OP_PATH2_AT=$moved
        local rc=0
        OP_REPLY="$(operator_ctl "$@" 2>&1)" || rc=$?
        echo "$OP_REPLY" >"$dir/ctl-reply.txt"
        OP_CHECKED+=("path 2 carried $moved bytes when \`mpterm ctl $*\` answered \"$OP_REPLY\" (exit $rc)")
        ((rc == 0)) || OP_PROBLEMS+=("mpterm ctl $* exited $rc: $OP_REPLY")
        if [[ -n "${OP_CLOSED_FROM:-}" ]]; then
            if operator_wait_no_subflow_from "$OP_CLOSED_FROM" "$client_pid"; then
                OP_CHECKED+=("the client's subflow from $OP_CLOSED_FROM closed while the transfer ran")
            else
                OP_PROBLEMS+=("the client's subflow from $OP_CLOSED_FROM did not close within ${OPERATOR_CLOSE_TIMEOUT}s while the transfer ran")
            fi
        fi
        sleep 1
        OP_PATH2_SETTLED=$(($(operator_path2_bytes) - path2_start))
    else
        OP_PROBLEMS+=("path 2 carried only $moved bytes (< $OPERATOR_TRIGGER_BYTES): no command sent")
    fi

    local client_rc=0 backend_rc=0
    wait "$client_pid" || client_rc=$?
    ((client_rc == 0)) || OP_PROBLEMS+=("client exited $client_rc")
    if kill -0 "$backend_pid" 2>/dev/null && ((client_rc != 0)); then
        kill -TERM "$backend_pid" 2>/dev/null || true
    fi
    wait "$backend_pid" || backend_rc=$?
    ((backend_rc == 0)) || OP_PROBLEMS+=("backend exited $backend_rc")
    OP_PATH2_END=$(($(operator_path2_bytes) - path2_start))

    local leftovers
    if ! leftovers="$(wait_sockets_closed "$CLOSE_SETTLE_TIMEOUT")"; then
        OP_PROBLEMS+=("connections not closed ${CLOSE_SETTLE_TIMEOUT}s after the transfer: $leftovers")
    fi
    peer_in client counters snapshot --out "$dir/counters-after.json" ||
        OP_PROBLEMS+=("could not read the client's MPTcpExt counters")
    if [[ -s "$dir/client-0.json" && -s "$dir/backend.json" ]]; then
        if peer check --client "$dir/client-0.json" --backend "$dir/backend.json" \
            --send-bytes "$OPERATOR_BYTES" --recv-bytes "$OPERATOR_BYTES" --expect-mptcp yes \
            --expect-csum 1 --summary "$dir/summary.json" >"$dir/check.txt" 2>&1; then
            OP_CHECKED+=("$(sed 's/^check: //' "$dir/check.txt")")
        else
            OP_PROBLEMS+=("$(tr '\n' ' ' <"$dir/check.txt")")
        fi
    else
        OP_PROBLEMS+=("missing report(s): client-0.json/backend.json")
    fi
}

# The client's counter deltas of the case in DIR: each EXPECT is NAME=DELTA.
operator_check_counters() {
    local dir="$1"
    shift
    local expects=() expect
    for expect in "$@"; do expects+=(--expect "$expect"); done
    if peer counters assert --before "$dir/counters-before.json" --after "$dir/counters-after.json" \
        --expect MPCapableSYNACKRX=1 --expect MPCapableFallbackSYNACK=0 \
        --expect MPCapableDataFallback=0 --expect AddAddr=1 --expect MPJoinSynAckRx=1 \
        --expect MPJoinSynAckHMacFailure=0 --expect DataCsumErr=0 --expect MPFailRx=0 \
        --expect InfiniteMapRx=0 --expect MPFastcloseRx=0 --expect Tcp.InCsumErrors=0 \
        "${expects[@]}" --show MPRstRx --show RmAddr --show MPPrioRx >"$dir/counters.txt" 2>&1; then
        OP_CHECKED+=("$(sed 's/^counters: /client MPTcpExt deltas /' "$dir/counters.txt")")
    else
        OP_PROBLEMS+=("$(tr '\n' ' ' <"$dir/counters.txt")")
    fi
}

operator_record() {
    local name="$1" short="$2"
    if ((${#OP_PROBLEMS[@]} == 0)); then
        record PASS "$name" "[$short] $(printf '%s; ' "${OP_CHECKED[@]}")" "$short"
    else
        record FAIL "$name" "[$short] $(printf '%s; ' "${OP_PROBLEMS[@]}")" "$short"
        appliance_print_log
    fi
}

# operator-withdraw-2paths (see the top of the file).
operator_case_withdraw() {
    local name=operator-withdraw-2paths started=$SECONDS
    local dir="$LAB_OUT/$name" address
    address="$(lab_path_app_addr 2)"
    rm -rf "$dir"
    OP_PROBLEMS=()
    OP_CHECKED=()
    local command=(withdraw "$address")
    [[ "$OPERATOR_NOOP" == 1 ]] && command=(report)
    OP_CLOSED_FROM="$(lab_path_client_addr 2)" operator_transfer_with_command "$dir" "${command[@]}"
    if [[ -n "$OP_REPLY" && "$OP_REPLY" != *"1 subflows on it reset"* ]]; then
        OP_PROBLEMS+=("reply \"$OP_REPLY\", expected one subflow reset")
    fi
    local quiet=$((OP_PATH2_END - OP_PATH2_SETTLED))
    if ((OP_PATH2_SETTLED > 0 && quiet < OPERATOR_QUIET_BYTES)); then
        OP_CHECKED+=("path 2 carried $quiet bytes from 1 s after the command to the end")
    else
        OP_PROBLEMS+=("path 2 carried $quiet bytes from 1 s after the command to the end (at most $OPERATOR_QUIET_BYTES)")
    fi
    operator_check_counters "$dir" RmAddr=1 MPPrioRx=0
    operator_record "$name" "withdraw mid-transfer, 2 x $((OPERATOR_BYTES / 1024 / 1024)) MiB at once, wall $((SECONDS - started))s"
}

# operator-backup-2paths (see the top of the file).
operator_case_backup() {
    local name=operator-backup-2paths started=$SECONDS
    local dir="$LAB_OUT/$name" address reply rc=0
    address="$(lab_path_app_addr 2)"
    rm -rf "$dir"
    mkdir -p "$dir"
    OP_PROBLEMS=()
    OP_CHECKED=()
    reply="$(operator_ctl announce "$address" 2>&1)" || rc=$?
    if ((rc == 0)) && [[ "$reply" == "ok: announced"* ]]; then
        OP_CHECKED+=("announce: \"$reply\"")
    else
        OP_PROBLEMS+=("announce $address: exit $rc, \"$reply\"")
    fi
    local command=(backup "$address" on)
    [[ "$OPERATOR_NOOP" == 1 ]] && command=(report)
    operator_transfer_with_command "$dir" "${command[@]}"
    if [[ -n "$OP_REPLY" && "$OP_REPLY" != "ok: MP_PRIO queued on 1 subflows" ]]; then
        OP_PROBLEMS+=("reply \"$OP_REPLY\", expected MP_PRIO on one subflow")
    fi
    OP_CHECKED+=("path 2 carried $((OP_PATH2_END - OP_PATH2_SETTLED)) bytes from 1 s after the command to the end")
    operator_check_counters "$dir" MPPrioRx=1 RmAddr=0 MPRstRx=0

    # A command naming an address that is not mpterm's is refused, and changes nothing.
    rc=0
    reply="$(operator_ctl withdraw 198.18.9.2 2>&1)" || rc=$?
    if ((rc == 1)) && [[ "$reply" == "error: 198.18.9.2 is not an address of this appliance"* ]]; then
        OP_CHECKED+=("unknown address refused: \"$reply\"")
    else
        OP_PROBLEMS+=("withdraw 198.18.9.2: exit $rc, \"$reply\" (expected exit 1 and an error line)")
    fi

    # mpterm's own view of both cases, from its final statistics.
    appliance_stop
    [[ "$APPLIANCE_EXIT_HOW" == exited && "$APPLIANCE_EXIT" == 0 ]] ||
        OP_PROBLEMS+=("appliance after SIGTERM: $APPLIANCE_EXIT_HOW, status $APPLIANCE_EXIT")
    local sent closed prio
    sent="$(multipath_mpterm_counter mptcp_remove_addr_sent)"
    closed="$(multipath_mpterm_counter mptcp_remove_addr_subflows_closed)"
    prio="$(multipath_mpterm_counter mptcp_prio_sent)"
    local report="mpterm mptcp_remove_addr_sent=$sent mptcp_remove_addr_subflows_closed=$closed mptcp_prio_sent=$prio"
    if ((sent == 1 && closed == 1 && prio == 1)); then
        OP_CHECKED+=("$report (both cases)")
    else
        OP_PROBLEMS+=("$report, expected 1, 1 and 1 (both cases)")
    fi
    if [[ -e "$OPERATOR_SOCKET" ]]; then
        OP_PROBLEMS+=("the control socket $OPERATOR_SOCKET is still there after mpterm stopped")
    fi
    operator_record "$name" "backup mid-transfer, 2 x $((OPERATOR_BYTES / 1024 / 1024)) MiB at once, wall $((SECONDS - started))s"
}

operator_main() {
    if [[ $EUID -ne 0 ]]; then
        echo "operator.sh must run as root (namespaces, veth, sysctl)" >&2
        exit 2
    fi
    if [[ "$LAB_APPLIANCE" != mpterm ]]; then
        echo "operator.sh: the kernel stand-in has no control socket; nothing to run" >&2
        exit 0
    fi
    lab_install_trap
    mkdir -p "$LAB_OUT"
    echo "operator scenarios: prefix=$LAB_PREFIX bytes/direction=$OPERATOR_BYTES rate=$OPERATOR_RATE noop=$OPERATOR_NOOP out=$LAB_OUT"
    lab_down_quiet
    LAB_PATHS=2
    if ! lab_up; then
        record FAIL operator-lab "the 2-path lab did not come up" "lab did not come up"
    else
        lab_set_client_mptcp 1
        # No endpoint: path 2 is known to the client only by the appliance's ADD_ADDR.
        lab_exec client ip mptcp endpoint flush
        lab_exec client ip mptcp limits set subflows 1 add_addr_accepted 1
        operator_limit_rates
        rm -f "$OPERATOR_SOCKET"
        if ! APPLIANCE_ANNOUNCE=1 APPLIANCE_CONTROL_SOCKET="$OPERATOR_SOCKET" appliance_start 1 operator; then
            appliance_print_log
            appliance_stop
            record FAIL operator-withdraw-2paths "not run: mpterm did not come up ($APPLIANCE_LOG)" "appliance did not start"
        else
            if selected operator-withdraw-2paths; then operator_case_withdraw; fi
            if selected operator-backup-2paths; then operator_case_backup; fi
            appliance_stop
        fi
    fi
    rm -f "$OPERATOR_SOCKET"
    print_summary
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    operator_main "$@"
fi
