"""Web chat benchmark: 2,000 patients chatting at once with one `patientline serve`.

    .venv/bin/python bench/chat.py
    .venv/bin/python bench/chat.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/chat.py --conversations 200 --duration 5     # a quick trial (misses the 2,000)

A fresh var dir under var/bench/ is migrated and seeded with the demo hospital (`patientline migrate`,
`patientline seed-demo`), whose public knowledge the assistant answers from. Its database is the embedded
SQLite there, or with --database-url `pl_bench_chat`, made afresh on that PostgreSQL server and dropped
afterwards. One `patientline serve --roles web,worker,router` runs on a free 127.0.0.1 port with the
chat's flood limits raised out of the way (every patient here writes from 127.0.0.1). From outside it:

1. `--conversations` chats start (`POST /api/chat/sessions`) and each opens its stream
   (`GET /api/chat/{id}/stream`); a stream counts as connected once the assistant's greeting arrives in
   it, and every stream stays open until the end;
2. after one warm-up message per question, patients write `--rate` messages a second for `--duration`
   seconds (default 30/s for 25 s: each of 2,000 patients writing about once a minute), each sent on
   schedule (not waiting for the one before) to a chat with no message in flight, with questions a
   hospital hotline hears ("停车场在哪里", "发烧咳嗽挂什么科", "CT检查要空腹吗", ...);
3. each message is timed from just before its POST is sent to: its own frame (by client_id) in its
   chat's stream (end to end); the POST's answer, which comes once the assistant has stored its reply;
   the assistant's first reply frame in the stream (the bot's answer);
4. the server's VmRSS with every stream open, and the errors: non-2xx answers, failed requests, streams
   that never connected or dropped, frames that never came (within 10 s).

Targets: 2,000 streams held by the one server process throughout; end-to-end p99 < 150 ms; the bot's
answer in the stream p95 < 100 ms; no errors. Prints the figures (`--format json`: one JSON object
instead) and exits 1 on a miss. The load generator runs in this process on the same CPUs as the server:
the CPU used by the server, by this process and by every other process on the machine during the
messages is printed, and the schedule lag shows when the generator itself falls behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import resource
import secrets
import shutil
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import measures
from measures import BENCH_DIR, create_database, drop_database, machine, percentile, run_as_served

# isort: split
# httpx only after measures: it needs the standard library's `http`, which bench/http.py would shadow
import httpx
from routing_sse import cpu_seconds, free_port, patientline, server, wait_healthy, wait_quiet

# name: (comparison, threshold, unit)
TARGETS: dict[str, tuple[str, float, str]] = {
    "streams_held": (">=", 2000, "streams"),
    "message_p99_ms": ("<", 150, "ms"),
    "bot_p95_ms": ("<", 100, "ms"),
    "errors": ("==", 0, ""),
}
QUESTIONS = (
    "停车场在哪里", "怎么预约挂号", "发烧咳嗽挂什么科", "CT检查要空腹吗", "医保报销比例", "孩子三岁拉肚子看什么科",
    "探视时间是几点", "门诊几点开始挂号", "住院需要带什么", "抽血要空腹吗", "周末有门诊吗", "出院结算怎么办理",
    "体检报告多久能拿到", "医院有几个院区", "头痛头晕挂什么科", "皮肤过敏起疹子看哪个科", "孕妇建档需要什么材料",
    "异地医保可以直接结算吗", "病历复印在哪里办理", "晚上有急诊吗", "核磁共振要预约多久", "老人腰疼腿麻看什么科",
)  # fmt: skip
FLOOD_LIMITS = {"PATIENTLINE_CHAT_SESSIONS_PER_HOUR": "1000000", "PATIENTLINE_CHAT_MESSAGES_PER_MINUTE": "1000000"}
IDLE_S = 5.0  # the server's CPU with every stream open and nobody writing, over this long
FRAME_WAIT_S = 10.0  # a frame later than this never came
STREAM_TIMEOUT = httpx.Timeout(30.0, read=60.0)  # the server sends a keep-alive every 15 s
now = time.perf_counter


def say(line: str) -> None:
    """Progress, on stderr: stdout is the figures'."""
    print(line, file=sys.stderr, flush=True)


# ---- what the patients see ------------------------------------------------------------------------


@dataclass
class Errors:
    """Everything that went wrong, by kind, with the first of each kind word for word."""

    counts: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)

    def note(self, kind: str, detail: str = "") -> None:
        self.counts[kind] += 1
        self.samples.setdefault(kind, detail[:300])


@dataclass
class Chat:
    """One patient's chat: its id and secret, and the message frames its stream delivered."""

    conversation: str
    secret: str
    frames: list[tuple[int, str, str | None, float]] = field(default_factory=list)  # seq, sender, client_id, at
    news: asyncio.Event = field(default_factory=asyncio.Event)
    connected: asyncio.Event = field(default_factory=asyncio.Event)  # the greeting came
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # connected, or the stream has ended
    dropped: bool = False

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Chat-Secret": self.secret}

    def saw(self, message: dict[str, Any], arrived: float) -> None:
        self.frames.append((message["seq"], message["sender"], message.get("client_id"), arrived))
        self.connected.set()
        self.news.set()

    def arrivals(self, client_id: str) -> tuple[float | None, float | None]:
        """When the frame of the patient's message arrived, and the bot's first frame after it."""
        mine = next(((seq, at) for seq, _, cid, at in self.frames if cid == client_id), None)
        if mine is None:
            return None, None
        return mine[1], next((at for seq, sender, _, at in self.frames if seq > mine[0] and sender == "bot"), None)

    async def until_answered(self, client_id: str, within: float) -> tuple[float | None, float | None]:
        deadline = now() + within
        while (found := self.arrivals(client_id))[1] is None and (left := deadline - now()) > 0:
            self.news.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.news.wait(), left)
        return found


@dataclass(frozen=True)
class Timing:
    """Seconds from just before the POST was sent (None: never came)."""

    answered: float
    delivered: float | None
    bot: float | None


# ---- the patients' side of the API ----------------------------------------------------------------


async def call(client: httpx.AsyncClient, errors: Errors, what: str, method: str, path: str,
               **request: Any) -> httpx.Response | None:  # fmt: skip
    """The answer when it is a 2xx; anything else is noted as an error."""
    try:
        reply = await client.request(method, path, **request)
    except httpx.HTTPError as error:
        errors.note(f"{what}: {type(error).__name__}", str(error))
        return None
    if not reply.is_success:
        errors.note(f"{what}: {reply.status_code}", reply.text)
        return None
    return reply


async def start_chats(client: httpx.AsyncClient, count: int, errors: Errors, *, concurrency: int = 32) -> list[Chat]:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> Chat | None:
        async with gate:
            reply = await call(client, errors, "start", "POST", "/api/chat/sessions", json={"locale": "zh_CN"})
        return None if reply is None else Chat(reply.json()["conversation"], reply.json()["secret"])

    return [chat for chat in await asyncio.gather(*(one() for _ in range(count))) if chat is not None]


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """(event, data) of each frame; comments (keep-alives) and `retry:` are skipped."""
    event = data = ""
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
        elif not line:
            if event:
                yield event, data
            event = data = ""


async def listen(client: httpx.AsyncClient, chat: Chat, gate: asyncio.Semaphore, errors: Errors) -> None:
    """The chat's stream from its first message, until cancelled; holds `gate` until the greeting arrives,
    so the streams connect a few at a time."""
    holding = True
    await gate.acquire()
    try:
        path = f"/api/chat/{chat.conversation}/stream"
        async with client.stream("GET", path, params={"after": 0}, headers=chat.headers) as response:
            if response.status_code != 200:
                errors.note(f"stream: {response.status_code}", (await response.aread()).decode(errors="replace"))
                return
            async for event, data in sse_events(response):
                if event == "message":
                    chat.saw(json.loads(data), now())
                if holding and chat.connected.is_set():
                    holding = False
                    gate.release()
                    chat.settled.set()
        chat.dropped = True
        errors.note("stream: ended by the server")
    except httpx.HTTPError as error:
        chat.dropped = True
        errors.note(f"stream: {type(error).__name__}", str(error))
    finally:
        if holding:
            gate.release()
        chat.settled.set()


async def open_streams(client: httpx.AsyncClient, chats: list[Chat], errors: Errors, *, concurrency: int = 50,
                       within: float = 180.0) -> list[asyncio.Task[None]]:  # fmt: skip
    """One stream per chat; returns once each has its greeting or has failed (or `within` is up)."""
    gate = asyncio.Semaphore(concurrency)
    streams = [asyncio.create_task(listen(client, chat, gate, errors)) for chat in chats]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(chat.settled.wait() for chat in chats)), within)
    return streams


async def write(client: httpx.AsyncClient, chat: Chat, text: str, errors: Errors) -> Timing | None:
    """One patient message, timed until the bot's reply is in the stream."""
    client_id = secrets.token_hex(8)
    sent = now()
    reply = await call(client, errors, "message", "POST", f"/api/chat/{chat.conversation}/messages",
                       json={"client_id": client_id, "text": text}, headers=chat.headers)  # fmt: skip
    if reply is None:
        return None
    answered = now() - sent
    delivered, bot = await chat.until_answered(client_id, FRAME_WAIT_S)
    if delivered is None:
        errors.note("the patient's frame never came", f"{chat.conversation} {client_id} {text}")
    elif bot is None:
        errors.note("the bot's frame never came", f"{chat.conversation} {client_id} {text}: {reply.text}")
    return Timing(answered, None if delivered is None else delivered - sent, None if bot is None else bot - sent)


async def warm_up(client: httpx.AsyncClient, chats: list[Chat], errors: Errors) -> None:
    """Each question once, one at a time: the search index and the tokenizer load on first use."""
    for chat, text in zip(chats, QUESTIONS, strict=False):
        await write(client, chat, text, errors)


async def converse(client: httpx.AsyncClient, chats: list[Chat], errors: Errors, *, rate: float, duration: float,
                   rng: random.Random) -> tuple[list[Timing], list[float]]:  # fmt: skip
    """`rate` messages a second for `duration` seconds, on schedule, each to a chat with none in flight;
    returns the timings and how late each message left (the load generator's own lag)."""
    idle = list(chats)
    timings: list[Timing] = []
    lags: list[float] = []

    async def one(at: float) -> None:
        await asyncio.sleep(max(0.0, at - now()))
        lags.append(now() - at)
        if not idle:
            errors.note("no chat without a message in flight")
            return
        chat = idle.pop(rng.randrange(len(idle)))
        try:
            timing = await write(client, chat, rng.choice(QUESTIONS), errors)
        finally:
            idle.append(chat)
        if timing is not None:
            timings.append(timing)

    start = now() + 0.1
    await asyncio.gather(*(one(start + i / rate) for i in range(round(rate * duration))))
    return timings, lags


# ---- the run --------------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


async def cpu_share(pid: int, seconds: float) -> int:
    """The server's CPU use over the next `seconds`, in % of one CPU."""
    before = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    return round((cpu_seconds(pid) - before) / seconds * 100)


def busy_seconds() -> float:
    """CPU time the whole machine has spent busy since it booted (every CPU, every process)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def spread(name: str, seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    marks = (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))
    return {f"{name}_{mark}_ms": round(percentile(ordered, p) * 1000, 1) for mark, p in marks}


async def run(args: argparse.Namespace, env: dict[str, str], var_dir: Path) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    stream_pool = httpx.Limits(max_connections=args.conversations + 16, max_keepalive_connections=16)
    call_pool = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    with server(env, var_dir, port) as process:
        async with (
            httpx.AsyncClient(base_url=base, limits=call_pool, timeout=30.0) as calls,
            httpx.AsyncClient(base_url=base, limits=stream_pool, timeout=STREAM_TIMEOUT) as streaming,
        ):
            await wait_healthy(calls, process)
            say(f"  serve: pid {process.pid}, port {port}; starting {args.conversations} chats")
            return await visit(process.pid, calls, streaming, args)


async def visit(pid: int, calls: httpx.AsyncClient, streaming: httpx.AsyncClient,
                args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    """The chats start, their streams open, then the patients write; the streams close at the end."""
    errors, began = Errors(), now()
    chats = await start_chats(calls, args.conversations, errors)
    figures: dict[str, Any] = {"conversations": args.conversations, "chats_started": len(chats),
                               "chats_start_s": round(now() - began, 1)}  # fmt: skip
    began = now()
    streams = await open_streams(streaming, chats, errors)
    try:
        figures["streams_connected"] = sum(chat.connected.is_set() for chat in chats)
        figures["streams_connect_s"] = round(now() - began, 1)
        say(f"  {len(chats)} chats in {figures['chats_start_s']} s, {figures['streams_connected']} streams "
            f"connected in {figures['streams_connect_s']} s")  # fmt: skip
        await warm_up(calls, chats, errors)
        figures["settle_s"] = round(await wait_quiet(pid), 1)
        figures["server_idle_cpu_percent"] = await cpu_share(pid, IDLE_S)
        figures["rss_mb_streams_open"] = round(rss_mb(pid), 1)
        say(f"  server RSS {figures['rss_mb_streams_open']} MB; {args.rate:g} messages/s for {args.duration:g} s")
        figures |= await load(pid, calls, chats, errors, args)
        figures["rss_mb_after_load"] = round(rss_mb(pid), 1)
        held = (chat.connected.is_set() and not stream.done() for chat, stream in zip(chats, streams, strict=True))
        figures["streams_held"] = sum(held)
    finally:
        for stream in streams:
            stream.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
    for chat in chats:
        if not chat.connected.is_set() and not chat.dropped:
            errors.note("stream: never connected", chat.conversation)
    return figures | {"errors": sum(errors.counts.values()), "error_kinds": dict(errors.counts),
                      "error_samples": errors.samples}  # fmt: skip


async def load(pid: int, calls: httpx.AsyncClient, chats: list[Chat], errors: Errors,
               args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    """The patients write; their timings, and the CPU the server, this load generator and the rest of the
    machine used meanwhile (in % of one CPU)."""
    server_cpu, client_cpu, machine_cpu, began = cpu_seconds(pid), time.process_time(), busy_seconds(), now()
    timings, lags = await converse(calls, chats, errors, rate=args.rate, duration=args.duration,
                                   rng=random.Random(args.seed))  # fmt: skip
    elapsed = now() - began
    server_cpu, client_cpu = cpu_seconds(pid) - server_cpu, time.process_time() - client_cpu
    machine_cpu = busy_seconds() - machine_cpu
    return {
        "rate_per_s": args.rate,
        "duration_s": args.duration,
        "messages_sent": len(lags),
        "messages_timed": len(timings),
        **spread("message", [t.delivered for t in timings if t.delivered is not None]),
        **spread("post", [t.answered for t in timings]),
        **spread("bot", [t.bot for t in timings if t.bot is not None]),
        "schedule_lag_p99_ms": round(percentile(sorted(lags), 99) * 1000, 1),
        "server_cpu_percent": round(server_cpu / elapsed * 100),
        "client_cpu_percent": round(client_cpu / elapsed * 100),
        "others_cpu_percent": round((machine_cpu - server_cpu - client_cpu) / elapsed * 100),
    }


@contextmanager
def database(server_url: str) -> Iterator[str | None]:
    """None: the embedded SQLite of the run's var dir. Else `pl_bench_chat`, made afresh on that PostgreSQL
    server by measures.create_database and dropped afterwards."""
    if not server_url:
        yield None
        return
    measures.BENCH_DATABASE_URL = server_url  # the server create_database and drop_database work on
    url = asyncio.run(create_database("postgresql", "chat"))
    try:
        yield url
    finally:
        asyncio.run(drop_database("postgresql", url))


def prepare(var_dir: Path, database_url: str | None) -> dict[str, str]:
    """The server's environment, its database migrated and seeded with the demo hospital."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATIENTLINE_")}
    env |= {"PATIENTLINE_VAR_DIR": str(var_dir), "PATIENTLINE_LOG_LEVEL": "WARNING", **FLOOD_LIMITS}
    if database_url:
        env["PATIENTLINE_DATABASE_URL"] = database_url
    for command in ("migrate", "seed-demo"):
        began = now()
        patientline(command, env=env, cwd=var_dir)
        say(f"  {command}: {now() - began:.1f} s")
    return env


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard) if hard != resource.RLIM_INFINITY else (needed, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < needed:
        raise SystemExit(f"{needed} open files are needed; the hard limit is {hard}")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """The whole run, its own server and database; the figures, with the targets `missed`."""
    raise_fd_limit(2 * args.conversations + 500)  # the server inherits it
    var_dir = BENCH_DIR / f"chat-{os.getpid()}-{int(time.time())}"
    var_dir.mkdir(parents=True)
    backend = "postgresql" if args.database_url else "sqlite"
    say(f"web chat benchmark ({backend}): var dir {var_dir}")
    failed = True
    try:
        with database(args.database_url) as url:
            figures = {"database": backend, **run_as_served(run(args, prepare(var_dir, url), var_dir))}
        figures |= {"machine": machine(), "missed": missed(figures)}
        failed = bool(figures["missed"])
        return figures
    finally:
        if args.keep or failed:
            say(f"  the run's var dir (serve.log) stays: {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)


# ---- the report -----------------------------------------------------------------------------------


def missed(figures: dict[str, Any]) -> list[str]:
    out = []
    for name, (op, threshold, unit) in TARGETS.items():
        value = float(figures[name])
        if not {">=": value >= threshold, "<": value < threshold, "==": value == threshold}[op]:
            out.append(f"{name} {value:g}, target {op} {threshold:g} {unit}".rstrip())
    return out


def verdict(figures: dict[str, Any], name: str) -> str:
    op, threshold, unit = TARGETS[name]
    failed = any(miss.startswith(f"{name} ") for miss in figures["missed"])
    return f"target {op} {threshold:g} {unit}".rstrip() + ("  MISSED" if failed else "  ok")


def show(figures: dict[str, Any]) -> None:
    f = figures
    rows = [
        (f"chats started ({f['database']})", f"{f['chats_started']} of {f['conversations']} in {f['chats_start_s']} s",
         ""),
        ("streams connected / held to the end",
         f"{f['streams_connected']} in {f['streams_connect_s']} s / {f['streams_held']}", verdict(f, "streams_held")),
        ("server RSS: streams open / after load", f"{f['rss_mb_streams_open']} / {f['rss_mb_after_load']} MB", ""),
        ("server CPU, nobody writing", f"{f['server_idle_cpu_percent']} % (settled for {f['settle_s']} s)", ""),
        ("messages sent / timed", f"{f['messages_sent']} / {f['messages_timed']} at {f['rate_per_s']:g}/s "
         f"for {f['duration_s']:g} s", ""),
        ("end to end p50 / p95 / p99 / max", _ms(f, "message"), verdict(f, "message_p99_ms")),
        ("POST answered p50 / p95 / p99 / max", _ms(f, "post"), ""),
        ("bot in the stream p50 / p95 / p99 / max", _ms(f, "bot"), verdict(f, "bot_p95_ms")),
        ("CPU server / client / other processes", f"{f['server_cpu_percent']} / {f['client_cpu_percent']} / "
         f"{f['others_cpu_percent']} % of one CPU", ""),
        ("client schedule lag p99", f"{f['schedule_lag_p99_ms']} ms", ""),
        ("errors", ", ".join(f"{k} x{n}" for k, n in f["error_kinds"].items()) or "0", verdict(f, "errors")),
    ]  # fmt: skip
    width = max(len(label) for label, _, _ in rows)
    print(f"web chat benchmark: {f['machine']}")
    for label, value, target in rows:
        print(f"  {label:<{width}}  {value}  {target}".rstrip())
    for kind, sample in f["error_samples"].items():
        print(f"  first {kind}: {sample}".rstrip(": "))
    for miss in f["missed"]:
        print(f"MISSED {miss}")


def _ms(figures: dict[str, Any], name: str) -> str:
    return " / ".join(f"{figures[f'{name}_{mark}_ms']:g}" for mark in ("p50", "p95", "p99", "max")) + " ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=2000, help="chats, each with its stream open")
    parser.add_argument(
        "--rate", type=float, default=30.0, help="patient messages a second, in all (2,000 chats: one a minute each)"
    )
    parser.add_argument("--duration", type=float, default=25.0, help="seconds of messages")
    parser.add_argument("--database-url", default="", help="a PostgreSQL server to make pl_bench_chat on")
    parser.add_argument("--seed", type=int, default=20261124, help="which chats and questions")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--keep", action="store_true", help="keep the run's var dir (serve.log)")
    args = parser.parse_args(argv)
    if args.conversations < len(QUESTIONS) or args.rate <= 0 or not 0 < args.duration <= 300:
        parser.error(f"at least {len(QUESTIONS)} conversations, a positive rate, 0 < duration <= 300")
    figures = measure(args)
    if args.format == "json":
        print(json.dumps(figures, ensure_ascii=False))
    else:
        show(figures)
    return 1 if figures["missed"] else 0


if __name__ == "__main__":
    sys.exit(main())
