"""Clinic timetable pages: the week's grid for agents, doctors' pages, and the editors' forms."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from helpers import Client
from patientline.core import clock

NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # Monday 23 November 2026, 09:00 in Beijing
HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def frozen_clock() -> Iterator[None]:
    clock.set_now(NOW)
    yield


def html(response: Any, status: int = 200) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    text: str = response.text
    return text


async def post(client: Client, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.request("PUT" if url.endswith("/sessions") else "POST", url, json=body)
    assert response.status_code in (200, 201), response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.fixture
async def clinic(admin: Client) -> dict[str, Any]:
    """消化内科 at 院本部 with 张伟 (Tuesday afternoons, stopped next Tuesday) and 李娜 (Thursday
    mornings, 张伟 substitutes next Thursday); an empty 骨科."""
    main = await post(admin, "/api/directory/sites", {"code": "MAIN", "name": "院本部"})
    xhnk = await post(admin, "/api/directory/departments", {"code": "XHNK", "name": "消化内科", "site_id": main["id"]})
    gk = await post(admin, "/api/directory/departments", {"code": "GK", "name": "骨科", "site_id": main["id"]})
    place = {"site_id": main["id"], "department_id": xhnk["id"]}
    zhang = await post(
        admin,
        "/api/kb/doctors",
        {
            "code": "D001",
            "name": "张伟",
            "title": "主任医师",
            "speciality": "胃肠镜诊疗",
            "introduction": "从事消化内科临床工作 25 年。",
        }
        | place,
    )
    li = await post(admin, "/api/kb/doctors", {"code": "D002", "name": "李娜", "title": "副主任医师"} | place)
    zhang = await post(
        admin,
        f"/api/kb/doctors/{zhang['id']}/sessions",
        {
            "version": zhang["version"],
            "sessions": [{"weekday": 2, "half_day": "pm", "kind": "专家门诊", "room": "12 诊室"}],
        },
    )
    li = await post(
        admin,
        f"/api/kb/doctors/{li['id']}/sessions",
        {"version": li["version"], "sessions": [{"weekday": 4, "half_day": "am", "room": "8 诊室"}]},
    )
    await post(
        admin, f"/api/kb/doctors/{zhang['id']}/changes", {"day": "2026-12-01", "kind": "stop", "reason": "外出会诊"}
    )
    await post(
        admin,
        f"/api/kb/doctors/{li['id']}/changes",
        {"day": "2026-12-03", "kind": "substitute", "substitute_id": zhang["id"]},
    )
    return {"main": main, "xhnk": xhnk, "gk": gk, "zhang": zhang, "li": li}


async def test_agents_see_the_week_with_stops_and_substitutions(as_user: Any, clinic: dict[str, Any]) -> None:
    async with as_user("agent1", ["agent"]) as agent:
        page = html(await agent.get("/kb/timetable", params={"start": "2026-11-30"}))
        assert "<html" in page and 'href="/kb/timetable"' in page  # the navigation entry
        assert "出诊时间表" in page and "消化内科" in page and "院本部" in page
        assert 'data-hotkey="ArrowLeft"' in page and "start=2026-11-23" in page
        assert 'data-hotkey="ArrowRight"' in page and "start=2026-12-07" in page
        zhang_row = page[page.index(f'/kb/doctors/{clinic["zhang"]["id"]}"') :]
        zhang_row = zhang_row[: zhang_row.index("</tr>")]
        assert "tt-stopped" in zhang_row and "停诊" in zhang_row and "外出会诊" in zhang_row
        li_row = page[page.index(f'/kb/doctors/{clinic["li"]["id"]}"') :]
        li_row = li_row[: li_row.index("</tr>")]
        assert "tt-substituted" in li_row and "替诊：张伟" in li_row
        assert "/kb/doctors/new" not in page  # agents do not edit

        this_week = html(await agent.get("/kb/timetable"))
        grid = this_week.split('id="grid"')[1]
        assert "2026-11-23 – 2026-11-29" in grid and "tt-in" in grid and "tt-stopped" not in grid


async def test_filters_answer_the_grid_alone_and_empty_states(admin: Client, clinic: dict[str, Any]) -> None:
    fragment = html(await admin.get("/kb/timetable?start=2026-11-30&site_id=&department_id=&q=zw", headers=HX))
    assert "<html" not in fragment and "张伟" in fragment and "李娜" not in fragment
    assert "q=zw" in fragment  # the week links keep the search
    none = html(await admin.get(f"/kb/timetable?department_id={clinic['gk']['id']}", headers=HX))
    assert "本周没有符合筛选条件的门诊。" in none and "<table" not in none
    admin.http.cookies.set("pl_lang", "en")
    later = html(await admin.get("/kb/timetable?start=2027-01-04&site_id=&department_id=&q=", headers=HX))
    assert "tt-slot tt-in" in later and "Afternoon" in later  # regular sessions go on, in English
    assert "invalid_input" in html(await admin.get("/kb/timetable?start=tomorrow"), 422)


async def test_an_empty_timetable_invites_editors_only(admin: Client, as_user: Any) -> None:
    page = html(await admin.get("/kb/timetable"))
    assert "本周暂无门诊。" in page and 'href="/kb/doctors/new"' in page
    async with as_user("agent2", ["agent"]) as agent:
        page = html(await agent.get("/kb/timetable"))
        assert "本周暂无门诊。" in page and "/kb/doctors/new" not in page
        doctors = html(await agent.get("/kb/doctors"))
        assert "暂无医生。" in doctors


async def test_the_doctor_page(admin: Client, as_user: Any, clinic: dict[str, Any]) -> None:
    zhang = clinic["zhang"]
    page = html(await admin.get(f"/kb/doctors/{zhang['id']}"))
    assert "张伟" in page and "主任医师" in page and "胃肠镜诊疗" in page and "从事消化内科临床工作 25 年。" in page
    assert "专家门诊" in page and "12 诊室" in page  # the weekly sessions
    assert "2026-12-01" in page and "外出会诊" in page  # the stop ahead
    assert f'data-delete="/api/kb/doctors/{zhang["id"]}/changes/' in page
    assert f'href="/kb/doctors/{zhang["id"]}/sessions"' in page
    async with as_user("agent3", ["agent"]) as agent:
        read_only = html(await agent.get(f"/kb/doctors/{zhang['id']}"))
        assert "胃肠镜诊疗" in read_only and "data-delete" not in read_only and "/sessions" not in read_only
    assert "not_found" in html(await admin.get("/kb/doctors/999"), 404)


async def test_editor_forms(admin: Client, as_user: Any, clinic: dict[str, Any]) -> None:
    zhang, li = clinic["zhang"], clinic["li"]
    new = html(await admin.get("/kb/doctors/new"))
    assert 'data-action="/api/kb/doctors"' in new and "data-json-form" in new and "消化内科" in new
    edit = html(await admin.get(f"/kb/doctors/{zhang['id']}/edit"))
    assert 'data-method="PATCH"' in edit and f'value="{zhang["version"]}"' in edit and "胃肠镜诊疗" in edit
    sessions = html(await admin.get(f"/kb/doctors/{zhang['id']}/sessions"))
    assert sessions.count("data-slot") == 21 and "/static/timetable.js" in sessions
    assert 'data-weekday="2" data-half-day="pm" x-data="{ on: true }"' in sessions
    change = html(await admin.get(f"/kb/doctors/{zhang['id']}/changes/new"))
    assert f'<option value="{li["id"]}">李娜 副主任医师</option>' in change and 'min="2026-11-23"' in change

    async with as_user("agent4", ["agent"]) as agent:
        for url in ("/kb/doctors/new", f"/kb/doctors/{zhang['id']}/edit", f"/kb/doctors/{zhang['id']}/sessions"):
            assert "permission_denied" in html(await agent.get(url), 403)
    async with as_user("handler-gk", ["handler"], department_ids=[clinic["gk"]["id"]]) as handler:
        assert "permission_denied" in html(await handler.get(f"/kb/doctors/{zhang['id']}/changes/new"), 403)
        assert "data-delete" not in html(await handler.get(f"/kb/doctors/{zhang['id']}"))


async def test_the_doctor_list_finds_by_pinyin(admin: Client, clinic: dict[str, Any]) -> None:
    page = html(await admin.get("/kb/doctors"))
    assert "张伟" in page and "李娜" in page and "共 2 条" in page
    fragment = html(
        await admin.get("/kb/doctors", params={"q": "lina", "site_id": "", "department_id": ""}, headers=HX)
    )
    assert "李娜" in fragment and "张伟" not in fragment
    nothing = html(await admin.get("/kb/doctors", params={"q": "<b>x</b>"}, headers=HX))
    assert "&lt;b&gt;x&lt;/b&gt;" in nothing and "<b>x</b>" not in nothing
