"""Representative questions on their way into the base (KB2): a caller's wording one click away from
the agent, and the searches that found nothing. Near-duplicates fold into one candidate that counts
how often it was heard; editors attach it to an item as a variant, make a new item of it, or dismiss
it."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from patientline.core import audit, clock, events
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.errors import Conflict, NotFound, require_version
from patientline.knowledge import service
from patientline.knowledge.events import KNOWLEDGE_REVIEWERS, CandidatesChanged
from patientline.knowledge.models import Candidate, CandidateSighting, CandidateStatus, Item
from patientline.knowledge.search.text import fold

log = logging.getLogger(__name__)
SIMILAR_ENOUGH = 0.75  # share of character pairs in common (Dice): "挂号怎么挂" ~ "怎么挂号"
RECENT_OPEN = 3000  # open candidates compared with a new one
_NOT_TEXT = re.compile(r"[\W_]+", re.UNICODE)


def signature(text: str) -> str:
    """The comparable form: half-width, simplified, lower case, without punctuation or spaces."""
    return _NOT_TEXT.sub("", fold(text))[:200]


def _pairs(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} or {text}


def similarity(a: str, b: str) -> float:
    left, right = _pairs(a), _pairs(b)
    return 2 * len(left & right) / (len(left) + len(right))


async def _nearest_open(session: AsyncSession, key: str) -> Candidate | None:
    exact = await session.scalar(
        select(Candidate).where(Candidate.signature == key, Candidate.status == CandidateStatus.OPEN.value).limit(1)
    )
    if exact is not None:
        return exact
    recent = await session.execute(
        select(Candidate.id, Candidate.signature)
        .where(Candidate.status == CandidateStatus.OPEN.value)
        .order_by(Candidate.last_seen_at.desc())
        .limit(RECENT_OPEN)
    )
    best_id, best = None, SIMILAR_ENOUGH
    for candidate_id, other in recent:
        score = similarity(key, other)
        if score >= best:
            best_id, best = candidate_id, score
    return None if best_id is None else await session.get(Candidate, best_id)


async def suggest(
    session: AsyncSession,
    *,
    actor: Actor,
    text: str,
    source: str = "agent",
    context: str = "",
    item_id: int | None = None,
) -> Candidate:
    """Records a caller's wording; a near-duplicate of an open candidate counts it up instead."""
    actor.require(Permission.READ_KNOWLEDGE)
    key = signature(text)
    if item_id is not None and await session.get(Item, item_id) is None:
        item_id = None
    candidate = await _nearest_open(session, key) if key else None
    now = clock.now()
    if candidate is None:
        candidate = Candidate(text=text, signature=key, source=source, suggested_item_id=item_id, count=1,
                              last_seen_at=now, version=1)  # fmt: skip
        session.add(candidate)
    else:
        await _count_sighting(session, candidate, now=now, item_id=item_id)
    await session.flush()
    session.add(CandidateSighting(candidate_id=candidate.id, text=text, source=source, context=context,
                                  user_id=actor.user_id, seen_at=now))  # fmt: skip
    await session.flush()
    events.record(
        session, CandidatesChanged(candidate_id=candidate.id, count=candidate.count, audience=KNOWLEDGE_REVIEWERS)
    )
    return candidate


async def _count_sighting(session: AsyncSession, candidate: Candidate, *, now: datetime, item_id: int | None) -> None:
    """One atomic UPDATE, outside the version counter: agents hearing the same wording at the same
    moment both count, and neither fails."""
    count = await session.scalar(
        update(Candidate)
        .where(Candidate.id == candidate.id)
        .values(
            count=Candidate.count + 1,
            last_seen_at=now,
            suggested_item_id=func.coalesce(Candidate.suggested_item_id, item_id),
        )
        .returning(Candidate.count)
        .execution_options(synchronize_session=False)  # the two values below are all that changed
    )
    set_committed_value(candidate, "count", count)
    set_committed_value(candidate, "last_seen_at", now)


async def record_miss(session: AsyncSession, *, actor: Actor, text: str, source: str) -> None:
    """A search that found nothing, collected on the side: whatever goes wrong here, the search it came
    from still answers."""
    try:
        async with session.begin():
            await suggest(session, actor=actor, text=text, source=source)
    except Exception:
        log.exception("a missed search could not be collected")


@dataclass(frozen=True)
class CandidateFilter:
    status: str = CandidateStatus.OPEN.value
    source: str | None = None
    limit: int = 200
    offset: int = 0


async def list_candidates(session: AsyncSession, *, where: CandidateFilter = CandidateFilter()) -> list[Candidate]:
    query = select(Candidate).where(Candidate.status == where.status)
    if where.source:
        query = query.where(Candidate.source == where.source)
    order = (Candidate.count.desc(), Candidate.last_seen_at.desc())
    return list(await session.scalars(query.order_by(*order).limit(where.limit).offset(where.offset)))


async def open_count(session: AsyncSession) -> int:
    count = await session.scalar(
        select(func.count()).select_from(Candidate).where(Candidate.status == CandidateStatus.OPEN.value)
    )
    return int(count or 0)


async def sightings(session: AsyncSession, *, candidate_id: int) -> list[CandidateSighting]:
    return list(
        await session.scalars(
            select(CandidateSighting)
            .where(CandidateSighting.candidate_id == candidate_id)
            .order_by(CandidateSighting.seen_at.desc())
            .limit(100)
        )
    )


async def get_candidate(session: AsyncSession, candidate_id: int) -> Candidate:
    row = await session.get(Candidate, candidate_id)
    if row is None:
        raise NotFound("This candidate does not exist.", details={"candidate_id": candidate_id})
    return row


async def _decide(
    session: AsyncSession, *, actor: Actor, candidate_id: int, expected_version: int, status: str, item_id: int | None
) -> Candidate:
    row = await get_candidate(session, candidate_id)
    require_version(expected=expected_version, current=row.version)
    if row.status != CandidateStatus.OPEN:
        raise Conflict(
            "This candidate was already handled.", error_id="invalid_transition", details={"status": row.status}
        )
    row.status, row.item_id, row.decided_by_id = status, item_id, actor.user_id
    await session.flush()
    audit.record(
        session, actor=actor, action=f"knowledge.candidate.{status}", target_type="kb_candidate", target_id=row.id,
        after={"status": status, "item_id": item_id, "text": row.text},
    )  # fmt: skip
    return row


async def attach(
    session: AsyncSession, *, actor: Actor, candidate_id: int, expected_version: int, item_id: int
) -> Candidate:
    """The candidate becomes a representative question of the item, live at once."""
    row = await get_candidate(session, candidate_id)
    await service.add_variant(session, actor=actor, item_id=item_id, text=row.text, source="candidate")
    return await _decide(
        session, actor=actor, candidate_id=candidate_id, expected_version=expected_version,
        status=CandidateStatus.ATTACHED.value, item_id=item_id,
    )  # fmt: skip


async def create_item_from(
    session: AsyncSession, *, actor: Actor, candidate_id: int, expected_version: int, values: dict[str, Any]
) -> Item:
    """A new draft item whose question is the candidate's wording (or what the editor made of it)."""
    row = await get_candidate(session, candidate_id)
    variants = [row.text] if row.text != values.get("question") else []
    item = await service.create_item(
        session, actor=actor, values=values, variants=variants, note=f"candidate {candidate_id}"
    )
    await _decide(
        session, actor=actor, candidate_id=candidate_id, expected_version=expected_version,
        status=CandidateStatus.CREATED.value, item_id=item.id,
    )  # fmt: skip
    return item


async def dismiss(session: AsyncSession, *, actor: Actor, candidate_id: int, expected_version: int) -> Candidate:
    actor.require(Permission.EDIT_KNOWLEDGE)
    return await _decide(
        session, actor=actor, candidate_id=candidate_id, expected_version=expected_version,
        status=CandidateStatus.DISMISSED.value, item_id=None,
    )  # fmt: skip
