"""Web chat, the patient's side: sessions, messages numbered per conversation, read marks, pictures,
identification by a one-time SMS code, the rating, the end.

A patient's browser holds the conversation's `public_id` and a secret; only the secret's hash is kept,
and a wrong or unknown pair gets the same refusal. Every message is stored before it is acknowledged,
numbered by one atomic UPDATE (`seq`), and a patient's resend with the same `client_id` answers the
message already stored, so a reconnecting browser neither loses nor doubles anything."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.channels import sms
from patientline.channels.models import ChatConversation, ChatImage, ChatMessage, ChatState
from patientline.core import clock, events
from patientline.core.auth.permissions import Permission
from patientline.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from patientline.core.events import Audience, Event
from patientline.knowledge.images import sniff

CODE_TEMPLATE = "chat_code"
CODE_MINUTES = 5
CODE_ATTEMPTS = 5
IMAGE_MAX_BYTES = 2 * 1024 * 1024
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
IMAGE_PATH = "/chat/images/"
PAGE = 200
SUPERVISORS = Audience(permission=Permission.SUPERVISE)


class Sender:
    PATIENT = "patient"
    BOT = "bot"
    AGENT = "agent"
    SYSTEM = "system"


class ChatActivity(Event):
    """Something new in a conversation: messages up to `last_seq`, its state, read marks (`state_json`).
    Logged, and carries no text: each side reads what it may see."""

    type: ClassVar[str] = "chat.activity"
    conversation: str
    state: str
    last_seq: int
    agent_read_seq: int
    patient_read_seq: int
    identified: bool
    rating: int | None


class ChatPosted(Event):
    """A message as the patient's stream shows it, handed to the stream on this and the other nodes so
    that it need not read it back (transient: never logged, and no user's stream sees it)."""

    type: ClassVar[str] = "chat.posted"
    conversation: str
    message: dict[str, Any]


class ChatTyping(Event):
    """Someone is typing (not logged: it only matters now)."""

    type: ClassVar[str] = "chat.typing"
    conversation: str
    side: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def announce(session: AsyncSession, conversation: ChatConversation) -> None:
    """Tells the patient's stream, supervisors and the agent in the chat that the conversation moved."""
    seen = ChatActivity(**state_json(conversation), audience=SUPERVISORS)
    events.record(session, seen)
    if conversation.agent_id is not None:
        events.record(session, seen.model_copy(update={"audience": Audience(user_id=conversation.agent_id)}))


# --- sessions ----------------------------------------------------------------------------------------


async def start(session: AsyncSession, *, ip: str, locale: str) -> tuple[ChatConversation, str]:
    """A new conversation and the secret its browser proves itself with (shown this once)."""
    secret = secrets.token_urlsafe(32)
    conversation = ChatConversation(public_id=uuid.uuid4().hex, secret_hash=_hash(secret), ip=ip[:64],
                                    locale=locale, state=ChatState.BOT.value, dialog={}, last_seq=0)  # fmt: skip
    session.add(conversation)
    await session.flush()
    return conversation, secret


async def authenticate(session: AsyncSession, *, public_id: str, secret: str) -> ChatConversation:
    conversation = await session.scalar(select(ChatConversation).where(ChatConversation.public_id == public_id))
    if conversation is None or not hmac.compare_digest(conversation.secret_hash, _hash(secret)):
        raise PermissionDenied("This chat session is not valid. Start a new chat.", error_id="chat_session_invalid")
    return conversation


async def get(session: AsyncSession, *, public_id: str) -> ChatConversation:
    conversation = await session.scalar(select(ChatConversation).where(ChatConversation.public_id == public_id))
    if conversation is None:
        raise NotFound("No such chat.", details={"conversation": public_id})
    return conversation


def require_open(conversation: ChatConversation) -> None:
    if conversation.state == ChatState.CLOSED:
        raise Conflict("This chat has ended. Start a new chat to write again.", error_id="chat_closed")


# --- messages ----------------------------------------------------------------------------------------


async def append(
    session: AsyncSession,
    conversation: ChatConversation,
    *,
    sender: str,
    text: str = "",
    kind: str = "text",
    data: dict[str, Any] | None = None,
    client_id: str | None = None,
    author_id: int | None = None,
) -> ChatMessage:
    """Stores the next message of the conversation and announces it."""
    now = clock.now()
    seq = (
        await session.execute(
            update(ChatConversation)
            .where(ChatConversation.id == conversation.id)
            .values(last_seq=ChatConversation.last_seq + 1, last_activity_at=now)
            .returning(ChatConversation.last_seq)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one()
    conversation.last_seq, conversation.last_activity_at = seq, now
    message = ChatMessage(conversation_id=conversation.id, seq=seq, client_id=client_id, sender=sender,
                          author_id=author_id, kind=kind, text=text, data=data or {}, created_at=now)  # fmt: skip
    session.add(message)
    await session.flush()
    posted = ChatPosted(conversation=conversation.public_id, message=message_json(message), audience=events.INTERNAL)
    events.record_transient(session, posted)
    announce(session, conversation)
    return message


async def by_client_id(session: AsyncSession, conversation: ChatConversation, client_id: str) -> ChatMessage | None:
    return await session.scalar(
        select(ChatMessage).where(ChatMessage.conversation_id == conversation.id, ChatMessage.client_id == client_id)
    )


async def post_patient_text(
    session: AsyncSession, conversation: ChatConversation, *, client_id: str, text: str, data: dict[str, Any]
) -> tuple[ChatMessage, bool]:
    """The patient's message, stored; a resend (same `client_id`) answers the stored one and False."""
    existing = await by_client_id(session, conversation, client_id)
    if existing is not None:
        return existing, False
    require_open(conversation)
    return await _once(session, conversation, client_id, sender=Sender.PATIENT, text=text, data=data)


async def _once(
    session: AsyncSession, conversation: ChatConversation, client_id: str, **message: Any
) -> tuple[ChatMessage, bool]:
    """Appends the message unless a resend that crossed this one stored it first (then that one)."""
    mark = events.checkpoint(session)
    try:
        async with session.begin_nested():
            return await append(session, conversation, client_id=client_id, **message), True
    except IntegrityError:
        events.rollback_to(session, mark)
        session.expire(conversation)
        existing = await by_client_id(session, conversation, client_id)
        if existing is None:
            raise
        return existing, False


async def messages_after(
    session: AsyncSession, conversation_id: int, *, after: int, limit: int = PAGE
) -> list[ChatMessage]:
    return list(
        await session.scalars(
            select(ChatMessage)
            .where(ChatMessage.conversation_id == conversation_id, ChatMessage.seq > after)
            .order_by(ChatMessage.seq)
            .limit(limit)
        )
    )


async def last_patient_text(session: AsyncSession, conversation_id: int) -> str:
    """What the patient wrote last (pictures and buttons without words aside), or ""."""
    text = await session.scalar(
        select(ChatMessage.text)
        .where(ChatMessage.conversation_id == conversation_id, ChatMessage.sender == Sender.PATIENT,
               ChatMessage.text != "")
        .order_by(ChatMessage.seq.desc())
        .limit(1)
    )  # fmt: skip
    return text or ""


def message_json(message: ChatMessage) -> dict[str, Any]:
    return {
        "seq": message.seq,
        "client_id": message.client_id,
        "sender": message.sender,
        "kind": message.kind,
        "text": message.text,
        "data": message.data,
        "at": message.created_at.isoformat(),
    }


async def mark_read(session: AsyncSession, conversation: ChatConversation, *, seq: int, side: str) -> None:
    """The patient (or the agent) has seen every message up to `seq`; marks only move forward."""
    column = ChatConversation.patient_read_seq if side == Sender.PATIENT else ChatConversation.agent_read_seq
    seq = min(seq, conversation.last_seq)
    if seq <= getattr(conversation, column.key):
        return
    await session.execute(
        update(ChatConversation)
        .where(ChatConversation.id == conversation.id, column < seq)
        .values({column: seq})
        .execution_options(synchronize_session=False)
    )
    setattr(conversation, column.key, seq)
    announce(session, conversation)


# --- pictures ----------------------------------------------------------------------------------------


async def post_patient_image(
    session: AsyncSession, conversation: ChatConversation, *, client_id: str, raw: bytes
) -> tuple[ChatMessage, bool]:
    existing = await by_client_id(session, conversation, client_id)
    if existing is not None:
        return existing, False
    require_open(conversation)
    content_type = sniff(raw)
    if content_type not in IMAGE_TYPES:
        raise InvalidInput("Send a picture: PNG, JPEG, GIF or WebP.", details=[{"field": "file", "problem": "type"}])
    if len(raw) > IMAGE_MAX_BYTES:
        raise InvalidInput("The picture is larger than {limit} MB.", params={"limit": IMAGE_MAX_BYTES // 1024 // 1024},
                           details=[{"field": "file", "problem": "too_large"}])  # fmt: skip
    image = ChatImage(conversation_id=conversation.id, key=secrets.token_urlsafe(32), content_type=content_type,
                      size=len(raw), data=raw)  # fmt: skip
    session.add(image)
    await session.flush()
    data = {"url": IMAGE_PATH + image.key, "content_type": content_type, "size": len(raw)}
    return await _once(session, conversation, client_id, sender=Sender.PATIENT, kind="image", data=data)


async def image(session: AsyncSession, *, key: str) -> ChatImage:
    row = await session.scalar(select(ChatImage).where(ChatImage.key == key))
    if row is None:
        raise NotFound("No such picture.")
    return row


# --- identification ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeSent:
    phone: str
    expires_at: datetime


async def send_code(session: AsyncSession, conversation: ChatConversation, *, phone: str) -> CodeSent:
    """Texts a six-digit code to `phone`; the number counts as the patient's once the code comes back."""
    require_open(conversation)
    code = f"{secrets.randbelow(1_000_000):06d}"
    message = await sms.send(session, phone=phone, template=CODE_TEMPLATE,
                             variables={"code": code, "minutes": CODE_MINUTES},
                             related_type="chat", related_id=conversation.id)  # fmt: skip
    expires_at = clock.now() + timedelta(minutes=CODE_MINUTES)
    conversation.code_phone, conversation.code_hash = message.phone, _hash(f"{conversation.public_id}:{code}")
    conversation.code_expires_at, conversation.code_attempts = expires_at, 0
    await session.flush()
    return CodeSent(phone=message.phone, expires_at=expires_at)


async def verify_code(session: AsyncSession, conversation: ChatConversation, *, code: str) -> str:
    """The number the code went to, now verified; a wrong, expired or overused code is refused."""
    require_open(conversation)
    expires_at = conversation.code_expires_at
    if conversation.code_hash is None or conversation.code_phone is None or expires_at is None:
        raise Conflict("Ask for a code first.", error_id="chat_no_code")
    if clock.now() >= expires_at or conversation.code_attempts >= CODE_ATTEMPTS:
        raise Conflict("The code has expired. Ask for a new one.", error_id="chat_code_expired")
    conversation.code_attempts += 1
    if not hmac.compare_digest(conversation.code_hash, _hash(f"{conversation.public_id}:{code}")):
        await session.flush()
        raise InvalidInput("The code is not right.", details=[{"field": "code", "problem": "wrong"}])
    conversation.phone, conversation.phone_verified_at = conversation.code_phone, clock.now()
    conversation.code_hash = conversation.code_expires_at = None
    await session.flush()
    return conversation.phone


# --- the end -----------------------------------------------------------------------------------------


async def close(session: AsyncSession, conversation: ChatConversation, *, by: str) -> None:
    if conversation.state == ChatState.CLOSED:
        return
    conversation.state, conversation.closed_at, conversation.closed_by = ChatState.CLOSED.value, clock.now(), by
    conversation.dialog = {}
    await append(session, conversation, sender=Sender.SYSTEM, kind="closed", data={"by": by})


async def rate(session: AsyncSession, conversation: ChatConversation, *, rating: int, comment: str) -> None:
    """1–5 and a comment, once, at the end or after it."""
    if conversation.rating is not None:
        raise Conflict("This chat has been rated already. Thank you.", error_id="chat_rated")
    conversation.rating, conversation.rating_comment = rating, comment
    await session.flush()
    announce(session, conversation)


STATE_KEYS = ("conversation", "state", "last_seq", "agent_read_seq", "patient_read_seq", "identified", "rating")


def state_json(conversation: ChatConversation) -> dict[str, Any]:
    """What both sides show of the chat (and what `ChatActivity` carries)."""
    return {
        "conversation": conversation.public_id,
        "state": conversation.state,
        "last_seq": conversation.last_seq,
        "agent_read_seq": conversation.agent_read_seq,
        "patient_read_seq": conversation.patient_read_seq,
        "identified": conversation.phone is not None,
        "rating": conversation.rating,
    }


async def purge_before(session: AsyncSession, *, cutoff: datetime, limit: int = 1000) -> int:
    """Deletes chats that ended before `cutoff`, with their messages and pictures (retention: they hold
    the patient's own words); the contact record keeps what statistics need."""
    ids = list(await session.scalars(
        select(ChatConversation.id).where(ChatConversation.closed_at < cutoff).limit(limit)
    ))  # fmt: skip
    if ids:
        await session.execute(delete(ChatMessage).where(ChatMessage.conversation_id.in_(ids)))
        await session.execute(delete(ChatImage).where(ChatImage.conversation_id.in_(ids)))
        await session.execute(delete(ChatConversation).where(ChatConversation.id.in_(ids)))
    return len(ids)
