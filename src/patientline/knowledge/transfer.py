"""Import and export of knowledge items as .xlsx or CSV. Import creates or updates by `key`, row by row
through the same service and schemas as the API, and writes nothing unless every row is valid (the
directory import's rules: directory/imports.py). Export writes the same columns, so a file can be
edited and imported back."""

from __future__ import annotations

import csv
import html
import io
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import audit
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.errors import InvalidInput, PermissionDenied
from patientline.directory import service as directory
from patientline.directory.imports import (
    ImportReport,
    RowError,
    apply_rows,
    check_header,
    check_row_count,
    csv_errors,
    decode,
    guard,
    unguard,
)
from patientline.knowledge import service
from patientline.knowledge.models import Item, ItemStatus, Variant
from patientline.knowledge.sanitize import ALLOWED_TAGS
from patientline.knowledge.schemas import ItemCreate

MAX_ROWS = 20_000
COLUMNS = (
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
)
REQUIRED = ("key", "category", "question")
ALIASES = {
    "编号": "key",
    "唯一标识": "key",
    "分类": "category",
    "分类编码": "category",
    "标准问题": "question",
    "问题": "question",
    "相似问题": "variants",
    "相似问法": "variants",
    "答案": "answer",
    "标准答案": "answer",
    "口播": "spoken",
    "口播话术": "spoken",
    "标签": "tags",
    "相关科室": "departments",
    "科室": "departments",
    "负责科室": "owner",
    "归属科室": "owner",
    "院区": "sites",
    "适用院区": "sites",
    "公开": "public",
    "是否公开": "public",
    "生效日期": "valid_from",
    "失效日期": "valid_to",
    "状态": "status",
}
# where a column's value goes in ItemCreate, when the names differ
FIELDS = {
    "category": "category_id",
    "answer": "answer_html",
    "departments": "department_ids",
    "owner": "owner_department_id",
    "sites": "site_ids",
}
COLUMN_OF_FIELD = {f: c for c, f in FIELDS.items()}

XLSX_SIGNATURE = b"PK\x03\x04"  # an .xlsx workbook is a zip archive
OLD_XLS_SIGNATURE = b"\xd0\xcf\x11\xe0"  # Excel 97-2003
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

YES = frozenset({"是", "yes", "y", "1", "true"})
NO = frozenset({"否", "no", "n", "0", "false"})
STATUSES = {"draft": "draft", "草稿": "draft", "published": "published", "发布": "published", "已发布": "published"}
VARIANT_SEPARATORS = re.compile(r"[\n|]")
TAG_SEPARATORS = re.compile(r"[,，、;；]")
CODE_SEPARATORS = re.compile(r"[\s,，、;；|]+")
DATE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
HTML_TAG = re.compile(r"</?(?:" + "|".join(sorted(ALLOWED_TAGS, key=len, reverse=True)) + r")\b", re.IGNORECASE)
IMPORT_NOTE = "import"

Row = dict[str, str]
NumberedRow = tuple[int, Row]  # (row number in the sheet, header = 1; cells by column)


# ---- reading files ---------------------------------------------------------------------------


def read_rows(raw: bytes) -> list[NumberedRow]:
    """The data rows of an .xlsx workbook (first sheet) or a CSV file, blank rows left out, cells
    trimmed and formula guards taken off."""
    table = _xlsx_table(raw) if raw.startswith(XLSX_SIGNATURE) else _csv_table(_text_of(raw))
    header = _header(table[0][1] if table else [])
    records = table[1:]
    check_row_count(len(records), MAX_ROWS)
    return [(line, _by_header(header, cells)) for line, cells in records]


def _by_header(header: Sequence[str], cells: Sequence[str]) -> Row:
    # a short row leaves the last columns empty; cells right of the header are nobody's
    return {column: unguard(cell.strip()) for column, cell in zip(header, cells, strict=False)}


def _text_of(raw: bytes) -> str:
    if raw.startswith(OLD_XLS_SIGNATURE):
        raise InvalidInput(
            "Old .xls workbooks cannot be read: save the file as .xlsx or CSV.", error_id="unsupported_file"
        )
    if b"\x00" in raw:  # text never holds NUL bytes; images, PDFs and archives do
        raise InvalidInput("The file is neither an .xlsx workbook nor CSV text.", error_id="unsupported_file")
    return decode(raw)


def _csv_table(text: str) -> list[tuple[int, list[str]]]:
    with csv_errors():
        records = list(csv.reader(io.StringIO(text)))
    return [(number, cells) for number, cells in enumerate(records, start=1) if any(c.strip() for c in cells)]


MAX_UNPACKED_BYTES = 32 * 1024 * 1024  # a workbook is a zip: bound what it unpacks to, not only its size


def _refuse_zip_bomb(raw: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise InvalidInput("The file is not a readable .xlsx workbook.", error_id="bad_xlsx") from exc
    if unpacked > MAX_UNPACKED_BYTES:
        raise InvalidInput(
            "The workbook unpacks to more than {limit} MB; save it as CSV or split it.",
            params={"limit": MAX_UNPACKED_BYTES // 1024 // 1024},
            error_id="too_large",
        )


def _xlsx_table(raw: bytes) -> list[tuple[int, list[str]]]:
    _refuse_zip_bomb(raw)
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, OSError) as exc:
        raise InvalidInput("The file is not a readable .xlsx workbook.", error_id="bad_xlsx") from exc
    try:
        return _sheet_rows(workbook.worksheets[0]) if workbook.worksheets else []
    finally:
        workbook.close()


def _sheet_rows(sheet: Any) -> list[tuple[int, list[str]]]:
    sheet.reset_dimensions()  # some programs write a wrong size; read what is there
    table: list[tuple[int, list[str]]] = []
    for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
        cells = [_cell_text(v) for v in values]
        if any(c.strip() for c in cells):
            table.append((number, cells))
        if len(table) > MAX_ROWS + 1:  # enough to refuse the file without reading all of it
            break
    return table


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a key typed as a number
    return str(value)


def _header(cells: Sequence[str]) -> list[str]:
    names = [cell.strip() for cell in cells]
    while names and not names[-1]:
        names.pop()
    header = [ALIASES.get(name) or (name.lower() if name.lower() in COLUMNS else name) for name in names]
    check_header(header, COLUMNS, REQUIRED)
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise InvalidInput(
            "A column appears more than once in the header row: {columns}.",
            params={"columns": ", ".join(repeated)},
            details={"unknown": [], "missing": [], "repeated": repeated},
            error_id="bad_header",
        )
    return header


# ---- cell values -----------------------------------------------------------------------------


def _split(pattern: re.Pattern[str], text: str) -> list[str]:
    return [part.strip() for part in pattern.split(text) if part.strip()]


def answer_html(text: str) -> str:
    """HTML stays HTML (the schema sanitises it); plain text becomes paragraphs, one per blank-line
    separated block, with its line breaks kept."""
    if HTML_TAG.search(text):
        return text
    blocks = re.split(r"\n\s*\n", text)
    return "".join(
        "<p>" + "<br>".join(html.escape(line.strip(), quote=False) for line in block.strip().splitlines()) + "</p>"
        for block in blocks
        if block.strip()
    )


def _yes_no(column: str, text: str) -> bool:
    if text.lower() in YES:
        return True
    if text.lower() in NO:
        return False
    raise InvalidInput(
        "{value} is not yes or no (是/否).", params={"value": text}, details={"field": column}, error_id="bad_value"
    )


def _date(column: str, text: str) -> str:
    """YYYY-MM-DD, or the 2026/1/5 spreadsheet programs write into CSV files."""
    match = DATE.fullmatch(text.split(" ")[0])
    try:
        if match is None:
            raise ValueError(text)
        return date(*(int(part) for part in match.groups())).isoformat()
    except ValueError:
        raise InvalidInput(
            "{value} is not a date: write it as YYYY-MM-DD.",
            params={"value": text},
            details={"field": column},
            error_id="bad_value",
        ) from None


@dataclass(frozen=True)
class Codes:
    """Category, department and site codes (any case) and their ids, read once per file."""

    categories: dict[str, int]
    departments: dict[str, int]
    sites: dict[str, int]

    @classmethod
    async def load(cls, session: AsyncSession) -> Codes:
        return cls(
            {row.code.lower(): row.id for row in await service.categories(session)},
            {row.code.lower(): row.id for row in await directory.list_entities(session, kind=directory.DEPARTMENTS)},
            {row.code.lower(): row.id for row in await directory.list_entities(session, kind=directory.SITES)},
        )

    def resolve(self, column: str, code: str) -> int:
        table = {"category": self.categories, "sites": self.sites}.get(column, self.departments)
        found = table.get(code.lower())
        if found is None:
            raise InvalidInput(
                "Unknown reference {value} in column {column}.",
                params={"value": code, "column": column},
                details={"field": column},
            )
        return found


def _value(column: str, text: str, codes: Codes) -> Any:
    match column:
        case "category" | "owner":
            return codes.resolve(column, text)
        case "departments" | "sites":
            return [codes.resolve(column, code) for code in _split(CODE_SEPARATORS, text)]
        case "answer":
            return answer_html(text)
        case "tags":
            return _split(TAG_SEPARATORS, text)
        case "public":
            return _yes_no(column, text)
        case "valid_from" | "valid_to":
            return _date(column, text)
        case _:
            return text


def _content(row: Row, codes: Codes) -> dict[str, Any]:
    """The row's filled cells as ItemCreate fields; an empty cell leaves the field as it is."""
    return {
        FIELDS.get(column, column): _value(column, text, codes)
        for column, text in row.items()
        if text and column not in ("key", "variants", "status")
    }


# ---- import ----------------------------------------------------------------------------------


@dataclass
class ItemImport:
    session: AsyncSession
    actor: Actor
    codes: Codes
    first_line_of_key: dict[str, int] = field(default_factory=dict)

    async def apply(self, line: int, row: Row) -> str:
        key = self._claim_key(line, row.get("key", ""))
        existing = await self.session.scalar(select(Item).where(Item.key == key))
        publish = self._wants_publishing(row.get("status", ""), existing)
        values = _content(row, self.codes)
        variants = _split(VARIANT_SEPARATORS, row.get("variants", ""))
        if existing is None:
            item = await self._create(key, values, variants)
        else:
            item = await self._update(existing, key, values, variants)
        if publish:
            await self._publish(item)
        return "created" if existing is None else "updated"

    def _claim_key(self, line: int, key: str) -> str:
        if not key:
            raise InvalidInput("Every row needs a key.", details={"field": "key"}, error_id="bad_value")
        first = self.first_line_of_key.setdefault(key, line)
        if first != line:
            raise InvalidInput(
                "The key {key} is already used on row {row} of this file.",
                params={"key": key, "row": first},
                details={"field": "key"},
                error_id="bad_value",
            )
        return key

    def _wants_publishing(self, text: str, existing: Item | None) -> bool:
        status = STATUSES.get(text.lower(), text.lower())
        if status not in ("", "draft", "published") and (existing is None or existing.status != status):
            # an export holds every status; importing it back must not move the workflow
            raise InvalidInput(
                "The status can be draft or published.", details={"field": "status"}, error_id="bad_value"
            )
        if status == "published" and not self.actor.can(Permission.REVIEW_KNOWLEDGE):
            raise PermissionDenied("Publishing needs the right to review knowledge items.", details={"field": "status"})
        return status == "published"

    async def _create(self, key: str, values: dict[str, Any], variants: list[str]) -> Item:
        model = ItemCreate.model_validate(values | {"key": key, "variants": variants})
        return await service.create_item(
            self.session,
            actor=self.actor,
            values=model.model_dump(mode="json", exclude={"variants", "note", "client_key"}),
            variants=model.variants,
            note=IMPORT_NOTE,
        )

    async def _update(self, item: Item, key: str, values: dict[str, Any], variants: list[str]) -> Item:
        model = ItemCreate.model_validate(service.content_of(item) | values | {"key": key, "variants": variants})
        item = await service.update_item(
            self.session,
            actor=self.actor,
            item_id=item.id,
            expected_version=item.version,
            values=model.model_dump(mode="json", exclude={"key", "variants", "note", "client_key"}),
            note=IMPORT_NOTE,
        )
        for text in model.variants:  # added to the item's own; a variant missing from the file stays
            await service.add_variant(self.session, actor=self.actor, item_id=item.id, text=text, source="import")
        return item

    async def _publish(self, item: Item) -> None:
        if item.status == ItemStatus.ARCHIVED:
            await service.transition(
                self.session, actor=self.actor, item_id=item.id, step_name="reopen", expected_version=item.version
            )
        await service.publish_now(self.session, actor=self.actor, item_id=item.id, note=IMPORT_NOTE)


async def run_import(session: AsyncSession, *, actor: Actor, raw: bytes, dry_run: bool) -> ImportReport:
    """Runs in a savepoint of the caller's transaction (see directory.imports.apply_rows); a real run
    that applied every row is audited once as a whole, besides each item's own audit rows."""
    actor.require(Permission.EDIT_KNOWLEDGE)
    rows = read_rows(raw)
    report = ImportReport(kind="item", dry_run=dry_run, applied=False, total=len(rows), created=0, updated=0, errors=[])
    importer = ItemImport(session, actor, await Codes.load(session))
    await apply_rows(session, rows, importer.apply, report, id_column="key")
    report.errors = [_by_column(error) for error in report.errors]
    if report.applied:
        audit.record(
            session, actor=actor, action="knowledge.item.import", target_type="kb_item",
            after={"format": "xlsx" if raw.startswith(XLSX_SIGNATURE) else "csv", "total": report.total,
                   "created": report.created, "updated": report.updated},
        )  # fmt: skip
    return report


def _by_column(error: RowError) -> RowError:
    """Schema fields (answer_html, tags.2) named by the file's columns (answer, tags)."""
    if error.field is None:
        return error
    name = error.field.split(".")[0]
    return error.model_copy(update={"field": COLUMN_OF_FIELD.get(name, name)})


# ---- export ----------------------------------------------------------------------------------


Cell = str | date | None


async def export_rows(session: AsyncSession, *, category_id: int | None, status: str | None) -> list[list[Cell]]:
    """The working copies, oldest first, one row each, in COLUMNS order; formula-like text guarded."""
    where = service.ItemFilter(category_id=category_id, status=status, limit=MAX_ROWS + 1)
    items, total = await service.list_items(session, where=where)
    check_row_count(total, MAX_ROWS)  # what could not be imported back is not exported
    names = {
        "category": _exact_codes(await service.categories(session)),
        "departments": _exact_codes(await directory.list_entities(session, kind=directory.DEPARTMENTS)),
        "sites": _exact_codes(await directory.list_entities(session, kind=directory.SITES)),
    }
    variants = await _variants_by_item(session)
    return [_export_row(item, names, variants.get(item.id, [])) for item in sorted(items, key=lambda i: i.id)]


def _exact_codes(rows: Sequence[Any]) -> dict[int, str]:
    return {row.id: row.code for row in rows}


async def _variants_by_item(session: AsyncSession) -> dict[int, list[str]]:
    grouped: dict[int, list[str]] = {}
    for item_id, text in await session.execute(select(Variant.item_id, Variant.text).order_by(Variant.id)):
        grouped.setdefault(item_id, []).append(text)
    return grouped


def _export_row(item: Item, names: dict[str, dict[int, str]], variants: list[str]) -> list[Cell]:
    departments, sites = names["departments"], names["sites"]
    texts = {
        "key": item.key or "",
        "category": names["category"].get(item.category_id, ""),
        "question": item.question,
        "variants": "\n".join(variants),
        "answer": item.answer_html,
        "spoken": item.spoken,
        "tags": ", ".join(item.tags),
        "departments": ", ".join(departments.get(d, "") for d in item.department_ids),
        "owner": departments.get(item.owner_department_id, "") if item.owner_department_id else "",
        "sites": ", ".join(sites.get(s, "") for s in item.site_ids),
        "public": "yes" if item.public else "no",
        "status": item.status,
    }
    dates: dict[str, date | None] = {"valid_from": item.valid_from, "valid_to": item.valid_to}
    return [dates[column] if column in dates else guard(texts[column]) for column in COLUMNS]


TEMPLATE_ROW: list[Cell] = [
    "GH-001",
    "OPD",
    "门诊几点开始挂号？",
    "几点可以挂号\n挂号时间",
    "工作日 7:30 开始挂号。\n\n节假日请留意医院公告。",
    "工作日七点半开始挂号。",
    "挂号, 门诊",
    "",
    "",
    "",
    "yes",
    None,
    None,
    "draft",
]


def to_csv(rows: Sequence[Sequence[Cell]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerows([_csv_cell(cell) for cell in row] for row in rows)
    return ("\ufeff" + buffer.getvalue()).encode()  # BOM: spreadsheet programs then read UTF-8


def _csv_cell(cell: Cell) -> str:
    if isinstance(cell, date):
        return cell.isoformat()
    return cell or ""


def to_xlsx(rows: Sequence[Sequence[Cell]]) -> bytes:
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("knowledge")
    sheet.append(COLUMNS)
    for row in _xlsx_rows(rows):
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _xlsx_rows(rows: Sequence[Sequence[Cell]]) -> Iterator[list[Cell]]:
    """Dates stay dates (Excel shows them as such); empty text is an empty cell."""
    for row in rows:
        yield [None if cell == "" else cell for cell in row]
