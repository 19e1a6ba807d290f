"""A chat conversation between the patient, the assistant and people: the assistant's turns, the
handoff to the routing engine (queue by intent, VIP priority, the transcript behind the task), the
emergency alert to supervisors, and the people's side: an agent joins, writes, hands back to the
assistant or ends; a supervisor watches and takes over.

Each step owns its transactions: a patient's message is stored and acknowledged before the assistant
answers, and a handoff asks the router (its own transaction) only after the assistant's words are
stored, then records where the task went."""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.assistant import bot
from patientline.channels import webchat
from patientline.channels.models import ChatConversation, ChatMessage, ChatState
from patientline.channels.policy import mask_phone
from patientline.channels.webchat import SUPERVISORS, Sender
from patientline.core import audit, clock, events
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.config import Settings
from patientline.core.db import Database
from patientline.core.errors import Conflict, DomainError, PermissionDenied
from patientline.core.events import Notification
from patientline.core.i18n import N_, gettext
from patientline.directory.models import Department, Team
from patientline.knowledge.live_index import LiveSearch
from patientline.patients import index as patient_index
from patientline.patients.models import Patient
from patientline.routing.models import QueueKind, RoutingQueue, RoutingTask, TaskState
from patientline.routing.schemas import Caller, TaskCreate

log = logging.getLogger(__name__)

INTENT_QUEUES = {"booking": "BOOKING", "complaint": "COMPLAINT"}
SUBJECT_CHARS = 60


class Routing(Protocol):
    """What a chat needs of the routing engine."""

    async def submit(self, data: TaskCreate) -> tuple[dict[str, Any], bool]: ...

    async def complete(self, task_id: int, user_id: int, *, wrap_up: bool) -> dict[str, Any]: ...

    async def abandon(self, task_id: int) -> dict[str, Any]: ...

    async def transfer(self, task_id: int, user_id: int, queue_id: int) -> dict[str, Any]: ...

    def staffed(self, queue_id: int) -> bool: ...


async def withdraw(routing: Routing | None, task_id: int | None) -> None:
    """A waiting chat's task leaves its queue (the patient left, a supervisor took the chat); an agent who
    took it meanwhile keeps it."""
    if routing is None or task_id is None:
        return
    with contextlib.suppress(DomainError):
        await routing.abandon(task_id)


async def greet(session: AsyncSession, conversation: ChatConversation, *, persona: str) -> None:
    name = persona or gettext("the hospital's assistant")
    text = gettext("Hello, this is {name}. Ask me about visits, departments, doctors' clinics or reports.")
    await webchat.append(session, conversation, sender=Sender.BOT, text=text.format(name=name))


async def answer(
    db: Database,
    *,
    conversation_id: int,
    text: str,
    choice: str | None,
    search: LiveSearch,
    settings: Settings,
    routing: Routing | None,
) -> None:
    """The assistant's answer to the patient's latest message, while the assistant has the chat."""
    async with db.sessions() as session, session.begin():
        conversation = await session.get(ChatConversation, conversation_id, with_for_update=True)
        if conversation is None or conversation.state != ChatState.BOT:
            return
        patient = bot.Patient(conversation.public_id, conversation.phone, conversation.patient_id)
        context = bot.Context(patient, search, settings.chat_answer_confidence, clock.today(settings.timezone))
        turn = await bot.respond(session, text=text, choice=choice, dialog=conversation.dialog, context=context)
        conversation.intent, conversation.dialog = turn.intent, turn.dialog
        conversation.work_order_id = turn.work_order_id or conversation.work_order_id
        for reply in turn.replies:
            await webchat.append(session, conversation, sender=Sender.BOT, kind=reply.kind, text=reply.text,
                                 data=reply.data)  # fmt: skip
        if turn.alarm is not None:
            _alert_supervisors(session, conversation, turn.alarm.category)
    if turn.handoff:
        await hand_to_person(db, conversation_id=conversation_id, intent=turn.intent, department=turn.department,
                             settings=settings, routing=routing)  # fmt: skip


def _alert_supervisors(session: AsyncSession, conversation: ChatConversation, category: str) -> None:
    conversation.emergency_at = clock.now()
    events.record(session, Notification(
        title=N_("Emergency words in a web chat"), body=category, level="danger",
        link=f"/chat/monitor/{conversation.public_id}", audience=SUPERVISORS,
    ))  # fmt: skip


# --- handoff -------------------------------------------------------------------------------------------


async def hand_to_person(
    db: Database,
    *,
    conversation_id: int,
    intent: str,
    settings: Settings,
    routing: Routing | None,
    department: str | None = None,
) -> None:
    """Queues the chat for a person: the seat group of the department the patient named, the intent's
    queue, the chat queue, the first open one with someone logged in to answer it; when there is none
    (closed, nobody there, or no router on this node), the patient is offered to leave a message."""
    async with db.sessions() as session:
        conversation = await session.get(ChatConversation, conversation_id)
        if conversation is None or conversation.state != ChatState.BOT:
            return
        queues = await _department_seats(session, department) + await _queues_for(session, intent, settings)
        caller = await _caller(session, conversation)
        subject = await _subject(session, conversation)
        vip = await _is_vip(session, conversation.patient_id)
        public_id = conversation.public_id
    task = None
    for queue_id in queues:
        if routing is None:
            break
        if not routing.staffed(queue_id):  # nobody logged in would answer: do not keep the patient waiting
            continue
        data = TaskCreate(queue_id=queue_id, channel="chat", vip=vip, caller=caller, subject=subject,
                          external_ref=f"chat:{public_id}")  # fmt: skip
        try:
            task, _ = await routing.submit(data)
            break
        except DomainError as exc:
            log.info("a chat queue did not take the chat", extra={"queue_id": queue_id, "error_id": exc.error_id})
    async with db.sessions() as session, session.begin():
        conversation = await session.get(ChatConversation, conversation_id, with_for_update=True)
        if conversation is None or conversation.state != ChatState.BOT:
            return
        if task is None:
            await _offer_message(session, conversation)
            return
        conversation.state, conversation.queue_id = ChatState.QUEUED.value, int(task["queue_id"])
        conversation.routing_task_id, conversation.dialog = int(task["id"]), {}
        text = gettext("You are number {position} in line. A person will be with you shortly.")
        position = task.get("position") or 1
        await webchat.append(session, conversation, sender=Sender.SYSTEM, kind="queued",
                             text=text.format(position=position), data={"position": position})  # fmt: skip


async def _offer_message(session: AsyncSession, conversation: ChatConversation) -> None:
    options = [{"choice": "message", "label": gettext("Leave a message")}]
    text = gettext("No one can take the chat now. Leave a message and we will call you back.")
    await webchat.append(session, conversation, sender=Sender.BOT, kind="choices", text=text, data={"options": options})


async def _queues_for(session: AsyncSession, intent: str, settings: Settings) -> list[int]:
    """The intent's own queue, then the chat queue; active ones only."""
    codes = [code for code in (INTENT_QUEUES.get(intent), settings.chat_queue) if code]
    rows = {row.code: row.id for row in await session.scalars(
        select(RoutingQueue).where(RoutingQueue.code.in_(codes), RoutingQueue.is_active.is_(True))
    )}  # fmt: skip
    return list(dict.fromkeys(rows[code] for code in codes if code in rows))


async def _department_seats(session: AsyncSession, department: str | None) -> list[int]:
    """Active seat-group queues whose team belongs to the named department."""
    if department is None:
        return []
    return list(await session.scalars(
        select(RoutingQueue.id)
        .join(Team, Team.id == RoutingQueue.team_id)
        .join(Department, Department.id == Team.department_id)
        .where(Department.name == department, Department.is_active.is_(True), RoutingQueue.is_active.is_(True),
               RoutingQueue.kind == QueueKind.DEPARTMENT_SEATS)
        .order_by(RoutingQueue.priority.desc(), RoutingQueue.id)
    ))  # fmt: skip


async def _caller(session: AsyncSession, conversation: ChatConversation) -> Caller:
    name = ""
    if conversation.patient_id is not None and (patient := await session.get(Patient, conversation.patient_id)):
        name = patient.name
    return Caller(name=name, phone=conversation.phone, patient_id=conversation.patient_id)


async def _subject(session: AsyncSession, conversation: ChatConversation) -> str:
    """The patient's first words, for the offer and the contact record."""
    for message in await webchat.messages_after(session, conversation.id, after=0, limit=20):
        if message.sender == Sender.PATIENT and message.text:
            return message.text[:SUBJECT_CHARS]
    return gettext("Web chat")


async def _is_vip(session: AsyncSession, patient_id: int | None) -> bool:
    if patient_id is None:
        return False
    return bool(await session.scalar(select(Patient.vip_level).where(Patient.id == patient_id)))


async def identified(session: AsyncSession, conversation: ChatConversation, *, phone: str) -> None:
    """The patient proved the number: the one patient in the index with it becomes the chat's patient."""
    found = await patient_index.find_by_phone(session, phone)
    conversation.patient_id = found[0].id if len(found) == 1 else None
    await webchat.append(session, conversation, sender=Sender.SYSTEM, kind="identified",
                         data={"phone_masked": mask_phone(phone)})  # fmt: skip


# --- people --------------------------------------------------------------------------------------------


def persona_of(actor: Actor, settings: Settings) -> str:
    """The name a person answers under: the hotline's persona, unless agents show their own names."""
    if settings.chat_agent_names:
        return actor.display_name
    return settings.chat_persona or gettext("Patient service")


async def joined(
    session: AsyncSession, *, actor: Actor, task: RoutingTask, contact_id: int | None, settings: Settings
) -> None:
    """The agent accepted the chat's task: the chat is theirs."""
    conversation = await _by_task(session, task.id)
    if conversation is None or conversation.state == ChatState.CLOSED or conversation.agent_id == actor.user_id:
        return
    conversation.state, conversation.agent_id = ChatState.AGENT.value, actor.user_id
    conversation.contact_id = contact_id or conversation.contact_id
    text = gettext("{name} has joined the chat.").format(name=persona_of(actor, settings))
    await webchat.append(session, conversation, sender=Sender.SYSTEM, kind="joined", text=text)


async def _by_task(session: AsyncSession, task_id: int) -> ChatConversation | None:
    return await session.scalar(select(ChatConversation).where(ChatConversation.routing_task_id == task_id))


def require_person(actor: Actor, conversation: ChatConversation) -> None:
    """The agent in the chat, or a supervisor who took it over."""
    if conversation.state == ChatState.CLOSED:
        raise Conflict("This chat has ended.", error_id="chat_closed")
    if actor.user_id is None or actor.user_id not in (conversation.agent_id, conversation.taken_over_by_id):
        raise PermissionDenied("This chat is not yours.", error_id="chat_not_yours")


async def agent_says(
    session: AsyncSession,
    *,
    actor: Actor,
    conversation: ChatConversation,
    text: str,
    client_id: str,
    settings: Settings,
) -> ChatMessage:
    actor.require(Permission.HANDLE_CONTACTS)
    existing = await webchat.by_client_id(session, conversation, client_id)
    if existing is not None:
        return existing
    require_person(actor, conversation)
    return await webchat.append(session, conversation, sender=Sender.AGENT, text=text, client_id=client_id,
                                author_id=actor.user_id, data={"name": persona_of(actor, settings)})  # fmt: skip


async def take_over(session: AsyncSession, *, actor: Actor, conversation: ChatConversation, settings: Settings) -> None:
    """A supervisor answers from now on; the agent, if any, stays able to read. Patients see a person
    join when the assistant had the chat; from an agent to the supervisor nothing shows, unless agents
    answer under their own names."""
    actor.require(Permission.SUPERVISE)
    if conversation.state == ChatState.CLOSED:
        raise Conflict("This chat has ended.", error_id="chat_closed")
    before = conversation.state
    conversation.state, conversation.taken_over_by_id, conversation.dialog = ChatState.AGENT.value, actor.user_id, {}
    audit.record(session, actor=actor, action="chat.take_over", target_type="chat", target_id=conversation.id,
                 before={"state": before, "agent_id": conversation.agent_id},
                 after={"taken_over_by": actor.user_id})  # fmt: skip
    if before == ChatState.BOT or settings.chat_agent_names:  # from one person to another: no seam shows
        text = gettext("{name} has joined the chat.").format(name=persona_of(actor, settings))
        await webchat.append(session, conversation, sender=Sender.SYSTEM, kind="joined", text=text)
    else:
        webchat.announce(session, conversation)


async def transferred(session: AsyncSession, *, conversation: ChatConversation, queue_id: int) -> None:
    """The agent passed the chat to another queue: it waits there for the next person."""
    conversation.state, conversation.queue_id = ChatState.QUEUED.value, queue_id
    conversation.agent_id = conversation.taken_over_by_id = None
    text = gettext("You are being passed to a colleague. Please wait a moment.")
    await webchat.append(session, conversation, sender=Sender.SYSTEM, kind="queued", text=text)


async def hand_back(session: AsyncSession, *, actor: Actor, conversation: ChatConversation) -> int | None:
    """The assistant answers again; answers the routing task to finish, if any."""
    require_person(actor, conversation)
    task_id = conversation.routing_task_id
    conversation.state, conversation.dialog = ChatState.BOT.value, {}
    conversation.agent_id = conversation.taken_over_by_id = conversation.routing_task_id = None
    text = gettext("The assistant is back. Ask me anything, or ask for a person again.")
    await webchat.append(session, conversation, sender=Sender.BOT, text=text)
    return task_id


async def end(session: AsyncSession, *, actor: Actor, conversation: ChatConversation) -> int | None:
    require_person(actor, conversation)
    task_id = conversation.routing_task_id
    await webchat.close(session, conversation, by="agent")
    return task_id


async def patient_left(session: AsyncSession, conversation: ChatConversation) -> tuple[int | None, bool]:
    """The patient ended the chat: the task to finish and whether it was still waiting (abandoned)."""
    task_id, waiting = conversation.routing_task_id, conversation.state == ChatState.QUEUED
    await webchat.close(session, conversation, by="patient")
    return task_id, waiting


async def close_idle(session: AsyncSession, *, idle_minutes: int, limit: int = 500) -> int:
    """Chats the assistant has that nobody wrote in for `idle_minutes` end (a person's chat is theirs
    to end; a waiting one leaves its queue by the queue's own maximum wait)."""
    cutoff = clock.now() - timedelta(minutes=idle_minutes)
    idle = await session.scalars(
        select(ChatConversation).where(ChatConversation.state == ChatState.BOT.value,
                                       ChatConversation.last_activity_at < cutoff).limit(limit)
    )  # fmt: skip
    closed = 0
    for conversation in idle:
        await webchat.close(session, conversation, by="idle")
        closed += 1
    return closed


async def stranded(session: AsyncSession, *, limit: int = 500) -> int:
    """Chats whose task left the queue with no one taking it (waited too long, withdrawn): the
    assistant has them again and offers to take a message."""
    rows = await session.execute(
        select(ChatConversation, RoutingTask.state)
        .join(RoutingTask, RoutingTask.id == ChatConversation.routing_task_id)
        .where(ChatConversation.state == ChatState.QUEUED.value, RoutingTask.state.not_in(TaskState.LIVE))
        .limit(limit)
    )
    count = 0
    for conversation, _state in rows:
        conversation.state, conversation.routing_task_id = ChatState.BOT.value, None
        await _offer_message(session, conversation)
        count += 1
    return count


async def live(session: AsyncSession, *, limit: int = 200) -> list[ChatConversation]:
    """Open conversations, the most recently active first (the supervisor's view)."""
    return list(await session.scalars(
        select(ChatConversation).where(ChatConversation.state != ChatState.CLOSED.value)
        .order_by(ChatConversation.last_activity_at.desc()).limit(limit)
    ))  # fmt: skip


async def mine(session: AsyncSession, *, actor: Actor) -> list[ChatConversation]:
    who = actor.user_id
    return list(await session.scalars(
        select(ChatConversation).where(
            ChatConversation.state == ChatState.AGENT.value,
            (ChatConversation.agent_id == who) | (ChatConversation.taken_over_by_id == who),
        ).order_by(ChatConversation.created_at)
    ))  # fmt: skip
