"""Recorded prompts (CH1): WAV files a hospital uploads (a greeting in the director's voice, a holiday
notice) for flows to play instead of synthesised words. An upload is converted by sox to the
telephone's 8 kHz mono 16-bit WAV and kept in the database, so any node takes it; the phone line
plays a copy on disk, named by the audio's hash so a replaced recording is heard at once."""

from __future__ import annotations

import asyncio
import hashlib
import io
import tempfile
import wave
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import audit
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.db import Database, flush_or_conflict
from patientline.core.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge, require_version
from patientline.core.i18n import N_
from patientline.voice import service
from patientline.voice.flows import problem
from patientline.voice.models import VoicePrompt
from patientline.voice.prompts import PromptFailed, missing_tools, run_tool, to_telephone
from patientline.voice.schemas import RecordedPromptUpdate

AUDIT_TARGET = "voice_prompt"
MAX_BYTES = 8 * 1024 * 1024  # under the upload route's request limit, multipart framing included
MAX_SECONDS = 300
MIN_SECONDS = 0.2
TAKEN = N_("Another recorded prompt has this name.")


async def list_prompts(session: AsyncSession) -> list[VoicePrompt]:
    return list(await session.scalars(select(VoicePrompt).order_by(VoicePrompt.name)))


async def get_prompt(session: AsyncSession, prompt_id: int) -> VoicePrompt:
    row = await session.get(VoicePrompt, prompt_id)
    if row is None:
        raise NotFound("No such recorded prompt.", details={"id": prompt_id})
    return row


async def audio(session: AsyncSession, *, actor: Actor, prompt_id: int) -> bytes:
    actor.require(Permission.CONFIGURE_VOICE)
    found = await session.scalar(select(VoicePrompt.audio).where(VoicePrompt.id == prompt_id))
    if found is None:
        raise NotFound("No such recorded prompt.", details={"id": prompt_id})
    return found


async def upload(
    session: AsyncSession, *, actor: Actor, name: str, words: str, filename: str, raw: bytes
) -> VoicePrompt:
    actor.require(Permission.CONFIGURE_VOICE)
    await _require_free(session, name, own_id=None)
    converted, seconds = await telephone_audio(raw)
    row = VoicePrompt(name=name, words=words, filename=_filename(filename), seconds=seconds, audio=converted,
                      sha256=hashlib.sha256(converted).hexdigest(), uploaded_by_id=actor.user_id)  # fmt: skip
    session.add(row)
    await flush_or_conflict(session)
    audit.record(session, actor=actor, action="voice.prompt.upload", target_type=AUDIT_TARGET, target_id=row.id,
                 after=snapshot(row))  # fmt: skip
    return row


async def replace_audio(
    session: AsyncSession, *, actor: Actor, prompt_id: int, expected_version: int, filename: str, raw: bytes
) -> VoicePrompt:
    """A new recording under the same name: every flow that plays it plays the new one from the next call."""
    actor.require(Permission.CONFIGURE_VOICE)
    row = await get_prompt(session, prompt_id)
    require_version(expected=expected_version, current=row.version)
    converted, seconds = await telephone_audio(raw)
    before = snapshot(row)
    row.audio, row.seconds, row.filename = converted, seconds, _filename(filename)
    row.sha256 = hashlib.sha256(converted).hexdigest()
    row.uploaded_by_id = actor.user_id
    await flush_or_conflict(session)
    audit.record(session, actor=actor, action="voice.prompt.replace", target_type=AUDIT_TARGET, target_id=row.id,
                 before=before, after=snapshot(row))  # fmt: skip
    return row


async def update(session: AsyncSession, *, actor: Actor, prompt_id: int, data: RecordedPromptUpdate) -> VoicePrompt:
    actor.require(Permission.CONFIGURE_VOICE)
    row = await get_prompt(session, prompt_id)
    require_version(expected=data.version, current=row.version)
    await _require_free(session, data.name, own_id=row.id)
    before = snapshot(row)
    if data.name is not None:
        row.name = data.name
    if data.words is not None:
        row.words = data.words
    old, new = audit.changed_fields(before, snapshot(row))
    if new:
        await flush_or_conflict(session)
        audit.record(session, actor=actor, action="voice.prompt.update", target_type=AUDIT_TARGET,
                     target_id=row.id, before=old, after=new)  # fmt: skip
    return row


async def delete(session: AsyncSession, *, actor: Actor, prompt_id: int, expected_version: int) -> None:
    """Only a prompt no draft and no live flow plays (an older version that plays it cannot go back live)."""
    actor.require(Permission.CONFIGURE_VOICE)
    row = await get_prompt(session, prompt_id)
    require_version(expected=expected_version, current=row.version)
    if users := (await service.uses_of_recordings(session)).get(prompt_id):
        raise Conflict("Flows play this recording; choose another prompt in them first.", error_id="prompt_in_use",
                       details={"flows": users})  # fmt: skip
    before = snapshot(row)
    await session.delete(row)
    await flush_or_conflict(session)
    audit.record(session, actor=actor, action="voice.prompt.delete", target_type=AUDIT_TARGET, target_id=prompt_id,
                 before=before)  # fmt: skip


async def telephone_audio(raw: bytes) -> tuple[bytes, float]:
    """`raw` (an uploaded WAV) as the telephone's WAV, and its length in seconds; bad input refused."""
    if len(raw) > MAX_BYTES:
        raise PayloadTooLarge("A recording may be at most {mb} MB; save it as mono, or at 16 kHz.",
                              params={"mb": MAX_BYTES // (1024 * 1024)})  # fmt: skip
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise InvalidInput("Only WAV recordings can be uploaded.", error_id="not_wav")
    if missing := missing_tools():
        raise PromptFailed(f"missing {', '.join(missing)}")
    with tempfile.TemporaryDirectory(prefix="patientline-prompt-") as scratch:
        source, target = Path(scratch) / "upload.wav", Path(scratch) / "telephone.wav"
        source.write_bytes(raw)
        if (complaint := await run_tool(*to_telephone(source, target))) is not None:
            raise InvalidInput("This WAV file cannot be read: {detail}", error_id="unreadable_audio",
                               params={"detail": complaint.removeprefix("sox FAIL ")})  # fmt: skip
        converted = target.read_bytes()
    seconds = _seconds(converted)
    if seconds < MIN_SECONDS:
        raise InvalidInput("The recording is empty.", error_id="recording_empty")
    if seconds > MAX_SECONDS:
        raise InvalidInput("A recorded prompt may last at most {minutes} minutes.", error_id="recording_too_long",
                           params={"minutes": MAX_SECONDS // 60})  # fmt: skip
    return converted, seconds


def _seconds(telephone_wav: bytes) -> float:
    with wave.open(io.BytesIO(telephone_wav)) as reader:
        frames: int = reader.getnframes()
        rate: int = reader.getframerate()
    return round(frames / rate, 2)


async def playable(db: Database, directory: Path, prompt_id: int) -> Path | None:
    """The file the phone line plays for a recorded prompt (written from the database the first time),
    None if the prompt is gone."""
    async with db.sessions() as session:
        sha256 = await session.scalar(select(VoicePrompt.sha256).where(VoicePrompt.id == prompt_id))
        if sha256 is None:
            return None
        path = directory / f"recorded-{prompt_id}-{sha256[:24]}.wav"
        if not path.exists():
            data = await session.scalar(select(VoicePrompt.audio).where(VoicePrompt.id == prompt_id))
            if data is None:
                return None
            await asyncio.to_thread(_write_whole, path, data)
    return path


def _write_whole(path: Path, data: bytes) -> None:
    """Written aside, then renamed: a worker never plays half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(path)


def snapshot(row: VoicePrompt) -> dict[str, object]:
    return {"name": row.name, "words": row.words, "filename": row.filename, "seconds": row.seconds,
            "sha256": row.sha256}  # fmt: skip


def _filename(name: str) -> str:
    return (name.replace("\\", "/").rsplit("/", 1)[-1].strip() or "prompt.wav")[:200]


async def _require_free(session: AsyncSession, name: str | None, *, own_id: int | None) -> None:
    if name is None:
        return
    other = await session.scalar(select(VoicePrompt.id).where(VoicePrompt.name == name))
    if other is not None and other != own_id:
        raise Conflict("Another recorded prompt has this name.", error_id="prompt_taken",
                       details=[problem(None, "name", "taken", TAKEN)])  # fmt: skip
