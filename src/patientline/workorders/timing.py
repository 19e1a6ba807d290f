"""An order's clock: its deadline columns, its next alert, and the explanation of a deadline.

Deadlines are recomputed from scratch (receipt or last reopening, pauses, approved extensions, the
calendar) whenever the order or the calendar changes, so they can always be explained.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock, workcal
from patientline.core.config import get_settings
from patientline.core.workcal import WorkCalendar
from patientline.workorders.models import Pause, WorkOrder, WorkOrderType
from patientline.workorders.policy import DeadlinePolicy, Explanation, Interval, deadlines, explain, warning_at


@dataclass(frozen=True)
class PendingAlert:
    kind: str  # warn_reply, breach_reply, warn_resolve, breach_resolve, escalate
    at: datetime
    level: int = 0


async def load_calendar(session: AsyncSession) -> WorkCalendar:
    return await workcal.load(session, timezone=get_settings().timezone)


async def pauses_by_order(session: AsyncSession, orders: list[WorkOrder]) -> dict[int, list[Interval]]:
    """The closed pauses of each order's current clock run, in one query."""
    started = {order.id: order.clock_started_at for order in orders}
    rows = await session.scalars(
        select(Pause)
        .where(Pause.order_id.in_(list(started)), Pause.ended_at.is_not(None))
        .order_by(Pause.order_id, Pause.started_at)
    )
    found: dict[int, list[Interval]] = {}
    for row in rows:
        if row.ended_at is not None and row.started_at >= started[row.order_id]:
            found.setdefault(row.order_id, []).append(Interval(row.started_at, row.ended_at))
    return found


async def pause_intervals(session: AsyncSession, order: WorkOrder) -> list[Interval]:
    return (await pauses_by_order(session, [order])).get(order.id, [])


def apply_deadlines(
    order: WorkOrder, policy: DeadlinePolicy, *, calendar: WorkCalendar, pauses: list[Interval]
) -> None:
    """Sets the deadline columns, the on-time flags of steps already done, and the next alert."""
    due = deadlines(policy, order.clock_started_at, calendar=calendar, pauses=pauses, extension=order.extension_amount)
    order.reply_due_at, order.resolve_due_at = due.reply_due_at, due.resolve_due_at
    order.reply_on_time = _on_time(order.replied_at, order.reply_due_at)
    order.resolve_on_time = _on_time(order.resolved_at, order.resolve_due_at)
    order.next_due_at = _next_due(order)
    order.next_alert_at = next_alert(order, policy)


def _on_time(done_at: datetime | None, due: datetime | None) -> bool | None:
    if done_at is None or due is None:
        return None
    return done_at <= due


def _next_due(order: WorkOrder) -> datetime | None:
    if not order.is_open:
        return None
    if order.replied_at is None and order.reply_due_at is not None:
        return order.reply_due_at
    return order.resolve_due_at if order.resolved_at is None else None


async def refresh(
    session: AsyncSession, order: WorkOrder, order_type: WorkOrderType, *, calendar: WorkCalendar | None = None
) -> None:
    calendar = calendar or await load_calendar(session)
    pauses = await pause_intervals(session, order)
    apply_deadlines(order, DeadlinePolicy.of(order_type.policy), calendar=calendar, pauses=pauses)


def pending_alerts(order: WorkOrder, policy: DeadlinePolicy) -> list[PendingAlert]:
    """Every alert this clock run may still raise, with its moment (none while paused or when done)."""
    if not order.is_open or order.paused_at is not None:
        return []
    raised = set(order.alerts_raised or [])
    steps = [
        ("reply", order.replied_at, order.reply_due_at),
        ("resolve", order.resolved_at, order.resolve_due_at),
    ]
    alerts: list[PendingAlert] = []
    open_dues: list[datetime] = []
    for step, done_at, due in steps:
        if done_at is not None or due is None:
            continue
        open_dues.append(due)
        warn = warning_at(order.clock_started_at, due, policy.warn_at)
        alerts += [PendingAlert(f"warn_{step}", warn), PendingAlert(f"breach_{step}", due)]
    alerts = [alert for alert in alerts if alert.kind not in raised]
    level = order.escalation_level
    if open_dues and level < len(policy.escalate_after_hours):
        alerts.append(
            PendingAlert("escalate", min(open_dues) + timedelta(hours=policy.escalate_after_hours[level]), level + 1)
        )
    return alerts


def next_alert(order: WorkOrder, policy: DeadlinePolicy) -> datetime | None:
    moments = [alert.at for alert in pending_alerts(order, policy)]
    return min(moments) if moments else None


def due_alerts(order: WorkOrder, policy: DeadlinePolicy, now: datetime | None = None) -> list[PendingAlert]:
    moment = now or clock.now()
    return sorted((a for a in pending_alerts(order, policy) if a.at <= moment), key=lambda a: a.at)


class AlertState(Protocol):
    """What an order's alerts depend on (a `WorkOrder`, or the sweep's lighter copy of its columns)."""

    @property
    def is_open(self) -> bool: ...
    @property
    def paused_at(self) -> datetime | None: ...
    @property
    def clock_started_at(self) -> datetime: ...
    @property
    def replied_at(self) -> datetime | None: ...
    @property
    def reply_due_at(self) -> datetime | None: ...
    @property
    def resolved_at(self) -> datetime | None: ...
    @property
    def resolve_due_at(self) -> datetime | None: ...
    @property
    def alerts_raised(self) -> list[str]: ...
    @property
    def escalation_level(self) -> int: ...


def alerts_in_turn(
    order: AlertState, policy: DeadlinePolicy, moment: datetime, *, limit: int
) -> tuple[list[PendingAlert], datetime | None]:
    """The alerts a sweep at `moment` raises on this order, one at a time as `due_alerts` gives them
    (the earliest first; raising one escalation level makes the next one pending), at most `limit`,
    and the order's next alert once they are raised (`next_alert`). The same as taking the first of
    `due_alerts`, marking it on the order and asking again, without changing the order and with each
    warning moment worked out once."""
    if not order.is_open or order.paused_at is not None:
        return [], None
    steps: list[tuple[str, datetime]] = []  # (kind, moment) in `pending_alerts`' order
    open_dues: list[datetime] = []
    for warn, breach, done_at, due in (
        ("warn_reply", "breach_reply", order.replied_at, order.reply_due_at),
        ("warn_resolve", "breach_resolve", order.resolved_at, order.resolve_due_at),
    ):
        if done_at is not None or due is None:
            continue
        open_dues.append(due)
        steps += [(warn, warning_at(order.clock_started_at, due, policy.warn_at)), (breach, due)]
    raised = set(order.alerts_raised or [])
    level = order.escalation_level
    first_due = min(open_dues, default=None)
    escalations = policy.escalate_after_hours
    raising: list[PendingAlert] = []
    while True:
        # the earliest pending alert, the first of equals (as a stable sort of `pending_alerts`)
        kind, at, next_level = "", None, 0
        for step_kind, step_at in steps:
            if step_kind not in raised and (at is None or step_at < at):
                kind, at = step_kind, step_at
        if first_due is not None and level < len(escalations):
            escalate_at = first_due + timedelta(hours=escalations[level])
            if at is None or escalate_at < at:
                kind, at, next_level = "escalate", escalate_at, level + 1
        if at is None or at > moment or len(raising) == limit:
            return raising, at
        raising.append(PendingAlert(kind, at, next_level))
        if kind == "escalate":
            level = next_level
        else:
            raised.add(kind)


async def explain_deadlines(session: AsyncSession, order: WorkOrder, order_type: WorkOrderType) -> list[Explanation]:
    """Why each deadline is where it is: the period, skipped and make-up days, pauses, the extension."""
    policy = DeadlinePolicy.of(order_type.policy)
    calendar = await load_calendar(session)
    pauses = await pause_intervals(session, order)
    out: list[Explanation] = []
    for period, due in ((policy.reply, order.reply_due_at), (policy.result, order.resolve_due_at)):
        if period is not None:
            out.append(explain(period, order.clock_started_at, due, calendar=calendar, pauses=pauses))
    return out
