"""IVR flows as data (CH1): a start node and nodes of a few kinds, each naming the nodes it leads to.

A flow is edited as a draft and checked before it is published: every node a branch names exists,
every node can be reached from the start, and from every node some way leads to an end (a transfer,
a callback, a voicemail or a goodbye), so no caller is left in a loop with no way out. What the nodes
point to outside the flow (queues, knowledge items) is checked by `voice.service`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from patientline.core.i18n import N_, gettext
from patientline.core.validation import Phone, StrictModel
from patientline.core.workcal import WorkingHours

MAX_NODES = 200
NodeId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Key = Annotated[str, StringConstraints(pattern=r"^[0-9*#]$")]
Seconds = Annotated[int, Field(ge=1, le=60)]
Retries = Annotated[int, Field(ge=0, le=5)]
DbRef = Annotated[int, Field(ge=1, le=2**31 - 1)]


def _hours(text: str) -> str:
    return str(WorkingHours.parse(text))


Hours = Annotated[str, AfterValidator(_hours)]


class Prompt(StrictModel):
    """What the caller hears: a recorded prompt (an uploaded WAV) when one is chosen, else the text
    spoken by the synthesiser."""

    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)] | None = None
    recorded_id: DbRef | None = None

    @model_validator(mode="after")
    def _something_to_hear(self) -> Prompt:
        if self.text is None and self.recorded_id is None:
            raise ValueError(gettext("Give the words to speak or choose a recorded prompt."))
        return self


class Play(StrictModel):
    type: Literal["play"]
    id: NodeId
    prompt: Prompt
    next: NodeId


class Announcement(StrictModel):
    """A notice (holiday hours, a seasonal alert) played only between two dates, else passed over."""

    type: Literal["announcement"]
    id: NodeId
    prompt: Prompt
    active_from: date | None = None
    active_until: date | None = None
    next: NodeId

    @model_validator(mode="after")
    def _in_order(self) -> Announcement:
        if self.active_from and self.active_until and self.active_from > self.active_until:
            raise ValueError(gettext("The notice must start before it ends."))
        return self

    def active_on(self, day: date) -> bool:
        return (self.active_from is None or self.active_from <= day) and (
            self.active_until is None or day <= self.active_until
        )


class Menu(StrictModel):
    """Keys to press; after `retries` more tries with no valid key the call goes to `otherwise`."""

    type: Literal["menu"]
    id: NodeId
    prompt: Prompt
    choices: Annotated[dict[Key, NodeId], Field(min_length=1, max_length=12)]
    timeout_seconds: Seconds = 5
    retries: Retries = 2
    otherwise: NodeId


class Collect(StrictModel):
    """Digits the caller keys in (a medical record number, a phone number), ended by # or the length."""

    type: Literal["collect"]
    id: NodeId
    prompt: Prompt
    kind: Literal["mrn", "phone", "digits"]
    min_digits: Annotated[int, Field(ge=1, le=20)] = 1
    max_digits: Annotated[int, Field(ge=1, le=20)] = 20
    timeout_seconds: Seconds = 8
    retries: Retries = 2
    next: NodeId
    otherwise: NodeId

    @model_validator(mode="after")
    def _lengths(self) -> Collect:
        if self.min_digits > self.max_digits:
            raise ValueError(gettext("The fewest digits cannot be more than the most."))
        return self


class OpeningHours(StrictModel):
    """Open or closed by the time of day, on working days only if so set (the hospital's calendar)."""

    type: Literal["hours"]
    id: NodeId
    hours: Hours
    working_days_only: bool = True
    open: NodeId
    closed: NodeId


class Knowledge(StrictModel):
    """Speaks a published knowledge item's spoken answer."""

    type: Literal["knowledge"]
    id: NodeId
    item_id: DbRef
    next: NodeId


class Voicemail(StrictModel):
    """Records a message that becomes a work order."""

    type: Literal["voicemail"]
    id: NodeId
    prompt: Prompt
    max_seconds: Annotated[int, Field(ge=10, le=300)] = 120


class Callback(StrictModel):
    """The caller hangs up and keeps their place: the queue calls them back."""

    type: Literal["callback"]
    id: NodeId
    prompt: Prompt
    queue_id: DbRef


class Transfer(StrictModel):
    """To a queue (a skill group, a department's seats, an expert centre) or an outside number."""

    type: Literal["transfer"]
    id: NodeId
    queue_id: DbRef | None = None
    number: Phone = None

    @model_validator(mode="after")
    def _one_target(self) -> Transfer:
        if (self.queue_id is None) == (self.number is None):
            raise ValueError(gettext("Transfer to a queue or to a number, one of the two."))
        return self


class Hangup(StrictModel):
    type: Literal["hangup"]
    id: NodeId
    prompt: Prompt | None = None


Node = Annotated[
    Play | Announcement | Menu | Collect | OpeningHours | Knowledge | Voicemail | Callback | Transfer | Hangup,
    Field(discriminator="type"),
]
ENDS = ("voicemail", "callback", "transfer", "hangup")
LEADS_NOWHERE = N_("It leads to {id}, which does not exist.")
NO_WAY_OUT = N_("From here no way leads to an end (transfer, callback, voicemail or goodbye).")


class FlowDefinition(StrictModel):
    start: NodeId
    nodes: Annotated[list[Node], Field(min_length=1, max_length=MAX_NODES)]

    def by_id(self) -> dict[str, Node]:
        return {node.id: node for node in self.nodes}


def branches(node: Node) -> Iterator[tuple[str, str]]:
    """(the field that names it, the node it leads to) for each way on from `node`."""
    if isinstance(node, Menu):
        yield from ((f"choices.{key}", target) for key, target in node.choices.items())
        yield "otherwise", node.otherwise
    elif isinstance(node, Collect):
        yield from (("next", node.next), ("otherwise", node.otherwise))
    elif isinstance(node, OpeningHours):
        yield from (("open", node.open), ("closed", node.closed))
    elif isinstance(node, Play | Announcement | Knowledge):
        yield "next", node.next


def recorded_ids(flow: FlowDefinition) -> dict[str, int]:
    """The recorded prompts the flow plays, by the node that plays each."""
    return {
        node.id: prompt.recorded_id
        for node in flow.nodes
        if (prompt := getattr(node, "prompt", None)) is not None and prompt.recorded_id is not None
    }


def problem(node: str | None, field: str, kind: str, message: str, **params: object) -> dict[str, object]:
    return {"node": node, "field": field, "problem": kind, "message": gettext(message).format(**params)}


def problems(flow: FlowDefinition) -> list[dict[str, object]]:
    """What stops the flow from being published, in the order an editor would mend it; empty if none."""
    found: list[dict[str, object]] = []
    nodes: dict[str, Node] = {}
    for node in flow.nodes:
        if node.id in nodes:
            found.append(problem(node.id, "id", "duplicate", N_("Two nodes are called {id}."), id=node.id))
        nodes[node.id] = node
    if flow.start not in nodes:
        found.append(problem(None, "start", "unknown", N_("The start node {id} does not exist."), id=flow.start))
    for node in nodes.values():
        for field, target in branches(node):
            if target not in nodes:
                found.append(problem(node.id, field, "unknown", LEADS_NOWHERE, id=target))
    if found:
        return found
    reached = _closure([flow.start], lambda node_id: (target for _, target in branches(nodes[node_id])))
    found += [
        problem(node_id, "id", "unreachable", N_("No caller can reach this node."))
        for node_id in nodes
        if node_id not in reached
    ]
    ending = _leading_to_an_end(nodes)
    found += [
        problem(node_id, "id", "no_way_out", NO_WAY_OUT)
        for node_id in nodes
        if node_id in reached and node_id not in ending
    ]
    return found


def _leading_to_an_end(nodes: dict[str, Node]) -> set[str]:
    """The nodes from which some way leads to an end: the ends, then whatever leads to one, until no more."""
    leads_from: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    for node in nodes.values():
        for _, target in branches(node):
            leads_from[target].append(node.id)
    return _closure([node.id for node in nodes.values() if node.type in ENDS], leads_from.__getitem__)


def _closure(start: Iterable[str], neighbours: Callable[[str], Iterable[str]]) -> set[str]:
    """`start` and every node its neighbours lead to, and theirs, until no more."""
    seen: set[str] = set()
    stack = list(start)
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(neighbours(current))
    return seen
