#!/usr/bin/env bash
# The side-by-side lab benchmark (issue 6, item 4): the same transfers, in the same run, through
# mpterm and through the anchor a user would otherwise deploy, with one and with two client
# paths, upload and download.
#
#   bash perf/lab/side-by-side.sh [--seconds N] [--size MiB] [--out FILE.json] [--runs N]
#                                 [--connections "1 8"] [--paths "1 2"] [--checksum 1|0]
#
#   --size MiB         bytes per transfer (default 1000), split evenly over the connections
#   --seconds N        the bound of one transfer (default 120): a transfer still running then fails
#   --runs N           how many times every transfer is measured (default 2), interleaved: run 1
#                      of everything, then run 2, so that a noisy minute hits both appliances
#   --connections L    connection counts to measure (default "1"; "1 8" adds 8 at once)
#   --paths L          client paths (default "1 2")
#   --checksum 1|0     DSS checksums on (default) or off, for the client and both appliances
#   --out FILE.json    the lab-side-by-side result (default perf/results/lab-side-by-side.json);
#                      the lab-timeseries result goes next to it (FILE-timeseries.json, or
#                      --timeseries-out FILE)
# Environment: MPTERM_BIN (the mpterm binary), LAB_DPDK_DEVICE (appliance.sh), HAPROXY_THREADS
# (1), LAB_PREFIX (default mptsbs<pid>).
#
# What runs (tests/lab/lab.sh has the topology; LAB.md the facts behind it):
#   client   the Linux kernel's MPTCP in its namespace (tests/lab/peer.py client), DSS checksums
#            as --checksum says (net.mptcp.checksum_enabled)
#   mpterm   MPTERM_BIN in the app namespace on DPDK (LAB_DPDK_DEVICE, af_packet by default)
#   anchor   LAB_APPLIANCE=haproxy (tests/lab/appliance.sh): the app namespace's Linux kernel
#            terminates MPTCP (net.mptcp.checksum_enabled as for the client), HAProxy 2.6 in TCP
#            mode, one thread, relays to the backend; `mptcpize run` makes its sockets MPTCP
#   backend  the Linux kernel's TCP (tests/lab/peer.py backend)
# With two paths (LAB_PATHS=2) the client has a `subflow` endpoint on c1 and opens an MP_JOIN
# subflow over it. mpterm does not accept MP_JOIN yet (issue 7): it refuses the join, so its
# two-path run carries one subflow; the table says so beside the figure.
#
# Every transfer is checked as the lab's scenarios check theirs: length and SHA-256 of both
# directions of every connection (peer.py check), no fallback, the negotiated checksum setting,
# the client's MPTcpExt counters (one MP_CAPABLE SYN-ACK per connection, no checksum error, no
# MP_FAIL, infinite mapping, MP_FASTCLOSE; one MP_JOIN SYN-ACK per connection for the anchor's
# two-path runs), no TCP checksum error at the client or the backend.
#
# CPU accounting. Every figure is CPU seconds per GiB moved, counted from the moment the client
# starts until both the client and the backend have exited (perf/lab/lab_bench.py):
#   mpterm cpu    mpterm's own utime+stime (/proc/PID/stat, every thread).
#   anchor cpu    HAProxy's utime+stime plus the kernel work done for it, which is not charged
#                 to HAProxy: the anchor's MPTCP and TCP receive path runs in softirq, inside the
#                 system calls of whoever sent the packet. It is measured as the whole lab's CPU
#                 time (client + backend + appliance + the ksoftirqd threads) minus the same for
#                 a reference transfer: the same client (plain TCP) and backend moving the same
#                 bytes over a direct veth, nothing in between. What remains is what putting the
#                 appliance in the path cost the machine.
#   mpterm whole  the same whole-machine figure for mpterm (its af_packet receive work, too, is
#                 charged to the peers that sent the frames).
#   anchor proc   HAProxy's process time alone.
# This kernel accounts CPU time by ticks (CONFIG_IRQ_TIME_ACCOUNTING is off): softirq time is
# charged to the task it interrupted. Process figures therefore move the receiver's kernel work
# to the sender; the whole-machine figure does not depend on who is charged. The reference's
# client is plain TCP, so the client's own MPTCP work (DSS options and checksums) counts in both
# appliances' whole-machine figures alike. The machine's whole busy time (/proc/stat) is
# recorded beside it: "other" (busy minus the lab) is everyone else's load during the transfer,
# which the lab figure leaves out. The machine has 2 cores shared with other work: read the
# load average printed with each figure, and compare runs.
set -euo pipefail

SBS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SBS_DIR/../.." && pwd)"
LAB_PREFIX="${LAB_PREFIX:-mptsbs$$}"
# shellcheck source=tests/lab/appliance.sh
source "$REPO_ROOT/tests/lab/appliance.sh"

SIZE_MIB=1000
TRANSFER_SECONDS=120
RUNS=2
CONNECTION_COUNTS="1"
PATH_COUNTS="1 2"
CHECKSUM=1
OUT="$REPO_ROOT/perf/results/lab-side-by-side.json"
TIMESERIES_OUT=""
COMMAND_LINE="bash perf/lab/side-by-side.sh${*:+ $(printf '%q ' "$@")}"
COMMAND_LINE="${COMMAND_LINE% }"

usage() {
    sed -n '2,/^# Environment/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while (($# > 0)); do
    case "$1" in
        --size) SIZE_MIB="$2"; shift 2 ;;
        --seconds) TRANSFER_SECONDS="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --connections) CONNECTION_COUNTS="$2"; shift 2 ;;
        --paths) PATH_COUNTS="$2"; shift 2 ;;
        --checksum) CHECKSUM="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --timeseries-out) TIMESERIES_OUT="$2"; shift 2 ;;
        -h | --help) usage ;;
        *) echo "side-by-side.sh: unknown option $1" >&2; usage ;;
    esac
done
[[ -n "$TIMESERIES_OUT" ]] || TIMESERIES_OUT="${OUT%.json}-timeseries.json"
[[ "$CHECKSUM" == 0 || "$CHECKSUM" == 1 ]] || { echo "--checksum is 1 or 0" >&2; exit 2; }

if [[ $EUID -ne 0 ]]; then
    echo "side-by-side.sh must run as root (namespaces, veth, sysctl)" >&2
    exit 2
fi
for tool in haproxy mptcpize; do
    command -v "$tool" >/dev/null || { echo "$tool missing: bash tests/setup.sh" >&2; exit 2; }
done
[[ -x "$MPTERM_BIN" ]] || {
    echo "no mpterm binary at $MPTERM_BIN (cargo build --release -p mpterm, or MPTERM_BIN=...)" >&2
    exit 2
}

BENCH="$LAB_PYTHON $SBS_DIR/lab_bench.py"
PEER="$REPO_ROOT/tests/lab/peer.py"
RUNS_DIR="$LAB_OUT/side-by-side"
# The reference link: a direct veth between the client and the backend namespaces, offloads off
# like every other veth of the lab, so that a frame costs the same on both.
REF_IF_CLIENT=r0
REF_IF_BACKEND=r1
REF_CLIENT_ADDR=198.18.9.1
REF_BACKEND_ADDR=198.18.9.2

lab_cleanup_hook() {
    appliance_stop
}

# The transfer label and the per-connection byte count of SIZE_MIB over K connections.
transfer_label() {
    local connections="$1"
    if ((connections == 1)); then
        echo "$SIZE_MIB MiB"
    else
        echo "$connections x $((SIZE_MIB / connections)) MiB"
    fi
}

# measure APPLIANCE PATHS RUN CONNECTIONS DIRECTION: one transfer through the running appliance
# (or, for "reference", over the reference link).
measure() {
    local appliance="$1" paths="$2" run="$3" connections="$4" direction="$5"
    local per_conn=$((SIZE_MIB * 1024 * 1024 / connections)) c2b=0 b2c=0
    if [[ "$direction" == upload ]]; then c2b=$per_conn; else b2c=$per_conn; fi
    local name="$appliance-${paths}path-${connections}conn-$direction-run$run"
    local args=(--name "$name" --appliance "$appliance" --transfer "$(transfer_label "$connections")"
        --paths "$paths" --direction "$direction" --run "$run" --connections "$connections"
        --client-ns "$(lab_ns_client)" --backend-ns "$(lab_ns_backend)" --checksum "$CHECKSUM"
        --c2b "$c2b" --b2c "$b2c" --timeout "$TRANSFER_SECONDS" --peer "$PEER"
        --python "$LAB_PYTHON" --out-dir "$RUNS_DIR/$name")
    if [[ "$appliance" == reference ]]; then
        args+=(--mode tcp --connect "$REF_BACKEND_ADDR:$LAB_BACKEND_PORT"
            --listen "$REF_BACKEND_ADDR:$LAB_BACKEND_PORT" --expect-counter MPCapableSYNTX=0)
    else
        args+=(--appliance-pid "$APPLIANCE_PID" --connect "$LAB_APP_CLIENT_ADDR:$LAB_LISTEN_PORT"
            --listen "$LAB_BACKEND_ADDR:$LAB_BACKEND_PORT" --path-device "$LAB_IF_CLIENT"
            --expect-counter "MPCapableSYNACKRX=$connections" --expect-counter MPCapableFallbackSYNACK=0
            --expect-counter MPCapableDataFallback=0 --expect-counter DataCsumErr=0
            --expect-counter MPFailRx=0 --expect-counter InfiniteMapRx=0
            --expect-counter MPFastcloseRx=0)
        if ((paths == 2)); then
            args+=(--path-device "$LAB_IF_CLIENT_2" --show-counter MPRstRx --show-counter MPJoinSynTx)
            if [[ "$appliance" == mpterm ]]; then
                # mpterm refuses every MP_JOIN with a RST carrying MP_TCPRST (issue 7).
                args+=(--expect-counter MPJoinSynAckRx=0)
            else
                args+=(--expect-counter "MPJoinSynAckRx=$connections"
                    --expect-counter MPJoinSynAckHMacFailure=0)
            fi
        else
            args+=(--expect-counter MPRstRx=0)
        fi
    fi
    # shellcheck disable=SC2086 # BENCH is a command and its script
    $BENCH transfer "${args[@]}" || TRANSFERS_FAILED=$((TRANSFERS_FAILED + 1))
}

reference_link_up() {
    ip -n "$(lab_ns_client)" link add "$REF_IF_CLIENT" type veth peer name "$REF_IF_BACKEND" \
        netns "$(lab_ns_backend)"
    lab_disable_offloads "$(lab_ns_client)" "$REF_IF_CLIENT"
    lab_disable_offloads "$(lab_ns_backend)" "$REF_IF_BACKEND"
    ip -n "$(lab_ns_client)" addr add "$REF_CLIENT_ADDR/24" dev "$REF_IF_CLIENT"
    ip -n "$(lab_ns_backend)" addr add "$REF_BACKEND_ADDR/24" dev "$REF_IF_BACKEND"
    ip -n "$(lab_ns_client)" link set "$REF_IF_CLIENT" up
    ip -n "$(lab_ns_backend)" link set "$REF_IF_BACKEND" up
}

reference_link_down() {
    ip -n "$(lab_ns_client)" link del "$REF_IF_CLIENT" 2>/dev/null || true
}

# One appliance's share of a run: lab up, appliance up, every transfer, everything down.
run_appliance() {
    local appliance="$1" paths="$2" run="$3" connections direction
    LAB_APPLIANCE="$appliance"
    LAB_PATHS="$paths"
    LAB_CHECKSUM="$CHECKSUM"
    lab_up
    if ! appliance_start "$CHECKSUM" "sbs-${paths}path-run$run"; then
        appliance_print_log
        echo "side-by-side: $appliance did not start; its transfers of run $run are missing" >&2
        TRANSFERS_FAILED=$((TRANSFERS_FAILED + 1))
        appliance_stop
        lab_down_quiet
        return 0
    fi
    for connections in $CONNECTION_COUNTS; do
        for direction in upload download; do
            measure "$appliance" "$paths" "$run" "$connections" "$direction"
        done
    done
    # The reference is measured next to the anchor: its appliance idles meanwhile (HAProxy takes
    # no CPU when idle; mpterm's worker would, 3.5 % of a core).
    if [[ "$appliance" == haproxy && "$paths" == "${PATH_COUNTS%% *}" ]]; then
        reference_link_up
        for connections in $CONNECTION_COUNTS; do
            for direction in upload download; do
                measure reference 1 "$run" "$connections" "$direction"
            done
        done
        reference_link_down
    fi
    appliance_stop
    lab_down_quiet
}

main() {
    lab_install_trap
    rm -rf "$RUNS_DIR"
    mkdir -p "$RUNS_DIR" "$(dirname "$OUT")" "$(dirname "$TIMESERIES_OUT")"
    local started_at load
    started_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    load="$(uptime)"
    echo "side-by-side: prefix $LAB_PREFIX, $SIZE_MIB MiB per transfer, runs $RUNS, connections" \
        "[$CONNECTION_COUNTS], paths [$PATH_COUNTS], DSS checksums $CHECKSUM, device" \
        "$LAB_DPDK_DEVICE, mpterm $MPTERM_BIN, HAProxy threads $HAPROXY_THREADS"
    echo "side-by-side: load at start:$load"
    TRANSFERS_FAILED=0
    local run paths
    for ((run = 1; run <= RUNS; run++)); do
        for paths in $PATH_COUNTS; do
            run_appliance mpterm "$paths" "$run"
            run_appliance haproxy "$paths" "$run"
        done
    done
    echo "side-by-side: load at end:$(uptime)"
    local report_rc=0
    # shellcheck disable=SC2086 # BENCH is a command and its script; the counts are words
    $BENCH report --runs-dir "$RUNS_DIR" --out "$OUT" --timeseries-out "$TIMESERIES_OUT" \
        --repo "$REPO_ROOT" --started-at "$started_at" --command "$COMMAND_LINE" \
        --size-mib "$SIZE_MIB" --checksum "$CHECKSUM" --runs "$RUNS" \
        --connections $CONNECTION_COUNTS --dpdk-device "$LAB_DPDK_DEVICE" \
        --haproxy-threads "$HAPROXY_THREADS" --load-at-start "$load" || report_rc=$?
    echo "side-by-side: wrote $OUT and $TIMESERIES_OUT (raw transfers in $RUNS_DIR)"
    ((TRANSFERS_FAILED == 0 && report_rc == 0))
}

main
