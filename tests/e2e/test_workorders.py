"""The work-order journey in a real browser: an agent registers a complaint on /workorders/new with the
keyboard; the cardiology handler, whose queue shows it as it arrives, accepts it, replies and records the
result on the order's page; the agent records the patient's evaluation and the order shows closed and
on time."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from e2e_helpers import OpenPage, api_login
from playwright.sync_api import Page, expect

Server = Any

AGENT, AGENT_PASSWORD = "wo.agent", "Registers-Orders-2026"
HANDLER, HANDLER_PASSWORD = "wo.cardio", "Handles-Orders-2026"
SUBJECT = "挂号窗口态度生硬"
REPLY = "已联系挂号处负责人核实情况。"
RESULT = "已对当事人批评教育，并向患者电话致歉。"


def ensure_work_order_setup(server: Server, admin_api: httpx.Client) -> dict[str, int]:
    """Cardiology and the complaint type (cardiology by default), made through the API as an admin."""
    if "wo" in server.state:
        return dict(server.state["wo"])
    site = admin_api.post("/api/directory/sites", json={"code": "WO-MAIN", "name": "本部 (wo e2e)"})
    assert site.status_code == 201, site.text
    department = admin_api.post(
        "/api/directory/departments", json={"code": "WO-XNK", "name": "心内科", "site_id": site.json()["id"]}
    )
    assert department.status_code == 201, department.text
    cardiology = int(department.json()["id"])
    kind = admin_api.post(
        "/api/workorders/types",
        json={
            "code": "complaint", "name": "投诉", "group": "complaint", "categories": ["服务态度", "医疗质量"],
            "fields": [{"key": "visit_date", "label": "就诊日期", "kind": "date", "required": True},
                       {"key": "age", "label": "患者年龄", "kind": "number", "minimum": 0, "maximum": 130}],
            "default_department_id": cardiology,
        },
    )  # fmt: skip
    assert kind.status_code == 201, kind.text
    for username, password, roles, departments in (
        (AGENT, AGENT_PASSWORD, ["agent"], []),
        (HANDLER, HANDLER_PASSWORD, ["handler"], [cardiology]),
    ):
        created = admin_api.post(
            "/api/users",
            json={"username": username, "display_name": username.title(), "password": "Temporary-Pass-90",
                  "roles": roles, "department_ids": departments},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        with api_login(server, username, "Temporary-Pass-90") as http:
            changed = http.post(
                "/api/auth/password", json={"current_password": "Temporary-Pass-90", "new_password": password}
            )
            assert changed.status_code == 204, changed.text
    ids = {"cardiology": cardiology, "type": int(kind.json()["id"])}
    server.state["wo"] = ids
    return ids


@contextmanager
def logged_in(server: Server, open_page: OpenPage, username: str, password: str) -> Iterator[Page]:
    with api_login(server, username, password) as http:
        yield open_page(username, cookies=[{"name": "pl_session", "value": http.cookies["pl_session"]}])


def take_step(page: Page, step: str, status: str) -> None:
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith(f"/{step}")) as info:
        page.click(f"button[data-step={step}]")
    assert info.value.status == 200, info.value.text()
    expect(page.locator(".wo-head .status")).to_have_text(status)  # after the reload


def test_a_complaint_goes_round_the_loop(open_page: OpenPage, admin_api: httpx.Client, server: Server) -> None:
    ids = ensure_work_order_setup(server, admin_api)
    with (
        logged_in(server, open_page, HANDLER, HANDLER_PASSWORD) as handler,
        logged_in(server, open_page, AGENT, AGENT_PASSWORD) as agent,
    ):
        handler.goto("/workorders/department")
        expect(handler.locator("#rows .empty")).to_contain_text("Nothing waiting to be accepted")
        handler.wait_for_function("window.plEvents && window.plEvents.readyState === 1")

        # the agent registers it with the keyboard
        agent.goto("/workorders/new")
        values = agent.locator("input[name=type_id]").evaluate_all("radios => radios.map(r => r.value)")
        agent.keyboard.press(str(values.index(str(ids["type"])) + 1))  # other journeys may add types
        expect(agent.locator(f'input[name=type_id][value="{ids["type"]}"]')).to_be_checked()
        expect(agent.locator("#wo-department")).to_have_value(str(ids["cardiology"]))  # the type's department
        block = agent.locator(f'[data-type-block="{ids["type"]}"]')
        block.locator("select[name=category]").select_option("服务态度")
        agent.fill("#wo-subject", SUBJECT)
        agent.fill("#wo-description", "患者反映挂号窗口工作人员态度生硬，\n希望改进。")
        agent.locator("#wo-caller-name").fill("张先生")
        agent.locator("#wo-caller-phone").fill("13812345678")
        agent.locator("#wo-subject").press("Control+Enter")  # the required visit date is missing
        expect(block.locator('[data-field="values.visit_date"] .field-error')).to_have_text("This field is required.")
        block.locator('[data-value="visit_date"]').fill("2026-11-20")
        block.locator('[data-value="age"]').fill("200")
        agent.locator("#wo-subject").press("Control+Enter")  # the API refuses the age, next to the field
        expect(block.locator('[data-field="values.age"] .field-error')).to_contain_text("130")
        expect(block.locator('[data-field="values.visit_date"] .field-error')).to_be_hidden()
        block.locator('[data-value="age"]').fill("45")
        agent.locator("#wo-subject").press("Control+Enter")
        expect(agent).to_have_url(re.compile(r"/workorders/\d+$"))
        order_id = int(agent.url.rsplit("/", 1)[1])
        expect(agent.locator(".wo-head .status")).to_have_text("Dispatched")
        expect(agent.locator("[data-department]")).to_have_text("心内科")
        expect(agent.locator(".wo-summary")).to_contain_text("138****5678")
        expect(agent.locator("main")).to_contain_text("患者年龄")
        reference = agent.locator(".wo-head h1 .mono").inner_text()

        # the handler's queue shows it as it arrives (SSE), without a reload
        row = handler.locator(f'#rows tr[data-order="{order_id}"]')
        expect(row).to_contain_text(reference)
        expect(row.locator("[data-countdown]")).to_have_text(re.compile(r"^due in \d+ h$"))
        row.locator("a", has_text=reference).click()
        expect(handler).to_have_url(re.compile(rf"/workorders/{order_id}$"))
        expect(handler.locator("main")).to_contain_text("希望改进")
        take_step(handler, "accept", "Accepted")
        handler.fill("#wo-reply-text", REPLY)
        take_step(handler, "reply", "Replied")
        handler.fill("#wo-resolve-text", RESULT)
        take_step(handler, "resolve", "Resolved")
        expect(handler.locator("[data-no-steps]")).to_be_visible()

        # the agent calls the patient back and records the evaluation
        agent.reload()
        expect(agent.locator(".wo-head .status")).to_have_text("Resolved")
        agent.check("input[name=satisfied][value=true]")
        agent.fill("#wo-evaluate-comment", "满意")
        take_step(agent, "evaluate", "Closed")
        expect(agent.locator(".wo-head [data-verdict]")).to_have_text("on time")
        expect(agent.locator('[data-deadline="resolve"]')).to_contain_text("on time")
        actions = agent.locator(".wo-timeline > li").evaluate_all("items => items.map(i => i.dataset.action)")
        assert actions == ["created", "dispatch", "accept", "reply", "resolve", "evaluate"]


def test_evidence_a_stale_version_and_the_search(open_page: OpenPage, admin_api: httpx.Client, server: Server) -> None:
    ids = ensure_work_order_setup(server, admin_api)
    with api_login(server, AGENT, AGENT_PASSWORD) as http:
        body = {
            "type_id": ids["type"], "category": "医疗质量", "subject": "检查报告迟迟未出",
            "values": {"visit_date": "2026-11-21"}, "caller_name": "李女士", "caller_phone": "13987654321",
        }  # fmt: skip
        created = http.post("/api/workorders", json=body)
        assert created.status_code == 201, created.text
        order = created.json()
        page = open_page("agent-2", cookies=[{"name": "pl_session", "value": http.cookies["pl_session"]}])

        # "/" jumps to the search; the last digits of the phone find the order
        page.goto("/workorders")
        page.keyboard.press("/")
        expect(page.locator("#wo-q")).to_be_focused()
        page.keyboard.type("87654321")
        expect(page.locator("#rows tbody tr")).to_have_count(1)
        expect(page.locator("#rows")).to_contain_text(order["reference"])
        expect(page.locator("#rows")).to_contain_text("139****4321")

        # evidence: too large is refused before sending, a picture is attached
        page.goto(f"/workorders/{order['id']}")
        page.click("summary:has-text('Attach evidence')")
        big = {"name": "scan.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-" + b"0" * (8 * 1024 * 1024)}
        page.set_input_files("#wo-file", big)
        page.click(".wo-upload button[type=submit]")
        expect(page.locator('.wo-upload [data-field="file"] .field-error')).to_contain_text("8 MB")
        png = {"name": "receipt.png", "mimeType": "image/png", "buffer": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64}
        page.set_input_files("#wo-file", png)
        page.fill("#wo-file-note", "收费单据")
        with page.expect_response(lambda r: r.url.endswith("/attachments") and r.request.method == "POST") as info:
            page.click(".wo-upload button[type=submit]")
        assert info.value.status == 201, info.value.text()
        expect(page.locator(".wo-timeline a[download]")).to_have_text("receipt.png")

        # someone else stops the clock meanwhile: the page says so instead of overwriting
        paused = http.post(f"/api/workorders/{order['id']}/pause", json={"version": order["version"], "reason": "x"})
        assert paused.status_code == 200, paused.text
        page.click("summary:has-text('Stop the clock')")
        page.fill("#wo-pause-reason", "等待患者补充材料")
        page.click("form[data-action$='/pause'] button[type=submit]")
        expect(page.locator("#wo-stale")).to_be_visible()
        page.click("#wo-stale [data-reload]")
        expect(page.locator(".wo-paused")).to_be_visible()

        # it turns out to be a duplicate: merged into another order found by its reference
        other = http.post("/api/workorders", json=body | {"subject": "检查报告未出（再次来电）"})
        assert other.status_code == 201, other.text
        page.click("summary:has-text('Merge into another order')")
        page.fill("#wo-merge-reference", other.json()["reference"].lower())
        take_step(page, "merge", "Merged")
        expect(page.locator(f'a[href="/workorders/{other.json()["id"]}"]')).to_have_text(other.json()["reference"])
