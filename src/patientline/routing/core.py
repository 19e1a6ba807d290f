"""The router's pure core: queues, agents, tasks and offers in memory (see docs/ROUTING.md).

No I/O and no clock: every command takes `now` and returns the effects it caused, in order. Ties are
broken by sequence numbers, so the same commands at the same moments always give the same effects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise
from types import MappingProxyType

from patientline.routing.queues import Timer, Timers, WaitingLine

CALLBACK = "callback"


class Strategy(StrEnum):
    LONGEST_IDLE = "longest_idle"
    FEWEST_TODAY = "fewest_today"
    ROUND_ROBIN = "round_robin"
    BEST_SKILL = "best_skill"


class WrapUpPolicy(StrEnum):
    NONE = "none"
    MANDATORY = "mandatory"
    ON_REQUEST = "on_request"


class Reason(StrEnum):
    BREAK = "break"
    MEAL = "meal"
    TRAINING = "training"
    MEETING = "meeting"
    MISSED_OFFERS = "missed_offers"
    SUPERVISOR = "supervisor"
    OTHER = "other"


class Status(StrEnum):
    OFFLINE = "offline"
    READY = "ready"
    OFFERED = "offered"
    BUSY = "busy"
    WRAP_UP = "wrap_up"
    NOT_READY = "not_ready"


class TaskState(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    ACTIVE = "active"


class RoutingError(Exception):
    """An unknown id or an impossible step; the command changed nothing."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# ---- configuration -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouterConfig:
    offer_timeout_s: float = 15.0
    max_missed_offers: int = 2  # 0: never set an agent not ready for missed offers
    exclusive_channels: frozenset[str] = frozenset({"voice", CALLBACK})  # need an agent with nothing else

    def __post_init__(self) -> None:
        if self.offer_timeout_s <= 0 or self.max_missed_offers < 0:
            raise ValueError("offer_timeout_s must be positive and max_missed_offers not negative")


@dataclass(frozen=True, slots=True)
class QueueConfig:
    id: int
    priority: int = 0
    strategy: Strategy = Strategy.LONGEST_IDLE
    skill: str | None = None
    widen_after_s: tuple[float, ...] = ()
    aging_per_minute: float = 0.0
    max_wait_s: float | None = None
    overflow_queue: int | None = None
    overflow_threshold: int | None = None
    wrap_up: WrapUpPolicy = WrapUpPolicy.NONE
    wrap_up_s: float = 0.0

    def __post_init__(self) -> None:
        widen = self.widen_after_s
        if any(s < 0 for s in widen) or any(a > b for a, b in pairwise(widen)):
            raise ValueError("widen_after_s must be non-negative and non-decreasing")
        if self.aging_per_minute < 0 or self.wrap_up_s < 0:
            raise ValueError("aging_per_minute and wrap_up_s must not be negative")
        if self.max_wait_s is not None and self.max_wait_s <= 0:
            raise ValueError("max_wait_s must be positive")
        if self.overflow_threshold is not None and self.overflow_threshold < 0:
            raise ValueError("overflow_threshold must not be negative")

    def tier_opens_after(self, tier: int) -> float | None:
        """Seconds of waiting after which agents of this tier may take a task; None: never."""
        if tier <= 1:
            return 0.0
        return self.widen_after_s[tier - 2] if tier - 2 < len(self.widen_after_s) else None


@dataclass(frozen=True, slots=True)
class AgentProfile:
    id: int
    capacities: Mapping[str, int]
    skills: Mapping[str, int] = field(default_factory=dict)
    queues: Mapping[int, int] = field(default_factory=dict)
    handled_today: int = 0

    def __post_init__(self) -> None:
        if any(n < 0 for n in self.capacities.values()):
            raise ValueError("capacities must not be negative")
        if any(not 1 <= level <= 5 for level in self.skills.values()):
            raise ValueError("skill levels are 1..5")
        if any(tier < 1 for tier in self.queues.values()):
            raise ValueError("tiers start at 1")


@dataclass(frozen=True, slots=True)
class TaskSpec:
    id: int
    queue: int
    channel: str
    priority: int = 0
    entered_at: float | None = None


# ---- effects -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Logged:
    event: str
    at: float
    queue: int | None = None
    task: int | None = None
    agent: int | None = None
    channel: str | None = None
    wait_s: float | None = None
    duration_s: float | None = None
    reason: str | None = None
    by: int | None = None


@dataclass(frozen=True, slots=True)
class Offered:
    task: int
    agent: int
    queue: int
    channel: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class OfferEnded:
    task: int
    agent: int
    reason: str  # timeout, declined, abandoned, moved, withdrawn


@dataclass(frozen=True, slots=True)
class AgentChanged:
    agent: int
    status: Status
    reason: Reason | None
    since: float


@dataclass(frozen=True, slots=True)
class TaskExpired:
    task: int
    queue: int


class OfferEndReason(StrEnum):
    TIMEOUT = "timeout"
    DECLINED = "declined"
    ABANDONED = "abandoned"
    MOVED = "moved"
    WITHDRAWN = "withdrawn"

    @property
    def log_reason(self) -> str:
        """ring_no_answer's reason in the queue log: timeout, declined or withdrawn."""
        return self.value if self in (OfferEndReason.TIMEOUT, OfferEndReason.DECLINED) else "withdrawn"


Effect = Logged | Offered | OfferEnded | AgentChanged | TaskExpired


# ---- views ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentView:
    id: int
    status: Status
    reason: Reason | None
    since: float
    presence: Status  # OFFLINE, READY or NOT_READY: what the agent chose, whatever the work
    active: tuple[int, ...]
    offer: int | None
    handled_today: int
    missed: int
    idle_since: float
    wrap_up_until: float | None
    profile: AgentProfile


@dataclass(frozen=True, slots=True)
class TaskView:
    id: int
    state: TaskState
    queue: int
    channel: str
    priority: int
    entered_at: float
    agent: int | None
    position: int | None  # 1 = next to be served; waiting tasks only
    offer_expires_at: float | None
    accepted_at: float | None


@dataclass(frozen=True, slots=True)
class QueueView:
    id: int
    waiting: int
    ringing: int
    active: int
    longest_wait_s: float
    agents: Mapping[Status, int]  # logged-in members by displayed status


# ---- records -------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Task:
    id: int
    queue: int
    channel: str
    priority: int
    entered_at: float
    seq: int
    queued_at: float = 0.0  # when it entered its current queue (max wait counts from here)
    state: TaskState = TaskState.WAITING
    agent: int | None = None
    offer_expires_at: float | None = None
    accepted_at: float | None = None
    line_token: int = 0  # its entry in the waiting line
    queue_token: int = 0  # its queue's timers (max wait, tiers)
    offer_token: int = 0
    refused_by: set[int] = field(default_factory=set)


@dataclass(slots=True, eq=False)
class _Agent:
    profile: AgentProfile
    presence: Status
    reason: Reason | None
    paused_at: float | None
    idle_since: float
    handled_today: int
    shown: Status = Status.OFFLINE
    shown_reason: Reason | None = None
    since: float = 0.0
    offer: int | None = None
    active: dict[int, str] = field(default_factory=dict)
    load: dict[str, int] = field(default_factory=dict)
    exclusive: int = 0  # active tasks on exclusive channels
    wrap_until: float | None = None
    wrap_started: float = 0.0
    wrap_token: int = 0
    missed: int = 0
    last_offer_in: dict[int, int] = field(default_factory=dict)  # queue -> offer number (round robin)
    indexed: bool = False  # listed among the available members of its queues


@dataclass(slots=True, eq=False)
class _Queue:
    cfg: QueueConfig
    line: WaitingLine = field(default_factory=WaitingLine)
    tasks: dict[int, None] = field(default_factory=dict)  # waiting and ringing
    active: dict[int, None] = field(default_factory=dict)
    ringing: int = 0

    @property
    def waiting(self) -> int:
        return len(self.tasks) - self.ringing


# ---- the router ----------------------------------------------------------------------------------


class Router:
    def __init__(self, config: RouterConfig | None = None) -> None:
        self.config = config or RouterConfig()
        self._queues: dict[int, _Queue] = {}
        self._agents: dict[int, _Agent] = {}
        self._tasks: dict[int, _Task] = {}
        self._available: dict[int, dict[int, None]] = {}  # queue -> agents who may take an offer
        self._timers = Timers()
        self._seq = 0
        self._offers = 0
        self._now = 0.0
        self._out: list[Effect] = []
        self._pending_tasks: list[int] = []
        self._pending_agents: list[int] = []

    # ---- queues -----------------------------------------------------------------------------------

    def set_queue(self, cfg: QueueConfig, now: float | None = None) -> list[Effect]:
        """Add or change a queue; its tasks keep their places (their timers follow the new settings)."""
        at = self._begin(now)
        queue = self._queues.get(cfg.id)
        if queue is None:
            self._queues[cfg.id] = _Queue(cfg)
        else:
            old, queue.cfg = queue.cfg, cfg
            if (old.widen_after_s, old.max_wait_s) != (cfg.widen_after_s, cfg.max_wait_s):
                for task_id in queue.tasks:
                    self._arm_queue_timers(self._tasks[task_id], at)
        self._pending_agents.extend(self._available.get(cfg.id, ()))
        return self._finish(at)

    def remove_queue(self, queue_id: int, now: float) -> list[Effect]:
        queue = self._queue(queue_id)
        if queue.tasks or queue.active:
            raise RoutingError("queue_not_empty", f"queue {queue_id} still has tasks")
        self._begin(now)
        del self._queues[queue_id]
        return self._finish(now)

    # ---- agents -----------------------------------------------------------------------------------

    def login(self, profile: AgentProfile, now: float, by: int | None = None) -> list[Effect]:
        """The agent logs in NOT_READY (reason OTHER); logging in again only updates the profile."""
        agent = self._agents.get(profile.id)
        if agent is not None and agent.presence is not Status.OFFLINE:
            return self.update_agent(profile, now)
        self._begin(now)
        if agent is None:
            agent = _Agent(profile, Status.NOT_READY, Reason.OTHER, now, now, profile.handled_today, since=now)
            self._agents[profile.id] = agent
        else:
            self._unindex(agent)
            agent.profile, agent.presence, agent.reason, agent.paused_at = profile, Status.NOT_READY, Reason.OTHER, now
        self._log("login", now, agent=profile.id, by=by)
        self._log("pause", now, agent=profile.id, reason=Reason.OTHER.value, by=by)
        self._refresh(agent, now)
        return self._finish(now)

    def update_agent(self, profile: AgentProfile, now: float) -> list[Effect]:
        """Skills, capacities or memberships changed; presence and work are kept."""
        agent = self._agent(profile.id)
        self._begin(now)
        self._unindex(agent)
        agent.profile = profile
        self._refresh(agent, now)
        return self._finish(now)

    def ready(self, agent_id: int, now: float, by: int | None = None) -> list[Effect]:
        agent = self._logged_in(agent_id)
        if agent.presence is Status.READY:
            return []
        self._begin(now)
        self._unpause(agent, now, by)
        agent.presence, agent.reason = Status.READY, None
        if self._free(agent):
            agent.idle_since = now
        self._refresh(agent, now)
        return self._finish(now)

    def not_ready(self, agent_id: int, reason: Reason, now: float, by: int | None = None) -> list[Effect]:
        """Pause; a live offer goes back to the queue (not counted as missed)."""
        agent = self._logged_in(agent_id)
        if agent.presence is Status.NOT_READY and agent.reason is reason:
            return []
        self._begin(now)
        self._withdraw_offer(agent, now, OfferEndReason.WITHDRAWN)
        self._pause(agent, reason, now, by)
        return self._finish(now)

    def logout(self, agent_id: int, now: float, by: int | None = None) -> list[Effect]:
        """Refused while the agent has live work, unless forced (`by`): the offer then goes back to
        the queue and active tasks stay with the agent until completed."""
        agent = self._logged_in(agent_id)
        if (agent.offer is not None or agent.active) and by is None:
            raise RoutingError("busy", f"agent {agent_id} has live work")
        self._begin(now)
        self._withdraw_offer(agent, now, OfferEndReason.WITHDRAWN)
        if agent.wrap_until is not None:
            self._end_wrap_up(agent, now)
        self._unpause(agent, now, by)
        self._log("logout", now, agent=agent_id, by=by)
        agent.presence, agent.reason = Status.OFFLINE, None
        self._refresh(agent, now)
        self._forget_if_gone(agent)
        return self._finish(now)

    def end_wrap_up(self, agent_id: int, now: float) -> list[Effect]:
        agent = self._agent(agent_id)
        if agent.wrap_until is None:
            return []
        self._begin(now)
        self._end_wrap_up(agent, now)
        return self._finish(now)

    def new_day(self) -> list[Effect]:
        for agent in self._agents.values():
            agent.handled_today = 0
        return []

    # ---- tasks ------------------------------------------------------------------------------------

    def submit(self, spec: TaskSpec, now: float) -> list[Effect]:
        """The task enters its queue, or its overflow queue at once when the queue is at its threshold."""
        queue = self._queue(spec.queue)
        if spec.id in self._tasks:
            raise RoutingError("duplicate_task", f"task {spec.id} is already routed")
        self._begin(now)
        self._seq += 1
        entered_at = now if spec.entered_at is None else spec.entered_at
        task = _Task(spec.id, spec.queue, spec.channel, spec.priority, entered_at, self._seq)
        self._tasks[task.id] = task
        self._log("enter", now, queue=queue.cfg.id, task=task.id, channel=task.channel)
        target = self._overflow_at_arrival(queue)
        if target is not queue:
            self._log_transfer(task, now, "overflow")
            task.queue = target.cfg.id
            self._log("enter", now, queue=target.cfg.id, task=task.id, channel=task.channel)
        self._join(task, target, now)
        return self._finish(now)

    def accept(self, task_id: int, agent_id: int, now: float) -> list[Effect]:
        task, agent = self._task(task_id), self._agent(agent_id)
        if task.state is not TaskState.OFFERED or task.agent != agent_id:
            raise RoutingError("not_offered", f"task {task_id} is not offered to agent {agent_id}")
        self._begin(now)
        queue = self._queues[task.queue]
        del queue.tasks[task.id]
        queue.ringing -= 1
        queue.active[task.id] = None
        task.state, task.accepted_at, task.offer_expires_at = TaskState.ACTIVE, now, None
        agent.offer = None
        agent.active[task.id] = task.channel
        agent.load[task.channel] = agent.load.get(task.channel, 0) + 1
        agent.exclusive += task.channel in self.config.exclusive_channels
        agent.missed = 0
        agent.handled_today += 1
        self._log("accept", now, queue=task.queue, task=task.id, agent=agent_id, channel=task.channel,
                  wait_s=now - task.entered_at)  # fmt: skip
        self._refresh(agent, now)
        return self._finish(now)

    def decline(self, task_id: int, agent_id: int, now: float) -> list[Effect]:
        """The agent refuses: the task goes back to its place and to someone else if anyone may take it."""
        task, agent = self._task(task_id), self._agent(agent_id)
        if task.state is not TaskState.OFFERED or task.agent != agent_id:
            raise RoutingError("not_offered", f"task {task_id} is not offered to agent {agent_id}")
        self._begin(now)
        task.refused_by.add(agent_id)
        self._withdraw_offer(agent, now, OfferEndReason.DECLINED)
        return self._finish(now)

    def abandon(self, task_id: int, now: float) -> list[Effect]:
        task = self._queued_task(task_id)
        self._begin(now)
        self._withdraw_offer_of(task, now, OfferEndReason.ABANDONED, requeue=False)
        self._log("abandon", now, queue=task.queue, task=task.id, channel=task.channel, wait_s=now - task.entered_at)
        self._leave_queue(task)
        del self._tasks[task.id]
        return self._finish(now)

    def keep_place(self, task_id: int, now: float) -> list[Effect]:
        """The patient hung up and keeps the place: the task becomes a callback."""
        task = self._queued_task(task_id)
        if task.channel == CALLBACK:
            return []
        self._begin(now)
        self._withdraw_offer_of(task, now, OfferEndReason.WITHDRAWN, requeue=False)
        task.channel = CALLBACK
        self._line_up(task, self._queues[task.queue])
        return self._finish(now)

    def complete(self, task_id: int, now: float, wrap_up: bool = False) -> list[Effect]:
        task = self._active_task(task_id)
        agent = self._agents[task.agent]  # type: ignore[index]  # an active task has its agent
        self._begin(now)
        queue = self._queues[task.queue]
        self._log("complete", now, queue=task.queue, task=task.id, agent=agent.profile.id, channel=task.channel,
                  duration_s=now - task.accepted_at)  # type: ignore[operator]  # fmt: skip
        self._release(task, agent)
        del queue.active[task.id]
        del self._tasks[task.id]
        policy, length = queue.cfg.wrap_up, queue.cfg.wrap_up_s
        wanted = policy is WrapUpPolicy.MANDATORY or (policy is WrapUpPolicy.ON_REQUEST and wrap_up)
        if wanted and length > 0 and agent.presence is not Status.OFFLINE:
            self._start_wrap_up(agent, now, length)
        self._after_work(agent, now)
        return self._finish(now)

    def move(self, task_id: int, queue_id: int, now: float, by: int | None = None) -> list[Effect]:
        """A waiting or ringing task goes to another queue, keeping its entry time."""
        task, target = self._queued_task(task_id), self._queue(queue_id)
        if task.queue == queue_id:
            return []
        self._begin(now)
        self._withdraw_offer_of(task, now, OfferEndReason.MOVED, requeue=False)
        self._leave_queue(task)
        self._log_transfer(task, now, "moved", by=by)
        task.queue = queue_id
        task.refused_by.clear()
        self._log("enter", now, queue=queue_id, task=task.id, channel=task.channel)
        self._join(task, target, now)
        return self._finish(now)

    def set_priority(self, task_id: int, priority: int, now: float, by: int | None = None) -> list[Effect]:
        task = self._queued_task(task_id)
        if task.priority == priority:
            return []
        self._begin(now)
        task.priority = priority
        if task.state is TaskState.WAITING:
            self._line_up(task, self._queues[task.queue])
        return self._finish(now)

    def transfer(self, task_id: int, queue_id: int, now: float, by: int | None = None) -> list[Effect]:
        """An active task leaves its agent (completed, no wrap-up) and waits afresh in another queue."""
        task, target = self._active_task(task_id), self._queue(queue_id)
        agent = self._agents[task.agent]  # type: ignore[index]  # an active task has its agent
        self._begin(now)
        self._log("complete", now, queue=task.queue, task=task.id, agent=agent.profile.id, channel=task.channel,
                  duration_s=now - task.accepted_at)  # type: ignore[operator]  # fmt: skip
        self._release(task, agent)
        del self._queues[task.queue].active[task.id]
        self._log_transfer(task, now, "agent", by=by, agent=agent.profile.id)
        self._after_work(agent, now)
        self._seq += 1
        task.queue, task.entered_at, task.seq, task.accepted_at = queue_id, now, self._seq, None
        task.refused_by = {agent.profile.id}  # someone else should take it over
        self._log("enter", now, queue=queue_id, task=task.id, channel=task.channel)
        self._join(task, target, now)
        return self._finish(now)

    # ---- time -------------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Effect]:
        """Offer timeouts, wrap-up ends, max-wait overflow or expiry, tiers opening with time."""
        self._begin(now)
        while (due := self._timers.pop_due(now, self._timer_current)) is not None:
            at, kind, owner = due
            if kind is Timer.OFFER_TIMEOUT:
                self._ring_out(self._tasks[owner], at)
            elif kind is Timer.WRAP_UP_END:
                self._end_wrap_up(self._agents[owner], at)
            elif kind is Timer.MAX_WAIT:
                self._max_wait_passed(self._tasks[owner], at)
            else:
                self._pending_tasks.append(owner)
        return self._finish(now)

    def next_due(self) -> float | None:
        return self._timers.next_at(self._timer_current)

    # ---- rebuild ----------------------------------------------------------------------------------

    def restore_agent(
        self,
        profile: AgentProfile,
        *,
        presence: Status,
        reason: Reason | None,
        since: float,
        idle_since: float,
        missed: int,
        now: float,
    ) -> list[Effect]:
        """Rebuild: an agent as the database last saw it (presence READY, NOT_READY or OFFLINE when
        only active tasks keep it here). Logs nothing; restore agents first, then active tasks, then
        waiting ones."""
        if presence not in (Status.READY, Status.NOT_READY, Status.OFFLINE):
            raise ValueError("presence is READY, NOT_READY or OFFLINE")
        if profile.id in self._agents:
            raise RoutingError("busy", f"agent {profile.id} is already here")
        self._begin(now)
        reason = (reason or Reason.OTHER) if presence is Status.NOT_READY else None
        paused_at = since if presence is Status.NOT_READY else None
        agent = _Agent(profile, presence, reason, paused_at, idle_since, profile.handled_today, missed=missed)
        agent.shown, agent.shown_reason, agent.since = presence, reason, since
        self._agents[profile.id] = agent
        self._reindex(agent)
        return self._finish(now)

    def restore_task(
        self, spec: TaskSpec, *, now: float, agent: int | None = None, accepted_at: float | None = None
    ) -> list[Effect]:
        """Rebuild: an active task back with its agent, or a waiting (or was ringing) one back in its
        queue with its entry time. Logs nothing; matching may offer waiting ones."""
        queue = self._queue(spec.queue)
        if spec.id in self._tasks:
            raise RoutingError("duplicate_task", f"task {spec.id} is already routed")
        holder = None if agent is None else self._agent(agent)
        self._begin(now)
        self._seq += 1
        entered_at = now if spec.entered_at is None else spec.entered_at
        task = _Task(spec.id, spec.queue, spec.channel, spec.priority, entered_at, self._seq)
        self._tasks[task.id] = task
        if holder is None:
            self._join(task, queue, now)
            return self._finish(now)
        task.state, task.agent, task.accepted_at = TaskState.ACTIVE, holder.profile.id, accepted_at or now
        queue.active[task.id] = None
        holder.active[task.id] = task.channel
        holder.load[task.channel] = holder.load.get(task.channel, 0) + 1
        holder.exclusive += task.channel in self.config.exclusive_channels
        self._unindex(holder)
        self._reindex(holder)
        holder.shown, holder.shown_reason = self._display(holder)
        return self._finish(now)

    # ---- queries ----------------------------------------------------------------------------------

    def agent(self, agent_id: int) -> AgentView:
        agent = self._agent(agent_id)
        return AgentView(agent.profile.id, agent.shown, agent.shown_reason, agent.since, agent.presence,
                         tuple(agent.active), agent.offer, agent.handled_today, agent.missed, agent.idle_since,
                         agent.wrap_until, agent.profile)  # fmt: skip

    def agents(self) -> list[AgentView]:
        return [self.agent(agent_id) for agent_id in sorted(self._agents)]

    def task(self, task_id: int, now: float | None = None) -> TaskView:
        task = self._task(task_id)
        position = None
        if task.state is TaskState.WAITING:
            at = self._now if now is None else now
            mine = self._rank(task, at)
            position = 1 + sum(
                1
                for other_id in self._queues[task.queue].tasks
                if (other := self._tasks[other_id]).state is TaskState.WAITING and self._rank(other, at) < mine
            )
        return self._view(task, position)

    def waiting(self, queue_id: int, now: float | None = None) -> list[TaskView]:
        """The queue's waiting tasks, next to be served first."""
        queue, at = self._queue(queue_id), self._now if now is None else now
        tasks = [self._tasks[t] for t in queue.tasks if self._tasks[t].state is TaskState.WAITING]
        tasks.sort(key=lambda task: self._rank(task, at))
        return [self._view(task, position) for position, task in enumerate(tasks, 1)]

    def queue_stats(self, queue_id: int, now: float) -> QueueView:
        queue = self._queue(queue_id)
        waits = [now - self._tasks[t].entered_at for t in queue.tasks]
        counts = dict.fromkeys(Status, 0)
        for agent in self._agents.values():
            if queue_id in agent.profile.queues and agent.presence is not Status.OFFLINE:
                counts[agent.shown] += 1
        return QueueView(queue_id, queue.waiting, len(queue.tasks) - queue.waiting, len(queue.active),
                         max(waits, default=0.0), MappingProxyType(counts))  # fmt: skip

    def queue_ids(self) -> list[int]:
        return sorted(self._queues)

    # ---- command frame ----------------------------------------------------------------------------

    def _begin(self, now: float | None) -> float:
        at = self._now if now is None else now
        self._now = max(self._now, at)
        self._out = []
        return at

    def _finish(self, now: float) -> list[Effect]:
        self._settle(now)
        out, self._out = self._out, []
        return out

    def _log(self, event: str, at: float, **fields: object) -> None:
        self._out.append(Logged(event, at, **fields))  # type: ignore[arg-type]

    # ---- lookups that raise -----------------------------------------------------------------------

    def _queue(self, queue_id: int) -> _Queue:
        queue = self._queues.get(queue_id)
        if queue is None:
            raise RoutingError("unknown_queue", f"no queue {queue_id}")
        return queue

    def _agent(self, agent_id: int) -> _Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise RoutingError("unknown_agent", f"agent {agent_id} is not logged in")
        return agent

    def _logged_in(self, agent_id: int) -> _Agent:
        agent = self._agent(agent_id)
        if agent.presence is Status.OFFLINE:
            raise RoutingError("unknown_agent", f"agent {agent_id} is logged out")
        return agent

    def _task(self, task_id: int) -> _Task:
        task = self._tasks.get(task_id)
        if task is None:
            raise RoutingError("unknown_task", f"no live task {task_id}")
        return task

    def _queued_task(self, task_id: int) -> _Task:
        task = self._task(task_id)
        if task.state is TaskState.ACTIVE:
            raise RoutingError("not_waiting", f"task {task_id} is with an agent")
        return task

    def _active_task(self, task_id: int) -> _Task:
        task = self._task(task_id)
        if task.state is not TaskState.ACTIVE:
            raise RoutingError("not_active", f"task {task_id} is not with an agent")
        return task

    # ---- tasks in queues --------------------------------------------------------------------------

    def _overflow_at_arrival(self, queue: _Queue) -> _Queue:
        seen = {queue.cfg.id}
        while True:
            cfg = queue.cfg
            target = self._queues.get(cfg.overflow_queue) if cfg.overflow_queue is not None else None
            if target is None or cfg.overflow_threshold is None or queue.waiting < cfg.overflow_threshold:
                return queue
            if target.cfg.id in seen:
                return queue
            seen.add(target.cfg.id)
            queue = target

    def _join(self, task: _Task, queue: _Queue, now: float) -> None:
        """The task takes its place in the queue: waiting line, timers, matching."""
        task.queued_at = now
        queue.tasks[task.id] = None
        self._line_up(task, queue)
        self._arm_queue_timers(task, now)

    def _line_up(self, task: _Task, queue: _Queue) -> None:
        task.state, task.agent, task.offer_expires_at = TaskState.WAITING, None, None
        task.line_token += 1
        queue.line.push(channel=task.channel, priority=task.priority, entered_at=task.entered_at, seq=task.seq,
                        task=task.id, token=task.line_token)  # fmt: skip
        self._pending_tasks.append(task.id)

    def _arm_queue_timers(self, task: _Task, now: float) -> None:
        task.queue_token += 1
        cfg = self._queues[task.queue].cfg
        for after in cfg.widen_after_s:
            if task.entered_at + after > now:
                self._timers.set(task.entered_at + after, Timer.TIER_OPENS, task.id, task.queue_token)
        if cfg.max_wait_s is not None:
            self._timers.set(max(now, task.queued_at + cfg.max_wait_s), Timer.MAX_WAIT, task.id, task.queue_token)

    def _leave_queue(self, task: _Task) -> None:
        queue = self._queues[task.queue]
        del queue.tasks[task.id]
        task.line_token += 1
        task.queue_token += 1

    def _log_transfer(
        self, task: _Task, at: float, reason: str, by: int | None = None, agent: int | None = None
    ) -> None:
        self._log("transfer", at, queue=task.queue, task=task.id, agent=agent, channel=task.channel,
                  wait_s=at - task.entered_at, reason=reason, by=by)  # fmt: skip

    def _max_wait_passed(self, task: _Task, at: float) -> None:
        if task.state is not TaskState.WAITING:
            return  # ringing: decided when the offer ends (it comes back here past its time)
        queue = self._queues[task.queue]
        target_id = queue.cfg.overflow_queue
        target = self._queues.get(target_id) if target_id is not None and target_id != task.queue else None
        self._leave_queue(task)
        if target is None:
            self._log("expire", at, queue=task.queue, task=task.id, channel=task.channel, wait_s=at - task.entered_at)
            self._out.append(TaskExpired(task.id, task.queue))
            del self._tasks[task.id]
            return
        self._log_transfer(task, at, "overflow")
        task.queue = target.cfg.id
        self._log("enter", at, queue=task.queue, task=task.id, channel=task.channel)
        self._join(task, target, at)

    def _timer_current(self, kind: Timer, owner: int, token: int) -> bool:
        if kind is Timer.WRAP_UP_END:
            agent = self._agents.get(owner)
            return agent is not None and agent.wrap_until is not None and agent.wrap_token == token
        task = self._tasks.get(owner)
        if task is None:
            return False
        if kind is Timer.OFFER_TIMEOUT:
            return task.state is TaskState.OFFERED and task.offer_token == token
        return task.state is not TaskState.ACTIVE and task.queue_token == token

    def _in_line(self, task_id: int, token: int) -> bool:
        task = self._tasks.get(task_id)
        return task is not None and task.state is TaskState.WAITING and task.line_token == token

    # ---- offers -----------------------------------------------------------------------------------

    def _offer(self, task: _Task, agent: _Agent, now: float) -> None:
        self._queues[task.queue].ringing += 1
        self._offers += 1
        expires_at = now + self.config.offer_timeout_s
        task.state, task.agent, task.offer_expires_at = TaskState.OFFERED, agent.profile.id, expires_at
        task.offer_token += 1
        task.line_token += 1  # its entry in the line stays stale whatever happens next
        agent.offer = task.id
        agent.last_offer_in[task.queue] = self._offers
        self._timers.set(expires_at, Timer.OFFER_TIMEOUT, task.id, task.offer_token)
        self._log("offer", now, queue=task.queue, task=task.id, agent=agent.profile.id, channel=task.channel)
        self._out.append(Offered(task.id, agent.profile.id, task.queue, task.channel, expires_at))
        self._refresh(agent, now)

    def _ring_out(self, task: _Task, at: float) -> None:
        agent = self._agents[task.agent]  # type: ignore[index]  # a ringing task has its agent
        task.refused_by.add(agent.profile.id)
        self._withdraw_offer(agent, at, OfferEndReason.TIMEOUT)
        agent.missed += 1
        limit = self.config.max_missed_offers
        if limit and agent.missed >= limit and agent.presence is Status.READY:
            agent.missed = 0
            self._pause(agent, Reason.MISSED_OFFERS, at, None)

    def _withdraw_offer(self, agent: _Agent, at: float, reason: OfferEndReason) -> None:
        if agent.offer is not None:
            self._withdraw_offer_of(self._tasks[agent.offer], at, reason, requeue=True)

    def _withdraw_offer_of(self, task: _Task, at: float, reason: OfferEndReason, *, requeue: bool) -> None:
        """End the task's live offer, if any; with `requeue` the task takes its place again."""
        if task.state is not TaskState.OFFERED:
            return
        agent = self._agents[task.agent]  # type: ignore[index]  # a ringing task has its agent
        if reason is not OfferEndReason.ABANDONED:
            self._log("ring_no_answer", at, queue=task.queue, task=task.id, agent=agent.profile.id,
                      channel=task.channel, reason=reason.log_reason)  # fmt: skip
        self._out.append(OfferEnded(task.id, agent.profile.id, reason.value))
        agent.offer = None
        self._queues[task.queue].ringing -= 1
        task.state, task.agent, task.offer_expires_at = TaskState.WAITING, None, None
        if requeue:
            queue = self._queues[task.queue]
            self._line_up(task, queue)
            if queue.cfg.max_wait_s is not None and task.queued_at + queue.cfg.max_wait_s <= at:
                self._timers.set(at, Timer.MAX_WAIT, task.id, task.queue_token)
        self._refresh(agent, at)

    # ---- agents' state ----------------------------------------------------------------------------

    def _pause(self, agent: _Agent, reason: Reason, at: float, by: int | None) -> None:
        self._unpause(agent, at, by)
        agent.presence, agent.reason, agent.paused_at = Status.NOT_READY, reason, at
        self._log("pause", at, agent=agent.profile.id, reason=reason.value, by=by)
        self._refresh(agent, at)

    def _unpause(self, agent: _Agent, at: float, by: int | None) -> None:
        if agent.presence is Status.NOT_READY and agent.paused_at is not None:
            self._log("unpause", at, agent=agent.profile.id, duration_s=at - agent.paused_at,
                      reason=agent.reason.value if agent.reason else None, by=by)  # fmt: skip
        agent.paused_at = None

    def _release(self, task: _Task, agent: _Agent) -> None:
        del agent.active[task.id]
        agent.load[task.channel] -= 1
        agent.exclusive -= task.channel in self.config.exclusive_channels

    def _start_wrap_up(self, agent: _Agent, at: float, length: float) -> None:
        if agent.wrap_until is None:
            agent.wrap_started = at
        agent.wrap_until = max(agent.wrap_until or at, at + length)
        agent.wrap_token += 1
        self._timers.set(agent.wrap_until, Timer.WRAP_UP_END, agent.profile.id, agent.wrap_token)

    def _end_wrap_up(self, agent: _Agent, at: float) -> None:
        self._log("wrap_end", at, agent=agent.profile.id, duration_s=at - agent.wrap_started)
        agent.wrap_until = None
        agent.wrap_token += 1
        self._after_work(agent, at)

    def _after_work(self, agent: _Agent, at: float) -> None:
        if self._free(agent):
            agent.idle_since = at
        self._refresh(agent, at)
        self._forget_if_gone(agent)

    def _forget_if_gone(self, agent: _Agent) -> None:
        if agent.presence is Status.OFFLINE and not agent.active:
            self._unindex(agent)
            del self._agents[agent.profile.id]

    @staticmethod
    def _free(agent: _Agent) -> bool:
        return not agent.active and agent.wrap_until is None

    def _display(self, agent: _Agent) -> tuple[Status, Reason | None]:
        if agent.offer is not None:
            status = Status.OFFERED
        elif agent.active:
            status = Status.BUSY
        elif agent.wrap_until is not None:
            status = Status.WRAP_UP
        else:
            status = agent.presence
        return status, agent.reason if agent.presence is Status.NOT_READY else None

    def _refresh(self, agent: _Agent, at: float) -> None:
        """Emit the agent's new displayed status, if it changed, and keep the availability index."""
        shown = self._display(agent)
        if shown != (agent.shown, agent.shown_reason):
            agent.shown, agent.shown_reason = shown
            agent.since = at
            self._out.append(AgentChanged(agent.profile.id, shown[0], shown[1], at))
        self._reindex(agent)

    def _may_take_offers(self, agent: _Agent) -> bool:
        if agent.presence is not Status.READY or agent.offer is not None or agent.wrap_until is not None:
            return False
        return not agent.exclusive and any(cap > agent.load.get(ch, 0) for ch, cap in agent.profile.capacities.items())

    def _reindex(self, agent: _Agent) -> None:
        """Keep the agent among its queues' available members; an available agent is matched next."""
        available = self._may_take_offers(agent)
        agent_id = agent.profile.id
        if available:
            self._pending_agents.append(agent_id)  # it may have more room than before, too
        if available == agent.indexed:
            return
        for queue_id in agent.profile.queues:
            members = self._available.setdefault(queue_id, {})
            if available:
                members[agent_id] = None
            else:
                members.pop(agent_id, None)
        agent.indexed = available

    def _unindex(self, agent: _Agent) -> None:
        if agent.indexed:
            for queue_id in agent.profile.queues:
                self._available.get(queue_id, {}).pop(agent.profile.id, None)
            agent.indexed = False

    def _can_take(self, agent: _Agent, channel: str) -> bool:
        if channel in self.config.exclusive_channels:
            return not agent.active and agent.profile.capacities.get(channel, 0) > 0
        return agent.profile.capacities.get(channel, 0) > agent.load.get(channel, 0)

    # ---- matching ---------------------------------------------------------------------------------

    def _rank(self, task: _Task, now: float) -> tuple[float, float, int]:
        """Sort key, best first: highest score, then earliest entry, then submission order."""
        cfg = self._queues[task.queue].cfg
        score = cfg.priority + task.priority + cfg.aging_per_minute * (now - task.entered_at) / 60.0
        return -score, task.entered_at, task.seq

    def _settle(self, now: float) -> None:
        """No agent who may take an offer is left idle while a task it may take waits."""
        tasks, self._pending_tasks = self._pending_tasks, []
        agents, self._pending_agents = self._pending_agents, []
        if len(tasks) > 1:
            live = {t: self._tasks[t] for t in tasks if t in self._tasks}
            tasks = sorted(live, key=lambda t: self._rank(live[t], now))
        for task_id in tasks:
            self._place(task_id, now)
        for agent_id in agents:
            self._serve(agent_id, now)
        self._pending_tasks.clear()
        self._pending_agents.clear()

    def _place(self, task_id: int, now: float) -> None:
        """Offer the task to its best agent, unless that agent has a better task to take first."""
        while (task := self._tasks.get(task_id)) is not None and task.state is TaskState.WAITING:
            agent = self._best_agent(task, now)
            if agent is None:
                return
            best = self._best_task(agent, now) or task
            self._offer(best, agent, now)
            if best is task:
                return

    def _serve(self, agent_id: int, now: float) -> None:
        """Offer the agent its best task, unless another free agent comes first for that task."""
        while (agent := self._agents.get(agent_id)) is not None and agent.indexed:
            task = self._best_task(agent, now)
            if task is None:
                return
            self._offer(task, self._best_agent(task, now) or agent, now)

    def _best_task(self, agent: _Agent, now: float) -> _Task | None:
        best: tuple[float, float, int] | None = None
        best_id = 0
        for queue_id, tier in agent.profile.queues.items():
            queue = self._queues.get(queue_id)
            if queue is None or not queue.waiting:
                continue
            cfg = queue.cfg
            opens_after = cfg.tier_opens_after(tier)
            if opens_after is None:
                continue
            for channel, levels in queue.line.channels():
                if not self._can_take(agent, channel):
                    continue
                for priority, entered_at, seq, task_id in WaitingLine.heads(levels, self._in_line):
                    if entered_at + opens_after > now:
                        continue
                    score = cfg.priority + priority + cfg.aging_per_minute * (now - entered_at) / 60.0
                    key = (-score, entered_at, seq)
                    if best is None or key < best:
                        best, best_id = key, task_id
        return None if best is None else self._tasks[best_id]

    def _best_agent(self, task: _Task, now: float) -> _Agent | None:
        cfg = self._queues[task.queue].cfg
        members = self._available.get(task.queue)
        if not members:
            return None
        strategy, channel, refused = cfg.strategy, task.channel, task.refused_by
        best: tuple[object, ...] | None = None
        chosen = None
        for agent_id in members:
            agent = self._agents[agent_id]
            opens_after = cfg.tier_opens_after(agent.profile.queues[task.queue])
            if opens_after is None or task.entered_at + opens_after > now or not self._can_take(agent, channel):
                continue
            key = (agent_id in refused, len(agent.active), *self._strategy_key(agent, strategy, cfg), agent_id)
            if best is None or key < best:
                best, chosen = key, agent
        return chosen

    @staticmethod
    def _strategy_key(agent: _Agent, strategy: Strategy, cfg: QueueConfig) -> tuple[float, ...]:
        if strategy is Strategy.LONGEST_IDLE:
            return (agent.idle_since,)
        if strategy is Strategy.FEWEST_TODAY:
            return (agent.handled_today, agent.idle_since)
        if strategy is Strategy.ROUND_ROBIN:
            return (agent.last_offer_in.get(cfg.id, 0),)
        level = agent.profile.skills.get(cfg.skill, 0) if cfg.skill else 0
        return (-level, agent.idle_since)

    # ---- views ------------------------------------------------------------------------------------

    @staticmethod
    def _view(task: _Task, position: int | None) -> TaskView:
        return TaskView(task.id, task.state, task.queue, task.channel, task.priority, task.entered_at, task.agent,
                        position, task.offer_expires_at, task.accepted_at)  # fmt: skip
