"""The router's rows: live tasks as last written, agents' presence, the queue-log lines. The engine
writes them after each command from what the core then says, and reads them back to rebuild it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock, workcal
from patientline.core.auth.models import User
from patientline.core.workcal import WorkingHours
from patientline.routing import core, metrics
from patientline.routing.models import AgentState, QueueLogEntry, RoutingQueue, RoutingTask, TaskState

TERMINAL = {"complete": TaskState.DONE, "abandon": TaskState.ABANDONED, "expire": TaskState.EXPIRED}


def iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


def moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


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
    wrap_up: str  # none, mandatory, on_request: whether the bar offers "complete with wrap-up"

    @classmethod
    def of(cls, row: RoutingQueue) -> QueueInfo:
        return cls(row.id, row.code, row.name, WorkingHours.parse(row.hours), row.working_days_only, row.is_active,
                   row.vip_priority, row.sl_seconds, row.sl_target, row.short_abandon_s, row.max_wait_s,
                   row.alert_waiting, row.wrap_up)  # fmt: skip

    def open_at(self, local: datetime, calendar: workcal.WorkCalendar | None) -> bool:
        """Active, on a working day if it keeps to them, and within its hours (local time)."""
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

    def spec(self) -> core.TaskSpec:
        return core.TaskSpec(self.id, self.queue_id, self.channel, self.priority, self.entered_at.timestamp())

    def follow(self, view: core.TaskView, now: datetime | None) -> None:
        """Takes the core's word on the task after a command."""
        if view.state is core.TaskState.OFFERED and (self.state != TaskState.OFFERED or self.agent_id != view.agent):
            self.offered_at = now
        if view.state is core.TaskState.WAITING:
            self.offered_at = None
        self.state, self.queue_id, self.agent_id = view.state.value, view.queue, view.agent
        self.channel, self.priority, self.accepted_at = view.channel, view.priority, moment(view.accepted_at)

    def end(self, state: str, now: datetime | None) -> None:
        self.state, self.ended_at = state, now
        if state != TaskState.DONE:
            self.agent_id = None  # abandoned or expired while waiting or ringing: nobody had it

    def row_values(self) -> dict[str, Any]:
        columns = ("id", "state", "queue_id", "channel", "priority", "agent_id", "offered_at", "accepted_at",
                   "ended_at", "kept_place")  # fmt: skip
        return {f"_{key}": getattr(self, key) for key in columns}


_tasks = cast(Table, RoutingTask.__table__)
_log = cast(Table, QueueLogEntry.__table__)
UPDATE_TASK = (
    update(_tasks)
    .where(_tasks.c.id == bindparam("_id"))
    .values(
        state=bindparam("_state"), queue_id=bindparam("_queue_id"), channel=bindparam("_channel"),
        priority=bindparam("_priority"), agent_id=bindparam("_agent_id"), offered_at=bindparam("_offered_at"),
        accepted_at=bindparam("_accepted_at"), ended_at=bindparam("_ended_at"), kept_place=bindparam("_kept_place"),
        version=_tasks.c.version + 1, updated_at=bindparam("_updated_at"),
    )
)  # fmt: skip


# --- writing ---------------------------------------------------------------------------------------


def log_line(effect: core.Logged) -> metrics.Entry:
    return metrics.Entry(at=datetime.fromtimestamp(effect.at, UTC), event=effect.event, queue_id=effect.queue,
                         task_id=effect.task, agent_id=effect.agent, channel=effect.channel, wait_s=effect.wait_s,
                         duration_s=effect.duration_s, reason=effect.reason, by_id=effect.by)  # fmt: skip


async def write_lines(session: AsyncSession, lines: list[metrics.Entry]) -> None:
    if lines:
        columns = ("at", "event", "queue_id", "task_id", "agent_id", "channel", "wait_s", "duration_s", "reason",
                   "by_id")  # fmt: skip
        rows = [{key: getattr(line, key) for key in columns} for line in lines]
        await session.execute(insert(_log), rows)  # the table, not the ORM class: one batch, Nones and all


async def write_tasks(
    session: AsyncSession, router: core.Router, live: dict[int, LiveTask], task_ids: Iterable[int],
    ended: dict[int, str], now: datetime | None,
) -> dict[int, LiveTask]:  # fmt: skip
    """Writes the tasks' rows as the core now has them; those gone from it are finished (done unless
    `ended` says abandoned or expired), leave `live` and are returned."""
    finished: dict[int, LiveTask] = {}
    rows = []
    for task_id in task_ids:
        task = live.get(task_id)
        if task is None:
            continue
        try:
            task.follow(router.task(task_id), now)
        except core.RoutingError:
            task.end(ended.get(task_id, TaskState.DONE), now)
            finished[task_id] = live.pop(task_id)
        rows.append(task.row_values() | {"_updated_at": now})
    if rows:
        await session.execute(UPDATE_TASK, rows)
    return finished


async def write_agents(session: AsyncSession, router: core.Router, agent_ids: list[int]) -> None:
    if not agent_ids:
        return
    rows = [_agent_row(router, agent_id) for agent_id in agent_ids]
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(AgentState)
    keep = {key: statement.excluded[key] for key in rows[0] if key != "user_id"}
    await session.execute(statement.on_conflict_do_update(index_elements=["user_id"], set_=keep), rows)


def _agent_row(router: core.Router, agent_id: int) -> dict[str, Any]:
    try:
        view = router.agent(agent_id)
    except core.RoutingError:  # logged out with nothing in hand: gone from the core
        return {"user_id": agent_id, "presence": "offline", "status": "offline", "reason": None,
                "since": clock.now(), "idle_since": None, "handled_today": 0, "missed_offers": 0}  # fmt: skip
    return {"user_id": agent_id, "presence": view.presence.value, "status": view.status.value,
            "reason": view.reason.value if view.reason else None, "since": moment(view.since),
            "idle_since": moment(view.idle_since), "handled_today": view.handled_today,
            "missed_offers": view.missed}  # fmt: skip


async def reset_handled_today(session: AsyncSession) -> None:
    await session.execute(update(AgentState).values(handled_today=0))


# --- reading ---------------------------------------------------------------------------------------


async def live_tasks(session: AsyncSession) -> dict[int, LiveTask]:
    """Waiting, ringing and active tasks by entry time: the order they are restored in."""
    query = (
        select(RoutingTask)
        .where(RoutingTask.state.in_(TaskState.LIVE))
        .order_by(RoutingTask.entered_at, RoutingTask.id)
    )
    return {row.id: LiveTask.of(row) for row in await session.scalars(query)}


@dataclass(frozen=True)
class Presence:
    """An agent as last persisted, for `Router.restore_agent`."""

    presence: core.Status
    reason: core.Reason | None
    since: float
    idle_since: float
    missed: int

    @classmethod
    def of(cls, row: AgentState | None) -> Presence:
        if row is None:  # holding a task without a presence row: only the task keeps the agent here
            now = clock.now().timestamp()
            return cls(core.Status.OFFLINE, None, now, now, 0)
        presence = core.Status(row.presence)
        reason = core.Reason(row.reason) if row.reason and presence is core.Status.NOT_READY else None
        since = row.since.timestamp()
        idle = row.idle_since.timestamp() if row.idle_since else since
        return cls(presence, reason, since, idle, row.missed_offers)


async def presences(session: AsyncSession) -> dict[int, AgentState]:
    return {row.user_id: row for row in await session.scalars(select(AgentState))}


async def display_names(session: AsyncSession, user_ids: Iterable[int]) -> dict[int, str]:
    ids = list(user_ids)
    if not ids:
        return {}
    rows = await session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))
    return dict(rows.tuples().all())
