from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from patientline.core.auth.permissions import ROLE_LABELS
from patientline.core.config import get_settings
from patientline.core.i18n import N_, current_locale, gettext, ngettext
from patientline.core.validation import display_phone
from patientline.web.nav import navigation
from patientline.workorders.notify import TITLES as WORK_ORDER_TITLES

TEMPLATE_DIRS = [
    Path(__file__).resolve().parent / "templates",
    Path(__file__).resolve().parent.parent / "core" / "templates",
    Path(__file__).resolve().parent.parent / "directory" / "templates",
    Path(__file__).resolve().parent.parent / "knowledge" / "templates",
    Path(__file__).resolve().parent.parent / "channels" / "templates",
    Path(__file__).resolve().parent.parent / "workorders" / "templates",
    Path(__file__).resolve().parent.parent / "routing" / "templates",
    Path(__file__).resolve().parent.parent / "contacts" / "templates",
    Path(__file__).resolve().parent.parent / "patients" / "templates",
    Path(__file__).resolve().parent.parent / "voice" / "templates",
]

templates = Jinja2Templates(directory=[str(p) for p in TEMPLATE_DIRS])
templates.env.add_extension("jinja2.ext.i18n")
templates.env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
templates.env.globals["current_locale"] = current_locale.get


def localtime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """UTC in the database, the hospital's local time on screen."""
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(get_settings().timezone)).strftime(fmt)


templates.env.filters["localtime"] = localtime
templates.env.filters["phone"] = display_phone


def role_label(role: str) -> str:
    return gettext(ROLE_LABELS.get(role, role))


templates.env.globals["role_label"] = role_label
templates.env.filters["role_label"] = role_label

CLIENT_MESSAGES = {
    "error": N_("Something went wrong."),
    "offline": N_("The server cannot be reached."),
    "saved": N_("Saved"),
    "directory.changed": N_("{entity} {change}: {name}"),
    "jobs.dead_lettered": N_("Job {kind} #{job_id} failed"),
    "auth.locked_out": N_("{username} is locked out until {locked_until}"),
    "entity.site": N_("Site"),
    "entity.department": N_("Department"),
    "entity.team": N_("Team"),
    "entity.skill": N_("Skill"),
    "entity.staff": N_("Staff"),
    "change.created": N_("created"),
    "change.updated": N_("updated"),
    "change.deleted": N_("deleted"),
}
# Notifications carry their title as an English msgid; the tray shows it in the reader's language.
NOTIFICATION_TITLES = (
    N_("A knowledge item waits for review"),
    N_("An answer was marked outdated"),
    N_("A quiz was assigned to you"),
    N_("Emergency words in a web chat"),
    *WORK_ORDER_TITLES,
)
CLIENT_MESSAGES |= {f"notification:{title}": title for title in NOTIFICATION_TITLES}


def client_messages() -> dict[str, str]:
    """What app.js shows, in the page's language."""
    return {key: gettext(text) for key, text in CLIENT_MESSAGES.items()}


templates.env.globals["client_messages"] = client_messages


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    actor = getattr(request.state, "actor", None)
    base = {
        "actor": actor,
        "csrf_token": actor.csrf_token if actor else request.cookies.get("pl_csrf", ""),
        "nav": navigation(actor, request.url.path) if actor else [],
        "locale": current_locale.get(),
        "path": request.url.path,
    }
    return templates.TemplateResponse(request, name, base | (context or {}), status_code=status_code, headers=headers)
