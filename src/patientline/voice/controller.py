"""The `voice` role: holds a link to every media worker, starts an `InboundCall` for each new call a
worker reports, and passes the router's offers for voice tasks to the call they belong to.

It runs in the process that runs the router (the embedded default), so offers arrive on the event bus
and the call's commands to the router (submit, accept, decline, complete, abandon) are direct calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from patientline.core.auth.actor import Actor
from patientline.core.config import Settings
from patientline.core.db import Database
from patientline.core.errors import Conflict
from patientline.core.events import Bus, Published
from patientline.routing.engine import Engine
from patientline.routing.events import OfferRang, OfferStopped
from patientline.voice.calls import InboundCall, PhoneCall, Plant
from patientline.voice.link import Event, WorkerLink
from patientline.voice.media import Media
from patientline.voice.outbound import PATIENT_LEG, RING_AGENT_S, Dialling, OutboundCall
from patientline.voice.phones import Registrar
from patientline.voice.plant import (
    MediaPlant,
    end_worker_calls,
    front,
    hold_music,
    recordings_dir,
    ringback_tone,
    voice_dir,
)
from patientline.voice.ports import Seat
from patientline.voice.prompts import Prompts
from patientline.voice.selftest import SelfTester

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 10.0


@dataclass
class Controller:
    plant: Plant
    bus: Bus
    workers: list[Seat]
    links: dict[str, WorkerLink] = field(default_factory=dict)
    calls: dict[str, PhoneCall] = field(default_factory=dict)  # by worker
    _by_task: dict[int, PhoneCall] = field(default_factory=dict)
    probes: dict[str, Media] = field(default_factory=dict)  # by worker: the line's own test calls
    tester: SelfTester | None = None
    _running: set[asyncio.Task[None]] = field(default_factory=set)
    _unsubscribe: object = None
    _stopping: bool = False

    def start(self) -> None:
        for seat in self.workers:
            link = WorkerLink(seat.name, seat.control, seat.sip_port, self._on_event, self._on_lost)
            self.links[seat.name] = link
            link.start()
        self._unsubscribe = self.bus.subscribe(self._on_bus)

    async def stop(self) -> None:
        self._stopping = True
        if callable(self._unsubscribe):
            self._unsubscribe()
        for task in list(self._running):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for link in self.links.values():
            await link.stop()

    async def ready(self, within: float) -> bool:
        """Whether every worker's link is up within `within` seconds."""
        try:
            await asyncio.wait_for(asyncio.gather(*(link.connected.wait() for link in self.links.values())), within)
        except TimeoutError:
            return False
        return True

    @property
    def busy(self) -> int:
        return len(self.calls)

    # ---- from the workers ---------------------------------------------------------------------------

    def _on_event(self, link: WorkerLink, event: Event) -> None:
        call = self.calls.get(link.name)
        probe = self.probes.get(link.name)
        if event.get("event") == "incoming":
            if (
                call is not None or probe is not None
            ):  # one conversation per worker: the SIP front should not have sent it
                self._refuse(link, str(event.get("leg")))
                return
            self._begin(link, event)
        elif probe is not None:
            probe.deliver(event)
        elif call is not None:
            call.media.deliver(event)
            if event.get("event") == "ended" and event.get("leg") == call.media.caller:
                log.debug("caller left", extra={"worker": link.name})

    def _on_lost(self, link: WorkerLink) -> None:
        call = self.calls.get(link.name)
        media = call.media if call is not None else self.probes.get(link.name)
        if media is not None:
            media.lost()
        if not self._stopping:
            self._spawn(self._hang_up_legs(link))  # also a leg the worker had not reported yet

    async def _hang_up_legs(self, link: WorkerLink) -> None:
        try:
            ended = await asyncio.to_thread(end_worker_calls, self.plant.settings, link.sip_port)
        except Exception:  # Kamailio away or an answer not understood: the phones end the call themselves
            log.exception("the call legs of a lost worker could not be ended", extra={"worker": link.name})
        else:
            log.info("ended %d call legs of a lost worker", ended, extra={"worker": link.name})

    def _refuse(self, link: WorkerLink, leg: str) -> None:
        self._spawn(link.send(cmd="answer", leg=leg, code=486))

    def _begin(self, link: WorkerLink, event: Event) -> None:
        report = self.tester.answering(str(event.get("self_test") or "")) if self.tester else None
        self._run(link, InboundCall(self.plant, Media(link, str(event.get("leg"))), incoming=event, report=report))

    def free_link(self) -> WorkerLink | None:
        """A worker that is up and has no conversation, for a call the line places itself."""
        return next((k for k in self.links.values() if k.connected.is_set() and k.name not in self.calls
                     and k.name not in self.probes), None)  # fmt: skip

    def free_count(self) -> int:
        return sum(1 for k in self.links.values() if k.connected.is_set() and k.name not in self.calls
                   and k.name not in self.probes)  # fmt: skip

    def reserve(self, link: WorkerLink, media: Media) -> None:
        self.probes[link.name] = media

    def release(self, link: WorkerLink) -> None:
        self.probes.pop(link.name, None)

    def _run(self, link: WorkerLink, call: PhoneCall) -> None:
        self.calls[link.name] = call
        task = self._spawn(call.run())
        task.add_done_callback(lambda _: self._done(link.name, call))

    async def dial_out(self, dialling: Dialling, actor: Actor) -> OutboundCall:
        """Starts an outbound call on a free worker; returns once the agent's phone has answered."""
        if any(call.agent_id == actor.user_id and call.stage != "ended" for call in self.calls.values()):
            raise Conflict("You are on a call already.", error_id="on_a_call")
        link = self.free_link()
        if link is None:
            raise Conflict("Every line is busy; try again in a moment.", error_id="lines_busy")
        call = OutboundCall(self.plant, Media(link, PATIENT_LEG), dialling=dialling, actor=actor)
        self._run(link, call)
        try:
            answered = await asyncio.wait_for(asyncio.shield(call.agent_answered), RING_AGENT_S + 5)
        except TimeoutError:
            answered = False
        if not answered:
            raise Conflict("Your phone did not answer; is it registered?", error_id="phone_not_answered")
        return call

    def _done(self, worker: str, call: PhoneCall) -> None:
        if self.calls.get(worker) is call:
            del self.calls[worker]
        if call.task_id is not None:
            self._by_task.pop(call.task_id, None)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    # ---- from the router ----------------------------------------------------------------------------

    def _on_bus(self, item: Published) -> None:
        if item.type not in (OfferRang.type, OfferStopped.type):
            return
        task_id = int(item.payload.get("task_id", 0))
        call = self._call_of(task_id)
        if call is None:
            return
        if item.type == OfferRang.type:
            call.media.deliver({"event": "offer", "task": task_id, "agent": item.audience.user_id})
        else:
            call.media.deliver({"event": "offer_ended", "task": task_id, "reason": item.payload.get("reason")})

    def _call_of(self, task_id: int) -> PhoneCall | None:
        call = self._by_task.get(task_id)
        if call is None:
            call = next((c for c in self.calls.values() if c.task_id == task_id), None)
            if call is not None:
                self._by_task[task_id] = call
        return call


@dataclass
class VoiceRole:
    """The media plant (Kamailio and the workers) and the controller, started and stopped together."""

    media: MediaPlant
    controller: Controller
    tester: SelfTester
    registrar: Registrar

    async def stop(self) -> None:
        await self.tester.stop()
        await self.registrar.stop()
        await self.controller.stop()
        await self.media.stop()


async def start_voice(settings: Settings, db: Database, bus: Bus, routing: Engine) -> VoiceRole:
    """Starts the phone line; needs the router in this process (it offers the calls to agents)."""
    directory = voice_dir(settings)
    media = MediaPlant(settings)
    await media.start()
    plant = Plant(db=db, settings=settings, routing=routing, prompts=Prompts(directory / "prompts"),
                  recordings=recordings_dir(settings), music=hold_music(directory / "music" / "hold.wav"),
                  ringback=ringback_tone(directory / "music" / "ringback.wav"), front=front(settings))  # fmt: skip
    controller = Controller(plant, bus, media.seats)
    controller.tester = tester = SelfTester(controller, plant.recordings)
    controller.start()
    if not await controller.ready(READY_TIMEOUT_S):
        log.warning("some media workers are not up yet; calls go to those that are")
    registrar = Registrar(media, db, settings)
    if not await registrar.ready(READY_TIMEOUT_S):
        log.warning("Kamailio does not take the phones' passwords yet; they follow within seconds")
    registrar.start()
    tester.start()
    return VoiceRole(media, controller, tester, registrar)
