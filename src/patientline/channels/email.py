"""Sending email through the outbox: `send` writes the message and its delivery job in the
caller's transaction; the worker delivers it (sink or SMTP) with retries."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.channels import gateways, policy
from patientline.channels.events import MESSAGING, EmailFailed, EmailSent
from patientline.channels.gateways import OutboundEmail, PermanentFailure, TemporaryFailure
from patientline.channels.models import EmailMessage, EmailStatus
from patientline.core import audit, clock, events, jobs
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.errors import InvalidInput, NotFound
from patientline.core.validation import CONTROL_CHARACTERS, MAX_ID

DELIVER = "email.deliver"
ADDRESS = re.compile(r"[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+")
MAX_SUBJECT = 200
MAX_BODY = 100_000


def mailbox(raw: str, *, field: str = "to") -> str:
    address = raw.strip()
    if len(address) > 254 or not ADDRESS.fullmatch(address):
        raise InvalidInput("This is not an email address.", details={field: ["invalid"]})
    return address


def _check(subject: str, body: str, related: tuple[str | None, int | None], idempotency_key: str | None) -> None:
    problems: dict[str, list[str]] = {}
    related_type, related_id = related
    if related_type is not None and not 0 < len(related_type) <= 40:
        problems["related_type"] = ["length"]
    if not subject.strip() or len(subject) > MAX_SUBJECT or CONTROL_CHARACTERS.search(subject) or "\n" in subject:
        problems["subject"] = ["invalid"]
    if not body.strip() or len(body) > MAX_BODY:
        problems["body"] = ["invalid"]
    if related_id is not None and not 1 <= related_id <= MAX_ID:
        problems["related_id"] = ["out_of_range"]
    if idempotency_key is not None and not 0 < len(idempotency_key) <= 200:
        problems["idempotency_key"] = ["length"]
    if problems:
        raise InvalidInput("Some fields are missing or not valid.", details=problems)


async def send(
    session: AsyncSession,
    *,
    to: str,
    subject: str,
    body: str,
    related_type: str | None = None,
    related_id: int | None = None,
    idempotency_key: str | None = None,
) -> EmailMessage:
    """Queues an email; the same `idempotency_key` returns the first message."""
    _check(subject, body, (related_type, related_id), idempotency_key)
    if idempotency_key:
        existing = await _by_key(session, idempotency_key)
        if existing is not None:
            return existing
    message = EmailMessage(
        to=mailbox(to),
        subject=subject.strip(),
        body=body,
        status=EmailStatus.QUEUED.value,
        attempts=0,
        related_type=related_type,
        related_id=related_id,
        idempotency_key=idempotency_key,
        created_at=clock.now(),
    )
    try:
        async with session.begin_nested():
            session.add(message)
            await session.flush()
    except IntegrityError:
        existing = await _by_key(session, idempotency_key) if idempotency_key else None
        if existing is None:
            raise
        return existing
    await jobs.enqueue(
        session,
        kind=DELIVER,
        payload={"message_id": message.id},
        max_attempts=policy.settings().email_max_attempts,
        idempotency_key=f"{DELIVER}:{message.id}",
    )
    return message


async def _by_key(session: AsyncSession, key: str) -> EmailMessage | None:
    return await session.scalar(select(EmailMessage).where(EmailMessage.idempotency_key == key))


async def send_test(session: AsyncSession, *, actor: Actor, to: str, subject: str, body: str) -> EmailMessage:
    actor.require(Permission.MANAGE_MESSAGING)
    message = await send(session, to=to, subject=subject, body=body, related_type="test")
    audit.record(session, actor=actor, action="email.test", target_type="email_message", target_id=message.id)
    return message


@jobs.job_handler(DELIVER)
async def deliver(session: AsyncSession, payload: dict[str, Any]) -> None:
    message = await session.get(EmailMessage, int(payload["message_id"]))
    if message is None or message.status not in (EmailStatus.QUEUED, EmailStatus.SENDING):
        return
    config = policy.settings()
    gateway = gateways.email_gateway(config)
    outbound = OutboundEmail(message_id=message.id, to=message.to, subject=message.subject, body=message.body)
    try:
        provider_id = await gateway.send(outbound)
    except PermanentFailure as exc:
        _fail(session, message, str(exc))
        return
    except TemporaryFailure as exc:
        if message.attempts + 1 >= config.email_max_attempts:
            _fail(session, message, f"{exc} ({message.attempts + 1} attempts)")
            return
        await _note_attempt(session, message.id, str(exc))
        raise
    message.status, message.provider, message.provider_id = EmailStatus.SENT.value, gateway.name, provider_id[:200]
    message.attempts += 1
    message.sent_at, message.last_error = clock.now(), None
    events.record(
        session,
        EmailSent(
            message_id=message.id, related_type=message.related_type, related_id=message.related_id, audience=MESSAGING
        ),
    )


def _fail(session: AsyncSession, message: EmailMessage, error: str) -> None:
    message.status, message.last_error, message.failed_at = EmailStatus.FAILED.value, error[:500], clock.now()
    message.attempts += 1
    events.record(
        session,
        EmailFailed(
            message_id=message.id,
            error=error[:300],
            related_type=message.related_type,
            related_id=message.related_id,
            audience=MESSAGING,
        ),
    )


async def _note_attempt(session: AsyncSession, message_id: int, error: str) -> None:
    """In a transaction of its own: the job's is rolled back when it raises for the retry."""
    async with AsyncSession(bind=session.bind) as side, side.begin():
        row = await side.get(EmailMessage, message_id)
        if row is not None:
            row.attempts += 1
            row.last_error = error[:500]
            row.status = EmailStatus.SENDING.value


# ---- the outbox ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmailFilter:
    status: str | None = None
    to: str | None = None
    related_type: str | None = None
    related_id: int | None = None
    limit: int = 50
    offset: int = 0


def _filtered(where: EmailFilter) -> Select[EmailMessage]:
    query = select(EmailMessage)
    if where.status:
        query = query.where(EmailMessage.status == where.status)
    if where.to:
        query = query.where(EmailMessage.to == where.to.strip())
    if where.related_type:
        query = query.where(EmailMessage.related_type == where.related_type)
    if where.related_id is not None:
        query = query.where(EmailMessage.related_id == where.related_id)
    return query


async def list_messages(session: AsyncSession, *, where: EmailFilter) -> tuple[list[EmailMessage], int]:
    query = _filtered(where)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(EmailMessage.id.desc()).limit(where.limit).offset(where.offset))
    return list(rows), int(total or 0)


async def get_message(session: AsyncSession, *, message_id: int) -> EmailMessage:
    row = await session.get(EmailMessage, message_id)
    if row is None:
        raise NotFound("This message does not exist.", details={"message_id": message_id})
    return row


async def status_counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(EmailMessage.status, func.count()).group_by(EmailMessage.status))
    return {status: int(count) for status, count in rows.tuples()}
