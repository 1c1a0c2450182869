#!/usr/bin/env bash
# IPv4 and IPv6 subflows in one MPTCP connection (issue 7), with the Linux MPTCP client:
#
#   ns client                                   ns app (mpterm)
#   c0 198.18.0.1/24     ==veth== a0 198.18.0.2        (path 1, IPv4; interface announce = true)
#   c1 2001:2:0:1::1/64  ==veth== a1 2001:2:0:1::2/64  (path 2, IPv6; listens [2001:2:0:1::2]:5000)
#
# The two-path lab of multipath.sh, with path 2 given IPv6 addresses (the client end keeps its
# IPv4 address too, unused: its subflow endpoint is flushed). The client opens an AF_INET6
# MPTCP socket to [2001:2:0:1::2]:5000, so its initial subflow is IPv6 over c1: the kernel
# resolves mpterm's address by neighbour discovery, which mpterm answers itself. Linux's path
# manager opens subflows only of the family of the address they go to
# (`mptcp_pm_addr_families_match`), and its `subflow` endpoints only toward the address the
# socket connected to; so the IPv4 subflow comes from our ADD_ADDR of 198.18.0.2 (path 1's
# interface is announced, APPLIANCE_ANNOUNCE_INITIAL=1), which the client joins from c0
# (`ip mptcp limits set subflows 1 add_addr_accepted 1`, no endpoint).
#
# ipv6-mixed-2paths: first `ping -6` of mpterm's IPv6 address (ICMPv6 echo after neighbour
# discovery). Then one upload and one download of IPV6_BYTES, each on its own connection,
# byte-exact (length and SHA-256), with, per connection, from the client's MPTcpExt deltas:
# MPCapableSYNACKRX == 1, AddAddr == 1, MPJoinSynAckRx == 1, MPJoinSynAckHMacFailure == 0, no
# fallback, MP_RST, MP_FAIL or checksum error; from nftables in the client namespace: the
# MP_JOIN SYN left through c0 over IPv4 and its SYN-ACK came back there, and the MP_CAPABLE SYN
# left through c1 over IPv6; both paths carried at least IPV6_MIN_PATH_BYTES; mpterm's final
# statistics: 2 joins established, none refused, neighbour solicitations answered.
#
#   bash tests/lab/ipv6.sh        (root; APPLIANCE=mpterm only)
#
# Knobs: IPV6_BYTES (8 MiB), IPV6_MIN_PATH_BYTES (64 KiB), IPV6_TIMEOUT (30 s per transfer),
# and those of scenarios.sh (MPTERM_BIN, LAB_PREFIX, LAB_PCAP=1).
set -euo pipefail

LAB_PREFIX="${LAB_PREFIX:-mptv6$$}"
IPV6_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/lab/multipath.sh
source "$IPV6_DIR/multipath.sh"

IPV6_BYTES="${IPV6_BYTES:-$((8 * 1024 * 1024))}"
IPV6_MIN_PATH_BYTES="${IPV6_MIN_PATH_BYTES:-$((64 * 1024))}"
IPV6_TIMEOUT="${IPV6_TIMEOUT:-30}"

# Counting only (nothing is dropped): MP_CAPABLE SYNs (subtype 0) and MP_JOIN SYNs
# (subtype 1) leaving per path and family, and MP_JOIN SYN-ACKs arriving.
ipv6_count_start() {
    lab_exec client nft delete table inet mptlab_v6 2>/dev/null || true
    lab_exec client nft -f - <<'EOF'
table inet mptlab_v6 {
    counter capable_syn_out_c1_v6 {}
    counter capable_syn_out_other {}
    counter join_syn_out_c0_v4 {}
    counter join_syn_out_other {}
    counter join_synack_in_c0_v4 {}
    chain count_out {
        type filter hook output priority 0; policy accept;
        oifname "c1" meta nfproto ipv6 tcp flags & (syn | ack | rst) == syn tcp option mptcp subtype 0 counter name "capable_syn_out_c1_v6" accept
        tcp flags & (syn | ack | rst) == syn tcp option mptcp subtype 0 counter name "capable_syn_out_other"
        oifname "c0" meta nfproto ipv4 tcp flags & (syn | ack | rst) == syn tcp option mptcp subtype 1 counter name "join_syn_out_c0_v4" accept
        tcp flags & (syn | ack | rst) == syn tcp option mptcp subtype 1 counter name "join_syn_out_other"
    }
    chain count_in {
        type filter hook input priority 0; policy accept;
        iifname "c0" meta nfproto ipv4 tcp flags & (syn | ack | rst) == syn | ack tcp option mptcp subtype 1 counter name "join_synack_in_c0_v4"
    }
}
EOF
}

ipv6_count() {
    local packets
    packets="$(lab_nft_counter_packets client inet mptlab_v6 "$1")"
    echo "${packets:-0}"
}

# One transfer on its own connection to [path 2's IPv6 address]:port: DIRECTION upload or
# download. Appends to MP_PROBLEMS and MP_CHECKED, adds path bytes to MP_PATH_BYTES.
ipv6_transfer() {
    local dir="$1" direction="$2"
    local c2b=0 b2c=0 client_args=() backend_args=()
    if [[ "$direction" == upload ]]; then
        # As multipath.sh: the backend answers only after the upload, and the client waits
        # (bounded) for its joined subflow before sending the rest.
        backend_args=(--send-after-received "$IPV6_BYTES")
        c2b="$IPV6_BYTES"
        client_args=(--wait-subflows 1 --wait-subflows-timeout 3)
    else
        b2c="$IPV6_BYTES"
        client_args=(--send-after-received "$b2c")
    fi
    dir="$dir/$direction"
    mkdir -p "$dir"
    local problems=() checked=()
    peer_in client counters snapshot --out "$dir/counters-before.json" ||
        problems+=("could not read the client's MPTcpExt counters")
    ipv6_count_start || problems+=("could not install the counters")
    local before after
    read -ra before <<<"$(multipath_path_bytes client)"
    local pcap=""
    if [[ "$LAB_PCAP" == 1 ]]; then
        pcap="$(lab_pcap_start client c1 "$dir/client-c1.pcap")"
    fi

    ip netns exec "$(lab_ns_backend)" "$LAB_PYTHON" "$SCENARIO_DIR/peer.py" backend \
        --listen "$LAB_BACKEND_ADDR:$LAB_BACKEND_PORT" --count 1 --send-bytes "$b2c" --seed 2000 \
        "${backend_args[@]}" --timeout "$((IPV6_TIMEOUT + 5))" --ready-file "$dir/backend.ready" \
        --report "$dir/backend.json" >"$dir/backend.log" 2>&1 &
    local backend_pid=$!
    appliance_wait_file "$dir/backend.ready" 10 || problems+=("backend did not start listening")
    if ((${#problems[@]} == 0)); then
        RUN_CLIENTS_CONNECT="[$(lab_path_app_addr6 2)]:$LAB_LISTEN_PORT" \
            run_clients "$dir" mptcp 1 "$c2b" "$b2c" "$IPV6_TIMEOUT" "${client_args[@]}" ||
            problems+=("$CLIENTS_PROBLEM")
    fi
    if kill -0 "$backend_pid" 2>/dev/null && ((${#problems[@]} > 0)); then
        kill -TERM "$backend_pid" 2>/dev/null || true
    fi
    local backend_rc=0
    wait "$backend_pid" || backend_rc=$?
    ((backend_rc == 0)) || problems+=("backend exited $backend_rc")
    [[ -z "$pcap" ]] || lab_pcap_stop "$pcap"
    local leftovers
    if ! leftovers="$(wait_sockets_closed "$CLOSE_SETTLE_TIMEOUT")"; then
        problems+=("connections not closed ${CLOSE_SETTLE_TIMEOUT}s after the transfer: $leftovers")
    fi
    peer_in client counters snapshot --out "$dir/counters-after.json" ||
        problems+=("could not read the client's MPTcpExt counters")

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
    if peer counters assert --before "$dir/counters-before.json" --after "$dir/counters-after.json" \
        --expect MPCapableSYNACKRX=1 --expect MPCapableFallbackSYNACK=0 \
        --expect MPCapableDataFallback=0 --expect AddAddr=1 --expect MPJoinSynAckRx=1 \
        --expect MPJoinSynAckHMacFailure=0 --expect DataCsumErr=0 --expect MPFailRx=0 \
        --expect MPRstRx=0 --expect Tcp.InCsumErrors=0 --show EchoAddTx --show MPJoinSynTx \
        >"$dir/counters.txt" 2>&1; then
        checked+=("$(sed 's/^counters: /client MPTcpExt deltas /' "$dir/counters.txt")")
    else
        problems+=("$(tr '\n' ' ' <"$dir/counters.txt")")
    fi
    local capable_v6 capable_other join_v4 join_other synack_v4
    capable_v6="$(ipv6_count capable_syn_out_c1_v6)"
    capable_other="$(ipv6_count capable_syn_out_other)"
    join_v4="$(ipv6_count join_syn_out_c0_v4)"
    join_other="$(ipv6_count join_syn_out_other)"
    synack_v4="$(ipv6_count join_synack_in_c0_v4)"
    lab_exec client nft delete table inet mptlab_v6 2>/dev/null || true
    local families="MP_CAPABLE SYN out c1/IPv6 $capable_v6 (elsewhere $capable_other), MP_JOIN SYN out c0/IPv4 $join_v4 (elsewhere $join_other), MP_JOIN SYN-ACK in c0/IPv4 $synack_v4"
    if ((capable_v6 >= 1 && capable_other == 0 && join_v4 >= 1 && join_other == 0 && synack_v4 == 1)); then
        checked+=("$families")
    else
        problems+=("$families; expected the initial subflow over IPv6 on c1, one IPv4 join on c0")
    fi
    read -ra after <<<"$(multipath_path_bytes client)"
    local k
    for ((k = 0; k < 2; k++)); do
        MP_PATH_BYTES[k]=$((${MP_PATH_BYTES[k]:-0} + after[k] - before[k]))
    done
    checked+=("path bytes (tx+rx) c0 $((after[0] - before[0])) c1 $((after[1] - before[1]))")
    MP_PROBLEMS+=("${problems[@]/#/$direction: }")
    MP_CHECKED+=("$direction: $(printf '%s; ' "${checked[@]}")")
    if ((${#problems[@]} > 0)); then
        print_failure_logs "$direction" "$dir"
    fi
}

scenario_ipv6_mixed() {
    local name="ipv6-mixed-2paths"
    selected "$name" || return 0
    local dir="$LAB_OUT/$name"
    rm -rf "$dir"
    mkdir -p "$dir"
    MP_PROBLEMS=()
    MP_CHECKED=()
    MP_PATH_BYTES=()
    local started=$SECONDS

    lab_down_quiet
    LAB_PATHS=2
    if ! lab_up; then
        record FAIL "$name" "the 2-path lab did not come up" "lab did not come up"
        return 0
    fi
    lab_set_client_mptcp 1
    # Path 2 becomes IPv6: its client end gets 2001:2:0:1::1 (no duplicate address detection,
    # so that it is usable at once), and the path manager has no endpoint: the IPv4 subflow
    # comes from our ADD_ADDR only.
    lab_exec client ip -6 addr add "$(lab_path_client_addr6 2)/64" dev c1 nodad
    lab_exec client ip mptcp endpoint flush
    lab_exec client ip mptcp limits set subflows 1 add_addr_accepted 1
    if ! APPLIANCE_IPV6=1 APPLIANCE_ANNOUNCE_INITIAL=1 appliance_start 1 "$name"; then
        appliance_print_log
        appliance_stop
        record FAIL "$name" "not run: appliance $LAB_APPLIANCE did not come up ($APPLIANCE_LOG)" "appliance did not start"
        return 0
    fi

    # ICMPv6 echo, after the kernel resolved mpterm's address by neighbour discovery.
    if lab_exec client ping -6 -c 3 -i 0.2 -W 2 "$(lab_path_app_addr6 2)" >"$dir/ping6.txt" 2>&1; then
        MP_CHECKED+=("ping -6: $(grep -o '[0-9]* received' "$dir/ping6.txt")")
    else
        MP_PROBLEMS+=("ping -6 $(lab_path_app_addr6 2): $(tail -n 2 "$dir/ping6.txt" | tr '\n' ' ')")
    fi

    ipv6_transfer "$dir" upload
    ipv6_transfer "$dir" download

    appliance_stop
    [[ "$APPLIANCE_EXIT_HOW" == exited && "$APPLIANCE_EXIT" == 0 ]] ||
        MP_PROBLEMS+=("appliance after SIGTERM: $APPLIANCE_EXIT_HOW, status $APPLIANCE_EXIT")
    local k
    for ((k = 0; k < 2; k++)); do
        if ((MP_PATH_BYTES[k] < IPV6_MIN_PATH_BYTES)); then
            MP_PROBLEMS+=("c$k carried ${MP_PATH_BYTES[k]} bytes, less than $IPV6_MIN_PATH_BYTES")
        fi
    done
    local joins refused solicited report
    joins="$(multipath_mpterm_counter mptcp_joins_established)"
    refused="$(multipath_mpterm_counter mptcp_joins_refused)"
    solicited="$(multipath_mpterm_counter neighbor_solicitations_answered)"
    report="mpterm mptcp_joins_established=$joins mptcp_joins_refused=$refused neighbor_solicitations_answered=$solicited icmp_echo_answered=$(multipath_mpterm_counter icmp_echo_answered)"
    if ((joins == 2 && refused == 0 && solicited >= 1)); then
        MP_CHECKED+=("$report")
    else
        MP_PROBLEMS+=("$report, expected 2 joins, none refused, a solicitation answered")
    fi

    local short="IPv6 initial subflow + IPv4 join, 2 x $((IPV6_BYTES / 1024 / 1024)) MiB, wall $((SECONDS - started))s"
    if ((${#MP_PROBLEMS[@]} == 0)); then
        record PASS "$name" "[$short] $(printf '%s ' "${MP_CHECKED[@]}")" "$short"
    else
        record FAIL "$name" "[$short] $(printf '%s; ' "${MP_PROBLEMS[@]}")" "$short"
        appliance_print_log
    fi
}

ipv6_main() {
    if [[ $EUID -ne 0 ]]; then
        echo "ipv6.sh must run as root (namespaces, veth, sysctl)" >&2
        exit 2
    fi
    if [[ "$LAB_APPLIANCE" != mpterm ]]; then
        echo "ipv6.sh: only mpterm is configured with IPv6 here; nothing to run" >&2
        exit 0
    fi
    lab_install_trap
    mkdir -p "$LAB_OUT"
    scenario_ipv6_mixed
    print_summary
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    ipv6_main "$@"
fi
