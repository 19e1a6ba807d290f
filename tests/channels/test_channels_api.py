"""The channels API: templates, opt-outs, the outbox with masked numbers, test sends, permissions."""

from __future__ import annotations

from typing import Any

import pytest
from outbox import run_jobs, send, send_email
from sqlalchemy import select

from helpers import Client, assert_error
from patientline.core.audit import AuditEntry

pytestmark = pytest.mark.usefixtures("templates")
API = "/api/channels"
NEW_TEMPLATE = {
    "code": "appt_reminder",
    "name": "就诊提醒",
    "body": "您预约了{date}{department}的门诊，请提前30分钟到达。",
    "variables": ["date", "department"],
    "provider_template_code": "SMS_480100",
}


async def audit_actions(db: Any) -> list[str]:
    async with db.sessions() as session:
        return list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


async def test_templates_are_created_changed_with_their_version_and_deleted(admin: Client, db: Any) -> None:
    created = await admin.post(f"{API}/sms/templates", json=NEW_TEMPLATE)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["version"] == 1 and body["audience"] == "patient" and body["is_active"] is True
    assert_error(await admin.post(f"{API}/sms/templates", json=NEW_TEMPLATE), 409, "duplicate_code")
    change = {k: v for k, v in NEW_TEMPLATE.items() if k != "code"} | {"version": 1, "name": "门诊提醒"}
    changed = await admin.put(f"{API}/sms/templates/{body['id']}", json=change)
    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert_error(await admin.put(f"{API}/sms/templates/{body['id']}", json=change), 409, "stale_version")
    assert (await admin.get(f"{API}/sms/templates/{body['id']}")).json()["name"] == "门诊提醒"
    assert "appt_reminder" in [t["code"] for t in (await admin.get(f"{API}/sms/templates")).json()]
    assert (await admin.delete(f"{API}/sms/templates/{body['id']}")).status_code == 204
    assert_error(await admin.get(f"{API}/sms/templates/{body['id']}"), 404)
    actions = await audit_actions(db)
    assert [a for a in actions if a.startswith("sms.template")][-3:] == [
        "sms.template.create",
        "sms.template.update",
        "sms.template.delete",
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"body": "您预约了{date}{room}的门诊"}, "variables"),  # {room} is not declared
        ({"body": "x" * 501}, "body"),
        ({"body": "  "}, "body"),
        ({"body": "括号{没有关上"}, "body"),
        ({"body": "{date!r}"}, "body"),
        ({"variables": ["not a name"]}, "variables.0"),
        ({"code": "bad code"}, "code"),
        ({"audience": "everyone"}, "audience"),
    ],
)
async def test_template_mistakes_are_422_with_the_field(admin: Client, change: dict[str, Any], field: str) -> None:
    body = assert_error(await admin.post(f"{API}/sms/templates", json=NEW_TEMPLATE | change), 422)
    details = body["details"]
    fields = [d["field"] for d in details] if isinstance(details, list) else list(details)
    assert field in fields, details


async def test_a_template_that_was_used_can_only_be_deactivated(admin: Client, db: Any) -> None:
    await send(db)
    used = next(t for t in (await admin.get(f"{API}/sms/templates")).json() if t["code"] == "wo_received")
    assert_error(await admin.delete(f"{API}/sms/templates/{used['id']}"), 409, "template_in_use")


async def test_opt_outs_are_added_listed_masked_and_removed_with_audit(admin: Client, db: Any) -> None:
    added = await admin.post(f"{API}/sms/opt-outs", json={"phone": "138 0013 8000", "reason": "电话中要求"})
    assert added.status_code == 201 and added.json()["phone"] == "+86 138****8000"
    assert added.json()["source"] == "agent" and added.json()["created_by_id"] is not None
    again = await admin.post(f"{API}/sms/opt-outs", json={"phone": "+8613800138000"})
    assert again.json()["id"] == added.json()["id"]
    listed = await admin.get(f"{API}/sms/opt-outs")
    assert [o["phone"] for o in listed.json()] == ["+86 138****8000"] and listed.headers["X-Total-Count"] == "1"
    assert (await admin.get(f"{API}/sms/opt-outs", params={"phone": "13912345678"})).json() == []
    assert_error(await admin.get(f"{API}/sms/opt-outs", params={"phone": "abc"}), 422)
    assert_error(await admin.post(f"{API}/sms/opt-outs", json={"phone": "010 6555 0000"}), 422)
    suppressed = await send(db)
    assert suppressed.status == "suppressed"
    removed = await admin.delete(f"{API}/sms/opt-outs/{added.json()['id']}", params={"reason": "患者重新同意"})
    assert removed.status_code == 204
    assert_error(await admin.delete(f"{API}/sms/opt-outs/{added.json()['id']}"), 404)
    assert (await send(db, phone="13800138000")).status == "queued"
    assert {"sms.opt_out.add", "sms.opt_out.remove"} <= set(await audit_actions(db))


async def test_the_outbox_lists_masked_numbers_and_filters(admin: Client, db: Any) -> None:
    first = await send(db, related_type="work_order", related_id=42)
    await send(db, phone="13912345678", template="wo_resolved", variables={"type": "投诉", "reference": "WO-1"})
    await run_jobs(db)
    page = (await admin.get(f"{API}/sms/messages")).json()
    assert page["total"] == 2 and {m["phone"] for m in page["items"]} == {"+86 138****8000", "+86 139****5678"}
    assert all("+8613" not in str(m) for m in page["items"])
    by_related = (
        await admin.get(f"{API}/sms/messages", params={"related_type": "work_order", "related_id": 42})
    ).json()
    assert [m["id"] for m in by_related["items"]] == [first.id]
    by_phone = (await admin.get(f"{API}/sms/messages", params={"phone": "138-0013-8000"})).json()
    assert [m["id"] for m in by_phone["items"]] == [first.id]
    assert (await admin.get(f"{API}/sms/messages", params={"status": "delivered"})).json()["total"] == 0
    assert (await admin.get(f"{API}/sms/messages", params={"template": "wo_resolved"})).json()["total"] == 1
    assert_error(await admin.get(f"{API}/sms/messages", params={"status": "lost"}), 422)
    detail = await admin.get(f"{API}/sms/messages/{first.id}")
    assert detail.json()["phone_e164"] == "+8613800138000" and detail.json()["provider_ids"] == [f"sink-{first.id}"]
    assert "sms.message.read" in await audit_actions(db)
    assert_error(await admin.get(f"{API}/sms/messages/999999"), 404)


async def test_a_test_text_and_a_test_email_go_through_the_outbox(admin: Client, db: Any) -> None:
    text = await admin.post(
        f"{API}/sms/test",
        json={"phone": "13800138000", "template": "wo_resolved", "variables": {"type": "测试", "reference": "T-1"}},
    )
    assert text.status_code == 201 and text.json()["related_type"] == "test" and text.json()["status"] == "queued"
    assert_error(await admin.post(f"{API}/sms/test", json={"phone": "13800138000", "template": "wo_resolved"}), 422)
    assert_error(await admin.post(f"{API}/sms/test", json={"phone": "12", "template": "wo_resolved"}), 422)
    mail = await admin.post(
        f"{API}/email/test", json={"to": "duty@hospital.example", "subject": "测试", "body": "测试邮件"}
    )
    assert mail.status_code == 201 and mail.json()["to"] == "d***@hospital.example"
    await run_jobs(db)
    emails = (await admin.get(f"{API}/email/messages", params={"status": "sent"})).json()
    assert emails["total"] == 1 and emails["items"][0]["to"] == "d***@hospital.example"
    detail = (await admin.get(f"{API}/email/messages/{mail.json()['id']}")).json()
    assert detail["to_address"] == "duty@hospital.example" and detail["body"] == "测试邮件"
    assert {"sms.test", "email.test"} <= set(await audit_actions(db))


async def test_only_people_who_manage_messaging_may_use_the_api(as_user: Any, db: Any) -> None:
    await send_email(db)
    async with as_user("agent9", ["agent"]) as agent:
        for path in ("/sms/templates", "/sms/opt-outs", "/sms/messages", "/email/messages"):
            assert_error(await agent.get(f"{API}{path}"), 403, "permission_denied")
        assert_error(await agent.post(f"{API}/sms/opt-outs", json={"phone": "13800138000"}), 403)
        assert_error(await agent.post(f"{API}/sms/templates", json=NEW_TEMPLATE), 403)
    async with as_user("super9", ["supervisor"]) as supervisor:
        assert (await supervisor.get(f"{API}/sms/messages")).status_code == 200


async def test_anonymous_callers_are_asked_to_log_in(anon: Client) -> None:
    assert_error(await anon.get(f"{API}/sms/messages"), 401)
