"""The engine with the clock: waits that pass their maximum overflow or expire, wrap-up on request,
today's counts reset at the hospital's midnight, the queue log written line by line, and the
wallboard's figures (at most once a second per queue) with their alerts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from rt_engine_base import (
    SHANGHAI,
    advance,
    agents,
    engine_of,
    make_queue,
    me,
    monday_morning,  # noqa: F401 - fixture
    ok,
    ready,
    record_events,
    set_members,
    settings,  # noqa: F401 - fixture
    submit,
    user_id,
)
from sqlalchemy import select

from helpers import Client
from patientline.core import clock
from patientline.routing.models import AgentState, QueueLogEntry, RoutingTask


async def table(app: Any, model: Any) -> list[Any]:
    async with app.state.pl.db.sessions() as session:
        return list(await session.scalars(select(model)))


async def test_a_task_waiting_too_long_overflows_then_expires(app: Any, admin: Client) -> None:
    engine = engine_of(app)
    expert = await make_queue(admin, code="EXPERT", name="专家中心", max_wait_s=60)
    general = await make_queue(admin, max_wait_s=30, overflow_queue_id=expert["id"])
    task = await submit(admin, general["id"])
    await advance(engine, 29)
    assert [t["id"] for t in engine.waiting(general["id"])] == [task["id"]]
    await advance(engine, 1)
    assert [t["id"] for t in engine.waiting(expert["id"])] == [task["id"]]
    row = next(r for r in await table(app, RoutingTask) if r.id == task["id"])
    assert (row.queue_id, row.state) == (expert["id"], "waiting")
    await advance(engine, 60)
    row = next(r for r in await table(app, RoutingTask) if r.id == task["id"])
    assert row.state == "expired" and row.ended_at == clock.now()
    events = [(line.event, line.queue_id, line.reason) for line in await table(app, QueueLogEntry)]
    assert events == [
        ("enter", general["id"], None),
        ("transfer", general["id"], "overflow"),
        ("enter", expert["id"], None),
        ("expire", expert["id"], None),
    ]


async def test_wrap_up_on_request_ends_early_and_counts_reset_at_midnight(
    app: Any, admin: Client, as_user: Any
) -> None:
    engine = engine_of(app)
    queue = await make_queue(admin, wrap_up="on_request", wrap_up_s=120)
    async with agents(as_user, "agent01") as (agent,):
        agent_id = await user_id(agent)
        await set_members(admin, queue["id"], {agent_id: 1})
        await ready(agent)
        first = await submit(admin, queue["id"])
        await ok(await agent.post(f"/api/routing/tasks/{first['id']}/accept"))
        await ok(await agent.post(f"/api/routing/tasks/{first['id']}/complete"))
        assert (await me(agent))["status"] == "ready"  # no wrap-up unless asked for
        second = await submit(admin, queue["id"])
        await ok(await agent.post(f"/api/routing/tasks/{second['id']}/accept"))
        await advance(engine, 60)
        await ok(await agent.post(f"/api/routing/tasks/{second['id']}/complete", json={"wrap_up": True}))
        wrapping = await me(agent)
        assert wrapping["status"] == "wrap_up" and wrapping["handled_today"] == 2
        await advance(engine, 20)
        assert (await ok(await agent.post("/api/routing/me/wrap-up/end")))["status"] == "ready"
        wrap_end = [line for line in await table(app, QueueLogEntry) if line.event == "wrap_end"]
        assert [line.duration_s for line in wrap_end] == [20.0]

        clock.set_now(datetime(2026, 11, 24, 0, 0, 1, tzinfo=SHANGHAI))
        await agent.login("agent01")
        await engine.tick()
        assert (await me(agent))["handled_today"] == 0
        states = {row.user_id: row for row in await table(app, AgentState)}
        assert states[agent_id].handled_today == 0 and states[agent_id].presence == "ready"


async def test_the_wallboard_figures_go_out_at_most_once_a_second_with_alerts(
    app: Any, admin: Client, as_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, recorder = engine_of(app), record_events(app)
    seconds = [1000.0]
    monkeypatch.setattr(clock, "monotonic", lambda: seconds[0])
    queue = await make_queue(admin, alert_waiting=2, max_wait_s=600)
    await engine.step()  # a new queue's figures go out once computed
    assert [e.payload["waiting"] for e in recorder.of("routing.queue", id=queue["id"])] == [0]

    seconds[0] += 1
    await submit(admin, queue["id"])
    await submit(admin, queue["id"])
    assert [e.payload["waiting"] for e in recorder.of("routing.queue", id=queue["id"])] == [0, 1]

    clock.advance(timedelta(seconds=301))
    seconds[0] += 1
    await engine.step()
    latest = await recorder.wait_for("routing.queue", id=queue["id"], waiting=2)
    assert latest.payload["alerts"] == ["waiting", "longest_wait"]
    assert latest.payload["longest_wait_s"] == 301.0 and latest.payload["today"]["entered"] == 2
    assert len(recorder.of("routing.queue")) == 3


async def test_the_service_level_alert_counts_from_ten_answers(app: Any, admin: Client, as_user: Any) -> None:
    engine = engine_of(app)
    queue = await make_queue(admin, sl_seconds=20, sl_target=0.8)
    async with agents(as_user, "agent01", "boss", roles=("supervisor",)) as (agent, boss):
        await set_members(admin, queue["id"], {await user_id(agent): 1})
        await ready(agent)
        for answered in range(10):
            task = await submit(admin, queue["id"])
            await ok(await agent.post("/api/routing/me/not-ready", json={"reason": "break"}))
            await advance(engine, 30 if answered < 3 else 5)  # three answered late
            await ok(await agent.post("/api/routing/me/ready"))
            await ok(await agent.post(f"/api/routing/tasks/{task['id']}/accept"))
            await ok(await agent.post(f"/api/routing/tasks/{task['id']}/complete"))
            figures = (await ok(await boss.get("/api/routing/live")))["queues"][0]
            assert ("service_level" in figures["alerts"]) == (answered == 9)
        assert figures["today"]["answered"] == 10 and figures["today"]["service_level"] == 0.7
