"""Directory pages: list with search, new/edit forms (they submit to the JSON API), history, CSV
import with a dry run, export."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BeforeValidator
from pydantic import Field as Constraint
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import audit
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.auth.service import list_users
from patientline.core.errors import DomainError, NotFound
from patientline.core.i18n import gettext
from patientline.core.validation import MAX_ID, PathId
from patientline.directory import imports, service
from patientline.directory.models import TRIAGE_DEPARTMENTS, DepartmentKind, TeamKind
from patientline.web.deps import CurrentActor, Session
from patientline.web.templating import render

router = APIRouter(prefix="/directory", include_in_schema=False)

# the filter form sends `site_id=` for "All"
FilterId = Annotated[Annotated[int, Constraint(ge=1, le=MAX_ID)] | None, BeforeValidator(lambda v: v or None), Query()]


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    type: str = "text"  # text | textarea | select | checkbox | tel | email | multiselect | skills
    options: str | None = (
        None  # sites | departments | users | teams | department_kinds | team_kinds | triage_departments
    )
    required: bool = False
    hint: str = ""


@dataclass(frozen=True)
class Page:
    path: str
    kind: service.Kind
    title: str
    singular: str
    columns: tuple[tuple[str, str], ...]  # (attribute or lookup, label)
    fields: tuple[Field, ...] = field(default=())


CODE = Field("code", "Code", required=True, hint="Letters, digits, '-', '_' or '.'")
NAME = Field("name", "Name", required=True)
ACTIVE = Field("is_active", "Active", "checkbox")
PHONE = Field("phone", "Phone", "tel", hint="e.g. 010-6709 8585 or 13800138000")

PAGES: dict[str, Page] = {
    p.path: p
    for p in (
        Page(
            "sites",
            service.SITES,
            "Sites",
            "site",
            (("code", "Code"), ("name", "Name"), ("address", "Address"), ("phone", "Phone"), ("hours", "Hours")),
            (
                CODE,
                NAME,
                Field("address", "Address"),
                PHONE,
                Field("hours", "Opening hours", hint="08:00-12:00,13:30-17:30"),
                ACTIVE,
            ),
        ),
        Page(
            "departments",
            service.DEPARTMENTS,
            "Departments",
            "department",
            (
                ("code", "Code"),
                ("name", "Name"),
                ("site_id", "Site"),
                ("kind", "Kind"),
                ("location", "Location"),
                ("phone", "Phone"),
                ("hours", "Hours"),
            ),
            (
                CODE,
                NAME,
                Field("site_id", "Site", "select", "sites", required=True),
                Field("parent_id", "Parent department", "select", "departments"),
                Field("kind", "Kind", "select", "department_kinds", required=True),
                Field("location", "Location"),
                PHONE,
                Field("hours", "Clinic hours", hint="e.g. 周一至周五 08:00-17:00"),
                Field(
                    "triage_department",
                    "Triage department",
                    "select",
                    "triage_departments",
                    hint="Which standard department the assistant's triage suggests this one for",
                ),
                Field("description", "Description", "textarea"),
                ACTIVE,
            ),
        ),
        Page(
            "teams",
            service.TEAMS,
            "Teams",
            "team",
            (
                ("code", "Code"),
                ("name", "Name"),
                ("kind", "Kind"),
                ("site_id", "Site"),
                ("department_id", "Department"),
            ),
            (
                CODE,
                NAME,
                Field("kind", "Kind", "select", "team_kinds", required=True),
                Field("site_id", "Site", "select", "sites", hint="Empty: spans all sites"),
                Field("department_id", "Department", "select", "departments"),
                Field("description", "Description", "textarea"),
                ACTIVE,
            ),
        ),
        Page(
            "skills",
            service.SKILLS,
            "Skills",
            "skill",
            (("code", "Code"), ("name", "Name"), ("description", "Description")),
            (CODE, NAME, Field("description", "Description", "textarea"), ACTIVE),
        ),
        Page(
            "staff",
            service.STAFF,
            "Staff",
            "staff member",
            (
                ("code", "Employee no."),
                ("name", "Name"),
                ("title", "Title"),
                ("department_id", "Department"),
                ("phone", "Phone"),
                ("is_handler", "Handler"),
            ),
            (
                Field("code", "Employee no.", required=True),
                NAME,
                Field("title", "Title"),
                Field("site_id", "Site", "select", "sites"),
                Field("department_id", "Department", "select", "departments"),
                Field("user_id", "User account", "select", "users"),
                PHONE,
                Field("email", "Email", "email"),
                Field("is_handler", "Receives the department's work orders", "checkbox"),
                Field("team_ids", "Teams", "multiselect", "teams"),
                Field("skills", "Skills and levels", "skills"),
                ACTIVE,
            ),
        ),
    )
}


KIND_LABELS = {
    "clinical": "Clinical",
    "medical_technology": "Medical technology",
    "administrative": "Administrative",
    "skill_group": "Skill group",
    "department_seats": "Department seats",
    "expert_centre": "Expert centre",
}


def _page(path: str) -> Page:
    if path not in PAGES:
        raise NotFound("The page or record you asked for does not exist.")
    return PAGES[path]


async def _options(session: AsyncSession) -> dict[str, list[tuple[Any, str]]]:
    teams = await service.list_entities(session, kind=service.TEAMS)
    skills = await service.list_entities(session, kind=service.SKILLS)
    users = await list_users(session, limit=1000)
    return {
        "sites": await service.site_choices(session),
        "departments": await service.department_choices(session),
        "teams": [(t.id, t.name) for t in teams],
        "skills": [(s.id, s.name) for s in skills],
        "users": [(u.id, f"{u.display_name} ({u.username})") for u in users],
        "department_kinds": [(k.value, KIND_LABELS[k.value]) for k in DepartmentKind],
        "team_kinds": [(k.value, KIND_LABELS[k.value]) for k in TeamKind],
        "triage_departments": [(name, name) for name in TRIAGE_DEPARTMENTS],
    }


@router.get("/{path}")
async def list_page(
    path: str,
    request: Request,
    actor: CurrentActor,
    session: Session,
    q: str | None = None,
    site_id: FilterId = None,
    active: str | None = None,
) -> Response:
    page = _page(path)
    actor.require(Permission.READ_DIRECTORY)
    active_filter = {"yes": True, "no": False}.get(active or "")
    where = service.ListFilter(text=q or None, site_id=site_id, active=active_filter, limit=1000)
    rows = await service.list_entities(session, kind=page.kind, where=where)
    depth: dict[int, int] = {}
    if page.kind is service.DEPARTMENTS and not q:
        ordered = service.department_tree(rows)
        rows, depth = [d for d, _ in ordered], {d.id: level for d, level in ordered}
    sites = await service.site_choices(session)
    lookups = {
        "site_id": dict(sites),
        "department_id": {k: v.strip("　") for k, v in await service.department_choices(session)},
    }
    template = "directory/rows.html" if "hx-request" in request.headers else "directory/list.html"
    return render(
        request,
        template,
        {
            "page": page,
            "rows": rows,
            "depth": depth,
            "lookups": lookups,
            "q": q or "",
            "site_id": site_id,
            "active": active or "",
            "sites": sites,
            "kind_labels": KIND_LABELS,
            "can_write": actor.can(Permission.WRITE_DIRECTORY),
        },
    )


async def _form(request: Request, actor: Actor, session: AsyncSession, page: Page, row: Any | None) -> Response:
    """A new record (writers only), or a record: editable for writers, read-only for everyone else."""
    actor.require(Permission.WRITE_DIRECTORY if row is None else Permission.READ_DIRECTORY)
    values: dict[str, Any] = {}
    history: list[audit.AuditEntry] = []
    people: list[Any] = []
    if row is not None:
        values = page.kind.snapshot(row)
        if page.kind is service.STAFF:
            values |= await service.staff_links(session, staff_id=row.id)
        people = await service.people_of(session, kind=page.kind, entity_id=row.id)
        history = await audit.search(session, target_type=page.kind.name, target_id=str(row.id), limit=20)
    return render(
        request,
        "directory/form.html",
        {
            "page": page,
            "row": row,
            "values": values,
            "options": await _options(session),
            "history": history,
            "people": people,
            "can_write": actor.can(Permission.WRITE_DIRECTORY),
        },
    )


@router.get("/{path}/new")
async def new_page(path: str, request: Request, actor: CurrentActor, session: Session) -> Response:
    return await _form(request, actor, session, _page(path), None)


@router.get("/{path}/import")
async def import_page(path: str, request: Request, actor: CurrentActor) -> Response:
    page = _page(path)
    actor.require(Permission.WRITE_DIRECTORY)
    return render(request, "directory/import.html", {"page": page, "columns": imports.LAYOUTS[page.kind.name].columns})


@router.post("/{path}/import")
async def import_submit(
    path: str,
    request: Request,
    actor: CurrentActor,
    session: Session,
    file: Annotated[UploadFile, File()],
    dry_run: Annotated[bool, Form()] = False,
) -> Response:
    page = _page(path)
    actor.require(Permission.WRITE_DIRECTORY)
    try:
        raw = await file.read()
        async with session.begin():
            report = await imports.run_import(session, actor=actor, kind=page.kind, raw=raw, dry_run=dry_run)
    except DomainError as exc:
        return render(
            request,
            "directory/import_report.html",
            {"page": page, "failure": exc.localized_message(gettext), "details": exc.details},
        )
    return render(request, "directory/import_report.html", {"page": page, "report": report})


@router.get("/{path}/{entity_id:int}")
async def edit_page(path: str, entity_id: PathId, request: Request, actor: CurrentActor, session: Session) -> Response:
    page = _page(path)
    row = await service.get(session, kind=page.kind, entity_id=entity_id)
    return await _form(request, actor, session, page, row)
