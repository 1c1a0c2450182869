#!/usr/bin/env python3
"""Transfers and CPU accounting for the side-by-side lab benchmark (perf/lab/side-by-side.sh)
and the lossy-path benchmark (perf/lab/lossy-bench.sh).

  transfer   one measured transfer through whatever sits between the lab's client and backend
             (or over the reference link, with nothing in between): starts the backend, snapshots
             the CPU counters, runs the client, waits for both, snapshots again, checks every byte
             (tests/lab/peer.py check) and the client's MPTCP counters, writes transfer.json
  table      prints every transfer of a directory, one line each (device-compare.sh)
  report     pairs the transfers of one benchmark run (mpterm with the anchor, the same
             transfer, paths, direction and run), prints the table and writes the two result
             files: kind "lab-side-by-side" and kind "lab-timeseries" (schema mpterm-perf/1)
  lossy-report  the medians of perf/lab/lossy-bench.sh's transfers per emulated condition and
             direction, mpterm's beside Linux's (HAProxy under mptcpize), their ratio, the table;
             one result file of kind "lab-side-by-side", an entry per condition and direction

CPU accounting (the method is explained for readers in side-by-side.sh's header and the README):
every figure is taken between the moment the client starts and the moment both the client and
the backend have exited.
  process    the appliance's own utime+stime (/proc/PID/stat, all its threads)
  lab        the CPU time of everything the transfer ran: client and backend (their rusage from
             wait4), the appliance (as above) and the kernel's softirq threads (ksoftirqd/N)
  whole      lab minus the lab time of the reference transfer: the same client and backend
             moving the same bytes over a direct veth, with no appliance at all
This kernel accounts CPU time by ticks (CONFIG_IRQ_TIME_ACCOUNTING is off), so softirq work is
charged to whichever task it interrupted, in /proc/PID/stat as in rusage; its share in /proc/stat
is a part of those tasks' time, not an addition to it. A veth hands a frame to its peer within
the sender's own system call, so the receiver's kernel work is charged to the sender. The lab
figure does not depend on who is charged; the process figure does. The machine's whole busy time
(/proc/stat) is recorded too; what it holds beyond the lab ("other") is the load of everything
else on the machine during the transfer.

Only python3's standard library is used.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import socket
import statistics
import subprocess
import sys
import time

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
GIB = 1 << 30
# /proc/stat columns that are busy time (guest time is already inside user).
BUSY_COLUMNS = ("user", "nice", "system", "irq", "softirq", "steal")
STAT_COLUMNS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def read_json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path: str, value) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def process_cpu_s(pid: int) -> float | None:
    """utime+stime of a whole process (every thread) in seconds; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            text = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses; the fields after it do not.
    fields = text[text.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def softirq_thread_pids() -> list[int]:
    pids = []
    for comm in glob.glob("/proc/[0-9]*/comm"):
        try:
            with open(comm, encoding="ascii") as f:
                if f.read().startswith("ksoftirqd/"):
                    pids.append(int(comm.split("/")[2]))
        except OSError:
            continue
    return sorted(pids)


def machine_times_s() -> dict[str, float]:
    """The first line of /proc/stat (all CPUs), per column, in seconds."""
    with open("/proc/stat", encoding="ascii") as f:
        values = f.readline().split()[1:]
    return {name: int(value) / CLOCK_TICKS for name, value in zip(STAT_COLUMNS, values)}


class CpuSnapshot:
    """What the CPU counters said at one moment."""

    def __init__(self, appliance_pid: int | None, backend_pid: int, softirq_pids: list[int]):
        self.at = time.monotonic()
        self.machine = machine_times_s()
        self.appliance = process_cpu_s(appliance_pid) if appliance_pid else 0.0
        self.backend = process_cpu_s(backend_pid)
        self.softirq_threads = {pid: process_cpu_s(pid) or 0.0 for pid in softirq_pids}


def rusage_cpu_s(rusage) -> float:
    return rusage.ru_utime + rusage.ru_stime


def peer_command(args, namespace: str, *peer_args: str) -> list[str]:
    return ["ip", "netns", "exec", namespace, args.python, args.peer, *peer_args]


def wait_ready(path: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return True
        time.sleep(0.05)
    return False


def open_sockets(namespace: str) -> list[str]:
    """TCP and MPTCP sockets of a namespace in any state but TIME-WAIT and LISTEN."""
    left = []
    for flag in ("-tanH", "-ManH"):
        out = subprocess.run(["ip", "netns", "exec", namespace, "ss", flag], capture_output=True,
                             text=True, check=False).stdout
        left += [line for line in out.splitlines()
                 if line and not line.startswith(("TIME-WAIT", "LISTEN"))]
    return left


def settle(namespaces: list[str], timeout_s: float) -> list[str]:
    """Waits until the previous transfer's sockets are closed, so that their last packets are
    not counted in the next transfer's CPU window; returns what is still open."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = [f"{ns}: {line}" for ns in namespaces for line in open_sockets(ns)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def interface_bytes(namespace: str, device: str) -> int:
    """tx+rx bytes of one interface of a namespace."""
    out = subprocess.run(["ip", "netns", "exec", namespace, "cat",
                          f"/sys/class/net/{device}/statistics/tx_bytes",
                          f"/sys/class/net/{device}/statistics/rx_bytes"],
                         capture_output=True, text=True, check=True).stdout
    return sum(int(v) for v in out.split())


def cmd_transfer(args) -> int:
    out = args.out_dir
    os.makedirs(out, exist_ok=True)
    for stale in glob.glob(os.path.join(out, "*.json")):
        os.remove(stale)
    problems: list[str] = []
    left = settle([args.client_ns, args.backend_ns], 10.0)
    if left:
        problems.append("sockets of an earlier transfer still open: " + "; ".join(left))
    time.sleep(args.settle_s)

    for which, ns in (("client", args.client_ns), ("backend", args.backend_ns)):
        subprocess.run(peer_command(args, ns, "counters", "snapshot", "--out",
                                    os.path.join(out, f"{which}-counters-before.json")), check=True)
    path_devices = args.path_device or []
    path_bytes_before = [interface_bytes(args.client_ns, dev) for dev in path_devices]

    ready = os.path.join(out, "backend.ready")
    if os.path.exists(ready):
        os.remove(ready)
    sample = ["--sample-interval-ms", str(args.sample_interval_ms)]
    # The side with nothing to send keeps its write side open until the data is through, as a
    # request side usually does: Linux's path manager opens no subflow on a connection the peer
    # already half-closed, so an early FIN would leave a second path unused. A threshold beyond
    # what will arrive means "at EOF".
    backend_hold = ["--send-after-received", str(args.c2b + 1)] if args.b2c == 0 else []
    client_hold = ["--send-after-received", str(args.b2c + 1)] if args.c2b == 0 else []
    with open(os.path.join(out, "backend.log"), "w", encoding="utf-8") as backend_log:
        backend = subprocess.Popen(peer_command(
            args, args.backend_ns, "backend", "--listen", args.listen,
            "--count", str(args.connections), "--send-bytes", str(args.b2c), "--seed", "2000",
            "--timeout", str(args.timeout + 5), "--ready-file", ready,
            "--report", os.path.join(out, "backend.json"), *sample, *backend_hold),
            stdout=backend_log, stderr=subprocess.STDOUT)
    if not wait_ready(ready, 10.0):
        backend.kill()
        problems.append("backend did not start listening")

    softirq_pids = softirq_thread_pids()
    before = CpuSnapshot(args.appliance_pid, backend.pid, softirq_pids)
    with open(os.path.join(out, "client.log"), "w", encoding="utf-8") as client_log:
        client = subprocess.Popen(peer_command(
            args, args.client_ns, "client", f"--{args.mode}", "--connect", args.connect,
            "--send-bytes", str(args.c2b), "--recv-bytes", str(args.b2c),
            "--connections", str(args.connections), "--seed", "1000",
            "--timeout", str(args.timeout), "--report", os.path.join(out, "client-{index}.json"),
            *sample, *client_hold), stdout=client_log, stderr=subprocess.STDOUT)
    # wait4 on each child gives its own rusage: every thread, user and system.
    _, client_status, client_rusage = os.wait4(client.pid, 0)
    client.returncode = os.waitstatus_to_exitcode(client_status)
    if client.returncode != 0 and backend.poll() is None:
        # A client that failed leaves the backend waiting for its timeout: end it now.
        time.sleep(1.0)
        backend.terminate()
    _, backend_status, backend_rusage = os.wait4(backend.pid, 0)
    backend.returncode = os.waitstatus_to_exitcode(backend_status)
    after = CpuSnapshot(args.appliance_pid, backend.pid, softirq_pids)
    if client.returncode != 0:
        problems.append(f"client exited {client.returncode}")
    if backend.returncode != 0:
        problems.append(f"backend exited {backend.returncode}")
    if args.appliance_pid and after.appliance is None:
        problems.append(f"appliance process {args.appliance_pid} is gone")

    left = settle([args.client_ns, args.backend_ns], 5.0)
    if left:
        problems.append("connections not closed 5 s after the transfer: " + "; ".join(left))
    path_bytes = [interface_bytes(args.client_ns, dev) - b
                  for dev, b in zip(path_devices, path_bytes_before)]
    for which, ns in (("client", args.client_ns), ("backend", args.backend_ns)):
        subprocess.run(peer_command(args, ns, "counters", "snapshot", "--out",
                                    os.path.join(out, f"{which}-counters-after.json")), check=True)

    clients = [os.path.join(out, f"client-{i}.json") for i in range(args.connections)]
    check_args = ["check", *sum((["--client", c] for c in clients), []),
                  "--backend", os.path.join(out, "backend.json"),
                  "--send-bytes", str(args.c2b), "--recv-bytes", str(args.b2c),
                  "--summary", os.path.join(out, "summary.json")]
    if args.mode == "mptcp":
        check_args += ["--expect-mptcp", "yes", "--expect-csum", str(args.checksum)]
    else:
        check_args += ["--expect-mptcp", "no"]
    check = subprocess.run([args.python, args.peer, *check_args], capture_output=True, text=True)
    check_text = (check.stdout + check.stderr).strip()
    if check.returncode != 0:
        problems.append(check_text.replace("\n", " "))

    counters = subprocess.run(
        [args.python, args.peer, "counters", "assert",
         "--before", os.path.join(out, "client-counters-before.json"),
         "--after", os.path.join(out, "client-counters-after.json"),
         "--expect", "Tcp.InCsumErrors=0",
         *sum((["--expect", e] for e in args.expect_counter or []), []),
         *sum((["--show", s] for s in args.show_counter or []), [])],
        capture_output=True, text=True)
    counters_text = (counters.stdout + counters.stderr).strip()
    if counters.returncode != 0:
        problems.append(counters_text.replace("\n", " "))
    backend_counters = subprocess.run(
        [args.python, args.peer, "counters", "assert",
         "--before", os.path.join(out, "backend-counters-before.json"),
         "--after", os.path.join(out, "backend-counters-after.json"),
         "--expect", "Tcp.InCsumErrors=0"], capture_output=True, text=True)
    if backend_counters.returncode != 0:
        problems.append("backend " + (backend_counters.stdout + backend_counters.stderr).strip())

    window_s = after.at - before.at
    appliance_s = (after.appliance or 0.0) - (before.appliance or 0.0)
    client_s = rusage_cpu_s(client_rusage)
    backend_s = rusage_cpu_s(backend_rusage) - (before.backend or 0.0)
    softirq_threads_s = sum(after.softirq_threads[p] - before.softirq_threads[p]
                            for p in softirq_pids)
    machine = {k: after.machine[k] - before.machine[k] for k in STAT_COLUMNS}
    machine_busy_s = sum(machine[k] for k in BUSY_COLUMNS)
    lab_s = client_s + backend_s + appliance_s + softirq_threads_s
    summary = read_json(os.path.join(out, "summary.json")) if os.path.exists(
        os.path.join(out, "summary.json")) else {}
    moved = summary.get("bytes", 0)
    seconds = summary.get("seconds", 0.0)
    result = {
        "name": args.name,
        "appliance": args.appliance,
        "transfer": args.transfer,
        "condition": args.condition,
        "paths": args.paths,
        "direction": args.direction,
        "run": args.run,
        "connections": args.connections,
        "checksum": args.checksum,
        "c2b_bytes": args.c2b,
        "b2c_bytes": args.b2c,
        "ok": not problems,
        "problems": problems,
        "check": check_text,
        "counters": counters_text,
        "bytes": moved,
        "seconds": seconds,
        "gbps": round(moved * 8 / seconds / 1e9, 4) if seconds else 0.0,
        "path_bytes": dict(zip(path_devices, path_bytes)),
        "cpu": {
            "window_s": round(window_s, 3),
            "appliance_process_s": round(appliance_s, 3),
            "client_s": round(client_s, 3),
            "backend_s": round(backend_s, 3),
            "softirq_threads_s": round(softirq_threads_s, 3),
            "lab_s": round(lab_s, 3),
            "machine_busy_s": round(machine_busy_s, 3),
            "machine_softirq_s": round(machine["softirq"], 3),
            "other_s": round(machine_busy_s - lab_s, 3),
        },
        "load_average": open("/proc/loadavg", encoding="ascii").read().split()[:3],
    }
    write_json(os.path.join(out, "transfer.json"), result)
    verdict = "ok" if result["ok"] else "FAIL"
    cpu = result["cpu"]
    print(f"{verdict} {args.name}: {result['gbps']:.3f} Gbit/s ({moved} B in {seconds} s), "
          f"cpu appliance {cpu['appliance_process_s']} s, lab {cpu['lab_s']} s, "
          f"machine busy {cpu['machine_busy_s']} s of {window_s:.2f} s x {os.cpu_count()}"
          + (f", path bytes {result['path_bytes']}" if path_devices else ""))
    for problem in problems:
        print(f"    problem: {problem}")
    return 0 if result["ok"] else 1


def per_gib(seconds: float, moved: int) -> float:
    return round(seconds / (moved / GIB), 3) if moved else 0.0


def machine_description() -> dict:
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                cpu = value.strip()
                break
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": os.uname().release,
            "hostname": socket.gethostname()}


def commit_description(repo: str) -> str:
    head = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return f"{head}+dirty" if dirty else head


def envelope(kind: str, args, parameters: dict, results: list) -> dict:
    return {"schema": "mpterm-perf/1", "kind": kind, "machine": machine_description(),
            "commit": args.commit or commit_description(args.repo),
            "started_at": args.started_at, "command": args.command,
            "parameters": parameters, "results": results}


def cmd_report(args) -> int:
    transfers = [read_json(p) for p in sorted(glob.glob(os.path.join(args.runs_dir, "*",
                                                                      "transfer.json")))]
    by_key = {(t["appliance"], t["transfer"], t["paths"], t["direction"], t["run"]): t
              for t in transfers}
    # The reference does not depend on the paths: one per transfer, direction and run, and
    # every run of the appliances is set against the mean of the reference runs.
    reference_lab: dict[tuple, list[float]] = {}
    for t in transfers:
        if t["appliance"] == "reference" and t["ok"]:
            reference_lab.setdefault((t["transfer"], t["direction"]), []).append(t["cpu"]["lab_s"])

    results = []
    failures = [t for t in transfers if not t["ok"]]
    for (appliance, transfer, paths, direction, run), mpterm in sorted(by_key.items()):
        if appliance != "mpterm":
            continue
        anchor = by_key.get(("haproxy", transfer, paths, direction, run))
        if anchor is None:
            continue
        refs = reference_lab.get((transfer, direction), [])
        ref_lab = statistics.mean(refs) if refs else None

        def whole(t: dict) -> float | None:
            if ref_lab is None:
                return None
            return per_gib(t["cpu"]["lab_s"] - ref_lab, t["bytes"])

        entry = {
            "transfer": transfer,
            "paths": paths,
            "direction": direction,
            "run": run,
            "connections": mpterm["connections"],
            "mpterm_gbps": mpterm["gbps"],
            "anchor_gbps": anchor["gbps"],
            "ratio": round(mpterm["gbps"] / anchor["gbps"], 3) if anchor["gbps"] else None,
            # The brief's accounting: mpterm's own process time; the anchor's process time plus
            # the kernel work done for it (whole-machine method).
            "mpterm_cpu_s_per_gib": per_gib(mpterm["cpu"]["appliance_process_s"], mpterm["bytes"]),
            "anchor_cpu_s_per_gib": whole(anchor),
            "mpterm_whole_cpu_s_per_gib": whole(mpterm),
            "anchor_process_cpu_s_per_gib": per_gib(anchor["cpu"]["appliance_process_s"],
                                                    anchor["bytes"]),
            "mpterm_path_bytes": mpterm["path_bytes"],
            "anchor_path_bytes": anchor["path_bytes"],
            "mpterm_cpu": mpterm["cpu"],
            "anchor_cpu": anchor["cpu"],
            "reference_lab_cpu_s": round(ref_lab, 3) if ref_lab is not None else None,
            "reference_runs": len(refs),
            "ok": mpterm["ok"] and anchor["ok"],
            "load_average": [mpterm["load_average"], anchor["load_average"]],
        }
        if paths == 2:
            entry["note"] = ("mpterm does not accept MP_JOIN yet (issue 7): its two-path run "
                             "carries one subflow; the anchor's carries two")
            entry["mpterm_second_path_share"] = second_path_share(mpterm["path_bytes"])
            entry["anchor_second_path_share"] = second_path_share(anchor["path_bytes"])
        results.append(entry)

    parameters = {
        "size_mib": args.size_mib,
        "checksum": args.checksum,
        "runs": args.runs,
        "connections": args.connections,
        "dpdk_device": args.dpdk_device,
        "haproxy_threads": args.haproxy_threads,
        "anchor": "Linux MPTCP (net.mptcp.checksum_enabled as checksum) + HAProxy "
                  + haproxy_version() + " in TCP mode under mptcpize run",
        "client": "Linux MPTCP, tests/lab/peer.py client",
        "backend": "Linux TCP, tests/lab/peer.py backend",
        "reference": "the same client (plain TCP) and backend over a direct veth, no appliance",
        "cpu_method": ("mpterm_cpu_s_per_gib: mpterm's utime+stime; anchor_cpu_s_per_gib and "
                       "mpterm_whole_cpu_s_per_gib: (client + backend + appliance + ksoftirqd "
                       "CPU time) minus the same for the reference transfer; "
                       "anchor_process_cpu_s_per_gib: HAProxy's utime+stime; all per GiB moved "
                       "(both directions counted), between client start and both peers' exit"),
        "load_average_at_start": args.load_at_start,
        "failed_transfers": [t["name"] for t in failures],
    }
    report = envelope("lab-side-by-side", args, parameters, results)
    write_json(args.out, report)

    # One run is enough to see goodput over time; the file stays readable.
    series = []
    for t in sorted((t for t in transfers if t["run"] == 1), key=lambda t: t["name"]):
        receiver = "backend" if t["direction"] == "upload" else "client"
        run_dir = os.path.join(args.runs_dir, t["name"])
        streams = []
        if receiver == "backend" and os.path.exists(os.path.join(run_dir, "backend.json")):
            streams = [(c.get("index", i), c.get("received_per_interval"))
                       for i, c in enumerate(read_json(os.path.join(run_dir, "backend.json"))
                                             .get("connections", []))]
        elif receiver == "client":
            for path in sorted(glob.glob(os.path.join(run_dir, "client-*.json"))):
                c = read_json(path)
                streams.append((c.get("index", 0), c.get("received_per_interval")))
        for index, counted in sorted(streams, key=lambda s: s[0]):
            if not counted:
                continue
            who = {"haproxy": "anchor"}.get(t["appliance"], t["appliance"])
            series.append({
                "label": f"{who} conn {index} {t['direction']}, {t['paths']} "
                         f"path{'s' if t['paths'] > 1 else ''}, {t['transfer']}, run {t['run']}",
                "interval_ms": int(round(counted["interval_ms"])),
                "bytes": counted["bytes"],
                "appliance": t["appliance"], "paths": t["paths"], "direction": t["direction"],
                "transfer": t["transfer"], "run": t["run"], "connection": index,
            })
    timeseries = envelope("lab-timeseries", args, {
        "interval_ms": args.sample_interval_ms,
        "measured_at": "the receiver (backend for uploads, client for downloads), "
                       "from the start of its connection's transfer",
        "runs": "run 1 of each transfer",
        "source": os.path.basename(args.out)}, series)
    write_json(args.timeseries_out, timeseries)
    print_table(results, failures)
    return 1 if failures else 0


def haproxy_version() -> str:
    out = subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout
    words = out.split()
    return words[2] if len(words) > 2 else "?"


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def second_path_share(path_bytes: dict) -> str:
    """How much of the client's traffic (tx+rx bytes of c0 and c1) went over the second path."""
    total = sum(path_bytes.values())
    second = path_bytes.get("c1", 0)
    return f"{100.0 * second / total:.1f} %" if total else "-"


def print_table(results: list[dict], failures: list[dict]) -> None:
    print()
    print("side by side (goodput in Gbit/s; CPU in seconds per GiB moved; whole = lab minus "
          "the reference transfer, process = the appliance's own utime+stime)")
    header = (f"{'transfer':<18} {'paths':>5} {'direction':<9} {'run':>3} {'mpterm':>7} "
              f"{'anchor':>7} {'ratio':>6}   {'mpterm cpu':>10} {'anchor cpu':>10}   "
              f"{'mpterm whole':>12} {'anchor proc':>11}   {'other s':>9}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['transfer']:<18} {r['paths']:>5} {r['direction']:<9} {r['run']:>3} "
              f"{r['mpterm_gbps']:>7.3f} {r['anchor_gbps']:>7.3f} {fmt(r['ratio'], '>6.3f')}   "
              f"{fmt(r['mpterm_cpu_s_per_gib'], '>10.2f')} {fmt(r['anchor_cpu_s_per_gib'], '>10.2f')}   "
              f"{fmt(r['mpterm_whole_cpu_s_per_gib'], '>12.2f')} "
              f"{fmt(r['anchor_process_cpu_s_per_gib'], '>11.2f')}   "
              f"{r['mpterm_cpu']['other_s']:>4.1f}/{r['anchor_cpu']['other_s']:<4.1f}"
              + ("" if r["ok"] else "  FAILED"))
        if r["paths"] == 2:
            print(f"{'':<18} {'':>5} second path's share of the client's bytes: mpterm "
                  f"{second_path_share(r['mpterm_path_bytes'])} (one subflow: mpterm does not "
                  f"accept MP_JOIN yet, issue 7), anchor {second_path_share(r['anchor_path_bytes'])}")
    print("(mpterm cpu: mpterm's process time. anchor cpu: HAProxy plus the kernel work done for "
          "it, whole-machine method. other s: CPU seconds the rest of the machine used during "
          "the mpterm/anchor transfer; near 0 is a quiet machine.)")
    for t in failures:
        print(f"FAILED transfer {t['name']}: {'; '.join(t['problems'])}")


def lossy_emulator_counts(path: str) -> dict:
    """Frames offered, dropped and reordered per direction from one emulator log's exit lines
    ("a-to-b: offered N (B B), ..., dropped: down N, queue N, random N, burst N, ...;
    reordered N, ..."); they cover the whole run of one side, its upload and its download."""
    counts = {}
    if not os.path.exists(path):
        return counts
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            name, _, rest = line.partition(": offered ")
            if name not in ("a-to-b", "b-to-a") or not rest:
                continue
            fields = {}
            words = rest.replace(",", " ").replace(";", " ").replace("(", " ").split()
            fields["offered"] = int(words[0])
            for key in ("queue", "random", "burst", "reordered"):
                if key in words:
                    fields[key] = int(words[words.index(key) + 1])
            counts["to_appliance" if name == "a-to-b" else "to_client"] = fields
    return counts


def cmd_lossy_report(args) -> int:
    """Medians per condition and direction of mpterm and Linux (lossy-bench.sh); the result is
    a lab-side-by-side report, one entry per condition and direction, so mpterm-plot draws it."""
    transfers = [read_json(p) for p in sorted(glob.glob(os.path.join(args.runs_dir, "*",
                                                                      "transfer.json")))]
    conditions = []
    for spec in args.condition:
        name, options, mib = spec.split("|")
        conditions.append((name, options, int(mib)))
    results = []
    failures = [t for t in transfers if not t["ok"]]
    for name, options, mib in conditions:
        for direction in ("upload", "download"):
            def runs_of(appliance: str) -> list[dict]:
                return sorted((t for t in transfers if t.get("condition") == name
                               and t["direction"] == direction and t["appliance"] == appliance),
                              key=lambda t: t["run"])
            ours, theirs = runs_of("mpterm"), runs_of("haproxy")

            def mbit(runs: list[dict]) -> list[float]:
                return [round(t["gbps"] * 1000, 1) for t in runs if t["ok"]]

            def median(values: list[float]) -> float | None:
                return round(statistics.median(values), 1) if values else None

            mpterm_median, linux_median = median(mbit(ours)), median(mbit(theirs))
            ratio = (round(mpterm_median / linux_median, 3)
                     if mpterm_median is not None and linux_median else None)

            def cpu_per_gib(runs: list[dict]) -> float | None:
                values = [per_gib(t["cpu"]["appliance_process_s"], t["bytes"])
                          for t in runs if t["ok"]]
                return round(statistics.median(values), 3) if values else None

            emulator = {}
            for t in ours + theirs:
                counts = lossy_emulator_counts(os.path.join(
                    args.runs_dir, f"{t['appliance']}-{name}-run{t['run']}.linkem.log"))
                emulator.setdefault(t["appliance"], []).append(counts)
            results.append({
                "transfer": f"{mib} MiB {name.removeprefix('lossy-')}",
                "condition": name,
                "linkem_options": options,
                "paths": 1,
                "direction": direction,
                "connections": 1,
                "mpterm_gbps": round((mpterm_median or 0.0) / 1000, 4),
                "anchor_gbps": round((linux_median or 0.0) / 1000, 4),
                "ratio": ratio,
                "mpterm_cpu_s_per_gib": cpu_per_gib(ours),
                "anchor_cpu_s_per_gib": None,
                "anchor_process_cpu_s_per_gib": cpu_per_gib(theirs),
                "mpterm_mbit_median": mpterm_median,
                "linux_mbit_median": linux_median,
                "mpterm_mbit_runs": mbit(ours),
                "linux_mbit_runs": mbit(theirs),
                "mpterm_failed_runs": [t["run"] for t in ours if not t["ok"]],
                "linux_failed_runs": [t["run"] for t in theirs if not t["ok"]],
                "goal_met": ratio is not None and ratio >= args.goal,
                "emulator_counts": emulator,
                "load_average": [t["load_average"] for t in ours + theirs],
            })
    parameters = {
        "runs": args.runs,
        "checksum": 1,
        "goal_ratio": args.goal,
        "conditions": [{"name": n, "linkem_options": o, "mib": m} for n, o, m in conditions],
        "order": "per run and condition, mpterm first in odd runs and Linux first in even ones; "
                 "each on a fresh lab, emulator (same seed for both) and appliance run, the "
                 "upload then the download",
        "mpterm": "mpterm on DPDK af_packet in the app namespace",
        "linux": "Linux MPTCP terminating the connection in the app namespace, HAProxy "
                 + haproxy_version() + " in TCP mode (one thread) under mptcpize run relaying "
                 "to the backend (LAB_APPLIANCE=haproxy, the side-by-side benchmark's anchor)",
        "linux_congestion_control": os.environ.get("LAB_TCP_CONGESTION_CONTROL", "cubic"),
        "client": "Linux MPTCP, tests/lab/peer.py client, DSS checksums on",
        "backend": "Linux TCP, tests/lab/peer.py backend",
        "path": "c0 ==veth== [mpterm-linkem, both directions impaired] ==veth== a0",
        "median_of": "the runs whose transfer was byte-exact and passed every check; ratio is "
                     "mpterm's median over Linux's",
        "anchor_gbps": "Linux's median (the plot's anchor bar)",
        "load_average_at_start": args.load_at_start,
        "failed_transfers": [t["name"] for t in failures],
    }
    write_json(args.out, envelope("lab-side-by-side", args, parameters, results))
    print()
    print(f"TCP on emulated lossy paths: medians of {args.runs} run(s), goodput in Mbit/s "
          f"(mpterm's goal: >= {args.goal:.0%} of Linux; Linux's TCP with "
          f"{parameters['linux_congestion_control']})")
    header = (f"{'condition':<20} {'direction':<9} {'mpterm':>8} {'Linux':>8} {'ratio':>6}  "
              f"{'goal':<4}  runs (mpterm; Linux)")
    print(header)
    print("-" * len(header))
    for r in results:
        def runs_text(values: list[float], failed: list[int]) -> str:
            text = " ".join(f"{v:.1f}" for v in values) or "-"
            return text + (f" (run {','.join(map(str, failed))} failed)" if failed else "")

        print(f"{r['condition'].removeprefix('lossy-'):<20} {r['direction']:<9} "
              f"{fmt(r['mpterm_mbit_median'], '>8.1f')} {fmt(r['linux_mbit_median'], '>8.1f')} "
              f"{fmt(r['ratio'], '>6.2f')}  {'yes' if r['goal_met'] else 'no':<4}  "
              f"{runs_text(r['mpterm_mbit_runs'], r['mpterm_failed_runs'])}; "
              f"{runs_text(r['linux_mbit_runs'], r['linux_failed_runs'])}")
    for name, options, mib in conditions:
        print(f"  {name.removeprefix('lossy-')}: {mib} MiB one way, mpterm-linkem {options}")
    for t in failures:
        print(f"FAILED transfer {t['name']}: {'; '.join(t['problems'])[:400]}")
    return 0


def cmd_table(args) -> int:
    transfers = [read_json(p) for p in sorted(glob.glob(os.path.join(args.runs_dir, "*",
                                                                      "transfer.json")))]
    print()
    print(f"{'transfer':<40} {'Gbit/s':>7} {'proc cpu/GiB':>12} {'lab cpu/GiB':>11} "
          f"{'other s':>7}  load")
    for t in sorted(transfers, key=lambda t: (t["direction"], t["name"])):
        cpu = t["cpu"]
        print(f"{t['name']:<40} {t['gbps']:>7.3f} "
              f"{per_gib(cpu['appliance_process_s'], t['bytes']):>12.2f} "
              f"{per_gib(cpu['lab_s'], t['bytes']):>11.2f} {cpu['other_s']:>7.1f}  "
              f"{' '.join(t['load_average'])}" + ("" if t["ok"] else "  FAILED: "
                                                   + "; ".join(t["problems"])[:300]))
    return 0 if all(t["ok"] for t in transfers) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command_name", required=True)

    p = sub.add_parser("transfer", help="one measured transfer")
    p.add_argument("--name", required=True)
    p.add_argument("--appliance", choices=["mpterm", "haproxy", "reference"], required=True)
    p.add_argument("--appliance-pid", type=int, help="the appliance process (none: reference)")
    p.add_argument("--transfer", required=True, help="what is moved, e.g. '1000 MiB'")
    p.add_argument("--condition", default="",
                   help="the emulated path's condition (lossy-bench.sh), e.g. lossy-loss1pct")
    p.add_argument("--paths", type=int, default=1)
    p.add_argument("--direction", choices=["upload", "download"], required=True)
    p.add_argument("--run", type=int, default=1)
    p.add_argument("--client-ns", required=True)
    p.add_argument("--backend-ns", required=True)
    p.add_argument("--connect", required=True)
    p.add_argument("--listen", required=True)
    p.add_argument("--mode", choices=["mptcp", "tcp"], default="mptcp")
    p.add_argument("--c2b", type=int, required=True)
    p.add_argument("--b2c", type=int, required=True)
    p.add_argument("--connections", type=int, default=1)
    p.add_argument("--checksum", type=int, choices=[0, 1], default=1)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--sample-interval-ms", type=int, default=100)
    p.add_argument("--settle-s", type=float, default=1.0,
                   help="idle time before the transfer, after the last one's sockets closed")
    p.add_argument("--expect-counter", action="append", metavar="NAME=DELTA")
    p.add_argument("--show-counter", action="append", metavar="NAME")
    p.add_argument("--path-device", action="append", help="client interface whose bytes to count")
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--peer", required=True, help="tests/lab/peer.py")
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_transfer)

    p = sub.add_parser("table", help="one line per transfer of a directory")
    p.add_argument("--runs-dir", required=True)
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("report", help="pair the transfers, print, write the result files")
    p.add_argument("--runs-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--timeseries-out", required=True)
    p.add_argument("--repo", required=True)
    p.add_argument("--commit", help="default: git rev-parse --short HEAD (+dirty)")
    p.add_argument("--started-at", required=True)
    p.add_argument("--command", required=True)
    p.add_argument("--size-mib", type=int, required=True)
    p.add_argument("--checksum", type=int, required=True)
    p.add_argument("--runs", type=int, required=True)
    p.add_argument("--connections", type=int, nargs="+", required=True)
    p.add_argument("--dpdk-device", required=True)
    p.add_argument("--haproxy-threads", type=int, required=True)
    p.add_argument("--sample-interval-ms", type=int, default=100)
    p.add_argument("--load-at-start", default="")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("lossy-report",
                       help="medians per condition and direction (lossy-bench.sh), table and file")
    p.add_argument("--runs-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--repo", required=True)
    p.add_argument("--commit", help="default: git rev-parse --short HEAD (+dirty)")
    p.add_argument("--started-at", required=True)
    p.add_argument("--command", required=True)
    p.add_argument("--runs", type=int, required=True)
    p.add_argument("--condition", action="append", required=True, metavar="NAME|OPTIONS|MIB",
                   help="a condition in table order: name, mpterm-linkem options, MiB moved")
    p.add_argument("--goal", type=float, default=0.9, help="mpterm over Linux that meets the goal")
    p.add_argument("--load-at-start", default="")
    p.set_defaults(func=cmd_lossy_report)

    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
