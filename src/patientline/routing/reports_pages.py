"""Queue report: per queue and per 15/30/60-minute interval of a range of the hospital's days, the
figures of the queue log (offered, answered, abandons, service levels, ASA, AHT, wrap-up, occupancy,
longest wait); the page with its charts, the JSON API and the CSV export."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import AfterValidator, BeforeValidator, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.errors import InvalidInput
from patientline.core.i18n import N_, gettext
from patientline.core.validation import MAX_ID
from patientline.routing import metrics
from patientline.routing.models import RoutingQueue
from patientline.web.deps import CurrentActor, Session, app_state
from patientline.web.responses import FastJSONResponse
from patientline.web.templating import localtime, render

router = APIRouter(tags=["routing reports"])

MAX_DAYS = 31
EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)  # far from the calendar's ends, where time zones overflow
DEFAULT_RULES = {"sl_seconds": 20, "short_abandon_s": 5}  # a queue no longer configured
CSV_COLUMNS = (
    (N_("Queue"), "queue"),
    (N_("From"), "start"),
    (N_("To"), "end"),
    (N_("Entered"), "entered"),
    (N_("Offered"), "offered"),
    (N_("Answered"), "answered"),
    (N_("Answered in time"), "answered_in_time"),
    (N_("Abandoned"), "abandoned"),
    (N_("Short abandons"), "short_abandoned"),
    (N_("Expired"), "expired"),
    (N_("Transferred out"), "transferred_out"),
    (N_("Service level (percent)"), "service_level"),
    (N_("Service level with abandons (percent)"), "service_level_with_abandons"),
    (N_("ASA (s)"), "asa_s"),
    (N_("AHT (s)"), "aht_s"),
    (N_("Wrap-up (s)"), "avg_wrap_s"),
    (N_("Occupancy (percent)"), "occupancy"),
    (N_("Longest wait (s)"), "longest_wait_s"),
)
PERCENT_KEYS = frozenset({"service_level", "service_level_with_abandons", "occupancy"})


def _empty_is_none(value: object) -> object:
    return value or None  # the filter form sends `queue_id=` for "all"


def _interval_minutes(value: int) -> int:
    if value not in metrics.INTERVAL_MINUTES:
        raise ValueError(gettext("Choose 15, 30 or 60 minutes."))
    return value


StartDay = Annotated[date | None, BeforeValidator(_empty_is_none), Query(description="first day (default today)")]
EndDay = Annotated[date | None, BeforeValidator(_empty_is_none), Query(description="last day, included")]
Minutes = Annotated[int, AfterValidator(_interval_minutes), Query(description="15, 30 or 60")]
QueueFilter = Annotated[Annotated[int, Field(ge=1, le=MAX_ID)] | None, BeforeValidator(_empty_is_none), Query()]


@dataclass(frozen=True)
class Range:
    first: date
    last: date
    minutes: int
    queue_id: int | None


@dataclass(frozen=True)
class QueueReport:
    id: int
    name: str
    code: str
    sl_seconds: float
    sl_target: float | None
    short_abandon_s: float
    totals: metrics.QueueMetrics
    intervals: list[metrics.IntervalMetrics]  # only those where something happened

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "code": self.code, "sl_seconds": self.sl_seconds,
            "sl_target": self.sl_target, "short_abandon_s": self.short_abandon_s, "totals": self.totals.to_dict(),
            "intervals": [interval.to_dict() for interval in self.intervals],
        }  # fmt: skip


def _problem(field: str, problem: str, message: str) -> InvalidInput:
    return InvalidInput(
        "Some fields are missing or not valid.", details=[{"field": field, "problem": problem, "message": message}]
    )


def make_range(today: date, first: date | None, last: date | None, minutes: int, queue_id: int | None) -> Range:
    for field, day in (("start", first), ("end", last)):
        if day is not None and not EARLIEST <= day <= LATEST:
            message = gettext("Choose a day from {first} to {last}.").format(first=EARLIEST, last=LATEST)
            raise _problem(field, "out_of_range", message)
    first = first or last or today
    last = last or first
    if last < first:
        raise _problem("end", "before_start", gettext("The end is before the start."))
    if (last - first).days >= MAX_DAYS:
        raise _problem("end", "too_long", gettext("Choose at most {days} days.").format(days=MAX_DAYS))
    return Range(first, last, minutes, queue_id)


async def _queues(session: AsyncSession) -> dict[int, RoutingQueue]:
    return {row.id: row for row in await session.scalars(select(RoutingQueue).order_by(RoutingQueue.name))}


async def build(session: AsyncSession, *, timezone: str, where: Range) -> list[QueueReport]:
    """Every queue with activity in the range (or the one asked for), configured ones first by name."""
    start = metrics.local_day_start(where.first, timezone)
    end = min(metrics.local_day_start(where.last + timedelta(days=1), timezone), clock.now())  # agents' time so far
    entries = await metrics.load_entries(session, start, end, queue_id=where.queue_id)
    configured = await _queues(session)
    seen = {entry.queue_id for entry in entries if entry.queue_id is not None}
    wanted = [where.queue_id] if where.queue_id is not None else [*configured, *sorted(seen - set(configured))]
    reports = []
    for queue_id in wanted:
        row = configured.get(queue_id)
        if where.queue_id is None and queue_id not in seen:
            continue
        rules = {"sl_seconds": row.sl_seconds, "short_abandon_s": row.short_abandon_s} if row else DEFAULT_RULES
        totals = metrics.summarise(entries, queue_id=queue_id, period=(start, end), **rules)
        intervals = metrics.by_interval(entries, start, end, where.minutes, queue_id=queue_id, **rules)
        reports.append(
            QueueReport(
                id=queue_id, name=row.name if row else gettext("Queue #{id}").format(id=queue_id),
                code=row.code if row else "", sl_seconds=rules["sl_seconds"], sl_target=row.sl_target if row else None,
                short_abandon_s=rules["short_abandon_s"], totals=totals,
                intervals=[interval for interval in intervals if not interval.metrics.is_empty],
            )
        )  # fmt: skip
    return reports


def report_json(where: Range, reports: list[QueueReport]) -> dict[str, Any]:
    """Each interval also carries its label in the hospital's time (with the day when the range has several)."""
    label_format = "%H:%M" if where.first == where.last else "%m-%d %H:%M"
    queues = []
    for report in reports:
        data = report.to_dict()
        for interval, row in zip(report.intervals, data["intervals"], strict=True):
            row["label"] = localtime(interval.start, label_format)
        queues.append(data)
    return {
        "start": where.first.isoformat(),
        "end": where.last.isoformat(),
        "interval": where.minutes,
        "queue_id": where.queue_id,
        "queues": queues,
    }


def _cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key in PERCENT_KEYS:
        return f"{value * 100:.1f}"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def report_csv(reports: list[QueueReport]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([gettext(header) for header, _ in CSV_COLUMNS])
    for report in reports:
        for interval in report.intervals:
            values = interval.metrics.to_dict() | {
                "queue": report.name,
                "start": localtime(interval.start, "%Y-%m-%d %H:%M"),
                "end": localtime(interval.end, "%Y-%m-%d %H:%M"),
            }
            writer.writerow([_cell(key, values[key]) for _, key in CSV_COLUMNS])
    return out.getvalue()


def _authorise(actor: Actor) -> None:
    actor.require(Permission.SUPERVISE)


def _timezone(request: Request) -> str:
    return app_state(request).settings.timezone


@router.get("/api/routing/metrics", summary="Queue figures per queue and per interval for a range of days")
async def queue_metrics(
    request: Request, actor: CurrentActor, session: Session, start: StartDay = None, end: EndDay = None,
    interval: Minutes = 30, queue_id: QueueFilter = None,
) -> Response:  # fmt: skip
    _authorise(actor)
    timezone = _timezone(request)
    where = make_range(clock.today(timezone), start, end, interval, queue_id)
    return FastJSONResponse(report_json(where, await build(session, timezone=timezone, where=where)))


@router.get("/api/routing/metrics/export.csv", summary="The queue figures per interval as CSV")
async def queue_metrics_csv(
    request: Request, actor: CurrentActor, session: Session, start: StartDay = None, end: EndDay = None,
    interval: Minutes = 30, queue_id: QueueFilter = None,
) -> Response:  # fmt: skip
    _authorise(actor)
    timezone = _timezone(request)
    where = make_range(clock.today(timezone), start, end, interval, queue_id)
    text = report_csv(await build(session, timezone=timezone, where=where))
    name = f"queues-{where.first:%Y%m%d}-{where.last:%Y%m%d}-{where.minutes}min.csv"
    return Response(
        "\ufeff" + text,  # the byte-order mark makes spreadsheet programs read UTF-8
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _parse_day(text: str | None, label: str, problems: list[str]) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.append(gettext("{field}: enter a date as YYYY-MM-DD.").format(field=label))
        return None


@router.get("/routing/reports", include_in_schema=False)
async def reports_page(
    request: Request,
    actor: CurrentActor,
    session: Session,
    start: Annotated[str | None, Query(max_length=20)] = None,
    end: Annotated[str | None, Query(max_length=20)] = None,
    interval: Annotated[str | None, Query(max_length=4)] = None,
    queue_id: QueueFilter = None,
) -> Response:
    """A bad filter shows its problem over today's figures."""
    _authorise(actor)
    timezone = _timezone(request)
    today = clock.today(timezone)
    problems: list[str] = []
    first = _parse_day(start, gettext("From"), problems)
    last = _parse_day(end, gettext("To"), problems)
    minutes = int(interval) if interval and interval.isdigit() and int(interval) in metrics.INTERVAL_MINUTES else 30
    if interval and str(minutes) != interval:
        problems.append(gettext("Choose 15, 30 or 60 minutes."))
    try:
        where = make_range(today, first, last, minutes, queue_id)
    except InvalidInput as exc:
        problems += [detail["message"] for detail in exc.details]
        where = make_range(today, None, None, minutes, queue_id)
    reports = await build(session, timezone=timezone, where=where)
    query = {"start": where.first.isoformat(), "end": where.last.isoformat(), "interval": where.minutes,
             "queue_id": where.queue_id or ""}  # fmt: skip
    return render(
        request,
        "routing/reports.html",
        {
            "reports": reports,
            "data": report_json(where, reports),
            "where": where,
            "query": query,
            "problems": problems,
            "queues": [(row.id, row.name) for row in (await _queues(session)).values()],
            "presets": _presets(today),
            "now": clock.now(),
            "labels": _chart_labels(),
        },
    )


def _presets(today: date) -> list[tuple[str, date, date]]:
    return [
        (N_("Today"), today, today),
        (N_("Yesterday"), today - timedelta(days=1), today - timedelta(days=1)),
        (N_("Last 7 days"), today - timedelta(days=6), today),
    ]


def _chart_labels() -> dict[str, str]:
    return {
        "offered": gettext("Offered"),
        "answered": gettext("Answered"),
        "abandoned": gettext("Abandoned"),
        "service_level": gettext("Service level"),
        "target": gettext("Target"),
    }
