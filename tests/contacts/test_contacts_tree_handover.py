"""The disposition tree (unique codes, no cycles, three levels, reorder, in-use codes only deactivated)
and the shift handover (one per shift, acknowledged once by someone other than the author, items ticked)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ct_base import make_tree, ok, record
from sqlalchemy import select

from helpers import Client, assert_error
from patientline.core import clock
from patientline.core.audit import AuditEntry


async def audit_actions(db: Any, prefix: str) -> list[str]:
    async with db.sessions() as session:
        rows = await session.scalars(select(AuditEntry.action).where(AuditEntry.action.startswith(prefix)))
        return list(rows)


def find(nodes: list[dict[str, Any]], code: str) -> dict[str, Any]:
    for node in nodes:
        if node["code"] == code:
            return node
        try:
            return find(node["children"], code)
        except KeyError:
            continue
    raise KeyError(code)


# --- the disposition tree --------------------------------------------------------------------------


async def test_the_tree_reads_nested_and_only_admins_change_it(admin: Client, agent: Client, handler: Client) -> None:
    tree = await make_tree(admin)
    nodes = ok(await agent.get("/api/dispositions"))
    assert [node["code"] for node in nodes] == ["consult", "complaint", "callback"]
    consult = nodes[0]
    assert [kid["code"] for kid in consult["children"]] == ["consult.registration", "consult.insurance"]
    assert consult["children"][1]["children"][0]["name"] == "报销"
    assert_error(await agent.post("/api/dispositions", json={"code": "x", "name": "x"}), 403)
    assert_error(await agent.patch(f"/api/dispositions/{tree.ids['consult']}", json={"version": 1, "name": "y"}), 403)
    assert_error(await handler.get("/api/dispositions"), 403)


async def test_codes_are_unique_and_the_tree_stays_acyclic_and_shallow(admin: Client, db: Any) -> None:
    tree = await make_tree(admin)
    assert_error(await admin.post("/api/dispositions", json={"code": "complaint", "name": "再来"}), 409, "code_taken")
    assert_error(await admin.post("/api/dispositions", json={"code": "bad code", "name": "x"}), 422)
    assert_error(await admin.post("/api/dispositions", json={"code": "x", "name": "x", "parent_id": 999}), 422)
    too_deep = {"code": "deep", "name": "太深", "parent_id": tree.ids["consult.insurance.claims"]}
    assert_error(await admin.post("/api/dispositions", json=too_deep), 422, "disposition_too_deep")
    consult = await admin.get("/api/dispositions")
    version = find(consult.json(), "consult")["version"]
    under_itself = {"version": version, "parent_id": tree.ids["consult.insurance"]}
    assert_error(await admin.patch(f"/api/dispositions/{tree.ids['consult']}", json=under_itself), 422,
                 "disposition_cycle")  # fmt: skip
    # consult (3 levels) under complaint would make four
    deeper = {"version": version, "parent_id": tree.ids["complaint"]}
    assert_error(await admin.patch(f"/api/dispositions/{tree.ids['consult']}", json=deeper), 422,
                 "disposition_too_deep")  # fmt: skip
    renamed = {"version": version, "code": "complaint"}
    assert_error(await admin.patch(f"/api/dispositions/{tree.ids['consult']}", json=renamed), 409, "code_taken")
    stale = {"version": version + 5, "name": "新名"}
    assert_error(await admin.patch(f"/api/dispositions/{tree.ids['consult']}", json=stale), 409, "stale_version")
    # a leaf moves under another root; the tree says so
    registration = find((await admin.get("/api/dispositions")).json(), "consult.registration")
    moved = ok(await admin.patch(f"/api/dispositions/{tree.ids['consult.registration']}",
                                 json={"version": registration["version"], "parent_id": tree.ids["complaint"],
                                       "name": "挂号投诉"}))  # fmt: skip
    assert moved["parent_id"] == tree.ids["complaint"] and moved["name"] == "挂号投诉"
    assert "contacts.disposition.update" in await audit_actions(db, "contacts.disposition")
    unchanged = await admin.get("/api/dispositions")
    assert find(unchanged.json(), "consult")["name"] == "咨询"


async def test_reorder_names_every_sibling(admin: Client) -> None:
    tree = await make_tree(admin)
    roots = [tree.ids["callback"], tree.ids["consult"], tree.ids["complaint"]]
    ok(await admin.post("/api/dispositions/reorder", json={"parent_id": None, "ids": roots}))
    assert [node["code"] for node in ok(await admin.get("/api/dispositions"))] == ["callback", "consult", "complaint"]
    assert_error(await admin.post("/api/dispositions/reorder", json={"parent_id": None, "ids": roots[:2]}), 422)
    assert_error(await admin.post("/api/dispositions/reorder", json={"parent_id": None, "ids": [*roots, roots[0]]}),
                 422)  # fmt: skip
    kids = [tree.ids["consult.insurance"], tree.ids["consult.registration"]]
    ok(await admin.post("/api/dispositions/reorder", json={"parent_id": tree.ids["consult"], "ids": kids}))
    consult = find(ok(await admin.get("/api/dispositions")), "consult")
    assert [kid["code"] for kid in consult["children"]] == ["consult.insurance", "consult.registration"]
    assert_error(await admin.post("/api/dispositions/reorder", json={"parent_id": 9999, "ids": kids}), 404)


async def test_codes_in_use_are_deactivated_not_deleted(admin: Client, agent: Client) -> None:
    tree = await make_tree(admin)
    await record(agent, disposition_ids=[tree.ids["complaint"]])
    nodes = ok(await admin.get("/api/dispositions"))
    complaint = find(nodes, "complaint")
    assert complaint["in_use"] is True
    in_use = await admin.delete(f"/api/dispositions/{tree.ids['complaint']}?version={complaint['version']}")
    assert_error(in_use, 409, "disposition_in_use")
    consult = find(nodes, "consult")
    has_children = await admin.delete(f"/api/dispositions/{tree.ids['consult']}?version={consult['version']}")
    assert_error(has_children, 409, "disposition_has_children")
    claims = find(nodes, "consult.insurance.claims")
    assert_error(await admin.delete(f"/api/dispositions/{claims['id']}?version=99"), 409, "stale_version")
    assert (await admin.delete(f"/api/dispositions/{claims['id']}?version={claims['version']}")).status_code == 204
    assert_error(await admin.delete(f"/api/dispositions/{claims['id']}?version=1"), 404)
    off = ok(await admin.patch(f"/api/dispositions/{tree.ids['complaint']}",
                               json={"version": complaint["version"], "is_active": False}))  # fmt: skip
    assert off["is_active"] is False
    active = ok(await agent.get("/api/dispositions?active=true"))
    assert "complaint" not in [node["code"] for node in active]
    assert "complaint" in [node["code"] for node in ok(await agent.get("/api/dispositions"))]


# --- the shift handover ----------------------------------------------------------------------------


def today() -> str:
    return (clock.now() + timedelta(hours=8)).date().isoformat()


async def write(client: Client, **values: Any) -> dict[str, Any]:
    body = {"shift_date": today(), "shift": "day", "notes": "3号线路故障已报修",
            "items": ["回电李女士", "核对医保政策"]}  # fmt: skip
    data: dict[str, Any] = ok(await client.post("/api/handovers", json=body | values), 201)
    return data


async def test_a_handover_is_acknowledged_once_by_someone_else(agent: Client, agent2: Client, db: Any) -> None:
    written = await write(agent)
    assert written["pending"] == 2 and [item["text"] for item in written["items"]] == ["回电李女士", "核对医保政策"]
    assert written["author_name"] == "Agent01" and written["acknowledged_at"] is None
    own = await agent.post(f"/api/handovers/{written['id']}/acknowledge", json={"version": written["version"]})
    assert_error(own, 403, "own_handover")
    stale = await agent2.post(f"/api/handovers/{written['id']}/acknowledge", json={"version": 99})
    assert_error(stale, 409, "stale_version")
    acked = ok(await agent2.post(f"/api/handovers/{written['id']}/acknowledge", json={"version": written["version"]}))
    assert acked["acknowledged_by_name"] == "Agent02" and acked["acknowledged_at"]
    again = await agent2.post(f"/api/handovers/{written['id']}/acknowledge", json={"version": acked["version"]})
    assert_error(again, 409, "already_acknowledged")
    assert (await audit_actions(db, "contacts.handover")).count("contacts.handover.acknowledge") == 1


async def test_items_are_ticked_once_and_can_be_unticked(agent: Client, agent2: Client) -> None:
    written = await write(agent)
    item = written["items"][0]
    url = f"/api/handovers/{written['id']}/items/{item['id']}"
    done = ok(await agent2.post(f"{url}/done"))
    assert done["done_at"] and done["done_by_name"] == "Agent02"
    assert_error(await agent.post(f"{url}/done"), 409, "item_done")
    assert ok(await agent.get(f"/api/handovers/{written['id']}"))["pending"] == 1
    undone = ok(await agent.post(f"{url}/undone"))
    assert undone["done_at"] is None and undone["done_by_id"] is None
    assert_error(await agent.post(f"{url}/undone"), 409, "item_not_done")
    assert_error(await agent.post(f"/api/handovers/{written['id']}/items/99999/done"), 404)
    other = await write(agent, shift="night", items=["夜班事项"])
    assert_error(await agent.post(f"/api/handovers/{other['id']}/items/{item['id']}/done"), 404)


async def test_one_handover_per_shift_and_the_author_amends_it(agent: Client, agent2: Client) -> None:
    written = await write(agent)
    same_shift = {"shift_date": today(), "shift": "day", "notes": "x"}
    duplicate = assert_error(await agent2.post("/api/handovers", json=same_shift), 409, "handover_exists")
    assert duplicate["details"] == {"id": written["id"]}
    assert_error(await agent.post("/api/handovers", json={"shift_date": today(), "shift": "night"}), 422)
    assert_error(await agent.post("/api/handovers", json={"shift_date": today(), "shift": "noon", "notes": "x"}), 422)
    assert_error(await agent.post("/api/handovers", json={"shift_date": "2020-01-01", "shift": "day", "notes": "x"}),
                 422)  # fmt: skip
    too_many = {"shift_date": today(), "shift": "evening", "items": ["x"] * 31}
    assert_error(await agent.post("/api/handovers", json=too_many), 422)
    by_other = await agent2.patch(f"/api/handovers/{written['id']}", json={"version": written["version"], "notes": "y"})
    assert_error(by_other, 403, "not_author")
    amended = ok(await agent.patch(f"/api/handovers/{written['id']}", json={
        "version": written["version"], "notes": "线路已修复", "add_items": ["通知班长"],
    }))  # fmt: skip
    assert amended["notes"] == "线路已修复" and [i["text"] for i in amended["items"]][-1] == "通知班长"
    acked = ok(await agent2.post(f"/api/handovers/{written['id']}/acknowledge", json={"version": amended["version"]}))
    late = await agent.patch(f"/api/handovers/{written['id']}", json={"version": acked["version"], "notes": "z"})
    assert_error(late, 409, "already_acknowledged")


async def test_the_list_shows_unacknowledged_first(agent: Client, agent2: Client, handler: Client) -> None:
    day = await write(agent, shift="day")
    evening = await write(agent, shift="evening")
    night = await write(agent2, shift="night")
    ok(await agent.post(f"/api/handovers/{night['id']}/acknowledge", json={"version": night["version"]}))
    listed = ok(await agent.get("/api/handovers"))
    assert listed["total"] == 3
    assert [row["id"] for row in listed["items"]] == [evening["id"], day["id"], night["id"]]
    pending = ok(await agent.get("/api/handovers?pending=true"))
    assert [row["id"] for row in pending["items"]] == [evening["id"], day["id"]]
    assert_error(await handler.get("/api/handovers"), 403)
    assert_error(await agent.get("/api/handovers/99999"), 404)
