"""Doctors and clinic timetables API: doctors, their weekly sessions, stops and substitutions, who is
in when, and the week's grid."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock
from patientline.core.auth.permissions import Permission
from patientline.core.validation import PathId, QueryId
from patientline.knowledge import timetables
from patientline.knowledge.models import Doctor, HalfDay
from patientline.knowledge.timetable_schemas import (
    AvailabilityAnswer,
    AvailabilityRead,
    ChangeCreate,
    ChangeRead,
    DoctorCreate,
    DoctorDeactivate,
    DoctorDetail,
    DoctorRead,
    DoctorUpdate,
    SessionRead,
    SessionsPut,
    WeekRead,
)
from patientline.web.deps import CurrentActor, Session, app_state
from patientline.web.responses import FastJSONResponse

router = APIRouter(prefix="/api/kb", tags=["timetables"])
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)  # a week grid needs room for its seven days


def today(request: Request) -> date:
    return clock.today(app_state(request).settings.timezone)


async def doctor_detail(session: AsyncSession, doctor: Doctor, *, first: date) -> dict[str, Any]:
    sessions = await timetables.list_sessions(session, doctor_ids=[doctor.id])
    changes = await timetables.upcoming_changes(session, doctor_id=doctor.id, today=first)
    detail = DoctorRead.model_validate(doctor).model_dump() | {
        "sessions": [SessionRead.model_validate(s) for s in sessions],
        "changes": [ChangeRead.model_validate(c) for c in changes],
    }
    return DoctorDetail.model_validate(detail).model_dump(mode="json")


@router.get("/doctors", response_model=list[DoctorRead], summary="Doctors: by name, pinyin or initials, title")
async def list_doctors(
    actor: CurrentActor,
    session: Session,
    q: Annotated[str | None, Query(max_length=100)] = None,
    department_id: QueryId = None,
    site_id: QueryId = None,
    include_inactive: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Response:
    """`q` matches the name ("张伟"), its pinyin ("zhang", "zhangwei") or initials ("zw"), the title,
    the speciality or the code; best matches first. Doctors who left are listed only with
    `include_inactive`."""
    actor.require(Permission.READ_KNOWLEDGE)
    doctors = await timetables.find_doctors(
        session,
        q=q,
        department_id=department_id,
        site_id=site_id,
        active=None if include_inactive else True,
        limit=limit,
    )
    return FastJSONResponse([DoctorRead.model_validate(d).model_dump(mode="json") for d in doctors])


@router.post("/doctors", response_model=DoctorDetail, status_code=201, summary="Add a doctor")
async def create_doctor(body: DoctorCreate, request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.EDIT_TIMETABLES)
    async with session.begin():
        doctor = await timetables.create_doctor(session, actor=actor, values=body.model_dump())
        return FastJSONResponse(await doctor_detail(session, doctor, first=today(request)), status_code=201)


@router.get("/doctors/{doctor_id}", response_model=DoctorDetail, summary="A doctor, weekly sessions, changes ahead")
async def get_doctor(doctor_id: PathId, request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.READ_KNOWLEDGE)
    doctor = await timetables.get_doctor(session, doctor_id=doctor_id)
    return FastJSONResponse(await doctor_detail(session, doctor, first=today(request)))


@router.patch("/doctors/{doctor_id}", response_model=DoctorDetail, summary="Change a doctor")
async def update_doctor(
    doctor_id: PathId, body: DoctorUpdate, request: Request, actor: CurrentActor, session: Session
) -> Response:
    actor.require(Permission.EDIT_TIMETABLES)
    changes = body.model_dump(exclude_unset=True, exclude={"version"})
    async with session.begin():
        doctor = await timetables.update_doctor(
            session, actor=actor, doctor_id=doctor_id, expected_version=body.version, changes=changes
        )
        return FastJSONResponse(await doctor_detail(session, doctor, first=today(request)))


@router.post("/doctors/{doctor_id}/deactivate", response_model=DoctorRead, summary="A doctor who left")
async def deactivate_doctor(
    doctor_id: PathId, actor: CurrentActor, session: Session, body: DoctorDeactivate | None = None
) -> Response:
    """Keeps the doctor and their history; they no longer appear in timetables or searches. Send
    `version` to refuse the change if someone else changed the doctor meanwhile."""
    actor.require(Permission.EDIT_TIMETABLES)
    async with session.begin():
        doctor = await timetables.deactivate_doctor(
            session, actor=actor, doctor_id=doctor_id, expected_version=body.version if body else None
        )
        return FastJSONResponse(DoctorRead.model_validate(doctor).model_dump(mode="json"))


@router.put("/doctors/{doctor_id}/sessions", response_model=DoctorDetail, summary="Replace the weekly sessions")
async def put_sessions(
    doctor_id: PathId, body: SessionsPut, request: Request, actor: CurrentActor, session: Session
) -> Response:
    """Weekday 1 (Monday) to 7, half-day `am`, `pm` or `night`, each slot once. The doctor's `version`
    guards against overwriting someone else's edit, and goes up by one."""
    actor.require(Permission.EDIT_TIMETABLES)
    async with session.begin():
        await timetables.set_sessions(
            session,
            actor=actor,
            doctor_id=doctor_id,
            expected_version=body.version,
            sessions=[s.model_dump(mode="json") for s in body.sessions],
        )
        doctor = await timetables.get_doctor(session, doctor_id=doctor_id)
        return FastJSONResponse(await doctor_detail(session, doctor, first=today(request)))


@router.post(
    "/doctors/{doctor_id}/changes", response_model=ChangeRead, status_code=201, summary="Add a stop or substitution"
)
async def add_change(
    doctor_id: PathId, body: ChangeCreate, request: Request, actor: CurrentActor, session: Session
) -> Response:
    """On a date the doctor holds a clinic, today or later. `half_day` empty: the whole day. A
    substitute is another active doctor of the same department."""
    actor.require(Permission.EDIT_TIMETABLES)
    when = today(request)
    async with session.begin():
        change = await timetables.add_change(
            session, actor=actor, doctor_id=doctor_id, values=body.model_dump(mode="python"), today=when
        )
        views = await timetables.upcoming_changes(session, doctor_id=doctor_id, today=change.day)
        view = next(v for v in views if v.id == change.id)
        return FastJSONResponse(ChangeRead.model_validate(view).model_dump(mode="json"), status_code=201)


@router.delete("/doctors/{doctor_id}/changes/{change_id}", status_code=204, summary="Withdraw a stop or substitution")
async def remove_change(
    doctor_id: PathId, change_id: PathId, request: Request, actor: CurrentActor, session: Session
) -> Response:
    actor.require(Permission.EDIT_TIMETABLES)
    async with session.begin():
        await timetables.remove_change(
            session, actor=actor, doctor_id=doctor_id, change_id=change_id, today=today(request)
        )
    return Response(status_code=204)


@router.get(
    "/doctors/{doctor_id}/availability", response_model=AvailabilityAnswer, summary="Is the doctor in on that day?"
)
async def get_availability(
    doctor_id: PathId, day: date, actor: CurrentActor, session: Session, half_day: HalfDay | None = None
) -> Response:
    """Each half-day asked (or all three): `in`, `stopped`, `substituted` (with the substitute) or
    `not_scheduled`, with the clinic's kind and room, and the answer as one sentence."""
    actor.require(Permission.READ_KNOWLEDGE)
    half = half_day.value if half_day else None
    slots = await timetables.availability(session, doctor_id=doctor_id, day=day, half_day=half)
    answer = await timetables.answer_is_in(session, doctor_name_or_id=doctor_id, day=day, half_day=half)
    body = AvailabilityAnswer(
        doctor_id=doctor_id, answer=answer, slots=[AvailabilityRead.model_validate(s) for s in slots]
    )
    return FastJSONResponse(body.model_dump(mode="json"))


@router.get("/timetable", response_model=WeekRead, summary="Seven days of clinics, by department")
async def get_week(
    request: Request,
    actor: CurrentActor,
    session: Session,
    start: Annotated[date | None, Query(ge=FIRST_DAY, le=LAST_DAY)] = None,
    department_id: QueryId = None,
    site_id: QueryId = None,
    doctor_id: QueryId = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """From `start` (default: this week's Monday), with stops and substitutions applied."""
    actor.require(Permission.READ_KNOWLEDGE)
    grid = await timetables.week(
        session,
        start=start or timetables.monday_of(today(request)),
        department_id=department_id,
        site_id=site_id,
        doctor_id=doctor_id,
        q=q,
    )
    return FastJSONResponse(WeekRead.model_validate(grid).model_dump(mode="json"))
