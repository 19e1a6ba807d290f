"""What the centre keeps about a patient beyond identity: the VIP profile and safety flags."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import audit, clock
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.errors import Conflict, InvalidInput, NotFound, require_version
from patientline.core.i18n import N_
from patientline.directory.models import Staff
from patientline.patients import index
from patientline.patients.models import FlagKind, Patient, PatientFlag


async def set_vip(
    session: AsyncSession, *, actor: Actor, patient_id: int, expected_version: int, level: int, note: str,
    expert_id: int | None,
) -> Patient:  # fmt: skip
    actor.require(Permission.MANAGE_PATIENTS)
    patient = await index.resolve(session, patient_id)
    require_version(expected=expected_version, current=patient.version)
    if expert_id is not None and await session.get(Staff, expert_id) is None:
        raise InvalidInput(N_("There is no such member of staff."), details={"field": "expert_id"})
    before = {"level": patient.vip_level, "expert_id": patient.vip_expert_id}
    patient.vip_level, patient.vip_note, patient.vip_expert_id = level, note, expert_id if level else None
    audit.record(
        session, actor=actor, action="patients.vip", target_type="patient", target_id=patient.id, before=before,
        after={"level": patient.vip_level, "expert_id": patient.vip_expert_id},
    )  # fmt: skip
    return patient


async def add_flag(session: AsyncSession, *, actor: Actor, patient_id: int, kind: str, note: str) -> PatientFlag:
    """Any agent may warn colleagues about a caller; the note says what happened, and who set it is kept."""
    actor.require(Permission.WRITE_PATIENTS)
    if kind not in FlagKind.ALL:
        raise InvalidInput(N_("Unknown kind of flag."), details={"field": "kind"})
    patient = await index.resolve(session, patient_id)
    flag = PatientFlag(patient_id=patient.id, kind=kind, note=note, set_by_id=actor.user_id)
    session.add(flag)
    await session.flush()
    audit.record(
        session, actor=actor, action="patients.flagged", target_type="patient", target_id=patient.id,
        after={"flag_id": flag.id, "kind": kind},
    )  # fmt: skip
    return flag


async def clear_flag(session: AsyncSession, *, actor: Actor, patient_id: int, flag_id: int, note: str) -> PatientFlag:
    """Only a supervisor lifts a flag, with a note; the flag stays in the history."""
    actor.require(Permission.MANAGE_PATIENTS)
    patient = await index.resolve(session, patient_id)
    flag = await session.get(PatientFlag, flag_id)
    if flag is None or flag.patient_id != patient.id:
        raise NotFound(N_("There is no such flag on this patient."))
    if flag.cleared_at is not None:
        raise Conflict(N_("This flag was already cleared."), error_id="already_cleared")
    flag.cleared_at, flag.cleared_by_id, flag.clear_note = clock.now(), actor.user_id, note
    audit.record(
        session, actor=actor, action="patients.flag_cleared", target_type="patient", target_id=patient.id,
        after={"flag_id": flag.id},
    )  # fmt: skip
    return flag
