"""The router after a restart: a new engine over the same database finds agents as they were, active
tasks with their agents, waiting ones in their order, and a ringing offer back in the queue (offered
again, not counted as missed, never to two agents). A write that fails leaves nothing half-applied.
On PostgreSQL a second node stands by and takes over when the leader goes."""

from __future__ import annotations

from typing import Any

import pytest
from rt_engine_base import (
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
from sqlalchemy import func, select

from helpers import Client
from patientline.core.db import Database
from patientline.routing import store
from patientline.routing.engine import Engine, RouterUnavailable
from patientline.routing.models import AgentState, RoutingTask


async def restart(app: Any) -> Engine:
    """Stops the app's router and starts a new one over the same database, as after a crash."""
    state = app.state.pl
    await state.routing.stop()
    state.routing = await Engine(state.db, settings=state.settings, bus=state.bus).start()
    return engine_of(app)


async def rows(app: Any) -> dict[int, RoutingTask]:
    async with app.state.pl.db.sessions() as session:
        return {row.id: row for row in await session.scalars(select(RoutingTask))}


async def test_a_new_router_carries_on_where_the_last_one_stopped(app: Any, admin: Client, as_user: Any) -> None:
    queue = await make_queue(admin)
    async with agents(as_user, "agent01", "agent02", "agent03") as (busy, ringing, paused):
        ids = [await user_id(client) for client in (busy, ringing, paused)]
        await set_members(admin, queue["id"], dict.fromkeys(ids, 1))
        await ready(busy)
        active = await submit(admin, queue["id"], caller={"name": "李先生"}, subject="复诊")
        await ok(await busy.post(f"/api/routing/tasks/{active['id']}/accept"))
        await ready(ringing)
        offered = await submit(admin, queue["id"])
        assert offered["agent_id"] == ids[1]
        await ok(await paused.post("/api/routing/me/login"))
        await ok(await paused.post("/api/routing/me/not-ready", json={"reason": "meal"}))
        waiting = [await submit(admin, queue["id"]) for _ in range(3)]
        await ok(await admin.post(f"/api/routing/tasks/{waiting[2]['id']}/priority", json={"priority": 5}))
        before = await ok(await admin.get(f"/api/routing/queues/{queue['id']}/waiting"))

        recorder = record_events(app)
        await restart(app)

        assert [t["id"] for t in await ok(await admin.get(f"/api/routing/queues/{queue['id']}/waiting"))] == [
            t["id"] for t in before
        ]
        mine = await me(busy)
        assert mine["status"] == "busy" and [t["id"] for t in mine["tasks"]] == [active["id"]]
        assert mine["tasks"][0]["caller"]["name"] == "李先生" and mine["handled_today"] == 1
        again = await me(ringing)
        assert again["offer"]["task_id"] == offered["id"] and again["missed_offers"] == 0
        assert [e.payload["task_id"] for e in recorder.of("routing.offer")] == [offered["id"]]
        resting = await me(paused)
        assert (resting["status"], resting["reason"]) == ("not_ready", "meal")
        states = {row.id: (row.state, row.agent_id) for row in (await rows(app)).values()}
        assert [s for s in states.values() if s[0] == "offered"] == [("offered", ids[1])]

        await ok(await busy.post(f"/api/routing/tasks/{active['id']}/complete"))
        assert (await me(busy))["offer"]["task_id"] == before[0]["id"]  # the best waiting task comes next


async def test_agents_logged_out_stay_out_and_a_forced_logout_keeps_the_call(
    app: Any, admin: Client, as_user: Any
) -> None:
    queue = await make_queue(admin)
    async with agents(as_user, "agent01", "agent02", "boss", roles=("supervisor",)) as (gone, forced, boss):
        gone_id, forced_id = await user_id(gone), await user_id(forced)
        await set_members(admin, queue["id"], {gone_id: 1, forced_id: 1})
        await ready(gone)
        await ok(await gone.post("/api/routing/me/logout"))
        await ready(forced)
        call = await submit(admin, queue["id"])
        await ok(await forced.post(f"/api/routing/tasks/{call['id']}/accept"))
        await ok(await boss.post(f"/api/routing/agents/{forced_id}/logout"))

        await restart(app)
        assert (await me(gone))["status"] == "offline"
        kept = await me(forced)
        assert kept["status"] == "busy" and [t["id"] for t in kept["tasks"]] == [call["id"]]
        await ok(await forced.post(f"/api/routing/tasks/{call['id']}/complete"))
        assert (await me(forced))["status"] == "offline"
        async with app.state.pl.db.sessions() as session:
            presence = await session.scalar(select(AgentState.presence).where(AgentState.user_id == forced_id))
        assert presence == "offline"


async def test_a_failed_write_leaves_the_router_as_the_database_says(
    app: Any, admin: Client, as_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = await make_queue(admin)
    async with agents(as_user, "agent01") as (agent,):
        await set_members(admin, queue["id"], {await user_id(agent): 1})
        await ok(await agent.post("/api/routing/me/login"))
        task = await submit(admin, queue["id"])

        write_tasks, failures = store.write_tasks, []

        async def fails_once(*args: Any) -> Any:
            if not failures:
                failures.append(True)
                raise RuntimeError("the database went away")
            return await write_tasks(*args)

        with monkeypatch.context() as patch:
            patch.setattr(store, "write_tasks", fails_once)
            with pytest.raises(RuntimeError):  # a server error (the test transport raises it)
                await agent.post("/api/routing/me/ready")
        engine = engine_of(app)
        assert engine.core is not None
        assert (await me(agent))["status"] == "not_ready"  # the ready that was not written is not there
        assert (await rows(app))[task["id"]].state == "waiting"
        assert (await ok(await agent.post("/api/routing/me/ready")))["offer"]["task_id"] == task["id"]


async def test_a_standby_router_answers_unavailable_and_takes_over(app: Any, admin: Client, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite runs one process: its router always leads")
    queue = await make_queue(admin)
    waiting = [await submit(admin, queue["id"]) for _ in range(2)]
    node_settings = app.state.pl.settings
    other_node = Database(node_settings.effective_database_url)
    standby = await Engine(other_node, settings=node_settings).start()
    try:
        assert not standby.leading
        with pytest.raises(RouterUnavailable):
            await standby.login(1)
        await app.state.pl.routing.stop()
        await standby.try_to_lead()
        assert standby.leading
        assert [t["id"] for t in standby.waiting(queue["id"])] == [t["id"] for t in waiting]
        async with other_node.sessions() as session:
            live = await session.scalar(select(func.count()).where(RoutingTask.state == "waiting"))
        assert live == 2
    finally:
        await standby.stop()
        await other_node.dispose()
