"""The IVR flow editor in a real browser: the administrator opens a published flow from the list, adds a
menu key that leads to a new goodbye node, renames it and saves with Ctrl+S; deletes the voicemail node
a key led to, so the saved draft has a problem, shown in the list at the top and on the menu's key;
leads the key to the goodbye instead (reached twice now, so shown once and linked the second time),
publishes with a note and sees version 2 live in the history. A save over someone else's change is
refused with a way to reload."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.sync_api import Page, expect

NAME = "E2E 热线 8686"
HOTLINE = {"start": "welcome", "nodes": [
    {"type": "play", "id": "welcome", "prompt": {"text": "您好，欢迎致电。"}, "next": "menu"},
    {"type": "menu", "id": "menu", "prompt": {"text": "留言请按1。"}, "choices": {"1": "voicemail"},
     "otherwise": "goodbye"},
    {"type": "voicemail", "id": "voicemail", "prompt": {"text": "请在提示音后留言。"}},
    {"type": "hangup", "id": "goodbye"},
]}  # fmt: skip


def published_flow(admin_api: httpx.Client) -> int:
    created = admin_api.post("/api/voice/flows", json={"name": NAME, "number": "8686", "draft": HOTLINE})
    assert created.status_code == 201, created.text
    flow = created.json()
    published = admin_api.post(f"/api/voice/flows/{flow['id']}/publish", json={"version": flow["version"]})
    assert published.status_code == 201, published.text
    return int(flow["id"])


def test_an_administrator_edits_checks_and_publishes_a_flow(admin: Page, admin_api: httpx.Client) -> None:
    flow_id = published_flow(admin_api)
    admin.goto("/voice/flows")
    row = admin.locator(f'tr[data-flow-id="{flow_id}"]')
    expect(row).to_contain_text("Version 1")
    row.get_by_role("link", name=NAME).click()

    live = admin.get_by_test_id("live-version")
    expect(live).to_have_text("Version 1 is live.")
    problems = admin.get_by_test_id("problems")
    expect(problems).to_contain_text("No problems")
    menu = admin.locator("#node-menu")
    expect(menu.locator(".vf-via")).to_have_count(0)  # follows the greeting in sequence
    expect(admin.locator("#node-voicemail .vf-via")).to_have_text("Key 1 →")

    # a new key leads to a new goodbye node, which is renamed and given its words
    menu.get_by_role("button", name="Add a key").click()
    menu.get_by_label("Key 2 (menu)", exact=True).select_option(label="+ new node: Goodbye (hang up)")
    created = admin.locator("#node-hangup_1")
    expect(created.locator(".vf-via")).to_have_text("Key 2 →")
    node_id = created.get_by_label("Node id")
    expect(node_id).to_be_focused()
    node_id.fill("thanks")
    node_id.press("Enter")
    thanks = admin.locator("#node-thanks")
    thanks.get_by_label("Goodbye words (optional)").fill("感谢来电，再见。")
    state = admin.get_by_test_id("save-state")
    expect(state).to_have_text("Unsaved changes")
    admin.keyboard.press("Control+s")
    expect(state).to_have_text("All changes saved")
    expect(problems).to_contain_text("No problems")

    # without the voicemail node, key 1 leads nowhere: the saved draft has a problem
    admin.get_by_role("button", name="Delete node voicemail").click()
    expect(admin.locator(".vf-missing")).to_contain_text("Leads to voicemail, which does not exist.")
    admin.get_by_role("button", name="Save draft").click()
    leads_nowhere = "It leads to voicemail, which does not exist."
    expect(problems.get_by_role("link")).to_have_text(f"Node menu · Key 1: {leads_nowhere}")
    expect(menu.locator('[data-key="1"] .field-error')).to_have_text(leads_nowhere)
    expect(menu.get_by_label("Key 1 (menu)", exact=True)).to_have_attribute("aria-invalid", "true")

    # key 1 leads to the goodbye: reached twice, it is shown once and linked the second time
    menu.get_by_label("Key 1 (menu)", exact=True).select_option("thanks")
    expect(admin.locator("#node-thanks .vf-via")).to_have_text("Key 1 →")
    expect(admin.get_by_role("link", name="→ go to node thanks")).to_be_visible()
    admin.get_by_label("Note").fill("按1改为结束语")
    admin.get_by_role("button", name="Publish", exact=True).click()
    expect(live).to_have_text("Version 2 is live.")
    expect(problems).to_contain_text("No problems")
    versions = admin.get_by_test_id("versions").locator("tbody tr")
    expect(versions).to_have_count(2)
    expect(versions.first).to_contain_text("v2")
    expect(versions.first).to_contain_text("按1改为结束语")
    expect(versions.first).to_contain_text("In use")
    expect(versions.nth(1).get_by_role("button", name="Put this version live")).to_be_visible()
    expect(state).to_have_text("All changes saved")
    flow = admin_api.get(f"/api/voice/flows/{flow_id}").json()
    assert flow["live_version"] == 2
    assert flow["draft"]["nodes"][1]["choices"] == {"1": "thanks", "2": "thanks"}

    # someone else saves meanwhile: this editor's save is refused with a way to reload
    other = admin_api.patch(f"/api/voice/flows/{flow_id}", json={"version": flow["version"], "description": "另一人"})
    assert other.status_code == 200, other.text
    admin.get_by_label("Description").fill("我的修改")
    admin.get_by_role("button", name="Save draft").click()
    expect(admin.get_by_role("alert")).to_contain_text("Someone else saved this flow")
    expect(admin.get_by_role("link", name="Reload the page")).to_be_visible()
    expect(state).to_have_text("Unsaved changes")


def test_a_new_flow_starts_from_a_greeting_and_a_goodbye(admin: Page, admin_api: Any) -> None:
    admin.goto("/voice/flows")
    admin.get_by_role("button", name="New flow").click()
    dialog = admin.get_by_role("dialog")
    dialog.get_by_label("Name").fill("E2E 新流程")
    dialog.get_by_role("button", name="Create").click()
    expect(admin).to_have_url(re.compile(r"/voice/flows/\d+$"))
    expect(admin.get_by_test_id("live-version")).to_have_text("Not published")
    expect(admin.locator("#node-welcome")).to_contain_text("Start of the call")
    expect(admin.locator("#node-goodbye")).to_contain_text("An end: the call leaves the flow here.")
    admin.on("dialog", lambda dialog: dialog.accept())
    admin.get_by_role("button", name="Delete flow").click()
    expect(admin).to_have_url(re.compile(r"/voice/flows$"))
    expect(admin.get_by_role("link", name="E2E 新流程")).to_have_count(0)
