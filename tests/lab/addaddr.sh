#!/usr/bin/env bash
# The ADD_ADDR scenario (issue 7; RFC 8684 section 3.4.1): the client learns mpterm's second
# address only from ADD_ADDR, joins it and sends data on it.
#
#   ns client                                ns app (mpterm)
#   c0 198.18.0.1/24 ==veth== a0 198.18.0.2  (path 1; the client connects here)
#   c1 198.18.1.1/24 ==veth== a1 198.18.1.2  (path 2; interface announce = true)
#
# The two-path lab of multipath.sh, but the client has NO subflow endpoint: its path manager
# only accepts announcements (`ip mptcp limits set subflows 1 add_addr_accepted 1`), and the
# in-kernel path manager joins an announced address from the source address its routing picks
# (198.18.1.1 over c1, the connected route). mpterm runs with `announce = true` on path 2's
# interface (APPLIANCE_ANNOUNCE=1, appliance.sh).
#
# addaddr-2paths: one upload and one download of MULTIPATH_BYTES, each on its own connection,
# byte-exact, with every check of multipath.sh's multipath_transfer (one MP_JOIN per
# connection, on path 2, answered on path 2; no fallback, reset or checksum error), and per
# connection, from the client's MPTcpExt deltas: AddAddr == 1 (our announcement, HMAC valid)
# and EchoAddTx == 1 (its echo); path 2 carried data; mpterm's final statistics:
# mptcp_add_addr_echoed == 2, mptcp_add_addr_bad_hmac == 0, mptcp_joins_established == 2.
#
#   bash tests/lab/addaddr.sh        (root; APPLIANCE=mpterm only: the stand-in announces nothing)
set -euo pipefail

LAB_PREFIX="${LAB_PREFIX:-mptaa$$}"
ADDADDR_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/lab/multipath.sh
source "$ADDADDR_DIR/multipath.sh"

# The client's counters for our announcement and its echo, per connection.
addaddr_check_counters() {
    local dir="$1" direction="$2" out
    out="$dir/$direction/addaddr-counters.txt"
    if peer counters assert --before "$dir/$direction/counters-before.json" \
        --after "$dir/$direction/counters-after.json" \
        --expect AddAddr=1 --expect EchoAddTx=1 --show EchoAdd --show RmAddr >"$out" 2>&1; then
        MP_CHECKED+=("$direction: $(sed 's/^counters: /client ADD_ADDR deltas /' "$out")")
    else
        MP_PROBLEMS+=("$direction: $(tr '\n' ' ' <"$out")")
    fi
}

# NAME, then KEEP_ENDPOINT (1: the client keeps its `subflow` endpoint on path 2) and
# DENY_INITIAL (1: mpterm sets the C bit, as behind a load balancer).
scenario_addaddr() {
    local name="$1" keep_endpoint="${2:-0}" deny_initial="${3:-0}" paths=2
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
    if [[ "$keep_endpoint" == 1 ]]; then
        # The C bit (RFC 8684 section 3.1): the client's path manager, which would join the
        # address it connected to from its path-2 endpoint, joins only the announced one.
        :
    else
        # No endpoint: path 2 is known to the client only by the appliance's ADD_ADDR.
        lab_exec client ip mptcp endpoint flush
    fi
    # With the endpoint, room for two subflows: one to the announced address, and one the
    # endpoint would open to the initial address if the C bit did not forbid it.
    lab_exec client ip mptcp limits set subflows "$((1 + keep_endpoint))" add_addr_accepted 1
    if ! APPLIANCE_ANNOUNCE=1 APPLIANCE_DENY_JOIN_INITIAL="$deny_initial" appliance_start 1 "$name"; then
        appliance_print_log
        appliance_stop
        record FAIL "$name" "not run: appliance $LAB_APPLIANCE did not come up ($APPLIANCE_LOG)" "appliance did not start"
        return 0
    fi

    multipath_transfer "$dir" upload "$paths"
    addaddr_check_counters "$dir" upload
    multipath_transfer "$dir" download "$paths"
    addaddr_check_counters "$dir" download

    appliance_stop
    [[ "$APPLIANCE_EXIT_HOW" == exited && "$APPLIANCE_EXIT" == 0 ]] ||
        MP_PROBLEMS+=("appliance after SIGTERM: $APPLIANCE_EXIT_HOW, status $APPLIANCE_EXIT")

    if ((MP_PATH_BYTES[1] < MULTIPATH_MIN_PATH_BYTES)); then
        MP_PROBLEMS+=("path 2 carried ${MP_PATH_BYTES[1]} bytes, less than $MULTIPATH_MIN_PATH_BYTES")
    fi
    MP_CHECKED+=("client path bytes c0 ${MP_PATH_BYTES[0]} c1 ${MP_PATH_BYTES[1]}")

    local echoed bad joins report
    echoed="$(multipath_mpterm_counter mptcp_add_addr_echoed)"
    bad="$(multipath_mpterm_counter mptcp_add_addr_bad_hmac)"
    joins="$(multipath_mpterm_counter mptcp_joins_established)"
    local refused
    refused="$(multipath_mpterm_counter mptcp_joins_refused)"
    report="mpterm mptcp_add_addr_sent=$(multipath_mpterm_counter mptcp_add_addr_sent) mptcp_add_addr_echoed=$echoed mptcp_add_addr_bad_hmac=$bad mptcp_joins_established=$joins mptcp_joins_refused=$refused"
    if ((echoed == 2 && bad == 0 && joins == 2 && refused == 0)); then
        MP_CHECKED+=("$report")
    else
        MP_PROBLEMS+=("$report, expected 2 echoed, 0 bad, 2 joins, none refused")
    fi

    local short="2 paths, announced address only, 2 x $((MULTIPATH_BYTES / 1024 / 1024)) MiB, wall $((SECONDS - started))s"
    if ((${#MP_PROBLEMS[@]} == 0)); then
        record PASS "$name" "[$short] $(printf '%s ' "${MP_CHECKED[@]}")" "$short"
    else
        record FAIL "$name" "[$short] $(printf '%s; ' "${MP_PROBLEMS[@]}")" "$short"
        appliance_print_log
    fi
}

addaddr_main() {
    if [[ $EUID -ne 0 ]]; then
        echo "addaddr.sh must run as root (namespaces, veth, sysctl)" >&2
        exit 2
    fi
    if [[ "$LAB_APPLIANCE" != mpterm ]]; then
        echo "addaddr.sh: the kernel stand-in announces no address; nothing to run" >&2
        exit 0
    fi
    lab_install_trap
    mkdir -p "$LAB_OUT"
    scenario_addaddr addaddr-2paths 0 0
    scenario_addaddr addaddr-c-bit-2paths 1 1
    print_summary
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    addaddr_main "$@"
fi
