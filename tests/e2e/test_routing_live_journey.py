"""The routing journeys in a real browser, live over the event stream:

- an agent logs in to the queues from the bar and goes ready with Alt+R; a call submitted through the
  API rings in the bar (queue, masked number, subject, countdown); the agent accepts with Alt+A,
  completes, sees the wrap-up with its timer and ends it; then takes a break from the reason menu;
- the supervisor's wallboard shows the queues' waiting counts change as calls arrive, move and leave,
  without a reload; raises a waiting call's priority and moves another to a second queue; forces the
  agent not ready and ready again (the agent's bar follows) and goes to the big screen;
- the administrator edits an agent's capacities in place, then creates a queue: the API's problems
  appear next to the fields, are put right, and the queue is saved with a member; a stale save is
  refused with the reason."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from e2e_helpers import OpenPage, api_login, ensure_user
from playwright.sync_api import Page, expect

Server = Any

AGENT, AGENT_PASSWORD = "rt.agent", "Answers-Calls-2026"
WALL_AGENT, WALL_AGENT_PASSWORD = "rt.wallagent", "Answers-Calls-2027"
SUPERVISOR, SUPERVISOR_PASSWORD = "rt.super", "Watches-Queues-2026"


def setup(server: Server, admin_api: httpx.Client) -> dict[str, int]:
    """Two queues (a mandatory wrap-up of five minutes, so it is ended by hand), each with one agent,
    and a supervisor; made through the API as the administrator."""
    if "rt" in server.state:
        return dict(server.state["rt"])
    ensure_user(server, admin_api, AGENT, AGENT_PASSWORD)
    ensure_user(server, admin_api, WALL_AGENT, WALL_AGENT_PASSWORD)
    ensure_user(server, admin_api, SUPERVISOR, SUPERVISOR_PASSWORD, roles=("supervisor",))
    users = {u["username"]: u["id"] for u in admin_api.get("/api/users", params={"q": "rt.", "limit": 500}).json()}
    ids = {}
    for key, code, name, member in (("clinic", "RT-OPD", "门诊咨询 (e2e)", AGENT),
                                    ("wall", "RT-WALL", "预约挂号 (e2e)", WALL_AGENT)):  # fmt: skip
        queue = admin_api.post(
            "/api/routing/queues",
            json={"code": code, "name": name, "wrap_up": "mandatory", "wrap_up_s": 300, "sl_seconds": 20},
        )
        assert queue.status_code == 201, queue.text
        ids[key] = int(queue.json()["id"])
        members = admin_api.put(f"/api/routing/queues/{ids[key]}/members", json=[{"user_id": users[member], "tier": 1}])
        assert members.status_code == 200, members.text
    ids["wall_agent"] = int(users[WALL_AGENT])
    server.state["rt"] = ids
    return ids


@contextmanager
def logged_in(server: Server, open_page: OpenPage, username: str, password: str) -> Iterator[tuple[Page, httpx.Client]]:
    """The user's page and an API client sharing one session."""
    with api_login(server, username, password) as http:
        yield open_page(username, cookies=[{"name": "pl_session", "value": http.cookies["pl_session"]}]), http


def live(page: Page) -> None:
    page.wait_for_function("window.plEvents && window.plEvents.readyState === 1")


def submit(admin_api: httpx.Client, queue_id: int, subject: str, phone: str = "13912345678") -> int:
    task = admin_api.post(
        "/api/routing/tasks",
        json={
            "queue_id": queue_id,
            "channel": "voice",
            "caller": {"name": "张女士", "phone": phone},
            "subject": subject,
        },
    )
    assert task.status_code == 201, task.text
    return int(task.json()["id"])


def test_an_agent_answers_a_call_from_the_bar(open_page: OpenPage, admin_api: httpx.Client, server: Server) -> None:
    ids = setup(server, admin_api)
    with logged_in(server, open_page, AGENT, AGENT_PASSWORD) as (agent, _):
        agent.goto("/kb")
        live(agent)
        bar = agent.locator(".agent-bar")
        status = bar.get_by_test_id("agent-status")
        expect(status).to_have_text("Offline")

        bar.get_by_role("button", name="Log in to queues").click()
        expect(status).to_contain_text("Not ready")
        agent.keyboard.press("Alt+r")
        expect(status).to_have_text("Ready")
        expect(bar.locator(".rt-timer").first).to_have_text(re.compile(r"^\d\d:\d\d$"))

        submit(admin_api, ids["clinic"], "复诊挂号咨询")
        offer = agent.get_by_test_id("agent-offer")
        expect(offer).to_be_visible()
        expect(offer).to_contain_text("门诊咨询 (e2e)")
        expect(offer).to_contain_text("139****5678")
        expect(offer).to_contain_text("复诊挂号咨询")
        expect(offer).not_to_contain_text("13912345678")
        expect(offer.locator(".rt-countdown")).to_have_text(re.compile(r"^\d+ s$"))
        expect(status).to_have_text("Ringing")
        expect(agent).to_have_title(re.compile("^☎ "))

        agent.keyboard.press("Alt+a")
        expect(offer).to_be_hidden()
        expect(status).to_have_text("Busy")
        task = bar.get_by_test_id("agent-task")
        expect(task).to_contain_text("复诊挂号咨询")
        expect(agent).not_to_have_title(re.compile("☎"))

        task.get_by_role("button", name="Complete", exact=True).click()
        expect(status).to_have_text("Wrap-up")
        expect(task).to_be_hidden()
        expect(bar.locator(".rt-timer", has_text="left")).to_have_text(re.compile(r"^0\d:\d\d left$"))
        expect(bar).to_contain_text("Handled today: 1")
        bar.get_by_role("button", name=re.compile("End wrap-up")).click()
        expect(status).to_have_text("Ready")

        agent.keyboard.press("Alt+n")
        expect(bar.get_by_role("menuitem", name="Break")).to_be_focused()  # Alt+N opens the reasons
        agent.keyboard.press("ArrowDown")
        expect(bar.get_by_role("menuitem", name="Meal")).to_be_focused()
        agent.keyboard.press("Enter")
        expect(status).to_have_text("Not ready · Meal")

        agent.reload()  # read again from /api/routing/me
        expect(status).to_have_text("Not ready · Meal")
        bar.get_by_role("button", name="Log out of queues").click()
        expect(status).to_have_text("Offline")


def test_the_wallboard_follows_the_queues_and_forces_an_agent_not_ready(
    open_page: OpenPage, admin_api: httpx.Client, server: Server
) -> None:
    ids = setup(server, admin_api)
    with (
        logged_in(server, open_page, SUPERVISOR, SUPERVISOR_PASSWORD) as (board, _),
        logged_in(server, open_page, WALL_AGENT, WALL_AGENT_PASSWORD) as (agent, agent_api),
    ):
        for step in ("login", "ready"):
            response = agent_api.post(f"/api/routing/me/{step}")
            assert response.status_code in (200, 204), response.text
        agent.goto("/")
        live(agent)
        expect(agent.get_by_test_id("agent-status")).to_have_text("Ready")

        board.goto("/routing/wallboard")
        live(board)
        tile = board.locator(f'[data-testid=queue-tile][data-queue-id="{ids["wall"]}"]')
        expect(tile).to_contain_text("预约挂号 (e2e)")
        waiting = tile.get_by_test_id("waiting")
        expect(waiting).to_have_text("0")
        row = board.locator(f'[data-testid=agent-row][data-agent-id="{ids["wall_agent"]}"]')
        expect(row).to_contain_text("Ready")

        row.get_by_role("button", name=re.compile("Force not ready")).click()
        expect(row).to_contain_text("Not ready")
        expect(agent.get_by_test_id("agent-status")).to_contain_text("Not ready")  # the agent's bar follows

        first = submit(admin_api, ids["wall"], "取消预约", phone="13600001111")
        expect(waiting).to_have_text("1")  # no one is ready: the call waits, and the board shows it live
        submit(admin_api, ids["wall"], "改约时间", phone="13600002222")
        expect(waiting).to_have_text("2")

        tile.get_by_role("button", name="Waiting list").click()
        waiting_rows = board.locator("#rt-waiting tbody tr")
        expect(waiting_rows).to_have_count(2)
        expect(waiting_rows.first).to_contain_text("136****1111")

        second_row = waiting_rows.nth(1)
        expect(second_row).to_contain_text("改约时间")
        second_row.get_by_role("spinbutton").fill("10")
        second_row.get_by_role("button", name="Set").click()
        expect(waiting_rows.first).to_contain_text("改约时间")  # the higher priority goes first

        first_row = board.locator(f'#rt-waiting tr[data-task-id="{first}"]')
        first_row.get_by_role("combobox").select_option(label="门诊咨询 (e2e)")
        first_row.get_by_role("button", name="Move").click()
        clinic = board.locator(f'[data-testid=queue-tile][data-queue-id="{ids["clinic"]}"]')
        expect(waiting).to_have_text("1")
        expect(clinic.get_by_test_id("waiting")).to_have_text("1")  # no one is in that queue now
        expect(waiting_rows).to_have_count(1)

        abandoned = admin_api.post(f"/api/routing/tasks/{first}/abandon")
        assert abandoned.status_code == 200, abandoned.text
        expect(clinic.get_by_test_id("waiting")).to_have_text("0")

        row.get_by_role("button", name=re.compile("Force ready")).click()
        expect(waiting).to_have_text("0")  # the agent is offered the call that waited
        expect(agent.get_by_test_id("agent-offer")).to_contain_text("改约时间")
        expect(row).to_contain_text("Ringing")
        agent.keyboard.press("Alt+a")
        expect(agent.get_by_test_id("agent-task")).to_contain_text("改约时间")
        expect(row).to_contain_text("Busy")
        expect(tile.locator(".rt-status.s-busy")).to_have_text("Busy 1")

        board.get_by_role("button", name="Big screen").click()
        expect(board.locator("body")).to_have_class(re.compile(r"\brt-big\b"))
        expect(board.locator(".topbar")).to_be_hidden()
        expect(board.locator(".sidenav")).to_be_hidden()
        expect(board).to_have_url(re.compile(r"[?&]big=1"))
        expect(tile).to_be_visible()

        agent.get_by_test_id("agent-task").get_by_role("button", name="Complete", exact=True).click()
        expect(agent.get_by_test_id("agent-status")).to_have_text("Wrap-up")
        agent.keyboard.press("Alt+w")
        expect(agent.get_by_test_id("agent-status")).to_have_text("Ready")
        board.get_by_role("button", name="Leave big screen").click()
        expect(row).to_contain_text("Ready")
        expect(row.locator("td").nth(5)).to_have_text("1")  # handled today, after the periodic read or an event


def test_an_administrator_creates_a_queue_and_puts_its_problems_right(
    open_page: OpenPage, admin: Page, admin_api: httpx.Client, server: Server
) -> None:
    setup(server, admin_api)
    admin.goto("/routing/queues")

    # an agent's capacities, edited in place; a bad extension is refused next to the field
    profile = admin.locator("tr[data-agent-id]", has_text="rt.wallagent")
    profile.get_by_role("button", name="Edit").click()
    profile.get_by_label("Chats: Rt.Wallagent").fill("5")
    profile.get_by_label("Extension: Rt.Wallagent").fill("80a1")
    profile.get_by_role("button", name="Save").click()
    expect(profile.get_by_label("Extension: Rt.Wallagent")).to_have_attribute("aria-invalid", "true")
    expect(profile.locator(".field-error", has_text=re.compile(".+")).first).to_be_visible()
    profile.get_by_label("Extension: Rt.Wallagent").fill("8001")
    profile.get_by_role("button", name="Save").click()
    expect(profile.get_by_role("button", name="Edit")).to_be_visible()
    expect(profile).to_contain_text("8001")
    saved = admin_api.get(f"/api/routing/agents/{server.state['rt']['wall_agent']}/profile").json()
    assert saved["capacities"]["chat"] == 5 and saved["extension"] == "8001"

    admin.get_by_role("link", name="New queue").click()
    expect(admin).to_have_url(re.compile(r"/routing/queues/new$"))

    admin.fill("#q-code", "RT-NIGHT")
    admin.fill("#q-name", "夜间咨询 (e2e)")
    admin.fill("#q-hours", "18:00-25:00")
    admin.get_by_role("button", name="Save").click()
    hours_error = admin.locator("#q-hours ~ .field-error")
    expect(hours_error).to_be_visible()
    expect(admin.locator("#q-hours")).to_have_attribute("aria-invalid", "true")

    admin.fill("#q-hours", "17:30-24:00")
    admin.fill("#q-overflow-threshold", "5")  # but no queue to overflow to: the service says so by the field
    admin.get_by_role("button", name="Save").click()
    expect(admin.locator("#q-overflow-threshold ~ .field-error")).to_contain_text("Choose the queue to overflow to.")
    expect(hours_error).to_be_hidden()

    admin.fill("#q-overflow-threshold", "")
    admin.select_option("#q-strategy", "round_robin")
    admin.fill("#q-sl-target", "90")
    admin.get_by_role("button", name="Add an agent").click()
    admin.get_by_label("Agent 1", exact=True).select_option(label="Rt.Agent (rt.agent)")
    admin.get_by_label("Tier 1", exact=True).select_option("2")
    admin.get_by_role("button", name="Save").click()
    expect(admin).to_have_url(re.compile(r"/routing/queues$"))
    listed = admin.get_by_test_id("queue-list").locator("tr", has_text="夜间咨询 (e2e)")
    expect(listed).to_contain_text("90 % · 20 s")
    expect(listed).to_contain_text("Round robin")
    expect(admin.locator("tr[data-agent-id]", has_text="rt.agent")).to_contain_text("夜间咨询 (e2e) (2)")

    listed.get_by_role("link", name="夜间咨询 (e2e)").click()
    expect(admin.locator("#q-hours")).to_have_value("17:30-24:00")
    expect(admin.get_by_label("Tier 1", exact=True)).to_have_value("2")
    queue_id = int(admin.url.rsplit("/", 1)[1])

    # someone else saves meanwhile: this save is refused and says why
    current = admin_api.get(f"/api/routing/queues/{queue_id}").json()
    changed = admin_api.put(f"/api/routing/queues/{queue_id}", json={**_editable(current), "name": "夜间咨询 (改)"})
    assert changed.status_code == 200, changed.text
    admin.fill("#q-name", "夜间咨询 (mine)")
    admin.get_by_role("button", name="Save").click()
    expect(admin.locator("form [role=alert]")).to_contain_text("Someone else changed this queue")
    expect(admin.get_by_role("link", name="Reload the page")).to_be_visible()


def _editable(queue: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in queue.items() if k not in ("id",)}
