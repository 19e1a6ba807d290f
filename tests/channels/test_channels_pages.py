"""The messaging pages: the outbox (whole page and the rows it polls), details, templates, opt-outs."""

from __future__ import annotations

from typing import Any

import pytest
from outbox import run_jobs, send, send_email

from helpers import Client, assert_error

pytestmark = pytest.mark.usefixtures("templates")
HX = {"HX-Request": "true"}


def html(response: Any, status: int = 200) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    text: str = response.text
    return text


@pytest.fixture
def english(admin: Client) -> Client:
    admin.http.cookies.set("pl_lang", "en")
    return admin


async def test_an_empty_outbox_says_so_and_explains_the_sink(english: Client) -> None:
    page = html(await english.get("/messages"))
    assert "<html" in page and "No text messages yet" in page
    assert "development sink" in page and "Quiet hours 21:00-08:00" in page
    assert 'href="/messages"' in page and 'hx-trigger="every 5s"' in page  # it refreshes itself


async def test_the_outbox_shows_texts_with_masked_numbers_parts_and_status(english: Client, db: Any) -> None:
    sent = await send(db, related_type="work_order", related_id=42)
    await run_jobs(db)
    page = html(await english.get("/messages"))
    assert "+86 138****8000" in page and "+8613800138000" not in page
    assert "您的投诉已受理" in page and "1 part" in page and ">Sent<" in page and "work_order #42" in page
    rows = html(await english.get("/messages", params={"status": "sent"}, headers=HX))
    assert "<html" not in rows and f'href="/messages/sms/{sent.id}"' in rows
    none = html(await english.get("/messages", params={"status": "failed"}, headers=HX))
    assert "No text messages match these filters" in none
    bad = html(await english.get("/messages", params={"phone": "12ab"}, headers=HX))
    assert "not a phone number" in bad


async def test_a_message_page_shows_the_full_number(english: Client, db: Any) -> None:
    sent = await send(db)
    page = html(await english.get(f"/messages/sms/{sent.id}"))
    assert "138 0013 8000" in page and "+86 138****8000" in page and "wo_received" in page
    assert_error(await english.get("/messages/sms/999999", headers=HX), 404)


async def test_the_email_tab_and_an_email_page(english: Client, db: Any) -> None:
    assert "No emails yet" in html(await english.get("/messages", params={"tab": "email"}))
    mail = await send_email(db)
    await run_jobs(db)
    page = html(await english.get("/messages", params={"tab": "email"}))
    assert "d***@hospital.example" in page and "新工单 WO-20261123-0001" in page
    detail = html(await english.get(f"/messages/email/{mail.id}"))
    assert "duty@hospital.example" in detail and "心内科：新投诉工单待处理。" in detail


async def test_template_pages_list_edit_and_offer_a_test_send(english: Client) -> None:
    page = html(await english.get("/messages/templates"))
    assert "wo_received" in page and "dept_escalation" in page and 'href="/messages/templates/new"' in page
    templates = (await english.get("/api/channels/sms/templates")).json()
    first = next(t for t in templates if t["code"] == "wo_received")
    form = html(await english.get(f"/messages/templates/{first['id']}"))
    assert 'data-method="PUT"' in form and "Send a test text" in form and "values['deadline']" in form
    assert "【示例医院】" in form
    assert 'data-action="/api/channels/sms/templates"' in html(await english.get("/messages/templates/new"))


async def test_the_opt_out_page_adds_finds_and_removes(english: Client, db: Any) -> None:
    assert "No number has opted out" in html(await english.get("/messages/opt-outs"))
    await english.post("/api/channels/sms/opt-outs", json={"phone": "13800138000", "reason": "asked"})
    page = html(await english.get("/messages/opt-outs"))
    assert "+86 138****8000" in page and "Allow texts again" in page
    assert "has not opted out" in html(await english.get("/messages/opt-outs", params={"phone": "13912345678"}))
    assert "not a phone number" in html(await english.get("/messages/opt-outs", params={"phone": "xyz"}))


async def test_the_menu_shows_messages_to_those_who_manage_them(admin: Client, as_user: Any) -> None:
    assert 'href="/messages"' in html(await admin.get("/"))
    async with as_user("agent5", ["agent"]) as agent:
        assert 'href="/messages"' not in html(await agent.get("/"))
        assert (await agent.get("/messages")).status_code == 403


async def test_the_pages_speak_chinese(admin: Client, db: Any) -> None:
    await send(db)
    page = html(await admin.get("/messages"))
    assert "短信" in page and "排队中" in page
