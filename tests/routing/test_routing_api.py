"""The routing API end to end: an agent's day (log in, ready, an offer rings, accept, complete, wrap-up,
ready again), offers that time out, supervisors' forced steps, moves and priorities, closed queues and
VIP callers, and the errors: validation, unknown ids, refused steps, permissions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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

from helpers import Client, assert_error
from patientline.core import clock
from patientline.routing.models import QueueLogEntry, RoutingTask


async def test_an_agent_takes_a_call_from_offer_to_wrap_up(app: Any, admin: Client, as_user: Any) -> None:
    engine, recorder = engine_of(app), record_events(app)
    queue = await make_queue(admin, wrap_up="mandatory", wrap_up_s=30)
    async with agents(as_user, "agent01") as (agent,):
        agent_id = await user_id(agent)
        await set_members(admin, queue["id"], {agent_id: 1})
        bar = await ok(await agent.post("/api/routing/me/login"))
        assert bar["status"] == "not_ready" and bar["reason"] == "other"
        assert [q["queue_id"] for q in bar["queues"]] == [queue["id"]]
        assert (await ok(await agent.post("/api/routing/me/ready")))["status"] == "ready"

        task = await submit(admin, queue["id"], caller={"name": "王女士", "phone": "13812345678"}, subject="挂号")
        assert task["state"] == "offered" and task["agent_id"] == agent_id
        offer = await recorder.wait_for("routing.offer", task_id=task["id"])
        assert offer.audience.user_id == agent_id
        assert offer.payload["caller"] == {"name": "王女士", "phone_masked": "138****5678", "patient_id": None}
        assert offer.payload["queue_name"] == "综合咨询"
        ringing = await me(agent)
        assert ringing["status"] == "offered" and ringing["offer"]["task_id"] == task["id"]

        accepted = await ok(await agent.post(f"/api/routing/tasks/{task['id']}/accept"))
        assert accepted["state"] == "active"
        busy = await me(agent)
        assert busy["status"] == "busy" and [t["id"] for t in busy["tasks"]] == [task["id"]]
        assert busy["tasks"][0]["wrap_up"] == "mandatory"  # the bar offers "with wrap-up" only for on_request
        assert busy["handled_today"] == 1

        await advance(engine, 95)
        done = await ok(await agent.post(f"/api/routing/tasks/{task['id']}/complete", json={}))
        assert done["state"] == "done" and done["ended_at"]
        wrapping = await me(agent)
        assert wrapping["status"] == "wrap_up" and wrapping["wrap_up_until"]
        await advance(engine, 30)
        assert (await me(agent))["status"] == "ready"

    statuses = [e.payload["status"] for e in recorder.of("routing.agent") if e.audience.user_id == agent_id]
    assert statuses == ["not_ready", "ready", "offered", "busy", "wrap_up", "ready"]
    figures = await recorder.wait_for("routing.queue", id=queue["id"])
    assert figures.audience.permission == "centre:supervise"


async def test_an_offer_nobody_answers_goes_to_the_next_agent_and_two_misses_pause_the_agent(
    app: Any, admin: Client, as_user: Any
) -> None:
    engine, recorder = engine_of(app), record_events(app)
    queue = await make_queue(admin)
    async with agents(as_user, "agent01", "agent02") as (first, second):
        first_id, second_id = await user_id(first), await user_id(second)
        await set_members(admin, queue["id"], {first_id: 1, second_id: 1})
        await ready(first)
        await advance(engine, 1)
        await ready(second)
        task = await submit(admin, queue["id"])
        assert task["agent_id"] == first_id  # idle the longest

        await advance(engine, 14)
        assert (await me(first))["status"] == "offered"
        await advance(engine, 1)
        ended = await recorder.wait_for("routing.offer_ended", task_id=task["id"])
        assert ended.payload["reason"] == "timeout" and ended.audience.user_id == first_id
        assert (await me(second))["offer"]["task_id"] == task["id"]
        assert (await me(first))["missed_offers"] == 1

        await ok(await second.post(f"/api/routing/tasks/{task['id']}/decline"))
        assert (await me(first))["offer"]["task_id"] == task["id"]  # the only one left who may take it
        await advance(engine, 15)
        paused = await me(first)
        assert (paused["status"], paused["reason"]) == ("not_ready", "missed_offers")
        assert (await me(second))["offer"]["task_id"] == task["id"]


async def test_supervisors_force_agents_and_move_and_reorder_tasks(app: Any, admin: Client, as_user: Any) -> None:
    async with agents(as_user, "agent01", "boss", roles=("supervisor",)) as (agent, boss):
        agent_id, boss_id = await user_id(agent), await user_id(boss)
        general, expert = await make_queue(admin), await make_queue(admin, code="EXPERT", name="专家中心")
        await set_members(admin, general["id"], {agent_id: 1})
        await ok(await agent.post("/api/routing/me/login"))

        forced = await ok(await boss.post(f"/api/routing/agents/{agent_id}/ready"))
        assert forced["status"] == "ready"
        forced = await ok(await boss.post(f"/api/routing/agents/{agent_id}/not-ready"))
        assert (forced["status"], forced["reason"]) == ("not_ready", "supervisor")

        first = await submit(admin, general["id"])
        second = await submit(admin, general["id"])
        third = await submit(admin, general["id"])
        waiting = await ok(await boss.get(f"/api/routing/queues/{general['id']}/waiting"))
        assert [t["id"] for t in waiting] == [first["id"], second["id"], third["id"]]
        assert [t["position"] for t in waiting] == [1, 2, 3]

        raised = await ok(await boss.post(f"/api/routing/tasks/{third['id']}/priority", json={"priority": 10}))
        assert raised["priority"] == 10 and raised["position"] == 1
        moved = await ok(await boss.post(f"/api/routing/tasks/{second['id']}/move", json={"queue_id": expert["id"]}))
        assert moved["queue_id"] == expert["id"]
        waiting = await ok(await boss.get(f"/api/routing/queues/{general['id']}/waiting"))
        assert [t["id"] for t in waiting] == [third["id"], first["id"]]

        live = await ok(await boss.get("/api/routing/live"))
        by_code = {q["code"]: q for q in live["queues"]}
        assert by_code["GENERAL"]["waiting"] == 2 and by_code["EXPERT"]["waiting"] == 1
        assert by_code["GENERAL"]["agents"]["not_ready"] == 1
        assert by_code["GENERAL"]["today"]["entered"] == 3
        assert [(a["user_id"], a["status"]) for a in live["agents"]] == [(agent_id, "not_ready")]

        await ok(await boss.post(f"/api/routing/agents/{agent_id}/ready"))
        assert (await me(agent))["offer"]["task_id"] == third["id"]
        gone = await ok(await boss.post(f"/api/routing/agents/{agent_id}/logout"))
        assert gone["status"] == "offline"
        assert (await me(agent))["status"] == "offline"
        waiting = await ok(await boss.get(f"/api/routing/queues/{general['id']}/waiting"))
        assert [t["id"] for t in waiting] == [third["id"], first["id"]]  # the ringing offer went back

        audit = await ok(await admin.get("/api/audit", params={"action": "routing."}))
        actions = {(row["action"], row["actor_name"]) for row in audit}
        assert ("routing.agent.not_ready", "boss") in actions and ("routing.task.move", "boss") in actions

    async with app.state.pl.db.sessions() as session:
        forced_lines = list(await session.scalars(select(QueueLogEntry).where(QueueLogEntry.by_id == boss_id)))
    assert {line.event for line in forced_lines} >= {"unpause", "pause", "logout", "transfer"}


async def test_agents_cannot_act_for_others_nor_supervise(app: Any, admin: Client, as_user: Any) -> None:
    queue = await make_queue(admin)
    async with agents(as_user, "agent01", "agent02") as (first, second), as_user("dept", ["handler"]) as handler:
        first_id, second_id = await user_id(first), await user_id(second)
        await set_members(admin, queue["id"], {first_id: 1})
        await ready(first)
        task = await submit(admin, queue["id"])

        assert_error(await second.post(f"/api/routing/tasks/{task['id']}/accept"), 404)  # not logged in
        await ok(await second.post("/api/routing/me/login"))
        refused = assert_error(await second.post(f"/api/routing/tasks/{task['id']}/accept"), 409, "routing_refused")
        assert refused["details"] == {"code": "not_offered"}
        await ok(await first.post(f"/api/routing/tasks/{task['id']}/accept"))
        refused = assert_error(await second.post(f"/api/routing/tasks/{task['id']}/complete"), 409)
        assert refused["details"] == {"code": "not_yours"}
        refused = assert_error(await first.post("/api/routing/me/logout"), 409)
        assert refused["details"] == {"code": "busy"}
        refused = assert_error(await admin.post(f"/api/routing/tasks/{task['id']}/keep-place"), 409)
        assert refused["details"] == {"code": "not_waiting"}
        assert not (await me(first))["tasks"][0]["kept_place"]

        assert_error(await second.get("/api/routing/live"), 403, "permission_denied")
        assert_error(await second.post(f"/api/routing/agents/{first_id}/logout"), 403)
        assert_error(await second.post(f"/api/routing/tasks/{task['id']}/move", json={"queue_id": queue["id"]}), 403)
        assert_error(await second.post("/api/routing/queues", json={"code": "X", "name": "X"}), 403)
        assert_error(await handler.get("/api/routing/me"), 403)
        assert_error(await handler.post("/api/routing/tasks", json={"queue_id": queue["id"], "channel": "voice"}), 403)
        assert_error(await handler.post("/api/routing/me/ready"), 403)
        assert_error(await second.post(f"/api/routing/agents/{second_id}/ready"), 403)


async def test_bad_requests_answer_clearly_and_change_nothing(app: Any, admin: Client, as_user: Any) -> None:
    queue = await make_queue(admin)
    async with agents(as_user, "agent01") as (agent,):
        await set_members(admin, queue["id"], {await user_id(agent): 1})
        await ready(agent)
        assert_error(await agent.post("/api/routing/tasks/999999/accept"), 404)
        assert_error(await admin.post("/api/routing/tasks", json={"queue_id": 999999, "channel": "voice"}), 404)
        bad = assert_error(
            await admin.post("/api/routing/tasks", json={"queue_id": queue["id"], "channel": "Voice!"}), 422
        )
        assert [d["field"] for d in bad["details"]] == ["channel"]
        bad = assert_error(await admin.post("/api/routing/tasks", json={"queue_id": queue["id"], "channel": "voice",
                                                                       "caller": {"phone": "123"}}), 422)  # fmt: skip
        assert bad["details"][0]["field"] == "caller.phone"
        assert_error(await agent.post("/api/routing/me/not-ready", json={"reason": "missed_offers"}), 422)
        assert_error(await agent.post("/api/routing/me/not-ready", json={"reason": "nap"}), 422)
        task = await submit(admin, queue["id"])
        assert_error(await agent.post(f"/api/routing/tasks/{task['id']}/complete"), 409)  # ringing, not taken
        assert_error(await admin.post(f"/api/routing/tasks/{task['id']}/priority", json={"priority": 1000}), 422)
        assert_error(await admin.post(f"/api/routing/tasks/{task['id']}/move", json={"queue_id": 999999}), 404)
        assert (await me(agent))["offer"]["task_id"] == task["id"]


async def test_closed_queues_refuse_and_vip_callers_go_first(app: Any, admin: Client, as_user: Any) -> None:
    office = await make_queue(admin, code="OFFICE", name="预约", hours="08:00-12:00,13:30-17:30",
                              working_days_only=True, vip_priority=7)  # fmt: skip
    night = await make_queue(admin, code="NIGHT", name="夜间", hours="00:00-08:00")
    refused = assert_error(
        await admin.post("/api/routing/tasks", json={"queue_id": night["id"], "channel": "voice"}), 409
    )
    assert refused["error_id"] == "queue_closed" and refused["details"]["hours"] == "00:00-08:00"

    normal = await submit(admin, office["id"])
    vip = await submit(admin, office["id"], vip=True)
    assert vip["priority"] == 7 and vip["is_vip"] and vip["position"] == 1
    waiting = await ok(await admin.get(f"/api/routing/queues/{office['id']}/waiting"))
    assert [t["id"] for t in waiting] == [vip["id"], normal["id"]]

    clock.set_now(datetime(2026, 11, 28, 10, 0, tzinfo=SHANGHAI))  # a Saturday
    await admin.login("root")
    assert_error(await admin.post("/api/routing/tasks", json={"queue_id": office["id"], "channel": "voice"}), 409)
    clock.set_now(datetime(2026, 11, 23, 12, 30, tzinfo=SHANGHAI))  # Monday lunch
    await admin.login("root")
    assert_error(await admin.post("/api/routing/tasks", json={"queue_id": office["id"], "channel": "voice"}), 409)


async def test_channels_hand_in_abandon_keep_places_and_retry_safely(app: Any, admin: Client, as_user: Any) -> None:
    queue = await make_queue(admin)
    first = await submit(admin, queue["id"], external_ref="call-0001")
    again = await ok(await admin.post("/api/routing/tasks", json={"queue_id": queue["id"], "channel": "voice",
                                                                  "external_ref": "call-0001"}))  # fmt: skip
    assert again["id"] == first["id"]
    second = await submit(admin, queue["id"], external_ref="call-0002")

    kept = await ok(await admin.post(f"/api/routing/tasks/{first['id']}/keep-place"))
    assert (kept["channel"], kept["kept_place"], kept["position"]) == ("callback", True, 1)
    left = await ok(await admin.post(f"/api/routing/tasks/{second['id']}/abandon"))
    assert left["state"] == "abandoned"
    assert_error(await admin.post(f"/api/routing/tasks/{second['id']}/abandon"), 404)
    third = await submit(admin, queue["id"], external_ref="call-0002")  # the patient called again: a new task
    assert third["id"] != second["id"]

    async with app.state.pl.db.sessions() as session:
        rows = {row.id: row for row in (await session.scalars(select(RoutingTask))).all()}
    assert (rows[first["id"]].state, rows[first["id"]].channel, rows[first["id"]].kept_place) == (
        "waiting",
        "callback",
        True,
    )
    assert rows[second["id"]].state == "abandoned" and rows[second["id"]].ended_at is not None


async def test_an_agent_passes_a_call_on_and_chat_agents_take_several(app: Any, admin: Client, as_user: Any) -> None:
    general, expert = await make_queue(admin), await make_queue(admin, code="EXPERT", name="专家中心")
    async with agents(as_user, "agent01", "agent02") as (first, second):
        first_id, second_id = await user_id(first), await user_id(second)
        await set_members(admin, general["id"], {first_id: 1})
        await set_members(admin, expert["id"], {second_id: 1})
        await ok(
            await admin.put(f"/api/routing/agents/{first_id}/profile", json={"capacities": {"voice": 1, "chat": 2}})
        )
        await ready(first)
        await ready(second)
        call = await submit(admin, general["id"])
        await ok(await first.post(f"/api/routing/tasks/{call['id']}/accept"))
        passed = await ok(
            await first.post(f"/api/routing/tasks/{call['id']}/transfer", json={"queue_id": expert["id"]})
        )
        assert (passed["queue_id"], passed["agent_id"], passed["state"]) == (expert["id"], second_id, "offered")

        chats = [await submit(admin, general["id"], channel="chat") for _ in range(3)]
        await ok(await first.post(f"/api/routing/tasks/{chats[0]['id']}/accept"))
        await ok(await first.post(f"/api/routing/tasks/{chats[1]['id']}/accept"))
        busy = await me(first)
        assert busy["status"] == "busy" and len(busy["tasks"]) == 2 and busy["offer"] is None
        waiting = await ok(await admin.get(f"/api/routing/queues/{general['id']}/waiting"))
        assert [t["id"] for t in waiting] == [chats[2]["id"]]
