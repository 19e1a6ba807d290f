"""One inbound call from ring to hang-up: answer, the IVR, then the queue (music, place in line), the
agent's phone, the conversation, and the record of it all (`VoiceCall`, the contact, the recording).

Whatever happens (the caller hangs up at any step, the agent's phone fails, the worker dies) the
call ends cleanly: its routing task is abandoned or completed, so no task and no agent is left stuck,
and the record says why it ended."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from patientline.core import clock, workcal
from patientline.core.auth.actor import Actor
from patientline.core.config import Settings
from patientline.core.db import Database
from patientline.core.errors import DomainError, InvalidInput
from patientline.core.i18n import N_, gettext
from patientline.core.validation import normalise_phone
from patientline.knowledge.models import Item
from patientline.patients import index as patient_index
from patientline.routing.core_types import RoutingError
from patientline.routing.core_types import TaskState as CoreState
from patientline.routing.engine import LINE_CALL_REF, Engine
from patientline.routing.models import RoutingTask, TaskState
from patientline.routing.schemas import Caller, TaskCreate
from patientline.voice import recorded, service, trunk
from patientline.voice.flows import FlowDefinition
from patientline.voice.ivr import IvrRunner, Journey, Outcome
from patientline.voice.link import Event, WorkerGone
from patientline.voice.media import CallerGone, Media
from patientline.voice.models import VoiceCall
from patientline.voice.prompts import Prompts
from patientline.voice.selftest import Probe
from patientline.voice.talk import AGENT_LEG, RECORDING, SUPERVISOR_LEG, THIRD_LEG, Mix, Ring, Talk
from patientline.voice.voicemail import leave_work_order

log = logging.getLogger(__name__)

VOICEMAIL = "voicemail"
ANSWER_TIMEOUT_S = 60.0  # an agent's phone that neither answers nor fails in this time is given up
CLOSED = N_("Sorry, this line is closed now. Please call again during opening hours.")
PLACE = N_("Thank you for waiting. There are {ahead} callers before you.")
NEXT = N_("Thank you for waiting. You are next.")
GONE = N_("Sorry, nobody can take your call now. Please call again later.")
UNAVAILABLE = N_("Sorry, this number is not in service.")
NOT_ANSWERED = N_("Sorry, nobody answered. Please call again later.")
RECALLED = N_("Sorry, nobody answered there. Please hold for the next agent.")
TALKER_LEFT = {AGENT_LEG: "agent_hung_up", SUPERVISOR_LEG: "supervisor_hung_up", THIRD_LEG: "transferee_hung_up"}


@dataclass
class Plant:
    """What every call shares: the database, the router, the prompts, where files go, the SIP front."""

    db: Database
    settings: Settings
    routing: Engine
    prompts: Prompts
    recordings: Path
    music: Path
    ringback: Path  # what an agent hears while the patient's phone rings
    front: str  # host:port of the SIP front, where agents' phones are reached

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)


@dataclass
class PhoneCall:
    """What every call on the line has, whichever way it goes: its worker, its record, its recording,
    the conversation once connected, and a clean end whatever happens."""

    plant: Plant
    media: Media
    row: VoiceCall = field(init=False)
    journey: Journey = field(default_factory=Journey)
    task_id: int | None = None
    agent_id: int | None = None
    recording: Path | None = None
    talk: Talk | None = None
    stage: str = "answering"  # answering, ivr, queued, ringing, dialling, talking, voicemail, ended
    live_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    gone: str = "caller_hung_up"  # the end reason when the other party (the caller, the patient) hangs up

    @property
    def direction(self) -> str:
        return self.row.direction

    async def run(self) -> None:
        try:
            await self._call()
        except CallerGone:
            self.row.end_reason = self.row.end_reason or self.gone
        except WorkerGone:
            self.row.end_reason = "worker_failed"
        except Exception:
            log.exception("voice call failed", extra={"call_id": self.row.sip_call_id})
            self.row.end_reason = "error"
        finally:
            await self._finish()

    async def _call(self) -> None:
        raise NotImplementedError

    async def _release(self) -> None:
        """What the call holds outside the line (a routing task, the agent's pause) is let go."""

    def note(self, what: str, **details: Any) -> None:
        self.row.events = [*self.row.events, {"at": clock.now().isoformat(), "event": what, **details}]

    async def _record(self) -> None:
        local = clock.now().astimezone(self.plant.zone)
        relative = Path(f"{local:%Y/%m/%d}") / f"{local:%H%M%S}-{uuid.uuid4().hex[:12]}.wav"
        self.recording = self.plant.recordings / relative
        self.row.recording = relative.as_posix()
        await self.media.send(cmd="record", name=RECORDING, file=str(self.recording), legs=[self.media.caller])

    async def _talk(self, forward_to: Ring | None = None) -> str:
        """The conversation, until its talker hangs up ("ended"), it goes back to a queue ("requeued") or
        a blind transfer finds nobody ("unanswered"). With `forward_to` the caller talks to no agent but
        is passed on to an outside number (the IVR's transfer)."""
        await self.media.stop()
        self.talk = Talk(self.media, self.plant.music, Mix(self.media.caller), present=set())
        if forward_to is not None:
            self.talk.ring_talker(forward_to)
            self.note("forwarding")
        else:
            self.talk.present.add(AGENT_LEG)
            self.row.connected_at = self.row.connected_at or clock.now()
            self.note("connected", agent_id=self.agent_id)
            if self.row.contact_id is None:
                await self._open_contact()
        self.stage = "talking"
        outcome = await self.talk.run()
        if outcome == "ended":
            self.row.end_reason = TALKER_LEFT.get(self.talk.mix.talker, "agent_hung_up")
        elif outcome == "unanswered":
            self.row.end_reason = "transfer_unanswered"
            self.note("transfer_unanswered")
        return outcome

    async def _open_contact(self) -> None:
        raise NotImplementedError

    @property
    def kept(self) -> bool:
        """Whether the call is written to the call log (the line's own test calls are not)."""
        return True

    async def _finish(self) -> None:
        self.stage = "ended"
        self.row.ended_at = clock.now()
        await self._release()
        await self._close_media()
        self.row.recording_seconds = _seconds(self.recording)
        if self.row.recording_seconds is None:
            self.row.recording = None
        if not self.kept:
            return
        try:
            async with self.plant.db.sessions() as session, session.begin():
                session.add(self.row)
                if self.row.contact_id is not None:
                    await _end_contact(session, self.row)
        except Exception:
            log.exception("voice call record not written", extra={"call_id": self.row.sip_call_id})

    async def _close_media(self) -> None:
        with contextlib.suppress(WorkerGone):
            for leg in (AGENT_LEG, SUPERVISOR_LEG, THIRD_LEG, self.media.caller):
                await self.media.hang_up(leg)
            if self.row.recording is not None:
                await self.media.send(cmd="stop_record", name=RECORDING)
                with contextlib.suppress(CallerGone, WorkerGone):
                    await _drain_until(self.media, "recorded", 2.0)


@dataclass(kw_only=True)
class InboundCall(PhoneCall):
    incoming: Event
    report: Callable[[Probe], None] | None = None  # a self-test call: where its IVR outcome goes

    def __post_init__(self) -> None:
        self.row = VoiceCall(
            sip_call_id=str(self.incoming.get("call_id", ""))[:200], dialled=str(self.incoming.get("dialled", ""))[:40],
            caller=_caller_number(str(self.incoming.get("from", ""))), worker=self.media.link.name,
            started_at=clock.now(), ivr={}, events=[], direction="inbound",
        )  # fmt: skip

    # ---- the whole call -----------------------------------------------------------------------------

    @property
    def kept(self) -> bool:
        return self.report is None

    async def _call(self) -> None:
        try:
            await self._answered_call()
        finally:
            if self.report is not None:
                self.report(Probe(path=self.journey.path))  # ended before the IVR did (ignored after)

    async def _answered_call(self) -> None:
        async with self.plant.db.sessions() as session:
            found = await service.live_flow(session, self.row.dialled)
        if found is None:
            await self.media.send(cmd="answer", leg=self.media.caller, code=404)
            self.row.end_reason = "no_flow"
            return
        version, flow = found
        self.row.flow_id, self.row.flow_version = version.flow_id, version.number
        await self.media.answer()
        self.row.answered_at = clock.now()
        if self.report is None:
            await self._record()
        self.stage = "ivr"
        outcome = await self._ivr(flow)
        self.row.outcome = outcome.kind
        await self._follow(outcome)

    async def _ivr(self, flow: FlowDefinition) -> Outcome:
        async with self.plant.db.sessions() as session:
            calendar = await workcal.load(session, timezone=self.plant.settings.timezone)
        runner = IvrRunner(flow, self.media, self.plant.prompts.spoken, self._recorded, self._spoken_answer,
                           lambda: clock.now().astimezone(self.plant.zone), calendar, self.journey)  # fmt: skip
        try:
            return await runner.run()
        finally:
            self.row.ivr = {"path": self.journey.path, "keys": self.journey.keys, "collected": self.journey.collected}

    async def _queue_open(self, queue_id: int | None) -> bool:
        info = self.plant.routing.queues.get(queue_id) if queue_id is not None else None
        if info is None:
            return queue_id is None
        async with self.plant.db.sessions() as session:
            calendar = await workcal.load(session, timezone=self.plant.settings.timezone)
        return info.open_at(clock.now().astimezone(self.plant.zone), calendar)

    async def _recorded(self, prompt_id: int) -> Path | None:
        return await recorded.playable(self.plant.db, self.plant.prompts.directory, prompt_id)

    async def _spoken_answer(self, item_id: int) -> str | None:
        async with self.plant.db.sessions() as session:
            item = await session.get(Item, item_id)
        if item is None or not item.public or item.live_revision_id is None:
            return None
        return item.spoken or None

    async def _follow(self, outcome: Outcome) -> None:
        if self.report is not None:
            self.report(Probe(outcome.kind, self.journey.path, await self._queue_open(outcome.queue_id)))
            self.row.end_reason = "self_test"
        elif outcome.kind == "queue" and outcome.queue_id is not None:
            await self._queue(outcome.queue_id)
        elif outcome.kind == "callback" and outcome.queue_id is not None:
            await self._callback(outcome.queue_id)
        elif outcome.kind == "voicemail":
            await self._voicemail(outcome.max_seconds)
        elif outcome.kind == "number" and outcome.number:
            await self._forward(outcome.number)
        else:
            self.row.end_reason = "ivr_goodbye"

    async def _forward(self, number: str) -> None:
        """The IVR passes the caller on to an outside number through the trunk (the line's number shown)."""
        try:
            forward_to = trunk.forwarded(self.plant.settings, self.plant.front, number)
        except DomainError as exc:
            log.warning("IVR transfer to a number refused", extra={"error_id": exc.error_id})
            self.row.end_reason = "number_unavailable"
            await self._say(UNAVAILABLE)
            return
        if await self._talk(forward_to) == "unanswered":
            await self._say(NOT_ANSWERED)

    async def _say(self, message: str, **params: object) -> None:
        await self.media.hear([await self.plant.prompts.spoken(gettext(message).format(**params))])

    # ---- the queue ----------------------------------------------------------------------------------

    async def _queue(self, queue_id: int) -> None:
        self.row.queue_id = queue_id
        entered = await self._enter(queue_id)
        while entered and await self._wait_for_an_agent():
            outcome = await self._talk()
            if outcome == "ended":
                return
            if outcome == "unanswered":  # a blind transfer nobody took: back to the queue it came from
                await self._say(RECALLED)
                entered = await self._enter(self.row.queue_id or queue_id)
            self.stage, self.agent_id, self.talk = "queued", None, None

    async def _enter(self, queue_id: int) -> bool:
        """A routing task for the caller in `queue_id`; False (the caller told why) if the queue refuses."""
        try:
            task, _ = await self.plant.routing.submit(await self._task(queue_id))
        except DomainError as exc:
            log.info("voice call not queued", extra={"error_id": exc.error_id, "queue_id": queue_id})
            self.row.end_reason = "queue_closed" if exc.error_id == "queue_closed" else "queue_refused"
            await self._say(CLOSED if exc.error_id == "queue_closed" else GONE)
            return False
        self.task_id, self.row.end_reason = int(task["id"]), ""
        self.row.routing_task_id = self.row.routing_task_id or self.task_id
        self.row.queued_at = self.row.queued_at or clock.now()
        self.note("queued", queue_id=queue_id, task_id=self.task_id)
        if (agent := self._ringing_agent()) is not None:  # offered at once: before the call knew its task
            self.media.deliver({"event": "offer", "task": self.task_id, "agent": agent})
        return True

    def _ringing_agent(self) -> int | None:
        """The agent the router offers this call to now, if any."""
        router = self.plant.routing.core
        if router is None or self.task_id is None:
            return None
        try:
            view = router.task(self.task_id)
        except RoutingError:
            return None
        return view.agent if view.state == CoreState.OFFERED else None

    async def _task(self, queue_id: int) -> TaskCreate:
        """The routing task: the caller as the index knows them (VIP raises the priority)."""
        name, patient_id, vip = "", None, False
        async with self.plant.db.sessions() as session:
            mrn = self.journey.collected.get("mrn")
            patient = await patient_index.find_by_identifier(session, "mrn", mrn) if mrn else None
            if patient is None and self.row.caller.startswith("+"):
                found = await patient_index.find_by_phone(session, self.row.caller)
                patient = found[0] if len(found) == 1 else None
                vip = any(p.vip_level > 0 for p in found)
            if patient is not None:
                name, patient_id, vip = patient.name, patient.id, vip or patient.vip_level > 0
        phone = self.row.caller if self.row.caller.startswith("+") else None
        entry = f"#{self.task_id}" if self.task_id else ""  # a call back in its queue is a new task
        ref = f"{LINE_CALL_REF}{self.row.sip_call_id}"[: 100 - len(entry)] + entry
        return TaskCreate(queue_id=queue_id, channel="voice", vip=vip, caller=Caller(name=name, phone=phone,
                          patient_id=patient_id), subject=gettext("Phone call"), external_ref=ref)  # fmt: skip

    async def _wait_for_an_agent(self) -> bool:
        """Music and the caller's place in the line until an agent answers (True) or the task expires."""
        self.stage = "queued"
        await self.media.play([self.plant.music], loop=True)
        every = self.plant.settings.voice_announce_seconds
        next_announcement = clock.monotonic() + every
        while True:
            event = await self.media.next_event(max(next_announcement - clock.monotonic(), 0.0))
            if event is None:
                if not await self._announce_place():
                    return False
                next_announcement = clock.monotonic() + every
            elif event.get("event") == "offer" and await self._ring(int(event["agent"])):
                return True

    async def _announce_place(self) -> bool:
        """Tells the caller their place in the line; False when the task left the router (it expired)."""
        task = self.plant.routing.tasks.get(self.task_id or 0)
        if task is None or task.state != TaskState.WAITING:
            if task is None:
                self.row.end_reason = "expired"
                await self._say(GONE)
                return False
            return True
        ahead = self._ahead()
        await self.media.stop()
        if ahead:
            await self._say(PLACE, ahead=ahead)
        else:
            await self._say(NEXT)
        await self.media.play([self.plant.music], loop=True)
        return True

    def _ahead(self) -> int:
        task = self.plant.routing.tasks.get(self.task_id or 0)
        if task is None:
            return 0
        waiting = self.plant.routing.waiting(task.queue_id)
        return next((int(w["position"]) - 1 for w in waiting if w["id"] == self.task_id), 0)

    # ---- the agent ----------------------------------------------------------------------------------

    async def _ring(self, agent_id: int) -> bool:
        """Rings the agent's phone for the offer; True once the agent answered and the router agreed."""
        if self._ringing_agent() != agent_id:
            return False  # a late or repeated offer
        username = await _username(self.plant.db, agent_id)
        if username is None or self.task_id is None:
            return False
        headers = (
            {"Call-Info": f"<sip:{self.plant.front}>;answer-after=0"} if self.plant.settings.voice_auto_answer else {}
        )
        self.note("ringing", agent_id=agent_id)
        self.stage = "ringing"
        await self.media.send(cmd="dial", leg=AGENT_LEG, uri=f"sip:{username}@{self.plant.front}", headers=headers)
        answered = await self._agent_answers()
        if not answered:
            await self._give_up_ringing(agent_id)
            return False
        try:
            await self.plant.routing.accept(self.task_id, agent_id)
        except DomainError:
            if not self._active_with(agent_id):  # else the agent accepted in the browser first
                await self.media.hang_up(AGENT_LEG)
                return False
        self.agent_id = self.row.agent_id = agent_id
        return True

    def _active_with(self, agent_id: int) -> bool:
        task = self.plant.routing.tasks.get(self.task_id or 0)
        return task is not None and task.state == TaskState.ACTIVE and task.agent_id == agent_id

    async def _agent_answers(self) -> bool:
        deadline = clock.monotonic() + ANSWER_TIMEOUT_S
        while (left := deadline - clock.monotonic()) > 0:
            event = await self.media.next_event(left)
            if event is None:
                break
            kind, leg = event.get("event"), event.get("leg")
            if leg == AGENT_LEG and kind == "answered":
                return True
            if (leg == AGENT_LEG and kind in ("ended", "error")) or kind == "offer_ended":
                return False
        return False

    async def _give_up_ringing(self, agent_id: int) -> None:
        """The phone did not answer: the offer is declined, or, if the agent accepted it in the browser
        with no phone to talk on, the call goes back to its queue for someone else."""
        await self.media.hang_up(AGENT_LEG)
        self.media.ended.pop(AGENT_LEG, None)
        self.note("missed", agent_id=agent_id)
        if self.task_id is None or self.row.queue_id is None:
            return
        with contextlib.suppress(DomainError):
            if self._active_with(agent_id):
                await self.plant.routing.transfer(self.task_id, agent_id, self.row.queue_id)
            else:
                await self.plant.routing.decline(self.task_id, agent_id)

    async def _open_contact(self) -> None:
        from patientline.contacts import service as contacts

        try:
            async with self.plant.db.sessions() as session, session.begin():
                task = await session.get(RoutingTask, self.task_id)
                agent = await _agent_actor(session, self.agent_id)
                if task is not None and agent is not None:
                    self.row.contact_id = (await contacts.open_for_task(session, actor=agent, task=task)).id
        except DomainError as exc:
            log.warning("no contact record for a voice call", extra={"error_id": exc.error_id})

    # ---- callback and voicemail ---------------------------------------------------------------------

    async def _callback(self, queue_id: int) -> None:
        self.row.queue_id = queue_id
        try:
            task, _ = await self.plant.routing.submit(await self._task(queue_id))
            await self.plant.routing.keep_place(int(task["id"]))
        except DomainError as exc:
            log.warning("callback not registered", extra={"error_id": exc.error_id})
            self.row.end_reason = "queue_refused"
            return
        self.row.routing_task_id = int(task["id"])
        self.row.end_reason = "callback_requested"

    async def _voicemail(self, max_seconds: int) -> None:
        message = self.recording.with_suffix(".message.wav") if self.recording else None
        if message is None:
            return
        await self.media.send(cmd="record", name=VOICEMAIL, file=str(message), legs=[self.media.caller])
        self.row.end_reason, self.stage = "voicemail", "voicemail"
        try:
            await self._until_hash_or_silence(max_seconds)
        finally:
            with contextlib.suppress(WorkerGone):
                await self.media.send(cmd="stop_record", name=VOICEMAIL)
            self.row.work_order_id = await leave_work_order(self.plant.db, self.row, message)

    async def _until_hash_or_silence(self, max_seconds: int) -> None:
        deadline = clock.monotonic() + max_seconds
        while (left := deadline - clock.monotonic()) > 0:
            if await self.media.key(left) == "#":
                return

    # ---- the end ------------------------------------------------------------------------------------

    async def _release(self) -> None:
        """The task leaves the router: completed if an agent had it, else abandoned."""
        if self.task_id is None or self.row.end_reason == "callback_requested":
            return
        live = self.plant.routing.tasks.get(self.task_id)
        if live is None:
            return
        with contextlib.suppress(DomainError):
            if live.state == TaskState.ACTIVE and live.agent_id is not None:
                await self.plant.routing.complete(self.task_id, live.agent_id, wrap_up=True)
            else:
                await self.plant.routing.abandon(self.task_id)
        self.note("ended", reason=self.row.end_reason)


async def _drain_until(media: Media, kind: str, within: float) -> None:
    deadline = clock.monotonic() + within
    while (left := deadline - clock.monotonic()) > 0:
        try:
            event = await asyncio.wait_for(media.events.get(), left)
        except TimeoutError:
            return
        if event.get("event") in (kind, "lost"):
            return


async def _end_contact(session: Any, row: VoiceCall) -> None:
    from patientline.contacts.models import Contact

    contact = await session.get(Contact, row.contact_id)
    if contact is not None and contact.ended_at is None:
        contact.ended_at = row.ended_at


async def _username(db: Database, user_id: int) -> str | None:
    from patientline.core.auth.models import User

    async with db.sessions() as session:
        return await session.scalar(select(User.username).where(User.id == user_id, User.is_active.is_(True)))


async def _agent_actor(session: Any, user_id: int | None) -> Actor | None:
    from patientline.core.auth.models import User

    user = await session.get(User, user_id) if user_id is not None else None
    if user is None:
        return None
    return Actor(user_id=user.id, username=user.username, display_name=user.display_name, roles=(),
                 permissions=frozenset(), via="system")  # fmt: skip


def _caller_number(uri: str) -> str:
    """The caller's number from the SIP From (`"x" <sip:13800138000@host>`), E.164 when it is one."""
    user = uri.split("sip:", 1)[-1].split("@", 1)[0].split(";", 1)[0].strip("<> ")
    try:
        return normalise_phone(user)
    except (InvalidInput, ValueError):
        return user[:40]


def _seconds(path: Path | None) -> float | None:
    if path is None or not path.exists():
        return None
    try:
        with wave.open(str(path)) as recording:
            return float(round(recording.getnframes() / recording.getframerate(), 2))
    except (wave.Error, EOFError, ZeroDivisionError):
        return None
