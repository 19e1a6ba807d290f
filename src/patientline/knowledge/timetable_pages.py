"""Clinic timetable pages: the week's grid for agents, doctors' pages, and the editors' forms (they
submit to the JSON API)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BeforeValidator
from pydantic import Field as Constraint
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.validation import MAX_ID, PathId
from patientline.directory import service as directory
from patientline.knowledge import timetables
from patientline.knowledge.models import Doctor
from patientline.knowledge.timetable_router import FIRST_DAY, LAST_DAY
from patientline.web.deps import CurrentActor, Session, app_state
from patientline.web.templating import render

router = APIRouter(prefix="/kb", include_in_schema=False)

# filter forms send `site_id=` for "All"
FilterId = Annotated[Annotated[int, Constraint(ge=1, le=MAX_ID)] | None, BeforeValidator(lambda v: v or None), Query()]
FilterDay = Annotated[
    Annotated[date, Constraint(ge=FIRST_DAY, le=LAST_DAY)] | None, BeforeValidator(lambda v: v or None), Query()
]
SearchText = Annotated[str | None, Query(max_length=100)]


def _today(request: Request) -> date:
    return clock.today(app_state(request).settings.timezone)


async def _choices(session: AsyncSession) -> dict[str, list[tuple[int, str]]]:
    return {
        "sites": await directory.site_choices(session),
        "departments": await directory.department_choices(session),
    }


def _labels() -> dict[str, Any]:
    return {
        "weekday_labels": timetables.WEEKDAY_LABELS,
        "half_day_labels": timetables.HALF_DAY_LABELS,
        "status_labels": timetables.STATUS_LABELS,
        "half_days": timetables.HALF_DAYS,
    }


@router.get("/timetable")
async def timetable_page(
    request: Request,
    actor: CurrentActor,
    session: Session,
    start: FilterDay = None,
    site_id: FilterId = None,
    department_id: FilterId = None,
    q: SearchText = None,
) -> Response:
    actor.require(Permission.READ_KNOWLEDGE)
    today = _today(request)
    monday = timetables.monday_of(start or today)
    grid = await timetables.week(session, start=monday, site_id=site_id, department_id=department_id, q=q)
    filters = {"site_id": site_id or "", "department_id": department_id or "", "q": q or ""}
    context = {
        "grid": grid,
        "today": today,
        "filters": filters,
        "filtered": bool(site_id or department_id or q),
        "previous_week": monday - timedelta(days=7),
        "next_week": monday + timedelta(days=7),
        "this_week": timetables.monday_of(today),
        "can_edit": actor.can(Permission.EDIT_TIMETABLES),
        **_labels(),
    }
    if "hx-request" in request.headers:
        return render(request, "knowledge/timetable_grid.html", context)
    return render(request, "knowledge/timetable_week.html", context | await _choices(session))


@router.get("/doctors")
async def doctors_page(
    request: Request,
    actor: CurrentActor,
    session: Session,
    q: SearchText = None,
    site_id: FilterId = None,
    department_id: FilterId = None,
) -> Response:
    actor.require(Permission.READ_KNOWLEDGE)
    doctors = await timetables.find_doctors(session, q=q, site_id=site_id, department_id=department_id, active=None)
    choices = await _choices(session)
    context = {
        "doctors": doctors,
        "q": q or "",
        "site_id": site_id,
        "department_id": department_id,
        "site_names": dict(choices["sites"]),
        "department_names": {k: v.strip("　") for k, v in choices["departments"]},
        "can_edit": actor.can(Permission.EDIT_TIMETABLES),
    }
    if "hx-request" in request.headers:
        return render(request, "knowledge/timetable_doctor_rows.html", context)
    return render(request, "knowledge/timetable_doctors.html", context | choices)


@router.get("/doctors/new")
async def new_doctor_page(request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.EDIT_TIMETABLES)
    return render(request, "knowledge/timetable_doctor_form.html", {"doctor": None, **await _choices(session)})


async def _editable_doctor(session: AsyncSession, actor: Actor, doctor_id: int) -> Doctor:
    actor.require(Permission.EDIT_TIMETABLES)
    doctor = await timetables.get_doctor(session, doctor_id=doctor_id)
    timetables.check_scope(actor, site_id=doctor.site_id, department_id=doctor.department_id)
    return doctor


@router.get("/doctors/{doctor_id}")
async def doctor_page(doctor_id: PathId, request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.READ_KNOWLEDGE)
    doctor = await timetables.get_doctor(session, doctor_id=doctor_id)
    today = _today(request)
    sessions = await timetables.list_sessions(session, doctor_ids=[doctor.id])
    choices = await _choices(session)
    context = {
        "doctor": doctor,
        "slots": {(s.weekday, s.half_day): s for s in sessions},
        "changes": await timetables.upcoming_changes(session, doctor_id=doctor.id, today=today),
        "department_name": dict(choices["departments"]).get(doctor.department_id, "").strip("　"),
        "site_name": dict(choices["sites"]).get(doctor.site_id, ""),
        "can_edit": timetables.can_edit(actor, doctor, Permission.EDIT_TIMETABLES),
        "today": today,
        **_labels(),
    }
    return render(request, "knowledge/timetable_doctor.html", context)


@router.get("/doctors/{doctor_id}/edit")
async def edit_doctor_page(doctor_id: PathId, request: Request, actor: CurrentActor, session: Session) -> Response:
    doctor = await _editable_doctor(session, actor, doctor_id)
    return render(request, "knowledge/timetable_doctor_form.html", {"doctor": doctor, **await _choices(session)})


@router.get("/doctors/{doctor_id}/sessions")
async def sessions_page(doctor_id: PathId, request: Request, actor: CurrentActor, session: Session) -> Response:
    doctor = await _editable_doctor(session, actor, doctor_id)
    sessions = await timetables.list_sessions(session, doctor_ids=[doctor.id])
    context = {"doctor": doctor, "slots": {(s.weekday, s.half_day): s for s in sessions}, **_labels()}
    return render(request, "knowledge/timetable_sessions.html", context)


@router.get("/doctors/{doctor_id}/changes/new")
async def new_change_page(doctor_id: PathId, request: Request, actor: CurrentActor, session: Session) -> Response:
    doctor = await _editable_doctor(session, actor, doctor_id)
    colleagues = await timetables.find_doctors(session, department_id=doctor.department_id)
    context = {
        "doctor": doctor,
        "substitutes": [d for d in colleagues if d.id != doctor.id],
        "today": _today(request),
        **_labels(),
    }
    return render(request, "knowledge/timetable_change_form.html", context)
