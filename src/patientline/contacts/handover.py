"""The shift handover log (交接班): notes per shift with pending items, acknowledged once by someone of
the next shift (never the author); items ticked off by whoever finishes them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.contacts.models import HandoverItem, ShiftHandover
from patientline.contacts.schemas import HandoverCreate, HandoverUpdate
from patientline.core import audit, clock
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.config import get_settings
from patientline.core.db import flush_or_conflict
from patientline.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, require_version
from patientline.core.i18n import gettext

AUDIT_TARGET = "shift_handover"
SHIFT_ORDER = {"day": 0, "evening": 1, "night": 2}
PAGE_LIMIT = 100


@dataclass
class Handover:
    row: ShiftHandover
    items: list[HandoverItem]

    @property
    def pending(self) -> int:
        return sum(1 for item in self.items if item.done_at is None)


def current_shift(moment: datetime | None = None) -> tuple[date, str]:
    """The hospital's shift now: day 08-16, evening 16-24, night 00-08 (counted to the day before)."""
    local = (moment or clock.now()).astimezone(ZoneInfo(get_settings().timezone))
    if local.hour < 8:
        return date.fromordinal(local.date().toordinal() - 1), "night"
    return local.date(), "day" if local.hour < 16 else "evening"


def _shift_rank() -> ColumnElement[int]:
    return case(SHIFT_ORDER, value=ShiftHandover.shift, else_=0)


async def get_handover(session: AsyncSession, handover_id: int) -> ShiftHandover:
    row = await session.get(ShiftHandover, handover_id)
    if row is None:
        raise NotFound("No such handover.", details={"id": handover_id})
    return row


async def items_of(session: AsyncSession, handover_ids: Sequence[int]) -> dict[int, list[HandoverItem]]:
    found: dict[int, list[HandoverItem]] = {handover_id: [] for handover_id in handover_ids}
    if handover_ids:
        rows = await session.scalars(
            select(HandoverItem)
            .where(HandoverItem.handover_id.in_(list(handover_ids)))
            .order_by(HandoverItem.position, HandoverItem.id)
        )
        for item in rows:
            found[item.handover_id].append(item)
    return found


async def read(session: AsyncSession, *, actor: Actor, handover_id: int) -> Handover:
    actor.require(Permission.HANDLE_CONTACTS)
    row = await get_handover(session, handover_id)
    return Handover(row, (await items_of(session, [row.id]))[row.id])


async def list_handovers(
    session: AsyncSession, *, actor: Actor, limit: int = 20, offset: int = 0, pending_only: bool = False
) -> tuple[list[Handover], int]:
    """Unacknowledged first, then the latest shift first."""
    actor.require(Permission.HANDLE_CONTACTS)
    base = select(ShiftHandover)
    if pending_only:
        base = base.where(ShiftHandover.acknowledged_at.is_(None))
    total = await session.scalar(select(func.count()).select_from(base.subquery()))
    query = base.order_by(
        ShiftHandover.acknowledged_at.is_not(None),
        ShiftHandover.shift_date.desc(),
        _shift_rank().desc(),
        ShiftHandover.id.desc(),
    )
    rows = list(await session.scalars(query.limit(limit).offset(offset)))
    items = await items_of(session, [row.id for row in rows])
    return [Handover(row, items[row.id]) for row in rows], int(total or 0)


async def latest(session: AsyncSession) -> Handover | None:
    """The last shift's handover (the notice on the contacts page shows it until it is acknowledged)."""
    query = (
        select(ShiftHandover)
        .order_by(ShiftHandover.shift_date.desc(), _shift_rank().desc(), ShiftHandover.id.desc())
        .limit(1)
    )
    row = await session.scalar(query)
    if row is None:
        return None
    return Handover(row, (await items_of(session, [row.id]))[row.id])


def _add_items(session: AsyncSession, handover_id: int, texts: Sequence[str], start: int) -> None:
    session.add_all(
        HandoverItem(handover_id=handover_id, position=start + index, text=text) for index, text in enumerate(texts)
    )


async def write(session: AsyncSession, *, actor: Actor, data: HandoverCreate) -> Handover:
    """One handover per shift: a second one for the same shift answers 409 with the first's id (add to it)."""
    actor.require(Permission.HANDLE_CONTACTS)
    if not data.notes.strip() and not data.items:
        message = gettext("Write notes or at least one pending item.")
        raise InvalidInput(
            "Write notes or at least one pending item.",
            details=[{"field": "notes", "problem": "required", "message": message}],
        )
    today = clock.today(get_settings().timezone)
    if abs((data.shift_date - today).days) > 7:
        message = gettext("Choose a shift within a week of today.")
        raise InvalidInput(
            "Choose a shift within a week of today.",
            details=[{"field": "shift_date", "problem": "range", "message": message}],
        )
    existing = await session.scalar(
        select(ShiftHandover).where(ShiftHandover.shift_date == data.shift_date, ShiftHandover.shift == data.shift)
    )
    if existing is not None:
        raise Conflict(
            "This shift already has a handover; add to it instead.",
            error_id="handover_exists",
            details={"id": existing.id},
        )
    row = ShiftHandover(shift_date=data.shift_date, shift=data.shift, author_id=actor.user_id, notes=data.notes)
    session.add(row)
    await flush_or_conflict(session)
    _add_items(session, row.id, data.items, 0)
    await flush_or_conflict(session)
    after = {"shift_date": data.shift_date.isoformat(), "shift": data.shift, "items": len(data.items)}
    audit.record(session, actor=actor, action="contacts.handover.write", target_type=AUDIT_TARGET, target_id=row.id,
                 after=after)  # fmt: skip
    return Handover(row, (await items_of(session, [row.id]))[row.id])


async def amend(session: AsyncSession, *, actor: Actor, handover_id: int, data: HandoverUpdate) -> Handover:
    """The author changes the notes or adds items until the next shift acknowledges."""
    handover = await read(session, actor=actor, handover_id=handover_id)
    row = handover.row
    require_version(expected=data.version, current=row.version)
    if row.author_id != actor.user_id:
        raise PermissionDenied("Only the author can change a handover.", error_id="not_author")
    if row.acknowledged_at is not None:
        raise Conflict("This handover was acknowledged and cannot change.", error_id="already_acknowledged")
    if data.notes is not None:
        row.notes = data.notes
    if data.add_items:
        start = 1 + max((item.position for item in handover.items), default=-1)
        _add_items(session, row.id, data.add_items, start)
    row.updated_at = clock.now()
    await flush_or_conflict(session)
    audit.record(session, actor=actor, action="contacts.handover.amend", target_type=AUDIT_TARGET, target_id=row.id,
                 after={"notes_changed": data.notes is not None, "items_added": len(data.add_items)})  # fmt: skip
    return Handover(row, (await items_of(session, [row.id]))[row.id])


async def acknowledge(session: AsyncSession, *, actor: Actor, handover_id: int, expected_version: int) -> Handover:
    """By someone other than the author, once."""
    handover = await read(session, actor=actor, handover_id=handover_id)
    row = handover.row
    require_version(expected=expected_version, current=row.version)
    if row.acknowledged_at is not None:
        raise Conflict("This handover was already acknowledged.", error_id="already_acknowledged")
    if row.author_id is not None and row.author_id == actor.user_id:
        raise PermissionDenied(
            "Someone of the next shift acknowledges a handover, not its author.", error_id="own_handover"
        )
    row.acknowledged_by_id, row.acknowledged_at = actor.user_id, clock.now()
    await flush_or_conflict(session)
    audit.record(session, actor=actor, action="contacts.handover.acknowledge", target_type=AUDIT_TARGET,
                 target_id=row.id)  # fmt: skip
    return handover


async def set_item_done(
    session: AsyncSession, *, actor: Actor, handover_id: int, item_id: int, done: bool = True
) -> HandoverItem:
    """Ticks an item off (who, when), or back on; ticking a done item again answers 409."""
    handover = await read(session, actor=actor, handover_id=handover_id)
    item = next((item for item in handover.items if item.id == item_id), None)
    if item is None:
        raise NotFound("No such pending item.", details={"id": item_id})
    if done and item.done_at is not None:
        raise Conflict("This item is already done.", error_id="item_done", details={"done_by_id": item.done_by_id})
    if not done and item.done_at is None:
        raise Conflict("This item is not done yet.", error_id="item_not_done")
    item.done_at, item.done_by_id = (clock.now(), actor.user_id) if done else (None, None)
    handover.row.updated_at = clock.now()  # the handover's version moves with its items
    await flush_or_conflict(session)
    action = "contacts.handover.item_done" if done else "contacts.handover.item_undone"
    audit.record(session, actor=actor, action=action, target_type=AUDIT_TARGET, target_id=handover.row.id,
                 after={"item_id": item.id})  # fmt: skip
    return item
