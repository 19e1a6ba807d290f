"""The worker's side of work orders: the deadline sweep (due soon, breach, escalation), deadlines
recomputed after a calendar change, and resolved orders closed when no evaluation comes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from patientline.core import clock, jobs, workcal
from patientline.core.auth.actor import SYSTEM
from patientline.core.config import Settings
from patientline.workorders import notify, service
from patientline.workorders.models import Alert, Status, TimelineEntry, WorkOrder, WorkOrderType
from patientline.workorders.policy import DeadlinePolicy
from patientline.workorders.timing import PendingAlert, next_alert, pending_alerts

SWEEP_BATCH = 1000
MAX_ALERTS_PER_ORDER = 8  # two warnings, two breaches, three escalation levels
SWEPT_COLUMNS = ("next_alert_at", "alerts_raised", "escalation_level", "escalated_at")  # what a sweep changes
RECOMPUTE_JOB = "workorders.recompute_deadlines"


def _key(order: WorkOrder, alert: PendingAlert) -> str:
    suffix = f"{alert.kind}:{alert.level}" if alert.kind == "escalate" else alert.kind
    return f"{order.id}:{order.reopen_count}:{suffix}"


def _swept(order: WorkOrder) -> tuple[Any, ...]:
    return tuple(getattr(order, key) for key in SWEPT_COLUMNS)


def _put(order: WorkOrder, key: str, value: Any) -> None:
    """Sets a column the sweep changes without making the order dirty for the ORM's flush, which would
    send one UPDATE per order (a versioned table): `_save` writes the batch's changes in one."""
    set_committed_value(order, key, value)


def _mark(order: WorkOrder, alert: PendingAlert) -> None:
    """What raising an alert changes on the order, whether or not this sweep is the one that records it."""
    if alert.kind == "escalate":
        _put(order, "escalation_level", alert.level)
        _put(order, "escalated_at", clock.now())
    else:
        _put(order, "alerts_raised", [*(order.alerts_raised or []), alert.kind])


def _due_in_turn(
    order: WorkOrder, policy: DeadlinePolicy, moment: datetime
) -> tuple[list[PendingAlert], datetime | None]:
    """The alerts this visit raises, earliest first (raising one escalation level makes the next one
    pending), and the order's next alert after them (`timing.next_alert` of the order once raised);
    the order is left as it was."""
    saved = _swept(order)
    due: list[PendingAlert] = []
    for _ in range(MAX_ALERTS_PER_ORDER):
        pending = pending_alerts(order, policy)
        ready = sorted((alert for alert in pending if alert.at <= moment), key=lambda alert: alert.at)
        if not ready:
            following = min((alert.at for alert in pending), default=None)
            break
        _mark(order, ready[0])
        due.append(ready[0])
    else:
        following = next_alert(order, policy)
    for key, value in zip(SWEPT_COLUMNS, saved, strict=True):
        _put(order, key, value)
    return due, following


async def _claim_alerts(session: AsyncSession, alerts: list[tuple[WorkOrder, PendingAlert]]) -> set[str]:
    """The keys of the alerts this sweep records first; a repeat (or a racing node) gets none of them.
    One batched INSERT ... ON CONFLICT DO NOTHING for all of them."""
    if not alerts:
        return set()
    insert_ = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = cast(Table, Alert.__table__)
    rows = [
        {"key": _key(order, alert), "order_id": order.id, "kind": alert.kind, "level": alert.level,
         "raised_at": clock.now()}
        for order, alert in alerts
    ]  # fmt: skip
    statement = insert_(table).on_conflict_do_nothing(index_elements=["key"]).returning(table.c.key)
    return set(await session.scalars(statement, rows))


async def _save(session: AsyncSession, changed: list[WorkOrder]) -> None:
    """Writes the swept columns of these orders in one executemany UPDATE, with the version check (where
    the driver reports rows per batch; PostgreSQL holds the rows locked) and version bump of the ORM's
    flush, and leaves the objects as that flush would."""
    if not changed:
        return
    table = cast(Table, WorkOrder.__table__)
    statement = (
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.version == bindparam("b_version"))
        .values(
            {key: bindparam(f"v_{key}", type_=table.c[key].type) for key in SWEPT_COLUMNS}
            | {
                "version": bindparam("v_version"),
                "updated_at": bindparam("v_updated_at", type_=table.c.updated_at.type),
            }
        )
    )
    now = clock.now()
    params = [
        {"b_id": order.id, "b_version": order.version, "v_version": order.version + 1, "v_updated_at": now}
        | {f"v_{key}": getattr(order, key) for key in SWEPT_COLUMNS}
        for order in changed
    ]
    result = cast("CursorResult[Any]", await session.execute(statement, params))
    if session.get_bind().dialect.supports_sane_multi_rowcount and result.rowcount != len(changed):
        raise StaleDataError(
            f"UPDATE statement on table 'work_orders' expected to update {len(changed)} row(s); "
            f"{result.rowcount} were matched."
        )
    for order in changed:
        set_committed_value(order, "version", order.version + 1)
        set_committed_value(order, "updated_at", now)


async def sweep(session: AsyncSession, *, now: datetime | None = None, batch: int = SWEEP_BATCH) -> int:
    """One pass: raises every alert that has come due, returns how many orders it touched.

    Per batch, the alerts are claimed in one statement, the departments' contacts read in one query,
    the timeline lines written in one statement and the orders in one; each order still gets its
    alerts in turn, as if raised one by one (a notification sees the order as it was then)."""
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
    before = {order.id: _swept(order) for order in orders}
    visits = [(order, *types[order.type_id]) for order in orders]
    turns = {order.id: _due_in_turn(order, policy, moment) for order, _, policy in visits}
    due = {order_id: alerts for order_id, (alerts, _) in turns.items()}
    claimed = await _claim_alerts(session, [(order, alert) for order in orders for alert in due[order.id]])
    escalated = (order.department_id for order in orders if any(a.kind == "escalate" for a in due[order.id]))
    contacts = await notify.department_contacts(session, escalated)
    timeline: list[dict[str, Any]] = []
    for order, kind, _ in visits:
        for alert in due[order.id]:
            _mark(order, alert)
            if _key(order, alert) not in claimed:
                continue
            await notify.alert(session, order, kind, alert_kind=alert.kind, level=alert.level, contacts=contacts)
            details: dict[str, Any] = {"kind": alert.kind, "level": alert.level, "due": alert.at.isoformat()}
            timeline.append(service.timeline_values(order, actor=SYSTEM, action="alert", details=details))
            notify.changed(session, order, alert.kind)
        _put(order, "next_alert_at", turns[order.id][1])
    if timeline:
        await session.execute(insert(cast(Table, TimelineEntry.__table__)), timeline)
    await _save(session, [order for order in orders if _swept(order) != before[order.id]])
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
