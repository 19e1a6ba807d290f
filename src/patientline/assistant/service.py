"""Triage as the product answers it: the emergency guard first, then the best standard departments, each
with the hospital's own departments that answer for it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.assistant.emergency import Alarm, emergency_in
from patientline.assistant.triage import Suggestion, default_triage
from patientline.directory.models import Department, DepartmentKind

SUGGESTIONS = 3


@dataclass(frozen=True, slots=True)
class Advice:
    suggestion: Suggestion
    departments: list[Department]  # the hospital's active clinical departments for it, by name


@dataclass(frozen=True, slots=True)
class TriageAnswer:
    emergency: Alarm | None
    advice: list[Advice]


async def triage(session: AsyncSession, *, text: str, age: int | None, sex: str | None) -> TriageAnswer:
    suggestions = default_triage().rank(text, age=age, sex=sex)[:SUGGESTIONS]
    clinics = await _clinics_for(session, [s.department for s in suggestions])
    return TriageAnswer(
        emergency=emergency_in(text),
        advice=[Advice(s, clinics.get(s.department, [])) for s in suggestions],
    )


async def _clinics_for(session: AsyncSession, standard: list[str]) -> dict[str, list[Department]]:
    """A department answers for the standard one it names; one that names none answers for its own name."""
    rows = await session.scalars(
        select(Department)
        .where(Department.is_active.is_(True), Department.kind == DepartmentKind.CLINICAL.value)
        .order_by(Department.site_id, Department.name, Department.id)
    )
    found: dict[str, list[Department]] = {name: [] for name in standard}
    for department in rows:
        if (key := department.triage_department or department.name) in found:
            found[key].append(department)
    return found
