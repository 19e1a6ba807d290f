"""Retention (PIPL): contacts older than `contact_retention_days` lose what identifies the person —
phone, caller name, notes, subject, patient — and keep what statistics need (channel, times, queue,
agent, dispositions, links). A daily sweep in bounded batches; when more is due than one run takes,
a job carries on in fresh transactions. One audit row per run with the count."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.contacts.models import Contact
from patientline.core import audit, clock, jobs
from patientline.core.auth.actor import SYSTEM, Actor
from patientline.core.config import Settings, get_settings

BATCH = 500
BATCHES_PER_RUN = 20  # at most 10,000 contacts a transaction
CONTINUE_JOB = "contacts.anonymise"
SWEEP = "contacts.retention"


def cutoff_for(days: int, now: datetime | None = None) -> datetime:
    return (now or clock.now()) - timedelta(days=days)


async def anonymise_old(
    session: AsyncSession,
    *,
    retention_days: int,
    actor: Actor = SYSTEM,
    batch: int = BATCH,
    batches: int = BATCHES_PER_RUN,
) -> tuple[int, bool]:
    """Anonymises up to `batch * batches` contacts that started before the cutoff; returns how many,
    and whether more are due."""
    cutoff = cutoff_for(retention_days)
    now = clock.now()
    done, more = 0, False
    for _ in range(batches):
        ids = list(
            await session.scalars(
                select(Contact.id)
                .where(Contact.anonymised_at.is_(None), Contact.started_at < cutoff)
                .order_by(Contact.id)
                .limit(batch)
            )
        )
        if not ids:
            break
        await session.execute(
            update(Contact)
            .where(Contact.id.in_(ids), Contact.anonymised_at.is_(None))
            .values(
                phone=None, caller_name="", notes="", subject="", patient_id=None, verified_by="",
                anonymised_at=now, updated_at=now, version=Contact.version + 1,
            )
            .execution_options(synchronize_session="fetch")  # rows already loaded show what was cleared
        )  # fmt: skip
        done += len(ids)
        if len(ids) < batch:
            break
    else:
        left = select(Contact.id).where(Contact.anonymised_at.is_(None), Contact.started_at < cutoff).limit(1)
        more = await session.scalar(left) is not None
    _summary(session, actor, done, cutoff, retention_days)
    return done, more


def _summary(session: AsyncSession, actor: Actor, count: int, cutoff: datetime, days: int) -> None:
    if count:
        audit.record(session, actor=actor, action="contacts.anonymised", target_type="contact",
                     after={"count": count, "cutoff": cutoff, "retention_days": days})  # fmt: skip


async def run(session: AsyncSession, *, retention_days: int, actor: Actor = SYSTEM) -> int:
    """One run: a bounded amount now, the rest by a job that re-enqueues itself."""
    count, more = await anonymise_old(
        session, retention_days=retention_days, actor=actor, batch=BATCH, batches=BATCHES_PER_RUN
    )
    if more:
        await jobs.enqueue(session, kind=CONTINUE_JOB, payload={"retention_days": retention_days})
    return count


@jobs.sweeper(SWEEP, every_seconds=24 * 3600)
async def sweep_retention(session: AsyncSession, settings: Settings) -> None:
    await run(session, retention_days=settings.contact_retention_days)


@jobs.job_handler(CONTINUE_JOB)
async def continue_retention(session: AsyncSession, payload: dict[str, Any]) -> None:
    days = int(payload.get("retention_days") or get_settings().contact_retention_days)
    await run(session, retention_days=max(days, 30))
