"""Routing pages over HTTP: the agent bar in the shell (only for people who handle contacts, in their
language), the wallboard (supervisors only, empty and big-screen states), and the queue administration
(configurers only: the list, its empty state, the editor's payload with the version it edits, members
and agents' profiles)."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from helpers import Client

QUEUE = {
    "code": "OPD",
    "name": "门诊咨询",
    "sl_target": 0.8,
    "sl_seconds": 20,
    "wrap_up": "on_request",
    "wrap_up_s": 60,
}


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


async def test_the_agent_bar_is_in_the_shell_of_people_who_handle_contacts(as_user: Any) -> None:
    async with as_user("agent01", ["agent"]) as agent, as_user("handler01", ["handler"]) as handler:
        english(agent, handler)
        home = await page(agent, "/")
        assert 'x-data="agentBar()"' in home
        assert "/static/routing-bar.js" in home and "/static/routing.css" in home
        texts = json_block(home, "rt-bar-texts")
        assert texts["status"]["not_ready"] == "Not ready"
        assert texts["reason"]["meal"] == "Meal"
        assert "Alt+A" in home  # the shortcuts: in the bar's title and the help dialog
        assert "Accept the ringing offer" in home

        elsewhere = await page(agent, "/kb")
        assert 'x-data="agentBar()"' in elsewhere

        not_an_agent = await page(handler, "/")
        assert "agentBar()" not in not_an_agent
        assert "routing-bar.js" not in not_an_agent
        assert "rt-bar-texts" not in not_an_agent


async def test_the_agent_bar_speaks_chinese_by_default(as_user: Any) -> None:
    async with as_user("agent02", ["agent"]) as agent:
        texts = json_block(await page(agent, "/"), "rt-bar-texts")
        assert texts["status"]["ready"] == "示闲"
        assert texts["status"]["not_ready"] == "示忙"
        assert texts["status"]["wrap_up"] == "话后处理"


async def test_agents_cannot_open_the_wallboard_or_the_queue_administration(as_user: Any) -> None:
    async with as_user("agent03", ["agent"]) as agent:
        for path in ("/routing/wallboard", "/routing/wallboard?big=1", "/routing/queues", "/routing/queues/new"):
            assert (await agent.get(path)).status_code == 403, path
        nav = await page(agent, "/")
        assert 'href="/routing/wallboard"' not in nav
        assert 'href="/routing/queues"' not in nav


async def test_supervisors_open_the_wallboard_but_not_the_queue_settings(as_user: Any) -> None:
    async with as_user("super01", ["supervisor"]) as supervisor:
        english(supervisor)
        board = await page(supervisor, "/routing/wallboard")
        assert 'x-data="wallboard()"' in board
        assert "/static/routing-wallboard.js" in board
        assert 'data-testid="wallboard-empty"' in board  # shown once the live figures say there are no queues
        assert "An administrator creates queues under Queues." in board
        assert "/routing/queues/new" not in board
        texts = json_block(board, "rt-wallboard-texts")
        assert texts["alerts"]["service_level"] == "Service level below target"
        assert (await supervisor.get("/routing/wallboard?big=1")).status_code == 200
        assert (await supervisor.get("/routing/queues")).status_code == 403
        assert (await supervisor.get("/routing/queues/new")).status_code == 403


async def test_the_queue_list_is_empty_before_the_first_queue(admin: Client, make_user: Any) -> None:
    english(admin)
    await make_user("agent04", ["agent"])
    text = await page(admin, "/routing/queues")
    assert 'data-testid="queues-empty"' in text
    assert "Create the first queue" in text
    # every agent has a profile row, with the default capacities until one is saved
    row = re.search(r'<tr x-data="profileRow\((.*?)\)" data-agent-id="(\d+)"', text, re.S)
    assert row, "no profile rows"
    rows = re.findall(r'x-data="profileRow\((\{.*?\}), \[', text, re.S)
    profiles = {p["username"]: p for p in (json.loads(html.unescape(r)) for r in rows)}
    assert profiles["agent04"]["capacities"] == {"voice": 1, "chat": 3, "callback": 1}
    assert profiles["agent04"]["version"] is None
    assert "root" in profiles  # the administrator handles contacts too

    new = await page(admin, "/routing/queues/new")
    data = json_block(new, "rt-queue-data")
    assert data["queue"]["id"] is None and data["queue"]["version"] is None
    assert data["queue"]["sl_target"] == 0.8 and data["queue"]["hours"] == "00:00-24:00"
    assert data["queue"]["widen_after_s"] == []
    assert data["members"] == []
    assert any(a["name"].startswith("Agent04") for a in data["agents"])


async def test_the_queue_editor_edits_the_saved_queue_and_its_members(admin: Client, make_user: Any) -> None:
    english(admin)
    agent = await make_user("agent05", ["agent"])
    await make_user("handler05", ["handler"])  # does not handle contacts: not offered as a member
    created = await admin.post("/api/routing/queues", json=QUEUE)
    assert created.status_code == 201, created.text
    queue = created.json()
    members = await admin.put(f"/api/routing/queues/{queue['id']}/members", json=[{"user_id": agent, "tier": 2}])
    assert members.status_code == 200, members.text
    overflow = await admin.post("/api/routing/queues", json={"code": "EXPERT", "name": "专家中心"})
    assert overflow.status_code == 201, overflow.text

    listed = await page(admin, "/routing/queues")
    assert "queues-empty" not in listed
    row = re.search(rf'<tr data-queue-id="{queue["id"]}">(.*?)</tr>', listed, re.S)
    assert row, "the queue is not listed"
    assert "门诊咨询" in row.group(1) and "80 % · 20 s" in row.group(1)
    assert re.search(r"<td>1</td>", row.group(1)), "one member"
    assert "门诊咨询 (2)" in listed  # the agent's profile row names the queue and the tier

    text = await page(admin, f"/routing/queues/{queue['id']}")
    data = json_block(text, "rt-queue-data")
    assert data["queue"]["id"] == queue["id"]
    assert data["queue"]["version"] == queue["version"]
    assert data["queue"]["wrap_up"] == "on_request" and data["queue"]["wrap_up_s"] == 60
    assert data["members"] == [{"user_id": agent, "tier": 2}]
    assert all("handler05" not in a["name"] for a in data["agents"])
    # it may overflow to the other queue, never to itself
    choices = re.search(r'<select id="q-overflow".*?</select>', text, re.S)
    assert choices, "no overflow choices"
    assert re.findall(r'<option value="(\d+)">', choices.group(0)) == [str(overflow.json()["id"])]

    assert (await admin.get("/routing/queues/999999")).status_code == 404
    assert (await admin.get("/routing/queues/0")).status_code == 422
