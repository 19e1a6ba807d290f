"""Work-order reports for a period of the hospital's days: counts by type, category, department and
status; the on-time rates of the reply and the result; handling time; reopenings; satisfaction; a
daily series of orders received and resolved. Aggregated in SQL (one pass over the period's orders
for the counts and rates), so a period stays quick however many orders the database holds.

An order belongs to the period by its receipt. A step done on time counts on time and one done late
counts late (`reply_on_time`, `resolve_on_time`); an open order whose step is past due counts late
already. The export lists the period's orders without any free text and with phone numbers masked.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
from sqlalchemy import ColumnElement, Date, Select, and_, case, cast, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock
from patientline.core.db import UTCDateTime
from patientline.core.errors import InvalidInput
from patientline.core.i18n import N_, gettext
from patientline.core.masking import mask_phone
from patientline.directory import service as directory
from patientline.workorders import config
from patientline.workorders.models import Status, WorkOrder

DEFAULT_DAYS = 30
MAX_DAYS = 366
EXPORT_LIMIT = 100_000
EXPORT_BATCH = 2000
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

STATUS_LABELS = {
    Status.NEW.value: N_("Registered"),
    Status.DISPATCHED.value: N_("Dispatched"),
    Status.ACCEPTED.value: N_("Accepted"),
    Status.REPLIED.value: N_("Replied"),
    Status.RESOLVED.value: N_("Resolved"),
    Status.CLOSED.value: N_("Closed"),
    Status.RETURNED.value: N_("Returned"),
    Status.MERGED.value: N_("Merged"),
}
CLOSE_REASON_LABELS = {  # the same words as the order pages
    "evaluated": N_("Evaluated by the patient"),
    "answered": N_("Answered on the call"),
    "no_evaluation": N_("No evaluation received"),
    "withdrawn": N_("Withdrawn by the caller"),
    "unreachable": N_("Caller unreachable"),
    "wrong_number": N_("Wrong number"),
    "duplicate": N_("Duplicate"),
    "other": N_("Other"),
}
EXPORT_COLUMNS = (
    N_("Reference"),
    N_("Type"),
    N_("Category"),
    N_("Status"),
    N_("Department"),
    N_("Phone (masked)"),
    N_("Received"),
    N_("Reply due"),
    N_("Replied"),
    N_("Reply on time"),
    N_("Result due"),
    N_("Resolved"),
    N_("Result on time"),
    N_("Escalation level"),
    N_("Reopened"),
    N_("Satisfied"),
    N_("Close reason"),
)


def status_label(status: str) -> str:
    return gettext(STATUS_LABELS[status]) if status in STATUS_LABELS else status


def close_reason_label(reason: str) -> str:
    return gettext(CLOSE_REASON_LABELS[reason]) if reason in CLOSE_REASON_LABELS else reason


# --- the period ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportFilter:
    date_from: date
    date_to: date  # inclusive
    timezone: str
    type_id: int | None = None
    department_id: int | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def bounds(self) -> tuple[datetime, datetime]:
        """The period in UTC: from the first day's midnight to the midnight after the last day."""
        start = datetime.combine(self.date_from, time(0), tzinfo=self.tz)
        end = datetime.combine(self.date_to + timedelta(days=1), time(0), tzinfo=self.tz)
        return start.astimezone(UTC), end.astimezone(UTC)

    def days(self) -> list[date]:
        return [self.date_from + timedelta(days=n) for n in range((self.date_to - self.date_from).days + 1)]


def make_filter(
    *,
    timezone: str,
    date_from: date | None = None,
    date_to: date | None = None,
    type_id: int | None = None,
    department_id: int | None = None,
) -> ReportFilter:
    """The period asked for; by default the last 30 days up to today. At most a year."""
    today = clock.today(timezone)
    date_to = date_to or (today if date_from is None else min(date_from + timedelta(days=DEFAULT_DAYS - 1), today))
    date_from = date_from or date_to - timedelta(days=DEFAULT_DAYS - 1)
    if date_from > date_to:
        message = gettext("The period must start on or before its last day.")
        raise InvalidInput(
            "The period must start on or before its last day.",
            details=[{"field": "from", "problem": "order", "message": message}],
        )
    if (date_to - date_from).days + 1 > MAX_DAYS:
        message = gettext("Choose a period of at most {days} days.").format(days=MAX_DAYS)
        raise InvalidInput(
            "Choose a period of at most {days} days.",
            params={"days": MAX_DAYS},
            details=[{"field": "to", "problem": "range", "message": message}],
        )
    return ReportFilter(date_from, date_to, timezone, type_id, department_id)


# --- figures ---------------------------------------------------------------------------------------


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class Figures:
    """What is counted for a group of orders (all of them, a type, a department...)."""

    count: int = 0
    open: int = 0
    reply_on_time: int = 0
    reply_late: int = 0
    resolve_on_time: int = 0
    resolve_late: int = 0
    resolved: int = 0
    handling_seconds: float = 0.0
    reopened: int = 0
    finished: int = 0  # resolved or closed (or reopened after either): the reopen rate's base
    satisfied: int = 0
    evaluated: int = 0

    def add(self, other: Figures) -> None:
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)

    @property
    def reply_rate(self) -> float | None:
        return _rate(self.reply_on_time, self.reply_on_time + self.reply_late)

    @property
    def resolve_rate(self) -> float | None:
        return _rate(self.resolve_on_time, self.resolve_on_time + self.resolve_late)

    @property
    def mean_hours(self) -> float | None:
        return self.handling_seconds / self.resolved / 3600 if self.resolved else None

    @property
    def reopen_rate(self) -> float | None:
        return _rate(self.reopened, self.finished)

    @property
    def satisfaction(self) -> float | None:
        return _rate(self.satisfied, self.evaluated)

    def to_dict(self) -> dict[str, Any]:
        rates = ("reply_rate", "resolve_rate", "mean_hours", "reopen_rate", "satisfaction")
        return asdict(self) | {name: getattr(self, name) for name in rates}


@dataclass
class Group:
    key: str  # a type id, a department id, "type_id:category", a status
    label: str
    figures: Figures = field(default_factory=Figures)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, **self.figures.to_dict()}


@dataclass(frozen=True)
class DayPoint:
    day: date
    received: int
    resolved: int


@dataclass
class Report:
    where: ReportFilter
    totals: Figures
    median_hours: float | None
    by_type: list[Group]
    by_category: list[Group]
    by_department: list[Group]
    by_status: list[Group]
    daily: list[DayPoint]

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": {"from": self.where.date_from.isoformat(), "to": self.where.date_to.isoformat(),
                       "timezone": self.where.timezone},
            "filters": {"type_id": self.where.type_id, "department_id": self.where.department_id},
            "totals": self.totals.to_dict() | {"median_hours": self.median_hours},
            "by_type": [group.to_dict() for group in self.by_type],
            "by_category": [group.to_dict() for group in self.by_category],
            "by_department": [group.to_dict() for group in self.by_department],
            "by_status": [group.to_dict() for group in self.by_status],
            "daily": [{"day": p.day.isoformat(), "received": p.received, "resolved": p.resolved} for p in self.daily],
        }  # fmt: skip


# --- SQL -------------------------------------------------------------------------------------------


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _filters(where: ReportFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if where.type_id is not None:
        conditions.append(WorkOrder.type_id == where.type_id)
    if where.department_id is not None:
        conditions.append(WorkOrder.department_id == where.department_id)
    return conditions


def _in_period(where: ReportFilter) -> list[ColumnElement[bool]]:
    start, end = where.bounds()
    return [WorkOrder.received_at >= start, WorkOrder.received_at < end, *_filters(where)]


def _seconds(dialect: str, later: Any, earlier: Any) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _count_if(condition: Any) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def _late(done_at: Any, due_at: Any, on_time: Any, now: datetime) -> ColumnElement[bool]:
    """Done late, or still to do and past due (for a stopped clock: past due when it stopped)."""
    moment = func.coalesce(WorkOrder.paused_at, literal(now, UTCDateTime()))
    return or_(on_time.is_(False), and_(WorkOrder.is_open, done_at.is_(None), due_at < moment))


def _figure_columns(dialect: str, now: datetime) -> list[ColumnElement[Any]]:
    finished = or_(WorkOrder.status.in_([Status.RESOLVED.value, Status.CLOSED.value]), WorkOrder.reopen_count > 0)
    return [
        func.count(),
        _count_if(WorkOrder.is_open),
        _count_if(WorkOrder.reply_on_time.is_(True)),
        _count_if(_late(WorkOrder.replied_at, WorkOrder.reply_due_at, WorkOrder.reply_on_time, now)),
        _count_if(WorkOrder.resolve_on_time.is_(True)),
        _count_if(_late(WorkOrder.resolved_at, WorkOrder.resolve_due_at, WorkOrder.resolve_on_time, now)),
        func.count(WorkOrder.resolved_at),
        func.sum(_seconds(dialect, WorkOrder.resolved_at, WorkOrder.received_at)),
        _count_if(WorkOrder.reopen_count > 0),
        _count_if(finished),
        _count_if(WorkOrder.satisfied.is_(True)),
        func.count(WorkOrder.satisfied),
    ]


FIGURE_NAMES = ("count", "open", "reply_on_time", "reply_late", "resolve_on_time", "resolve_late", "resolved",
                "handling_seconds", "reopened", "finished", "satisfied", "evaluated")  # fmt: skip


def _figures(values: Sequence[Any]) -> Figures:
    """`_figure_columns`' values, in its order."""
    numbers: dict[str, Any] = {name: int(value or 0) for name, value in zip(FIGURE_NAMES, values, strict=True)}
    numbers["handling_seconds"] = float(values[FIGURE_NAMES.index("handling_seconds")] or 0.0)
    return Figures(**numbers)


def _local_day(dialect: str, column: Any, where: ReportFilter) -> tuple[ColumnElement[Any], int]:
    """A grouping key from which the hospital's day follows, and the minutes to shift it back by.

    PostgreSQL converts to the hospital's zone itself. SQLite has no time zones: it groups by the UTC
    hour (shifted by the zone's odd minutes, as in +05:30), which lies wholly inside one local day."""
    if dialect == "postgresql":
        return cast(func.timezone(where.timezone, column), Date), 0
    offset = where.tz.utcoffset(datetime.combine(where.date_from, time(12))) or timedelta(0)
    shift = int(offset.total_seconds() // 60) % 60
    shifted = func.datetime(column, f"+{shift} minutes") if shift else column
    return func.strftime("%Y-%m-%d %H", shifted), shift


def _day_of(key: Any, shift: int, tz: ZoneInfo) -> date:
    if isinstance(key, date) and not isinstance(key, datetime):
        return key
    if isinstance(key, datetime):
        return key.date()
    hour = datetime.strptime(str(key), "%Y-%m-%d %H").replace(tzinfo=UTC) - timedelta(minutes=shift)
    return hour.astimezone(tz).date()


async def _per_day(session: AsyncSession, where: ReportFilter, column: Any, conditions: list[Any]) -> dict[date, int]:
    key, shift = _local_day(_dialect(session), column, where)
    rows = await session.execute(select(key, func.count()).where(*conditions).group_by(key))
    counts: dict[date, int] = {}
    for bucket, count in rows:
        day = _day_of(bucket, shift, where.tz)
        counts[day] = counts.get(day, 0) + int(count)
    return counts


async def _daily(session: AsyncSession, where: ReportFilter) -> list[DayPoint]:
    start, end = where.bounds()
    received = await _per_day(session, where, WorkOrder.received_at, _in_period(where))
    in_period = [WorkOrder.resolved_at >= start, WorkOrder.resolved_at < end, *_filters(where)]
    resolved = await _per_day(session, where, WorkOrder.resolved_at, in_period)
    return [DayPoint(day, received.get(day, 0), resolved.get(day, 0)) for day in where.days()]


async def _median_hours(session: AsyncSession, where: ReportFilter, resolved: int) -> float | None:
    """The middle handling time: the one or two middle values, found by the database's sort."""
    if not resolved:
        return None
    seconds = _seconds(_dialect(session), WorkOrder.resolved_at, WorkOrder.received_at)
    query = (
        select(seconds)
        .where(*_in_period(where), WorkOrder.resolved_at.is_not(None))
        .order_by(seconds)
        .offset((resolved - 1) // 2)
        .limit(2 - resolved % 2)
    )
    middle = [float(value) for value in await session.scalars(query) if value is not None]
    return sum(middle) / len(middle) / 3600 if middle else None


async def department_names(session: AsyncSession) -> dict[int, str]:
    return {row.id: row.name for row in await directory.list_entities(session, kind=directory.DEPARTMENTS)}


async def type_names(session: AsyncSession) -> dict[int, str]:
    return {row.id: row.name for row in await config.list_types(session)}


def _group(groups: dict[str, Group], key: str, label: str, figures: Figures) -> None:
    group = groups.setdefault(key, Group(key, label))
    group.figures.add(figures)


def _ranked(groups: dict[str, Group]) -> list[Group]:
    return sorted(groups.values(), key=lambda group: (-group.figures.count, group.label))


async def build(session: AsyncSession, *, where: ReportFilter) -> Report:
    """The period's figures: one grouped pass for counts and rates, then the median and the days."""
    now = clock.now()
    dimensions = (WorkOrder.type_id, WorkOrder.category, WorkOrder.department_id, WorkOrder.status)
    query: Select[Any] = (
        select(*dimensions, *_figure_columns(_dialect(session), now)).where(*_in_period(where)).group_by(*dimensions)
    )
    types, departments = await type_names(session), await department_names(session)
    no_department, no_category = gettext("Not dispatched"), gettext("No category")
    totals = Figures()
    by_type: dict[str, Group] = {}
    by_category: dict[str, Group] = {}
    by_department: dict[str, Group] = {}
    by_status: dict[str, Group] = {}
    for row in await session.execute(query):
        type_id, category, department_id, status = row[:4]
        figures = _figures(row[4:])
        totals.add(figures)
        type_name = types.get(type_id, str(type_id))
        _group(by_type, str(type_id), type_name, figures)
        _group(by_category, f"{type_id}:{category}", f"{type_name} · {category or no_category}", figures)
        department = departments.get(department_id, str(department_id)) if department_id else no_department
        _group(by_department, str(department_id or ""), department, figures)
        _group(by_status, status, status_label(status), figures)
    statuses = list(STATUS_LABELS)
    return Report(
        where=where,
        totals=totals,
        median_hours=await _median_hours(session, where, totals.resolved),
        by_type=_ranked(by_type),
        by_category=_ranked(by_category),
        by_department=_ranked(by_department),
        by_status=sorted(by_status.values(), key=lambda g: statuses.index(g.key) if g.key in statuses else 99),
        daily=await _daily(session, where),
    )


# --- export ----------------------------------------------------------------------------------------

Cell = str | int | datetime | None


async def export_count(session: AsyncSession, *, where: ReportFilter) -> int:
    return int(await session.scalar(select(func.count()).select_from(WorkOrder).where(*_in_period(where))) or 0)


async def check_export_size(session: AsyncSession, *, where: ReportFilter) -> int:
    count = await export_count(session, where=where)
    if count > EXPORT_LIMIT:
        raise InvalidInput(
            "The period holds {count} orders; an export takes at most {limit}. Choose a shorter period or a filter.",
            params={"count": count, "limit": EXPORT_LIMIT},
            error_id="export_too_large",
            details={"count": count, "limit": EXPORT_LIMIT},
        )
    return count


EXPORTED = (
    WorkOrder.reference, WorkOrder.type_id, WorkOrder.category, WorkOrder.status, WorkOrder.department_id,
    WorkOrder.caller_phone, WorkOrder.received_at, WorkOrder.reply_due_at, WorkOrder.replied_at,
    WorkOrder.reply_on_time, WorkOrder.resolve_due_at, WorkOrder.resolved_at, WorkOrder.resolve_on_time,
    WorkOrder.escalation_level, WorkOrder.reopen_count, WorkOrder.satisfied, WorkOrder.close_reason,
)  # fmt: skip


@dataclass(frozen=True)
class _Labels:
    """What the cells show, looked up once per export rather than once per cell."""

    types: dict[int, str]
    departments: dict[int, str]
    statuses: dict[str, str]
    reasons: dict[str, str]
    yes_no: dict[bool | None, str]

    @classmethod
    async def load(cls, session: AsyncSession) -> _Labels:
        return cls(
            types=await type_names(session),
            departments=await department_names(session),
            statuses={status: status_label(status) for status in STATUS_LABELS},
            reasons={reason: close_reason_label(reason) for reason in CLOSE_REASON_LABELS},
            yes_no={True: gettext("Yes"), False: gettext("No"), None: ""},
        )


async def export_rows(session: AsyncSession, *, where: ReportFilter) -> AsyncIterator[list[list[Cell]]]:
    """The period's orders in batches, oldest first: no free text, phone numbers masked, times local
    (naive, as spreadsheets want them)."""
    labels = await _Labels.load(session)
    tz = where.tz

    def local(moment: datetime | None) -> datetime | None:
        return moment.astimezone(tz).replace(tzinfo=None, microsecond=0) if moment else None

    def cells(row: Any) -> list[Cell]:
        return [
            row.reference, labels.types.get(row.type_id, str(row.type_id)), row.category,
            labels.statuses.get(row.status, row.status), labels.departments.get(row.department_id, ""),
            mask_phone(row.caller_phone), local(row.received_at), local(row.reply_due_at), local(row.replied_at),
            labels.yes_no[row.reply_on_time], local(row.resolve_due_at), local(row.resolved_at),
            labels.yes_no[row.resolve_on_time], row.escalation_level, row.reopen_count, labels.yes_no[row.satisfied],
            labels.reasons.get(row.close_reason, row.close_reason),
        ]  # fmt: skip

    query = select(*EXPORTED).where(*_in_period(where)).order_by(WorkOrder.received_at, WorkOrder.id)
    connection = await session.connection()  # Core rows: no ORM bookkeeping per row
    result = await connection.stream(query.limit(EXPORT_LIMIT).execution_options(yield_per=EXPORT_BATCH))
    async for batch in result.partitions(EXPORT_BATCH):
        yield [cells(row) for row in batch]


def headers() -> list[str]:
    return [gettext(label) for label in EXPORT_COLUMNS]


def _csv_cell(cell: Cell) -> str | int:
    if cell is None:
        return ""
    if isinstance(cell, datetime):
        return cell.isoformat(sep=" ")  # 2026-11-02 09:00:00 (seconds only: the export drops microseconds)
    if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + cell  # never a formula in a spreadsheet program
    return cell


def _csv_text(rows: Sequence[Sequence[Cell]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([_csv_cell(cell) for cell in row] for row in rows)
    return buffer.getvalue().encode()


async def csv_chunks(session: AsyncSession, *, where: ReportFilter) -> AsyncIterator[bytes]:
    """CSV with a BOM (spreadsheet programs then read UTF-8), written as the rows arrive."""
    yield "\ufeff".encode() + _csv_text([headers()])
    async for batch in export_rows(session, where=where):
        yield _csv_text(batch)


def _xlsx_append(sheet: Any, rows: list[list[Cell]]) -> None:
    for row in rows:
        sheet.append([None if cell == "" else cell for cell in row])


def _xlsx_save(workbook: Any) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


async def xlsx_bytes(session: AsyncSession, *, where: ReportFilter) -> bytes:
    """A write-only workbook, filled batch by batch in a thread so the server keeps answering."""
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet(gettext("Work orders"))
    sheet.append(headers())
    async for batch in export_rows(session, where=where):
        await asyncio.to_thread(_xlsx_append, sheet, batch)
    return await asyncio.to_thread(_xlsx_save, workbook)
