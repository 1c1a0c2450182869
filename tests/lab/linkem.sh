#!/usr/bin/env bash
# The lab's client paths through the link emulator (issue 7, perf/README.md "Link emulator"):
# with LAB_LINKEM=1, lab.sh builds every client path k as two veth pairs through a namespace of
# its own, ${LAB_PREFIX}-linkem<k>, where path k's mpterm-linkem bridges them:
#
#   ns client          ns ${LAB_PREFIX}-linkem<k>                      ns app
#   c<k-1> ==veth== p<k>c [mpterm-linkem: port A p<k>c, port B p<k>a] p<k>a ==veth== a<k-1>
#
# One namespace per emulator, not one for all: DPDK 22.11's af_packet PMD puts each port's
# socket in a PACKET_FANOUT group numbered (pid XOR ifindex) & 0xffff, and fanout groups are
# per network namespace. Two emulators in one namespace collide whenever one's pid XOR one of
# its ifindexes equals the other's (path 2's pid = path 1's pid XOR 6 or 7 with ifindexes 2..5,
# which consecutive start-ups hit about one time in six): the kernel refuses the second
# socket (EINVAL, "could not set PACKET_FANOUT"), that emulator exits, and its path carries
# nothing (seen in multipath-faults.sh as an mpterm that "did not answer ping").
#
# Addresses, routes and the path manager are lab.sh's (LAB_PATHS); the emulator is a bridge
# at L2, so ARP and everything else pass through it. Port A faces the client: --a-to-b-X
# impairs the client's upload, --b-to-a-X the download. Offloads are off on every veth end
# (lab_disable_offloads), as the emulator needs: af_packet hands it frames as they are, and a
# partially checksummed or 64 KiB GSO frame would leave it as such.
#
# Sourced by lab.sh (functions only). Scenarios start the emulators after lab_up:
#   linkem_start K [mpterm-linkem options]    one emulator for path K, e.g. --rate 80mbit --delay 10ms
#   linkem_launch K [options], linkem_wait_started K    the same in two steps (several at once)
#   linkem_cut K / linkem_restore K           SIGUSR1 / SIGUSR2: cut path K both ways, bring it back
#   linkem_stop_all                           SIGTERM to every emulator; their counters land in their logs
#   linkem_cpu_seconds K                      utime+stime of path K's emulator so far
#
#   bash tests/lab/linkem.sh check            two emulated paths (80 Mbit/s 10 ms and 40 Mbit/s
#                                             40 ms), a download through the appliance, each
#                                             emulator's CPU time (see the function)
#   bash tests/lab/linkem.sh fanout-check     why each emulator has a namespace of its own
#                                             (linkem_fanout_check)
#
# Knobs: LINKEM_BIN (target/release/mpterm-linkem), LINKEM_IDLE_SLEEP (50us: the emulator
# sleeps when idle instead of polling a core; 0 polls), LINKEM_EAL (its EAL arguments).

# Guard against double sourcing (lab.sh sources this file; the CLI below sources lab.sh).
if [[ -n "${MPTERM_LINKEM_SH_LOADED:-}" ]]; then
    # shellcheck disable=SC2317 # reached only when executed twice, not sourced
    return 0 2>/dev/null || exit 0
fi
MPTERM_LINKEM_SH_LOADED=1

LINKEM_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LAB_LINKEM="${LAB_LINKEM:-0}"
LINKEM_BIN="${LINKEM_BIN:-$LINKEM_REPO_ROOT/target/release/mpterm-linkem}"
LINKEM_IDLE_SLEEP="${LINKEM_IDLE_SLEEP:-50us}"
# --no-shconf: one EAL per path side by side; 256 MB holds the emulator's default 32767-frame
# pool (about 75 MB).
LINKEM_EAL="${LINKEM_EAL:---no-huge -m 256 --no-pci --no-shconf}"
# Path k's emulator pid, by k.
LINKEM_PIDS=()

# Path K's emulator namespace (see the top of the file for why each path has its own).
lab_ns_linkem() { echo "${LAB_PREFIX}-linkem$1"; }
linkem_if_client() { echo "p$1c"; }
linkem_if_app() { echo "p$1a"; }

# Path K's link through the emulator's namespace: CLIENT_IF (client namespace) ==veth==
# p<K>c, p<K>a ==veth== APP_IF (app namespace). lab.sh calls it instead of one veth pair.
#   linkem_add_path CLIENT_NS APP_NS K CLIENT_IF APP_IF
linkem_add_path() {
    local client="$1" app="$2" k="$3" client_if="$4" app_if="$5" ns dev
    ns="$(lab_ns_linkem "$k")"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    # Nothing of the kernel's own may leave on the emulator's ends.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$client" link add "$client_if" type veth peer name "$(linkem_if_client "$k")" netns "$ns"
    ip -n "$app" link add "$app_if" type veth peer name "$(linkem_if_app "$k")" netns "$ns"
    for dev in "$(linkem_if_client "$k")" "$(linkem_if_app "$k")"; do
        lab_disable_offloads "$ns" "$dev"
        ip -n "$ns" link set "$dev" up
    done
}

# Starts path K's emulator with the given options; its log is LAB_OUT/linkem-pK.log. Waits
# until it runs its loop (its start-up line), at most 20 s.
linkem_start() {
    linkem_launch "$@" && linkem_wait_started "$1"
}

# Launches path K's emulator and returns at once; linkem_wait_started K waits for it. Each
# path's emulator has a namespace of its own, so several may start at the same time.
linkem_launch() {
    local k="$1"
    shift
    if [[ ! -x "$LINKEM_BIN" ]]; then
        lab_log "no mpterm-linkem at $LINKEM_BIN (cargo build --release -p mpterm-perf --bin mpterm-linkem, or LINKEM_BIN=...)"
        return 1
    fi
    local log="$LAB_OUT/linkem-p$k.log" eal
    read -ra eal <<<"$LINKEM_EAL"
    # Emptied here, not only by the redirection below: that one happens in the child, and
    # linkem_wait_started could otherwise read the previous run's start-up line and take an
    # emulator that is still starting, or failing, for a running one.
    : >"$log"
    ip netns exec "$(lab_ns_linkem "$k")" "$LINKEM_BIN" \
        --vdev "net_af_packet0,iface=$(linkem_if_client "$k")" \
        --vdev "net_af_packet1,iface=$(linkem_if_app "$k")" \
        --idle-sleep "$LINKEM_IDLE_SLEEP" --stats-interval 0 "$@" -- "${eal[@]}" >"$log" 2>&1 &
    # `ip netns exec` execs, so $! is the emulator itself.
    LINKEM_PIDS[k]=$!
}

# Waits until path K's emulator runs its loop (its start-up line comes once both ports
# started), at most 20 s; fails, with its log's end, if it exits or does not get there.
linkem_wait_started() {
    local k="$1" log="$LAB_OUT/linkem-p$1.log"
    local deadline=$((SECONDS + 20))
    while ((SECONDS < deadline)); do
        grep -q 'SIGUSR1 cuts the link' "$log" 2>/dev/null && return 0
        kill -0 "${LINKEM_PIDS[k]}" 2>/dev/null || break
        sleep 0.05
    done
    lab_log "mpterm-linkem for path $k did not start ($log):"
    tail -n 5 "$log" >&2
    return 1
}

linkem_cut() { kill -USR1 "${LINKEM_PIDS[$1]}"; }
linkem_restore() { kill -USR2 "${LINKEM_PIDS[$1]}"; }

# utime+stime in seconds of path K's emulator (every thread), from /proc/PID/stat.
linkem_cpu_seconds() {
    local ticks
    ticks="$(awk '{ print $14 + $15 }' "/proc/${LINKEM_PIDS[$1]}/stat")"
    awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}

linkem_stop_all() {
    local k pid
    for k in "${!LINKEM_PIDS[@]}"; do
        pid="${LINKEM_PIDS[k]}"
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    LINKEM_PIDS=()
}

# The check behind the README's figure: two paths through the emulator, shaped like the issue's
# aggregation scenario (path 1 80 Mbit/s 10 ms, path 2 40 Mbit/s 40 ms, each way), the appliance
# (APPLIANCE, default mpterm) in the middle. Each path's RTT must be at least twice its one-way
# delay, a download of LINKEM_CHECK_BYTES (32 MiB) must arrive byte-exact, and the emulators'
# CPU time over the download is printed, per emulator and in all, beside the wall time.
# Exits non-zero when a check fails; prints "N passed, N failed".
# Needs scenarios.sh (the CLI below sources it).
linkem_check() {
    lab_install_trap
    # The trap's hook stops the emulators before the namespaces go (called by lab_on_exit).
    # shellcheck disable=SC2317
    lab_cleanup_hook() {
        appliance_stop
        linkem_stop_all
    }
    local bytes="${LINKEM_CHECK_BYTES:-$((32 * 1024 * 1024))}" name=linkem-2paths-download
    LAB_PATHS=2
    LAB_LINKEM=1
    lab_up
    # Without emulators, appliance or backend the download cannot run; a path's RTT out of
    # bounds is reported, and the download still measured.
    local dir="$LAB_OUT/$name" problems=() checked=() can_run=yes
    mkdir -p "$dir"
    linkem_start 1 --rate 80mbit --delay 10ms --seed 1 || { problems+=("path 1's emulator did not start"); can_run=no; }
    linkem_start 2 --rate 40mbit --delay 40ms --seed 2 || { problems+=("path 2's emulator did not start"); can_run=no; }
    appliance_start 1 "$name" || { problems+=("the appliance did not start"); can_run=no; }
    local k rtt expected
    for k in 1 2; do
        expected=$((k == 1 ? 20 : 80))
        # "rtt min/avg/max/mdev = 20.1/20.3/20.6/0.2 ms": the minimum.
        rtt="$(lab_exec client ping -c 3 -i 0.2 -I "$(lab_path_if_client "$k")" "$(lab_path_app_addr "$k")" |
            sed -nE 's|^rtt [^=]*= ([0-9.]+)/.*|\1|p')" || true
        if [[ -n "$rtt" ]] && awk -v r="$rtt" -v e="$expected" 'BEGIN { exit !(r >= e) }'; then
            checked+=("path $k RTT min ${rtt} ms (>= $expected)")
        else
            problems+=("path $k RTT min '${rtt:-none}' ms, expected >= $expected")
        fi
    done

    ip netns exec "$(lab_ns_backend)" "$LAB_PYTHON" "$SCENARIO_DIR/peer.py" backend \
        --listen "$LAB_BACKEND_ADDR:$LAB_BACKEND_PORT" --count 1 --send-bytes "$bytes" --seed 2000 \
        --timeout 60 --ready-file "$dir/backend.ready" --report "$dir/backend.json" >"$dir/backend.log" 2>&1 &
    local backend_pid=$!
    appliance_wait_file "$dir/backend.ready" 10 || { problems+=("backend did not start listening"); can_run=no; }
    local cpu_before=() cpu_after=() started ended
    for k in 1 2; do cpu_before[k]="$(linkem_cpu_seconds "$k")"; done
    local bytes_before
    read -ra bytes_before <<<"$(multipath_bytes_now)"
    started=$(date +%s.%N)
    if [[ "$can_run" == yes ]]; then
        run_clients "$dir" mptcp 1 0 "$bytes" 55 --send-after-received "$bytes" ||
            problems+=("$CLIENTS_PROBLEM")
    fi
    ended=$(date +%s.%N)
    for k in 1 2; do cpu_after[k]="$(linkem_cpu_seconds "$k")"; done
    [[ "$can_run" == yes ]] || kill -TERM "$backend_pid" 2>/dev/null || true
    wait "$backend_pid" || problems+=("backend failed")
    if peer check --client "$dir/client-0.json" --backend "$dir/backend.json" --send-bytes 0 \
        --recv-bytes "$bytes" --expect-mptcp yes --expect-csum 1 --summary "$dir/summary.json" \
        >"$dir/check.txt" 2>&1; then
        checked+=("$(sed 's/^check: //' "$dir/check.txt")")
    else
        problems+=("$(tr '\n' ' ' <"$dir/check.txt")")
    fi
    local bytes_after
    read -ra bytes_after <<<"$(multipath_bytes_now)"
    checked+=("path bytes (tx+rx) c0 $((bytes_after[0] - bytes_before[0])) c1 $((bytes_after[1] - bytes_before[1]))")
    local wall cpu_report
    wall="$(awk -v a="$started" -v b="$ended" 'BEGIN { printf "%.2f", b - a }')"
    cpu_report="$(awk -v w="$wall" -v a1="${cpu_before[1]}" -v b1="${cpu_after[1]}" \
        -v a2="${cpu_before[2]}" -v b2="${cpu_after[2]}" -v s="$LINKEM_IDLE_SLEEP" 'BEGIN {
            c1 = b1 - a1; c2 = b2 - a2
            printf "emulator CPU over the %.2f s download (idle sleep %s): path 1 %.2f s, path 2 %.2f s, both %.2f s = %.0f %% of one core", w, s, c1, c2, c1 + c2, 100 * (c1 + c2) / w }')"
    checked+=("$cpu_report")
    appliance_stop
    linkem_stop_all
    if ((${#problems[@]} == 0)); then
        record PASS "$name" "$(printf '%s; ' "${checked[@]}")" "wall ${wall}s"
    else
        record FAIL "$name" "$(printf '%s; ' "${problems[@]}")" "wall ${wall}s"
        appliance_print_log
    fi
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

# The check behind one namespace per emulator (see the top of the file): two emulators whose
# pids are chosen, each in a pid namespace of its own (unshare, ns_last_pid), so that DPDK's
# PACKET_FANOUT group numbers (pid XOR ifindex) & 0xffff of their client-side ports are equal.
#   1. As the lab places them (path k's emulator in ${LAB_PREFIX}-linkem<k>): both must start.
#   2. Both paths' veth ends moved into one namespace, as the lab had them before: the second
#      must fail with "could not set PACKET_FANOUT" (the kernel's EINVAL for a group of that
#      number on another device in the same namespace). If it starts, the check proves
#      nothing and fails too.
# Prints "N passed, N failed"; needs no appliance.
linkem_fanout_check() {
    lab_install_trap
    # The emulators run under `unshare`, which does not pass SIGTERM on: every process of
    # their namespaces gets it (lab_kill_ns_processes), then the launchers are reaped.
    linkem_fanout_stop() {
        lab_kill_ns_processes "$(lab_ns_linkem 1)"
        lab_kill_ns_processes "$(lab_ns_linkem 2)"
        local pid
        for pid in "${LINKEM_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
        LINKEM_PIDS=()
    }
    # shellcheck disable=SC2317 # called by lab_on_exit
    lab_cleanup_hook() { linkem_fanout_stop; }
    LAB_PATHS=2
    LAB_LINKEM=1
    lab_up >/dev/null
    local base=1000 results=() passed=0 failed=0
    # Starts path K's emulator in namespace NS as pid PID of a new pid namespace (its shell is
    # pid 1 there, and the next pid after ns_last_pid goes to the emulator).
    linkem_start_as_pid() {
        local k="$1" ns="$2" pid="$3" log="$LAB_OUT/linkem-p$1.log" eal
        read -ra eal <<<"$LINKEM_EAL"
        : >"$log"
        ip netns exec "$ns" unshare --pid --fork --mount-proc sh -c \
            'echo "$1" >/proc/sys/kernel/ns_last_pid; shift; "$@" & wait' sh "$((pid - 1))" \
            "$LINKEM_BIN" --vdev "net_af_packet0,iface=$(linkem_if_client "$k")" \
            --vdev "net_af_packet1,iface=$(linkem_if_app "$k")" --idle-sleep "$LINKEM_IDLE_SLEEP" \
            --stats-interval 0 -- "${eal[@]}" >"$log" 2>&1 &
        LINKEM_PIDS[k]=$!
    }
    linkem_ifindex() { ip netns exec "$1" cat "/sys/class/net/$2/ifindex"; }
    local ns1 ns2 pid2
    ns1="$(lab_ns_linkem 1)"
    ns2="$(lab_ns_linkem 2)"
    # 1. The lab's layout.
    pid2=$((base ^ $(linkem_ifindex "$ns1" p1c) ^ $(linkem_ifindex "$ns2" p2c)))
    linkem_start_as_pid 1 "$ns1" "$base"
    linkem_start_as_pid 2 "$ns2" "$pid2"
    if linkem_wait_started 1 && linkem_wait_started 2; then
        passed=$((passed + 1))
        results+=("PASS fanout-own-namespaces: pids $base and $pid2, equal fanout numbers, both emulators started")
    else
        failed=$((failed + 1))
        results+=("FAIL fanout-own-namespaces: an emulator did not start in its own namespace")
    fi
    linkem_fanout_stop
    # 2. One namespace for both, as before.
    local dev
    for dev in p2c p2a; do ip -n "$ns2" link set "$dev" netns "$ns1"; ip -n "$ns1" link set "$dev" up; done
    pid2=$((base ^ $(linkem_ifindex "$ns1" p1c) ^ $(linkem_ifindex "$ns1" p2c)))
    linkem_start_as_pid 1 "$ns1" "$base"
    linkem_wait_started 1 2>/dev/null || true
    linkem_start_as_pid 2 "$ns1" "$pid2"
    if ! linkem_wait_started 2 2>/dev/null && grep -q 'could not set PACKET_FANOUT' "$LAB_OUT/linkem-p2.log"; then
        passed=$((passed + 1))
        results+=("PASS fanout-shared-namespace: pids $base and $pid2 in one namespace: the second emulator failed, $(grep -o 'could not set PACKET_FANOUT[^:]*:[A-Za-z ]*' "$LAB_OUT/linkem-p2.log" | head -n 1)")
    else
        failed=$((failed + 1))
        results+=("FAIL fanout-shared-namespace: pids $base and $pid2 in one namespace did not collide: the check proves nothing")
    fi
    linkem_fanout_stop
    printf '%s\n' "${results[@]}"
    echo "$passed passed, $failed failed"
    ((failed == 0))
}

# "TX+RX" bytes of the client's two path ends, for linkem_check.
multipath_bytes_now() {
    local k tx rx
    for k in 1 2; do
        read -r tx rx <<<"$(lab_if_bytes client "$(lab_path_if_client "$k")")"
        printf '%s ' "$((tx + rx))"
    done
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    case "${1:-}" in
        check)
            set -euo pipefail
            LAB_PREFIX="${LAB_PREFIX:-mptle$$}"
            # shellcheck source=tests/lab/scenarios.sh
            source "$(dirname "${BASH_SOURCE[0]}")/scenarios.sh"
            linkem_check
            ;;
        fanout-check)
            set -euo pipefail
            LAB_PREFIX="${LAB_PREFIX:-mptlf$$}"
            # shellcheck source=tests/lab/scenarios.sh
            source "$(dirname "${BASH_SOURCE[0]}")/scenarios.sh"
            linkem_fanout_check
            ;;
        *)
            echo "usage: [APPLIANCE=mpterm|kernel-standin] [LINKEM_BIN=...] $0 check|fanout-check" >&2
            exit 2
            ;;
    esac
fi
