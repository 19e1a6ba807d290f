"""Admin API beyond accounts: the audit log, the job table's dead letters, the working-day calendar."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import AwareDatetime, Field

from patientline.core import audit, jobs, workcal
from patientline.core.auth.permissions import Permission
from patientline.core.validation import PathId, QueryId, ReadModel, StrictModel
from patientline.web.deps import CurrentActor, Session

router = APIRouter(prefix="/api", tags=["administration"])


class AuditRead(ReadModel):
    id: int
    at: datetime
    actor_id: int | None
    actor_name: str
    via: str
    ip: str | None
    request_id: str | None
    action: str
    target_type: str | None
    target_id: str | None
    reason: str | None
    before: dict[str, object] | None
    after: dict[str, object] | None


@router.get("/audit", response_model=list[AuditRead])
async def api_audit(
    actor: CurrentActor,
    session: Session,
    q: Annotated[str | None, Query(max_length=100)] = None,
    action: Annotated[str | None, Query(max_length=80)] = None,
    user: Annotated[str | None, Query(max_length=64)] = None,
    target_type: Annotated[str | None, Query(max_length=60)] = None,
    target_id: Annotated[str | None, Query(max_length=60)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    before_id: QueryId = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[AuditRead]:
    """Newest first; page backwards with `before_id`."""
    actor.require(Permission.READ_AUDIT)
    rows = await audit.search(
        session,
        text=q,
        action=action,
        actor_name=user,
        target_type=target_type,
        target_id=target_id,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit,
    )
    return [AuditRead.model_validate(r) for r in rows]


class JobRead(ReadModel):
    id: int
    kind: str
    status: str
    attempts: int
    max_attempts: int
    run_at: datetime
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


@router.get("/jobs", response_model=list[JobRead])
async def api_jobs(
    actor: CurrentActor,
    session: Session,
    status: Annotated[str | None, Query(pattern="^(pending|running|done|dead|discarded)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[JobRead]:
    actor.require(Permission.MANAGE_JOBS)
    return [JobRead.model_validate(j) for j in await jobs.list_jobs(session, status=status, limit=limit)]


@router.post("/jobs/{job_id}/retry", response_model=JobRead)
async def api_retry_job(job_id: PathId, actor: CurrentActor, session: Session) -> JobRead:
    actor.require(Permission.MANAGE_JOBS)
    async with session.begin():
        job = await jobs.retry_dead(session, actor=actor, job_id=job_id)
        return JobRead.model_validate(job)


@router.post("/jobs/{job_id}/discard", response_model=JobRead)
async def api_discard_job(job_id: PathId, actor: CurrentActor, session: Session) -> JobRead:
    actor.require(Permission.MANAGE_JOBS)
    async with session.begin():
        job = await jobs.discard_dead(session, actor=actor, job_id=job_id)
        return JobRead.model_validate(job)


class OverrideIn(StrictModel):
    is_working_day: bool
    note: Annotated[str, Field(min_length=1, max_length=workcal.NOTE_MAX_LENGTH)]


class OverrideRead(ReadModel):
    day: date
    is_working_day: bool
    note: str


@router.get("/calendar/overrides", response_model=list[OverrideRead])
async def api_list_overrides(
    actor: CurrentActor, session: Session, year: Annotated[int | None, Query(ge=2000, le=2100)] = None
) -> list[OverrideRead]:
    actor.require(Permission.READ_DIRECTORY)
    return [OverrideRead.model_validate(o) for o in await workcal.list_overrides(session, year=year)]


@router.put("/calendar/overrides/{day}", response_model=OverrideRead)
async def api_set_override(day: date, body: OverrideIn, actor: CurrentActor, session: Session) -> OverrideRead:
    actor.require(Permission.MANAGE_CALENDAR)
    async with session.begin():
        override = await workcal.set_override(
            session, actor=actor, day=day, is_working_day=body.is_working_day, note=body.note
        )
        return OverrideRead.model_validate(override)


@router.delete("/calendar/overrides/{day}", status_code=204)
async def api_delete_override(day: date, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.MANAGE_CALENDAR)
    async with session.begin():
        await workcal.delete_override(session, actor=actor, day=day)
    return Response(status_code=204)
