"""IVR flow pages over HTTP: only those who configure voice open them (supervisors too, agents not); the
list's empty state, then each flow with its live version, its draft's problems and unpublished changes;
the editor's payload (the draft with its version and problems, the versions, queues and knowledge items
to choose from) and its texts in the reader's language."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from helpers import Client

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
        for path in ("/voice/flows", f"/voice/flows/{flow['id']}"):
            assert (await agent.get(path)).status_code == 403, path
        assert 'href="/voice/flows"' not in await page(agent, "/")


async def test_a_supervisor_finds_the_empty_list_under_administration(as_user: Any) -> None:
    async with as_user("super01", ["supervisor"]) as supervisor:
        english(supervisor)
        text = await page(supervisor, "/voice/flows")
        assert 'data-testid="flows-empty"' in text and "Create the first flow" in text
        assert 'data-testid="flow-list"' not in text
        assert "/static/voice-flows.js" in text and "/static/voice-flows.css" in text
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
