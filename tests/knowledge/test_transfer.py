"""Knowledge import and export: .xlsx and CSV, dry runs, all-or-nothing, updates by key, publishing
rights, round trips, the formula guard and the page."""

from __future__ import annotations

import csv
import dataclasses
import io
import zipfile
from datetime import date
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select

from helpers import Client, assert_error
from patientline.core.auth.actor import SYSTEM
from patientline.core.auth.permissions import Permission
from patientline.core.events import replay
from patientline.knowledge import service
from patientline.knowledge.models import Item, Revision, Variant

COLUMNS = [
    "key",
    "category",
    "question",
    "variants",
    "answer",
    "spoken",
    "tags",
    "departments",
    "owner",
    "sites",
    "public",
    "valid_from",
    "valid_to",
    "status",
]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HX = {"HX-Request": "true"}
EVERYTHING = dataclasses.replace(SYSTEM, permissions=frozenset(Permission))


# ---- files -------------------------------------------------------------------------------------


def xlsx(rows: list[list[Any]], header: list[str] = COLUMNS) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def csv_text(rows: list[list[Any]], header: list[str] = COLUMNS) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *([str(cell or "") for cell in r] for r in rows)])
    return buffer.getvalue()


def row(key: str, question: str, **cells: Any) -> list[Any]:
    """A row in COLUMNS order: category OPD unless given, everything else empty."""
    values = {"key": key, "category": "OPD", "question": question} | cells
    return [values.get(column, "") for column in COLUMNS]


def sheet_of(raw: bytes) -> list[list[Any]]:
    workbook = openpyxl.load_workbook(io.BytesIO(raw))
    return [list(r) for r in workbook.worksheets[0].iter_rows(values_only=True)]


# ---- API helpers -------------------------------------------------------------------------------


async def upload(client: Client, data: str | bytes, *, dry_run: bool | None, name: str = "kb.csv") -> Any:
    raw = data.encode() if isinstance(data, str) else data
    params = {} if dry_run is None else {"dry_run": "true" if dry_run else "false"}
    return await client.post("/api/kb/import", params=params, files={"file": (name, raw, "application/octet-stream")})


async def imported(client: Client, data: str | bytes, *, dry_run: bool | None) -> dict[str, Any]:
    response = await upload(client, data, dry_run=dry_run)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def report(
    *, dry_run: bool, applied: bool, total: int, created: int = 0, updated: int = 0, errors: list[Any] | None = None
) -> dict[str, Any]:
    return {
        "kind": "item",
        "dry_run": dry_run,
        "applied": applied,
        "total": total,
        "created": created,
        "updated": updated,
        "errors": errors or [],
    }


def problems(result: dict[str, Any]) -> list[tuple[int, str | None, str | None]]:
    return [(e["row"], e["code"], e["field"]) for e in result["errors"]]


async def items(db: Any) -> dict[str, dict[str, Any]]:
    """Every item by key, with its variants and revision numbers."""
    async with db.sessions() as session:
        found: dict[str, dict[str, Any]] = {}
        for item in await session.scalars(select(Item).order_by(Item.id)):
            variants = [v.text for v in await service.variants_of(session, item.id)]
            numbers = list(await session.scalars(select(Revision.number).where(Revision.item_id == item.id)))
            found[str(item.key)] = service.content_of(item) | {
                "id": item.id,
                "status": item.status,
                "revision": item.revision,
                "live_revision_id": item.live_revision_id,
                "version": item.version,
                "variants": variants,
                "revisions": sorted(numbers),
            }
        return found


async def everything(admin: Client, db: Any) -> dict[str, Any]:
    audit = (await admin.get("/api/audit", params={"limit": 500})).json()
    async with db.sessions() as session:
        events = [e.id for e in await replay(session, after_id=0, limit=10_000)]
        variant_rows = [(v.id, v.item_id, v.text, v.source) for v in await session.scalars(select(Variant))]
    return {"items": await items(db), "variants": variant_rows, "audit": [a["id"] for a in audit], "events": events}


async def audit_actions(admin: Client, action: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await admin.get("/api/audit", params={"action": action, "limit": 500})).json()
    return found


@pytest.fixture
async def kb(admin: Client, db: Any) -> dict[str, int]:
    """Two sites, two departments, categories OPD (with OPD-REG below it) and INP."""
    ids: dict[str, int] = {}
    for code, name in (("EAST", "东院"), ("WEST", "西院")):
        response = await admin.post("/api/directory/sites", json={"code": code, "name": name})
        ids[code] = response.json()["id"]
    for code, name in (("NEI", "内科"), ("XNK", "心内科")):
        body = {"code": code, "name": name, "site_id": ids["EAST"]}
        ids[code] = (await admin.post("/api/directory/departments", json=body)).json()["id"]
    async with db.sessions() as session, session.begin():
        for code, name, parent in (("OPD", "门诊", None), ("OPD-REG", "挂号", "OPD"), ("INP", "住院", None)):
            values = {"code": code, "name": name, "parent_id": ids.get(parent or "")}
            ids[code] = (await service.create_category(session, actor=EVERYTHING, values=values)).id
    return ids


TWO_ITEMS = [
    row(
        "GH-001",
        "门诊几点开始挂号？",
        variants="几点可以挂号\n挂号时间|什么时候挂号",
        answer="工作日 7:30 开始挂号。\n节假日见公告。\n\n可在 App 预约。",
        spoken="工作日七点半开始挂号。",
        tags="挂号, 门诊、时间",
        departments="NEI, xnk",
        owner="XNK",
        sites="EAST",
        public="否",
        valid_from=date(2026, 1, 1),
        valid_to="2026/12/31",
        status="published",
    ),
    row("ZY-001", "住院押金多少？", category="inp", answer="<p>一般 <strong>5000</strong> 元</p>", status="draft"),
]


# ---- dry run and real run ----------------------------------------------------------------------


async def test_a_dry_run_reports_and_writes_nothing(admin: Client, db: Any, kb: dict[str, int]) -> None:
    before = await everything(admin, db)
    for data in (xlsx(TWO_ITEMS), csv_text(TWO_ITEMS)):
        assert await imported(admin, data, dry_run=True) == report(dry_run=True, applied=False, total=2, created=2)
        assert (await imported(admin, data, dry_run=None))["dry_run"] is True  # the default
        assert await everything(admin, db) == before


async def test_an_xlsx_import_creates_items_with_variants(admin: Client, db: Any, kb: dict[str, int]) -> None:
    assert await imported(admin, xlsx(TWO_ITEMS), dry_run=False) == report(
        dry_run=False, applied=True, total=2, created=2
    )
    found = await items(db)
    gh, zy = found["GH-001"], found["ZY-001"]
    assert gh | {"id": 0, "live_revision_id": 0} == {
        "id": 0,
        "live_revision_id": 0,
        "category_id": kb["OPD"],
        "question": "门诊几点开始挂号？",
        "answer_html": "<p>工作日 7:30 开始挂号。<br>节假日见公告。</p><p>可在 App 预约。</p>",
        "spoken": "工作日七点半开始挂号。",
        "tags": ["挂号", "门诊", "时间"],
        "department_ids": [kb["NEI"], kb["XNK"]],
        "site_ids": [kb["EAST"]],
        "public": False,
        "valid_from": "2026-01-01",
        "valid_to": "2026-12-31",
        "owner_department_id": kb["XNK"],
        "status": "published",
        "revision": 1,
        "version": gh["version"],
        "variants": ["几点可以挂号", "挂号时间", "什么时候挂号"],
        "revisions": [1],
    }
    assert gh["live_revision_id"] is not None
    assert (zy["category_id"], zy["status"], zy["live_revision_id"], zy["public"]) == (kb["INP"], "draft", None, True)
    assert zy["answer_html"] == "<p>一般 <strong>5000</strong> 元</p>" and zy["variants"] == []
    created = await audit_actions(admin, "knowledge.item.create")
    assert sorted(int(a["target_id"]) for a in created) == sorted([gh["id"], zy["id"]])
    assert [a["action"] for a in await audit_actions(admin, "knowledge.item.publish")] == ["knowledge.item.publish"]
    [whole] = await audit_actions(admin, "knowledge.item.import")
    assert whole["after"] == {"format": "xlsx", "total": 2, "created": 2, "updated": 0}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
async def test_csv_in_utf8_with_or_without_bom_and_gb18030(
    admin: Client, db: Any, kb: dict[str, int], encoding: str
) -> None:
    header = ["编号", "分类", "标准问题", "相似问题", "答案", "是否公开", "生效日期", "状态"]
    data = csv_text(
        [["YB-1", "OPD-REG", "医保怎么报销？", "医保报销｜流程\n报销", "带卡结算", "是", "2026-3-1", "草稿"]], header
    )
    raw = data.encode(encoding)
    if encoding == "gb18030":
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")
    assert (await imported(admin, raw, dry_run=False))["created"] == 1
    item = (await items(db))["YB-1"]
    assert (item["category_id"], item["question"], item["answer_html"]) == (
        kb["OPD-REG"],
        "医保怎么报销？",
        "<p>带卡结算</p>",
    )
    assert (item["public"], item["valid_from"], item["status"]) == (True, "2026-03-01", "draft")
    assert item["variants"] == ["医保报销｜流程", "报销"]  # a full-width bar is text


# ---- row errors and all or nothing -------------------------------------------------------------


async def test_bad_rows_are_reported_by_row_and_column_and_nothing_is_written(
    admin: Client, db: Any, kb: dict[str, int]
) -> None:
    rows = [
        row("OK-1", "好的问题"),
        row("BAD-CAT", "分类不存在", category="NOPE"),
        row("BAD-SPOKEN", "口播太长", spoken="长" * 201),
        row("BAD-DATE", "日期不对", valid_to="2026-02-30"),
        row("BAD-PUBLIC", "公开写错", public="maybe"),
        row("OK-1", "重复的键"),
        row("BAD-DEPT", "科室不存在", departments="NEI, GHOST", owner="NOWHERE"),
        row("", "没有键"),
        row("BAD-STATUS", "状态写错", status="live"),
    ]
    before = await everything(admin, db)
    for data in (xlsx(rows), csv_text(rows)):
        for dry_run in (True, False):
            result = await imported(admin, data, dry_run=dry_run)
            assert result | {"errors": []} == report(dry_run=dry_run, applied=False, total=9, created=1)
            assert problems(result) == [
                (3, "BAD-CAT", "category"),
                (4, "BAD-SPOKEN", "spoken"),
                (5, "BAD-DATE", "valid_to"),
                (6, "BAD-PUBLIC", "public"),
                (7, "OK-1", "key"),
                (8, "BAD-DEPT", "departments"),
                (9, "", "key"),
                (10, "BAD-STATUS", "status"),
            ]
            messages = [e["message"] for e in result["errors"]]
            assert all(messages) and "NOPE" in messages[0] and "maybe" in messages[3] and "2" in messages[4]
            assert await everything(admin, db) == before


async def test_schema_problems_are_named_by_the_files_columns(admin: Client, kb: dict[str, int]) -> None:
    rows = [
        row("Q", "问"),
        row("TAGS", "标签太长", tags="短, " + "长" * 31),
        row("VAR", "相似问题太短", variants="好\n挺好"),
    ]
    result = await imported(admin, xlsx(rows), dry_run=True)
    assert problems(result) == [(2, "Q", "question"), (3, "TAGS", "tags"), (4, "VAR", "variants")]


async def test_blank_rows_are_skipped_and_rows_keep_their_sheet_numbers(admin: Client, kb: dict[str, int]) -> None:
    rows = [row("A", "第一个问题"), [None] * len(COLUMNS), row("B", "分类不存在", category="NOPE")]
    result = await imported(admin, xlsx(rows), dry_run=True)
    assert result["total"] == 2 and problems(result) == [(4, "B", "category")]


# ---- updates by key ----------------------------------------------------------------------------


async def test_an_update_by_key_makes_a_new_revision_and_merges_variants(
    admin: Client, db: Any, kb: dict[str, int]
) -> None:
    first = [row("GH-1", "门诊几点挂号？", variants="挂号时间\n几点挂号", answer="七点半", status="published")]
    await imported(admin, xlsx(first), dry_run=False)
    original = (await items(db))["GH-1"]
    assert original["status"] == "published" and original["revisions"] == [1]

    changed = [row("GH-1", "门诊几点挂号？", variants="几点挂号|早上几点挂号", answer="七点", status="published")]
    assert await imported(admin, xlsx(changed), dry_run=True) == report(dry_run=True, applied=False, total=1, updated=1)
    assert (await items(db))["GH-1"] == original
    assert (await imported(admin, xlsx(changed), dry_run=False))["applied"] is True
    now = (await items(db))["GH-1"]
    assert (now["revision"], now["revisions"], now["status"], now["answer_html"]) == (
        2,
        [1, 2],
        "published",
        "<p>七点</p>",
    )
    assert now["live_revision_id"] != original["live_revision_id"]
    assert now["variants"] == ["挂号时间", "几点挂号", "早上几点挂号"]  # nothing dropped
    assert now["tags"] == original["tags"] and now["public"] is True  # empty cells leave fields alone
    [added] = await audit_actions(admin, "knowledge.variant.add")
    assert added["after"] == {"variant": "早上几点挂号", "source": "import"}
    [update] = await audit_actions(admin, "knowledge.item.update")
    assert update["before"] == {"answer_html": "<p>七点半</p>"}

    # a draft change keeps the published revision live
    draft = [row("GH-1", "门诊几点挂号？", answer="七点十分", status="draft")]
    await imported(admin, xlsx(draft), dry_run=False)
    latest = (await items(db))["GH-1"]
    assert (latest["revision"], latest["status"], latest["live_revision_id"]) == (3, "draft", now["live_revision_id"])


async def test_an_archived_item_published_again_is_reopened(admin: Client, db: Any, kb: dict[str, int]) -> None:
    await imported(admin, xlsx([row("A-1", "旧的问题", status="published")]), dry_run=False)
    item = (await items(db))["A-1"]
    async with db.sessions() as session, session.begin():
        await service.transition(
            session, actor=EVERYTHING, item_id=item["id"], step_name="archive", expected_version=item["version"]
        )
    exported = (await admin.get("/api/kb/export.csv")).content
    assert (await imported(admin, exported, dry_run=False))["errors"] == []  # "archived" as exported is accepted
    assert (await items(db))["A-1"]["status"] == "archived"
    await imported(admin, xlsx([row("A-1", "旧的问题", status="published")]), dry_run=False)
    assert (await items(db))["A-1"]["status"] == "published"


# ---- rights ------------------------------------------------------------------------------------


async def test_publishing_needs_the_review_right(as_user: Any, admin: Client, db: Any, kb: dict[str, int]) -> None:
    rows = [
        row("H-1", "科室的问题", owner="XNK", status="draft"),
        row("H-2", "要发布的问题", owner="XNK", status="published"),
        row("H-3", "别的科室的问题", owner="NEI"),
    ]
    async with as_user("handler1", ["handler"], department_ids=[kb["XNK"]]) as handler:
        result = await imported(handler, xlsx(rows), dry_run=False)
        assert result | {"errors": []} == report(dry_run=False, applied=False, total=3, created=1)
        assert [(e["row"], e["field"]) for e in result["errors"]] == [(3, "status"), (4, None)]
        assert await items(db) == {}
        good = await imported(handler, xlsx(rows[:1]), dry_run=False)
        assert good["applied"] is True and (await items(db))["H-1"]["status"] == "draft"
        assert (await handler.get("/api/kb/export.xlsx")).status_code == 200


async def test_agents_cannot_import_or_export(as_user: Any, admin: Client, db: Any, kb: dict[str, int]) -> None:
    before = await everything(admin, db)
    async with as_user("agent1", ["agent"]) as agent:
        assert_error(await upload(agent, xlsx(TWO_ITEMS), dry_run=False), 403, "permission_denied")
        for path in ("export.xlsx", "export.csv", "import-template.xlsx", "import-template.csv"):
            assert_error(await agent.get(f"/api/kb/{path}"), 403, "permission_denied")
    after = await everything(admin, db)
    for part in ("items", "variants", "events"):  # the agent's own account is audited
        assert after[part] == before[part]
    assert await audit_actions(admin, "knowledge.item.import") == []


# ---- file format -------------------------------------------------------------------------------


async def test_more_than_20000_rows_are_refused(admin: Client, db: Any, kb: dict[str, int]) -> None:
    lines = "".join(f"K{n},OPD,问题{n}\n" for n in range(20_001))
    body = assert_error(await upload(admin, "key,category,question\n" + lines, dry_run=True), 422, "too_many_rows")
    assert "20000" in body["message"]
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(["key", "category", "question"])
    for n in range(20_001):
        sheet.append([f"K{n}", "OPD", f"问题{n}"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    assert_error(await upload(admin, buffer.getvalue(), dry_run=True), 422, "too_many_rows")
    assert await items(db) == {}


async def test_files_that_are_not_spreadsheets_are_refused(admin: Client, db: Any, kb: dict[str, int]) -> None:
    not_xlsx = io.BytesIO()
    with zipfile.ZipFile(not_xlsx, "w") as archive:
        archive.writestr("readme.txt", "hello")
    for raw, error_id in (
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01", "unsupported_file"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "unsupported_file"),  # Excel 97-2003
        (not_xlsx.getvalue(), "bad_xlsx"),
        (b"PK\x03\x04 broken", "bad_xlsx"),
        ("题目,答案\n".encode(), "bad_header"),
        (b"key,category,question\nA,\xff\xfe,\xfe\n", "bad_encoding"),
    ):
        assert_error(await upload(admin, raw, dry_run=False), 422, error_id)
    assert await items(db) == {}


async def test_a_bad_header_names_the_columns(admin: Client, kb: dict[str, int]) -> None:
    body = assert_error(await upload(admin, "key,Question,colour\n", dry_run=True), 422, "bad_header")
    assert body["details"] == {"unknown": ["colour"], "missing": ["category"]}
    body = assert_error(await upload(admin, "key,category,question,标准问题\n", dry_run=True), 422, "bad_header")
    assert body["details"]["repeated"] == ["question"]
    assert_error(await upload(admin, b"", dry_run=True), 422, "bad_header")


# ---- export ------------------------------------------------------------------------------------


async def content_for_round_trip(admin: Client, db: Any) -> None:
    rows = [
        *TWO_ITEMS,
        row(
            "=FORMULA",
            '=HYPERLINK("http://evil.example")',
            variants="+86 问题\n普通问法",
            answer='<p>见 <a href="https://example.org/x">链接</a> &amp; "引号"</p><ul><li>一</li></ul>',
            spoken="-负号开头",
            tags="@标签",
        ),
        row("REVIEW-1", "审核中的问题", status="draft"),
    ]
    # CSV: openpyxl would write the text starting with "=" as formulas
    result = await imported(admin, csv_text(rows), dry_run=False)
    assert result["applied"] is True, result["errors"]
    review = (await items(db))["REVIEW-1"]
    async with db.sessions() as session, session.begin():
        await service.transition(
            session, actor=EVERYTHING, item_id=review["id"], step_name="submit", expected_version=review["version"]
        )


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
async def test_export_then_import_changes_nothing(admin: Client, db: Any, kb: dict[str, int], fmt: str) -> None:
    await content_for_round_trip(admin, db)
    before = await everything(admin, db)
    export = await admin.get(f"/api/kb/export.{fmt}")
    assert export.status_code == 200, export.text
    assert export.headers["content-disposition"] == f'attachment; filename="knowledge.{fmt}"'
    result = await imported(admin, export.content, dry_run=False)
    assert result == report(dry_run=False, applied=True, total=4, updated=4)
    after = await everything(admin, db)
    assert after["items"] == before["items"] and after["variants"] == before["variants"]
    assert after["events"] == before["events"]
    [new_audit] = [a for a in after["audit"] if a not in before["audit"]]  # only the import itself
    newest_import = (await audit_actions(admin, "knowledge.item.import"))[0]
    assert newest_import["id"] == new_audit


async def test_the_export_has_the_import_columns_and_guards_formulas(
    admin: Client, db: Any, kb: dict[str, int]
) -> None:
    await content_for_round_trip(admin, db)
    export = await admin.get("/api/kb/export.csv")
    assert export.headers["content-type"].startswith("text/csv") and export.content.startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert lines[0] == COLUMNS
    by_key = {line[0]: dict(zip(COLUMNS, line, strict=True)) for line in lines[1:]}
    assert list(by_key) == ["GH-001", "ZY-001", "'=FORMULA", "REVIEW-1"]
    formula = by_key["'=FORMULA"]
    assert formula["question"] == '\'=HYPERLINK("http://evil.example")'
    assert (formula["variants"], formula["spoken"], formula["tags"]) == ("'+86 问题\n普通问法", "'-负号开头", "'@标签")
    gh = by_key["GH-001"]
    assert (gh["category"], gh["departments"], gh["owner"], gh["sites"]) == ("OPD", "NEI, XNK", "XNK", "EAST")
    assert (gh["public"], gh["valid_from"], gh["valid_to"], gh["status"]) == (
        "no",
        "2026-01-01",
        "2026-12-31",
        "published",
    )
    assert gh["variants"] == "几点可以挂号\n挂号时间\n什么时候挂号" and gh["tags"] == "挂号, 门诊, 时间"
    assert by_key["REVIEW-1"]["status"] == "in_review"

    workbook = await admin.get("/api/kb/export.xlsx")
    assert workbook.headers["content-type"] == XLSX and workbook.content.startswith(b"PK\x03\x04")
    sheet = openpyxl.load_workbook(io.BytesIO(workbook.content)).worksheets[0]
    cells = {str(r[0].value): r for r in sheet.iter_rows(min_row=2)}
    question = cells["'=FORMULA"][COLUMNS.index("question")]
    assert question.data_type == "s" and question.value == '\'=HYPERLINK("http://evil.example")'
    valid_from = cells["GH-001"][COLUMNS.index("valid_from")]
    assert valid_from.is_date and valid_from.value.date() == date(2026, 1, 1)


async def test_the_export_filters_by_category_and_status(admin: Client, db: Any, kb: dict[str, int]) -> None:
    rows = [
        row("A", "门诊问题", status="published"),
        row("B", "挂号问题", category="OPD-REG"),
        row("C", "住院问题", category="INP", status="published"),
    ]
    await imported(admin, xlsx(rows), dry_run=False)

    async def keys(**params: Any) -> list[str]:
        response = await admin.get("/api/kb/export.csv", params=params)
        assert response.status_code == 200, response.text
        return [line[0] for line in csv.reader(io.StringIO(response.content.decode("utf-8-sig")))][1:]

    assert await keys() == ["A", "B", "C"]
    assert await keys(category_id=kb["OPD"]) == ["A", "B"]  # and its sub-categories
    assert await keys(status="published") == ["A", "C"]
    assert await keys(category_id=kb["OPD"], status="draft") == ["B"]
    assert await keys(category_id="", status="") == ["A", "B", "C"]  # the page's "all"
    assert sheet_of((await admin.get("/api/kb/export.xlsx", params={"status": "archived"})).content) == [COLUMNS]
    assert_error(await admin.get("/api/kb/export.csv", params={"status": "live"}), 422)


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
async def test_the_templates_import_once_the_category_exists(
    admin: Client, db: Any, kb: dict[str, int], fmt: str
) -> None:
    response = await admin.get(f"/api/kb/import-template.{fmt}")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == f'attachment; filename="knowledge-template.{fmt}"'
    if fmt == "xlsx":
        header, example = sheet_of(response.content)
    else:
        header, example = csv.reader(io.StringIO(response.content.decode("utf-8-sig")))
    assert list(header) == COLUMNS and example[0] == "GH-001"
    assert await imported(admin, response.content, dry_run=False) == report(
        dry_run=False, applied=True, total=1, created=1
    )
    assert (await items(db))["GH-001"]["variants"] == ["几点可以挂号", "挂号时间"]


# ---- the page ----------------------------------------------------------------------------------


async def submit(client: Client, data: bytes, *, dry_run: bool | None) -> Any:
    form = {"csrf_token": client.csrf} | ({} if dry_run is None else {"dry_run": str(dry_run).lower()})
    return await client.post("/kb/transfer", data=form, headers=HX, files={"file": ("kb.xlsx", data, XLSX)})


async def test_the_page_checks_then_imports(admin: Client, db: Any, kb: dict[str, int]) -> None:
    admin.http.cookies.set("pl_lang", "en")
    page = await admin.get("/kb/transfer")
    assert page.status_code == 200 and f'name="csrf_token" value="{admin.csrf}"' in page.text
    for link in ("/api/kb/import-template.xlsx", "/api/kb/import-template.csv", "/api/kb/export.csv"):
        assert link in page.text
    del admin.http.headers["X-CSRF-Token"]  # the page sends the token as a form field

    checked = await submit(admin, xlsx(TWO_ITEMS), dry_run=None)
    assert "Check passed" in checked.text and "2 rows: 2 new, 0 updated, 0 problems." in checked.text
    assert "Import for real" in checked.text and "<html" not in checked.text
    assert await items(db) == {}
    done = await submit(admin, xlsx(TWO_ITEMS), dry_run=False)
    assert "Imported" in done.text and sorted(await items(db)) == ["GH-001", "ZY-001"]

    bad = await submit(admin, xlsx([row("X", "分类不存在", category="NOPE")]), dry_run=None)
    assert "Nothing was written" in bad.text and "<td>category</td>" in bad.text and "Import for real" not in bad.text
    unreadable = await submit(admin, b"\x89PNG\x00\x00", dry_run=None)
    assert 'class="alert alert-error"' in unreadable.text


async def test_the_page_is_for_editors(as_user: Any, kb: dict[str, int]) -> None:
    async with as_user("agent2", ["agent"]) as agent:
        denied = await agent.get("/kb/transfer")
        assert denied.status_code == 403 and "<html" in denied.text.lower() and "permission_denied" in denied.text
        assert_error(await submit(agent, xlsx(TWO_ITEMS), dry_run=False), 403, "permission_denied")


async def test_a_workbook_that_unpacks_to_too_much_is_refused(admin: Client) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/sharedStrings.xml", "A" * (40 * 1024 * 1024))
    response = await admin.post(
        "/api/kb/import", files={"file": ("bomb.xlsx", buffer.getvalue(), "application/octet-stream")}
    )
    assert_error(response, 422, "too_large")
