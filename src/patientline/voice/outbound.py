"""Outbound calls from the workbench (AG2): the agent's own phone rings first and answers by itself,
then the patient's number is dialled through the trunk while the agent hears ringback. Once the
patient answers it is a conversation like any other: recorded, on hold, consulted, supervised.

The caller-ID policy is `trunk`'s. While the call lasts, an agent who was ready is paused in routing
(reason `outbound`), so nothing is offered to them, and made ready again afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import audit, clock
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.config import Settings
from patientline.core.errors import Conflict, DomainError, InvalidInput, NotFound
from patientline.core.i18n import gettext
from patientline.core.masking import mask_phone
from patientline.routing.core_types import Reason, RoutingError, Status
from patientline.voice import trunk
from patientline.voice.calls import PhoneCall
from patientline.voice.media import CallerGone
from patientline.voice.models import VoiceCall
from patientline.voice.schemas import OutboundIn
from patientline.voice.talk import AGENT_LEG

log = logging.getLogger(__name__)

PATIENT_LEG = "patient"
RING_AGENT_S = 20.0  # the agent's phone answers by itself; longer means it is not there
RING_PATIENT_S = 60.0
UNANSWERED = {486: "busy", 600: "busy", 603: "declined", 404: "number_unknown", 484: "number_unknown",
              604: "number_unknown", 480: "not_answered", 408: "not_answered", 487: "not_answered"}  # fmt: skip


@dataclass(frozen=True)
class Dialling:
    """What an agent asked for, checked: the number (E.164), the number shown, and what it is about."""

    number: str
    caller_id: str  # one of the hospital's numbers, or WITHHELD
    patient_id: int | None = None
    work_order_id: int | None = None


async def check(session: AsyncSession, settings: Settings, actor: Actor, data: OutboundIn) -> Dialling:
    """The number comes from the request, a patient's phone on file (the agent sees it masked only) or
    the work order's caller."""
    from patientline.patients import index as patient_index
    from patientline.patients.models import PatientPhone
    from patientline.workorders.models import WorkOrder

    if data.patient_phone_id is not None or data.patient_id is not None:
        actor.require(Permission.READ_PATIENTS)
    trunk.require_trunk(settings)
    patient_id, raw = data.patient_id, data.number
    order = await session.get(WorkOrder, data.work_order_id) if data.work_order_id else None
    if data.work_order_id and order is None:
        raise NotFound("There is no such work order.")
    if data.patient_phone_id is not None:
        phone = await session.get(PatientPhone, data.patient_phone_id)
        if phone is None:
            raise NotFound("There is no such phone number on file.")
        raw, patient_id = phone.phone, phone.patient_id
    elif raw is None and order is not None:
        raw, patient_id = order.caller_phone, patient_id or order.patient_id
    if not raw:
        raise InvalidInput("Give the number to call.", details={"field": "number"})
    if patient_id is not None:
        patient_id = (await patient_index.resolve(session, patient_id)).id
    return Dialling(trunk.number(settings, raw), trunk.caller_id(settings, data.caller_id), patient_id,
                    order.id if order else None)  # fmt: skip


def audit_dialling(session: AsyncSession, actor: Actor, dialling: Dialling, live_id: str) -> None:
    audit.record(session, actor=actor, action="voice.outbound", target_type="patient", target_id=dialling.patient_id,
                 after={"number": mask_phone(dialling.number), "caller_id": dialling.caller_id,
                        "work_order_id": dialling.work_order_id, "live_id": live_id})  # fmt: skip


@dataclass(kw_only=True)
class OutboundCall(PhoneCall):
    dialling: Dialling
    actor: Actor
    agent_answered: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    paused: bool = False
    user: int = field(init=False)  # the agent's user id

    def __post_init__(self) -> None:
        if self.actor.user_id is None:
            raise Conflict("Only a signed-in agent can call out.", error_id="not_an_agent")
        self.user = self.agent_id = self.actor.user_id
        self.gone, self.stage = "patient_hung_up", "ringing_agent"
        self.row = VoiceCall(sip_call_id=f"outbound-{self.live_id}", direction="outbound",
                             dialled=self.dialling.caller_id, caller=self.dialling.number,
                             worker=self.media.link.name, started_at=clock.now(), agent_id=self.user,
                             ivr={}, events=[])  # fmt: skip

    async def _call(self) -> None:
        try:
            await self._pause_agent()
            answered = await self._ring_agent()
        finally:
            if not self.agent_answered.done():
                self.agent_answered.set_result(False)
        if answered and await self._dial_patient():
            self.row.answered_at = clock.now()
            await self._record()
            await self._talk()

    async def _pause_agent(self) -> None:
        """An agent ready for routed work is paused so the router offers them nothing meanwhile."""
        router = self.plant.routing.core
        with contextlib.suppress(RoutingError, DomainError):
            if router is not None and router.agent(self.user).presence is Status.READY:
                await self.plant.routing.not_ready(self.user, Reason.OUTBOUND)
                self.paused = True

    async def _ring_agent(self) -> bool:
        uri = f"sip:{self.actor.username}@{self.plant.front}"
        await self.media.send(cmd="dial", leg=AGENT_LEG, uri=uri,
                              headers={"Call-Info": f"<sip:{self.plant.front}>;answer-after=0"})  # fmt: skip
        event = await self._first(AGENT_LEG, RING_AGENT_S)
        answered = event is not None and event.get("event") == "answered"
        self.agent_answered.set_result(answered)
        if not answered:
            self.row.end_reason = "agent_phone_not_answered"
        return answered

    async def _dial_patient(self) -> bool:
        """Rings the patient with the agent hearing ringback; False when nobody answers (the reason is
        the call's end reason) or the agent gives up first."""
        self.stage = "dialling"
        self.note("dialling", caller_id=self.dialling.caller_id)
        await self.media.play([self.plant.ringback], loop=True, leg=AGENT_LEG)
        await self.media.send(cmd="dial", leg=PATIENT_LEG, **self._presented(),
                              uri=f"sip:{trunk.trunk_digits(self.dialling.number)}@{self.plant.front}")  # fmt: skip
        try:
            event = await self._first(PATIENT_LEG, RING_PATIENT_S, also=AGENT_LEG)
        except CallerGone:
            code = int(self.media.ended.get(PATIENT_LEG, {}).get("code") or 0)
            self.row.end_reason = UNANSWERED.get(code, "failed")
            self.note("not_answered", code=code)
            return False
        if event is None or event.get("event") != "answered":
            self.row.end_reason = "agent_cancelled" if event is not None and event.get("leg") == AGENT_LEG else (
                "not_answered" if event is None else "failed")  # fmt: skip
            return False
        await self.media.stop(AGENT_LEG)
        return True

    def _presented(self) -> dict[str, object]:
        return trunk.presented(self.plant.settings, self.dialling.caller_id)

    async def _first(self, leg: str, within: float, *, also: str | None = None) -> dict[str, object] | None:
        """The first answer, end or failure of `leg` (or `also`'s end) within `within` seconds."""
        deadline = clock.monotonic() + within
        while (left := deadline - clock.monotonic()) > 0:
            event = await self.media.next_event(left)
            if event is None:
                return None
            kind, which = event.get("event"), event.get("leg")
            if (which == leg and kind in ("answered", "ended", "error")) or (which == also and kind == "ended"):
                return event
        return None

    async def _open_contact(self) -> None:
        from patientline.contacts import service as contacts
        from patientline.contacts.schemas import ContactCreate, LinkIn

        data = ContactCreate(channel="voice", direction="outbound", phone=self.dialling.number,
                             patient_id=self.dialling.patient_id, subject=gettext("Outbound call"),
                             external_ref=self.row.sip_call_id[:100])  # fmt: skip
        try:
            async with self.plant.db.sessions() as session, session.begin():
                contact = await contacts.create(session, actor=self.actor, data=data)
                if self.dialling.work_order_id is not None:
                    link = LinkIn(kind="workorder", target=str(self.dialling.work_order_id))
                    await contacts.add_link(session, actor=self.actor, contact_id=contact.id, data=link)
                self.row.contact_id = contact.id
        except DomainError as exc:
            log.warning("no contact record for an outbound call", extra={"error_id": exc.error_id})

    async def _release(self) -> None:
        """The agent is made ready again if the call paused them and they are still paused for it."""
        router = self.plant.routing.core
        if not self.paused or router is None:
            return
        with contextlib.suppress(RoutingError, DomainError):
            if router.agent(self.user).reason is Reason.OUTBOUND:
                await self.plant.routing.ready(self.user)
