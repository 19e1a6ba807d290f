"""A running phone line for the real-SIP tests: the server's address, its var dir, the SIP front's port,
and the test's own ports for sipp callers and test phones."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sip import Phone, Sipp, tone, tone_level

PASSWORD = "Demo-8585-2026"
CALLER_HZ, AGENT_HZ = 300, 1100  # the tones the test phones play: far from the hold music's notes
TRUNK_PORT = 27190  # the outside world: a test phone here answers what the line sends to its trunk
SPEECH_LEVEL = 300.0  # RMS of the pcap's speech after G.711 is in the thousands; silence is below 50


@dataclass
class Line:
    base: str
    var: Path
    front_port: int
    ports: Iterator[int]

    @contextmanager
    def client(self, username: str) -> Iterator[httpx.Client]:
        with httpx.Client(base_url=self.base, timeout=60) as http:
            answer = http.post("/api/auth/login", json={"username": username, "password": PASSWORD})
            assert answer.status_code == 200, answer.text
            http.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
            yield http

    def caller(self) -> Sipp:
        return Sipp(self.var / "sipp", self.front_port, next(self.ports), next(self.ports))

    def phone(self, user: str) -> Phone:
        return Phone(user, next(self.ports), self.front_port, self.var, PASSWORD).start()

    def last_call(self, http: httpx.Client, *, after: int = 0) -> dict[str, Any]:
        for _ in range(50):
            calls = http.get("/api/voice/calls", params={"limit": 1}).json()
            if calls and calls[0]["id"] > after and calls[0]["ended_at"]:
                return dict(calls[0])
            time.sleep(0.2)
        raise AssertionError("no call record")

    def publish_flow(self, name: str, number: str, draft: dict[str, Any]) -> None:
        """A flow on another of the line's numbers, published by the administrator."""
        with self.client("admin") as admin:
            created = admin.post("/api/voice/flows", json={"name": name, "number": number, "draft": draft})
            assert created.status_code == 201, created.text
            published = admin.post(f"/api/voice/flows/{created.json()['id']}/publish", json={"version": 1})
            assert published.status_code == 201, published.text

    def last_id(self, http: httpx.Client) -> int:
        return int((http.get("/api/voice/calls", params={"limit": 1}).json() or [{"id": 0}])[0]["id"])


@dataclass
class Party:
    phone: Phone
    leg: str
    hertz: int

    def play(self, directory: Path) -> None:
        self.phone.send(cmd="play", leg=self.leg, files=[str(tone(directory, self.hertz))], loop=True)


@dataclass
class Call:
    line: Line
    live_id: str
    caller: Party
    agent: Party

    def heard(self, parties: list[Party], tag: str, seconds: float = 2.0) -> dict[int, dict[int, float]]:
        """What each party heard for `seconds`: {party's tone: {tone: level}} for every party's tone."""
        time.sleep(0.8)  # the bridge's new connections take effect asynchronously
        paths = {p.hertz: self.line.var / f"{tag}-{p.hertz}-{self.live_id}.wav" for p in parties}
        for party in parties:
            party.phone.send(cmd="record", name=paths[party.hertz].stem, file=str(paths[party.hertz]),
                             legs=[party.leg])  # fmt: skip
        time.sleep(seconds)
        for party in parties:
            party.phone.send(cmd="stop_record", name=paths[party.hertz].stem)
            party.phone.wait_for("recorded", 5, name=paths[party.hertz].stem)
        tones = [p.hertz for p in parties]
        return {p.hertz: {hz: tone_level(paths[p.hertz], hz) for hz in tones} for p in parties}


def ready(http: httpx.Client) -> None:
    """Logged in to routing and ready (after any wrap-up left by an earlier call)."""
    http.post("/api/routing/me/login")
    http.post("/api/routing/me/wrap-up/end")
    answer = http.post("/api/routing/me/ready")
    assert answer.status_code == 200, answer.text


def live_call(http: httpx.Client, stage: str = "talking") -> dict[str, Any]:
    for _ in range(100):
        calls = [c for c in http.get("/api/voice/live").json() if c["stage"] == stage]
        if calls:
            return dict(calls[0])
        time.sleep(0.2)
    raise AssertionError(f"no live call {stage}")


def call_in(line: Line, stack: ExitStack) -> Phone:
    """A test phone calls 8585 and keys 0 (general enquiries) ahead of the greeting; its leg is "out"."""
    caller_phone = stack.enter_context(started(line, "patient"))
    caller_phone.send(cmd="dial", leg="out", uri=f"sip:8585@127.0.0.1:{line.front_port}")
    caller_phone.wait_for("answered", 10, leg="out")
    caller_phone.send(cmd="send_dtmf", leg="out", digits="0")
    return caller_phone


def connect(line: Line, stack: ExitStack, agent_http: httpx.Client, agent_phone: Phone) -> Call:
    """A caller keys 0, the agent's phone answers; both play their tones."""
    caller = Party(call_in(line, stack), "out", CALLER_HZ)
    caller.play(line.var)
    incoming = agent_phone.wait_for("incoming", 90)
    agent = Party(agent_phone, str(incoming["leg"]), AGENT_HZ)
    agent_phone.wait_for("answered", 10, leg=agent.leg)
    agent.play(line.var)
    return Call(line, live_call(agent_http)["id"], caller, agent)


class started:
    """A test phone registered as `user` for the length of a `with`."""

    def __init__(self, line: Line, user: str, *, auto_answer: bool = True) -> None:
        self.phone = Phone(user, next(line.ports), line.front_port, line.var, PASSWORD)
        self.auto_answer = auto_answer

    def __enter__(self) -> Phone:
        return self.phone.start(auto_answer=self.auto_answer)

    def __exit__(self, *_: object) -> None:
        self.phone.stop()


def answered_outside(outside: Phone, hertz: int) -> tuple[dict[str, Any], Party]:
    """The outside world answers the call the line sends to its trunk."""
    incoming = outside.wait_for("incoming", 20)
    outside.send(cmd="answer", leg=incoming["leg"], code=200)
    outside.wait_for("answered", 10, leg=incoming["leg"])
    return incoming, Party(outside, str(incoming["leg"]), hertz)


def joined(phone: Phone, hertz: int, directory: Path) -> Party:
    incoming = phone.wait_for("incoming", 20)
    party = Party(phone, str(incoming["leg"]), hertz)
    phone.wait_for("answered", 10, leg=party.leg)
    party.play(directory)
    return party
