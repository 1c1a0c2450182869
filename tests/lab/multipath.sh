#!/usr/bin/env bash
# Multipath scenarios (issue 7): the Linux MPTCP client with N paths to the appliance, each path
# its own veth pair, subnet and appliance port (lab.sh, LAB_PATHS=N):
#
#   ns client                                  ns app (mpterm: one DPDK port per path)
#   c0   198.18.0.1/24   ==veth==  a0   198.18.0.2/24   net_af_packet0   (path 1; listens :5000)
#   c1   198.18.1.1/24   ==veth==  a1   198.18.1.2/24   net_af_packet2   (path 2)
#   c<k-1> 198.18.<k-1>.1/24 ==veth== a<k-1> 198.18.<k-1>.2/24 net_af_packet<k> (path k)
#                                              b0 198.19.0.1/24 net_af_packet1 ==veth== s0 backend
#
# The client connects to 198.18.0.2 over c0. Its path manager (ip mptcp limits set subflows N-1
# add_addr_accepted N-1; one `subflow` endpoint per extra path) then opens one MP_JOIN subflow
# from each 198.18.<k-1>.1 to 198.18.0.2, and policy routing (`ip rule add from 198.18.<k-1>.1
# table 100+k`, table 100+k: 198.18.0.2 via 198.18.<k-1>.2 dev c<k-1>) sends it out of path k,
# so that it reaches the appliance on path k's port addressed to path 1's address: mpterm must
# accept a segment for any of its addresses on any port (weak host model) and answer out of the
# port it arrived on.
#
#   bash tests/lab/multipath.sh            runs multipath-joins-2paths and multipath-joins-4paths
#
# multipath-joins-Npaths: one appliance run with N paths; one upload and one download of
# MULTIPATH_BYTES (8 MiB), each on its own connection and checked byte for byte (length and
# SHA-256, peer.py check). Per connection, from the client's MPTcpExt counters (deltas, read
# before and after): MPJoinSynAckRx == N-1, MPJoinSynAckHMacFailure == 0, one MP_CAPABLE
# handshake, no fallback, MP_RST, MP_FAIL, checksum error. Per path, from nftables counters in the
# client namespace: every extra path sent MP_JOIN SYNs and got exactly one MP_JOIN SYN-ACK back
# on that same path, no RST arrived on it, and no join left through c0 (the routing works); and
# every path carried at least MULTIPATH_MIN_PATH_BYTES in all (tx+rx on c<k-1>). The appliance's
# own view: for mpterm, its final statistics show 2 x (N-1) joins accepted
# (MPTERM_JOINS_COUNTER, default mptcp_joins_established) and no join refused, and the veth end
# each of its ports opens (a<k-1>) carried the same; for the Linux stand-ins, the app
# namespace's MPJoinAckRx == N-1 per connection.
#
# Knobs: MULTIPATH_PATHS ("2 4"), MULTIPATH_BYTES, MULTIPATH_MIN_PATH_BYTES (64 KiB),
# MULTIPATH_TIMEOUT (30 s per transfer), MPTERM_JOINS_COUNTER, and those of scenarios.sh
# (APPLIANCE, MPTERM_BIN, SCENARIOS, LAB_PREFIX, LAB_PCAP=1 captures on every client path).
set -euo pipefail

LAB_PREFIX="${LAB_PREFIX:-mptmp$$}"
MULTIPATH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# scenarios.sh brings lab.sh and appliance.sh, and its helpers (record, run_clients, ...); its
# main() runs only when it is executed.
# shellcheck source=tests/lab/scenarios.sh
source "$MULTIPATH_DIR/scenarios.sh"

MULTIPATH_PATHS="${MULTIPATH_PATHS:-2 4}"
MULTIPATH_BYTES="${MULTIPATH_BYTES:-$((8 * 1024 * 1024))}"
# Each path must carry this much (both ways, both transfers) to count as used: some 45 full
# segments, far more than its handshake and ACKs. An even share of
# the 16 MiB moved is 4 MiB with 4 paths; this asks for a 64th of it, so that the joins
# scenario proves data on every path without asking anything of the scheduler.
MULTIPATH_MIN_PATH_BYTES="${MULTIPATH_MIN_PATH_BYTES:-$((64 * 1024))}"
MULTIPATH_TIMEOUT="${MULTIPATH_TIMEOUT:-30}"
MPTERM_JOINS_COUNTER="${MPTERM_JOINS_COUNTER:-mptcp_joins_established}"
# How long the upload's client waits for its joined subflows before it sends the rest.
MULTIPATH_JOIN_WAIT_S="${MULTIPATH_JOIN_WAIT_S:-3}"

# nftables in the client namespace counting, per path, the MP_JOIN handshakes that leave and
# arrive there (RFC 8684 section 3.2: MP_JOIN is MPTCP option subtype 1) and the resets that
# arrive. Counting only: nothing is dropped (a packet the client's own netfilter drops on output
# would only be sent again, lab.sh). Path 1 is counted too: no join may leave through c0.
multipath_count_start() {
    local k dev rules="" counters=""
    for ((k = 1; k <= LAB_PATHS; k++)); do
        dev="$(lab_path_if_client "$k")"
        counters+="    counter join_syn_out_$dev {}
    counter join_synack_in_$dev {}
    counter rst_in_$dev {}
"
        rules+="        oifname \"$dev\" tcp flags & (syn | ack | rst) == syn tcp option mptcp subtype 1 counter name \"join_syn_out_$dev\"
"
        rules+="        iifname \"$dev\" tcp flags & (syn | ack | rst) == syn | ack tcp option mptcp subtype 1 counter name \"join_synack_in_$dev\"
"
        rules+="        iifname \"$dev\" tcp flags & rst == rst counter name \"rst_in_$dev\"
"
    done
    lab_exec client nft delete table inet mptlab_paths 2>/dev/null || true
    lab_exec client nft -f - <<EOF
table inet mptlab_paths {
$counters
    chain count_out {
        type filter hook output priority 0; policy accept;
$(grep oifname <<<"$rules")
    }
    chain count_in {
        type filter hook input priority 0; policy accept;
$(grep iifname <<<"$rules")
    }
}
EOF
}

# Prints one counter's packets (0 when the table is gone).
multipath_count() {
    local packets
    packets="$(lab_nft_counter_packets client inet mptlab_paths "$1")"
    echo "${packets:-0}"
}

multipath_count_stop() {
    lab_exec client nft delete table inet mptlab_paths 2>/dev/null || true
}

# Prints "TX+RX" bytes of every path's veth end in namespace WHICH (client: c<k-1>, app:
# a<k-1>), one number per path, in path order.
multipath_path_bytes() {
    local which="$1" k dev tx rx
    for ((k = 1; k <= LAB_PATHS; k++)); do
        if [[ "$which" == client ]]; then dev="$(lab_path_if_client "$k")"; else dev="$(lab_path_if_app "$k")"; fi
        read -r tx rx <<<"$(lab_if_bytes "$which" "$dev")"
        printf '%s ' "$((tx + rx))"
    done
}

# The appliance's counters from the last statistics line of its log (mpterm only), one
# "name=value" a line.
multipath_mpterm_counters() {
    grep -o 'final statistics totals=.*' "$APPLIANCE_LOG" 2>/dev/null | tail -n 1 |
        sed 's/^final statistics totals=//' | tr ' ' '\n' | grep '=' || true
}

multipath_mpterm_counter() {
    local value
    value="$(multipath_mpterm_counters | awk -F= -v name="$1" '$1 == name { print $2 }')"
    echo "${value:-0}"
}

# One transfer on one connection: DIRECTION upload (client -> backend) or download. Appends to
# MP_PROBLEMS and MP_CHECKED; adds the path bytes it saw to MP_PATH_BYTES.
MP_PROBLEMS=()
MP_CHECKED=()
MP_PATH_BYTES=()
MP_APP_PATH_BYTES=()
multipath_transfer() {
    local dir="$1" direction="$2" paths="$3"
    local c2b=0 b2c=0 client_args=() backend_args=()
    if [[ "$direction" == upload ]]; then
        # The backend keeps its sending side open until the upload is in, as an application
        # that answers a request does: a DATA_FIN from the appliance right away would move
        # the Linux client's connection to CLOSE_WAIT, and Linux joins no subflow to a
        # connection that is not ESTABLISHED (`mptcp_finish_join`).
        backend_args=(--send-after-received "$MULTIPATH_BYTES")
        c2b="$MULTIPATH_BYTES"
        # The Linux client joins only once its first data was acknowledged at the data level;
        # it then waits (bounded) until every extra path's subflow is established, so that the
        # rest of the upload has every path to go on, however fast the transfer.
        client_args=(--wait-subflows "$((paths - 1))" --wait-subflows-timeout "$MULTIPATH_JOIN_WAIT_S")
    else
        b2c="$MULTIPATH_BYTES"
        # With nothing to send, the client would half-close at once, and Linux opens no
        # subflow on a connection it half-closed: it waits for the download's end instead.
        client_args=(--send-after-received "$b2c")
    fi
    dir="$dir/$direction"
    mkdir -p "$dir"
    local problems=() checked=()

    peer_in client counters snapshot --out "$dir/counters-before.json" ||
        problems+=("could not read the client's MPTcpExt counters")
    peer_in app counters snapshot --out "$dir/app-counters-before.json" ||
        problems+=("could not read the app namespace's counters")
    multipath_count_start || problems+=("could not install the per-path counters")
    local client_before app_before
    read -ra client_before <<<"$(multipath_path_bytes client)"
    read -ra app_before <<<"$(multipath_path_bytes app)"

    local pcaps=() k
    if [[ "$LAB_PCAP" == 1 ]]; then
        for ((k = 1; k <= paths; k++)); do
            pcaps+=("$(lab_pcap_start client "$(lab_path_if_client "$k")" "$dir/client-$(lab_path_if_client "$k").pcap")")
        done
    fi

    ip netns exec "$(lab_ns_backend)" "$LAB_PYTHON" "$SCENARIO_DIR/peer.py" backend \
        --listen "$LAB_BACKEND_ADDR:$LAB_BACKEND_PORT" --count 1 --send-bytes "$b2c" --seed 2000 \
        "${backend_args[@]}" \
        --timeout "$((MULTIPATH_TIMEOUT + 5))" --ready-file "$dir/backend.ready" \
        --report "$dir/backend.json" >"$dir/backend.log" 2>&1 &
    local backend_pid=$!
    appliance_wait_file "$dir/backend.ready" 10 || problems+=("backend did not start listening")

    # While the upload waits for its joins, SIGUSR1 every 100 ms asks mpterm for its
    # connection report (shown below).
    local reporter_pid=""
    if [[ "$direction" == upload && "$LAB_APPLIANCE" == mpterm && -n "$APPLIANCE_PID" ]]; then
        (while kill -USR1 "$APPLIANCE_PID" 2>/dev/null; do sleep 0.1; done) &
        reporter_pid=$!
    fi
    if ((${#problems[@]} == 0)); then
        run_clients "$dir" mptcp 1 "$c2b" "$b2c" "$MULTIPATH_TIMEOUT" "${client_args[@]}" ||
            problems+=("$CLIENTS_PROBLEM")
    fi
    if [[ -n "$reporter_pid" ]]; then
        kill "$reporter_pid" 2>/dev/null || true
        wait "$reporter_pid" 2>/dev/null || true
        # The report's subflow lines name their index. Shown, not asserted: a report comes at
        # the worker's next publication, and a fast upload can end before one sees every join.
        local highest
        # (A report may list no subflow at all when the upload ended first: grep then finds
        # nothing, which must not end the script under `set -e -o pipefail`.)
        highest="$({ grep -o 'subflow=[0-9]* ' "$APPLIANCE_LOG" || true; } | sort -t= -k2 -n | tail -n 1 | tr -d ' ')"
        checked+=("SIGUSR1 connection report: highest ${highest:-none}")
    fi
    if kill -0 "$backend_pid" 2>/dev/null && ((${#problems[@]} > 0)); then
        kill -TERM "$backend_pid" 2>/dev/null || true
    fi
    local backend_rc=0
    wait "$backend_pid" || backend_rc=$?
    ((backend_rc == 0)) || problems+=("backend exited $backend_rc")
    local pid
    for pid in "${pcaps[@]}"; do lab_pcap_stop "$pid"; done

    local leftovers
    if ! leftovers="$(wait_sockets_closed "$CLOSE_SETTLE_TIMEOUT")"; then
        problems+=("connections not closed ${CLOSE_SETTLE_TIMEOUT}s after the transfer: $leftovers")
    fi
    peer_in client counters snapshot --out "$dir/counters-after.json" ||
        problems+=("could not read the client's MPTcpExt counters")
    peer_in app counters snapshot --out "$dir/app-counters-after.json" ||
        problems+=("could not read the app namespace's counters")

    if [[ -s "$dir/client-0.json" && -s "$dir/backend.json" ]]; then
        if peer check --client "$dir/client-0.json" --backend "$dir/backend.json" \
            --send-bytes "$c2b" --recv-bytes "$b2c" --expect-mptcp yes --expect-csum 1 \
            --summary "$dir/summary.json" >"$dir/check.txt" 2>&1; then
            checked+=("$(sed 's/^check: //' "$dir/check.txt")")
        else
            problems+=("$(tr '\n' ' ' <"$dir/check.txt")")
        fi
    else
        problems+=("missing report(s): client-0.json/backend.json")
    fi

    if [[ "$direction" == upload && -s "$dir/client-0.json" ]]; then
        local wait_report
        wait_report="$("$LAB_PYTHON" - "$dir/client-0.json" <<'PY' || true
import json, sys
wait = json.load(open(sys.argv[1], encoding="utf-8")).get("subflow_wait") or {}
established, wanted = wait.get("established", "?"), wait.get("wanted", "?")
print(f"{established} of {wanted} joined subflows established "
      f"{wait.get('waited_s', '?')} s after the first chunk")
PY
)"
        checked+=("$wait_report")
    fi

    # RFC 8684 section 3.2: every extra path's subflow is an MP_JOIN handshake whose SYN-ACK
    # carries a valid HMAC; nothing of the connection is reset or falls back.
    if peer counters assert --before "$dir/counters-before.json" --after "$dir/counters-after.json" \
        --expect MPCapableSYNACKRX=1 --expect MPCapableFallbackSYNACK=0 \
        --expect MPCapableDataFallback=0 --expect "MPJoinSynAckRx=$((paths - 1))" \
        --expect MPJoinSynAckHMacFailure=0 --expect DataCsumErr=0 --expect MPFailRx=0 \
        --expect InfiniteMapRx=0 --expect MPFastcloseRx=0 --expect MPRstRx=0 \
        --expect Tcp.InCsumErrors=0 --show MPJoinSynTx >"$dir/counters.txt" 2>&1; then
        checked+=("$(sed 's/^counters: /client MPTcpExt deltas /' "$dir/counters.txt")")
    else
        problems+=("$(tr '\n' ' ' <"$dir/counters.txt")")
    fi
    if lab_appliance_is_kernel; then
        # The Linux stand-ins count the joins they completed (the third ACK's full HMAC).
        if peer counters assert --before "$dir/app-counters-before.json" \
            --after "$dir/app-counters-after.json" --expect "MPJoinAckRx=$((paths - 1))" \
            --expect MPJoinAckHMacFailure=0 >"$dir/app-counters.txt" 2>&1; then
            checked+=("$(sed 's/^counters: /appliance kernel deltas /' "$dir/app-counters.txt")")
        else
            problems+=("appliance kernel $(tr '\n' ' ' <"$dir/app-counters.txt")")
        fi
    fi

    # Per path: the join left through its own path and was answered on it.
    local dev syn synack rst per_path=""
    for ((k = 1; k <= paths; k++)); do
        dev="$(lab_path_if_client "$k")"
        syn="$(multipath_count "join_syn_out_$dev")"
        synack="$(multipath_count "join_synack_in_$dev")"
        rst="$(multipath_count "rst_in_$dev")"
        per_path+="$dev join SYN out $syn, SYN-ACK in $synack, RST in $rst; "
        if ((k == 1)); then
            ((syn == 0 && rst == 0)) || problems+=("path 1 ($dev): $syn MP_JOIN SYNs left through it (routing) and $rst RSTs arrived")
        elif ((syn < 1 || synack != 1 || rst != 0)); then
            problems+=("path $k ($dev): $syn MP_JOIN SYNs out, $synack MP_JOIN SYN-ACKs in (expected 1), $rst RSTs in (expected 0)")
        fi
    done
    checked+=("${per_path%; }")
    multipath_count_stop

    local client_after app_after
    read -ra client_after <<<"$(multipath_path_bytes client)"
    read -ra app_after <<<"$(multipath_path_bytes app)"
    for ((k = 0; k < paths; k++)); do
        MP_PATH_BYTES[k]=$((${MP_PATH_BYTES[k]:-0} + client_after[k] - client_before[k]))
        MP_APP_PATH_BYTES[k]=$((${MP_APP_PATH_BYTES[k]:-0} + app_after[k] - app_before[k]))
    done
    local shares=""
    for ((k = 0; k < paths; k++)); do
        shares+="$(lab_path_if_client $((k + 1))) $((client_after[k] - client_before[k])) "
    done
    checked+=("path bytes (tx+rx) ${shares% }")

    MP_PROBLEMS+=("${problems[@]/#/$direction: }")
    MP_CHECKED+=("$direction: $(printf '%s; ' "${checked[@]}")")
    if ((${#problems[@]} > 0)); then
        print_failure_logs "$direction" "$dir"
    fi
}

# multipath-joins-Npaths (see the top of the file): its own appliance run on a lab of N paths.
scenario_multipath_joins() {
    local name="$1" paths="$2"
    selected "$name" || return 0
    local dir="$LAB_OUT/$name"
    rm -rf "$dir"
    mkdir -p "$dir"
    MP_PROBLEMS=()
    MP_CHECKED=()
    MP_PATH_BYTES=()
    MP_APP_PATH_BYTES=()
    local started=$SECONDS

    lab_down_quiet
    LAB_PATHS="$paths"
    if ! lab_up; then
        record FAIL "$name" "the $paths-path lab did not come up" "lab did not come up"
        return 0
    fi
    lab_set_client_mptcp 1
    if ! appliance_start 1 "$name"; then
        appliance_print_log
        appliance_stop
        record FAIL "$name" "not run: appliance $LAB_APPLIANCE did not come up ($APPLIANCE_LOG)" "appliance did not start"
        return 0
    fi

    # The appliance answers ARP and ICMP echo for its own address on every path's port.
    local k addr
    for ((k = 1; k <= paths; k++)); do
        addr="$(lab_path_app_addr "$k")"
        if lab_exec client ping -c 1 -W 2 -I "$(lab_path_if_client "$k")" "$addr" >/dev/null 2>&1; then
            :
        else
            MP_PROBLEMS+=("path $k: no ICMP echo reply from $addr")
        fi
    done

    multipath_transfer "$dir" upload "$paths"
    multipath_transfer "$dir" download "$paths"

    appliance_stop
    [[ "$APPLIANCE_EXIT_HOW" == exited && "$APPLIANCE_EXIT" == 0 ]] ||
        MP_PROBLEMS+=("appliance after SIGTERM: $APPLIANCE_EXIT_HOW, status $APPLIANCE_EXIT")

    # Every path carried data, seen from the client's veth end and from the appliance's port.
    local path_report="" app_report=""
    for ((k = 1; k <= paths; k++)); do
        path_report+="$(lab_path_if_client "$k") ${MP_PATH_BYTES[k - 1]} "
        app_report+="$(lab_path_if_app "$k") ${MP_APP_PATH_BYTES[k - 1]} "
        if ((MP_PATH_BYTES[k - 1] < MULTIPATH_MIN_PATH_BYTES)); then
            MP_PROBLEMS+=("path $k carried ${MP_PATH_BYTES[k - 1]} bytes, less than $MULTIPATH_MIN_PATH_BYTES")
        fi
    done
    MP_CHECKED+=("both transfers: client path bytes ${path_report% }, each >= $MULTIPATH_MIN_PATH_BYTES; appliance port bytes ${app_report% }")

    if [[ "$LAB_APPLIANCE" == mpterm ]]; then
        local joins refused not_for_us expected=$((2 * (paths - 1)))
        joins="$(multipath_mpterm_counter "$MPTERM_JOINS_COUNTER")"
        refused="$(multipath_mpterm_counter mptcp_joins_refused)"
        not_for_us="$(multipath_mpterm_counter rx_dropped_not_for_us)"
        local report="mpterm $MPTERM_JOINS_COUNTER=$joins mptcp_joins_refused=$refused rx_dropped_not_for_us=$not_for_us"
        if ((joins == expected && refused == 0)); then
            MP_CHECKED+=("$report (expected $expected joins)")
        else
            MP_PROBLEMS+=("$report, expected $MPTERM_JOINS_COUNTER=$expected and no join refused")
        fi
    fi

    local short="$paths paths, 2 x $((MULTIPATH_BYTES / 1024 / 1024)) MiB, wall $((SECONDS - started))s"
    if ((${#MP_PROBLEMS[@]} == 0)); then
        record PASS "$name" "[$short] $(printf '%s ' "${MP_CHECKED[@]}")" "$short"
    else
        record FAIL "$name" "[$short] $(printf '%s; ' "${MP_PROBLEMS[@]}")" "$short"
        appliance_print_log
    fi
}

multipath_main() {
    if [[ $EUID -ne 0 ]]; then
        echo "multipath.sh must run as root (namespaces, veth, sysctl)" >&2
        exit 2
    fi
    lab_install_trap
    mkdir -p "$LAB_OUT"
    echo "multipath scenarios: appliance=$LAB_APPLIANCE prefix=$LAB_PREFIX paths=\"$MULTIPATH_PATHS\" bytes/transfer=$MULTIPATH_BYTES out=$LAB_OUT"
    local paths
    for paths in $MULTIPATH_PATHS; do
        scenario_multipath_joins "multipath-joins-${paths}paths" "$paths"
    done
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
    multipath_main "$@"
fi
