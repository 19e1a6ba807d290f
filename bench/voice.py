"""Phone line benchmark: 60 conversations at once through the real line (Kamailio, media workers, IVR,
queue, agents' phones, recording) on one `patientline serve`.

    .venv/bin/python bench/voice.py
    .venv/bin/python bench/voice.py --rate 60                         # all the calls in one second
    .venv/bin/python bench/voice.py --calls 10 --talk-seconds 15 --keep   # a quick trial; keep var/bench/voice-*/

A fresh var dir under var/bench/voice-*/ is migrated and seeded with the demo hospital (`patientline
migrate`, `patientline seed-demo`); `--calls` agents (`voicebench01`, ...) are added with the agent role
as tier-1 members of the demo's general queue (GENERAL, reached by key 0 in the 8585 flow), through the
service layer. One `patientline serve --roles web,worker,router` runs with the voice role
(PATIENTLINE_VOICE=1), `--calls` + 4 media workers, the SIP front on `--port-base` (33000), the
workers' SIP ports just above it and their media ports from `--port-base` + 1000. Then, from outside:

1. the agents' phones: one sipp UAS on `--port-base` + 210 answers every call offered to an agent and
   speaks into it (sipp's G.711 speech pcap, again every 7.1 s) until the BYE; every agent's AOR is
   registered at the SIP front (REGISTER over UDP, Contact: that UAS) so Kamailio relays the offers
   there;
2. one warm-up call (key 0, hangs up in the queue while nobody is ready) makes the prompts once;
3. every agent logs in over HTTP (its own session) and goes ready in routing;
4. one sipp UAC places `--calls` calls to 8585 at `--rate` calls a second (G.711 A-law with
   telephone-event): the greeting and the winter notice, key 0 (RFC 2833) while they play, the
   general queue (hold music), the agent's phone rung and answered, the conversation bridged and
   recorded; the caller speaks for `--talk-seconds` and hangs up;
5. every second meanwhile: the calls talking (`GET /api/voice/live` as supervisor1), the CPU time of
   the server's process tree (server, media workers, Kamailio), of the two sipp processes and of the
   whole machine (/proc/stat), and the sum of the tree's VmRSS (and PSS);
6. afterwards the call log (`GET /api/voice/calls`): every call queued, connected to an agent,
   recorded, ended by the caller, and its recording (`GET /api/voice/calls/{id}/recording`) holding
   speech in its last 10 s (the conversation); anything else, or a call sipp did not complete, is a
   failed call.

The plateau is the longest stretch of samples with the most calls talking (all of them, when nothing
failed); its CPU is the server tree's, in % of the machine's CPUs. Post-dial answer is sipp's response
time from the INVITE to the 200 OK (`rtd`, written per call with -trace_rtt).

Targets: no failed call; the server tree's CPU on the plateau < 60 % of the machine; the tree's memory
(sum of PSS: each page counted once, shared ones split between the processes sharing them, so the
pjsua2 library the workers share is not counted 64 times over; VmRSS shown beside it) < 2 GB at its
peak; post-dial answer p95 < 300 ms. Prints a table and one JSON line,
writes var/bench/voice.json, exits 1 on a miss; the run's var dir stays after a miss or with --keep.
The default ports stay clear of those the voice tests use (5080, 5091, 27000-28000, RTP from 38000).
Every process the run started (the server, its workers and Kamailio, sipp) is stopped at the end.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import csv
import hashlib
import io
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from measures import BENCH_DIR, machine, percentile

# isort: split
# httpx only after measures: it needs the standard library's `http`, which bench/http.py would shadow
import httpx
from routing_sse import cpu_seconds, free_port, patientline

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "voice"))
from sip import AUDIO_PCAP, keys, pause, scenario, speech  # the voice tests' sipp callers

# name: (comparison, threshold, unit)
TARGETS: dict[str, tuple[str, float, str]] = {
    "failed_calls": ("==", 0, "calls"),
    "plateau_cpu_percent": ("<", 60, "% of the machine"),
    "peak_pss_mb": ("<", 2048, "MB"),
    "answer_p95_ms": ("<", 300, "ms"),
}
PASSWORD = "Demo-8585-2026"  # the demo's users (supervisor1)
AGENT_PREFIX = "voicebench"
SPEECH_MS = 7200  # the speech pcap lasts 7.05 s
NUMBER = "8585"
SPARE_WORKERS = 4
SAMPLE_S = 1.0
SPEECH_LEVEL = 300.0  # RMS: the pcap's speech after G.711 is in the thousands, silence below 50
IDLE_S = 5.0  # the line's CPU with the agents ready and no call, over this long
REGISTER_AGAIN_S = 50.0
now = time.perf_counter


def say(line: str) -> None:
    """Progress, on stderr: stdout is the figures'."""
    print(line, file=sys.stderr, flush=True)


# ---- sipp scenarios -------------------------------------------------------------------------------

# The agents' phones: answer at once, speak (the speech pcap again every 7.1 s) until the BYE.
AGENT_PHONES = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="agents">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]A[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]A[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=- 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
]]></send>
  <recv request="ACK" crlf="true"/>
  <label id="speak"/>
  <nop><action><exec play_pcap_audio="{speech}"/></action></nop>
  <recv request="BYE" timeout="7100" ontimeout="speak"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

]]></send>
  <pause milliseconds="2000"/>
</scenario>
"""


def caller_scenario(*, ivr_ms: int, talk_s: float) -> str:
    """Key 0 during the greeting, `ivr_ms` for the rest of the IVR, the queue and the agent's phone, then
    speech for `talk_s` seconds and BYE."""
    talk_ms, steps = round(talk_s * 1000), ""
    while talk_ms > 0:
        steps += speech(min(SPEECH_MS, talk_ms))
        talk_ms -= SPEECH_MS
    return scenario(pause(1000) + keys("0") + pause(ivr_ms) + steps)


@dataclass(frozen=True)
class Ports:
    """The run's UDP ports: the SIP front at the base, the workers just above it, then sipp's."""

    base: int
    workers: int

    @property
    def front(self) -> int:
        return self.base

    @property
    def first_worker(self) -> int:
        return self.base + 1

    @property
    def callers(self) -> tuple[int, int]:  # SIP, media (sipp also binds media + 2)
        return self.base + 200, self.base + 202

    @property
    def agents(self) -> tuple[int, int]:
        return self.base + 210, self.base + 212

    @property
    def warm_up(self) -> tuple[int, int]:
        return self.base + 220, self.base + 222

    @property
    def register(self) -> int:
        return self.base + 230

    @property
    def rtp(self) -> int:  # the workers' media ports, 8 each (PATIENTLINE_VOICE_RTP_PORT)
        return self.base + 1000


def sipp(directory: Path, name: str, xml: str, ports: tuple[int, int], *, front: int | None, calls: int = 0,
         limit: int = 0, rate: float = 0, timeout_s: int = 0) -> subprocess.Popen[bytes]:  # fmt: skip
    """sipp with scenario `xml` in `directory`: a UAC to the front (`front`), or a UAS (front None)."""
    path = directory / f"{name}.xml"
    path.write_text(xml)
    command = ["sipp", "-sf", str(path), "-i", "127.0.0.1", "-p", str(ports[0]), "-mp", str(ports[1]), "-nostdin",
               "-trace_err", "-error_file", str(directory / f"{name}-errors.log"), "-trace_stat", "-fd", "1",
               "-stf", str(directory / f"{name}-stats.csv")]  # fmt: skip
    if front is not None:
        command += ["-s", NUMBER, f"127.0.0.1:{front}", "-m", str(calls), "-l", str(limit), "-r", f"{rate:g}",
                    "-rp", "1000", "-timeout", str(timeout_s), "-timeout_error", "-trace_rtt",
                    "-rtt_freq", "1"]  # fmt: skip
    with (directory / f"{name}.out").open("wb") as out:
        return subprocess.Popen(command, cwd=directory, stdout=out, stderr=subprocess.STDOUT)


def sipp_counts(directory: Path, name: str) -> dict[str, int]:
    """The last line of sipp's statistics file: calls successful and failed, in all."""
    path = directory / f"{name}-stats.csv"
    if not path.exists():
        return {}
    rows = list(csv.reader(path.read_text().splitlines(), delimiter=";"))
    if len(rows) < 2:
        return {}
    last = dict(zip(rows[0], rows[-1], strict=False))
    wanted = {"successful": "SuccessfulCall(C)", "failed": "FailedCall(C)", "created": "TotalCallCreated"}
    return {key: int(last[column]) for key, column in wanted.items() if last.get(column, "").isdigit()}


def answer_times(directory: Path) -> list[float]:
    """Seconds from each call's INVITE to its 200 OK, from sipp's -trace_rtt files (ms)."""
    times: list[float] = []
    for path in directory.glob("callers_*_rtt.csv"):
        for row in csv.reader(path.read_text().splitlines(), delimiter=";"):
            with contextlib.suppress(IndexError, ValueError):
                times.append(float(row[1]) / 1000)
    return sorted(times)


# ---- the agents -----------------------------------------------------------------------------------


async def add_agents(var_dir: Path, count: int, password: str) -> list[str]:
    """`count` agents, tier-1 members of the demo's general queue, besides its members already there."""
    from sqlalchemy import select

    from patientline.core.auth.service import create_user
    from patientline.core.config import Settings
    from patientline.core.db import Database
    from patientline.directory import models as directory_models  # noqa: F401 - tables the queue refers to
    from patientline.routing import service as routing
    from patientline.routing.demo import ADMIN
    from patientline.routing.models import RoutingQueue
    from patientline.routing.schemas import MemberIn
    from patientline.voice import phones

    settings = Settings(var_dir=var_dir, database_url="")
    db = Database(settings.effective_database_url)
    names = [f"{AGENT_PREFIX}{n:02d}" for n in range(1, count + 1)]
    try:
        async with db.sessions() as session, session.begin():
            queue_id = await session.scalar(select(RoutingQueue.id).where(RoutingQueue.code == "GENERAL"))
            if queue_id is None:
                raise RuntimeError("the demo has no GENERAL queue")
            members = [MemberIn(user_id=m["user_id"], tier=m["tier"])
                       for m in await routing.list_members(session, queue_id=queue_id)]  # fmt: skip
            for name in names:
                user = await create_user(session, actor=ADMIN, settings=settings, username=name,
                                         display_name=f"Bench {name[-2:]}", password=password, roles=["agent"],
                                         must_change_password=False)  # fmt: skip
                await phones.set_password(session, settings, ADMIN, user.id, password)  # the desk phone's too
                members.append(MemberIn(user_id=user.id, tier=1))
            await routing.set_members(session, actor=ADMIN, queue_id=queue_id, members=members)
    finally:
        await db.dispose()
    return names


def register_phones(names: list[str], password: str, ports: Ports, contact_port: int, *, within: float = 10.0) -> None:
    """Registers each agent's AOR at the SIP front with its desk-phone password (answering the digest
    challenge), Contact: the agents' sipp UAS."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", ports.register))
        sock.settimeout(0.2)
        pending = {f"{secrets.token_hex(8)}@bench": name for name in names}
        for call_id, name in pending.items():
            sock.sendto(register_request(name, call_id, 1, ports, contact_port), ("127.0.0.1", ports.front))
        deadline = now() + within
        while pending and now() < deadline:
            try:
                reply = sock.recv(65536).decode(errors="replace")
            except TimeoutError:
                continue
            status, headers = sip_reply(reply)
            call_id = headers.get("call-id", headers.get("i", ""))
            if call_id not in pending or status.startswith("SIP/2.0 1"):
                continue
            name = pending[call_id]
            if status.startswith("SIP/2.0 200"):
                del pending[call_id]
            elif status.startswith("SIP/2.0 401") and headers.get("cseq", "").startswith("1 "):
                answer = digest_answer(
                    name, password, headers.get("www-authenticate", ""), f"sip:127.0.0.1:{ports.front}"
                )
                sock.sendto(register_request(name, call_id, 2, ports, contact_port, answer), ("127.0.0.1", ports.front))
            else:
                raise RuntimeError(f"REGISTER of {name} refused: {status}")
        if pending:
            raise RuntimeError(f"{len(pending)} REGISTERs not answered, e.g. {next(iter(pending.values()))}")


def phones_registered(names: list[str], password: str, ports: Ports) -> bool:
    """Whether every phone registered (the registrar learns the passwords just after the line starts)."""
    try:
        register_phones(names, password, ports, ports.agents[0])
    except RuntimeError as refused:
        say(f"  {refused}; again")
        return False
    return True


def register_request(
    name: str, call_id: str, cseq: int, ports: Ports, contact_port: int, authorization: str = ""
) -> bytes:
    return (
        f"REGISTER sip:127.0.0.1:{ports.front} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{ports.register};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:{name}@127.0.0.1:{ports.front}>;tag={secrets.token_hex(4)}\r\n"
        f"To: <sip:{name}@127.0.0.1:{ports.front}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
        + (f"Authorization: {authorization}\r\n" if authorization else "")
        + f"Contact: <sip:{name}@127.0.0.1:{contact_port}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def sip_reply(reply: str) -> tuple[str, dict[str, str]]:
    """A reply's status line and its headers by lower-case name."""
    status, *lines = reply.split("\r\n\r\n", 1)[0].split("\r\n")
    return status, {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}


def digest_answer(user: str, password: str, challenge: str, uri: str) -> str:
    """The Authorization header answering a `Digest realm=…, nonce=…` challenge (RFC 2617, MD5, no qop)."""
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
    realm, nonce = fields["realm"], fields["nonce"]
    response = md5_hex(f"{md5_hex(f'{user}:{realm}:{password}')}:{nonce}:{md5_hex(f'REGISTER:{uri}')}")
    return (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", response="{response}", '
            'algorithm=MD5')  # fmt: skip


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


@contextmanager
def client(base: str, username: str, password: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=30) as http:
        answer = http.post("/api/auth/login", json={"username": username, "password": password})
        if answer.status_code != 200:
            raise RuntimeError(f"login {username}: {answer.status_code} {answer.text[:200]}")
        http.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
        yield http


def make_ready(http: httpx.Client) -> None:
    for path in ("/api/routing/me/login", "/api/routing/me/ready"):
        answer = http.post(path)
        if answer.status_code != 200:
            raise RuntimeError(f"{path}: {answer.status_code} {answer.text[:200]}")


# ---- the server and its processes -----------------------------------------------------------------


def prepare(var_dir: Path, ports: Ports) -> dict[str, str]:
    """The server's environment, its database migrated and seeded with the demo hospital."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATIENTLINE_")}
    env |= {"PATIENTLINE_VAR_DIR": str(var_dir), "PATIENTLINE_LOG_LEVEL": "WARNING", "PATIENTLINE_VOICE": "1",
            "PATIENTLINE_VOICE_WORKERS": str(ports.workers), "PATIENTLINE_VOICE_SIP_PORT": str(ports.front),
            "PATIENTLINE_VOICE_WORKER_PORT": str(ports.first_worker), "PATIENTLINE_VOICE_RTP_PORT": str(ports.rtp),
            "PATIENTLINE_VOICE_AUTO_ANSWER": "1", "PATIENTLINE_VOICE_SELF_TEST_MINUTES": "0"}  # fmt: skip
    for command in ("migrate", "seed-demo"):
        began = now()
        patientline(command, env=env, cwd=var_dir)
        say(f"  {command}: {now() - began:.1f} s")
    return env


def children_of() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    return children


def tree(root: int) -> list[int]:
    """`root` and every process below it (the media workers, Kamailio and its children)."""
    children, out, todo = children_of(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def memory_kb(pid: int, field_name: str, path: str = "status") -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
            if line.startswith(f"{field_name}:"):
                return int(line.split()[1])
    return 0


def kind(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "gone"
    if "patientline.voice.worker" in command:
        return "worker"
    if "kamailio" in command:
        return "kamailio"
    return "server" if "patientline" in command else "other"


def busy_seconds() -> float:
    """CPU time the whole machine has spent busy since it booted (every CPU, every process)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            out[pid] = cpu_seconds(pid)
    return out


@dataclass
class Sample:
    at: float
    talking: int
    live: int
    tree_cpu: dict[int, float]
    sipp_cpu: float
    machine_busy: float
    kinds: dict[int, str]
    rss_kb: dict[str, int]  # by kind
    pss_kb: int
    processes: int


def sample(server: int, sipps: list[int], talking: int, live: int, *, pss: bool) -> Sample:
    pids = tree(server)
    kinds = {pid: kind(pid) for pid in pids}
    rss: dict[str, int] = {}
    for pid in pids:
        rss[kinds[pid]] = rss.get(kinds[pid], 0) + memory_kb(pid, "VmRSS")
    pss_kb = sum(memory_kb(pid, "Pss", "smaps_rollup") for pid in pids) if pss else 0
    sipp_cpu = sum(tree_cpu(sipps).values())
    return Sample(now(), talking, live, tree_cpu(pids), sipp_cpu, busy_seconds(), kinds, rss, pss_kb, len(pids))


@contextmanager
def server(env: dict[str, str], var_dir: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """`patientline serve` with the voice role; afterwards every process it started is gone (the workers
    and Kamailio run in sessions of their own, so a server that had to be killed would leave them)."""
    with (var_dir / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "patientline"), "serve", "--port", str(port), "--roles",
             "web,worker,router"], env=env, cwd=var_dir, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    started: set[int] = set()
    try:
        yield process
    finally:
        started = set(tree(process.pid)) - {process.pid}
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        for pid in sorted(started):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def wait_until(what: str, check: Any, within: float, every: float = 0.2) -> None:
    deadline = now() + within
    while now() < deadline:
        with contextlib.suppress(httpx.HTTPError, OSError):
            if check():
                return
        time.sleep(every)
    raise RuntimeError(f"{what}: not within {within:.0f} s")


def sip_front_answers(port: int) -> bool:
    """Kamailio answers an OPTIONS to itself with 200."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.5)
        mine = sock.getsockname()[1]
        sock.sendto((f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{mine};branch=z9hG4bK"
                     f"{secrets.token_hex(6)}\r\nMax-Forwards: 70\r\nFrom: <sip:bench@127.0.0.1>;tag=1\r\n"
                     f"To: <sip:127.0.0.1:{port}>\r\nCall-ID: {secrets.token_hex(6)}@bench\r\nCSeq: 1 OPTIONS\r\n"
                     "Content-Length: 0\r\n\r\n").encode(), ("127.0.0.1", port))  # fmt: skip
        try:
            return sock.recv(4096).startswith(b"SIP/2.0 200")
        except TimeoutError:
            return False


def live_calls(http: httpx.Client) -> list[dict[str, Any]]:
    answer = http.get("/api/voice/live")
    answer.raise_for_status()
    return list(answer.json())


def last_call_id(http: httpx.Client) -> int:
    calls = http.get("/api/voice/calls", params={"limit": 1}).json()
    return int(calls[0]["id"]) if calls else 0


# ---- the run --------------------------------------------------------------------------------------


def run(args: argparse.Namespace, var_dir: Path) -> dict[str, Any]:
    ports = Ports(args.port_base, args.calls + SPARE_WORKERS)
    sipp_dir = var_dir / "sipp"
    sipp_dir.mkdir()
    env = prepare(var_dir, ports)
    password = f"Vb-{secrets.token_urlsafe(10)}-7"
    began = now()
    names = asyncio.run(add_agents(var_dir, args.calls, password))
    say(f"  {len(names)} agents added to the general queue: {now() - began:.1f} s")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    phones: subprocess.Popen[bytes] | None = None
    callers: subprocess.Popen[bytes] | None = None
    with server(env, var_dir, port) as process:
        try:
            began = now()
            wait_until("/healthz", lambda: httpx.get(f"{base}/healthz", timeout=2).status_code == 200, 90)
            wait_until("the SIP front", lambda: sip_front_answers(ports.front), 30)
            sockets = var_dir / "voice" / "run"
            wait_until("the media workers", lambda: len(list(sockets.glob("worker-*.sock"))) >= ports.workers, 60)
            last_worker = ports.first_worker + ports.workers - 1
            say(
                f"  serve: pid {process.pid}, port {port}, SIP front {ports.front}, {ports.workers} media workers "
                f"({ports.first_worker}-{last_worker}): up in {now() - began:.1f} s"
            )
            phones = sipp(sipp_dir, "agents", AGENT_PHONES.format(speech=AUDIO_PCAP), ports.agents, front=None)
            time.sleep(0.5)
            wait_until("the agents' phones registered", lambda: phones_registered(names, password, ports), 30, 1.0)
            with client(base, "supervisor1", PASSWORD) as supervisor:
                warm_up(sipp_dir, ports, supervisor)
                before = last_call_id(supervisor)
                with contextlib.ExitStack() as sessions:
                    for name in names:
                        make_ready(sessions.enter_context(client(base, name, password)))
                    say(f"  {len(names)} agents logged in and ready; {args.calls} calls at {args.rate:g}/s, "
                        f"{args.talk_seconds:g} s of talk each")  # fmt: skip
                    time.sleep(2.0)
                    idle = (sample(process.pid, [phones.pid], 0, 0, pss=True),)
                    time.sleep(IDLE_S)
                    idle += (sample(process.pid, [phones.pid], 0, 0, pss=False),)
                    register_phones(names, password, ports, ports.agents[0])  # the front keeps them 120 s at most
                    xml = caller_scenario(ivr_ms=args.ivr_seconds * 1000, talk_s=args.talk_seconds)
                    timeout_s = round(args.calls / args.rate + args.ivr_seconds + args.talk_seconds + 90)
                    callers = sipp(sipp_dir, "callers", xml, ports.callers, front=ports.front, calls=args.calls,
                                   limit=args.calls, rate=args.rate, timeout_s=timeout_s)  # fmt: skip
                    samples = watch(process.pid, [phones.pid, callers.pid], callers, supervisor, timeout_s + 30,
                                    lambda: register_phones(names, password, ports, ports.agents[0]))  # fmt: skip
                    callers_exit = callers.returncode
                    wait_until("the calls' records", lambda: not live_calls(supervisor), 30, every=0.5)
                    records = [c for c in supervisor.get("/api/voice/calls", params={"limit": 500}).json()
                               if c["id"] > before]  # fmt: skip
                    for record in records:
                        record["talk_level"] = talk_level(supervisor, record)
        finally:
            stop(callers)
            stop(phones)
    figures = {"calls": args.calls, "rate_per_s": args.rate, "talk_s": args.talk_seconds, "workers": ports.workers,
               "sipp_exit": callers_exit, **sipp_counts(sipp_dir, "callers")}  # fmt: skip
    figures |= answers(sipp_dir) | calls_seen(records, args) | usage(idle, samples)
    figures["failed_calls"] = max(args.calls - figures.get("successful", 0), figures["bad_records"])
    return figures


def warm_up(sipp_dir: Path, ports: Ports, supervisor: httpx.Client) -> None:
    """One call into the general queue while nobody is ready, hanging up there: the prompts are made once."""
    began = now()
    xml = scenario(pause(1000) + keys("0") + pause(22000))
    warm = sipp(sipp_dir, "warm-up", xml, ports.warm_up, front=ports.front, calls=1, limit=1, rate=1, timeout_s=60)
    try:
        code = warm.wait(timeout=90)
    finally:
        stop(warm)
    wait_until("the warm-up call's record", lambda: not live_calls(supervisor), 30, every=0.5)
    call = supervisor.get("/api/voice/calls", params={"limit": 1}).json()
    path = call[0]["ivr"].get("path") if call else None
    say(f"  warm-up call: sipp exit {code}, IVR path {path}, {now() - began:.1f} s")
    if code != 0 or not call or call[0].get("outcome") != "queue":
        raise RuntimeError(f"the warm-up call did not reach the queue (sipp exit {code}; record {call[:1]})")


def watch(server: int, sipps: list[int], callers: subprocess.Popen[bytes], supervisor: httpx.Client,
          within: float, register: Callable[[], None]) -> list[Sample]:  # fmt: skip
    """A sample a second until the callers' sipp ends; the phones registered again now and then."""
    samples: list[Sample] = []
    deadline, most, registered = now() + within, 0, now()
    while callers.poll() is None and now() < deadline:
        began = now()
        if began - registered > REGISTER_AGAIN_S:
            register()
            registered = began
        try:
            live = live_calls(supervisor)
        except httpx.HTTPError:
            live = []
        talking = sum(call["stage"] == "talking" for call in live)
        samples.append(sample(server, sipps, talking, len(live), pss=talking >= most))
        if talking > most:
            most = talking
            say(f"  {talking} calls talking ({len(live)} on the line)")
        time.sleep(max(0.0, SAMPLE_S - (now() - began)))
    if callers.poll() is None:
        raise RuntimeError("the callers' sipp did not finish in time")
    return samples


def answers(sipp_dir: Path) -> dict[str, Any]:
    times = answer_times(sipp_dir)
    marks = (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))
    return {"answers_timed": len(times),
            **{f"answer_{mark}_ms": round(percentile(times, p) * 1000, 1) for mark, p in marks}}  # fmt: skip


def calls_seen(records: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """What the call log says: each call queued, connected to an agent, recorded, ended by the caller."""
    good = [c for c in records if c.get("outcome") == "queue" and c.get("connected_at") and c.get("agent_id")
            and (c.get("recording_seconds") or 0) > 0 and c.get("end_reason") == "caller_hung_up"
            and c["talk_level"] > SPEECH_LEVEL]  # fmt: skip
    reasons: dict[str, int] = {}
    for call in records:
        reasons[str(call.get("end_reason"))] = reasons.get(str(call.get("end_reason")), 0) + 1
    recorded = sorted(float(c.get("recording_seconds") or 0) for c in records)
    waits = sorted(_seconds_between(c.get("queued_at"), c.get("connected_at")) for c in good)
    return {
        "records": len(records),
        "records_good": len(good),
        "bad_records": args.calls - len(good),
        "agents_used": len({c["agent_id"] for c in good}),
        "end_reasons": reasons,
        "recordings_with_speech": sum(c["talk_level"] > SPEECH_LEVEL for c in records),
        "recording_min_s": recorded[0] if recorded else 0.0,
        "recording_max_s": recorded[-1] if recorded else 0.0,
        "queue_to_connected_p50_ms": round(percentile(waits, 50) * 1000),
        "queue_to_connected_p95_ms": round(percentile(waits, 95) * 1000),
    }


def talk_level(http: httpx.Client, record: dict[str, Any]) -> float:
    """The RMS level of the recording's last 10 s before the hang-up (the conversation), from the API."""
    if not record.get("recording_seconds"):
        return 0.0
    answer = http.get(f"/api/voice/calls/{record['id']}/recording")
    if answer.status_code != 200:
        return 0.0
    with wave.open(io.BytesIO(answer.content)) as recording:
        rate, frames = recording.getframerate(), recording.getnframes()
        recording.setpos(max(0, frames - 11 * rate))
        data = recording.readframes(10 * rate)
    samples = array.array("h", data[: len(data) // 2 * 2])
    return math.sqrt(sum(x * x for x in samples) / len(samples)) if samples else 0.0


def _seconds_between(start: str | None, end: str | None) -> float:
    from datetime import datetime

    if not start or not end:
        return math.nan
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def usage(idle_window: tuple[Sample, ...], samples: list[Sample]) -> dict[str, Any]:
    """CPU with no call and over the plateau (the longest run of samples with the most calls talking), in %
    of the machine's CPUs, in all and by kind of process; memory before the calls and at its peak."""
    idle = idle_window[0]
    most = max((s.talking for s in samples), default=0)
    runs: list[list[Sample]] = [[]]
    for s in samples:
        if s.talking == most:
            runs[-1].append(s)
        elif runs[-1]:
            runs.append([])
    plateau = max(runs, key=len)
    figures: dict[str, Any] = {
        "talking_max": most,
        "idle_rss_mb": round(sum(idle.rss_kb.values()) / 1024, 1),
        "idle_pss_mb": round(idle.pss_kb / 1024, 1),
        "processes": idle.processes,
        **spent("idle", idle, idle_window[-1]),
    }
    peak = max(samples, key=lambda s: sum(s.rss_kb.values()), default=idle)
    figures |= {"peak_rss_mb": round(sum(peak.rss_kb.values()) / 1024, 1),
                "peak_pss_mb": round(max((s.pss_kb for s in samples), default=0) / 1024, 1),
                **{f"peak_rss_{k}_mb": round(v / 1024, 1) for k, v in sorted(peak.rss_kb.items())}}  # fmt: skip
    if len(plateau) < 2:
        return figures | {"plateau_s": 0.0, "plateau_cpu_percent": math.nan, "plateau_machine_percent": math.nan,
                          "plateau_sipp_percent": math.nan}  # fmt: skip
    return figures | {
        "plateau_s": round(plateau[-1].at - plateau[0].at, 1),
        **spent("plateau", plateau[0], plateau[-1]),
    }


def spent(name: str, first: Sample, last: Sample) -> dict[str, float]:
    """CPU used between two samples in % of the machine's CPUs: the server tree, by kind, sipp, the machine."""
    share = 100 / ((last.at - first.at) * (os.cpu_count() or 1))
    by_kind: dict[str, float] = {}
    for pid, cpu in last.tree_cpu.items():
        kind_of = last.kinds.get(pid, "other")
        by_kind[kind_of] = by_kind.get(kind_of, 0.0) + cpu - first.tree_cpu.get(pid, 0.0)
    return {
        f"{name}_cpu_percent": round(sum(by_kind.values()) * share, 1),
        **{f"{name}_cpu_{k}_percent": round(v * share, 1) for k, v in sorted(by_kind.items())},
        f"{name}_sipp_percent": round((last.sipp_cpu - first.sipp_cpu) * share, 1),
        f"{name}_machine_percent": round((last.machine_busy - first.machine_busy) * share, 1),
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """The whole run, its own server and database; the figures, with the targets `missed`."""
    var_dir = BENCH_DIR / f"voice-{os.getpid()}-{int(time.time())}"
    var_dir.mkdir(parents=True)
    say(f"voice benchmark: var dir {var_dir}")
    failed = True
    try:
        figures = run(args, var_dir)
        figures |= {"machine": machine(), "cpus": os.cpu_count(), "missed": missed(figures)}
        failed = bool(figures["missed"])
        return figures
    finally:
        if args.keep or failed:
            say(f"  the run's var dir (serve.log, voice/, sipp/) stays: {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)


# ---- the report -----------------------------------------------------------------------------------


def missed(figures: dict[str, Any]) -> list[str]:
    out = []
    for name, (op, threshold, unit) in TARGETS.items():
        value = float(figures[name])
        ok = {"<": value < threshold, "==": value == threshold}[op]  # nan is never met
        if not ok:
            out.append(f"{name} {value:g}, target {op} {threshold:g} {unit}".rstrip())
    return out


def verdict(figures: dict[str, Any], name: str) -> str:
    op, threshold, unit = TARGETS[name]
    failed = any(miss.startswith(f"{name} ") for miss in figures["missed"])
    return f"target {op} {threshold:g} {unit}".rstrip() + ("  MISSED" if failed else "  ok")


def show(figures: dict[str, Any]) -> None:
    f = figures
    kinds = _by_kind(f, "plateau")
    rss = ", ".join(f"{k.removeprefix('peak_rss_').removesuffix('_mb')} {v}"
                    for k, v in f.items() if k.startswith("peak_rss_") and k != "peak_rss_mb")  # fmt: skip
    rows = [
        ("calls placed / completed by sipp", f"{f['calls']} at {f['rate_per_s']:g}/s / {f.get('successful', 0)} "
         f"(failed {f.get('failed', '?')}, sipp exit {f['sipp_exit']})", ""),
        ("call log: connected, recorded, caller hung up", f"{f['records_good']} of {f['records']} records "
         f"({', '.join(f'{k} x{n}' for k, n in f['end_reasons'].items())}); {f['agents_used']} agents", ""),
        ("failed calls", f"{f['failed_calls']}", verdict(f, "failed_calls")),
        ("most calls talking at once", f"{f['talking_max']} (plateau {f['plateau_s']} s)", ""),
        ("CPU on the plateau: server tree", f"{f['plateau_cpu_percent']} % of {f['cpus']} CPUs ({kinds})",
         verdict(f, "plateau_cpu_percent")),
        ("CPU on the plateau: sipp / whole machine", f"{f['plateau_sipp_percent']} / {f['plateau_machine_percent']} "
         f"% of {f['cpus']} CPUs (anything else: {_others(f)} %)", ""),
        ("CPU of the server tree, no call", f"{f['idle_cpu_percent']} % of {f['cpus']} CPUs ({_by_kind(f, 'idle')})",
         ""),
        ("memory: sum of PSS at peak", f"{f['peak_pss_mb']} MB (VmRSS {f['peak_rss_mb']} MB: {rss})",
         verdict(f, "peak_pss_mb")),
        ("memory before the calls", f"{f['idle_rss_mb']} MB RSS, {f['idle_pss_mb']} MB PSS, {f['processes']} "
         "processes", ""),
        ("post-dial answer p50 / p95 / p99 / max", f"{f['answer_p50_ms']} / {f['answer_p95_ms']} / "
         f"{f['answer_p99_ms']} / {f['answer_max_ms']} ms ({f['answers_timed']} calls)", verdict(f, "answer_p95_ms")),
        ("queued to connected p50 / p95", f"{f['queue_to_connected_p50_ms']} / {f['queue_to_connected_p95_ms']} ms",
         ""),
        ("recordings: speech in the last 10 s / length min, max", f"{f['recordings_with_speech']} / "
         f"{f['recording_min_s']}, {f['recording_max_s']} s", ""),
    ]  # fmt: skip
    width = max(len(label) for label, _, _ in rows)
    print(f"voice benchmark: {f['machine']}")
    for label, value, target in rows:
        print(f"  {label:<{width}}  {value}  {target}".rstrip())
    for miss in f["missed"]:
        print(f"MISSED {miss}")


def _by_kind(figures: dict[str, Any], name: str) -> str:
    prefix = f"{name}_cpu_"
    return ", ".join(f"{k.removeprefix(prefix).removesuffix('_percent')} {v}" for k, v in figures.items()
                     if k.startswith(prefix) and k != f"{prefix}percent")  # fmt: skip


def _others(figures: dict[str, Any]) -> float:
    f = figures
    return round(f["plateau_machine_percent"] - f["plateau_cpu_percent"] - f["plateau_sipp_percent"], 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=60, help="conversations at once (and agents)")
    parser.add_argument("--rate", type=float, default=10.0, help="new calls a second while they are placed")
    parser.add_argument("--talk-seconds", type=float, default=35.0, help="how long each caller talks to the agent")
    parser.add_argument("--ivr-seconds", type=int, default=17,
                        help="from the key to the talk: the rest of the IVR, the queue, the agent's phone")  # fmt: skip
    parser.add_argument("--port-base", type=int, default=33000,
                        help="the SIP front; workers above it, sipp at +200..+232, the workers' RTP from +1000 "
                        "(keep off 5080, 5091, 27000-28000 and the tests' RTP ports)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the run's var dir (serve.log, sipp's files)")
    args = parser.parse_args(argv)
    if not 1 <= args.calls <= 190 or args.rate <= 0 or args.talk_seconds < 5 or not 1024 < args.port_base < 59000:
        parser.error("1 <= calls <= 190, a positive rate, talk >= 5 s, a port base in 1025-58999")
    missing = [tool for tool in ("sipp", "sox", "espeak-ng") if shutil.which(tool) is None]
    if missing or (not Path("/usr/sbin/kamailio").exists() and shutil.which("kamailio") is None):
        raise SystemExit(f"missing tools: {missing or ['kamailio']} (make voice-setup)")
    figures = measure(args)
    show(figures)
    print(json.dumps(figures, ensure_ascii=False))
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    (BENCH_DIR / "voice.json").write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n")
    return 1 if figures["missed"] else 0


if __name__ == "__main__":
    sys.exit(main())
