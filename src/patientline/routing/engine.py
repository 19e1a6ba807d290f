"""The router's adapter: one `Engine` per process drives the pure core (`routing/core.py`).

It runs the core only while it holds the router's leader lock (always on SQLite); a standby answers
`router_unavailable` (503) and takes over within seconds when the leader goes. Every command runs
under one asyncio lock: the core applies it, then one transaction writes the tasks' and agents' rows
and the queue-log lines and records the events, which go out after the commit. When that write
fails the core is rebuilt from the database, so nothing half-applied survives, and a task is offered
only once its row says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from patientline.core import audit, clock, events, workcal
from patientline.core.auth.actor import Actor
from patientline.core.auth.models import User
from patientline.core.config import Settings
from patientline.core.db import Database
from patientline.core.errors import Conflict, DomainError, NotFound
from patientline.core.events import Bus, Published
from patientline.core.i18n import N_
from patientline.core.workcal import WorkingHours
from patientline.directory.events import DirectoryChanged
from patientline.routing import core, metrics, service
from patientline.routing.events import (
    SUPERVISORS,
    AgentStatusChanged,
    OfferRang,
    OfferStopped,
    QueueFigures,
    RoutingConfigured,
    agent_audience,
)
from patientline.routing.models import AgentState, QueueLogEntry, RoutingQueue, RoutingTask, TaskState
from patientline.routing.schemas import TaskCreate

log = logging.getLogger(__name__)

ROUTER_LOCK_KEY = 0x504C5254  # "PLRT": the router's own advisory lock, apart from the worker's
LEADER_CHECK_S = 5.0  # a standby tries for the lock, and the leader checks it still holds it, this often
FIGURES_EVERY_S = 1.0  # at most one routing.queue event per queue in this time
MAX_SLEEP_S = 1.0
SHOWN_STATUSES = ("ready", "offered", "busy", "wrap_up", "not_ready")  # the wallboard's agent counts per queue
SL_ALERT_MIN_CONTACTS = 10  # below this many contacts today a service level says little
LINE_RESOLUTION = timedelta(milliseconds=1)
NOT_FOUND_CODES = frozenset({"unknown_task", "unknown_agent", "unknown_queue"})
ROUTING_MESSAGES = {
    "unknown_task": N_("No such task."),
    "unknown_agent": N_("The agent is not logged in to routing."),
    "unknown_queue": N_("No such queue."),
    "not_offered": N_("This task is not ringing for you."),
    "busy": N_("Finish or pass on the work in hand first."),
    "not_waiting": N_("This task is already with an agent."),
    "not_active": N_("This task is not with an agent."),
    "not_yours": N_("This task is with another agent."),
    "duplicate_task": N_("This task is already being routed."),
    "queue_not_empty": N_("Tasks are waiting in this queue."),
}
TERMINAL = {"complete": TaskState.DONE, "abandon": TaskState.ABANDONED, "expire": TaskState.EXPIRED}


class RouterUnavailable(DomainError):
    status_code = 503
    error_id = "router_unavailable"


def refused(code: str) -> DomainError:
    """A core refusal in the house error shape: 404 for unknown ids, else 409; the code in details."""
    message = ROUTING_MESSAGES.get(code, N_("The router refused this step."))
    if code in NOT_FOUND_CODES:
        return NotFound(message, details={"code": code})
    return Conflict(message, details={"code": code}, error_id="routing_refused")


def iso(moment: float | None) -> str | None:
    return None if moment is None else datetime.fromtimestamp(moment, UTC).isoformat()


def moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


class RouterLock:
    """PostgreSQL advisory lock on a connection of its own; always held on SQLite (one process)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._connection: AsyncConnection | None = None
        self.held = False

    async def try_acquire(self) -> bool:
        if self.db.is_sqlite:
            self.held = True
            return True
        if self._connection is not None:
            return await self._still_held()
        connection = await self.db.engine.connect()
        got = bool(await connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": ROUTER_LOCK_KEY}))
        await connection.commit()
        if got:
            self._connection, self.held = connection, True
        else:
            await connection.close()
        return got

    async def _still_held(self) -> bool:
        assert self._connection is not None  # noqa: S101
        try:
            await self._connection.scalar(text("SELECT 1"))
            await self._connection.commit()
        except Exception:
            log.warning("router lock connection lost")
            await self.release()
        return self.held

    async def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ROUTER_LOCK_KEY})
                await self._connection.commit()
            with contextlib.suppress(Exception):
                await self._connection.close()
        self._connection, self.held = None, False


@dataclass(frozen=True)
class QueueInfo:
    """What the adapter needs of a queue beyond the core's configuration."""

    id: int
    code: str
    name: str
    hours: WorkingHours
    working_days_only: bool
    is_active: bool
    vip_priority: int
    sl_seconds: int
    sl_target: float
    short_abandon_s: int
    max_wait_s: int | None
    alert_waiting: int | None

    @classmethod
    def of(cls, row: RoutingQueue) -> QueueInfo:
        return cls(row.id, row.code, row.name, WorkingHours.parse(row.hours), row.working_days_only, row.is_active,
                   row.vip_priority, row.sl_seconds, row.sl_target, row.short_abandon_s, row.max_wait_s,
                   row.alert_waiting)  # fmt: skip

    def open_at(self, local: datetime, calendar: workcal.WorkCalendar | None) -> bool:
        if not self.is_active:
            return False
        if self.working_days_only and calendar is not None and not calendar.is_working_day(local.date()):
            return False
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.hours.windows)


@dataclass
class LiveTask:
    """A live task's row as last written, and what the agent is shown of it."""

    id: int
    queue_id: int
    channel: str
    priority: int
    is_vip: bool
    entered_at: datetime
    caller: dict[str, Any]
    subject: str
    external_ref: str | None
    state: str = TaskState.WAITING
    agent_id: int | None = None
    offered_at: datetime | None = None
    accepted_at: datetime | None = None
    ended_at: datetime | None = None
    kept_place: bool = False

    @classmethod
    def of(cls, row: RoutingTask) -> LiveTask:
        return cls(row.id, row.queue_id, row.channel, row.priority, row.is_vip, row.entered_at, dict(row.caller),
                   row.subject, row.external_ref, row.state, row.agent_id, row.offered_at, row.accepted_at,
                   row.ended_at, row.kept_place)  # fmt: skip

    def row_values(self) -> dict[str, Any]:
        columns = ("id", "state", "queue_id", "channel", "priority", "agent_id", "offered_at", "accepted_at",
                   "ended_at", "kept_place")  # fmt: skip
        return {f"_{key}": getattr(self, key) for key in columns}


_task_table = cast(Table, RoutingTask.__table__)
UPDATE_TASK = (
    update(_task_table)
    .where(_task_table.c.id == bindparam("_id"))
    .values(
        state=bindparam("_state"), queue_id=bindparam("_queue_id"), channel=bindparam("_channel"),
        priority=bindparam("_priority"), agent_id=bindparam("_agent_id"), offered_at=bindparam("_offered_at"),
        accepted_at=bindparam("_accepted_at"), ended_at=bindparam("_ended_at"), kept_place=bindparam("_kept_place"),
        version=_task_table.c.version + 1, updated_at=bindparam("_updated_at"),
    )
)  # fmt: skip


@dataclass
class Unit:
    """One command's work: the session it writes in, its moment, and what to do once committed."""

    session: AsyncSession
    now: float
    router: core.Router
    changed: bool = False
    finished: dict[int, LiveTask] = field(default_factory=dict)  # tasks that left the router in this unit
    figures_sent: list[int] = field(default_factory=list)


class Engine:
    def __init__(self, db: Database, *, settings: Settings, bus: Bus | None = None,
                 config: core.RouterConfig | None = None) -> None:  # fmt: skip
        self.db = db
        self.settings = settings
        self.bus = bus
        self.config = config or core.RouterConfig()
        self.zone = ZoneInfo(settings.timezone)
        self.lock = RouterLock(db)
        self.core: core.Router | None = None
        self.queues: dict[int, QueueInfo] = {}
        self.tasks: dict[int, LiveTask] = {}
        self.names: dict[int, str] = {}
        self.today: list[metrics.Entry] = []
        self.day: date = clock.today(settings.timezone)
        self._mutex = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self._next_leader_check = 0.0
        self._figures_sent: dict[int, float] = {}
        self._figures_due: set[int] = set()
        self._today_cache: dict[int, tuple[tuple[int, int], metrics.QueueMetrics]] = {}

    # ---- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> Engine:
        """Takes the lead if free (rebuilding the core), then keeps time in the background."""
        if self.bus is not None:
            self._unsubscribe = self.bus.subscribe(self._on_event)
        await self._lead()
        self._loop_task = asyncio.create_task(self._run(), name="patientline-router")
        return self

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
        for task in [self._loop_task, *self._background]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        async with self._mutex:
            self.core = None
        await self.lock.release()

    @property
    def leading(self) -> bool:
        return self.core is not None

    async def _lead(self) -> None:
        """Standby: try for the lock. Leader: check it is still held, else stop routing."""
        self._next_leader_check = clock.monotonic() + LEADER_CHECK_S
        held = await self.lock.try_acquire()
        async with self._mutex:
            if held and self.core is None:
                await self._rebuild()
            elif not held and self.core is not None:
                log.warning("router lost its lock; standing by")
                self.core = None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                await self.step()
            except Exception:
                log.exception("router step failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._sleep_seconds())

    async def step(self) -> None:
        """What the background loop does each time it wakes; tests call `tick` after moving the clock."""
        if clock.monotonic() >= self._next_leader_check:
            await self._lead()
        if self.core is not None:
            await self.tick()
            await self._send_figures()

    def _sleep_seconds(self) -> float:
        wait = MAX_SLEEP_S
        if self.core is not None and (due := self.core.next_due()) is not None:
            wait = min(wait, due - clock.now().timestamp())
        if self._figures_due:
            wait = min(wait, min(self._figures_sent.get(q, 0.0) for q in self._figures_due)
                       + FIGURES_EVERY_S - clock.monotonic())  # fmt: skip
        return max(wait, 0.005)

    async def tick(self) -> None:
        """Offer timeouts, wrap-up ends, maximum waits and tiers opening, due by the clock now; and a new
        day at local midnight."""
        if self.core is None or not self._tick_due(self.core):
            return
        async with self.unit() as unit:
            await self.apply(unit, lambda r, now: r.tick(now))

    def _tick_due(self, router: core.Router) -> bool:
        due = router.next_due()
        return (due is not None and due <= clock.now().timestamp()) or clock.today(self.settings.timezone) != self.day

    # ---- the unit of work -------------------------------------------------------------------------

    def require_core(self) -> core.Router:
        if self.core is None:
            raise RouterUnavailable("Routing is not available on this server right now; try again shortly.")
        return self.core

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[Unit]:
        """One command: under the lock, in one transaction; the core is rebuilt if the write fails
        after it changed."""
        async with self._mutex:
            router = self.require_core()
            unit: Unit | None = None
            try:
                async with self.db.sessions() as session, session.begin():
                    unit = Unit(session, clock.now().timestamp(), router)
                    await self._new_day_if_due(unit)
                    yield unit
            except BaseException:
                if unit is not None and unit.changed:
                    await self._recover()
                raise
            self._committed(unit)

    async def apply(
        self, unit: Unit, command: Callable[[core.Router, float], list[core.Effect]], *, task: int | None = None
    ) -> list[core.Effect]:
        """Runs one core command and writes what it caused (and the row of `task`, which it may change
        silently: priority, channel). A refusal changes nothing and answers 404/409."""
        try:
            effects = command(unit.router, unit.now)
        except core.RoutingError as exc:
            raise refused(exc.code) from exc
        unit.changed = True
        await self._persist(unit, effects, task)
        return effects

    async def _recover(self) -> None:
        """The write failed after the core changed: what the core holds may not be in the database."""
        log.warning("routing write failed; rebuilding the core from the database")
        try:
            await self._rebuild()
        except Exception:
            log.exception("router rebuild failed; standing by until the next try")

    def _committed(self, unit: Unit) -> None:
        sent_at = clock.monotonic()
        for queue_id in unit.figures_sent:
            self._figures_sent[queue_id] = sent_at
            self._figures_due.discard(queue_id)
        self._wake.set()

    async def _new_day_if_due(self, unit: Unit) -> None:
        today = clock.today(self.settings.timezone)
        if today == self.day:
            return
        self.day = today
        self.today = [line for line in self.today if line.at >= metrics.local_day_start(today, self.settings.timezone)]
        self._today_cache.clear()
        unit.router.new_day()
        await unit.session.execute(update(AgentState).values(handled_today=0))

    # ---- writing what happened --------------------------------------------------------------------

    async def _persist(self, unit: Unit, effects: list[core.Effect], task: int | None = None) -> None:
        tasks: dict[int, None] = {} if task is None else {task: None}
        agents: dict[int, None] = {}
        queues: dict[int, None] = {}
        ended: dict[int, str] = {}
        lines: list[metrics.Entry] = []
        for effect in effects:
            if isinstance(effect, core.Logged):
                lines.append(self._line(effect))
                if effect.task is not None:
                    tasks[effect.task] = None
                    if effect.event in TERMINAL:
                        ended[effect.task] = TERMINAL[effect.event]
                if effect.queue is not None:
                    queues[effect.queue] = None
            elif isinstance(effect, core.Offered):
                tasks[effect.task] = None
                self._record_offer(unit, effect)
            elif isinstance(effect, core.OfferEnded):
                tasks[effect.task] = None
                self._record(unit, OfferStopped(task_id=effect.task, reason=effect.reason,
                                                audience=agent_audience(effect.agent)))  # fmt: skip
            elif isinstance(effect, core.AgentChanged):
                agents[effect.agent] = None
                self._record_agent(unit, effect)
            elif isinstance(effect, core.TaskExpired):
                ended[effect.task] = TaskState.EXPIRED
        await self._write_tasks(unit, list(tasks), ended)
        await self._write_agents(unit, list(agents))
        if lines:
            await unit.session.execute(insert(QueueLogEntry), [self._log_row(line) for line in lines])
            self.today.extend(lines)  # a failed commit rebuilds this from the table
        for agent_id in agents:
            queues.update(dict.fromkeys(self._queues_of(unit.router, agent_id)))
        self._queue_figures(unit, list(queues))

    @staticmethod
    def _line(effect: core.Logged) -> metrics.Entry:
        return metrics.Entry(at=datetime.fromtimestamp(effect.at, UTC), event=effect.event, queue_id=effect.queue,
                             task_id=effect.task, agent_id=effect.agent, channel=effect.channel, wait_s=effect.wait_s,
                             duration_s=effect.duration_s, reason=effect.reason, by_id=effect.by)  # fmt: skip

    @staticmethod
    def _log_row(line: metrics.Entry) -> dict[str, Any]:
        return {"at": line.at, "event": line.event, "queue_id": line.queue_id, "task_id": line.task_id,
                "agent_id": line.agent_id, "channel": line.channel, "wait_s": line.wait_s,
                "duration_s": line.duration_s, "reason": line.reason, "by_id": line.by_id}  # fmt: skip

    def _record(self, unit: Unit, event: events.Event) -> None:
        events.record(unit.session, event)

    def _record_offer(self, unit: Unit, offer: core.Offered) -> None:
        self._record(unit, OfferRang(**self.offer_json(offer.task, offer.expires_at),
                                     audience=agent_audience(offer.agent)))  # fmt: skip

    def _record_agent(self, unit: Unit, change: core.AgentChanged) -> None:
        values = {"user_id": change.agent, "status": change.status.value,
                  "reason": change.reason.value if change.reason else None, "since": iso(change.since)}  # fmt: skip
        self._record(unit, AgentStatusChanged(**values, audience=agent_audience(change.agent)))
        self._record(unit, AgentStatusChanged(**values, audience=SUPERVISORS))

    async def _write_tasks(self, unit: Unit, task_ids: list[int], ended: dict[int, str]) -> None:
        if not task_ids:
            return
        now = moment(unit.now)
        rows = []
        for task_id in task_ids:
            live = self.tasks.get(task_id)
            if live is None:
                continue
            try:
                self._follow(live, unit.router.task(task_id), now)
            except core.RoutingError:
                live.state, live.ended_at = ended.get(task_id, TaskState.DONE), now
                if live.state != TaskState.DONE:
                    live.agent_id = None
                unit.finished[task_id] = self.tasks.pop(task_id)
            rows.append(live.row_values() | {"_updated_at": now})
        if rows:
            await unit.session.execute(UPDATE_TASK, rows)

    @staticmethod
    def _follow(live: LiveTask, view: core.TaskView, now: datetime | None) -> None:
        if view.state is core.TaskState.OFFERED and (live.state != TaskState.OFFERED or live.agent_id != view.agent):
            live.offered_at = now
        if view.state is core.TaskState.WAITING:
            live.offered_at = None
        live.state, live.queue_id, live.agent_id = view.state.value, view.queue, view.agent
        live.channel, live.priority, live.accepted_at = view.channel, view.priority, moment(view.accepted_at)

    async def _write_agents(self, unit: Unit, agent_ids: list[int]) -> None:
        if not agent_ids:
            return
        rows = [self._agent_row(unit.router, agent_id) for agent_id in agent_ids]
        dialect = postgresql if unit.session.get_bind().dialect.name == "postgresql" else sqlite
        statement = dialect.insert(AgentState)
        keep = {key: statement.excluded[key] for key in rows[0] if key != "user_id"}
        await unit.session.execute(statement.on_conflict_do_update(index_elements=["user_id"], set_=keep), rows)

    @staticmethod
    def _agent_row(router: core.Router, agent_id: int) -> dict[str, Any]:
        try:
            view = router.agent(agent_id)
        except core.RoutingError:  # logged out and nothing in hand: gone from the core
            return {"user_id": agent_id, "presence": "offline", "status": "offline", "reason": None,
                    "since": clock.now(), "idle_since": None, "handled_today": 0, "missed_offers": 0}  # fmt: skip
        return {"user_id": agent_id, "presence": view.presence.value, "status": view.status.value,
                "reason": view.reason.value if view.reason else None, "since": moment(view.since),
                "idle_since": moment(view.idle_since), "handled_today": view.handled_today,
                "missed_offers": view.missed}  # fmt: skip

    @staticmethod
    def _queues_of(router: core.Router, agent_id: int) -> Iterable[int]:
        try:
            return router.agent(agent_id).profile.queues.keys()
        except core.RoutingError:
            return ()

    # ---- live figures -----------------------------------------------------------------------------

    def _queue_figures(self, unit: Unit, queue_ids: list[int]) -> None:
        """Each changed queue's figures go out now, or (at most once a second) from the loop."""
        at = clock.monotonic()
        for queue_id in queue_ids:
            if queue_id not in self.queues or queue_id in unit.figures_sent:
                continue
            if at - self._figures_sent.get(queue_id, -FIGURES_EVERY_S) >= FIGURES_EVERY_S:
                self._record(unit, QueueFigures(**self.queue_json(unit.router, queue_id, unit.now),
                                                audience=SUPERVISORS))  # fmt: skip
                unit.figures_sent.append(queue_id)
            else:
                self._figures_due.add(queue_id)

    async def _send_figures(self) -> None:
        at = clock.monotonic()
        due = [q for q in self._figures_due if at - self._figures_sent.get(q, 0.0) >= FIGURES_EVERY_S]
        if not due:
            return
        async with self.unit() as unit:
            self._queue_figures(unit, due)

    def today_metrics(self, queue_id: int) -> metrics.QueueMetrics:
        """Today's figures of one queue from the day's lines, kept in memory (computed again when lines
        were added, or a second later for the agents' time)."""
        now = clock.now()
        key = (len(self.today), int(now.timestamp()))
        cached = self._today_cache.get(queue_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        info = self.queues[queue_id]
        start = metrics.local_day_start(self.day, self.settings.timezone)
        period = (start, max(now, start) + LINE_RESOLUTION)  # the lines written this instant count
        figures = metrics.summarise(self.today, sl_seconds=info.sl_seconds, short_abandon_s=info.short_abandon_s,
                                    queue_id=queue_id, period=period)  # fmt: skip
        self._today_cache[queue_id] = (key, figures)
        return figures

    def queue_json(self, router: core.Router, queue_id: int, now: float) -> dict[str, Any]:
        info, stats = self.queues[queue_id], router.queue_stats(queue_id, now)
        today = self.today_metrics(queue_id)
        return {
            "id": queue_id,
            "code": info.code,
            "name": info.name,
            "waiting": stats.waiting,
            "ringing": stats.ringing,
            "longest_wait_s": round(stats.longest_wait_s, 1),
            "agents": {status: stats.agents.get(core.Status(status), 0) for status in SHOWN_STATUSES},
            "today": today.to_dict(),
            "sl_target": info.sl_target,
            "sl_seconds": info.sl_seconds,
            "alerts": alerts(info, stats, today),
        }

    # ---- what the agent is shown ------------------------------------------------------------------

    def offer_json(self, task_id: int, expires_at: float | None) -> dict[str, Any]:
        live = self.tasks[task_id]
        queue = self.queues.get(live.queue_id)
        return {"task_id": task_id, "queue_id": live.queue_id, "queue_name": queue.name if queue else "",
                "channel": live.channel, "caller": live.caller, "subject": live.subject,
                "expires_at": iso(expires_at)}  # fmt: skip

    def task_json(self, live: LiveTask, *, position: int | None = None) -> dict[str, Any]:
        queue = self.queues.get(live.queue_id)
        return {
            "id": live.id, "queue_id": live.queue_id, "queue_name": queue.name if queue else "",
            "channel": live.channel, "state": live.state, "priority": live.priority, "is_vip": live.is_vip,
            "entered_at": live.entered_at.isoformat(), "agent_id": live.agent_id,
            "accepted_at": live.accepted_at.isoformat() if live.accepted_at else None,
            "ended_at": live.ended_at.isoformat() if live.ended_at else None,
            "external_ref": live.external_ref, "caller": live.caller, "subject": live.subject,
            "kept_place": live.kept_place, "position": position,
        }  # fmt: skip

    # ---- rebuilding -------------------------------------------------------------------------------

    async def _rebuild(self) -> None:
        """A fresh core from the database: queues, agents as last persisted, active tasks back with
        their agents, waiting and ringing ones back in their queues (a ringing offer is not a miss)."""
        self.core = None
        router = core.Router(self.config)
        async with self.db.sessions() as session, session.begin():
            now = clock.now().timestamp()
            self.day = clock.today(self.settings.timezone)
            start = metrics.local_day_start(self.day, self.settings.timezone)
            self.today = await metrics.load_entries(session, start, datetime.max.replace(tzinfo=UTC))
            self._today_cache.clear()
            self.queues = {}
            for row in await service.list_queues(session):
                self.queues[row.id] = QueueInfo.of(row)
                router.set_queue(service.queue_config(row), now)
            rows = list(await session.scalars(
                select(RoutingTask).where(RoutingTask.state.in_(TaskState.LIVE))
                .order_by(RoutingTask.entered_at, RoutingTask.id)
            ))  # fmt: skip
            self.tasks = {row.id: LiveTask.of(row) for row in rows}
            await self._restore_agents(session, router, now, {t.agent_id for t in rows if t.state == TaskState.ACTIVE})
            unit = Unit(session, now, router, changed=True)
            for live in self._restore_order():
                await self._persist(unit, self._restore_task(router, live, now))
        self.core = router
        self._committed(unit)

    def _restore_order(self) -> list[LiveTask]:
        """Active tasks first (their agents must not be offered anything else), then the others in order."""
        active = [t for t in self.tasks.values() if t.state == TaskState.ACTIVE]
        return active + [t for t in self.tasks.values() if t.state != TaskState.ACTIVE]

    @staticmethod
    def _restore_task(router: core.Router, live: LiveTask, now: float) -> list[core.Effect]:
        spec = core.TaskSpec(live.id, live.queue_id, live.channel, live.priority, live.entered_at.timestamp())
        if live.state == TaskState.ACTIVE and live.agent_id is not None:
            accepted = live.accepted_at.timestamp() if live.accepted_at else now
            return router.restore_task(spec, now=now, agent=live.agent_id, accepted_at=accepted)
        return router.restore_task(spec, now=now)

    async def _restore_agents(self, session: AsyncSession, router: core.Router, now: float,
                              working: set[int | None]) -> None:  # fmt: skip
        states = {row.user_id: row for row in await session.scalars(select(AgentState))}
        present = {uid for uid, row in states.items() if row.presence != "offline"} | {u for u in working if u}
        handled: dict[int, int] = {}
        for line in self.today:
            if line.event == "accept" and line.agent_id is not None:
                handled[line.agent_id] = handled.get(line.agent_id, 0) + 1
        profiles = await service.agent_profiles(session, user_ids=present, handled_today=handled)
        self.names = await self._names_of(session, present)
        for user_id in sorted(present):
            row = states.get(user_id)
            presence = core.Status(row.presence) if row else core.Status.OFFLINE
            since = (row.since if row else clock.now()).timestamp()
            idle = row.idle_since.timestamp() if row and row.idle_since else since
            reason = core.Reason(row.reason) if row and row.reason and presence is core.Status.NOT_READY else None
            router.restore_agent(profiles[user_id], presence=presence, reason=reason, since=since, idle_since=idle,
                                 missed=row.missed_offers if row else 0, now=now)  # fmt: skip

    @staticmethod
    async def _names_of(session: AsyncSession, user_ids: Iterable[int]) -> dict[int, str]:
        ids = list(user_ids)
        if not ids:
            return {}
        rows = await session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))
        return dict(rows.tuples().all())

    # ---- configuration changes --------------------------------------------------------------------

    def _on_event(self, item: Published) -> None:
        """Configuration changed on any node, or the directory (skills): the leader applies it."""
        if self.core is None or item.type not in (RoutingConfigured.type, DirectoryChanged.type):
            return
        if item.type == DirectoryChanged.type and item.payload.get("entity") not in ("staff", "skill"):
            return
        what = item.payload.get("what", "profiles") if item.type == RoutingConfigured.type else "profiles"
        if what == "members":
            return  # the members' own `profile` announcements follow
        task = asyncio.create_task(self.reconfigure(what, int(item.payload.get("id") or 0)))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def reconfigure(self, what: str, id_: int = 0) -> None:
        """Applies a saved change to the running core: a `queue`'s settings, one agent's `profile`, or
        every logged-in agent's `profiles` (memberships, directory skills)."""
        if self.core is None:
            return
        try:
            async with self.unit() as unit:
                if what == "queue":
                    await self._reload_queue(unit, id_)
                else:
                    user_ids = [id_] if what == "profile" else [a.id for a in unit.router.agents()]
                    await self._reload_agents(unit, user_ids)
        except DomainError as exc:
            log.warning("routing configuration not applied", extra={"what": what, "id": id_, "error": exc.error_id})

    async def _reload_queue(self, unit: Unit, queue_id: int) -> None:
        row = await unit.session.get(RoutingQueue, queue_id)
        if row is None:
            if queue_id in unit.router.queue_ids():
                await self.apply(unit, lambda r, now: r.remove_queue(queue_id, now))
            self.queues.pop(queue_id, None)
            return
        self.queues[queue_id] = QueueInfo.of(row)
        self._today_cache.pop(queue_id, None)
        await self.apply(unit, lambda r, now: r.set_queue(service.queue_config(row), now))

    async def _reload_agents(self, unit: Unit, user_ids: list[int]) -> None:
        present = [a.id for a in unit.router.agents() if a.id in set(user_ids)]
        handled = {a.id: a.handled_today for a in unit.router.agents()}
        profiles = await service.agent_profiles(unit.session, user_ids=present, handled_today=handled)
        for user_id in present:
            await self.apply(unit, _update_agent(profiles[user_id]))

    # ---- commands: agents -------------------------------------------------------------------------

    async def login(self, user_id: int) -> None:
        async with self.unit() as unit:
            profile = (await service.agent_profiles(unit.session, user_ids=[user_id]))[user_id]
            try:
                profile = replace(profile, handled_today=unit.router.agent(user_id).handled_today)
            except core.RoutingError:
                profile = replace(profile, handled_today=self._handled_today(user_id))
            self.names.update(await self._names_of(unit.session, [user_id]))
            await self.apply(unit, lambda r, now: r.login(profile, now))

    def _handled_today(self, user_id: int) -> int:
        return sum(1 for line in self.today if line.event == "accept" and line.agent_id == user_id)

    async def ready(self, user_id: int, *, by: Actor | None = None) -> None:
        async with self.unit() as unit:
            await self.apply(unit, lambda r, now: r.ready(user_id, now, by=_by(by)))
            _audit(unit, by, "routing.agent.ready", user_id)

    async def not_ready(self, user_id: int, reason: core.Reason, *, by: Actor | None = None) -> None:
        async with self.unit() as unit:
            await self.apply(unit, lambda r, now: r.not_ready(user_id, reason, now, by=_by(by)))
            _audit(unit, by, "routing.agent.not_ready", user_id)

    async def logout(self, user_id: int, *, by: Actor | None = None) -> None:
        async with self.unit() as unit:
            await self.apply(unit, lambda r, now: r.logout(user_id, now, by=_by(by)))
            _audit(unit, by, "routing.agent.logout", user_id)

    async def end_wrap_up(self, user_id: int) -> None:
        async with self.unit() as unit:
            await self.apply(unit, lambda r, now: r.end_wrap_up(user_id, now))

    # ---- commands: tasks --------------------------------------------------------------------------

    async def submit(self, data: TaskCreate) -> tuple[dict[str, Any], bool]:
        """A task enters its queue; with an `external_ref` a live task of the same channel and reference
        is answered instead (a retried submission). Returns the task and whether it is new."""
        async with self.unit() as unit:
            existing = self._live_by_ref(data.channel, data.external_ref)
            if existing is not None:
                return self._answer(unit, existing), False
            info = self.queues.get(data.queue_id)
            if info is None:
                raise refused("unknown_queue")
            await self._require_open(unit, info)
            priority = max(-200, min(200, data.priority + (info.vip_priority if data.vip else 0)))
            row = RoutingTask(channel=data.channel, queue_id=info.id, priority=priority, is_vip=data.vip,
                              entered_at=moment(unit.now), caller=data.caller.shown(), subject=data.subject,
                              external_ref=data.external_ref)  # fmt: skip
            unit.session.add(row)
            await unit.session.flush()
            self.tasks[row.id] = LiveTask.of(row)
            spec = core.TaskSpec(row.id, info.id, data.channel, priority)
            try:
                await self.apply(unit, lambda r, now: r.submit(spec, now))
            except DomainError:
                del self.tasks[row.id]
                raise
            return self._answer(unit, row.id), True

    def _live_by_ref(self, channel: str, external_ref: str | None) -> int | None:
        if external_ref is None:
            return None
        for live in self.tasks.values():
            if live.external_ref == external_ref and live.channel in (channel, core.CALLBACK):
                return live.id
        return None

    async def _require_open(self, unit: Unit, info: QueueInfo) -> None:
        calendar = await workcal.load(unit.session, timezone=self.settings.timezone) if info.working_days_only else None
        if not info.open_at(clock.now().astimezone(self.zone), calendar):
            details = {"code": "queue_closed", "hours": str(info.hours)}
            raise Conflict("The queue {name} is closed now.", params={"name": info.name}, details=details,
                           error_id="queue_closed")  # fmt: skip

    def _answer(self, unit: Unit, task_id: int) -> dict[str, Any]:
        """The task as it stands after the command (with its place in the line while it waits)."""
        live = self.tasks.get(task_id)
        if live is None:
            return self.task_json(unit.finished[task_id])
        return self.task_json(live, position=unit.router.task(task_id, unit.now).position)

    async def accept(self, task_id: int, user_id: int) -> dict[str, Any]:
        async with self.unit() as unit:
            await self.apply(unit, lambda r, now: r.accept(task_id, user_id, now))
            return self._answer(unit, task_id)

    async def decline(self, task_id: int, user_id: int) -> dict[str, Any]:
        async with self.unit() as unit:
            await self.apply(unit, lambda r, now: r.decline(task_id, user_id, now))
            return self._answer(unit, task_id)

    async def complete(self, task_id: int, user_id: int, *, wrap_up: bool) -> dict[str, Any]:
        async with self.unit() as unit:
            self._require_holder(unit.router, task_id, user_id)
            await self.apply(unit, lambda r, now: r.complete(task_id, now, wrap_up=wrap_up))
            return self._answer(unit, task_id)

    async def transfer(self, task_id: int, user_id: int, queue_id: int) -> dict[str, Any]:
        async with self.unit() as unit:
            self._require_holder(unit.router, task_id, user_id)
            await self.apply(unit, lambda r, now: r.transfer(task_id, queue_id, now))
            return self._answer(unit, task_id)

    @staticmethod
    def _require_holder(router: core.Router, task_id: int, user_id: int) -> None:
        try:
            view = router.task(task_id)
        except core.RoutingError as exc:
            raise refused(exc.code) from exc
        if view.state is not core.TaskState.ACTIVE:
            raise refused("not_active")
        if view.agent != user_id:
            raise refused("not_yours")

    async def abandon(self, task_id: int) -> dict[str, Any]:
        async with self.unit() as unit:
            await self.apply(unit, lambda r, now: r.abandon(task_id, now))
            return self._answer(unit, task_id)

    async def keep_place(self, task_id: int) -> dict[str, Any]:
        async with self.unit() as unit:
            live = self.tasks.get(task_id)
            if live is None:
                raise refused("unknown_task")
            live.kept_place = True
            await self.apply(unit, lambda r, now: r.keep_place(task_id, now), task=task_id)
            return self._answer(unit, task_id)

    async def move(self, task_id: int, queue_id: int, *, by: Actor) -> dict[str, Any]:
        async with self.unit() as unit:
            await self.apply(unit, lambda r, now: r.move(task_id, queue_id, now, by=by.user_id))
            _audit(unit, by, "routing.task.move", task_id, after={"queue_id": queue_id})
            return self._answer(unit, task_id)

    async def set_priority(self, task_id: int, priority: int, *, by: Actor) -> dict[str, Any]:
        async with self.unit() as unit:
            await self.apply(unit, lambda r, now: r.set_priority(task_id, priority, now, by=by.user_id), task=task_id)
            _audit(unit, by, "routing.task.priority", task_id, after={"priority": priority})
            return self._answer(unit, task_id)

    # ---- queries ----------------------------------------------------------------------------------

    async def me(self, user_id: int) -> dict[str, Any]:
        router = self.require_core()
        async with self.db.sessions() as session:
            queues = (await service.memberships(session, user_ids=[user_id]))[user_id]
        try:
            view: core.AgentView | None = router.agent(user_id)
        except core.RoutingError:
            view = None
        memberships = [m.model_dump() for m in queues]
        if view is None:
            return {"status": "offline", "reason": None, "since": None, "offer": None, "tasks": [],
                    "queues": memberships, "handled_today": self._handled_today(user_id), "missed_offers": 0,
                    "wrap_up_until": None}  # fmt: skip
        offer = None
        if view.offer is not None:
            offer = self.offer_json(view.offer, router.task(view.offer).offer_expires_at)
        return {
            "status": view.status.value,
            "reason": view.reason.value if view.reason else None,
            "since": iso(view.since),
            "offer": offer,
            "tasks": [self.task_json(self.tasks[task_id]) for task_id in view.active],
            "queues": memberships,
            "handled_today": view.handled_today,
            "missed_offers": view.missed,
            "wrap_up_until": iso(view.wrap_up_until),
        }

    def live(self) -> dict[str, Any]:
        router = self.require_core()
        now = clock.now().timestamp()
        queues = [self.queue_json(router, queue_id, now) for queue_id in sorted(self.queues, key=self._queue_order)]
        return {"queues": queues, "agents": [self._agent_json(view) for view in router.agents()]}

    def agent_json(self, user_id: int) -> dict[str, Any]:
        """One agent as the wallboard lists it (offline once gone from the router)."""
        router = self.require_core()
        try:
            return self._agent_json(router.agent(user_id))
        except core.RoutingError:
            return {"user_id": user_id, "name": self.names.get(user_id, ""), "status": "offline", "reason": None,
                    "since": None, "tasks": 0, "handled_today": self._handled_today(user_id)}  # fmt: skip

    def _agent_json(self, view: core.AgentView) -> dict[str, Any]:
        return {"user_id": view.id, "name": self.names.get(view.id, ""), "status": view.status.value,
                "reason": view.reason.value if view.reason else None, "since": iso(view.since),
                "tasks": len(view.active), "handled_today": view.handled_today}  # fmt: skip

    def _queue_order(self, queue_id: int) -> str:
        return self.queues[queue_id].code

    def waiting(self, queue_id: int) -> list[dict[str, Any]]:
        router = self.require_core()
        if queue_id not in self.queues:
            raise refused("unknown_queue")
        now = clock.now().timestamp()
        return [self.task_json(self.tasks[view.id], position=view.position) for view in router.waiting(queue_id, now)]


def alerts(info: QueueInfo, stats: core.QueueView, today: metrics.QueueMetrics) -> list[str]:
    """Why a queue needs a supervisor's eye: service level today below target (once ten contacts were
    answered), as many waiting as the queue's alert threshold, or a patient waiting past half the
    maximum wait."""
    raised = []
    level = today.service_level
    if today.answered >= SL_ALERT_MIN_CONTACTS and level is not None and level < info.sl_target:
        raised.append("service_level")
    if info.alert_waiting is not None and stats.waiting >= info.alert_waiting:
        raised.append("waiting")
    if info.max_wait_s is not None and stats.longest_wait_s > info.max_wait_s / 2:
        raised.append("longest_wait")
    return raised


def _update_agent(profile: core.AgentProfile) -> Callable[[core.Router, float], list[core.Effect]]:
    return lambda router, now: router.update_agent(profile, now)


def _by(actor: Actor | None) -> int | None:
    return actor.user_id if actor is not None else None


def _audit(unit: Unit, actor: Actor | None, action: str, target: int, after: dict[str, Any] | None = None) -> None:
    """Supervisors' forced steps and task moves are audited; an agent's own presence is in the queue log."""
    if actor is not None:
        audit.record(unit.session, actor=actor, action=action,
                     target_type="user" if action.startswith("routing.agent") else "routing_task",
                     target_id=target, after=after)  # fmt: skip
