"""The router core's vocabulary: configuration, effects, views and errors (see docs/ROUTING.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise

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
    OUTBOUND = "outbound"  # on an outbound call from the workbench
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
