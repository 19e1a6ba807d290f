"""IVR flows as data: the draft is saved while it has problems, published only without them (every
branch leads somewhere, every node reachable, a way out from every node, queues and items that exist),
versions are kept and an earlier one can go back live; only those who configure voice may do it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from helpers import Client, assert_error
from patientline.core.audit import AuditEntry
from patientline.voice.flows import FlowDefinition, problems


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def main_line(queue_id: int) -> dict[str, Any]:
    """Greeting, a holiday notice, opening hours, a menu: 1 an MRN then the queue, 2 a callback, 0 voicemail."""
    return {"start": "welcome", "nodes": [
        {"type": "play", "id": "welcome", "prompt": {"text": "您好，欢迎致电患者服务热线。"}, "next": "notice"},
        {"type": "announcement", "id": "notice", "prompt": {"text": "春节期间门诊安排有调整。"},
         "active_from": "2027-02-01", "active_until": "2027-02-20", "next": "hours"},
        {"type": "hours", "id": "hours", "hours": "08:00-17:30", "open": "menu", "closed": "voicemail"},
        {"type": "menu", "id": "menu", "prompt": {"text": "预约请按1，回电请按2，留言请按0。"},
         "choices": {"1": "mrn", "2": "callback", "0": "voicemail"}, "otherwise": "queue"},
        {"type": "collect", "id": "mrn", "prompt": {"text": "请输入病历号，以井号结束。"}, "kind": "mrn",
         "min_digits": 6, "max_digits": 12, "next": "queue", "otherwise": "queue"},
        {"type": "transfer", "id": "queue", "queue_id": queue_id},
        {"type": "callback", "id": "callback", "prompt": {"text": "我们会尽快回电。"}, "queue_id": queue_id},
        {"type": "voicemail", "id": "voicemail", "prompt": {"text": "请在提示音后留言。"}},
    ]}  # fmt: skip


@pytest.fixture
async def queue_id(admin: Client) -> int:
    return int(ok(await admin.post("/api/routing/queues", json={"code": "GENERAL", "name": "综合咨询"}), 201)["id"])


def test_a_flow_needs_known_branches_a_reachable_node_and_a_way_out() -> None:
    flow = FlowDefinition.model_validate(main_line(1))
    assert problems(flow) == []
    nodes = main_line(1)["nodes"]
    nodes[3]["choices"]["9"] = "nowhere"
    found = problems(FlowDefinition.model_validate({"start": "welcome", "nodes": nodes}))
    assert [(p["node"], p["field"], p["problem"]) for p in found] == [("menu", "choices.9", "unknown")]
    loop = {"start": "a", "nodes": [
        {"type": "menu", "id": "a", "prompt": {"text": "x"}, "choices": {"1": "b"}, "otherwise": "a"},
        {"type": "play", "id": "b", "prompt": {"text": "y"}, "next": "a"},
        {"type": "hangup", "id": "bye"},
    ]}  # fmt: skip
    found = problems(FlowDefinition.model_validate(loop))
    assert {(p["node"], p["problem"]) for p in found} == {
        ("bye", "unreachable"),
        ("a", "no_way_out"),
        ("b", "no_way_out"),
    }
    twice = {"start": "x", "nodes": [{"type": "hangup", "id": "x"}, {"type": "hangup", "id": "x"}]}
    assert [p["problem"] for p in problems(FlowDefinition.model_validate(twice))] == ["duplicate"]


@pytest.mark.parametrize(
    "node",
    [
        {"type": "teleport", "id": "x"},
        {"type": "transfer", "id": "x"},
        {"type": "transfer", "id": "x", "queue_id": 1, "number": "01067098585"},
        {"type": "transfer", "id": "x", "number": "12"},
        {
            "type": "collect",
            "id": "x",
            "prompt": {"text": "a"},
            "kind": "mrn",
            "min_digits": 9,
            "max_digits": 3,
            "next": "x",
            "otherwise": "x",
        },
        {"type": "menu", "id": "x", "prompt": {"text": "a"}, "choices": {"12": "x"}, "otherwise": "x"},
        {"type": "hours", "id": "x", "hours": "18:00-08:00", "open": "x", "closed": "x"},
        {
            "type": "announcement",
            "id": "x",
            "prompt": {"text": "a"},
            "active_from": "2027-02-20",
            "active_until": "2027-02-01",
            "next": "x",
        },
        {"type": "play", "id": "Bad Id", "prompt": {"text": "a"}, "next": "x"},
        {"type": "play", "id": "x", "prompt": {"text": ""}, "next": "x"},
    ],
)
def test_malformed_nodes_are_refused(node: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        FlowDefinition.model_validate({"start": "x", "nodes": [node]})


async def test_a_draft_with_problems_is_saved_but_not_published(admin: Client, queue_id: int) -> None:
    created = ok(await admin.post("/api/voice/flows", json={"name": "主线 8585", "number": "8585"}), 201)
    assert created["problems"] == [] and created["live_version"] is None
    broken = main_line(queue_id)
    broken["nodes"][3]["choices"]["9"] = "nowhere"
    saved = ok(await admin.patch(f"/api/voice/flows/{created['id']}", json={"version": 1, "draft": broken}))
    assert [p["node"] for p in saved["problems"]] == ["menu"] and saved["draft"]["nodes"][3]["choices"]["9"]
    refused = assert_error(await admin.post(f"/api/voice/flows/{created['id']}/publish", json={"version": 2}), 422,
                           "flow_not_publishable")  # fmt: skip
    assert refused["details"][0]["field"] == "choices.9"
    saved = ok(
        await admin.patch(f"/api/voice/flows/{created['id']}", json={"version": 2, "draft": main_line(queue_id)})
    )
    assert saved["problems"] == []
    published = ok(await admin.post(f"/api/voice/flows/{created['id']}/publish",
                                    json={"version": 3, "note": "春节通知"}), 201)  # fmt: skip
    assert published["number"] == 1 and published["definition"]["start"] == "welcome"


async def test_queues_and_knowledge_items_named_must_exist(admin: Client, queue_id: int) -> None:
    flow = main_line(queue_id + 100)
    flow["nodes"].append({"type": "knowledge", "id": "faq", "item_id": 999_999, "next": "queue"})
    flow["nodes"][3]["choices"]["3"] = "faq"
    created = ok(await admin.post("/api/voice/flows", json={"name": "坏", "draft": flow}), 201)
    assert {(p["node"], p["field"]) for p in created["problems"]} == {
        ("queue", "queue_id"),
        ("callback", "queue_id"),
        ("faq", "item_id"),
    }


async def test_versions_are_kept_and_an_earlier_one_goes_back_live(admin: Client, db: Any, queue_id: int) -> None:
    flow = ok(
        await admin.post("/api/voice/flows", json={"name": "主线", "number": "8585", "draft": main_line(queue_id)}), 201
    )
    ok(await admin.post(f"/api/voice/flows/{flow['id']}/publish", json={"version": 1}), 201)
    changed = main_line(queue_id)
    changed["nodes"][0]["prompt"]["text"] = "新的问候语。"
    ok(await admin.patch(f"/api/voice/flows/{flow['id']}", json={"version": 2, "draft": changed}))
    ok(await admin.post(f"/api/voice/flows/{flow['id']}/publish", json={"version": 3}), 201)
    listed = ok(await admin.get(f"/api/voice/flows/{flow['id']}/versions"))
    assert [v["number"] for v in listed] == [2, 1] and listed[0]["definition"]["nodes"][0]["prompt"][
        "text"
    ] == "新的问候语。"
    back = ok(await admin.post(f"/api/voice/flows/{flow['id']}/live", json={"version": 4, "number": 1}))
    assert back["live_version"] == 1 and back["draft"]["nodes"][0]["prompt"]["text"] == "新的问候语。"
    assert_error(await admin.post(f"/api/voice/flows/{flow['id']}/live", json={"version": 5, "number": 7}), 404)
    assert_error(await admin.delete(f"/api/voice/flows/{flow['id']}?version=5"), 409, "flow_published")
    async with db.sessions() as session:
        actions = list(await session.scalars(select(AuditEntry.action).where(AuditEntry.action.startswith("voice."))))
    assert actions.count("voice.flow.publish") == 2 and "voice.flow.go_live" in actions


async def test_names_and_numbers_are_unique_and_stale_edits_refused(admin: Client) -> None:
    first = ok(await admin.post("/api/voice/flows", json={"name": "主线", "number": "8585"}), 201)
    assert_error(await admin.post("/api/voice/flows", json={"name": "主线"}), 409, "flow_taken")
    assert_error(await admin.post("/api/voice/flows", json={"name": "另一条", "number": "8585"}), 409, "flow_taken")
    assert_error(await admin.post("/api/voice/flows", json={"name": "x", "number": "85-85"}), 422)
    assert_error(await admin.patch(f"/api/voice/flows/{first['id']}", json={"version": 9, "name": "y"}), 409)
    assert_error(await admin.get("/api/voice/flows/999999"), 404)
    ok(await admin.delete(f"/api/voice/flows/{first['id']}?version=1"), 204)


async def test_only_those_who_configure_voice_see_flows(as_user: Any, admin: Client) -> None:
    ok(await admin.post("/api/voice/flows", json={"name": "主线"}), 201)
    async with as_user("agent01", ["agent"]) as agent:
        assert_error(await agent.get("/api/voice/flows"), 403)
        assert_error(await agent.post("/api/voice/flows", json={"name": "x"}), 403)
    async with as_user("super1", ["supervisor"]) as supervisor:
        assert [flow["name"] for flow in ok(await supervisor.get("/api/voice/flows"))] == ["主线"]
