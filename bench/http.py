"""HTTP benchmarks: start one `patientline serve` on a fresh database and measure it from outside.

    .venv/bin/python bench/http.py                   # what `make bench` runs (SQLite)
    .venv/bin/python bench/http.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench

1. idle memory: VmRSS of the server (and any children) after startup, a few requests and 5 s idle;
2. throughput: GET /api/directory/departments over keep-alive connections at a fixed concurrency;
3. SSE fan-out: N subscribers on /api/events, a department PATCH, time until each one has the frame.

Prints a table against the targets, writes var/bench/results.json, exits 1 when a target is missed.
Everything runs on 127.0.0.1 and every loop is bounded by a duration or a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, cast

from measures import percentile

# `python bench/http.py` puts bench/ first on sys.path, where this file would shadow the standard
# library's `http` package for anything imported later.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "var" / "bench"
USERNAME = "admin"
PASSWORD = "Demo-8585-2026"
LIST_PATH = "/api/directory/departments"

# name: (comparison, threshold, unit)
TARGETS: dict[str, tuple[str, float, str]] = {
    "list_rps": (">=", 500, "req/s"),
    "list_paced_rps": (">=", 495, "req/s"),
    "list_p95_ms": ("<", 50, "ms"),
    "list_errors": ("==", 0, ""),
    "sse_p99_ms": ("<", 250, "ms"),
    "sse_missed": ("==", 0, ""),
    "idle_rss_mb": ("<", 200, "MB"),
}

now = time.perf_counter


# ---- a minimal HTTP/1.1 client --------------------------------------------------------------------


def request_bytes(
    port: int,
    method: str,
    path: str,
    *,
    cookie: str = "",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    close: bool = False,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "User-Agent: patientline-bench"]
    if cookie:
        lines.append(f"Cookie: pl_session={cookie}")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in {"POST", "PATCH", "PUT"}:
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[ \t]*chunked", re.IGNORECASE)


def parse_response(buf: bytearray) -> tuple[int, int] | None:
    """(status, bytes used) of the first complete Content-Length response in `buf`, None when more is
    needed. A response without Content-Length is returned as status -1 (the load test counts it as an
    error)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end])
    status = int(head[9:12])
    match = _CONTENT_LENGTH.search(head)
    if match is None:
        return -1, len(buf)
    total = end + 4 + int(match.group(1))
    if len(buf) < total:
        return None
    return status, total


def dechunk(body: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        eol = body.index(b"\r\n", pos)
        size = int(body[pos:eol].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += body[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name]

    def json(self) -> Any:
        return json.loads(self.body)


async def call(
    port: int,
    method: str,
    path: str,
    *,
    cookie: str = "",
    headers: dict[str, str] | None = None,
    json_body: Any = None,
    within: float = 30.0,
    before_send: Callable[[], None] | None = None,
) -> Reply:
    """One request on its own connection (Connection: close), read to EOF."""
    body = json.dumps(json_body).encode() if json_body is not None else b""
    all_headers = dict(headers or {})
    if json_body is not None:
        all_headers["Content-Type"] = "application/json"
    raw_request = request_bytes(port, method, path, cookie=cookie, headers=all_headers, body=body, close=True)

    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            if before_send is not None:
                before_send()
            writer.write(raw_request)
            await writer.drain()
            return await reader.read(-1)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    raw = await asyncio.wait_for(exchange(), within)
    head, _, payload = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parsed = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
    reply = Reply(status=int(lines[0].split()[1]), headers=parsed, body=payload)
    if any(v.lower() == "chunked" for v in reply.header_values("transfer-encoding")):
        reply.body = dechunk(payload)
    return reply


# ---- the server under test ------------------------------------------------------------------------


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def patientline_bin() -> str:
    beside = Path(sys.executable).parent / "patientline"
    if beside.exists():
        return str(beside)
    return str(ROOT / ".venv" / "bin" / "patientline")


def prepare(var_dir: Path, database_url: str) -> dict[str, str]:
    """Fresh var dir, migrated and seeded database; returns the server's environment."""
    var_dir.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATIENTLINE_")}
    env |= {
        "PATIENTLINE_VAR_DIR": str(var_dir),
        "PATIENTLINE_ROLES": "web,worker",
        "PATIENTLINE_LOG_LEVEL": "WARNING",
    }
    if database_url:
        env["PATIENTLINE_DATABASE_URL"] = database_url
    for command in ("migrate", "seed-demo"):
        started = now()
        done = subprocess.run(
            [patientline_bin(), command],
            env=env,
            cwd=var_dir,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            sys.exit(f"patientline {command} failed:\n{done.stdout}\n{done.stderr}")
        print(
            f"  {command}: {done.stdout.strip().splitlines()[-1] if done.stdout.strip() else 'ok'} "
            f"({now() - started:.1f} s)"
        )
    return env


def start_server(env: dict[str, str], var_dir: Path, port: int) -> subprocess.Popen[bytes]:
    with (var_dir / "serve.log").open("wb") as log:
        return subprocess.Popen(
            [patientline_bin(), "serve", "--port", str(port), "--roles", "web,worker"],
            env=env,
            cwd=var_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def wait_healthy(port: int, server: subprocess.Popen[bytes], within: float = 60.0) -> float:
    started = now()
    while now() - started < within:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode} (see serve.log)")
        with contextlib.suppress(OSError, TimeoutError, ValueError, IndexError):
            if (await call(port, "GET", "/healthz", within=2)).status == 200:
                return now() - started
        await asyncio.sleep(0.1)
    raise RuntimeError(f"/healthz did not answer within {within:.0f} s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[1])


def process_tree(root: int) -> list[int]:
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    parents = {pid: _ppid(pid) for pid in pids}
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree.extend(frontier)
    return tree


def rss_mb(root: int) -> float:
    """VmRSS of `root` and its descendants, in MiB."""
    total_kb = 0
    for pid in process_tree(root):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ---- throughput and latency -----------------------------------------------------------------------


@dataclass
class LoadRun:
    request: bytes
    measure_from: float
    measure_until: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    completed_total: int = 0
    connection_errors: int = 0
    open_connections: int = 0
    all_closed: asyncio.Event = field(default_factory=asyncio.Event)
    interval: float = 0.0  # > 0: requests are paced at 1/interval per second (open loop)
    next_slot: float = 0.0

    def take_slot(self) -> float:
        """When the next request is due. Paced: on a fixed schedule, so a slow answer delays the requests
        behind it and their latency counts from when they were due (no coordinated omission)."""
        if self.interval <= 0:
            return now()
        slot = self.next_slot or now()
        self.next_slot = slot + self.interval
        return slot

    def record(self, started: float, finished: float, status: int) -> None:
        self.completed_total += 1
        if self.measure_from <= started and finished <= self.measure_until:
            self.latencies.append(finished - started)
            self.statuses[status] = self.statuses.get(status, 0) + 1


class LoadConnection(asyncio.Protocol):
    """One keep-alive connection sending the same request again as soon as the answer is complete."""

    def __init__(self, run: LoadRun) -> None:
        self.run = run
        self.buf = bytearray()
        self.started = 0.0
        self.transport: asyncio.Transport | None = None
        self.expected_close = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.run.open_connections += 1
        self.send()

    def send(self) -> None:
        assert self.transport is not None
        slot = self.run.take_slot()
        if slot >= self.run.measure_until:
            self.expected_close = True
            self.transport.close()
            return
        delay = slot - now()
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._write, slot)
        else:
            self._write(slot)

    def _write(self, slot: float) -> None:
        assert self.transport is not None
        self.started = slot
        self.transport.write(self.run.request)

    def data_received(self, data: bytes) -> None:
        finished = now()
        self.buf += data
        parsed = parse_response(self.buf)
        if parsed is None:
            return
        status, used = parsed
        del self.buf[:used]
        self.run.record(self.started, finished, status)
        self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.expected_close:
            self.run.connection_errors += 1
        self.run.open_connections -= 1
        if self.run.open_connections == 0:
            self.run.all_closed.set()


async def load_python(
    port: int, cookie: str, *, concurrency: int, warmup: float, duration: float, server_pid: int, rate: float = 0.0
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    start = now()
    run = LoadRun(
        request=request_bytes(port, "GET", LIST_PATH, cookie=cookie),
        measure_from=start + warmup,
        measure_until=start + warmup + duration,
        interval=1.0 / rate if rate > 0 else 0.0,
    )
    for _ in range(concurrency):
        await loop.create_connection(lambda: LoadConnection(run), "127.0.0.1", port)
    await asyncio.sleep(max(0.0, run.measure_from - now()))
    cpu_before, client_before = cpu_seconds(server_pid), time.process_time()
    await asyncio.sleep(max(0.0, run.measure_until - now()))
    cpu_after, client_after = cpu_seconds(server_pid), time.process_time()
    await asyncio.wait_for(run.all_closed.wait(), timeout=30)
    latencies = sorted(run.latencies)
    ok = run.statuses.get(200, 0)
    return {
        "client": "python-asyncio" + (f", paced at {rate:g} req/s" if rate > 0 else ", as fast as answered"),
        "requests": len(latencies),
        "rps": len(latencies) / duration,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": (latencies[-1] if latencies else math.nan) * 1000,
        "errors": len(latencies) - ok + run.connection_errors,
        "statuses": {str(k): v for k, v in sorted(run.statuses.items())},
        "connection_errors": run.connection_errors,
        "server_cpu_percent": 100 * (cpu_after - cpu_before) / duration,
        "client_cpu_percent": 100 * (client_after - client_before) / duration,
    }


WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non200 = 0 end
function response(status, headers, body) if status ~= 200 then non200 = non200 + 1 end end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("non200") end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"non200":%d,"connect":%d,"read":%d,"write":%d,'
    .. '"timeout":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d}\\n',
    summary.requests, summary.duration, bad, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


async def load_wrk(
    wrk: str,
    port: int,
    cookie: str,
    *,
    concurrency: int,
    warmup: float,
    duration: float,
    server_pid: int,
    var_dir: Path,
) -> dict[str, Any]:
    script = var_dir / "bench.lua"
    script.write_text(WRK_SCRIPT)
    url = f"http://127.0.0.1:{port}{LIST_PATH}"

    async def wrk_run(seconds: float) -> dict[str, Any]:
        process = await asyncio.create_subprocess_exec(
            wrk,
            "-t1",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            "-H",
            f"Cookie: pl_session={cookie}",
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), timeout=seconds + 60)
        for line in out.decode().splitlines():
            if line.startswith("WRKJSON "):
                parsed: dict[str, Any] = json.loads(line[8:])
                return parsed
        raise RuntimeError(f"wrk printed no summary:\n{out.decode()}")

    await wrk_run(warmup)
    cpu_before, wrk_before = cpu_seconds(server_pid), children_cpu_seconds()
    result = await wrk_run(duration)
    cpu_after, wrk_after = cpu_seconds(server_pid), children_cpu_seconds()
    seconds = result["duration_us"] / 1e6
    socket_errors = result["connect"] + result["read"] + result["write"] + result["timeout"]
    return {
        "client": "wrk",
        "requests": result["requests"],
        "rps": result["requests"] / seconds,
        "p50_ms": result["p50_us"] / 1000,
        "p95_ms": result["p95_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "max_ms": result["max_us"] / 1000,
        "errors": result["non200"] + socket_errors,
        "statuses": {},
        "connection_errors": socket_errors,
        "server_cpu_percent": 100 * (cpu_after - cpu_before) / seconds,
        "client_cpu_percent": 100 * (wrk_after - wrk_before) / seconds,
    }


async def wait_quiet(pid: int, *, busy_below: float = 0.15, window: float = 0.5, limit: float = 30.0) -> float:
    """Wait until the process uses less than `busy_below` of a CPU over `window` (at most `limit` s)."""
    started = now()
    while now() - started < limit:
        before = cpu_seconds(pid)
        await asyncio.sleep(window)
        if cpu_seconds(pid) - before < busy_below * window:
            break
    return now() - started


# ---- SSE fan-out ----------------------------------------------------------------------------------


class Fanout:
    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.ready = 0
        self.all_ready = asyncio.Event()
        self.received = 0
        self.all_received = asyncio.Event()
        self.failed = 0

    def on_ready(self) -> None:
        self.ready += 1
        if self.ready >= self.expected:
            self.all_ready.set()

    def on_event(self) -> None:
        self.received += 1
        if self.received >= self.expected:
            self.all_received.set()


class SseSubscriber(asyncio.Protocol):
    """Reads a chunked text/event-stream; notes when `retry:` arrived and when each watched event did."""

    def __init__(self, fanout: Fanout, request: bytes, watched: bytes) -> None:
        self.fanout = fanout
        self.request = request
        self.watched = b"event: " + watched
        self.raw = bytearray()
        self.stream = bytearray()
        self.headers_done = False
        self.chunked = False
        self.chunk_left = 0
        self.status = 0
        self.is_ready = False
        self.arrivals: list[tuple[int, float]] = []  # (event id, perf_counter)
        self.closed = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        arrived = now()
        self.raw += data
        if not self.headers_done:
            end = self.raw.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.raw[:end])
            self.status = int(head[9:12])
            self.chunked = _CHUNKED.search(head) is not None
            del self.raw[: end + 4]
            self.headers_done = True
            if self.status != 200:
                self.fanout.failed += 1
                self.closed = True
                assert self.transport is not None
                self.transport.close()
                return
        self._dechunk()
        self._frames(arrived)

    def _dechunk(self) -> None:
        if not self.chunked:
            self.stream += self.raw
            self.raw.clear()
            return
        while self.raw:
            if self.chunk_left == 0:
                eol = self.raw.find(b"\r\n")
                if eol < 0:
                    return
                line = bytes(self.raw[:eol]).split(b";")[0].strip()
                del self.raw[: eol + 2]
                if not line:  # the CRLF that ends the previous chunk
                    continue
                self.chunk_left = int(line, 16)
                if self.chunk_left == 0:
                    return
            take = min(self.chunk_left, len(self.raw))
            self.stream += self.raw[:take]
            del self.raw[:take]
            self.chunk_left -= take

    def _frames(self, arrived: float) -> None:
        while True:
            end = self.stream.find(b"\n\n")
            if end < 0:
                return
            frame = bytes(self.stream[:end])
            del self.stream[: end + 2]
            if not self.is_ready and frame.startswith(b"retry:"):
                self.is_ready = True
                self.fanout.on_ready()
            elif self.watched in frame:
                event_id = -1
                for line in frame.split(b"\n"):
                    if line.startswith(b"id:"):
                        event_id = int(line[3:])
                self.arrivals.append((event_id, arrived))
                self.fanout.on_event()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


def mark(marks: list[float]) -> None:
    marks.append(now())


async def sse_fanout(
    port: int, cookie: str, csrf: str, *, subscribers: int, broadcasts: int, server_pid: int
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    fanout = Fanout(subscribers)
    request = request_bytes(port, "GET", "/api/events", cookie=cookie, headers={"Accept": "text/event-stream"})
    conns: list[SseSubscriber] = []
    gate = asyncio.Semaphore(100)  # connects in flight at once (the listen backlog is finite)

    async def subscribe() -> None:
        async with gate:
            _, protocol = await loop.create_connection(
                lambda: SseSubscriber(fanout, request, b"directory.changed"), "127.0.0.1", port
            )
            conns.append(protocol)

    started = now()
    try:
        connected = await asyncio.gather(*(subscribe() for _ in range(subscribers)), return_exceptions=True)
        connect_errors = sum(1 for c in connected if isinstance(c, BaseException))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fanout.all_ready.wait(), timeout=120)
        ready_seconds = now() - started
        ready = fanout.ready
        # `retry:` comes before each stream's replay query: let the server finish those first.
        settle_seconds = await wait_quiet(server_pid)
        rss_with_subscribers = rss_mb(server_pid)

        departments = (await call(port, "GET", LIST_PATH, cookie=cookie)).json()
        target = departments[0]
        version = target["version"]
        deliveries: list[float] = []
        per_broadcast: list[dict[str, Any]] = []
        for n in range(broadcasts):
            fanout.received = 0
            fanout.all_received.clear()
            for conn in conns:
                conn.arrivals.clear()
            marks: list[float] = []
            reply = await call(
                port,
                "PATCH",
                f"{LIST_PATH}/{target['id']}",
                cookie=cookie,
                headers={"X-CSRF-Token": csrf},
                json_body={"version": version, "location": f"bench broadcast {n} {time.time():.3f}"},
                before_send=partial(mark, marks),
            )
            if reply.status != 200:
                raise RuntimeError(f"PATCH answered {reply.status}: {reply.body[:300]!r}")
            patch_ms = (now() - marks[0]) * 1000
            version = reply.json()["version"]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fanout.all_received.wait(), timeout=15)
            got = [conn.arrivals[0][1] - marks[0] for conn in conns if conn.arrivals]
            deliveries.extend(got)
            got.sort()
            per_broadcast.append(
                {
                    "received": len(got),
                    "first_ms": (got[0] if got else math.nan) * 1000,
                    "patch_ms": patch_ms,
                    "p50_ms": percentile(got, 50) * 1000,
                    "p99_ms": percentile(got, 99) * 1000,
                    "max_ms": (got[-1] if got else math.nan) * 1000,
                }
            )
            await asyncio.sleep(0.5)
        deliveries.sort()
        expected = subscribers * broadcasts
        return {
            "subscribers": subscribers,
            "connected": subscribers - connect_errors - fanout.failed,
            "ready": ready,
            "ready_seconds": ready_seconds,
            "settle_seconds": settle_seconds,
            "broadcasts": broadcasts,
            "deliveries": len(deliveries),
            "missed": expected - len(deliveries),
            "p50_ms": percentile(deliveries, 50) * 1000,
            "p99_ms": percentile(deliveries, 99) * 1000,
            "max_ms": (deliveries[-1] if deliveries else math.nan) * 1000,
            "per_broadcast": per_broadcast,
            "server_rss_mb_with_subscribers": rss_with_subscribers,
            "closed_early": sum(1 for c in conns if c.closed),
        }
    finally:
        for conn in conns:
            conn.close()


# ---- the run --------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def verdict(name: str, value: float) -> bool:
    op, threshold, _ = TARGETS[name]
    if math.isnan(value):
        return False
    return {">=": value >= threshold, "<": value < threshold, "==": value == threshold}[op]


def print_table(results: dict[str, Any]) -> None:
    load, sse, mem = results["list"], results["sse"], results["memory"]
    rows: list[tuple[str, str, str, str]] = []

    def add(label: str, value: str, name: str | None = None) -> None:
        if name is None:
            rows.append((label, value, "", ""))
            return
        op, threshold, unit = TARGETS[name]
        ok = results["checks"][name]
        rows.append((label, value, f"{op} {threshold:g} {unit}".strip(), "PASS" if ok else "FAIL"))

    peak = results["list_peak"]
    add(f"GET {LIST_PATH}: peak throughput", f"{peak['rps']:.0f} req/s", "list_rps")
    add("  peak: p50 / p95 / p99", f"{peak['p50_ms']:.1f} / {peak['p95_ms']:.1f} / {peak['p99_ms']:.1f} ms")
    add(f"  paced at {results['parameters']['rate']:g} req/s: achieved", f"{load['rps']:.0f} req/s", "list_paced_rps")
    add("  paced: latency p50", f"{load['p50_ms']:.1f} ms")
    add("  paced: latency p95", f"{load['p95_ms']:.1f} ms", "list_p95_ms")
    add("  paced: latency p99 / max", f"{load['p99_ms']:.1f} / {load['max_ms']:.1f} ms")
    add("  errors (non-200, socket)", f"{load['errors'] + peak['errors']}", "list_errors")
    add("  paced: server / client CPU", f"{load['server_cpu_percent']:.0f} % / {load['client_cpu_percent']:.0f} %")
    add("  machine load average after", f"{load['loadavg_1min_after']:.1f} (on {results['machine']['cpus']} CPUs)")
    add("SSE: subscribers ready", f"{sse['ready']}/{sse['subscribers']} in {sse['ready_seconds']:.1f} s")
    add("  delivery p50", f"{sse['p50_ms']:.1f} ms")
    add("  delivery p99", f"{sse['p99_ms']:.1f} ms", "sse_p99_ms")
    add("  delivery max", f"{sse['max_ms']:.1f} ms")
    add("  deliveries missed", f"{sse['missed']} of {sse['subscribers'] * sse['broadcasts']}", "sse_missed")
    add("  received per broadcast", ", ".join(str(b["received"]) for b in sse["per_broadcast"]))
    add("Memory: idle RSS", f"{mem['idle_rss_mb']:.1f} MB", "idle_rss_mb")
    add(
        "  RSS after load / with SSE",
        f"{mem['after_load_rss_mb']:.1f} / {sse['server_rss_mb_with_subscribers']:.1f} MB",
    )
    widths = [max(len(r[i]) for r in [*rows, ("metric", "value", "target", "")]) for i in range(4)]
    header = ("metric", "value", "target", "")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


async def run(args: argparse.Namespace) -> dict[str, Any]:
    fd_limit = raise_fd_limit()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    var_dir = BENCH_DIR / f"run-{stamp}-{os.getpid()}"
    backend = "postgresql" if args.database_url.startswith("postgresql") else "sqlite"
    print(f"PatientLine HTTP benchmarks: {backend}, var dir {var_dir.relative_to(ROOT)}, RLIMIT_NOFILE {fd_limit}")
    env = prepare(var_dir, args.database_url)
    port = args.port or free_port()
    server = start_server(env, var_dir, port)
    try:
        boot = await wait_healthy(port, server)
        print(f"  serve: pid {server.pid}, port {port}, healthy after {boot:.1f} s")
        login = await call(port, "POST", "/api/auth/login", json_body={"username": USERNAME, "password": PASSWORD})
        if login.status != 200:
            raise RuntimeError(f"login answered {login.status}: {login.body[:300]!r}")
        cookie = next(
            c.split(";")[0].split("=", 1)[1] for c in login.header_values("set-cookie") if c.startswith("pl_session=")
        )
        csrf = login.json()["csrf_token"]

        for _ in range(20):
            reply = await call(port, "GET", LIST_PATH, cookie=cookie)
            if reply.status != 200:
                raise RuntimeError(f"GET {LIST_PATH} answered {reply.status}: {reply.body[:300]!r}")
        rows = len(reply.json())
        await asyncio.sleep(args.idle)
        idle_rss = rss_mb(server.pid)
        print(f"  memory: {idle_rss:.1f} MB idle; {rows} departments per list response")

        wrk = shutil.which("wrk") if args.client in {"auto", "wrk"} else None
        if args.client == "wrk" and wrk is None:
            raise RuntimeError("--client wrk: wrk is not installed")
        print(
            f"  load: {args.concurrency} connections, {args.warmup:g} s warm-up + {args.duration:g} s, "
            f"client {'wrk' if wrk else 'python-asyncio'}; machine load average {os.getloadavg()[0]:.1f}"
        )
        if wrk:
            peak = await load_wrk(
                wrk,
                port,
                cookie,
                concurrency=args.concurrency,
                warmup=args.warmup,
                duration=args.duration,
                server_pid=server.pid,
                var_dir=var_dir,
            )
        else:
            peak = await load_python(
                port,
                cookie,
                concurrency=args.concurrency,
                warmup=args.warmup,
                duration=args.duration,
                server_pid=server.pid,
            )
        print(f"  paced: {args.rate:g} req/s offered on a fixed schedule over {args.concurrency} connections")
        load = await load_python(
            port,
            cookie,
            concurrency=args.concurrency,
            warmup=args.warmup,
            duration=args.duration,
            server_pid=server.pid,
            rate=args.rate,
        )
        after_load_rss = rss_mb(server.pid)
        load["rows_per_response"] = rows
        load["loadavg_1min_after"] = os.getloadavg()[0]

        print(f"  sse: {args.subscribers} subscribers, {args.broadcasts} broadcasts")
        sse = await sse_fanout(
            port,
            cookie,
            csrf,
            subscribers=args.subscribers,
            broadcasts=args.broadcasts,
            server_pid=server.pid,
        )
    except BaseException:
        stop_server(server)
        print(f"  failed: the server's log is in {var_dir.relative_to(ROOT)}/serve.log", file=sys.stderr)
        raise
    stop_server(server)
    if not args.keep:
        shutil.rmtree(var_dir, ignore_errors=True)

    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": backend,
        "machine": machine(),
        "settings": {
            "concurrency": args.concurrency,
            "rate": args.rate,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "subscribers": args.subscribers,
            "broadcasts": args.broadcasts,
            "idle_s": args.idle,
        },
        "list": load,
        "list_peak": peak,
        "parameters": {"rate": args.rate},
        "sse": sse,
        "memory": {"idle_rss_mb": idle_rss, "after_load_rss_mb": after_load_rss},
        "targets": {k: {"op": op, "value": v, "unit": u} for k, (op, v, u) in TARGETS.items()},
    }
    figures = {
        "list_rps": peak["rps"],
        "list_paced_rps": load["rps"],
        "list_p95_ms": load["p95_ms"],
        "list_errors": load["errors"] + peak["errors"],
        "sse_p99_ms": sse["p99_ms"],
        "sse_missed": sse["missed"],
        "idle_rss_mb": idle_rss,
    }
    results["checks"] = {name: verdict(name, float(value)) for name, value in figures.items()}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--database-url",
        default="",
        help="e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/bench (migrated and seeded: "
        "use a database of its own); default a fresh SQLite file",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="keep-alive connections (default 16)")
    parser.add_argument(
        "--rate",
        type=float,
        default=500.0,
        help="requests per second offered in the paced run whose p95 is checked (default 500)",
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring (default 3)")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds measured (default 15)")
    parser.add_argument("--subscribers", type=int, default=1000, help="SSE subscribers (default 1000)")
    parser.add_argument("--broadcasts", type=int, default=5, help="events sent to them (default 5)")
    parser.add_argument("--idle", type=float, default=5.0, help="idle seconds before reading RSS (default 5)")
    parser.add_argument(
        "--client",
        choices=["auto", "python", "wrk"],
        default="python",
        help="load generator: python (default), wrk, or auto (wrk when installed)",
    )
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--keep", action="store_true", help="keep the run's var dir (its serve.log)")
    args = parser.parse_args()

    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        results = runner.run(run(args))
    print()
    print_table(results)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    out = BENCH_DIR / "results.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    missed = [name for name, ok in results["checks"].items() if not ok]
    print(f"\nresults: {out.relative_to(ROOT)}")
    if missed:
        print(f"MISSED: {', '.join(missed)}")
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
