"""What happens around the steps: notes, pauses (waiting for the patient), extensions, callback
attempts with their retry policy, links to related orders and contacts, reminders."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.contacts import service as contacts
from patientline.core import audit, clock
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.db import flush_or_conflict
from patientline.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, require_version
from patientline.core.i18n import gettext
from patientline.workorders import access, notify, service, timing
from patientline.workorders.models import (
    CallbackAttempt,
    CallOutcome,
    Extension,
    ExtensionStatus,
    Link,
    Pause,
    WorkOrder,
)
from patientline.workorders.policy import DeadlinePolicy


def _require_open(order: WorkOrder) -> None:
    if not order.is_open:
        raise Conflict(
            "This work order is {status}; reopen it first.", params={"status": order.status}, error_id="order_closed"
        )


def _require_party(actor: Actor, order: WorkOrder) -> None:
    """The centre or the responsible department."""
    if not (actor.can(Permission.CREATE_WORK_ORDERS) or access.is_department_handler(actor, order.department_id)):
        raise PermissionDenied("You do not have permission to do this.")


async def add_note(session: AsyncSession, *, actor: Actor, order_id: int, note: str) -> WorkOrder:
    """Anyone who sees the order (co-handling departments too) may add to its timeline."""
    order = await service.read_order(session, actor=actor, order_id=order_id)
    service.add_timeline(session, order, actor=actor, action="note", note=note)
    await flush_or_conflict(session)
    return order


# --- pauses ----------------------------------------------------------------------------------------


async def pause(session: AsyncSession, *, actor: Actor, order_id: int, expected_version: int, reason: str) -> WorkOrder:
    order = await service.read_order(session, actor=actor, order_id=order_id)
    require_version(expected=expected_version, current=order.version)
    _require_open(order)
    _require_party(actor, order)
    if order.paused_at is not None:
        raise Conflict("The clock is already stopped.", error_id="already_paused")
    now = clock.now()
    order.paused_at, order.pause_reason = now, reason
    order.next_alert_at = None
    session.add(Pause(order_id=order.id, started_at=now, reason=reason, started_by_id=actor.user_id))
    service.add_timeline(session, order, actor=actor, action="pause", note=reason)
    audit.record(session, actor=actor, action="workorders.order.pause", target_type="work_order", target_id=order.id,
                 reason=reason)  # fmt: skip
    notify.changed(session, order, "pause")
    await flush_or_conflict(session)
    return order


async def resume(session: AsyncSession, *, actor: Actor, order_id: int, expected_version: int) -> WorkOrder:
    order = await service.read_order(session, actor=actor, order_id=order_id)
    require_version(expected=expected_version, current=order.version)
    _require_party(actor, order)
    if order.paused_at is None:
        raise Conflict("The clock is running.", error_id="not_paused")
    current = await session.scalar(select(Pause).where(Pause.order_id == order.id, Pause.ended_at.is_(None)))
    if current is not None:
        current.ended_at = clock.now()
    order.paused_at, order.pause_reason = None, ""
    await session.flush()
    await timing.refresh(session, order, await service.order_type(session, order.type_id))
    service.add_timeline(session, order, actor=actor, action="resume")
    audit.record(session, actor=actor, action="workorders.order.resume", target_type="work_order", target_id=order.id)
    notify.changed(session, order, "resume")
    await flush_or_conflict(session)
    return order


async def pauses(session: AsyncSession, order_id: int) -> list[Pause]:
    return list(await session.scalars(select(Pause).where(Pause.order_id == order_id).order_by(Pause.started_at)))


# --- extensions ------------------------------------------------------------------------------------


async def request_extension(
    session: AsyncSession, *, actor: Actor, order_id: int, expected_version: int, amount: int, reason: str
) -> Extension:
    order = await service.read_order(session, actor=actor, order_id=order_id)
    require_version(expected=expected_version, current=order.version)
    _require_open(order)
    access.require_handler(actor, order)
    if order.resolved_at is not None:
        raise Conflict("The result is in; there is nothing to extend.", error_id="nothing_to_extend")
    if DeadlinePolicy.of((await service.order_type(session, order.type_id)).policy).result is None:
        raise Conflict("This type has no result deadline to extend.", error_id="nothing_to_extend")
    pending = await session.scalar(
        select(Extension).where(Extension.order_id == order.id, Extension.status == ExtensionStatus.PENDING)
    )
    if pending is not None:
        raise Conflict("An extension request is already waiting for a decision.", error_id="extension_pending")
    extension = Extension(order_id=order.id, amount=amount, reason=reason, requested_by_id=actor.user_id,
                          requested_at=clock.now())  # fmt: skip
    session.add(extension)
    service.add_timeline(session, order, actor=actor, action="extension_requested", note=reason,
                         details={"amount": amount})  # fmt: skip
    notify.extension_requested(session, order)
    await flush_or_conflict(session)
    return extension


async def decide_extension(
    session: AsyncSession, *, actor: Actor, extension_id: int, approve: bool, note: str
) -> Extension:
    actor.require(Permission.SUPERVISE)
    extension = await session.get(Extension, extension_id)
    if extension is None:
        raise NotFound("No such extension request.", details={"id": extension_id})
    if extension.status != ExtensionStatus.PENDING:
        raise Conflict("This request was already decided.", error_id="already_decided")
    order = await service.get_order(session, extension.order_id)
    extension.status = ExtensionStatus.APPROVED if approve else ExtensionStatus.REFUSED
    extension.decided_by_id, extension.decided_at, extension.decision_note = actor.user_id, clock.now(), note
    if approve:
        order.extension_amount += extension.amount
        await timing.refresh(session, order, await service.order_type(session, order.type_id))
    action = "extension_approved" if approve else "extension_refused"
    service.add_timeline(session, order, actor=actor, action=action, note=note, details={"amount": extension.amount})
    audit.record(session, actor=actor, action=f"workorders.{action}", target_type="work_order", target_id=order.id,
                 after={"amount": extension.amount}, reason=note or None)  # fmt: skip
    notify.extension_decided(session, order)
    notify.changed(session, order, action)
    await flush_or_conflict(session)
    return extension


async def extensions(session: AsyncSession, *, order_id: int | None = None, pending: bool = False) -> list[Extension]:
    query = select(Extension).order_by(Extension.requested_at)
    if order_id is not None:
        query = query.where(Extension.order_id == order_id)
    if pending:
        query = query.where(Extension.status == ExtensionStatus.PENDING)
    return list(await session.scalars(query))


# --- callbacks -------------------------------------------------------------------------------------


async def schedule_callback(session: AsyncSession, *, actor: Actor, order_id: int, at: datetime) -> WorkOrder:
    actor.require(Permission.CREATE_WORK_ORDERS)
    order = await service.read_order(session, actor=actor, order_id=order_id)
    _require_open(order)
    now = clock.now()
    if not now - timedelta(minutes=5) <= at <= now + timedelta(days=366):
        problem = {"field": "at", "problem": "range", "message": gettext("Choose a time within the next year.")}
        raise InvalidInput("Choose a time within the next year.", details=[problem])
    order.callback_due_at = at
    order.owner_id = order.owner_id or actor.user_id
    service.add_timeline(session, order, actor=actor, action="callback_scheduled", details={"at": at.isoformat()})
    notify.changed(session, order, "callback_scheduled")
    await flush_or_conflict(session)
    return order


async def record_attempt(
    session: AsyncSession, *, actor: Actor, order_id: int, outcome: CallOutcome, note: str
) -> WorkOrder:
    """Reached ends the callback; no answer and voicemail retry after the type's interval until its
    last attempt, which closes the order as unreachable; a wrong number closes it at once."""
    actor.require(Permission.CREATE_WORK_ORDERS)
    order = await service.read_order(session, actor=actor, order_id=order_id)
    _require_open(order)
    kind = await service.order_type(session, order.type_id)
    policy = DeadlinePolicy.of(kind.policy)
    now = clock.now()
    session.add(CallbackAttempt(order_id=order.id, at=now, agent_id=actor.user_id, outcome=outcome, note=note))
    await contacts.record_callback_attempt(session, actor=actor, order=order, outcome=outcome.value, note=note)
    order.callback_attempts += 1
    details = {"outcome": outcome.value, "attempt": order.callback_attempts}
    service.add_timeline(session, order, actor=actor, action="callback_attempt", note=note, details=details)
    if outcome is CallOutcome.REACHED:
        order.callback_due_at = None
    elif outcome is CallOutcome.WRONG_NUMBER or order.callback_attempts >= policy.callback_attempts:
        reason = "wrong_number" if outcome is CallOutcome.WRONG_NUMBER else "unreachable"
        before = order.status
        service.close_now(order, reason=reason)
        await service.finish_step(session, order, kind, actor=actor, step="close", before=before,
                                  details={"reason": reason})  # fmt: skip
    else:
        order.callback_due_at = now + timedelta(minutes=policy.callback_retry_minutes)
        await notify.to_patient(session, order, kind, moment="callback_missed")
    notify.changed(session, order, "callback_attempt")
    await flush_or_conflict(session)
    return order


async def attempts(session: AsyncSession, order_id: int) -> list[CallbackAttempt]:
    query = select(CallbackAttempt).where(CallbackAttempt.order_id == order_id).order_by(CallbackAttempt.at)
    return list(await session.scalars(query))


async def reveal_phone(session: AsyncSession, *, actor: Actor, order_id: int, reason: str) -> str:
    """The caller's full number, for calling back: read with a reason, written to the audit log."""
    order = await service.read_order(session, actor=actor, order_id=order_id)
    _require_party(actor, order)
    if not order.caller_phone:
        raise NotFound("This order has no phone number.", details={"id": order_id})
    audit.record(session, actor=actor, action="workorders.order.reveal_phone", target_type="work_order",
                 target_id=order.id, reason=reason)  # fmt: skip
    return order.caller_phone


# --- links and reminders ---------------------------------------------------------------------------


async def link(session: AsyncSession, *, actor: Actor, order_id: int, kind: str, target: str) -> Link:
    order = await service.read_order(session, actor=actor, order_id=order_id)
    _require_party(actor, order)
    if kind == "order":
        other = await service.find_by_reference(session, target)
        if other is None or other.id == order.id:
            raise InvalidInput("Link to another existing order by its reference.", details={"target": target})
        target = other.reference
    existing = await session.scalar(
        select(Link).where(Link.order_id == order.id, Link.kind == kind, Link.target == target)
    )
    if existing is not None:
        return existing
    row = Link(order_id=order.id, kind=kind, target=target, created_by_id=actor.user_id, created_at=clock.now())
    session.add(row)
    service.add_timeline(session, order, actor=actor, action="linked", details={"kind": kind, "target": target})
    await flush_or_conflict(session)
    return row


async def links(session: AsyncSession, order: WorkOrder) -> list[Link]:
    """This order's links, and orders that link to it."""
    outgoing = list(await session.scalars(select(Link).where(Link.order_id == order.id).order_by(Link.id)))
    incoming = await session.scalars(
        select(WorkOrder.reference).join(Link, Link.order_id == WorkOrder.id)
        .where(Link.kind == "order", Link.target == order.reference)
    )  # fmt: skip
    return outgoing + [Link(order_id=order.id, kind="order", target=reference) for reference in incoming]


async def remind(session: AsyncSession, *, actor: Actor, order_ids: list[int], note: str) -> int:
    """Bulk reminders from the supervision list: each open order's department hears once per call."""
    actor.require(Permission.SUPERVISE)
    orders = await session.scalars(select(WorkOrder).where(WorkOrder.id.in_(order_ids), WorkOrder.is_open))
    count = 0
    for order in orders:
        notify.reminder(session, order)
        service.add_timeline(session, order, actor=actor, action="reminder", note=note)
        count += 1
    await session.flush()
    return count
