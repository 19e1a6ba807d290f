"""Append-only audit log: who, what, when, from where, before and after.

Rows are only ever inserted; the migration adds database triggers that refuse UPDATE and DELETE.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from patientline.core import clock
from patientline.core.auth.actor import Actor
from patientline.core.db import Base, BulkInsertMixin


class AuditEntry(BulkInsertMixin, Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True)
    actor_name: Mapped[str] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(16))
    ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(80), index=True)
    target_type: Mapped[str | None] = mapped_column(String(60), index=True)
    target_id: Mapped[str | None] = mapped_column(String(60))
    reason: Mapped[str | None] = mapped_column(String(500))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


def record(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    target_type: str | None = None,
    target_id: object = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        at=clock.now(),
        actor_id=actor.user_id,
        actor_name=actor.username,
        via=actor.via,
        ip=actor.ip,
        request_id=actor.request_id,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        reason=reason,
        before=_jsonable(before),
        after=_jsonable(after),
    )
    session.add(entry)
    return entry


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only what differs, so the log shows the change and not the whole record."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


def _jsonable(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in value.items()}


async def search(
    session: AsyncSession,
    *,
    text: str | None = None,
    action: str | None = None,
    actor_name: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[AuditEntry]:
    """Newest first; `before_id` pages backwards."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if text:
        pattern = f"%{text}%"
        query = query.where(
            or_(
                AuditEntry.action.ilike(pattern),
                AuditEntry.actor_name.ilike(pattern),
                AuditEntry.target_id.ilike(pattern),
                AuditEntry.reason.ilike(pattern),
                cast(AuditEntry.before, String).ilike(pattern),
                cast(AuditEntry.after, String).ilike(pattern),
            )
        )
    if action:
        query = query.where(AuditEntry.action.startswith(action))
    if actor_name:
        query = query.where(func.lower(AuditEntry.actor_name) == actor_name.lower())
    if target_type:
        query = query.where(AuditEntry.target_type == target_type)
    if target_id:
        query = query.where(AuditEntry.target_id == target_id)
    if since:
        query = query.where(AuditEntry.at >= since)
    if until:
        query = query.where(AuditEntry.at < until)
    if before_id:
        query = query.where(AuditEntry.id < before_id)
    return list(await session.scalars(query))
