"""The knowledge journey in a real browser: an editor writes an item with representative questions and
publishes it through review; an agent finds it in the knowledge panel by a variant typed in
traditional characters and by pinyin initials, and copies the spoken answer; a patient finds it on
the public FAQ without logging in."""

from __future__ import annotations

import re
from typing import Any

import httpx
from e2e_helpers import OpenPage, api_login, ensure_user
from playwright.sync_api import Page, expect

Server = Any

QUESTION = "消化内科门诊在几楼？"
VARIANTS = ["消化科在哪一层", "看胃病的门诊在哪儿"]
SPOKEN = "消化内科门诊在门诊楼 3 层 C 区，出电梯右转。"
AGENT, AGENT_PASSWORD = "kb.agent", "Reads-Answers-2026"


def ensure_reference_data(server: Server, admin_api: httpx.Client) -> dict[str, int]:
    """A category and the department the item concerns, made through the API."""
    if "kb" in server.state:
        return dict(server.state["kb"])
    site = admin_api.post("/api/directory/sites", json={"code": "KB-MAIN", "name": "本部 (kb e2e)"})
    assert site.status_code == 201, site.text
    department = admin_api.post(
        "/api/directory/departments", json={"code": "KB-XHNK", "name": "消化内科", "site_id": site.json()["id"]}
    )
    assert department.status_code == 201, department.text
    category = admin_api.post("/api/kb/categories", json={"code": "KB-OPD", "name": "门诊指引"})
    assert category.status_code == 201, category.text
    ids = {"category": category.json()["id"], "department": department.json()["id"]}
    server.state["kb"] = ids
    return ids


def click_step(page: Page, step: str) -> None:
    with page.expect_response(lambda r: f"/transitions/{step}" in r.url) as info:
        page.click(f"button[data-step={step}]")
    assert info.value.status == 200, info.value.text()
    page.wait_for_load_state()


def test_an_editor_writes_and_publishes_an_item(admin: Page, admin_api: httpx.Client, server: Server) -> None:
    ids = ensure_reference_data(server, admin_api)
    admin.goto("/kb/edit/new")
    admin.select_option("#f-category", str(ids["category"]))
    admin.fill("#f-question", QUESTION)
    admin.fill("#f-variants", "\n".join(VARIANTS))
    admin.fill("#f-answer", "<p>在<strong>门诊楼 3 层 C 区</strong>。</p><script>alert(1)</script>")
    expect(admin.locator(".kb-answer-preview strong")).to_have_text("门诊楼 3 层 C 区")  # the server's preview
    admin.fill("#f-spoken", SPOKEN)
    admin.select_option("#f-departments", str(ids["department"]))
    admin.click("form[data-json-form] button[type=submit]")
    expect(admin).to_have_url(re.compile(r"/kb/edit/\d+$"))  # the new item's page
    item_id = int(admin.url.rsplit("/", 1)[1])
    expect(admin.locator(".status")).to_have_text("Draft")
    click_step(admin, "submit")
    expect(admin.locator(".status")).to_have_text("In review")
    click_step(admin, "publish")
    expect(admin.locator(".status")).to_have_text("Published")
    assert "script" not in (admin_api.get(f"/api/kb/items/{item_id}").json()["answer_html"])
    server.state["kb_item"] = item_id


def published_item(server: Server, admin_api: httpx.Client) -> int:
    """The item of the first test, or one made through the API when this test runs alone."""
    if "kb_item" in server.state:
        return int(server.state["kb_item"])
    ids = ensure_reference_data(server, admin_api)
    body = {"category_id": ids["category"], "question": QUESTION, "variants": VARIANTS, "spoken": SPOKEN,
            "answer_html": "<p>门诊楼 3 层 C 区</p>", "department_ids": [ids["department"]]}  # fmt: skip
    item = admin_api.post("/api/kb/items", json=body).json()
    submitted = admin_api.post(f"/api/kb/items/{item['id']}/transitions/submit", json={"version": 1}).json()
    admin_api.post(f"/api/kb/items/{item['id']}/transitions/publish", json={"version": submitted["version"]})
    server.state["kb_item"] = item["id"]
    return int(item["id"])


def search_panel(page: Page, text: str) -> None:
    page.fill("#kb-q", "")
    page.locator("#kb-q").press_sequentially(text, delay=20)


def test_an_agent_finds_it_by_traditional_characters_and_pinyin_initials(
    open_page: OpenPage, admin_api: httpx.Client, server: Server
) -> None:
    item_id = published_item(server, admin_api)
    ensure_user(server, admin_api, AGENT, AGENT_PASSWORD)
    with api_login(server, AGENT, AGENT_PASSWORD) as http:
        page = open_page("agent", cookies=[{"name": "pl_session", "value": http.cookies["pl_session"]}])
        page.goto("/kb")
        search_panel(page, "消化科在哪一層")  # a representative question, in traditional characters
        first = page.locator("[data-hit]").first
        expect(first).to_have_attribute("data-hit", str(item_id))
        page.locator("#kb-q").press("Enter")
        expect(page.locator("#kb-answer [data-spoken]")).to_have_text(SPOKEN)

        search_panel(page, "xhnk")  # pinyin initials of the department it concerns
        expect(page.locator("[data-hit]").first).to_have_attribute("data-hit", str(item_id))
        http.get("/api/auth/me")  # keeps the API session in use until the page is done


def test_a_patient_finds_it_on_the_faq_portal(open_page: OpenPage, admin_api: httpx.Client, server: Server) -> None:
    item_id = published_item(server, admin_api)
    page = open_page("patient")
    page.goto("/faq")
    page.fill("#faq-q", "看胃病的门诊在哪")
    page.locator("#faq-q").press("Enter")
    hit = page.locator(f"[data-hit='{item_id}'] a")
    expect(hit).to_be_visible()
    hit.click()
    expect(page.locator("h1")).to_have_text(QUESTION)
    expect(page.locator("main")).to_contain_text("门诊楼 3 层 C 区")
    assert not [c for c in page.context.cookies() if c["name"] == "pl_session"]
