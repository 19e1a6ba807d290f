"""The right of access (PIPL art. 45): everything the centre holds on one patient, in one document."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.contacts.models import Contact
from patientline.core import clock
from patientline.patients.models import (
    Patient,
    PatientFlag,
    PatientIdentifier,
    PatientMerge,
    PatientPhone,
    PatientResult,
    ResultSubscription,
)
from patientline.workorders.models import WorkOrder


async def patient_data(session: AsyncSession, patient: Patient) -> dict[str, Any]:
    ids = [patient.id, *await _merged_ids(session, patient.id)]
    return {
        "exported_at": clock.now().isoformat(),
        "patient": {
            "id": patient.id,
            "name": patient.name,
            "sex": patient.sex,
            "birth_date": _iso(patient.birth_date),
            "prospective": patient.prospective,
            "sms_opt_in": patient.sms_opt_in,
            "quiet_hours": patient.quiet_hours,
            "language_note": patient.language_note,
            "vip_level": patient.vip_level,
            "vip_note": patient.vip_note,
            "created_at": _iso(patient.created_at),
        },
        "identifiers": await _rows(session, select(PatientIdentifier).where(PatientIdentifier.patient_id.in_(ids)),
                                   ("kind", "value")),
        "phones": await _rows(session, select(PatientPhone).where(PatientPhone.patient_id.in_(ids)),
                              ("phone", "label")),
        "flags": await _rows(session, select(PatientFlag).where(PatientFlag.patient_id.in_(ids)),
                             ("kind", "note", "created_at", "cleared_at", "clear_note")),
        "merged_records": await _rows(session, select(PatientMerge).where(PatientMerge.survivor_id == patient.id),
                                      ("merged_id", "at", "source", "snapshot")),
        "results": await _rows(session, select(PatientResult).where(PatientResult.patient_id.in_(ids)),
                               ("order_number", "name", "category", "status", "issued_at")),
        "result_subscriptions": await _rows(
            session, select(ResultSubscription).where(ResultSubscription.patient_id.in_(ids)),
            ("order_number", "phone", "status", "created_at", "notified_at")),
        "contacts": await _rows(
            session, select(Contact).where(Contact.patient_id.in_(ids)).order_by(Contact.started_at),
            ("reference", "channel", "direction", "started_at", "ended_at", "subject", "notes")),
        "work_orders": await _rows(
            session,
            select(WorkOrder).where(WorkOrder.patient_id.in_(ids)).order_by(WorkOrder.received_at),
            ("reference", "subject", "description", "status", "received_at", "closed_at")),
    }  # fmt: skip


async def _merged_ids(session: AsyncSession, survivor_id: int) -> list[int]:
    return list(await session.scalars(select(Patient.id).where(Patient.merged_into_id == survivor_id)))


async def _rows(session: AsyncSession, query: Any, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{f: _iso(getattr(row, f)) for f in fields} for row in await session.scalars(query)]


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
