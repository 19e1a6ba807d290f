"""The staffing and queue-report journey in a real browser: a supervisor opens Staffing, enters the
contacts of a half-hour and sees the agents needed and the roster (the published worked example: 14 on
the phones, 20 on the roster at 30 % shrinkage), pastes a day, fills a weekday from history, gets a
field error from the server and a gap in the roster, exports the plan; then opens the queue report.

The queue log is written straight into the database (lines of today and of a week ago), as the router
would have written them."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from e2e_helpers import OpenPage, api_login
from playwright.sync_api import Page, expect

Server = Any

SUPERVISOR, SUPERVISOR_PASSWORD = "rs.super", "Plans-Staffing-2026"
SHANGHAI = ZoneInfo("Asia/Shanghai")
COLUMNS = ("at", "event", "queue_id", "task_id", "agent_id", "channel", "wait_s", "duration_s")


def setup(server: Server, admin_api: httpx.Client) -> dict[str, int]:
    """A queue and the supervisor, made as the admin."""
    if "rs" in server.state:
        return dict(server.state["rs"])
    queue = admin_api.post(
        "/api/routing/queues", json={"code": "RS-ENQ", "name": "咨询热线 (rs e2e)", "sl_seconds": 20, "sl_target": 0.8}
    )
    assert queue.status_code == 201, queue.text
    created = admin_api.post(
        "/api/users",
        json={"username": SUPERVISOR, "display_name": "Rs Super", "password": "Temporary-Pass-90",
              "roles": ["supervisor"]},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    with api_login(server, SUPERVISOR, "Temporary-Pass-90") as http:
        changed = http.post(
            "/api/auth/password", json={"current_password": "Temporary-Pass-90", "new_password": SUPERVISOR_PASSWORD}
        )
        assert changed.status_code == 204, changed.text
    ids = {"queue": int(queue.json()["id"])}
    server.state["rs"] = ids
    return ids


def write_log(server: Server, lines: list[tuple[Any, ...]]) -> None:
    """Queue-log lines (COLUMNS) into routing_queue_log."""
    url = os.environ.get("PATIENTLINE_E2E_DATABASE_URL", "")
    names = ", ".join(COLUMNS)
    if url.startswith("postgresql"):
        import asyncpg

        async def insert() -> None:
            conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
            try:
                marks = ", ".join(f"${n}" for n in range(1, len(COLUMNS) + 1))
                await conn.executemany(f"INSERT INTO routing_queue_log ({names}) VALUES ({marks})", lines)  # noqa: S608
            finally:
                await conn.close()

        worker = threading.Thread(target=lambda: asyncio.run(insert()))  # Playwright owns this thread's loop
        worker.start()
        worker.join()
        return
    stored = "%Y-%m-%d %H:%M:%S.%f"  # naive UTC, as the app keeps times in SQLite
    rows = [(line[0].astimezone(UTC).strftime(stored), *line[1:]) for line in lines]
    with sqlite3.connect(Path(server.log).parent / "patientline.db", timeout=10) as conn:
        conn.executemany(f"INSERT INTO routing_queue_log ({names}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)  # noqa: S608


def interval_row(page: Page, time: str) -> Any:
    return page.locator("#st-intervals tr", has=page.locator("th", has_text=re.compile(f"^{time}$")))


def test_a_supervisor_plans_a_day_and_reads_the_queue_report(
    open_page: OpenPage, admin_api: httpx.Client, server: Server
) -> None:
    queue = setup(server, admin_api)["queue"]
    now = datetime.now(SHANGHAI)
    a_week_ago_0900 = (now - timedelta(days=7)).replace(hour=9, minute=5, second=0, microsecond=0)
    history = [(a_week_ago_0900 + timedelta(minutes=n), "enter", queue, 9000 + n, None, "voice", None, None)
               for n in range(12)]  # fmt: skip
    moment = now - timedelta(minutes=3)  # today's calls, in the interval of three minutes ago
    today = [
        (moment - timedelta(seconds=60), "login", None, None, 1, None, None, None),
        (moment - timedelta(seconds=40), "enter", queue, 9100, None, "voice", None, None),
        (moment - timedelta(seconds=30), "accept", queue, 9100, 1, "voice", 10.0, None),
        (moment - timedelta(seconds=5), "complete", queue, 9100, 1, "voice", None, 25.0),
        (moment - timedelta(seconds=20), "enter", queue, 9101, None, "voice", None, None),
        (moment, "abandon", queue, 9101, None, "voice", 20.0, None),
    ]
    write_log(server, history + today)

    with api_login(server, SUPERVISOR, SUPERVISOR_PASSWORD) as http:
        page = open_page("supervisor", cookies=[{"name": "pl_session", "value": http.cookies["pl_session"]}])
        page.goto("/")
        page.locator(".sidenav").get_by_role("link", name="Staffing").click()
        expect(page).to_have_url(re.compile(r"/routing/staffing$"))
        expect(page.locator("#st-empty")).to_be_visible()
        expect(page.locator("#st-export")).to_be_disabled()

        # the worked example: 100 contacts from 10:00 to 10:30 (200 an hour), AHT 180 s, 80 % in 20 s
        interval_row(page, "10:00").locator("input").fill("100")
        page.get_by_role("button", name="Calculate").click()
        ten = interval_row(page, "10:00")
        expect(ten.locator('[data-out="raw_agents"]')).to_have_text("14")
        expect(ten.locator('[data-out="scheduled_agents"]')).to_have_text("20")
        expect(ten.locator('[data-out="service_level"]')).to_have_text("88.8%")
        expect(ten.locator('[data-out="asa_s"]')).to_have_text("7.8")
        day = page.locator('#st-roster-table tr[data-shift-result="Day shift"]')
        expect(day).to_contain_text("08:00–16:00")
        expect(day.locator("td").nth(3)).to_have_text("20")
        expect(day.locator("td").nth(4)).to_have_text("10:00")
        expect(page.locator("#st-chart svg").first).to_be_attached()
        expect(page.locator("#st-status")).to_contain_text("Erlang C")

        # a changed target recalculates at once: a minute to answer needs fewer agents
        page.fill("#st-sls", "60")
        expect(ten.locator('[data-out="raw_agents"]')).to_have_text("13")

        # a pasted day (a column from a spreadsheet): 40 contacts in every half-hour
        page.fill("#st-paste", "\n".join(["40"] * 48))
        page.get_by_role("button", name="Use pasted values").click()
        expect(page.locator("#st-totals")).to_contain_text("1920")
        for shift in ("Day shift", "Evening shift", "Night shift"):
            expect(page.locator(f'#st-roster-table tr[data-shift-result="{shift}"] td').nth(4)).not_to_have_text("none")

        # a shift whose name is taken: the server's problem shows at the field
        page.get_by_role("button", name="Add a shift").click()
        new_shift = page.locator("#st-shifts tr[data-shift]").last
        new_shift.locator('[name="shift_name"]').fill("Night shift")
        new_shift.locator('[name="shift_start"]').fill("22:00")
        new_shift.locator('[name="shift_end"]').fill("06:00")
        page.get_by_role("button", name="Calculate").click()
        expect(new_shift.locator("td").first.locator(".field-error")).to_have_text("Two shifts have this name.")
        expect(new_shift.locator('[name="shift_name"]')).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#st-problems")).to_be_visible()
        new_shift.locator("[data-remove-shift]").click()
        # without the night shift, the night's half-hours have nobody
        page.locator("#st-shifts tr[data-shift]").nth(2).locator("[data-remove-shift]").click()
        expect(page.locator("#st-uncovered")).to_contain_text("No shift covers these half-hours with contacts: 00:00")
        expect(page.locator("#st-problems")).to_be_hidden()

        # from history: the same weekday a week ago had 12 arrivals from 09:00 to 09:30
        page.select_option("#st-weekday", str(now.weekday()))
        page.select_option("#st-queue", str(queue))
        page.fill("#st-weeks", "1")
        page.get_by_role("button", name="Fill", exact=True).click()
        expect(interval_row(page, "09:00").locator("input")).to_have_value("12")
        expect(interval_row(page, "10:00").locator("input")).to_have_value("")
        expect(interval_row(page, "09:00").locator('[data-out="raw_agents"]')).not_to_have_text("")

        # the plan as CSV
        with page.expect_download() as download:
            page.locator("#st-export").click()
        rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
        assert len(rows) == 49 and rows[19][:3] == ["09:00", "09:30", "12"]

        # the queue report: today's calls of the queue, per half-hour, and an empty day
        page.locator(".sidenav").get_by_role("link", name="Queue report").click()
        expect(page).to_have_url(re.compile(r"/routing/reports$"))
        page.goto(f"/routing/reports?start={moment.date().isoformat()}&queue_id={queue}&interval=30")
        card = page.locator(f'section[data-queue="{queue}"]')
        expect(card).to_contain_text("咨询热线 (rs e2e)")
        expect(card.locator('[data-figure="offered"]')).to_have_text("2")
        expect(card.locator('[data-figure="answered"]')).to_have_text("1")
        expect(card.locator('[data-figure="abandoned"]')).to_have_text("1")
        expect(card.locator('[data-figure="service_level"]')).to_have_text("100.0%")
        expect(card.locator('[data-figure="asa_s"]')).to_have_text("10.0")
        expect(card.locator('[data-figure="occupancy"]')).not_to_have_text("0.0%")  # 25 s of talk since the login
        expect(card.locator(f'[data-chart="{queue}"] svg').first).to_be_attached()
        card.locator("summary").click()
        expect(card.locator(".rr-table tbody tr")).not_to_have_count(0)
        page.select_option("#rr-interval", "15")
        page.get_by_role("button", name="Show").click()
        expect(page).to_have_url(re.compile(r"interval=15"))
        page.goto(f"/routing/reports?start={(now - timedelta(days=30)).date().isoformat()}")
        expect(page.locator("#rr-empty")).to_be_visible()
        http.get("/api/auth/me")  # keeps the API session in use until the page is done
