"""What the router tells browsers (and the other nodes) over the event stream."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from patientline.core.auth.permissions import Permission
from patientline.core.events import Audience, Event

SUPERVISORS = Audience(permission=Permission.SUPERVISE.value)
CONFIGURERS = Audience(permission=Permission.CONFIGURE_ROUTING.value)


def agent_audience(user_id: int) -> Audience:
    return Audience(user_id=user_id)


class OfferRang(Event):
    """A task rings at one agent: the offer as `/api/routing/me` shows it."""

    type: ClassVar[str] = "routing.offer"
    task_id: int
    queue_id: int
    queue_name: str
    channel: str
    caller: dict[str, Any]
    subject: str
    expires_at: str


class OfferStopped(Event):
    """The ringing stopped without an accept: timeout, declined, abandoned, moved, withdrawn."""

    type: ClassVar[str] = "routing.offer_ended"
    task_id: int
    reason: str


class AgentStatusChanged(Event):
    type: ClassVar[str] = "routing.agent"
    user_id: int
    status: str
    reason: str | None
    since: str


class QueueFigures(Event):
    """One queue's live figures as in `/api/routing/live`, at most once a second per queue."""

    type: ClassVar[str] = "routing.queue"
    id: int
    code: str
    name: str
    waiting: int
    ringing: int
    longest_wait_s: float
    agents: dict[str, int]
    today: dict[str, Any] | None
    sl_target: float
    sl_seconds: int
    alerts: list[str]


class RoutingConfigured(Event):
    """Queues, members or a profile changed: the node running the router reloads them."""

    type: ClassVar[str] = "routing.configured"
    what: Literal["queue", "members", "profile"]
    id: int
