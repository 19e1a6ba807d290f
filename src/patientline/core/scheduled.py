"""Housekeeping sweepers of the foundation (run by the leader's worker)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock
from patientline.core.auth import service as auth
from patientline.core.config import Settings
from patientline.core.events import EventLogEntry
from patientline.core.jobs import Job, JobStatus, prune_heartbeats, sweeper


@sweeper("auth.purge_sessions", every_seconds=300)
async def purge_sessions(session: AsyncSession, settings: Settings) -> None:
    await auth.purge_expired_sessions(session, settings=settings)


@sweeper("events.retention", every_seconds=3600)
async def prune_event_log(session: AsyncSession, settings: Settings) -> None:
    cutoff = clock.now() - timedelta(days=settings.event_retention_days)
    await session.execute(delete(EventLogEntry).where(EventLogEntry.created_at < cutoff))


@sweeper("jobs.retention", every_seconds=3600)
async def prune_finished_jobs(session: AsyncSession, settings: Settings) -> None:
    cutoff = clock.now() - timedelta(days=14)
    await session.execute(delete(Job).where(Job.status == JobStatus.DONE, Job.finished_at < cutoff))
    await prune_heartbeats(session, older_than=timedelta(hours=1))
