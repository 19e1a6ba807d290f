"""Shared test helpers (plain module: conftest.py files hold fixtures only)."""

from __future__ import annotations

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
