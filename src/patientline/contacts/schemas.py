"""Contact API shapes: what comes in (strict, limited) and what goes out (numbers and names masked in
lists; the full caller name only on the contact's own page)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, field_validator

from patientline.core.validation import Code, DbId, Name, Phone, ReadModel, StrictModel, Version

SUBJECT_LIMIT = 200
NOTES_LIMIT = 4000
ITEM_LIMIT = 500
MAX_DISPOSITIONS = 10
MAX_ITEMS = 30

Channel = Literal["voice", "chat", "sms", "email", "wechat", "callback", "walk_in"]
Direction = Literal["inbound", "outbound"]
ContactStatus = Literal["open", "closed"]
VerifiedBy = Literal["", "birth_date", "id_digits"]
Shift = Literal["day", "evening", "night"]
LinkKind = Literal["knowledge", "workorder"]
Subject = Annotated[str, Field(max_length=SUBJECT_LIMIT)]
Notes = Annotated[str, Field(max_length=NOTES_LIMIT)]
CallerName = Annotated[str, Field(max_length=100)]
DispositionIds = Annotated[list[DbId], Field(max_length=MAX_DISPOSITIONS)]
ExternalRef = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:@-]+$")]


# --- contacts --------------------------------------------------------------------------------------


class ContactCreate(StrictModel):
    """A contact recorded by hand: a walk-in, an outbound call, a message, a callback attempt."""

    channel: Channel
    direction: Direction = "inbound"
    phone: Phone = None
    caller_name: CallerName = ""
    subject: Subject = ""
    notes: Notes = ""
    patient_id: DbId | None = None
    verified_by: VerifiedBy = ""
    queue_id: DbId | None = None
    started_at: AwareDatetime | None = None
    external_ref: ExternalRef | None = None
    disposition_ids: DispositionIds = []


class ContactUpdate(StrictModel):
    """Only the fields sent change; `patient_id: null` detaches the patient."""

    version: Version
    subject: Subject | None = None
    notes: Notes | None = None
    phone: Phone = None
    caller_name: CallerName | None = None
    patient_id: DbId | None = None
    verified_by: VerifiedBy | None = None
    disposition_ids: DispositionIds | None = None


class CloseIn(StrictModel):
    version: Version
    disposition_ids: DispositionIds | None = None
    notes: Notes | None = None


class LinkIn(StrictModel):
    kind: LinkKind
    target: Annotated[str, Field(min_length=1, max_length=40)]  # an id, or a work order's reference


class RevealIn(StrictModel):
    reason: Annotated[str, Field(min_length=2, max_length=500)]


class LinkRead(ReadModel):
    id: int
    kind: str
    target_id: int
    label: str = ""
    href: str = ""


class ContactRead(ReadModel):
    """A row of the list: the phone and the caller's name masked."""

    id: int
    reference: str
    channel: str
    direction: str
    status: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    queue_id: int | None
    agent_id: int | None
    patient_id: int | None
    verified_by: str
    phone_masked: str
    caller_name_masked: str
    subject: str
    routing_task_id: int | None
    anonymised_at: datetime | None
    disposition_ids: list[int]
    version: int


class ContactDetail(ContactRead):
    caller_name: str
    notes: str
    external_ref: str | None
    links: list[LinkRead]
    patient_href: str | None


# --- dispositions ----------------------------------------------------------------------------------


class DispositionCreate(StrictModel):
    code: Code
    name: Name
    parent_id: DbId | None = None
    position: Annotated[int, Field(ge=0, le=10_000)] | None = None


class DispositionUpdate(StrictModel):
    version: Version
    code: Code | None = None
    name: Name | None = None
    parent_id: DbId | None = None
    is_active: bool | None = None


class ReorderIn(StrictModel):
    parent_id: DbId | None = None
    ids: Annotated[list[DbId], Field(min_length=1, max_length=500)]

    @field_validator("ids")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        if len(value) != len(set(value)):
            raise ValueError("Each code once.")
        return value


class DispositionRead(ReadModel):
    id: int
    parent_id: int | None
    code: str
    name: str
    position: int
    is_active: bool
    version: int


class DispositionNode(DispositionRead):
    in_use: bool = False
    children: list[DispositionNode] = []


# --- shift handover --------------------------------------------------------------------------------

ItemText = Annotated[str, Field(min_length=1, max_length=ITEM_LIMIT)]


class HandoverCreate(StrictModel):
    shift_date: date
    shift: Shift
    notes: Notes = ""
    items: Annotated[list[ItemText], Field(max_length=MAX_ITEMS)] = []


class HandoverUpdate(StrictModel):
    """The author adds to a handover nobody acknowledged yet."""

    version: Version
    notes: Notes | None = None
    add_items: Annotated[list[ItemText], Field(max_length=MAX_ITEMS)] = []


class Versioned(StrictModel):
    version: Version


class HandoverItemRead(ReadModel):
    id: int
    position: int
    text: str
    done_at: datetime | None
    done_by_id: int | None
    done_by_name: str = ""


class HandoverRead(ReadModel):
    id: int
    shift_date: date
    shift: str
    author_id: int | None
    author_name: str = ""
    notes: str
    acknowledged_by_id: int | None
    acknowledged_by_name: str = ""
    acknowledged_at: datetime | None
    created_at: datetime
    version: int
    items: list[HandoverItemRead] = []
    pending: int = 0
