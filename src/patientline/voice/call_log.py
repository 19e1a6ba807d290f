"""The call log and its recordings: supervisors see every call; an agent sees the calls they answered
and may hear their own recordings. Every playback is audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import audit
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.errors import NotFound, PermissionDenied
from patientline.core.masking import mask_phone
from patientline.voice.models import VoiceCall
from patientline.voice.schemas import CallRead


def _may_see_all(actor: Actor) -> bool:
    return actor.can(Permission.SUPERVISE)


async def list_calls(session: AsyncSession, *, actor: Actor, limit: int) -> list[dict[str, Any]]:
    actor.require(Permission.HANDLE_CONTACTS)
    query = select(VoiceCall).order_by(VoiceCall.started_at.desc(), VoiceCall.id.desc()).limit(limit)
    if not _may_see_all(actor):
        query = query.where(VoiceCall.agent_id == actor.user_id)
    return [call_json(row) for row in await session.scalars(query)]


def call_json(row: VoiceCall) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in CallRead.model_fields if name != "caller_masked"}
    caller = row.caller if row.caller.startswith("+") else None
    return CallRead(**values, caller_masked=mask_phone(caller) if caller else row.caller).model_dump(mode="json")


async def get_call(session: AsyncSession, *, actor: Actor, call_id: int) -> VoiceCall:
    actor.require(Permission.HANDLE_CONTACTS)
    row = await session.get(VoiceCall, call_id)
    if row is None:
        raise NotFound("No such call.")
    if not _may_see_all(actor) and row.agent_id != actor.user_id:
        raise PermissionDenied("You may hear only the calls you answered.")
    return row


async def recording_path(session: AsyncSession, *, actor: Actor, call_id: int, directory: Path) -> Path:
    """The recording's file, after auditing that `actor` is about to hear it."""
    row = await get_call(session, actor=actor, call_id=call_id)
    path = _inside(directory, row.recording)
    if path is None:
        raise NotFound("This call has no recording (or it was deleted by the retention policy).")
    audit.record(session, actor=actor, action="voice.recording.play", target_type="voice_call", target_id=row.id)
    return path


def _inside(directory: Path, relative: str | None) -> Path | None:
    """The recording's file if it is there and inside the recordings directory."""
    if not relative:
        return None
    path = (directory / relative).resolve()
    return path if path.is_relative_to(directory.resolve()) and path.is_file() else None
