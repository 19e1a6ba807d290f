"""The main journeys in a real browser: first login and the forced password change, directory editing
with validation, user administration, navigation by role, lockout, and live notifications over SSE.

The tests share one server and run in file order, each building on what the one before made; each can
also run alone (`-k`), because what it needs is then prepared through the API."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from e2e_helpers import ADMIN_PASSWORD, ensure_user
from playwright.sync_api import Page, Response, expect

OpenPage = Callable[..., Page]
Server = Any  # tests/e2e/conftest.py: Server (test modules cannot import a conftest by name)


AGENT = "nurse.li"
AGENT_INITIAL_PASSWORD = "Given-By-Admin-31"
AGENT_PASSWORD = "Only-I-Know-It-58"
SITE = ("E2E-EAST", "East campus (e2e)")
DEPARTMENT = ("E2E-CARD", "Cardiology (e2e)")

USERS_LINK = 'a[href="/admin/users"]'
DEPARTMENTS_LINK = '.sidenav a[href="/directory/departments"]'
LOGOUT = '.topbar form[action="/logout"] button[type=submit]'
ROWS = "#rows tbody tr"


def path_is(path: str) -> re.Pattern[str]:
    """Matches a page URL by its path, whatever the query string."""
    return re.compile(rf"^https?://[^/]+{re.escape(path)}(\?.*)?$")


# ---- helpers --------------------------------------------------------------------------------------


def log_in(page: Page, username: str, password: str) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def choose_password(page: Page, current: str, new: str) -> None:
    expect(page).to_have_url(path_is("/password"))
    page.fill("[name=current_password]", current)
    page.fill("[name=new_password]", new)
    page.fill("[name=confirm_password]", new)
    page.click("button[type=submit]")
    expect(page).to_have_url(path_is("/"))


def log_out(page: Page) -> None:
    page.click(LOGOUT)
    expect(page).to_have_url(path_is("/login"))


def save_form(page: Page) -> Response:
    """Submits the page's JSON form (app.js sends it to the API) and returns the API's answer."""
    action = page.get_attribute("form[data-json-form]", "data-action") or ""
    with page.expect_response(lambda r: r.url.endswith(action) and r.request.method in ("POST", "PATCH")) as info:
        page.click("form[data-json-form] button[type=submit]")
    return info.value


def ensure_department(page: Page, server: Server) -> None:
    """The journey's site and department exist, made through the forms."""
    if server.state.get("department"):
        return
    page.goto("/directory/sites/new")
    page.fill("#f-code", SITE[0])
    page.fill("#f-name", SITE[1])
    created = save_form(page)
    assert created.status == 201, created.text()
    expect(page).to_have_url(path_is("/directory/sites"))
    expect(page.locator(ROWS, has_text=SITE[0])).to_have_count(1)

    page.goto("/directory/departments/new")
    page.fill("#f-code", DEPARTMENT[0])
    page.fill("#f-name", DEPARTMENT[1])
    page.select_option("#f-site_id", label=SITE[1])
    page.select_option("#f-kind", value="clinical")
    created = save_form(page)
    assert created.status == 201, created.text()
    expect(page).to_have_url(path_is("/directory/departments"))
    server.state["department"] = True


# ---- journeys -------------------------------------------------------------------------------------


def test_admin_first_login_forces_a_new_password(open_page: OpenPage, server: Server) -> None:
    if server.state.get("admin_ready"):
        pytest.skip("the admin password was changed already")
    page = open_page("admin")
    page.goto("/lang/zh_CN?next=/login")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    page.goto("/lang/en?next=/login")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page).to_have_url(path_is("/login"))

    log_in(page, server.admin, server.admin_initial_password)
    expect(page).to_have_url(path_is("/password"))
    page.goto("/directory/departments")  # nothing else opens before the password is replaced
    expect(page).to_have_url(path_is("/password"))

    page.fill("[name=current_password]", server.admin_initial_password)
    page.fill("[name=new_password]", ADMIN_PASSWORD)
    page.fill("[name=confirm_password]", ADMIN_PASSWORD + "x")
    page.click("button[type=submit]")
    expect(page.locator("#password-error")).to_be_visible()
    expect(page.locator("#password-error")).to_contain_text("differ")

    choose_password(page, server.admin_initial_password, ADMIN_PASSWORD)
    server.state["admin_ready"] = True
    expect(page.locator(".topbar .who")).to_have_text("Admin")
    expect(page.locator(f".sidenav {USERS_LINK}")).to_have_count(1)


def test_admin_creates_a_site_and_a_department(admin: Page, server: Server) -> None:
    if server.state.get("department"):
        pytest.skip("made already")
    ensure_department(admin, server)
    row = admin.locator(ROWS, has_text=DEPARTMENT[0])
    expect(row).to_have_count(1)
    expect(row).to_contain_text(DEPARTMENT[1])
    expect(row).to_contain_text(SITE[1])
    expect(row).to_contain_text("Clinical")


def test_a_duplicate_code_shows_a_readable_error_and_writes_nothing(admin: Page, server: Server) -> None:
    ensure_department(admin, server)
    admin.goto("/directory/departments/new")
    admin.fill("#f-code", DEPARTMENT[0])
    admin.fill("#f-name", "Another name (e2e)")
    admin.select_option("#f-site_id", label=SITE[1])
    admin.select_option("#f-kind", value="clinical")
    refused = save_form(admin)
    assert 400 <= refused.status < 500, (refused.status, refused.text())
    error = admin.locator("form[data-json-form] .form-error")
    expect(error).to_be_visible()
    expect(error).not_to_be_empty()
    expect(admin).to_have_url(path_is("/directory/departments/new"))  # the form stays, with what was typed
    expect(admin.locator("#f-name")).to_have_value("Another name (e2e)")

    admin.goto(f"/directory/departments?q={DEPARTMENT[0]}")
    expect(admin.locator(ROWS)).to_have_count(1)
    expect(admin.locator(ROWS)).to_contain_text(DEPARTMENT[1])
    admin.goto("/directory/departments?q=Another")
    expect(admin.locator(ROWS)).to_have_count(0)
    expect(admin.locator("#rows .empty")).to_be_visible()


def test_admin_creates_a_user_who_sees_only_what_the_role_allows(
    open_page: OpenPage, admin: Page, server: Server
) -> None:
    ensure_department(admin, server)
    if server.state.get(f"user:{AGENT}"):
        pytest.skip("made already")
    page = open_page("admin-then-agent")
    log_in(page, server.admin, ADMIN_PASSWORD)  # a session of its own, since it ends with logging out
    expect(page).to_have_url(path_is("/"))
    page.goto("/admin/users/new")
    page.fill("#f-username", AGENT)
    page.fill("#f-display_name", "Li Na")
    page.check('[name=roles][value="agent"]')
    page.fill("#f-password", AGENT_INITIAL_PASSWORD)
    created = save_form(page)
    assert created.status == 201, created.text()
    expect(page).to_have_url(path_is("/admin/users"))
    expect(page.locator("main")).to_contain_text(AGENT)
    log_out(page)
    page.goto("/")
    expect(page).to_have_url(path_is("/login"))  # the session really ended

    log_in(page, AGENT, AGENT_INITIAL_PASSWORD)
    choose_password(page, AGENT_INITIAL_PASSWORD, AGENT_PASSWORD)
    server.state[f"user:{AGENT}"] = True
    expect(page.locator(".topbar .who")).to_have_text("Li Na")
    expect(page.locator(USERS_LINK)).to_have_count(0)
    expect(page.locator(DEPARTMENTS_LINK)).to_have_count(1)

    page.click(DEPARTMENTS_LINK)
    expect(page).to_have_url(path_is("/directory/departments"))
    expect(page.locator(ROWS, has_text=DEPARTMENT[0])).to_have_count(1)
    expect(page.locator('a[href="/directory/departments/new"]')).to_have_count(0)  # reads, does not write
    forbidden = page.goto("/admin/users")
    assert forbidden is not None and forbidden.status == 403


def test_five_wrong_passwords_lock_the_account(open_page: OpenPage, admin_api: httpx.Client, server: Server) -> None:
    username, password = "locked.out", "Right-Password-61"
    ensure_user(server, admin_api, username, password, change_password=False)
    page = open_page("login")
    for _ in range(5):
        log_in(page, username, "Wrong-Password-00")
        expect(page.locator("#login-error")).to_be_visible()
        expect(page.locator("#login-error")).to_contain_text("Wrong user name or password")
    log_in(page, username, password)
    expect(page).to_have_url(path_is("/login"))
    expect(page.locator("#login-error")).to_be_visible()
    expect(page.locator("#login-error")).to_contain_text("locked")
    expect(page.locator("#username")).to_have_value(username)
    page.goto("/")
    expect(page).to_have_url(path_is("/login"))


def test_a_change_reaches_another_users_tray_live(
    open_page: OpenPage, admin: Page, admin_api: httpx.Client, server: Server
) -> None:
    ensure_department(admin, server)
    ensure_user(server, admin_api, AGENT, AGENT_PASSWORD)
    agent = open_page("agent")
    streams: list[str] = []
    agent.on("request", lambda r: streams.append(r.url) if "/api/events" in r.url else None)
    log_in(agent, AGENT, AGENT_PASSWORD)
    expect(agent).to_have_url(path_is("/"))
    agent.wait_for_function("window.plEvents && window.plEvents.readyState === EventSource.OPEN")
    agent.wait_for_timeout(300)  # a second stream, if the page opened one, shows up by now
    assert len(streams) == 1, f"the page should open one event stream, not {streams}"
    badge = agent.locator(".tray .badge")
    expect(badge).to_be_hidden()

    admin.goto(f"/directory/departments?q={DEPARTMENT[0]}")
    admin.locator(ROWS).first.locator("a").first.click()
    expect(admin).to_have_url(re.compile(r"/directory/departments/\d+$"))
    renamed = "Cardiology, renamed (e2e)"
    admin.fill("#f-name", renamed)
    saved = save_form(admin)
    assert saved.status == 200, saved.text()
    expect(admin).to_have_url(path_is("/directory/departments"))

    expect(badge).to_be_visible(timeout=5_000)
    expect(badge).to_have_text("1")
    agent.click(".tray .tray-button")
    expect(agent.locator("#tray-panel")).to_be_visible()
    expect(agent.locator("#tray-panel li")).to_have_count(1)
    expect(agent.locator("#tray-panel li")).to_contain_text(renamed)
    expect(badge).to_be_hidden()
