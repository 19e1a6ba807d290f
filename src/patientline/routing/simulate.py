"""A discrete-event simulation of one queue, driven through the real router core.

Calls arrive as a Poisson stream, agents hold them for exponential handling times and, with a
patience, callers hang up after an exponential time unless answered first. Every arrival, answer,
hang-up and completion is a command to `core.Router`, and the router's own timers (offer timeouts)
are honoured through `next_due`/`tick`: what is measured is what the router does.

The clock starts at 0 with every agent ready and nobody waiting. The first `warmup_hours` (default
one hour) are simulated but not counted, so the figures describe the steady state, not an empty
morning; then the calls arriving during `hours` are counted, and each is followed to its end (answered
or abandoned) after arrivals stop. Occupancy is the agents' handling time inside the measured window
over agents × window. The same parameters and seed give the same figures.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import asdict, dataclass
from enum import IntEnum

from patientline.routing.core import (
    AgentProfile,
    Effect,
    Logged,
    Offered,
    OfferEnded,
    QueueConfig,
    Router,
    RouterConfig,
    TaskSpec,
)

QUEUE = 1
CHANNEL = "voice"


@dataclass(frozen=True)
class Scenario:
    agents: int
    calls_per_hour: float
    aht_s: float
    hours: float
    seed: int = 1
    patience_s: float | None = None  # mean patience; None: nobody hangs up
    sl_seconds: float = 20.0
    warmup_hours: float = 1.0
    answer_after_s: float = 0.0  # how long an offer rings before the agent answers

    def __post_init__(self) -> None:
        if self.agents < 1 or self.calls_per_hour <= 0 or self.aht_s <= 0 or self.hours <= 0:
            raise ValueError("agents, calls per hour, AHT and hours must be positive")
        if (self.patience_s is not None and self.patience_s <= 0) or self.sl_seconds < 0 or self.warmup_hours < 0:
            raise ValueError("patience must be positive, the SL threshold and warm-up not negative")
        if self.answer_after_s < 0:
            raise ValueError("answer_after_s must not be negative")


@dataclass(frozen=True)
class Outcome:
    agents: int
    calls_per_hour: float
    aht_s: float
    patience_s: float | None
    sl_seconds: float
    hours: float
    seed: int
    offered: int
    answered: int
    abandoned: int
    answered_within_sl: int
    service_level: float  # answered within T / answered
    service_level_offered: float  # answered within T / offered (abandons count against it)
    asa_s: float  # mean wait of the calls answered
    abandon_rate: float  # abandoned / offered
    occupancy: float  # handling time / (agents × measured time)
    aht_measured_s: float  # mean handling time of the calls answered

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class _Event(IntEnum):
    ARRIVAL = 1
    ANSWER = 2
    HANG_UP = 3
    END_OF_CALL = 4


class _Simulation:
    def __init__(self, scenario: Scenario) -> None:
        self.s = scenario
        self.start = scenario.warmup_hours * 3600.0
        self.end = self.start + scenario.hours * 3600.0
        self.arrivals = random.Random(f"{scenario.seed}:arrivals")  # noqa: S311  # a simulation, not secrets
        self.handling = random.Random(f"{scenario.seed}:handling")  # noqa: S311
        self.patience = random.Random(f"{scenario.seed}:patience")  # noqa: S311
        self.router = Router(RouterConfig(offer_timeout_s=max(15.0, 2 * scenario.answer_after_s + 1.0)))
        self.events: list[tuple[float, int, _Event, int, int]] = []
        self.seq = 0
        self.arrived_at: dict[int, float] = {}  # calls not yet answered or abandoned
        self.ringing: dict[int, int] = {}  # call -> agent whose phone rings
        self.measured: set[int] = set()
        self.waits: list[float] = []
        self.handle_times: list[float] = []
        self.abandoned = 0
        self.busy = 0
        self.busy_since = 0.0
        self.busy_seconds = 0.0

    def run(self) -> Outcome:
        router, s = self.router, self.s
        router.set_queue(QueueConfig(QUEUE), 0.0)
        for agent in range(1, s.agents + 1):
            router.login(AgentProfile(agent, {CHANNEL: 1}, queues={QUEUE: 1}), 0.0)
            router.ready(agent, 0.0)
        self.schedule(self.arrivals.expovariate(s.calls_per_hour / 3600.0), _Event.ARRIVAL, 1)
        while self.events:
            due = router.next_due()
            if due is not None and due <= self.events[0][0]:
                self.handle(router.tick(due), due)
                continue
            at, _, kind, task, agent = heapq.heappop(self.events)
            self.step(kind, task, agent, at)
        return self.outcome()

    def schedule(self, at: float, kind: _Event, task: int, agent: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.events, (at, self.seq, kind, task, agent))

    def step(self, kind: _Event, task: int, agent: int, at: float) -> None:
        router = self.router
        if kind is _Event.ARRIVAL:
            self.arrive(task, at)
        elif kind is _Event.ANSWER:
            if self.ringing.get(task) == agent:
                self.handle(router.accept(task, agent, at), at)
        elif kind is _Event.HANG_UP:
            if task in self.arrived_at:  # neither answered nor gone yet
                self.handle(router.abandon(task, at), at)
        else:
            self.count_busy(at, -1)
            self.handle(router.complete(task, at), at)

    def arrive(self, task: int, at: float) -> None:
        s = self.s
        if self.start <= at < self.end:
            self.measured.add(task)
        self.arrived_at[task] = at
        if s.patience_s is not None:
            self.schedule(at + self.patience.expovariate(1.0 / s.patience_s), _Event.HANG_UP, task)
        following = at + self.arrivals.expovariate(s.calls_per_hour / 3600.0)
        if following < self.end:
            self.schedule(following, _Event.ARRIVAL, task + 1)
        self.handle(self.router.submit(TaskSpec(task, QUEUE, CHANNEL), at), at)

    def handle(self, effects: list[Effect], at: float) -> None:
        for effect in effects:
            if isinstance(effect, Offered):
                self.ringing[effect.task] = effect.agent
                if self.s.answer_after_s > 0:
                    self.schedule(at + self.s.answer_after_s, _Event.ANSWER, effect.task, effect.agent)
                else:
                    self.handle(self.router.accept(effect.task, effect.agent, at), at)
            elif isinstance(effect, OfferEnded):
                self.ringing.pop(effect.task, None)
            elif isinstance(effect, Logged):
                self.record(effect, at)

    def record(self, entry: Logged, at: float) -> None:
        task = entry.task
        if entry.event == "accept" and task is not None:
            del self.arrived_at[task]
            del self.ringing[task]
            handling = self.handling.expovariate(1.0 / self.s.aht_s)
            self.count_busy(at, +1)
            self.schedule(at + handling, _Event.END_OF_CALL, task)
            if task in self.measured:
                self.waits.append(entry.wait_s or 0.0)
                self.handle_times.append(handling)
        elif entry.event == "abandon" and task is not None:
            del self.arrived_at[task]
            self.abandoned += task in self.measured

    def count_busy(self, at: float, change: int) -> None:
        """Integrate the number of agents on a call over the measured window."""
        overlap = min(at, self.end) - max(self.busy_since, self.start)
        if overlap > 0:
            self.busy_seconds += self.busy * overlap
        self.busy, self.busy_since = self.busy + change, at

    def outcome(self) -> Outcome:
        s = self.s
        answered = len(self.waits)
        offered = answered + self.abandoned
        within = sum(1 for wait in self.waits if wait <= s.sl_seconds)
        return Outcome(
            agents=s.agents,
            calls_per_hour=s.calls_per_hour,
            aht_s=s.aht_s,
            patience_s=s.patience_s,
            sl_seconds=s.sl_seconds,
            hours=s.hours,
            seed=s.seed,
            offered=offered,
            answered=answered,
            abandoned=self.abandoned,
            answered_within_sl=within,
            service_level=within / answered if answered else math.nan,
            service_level_offered=within / offered if offered else math.nan,
            asa_s=sum(self.waits) / answered if answered else math.nan,
            abandon_rate=self.abandoned / offered if offered else math.nan,
            occupancy=self.busy_seconds / (s.agents * s.hours * 3600.0),
            aht_measured_s=sum(self.handle_times) / answered if answered else math.nan,
        )


def simulate(scenario: Scenario) -> Outcome:
    return _Simulation(scenario).run()
