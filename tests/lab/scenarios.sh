#!/usr/bin/env bash
# End-to-end scenarios: a real Linux MPTCP client and a real Linux TCP backend, with the
# appliance (LAB_APPLIANCE / APPLIANCE = mpterm | kernel-standin) between them.
#
# Every scenario is bounded in bytes and seconds, prints one PASS/FAIL line with its goodput and
# what it checked, and the run ends with exactly one line "N passed, N failed" (non-zero exit if
# anything failed). The namespaces and the appliance are removed on any exit (trap).
#
# Knobs (environment):
#   APPLIANCE=mpterm|kernel-standin   which appliance sits in the middle (default mpterm)
#   MPTERM_BIN=path                   the mpterm binary (default target/release/mpterm)
#   TRANSFER_BYTES=N                  bytes per direction (default 64 MiB)
#   SCENARIO_TIMEOUT=S                seconds one transfer may take (default 120)
#   RSS_GROWTH_BOUND_MIB=N            allowed appliance RSS growth in the slow-backend scenario
#   SLOW_READ_CHUNK / SLOW_READ_DELAY_MS   the slow backend's reading pace (8 KiB per 1 ms)
#   CONCURRENT_CONNECTIONS=K          connections in the concurrent scenario (default 8)
#   SCENARIOS=regex                   run only scenarios whose name matches
#   MULTIPATH=1                       also run the two-path MP_JOIN group (not in the first slice)
#   LAB_PCAP=1                        capture headers on c0 and s0 per scenario (out/PREFIX/NAME/)
#   LAB_PREFIX=name                   namespace prefix (default mpt<pid>, unique per run)
set -euo pipefail

LAB_PREFIX="${LAB_PREFIX:-mpt$$}"
SCENARIO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/lab/lab.sh
source "$SCENARIO_DIR/lab.sh"
# shellcheck source=tests/lab/appliance.sh
source "$SCENARIO_DIR/appliance.sh"

TRANSFER_BYTES="${TRANSFER_BYTES:-$((64 * 1024 * 1024))}"
SCENARIO_TIMEOUT="${SCENARIO_TIMEOUT:-120}"
# The slow-backend scenario's memory bound: how much the appliance's resident set may grow while
# a fast client pushes TRANSFER_BYTES (64 MiB) into a backend that reads slowly. An appliance
# that honours back-pressure holds at most its windows and buffers (the kernel stand-in grows by
# about 1 MiB); one that buffers without bound holds nearly the whole transfer (selftest.sh
# measured 62 MiB for 64 MiB), which a 64 MiB bound would let through. Half the transfer
# separates the two with a wide margin; selftest.sh proves this bound catches the unbounded one.
RSS_GROWTH_BOUND_MIB="${RSS_GROWTH_BOUND_MIB:-32}"
SLOW_READ_CHUNK="${SLOW_READ_CHUNK:-8192}"
SLOW_READ_DELAY_MS="${SLOW_READ_DELAY_MS:-1}"
SCENARIOS="${SCENARIOS:-.}"
# The concurrent scenario splits TRANSFER_BYTES over this many simultaneous connections.
CONCURRENT_CONNECTIONS="${CONCURRENT_CONNECTIONS:-8}"
LAB_PCAP="${LAB_PCAP:-0}"
# Seconds both ends' sockets get to finish closing after a transfer (see wait_sockets_closed).
CLOSE_SETTLE_TIMEOUT="${CLOSE_SETTLE_TIMEOUT:-5}"
# In the two-path scenario each client path must carry at least this many bytes (both ways):
# a quarter of what an even split of the transfer would give it.
MIN_BYTES_PER_PATH="${MIN_BYTES_PER_PATH:-$((TRANSFER_BYTES / 4))}"

PASSED=0
FAILED=0
RESULTS=()
LAST_VERDICT=""
LAST_DETAIL=""

# The lab's own trap calls this before removing the namespaces.
lab_cleanup_hook() {
    appliance_stop
}

peer() {
    "$LAB_PYTHON" "$SCENARIO_DIR/peer.py" "$@"
}

# Runs peer.py inside one of the lab's namespaces: peer_in client|app|backend ARGS...
peer_in() {
    local which="$1"
    shift
    ip netns exec "${LAB_PREFIX}-${which}" "$LAB_PYTHON" "$SCENARIO_DIR/peer.py" "$@"
}

# record PASS|FAIL NAME DETAIL [SHORT]: prints the scenario's line; SHORT goes to the summary.
record() {
    local verdict="$1" name="$2" detail="$3" short="${4:-}"
    if [[ "$verdict" == PASS ]]; then
        PASSED=$((PASSED + 1))
    else
        FAILED=$((FAILED + 1))
    fi
    RESULTS+=("$(printf '%-4s %-28s %s' "$verdict" "$name" "$short")")
    # The last verdict and its reason, for selftest.sh, which expects certain failures.
    # shellcheck disable=SC2034
    LAST_VERDICT="$verdict"
    # shellcheck disable=SC2034
    LAST_DETAIL="$detail"
    echo "$verdict $name: $detail"
}

selected() {
    [[ "$1" =~ $SCENARIOS ]]
}

# The appliance answers ICMP echo on its client-side address.
scenario_ping() {
    local name="$1"
    selected "$name" || return 0
    local out="$LAB_OUT/$name.ping.txt"
    if lab_exec client ping -c 3 -W 1 "$LAB_APP_CLIENT_ADDR" >"$out" 2>&1; then
        record PASS "$name" "3/3 ICMP echo replies from $LAB_APP_CLIENT_ADDR ($(grep -o 'rtt.*' "$out" || true))" "3/3 echo replies"
    else
        cat "$out"
        record FAIL "$name" "ping $LAB_APP_CLIENT_ADDR from the client namespace failed" "no echo reply"
    fi
}

# Connections through the appliance, both directions checked byte for byte.
#   scenario_transfer NAME [--mode mptcp|tcp] [--c2b BYTES] [--b2c BYTES] [--checksum 1|0]
# --checksum is the DSS checksum setting the client must report as negotiated (MPTCP_INFO).
#                          [--connections K] [--read-delay-ms D] [--rss] [--loss-permille P]
#                          [--two-paths]
# --connections K opens K connections at once, each moving the given bytes (distinct seeds, so
# every stream is told apart by its hash). --read-delay-ms D makes the backend read
# SLOW_READ_CHUNK bytes per D ms; --rss samples the appliance's VmRSS during the transfer and
# bounds its growth by RSS_GROWTH_BOUND_MIB. --loss-permille P drops P in 1000 TCP segments at
# random in the middlebox between client and appliance, both ways (needs a lab brought up with
# LAB_MIDDLEBOX=1), so that both ends must retransmit and recover. --two-paths (needs a lab
# brought up with LAB_PATHS=2) expects one MP_JOIN subflow per connection over c1 and both paths
# to carry at least MIN_BYTES_PER_PATH.
scenario_transfer() {
    local name="$1"
    shift
    local mode=mptcp c2b=0 b2c=0 checksum=1 connections=1 delay=0 rss=no loss=0 two_paths=no
    while (($# > 0)); do
        case "$1" in
            --mode) mode="$2"; shift 2 ;;
            --c2b) c2b="$2"; shift 2 ;;
            --b2c) b2c="$2"; shift 2 ;;
            --checksum) checksum="$2"; shift 2 ;;
            --connections) connections="$2"; shift 2 ;;
            --read-delay-ms) delay="$2"; shift 2 ;;
            --rss) rss=yes; shift ;;
            --loss-permille) loss="$2"; shift 2 ;;
            --two-paths) two_paths=yes; shift ;;
            *) lab_log "scenario_transfer: unknown option $1"; return 1 ;;
        esac
    done
    selected "$name" || return 0
    local dir="$LAB_OUT/$name"
    rm -rf "$dir"
    mkdir -p "$dir"
    local problems=() checked=()
    # A dead appliance would make every client wait for its connect timeout: fail at once.
    appliance_alive || problems+=("appliance was not running when the scenario started")

    peer_in client counters snapshot --out "$dir/counters-before.json" ||
        problems+=("could not read the client's MPTcpExt counters")
    peer_in backend counters snapshot --out "$dir/backend-counters-before.json" ||
        problems+=("could not read the backend's counters")

    local backend_pid monitor_pid=""
    # Started without a shell function in between, so that $! is the peer itself and a signal
    # sent to it reaches it.
    ip netns exec "$(lab_ns_backend)" "$LAB_PYTHON" "$SCENARIO_DIR/peer.py" backend \
        --listen "$LAB_BACKEND_ADDR:$LAB_BACKEND_PORT" --count "$connections" \
        --send-bytes "$b2c" --seed 2000 --read-delay-ms "$delay" --read-chunk "$SLOW_READ_CHUNK" \
        --timeout "$((SCENARIO_TIMEOUT + 5))" --ready-file "$dir/backend.ready" \
        --report "$dir/backend.json" >"$dir/backend.log" 2>&1 &
    backend_pid=$!
    if ! appliance_wait_file "$dir/backend.ready" 10; then
        problems+=("backend did not start listening")
    fi

    if [[ "$rss" == yes ]]; then
        "$LAB_PYTHON" "$SCENARIO_DIR/peer.py" rss-monitor --pid "$APPLIANCE_PID" --interval-ms 20 \
            --timeout "$((SCENARIO_TIMEOUT + 10))" --ready-file "$dir/rss.ready" --out "$dir/rss.json" &
        monitor_pid=$!
        appliance_wait_file "$dir/rss.ready" 5 || problems+=("RSS monitor did not start")
    fi

    if ((loss > 0)); then
        lab_set_path_loss "$loss" || problems+=("could not install the loss rule in the middlebox")
    fi

    local path_bytes_before=()
    if [[ "$two_paths" == yes ]]; then
        read -ra path_bytes_before <<<"$(lab_if_bytes client "$LAB_IF_CLIENT") $(lab_if_bytes client "$LAB_IF_CLIENT_2")"
    fi

    local pcap_client="" pcap_backend=""
    if [[ "$LAB_PCAP" == 1 ]]; then
        pcap_client="$(lab_pcap_start client "$LAB_IF_CLIENT" "$dir/client-c0.pcap")"
        pcap_backend="$(lab_pcap_start backend "$LAB_IF_BACKEND" "$dir/backend-s0.pcap")"
    fi

    local started ended client_pids=() client_reports=() i
    started=$(date +%s.%N)
    if ((${#problems[@]} == 0)); then
        for ((i = 0; i < connections; i++)); do
            timeout --kill-after=5 "$((SCENARIO_TIMEOUT + 10))" \
                ip netns exec "$(lab_ns_client)" "$LAB_PYTHON" "$SCENARIO_DIR/peer.py" client "--$mode" \
                --connect "$LAB_APP_CLIENT_ADDR:$LAB_LISTEN_PORT" --send-bytes "$c2b" --recv-bytes "$b2c" \
                --seed "$((1000 + i))" --timeout "$SCENARIO_TIMEOUT" --report "$dir/client-$i.json" \
                >"$dir/client-$i.log" 2>&1 &
            client_pids+=($!)
            client_reports+=(--client "$dir/client-$i.json")
        done
        # Waiting on background jobs (instead of running them in the foreground) lets a TERM
        # sent to this script run the cleanup trap at once instead of after the clients end.
        local rc
        for i in "${!client_pids[@]}"; do
            rc=0
            wait "${client_pids[$i]}" || rc=$?
            ((rc == 0)) || problems+=("client $i exited $rc")
        done
    fi
    ended=$(date +%s.%N)

    local backend_rc=0
    if kill -0 "$backend_pid" 2>/dev/null && ((${#problems[@]} > 0)); then
        # A client failed or never ran; the backend may never finish. Do not wait for its timeout.
        kill -TERM "$backend_pid" 2>/dev/null || true
    fi
    wait "$backend_pid" || backend_rc=$?
    ((backend_rc == 0)) || problems+=("backend exited $backend_rc")

    if [[ -n "$monitor_pid" ]]; then
        kill -TERM "$monitor_pid" 2>/dev/null || true
        wait "$monitor_pid" || true
    fi
    lab_pcap_stop "$pcap_client"
    lab_pcap_stop "$pcap_backend"
    if ((loss > 0)); then
        checked+=("$(lab_path_loss_report)")
        lab_clear_path_loss
    fi

    # Both ends must have closed cleanly before the counters are read: whatever the appliance
    # sends while closing (DATA_FIN, FIN, MP_FASTCLOSE, RST) then lands in this scenario's deltas.
    local leftovers
    if ! leftovers="$(wait_sockets_closed "$CLOSE_SETTLE_TIMEOUT")"; then
        problems+=("connections not closed ${CLOSE_SETTLE_TIMEOUT}s after the transfer: $leftovers")
    fi

    peer_in client counters snapshot --out "$dir/counters-after.json" ||
        problems+=("could not read the client's MPTcpExt counters")
    peer_in backend counters snapshot --out "$dir/backend-counters-after.json" ||
        problems+=("could not read the backend's counters")

    if ((${#client_reports[@]} > 0)) && [[ -s "$dir/backend.json" ]]; then
        local expect_args=(--expect-mptcp no)
        [[ "$mode" == mptcp ]] && expect_args=(--expect-mptcp yes --expect-csum "$checksum")
        if peer check "${client_reports[@]}" --backend "$dir/backend.json" \
            --send-bytes "$c2b" --recv-bytes "$b2c" "${expect_args[@]}" \
            --summary "$dir/summary.json" >"$dir/check.txt" 2>&1; then
            checked+=("$(sed 's/^check: //' "$dir/check.txt")")
        else
            problems+=("$(tr '\n' ' ' <"$dir/check.txt")")
        fi
    else
        problems+=("missing report(s): client-*.json/backend.json")
    fi

    local counter_args
    if [[ "$mode" == mptcp ]]; then
        # The client's view of the appliance (LAB.md): one MP_CAPABLE SYN-ACK per connection, no
        # fallback, no checksum error, no MP_FAIL / infinite mapping / MP_FASTCLOSE / MP_RST.
        counter_args=(--expect "MPCapableSYNACKRX=$connections" --expect MPCapableFallbackSYNACK=0
            --expect DataCsumErr=0 --expect MPFailRx=0 --expect InfiniteMapRx=0
            --expect MPFastcloseRx=0 --expect MPRstRx=0)
    else
        counter_args=(--expect MPCapableSYNTX=0 --expect MPCapableSYNACKRX=0 --expect DataCsumErr=0)
    fi
    if [[ "$two_paths" == yes ]]; then
        # RFC 8684 section 3.2: the extra subflow is an MP_JOIN handshake whose SYN-ACK carries
        # a valid HMAC; the data must really travel over both paths.
        counter_args+=(--expect "MPJoinSynAckRx=$connections" --expect MPJoinSynAckHMacFailure=0)
        local path_bytes_after path_report
        read -ra path_bytes_after <<<"$(lab_if_bytes client "$LAB_IF_CLIENT") $(lab_if_bytes client "$LAB_IF_CLIENT_2")"
        local path0=$((path_bytes_after[0] + path_bytes_after[1] - path_bytes_before[0] - path_bytes_before[1]))
        local path1=$((path_bytes_after[2] + path_bytes_after[3] - path_bytes_before[2] - path_bytes_before[3]))
        path_report="path bytes (tx+rx) $LAB_IF_CLIENT $path0, $LAB_IF_CLIENT_2 $path1"
        if ((path0 >= MIN_BYTES_PER_PATH && path1 >= MIN_BYTES_PER_PATH)); then
            checked+=("$path_report, each >= $MIN_BYTES_PER_PATH")
        else
            problems+=("$path_report: a path carried less than $MIN_BYTES_PER_PATH")
        fi
    fi
    # Offloads are off on c0 and s0, so both kernels verify every TCP checksum the appliance
    # computed: not one may be wrong.
    counter_args+=(--expect Tcp.InCsumErrors=0)
    if peer counters assert --before "$dir/backend-counters-before.json" \
        --after "$dir/backend-counters-after.json" --expect Tcp.InCsumErrors=0 \
        >"$dir/backend-counters.txt" 2>&1; then
        checked+=("backend Tcp.InCsumErrors+0")
    else
        problems+=("backend $(tr '\n' ' ' <"$dir/backend-counters.txt")")
    fi
    if peer counters assert --before "$dir/counters-before.json" --after "$dir/counters-after.json" \
        "${counter_args[@]}" >"$dir/counters.txt" 2>&1; then
        checked+=("$(sed 's/^counters: /client MPTcpExt deltas /' "$dir/counters.txt")")
    else
        problems+=("$(tr '\n' ' ' <"$dir/counters.txt")")
    fi

    if [[ "$rss" == yes ]]; then
        if peer rss-check --file "$dir/rss.json" --max-growth-mib "$RSS_GROWTH_BOUND_MIB" >"$dir/rss.txt" 2>&1; then
            checked+=("$(sed 's/^rss: //' "$dir/rss.txt")")
        else
            problems+=("$(tr '\n' ' ' <"$dir/rss.txt")")
        fi
    fi

    if ! appliance_alive; then
        problems+=("appliance process $APPLIANCE_PID died")
    fi

    local wall
    wall=$(awk -v a="$started" -v b="$ended" 'BEGIN { printf "%.2f", b - a }')
    local short="$mode checksum=$checksum wall ${wall}s"
    ((loss > 0)) && short+=" loss ${loss}/1000"
    if [[ -s "$dir/summary.json" ]]; then
        short+=" goodput $("$LAB_PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["mbit_per_s"])' "$dir/summary.json") Mbit/s"
    fi
    if [[ -s "$dir/rss.json" ]]; then
        short+=" rss-growth $("$LAB_PYTHON" -c 'import json,sys; r=json.load(open(sys.argv[1])); print((r["max_kib"] or 0)-(r["start_kib"] or 0))' "$dir/rss.json") KiB"
    fi
    if ((${#problems[@]} == 0)); then
        record PASS "$name" "[$mode, checksum=$checksum, c->b $c2b B, b->c $b2c B, wall ${wall}s] $(printf '%s; ' "${checked[@]}")" "$short"
    else
        record FAIL "$name" "[$mode, checksum=$checksum, wall ${wall}s] $(printf '%s; ' "${problems[@]}")" "$short"
        local log
        for log in "$dir"/client-*.log; do
            [[ -s "$log" ]] || continue
            echo "----- $name: $(basename "$log") -----"
            tail -n 20 "$log"
        done
        echo "----- $name: backend log -----"
        tail -n 20 "$dir/backend.log" 2>/dev/null || true
        appliance_print_log
    fi
}

# Waits until neither the client nor the backend namespace holds a TCP or MPTCP socket in any
# state but TIME-WAIT, bounded by TIMEOUT seconds; on timeout prints what is left. A socket still
# in FIN-WAIT-2 or CLOSE-WAIT then means the appliance did not finish closing its side.
wait_sockets_closed() {
    local timeout="$1" deadline left which
    deadline=$(($(date +%s%N) + timeout * 1000000000))
    while :; do
        left=""
        for which in client backend; do
            left+="$(lab_exec "$which" ss -tanH | awk -v ns="$which" '$1 != "TIME-WAIT" { printf "%s tcp %s %s>%s; ", ns, $1, $4, $5 }')"
            left+="$(lab_exec "$which" ss -ManH | awk -v ns="$which" '$1 != "TIME-WAIT" { printf "%s mptcp %s %s>%s; ", ns, $1, $4, $5 }')"
        done
        [[ -z "$left" ]] && return 0
        if (($(date +%s%N) >= deadline)); then
            echo "$left"
            return 1
        fi
        sleep 0.1
    done
}

# The appliance's shutdown contract: it exits by itself, with status 0, within
# APPLIANCE_STOP_TIMEOUT seconds of SIGTERM. Ends the group's appliance run.
scenario_stop() {
    local name="$1"
    if ! selected "$name"; then
        appliance_stop
        return 0
    fi
    local pid="$APPLIANCE_PID"
    if ! appliance_alive; then
        record FAIL "$name" "appliance (pid $pid) was no longer running before SIGTERM" "not running"
        appliance_stop
        return 0
    fi
    local t0=$SECONDS status
    appliance_stop
    status="$APPLIANCE_EXIT"
    if [[ "$APPLIANCE_EXIT_HOW" == exited && "$status" == 0 ]]; then
        record PASS "$name" "appliance pid $pid exited 0 within $((SECONDS - t0)) s of SIGTERM" "exit 0 on SIGTERM"
    else
        record FAIL "$name" "appliance pid $pid after SIGTERM: $APPLIANCE_EXIT_HOW, status $status" "$APPLIANCE_EXIT_HOW status $status"
        appliance_print_log
    fi
}

# One appliance run per checksum setting. Normally the client's sysctl and the appliance's
# configuration change together, so the negotiated DSS checksum is what the scenario name says;
# CLIENT_CHECKSUM (default: CHECKSUM) sets the client apart, for the negotiation scenarios.
#   run_group LABEL CHECKSUM [--client-checksum CLIENT_CHECKSUM] "SCENARIO ARGS..."...
run_group() {
    local label="$1" checksum="$2" client_checksum="$2"
    shift 2
    if [[ "${1:-}" == --client-checksum ]]; then
        client_checksum="$2"
        shift 2
    fi
    local scenario words any=no
    for scenario in "$@"; do
        read -ra words <<<"$scenario"
        if selected "${words[1]}"; then any=yes; fi
    done
    # No appliance start for a group none of whose scenarios was asked for.
    [[ "$any" == yes ]] || return 0
    lab_set_client_mptcp "$client_checksum"
    if ! appliance_start "$checksum" "$label"; then
        appliance_print_log
        # Every scenario of the group counts as failed, so the totals say how much did not run.
        for scenario in "$@"; do
            read -ra words <<<"$scenario"
            selected "${words[1]}" || continue
            record FAIL "${words[1]}" "not run: appliance $LAB_APPLIANCE did not come up ($APPLIANCE_LOG)" \
                "not run: appliance did not start"
        done
        appliance_stop
        return 0
    fi
    for scenario in "$@"; do
        read -ra words <<<"$scenario"
        "${words[@]}"
    done
    appliance_stop
}

main() {
    if [[ $EUID -ne 0 ]]; then
        echo "scenarios.sh must run as root (namespaces, veth, sysctl)" >&2
        exit 2
    fi
    lab_install_trap
    mkdir -p "$LAB_OUT"
    local size="$TRANSFER_BYTES"
    echo "lab scenarios: appliance=$LAB_APPLIANCE prefix=$LAB_PREFIX bytes/direction=$size timeout=${SCENARIO_TIMEOUT}s out=$LAB_OUT"
    lab_up

    local mib=$((size / 1024 / 1024))
    run_group csum1 1 \
        "scenario_ping ping-csum1" \
        "scenario_transfer a-c2b-csum1 --c2b $size --checksum 1" \
        "scenario_transfer b-b2c-csum1 --b2c $size --checksum 1" \
        "scenario_transfer c-bidir-csum1 --c2b $size --b2c $size --checksum 1" \
        "scenario_transfer e-plain-tcp-bidir --mode tcp --c2b $size --b2c $size --checksum 1" \
        "scenario_transfer f-slow-backend-csum1 --c2b $size --checksum 1 --read-delay-ms $SLOW_READ_DELAY_MS --rss" \
        "scenario_transfer g-concurrent-${CONCURRENT_CONNECTIONS}x$((mib / CONCURRENT_CONNECTIONS))MiB --c2b $((size / CONCURRENT_CONNECTIONS)) --b2c $((size / CONCURRENT_CONNECTIONS)) --checksum 1 --connections $CONCURRENT_CONNECTIONS" \
        "scenario_stop stop-csum1"
    run_group csum0 0 \
        "scenario_ping ping-csum0" \
        "scenario_transfer d-c2b-csum0 --c2b $size --checksum 0" \
        "scenario_transfer d-b2c-csum0 --b2c $size --checksum 0" \
        "scenario_transfer d-bidir-csum0 --c2b $size --b2c $size --checksum 0" \
        "scenario_stop stop-csum0"

    # DSS checksum negotiation (RFC 8684 section 3.1): if either end sets the C flag in its
    # MP_CAPABLE, both must use checksums. The client's MPTCP_INFO must say they are on.
    local quarter=$((size / 4))
    run_group csum-client-only 0 --client-checksum 1 \
        "scenario_transfer i-csum-client-only --c2b $quarter --b2c $quarter --checksum 1"
    run_group csum-appliance-only 1 --client-checksum 0 \
        "scenario_transfer i-csum-appliance-only --c2b $quarter --b2c $quarter --checksum 1"

    # Impairment needs the middlebox between client and appliance: the same lab again with it.
    if selected h-loss1pct-bidir-csum1; then
        lab_down_quiet
        LAB_MIDDLEBOX=1 lab_up
        run_group middlebox 1 \
            "scenario_transfer h-loss1pct-bidir-csum1 --c2b $quarter --b2c $quarter --checksum 1 --loss-permille 10" \
            "scenario_stop stop-middlebox"
    fi

    # Multipath: a second client path and one MP_JOIN subflow over it (LAB_PATHS=2). MP_JOIN
    # is not part of the first slice (issue 2), so this group runs only with MULTIPATH=1.
    if [[ "${MULTIPATH:-0}" == 1 ]] && selected j-two-paths-bidir-csum1; then
        lab_down_quiet
        LAB_PATHS=2 lab_up
        run_group two-paths 1 \
            "scenario_ping ping-two-paths" \
            "scenario_transfer j-two-paths-bidir-csum1 --c2b $size --b2c $size --checksum 1 --two-paths" \
            "scenario_stop stop-two-paths"
    fi

    echo
    echo "summary (appliance=$LAB_APPLIANCE):"
    local line
    for line in "${RESULTS[@]}"; do
        echo "  $line"
    done
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    main "$@"
fi
