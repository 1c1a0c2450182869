#!/usr/bin/env bash
# mpterm-gen's lab test: the load generator on DPDK (net_af_packet over a veth end) against
# peers nobody on the team wrote, every byte checked by both ends.
#
#   bash perf/lab/gen-test.sh [linux] [mpterm]      (both by default)
#
#   linux   Linux's own MPTCP server: `mptcpize run mpterm-gen serve` in its namespace with
#           net.mptcp.enabled=1 and checksum_enabled=1.
#             ns ${GEN_PREFIX}-client                      ns ${GEN_PREFIX}-server
#             [mpterm-gen: net_af_packet0,iface=g0] g0 ==veth== g1 198.18.0.2/24 (Linux MPTCP)
#   mpterm  mpterm itself in between, a plain TCP `mpterm-gen serve` as its backend:
#             ns -client [mpterm-gen on g0] g0 ==veth== a0 [mpterm 198.18.0.2] (ns -app)
#             b0 [mpterm 198.19.0.1] ==veth== s0 198.19.0.2/24 (ns -backend, Linux TCP)
#
# Each runs upload, download and both: GEN_CONNECTIONS (8) connections at once, GEN_SIZE
# (16MiB) each way the direction says, DSS checksums on. A transfer passes when
#   - mpterm-gen exits 0: every connection completed, every download byte matched the pattern,
#     every upload byte was acknowledged, no fallback, DSS checksums in use (its JSON report is
#     read back to check each of these, and the byte totals);
#   - the server exits 0: it identified every upload stream and matched every byte of it, and
#     sent its download;
#   - (linux) the server namespace's MPTcpExt counters moved as they must: MPCapableSYNRX by
#     exactly GEN_CONNECTIONS, and no DataCsumErr, MPCapableFallbackACK, MPFailRx, MPRstRx or
#     MPFastcloseRx;
#   - (mpterm) mpterm counted no DSS checksum failure or fallback (its final statistics).
# The last line is "N passed, M failed" (what tests/run-all.sh adds up).
#
# Veth offloads: every end is switched off (tx checksum, TSO, GSO, GRO, rx checksum) with
# tests/lab/lab.sh's lab_disable_offloads, so the kernel sends only complete, full-checksum,
# MTU-sized frames to DPDK, and verifies every checksum DPDK's side computed (LAB.md).
# The ends DPDK opens carry no address and no IPv6, so that no kernel answers for them.
#
# Environment: GEN_BIN (mpterm-gen), MPTERM_BIN (mpterm); each is built with cargo (release,
# CARGO_TARGET_DIR or target/) unless given, GEN_CONNECTIONS, GEN_SIZE, GEN_SEED, GEN_PREFIX (namespace prefix,
# default gen<pid>), GEN_TIMEOUT (seconds per transfer, 120), GEN_DEVARGS (extra af_packet
# devargs, default framecnt=4096 as the lab's mpterm uses). Reports and logs land in
# tests/lab/out/GEN_PREFIX/.

set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO" || exit 1
if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
# Built here (cargo does nothing when they are up to date) unless given.
BUILD_GEN=$([[ -n "${GEN_BIN:-}" ]] && echo no || echo yes)
BUILD_MPTERM=$([[ -n "${MPTERM_BIN:-}" ]] && echo no || echo yes)
GEN_BIN="${GEN_BIN:-$TARGET_DIR/release/mpterm-gen}"
MPTERM_BIN="${MPTERM_BIN:-$TARGET_DIR/release/mpterm}"
GEN_CONNECTIONS="${GEN_CONNECTIONS:-8}"
GEN_SIZE="${GEN_SIZE:-16MiB}"
GEN_SEED="${GEN_SEED:-7}"
# Another seed for the server makes every byte wrong: every transfer must then fail.
GEN_SERVER_SEED="${GEN_SERVER_SEED:-$GEN_SEED}"
GEN_PREFIX="${GEN_PREFIX:-gen$$}"
GEN_TIMEOUT="${GEN_TIMEOUT:-120}"
GEN_DEVARGS="${GEN_DEVARGS-framecnt=4096}"
OUT="$REPO/tests/lab/out/$GEN_PREFIX"
EAL=(--no-huge -m 512 --no-pci --no-shconf)

# Only lab_disable_offloads is used; sourcing defines functions and variables, nothing runs.
# shellcheck source=tests/lab/lab.sh
source "$REPO/tests/lab/lab.sh"

NS_CLIENT="$GEN_PREFIX-client"
NS_SERVER="$GEN_PREFIX-server"
NS_APP="$GEN_PREFIX-app"
NS_BACKEND="$GEN_PREFIX-backend"
CLIENT_ADDR=198.18.0.1
SERVER_ADDR=198.18.0.2
BACKEND_SIDE_ADDR=198.19.0.1
BACKEND_ADDR=198.19.0.2
LISTEN_PORT=5000
BACKEND_PORT=6000

passed=0
failed=0
pids=()

log() { echo "[gen-test] $*" >&2; }

cleanup() {
    local pid ns
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null
    done
    for ns in "$NS_CLIENT" "$NS_SERVER" "$NS_APP" "$NS_BACKEND"; do
        [[ -e "/run/netns/$ns" ]] && ip netns del "$ns"
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The size in bytes (the same units mpterm-gen reads).
size_bytes() {
    local text="$1" number unit
    number="${text%%[!0-9]*}"
    unit="${text#"$number"}"
    case "$unit" in
        "") echo "$number" ;;
        K) echo $((number * 1000)) ;;
        M) echo $((number * 1000000)) ;;
        G) echo $((number * 1000000000)) ;;
        KiB) echo $((number << 10)) ;;
        MiB) echo $((number << 20)) ;;
        GiB) echo $((number << 30)) ;;
        *) log "unknown unit in $text"; return 1 ;;
    esac
}

build() {
    if [[ "$BUILD_GEN" == yes ]]; then
        cargo build --release -p mpterm-perf --bin mpterm-gen >&2 || return 1
    fi
    [[ -x "$GEN_BIN" ]] || { log "no $GEN_BIN"; return 1; }
}

build_mpterm() {
    if [[ "$BUILD_MPTERM" == yes ]]; then
        cargo build --release -p mpterm >&2 || return 1
    fi
    [[ -x "$MPTERM_BIN" ]] || { log "no $MPTERM_BIN"; return 1; }
}

new_ns() {
    local ns="$1"
    ip netns add "$ns" || return 1
    ip -n "$ns" link set lo up
}

# A veth pair: $1 ns, $2 dev in it; $3 ns, $4 dev in it; offloads off on both ends.
veth() {
    ip -n "$1" link add "$2" type veth peer name "$4" netns "$3" || return 1
    lab_disable_offloads "$1" "$2" && lab_disable_offloads "$3" "$4" || return 1
    ip -n "$1" link set "$2" up && ip -n "$3" link set "$4" up
}

# A namespace whose interface DPDK opens: no IPv6 (no router solicitations, no ND).
dpdk_ns() {
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# Waits until something listens on $2 (addr:port) in namespace $1, 10 s at most.
wait_listening() {
    local ns="$1" address="$2"
    for _ in $(seq 100); do
        ip netns exec "$ns" ss -Hltn "src $address" | grep -q . && return 0
        sleep 0.1
    done
    log "nothing listens on $address in $ns"
    return 1
}

# An absolute MPTcpExt counter of namespace $1 (nstat -a, history untouched).
mptcp_counter() {
    ip netns exec "$1" nstat -asz "MPTcpExt$2" | awk -v name="MPTcpExt$2" '$1 == name { print $2 }'
}

# Checks mpterm-gen's report $1 for direction $2: every connection completed with MPTCP and
# DSS checksums, the byte totals, no checksum failure or fallback. Prints the goodput.
check_report() {
    local report="$1" direction="$2" size
    size="$(size_bytes "$GEN_SIZE")" || return 1
    python3 - "$report" "$direction" "$GEN_CONNECTIONS" "$size" <<'EOF'
import json, sys
path, direction, connections, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
report = json.load(open(path))
r = report["results"][0]
problems = []
def expect(what, got, want):
    if got != want:
        problems.append(f"{what}: {got}, expected {want}")
expect("connections opened", r["connections_opened"], connections)
expect("completed", r["completed"], connections)
expect("failed", r["failed"], 0)
up = size if direction in ("upload", "both") else 0
down = size if direction in ("download", "both") else 0
expect("bytes uploaded", r["bytes_uploaded"], connections * up)
expect("bytes downloaded", r["bytes_downloaded"], connections * down)
counters = r["client_counters"]
for name in ("dss_checksum_failures", "dss_mapping_mismatches", "mptcp_fallbacks", "tcp_resets_by_peer"):
    expect(name, counters[name], 0)
for record in r["connection_records"]:
    n = record["connection"]
    expect(f"connection {n} outcome", record["outcome"], "completed")
    expect(f"connection {n} mptcp", record["mptcp"], True)
    expect(f"connection {n} dss_checksums", record["dss_checksums"], True)
    expect(f"connection {n} uploaded", record["bytes_uploaded"], up)
    expect(f"connection {n} downloaded", record["bytes_downloaded"], down)
if problems:
    more = f"; and {len(problems) - 6} more" if len(problems) > 6 else ""
    print("report: " + "; ".join(problems[:6]) + more)
    sys.exit(1)
hs = r["handshake_ms"]
print(f"upload {r['upload_gbps']:.3f} Gbit/s, download {r['download_gbps']:.3f} Gbit/s, "
      f"{r['seconds']:.2f} s, handshake median {hs['median']:.2f} ms, "
      f"retransmissions {counters['retransmissions']}, gen CPU {r['cpu']['user_s'] + r['cpu']['system_s']:.2f} s")
EOF
}

# Records one transfer's verdict: $1 name, $2 problems (empty when it passed), $3 details.
verdict() {
    if [[ -z "$2" ]]; then
        passed=$((passed + 1))
        echo "PASS $1: $3"
    else
        failed=$((failed + 1))
        echo "FAIL $1: $2 ($3)"
    fi
}

# Runs mpterm-gen in the client namespace for direction $1, report $2; returns its status.
run_gen() {
    local direction="$1" report="$2" vdev="net_af_packet0,iface=g0${GEN_DEVARGS:+,$GEN_DEVARGS}"
    timeout "$GEN_TIMEOUT" ip netns exec "$NS_CLIENT" "$GEN_BIN" --vdev "$vdev" \
        --address "$CLIENT_ADDR/24" --server "$SERVER_ADDR:$LISTEN_PORT" \
        --connections "$GEN_CONNECTIONS" --size "$GEN_SIZE" --direction "$direction" \
        --dss-checksum on --seed "$GEN_SEED" --timeout "$((GEN_TIMEOUT - 5))" \
        --json "$report" --timeseries-json "${report%.json}-timeseries.json" -- "${EAL[@]}" \
        >"${report%.json}.log" 2>&1
}

# Starts `mpterm-gen serve` in namespace $1 on $2 for direction $3 ($4: "mptcp" runs it under
# mptcpize); sets server_pid.
start_server() {
    local ns="$1" listen="$2" direction="$3" mode="$4" download=0 log="$OUT/serve-$5.log"
    [[ "$direction" != upload ]] && download="$GEN_SIZE"
    local command=("$GEN_BIN" serve --listen "$listen" --download "$download" --seed "$GEN_SERVER_SEED"
        --connections "$GEN_CONNECTIONS")
    [[ "$mode" == mptcp ]] && command=(mptcpize run "${command[@]}")
    ip netns exec "$ns" "${command[@]}" >"$log" 2>&1 &
    server_pid=$!
    pids+=("$server_pid")
    wait_listening "$ns" "$listen"
}

# Waits for the server (10 s at most after the generator ended); returns its exit status.
wait_server() {
    local pid="$1"
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$pid" 2>/dev/null
    wait "$pid"
}

linux_scenario() {
    log "linux: namespaces $NS_CLIENT, $NS_SERVER"
    new_ns "$NS_CLIENT" && new_ns "$NS_SERVER" && dpdk_ns "$NS_CLIENT" &&
        veth "$NS_CLIENT" g0 "$NS_SERVER" g1 || return 1
    ip -n "$NS_SERVER" addr add "$SERVER_ADDR/24" dev g1
    ip netns exec "$NS_SERVER" sysctl -qw net.mptcp.enabled=1 net.mptcp.checksum_enabled=1
    local direction name report problems details rc server_rc counter before after
    for direction in upload download both; do
        name="gen-linux-$direction"
        report="$OUT/$name.json"
        problems=""
        declare -A before_counters=()
        for counter in MPCapableSYNRX DataCsumErr MPCapableFallbackACK MPFailRx MPRstRx MPFastcloseRx; do
            before_counters[$counter]="$(mptcp_counter "$NS_SERVER" "$counter")"
        done
        start_server "$NS_SERVER" "$SERVER_ADDR:$LISTEN_PORT" "$direction" mptcp "$name" ||
            { verdict "$name" "server did not start" "$OUT/serve-$name.log"; continue; }
        run_gen "$direction" "$report"
        rc=$?
        wait_server "$server_pid"
        server_rc=$?
        ((rc == 0)) || problems+="mpterm-gen exit $rc: $(grep -m2 -E 'failed|error' "${report%.json}.log" | tr '\n' ' '); "
        ((server_rc == 0)) || problems+="server exit $server_rc: $(grep -m1 -E 'FAILED|error' "$OUT/serve-$name.log" | tr '\n' ' '); "
        if ! details="$(check_report "$report" "$direction")"; then
            problems+="$details; "
            details="$report"
        fi
        for counter in "${!before_counters[@]}"; do
            after="$(mptcp_counter "$NS_SERVER" "$counter")"
            before="${before_counters[$counter]}"
            local want=0
            [[ "$counter" == MPCapableSYNRX ]] && want="$GEN_CONNECTIONS"
            if ((after - before != want)); then
                problems+="server MPTcpExt$counter +$((after - before)), expected +$want; "
            fi
        done
        [[ -z "$problems" ]] && details+="; server MPTcpExtMPCapableSYNRX +$GEN_CONNECTIONS"
        verdict "$name" "$problems" "$details"
        unset before_counters
    done
    ip netns del "$NS_CLIENT"
    ip netns del "$NS_SERVER"
}

# mpterm's configuration for the mpterm scenario.
mpterm_config() {
    local devargs="${GEN_DEVARGS:+,$GEN_DEVARGS}"
    cat <<EOF
# Written by perf/lab/gen-test.sh for prefix $GEN_PREFIX.
[eal]
args = ["--no-huge", "-m", "512", "--no-pci", "--no-shconf",
        "--vdev=net_af_packet0,iface=a0$devargs", "--vdev=net_af_packet1,iface=b0$devargs"]

[[interface]]
name = "client-side"
port = "net_af_packet0"
address = "$SERVER_ADDR/24"

[[interface]]
name = "backend-side"
port = "net_af_packet1"
address = "$BACKEND_SIDE_ADDR/24"

[mptcp]
checksum = "required"

[[proxy]]
listen = "$SERVER_ADDR:$LISTEN_PORT"
backend = "$BACKEND_ADDR:$BACKEND_PORT"
EOF
}

# Waits until mpterm answers ARP for $SERVER_ADDR: the backend namespace cannot reach it, so
# the check is that its log says the worker runs (30 s at most).
wait_mpterm() {
    local log="$1"
    for _ in $(seq 300); do
        grep -q "worker running" "$log" 2>/dev/null && return 0
        kill -0 "$mpterm_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

mpterm_scenario() {
    build_mpterm || { verdict gen-mpterm "mpterm did not build" ""; return 1; }
    log "mpterm: namespaces $NS_CLIENT, $NS_APP, $NS_BACKEND"
    new_ns "$NS_CLIENT" && new_ns "$NS_APP" && new_ns "$NS_BACKEND" &&
        dpdk_ns "$NS_CLIENT" && dpdk_ns "$NS_APP" &&
        veth "$NS_CLIENT" g0 "$NS_APP" a0 && veth "$NS_APP" b0 "$NS_BACKEND" s0 || return 1
    ip -n "$NS_BACKEND" addr add "$BACKEND_ADDR/24" dev s0
    ip -n "$NS_BACKEND" route add default via "$BACKEND_SIDE_ADDR"
    local config="$OUT/mpterm.toml" mpterm_log="$OUT/mpterm.log"
    mpterm_config >"$config"
    "$MPTERM_BIN" --config "$config" --check-config >/dev/null || { verdict gen-mpterm "bad config" "$config"; return 1; }
    ip netns exec "$NS_APP" "$MPTERM_BIN" --config "$config" --stats-interval-ms 0 >"$mpterm_log" 2>&1 &
    mpterm_pid=$!
    pids+=("$mpterm_pid")
    wait_mpterm "$mpterm_log" || { verdict gen-mpterm "mpterm did not start" "$mpterm_log"; return 1; }
    local direction name report problems details rc server_rc
    for direction in upload download both; do
        name="gen-mpterm-$direction"
        report="$OUT/$name.json"
        problems=""
        start_server "$NS_BACKEND" "$BACKEND_ADDR:$BACKEND_PORT" "$direction" tcp "$name" ||
            { verdict "$name" "backend did not start" "$OUT/serve-$name.log"; continue; }
        run_gen "$direction" "$report"
        rc=$?
        wait_server "$server_pid"
        server_rc=$?
        ((rc == 0)) || problems+="mpterm-gen exit $rc: $(grep -m2 -E 'failed|error' "${report%.json}.log" | tr '\n' ' '); "
        ((server_rc == 0)) || problems+="backend exit $server_rc: $(grep -m1 -E 'FAILED|error' "$OUT/serve-$name.log" | tr '\n' ' '); "
        if ! details="$(check_report "$report" "$direction")"; then
            problems+="$details; "
            details="$report"
        fi
        verdict "$name" "$problems" "$details"
    done
    kill -TERM "$mpterm_pid" 2>/dev/null
    wait "$mpterm_pid"
    local totals
    totals="$(grep 'final statistics' "$mpterm_log" | tail -1)"
    local bad
    bad="$(grep -oE '(dss_checksum_failures|dss_mapping_mismatches|mptcp_fallbacks)=[0-9]+' <<<"$totals")"
    verdict gen-mpterm-counters "${bad:+mpterm counted $bad}" "${totals:+mpterm final statistics logged}"
    ip netns del "$NS_CLIENT"
    ip netns del "$NS_APP"
    ip netns del "$NS_BACKEND"
}

main() {
    local scenarios=("$@")
    ((${#scenarios[@]} > 0)) || scenarios=(linux mpterm)
    mkdir -p "$OUT"
    build || { echo "0 passed, 1 failed"; return 1; }
    log "prefix $GEN_PREFIX, $GEN_CONNECTIONS connections x $GEN_SIZE, out $OUT; load: $(uptime)"
    local scenario
    for scenario in "${scenarios[@]}"; do
        case "$scenario" in
            linux) linux_scenario || verdict gen-linux "topology failed" "" ;;
            mpterm) mpterm_scenario || verdict gen-mpterm "topology failed" "" ;;
            *) log "unknown scenario $scenario (linux, mpterm)"; failed=$((failed + 1)) ;;
        esac
    done
    log "load: $(uptime)"
    echo "$passed passed, $failed failed"
    ((failed == 0))
}

main "$@"
