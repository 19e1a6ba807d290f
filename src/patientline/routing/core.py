"""The router's pure core: queues, agents, tasks and offers in memory (see docs/ROUTING.md).

No I/O and no clock: every command takes `now` and returns the effects it caused, in order. Ties are
broken by sequence numbers, so the same commands at the same moments always give the same effects.
The vocabulary lives in `core_types` and the mechanics in `core_state`; both are used through here.
"""

from __future__ import annotations

from types import MappingProxyType

from patientline.routing.core_state import AgentRecord, OfferEndReason, QueueRecord, RouterState, TaskRecord
from patientline.routing.core_types import (
    CALLBACK,
    AgentChanged,
    AgentProfile,
    AgentView,
    Effect,
    Logged,
    Offered,
    OfferEnded,
    QueueConfig,
    QueueView,
    Reason,
    RouterConfig,
    RoutingError,
    Status,
    Strategy,
    TaskExpired,
    TaskSpec,
    TaskState,
    TaskView,
    WrapUpPolicy,
)
from patientline.routing.queues import Timer

__all__ = [
    "CALLBACK",
    "AgentChanged",
    "AgentProfile",
    "AgentView",
    "Effect",
    "Logged",
    "OfferEnded",
    "Offered",
    "QueueConfig",
    "QueueView",
    "Reason",
    "Router",
    "RouterConfig",
    "RoutingError",
    "Status",
    "Strategy",
    "TaskExpired",
    "TaskSpec",
    "TaskState",
    "TaskView",
    "WrapUpPolicy",
]


class Router(RouterState):
    """Every command validates first (raising `RoutingError` with nothing changed), then applies
    itself, then matches, and returns the effects."""

    # ---- queues -----------------------------------------------------------------------------------

    def set_queue(self, cfg: QueueConfig, now: float | None = None) -> list[Effect]:
        """Add or change a queue; its tasks keep their places (their timers follow the new settings)."""
        at = self._begin(now)
        queue = self._queues.get(cfg.id)
        if queue is None:
            self._queues[cfg.id] = QueueRecord(cfg)
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
            agent = AgentRecord(profile, Status.NOT_READY, Reason.OTHER, now, now, profile.handled_today, since=now)
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
        task = TaskRecord(spec.id, spec.queue, spec.channel, spec.priority, entered_at, self._seq)
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
        self._begin(now)
        queue = self._queues[task.queue]
        agent = self._hand_back(task, now)
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
        self._begin(now)
        agent = self._hand_back(task, now)
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
        agent = AgentRecord(profile, presence, reason, paused_at, idle_since, profile.handled_today, missed=missed)
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
        task = TaskRecord(spec.id, spec.queue, spec.channel, spec.priority, entered_at, self._seq)
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
