"""Lists of orders: search with filters, a department's queue, an agent's callbacks due, and the
supervision list (督办) with per-department counts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock
from patientline.core.auth.actor import Actor
from patientline.workorders import access
from patientline.workorders.models import CoHandler, WorkOrder, WorkOrderType
from patientline.workorders.policy import DeadlinePolicy

SOON = timedelta(hours=24)
PAGE_LIMIT = 200


@dataclass(frozen=True)
class OrderFilter:
    status: str | None = None
    open_only: bool = False
    type_id: int | None = None
    group: str | None = None
    department_id: int | None = None
    owner_id: int | None = None
    text: str | None = None  # reference, subject, caller name, or the last digits of the phone
    urgency: str | None = None  # overdue | soon | paused | escalated
    callbacks_due: bool = False
    received_from: datetime | None = None
    received_to: datetime | None = None
    order_by: str = "due"  # due | received
    limit: int = 50
    offset: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _visible(query: Select[Any], actor: Actor) -> Select[Any]:
    if access.sees_everything(actor) or actor.is_unscoped:
        return query
    departments = list(actor.department_ids)
    shared = select(CoHandler.order_id).where(CoHandler.department_id.in_(departments))
    return query.where(or_(WorkOrder.department_id.in_(departments), WorkOrder.id.in_(shared)))


def _text(query: Select[Any], text: str) -> Select[Any]:
    term = text.strip()
    if term.upper().startswith("WO-"):
        return query.where(WorkOrder.reference == term.upper())
    if term.isdigit() and len(term) >= 4:
        return query.where(WorkOrder.caller_phone.like(f"%{term}"))
    like = f"%{term}%"
    return query.where(or_(WorkOrder.subject.like(like), WorkOrder.caller_name.like(like)))


def _urgency(query: Select[Any], urgency: str, now: datetime) -> Select[Any]:
    if urgency == "overdue":
        return query.where(WorkOrder.next_due_at < now, WorkOrder.paused_at.is_(None))
    if urgency == "soon":
        return query.where(WorkOrder.next_due_at >= now, WorkOrder.next_due_at < now + SOON)
    if urgency == "paused":
        return query.where(WorkOrder.paused_at.is_not(None))
    return query.where(WorkOrder.escalation_level > 0)


def _filtered(query: Select[Any], where: OrderFilter, now: datetime) -> Select[Any]:
    conditions: list[tuple[object, Callable[[], Any]]] = [
        (where.status, lambda: WorkOrder.status == where.status),
        (where.open_only, lambda: WorkOrder.is_open),
        (where.type_id, lambda: WorkOrder.type_id == where.type_id),
        (where.department_id, lambda: WorkOrder.department_id == where.department_id),
        (where.owner_id, lambda: WorkOrder.owner_id == where.owner_id),
        (where.received_from, lambda: WorkOrder.received_at >= where.received_from),
        (where.received_to, lambda: WorkOrder.received_at < where.received_to),
        (where.callbacks_due, lambda: WorkOrder.callback_due_at.is_not(None)),
        (
            where.group,
            lambda: WorkOrder.type_id.in_(select(WorkOrderType.id).where(WorkOrderType.group == where.group)),
        ),
    ]
    for wanted, condition in conditions:
        if wanted:
            query = query.where(condition())
    if where.text:
        query = _text(query, where.text)
    if where.urgency:
        query = _urgency(query, where.urgency, now)
    return query


def _ordered(query: Select[Any], where: OrderFilter) -> Select[Any]:
    if where.callbacks_due:
        return query.order_by(WorkOrder.callback_due_at, WorkOrder.id)
    if where.order_by == "received":
        return query.order_by(WorkOrder.received_at.desc(), WorkOrder.id.desc())
    return query.order_by(WorkOrder.next_due_at.asc().nulls_last(), WorkOrder.id)


async def list_orders(session: AsyncSession, *, actor: Actor, where: OrderFilter) -> tuple[list[WorkOrder], int]:
    now = clock.now()
    base = _filtered(_visible(select(WorkOrder), actor), where, now)
    total = await session.scalar(select(func.count()).select_from(base.order_by(None).subquery())) or 0
    rows = await session.scalars(_ordered(base, where).limit(min(where.limit, PAGE_LIMIT)).offset(where.offset))
    return list(rows), total


@dataclass(frozen=True)
class DepartmentLoad:
    department_id: int | None
    open: int
    overdue: int
    soon: int
    escalated: int


async def department_loads(session: AsyncSession, *, actor: Actor, where: OrderFilter) -> list[DepartmentLoad]:
    """Open orders per responsible department, with how many are overdue, due within a day, escalated."""
    now = clock.now()
    overdue = (WorkOrder.next_due_at < now) & WorkOrder.paused_at.is_(None)
    soon = (WorkOrder.next_due_at >= now) & (WorkOrder.next_due_at < now + SOON)
    query: Any = select(
        WorkOrder.department_id,
        func.count(),
        func.sum(case((overdue, 1), else_=0)),
        func.sum(case((soon, 1), else_=0)),
        func.sum(case((WorkOrder.escalation_level > 0, 1), else_=0)),
    ).where(WorkOrder.is_open)
    open_filter = OrderFilter(type_id=where.type_id, group=where.group, department_id=where.department_id)
    query = _filtered(_visible(query, actor), open_filter, now).group_by(WorkOrder.department_id)
    rows = await session.execute(query)
    loads = [DepartmentLoad(row[0], int(row[1]), int(row[2] or 0), int(row[3] or 0), int(row[4] or 0)) for row in rows]
    return sorted(loads, key=lambda load: (-load.overdue, -load.soon, -load.open))


def urgency_of(order: WorkOrder, policy: DeadlinePolicy, now: datetime | None = None) -> str:
    """paused, overdue, soon (past the warning point), or ok: the colour on the supervision list."""
    moment = now or clock.now()
    if order.paused_at is not None:
        return "paused"
    if order.next_due_at is None:
        return "ok"
    if order.next_due_at < moment:
        return "overdue"
    span = order.next_due_at - order.clock_started_at
    return "soon" if moment >= order.clock_started_at + span * policy.warn_at else "ok"
