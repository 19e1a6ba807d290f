"""Web chat HTTP API, the people's side (`/api/chat-desk`): agents answer the chats the router gave
them, hand one back to the assistant, pass it to another queue or end it; supervisors watch every live
chat and take one over. Live updates reach them as `chat.activity` on `/api/events`."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.assistant import dialogue
from patientline.channels import webchat
from patientline.channels.models import ChatConversation
from patientline.channels.policy import mask_phone
from patientline.channels.webchat import ChatTyping, Sender
from patientline.channels.webchat_router import ClientId, PublicId, ReadIn
from patientline.core import events
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.errors import DomainError, PermissionDenied
from patientline.core.validation import MAX_ID, DbId, StrictModel
from patientline.knowledge.live_index import Filters
from patientline.knowledge.router import search_answer
from patientline.routing.engine import Engine
from patientline.web.deps import CurrentActor, Session, app_state
from patientline.web.responses import FastJSONResponse

router = APIRouter(prefix="/api/chat-desk", tags=["web chat"])

SUGGESTIONS = 3


class AgentMessageIn(StrictModel):
    client_id: ClientId
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class EndIn(StrictModel):
    wrap_up: bool = False
    disposition_ids: Annotated[list[DbId], Field(max_length=10)] = []  # given: the contact is coded and closed


class QueueIn(StrictModel):
    queue_id: DbId


def summary(conversation: ChatConversation) -> dict[str, Any]:
    return webchat.state_json(conversation) | {
        "phone_masked": mask_phone(conversation.phone) if conversation.phone else None,
        "patient_id": conversation.patient_id,
        "intent": conversation.intent,
        "emergency": conversation.emergency_at is not None,
        "agent_id": conversation.agent_id,
        "taken_over_by_id": conversation.taken_over_by_id,
        "contact_id": conversation.contact_id,
        "work_order_id": conversation.work_order_id,
        "started_at": conversation.created_at.isoformat(),
        "last_activity_at": conversation.last_activity_at.isoformat(),
        "rating": conversation.rating,
        "rating_comment": conversation.rating_comment,
    }


async def _visible(session: AsyncSession, actor: Actor, public_id: str) -> ChatConversation:
    """The agent in the chat, or a supervisor, may read it."""
    actor.require(Permission.HANDLE_CONTACTS)
    conversation = await webchat.get(session, public_id=public_id)
    mine = actor.user_id is not None and actor.user_id in (conversation.agent_id, conversation.taken_over_by_id)
    if not mine and not actor.can(Permission.SUPERVISE):
        raise PermissionDenied("This chat is not yours.", error_id="chat_not_yours")
    return conversation


def _engine(request: Request) -> Engine | None:
    return app_state(request).routing


@router.get("", summary="My chats; for supervisors also every live chat")
async def desk(actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.HANDLE_CONTACTS)
    async with session.begin():
        mine = [summary(c) for c in await dialogue.mine(session, actor=actor)]
        live = [summary(c) for c in await dialogue.live(session)] if actor.can(Permission.SUPERVISE) else None
    return FastJSONResponse({"mine": mine, "live": live})


@router.get("/{public_id}", summary="A chat and its messages after `after`")
async def read(public_id: PublicId, actor: CurrentActor, session: Session,
               after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0) -> Response:  # fmt: skip
    async with session.begin():
        conversation = await _visible(session, actor, public_id)
        messages = await webchat.messages_after(session, conversation.id, after=after)
        answer = summary(conversation) | {"messages": [webchat.message_json(m) for m in messages]}
    return FastJSONResponse(answer)


@router.post("/{public_id}/messages", status_code=201, summary="The agent writes (idempotent by client_id)")
async def write(
    public_id: PublicId, body: AgentMessageIn, actor: CurrentActor, request: Request, session: Session
) -> Response:
    async with session.begin():
        conversation = await _visible(session, actor, public_id)
        seen = conversation.last_seq
        message = await dialogue.agent_says(session, actor=actor, conversation=conversation, text=body.text,
                                            client_id=body.client_id, settings=app_state(request).settings)  # fmt: skip
        answer = {"message": webchat.message_json(message)}
    return FastJSONResponse(answer, status_code=201 if message.seq > seen else 200)


@router.post("/{public_id}/read", status_code=204, summary="The agent has seen messages up to seq")
async def mark_read(public_id: PublicId, body: ReadIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        conversation = await _visible(session, actor, public_id)
        dialogue.require_person(actor, conversation)
        await webchat.mark_read(session, conversation, seq=body.seq, side=Sender.AGENT)
    return Response(status_code=204)


@router.post("/{public_id}/typing", status_code=204, summary="The agent is typing")
async def typing(public_id: PublicId, actor: CurrentActor, request: Request, session: Session) -> Response:
    async with session.begin():
        dialogue.require_person(actor, await _visible(session, actor, public_id))
    event = ChatTyping(conversation=public_id, side=Sender.AGENT)
    await app_state(request).bus.publish([events.transient(event)])
    return Response(status_code=204)


@router.get("/{public_id}/suggestions", summary="Knowledge for the patient's last message")
async def suggestions(public_id: PublicId, actor: CurrentActor, request: Request, session: Session) -> Response:
    async with session.begin():
        conversation = await _visible(session, actor, public_id)
        last = await webchat.last_patient_text(session, conversation.id)
    if not last:
        return FastJSONResponse({"query": "", "no_good_match": True, "hits": []})
    search = app_state(request).knowledge
    result = await search.search(last, limit=SUGGESTIONS, filters=Filters())
    return FastJSONResponse(search_answer(search, last, result))


@router.post("/{public_id}/take-over", summary="A supervisor answers this chat from now on")
async def take_over(public_id: PublicId, actor: CurrentActor, request: Request, session: Session) -> Response:
    async with session.begin():
        conversation = await webchat.get(session, public_id=public_id)
        await dialogue.take_over(session, actor=actor, conversation=conversation, settings=app_state(request).settings)
        waiting_task = conversation.routing_task_id if conversation.agent_id is None else None
        answer = summary(conversation)
    await dialogue.withdraw(_engine(request), waiting_task)
    return FastJSONResponse(answer)


@router.post("/{public_id}/hand-back", summary="The assistant answers again")
async def hand_back(public_id: PublicId, actor: CurrentActor, request: Request, session: Session) -> Response:
    async with session.begin():
        conversation = await _visible(session, actor, public_id)
        agent_id = conversation.agent_id
        task_id = await dialogue.hand_back(session, actor=actor, conversation=conversation)
        answer = summary(conversation)
    await _finish_task(request, task_id, agent_id, wrap_up=False)
    return FastJSONResponse(answer)


@router.post("/{public_id}/end", summary="End the chat (the task finishes, wrap-up if asked)")
async def end(public_id: PublicId, actor: CurrentActor, request: Request, session: Session,
              body: EndIn | None = None) -> Response:  # fmt: skip
    body = body or EndIn()
    async with session.begin():
        conversation = await _visible(session, actor, public_id)
        agent_id, contact_id = conversation.agent_id, conversation.contact_id
        task_id = await dialogue.end(session, actor=actor, conversation=conversation)
        if body.disposition_ids and contact_id is not None:
            await _code_contact(session, actor, contact_id, body.disposition_ids)
        answer = summary(conversation)
    await _finish_task(request, task_id, agent_id, wrap_up=body.wrap_up)
    return FastJSONResponse(answer)


async def _code_contact(session: AsyncSession, actor: Actor, contact_id: int, codes: list[int]) -> None:
    from patientline.contacts import service as contacts

    contact = await contacts.get_contact(session, contact_id)
    await contacts.close(session, actor=actor, contact_id=contact_id, expected_version=contact.version,
                         disposition_ids=codes)  # fmt: skip


async def _finish_task(request: Request, task_id: int | None, agent_id: int | None, *, wrap_up: bool) -> None:
    engine = _engine(request)
    if task_id is None or agent_id is None or engine is None:
        return
    from patientline.routing.router import end_contact  # the contact record's end, as for any routed task

    with contextlib.suppress(DomainError):  # finished already (the agent bar, a supervisor)
        await engine.complete(task_id, agent_id, wrap_up=wrap_up)
    async with app_state(request).db.sessions() as session:
        await end_contact(session, task_id)


@router.post("/{public_id}/transfer", summary="Pass the chat to another queue")
async def transfer(
    public_id: PublicId, body: QueueIn, actor: CurrentActor, request: Request, session: Session
) -> Response:
    engine = _engine(request)
    async with session.begin():
        conversation = await _visible(session, actor, public_id)
        dialogue.require_person(actor, conversation)
        task_id, agent_id = conversation.routing_task_id, conversation.agent_id
    if engine is None or task_id is None or agent_id is None:
        raise PermissionDenied("Only a chat an agent took from a queue can be passed on.", error_id="chat_not_routed")
    task = await engine.transfer(task_id, agent_id, body.queue_id)
    async with session.begin():
        conversation = await webchat.get(session, public_id=public_id)
        await dialogue.transferred(session, conversation=conversation, queue_id=int(task["queue_id"]))
        answer = summary(conversation)
    return FastJSONResponse(answer)
