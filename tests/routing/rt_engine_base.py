"""Shared set-up for the routing adapter's tests: an app that runs the router role with the clock
standing still on a Monday morning, helpers for queues and members, and a recorder of the events the
router publishes. Test modules import the two fixtures (`settings`, `monday_morning`) from here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from helpers import Client
from patientline.core import clock
from patientline.core.config import Settings
from patientline.core.events import Published
from patientline.routing.engine import Engine

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY_MORNING = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def monday_morning() -> Iterator[None]:
    clock.set_now(MONDAY_MORNING)
    yield
    clock.set_now(None)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        var_dir=tmp_path / "var",
        roles="web,router",
        redis_url="",
        _env_file=None,
    )  # type: ignore[call-arg]


def engine_of(app: Any) -> Engine:
    routing: Engine = app.state.pl.routing
    assert routing is not None and routing.leading
    return routing


class Recorder:
    """Every event the bus carries, in order."""

    def __init__(self) -> None:
        self.items: list[Published] = []

    def __call__(self, item: Published) -> None:
        self.items.append(item)

    def of(self, type_: str, **payload: Any) -> list[Published]:
        return [i for i in self.items if i.type == type_ and all(i.payload.get(k) == v for k, v in payload.items())]

    async def wait_for(self, type_: str, **payload: Any) -> Published:
        """The first such event; events go out just after the commit, so give them a moment."""
        for _ in range(200):
            found = self.of(type_, **payload)
            if found:
                return found[0]
            await asyncio.sleep(0.005)
        raise AssertionError(f"no {type_} {payload} among {[(i.type, i.payload) for i in self.items]}")


def record_events(app: Any) -> Recorder:
    """A recorder of what the app's bus carries from now on (for as long as the app lives)."""
    record = Recorder()
    app.state.pl.bus.subscribe(record)
    return record


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


QUEUE = {"code": "GENERAL", "name": "综合咨询", "wrap_up": "none", "wrap_up_s": 0}


async def make_queue(admin: Client, **fields: Any) -> dict[str, Any]:
    created: dict[str, Any] = await ok(await admin.post("/api/routing/queues", json=QUEUE | fields), 201)
    return created


async def set_members(admin: Client, queue_id: int, tiers: dict[int, int]) -> None:
    members = [{"user_id": user_id, "tier": tier} for user_id, tier in tiers.items()]
    await ok(await admin.put(f"/api/routing/queues/{queue_id}/members", json=members))


async def user_id(client: Client) -> int:
    return int((await ok(await client.get("/api/auth/me")))["id"])


async def submit(client: Client, queue_id: int, **fields: Any) -> dict[str, Any]:
    body = {"queue_id": queue_id, "channel": "voice"} | fields
    task: dict[str, Any] = await ok(await client.post("/api/routing/tasks", json=body), 201)
    return task


async def me(client: Client) -> dict[str, Any]:
    body: dict[str, Any] = await ok(await client.get("/api/routing/me"))
    return body


async def ready(client: Client) -> dict[str, Any]:
    await ok(await client.post("/api/routing/me/login"))
    body: dict[str, Any] = await ok(await client.post("/api/routing/me/ready"))
    return body


async def advance(engine: Engine, seconds: float) -> None:
    """Moves the clock and lets the router act on what fell due."""
    clock.advance(timedelta(seconds=seconds))
    await engine.tick()


@asynccontextmanager
async def agents(as_user: Any, *names: str, roles: tuple[str, ...] = ("agent",)) -> AsyncIterator[list[Client]]:
    """Logged-in clients for new users, in the order named."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(as_user(name, list(roles))) for name in names]
