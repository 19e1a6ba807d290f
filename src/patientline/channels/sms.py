"""Sending a text message: the one call other domains make (`send`), and the outbox queries.

`send` checks and renders now, writes the message and its delivery job in the caller's
transaction (the outbox), and never talks to a provider itself: the worker does, after commit.
Opted-out numbers and patients over the rate limit get a `suppressed` record and nothing is sent;
patient messages written in quiet hours are `held` until they end."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.channels import delivery, optouts, policy, sms_templates
from patientline.channels.models import Audience, SmsMessage, SmsStatus, SmsTemplate, SuppressReason
from patientline.core import audit, clock, jobs
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.config import Settings
from patientline.core.errors import InvalidInput, NotFound
from patientline.core.validation import MAX_ID

NOT_COUNTED = (SmsStatus.SUPPRESSED.value, SmsStatus.FAILED.value)  # towards the rate limit


async def send(
    session: AsyncSession,
    *,
    phone: str,
    template: str,
    variables: Mapping[str, object],
    patient_id: int | None = None,
    related_type: str | None = None,
    related_id: int | None = None,
    idempotency_key: str | None = None,
) -> SmsMessage:
    """Queues a text from `template` to `phone`; the same `idempotency_key` returns the first message.
    Raises InvalidInput (422) for a bad number, an unknown or inactive template, a missing variable."""
    _check_references(
        patient_id=patient_id, related_type=related_type, related_id=related_id, idempotency_key=idempotency_key
    )
    if idempotency_key:
        existing = await _by_key(session, idempotency_key)
        if existing is not None:
            return existing
    number = policy.mobile_number(phone)
    chosen = await _active_template(session, template)
    body, values = sms_templates.render(chosen, variables)
    config = policy.settings()
    text = policy.signed(body, config.sms_sign_name)
    now = clock.now()
    message = SmsMessage(
        phone=number,
        patient_id=patient_id,
        template_code=chosen.code,
        audience=chosen.audience,
        variables=values,
        text=text,
        parts=policy.sms_parts(text),
        status=SmsStatus.QUEUED.value,
        provider_ids=[],
        attempts=0,
        related_type=related_type,
        related_id=related_id,
        idempotency_key=idempotency_key,
        created_at=now,
    )
    await _decide(session, message, config)
    stored = await _insert(session, message)
    if stored is message and message.status != SmsStatus.SUPPRESSED:
        await jobs.enqueue(
            session,
            kind=delivery.DELIVER,
            payload={"message_id": message.id},
            run_at=message.send_after,
            max_attempts=config.sms_max_attempts,
            idempotency_key=f"{delivery.DELIVER}:{message.id}",
        )
    return stored


def _check_references(
    *, patient_id: int | None, related_type: str | None, related_id: int | None, idempotency_key: str | None
) -> None:
    problems: dict[str, list[str]] = {}
    for name, value in (("patient_id", patient_id), ("related_id", related_id)):
        if value is not None and not 1 <= value <= MAX_ID:
            problems[name] = ["out_of_range"]
    if related_type is not None and not 0 < len(related_type) <= 40:
        problems["related_type"] = ["length"]
    if idempotency_key is not None and not 0 < len(idempotency_key) <= 200:
        problems["idempotency_key"] = ["length"]
    if problems:
        raise InvalidInput("Some fields are missing or not valid.", details=problems)


async def _by_key(session: AsyncSession, key: str) -> SmsMessage | None:
    return await session.scalar(select(SmsMessage).where(SmsMessage.idempotency_key == key))


async def _active_template(session: AsyncSession, code: str) -> SmsTemplate:
    row = await sms_templates.find_template(session, code=code)
    if row is None or not row.is_active:
        raise InvalidInput(
            "There is no active SMS template {code}.", params={"code": code}, details={"template": ["unknown"]}
        )
    return row


async def _decide(session: AsyncSession, message: SmsMessage, config: Settings) -> None:
    """Suppressed, held for quiet hours, or queued now."""
    if await optouts.is_opted_out(session, phone=message.phone):
        message.status, message.suppress_reason = SmsStatus.SUPPRESSED.value, SuppressReason.OPTED_OUT.value
        return
    if message.audience == Audience.STAFF:
        return
    if await _over_limit(session, message, config):
        message.status, message.suppress_reason = SmsStatus.SUPPRESSED.value, SuppressReason.RATE_LIMITED.value
        return
    if message.audience == Audience.CODE:
        return
    hold_until = policy.quiet_hours_end(message.created_at, spec=config.sms_quiet_hours, timezone=config.timezone)
    if hold_until is not None:
        message.status, message.send_after = SmsStatus.HELD.value, hold_until


async def _over_limit(session: AsyncSession, message: SmsMessage, config: Settings) -> bool:
    since = message.created_at - timedelta(hours=config.sms_rate_window_hours)
    recent = (SmsMessage.created_at >= since) & (SmsMessage.audience == message.audience)
    recent &= SmsMessage.status.not_in(NOT_COUNTED)
    for same in _same_recipient(message):
        count = await session.scalar(select(func.count()).select_from(SmsMessage).where(recent & same))
        if (count or 0) >= config.sms_rate_limit:
            return True
    return False


def _same_recipient(message: SmsMessage) -> list[ColumnElement[bool]]:
    conditions = [SmsMessage.phone == message.phone]
    if message.patient_id is not None:
        conditions.append(SmsMessage.patient_id == message.patient_id)
    return conditions


async def _insert(session: AsyncSession, message: SmsMessage) -> SmsMessage:
    """Adds the message; when a parallel call with the same idempotency key won, returns its message."""
    if message.idempotency_key is None:
        session.add(message)
        await session.flush()
        return message
    try:
        async with session.begin_nested():
            session.add(message)
            await session.flush()
    except IntegrityError:
        existing = await _by_key(session, message.idempotency_key)
        if existing is None:
            raise
        return existing
    return message


async def send_test(
    session: AsyncSession, *, actor: Actor, phone: str, template: str, variables: Mapping[str, object]
) -> SmsMessage:
    """An administrator's check of a template and the provider set-up (audited)."""
    actor.require(Permission.MANAGE_MESSAGING)
    message = await send(session, phone=phone, template=template, variables=variables, related_type="test")
    audit.record(
        session,
        actor=actor,
        action="sms.test",
        target_type="sms_message",
        target_id=message.id,
        after={"template": template, "phone": policy.mask_phone(message.phone)},
    )
    return message


# ---- the outbox ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageFilter:
    status: str | None = None
    phone: str | None = None
    template: str | None = None
    related_type: str | None = None
    related_id: int | None = None
    limit: int = 50
    offset: int = 0


def _filtered(where: MessageFilter) -> Select[SmsMessage]:
    query = select(SmsMessage)
    if where.status:
        query = query.where(SmsMessage.status == where.status)
    if where.phone:
        query = query.where(SmsMessage.phone == policy.mobile_number(where.phone))
    if where.template:
        query = query.where(SmsMessage.template_code == where.template)
    if where.related_type:
        query = query.where(SmsMessage.related_type == where.related_type)
    if where.related_id is not None:
        query = query.where(SmsMessage.related_id == where.related_id)
    return query


async def list_messages(session: AsyncSession, *, where: MessageFilter) -> tuple[list[SmsMessage], int]:
    query = _filtered(where)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(SmsMessage.id.desc()).limit(where.limit).offset(where.offset))
    return list(rows), int(total or 0)


async def messages_for(session: AsyncSession, *, related_type: str, related_id: int) -> list[SmsMessage]:
    """What was sent about one record (e.g. a work order), oldest first."""
    rows = await session.scalars(
        select(SmsMessage)
        .where(SmsMessage.related_type == related_type, SmsMessage.related_id == related_id)
        .order_by(SmsMessage.id)
    )
    return list(rows)


async def status_counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(SmsMessage.status, func.count()).group_by(SmsMessage.status))
    return {status: int(count) for status, count in rows.tuples()}


async def get_message(session: AsyncSession, *, message_id: int) -> SmsMessage:
    row = await session.get(SmsMessage, message_id)
    if row is None:
        raise NotFound("This message does not exist.", details={"message_id": message_id})
    return row


async def read_message(session: AsyncSession, *, actor: Actor, message_id: int) -> SmsMessage:
    """One message with its full number: the read is audited, as for any patient data."""
    actor.require(Permission.MANAGE_MESSAGING)
    row = await get_message(session, message_id=message_id)
    audit.record(session, actor=actor, action="sms.message.read", target_type="sms_message", target_id=row.id)
    return row
