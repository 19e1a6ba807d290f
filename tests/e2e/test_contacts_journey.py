"""The contact-record journey in a real browser: an agent opens /contacts, filters by text (the rows
update without a reload), opens a contact, codes it by typing in the disposition picker, writes a note
and closes it with Alt+L; the contact shows closed, the list's status filter finds it."""

from __future__ import annotations

import re
from typing import Any

import httpx
from e2e_helpers import OpenPage, api_login, ensure_user
from playwright.sync_api import expect

Server = Any

AGENT, AGENT_PASSWORD = "ct.agent", "Codes-Contacts-2026"


def ensure_tree(server: Server, admin_api: httpx.Client) -> dict[str, int]:
    if "ct_tree" in server.state:
        return dict(server.state["ct_tree"])
    ids: dict[str, int] = {}
    for code, name, parent in (("e2e.consult", "咨询", None), ("e2e.consult.hours", "门诊时间", "e2e.consult"),
                               ("e2e.complaint", "投诉", None)):  # fmt: skip
        made = admin_api.post("/api/dispositions", json={"code": code, "name": name,
                                                          "parent_id": ids[parent] if parent else None})  # fmt: skip
        assert made.status_code == 201, made.text
        ids[code] = int(made.json()["id"])
    server.state["ct_tree"] = ids
    return ids


def test_an_agent_filters_codes_and_closes_a_contact(
    open_page: OpenPage, admin_api: httpx.Client, server: Server
) -> None:
    tree = ensure_tree(server, admin_api)
    ensure_user(server, admin_api, AGENT, AGENT_PASSWORD)
    with api_login(server, AGENT, AGENT_PASSWORD) as http:
        for subject, phone in (("周六儿科门诊时间", "13812345678"), ("医保异地结算", "13900000001")):
            made = http.post("/api/contacts", json={"channel": "voice", "phone": phone, "caller_name": "王小明",
                                                    "subject": subject})  # fmt: skip
            assert made.status_code == 201, made.text
        page = open_page(AGENT, cookies=[{"name": "pl_session", "value": http.cookies["pl_session"]}])
        page.on("dialog", lambda dialog: dialog.accept())

        page.goto("/contacts?mine=true")  # other journeys' contacts (a chat's) are someone else's
        expect(page.locator("#rows tbody tr")).to_have_count(2)
        expect(page.locator("#rows")).to_contain_text("138****5678")
        expect(page.locator("#rows")).not_to_contain_text("13812345678")
        page.keyboard.press("/")
        expect(page.locator("#ct-q")).to_be_focused()
        page.keyboard.type("儿科")
        expect(page.locator("#rows tbody tr")).to_have_count(1)
        expect(page).to_have_url(re.compile(r"q=%E5%84%BF%E7%A7%91"))
        row = page.locator("#rows tbody tr").first
        reference = row.locator("a.mono").inner_text()
        row.locator("a.mono").click()
        expect(page).to_have_url(re.compile(r"/contacts/\d+$"))
        expect(page.locator(".page-head h1")).to_contain_text(reference)

        page.fill("#ct-tree-filter", "hours")
        page.locator("#ct-tree-filter").press("Enter")  # the only match is ticked
        expect(page.locator(f'input[name=disposition_ids][value="{tree["e2e.consult.hours"]}"]')).to_be_checked()
        page.fill("#ct-notes", "已告知周六上午有儿科门诊")
        with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/close")) as closed:
            page.locator("#ct-notes").press("Alt+l")
        assert closed.value.status == 200, closed.value.text()
        expect(page.locator(".page-head .status")).to_have_text("Closed")
        expect(page.locator("main")).to_contain_text("咨询 / 门诊时间")
        expect(page.locator("[data-ct-contact]")).to_have_count(0)

        page.goto("/contacts?status=closed")
        expect(page.locator("#rows tbody tr")).to_have_count(1)
        expect(page.locator("#rows")).to_contain_text(reference)
        expect(page.locator("#rows")).to_contain_text("门诊时间")
