"""One conversation's view of its media worker: the caller's leg, the other legs it dials, and the
worker's events in order. Whatever waits here learns at once when the caller hangs up (`CallerGone`)
or the worker dies (`WorkerGone`), so no step of a call can wait for ever."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from pathlib import Path
from typing import Any

from patientline.core import clock
from patientline.voice.link import Event, WorkerGone, WorkerLink

LOST = {"event": "lost"}


class CallerGone(Exception):
    """The caller hung up."""


class Media:
    def __init__(self, link: WorkerLink, caller: str) -> None:
        self.link = link
        self.caller = caller
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.digits: deque[str] = deque()  # keys pressed and not yet read (callers type ahead)
        self.ended: dict[str, Event] = {}
        self.answered_at: float | None = None

    def deliver(self, event: Event) -> None:
        if event.get("event") == "dtmf" and event.get("leg") == self.caller:
            self.digits.append(str(event.get("digit", ""))[:1])
        if event.get("event") == "ended":
            self.ended[str(event.get("leg"))] = event
        self.events.put_nowait(event)

    def lost(self) -> None:
        self.events.put_nowait(LOST)

    @property
    def caller_here(self) -> bool:
        return self.caller not in self.ended

    async def send(self, **command: Any) -> None:
        await self.link.send(**command)

    async def next_event(self, within: float | None) -> Event | None:
        """The next event, None after `within` seconds; the caller gone or the worker lost raise."""
        if not self.caller_here:
            raise CallerGone
        try:
            event = await asyncio.wait_for(self.events.get(), within)
        except TimeoutError:
            return None
        if event is LOST:
            raise WorkerGone(self.link.name)
        if event.get("event") == "ended" and event.get("leg") == self.caller:
            raise CallerGone
        return event

    async def wait_for(self, kind: str, leg: str, within: float | None) -> Event | None:
        """The first event of `kind` on `leg` within `within` seconds (others are passed over)."""
        deadline = None if within is None else clock.monotonic() + within
        while True:
            left = None if deadline is None else max(deadline - clock.monotonic(), 0.0)
            event = await self.next_event(left)
            if event is None:
                return None
            if event.get("event") == kind and event.get("leg") == leg:
                return event

    # ---- the caller's leg ---------------------------------------------------------------------------

    async def answer(self) -> None:
        await self.send(cmd="answer", leg=self.caller)
        await self.wait_for("media", self.caller, 5.0)
        self.answered_at = clock.monotonic()

    async def play(self, files: list[Path], *, loop: bool = False, leg: str | None = None) -> None:
        await self.send(cmd="play", leg=leg or self.caller, files=[str(f) for f in files], loop=loop)

    async def stop(self, leg: str | None = None) -> None:
        await self.send(cmd="stop", leg=leg or self.caller)

    async def hear(self, files: list[Path], *, keys: bool = False) -> str | None:
        """Plays to the caller until the end; with `keys`, a key pressed stops it and is returned."""
        if keys and self.digits:
            return self.digits[0]
        await self.play(files)
        while True:
            event = await self.next_event(None)
            if event is None:
                continue
            if event.get("event") == "played" and event.get("leg") == self.caller:
                return None
            if keys and self.digits:
                await self.stop()
                return self.digits[0]

    async def key(self, within: float) -> str | None:
        """The next key the caller presses (one typed ahead first), None after `within` seconds."""
        deadline = clock.monotonic() + within
        while not self.digits:
            left = deadline - clock.monotonic()
            if left <= 0:
                return None
            await self.next_event(left)
        return self.digits.popleft()

    async def hang_up(self, leg: str | None = None) -> None:
        name = leg or self.caller
        if name not in self.ended:
            with contextlib.suppress(WorkerGone):
                await self.send(cmd="hangup", leg=name)
