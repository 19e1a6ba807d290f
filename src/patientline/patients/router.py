"""Patient API: search the index, open a card (audited), register, correct, verify a caller, reveal a
number with a reason, VIP profiles, safety flags, merges and the export of one patient's data.

Searches are POSTs: what an agent types (phone and ID numbers, names) never travels in a URL."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select

from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.errors import InvalidInput, NotFound
from patientline.core.i18n import N_
from patientline.patients import access, callers, export, index, profile, views
from patientline.patients.models import PatientIdentifier, PatientPhone
from patientline.patients.schemas import (
    ExportIn,
    FlagClearIn,
    FlagIn,
    MergeIn,
    PatientCard,
    PatientIn,
    PatientPatch,
    Purpose,
    RevealIn,
    SearchIn,
    SearchOut,
    VerifyIn,
    VipIn,
)
from patientline.web.deps import CurrentActor, Session, app_state
from patientline.web.responses import FastJSONResponse

router = APIRouter(prefix="/api/patients", tags=["patients"])
CLEARABLE = frozenset({"birth_date"})  # fields a null empties; for the others a null means "unchanged"


async def _card(session: Session, patient_id: int) -> dict[str, Any]:
    """The card as it is after a change (the session does not flush by itself)."""
    await session.flush()
    patient = await index.resolve(session, patient_id)
    return (await views.patient_card(session, patient)).model_dump(mode="json")


@router.post("/search", response_model=SearchOut, summary="Find callers by phone, ID card, record number or name")
async def search(body: SearchIn, request: Request, actor: CurrentActor, session: Session) -> Response:
    """Nobody in the local index by that phone or number: the hospital's system is asked, and whom it
    knows joins the index (`his_searched`); when it cannot answer, `his_problem` says why."""
    async with session.begin():
        found = await callers.search(
            session, actor=actor, gateway=app_state(request).his, text=body.query, purpose=body.purpose
        )
        result = SearchOut(
            by=found.by, candidates=await views.candidates(session, found.patients),
            his_searched=found.his_searched, his_problem=found.his_problem,
        )  # fmt: skip
    return FastJSONResponse(result.model_dump(mode="json"))


@router.get("/{patient_id:int}", response_model=PatientCard, summary="Open a patient card (audited)")
async def read(
    patient_id: int, actor: CurrentActor, session: Session, purpose: Annotated[Purpose, Query()] = "lookup"
) -> Response:
    async with session.begin():
        patient = await access.read(session, actor=actor, patient_id=patient_id, purpose=purpose)
        card = await views.patient_card(session, patient)
    return FastJSONResponse(card.model_dump(mode="json"))


@router.post("", status_code=201, response_model=PatientCard, summary="Register a caller as a prospective patient")
async def register(body: PatientIn, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.WRITE_PATIENTS)
    async with session.begin():
        phones = [*await _contact_phone(session, actor, body), *body.phones]
        person = index.Person(
            name=body.name, sex=body.sex, birth_date=body.birth_date, phones=phones, identifiers=body.identifiers
        )
        details = {"sms_opt_in": body.sms_opt_in, "quiet_hours": body.quiet_hours, "language_note": body.language_note}
        patient = await index.register(session, actor=actor, person=person, details=details)
        if body.contact_id is not None:
            await _attach_to_contact(session, actor, body.contact_id, patient.id, method=None)
        card = await _card(session, patient.id)
    return FastJSONResponse(card, status_code=201)


@router.patch("/{patient_id:int}", response_model=PatientCard, summary="Correct a patient or their preferences")
async def correct(patient_id: int, body: PatientPatch, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.WRITE_PATIENTS)
    given = body.model_dump(exclude_unset=True, exclude={"version", "phones", "identifiers"})
    changes = {k: v for k, v in given.items() if v is not None or k in CLEARABLE}
    async with session.begin():
        await index.update(
            session, actor=actor, patient_id=patient_id, expected_version=body.version, changes=changes,
            phones=body.phones, identifiers=body.identifiers,
        )  # fmt: skip
        card = await _card(session, patient_id)
    return FastJSONResponse(card)


@router.post("/{patient_id:int}/verify", summary="Check the caller's birth date or ID-card digits")
async def verify(patient_id: int, body: VerifyIn, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.WRITE_PATIENTS)
    async with session.begin():
        method, matched = await index.verify(
            session, actor=actor, patient_id=patient_id, birth_date=body.birth_date, id_digits=body.id_digits
        )
        if matched and body.contact_id is not None:  # the verified caller is who this contact is about
            patient_id = (await index.resolve(session, patient_id)).id
            await _attach_to_contact(session, actor, body.contact_id, patient_id, method)
    if not matched:
        raise index.VerificationFailed  # after the commit: the failed attempt stays in the audit log
    answer: dict[str, Any] = {"verified": True, "method": method, "patient_id": patient_id}
    if body.contact_id is not None:
        answer["contact_id"] = body.contact_id
    return FastJSONResponse(answer)


async def _contact_phone(session: Session, actor: Actor, body: PatientIn) -> list[str]:
    """The number of the contact the caller is on, when they said it is theirs."""
    if not body.contact_phone or body.contact_id is None:
        return []
    from patientline.contacts import service as contacts

    contact = await contacts.read(session, actor=actor, contact_id=body.contact_id)
    if not contact.phone:
        raise InvalidInput(N_("This contact has no caller number."), details={"field": "contact_phone"})
    return [contact.phone]


async def _attach_to_contact(
    session: Session, actor: Actor, contact_id: int, patient_id: int, method: str | None
) -> None:
    """The contact is about this patient; `method` says how they were verified (None: not at all)."""
    from patientline.contacts import service as contacts
    from patientline.contacts.schemas import ContactUpdate

    contact = await contacts.read(session, actor=actor, contact_id=contact_id)
    if contact.patient_id == patient_id and contact.verified_by == (method or contact.verified_by):
        return
    fields = {"version": contact.version, "patient_id": patient_id} | ({"verified_by": method} if method else {})
    data = ContactUpdate.model_validate(fields)
    await contacts.update(session, actor=actor, contact_id=contact.id, data=data)


@router.post("/{patient_id:int}/reveal", summary="Show one masked number in full, with a reason (audited)")
async def reveal(patient_id: int, body: RevealIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        patient = await access.reveal(session, actor=actor, patient_id=patient_id, what=body.what, reason=body.reason)
        value = await _number(session, body.what, body.item_id, patient.id)
    return FastJSONResponse({"what": body.what, "item_id": body.item_id, "value": value})


async def _number(session: Session, what: str, item_id: int, patient_id: int) -> str:
    number: str | None
    if what == "phone":
        number = await session.scalar(
            select(PatientPhone.phone).where(PatientPhone.id == item_id, PatientPhone.patient_id == patient_id)
        )
    else:
        number = await session.scalar(
            select(PatientIdentifier.value).where(
                PatientIdentifier.id == item_id, PatientIdentifier.patient_id == patient_id
            )
        )
    if number is None:
        raise NotFound(N_("This patient has no such number."))
    return number


@router.put("/{patient_id:int}/vip", response_model=PatientCard, summary="Set the VIP profile")
async def set_vip(patient_id: int, body: VipIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        await profile.set_vip(
            session, actor=actor, patient_id=patient_id, expected_version=body.version, level=body.level,
            note=body.note, expert_id=body.expert_id,
        )  # fmt: skip
        card = await _card(session, patient_id)
    return FastJSONResponse(card)


@router.post("/{patient_id:int}/flags", status_code=201, response_model=PatientCard, summary="Flag a caller")
async def add_flag(patient_id: int, body: FlagIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        await profile.add_flag(session, actor=actor, patient_id=patient_id, kind=body.kind, note=body.note)
        card = await _card(session, patient_id)
    return FastJSONResponse(card, status_code=201)


@router.post("/{patient_id:int}/flags/{flag_id:int}/clear", response_model=PatientCard, summary="Lift a flag")
async def clear_flag(
    patient_id: int, flag_id: int, body: FlagClearIn, actor: CurrentActor, session: Session
) -> Response:
    async with session.begin():
        await profile.clear_flag(session, actor=actor, patient_id=patient_id, flag_id=flag_id, note=body.note)
        card = await _card(session, patient_id)
    return FastJSONResponse(card)


@router.post("/{patient_id:int}/merge", response_model=PatientCard, summary="Fold a duplicate into this patient")
async def merge(patient_id: int, body: MergeIn, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.MANAGE_PATIENTS)
    async with session.begin():
        survivor = await index.merge(
            session, actor=actor, survivor_id=patient_id, merged_id=body.duplicate_id, reason=body.reason
        )
        card = await _card(session, survivor.id)
    return FastJSONResponse(card)


@router.post("/{patient_id:int}/export", summary="Everything held on one patient (right of access; audited)")
async def export_data(patient_id: int, body: ExportIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        patient = await access.export(session, actor=actor, patient_id=patient_id, reason=body.reason)
        document = await export.patient_data(session, patient)
    disposition = f'attachment; filename="patient-{patient.id}.json"'
    return FastJSONResponse(document, headers={"Content-Disposition": disposition})


@router.get("/{patient_id:int}/access-log", summary="Who read this patient's record, and why")
async def access_log(
    patient_id: int, actor: CurrentActor, session: Session, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> Response:
    actor.require(Permission.MANAGE_PATIENTS)
    from patientline.core.audit import AuditEntry

    async with session.begin():
        patient = await index.resolve(session, patient_id)
        rows = await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.target_type == "patient", AuditEntry.target_id == str(patient.id))
            .order_by(AuditEntry.id.desc())
            .limit(limit)
        )
        entries = [
            {"at": r.at.isoformat(), "actor": r.actor_name, "action": r.action, "reason": r.reason} for r in rows
        ]
    return FastJSONResponse(entries)
