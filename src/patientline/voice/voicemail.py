"""A voicemail becomes a work order (a callback to make), with the message's file named in it."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from sqlalchemy import select

from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.db import Database
from patientline.core.errors import DomainError
from patientline.core.i18n import gettext
from patientline.voice.models import VoiceCall
from patientline.workorders import service as workorders
from patientline.workorders.models import WorkOrderType
from patientline.workorders.schemas import OrderCreate

log = logging.getLogger(__name__)

MESSAGE_TYPE = "callback"
IVR = Actor(user_id=None, username="ivr", display_name="IVR", roles=(), via="system",
            permissions=frozenset({Permission.CREATE_WORK_ORDERS}))  # fmt: skip


async def leave_work_order(db: Database, call: VoiceCall, message: Path) -> int | None:
    """The work order for a voicemail; None when there is no message or the order cannot be made (the
    call's record still holds the message)."""
    if not _has_sound(message):
        return None
    try:
        async with db.sessions() as session, session.begin():
            kind = await session.scalar(select(WorkOrderType).where(WorkOrderType.code == MESSAGE_TYPE))
            if kind is None or not kind.is_active:
                return None
            category = kind.categories[0] if kind.categories else ""
            subject = gettext("Voicemail from {caller}").format(caller=call.caller or gettext("an unknown number"))
            data = OrderCreate(type_id=kind.id, category=category, subject=subject[:60],
                               description=gettext("Voice message: {file}").format(file=message.name),
                               caller_phone=call.caller if call.caller.startswith("+") else None,
                               client_key=f"voicemail-{_digest(call.sip_call_id)}")  # fmt: skip
            return (await workorders.create(session, actor=IVR, data=data)).id
    except (DomainError, ValueError) as exc:
        log.warning("voicemail work order not made", extra={"error": str(exc)[:200]})
        return None


def _digest(call_id: str) -> str:
    return hashlib.sha256(call_id.encode()).hexdigest()[:32]


def _has_sound(message: Path) -> bool:
    return message.exists() and message.stat().st_size > 44  # more than a WAV header
