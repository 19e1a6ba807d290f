"""HTTP API: symptom triage for agents (`POST /api/assistant/triage`)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import Field, StringConstraints

from patientline.assistant import service
from patientline.core.auth.permissions import Permission
from patientline.core.i18n import current_locale, gettext
from patientline.core.validation import ReadModel, StrictModel
from patientline.web.deps import CurrentActor, Session

router = APIRouter(prefix="/api/assistant", tags=["assistant"])


class TriageIn(StrictModel):
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    age: Annotated[int, Field(ge=0, le=130)] | None = None
    sex: Literal["男", "女"] | None = None


class EmergencyRead(ReadModel):
    category: str
    phrase: str
    instruction: str


class ClinicRead(ReadModel):
    id: int
    name: str
    site_id: int
    location: str
    phone: str | None


class SuggestionRead(ReadModel):
    department: str  # one of the standard triage departments
    score: float
    terms: list[str]  # the caller's words that point here; empty when only the learnt model does
    reason: str
    clinics: list[ClinicRead]  # the hospital's departments that answer for it


class TriageRead(ReadModel):
    emergency: EmergencyRead | None
    suggestions: list[SuggestionRead]


@router.post("/triage")
async def triage(body: TriageIn, actor: CurrentActor, session: Session) -> TriageRead:
    """Departments for what a caller describes, best first (at most three), with the emergency guard's
    finding. Never a diagnosis: the agent decides."""
    actor.require(Permission.HANDLE_CONTACTS)
    answer = await service.triage(session, text=body.text, age=body.age, sex=body.sex)
    return TriageRead(
        emergency=None
        if answer.emergency is None
        else EmergencyRead(
            category=answer.emergency.category,
            phrase=answer.emergency.phrase,
            instruction=answer.emergency.instruction(current_locale.get()),
        ),
        suggestions=[
            SuggestionRead(
                department=advice.suggestion.department,
                score=advice.suggestion.score,
                terms=list(advice.suggestion.terms),
                reason=_reason(advice.suggestion.terms),
                clinics=[ClinicRead.model_validate(clinic) for clinic in advice.departments],
            )
            for advice in answer.advice
        ],
    )


def _reason(terms: tuple[str, ...]) -> str:
    if terms:
        return gettext("Mentions: {terms}").format(terms="、".join(terms))
    return gettext("Worded like questions for this department")
