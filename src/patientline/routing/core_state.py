"""The router core's mechanics: its records and what every command is made of (lining tasks up,
offering, pausing, keeping the index of available agents, matching). `core.Router` adds the commands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from patientline.routing.core_types import (
    AgentChanged,
    AgentProfile,
    Effect,
    Logged,
    Offered,
    OfferEnded,
    QueueConfig,
    Reason,
    RouterConfig,
    RoutingError,
    Status,
    Strategy,
    TaskExpired,
    TaskState,
    TaskView,
)
from patientline.routing.queues import Timer, Timers, WaitingLine


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


# ---- records ------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class TaskRecord:
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
class AgentRecord:
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
class QueueRecord:
    cfg: QueueConfig
    line: WaitingLine = field(default_factory=WaitingLine)
    tasks: dict[int, None] = field(default_factory=dict)  # waiting and ringing
    active: dict[int, None] = field(default_factory=dict)
    ringing: int = 0

    @property
    def waiting(self) -> int:
        return len(self.tasks) - self.ringing


class RouterState:
    """The state of a `Router` and the steps its commands are made of."""

    def __init__(self, config: RouterConfig | None = None) -> None:
        self.config = config or RouterConfig()
        self._queues: dict[int, QueueRecord] = {}
        self._agents: dict[int, AgentRecord] = {}
        self._tasks: dict[int, TaskRecord] = {}
        self._available: dict[int, dict[int, None]] = {}  # queue -> agents who may take an offer
        self._timers = Timers()
        self._seq = 0
        self._offers = 0
        self._now = 0.0
        self._out: list[Effect] = []
        self._pending_tasks: list[int] = []
        self._pending_agents: list[int] = []

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

    def _queue(self, queue_id: int) -> QueueRecord:
        queue = self._queues.get(queue_id)
        if queue is None:
            raise RoutingError("unknown_queue", f"no queue {queue_id}")
        return queue

    def _agent(self, agent_id: int) -> AgentRecord:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise RoutingError("unknown_agent", f"agent {agent_id} is not logged in")
        return agent

    def _logged_in(self, agent_id: int) -> AgentRecord:
        agent = self._agent(agent_id)
        if agent.presence is Status.OFFLINE:
            raise RoutingError("unknown_agent", f"agent {agent_id} is logged out")
        return agent

    def _task(self, task_id: int) -> TaskRecord:
        task = self._tasks.get(task_id)
        if task is None:
            raise RoutingError("unknown_task", f"no live task {task_id}")
        return task

    def _queued_task(self, task_id: int) -> TaskRecord:
        task = self._task(task_id)
        if task.state is TaskState.ACTIVE:
            raise RoutingError("not_waiting", f"task {task_id} is with an agent")
        return task

    def _active_task(self, task_id: int) -> TaskRecord:
        task = self._task(task_id)
        if task.state is not TaskState.ACTIVE:
            raise RoutingError("not_active", f"task {task_id} is not with an agent")
        return task

    # ---- tasks in queues --------------------------------------------------------------------------

    def _overflow_at_arrival(self, queue: QueueRecord) -> QueueRecord:
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

    def _join(self, task: TaskRecord, queue: QueueRecord, now: float) -> None:
        """The task takes its place in the queue: waiting line, timers, matching."""
        task.queued_at = now
        queue.tasks[task.id] = None
        self._line_up(task, queue)
        self._arm_queue_timers(task, now)

    def _line_up(self, task: TaskRecord, queue: QueueRecord) -> None:
        task.state, task.agent, task.offer_expires_at = TaskState.WAITING, None, None
        task.line_token += 1
        queue.line.push(channel=task.channel, priority=task.priority, entered_at=task.entered_at, seq=task.seq,
                        task=task.id, token=task.line_token)  # fmt: skip
        self._pending_tasks.append(task.id)

    def _arm_queue_timers(self, task: TaskRecord, now: float) -> None:
        task.queue_token += 1
        cfg = self._queues[task.queue].cfg
        for after in cfg.widen_after_s:
            if task.entered_at + after > now:
                self._timers.set(task.entered_at + after, Timer.TIER_OPENS, task.id, task.queue_token)
        if cfg.max_wait_s is not None:
            self._timers.set(max(now, task.queued_at + cfg.max_wait_s), Timer.MAX_WAIT, task.id, task.queue_token)

    def _leave_queue(self, task: TaskRecord) -> None:
        queue = self._queues[task.queue]
        del queue.tasks[task.id]
        task.line_token += 1
        task.queue_token += 1

    def _log_transfer(
        self, task: TaskRecord, at: float, reason: str, by: int | None = None, agent: int | None = None
    ) -> None:
        self._log("transfer", at, queue=task.queue, task=task.id, agent=agent, channel=task.channel,
                  wait_s=at - task.entered_at, reason=reason, by=by)  # fmt: skip

    def _max_wait_passed(self, task: TaskRecord, at: float) -> None:
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

    def _offer(self, task: TaskRecord, agent: AgentRecord, now: float) -> None:
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

    def _ring_out(self, task: TaskRecord, at: float) -> None:
        agent = self._holder(task)
        task.refused_by.add(agent.profile.id)
        self._withdraw_offer(agent, at, OfferEndReason.TIMEOUT)
        agent.missed += 1
        limit = self.config.max_missed_offers
        if limit and agent.missed >= limit and agent.presence is Status.READY:
            agent.missed = 0
            self._pause(agent, Reason.MISSED_OFFERS, at, None)

    def _withdraw_offer(self, agent: AgentRecord, at: float, reason: OfferEndReason) -> None:
        if agent.offer is not None:
            self._withdraw_offer_of(self._tasks[agent.offer], at, reason, requeue=True)

    def _withdraw_offer_of(self, task: TaskRecord, at: float, reason: OfferEndReason, *, requeue: bool) -> None:
        """End the task's live offer, if any; with `requeue` the task takes its place again."""
        if task.state is not TaskState.OFFERED:
            return
        agent = self._holder(task)
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

    def _pause(self, agent: AgentRecord, reason: Reason, at: float, by: int | None) -> None:
        self._unpause(agent, at, by)
        agent.presence, agent.reason, agent.paused_at = Status.NOT_READY, reason, at
        self._log("pause", at, agent=agent.profile.id, reason=reason.value, by=by)
        self._refresh(agent, at)

    def _unpause(self, agent: AgentRecord, at: float, by: int | None) -> None:
        if agent.presence is Status.NOT_READY and agent.paused_at is not None:
            self._log("unpause", at, agent=agent.profile.id, duration_s=at - agent.paused_at,
                      reason=agent.reason.value if agent.reason else None, by=by)  # fmt: skip
        agent.paused_at = None

    def _holder(self, task: TaskRecord) -> AgentRecord:
        """The agent a ringing or active task is with."""
        if task.agent is None:
            raise RuntimeError(f"task {task.id} is with no agent")  # never: offers and accepts set it
        return self._agents[task.agent]

    def _hand_back(self, task: TaskRecord, at: float) -> AgentRecord:
        """An active task leaves its agent (logged as complete); the agent, for what follows."""
        agent = self._holder(task)
        accepted_at = at if task.accepted_at is None else task.accepted_at
        self._log("complete", at, queue=task.queue, task=task.id, agent=agent.profile.id, channel=task.channel,
                  duration_s=at - accepted_at)  # fmt: skip
        del agent.active[task.id]
        agent.load[task.channel] -= 1
        agent.exclusive -= task.channel in self.config.exclusive_channels
        del self._queues[task.queue].active[task.id]
        return agent

    def _start_wrap_up(self, agent: AgentRecord, at: float, length: float) -> None:
        if agent.wrap_until is None:
            agent.wrap_started = at
        agent.wrap_until = max(agent.wrap_until or at, at + length)
        agent.wrap_token += 1
        self._timers.set(agent.wrap_until, Timer.WRAP_UP_END, agent.profile.id, agent.wrap_token)

    def _end_wrap_up(self, agent: AgentRecord, at: float) -> None:
        self._log("wrap_end", at, agent=agent.profile.id, duration_s=at - agent.wrap_started)
        agent.wrap_until = None
        agent.wrap_token += 1
        self._after_work(agent, at)

    def _after_work(self, agent: AgentRecord, at: float) -> None:
        if self._free(agent):
            agent.idle_since = at
        self._refresh(agent, at)
        self._forget_if_gone(agent)

    def _forget_if_gone(self, agent: AgentRecord) -> None:
        if agent.presence is Status.OFFLINE and not agent.active:
            self._unindex(agent)
            del self._agents[agent.profile.id]

    @staticmethod
    def _free(agent: AgentRecord) -> bool:
        return not agent.active and agent.wrap_until is None

    def _display(self, agent: AgentRecord) -> tuple[Status, Reason | None]:
        if agent.offer is not None:
            status = Status.OFFERED
        elif agent.active:
            status = Status.BUSY
        elif agent.wrap_until is not None:
            status = Status.WRAP_UP
        else:
            status = agent.presence
        return status, agent.reason if agent.presence is Status.NOT_READY else None

    def _refresh(self, agent: AgentRecord, at: float) -> None:
        """Emit the agent's new displayed status, if it changed, and keep the availability index."""
        shown = self._display(agent)
        if shown != (agent.shown, agent.shown_reason):
            agent.shown, agent.shown_reason = shown
            agent.since = at
            self._out.append(AgentChanged(agent.profile.id, shown[0], shown[1], at))
        self._reindex(agent)

    def _may_take_offers(self, agent: AgentRecord) -> bool:
        if agent.presence is not Status.READY or agent.offer is not None or agent.wrap_until is not None:
            return False
        return not agent.exclusive and any(cap > agent.load.get(ch, 0) for ch, cap in agent.profile.capacities.items())

    def _reindex(self, agent: AgentRecord) -> None:
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

    def _unindex(self, agent: AgentRecord) -> None:
        if agent.indexed:
            for queue_id in agent.profile.queues:
                self._available.get(queue_id, {}).pop(agent.profile.id, None)
            agent.indexed = False

    def _can_take(self, agent: AgentRecord, channel: str) -> bool:
        if channel in self.config.exclusive_channels:
            return not agent.active and agent.profile.capacities.get(channel, 0) > 0
        return agent.profile.capacities.get(channel, 0) > agent.load.get(channel, 0)

    # ---- matching ---------------------------------------------------------------------------------

    def _rank(self, task: TaskRecord, now: float) -> tuple[float, float, int]:
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

    def _best_task(self, agent: AgentRecord, now: float) -> TaskRecord | None:
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

    def _best_agent(self, task: TaskRecord, now: float) -> AgentRecord | None:
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
    def _strategy_key(agent: AgentRecord, strategy: Strategy, cfg: QueueConfig) -> tuple[float, ...]:
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
    def _view(task: TaskRecord, position: int | None) -> TaskView:
        return TaskView(task.id, task.state, task.queue, task.channel, task.priority, task.entered_at, task.agent,
                        position, task.offer_expires_at, task.accepted_at)  # fmt: skip
