"""The agent knowledge panel (/kb): the page, its fragments (results, answer, pinned and recent), the
embeddable variant, and the live-answer API it is built on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from kb_pages_base import category, create_item, html

from helpers import Client, assert_error
from patientline.core import clock

HX = {"HX-Request": "true"}


@pytest.fixture
async def knowledge(admin: Client) -> dict[str, int]:
    admin.http.cookies.set("pl_lang", "en")

    visits = await category(admin, "visits", "就诊")
    reports = await category(admin, "reports", "检查报告", visits)
    parking = await category(admin, "parking", "交通停车")
    return {
        "visits": visits,
        "reports": reports,
        "report_item": await create_item(
            admin,
            reports,
            "检查报告什么时候能取",
            answer_html="<p>血常规报告<strong>两小时</strong>后可在自助机打印。</p>",
            spoken="血常规两小时后出报告，可以在自助机打印。",
            variants=["化验单多久出结果"],
            tags=["报告"],
        ),
        "parking_item": await create_item(
            admin,
            parking,
            "医院停车场怎么收费",
            answer_html="<p>首小时免费，之后每小时五元。</p>",
            spoken="首小时免费，之后每小时五元。",
            public=False,
        ),
        "draft_item": await create_item(admin, parking, "自行车停在哪里", publish=False),
    }


async def test_the_panel_renders_for_an_agent(as_user: Any, knowledge: dict[str, int]) -> None:
    async with as_user("agent1", ["agent"]) as agent:
        agent.http.cookies.set("pl_lang", "en")
        page = html(await agent.get("/kb"))
    assert 'id="kb-q"' in page and "data-search" in page and 'id="kb-answer"' in page
    assert 'class="sidenav"' in page  # the staff layout
    assert "Type the caller’s words to search" in page
    assert "Nothing pinned yet" in page
    assert "检查报告什么时候能取" in page and "医院停车场怎么收费" in page  # recently changed
    assert "自行车停在哪里" not in page  # a draft is not live
    assert ">　检查报告</option>" in page  # the category filter, indented under its domain
    assert 'href="/kb/timetable"' in page
    assert "/static/kb.js" in page and "/static/kb.css" in page


async def test_the_panel_needs_a_login(anon: Client) -> None:
    response = await anon.get("/kb")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert_error(await anon.get("/kb/panel/results?q=报告", headers=HX), 401)


async def test_results_show_the_matched_wording_highlighted(admin: Client, knowledge: dict[str, int]) -> None:
    page = html(await admin.get("/kb/panel/results", params={"q": "化验单多久出结果"}, headers=HX))
    assert "<html" not in page
    assert f'data-hit="{knowledge["report_item"]}"' in page
    assert "<mark>" in page and "检查报告什么时候能取" in page  # matched a variant: the question beside it
    assert "就诊 / 检查报告" in page
    assert "data-new" in page  # published just now
    assert 'id="kb-count"' in page and 'hx-swap-oob="true"' in page
    assert "1 answer" in page


async def test_a_poor_match_says_so_and_lists_maybes(admin: Client, knowledge: dict[str, int]) -> None:
    page = html(await admin.get("/kb/panel/results", params={"q": "报告单丢了怎么补打印"}, headers=HX))
    assert 'data-state="no-good-match"' in page and "No good match" in page
    assert page.count("data-hit=") >= 1 and "maybe" in page and 'class="kb-hits weak"' in page
    assert "data-add-wording" in page and 'data-good="false"' in page
    nothing = html(await admin.get("/kb/panel/results", params={"q": "量子纠缠"}, headers=HX))
    assert 'data-state="no-results"' in nothing and "data-add-wording" in nothing
    assert "No results." in nothing


async def test_an_empty_box_invites_typing(admin: Client, knowledge: dict[str, int]) -> None:
    page = html(await admin.get("/kb/panel/results", params={"q": "  "}, headers=HX))
    assert 'data-state="idle"' in page and "Type to search." in page


async def test_filters_narrow_the_results(admin: Client, knowledge: dict[str, int]) -> None:
    params = {"q": "检查报告什么时候能取", "category_id": str(knowledge["reports"]), "site_id": ""}
    page = html(await admin.get("/kb/panel/results", params=params, headers=HX))
    assert f'data-hit="{knowledge["report_item"]}"' in page
    other = await admin.get("/api/kb/categories")
    parking = next(c["id"] for c in other.json() if c["code"] == "parking")
    page = html(await admin.get("/kb/panel/results", params=params | {"category_id": str(parking)}, headers=HX))
    assert f'data-hit="{knowledge["report_item"]}"' not in page


async def test_the_answer_pane_shows_the_live_answer(admin: Client, knowledge: dict[str, int]) -> None:
    item_id = knowledge["report_item"]
    page = html(await admin.get(f"/kb/panel/answer/{item_id}", headers=HX))
    assert "<html" not in page
    assert "<strong>两小时</strong>" in page  # sanitised HTML, inserted as it is
    assert 'data-spoken data-testid="kb-spoken">血常规两小时后出报告' in page
    assert 'data-hotkey="c"' in page and 'data-hotkey="p"' in page
    assert 'aria-pressed="false"' in page
    assert f'data-add-wording data-item="{item_id}"' in page
    assert 'data-feedback="helpful"' in page and "data-outdated-form" in page

    # a new draft does not change what agents see until it is published
    item = (await admin.get(f"/api/kb/items/{item_id}")).json()
    body = {k: item[k] for k in ("category_id", "question", "spoken", "tags", "public")} | {
        "answer_html": "<p>草稿</p>",
        "version": item["version"],
    }
    assert (await admin.put(f"/api/kb/items/{item_id}", json=body)).status_code == 200
    page = html(await admin.get(f"/kb/panel/answer/{item_id}", headers=HX))
    assert "两小时" in page and "草稿" not in page


async def test_a_draft_has_no_answer_to_open(admin: Client, knowledge: dict[str, int]) -> None:
    assert_error(await admin.get(f"/kb/panel/answer/{knowledge['draft_item']}", headers=HX), 404)


async def test_pinned_answers_appear_on_the_left(admin: Client, knowledge: dict[str, int]) -> None:
    item_id = knowledge["parking_item"]
    assert (await admin.put(f"/api/kb/items/{item_id}/favourite")).status_code == 204
    side = html(await admin.get("/kb/panel/side", headers=HX))
    pinned = side[side.index('id="kb-pinned"') : side.index("kb-recent-title")]
    assert f'data-open="{item_id}"' in pinned and "医院停车场怎么收费" in pinned
    assert 'aria-pressed="true"' in html(await admin.get(f"/kb/panel/answer/{item_id}", headers=HX))
    assert (await admin.delete(f"/api/kb/items/{item_id}/favourite")).status_code == 204
    assert "Nothing pinned yet" in html(await admin.get("/kb/panel/side", headers=HX))


async def test_the_whole_page_restores_query_and_answer(admin: Client, knowledge: dict[str, int]) -> None:
    item_id = knowledge["report_item"]
    page = html(await admin.get("/kb", params={"q": "化验单多久出结果", "item": str(item_id)}))
    assert 'value="化验单多久出结果"' in page
    assert f'data-hit="{item_id}"' in page
    assert "血常规两小时后出报告" in page


async def test_the_embedded_panel_has_no_staff_chrome(admin: Client, knowledge: dict[str, int]) -> None:
    page = html(await admin.get("/kb", params={"embed": "1", "q": "检查报告"}))
    assert 'id="kb-q"' in page and 'class="kb-embedded"' in page
    assert 'class="sidenav"' not in page and 'class="topbar"' not in page
    assert '<input type="hidden" name="embed" value="1">' in page
    assert "&amp;embed=1" in page  # result links keep the embedding


async def test_the_panel_speaks_chinese_by_default(as_user: Any, knowledge: dict[str, int]) -> None:
    async with as_user("agent2", ["agent"]) as agent:
        page = html(await agent.get("/kb"))
    assert "置顶" in page and "最近更新" in page
    assert "Nothing pinned yet" not in page


# ---- the API the panel and the portal read ----------------------------------------------------


async def test_live_answers_through_the_api(admin: Client, knowledge: dict[str, int]) -> None:
    live = (await admin.get(f"/api/kb/live/{knowledge['report_item']}")).json()
    assert live["question"] == "检查报告什么时候能取"
    assert live["category_path"] == "就诊 / 检查报告"
    assert live["variants"] == ["化验单多久出结果"] and live["tags"] == ["报告"]
    assert live["public"] is True and live["recent"] is True and live["published_at"]
    assert_error(await admin.get(f"/api/kb/live/{knowledge['draft_item']}"), 404, "not_found")

    recent = (await admin.get("/api/kb/recent")).json()
    assert {r["item_id"] for r in recent} == {knowledge["report_item"], knowledge["parking_item"]}
    assert (await admin.get("/api/kb/favourites")).json() == []
    await admin.put(f"/api/kb/items/{knowledge['report_item']}/favourite")
    assert [f["item_id"] for f in (await admin.get("/api/kb/favourites")).json()] == [knowledge["report_item"]]


async def test_the_public_item_api_hides_internal_and_drafts(anon: Client, knowledge: dict[str, int]) -> None:
    public = await anon.get(f"/api/public/kb/items/{knowledge['report_item']}")
    assert public.status_code == 200 and public.json()["question"] == "检查报告什么时候能取"
    assert_error(await anon.get(f"/api/public/kb/items/{knowledge['parking_item']}"), 404)
    assert_error(await anon.get(f"/api/public/kb/items/{knowledge['draft_item']}"), 404)
    assert_error(await anon.get("/api/kb/live/1"), 401)


async def test_answers_valid_on_another_day_are_found_for_that_day(admin: Client) -> None:
    leaf = await category(admin, "holidays", "节假日安排")
    start = clock.today("Asia/Shanghai") + timedelta(days=40)
    await create_item(
        admin, leaf, "春节期间门诊怎么安排", answer_html="<p>初一至初三停诊。</p>", valid_from=start.isoformat()
    )
    today = await admin.get("/kb/panel/results", params={"q": "春节期间门诊怎么安排"})
    assert "data-hit=" not in today.text  # not valid yet
    then = await admin.get("/kb/panel/results", params={"q": "春节期间门诊怎么安排", "on": start.isoformat()})
    assert then.status_code == 200 and "data-hit=" in then.text and "春节期间门诊怎么安排" in then.text
    assert (await admin.get("/kb/panel/results", params={"q": "春节", "on": ""})).status_code == 200
