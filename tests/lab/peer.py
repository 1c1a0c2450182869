#!/usr/bin/env python3
"""Traffic peers and checkers for the mpterm namespace lab.

Every program the lab runs inside a namespace lives here, so that the lab needs nothing but
python3's standard library:

  client         the Linux MPTCP (or plain TCP) client: sends and receives at the same time
  backend        the plain TCP backend: receives until EOF (optionally slowly) while sending
  standin-proxy  the kernel stand-in appliance: MPTCP listener, plain TCP upstream, relays both
                 ways with half-close
  check          compares a client report with a backend report (length and SHA-256 each way)
  counters       snapshots the MPTcpExt counters of the current network namespace, or asserts
                 on the difference between two snapshots
  rss-monitor    samples a process's VmRSS until told to stop
  rss-check      asserts that the sampled RSS grew by less than a bound

Data is deterministic: a seeded random.Random generates it in chunks, so a failing run can be
replayed byte for byte, and no side ever holds a whole transfer in memory.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import queue
import random
import signal
import socket
import struct
import sys
import threading
import time

IPPROTO_MPTCP = 262
SOL_MPTCP = 284
MPTCP_INFO = 1
# getsockopt(SOL_TCP, TCP_IS_MPTCP) answers 1 on a socket that is MPTCP and has not fallen back
# to plain TCP, 0 otherwise (Linux >= 5.16).
TCP_IS_MPTCP = 43
MPTCP_INFO_FLAG_FALLBACK = 1 << 0
MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED = 1 << 1

CHUNK = 256 * 1024


def parse_endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected ADDRESS:PORT, got {text!r}")
    return host, int(port)


def write_json(path: str | None, report: dict) -> None:
    text = json.dumps(report, indent=2, sort_keys=True)
    if path:
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        os.replace(tmp, path)
    else:
        print(text)


class Digest:
    """Length and SHA-256 of one direction of a byte stream."""

    def __init__(self) -> None:
        self.length = 0
        self.sha = hashlib.sha256()

    def update(self, data) -> None:
        self.length += len(data)
        self.sha.update(data)

    def as_dict(self) -> dict:
        return {"bytes": self.length, "sha256": self.sha.hexdigest()}


def send_seeded(sock: socket.socket, total: int, seed: int, digest: Digest) -> None:
    """Sends `total` bytes from a generator seeded with `seed`, then shuts the write side."""
    rng = random.Random(seed)
    remaining = total
    while remaining > 0:
        chunk = rng.randbytes(min(CHUNK, remaining))
        digest.update(chunk)
        sock.sendall(chunk)
        remaining -= len(chunk)
    sock.shutdown(socket.SHUT_WR)


def receive_until_eof(sock: socket.socket, digest: Digest, chunk: int = CHUNK,
                      delay_s: float = 0.0) -> None:
    """Receives until the peer's FIN. With a delay, sleeps between small reads so that the
    receive window closes and the sender feels back-pressure."""
    buf = bytearray(chunk)
    view = memoryview(buf)
    while True:
        n = sock.recv_into(view, chunk)
        if n == 0:
            return
        digest.update(view[:n])
        if delay_s > 0:
            time.sleep(delay_s)


class Worker(threading.Thread):
    """A thread that remembers the exception that ended it."""

    def __init__(self, name: str, target, *args) -> None:
        super().__init__(name=name, daemon=True)
        self._fn = target
        self._args = args
        self.error: str | None = None

    def run(self) -> None:
        try:
            self._fn(*self._args)
        except Exception as exc:  # reported, not swallowed: it ends up in the JSON report
            self.error = f"{self.name}: {type(exc).__name__}: {exc}"


def mptcp_info(sock: socket.socket) -> dict | None:
    """Reads struct mptcp_info (include/uapi/linux/mptcp.h); None on a plain TCP socket."""
    try:
        raw = sock.getsockopt(SOL_MPTCP, MPTCP_INFO, 48)
    except OSError:
        return None
    if len(raw) < 43:
        return None
    subflows = raw[0]
    flags, token = struct.unpack_from("<II", raw, 8)
    return {
        # mptcpi_subflows counts the subflows beyond the initial one.
        "additional_subflows": subflows,
        "flags": flags,
        "fallback": bool(flags & MPTCP_INFO_FLAG_FALLBACK),
        "remote_key_received": bool(flags & MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED),
        "token": token,
        "csum_enabled": raw[42],
    }


def is_mptcp(sock: socket.socket) -> bool:
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, TCP_IS_MPTCP) == 1
    except OSError:
        return False


def run_transfer(sock: socket.socket, send_bytes: int, seed: int, deadline: float,
                 recv_chunk: int = CHUNK, read_delay_s: float = 0.0) -> dict:
    """Sends and receives at once on one connection until both directions are done or the
    deadline passes. Returns the per-direction digests and any error."""
    sent, received = Digest(), Digest()
    sender = Worker("sender", send_seeded, sock, send_bytes, seed, sent)
    receiver = Worker("receiver", receive_until_eof, sock, received, recv_chunk, read_delay_s)
    start = time.monotonic()
    sender.start()
    receiver.start()
    errors = []
    for worker in (sender, receiver):
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            errors.append(f"{worker.name}: timed out")
        elif worker.error:
            errors.append(worker.error)
    elapsed = time.monotonic() - start
    return {
        "sent": sent.as_dict(),
        "received": received.as_dict(),
        "elapsed_s": round(elapsed, 6),
        "errors": errors,
    }


def cmd_client(args) -> int:
    deadline = time.monotonic() + args.timeout
    proto = IPPROTO_MPTCP if args.mptcp else socket.IPPROTO_TCP
    report: dict = {"role": "client", "mode": "mptcp" if args.mptcp else "tcp",
                    "connect": f"{args.connect[0]}:{args.connect[1]}", "seed": args.seed}
    rc = 0
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
    except OSError as exc:
        report["errors"] = [f"socket(IPPROTO_MPTCP): {exc} (is net.mptcp.enabled=1?)"]
        write_json(args.report, report)
        return 1
    try:
        sock.settimeout(max(1.0, deadline - time.monotonic()))
        sock.connect(args.connect)
        report["is_mptcp"] = is_mptcp(sock)
        report["mptcp_info_after_connect"] = mptcp_info(sock)
        result = run_transfer(sock, args.send_bytes, args.seed, deadline)
        report.update(result)
        report["mptcp_info_after_transfer"] = mptcp_info(sock)
    except OSError as exc:
        report.setdefault("errors", []).append(f"connect/transfer: {type(exc).__name__}: {exc}")
    finally:
        errors = report.setdefault("errors", [])
        if args.mptcp and report.get("is_mptcp") is False:
            errors.append("socket fell back to plain TCP (TCP_IS_MPTCP=0)")
        if not args.mptcp and report.get("is_mptcp"):
            errors.append("plain TCP socket reports MPTCP")
        if "received" in report and report["received"]["bytes"] != args.recv_bytes:
            errors.append(f"received {report['received']['bytes']} bytes, expected {args.recv_bytes}")
        if "sent" in report and report["sent"]["bytes"] != args.send_bytes:
            errors.append(f"sent {report['sent']['bytes']} bytes, expected {args.send_bytes}")
        rc = 1 if errors else 0
        report["ok"] = rc == 0
        write_json(args.report, report)
    # Threads still blocked on a timed-out socket must not keep the process alive.
    sys.stdout.flush()
    os._exit(rc)


def cmd_backend(args) -> int:
    deadline = time.monotonic() + args.timeout
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(args.listen)
    listener.listen(args.count)
    if args.ready_file:
        with open(args.ready_file, "w", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")
    report: dict = {"role": "backend", "listen": f"{args.listen[0]}:{args.listen[1]}",
                    "seed": args.seed, "connections": [], "errors": []}
    threads = []
    results: list[dict] = []

    def serve(conn: socket.socket, peer, index: int) -> None:
        recv_chunk = args.read_chunk if args.read_delay_ms > 0 else CHUNK
        result = run_transfer(conn, args.send_bytes, args.seed + index, deadline,
                              recv_chunk=recv_chunk, read_delay_s=args.read_delay_ms / 1000.0)
        result["peer"] = f"{peer[0]}:{peer[1]}"
        results.append(result)
        conn.close()

    try:
        for index in range(args.count):
            listener.settimeout(max(0.1, deadline - time.monotonic()))
            conn, peer = listener.accept()
            conn.settimeout(max(1.0, deadline - time.monotonic()))
            t = threading.Thread(target=serve, args=(conn, peer, index), daemon=True)
            t.start()
            threads.append(t)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                report["errors"].append("connection timed out")
    except OSError as exc:
        report["errors"].append(f"accept: {type(exc).__name__}: {exc}")
    report["connections"] = results
    for result in results:
        report["errors"].extend(result["errors"])
        if result["sent"]["bytes"] != args.send_bytes:
            report["errors"].append(f"sent {result['sent']['bytes']} bytes, expected {args.send_bytes}")
    rc = 1 if report["errors"] else 0
    report["ok"] = rc == 0
    write_json(args.report, report)
    sys.stdout.flush()
    os._exit(rc)


def relay(src: socket.socket, dst: socket.socket, corrupt_offset: int | None = None,
          truncate_after: int | None = None) -> None:
    """Copies src to dst until src's FIN, then passes the FIN on (half-close).

    The two optional faults exist only for the lab's self-test (selftest.sh), which proves that
    the checks catch a broken appliance: `corrupt_offset` flips one bit of the byte at that
    stream offset; `truncate_after` forwards only that many bytes, then ends both connections."""
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    position = 0
    while True:
        n = src.recv_into(view, CHUNK)
        if n == 0:
            dst.shutdown(socket.SHUT_WR)
            return
        if corrupt_offset is not None and position <= corrupt_offset < position + n:
            buf[corrupt_offset - position] ^= 0x01
        if truncate_after is not None and position + n >= truncate_after:
            dst.sendall(view[:truncate_after - position])
            dst.shutdown(socket.SHUT_WR)
            src.shutdown(socket.SHUT_RDWR)
            return
        dst.sendall(view[:n])
        position += n


def relay_unbounded(src: socket.socket, dst: socket.socket) -> None:
    """A deliberately broken relay for the self-test: it reads src as fast as it can into an
    unbounded queue, whatever dst accepts, so it ignores back-pressure and its memory grows
    with the backlog. The slow-backend scenario's RSS bound must catch it."""
    backlog: queue.SimpleQueue = queue.SimpleQueue()

    def drain() -> None:
        while True:
            chunk = backlog.get()
            if chunk is None:
                dst.shutdown(socket.SHUT_WR)
                return
            dst.sendall(chunk)

    writer = Worker("unbounded-writer", drain)
    writer.start()
    while True:
        chunk = src.recv(CHUNK)
        if not chunk:
            backlog.put(None)
            break
        backlog.put(chunk)
    writer.join()
    if writer.error:
        raise OSError(writer.error)


def parse_fault(text: str) -> tuple[str, int]:
    kind, _, value = text.partition(":")
    if kind not in ("corrupt-c2b", "truncate-b2c", "unbounded-c2b"):
        raise argparse.ArgumentTypeError(f"unknown fault {kind!r}")
    return kind, int(value or 0)


def cmd_standin_proxy(args) -> int:
    """The kernel stand-in appliance: the Linux kernel terminates MPTCP, this program relays."""
    proto = socket.IPPROTO_TCP if args.listen_plain_tcp else IPPROTO_MPTCP
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(args.listen)
    listener.listen(128)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    if args.ready_file:
        with open(args.ready_file, "w", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")
    fault_kind, fault_value = args.fault or ("none", 0)
    print(f"standin-proxy: listening ({'TCP' if args.listen_plain_tcp else 'MPTCP'}) on "
          f"{args.listen[0]}:{args.listen[1]}, backend {args.backend[0]}:{args.backend[1]}, "
          f"fault {fault_kind}:{fault_value}", flush=True)

    def handle(client: socket.socket, peer) -> None:
        try:
            upstream = socket.create_connection(args.backend, timeout=10)
            upstream.settimeout(None)
        except OSError as exc:
            print(f"standin-proxy: {peer}: backend connect failed: {exc}", flush=True)
            client.close()
            return
        print(f"standin-proxy: {peer[0]}:{peer[1]} accepted, mptcp={is_mptcp(client)}", flush=True)
        if fault_kind == "unbounded-c2b":
            up = Worker("client->backend", relay_unbounded, client, upstream)
        else:
            up = Worker("client->backend", relay, client, upstream,
                        fault_value if fault_kind == "corrupt-c2b" else None)
        down = Worker("backend->client", relay, upstream, client, None,
                      fault_value if fault_kind == "truncate-b2c" else None)
        up.start()
        down.start()
        up.join()
        down.join()
        for worker in (up, down):
            if worker.error:
                print(f"standin-proxy: {peer[0]}:{peer[1]}: {worker.error}", flush=True)
        client.close()
        upstream.close()
        print(f"standin-proxy: {peer[0]}:{peer[1]} closed", flush=True)

    while True:
        client, peer = listener.accept()
        threading.Thread(target=handle, args=(client, peer), daemon=True).start()


def read_proc_groups(path: str) -> dict[str, dict[str, int]]:
    """Parses a /proc/net/{netstat,snmp} file: pairs of lines "Group: names..." and
    "Group: values...", of the calling process's network namespace."""
    with open(path, encoding="ascii") as f:
        lines = f.read().splitlines()
    groups: dict[str, dict[str, int]] = {}
    for names, values in zip(lines[::2], lines[1::2]):
        group = names.split(":", 1)[0]
        if values.split(":", 1)[0] != group:
            continue
        keys = names.split()[1:]
        nums = [int(v) for v in values.split()[1:]]
        groups[group] = dict(zip(keys, nums))
    return groups


def read_mptcp_counters() -> dict[str, int]:
    """The namespace's MPTcpExt counters under their own names, plus a few TCP counters as
    "Tcp.NAME" / "TcpExt.NAME": checksum and input errors (what the appliance sent was malformed)
    and retransmissions (context for a reader)."""
    netstat = read_proc_groups("/proc/net/netstat")
    if "MPTcpExt" not in netstat:
        raise SystemExit("no MPTcpExt counters in /proc/net/netstat (kernel without MPTCP?)")
    counters = dict(netstat["MPTcpExt"])
    snmp = read_proc_groups("/proc/net/snmp")
    for name in ("RetransSegs", "InCsumErrors", "InErrs"):
        counters[f"Tcp.{name}"] = snmp.get("Tcp", {}).get(name, 0)
    counters["TcpExt.TCPLostRetransmit"] = netstat.get("TcpExt", {}).get("TCPLostRetransmit", 0)
    return counters


def cmd_counters(args) -> int:
    if args.action == "snapshot":
        write_json(args.out, read_mptcp_counters())
        return 0
    with open(args.before, encoding="utf-8") as f:
        before = json.load(f)
    with open(args.after, encoding="utf-8") as f:
        after = json.load(f)
    failures = []
    checked = []
    for expectation in args.expect:
        name, _, value = expectation.partition("=")
        if name not in after:
            failures.append(f"counter {name} does not exist on this kernel")
            continue
        delta = after[name] - before.get(name, 0)
        checked.append(f"{name}+{delta}")
        if delta != int(value):
            failures.append(f"{name} delta {delta}, expected {value}")
    nonzero = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    if failures:
        print("counters: FAIL: " + "; ".join(failures))
        print(f"counters: all changed MPTcpExt deltas: {nonzero}")
        return 1
    retrans = after.get("Tcp.RetransSegs", 0) - before.get("Tcp.RetransSegs", 0)
    print("counters: " + " ".join(checked) + f" (client TCP RetransSegs+{retrans})")
    return 0


def match_connections(clients: list[dict], conns: list[dict]) -> tuple[list, list[str]]:
    """Pairs each client report with the backend connection that carries its bytes: the one
    whose received digest is the client's sent digest and whose sent digest is the client's
    received digest. Every stream has its own seed, so a pairing exists only if every byte of
    every stream arrived intact."""
    pairs, failures, unused = [], [], list(range(len(conns)))
    for index, client in enumerate(clients):
        if "sent" not in client or "received" not in client:
            failures.append(f"client {index}: report incomplete")
            continue
        match = next((j for j in unused if conns[j]["received"] == client["sent"]
                      and conns[j]["sent"] == client["received"]), None)
        if match is None:
            if len(clients) == 1 and len(conns) == 1:
                conn = conns[0]
                if client["sent"] != conn["received"]:
                    failures.append(f"client->backend differs: client sent {client['sent']}, "
                                    f"backend received {conn['received']}")
                if conn["sent"] != client["received"]:
                    failures.append(f"backend->client differs: backend sent {conn['sent']}, "
                                    f"client received {client['received']}")
            else:
                failures.append(f"client {index}: no backend connection carries its streams "
                                f"(sent {client['sent']}, received {client['received']})")
            continue
        unused.remove(match)
        pairs.append((client, conns[match]))
    return pairs, failures


def cmd_check(args) -> int:
    clients = []
    for path in args.client:
        with open(path, encoding="utf-8") as f:
            clients.append(json.load(f))
    with open(args.backend, encoding="utf-8") as f:
        backend = json.load(f)
    failures = []
    for index, client in enumerate(clients):
        failures += [f"client {index}: {e}" for e in client.get("errors", [])]
    failures += [f"backend: {e}" for e in backend.get("errors", [])]
    conns = backend.get("connections", [])
    if len(conns) != len(clients):
        failures.append(f"backend saw {len(conns)} connections, expected {len(clients)}")
    pairs, match_failures = match_connections(clients, conns)
    failures += match_failures
    for index, (client, conn) in enumerate(pairs):
        if client["sent"]["bytes"] != args.send_bytes:
            failures.append(f"client {index} sent {client['sent']['bytes']}, expected {args.send_bytes}")
        if conn["sent"]["bytes"] != args.recv_bytes:
            failures.append(f"backend sent {conn['sent']['bytes']}, expected {args.recv_bytes}")
    for index, client in enumerate(clients):
        if args.expect_mptcp is not None:
            want = args.expect_mptcp == "yes"
            if client.get("is_mptcp") != want:
                failures.append(f"client {index} is_mptcp={client.get('is_mptcp')}, expected {want}")
        if args.expect_csum is not None:
            info = client.get("mptcp_info_after_connect") or {}
            if info.get("csum_enabled") != args.expect_csum:
                failures.append(f"client {index} mptcp_info csum_enabled={info.get('csum_enabled')}, "
                                f"expected {args.expect_csum}")
    # A transfer is over when every receiver has seen EOF; with half-close a client may be done
    # long before a slow backend has read everything, so the latest of them counts.
    elapsed = max([c.get("elapsed_s") or 0.0 for c in clients + conns] + [0.0])
    moved = sum(c.get("sent", {}).get("bytes", 0) + c.get("received", {}).get("bytes", 0)
                for c in clients)
    mbit = moved * 8 / elapsed / 1e6 if elapsed > 0 else 0.0
    summary = {"bytes": moved, "seconds": round(elapsed, 3), "mbit_per_s": round(mbit, 1)}
    if args.summary:
        write_json(args.summary, summary)
    if failures:
        for failure in failures:
            print(f"check: FAIL: {failure}")
        return 1
    csum = sorted({str((c.get("mptcp_info_after_connect") or {}).get("csum_enabled")) for c in clients})
    mptcp = sorted({str(c.get("is_mptcp")) for c in clients})
    first = clients[0]
    streams = (f"{len(clients)} connections, each " if len(clients) > 1 else "")
    print(f"check: {streams}c->b {first['sent']['bytes']} B, b->c {first['received']['bytes']} B, "
          f"length and sha256 equal at both ends (c->b {first['sent']['sha256'][:12]}.., "
          f"b->c {first['received']['sha256'][:12]}..); is_mptcp={','.join(mptcp)} "
          f"csum_enabled={','.join(csum)}; goodput {moved} B in {elapsed:.3f} s = {mbit:.1f} Mbit/s")
    return 0


def read_rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cmd_rss_monitor(args) -> int:
    samples: list[int] = []
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    deadline = time.monotonic() + args.timeout
    while not stop.is_set() and time.monotonic() < deadline:
        rss = read_rss_kib(args.pid)
        if rss is None:
            break
        samples.append(rss)
        if len(samples) == 1 and args.ready_file:
            with open(args.ready_file, "w", encoding="utf-8") as f:
                f.write(f"{rss}\n")
        stop.wait(args.interval_ms / 1000.0)
    write_json(args.out, {
        "pid": args.pid,
        "samples": len(samples),
        "start_kib": samples[0] if samples else None,
        "max_kib": max(samples) if samples else None,
        "end_kib": samples[-1] if samples else None,
    })
    return 0


def cmd_rss_check(args) -> int:
    with open(args.file, encoding="utf-8") as f:
        rss = json.load(f)
    if not rss.get("samples"):
        print("rss: FAIL: no samples (appliance process gone?)")
        return 1
    growth_kib = rss["max_kib"] - rss["start_kib"]
    bound_kib = args.max_growth_mib * 1024
    line = (f"appliance RSS start {rss['start_kib']} KiB, max {rss['max_kib']} KiB, growth "
            f"{growth_kib} KiB (bound {bound_kib} KiB, {rss['samples']} samples)")
    if growth_kib >= bound_kib:
        print(f"rss: FAIL: {line}")
        return 1
    print(f"rss: {line}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("client", help="MPTCP/TCP client")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--mptcp", action="store_true")
    mode.add_argument("--tcp", action="store_true")
    p.add_argument("--connect", type=parse_endpoint, required=True)
    p.add_argument("--send-bytes", type=int, required=True)
    p.add_argument("--recv-bytes", type=int, required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--report")
    p.set_defaults(func=cmd_client)

    p = sub.add_parser("backend", help="plain TCP backend")
    p.add_argument("--listen", type=parse_endpoint, required=True)
    p.add_argument("--send-bytes", type=int, required=True)
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--read-delay-ms", type=float, default=0.0)
    p.add_argument("--read-chunk", type=int, default=8192,
                   help="bytes per recv() when --read-delay-ms is set")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--ready-file")
    p.add_argument("--report")
    p.set_defaults(func=cmd_backend)

    p = sub.add_parser("standin-proxy", help="kernel stand-in appliance")
    p.add_argument("--listen", type=parse_endpoint, required=True)
    p.add_argument("--backend", type=parse_endpoint, required=True)
    p.add_argument("--ready-file")
    p.add_argument("--listen-plain-tcp", action="store_true",
                   help="self-test only: listen without MPTCP, so MPTCP clients fall back")
    p.add_argument("--fault", type=parse_fault,
                   help="self-test only: corrupt-c2b:OFFSET | truncate-b2c:BYTES | unbounded-c2b")
    p.set_defaults(func=cmd_standin_proxy)

    p = sub.add_parser("check", help="compare client and backend reports")
    p.add_argument("--client", required=True, action="append",
                   help="a client report; repeat for concurrent connections")
    p.add_argument("--backend", required=True)
    p.add_argument("--send-bytes", type=int, required=True, help="client->backend bytes")
    p.add_argument("--recv-bytes", type=int, required=True, help="backend->client bytes")
    p.add_argument("--expect-mptcp", choices=["yes", "no"])
    p.add_argument("--expect-csum", type=int, choices=[0, 1])
    p.add_argument("--summary", help="write bytes/seconds/goodput JSON here")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("counters", help="MPTcpExt counters of this namespace")
    p.add_argument("action", choices=["snapshot", "assert"])
    p.add_argument("--out")
    p.add_argument("--before")
    p.add_argument("--after")
    p.add_argument("--expect", action="append", default=[], metavar="NAME=DELTA")
    p.set_defaults(func=cmd_counters)

    p = sub.add_parser("rss-monitor", help="sample VmRSS of a process until SIGTERM")
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--interval-ms", type=float, default=20.0)
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--ready-file")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_rss_monitor)

    p = sub.add_parser("rss-check", help="assert bounded RSS growth")
    p.add_argument("--file", required=True)
    p.add_argument("--max-growth-mib", type=float, required=True)
    p.set_defaults(func=cmd_rss_check)

    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
