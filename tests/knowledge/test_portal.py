"""The public patient FAQ (/faq): anonymous, cookie-free, public published answers only, Chinese by
default with an English link, a missed search collected as a candidate."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from kb_pages_base import category, create_item
from kb_pages_base import html as page_html

from helpers import Client
from patientline.core import clock
from patientline.knowledge import portal_pages


@pytest.fixture(autouse=True)
def fresh_miss_budget() -> None:
    portal_pages.MISSES.spent.clear()


def html(response: Any, status: int = 200) -> str:
    assert "set-cookie" not in response.headers, response.headers["set-cookie"]
    return page_html(response, status)


@pytest.fixture
async def faq(admin: Client) -> dict[str, int]:
    visits = await category(admin, "visits", "就诊服务")
    reports = await category(admin, "reports", "检查报告", visits)
    staff = await category(admin, "staff", "内部流程")
    today = clock.today("Asia/Shanghai")
    return {
        "visits": visits,
        "reports": reports,
        "staff": staff,
        "public": await create_item(
            admin,
            reports,
            "检查报告什么时候能取",
            answer_html="<p>血常规报告<strong>两小时</strong>后可在自助机打印。</p>",
            variants=["化验单多久出结果"],
        ),
        "seasonal": await create_item(
            admin,
            reports,
            "流感疫苗什么时候可以接种",
            answer_html="<p>每年十月起在预防保健科接种。</p>",
            valid_to=(today + timedelta(days=30)).isoformat(),
        ),
        "internal": await create_item(admin, staff, "夜班交接流程是什么", answer_html="<p>内部</p>", public=False),
        "draft": await create_item(admin, reports, "核磁共振报告多久出", answer_html="<p>草稿</p>", publish=False),
    }


async def test_the_portal_works_without_a_login(anon: Client, faq: dict[str, int]) -> None:
    page = html(await anon.get("/faq"))
    assert '<html lang="zh-CN">' in page
    assert 'id="faq-q"' in page and 'action="/faq" method="get"' in page
    assert "急症请拨打 120 或前往急诊科" in page
    assert 'href="tel:8585"' in page
    assert 'href="/faq/timetable"' in page
    assert "就诊服务" in page and "检查报告" in page  # domain and area
    assert "内部流程" not in page  # a category with nothing public is not offered
    assert "sidenav" not in page and "/static/app.js" not in page and "<script" not in page
    assert "http://" not in page and "https://" not in page  # nothing loaded from elsewhere


async def test_search_results_without_javascript(anon: Client, faq: dict[str, int]) -> None:
    page = html(await anon.get("/faq", params={"q": "化验单多久出结果"}))
    assert f'data-hit="{faq["public"]}"' in page
    assert f'href="/faq/items/{faq["public"]}"' in page
    assert "<mark>" in page  # the matched variant, highlighted
    assert 'value="化验单多久出结果"' in page


async def test_search_never_shows_internal_or_draft_answers(anon: Client, faq: dict[str, int]) -> None:
    for question in ("夜班交接流程是什么", "核磁共振报告多久出"):
        page = html(await anon.get("/faq", params={"q": question}))
        assert f'data-hit="{faq["internal"]}"' not in page and f"/faq/items/{faq['internal']}" not in page
        assert f'data-hit="{faq["draft"]}"' not in page


async def test_no_good_match_suggests_the_hotline_and_is_collected(
    anon: Client, admin: Client, faq: dict[str, int]
) -> None:
    page = html(await anon.get("/faq", params={"q": "医院食堂几点开门"}))
    assert 'data-state="no-good-match"' in page
    assert "8585" in page.split('data-state="no-good-match"', 1)[1].split("</div>", 1)[0]
    candidates = (await admin.get("/api/kb/candidates", params={"source": "portal"})).json()
    assert [c["text"] for c in candidates] == ["医院食堂几点开门"]
    assert candidates[0]["source"] == "portal"


async def test_one_address_adds_only_a_few_misses_an_hour(anon: Client, admin: Client, faq: dict[str, int]) -> None:
    for _ in range(portal_pages.MISSES.limit + 5):
        html(await anon.get("/faq", params={"q": "医院食堂几点开门"}))
    candidates = (await admin.get("/api/kb/candidates", params={"source": "portal"})).json()
    assert [c["count"] for c in candidates] == [portal_pages.MISSES.limit]
    clock.set_now(clock.now() + timedelta(hours=1, minutes=1))
    assert portal_pages.MISSES.allow("10.1.2.3")


async def test_a_good_match_is_not_collected(anon: Client, admin: Client, faq: dict[str, int]) -> None:
    html(await anon.get("/faq", params={"q": "检查报告什么时候能取"}))
    assert (await admin.get("/api/kb/candidates", params={"source": "portal"})).json() == []


async def test_the_item_page_shows_the_live_answer(anon: Client, faq: dict[str, int]) -> None:
    page = html(await anon.get(f"/faq/items/{faq['public']}"))
    assert "<h1>检查报告什么时候能取</h1>" in page
    assert "<strong>两小时</strong>" in page
    assert f'href="/faq/categories/{faq["reports"]}"' in page  # breadcrumbs
    assert "流感疫苗什么时候可以接种" in page  # related, same area
    assert "data-validity" not in page


async def test_a_seasonal_answer_says_until_when(anon: Client, faq: dict[str, int]) -> None:
    page = html(await anon.get(f"/faq/items/{faq['seasonal']}"))
    until = (clock.today("Asia/Shanghai") + timedelta(days=30)).isoformat()
    assert "data-validity" in page and until in page
    clock.set_now(clock.now() + timedelta(days=40))
    html(await anon.get(f"/faq/items/{faq['seasonal']}"), 404)  # expired: gone from the public


async def test_internal_and_draft_pages_are_not_found(anon: Client, faq: dict[str, int]) -> None:
    for item_id in (faq["internal"], faq["draft"], 999_999):
        page = html(await anon.get(f"/faq/items/{item_id}"), 404)
        assert 'id="faq-q"' in page and "8585" in page  # the portal's own page, with a way on
        assert "夜班交接" not in page
    html(await anon.get(f"/faq/categories/{faq['staff']}"), 404)


async def test_browsing_goes_from_domain_to_area_to_questions(anon: Client, faq: dict[str, int]) -> None:
    domain = html(await anon.get(f"/faq/categories/{faq['visits']}"))
    assert f'href="/faq/categories/{faq["reports"]}"' in domain
    area = html(await anon.get(f"/faq/categories/{faq['reports']}"))
    assert f'href="/faq/items/{faq["public"]}"' in area and f'href="/faq/items/{faq["seasonal"]}"' in area
    assert "核磁共振报告多久出" not in area


async def test_english_is_a_link_not_a_cookie(anon: Client, faq: dict[str, int]) -> None:
    chinese = html(await anon.get("/faq", params={"q": "检查报告"}))
    assert 'href="/faq?q=%E6%A3%80%E6%9F%A5%E6%8A%A5%E5%91%8A&amp;lang=en"' in chinese
    page = html(await anon.get("/faq", params={"q": "检查报告", "lang": "en"}))
    assert '<html lang="en">' in page
    assert "For emergencies call 120 or go to the emergency department." in page
    assert f'href="/faq/items/{faq["public"]}?lang=en"' in page  # links keep the language
    assert '<input type="hidden" name="lang" value="en">' in page
    assert 'href="/faq?q=%E6%A3%80%E6%9F%A5%E6%8A%A5%E5%91%8A"' in page  # back to Chinese
    # a staff member's language cookie does not change the public page
    anon.http.cookies.set("pl_lang", "en")
    assert '<html lang="zh-CN">' in html(await anon.get("/faq"))


async def test_no_portal_response_sets_a_cookie(anon: Client, faq: dict[str, int]) -> None:
    for path in ("/faq", "/faq?q=医院食堂几点开门", f"/faq/items/{faq['public']}", f"/faq/items/{faq['draft']}",
                 f"/faq/categories/{faq['visits']}", "/faq/timetable", "/faq?lang=en"):  # fmt: skip
        response = await anon.get(path)
        assert "set-cookie" not in response.headers, path


async def test_the_public_timetable(anon: Client, admin: Client, faq: dict[str, int]) -> None:
    empty = html(await anon.get("/faq/timetable"))
    assert "这几天暂无门诊安排" in empty

    site = (await admin.post("/api/directory/sites", json={"code": "EAST", "name": "东院"})).json()
    body = {"code": "XNK", "name": "心内科", "site_id": site["id"]}
    department = (await admin.post("/api/directory/departments", json=body)).json()
    body = {
        "code": "D001",
        "name": "张伟",
        "title": "主任医师",
        "site_id": site["id"],
        "department_id": department["id"],
    }
    doctor = (await admin.post("/api/kb/doctors", json=body)).json()
    sessions = [{"weekday": day, "half_day": "am", "kind": "专家门诊", "room": "2楼"} for day in range(1, 8)]
    response = await admin.put(
        f"/api/kb/doctors/{doctor['id']}/sessions", json={"version": doctor["version"], "sessions": sessions}
    )
    assert response.status_code == 200, response.text

    page = html(await anon.get("/faq/timetable"))
    assert "心内科" in page and "张伟" in page and "专家门诊" in page and "2楼" in page
    assert page.count('class="faq-slot status-in"') == 7
    later = html(await anon.get("/faq/timetable", params={"start": "2999-01-01", "department_id": department["id"]}))
    assert "张伟" in later  # clamped to a few weeks ahead
