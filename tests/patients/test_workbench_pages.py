"""The agent workbench's pages: the search page, the patient card (masked numbers, banners, open work
orders, past contacts, the HIS part loaded after the page, live or cached with its age when the hospital
system is down or slow), the screen pop's contact page, the work-order form prefilled from ids — who may
see them, and that no phone or ID number ever appears in a URL the pages generate."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

from stdnum.cn import ric

from helpers import Client, assert_error
from patientline.core import clock
from patientline.patients.gateway import HisGateway
from patientline.patients.his import HisPatient
from patientline.patients.simulator import SimulatedHis

FAMILY_PHONE = "13900001111"


def id_card(first17: str) -> str:
    return first17 + ric.calc_check_digit(first17 + "0")


FATHER_ID = id_card("11010519800101123")  # born 1980-01-01, male
CHILD_ID = id_card("11010520150601004")  # born 2015-06-01, female
URL_ATTRIBUTES = {"href", "src", "action", "hx-get", "hx-post", "hx-put", "hx-patch", "hx-delete", "data-url",
                  "data-url-template", "formaction"}  # fmt: skip


class _Urls(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value or "" for name, value in attrs if name in URL_ATTRIBUTES]


def urls_in(html: str) -> list[str]:
    parser = _Urls()
    parser.feed(html)
    return parser.urls


def assert_no_numbers_in_urls(html: str, *numbers: str) -> None:
    """No URL in the page holds a phone or ID number (nor any run of 7+ digits that could be one)."""
    urls = urls_in(html)
    assert urls, "the page generates links"
    for url in urls:
        assert not re.search(r"\d{7,}", url), url
        for number in numbers:
            assert number not in url and number[-8:] not in url, url


async def register(client: Client, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/patients", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def family(agent: Client) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    father = await register(agent, name="王建国", phones=[FAMILY_PHONE], identifiers={"id_card": FATHER_ID})
    mother = await register(agent, name="李秀英", sex="female", birth_date="1982-03-04", phones=[FAMILY_PHONE])
    child = await register(agent, name="王小雨", phones=[FAMILY_PHONE], identifiers={"id_card": CHILD_ID})
    return father, mother, child


async def hand_contact(agent: Client, phone: str | None = FAMILY_PHONE) -> dict[str, Any]:
    body: dict[str, Any] = {"channel": "voice", "subject": "问检查结果"}
    if phone:
        body["phone"] = phone
    response = await agent.post("/api/contacts", json=body)
    assert response.status_code == 201, response.text
    contact: dict[str, Any] = response.json()
    return contact


@asynccontextmanager
async def english(as_user: Any, username: str, roles: list[str]) -> AsyncIterator[Client]:
    """A logged-in client reading the pages in English (zh_CN is the default)."""
    async with as_user(username, roles) as client:
        client.http.cookies.set("pl_lang", "en")
        yield client


@asynccontextmanager
async def agent_and_supervisor(as_user: Any) -> AsyncIterator[tuple[Client, Client]]:
    async with english(as_user, "agent01", ["agent"]) as agent, english(as_user, "super1", ["supervisor"]) as boss:
        yield agent, boss


def use_his(app: Any, his: SimulatedHis | None, **options: Any) -> HisGateway:
    gateway = HisGateway(his, **({"timeout": 5.0, "breaker_failures": 3, "breaker_seconds": 60} | options))
    app.state.pl.his = gateway
    return gateway


def richest(his: SimulatedHis) -> HisPatient:
    return max(his.people.values(), key=lambda p: (len(p.visits) > 0, len(p.results), len(p.appointments))).record


async def test_the_pages_render_for_agents_and_refuse_department_handlers(as_user: Any) -> None:
    async with english(as_user, "agent01", ["agent"]) as agent, english(as_user, "h1", ["handler"]) as handler:
        father, _, _ = await family(agent)
        contact = await hand_contact(agent)
        search = await agent.get("/workbench")
        assert search.status_code == 200, search.text
        assert "data-wb-search" in search.text and "data-search" in search.text and "data-wb-register" in search.text
        assert_no_numbers_in_urls(search.text)

        page = await agent.get(f"/workbench/patients/{father['id']}")
        assert page.status_code == 200, page.text
        assert "王建国" in page.text and "139****1111" in page.text and f"110105********{FATHER_ID[-4:]}" in page.text
        assert FATHER_ID not in page.text and FAMILY_PHONE not in page.text  # masked until revealed
        assert f'hx-get="/workbench/patients/{father["id"]}/his"' in page.text  # loaded after the page
        assert "No open work orders." in page.text
        assert_no_numbers_in_urls(page.text, FAMILY_PHONE, FATHER_ID)

        for path in ("/workbench", f"/workbench/patients/{father['id']}", f"/workbench/patients/{father['id']}/his",
                     f"/workbench/contacts/{contact['id']}"):  # fmt: skip
            refused = await handler.get(path, headers={"Accept": "text/html"})
            assert refused.status_code == 403, path
        assert (await agent.get("/workbench/patients/999999")).status_code == 404
        assert (await agent.get("/workbench/patients/abc")).status_code in (404, 422)
        assert (await agent.get(f"/workbench/patients/{father['id']}/access-log")).status_code == 403


async def test_every_open_is_audited_with_its_purpose_and_the_supervisor_sees_the_access_log(
    as_user: Any,
) -> None:
    async with agent_and_supervisor(as_user) as (agent, supervisor):
        father, _, _ = await family(agent)
        contact = await hand_contact(agent)
        assert (await agent.get(f"/workbench/patients/{father['id']}")).status_code == 200
        with_contact = await agent.get(f"/workbench/patients/{father['id']}", params={"contact": contact["id"]})
        assert with_contact.status_code == 200
        assert contact["reference"] in with_contact.text and "Not verified" in with_contact.text
        assert "/workorders/new?patient=" in with_contact.text and f"contact_id={contact['id']}" in with_contact.text
        assert_no_numbers_in_urls(with_contact.text, FAMILY_PHONE, FATHER_ID)

        log = (await supervisor.get(f"/api/patients/{father['id']}/access-log")).json()
        purposes = [e["reason"] for e in log if e["action"] == "patients.read"]
        assert "workbench" in purposes and f"contact:{contact['id']}" in purposes

        page = await supervisor.get(f"/workbench/patients/{father['id']}")
        assert "Edit VIP profile" in page.text and "Merge a duplicate" in page.text and "Export the data" in page.text
        log_page = await supervisor.get(f"/workbench/patients/{father['id']}/access-log")
        assert log_page.status_code == 200
        assert "agent01" in log_page.text and f"contact:{contact['id']}" in log_page.text
        agent_page = await agent.get(f"/workbench/patients/{father['id']}")
        assert "Edit VIP profile" not in agent_page.text and "Flag the caller" in agent_page.text


async def test_flags_and_vip_show_as_banners_with_the_script_for_an_abusive_caller(as_user: Any) -> None:
    async with agent_and_supervisor(as_user) as (agent, supervisor):
        patient = await register(agent, name="赵某", phones=["13912345678"])
        threat = {"kind": "abusive", "note": "shouted threats on 11-20"}
        flagged = await agent.post(f"/api/patients/{patient['id']}/flags", json=threat)
        profile = {"version": flagged.json()["version"], "level": 2, "note": "board member"}
        vip = await supervisor.put(f"/api/patients/{patient['id']}/vip", json=profile)
        assert vip.status_code == 200, vip.text
        page = (await agent.get(f"/workbench/patients/{patient['id']}")).text
        assert "shouted threats on 11-20" in page and "Agent01" in page  # the note and who set it
        assert "escalate to your supervisor" in page and "VIP level 2" in page and "board member" in page
        assert "Clear this flag" not in page
        assert "Clear this flag" in (await supervisor.get(f"/workbench/patients/{patient['id']}")).text


async def test_the_his_part_is_live_then_cached_with_its_age_when_the_his_is_down(app: Any, as_user: Any) -> None:
    his = SimulatedHis(seed=11, size=30)
    use_his(app, his)
    record = richest(his)
    person = his.people[record.his_id]
    async with english(as_user, "agent01", ["agent"]) as agent:
        # not in the local index: the search asks the HIS and takes the patient in
        found = (await agent.post("/api/patients/search", json={"query": record.identifiers["mrn"]})).json()
        assert found["his_searched"] is True and found["his_problem"] is None
        [candidate] = found["candidates"]
        patient_id = candidate["id"]

        live = await agent.get(f"/workbench/patients/{patient_id}/his")
        assert live.status_code == 200, live.text
        assert "wb-his-banner" not in live.text
        if person.visits:
            assert person.visits[0].department in live.text
        pending = [r for r in person.results if not r.ready]
        for result in person.results:
            assert result.order_number in live.text
        assert ("Notify when ready" in live.text) == bool(pending)
        assert "各项指标在参考范围内" not in live.text  # conclusions only when the centre allows it
        if pending:  # "notify when ready" (the results API), then the row says it will be texted
            order = {"order_number": pending[0].order_number}
            made = await agent.post(f"/api/patients/{patient_id}/result-subscriptions", json=order)
            assert made.status_code == 201, made.text
            assert "Will be texted" in (await agent.get(f"/workbench/patients/{patient_id}/his")).text

        clock.set_now(clock.now() + timedelta(minutes=7))
        his.configure(failure_rate=1.0)
        page = await agent.get(f"/workbench/patients/{patient_id}")
        assert page.status_code == 200  # the card never waits for the HIS
        cached = await agent.get(f"/workbench/patients/{patient_id}/his")
        assert cached.status_code == 200, cached.text
        assert "wb-his-banner" in cached.text and "The hospital system is unavailable" in cached.text
        assert "showing data from 7 minutes ago" in cached.text
        for result in person.results:
            assert result.order_number in cached.text  # the last copy is still shown

        down = (await agent.post("/api/patients/search", json={"query": "M9999999"})).json()
        assert down["candidates"] == [] and down["his_problem"]  # the search says why, and does not fail
        assert (await agent.post("/api/patients/search", json={"query": record.name[:1]})).status_code == 200


async def test_a_slow_his_times_out_and_the_page_says_so(app: Any, as_user: Any) -> None:
    his = SimulatedHis(seed=12, size=20)
    use_his(app, his, timeout=0.05)
    record = richest(his)
    async with english(as_user, "agent01", ["agent"]) as agent:
        found = (await agent.post("/api/patients/search", json={"query": record.identifiers["id_card"]})).json()
        patient_id = found["candidates"][0]["id"]
        his.configure(latency_ms=2000)
        slow = await agent.get(f"/workbench/patients/{patient_id}/his")
        assert slow.status_code == 200
        assert "The hospital system is slow" in slow.text and "no earlier copy to show yet" in slow.text


async def test_a_prospective_patient_has_no_his_part_and_no_his_means_no_complaint(app: Any, as_user: Any) -> None:
    use_his(app, None)
    async with english(as_user, "agent01", ["agent"]) as agent:
        patient = await register(agent, name="新病人", phones=["13700001234"])
        part = await agent.get(f"/workbench/patients/{patient['id']}/his")
        assert part.status_code == 200 and "prospective patient" in part.text
        nobody = (await agent.post("/api/patients/search", json={"query": "13700009999"})).json()
        assert nobody == {"by": "phone", "candidates": [], "his_searched": False, "his_problem": None}


async def test_verifying_from_the_contact_attaches_the_patient_and_the_screen_pop_then_opens_them(
    as_user: Any,
) -> None:
    async with english(as_user, "agent01", ["agent"]) as agent:
        father, mother, child = await family(agent)
        contact = await hand_contact(agent)
        pop = await agent.get(f"/workbench/contacts/{contact['id']}", follow_redirects=False)
        assert pop.status_code == 200, pop.text
        assert pop.text.count('data-testid="wb-candidate"') == 3  # the family sharing the number
        for person in (father, mother, child):
            assert f"/workbench/patients/{person['id']}?contact={contact['id']}" in pop.text
        assert "139****1111" in pop.text and "王*国" in pop.text
        assert_no_numbers_in_urls(pop.text, FAMILY_PHONE, FATHER_ID, CHILD_ID)

        wrong = await agent.post(f"/api/patients/{child['id']}/verify",
                                 json={"birth_date": "2015-06-02", "contact_id": contact["id"]})  # fmt: skip
        assert_error(wrong, 422, "verification_failed")
        assert (await agent.get(f"/api/contacts/{contact['id']}")).json()["patient_id"] is None
        right = await agent.post(f"/api/patients/{child['id']}/verify",
                                 json={"id_digits": CHILD_ID[-4:], "contact_id": contact["id"]})  # fmt: skip
        assert right.status_code == 200, right.text
        assert right.json() == {"verified": True, "method": "id_digits", "patient_id": child["id"],
                                "contact_id": contact["id"]}  # fmt: skip
        attached = (await agent.get(f"/api/contacts/{contact['id']}")).json()
        assert (attached["patient_id"], attached["verified_by"]) == (child["id"], "id_digits")

        again = await agent.get(f"/workbench/contacts/{contact['id']}", follow_redirects=False)
        assert again.status_code == 303
        assert again.headers["location"] == f"/workbench/patients/{child['id']}?contact={contact['id']}"
        card = await agent.get(again.headers["location"])
        assert "Verified on this contact" in card.text and "2015-06-01" in card.text  # the birth date once verified

        history = await agent.get(f"/workbench/patients/{child['id']}")
        assert contact["reference"] not in history.text or "Past contacts" in history.text
        assert f'href="/contacts/{contact["id"]}"' in history.text  # the contact is in the patient's history
        assert_error(await agent.post(f"/api/patients/{child['id']}/verify",
                                      json={"id_digits": CHILD_ID[-4:], "contact_id": 999999}), 404)  # fmt: skip


async def test_an_unknown_caller_gets_the_register_form_prefilled_masked(app: Any, as_user: Any) -> None:
    use_his(app, SimulatedHis(seed=13, size=10))
    async with english(as_user, "agent01", ["agent"]) as agent:
        contact = await hand_contact(agent, phone="13812340000")
        pop = await agent.get(f"/workbench/contacts/{contact['id']}")
        assert pop.status_code == 200
        assert 'data-testid="wb-candidate"' not in pop.text and "data-wb-register" in pop.text
        assert "138****0000" in pop.text and "Nobody in the index or the hospital system" in pop.text
        assert_no_numbers_in_urls(pop.text, "13812340000")
        assert "13812340000" not in pop.text  # the form offers the caller's number without holding it
        assert 'name="contact_phone"' in pop.text

        withheld = await hand_contact(agent, phone=None)
        page = await agent.get(f"/workbench/contacts/{withheld['id']}")
        assert page.status_code == 200 and "number withheld" in page.text and 'name="contact_phone"' not in page.text
        assert (await agent.get("/workbench/contacts/999999")).status_code == 404

        refused = [
            (await agent.post("/api/patients", json={"name": "来电人", "contact_phone": True}), 422),
            (await agent.post("/api/patients", json={"name": "来电人", "contact_id": withheld["id"],
                                                     "contact_phone": True}), 422),
            (await agent.post("/api/patients", json={"name": "来电人", "contact_id": 999999}), 404),
        ]  # fmt: skip
        for answer, status in refused:
            assert_error(answer, status)
        assert (await agent.post("/api/patients/search", json={"query": "来电人"})).json()["candidates"] == []

        made = await agent.post("/api/patients", json={"name": "来电人", "contact_id": contact["id"],
                                                       "contact_phone": True, "phones": ["13912340000"]})  # fmt: skip
        assert made.status_code == 201, made.text
        patient = made.json()
        assert [p["masked"] for p in patient["phones"]] == ["138****0000", "139****0000"]
        attached = (await agent.get(f"/api/contacts/{contact['id']}")).json()
        assert attached["patient_id"] == patient["id"] and attached["verified_by"] == ""


async def test_the_work_order_form_takes_the_patient_and_contact_by_id(as_user: Any, admin: Client) -> None:
    types: dict[str, int] = {}
    for code, name in (("complaint", "投诉"), ("callback", "回电")):
        made = await admin.post("/api/workorders/types", json={"code": code, "name": name, "group": code})
        assert made.status_code == 201, made.text
        types[code] = made.json()["id"]
    async with english(as_user, "agent01", ["agent"]) as agent:
        father, _, _ = await family(agent)
        contact = await hand_contact(agent)
        form = await agent.get("/workorders/new", params={"patient": father["id"], "contact_id": contact["id"]})
        assert form.status_code == 200, form.text
        assert f'name="patient_id" value="{father["id"]}"' in form.text
        assert "139****1111" in form.text and contact["reference"] in form.text
        assert FAMILY_PHONE[-8:] not in form.text  # not even in a hidden field: the order takes it from the contact
        order = await agent.post("/api/workorders", json={"type_id": types["complaint"], "subject": "投诉排队太久",
                                                           "contact_ref": contact["reference"]})  # fmt: skip
        assert order.status_code == 201, order.text
        assert order.json()["caller_phone_masked"] == "139****1111"
        callback = await agent.get("/workorders/new",
                                   params={"type": "callback", "patient": father["id"]})  # fmt: skip
        assert callback.status_code == 200 and f'name="patient_id" value="{father["id"]}"' in callback.text
        assert re.search(r'data-code="callback"[^>]*checked', callback.text)  # the callback type is chosen
        assert "wo-caller-masked" not in callback.text  # no contact: the number is typed
        assert (await agent.get("/workorders/new", params={"patient": 999999})).status_code == 404
