"""The supervision journey in a real browser: a supervisor opens the supervision list, sees an overdue
order in red with its countdown ticking, selects it and sends its department a reminder; then opens the
reports and the charts render.

The server runs on the real clock, so the order is made overdue by moving its times back in the
database (as if it had been registered 26 hours ago)."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from e2e_helpers import OpenPage, api_login
from playwright.sync_api import Page, expect

Server = Any

SUPERVISOR, SUPERVISOR_PASSWORD = "sv.super", "Supervises-Orders-2026"


def setup(server: Server, admin_api: httpx.Client) -> dict[str, int]:
    """A department, a complaint type (reply within 24 hours) and the supervisor, made as the admin."""
    if "sv" in server.state:
        return dict(server.state["sv"])
    site = admin_api.post("/api/directory/sites", json={"code": "SV-MAIN", "name": "本部 (sv e2e)"})
    assert site.status_code == 201, site.text
    department = admin_api.post(
        "/api/directory/departments", json={"code": "SV-PFK", "name": "皮肤科", "site_id": site.json()["id"]}
    )
    assert department.status_code == 201, department.text
    kind = admin_api.post(
        "/api/workorders/types",
        json={"code": "sv-complaint", "name": "投诉（督办）", "group": "complaint", "position": 900},  # listed last
    )
    assert kind.status_code == 201, kind.text
    created = admin_api.post(
        "/api/users",
        json={"username": SUPERVISOR, "display_name": "Sv Super", "password": "Temporary-Pass-90",
              "roles": ["supervisor"]},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    with api_login(server, SUPERVISOR, "Temporary-Pass-90") as http:
        changed = http.post(
            "/api/auth/password", json={"current_password": "Temporary-Pass-90", "new_password": SUPERVISOR_PASSWORD}
        )
        assert changed.status_code == 204, changed.text
    ids = {"department": int(department.json()["id"]), "type": int(kind.json()["id"])}
    server.state["sv"] = ids
    return ids


def move_back(server: Server, order_id: int, hours: float) -> None:
    """Registered `hours` ago: receipt, clock and the reply deadline (24 h after receipt) move back."""
    now = datetime.now(UTC)
    received = now - timedelta(hours=hours)
    due = received + timedelta(hours=24)
    url = os.environ.get("PATIENTLINE_E2E_DATABASE_URL", "")
    if url.startswith("postgresql"):
        import asyncpg

        async def update() -> None:
            conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
            try:
                await conn.execute(
                    "UPDATE work_orders SET received_at = $1, clock_started_at = $1, dispatched_at = $1, "
                    "reply_due_at = $2, next_due_at = $2 WHERE id = $3",
                    received, due, order_id,
                )  # fmt: skip
            finally:
                await conn.close()

        worker = threading.Thread(target=lambda: asyncio.run(update()))  # Playwright owns this thread's loop
        worker.start()
        worker.join()
        return
    stored = "%Y-%m-%d %H:%M:%S.%f"  # naive UTC, as the app keeps times in SQLite
    with sqlite3.connect(Path(server.log).parent / "patientline.db", timeout=10) as conn:
        conn.execute(
            "UPDATE work_orders SET received_at = ?, clock_started_at = ?, dispatched_at = ?, reply_due_at = ?, "
            "next_due_at = ? WHERE id = ?",
            (*[received.strftime(stored)] * 3, *[due.strftime(stored)] * 2, order_id),
        )  # fmt: skip


def test_a_supervisor_reminds_an_overdue_order_and_reads_the_reports(
    open_page: OpenPage, admin_api: httpx.Client, server: Server
) -> None:
    ids = setup(server, admin_api)
    order = admin_api.post(
        "/api/workorders",
        json={"type_id": ids["type"], "subject": "皮肤科候诊时间过长", "department_id": ids["department"],
              "caller_phone": "13912345678"},
    )  # fmt: skip
    assert order.status_code == 201, order.text
    order_id, reference = order.json()["id"], order.json()["reference"]
    move_back(server, order_id, hours=26)  # the reply was due two hours ago

    with api_login(server, SUPERVISOR, SUPERVISOR_PASSWORD) as http:
        page = open_page("supervisor", cookies=[{"name": "pl_session", "value": http.cookies["pl_session"]}])
        page.goto("/workorders/supervision")
        row = page.locator(f'#board tr[data-order-id="{order_id}"]')
        expect(row).to_contain_text(reference)
        expect(row).to_have_class("row-overdue")
        countdown = row.locator(".countdown")
        expect(countdown).to_have_class(re.compile(r"\burg-overdue\b"))
        expect(countdown).to_have_text(re.compile(r"^Overdue by 0[12]:\d\d:\d\d$"))
        assert countdown.evaluate("el => getComputedStyle(el).color") == "rgb(140, 29, 24)"  # red on pink
        first = countdown.inner_text()
        expect(countdown).not_to_have_text(first, timeout=3000)  # it ticks
        expect(page.locator(".wo-chip", has_text="皮肤科")).to_contain_text("1 overdue")

        # select it and send the department a reminder
        send = page.get_by_role("button", name=re.compile(r"Send reminder"))
        expect(send).to_be_disabled()
        row.locator("input[type=checkbox]").check()
        expect(send).to_contain_text("(1)")
        page.fill("#reminder-note", "请今天下班前答复患者")
        with page.expect_response(lambda r: r.url.endswith("/api/workorders/reminders")) as info:
            send.click()
        assert info.value.status == 200 and info.value.json() == {"reminded": 1}
        expect(page.locator("#toasts")).to_contain_text("Reminder sent for 1 orders.")
        expect(send).to_be_disabled()
        timeline = admin_api.get(f"/api/workorders/{order_id}").json()["timeline"]
        assert timeline[-1]["action"] == "reminder" and timeline[-1]["note"] == "请今天下班前答复患者"

        # a new order appears without a reload (workorders.changed over the event stream)
        page.wait_for_function("window.plEvents && window.plEvents.readyState === 1")
        expect(page.locator(".wo-live")).to_have_text("Live")
        fresh = admin_api.post(
            "/api/workorders",
            json={"type_id": ids["type"], "subject": "新来电：皮肤科复诊", "department_id": ids["department"]},
        )
        assert fresh.status_code == 201, fresh.text
        new_row = page.locator(f'#board tr[data-order-id="{fresh.json()["id"]}"]')
        expect(new_row.locator(".countdown")).to_have_class(re.compile(r"\burg-ok\b"))
        expect(page.locator(".wo-chip", has_text="皮肤科")).to_contain_text("2")

        # the reports: figures and the three charts
        page.goto("/workorders/reports")
        expect(page.locator('[data-figure="count"]')).not_to_have_text("0")
        for chart in ("daily", "departments", "types"):
            expect(page.locator(f'[data-chart="{chart}"] svg').first).to_be_attached()
        expect(page.locator('[data-chart="departments"]')).to_contain_text("皮肤科")
        http.get("/api/auth/me")  # keeps the API session in use until the page is done


def test_an_admin_configures_a_type_in_the_editor(admin: Page, admin_api: httpx.Client, server: Server) -> None:
    ids = setup(server, admin_api)
    admin.goto("/workorders/types/new")
    admin.fill("#t-code", "sv-rental")
    admin.fill("#t-name", "设备租借（督办）")
    admin.select_option("#t-group", "service")
    admin.select_option("#t-department", str(ids["department"]))
    admin.fill("#t-categories", "轮椅\n拐杖")
    admin.fill("#t-position", "901")
    admin.get_by_role("button", name="Add a field").click()
    row = admin.locator(".wo-fields tbody tr").last
    row.locator("input").first.fill("item")
    row.locator("input").nth(1).fill("物品")
    row.locator("select").select_option("choice")
    row.locator("input[type=checkbox]").check()
    admin.locator("#p-reply-amount").fill("4")  # the reply: 4 working hours
    admin.select_option("#p-reply-unit", "working_hours")
    admin.fill("#p-warn", "150")
    admin.locator("main form button[type=submit]").click()
    # the API's problems, next to their fields
    expect(row.locator(".field-error")).to_contain_text("choice")
    expect(admin.locator("#p-warn")).to_have_attribute("aria-invalid", "true")
    expect(admin.locator("main form")).to_contain_text("Enter a whole number from 1 to 99.")
    row.locator('input[placeholder="A, B, C"]').fill("轮椅, 拐杖")
    admin.fill("#p-warn", "75")
    admin.locator("main form button[type=submit]").press("Control+Enter")
    expect(admin).to_have_url(re.compile(r"/workorders/types$"))
    made = next(t for t in admin_api.get("/api/workorders/types").json() if t["code"] == "sv-rental")
    assert made["fields"][0]["choices"] == ["轮椅", "拐杖"] and made["fields"][0]["required"] is True
    assert made["policy"]["reply"] == {"amount": 4, "unit": "working_hours"} and made["policy"]["warn_at"] == 0.75
    assert made["categories"] == ["轮椅", "拐杖"] and made["default_department_id"] == ids["department"]

    # someone else saves it meanwhile: this editor's save is refused, and says why
    admin.locator("tr", has_text="sv-rental").get_by_role("link", name="sv-rental").click()
    expect(admin.locator("#t-name")).to_have_value("设备租借（督办）")
    changed = admin_api.put(f"/api/workorders/types/{made['id']}", json={
        key: made[key] for key in ("code", "name", "group", "description", "fields", "categories",
                                   "default_department_id", "policy", "sms_templates", "position", "is_active")
    } | {"version": made["version"], "description": "改过了"})  # fmt: skip
    assert changed.status_code == 200, changed.text
    admin.fill("#t-name", "设备租借")
    admin.locator("main form button[type=submit]").click()
    expect(admin.locator("main form [role=alert]")).to_contain_text("changed by someone else")
