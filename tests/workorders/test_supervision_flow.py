"""Deadlines and supervision through the API and the worker's sweep: due soon, breach, escalation
levels raised once, pauses and extensions moving deadlines, a calendar change recomputing them,
callbacks with their retry policy, evidence, reminders."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from wo_base import Centre, complaint_body, create_order, local, ok, step, travel

from helpers import Client, assert_error
from patientline.core import clock, jobs
from patientline.core.events import EventLogEntry
from patientline.workorders import scheduled
from patientline.workorders.models import Alert

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201a5f4e5d40000000049454e44ae426082"
)


async def sweep(db: Any) -> int:
    async with db.sessions() as session, session.begin():
        return await scheduled.sweep(session)


async def notifications(db: Any) -> list[dict[str, Any]]:
    async with db.sessions() as session:
        rows = await session.scalars(select(EventLogEntry).where(EventLogEntry.type == "notification"))
        return [row.payload | {"audience": row.audience} for row in rows]


async def test_due_soon_breach_and_escalation_are_raised_once(
    centre: Centre, agent: Client, supervisor: Client, db: Any
) -> None:
    clock.set_now(local(2026, 11, 23, 9, 0))
    order = await create_order(agent, complaint_body(centre))
    assert order["reply_due_at"].startswith("2026-11-24T01:00")  # 09:00 next day, in UTC
    await travel(local(2026, 11, 24, 4, 30), agent01=agent, super1=supervisor)  # past 80 % of the 24 hours
    assert await sweep(db) == 1
    assert await sweep(db) == 0
    titles = [n["title"] for n in await notifications(db)]
    assert titles.count("A work order is due soon") == 1
    await travel(local(2026, 11, 24, 9, 30), agent01=agent, super1=supervisor)  # the reply deadline has passed
    await sweep(db)
    await sweep(db)
    detail = await ok(await agent.get(f"/api/workorders/{order['id']}"))
    assert detail["escalation_level"] == 1
    titles = [n["title"] for n in await notifications(db)]
    assert titles.count("A work order is overdue") == 2  # the department and the supervisors
    assert titles.count("A work order was escalated") == 1
    await travel(local(2026, 11, 27, 9, 30), agent01=agent, super1=supervisor)  # 72 h after the breach: level 3
    await sweep(db)
    detail = await ok(await agent.get(f"/api/workorders/{order['id']}"))
    assert detail["escalation_level"] == 3
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Alert)) == 5
    audiences = [n["audience"] for n in await notifications(db) if n["title"] == "A work order was escalated"]
    assert {a.get("permission") for a in audiences} >= {"centre:supervise", "workorders:leadership"}
    board = await ok(await supervisor.get("/api/workorders/supervision", params={"urgency": "overdue"}))
    assert [row["id"] for row in board["items"]] == [order["id"]]
    assert board["departments"][0]["overdue"] == 1


async def test_a_pause_stops_the_clock_and_is_given_back(centre: Centre, agent: Client, cardiology: Client) -> None:
    clock.set_now(local(2026, 11, 23, 9, 0))
    order = await create_order(agent, complaint_body(centre))
    order = await step(cardiology, order, "accept")
    order = await step(cardiology, order, "pause", reason="等待患者提供缴费票据")
    assert order["paused_at"] is not None
    assert_error(
        await cardiology.post(
            f"/api/workorders/{order['id']}/pause", json={"version": order["version"], "reason": "x"}
        ),
        409,
    )
    await travel(local(2026, 11, 25, 9, 0), agent01=agent, handler_xnk=cardiology)
    order = await step(cardiology, order, "resume")
    assert order["reply_due_at"].startswith("2026-11-26T01:00")  # 24 h + the 48 h paused
    assert order["resolve_due_at"].startswith("2026-12-02T16:00")  # 5 + 2 working days: 24:00 of 2 Dec
    why = await ok(await agent.get(f"/api/workorders/{order['id']}/deadlines"))
    assert len(why["items"][1]["pauses"]) == 1 and why["items"][1]["period"]


async def test_extension_requested_by_the_department_and_approved(
    centre: Centre, agent: Client, cardiology: Client, supervisor: Client
) -> None:
    clock.set_now(local(2026, 11, 23, 9, 0))
    order = await create_order(agent, complaint_body(centre))
    order = await step(cardiology, order, "accept")
    response = await cardiology.post(
        f"/api/workorders/{order['id']}/extensions",
        json={"version": order["version"], "amount": 3, "reason": "需调取监控"},
    )
    extension = await ok(response, 201)
    again = await cardiology.post(
        f"/api/workorders/{order['id']}/extensions", json={"version": order["version"], "amount": 1, "reason": "再延"}
    )
    assert_error(again, 409, "extension_pending")
    assert_error(
        await agent.post(f"/api/workorders/extensions/{extension['id']}/decision", json={"approve": True}), 403
    )
    pending = await ok(await supervisor.get("/api/workorders/extensions"))
    assert [row["id"] for row in pending] == [extension["id"]]
    decided = await ok(
        await supervisor.post(
            f"/api/workorders/extensions/{extension['id']}/decision", json={"approve": True, "note": "同意"}
        )
    )
    assert decided["status"] == "approved"
    detail = await ok(await agent.get(f"/api/workorders/{order['id']}"))
    assert detail["resolve_due_at"].startswith("2026-12-03T16:00") and detail["extension_amount"] == 3


async def test_a_calendar_change_recomputes_open_deadlines(
    centre: Centre, agent: Client, admin: Client, db: Any
) -> None:
    clock.set_now(local(2026, 11, 23, 9, 0))
    order = await create_order(agent, complaint_body(centre))
    assert order["resolve_due_at"].startswith("2026-11-30T16:00")
    response = await admin.put("/api/calendar/overrides/2026-11-25", json={"is_working_day": False, "note": "停电检修"})
    assert response.status_code in (200, 201), response.text
    async with db.sessions() as session, session.begin():
        due = await jobs.claim(session, worker_id="test")
        assert [job.kind for job in due] == [scheduled.RECOMPUTE_JOB]
    assert await jobs.run_one(db, due[0].id, worker_id="test") == "done"
    detail = await ok(await agent.get(f"/api/workorders/{order['id']}"))
    assert detail["resolve_due_at"].startswith("2026-12-01T16:00")


async def test_callbacks_retry_then_close_as_unreachable(centre: Centre, agent: Client, cardiology: Client) -> None:
    clock.set_now(local(2026, 11, 23, 9, 0))
    body = complaint_body(centre, type_id=centre.callback_type, category="", values={})
    order = await create_order(agent, body)
    order = await step(cardiology, order, "accept")
    order = await step(cardiology, order, "reply", text="可以在门诊三楼办理。")
    assert order["callback_due_at"] is not None  # the callback type calls the patient back with the answer
    due = await ok(await agent.get("/api/workorders", params={"callbacks_due": True, "mine": True}))
    assert [row["id"] for row in due["items"]] == [order["id"]]
    for attempt in (1, 2):
        order = await ok(
            await agent.post(f"/api/workorders/{order['id']}/callback-attempts", json={"outcome": "no_answer"})
        )
        assert order["callback_attempts"] == attempt and order["status"] == "replied"
        assert order["callback_due_at"].startswith("2026-11-23T02:00")  # retried an hour later
    order = await ok(
        await agent.post(
            f"/api/workorders/{order['id']}/callback-attempts", json={"outcome": "voicemail", "note": "已留言"}
        )
    )
    assert order["status"] == "closed" and order["close_reason"] == "unreachable"
    assert order["callback_due_at"] is None


async def test_a_wrong_number_closes_at_once_and_reached_ends_the_callback(centre: Centre, agent: Client) -> None:
    order = await create_order(agent, complaint_body(centre))
    order = await ok(await agent.post(f"/api/workorders/{order['id']}/callback", json={"at": clock.now().isoformat()}))
    order = await ok(await agent.post(f"/api/workorders/{order['id']}/callback-attempts", json={"outcome": "reached"}))
    assert order["callback_due_at"] is None and order["is_open"]
    other = await create_order(agent, complaint_body(centre))
    other = await ok(
        await agent.post(f"/api/workorders/{other['id']}/callback-attempts", json={"outcome": "wrong_number"})
    )
    assert other["close_reason"] == "wrong_number"
    bad = await agent.post(f"/api/workorders/{other['id']}/callback-attempts", json={"outcome": "busy"})
    assert_error(bad, 422)


async def test_evidence_is_checked_by_its_bytes(centre: Centre, agent: Client, cardiology: Client) -> None:
    order = await create_order(agent, complaint_body(centre))
    url = f"/api/workorders/{order['id']}/attachments"
    stored = await ok(await cardiology.post(url, files={"file": ("票据.png", PNG, "image/png")}), 201)
    assert stored["content_type"] == "image/png" and stored["filename"] == "票据.png"
    download = await cardiology.get(stored["url"])
    assert download.content == PNG and download.headers["content-type"] == "image/png"
    fake = await cardiology.post(url, files={"file": ("evil.png", b"<script>alert(1)</script>", "image/png")})
    assert_error(fake, 422)
    huge = b"%PDF-" + b"0" * (9 * 1024 * 1024)
    assert_error(await cardiology.post(url, files={"file": ("big.pdf", huge, "application/pdf")}), 413)
    listed = await ok(await agent.get(url))
    assert [row["id"] for row in listed] == [stored["id"]]


async def test_bulk_reminders_reach_the_departments(centre: Centre, agent: Client, supervisor: Client, db: Any) -> None:
    first = await create_order(agent, complaint_body(centre))
    second = await create_order(agent, complaint_body(centre, department_id=centre.departments["XHNK"]))
    response = await supervisor.post(
        "/api/workorders/reminders", json={"order_ids": [first["id"], second["id"]], "note": "请尽快处理"}
    )
    assert (await ok(response))["reminded"] == 2
    audiences = [n["audience"] for n in await notifications(db) if n["title"] == "Reminder from the service centre"]
    assert sorted(a["department_id"] for a in audiences) == sorted(centre.departments[c] for c in ("XNK", "XHNK"))
    assert_error(await agent.post("/api/workorders/reminders", json={"order_ids": [first["id"]]}), 403)


async def test_the_patient_gets_the_types_sms(centre: Centre, agent: Client, admin: Client) -> None:
    template = {
        "code": "wo_received",
        "name": "受理通知",
        "body": "您的{type}已受理，编号{reference}。",
        "variables": ["type", "reference"],
    }
    await ok(await admin.post("/api/channels/sms/templates", json=template), 201)
    kind = await ok(await admin.get("/api/workorders/types"))
    complaint = next(row for row in kind if row["id"] == centre.complaint_type)
    update = {
        key: complaint[key]
        for key in (
            "code",
            "name",
            "group",
            "description",
            "fields",
            "categories",
            "default_department_id",
            "policy",
            "position",
            "is_active",
            "version",
        )
    }
    await ok(
        await admin.put(
            f"/api/workorders/types/{complaint['id']}", json=update | {"sms_templates": {"received": "wo_received"}}
        )
    )
    order = await create_order(agent, complaint_body(centre))
    messages = await ok(await admin.get("/api/channels/sms/messages", params={"related_id": order["id"]}))
    rows = messages["items"] if isinstance(messages, dict) else messages
    assert len(rows) == 1 and order["reference"] in rows[0]["text"]


async def test_sms_templates_are_checked_and_a_text_never_blocks_a_step(
    centre: Centre, agent: Client, cardiology: Client, admin: Client
) -> None:
    templates = [
        {"code": "odd", "name": "其他", "body": "{reference}{weather}", "variables": ["reference", "weather"]},
        {
            "code": "wo_replied",
            "name": "答复",
            "body": "{reference}已答复，详询{hotline}。",
            "variables": ["reference", "hotline"],
        },
    ]
    for template in templates:
        await ok(await admin.post("/api/channels/sms/templates", json=template), 201)
    types = await ok(await admin.get("/api/workorders/types"))
    complaint = next(row for row in types if row["id"] == centre.complaint_type)
    keys = ("code", "name", "group", "description", "fields", "categories", "default_department_id", "policy",
            "position", "is_active", "version")  # fmt: skip
    update = {key: complaint[key] for key in keys}
    refused = await admin.put(
        f"/api/workorders/types/{complaint['id']}", json=update | {"sms_templates": {"replied": "odd"}}
    )
    assert "sms_templates.replied" in str(assert_error(refused, 422)["details"])
    missing = await admin.put(
        f"/api/workorders/types/{complaint['id']}", json=update | {"sms_templates": {"replied": "nope"}}
    )
    assert_error(missing, 422)
    body = update | {"sms_templates": {"replied": "wo_replied"}}
    await ok(await admin.put(f"/api/workorders/types/{complaint['id']}", json=body))
    order = await create_order(agent, complaint_body(centre))
    order = await step(cardiology, order, "accept")
    order = await step(cardiology, order, "reply", text="已核实")  # no hotline configured: noted, not blocking
    assert order["status"] == "replied"
    assert "sms_not_sent" in [entry["action"] for entry in order["timeline"]], order["timeline"]


async def test_the_full_number_is_revealed_with_a_reason_and_audited(
    centre: Centre, agent: Client, gastro: Client, admin: Client
) -> None:
    order = await create_order(agent, complaint_body(centre))
    assert order["caller_phone_masked"] == "138****5678"
    assert_error(await agent.post(f"/api/workorders/{order['id']}/phone", json={"reason": ""}), 422)
    revealed = await ok(await agent.post(f"/api/workorders/{order['id']}/phone", json={"reason": "回电"}))
    assert revealed["phone"] == "+8613812345678"
    assert_error(await gastro.post(f"/api/workorders/{order['id']}/phone", json={"reason": "x"}), 404)
    audit = await ok(await admin.get("/api/audit", params={"action": "workorders.order.reveal_phone"}))
    rows = audit["items"] if isinstance(audit, dict) else audit
    assert [row["reason"] for row in rows] == ["回电"]
