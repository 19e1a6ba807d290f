"""My desk phone in a real browser: the page shows where and as whom the phone registers; a password is
issued and shown once, the page then says when it was set; revoking it asks first and leaves none."""

from __future__ import annotations

import re

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
