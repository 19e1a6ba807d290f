"""The contact pages through HTTP: the list (filters, htmx rows, masked numbers and names, export link,
empty states, the handover notice), a contact's page, the tree editor and the handover log."""

from __future__ import annotations

from typing import Any

import pytest
from ct_base import make_tree, ok, record

from helpers import Client
from patientline.contacts.handover import current_shift
from patientline.core import clock

HX = {"HX-Request": "true"}


def html(response: Any, status: int = 200) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    text: str = response.text
    return text


@pytest.fixture(autouse=True)
def english(agent: Client, agent2: Client, admin: Client) -> None:
    for client in (agent, agent2, admin):
        client.http.cookies.set("pl_lang", "en")


async def test_the_list_masks_filters_and_pages(admin: Client, agent: Client) -> None:
    tree = await make_tree(admin)
    made = await record(agent, disposition_ids=[tree.ids["consult.registration"]])
    other = await record(agent, channel="wechat", phone="13900000001", caller_name="李雷", subject="投诉窗口")
    page = html(await agent.get("/contacts"))
    assert "<html" in page.lower() and 'id="ct-q"' in page and "data-search" in page
    assert f'href="/contacts/{made["id"]}"' in page and made["reference"] in page
    assert "138****5678" in page and "王*明" in page and "13812345678" not in page and "王小明" not in page
    assert "挂号" in page and "2 contacts" in page and 'href="/api/contacts/export.csv"' in page
    assert "Record a contact" in page and 'id="ct-new"' in page

    wechat = html(await agent.get("/contacts?channel=wechat&status=&date_from=&agent_id=", headers=HX))
    assert "<html" not in wechat.lower() and other["reference"] in wechat and made["reference"] not in wechat
    assert 'href="/api/contacts/export.csv?channel=wechat"' in wechat
    coded = html(await agent.get(f"/contacts?disposition_id={tree.ids['consult']}", headers=HX))
    assert made["reference"] in coded and other["reference"] not in coded
    none = html(await agent.get("/contacts?status=closed", headers=HX))
    assert "No contacts match these filters." in none and "export.csv" not in none
    bad_phone = html(await agent.get("/contacts?phone=12", headers=HX))
    assert "alert-error" in bad_phone and made["reference"] not in bad_phone
    mine = html(await agent.get("/contacts?mine=true", headers=HX))
    assert made["reference"] in mine
    assert made["reference"] not in html(await admin.get("/contacts?mine=true", headers=HX))
    nonsense = html(await agent.get("/contacts?channel=fax&status=maybe&date_from=soon"))
    assert made["reference"] in nonsense  # unknown filter values are ignored on the page
    assert (await agent.get("/contacts?page=0")).status_code == 422


async def test_the_list_has_an_empty_state_and_the_handover_notice(agent: Client, agent2: Client) -> None:
    page = html(await agent.get("/contacts"))
    assert "No contacts yet." in page and "data-handover-notice" not in page
    shift_date, shift = current_shift()
    body = {"shift_date": shift_date.isoformat(), "shift": shift, "notes": "系统升级", "items": ["回电", "核对"]}
    written = ok(await agent.post("/api/handovers", json=body), 201)
    page = html(await agent2.get("/contacts"))
    assert "data-handover-notice" in page and "2 pending items" in page and 'href="/contacts/handover"' in page
    ok(await agent2.post(f"/api/handovers/{written['id']}/acknowledge", json={"version": written["version"]}))
    assert "data-handover-notice" not in html(await agent2.get("/contacts"))


async def test_the_contact_page_offers_the_tree_and_the_close(admin: Client, agent: Client, handler: Any) -> None:
    tree = await make_tree(admin)
    made = await record(agent, disposition_ids=[tree.ids["complaint"]], notes="患者很着急")
    page = html(await agent.get(f"/contacts/{made['id']}"))
    assert made["reference"] in page and "data-ct-contact" in page and f'data-version="{made["version"]}"' in page
    assert "患者很着急" in page and "王小明" in page and "138****5678" in page and "13812345678" not in page
    assert 'value="save"' in page and 'value="close"' in page and "Alt+S" in page
    assert f'value="{tree.ids["complaint"]}" data-type="int-check" checked' in page
    assert "consult.insurance.claims" in page and "data-tree-filter" in page
    assert f"/workorders/new?contact={made['reference']}" in page
    closed = ok(await agent.post(f"/api/contacts/{made['id']}/close", json={"version": made["version"]}))
    after = html(await agent.get(f"/contacts/{made['id']}"))
    assert "data-ct-contact" not in after and 'value="close"' not in after and "患者很着急" in after
    assert closed["status"] == "closed"
    assert (await agent.get("/contacts/999999")).status_code == 404
    assert (await handler.get(f"/contacts/{made['id']}")).status_code == 403


async def test_the_patient_link_goes_to_the_workbench(agent: Client, db: Any) -> None:
    from patientline.patients.models import Patient

    async with db.sessions() as session, session.begin():
        patient = Patient(name="赵六")
        session.add(patient)
        await session.flush()
        patient_id = patient.id
    made = await record(agent, patient_id=patient_id, verified_by="id_digits")
    page = html(await agent.get(f"/contacts/{made['id']}"))
    assert f'href="/workbench/patients/{patient_id}"' in page and "Last digits of the ID" in page
    assert "赵六" not in page  # the contact names the patient by id only


async def test_the_tree_editor_is_for_administrators(admin: Client, agent: Client) -> None:
    empty = html(await admin.get("/contacts/dispositions"))
    assert "No codes yet." in empty
    tree = await make_tree(admin)
    await record(agent, disposition_ids=[tree.ids["complaint"]])
    page = html(await admin.get("/contacts/dispositions"))
    assert 'data-code="consult.insurance.claims"' in page and "in use" in page
    # a used code offers no delete; a leaf nobody used does
    assert f'data-url="/api/dispositions/{tree.ids["complaint"]}?version=1"' not in page
    assert f'data-url="/api/dispositions/{tree.ids["consult.insurance.claims"]}?version=1"' in page
    assert (await agent.get("/contacts/dispositions")).status_code == 403


async def test_the_handover_page_writes_lists_and_acknowledges(agent: Client, agent2: Client, handler: Any) -> None:
    page = html(await agent.get("/contacts/handover"))
    assert "No handovers yet." in page and 'name="shift_date"' in page
    shift_date, shift = current_shift()
    assert f'value="{shift_date.isoformat()}"' in page and f'value="{shift}" selected' in page
    body = {"shift_date": shift_date.isoformat(), "shift": shift, "notes": "3号线路故障", "items": ["回电李女士"]}
    written = ok(await agent.post("/api/handovers", json=body), 201)
    own = html(await agent.get("/contacts/handover"))
    assert "3号线路故障" in own and "Waiting for the next shift" in own and "/acknowledge" not in own
    theirs = html(await agent2.get("/contacts/handover"))
    assert f'data-url="/api/handovers/{written["id"]}/acknowledge"' in theirs
    assert f'data-item-url="/api/handovers/{written["id"]}/items/{written["items"][0]["id"]}"' in theirs
    ok(await agent2.post(f"/api/handovers/{written['id']}/acknowledge", json={"version": written["version"]}))
    acked = html(await agent2.get("/contacts/handover"))
    assert "Acknowledged by Agent02" in acked
    assert "Every handover is acknowledged." in html(await agent2.get("/contacts/handover?pending=true"))
    assert (await handler.get("/contacts/handover")).status_code == 403


async def test_pages_render_in_chinese_by_default(agent: Client) -> None:
    agent.http.cookies.delete("pl_lang")
    await record(agent)
    page = html(await agent.get("/contacts"))
    assert "服务记录" in page and "记录" in page


def test_shifts_follow_the_hospital_clock() -> None:
    from datetime import UTC, date, datetime

    assert current_shift(datetime(2026, 11, 22, 1, 0, tzinfo=UTC))[1] == "day"  # 09:00 in Shanghai
    assert current_shift(datetime(2026, 11, 22, 9, 0, tzinfo=UTC))[1] == "evening"  # 17:00
    night = current_shift(datetime(2026, 11, 22, 18, 0, tzinfo=UTC))  # 02:00 on the 23rd
    assert night == (date(2026, 11, 22), "night")
    assert clock.now()  # the clock is untouched
