#!/usr/bin/env bash
# The namespace lab that puts a real Linux MPTCP client and a real Linux TCP backend on either
# side of an MPTCP termination appliance (the facts behind it are in the project's shared
# LAB.md: addresses, offloads, no netem, DPDK without hardware).
#
#   ns ${LAB_PREFIX}-client        ns ${LAB_PREFIX}-app              ns ${LAB_PREFIX}-backend
#   c0 198.18.0.1/24 ==veth== a0  [appliance]  b0 ==veth== s0 198.19.0.2/24
#   c1 198.18.1.1/24 ==veth== a1  (path 2, LAB_PATHS >= 2 only; path k: c<k-1> 198.18.<k-1>.1)
#
# LAB_MIDDLEBOX=1 runs c0's link through a bridge in ns ${LAB_PREFIX}-mbox, where nftables can
# impair it.
#
# The appliance is pluggable (LAB_APPLIANCE):
#   mpterm          the DPDK binary; a0 and b0 carry no address so that no kernel stack answers
#                   for them, and DPDK's net_af_packet PMD opens them.
#   kernel-standin  the Linux kernel itself: a0 198.18.0.2/24, b0 198.19.0.1/24, and a small
#                   MPTCP-listening proxy (peer.py standin-proxy) relays to the backend.
#   haproxy         the side-by-side benchmark's anchor (perf/lab/): addressed like the
#                   stand-in, with HAProxy in TCP mode under mptcpize relaying.
#
# Usable two ways:
#   source tests/lab/lab.sh; lab_up; ...; lab_down     (library; lab_install_trap cleans up on exit)
#   bash tests/lab/lab.sh up|down|status               (CLI; `down` also removes stale leftovers)
#
# Every namespace name starts with LAB_PREFIX (default "mpt"), so several runs with distinct
# prefixes do not collide. Interfaces are created directly inside their namespaces, so their short
# names (c0, a0, b0, s0) never meet in the root namespace either.

# Guard against double sourcing.
if [[ -n "${MPTERM_LAB_SH_LOADED:-}" ]]; then
    # shellcheck disable=SC2317 # reached only when executed twice, not sourced
    return 0 2>/dev/null || exit 0
fi
MPTERM_LAB_SH_LOADED=1

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# LAB_LINKEM=1 runs every client path through the link emulator (linkem.sh).
# shellcheck source=tests/lab/linkem.sh
source "$LAB_DIR/linkem.sh"
LAB_PREFIX="${LAB_PREFIX:-mpt}"
LAB_APPLIANCE="${LAB_APPLIANCE:-${APPLIANCE:-mpterm}}"
# Each lab prefix gets its own output directory, so concurrent runs do not mix their reports.
LAB_OUT="${LAB_OUT:-$LAB_DIR/out/$LAB_PREFIX}"
# The interpreter itself, found once: a `python3` on PATH may be a version manager's shim
# (pyenv's is a shell script that costs about 90 ms per start here), and a scenario starts
# the peers and checkers several times.
LAB_PYTHON="${LAB_PYTHON:-$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || echo python3)}"

# Addresses: RFC 2544 benchmarking range only (LAB.md), never anything else.
LAB_CLIENT_ADDR=198.18.0.1
LAB_APP_CLIENT_ADDR=198.18.0.2
LAB_APP_BACKEND_ADDR=198.19.0.1
LAB_BACKEND_ADDR=198.19.0.2
# The ports are used by the scripts that source this file (appliance.sh, scenarios.sh).
# shellcheck disable=SC2034
LAB_LISTEN_PORT=5000
# shellcheck disable=SC2034
LAB_BACKEND_PORT=6000

# Interface names, one per veth end, each inside its own namespace.
LAB_IF_CLIENT=c0
LAB_IF_APP_CLIENT=a0
LAB_IF_APP_BACKEND=b0
LAB_IF_BACKEND=s0
# The middlebox's bridge ports (LAB_MIDDLEBOX=1 only).
LAB_IF_MBOX_CLIENT=m0
LAB_IF_MBOX_APP=m1

# LAB_PATHS=N (1..8) gives the client N paths to the appliance (LAB.md's "Shape"). Path 1 is
# c0 ==veth== a0 above; path k >= 2 is its own veth pair c<k-1> 198.18.<k-1>.1/24 ==veth== a<k-1>,
# with the appliance's 198.18.<k-1>.2/24 there (mpterm's DPDK port net_af_packet<k>; port 1 is the
# backend side). The client connects to the path-1 address 198.18.0.2 only. Its kernel path
# manager opens one extra subflow per path from 198.18.<k-1>.1 to that same address (a "subflow"
# endpoint on c<k-1>), and a source-address rule (table 100+k) sends it out of c<k-1> via
# 198.18.<k-1>.2, so that it reaches the appliance on path k's own port.
LAB_PATHS="${LAB_PATHS:-1}"
LAB_MAX_PATHS=8
# The Linux peers' TCP congestion control, set in each namespace (lab_up): Linux's default,
# CUBIC, unless told otherwise (e.g. LAB_TCP_CONGESTION_CONTROL=bbr).
export LAB_TCP_CONGESTION_CONTROL="${LAB_TCP_CONGESTION_CONTROL:-cubic}"
# Path 2's client end, for the scripts that use two paths (scenarios.sh, perf/lab/).
# shellcheck disable=SC2034
LAB_IF_CLIENT_2=c1

# Path k's names (1-based): the client's and the appliance's veth end, their addresses and the
# client's routing table for traffic from path k's address.
lab_path_if_client() { echo "c$(($1 - 1))"; }
lab_path_if_app() { echo "a$(($1 - 1))"; }
lab_path_client_addr() { echo "198.18.$(($1 - 1)).1"; }
lab_path_app_addr() { echo "198.18.$(($1 - 1)).2"; }
# IPv6 addresses of path k (ipv6.sh), inside LAB.md's 2001:2::/48: 2001:2:0:<k-1>::1 and ::2.
lab_path_client_addr6() { echo "2001:2:0:$(($1 - 1))::1"; }
lab_path_app_addr6() { echo "2001:2:0:$(($1 - 1))::2"; }
lab_path_table() { echo "$((100 + $1))"; }

# LAB_MIDDLEBOX=1 puts a bridge namespace between the client and the appliance (see
# lab_add_middlebox); 0 (default) joins c0 and a0 directly.
LAB_MIDDLEBOX="${LAB_MIDDLEBOX:-0}"

# Where the running lab remembers who owns it, so that `down` can tell leftovers of a dead run
# from a lab that another run is still using.
LAB_STATE_DIR="${LAB_STATE_DIR:-/run/mpterm-lab}"

lab_ns_client() { echo "${LAB_PREFIX}-client"; }
lab_ns_app() { echo "${LAB_PREFIX}-app"; }
lab_ns_backend() { echo "${LAB_PREFIX}-backend"; }
lab_ns_mbox() { echo "${LAB_PREFIX}-mbox"; }
# Every path's link-emulator namespace name (linkem.sh), whether it exists or not, on one line.
lab_ns_linkem_all() {
    local k
    for ((k = 1; k <= LAB_MAX_PATHS; k++)); do printf '%s ' "$(lab_ns_linkem "$k")"; done
}

lab_log() { echo "[lab] $*" >&2; }

# True for the appliances whose kernel terminates MPTCP (the app namespace's ends carry
# addresses), false for mpterm (DPDK owns the ends).
lab_appliance_is_kernel() {
    [[ "$LAB_APPLIANCE" == kernel-standin || "$LAB_APPLIANCE" == haproxy ]]
}

lab_ns_exists() { [[ -e "/run/netns/$1" ]]; }

# Runs a command inside one of the lab's namespaces: lab_exec client|app|backend CMD...
lab_exec() {
    local which="$1"
    shift
    ip netns exec "${LAB_PREFIX}-${which}" "$@"
}

# A namespace other than the host's may make only the algorithms of the host's (global)
# net.ipv4.tcp_allowed_congestion_control its default (EPERM otherwise, even for root):
# LAB_TCP_CONGESTION_CONTROL is added to that list, which changes nothing else (it is the set
# unprivileged sockets may choose from).
lab_allow_congestion_control() {
    local allowed
    allowed="$(sysctl -n net.ipv4.tcp_allowed_congestion_control)"
    if [[ " $allowed " != *" $LAB_TCP_CONGESTION_CONTROL "* ]]; then
        sysctl -qw "net.ipv4.tcp_allowed_congestion_control=$allowed $LAB_TCP_CONGESTION_CONTROL"
    fi
}

# Switches off every offload that would hand a frame to the other end in a shape a NIC would
# fix up later. Without this, the kernel on c0/s0 sends TCP segments with only a partial
# (pseudo-header) checksum (tx checksum offload) and up to 64 KiB "segments" (TSO/GSO) that
# DPDK's net_af_packet would receive as-is on a0/b0: the appliance would see bad checksums
# and oversize frames no real wire carries. GRO off keeps the receive side frame-by-frame too.
# rx checksumming off makes the client and backend kernels verify every checksum the appliance
# computed in software instead of trusting the veth, so a wrong TCP checksum is caught.
lab_disable_offloads() {
    local ns="$1" dev="$2" feature
    for feature in tx tso gso gro rx; do
        # Not every feature is switchable on every kernel; each one is tried on its own so that
        # one refusal does not leave the rest on. The result is checked below.
        ip netns exec "$ns" ethtool -K "$dev" "$feature" off >/dev/null 2>&1 || true
    done
    local state
    state="$(ip netns exec "$ns" ethtool -k "$dev")"
    if grep -Eq '^(tx-checksumming|tcp-segmentation-offload|generic-segmentation-offload): on' <<<"$state"; then
        lab_log "could not disable offloads on $ns/$dev:"
        grep -E '^(tx-checksumming|tcp-segmentation-offload|generic-segmentation-offload):' <<<"$state" >&2
        return 1
    fi
}

# Sets the client's MPTCP sysctls. checksum: 1 (DSS checksums requested) or 0.
# blackhole_timeout=0 keeps one scenario's losses out of the next: by default, once a connection
# had to drop MP_CAPABLE from its SYN retransmissions (net.mptcp.syn_retrans_before_tcp_fallback,
# kept at its default: that connection still falls back, and its scenario fails), the client's
# kernel stops asking for MPTCP in the whole namespace for an hour (MPCapableSYNTXDisabled),
# and every later scenario would fail for a loss it did not see.
lab_set_client_mptcp() {
    local checksum="$1"
    lab_exec client sysctl -qw net.mptcp.enabled=1 "net.mptcp.checksum_enabled=$checksum" \
        net.mptcp.blackhole_timeout=0
}

# The client path through a middlebox (LAB_MIDDLEBOX=1): c0 ==veth== m0 [br0] m1 ==veth== a0,
# with br0 a plain bridge in ns ${LAB_PREFIX}-mbox. Client and appliance stay on one L2 segment
# (ARP, addresses and routes are unchanged), and the middlebox can impair what it forwards.
# Impairing there, not in the client namespace, is what makes a drop a real loss: a packet that
# the client's own netfilter drops on output is reported back to its TCP as "not sent" and simply
# sent again later, never retransmitted by anyone.
lab_add_middlebox() {
    local client="$1" app="$2" mbox
    mbox="$(lab_ns_mbox)"
    ip netns add "$mbox"
    ip -n "$mbox" link set lo up
    ip netns exec "$mbox" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$client" link add "$LAB_IF_CLIENT" type veth peer name "$LAB_IF_MBOX_CLIENT" netns "$mbox"
    ip -n "$app" link add "$LAB_IF_APP_CLIENT" type veth peer name "$LAB_IF_MBOX_APP" netns "$mbox"
    lab_disable_offloads "$mbox" "$LAB_IF_MBOX_CLIENT"
    lab_disable_offloads "$mbox" "$LAB_IF_MBOX_APP"
    ip -n "$mbox" link add br0 type bridge
    ip -n "$mbox" link set "$LAB_IF_MBOX_CLIENT" master br0
    ip -n "$mbox" link set "$LAB_IF_MBOX_APP" master br0
    ip -n "$mbox" link set "$LAB_IF_MBOX_CLIENT" up
    ip -n "$mbox" link set "$LAB_IF_MBOX_APP" up
    ip -n "$mbox" link set br0 up
}

# Client path K >= 2 (LAB_PATHS), see LAB_PATHS above: lab_add_client_path CLIENT_NS APP_NS K
lab_add_client_path() {
    local client="$1" app="$2" k="$3" client_if app_if client_addr app_addr table
    client_if="$(lab_path_if_client "$k")"
    app_if="$(lab_path_if_app "$k")"
    client_addr="$(lab_path_client_addr "$k")"
    app_addr="$(lab_path_app_addr "$k")"
    table="$(lab_path_table "$k")"
    lab_link_client_path "$client" "$app" "$k" "$client_if" "$app_if"
    lab_disable_offloads "$client" "$client_if"
    lab_disable_offloads "$app" "$app_if"
    ip -n "$client" addr add "$client_addr/24" dev "$client_if"
    ip -n "$client" link set "$client_if" up
    ip -n "$app" link set "$app_if" up
    if lab_appliance_is_kernel; then
        ip -n "$app" addr add "$app_addr/24" dev "$app_if"
    fi
    # A subflow from path k's address to the appliance's path-1 address leaves through path k
    # (its next hop is the appliance's path-k address), not through c0 as the main table says.
    ip -n "$client" route add "$LAB_APP_CLIENT_ADDR/32" via "$app_addr" dev "$client_if" table "$table"
    ip -n "$client" rule add from "$client_addr" table "$table"
    # The kernel path manager: one extra subflow from this address, no announced addresses
    # needed (ip-mptcp(8), LAB.md).
    ip -n "$client" mptcp endpoint add "$client_addr" dev "$client_if" subflow
}

# The link of client path K between CLIENT_IF (client namespace) and APP_IF (app namespace):
# one veth pair, or with LAB_LINKEM=1 two, through the link emulator's namespace (linkem.sh).
#   lab_link_client_path CLIENT_NS APP_NS K CLIENT_IF APP_IF
lab_link_client_path() {
    local client="$1" app="$2" k="$3" client_if="$4" app_if="$5"
    if [[ "$LAB_LINKEM" == 1 ]]; then
        linkem_add_path "$client" "$app" "$k" "$client_if" "$app_if"
    else
        ip -n "$client" link add "$client_if" type veth peer name "$app_if" netns "$app"
    fi
}

# All client paths beyond the first; the path manager may open one subflow per extra path and
# accept as many announced addresses.
lab_add_client_paths() {
    local client="$1" app="$2" k
    ip -n "$client" mptcp limits set subflows "$((LAB_PATHS - 1))" add_addr_accepted "$((LAB_PATHS - 1))"
    for ((k = 2; k <= LAB_PATHS; k++)); do
        lab_add_client_path "$client" "$app" "$k"
    done
}

# Prints "TX RX" byte counts of an interface in one of the lab's namespaces.
lab_if_bytes() {
    local which="$1" dev="$2"
    lab_exec "$which" cat "/sys/class/net/$dev/statistics/tx_bytes" "/sys/class/net/$dev/statistics/rx_bytes" |
        tr '\n' ' '
}

# Drops PERMILLE in 1000 TCP segments at random in the middlebox, in both directions between
# the client and the appliance, with nftables (the project's kernels have no netem, LAB.md).
# ARP and ICMP pass untouched. Needs LAB_MIDDLEBOX=1.
lab_set_path_loss() {
    local permille="$1"
    lab_ns_exists "$(lab_ns_mbox)" || {
        lab_log "path loss needs the middlebox (LAB_MIDDLEBOX=1)"
        return 1
    }
    lab_exec mbox nft -f - <<EOF
table bridge mptlab_loss {
    counter dropped {}
    chain forward_loss {
        type filter hook forward priority 0; policy accept;
        meta l4proto tcp numgen random mod 1000 < $permille counter name "dropped" drop
    }
}
EOF
}

# Prints how many segments the loss rule dropped.
lab_path_loss_report() {
    local packets
    packets="$(lab_exec mbox nft list counter bridge mptlab_loss dropped 2>/dev/null |
        awk '/packets/ { for (i = 1; i <= NF; i++) if ($i == "packets") print $(i + 1) }')"
    echo "middlebox dropped ${packets:-?} TCP segments"
}

lab_clear_path_loss() {
    lab_exec mbox nft delete table bridge mptlab_loss 2>/dev/null || true
}

# Prints the packet count of a named nftables counter in one of the lab's namespaces (empty if
# the table is gone; never fails): lab_nft_counter_packets mbox|backend FAMILY TABLE COUNTER
lab_nft_counter_packets() {
    local which="$1" family="$2" table="$3" counter="$4" listing
    listing="$(lab_exec "$which" nft list counter "$family" "$table" "$counter" 2>/dev/null)" || return 0
    awk '/packets/ { for (i = 1; i <= NF; i++) if ($i == "packets") print $(i + 1) }' <<<"$listing"
}

# The loss that used to make mpterm reset (issue 5): the end of each MPTCP handshake lost once,
# so that the appliance sees the client's data before the client's key. In the middlebox, for
# every client->appliance flow (client address and port), segments that are not SYNs and carry
# MP_CAPABLE (subtype 0) are dropped once, each counted:
#   - the third ACK (MP_CAPABLE of length 20: both keys, no data-level length), once per flow;
#   - the first transmission of every data segment carrying MP_CAPABLE (length 22, or 24 with a
#     DSS checksum), told apart by sequence number, so that its retransmission passes.
# Not just the first data segment: the Linux client (6.18 here) repeats MP_CAPABLE on every
# segment of its first data skb (five of them in a capture), so the key would arrive with the
# second. The segments after those carry only DSS and arrive first. Per-flow dynamic sets
# remember which flows lost their third ACK, which sequence numbers were dropped, and which
# flows lost data. Needs LAB_MIDDLEBOX=1.
lab_set_mpc_oneshot_drop() {
    lab_ns_exists "$(lab_ns_mbox)" || {
        lab_log "the MP_CAPABLE drop needs the middlebox (LAB_MIDDLEBOX=1)"
        return 1
    }
    local mpc="ip daddr $LAB_APP_CLIENT_ADDR tcp dport $LAB_LISTEN_PORT tcp flags & (syn | rst) == 0 tcp option mptcp subtype 0"
    local flow="ip saddr . tcp sport"
    lab_exec mbox nft -f - <<EOF
table bridge mptlab_mpc_drop {
    counter third_acks_dropped {}
    counter data_dropped {}
    set third_ack_lost { typeof $flow; flags dynamic, timeout; timeout 10m; }
    set data_seen { typeof $flow . tcp sequence; flags dynamic, timeout; timeout 10m; }
    set data_lost { typeof $flow; flags dynamic, timeout; timeout 10m; }
    chain forward_mpc_drop {
        type filter hook forward priority 0; policy accept;
        $mpc tcp option mptcp length 20 $flow @third_ack_lost accept
        $mpc tcp option mptcp length 20 add @third_ack_lost { $flow } counter name "third_acks_dropped" drop
        $mpc tcp option mptcp length != 20 $flow . tcp sequence @data_seen accept
        $mpc tcp option mptcp length != 20 add @data_seen { $flow . tcp sequence } add @data_lost { $flow } counter name "data_dropped" drop
    }
}
EOF
}

# Prints "THIRD_ACKS DATA_SEGMENTS FLOWS_THAT_LOST_DATA" for the MP_CAPABLE drop.
lab_mpc_drop_report() {
    local acks data flows
    acks="$(lab_nft_counter_packets mbox bridge mptlab_mpc_drop third_acks_dropped)"
    data="$(lab_nft_counter_packets mbox bridge mptlab_mpc_drop data_dropped)"
    # Every element of the set is one client address and port.
    flows="$(lab_exec mbox nft list set bridge mptlab_mpc_drop data_lost 2>/dev/null |
        grep -o "$LAB_CLIENT_ADDR \. [0-9]*" | sort -u | wc -l)" || true
    echo "${acks:-?} ${data:-?} ${flows:-?}"
}

lab_clear_mpc_drop() {
    lab_exec mbox nft delete table bridge mptlab_mpc_drop 2>/dev/null || true
}

# A backend that does not answer: the backend namespace's own input hook drops every SYN to
# the backend port, counted, so the appliance's handshake toward it times out (or, once the
# rule is removed, a retransmitted SYN gets through).
lab_set_backend_silent() {
    lab_exec backend nft -f - <<EOF
table inet mptlab_silent {
    counter dropped_syns {}
    chain input_silent {
        type filter hook input priority 0; policy accept;
        tcp dport $LAB_BACKEND_PORT tcp flags & (syn | ack) == syn counter name "dropped_syns" drop
    }
}
EOF
}

# Prints how many SYNs the silent backend dropped.
lab_backend_silent_count() {
    lab_nft_counter_packets backend inet mptlab_silent dropped_syns
}

lab_clear_backend_silent() {
    lab_exec backend nft delete table inet mptlab_silent 2>/dev/null || true
}

# Starts a packet capture (headers only) inside one of the lab's namespaces and waits until it
# listens; prints its pid. lab_pcap_start client|backend|... DEV FILE
lab_pcap_start() {
    local which="$1" dev="$2" file="$3" i
    ip netns exec "${LAB_PREFIX}-${which}" tcpdump -i "$dev" -s 200 -U -n -w "$file" \
        >/dev/null 2>"$file.log" &
    local pid=$!
    for ((i = 0; i < 50; i++)); do
        grep -q 'listening on' "$file.log" 2>/dev/null && break
        sleep 0.05
    done
    echo "$pid"
}

lab_pcap_stop() {
    local pid="$1"
    [[ -n "$pid" ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Keeps the output of the LAB_KEEP_RUNS most recent runs under out/ (every run has its own
# directory there) and removes older ones, so repeated runs do not pile up.
LAB_KEEP_RUNS="${LAB_KEEP_RUNS:-20}"
lab_prune_old_output() {
    local root="$LAB_DIR/out" old
    [[ -d "$root" ]] || return 0
    while IFS= read -r old; do
        [[ -n "$old" && "$old" != "$LAB_OUT" ]] && rm -rf -- "$old"
    done < <(find "$root" -mindepth 1 -maxdepth 1 -type d -name 'mpt*' -printf '%T@ %p\n' |
        sort -rn | tail -n +"$((LAB_KEEP_RUNS + 1))" | cut -d' ' -f2-)
}

# Brings the topology up. Idempotent in the sense that an existing lab with the same prefix is
# torn down first. Arguments: none; reads LAB_APPLIANCE and LAB_CHECKSUM (default 1).
lab_up() {
    local checksum="${LAB_CHECKSUM:-1}"
    local client app backend
    client="$(lab_ns_client)"
    app="$(lab_ns_app)"
    backend="$(lab_ns_backend)"

    if ! [[ "$LAB_PATHS" =~ ^[1-9]$ ]] || ((LAB_PATHS > LAB_MAX_PATHS)); then
        lab_log "LAB_PATHS=$LAB_PATHS: 1..$LAB_MAX_PATHS client paths"
        return 1
    fi
    if [[ "$LAB_MIDDLEBOX" == 1 && "$LAB_LINKEM" == 1 ]]; then
        lab_log "LAB_MIDDLEBOX=1 and LAB_LINKEM=1 both put something on path 1: choose one"
        return 1
    fi
    lab_down_quiet
    lab_prune_old_output
    mkdir -p "$LAB_OUT" "$LAB_STATE_DIR"
    echo "$$" >"$LAB_STATE_DIR/$LAB_PREFIX.owner"

    lab_allow_congestion_control
    ip netns add "$client"
    ip netns add "$app"
    ip netns add "$backend"
    local ns
    for ns in "$client" "$app" "$backend"; do
        ip -n "$ns" link set lo up
        # Every Linux peer uses LAB_TCP_CONGESTION_CONTROL (default cubic, Linux's own
        # default), whatever the host's: a new namespace inherits the host's, and a host set
        # to BBR would make "Linux" in every comparison mean BBR.
        ip netns exec "$ns" sysctl -qw "net.ipv4.tcp_congestion_control=$LAB_TCP_CONGESTION_CONTROL"
    done

    # Created inside their namespaces directly: no transient name in the root namespace.
    if [[ "$LAB_MIDDLEBOX" == 1 ]]; then
        lab_add_middlebox "$client" "$app"
    else
        lab_link_client_path "$client" "$app" 1 "$LAB_IF_CLIENT" "$LAB_IF_APP_CLIENT"
    fi
    ip -n "$backend" link add "$LAB_IF_BACKEND" type veth peer name "$LAB_IF_APP_BACKEND" netns "$app"

    lab_disable_offloads "$client" "$LAB_IF_CLIENT"
    lab_disable_offloads "$app" "$LAB_IF_APP_CLIENT"
    lab_disable_offloads "$app" "$LAB_IF_APP_BACKEND"
    lab_disable_offloads "$backend" "$LAB_IF_BACKEND"

    ip -n "$client" addr add "$LAB_CLIENT_ADDR/24" dev "$LAB_IF_CLIENT"
    ip -n "$backend" addr add "$LAB_BACKEND_ADDR/24" dev "$LAB_IF_BACKEND"
    ip -n "$client" link set "$LAB_IF_CLIENT" up
    ip -n "$backend" link set "$LAB_IF_BACKEND" up
    ip -n "$app" link set "$LAB_IF_APP_CLIENT" up
    ip -n "$app" link set "$LAB_IF_APP_BACKEND" up
    ip -n "$client" route add default via "$LAB_APP_CLIENT_ADDR" dev "$LAB_IF_CLIENT"
    ip -n "$backend" route add default via "$LAB_APP_BACKEND_ADDR" dev "$LAB_IF_BACKEND"

    # The app namespace must never route between the two sides by itself: only the appliance
    # relays. IPv6 is off there so that the kernel sends no router/neighbour solicitations on
    # the DPDK-owned ends.
    ip netns exec "$app" sysctl -qw net.ipv4.ip_forward=0
    ip netns exec "$app" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    case "$LAB_APPLIANCE" in
        kernel-standin | haproxy)
            ip -n "$app" addr add "$LAB_APP_CLIENT_ADDR/24" dev "$LAB_IF_APP_CLIENT"
            ip -n "$app" addr add "$LAB_APP_BACKEND_ADDR/24" dev "$LAB_IF_APP_BACKEND"
            ;;
        mpterm) ;;
        *)
            lab_log "unknown LAB_APPLIANCE=$LAB_APPLIANCE (kernel-standin|haproxy|mpterm)"
            return 1
            ;;
    esac

    if ((LAB_PATHS > 1)); then
        lab_add_client_paths "$client" "$app"
    fi

    lab_set_client_mptcp "$checksum"
    lab_log "up: prefix=$LAB_PREFIX appliance=$LAB_APPLIANCE checksum=$checksum middlebox=$LAB_MIDDLEBOX paths=$LAB_PATHS linkem=$LAB_LINKEM"
}

# Removes the lab with the current prefix. Never fails: it is what traps call.
lab_down_quiet() {
    local ns linkem_namespaces
    read -ra linkem_namespaces <<<"$(lab_ns_linkem_all)"
    for ns in "$(lab_ns_client)" "$(lab_ns_mbox)" "${linkem_namespaces[@]}" "$(lab_ns_app)" "$(lab_ns_backend)"; do
        if lab_ns_exists "$ns"; then
            lab_kill_ns_processes "$ns"
            # Deleting the namespace destroys the veth ends it holds, and their peers with them.
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
    rm -f "$LAB_STATE_DIR/$LAB_PREFIX.owner" 2>/dev/null || true
}

lab_down() {
    lab_down_quiet
    lab_log "down: prefix=$LAB_PREFIX"
}

# Ends every process still running inside a namespace (a stand-in proxy, a peer left behind by a
# failed scenario), TERM first, KILL after a short grace, each by its own pid.
lab_kill_ns_processes() {
    local ns="$1" pid pids
    pids="$(ip netns pids "$ns" 2>/dev/null || true)"
    [[ -z "$pids" ]] && return 0
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
    local i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        pids="$(ip netns pids "$ns" 2>/dev/null || true)"
        [[ -z "$pids" ]] && return 0
        sleep 0.2
        : "$i"
    done
    for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
}

# Removes every lab whose owner process is gone (or that has no owner record), whatever its
# prefix: the leftovers of runs that were killed before their trap could run.
lab_down_stale() {
    local ns prefix owner
    while read -r ns _; do
        # linkem without a number: the one emulator namespace of older checkouts.
        [[ "$ns" =~ ^(.+)-(client|mbox|linkem[1-9]?|app|backend)$ ]] || continue
        prefix="${BASH_REMATCH[1]}"
        [[ "$prefix" == mpt* ]] || continue
        owner="$(cat "$LAB_STATE_DIR/$prefix.owner" 2>/dev/null || true)"
        if [[ -n "$owner" ]] && kill -0 "$owner" 2>/dev/null && [[ "$owner" != "$$" ]]; then
            continue
        fi
        lab_log "removing stale namespace $ns"
        lab_kill_ns_processes "$ns"
        ip netns del "$ns" 2>/dev/null || true
        rm -f "$LAB_STATE_DIR/$prefix.owner" 2>/dev/null || true
    done < <(ip netns list 2>/dev/null)
}

lab_status() {
    local ns linkem_namespaces
    read -ra linkem_namespaces <<<"$(lab_ns_linkem_all)"
    for ns in "$(lab_ns_client)" "$(lab_ns_mbox)" "${linkem_namespaces[@]}" "$(lab_ns_app)" "$(lab_ns_backend)"; do
        if lab_ns_exists "$ns"; then
            echo "== $ns"
            ip -n "$ns" -br addr
            ip -n "$ns" route
            local pids
            pids="$(ip netns pids "$ns" | tr '\n' ' ')"
            [[ -n "$pids" ]] && echo "processes: $pids"
        elif [[ "$ns" != "$(lab_ns_linkem "")"* ]]; then
            echo "== $ns (absent)"
        fi
    done
    if lab_ns_exists "$(lab_ns_client)"; then
        echo "== client MPTCP sysctls"
        lab_exec client sysctl net.mptcp.enabled net.mptcp.checksum_enabled
        echo "== client MPTCP path manager and policy routing"
        ip -n "$(lab_ns_client)" mptcp limits show
        ip -n "$(lab_ns_client)" mptcp endpoint show
        ip -n "$(lab_ns_client)" rule show
    fi
}

# Cleanup on any exit: the caller's own cleanup hook (if defined) runs first, then the lab goes.
lab_on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    if declare -F lab_cleanup_hook >/dev/null; then
        lab_cleanup_hook || true
    fi
    lab_down_quiet
    exit "$rc"
}

lab_install_trap() {
    trap lab_on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

lab_main() {
    set -euo pipefail
    case "${1:-}" in
        up) lab_up ;;
        down)
            lab_down
            lab_down_stale
            ;;
        status) lab_status ;;
        *)
            echo "usage: [LAB_PREFIX=mpt] [LAB_APPLIANCE=mpterm|kernel-standin|haproxy] [LAB_CHECKSUM=1|0] [LAB_MIDDLEBOX=0|1] [LAB_PATHS=1..8] [LAB_LINKEM=0|1] $0 up|down|status" >&2
            return 2
            ;;
    esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    lab_main "$@"
fi
