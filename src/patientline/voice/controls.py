"""What agents and supervisors do to a call while it is live: the agent bar's hold, transfer, consult,
three-way and hang-up, and a supervisor's listen, whisper, barge, take-over and forced hang-up.

Each control checks who may use it and the call's state first, so a refused control changes nothing.
Supervision is audited: listening to a live call is hearing patient data.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import audit, clock, workcal
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied
from patientline.core.masking import mask_phone
from patientline.routing import service as routing
from patientline.voice import trunk
from patientline.voice.calls import PhoneCall, Plant
from patientline.voice.schemas import (
    Colleague,
    ConsultEnding,
    LiveCallRead,
    SupervisionMode,
    TransferIn,
    TransferQueue,
    TransferTargetsRead,
)
from patientline.voice.talk import AGENT_LEG, SUPERVISOR_LEG, THIRD_LEG, Ring, Talk, Watch

OUTSIDE_NUMBER = re.compile(r"^\+?[0-9][0-9 -]{2,24}$")


def live_json(call: PhoneCall) -> dict[str, Any]:
    talk, caller = call.talk, call.row.caller
    return LiveCallRead(
        id=call.live_id, direction=call.direction, stage=call.stage, contact_id=call.row.contact_id,
        dialled=call.row.dialled, started_at=call.row.started_at,
        caller_masked=mask_phone(caller) if caller.startswith("+") else caller, queue_id=call.row.queue_id,
        task_id=call.task_id, agent_id=call.agent_id, ivr_path=call.journey.path,
        talker=talk.mix.talker if talk else None, hold=bool(talk and talk.mix.hold),
        third=talk.mix.third if talk else None, watch=talk.mix.watch if talk else None,
        supervisor_id=talk.supervisor_id if talk else None,
    ).model_dump(mode="json")  # fmt: skip


def visible(calls: list[PhoneCall], actor: Actor) -> list[dict[str, Any]]:
    """Supervisors see every live call; an agent sees the one they are on."""
    actor.require(Permission.HANDLE_CONTACTS)
    mine = [c for c in calls if actor.can(Permission.SUPERVISE) or (c.agent_id and c.agent_id == actor.user_id)]
    return [live_json(call) for call in sorted(mine, key=lambda c: c.row.started_at)]


def find(calls: list[PhoneCall], actor: Actor, live_id: str) -> PhoneCall:
    call = next((c for c in calls if c.live_id == live_id and c.stage != "ended"), None)
    if call is None:
        raise NotFound("No such call on the line now.")
    if not actor.can(Permission.SUPERVISE) and call.agent_id != actor.user_id:
        raise PermissionDenied("This call is not yours.")
    return call


def _talk(call: PhoneCall) -> Talk:
    if call.talk is None or call.stage != "talking":
        raise Conflict("This call is not connected to anyone yet.", error_id="call_not_connected")
    return call.talk


def _agent_talk(call: PhoneCall) -> Talk:
    """The conversation while the agent who answered still has it (not after a take-over or transfer)."""
    talk = _talk(call)
    if talk.mix.talker != AGENT_LEG:
        raise Conflict("The agent has left this call.", error_id="agent_left")
    return talk


# ---- the agent bar --------------------------------------------------------------------------------


async def transfer_targets(session: AsyncSession, plant: Plant, actor: Actor) -> TransferTargetsRead:
    """The active queues (skill groups, departments' seats, expert centres), open now or not, and the
    colleagues who handle contacts with their routing status, the ready first."""
    actor.require(Permission.HANDLE_CONTACTS)
    calendar = await workcal.load(session, timezone=plant.settings.timezone)
    local = clock.now().astimezone(plant.zone)
    queues = [
        TransferQueue(id=row.id, name=row.name, kind=row.kind,
                      open=(info := plant.routing.queues.get(row.id)) is not None and info.open_at(local, calendar))
        for row in await routing.list_queues(session) if row.is_active
    ]  # fmt: skip
    colleagues = [
        Colleague(user_id=user.id, username=user.username, name=user.display_name, status=_status(plant, user.id))
        for user in await routing.contact_handlers(session) if user.id != actor.user_id
    ]  # fmt: skip
    colleagues.sort(key=lambda colleague: colleague.status != "ready")
    return TransferTargetsRead(queues=queues, colleagues=colleagues)


def _status(plant: Plant, user_id: int) -> str:
    try:
        return str(plant.routing.agent_json(user_id)["status"])
    except DomainError:  # the router is not in this process
        return "offline"


async def hold(call: PhoneCall, on: bool) -> None:
    talk = _talk(call)
    if talk.mix.third == "conference" and on:
        raise Conflict("End the three-way call before holding.", error_id="conference_on")
    if talk.mix.third == "consult" and not on:
        raise Conflict("Hand the caller over, join all three or cancel the consultation first.", error_id="consult_on")
    talk.mix.hold = on
    await talk.apply()
    call.note("held" if on else "resumed")


async def hang_up(call: PhoneCall, actor: Actor) -> None:
    """The agent ends their own call (or stops dialling); a supervisor ends anyone's (the record says so)."""
    if call.agent_id == actor.user_id and (call.talk is None or call.talk.mix.talker == AGENT_LEG):
        await call.media.hang_up(AGENT_LEG)
        return
    actor.require(Permission.SUPERVISE)
    call.row.end_reason = "ended_by_supervisor"
    call.note("ended_by_supervisor", by=actor.user_id)
    await call.media.hang_up(call.media.caller)


async def transfer(call: PhoneCall, to: TransferIn) -> None:
    """Blind transfer: the caller waits afresh in a queue (a department's seat group and an expert centre
    are queues), or holds while a colleague's phone or an outside number rings. The agent is freed at
    once either way; a transfer nobody answers puts the caller back in the queue they came from."""
    talk = _agent_talk(call)
    if talk.mix.third is not None:
        raise Conflict("Hand the caller over, join all three or cancel the consultation first.", error_id="consult_on")
    if to.queue_id is not None:
        await _to_queue(call, talk, to.queue_id)
        return
    ring, label = await _dialled(call, to.target or "")
    call.note("transferring", target=label, agent_id=call.agent_id)
    talk.ring_talker(ring)
    await _agent_leaves(call, talk)


async def _to_queue(call: PhoneCall, talk: Talk, queue_id: int) -> None:
    if call.task_id is None or call.agent_id is None:
        raise Conflict("This call has no routing task to transfer.", error_id="call_not_connected")
    await call.plant.routing.transfer(call.task_id, call.agent_id, queue_id)
    call.row.queue_id = queue_id
    call.note("transferred", queue_id=queue_id, agent_id=call.agent_id)
    talk.requeue = True
    for leg in (THIRD_LEG, SUPERVISOR_LEG, AGENT_LEG):
        await call.media.hang_up(leg)


async def consult(call: PhoneCall, target: str) -> None:
    """The caller holds while the agent talks to `target` (a colleague's username or an outside number)."""
    talk = _agent_talk(call)
    if THIRD_LEG in talk.present:
        raise Conflict("A consultation is already on.", error_id="consult_on")
    ring, label = await _dialled(call, target)
    talk.mix.hold = True
    await talk.apply()
    call.note("consulting", target=label)
    if not await talk.dial(THIRD_LEG, ring):
        talk.mix.hold = False
        await talk.apply()
        raise Conflict("{target} did not answer.", error_id="not_answered", params={"target": target})
    talk.mix.third = "consult"
    await talk.apply()


async def end_consult(call: PhoneCall, how: ConsultEnding) -> None:
    """`complete` hands the caller to the consulted party (the agent is freed), `conference` joins all
    three, `cancel` hangs up on the consulted party and gives the caller back to the agent."""
    talk = _agent_talk(call)
    if THIRD_LEG not in talk.present:
        raise Conflict("No consultation is on.", error_id="no_consult")
    if how == "cancel":
        await call.media.hang_up(THIRD_LEG)
        talk.mix.hold = False
        await talk.apply()
    elif how == "conference":
        talk.mix.third, talk.mix.hold = "conference", False
        await talk.apply()
    else:
        talk.mix.talker, talk.mix.third, talk.mix.hold = THIRD_LEG, None, False
        await _agent_leaves(call, talk)
    call.note(f"consult_{how}")


async def _agent_leaves(call: PhoneCall, talk: Talk) -> None:
    """After a take-over or a completed transfer: the agent's phone is hung up and their task done."""
    await talk.apply()
    await call.media.hang_up(AGENT_LEG)
    if call.task_id is not None and call.agent_id is not None:
        await call.plant.routing.complete(call.task_id, call.agent_id, wrap_up=True)
    call.agent_id = None  # the call record keeps who answered


# ---- supervision --------------------------------------------------------------------------------------


async def supervise(call: PhoneCall, actor: Actor, mode: SupervisionMode) -> None:
    """Joins the supervisor's phone (it answers by itself) in `mode`, or changes the mode."""
    actor.require(Permission.SUPERVISE)
    talk = _talk(call)
    if talk.mix.talker == SUPERVISOR_LEG:
        raise Conflict("You have taken this call over; hang up to end it.", error_id="taken_over")
    if SUPERVISOR_LEG in talk.present and talk.supervisor_id != actor.user_id:
        raise Conflict("Another supervisor is on this call.", error_id="supervised")
    if mode == "leave":
        await call.media.hang_up(SUPERVISOR_LEG)
        return
    if SUPERVISOR_LEG not in talk.present:
        await _join(call, talk, actor)
        talk.supervisor_id = actor.user_id
    if mode == "take_over":
        talk.mix.talker, talk.mix.watch = SUPERVISOR_LEG, None
        await _agent_leaves(call, talk)
    else:
        talk.mix.watch = Watch(mode)
        await talk.apply()
    call.note(mode, supervisor_id=actor.user_id)


async def _join(call: PhoneCall, talk: Talk, actor: Actor) -> None:
    uri = f"sip:{actor.username}@{call.plant.front}"
    if not await talk.dial(SUPERVISOR_LEG, Ring(uri, {"Call-Info": f"<sip:{call.plant.front}>;answer-after=0"})):
        raise Conflict("Your phone did not answer; is it registered?", error_id="phone_not_answered")


def audit_supervision(session: Any, actor: Actor, call: PhoneCall, mode: str) -> None:
    audit.record(session, actor=actor, action="voice.supervise", target_type="routing_task",
                 target_id=call.task_id, after={"mode": mode, "live_id": call.live_id})  # fmt: skip


async def _dialled(call: PhoneCall, target: str) -> tuple[Ring, str]:
    """Whom a consultation or a transfer rings: a colleague's phone (a user name, even one of digits
    only), else an outside number through the trunk under the caller-ID policy; and what the call record
    keeps of it (the colleague's user name, never an outside number)."""
    from patientline.core.auth.models import User

    target, plant = target.strip(), call.plant
    async with plant.db.sessions() as session:
        found = await session.scalar(select(User).where(User.username == target, User.is_active.is_(True)))
    if found is not None:
        if found.id == call.agent_id:
            raise InvalidInput("That is you; give a colleague's user name.", details={"field": "target"})
        return Ring(f"sip:{found.username}@{plant.front}"), found.username
    if not OUTSIDE_NUMBER.fullmatch(target):
        raise InvalidInput("Give a colleague's user name or a phone number.", details={"field": "target"})
    return trunk.forwarded(plant.settings, plant.front, target), "outside"
