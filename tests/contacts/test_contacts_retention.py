"""Retention (PIPL): contacts past `contact_retention_days` are anonymised by the sweep in bounded batches;
statistics keep channel, times, queue, agent and dispositions; one audit row per run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ct_base import make_tree, ok, record
from sqlalchemy import select

from helpers import Client, assert_error
from patientline.contacts import scheduled
from patientline.core import clock, jobs
from patientline.core.audit import AuditEntry
from patientline.core.config import Settings


async def summaries(db: Any) -> list[AuditEntry]:
    async with db.sessions() as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "contacts.anonymised")))


async def old_and_new(admin: Client, agent: Client, *, old: int = 2) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    tree = await make_tree(admin)
    now = clock.now()
    clock.set_now(now - timedelta(days=400))
    try:
        olds = [
            await record(agent, notes="老病历号 123", disposition_ids=[tree.ids["complaint"]], external_ref=f"call-{i}")
            for i in range(old)
        ]
    finally:
        clock.set_now(None)
    fresh = await record(agent, notes="新来电")
    return olds, fresh


async def test_the_sweep_anonymises_old_contacts_and_keeps_statistics(
    admin: Client, agent: Client, db: Any, settings: Settings
) -> None:
    olds, fresh = await old_and_new(admin, agent)
    before = ok(await agent.get(f"/api/contacts/{olds[0]['id']}"))
    async with db.sessions() as session, session.begin():
        await scheduled.sweep_retention(session, settings.model_copy(update={"contact_retention_days": 365}))
    after = ok(await agent.get(f"/api/contacts/{olds[0]['id']}"))
    assert after["anonymised_at"] and after["phone_masked"] == "" and after["caller_name"] == ""
    assert after["notes"] == "" and after["subject"] == "" and after["patient_id"] is None
    for kept in ("channel", "started_at", "queue_id", "agent_id", "disposition_ids", "status", "reference"):
        assert after[kept] == before[kept], kept
    assert after["version"] == before["version"] + 1
    untouched = ok(await agent.get(f"/api/contacts/{fresh['id']}"))
    assert untouched["anonymised_at"] is None and untouched["notes"] == "新来电"
    rows = await summaries(db)
    assert len(rows) == 1 and rows[0].after is not None and rows[0].after["count"] == 2
    assert rows[0].actor_name == "system"
    # a second run finds nothing and writes nothing
    async with db.sessions() as session, session.begin():
        await scheduled.sweep_retention(session, settings.model_copy(update={"contact_retention_days": 365}))
    assert len(await summaries(db)) == 1
    # anonymised contacts no longer change, and are not found by their old number or text
    stale = await agent.patch(f"/api/contacts/{olds[0]['id']}", json={"version": after["version"], "notes": "x"})
    assert_error(stale, 409, "contact_anonymised")
    assert ok(await agent.get("/api/contacts?q=老病历号"))["total"] == 0
    assert ok(await agent.get("/api/contacts?phone=13812345678"))["total"] == 1


async def test_runs_are_bounded_and_a_job_carries_on(admin: Client, agent: Client, db: Any) -> None:
    await old_and_new(admin, agent, old=5)
    async with db.sessions() as session, session.begin():
        count, more = await scheduled.anonymise_old(session, retention_days=365, batch=2, batches=2)
    assert (count, more) == (4, True)
    async with db.sessions() as session, session.begin():
        count, more = await scheduled.anonymise_old(session, retention_days=365, batch=2, batches=2)
    assert (count, more) == (1, False)
    assert [row.after["count"] for row in await summaries(db) if row.after] == [4, 1]


async def test_a_run_with_more_due_enqueues_the_continuation(
    admin: Client, agent: Client, db: Any, monkeypatch: Any
) -> None:
    await old_and_new(admin, agent, old=3)
    monkeypatch.setattr(scheduled, "BATCH", 1)
    monkeypatch.setattr(scheduled, "BATCHES_PER_RUN", 1)

    async with db.sessions() as session, session.begin():
        assert await scheduled.run(session, retention_days=365) == 1
        queued = await session.scalars(select(jobs.Job).where(jobs.Job.kind == scheduled.CONTINUE_JOB))
        assert len(list(queued)) == 1
    assert await jobs.run_due(db, worker_id="test") == 2  # each run does a batch and queues the next while more are due
    async with db.sessions() as session:
        queued = await session.scalars(select(jobs.Job.status).where(jobs.Job.kind == scheduled.CONTINUE_JOB))
        assert list(queued) == [jobs.JobStatus.DONE, jobs.JobStatus.DONE]  # the last run found nothing more
    assert ok(await agent.get("/api/contacts?status=open"))["total"] == 4
    anonymised = [row for row in ok(await agent.get("/api/contacts"))["items"] if row["anonymised_at"]]
    assert len(anonymised) == 3


async def test_admins_trigger_a_run(admin: Client, agent: Client, db: Any, app: Any) -> None:
    await old_and_new(admin, agent, old=1)
    assert_error(await agent.post("/api/contacts/retention/run"), 403)
    app.state.pl.settings = app.state.pl.settings.model_copy(update={"contact_retention_days": 365})
    result = ok(await admin.post("/api/contacts/retention/run"))
    assert result == {"anonymised": 1, "retention_days": 365}
    rows = await summaries(db)
    assert len(rows) == 1 and rows[0].actor_name == "root"
    assert scheduled.SWEEP in jobs.SWEEPERS and jobs.SWEEPERS[scheduled.SWEEP].every_seconds == 86400
