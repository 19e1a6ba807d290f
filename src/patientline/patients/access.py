"""Every read of a patient's record passes here: the role is checked and an access row is written
(who, which patient, why), as PIPL asks for sensitive personal information."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import audit
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.errors import InvalidInput
from patientline.core.i18n import N_
from patientline.patients import index
from patientline.patients.models import Patient

READ = "patients.read"
REVEAL = "patients.revealed"
SEARCH = "patients.searched"
EXPORT = "patients.exported"


async def read(session: AsyncSession, *, actor: Actor, patient_id: int, purpose: str) -> Patient:
    actor.require(Permission.READ_PATIENTS)
    patient = await index.resolve(session, patient_id)
    audit.record(session, actor=actor, action=READ, target_type="patient", target_id=patient.id, reason=purpose)
    return patient


async def search(session: AsyncSession, *, actor: Actor, text: str, purpose: str) -> index.Lookup:
    """The audit row says how the agent searched and what was found, not what they typed."""
    actor.require(Permission.READ_PATIENTS)
    found = await index.lookup(session, text)
    audit.record(
        session, actor=actor, action=SEARCH, target_type="patient", reason=purpose,
        after={"by": found.by, "patient_ids": [p.id for p in found.patients]},
    )  # fmt: skip
    return found


async def reveal(session: AsyncSession, *, actor: Actor, patient_id: int, what: str, reason: str) -> Patient:
    """A masked number shown in full: only with a reason, which the audit keeps."""
    actor.require(Permission.READ_PATIENTS)
    if len(reason.strip()) < 2:
        raise InvalidInput(N_("Say why you need to see the full number."), details={"field": "reason"})
    patient = await index.resolve(session, patient_id)
    audit.record(
        session, actor=actor, action=REVEAL, target_type="patient", target_id=patient.id, reason=reason.strip(),
        after={"what": what},
    )  # fmt: skip
    return patient


async def export(session: AsyncSession, *, actor: Actor, patient_id: int, reason: str) -> Patient:
    """The right of access: everything held on one patient, for the patient, with a recorded reason."""
    actor.require(Permission.MANAGE_PATIENTS)
    if len(reason.strip()) < 2:
        raise InvalidInput(N_("Say why the patient's data is exported."), details={"field": "reason"})
    patient = await index.resolve(session, patient_id)
    audit.record(session, actor=actor, action=EXPORT, target_type="patient", target_id=patient.id, reason=reason)
    return patient
