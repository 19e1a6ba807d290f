"""The directory API: sites, departments (a tree), teams, skills and staff through /api/directory.

Every failed write is checked to leave the directory, the audit log and the event log as they were.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from helpers import Client, assert_error
from patientline.core.events import replay

KINDS = ("sites", "departments", "teams", "skills", "staff")
SINGULAR = {"sites": "site", "departments": "department", "teams": "team", "skills": "skill", "staff": "staff"}
TOO_BIG_ID = 2**31  # one past the largest id PostgreSQL's integer column holds


# ---- helpers -----------------------------------------------------------------------------------


async def create(client: Client, kind: str, /, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/api/directory/{kind}", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def fetch(client: Client, kind: str, entity_id: int) -> dict[str, Any]:
    response = await client.get(f"/api/directory/{kind}/{entity_id}")
    assert response.status_code == 200, response.text
    row: dict[str, Any] = response.json()
    return row


async def audit_log(admin: Client, **params: Any) -> list[dict[str, Any]]:
    response = await admin.get("/api/audit", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


async def directory_events(db: Any) -> list[dict[str, Any]]:
    async with db.sessions() as session:
        return [e.payload for e in await replay(session, after_id=0) if e.type == "directory.changed"]


async def everything(admin: Client, db: Any) -> dict[str, Any]:
    """What a write could touch: every directory list, the audit log, the event log."""
    lists = {kind: (await admin.get(f"/api/directory/{kind}")).json() for kind in KINDS}
    async with db.sessions() as session:
        event_ids = [e.id for e in await replay(session, after_id=0, limit=10_000)]
    return {"lists": lists, "audit": [a["id"] for a in await audit_log(admin)], "events": event_ids}


@asynccontextmanager
async def writes_nothing(admin: Client, db: Any) -> AsyncIterator[None]:
    before = await everything(admin, db)
    yield
    assert await everything(admin, db) == before


@pytest.fixture
async def hospital(admin: Client) -> dict[str, Any]:
    """Two sites; 内科 with 心内科 under it at the east site; 外科 at the west site; a skill; a team."""
    east = await create(admin, "sites", code="EAST", name="东院", phone="010-6709 8585")
    west = await create(admin, "sites", code="WEST", name="西院")
    nei = await create(admin, "departments", code="NEI", name="内科", site_id=east["id"])
    xnk = await create(admin, "departments", code="XNK", name="心内科", site_id=east["id"], parent_id=nei["id"])
    wai = await create(admin, "departments", code="WAI", name="外科", site_id=west["id"])
    triage = await create(admin, "skills", code="TRIAGE", name="分诊")
    team = await create(admin, "teams", code="DZ", name="导诊组", site_id=east["id"])
    return {"east": east, "west": west, "nei": nei, "xnk": xnk, "wai": wai, "triage": triage, "team": team}


def sample_body(kind: str, h: dict[str, Any]) -> dict[str, Any]:
    return {
        "sites": {
            "code": "NORTH",
            "name": "北院",
            "address": "北京市东城区天坛西里6号",
            "phone": "010-6709 8585",
            "hours": "08:00-12:00,13:30-17:30",
        },
        "departments": {
            "code": "ERK",
            "name": "儿科",
            "site_id": h["west"]["id"],
            "parent_id": h["wai"]["id"],
            "kind": "clinical",
            "location": "门诊楼3层",
            "phone": "(010) 67098585",
            "hours": "周一至周五 08:00-17:00",
            "description": "小儿内科门诊",
        },
        "teams": {"code": "EXPERT", "name": "专家中心", "kind": "expert_centre", "department_id": h["nei"]["id"]},
        "skills": {"code": "APPT", "name": "预约挂号", "description": "门诊预约"},
        "staff": {
            "code": "E1001",
            "name": "张三",
            "site_id": h["east"]["id"],
            "department_id": h["xnk"]["id"],
            "title": "护士长",
            "phone": "138 0013 8000",
            "email": "zhangsan@example.org",
            "is_handler": True,
        },
    }[kind]


# ---- CRUD ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_create_read_update_delete(kind: str, admin: Client, db: Any, hospital: dict[str, Any]) -> None:
    singular = SINGULAR[kind]
    body = sample_body(kind, hospital)
    created = await create(admin, kind, **body)
    assert created["version"] == 1 and created["is_active"] is True
    assert created["code"] == body["code"] and created["name"] == body["name"]
    assert await fetch(admin, kind, created["id"]) == created
    assert created in (await admin.get(f"/api/directory/{kind}")).json()

    changed = await admin.patch(
        f"/api/directory/{kind}/{created['id']}",
        json={"version": 1, "name": body["name"] + "（新）", "is_active": False},
    )
    assert changed.status_code == 200, changed.text
    updated = changed.json()
    assert updated == created | {"name": body["name"] + "（新）", "is_active": False, "version": 2}
    assert await fetch(admin, kind, created["id"]) == updated

    async with writes_nothing(admin, db):
        assert_error(
            await admin.patch(f"/api/directory/{kind}/{created['id']}", json={"version": 1, "name": "X"}),
            409,
            "stale_version",
        )
        assert_error(await admin.get(f"/api/directory/{kind}/987654"), 404, "not_found")
        assert_error(
            await admin.patch(f"/api/directory/{kind}/987654", json={"version": 1, "name": "X"}), 404, "not_found"
        )
        assert_error(await admin.delete(f"/api/directory/{kind}/987654"), 404, "not_found")

    assert (await admin.delete(f"/api/directory/{kind}/{created['id']}")).status_code == 204
    assert_error(await admin.get(f"/api/directory/{kind}/{created['id']}"), 404, "not_found")
    assert updated not in (await admin.get(f"/api/directory/{kind}")).json()

    log = await audit_log(admin, target_type=singular, target_id=created["id"])
    assert [e["action"] for e in log] == [f"directory.{singular}.{a}" for a in ("delete", "update", "create")]
    assert all(e["actor_name"] == "root" and e["via"] == "session" for e in log)
    events = [e for e in await directory_events(db) if e["entity"] == singular and e["entity_id"] == created["id"]]
    assert [e["change"] for e in events] == ["created", "updated", "deleted"]
    assert [e["name"] for e in events] == [body["name"]] + [body["name"] + "（新）"] * 2


async def test_list_filters_by_text_site_and_status(admin: Client, hospital: dict[str, Any]) -> None:
    def codes(response: Any) -> list[str]:
        assert response.status_code == 200, response.text
        return [row["code"] for row in response.json()]

    url = "/api/directory/departments"
    assert codes(await admin.get(url)) == ["NEI", "WAI", "XNK"]  # ordered by code
    assert codes(await admin.get(url, params={"q": "心内"})) == ["XNK"]
    assert codes(await admin.get(url, params={"q": "xn"})) == ["XNK"]  # code, case-insensitive
    assert codes(await admin.get(url, params={"site_id": hospital["west"]["id"]})) == ["WAI"]
    wai = hospital["wai"]
    await admin.patch(f"{url}/{wai['id']}", json={"version": wai["version"], "is_active": False})
    assert codes(await admin.get(url, params={"active": "false"})) == ["WAI"]
    assert codes(await admin.get(url, params={"active": "true"})) == ["NEI", "XNK"]
    assert codes(await admin.get(url, params={"limit": 1, "offset": 1})) == ["WAI"]
    assert_error(await admin.get(url, params={"limit": 0}), 422, "invalid_input")
    assert_error(await admin.get(url, params={"q": "x" * 101}), 422, "invalid_input")


# ---- the department tree ---------------------------------------------------------------------


async def test_department_moves_to_another_branch_of_the_tree(admin: Client, hospital: dict[str, Any]) -> None:
    xnk, wai = hospital["xnk"], hospital["wai"]
    # 外科 sits at the west site; a department of the east site may still sit under it
    moved = await admin.patch(
        f"/api/directory/departments/{xnk['id']}", json={"version": xnk["version"], "parent_id": wai["id"]}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["parent_id"] == wai["id"] and moved.json()["site_id"] == hospital["east"]["id"]
    root = await admin.patch(f"/api/directory/departments/{xnk['id']}", json={"version": 2, "parent_id": None})
    assert root.status_code == 200 and root.json()["parent_id"] is None
    child = await create(
        admin, "departments", code="GK", name="骨科", site_id=hospital["east"]["id"], parent_id=wai["id"]
    )
    assert child["parent_id"] == wai["id"]


async def test_department_cycles_are_refused(admin: Client, db: Any, hospital: dict[str, Any]) -> None:
    nei, xnk = hospital["nei"], hospital["xnk"]
    grandchild = await create(
        admin, "departments", code="XNK-1", name="心内一病区", site_id=hospital["east"]["id"], parent_id=xnk["id"]
    )
    url = f"/api/directory/departments/{nei['id']}"
    async with writes_nothing(admin, db):
        for parent in (nei, xnk, grandchild):  # itself, its child, its grandchild
            body = assert_error(
                await admin.patch(url, json={"version": 1, "parent_id": parent["id"]}), 422, "department_cycle"
            )
            assert body["details"] == {"parent_id": parent["id"]}
        # also when other fields change along with it
        assert_error(
            await admin.patch(url, json={"version": 1, "name": "大内科", "parent_id": xnk["id"]}),
            422,
            "department_cycle",
        )
    assert (await fetch(admin, "departments", nei["id"])) == nei
    assert await audit_log(admin, action="directory.department.update") == []


# ---- references, codes, versions -------------------------------------------------------------


async def test_unknown_references_write_nothing(admin: Client, db: Any, hospital: dict[str, Any]) -> None:
    east, nei = hospital["east"], hospital["nei"]
    async with writes_nothing(admin, db):
        body = assert_error(
            await admin.post("/api/directory/departments", json={"code": "NEW", "name": "新科", "site_id": 4242}),
            422,
            "unknown_reference",
        )
        assert body["details"] == {"missing": {"site_id": 4242}}
        body = assert_error(
            await admin.post(
                "/api/directory/departments",
                json={"code": "NEW", "name": "新科", "site_id": east["id"], "parent_id": 4343},
            ),
            422,
            "unknown_reference",
        )
        assert body["details"] == {"missing": {"parent_id": 4343}}
        assert_error(
            await admin.post("/api/directory/teams", json={"code": "T", "name": "T", "department_id": 77}),
            422,
            "unknown_reference",
        )
        assert_error(
            await admin.post("/api/directory/staff", json={"code": "S", "name": "S", "user_id": 77}),
            422,
            "unknown_reference",
        )
        assert_error(
            await admin.patch(f"/api/directory/departments/{nei['id']}", json={"version": 1, "site_id": 4242}),
            422,
            "unknown_reference",
        )
        assert_error(
            await admin.patch(f"/api/directory/departments/{nei['id']}", json={"version": 1, "parent_id": 4242}),
            422,
            "unknown_reference",
        )


async def test_ids_beyond_the_database_range_are_bad_input_not_a_crash(
    admin: Client, db: Any, hospital: dict[str, Any]
) -> None:
    async with writes_nothing(admin, db):
        assert_error(await admin.get(f"/api/directory/sites/{TOO_BIG_ID}"), 422)
        assert_error(await admin.get(f"/api/directory/sites/{10**20}"), 422)
        assert_error(await admin.delete(f"/api/directory/sites/{10**20}"), 422)
        assert_error(await admin.get("/api/directory/departments", params={"site_id": TOO_BIG_ID}), 422)
        assert_error(await admin.get("/api/directory/departments", params={"offset": 10**20}), 422)
        assert_error(
            await admin.post("/api/directory/departments", json={"code": "N", "name": "N", "site_id": TOO_BIG_ID}), 422
        )
        assert_error(
            await admin.post("/api/directory/staff", json={"code": "S", "name": "S", "team_ids": [10**20]}), 422
        )
        assert_error(
            await admin.post(
                "/api/directory/staff",
                json={"code": "S", "name": "S", "skills": [{"skill_id": TOO_BIG_ID, "level": 1}]},
            ),
            422,
        )


@pytest.mark.parametrize("kind", KINDS)
async def test_codes_are_unique_ignoring_case(kind: str, admin: Client, db: Any, hospital: dict[str, Any]) -> None:
    first = await create(admin, kind, **sample_body(kind, hospital))
    second = await create(admin, kind, **(sample_body(kind, hospital) | {"code": "OTHER-1"}))
    async with writes_nothing(admin, db):
        body = assert_error(
            await admin.post(
                f"/api/directory/{kind}", json=sample_body(kind, hospital) | {"code": first["code"].lower()}
            ),
            409,
            "duplicate_code",
        )
        assert body["details"] == {"code": first["code"].lower(), "existing_id": first["id"]}
        assert_error(
            await admin.patch(
                f"/api/directory/{kind}/{second['id']}", json={"version": 1, "code": first["code"].swapcase()}
            ),
            409,
            "duplicate_code",
        )
    # a record may change the case of its own code
    own = await admin.patch(f"/api/directory/{kind}/{first['id']}", json={"version": 1, "code": first["code"].lower()})
    assert own.status_code == 200 and own.json()["code"] == first["code"].lower()


async def test_stale_version_writes_nothing(admin: Client, db: Any, hospital: dict[str, Any]) -> None:
    nei = hospital["nei"]
    url = f"/api/directory/departments/{nei['id']}"
    assert (await admin.patch(url, json={"version": 1, "name": "大内科"})).status_code == 200
    async with writes_nothing(admin, db):
        body = assert_error(await admin.patch(url, json={"version": 1, "location": "2F"}), 409, "stale_version")
        assert body["details"] == {"expected_version": 1, "current_version": 2}
        assert_error(await admin.patch(url, json={"version": 3, "location": "2F"}), 409, "stale_version")
    assert (await fetch(admin, "departments", nei["id"]))["location"] == ""


# ---- malformed requests ----------------------------------------------------------------------


async def test_unknown_fields_and_missing_fields(admin: Client, db: Any, hospital: dict[str, Any]) -> None:
    east = hospital["east"]
    async with writes_nothing(admin, db):
        body = assert_error(
            await admin.post("/api/directory/sites", json={"code": "N", "name": "N", "colour": "red"}),
            422,
            "invalid_input",
        )
        assert [d["field"] for d in body["details"]] == ["colour"]
        assert_error(
            await admin.patch(f"/api/directory/sites/{east['id']}", json={"version": 1, "id": 99}), 422, "invalid_input"
        )
        assert_error(
            await admin.patch(f"/api/directory/sites/{east['id']}", json={"name": "no version"}), 422, "invalid_input"
        )
        body = assert_error(await admin.post("/api/directory/sites", json={"name": "no code"}), 422, "invalid_input")
        assert [d["field"] for d in body["details"]] == ["code"]
        for code in ("", "  ", "has space", "-leading", "x" * 33, "中文"):
            assert_error(await admin.post("/api/directory/skills", json={"code": code, "name": "N"}), 422)
        assert_error(await admin.post("/api/directory/skills", json={"code": "OK", "name": "x" * 101}), 422)
        assert_error(await admin.post("/api/directory/skills", json={"code": "OK", "name": "   "}), 422)
        assert_error(
            await admin.post(
                "/api/directory/departments", json={"code": "N", "name": "N", "site_id": east["id"], "kind": "surgery"}
            ),
            422,
        )
        assert_error(await admin.post("/api/directory/sites", json=["code", "name"]), 422)
        # a required column cannot be emptied through an update
        body = assert_error(
            await admin.patch(
                f"/api/directory/departments/{hospital['nei']['id']}",
                json={"version": 1, "location": "1F", "site_id": None},
            ),
            422,
            "invalid_input",
        )
        assert body["details"] == {"site_id": ["required"]}
        assert_error(await admin.patch(f"/api/directory/sites/{east['id']}", json={"version": 1, "name": None}), 422)


async def test_malformed_json_is_a_400(admin: Client, db: Any) -> None:
    async with writes_nothing(admin, db):
        for raw in (b'{"code": "A", "name": ', b"not json", b'{"code": "A"}}'):
            assert_error(
                await admin.post("/api/directory/sites", content=raw, headers={"Content-Type": "application/json"}),
                400,
                "malformed_json",
            )


async def test_oversize_body_is_refused(admin: Client, db: Any, settings: Any) -> None:
    huge = {"code": "BIG", "name": "大", "description": "x" * (settings.max_body_bytes + 1)}
    async with writes_nothing(admin, db):
        body = assert_error(await admin.post("/api/directory/skills", json=huge), 413, "payload_too_large")
        assert body["details"] == {"max_bytes": settings.max_body_bytes}
        assert_error(
            await admin.post(
                "/api/directory/skills/import",
                params={"dry_run": "false"},
                files={"file": ("big.csv", b"code,name\n" + b"A,a\n" * (settings.max_body_bytes // 4), "text/csv")},
            ),
            413,
            "payload_too_large",
        )


async def test_oversize_body_without_a_length_is_refused(admin: Client, db: Any, settings: Any) -> None:
    async with writes_nothing(admin, db):

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit still holds
            yield b'{"code": "BIG", "name": "big", "description": "'
            for _ in range(settings.max_body_bytes // 65536 + 1):
                yield b"x" * 65536
            yield b'"}'

        assert_error(
            await admin.post("/api/directory/skills", content=chunks(), headers={"Content-Type": "application/json"}),
            413,
            "payload_too_large",
        )


# ---- phones and opening hours ----------------------------------------------------------------


async def test_phone_numbers_are_stored_in_e164(admin: Client) -> None:
    for n, (given, stored) in enumerate(
        [
            ("010-6709 8585", "+861067098585"),
            ("(010) 67098585", "+861067098585"),
            ("021 6408 5875", "+862164085875"),
            ("0755-8392 3333", "+8675583923333"),
            ("138 0013 8000", "+8613800138000"),
            ("+86 139-1234-5678", "+8613912345678"),
            ("  ", None),
        ]
    ):
        site = await create(admin, "sites", code=f"S{n}", name="院区", phone=given)
        assert site["phone"] == stored, given


async def test_invalid_phone_numbers_are_refused(admin: Client, db: Any, hospital: dict[str, Any]) -> None:
    east = hospital["east"]
    async with writes_nothing(admin, db):
        for bad in ("12345", "phone", "010-123", "1380013800", "+86 999 9999 9999"):
            body = assert_error(
                await admin.post("/api/directory/sites", json={"code": "N", "name": "N", "phone": bad}),
                422,
                "invalid_input",
            )
            assert [d["field"] for d in body["details"]] == ["phone"], bad
        assert_error(await admin.patch(f"/api/directory/sites/{east['id']}", json={"version": 1, "phone": "123"}), 422)
        assert_error(await admin.post("/api/directory/staff", json={"code": "S", "name": "S", "phone": "13"}), 422)
        assert_error(
            await admin.post(
                "/api/directory/departments", json={"code": "N", "name": "N", "site_id": east["id"], "phone": "0000"}
            ),
            422,
        )
    cleared = await admin.patch(f"/api/directory/sites/{east['id']}", json={"version": 1, "phone": ""})
    assert cleared.status_code == 200 and cleared.json()["phone"] is None


async def test_site_opening_hours_are_checked(admin: Client, db: Any, hospital: dict[str, Any]) -> None:
    east = hospital["east"]
    assert east["hours"] == "08:00-12:00,13:30-17:30"  # the default
    async with writes_nothing(admin, db):
        for bad in (
            "",
            "always",
            "08:00-12:00,11:00-13:00",
            "12:00-08:00",
            "25:00-26:00",
            "08:00-12:60",
            "13:00-17:00,08:00-12:00",
        ):
            body = assert_error(
                await admin.post("/api/directory/sites", json={"code": "N", "name": "N", "hours": bad}),
                422,
                "invalid_input",
            )
            assert [d["field"] for d in body["details"]] == ["hours"], bad
        assert_error(await admin.patch(f"/api/directory/sites/{east['id']}", json={"version": 1, "hours": "9-5"}), 422)
    night = await admin.patch(f"/api/directory/sites/{east['id']}", json={"version": 1, "hours": "00:00-24:00"})
    assert night.status_code == 200 and night.json()["hours"] == "00:00-24:00"


# ---- deleting --------------------------------------------------------------------------------


async def test_records_in_use_cannot_be_deleted(admin: Client, db: Any, hospital: dict[str, Any]) -> None:
    staff = await create(admin, "staff", code="E1", name="李四", department_id=hospital["wai"]["id"])
    in_use = [
        ("sites", hospital["east"]),  # departments and a team sit there
        ("sites", hospital["west"]),  # 外科 sits there
        ("departments", hospital["nei"]),  # 心内科 sits under it
        ("departments", hospital["wai"]),
    ]  # a staff member works there
    async with writes_nothing(admin, db):
        for kind, row in in_use:
            assert_error(await admin.delete(f"/api/directory/{kind}/{row['id']}"), 409, "in_use")
    for kind, row in in_use:
        assert await fetch(admin, kind, row["id"]) == row
    assert await audit_log(admin, action="directory.site.delete") == []
    assert await audit_log(admin, action="directory.department.delete") == []
    # once nothing refers to it, it goes
    assert (await admin.delete(f"/api/directory/staff/{staff['id']}")).status_code == 204
    assert (await admin.delete(f"/api/directory/departments/{hospital['wai']['id']}")).status_code == 204
    assert (await admin.delete(f"/api/directory/sites/{hospital['west']['id']}")).status_code == 204
    assert [s["code"] for s in (await admin.get("/api/directory/sites")).json()] == ["EAST"]


# ---- who may do what -------------------------------------------------------------------------


async def test_agents_read_but_do_not_write(as_user: Any, admin: Client, db: Any, hospital: dict[str, Any]) -> None:
    nei = hospital["nei"]
    async with as_user("agent1", ["agent"]) as agent:
        assert (await agent.get("/api/directory/departments")).json() == (
            await admin.get("/api/directory/departments")
        ).json()
        assert (await agent.get(f"/api/directory/departments/{nei['id']}")).json() == nei
        assert (await agent.get("/api/directory/departments/export.csv")).status_code == 200
        async with writes_nothing(admin, db):
            for kind in KINDS:
                assert_error(
                    await agent.post(f"/api/directory/{kind}", json=sample_body(kind, hospital)),
                    403,
                    "permission_denied",
                )
            assert_error(
                await agent.patch(f"/api/directory/departments/{nei['id']}", json={"version": 1, "name": "X"}),
                403,
                "permission_denied",
            )
            assert_error(await agent.delete(f"/api/directory/departments/{nei['id']}"), 403, "permission_denied")
            assert_error(
                await agent.post(
                    "/api/directory/skills/import",
                    params={"dry_run": "false"},
                    files={"file": ("s.csv", b"code,name\nX,X\n", "text/csv")},
                ),
                403,
                "permission_denied",
            )
            # bad input from someone who may not write is still a refusal, not a validation report
            assert_error(await agent.delete("/api/directory/departments/987654"), 403, "permission_denied")


async def test_a_read_scoped_token_reads_the_directory(
    admin: Client, anon: Client, db: Any, hospital: dict[str, Any]
) -> None:
    created = await admin.post("/api/tokens", json={"name": "HIS feed", "scopes": ["directory:read"]})
    bearer = {"Authorization": f"Bearer {created.json()['secret']}"}
    listed = await anon.get("/api/directory/departments", headers=bearer)
    assert listed.status_code == 200 and [d["code"] for d in listed.json()] == ["NEI", "WAI", "XNK"]
    assert (await anon.get(f"/api/directory/sites/{hospital['east']['id']}", headers=bearer)).json() == hospital["east"]
    export = await anon.get("/api/directory/sites/export.csv", headers=bearer)
    assert export.status_code == 200 and "EAST" in export.text
    async with writes_nothing(admin, db):
        assert_error(
            await anon.post("/api/directory/skills", json={"code": "X", "name": "X"}, headers=bearer),
            403,
            "permission_denied",
        )
        assert_error(await anon.delete(f"/api/directory/skills/{hospital['triage']['id']}", headers=bearer), 403)
    assert_error(await anon.get("/api/directory/departments"), 401, "not_authenticated")


# ---- audit and events ------------------------------------------------------------------------


async def test_audit_rows_carry_before_and_after(admin: Client, hospital: dict[str, Any]) -> None:
    east = hospital["east"]
    dept = await create(admin, "departments", code="ERK", name="儿科", site_id=east["id"], phone="010-67098585")
    [created] = await audit_log(admin, action="directory.department.create", target_id=dept["id"])
    assert created["target_type"] == "department" and created["before"] is None
    assert created["after"] == dept

    changed = await admin.patch(
        f"/api/directory/departments/{dept['id']}",
        json={"version": 1, "name": "小儿科", "location": "门诊楼3层", "phone": "010-6709 8585", "kind": "clinical"},
    )
    assert changed.status_code == 200
    [updated] = await audit_log(admin, action="directory.department.update", target_id=dept["id"])
    # only what changed: the phone and kind were sent but are the same
    assert updated["before"] == {"name": "儿科", "location": "", "version": 1}
    assert updated["after"] == {"name": "小儿科", "location": "门诊楼3层", "version": 2}

    assert (await admin.delete(f"/api/directory/departments/{dept['id']}")).status_code == 204
    [deleted] = await audit_log(admin, action="directory.department.delete", target_id=dept["id"])
    assert deleted["before"] == changed.json() and deleted["after"] is None


async def test_successful_writes_record_events_and_failed_ones_do_not(
    admin: Client, db: Any, hospital: dict[str, Any]
) -> None:
    async with db.sessions() as session:
        last = (await replay(session, after_id=0, limit=10_000))[-1].id
    skill = await create(admin, "skills", code="FAQ", name="咨询")
    await admin.patch(f"/api/directory/skills/{skill['id']}", json={"version": 1, "name": "政策咨询"})
    assert_error(await admin.patch(f"/api/directory/skills/{skill['id']}", json={"version": 1, "name": "X"}), 409)
    assert_error(await admin.post("/api/directory/skills", json={"code": "faq", "name": "X"}), 409)
    assert_error(await admin.delete(f"/api/directory/sites/{hospital['east']['id']}"), 409)
    await admin.delete(f"/api/directory/skills/{skill['id']}")
    async with db.sessions() as session:
        new = await replay(session, after_id=last)
    assert [(e.type, e.payload) for e in new] == [
        ("directory.changed", {"entity": "skill", "entity_id": skill["id"], "change": "created", "name": "咨询"}),
        ("directory.changed", {"entity": "skill", "entity_id": skill["id"], "change": "updated", "name": "政策咨询"}),
        ("directory.changed", {"entity": "skill", "entity_id": skill["id"], "change": "deleted", "name": "政策咨询"}),
    ]
    assert all(e.audience.permission == "directory:read" for e in new)


# ---- staff: skills with levels, teams --------------------------------------------------------


async def test_staff_skills_and_teams(admin: Client, db: Any, hospital: dict[str, Any]) -> None:
    triage, team = hospital["triage"], hospital["team"]
    appt = await create(admin, "skills", code="APPT", name="预约")
    night = await create(admin, "teams", code="NIGHT", name="夜班组")
    staff = await create(
        admin,
        "staff",
        code="E2001",
        name="王五",
        department_id=hospital["xnk"]["id"],
        skills=[{"skill_id": appt["id"], "level": 5}, {"skill_id": triage["id"], "level": 1}],
        team_ids=[night["id"], team["id"]],
    )
    expected_skills = sorted(
        [{"skill_id": appt["id"], "level": 5}, {"skill_id": triage["id"], "level": 1}], key=lambda s: s["skill_id"]
    )
    assert staff["skills"] == expected_skills
    assert staff["team_ids"] == sorted([night["id"], team["id"]])
    assert await fetch(admin, "staff", staff["id"]) == staff
    assert (await admin.get("/api/directory/staff")).json() == [staff]

    url = f"/api/directory/staff/{staff['id']}"
    async with writes_nothing(admin, db):
        for level in (0, 6, "expert"):
            body = assert_error(
                await admin.patch(url, json={"version": 1, "skills": [{"skill_id": triage["id"], "level": level}]}),
                422,
                "invalid_input",
            )
            assert body["details"][0]["field"] == "skills.0.level"
        body = assert_error(
            await admin.patch(url, json={"version": 1, "name": "王五五", "skills": [{"skill_id": 999, "level": 2}]}),
            422,
            "unknown_reference",
        )
        assert body["details"] == {"missing": {"skills": [999]}}
        body = assert_error(
            await admin.patch(url, json={"version": 1, "team_ids": [team["id"], 998]}), 422, "unknown_reference"
        )
        assert body["details"] == {"missing": {"team_ids": [998]}}
        assert_error(
            await admin.post(
                "/api/directory/staff",
                json={"code": "E2002", "name": "赵六", "skills": [{"skill_id": 999, "level": 2}]},
            ),
            422,
            "unknown_reference",
        )
        assert_error(
            await admin.post("/api/directory/staff", json={"code": "E2002", "name": "赵六", "team_ids": [998]}),
            422,
            "unknown_reference",
        )
        assert_error(
            await admin.post(
                "/api/directory/staff",
                json={"code": "E2002", "name": "赵六", "skills": [{"skill_id": triage["id"], "level": 3, "extra": 1}]},
            ),
            422,
        )

    # changing only the teams keeps the skills, and the other way round
    teams_only = await admin.patch(url, json={"version": 1, "team_ids": [team["id"]]})
    assert teams_only.status_code == 200, teams_only.text
    assert teams_only.json()["team_ids"] == [team["id"]] and teams_only.json()["skills"] == expected_skills
    skills_only = await admin.patch(
        url, json={"version": teams_only.json()["version"], "skills": [{"skill_id": triage["id"], "level": 4}]}
    )
    assert skills_only.status_code == 200, skills_only.text
    assert skills_only.json()["skills"] == [{"skill_id": triage["id"], "level": 4}]
    assert skills_only.json()["team_ids"] == [team["id"]]
    cleared = await admin.patch(url, json={"version": skills_only.json()["version"], "skills": [], "team_ids": []})
    assert cleared.json()["skills"] == [] and cleared.json()["team_ids"] == []
    assert await fetch(admin, "staff", staff["id"]) == cleared.json()

    log = await audit_log(admin, action="directory.staff.update", target_id=staff["id"])
    assert [e["after"].get("skills") for e in reversed(log)] == [None, [{"skill_id": triage["id"], "level": 4}], []]
    assert log[-1]["before"]["team_ids"] == sorted([night["id"], team["id"]])
    assert log[-1]["after"]["team_ids"] == [team["id"]]


async def test_changing_only_skills_or_teams_is_versioned(admin: Client, hospital: dict[str, Any]) -> None:
    """Two people editing the same staff member: the second save must not silently undo the first."""
    triage = hospital["triage"]
    staff = await create(admin, "staff", code="E3001", name="钱七")
    url = f"/api/directory/staff/{staff['id']}"
    first = await admin.patch(url, json={"version": 1, "skills": [{"skill_id": triage["id"], "level": 2}]})
    assert first.status_code == 200 and first.json()["version"] == 2
    assert_error(
        await admin.patch(url, json={"version": 1, "team_ids": [hospital["team"]["id"]]}), 409, "stale_version"
    )
    # saving the same skills again (in any order) changes nothing and writes no audit row
    same = await admin.patch(url, json={"version": 2, "skills": [{"skill_id": triage["id"], "level": 2}]})
    assert same.status_code == 200 and same.json()["version"] == 2
    assert len(await audit_log(admin, action="directory.staff.update", target_id=staff["id"])) == 1


async def test_staff_links_to_a_user_account_once(admin: Client, make_user: Any, db: Any) -> None:
    user_id = await make_user("nurse1", ["agent"])
    staff = await create(admin, "staff", code="E4001", name="护士", user_id=user_id, email="n1@example.org")
    assert staff["user_id"] == user_id
    async with writes_nothing(admin, db):
        assert_error(
            await admin.post("/api/directory/staff", json={"code": "E4002", "name": "护士二", "user_id": user_id}), 409
        )
        assert_error(
            await admin.post("/api/directory/staff", json={"code": "E4003", "name": "x", "email": "nope"}),
            422,
            "invalid_input",
        )


async def test_a_staff_members_skills_go_with_a_deleted_skill(admin: Client, hospital: dict[str, Any]) -> None:
    """Skills and teams are not 'in use' blockers: deleting one removes it from staff members."""
    triage, team = hospital["triage"], hospital["team"]
    staff = await create(
        admin,
        "staff",
        code="E5001",
        name="孙八",
        skills=[{"skill_id": triage["id"], "level": 3}],
        team_ids=[team["id"]],
    )
    assert (await admin.delete(f"/api/directory/skills/{triage['id']}")).status_code == 204
    assert (await admin.delete(f"/api/directory/teams/{team['id']}")).status_code == 204
    after = await fetch(admin, "staff", staff["id"])
    assert after["skills"] == [] and after["team_ids"] == []
