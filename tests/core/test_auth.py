from __future__ import annotations

from datetime import timedelta
from typing import Any

from helpers import PASSWORD, Client, assert_error
from patientline.core import clock, events


async def test_login_me_logout(admin: Client) -> None:
    me = (await admin.get("/api/auth/me")).json()
    assert me["username"] == "root" and "users:manage" in me["permissions"]
    assert (await admin.post("/api/auth/logout")).status_code == 204
    assert_error(await admin.get("/api/auth/me"), 401, "not_authenticated")


async def test_wrong_password_does_not_reveal_whether_the_user_exists(anon: Client, make_user: Any) -> None:
    await make_user("nurse", ["agent"])
    wrong = assert_error(await anon.login("nurse", "nope"), 401, "bad_credentials")
    missing = assert_error(await anon.login("ghost", "nope"), 401, "bad_credentials")
    assert wrong["message"] == missing["message"]


async def test_lockout_after_five_failures_for_fifteen_minutes(
    anon: Client, make_user: Any, admin: Client, db: Any
) -> None:
    await make_user("agent1", ["agent"])
    for _ in range(5):
        assert_error(await anon.login("agent1", "wrong-password-1"), 401)
    assert_error(await anon.login("agent1", PASSWORD), 429, "locked_out")
    log = (await admin.get("/api/audit", params={"action": "auth.locked_out"})).json()
    assert len(log) == 1 and log[0]["ip"] == "10.1.2.3"
    async with db.sessions() as session:
        notices = [e for e in await events.replay(session, after_id=0) if e.type == "auth.locked_out"]
    assert [n.payload["username"] for n in notices] == ["agent1"]
    assert notices[0].audience.permission == "users:manage"
    clock.advance(timedelta(minutes=16))
    assert (await anon.login("agent1", PASSWORD)).status_code == 200


async def test_first_login_forces_a_new_password(anon: Client, make_user: Any) -> None:
    await make_user("newbie", ["agent"], must_change_password=True)
    me = (await anon.login("newbie")).json()
    assert me["must_change_password"] is True
    assert_error(await anon.get("/api/directory/departments"), 403, "password_change_required")
    weak = await anon.post("/api/auth/password", json={"current_password": PASSWORD, "new_password": "short"})
    assert_error(weak, 422, "weak_password")
    same = await anon.post("/api/auth/password", json={"current_password": PASSWORD, "new_password": PASSWORD})
    assert_error(same, 422, "same_password")
    ok = await anon.post("/api/auth/password", json={"current_password": PASSWORD, "new_password": "Fresh-Start-77"})
    assert ok.status_code == 204
    assert (await anon.get("/api/directory/departments")).status_code == 200


async def test_sessions_expire_after_idle_and_absolute_timeouts(anon: Client, make_user: Any) -> None:
    await make_user("agent2", ["agent"])
    await anon.login("agent2")
    clock.advance(timedelta(minutes=29))
    assert (await anon.get("/api/auth/me")).status_code == 200
    clock.advance(timedelta(minutes=29))
    assert (await anon.get("/api/auth/me")).status_code == 200  # activity moved the idle deadline
    clock.advance(timedelta(minutes=31))
    assert_error(await anon.get("/api/auth/me"), 401)
    await anon.login("agent2")
    for _ in range(25):  # active all day: the absolute limit still ends the session after 12 hours
        clock.advance(timedelta(minutes=29))
        response = await anon.get("/api/auth/me")
    assert_error(response, 401)


async def test_state_changes_need_the_csrf_token(admin: Client) -> None:
    del admin.http.headers["X-CSRF-Token"]
    response = await admin.post("/api/directory/skills", json={"code": "X", "name": "X"})
    assert_error(response, 403, "csrf_failed")
    response = await admin.post(
        "/api/directory/skills", json={"code": "X", "name": "X"}, headers={"X-CSRF-Token": "forged"}
    )
    assert_error(response, 403, "csrf_failed")
    assert (await admin.get("/api/directory/skills")).json() == []


async def test_roles_limit_what_a_user_may_do(as_user: Any) -> None:
    async with as_user("agent3", ["agent"]) as agent:
        assert (await agent.get("/api/directory/departments")).status_code == 200
        assert_error(
            await agent.post("/api/directory/skills", json={"code": "X", "name": "X"}), 403, "permission_denied"
        )
        assert_error(await agent.get("/api/users"), 403)
        assert_error(await agent.get("/api/audit"), 403)


async def test_admin_creates_disables_and_resets_users(admin: Client, anon: Client) -> None:
    created = await admin.post(
        "/api/users",
        json={
            "username": "Handler-XNK",
            "display_name": "心内科联络员",
            "password": "Initial-Pass-1",
            "roles": ["handler"],
        },
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["username"] == "handler-xnk" and user["must_change_password"] is True
    assert_error(
        await admin.post(
            "/api/users",
            json={"username": "handler-xnk", "display_name": "x", "password": "Initial-Pass-1", "roles": ["agent"]},
        ),
        409,
        "duplicate_username",
    )
    assert (await anon.login("handler-xnk", "Initial-Pass-1")).status_code == 200

    disabled = await admin.patch(f"/api/users/{user['id']}", json={"version": user["version"], "is_active": False})
    assert disabled.status_code == 200 and disabled.json()["is_active"] is False
    assert_error(await anon.get("/api/auth/me"), 401)  # the session ended with the account
    assert_error(await anon.login("handler-xnk", "Initial-Pass-1"), 401)
    stale = await admin.patch(f"/api/users/{user['id']}", json={"version": user["version"], "is_active": True})
    assert_error(stale, 409, "stale_version")

    current = disabled.json()
    await admin.patch(f"/api/users/{user['id']}", json={"version": current["version"], "is_active": True})
    reset = await admin.post(f"/api/users/{user['id']}/reset-password", json={"new_password": "Temp-Pass-123"})
    assert reset.json()["must_change_password"] is True
    assert (await anon.login("handler-xnk", "Temp-Pass-123")).json()["must_change_password"] is True
    actions = [e["action"] for e in (await admin.get("/api/audit", params={"target_type": "user"})).json()]
    assert {"user.create", "user.update", "user.reset_password"} <= set(actions)


async def test_admin_cannot_disable_themselves(admin: Client) -> None:
    me = (await admin.get("/api/auth/me")).json()
    user = (await admin.get(f"/api/users/{me['id']}")).json()
    response = await admin.patch(f"/api/users/{me['id']}", json={"version": user["version"], "is_active": False})
    assert_error(response, 409, "cannot_disable_self")


async def test_api_tokens_are_hashed_scoped_and_revocable(admin: Client, anon: Client) -> None:
    created = await admin.post("/api/tokens", json={"name": "HIS feed", "scopes": ["directory:read"]})
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    assert secret.startswith("plt_") and created.json()["prefix"] == secret[:12]
    assert all("secret" not in t for t in (await admin.get("/api/tokens")).json())
    bearer = {"Authorization": f"Bearer {secret}"}
    assert (await anon.get("/api/directory/sites", headers=bearer)).status_code == 200
    # a token needs no CSRF token, and its scopes bound it
    assert_error(await anon.post("/api/directory/skills", json={"code": "X", "name": "X"}, headers=bearer), 403)
    assert_error(await anon.get("/api/users", headers=bearer), 403)
    await admin.delete(f"/api/tokens/{created.json()['id']}")
    assert_error(await anon.get("/api/directory/sites", headers=bearer), 401, "bad_token")
    assert_error(await anon.get("/api/directory/sites", headers={"Authorization": "Bearer plt_made_up"}), 401)


async def test_a_service_accounts_token_works_before_anyone_logs_in_as_it(admin: Client, anon: Client) -> None:
    svc = await admin.post(
        "/api/users",
        json={"username": "his-feed", "display_name": "HIS", "password": "Initial-Pass-1", "roles": ["agent"]},
    )
    token = await admin.post(
        "/api/tokens", json={"name": "HIS", "scopes": ["directory:read"], "user_id": svc.json()["id"]}
    )
    bearer = {"Authorization": f"Bearer {token.json()['secret']}"}
    assert (await anon.get("/api/directory/sites", headers=bearer)).status_code == 200


async def test_tokens_cannot_exceed_their_users_rights(admin: Client, make_user: Any) -> None:
    agent_id = await make_user("agent4", ["agent"])
    response = await admin.post("/api/tokens", json={"name": "x", "scopes": ["users:manage"], "user_id": agent_id})
    assert_error(response, 422)
    assert_error(await admin.post("/api/tokens", json={"name": "x", "scopes": ["nonsense"]}), 422)
