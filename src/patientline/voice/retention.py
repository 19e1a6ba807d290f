"""Retention of call recordings: once a call started longer ago than `voice_recording_retention_days`,
its recording is deleted, with the voicemail beside it (`….message.wav`), and the call's row forgets it
(`recording` cleared; the row stays for statistics, `recording_seconds` included). A daily sweep in
bounded batches; when more is due than one run takes, a job carries on in fresh transactions, after the
last call the run looked at. One audit row per run (`voice.recording.delete`) with the count and the
cutoff.

Only files inside the recordings directory are ever deleted: paths are resolved and a row whose path
leads elsewhere (or to the directory itself) loses its reference and nothing else. A file already gone
is no error (the row is cleared all the same). A file that cannot be deleted (permissions, I/O) keeps
its row's reference, so the next day's run tries again. Day directories (and months, years) left empty
go too.

Files go before the rows' update is committed: should the commit fail, the rows still name files that
are gone, and the next run clears them; the other order could leave files no row names."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import audit, clock, jobs
from patientline.core.auth.actor import SYSTEM, Actor
from patientline.core.config import Settings, get_settings
from patientline.voice.models import VoiceCall
from patientline.voice.plant import recordings_dir

log = logging.getLogger(__name__)

BATCH = 200
BATCHES_PER_RUN = 10  # at most 2,000 calls (and their files) a transaction
SWEEP = "voice.recording_retention"
CONTINUE_JOB = "voice.recording_retention.continue"
ACTION = "voice.recording.delete"
VOICEMAIL_SUFFIX = ".message.wav"  # the voicemail beside a call's recording (voice/calls.py)


@dataclass
class Outcome:
    """What a run did."""

    cutoff: datetime
    calls: int = 0  # rows whose `recording` was cleared
    files: int = 0  # files deleted (recordings and voicemails)
    missing: int = 0  # recordings already gone (a call without a voicemail is not counted)
    refused: int = 0  # rows whose path led outside the directory: reference cleared, nothing deleted
    failed: int = 0  # rows kept for the next run: one of their files could not be deleted
    after_id: int = 0  # the last row looked at
    more: bool = False  # more is due after `after_id`


@dataclass
class _Removal:
    call_id: int
    clear: bool  # the row's reference goes
    refused: bool = False
    files: int = 0
    missing: int = 0


def cutoff_for(days: int, now: datetime | None = None) -> datetime:
    return (now or clock.now()) - timedelta(days=days)


def _due(cutoff: datetime, after_id: int) -> ColumnElement[bool]:
    return and_(VoiceCall.recording.is_not(None), VoiceCall.started_at < cutoff, VoiceCall.id > after_id)


async def delete_old_recordings(
    session: AsyncSession,
    *,
    directory: Path,
    retention_days: int,
    actor: Actor = SYSTEM,
    batch: int = BATCH,
    batches: int = BATCHES_PER_RUN,
    after_id: int = 0,
) -> Outcome:
    """Deletes the recordings (and voicemails) of up to `batch * batches` calls with an id above
    `after_id` that started before the cutoff, and clears their rows' `recording`. Nothing due costs one
    indexed query and no look at the disk."""
    outcome = Outcome(cutoff=cutoff_for(retention_days), after_id=after_id)
    for _ in range(batches):
        rows = (
            await session.execute(
                select(VoiceCall.id, VoiceCall.recording)
                .where(_due(outcome.cutoff, outcome.after_id))
                .order_by(VoiceCall.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not rows:
            break
        outcome.after_id = rows[-1].id
        removals = await asyncio.to_thread(_remove, directory, [(row.id, row.recording or "") for row in rows])
        cleared = [removal.call_id for removal in removals if removal.clear]
        if cleared:
            await session.execute(update(VoiceCall).where(VoiceCall.id.in_(cleared)).values(recording=None))
        outcome.calls += len(cleared)
        outcome.files += sum(removal.files for removal in removals)
        outcome.missing += sum(removal.missing for removal in removals)
        outcome.refused += sum(removal.refused for removal in removals)
        outcome.failed += sum(not removal.clear for removal in removals)
        if len(rows) < batch:
            break
    else:
        outcome.more = (
            await session.scalar(select(VoiceCall.id).where(_due(outcome.cutoff, outcome.after_id)).limit(1))
            is not None
        )
    if outcome.calls or outcome.files:
        audit.record(session, actor=actor, action=ACTION, target_type="voice_call",
                     after={"count": outcome.calls, "cutoff": outcome.cutoff, "retention_days": retention_days,
                            "files": outcome.files, "missing": outcome.missing, "refused": outcome.refused,
                            "failed": outcome.failed})  # fmt: skip
    if outcome.refused or outcome.failed:
        log.warning("recordings not deleted", extra={"refused": outcome.refused, "failed": outcome.failed})
    return outcome


def _inside(root: Path, relative: str) -> Path | None:
    """The file `relative` names if it is inside `root` (after resolving `..` and links), else None."""
    if not relative:
        return None
    path = (root / relative).resolve()
    return path if path != root and path.is_relative_to(root) and not path.is_dir() else None


def _voicemail(relative: str) -> str:
    try:
        return str(Path(relative).with_suffix(VOICEMAIL_SUFFIX))
    except ValueError:  # no file name to put a suffix on
        return ""


def _remove(directory: Path, rows: list[tuple[int, str]]) -> list[_Removal]:
    """Deletes each row's recording and voicemail (on a thread: the disk is not the event loop's), then
    the directories left empty."""
    root = directory.resolve()
    removals: list[_Removal] = []
    emptied: set[Path] = set()
    for call_id, relative in rows:
        recording = _inside(root, relative)
        if recording is None:
            log.warning("recording outside the recordings directory not deleted", extra={"call_id": call_id})
            removals.append(_Removal(call_id, clear=True, refused=True))
            continue
        removal = _Removal(call_id, clear=True)
        for path in (recording, _inside(root, _voicemail(relative))):
            if path is None:
                continue
            try:
                path.unlink()
                removal.files += 1
            except FileNotFoundError:
                if path is recording:
                    removal.missing += 1
            except OSError as exc:
                log.warning("recording not deleted", extra={"call_id": call_id, "error": str(exc)[:200]})
                removal.clear = False
                continue
            emptied.add(path.parent)
        removals.append(removal)
    for directory in sorted(emptied, key=lambda d: len(d.parts), reverse=True):
        _remove_empty(root, directory)
    return removals


def _remove_empty(root: Path, directory: Path) -> None:
    """Removes `directory` and its parents up to (not including) `root` while they are empty."""
    while directory != root and directory.is_relative_to(root):
        try:
            os.rmdir(directory)
        except OSError:  # not empty, or already gone
            if directory.exists():
                return
        directory = directory.parent


async def run(
    session: AsyncSession,
    *,
    settings: Settings,
    retention_days: int | None = None,
    actor: Actor = SYSTEM,
    after_id: int = 0,
) -> Outcome:
    """One run: a bounded amount now, the rest by a job that re-enqueues itself."""
    days = retention_days or settings.voice_recording_retention_days
    outcome = await delete_old_recordings(
        session,
        directory=recordings_dir(settings),
        retention_days=days,
        actor=actor,
        batch=BATCH,
        batches=BATCHES_PER_RUN,
        after_id=after_id,
    )
    if outcome.more:
        await jobs.enqueue(session, kind=CONTINUE_JOB, payload={"retention_days": days, "after_id": outcome.after_id})
    return outcome


@jobs.sweeper(SWEEP, every_seconds=24 * 3600)
async def sweep_recordings(session: AsyncSession, settings: Settings) -> None:
    await run(session, settings=settings)


@jobs.job_handler(CONTINUE_JOB)
async def continue_sweep(session: AsyncSession, payload: dict[str, Any]) -> None:
    settings = get_settings()
    days = int(payload.get("retention_days") or settings.voice_recording_retention_days)
    await run(session, settings=settings, retention_days=max(days, 1), after_id=int(payload.get("after_id") or 0))
