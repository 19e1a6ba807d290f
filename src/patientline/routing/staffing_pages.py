"""Staffing: the page where a planner enters (or fills from history, or pastes) the contacts of each
half-hour and sees the agents needed and the three-shift roster, and its API: the plan as JSON or CSV
and the history of arrivals per half-hour by weekday."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BeforeValidator, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.errors import InvalidInput
from patientline.core.i18n import N_, gettext
from patientline.core.validation import MAX_ID, StrictModel
from patientline.routing import metrics, staffing
from patientline.routing.models import RoutingQueue
from patientline.web.deps import CurrentActor, Session, app_state
from patientline.web.responses import FastJSONResponse
from patientline.web.templating import render

router = APIRouter(tags=["routing staffing"])

MAX_ERLANGS = 1000.0  # offered traffic of one half-hour: far beyond any hospital's contact centre
WEEKDAY_NAMES = (N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"), N_("Saturday"),
                 N_("Sunday"))  # fmt: skip
CSV_HEADERS = (
    N_("From"),
    N_("To"),
    N_("Contacts"),
    N_("Agents needed"),
    N_("Agents scheduled"),
    N_("Service level (percent)"),
    N_("Service level over all offered (percent)"),
    N_("ASA (s)"),
    N_("Occupancy (percent)"),
    N_("Abandoned (percent)"),
)


def _finite_number(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(gettext("Enter a number."))
    return value


def _clock_minute(value: object) -> int:
    """'08:00' -> 480; '24:00' is the end of the day; shifts start and end on the half-hour."""
    text = value if isinstance(value, str) else ""
    hours, _, minutes = text.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2 and len(hours) <= 2):
        raise ValueError(gettext("Enter a time such as 08:00."))
    minute = int(hours) * 60 + int(minutes)
    if minute > staffing.DAY_MINUTES or minute % staffing.INTERVAL_MINUTES:
        raise ValueError(gettext("Enter a time on the hour or half-hour, from 00:00 to 24:00."))
    return minute


Number = Annotated[float, BeforeValidator(_finite_number)]
ClockMinute = Annotated[int, BeforeValidator(_clock_minute)]


class ShiftIn(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=40)]
    start: ClockMinute
    end: ClockMinute


def _default_shifts() -> list[ShiftIn]:
    return [ShiftIn.model_validate(shift) for shift in _default_shift_texts()]


def _default_shift_texts() -> list[dict[str, str]]:
    clock_text = staffing.clock_text
    return [
        {"name": gettext(shift.name), "start": clock_text(shift.start_minute), "end": clock_text(shift.end_minute)}
        for shift in staffing.DEFAULT_SHIFTS
    ]


class StaffingIn(StrictModel):
    contacts: Annotated[list[Annotated[Number, Field(ge=0, le=100_000)]], Field(max_length=staffing.INTERVALS_PER_DAY)]
    aht_s: Annotated[Number, Field(ge=10, le=3600)]
    sl_target: Annotated[Number, Field(ge=0.01, le=0.99)]
    sl_seconds: Annotated[Number, Field(ge=0, le=3600)]
    shrinkage: Annotated[Number, Field(ge=0, le=0.9)] = 0.0
    max_occupancy: Annotated[Number, Field(ge=0.1, le=1)] | None = None
    patience_s: Annotated[Number, Field(ge=10, le=1800)] | None = None
    shifts: Annotated[list[ShiftIn], Field(min_length=1, max_length=8)] = Field(default_factory=_default_shifts)


def _problem(field: str, problem: str, message: str) -> dict[str, str]:
    return {"field": field, "problem": problem, "message": message}


def _check(body: StaffingIn) -> None:
    """What the field types cannot say: 48 values, traffic within reach, shifts with a length."""
    problems = []
    if len(body.contacts) != staffing.INTERVALS_PER_DAY:
        problems.append(_problem("contacts", "wrong_length", gettext("Enter one value per half-hour: 48 values.")))
    for index, count in enumerate(body.contacts):
        if count * (60 / staffing.INTERVAL_MINUTES) * body.aht_s / 3600 > MAX_ERLANGS:
            message = gettext(
                "Too much traffic for one half-hour: at most {limit} erlangs (contacts × 2 × AHT / 3600)."
            )
            problems.append(_problem(f"contacts.{index}", "too_much_traffic", message.format(limit=int(MAX_ERLANGS))))
    names = [shift.name for shift in body.shifts]
    for index, shift in enumerate(body.shifts):
        if shift.start == staffing.DAY_MINUTES:
            problems.append(_problem(f"shifts.{index}.start", "invalid", gettext("A shift cannot start at 24:00.")))
        if names.count(shift.name) > 1:
            problems.append(_problem(f"shifts.{index}.name", "duplicate", gettext("Two shifts have this name.")))
    if problems:
        raise InvalidInput("Some fields are missing or not valid.", details=problems)


def _plan(body: StaffingIn) -> staffing.Plan:
    _check(body)
    parameters = staffing.Parameters(
        aht_s=body.aht_s, sl_target=body.sl_target, sl_seconds=body.sl_seconds, shrinkage=body.shrinkage,
        max_occupancy=body.max_occupancy, patience_s=body.patience_s,
    )  # fmt: skip
    shifts = [staffing.Shift(s.name, s.start, s.end % staffing.DAY_MINUTES) for s in body.shifts]
    return staffing.plan_day(body.contacts, parameters, shifts)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def plan_json(plan: staffing.Plan) -> dict[str, Any]:
    clock_text = staffing.clock_text
    intervals = [
        {
            "start": clock_text(interval.start_minute),
            "end": clock_text(interval.start_minute + staffing.INTERVAL_MINUTES),
            "contacts": interval.contacts,
            "calls_per_hour": interval.calls_per_hour,
            "raw_agents": interval.staffing.raw_agents,
            "scheduled_agents": interval.staffing.scheduled_agents,
            "service_level": interval.staffing.achieved.service_level,
            "service_level_offered": interval.staffing.achieved.service_level_offered,
            "asa_s": _finite(interval.staffing.achieved.asa_s),
            "occupancy": interval.staffing.achieved.occupancy,
            "abandon_rate": interval.staffing.achieved.abandon_rate,
            "limited_by": interval.staffing.limited_by.value,
        }
        for interval in plan.intervals
    ]
    shifts = [
        {
            "name": shift.shift.name,
            "start": clock_text(shift.shift.start_minute),
            "end": clock_text(shift.shift.end_minute or staffing.DAY_MINUTES),
            "hours": shift.shift.hours,
            "raw_agents": shift.raw_agents,
            "scheduled_agents": shift.scheduled_agents,
            "peak_at": None if shift.peak_minute is None else clock_text(shift.peak_minute),
            "contacts": shift.contacts,
            "agent_hours": shift.agent_hours,
        }
        for shift in plan.shifts
    ]
    totals = {
        "contacts": plan.total_contacts,
        "peak_raw_agents": plan.peak_raw_agents,
        "peak_scheduled_agents": plan.peak_scheduled_agents,
        "interval_agent_hours": plan.interval_agent_hours,
        "roster_agents": plan.roster_agents,
        "roster_agent_hours": plan.roster_agent_hours,
    }
    model = "erlang_c" if plan.parameters.patience_s is None else "erlang_a"
    uncovered = [clock_text(minute) for minute in plan.uncovered_minutes]
    return {"model": model, "intervals": intervals, "shifts": shifts, "totals": totals, "uncovered": uncovered}


def _authorise(actor: Actor) -> None:
    actor.require(Permission.PLAN_WORKFORCE)


@router.post("/api/routing/staffing", summary="Agents needed per half-hour and per shift for a day's contacts")
async def staffing_plan(body: StaffingIn, actor: CurrentActor) -> Response:
    _authorise(actor)
    return FastJSONResponse(plan_json(_plan(body)))


@router.post("/api/routing/staffing/export.csv", summary="The staffing plan per half-hour as CSV")
async def staffing_csv(body: StaffingIn, actor: CurrentActor) -> Response:
    _authorise(actor)
    text = staffing.plan_csv(_plan(body), [gettext(header) for header in CSV_HEADERS])
    return Response(
        "\ufeff" + text,  # the byte-order mark makes spreadsheet programs read UTF-8
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="staffing.csv"'},
    )


Weekday = Annotated[int, Query(ge=0, le=6, description="0 = Monday")]
Weeks = Annotated[int, Query(ge=1, le=26)]
QueueFilter = Annotated[Annotated[int, Field(ge=1, le=MAX_ID)] | None, Query()]


@router.get("/api/routing/staffing/history", summary="Contacts that entered per half-hour, averaged for a weekday")
async def staffing_history(
    request: Request, actor: CurrentActor, session: Session, weekday: Weekday, weeks: Weeks = 4,
    queue_id: QueueFilter = None,
) -> Response:  # fmt: skip
    _authorise(actor)
    timezone = app_state(request).settings.timezone
    today = clock.today(timezone)
    per_weekday = await metrics.contacts_per_interval(
        session, timezone=timezone, today=today, weeks=weeks, queue_id=queue_id
    )
    return FastJSONResponse(
        {"weekday": weekday, "weeks": weeks, "queue_id": queue_id, "contacts": per_weekday[weekday]}
    )


def interval_start(index: int) -> str:
    return staffing.clock_text(index * staffing.INTERVAL_MINUTES)


async def queue_choices(session: AsyncSession) -> list[tuple[int, str]]:
    rows = await session.execute(select(RoutingQueue.id, RoutingQueue.name).order_by(RoutingQueue.name))
    return [(int(row.id), str(row.name)) for row in rows]


@router.get("/routing/staffing", include_in_schema=False)
async def staffing_page(request: Request, actor: CurrentActor, session: Session) -> Response:
    _authorise(actor)
    timezone = app_state(request).settings.timezone
    labels = {
        "agents_needed": gettext("Agents needed"),
        "agents_scheduled": gettext("Agents scheduled"),
        "contacts": gettext("Contacts"),
        "filled": gettext("Filled from history: {weeks} weeks of {weekday}."),
        "pasted": gettext("{count} values pasted."),
        "paste_count": gettext("Paste 48 numbers, one per half-hour from 00:00 (found {count})."),
        "unreachable": gettext("not reachable"),
        "uncovered": gettext("No shift covers these half-hours with contacts: {times}."),
        "none": gettext("none"),
        "total_contacts": gettext("Contacts in the day"),
        "peak_raw": gettext("Peak on the phones"),
        "peak_scheduled": gettext("Peak scheduled"),
        "roster": gettext("On the roster"),
        "roster_detail": gettext("{hours} agent hours; following the need half-hour by half-hour: {interval_hours}"),
        "calculating": gettext("Calculating…"),
        "calculated": gettext("Calculated with {model}."),
        "models": {"erlang_c": gettext("Erlang C"), "erlang_a": gettext("Erlang A")},
        "by": {"service_level": gettext("service level"), "occupancy": gettext("occupancy"), "none": ""},
    }
    return render(
        request,
        "routing/staffing.html",
        {
            "intervals": [
                staffing.clock_text(i * staffing.INTERVAL_MINUTES) for i in range(staffing.INTERVALS_PER_DAY)
            ],
            "shifts": _default_shift_texts(),
            "queues": await queue_choices(session),
            "weekdays": [gettext(name) for name in WEEKDAY_NAMES],
            "today_weekday": clock.today(timezone).weekday(),
            "labels": labels,
        },
    )
