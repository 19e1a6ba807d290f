"""The closed loop through /api/workorders: register, dispatch, accept, reply, resolve, evaluate;
reopen, return and redispatch, merge, links; wrong steps, stale versions, retried creates, bad input."""

from __future__ import annotations

from typing import Any

from wo_base import Centre, complaint_body, create_order, ok, step

from helpers import Client, assert_error


async def test_complaint_goes_round_the_loop(
    centre: Centre, agent: Client, cardiology: Client, supervisor: Client
) -> None:
    order = await create_order(agent, complaint_body(centre))
    assert order["reference"].startswith("WO-") and order["status"] == "dispatched"
    assert order["caller_phone_masked"] == "138****5678"
    assert order["allowed_steps"] == ["dispatch", "merge"]
    order = await step(cardiology, order, "accept")
    order = await step(cardiology, order, "reply", text="已联系窗口负责人，正在核实。")
    order = await step(cardiology, order, "resolve", text="已对当事人批评教育并向患者致歉。")
    assert order["status"] == "resolved" and order["reply_on_time"] is True and order["resolve_on_time"] is True
    order = await step(agent, order, "evaluate", satisfied=True, comment="满意")
    assert order["status"] == "closed" and order["is_open"] is False and order["close_reason"] == "evaluated"
    actions = [entry["action"] for entry in order["timeline"]]
    assert actions == ["created", "dispatch", "accept", "reply", "resolve", "evaluate"]
    assert order["timeline"][0]["actor_name"] == "Agent01"


async def test_not_satisfied_reopens_with_a_fresh_clock(centre: Centre, agent: Client, cardiology: Client) -> None:
    order = await create_order(agent, complaint_body(centre))
    order = await step(cardiology, order, "accept")
    order = await step(cardiology, order, "resolve", text="已处理")
    order = await step(agent, order, "evaluate", satisfied=False, comment="没有解决问题")
    assert order["status"] == "dispatched" and order["reopen_count"] == 1
    assert order["replied_at"] is None and order["resolved_at"] is None
    assert order["clock_started_at"] > order["received_at"]
    assert order["evaluation_comment"] == "没有解决问题"


async def test_return_as_not_ours_then_redispatch(
    centre: Centre, agent: Client, cardiology: Client, gastro: Client
) -> None:
    order = await create_order(agent, complaint_body(centre))
    order = await step(cardiology, order, "return", reason="属于消化内科")
    assert order["status"] == "returned" and order["allowed_steps"] == []
    order = await ok(await agent.get(f"/api/workorders/{order['id']}"))
    assert order["allowed_steps"] == ["dispatch", "close", "merge"]
    order = await step(agent, order, "dispatch", department_id=centre.departments["XHNK"])
    assert order["department_id"] == centre.departments["XHNK"]
    await ok(await cardiology.get(f"/api/workorders/{order['id']}"), 404)
    order = await step(gastro, order, "accept")
    assert order["status"] == "accepted"


async def test_wrong_step_answers_409_with_the_allowed_ones(centre: Centre, agent: Client, cardiology: Client) -> None:
    order = await create_order(agent, complaint_body(centre))
    response = await cardiology.post(
        f"/api/workorders/{order['id']}/resolve", json={"version": order["version"], "text": "x"}
    )
    body = assert_error(response, 409, "invalid_transition")
    assert body["details"]["allowed"] == ["dispatch", "accept", "return", "merge"]


async def test_only_the_responsible_department_acts(centre: Centre, agent: Client, gastro: Client) -> None:
    order = await create_order(agent, complaint_body(centre))
    response = await gastro.post(f"/api/workorders/{order['id']}/accept", json={"version": order["version"]})
    assert_error(response, 404)
    response = await agent.post(f"/api/workorders/{order['id']}/accept", json={"version": order["version"]})
    assert_error(response, 403)


async def test_co_handlers_see_the_order_and_add_notes(centre: Centre, agent: Client, gastro: Client) -> None:
    body = complaint_body(centre, co_department_ids=[centre.departments["XHNK"]])
    order = await create_order(agent, body)
    assert order["co_department_ids"] == [centre.departments["XHNK"]]
    seen = await ok(await gastro.get("/api/workorders"))
    assert [row["id"] for row in seen["items"]] == [order["id"]]
    noted = await ok(await gastro.post(f"/api/workorders/{order['id']}/notes", json={"note": "<b>已配合</b>"}))
    assert noted["timeline"][-1]["note"] == "<b>已配合</b>"  # stored as text; pages escape it
    assert noted["allowed_steps"] == []


async def test_stale_version_is_refused(centre: Centre, agent: Client, cardiology: Client) -> None:
    order = await create_order(agent, complaint_body(centre))
    await step(cardiology, order, "accept")
    response = await cardiology.post(
        f"/api/workorders/{order['id']}/return", json={"version": order["version"], "reason": "不是我们的"}
    )
    assert_error(response, 409, "stale_version")


async def test_a_retried_create_makes_one_order(centre: Centre, agent: Client) -> None:
    body = complaint_body(centre, client_key="form-7f3a9c2e")
    first = await create_order(agent, body)
    second = await create_order(agent, body)
    assert first["id"] == second["id"]
    listed = await ok(await agent.get("/api/workorders"))
    assert listed["total"] == 1


async def test_bad_input_writes_nothing(centre: Centre, agent: Client) -> None:
    cases: list[tuple[dict[str, Any], int, str]] = [
        (complaint_body(centre, department_id=99999), 422, "department_id"),
        (complaint_body(centre, values={}), 422, "values.visit_date"),
        (complaint_body(centre, values={"visit_date": "2026-02-30"}), 422, "values.visit_date"),
        (complaint_body(centre, values={"visit_date": "2026-11-20", "severity": "极其"}), 422, "values.severity"),
        (complaint_body(centre, values={"visit_date": "2026-11-20", "extra": 1}), 422, "values.extra"),
        (complaint_body(centre, subject="x" * 201), 422, "subject"),
        (complaint_body(centre, category="不存在"), 422, "category"),
        (complaint_body(centre, caller_phone="12345"), 422, "caller_phone"),
        (
            complaint_body(
                centre, callback_from="2026-11-23T10:00:00+08:00", callback_until="2026-11-23T09:00:00+08:00"
            ),
            422,
            "callback_until",
        ),
        (complaint_body(centre, callback_from="2026-11-23T10:00:00"), 422, "callback_from"),
        (complaint_body(centre, type_id=4242), 404, ""),
    ]
    for body, status, field in cases:
        error = assert_error(await agent.post("/api/workorders", json=body), status)
        if field:
            assert field in str(error["details"]), (field, error)
    assert (await ok(await agent.get("/api/workorders")))["total"] == 0


async def test_merge_and_links(centre: Centre, agent: Client, supervisor: Client) -> None:
    first = await create_order(agent, complaint_body(centre))
    duplicate = await create_order(agent, complaint_body(centre))
    merged = await step(agent, duplicate, "merge", into_id=first["id"], note="同一患者重复来电")
    assert merged["status"] == "merged" and merged["merged_into_id"] == first["id"]
    survivor = await ok(await agent.get(f"/api/workorders/{first['id']}"))
    assert survivor["timeline"][-1]["action"] == "merged_in"
    third = await create_order(agent, complaint_body(centre))
    await ok(
        await agent.post(f"/api/workorders/{third['id']}/links", json={"kind": "order", "target": first["reference"]}),
        201,
    )
    await ok(
        await agent.post(
            f"/api/workorders/{third['id']}/links", json={"kind": "contact", "target": "CALL-20261123-0007"}
        ),
        201,
    )
    links = await ok(await agent.get(f"/api/workorders/{first['id']}/links"))
    assert [(link["kind"], link["target"]) for link in links] == [("order", third["reference"])]
    bad = await agent.post(f"/api/workorders/{third['id']}/links", json={"kind": "order", "target": "WO-1-1"})
    assert_error(bad, 422)


async def test_closed_orders_reopen_only_by_supervisors(centre: Centre, agent: Client, supervisor: Client) -> None:
    order = await create_order(agent, complaint_body(centre, department_id=None))
    assert order["status"] == "new"
    order = await step(agent, order, "close", reason="answered", note="当场解答")
    assert_error(
        await agent.post(f"/api/workorders/{order['id']}/reopen", json={"version": order["version"], "note": "x"}), 403
    )
    response = await supervisor.post(
        f"/api/workorders/{order['id']}/reopen", json={"version": order["version"], "note": "患者再次来电"}
    )
    assert_error(response, 409, "invalid_transition")  # never dispatched: register a new order instead
