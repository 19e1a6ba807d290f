"""The agent workbench in a real browser:

- an agent finds a caller by the family's shared mobile number ("/" focuses the search, Enter searches),
  opens one of the three candidates, verifies them by the last digits of their ID card, reveals a masked
  number with a reason, and the supervisor's access log for that patient shows the reveal and its reason;
- the hospital system goes down (the simulated HIS fails every call): the card still opens at once, the
  HIS part shows a banner with the age of the copy it shows, and search and reveal still work;
- a routed call with the caller's number rings in the agent bar; accepting it opens the workbench on
  that caller's family (the screen pop), with nothing but the contact's id in the URL;
- a caller nobody knows is registered from their contact: the form offers their number masked, the page
  never holds it in full, and the new patient has it and is attached to the contact;
- the agent asks which department fits what the caller describes, and an emergency shows the instruction
  to call 120 above the suggestions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from e2e_helpers import OpenPage, api_login, ensure_user
from playwright.sync_api import Page, expect
from stdnum.cn import ric

Server = Any

AGENT, AGENT_PASSWORD = "wb.agent", "Finds-Callers-2026"
SUPERVISOR, SUPERVISOR_PASSWORD = "wb.super", "Reads-Access-Logs-2026"
FAMILY_PHONE = "13900007777"  # in the simulated HIS's block, but not one of its people
UNKNOWN_PHONE = "13712342468"  # outside it: nobody anywhere
SIMULATED_MRN = "M2020000"  # the simulated HIS's first made-up person (patients/simulator.py)


def id_card(first17: str) -> str:
    return first17 + ric.calc_check_digit(first17 + "0")


CHILD_ID = id_card("11010520160302004")  # born 2016-03-02, female


def setup(server: Server, admin_api: httpx.Client) -> dict[str, Any]:
    """Two users, a family of three on one mobile registered through the API, and a queue with the agent."""
    if "wb" in server.state:
        return dict(server.state["wb"])
    ensure_user(server, admin_api, AGENT, AGENT_PASSWORD)
    ensure_user(server, admin_api, SUPERVISOR, SUPERVISOR_PASSWORD, roles=("supervisor",))
    family = {}
    with api_login(server, AGENT, AGENT_PASSWORD) as agent:
        for key, body in (
            ("father", {"name": "周海涛", "birth_date": "1980-07-01", "phones": [FAMILY_PHONE]}),
            ("mother", {"name": "吴丽华", "sex": "female", "birth_date": "1983-09-12", "phones": [FAMILY_PHONE]}),
            ("child", {"name": "周雨桐", "phones": [FAMILY_PHONE], "identifiers": {"id_card": CHILD_ID}}),
        ):
            created = agent.post("/api/patients", json=body)
            assert created.status_code == 201, created.text
            family[key] = created.json()["id"]
    users = {u["username"]: u["id"] for u in admin_api.get("/api/users", params={"q": "wb.", "limit": 500}).json()}
    settings = {"code": "WB-E2E", "name": "患者服务 (e2e)", "wrap_up": "none", "wrap_up_s": 0}
    queue = admin_api.post("/api/routing/queues", json=settings)
    assert queue.status_code == 201, queue.text
    members = admin_api.put(f"/api/routing/queues/{queue.json()['id']}/members",
                            json=[{"user_id": users[AGENT], "tier": 1}])  # fmt: skip
    assert members.status_code == 200, members.text
    state = {"family": family, "queue": queue.json()["id"]}
    server.state["wb"] = state
    return state


@contextmanager
def logged_in(server: Server, open_page: OpenPage, username: str, password: str) -> Iterator[tuple[Page, httpx.Client]]:
    with api_login(server, username, password) as http:
        yield open_page(username, cookies=[{"name": "pl_session", "value": http.cookies["pl_session"]}]), http


def no_numbers_in_url(page: Page) -> None:
    assert not re.search(r"\d{7,}", page.url), page.url


def simulator(admin_api: httpx.Client, failure_percent: int) -> None:
    """The simulated HIS's failure rate (the HIS admin page's API); back to working, a test call closes
    the breaker at once, so later journeys find the HIS answering."""
    json = {"Accept": "application/json"}
    changed = admin_api.put("/admin/his/simulator", json={"latency_ms": 80, "failure_percent": failure_percent},
                            headers=json)  # fmt: skip
    assert changed.status_code == 200, changed.text
    if failure_percent == 0:
        assert admin_api.post("/admin/his/test", headers=json).status_code == 200


def test_an_agent_finds_verifies_and_reveals_and_the_supervisor_sees_it(
    open_page: OpenPage, admin_api: httpx.Client, server: Server
) -> None:
    state = setup(server, admin_api)
    with logged_in(server, open_page, AGENT, AGENT_PASSWORD) as (agent, _):
        agent.goto("/workbench")
        expect(agent.get_by_role("heading", name="Agent workbench")).to_be_visible()
        agent.locator("main").click(position={"x": 5, "y": 5})
        agent.keyboard.press("/")
        search = agent.get_by_label("Phone, ID card, record or card number, name or pinyin")
        expect(search).to_be_focused()
        search.fill("139 0000 7777")
        search.press("Enter")
        candidates = agent.get_by_test_id("wb-candidate")
        expect(candidates).to_have_count(3)  # the family sharing the mobile, the eldest first
        expect(candidates.nth(0)).to_contain_text("周*涛")
        expect(candidates.nth(2)).to_contain_text("周*桐")
        expect(candidates.nth(2)).to_contain_text("139****7777")
        expect(agent.locator("main")).not_to_contain_text(FAMILY_PHONE)
        no_numbers_in_url(agent)

        candidates.nth(2).get_by_role("link", name="Open card").click()
        expect(agent).to_have_url(re.compile(rf"/workbench/patients/{state['family']['child']}$"))
        expect(agent.locator("#wb-name")).to_have_text("周雨桐")
        expect(agent.get_by_test_id("wb-his-loading")).to_be_hidden()  # the HIS part came (a prospective patient)

        verify = agent.locator("form[data-wb-verify]")
        verify.get_by_label("Last ID digits").check()
        verify.get_by_label("The caller's answer").fill("9999")
        verify.get_by_role("button", name="Verify").click()
        expect(verify.locator(".field-error")).to_contain_text("does not match")
        verify.get_by_label("The caller's answer").fill(CHILD_ID[-4:])
        verify.get_by_role("button", name="Verify").click()
        expect(agent.get_by_test_id("wb-verified")).to_have_text("Verified.")

        masked = agent.locator('[data-wb-value^="identifier-"]')
        expect(masked).to_have_text(f"110105********{CHILD_ID[-4:]}")
        agent.locator("[data-reveal][data-what=identifier]").click()
        dialog = agent.locator("#wb-reveal")
        expect(dialog).to_be_visible()
        agent.keyboard.press("Escape")  # Esc closes the dialog
        expect(dialog).to_be_hidden()
        agent.locator("[data-reveal][data-what=identifier]").click()
        dialog.get_by_label("Why do you need it?").fill("caller asks to confirm the ID on file")
        dialog.get_by_role("button", name="Show").click()
        expect(masked).to_have_text(CHILD_ID)
        expect(dialog).to_be_hidden()

    with logged_in(server, open_page, SUPERVISOR, SUPERVISOR_PASSWORD) as (supervisor, _):
        supervisor.goto(f"/workbench/patients/{state['family']['child']}")
        supervisor.get_by_role("link", name="Access log").click()
        log = supervisor.get_by_test_id("wb-access-log")
        revealed = log.locator("tr", has_text="patients.revealed")
        expect(revealed).to_contain_text("caller asks to confirm the ID on file")
        expect(revealed).to_contain_text(AGENT)
        expect(log.locator("tr", has_text="patients.verified")).to_have_count(1)
        expect(log.locator("tr", has_text="patients.verify_failed")).to_have_count(1)
        expect(log).not_to_contain_text(CHILD_ID)


def test_when_the_his_is_down_the_banner_shows_and_the_workbench_still_works(
    open_page: OpenPage, admin_api: httpx.Client, server: Server
) -> None:
    state = setup(server, admin_api)
    simulator(admin_api, 0)
    with logged_in(server, open_page, AGENT, AGENT_PASSWORD) as (agent, _):
        agent.goto("/workbench")
        search = agent.get_by_label("Phone, ID card, record or card number, name or pinyin")
        search.fill(SIMULATED_MRN)  # nobody locally: the HIS is asked and the patient joins the index
        search.press("Enter")
        candidates = agent.get_by_test_id("wb-candidate")
        expect(candidates).to_have_count(1)
        expect(agent.locator("[data-wb-status]")).to_contain_text("hospital system was asked")
        search.press("Enter")  # Enter again opens the first candidate
        expect(agent).to_have_url(re.compile(r"/workbench/patients/\d+$"))
        card_url = agent.url
        his = agent.locator("[data-wb-his]")
        expect(his.get_by_role("heading", name="Visits", exact=True)).to_be_visible()
        expect(agent.get_by_test_id("wb-his-banner")).to_have_count(0)

        try:
            simulator(admin_api, 100)
            agent.goto(card_url)
            expect(agent.locator("#wb-name")).to_be_visible()  # the card does not wait for the HIS
            banner = agent.get_by_test_id("wb-his-banner")
            expect(banner).to_contain_text("The hospital system is unavailable")
            expect(banner).to_contain_text(re.compile(r"showing data from .+ ago"))
            expect(his.get_by_role("heading", name=re.compile(r"^Visits · .+ old$"))).to_be_visible()  # the last copy

            agent.locator("[data-reveal][data-what=phone]").first.click()
            agent.locator("#wb-reveal").get_by_label("Why do you need it?").fill("call back after a dropped call")
            agent.locator("#wb-reveal").get_by_role("button", name="Show").click()
            expect(agent.locator('[data-wb-value^="phone-"]').first).to_have_text(re.compile(r"^\+86\d{11}$"))

            agent.goto("/workbench")
            search = agent.get_by_label("Phone, ID card, record or card number, name or pinyin")
            search.fill("M7777777")  # nobody anywhere, and the HIS cannot be asked: the search says so
            search.press("Enter")
            expect(agent.locator("[data-wb-status]")).to_contain_text("could not be asked")
            register = agent.locator("form[data-wb-register]")
            expect(register).to_be_visible()
            expect(register.get_by_label("Medical-record number")).to_have_value("M7777777")  # from the search
            register.get_by_label("Full name").fill("测试来电")
            bad = CHILD_ID[:-1] + ("1" if CHILD_ID[-1] != "1" else "2")
            register.get_by_label("ID card").fill(bad)
            register.get_by_role("button", name="Register").click()
            field = register.locator('[data-field="identifiers.id_card"] .field-error')
            expect(field).to_contain_text("check digit")  # the API's error, next to its field
            expect(register.get_by_label("ID card")).to_have_attribute("aria-invalid", "true")
            search.fill("周雨桐")  # the local index still answers
            search.press("Enter")
            expect(candidates).to_have_count(1)
        finally:
            simulator(admin_api, 0)
    assert state["family"]


def test_accepting_a_routed_call_pops_the_callers_family(
    open_page: OpenPage, admin_api: httpx.Client, server: Server
) -> None:
    state = setup(server, admin_api)
    with logged_in(server, open_page, AGENT, AGENT_PASSWORD) as (agent, agent_api):
        for step in ("login", "ready"):
            response = agent_api.post(f"/api/routing/me/{step}")
            assert response.status_code in (200, 204), response.text
        agent.goto("/workbench")
        agent.wait_for_function("window.plEvents && window.plEvents.readyState === 1")
        expect(agent.get_by_test_id("agent-status")).to_have_text("Ready")

        task = admin_api.post("/api/routing/tasks", json={
            "queue_id": state["queue"], "channel": "voice", "caller": {"phone": FAMILY_PHONE}, "subject": "问报告",
        })  # fmt: skip
        assert task.status_code == 201, task.text
        offer = agent.get_by_test_id("agent-offer")
        expect(offer).to_contain_text("139****7777")
        agent.keyboard.press("Alt+a")

        expect(agent).to_have_url(re.compile(r"/workbench/contacts/\d+$"))
        no_numbers_in_url(agent)
        expect(agent.get_by_role("heading", name="Who is calling?")).to_be_visible()
        expect(agent.get_by_test_id("wb-caller-phone")).to_have_text("139****7777")
        family = agent.get_by_test_id("wb-candidate")
        expect(family).to_have_count(3)
        expect(agent.locator("main")).not_to_contain_text(FAMILY_PHONE)

        mother = family.nth(1)
        mother.get_by_label("Ask for").select_option("birth_date")
        mother.get_by_label("The caller's answer").fill("1983-09-12")
        mother.get_by_role("button", name="Verify").click()
        expect(agent).to_have_url(re.compile(rf"/workbench/patients/{state['family']['mother']}\?contact=\d+$"))
        expect(agent.get_by_test_id("wb-verified")).to_contain_text("Birth date")

        agent.get_by_test_id("agent-task").get_by_role("button", name="Complete", exact=True).click()
        expect(agent.get_by_test_id("agent-status")).to_have_text("Ready")
        agent_api.post("/api/routing/me/logout")


def test_an_unknown_caller_is_registered_from_their_contact(
    open_page: OpenPage, admin_api: httpx.Client, server: Server
) -> None:
    setup(server, admin_api)
    with logged_in(server, open_page, AGENT, AGENT_PASSWORD) as (agent, agent_api):
        made = agent_api.post("/api/contacts", json={"channel": "voice", "phone": UNKNOWN_PHONE})
        assert made.status_code == 201, made.text
        contact = made.json()
        agent.goto(f"/workbench/contacts/{contact['id']}")
        register = agent.locator("form[data-wb-register]")
        expect(register).to_be_visible()  # nobody found: the form is open
        expect(register.get_by_label("The caller's number (137****2468)")).to_be_checked()
        assert UNKNOWN_PHONE not in agent.content()  # offered, never held
        register.get_by_label("Full name").fill("钱新来")
        register.get_by_role("button", name="Register").click()
        expect(agent).to_have_url(re.compile(rf"/workbench/patients/\d+\?contact={contact['id']}$"))
        expect(agent.locator("#wb-name")).to_have_text("钱新来")
        attached = agent_api.get(f"/api/contacts/{contact['id']}").json()
        patient = agent_api.get(f"/api/patients/{attached['patient_id']}").json()
        assert [phone["masked"] for phone in patient["phones"]] == ["137****2468"]


def test_the_agent_asks_which_department_and_an_emergency_shows_the_instruction(
    open_page: OpenPage, admin_api: httpx.Client, server: Server
) -> None:
    setup(server, admin_api)
    with logged_in(server, open_page, AGENT, AGENT_PASSWORD) as (agent, _):
        agent.goto("/workbench")
        panel = agent.get_by_test_id("wb-triage")
        described = panel.get_by_label("What the caller describes")
        ask = panel.get_by_role("button", name="Suggest departments")
        alarm = panel.locator("[data-wb-triage-alarm]")
        ask.click()  # nothing described yet: the field says so
        expect(panel.locator("[data-field=text] .field-error")).to_be_visible()
        described.fill("胃疼反酸好长时间了，吃完饭更难受")
        ask.click()
        suggestions = panel.locator(".wb-triage-item")
        expect(suggestions).to_have_count(3)
        expect(suggestions.first).to_contain_text("消化内科")
        expect(suggestions.first).to_contain_text("胃")
        expect(alarm).to_be_hidden()
        described.fill("我爸突然胸口剧痛，一直冒冷汗")
        ask.click()
        expect(alarm).to_be_visible()
        expect(alarm).to_contain_text("120")
        expect(suggestions.first).to_contain_text("急诊科")
