"""Numbers that receive no more texts: added by an agent on the patient's request or by the patient
replying 退订 / TD / T; removed only by people with the right, and every change is audited."""

from __future__ import annotations

import unicodedata

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.channels.models import OptOutSource, SmsOptOut
from patientline.channels.policy import mask_phone, mobile_number
from patientline.core import audit, clock
from patientline.core.auth.actor import SYSTEM, Actor
from patientline.core.auth.permissions import Permission
from patientline.core.errors import InvalidInput, NotFound

UNSUBSCRIBE_WORDS = frozenset({"TD", "T", "退订", "STOP"})


async def is_opted_out(session: AsyncSession, *, phone: str) -> bool:
    return await session.scalar(select(SmsOptOut.id).where(SmsOptOut.phone == phone)) is not None


async def list_opt_outs(
    session: AsyncSession, *, phone: str | None = None, limit: int = 100, offset: int = 0
) -> tuple[list[SmsOptOut], int]:
    query = select(SmsOptOut)
    if phone:
        query = query.where(SmsOptOut.phone == mobile_number(phone))
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(SmsOptOut.id.desc()).limit(limit).offset(offset))
    return list(rows), int(total or 0)


async def opt_out(
    session: AsyncSession, *, actor: Actor, phone: str, reason: str = "", source: OptOutSource = OptOutSource.AGENT
) -> SmsOptOut:
    """Idempotent: a number already opted out keeps its first record."""
    if source is OptOutSource.AGENT:
        actor.require(Permission.MANAGE_MESSAGING)
    number = mobile_number(phone)
    existing = await session.scalar(select(SmsOptOut).where(SmsOptOut.phone == number))
    if existing is not None:
        return existing
    row = SmsOptOut(
        phone=number, reason=reason, source=source.value, created_at=clock.now(), created_by_id=actor.user_id
    )
    session.add(row)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="sms.opt_out.add",
        target_type="sms_opt_out",
        target_id=row.id,
        after={"phone": mask_phone(number), "source": source.value},
        reason=reason or None,
    )
    return row


async def remove_opt_out(session: AsyncSession, *, actor: Actor, opt_out_id: int, reason: str = "") -> None:
    actor.require(Permission.MANAGE_MESSAGING)
    row = await session.get(SmsOptOut, opt_out_id)
    if row is None:
        raise NotFound("This number is not on the opt-out list.", details={"opt_out_id": opt_out_id})
    before = {"phone": mask_phone(row.phone), "source": row.source, "reason": row.reason}
    await session.delete(row)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="sms.opt_out.remove",
        target_type="sms_opt_out",
        target_id=opt_out_id,
        before=before,
        reason=reason or None,
    )


def is_unsubscribe(text: str) -> bool:
    """退订, TD or T alone (full-width letters, spaces and punctuation around them allowed)."""
    folded = unicodedata.normalize("NFKC", text).strip().strip("。.!！ ").upper()
    return folded in UNSUBSCRIBE_WORDS


async def take_reply(session: AsyncSession, *, phone: str, text: str) -> bool:
    """A patient's reply: an unsubscribe word opts the number out. True when it did."""
    if not is_unsubscribe(text):
        return False
    try:
        phone = mobile_number(phone)
    except InvalidInput:
        return False
    await opt_out(session, actor=SYSTEM, phone=phone, reason=text.strip()[:200], source=OptOutSource.PATIENT_REPLY)
    return True
