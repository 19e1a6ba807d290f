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
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import audit, clock, events, jobs, workcal
from patientline.core.auth.actor import Actor
from patientline.core.config import Settings
from patientline.core.db import Database
from patientline.core.errors import Conflict, DomainError, NotFound
from patientline.core.events import Bus, Published
from patientline.core.i18n import N_
from patientline.directory.events import DirectoryChanged
from patientline.routing import core, metrics, service, store, views
from patientline.routing.events import (
    SUPERVISORS,
    AgentStatusChanged,
    OfferRang,
    OfferStopped,
    QueueFigures,
    RoutingConfigured,
    agent_audience,
)
from patientline.routing.models import RoutingQueue, RoutingTask, TaskState
from patientline.routing.schemas import TaskCreate
from patientline.routing.store import LiveTask, QueueInfo, iso, moment

log = logging.getLogger(__name__)

ROUTER_LOCK_KEY = 0x504C5254  # "PLRT": the router's own advisory lock, apart from the worker's
LEADER_CHECK_S = 5.0  # a standby tries for the lock, and the leader checks it still holds it, this often
FIGURES_EVERY_S = 1.0  # at most one routing.queue event per queue in this time
MAX_SLEEP_S = 1.0
LINE_CALL_REF = "sip:"  # how the tasks of calls on the hotline's own phone line are marked (`external_ref`)
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
Command = Callable[[core.Router, float], list[core.Effect]]


class RouterUnavailable(DomainError):
    status_code = 503
    error_id = "router_unavailable"

    def __init__(self) -> None:
        super().__init__(N_("Routing is not available on this server right now; try again shortly."))


def refused(code: str) -> DomainError:
    """A core refusal in the house error shape: 404 for unknown ids, else 409; the code in details."""
    message = ROUTING_MESSAGES.get(code, N_("The router refused this step."))
    if code in NOT_FOUND_CODES:
        return NotFound(message, details={"code": code})
    return Conflict(message, details={"code": code}, error_id="routing_refused")


@dataclass
class Unit:
    """One command's work: the session it writes in, its moment, and what it settled."""

    session: AsyncSession
    now: float
    router: core.Router
    changed: bool = False  # the core changed: a failed write must rebuild it
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
        self.lock = jobs.LeaderLock(db, key=ROUTER_LOCK_KEY)
        self.core: core.Router | None = None
        self.queues: dict[int, QueueInfo] = {}
        self.tasks: dict[int, LiveTask] = {}
        self.names: dict[int, str] = {}
        self.today = views.Today(clock.today(settings.timezone), settings.timezone)
        self._mutex = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self._next_leader_check = 0.0
        self._figures_sent: dict[int, float] = {}
        self._figures_due: set[int] = set()

    # ---- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> Engine:
        """Takes the lead if free (rebuilding the core), then keeps time in the background."""
        if self.bus is not None:
            self._unsubscribe = self.bus.subscribe(self._on_event)
        await self.try_to_lead()
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

    async def try_to_lead(self) -> None:
        """Standby: try for the lock, and rebuild on getting it. Leader: check the lock still holds."""
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
            await self.try_to_lead()
        if self.core is not None:
            await self.tick()
            self._figures_due.update(await self.today.refresh(list(self.queues.values()), clock.now()))
            await self._send_figures()

    def _sleep_seconds(self) -> float:
        wait = MAX_SLEEP_S
        if self.core is not None and (due := self.core.next_due()) is not None:
            wait = min(wait, due - clock.now().timestamp())
        if self._figures_due:
            last = min(self._figures_sent.get(queue_id, 0.0) for queue_id in self._figures_due)
            wait = min(wait, last + FIGURES_EVERY_S - clock.monotonic())
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
        return (due is not None and due <= clock.now().timestamp()) or self._new_day()

    def _new_day(self) -> bool:
        return clock.today(self.settings.timezone) != self.today.day

    # ---- the unit of work -------------------------------------------------------------------------

    def require_core(self) -> core.Router:
        if self.core is None:
            raise RouterUnavailable
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
                    if self._new_day():
                        await self._start_day(unit)
                    yield unit
            except BaseException:
                if unit is not None and unit.changed:
                    await self._recover()
                raise
            self._committed(unit)

    async def apply(self, unit: Unit, command: Command, *, task: int | None = None) -> list[core.Effect]:
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

    async def _start_day(self, unit: Unit) -> None:
        """Local midnight: today's counts start again."""
        self.today.next_day(clock.today(self.settings.timezone))
        unit.router.new_day()
        await store.reset_handled_today(unit.session)

    # ---- writing what happened --------------------------------------------------------------------

    async def _persist(self, unit: Unit, effects: list[core.Effect], task: int | None = None) -> None:
        tasks: dict[int, None] = {} if task is None else {task: None}
        agents: dict[int, None] = {}
        queues: dict[int, None] = {}
        ended: dict[int, str] = {}
        lines: list[metrics.Entry] = []
        for effect in effects:
            if isinstance(effect, core.Logged):
                lines.append(store.log_line(effect))
                for ids, id_ in ((tasks, effect.task), (queues, effect.queue), (agents, effect.agent)):
                    if id_ is not None:  # an agent's presence, misses and counts change with what is logged
                        ids[id_] = None
                if effect.task is not None and effect.event in store.TERMINAL:
                    ended[effect.task] = store.TERMINAL[effect.event]
            elif isinstance(effect, core.Offered):
                tasks[effect.task] = None
                self._publish_offer(unit, effect)
            elif isinstance(effect, core.OfferEnded):
                tasks[effect.task] = None
                events.record(unit.session, OfferStopped(task_id=effect.task, reason=effect.reason,
                                                         audience=agent_audience(effect.agent)))  # fmt: skip
            elif isinstance(effect, core.AgentChanged):
                agents[effect.agent] = None
                self._publish_agent(unit, effect)
            elif isinstance(effect, core.TaskExpired):
                ended[effect.task] = TaskState.EXPIRED
        unit.finished |= await store.write_tasks(unit.session, unit.router, self.tasks, tasks, ended, moment(unit.now))
        await store.write_agents(unit.session, unit.router, list(agents))
        await store.write_lines(unit.session, lines)
        self.today.add(lines)  # a failed commit rebuilds this from the table
        for agent_id in agents:
            queues.update(dict.fromkeys(self._queues_of(unit.router, agent_id)))
        self._queue_figures(unit, list(queues))

    def _publish_offer(self, unit: Unit, offer: core.Offered) -> None:
        task = self.tasks[offer.task]
        payload = views.offer_json(task, self.queues.get(task.queue_id), offer.expires_at)
        events.record(unit.session, OfferRang(**payload, audience=agent_audience(offer.agent)))

    def _publish_agent(self, unit: Unit, change: core.AgentChanged) -> None:
        values = {"user_id": change.agent, "status": change.status.value,
                  "reason": change.reason.value if change.reason else None, "since": iso(change.since)}  # fmt: skip
        events.record(unit.session, AgentStatusChanged(**values, audience=agent_audience(change.agent)))
        events.record(unit.session, AgentStatusChanged(**values, audience=SUPERVISORS))

    @staticmethod
    def _queues_of(router: core.Router, agent_id: int) -> Iterable[int]:
        try:
            return router.agent(agent_id).profile.queues.keys()
        except core.RoutingError:
            return ()

    # ---- the wallboard's figures ------------------------------------------------------------------

    def _queue_figures(self, unit: Unit, queue_ids: list[int]) -> None:
        """Each changed queue's figures go out now, or (at most once a second) from the loop."""
        at = clock.monotonic()
        for queue_id in queue_ids:
            if queue_id not in self.queues or queue_id in unit.figures_sent:
                continue
            if at - self._figures_sent.get(queue_id, -FIGURES_EVERY_S) >= FIGURES_EVERY_S:
                figures = self.queue_json(unit.router, queue_id, unit.now)
                events.record(unit.session, QueueFigures(**figures, audience=SUPERVISORS))
                unit.figures_sent.append(queue_id)
            else:
                self._figures_due.add(queue_id)

    def _figures_ready(self) -> list[int]:
        at = clock.monotonic()
        return [q for q in self._figures_due if at - self._figures_sent.get(q, 0.0) >= FIGURES_EVERY_S]

    async def _send_figures(self) -> None:
        if self._figures_ready():
            async with self.unit() as unit:
                self._queue_figures(unit, self._figures_ready())  # again under the lock: a command may have sent them

    def queue_json(self, router: core.Router, queue_id: int, now: float) -> dict[str, Any]:
        info = self.queues[queue_id]
        return views.queue_json(info, router.queue_stats(queue_id, now), self.today.figures(queue_id))

    # ---- rebuilding -------------------------------------------------------------------------------

    async def _rebuild(self) -> None:
        """A fresh core from the database: queues, agents as last persisted, active tasks back with
        their agents, waiting and ringing ones back in their queues (a ringing offer is not a miss)."""
        self.core = None
        router = core.Router(self.config)
        async with self.db.sessions() as session, session.begin():
            now = clock.now().timestamp()
            today = clock.today(self.settings.timezone)
            start = metrics.local_day_start(today, self.settings.timezone)
            lines = await metrics.load_entries(session, start, datetime.max.replace(tzinfo=UTC))
            self.today = views.Today(today, self.settings.timezone, lines)
            self.queues = {}
            for row in await service.list_queues(session):
                self.queues[row.id] = QueueInfo.of(row)
                router.set_queue(service.queue_config(row), now)
            self.tasks = await store.live_tasks(session)
            await self._restore_agents(session, router, now)
            unit = Unit(session, now, router, changed=True)
            for task in self._restore_order():
                await self._persist(unit, self._restore_task(router, task, now))
        self.core = router
        self._committed(unit)

    def _restore_order(self) -> list[LiveTask]:
        """Active tasks first (their agents must not be offered anything else), then the others in order."""
        active = [t for t in self.tasks.values() if t.state == TaskState.ACTIVE]
        return active + [t for t in self.tasks.values() if t.state != TaskState.ACTIVE]

    @staticmethod
    def _restore_task(router: core.Router, task: LiveTask, now: float) -> list[core.Effect]:
        if task.state == TaskState.ACTIVE and task.agent_id is not None:
            accepted = task.accepted_at.timestamp() if task.accepted_at else now
            return router.restore_task(task.spec(), now=now, agent=task.agent_id, accepted_at=accepted)
        return router.restore_task(task.spec(), now=now)

    async def _restore_agents(self, session: AsyncSession, router: core.Router, now: float) -> None:
        """Agents logged in, and agents logged out by force who still hold a task."""
        rows = await store.presences(session)
        holding = {t.agent_id for t in self.tasks.values() if t.state == TaskState.ACTIVE and t.agent_id}
        present = sorted({uid for uid, row in rows.items() if row.presence != "offline"} | holding)
        profiles = await service.agent_profiles(session, user_ids=present, handled_today=self.today.handled())
        self.names = await store.display_names(session, present)
        for user_id in present:
            last = store.Presence.of(rows.get(user_id))
            router.restore_agent(profiles[user_id], presence=last.presence, reason=last.reason, since=last.since,
                                 idle_since=last.idle_since, missed=last.missed, now=now)  # fmt: skip

    # ---- configuration changes --------------------------------------------------------------------

    def _on_event(self, item: Published) -> None:
        """Configuration changed on any node, or the directory (skills): the leader applies it."""
        if self.core is None or item.type not in (RoutingConfigured.type, DirectoryChanged.type):
            return
        if item.type == DirectoryChanged.type:
            if item.payload.get("entity") not in ("staff", "skill"):
                return
            what, id_ = "profiles", 0
        else:
            what, id_ = item.payload["what"], int(item.payload["id"])
        if what == "members":
            return  # each member whose tier changed is announced as a `profile`
        self.run_beside(self.reconfigure(what, id_))

    def run_beside(self, work: Coroutine[Any, Any, None]) -> None:
        """Background work that lives as long as the engine (stopped with it)."""
        task = asyncio.create_task(work)
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
        info, known = QueueInfo.of(row), self.queues.get(queue_id)
        if known is None or (known.sl_seconds, known.short_abandon_s) != (info.sl_seconds, info.short_abandon_s):
            self.today.forget(queue_id)  # today's figures follow the queue's thresholds
        self.queues[queue_id] = info
        config = service.queue_config(row)
        await self.apply(unit, lambda r, now: r.set_queue(config, now))

    async def _reload_agents(self, unit: Unit, user_ids: list[int]) -> None:
        here = {a.id: a.handled_today for a in unit.router.agents()}
        present = [user_id for user_id in user_ids if user_id in here]
        profiles = await service.agent_profiles(unit.session, user_ids=present, handled_today=here)
        for user_id in present:
            await self.apply(unit, _update_agent(profiles[user_id]))

    # ---- commands: agents -------------------------------------------------------------------------

    async def login(self, user_id: int) -> None:
        async with self.unit() as unit:
            profile = (await service.agent_profiles(unit.session, user_ids=[user_id]))[user_id]
            try:
                handled = unit.router.agent(user_id).handled_today
            except core.RoutingError:
                handled = self.today.handled_by(user_id)
            self.names.update(await store.display_names(unit.session, [user_id]))
            await self.apply(unit, lambda r, now: r.login(replace(profile, handled_today=handled), now))

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
                              caller_phone=data.caller.phone, external_ref=data.external_ref)  # fmt: skip
            unit.session.add(row)
            await unit.session.flush()
            task = self.tasks[row.id] = LiveTask.of(row)
            try:
                await self.apply(unit, lambda r, now: r.submit(task.spec(), now))
            except DomainError:
                del self.tasks[row.id]
                raise
            return self._answer(unit, row.id), True

    def _live_by_ref(self, channel: str, external_ref: str | None) -> int | None:
        if external_ref is None:
            return None
        for task in self.tasks.values():
            if task.external_ref == external_ref and task.channel in (channel, core.CALLBACK):
                return task.id
        return None

    async def _require_open(self, unit: Unit, info: QueueInfo) -> None:
        calendar = await workcal.load(unit.session, timezone=self.settings.timezone) if info.working_days_only else None
        if not info.open_at(clock.now().astimezone(self.zone), calendar):
            details = {"code": "queue_closed", "hours": str(info.hours)}
            raise Conflict("The queue {name} is closed now.", params={"name": info.name}, details=details,
                           error_id="queue_closed")  # fmt: skip

    def _answer(self, unit: Unit, task_id: int) -> dict[str, Any]:
        """The task as it stands after the command (with its place in the line while it waits)."""
        task = self.tasks.get(task_id)
        if task is None:
            finished = unit.finished[task_id]
            return views.task_json(finished, self.queues.get(finished.queue_id))
        position = unit.router.task(task_id, unit.now).position
        return views.task_json(task, self.queues.get(task.queue_id), position=position)

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
            _require_holder(unit.router, task_id, user_id)
            await self.apply(unit, lambda r, now: r.complete(task_id, now, wrap_up=wrap_up))
            return self._answer(unit, task_id)

    async def transfer(self, task_id: int, user_id: int, queue_id: int) -> dict[str, Any]:
        async with self.unit() as unit:
            _require_holder(unit.router, task_id, user_id)
            await self.apply(unit, lambda r, now: r.transfer(task_id, queue_id, now))
            return self._answer(unit, task_id)

    async def abandon(self, task_id: int) -> dict[str, Any]:
        async with self.unit() as unit:
            await self.apply(unit, lambda r, now: r.abandon(task_id, now))
            return self._answer(unit, task_id)

    async def keep_place(self, task_id: int) -> dict[str, Any]:
        async with self.unit() as unit:
            task = self.tasks.get(task_id)
            if task is None:
                raise refused("unknown_task")

            def keep_place(router: core.Router, now: float) -> list[core.Effect]:
                effects = router.keep_place(task_id, now)
                task.kept_place = True  # only once the router agreed
                return effects

            await self.apply(unit, keep_place, task=task_id)
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
        """The agent bar: status, the offer ringing, tasks in hand, queues (from the configuration)."""
        router = self.require_core()
        async with self.db.sessions() as session:
            queues = [m.model_dump() for m in (await service.memberships(session, user_ids=[user_id]))[user_id]]
        try:
            view = router.agent(user_id)
        except core.RoutingError:
            return {"status": "offline", "reason": None, "since": None, "offer": None, "tasks": [], "queues": queues,
                    "handled_today": self.today.handled_by(user_id), "missed_offers": 0,
                    "wrap_up_until": None}  # fmt: skip
        offer = None
        if view.offer is not None:
            ringing = self.tasks[view.offer]
            expires_at = router.task(view.offer).offer_expires_at
            offer = views.offer_json(ringing, self.queues.get(ringing.queue_id), expires_at)
        return {
            "status": view.status.value,
            "reason": view.reason.value if view.reason else None,
            "since": iso(view.since),
            "offer": offer,
            "tasks": [
                views.task_json(t, self.queues.get(t.queue_id)) for t in map(self.tasks.__getitem__, view.active)
            ],
            "queues": queues,
            "handled_today": view.handled_today,
            "missed_offers": view.missed,
            "wrap_up_until": iso(view.wrap_up_until),
        }

    async def live(self) -> dict[str, Any]:
        """The wallboard: every queue with today's figures (up to date) and alerts, every agent logged in."""
        self.require_core()
        await self.today.refresh(list(self.queues.values()), clock.now(), max_age=0)
        router = self.require_core()
        now = clock.now().timestamp()
        order = sorted(self.queues.values(), key=lambda info: info.code)
        return {
            "queues": [self.queue_json(router, info.id, now) for info in order],
            "agents": [views.agent_json(view, self.names.get(view.id, "")) for view in router.agents()],
        }

    def staffed(self, queue_id: int) -> bool:
        """Whether anyone who answers the queue is logged in (ready, busy or on a short break)."""
        router = self.core
        return router is not None and any(queue_id in view.profile.queues for view in router.agents())

    def agent_json(self, user_id: int) -> dict[str, Any]:
        router = self.require_core()
        try:
            return views.agent_json(router.agent(user_id), self.names.get(user_id, ""))
        except core.RoutingError:
            return views.offline_agent_json(user_id, self.names.get(user_id, ""), self.today.handled_by(user_id))

    def waiting(self, queue_id: int) -> list[dict[str, Any]]:
        router = self.require_core()
        if queue_id not in self.queues:
            raise refused("unknown_queue")
        info = self.queues[queue_id]
        now = clock.now().timestamp()
        return [views.task_json(self.tasks[v.id], info, position=v.position) for v in router.waiting(queue_id, now)]


def _require_holder(router: core.Router, task_id: int, user_id: int) -> None:
    try:
        view = router.task(task_id)
    except core.RoutingError as exc:
        raise refused(exc.code) from exc
    if view.state is not core.TaskState.ACTIVE:
        raise refused("not_active")
    if view.agent != user_id:
        raise refused("not_yours")


def _update_agent(profile: core.AgentProfile) -> Command:
    return lambda router, now: router.update_agent(profile, now)


def _by(actor: Actor | None) -> int | None:
    return actor.user_id if actor is not None else None


def _audit(unit: Unit, actor: Actor | None, action: str, target: int, after: dict[str, Any] | None = None) -> None:
    """Supervisors' forced steps and task moves are audited; an agent's own presence is in the queue log."""
    if actor is not None:
        audit.record(unit.session, actor=actor, action=action,
                     target_type="user" if action.startswith("routing.agent") else "routing_task",
                     target_id=target, after=after)  # fmt: skip
