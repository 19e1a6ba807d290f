"""Administration pages: users, API tokens, the audit log, jobs (dead letters), working days."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from patientline.core import audit, clock, jobs, workcal
from patientline.core.auth import service as auth
from patientline.core.auth.permissions import Permission, Role
from patientline.core.validation import PathId, QueryId
from patientline.directory import service as directory
from patientline.web.deps import CurrentActor, Session, app_state
from patientline.web.templating import render

router = APIRouter(prefix="/admin", include_in_schema=False)


async def _scope_options(session: Session) -> dict[str, Any]:
    return {
        "sites": await directory.site_choices(session),
        "departments": await directory.department_choices(session),
        "roles": [r.value for r in Role],
    }


@router.get("/users")
async def users_page(request: Request, actor: CurrentActor, session: Session, q: str | None = None) -> Response:
    actor.require(Permission.MANAGE_USERS)
    users = await auth.list_users(session, text=q or None, limit=500)
    now = clock.now()
    return render(request, "admin/users.html", {"users": users, "q": q or "", "now": now})


@router.get("/users/new")
async def new_user_page(request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.MANAGE_USERS)
    return render(
        request,
        "admin/user_form.html",
        {"user": None, "scope": ([], []), **await _scope_options(session), "history": []},
    )


@router.get("/users/{user_id}")
async def edit_user_page(user_id: PathId, request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.MANAGE_USERS)
    user = await auth.get_user(session, user_id=user_id)
    history = await audit.search(session, target_type="user", target_id=str(user_id), limit=30)
    return render(
        request,
        "admin/user_form.html",
        {
            "user": user,
            "scope": await auth.user_scope(session, user_id=user_id),
            **await _scope_options(session),
            "history": history,
            "locked": bool(user.locked_until and user.locked_until > clock.now()),
        },
    )


@router.get("/tokens")
async def tokens_page(request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.MANAGE_TOKENS)
    users = {u.id: u for u in await auth.list_users(session, limit=1000)}
    return render(
        request,
        "admin/tokens.html",
        {
            "tokens": await auth.list_tokens(session),
            "users": users,
            "scopes": [p.value for p in Permission],
        },
    )


def _local_day_start(day: date | None, tz: str) -> datetime | None:
    if day is None:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))


@router.get("/audit")
async def audit_page(
    request: Request,
    actor: CurrentActor,
    session: Session,
    q: str | None = None,
    action: str | None = None,
    user: str | None = None,
    since: date | None = None,
    until: date | None = None,
    before_id: QueryId = None,
) -> Response:
    actor.require(Permission.READ_AUDIT)
    tz = app_state(request).settings.timezone
    end = _local_day_start(until, tz)
    entries = await audit.search(
        session,
        text=q or None,
        action=action or None,
        actor_name=user or None,
        since=_local_day_start(since, tz),
        until=end + timedelta(days=1) if end else None,
        before_id=before_id,
        limit=50,
    )
    filters = {"q": q or "", "action": action or "", "user": user or "", "since": since, "until": until}
    template = "admin/audit_rows.html" if "hx-request" in request.headers else "admin/audit.html"
    return render(request, template, {"entries": entries, "filters": filters})


@router.get("/jobs")
async def jobs_page(request: Request, actor: CurrentActor, session: Session, status: str = "dead") -> Response:
    actor.require(Permission.MANAGE_JOBS)
    return render(
        request,
        "admin/jobs.html",
        {
            "jobs": await jobs.list_jobs(session, status=status or None, limit=200),
            "counts": await jobs.count_by_status(session),
            "status": status,
        },
    )


@router.get("/calendar")
async def calendar_page(request: Request, actor: CurrentActor, session: Session, year: int | None = None) -> Response:
    actor.require(Permission.MANAGE_CALENDAR)
    calendar = await workcal.load(session, timezone=app_state(request).settings.timezone)
    local_today = clock.today(app_state(request).settings.timezone)
    year = year if year and 2000 <= year <= 2100 else local_today.year
    months = [_month(calendar, year, m) for m in range(1, 13)]
    return render(
        request,
        "admin/calendar.html",
        {
            "year": year,
            "months": months,
            "coverage": calendar.year_coverage(year).value,
            "overrides": await workcal.list_overrides(session, year=year),
            "today": local_today,
        },
    )


def _month(calendar: workcal.WorkCalendar, year: int, month: int) -> dict[str, Any]:
    first = date(year, month, 1)
    days = []
    day = first
    while day.month == month:
        days.append(calendar.day_status(day))
        day += timedelta(days=1)
    return {"month": month, "lead": first.weekday(), "days": days}
