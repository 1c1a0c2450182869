#!/usr/bin/env bash
# MP_FAIL through a payload-rewriting middlebox (issue 7; RFC 8684 section 3.7): mpterm-linkem
# changes one payload byte of a TCP segment and fixes the TCP checksum, as an ALG would
# (`--a-to-b-rewrite N`, perf/README.md "Link emulator"), so the receiving TCP takes it and
# only the DSS checksum can catch it. The Linux client and mpterm both use DSS checksums.
#
#   ns client       ns PREFIX-linkem<k> (one emulator per path)     ns app (mpterm)
#   c0 198.18.0.1 ==veth== p1c [linkem] p1a ==veth== a0   (path 1; the client connects here)
#   c1 198.18.1.1 ==veth== p2c [linkem] p2a ==veth== a1   (path 2; the client's join)
#
# Port A of each emulator faces the client: a-to-b is the upload, b-to-a the download. Every
# scenario has its own lab and appliance run (its final counters are its own), checks its
# transfer byte for byte (length and SHA-256, peer.py check), and prints one PASS/FAIL line.
#
# mpfail-upload-2paths: both paths at MIDDLEBOX_PATH_RATE and MIDDLEBOX_PATH_DELAY (so that
#   both carry data); path 2's emulator rewrites the first data segment of the upload
#   (--a-to-b-rewrite 1). mpterm's DSS check fails on the joined subflow while path 1 works:
#   it closes that subflow with RST + MP_FAIL + MP_TCPRST 6, and the client sends the bytes
#   again on path 1. Asserted: MIDDLEBOX_BYTES (8 MiB) upload byte-exact, no fallback to TCP;
#   client deltas MPFailRx >= 1 and MPRstRx >= 1 (mpterm's RST carrying MP_FAIL), one
#   MP_CAPABLE and one MP_JOIN, no DataCsumErr, no InfiniteMapRx, no MP_FASTCLOSE, no TCP
#   checksum error (the rewrite kept the TCP checksum right); mpterm's final counters
#   dss_checksum_failures >= 1, mptcp_subflows_failed >= 1, mptcp_mp_fail_sent >= 1; path 2's
#   emulator counted 1 rewritten segment.
# mpfail-download-2paths: the same, path 2's emulator rewriting the first data segment toward
#   the client (--b-to-a-rewrite 1). Linux's DSS check fails on the joined subflow; with a
#   join it may not fall back, so it resets that subflow with MP_FAIL (subflow.c, "RFC 8684
#   section 3.7"). Asserted: download byte-exact; client DataCsumErr >= 1, MPFailTx >= 1 and
#   MPRstTx >= 1, no MPFailRx or InfiniteMapRx; mpterm mptcp_mp_fail_received >= 1 and
#   mptcp_reinjected_bytes + mptcp_data_retransmissions > 0 (the failed subflow's data went out
#   again on path 1); path 2's emulator counted 1 rewritten segment.
# mpfail-upload-1path: one path; its emulator rewrites one upload segment after
#   MIDDLEBOX_SINGLE_SKIP (200) data segments, once the connection is well established. What
#   Linux does: it maps up to 64 KB per DSS mapping (45 segments here, even with TSO and GSO
#   off), so the rewritten segment's mapping fails its checksum only once its last segment is
#   in, after mpterm's TCP acknowledged its first ones. Those bytes cannot be asked for again
#   (a Linux sender that falls back counts what its subflow had acknowledged as delivered), so
#   neither the rewind nor the infinite mapping can keep the stream whole: RFC 8684 section
#   3.7's other branch, the connection ends. mpterm fast-closes the client (MP_FASTCLOSE;
#   with a plain RST the Linux client went on retransmitting until its 60 s close timeout,
#   seen in this lab before the engine fix) and resets the backend. What the RFC promises and
#   is asserted: no corrupted byte reaches the backend (what it received is an exact prefix of
#   the client's stream, length and SHA-256), and the client's application learns of the end
#   at once (its send or recv fails with a reset, not by its own timeout). Observed and
#   asserted: client deltas MPFastcloseRx = 1, no MPFailRx and no DataCsumErr; mpterm
#   dss_checksum_failures >= 1, mptcp_fail_resets = 1, mptcp_fastcloses_sent = 1,
#   mptcp_checksum_rewinds = 0; 1 rewritten segment. (The rewind, MP_FAIL and infinite
#   mapping of a mapping within one segment are tested against a simulated client only,
#   dataplane/engine; a Linux bulk sender does not make such mappings.)
#
# Every assertion above depends on the rewrite: MIDDLEBOX_REWRITE=0 runs the same scenarios
# with the emulators rewriting nothing, and each of them must then FAIL (the MP_FAIL, DSS and
# rewrite counters stay 0). It is how the checks were proven able to fail.
#
#   bash tests/lab/middlebox.sh      (root; APPLIANCE=mpterm only: the stand-in's Linux MPTCP is
#                                     checked by the kernel's own selftests)
#
# Knobs: SCENARIOS (regex), MIDDLEBOX_BYTES, MIDDLEBOX_PATH_RATE (100mbit), MIDDLEBOX_PATH_DELAY
# (5ms), MIDDLEBOX_SINGLE_SKIP, MIDDLEBOX_TIMEOUT (30 s per transfer), MIDDLEBOX_REWRITE (1),
# LINKEM_BIN, MPTERM_BIN, LAB_PREFIX, LAB_PCAP=1 (headers of every client path and the backend's veth per transfer).
set -euo pipefail

LAB_PREFIX="${LAB_PREFIX:-mptmb$$}"
MIDDLEBOX_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# multipath.sh brings scenarios.sh (record, run_clients, peer, ...), lab.sh, linkem.sh and
# appliance.sh, and multipath_mpterm_counter; its main() runs only when it is executed.
# shellcheck source=tests/lab/multipath.sh
source "$MIDDLEBOX_DIR/multipath.sh"

MIDDLEBOX_BYTES="${MIDDLEBOX_BYTES:-$((8 * 1024 * 1024))}"
MIDDLEBOX_PATH_RATE="${MIDDLEBOX_PATH_RATE:-100mbit}"
MIDDLEBOX_PATH_DELAY="${MIDDLEBOX_PATH_DELAY:-5ms}"
# A queue that never tail-drops: the rewrite is the scenarios' only fault.
MIDDLEBOX_PATH_QUEUE="${MIDDLEBOX_PATH_QUEUE:-8MiB}"
MIDDLEBOX_SINGLE_SKIP="${MIDDLEBOX_SINGLE_SKIP:-200}"
MIDDLEBOX_TIMEOUT="${MIDDLEBOX_TIMEOUT:-30}"
MIDDLEBOX_REWRITE="${MIDDLEBOX_REWRITE:-1}"

# The trap's hook: the appliance and the emulators go before the namespaces.
# shellcheck disable=SC2317 # called by lab_on_exit
lab_cleanup_hook() {
    appliance_stop
    linkem_stop_all
}

MB_PROBLEMS=()
MB_CHECKED=()

# A fresh lab of PATHS paths, each through its emulator; path K's emulator gets the shared path
# options and then the words of MB_LINKEM_EXTRA[K].
MB_LINKEM_EXTRA=()
middlebox_lab_up() {
    local paths="$1" k extra
    linkem_stop_all
    lab_down_quiet
    LAB_PATHS="$paths"
    LAB_LINKEM=1
    lab_up || return 1
    lab_set_client_mptcp 1
    for ((k = 1; k <= paths; k++)); do
        read -ra extra <<<"${MB_LINKEM_EXTRA[k]:-}"
        linkem_start "$k" --seed "$k" --rate "$MIDDLEBOX_PATH_RATE" --delay "$MIDDLEBOX_PATH_DELAY" \
            --queue "$MIDDLEBOX_PATH_QUEUE" "${extra[@]}" || return 1
    done
}

# "--a-to-b-rewrite N" or "--b-to-a-rewrite N" (DIRECTION a-to-b|b-to-a), N 0 with
# MIDDLEBOX_REWRITE=0; then any further words.
middlebox_rewrite_args() {
    local direction="$1" count="$2"
    shift 2
    ((MIDDLEBOX_REWRITE == 1)) || count=0
    echo "--$direction-rewrite $count $*"
}

# The "rewritten N" of path K's emulator for DIRECTION, from its exit line ("a-to-b: offered
# ..., rewritten N"); empty when the log has none.
middlebox_rewritten() {
    local k="$1" direction="$2"
    sed -nE "s/^$direction: .*, rewritten ([0-9]+)\$/\\1/p" "$LAB_OUT/linkem-p$k.log" | tail -n 1
}

# One transfer on one connection through the running appliance:
#   middlebox_transfer DIR DIRECTION(upload|download) PATHS OUTCOME(complete|reset) EXPECT...
# OUTCOME reset: the connection must end by a reset, with the backend holding an exact prefix
# of the client's stream (middlebox_check_reset_prefix) instead of all of it.
# EXPECT: the client's MPTcpExt deltas for `peer counters assert --expect`, NAME=N or NAME>=N.
middlebox_transfer() {
    local dir="$1" direction="$2" paths="$3" outcome="$4"
    shift 4
    local expects=() expectation
    for expectation in "$@"; do expects+=(--expect "$expectation"); done
    local bytes="$MIDDLEBOX_BYTES" c2b=0 b2c=0 client_args=() backend_args=()
    if [[ "$direction" == upload ]]; then
        # As in multipath.sh: the backend answers once the upload is in (Linux joins no
        # subflow once the connection left ESTABLISHED), and with two paths the client waits
        # for its joined subflow before it sends the rest.
        c2b="$bytes"
        backend_args=(--send-after-received "$bytes")
        ((paths == 1)) || client_args=(--wait-subflows 1 --wait-subflows-timeout "$MULTIPATH_JOIN_WAIT_S")
    else
        b2c="$bytes"
        client_args=(--send-after-received "$b2c")
    fi
    mkdir -p "$dir"
    peer_in client counters snapshot --out "$dir/counters-before.json" ||
        MB_PROBLEMS+=("could not read the client's MPTcpExt counters")
    local pcaps=() k
    if [[ "$LAB_PCAP" == 1 ]]; then
        for ((k = 1; k <= paths; k++)); do
            pcaps+=("$(lab_pcap_start client "$(lab_path_if_client "$k")" "$dir/client-$(lab_path_if_client "$k").pcap")")
        done
        pcaps+=("$(lab_pcap_start backend "$LAB_IF_BACKEND" "$dir/backend-$LAB_IF_BACKEND.pcap")")
    fi
    ip netns exec "$(lab_ns_backend)" "$LAB_PYTHON" "$SCENARIO_DIR/peer.py" backend \
        --listen "$LAB_BACKEND_ADDR:$LAB_BACKEND_PORT" --count 1 --send-bytes "$b2c" --seed 2000 \
        "${backend_args[@]}" --timeout "$((MIDDLEBOX_TIMEOUT + 5))" --ready-file "$dir/backend.ready" \
        --report "$dir/backend.json" >"$dir/backend.log" 2>&1 &
    local backend_pid=$! ran=yes
    appliance_wait_file "$dir/backend.ready" 10 || { MB_PROBLEMS+=("backend did not start listening"); ran=no; }
    local client_rc=0
    if [[ "$ran" == yes ]]; then
        run_clients "$dir" mptcp 1 "$c2b" "$b2c" "$MIDDLEBOX_TIMEOUT" "${client_args[@]}" || client_rc=1
        if [[ "$outcome" == complete && "$client_rc" != 0 ]]; then
            MB_PROBLEMS+=("$CLIENTS_PROBLEM")
        elif [[ "$outcome" == reset && "$client_rc" == 0 ]]; then
            MB_PROBLEMS+=("the client's transfer completed; expected the connection to be reset")
        fi
    fi
    if kill -0 "$backend_pid" 2>/dev/null && ((${#MB_PROBLEMS[@]} > 0)); then
        kill -TERM "$backend_pid" 2>/dev/null || true
    fi
    local backend_rc=0
    wait "$backend_pid" || backend_rc=$?
    # A backend reset by the appliance reports its error and exits non-zero.
    ((backend_rc == 0)) || [[ "$outcome" == reset ]] || MB_PROBLEMS+=("backend exited $backend_rc")
    local pid
    for pid in "${pcaps[@]}"; do lab_pcap_stop "$pid"; done

    if [[ "$outcome" == reset ]]; then
        if middlebox_check_reset_prefix "$dir" >"$dir/check.txt" 2>&1; then
            MB_CHECKED+=("$(cat "$dir/check.txt")")
        else
            MB_PROBLEMS+=("$(tr '\n' ' ' <"$dir/check.txt")")
        fi
    elif [[ -s "$dir/client-0.json" && -s "$dir/backend.json" ]]; then
        if peer check --client "$dir/client-0.json" --backend "$dir/backend.json" \
            --send-bytes "$c2b" --recv-bytes "$b2c" --expect-mptcp yes --expect-csum 1 \
            --summary "$dir/summary.json" >"$dir/check.txt" 2>&1; then
            MB_CHECKED+=("$(sed 's/^check: //' "$dir/check.txt")")
        else
            MB_PROBLEMS+=("$(tr '\n' ' ' <"$dir/check.txt")")
        fi
    else
        MB_PROBLEMS+=("missing report(s): client-0.json/backend.json")
    fi
    local leftovers
    if ! leftovers="$(wait_sockets_closed "$CLOSE_SETTLE_TIMEOUT")"; then
        MB_PROBLEMS+=("connections not closed ${CLOSE_SETTLE_TIMEOUT}s after the transfer: $leftovers")
    fi
    peer_in client counters snapshot --out "$dir/counters-after.json" ||
        MB_PROBLEMS+=("could not read the client's MPTcpExt counters")
    if peer counters assert --before "$dir/counters-before.json" --after "$dir/counters-after.json" \
        --expect MPCapableSYNACKRX=1 --expect MPCapableFallbackSYNACK=0 \
        --expect MPCapableDataFallback=0 --expect Tcp.InCsumErrors=0 "${expects[@]}" --show MPFailTx --show MPFailRx --show MPRstTx --show MPRstRx \
        --show DataCsumErr --show InfiniteMapTx --show InfiniteMapRx --show MPTCPRetrans \
        >"$dir/counters.txt" 2>&1; then
        MB_CHECKED+=("$(sed 's/^counters: /client MPTcpExt deltas /' "$dir/counters.txt")")
    else
        MB_PROBLEMS+=("$(tr '\n' ' ' <"$dir/counters.txt")")
    fi
    ((${#MB_PROBLEMS[@]} == 0)) || print_failure_logs "$direction" "$dir"
}

# A connection the appliance ended (OUTCOME reset): the client's send or recv failed with a
# reset (ECONNRESET or EPIPE, not its own timeout), and the backend's connection received an
# exact prefix of the client's seeded stream (length and SHA-256): no corrupted byte reached
# it. Prints one line; exits non-zero on a problem.
middlebox_check_reset_prefix() {
    local dir="$1"
    "$LAB_PYTHON" - "$SCENARIO_DIR" "$dir/client-0.json" "$dir/backend.json" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
import peer
client = json.load(open(sys.argv[2], encoding="utf-8"))
backend = json.load(open(sys.argv[3], encoding="utf-8"))
problems = []
failures = client.get("failures") or {}
kinds = sorted({f["error_kind"] for f in failures.values()})
if not kinds or any(kind not in ("ECONNRESET", "EPIPE") for kind in kinds):
    problems.append(f"client ended with {kinds or 'no failure'}, expected ECONNRESET/EPIPE")
conns = backend.get("connections", [])
if len(conns) != 1:
    problems.append(f"backend saw {len(conns)} connections, expected 1")
else:
    received = conns[0]["received"]
    prefix = peer.seeded_prefix_digest(client["seed"], client["send_bytes"], received["bytes"])
    if received != prefix:
        problems.append(f"backend's {received['bytes']} bytes are not a prefix of the client's stream")
    if received["bytes"] > client["sent"]["bytes"]:
        problems.append("backend received more than the client sent")
if problems:
    print("reset check: FAIL: " + "; ".join(problems))
    sys.exit(1)
print(f"client ended by {'/'.join(kinds)} after sending {client['sent']['bytes']} B in "
      f"{client.get('elapsed_s', 0):.2f} s; backend received {conns[0]['received']['bytes']} B, "
      f"an exact prefix of the client's stream (sha256 {conns[0]['received']['sha256'][:12]}..)")
PY
}

# Stops the appliance and the emulators (their exit lines carry the rewrite counts), then
# checks mpterm's final counters: each argument NAME>=N, NAME=N, or SUM:NAME+NAME>=N.
middlebox_finish() {
    appliance_stop
    linkem_stop_all
    [[ "$APPLIANCE_EXIT_HOW" == exited && "$APPLIANCE_EXIT" == 0 ]] ||
        MB_PROBLEMS+=("appliance after SIGTERM: $APPLIANCE_EXIT_HOW, status $APPLIANCE_EXIT")
    local expectation name value total report="" shown
    for name in dss_checksum_failures mptcp_subflows_failed mptcp_mp_fail_sent \
        mptcp_mp_fail_received mptcp_checksum_rewinds mptcp_infinite_mappings_sent \
        mptcp_infinite_mappings_received mptcp_fail_resets mptcp_reinjected_bytes \
        mptcp_data_retransmissions mptcp_fastcloses_sent mptcp_joins_established; do
        report+="$name=$(multipath_mpterm_counter "$name") "
    done
    MB_CHECKED+=("mpterm ${report% }")
    for expectation in "$@"; do
        if [[ "$expectation" =~ ^([a-z_+]+)(\>=|=)([0-9]+)$ ]]; then
            total=0
            IFS=+ read -ra shown <<<"${BASH_REMATCH[1]}"
            for name in "${shown[@]}"; do
                total=$((total + $(multipath_mpterm_counter "$name")))
            done
            value="${BASH_REMATCH[3]}"
            if [[ "${BASH_REMATCH[2]}" == ">=" ]]; then
                ((total >= value)) || MB_PROBLEMS+=("mpterm ${BASH_REMATCH[1]} = $total, expected >= $value")
            else
                ((total == value)) || MB_PROBLEMS+=("mpterm ${BASH_REMATCH[1]} = $total, expected $value")
            fi
        else
            MB_PROBLEMS+=("bad mpterm expectation '$expectation'")
        fi
    done
}

# Path K's emulator must have rewritten WANT segments in DIRECTION (0 with MIDDLEBOX_REWRITE=0).
middlebox_check_rewritten() {
    local k="$1" direction="$2" want="$3" got
    ((MIDDLEBOX_REWRITE == 1)) || want=0
    got="$(middlebox_rewritten "$k" "$direction")"
    if [[ "$got" == "$want" ]]; then
        MB_CHECKED+=("path $k emulator $direction rewritten $got")
    else
        MB_PROBLEMS+=("path $k emulator $direction rewrote '${got:-no count}' segments, expected $want")
    fi
}

middlebox_record() {
    local name="$1" short="$2"
    if ((${#MB_PROBLEMS[@]} == 0)); then
        record PASS "$name" "[$short] $(printf '%s; ' "${MB_CHECKED[@]}")" "$short"
    else
        record FAIL "$name" "[$short] $(printf '%s; ' "${MB_PROBLEMS[@]}")| checked: $(printf '%s; ' "${MB_CHECKED[@]}")" "$short"
    fi
}

# Starts the appliance on the lab just built, or records why the scenario could not run.
middlebox_appliance_up() {
    local name="$1"
    if ! appliance_start 1 "$name"; then
        appliance_print_log
        appliance_stop
        linkem_stop_all
        record FAIL "$name" "not run: appliance $LAB_APPLIANCE did not come up ($APPLIANCE_LOG)" "appliance did not start"
        return 1
    fi
}

# mpfail-upload-2paths and mpfail-download-2paths (see the top of the file).
scenario_two_paths() {
    local name="$1" direction="$2"
    selected "$name" || return 0
    local dir="$LAB_OUT/$name" started=$SECONDS linkem_direction=a-to-b
    [[ "$direction" == upload ]] || linkem_direction=b-to-a
    rm -rf "$dir"
    MB_PROBLEMS=()
    MB_CHECKED=()
    MB_LINKEM_EXTRA=([2]="$(middlebox_rewrite_args "$linkem_direction" 1)")
    if ! middlebox_lab_up 2; then
        linkem_stop_all
        record FAIL "$name" "the two-path lab did not come up" "lab did not come up"
        return 0
    fi
    middlebox_appliance_up "$name" || return 0
    if [[ "$direction" == upload ]]; then
        middlebox_transfer "$dir" upload 2 complete MPJoinSynAckRx=1 'MPFailRx>=1' 'MPRstRx>=1' \
            DataCsumErr=0 InfiniteMapRx=0 MPFastcloseRx=0
        middlebox_finish 'dss_checksum_failures>=1' 'mptcp_subflows_failed>=1' 'mptcp_mp_fail_sent>=1'
    else
        middlebox_transfer "$dir" download 2 complete MPJoinSynAckRx=1 'DataCsumErr>=1' 'MPFailTx>=1' \
            'MPRstTx>=1' MPFailRx=0 InfiniteMapRx=0 MPFastcloseRx=0
        middlebox_finish 'mptcp_mp_fail_received>=1' 'mptcp_reinjected_bytes+mptcp_data_retransmissions>=1'
    fi
    middlebox_check_rewritten 2 "$linkem_direction" 1
    lab_down_quiet
    middlebox_record "$name" "2 paths, path 2 rewrites 1 $direction segment, $((MIDDLEBOX_BYTES / 1024 / 1024)) MiB, wall $((SECONDS - started))s"
}

# mpfail-upload-1path (see the top of the file).
scenario_one_path() {
    local name="$1"
    selected "$name" || return 0
    local dir="$LAB_OUT/$name" started=$SECONDS
    rm -rf "$dir"
    MB_PROBLEMS=()
    MB_CHECKED=()
    MB_LINKEM_EXTRA=([1]="$(middlebox_rewrite_args a-to-b 1 --a-to-b-rewrite-skip "$MIDDLEBOX_SINGLE_SKIP")")
    if ! middlebox_lab_up 1; then
        linkem_stop_all
        record FAIL "$name" "the one-path lab did not come up" "lab did not come up"
        return 0
    fi
    middlebox_appliance_up "$name" || return 0
    middlebox_transfer "$dir" upload 1 reset MPFastcloseRx=1 MPFailRx=0 DataCsumErr=0
    middlebox_finish 'dss_checksum_failures>=1' mptcp_fail_resets=1 mptcp_fastcloses_sent=1 \
        mptcp_checksum_rewinds=0
    middlebox_check_rewritten 1 a-to-b 1
    lab_down_quiet
    middlebox_record "$name" "1 path, 1 upload segment rewritten after $MIDDLEBOX_SINGLE_SKIP: reset, wall $((SECONDS - started))s"
}

middlebox_main() {
    if [[ $EUID -ne 0 ]]; then
        echo "middlebox.sh must run as root (namespaces, veth, sysctl)" >&2
        exit 2
    fi
    if [[ "$LAB_APPLIANCE" != mpterm ]]; then
        echo "middlebox.sh: checks mpterm's MP_FAIL handling; nothing to run for $LAB_APPLIANCE" >&2
        exit 0
    fi
    lab_install_trap
    mkdir -p "$LAB_OUT"
    echo "middlebox scenarios: prefix=$LAB_PREFIX rewrite=$MIDDLEBOX_REWRITE bytes=$MIDDLEBOX_BYTES out=$LAB_OUT"
    scenario_two_paths mpfail-upload-2paths upload
    scenario_two_paths mpfail-download-2paths download
    scenario_one_path mpfail-upload-1path
    print_summary
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    middlebox_main "$@"
fi
