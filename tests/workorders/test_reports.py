"""Work-order reports through /api/workorders/reports: the figures of a known set of orders placed in
time (an on-time and a late reply, a reopened order, evaluations, an order from before the period),
the CSV and .xlsx exports, permissions and bad periods."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

import openpyxl
import pytest
from wo_base import Centre, complaint_body, create_order, local, ok, step

from helpers import Client, assert_error
from patientline.core import clock
from patientline.workorders import reports

PERIOD = {"from": "2026-11-01", "to": "2026-11-09"}


async def at(moment: datetime, *clients: tuple[str, Client]) -> None:
    """Moves the clock; the named users log in again (a long jump outlives their sessions)."""
    clock.set_now(moment)
    for username, client in clients:
        assert (await client.login(username)).status_code == 200


async def known_orders(centre: Centre, agent: Client, cardiology: Client, supervisor: Client) -> dict[str, Any]:
    """A: replied and resolved on time, satisfied. B: replied late, resolved, not satisfied, so reopened
    and now late again. C: never handled, reply overdue. D: due tomorrow. E: a callback nobody was
    given yet. F: received before the period, resolved in it."""
    everyone = (("agent01", agent), ("handler-xnk", cardiology), ("super1", supervisor))
    await at(local(2026, 10, 30, 9, 0), *everyone)
    f = await create_order(agent, complaint_body(centre, subject="F"))
    await at(local(2026, 11, 2, 9, 0), *everyone)
    a = await create_order(agent, complaint_body(centre, subject="A"))
    await at(local(2026, 11, 2, 10, 0), *everyone)
    f = await step(cardiology, f, "accept")
    f = await step(cardiology, f, "resolve", text="已处理")
    await at(local(2026, 11, 2, 11, 0), *everyone)
    a = await step(cardiology, a, "accept")
    a = await step(cardiology, a, "reply", text="正在核实")
    await at(local(2026, 11, 3, 9, 0), *everyone)
    a = await step(cardiology, a, "resolve", text="已致歉")
    a = await step(agent, a, "evaluate", satisfied=True)
    b = await create_order(agent, complaint_body(centre, subject="B"))
    await at(local(2026, 11, 4, 9, 0), *everyone)
    c = await create_order(agent, complaint_body(centre, subject="C"))
    await at(local(2026, 11, 4, 10, 0), *everyone)
    b = await step(cardiology, b, "accept")
    b = await step(cardiology, b, "reply", text="迟到的答复")
    assert b["reply_on_time"] is False
    await at(local(2026, 11, 5, 9, 0), *everyone)
    b = await step(cardiology, b, "resolve", text="已处理")
    await at(local(2026, 11, 5, 10, 0), *everyone)
    b = await step(agent, b, "evaluate", satisfied=False, comment="不满意")
    assert b["reopen_count"] == 1
    await at(local(2026, 11, 9, 10, 0), *everyone)
    d = await create_order(agent, complaint_body(centre, subject="D"))
    await at(local(2026, 11, 9, 10, 30), *everyone)
    e = await create_order(
        agent, complaint_body(centre, type_id=centre.callback_type, category="", values={}, department_id=None,
                              subject="E")
    )  # fmt: skip
    await at(local(2026, 11, 9, 12, 0), *everyone)
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f}


async def test_the_figures_of_a_known_period(
    centre: Centre, agent: Client, cardiology: Client, supervisor: Client
) -> None:
    await known_orders(centre, agent, cardiology, supervisor)
    report = await ok(await supervisor.get("/api/workorders/reports", params=PERIOD))
    assert report["period"] == {"from": "2026-11-01", "to": "2026-11-09", "timezone": "Asia/Shanghai"}
    totals = report["totals"]
    assert totals["count"] == 5 and totals["open"] == 4
    assert (totals["reply_on_time"], totals["reply_late"]) == (1, 2)  # A on time; B (reopened) and C overdue
    assert totals["reply_rate"] == pytest.approx(1 / 3)
    assert (totals["resolve_on_time"], totals["resolve_late"], totals["resolve_rate"]) == (1, 0, 1.0)
    assert totals["resolved"] == 1 and totals["mean_hours"] == pytest.approx(24.0)
    assert totals["median_hours"] == pytest.approx(24.0)
    assert (totals["reopened"], totals["finished"], totals["reopen_rate"]) == (1, 2, 0.5)
    assert (totals["satisfied"], totals["evaluated"], totals["satisfaction"]) == (1, 2, 0.5)
    by_status = {group["key"]: group["count"] for group in report["by_status"]}
    assert by_status == {"new": 1, "dispatched": 3, "closed": 1}
    by_type = {group["key"]: group["count"] for group in report["by_type"]}
    assert by_type == {str(centre.complaint_type): 4, str(centre.callback_type): 1}
    by_category = {group["key"]: group["count"] for group in report["by_category"]}
    assert by_category == {f"{centre.complaint_type}:服务态度": 4, f"{centre.callback_type}:": 1}
    departments = {group["key"]: group for group in report["by_department"]}
    assert departments[str(centre.departments["XNK"])]["count"] == 4
    assert departments[str(centre.departments["XNK"])]["label"] == "心内科"
    assert departments[""]["count"] == 1 and departments[""]["reply_rate"] is None
    daily = {point["day"]: (point["received"], point["resolved"]) for point in report["daily"]}
    assert len(daily) == 9
    assert daily["2026-11-01"] == (0, 0)
    assert daily["2026-11-02"] == (1, 1)  # A received; F (from October) resolved
    assert daily["2026-11-03"] == (1, 1)  # B received; A resolved
    assert daily["2026-11-04"] == (1, 0)  # C; B's result of the 5th was undone by the reopening
    assert daily["2026-11-09"] == (2, 0)


async def test_filters_and_a_day_by_the_hospitals_clock(
    centre: Centre, agent: Client, cardiology: Client, supervisor: Client
) -> None:
    await known_orders(centre, agent, cardiology, supervisor)
    only_callbacks = await ok(await supervisor.get("/api/workorders/reports",
                                                   params=PERIOD | {"type_id": centre.callback_type}))  # fmt: skip
    assert only_callbacks["totals"]["count"] == 1
    cardiology_only = await ok(await supervisor.get(
        "/api/workorders/reports", params=PERIOD | {"department_id": centre.departments["XNK"]}))  # fmt: skip
    assert cardiology_only["totals"]["count"] == 4
    # 2 Nov 09:00 in Shanghai is 1 Nov 01:00 UTC: the order belongs to the 2nd, not to the 1st
    one_day = await ok(
        await supervisor.get("/api/workorders/reports", params={"from": "2026-11-02", "to": "2026-11-02"})
    )
    assert one_day["totals"]["count"] == 1 and [p["day"] for p in one_day["daily"]] == ["2026-11-02"]
    nothing = await ok(
        await supervisor.get("/api/workorders/reports", params={"from": "2026-01-01", "to": "2026-01-31"})
    )
    assert nothing["totals"]["count"] == 0 and nothing["totals"]["reply_rate"] is None
    assert nothing["totals"]["median_hours"] is None and nothing["by_type"] == []


async def test_the_default_period_is_the_last_30_days(centre: Centre, agent: Client, supervisor: Client) -> None:
    await at(local(2026, 11, 23, 9, 0), ("super1", supervisor))
    report = await ok(await supervisor.get("/api/workorders/reports"))
    assert report["period"]["from"] == "2026-10-25" and report["period"]["to"] == "2026-11-23"
    assert len(report["daily"]) == 30


async def test_export_csv_masks_numbers_and_leaves_out_free_text(
    centre: Centre, agent: Client, cardiology: Client, supervisor: Client
) -> None:
    orders = await known_orders(centre, agent, cardiology, supervisor)
    supervisor.http.cookies.set("pl_lang", "en")
    response = await supervisor.get("/api/workorders/reports/export.csv", params=PERIOD)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="workorders-20261101-20261109.csv"' in response.headers["content-disposition"]
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == [
        "Reference", "Type", "Category", "Status", "Department", "Phone (masked)", "Received", "Reply due",
        "Replied", "Reply on time", "Result due", "Resolved", "Result on time", "Escalation level", "Reopened",
        "Satisfied", "Close reason",
    ]  # fmt: skip
    assert [row[0] for row in rows[1:]] == [orders[key]["reference"] for key in "abcde"]
    a = dict(zip(rows[0], rows[1], strict=True))
    assert a["Type"] == "投诉" and a["Category"] == "服务态度" and a["Department"] == "心内科"
    assert a["Status"] == "Closed" and a["Phone (masked)"] == "138****5678"
    assert a["Received"] == "2026-11-02 09:00:00" and a["Replied"] == "2026-11-02 11:00:00"
    assert a["Reply on time"] == "Yes" and a["Result on time"] == "Yes" and a["Satisfied"] == "Yes"
    assert a["Close reason"] == "Evaluated by the patient"
    b = dict(zip(rows[0], rows[2], strict=True))
    assert b["Reopened"] == "1" and b["Satisfied"] == "No" and b["Status"] == "Dispatched"
    e = dict(zip(rows[0], rows[5], strict=True))
    assert e["Department"] == "" and e["Status"] == "Registered"
    for secret in ("挂号窗口态度差", "患者反映", "张先生", "13812345678", "不满意", "已致歉"):
        assert secret not in text


async def test_export_xlsx(centre: Centre, agent: Client, cardiology: Client, supervisor: Client) -> None:
    orders = await known_orders(centre, agent, cardiology, supervisor)
    response = await supervisor.get("/api/workorders/reports/export.xlsx", params=PERIOD)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == reports.XLSX_MEDIA_TYPE
    assert 'filename="workorders-20261101-20261109.xlsx"' in response.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "编号" or rows[0][0] == "Reference" or rows[0][0]  # the reader's language
    assert len(rows) == 6 and [row[0] for row in rows[1:]] == [orders[key]["reference"] for key in "abcde"]
    assert rows[1][6] == local(2026, 11, 2, 9, 0).replace(tzinfo=None)  # a real date cell, in hospital time
    assert rows[1][5] == "138****5678" and rows[5][4] is None


async def test_an_export_beyond_the_limit_is_refused(
    centre: Centre, agent: Client, supervisor: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    await at(local(2026, 11, 2, 9, 0), ("super1", supervisor), ("agent01", agent))
    for _ in range(3):
        await create_order(agent, complaint_body(centre))
    monkeypatch.setattr(reports, "EXPORT_LIMIT", 2)
    response = await supervisor.get("/api/workorders/reports/export.csv", params=PERIOD)
    body = assert_error(response, 422, "export_too_large")
    assert body["details"] == {"count": 3, "limit": 2}
    assert_error(await supervisor.get("/api/workorders/reports/export.xlsx", params=PERIOD), 422, "export_too_large")


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-13-01"},
        {"to": "yesterday"},
        {"from": "2026-11-10", "to": "2026-11-01"},
        {"from": "2025-01-01", "to": "2026-06-30"},
        {"type_id": "0"},
        {"department_id": "abc"},
    ],
)
async def test_bad_periods_answer_422(centre: Centre, supervisor: Client, params: dict[str, str]) -> None:
    for path in ("", "/export.csv", "/export.xlsx"):
        assert_error(await supervisor.get(f"/api/workorders/reports{path}", params=params), 422)


async def test_who_may_read_reports(centre: Centre, agent: Client, cardiology: Client, as_user: Any) -> None:
    for client in (agent, cardiology):
        for path in ("", "/export.csv", "/export.xlsx"):
            assert_error(await client.get(f"/api/workorders/reports{path}"), 403)
    async with as_user("leader1", ["leadership"]) as leader:
        report = await ok(await leader.get("/api/workorders/reports"))
        assert report["totals"]["count"] == 0
        assert (await leader.get("/api/workorders/reports/export.csv")).status_code == 200
    assert (await centre.admin.get("/api/workorders/reports")).status_code == 200


async def test_the_route_is_not_taken_for_an_order_id(centre: Centre, supervisor: Client) -> None:
    response = await supervisor.get("/api/workorders/reports")
    assert response.status_code == 200 and "totals" in response.json()
