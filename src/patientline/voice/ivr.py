"""The IVR runner: walks a caller through a published flow (`voice/flows.py`) on the call's media,
node by node, and says where the call ends up: a queue, a callback, a voicemail, an outside number,
or a goodbye. Keys typed ahead during a prompt count; a wrong key or none is asked again as the menu
says, then the menu's `otherwise` is taken."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from patientline.core import workcal
from patientline.core.errors import InvalidInput
from patientline.core.validation import normalise_phone
from patientline.voice import flows
from patientline.voice.media import Media

log = logging.getLogger(__name__)
MAX_STEPS = 100  # a caller who keeps pressing back into a menu is put through after this many steps
ENDS_BY_HASH = "#"
Speak = Callable[[str], Awaitable[Path]]
Recorded = Callable[[int], Awaitable[Path | None]]  # a recorded prompt's file; None once it is deleted
SpokenAnswer = Callable[[int], Awaitable[str | None]]


@dataclass
class Outcome:
    kind: Literal["queue", "callback", "voicemail", "number", "hangup"]
    queue_id: int | None = None
    number: str | None = None
    node: str = ""
    max_seconds: int = 0


@dataclass
class Journey:
    """What the caller did in the IVR: the nodes passed, the keys pressed, the digits collected."""

    path: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    collected: dict[str, str] = field(default_factory=dict)


@dataclass
class IvrRunner:
    flow: flows.FlowDefinition
    media: Media
    speak: Speak
    recorded: Recorded
    spoken_answer: SpokenAnswer
    now: Callable[[], datetime]  # local time
    calendar: workcal.WorkCalendar | None = None
    journey: Journey = field(default_factory=Journey)

    async def run(self) -> Outcome:
        nodes = self.flow.by_id()
        current = nodes[self.flow.start]
        for _ in range(MAX_STEPS):
            self.journey.path.append(current.id)
            step = await self.step(current)
            if isinstance(step, Outcome):
                return step
            current = nodes[step]
        return Outcome("hangup", node=current.id)

    async def step(self, node: flows.Node) -> str | Outcome:
        """The next node's id, or where the call ends up."""
        match node:
            case flows.Play():
                await self.say(node.prompt)
                return node.next
            case flows.Announcement():
                if node.active_on(self.now().date()):
                    await self.say(node.prompt)
                return node.next
            case flows.OpeningHours():
                return node.open if self.is_open(node) else node.closed
            case flows.Menu():
                return await self.menu(node)
            case flows.Collect():
                return await self.collect(node)
            case flows.Knowledge():
                if answer := await self.spoken_answer(node.item_id):
                    await self.media.hear([await self.speak(answer)])
                return node.next
        return await self.end(node)

    async def end(self, node: flows.Node) -> Outcome:
        match node:
            case flows.Transfer():
                if node.queue_id is not None:
                    return Outcome("queue", queue_id=node.queue_id, node=node.id)
                return Outcome("number", number=node.number, node=node.id)
            case flows.Callback():
                await self.say(node.prompt)
                return Outcome("callback", queue_id=node.queue_id, node=node.id)
            case flows.Voicemail():
                await self.say(node.prompt)
                return Outcome("voicemail", node=node.id, max_seconds=node.max_seconds)
            case flows.Hangup():
                if node.prompt is not None:
                    await self.say(node.prompt)
                return Outcome("hangup", node=node.id)
        raise AssertionError(f"unknown node {node!r}")

    async def say(self, prompt: flows.Prompt, *, keys: bool = False) -> str | None:
        files = await self.prompt_files(prompt)
        return await self.media.hear(files, keys=keys) if files else None

    async def prompt_files(self, prompt: flows.Prompt) -> list[Path]:
        """The recording if it is there, else the words spoken; nothing (and a warning) if neither."""
        if prompt.recorded_id is not None and (path := await self.recorded(prompt.recorded_id)) is not None:
            return [path]
        if prompt.text is not None:
            return [await self.speak(prompt.text)]
        log.warning("a recorded prompt of the live flow is gone", extra={"recorded_id": prompt.recorded_id})
        return []

    def is_open(self, node: flows.OpeningHours) -> bool:
        local = self.now()
        if node.working_days_only and self.calendar is not None and not self.calendar.is_working_day(local.date()):
            return False
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in workcal.WorkingHours.parse(node.hours).windows)

    async def menu(self, node: flows.Menu) -> str:
        for _ in range(node.retries + 1):
            await self.say(node.prompt, keys=True)
            key = await self.media.key(node.timeout_seconds)
            if key is not None:
                self.journey.keys.append(key)
                if key in node.choices:
                    return node.choices[key]
            self.media.digits.clear()  # a wrong key: what was typed after it is not kept either
        return node.otherwise

    async def collect(self, node: flows.Collect) -> str:
        for _ in range(node.retries + 1):
            await self.say(node.prompt, keys=True)
            digits = await self.digits(node)
            if digits is not None and (value := _valid(node, digits)) is not None:
                self.journey.collected[node.kind] = value
                return node.next
            self.media.digits.clear()
        return node.otherwise

    async def digits(self, node: flows.Collect) -> str | None:
        """Keys up to `#` or the most digits, each within the node's timeout; None if none came."""
        typed = ""
        while len(typed) < node.max_digits:
            key = await self.media.key(node.timeout_seconds)
            if key is None:
                break
            if key == ENDS_BY_HASH:
                return typed
            if key.isdigit():
                typed += key
        return typed or None


def _valid(node: flows.Collect, digits: str) -> str | None:
    if not node.min_digits <= len(digits) <= node.max_digits:
        return None
    if node.kind != "phone":
        return digits
    try:
        return normalise_phone(digits)
    except (InvalidInput, ValueError):
        return None
