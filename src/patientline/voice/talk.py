"""The connected part of a call: who hears whom, and the legs that join and leave while it lasts.

A conversation has the caller, the *talker* (the agent who answered; after a take-over the supervisor,
after a completed transfer the person it went to), and at most a consulted *third* party and a
supervisor. `Mix` says from the state alone which leg hears which and what the recording hears;
`Talk` keeps the media worker's conference bridge equal to it, one difference at a time. The
supervisor's voice reaches the caller only in `barge`: in `listen` and `whisper` the caller's side
of the bridge never carries it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal

from patientline.voice.link import Event
from patientline.voice.media import Media

AGENT_LEG = "agent"
SUPERVISOR_LEG = "supervisor"
THIRD_LEG = "third"
RECORDING = "call"
DIAL_TIMEOUT_S = 40.0
UNANSWERED = "transfer_unanswered"  # the event a blind transfer's ringing ends with when nobody answers
Link = tuple[str, str]  # (source, target): target hears source


@dataclass(frozen=True)
class Ring:
    """Whom a leg rings: the URI, the headers, and the From shown (an outside number sees the line's)."""

    uri: str
    headers: dict[str, str] = field(default_factory=dict)
    sender: str | None = None


class Watch(StrEnum):
    LISTEN = "listen"  # the supervisor hears everyone; nobody hears the supervisor
    WHISPER = "whisper"  # the talker hears the supervisor; the caller does not
    BARGE = "barge"  # everyone hears everyone


@dataclass
class Mix:
    caller: str
    talker: str = AGENT_LEG
    hold: bool = False
    third: Literal["consult", "conference"] | None = None
    watch: Watch | None = None

    def links(self) -> set[Link]:
        talkers = [self.talker, *([THIRD_LEG] if self.third else [])]
        links: set[Link] = set()
        if self.third == "consult":
            links |= _both(self.talker, THIRD_LEG)
        if not self.hold:
            links |= {link for other in talkers for link in _both(self.caller, other)}
            if self.third == "conference":
                links |= _both(self.talker, THIRD_LEG)
        if self.watch is not None:
            speakers = [self.caller, *talkers]
            links |= {(speaker, SUPERVISOR_LEG) for speaker in speakers}
            if self.watch == Watch.WHISPER:
                links.add((SUPERVISOR_LEG, self.talker))
            elif self.watch == Watch.BARGE:
                links |= {(SUPERVISOR_LEG, speaker) for speaker in speakers}
        return links

    def recorded(self) -> set[str]:
        """The legs the call's recording hears: what the caller and the talker said, and whoever the
        caller could hear besides."""
        legs = {self.caller, self.talker}
        if self.third == "conference":
            legs.add(THIRD_LEG)
        if self.watch == Watch.BARGE:
            legs.add(SUPERVISOR_LEG)
        return legs

    def without(self, leg: str) -> None:
        """The state once `leg` has left (the talker's leaving ends the conversation instead)."""
        if leg == SUPERVISOR_LEG:
            self.watch = None
        elif leg == THIRD_LEG:
            self.third = None


def _both(one: str, other: str) -> set[Link]:
    return {(one, other), (other, one)}


@dataclass
class Talk:
    media: Media
    music: Path
    mix: Mix
    present: set[str] = field(default_factory=set)  # legs answered and not yet gone, besides the caller
    requeue: bool = False  # the agent transferred the call to a queue: their leaving does not end it
    ringing: bool = False  # a blind transfer rings the talker: the caller hears music until it answers
    supervisor_id: int | None = None  # whose phone is the supervisor leg
    _ringer: asyncio.Task[None] | None = None
    _applied: set[Link] = field(default_factory=set)
    _heard: set[str] = field(default_factory=set)
    _music: bool = False
    _dials: dict[str, asyncio.Future[bool]] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def run(self) -> str:
        """Until the talker hangs up ("ended"), the call goes back to a queue ("requeued") or a blind
        transfer finds nobody ("unanswered"); the caller hanging up raises `CallerGone`."""
        self._heard = {self.media.caller}  # the recording has heard the caller since the answer
        await self.apply()
        try:
            while True:
                event = await self.media.next_event(None)
                if event is None:
                    continue
                unanswered = event.get("event") == UNANSWERED and self.ringing  # not a stray from before
                if unanswered or await self._on_leg(event) == self.mix.talker:
                    return "unanswered" if self.ringing else "requeued" if self.requeue else "ended"
        finally:
            if self._ringer is not None:
                self._ringer.cancel()

    def ring_talker(self, ring: Ring) -> None:
        """Blind transfer: `THIRD_LEG` becomes the talker, and the caller holds while it rings; once it
        answers the two talk, and if it does not the conversation ends "unanswered"."""
        self.mix.talker, self.mix.third, self.mix.hold, self.ringing = THIRD_LEG, None, True, True
        self._ringer = asyncio.create_task(self._ring(ring))

    async def _ring(self, ring: Ring) -> None:
        if await self.dial(THIRD_LEG, ring):
            self.ringing, self.mix.hold = False, False
            await self.apply()
        else:
            self.media.deliver({"event": UNANSWERED})

    async def _on_leg(self, event: Event) -> str | None:
        """Settles a dial's answer and a leg's leaving; the name of a leg that left."""
        kind, leg = event.get("event"), str(event.get("leg"))
        pending = self._dials.get(leg)
        if pending is not None and not pending.done() and kind in ("answered", "ended", "error"):
            pending.set_result(kind == "answered")
        if kind != "ended":
            return None
        self.media.ended.pop(leg, None)  # the name may be dialled again
        self.present.discard(leg)
        if leg == SUPERVISOR_LEG and leg != self.mix.talker:
            self.supervisor_id = None
        if leg != self.mix.talker:
            self.mix.without(leg)
            async with self._lock:
                self._applied = {link for link in self._applied if leg not in link}
                self._heard.discard(leg)
            await self.apply()
        return leg

    async def dial(self, leg: str, ring: Ring) -> bool:
        """Rings `ring` as `leg`; True once it answered (it then takes part only as the mix says)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._dials[leg] = future
        self.media.ended.pop(leg, None)  # an earlier leg of this name is over
        try:
            shown = {"from": ring.sender} if ring.sender else {}
            await self.media.send(cmd="dial", leg=leg, uri=ring.uri, headers=ring.headers, **shown)
            answered = await asyncio.wait_for(asyncio.shield(future), DIAL_TIMEOUT_S)
        except TimeoutError:
            answered = False
        finally:
            self._dials.pop(leg, None)
        if answered:
            self.present.add(leg)
        else:
            await self.media.hang_up(leg)
        return answered

    async def apply(self) -> None:
        """Makes the bridge, the recording and the hold music what the mix says, changing only what
        differs."""
        async with self._lock:
            here = self.present | {self.media.caller}
            wanted = {link for link in self.mix.links() if set(link) <= here}
            heard = self.mix.recorded() & here
            for source, target in sorted(self._applied - wanted):
                await self.media.send(cmd="disconnect", **{"from": source, "to": target})
            for source, target in sorted(wanted - self._applied):
                await self.media.send(cmd="connect", **{"from": source, "to": target})
            if heard - self._heard:
                await self.media.send(cmd="hear", name=RECORDING, legs=sorted(heard - self._heard))
            if self._heard - heard:
                await self.media.send(cmd="unhear", name=RECORDING, legs=sorted(self._heard - heard))
            self._applied, self._heard = wanted, heard
            await self._hold_music()

    async def _hold_music(self) -> None:
        if self.mix.hold and not self._music:
            await self.media.play([self.music], loop=True)
        elif self._music and not self.mix.hold:
            await self.media.stop()
        self._music = self.mix.hold
