"""Queue report through /api/routing/metrics and /routing/reports: a hand-made queue log of two queues
with their own thresholds (written straight into routing_queue_log), per interval and over the day,
a queue filter, the CSV export, the empty state, bad filters and who may read it."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from helpers import Client, assert_error
from patientline.core import clock
from patientline.routing.models import QueueLogEntry, RoutingQueue

DAY = "2026-11-23"
TEN_AM = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def at(minutes: float) -> datetime:
    return TEN_AM + timedelta(minutes=minutes)


@pytest.fixture
async def queues(db: Any) -> dict[str, int]:
    """Two queues and a morning of their log: enquiries (80 % in 20 s, short abandons under 5 s) and the
    expert centre (in 30 s)."""
    async with db.sessions() as session, session.begin():
        enquiries = RoutingQueue(code="ENQ", name="Enquiries", sl_seconds=20, sl_target=0.8, short_abandon_s=5)
        experts = RoutingQueue(code="EXP", name="Experts", sl_seconds=30, sl_target=0.9, short_abandon_s=5)
        session.add_all([enquiries, experts])
        await session.flush()
        e, x = enquiries.id, experts.id
        lines = [
            (0, "login", None, None, 7, None, None),
            (4.8, "enter", e, 1, None, None, None),
            (5, "accept", e, 1, 7, 10, None),
            (8, "complete", e, 1, 7, None, 180),
            (8.5, "wrap_end", e, None, 7, None, 30),
            (6, "abandon", e, 2, None, 2, None),  # short
            (35, "accept", e, 3, 7, 25, None),
            (39, "complete", e, 3, 7, None, 240),
            (39.5, "wrap_end", e, None, 7, None, 30),
            (50, "abandon", e, 4, None, 45, None),
            (0, "login", None, None, 8, None, None),
            (10, "accept", x, 5, 8, 25, None),
            (20, "complete", x, 5, 8, None, 600),
            (20, "logout", None, None, 8, None, None),
            (-24 * 60, "accept", e, 6, 7, 5, None),  # the day before
        ]
        session.add_all(
            QueueLogEntry(at=at(m), event=event, queue_id=queue, task_id=task, agent_id=agent, wait_s=wait,
                          duration_s=duration)
            for m, event, queue, task, agent, wait, duration in lines
        )  # fmt: skip
    return {"enquiries": e, "experts": x}


@pytest.fixture
async def supervisor(as_user: Any) -> AsyncIterator[Client]:
    clock.set_now(at(120))
    async with as_user("super1", ["supervisor"]) as client:
        yield client


async def test_a_day_per_half_hour(supervisor: Client, queues: dict[str, int]) -> None:
    response = await supervisor.get(f"/api/routing/metrics?start={DAY}&end={DAY}&interval=30")
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["start"], report["end"], report["interval"], report["queue_id"]) == (DAY, DAY, 30, None)
    enquiries, experts = report["queues"]
    assert (enquiries["name"], enquiries["sl_seconds"]) == ("Enquiries", 20)
    assert (experts["name"], experts["sl_seconds"]) == ("Experts", 30)
    totals = enquiries["totals"]
    assert (totals["offered"], totals["answered"], totals["answered_in_time"]) == (4, 2, 1)
    assert (totals["abandoned"], totals["short_abandoned"]) == (2, 1)
    assert totals["service_level"] == 0.5
    assert totals["service_level_with_abandons"] == pytest.approx(1 / 3)  # 1 / (2 answered + 1 long abandon)
    assert (totals["asa_s"], totals["aht_s"], totals["avg_wrap_s"], totals["longest_wait_s"]) == (17.5, 240, 30, 45)
    per_half_hour = [(i["label"], i["offered"], i["answered"]) for i in enquiries["intervals"]]
    assert per_half_hour == [("10:00", 2, 1), ("10:30", 2, 1)]
    assert experts["totals"]["service_level"] == 1.0  # 25 s is within the experts' 30 s
    assert experts["totals"]["occupancy"] == pytest.approx(0.5)  # agent 8: 10 of 20 minutes logged in on the call
    # agent 7 logged in at 10:00 and still is at 12:00 (now): busy 3 + 0.5 + 4 + 0.5 of 120 minutes
    assert totals["occupancy"] == pytest.approx(8 / 120)


async def test_filters(supervisor: Client, queues: dict[str, int]) -> None:
    only = (await supervisor.get(f"/api/routing/metrics?start={DAY}&queue_id={queues['experts']}&interval=15")).json()
    assert [q["name"] for q in only["queues"]] == ["Experts"]
    assert [i["label"] for i in only["queues"][0]["intervals"]] == ["10:00", "10:15"]  # answered, then completed
    two_days = (await supervisor.get("/api/routing/metrics?start=2026-11-22&end=2026-11-23&interval=60")).json()
    enquiries = two_days["queues"][0]
    assert enquiries["totals"]["answered"] == 3
    assert [i["label"] for i in enquiries["intervals"]] == ["11-22 10:00", "11-23 10:00"]
    today = (await supervisor.get("/api/routing/metrics")).json()  # the clock says 12:00 that day
    assert today["start"] == DAY and today["interval"] == 30 and len(today["queues"]) == 2
    form = await supervisor.get(f"/api/routing/metrics?start={DAY}&end=&queue_id=")  # the page's form, "all"
    assert form.status_code == 200 and len(form.json()["queues"]) == 2
    quiet = (await supervisor.get("/api/routing/metrics?start=2026-11-20")).json()
    assert quiet["queues"] == []
    asked = (await supervisor.get(f"/api/routing/metrics?start=2026-11-20&queue_id={queues['experts']}")).json()
    assert asked["queues"][0]["totals"]["offered"] == 0 and asked["queues"][0]["intervals"] == []


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("interval=20", {"query.interval"}),
        ("start=2026-11-23&end=2026-11-22", {"end"}),
        ("start=2026-10-01&end=2026-11-23", {"end"}),
        ("start=yesterday", {"query.start"}),
        ("queue_id=0", {"query.queue_id"}),
        ("start=0001-01-01", {"start"}),
        ("end=9999-12-31", {"end"}),
    ],
)
async def test_bad_filters(supervisor: Client, query: str, fields: set[str]) -> None:
    error = assert_error(await supervisor.get(f"/api/routing/metrics?{query}"), 422, "invalid_input")
    assert {d["field"] for d in error["details"]} == fields


async def test_csv_export(supervisor: Client, queues: dict[str, int]) -> None:
    supervisor.cookies.set("pl_lang", "en")
    response = await supervisor.get(f"/api/routing/metrics/export.csv?start={DAY}&interval=30")
    assert response.status_code == 200, response.text
    assert "queues-20261123-20261123-30min.csv" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert len(rows) == 1 + 3  # enquiries 10:00 and 10:30, experts 10:00
    header = rows[0]
    first = dict(zip(header, rows[1], strict=True))
    assert first["Queue"] == "Enquiries" and first["From"] == "2026-11-23 10:00" and first["To"] == "2026-11-23 10:30"
    assert (first["Offered"], first["Answered"], first["Short abandons"]) == ("2", "1", "1")
    assert first["Service level (percent)"] == "100.0"
    assert first["Longest wait (s)"] == "10.0"


async def test_who_may_read(as_user: Any, queues: dict[str, int]) -> None:
    for username, roles in (("agent1", ["agent"]), ("planner1", ["workforce"])):
        async with as_user(username, roles) as client:
            assert_error(await client.get("/api/routing/metrics"), 403, "permission_denied")
            assert_error(await client.get("/api/routing/metrics/export.csv"), 403)
            assert (await client.get("/routing/reports")).status_code == 403


async def test_the_page(supervisor: Client, queues: dict[str, int]) -> None:
    supervisor.cookies.set("pl_lang", "en")
    page = (await supervisor.get(f"/routing/reports?start={DAY}&end={DAY}&interval=30")).text
    assert "Enquiries" in page and "Experts" in page
    assert 'data-figure="service_level">50.0%' in page
    assert "/api/routing/metrics/export.csv?start=2026-11-23" in page
    assert 'id="rr-data"' in page
    empty = (await supervisor.get("/routing/reports?start=2026-11-01")).text
    assert 'id="rr-empty"' in empty and "export.csv" not in empty
    bad = await supervisor.get("/routing/reports?start=someday&interval=7")
    assert bad.status_code == 200
    assert "enter a date as YYYY-MM-DD" in bad.text and "Choose 15, 30 or 60 minutes." in bad.text
    assert "Enquiries" in bad.text  # today's figures instead
