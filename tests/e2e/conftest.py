"""Browser journeys: the real server as a subprocess (its own temp var dir and SQLite database, or
`PATIENTLINE_E2E_DATABASE_URL`), driven by Playwright through Debian's Chromium.

Playwright's sync API refuses to run inside a running asyncio loop; pytest-asyncio only runs its
session loop for async tests and fixtures, and everything here is plain sync code, so the two meet
nowhere. Failing tests leave a full-page screenshot of every page they opened in test-results/."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_helpers import ADMIN_PASSWORD, SESSION_COOKIE, api_login, ensure_admin
from playwright.sync_api import Page, expect

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RESULTS = ROOT / "test-results"
LOCALE_COOKIE = "pl_lang"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    log: Path
    admin: str = "admin"
    admin_initial_password: str = "Initial-Pass-2024"
    #: what the journey has done so far, so that each test can also run alone (`-k`)
    state: dict[str, Any] = field(default_factory=dict)

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=15)


@pytest.fixture(scope="session", autouse=True)
def _server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[bytes], Server]]:
    """Runs `migrate`, `create-admin` and `serve` in the background, so that Chromium launches
    meanwhile; the `server` fixture waits until it answers."""
    var_dir = tmp_path_factory.mktemp("e2e-var")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATIENTLINE_")}
    env |= {
        "PATIENTLINE_VAR_DIR": str(var_dir),
        "PATIENTLINE_ROLES": "web,worker,router",
        "PATIENTLINE_DATABASE_URL": os.environ.get("PATIENTLINE_E2E_DATABASE_URL")
        or f"sqlite+aiosqlite:///{var_dir / 'patientline.db'}",
        "PATIENTLINE_LOG_LEVEL": "WARNING",
    }
    port = _free_port()
    server = Server(url=f"http://127.0.0.1:{port}", log=var_dir / "server.log")
    cli = shlex.quote(str(BIN / "patientline"))
    script = (
        f"{cli} migrate && {cli} create-admin {server.admin} --display-name Admin "
        f"--password {shlex.quote(server.admin_initial_password)} && exec {cli} serve --port {port}"
    )
    with server.log.open("wb") as out:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", script], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc, server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        text = server.log.read_text(errors="replace")
        if "Traceback" in text:
            print(f"\nthe server log ({server.log}) has tracebacks:\n{text[-5000:]}")


@pytest.fixture(scope="session")
def server(_server_process: tuple[subprocess.Popen[bytes], Server]) -> Server:
    """The running server, once /healthz answers (a bounded wait)."""
    proc, server = _server_process
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}:\n{server.log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"/healthz did not answer within 60 s:\n{server.log.read_text(errors='replace')}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium (never `playwright install`)."""
    return {**browser_type_launch_args, "executable_path": "/usr/bin/chromium", "headless": True, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any], server: Server) -> dict[str, Any]:
    return {
        **browser_context_args,
        "base_url": server.url,
        "viewport": {"width": 1366, "height": 768},
        "locale": "en-US",
    }


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item) -> Any:
    report = yield
    item.stash.setdefault(_FAILED, False)
    if report.failed:
        item.stash[_FAILED] = True
    return report


_FAILED = pytest.StashKey[bool]()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:150]


@pytest.fixture
def open_page(
    browser: Any, browser_context_args: dict[str, Any], request: pytest.FixtureRequest
) -> Iterator[Callable[..., Any]]:
    """`open_page("admin", cookies=[...])`: a page in a fresh browser context (cookies of its own) with
    English texts, since the zh_CN catalogue changes under us. Nothing is loaded yet. Every page opened
    is screenshotted to test-results/ if the test fails."""
    opened: list[tuple[str, Any, Any]] = []

    def open_(label: str = "page", cookies: list[dict[str, Any]] | None = None) -> Any:
        context = browser.new_context(**browser_context_args)
        context.set_default_timeout(10_000)
        url = browser_context_args["base_url"]
        context.add_cookies(
            [{"name": LOCALE_COOKIE, "value": "en", "url": url}, *({**c, "url": url} for c in cookies or [])]
        )
        page = context.new_page()
        opened.append((label, context, page))
        return page

    yield open_
    failed = request.node.stash.get(_FAILED, False)
    for label, context, page in opened:
        if failed:
            RESULTS.mkdir(exist_ok=True)
            path = RESULTS / f"{_slug(request.node.nodeid)}-{label}.png"
            try:
                page.screenshot(path=str(path), full_page=True)
                print(f"screenshot: {path} ({page.url})")
            except Exception as exc:  # a closed page must not hide the real failure
                print(f"no screenshot of {label}: {exc}")
        context.close()


@pytest.fixture(scope="module")
def admin_api(server: Server) -> Iterator[httpx.Client]:
    """One admin session for the module: the API client, and its cookie for admin pages."""
    ensure_admin(server)
    with api_login(server, server.admin, ADMIN_PASSWORD) as http:
        yield http


@pytest.fixture
def admin(open_page: Callable[..., Page], admin_api: httpx.Client) -> Page:
    """A page logged in as the admin (the shared session: never log out from it)."""
    page = open_page("admin", cookies=[{"name": SESSION_COOKIE, "value": admin_api.cookies[SESSION_COOKIE]}])
    page.goto("/")
    expect(page.locator(".topbar .who")).to_have_text("Admin")
    return page
