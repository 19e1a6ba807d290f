"""The work-order pages through HTTP: the list, registration, the detail with only the allowed steps,
the agent's callbacks and the department's queue, each for the right role and refused to the others."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from wo_base import Centre, complaint_body, create_order, ok, step

from helpers import Client
from patientline.core import clock

HX = {"HX-Request": "true"}


def html(response: Any, status: int = 200) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    text: str = response.text
    return text


def step_buttons(page: str) -> list[str]:
    return re.findall(r'data-step="(\w+)"', page)


@pytest.fixture(autouse=True)
def english(agent: Client, supervisor: Client, admin: Client) -> None:
    for client in (agent, supervisor, admin):
        client.http.cookies.set("pl_lang", "en")


# --- the list --------------------------------------------------------------------------------------


async def test_the_list_shows_orders_with_masked_phones_and_filters(centre: Centre, agent: Client) -> None:
    order = await create_order(agent, complaint_body(centre))
    page = html(await agent.get("/workorders"))
    assert "<html" in page.lower() and 'id="wo-q"' in page and "data-search" in page
    assert f'href="/workorders/{order["id"]}"' in page and order["reference"] in page
    assert "138****5678" in page and "13812345678" not in page
    assert "wo-st-dispatched" in page and "data-countdown" in page and "心内科" in page
    assert "1 work order" in page

    by_digits = html(await agent.get("/workorders?q=5678", headers=HX))
    assert "<html" not in by_digits.lower() and order["reference"] in by_digits
    by_reference = html(await agent.get(f"/workorders?q={order['reference']}", headers=HX))
    assert order["reference"] in by_reference
    none = html(await agent.get("/workorders?status=closed", headers=HX))
    assert order["reference"] not in none and "No work orders match these filters." in none
    mine = html(await agent.get("/workorders?mine=true&status=&type_id=&urgency=", headers=HX))
    assert order["reference"] in mine


async def test_the_list_has_an_empty_state(centre: Centre, agent: Client) -> None:
    page = html(await agent.get("/workorders"))
    assert "No work orders yet." in page


async def test_department_handlers_see_only_their_orders_in_the_list(
    centre: Centre, agent: Client, cardiology: Client, gastro: Client
) -> None:
    cardiology.http.cookies.set("pl_lang", "en")
    gastro.http.cookies.set("pl_lang", "en")
    order = await create_order(agent, complaint_body(centre))
    assert order["reference"] in html(await cardiology.get("/workorders"))
    assert order["reference"] not in html(await gastro.get("/workorders"))


async def test_people_without_work_orders_get_403(centre: Centre, as_user: Any) -> None:
    async with as_user("qa1", ["qa"]) as qa:
        qa.http.cookies.set("pl_lang", "en")
        for path in ("/workorders", "/workorders/new", "/workorders/callbacks", "/workorders/department"):
            html(await qa.get(path), 403)


async def test_pages_need_a_login(anon: Client) -> None:
    response = await anon.get("/workorders")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


# --- registration ----------------------------------------------------------------------------------


async def test_the_new_order_form_lists_the_types_and_their_fields(centre: Centre, agent: Client) -> None:
    page = html(await agent.get("/workorders/new"))
    assert "data-wo-new" in page and 'name="type_id"' in page
    assert page.count('name="type_id"') == 2 and "投诉" in page and "回电" in page
    assert 'data-value="visit_date"' in page and 'type="date"' in page  # the complaint's own fields
    assert 'data-field="values.visit_date"' in page and "就诊日期" in page
    assert 'data-value="severity"' in page and "严重" in page
    assert "服务态度" in page and "医疗质量" in page  # its categories
    assert 'name="callback_from"' in page and 'type="datetime-local"' in page
    assert 'name="co_department_ids"' in page and "心内科" in page


async def test_the_new_order_form_takes_a_prefill(centre: Centre, agent: Client) -> None:
    page = html(await agent.get("/workorders/new?type=callback&phone=13812345678&contact=C-2026-7&name=李女士"))
    checked = re.search(r'<input type="radio" name="type_id" value="(\d+)"[^>]*checked', page)
    assert checked and int(checked.group(1)) == centre.callback_type
    assert 'value="13812345678"' in page and 'name="contact_ref" value="C-2026-7"' in page and "李女士" in page
    hostile = html(await agent.get('/workorders/new?contact="><script>x</script>'))
    assert "<script>x</script>" not in hostile and 'name="contact_ref"' not in hostile


async def test_the_new_order_form_without_types_says_so(admin: Client, agent: Client) -> None:
    page = html(await agent.get("/workorders/new"))
    assert "No work-order types are set up yet." in page and "data-wo-new" not in page


async def test_handlers_cannot_register(centre: Centre, cardiology: Client) -> None:
    html(await cardiology.get("/workorders/new"), 403)
    html(await cardiology.get("/workorders/callbacks"), 403)


# --- the detail ------------------------------------------------------------------------------------


async def test_the_detail_shows_the_order_and_only_the_allowed_steps(
    centre: Centre, agent: Client, cardiology: Client, supervisor: Client
) -> None:
    cardiology.http.cookies.set("pl_lang", "en")
    order = await create_order(agent, complaint_body(centre))
    page = html(await agent.get(f"/workorders/{order['id']}"))
    assert order["reference"] in page and "挂号窗口态度差" in page and "138****5678" in page
    assert "13812345678" not in page
    assert "2026-11-20" in page and "就诊日期" in page  # the form's values
    assert step_buttons(page) == ["dispatch", "merge"]
    assert f'value="{order["version"]}"' in page and "Why this deadline" in page
    assert 'data-deadline="reply"' in page and 'data-deadline="resolve"' in page

    handler_page = html(await cardiology.get(f"/workorders/{order['id']}"))
    assert step_buttons(handler_page) == ["accept", "return"]
    assert "Ask for more time" in handler_page and "Record a callback attempt" not in handler_page

    order = await step(cardiology, order, "accept")
    order = await step(cardiology, order, "resolve", text="已处理")
    assert step_buttons(html(await cardiology.get(f"/workorders/{order['id']}"))) == []
    agent_page = html(await agent.get(f"/workorders/{order['id']}"))
    assert step_buttons(agent_page) == ["evaluate", "close", "merge"]
    order = await step(agent, order, "evaluate", satisfied=True, comment="满意")
    closed = html(await agent.get(f"/workorders/{order['id']}"))
    assert step_buttons(closed) == [] and "wo-st-closed" in closed and 'data-verdict="on-time"' in closed
    assert step_buttons(html(await supervisor.get(f"/workorders/{order['id']}"))) == ["reopen"]


async def test_an_undispatched_callback_order_has_one_deadline(centre: Centre, agent: Client) -> None:
    body = {"type_id": centre.callback_type, "subject": "请回电告知检查结果", "caller_phone": "13812345678"}
    order = await create_order(agent, body)
    page = html(await agent.get(f"/workorders/{order['id']}"))
    assert step_buttons(page) == ["dispatch", "close", "merge"] and "not dispatched yet" in page
    assert 'data-deadline="reply"' not in page and 'data-deadline="resolve"' in page
    assert "Result: 8 working hours" in page and "Reply:" not in page
    assert 'data-lookup-reference="into_id"' in page and "Record a callback attempt" in page


async def test_notes_are_escaped_and_keep_their_lines(centre: Centre, agent: Client) -> None:
    order = await create_order(agent, complaint_body(centre))
    note = "<script>alert('x')</script>\n第二行"
    await ok(await agent.post(f"/api/workorders/{order['id']}/notes", json={"note": note}))
    page = html(await agent.get(f"/workorders/{order['id']}"))
    assert "<script>alert(" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;\n第二行" in page


async def test_unseen_orders_answer_404(centre: Centre, agent: Client, gastro: Client) -> None:
    gastro.http.cookies.set("pl_lang", "en")
    order = await create_order(agent, complaint_body(centre))
    html(await gastro.get(f"/workorders/{order['id']}"), 404)
    html(await agent.get("/workorders/999999"), 404)


async def test_co_handlers_see_the_detail_without_steps(centre: Centre, agent: Client, gastro: Client) -> None:
    gastro.http.cookies.set("pl_lang", "en")
    order = await create_order(agent, complaint_body(centre, co_department_ids=[centre.departments["XHNK"]]))
    page = html(await gastro.get(f"/workorders/{order['id']}"))
    assert step_buttons(page) == [] and "No step is yours to take at this stage." in page
    assert "Add a note" in page and "Attach evidence" not in page and "Stop the clock" not in page


async def test_the_detail_explains_pauses_and_lists_evidence(centre: Centre, agent: Client) -> None:
    order = await create_order(agent, complaint_body(centre))
    await ok(await agent.post(f"/api/workorders/{order['id']}/pause", json={"version": order["version"],
                                                                           "reason": "等待患者提供病历"}))  # fmt: skip
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    files = {"file": ("receipt.png", png, "image/png")}
    await ok(await agent.post(f"/api/workorders/{order['id']}/attachments", files=files, data={"note": "收据"}), 201)
    page = html(await agent.get(f"/workorders/{order['id']}"))
    assert "wo-paused" in page and "等待患者提供病历" in page
    assert "Start the clock again" in page and "Stop the clock: waiting" not in page
    assert re.search(rf'href="/api/workorders/{order["id"]}/attachments/\d+"[^>]*>receipt.png', page)
    assert "at most 8 MB" in page


# --- callbacks and the department's queue ----------------------------------------------------------


async def test_callbacks_due_list_mine_and_all(centre: Centre, agent: Client, supervisor: Client) -> None:
    empty = html(await agent.get("/workorders/callbacks"))
    assert "No callbacks are due for you." in empty
    order = await create_order(agent, complaint_body(centre, department_id=None))
    at = (clock.now() + timedelta(hours=1)).isoformat()
    await ok(await agent.post(f"/api/workorders/{order['id']}/callback", json={"at": at}))
    page = html(await agent.get("/workorders/callbacks"))
    assert order["reference"] in page and 'value="no_answer"' in page and "data-countdown" in page
    assert "A wrong number closes the order." in page
    assert order["reference"] not in html(await supervisor.get("/workorders/callbacks"))
    assert order["reference"] in html(await supervisor.get("/workorders/callbacks?all=true"))


async def test_the_department_queue_with_tabs_and_inline_accept(
    centre: Centre, agent: Client, cardiology: Client, gastro: Client
) -> None:
    cardiology.http.cookies.set("pl_lang", "en")
    gastro.http.cookies.set("pl_lang", "en")
    empty = html(await cardiology.get("/workorders/department"))
    assert "Nothing waiting to be accepted." in empty and "data-live" in empty
    order = await create_order(agent, complaint_body(centre, co_department_ids=[centre.departments["XHNK"]]))
    page = html(await cardiology.get("/workorders/department"))
    assert order["reference"] in page and f'action="/api/workorders/{order["id"]}/accept"' in page.replace(
        "data-action", "action"
    )
    shared = html(await gastro.get("/workorders/department"))
    assert order["reference"] in shared and "co-handling" in shared and "/accept" not in shared
    await step(cardiology, order, "accept")
    new = html(await cardiology.get("/workorders/department?tab=new", headers=HX))
    assert order["reference"] not in new and 'id="wo-count-accepted"' in new and "hx-swap-oob" in new
    accepted = html(await cardiology.get("/workorders/department?tab=accepted"))
    assert order["reference"] in accepted
    assert order["reference"] in html(await cardiology.get("/workorders/department?tab=all"))


async def test_agents_have_no_department_queue(centre: Centre, agent: Client) -> None:
    html(await agent.get("/workorders/department"), 403)


async def test_the_pages_speak_chinese_by_default(centre: Centre, agent: Client, cardiology: Client) -> None:
    agent.http.cookies.delete("pl_lang")
    order = await create_order(agent, complaint_body(centre))
    assert "登记工单" in html(await agent.get("/workorders/new"))
    listing = html(await agent.get("/workorders"))
    assert "共 1 张工单" in listing and "已派发" in listing
    detail = html(await agent.get(f"/workorders/{order['id']}"))
    assert "处理记录" in detail and "时限是怎么算的" in detail and "派至 心内科" in detail
    assert "待回电" in html(await agent.get("/workorders/callbacks"))
    assert "待受理" in html(await cardiology.get("/workorders/department"))
