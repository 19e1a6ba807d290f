"""CSV import and export of the directory: dry runs, all-or-nothing, encodings, round trips."""

from __future__ import annotations

from typing import Any

import pytest

from helpers import Client, assert_error
from patientline.core.events import replay

KINDS = ("sites", "departments", "teams", "skills", "staff")


# ---- helpers -----------------------------------------------------------------------------------


async def upload(client: Client, kind: str, data: str | bytes, *, dry_run: bool | None) -> Any:
    raw = data.encode() if isinstance(data, str) else data
    params = {} if dry_run is None else {"dry_run": "true" if dry_run else "false"}
    return await client.post(
        f"/api/directory/{kind}/import", params=params, files={"file": (f"{kind}.csv", raw, "text/csv")}
    )


async def imported(client: Client, kind: str, data: str | bytes, *, dry_run: bool | None) -> dict[str, Any]:
    response = await upload(client, kind, data, dry_run=dry_run)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


async def rows(client: Client, kind: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/directory/{kind}")
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()
    return listed


async def by_code(client: Client, kind: str) -> dict[str, dict[str, Any]]:
    return {row["code"]: row for row in await rows(client, kind)}


async def everything(admin: Client, db: Any) -> dict[str, Any]:
    lists = {kind: await rows(admin, kind) for kind in KINDS}
    audit = (await admin.get("/api/audit", params={"limit": 500})).json()
    async with db.sessions() as session:
        events = [e.id for e in await replay(session, after_id=0, limit=10_000)]
    return {"lists": lists, "audit": [a["id"] for a in audit], "events": events}


def report(
    *,
    kind: str,
    dry_run: bool,
    applied: bool,
    total: int,
    created: int = 0,
    updated: int = 0,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "dry_run": dry_run,
        "applied": applied,
        "total": total,
        "created": created,
        "updated": updated,
        "errors": errors or [],
    }


@pytest.fixture
async def sites(admin: Client) -> dict[str, dict[str, Any]]:
    await imported(admin, "sites", "code,name,phone\nEAST,东院,010-67098585\nWEST,西院,\n", dry_run=False)
    return await by_code(admin, "sites")


SITES_CSV = (
    "code,name,address,phone,hours,is_active\n"
    "EAST,东院,北京市东城区天坛西里6号,010-6709 8585,08:00-12:00,true\n"
    "WEST,西院,北京市丰台区,13800138000,,false\n"
)


# ---- dry run and real run ----------------------------------------------------------------------


async def test_a_dry_run_reports_and_writes_nothing(admin: Client, db: Any) -> None:
    before = await everything(admin, db)
    assert await imported(admin, "sites", SITES_CSV, dry_run=True) == report(
        kind="site", dry_run=True, applied=False, total=2, created=2
    )
    assert await everything(admin, db) == before
    # dry run is the default
    assert (await imported(admin, "sites", SITES_CSV, dry_run=None))["dry_run"] is True
    assert await everything(admin, db) == before


async def test_a_real_run_writes_audits_and_records_events(admin: Client, db: Any) -> None:
    assert await imported(admin, "sites", SITES_CSV, dry_run=False) == report(
        kind="site", dry_run=False, applied=True, total=2, created=2
    )
    east, west = await rows(admin, "sites")
    assert east | {"id": 0} == {
        "id": 0,
        "code": "EAST",
        "name": "东院",
        "address": "北京市东城区天坛西里6号",
        "phone": "+861067098585",
        "hours": "08:00-12:00",
        "is_active": True,
        "version": 1,
    }
    assert west["phone"] == "+8613800138000" and west["is_active"] is False
    assert west["hours"] == "08:00-12:00,13:30-17:30"  # an empty cell takes the default
    audit = (await admin.get("/api/audit", params={"action": "directory.site.create"})).json()
    assert sorted(a["target_id"] for a in audit) == sorted([str(east["id"]), str(west["id"])])
    async with db.sessions() as session:
        events = [e.payload for e in await replay(session, after_id=0) if e.type == "directory.changed"]
    assert events == [
        {"entity": "site", "entity_id": east["id"], "change": "created", "name": "东院"},
        {"entity": "site", "entity_id": west["id"], "change": "created", "name": "西院"},
    ]


async def test_known_codes_are_updated_ignoring_case(admin: Client, sites: dict[str, Any]) -> None:
    data = "code,name,address\neast,东院区,新地址\nNORTH,北院,\n"
    assert await imported(admin, "sites", data, dry_run=True) == report(
        kind="site", dry_run=True, applied=False, total=2, created=1, updated=1
    )
    assert await by_code(admin, "sites") == sites
    assert (await imported(admin, "sites", data, dry_run=False))["applied"] is True
    after = await by_code(admin, "sites")
    assert after["east"] == sites["EAST"] | {"code": "east", "name": "东院区", "address": "新地址", "version": 2}
    assert after["NORTH"]["name"] == "北院" and after["WEST"] == sites["WEST"]
    [update] = (await admin.get("/api/audit", params={"action": "directory.site.update"})).json()
    assert update["before"] == {"code": "EAST", "name": "东院", "address": "", "version": 1}
    assert update["after"] == {"code": "east", "name": "东院区", "address": "新地址", "version": 2}


# ---- all or nothing ----------------------------------------------------------------------------


async def test_one_bad_row_writes_nothing_and_names_the_line_and_field(
    admin: Client, db: Any, sites: dict[str, Any]
) -> None:
    data = (
        "code,name,site_code,phone\n"
        "NEI,内科,EAST,010-67098585\n"
        "WAI,外科,WEST,12345\n"  # line 3: a phone number that cannot exist
        "ERK,儿科,SOUTH,\n"  # line 4: no such site
        "GK,骨科,EAST,\n"
    )
    before = await everything(admin, db)
    for dry_run in (True, False):
        result = await imported(admin, "departments", data, dry_run=dry_run)
        assert result | {"errors": []} == report(kind="department", dry_run=dry_run, applied=False, total=4, created=2)
        assert [(e["row"], e["code"], e["field"]) for e in result["errors"]] == [
            (3, "WAI", "phone"),
            (4, "ERK", "site_code"),
        ]
        assert all(e["message"] for e in result["errors"])
        assert "SOUTH" in result["errors"][1]["message"]
        assert await everything(admin, db) == before


async def test_row_errors_cover_validation_and_domain_rules(admin: Client, sites: dict[str, Any]) -> None:
    data = (
        "code,name,hours,is_active\n"
        "OK,好院区,,\n"
        "BAD HOURS,x,8-12,\n"  # line 3: a bad code and bad hours
        ",没有代码,,\n"  # line 4: no code
        "WEST,西院,,maybe\n"  # line 5: not a yes/no
        "N2,,,\n"
    )  # line 6: no name
    result = await imported(admin, "sites", data, dry_run=False)
    assert result["applied"] is False and result["created"] == 1
    problems = {(e["row"], e["field"]) for e in result["errors"]}
    assert problems == {(3, "code"), (3, "hours"), (4, "code"), (5, "is_active"), (6, "name")}
    assert sorted(await by_code(admin, "sites")) == ["EAST", "WEST"]


async def test_the_same_code_twice_in_a_file_creates_then_updates(admin: Client, sites: dict[str, Any]) -> None:
    data = "code,name,site_code,location\nXNK,心内科,EAST,1F\nxnk,心血管内科,,2F\n"
    assert await imported(admin, "departments", data, dry_run=True) == report(
        kind="department", dry_run=True, applied=False, total=2, created=1, updated=1
    )
    assert await rows(admin, "departments") == []
    assert (await imported(admin, "departments", data, dry_run=False))["applied"] is True
    [dept] = await rows(admin, "departments")
    assert (dept["code"], dept["name"], dept["location"], dept["site_id"], dept["version"]) == (
        "xnk",
        "心血管内科",
        "2F",
        sites["EAST"]["id"],
        2,
    )
    actions = [a["action"] for a in (await admin.get("/api/audit", params={"target_type": "department"})).json()]
    assert actions == ["directory.department.update", "directory.department.create"]


async def test_an_unknown_parent_code_is_reported(admin: Client, sites: dict[str, Any]) -> None:
    data = "code,name,site_code,parent_code\nA,甲,EAST,\nB,乙,EAST,A\nC,丙,EAST,Z\n"
    result = await imported(admin, "departments", data, dry_run=False)
    assert [(e["row"], e["field"]) for e in result["errors"]] == [(4, "parent_code")]
    assert await rows(admin, "departments") == []


# ---- file format -------------------------------------------------------------------------------


async def test_a_bad_header_is_refused(admin: Client, db: Any) -> None:
    before = await everything(admin, db)
    for header in (
        "code,name,colour\n",  # an unknown column
        "name,address\n",  # no code
        "code\n",  # no name
        "",  # nothing at all
        "Code,Name\n",
    ):  # columns are named exactly
        for dry_run in (True, False):
            response = await upload(admin, "sites", header + "A,B,C\n", dry_run=dry_run)
            body = assert_error(response, 422, "bad_header")
            assert set(body["details"]) == {"unknown", "missing"}
    assert await everything(admin, db) == before


async def test_bad_header_details_name_the_columns(admin: Client) -> None:
    body = assert_error(await upload(admin, "skills", "code,colour,size\n", dry_run=True), 422, "bad_header")
    assert body["details"] == {"unknown": ["colour", "size"], "missing": ["name"]}


async def test_gb18030_files_from_chinese_spreadsheets_work(admin: Client, sites: dict[str, Any]) -> None:
    data = "code,name,site_code,location,description\nXNK,心内科,EAST,门诊楼２层,冠心病、高血压\n".encode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert (await imported(admin, "departments", data, dry_run=False))["created"] == 1
    [dept] = await rows(admin, "departments")
    assert (dept["name"], dept["location"], dept["description"]) == ("心内科", "门诊楼２层", "冠心病、高血压")


async def test_utf8_with_a_byte_order_mark_works(admin: Client) -> None:
    data = '\ufeffcode,name,description\r\nTRIAGE,分诊,"导诊, 分诊"\r\n'.encode()
    assert (await imported(admin, "skills", data, dry_run=False))["created"] == 1
    [skill] = await rows(admin, "skills")
    assert (skill["code"], skill["name"], skill["description"]) == ("TRIAGE", "分诊", "导诊, 分诊")


async def test_text_in_neither_encoding_is_refused(admin: Client, db: Any) -> None:
    before = await everything(admin, db)
    assert_error(await upload(admin, "skills", b"code,name\nA,\xff\xfe\n", dry_run=False), 422, "bad_encoding")
    assert await everything(admin, db) == before


async def test_at_most_5000_rows_per_file(admin: Client) -> None:
    rows_ = "".join(f"S{n},技能{n}\n" for n in range(5001))
    body = assert_error(await upload(admin, "skills", "code,name\n" + rows_, dry_run=True), 422, "too_many_rows")
    assert body["details"] is None
    assert await rows(admin, "skills") == []


async def test_cells_are_trimmed_and_blank_cells_leave_fields_alone(admin: Client, sites: dict[str, Any]) -> None:
    data = "code,name,address,phone\n  EAST , 东院 ,,\n"
    result = await imported(admin, "sites", data, dry_run=False)
    assert result["updated"] == 1 and result["errors"] == []
    assert (await by_code(admin, "sites"))["EAST"] == sites["EAST"]  # nothing changed, not even the version


# ---- references between rows and files ---------------------------------------------------------


async def test_departments_resolve_parents_created_earlier_in_the_same_file(
    admin: Client, sites: dict[str, Any]
) -> None:
    data = (
        "code,name,site_code,parent_code,kind\n"
        "NEI,内科,EAST,,clinical\n"
        "XNK,心内科,EAST,NEI,clinical\n"
        "XNK-1,心内一病区,EAST,xnk,clinical\n"  # parent codes match ignoring case
        "FSK,放射科,WEST,,medical_technology\n"
    )
    assert await imported(admin, "departments", data, dry_run=True) == report(
        kind="department", dry_run=True, applied=False, total=4, created=4
    )
    assert (await imported(admin, "departments", data, dry_run=False))["applied"] is True
    depts = await by_code(admin, "departments")
    assert depts["NEI"]["parent_id"] is None
    assert depts["XNK"]["parent_id"] == depts["NEI"]["id"]
    assert depts["XNK-1"]["parent_id"] == depts["XNK"]["id"]
    assert depts["FSK"]["site_id"] == sites["WEST"]["id"] and depts["FSK"]["kind"] == "medical_technology"


async def test_a_parent_defined_later_in_the_file_is_an_error(admin: Client, sites: dict[str, Any]) -> None:
    data = "code,name,site_code,parent_code\nXNK,心内科,EAST,NEI\nNEI,内科,EAST,\n"
    result = await imported(admin, "departments", data, dry_run=True)
    assert [(e["row"], e["code"], e["field"]) for e in result["errors"]] == [(2, "XNK", "parent_code")]


async def test_an_import_cannot_make_a_cycle(admin: Client, db: Any, sites: dict[str, Any]) -> None:
    await imported(admin, "departments", "code,name,site_code,parent_code\nA,甲,EAST,\nB,乙,EAST,A\n", dry_run=False)
    before = await everything(admin, db)
    result = await imported(admin, "departments", "code,name,parent_code\nA,甲,B\n", dry_run=False)
    [error] = result["errors"]
    assert (error["row"], error["code"], result["applied"]) == (2, "A", False)
    assert await everything(admin, db) == before


async def test_teams_and_staff_resolve_codes_and_usernames(
    admin: Client, make_user: Any, sites: dict[str, Any]
) -> None:
    user_id = await make_user("nurse1", ["agent"])
    await imported(admin, "departments", "code,name,site_code\nXNK,心内科,EAST\n", dry_run=False)
    xnk = (await by_code(admin, "departments"))["XNK"]
    teams = (
        "code,name,kind,site_code,department_code\n"
        "DZ,导诊组,skill_group,EAST,\nXNK-SEATS,心内坐席,department_seats,,XNK\n"
    )
    assert (await imported(admin, "teams", teams, dry_run=False))["created"] == 2
    by_team = await by_code(admin, "teams")
    assert by_team["DZ"]["site_id"] == sites["EAST"]["id"] and by_team["DZ"]["department_id"] is None
    assert by_team["XNK-SEATS"]["department_id"] == xnk["id"] and by_team["XNK-SEATS"]["site_id"] is None

    staff = (
        "code,name,site_code,department_code,title,phone,email,is_handler,is_active,username\n"
        "E1001,张三,EAST,XNK,护士长,138 0013 8000,zs@example.org,true,true,NURSE1\n"
        "E1002,李四,,,,,,,,\n"
    )
    assert (await imported(admin, "staff", staff, dry_run=False))["created"] == 2
    people = await by_code(admin, "staff")
    assert people["E1001"] | {"id": 0} == {
        "id": 0,
        "code": "E1001",
        "name": "张三",
        "user_id": user_id,
        "site_id": sites["EAST"]["id"],
        "department_id": xnk["id"],
        "title": "护士长",
        "phone": "+8613800138000",
        "email": "zs@example.org",
        "is_handler": True,
        "is_active": True,
        "version": 1,
        "skills": [],
        "team_ids": [],
    }
    assert people["E1002"]["user_id"] is None and people["E1002"]["is_handler"] is False

    unknown = await imported(
        admin, "staff", "code,name,username,email\nE1003,王五,ghost,\nE1004,赵六,,bad\n", dry_run=False
    )
    assert [(e["row"], e["field"]) for e in unknown["errors"]] == [(2, "username"), (3, "email")]
    # a second staff record for the same account is refused
    taken = await imported(admin, "staff", "code,name,username\nE1005,钱七,nurse1\n", dry_run=False)
    assert [e["row"] for e in taken["errors"]] == [2] and taken["applied"] is False
    assert sorted(await by_code(admin, "staff")) == ["E1001", "E1002"]


# ---- export ------------------------------------------------------------------------------------


async def test_export_then_import_changes_nothing(admin: Client, db: Any, make_user: Any) -> None:
    user_id = await make_user("nurse2", ["agent"])
    await imported(admin, "sites", SITES_CSV, dry_run=False)
    await imported(
        admin,
        "departments",
        (
            "code,name,site_code,parent_code,kind,location,phone,hours,description\n"
            'NEI,内科,EAST,,clinical,门诊楼,010-67098585,周一至周五,"含\n多行, 逗号与""引号"""\n'
            "XNK,心内科,EAST,NEI,clinical,,,,\n"
        ),
        dry_run=False,
    )
    await imported(admin, "teams", "code,name,site_code,department_code\nDZ,导诊组,WEST,XNK\n", dry_run=False)
    await imported(admin, "skills", "code,name\nTRIAGE,分诊\n", dry_run=False)
    await imported(
        admin,
        "staff",
        "code,name,department_code,phone,is_handler,username\nE1,张三,XNK,13800138000,true,nurse2\n",
        dry_run=False,
    )
    assert (await by_code(admin, "staff"))["E1"]["user_id"] == user_id
    assert (await by_code(admin, "departments"))["NEI"]["description"] == '含\n多行, 逗号与"引号"'

    before = await everything(admin, db)
    for kind in KINDS:
        export = await admin.get(f"/api/directory/{kind}/export.csv")
        assert export.status_code == 200, export.text
        assert export.headers["content-type"].startswith("text/csv")
        assert export.headers["content-disposition"] == f'attachment; filename="{kind}.csv"'
        assert export.content.startswith("\ufeff".encode())
        count = len(before["lists"][kind])
        result = await imported(admin, kind, export.content, dry_run=False)
        assert result | {"kind": ""} == report(kind="", dry_run=False, applied=True, total=count, updated=count)
    assert await everything(admin, db) == before  # no new versions, audit rows or events


async def test_export_has_the_import_columns_and_codes_for_references(admin: Client, sites: dict[str, Any]) -> None:
    await imported(
        admin,
        "departments",
        "code,name,site_code,parent_code,triage_department\nNEI,内科,EAST,,\nXNK,心血管中心,WEST,NEI,心内科\n",
        dry_run=False,
    )
    lines = (await admin.get("/api/directory/departments/export.csv")).content.decode("utf-8-sig").splitlines()
    assert lines == [
        "code,name,site_code,parent_code,kind,location,phone,hours,description,is_active,triage_department",
        "NEI,内科,EAST,,clinical,,,,,true,",
        "XNK,心血管中心,WEST,NEI,clinical,,,,,true,心内科",
    ]
    unknown = await imported(
        admin, "departments", "code,name,site_code,triage_department\nYK,眼科,EAST,眼睛科\n", dry_run=True
    )
    assert [error["field"] for error in unknown["errors"]] == ["triage_department"]
    empty = (await admin.get("/api/directory/skills/export.csv")).content.decode("utf-8-sig")
    assert empty.splitlines() == ["code,name,description,is_active"]


async def test_only_writers_import(as_user: Any, admin: Client, db: Any) -> None:
    before = await everything(admin, db)
    async with as_user("agent1", ["agent"]) as agent:
        assert_error(await upload(agent, "sites", SITES_CSV, dry_run=True), 403, "permission_denied")
        assert (await agent.get("/api/directory/sites/export.csv")).status_code == 200
    after = await everything(admin, db)
    assert after["lists"] == before["lists"] and after["events"] == before["events"]
    assert not [a for a in (await admin.get("/api/audit")).json() if a["action"].startswith("directory.")]
