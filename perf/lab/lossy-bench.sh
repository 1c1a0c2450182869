#!/usr/bin/env bash
# TCP on emulated lossy, reordering and long paths, mpterm against Linux (issue 8, "A
# benchmark"): the conditions of tests/lab/lossy.sh (one client path through mpterm-linkem),
# each measured through mpterm and through the Linux kernel on the same emulated path in the
# same run, upload (client -> backend) and download (backend -> client) apart. It reports; it
# does not fail on a figure (only when a transfer is not byte-exact, which the table shows).
#
#   bash perf/lab/lossy-bench.sh [--runs N] [--size MiB] [--seconds N] [--conditions REGEX]
#                                [--out FILE.json]
#
#   --runs N           repetitions (default 3); the table shows the median of each side
#   --size MiB         bytes per transfer, one way (default: each condition's own, lossy.sh)
#   --seconds N        the bound of one transfer (default 300): a transfer still running then
#                      fails and is left out of the median (the table says which run)
#   --conditions RE    the conditions to measure (regex over lossy.sh's names; default all)
#   --out FILE.json    the result (default perf/results/lab-lossy.json)
#   --commit TEXT      what the result says was measured (default: this checkout's
#                      git rev-parse --short HEAD, +dirty), e.g. the commit MPTERM_BIN was built from
# Environment: MPTERM_BIN, LINKEM_BIN, LAB_PREFIX (default mptlb<pid>), HAPROXY_THREADS (1).
#
# What runs, per run and condition, each side on a fresh lab, a fresh emulator with the same
# seed (the run's number) and a fresh appliance run, first the upload, then the download:
#   mpterm   MPTERM_BIN in the app namespace on DPDK (tests/lab/appliance.sh)
#   Linux    the app namespace's kernel terminates MPTCP and HAProxy 2.6 in TCP mode, one
#            thread, under `mptcpize run`, relays to the backend over the kernel's TCP
#            (LAB_APPLIANCE=haproxy, the anchor of perf/lab/side-by-side.sh): both of Linux's
#            TCP legs, the MPTCP subflow facing the emulated path and the backend connection,
#            are the kernel's, as both of mpterm's are mpterm's
# The two sides alternate (mpterm first in odd runs, Linux first in even ones), so that a
# noisy minute of this shared 2-core machine does not always hit the same one. Client: the
# Linux MPTCP client (tests/lab/peer.py), DSS checksums on for the client and both
# appliances; backend: Linux TCP. Every transfer is checked as side-by-side's are
# (perf/lab/lab_bench.py transfer: length and SHA-256, no fallback, the client's MPTcpExt
# counters, no TCP checksum error, sockets closed) and its goodput is bytes over the time the
# last receiver saw EOF.
#
# Results: FILE.json, kind lab-side-by-side (schema mpterm-perf/1, perf/README.md), one entry
# per condition and direction with both medians, every run's figure, the ratio of the medians,
# whether it meets the issue's goal (mpterm >= 90 % of Linux), the emulator's drop counts per
# run and the appliances' CPU per GiB; mpterm-plot draws it. The transfers' own reports stay
# in tests/lab/out/PREFIX/lossy-bench/.
set -euo pipefail

LB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$LB_DIR/../.." && pwd)"
LAB_PREFIX="${LAB_PREFIX:-mptlb$$}"
# The conditions (LOSSY_CONDITIONS, lossy_condition_*), and through it the lab, the emulator
# and the appliances; its main() runs only when it is executed.
# shellcheck source=tests/lab/lossy.sh
source "$REPO_ROOT/tests/lab/lossy.sh"

RUNS=3
SIZE_MIB=""
TRANSFER_SECONDS=300
CONDITIONS_RE=.
OUT="$REPO_ROOT/perf/results/lab-lossy.json"
COMMIT=""
COMMAND_LINE="bash perf/lab/lossy-bench.sh${*:+ $(printf '%q ' "$@")}"
COMMAND_LINE="${COMMAND_LINE% }"

usage() {
    sed -n '2,/^# Environment/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while (($# > 0)); do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --size) SIZE_MIB="$2"; shift 2 ;;
        --seconds) TRANSFER_SECONDS="$2"; shift 2 ;;
        --conditions) CONDITIONS_RE="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --commit) COMMIT="$2"; shift 2 ;;
        -h | --help) usage ;;
        *) echo "lossy-bench.sh: unknown option $1" >&2; usage ;;
    esac
done

if [[ $EUID -ne 0 ]]; then
    echo "lossy-bench.sh must run as root (namespaces, veth, sysctl)" >&2
    exit 2
fi
for tool in haproxy mptcpize; do
    command -v "$tool" >/dev/null || { echo "$tool missing: bash tests/setup.sh" >&2; exit 2; }
done
for bin in "$MPTERM_BIN" "$LINKEM_BIN"; do
    [[ -x "$bin" ]] || {
        echo "no binary at $bin (cargo build --release -p mpterm -p mpterm-perf, or MPTERM_BIN=/LINKEM_BIN=)" >&2
        exit 2
    }
done

BENCH="$LAB_PYTHON $LB_DIR/lab_bench.py"
PEER="$REPO_ROOT/tests/lab/peer.py"
RUNS_DIR="$LAB_OUT/lossy-bench"
TRANSFERS_FAILED=0

# measure APPLIANCE CONDITION MIB RUN DIRECTION: one transfer through the running appliance.
measure() {
    local appliance="$1" condition="$2" mib="$3" run="$4" direction="$5"
    local bytes=$((mib * 1024 * 1024)) c2b=0 b2c=0
    if [[ "$direction" == upload ]]; then c2b=$bytes; else b2c=$bytes; fi
    local name="$appliance-$condition-$direction-run$run"
    # shellcheck disable=SC2086 # BENCH is a command and its script
    $BENCH transfer --name "$name" --appliance "$appliance" --appliance-pid "$APPLIANCE_PID" \
        --transfer "$mib MiB" --condition "$condition" --direction "$direction" --run "$run" \
        --client-ns "$(lab_ns_client)" --backend-ns "$(lab_ns_backend)" --checksum 1 \
        --c2b "$c2b" --b2c "$b2c" --timeout "$TRANSFER_SECONDS" --peer "$PEER" \
        --python "$LAB_PYTHON" --out-dir "$RUNS_DIR/$name" \
        --connect "$LAB_APP_CLIENT_ADDR:$LAB_LISTEN_PORT" --listen "$LAB_BACKEND_ADDR:$LAB_BACKEND_PORT" \
        --path-device "$LAB_IF_CLIENT" --expect-counter MPCapableSYNACKRX=1 \
        --expect-counter MPCapableFallbackSYNACK=0 --expect-counter MPCapableDataFallback=0 \
        --expect-counter DataCsumErr=0 --expect-counter MPFailRx=0 \
        --expect-counter InfiniteMapRx=0 --expect-counter MPFastcloseRx=0 \
        --show-counter MPTCPRetrans ||
        TRANSFERS_FAILED=$((TRANSFERS_FAILED + 1))
}

# One side's share of a run and condition: lab, emulator and appliance up, the upload and
# the download, everything down; the emulator's log is kept for the report.
#   run_side APPLIANCE RUN CONDITION MIB OPTIONS...
run_side() {
    local appliance="$1" run="$2" condition="$3" mib="$4"
    shift 4
    LAB_APPLIANCE="$appliance"
    LAB_PATHS=1
    LAB_LINKEM=1
    lab_up
    lab_set_client_mptcp 1
    if ! linkem_start 1 --seed "$run" "$@"; then
        echo "lossy-bench: the emulator did not start; $appliance's $condition run $run is missing" >&2
        TRANSFERS_FAILED=$((TRANSFERS_FAILED + 2))
        lab_down_quiet
        return 0
    fi
    if ! appliance_start 1 "lb-$condition-run$run"; then
        appliance_print_log
        echo "lossy-bench: $appliance did not start; its $condition run $run is missing" >&2
        TRANSFERS_FAILED=$((TRANSFERS_FAILED + 2))
        appliance_stop
        linkem_stop_all
        lab_down_quiet
        return 0
    fi
    local direction
    for direction in upload download; do
        measure "$appliance" "$condition" "$mib" "$run" "$direction"
    done
    appliance_stop
    linkem_stop_all
    cp "$LAB_OUT/linkem-p1.log" "$RUNS_DIR/$appliance-$condition-run$run.linkem.log"
    lab_down_quiet
}

main() {
    lab_install_trap
    rm -rf "$RUNS_DIR"
    mkdir -p "$RUNS_DIR" "$(dirname "$OUT")"
    local started_at load condition words name mib sides run side specs=()
    started_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    load="$(uptime)"
    echo "lossy-bench: prefix $LAB_PREFIX, runs $RUNS, conditions /$CONDITIONS_RE/, mpterm $MPTERM_BIN, linkem $LINKEM_BIN"
    echo "lossy-bench: load at start:$load"
    local selected_conditions=()
    for condition in "${LOSSY_CONDITIONS[@]}"; do
        read -ra words <<<"$condition"
        [[ "${words[0]}" =~ $CONDITIONS_RE ]] || continue
        selected_conditions+=("$condition")
        specs+=(--condition "${words[0]}|${words[*]:2}|${SIZE_MIB:-${words[1]}}")
    done
    ((${#selected_conditions[@]} > 0)) || { echo "no condition matches /$CONDITIONS_RE/" >&2; exit 2; }
    for ((run = 1; run <= RUNS; run++)); do
        sides="mpterm haproxy"
        ((run % 2 == 1)) || sides="haproxy mpterm"
        for condition in "${selected_conditions[@]}"; do
            read -ra words <<<"$condition"
            name="${words[0]}"
            mib="${SIZE_MIB:-${words[1]}}"
            for side in $sides; do
                echo "lossy-bench: run $run, $name, $side ($(cut -d' ' -f1-3 /proc/loadavg))"
                run_side "$side" "$run" "$name" "$mib" "${words[@]:2}"
            done
        done
    done
    echo "lossy-bench: load at end:$(uptime)"
    # shellcheck disable=SC2086 # BENCH is a command and its script
    $BENCH lossy-report --runs-dir "$RUNS_DIR" --out "$OUT" --repo "$REPO_ROOT" \
        --started-at "$started_at" --command "$COMMAND_LINE" --runs "$RUNS" \
        --load-at-start "$load" ${COMMIT:+--commit "$COMMIT"} "${specs[@]}"
    echo "lossy-bench: wrote $OUT (raw transfers in $RUNS_DIR); $TRANSFERS_FAILED transfer(s) failed"
    ((TRANSFERS_FAILED == 0))
}

main
