"""Staffing: the day's plan from contacts per half-hour (the worked example in one half-hour, a night
shift past midnight, a gap in the roster, Erlang A), through POST /api/routing/staffing with its field
errors, the CSV export, the history of arrivals by weekday, the page and who may use it."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from helpers import Client, assert_error
from patientline.core import clock
from patientline.routing import staffing
from patientline.routing.erlang import agents_needed
from patientline.routing.metrics import local_day_start
from patientline.routing.models import QueueLogEntry

TEN_AM = 20  # the half-hour from 10:00


def contacts(**by_time: float) -> list[float]:
    """contacts(h10m00=100): 48 values, zero but where given."""
    values = [0.0] * 48
    for key, count in by_time.items():
        hours, minutes = int(key[1:3]), int(key[4:6])
        values[(hours * 60 + minutes) // 30] = count
    return values


def body(**overrides: Any) -> dict[str, Any]:
    plan = {"contacts": contacts(h10m00=100), "aht_s": 180, "sl_target": 0.8, "sl_seconds": 20, "shrinkage": 0.3}
    return plan | overrides


# --- the plan (pure) --------------------------------------------------------------------------------


def test_the_worked_example_in_one_half_hour_sets_the_day_shift() -> None:
    plan = staffing.plan_day(contacts(h10m00=100), staffing.Parameters(aht_s=180, sl_target=0.8, sl_seconds=20,
                                                                       shrinkage=0.3))  # fmt: skip
    busy = plan.intervals[TEN_AM]
    assert busy.calls_per_hour == 200
    assert (busy.staffing.raw_agents, busy.staffing.scheduled_agents) == (14, 20)
    assert busy.staffing.achieved.service_level == pytest.approx(0.888, abs=1e-3)
    assert all(i.staffing.raw_agents == 0 for n, i in enumerate(plan.intervals) if n != TEN_AM)
    day, evening, night = plan.shifts
    assert (day.shift.name, day.raw_agents, day.scheduled_agents, day.peak_minute) == ("Day shift", 14, 20, 600)
    assert (evening.scheduled_agents, evening.peak_minute, night.scheduled_agents) == (0, None, 0)
    assert day.agent_hours == 160.0
    assert (plan.total_contacts, plan.peak_raw_agents, plan.peak_scheduled_agents) == (100, 14, 20)
    assert (plan.roster_agents, plan.roster_agent_hours) == (20, 160)
    assert plan.interval_agent_hours == 10.0
    assert plan.uncovered_minutes == []


def test_a_night_shift_past_midnight_and_a_gap() -> None:
    parameters = staffing.Parameters(aht_s=180, sl_target=0.8, sl_seconds=20)
    shifts = [staffing.Shift("Late", 22 * 60, 6 * 60), staffing.Shift("Office", 8 * 60, 17 * 60)]
    plan = staffing.plan_day(contacts(h23m00=30, h01m30=60, h07m00=10, h12m00=20), parameters, shifts)
    late, office = plan.shifts
    assert late.shift.hours == 8.0
    assert late.contacts == 90 and late.peak_minute == 90  # 01:30 needs more than 23:00
    assert late.raw_agents == agents_needed(120, 180, 0.8, 20).raw_agents
    assert office.raw_agents == agents_needed(40, 180, 0.8, 20).raw_agents
    assert plan.uncovered_minutes == [7 * 60]  # 07:00 has contacts and nobody on shift


def test_the_plan_refuses_a_day_of_the_wrong_length() -> None:
    with pytest.raises(ValueError):
        staffing.plan_day([1.0] * 47, staffing.Parameters(aht_s=180, sl_target=0.8, sl_seconds=20))


def test_the_csv_has_a_row_per_half_hour() -> None:
    plan = staffing.plan_day(contacts(h10m00=100), staffing.Parameters(aht_s=180, sl_target=0.8, sl_seconds=20,
                                                                       shrinkage=0.3))  # fmt: skip
    rows = list(csv.reader(io.StringIO(staffing.plan_csv(plan, [str(n) for n in range(10)]))))
    assert len(rows) == 49
    assert rows[1 + TEN_AM] == ["10:00", "10:30", "100", "14", "20", "88.8", "88.8", "7.8", "71.4", "0.0"]
    assert rows[48][:2] == ["23:30", "24:00"]


# --- the API ----------------------------------------------------------------------------------------


@pytest.fixture
async def planner(as_user: Any) -> AsyncIterator[Client]:
    async with as_user("planner1", ["workforce"]) as client:
        yield client


async def test_the_plan_through_the_api(planner: Client) -> None:
    response = await planner.post("/api/routing/staffing", json=body(max_occupancy=0.85))
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["model"] == "erlang_c"
    ten = plan["intervals"][TEN_AM]
    assert (ten["start"], ten["end"], ten["contacts"], ten["calls_per_hour"]) == ("10:00", "10:30", 100, 200)
    assert (ten["raw_agents"], ten["scheduled_agents"], ten["limited_by"]) == (14, 20, "service_level")
    assert ten["service_level"] == pytest.approx(0.8884, abs=1e-4)
    assert ten["asa_s"] == pytest.approx(7.84, abs=0.01)
    assert ten["occupancy"] == pytest.approx(10 / 14)
    assert [(s["name"], s["start"], s["end"], s["scheduled_agents"], s["peak_at"]) for s in plan["shifts"]] == [
        ("白班", "08:00", "16:00", 20, "10:00"),  # the default shifts in the reader's language
        ("中班", "16:00", "24:00", 0, None),
        ("夜班", "00:00", "08:00", 0, None),
    ]
    assert plan["totals"]["roster_agents"] == 20 and plan["uncovered"] == []


async def test_erlang_a_and_own_shifts(planner: Client) -> None:
    shifts = [{"name": "Late", "start": "22:00", "end": "06:00"}, {"name": "Day", "start": "06:00", "end": "22:00"}]
    response = await planner.post("/api/routing/staffing", json=body(patience_s=60, shifts=shifts))
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["model"] == "erlang_a"
    ten = plan["intervals"][TEN_AM]
    assert ten["raw_agents"] == agents_needed(200, 180, 0.8, 20, patience_s=60).raw_agents
    assert ten["abandon_rate"] > 0 and ten["service_level_offered"] >= 0.8
    assert [(s["name"], s["hours"]) for s in plan["shifts"]] == [("Late", 8.0), ("Day", 16.0)]


async def test_an_overloaded_half_hour_is_reported_without_infinite_numbers(planner: Client) -> None:
    response = await planner.post("/api/routing/staffing", json=body(contacts=contacts(h10m00=5000), aht_s=300))
    assert response.status_code == 200, response.text
    assert response.json()["intervals"][TEN_AM]["raw_agents"] > 833


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"contacts": [1] * 47}, "contacts", "wrong_length"),
        ({"contacts": contacts(h01m30=-1)}, "contacts.3", "greater_than_equal"),
        ({"contacts": ["many"] + [0] * 47}, "contacts.0", "value_error"),
        ({"contacts": contacts(h10m00=20_000)}, "contacts.20", "too_much_traffic"),
        ({"sl_target": 80}, "sl_target", "less_than_equal"),
        ({"aht_s": None}, "aht_s", "value_error"),
        ({"shrinkage": 0.95}, "shrinkage", "less_than_equal"),
        ({"max_occupancy": 0}, "max_occupancy", "greater_than_equal"),
        ({"patience_s": True}, "patience_s", "value_error"),
        ({"shifts": []}, "shifts", "too_short"),
        ({"shifts": [{"name": "Day", "start": "08:15", "end": "16:00"}]}, "shifts.0.start", "value_error"),
        ({"shifts": [{"name": "Day", "start": "8", "end": "16:00"}]}, "shifts.0.start", "value_error"),
        ({"shifts": [{"name": "Day", "start": "24:00", "end": "08:00"}]}, "shifts.0.start", "invalid"),
        ({"shifts": [{"name": "A", "start": "00:00", "end": "12:00"}, {"name": "A", "start": "12:00", "end": "24:00"}]},
         "shifts.1.name", "duplicate"),
        ({"shifts": [{"name": "", "start": "00:00", "end": "12:00"}]}, "shifts.0.name", "string_too_short"),
        ({"budget": 3}, "budget", "extra_forbidden"),
    ],
)  # fmt: skip
async def test_bad_input_names_its_field(planner: Client, change: dict[str, Any], field: str, problem: str) -> None:
    error = assert_error(await planner.post("/api/routing/staffing", json=body(**change)), 422, "invalid_input")
    assert (field, problem) in [(d["field"], d["problem"]) for d in error["details"]]
    assert all(d["message"] for d in error["details"])


async def test_not_a_number_is_refused(planner: Client) -> None:
    text = json.dumps(body()).replace('"aht_s": 180', '"aht_s": NaN')
    response = await planner.post("/api/routing/staffing", content=text, headers={"Content-Type": "application/json"})
    error = assert_error(response, 422, "invalid_input")
    assert error["details"][0]["field"] == "aht_s"


async def test_the_csv_export(planner: Client) -> None:
    response = await planner.post("/api/routing/staffing/export.csv", json=body())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "staffing.csv" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert len(rows) == 49
    assert rows[1 + TEN_AM][:5] == ["10:00", "10:30", "100", "14", "20"]
    assert_error(await planner.post("/api/routing/staffing/export.csv", json=body(aht_s=1)), 422, "invalid_input")


async def test_who_may_plan(as_user: Any, anon: Client) -> None:
    async with as_user("agent1", ["agent"]) as agent:
        assert_error(await agent.post("/api/routing/staffing", json=body()), 403, "permission_denied")
        assert_error(await agent.get("/api/routing/staffing/history?weekday=0"), 403)
        assert (await agent.get("/routing/staffing")).status_code == 403
    async with as_user("super1", ["supervisor"]) as supervisor:
        assert (await supervisor.post("/api/routing/staffing", json=body())).status_code == 200
    assert_error(await anon.post("/api/routing/staffing", json=body()), 401)


async def test_history_fills_a_weekday(planner: Client, db: Any) -> None:
    now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # Wednesday 11:00 in Shanghai
    clock.set_now(now)
    assert (await planner.login("planner1")).status_code == 200
    last_monday_0900 = local_day_start(date(2026, 11, 23), "Asia/Shanghai") + timedelta(hours=9)
    async with db.sessions() as session, session.begin():
        for week in range(3):  # three Mondays with 2 arrivals at 09:00-09:30
            for second in (60, 120):
                at = last_monday_0900 - timedelta(weeks=week) + timedelta(seconds=second)
                session.add(QueueLogEntry(at=at, event="enter", queue_id=1, task_id=week * 10 + second))
        session.add(QueueLogEntry(at=last_monday_0900, event="enter", queue_id=2, task_id=99))
    response = await planner.get("/api/routing/staffing/history?weekday=0&weeks=4")
    assert response.status_code == 200, response.text
    history = response.json()
    assert history["weeks"] == 4 and len(history["contacts"]) == 48
    assert history["contacts"][18] == 7 / 4
    only_one = (await planner.get("/api/routing/staffing/history?weekday=0&weeks=2&queue_id=1")).json()
    assert only_one["contacts"][18] == 2.0
    assert sum((await planner.get("/api/routing/staffing/history?weekday=1")).json()["contacts"]) == 0
    error = assert_error(await planner.get("/api/routing/staffing/history?weekday=7&weeks=0"), 422, "invalid_input")
    assert {d["field"] for d in error["details"]} == {"query.weekday", "query.weeks"}


async def test_the_page(planner: Client) -> None:
    planner.cookies.set("pl_lang", "en")
    response = await planner.get("/routing/staffing")
    assert response.status_code == 200
    page = response.text
    assert page.count('name="contacts"') == 48
    assert 'value="08:00"' in page and 'value="24:00"' in page
    assert "/static/routing-staffing.js" in page and "/static/vendor/echarts.min.js" in page
