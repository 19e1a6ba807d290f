"""Contact records: one per call, chat, message, walk-in or callback attempt. Opened when an agent
accepts a routed task (or by hand), coded with dispositions, linked to knowledge items and work
orders, closed once coded. Versioned and audited; phones in E.164; the patient attached by id only."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.contacts import dispositions
from patientline.contacts.models import Contact, ContactChannel, ContactDisposition, ContactLink
from patientline.contacts.schemas import ContactCreate, ContactUpdate, LinkIn
from patientline.core import audit, clock
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.config import get_settings
from patientline.core.db import flush_or_conflict
from patientline.core.errors import Conflict, DomainError, InvalidInput, NotFound, require_version
from patientline.core.i18n import gettext
from patientline.core.validation import MAX_ID
from patientline.knowledge import service as knowledge
from patientline.patients import index as patient_index
from patientline.routing import service as routing
from patientline.routing.models import RoutingTask
from patientline.workorders import service as workorders

AUDIT_TARGET = "contact"
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L, U: read aloud on the phone
FUTURE_SLACK = timedelta(minutes=5)
PAST_LIMIT = timedelta(days=31)
# the routing channels' names -> contact channels (anything new arrives as a voice contact until mapped)
ROUTING_CHANNELS = {
    "voice": ContactChannel.VOICE, "phone": ContactChannel.VOICE, "chat": ContactChannel.CHAT,
    "webchat": ContactChannel.CHAT, "sms": ContactChannel.SMS, "email": ContactChannel.EMAIL,
    "wechat": ContactChannel.WECHAT, "callback": ContactChannel.CALLBACK,
}  # fmt: skip
OUTBOUND_CHANNELS = frozenset({ContactChannel.CALLBACK})
EDITABLE = ("subject", "notes", "phone", "caller_name", "patient_id", "verified_by")


def _problem(field_: str, problem: str, message: str) -> dict[str, str]:
    return {"field": field_, "problem": problem, "message": message}


# --- reading ---------------------------------------------------------------------------------------


async def get_contact(session: AsyncSession, contact_id: int) -> Contact:
    row = await session.get(Contact, contact_id)
    if row is None:
        raise NotFound("No such contact.", details={"id": contact_id})
    return row


async def read(session: AsyncSession, *, actor: Actor, contact_id: int) -> Contact:
    actor.require(Permission.HANDLE_CONTACTS)
    return await get_contact(session, contact_id)


async def find_by_reference(session: AsyncSession, reference: str) -> Contact | None:
    return await session.scalar(select(Contact).where(Contact.reference == reference.strip().upper()))


async def dispositions_of(session: AsyncSession, contact_ids: Sequence[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {contact_id: [] for contact_id in contact_ids}
    if not contact_ids:
        return found
    rows = await session.execute(
        select(ContactDisposition.contact_id, ContactDisposition.code_id)
        .where(ContactDisposition.contact_id.in_(list(contact_ids)))
        .order_by(ContactDisposition.contact_id, ContactDisposition.code_id)
    )
    for contact_id, code_id in rows:
        found[contact_id].append(code_id)
    return found


async def links_of(session: AsyncSession, contact_id: int) -> list[ContactLink]:
    query = select(ContactLink).where(ContactLink.contact_id == contact_id).order_by(ContactLink.id)
    return list(await session.scalars(query))


async def link_labels(session: AsyncSession, links: Iterable[ContactLink]) -> dict[int, tuple[str, str]]:
    """Each link's label and page: the work order's reference, the knowledge item's question."""
    labels: dict[int, tuple[str, str]] = {}
    for row in links:
        try:
            if row.kind == "workorder":
                order = await workorders.get_order(session, row.target_id)
                labels[row.id] = (f"{order.reference} {order.subject}", f"/workorders/{order.id}")
            else:
                item = await knowledge.get_item(session, row.target_id)
                labels[row.id] = (item.question, f"/kb?item={item.id}")
        except DomainError:
            labels[row.id] = (f"#{row.target_id}", "")
    return labels


async def for_patient(session: AsyncSession, patient_id: int, *, limit: int = 20) -> list[Contact]:
    """The patient's past contacts on every channel, the latest first (the workbench's history).
    The caller reads the patient through patients.access; this lists the contacts that name them."""
    query = (
        select(Contact)
        .where(Contact.patient_id == patient_id)
        .order_by(Contact.started_at.desc(), Contact.id.desc())
        .limit(max(1, min(limit, 200)))
    )
    return list(await session.scalars(query))


# --- writing helpers -------------------------------------------------------------------------------


def _reference_candidate(moment: datetime) -> str:
    day = moment.astimezone(ZoneInfo(get_settings().timezone))
    tail = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(6))
    return f"CT-{day:%Y%m%d}-{tail}"


async def _add_with_reference(session: AsyncSession, contact: Contact) -> None:
    """CT-20261122-7K3QX9: the hospital's day and six random characters (one in 700 million a day to
    collide; a taken one is drawn again)."""
    for _ in range(8):
        candidate = _reference_candidate(contact.started_at)
        if await session.scalar(select(Contact.id).where(Contact.reference == candidate)) is None:
            break
    contact.reference = candidate
    session.add(contact)
    await flush_or_conflict(session)


async def _queue_id(session: AsyncSession, queue_id: int | None) -> int | None:
    if queue_id is None:
        return None
    try:
        return (await routing.get_queue(session, queue_id=queue_id)).id
    except NotFound:
        message = gettext("Choose an existing queue.")
        raise InvalidInput("Choose an existing queue.", details=[_problem("queue_id", "unknown", message)]) from None


def _editable(contact: Contact) -> dict[str, Any]:
    return {name: getattr(contact, name) for name in EDITABLE}


async def _set_dispositions(session: AsyncSession, contact: Contact, code_ids: list[int]) -> list[int]:
    """Replaces the contact's codes. New codes must be active; codes already on it may stay even when
    deactivated since."""
    current = (await dispositions_of(session, [contact.id]))[contact.id]
    added = [code_id for code_id in dict.fromkeys(code_ids) if code_id not in current]
    await dispositions.check_choosable(session, added)
    wanted = list(dict.fromkeys(code_ids))
    removed = [code_id for code_id in current if code_id not in wanted]
    if removed:
        await session.execute(
            delete(ContactDisposition).where(
                ContactDisposition.contact_id == contact.id, ContactDisposition.code_id.in_(removed)
            )
        )
    session.add_all(ContactDisposition(contact_id=contact.id, code_id=code_id) for code_id in added)
    return sorted(wanted)


async def _patient_id(session: AsyncSession, patient_id: int | None) -> int | None:
    """The patient to attach: it exists; a merged duplicate gives its survivor."""
    if patient_id is None:
        return None
    try:
        return (await patient_index.resolve(session, patient_id)).id
    except NotFound:
        message = gettext("There is no such patient.")
        raise InvalidInput("There is no such patient.", details=[_problem("patient_id", "unknown", message)]) from None


def _check_started(started_at: datetime) -> None:
    now = clock.now()
    if not now - PAST_LIMIT <= started_at <= now + FUTURE_SLACK:
        message = gettext("Choose a time within the last month.")
        raise InvalidInput("Choose a time within the last month.", details=[_problem("started_at", "range", message)])


def _require_editable(actor: Actor, contact: Contact) -> None:
    if contact.anonymised_at is not None:
        raise Conflict("This contact was anonymised and cannot change.", error_id="contact_anonymised")
    if contact.status == "closed" and not actor.can(Permission.SUPERVISE):
        raise Conflict("This contact is closed; a supervisor can correct it.", error_id="contact_closed")


# --- routed tasks ----------------------------------------------------------------------------------


async def open_for_task(session: AsyncSession, *, actor: Actor, task: RoutingTask) -> Contact:
    """The contact of a routed task the agent accepted; a second call returns the same contact."""
    existing = await session.scalar(select(Contact).where(Contact.routing_task_id == task.id))
    if existing is not None:
        return existing
    channel = ROUTING_CHANNELS.get(task.channel, ContactChannel.VOICE)
    caller = task.caller or {}
    patient_id = await _caller_patient(session, caller.get("patient_id"))
    contact = Contact(
        channel=channel, direction="outbound" if channel in OUTBOUND_CHANNELS else "inbound", status="open",
        started_at=task.entered_at, answered_at=clock.now(), queue_id=task.queue_id,
        agent_id=actor.user_id or task.agent_id, patient_id=patient_id,
        phone=task.caller_phone, caller_name=str(caller.get("name") or "")[:100], routing_task_id=task.id,
        external_ref=task.external_ref, subject=(task.subject or "")[:200],
    )  # fmt: skip
    await _add_with_reference(session, contact)
    audit.record(session, actor=actor, action="contacts.contact.open", target_type=AUDIT_TARGET, target_id=contact.id,
                 after={"routing_task_id": task.id, "channel": channel})  # fmt: skip
    return contact


async def _caller_patient(session: AsyncSession, patient_id: object) -> int | None:
    """The patient a routed task names (set by whoever created it): its survivor if it was merged since,
    none if it is not (or no longer) in the index: the screen pop then looks the caller up by number."""
    if not isinstance(patient_id, int) or isinstance(patient_id, bool):
        return None
    try:
        return (await patient_index.resolve(session, patient_id)).id
    except NotFound:
        return None


async def end_for_task(session: AsyncSession, *, task_id: int) -> Contact | None:
    """The routed task ended (hung up, chat closed): the contact's end time, once."""
    contact = await session.scalar(select(Contact).where(Contact.routing_task_id == task_id))
    if contact is not None and contact.ended_at is None:
        contact.ended_at = clock.now()
        await flush_or_conflict(session)
    return contact


# --- by hand ---------------------------------------------------------------------------------------


async def create(session: AsyncSession, *, actor: Actor, data: ContactCreate) -> Contact:
    actor.require(Permission.HANDLE_CONTACTS)
    now = clock.now()
    started = data.started_at or now
    _check_started(started)
    code_ids = await dispositions.check_choosable(session, data.disposition_ids)
    direction = "outbound" if data.channel in OUTBOUND_CHANNELS else data.direction
    queue_id = await _queue_id(session, data.queue_id)
    patient_id = await _patient_id(session, data.patient_id)
    contact = Contact(
        channel=data.channel, direction=direction, status="open", started_at=started, answered_at=started,
        queue_id=queue_id, agent_id=actor.user_id, patient_id=patient_id,
        verified_by=data.verified_by if data.patient_id else "", phone=data.phone, caller_name=data.caller_name,
        external_ref=data.external_ref, subject=data.subject, notes=data.notes,
    )  # fmt: skip
    await _add_with_reference(session, contact)
    session.add_all(ContactDisposition(contact_id=contact.id, code_id=code_id) for code_id in code_ids)
    await flush_or_conflict(session)
    after = {"channel": contact.channel, "direction": direction, "patient_id": contact.patient_id,
             "disposition_ids": code_ids}  # fmt: skip
    audit.record(session, actor=actor, action="contacts.contact.create", target_type=AUDIT_TARGET,
                 target_id=contact.id, after=after)  # fmt: skip
    return contact


async def update(session: AsyncSession, *, actor: Actor, contact_id: int, data: ContactUpdate) -> Contact:
    contact = await read(session, actor=actor, contact_id=contact_id)
    require_version(expected=data.version, current=contact.version)
    _require_editable(actor, contact)
    sent = data.model_fields_set
    before = _editable(contact)
    before_codes = (await dispositions_of(session, [contact.id]))[contact.id]
    if "patient_id" in sent:
        contact.patient_id = await _patient_id(session, data.patient_id)
        if contact.patient_id is None:
            contact.verified_by = ""
    if data.verified_by is not None:
        contact.verified_by = data.verified_by if contact.patient_id is not None else ""
    if "phone" in sent:
        contact.phone = data.phone
    for name in ("subject", "notes", "caller_name"):
        value = getattr(data, name)
        if value is not None:
            setattr(contact, name, value)
    codes = before_codes
    if data.disposition_ids is not None:
        if contact.status == "closed" and not data.disposition_ids:
            _no_codes()
        codes = await _set_dispositions(session, contact, data.disposition_ids)
    # the audit names the fields that changed and keeps ids, never the free text or the number
    changed = [name for name in EDITABLE if getattr(contact, name) != before[name]]
    if codes != before_codes:
        changed.append("disposition_ids")
    if changed:
        contact.updated_at = clock.now()  # a change of codes alone bumps the version too
        await flush_or_conflict(session)
        audit.record(
            session, actor=actor, action="contacts.contact.update", target_type=AUDIT_TARGET, target_id=contact.id,
            before={"patient_id": before["patient_id"], "verified_by": before["verified_by"],
                    "disposition_ids": before_codes},
            after={"fields": changed, "patient_id": contact.patient_id, "verified_by": contact.verified_by,
                   "disposition_ids": codes},
        )  # fmt: skip
    return contact


def _no_codes() -> None:
    message = gettext("Code the contact with at least one disposition before closing it.")
    raise InvalidInput(
        "Code the contact with at least one disposition before closing it.",
        error_id="disposition_required",
        details=[_problem("disposition_ids", "required", message)],
    )


async def close(
    session: AsyncSession,
    *,
    actor: Actor,
    contact_id: int,
    expected_version: int,
    disposition_ids: list[int] | None = None,
    notes: str | None = None,
) -> Contact:
    """Closes a coded contact (a hotline codes every contact); codes and notes may come with the close."""
    contact = await read(session, actor=actor, contact_id=contact_id)
    require_version(expected=expected_version, current=contact.version)
    if contact.anonymised_at is not None:
        raise Conflict("This contact was anonymised and cannot change.", error_id="contact_anonymised")
    if contact.status == "closed":
        raise Conflict("This contact is already closed.", error_id="contact_closed")
    codes = (
        await _set_dispositions(session, contact, disposition_ids)
        if disposition_ids is not None
        else (await dispositions_of(session, [contact.id]))[contact.id]
    )
    if not codes:
        _no_codes()
    if notes is not None:
        contact.notes = notes
    now = clock.now()
    contact.status = "closed"
    contact.ended_at = contact.ended_at or now
    contact.updated_at = now
    await flush_or_conflict(session)
    audit.record(session, actor=actor, action="contacts.contact.close", target_type=AUDIT_TARGET,
                 target_id=contact.id, after={"disposition_ids": codes})  # fmt: skip
    return contact


async def reveal_phone(session: AsyncSession, *, actor: Actor, contact_id: int, reason: str) -> str:
    """The full number, with a reason that the audit keeps."""
    contact = await read(session, actor=actor, contact_id=contact_id)
    if not contact.phone:
        raise NotFound("This contact has no phone number.", details={"id": contact_id})
    audit.record(session, actor=actor, action="contacts.contact.reveal_phone", target_type=AUDIT_TARGET,
                 target_id=contact.id, reason=reason)  # fmt: skip
    return contact.phone


# --- links -----------------------------------------------------------------------------------------


async def _link_target(session: AsyncSession, data: LinkIn) -> int:
    target = data.target.strip()
    if data.kind == "workorder":
        order = await workorders.find_by_reference(session, target) if not target.isdigit() else None
        if order is None and target.isdigit() and int(target) <= MAX_ID:
            try:
                order = await workorders.get_order(session, int(target))
            except NotFound:
                order = None
        if order is None:
            message = gettext("Link to an existing work order by its reference or id.")
            raise InvalidInput("Link to an existing work order by its reference or id.",
                               details=[_problem("target", "unknown", message)])  # fmt: skip
        return order.id
    item_id = int(target) if target.isdigit() and int(target) <= MAX_ID else None
    try:
        if item_id is None:
            raise NotFound("This knowledge item does not exist.")
        return (await knowledge.get_item(session, item_id)).id
    except NotFound:
        message = gettext("Link to an existing knowledge item by its id.")
        raise InvalidInput(
            "Link to an existing knowledge item by its id.", details=[_problem("target", "unknown", message)]
        ) from None


async def add_link(session: AsyncSession, *, actor: Actor, contact_id: int, data: LinkIn) -> ContactLink:
    """Idempotent: linking the same item twice keeps one link. Allowed on closed contacts too (the
    work order is often registered after the call)."""
    contact = await read(session, actor=actor, contact_id=contact_id)
    if contact.anonymised_at is not None:
        raise Conflict("This contact was anonymised and cannot change.", error_id="contact_anonymised")
    target_id = await _link_target(session, data)
    return await _link(session, actor=actor, contact=contact, kind=data.kind, target_id=target_id)


async def _link(session: AsyncSession, *, actor: Actor, contact: Contact, kind: str, target_id: int) -> ContactLink:
    existing = await session.scalar(
        select(ContactLink).where(
            ContactLink.contact_id == contact.id, ContactLink.kind == kind, ContactLink.target_id == target_id
        )
    )
    if existing is not None:
        return existing
    row = ContactLink(contact_id=contact.id, kind=kind, target_id=target_id)
    session.add(row)
    await flush_or_conflict(session)
    audit.record(session, actor=actor, action="contacts.contact.link", target_type=AUDIT_TARGET,
                 target_id=contact.id, after={"kind": kind, "target_id": target_id})  # fmt: skip
    return row


async def remove_link(session: AsyncSession, *, actor: Actor, contact_id: int, link_id: int) -> None:
    contact = await read(session, actor=actor, contact_id=contact_id)
    row = await session.get(ContactLink, link_id)
    if row is None or row.contact_id != contact.id:
        raise NotFound("No such link.", details={"id": link_id})
    await session.delete(row)
    await flush_or_conflict(session)
    audit.record(session, actor=actor, action="contacts.contact.unlink", target_type=AUDIT_TARGET,
                 target_id=contact.id, before={"kind": row.kind, "target_id": row.target_id})  # fmt: skip


# --- work-order callbacks --------------------------------------------------------------------------


class CalledOrder(Protocol):
    id: int
    reference: str
    subject: str
    caller_phone: str | None
    caller_name: str
    patient_id: int | None


async def record_callback_attempt(
    session: AsyncSession, *, actor: Actor, order: CalledOrder, outcome: str, note: str
) -> Contact:
    """A work order's callback attempt as an outbound `callback` contact, linked to the order, coded
    `callback.<outcome>` (or `callback`) when the tree has it, and closed: the attempt is over."""
    now = clock.now()
    contact = Contact(
        channel=ContactChannel.CALLBACK, direction="outbound", status="closed", started_at=now, answered_at=now,
        ended_at=now, agent_id=actor.user_id, patient_id=order.patient_id, phone=order.caller_phone,
        caller_name=(order.caller_name or "")[:100], subject=f"{order.reference} {order.subject}"[:200],
        notes=note or "", external_ref=order.reference,
    )  # fmt: skip
    await _add_with_reference(session, contact)
    tree = await dispositions.load_tree(session)
    by_code = {row.code: row.id for row in tree.by_id.values()}
    for code in (f"callback.{outcome}", "callback"):
        code_id = by_code.get(code)
        if code_id is not None and tree.effectively_active(code_id):
            session.add(ContactDisposition(contact_id=contact.id, code_id=code_id))
            break
    await _link(session, actor=actor, contact=contact, kind="workorder", target_id=order.id)
    audit.record(session, actor=actor, action="contacts.contact.callback_attempt", target_type=AUDIT_TARGET,
                 target_id=contact.id, after={"order_id": order.id, "outcome": outcome})  # fmt: skip
    return contact
