"""The centre's pages over work orders: the supervision list (督办) with live countdowns, bulk reminders
and extension decisions; the reports with charts and exports; the administrator's types and the
departments' contacts. Forms post JSON to the API; the pages only read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BeforeValidator
from pydantic import Field as Constraint
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.channels import sms_templates
from patientline.core import clock
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.auth.service import list_users
from patientline.core.errors import InvalidInput, PermissionDenied
from patientline.core.i18n import N_, gettext
from patientline.core.validation import MAX_ID, PathId
from patientline.directory import service as directory
from patientline.web.deps import CurrentActor, Session, app_state
from patientline.web.templating import render
from patientline.workorders import config, followup, queries, reports, service
from patientline.workorders.forms import FieldKind
from patientline.workorders.models import Extension, TypeGroup, WorkOrder, WorkOrderType
from patientline.workorders.policy import DeadlinePolicy, Period, Unit
from patientline.workorders.schemas import TypeRead

router = APIRouter(prefix="/workorders", include_in_schema=False)

FilterId = Annotated[Annotated[int, Constraint(ge=1, le=MAX_ID)] | None, BeforeValidator(lambda v: v or None), Query()]
UrgencyFilter = Annotated[
    Literal["overdue", "soon", "paused", "escalated"] | None, BeforeValidator(lambda v: v or None), Query()
]
DateText = Annotated[str | None, Query(max_length=20)]

URGENCY_LABELS = {
    "overdue": N_("Overdue"),
    "soon": N_("Due within a day"),
    "paused": N_("Clock stopped"),
    "escalated": N_("Escalated"),
}
GROUP_LABELS = {
    TypeGroup.CALLBACK.value: N_("Callback"),
    TypeGroup.COMPLAINT.value: N_("Complaint"),
    TypeGroup.FEEDBACK.value: N_("Suggestion, praise or report"),
    TypeGroup.SERVICE.value: N_("Service request"),
}
UNIT_LABELS = {
    Unit.HOURS.value: N_("hours"),
    Unit.WORKING_HOURS.value: N_("working hours"),
    Unit.WORKING_DAYS.value: N_("working days"),
}
KIND_LABELS = {
    FieldKind.TEXT.value: N_("Text"),
    FieldKind.TEXTAREA.value: N_("Long text"),
    FieldKind.NUMBER.value: N_("Number"),
    FieldKind.DATE.value: N_("Date"),
    FieldKind.CHOICE.value: N_("Choice"),
    FieldKind.PHONE.value: N_("Phone number"),
    FieldKind.YES_NO.value: N_("Yes or no"),
}
MOMENT_LABELS = {
    "received": N_("Order received"),
    "replied": N_("Department replied"),
    "resolved": N_("Result recorded"),
    "callback_missed": N_("Callback not answered"),
}


def _require_board(actor: Actor) -> None:
    if not (actor.can(Permission.SUPERVISE) or actor.can(Permission.READ_WORK_ORDER_REPORTS)):
        raise PermissionDenied("You do not have permission to do this.")


def describe_period(period: Period | None) -> str:
    return period.describe() if period else gettext("None")


# --- supervision -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardRow:
    order: WorkOrder
    urgency: str  # overdue | soon | paused | ok
    warn_at: datetime | None  # when the countdown turns amber


@dataclass(frozen=True)
class PendingExtension:
    extension: Extension
    order: WorkOrder
    amount: str


def clock_text(seconds: int) -> str:
    """02:05:09, or 3 d 02:05:09 beyond a day (the page's script writes the same)."""
    days, rest = divmod(abs(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return gettext("{days} d {time}").format(days=days, time=text) if days else text


def countdown(row: BoardRow, now: datetime) -> str:
    order = row.order
    if order.paused_at is not None:
        return gettext("Clock stopped")
    if order.next_due_at is None:
        return gettext("Awaiting evaluation") if order.resolved_at is not None else "—"
    seconds = int((order.next_due_at - now).total_seconds())
    if order.next_due_at < now:
        return gettext("Overdue by {time}").format(time=clock_text(seconds))
    return gettext("{time} left").format(time=clock_text(seconds))


def _board_row(order: WorkOrder, policy: DeadlinePolicy, now: datetime) -> BoardRow:
    warn_at = None
    if order.next_due_at is not None:
        warn_at = order.clock_started_at + (order.next_due_at - order.clock_started_at) * policy.warn_at
    return BoardRow(order, queries.urgency_of(order, policy, now), warn_at)


def _by_urgency(rows: list[BoardRow]) -> list[BoardRow]:
    """By deadline (as the query gives them), with stopped clocks after the running ones and orders
    without a deadline (a result waiting for its evaluation) last."""
    return sorted(rows, key=lambda row: 2 if row.order.next_due_at is None else int(row.urgency == "paused"))


async def _pending_extensions(session: AsyncSession, policies: dict[int, DeadlinePolicy]) -> list[PendingExtension]:
    out = []
    for extension in await followup.extensions(session, pending=True):
        order = await service.get_order(session, extension.order_id)
        result = policies[order.type_id].result if order.type_id in policies else None
        amount = Period(amount=extension.amount, unit=result.unit).describe() if result else str(extension.amount)
        out.append(PendingExtension(extension, order, amount))
    return out


@router.get("/supervision")
async def supervision_page(
    request: Request,
    actor: CurrentActor,
    session: Session,
    department_id: FilterId = None,
    type_id: FilterId = None,
    urgency: UrgencyFilter = None,
) -> Response:
    """Open orders by urgency with per-department counts; the board part alone for htmx refreshes."""
    _require_board(actor)
    where = queries.OrderFilter(open_only=True, department_id=department_id, type_id=type_id, urgency=urgency,
                                limit=queries.PAGE_LIMIT)  # fmt: skip
    orders, total = await queries.list_orders(session, actor=actor, where=where)
    loads = await queries.department_loads(session, actor=actor, where=queries.OrderFilter(type_id=type_id))
    types = await config.list_types(session)
    policies = {row.id: DeadlinePolicy.of(row.policy) for row in types}
    now = clock.now()
    supervises = actor.can(Permission.SUPERVISE)
    context = {
        "rows": _by_urgency([_board_row(order, policies[order.type_id], now) for order in orders]),
        "total": total,
        "loads": loads,
        "types": {row.id: row for row in types},
        "departments": await reports.department_names(session),
        "department_id": department_id,
        "type_id": type_id,
        "urgency": urgency,
        "urgency_labels": URGENCY_LABELS,
        "status_label": reports.status_label,
        "pending": await _pending_extensions(session, policies) if supervises else [],
        "supervises": supervises,
        "now": now,
        "countdown": countdown,
        "limit": queries.PAGE_LIMIT,
    }
    partial = "hx-request" in request.headers and "hx-boosted" not in request.headers
    return render(request, "workorders/supervision_board.html" if partial else "workorders/supervision.html", context)


# --- reports ---------------------------------------------------------------------------------------


def _parse_day(text: str | None, field: str, problems: list[str]) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.append(gettext("{field}: enter a date as YYYY-MM-DD.").format(field=field))
        return None


@router.get("/reports")
async def reports_page(
    request: Request,
    actor: CurrentActor,
    session: Session,
    date_from: Annotated[str | None, Query(alias="from", max_length=20)] = None,
    date_to: Annotated[str | None, Query(alias="to", max_length=20)] = None,
    type_id: FilterId = None,
    department_id: FilterId = None,
) -> Response:
    """The figures of a period; a bad period shows its problem over the last 30 days' figures."""
    actor.require(Permission.READ_WORK_ORDER_REPORTS)
    timezone = app_state(request).settings.timezone
    problems: list[str] = []
    first = _parse_day(date_from, gettext("From"), problems)
    last = _parse_day(date_to, gettext("To"), problems)
    try:
        where = reports.make_filter(timezone=timezone, date_from=first, date_to=last, type_id=type_id,
                                    department_id=department_id)  # fmt: skip
    except InvalidInput as exc:
        problems.append(exc.localized_message(gettext))
        where = reports.make_filter(timezone=timezone, type_id=type_id, department_id=department_id)
    report = await reports.build(session, where=where)
    today = clock.today(timezone)
    last_month_end = today.replace(day=1) - timedelta(days=1)
    presets = [
        (N_("Last 7 days"), today - timedelta(days=6), today),
        (N_("Last 30 days"), today - timedelta(days=29), today),
        (N_("Last 90 days"), today - timedelta(days=89), today),
        (N_("This month"), today.replace(day=1), today),
        (N_("Last month"), last_month_end.replace(day=1), last_month_end),
    ]
    return render(
        request,
        "workorders/reports.html",
        {
            "report": report,
            "data": report.to_dict(),
            "problems": problems,
            "today": today,
            "now": clock.now(),
            "presets": presets,
            "types": await config.list_types(session),
            "departments": await directory.department_choices(session),
            "export_limit": reports.EXPORT_LIMIT,
            "query": {"from": where.date_from.isoformat(), "to": where.date_to.isoformat(),
                      "type_id": type_id or "", "department_id": department_id or ""},
        },
    )  # fmt: skip


# --- types and department contacts ----------------------------------------------------------------


def _type_json(row: WorkOrderType | None) -> dict[str, Any]:
    if row is None:
        return {"code": "", "name": "", "group": TypeGroup.COMPLAINT.value, "description": "", "fields": [],
                "categories": [], "default_department_id": None, "policy": DeadlinePolicy().model_dump(mode="json"),
                "sms_templates": {}, "position": 0, "is_active": True, "version": None, "id": None}  # fmt: skip
    data = TypeRead.model_validate(row).model_dump(mode="json")
    data["policy"] = DeadlinePolicy.of(row.policy).model_dump(mode="json")  # every key, defaults filled in
    return data


@router.get("/types")
async def types_page(request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.CONFIGURE_WORK_ORDERS)
    types = await config.list_types(session)
    contacts = {row.department_id: row for row in await config.department_contacts(session)}
    departments = await directory.list_entities(session, kind=directory.DEPARTMENTS)
    users = await list_users(session, limit=1000)
    return render(
        request,
        "workorders/types.html",
        {
            "types": types,
            "policies": {row.id: DeadlinePolicy.of(row.policy) for row in types},
            "describe_period": describe_period,
            "group_labels": GROUP_LABELS,
            "department_names": {row.id: row.name for row in departments},
            "departments": [row for row in departments if row.is_active],
            "contacts": {
                department_id: {"sms_phone": row.sms_phone or "", "email": row.email or "",
                                "head_user_id": row.head_user_id, "version": row.version}
                for department_id, row in contacts.items()
            },
            "users": [(user.id, f"{user.display_name} ({user.username})") for user in users if user.is_active],
        },
    )  # fmt: skip


async def _type_form(request: Request, session: AsyncSession, row: WorkOrderType | None) -> Response:
    templates = await sms_templates.list_templates(session)
    return render(
        request,
        "workorders/types_form.html",
        {
            "row": row,
            "data": {
                "type": _type_json(row),
                "sms_codes": [
                    {"code": t.code, "name": t.name, "audience": t.audience} for t in templates if t.is_active
                ],
            },
            "departments": await directory.department_choices(session),
            "group_labels": GROUP_LABELS,
            "unit_labels": UNIT_LABELS,
            "kind_labels": KIND_LABELS,
            "moment_labels": MOMENT_LABELS,
        },
    )


@router.get("/types/new")
async def new_type_page(request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.CONFIGURE_WORK_ORDERS)
    return await _type_form(request, session, None)


@router.get("/types/{type_id}")
async def edit_type_page(type_id: PathId, request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.CONFIGURE_WORK_ORDERS)
    return await _type_form(request, session, await service.order_type(session, type_id))
