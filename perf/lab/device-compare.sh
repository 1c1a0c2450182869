#!/usr/bin/env bash
# Which DPDK virtual device should the lab give mpterm? The same transfers through mpterm on
# each candidate device, one path, DSS checksums on, every byte checked (perf/lab/lab_bench.py,
# as in side-by-side.sh).
#
#   bash perf/lab/device-compare.sh [--size MiB] [--runs N] [--seconds N]
#                                   [--devices "af_packet af_packet:framecnt=4096 af_xdp"]
#
#   --devices L   candidates (default "af_packet af_packet:framecnt=4096"): DEVICE or
#                 DEVICE:DEVARGS, DEVICE one of appliance.sh's LAB_DPDK_DEVICE values, DEVARGS
#                 appended to every vdev (LAB_DPDK_DEVARGS); DEVICE alone is DPDK's defaults
#                 (af_packet: 512 frames). af_xdp transfers fail with this mpterm (appliance.sh
#                 says why) and each then takes --seconds.
#   --size MiB    bytes per transfer (default 1000); --runs N (default 2), interleaved
#   --seconds N   the bound of one transfer (default 120)
# Environment: MPTERM_BIN, LAB_PREFIX (default mptdev<pid>).
#
# The figures, the choice and why are in README.md ("Side-by-side lab") and beside
# LAB_DPDK_DEVICE in tests/lab/appliance.sh.
set -euo pipefail

DEV_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$DEV_DIR/../.." && pwd)"
LAB_PREFIX="${LAB_PREFIX:-mptdev$$}"
# shellcheck source=tests/lab/appliance.sh
source "$REPO_ROOT/tests/lab/appliance.sh"

SIZE_MIB=1000
RUNS=2
TRANSFER_SECONDS=120
DEVICES="af_packet af_packet:framecnt=4096"
while (($# > 0)); do
    case "$1" in
        --size) SIZE_MIB="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --seconds) TRANSFER_SECONDS="$2"; shift 2 ;;
        --devices) DEVICES="$2"; shift 2 ;;
        *) sed -n '2,/^# Environment/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
[[ $EUID -eq 0 ]] || { echo "device-compare.sh must run as root" >&2; exit 2; }
[[ -x "$MPTERM_BIN" ]] || { echo "no mpterm binary at $MPTERM_BIN" >&2; exit 2; }

RUNS_DIR="$LAB_OUT/device-compare"
lab_cleanup_hook() { appliance_stop; }

# measure_device SPEC RUN: one lab and one mpterm run on the device, upload then download.
measure_device() {
    local spec="$1" run="$2" direction c2b b2c
    LAB_DPDK_DEVICE="${spec%%:*}"
    LAB_DPDK_DEVARGS=""
    [[ "$spec" == *:* ]] && LAB_DPDK_DEVARGS="${spec#*:}"
    LAB_APPLIANCE=mpterm
    LAB_PATHS=1
    lab_up
    local label="${spec//[:=,]/-}"
    if ! appliance_start 1 "dev-$label-run$run"; then
        appliance_print_log
        FAILED=$((FAILED + 1))
        appliance_stop
        lab_down_quiet
        return 0
    fi
    for direction in upload download; do
        c2b=0 b2c=0
        if [[ "$direction" == upload ]]; then c2b=$((SIZE_MIB << 20)); else b2c=$((SIZE_MIB << 20)); fi
        "$LAB_PYTHON" "$DEV_DIR/lab_bench.py" transfer --name "$label-$direction-run$run" \
            --appliance mpterm --appliance-pid "$APPLIANCE_PID" --transfer "$SIZE_MIB MiB" \
            --direction "$direction" --run "$run" --client-ns "$(lab_ns_client)" \
            --backend-ns "$(lab_ns_backend)" --connect "$LAB_APP_CLIENT_ADDR:$LAB_LISTEN_PORT" \
            --listen "$LAB_BACKEND_ADDR:$LAB_BACKEND_PORT" --c2b "$c2b" --b2c "$b2c" \
            --timeout "$TRANSFER_SECONDS" --peer "$REPO_ROOT/tests/lab/peer.py" \
            --python "$LAB_PYTHON" --out-dir "$RUNS_DIR/$label-$direction-run$run" \
            --expect-counter MPCapableSYNACKRX=1 --expect-counter DataCsumErr=0 ||
            FAILED=$((FAILED + 1))
    done
    appliance_stop
    # mpterm's own view of the device: drops at its edge and retransmissions.
    grep -o 'final statistics.*' "$APPLIANCE_LOG" | tr ' ' '\n' |
        grep -E '^(rx_packets|tx_packets|tx_dropped_full|retransmissions|rto_expirations|fast_retransmits|rx_dropped_out_of_window)=' |
        tr '\n' ' ' | sed "s/^/    mpterm on $spec: /"
    echo
    lab_down_quiet
}

main() {
    lab_install_trap
    rm -rf "$RUNS_DIR"
    mkdir -p "$RUNS_DIR"
    echo "device-compare: $SIZE_MIB MiB, runs $RUNS, devices [$DEVICES], mpterm $MPTERM_BIN"
    echo "device-compare: load at start:$(uptime)"
    FAILED=0
    local run spec
    for ((run = 1; run <= RUNS; run++)); do
        for spec in $DEVICES; do
            measure_device "$spec" "$run"
        done
    done
    echo "device-compare: load at end:$(uptime)"
    "$LAB_PYTHON" "$DEV_DIR/lab_bench.py" table --runs-dir "$RUNS_DIR"
    ((FAILED == 0))
}

main
