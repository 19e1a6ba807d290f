"""The directory's HTML pages: lists with search (whole page and htmx fragment), forms, import."""

from __future__ import annotations

import re
from typing import Any

import pytest

from helpers import Client, assert_error

KINDS = ("sites", "departments", "teams", "skills", "staff")
HX = {"HX-Request": "true"}


def html(response: Any, status: int = 200) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    text: str = response.text
    return text


def is_whole_page(text: str) -> bool:
    return "<html" in text.lower()


@pytest.fixture
async def hospital(admin: Client) -> dict[str, Any]:
    admin.http.cookies.set("pl_lang", "en")

    async def create(kind: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await admin.post(f"/api/directory/{kind}", json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    east = await create("sites", {"code": "EAST", "name": "东院"})
    west = await create("sites", {"code": "WEST", "name": "西院"})
    nei = await create("departments", {"code": "NEI", "name": "内科", "site_id": east["id"]})
    xnk = await create(
        "departments",
        {"code": "XNK", "name": "心内科", "site_id": east["id"], "parent_id": nei["id"], "phone": "010-67098585"},
    )
    wai = await create("departments", {"code": "WAI", "name": "外科", "site_id": west["id"]})
    return {"east": east, "west": west, "nei": nei, "xnk": xnk, "wai": wai}


# ---- lists -------------------------------------------------------------------------------------


async def test_the_department_list_shows_the_tree(admin: Client, hospital: dict[str, Any]) -> None:
    page = html(await admin.get("/directory/departments"))
    assert is_whole_page(page) and '<form class="filters"' in page
    assert page.index("内科") < page.index("心内科") < page.index("外科")  # children follow their parent
    xnk_row = page[page.index(f'/directory/departments/{hospital["xnk"]["id"]}"') :]
    xnk_row = xnk_row[: xnk_row.index("</tr>")]
    assert "--depth: 1" in xnk_row and "东院" in xnk_row and "010 6709 8585" in xnk_row
    assert 'href="/directory/departments/new"' in page and 'href="/directory/departments/import"' in page
    assert "3 records" in page


async def test_htmx_search_answers_only_the_rows(admin: Client, hospital: dict[str, Any]) -> None:
    fragment = html(await admin.get("/directory/departments", params={"q": "心内"}, headers=HX))
    assert not is_whole_page(fragment) and "<form" not in fragment
    assert "<table" in fragment and "心内科" in fragment and "外科" not in fragment
    assert "1 record" in fragment
    by_code = html(await admin.get("/directory/departments", params={"q": "wai"}, headers=HX))
    assert "外科" in by_code and "心内科" not in by_code
    by_site = html(await admin.get("/directory/departments", params={"site_id": hospital["west"]["id"]}, headers=HX))
    assert "外科" in by_site and "内科" not in by_site
    # the whole page with a search keeps the search in the box
    page = html(await admin.get("/directory/departments", params={"q": "心内"}))
    assert is_whole_page(page) and 'value="心内"' in page and "外科" not in page.split('id="rows"')[1]


async def test_the_filter_form_as_the_browser_sends_it(admin: Client, hospital: dict[str, Any]) -> None:
    """htmx sends every field of the filter form; "All" is an empty value."""
    everything = html(await admin.get("/directory/departments?q=&site_id=&active=", headers=HX))
    assert "内科" in everything and "外科" in everything
    searched = html(await admin.get("/directory/departments?q=%E5%BF%83&site_id=&active=yes", headers=HX))
    assert "心内科" in searched and "外科" not in searched
    west = html(await admin.get(f"/directory/departments?q=&site_id={hospital['west']['id']}&active=", headers=HX))
    assert "外科" in west and "内科" not in west
    page = html(await admin.get(f"/directory/departments?site_id={hospital['west']['id']}"))
    assert f'<option value="{hospital["west"]["id"]}" selected>' in page


async def test_out_of_range_ids_are_bad_requests_not_crashes(admin: Client, hospital: dict[str, Any]) -> None:
    for url in (
        f"/directory/departments?site_id={10**20}",
        f"/directory/departments/{10**20}",
        f"/directory/departments/{2**31}",
        "/directory/departments?site_id=abc",
    ):
        assert "invalid_input" in html(await admin.get(url), 422)
    assert "not_found" in html(await admin.get("/directory/departments/abc"), 404)


async def test_empty_states(as_user: Any, admin: Client, hospital: dict[str, Any]) -> None:
    nothing = html(await admin.get("/directory/departments", params={"q": "眼科"}, headers=HX))
    assert "Nothing matches “眼科”." in nothing and "<table" not in nothing
    skills = html(await admin.get("/directory/skills"))
    assert "No records yet." in skills and "Create the first one" in skills
    wai = hospital["wai"]
    await admin.patch(f"/api/directory/departments/{wai['id']}", json={"version": 1, "is_active": False})
    inactive = html(await admin.get("/directory/departments", params={"active": "no"}, headers=HX))
    assert "外科" in inactive and "内科" not in inactive
    async with as_user("agent1", ["agent"]) as agent:
        agent.http.cookies.set("pl_lang", "en")
        skills = html(await agent.get("/directory/skills"))
        assert "No records yet." in skills and "Create the first one" not in skills


async def test_search_text_is_escaped(admin: Client, hospital: dict[str, Any]) -> None:
    fragment = html(await admin.get("/directory/departments", params={"q": "<script>x</script>"}, headers=HX))
    assert "<script>x" not in fragment and "&lt;script&gt;" in fragment


@pytest.mark.parametrize("kind", KINDS)
async def test_every_kind_has_a_list_page_and_a_form(kind: str, admin: Client, hospital: dict[str, Any]) -> None:
    assert is_whole_page(html(await admin.get(f"/directory/{kind}")))
    form = html(await admin.get(f"/directory/{kind}/new"))
    assert 'name="code"' in form and 'name="name"' in form
    assert f'data-action="/api/directory/{kind}"' in form and 'data-method="POST"' in form
    assert is_whole_page(html(await admin.get(f"/directory/{kind}/import")))


async def test_agents_read_lists_and_records_but_get_no_forms(as_user: Any, hospital: dict[str, Any]) -> None:
    async with as_user("agent2", ["agent"]) as agent:
        page = html(await agent.get("/directory/departments"))
        assert "心内科" in page and 'href="/directory/departments/new"' not in page
        for url in ("/directory/departments/new", "/directory/departments/import"):
            denied = html(await agent.get(url), 403)
            assert is_whole_page(denied) and "permission_denied" in denied
        record = html(await agent.get(f"/directory/departments/{hospital['nei']['id']}"))  # read-only
        assert '<fieldset class="plain" disabled>' in record and 'class="primary" title="Ctrl+Enter"' not in record
        assert "data-delete" not in record
        # htmx asks get the JSON error shape
        assert_error(await agent.get("/directory/departments/new", headers=HX), 403, "permission_denied")


# ---- forms -------------------------------------------------------------------------------------


async def test_the_new_department_form_offers_sites_and_parents(admin: Client, hospital: dict[str, Any]) -> None:
    form = html(await admin.get("/directory/departments/new"))
    site_select = form[form.index('id="f-site_id"') :]
    site_select = site_select[: site_select.index("</select>")]
    assert f'value="{hospital["east"]["id"]}"' in site_select and "东院" in site_select
    parent_select = form[form.index('id="f-parent_id"') :]
    parent_select = parent_select[: parent_select.index("</select>")]
    assert "心内科" in parent_select and "外科" in parent_select


async def test_the_edit_form_shows_values_and_history(admin: Client, hospital: dict[str, Any]) -> None:
    xnk = hospital["xnk"]
    await admin.patch(f"/api/directory/departments/{xnk['id']}", json={"version": 1, "location": "门诊楼2层"})
    form = html(await admin.get(f"/directory/departments/{xnk['id']}"))
    assert 'data-method="PATCH"' in form and f'data-action="/api/directory/departments/{xnk["id"]}"' in form
    assert 'name="version" value="2"' in form and 'value="XNK"' in form and 'value="门诊楼2层"' in form
    history = form[form.index('class="card history"') :]
    assert "root" in history and "<del></del> → <ins>门诊楼2层</ins>" in history
    assert re.search(r"<code>update</code>.*<code>create</code>", history, re.S)


async def test_unknown_pages_and_records_are_404_pages(admin: Client, hospital: dict[str, Any]) -> None:
    for url in (
        "/directory/nonsense",
        "/directory/nonsense/new",
        "/directory/nonsense/import",
        "/directory/departments/987654",
    ):
        page = html(await admin.get(url), 404)
        assert is_whole_page(page) and "not_found" in page
    assert_error(await admin.get("/directory/nonsense", headers=HX), 404, "not_found")


async def test_logged_out_browsers_are_sent_to_the_login_page(anon: Client) -> None:
    for url in ("/directory/departments", "/directory/staff/new"):
        response = await anon.get(url)
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next={url}"
    assert_error(await anon.get("/directory/departments", headers=HX), 401, "not_authenticated")


# ---- import ------------------------------------------------------------------------------------


async def submit_import(client: Client, kind: str, data: str | bytes, *, dry_run: bool, csrf: str | None) -> Any:
    form = {} if csrf is None else {"csrf_token": csrf}
    if dry_run:
        form["dry_run"] = "true"
    raw = data.encode() if isinstance(data, str) else data
    return await client.post(
        f"/directory/{kind}/import", data=form, headers=HX, files={"file": (f"{kind}.csv", raw, "text/csv")}
    )


async def test_the_import_form_carries_the_csrf_token(admin: Client, hospital: dict[str, Any]) -> None:
    page = html(await admin.get("/directory/departments/import"))
    assert f'name="csrf_token" value="{admin.csrf}"' in page
    assert "code,name,site_code,parent_code,kind,location,phone,hours,description,is_active" in page


async def test_import_through_the_page_reports_then_writes(admin: Client, hospital: dict[str, Any]) -> None:
    del admin.http.headers["X-CSRF-Token"]  # the page sends the token as a form field
    data = "code,name,site_code,parent_code\nERK,儿科,WEST,WAI\nxnk,心血管内科,,\n"

    checked = html(await submit_import(admin, "departments", data, dry_run=True, csrf=admin.csrf))
    assert not is_whole_page(checked)
    assert "Check passed" in checked and "2 rows: 1 new, 1 updated, 0 problems." in checked
    assert [d["code"] for d in (await admin.get("/api/directory/departments")).json()] == ["NEI", "WAI", "XNK"]

    done = html(await submit_import(admin, "departments", data, dry_run=False, csrf=admin.csrf))
    assert "Imported" in done and "2 rows: 1 new, 1 updated, 0 problems." in done
    departments = {d["code"]: d for d in (await admin.get("/api/directory/departments")).json()}
    assert departments["ERK"]["parent_id"] == hospital["wai"]["id"] and departments["xnk"]["name"] == "心血管内科"


async def test_import_problems_are_listed_by_line(admin: Client, hospital: dict[str, Any]) -> None:
    del admin.http.headers["X-CSRF-Token"]
    data = "code,name,site_code,phone\nERK,儿科,WEST,\nGK,骨科,NOWHERE,\nYK,眼科,EAST,123\n"
    report = html(await submit_import(admin, "departments", data, dry_run=False, csrf=admin.csrf))
    assert "Nothing was written" in report and "3 rows: 1 new, 0 updated, 2 problems." in report
    cells = [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr><td>.*?</tr>", report)]
    assert [c[:3] for c in cells] == [["3", "GK", "site_code"], ["4", "YK", "phone"]]
    assert "ERK" not in [d["code"] for d in (await admin.get("/api/directory/departments")).json()]

    bad_header = html(await submit_import(admin, "departments", "code,colour\nA,red\n", dry_run=True, csrf=admin.csrf))
    assert 'class="alert alert-error"' in bad_header and "colour" in bad_header


async def test_import_without_the_csrf_token_is_refused(admin: Client, hospital: dict[str, Any]) -> None:
    del admin.http.headers["X-CSRF-Token"]
    data = "code,name,site_code\nERK,儿科,WEST\n"
    assert_error(await submit_import(admin, "departments", data, dry_run=False, csrf=None), 403, "csrf_failed")
    assert_error(await submit_import(admin, "departments", data, dry_run=False, csrf="forged"), 403, "csrf_failed")
    assert "ERK" not in [d["code"] for d in (await admin.get("/api/directory/departments")).json()]


async def test_agents_cannot_import_through_the_page(as_user: Any, admin: Client, hospital: dict[str, Any]) -> None:
    async with as_user("agent3", ["agent"]) as agent:
        response = await submit_import(
            agent, "departments", "code,name,site_code\nERK,儿科,WEST\n", dry_run=False, csrf=agent.csrf
        )
        assert_error(response, 403, "permission_denied")
    assert "ERK" not in [d["code"] for d in (await admin.get("/api/directory/departments")).json()]
