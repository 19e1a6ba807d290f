"""The agent workbench: one search box for callers, the patient card (masked numbers with a reveal, the
verification that attaches the caller to the contact, VIP and safety banners, what the HIS knows loaded
lazily and never blocking, open work orders, past contacts, quick actions) and the screen pop's target,
the contact of an accepted routed task.

Every patient shown is read through `patients.access` (purpose "workbench" or "contact:<id>"). URLs
carry ids only: what an agent types goes in request bodies (static/workbench.js posts to /api/patients),
and the caller's number stays on the server."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.contacts import service as contacts
from patientline.contacts.labels import CHANNEL_LABELS, VERIFIED_LABELS
from patientline.contacts.labels import STATUS_LABELS as CONTACT_STATUS_LABELS
from patientline.contacts.models import Contact
from patientline.core.audit import AuditEntry
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.i18n import N_, gettext, gettext_all, ngettext
from patientline.core.masking import mask_name, mask_phone
from patientline.core.validation import MAX_ID, PathId
from patientline.directory.models import Staff
from patientline.patients import access, callers, views
from patientline.patients.gateway import HisView, Overview
from patientline.patients.models import Patient, ResultSubscription
from patientline.routing.store import display_names
from patientline.web.deps import CurrentActor, Session, app_state
from patientline.web.templating import render
from patientline.workorders.labels import STATUS_LABELS as ORDER_STATUS_LABELS
from patientline.workorders.models import WorkOrder, WorkOrderType

router = APIRouter(include_in_schema=False)

ContactParam = Annotated[int | None, Query(ge=1, le=MAX_ID)]
SEX_LABELS = {"male": N_("Male"), "female": N_("Female"), "unknown": N_("Sex unknown")}
IDENTIFIER_LABELS = {
    "mrn": N_("Medical-record number"),
    "id_card": N_("ID card"),
    "visit_card": N_("Visit card"),
    "health_card": N_("Health card"),
    "insurance": N_("Insurance number"),
}
PHONE_LABELS = {"mobile": N_("mobile"), "home": N_("home"), "work": N_("work"), "family": N_("family")}
FLAG_LABELS = {"abusive": N_("Abusive caller"), "safety": N_("Safety risk")}
VISIT_LABELS = {"outpatient": N_("Outpatient"), "inpatient": N_("Inpatient"), "emergency": N_("Emergency"),
                "other": N_("Other")}  # fmt: skip
RESULT_STATUS_LABELS = {
    "registered": N_("Ordered"),
    "partial": N_("Partly ready"),
    "preliminary": N_("Preliminary"),
    "final": N_("Ready"),
    "amended": N_("Ready (amended)"),
    "corrected": N_("Ready (corrected)"),
    "appended": N_("Ready (appended)"),
    "cancelled": N_("Cancelled"),
    "entered-in-error": N_("Withdrawn"),
}
APPOINTMENT_LABELS = {
    "proposed": N_("Proposed"),
    "pending": N_("Pending"),
    "booked": N_("Booked"),
    "arrived": N_("Arrived"),
    "checked-in": N_("Checked in"),
    "fulfilled": N_("Attended"),
    "cancelled": N_("Cancelled"),
    "noshow": N_("Did not come"),
    "waitlist": N_("On the waiting list"),
    "entered-in-error": N_("Withdrawn"),
}
CATEGORY_LABELS = {"lab": N_("Lab"), "imaging": N_("Imaging")}
VIP_LABELS = {1: N_("VIP level 1"), 2: N_("VIP level 2"), 3: N_("VIP level 3")}
CLIENT_TEXTS = {
    "searching": N_("Searching…"),
    "nobody": N_("Nobody found. Register the caller below."),
    "found": N_("{count} found · Enter opens the first"),
    "his_searched": N_("Not in the local index: the hospital system was asked too."),
    "his_problem": N_("The hospital system could not be asked: {problem}"),
    "age": N_("{age} years"),
    "prospective": N_("Prospective"),
    "flag": FLAG_LABELS,
    "sex": SEX_LABELS,
    "identifier": IDENTIFIER_LABELS,
    "vip": N_("VIP {level}"),
    "open": N_("Open card"),
    "error": N_("Something went wrong."),
    "offline": N_("The server cannot be reached."),
    "verified": N_("Verified: the caller is attached to this contact."),
    "verified_plain": N_("Verified."),
    "subscribed": N_("The patient will get a text message when the result is ready."),
    "noted": N_("The note was added to the contact."),
    "flagged": N_("The caller is flagged."),
    "saved": N_("Saved"),
    "exported": N_("The export was downloaded."),
    "confirm_merge": N_("Fold patient #{id} into this patient? Their numbers, flags and results move here."),
    "registered": N_("Registered."),
    "triage_none": N_("No suggestion: ask the caller more about what is wrong."),
    "triage_clinic_none": N_("No department of this hospital is set for it."),
}


def client_texts() -> dict[str, Any]:
    """What workbench.js says, in the page's language."""
    result: dict[str, Any] = gettext_all(CLIENT_TEXTS)
    return result


def age_text(seconds: float | None) -> str:
    """How old cached data is, in words: '3 minutes', '2 hours', '4 days'."""
    if seconds is None:
        return ""
    minutes = int(seconds // 60)
    if minutes < 1:
        return gettext("less than a minute")
    if minutes < 60:
        return ngettext("%(num)d minute", "%(num)d minutes", minutes) % {"num": minutes}
    hours = minutes // 60
    if hours < 48:
        return ngettext("%(num)d hour", "%(num)d hours", hours) % {"num": hours}
    days = hours // 24
    return ngettext("%(num)d day", "%(num)d days", days) % {"num": days}


def _purpose(contact_id: int | None) -> str:
    return f"contact:{contact_id}" if contact_id else "workbench"


def _base_context(actor: Actor) -> dict[str, Any]:
    return {
        "texts": client_texts(),
        "sex_labels": SEX_LABELS,
        "identifier_labels": IDENTIFIER_LABELS,
        "flag_labels": FLAG_LABELS,
        "phone_labels": PHONE_LABELS,
        "can_write": actor.can(Permission.WRITE_PATIENTS),
        "can_manage": actor.can(Permission.MANAGE_PATIENTS),
        "can_contacts": actor.can(Permission.HANDLE_CONTACTS),
        "can_order": actor.can(Permission.CREATE_WORK_ORDERS),
    }


# --- the search page ---------------------------------------------------------------------------------


@router.get("/workbench")
async def workbench(request: Request, actor: CurrentActor) -> Response:
    actor.require(Permission.READ_PATIENTS)
    return render(request, "patients/workbench.html", _base_context(actor) | {"contact": None})


# --- the patient -------------------------------------------------------------------------------------


async def _current_contact(session: AsyncSession, actor: Actor, contact_id: int | None) -> Contact | None:
    if contact_id is None:
        return None
    return await contacts.read(session, actor=actor, contact_id=contact_id)


def _contact_view(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "reference": contact.reference,
        "channel": gettext(CHANNEL_LABELS.get(contact.channel, contact.channel)),
        "phone_masked": mask_phone(contact.phone),
        "caller_name_masked": mask_name(contact.caller_name),
        "patient_id": contact.patient_id,
        "verified_by": contact.verified_by,
        "verified_label": gettext(VERIFIED_LABELS.get(contact.verified_by, contact.verified_by)),
        "status": contact.status,
        "status_label": gettext(CONTACT_STATUS_LABELS.get(contact.status, contact.status)),
        "started_at": contact.started_at,
        "subject": contact.subject,
        "has_phone": bool(contact.phone),
    }


async def _open_orders(session: AsyncSession, patient_id: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(WorkOrder, WorkOrderType.name)
        .join(WorkOrderType, WorkOrderType.id == WorkOrder.type_id)
        .where(WorkOrder.patient_id == patient_id, WorkOrder.is_open.is_(True))
        .order_by(WorkOrder.next_due_at.is_(None), WorkOrder.next_due_at, WorkOrder.id)
        .limit(20)
    )
    return [
        {
            "id": order.id,
            "reference": order.reference,
            "type": type_name,
            "subject": order.subject,
            "status": gettext(ORDER_STATUS_LABELS.get(order.status, order.status)),
            "due": order.next_due_at,
        }
        for order, type_name in rows.tuples()
    ]


async def _past_contacts(session: AsyncSession, actor: Actor, patient_id: int) -> list[dict[str, Any]] | None:
    if not actor.can(Permission.HANDLE_CONTACTS):
        return None
    rows = await contacts.for_patient(session, patient_id, limit=20)
    agents = await display_names(session, {row.agent_id for row in rows if row.agent_id is not None})
    return [_contact_view(row) | {"agent": agents.get(row.agent_id or 0, "")} for row in rows]


async def _staff_choices(session: AsyncSession) -> list[tuple[int, str]]:
    rows = await session.execute(
        select(Staff.id, Staff.name, Staff.title).where(Staff.is_active.is_(True)).order_by(Staff.name).limit(500)
    )
    return [(staff_id, f"{name} {title}".strip()) for staff_id, name, title in rows.tuples()]


@router.get("/workbench/patients/{patient_id}")
async def patient_page(
    request: Request, patient_id: PathId, actor: CurrentActor, session: Session, contact: ContactParam = None
) -> Response:
    actor.require(Permission.READ_PATIENTS)
    async with session.begin():
        current = await _current_contact(session, actor, contact)
        patient = await access.read(session, actor=actor, patient_id=patient_id, purpose=_purpose(contact))
        if patient.id != patient_id:  # merged into another record: show the survivor under its own id
            suffix = f"?contact={contact}" if contact else ""
            return RedirectResponse(f"/workbench/patients/{patient.id}{suffix}", status_code=303)
        card = await views.patient_card(session, patient)
        setters = await display_names(session, {f.set_by_id for f in card.flags if f.set_by_id is not None})
        expert = await session.get(Staff, patient.vip_expert_id) if patient.vip_expert_id else None
        context = _base_context(actor) | {
            "card": card,
            "contact": _contact_view(current) if current else None,
            "attached": current is not None and current.patient_id == patient.id,
            "flag_setters": setters,
            "vip_label": gettext(VIP_LABELS.get(patient.vip_level, "")) if patient.vip_level else "",
            "expert": expert,
            "orders": await _open_orders(session, patient.id),
            "past_contacts": await _past_contacts(session, actor, patient.id),
            "staff": await _staff_choices(session) if actor.can(Permission.MANAGE_PATIENTS) else [],
            "can_call": app_state(request).voice is not None and actor.can(Permission.HANDLE_CONTACTS),
        }
    return render(request, "patients/workbench_patient.html", context)


def _view_state(view: HisView[Any]) -> dict[str, Any]:
    return {"live": view.live, "age": age_text(view.age_seconds), "never": view.fetched_at is None}


@router.get("/workbench/patients/{patient_id}/his")
async def his_partial(
    request: Request, patient_id: PathId, actor: CurrentActor, session: Session, contact: ContactParam = None
) -> Response:
    """Visits, appointments and results from the hospital's system (live, or the last copy with its
    age): loaded after the card, so a slow HIS never holds the page up."""
    actor.require(Permission.READ_PATIENTS)
    state = app_state(request)
    async with session.begin():
        patient = await access.read(session, actor=actor, patient_id=patient_id, purpose=_purpose(contact))
        overview: Overview = await state.his.overview(session, patient)
        waiting = set(
            await session.scalars(
                select(ResultSubscription.order_number).where(
                    ResultSubscription.patient_id == patient.id, ResultSubscription.status == "waiting"
                )
            )
        )
    oldest = [v for v in (overview.visits, overview.appointments, overview.results) if not v.live]
    ages = [v.age_seconds for v in oldest if v.age_seconds is not None]
    context = {
        "patient": patient,
        "linked": patient.his_id is not None,
        "overview": overview,
        "problem": gettext(overview.problem) if overview.problem else None,
        "stale_age": age_text(max(ages)) if ages else "",
        "nothing_cached": bool(oldest) and not ages,
        "visits": _view_state(overview.visits),
        "appointments": _view_state(overview.appointments),
        "results": _view_state(overview.results),
        "waiting": waiting,
        "show_content": state.settings.results_show_content,
        "visit_labels": VISIT_LABELS,
        "appointment_labels": APPOINTMENT_LABELS,
        "result_labels": RESULT_STATUS_LABELS,
        "category_labels": CATEGORY_LABELS,
        "can_write": actor.can(Permission.WRITE_PATIENTS),
    }
    return render(request, "patients/workbench_his.html", context)


@router.get("/workbench/patients/{patient_id}/access-log")
async def access_log_page(request: Request, patient_id: PathId, actor: CurrentActor, session: Session) -> Response:
    """Who read this patient's record, and why (supervisors)."""
    actor.require(Permission.MANAGE_PATIENTS)
    async with session.begin():
        patient: Patient = await access.read(session, actor=actor, patient_id=patient_id, purpose="access_log")
        rows = list(
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.target_type == "patient", AuditEntry.target_id == str(patient.id))
                .order_by(AuditEntry.id.desc())
                .limit(300)
            )
        )
    context = {"patient": patient, "name_masked": mask_name(patient.name), "entries": rows}
    return render(request, "patients/workbench_access_log.html", context)


# --- the screen pop ----------------------------------------------------------------------------------


@router.get("/workbench/contacts/{contact_id}")
async def contact_page(request: Request, contact_id: PathId, actor: CurrentActor, session: Session) -> Response:
    """The contact of an accepted task: its patient when known; else everyone with the caller's number
    (a family) to pick and verify, or the form to register the caller."""
    actor.require(Permission.READ_PATIENTS)
    async with session.begin():
        contact = await contacts.read(session, actor=actor, contact_id=contact_id)
        if contact.patient_id is not None:
            return RedirectResponse(f"/workbench/patients/{contact.patient_id}?contact={contact.id}", status_code=303)
        found = None
        if contact.phone:
            found = await callers.by_phone(
                session, actor=actor, gateway=app_state(request).his, phone=contact.phone, purpose=_purpose(contact.id)
            )
        candidates = await views.candidates(session, found.patients) if found else []
    context = _base_context(actor) | {
        "contact": _contact_view(contact),
        "candidates": candidates,
        "his_searched": bool(found and found.his_searched),
        "his_problem": found.his_problem if found else None,
    }
    return render(request, "patients/workbench_contact.html", context)
