"""The worker's side of work orders: the deadline sweep (due soon, breach, escalation), deadlines
recomputed after a calendar change, and resolved orders closed when no evaluation comes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock, jobs, workcal
from patientline.core.auth.actor import SYSTEM
from patientline.core.config import Settings
from patientline.workorders import notify, service
from patientline.workorders.models import Alert, Status, WorkOrder, WorkOrderType
from patientline.workorders.policy import DeadlinePolicy
from patientline.workorders.timing import PendingAlert, due_alerts, next_alert

SWEEP_BATCH = 1000
MAX_ALERTS_PER_ORDER = 8  # two warnings, two breaches, three escalation levels
RECOMPUTE_JOB = "workorders.recompute_deadlines"


async def _claim_alert(session: AsyncSession, order: WorkOrder, alert: PendingAlert) -> bool:
    """True for the one sweep that records this alert first; a repeat (or a racing node) gets False."""
    suffix = f"{alert.kind}:{alert.level}" if alert.kind == "escalate" else alert.kind
    key = f"{order.id}:{order.reopen_count}:{suffix}"
    insert_ = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert_(Alert)
        .values(key=key, order_id=order.id, kind=alert.kind, level=alert.level, raised_at=clock.now())
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(Alert.id)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def _raise(session: AsyncSession, order: WorkOrder, kind: WorkOrderType, alert: PendingAlert) -> None:
    if alert.kind == "escalate":
        order.escalation_level, order.escalated_at = alert.level, clock.now()
    else:
        order.alerts_raised = [*(order.alerts_raised or []), alert.kind]
    if not await _claim_alert(session, order, alert):
        return
    await notify.alert(session, order, kind, alert_kind=alert.kind, level=alert.level)
    actor_details: dict[str, Any] = {"kind": alert.kind, "level": alert.level, "due": alert.at.isoformat()}
    service.add_timeline(session, order, actor=SYSTEM, action="alert", details=actor_details)
    notify.changed(session, order, alert.kind)


async def sweep(session: AsyncSession, *, now: datetime | None = None, batch: int = SWEEP_BATCH) -> int:
    """One pass: raises every alert that has come due, returns how many orders it touched."""
    moment = now or clock.now()
    types = {row.id: (row, DeadlinePolicy.of(row.policy)) for row in await session.scalars(select(WorkOrderType))}
    query = (
        select(WorkOrder)
        .where(WorkOrder.next_alert_at <= moment, WorkOrder.is_open)
        .order_by(WorkOrder.next_alert_at)
        .limit(batch)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    orders = list(await session.scalars(query))
    for order in orders:
        kind, policy = types[order.type_id]
        for _ in range(MAX_ALERTS_PER_ORDER):  # raising one escalation level makes the next one pending
            due = due_alerts(order, policy, moment)
            if not due:
                break
            await _raise(session, order, kind, due[0])
        order.next_alert_at = next_alert(order, policy)
    await session.flush()
    return len(orders)


@jobs.sweeper("workorders.deadlines", every_seconds=20)
async def sweep_deadlines(session: AsyncSession, settings: Settings) -> None:
    await sweep(session)


@jobs.sweeper("workorders.auto_close", every_seconds=3600)
async def auto_close(session: AsyncSession, settings: Settings) -> None:
    """Resolved orders with no evaluation after the type's `auto_close_days` close as "no evaluation"."""
    for kind in await session.scalars(select(WorkOrderType)):
        days = DeadlinePolicy.of(kind.policy).auto_close_days
        if not days:
            continue
        cutoff = clock.now() - timedelta(days=days)
        stale = await session.scalars(
            select(WorkOrder)
            .where(WorkOrder.type_id == kind.id, WorkOrder.status == Status.RESOLVED, WorkOrder.resolved_at < cutoff)
            .limit(500)
        )
        for order in stale:
            before = order.status
            service.close_now(order, reason="no_evaluation")
            await service.finish_step(session, order, kind, actor=SYSTEM, step="close", before=before,
                                      details={"reason": "no_evaluation"})  # fmt: skip


@jobs.job_handler(RECOMPUTE_JOB)
async def recompute_deadlines(session: AsyncSession, payload: dict[str, Any]) -> None:
    """After a calendar change: every open order's deadlines, in batches that re-enqueue themselves."""
    last = await service.recompute_open(session, after_id=int(payload.get("after_id", 0)))
    if last:
        await jobs.enqueue(session, kind=RECOMPUTE_JOB, payload={"after_id": last})


workcal.CHANGE_JOBS.append(RECOMPUTE_JOB)
