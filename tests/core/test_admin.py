"""Admin pages and API: users, tokens, audit, jobs, the working-day calendar."""

from __future__ import annotations

from typing import Any

from helpers import Client, assert_error

ADMIN_PAGES = [
    "/",
    "/admin/users",
    "/admin/users/new",
    "/admin/tokens",
    "/admin/audit",
    "/admin/jobs",
    "/admin/calendar",
    "/admin/calendar?year=2027",
]


async def test_admin_pages_render(admin: Client) -> None:
    for path in ADMIN_PAGES:
        response = await admin.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert "text/html" in response.headers["content-type"]
    me = (await admin.get("/api/auth/me")).json()
    assert (await admin.get(f"/admin/users/{me['id']}")).status_code == 200


async def test_agents_see_no_admin_pages_and_no_admin_menu(as_user: Any) -> None:
    async with as_user("agent5", ["agent"]) as agent:
        home = await agent.get("/")
        assert home.status_code == 200 and 'href="/admin/users"' not in home.text
        assert 'href="/directory/departments"' in home.text
        for path in ADMIN_PAGES[1:]:
            assert (await agent.get(path)).status_code == 403, path


async def test_audit_search_filters(admin: Client) -> None:
    await admin.post("/api/directory/skills", json={"code": "INS", "name": "医保"})
    entries = (await admin.get("/api/audit", params={"action": "directory."})).json()
    assert [e["action"] for e in entries] == ["directory.skill.create"]
    assert entries[0]["actor_name"] == "root" and entries[0]["after"]["code"] == "INS"
    assert (await admin.get("/api/audit", params={"q": "INS"})).json()[0]["id"] == entries[0]["id"]
    assert (await admin.get("/api/audit", params={"user": "nobody"})).json() == []
    page = await admin.get("/admin/audit", params={"action": "directory."}, headers={"HX-Request": "true"})
    assert "directory.skill.create" in page.text and "<html" not in page.text


async def test_calendar_overrides_drive_deadlines_and_are_audited(admin: Client) -> None:
    assert (await admin.get("/api/calendar/overrides", params={"year": 2027})).json() == []
    response = await admin.put("/api/calendar/overrides/2027-02-08", json={"is_working_day": False, "note": "春节"})
    assert response.status_code == 200, response.text
    assert response.json() == {"day": "2027-02-08", "is_working_day": False, "note": "春节"}
    page = await admin.get("/admin/calendar", params={"year": 2027})
    assert "春节" in page.text
    changed = await admin.put("/api/calendar/overrides/2027-02-08", json={"is_working_day": True, "note": "调休"})
    assert changed.json()["is_working_day"] is True
    log = (await admin.get("/api/audit", params={"target_type": "calendar_day"})).json()
    assert [e["action"] for e in log] == ["calendar.override.set", "calendar.override.set"]
    assert log[0]["before"]["is_working_day"] is False
    assert (await admin.delete("/api/calendar/overrides/2027-02-08")).status_code == 204
    assert_error(await admin.delete("/api/calendar/overrides/2027-02-08"), 404)
    assert_error(await admin.put("/api/calendar/overrides/2027-02-30", json={"is_working_day": True}), 422)
    assert_error(await admin.put("/api/calendar/overrides/2027-03-01", json={"is_working_day": "maybe"}), 422)


async def test_only_calendar_managers_change_overrides(as_user: Any) -> None:
    async with as_user("agent6", ["agent"]) as agent:
        assert_error(
            await agent.put("/api/calendar/overrides/2027-02-08", json={"is_working_day": False, "note": "春节"}), 403
        )
    async with as_user("super", ["supervisor"]) as supervisor:
        ok = await supervisor.put("/api/calendar/overrides/2027-02-08", json={"is_working_day": False, "note": "春节"})
        assert ok.status_code == 200


async def test_user_scope_must_point_at_existing_records(admin: Client) -> None:
    response = await admin.post(
        "/api/users",
        json={
            "username": "scoped",
            "display_name": "Scoped",
            "password": "Initial-Pass-1",
            "roles": ["handler"],
            "department_ids": [4242],
        },
    )
    assert_error(response, 422, "unknown_reference")
    assert [u["username"] for u in (await admin.get("/api/users")).json()] == ["root"]


async def test_language_switch_sets_a_cookie_and_translates_pages(admin: Client) -> None:
    switched = await admin.get("/lang/en", params={"next": "/admin/users"})
    assert switched.status_code == 303 and switched.headers["location"] == "/admin/users"
    english = await admin.get("/admin/users")
    assert "Users" in english.text
    await admin.get("/lang/zh_CN")
    chinese = await admin.get("/admin/users")
    assert "用户" in chinese.text
    assert (await admin.get("/lang/en", params={"next": "//evil.example"})).headers["location"] == "/"
