"""Voice pages over HTTP. IVR flows: only those who configure voice open them (supervisors too, agents
not); the list's empty state, then each flow with its live version, its draft's problems and unpublished
changes; the editor's payload (the draft with its version and problems, the versions, queues and
knowledge items to choose from) and its texts in the reader's language. Live calls: supervisors only,
with the names its script shows and the line's state (off in a server without the voice role). The call
log: everyone who handles contacts (an agent their own calls), with its empty state, each call's
outcome in words, names, duration and a Play button where there is a recording. The agent bar carries
the call controls of a voice task."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from helpers import Client
from patientline.core.auth.models import User
from patientline.voice.models import VoiceCall

GREETING_AND_TRANSFER = {"start": "welcome", "nodes": [
    {"type": "play", "id": "welcome", "prompt": {"text": "您好，欢迎致电。"}, "next": "menu"},
    {"type": "menu", "id": "menu", "prompt": {"text": "人工服务请按0。"}, "choices": {"0": "desk"}, "otherwise": "bye"},
    {"type": "transfer", "id": "desk", "number": "01067098585"},
    {"type": "hangup", "id": "bye"},
]}  # fmt: skip


def english(*clients: Client) -> None:
    for client in clients:
        client.http.cookies.set("pl_lang", "en")


async def page(client: Client, path: str, status: int = 200) -> str:
    response = await client.get(path)
    assert response.status_code == status, response.text
    return response.text


def json_block(text: str, element_id: str) -> Any:
    match = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', text, re.S)
    assert match, f"no #{element_id}"
    return json.loads(html.unescape(match.group(1)))


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


async def knowledge_item(admin: Client, category_id: int, question: str, *, publish: bool, **values: Any) -> int:
    item = ok(await admin.post("/api/kb/items", json={"category_id": category_id, "question": question} | values), 201)
    for step in ("submit", "publish") if publish else ():
        item = ok(await admin.post(f"/api/kb/items/{item['id']}/transitions/{step}", json={"version": item["version"]}))
    return int(item["id"])


def flow_row(text: str, flow_id: int) -> str:
    row = re.search(rf'<tr data-flow-id="{flow_id}">(.*?)</tr>', text, re.S)
    assert row, f"flow {flow_id} is not listed"
    return row.group(1)


async def test_agents_cannot_open_the_flow_pages(as_user: Any, admin: Client) -> None:
    flow = ok(await admin.post("/api/voice/flows", json={"name": "主线"}), 201)
    async with as_user("agent01", ["agent"]) as agent:
        for path in ("/voice/flows", f"/voice/flows/{flow['id']}", "/voice/prompts"):
            assert (await agent.get(path)).status_code == 403, path
        assert 'href="/voice/flows"' not in await page(agent, "/")


async def test_the_recorded_prompts_page_starts_empty_and_offers_the_upload(as_user: Any) -> None:
    async with as_user("super02", ["supervisor"]) as supervisor:
        english(supervisor)
        text = await page(supervisor, "/voice/prompts")
        assert 'data-testid="prompts-empty"' in text and "Upload the first recording" in text
        assert 'data-multipart data-method="POST" data-action="/api/voice/prompts"' in text


async def test_a_supervisor_finds_the_empty_list_under_administration(as_user: Any) -> None:
    async with as_user("super01", ["supervisor"]) as supervisor:
        english(supervisor)
        text = await page(supervisor, "/voice/flows")
        assert 'data-testid="flows-empty"' in text and "Create the first flow" in text
        assert 'data-testid="flow-list"' not in text
        assert "/static/voice-flows.css" in text and 'href="/voice/prompts"' in text
        assert re.search(r'<a href="/voice/flows"\s+aria-current="page" class="active"\s*>IVR flows</a>', text)
        # the new-flow dialog posts to the API and opens the editor of the flow it made
        assert 'data-action="/api/voice/flows"' in text and 'data-success-template="/voice/flows/{id}"' in text


async def test_the_list_tells_the_live_version_problems_and_unpublished_changes(admin: Client) -> None:
    english(admin)
    live = ok(await admin.post("/api/voice/flows", json={"name": "主线 8585", "number": "8585"}), 201)
    ok(await admin.post(f"/api/voice/flows/{live['id']}/publish", json={"version": 1}), 201)
    broken = json.loads(json.dumps(GREETING_AND_TRANSFER))
    broken["nodes"][1]["choices"]["9"] = "nowhere"
    draft = ok(await admin.post("/api/voice/flows", json={"name": "草稿", "draft": broken}), 201)

    text = await page(admin, "/voice/flows")
    assert "flows-empty" not in text
    row = flow_row(text, live["id"])
    assert "主线 8585" in row and "<code>8585</code>" in row
    assert "Version 1" in row and "Same as the live version" in row and "problem" not in row
    row = flow_row(text, draft["id"])
    assert "Not published" in row and "no number" in row and "1 problem" in row

    changed = json.loads(json.dumps(GREETING_AND_TRANSFER))
    ok(await admin.patch(f"/api/voice/flows/{live['id']}", json={"version": 2, "draft": changed}))
    assert "Unpublished changes" in flow_row(await page(admin, "/voice/flows"), live["id"])


async def test_the_editor_carries_the_draft_the_versions_and_what_nodes_may_name(admin: Client) -> None:
    queue = ok(await admin.post("/api/routing/queues", json={"code": "GENERAL", "name": "综合咨询"}), 201)
    category = ok(await admin.post("/api/kb/categories", json={"code": "GUIDE", "name": "就医指南"}), 201)["id"]
    parking = await knowledge_item(admin, category, "停车场在哪里？", publish=True, spoken="停车场在门诊楼北侧。")
    await knowledge_item(admin, category, "内部排班规则", publish=True, public=False)
    await knowledge_item(admin, category, "尚未发布的问题", publish=False)
    flow = ok(await admin.post("/api/voice/flows", json={"name": "主线", "draft": GREETING_AND_TRANSFER}), 201)
    ok(await admin.post(f"/api/voice/flows/{flow['id']}/publish", json={"version": 1, "note": "第一版"}), 201)
    broken = json.loads(json.dumps(GREETING_AND_TRANSFER))
    broken["nodes"][2] = {"type": "transfer", "id": "desk", "queue_id": queue["id"] + 100}
    ok(await admin.patch(f"/api/voice/flows/{flow['id']}", json={"version": 2, "draft": broken}))

    text = await page(admin, f"/voice/flows/{flow['id']}")
    data = json_block(text, "vf-data")
    assert data["flow"]["id"] == flow["id"] and data["flow"]["version"] == 3 and data["flow"]["live_version"] == 1
    assert data["flow"]["draft"] == ok(await admin.get(f"/api/voice/flows/{flow['id']}"))["draft"]
    assert [node["id"] for node in data["flow"]["draft"]["nodes"]] == ["welcome", "menu", "desk", "bye"]
    assert [(p["node"], p["field"], p["problem"]) for p in data["flow"]["problems"]] == [
        ("desk", "queue_id", "unknown")
    ]
    assert [(v["number"], v["note"]) for v in data["versions"]] == [(1, "第一版")]
    assert "definition" not in data["versions"][0]
    assert data["people"][str(data["versions"][0]["published_by_id"])]  # who published, by name
    assert data["queues"] == [{"id": queue["id"], "name": "综合咨询 (GENERAL)", "active": True}]
    assert data["items"] == [{"id": parking, "question": "停车场在哪里？", "spoken": True}]  # published, public
    assert data["kinds"][0] == "play" and "hangup" in data["kinds"] and "hangup" in data["ends"]
    assert data["timezone"]
    texts = json_block(text, "vf-texts")  # Chinese by default
    assert texts["kinds"]["menu"] == "按键菜单" and texts["branches"]["key"] == "按键 {key}"

    english(admin)
    texts = json_block(await page(admin, f"/voice/flows/{flow['id']}"), "vf-texts")
    assert texts["kinds"]["menu"] == "Menu of keys" and texts["go_to"] == "→ go to node {id}"
    assert (await admin.get("/voice/flows/999999")).status_code == 404
    assert (await admin.get("/voice/flows/0")).status_code == 422


# ---- live calls and the call log -------------------------------------------------------------------------


async def user_id(db: Any, username: str) -> int:
    async with db.sessions() as session:
        found = await session.scalar(select(User.id).where(User.username == username))
    assert found is not None
    return int(found)


async def logged_call(db: Any, *, minutes_ago: int, **values: Any) -> int:
    """A call as the line writes it when it ends (tests/voice/test_voice_calls.py makes real ones)."""
    started = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    fields = {"caller": "+8613912345678", "outcome": "queue", "end_reason": "caller_hung_up"} | values
    row = VoiceCall(sip_call_id=f"call-{minutes_ago}", dialled="8585", worker="w1", started_at=started,
                    ended_at=started + timedelta(seconds=95), ivr={"path": ["welcome"]}, events=[],
                    **fields)  # fmt: skip
    async with db.sessions() as session, session.begin():
        session.add(row)
    return int(row.id)


def call_row(text: str, call_id: int) -> str:
    row = re.search(rf'<tr data-call-id="{call_id}"[^>]*>(.*?)</tr>', text, re.S)
    assert row, f"call {call_id} is not listed"
    return row.group(1)


async def test_live_calls_are_for_supervisors_and_say_when_the_line_is_off(
    as_user: Any, admin: Client, db: Any
) -> None:
    queue = ok(await admin.post("/api/routing/queues", json={"code": "GENERAL", "name": "综合咨询"}), 201)
    async with as_user("agent01", ["agent"]) as agent:
        assert (await agent.get("/voice/live")).status_code == 403
        home = await page(agent, "/")
        assert 'href="/voice/live"' not in home and 'href="/voice/calls"' in home  # the call log is theirs too
    async with as_user("handler01", ["handler"]) as handler:
        assert (await handler.get("/voice/live")).status_code == 403
    async with as_user("super01", ["supervisor"]) as supervisor:
        english(supervisor)
        text = await page(supervisor, "/voice/live")
        assert re.search(r'<a href="/voice/live"\s+aria-current="page" class="active"\s*>Live calls</a>', text)
        assert "/static/voice-live.js" in text and "/static/voice.css" in text
        data = json_block(text, "vl-data")
        assert data["line_on"] is False  # this server runs no voice role
        assert data["queues"] == {str(queue["id"]): "综合咨询"}
        assert data["people"][str(await user_id(db, "agent01"))] == "Agent01"
        assert "handler01" not in {name.lower() for name in data["people"].values()}  # handles no contacts
        # the line-off state is shown at once (not hidden until the script runs); the empty state waits for it
        off = re.search(r'<div class="empty" x-show="state === \'off\'"([^>]*)>', text)
        assert off and "x-cloak" not in off.group(1) and 'data-testid="line-off"' in off.group(1)
        assert "The phone line is not running on this server." in text
        assert 'data-testid="live-empty"' in text and "No calls on the line right now." in text
        assert "registered to the line as super01" in text
        texts = json_block(text, "vl-texts")
        assert texts["stages"]["talking"] == "Talking" and texts["watch"]["barge"] == "Supervisor on the call"
        answer = await supervisor.get("/api/voice/live")
        assert answer.status_code == 409 and answer.json()["error_id"] == "voice_off"

        supervisor.http.cookies.delete("pl_lang")  # Chinese by default
        texts = json_block(await page(supervisor, "/voice/live"), "vl-texts")
        assert texts["stages"]["talking"] == "通话中" and texts["confirm_hang_up"].count("{caller}") == 1


async def test_the_call_log_lists_calls_in_words_and_offers_the_recordings(
    as_user: Any, admin: Client, db: Any
) -> None:
    queue = ok(await admin.post("/api/routing/queues", json={"code": "GENERAL", "name": "综合咨询"}), 201)
    async with as_user("handler01", ["handler"]) as handler:
        assert (await handler.get("/voice/calls")).status_code == 403
        assert 'href="/voice/calls"' not in await page(handler, "/")
    async with as_user("agent01", ["agent"]) as agent, as_user("agent02", ["agent"]) as other:
        english(agent, other)
        text = await page(agent, "/voice/calls")
        assert 'data-testid="calls-empty"' in text and "The calls you answer are listed here" in text
        assert 'data-testid="call-log"' not in text

        agent_id = await user_id(db, "agent01")
        answered = await logged_call(db, minutes_ago=30, queue_id=queue["id"], agent_id=agent_id,
                                     connected_at=datetime.now(UTC), end_reason="agent_hung_up",
                                     recording="2026/01/01/x.wav", recording_seconds=62.4)  # fmt: skip
        left = await logged_call(db, minutes_ago=10, caller="anonymous", outcome="voicemail", end_reason="voicemail")
        text = await page(agent, "/voice/calls")
        assert "The calls you answered, newest first." in text
        assert f'data-call-id="{left}"' not in text  # not theirs
        row = call_row(text, answered)
        assert "139****5678" in row and "13912345678" not in row
        assert "The agent hung up" in row and "综合咨询" in row and "Agent01" in row
        assert '<td class="num nowrap">1:35</td>' in row
        assert f'data-play="/api/voice/calls/{answered}/recording"' in row and "1:02" in row
        assert "/static/voice-calls.js" in text
        assert json_block(text, "vc-texts")["cannot_play"].startswith("The recording cannot be played")
        assert 'data-testid="calls-empty"' in await page(other, "/voice/calls")

    english(admin)
    text = await page(admin, "/voice/calls")
    assert "Every call through the hotline, newest first." in text
    assert text.index(f'data-call-id="{left}"') < text.index(f'data-call-id="{answered}"')  # newest first
    row = call_row(text, left)
    assert "anonymous" in row and "Voicemail left" in row and "data-play" not in row
    assert '<option value="voicemail">Voicemail left</option>' in text  # the filter offers the ways calls ended
    assert 'data-call-id="' in await page(admin, "/voice/calls?limit=1")
    assert (await admin.get("/voice/calls?limit=0")).status_code == 422


async def test_the_agent_bar_carries_the_call_controls(as_user: Any) -> None:
    async with as_user("agent01", ["agent"]) as agent:
        english(agent)
        text = await page(agent, "/kb")
        assert 'data-testid="call-controls"' in text and "/static/voice.css" in text
        assert "Alt+H" in text and "Hand the caller over" in text and "Drop the colleague" in text
        texts = json_block(text, "rt-bar-texts")
        assert texts["call"]["whisper"] == "Supervisor whispering" and "listen" not in texts["call"]
