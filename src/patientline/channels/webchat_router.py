"""Web chat HTTP API, the patient's side (`/api/chat`, no login: the conversation's secret in the
`X-Chat-Secret` header) and its live stream.

The stream is server-sent events read with `fetch` (the secret stays out of the URL): each message
once, in order, with its `seq` as the event id; a reconnect with `Last-Event-ID` (or `after`) resumes
after it. Flooding is refused per session and per address (429), oversized text by the schema (422),
a forged or unknown session alike (403)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, File, Form, Header, Query, Request, UploadFile
from fastapi.responses import Response, StreamingResponse
from pydantic import Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.assistant import dialogue
from patientline.channels import webchat
from patientline.channels.models import ChatConversation, ChatMessage, ChatState
from patientline.channels.policy import mask_phone
from patientline.channels.webchat import ChatActivity, ChatPosted, ChatTyping, Sender
from patientline.core import clock, events
from patientline.core.errors import DomainError, InvalidInput
from patientline.core.i18n import SUPPORTED, current_locale
from patientline.core.ratelimit import Budget
from patientline.core.validation import MAX_ID, StrictModel, id_from_header
from patientline.web.deps import Session, app_state, client_ip
from patientline.web.responses import FastJSONResponse
from patientline.web.state import AppState

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/chat", tags=["web chat"])

PublicId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
Secret = Annotated[str, Header(alias="X-Chat-Secret", min_length=1, max_length=100)]
CLIENT_ID = r"^[A-Za-z0-9_-]{8,64}$"
ClientId = Annotated[str, StringConstraints(pattern=CLIENT_ID)]
TEXT_LIMIT = 1000
KEEPALIVE_S = 15.0
STREAM_MAX_S = 600.0
STREAMS = "chat"
STREAM_EVENTS = frozenset({ChatPosted.type, ChatActivity.type, ChatTyping.type})


class RateLimited(DomainError):
    status_code = 429
    error_id = "rate_limited"


class StartIn(StrictModel):
    locale: Literal["zh_CN", "en"] | None = None


class MessageIn(StrictModel):
    client_id: ClientId
    text: Annotated[str, StringConstraints(strip_whitespace=True, max_length=TEXT_LIMIT)] = ""
    choice: Annotated[str, StringConstraints(pattern=r"^(item:\d{1,12}|human|message)$")] | None = None


class ReadIn(StrictModel):
    seq: Annotated[int, Field(ge=0, le=MAX_ID)]


class PhoneIn(StrictModel):
    phone: Annotated[str, StringConstraints(strip_whitespace=True, min_length=5, max_length=20)]


class CodeIn(StrictModel):
    code: Annotated[str, StringConstraints(pattern=r"^\d{6}$")]


class RatingIn(StrictModel):
    rating: Annotated[int, Field(ge=1, le=5)]
    comment: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


def spend(state: AppState, kind: Literal["session", "address", "start", "signal"], key: str) -> None:
    """One unit of the chat's budgets (per process, see core.ratelimit), sized from the settings."""
    budget = state.budgets.get(f"chat.{kind}")
    if budget is None:
        settings = state.settings
        per_minute = settings.chat_messages_per_minute
        sizes = {
            "session": (per_minute, 60.0),  # messages, pictures, codes, asking for a person
            "address": (per_minute * 5, 60.0),
            "start": (settings.chat_sessions_per_hour, 3600.0),
            "signal": (per_minute * 3, 60.0),  # typing and read marks
        }
        limit, window_s = sizes[kind]
        budget = state.budgets[f"chat.{kind}"] = Budget(limit, window_s=window_s)
    if not budget.allow(key):
        raise RateLimited("Too many messages. Please wait a moment and try again.", details={"limit": kind})


def _address(request: Request) -> str:
    return client_ip(request) or "unknown"


async def _conversation(session: AsyncSession, public_id: str, secret: str) -> ChatConversation:
    conversation = await webchat.authenticate(session, public_id=public_id, secret=secret)
    current_locale.set(conversation.locale)
    return conversation


def _ack(message: ChatMessage, created: bool) -> Response:
    return FastJSONResponse({"message": webchat.message_json(message)}, status_code=201 if created else 200)


# --- the conversation ----------------------------------------------------------------------------------


@router.post("/sessions", status_code=201, summary="Start a chat (answers its id and secret once)")
async def start(request: Request, session: Session, body: StartIn | None = None) -> Response:
    state = app_state(request)
    spend(state, "start", _address(request))
    locale = body.locale if body and body.locale in SUPPORTED else current_locale.get()
    current_locale.set(locale)
    async with session.begin():
        conversation, secret = await webchat.start(session, ip=_address(request), locale=locale)
        await dialogue.greet(session, conversation, persona=state.settings.chat_persona)
        answer = {"secret": secret, **webchat.state_json(conversation)}
    return FastJSONResponse(answer, status_code=201)


@router.get("/{public_id}", summary="The chat's state and messages after `after`")
async def read(public_id: PublicId, secret: Secret, session: Session,
               after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0) -> Response:  # fmt: skip
    async with session.begin():
        conversation = await _conversation(session, public_id, secret)
        messages = await webchat.messages_after(session, conversation.id, after=after)
        answer = webchat.state_json(conversation) | {"messages": [webchat.message_json(m) for m in messages]}
    return FastJSONResponse(answer)


@router.post("/{public_id}/messages", status_code=201, summary="The patient writes (idempotent by client_id)")
async def post_message(
    public_id: PublicId, body: MessageIn, secret: Secret, request: Request, session: Session
) -> Response:
    state = app_state(request)
    if not body.text and body.choice is None:
        raise InvalidInput("Write a message first.", details=[{"field": "text", "problem": "empty"}])
    async with session.begin():
        conversation = await _conversation(session, public_id, secret)
        existing = await webchat.by_client_id(session, conversation, body.client_id)
        if existing is None:
            spend(state, "session", public_id)
            spend(state, "address", _address(request))
        data = {"choice": body.choice} if body.choice else {}
        message, created = await webchat.post_patient_text(
            session, conversation, client_id=body.client_id, text=body.text, data=data
        )
        conversation_id, in_bot = conversation.id, conversation.state == ChatState.BOT
    if created and in_bot:
        await _assistant(state, conversation_id, body.text, body.choice)
    return _ack(message, created)


async def _assistant(state: AppState, conversation_id: int, text: str, choice: str | None) -> None:
    """The assistant's answer; the patient's message is stored whatever happens here."""
    try:
        await dialogue.answer(state.db, conversation_id=conversation_id, text=text, choice=choice,
                              search=state.knowledge, settings=state.settings, routing=state.routing)  # fmt: skip
    except Exception:
        log.exception("the chat assistant failed to answer", extra={"conversation_id": conversation_id})


@router.post("/{public_id}/images", status_code=201, summary="The patient sends a picture")
async def post_image(
    public_id: PublicId,
    secret: Secret,
    request: Request,
    session: Session,
    file: Annotated[UploadFile, File()],
    client_id: Annotated[str, Form(pattern=CLIENT_ID)],
) -> Response:
    state = app_state(request)
    raw = await file.read(webchat.IMAGE_MAX_BYTES + 1)
    async with session.begin():
        conversation = await _conversation(session, public_id, secret)
        spend(state, "session", public_id)
        message, created = await webchat.post_patient_image(session, conversation, client_id=client_id, raw=raw)
    return _ack(message, created)


@router.post("/{public_id}/read", status_code=204, summary="The patient has seen messages up to seq")
async def mark_read(public_id: PublicId, body: ReadIn, secret: Secret, request: Request, session: Session) -> Response:
    spend(app_state(request), "signal", public_id)
    async with session.begin():
        conversation = await _conversation(session, public_id, secret)
        await webchat.mark_read(session, conversation, seq=body.seq, side=Sender.PATIENT)
    return Response(status_code=204)


@router.post("/{public_id}/typing", status_code=204, summary="The patient is typing")
async def typing(public_id: PublicId, secret: Secret, request: Request, session: Session) -> Response:
    spend(app_state(request), "signal", public_id)
    async with session.begin():
        conversation = await _conversation(session, public_id, secret)
        audience = conversation.agent_id or conversation.taken_over_by_id
    if audience is not None:
        event = ChatTyping(conversation=public_id, side=Sender.PATIENT, audience=events.Audience(user_id=audience))
        await app_state(request).bus.publish([events.transient(event)])
    return Response(status_code=204)


@router.post("/{public_id}/human", summary="The patient asks for a person")
async def ask_for_person(public_id: PublicId, secret: Secret, request: Request, session: Session) -> Response:
    state = app_state(request)
    spend(state, "session", public_id)
    async with session.begin():
        conversation = await _conversation(session, public_id, secret)
        webchat.require_open(conversation)
        conversation_id = conversation.id
    await dialogue.hand_to_person(state.db, conversation_id=conversation_id, intent="human", settings=state.settings,
                                  routing=state.routing)  # fmt: skip
    async with session.begin():
        return FastJSONResponse(webchat.state_json(await _conversation(session, public_id, secret)))


@router.post("/{public_id}/code", summary="Text a one-time code to the patient's mobile")
async def send_code(public_id: PublicId, body: PhoneIn, secret: Secret, request: Request, session: Session) -> Response:
    spend(app_state(request), "session", public_id)
    async with session.begin():
        conversation = await _conversation(session, public_id, secret)
        sent = await webchat.send_code(session, conversation, phone=body.phone)
    return FastJSONResponse({"phone_masked": mask_phone(sent.phone), "expires_at": sent.expires_at.isoformat()})


@router.post("/{public_id}/verify", summary="The code from the text: the chat is identified by that number")
async def verify(public_id: PublicId, body: CodeIn, secret: Secret, session: Session) -> Response:
    async with session.begin():
        conversation = await _conversation(session, public_id, secret)
        phone = await webchat.verify_code(session, conversation, code=body.code)
        await dialogue.identified(session, conversation, phone=phone)
        answer = webchat.state_json(conversation)
    return FastJSONResponse(answer)


@router.post("/{public_id}/end", summary="The patient ends the chat")
async def end(public_id: PublicId, secret: Secret, request: Request, session: Session) -> Response:
    async with session.begin():
        conversation = await _conversation(session, public_id, secret)
        task_id, waiting = await dialogue.patient_left(session, conversation)
        answer = webchat.state_json(conversation)
    if waiting:  # with an agent, the agent ends the task
        await dialogue.withdraw(app_state(request).routing, task_id)
    return FastJSONResponse(answer)


@router.post("/{public_id}/rating", summary="Rate the chat: 1–5 and a comment")
async def rate(public_id: PublicId, body: RatingIn, secret: Secret, session: Session) -> Response:
    async with session.begin():
        conversation = await _conversation(session, public_id, secret)
        await webchat.rate(session, conversation, rating=body.rating, comment=body.comment)
        answer = webchat.state_json(conversation)
    return FastJSONResponse(answer)


# --- the live stream -----------------------------------------------------------------------------------


@router.get("/{public_id}/stream", response_class=StreamingResponse, summary="Messages as they come (SSE)")
async def stream(
    public_id: PublicId,
    secret: Secret,
    request: Request,
    session: Session,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
) -> StreamingResponse:
    state = app_state(request)
    async with session.begin():
        conversation_id = (await _conversation(session, public_id, secret)).id
    start_after = after if after is not None else id_from_header(last_event_id) or 0
    subscription = _streams(state).open(public_id)  # before reading: nothing falls between
    return StreamingResponse(
        Frames(state, subscription, conversation_id, start_after).run(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _streams(state: AppState) -> events.Keyed:
    """The chat's fan-out on this node: one bus subscriber for every patient stream open here."""
    fanout = state.fanouts.get(STREAMS)
    if fanout is None:
        fanout = state.fanouts[STREAMS] = events.Keyed(state.bus, types=STREAM_EVENTS, key="conversation")
    return fanout


class Frames:
    """One patient's stream: what the database holds after `sent` on connecting (or after a gap), then
    what the bus brings: each message once and in order (`ChatPosted`), the chat's state when it changes
    (`ChatActivity`), typing notices. The database is read again only when a message is missing."""

    def __init__(self, state: AppState, subscription: events.Subscription, conversation_id: int, sent: int) -> None:
        self.state, self.subscription, self.conversation_id = state, subscription, conversation_id
        self.sent = sent
        self.shown: dict[str, Any] = {}

    async def run(self) -> AsyncIterator[bytes]:
        ends_at = clock.monotonic() + STREAM_MAX_S
        try:
            yield b"retry: 1000\n\n"
            async for frame in self._catch_up():
                yield frame
            while not self.subscription.overflowed and clock.monotonic() < ends_at:
                item = await _next(self.subscription)
                if item is None:
                    yield b": keepalive\n\n"
                    continue
                async for frame in self._on(item):
                    yield frame
        finally:
            self.subscription.close()

    async def _on(self, item: events.Published) -> AsyncIterator[bytes]:
        payload = item.payload
        if item.type == ChatTyping.type:
            yield b"event: typing\ndata: %s\n\n" % orjson.dumps(payload)
        elif item.type == ChatPosted.type:
            seq = payload["message"]["seq"]
            if seq == self.sent + 1:
                yield self._message(payload["message"])
            elif seq > self.sent:
                async for frame in self._catch_up():
                    yield frame
        elif payload["last_seq"] > self.sent:  # a message that did not come through (another node's gap)
            async for frame in self._catch_up():
                yield frame
        else:
            shown = {key: payload[key] for key in webchat.STATE_KEYS}
            if shown != self.shown:
                self.shown = shown
                yield b"event: state\ndata: %s\n\n" % orjson.dumps(shown)

    async def _catch_up(self) -> AsyncIterator[bytes]:
        while True:
            async with self.state.db.sessions() as session:
                conversation = await session.get(ChatConversation, self.conversation_id)
                messages = await webchat.messages_after(session, self.conversation_id, after=self.sent)
            if conversation is None:
                return
            for message in messages:
                yield self._message(webchat.message_json(message))
            if len(messages) < webchat.PAGE:
                break
        shown = webchat.state_json(conversation)
        if shown != self.shown:
            self.shown = shown
            yield b"event: state\ndata: %s\n\n" % orjson.dumps(shown)

    def _message(self, message: dict[str, Any]) -> bytes:
        self.sent = message["seq"]
        return b"id: %d\nevent: message\ndata: %s\n\n" % (self.sent, orjson.dumps(message))


async def _next(subscription: events.Subscription) -> events.Published | None:
    """The next event for this stream; None when it is time for a keep-alive."""
    try:
        async with asyncio.timeout(KEEPALIVE_S):
            return await subscription.queue.get()
    except TimeoutError:
        return None
