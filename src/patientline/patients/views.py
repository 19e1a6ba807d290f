"""Patients as the API and pages show them: candidates of a search and the patient card, masked."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock
from patientline.core.config import get_settings
from patientline.patients import index
from patientline.patients.models import Patient
from patientline.patients.schemas import Candidate, PatientCard, candidate, card


async def candidates(session: AsyncSession, patients: Sequence[Patient]) -> list[Candidate]:
    ids = [p.id for p in patients]
    phones = await index.phones_of(session, ids)
    identifiers = await index.identifiers_of(session, ids)
    flags = await index.active_flags(session, ids)
    today = clock.today(get_settings().timezone)
    return [
        candidate(p, phones=phones[p.id], identifiers=identifiers[p.id], flags=flags[p.id], today=today)
        for p in patients
    ]


async def patient_card(session: AsyncSession, patient: Patient) -> PatientCard:
    ids = [patient.id]
    return card(
        patient,
        phones=(await index.phones_of(session, ids))[patient.id],
        identifiers=(await index.identifiers_of(session, ids))[patient.id],
        flags=(await index.active_flags(session, ids))[patient.id],
        today=clock.today(get_settings().timezone),
    )
