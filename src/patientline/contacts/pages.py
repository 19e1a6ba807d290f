"""Contact pages: the filterable list (with the export and the handover notice), a contact's page
(coding from the disposition tree, notes, patient, links, close), the disposition tree editor and the
shift handover log.

The pages read through the services; every change is a JSON call from the browser to the API
(static/contacts.js), so the API's checks, versions and errors are the only ones."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BeforeValidator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.contacts import dispositions, handover, labels, queries, service
from patientline.contacts.models import Contact
from patientline.contacts.router import WORKBENCH_PATIENT, links_read, user_names
from patientline.contacts.schemas import Channel, ContactStatus, Direction
from patientline.core.auth.models import User
from patientline.core.auth.permissions import Permission
from patientline.core.errors import InvalidInput, PermissionDenied
from patientline.core.i18n import N_
from patientline.core.masking import mask_name, mask_phone
from patientline.core.validation import PathId
from patientline.directory.pages import FilterId
from patientline.routing import service as routing
from patientline.web.deps import CurrentActor, Session
from patientline.web.templating import render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50


def _day_or_none(value: Any) -> date | None:
    """A filter's day; anything else (empty, mistyped) is no filter."""
    try:
        return date.fromisoformat(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


def _choice(allowed: tuple[str, ...]) -> Any:
    return BeforeValidator(lambda v: v if v in allowed else None)


ChannelFilter = Annotated[Channel | None, _choice(tuple(labels.CHANNEL_LABELS)), Query()]
DirectionFilter = Annotated[Direction | None, _choice(tuple(labels.DIRECTION_LABELS)), Query()]
StatusFilter = Annotated[ContactStatus | None, _choice(tuple(labels.STATUS_LABELS)), Query()]
DayFilter = Annotated[date | None, BeforeValidator(_day_or_none), Query()]
SearchText = Annotated[str | None, Query(max_length=100)]
PhoneText = Annotated[str | None, Query(max_length=30)]
PageNumber = Annotated[int, Query(ge=1, le=10_000)]

CLIENT_TEXTS = {
    "stale": N_("This record was changed by someone else; reload and try again."),
    "reveal_reason": N_("Why do you need the full number?"),
    "confirm_close": N_("Close this contact with the codes chosen?"),
    "confirm_delete": N_("Delete this code?"),
    "new_name": N_("New name"),
    "saved": N_("Saved"),
}


def _texts() -> dict[str, str]:
    from patientline.core.i18n import gettext

    return {key: gettext(text) for key, text in CLIENT_TEXTS.items()}


def _require_handler(actor: Any) -> None:
    actor.require(Permission.HANDLE_CONTACTS)


def _partial(request: Request) -> bool:
    return "hx-request" in request.headers


def _pages(total: int, page: int) -> dict[str, int]:
    last = max(1, -(-total // PAGE_SIZE))
    return {"page": min(page, last), "last": last, "first_row": (page - 1) * PAGE_SIZE + 1}


async def _lookups(session: AsyncSession) -> dict[str, Any]:
    tree = await dispositions.load_tree(session)
    agents = await session.execute(
        select(User.id, User.display_name).where(User.is_active.is_(True)).order_by(User.display_name)
    )
    return {
        "tree": tree,
        "codes": [(row, depth) for row, depth in tree.walk()],
        "queues": {row.id: row.name for row in await routing.list_queues(session)},
        "agents": list(agents),
        "names": await user_names(session),
        "channel_labels": labels.CHANNEL_LABELS,
        "direction_labels": labels.DIRECTION_LABELS,
        "status_labels": labels.STATUS_LABELS,
        "verified_labels": labels.VERIFIED_LABELS,
        "shift_labels": labels.SHIFT_LABELS,
        "link_labels": labels.LINK_LABELS,
        "texts": _texts(),
    }


def _rows(contacts: list[Contact], codes: dict[int, list[int]], tree: dispositions.Tree) -> list[dict[str, Any]]:
    return [
        {
            "contact": row,
            "phone": mask_phone(row.phone),
            "caller": mask_name(row.caller_name),
            "codes": [tree.by_id[code].name for code in codes.get(row.id, []) if code in tree.by_id],
        }
        for row in contacts
    ]


# --- the list --------------------------------------------------------------------------------------


@router.get("/contacts")
async def contact_list(
    request: Request,
    actor: CurrentActor,
    session: Session,
    q: SearchText = None,
    date_from: DayFilter = None,
    date_to: DayFilter = None,
    channel: ChannelFilter = None,
    direction: DirectionFilter = None,
    status: StatusFilter = None,
    disposition_id: FilterId = None,
    agent_id: FilterId = None,
    queue_id: FilterId = None,
    phone: PhoneText = None,
    mine: bool = False,
    page: PageNumber = 1,
) -> Response:
    _require_handler(actor)
    filters: dict[str, Any] = {
        "q": (q or "").strip(), "date_from": date_from, "date_to": date_to, "channel": channel,
        "direction": direction, "status": status, "disposition_id": disposition_id,
        "agent_id": actor.user_id if mine else agent_id, "queue_id": queue_id, "phone": (phone or "").strip(),
    }  # fmt: skip
    where = queries.ContactFilter(
        date_from=date_from, date_to=date_to, channel=channel, direction=direction, agent_id=filters["agent_id"],
        queue_id=queue_id, disposition_id=disposition_id, status=status, phone=filters["phone"] or None,
        text=filters["q"] or None, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
    )  # fmt: skip
    problem = ""
    try:
        contacts, total = await queries.search(session, where)
    except InvalidInput as exc:  # a mistyped phone or reversed dates: say so above an empty list
        contacts, total, problem = [], 0, exc.message
    lookups = await _lookups(session)
    shown = {key: value for key, value in filters.items() if value}
    if mine:
        shown.pop("agent_id", None)
        shown["mine"] = "true"
    query = urlencode({key: str(value) for key, value in shown.items()})
    export = {key: str(value) for key, value in filters.items() if value}
    context = lookups | {
        "rows": _rows(contacts, await service.dispositions_of(session, [c.id for c in contacts]), lookups["tree"]),
        "total": total,
        "filters": filters,
        "mine": mine,
        "filtered": bool(shown),
        "problem": problem,
        "paging": _pages(total, page),
        "base": "/contacts?" + (query + "&" if query else ""),
        "export_href": "/api/contacts/export.csv" + ("?" + urlencode(export) if export else ""),
        "latest_handover": None if _partial(request) else await handover.latest(session),
    }
    template = "contacts/contact_rows.html" if _partial(request) else "contacts/contacts.html"
    return render(request, template, context)


# --- one contact -----------------------------------------------------------------------------------


@router.get("/contacts/{contact_id:int}")
async def contact_detail(request: Request, contact_id: PathId, actor: CurrentActor, session: Session) -> Response:
    contact = await service.read(session, actor=actor, contact_id=contact_id)
    lookups = await _lookups(session)
    chosen = (await service.dispositions_of(session, [contact.id]))[contact.id]
    tree: dispositions.Tree = lookups["tree"]
    editable = contact.anonymised_at is None and (contact.status == "open" or actor.can(Permission.SUPERVISE))
    context = lookups | {
        "contact": contact,
        "phone": mask_phone(contact.phone),
        "chosen": set(chosen),
        "chosen_paths": [tree.path_name(code) for code in chosen if code in tree.by_id],
        "choosable": {row.id for row in tree.by_id.values() if tree.effectively_active(row.id)},
        "links": await links_read(session, await service.links_of(session, contact.id)),
        "patient_href": WORKBENCH_PATIENT.format(id=contact.patient_id) if contact.patient_id else None,
        "editable": editable,
        "may_close": contact.status == "open" and contact.anonymised_at is None,
        "may_link": contact.anonymised_at is None,
    }
    return render(request, "contacts/contact_detail.html", context)


# --- the disposition tree --------------------------------------------------------------------------


@router.get("/contacts/dispositions")
async def disposition_editor(request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.CONFIGURE_CONTACTS)
    tree = await dispositions.load_tree(session)
    used = await dispositions.codes_in_use(session)
    rows = [
        {
            "row": row,
            "depth": depth,
            "in_use": row.id in used,
            "has_children": bool(tree.children.get(row.id)),
            "siblings": [kid.id for kid in tree.children.get(row.parent_id, [])],
            "effective": tree.effectively_active(row.id),
        }
        for row, depth in tree.walk()
    ]
    context = {"rows": rows, "max_depth": dispositions.MAX_DEPTH, "texts": _texts()}
    return render(request, "contacts/dispositions.html", context)


# --- the shift handover ----------------------------------------------------------------------------


@router.get("/contacts/handover")
async def handover_log(
    request: Request, actor: CurrentActor, session: Session, page: PageNumber = 1, pending: bool = False
) -> Response:
    if not actor.can(Permission.HANDLE_CONTACTS):
        raise PermissionDenied("You do not have permission to do this.")
    size = 20
    items, total = await handover.list_handovers(
        session, actor=actor, limit=size, offset=(page - 1) * size, pending_only=pending
    )
    shift_date, shift = handover.current_shift()
    last = max(1, -(-total // size))
    context = {
        "handovers": items,
        "total": total,
        "pending": pending,
        "names": await user_names(session),
        "shift_labels": labels.SHIFT_LABELS,
        "today": shift_date.isoformat(),
        "shift": shift,
        "paging": {"page": min(page, last), "last": last},
        "base": "/contacts/handover?" + ("pending=true&" if pending else ""),
        "texts": _texts(),
    }
    return render(request, "contacts/handover.html", context)
