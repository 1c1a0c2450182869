#!/usr/bin/env python3
"""Traffic peers and checkers for the mpterm namespace lab.

Every program the lab runs inside a namespace lives here, so that the lab needs nothing but
python3's standard library:

  client         the Linux MPTCP (or plain TCP) client: sends and receives at the same time, on
                 one connection or on many opened at the same moment
  backend        the plain TCP backend: receives until EOF (optionally slowly) while sending, or
                 resets every connection after a given number of bytes
  standin-proxy  the kernel stand-in appliance: MPTCP listener, plain TCP upstream, relays both
                 ways with half-close
  check          compares a client report with a backend report (length and SHA-256 each way)
  check-failure  checks connections that must fail: how and when each client learnt of the
                 backend's failure, and that what did arrive is an exact prefix of what was sent
  counters       snapshots the MPTcpExt counters of the current network namespace, or asserts
                 on the difference between two snapshots
  rss-monitor    samples a process's VmRSS until told to stop
  rss-check      asserts that the sampled RSS grew by less than a bound

Data is deterministic: a seeded random.Random generates it in chunks, so a failing run can be
replayed byte for byte, and no side ever holds a whole transfer in memory.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import os
import queue
import random
import selectors
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
    """ADDRESS:PORT, or [IPV6]:PORT."""
    host, _, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected ADDRESS:PORT or [IPV6]:PORT, got {text!r}")
    return host, int(port)


def address_family(host: str) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 address: then an MPTCP socket may have subflows of both families
    (Linux's `mptcp_pm_addr_families_match`: an AF_INET socket takes IPv4 subflows only)."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


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


def seeded_chunks(seed: int, total: int):
    """The chunks of a seeded stream of `total` bytes, exactly as a sender generates them (the
    chunking is part of the stream: a prefix is only reproducible with the same chunk sizes)."""
    rng = random.Random(seed)
    remaining = total
    while remaining > 0:
        chunk = rng.randbytes(min(CHUNK, remaining))
        remaining -= len(chunk)
        yield chunk


def seeded_prefix_digest(seed: int, total: int, length: int) -> dict:
    """Length and SHA-256 of the first `length` bytes of the seeded stream of `total` bytes: what
    a receiver must hold if the stream was cut after `length` bytes but nothing was lost or
    changed before that."""
    digest = Digest()
    need = min(length, total)
    for chunk in seeded_chunks(seed, total):
        if need <= 0:
            break
        part = chunk[:need]
        digest.update(part)
        need -= len(part)
    return digest.as_dict()


def send_seeded(sock: socket.socket, total: int, seed: int, digest: Digest,
                go: threading.Event | None = None, deadline: float = 0.0,
                after_first_chunk=None) -> None:
    """Sends `total` bytes from a generator seeded with `seed`, then shuts the write side. With
    `go`, waits for it first (bounded by the deadline). `after_first_chunk`, if given, is called
    once the first chunk was handed to the kernel."""
    if go is not None and not go.wait(max(0.0, deadline - time.monotonic())):
        raise TimeoutError("the condition to start sending never came")
    for index, chunk in enumerate(seeded_chunks(seed, total)):
        # Counted before sendall: on a failure in the middle of a chunk, `sent` is an upper
        # bound of what the kernel took, which is what the prefix checks need.
        digest.update(chunk)
        sock.sendall(chunk)
        if index == 0 and after_first_chunk is not None:
            after_first_chunk()
    sock.shutdown(socket.SHUT_WR)


TCP_ESTABLISHED = 1


def established_joined_subflows(sock: socket.socket) -> int:
    """How many TCP sockets of this namespace are established toward the peer's port of `sock`
    from another local port than its own: with the Linux MPTCP client, the subflows joined to
    the connection of `sock` (each is a TCP socket in /proc/net/tcp or, over IPv6,
    /proc/net/tcp6; the first subflow is the one from the connection's own port). Joined
    subflows may go to other addresses of the peer and be of either family (ADD_ADDR), so
    only ports are compared. Meant for a lab that runs one connection at a time."""
    local_port = sock.getsockname()[1]
    remote_port = sock.getpeername()[1]
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            f = open(table, encoding="ascii")
        except FileNotFoundError:
            continue
        with f:
            next(f)
            for line in f:
                fields = line.split()
                local, remote, state = fields[1], fields[2], int(fields[3], 16)
                if (state == TCP_ESTABLISHED and int(remote.rsplit(":", 1)[1], 16) == remote_port
                        and int(local.rsplit(":", 1)[1], 16) != local_port):
                    count += 1
    return count


def wait_for_joined_subflows(sock: socket.socket, wanted: int, timeout_s: float,
                             outcome: dict) -> None:
    """Waits until `wanted` joined subflows are established (established_joined_subflows),
    bounded by `timeout_s`, and writes into `outcome` how many there were and how long it took.
    Running out of time is no error here: the scenario judges the joins by the kernel's
    counters."""
    start = time.monotonic()
    while True:
        have = established_joined_subflows(sock)
        waited = time.monotonic() - start
        if have >= wanted or waited >= timeout_s:
            break
        time.sleep(0.001)
    outcome.update({"wanted": wanted, "established": have, "waited_s": round(waited, 4)})


class IntervalCounter:
    """Bytes per fixed interval since it was created: the goodput over time of one direction of
    one connection, for the side-by-side benchmark's time series (perf/lab/)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.start = time.monotonic()
        self.start_wall = time.time()
        self.buckets: list[int] = []

    def add(self, n: int) -> None:
        index = int((time.monotonic() - self.start) / self.interval_s)
        if index >= len(self.buckets):
            self.buckets.extend([0] * (index + 1 - len(self.buckets)))
        self.buckets[index] += n

    def as_dict(self) -> dict:
        return {"interval_ms": round(self.interval_s * 1000, 3), "start_at": self.start_wall,
                "bytes": self.buckets}


def receive_until_eof(sock: socket.socket, digest: Digest, chunk: int = CHUNK,
                      delay_s: float = 0.0, received_enough: tuple | None = None,
                      counter: IntervalCounter | None = None) -> None:
    """Receives until the peer's FIN. With a delay, sleeps between small reads so that the
    receive window closes and the sender feels back-pressure. `received_enough` is
    (BYTES, EVENT): the event is set once BYTES have arrived, at EOF, or when receiving fails
    (a reset: the sender waiting for it must not wait until its deadline). `counter`, if given,
    counts the received bytes per interval."""
    buf = bytearray(chunk)
    view = memoryview(buf)
    while True:
        try:
            n = sock.recv_into(view, chunk)
        except OSError:
            if received_enough is not None:
                received_enough[1].set()
            raise
        if n == 0:
            if received_enough is not None:
                received_enough[1].set()
            return
        digest.update(view[:n])
        if counter is not None:
            counter.add(n)
        if received_enough is not None and digest.length >= received_enough[0]:
            received_enough[1].set()
        if delay_s > 0:
            time.sleep(delay_s)


def error_kind(exc: BaseException) -> str:
    """The class of a failure as the application sees it: the errno's name (ECONNRESET, EPIPE,
    ...), TIMEOUT for our own socket timeout, or the exception's type for anything else."""
    if isinstance(exc, OSError) and exc.errno:
        return errno.errorcode.get(exc.errno, f"errno{exc.errno}")
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "TIMEOUT"
    return type(exc).__name__


class Worker(threading.Thread):
    """A thread that remembers the exception that ended it, what kind it was and when (wall
    clock, comparable across the lab's namespaces) it happened."""

    def __init__(self, name: str, target, *args) -> None:
        super().__init__(name=name, daemon=True)
        self._fn = target
        self._args = args
        self.error: str | None = None
        self.failure: dict | None = None
        self.ended_at: float | None = None

    def run(self) -> None:
        try:
            self._fn(*self._args)
        except Exception as exc:  # reported, not swallowed: it ends up in the JSON report
            self.failure = {"error_kind": error_kind(exc), "at": time.time(),
                            "message": f"{type(exc).__name__}: {exc}"}
            self.error = f"{self.name}: {type(exc).__name__}: {exc}"
        finally:
            self.ended_at = time.time()


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
                 recv_chunk: int = CHUNK, read_delay_s: float = 0.0,
                 send_after_received: int = 0, sample_interval_s: float = 0.0,
                 wait_subflows: int = 0, wait_subflows_timeout_s: float = 0.0) -> dict:
    """Sends and receives at once on one connection until both directions are done or the
    deadline passes; with `send_after_received`, sending starts only once that many bytes have
    arrived (or EOF). Returns the per-direction digests, any error, and per direction how it
    failed (errno class and wall-clock time) or when the receiver saw EOF. With
    `sample_interval_s`, also the received bytes per interval ("received_per_interval").
    With `wait_subflows`, the sender pauses after its first chunk until that many joined
    subflows are established or `wait_subflows_timeout_s` passed ("subflow_wait")."""
    sent, received = Digest(), Digest()
    go = threading.Event() if send_after_received > 0 else None
    counter = IntervalCounter(sample_interval_s) if sample_interval_s > 0 else None
    subflow_wait: dict = {}
    after_first_chunk = None
    if wait_subflows > 0:
        def after_first_chunk() -> None:
            wait_for_joined_subflows(sock, wait_subflows, wait_subflows_timeout_s, subflow_wait)
    sender = Worker("sender", send_seeded, sock, send_bytes, seed, sent, go, deadline,
                    after_first_chunk)
    receiver = Worker("receiver", receive_until_eof, sock, received, recv_chunk, read_delay_s,
                      (send_after_received, go) if go is not None else None, counter)
    start = time.monotonic()
    sender.start()
    receiver.start()
    errors = []
    failures = {}
    for op, worker in (("send", sender), ("recv", receiver)):
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            errors.append(f"{worker.name}: timed out")
            failures[op] = {"error_kind": "TIMEOUT", "at": time.time(), "message": "timed out"}
        elif worker.error:
            errors.append(worker.error)
            failures[op] = worker.failure
    elapsed = time.monotonic() - start
    result = {
        "sent": sent.as_dict(),
        "received": received.as_dict(),
        "elapsed_s": round(elapsed, 6),
        "errors": errors,
        "failures": failures,
    }
    if "recv" not in failures and receiver.ended_at is not None:
        result["eof_at"] = receiver.ended_at
    if counter is not None:
        result["received_per_interval"] = counter.as_dict()
    if subflow_wait:
        result["subflow_wait"] = subflow_wait
    return result


def client_connection(args, index: int, start: threading.Barrier, deadline: float) -> dict:
    """One client connection: connect (at the same moment as its siblings), transfer, report.
    Never raises: every failure ends up in the report."""
    proto = IPPROTO_MPTCP if args.mptcp else socket.IPPROTO_TCP
    seed = args.seed + index
    report: dict = {"role": "client", "mode": "mptcp" if args.mptcp else "tcp", "index": index,
                    "connect": f"{args.connect[0]}:{args.connect[1]}", "seed": seed,
                    "send_bytes": args.send_bytes, "expect_failure": args.expect_failure}
    errors = report.setdefault("errors", [])
    sock = None
    try:
        sock = socket.socket(address_family(args.connect[0]), socket.SOCK_STREAM, proto)
    except OSError as exc:
        errors.append(f"socket(IPPROTO_MPTCP): {exc} (is net.mptcp.enabled=1?)")
    try:
        start.wait(max(1.0, deadline - time.monotonic()))
    except threading.BrokenBarrierError:
        errors.append("the connections could not start together")
    if sock is None:
        report["ok"] = False
        return report
    try:
        sock.settimeout(max(1.0, deadline - time.monotonic()))
        report["connect_started_at"] = time.time()
        sock.connect(args.connect)
        report["connect_done_at"] = time.time()
        report["local"] = "%s:%d" % sock.getsockname()[:2]
        report["is_mptcp"] = is_mptcp(sock)
        report["mptcp_info_after_connect"] = mptcp_info(sock)
        result = run_transfer(sock, args.send_bytes, seed, deadline,
                              send_after_received=args.send_after_received,
                              sample_interval_s=args.sample_interval_ms / 1000.0,
                              wait_subflows=args.wait_subflows,
                              wait_subflows_timeout_s=args.wait_subflows_timeout)
        result["errors"] = errors + result["errors"]
        report.update(result)
        errors = report["errors"]
        report["is_mptcp_after_transfer"] = is_mptcp(sock)
        report["mptcp_info_after_transfer"] = mptcp_info(sock)
    except OSError as exc:
        errors.append(f"connect: {type(exc).__name__}: {exc}")
        report["failures"] = {"connect": {"error_kind": error_kind(exc), "at": time.time(),
                                          "message": f"{type(exc).__name__}: {exc}"}}
        # The port the kernel picked, if any: a connect that never completes may be one that
        # reused a port the appliance still remembers.
        try:
            report.setdefault("local", "%s:%d" % sock.getsockname()[:2])
        except OSError:
            pass
    finally:
        sock.close()
    # The errno class of the connection's failure, so that a scenario can count ECONNRESET and
    # its kin across many connections. A reset seen by either direction names it: when the peer
    # resets, the sender may see ENOTCONN or EPIPE a moment before the receiver's ECONNRESET
    # (the socket is already closed), and which thread fails first is a race. Otherwise the
    # first failure's class.
    failures = report.get("failures") or {}
    if failures:
        kinds = [f["error_kind"] for f in failures.values()]
        first = min(failures.values(), key=lambda f: f["at"])
        report["error_kind"] = "ECONNRESET" if "ECONNRESET" in kinds else first["error_kind"]
    if args.mptcp and report.get("is_mptcp") is False:
        errors.append("socket fell back to plain TCP (TCP_IS_MPTCP=0)")
    if not args.mptcp and report.get("is_mptcp"):
        errors.append("plain TCP socket reports MPTCP")
    if args.expect_failure:
        # The connection must end in an error; how and when is for check-failure to judge.
        # Only failures of the lab itself count here.
        errors[:] = [e for e in errors if not e.startswith(("sender:", "receiver:"))]
        if not failures:
            errors.append("the transfer ended without a connection error")
    else:
        if "received" in report and report["received"]["bytes"] != args.recv_bytes:
            errors.append(f"received {report['received']['bytes']} bytes, expected {args.recv_bytes}")
        if "sent" in report and report["sent"]["bytes"] != args.send_bytes:
            errors.append(f"sent {report['sent']['bytes']} bytes, expected {args.send_bytes}")
    report["ok"] = not errors
    return report


def cmd_client(args) -> int:
    """Opens --connections connections at the same moment (one thread each, released together
    by a barrier, so that their handshakes really arrive as one burst), and writes one report
    per connection."""
    if args.connections > 1 and args.report and "{index}" not in args.report:
        raise SystemExit("--report must contain {index} with --connections > 1")
    deadline = time.monotonic() + args.timeout
    start = threading.Barrier(args.connections)
    reports: list[dict | None] = [None] * args.connections

    def run(index: int) -> None:
        try:
            reports[index] = client_connection(args, index, start, deadline)
        except Exception as exc:  # a lab bug, reported rather than lost with its thread
            reports[index] = {"role": "client", "index": index, "ok": False,
                              "errors": [f"client thread: {type(exc).__name__}: {exc}"]}

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(args.connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        # Each connection is bounded by the deadline itself; the grace covers the report.
        thread.join(max(0.0, deadline - time.monotonic()) + 5.0)
    rc = 0
    for index, report in enumerate(reports):
        if report is None:
            report = {"role": "client", "index": index, "ok": False,
                      "errors": ["connection thread did not finish"]}
        rc |= 0 if report["ok"] else 1
        path = args.report.format(index=index) if args.report else None
        write_json(path, report)
    # Threads still blocked on a timed-out socket must not keep the process alive.
    sys.stdout.flush()
    os._exit(rc)


def serve_then_reset(conn: socket.socket, send_bytes: int, seed: int, reset_after_sent: int,
                     reset_after_received: int, deadline: float) -> dict:
    """A backend that fails mid-transfer: sends its seeded stream and reads the client's until it
    has sent `reset_after_sent` bytes and received `reset_after_received` (or the client's EOF),
    then aborts the connection with a RST (SO_LINGER on with a zero timeout, so close() discards
    the unsent data and resets) and records the wall-clock time of the reset.

    One thread with non-blocking I/O, because a close() that another thread's blocked recv()
    still holds would not reset anything until that recv() returned."""
    sent, received = Digest(), Digest()
    chunks = seeded_chunks(seed, send_bytes)
    pending = memoryview(b"")
    receive_eof = False
    buf = bytearray(CHUNK)
    errors: list[str] = []
    conn.setblocking(False)
    selector = selectors.DefaultSelector()
    start = time.monotonic()
    try:
        while time.monotonic() < deadline:
            if sent.length >= reset_after_sent and (received.length >= reset_after_received
                                                    or receive_eof):
                break
            want_write = sent.length < min(reset_after_sent, send_bytes)
            if want_write and not pending:
                pending = memoryview(next(chunks))
            events = (0 if receive_eof else selectors.EVENT_READ) | \
                (selectors.EVENT_WRITE if want_write else 0)
            if events == 0:
                break
            selector.register(conn, events)
            ready = selector.select(max(0.0, deadline - time.monotonic()))
            selector.unregister(conn)
            for _, mask in ready:
                if mask & selectors.EVENT_READ:
                    n = conn.recv_into(buf)
                    if n == 0:
                        receive_eof = True
                    received.update(memoryview(buf)[:n])
                if mask & selectors.EVENT_WRITE:
                    limit = reset_after_sent - sent.length
                    n = conn.send(pending[:limit])
                    sent.update(pending[:n])
                    pending = pending[n:]
        else:
            errors.append("timed out before the reset point")
    except OSError as exc:
        errors.append(f"before the reset: {type(exc).__name__}: {exc}")
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    reset_at = time.time()
    conn.close()
    return {"sent": sent.as_dict(), "received": received.as_dict(), "seed": seed,
            "send_bytes": send_bytes, "reset_at": reset_at, "receive_eof": receive_eof,
            "elapsed_s": round(time.monotonic() - start, 6), "errors": errors}


def cmd_backend(args) -> int:
    deadline = time.monotonic() + args.timeout
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(args.listen)
    listener.listen(args.count)
    if args.ready_file:
        with open(args.ready_file, "w", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")
    resetting = args.reset_after_sent is not None
    report: dict = {"role": "backend", "listen": f"{args.listen[0]}:{args.listen[1]}",
                    "seed": args.seed, "connections": [], "errors": [],
                    "mode": "reset" if resetting else "transfer"}
    threads = []
    results: list[dict] = []

    def serve(conn: socket.socket, peer, index: int) -> None:
        if resetting:
            result = serve_then_reset(conn, args.send_bytes, args.seed + index,
                                      args.reset_after_sent, args.reset_after_received, deadline)
        else:
            recv_chunk = args.read_chunk if args.read_delay_ms > 0 else CHUNK
            result = run_transfer(conn, args.send_bytes, args.seed + index, deadline,
                                  recv_chunk=recv_chunk, read_delay_s=args.read_delay_ms / 1000.0,
                                  send_after_received=args.send_after_received,
                                  sample_interval_s=args.sample_interval_ms / 1000.0)
            result["seed"] = args.seed + index
            conn.close()
        result["peer"] = f"{peer[0]}:{peer[1]}"
        result["index"] = index
        results.append(result)

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
        want = min(args.send_bytes, args.reset_after_sent) if resetting else args.send_bytes
        if result["sent"]["bytes"] != want:
            report["errors"].append(f"sent {result['sent']['bytes']} bytes, expected {want}")
    rc = 1 if report["errors"] else 0
    report["ok"] = rc == 0
    write_json(args.report, report)
    sys.stdout.flush()
    os._exit(rc)


TCP_INFO = 11
TCP_STATE_CLOSE = 7


def was_reset(sock: socket.socket) -> bool:
    """True if a TCP socket whose recv() just returned 0, and that has not sent its own FIN, was
    reset rather than sent a FIN: after a FIN it would be in CLOSE-WAIT, after a RST it is in
    CLOSE. (recv() returns 0 after a RST when another thread's send already consumed the
    error; once our own FIN is out, CLOSE is also where a FIN leads, but then no other thread
    sends on the socket any more.)"""
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 8)[0] == TCP_STATE_CLOSE
    except OSError:
        return False


def relay(src: socket.socket, dst: socket.socket, corrupt_offset: int | None = None,
          truncate_after: int | None = None, aborted: threading.Event | None = None,
          dst_shut: threading.Event | None = None,
          src_shut: threading.Event | None = None) -> None:
    """Copies src to dst until src's FIN, then sets `dst_shut` and passes the FIN on
    (half-close). A connection being aborted, or a TCP src that was reset (checked only when
    `src_shut` is given and not set: our side has not sent its FIN to src), raises instead:
    passing a FIN on would tell the other side that the stream ended well.

    The two optional faults exist only for the lab's self-test (selftest.sh), which proves that
    the checks catch a broken appliance: `corrupt_offset` flips one bit of the byte at that
    stream offset; `truncate_after` forwards only that many bytes, then ends both connections."""
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    position = 0
    while True:
        n = src.recv_into(view, CHUNK)
        if n == 0:
            if (aborted is not None and aborted.is_set()) or (
                    src_shut is not None and not src_shut.is_set() and was_reset(src)):
                raise ConnectionAbortedError("source reset or connection aborted; no FIN passed on")
            # Set before the FIN leaves, not after: the other relay may see the answering FIN
            # (and src in CLOSE) before this thread runs again.
            if dst_shut is not None:
                dst_shut.set()
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
    if kind not in ("corrupt-c2b", "truncate-b2c", "unbounded-c2b", "abort-delay-ms", "reset-nth"):
        raise argparse.ArgumentTypeError(f"unknown fault {kind!r}")
    return kind, int(value or 0)


def abort_socket(sock: socket.socket) -> None:
    """Prepares an abortive close: with SO_LINGER on and a zero timeout, close() resets a TCP
    socket, and makes Linux end an MPTCP socket with MP_FASTCLOSE (RFC 8684 section 3.5, the
    connection-level reset). shutdown(SHUT_RD) sends nothing but wakes a thread blocked in
    recv() on the socket, so that the close() that follows is not held up by it."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass


def cmd_standin_proxy(args) -> int:
    """The kernel stand-in appliance: the Linux kernel terminates MPTCP, this program relays.

    Like mpterm, it gives up on a backend that does not complete its handshake within
    --backend-connect-timeout, and it ends both sides at once when either fails: a backend
    that resets, or never answers, makes the client's kernel receive MP_FASTCLOSE."""
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
          f"backend connect timeout {args.backend_connect_timeout} s, "
          f"fault {fault_kind}:{fault_value}", flush=True)
    # The self-test's "slow to learn" fault: the abort waits this long, as an appliance would
    # that let the client find out only from a timer of its own.
    abort_delay_s = fault_value / 1000.0 if fault_kind == "abort-delay-ms" else 0.0

    def handle(client: socket.socket, peer, index: int) -> None:
        try:
            upstream = socket.create_connection(args.backend, timeout=args.backend_connect_timeout)
            upstream.settimeout(None)
        except OSError as exc:
            print(f"standin-proxy: {peer}: backend connect failed: {exc}", flush=True)
            time.sleep(abort_delay_s)
            abort_socket(client)
            client.close()
            return
        print(f"standin-proxy: {peer[0]}:{peer[1]} accepted, mptcp={is_mptcp(client)}", flush=True)
        first_failure = threading.Lock()
        aborted = threading.Event()
        upstream_shut = threading.Event()

        def abort_both() -> None:
            # The first failure on either side ends both; the second relay's failure is the
            # consequence, not news.
            aborted.set()
            if not first_failure.acquire(blocking=False):
                return
            time.sleep(abort_delay_s)
            abort_socket(client)
            abort_socket(upstream)

        def guarded(fn, *fn_args) -> None:
            try:
                fn(*fn_args)
            except OSError:
                abort_both()
                raise

        if fault_kind == "unbounded-c2b":
            up = Worker("client->backend", guarded, relay_unbounded, client, upstream)
        else:
            up = Worker("client->backend", guarded, relay, client, upstream,
                        fault_value if fault_kind == "corrupt-c2b" else None, None, aborted,
                        upstream_shut)
        down = Worker("backend->client", guarded, relay, upstream, client, None,
                      fault_value if fault_kind == "truncate-b2c" else None, aborted, None,
                      upstream_shut)
        up.start()
        down.start()
        if fault_kind == "reset-nth" and index == fault_value:
            # The self-test's "resets a connection" fault: one connection of many is aborted
            # in the middle of its transfer, so its client gets ECONNRESET.
            time.sleep(0.05)
            abort_both()
        up.join()
        down.join()
        for worker in (up, down):
            if worker.error:
                print(f"standin-proxy: {peer[0]}:{peer[1]}: {worker.error}", flush=True)
        client.close()
        upstream.close()
        print(f"standin-proxy: {peer[0]}:{peer[1]} closed", flush=True)

    index = 0
    while True:
        client, peer = listener.accept()
        threading.Thread(target=handle, args=(client, peer, index), daemon=True).start()
        index += 1


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
        # NAME=N: the delta is exactly N; NAME>=N: at least N.
        name, _, value = expectation.partition("=")
        at_least = name.endswith(">")
        name = name.removesuffix(">")
        if name not in after:
            failures.append(f"counter {name} does not exist on this kernel")
            continue
        delta = after[name] - before.get(name, 0)
        checked.append(f"{name}+{delta}")
        if (delta < int(value)) if at_least else (delta != int(value)):
            failures.append(f"{name} delta {delta}, expected {'>= ' if at_least else ''}{value}")
    nonzero = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    if failures:
        print("counters: FAIL: " + "; ".join(failures))
        print(f"counters: all changed MPTcpExt deltas: {nonzero}")
        return 1
    retrans = after.get("Tcp.RetransSegs", 0) - before.get("Tcp.RetransSegs", 0)
    shown = "".join(f", {name}+{after.get(name, 0) - before.get(name, 0)}" for name in args.show)
    print("counters: " + " ".join(checked) + f" (client TCP RetransSegs+{retrans}{shown})")
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
    # The errno class of every failed client connection, counted: a reset (ECONNRESET) is the
    # failure a broken MPTCP handshake ends in, and the scenarios assert how many there were.
    kinds: dict[str, int] = {}
    for client in clients:
        if client.get("error_kind"):
            kinds[client["error_kind"]] = kinds.get(client["error_kind"], 0) + 1
    if kinds:
        failures.append("client error kinds: " + ", ".join(f"{k} x{v}" for k, v in sorted(kinds.items())))
    error_counts = []
    for expectation in args.expect_error_kind:
        kind, _, value = expectation.partition("=")
        count = kinds.get(kind, 0)
        error_counts.append(f"{kind} {count} of {len(clients)}")
        if count != int(value):
            failures.append(f"{kind} on {count} of {len(clients)} connections, expected {value}")
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
    fallbacks = 0
    for index, client in enumerate(clients):
        if args.expect_mptcp is not None:
            want = args.expect_mptcp == "yes"
            if client.get("is_mptcp") != want:
                failures.append(f"client {index} is_mptcp={client.get('is_mptcp')}, expected {want}")
            # A fallback to TCP after the handshake (RFC 8684 sections 3.1 and 3.7) keeps the
            # bytes exact when both ends agree; only a scenario that allows it passes with one.
            if want and client.get("is_mptcp_after_transfer") is False:
                fallbacks += 1
                if not args.allow_fallback:
                    failures.append(f"client {index} fell back to TCP during the transfer")
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
    summary = {"bytes": moved, "seconds": round(elapsed, 3), "mbit_per_s": round(mbit, 1),
               "fallbacks": fallbacks}
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
    extra = "".join(f"; {e}" for e in error_counts)
    if args.allow_fallback:
        extra += f"; fell back to TCP after the handshake: {fallbacks} of {len(clients)}"
    print(f"check: {streams}c->b {first['sent']['bytes']} B, b->c {first['received']['bytes']} B, "
          f"length and sha256 equal at both ends (c->b {first['sent']['sha256'][:12]}.., "
          f"b->c {first['received']['sha256'][:12]}..); is_mptcp={','.join(mptcp)} "
          f"csum_enabled={','.join(csum)}{extra}; goodput {moved} B in {elapsed:.3f} s = "
          f"{mbit:.1f} Mbit/s")
    return 0


# Errors by which a client learns that its peer ended the connection abortively: a reset
# (MP_FASTCLOSE gives ECONNRESET, or EPIPE once the client's side was half-closed; see
# mptcp_check_fastclose() in Linux's net/mptcp/protocol.c).
ABORT_ERROR_KINDS = ("ECONNRESET", "EPIPE")


def cmd_check_failure(args) -> int:
    """Checks connections that must fail because their backend did: every client's send() or
    recv() reported a reset (not EOF, not our own timeout), the first failure with no EOF
    before it and soon enough after the
    reference moment and not before it, and every byte that did arrive, either way, is an
    exact prefix of what the other side sent.

    The reference is the backend's reset (--reference reset: each client is paired with the
    backend connection that holds a prefix of its stream) or the client's connect plus the
    appliance's backend connect timeout (--reference connect-timeout)."""
    clients = []
    for path in args.client:
        with open(path, encoding="utf-8") as f:
            clients.append(json.load(f))
    conns: list[dict] = []
    failures: list[str] = []
    if args.backend:
        with open(args.backend, encoding="utf-8") as f:
            backend = json.load(f)
        conns = backend.get("connections", [])
        failures += [f"backend: {e}" for e in backend.get("errors", [])]
        if len(conns) != len(clients):
            failures.append(f"backend saw {len(conns)} connections, expected {len(clients)}")
    elif args.reference == "reset":
        failures.append("--reference reset needs --backend")
    gaps: list[float] = []
    kinds: dict[str, int] = {}
    received_total = 0
    unused = list(range(len(conns)))
    for index, client in enumerate(clients):
        failures += [f"client {index}: {e}" for e in client.get("errors", [])]
        # Linux reports a socket's error once (sock_error() clears it), and a send() that finds
        # the socket closed before the error is set fails with ENOTCONN: whichever of the
        # client's two threads learns of the reset first, the other may see EOF or ENOTCONN.
        # So the first failure sets the time (an EOF before it would have told the application
        # its stream had ended cleanly), and the connection counts as reset if either call
        # reported a reset.
        calls = sorted((client.get("failures") or {}).items(), key=lambda item: item[1]["at"])
        if not calls or client.get("eof_at", float("inf")) < calls[0][1]["at"]:
            how = "saw EOF" if "eof_at" in client else "did not fail"
            failures.append(f"client {index}: recv() {how} after {client.get('received', {}).get('bytes')} "
                            f"bytes instead of failing")
            continue
        first_call, first_failure = calls[0]
        abort = next(((call, failure) for call, failure in calls
                      if failure["error_kind"] in ABORT_ERROR_KINDS), None)
        kind = abort[1]["error_kind"] if abort else first_failure["error_kind"]
        kinds[kind] = kinds.get(kind, 0) + 1
        if abort is None:
            failures.append(f"client {index}: {first_call}() failed with {kind}, expected one of "
                            f"{'/'.join(ABORT_ERROR_KINDS)} ({first_failure['message']})")
        received = client.get("received", {"bytes": 0})
        received_total += received["bytes"]
        if args.reference == "connect-timeout":
            if received["bytes"] != 0:
                failures.append(f"client {index}: received {received['bytes']} bytes from a backend that never answered")
            if "connect_started_at" not in client or "connect_done_at" not in client:
                failures.append(f"client {index}: no connect time in its report")
                continue
            earliest = client["connect_started_at"] + args.connect_timeout_s - args.tolerance_s
            latest = client["connect_done_at"] + args.connect_timeout_s + args.max_gap_s
            gap = first_failure["at"] - (client["connect_done_at"] + args.connect_timeout_s)
            gaps.append(gap)
            if first_failure["at"] < earliest:
                failures.append(f"client {index}: {first_call}() failed {first_failure['at'] - client['connect_started_at']:.3f} s "
                                f"after connect, before the {args.connect_timeout_s:g} s backend connect timeout")
            elif first_failure["at"] > latest:
                failures.append(f"client {index}: {first_call}() failed {gap:.3f} s after connect + the "
                                f"{args.connect_timeout_s:g} s backend connect timeout, bound {args.max_gap_s:g} s")
            continue
        # Reset reference: the client's stream identifies its backend connection (every
        # stream has its own seed, and the backend resets only after it received some).
        sent_total = client.get("send_bytes", 0)
        match = next((j for j in unused if conns[j]["received"] == seeded_prefix_digest(
            client["seed"], sent_total, conns[j]["received"]["bytes"])), None)
        if match is None:
            failures.append(f"client {index}: no backend connection received a prefix of its stream "
                            f"(client sent {client.get('sent')})")
            continue
        unused.remove(match)
        conn = conns[match]
        if conn["received"]["bytes"] > client.get("sent", {}).get("bytes", 0):
            failures.append(f"client {index}: backend received {conn['received']['bytes']} bytes, "
                            f"more than the client sent")
        if received != seeded_prefix_digest(conn["seed"], conn["send_bytes"], received["bytes"]):
            failures.append(f"client {index}: its {received['bytes']} received bytes are not a prefix of "
                            f"the backend's stream (seed {conn['seed']})")
        if received["bytes"] > conn["sent"]["bytes"]:
            failures.append(f"client {index}: received {received['bytes']} bytes, the backend sent "
                            f"only {conn['sent']['bytes']} before its reset")
        gap = first_failure["at"] - conn["reset_at"]
        gaps.append(gap)
        if gap < -args.tolerance_s:
            failures.append(f"client {index}: {first_call}() failed {-gap:.3f} s before the backend's reset")
        elif gap > args.max_gap_s:
            failures.append(f"client {index}: {first_call}() failed {gap:.3f} s after the backend's reset, "
                            f"bound {args.max_gap_s:g} s")
    if failures:
        for failure in failures:
            print(f"check-failure: FAIL: {failure}")
        return 1
    what = ("the backend's reset" if args.reference == "reset"
            else f"connect + the {args.connect_timeout_s:g} s backend connect timeout")
    how = ", ".join(f"{k} x{v}" for k, v in sorted(kinds.items()))
    line = (f"check-failure: {len(clients)} connections: send() or recv() failed ({how}) "
            f"{min(gaps):.3f}..{max(gaps):.3f} s after {what} (bound {args.max_gap_s:g} s)")
    if args.reference == "reset":
        line += (f"; both ways what arrived is an exact prefix of what was sent (client received "
                 f"{received_total} B in all, backend "
                 f"{sum(c['received']['bytes'] for c in conns)} B)")
    print(line)
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
    p.add_argument("--seed", type=int, default=1,
                   help="seed of the first connection's stream; connection i uses SEED + i")
    p.add_argument("--connections", type=int, default=1,
                   help="connections opened at the same moment, one report each")
    p.add_argument("--expect-failure", action="store_true",
                   help="the connection must end in an error (check-failure judges it)")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--report", help="report path; with --connections > 1 it must contain {index}")
    p.add_argument("--sample-interval-ms", type=float, default=0.0,
                   help="also report the received bytes per interval of this length (0: off)")
    p.add_argument("--send-after-received", type=int, default=0,
                   help="start sending (and, with nothing to send, half-close) only once this "
                        "many bytes arrived or the backend's EOF")
    p.add_argument("--wait-subflows", type=int, default=0,
                   help="after the first chunk sent, wait until this many joined subflows "
                        "are established (one connection at a time; the Linux client joins "
                        "only once its first data was acknowledged)")
    p.add_argument("--wait-subflows-timeout", type=float, default=5.0,
                   help="seconds --wait-subflows waits at most; then the sender goes on")
    p.set_defaults(func=cmd_client)

    p = sub.add_parser("backend", help="plain TCP backend")
    p.add_argument("--listen", type=parse_endpoint, required=True)
    p.add_argument("--send-bytes", type=int, required=True)
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--read-delay-ms", type=float, default=0.0)
    p.add_argument("--read-chunk", type=int, default=8192,
                   help="bytes per recv() when --read-delay-ms is set")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--send-after-received", type=int, default=0,
                   help="start sending only once this many bytes arrived (or the client's EOF)")
    p.add_argument("--reset-after-sent", type=int,
                   help="reset each connection (SO_LINGER 0) once it sent this many bytes ...")
    p.add_argument("--reset-after-received", type=int, default=1,
                   help="... and received this many (or the client's EOF)")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--ready-file")
    p.add_argument("--report")
    p.add_argument("--sample-interval-ms", type=float, default=0.0,
                   help="also report the received bytes per interval of this length (0: off)")
    p.set_defaults(func=cmd_backend)

    p = sub.add_parser("standin-proxy", help="kernel stand-in appliance")
    p.add_argument("--listen", type=parse_endpoint, required=True)
    p.add_argument("--backend", type=parse_endpoint, required=True)
    p.add_argument("--ready-file")
    p.add_argument("--backend-connect-timeout", type=float, default=30.0,
                   help="seconds the backend's handshake may take (mpterm's tcp.connect_timeout_ms)")
    p.add_argument("--listen-plain-tcp", action="store_true",
                   help="self-test only: listen without MPTCP, so MPTCP clients fall back")
    p.add_argument("--fault", type=parse_fault,
                   help="self-test only: corrupt-c2b:OFFSET | truncate-b2c:BYTES | unbounded-c2b | "
                        "abort-delay-ms:MS | reset-nth:INDEX")
    p.set_defaults(func=cmd_standin_proxy)

    p = sub.add_parser("check", help="compare client and backend reports")
    p.add_argument("--client", required=True, action="append",
                   help="a client report; repeat for concurrent connections")
    p.add_argument("--backend", required=True)
    p.add_argument("--send-bytes", type=int, required=True, help="client->backend bytes")
    p.add_argument("--recv-bytes", type=int, required=True, help="backend->client bytes")
    p.add_argument("--expect-mptcp", choices=["yes", "no"])
    p.add_argument("--expect-csum", type=int, choices=[0, 1])
    p.add_argument("--allow-fallback", action="store_true",
                   help="connections may fall back to TCP after the handshake (counted in the summary)")
    p.add_argument("--expect-error-kind", action="append", default=[], metavar="KIND=COUNT",
                   help="exactly COUNT client connections failed with KIND (e.g. ECONNRESET=0)")
    p.add_argument("--summary", help="write bytes/seconds/goodput JSON here")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("check-failure", help="check connections that must fail with their backend")
    p.add_argument("--client", required=True, action="append")
    p.add_argument("--backend", help="the backend's report (required with --reference reset)")
    p.add_argument("--reference", choices=["reset", "connect-timeout"], required=True)
    p.add_argument("--connect-timeout-s", type=float, default=0.0,
                   help="the appliance's backend connect timeout (--reference connect-timeout)")
    p.add_argument("--max-gap-s", type=float, default=2.0,
                   help="the client's recv() must fail at most this long after the reference")
    p.add_argument("--tolerance-s", type=float, default=0.05,
                   help="how much earlier than the reference a failure may be seen (clock reads)")
    p.set_defaults(func=cmd_check_failure)

    p = sub.add_parser("counters", help="MPTcpExt counters of this namespace")
    p.add_argument("action", choices=["snapshot", "assert"])
    p.add_argument("--out")
    p.add_argument("--before")
    p.add_argument("--after")
    p.add_argument("--expect", action="append", default=[], metavar="NAME=DELTA",
                   help="the counter's delta is DELTA (NAME=DELTA) or at least DELTA (NAME>=DELTA)")
    p.add_argument("--show", action="append", default=[], metavar="NAME",
                   help="also print this counter's delta, without asserting on it")
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
