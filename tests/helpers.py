"""Shared test helpers (plain module: conftest.py files hold fixtures only)."""

from __future__ import annotations

import io
import math
import struct
import wave
from dataclasses import dataclass
from typing import Any

import httpx

PASSWORD = "Correct-Horse-42"


@dataclass
class Client:
    """An httpx client that logs in and sends the CSRF header like the browser does."""

    http: httpx.AsyncClient
    csrf: str = ""

    async def login(self, username: str, password: str = PASSWORD) -> httpx.Response:
        response = await self.http.post("/api/auth/login", json={"username": username, "password": password})
        if response.status_code == 200:
            self.csrf = response.json()["csrf_token"]
            self.http.headers["X-CSRF-Token"] = self.csrf
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self.http, name)


def assert_error(response: httpx.Response, status: int, error_id: str | None = None) -> dict[str, Any]:
    """Every failure answers the same shape."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error_id", "message", "details"}, body
    assert body["message"]
    if error_id:
        assert body["error_id"] == error_id, body
    return body


def sine_wav(seconds: float, *, hertz: int = 700, rate: int = 16000, channels: int = 2) -> bytes:
    """A sine as a studio might send a recording: 16 kHz stereo, not the telephone's rate."""
    frames = b"".join(
        struct.pack("<h", int(9000 * math.sin(2 * math.pi * hertz * n / rate))) * channels
        for n in range(int(seconds * rate))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(frames)
    return out.getvalue()
