"""The start page: what this person can open, counts, the latest changes."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from patientline.core import audit, clock
from patientline.core.auth.permissions import Permission
from patientline.core.i18n import gettext
from patientline.core.workcal import load as load_calendar
from patientline.directory import service as directory
from patientline.web.deps import CurrentActor, Session, app_state
from patientline.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request, actor: CurrentActor, session: Session) -> Response:
    tiles = [
        {
            "label": "Departments",
            "href": "/directory/departments",
            "value": await directory.count(session, kind=directory.DEPARTMENTS),
        },
        {"label": "Sites", "href": "/directory/sites", "value": await directory.count(session, kind=directory.SITES)},
        {"label": "Teams", "href": "/directory/teams", "value": await directory.count(session, kind=directory.TEAMS)},
        {"label": "Staff", "href": "/directory/staff", "value": await directory.count(session, kind=directory.STAFF)},
    ]
    recent = await audit.search(session, limit=8) if actor.can(Permission.READ_AUDIT) else []
    warning = None
    if actor.can(Permission.MANAGE_CALENDAR):
        calendar = await load_calendar(session)
        next_year = clock.now().astimezone(ZoneInfo(app_state(request).settings.timezone)).year + 1
        if not calendar.covered(next_year):
            warning = gettext(
                "Holidays for {year} are not known yet; deadlines in {year} count Monday to "
                "Friday until you enter them."
            ).format(year=next_year)
    return render(
        request,
        "home.html",
        {"tiles": tiles, "recent": recent, "calendar_warning": warning},
    )
