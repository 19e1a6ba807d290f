"""Contacts through the API: recording by hand, coding and closing, links, patients, search, the CSV
export, routed tasks and work-order callbacks; every refusal leaves nothing half-written."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from ct_base import make_tree, ok, record
from sqlalchemy import func, select

from helpers import Client, assert_error
from patientline.contacts import service
from patientline.contacts.models import Contact
from patientline.core import clock
from patientline.core.audit import AuditEntry
from patientline.core.auth.actor import SYSTEM, Actor
from patientline.core.auth.permissions import permissions_for
from patientline.patients import index
from patientline.patients.models import Patient
from patientline.routing.models import RoutingQueue, RoutingTask


async def count_contacts(db: Any) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Contact)) or 0)


async def audit_rows(db: Any, action: str) -> list[AuditEntry]:
    async with db.sessions() as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


async def make_patient(db: Any, name: str = "王小明") -> int:
    async with db.sessions() as session, session.begin():
        patient = Patient(name=name)
        session.add(patient)
        await session.flush()
        return int(patient.id)


# --- recording -------------------------------------------------------------------------------------


async def test_an_agent_records_a_contact_and_lists_show_it_masked(agent: Client, db: Any) -> None:
    made = await record(agent, phone="138-1234-5678", notes="患者询问专家号")
    assert made["reference"].startswith("CT-") and len(made["reference"]) == 18
    assert made["status"] == "open" and made["direction"] == "inbound" and made["channel"] == "voice"
    assert made["phone_masked"] == "138****5678" and made["caller_name"] == "王小明"
    assert made["notes"] == "患者询问专家号" and made["version"] >= 1
    listed = ok(await agent.get("/api/contacts"))
    assert listed["total"] == 1
    row = listed["items"][0]
    assert row["caller_name_masked"] == "王*明" and row["phone_masked"] == "138****5678"
    assert "13812345678" not in str(listed) and "王小明" not in str(listed) and "notes" not in row
    detail = ok(await agent.get(f"/api/contacts/{made['id']}"))
    assert "13812345678" not in str(detail)
    revealed = ok(await agent.post(f"/api/contacts/{made['id']}/reveal-phone", json={"reason": "回拨患者"}))
    assert revealed["phone"] == "+8613812345678"
    rows = await audit_rows(db, "contacts.contact.reveal_phone")
    assert len(rows) == 1 and rows[0].reason == "回拨患者"
    created = await audit_rows(db, "contacts.contact.create")
    assert len(created) == 1 and "王小明" not in str(created[0].after)


async def test_a_callback_contact_is_outbound(agent: Client) -> None:
    made = await record(agent, channel="callback", direction="inbound")
    assert made["direction"] == "outbound"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "voice", "phone": "12345"}, "phone"),
        ({"channel": "fax"}, "channel"),
        ({"channel": "voice", "surprise": 1}, "surprise"),
        ({"channel": "voice", "subject": "x" * 201}, "subject"),
        ({"channel": "voice", "notes": "a\x00b"}, "notes"),
        ({"channel": "voice", "patient_id": 999999}, "patient_id"),
        ({"channel": "voice", "queue_id": 999999}, "queue_id"),
        ({"channel": "voice", "started_at": "2020-01-01T08:00:00+08:00"}, "started_at"),
        ({"channel": "voice", "disposition_ids": [424242]}, "disposition_ids"),
    ],
)
async def test_bad_contacts_are_refused_and_nothing_is_written(
    agent: Client, db: Any, body: dict[str, Any], field: str
) -> None:
    error = assert_error(await agent.post("/api/contacts", json=body), 422)
    assert field in str(error["details"])
    assert await count_contacts(db) == 0


async def test_only_contact_handlers_see_contacts(handler: Client, agent: Client) -> None:
    made = await record(agent)
    assert_error(await handler.get("/api/contacts"), 403, "permission_denied")
    assert_error(await handler.get(f"/api/contacts/{made['id']}"), 403)
    assert_error(await handler.post("/api/contacts", json={"channel": "voice"}), 403)
    assert_error(await agent.get("/api/contacts/999999"), 404, "not_found")


# --- coding and closing ----------------------------------------------------------------------------


async def test_closing_needs_a_disposition(admin: Client, agent: Client, supervisor: Client, db: Any) -> None:
    tree = await make_tree(admin)
    made = await record(agent)
    refused = assert_error(
        await agent.post(f"/api/contacts/{made['id']}/close", json={"version": made["version"]}),
        422,
        "disposition_required",
    )
    assert refused["details"][0]["field"] == "disposition_ids"
    assert ok(await agent.get(f"/api/contacts/{made['id']}"))["status"] == "open"

    coded = ok(await agent.patch(f"/api/contacts/{made['id']}", json={
        "version": made["version"], "disposition_ids": [tree.ids["consult.registration"]], "notes": "已告知放号时间",
    }))  # fmt: skip
    assert coded["disposition_ids"] == [tree.ids["consult.registration"]] and coded["version"] > made["version"]
    assert_error(await agent.patch(f"/api/contacts/{made['id']}", json={"version": made["version"], "notes": "x"}),
                 409, "stale_version")  # fmt: skip
    closed = ok(await agent.post(f"/api/contacts/{made['id']}/close", json={"version": coded["version"]}))
    assert closed["status"] == "closed" and closed["ended_at"] and closed["notes"] == "已告知放号时间"
    again = await agent.post(f"/api/contacts/{made['id']}/close", json={"version": closed["version"]})
    assert_error(again, 409, "contact_closed")
    refused_edit = await agent.patch(f"/api/contacts/{made['id']}", json={"version": closed["version"], "notes": "y"})
    assert_error(refused_edit, 409, "contact_closed")
    # a supervisor corrects a closed contact, but cannot leave it uncoded
    uncoded = await supervisor.patch(f"/api/contacts/{made['id']}", json={"version": closed["version"],
                                                                          "disposition_ids": []})  # fmt: skip
    assert_error(uncoded, 422, "disposition_required")
    fixed = ok(await supervisor.patch(f"/api/contacts/{made['id']}", json={
        "version": closed["version"], "disposition_ids": [tree.ids["complaint"]],
    }))  # fmt: skip
    assert fixed["disposition_ids"] == [tree.ids["complaint"]]
    closes = await audit_rows(db, "contacts.contact.close")
    assert len(closes) == 1 and closes[0].after == {"disposition_ids": [tree.ids["consult.registration"]]}
    updates = await audit_rows(db, "contacts.contact.update")
    assert updates and all("已告知" not in str(row.after) for row in updates)


async def test_close_with_codes_in_one_step_and_inactive_codes_are_refused(admin: Client, agent: Client) -> None:
    tree = await make_tree(admin)
    complaint = ok(await admin.get("/api/dispositions"))[1]
    assert complaint["code"] == "complaint"
    ok(await admin.patch(f"/api/dispositions/{tree.ids['complaint']}",
                         json={"version": complaint["version"], "is_active": False}))  # fmt: skip
    made = await record(agent)
    body = {"version": made["version"], "disposition_ids": [tree.ids["complaint"]]}
    assert_error(await agent.post(f"/api/contacts/{made['id']}/close", json=body), 422)
    # a sub-code of a deactivated code is not choosable either
    ok(await admin.patch(f"/api/dispositions/{tree.ids['consult']}", json={"version": 1, "is_active": False}))
    body = {"version": made["version"], "disposition_ids": [tree.ids["consult.registration"]]}
    assert_error(await agent.post(f"/api/contacts/{made['id']}/close", json=body), 422)
    body = {"version": made["version"], "disposition_ids": [tree.ids["callback.reached"]], "notes": "回电已接通"}
    closed = ok(await agent.post(f"/api/contacts/{made['id']}/close", json=body))
    assert closed["status"] == "closed" and closed["notes"] == "回电已接通"


async def test_attaching_a_patient_with_verification(agent: Client, db: Any) -> None:
    patient_id = await make_patient(db)
    made = await record(agent)
    attached = ok(await agent.patch(f"/api/contacts/{made['id']}", json={
        "version": made["version"], "patient_id": patient_id, "verified_by": "birth_date",
    }))  # fmt: skip
    assert attached["patient_id"] == patient_id and attached["verified_by"] == "birth_date"
    assert attached["patient_href"] == f"/workbench/patients/{patient_id}"
    listed = ok(await agent.get(f"/api/contacts?patient_id={patient_id}"))
    assert [row["id"] for row in listed["items"]] == [made["id"]]
    detached = ok(await agent.patch(f"/api/contacts/{made['id']}", json={"version": attached["version"],
                                                                        "patient_id": None}))  # fmt: skip
    assert detached["patient_id"] is None and detached["verified_by"] == "" and detached["patient_href"] is None
    unknown = await agent.patch(f"/api/contacts/{made['id']}", json={"version": detached["version"],
                                                                    "patient_id": 999999})  # fmt: skip
    assert_error(unknown, 422)
    bad = await agent.patch(f"/api/contacts/{made['id']}", json={"version": detached["version"], "verified_by": "x"})
    assert_error(bad, 422)
    async with db.sessions() as session:
        history = await service.for_patient(session, patient_id)
    assert history == []


async def test_for_patient_lists_every_channel_latest_first(agent: Client, db: Any) -> None:
    patient_id = await make_patient(db)
    first = await record(agent, channel="voice", patient_id=patient_id)
    second = await record(agent, channel="wechat", patient_id=patient_id)
    await record(agent, channel="chat")
    async with db.sessions() as session:
        history = await service.for_patient(session, patient_id, limit=10)
    assert {row.id for row in history} == {first["id"], second["id"]}
    assert history[0].started_at >= history[1].started_at


# --- links -----------------------------------------------------------------------------------------


async def make_order(admin: Client, agent: Client) -> dict[str, Any]:
    kind = ok(await admin.post("/api/workorders/types", json={"code": "cb", "name": "回电", "group": "callback"}), 201)
    body = {"type_id": kind["id"], "subject": "专家号何时放号", "caller_name": "钱女士", "caller_phone": "13900139003"}
    order: dict[str, Any] = ok(await agent.post("/api/workorders", json=body), 201)
    return order


async def test_links_to_work_orders_and_knowledge_items(admin: Client, agent: Client) -> None:
    order = await make_order(admin, agent)
    made = await record(agent)
    url = f"/api/contacts/{made['id']}/links"
    by_reference = ok(await agent.post(url, json={"kind": "workorder", "target": order["reference"].lower()}), 201)
    assert by_reference["target_id"] == order["id"] and by_reference["href"] == f"/workorders/{order['id']}"
    assert order["reference"] in by_reference["label"]
    by_id = ok(await agent.post(url, json={"kind": "workorder", "target": str(order["id"])}), 201)
    assert by_id["id"] == by_reference["id"]  # the same link once
    assert_error(await agent.post(url, json={"kind": "workorder", "target": "WO-19990101-0001"}), 422)
    assert_error(await agent.post(url, json={"kind": "knowledge", "target": "12"}), 422)
    assert_error(await agent.post(url, json={"kind": "knowledge", "target": "abc"}), 422)
    assert_error(await agent.post(url, json={"kind": "patient", "target": "1"}), 422)
    detail = ok(await agent.get(f"/api/contacts/{made['id']}"))
    assert [link["target_id"] for link in detail["links"]] == [order["id"]]
    assert (await agent.delete(f"{url}/{by_id['id']}")).status_code == 204
    assert_error(await agent.delete(f"{url}/{by_id['id']}"), 404)
    assert ok(await agent.get(f"/api/contacts/{made['id']}"))["links"] == []


async def test_a_callback_attempt_on_a_work_order_is_a_contact(admin: Client, agent: Client) -> None:
    tree = await make_tree(admin)
    order = await make_order(admin, agent)
    attempt = {"outcome": "no_answer", "note": "无人接听"}
    ok(await agent.post(f"/api/workorders/{order['id']}/callback-attempts", json=attempt), 200)
    listed = ok(await agent.get("/api/contacts?channel=callback"))
    assert listed["total"] == 1
    contact = ok(await agent.get(f"/api/contacts/{listed['items'][0]['id']}"))
    assert contact["direction"] == "outbound" and contact["status"] == "closed"
    assert contact["disposition_ids"] == [tree.ids["callback.no_answer"]] and contact["notes"] == "无人接听"
    assert contact["phone_masked"] == "139****9003" and contact["caller_name"] == "钱女士"
    assert [(link["kind"], link["target_id"]) for link in contact["links"]] == [("workorder", order["id"])]


# --- search and export -----------------------------------------------------------------------------


async def test_search_filters(admin: Client, agent: Client, agent2: Client) -> None:
    tree = await make_tree(admin)
    one = await record(agent, subject="医保报销比例", disposition_ids=[tree.ids["consult.insurance.claims"]])
    two = await record(agent2, channel="wechat", phone="13900000001", subject="投诉窗口", caller_name="李雷")
    three = await record(agent, channel="walk_in", phone=None, subject="问路", notes="找不到住院部")
    ok(await agent.post(f"/api/contacts/{three['id']}/close",
                        json={"version": three["version"], "disposition_ids": [tree.ids["complaint"]]}))  # fmt: skip

    async def ids(query: str) -> set[int]:
        return {row["id"] for row in ok(await agent.get(f"/api/contacts?{query}"))["items"]}

    assert await ids("") == {one["id"], two["id"], three["id"]}
    assert await ids("channel=wechat") == {two["id"]}
    assert await ids("status=closed") == {three["id"]}
    assert await ids(f"disposition_id={tree.ids['consult']}") == {one["id"]}  # with its sub-codes
    assert await ids(f"disposition_id={tree.ids['consult.insurance']}") == {one["id"]}
    assert await ids(f"disposition_id={tree.ids['consult.registration']}") == set()
    assert await ids("phone=139 0000 0001") == {two["id"]}
    assert await ids("phone=%2B8613900000001") == {two["id"]}
    assert await ids("q=住院部") == {three["id"]}
    assert await ids("q=医保") == {one["id"]}
    assert await ids(f"q={one['reference'].lower()}") == {one["id"]}
    assert await ids("q=100%25") == set()
    assert await ids("direction=outbound") == set()
    agent2_id = ok(await agent2.get(f"/api/contacts/{two['id']}"))["agent_id"]
    assert await ids(f"agent_id={agent2_id}") == {two["id"]}
    today = clock.now().date().isoformat()
    assert len(await ids(f"date_from={today}&date_to={today}")) in (0, 3)  # local day vs UTC day
    tomorrow = (clock.now() + timedelta(days=2)).date().isoformat()
    assert await ids(f"date_from={tomorrow}") == set()
    page = ok(await agent.get("/api/contacts?limit=2&offset=0"))
    assert page["total"] == 3 and len(page["items"]) == 2
    assert_error(await agent.get("/api/contacts?phone=abc"), 422)
    assert_error(await agent.get("/api/contacts?channel=fax"), 422)
    assert_error(await agent.get("/api/contacts?limit=0"), 422)
    assert_error(await agent.get("/api/contacts?date_from=2026-11-02&date_to=2026-11-01"), 422)


async def test_csv_export_masks_and_respects_filters(admin: Client, agent: Client, db: Any) -> None:
    tree = await make_tree(admin)
    await record(agent, subject="=HYPERLINK(1)", disposition_ids=[tree.ids["consult.insurance.claims"]])
    await record(agent, channel="wechat", phone="13900000001", caller_name="李雷", subject="投诉")
    response = await agent.get("/api/contacts/export.csv?channel=voice")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) == 2
    header, row = rows
    assert len(header) == len(row) == 15
    assert "138****5678" in row and "王*明" in row and "'=HYPERLINK(1)" in row
    assert "咨询 / 医保 / 报销" in row
    assert "13812345678" not in text and "王小明" not in text and "李雷" not in text
    everything = (await agent.get("/api/contacts/export.csv")).content.decode("utf-8")
    assert len(list(csv.reader(io.StringIO(everything.lstrip("\ufeff"))))) == 3
    exports = await audit_rows(db, "contacts.exported")
    assert len(exports) == 2 and exports[0].after == {"filters": {"channel": "voice"}, "phone_filter": False,
                                                       "text_filter": False}  # fmt: skip
    assert_error(await agent.get("/api/contacts/export.csv?phone=12"), 422)


async def test_csv_export_in_english_has_english_headers(agent: Client) -> None:
    await record(agent)
    agent.http.cookies.set("pl_lang", "en")
    text = (await agent.get("/api/contacts/export.csv")).content.decode("utf-8")
    assert text.lstrip("\ufeff").startswith("Reference,Channel,Direction")
    assert "Phone call" in text


# --- routed tasks ----------------------------------------------------------------------------------


async def test_a_routed_task_opens_one_contact_and_its_end_is_recorded(agent: Client, db: Any) -> None:
    me = ok(await agent.get("/api/auth/me"))
    patient_id = await make_patient(db)
    async with db.sessions() as session, session.begin():
        queue = RoutingQueue(code="GEN", name="综合咨询")
        session.add(queue)
        await session.flush()
        task = RoutingTask(channel="chat", queue_id=queue.id, entered_at=clock.now() - timedelta(minutes=2),
                           caller={"name": "张三", "phone_masked": "138****0000", "patient_id": patient_id},
                           caller_phone="+8613800000000", external_ref="chat-77", subject="问医保")  # fmt: skip
        session.add(task)
        await session.flush()
        task_id, queue_id = task.id, queue.id
    actor = Actor(user_id=me["id"], username="agent01", display_name="Agent01", roles=("agent",),
                  permissions=permissions_for(["agent"]))  # fmt: skip
    async with db.sessions() as session, session.begin():
        task = await session.get(RoutingTask, task_id)
        assert task is not None
        first = await service.open_for_task(session, actor=actor, task=task)
        again = await service.open_for_task(session, actor=actor, task=task)
        assert first.id == again.id
        contact_id = first.id
    contact = ok(await agent.get(f"/api/contacts/{contact_id}"))
    assert contact["channel"] == "chat" and contact["queue_id"] == queue_id and contact["agent_id"] == me["id"]
    assert contact["patient_id"] == patient_id and contact["caller_name"] == "张三"
    assert contact["phone_masked"] == "138****0000" and contact["routing_task_id"] == task_id
    assert contact["answered_at"] and contact["ended_at"] is None and contact["external_ref"] == "chat-77"
    async with db.sessions() as session, session.begin():
        ended = await service.end_for_task(session, task_id=task_id)
        assert ended is not None and ended.ended_at is not None
        assert await service.end_for_task(session, task_id=424242) is None
    assert ok(await agent.get(f"/api/contacts/{contact_id}"))["ended_at"]


async def test_a_routed_task_naming_a_merged_or_missing_patient(agent: Client, db: Any) -> None:
    survivor, duplicate = await make_patient(db), await make_patient(db, "王小明 (重复)")
    async with db.sessions() as session, session.begin():
        await index.merge(session, actor=SYSTEM, survivor_id=survivor, merged_id=duplicate)
        queue = RoutingQueue(code="GEN2", name="综合咨询")
        session.add(queue)
        await session.flush()
        tasks = [RoutingTask(channel="voice", queue_id=queue.id, entered_at=clock.now(), caller={"patient_id": named},
                             caller_phone="+8613800000001") for named in (duplicate, 999999)]  # fmt: skip
        session.add_all(tasks)
        await session.flush()
        task_ids = [task.id for task in tasks]
    me = ok(await agent.get("/api/auth/me"))
    actor = Actor(user_id=me["id"], username="agent01", display_name="Agent01", roles=("agent",),
                  permissions=permissions_for(["agent"]))  # fmt: skip
    async with db.sessions() as session, session.begin():
        opened = [await service.open_for_task(session, actor=actor, task=await session.get_one(RoutingTask, task_id))
                  for task_id in task_ids]  # fmt: skip
        patients = [contact.patient_id for contact in opened]
    assert patients == [survivor, None]  # the survivor; nobody rather than a failed accept
