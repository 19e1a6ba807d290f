"""The worker: a durable job table (the outbox), retries with backoff, dead letters, periodic
sweepers that run on the leader only, and a heartbeat for /readyz.

Claiming uses `FOR UPDATE SKIP LOCKED` on PostgreSQL so several workers share the table; on SQLite
one process does all the work. Leadership for sweepers is a PostgreSQL advisory lock held on a
connection of its own; on SQLite the single process is the leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, Integer, String, Text, delete, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from patientline.core import audit, clock, events
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.config import Settings
from patientline.core.db import Base, Database
from patientline.core.errors import Conflict, NotFound

log = logging.getLogger(__name__)

LEADER_LOCK_KEY = 0x504C5744  # "PLWD"


class JobStatus:
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"
    DISCARDED = "discarded"


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(80), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    run_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    locked_by: Mapped[str | None] = mapped_column(String(100))
    locked_until: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    finished_at: Mapped[datetime | None] = mapped_column()


class WorkerHeartbeat(Base):
    __tablename__ = "worker_heartbeats"
    node_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    beat_at: Mapped[datetime] = mapped_column()
    started_at: Mapped[datetime] = mapped_column()
    is_leader: Mapped[bool] = mapped_column(Boolean, default=False)


class JobDeadLettered(events.Event):
    type: ClassVar[str] = "jobs.dead_lettered"
    job_id: int
    kind: str
    error: str


JobHandler = Callable[[AsyncSession, dict[str, Any]], Awaitable[None]]
SweepFunction = Callable[[AsyncSession, Settings], Awaitable[None]]

HANDLERS: dict[str, JobHandler] = {}


@dataclass(frozen=True)
class Sweeper:
    name: str
    every_seconds: float
    run: SweepFunction


SWEEPERS: dict[str, Sweeper] = {}


def job_handler(kind: str) -> Callable[[JobHandler], JobHandler]:
    def register(func_: JobHandler) -> JobHandler:
        HANDLERS[kind] = func_
        return func_

    return register


def sweeper(name: str, *, every_seconds: float) -> Callable[[SweepFunction], SweepFunction]:
    def register(func_: SweepFunction) -> SweepFunction:
        SWEEPERS[name] = Sweeper(name, every_seconds, func_)
        return func_

    return register


def backoff(attempts: int) -> timedelta:
    """2, 4, 8 … seconds, capped at one hour, with up to 20 % jitter."""
    base = min(2.0**attempts, 3600.0)
    return timedelta(seconds=base * (1 + random.random() * 0.2))  # noqa: S311 - jitter, not secrecy


async def enqueue(
    session: AsyncSession,
    *,
    kind: str,
    payload: dict[str, Any],
    run_at: datetime | None = None,
    max_attempts: int = 5,
    idempotency_key: str | None = None,
) -> Job:
    """Adds a job in the caller's transaction, so it exists exactly when the change that caused it does."""
    if kind not in HANDLERS:
        raise ValueError(f"no handler for job kind {kind!r}")
    if idempotency_key:
        existing = await session.scalar(select(Job).where(Job.idempotency_key == idempotency_key))
        if existing is not None:
            return existing
    job = Job(
        kind=kind,
        payload=payload,
        run_at=run_at or clock.now(),
        max_attempts=max_attempts,
        idempotency_key=idempotency_key,
        created_at=clock.now(),
    )
    session.add(job)
    await session.flush()
    return job


async def claim(
    session: AsyncSession, *, worker_id: str, batch: int = 10, lease: timedelta = timedelta(minutes=5)
) -> list[Job]:
    now = clock.now()
    due = or_(
        (Job.status == JobStatus.PENDING) & (Job.run_at <= now),
        (Job.status == JobStatus.RUNNING) & (Job.locked_until < now),  # a crashed worker's lease ran out
    )
    query = select(Job).where(due).order_by(Job.run_at, Job.id).limit(batch).with_for_update(skip_locked=True)
    jobs = list(await session.scalars(query))
    for job in jobs:
        job.status = JobStatus.RUNNING
        job.locked_by = worker_id
        job.locked_until = now + lease
    return jobs


async def _held(session: AsyncSession, *, job_id: int, worker_id: str) -> Job | None:
    """The job, locked, if this worker still holds its lease (another may have taken it over)."""
    job = await session.get(Job, job_id, with_for_update=True)
    if job is None or job.status != JobStatus.RUNNING or job.locked_by != worker_id:
        return None
    return job


async def run_one(db: Database, job_id: int, *, worker_id: str) -> str:
    """Runs a claimed job in its own transaction; records failure in another. Returns the new status."""
    async with db.sessions() as session:
        try:
            async with session.begin():
                job = await _held(session, job_id=job_id, worker_id=worker_id)
                if job is None:
                    return "skipped"
                await HANDLERS[job.kind](session, dict(job.payload))
                job.status = JobStatus.DONE
                job.finished_at = clock.now()
                job.attempts += 1
                return job.status
        except Exception as exc:
            log.warning("job failed", extra={"job_id": job_id, "error_type": type(exc).__name__})
            return await _record_failure(session, job_id=job_id, worker_id=worker_id, error=_describe(exc))


def _describe(exc: Exception) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()[:2000]


async def _record_failure(session: AsyncSession, *, job_id: int, worker_id: str, error: str) -> str:
    async with session.begin():
        job = await _held(session, job_id=job_id, worker_id=worker_id)
        if job is None:
            return "skipped"
        job.attempts += 1
        job.last_error = error
        job.locked_by = None
        job.locked_until = None
        if job.attempts >= job.max_attempts:
            job.status = JobStatus.DEAD
            job.finished_at = clock.now()
            events.record(
                session,
                JobDeadLettered(
                    job_id=job.id,
                    kind=job.kind,
                    error=error[:300],
                    audience=events.Audience(permission=Permission.MANAGE_JOBS.value),
                ),
            )
        else:
            job.status = JobStatus.PENDING
            job.run_at = clock.now() + backoff(job.attempts)
        return job.status


async def run_due(db: Database, *, worker_id: str, limit: int = 50) -> int:
    """Claims and runs due jobs one at a time (a lease starts when its job does); returns how many ran."""
    done = 0
    while done < limit:
        async with db.sessions() as session, session.begin():
            claimed = await claim(session, worker_id=worker_id, batch=1)
        if not claimed:
            break
        await run_one(db, claimed[0].id, worker_id=worker_id)
        done += 1
    return done


# ---- dead letters (admin) ----------------------------------------------------------------------


async def list_jobs(session: AsyncSession, *, status: str | None = None, limit: int = 100) -> list[Job]:
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if status:
        query = query.where(Job.status == status)
    return list(await session.scalars(query))


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Job.status, func.count()).group_by(Job.status))
    return {status: int(n) for status, n in rows}


async def _dead_job(session: AsyncSession, job_id: int) -> Job:
    job = await session.get(Job, job_id)
    if job is None:
        raise NotFound("No such job.", details={"job_id": job_id})
    if job.status != JobStatus.DEAD:
        raise Conflict(
            "Only dead-lettered jobs can be retried or discarded.",
            details={"status": job.status, "allowed": [JobStatus.DEAD]},
            error_id="job_not_dead",
        )
    return job


async def retry_dead(session: AsyncSession, *, actor: Actor, job_id: int) -> Job:
    job = await _dead_job(session, job_id)
    audit.record(session, actor=actor, action="job.retry", target_type="job", target_id=job_id)
    job.status = JobStatus.PENDING
    job.attempts = 0
    job.run_at = clock.now()
    job.finished_at = None
    return job


async def discard_dead(session: AsyncSession, *, actor: Actor, job_id: int) -> Job:
    job = await _dead_job(session, job_id)
    audit.record(session, actor=actor, action="job.discard", target_type="job", target_id=job_id)
    job.status = JobStatus.DISCARDED
    return job


# ---- leadership and the worker loop ------------------------------------------------------------


class LeaderLock:
    """PostgreSQL advisory lock on a dedicated connection; always held on SQLite (one process). The
    worker's leadership by default; another `key` for another single-active role (the router)."""

    def __init__(self, db: Database, key: int = LEADER_LOCK_KEY) -> None:
        self.db = db
        self.key = key
        self._connection: AsyncConnection | None = None
        self.held = False

    async def try_acquire(self) -> bool:
        if self.db.is_sqlite:
            self.held = True
            return True
        if self.held and self._connection is not None:
            return await self._still_alive()
        connection = await self.db.engine.connect()
        got = bool(await connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}))
        await connection.commit()
        if got:
            self._connection, self.held = connection, True
        else:
            await connection.close()
        return got

    async def _still_alive(self) -> bool:
        assert self._connection is not None  # noqa: S101
        try:
            await self._connection.scalar(text("SELECT 1"))
            await self._connection.commit()
        except Exception:
            log.warning("advisory lock connection lost", extra={"lock_key": self.key})
            await self.release()
        return self.held

    async def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                await self._connection.commit()
            with contextlib.suppress(Exception):
                await self._connection.close()
        self._connection, self.held = None, False


class Worker:
    def __init__(self, db: Database, *, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.poll_seconds = settings.worker_poll_seconds
        self.node_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.leader = LeaderLock(db)
        self.started_at = clock.now()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_sweep: dict[str, datetime] = {}

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="patientline-worker")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Graceful: the job in hand finishes, then the lock is released."""
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, grace_seconds)
            except TimeoutError:
                self._task.cancel()
        await self.leader.release()
        await self._remove_heartbeat()

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.tick()
            except Exception:
                log.exception("worker tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.poll_seconds)

    async def tick(self) -> None:
        await self.heartbeat()
        while not self._stopping.is_set() and await run_due(self.db, worker_id=self.node_id):
            pass
        if await self.leader.try_acquire():
            await self.sweep()

    async def sweep(self) -> None:
        now = clock.now()
        for item in SWEEPERS.values():
            last = self._last_sweep.get(item.name)
            if last is not None and (now - last).total_seconds() < item.every_seconds:
                continue
            self._last_sweep[item.name] = now
            try:
                async with self.db.sessions() as session, session.begin():
                    await item.run(session, self.settings)
            except Exception:
                log.exception("sweeper failed", extra={"sweeper": item.name})

    async def heartbeat(self) -> None:
        now = clock.now()
        async with self.db.sessions() as session, session.begin():
            row = await session.get(WorkerHeartbeat, self.node_id)
            if row is None:
                session.add(
                    WorkerHeartbeat(
                        node_id=self.node_id, beat_at=now, started_at=self.started_at, is_leader=self.leader.held
                    )
                )
            else:
                row.beat_at, row.is_leader = now, self.leader.held

    async def _remove_heartbeat(self) -> None:
        with contextlib.suppress(Exception):
            async with self.db.sessions() as session, session.begin():
                row = await session.get(WorkerHeartbeat, self.node_id)
                if row is not None:
                    await session.delete(row)


async def latest_heartbeat(session: AsyncSession) -> datetime | None:
    return await session.scalar(select(func.max(WorkerHeartbeat.beat_at)))


async def prune_heartbeats(session: AsyncSession, *, older_than: timedelta) -> None:
    await session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < clock.now() - older_than))
