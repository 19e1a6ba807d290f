"""A running phone line for the real-SIP tests: the server's address, its var dir, the SIP front's port,
and the test's own ports for sipp callers and test phones."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sip import Phone, Sipp

PASSWORD = "Demo-8585-2026"
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
        return Phone(user, next(self.ports), self.front_port, self.var).start()

    def last_call(self, http: httpx.Client, *, after: int = 0) -> dict[str, Any]:
        for _ in range(50):
            calls = http.get("/api/voice/calls", params={"limit": 1}).json()
            if calls and calls[0]["id"] > after and calls[0]["ended_at"]:
                return dict(calls[0])
            time.sleep(0.2)
        raise AssertionError("no call record")

    def last_id(self, http: httpx.Client) -> int:
        return int((http.get("/api/voice/calls", params={"limit": 1}).json() or [{"id": 0}])[0]["id"])
