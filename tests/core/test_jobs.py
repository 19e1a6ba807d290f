"""The worker: durable jobs, retries with backoff, dead letters, idempotency, leadership, heartbeat."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from helpers import Client, assert_error
from patientline.core import clock, events, jobs
from patientline.core.auth.models import UserSession
from patientline.core.db import Database
from patientline.core.events import EventLogEntry
from patientline.core.jobs import JobStatus, LeaderLock, Worker

CALLS: list[dict[str, Any]] = []


@jobs.job_handler("test.flaky")
async def flaky(session: Any, payload: dict[str, Any]) -> None:
    CALLS.append(payload)
    if payload.get("fail_times", 0) >= len([c for c in CALLS if c == payload]):
        raise RuntimeError("the outside system is down")


@pytest.fixture(autouse=True)
def clear_calls() -> None:
    CALLS.clear()


async def enqueue(db: Database, **payload: Any) -> int:
    async with db.sessions() as session, session.begin():
        job = await jobs.enqueue(session, kind="test.flaky", payload=payload, max_attempts=3)
        return job.id


async def status(db: Database, job_id: int) -> jobs.Job:
    async with db.sessions() as session:
        job = await session.get(jobs.Job, job_id)
        assert job is not None
        return job


async def test_a_job_runs_once_and_is_done(db: Database) -> None:
    job_id = await enqueue(db, n=1)
    assert await jobs.run_due(db, worker_id="w1") == 1
    assert (await status(db, job_id)).status == JobStatus.DONE
    assert await jobs.run_due(db, worker_id="w1") == 0
    assert CALLS == [{"n": 1}]


async def test_failures_retry_with_backoff_then_succeed(db: Database) -> None:
    job_id = await enqueue(db, fail_times=1)
    await jobs.run_due(db, worker_id="w1")
    job = await status(db, job_id)
    assert job.status == JobStatus.PENDING and job.attempts == 1 and "outside system" in (job.last_error or "")
    assert await jobs.run_due(db, worker_id="w1") == 0  # not yet: backing off
    clock.advance(timedelta(seconds=3))
    await jobs.run_due(db, worker_id="w1")
    assert (await status(db, job_id)).status == JobStatus.DONE


async def test_exhausted_jobs_become_dead_letters_that_admins_retry(db: Database, admin: Client) -> None:
    job_id = await enqueue(db, fail_times=99)
    for _ in range(3):
        await jobs.run_due(db, worker_id="w1")
        clock.advance(timedelta(minutes=5))
    assert (await status(db, job_id)).status == JobStatus.DEAD
    dead = (await admin.get("/api/jobs", params={"status": "dead"})).json()
    assert [j["id"] for j in dead] == [job_id]
    assert (await admin.get("/admin/jobs")).status_code == 200
    retried = await admin.post(f"/api/jobs/{job_id}/retry")
    assert retried.json()["status"] == "pending" and retried.json()["attempts"] == 0
    assert_error(await admin.post(f"/api/jobs/{job_id}/retry"), 409, "job_not_dead")
    assert_error(await admin.post("/api/jobs/999999/discard"), 404)


async def test_idempotency_key_makes_one_job(db: Database) -> None:
    async with db.sessions() as session, session.begin():
        first = await jobs.enqueue(session, kind="test.flaky", payload={}, idempotency_key="sms:WO-1")
        second = await jobs.enqueue(session, kind="test.flaky", payload={}, idempotency_key="sms:WO-1")
    assert first.id == second.id


async def test_a_crashed_workers_lease_expires_and_another_worker_takes_the_job(db: Database) -> None:
    job_id = await enqueue(db, n=2)
    async with db.sessions() as session, session.begin():
        claimed = await jobs.claim(session, worker_id="crashed", lease=timedelta(minutes=5))
    assert [j.id for j in claimed] == [job_id]
    assert await jobs.run_due(db, worker_id="w2") == 0
    clock.advance(timedelta(minutes=6))
    assert await jobs.run_due(db, worker_id="w2") == 1
    assert (await status(db, job_id)).status == JobStatus.DONE


async def test_only_one_leader_holds_the_lock(db: Database, backend: str) -> None:
    first, second = LeaderLock(db), LeaderLock(db)
    assert await first.try_acquire()
    if backend == "postgresql":
        assert not await second.try_acquire()
        await first.release()
        assert await second.try_acquire()
        await second.release()
    else:
        assert await second.try_acquire()  # SQLite: one process, always its own leader


async def test_worker_heartbeat_makes_readyz_ready_and_stops_gracefully(
    db: Database, anon: Client, settings: Any
) -> None:
    assert (await anon.get("/readyz")).json()["checks"]["worker"] == "stale"
    worker = Worker(db, settings=settings)
    job_id = await enqueue(db, n=3)
    worker.start()
    for _ in range(100):
        if (await status(db, job_id)).status == JobStatus.DONE:
            break
        await clock_sleep()
    ready = await anon.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "worker": "ok"}
    await worker.stop()
    assert (await status(db, job_id)).status == JobStatus.DONE
    assert (await anon.get("/readyz")).status_code == 503


async def clock_sleep() -> None:
    import asyncio

    await asyncio.sleep(0.05)


async def test_health_and_metrics(anon: Client) -> None:
    assert (await anon.get("/healthz")).json() == {"status": "ok"}
    metrics = await anon.get("/metrics")
    assert metrics.status_code == 200 and "patientline_http_requests_total" in metrics.text


async def test_the_leader_sweeps_expired_sessions_and_old_events(
    db: Database, settings: Any, anon: Client, make_user: Any
) -> None:
    await make_user("sweepme", ["agent"])
    await anon.login("sweepme")
    async with db.sessions() as session, session.begin():
        events.record(session, events.Notification(title="old news"))
    clock.advance(timedelta(days=settings.event_retention_days + 1))
    await Worker(db, settings=settings).sweep()
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(UserSession)) == 0
        assert await session.scalar(select(func.count()).select_from(EventLogEntry)) == 0
