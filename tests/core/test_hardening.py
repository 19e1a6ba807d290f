"""Attacks and abuse the foundation must withstand."""

from __future__ import annotations

import asyncio
from typing import Any

from helpers import PASSWORD, Client, assert_error


async def test_a_token_cannot_mint_tokens(admin: Client, anon: Client) -> None:
    created = await admin.post("/api/tokens", json={"name": "ops", "scopes": ["tokens:manage"]})
    bearer = {"Authorization": f"Bearer {created.json()['secret']}"}
    minted = await anon.post("/api/tokens", json={"name": "x", "scopes": ["users:manage"]}, headers=bearer)
    assert_error(minted, 403, "token_by_token")


async def test_nobody_grants_a_token_more_than_they_have(as_user: Any, admin: Client) -> None:
    await admin.post(
        "/api/users", json={"username": "svc", "display_name": "HIS", "password": "Initial-Pass-1", "roles": ["admin"]}
    )
    async with as_user("super2", ["supervisor"]) as supervisor:
        assert_error(await supervisor.post("/api/tokens", json={"name": "x", "scopes": ["audit:read"]}), 403)


async def test_parallel_wrong_passwords_still_lock_the_account(anon: Client, make_user: Any) -> None:
    await make_user("target", ["agent"])
    await asyncio.gather(
        *(anon.post("/api/auth/login", json={"username": "target", "password": f"wrong-{i}"}) for i in range(8))
    )
    assert_error(await anon.login("target", PASSWORD), 429, "locked_out")


async def test_a_site_that_scopes_a_user_cannot_be_deleted(admin: Client) -> None:
    site = (await admin.post("/api/directory/sites", json={"code": "S9", "name": "分院"})).json()
    user = await admin.post(
        "/api/users",
        json={
            "username": "scoped",
            "display_name": "Scoped",
            "password": "Initial-Pass-1",
            "roles": ["agent"],
            "site_ids": [site["id"]],
        },
    )
    assert user.status_code == 201
    assert_error(await admin.delete(f"/api/directory/sites/{site['id']}"), 409, "in_use")
    assert (await admin.get(f"/api/users/{user.json()['id']}")).json()["site_ids"] == [site["id"]]


async def test_user_fields_cannot_be_emptied_or_edited_concurrently(admin: Client) -> None:
    user = (
        await admin.post(
            "/api/users",
            json={"username": "nina", "display_name": "Nina", "password": "Initial-Pass-1", "roles": ["agent"]},
        )
    ).json()
    for field in ("roles", "display_name", "is_active", "site_ids"):
        assert_error(await admin.patch(f"/api/users/{user['id']}", json={"version": user["version"], field: None}), 422)
    first = await admin.patch(f"/api/users/{user['id']}", json={"version": user["version"], "display_name": "A"})
    assert first.status_code == 200
    second = await admin.patch(f"/api/users/{user['id']}", json={"version": user["version"], "display_name": "B"})
    assert_error(second, 409, "stale_version")


async def test_a_login_does_not_make_an_open_edit_form_stale(admin: Client, anon: Client) -> None:
    user = (
        await admin.post(
            "/api/users",
            json={"username": "omar", "display_name": "Omar", "password": "Initial-Pass-1", "roles": ["agent"]},
        )
    ).json()
    await anon.login("omar", "Initial-Pass-1")
    await anon.login("omar", "wrong-password-9")
    edited = await admin.patch(f"/api/users/{user['id']}", json={"version": user["version"], "display_name": "O"})
    assert edited.status_code == 200, edited.text


async def test_times_without_a_zone_and_past_expiry_are_refused(admin: Client) -> None:
    assert_error(await admin.get("/api/audit", params={"since": "2026-01-01T00:00:00"}), 422)
    assert (await admin.get("/api/audit", params={"since": "2026-01-01T00:00:00+08:00"})).status_code == 200
    expired = await admin.post(
        "/api/tokens", json={"name": "x", "scopes": ["directory:read"], "expires_at": "2020-01-01T00:00:00+08:00"}
    )
    assert_error(expired, 422)


async def test_control_characters_are_refused(admin: Client) -> None:
    assert_error(await admin.post("/api/directory/skills", json={"code": "NUL", "name": "a\u0000b"}), 422)
    assert (await admin.get("/api/directory/skills")).json() == []


async def test_exported_cells_cannot_run_as_spreadsheet_formulas(admin: Client) -> None:
    await admin.post("/api/directory/sites", json={"code": "S1", "name": "=HYPERLINK(1)", "phone": "13800138000"})
    exported = (await admin.get("/api/directory/sites/export.csv")).content.decode("utf-8-sig")
    assert "'=HYPERLINK(1)" in exported and "'+8613800138000" in exported
    report = await admin.post(
        "/api/directory/sites/import",
        params={"dry_run": "false"},
        files={"file": ("sites.csv", exported.encode(), "text/csv")},
    )
    assert report.json()["errors"] == []
    site = (await admin.get("/api/directory/sites")).json()[0]
    assert site["name"] == "=HYPERLINK(1)" and site["phone"] == "+8613800138000"


async def test_broken_csv_is_a_clear_error(admin: Client) -> None:
    huge = b'code,name\nA,"' + b"x" * 200_000 + b'"\n'
    response = await admin.post("/api/directory/skills/import", files={"file": ("x.csv", huge, "text/csv")})
    assert_error(response, 422, "bad_csv")
