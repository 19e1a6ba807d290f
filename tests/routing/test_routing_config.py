"""Configuring routing: queues (checked field by field, versioned, audited, deleted only when unused),
members with tiers and agents' profiles; a saved change reaches the running router at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rt_engine_base import (
    QUEUE,
    advance,
    agents,
    engine_of,
    make_queue,
    me,
    monday_morning,  # noqa: F401 - fixture
    ok,
    ready,
    set_members,
    settings,  # noqa: F401 - fixture
    submit,
    user_id,
)

from helpers import Client, assert_error
from patientline.core import clock
from patientline.routing import metrics
from patientline.routing.demo import load_demo_routing
from patientline.routing.engine import Engine


def edited(queue: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A queue as read, sent back with some changes (and the version it was read at)."""
    return {key: value for key, value in queue.items() if key != "id"} | changes


def fields(body: dict[str, Any]) -> dict[str, str]:
    return {d["field"]: d["problem"] for d in body["details"]}


async def test_a_queue_is_created_read_changed_and_deleted_with_its_version(admin: Client) -> None:
    queue = await make_queue(admin, hours="08:00-12:00, 13:30-17:30", widen_after_s=[30, 90], sl_target=0.9)
    assert queue["hours"] == "08:00-12:00,13:30-17:30" and queue["version"] == 1
    assert await ok(await admin.get(f"/api/routing/queues/{queue['id']}")) == queue
    assert [q["code"] for q in await ok(await admin.get("/api/routing/queues"))] == ["GENERAL"]

    changed = await ok(
        await admin.put(
            f"/api/routing/queues/{queue['id']}", json=edited(queue, name="综合咨询热线", strategy="fewest_today")
        )
    )
    assert (changed["name"], changed["strategy"], changed["version"]) == ("综合咨询热线", "fewest_today", 2)
    stale = assert_error(await admin.put(f"/api/routing/queues/{queue['id']}", json=edited(queue)), 409)
    assert stale["error_id"] == "stale_version"

    audit = await ok(await admin.get("/api/audit", params={"action": "routing.queue"}))
    assert [row["action"] for row in audit][:2] == ["routing.queue.update", "routing.queue.create"]
    assert audit[0]["after"] == {"name": "综合咨询热线", "strategy": "fewest_today"}

    assert_error(await admin.delete(f"/api/routing/queues/{queue['id']}", params={"version": 1}), 409)
    await ok(await admin.delete(f"/api/routing/queues/{queue['id']}", params={"version": 2}), 204)
    assert_error(await admin.get(f"/api/routing/queues/{queue['id']}"), 404)


async def test_queue_settings_are_checked_field_by_field(admin: Client) -> None:
    other = await make_queue(admin, code="OTHER", name="其他")
    bad = assert_error(await admin.post("/api/routing/queues", json=QUEUE | {
        "hours": "8-12", "widen_after_s": [60, 30], "sl_target": 0, "wrap_up": "sometimes",
        "max_wait_s": 0, "strategy": "random"}), 422)  # fmt: skip
    assert set(fields(bad)) == {"hours", "widen_after_s", "sl_target", "wrap_up", "max_wait_s", "strategy"}
    bad = assert_error(await admin.post("/api/routing/queues", json=QUEUE | {"wrap_up": "mandatory", "wrap_up_s": 0}),
                       422)  # fmt: skip
    assert fields(bad) == {"wrap_up_s": "value_error"}
    bad = assert_error(await admin.post("/api/routing/queues", json=QUEUE | {"sl_target": 1.5, "colour": "red"}), 422)
    assert fields(bad) == {"sl_target": "less_than_equal", "colour": "extra_forbidden"}

    duplicate = assert_error(await admin.post("/api/routing/queues", json=QUEUE | {"code": "other"}), 409)
    assert duplicate["error_id"] == "duplicate_code"
    bad = assert_error(await admin.post("/api/routing/queues", json=QUEUE | {
        "overflow_queue_id": 999999, "strategy": "best_skill", "team_id": 999999, "skill": "NOPE"}), 422)  # fmt: skip
    assert fields(bad) == {"overflow_queue_id": "unknown_queue", "skill": "unknown_skill", "team_id": "unknown_team"}
    bad = assert_error(await admin.post("/api/routing/queues", json=QUEUE | {"strategy": "best_skill"}), 422)
    assert fields(bad) == {"skill": "missing"}
    bad = assert_error(await admin.post("/api/routing/queues", json=QUEUE | {"overflow_threshold": 5}), 422)
    assert fields(bad) == {"overflow_threshold": "no_overflow_queue"}

    queue = await make_queue(admin, overflow_queue_id=other["id"], overflow_threshold=5)
    back = QUEUE | {"code": "OTHER", "name": "其他", "overflow_queue_id": queue["id"], "version": other["version"]}
    bad = assert_error(await admin.put(f"/api/routing/queues/{other['id']}", json=back), 422)
    assert fields(bad) == {"overflow_queue_id": "cycle"}
    itself = QUEUE | {"overflow_queue_id": queue["id"], "version": queue["version"]}
    bad = assert_error(await admin.put(f"/api/routing/queues/{queue['id']}", json=itself), 422)
    assert fields(bad) == {"overflow_queue_id": "self"}
    target = assert_error(await admin.delete(f"/api/routing/queues/{other['id']}", params={"version": 1}), 409)
    assert target["error_id"] == "queue_is_overflow_target"
    assert_error(await admin.put("/api/routing/queues/999999", json=QUEUE | {"version": 1}), 404)


async def test_a_queue_that_handled_tasks_is_deactivated_not_deleted(admin: Client, as_user: Any) -> None:
    queue = await make_queue(admin)
    await submit(admin, queue["id"])
    busy = assert_error(await admin.delete(f"/api/routing/queues/{queue['id']}", params={"version": 1}), 409)
    assert busy["error_id"] == "queue_not_empty"
    closed = await ok(await admin.put(f"/api/routing/queues/{queue['id']}", json=QUEUE | {"is_active": False,
                                                                                          "version": 1}))  # fmt: skip
    assert closed["is_active"] is False
    refused = assert_error(await admin.post("/api/routing/tasks", json={"queue_id": queue["id"], "channel": "voice"}),
                           409)  # fmt: skip
    assert refused["error_id"] == "queue_closed"


async def test_members_and_profiles_are_checked_and_reach_the_running_router(
    app: Any, admin: Client, as_user: Any
) -> None:
    queue = await make_queue(admin, widen_after_s=[60])
    async with agents(as_user, "agent01", "agent02") as (first, second):
        first_id, second_id = await user_id(first), await user_id(second)
        bad = assert_error(await admin.put(f"/api/routing/queues/{queue['id']}/members", json=[
            {"user_id": first_id, "tier": 1}, {"user_id": first_id, "tier": 2}, {"user_id": 999999},
            {"user_id": second_id, "tier": 9}]), 422)  # fmt: skip
        assert fields(bad) == {"3.tier": "less_than_equal"}
        bad = assert_error(await admin.put(f"/api/routing/queues/{queue['id']}/members", json=[
            {"user_id": first_id, "tier": 1}, {"user_id": first_id, "tier": 2}, {"user_id": 999999}]), 422)  # fmt: skip
        assert fields(bad) == {"1.user_id": "duplicate", "2.user_id": "unknown_user"}
        assert_error(await admin.put("/api/routing/queues/999999/members", json=[]), 404)

        await ready(first)
        task = await submit(admin, queue["id"])
        assert task["state"] == "waiting"  # nobody is a member yet
        await set_members(admin, queue["id"], {first_id: 1, second_id: 2})
        assert (await me(first))["offer"]["task_id"] == task["id"]  # the running router knows at once
        members = await ok(await admin.get(f"/api/routing/queues/{queue['id']}/members"))
        assert [(m["user_id"], m["tier"]) for m in members] == [(first_id, 1), (second_id, 2)]

        profile = await ok(await admin.get(f"/api/routing/agents/{second_id}/profile"))
        assert profile["version"] is None and profile["capacities"] == {"voice": 1, "chat": 3, "callback": 1}
        assert [(q["queue_id"], q["tier"]) for q in profile["queues"]] == [(queue["id"], 2)]
        profile_url = f"/api/routing/agents/{second_id}/profile"
        saved = await ok(
            await admin.put(profile_url, json={"capacities": {"voice": 0, "chat": 5}, "extension": "8001"})
        )
        assert saved["version"] == 1 and saved["capacities"] == {"voice": 0, "chat": 5}
        missing = assert_error(await admin.put(profile_url, json={"capacities": {"chat": 4}}), 422)
        assert fields(missing) == {"version": "missing"}
        assert_error(await admin.put(profile_url, json={"capacities": {"chat": 4}, "version": 7}), 409)
        bad = assert_error(
            await admin.put(profile_url, json={"capacities": {"chat": 21, "Voice": 1}, "version": 1}), 422
        )
        assert set(fields(bad)) == {"capacities.chat", "capacities.Voice.[key]"}
        assert_error(await admin.put("/api/routing/agents/999999/profile", json={"capacities": {}}), 404)

        await ready(second)
        voice = await submit(admin, queue["id"])
        chat = await submit(admin, queue["id"], channel="chat")
        assert voice["state"] == "waiting"  # the second agent takes no calls, and tier 2 opens after 60 s
        assert chat["state"] == "waiting"
        await ok(await admin.put(f"/api/routing/queues/{queue['id']}", json=edited(queue, widen_after_s=[5])))
        await advance(engine_of(app), 4)
        assert (await me(second))["offer"] is None
        await advance(engine_of(app), 1)  # tier 2 opens after 5 s now
        assert (await me(second))["offer"]["task_id"] == chat["id"]

        profiles = await ok(await admin.get("/api/audit", params={"action": "routing.profile"}))
        assert profiles[0]["target_id"] == str(second_id)
        assert_error(await first.put(f"/api/routing/agents/{first_id}/profile", json={"capacities": {}}), 403)
        assert_error(await first.get(f"/api/routing/agents/{first_id}/profile"), 403)


async def test_the_demo_loads_queues_and_a_plausible_month_once(app: Any, admin: Client, make_user: Any) -> None:
    await ok(await admin.post("/api/directory/sites", json={"code": "MAIN", "name": "院本部"}), 201)
    for code in ("HOTLINE", "EXPERT", "INSURANCE"):
        await ok(await admin.post("/api/directory/teams", json={"code": code, "name": code}), 201)
    for code in ("GENERAL", "BOOKING", "COMPLAINT", "INSURANCE"):
        await ok(await admin.post("/api/directory/skills", json={"code": code, "name": code}), 201)
    for number in range(1, 13):
        await make_user(f"agent{number:02d}", ["agent"])
    await make_user("supervisor1", ["supervisor"])
    db = app.state.pl.db
    async with db.sessions() as session, session.begin():
        loaded = await load_demo_routing(session)
    assert loaded.startswith("6 routing queues")
    async with db.sessions() as session, session.begin():
        assert await load_demo_routing(session) == "routing already loaded"

    queues = {q["code"]: q for q in await ok(await admin.get("/api/routing/queues"))}
    assert queues["XNK-SEATS"]["overflow_queue_id"] == queues["GENERAL"]["id"]
    members = await ok(await admin.get(f"/api/routing/queues/{queues['COMPLAINT']['id']}/members"))
    assert sorted(m["tier"] for m in members) == [1, 1, 1, 2]
    async with db.sessions() as session:
        start = metrics.local_day_start(clock.today("Asia/Shanghai") - timedelta(days=7), "Asia/Shanghai")
        week = await metrics.load_entries(session, start, start + timedelta(days=7))
    general = queues["GENERAL"]
    figures = metrics.summarise(week, sl_seconds=20, short_abandon_s=5, queue_id=general["id"])
    assert figures.entered > 700 and 0.6 < (figures.service_level or 0) <= 1
    assert (figures.abandon_rate or 1) < 0.25 and 0.1 < (figures.occupancy or 0) < 0.9

    await engine_of(app).stop()
    app.state.pl.routing = await Engine(db, settings=app.state.pl.settings).start()
    live = await ok(await admin.get("/api/routing/live"))
    assert next(q for q in live["queues"] if q["code"] == "GENERAL")["today"]["entered"] > 0
    assert live["agents"] == []  # the history ends with everyone logged out
    task = await submit(admin, general["id"])  # new tasks are numbered after the history's
    assert task["id"] > max(line.task_id or 0 for line in week)
