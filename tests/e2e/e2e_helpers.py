"""What the browser journeys share: logged-in API clients and pages for the admin, agent accounts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from playwright.sync_api import Page

OpenPage = Callable[..., Page]
Server = Any  # tests/e2e/conftest.py: Server

SESSION_COOKIE = "pl_session"
ADMIN_PASSWORD = "Chosen-Pass-77x"


@contextmanager
def api_login(server: Server, username: str, password: str) -> Iterator[httpx.Client]:
    """An API client logged in as `username`, sending the CSRF header like the browser does."""
    with server.api() as http:
        response = http.post("/api/auth/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        http.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield http


def ensure_admin(server: Server) -> None:
    """The admin has replaced the initial password (in the browser, by the first test)."""
    if server.state.get("admin_ready"):
        return
    with api_login(server, server.admin, server.admin_initial_password) as http:
        changed = http.post(
            "/api/auth/password",
            json={"current_password": server.admin_initial_password, "new_password": ADMIN_PASSWORD},
        )
        assert changed.status_code == 204, changed.text
    server.state["admin_ready"] = True


def ensure_user(
    server: Server,
    admin_api: httpx.Client,
    username: str,
    password: str,
    *,
    change_password: bool = True,
    roles: tuple[str, ...] = ("agent",),
) -> None:
    """An agent account, with their own password already chosen unless `change_password` is false."""
    if server.state.get(f"user:{username}"):
        return
    initial = password if not change_password else "Temporary-Pass-90"
    created = admin_api.post(
        "/api/users",
        json={"username": username, "display_name": username.title(), "password": initial, "roles": list(roles)},
    )
    assert created.status_code == 201, created.text
    if change_password:
        with api_login(server, username, initial) as http:
            changed = http.post("/api/auth/password", json={"current_password": initial, "new_password": password})
            assert changed.status_code == 204, changed.text
    server.state[f"user:{username}"] = True
