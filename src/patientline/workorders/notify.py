"""Who hears about an order: the tray (SSE) for departments, the centre and leadership; SMS and email
to a department's contact; SMS to the patient from the type's templates."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cache
from typing import Any, ClassVar, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.channels import email, sms
from patientline.core import clock, events
from patientline.core.auth.permissions import Permission
from patientline.core.config import get_settings
from patientline.core.errors import InvalidInput
from patientline.core.events import Audience, Notification
from patientline.core.i18n import N_, gettext
from patientline.directory.models import Department
from patientline.workorders.models import DepartmentContact, TimelineEntry, WorkOrder, WorkOrderType

log = logging.getLogger(__name__)

CENTRE = Audience(permission=Permission.CREATE_WORK_ORDERS.value)
SUPERVISORS = Audience(permission=Permission.SUPERVISE.value)
LEADERSHIP = Audience(permission=Permission.LEADERSHIP_ESCALATIONS.value)

TITLES = (
    N_("New work order for your department"),
    N_("A work order was reopened"),
    N_("A work order was returned as not ours"),
    N_("A work order is due soon"),
    N_("A work order is overdue"),
    N_("A work order was escalated"),
    N_("An extension is requested"),
    N_("Your extension request was decided"),
    N_("Reminder from the service centre"),
    N_("A department replied to your work order"),
)


class WorkOrderChanged(events.Event):
    type: ClassVar[str] = "workorders.changed"
    order_id: int
    reference: str
    status: str
    department_id: int | None
    change: str


class OrderRef(Protocol):
    """What a tray line or a change event tells of an order (a `WorkOrder`, or the sweep's lighter copy)."""

    @property
    def id(self) -> int: ...
    @property
    def reference(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def department_id(self) -> int | None: ...


@cache
def department_audience(department_id: int | None) -> Audience:
    """One (frozen) audience per department, shared by the events addressed to it."""
    return Audience(permission=Permission.HANDLE_DEPARTMENT_WORK.value, department_id=department_id)


def _link(order: OrderRef) -> str:
    return f"/workorders/{order.id}"


def tray(session: AsyncSession, order: OrderRef, title: str, audience: Audience, *, level: str = "info") -> None:
    body = f"{order.reference} · {order.subject}"
    events.record(session, Notification(title=title, body=body, link=_link(order), level=level, audience=audience))


def changed(session: AsyncSession, order: OrderRef, change: str) -> None:
    audiences = [CENTRE] + ([department_audience(order.department_id)] if order.department_id else [])
    for audience in audiences:
        events.record(
            session,
            WorkOrderChanged(
                order_id=order.id, reference=order.reference, status=order.status,
                department_id=order.department_id, change=change, audience=audience,
            ),
        )  # fmt: skip


def _local(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(get_settings().timezone)).strftime("%Y-%m-%d %H:%M")


SUMMARY_LENGTH = 40
VARIABLES = frozenset(
    {"reference", "type", "subject", "department", "deadline", "reply_deadline", "summary", "next_try", "overdue",
     "level", "hotline"}
)  # fmt: skip
"""What a work-order SMS template may use."""


def _overdue(order: WorkOrder) -> str:
    if order.next_due_at is None or order.next_due_at > clock.now():
        return ""
    hours = int((clock.now() - order.next_due_at).total_seconds() // 3600)
    return gettext("{n} hours").format(n=max(hours, 1))


def variables(order: WorkOrder, kind: WorkOrderType, department_name: str = "") -> dict[str, str]:
    """Every variable a template may name; blank ones make `sms.send` refuse, which `_send_sms` notes."""
    answer = order.result_text or order.reply_text
    return {
        "reference": order.reference,
        "type": kind.name,
        "subject": order.subject,
        "department": department_name,
        "deadline": _local(order.resolve_due_at or order.reply_due_at),
        "reply_deadline": _local(order.reply_due_at),
        "summary": answer if len(answer) <= SUMMARY_LENGTH else answer[: SUMMARY_LENGTH - 1] + "…",
        "next_try": _local(order.callback_due_at),
        "overdue": _overdue(order),
        "level": str(order.escalation_level) if order.escalation_level else "",
        "hotline": get_settings().hotline_number,
    }


async def _send_sms(session: AsyncSession, order: WorkOrder, **message: Any) -> None:
    """A text that cannot be made (a template asking for a value this order lacks) never blocks the
    order's step: the timeline says why it was not sent."""
    try:
        await sms.send(session, related_type="work_order", related_id=order.id, **message)
    except InvalidInput as exc:
        log.warning("work-order SMS not sent", extra={"order_id": order.id, "error_id": exc.error_id})
        entry = TimelineEntry(order_id=order.id, at=clock.now(), actor_name="System", action="sms_not_sent",
                              to_status=order.status, note=exc.localized_message(gettext),
                              details={"template": message.get("template")})  # fmt: skip
        session.add(entry)
        await session.flush()


async def _department_name(session: AsyncSession, department_id: int | None) -> str:
    department = await session.get(Department, department_id) if department_id else None
    return department.name if department else ""


async def to_patient(session: AsyncSession, order: WorkOrder, kind: WorkOrderType, *, moment: str) -> None:
    """The type's SMS for this moment, when it has one and the caller left a number."""
    template = (kind.sms_templates or {}).get(moment)
    if not template or not order.caller_phone:
        return
    values = variables(order, kind, await _department_name(session, order.department_id))
    await _send_sms(
        session, order, phone=order.caller_phone, template=template, variables=values, patient_id=order.patient_id,
        idempotency_key=f"wo:{order.id}:{order.reopen_count}:{moment}:{order.callback_attempts}",
    )  # fmt: skip


Contacts = Mapping[int, DepartmentContact]
"""Departments' contacts loaded beforehand: a department missing from it has none."""


async def department_contacts(
    session: AsyncSession, department_ids: Iterable[int | None]
) -> dict[int, DepartmentContact]:
    """The contacts of these departments in one query (for a batch of orders)."""
    wanted = sorted({department_id for department_id in department_ids if department_id})
    if not wanted:
        return {}
    rows = await session.scalars(select(DepartmentContact).where(DepartmentContact.department_id.in_(wanted)))
    return {row.department_id: row for row in rows}


async def _contact(
    session: AsyncSession, department_id: int | None, contacts: Contacts | None
) -> DepartmentContact | None:
    if not department_id:
        return None
    if contacts is not None:
        return contacts.get(department_id)
    return await session.get(DepartmentContact, department_id)


async def to_department_contact(
    session: AsyncSession, order: WorkOrder, kind: WorkOrderType, *, template: str, key: str,
    contacts: Contacts | None = None,
) -> None:  # fmt: skip
    contact = await _contact(session, order.department_id, contacts)
    if contact is None:
        return
    values = variables(order, kind, await _department_name(session, order.department_id))
    if contact.sms_phone:
        sms_key = f"wo-dept-sms:{order.id}:{key}"
        await _send_sms(session, order, phone=contact.sms_phone, template=template, variables=values,
                        idempotency_key=sms_key)  # fmt: skip
    if contact.email:
        body = "\n".join([order.reference, order.subject, values["department"], values["deadline"], _link(order)])
        await email.send(
            session, to=contact.email, subject=f"{order.reference} {order.subject}", body=body,
            related_type="work_order", related_id=order.id, idempotency_key=f"wo-dept-email:{order.id}:{key}",
        )  # fmt: skip


async def received(session: AsyncSession, order: WorkOrder, kind: WorkOrderType) -> None:
    await to_patient(session, order, kind, moment="received")


async def dispatched(session: AsyncSession, order: WorkOrder, kind: WorkOrderType, *, reopened: bool = False) -> None:
    title = N_("A work order was reopened") if reopened else N_("New work order for your department")
    tray(session, order, title, department_audience(order.department_id))
    key = f"dispatch:{order.reopen_count}:{order.return_count}:{order.department_id}"
    await to_department_contact(session, order, kind, template="dept_new_order", key=key)


def returned(session: AsyncSession, order: WorkOrder) -> None:
    tray(session, order, N_("A work order was returned as not ours"), CENTRE, level="warning")


def replied_to_owner(session: AsyncSession, order: WorkOrder) -> None:
    if order.owner_id is not None:
        tray(session, order, N_("A department replied to your work order"), Audience(user_id=order.owner_id))


def alert(session: AsyncSession, order: OrderRef, *, alert_kind: str, level: int, contacts: Contacts) -> None:
    """The tray lines of an alert: due soon and overdue go to the department; each escalation level
    climbs: 1 the department (and its head), 2 the centre's supervisors, 3 the hospital's leadership.
    A first escalation also goes to the department's contact by text or email
    (`messages_contact`, `escalation_to_contact`)."""
    department = department_audience(order.department_id)
    if alert_kind.startswith("warn_"):
        tray(session, order, N_("A work order is due soon"), department, level="warning")
    elif alert_kind.startswith("breach_"):
        tray(session, order, N_("A work order is overdue"), department, level="error")
        tray(session, order, N_("A work order is overdue"), SUPERVISORS, level="error")
    else:
        title = N_("A work order was escalated")
        audiences = {1: [department], 2: [SUPERVISORS], 3: [LEADERSHIP]}[min(level, 3)]
        contact = contacts.get(order.department_id) if order.department_id else None
        if level == 1 and contact is not None and contact.head_user_id is not None:
            audiences.append(Audience(user_id=contact.head_user_id))
        for audience in audiences:
            tray(session, order, title, audience, level="error")


def messages_contact(order: OrderRef, *, alert_kind: str, level: int, contacts: Contacts) -> bool:
    """Whether this alert also goes to the department's contact: a first escalation, when the
    department has a number or an address."""
    if alert_kind != "escalate" or level != 1 or not order.department_id:
        return False
    contact = contacts.get(order.department_id)
    return contact is not None and bool(contact.sms_phone or contact.email)


async def escalation_to_contact(
    session: AsyncSession, order: WorkOrder, kind: WorkOrderType, *, level: int, contacts: Contacts
) -> None:
    """The department contact's text and email of an escalation (the order as it is at that level)."""
    key = f"escalate:{order.reopen_count}:{level}"
    await to_department_contact(session, order, kind, template="dept_escalation", key=key, contacts=contacts)


def extension_requested(session: AsyncSession, order: WorkOrder) -> None:
    tray(session, order, N_("An extension is requested"), SUPERVISORS)


def extension_decided(session: AsyncSession, order: WorkOrder) -> None:
    tray(session, order, N_("Your extension request was decided"), department_audience(order.department_id))


def reminder(session: AsyncSession, order: WorkOrder) -> None:
    tray(session, order, N_("Reminder from the service centre"), department_audience(order.department_id))
