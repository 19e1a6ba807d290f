"""Work orders: registration (idempotent), the lifecycle steps, the timeline.

new -> dispatched -> accepted -> replied -> resolved -> closed (after the patient's evaluation);
not satisfied reopens; a department may return an order as "not ours" and the centre redispatches;
duplicates are merged. A step that does not fit the order's status answers 409 with the allowed ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import audit, clock
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.db import flush_or_conflict
from patientline.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, require_version
from patientline.core.i18n import N_, gettext
from patientline.directory.models import Department
from patientline.workorders import access, notify, timing
from patientline.workorders.forms import clean_values, parse_fields
from patientline.workorders.models import (
    OPEN_STATUSES,
    CoHandler,
    ReferenceCounter,
    Status,
    TimelineEntry,
    WorkOrder,
    WorkOrderType,
)
from patientline.workorders.policy import DeadlinePolicy
from patientline.workorders.schemas import OrderCreate

CALLBACK_WINDOW_AHEAD = timedelta(days=366)


@dataclass(frozen=True)
class Step:
    name: str
    sources: frozenset[str]
    target: Status
    party: str  # centre | department | supervisor


def _step(name: str, sources: set[Status], target: Status, party: str) -> Step:
    return Step(name, frozenset(str(s) for s in sources), target, party)


STEPS = {
    step.name: step
    for step in (
        _step("dispatch", {Status.NEW, Status.RETURNED, Status.DISPATCHED}, Status.DISPATCHED, "centre"),
        _step("accept", {Status.DISPATCHED}, Status.ACCEPTED, "department"),
        _step("return", {Status.DISPATCHED, Status.ACCEPTED}, Status.RETURNED, "department"),
        _step("reply", {Status.ACCEPTED}, Status.REPLIED, "department"),
        _step("resolve", {Status.ACCEPTED, Status.REPLIED}, Status.RESOLVED, "department"),
        _step("evaluate", {Status.RESOLVED}, Status.CLOSED, "centre"),
        _step("close", {Status.NEW, Status.RETURNED, Status.RESOLVED}, Status.CLOSED, "centre"),
        _step("reopen", {Status.CLOSED}, Status.DISPATCHED, "supervisor"),
        _step("merge", set(OPEN_STATUSES), Status.MERGED, "centre"),
    )
}
STEP_LABELS = {
    "dispatch": N_("Dispatch"),
    "accept": N_("Accept"),
    "return": N_("Return: not ours"),
    "reply": N_("Reply on handling"),
    "resolve": N_("Record the result"),
    "evaluate": N_("Record the evaluation"),
    "close": N_("Close"),
    "reopen": N_("Reopen"),
    "merge": N_("Merge into another order"),
}


def may_take(actor: Actor, order: WorkOrder, step: Step) -> bool:
    if step.party == "department":
        return access.is_department_handler(actor, order.department_id)
    if step.party == "supervisor":
        return actor.can(Permission.SUPERVISE)
    return actor.can(Permission.CREATE_WORK_ORDERS)


def allowed_steps(order: WorkOrder, actor: Actor | None = None) -> list[str]:
    return [
        step.name
        for step in STEPS.values()
        if order.status in step.sources and (actor is None or may_take(actor, order, step))
    ]


# --- reading ---------------------------------------------------------------------------------------


async def get_order(session: AsyncSession, order_id: int) -> WorkOrder:
    order = await session.get(WorkOrder, order_id)
    if order is None:
        raise NotFound("No such work order.", details={"id": order_id})
    return order


async def read_order(session: AsyncSession, *, actor: Actor, order_id: int) -> WorkOrder:
    order = await get_order(session, order_id)
    await access.require_read(session, actor, order)
    return order


async def find_by_reference(session: AsyncSession, reference: str) -> WorkOrder | None:
    return await session.scalar(select(WorkOrder).where(WorkOrder.reference == reference.strip().upper()))


async def order_type(session: AsyncSession, type_id: int) -> WorkOrderType:
    row = await session.get(WorkOrderType, type_id)
    if row is None:
        raise NotFound("No such work-order type.", details={"id": type_id})
    return row


async def timeline(session: AsyncSession, order_id: int) -> list[TimelineEntry]:
    rows = await session.scalars(
        select(TimelineEntry).where(TimelineEntry.order_id == order_id).order_by(TimelineEntry.at, TimelineEntry.id)
    )
    return list(rows)


# --- writing helpers -------------------------------------------------------------------------------


def timeline_values(
    order: notify.OrderRef,
    *,
    actor: Actor,
    action: str,
    note: str = "",
    from_status: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The columns of one timeline line (the sweep inserts a batch of them in one statement)."""
    return {
        "order_id": order.id, "at": clock.now(), "actor_id": actor.user_id,
        "actor_name": actor.display_name or actor.username, "action": action, "from_status": from_status,
        "to_status": order.status, "note": note, "details": details or {},
    }  # fmt: skip


def add_timeline(
    session: AsyncSession,
    order: WorkOrder,
    *,
    actor: Actor,
    action: str,
    note: str = "",
    from_status: str | None = None,
    details: dict[str, Any] | None = None,
) -> TimelineEntry:
    values = timeline_values(order, actor=actor, action=action, note=note, from_status=from_status, details=details)
    entry = TimelineEntry(**values)
    session.add(entry)
    return entry


async def _next_reference(session: AsyncSession, day: date) -> str:
    """WO-20261122-0042: one counter row per day, bumped atomically on both databases."""
    dialect = session.get_bind().dialect.name
    insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert_(ReferenceCounter)
        .values(day=day, last=1)
        .on_conflict_do_update(index_elements=["day"], set_={"last": ReferenceCounter.last + 1})
        .returning(ReferenceCounter.last)
    )
    number = (await session.execute(statement)).scalar_one()
    return f"WO-{day:%Y%m%d}-{number:04d}"


async def _active_department(session: AsyncSession, department_id: int, field: str) -> Department:
    department = await session.get(Department, department_id)
    if department is None or not department.is_active:
        raise InvalidInput(
            "Choose an active department.",
            details=[
                {"field": field, "problem": "unknown_department", "message": gettext("Choose an active department.")}
            ],
        )
    return department


def _check_callback_window(start: datetime | None, end: datetime | None) -> None:
    if start is None and end is None:
        return
    now = clock.now()
    problems = []
    if start is not None and end is not None and end <= start:
        message = gettext("The window must end after it starts.")
        problems.append({"field": "callback_until", "problem": "order", "message": message})
    for name, moment in (("callback_from", start), ("callback_until", end)):
        if moment is not None and not now - timedelta(days=1) <= moment <= now + CALLBACK_WINDOW_AHEAD:
            problems.append(
                {"field": name, "problem": "range", "message": gettext("Choose a time within the next year.")}
            )
    if problems:
        raise InvalidInput("The desired callback window is not possible.", details=problems)


async def _set_co_handlers(session: AsyncSession, order: WorkOrder, department_ids: list[int]) -> None:
    wanted = sorted(set(department_ids) - {order.department_id or 0})
    for department_id in wanted:
        await _active_department(session, department_id, "co_department_ids")
    current = set(await access.co_handlers(session, order.id))
    for row in await session.scalars(select(CoHandler).where(CoHandler.order_id == order.id)):
        if row.department_id not in wanted:
            await session.delete(row)
    session.add_all(CoHandler(order_id=order.id, department_id=d) for d in wanted if d not in current)


# --- registration ----------------------------------------------------------------------------------


async def _contact_phone(session: AsyncSession, contact_ref: str | None) -> str | None:
    """The number of the contact an order comes from, so that the workbench's form never carries it."""
    if not contact_ref:
        return None
    from patientline.contacts.service import find_by_reference  # contacts link to orders: imported when used

    contact = await find_by_reference(session, contact_ref)
    return contact.phone if contact is not None else None


async def create(session: AsyncSession, *, actor: Actor, data: OrderCreate) -> WorkOrder:
    """Registers an order and, when a department is known, dispatches it. A repeated `client_key`
    returns the order the first call made."""
    actor.require(Permission.CREATE_WORK_ORDERS)
    if data.client_key:
        existing = await session.scalar(select(WorkOrder).where(WorkOrder.client_key == data.client_key))
        if existing is not None:
            return existing
    kind = await order_type(session, data.type_id)
    if not kind.is_active:
        raise InvalidInput("This work-order type is no longer in use.", details={"type_id": kind.id})
    if kind.categories and data.category not in kind.categories:
        raise InvalidInput(
            "Choose one of the type's categories.",
            details=[{"field": "category", "problem": "enum", "message": ", ".join(kind.categories)}],
        )
    values = clean_values(parse_fields(kind.fields), data.values)
    _check_callback_window(data.callback_from, data.callback_until)
    department_id = data.department_id or kind.default_department_id
    if department_id is not None:
        await _active_department(session, department_id, "department_id")
    now = clock.now()
    order = WorkOrder(
        reference=await _next_reference(session, (await timing.load_calendar(session)).local_date(now)),
        client_key=data.client_key, type_id=kind.id, category=data.category, subject=data.subject,
        description=data.description, values=values, channel=data.channel, patient_id=data.patient_id,
        caller_name=data.caller_name, caller_phone=data.caller_phone or await _contact_phone(session, data.contact_ref),
        contact_ref=data.contact_ref,
        callback_from=data.callback_from, callback_until=data.callback_until, owner_id=actor.user_id,
        created_by_id=actor.user_id, received_at=now, clock_started_at=now, status=Status.NEW.value,
        is_open=True, alerts_raised=[],
    )  # fmt: skip
    session.add(order)
    await flush_or_conflict(session)
    add_timeline(session, order, actor=actor, action="created", note=data.note)
    audit.record(session, actor=actor, action="workorders.order.create", target_type="work_order", target_id=order.id)
    await timing.refresh(session, order, kind)
    await notify.received(session, order, kind)
    if department_id is not None:
        await _dispatch_to(session, order, kind, actor=actor, department_id=department_id, co=data.co_department_ids)
    await flush_or_conflict(session)
    return order


# --- steps -----------------------------------------------------------------------------------------


async def _begin_step(
    session: AsyncSession, *, actor: Actor, order_id: int, step_name: str, expected_version: int
) -> tuple[WorkOrder, WorkOrderType, str]:
    order = await read_order(session, actor=actor, order_id=order_id)
    require_version(expected=expected_version, current=order.version)
    step = STEPS[step_name]
    if order.status not in step.sources:
        raise Conflict(
            "This work order cannot go that way from {status}.",
            params={"status": order.status},
            error_id="invalid_transition",
            details={"status": order.status, "allowed": allowed_steps(order)},
        )
    if not may_take(actor, order, step):
        raise PermissionDenied("You do not have permission to do this.", details={"step": step_name})
    return order, await order_type(session, order.type_id), order.status


async def finish_step(
    session: AsyncSession,
    order: WorkOrder,
    kind: WorkOrderType,
    *,
    actor: Actor,
    step: str,
    before: str,
    note: str = "",
    details: dict[str, Any] | None = None,
) -> WorkOrder:
    order.is_open = order.status in OPEN_STATUSES
    await timing.refresh(session, order, kind)
    add_timeline(session, order, actor=actor, action=step, note=note, from_status=before, details=details)
    audit.record(
        session, actor=actor, action=f"workorders.order.{step}", target_type="work_order", target_id=order.id,
        before={"status": before}, after={"status": order.status, **(details or {})}, reason=note or None,
    )  # fmt: skip
    notify.changed(session, order, step)
    await flush_or_conflict(session)
    return order


async def _dispatch_to(
    session: AsyncSession, order: WorkOrder, kind: WorkOrderType, *, actor: Actor, department_id: int, co: list[int]
) -> None:
    before = order.status
    order.department_id = department_id
    order.status = Status.DISPATCHED.value
    order.dispatched_at = clock.now()
    order.accepted_at = None
    await _set_co_handlers(session, order, co)
    details = {"department_id": department_id, "co_department_ids": sorted(set(co) - {department_id})}
    await finish_step(session, order, kind, actor=actor, step="dispatch", before=before, details=details)
    await notify.dispatched(session, order, kind)


async def dispatch(
    session: AsyncSession, *, actor: Actor, order_id: int, expected_version: int, department_id: int,
    co_department_ids: list[int], note: str = "",
) -> WorkOrder:  # fmt: skip
    order, kind, _ = await _begin_step(
        session, actor=actor, order_id=order_id, step_name="dispatch", expected_version=expected_version
    )
    await _active_department(session, department_id, "department_id")
    await _dispatch_to(session, order, kind, actor=actor, department_id=department_id, co=co_department_ids)
    if note:
        add_timeline(session, order, actor=actor, action="note", note=note)
    return order


async def accept(session: AsyncSession, *, actor: Actor, order_id: int, expected_version: int) -> WorkOrder:
    order, kind, before = await _begin_step(
        session, actor=actor, order_id=order_id, step_name="accept", expected_version=expected_version
    )
    order.status, order.accepted_at = Status.ACCEPTED.value, clock.now()
    return await finish_step(session, order, kind, actor=actor, step="accept", before=before)


async def return_order(
    session: AsyncSession, *, actor: Actor, order_id: int, expected_version: int, reason: str
) -> WorkOrder:
    order, kind, before = await _begin_step(
        session, actor=actor, order_id=order_id, step_name="return", expected_version=expected_version
    )
    details = {"department_id": order.department_id}
    order.status, order.return_count = Status.RETURNED.value, order.return_count + 1
    await finish_step(session, order, kind, actor=actor, step="return", before=before, note=reason, details=details)
    notify.returned(session, order)
    return order


async def reply(session: AsyncSession, *, actor: Actor, order_id: int, expected_version: int, text: str) -> WorkOrder:
    order, kind, before = await _begin_step(
        session, actor=actor, order_id=order_id, step_name="reply", expected_version=expected_version
    )
    order.status, order.replied_at, order.reply_text = Status.REPLIED.value, clock.now(), text
    if DeadlinePolicy.of(kind.policy).call_back_on_reply:
        order.callback_due_at = max(clock.now(), order.callback_from or clock.now())
    await finish_step(session, order, kind, actor=actor, step="reply", before=before, note=text)
    notify.replied_to_owner(session, order)
    await notify.to_patient(session, order, kind, moment="replied")
    return order


async def resolve(session: AsyncSession, *, actor: Actor, order_id: int, expected_version: int, text: str) -> WorkOrder:
    order, kind, before = await _begin_step(
        session, actor=actor, order_id=order_id, step_name="resolve", expected_version=expected_version
    )
    now = clock.now()
    if order.replied_at is None:  # the result is also the reply
        order.replied_at, order.reply_text = now, text
    order.status, order.resolved_at, order.result_text = Status.RESOLVED.value, now, text
    await finish_step(session, order, kind, actor=actor, step="resolve", before=before, note=text)
    await notify.to_patient(session, order, kind, moment="resolved")
    return order


async def evaluate(
    session: AsyncSession, *, actor: Actor, order_id: int, expected_version: int, satisfied: bool, comment: str
) -> WorkOrder:
    """Satisfied closes the order; not satisfied reopens it to the same department with a fresh clock."""
    order, kind, before = await _begin_step(
        session, actor=actor, order_id=order_id, step_name="evaluate", expected_version=expected_version
    )
    order.satisfied, order.evaluation_comment = satisfied, comment
    details = {"satisfied": satisfied}
    if satisfied:
        close_now(order, reason="evaluated")
        return await finish_step(session, order, kind, actor=actor, step="evaluate", before=before, note=comment,
                                  details=details)  # fmt: skip
    _restart_clock(order)
    await finish_step(session, order, kind, actor=actor, step="evaluate", before=before, note=comment, details=details)
    await notify.dispatched(session, order, kind, reopened=True)
    return order


def close_now(order: WorkOrder, *, reason: str) -> None:
    order.status, order.closed_at, order.close_reason = Status.CLOSED.value, clock.now(), reason
    order.callback_due_at = None
    order.paused_at = None


def _restart_clock(order: WorkOrder) -> None:
    now = clock.now()
    order.status = Status.DISPATCHED.value
    order.reopen_count += 1
    order.clock_started_at = order.dispatched_at = now
    order.accepted_at = order.replied_at = order.resolved_at = order.closed_at = None
    order.reply_on_time = order.resolve_on_time = None
    order.escalation_level, order.escalated_at, order.alerts_raised = 0, None, []
    order.extension_amount, order.close_reason = 0, ""
    order.callback_due_at, order.callback_attempts = None, 0


CLOSE_REASONS = ("answered", "no_evaluation", "withdrawn", "unreachable", "wrong_number", "duplicate", "other")


async def close(
    session: AsyncSession, *, actor: Actor, order_id: int, expected_version: int, reason: str, note: str = ""
) -> WorkOrder:
    order, kind, before = await _begin_step(
        session, actor=actor, order_id=order_id, step_name="close", expected_version=expected_version
    )
    close_now(order, reason=reason)
    return await finish_step(session, order, kind, actor=actor, step="close", before=before, note=note,
                              details={"reason": reason})  # fmt: skip


async def reopen(session: AsyncSession, *, actor: Actor, order_id: int, expected_version: int, note: str) -> WorkOrder:
    order, kind, before = await _begin_step(
        session, actor=actor, order_id=order_id, step_name="reopen", expected_version=expected_version
    )
    if order.department_id is None:
        raise Conflict("This order was never dispatched; register a new one instead.", error_id="invalid_transition")
    _restart_clock(order)
    await finish_step(session, order, kind, actor=actor, step="reopen", before=before, note=note)
    await notify.dispatched(session, order, kind, reopened=True)
    return order


async def merge(
    session: AsyncSession, *, actor: Actor, order_id: int, expected_version: int, into_id: int, note: str = ""
) -> WorkOrder:
    """Folds a duplicate into `into_id`: the duplicate stops, the survivor's timeline says so."""
    if into_id == order_id:
        raise InvalidInput("An order cannot be merged into itself.")
    order, kind, before = await _begin_step(
        session, actor=actor, order_id=order_id, step_name="merge", expected_version=expected_version
    )
    survivor = await read_order(session, actor=actor, order_id=into_id)
    if not survivor.is_open:
        raise Conflict("Merge into an open order.", details={"into": survivor.reference})
    order.status, order.merged_into_id, order.closed_at = Status.MERGED.value, survivor.id, clock.now()
    order.callback_due_at = None
    add_timeline(session, survivor, actor=actor, action="merged_in", note=note, details={"from": order.reference})
    return await finish_step(session, order, kind, actor=actor, step="merge", before=before, note=note,
                              details={"into": survivor.reference})  # fmt: skip


async def recompute_open(session: AsyncSession, *, batch: int = 2000, after_id: int = 0) -> int:
    """Recomputes the deadlines of open orders after a calendar change; returns the last id done (0: finished)."""
    calendar = await timing.load_calendar(session)
    types = {row.id: row for row in await session.scalars(select(WorkOrderType))}
    orders = list(
        await session.scalars(
            select(WorkOrder).where(WorkOrder.is_open, WorkOrder.id > after_id).order_by(WorkOrder.id).limit(batch)
        )
    )
    pauses = await timing.pauses_by_order(session, orders)
    for order in orders:
        policy = DeadlinePolicy.of(types[order.type_id].policy)
        timing.apply_deadlines(order, policy, calendar=calendar, pauses=pauses.get(order.id, []))
    await session.flush()
    return orders[-1].id if len(orders) == batch else 0
