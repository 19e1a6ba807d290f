"""Retention of call recordings: the daily sweep deletes the recordings (and voicemails) of calls older
than `voice_recording_retention_days`, clears their rows' `recording` and audits the run; young ones stay;
nothing outside the recordings directory is ever deleted; a file already gone is no error; empty day
directories go; runs are bounded and a job carries on; `patientline voice retention` runs it now."""

from __future__ import annotations

import pathlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from live import cli, server_env
from patientline.core import clock, jobs
from patientline.core.audit import AuditEntry
from patientline.core.config import Settings
from patientline.voice import retention
from patientline.voice.models import VoiceCall
from patientline.voice.plant import recordings_dir

RIFF = b"RIFF" + b"\0" * 60  # enough of a WAV for a file to be there


def place(root: Path, relative: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(RIFF)
    return path


async def add_call(db: Any, *, days_ago: float, recording: str | None) -> int:
    async with db.sessions() as session, session.begin():
        row = VoiceCall(sip_call_id=f"call-{days_ago}-{recording}", started_at=clock.now() - timedelta(days=days_ago),
                        recording=recording, recording_seconds=12.5)  # fmt: skip
        session.add(row)
        await session.flush()
        return int(row.id)


async def recording_of(db: Any, call_id: int) -> str | None:
    async with db.sessions() as session:
        row = await session.get(VoiceCall, call_id)
        assert row is not None
        return row.recording


async def audits(db: Any) -> list[AuditEntry]:
    async with db.sessions() as session:
        query = select(AuditEntry).where(AuditEntry.action == retention.ACTION).order_by(AuditEntry.id)
        return list(await session.scalars(query))


async def sweep(db: Any, settings: Settings) -> retention.Outcome:
    async with db.sessions() as session, session.begin():
        return await retention.run(session, settings=settings)


async def test_old_recordings_and_their_voicemails_go_and_young_ones_stay(db: Any, settings: Settings) -> None:
    root = recordings_dir(settings)
    old = place(root, "2025/01/02/084512-abcdef123456.wav")
    message = place(root, "2025/01/02/084512-abcdef123456.message.wav")
    older = place(root, "2025/01/01/070000-000000000001.wav")
    young = place(root, "2026/11/24/084512-0123456789ab.wav")
    young_message = place(root, "2026/11/24/084512-0123456789ab.message.wav")
    old_id = await add_call(db, days_ago=200, recording="2025/01/02/084512-abcdef123456.wav")
    older_id = await add_call(db, days_ago=400, recording="2025/01/01/070000-000000000001.wav")
    young_id = await add_call(db, days_ago=10, recording="2026/11/24/084512-0123456789ab.wav")
    before = clock.now()

    outcome = await sweep(db, settings)

    assert (outcome.calls, outcome.files, outcome.missing, outcome.refused, outcome.more) == (2, 3, 0, 0, False)
    assert not old.exists() and not message.exists() and not older.exists()
    assert young.exists() and young_message.exists()
    assert await recording_of(db, old_id) is None and await recording_of(db, older_id) is None
    assert await recording_of(db, young_id) == "2026/11/24/084512-0123456789ab.wav"
    async with db.sessions() as session:  # the row stays, with what statistics need
        row = await session.get(VoiceCall, old_id)
        assert row is not None and row.recording_seconds == 12.5
    # the emptied day, month and year directories go; the directory itself and the young days stay
    assert not (root / "2025").exists() and root.is_dir() and (root / "2026/11/24").is_dir()
    [entry] = await audits(db)
    assert entry.actor_name == "system" and entry.target_type == "voice_call" and entry.after is not None
    assert entry.after["count"] == 2 and entry.after["retention_days"] == 180 and entry.after["files"] == 3
    cutoff = entry.after["cutoff"]
    assert cutoff.startswith((before - timedelta(days=180)).date().isoformat())

    again = await sweep(db, settings)  # nothing left to do: nothing done, nothing audited
    assert (again.calls, again.files) == (0, 0)
    assert len(await audits(db)) == 1 and young.exists()


async def test_a_path_outside_the_recordings_directory_deletes_nothing(
    db: Any, settings: Settings, tmp_path: Path
) -> None:
    root = recordings_dir(settings)
    root.mkdir(parents=True)
    passwd = settings.var_dir / "etc" / "passwd"  # where ../../etc/passwd leads from the recordings
    passwd.parent.mkdir(parents=True)
    passwd.write_text("root:x:0:0::/root:/bin/sh\n")
    (passwd.parent / "passwd.message.wav").write_bytes(RIFF)
    secret = tmp_path / "secret.wav"
    secret.write_bytes(RIFF)
    link = root / "2025/01/03/090000-aaaaaaaaaaaa.wav"
    link.parent.mkdir(parents=True)
    link.symlink_to(secret)  # inside by name, outside once resolved
    ids = [
        await add_call(db, days_ago=300, recording="../../etc/passwd"),
        await add_call(db, days_ago=300, recording=str(secret)),  # an absolute path
        await add_call(db, days_ago=300, recording="2025/01/03/090000-aaaaaaaaaaaa.wav"),
        await add_call(db, days_ago=300, recording="2025/.."),  # the directory itself
    ]

    outcome = await sweep(db, settings)

    assert (outcome.files, outcome.refused) == (0, 4)
    assert passwd.read_text().startswith("root:") and (passwd.parent / "passwd.message.wav").exists()
    assert secret.exists() and link.is_symlink() and root.is_dir()
    for call_id in ids:  # past retention all the same: no row keeps naming a recording
        assert await recording_of(db, call_id) is None
    [entry] = await audits(db)
    assert entry.after is not None and entry.after["refused"] == 4 and entry.after["files"] == 0


async def test_a_file_already_gone_is_no_error(db: Any, settings: Settings) -> None:
    root = recordings_dir(settings)
    kept = place(root, "2025/02/01/100000-bbbbbbbbbbbb.wav")
    gone = await add_call(db, days_ago=250, recording="2025/02/01/095959-cccccccccccc.wav")  # never written
    also_gone = await add_call(db, days_ago=250, recording="2024/12/31/235959-dddddddddddd.wav")  # nor its day
    there = await add_call(db, days_ago=250, recording="2025/02/01/100000-bbbbbbbbbbbb.wav")

    async with db.sessions() as session, session.begin():
        loaded = await session.get(VoiceCall, there)  # a row the caller's session already holds
        assert loaded is not None and loaded.recording is not None
        outcome = await retention.run(session, settings=settings)
        assert loaded.recording is None  # shows what the run cleared

    assert (outcome.calls, outcome.files, outcome.missing, outcome.failed) == (3, 1, 2, 0)
    assert not kept.exists() and not (root / "2025").exists()
    for call_id in (gone, also_gone, there):
        assert await recording_of(db, call_id) is None


async def test_a_file_that_cannot_be_deleted_keeps_its_row_for_the_next_run(
    db: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = recordings_dir(settings)
    stuck = place(root, "2025/03/01/080000-eeeeeeeeeeee.wav")
    fine = place(root, "2025/03/01/080001-ffffffffffff.wav")
    stuck_id = await add_call(db, days_ago=250, recording="2025/03/01/080000-eeeeeeeeeeee.wav")
    fine_id = await add_call(db, days_ago=250, recording="2025/03/01/080001-ffffffffffff.wav")
    unlink = pathlib.Path.unlink

    def refuse(path: Path, missing_ok: bool = False) -> None:
        if path.name == stuck.name:
            raise PermissionError(13, "Permission denied", str(path))
        unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(pathlib.Path, "unlink", refuse)
    outcome = await sweep(db, settings)
    assert (outcome.calls, outcome.failed) == (1, 1)
    assert stuck.exists() and not fine.exists() and (root / "2025/03/01").is_dir()
    assert await recording_of(db, stuck_id) == "2025/03/01/080000-eeeeeeeeeeee.wav"
    assert await recording_of(db, fine_id) is None

    monkeypatch.undo()
    outcome = await sweep(db, settings)  # the next day's run
    assert (outcome.calls, outcome.failed) == (1, 0)
    assert not stuck.exists() and not (root / "2025").exists()
    assert await recording_of(db, stuck_id) is None


async def test_the_worker_sweeps_daily_and_a_run_with_nothing_to_do_writes_nothing(db: Any, settings: Settings) -> None:
    entry = jobs.SWEEPERS[retention.SWEEP]
    assert entry.run is retention.sweep_recordings and entry.every_seconds == 24 * 3600

    await jobs.Worker(db, settings=settings).sweep()  # an empty database: nothing deleted, nothing audited
    assert await audits(db) == [] and not recordings_dir(settings).exists()

    root = recordings_dir(settings)
    old = place(root, "2025/04/01/120000-111111111111.wav")
    young = place(root, "2026/04/01/120000-222222222222.wav")
    old_id = await add_call(db, days_ago=31, recording="2025/04/01/120000-111111111111.wav")
    young_id = await add_call(db, days_ago=29, recording="2026/04/01/120000-222222222222.wav")
    await jobs.Worker(db, settings=settings.model_copy(update={"voice_recording_retention_days": 30})).sweep()
    assert not old.exists() and young.exists()
    assert await recording_of(db, old_id) is None and await recording_of(db, young_id) is not None
    [audited] = await audits(db)
    assert audited.after is not None and audited.after["retention_days"] == 30


async def test_runs_are_bounded_and_a_job_carries_on(
    db: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = recordings_dir(settings)
    files = [place(root, f"2025/05/0{i + 1}/080000-{i:012d}.wav") for i in range(5)]
    ids = [await add_call(db, days_ago=300, recording=f"2025/05/0{i + 1}/080000-{i:012d}.wav") for i in range(5)]
    monkeypatch.setattr(retention, "BATCH", 2)
    monkeypatch.setattr(retention, "BATCHES_PER_RUN", 1)
    monkeypatch.setattr(retention, "get_settings", lambda: settings)  # the job's process has these settings

    first = await sweep(db, settings)
    assert (first.calls, first.more, first.after_id) == (2, True, ids[1])
    assert [path.exists() for path in files] == [False, False, True, True, True]
    async with db.sessions() as session:
        [job] = list(await session.scalars(select(jobs.Job).where(jobs.Job.kind == retention.CONTINUE_JOB)))
        assert job.payload == {"retention_days": 180, "after_id": ids[1]}

    assert await jobs.run_due(db, worker_id="test") == 2  # each run queues the next while more is due
    assert not any(path.exists() for path in files)
    for call_id in ids:
        assert await recording_of(db, call_id) is None
    assert [entry.after["count"] for entry in await audits(db) if entry.after] == [2, 2, 1]
    async with db.sessions() as session:
        statuses = list(await session.scalars(select(jobs.Job.status).where(jobs.Job.kind == retention.CONTINUE_JOB)))
        assert statuses == [jobs.JobStatus.DONE, jobs.JobStatus.DONE]


def test_the_command_line_runs_the_sweep_now(tmp_path: Path) -> None:
    env = server_env(tmp_path)
    cli(env, "migrate")
    root = tmp_path / "voice" / "recordings"
    old, young = place(root, "2020/01/02/030405-aaaaaaaaaaaa.wav"), place(root, "2026/01/02/030405-bbbbbbbbbbbb.wav")
    recent = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")
    with sqlite3.connect(tmp_path / "patientline.db") as db:
        for call_id, started, recording in (
            ("c-old", "2020-01-02 03:04:05", "2020/01/02/030405-aaaaaaaaaaaa.wav"),
            ("c-new", recent, "2026/01/02/030405-bbbbbbbbbbbb.wav"),
        ):
            db.execute("INSERT INTO voice_calls (sip_call_id, direction, dialled, caller, worker, started_at, outcome, "
                       "end_reason, ivr, events, recording) VALUES (?, 'inbound', '8585', '', 'w1', ?, '', '', '{}', "
                       "'[]', ?)", (call_id, started, recording))  # fmt: skip
    assert "deleted the recordings of 1 call(s) older than 30 days" in cli(env, "voice", "retention", "--days", "30")
    assert not old.exists() and young.exists()
    with sqlite3.connect(tmp_path / "patientline.db") as db:
        rows = dict(db.execute("SELECT sip_call_id, recording FROM voice_calls").fetchall())
        actors = db.execute("SELECT actor_name FROM audit_log WHERE action = 'voice.recording.delete'").fetchall()
    assert rows == {"c-old": None, "c-new": "2026/01/02/030405-bbbbbbbbbbbb.wav"} and actors == [("system",)]
