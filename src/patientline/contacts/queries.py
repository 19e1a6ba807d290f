"""Finding contacts: filters (dates, channel, direction, agent, queue, disposition with its sub-codes,
status, patient, phone, text), paging, and the CSV export with masked numbers and names."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.contacts import dispositions
from patientline.contacts.models import Contact, ContactDisposition
from patientline.contacts.service import dispositions_of
from patientline.core.config import get_settings
from patientline.core.errors import InvalidInput
from patientline.core.i18n import N_, gettext
from patientline.core.masking import mask_name, mask_phone
from patientline.core.validation import normalise_phone

PAGE_LIMIT = 200
EXPORT_BATCH = 500
EXPORT_LIMIT = 100_000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ContactFilter:
    date_from: date | None = None  # the hospital's local days, both included
    date_to: date | None = None
    channel: str | None = None
    direction: str | None = None
    agent_id: int | None = None
    queue_id: int | None = None
    disposition_id: int | None = None
    status: str | None = None
    patient_id: int | None = None
    phone: str | None = None
    text: str | None = None
    limit: int = 50
    offset: int = 0

    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in FILTER_FIELDS)


FILTER_FIELDS = ("date_from", "date_to", "channel", "direction", "agent_id", "queue_id", "disposition_id", "status",
                 "patient_id", "phone", "text")  # fmt: skip


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=ZoneInfo(get_settings().timezone))


def normalised_phone(value: str | None) -> str | None:
    """The phone filter compares E.164 numbers: what the agent typed is normalised first."""
    if not value or not value.strip():
        return None
    try:
        return normalise_phone(value.strip())
    except ValueError as exc:
        raise InvalidInput(
            "This is not a phone number.", details=[{"field": "phone", "problem": "format", "message": str(exc)}]
        ) from None


async def _conditions(session: AsyncSession, where: ContactFilter) -> list[Any]:
    conditions: list[Any] = []
    if where.date_from and where.date_to and where.date_to < where.date_from:
        message = gettext("The last day comes before the first.")
        raise InvalidInput(
            "The last day comes before the first.",
            details=[{"field": "date_to", "problem": "order", "message": message}],
        )
    if where.date_from:
        conditions.append(Contact.started_at >= _local_midnight(where.date_from))
    if where.date_to:
        conditions.append(Contact.started_at < _local_midnight(where.date_to + timedelta(days=1)))
    for column, value in (
        (Contact.channel, where.channel), (Contact.direction, where.direction), (Contact.agent_id, where.agent_id),
        (Contact.queue_id, where.queue_id), (Contact.status, where.status), (Contact.patient_id, where.patient_id),
    ):  # fmt: skip
        if value is not None and value != "":
            conditions.append(column == value)
    phone = normalised_phone(where.phone)
    if phone:
        conditions.append(Contact.phone == phone)
    if where.disposition_id:
        tree = await dispositions.load_tree(session)
        codes = tree.subtree(where.disposition_id) if where.disposition_id in tree.by_id else [where.disposition_id]
        conditions.append(
            exists().where(ContactDisposition.contact_id == Contact.id, ContactDisposition.code_id.in_(codes))
        )
    text = (where.text or "").strip()
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            or_(
                Contact.reference == text.upper(),
                Contact.subject.ilike(pattern, escape="\\"),
                Contact.notes.ilike(pattern, escape="\\"),
            )
        )
    return conditions


async def _query(session: AsyncSession, where: ContactFilter) -> Select[Contact]:
    return select(Contact).where(*await _conditions(session, where))


async def search(session: AsyncSession, where: ContactFilter) -> tuple[list[Contact], int]:
    """One page, the latest first, and how many match in all."""
    base = await _query(session, where)
    total = await session.scalar(select(func.count()).select_from(base.order_by(None).subquery()))
    page = base.order_by(Contact.started_at.desc(), Contact.id.desc()).limit(where.limit).offset(where.offset)
    return list(await session.scalars(page)), int(total or 0)


# --- export ----------------------------------------------------------------------------------------

CSV_HEADERS = (N_("Reference"), N_("Channel"), N_("Direction"), N_("Status"), N_("Started"), N_("Answered at"),
               N_("Ended"), N_("Queue"), N_("Agent"), N_("Patient id"), N_("Phone"), N_("Caller"), N_("Subject"),
               N_("Dispositions"), N_("Anonymised"))  # fmt: skip


def _cell(value: object) -> str:
    """Text a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _line(values: Sequence[object]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow([_cell(value) for value in values])
    return out.getvalue()


async def export_lines(
    session: AsyncSession,
    where: ContactFilter,
    *,
    queue_names: dict[int, str],
    agent_names: dict[int, str],
    labels: dict[str, str],
) -> AsyncIterator[str]:
    """The CSV of every contact that matches, in batches (keyset on started_at, id), phones and names
    masked, notes left out. Starts with a byte-order mark so spreadsheets read the Chinese as UTF-8."""
    zone = ZoneInfo(get_settings().timezone)
    tree = await dispositions.load_tree(session)
    yield "\ufeff" + _line([gettext(header) for header in CSV_HEADERS])
    base = await _query(session, replace(where, limit=0, offset=0))
    last: tuple[datetime, int] | None = None
    sent = 0
    while sent < EXPORT_LIMIT:
        query = base.order_by(Contact.started_at.desc(), Contact.id.desc()).limit(EXPORT_BATCH)
        if last is not None:
            query = query.where(
                or_(Contact.started_at < last[0], (Contact.started_at == last[0]) & (Contact.id < last[1]))
            )
        rows = list(await session.scalars(query))
        if not rows:
            break
        codes = await dispositions_of(session, [row.id for row in rows])
        for row in rows:
            yield _line([
                row.reference, labels.get(row.channel, row.channel), labels.get(row.direction, row.direction),
                labels.get(row.status, row.status), _local(row.started_at, zone), _local(row.answered_at, zone),
                _local(row.ended_at, zone), queue_names.get(row.queue_id or 0, ""),
                agent_names.get(row.agent_id or 0, ""), row.patient_id or "", mask_phone(row.phone),
                mask_name(row.caller_name), row.subject,
                "; ".join(tree.path_name(code) for code in codes.get(row.id, []) if code in tree.by_id),
                _local(row.anonymised_at, zone),
            ])  # fmt: skip
        sent += len(rows)
        last = (rows[-1].started_at, rows[-1].id)
        session.expunge_all()  # a long export keeps only one batch in memory


def _local(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if value else ""
