"""Events: logged in the transaction, published after commit, streamed by SSE with replay, across
nodes through Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from helpers import PASSWORD
from patientline.core import events
from patientline.core.auth.permissions import Permission
from patientline.core.config import Settings
from patientline.web.app import create_app

REDIS_URL = os.environ.get("PATIENTLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def live_server(settings: Settings) -> AsyncIterator[tuple[str, Any]]:
    """The real app behind uvicorn on 127.0.0.1, in this event loop."""
    port = free_port()
    application = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", application
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def login(client: httpx.AsyncClient, username: str) -> None:
    response = await client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]


class Stream:
    """Reads SSE frames from a live server in the background."""

    def __init__(self, client: httpx.AsyncClient, **headers: str) -> None:
        self.client, self.headers = client, headers
        self.frames: list[dict[str, str]] = []
        self.opened = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Stream:
        self.task = asyncio.create_task(self._read())
        await asyncio.wait_for(self.opened.wait(), 5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def _read(self) -> None:
        async with self.client.stream("GET", "/api/events", headers=self.headers, timeout=None) as response:
            assert response.status_code == 200
            frame: dict[str, str] = {}
            async for line in response.aiter_lines():
                if line.startswith("retry:"):
                    self.opened.set()
                elif not line:
                    if "event" in frame:
                        self.frames.append(frame)
                    frame = {}
                elif not line.startswith(":"):
                    key, _, value = line.partition(": ")
                    frame[key] = value

    async def wait_for(self, count: int, within: float = 5.0) -> list[dict[str, str]]:
        for _ in range(int(within / 0.02)):
            if len(self.frames) >= count:
                return self.frames
            await asyncio.sleep(0.02)
        raise AssertionError(f"expected {count} frames, got {self.frames}")


async def create_skill(client: httpx.AsyncClient, code: str) -> dict[str, Any]:
    response = await client.post("/api/directory/skills", json={"code": code, "name": f"skill {code}"})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_events_are_logged_in_the_transaction_and_published_after_commit(app: Any, db: Any) -> None:
    seen: list[events.Published] = []
    unsubscribe = app.state.pl.bus.subscribe(seen.append)
    with contextlib.suppress(RuntimeError):
        async with db.sessions() as session, session.begin():
            events.record(session, events.Notification(title="rolled back"))
            raise RuntimeError("abort")
    async with db.sessions() as session, session.begin():
        events.record(session, events.Notification(title="kept"))
    await asyncio.sleep(0.05)
    unsubscribe()
    assert [p.payload["title"] for p in seen] == ["kept"]
    async with db.sessions() as session:
        logged = await events.replay(session, after_id=0)
    assert [p.payload["title"] for p in logged] == ["kept"]


async def test_sse_streams_what_the_user_may_see_and_replays_after_a_reconnect(
    settings: Settings, make_user: Any
) -> None:
    admin_id = await make_user("root", ["admin"])
    await make_user("agent", ["agent"])
    async with (
        live_server(settings) as (base, app),
        httpx.AsyncClient(base_url=base) as admin,
        httpx.AsyncClient(base_url=base) as agent,
    ):
        await login(admin, "root")
        await login(agent, "agent")
        async with Stream(agent) as agent_stream, Stream(admin) as admin_stream:
            await create_skill(admin, "A1")
            async with app.state.pl.db.sessions() as session, session.begin():
                events.record(
                    session,
                    events.Notification(
                        title="only for admins", audience=events.Audience(permission=Permission.MANAGE_USERS.value)
                    ),
                )
                events.record(
                    session, events.Notification(title="only for root", audience=events.Audience(user_id=admin_id))
                )
            admin_frames = await admin_stream.wait_for(3)
            agent_frames = await agent_stream.wait_for(1)
            await asyncio.sleep(0.2)
        assert [f["event"] for f in admin_frames] == ["directory.changed", "notification", "notification"]
        assert [f["event"] for f in agent_frames] == ["directory.changed"]
        last_id = agent_frames[0]["id"]

        await create_skill(admin, "A2")  # while the agent is away
        await create_skill(admin, "A3")
        async with Stream(agent, **{"Last-Event-ID": last_id}) as again:
            replayed = await again.wait_for(2)
        assert [f["event"] for f in replayed] == ["directory.changed", "directory.changed"]
        assert ['"A2"' in f["data"] or "A2" in f["data"] for f in replayed] == [True, False]


async def test_redis_carries_events_between_two_app_instances(settings: Settings, make_user: Any) -> None:
    redis = pytest.importorskip("redis.asyncio")
    probe = redis.from_url(REDIS_URL)
    try:
        await probe.ping()
    except Exception:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}")
    finally:
        await probe.aclose()
    await make_user("root", ["admin"])
    clustered = settings.model_copy(update={"redis_url": REDIS_URL})
    async with (
        live_server(clustered) as (node_a, _),
        live_server(clustered) as (node_b, _),
        httpx.AsyncClient(base_url=node_a) as writer,
        httpx.AsyncClient(base_url=node_b) as reader,
    ):
        await login(writer, "root")
        await login(reader, "root")
        assert (await reader.get("/api/directory/skills")).json() == []  # node B caches the empty list
        async with Stream(reader) as stream:
            await create_skill(writer, "R1")
            frames = await stream.wait_for(1)
        assert frames[0]["event"] == "directory.changed" and "R1" in frames[0]["data"]
        assert [s["code"] for s in (await reader.get("/api/directory/skills")).json()] == ["R1"]


async def test_the_stream_ends_when_its_user_logs_out(settings: Settings, make_user: Any) -> None:
    await make_user("agent", ["agent"])
    async with live_server(settings) as (base, _), httpx.AsyncClient(base_url=base) as agent:
        await login(agent, "agent")
        async with Stream(agent) as stream:
            await agent.post("/api/auth/logout")
            assert stream.task is not None
            await asyncio.wait_for(asyncio.shield(stream.task), 5)  # the server closed it
        assert (await agent.get("/api/events")).status_code == 401
