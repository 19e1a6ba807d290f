"""Work-order pages: the list with filters, registration in a few keystrokes, the detail with its
timeline and the steps the reader may take, the agent's callbacks due and the department's queue.

The pages read through the services; every change is a JSON call from the browser to /api/workorders
(static/wo-pages.js), so the API's checks, versions and errors are the only ones."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BeforeValidator
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.channels import sms
from patientline.core import clock
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.errors import PermissionDenied
from patientline.core.i18n import N_
from patientline.core.masking import mask_name, mask_phone
from patientline.core.validation import MAX_ID, PathId
from patientline.directory import service as directory
from patientline.directory.pages import FilterId
from patientline.web.deps import CurrentActor, Session
from patientline.web.templating import render
from patientline.workorders import access, attachments, config, followup, queries, service, timing
from patientline.workorders.forms import parse_fields
from patientline.workorders.labels import (
    ACTION_LABELS,
    CLOSE_REASON_LABELS,
    EXTENSION_LABELS,
    OUTCOME_LABELS,
    SMS_STATUS_LABELS,
    STATUS_LABELS,
    URGENCY_LABELS,
    WEEKDAY_LABELS,
    client_texts,
    describe_entry,
    explanation_view,
)
from patientline.workorders.models import Status, WorkOrder, WorkOrderType
from patientline.workorders.policy import DeadlinePolicy, Unit

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
StatusFilter = Annotated[str | None, BeforeValidator(lambda v: v if v in set(Status) else None), Query()]
UrgencyFilter = Annotated[str | None, BeforeValidator(lambda v: v if v in URGENCY_LABELS else None), Query()]
SearchText = Annotated[str | None, Query(max_length=100)]
PageNumber = Annotated[int, Query(ge=1, le=10_000)]
# the forward steps first: the page opens the first one's form
STEP_ORDER = ("accept", "reply", "resolve", "evaluate", "dispatch", "reopen", "close", "return", "merge")
CONTACT_REF = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
DEPARTMENT_TABS = {
    "new": (N_("To accept"), Status.DISPATCHED.value),
    "accepted": (N_("Accepted"), Status.ACCEPTED.value),
    "replied": (N_("Replied"), Status.REPLIED.value),
    "all": (N_("All"), None),
}


def _require_reader(actor: Actor) -> None:
    """As the API's list: the centre sees every order, department handlers theirs."""
    if not (access.sees_everything(actor) or actor.can(Permission.HANDLE_DEPARTMENT_WORK)):
        raise PermissionDenied("You do not have permission to do this.")


def _partial(request: Request) -> bool:
    return "hx-request" in request.headers


async def _department_names(session: AsyncSession) -> dict[int, str]:
    return {row.id: row.name for row in await directory.list_entities(session, kind=directory.DEPARTMENTS)}


async def _lookups(session: AsyncSession) -> dict[str, Any]:
    """What every list needs to show a row: type names and policies, department names, labels."""
    types = await config.list_types(session)
    return {
        "types": {row.id: row for row in types},
        "policies": {row.id: DeadlinePolicy.of(row.policy) for row in types},
        "department_names": await _department_names(session),
        "status_labels": STATUS_LABELS,
        "urgency_labels": URGENCY_LABELS,
        "texts": client_texts(),
    }


def _rows(orders: list[WorkOrder], lookups: dict[str, Any]) -> list[dict[str, Any]]:
    now = clock.now()
    policies: dict[int, DeadlinePolicy] = lookups["policies"]
    return [
        {
            "order": order,
            "phone": mask_phone(order.caller_phone),
            "urgency": queries.urgency_of(order, policies.get(order.type_id, DeadlinePolicy()), now)
            if order.is_open
            else "",
            "callback_overdue": order.callback_due_at is not None and order.callback_due_at < now,
        }
        for order in orders
    ]


def _pages(total: int, page: int) -> dict[str, int]:
    last = max(1, -(-total // PAGE_SIZE))
    return {"page": min(page, last), "last": last, "first_row": (page - 1) * PAGE_SIZE + 1}


# --- the list --------------------------------------------------------------------------------------


@router.get("/workorders")
async def order_list(
    request: Request,
    actor: CurrentActor,
    session: Session,
    q: SearchText = None,
    status: StatusFilter = None,
    type_id: FilterId = None,
    department_id: FilterId = None,
    urgency: UrgencyFilter = None,
    mine: bool = False,
    page: PageNumber = 1,
) -> Response:
    _require_reader(actor)
    where = queries.OrderFilter(
        status=status, type_id=type_id, department_id=department_id, urgency=urgency, text=(q or "").strip() or None,
        owner_id=actor.user_id if mine else None, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
    )  # fmt: skip
    orders, total = await queries.list_orders(session, actor=actor, where=where)
    lookups = await _lookups(session)
    filters = {"q": q or "", "status": status, "type_id": type_id, "department_id": department_id,
               "urgency": urgency, "mine": mine}  # fmt: skip
    context = lookups | {
        "rows": _rows(orders, lookups),
        "total": total,
        "filters": filters,
        "filtered": any(value for value in filters.values()),
        "paging": _pages(total, page),
        "base": "/workorders?" + "".join(f"{key}={quote(str(value))}&" for key, value in filters.items() if value),
        "departments": await directory.department_choices(session),
        "can_create": actor.can(Permission.CREATE_WORK_ORDERS),
    }
    template = "workorders/order_rows.html" if _partial(request) else "workorders/orders.html"
    return render(request, template, context)


# --- registration ----------------------------------------------------------------------------------


def _type_view(row: WorkOrderType) -> dict[str, Any]:
    return {"row": row, "fields": parse_fields(row.fields)}


@router.get("/workorders/new")
async def new_order(
    request: Request,
    actor: CurrentActor,
    session: Session,
    type: Annotated[str | None, Query(max_length=32)] = None,
    phone: Annotated[str | None, Query(max_length=30)] = None,
    contact: Annotated[str | None, Query(max_length=64)] = None,
    name: Annotated[str | None, Query(max_length=100)] = None,
    patient: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    contact_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    """`?type=complaint&phone=...&contact=...&name=...` prefill the form (the contact screen links here);
    the workbench passes ids only (`patient`, `contact_id`): the caller's number stays on the server and
    is shown masked."""
    actor.require(Permission.CREATE_WORK_ORDERS)
    prefill = {
        "phone": (phone or "").strip(),
        "contact": contact if contact and CONTACT_REF.match(contact) else "",
        "name": (name or "").strip(),
    }
    if patient is not None or contact_id is not None:
        async with session.begin():  # the patient's read is audited
            prefill |= await _workbench_prefill(session, actor, patient, contact_id)
    types = [_type_view(row) for row in await config.list_types(session, active_only=True)]
    chosen = next((view["row"] for view in types if view["row"].code == type), None)
    if chosen is None and types:
        chosen = types[0]["row"]
    context = {
        "types": types,
        "chosen": chosen,
        "prefill": prefill,
        "departments": await directory.department_choices(session),
        "texts": client_texts(),
    }
    return render(request, "workorders/order_new.html", context)


async def _workbench_prefill(
    session: AsyncSession, actor: Actor, patient_id: int | None, contact_id: int | None
) -> dict[str, Any]:
    """The workbench's patient (read through patients.access) and contact: the patient's id, the caller's
    number (masked on screen) and name, and the contact's reference."""
    from patientline.contacts import service as contacts
    from patientline.patients import access as patient_access

    found: dict[str, Any] = {}
    contact = await contacts.read(session, actor=actor, contact_id=contact_id) if contact_id else None
    if contact is not None:
        found["contact"] = contact.reference
        if contact.phone:
            found["phone_masked"] = mask_phone(contact.phone)  # the order takes the number from the contact
        if contact.caller_name:
            found["name"] = contact.caller_name
    if patient_id is not None:
        purpose = f"contact:{contact_id}" if contact_id else "workorder"
        patient = await patient_access.read(session, actor=actor, patient_id=patient_id, purpose=purpose)
        found |= {"patient_id": patient.id, "patient_label": f"#{patient.id} {mask_name(patient.name)}"}
        found.setdefault("name", patient.name)
    return found


# --- the detail ------------------------------------------------------------------------------------


def _may_act_as_party(actor: Actor, order: WorkOrder) -> bool:
    """The centre or the responsible department (pause, links, evidence)."""
    return actor.can(Permission.CREATE_WORK_ORDERS) or access.is_department_handler(actor, order.department_id)


async def _references(session: AsyncSession, references: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for reference in references:
        other = await service.find_by_reference(session, reference)
        if other is not None:
            found[reference] = other.id
    return found


async def _extras(session: AsyncSession, actor: Actor, order: WorkOrder, policy: DeadlinePolicy) -> dict[str, Any]:
    """The actions around the steps this reader may take now (the API checks again)."""
    extensions = await followup.extensions(session, order_id=order.id)
    is_handler = access.is_department_handler(actor, order.department_id)
    party = _may_act_as_party(actor, order)
    centre = actor.can(Permission.CREATE_WORK_ORDERS)
    return {
        "extensions": extensions,
        "may_pause": party and order.is_open and order.paused_at is None,
        "may_resume": party and order.paused_at is not None,
        "may_extend": is_handler and order.is_open and order.resolved_at is None and policy.result is not None,
        "extension_pending": any(row.status == "pending" for row in extensions),
        "may_call_back": centre and order.is_open,
        "may_link": party,
        "may_upload": party,
    }


@router.get("/workorders/{order_id:int}")
async def order_detail(request: Request, order_id: PathId, actor: CurrentActor, session: Session) -> Response:
    order = await service.read_order(session, actor=actor, order_id=order_id)
    kind = await service.order_type(session, order.type_id)
    policy = DeadlinePolicy.of(kind.policy)
    names = await _department_names(session)
    files = await attachments.list_for(session, order.id)
    by_entry = {row.timeline_id: row for row in files if row.timeline_id is not None}
    entries = [
        {"entry": entry, "label": ACTION_LABELS.get(entry.action, entry.action), "extra": describe_entry(entry, names),
         "file": by_entry.get(entry.id)}
        for entry in await service.timeline(session, order.id)
    ]  # fmt: skip
    links = await followup.links(session, order)
    merged_into = await service.get_order(session, order.merged_into_id) if order.merged_into_id else None
    explanations = await timing.explain_deadlines(session, order, kind)
    named = ((N_("Reply"), policy.reply), (N_("Result"), policy.result))
    periods = [(label, period) for label, period in named if period is not None]
    context = {
        "order": order,
        "kind": kind,
        "fields": parse_fields(kind.fields),
        "policy": policy,
        "urgency": queries.urgency_of(order, policy) if order.is_open else "",
        "phone": mask_phone(order.caller_phone),
        "department_names": names,
        "co_handlers": await access.co_handlers(session, order.id),
        "entries": entries,
        "files": files,
        "links": links,
        "link_ids": await _references(session, [row.target for row in links if row.kind == "order"]),
        "merged_into": merged_into,
        "explanations": [
            explanation_view(item, label, round_the_clock=period.unit is Unit.HOURS)
            for item, (label, period) in zip(explanations, periods, strict=True)
        ],
        "result_period": policy.result.describe() if policy.result else "",
        "pauses": await followup.pauses(session, order.id),
        "attempts": await followup.attempts(session, order.id),
        "sms": await sms.messages_for(session, related_type="work_order", related_id=order.id),
        "steps": sorted(service.allowed_steps(order, actor), key=STEP_ORDER.index),
        "step_labels": service.STEP_LABELS,
        "departments": await directory.department_choices(session),
        "close_reasons": {key: CLOSE_REASON_LABELS[key] for key in service.CLOSE_REASONS},
        "close_reason_labels": CLOSE_REASON_LABELS,
        "outcome_labels": OUTCOME_LABELS,
        "status_labels": STATUS_LABELS,
        "urgency_labels": URGENCY_LABELS,
        "sms_status_labels": SMS_STATUS_LABELS,
        "extension_labels": EXTENSION_LABELS,
        "weekdays": WEEKDAY_LABELS,
        "max_mb": attachments.MAX_BYTES // (1024 * 1024),
        "allowed_files": attachments.ALLOWED_LABEL,
        "texts": client_texts(),
        "mask_phone": mask_phone,
    }
    context |= await _extras(session, actor, order, policy)
    return render(request, "workorders/order_detail.html", context)


# --- callbacks and the department's queue ----------------------------------------------------------


@router.get("/workorders/callbacks")
async def callbacks(
    request: Request,
    actor: CurrentActor,
    session: Session,
    all: bool = False,
    page: PageNumber = 1,
) -> Response:
    """The agent's callbacks due, the earliest first; `all` shows every agent's."""
    actor.require(Permission.CREATE_WORK_ORDERS)
    where = queries.OrderFilter(callbacks_due=True, open_only=True, owner_id=None if all else actor.user_id,
                                limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)  # fmt: skip
    orders, total = await queries.list_orders(session, actor=actor, where=where)
    lookups = await _lookups(session)
    context = lookups | {
        "rows": _rows(orders, lookups),
        "total": total,
        "all": all,
        "paging": _pages(total, page),
        "base": "/workorders/callbacks?all=true&" if all else "/workorders/callbacks?",
        "outcome_labels": OUTCOME_LABELS,
    }
    template = "workorders/callback_rows.html" if _partial(request) else "workorders/callbacks.html"
    return render(request, template, context)


@router.get("/workorders/department")
async def department_queue(
    request: Request,
    actor: CurrentActor,
    session: Session,
    tab: Annotated[str, Query(pattern="^(new|accepted|replied|all)$")] = "new",
    page: PageNumber = 1,
) -> Response:
    """The handler's portal: what their departments are responsible for or co-handle."""
    actor.require(Permission.HANDLE_DEPARTMENT_WORK)
    counts: dict[str, int] = {}
    for key, (_label, status) in DEPARTMENT_TABS.items():
        if key != tab:
            _, counts[key] = await queries.list_orders(
                session, actor=actor, where=queries.OrderFilter(status=status, limit=1)
            )
    status = DEPARTMENT_TABS[tab][1]
    where = queries.OrderFilter(
        status=status, order_by="received" if status is None else "due", limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    orders, counts[tab] = await queries.list_orders(session, actor=actor, where=where)
    lookups = await _lookups(session)
    rows = _rows(orders, lookups)
    context = lookups | {
        "rows": rows,
        "total": counts[tab],
        "counts": counts,
        "tab": tab,
        "tabs": {key: label for key, (label, _status) in DEPARTMENT_TABS.items()},
        "paging": _pages(counts[tab], page),
        "base": f"/workorders/department?tab={tab}&",
        "partial": _partial(request),
        "handles": {order.id for order in orders if access.is_department_handler(actor, order.department_id)},
    }
    template = "workorders/department_rows.html" if _partial(request) else "workorders/department.html"
    return render(request, template, context)
