"""Web chat through its HTTP API: the assistant answers from public knowledge (traditional characters
too), offers choices when unsure, collects a complaint into a work order, raises the emergency guard;
a person takes over through the router; resends are not doubled; and every refusal: forged sessions,
oversized or empty text, flooding, bad pictures, wrong codes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from helpers import Client, assert_error
from patientline.assistant import dialogue
from patientline.channels import webchat
from patientline.channels.models import SmsMessage
from patientline.core import clock
from patientline.core.config import Settings
from patientline.core.events import Published


@pytest.fixture
def settings(database_url: str, tmp_path: Any) -> Settings:
    return Settings(database_url=database_url, var_dir=tmp_path / "var", roles="web,router", redis_url="",
                    chat_messages_per_minute=8, _env_file=None)  # type: ignore[call-arg]  # fmt: skip


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


class Chat:
    """A patient's browser: the conversation id and its secret."""

    def __init__(self, client: Client, started: dict[str, Any]) -> None:
        self.client, self.id, self.secret = client, started["conversation"], started["secret"]

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Chat-Secret": self.secret}

    async def say(self, text: str = "", *, client_id: str | None = None, status: int = 201, **extra: Any) -> Any:
        body = {"client_id": client_id or uuid.uuid4().hex, "text": text, **extra}
        response = await self.client.post(f"/api/chat/{self.id}/messages", json=body, headers=self.headers)
        return await ok(response, status)

    async def post(self, path: str, body: Any = None, status: int = 200) -> Any:
        return await ok(await self.client.post(f"/api/chat/{self.id}/{path}", json=body, headers=self.headers), status)

    async def messages(self, after: int = 0) -> list[dict[str, Any]]:
        body = await ok(await self.client.get(f"/api/chat/{self.id}", params={"after": after}, headers=self.headers))
        return list(body["messages"])

    async def state(self) -> dict[str, Any]:
        return dict(await ok(await self.client.get(f"/api/chat/{self.id}", headers=self.headers)))


async def start(client: Client, locale: str = "zh_CN") -> Chat:
    return Chat(client, await ok(await client.post("/api/chat/sessions", json={"locale": locale}), 201))


async def publish_item(admin: Client, question: str, answer: str, **fields: Any) -> int:
    category = await ok(await admin.post("/api/kb/categories", json={"code": "OPD", "name": "门诊"}), 201)
    body = {"category_id": category["id"], "question": question, "answer_html": f"<p>{answer}</p>"} | fields
    row = await ok(await admin.post("/api/kb/items", json=body), 201)
    for name in ("submit", "publish"):
        row = await ok(
            await admin.post(f"/api/kb/items/{row['id']}/transitions/{name}", json={"version": row["version"]})
        )
    return int(row["id"])


async def test_the_assistant_answers_a_question_in_traditional_characters(admin: Client, anon: Client) -> None:
    item_id = await publish_item(admin, "医院停车场在哪里？", "停车场在门诊楼地下一层，入口在东门。")
    chat = await start(anon)
    greeting = await chat.messages()
    assert [m["sender"] for m in greeting] == ["bot"] and greeting[0]["seq"] == 1
    ack = await chat.say("醫院停車場在哪裡？")
    assert ack["message"]["seq"] == 2 and ack["message"]["sender"] == "patient"
    answer = (await chat.messages(after=2))[0]
    assert answer["kind"] == "answer" and answer["data"]["item_id"] == item_id
    assert "地下一层" in answer["text"] and answer["data"]["url"] == f"/faq/items/{item_id}"


async def test_a_resend_is_the_same_message_and_is_answered_once(admin: Client, anon: Client) -> None:
    await publish_item(admin, "医院停车场在哪里？", "停车场在门诊楼地下一层。")
    chat = await start(anon)
    first = await chat.say("停车场在哪里", client_id="resend-0001")
    again = await chat.say("停车场在哪里", client_id="resend-0001", status=200)
    assert again["message"] == first["message"]
    senders = [m["sender"] for m in await chat.messages()]
    assert senders == ["bot", "patient", "bot"]


async def test_unsure_answers_offer_choices_and_a_person_and_are_collected(admin: Client, anon: Client) -> None:
    chat = await start(anon)
    await chat.say("你们食堂的红烧肉好吃吗")
    reply = (await chat.messages(after=2))[0]
    assert reply["kind"] == "choices" and reply["data"]["options"][-1]["choice"] == "human"
    candidates = await ok(await admin.get("/api/kb/candidates"))
    assert any("红烧肉" in c["text"] and c["source"] == "chat" for c in candidates)


async def test_emergency_words_get_the_instruction_and_alert_supervisors(app: Any, admin: Client, anon: Client) -> None:
    await publish_item(admin, "胸痛挂什么科？", "胸痛可到心内科就诊。")
    seen: list[Published] = []
    app.state.pl.bus.subscribe(seen.append)
    chat = await start(anon)
    await chat.say("我爸突然胸口剧痛，满头冷汗，喘不上气")
    replies = await chat.messages(after=2)
    assert [r["kind"] for r in replies] == ["emergency"] and "120" in replies[0]["text"]
    alerts = [e for e in seen if e.type == "notification" and e.payload["level"] == "danger"]
    assert alerts and alerts[0].audience.permission == "centre:supervise"
    assert alerts[0].payload["link"] == f"/chat/monitor/{chat.id}"


async def test_triage_names_departments_with_reasons(anon: Client) -> None:
    chat = await start(anon)
    await chat.say("孩子5岁，发烧咳嗽两天了，挂什么科？")
    reply = (await chat.messages(after=2))[0]
    assert reply["kind"] == "triage" and reply["data"]["suggestions"][0]["department"] == "儿科"
    assert "not a diagnosis" in reply["text"] or "不是诊断" in reply["text"]


async def complaint_type(admin: Client) -> None:
    body = {
        "code": "complaint", "name": "投诉", "group": "complaint", "description": "",
        "fields": [{"key": "visit_date", "label": "就诊日期", "kind": "date", "required": True, "choices": [],
                    "help": ""}],
        "categories": ["服务态度", "其他"], "default_department_id": None, "position": 1, "is_active": True,
        "sms_templates": {},
        "policy": {"reply": {"amount": 24, "unit": "hours"}, "result": {"amount": 5, "unit": "working_days"},
                   "warn_at": 0.75, "escalate_after_hours": [], "working_hours": "08:00-17:30",
                   "callback_attempts": 3, "callback_retry_minutes": 60, "call_back_on_reply": False,
                   "auto_close_days": 7},
    }  # fmt: skip
    await ok(await admin.post("/api/workorders/types", json=body), 201)


async def test_a_complaint_is_collected_into_a_work_order(admin: Client, anon: Client) -> None:
    await complaint_type(admin)
    chat = await start(anon)
    await chat.say("我要投诉")
    assert (
        "what happened" in (await chat.messages(after=2))[0]["text"]
        or "经过" in (await chat.messages(after=2))[0]["text"]
    )
    await chat.say("昨天下午在眼科候诊三个小时，护士态度很差")
    asked_date = (await chat.messages(after=4))[0]
    assert "就诊日期" in asked_date["text"]
    await chat.say("前天")
    await chat.say("138123")  # not a mobile number
    assert (await chat.messages(after=8))[0]["kind"] == "text"
    await chat.say("13812345678")
    registered = (await chat.messages(after=10))[0]
    assert registered["kind"] == "registered"
    order = await ok(await admin.get(f"/api/workorders/by-reference/{registered['data']['reference']}"))
    assert order["channel"] == "chat" and "护士态度很差" in order["description"]
    assert order["values"]["visit_date"]


@asynccontextmanager
async def ready_agent(as_user: Any, admin: Client, queue_code: str = "GENERAL") -> AsyncIterator[tuple[Client, int]]:
    queue = await ok(await admin.post("/api/routing/queues", json={"code": queue_code, "name": "综合咨询"}), 201)
    async with as_user("agent01", ["agent"]) as agent:
        agent_id = (await ok(await agent.get("/api/auth/me")))["id"]
        await ok(await admin.put(f"/api/routing/queues/{queue['id']}/members", json=[{"user_id": agent_id, "tier": 1}]))
        await ok(await agent.post("/api/routing/me/login"))
        await ok(await agent.post("/api/routing/me/ready"))
        yield agent, agent_id


async def test_a_person_takes_over_through_the_router(admin: Client, anon: Client, as_user: Any) -> None:
    async with ready_agent(as_user, admin) as (agent, _agent_id):
        chat = await start(anon)
        await chat.say("转人工")
        state = await chat.state()
        assert state["state"] == "queued"
        bar = await ok(await agent.get("/api/routing/me"))
        offer = bar["offer"]
        assert offer["channel"] == "chat" and offer["subject"] == "转人工"
        accepted = await ok(await agent.post(f"/api/routing/tasks/{offer['task_id']}/accept"))
        assert accepted["contact_id"]
        assert (await chat.state())["state"] == "agent"
        desk = await ok(await agent.get("/api/chat-desk"))
        assert [c["conversation"] for c in desk["mine"]] == [chat.id] and desk["live"] is None
        transcript = await ok(await agent.get(f"/api/chat-desk/{chat.id}"))
        assert [m["text"] for m in transcript["messages"] if m["sender"] == "patient"] == ["转人工"]
        hello = {"client_id": "agent-0001", "text": "您好，请问有什么可以帮您？"}
        written = await ok(await agent.post(f"/api/chat-desk/{chat.id}/messages", json=hello), 201)
        await chat.post("read", {"seq": written["message"]["seq"]}, status=204)
        assert (await ok(await agent.get(f"/api/chat-desk/{chat.id}")))["patient_read_seq"] == written["message"]["seq"]
        await chat.say("我想问一下报告")  # a person has the chat: the assistant stays quiet
        assert (await chat.messages(after=written["message"]["seq"] + 1)) == []
        ended = await ok(await agent.post(f"/api/chat-desk/{chat.id}/end", json={}))
        assert ended["state"] == "closed"
        assert (await ok(await agent.get("/api/routing/me")))["tasks"] == []
    assert_error(await anon.post(f"/api/chat/{chat.id}/messages", json={"client_id": "late-0001", "text": "在吗"},
                                 headers=chat.headers), 409, "chat_closed")  # fmt: skip
    rated = await chat.post("rating", {"rating": 5, "comment": "很耐心"})
    assert rated["rating"] == 5
    assert_error(await anon.post(f"/api/chat/{chat.id}/rating", json={"rating": 4}, headers=chat.headers), 409)


async def test_a_supervisor_takes_over_a_bot_chat_and_hands_it_back(admin: Client, anon: Client, as_user: Any) -> None:
    chat = await start(anon)
    await chat.say("你好")
    async with as_user("supervisor1", ["supervisor"]) as supervisor, as_user("agent01", ["agent"]) as agent:
        live = (await ok(await supervisor.get("/api/chat-desk")))["live"]
        assert chat.id in [c["conversation"] for c in live]
        assert_error(await agent.get(f"/api/chat-desk/{chat.id}"), 403, "chat_not_yours")
        assert_error(await agent.post(f"/api/chat-desk/{chat.id}/take-over"), 403)
        taken = await ok(await supervisor.post(f"/api/chat-desk/{chat.id}/take-over"))
        assert taken["state"] == "agent"
        await ok(await supervisor.post(f"/api/chat-desk/{chat.id}/messages",
                                       json={"client_id": "super-0001", "text": "我是值班班长"}), 201)  # fmt: skip
        senders = [m["sender"] for m in await chat.messages()]
        assert senders[-2:] == ["system", "agent"]
        back = await ok(await supervisor.post(f"/api/chat-desk/{chat.id}/hand-back"))
        assert back["state"] == "bot"
        audit = await ok(await admin.get("/api/audit", params={"action": "chat.take_over"}))
        assert audit


async def test_no_open_queue_offers_a_message_that_becomes_a_work_order(admin: Client, anon: Client) -> None:
    await ok(
        await admin.post("/api/routing/queues", json={"code": "GENERAL", "name": "综合", "hours": "00:00-00:01"}), 201
    )
    callback = {"code": "callback", "name": "回电", "group": "callback", "fields": [], "categories": ["其他"]}
    await ok(await admin.post("/api/workorders/types", json=callback), 201)
    chat = await start(anon)
    await chat.say("人工客服")
    offered = (await chat.messages(after=3))[-1]
    assert offered["kind"] == "choices" and offered["data"]["options"][0]["choice"] == "message"
    await chat.say("留言", choice="message")
    await chat.say("请给我回个电话，想问住院押金")
    await chat.say("13912345678")
    registered = (await chat.messages())[-1]
    assert registered["kind"] == "registered", registered


async def test_forged_oversized_empty_and_flooding_are_refused(anon: Client) -> None:
    chat = await start(anon)
    forged = {"X-Chat-Secret": "not-the-secret"}
    assert_error(await anon.get(f"/api/chat/{chat.id}", headers=forged), 403, "chat_session_invalid")
    assert_error(await anon.get(f"/api/chat/{uuid.uuid4().hex}", headers=chat.headers), 403, "chat_session_invalid")
    assert_error(await anon.get("/api/chat/not-an-id", headers=chat.headers), 422)
    assert_error(await anon.get(f"/api/chat/{chat.id}"), 422)
    too_long = {"client_id": "long-00001", "text": "长" * 1001}
    assert_error(await anon.post(f"/api/chat/{chat.id}/messages", json=too_long, headers=chat.headers), 422)
    assert_error(await anon.post(f"/api/chat/{chat.id}/messages", json={"client_id": "empty-0001", "text": "  "},
                                 headers=chat.headers), 422)  # fmt: skip
    assert_error(await anon.post(f"/api/chat/{chat.id}/messages", json={"client_id": "x", "text": "hi"},
                                 headers=chat.headers), 422)  # fmt: skip
    script = "<script>alert(1)</script>"
    stored = await chat.say(script)
    assert stored["message"]["text"] == script  # kept as written; every page escapes it
    statuses = [
        (await anon.post(f"/api/chat/{chat.id}/messages", json={"client_id": f"flood-{n:04d}", "text": "喂"},
                         headers=chat.headers)).status_code
        for n in range(12)
    ]  # fmt: skip
    assert 429 in statuses and statuses.count(201) == 7
    before = len(await chat.messages())
    assert_error(await anon.post(f"/api/chat/{chat.id}/messages", json={"client_id": "flood-9999", "text": "喂"},
                                 headers=chat.headers), 429, "rate_limited")  # fmt: skip
    assert len(await chat.messages()) == before


async def test_pictures_are_checked_by_their_bytes(anon: Client) -> None:
    chat = await start(anon)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    first = {"client_id": "image-0001"}
    sent = await ok(await anon.post(f"/api/chat/{chat.id}/images", headers=chat.headers, data=first,
                                    files={"file": ("x.png", png, "image/png")}), 201)  # fmt: skip
    assert sent["message"]["kind"] == "image"
    served = await anon.get(sent["message"]["data"]["url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/png" and served.content == png
    fake = await anon.post(f"/api/chat/{chat.id}/images", headers=chat.headers, data={"client_id": "image-0002"},
                           files={"file": ("x.png", b"MZ not a picture", "image/png")})  # fmt: skip
    assert_error(fake, 422)
    huge = b"\x89PNG\r\n\x1a\n" + b"\x00" * (2 * 1024 * 1024)
    assert_error(await anon.post(f"/api/chat/{chat.id}/images", headers=chat.headers, data={"client_id": "image-0003"},
                                 files={"file": ("x.png", huge, "image/png")}), 422)  # fmt: skip
    assert (await anon.get("/chat/images/nope")).status_code == 404


async def test_a_phone_is_verified_by_a_one_time_code(app: Any, admin: Client, anon: Client) -> None:
    template = {
        "code": "chat_code",
        "name": "验证码",
        "audience": "code",
        "body": "验证码{code}，{minutes}分钟内有效",
        "variables": ["code", "minutes"],
    }
    await ok(await admin.post("/api/channels/sms/templates", json=template), 201)
    chat = await start(anon)
    sent = await chat.post("code", {"phone": "13812345678"})
    assert sent["phone_masked"].endswith("138****5678")
    async with app.state.pl.db.sessions() as session:
        text = (await session.scalars(select(SmsMessage.text).where(SmsMessage.template_code == "chat_code"))).one()
    code = "".join(ch for ch in text if ch.isdigit())[:6]
    wrong = "000000" if code != "000000" else "111111"
    assert_error(await anon.post(f"/api/chat/{chat.id}/verify", json={"code": wrong}, headers=chat.headers), 422)
    assert_error(await anon.post(f"/api/chat/{chat.id}/verify", json={"code": "12ab"}, headers=chat.headers), 422)
    verified = await chat.post("verify", {"code": code})
    assert verified["identified"] is True
    assert (await chat.messages())[-1]["kind"] == "identified"


async def test_the_end_codes_the_contact_and_a_bad_code_changes_nothing(
    admin: Client, anon: Client, as_user: Any
) -> None:
    code = await ok(await admin.post("/api/dispositions", json={"code": "ANSWERED", "name": "已解答"}), 201)
    async with ready_agent(as_user, admin) as (agent, _agent_id):
        chat = await start(anon)
        await chat.say("转人工")
        offer = (await ok(await agent.get("/api/routing/me")))["offer"]
        contact_id = (await ok(await agent.post(f"/api/routing/tasks/{offer['task_id']}/accept")))["contact_id"]
        assert_error(await agent.post(f"/api/chat-desk/{chat.id}/end", json={"disposition_ids": [999999]}), 422)
        assert (await chat.state())["state"] == "agent"
        ended = await ok(await agent.post(f"/api/chat-desk/{chat.id}/end", json={"disposition_ids": [code["id"]]}))
        assert ended["state"] == "closed"
        contact = await ok(await agent.get(f"/api/contacts/{contact_id}"))
        assert contact["status"] == "closed" and contact["disposition_ids"] == [code["id"]]
        assert contact["channel"] == "chat"


async def test_stranded_and_idle_chats_are_tidied(app: Any, admin: Client, anon: Client, as_user: Any) -> None:
    async with ready_agent(as_user, admin):
        waiting = await start(anon)
        await waiting.say("转人工")
        idle = await start(anon)
        db = app.state.pl.db
        async with db.sessions() as session:
            conversation = await webchat.get(session, public_id=waiting.id)
            task_id = conversation.routing_task_id
        await app.state.pl.routing.abandon(task_id)
        clock.set_now(clock.now() + timedelta(minutes=31))
        async with db.sessions() as session, session.begin():
            assert await dialogue.stranded(session) == 1
            assert await dialogue.close_idle(session, idle_minutes=30) == 1  # the stranded one was just offered more
    offered = [m for m in await waiting.messages() if m["kind"] == "choices"]
    assert offered and offered[-1]["data"]["options"][0]["choice"] == "message"
    assert (await idle.state())["state"] == "closed"
    assert (await idle.messages())[-1]["data"] == {"by": "idle"}


async def test_ended_chats_are_deleted_after_the_retention_period(app: Any, anon: Client) -> None:
    old, recent = await start(anon), await start(anon)
    await old.post("end")
    clock.set_now(clock.now() + timedelta(days=400))
    await recent.post("end")
    async with app.state.pl.db.sessions() as session, session.begin():
        assert await webchat.purge_before(session, cutoff=clock.now() - timedelta(days=365)) == 1
    assert_error(await anon.get(f"/api/chat/{old.id}", headers=old.headers), 403, "chat_session_invalid")
    assert (await recent.state())["state"] == "closed"


async def test_a_named_department_s_seats_come_first(admin: Client, anon: Client, as_user: Any) -> None:
    site = await ok(await admin.post("/api/directory/sites", json={"code": "MAIN", "name": "本院"}), 201)
    department = {"code": "XNK", "name": "心内科", "site_id": site["id"]}
    cardiology = await ok(await admin.post("/api/directory/departments", json=department), 201)
    team = await ok(await admin.post("/api/directory/teams", json={
        "code": "XNK-SEATS", "name": "心内科坐席", "kind": "department_seats", "department_id": cardiology["id"],
    }), 201)  # fmt: skip
    seats = await ok(await admin.post("/api/routing/queues", json={
        "code": "XNK-SEATS", "name": "心内科坐席", "kind": "department_seats", "team_id": team["id"],
    }), 201)  # fmt: skip
    async with ready_agent(as_user, admin) as (agent, agent_id):
        await ok(await admin.put(f"/api/routing/queues/{seats['id']}/members", json=[{"user_id": agent_id, "tier": 1}]))
        chat = await start(anon)
        await chat.say("我想找心内科的护士问问，转人工")
        assert (await chat.state())["state"] == "queued"
        offer = (await ok(await agent.get("/api/routing/me")))["offer"]
        assert offer["queue_id"] == seats["id"] and offer["channel"] == "chat"


async def test_with_nobody_logged_in_the_patient_is_offered_a_message(admin: Client, anon: Client) -> None:
    await ok(await admin.post("/api/routing/queues", json={"code": "GENERAL", "name": "综合咨询"}), 201)
    chat = await start(anon)
    await chat.say("转人工")
    assert (await chat.state())["state"] == "bot"
    offered = (await chat.messages())[-1]
    assert offered["kind"] == "choices" and offered["data"]["options"][0]["choice"] == "message"
