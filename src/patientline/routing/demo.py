"""Demo routing: the hotline's queues (general enquiries around the clock, appointments, complaints, the
shared expert centre, insurance, a department's seat group that overflows to the hotline), members
with tiers, agents' profiles, and four weeks of queue log made by the real router core so the reports
and "staffing from history" have something to show. Made-up traffic only; loading twice changes
nothing."""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock, workcal
from patientline.core.auth.actor import Actor
from patientline.core.auth.models import User
from patientline.core.auth.permissions import Role, permissions_for
from patientline.core.config import get_settings
from patientline.directory.models import Site, Team
from patientline.routing import core, metrics, service, store
from patientline.routing.models import RoutingQueue, RoutingTask, TaskState
from patientline.routing.schemas import MemberIn, ProfileIn, QueueCreate

ADMIN = Actor(user_id=None, username="demo", display_name="Demo", roles=(Role.ADMIN.value,),
              permissions=permissions_for([Role.ADMIN.value]), via="system")  # fmt: skip
HISTORY_DAYS = 28
SEED = 8585

# code, name, kind, team, skill, hours, working days only, strategy, extra settings
QUEUES: list[tuple[str, str, str, str | None, str | None, str, bool, str, dict[str, Any]]] = [
    ("GENERAL", "综合咨询", "skill_group", "HOTLINE", "GENERAL", "00:00-24:00", False, "longest_idle",
     {"widen_after_s": [30], "max_wait_s": 300, "alert_waiting": 5, "wrap_up": "mandatory", "wrap_up_s": 15}),
    ("BOOKING", "预约挂号", "skill_group", "HOTLINE", "BOOKING", "07:30-20:00", False, "fewest_today",
     {"widen_after_s": [20], "priority": 1, "wrap_up": "none", "wrap_up_s": 0}),
    ("COMPLAINT", "投诉受理", "skill_group", "HOTLINE", "COMPLAINT", "08:00-17:30", True, "best_skill",
     {"widen_after_s": [60], "priority": 2, "wrap_up": "mandatory", "wrap_up_s": 60, "sl_target": 0.9}),
    ("EXPERT", "专家中心", "expert_centre", "EXPERT", None, "08:00-12:00,13:30-17:30", True, "round_robin",
     {"wrap_up": "on_request", "wrap_up_s": 120, "sl_seconds": 30}),
    ("INSURANCE", "医保咨询", "skill_group", "INSURANCE", "INSURANCE", "08:00-17:30", True, "best_skill",
     {"overflow_threshold": 5, "wrap_up": "on_request", "wrap_up_s": 60}),
    ("XNK-SEATS", "心内科坐席", "department_seats", "XNK-SEATS", None, "08:00-17:30", True, "longest_idle",
     {"widen_after_s": [45], "max_wait_s": 120, "wrap_up": "none", "wrap_up_s": 0}),
]  # fmt: skip
OVERFLOWS = {"INSURANCE": "GENERAL", "XNK-SEATS": "GENERAL"}

# agent number -> {queue: tier}; agents 1-6 and 12 are the hotline team, 7-9 the expert centre, 10-11 insurance
MEMBERS: dict[int, dict[str, int]] = {
    1: {"GENERAL": 1, "BOOKING": 1, "XNK-SEATS": 2}, 2: {"GENERAL": 1, "BOOKING": 2, "XNK-SEATS": 2},
    3: {"GENERAL": 1, "BOOKING": 1}, 4: {"GENERAL": 1, "BOOKING": 2, "COMPLAINT": 1},
    5: {"GENERAL": 1, "BOOKING": 1}, 6: {"GENERAL": 1, "BOOKING": 2},
    7: {"EXPERT": 1, "XNK-SEATS": 1, "GENERAL": 2}, 8: {"EXPERT": 1, "COMPLAINT": 1, "GENERAL": 2},
    9: {"EXPERT": 1, "GENERAL": 2}, 10: {"INSURANCE": 1, "GENERAL": 2, "BOOKING": 2},
    11: {"INSURANCE": 1, "GENERAL": 2, "BOOKING": 2}, 12: {"GENERAL": 1, "BOOKING": 1, "COMPLAINT": 1},
}  # fmt: skip
SUPERVISOR_TIERS = {"COMPLAINT": 2, "EXPERT": 2}
CAPACITIES = {3: {"voice": 0, "chat": 5}, 5: {"voice": 1, "chat": 4, "callback": 1}}

# contacts on a working day (weekends and holidays: a third of that), mean handling time, share of chats
TRAFFIC = {"GENERAL": (260, 200.0, 0.2), "BOOKING": (170, 150.0, 0.1), "COMPLAINT": (18, 420.0, 0.0),
           "EXPERT": (45, 300.0, 0.0), "INSURANCE": (40, 240.0, 0.1), "XNK-SEATS": (35, 180.0, 0.0)}  # fmt: skip
HOURLY = [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.5, 4, 9, 11, 10, 8, 5, 6, 9, 9, 8, 6, 4, 3, 2.5, 2, 1.5, 1.2]
PATIENCE_S = 120.0

# (start, end) on working days, and on rest days; None: off. The night shift runs past midnight.
DAY, EVENING, NIGHT = (time(8), time(17, 30)), (time(17), time(22)), (time(22), time(8))
SHIFTS: dict[int, tuple[tuple[time, time] | None, tuple[time, time] | None]] = {
    1: (DAY, DAY), 2: (DAY, None), 3: (DAY, None), 4: (DAY, DAY), 5: (DAY, None), 6: (NIGHT, NIGHT),
    7: (DAY, DAY), 8: (DAY, None), 9: (DAY, None), 10: (DAY, None), 11: (EVENING, EVENING), 12: (EVENING, EVENING),
}  # fmt: skip


async def load_demo_routing(session: AsyncSession) -> str:
    """Caller owns the transaction; loads once."""
    if await session.scalar(select(RoutingQueue.id).where(RoutingQueue.code == "GENERAL")) is not None:
        return "routing already loaded"
    users = {row.username: row.id for row in await session.execute(select(User.username, User.id))}
    agents = {n: users[f"agent{n:02d}"] for n in MEMBERS if f"agent{n:02d}" in users}
    queues = await _queues(session)
    await _members(session, queues, agents, [users[u] for u in ("supervisor1", "supervisor2") if u in users])
    for number, capacities in CAPACITIES.items():
        if number in agents:
            await service.set_profile(
                session, actor=ADMIN, user_id=agents[number], data=ProfileIn(capacities=capacities)
            )
    tasks, lines = await _history(session, queues, agents)
    return f"{len(queues)} routing queues, {tasks} tasks and {lines} queue-log lines of history"


async def _queues(session: AsyncSession) -> dict[str, RoutingQueue]:
    teams = {row.code: row.id for row in await session.execute(select(Team.code, Team.id))}
    main = await session.scalar(select(Site.id).where(Site.code == "MAIN"))
    made: dict[str, RoutingQueue] = {}
    for code, name, kind, team, skill, hours, working_days, strategy, extra in QUEUES:
        data = QueueCreate.model_validate({
            "code": code, "name": name, "kind": kind, "team_id": teams.get(team or ""), "skill": skill, "hours": hours,
            "working_days_only": working_days, "strategy": strategy,
            "site_id": main if kind == "department_seats" else None,
            "overflow_queue_id": made[OVERFLOWS[code]].id if code in OVERFLOWS else None, **extra,
        })  # fmt: skip
        made[code] = await service.create_queue(session, actor=ADMIN, data=data)
    return made


async def _members(
    session: AsyncSession, queues: dict[str, RoutingQueue], agents: dict[int, int], supervisors: list[int]
) -> None:
    for code, queue in queues.items():
        members = [MemberIn(user_id=agents[n], tier=tiers[code]) for n, tiers in MEMBERS.items()
                   if code in tiers and n in agents]  # fmt: skip
        members += [MemberIn(user_id=s, tier=SUPERVISOR_TIERS[code]) for s in supervisors if code in SUPERVISOR_TIERS]
        await service.set_members(session, actor=ADMIN, queue_id=queue.id, members=members)


# --- four weeks of traffic through the real core ---------------------------------------------------


@dataclass(order=True)
class _Event:
    at: float
    seq: int
    kind: str = field(compare=False)
    subject: int = field(compare=False)  # a task or an agent
    detail: Any = field(compare=False, default=None)


@dataclass
class _Task:
    id: int
    queue: int
    channel: str
    entered_at: float
    aht_s: float
    agent: int | None = None
    accepted_at: float | None = None
    state: str = TaskState.WAITING
    ended_at: float | None = None


class _History:
    """Arrivals by the hour, agents on shifts with a meal and a break, answers after a few rings,
    exponential handling times and impatient callers — all as commands to `core.Router`."""

    def __init__(self, queues: dict[str, RoutingQueue], agents: dict[int, int], calendar: workcal.WorkCalendar,
                 zone: ZoneInfo) -> None:  # fmt: skip
        self.rng = random.Random(SEED)  # noqa: S311 - made-up traffic, not secrecy
        self.queues, self.agents, self.calendar, self.zone = queues, agents, calendar, zone
        self.router = core.Router()
        self.events: list[_Event] = []
        self.tasks: dict[int, _Task] = {}
        self.lines: list[metrics.Entry] = []
        self.leaving: set[int] = set()
        self.seq = 0
        for queue in queues.values():
            self.router.set_queue(service.queue_config(queue), 0.0)

    def run(self, profiles: dict[int, core.AgentProfile], start: date, end: datetime) -> None:
        day = start
        while day <= end.astimezone(self.zone).date():
            self._plan_day(day, profiles)
            day += timedelta(days=1)
        stop = end.timestamp()
        while (at := self._next_moment()) is not None and at < stop:
            due = self.router.next_due()
            if due is not None and due <= at:  # the router's own timers first: they may schedule answers
                self._effects(self.router.tick(due))
            else:
                self._handle(heapq.heappop(self.events))
        self._close(stop)

    def _next_moment(self) -> float | None:
        moments = [m for m in (self.router.next_due(), self.events[0].at if self.events else None) if m is not None]
        return min(moments, default=None)

    def _at(self, day: date, moment: time) -> float:
        return datetime.combine(day, moment, self.zone).timestamp()

    def _schedule(self, at: float, kind: str, subject: int, detail: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.events, _Event(at, self.seq, kind, subject, detail))

    def _plan_day(self, day: date, profiles: dict[int, core.AgentProfile]) -> None:
        working = self.calendar.is_working_day(day)
        self._schedule(self._at(day, time(0)), "new_day", 0)
        for number, agent in self.agents.items():
            shift = SHIFTS[number][0 if working else 1]
            if shift is None:
                continue
            begin, end = self._at(day, shift[0]), self._at(day, shift[1])
            end += 86400 if end <= begin else 0
            self._schedule(begin - self.rng.uniform(0, 300), "login", agent, profiles[agent])
            self._schedule(end + self.rng.uniform(0, 300), "logout", agent)
            if shift == DAY:
                meal = self._at(day, time(12, 0 if number % 2 else 30))
                self._schedule(meal, "pause", agent, (core.Reason.MEAL, 1800.0))
                self._schedule(self._at(day, time(15, 30)) + number * 60, "pause", agent, (core.Reason.BREAK, 900.0))
        for code, queue in self.queues.items():
            if queue.working_days_only and not working:
                continue
            daily, aht, chats = TRAFFIC[code]
            self._arrivals(day, queue, daily * (1.0 if working else 0.35), aht, chats)

    def _arrivals(self, day: date, queue: RoutingQueue, daily: float, aht: float, chats: float) -> None:
        """A Poisson stream whose rate follows the hour of day, inside the queue's opening hours."""
        info = store.QueueInfo.of(queue)
        open_hours = [h for h in range(24) if any(s < (h + 1) * 60 and e > h * 60 for s, e in info.hours.windows)]
        weight = sum(HOURLY[h] for h in open_hours)
        for hour in open_hours:
            rate = daily * HOURLY[hour] / weight / 3600.0
            at, end = self._at(day, time(hour)), self._at(day, time(hour)) + 3600.0
            while (at := at + self.rng.expovariate(rate)) < end:
                local = datetime.fromtimestamp(at, self.zone)
                if info.open_at(local, None):
                    channel = "chat" if self.rng.random() < chats else "voice"
                    self._schedule(at, "arrive", queue.id, (channel, self.rng.expovariate(1 / aht) + 20.0))

    def _handle(self, event: _Event) -> None:
        at, subject = event.at, event.subject
        try:
            if event.kind == "arrive":
                channel, aht = event.detail
                task = _Task(len(self.tasks) + 1, subject, channel, at, aht)
                self.tasks[task.id] = task
                self._effects(self.router.submit(core.TaskSpec(task.id, subject, channel), at))
                if channel == "voice":
                    self._schedule(at + self.rng.expovariate(1 / PATIENCE_S), "hang_up", task.id)
            elif event.kind == "answer":
                self._effects(self.router.accept(subject, event.detail, at))
            elif event.kind == "hang_up":
                self._effects(self.router.abandon(subject, at))
            elif event.kind == "done":
                self._effects(self.router.complete(subject, at, wrap_up=self.rng.random() < 0.3))
            else:
                self._agent_event(event)
        except core.RoutingError:
            pass  # the call was answered, abandoned or passed on meanwhile: nothing to do

    def _agent_event(self, event: _Event) -> None:
        at, agent = event.at, event.subject
        if event.kind == "new_day":
            self.router.new_day()
        elif event.kind == "login":
            self.leaving.discard(agent)
            self._effects(self.router.login(event.detail, at))
            self._effects(self.router.ready(agent, at))
        elif event.kind == "logout":
            self.leaving.add(agent)
            self._leave_if_free(agent, at)
        elif event.kind == "pause":
            reason, length = event.detail
            self._effects(self.router.not_ready(agent, reason, at))
            self._schedule(at + length, "unpause", agent)
        elif event.kind == "unpause" and agent not in self.leaving:
            self._effects(self.router.ready(agent, at))

    def _leave_if_free(self, agent: int, at: float) -> None:
        """At the end of the shift: log out, or take no more and log out after the last task."""
        try:
            view = self.router.agent(agent)
        except core.RoutingError:
            return
        self._effects(self.router.not_ready(agent, core.Reason.OTHER, at))  # a ringing offer goes back
        if not view.active:
            self.leaving.discard(agent)
            self._effects(self.router.logout(agent, at))

    def _effects(self, effects: list[core.Effect]) -> None:
        for effect in effects:
            if isinstance(effect, core.Logged):
                self._follow(effect)

    def _follow(self, line: core.Logged) -> None:
        self.lines.append(store.log_line(line))
        task = self.tasks.get(line.task or 0)
        if task is None:
            return
        if line.event == "offer" and self.rng.random() > 0.02:  # now and then nobody answers
            self._schedule(line.at + self.rng.uniform(2, 8), "answer", task.id, line.agent)
        elif line.event == "accept":
            task.agent, task.accepted_at, task.state = line.agent, line.at, TaskState.ACTIVE
            self._schedule(line.at + task.aht_s, "done", task.id)
        elif line.event == "enter":
            task.queue = line.queue or task.queue
        elif line.event in store.TERMINAL:
            task.state, task.ended_at = store.TERMINAL[line.event], line.at
            task.agent = line.agent if line.event == "complete" else None
            if line.event == "complete" and line.agent in self.leaving:
                self._schedule(line.at, "logout", line.agent)

    def _close(self, at: float) -> None:
        """The history ends now: calls still in hand are finished, the rest hang up, everyone logs out."""
        for task in list(self.tasks.values()):
            try:
                if task.state == TaskState.ACTIVE:
                    self._effects(self.router.complete(task.id, at))
                elif task.state == TaskState.WAITING:
                    self._effects(self.router.abandon(task.id, at))
            except core.RoutingError:
                continue
        for view in self.router.agents():
            self._effects(self.router.logout(view.id, at))


async def _history(session: AsyncSession, queues: dict[str, RoutingQueue], agents: dict[int, int]) -> tuple[int, int]:
    settings = get_settings()
    zone = ZoneInfo(settings.timezone)
    now = clock.now()
    history = _History(queues, agents, await workcal.load(session, timezone=settings.timezone), zone)
    profiles = await service.agent_profiles(session, user_ids=agents.values())
    history.run(profiles, now.astimezone(zone).date() - timedelta(days=HISTORY_DAYS), now)
    base = int(await session.scalar(select(func.coalesce(func.max(RoutingTask.id), 0))) or 0)
    await _write_tasks(session, history.tasks.values(), base)
    lines = [_renumbered(line, base) for line in history.lines]
    for start in range(0, len(lines), 5000):
        await store.write_lines(session, lines[start : start + 5000])
    return len(history.tasks), len(lines)


def _renumbered(line: metrics.Entry, base: int) -> metrics.Entry:
    if line.task_id is None:
        return line
    return metrics.Entry(line.at, line.event, line.queue_id, line.task_id + base, line.agent_id, line.channel,
                         line.wait_s, line.duration_s, line.reason, line.by_id)  # fmt: skip


async def _write_tasks(session: AsyncSession, tasks: Any, base: int) -> None:
    def moment(seconds: float | None) -> datetime | None:
        return None if seconds is None else datetime.fromtimestamp(seconds, UTC)

    rows = [
        {"id": base + t.id, "channel": t.channel, "queue_id": t.queue, "state": t.state, "priority": 0,
         "is_vip": False, "entered_at": moment(t.entered_at), "agent_id": t.agent,
         "offered_at": None, "accepted_at": moment(t.accepted_at), "ended_at": moment(t.ended_at),
         "kept_place": False, "external_ref": None, "caller": {}, "subject": "", "version": 1,
         "created_at": moment(t.entered_at), "updated_at": moment(t.ended_at or t.entered_at)}
        for t in tasks
    ]  # fmt: skip
    for start in range(0, len(rows), 5000):
        await session.execute(insert(cast(Table, RoutingTask.__table__)), rows[start : start + 5000])
    if session.get_bind().dialect.name == "postgresql":  # explicit ids: the sequence must follow
        await session.execute(text("SELECT setval(pg_get_serial_sequence('routing_tasks', 'id'), "
                                   "(SELECT max(id) FROM routing_tasks))"))  # fmt: skip
