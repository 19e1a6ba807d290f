"""Routing benchmark over HTTP: with 500 agents connected to the event stream, how long an offer takes
from the channel's submission to the agent's stream.

    .venv/bin/python bench/routing_sse.py
    .venv/bin/python bench/routing_sse.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres

A fresh database (SQLite under var/bench/, or a private PostgreSQL database made beside the one given
and dropped afterwards) is migrated and given one queue, 500 agents who are its members and one
channel account, each with an API token (rows written directly, to spare 500 password hashes). One
`patientline serve --roles web,worker,router` runs on a free 127.0.0.1 port. Every agent opens
`GET /api/events`, logs in to routing and goes ready; once the server is quiet again, the channel
submits `--tasks` calls at `--rate` per second (default 5/s: twice what 500 agents take in steady state
at a 180 s handling time and 85 % occupancy, 2.4/s), each `POST /api/routing/tasks` sent on schedule,
not waiting for the previous one. Each call is offered to an agent at once; the time measured runs
from just before the POST is sent to the moment the `routing.offer` frame with that task arrives in
that agent's stream. Agents accept their offers as they arrive (so the server also carries the
accepts and the status events they cause). The figures include the server's and this client's CPU
share during the calls.

Target: p99 < 100 ms, no offer missing. Prints the figures and one JSON line; exits 1 on a miss.
`measure_sse(...)` returns the figures (with a `missed` list) for bench/routing.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from measures import percentile

# bench/http.py would shadow the standard library's `http` package that httpx imports: look past this folder
_HERE = Path(__file__).resolve().parent
_PATH = sys.path[:]
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]
import httpx  # noqa: E402

sys.path[:] = _PATH

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "var" / "bench"
TARGET_P99_MS = 100.0
CHANNEL = "channel-bench"
now = time.perf_counter


# ---- the database and the server ------------------------------------------------------------------


@contextmanager
def database(url: str, var_dir: Path) -> Iterator[str]:
    """SQLite in the run's var dir, or a private PostgreSQL database beside `url`, dropped afterwards."""
    if not url:
        yield f"sqlite+aiosqlite:///{var_dir / 'patientline.db'}"
        return
    import asyncpg

    name = f"pl_bench_sse_{os.getpid()}_{secrets.token_hex(3)}"
    plain = url.replace("postgresql+asyncpg", "postgresql")

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(plain)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def patientline(*args: str, env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run([str(Path(sys.executable).parent / "patientline"), *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"patientline {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


async def seed(url: str, agents: int) -> tuple[int, list[tuple[int, str]], str]:
    """One queue, `agents` member agents and a channel account, each with a token; returns the queue id,
    (user id, token) per agent and the channel's token."""
    from sqlalchemy import insert, select

    from patientline.core.auth.models import ApiToken, User
    from patientline.core.auth.passwords import hash_password
    from patientline.core.auth.service import TOKEN_PREFIX, token_hash
    from patientline.core.db import Database
    from patientline.directory import models as directory_models  # noqa: F401 - tables the queue refers to
    from patientline.routing.models import QueueMember, RoutingQueue

    db = Database(url)
    stamp = datetime.now(UTC)
    password = hash_password(secrets.token_urlsafe(16))  # nobody logs in with it: one hash for everyone
    names = [f"bench-agent{n:03d}" for n in range(1, agents + 1)] + [CHANNEL]
    try:
        async with db.sessions() as session, session.begin():
            queue = RoutingQueue(code="BENCH", name="Bench", wrap_up="none", wrap_up_s=0)
            session.add(queue)
            await session.flush()
            await session.execute(insert(User), [
                {"username": name, "display_name": name, "roles": ["agent"], "password_hash": password,
                 "must_change_password": False, "is_active": True, "failed_logins": 0, "version": 1,
                 "created_at": stamp, "updated_at": stamp} for name in names])  # fmt: skip
            ids = dict((await session.execute(select(User.username, User.id).where(User.username.in_(names)))).all())
            await session.execute(insert(QueueMember), [{"queue_id": queue.id, "user_id": ids[name], "tier": 1}
                                                        for name in names[:-1]])  # fmt: skip
            secrets_by_name = {name: TOKEN_PREFIX + secrets.token_urlsafe(32) for name in names}
            await session.execute(insert(ApiToken), [
                {"name": "bench", "prefix": secret[:12], "token_hash": token_hash(secret),
                 "user_id": ids[name], "scopes": ["contacts:handle"], "created_at": stamp, "updated_at": stamp}
                for name, secret in secrets_by_name.items()])  # fmt: skip
            return queue.id, [(ids[n], secrets_by_name[n]) for n in names[:-1]], secrets_by_name[CHANNEL]
    finally:
        await db.dispose()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(env: dict[str, str], var_dir: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    with (var_dir / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "patientline"), "serve", "--port", str(port), "--roles",
             "web,worker,router"], env=env, cwd=var_dir, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


async def wait_healthy(client: httpx.AsyncClient, process: subprocess.Popen[bytes], within: float = 60.0) -> None:
    started = now()
    while now() - started < within:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} (see serve.log)")
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get("/healthz", timeout=2)).status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"/healthz did not answer within {within:.0f} s")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_quiet(pid: int, *, busy_below: float = 0.15, window: float = 0.5, limit: float = 60.0) -> float:
    """Until the server uses less than `busy_below` of a CPU over `window`: the events of 500 agents
    going ready are still being fanned out to every stream after the last answer."""
    started = now()
    while now() - started < limit:
        before = cpu_seconds(pid)
        await asyncio.sleep(window)
        if cpu_seconds(pid) - before < busy_below * window:
            break
    return now() - started


# ---- the agents -----------------------------------------------------------------------------------


@dataclass
class Desk:
    """What the agents' streams saw: when each task's offer arrived, and who is listening."""

    listening: int = 0
    all_listening: asyncio.Event = field(default_factory=asyncio.Event)
    offers: dict[int, float] = field(default_factory=dict)  # task id -> arrival (perf_counter)
    arrived: dict[int, asyncio.Event] = field(default_factory=dict)
    accepts: list[asyncio.Task[Any]] = field(default_factory=list)
    accept_failures: int = 0
    expected: int = 0

    def arrival(self, task_id: int) -> asyncio.Event:
        return self.arrived.setdefault(task_id, asyncio.Event())


async def listen(client: httpx.AsyncClient, token: str, desk: Desk, accept: bool) -> None:
    """One agent's event stream, until cancelled."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    async with client.stream("GET", "/api/events", headers=headers, timeout=None) as response:
        response.raise_for_status()
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("retry:"):
                desk.listening += 1
                if desk.listening >= desk.expected:
                    desk.all_listening.set()
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "routing.offer":
                arrived = now()
                task_id = int(json.loads(line[5:])["payload"]["task_id"])
                desk.offers.setdefault(task_id, arrived)
                desk.arrival(task_id).set()
                if accept:
                    desk.accepts.append(asyncio.create_task(take(client, token, task_id, desk)))
            elif not line:
                event = ""


async def take(client: httpx.AsyncClient, token: str, task_id: int, desk: Desk) -> None:
    reply = await client.post(f"/api/routing/tasks/{task_id}/accept", headers={"Authorization": f"Bearer {token}"})
    if reply.status_code != 200:
        desk.accept_failures += 1


async def get_ready(client: httpx.AsyncClient, tokens: list[str]) -> None:
    gate = asyncio.Semaphore(20)

    async def one(token: str) -> None:
        async with gate:
            headers = {"Authorization": f"Bearer {token}"}
            for step in ("login", "ready"):
                reply = await client.post(f"/api/routing/me/{step}", headers=headers)
                if reply.status_code != 200:
                    raise RuntimeError(f"/me/{step} answered {reply.status_code}: {reply.text[:300]}")

    await asyncio.gather(*(one(token) for token in tokens))


async def submit_all(client: httpx.AsyncClient, channel: str, queue_id: int, desk: Desk, *, tasks: int, rate: float,
                     within: float) -> tuple[list[float], int]:  # fmt: skip
    """Sends the calls on schedule; returns each offer's delay (s) and how many never arrived."""
    headers = {"Authorization": f"Bearer {channel}"}
    delays: list[float] = []
    lost = 0

    async def one(index: int, at: float) -> None:
        nonlocal lost
        await asyncio.sleep(max(0.0, at - now()))
        sent = now()
        call = {"queue_id": queue_id, "channel": "voice", "external_ref": f"bench-{index}"}
        reply = await client.post("/api/routing/tasks", headers=headers, json=call)
        task = reply.json()
        if reply.status_code != 201 or task.get("state") != "offered":
            lost += 1
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(desk.arrival(task["id"]).wait(), within)
        if task["id"] in desk.offers:
            delays.append(desk.offers[task["id"]] - sent)
        else:
            lost += 1

    start = now() + 0.1
    await asyncio.gather(*(one(i, start + i / rate) for i in range(tasks)))
    return sorted(delays), lost


async def run(url: str, env: dict[str, str], var_dir: Path, *, agents: int, tasks: int, rate: float,
              accept: bool) -> dict[str, Any]:  # fmt: skip
    queue_id, desks, channel = await seed(url, agents)
    port = free_port()
    limits = httpx.Limits(max_connections=agents * 2 + 100, max_keepalive_connections=agents * 2 + 100)
    with server(env, var_dir, port) as process:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as client:
            await wait_healthy(client, process)
            desk = Desk(expected=agents)
            started = now()
            streams = [asyncio.create_task(listen(client, token, desk, accept)) for _, token in desks]
            try:
                await asyncio.wait_for(desk.all_listening.wait(), timeout=120)
                connect_s = now() - started
                await get_ready(client, [token for _, token in desks])
                ready_s = now() - started - connect_s
                settle_s = await wait_quiet(process.pid)
                cpu_before, client_before, began = cpu_seconds(process.pid), time.process_time(), now()
                delays, lost = await submit_all(client, channel, queue_id, desk, tasks=tasks, rate=rate, within=5.0)
                submit_s = now() - began
                server_cpu = (cpu_seconds(process.pid) - cpu_before) / submit_s
                client_cpu = (time.process_time() - client_before) / submit_s
                await asyncio.gather(*desk.accepts, return_exceptions=True)
            finally:
                for stream in streams:
                    stream.cancel()
                await asyncio.gather(*streams, return_exceptions=True)
    figures = {
        "agents": agents,
        "tasks": tasks,
        "rate_per_s": rate,
        "streams_open_s": round(connect_s, 2),
        "agents_ready_s": round(ready_s, 2),
        "settle_s": round(settle_s, 2),
        "submit_s": round(submit_s, 2),
        "server_cpu_percent": round(server_cpu * 100),
        "client_cpu_percent": round(client_cpu * 100),
        "offers": len(delays),
        "lost": lost,
        "accepts_failed": desk.accept_failures,
        "p50_ms": round(percentile(delays, 50) * 1000, 1),
        "p99_ms": round(percentile(delays, 99) * 1000, 1),
        "max_ms": round((delays[-1] if delays else math.nan) * 1000, 1),
    }
    figures["missed"] = []
    if not figures["p99_ms"] < TARGET_P99_MS:
        figures["missed"].append(f"sse: offer p99 {figures['p99_ms']} ms >= {TARGET_P99_MS:.0f} ms")
    if lost:
        figures["missed"].append(f"sse: {lost} of {tasks} offers never reached the agent's stream")
    return figures


def measure_sse(*, agents: int = 500, tasks: int = 300, rate: float = 5.0, database_url: str = "",
                accept: bool = True, keep: bool = False) -> dict[str, Any]:  # fmt: skip
    """Runs the whole measurement (its own server and database) and returns the figures; `missed` lists
    the targets missed. Call it outside an event loop."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    var_dir = BENCH_DIR / f"routing-sse-{os.getpid()}-{int(time.time())}"
    var_dir.mkdir(parents=True)
    failed = True
    try:
        with database(database_url, var_dir) as url:
            env = {k: v for k, v in os.environ.items() if not k.startswith("PATIENTLINE_")}
            env |= {"PATIENTLINE_VAR_DIR": str(var_dir), "PATIENTLINE_DATABASE_URL": url,
                    "PATIENTLINE_LOG_LEVEL": "WARNING"}  # fmt: skip
            patientline("migrate", env=env, cwd=var_dir)
            figures = asyncio.run(run(url, env, var_dir, agents=agents, tasks=tasks, rate=rate, accept=accept))
            figures["database"] = "postgresql" if database_url else "sqlite"
            failed = bool(figures["missed"])
            return figures
    finally:
        if not (keep or failed):
            shutil.rmtree(var_dir, ignore_errors=True)


def show(figures: dict[str, Any]) -> None:
    verdict = "ok" if figures["p99_ms"] < TARGET_P99_MS else "MISSED"
    print(f"  {figures['agents']} agents on the event stream ({figures['database']}): streams open in "
          f"{figures['streams_open_s']} s, all ready in {figures['agents_ready_s']} s")  # fmt: skip
    print(f"  {figures['tasks']} calls at {figures['rate_per_s']}/s, offers accepted as they ring "
          f"({figures['accepts_failed']} accepts failed)")  # fmt: skip
    print(f"  submit -> offer in the agent's stream: p50 {figures['p50_ms']} ms  p99 {figures['p99_ms']} ms  "
          f"max {figures['max_ms']} ms  target p99 < {TARGET_P99_MS:.0f} ms  {verdict}")  # fmt: skip
    print(f"  offers lost: {figures['lost']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=300, help="calls submitted (at most one per agent)")
    parser.add_argument("--rate", type=float, default=5.0, help="calls submitted per second")
    parser.add_argument("--database-url", default="", help="a PostgreSQL server to make a private database on")
    parser.add_argument("--no-accept", action="store_true", help="agents let their offers ring")
    parser.add_argument("--keep", action="store_true", help="keep the run's var dir (serve.log)")
    args = parser.parse_args(argv)
    if not 1 <= args.tasks <= args.agents or args.rate <= 0:
        parser.error("1 <= tasks <= agents, and a positive rate")
    figures = measure_sse(agents=args.agents, tasks=args.tasks, rate=args.rate, database_url=args.database_url,
                          accept=not args.no_accept, keep=args.keep)  # fmt: skip
    show(figures)
    print(json.dumps(figures, ensure_ascii=False))
    for miss in figures["missed"]:
        print(f"MISSED {miss}")
    return 1 if figures["missed"] else 0


if __name__ == "__main__":
    sys.exit(main())
