"""Invariants of the router core under random command sequences (hypothesis).

A state machine logs agents in and out, submits, offers, accepts, declines, abandons, moves and
transfers tasks and lets time pass; after every command it checks, from the effects and the queries:
offers only to ready agents with room, at most one live offer per task and per agent, FIFO within
equal priority and channel, no ready agent idle while a task it may take waits, the missed-offer
rule, and that every task ends exactly once. A failing command must change nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from patientline.routing.core import (
    AgentProfile,
    Effect,
    Logged,
    Offered,
    OfferEnded,
    QueueConfig,
    Reason,
    Router,
    RouterConfig,
    RoutingError,
    Status,
    Strategy,
    TaskSpec,
    TaskState,
    TaskView,
    WrapUpPolicy,
)

QUEUES = (1, 2, 3)
AGENTS = (1, 2, 3)
CHANNELS = ("chat", "voice", "callback")
EXCLUSIVE = RouterConfig().exclusive_channels
CAPACITIES = [{"voice": 1, "chat": 2}, {"chat": 3}, {"voice": 1}, {"voice": 1, "chat": 2, "callback": 1}, {"chat": 1}]

queue_configs = st.builds(
    QueueConfig,
    id=st.sampled_from(QUEUES),
    priority=st.integers(0, 3),
    strategy=st.sampled_from(Strategy),
    skill=st.sampled_from([None, "cardio"]),
    widen_after_s=st.lists(st.sampled_from([0.0, 10.0, 30.0, 60.0]), max_size=2).map(lambda v: tuple(sorted(v))),
    aging_per_minute=st.sampled_from([0.0, 0.5, 2.0]),
    max_wait_s=st.sampled_from([None, 45.0, 120.0]),
    overflow_queue=st.sampled_from([None, *QUEUES]),
    overflow_threshold=st.sampled_from([None, 1, 3]),
    wrap_up=st.sampled_from(WrapUpPolicy),
    wrap_up_s=st.sampled_from([0.0, 10.0, 30.0]),
)
profiles = st.builds(
    AgentProfile,
    id=st.sampled_from(AGENTS),
    capacities=st.sampled_from(CAPACITIES),
    skills=st.dictionaries(st.just("cardio"), st.integers(1, 5)),
    queues=st.dictionaries(st.sampled_from(QUEUES), st.sampled_from([1, 1, 2, 3]), min_size=1),
)


class RouterMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.next_task = 1
        self.live: set[int] = set()
        self.ended: set[int] = set()
        self.offers: dict[int, int] = {}  # task -> agent, from the effects
        self.misses: dict[int, int] = {}
        self.core = Router()

    @initialize(queues=st.lists(queue_configs, min_size=3, max_size=3, unique_by=lambda q: q.id),
                max_missed=st.integers(0, 3))  # fmt: skip
    def set_up(self, queues: list[QueueConfig], max_missed: int) -> None:
        self.core = Router(RouterConfig(offer_timeout_s=15.0, max_missed_offers=max_missed))
        self.max_missed = max_missed
        for queue in queues:
            self.core.set_queue(queue, 0.0)
        self.configs = {queue.id: queue for queue in queues}

    # ---- commands ---------------------------------------------------------------------------------

    @rule(dt=st.sampled_from([0.5, 5.0, 15.0, 40.0, 200.0]))
    def time_passes(self, dt: float) -> None:
        self.now += dt
        self.apply(lambda: self.core.tick(self.now))

    @rule(profile=profiles)
    def login(self, profile: AgentProfile) -> None:
        self.apply(lambda: self.core.login(profile, self.now))

    @rule(profile=profiles)
    def update_agent(self, profile: AgentProfile) -> None:
        self.apply(lambda: self.core.update_agent(profile, self.now))

    @rule(agent=st.sampled_from(AGENTS), by=st.sampled_from([None, 99]))
    def ready(self, agent: int, by: int | None) -> None:
        self.apply(lambda: self.core.ready(agent, self.now, by))

    @rule(agent=st.sampled_from(AGENTS), reason=st.sampled_from([r for r in Reason if r is not Reason.MISSED_OFFERS]))
    def not_ready(self, agent: int, reason: Reason) -> None:
        self.apply(lambda: self.core.not_ready(agent, reason, self.now))

    @rule(agent=st.sampled_from(AGENTS), by=st.sampled_from([None, 99]))
    def logout(self, agent: int, by: int | None) -> None:
        self.apply(lambda: self.core.logout(agent, self.now, by))

    @rule(agent=st.sampled_from(AGENTS))
    def end_wrap_up(self, agent: int) -> None:
        self.apply(lambda: self.core.end_wrap_up(agent, self.now))

    @rule(queue=st.sampled_from(QUEUES), channel=st.sampled_from(CHANNELS), priority=st.integers(0, 3),
          earlier=st.sampled_from([None, 0.0, 30.0]))  # fmt: skip
    def submit(self, queue: int, channel: str, priority: int, earlier: float | None) -> None:
        task = self.next_task
        self.next_task += 1
        entered_at = None if earlier is None else max(0.0, self.now - earlier)
        self.live.add(task)
        assert self.apply(lambda: self.core.submit(TaskSpec(task, queue, channel, priority, entered_at), self.now))

    @precondition(lambda self: bool(self.offers))
    @rule(data=st.data())
    def accept(self, data: st.DataObject) -> None:
        task = data.draw(st.sampled_from(sorted(self.offers)))
        agent = self.offers.pop(task)
        self.misses[agent] = 0
        assert self.apply(lambda: self.core.accept(task, agent, self.now))

    @precondition(lambda self: bool(self.offers))
    @rule()
    def accept_every_offer(self) -> None:
        while self.offers:
            task, agent = min(self.offers.items())
            del self.offers[task]
            self.misses[agent] = 0
            assert self.apply(lambda: self.core.accept(task, agent, self.now))  # noqa: B023

    @rule(queue=st.sampled_from(QUEUES), channel=st.sampled_from(CHANNELS), count=st.integers(2, 4))
    def burst(self, queue: int, channel: str, count: int) -> None:
        for _ in range(count):
            self.submit(queue, channel, 0, None)

    @precondition(lambda self: bool(self.offers))
    @rule(data=st.data())
    def decline(self, data: st.DataObject) -> None:
        task = data.draw(st.sampled_from(sorted(self.offers)))
        self.apply(lambda: self.core.decline(task, self.offers[task], self.now))

    @rule(task=st.integers(1, 60), agent=st.sampled_from(AGENTS))
    def accept_anything(self, task: int, agent: int) -> None:
        """Mostly refused: someone else's offer, a waiting task, an unknown one."""
        assume(self.offers.get(task) != agent)
        self.apply(lambda: self.core.accept(task, agent, self.now))

    @precondition(lambda self: bool(self.live))
    @rule(data=st.data(), wrap_up=st.booleans())
    def complete(self, data: st.DataObject, wrap_up: bool) -> None:
        task = data.draw(st.sampled_from(sorted(self.live)))
        self.apply(lambda: self.core.complete(task, self.now, wrap_up))

    @precondition(lambda self: bool(self.live))
    @rule(data=st.data())
    def abandon(self, data: st.DataObject) -> None:
        task = data.draw(st.sampled_from(sorted(self.live)))
        self.apply(lambda: self.core.abandon(task, self.now))

    @precondition(lambda self: bool(self.live))
    @rule(data=st.data())
    def keep_place(self, data: st.DataObject) -> None:
        task = data.draw(st.sampled_from(sorted(self.live)))
        self.apply(lambda: self.core.keep_place(task, self.now))

    @precondition(lambda self: bool(self.live))
    @rule(data=st.data(), queue=st.sampled_from(QUEUES))
    def move(self, data: st.DataObject, queue: int) -> None:
        task = data.draw(st.sampled_from(sorted(self.live)))
        self.apply(lambda: self.core.move(task, queue, self.now, 99))

    @precondition(lambda self: bool(self.live))
    @rule(data=st.data(), priority=st.integers(0, 5))
    def set_priority(self, data: st.DataObject, priority: int) -> None:
        task = data.draw(st.sampled_from(sorted(self.live)))
        self.apply(lambda: self.core.set_priority(task, priority, self.now, 99))

    @precondition(lambda self: bool(self.live))
    @rule(data=st.data(), queue=st.sampled_from(QUEUES))
    def transfer(self, data: st.DataObject, queue: int) -> None:
        task = data.draw(st.sampled_from(sorted(self.live)))
        self.apply(lambda: self.core.transfer(task, queue, self.now))

    # ---- checks -----------------------------------------------------------------------------------

    def apply(self, command: Callable[[], list[Effect]]) -> bool:
        before = self.snapshot()
        try:
            effects = command()
        except RoutingError:
            assert self.snapshot() == before, "a refused command changed something"
            return False
        self.check_effects(effects)
        return True

    def snapshot(self) -> tuple[object, ...]:
        return (self.core.agents(), [self.core.waiting(q, self.now) for q in QUEUES], self.tasks())

    def tasks(self) -> dict[int, TaskView]:
        views = {view.id: view for q in QUEUES for view in self.core.waiting(q, self.now)}
        for agent in self.core.agents():
            for task in (*agent.active, *([agent.offer] if agent.offer is not None else [])):
                views[task] = self.core.task(task)
        return views

    def check_effects(self, effects: list[Effect]) -> None:
        gone_by_log: list[int] = []
        for effect in effects:
            if isinstance(effect, Offered):
                assert effect.task not in self.offers, "two live offers for one task"
                assert effect.agent not in self.offers.values(), "two live offers for one agent"
                self.offers[effect.task] = effect.agent
            elif isinstance(effect, OfferEnded):
                assert self.offers.pop(effect.task) == effect.agent
            elif isinstance(effect, Logged):
                self.count_miss(effect)
                if effect.event in ("abandon", "expire", "complete"):
                    gone_by_log.append(effect.task)  # type: ignore[arg-type]
        tasks = self.tasks()
        for effect in effects:
            if isinstance(effect, Offered) and self.offers.get(effect.task) == effect.agent:
                self.check_offer(tasks[effect.task], effect.agent)
        self.check_every_task_ends_once(tasks, gone_by_log)
        assert self.offers == {t.id: t.agent for t in tasks.values() if t.state is TaskState.OFFERED}

    def count_miss(self, entry: Logged) -> None:
        if entry.event == "ring_no_answer" and entry.reason == "timeout":
            agent = entry.agent
            assert agent is not None
            self.misses[agent] = self.misses.get(agent, 0) + 1
        if entry.event == "pause" and entry.reason == Reason.MISSED_OFFERS:
            assert entry.agent is not None
            assert self.misses.get(entry.agent) == self.max_missed, "paused for missed offers too early"
            self.misses[entry.agent] = 0

    def check_offer(self, task: TaskView, agent_id: int) -> None:
        agent = self.core.agent(agent_id)
        assert agent.presence is Status.READY and agent.wrap_up_until is None, "offered to an agent not ready"
        channels = [self.core.task(t).channel for t in agent.active]
        capacity = agent.profile.capacities.get(task.channel, 0)
        if task.channel in EXCLUSIVE:
            assert not channels and capacity > 0, "an exclusive task offered to an agent with work"
        else:
            assert channels.count(task.channel) < capacity and not EXCLUSIVE & set(channels), "offered at capacity"
        opens = self.configs[task.queue].tier_opens_after(agent.profile.queues[task.queue])
        assert opens is not None and task.entered_at + opens <= self.now, "offered to a tier not open"
        for other in self.core.waiting(task.queue, self.now):
            if (other.channel, other.priority) == (task.channel, task.priority):
                assert other.entered_at >= task.entered_at, "FIFO broken within equal priority"

    def check_every_task_ends_once(self, tasks: dict[int, TaskView], gone_by_log: list[int]) -> None:
        gone = self.live - set(tasks)
        assert set(tasks) <= self.live, "a task appeared from nowhere"
        assert len(gone_by_log) == len(set(gone_by_log)), "a task ended twice"
        ended_now = {t for t in gone_by_log if t not in tasks}
        assert gone == ended_now, "a task was lost or ended without a log entry"
        assert not ended_now & self.ended
        self.ended |= ended_now
        self.live -= gone

    @invariant()
    def no_ready_agent_idles_next_to_a_task_it_may_take(self) -> None:
        for agent in self.core.agents():
            if agent.presence is not Status.READY or agent.offer is not None or agent.wrap_up_until is not None:
                continue
            channels = [self.core.task(t).channel for t in agent.active]
            if EXCLUSIVE & set(channels):
                continue
            for queue, tier in agent.profile.queues.items():
                opens = self.configs[queue].tier_opens_after(tier)
                for task in self.core.waiting(queue, self.now):
                    capacity = agent.profile.capacities.get(task.channel, 0)
                    room = (not channels and capacity > 0) if task.channel in EXCLUSIVE else (
                        channels.count(task.channel) < capacity)  # fmt: skip
                    assert not (room and opens is not None and task.entered_at + opens <= self.now), (
                        f"agent {agent.id} idles next to task {task.id}")  # fmt: skip

    @invariant()
    def missed_offers_rule(self) -> None:
        for agent in self.core.agents():
            assert agent.missed == self.misses.get(agent.id, 0)
            if self.max_missed:
                assert agent.missed < self.max_missed
        for agent_id in list(self.misses):
            if agent_id not in {a.id for a in self.core.agents()}:
                del self.misses[agent_id]  # logged out: a new login starts afresh

    @invariant()
    def views_agree(self) -> None:
        for queue in QUEUES:
            line = self.core.waiting(queue, self.now)
            stats = self.core.queue_stats(queue, self.now)
            assert stats.waiting == len(line) and [t.position for t in line] == list(range(1, len(line) + 1))


TestRouterMachine = RouterMachine.TestCase
TestRouterMachine.settings = settings(max_examples=200, stateful_step_count=60, deadline=None,
                                      suppress_health_check=[HealthCheck.too_slow])  # fmt: skip


def serve_until_the_ordinary_task(aging: float, urgent: int, every: float, handle: float) -> list[tuple[int, float]]:
    """One agent busy with urgent tasks that keep arriving, and one ordinary task: the (task, entered_at)
    served until the ordinary task is (task 0), or until 100,000 s have passed."""
    core = Router()
    core.set_queue(QueueConfig(1, aging_per_minute=aging))
    core.login(AgentProfile(1, {"voice": 1}, queues={1: 1}), 0.0)
    core.submit(TaskSpec(1, 1, "voice", urgent), 0.0)
    core.submit(TaskSpec(0, 1, "voice"), 0.0)
    served: list[tuple[int, float]] = []
    task, now, busy_until, next_arrival = 2, 0.0, 0.0, every
    effects = core.ready(1, now)
    while True:
        for offer in (e for e in effects if isinstance(e, Offered)):
            core.accept(offer.task, 1, now)
            served.append((offer.task, core.task(offer.task).entered_at))
            busy_until = now + handle
        now = min(next_arrival, busy_until)
        if served[-1][0] == 0 or now >= 100_000:
            return served
        effects = []
        if now == busy_until:
            effects += core.complete(core.agent(1).active[0], now)
        if now == next_arrival:
            effects += core.submit(TaskSpec(task, 1, "voice", urgent), now)
            task, next_arrival = task + 1, next_arrival + every


@settings(max_examples=100, deadline=None)
@given(
    aging=st.sampled_from([0.5, 1.0, 3.0]),
    urgent=st.integers(1, 5),
    every=st.sampled_from([10.0, 20.0, 30.0]),
    handle=st.sampled_from([25.0, 40.0, 90.0]),
)
def test_aging_prevents_starvation(aging: float, urgent: int, every: float, handle: float) -> None:
    """With aging the ordinary task is served before any urgent task that arrived more than
    priority/aging minutes after it."""
    served = serve_until_the_ordinary_task(aging, urgent, every, handle)
    assert served[-1] == (0, 0.0), "the ordinary task starved"
    horizon = urgent / aging * 60.0
    assert all(entered <= horizon for task, entered in served if task != 0)


def test_without_aging_urgent_tasks_arriving_faster_than_served_starve_the_ordinary_one() -> None:
    served = serve_until_the_ordinary_task(0.0, 1, 20.0, 40.0)
    assert served[-1][0] != 0 and len(served) > 2000
