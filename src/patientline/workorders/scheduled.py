"""The worker's side of work orders: the deadline sweep (due soon, breach, escalation), deadlines
recomputed after a calendar change, and resolved orders closed when no evaluation comes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Dialect, Table, inspect, select, text
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
from patientline.workorders.timing import PendingAlert, alerts_in_turn

SWEEP_BATCH = 1000
MAX_ALERTS_PER_ORDER = 8  # two warnings, two breaches, three escalation levels
SWEPT_COLUMNS = ("next_alert_at", "alerts_raised", "escalation_level", "escalated_at")  # what a sweep changes
RECOMPUTE_JOB = "workorders.recompute_deadlines"


@dataclass(slots=True)
class Swept:
    """An order as the sweep reads and changes it: the columns it needs, read without the ORM's cost
    per object (a batch is 1,000 orders of some 50 columns). It serves as a `notify.OrderRef` and a
    `timing.AlertState`."""

    id: int
    version: int
    type_id: int
    department_id: int | None
    reference: str
    subject: str
    status: str
    reopen_count: int
    is_open: bool
    paused_at: datetime | None
    clock_started_at: datetime
    replied_at: datetime | None
    reply_due_at: datetime | None
    resolved_at: datetime | None
    resolve_due_at: datetime | None
    next_alert_at: datetime | None
    alerts_raised: list[str]
    escalation_level: int
    escalated_at: datetime | None

    def swept(self) -> tuple[Any, ...]:
        return self.next_alert_at, self.alerts_raised, self.escalation_level, self.escalated_at

    def mark(self, alert: PendingAlert, at: datetime) -> None:
        """What raising an alert changes on the order, whether or not this sweep is the one that records it."""
        if alert.kind == "escalate":
            self.escalation_level, self.escalated_at = alert.level, at
        else:
            self.alerts_raised = [*(self.alerts_raised or []), alert.kind]


_READ = tuple(getattr(WorkOrder, field_.name) for field_ in fields(Swept))


def _key(order: Swept, alert: PendingAlert) -> str:
    suffix = f"{alert.kind}:{alert.level}" if alert.kind == "escalate" else alert.kind
    return f"{order.id}:{order.reopen_count}:{suffix}"


# The sweep's bulk writes without SQLAlchemy's work per row (thousands of rows a pass): on SQLite an
# executemany of the driver, on PostgreSQL one statement over arrays (unnest, in the rows' order).
# Values go through their columns' bind processing; JSON is bound as the text SQLAlchemy makes of it.
_PG_CLAIM = text(
    "INSERT INTO wo_alerts (key, order_id, kind, level, raised_at) SELECT key, order_id, kind, level, :raised_at "
    "FROM unnest(CAST(:keys AS VARCHAR[]), CAST(:order_ids AS INTEGER[]), CAST(:kinds AS VARCHAR[]), "
    "CAST(:levels AS INTEGER[])) WITH ORDINALITY AS v(key, order_id, kind, level, n) ORDER BY n "
    "ON CONFLICT (key) DO NOTHING RETURNING key"
)
_TIMELINE = ("order_id", "at", "actor_id", "actor_name", "action", "from_status", "to_status", "note", "details")
_SQLITE_TIMELINE = (
    "INSERT INTO wo_timeline (order_id, at, actor_id, actor_name, action, from_status, to_status, note, details) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_PG_TIMELINE = text(
    "INSERT INTO wo_timeline (order_id, at, actor_id, actor_name, action, from_status, to_status, note, details) "
    "SELECT order_id, at, actor_id, actor_name, action, from_status, to_status, note, details "
    "FROM unnest(CAST(:order_id AS INTEGER[]), CAST(:at AS TIMESTAMP WITH TIME ZONE[]), CAST(:actor_id AS INTEGER[]), "
    "CAST(:actor_name AS VARCHAR[]), CAST(:action AS VARCHAR[]), CAST(:from_status AS VARCHAR[]), "
    "CAST(:to_status AS VARCHAR[]), CAST(:note AS TEXT[]), CAST(:details AS JSON[])) WITH ORDINALITY "
    "AS v(order_id, at, actor_id, actor_name, action, from_status, to_status, note, details, n) ORDER BY n"
)
_SQLITE_SAVE = (
    "UPDATE work_orders SET next_alert_at = ?, alerts_raised = ?, escalation_level = ?, escalated_at = ?, "
    "version = ?, updated_at = ? WHERE id = ? AND version = ?"
)
_PG_SAVE = text(
    "UPDATE work_orders SET next_alert_at = v.next_alert_at, alerts_raised = v.alerts_raised, "
    "escalation_level = v.escalation_level, escalated_at = v.escalated_at, version = v.version + 1, "
    "updated_at = :updated_at FROM unnest(CAST(:ids AS INTEGER[]), CAST(:versions AS INTEGER[]), "
    "CAST(:next_alert_at AS TIMESTAMP WITH TIME ZONE[]), CAST(:alerts_raised AS JSON[]), "
    "CAST(:escalation_level AS INTEGER[]), CAST(:escalated_at AS TIMESTAMP WITH TIME ZONE[])) "
    "AS v(id, version, next_alert_at, alerts_raised, escalation_level, escalated_at) "
    "WHERE work_orders.id = v.id AND work_orders.version = v.version"
)


async def _claim_alerts(session: AsyncSession, alerts: list[tuple[Swept, PendingAlert, str]], at: datetime) -> set[str]:
    """The keys of the alerts this sweep records first; a repeat (or a racing node) gets none of them.
    One INSERT ... ON CONFLICT DO NOTHING RETURNING for all of them (on PostgreSQL from arrays, in order)."""
    if not alerts:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        arrays = {
            "keys": [key for _, _, key in alerts],
            "order_ids": [order.id for order, _, _ in alerts],
            "kinds": [alert.kind for _, alert, _ in alerts],
            "levels": [alert.level for _, alert, _ in alerts],
            "raised_at": at,
        }
        return set(await session.scalars(_PG_CLAIM, arrays))
    table = cast(Table, Alert.__table__)
    rows = [
        {"key": key, "order_id": order.id, "kind": alert.kind, "level": alert.level, "raised_at": at}
        for order, alert, key in alerts
    ]
    statement = sqlite_insert(table).on_conflict_do_nothing(index_elements=["key"]).returning(table.c.key)
    return set(await session.scalars(statement, rows))


def _processor(column: ColumnElement[Any], dialect: Dialect) -> Callable[[Any], Any]:
    """What SQLAlchemy does to a value bound to this column on this database."""
    return column.type.dialect_impl(dialect).bind_processor(dialect) or _same


def _same(value: Any) -> Any:
    return value


async def _insert_timeline(session: AsyncSession, lines: list[dict[str, Any]]) -> None:
    """The alerts' timeline lines (`service.timeline_values`) in one statement, in the order given."""
    if not lines:
        return
    connection = await session.connection()
    table = cast(Table, TimelineEntry.__table__)
    bind_at, bind_details = (_processor(table.c[name], connection.dialect) for name in ("at", "details"))
    rows = [
        (line["order_id"], bind_at(line["at"]), line["actor_id"], line["actor_name"], line["action"],
         line["from_status"], line["to_status"], line["note"], bind_details(line["details"]))
        for line in lines
    ]  # fmt: skip
    if connection.dialect.name == "postgresql":
        await connection.execute(_PG_TIMELINE, dict(zip(_TIMELINE, map(list, zip(*rows, strict=True)), strict=True)))
    else:
        await connection.exec_driver_sql(_SQLITE_TIMELINE, rows)


async def _full_orders(session: AsyncSession, ids: list[int]) -> dict[int, WorkOrder]:
    """The whole orders, for what needs more than the sweep reads (a department contact's text)."""
    if not ids:
        return {}
    return {order.id: order for order in await session.scalars(select(WorkOrder).where(WorkOrder.id.in_(ids)))}


def _show(order: Swept, loaded: WorkOrder) -> None:
    """The loaded order as the sweep has it so far, without making it dirty for the ORM's flush."""
    for key in SWEPT_COLUMNS:
        set_committed_value(loaded, key, getattr(order, key))


async def _save(session: AsyncSession, changed: list[Swept], at: datetime) -> None:
    """Writes the swept columns of these orders in one statement, with the version check and version
    bump of the ORM's flush; an order the session holds as an object is left as that flush would leave it."""
    if not changed:
        return
    connection = await session.connection()
    dialect = connection.dialect
    table = cast(Table, WorkOrder.__table__)
    bind_time, bind_json = (_processor(table.c[name], dialect) for name in ("updated_at", "alerts_raised"))
    if dialect.name == "postgresql":
        arrays = {
            "ids": [order.id for order in changed],
            "versions": [order.version for order in changed],
            "next_alert_at": [bind_time(order.next_alert_at) for order in changed],
            "alerts_raised": [bind_json(order.alerts_raised) for order in changed],
            "escalation_level": [order.escalation_level for order in changed],
            "escalated_at": [bind_time(order.escalated_at) for order in changed],
            "updated_at": bind_time(at),
        }
        result = cast("CursorResult[Any]", await connection.execute(_PG_SAVE, arrays))
    else:
        updated_at = bind_time(at)
        rows = [
            (bind_time(order.next_alert_at), bind_json(order.alerts_raised), order.escalation_level,
             bind_time(order.escalated_at), order.version + 1, updated_at, order.id, order.version)
            for order in changed
        ]  # fmt: skip
        result = await connection.exec_driver_sql(_SQLITE_SAVE, rows)
    if result.rowcount != len(changed):
        raise StaleDataError(
            f"UPDATE statement on table 'work_orders' expected to update {len(changed)} row(s); "
            f"{result.rowcount} were matched."
        )
    by_id = {order.id: order for order in changed}
    for loaded in session.identity_map.values():
        if not isinstance(loaded, WorkOrder):
            continue
        identity = inspect(loaded).identity
        order = by_id.get(identity[0]) if identity else None
        if order is not None:
            _show(order, loaded)
            set_committed_value(loaded, "version", order.version + 1)
            set_committed_value(loaded, "updated_at", at)
    for order in changed:
        order.version += 1


async def sweep(session: AsyncSession, *, now: datetime | None = None, batch: int = SWEEP_BATCH) -> int:
    """One pass: raises every alert that has come due, returns how many orders it touched.

    Per batch, the orders' columns are read in one query, the alerts claimed in one statement, the
    departments' contacts read in one query, the timeline lines written in one statement and the
    orders in one; each order still gets its alerts in turn, as if raised one by one (a notification
    sees the order as it was then). What the batch writes is stamped with one moment."""
    moment = now or clock.now()
    stamp = clock.now()
    types = {row.id: (row, DeadlinePolicy.of(row.policy)) for row in await session.scalars(select(WorkOrderType))}
    query = (
        select(*_READ)
        .where(WorkOrder.next_alert_at <= moment, WorkOrder.is_open)
        .order_by(WorkOrder.next_alert_at)
        .limit(batch)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    orders = [Swept(*row) for row in await session.execute(query)]
    visits: list[tuple[Swept, WorkOrderType, list[tuple[PendingAlert, str]], datetime | None]] = []
    for order in orders:
        kind, policy = types[order.type_id]
        raising, following = alerts_in_turn(order, policy, moment, limit=MAX_ALERTS_PER_ORDER)
        visits.append((order, kind, [(alert, _key(order, alert)) for alert in raising], following))
    claimed = await _claim_alerts(session, [(order, *due) for order, _, alerts, _ in visits for due in alerts], stamp)
    escalated = (order.department_id for order, _, alerts, _ in visits if any(a.kind == "escalate" for a, _ in alerts))
    contacts = await notify.department_contacts(session, escalated)

    def messages(order: Swept, alert: PendingAlert) -> bool:
        return notify.messages_contact(order, alert_kind=alert.kind, level=alert.level, contacts=contacts)

    loaded = await _full_orders(session, [
        order.id for order, _, alerts, _ in visits
        if any(key in claimed and messages(order, alert) for alert, key in alerts)
    ])  # fmt: skip
    timeline: list[dict[str, Any]] = []
    changed: list[Swept] = []
    for order, kind, alerts, following in visits:
        before = order.swept()
        for alert, key in alerts:
            order.mark(alert, stamp)
            if key not in claimed:
                continue
            notify.alert(session, order, alert_kind=alert.kind, level=alert.level, contacts=contacts)
            if messages(order, alert):
                whole = loaded[order.id]
                _show(order, whole)
                await notify.escalation_to_contact(session, whole, kind, level=alert.level, contacts=contacts)
            details: dict[str, Any] = {"kind": alert.kind, "level": alert.level, "due": alert.at.isoformat()}
            timeline.append(service.timeline_values(order, actor=SYSTEM, action="alert", details=details))
            notify.changed(session, order, alert.kind)
        order.next_alert_at = following
        if order.swept() != before:
            changed.append(order)
    await _insert_timeline(session, timeline)
    await _save(session, changed, stamp)
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
