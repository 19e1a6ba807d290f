"""The centre's work-order pages: the supervision list (countdowns coloured by urgency, department
chips, filters, the htmx board, pending extensions), the reports page (figures, chart data, empty
state, a bad period), the types admin page with the editor's payload (a stale version is a 409) and
the departments' contacts."""

from __future__ import annotations

import html
import json
import re
from datetime import datetime
from typing import Any

from wo_base import Centre, complaint_body, create_order, local, ok, step

from helpers import Client, assert_error
from patientline.core import clock


async def at(moment: datetime, *clients: tuple[str, Client]) -> None:
    clock.set_now(moment)
    for username, client in clients:
        assert (await client.login(username)).status_code == 200


def english(*clients: Client) -> None:
    for client in clients:
        client.http.cookies.set("pl_lang", "en")


async def page(client: Client, path: str, status: int = 200, **params: Any) -> str:
    response = await client.get(path, params=params)
    assert response.status_code == status, response.text
    return response.text


def json_block(text: str, element_id: str) -> Any:
    match = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', text, re.S)
    assert match, f"no #{element_id}"
    return json.loads(html.unescape(match.group(1)))


def listed(text: str) -> list[int]:
    """The orders in the list, in their order."""
    return [int(found) for found in re.findall(r'<tr class="row-\w+" data-order-id="(\d+)"', text)]


def row_of(text: str, reference: str) -> str:
    match = re.search(rf"<tr class=\"row-\w+\" data-order-id=\"\d+\">(?:(?!</tr>).)*{reference}.*?</tr>", text, re.S)
    assert match, f"no row for {reference}"
    return match.group(0)


async def board(centre: Centre, agent: Client, cardiology: Client, supervisor: Client) -> dict[str, Any]:
    """X: the reply is an hour overdue. Y: just registered, a day to go, an extension asked for.
    P: the clock is stopped."""
    everyone = (("agent01", agent), ("handler-xnk", cardiology), ("super1", supervisor))
    await at(local(2026, 11, 23, 9, 0), *everyone)
    x = await create_order(agent, complaint_body(centre, subject="超时未回复"))
    p = await create_order(agent, complaint_body(centre, subject="等待患者材料"))
    p = await step(cardiology, p, "accept")
    p = await step(cardiology, p, "pause", reason="等待患者提供票据")
    await at(local(2026, 11, 24, 10, 0), *everyone)
    y = await create_order(agent, complaint_body(centre, subject="刚登记"))
    y = await step(cardiology, y, "accept")
    extension = await ok(await cardiology.post(f"/api/workorders/{y['id']}/extensions",
                                               json={"version": y["version"], "amount": 2, "reason": "需要调取监控"}),
                         201)  # fmt: skip
    return {"x": x, "y": y, "p": p, "extension": extension}


async def test_the_supervision_list_colours_countdowns_by_urgency(
    centre: Centre, agent: Client, cardiology: Client, supervisor: Client
) -> None:
    orders = await board(centre, agent, cardiology, supervisor)
    english(supervisor)
    text = await page(supervisor, "/workorders/supervision")
    x = row_of(text, orders["x"]["reference"])
    assert 'class="row-overdue"' in x and "countdown urg-overdue" in x and "Overdue by 01:00:00" in x
    assert f'data-due="{datetime.fromisoformat(orders["x"]["reply_due_at"]).isoformat()}"' in x
    y = row_of(text, orders["y"]["reference"])
    assert "countdown urg-ok" in y and "1 d 00:00:00 left" in y and "data-warn=" in y
    p = row_of(text, orders["p"]["reference"])
    assert "countdown urg-paused" in p and "Clock stopped" in p and "data-due" not in p
    assert listed(text) == [orders["x"]["id"], orders["y"]["id"], orders["p"]["id"]]  # most urgent first
    assert f'href="/workorders/{orders["x"]["id"]}"' in text
    assert "心内科" in text and "1 overdue" in text  # the department's chip
    assert "Send reminder" in text and 'data-server-now="2026-11-24T02:00:00+00:00"' in text
    assert "Waiting for a decision" in text and "需要调取监控" in text and "Asks for 2 working days more" in text
    assert f'data-extension-id="{orders["extension"]["id"]}"' in text


async def test_filters_and_the_board_alone_for_htmx(
    centre: Centre, agent: Client, cardiology: Client, supervisor: Client
) -> None:
    orders = await board(centre, agent, cardiology, supervisor)
    english(supervisor)
    overdue = await page(supervisor, "/workorders/supervision", urgency="overdue")
    assert listed(overdue) == [orders["x"]["id"]]
    paused = await page(supervisor, "/workorders/supervision", urgency="paused", type_id="", department_id="")
    assert listed(paused) == [orders["p"]["id"]]
    everything = await page(supervisor, "/workorders/supervision", type_id=centre.complaint_type)
    assert listed(everything) == [orders["x"]["id"], orders["y"]["id"], orders["p"]["id"]]
    other = await page(supervisor, "/workorders/supervision", department_id=centre.departments["XHNK"])
    assert "No open orders match these filters." in other
    response = await supervisor.get("/workorders/supervision", headers={"HX-Request": "true"})
    assert response.status_code == 200 and "<html" not in response.text
    assert response.text.lstrip().startswith('<div class="wo-board-root"')
    bad = await supervisor.get(
        "/workorders/supervision", params={"urgency": "late"}, headers={"Accept": "application/json"}
    )
    assert_error(bad, 422)


async def test_reminders_and_decisions_from_the_board(
    centre: Centre, agent: Client, cardiology: Client, supervisor: Client
) -> None:
    orders = await board(centre, agent, cardiology, supervisor)
    english(supervisor)
    body = {"order_ids": [orders["x"]["id"]], "note": "请今天内回复"}
    reminded = await ok(await supervisor.post("/api/workorders/reminders", json=body))
    assert reminded == {"reminded": 1}
    decision = await ok(await supervisor.post(f"/api/workorders/extensions/{orders['extension']['id']}/decision",
                                              json={"approve": True, "note": "同意"}))  # fmt: skip
    assert decision["status"] == "approved"
    text = await page(supervisor, "/workorders/supervision")
    assert "No extension requests are waiting." in text


async def test_who_sees_the_supervision_list(
    centre: Centre, agent: Client, cardiology: Client, supervisor: Client, as_user: Any
) -> None:
    await board(centre, agent, cardiology, supervisor)
    for client in (agent, cardiology):
        assert_error(await client.get("/workorders/supervision", headers={"Accept": "application/json"}), 403)
    async with as_user("leader1", ["leadership"]) as leader:
        english(leader)
        text = await page(leader, "/workorders/supervision")
        assert "urg-overdue" in text
        assert "Send reminder" not in text and "Waiting for a decision" not in text


async def test_an_empty_supervision_list(centre: Centre, supervisor: Client) -> None:
    english(supervisor)
    text = await page(supervisor, "/workorders/supervision")
    assert "No open work orders." in text and "No extension requests are waiting." in text


async def test_the_reports_page(centre: Centre, agent: Client, cardiology: Client, supervisor: Client) -> None:
    orders = await board(centre, agent, cardiology, supervisor)
    await step(cardiology, orders["y"] | await ok(await cardiology.get(f"/api/workorders/{orders['y']['id']}")),
               "resolve", text="已处理")  # fmt: skip
    english(supervisor)
    text = await page(supervisor, "/workorders/reports", **{"from": "2026-11-20", "to": "2026-11-24"})
    data = json_block(text, "wo-report-data")
    assert data["report"]["totals"]["count"] == 3 and data["report"]["totals"]["resolved"] == 1
    assert [p["day"] for p in data["report"]["daily"]][-1] == "2026-11-24"
    assert data["labels"]["received"] == "Received"
    assert 'data-chart="daily"' in text and 'data-chart="departments"' in text and 'data-chart="types"' in text
    assert '<span class="figure" data-figure="count">3</span>' in text
    assert "/api/workorders/reports/export.csv?from=2026-11-20&amp;to=2026-11-24" in text
    assert "/static/vendor/echarts.min.js" in text and "心内科" in text


async def test_the_reports_page_empty_and_with_a_bad_period(centre: Centre, supervisor: Client) -> None:
    english(supervisor)
    text = await page(supervisor, "/workorders/reports")
    assert "No work orders were received or resolved in this period." in text
    assert "wo-report-data" not in text and "Export CSV" not in text
    bad = await page(supervisor, "/workorders/reports", **{"from": "2026-02-30"})
    assert "enter a date as YYYY-MM-DD" in bad
    reversed_ = await page(supervisor, "/workorders/reports", **{"from": "2026-11-10", "to": "2026-11-01"})
    assert "The period must start on or before its last day." in reversed_


async def test_the_reports_page_needs_the_permission(centre: Centre, agent: Client, cardiology: Client) -> None:
    for client in (agent, cardiology):
        assert_error(await client.get("/workorders/reports", headers={"Accept": "application/json"}), 403)


# --- types -----------------------------------------------------------------------------------------


def editor_payload(**changes: Any) -> dict[str, Any]:
    """What the type editor's script sends."""
    body = {
        "code": "rental", "name": "设备租借", "group": "service", "description": "轮椅、拐杖租借",
        "fields": [
            {"key": "item", "label": "物品", "kind": "choice", "required": True, "choices": ["轮椅", "拐杖"],
             "help": ""},
            {"key": "days", "label": "天数", "kind": "number", "required": False, "choices": [], "help": "",
             "max_length": None, "minimum": 1, "maximum": 30},
        ],
        "categories": ["院内", "院外"], "default_department_id": None, "position": 3, "is_active": True,
        "sms_templates": {},
        "policy": {
            "reply": None, "result": {"amount": 3, "unit": "working_days"}, "warn_at": 0.75,
            "escalate_after_hours": [0, 48], "working_hours": "08:00-12:00,13:30-17:30", "callback_attempts": 3,
            "callback_retry_minutes": 60, "call_back_on_reply": False, "auto_close_days": 7,
        },
    }  # fmt: skip
    return body | changes


async def test_the_types_page_and_the_editor(centre: Centre, supervisor: Client) -> None:
    admin = centre.admin
    english(admin)
    text = await page(admin, "/workorders/types")
    assert "complaint" in text and "投诉" in text and "24 hours" in text and "5 working days" in text
    assert "Department contacts" in text and 'data-department-id="{}"'.format(centre.departments["XNK"]) in text
    new = json_block(await page(admin, "/workorders/types/new"), "wo-type-data")
    assert new["type"]["id"] is None and new["type"]["policy"]["warn_at"] == 0.8
    edit = json_block(await page(admin, f"/workorders/types/{centre.callback_type}"), "wo-type-data")
    assert edit["type"]["code"] == "callback" and edit["type"]["policy"]["reply"] is None
    assert edit["type"]["policy"]["result"] == {"amount": 8, "unit": "working_hours"}
    assert_error(await admin.get("/workorders/types/999", headers={"Accept": "application/json"}), 404)
    for path in ("/workorders/types", "/workorders/types/new", f"/workorders/types/{centre.callback_type}"):
        assert_error(await supervisor.get(path, headers={"Accept": "application/json"}), 403)


async def test_a_type_made_and_changed_through_the_editors_payload(centre: Centre) -> None:
    admin = centre.admin
    created = await ok(await admin.post("/api/workorders/types", json=editor_payload()), 201)
    assert created["version"] == 1 and created["fields"][0]["choices"] == ["轮椅", "拐杖"]
    text = await page(admin, f"/workorders/types/{created['id']}")
    assert json_block(text, "wo-type-data")["type"]["categories"] == ["院内", "院外"]
    body = editor_payload(name="设备租借服务", version=created["version"])
    changed = await ok(await admin.put(f"/api/workorders/types/{created['id']}", json=body))
    assert changed["version"] == 2 and changed["name"] == "设备租借服务"
    stale = await admin.put(f"/api/workorders/types/{created['id']}",
                            json=editor_payload(name="又改了", version=created["version"]))  # fmt: skip
    assert_error(stale, 409, "stale_version")


async def test_the_editor_gets_errors_by_field(centre: Centre) -> None:
    admin = centre.admin
    bad_policy = editor_payload(policy=editor_payload()["policy"] | {"warn_at": 1.5, "escalate_after_hours": [48, 0]})
    body = assert_error(await admin.post("/api/workorders/types", json=bad_policy), 422)
    fields = {detail["field"] for detail in body["details"]}
    assert {"policy.warn_at", "policy.escalate_after_hours"} <= fields
    no_choices = editor_payload(fields=[{"key": "item", "label": "物品", "kind": "choice", "choices": []}])
    body = assert_error(await admin.post("/api/workorders/types", json=no_choices), 422)
    assert body["details"][0]["field"].startswith("fields.0")
    duplicate = assert_error(await admin.post("/api/workorders/types", json=editor_payload(code="complaint")), 409)
    assert duplicate["error_id"] == "duplicate_code"


async def test_department_contacts_from_the_types_page(centre: Centre) -> None:
    admin = centre.admin
    english(admin)
    department = centre.departments["XNK"]
    first = await ok(await admin.put(f"/api/workorders/department-contacts/{department}",
                                     json={"sms_phone": "13900001111", "email": "xnk@example.org",
                                           "head_user_id": None}))  # fmt: skip
    assert first["version"] == 1
    text = await page(admin, "/workorders/types")
    assert 'value="+8613900001111"' in text and 'value="xnk@example.org"' in text
    assert f'x-data="contactRow({department}, 1)"' in text
    again = await ok(await admin.put(f"/api/workorders/department-contacts/{department}",
                                     json={"sms_phone": None, "email": "xnk@example.org", "version": 1}))  # fmt: skip
    assert again["version"] == 2 and again["sms_phone"] is None
    stale = await admin.put(f"/api/workorders/department-contacts/{department}", json={"email": None, "version": 1})
    assert_error(stale, 409, "stale_version")
    bad = assert_error(await admin.put(f"/api/workorders/department-contacts/{department}",
                                       json={"email": "not-an-address", "version": 2}), 422)  # fmt: skip
    assert bad["details"][0]["field"] == "email"
