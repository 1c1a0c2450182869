#!/usr/bin/env bash
# Variables set here (APPLIANCE_EXIT, ...) are read by the scripts that source this file.
# shellcheck disable=SC2034
#
# The pluggable appliance of the lab: whatever sits in ns ${LAB_PREFIX}-app between a0 (client
# side) and b0 (backend side) and terminates MPTCP. Sourced by scenarios.sh (it sources lab.sh
# itself); also a small CLI, see the end of the file.
#
#   LAB_APPLIANCE=mpterm          ip netns exec APP $MPTERM_BIN --config $LAB_OUT/mpterm-LABEL.toml
#   LAB_APPLIANCE=kernel-standin  ip netns exec APP python3 peer.py standin-proxy ...
#   LAB_APPLIANCE=haproxy         ip netns exec APP mptcpize run haproxy -db -f $LAB_OUT/haproxy-LABEL.cfg
#                                 (the side-by-side benchmark's anchor, perf/lab/side-by-side.sh)
#
# Interface used by the scenarios (the only thing that differs between appliances):
#   appliance_start CHECKSUM [LABEL]
#                              CHECKSUM is 1 (DSS checksums required) or 0; sets APPLIANCE_PID
#                              (the process whose RSS is sampled) and APPLIANCE_LOG
#                              (out/PREFIX/appliance-KIND-LABEL.log)
#   appliance_alive            true while the appliance process runs
#   appliance_stop             SIGTERM, then SIGKILL after APPLIANCE_STOP_TIMEOUT seconds;
#                              sets APPLIANCE_EXIT_HOW (exited|killed|gone) and APPLIANCE_EXIT
#   appliance_print_log        prints the appliance's log (on failure)

# lab.sh provides the topology's names and addresses; it guards against being sourced twice.
# shellcheck source=tests/lab/lab.sh
source "$(dirname "${BASH_SOURCE[0]}")/lab.sh"

APPLIANCE_REPO_ROOT="$(cd "$LAB_DIR/../.." && pwd)"
MPTERM_BIN="${MPTERM_BIN:-$APPLIANCE_REPO_ROOT/target/release/mpterm}"
APPLIANCE_READY_TIMEOUT="${APPLIANCE_READY_TIMEOUT:-30}"
APPLIANCE_STOP_TIMEOUT="${APPLIANCE_STOP_TIMEOUT:-5}"
APPLIANCE_PID=""
APPLIANCE_LOG=""
APPLIANCE_EXIT_HOW=""
APPLIANCE_EXIT=""
# Extra arguments for the kernel stand-in; only the lab's self-test sets them (to inject faults).
STANDIN_EXTRA_ARGS=()
# The appliance's backend connect (handshake) timeout in milliseconds; empty keeps the
# appliance's default (mpterm's tcp.connect_timeout_ms, 30000; the stand-in's 30 s likewise).
APPLIANCE_CONNECT_TIMEOUT_MS="${APPLIANCE_CONNECT_TIMEOUT_MS:-}"
# HAProxy threads for LAB_APPLIANCE=haproxy: 1 by default, like mpterm's one worker core.
HAPROXY_THREADS="${HAPROXY_THREADS:-1}"

# The DPDK virtual device that opens the veth ends mpterm owns (LAB_DPDK_DEVICE):
#   af_packet  net_af_packetN,iface=IF,framecnt=4096 (default): a TPACKET_V2 mmap'ed ring pair
#              per port, 4096 frames of 2 KiB each way instead of DPDK's 512.
#   af_xdp     net_af_xdpN,iface=IF,start_queue=0,queue_count=1: an AF_XDP socket on the veth's
#              only queue (libxdp attaches its program in native XDP mode on veth; the PMD has no
#              devarg for the generic mode).
# Why af_packet with 4096 frames (perf/lab/device-compare.sh, figures in README.md "Side-by-side
# lab"): on this 2-core machine mpterm shares its core with the peers and everyone else, and a
# 512-frame ring overflows while mpterm waits for the CPU; the client then retransmits what was
# lost. 4096 frames cut the lab's CPU per GiB by 4-7 %, and mpterm's out-of-window drops of
# those retransmissions from up to 17,000 per 1000 MiB transfer under load to at most 150; the
# whole scenario suite passed twice with them. af_xdp does not carry mpterm's data: DPDK 22.11's af_xdp transmit
# copies only the first segment of a chained mbuf and mpterm chains every payload of 128 bytes
# or more, so every data segment arrives with a bad TCP checksum; even a build that copies
# every payload stalled after about 45,000 frames each way (both runs, busy polling on or off).
LAB_DPDK_DEVICE="${LAB_DPDK_DEVICE:-af_packet}"
# Extra devargs appended to every device of LAB_DPDK_DEVICE, e.g. "framecnt=2048" for af_packet
# (blocksz, framesz, framecnt, qdisc_bypass) or "busy_budget=0" for af_xdp (DPDK's guides to
# both PMDs). Unset: the lab's choice above (af_packet: framecnt=4096); empty: DPDK's defaults.
appliance_dpdk_devargs() {
    if [[ -n "${LAB_DPDK_DEVARGS+set}" ]]; then
        echo "$LAB_DPDK_DEVARGS"
    elif [[ "$LAB_DPDK_DEVICE" == af_packet ]]; then
        echo "framecnt=4096"
    fi
}

# Writes the mpterm configuration for this lab. This is the one place that knows mpterm's config
# format (the format the binary reads; README.md "Configuration" documents it).
#   $1 path to write, $2 checksum 1|0
appliance_write_mpterm_config() {
    local path="$1" checksum="$2"
    appliance_mpterm_config "$checksum" >"$path"
}

# Prints the mpterm configuration for this lab; $1 checksum 1|0.
appliance_mpterm_config() {
    local checksum="$1" checksum_mode
    if [[ "$checksum" == 1 ]]; then checksum_mode=required; else checksum_mode=off; fi
    cat <<EOF
# Written by tests/lab/appliance.sh for lab prefix $LAB_PREFIX.
[eal]
# --no-huge: the lab machines have no hugepages; --no-shconf lets several instances run at once.
args = $(appliance_mpterm_eal_args)

[[interface]]
name = "client-side"
port = "$(appliance_mpterm_port 0)"
address = "$LAB_APP_CLIENT_ADDR/24"$(appliance_mpterm_announce_initial)

[[interface]]
name = "backend-side"
port = "$(appliance_mpterm_port 1)"
address = "$LAB_APP_BACKEND_ADDR/24"$(appliance_mpterm_second_path_interface)

[mptcp]
checksum = "$checksum_mode"$(appliance_mpterm_join_initial)$(appliance_mpterm_tcp_section)

[[proxy]]
listen = "$LAB_APP_CLIENT_ADDR:$LAB_LISTEN_PORT"
backend = "$LAB_BACKEND_ADDR:$LAB_BACKEND_PORT"$(appliance_mpterm_ipv6_proxy)$(appliance_mpterm_control_section)
EOF
}

# APPLIANCE_ANNOUNCE_INITIAL=1 (ipv6.sh): path 1's address is announced too, to connections
# opened to another address.
appliance_mpterm_announce_initial() {
    if [[ "${APPLIANCE_ANNOUNCE_INITIAL:-0}" == 1 ]]; then printf '\nannounce = true'; fi
}

# APPLIANCE_IPV6=1 (ipv6.sh): client paths 2.. have an IPv6 address each (lab_path_app_addr6)
# and path 2's takes connections, to the same backend.
appliance_mpterm_ipv6_proxy() {
    [[ "${APPLIANCE_IPV6:-0}" == 1 && "$LAB_PATHS" -ge 2 ]] || return 0
    printf '\n\n[[proxy]]\nlisten = "[%s]:%s"\nbackend = "%s:%s"' \
        "$(lab_path_app_addr6 2)" "$LAB_LISTEN_PORT" "$LAB_BACKEND_ADDR" "$LAB_BACKEND_PORT"
}

# APPLIANCE_CONTROL_SOCKET=PATH (operator.sh): mpterm serves operator commands there
# (`mpterm ctl --socket PATH ...`). Starts with an empty line, like the blocks above.
appliance_mpterm_control_section() {
    [[ -n "${APPLIANCE_CONTROL_SOCKET:-}" ]] || return 0
    printf '\n\n[control]\nsocket = "%s"' "$APPLIANCE_CONTROL_SOCKET"
}

# The [tcp] section, only when a scenario group sets a key of it (APPLIANCE_CONNECT_TIMEOUT_MS).
# Starts with an empty line: it follows the previous block's last line directly.
# APPLIANCE_DENY_JOIN_INITIAL=1 (addaddr.sh): mpterm as behind a load balancer, the C bit set
# and no join to a connection's initial address.
appliance_mpterm_join_initial() {
    if [[ "${APPLIANCE_DENY_JOIN_INITIAL:-0}" == 1 ]]; then printf '\nallow_join_initial_address = false'; fi
}

# APPLIANCE_TCP_KEYS: further [tcp] lines as written (experiments, e.g. "pacing = false" or
# "send_buffer = 4194304", one key per line).
appliance_mpterm_tcp_section() {
    [[ -n "$APPLIANCE_CONNECT_TIMEOUT_MS" || -n "${APPLIANCE_CONGESTION_CONTROL:-}" || -n "${APPLIANCE_TCP_KEYS:-}" ]] || return 0
    printf '\n\n[tcp]'
    [[ -z "$APPLIANCE_CONNECT_TIMEOUT_MS" ]] || printf '\nconnect_timeout_ms = %s' "$APPLIANCE_CONNECT_TIMEOUT_MS"
    [[ -z "${APPLIANCE_CONGESTION_CONTROL:-}" ]] || printf '\ncongestion_control = "%s"' "$APPLIANCE_CONGESTION_CONTROL"
    [[ -z "${APPLIANCE_TCP_KEYS:-}" ]] || printf '\n%s' "$APPLIANCE_TCP_KEYS"
}

# The [[interface]] blocks of client paths 2..LAB_PATHS (lab.sh), nothing with one path. Path k
# is DPDK port k (port 0 is path 1, port 1 the backend side).
appliance_mpterm_second_path_interface() {
    local k
    for ((k = 2; k <= LAB_PATHS; k++)); do
        # Starts with an empty line and ends without a newline: it follows the previous block's
        # last line directly, and the caller's text goes on after it.
        printf '\n\n[[interface]]\nname = "client-side-%s"\nport = "%s"\naddress = "%s/24"' \
            "$k" "$(appliance_mpterm_port "$k")" "$(lab_path_app_addr "$k")"
        # APPLIANCE_ANNOUNCE=1 (addaddr.sh): clients learn this address from ADD_ADDR.
        if [[ "${APPLIANCE_ANNOUNCE:-0}" == 1 ]]; then printf '\nannounce = true'; fi
        if [[ "${APPLIANCE_IPV6:-0}" == 1 ]]; then
            printf '\naddress6 = "%s/64"' "$(lab_path_app_addr6 "$k")"
        fi
    done
}

# The DPDK device name of mpterm's port N (0 client side, 1 backend side, k client path k >= 2).
appliance_mpterm_port() {
    case "$LAB_DPDK_DEVICE" in
        af_xdp) echo "net_af_xdp$1" ;;
        *) echo "net_af_packet$1" ;;
    esac
}

# The --vdev argument of port N on interface IF, for LAB_DPDK_DEVICE.
appliance_mpterm_vdev() {
    local index="$1" iface="$2" devargs
    devargs="$(appliance_dpdk_devargs)"
    case "$LAB_DPDK_DEVICE" in
        af_xdp) echo "--vdev=net_af_xdp$index,iface=$iface,start_queue=0,queue_count=1${devargs:+,$devargs}" ;;
        *) echo "--vdev=net_af_packet$index,iface=$iface${devargs:+,$devargs}" ;;
    esac
}

# The EAL arguments: one virtual device (LAB_DPDK_DEVICE) per veth end the appliance owns.
appliance_mpterm_eal_args() {
    case "$LAB_DPDK_DEVICE" in
        af_packet | af_xdp) ;;
        *)
            lab_log "unknown LAB_DPDK_DEVICE=$LAB_DPDK_DEVICE (af_packet|af_xdp)"
            return 1
            ;;
    esac
    local args='"--no-huge", "-m", "512", "--no-pci", "--no-shconf"'
    args+=", \"$(appliance_mpterm_vdev 0 "$LAB_IF_APP_CLIENT")\""
    args+=", \"$(appliance_mpterm_vdev 1 "$LAB_IF_APP_BACKEND")\""
    local k
    for ((k = 2; k <= LAB_PATHS; k++)); do
        args+=", \"$(appliance_mpterm_vdev "$k" "$(lab_path_if_app "$k")")\""
    done
    echo "[$args]"
}

# Waits until the client namespace gets an ICMP echo reply from the appliance's client-side
# address (mpterm answers ARP and echo itself), bounded by APPLIANCE_READY_TIMEOUT.
appliance_wait_ping() {
    local deadline=$((SECONDS + APPLIANCE_READY_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! appliance_alive; then
            lab_log "appliance exited before it answered ping"
            return 1
        fi
        if lab_exec client ping -c 1 -W 1 "$LAB_APP_CLIENT_ADDR" >/dev/null 2>&1; then
            return 0
        fi
    done
    lab_log "appliance did not answer ping within ${APPLIANCE_READY_TIMEOUT}s"
    return 1
}

# Waits for a file to appear, bounded; used for the ready files peers write after listen().
appliance_wait_file() {
    local path="$1" timeout="$2"
    local deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        [[ -s "$path" ]] && return 0
        sleep 0.05
    done
    return 1
}

appliance_start_kernel_standin() {
    local checksum="$1"
    local ready="$LAB_OUT/standin.ready"
    rm -f "$ready"
    # The stand-in's server side negotiates DSS checksums from its own namespace's sysctl, so it
    # must agree with the client's for "checksum required" to mean the same as with mpterm.
    lab_exec app sysctl -qw net.mptcp.enabled=1 "net.mptcp.checksum_enabled=$checksum"
    # Linux accepts 2 subflows per connection by default; the lab has up to 8 paths (LAB_PATHS).
    lab_exec app ip mptcp limits set subflows "$LAB_MAX_PATHS" add_addr_accepted "$LAB_MAX_PATHS"
    local timeout_args=()
    if [[ -n "$APPLIANCE_CONNECT_TIMEOUT_MS" ]]; then
        local seconds
        seconds="$(awk -v ms="$APPLIANCE_CONNECT_TIMEOUT_MS" 'BEGIN { print ms / 1000 }')"
        timeout_args=(--backend-connect-timeout "$seconds")
    fi
    ip netns exec "$(lab_ns_app)" "$LAB_PYTHON" -u "$LAB_DIR/peer.py" standin-proxy \
        --listen "$LAB_APP_CLIENT_ADDR:$LAB_LISTEN_PORT" \
        --backend "$LAB_BACKEND_ADDR:$LAB_BACKEND_PORT" "${timeout_args[@]}" \
        --ready-file "$ready" "${STANDIN_EXTRA_ARGS[@]}" >"$APPLIANCE_LOG" 2>&1 &
    # `ip netns exec` execs the command, so $! is the proxy itself.
    APPLIANCE_PID=$!
    if ! appliance_wait_file "$ready" "$APPLIANCE_READY_TIMEOUT"; then
        lab_log "kernel stand-in did not start listening"
        return 1
    fi
}

# The anchor of the side-by-side benchmark: what a user would deploy without mpterm. The app
# namespace's Linux kernel terminates MPTCP (DSS checksums as CHECKSUM says, like the stand-in),
# and HAProxy 2.6 in TCP mode relays to the backend. HAProxy has no MPTCP of its own before 3.1;
# `mptcpize run` (LD_PRELOAD of libmptcpwrap) turns its TCP sockets into MPTCP ones, so its
# listener is MPTCP. Its backend connection is MPTCP too and falls back to TCP at the
# handshake, because the backend is plain TCP.
appliance_haproxy_config() {
    local timeout_ms="${APPLIANCE_CONNECT_TIMEOUT_MS:-30000}"
    cat <<EOF
# Written by tests/lab/appliance.sh for lab prefix $LAB_PREFIX.
global
    nbthread $HAPROXY_THREADS
    maxconn 4096

defaults
    mode tcp
    timeout connect ${timeout_ms}ms
    timeout client 300s
    timeout server 300s

frontend mptcp_in
    bind $LAB_APP_CLIENT_ADDR:$LAB_LISTEN_PORT
    default_backend plain_tcp

backend plain_tcp
    server backend $LAB_BACKEND_ADDR:$LAB_BACKEND_PORT
EOF
}

# Waits until an MPTCP socket listens on the appliance's address in the app namespace.
appliance_wait_mptcp_listener() {
    local deadline=$((SECONDS + APPLIANCE_READY_TIMEOUT))
    while ((SECONDS < deadline)); do
        appliance_alive || return 1
        if lab_exec app ss -MlnH | grep -q "$LAB_APP_CLIENT_ADDR:$LAB_LISTEN_PORT"; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

appliance_start_haproxy() {
    local checksum="$1" label="$2"
    local config="$LAB_OUT/haproxy-$label.cfg"
    local tool
    for tool in haproxy mptcpize; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            lab_log "$tool not found (bash tests/setup.sh installs haproxy and mptcpize)"
            return 1
        fi
    done
    appliance_haproxy_config >"$config"
    if ! haproxy -c -q -f "$config" >"$APPLIANCE_LOG" 2>&1; then
        lab_log "haproxy rejected $config: $(tail -n 1 "$APPLIANCE_LOG")"
        return 1
    fi
    # The server side of MPTCP negotiates DSS checksums from its own namespace's sysctl; the
    # path manager's limits let the client's extra subflows (LAB_PATHS) join.
    lab_exec app sysctl -qw net.mptcp.enabled=1 "net.mptcp.checksum_enabled=$checksum"
    lab_exec app ip mptcp limits set subflows 8 add_addr_accepted 8
    # Both `ip netns exec` and `mptcpize run` exec, so $! is HAProxy itself (-db: foreground).
    ip netns exec "$(lab_ns_app)" mptcpize run haproxy -db -f "$config" >"$APPLIANCE_LOG" 2>&1 &
    APPLIANCE_PID=$!
    if ! appliance_wait_mptcp_listener; then
        lab_log "haproxy did not listen (MPTCP) on $LAB_APP_CLIENT_ADDR:$LAB_LISTEN_PORT"
        return 1
    fi
}

appliance_start_mpterm() {
    local checksum="$1" label="$2"
    local config="$LAB_OUT/mpterm-$label.toml"
    if [[ ! -x "$MPTERM_BIN" ]]; then
        lab_log "mpterm binary not found at $MPTERM_BIN (cargo build --release -p mpterm, or set MPTERM_BIN)"
        return 1
    fi
    appliance_write_mpterm_config "$config" "$checksum"
    # mpterm validates its configuration without starting the data plane; a lab whose config
    # the binary rejects fails here, with mpterm's own one-line reason.
    if ! "$MPTERM_BIN" --config "$config" --check-config >"$APPLIANCE_LOG" 2>&1; then
        lab_log "mpterm rejected $config: $(tail -n 1 "$APPLIANCE_LOG")"
        return 1
    fi
    ip netns exec "$(lab_ns_app)" "$MPTERM_BIN" --config "$config" >"$APPLIANCE_LOG" 2>&1 &
    APPLIANCE_PID=$!
    # The ping below starts once the worker polls its ports: an ARP request sent while the EAL
    # still starts (most of a second) goes unanswered, and the client's next one comes a second
    # later.
    local deadline=$((SECONDS + APPLIANCE_READY_TIMEOUT))
    until grep -q 'worker running' "$APPLIANCE_LOG" 2>/dev/null; do
        if ! appliance_alive || ((SECONDS >= deadline)); then
            lab_log "mpterm did not start its worker ($APPLIANCE_LOG)"
            return 1
        fi
        sleep 0.05
    done
}

appliance_start() {
    local checksum="$1" label="${2:-csum$1}"
    mkdir -p "$LAB_OUT"
    APPLIANCE_LOG="$LAB_OUT/appliance-$LAB_APPLIANCE-$label.log"
    : >"$APPLIANCE_LOG"
    case "$LAB_APPLIANCE" in
        kernel-standin) appliance_start_kernel_standin "$checksum" || return 1 ;;
        mpterm) appliance_start_mpterm "$checksum" "$label" || return 1 ;;
        haproxy) appliance_start_haproxy "$checksum" "$label" || return 1 ;;
        *)
            lab_log "unknown LAB_APPLIANCE=$LAB_APPLIANCE"
            return 1
            ;;
    esac
    appliance_wait_ping || return 1
    lab_log "appliance $LAB_APPLIANCE up (pid $APPLIANCE_PID, checksum=$checksum, log $APPLIANCE_LOG)"
}

appliance_alive() {
    [[ -n "$APPLIANCE_PID" ]] && kill -0 "$APPLIANCE_PID" 2>/dev/null
}

# Stops the appliance: SIGTERM, then SIGKILL after APPLIANCE_STOP_TIMEOUT seconds. Leaves in
# APPLIANCE_EXIT_HOW "exited" (by itself after SIGTERM), "killed" (needed SIGKILL) or "gone"
# (had already ended), and in APPLIANCE_EXIT its exit status.
appliance_stop() {
    APPLIANCE_EXIT_HOW=gone
    APPLIANCE_EXIT=""
    [[ -z "$APPLIANCE_PID" ]] && return 0
    if kill -0 "$APPLIANCE_PID" 2>/dev/null; then
        APPLIANCE_EXIT_HOW=exited
        kill -TERM "$APPLIANCE_PID" 2>/dev/null || true
        local deadline=$((SECONDS + APPLIANCE_STOP_TIMEOUT))
        while kill -0 "$APPLIANCE_PID" 2>/dev/null && ((SECONDS < deadline)); do
            sleep 0.1
        done
        if kill -0 "$APPLIANCE_PID" 2>/dev/null; then
            lab_log "appliance pid $APPLIANCE_PID ignored SIGTERM for ${APPLIANCE_STOP_TIMEOUT}s; killing"
            APPLIANCE_EXIT_HOW=killed
            kill -KILL "$APPLIANCE_PID" 2>/dev/null || true
        fi
    fi
    local status=0
    wait "$APPLIANCE_PID" 2>/dev/null || status=$?
    APPLIANCE_EXIT="$status"
    APPLIANCE_PID=""
}

appliance_print_log() {
    [[ -n "$APPLIANCE_LOG" && -f "$APPLIANCE_LOG" ]] || return 0
    echo "----- appliance log $APPLIANCE_LOG (last 60 lines) -----"
    tail -n 60 "$APPLIANCE_LOG"
    echo "----- end of appliance log -----"
}

# CLI for working on mpterm by hand next to a lab brought up with `lab.sh up`:
#   bash tests/lab/appliance.sh config [1|0]   prints the mpterm config the scenarios use
#   bash tests/lab/appliance.sh run [1|0]      runs mpterm in the app namespace in the foreground
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    case "${1:-}" in
        config) appliance_mpterm_config "${2:-1}" ;;
        run)
            mkdir -p "$LAB_OUT"
            appliance_write_mpterm_config "$LAB_OUT/mpterm-manual.toml" "${2:-1}"
            exec ip netns exec "$(lab_ns_app)" "$MPTERM_BIN" --config "$LAB_OUT/mpterm-manual.toml"
            ;;
        *)
            echo "usage: [LAB_PREFIX=mpt] [MPTERM_BIN=...] $0 config|run [1|0]" >&2
            exit 2
            ;;
    esac
fi
