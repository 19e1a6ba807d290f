"""CSV import and export for the directory. Import creates or updates by `code`, row by row through
the same service and schemas as the API, and writes nothing unless every row is valid."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import events
from patientline.core.auth import service as auth
from patientline.core.auth.actor import Actor
from patientline.core.errors import DomainError, InvalidInput
from patientline.core.i18n import gettext
from patientline.core.validation import field_message
from patientline.directory import schemas, service
from patientline.directory.service import DEPARTMENTS, SITES, Kind

MAX_ROWS = 5000


@dataclass(frozen=True)
class Reference:
    column: str  # in the CSV, e.g. site_code
    field: str  # in the record, e.g. site_id
    target: Kind | None  # None: a user name


@dataclass(frozen=True)
class Layout:
    create: type[BaseModel]
    update: type[BaseModel]
    columns: tuple[str, ...]
    references: tuple[Reference, ...] = ()


SITE_REF = Reference("site_code", "site_id", SITES)
DEPARTMENT_REF = Reference("department_code", "department_id", DEPARTMENTS)

LAYOUTS: dict[str, Layout] = {
    "site": Layout(schemas.SiteCreate, schemas.SiteUpdate, ("code", "name", "address", "phone", "hours", "is_active")),
    "department": Layout(
        schemas.DepartmentCreate,
        schemas.DepartmentUpdate,
        (
            "code",
            "name",
            "site_code",
            "parent_code",
            "kind",
            "location",
            "phone",
            "hours",
            "description",
            "is_active",
            "triage_department",
        ),
        (SITE_REF, Reference("parent_code", "parent_id", DEPARTMENTS)),
    ),
    "team": Layout(
        schemas.TeamCreate,
        schemas.TeamUpdate,
        ("code", "name", "kind", "site_code", "department_code", "description", "is_active"),
        (SITE_REF, DEPARTMENT_REF),
    ),
    "skill": Layout(schemas.SkillCreate, schemas.SkillUpdate, ("code", "name", "description", "is_active")),
    "staff": Layout(
        schemas.StaffCreate,
        schemas.StaffUpdate,
        (
            "code",
            "name",
            "site_code",
            "department_code",
            "title",
            "phone",
            "email",
            "is_handler",
            "is_active",
            "username",
        ),
        (SITE_REF, DEPARTMENT_REF, Reference("username", "user_id", None)),
    ),
}


class RowError(BaseModel):
    row: int  # line number in the file (the header is line 1)
    code: str | None
    field: str | None
    message: str


class ImportReport(BaseModel):
    kind: str
    dry_run: bool
    applied: bool
    total: int
    created: int
    updated: int
    errors: list[RowError]


def decode(raw: bytes) -> str:
    """UTF-8 (with or without BOM), or GB18030 as saved by Chinese spreadsheet programs."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInput("The file is neither UTF-8 nor GB18030 text.", error_id="bad_encoding")


@contextmanager
def csv_errors() -> Iterator[None]:
    try:
        yield
    except csv.Error as exc:
        raise InvalidInput(
            "The file is not valid CSV: {problem}", params={"problem": str(exc)}, error_id="bad_csv"
        ) from exc


def read_rows(text: str, layout: Layout) -> list[dict[str, str]]:
    with csv_errors():
        return _read_rows(text, layout)


def check_header(header: Sequence[str], columns: Sequence[str], required: Sequence[str]) -> None:
    unknown = [h for h in header if h not in columns]
    missing = [h for h in required if h not in header]
    if unknown or missing:
        raise InvalidInput(
            "The header row does not match: expected columns {columns}.",
            params={"columns": ", ".join(columns)},
            details={"unknown": unknown, "missing": missing},
            error_id="bad_header",
        )


def check_row_count(count: int, limit: int) -> None:
    if count > limit:
        raise InvalidInput("At most {limit} rows per file.", params={"limit": limit}, error_id="too_many_rows")


def _read_rows(text: str, layout: Layout) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    check_header(header, layout.columns, ("code", "name"))
    reader.fieldnames = header
    rows = [{k: unguard((v or "").strip()) for k, v in row.items() if k is not None} for row in reader]
    check_row_count(len(rows), MAX_ROWS)
    return rows


async def _resolve(session: AsyncSession, ref: Reference, value: str) -> int | None:
    if ref.target is None:
        return await auth.find_user_id(session, username=value)
    row = await service.find_by_code(session, kind=ref.target, code=value)
    return None if row is None else int(row.id)


async def _values(session: AsyncSession, layout: Layout, row: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {k: v for k, v in row.items() if v != "" and k in layout.columns}
    for ref in layout.references:
        if ref.column in values:
            resolved = await _resolve(session, ref, values.pop(ref.column))
            if resolved is None:
                raise InvalidInput(
                    "Unknown reference {value} in column {column}.",
                    params={"value": row[ref.column], "column": ref.column},
                    details={"field": ref.column},
                )
            values[ref.field] = resolved
    return values


async def _apply_row(session: AsyncSession, *, actor: Actor, kind: Kind, layout: Layout, row: dict[str, str]) -> str:
    values = await _values(session, layout, row)
    existing = await service.find_by_code(session, kind=kind, code=row.get("code", ""))
    if existing is None:
        clean = layout.create.model_validate(values).model_dump(mode="json")
        await service.create(session, actor=actor, kind=kind, values=clean)
        return "created"
    model = layout.update.model_validate(values | {"version": existing.version})
    changes = model.model_dump(mode="json", exclude_unset=True, exclude={"version"})
    await service.update(
        session, actor=actor, kind=kind, entity_id=existing.id, expected_version=existing.version, changes=changes
    )
    return "updated"


def row_errors(line: int, code: str | None, exc: Exception) -> list[RowError]:
    if isinstance(exc, ValidationError):
        return [
            RowError(
                row=line, code=code, field=".".join(str(p) for p in err["loc"]) or None, message=field_message(err)
            )
            for err in exc.errors()
        ]
    assert isinstance(exc, DomainError)  # noqa: S101
    field = exc.details.get("field") if isinstance(exc.details, dict) else None
    return [RowError(row=line, code=code, field=field, message=exc.localized_message(gettext))]


async def run_import(session: AsyncSession, *, actor: Actor, kind: Kind, raw: bytes, dry_run: bool) -> ImportReport:
    layout = LAYOUTS[kind.name]
    rows = read_rows(decode(raw), layout)
    report = ImportReport(
        kind=kind.name, dry_run=dry_run, applied=False, total=len(rows), created=0, updated=0, errors=[]
    )

    async def apply(line: int, row: dict[str, str]) -> str:
        return await _apply_row(session, actor=actor, kind=kind, layout=layout, row=row)

    await apply_rows(session, enumerate(rows, start=2), apply, report, id_column="code")
    return report


RowApplier = Callable[[int, dict[str, str]], Awaitable[str]]  # (line, row) -> "created" | "updated"


async def apply_rows(
    session: AsyncSession,
    rows: Iterable[tuple[int, dict[str, str]]],
    apply: RowApplier,
    report: ImportReport,
    *,
    id_column: str,
) -> None:
    """Runs in a savepoint of the caller's transaction, kept only when the run is real and every row
    passed; otherwise it is rolled back with the events its rows raised."""
    mark = events.checkpoint(session)
    async with session.begin_nested() as whole_file:
        for line, row in rows:
            try:
                async with session.begin_nested():
                    outcome = await apply(line, row)
            except (ValidationError, DomainError) as exc:
                report.errors.extend(row_errors(line, row.get(id_column), exc))
                continue
            report.created += outcome == "created"
            report.updated += outcome == "updated"
        if report.dry_run or report.errors:
            await whole_file.rollback()
            events.rollback_to(session, mark)
        else:
            report.applied = True


async def export_csv(session: AsyncSession, *, kind: Kind) -> bytes:
    """The same columns the import reads, so an export can be edited and imported back."""
    layout = LAYOUTS[kind.name]
    rows = await service.list_entities(session, kind=kind)
    codes = await _code_maps(session)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(layout.columns)
    for row in rows:
        writer.writerow([_cell(row, column, codes) for column in layout.columns])
    return ("\ufeff" + buffer.getvalue()).encode()  # BOM: spreadsheet programs then read UTF-8


async def _code_maps(session: AsyncSession) -> dict[str, dict[int, str]]:
    sites = {r.id: r.code for r in await service.list_entities(session, kind=SITES)}
    departments = {r.id: r.code for r in await service.list_entities(session, kind=DEPARTMENTS)}
    users = await auth.usernames(session)
    return {"site_id": sites, "department_id": departments, "parent_id": departments, "user_id": users}


def _cell(row: Any, column: str, codes: dict[str, dict[int, str]]) -> str:
    field = {
        "site_code": "site_id",
        "department_code": "department_id",
        "parent_code": "parent_id",
        "username": "user_id",
    }.get(column)
    if field is not None:
        ref = getattr(row, field)
        return "" if ref is None else codes[field].get(ref, "")
    value = getattr(row, column)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else guard(str(value))


FORMULA_STARTS = ("=", "+", "-", "@")


def guard(text: str) -> str:
    """A spreadsheet would run a cell that starts like a formula ("+86…", "=HYPERLINK(…)"): quote it."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def unguard(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) else text
