"""My desk phone in a real browser: the page shows where and as whom the phone registers; a password is
issued and shown once, the page then says when it was set; revoking it asks first and leaves none."""

from __future__ import annotations

import re
from typing import Any

import httpx
from e2e_helpers import ensure_user
from playwright.sync_api import Page, expect


def test_a_person_issues_and_revokes_their_desk_phone_password(admin: Page) -> None:
    admin.goto("/voice/phone")
    setup = admin.get_by_test_id("phone-setup")
    expect(setup).to_contain_text("SIP server (registrar)")
    expect(setup).to_contain_text("patientline")
    state = admin.get_by_test_id("phone-password-state")
    if "None" not in (state.text_content() or ""):  # an earlier run of the page left one
        admin.once("dialog", lambda dialog: dialog.accept())
        admin.get_by_role("button", name="Revoke the password").click()
        expect(state).to_contain_text("None: no phone can register as you.")

    admin.get_by_role("button", name="Issue a password").click()
    shown = admin.get_by_test_id("phone-password")
    expect(shown).to_have_text(re.compile(r"^[2-9a-z]{12}$"))
    admin.reload()
    expect(state).to_contain_text("Set on")
    expect(admin.get_by_test_id("phone-password")).to_be_hidden()  # shown once only

    admin.once("dialog", lambda dialog: dialog.accept())
    admin.get_by_role("button", name="Revoke the password").click()
    expect(state).to_contain_text("None: no phone can register as you.")
    expect(admin.get_by_role("button", name="Issue a password")).to_be_visible()


def test_an_administrator_issues_an_agents_desk_phone_password(
    admin: Page, admin_api: httpx.Client, server: Any
) -> None:
    ensure_user(server, admin_api, "dp.agent", "Desk-Phone-Agent-1")
    agent = next(u for u in admin_api.get("/api/users", params={"q": "dp.agent"}).json() if u["username"] == "dp.agent")
    admin.goto(f"/admin/users/{agent['id']}")
    admin.get_by_role("link", name="Desk phone: its password and set-up").click()
    expect(admin.get_by_role("heading", level=1)).to_have_text(f"Desk phone of {agent['display_name']}")
    expect(admin.get_by_test_id("phone-setup")).to_contain_text("dp.agent")
    state = admin.get_by_test_id("phone-password-state")
    expect(state).to_contain_text(f"None: no phone can register as {agent['display_name']}.")

    admin.get_by_role("button", name="Issue a password").click()
    expect(admin.get_by_test_id("phone-password")).to_have_text(re.compile(r"^[2-9a-z]{12}$"))
    audit = admin_api.get("/api/audit", params={"action": "voice.phone_password.set", "target_id": agent["id"]})
    assert audit.status_code == 200 and audit.json(), audit.text

    admin.reload()
    expect(state).to_contain_text("Set on")
    admin.once("dialog", lambda dialog: dialog.accept())
    admin.get_by_role("button", name="Revoke the password").click()
    expect(state).to_contain_text("None: no phone can register as")
    assert admin.goto("/voice/phone?user_id=99999999").status == 404  # type: ignore[union-attr]
