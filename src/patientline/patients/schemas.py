"""Patient API shapes. Numbers leave masked; the full value only through a reveal with a reason."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from patientline.core.masking import mask_identifier, mask_name, mask_phone
from patientline.core.validation import DbId, ReadModel, StrictModel, Version, normalise_phone
from patientline.patients.models import Patient, PatientFlag, PatientIdentifier, PatientPhone

Sex = Literal["male", "female", "unknown"]
IdentifierKindName = Annotated[str, Field(pattern=r"^(mrn|id_card|visit_card|health_card|insurance)$")]
Reason = Annotated[str, Field(min_length=2, max_length=200)]
Purpose = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z_]+(:\d+)?$")]
QuietHours = Annotated[str, Field(pattern=r"^$|^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")]
PatientName = Annotated[str, Field(min_length=1, max_length=100)]
IdentifierValue = Annotated[str, Field(min_length=1, max_length=64)]
Identifiers = Annotated[dict[IdentifierKindName, IdentifierValue], Field(max_length=5)]
PhoneNumber = Annotated[str, Field(min_length=3, max_length=30), AfterValidator(normalise_phone)]
Phones = Annotated[list[PhoneNumber], Field(max_length=5)]


class SearchIn(StrictModel):
    """The search box's text travels in the body, never in a URL."""

    query: Annotated[str, Field(min_length=1, max_length=100)]
    purpose: Purpose = "lookup"


class Candidate(ReadModel):
    """A possible caller as a search lists them: enough to choose and to ask the verifying question."""

    id: int
    name_masked: str
    sex: str
    age: int | None
    phones_masked: list[str]
    identifiers_masked: dict[str, str]
    vip_level: int
    flags: list[str]
    prospective: bool


class SearchOut(ReadModel):
    by: str
    candidates: list[Candidate]
    his_searched: bool = False  # nothing locally: the hospital's system was asked
    his_problem: str | None = None  # it could not answer


class PatientIn(StrictModel):
    """A caller the index does not know: registered as a prospective patient."""

    name: PatientName
    sex: Sex = "unknown"
    birth_date: date | None = None
    phones: Phones = []
    identifiers: Identifiers = {}
    sms_opt_in: bool = True
    quiet_hours: QuietHours = ""
    language_note: Annotated[str, Field(max_length=100)] = ""
    contact_id: DbId | None = None  # the contact the caller is on: the new patient is attached to it
    contact_phone: bool = False  # and that contact's number is one of theirs (the page never holds it)

    @model_validator(mode="after")
    def _contact_phone_needs_contact(self) -> PatientIn:
        if self.contact_phone and self.contact_id is None:
            raise ValueError("contact_phone needs contact_id")
        return self


class PatientPatch(StrictModel):
    version: Version
    name: PatientName | None = None
    sex: Sex | None = None
    birth_date: date | None = None
    phones: Phones | None = None
    identifiers: Identifiers | None = None
    sms_opt_in: bool | None = None
    quiet_hours: QuietHours | None = None
    language_note: Annotated[str, Field(max_length=100)] | None = None


class VerifyIn(StrictModel):
    birth_date: date | None = None
    id_digits: Annotated[str, Field(min_length=4, max_length=6)] | None = None
    contact_id: DbId | None = None  # the contact the verified caller is attached to


class RevealIn(StrictModel):
    what: Literal["phone", "identifier"]
    item_id: DbId
    reason: Reason


class VipIn(StrictModel):
    version: Version
    level: Annotated[int, Field(ge=0, le=3)]
    note: Annotated[str, Field(max_length=200)] = ""
    expert_id: DbId | None = None  # the designated expert (directory staff)


class FlagIn(StrictModel):
    kind: Literal["abusive", "safety"]
    note: Annotated[str, Field(min_length=2, max_length=500)]


class FlagClearIn(StrictModel):
    note: Annotated[str, Field(min_length=2, max_length=500)]


class MergeIn(StrictModel):
    duplicate_id: DbId
    reason: Reason


class ExportIn(StrictModel):
    reason: Reason


class PhoneRead(ReadModel):
    id: int
    masked: str
    label: str


class IdentifierRead(ReadModel):
    id: int
    kind: str
    masked: str


class FlagRead(ReadModel):
    id: int
    kind: str
    note: str
    set_by_id: int | None
    created_at: datetime


class PatientCard(ReadModel):
    id: int
    version: int
    name: str
    sex: str
    birth_date: date | None
    age: int | None
    prospective: bool
    his_linked: bool
    his_synced_at: datetime | None
    phones: list[PhoneRead]
    identifiers: list[IdentifierRead]
    sms_opt_in: bool
    quiet_hours: str
    language_note: str
    vip_level: int
    vip_note: str
    vip_expert_id: int | None
    flags: list[FlagRead]


def age_on(birth_date: date | None, today: date) -> int | None:
    if birth_date is None:
        return None
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


def candidate(
    patient: Patient,
    *,
    phones: list[PatientPhone],
    identifiers: list[PatientIdentifier],
    flags: list[PatientFlag],
    today: date,
) -> Candidate:
    return Candidate(
        id=patient.id,
        name_masked=mask_name(patient.name),
        sex=patient.sex,
        age=age_on(patient.birth_date, today),
        phones_masked=[mask_phone(p.phone) for p in phones],
        identifiers_masked={i.kind: mask_identifier(i.value) for i in identifiers},
        vip_level=patient.vip_level,
        flags=sorted({f.kind for f in flags}),
        prospective=patient.prospective,
    )


def card(
    patient: Patient,
    *,
    phones: list[PatientPhone],
    identifiers: list[PatientIdentifier],
    flags: list[PatientFlag],
    today: date,
) -> PatientCard:
    return PatientCard(
        id=patient.id,
        version=patient.version,
        name=patient.name,
        sex=patient.sex,
        birth_date=patient.birth_date,
        age=age_on(patient.birth_date, today),
        prospective=patient.prospective,
        his_linked=patient.his_id is not None,
        his_synced_at=patient.his_synced_at,
        phones=[PhoneRead(id=p.id, masked=mask_phone(p.phone), label=p.label) for p in phones],
        identifiers=[IdentifierRead(id=i.id, kind=i.kind, masked=mask_identifier(i.value)) for i in identifiers],
        sms_opt_in=patient.sms_opt_in,
        quiet_hours=patient.quiet_hours,
        language_note=patient.language_note,
        vip_level=patient.vip_level,
        vip_note=patient.vip_note,
        vip_expert_id=patient.vip_expert_id,
        flags=[FlagRead.model_validate(f) for f in flags],
    )
