"""Work-order API shapes: what comes in (strict, limited) and what goes out (numbers masked)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, field_validator

from patientline.core.validation import Code, DbId, Name, Phone, ReadModel, StrictModel, Version
from patientline.workorders.forms import FormField
from patientline.workorders.models import CallOutcome, TypeGroup
from patientline.workorders.policy import DeadlinePolicy

SUBJECT_LIMIT = 200
TEXT_LIMIT = 4000
NOTE_LIMIT = 2000

Subject = Annotated[str, Field(min_length=1, max_length=SUBJECT_LIMIT)]
LongText = Annotated[str, Field(max_length=TEXT_LIMIT)]
RequiredText = Annotated[str, Field(min_length=1, max_length=TEXT_LIMIT)]
Note = Annotated[str, Field(max_length=NOTE_LIMIT)]
RequiredNote = Annotated[str, Field(min_length=1, max_length=NOTE_LIMIT)]
Channel = Literal["phone", "web", "chat", "wechat", "sms", "email", "walk_in", "letter"]
DepartmentIds = Annotated[list[DbId], Field(max_length=10)]
ClientKey = Annotated[str, Field(min_length=8, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
CloseReason = Literal["answered", "no_evaluation", "withdrawn", "unreachable", "wrong_number", "duplicate", "other"]


# --- types -----------------------------------------------------------------------------------------


class TypeCreate(StrictModel):
    code: Code
    name: Name
    group: TypeGroup
    description: Annotated[str, Field(max_length=1000)] = ""
    fields: Annotated[list[FormField], Field(max_length=30)] = []
    categories: Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]], Field(max_length=100)] = []
    default_department_id: DbId | None = None
    policy: DeadlinePolicy = DeadlinePolicy()
    sms_templates: dict[Literal["received", "replied", "resolved", "callback_missed"], Code] = {}
    position: Annotated[int, Field(ge=0, le=1000)] = 0
    is_active: bool = True

    @field_validator("fields")
    @classmethod
    def _unique_keys(cls, value: list[FormField]) -> list[FormField]:
        keys = [f.key for f in value]
        if len(keys) != len(set(keys)):
            raise ValueError("Each field needs its own key.")
        return value


class TypeUpdate(TypeCreate):
    version: Version


class TypeRead(ReadModel):
    id: int
    code: str
    name: str
    group: str
    description: str
    fields: list[dict[str, Any]]
    categories: list[str]
    default_department_id: int | None
    policy: dict[str, Any]
    sms_templates: dict[str, str]
    position: int
    is_active: bool
    version: int


class DepartmentContactIn(StrictModel):
    sms_phone: Phone = None
    email: Annotated[str | None, Field(max_length=200, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] = None
    head_user_id: DbId | None = None
    version: Version | None = None


class DepartmentContactRead(ReadModel):
    department_id: int
    sms_phone: str | None
    email: str | None
    head_user_id: int | None
    version: int


# --- orders ----------------------------------------------------------------------------------------


class OrderCreate(StrictModel):
    type_id: DbId
    category: Annotated[str, Field(max_length=100)] = ""
    subject: Subject
    description: LongText = ""
    values: dict[str, Any] = {}
    channel: Channel = "phone"
    patient_id: DbId | None = None
    caller_name: Annotated[str, Field(max_length=100)] = ""
    caller_phone: Phone = None
    contact_ref: Annotated[str | None, Field(max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")] = None
    callback_from: AwareDatetime | None = None
    callback_until: AwareDatetime | None = None
    department_id: DbId | None = None
    co_department_ids: DepartmentIds = []
    note: Note = ""
    client_key: ClientKey | None = None

    @field_validator("values")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > 30:
            raise ValueError("At most 30 form values.")
        return value


class Versioned(StrictModel):
    version: Version


class DispatchIn(Versioned):
    department_id: DbId
    co_department_ids: DepartmentIds = []
    note: Note = ""


class ReasonIn(Versioned):
    reason: RequiredNote


class TextIn(Versioned):
    text: RequiredText


class EvaluationIn(Versioned):
    satisfied: bool
    comment: Note = ""


class CloseIn(Versioned):
    reason: CloseReason
    note: Note = ""


class NoteIn(Versioned):
    note: RequiredNote


class MergeIn(Versioned):
    into_id: DbId
    note: Note = ""


class NoteOnly(StrictModel):
    note: RequiredNote


class LinkIn(StrictModel):
    kind: Literal["order", "contact"]
    target: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class PauseIn(Versioned):
    reason: Annotated[str, Field(min_length=1, max_length=200)]


class ExtensionIn(Versioned):
    amount: Annotated[int, Field(ge=1, le=30)]
    reason: RequiredNote


class ExtensionDecisionIn(StrictModel):
    approve: bool
    note: Note = ""


class CallbackAttemptIn(StrictModel):
    outcome: CallOutcome
    note: Note = ""


class CallbackScheduleIn(StrictModel):
    at: AwareDatetime


class RevealIn(StrictModel):
    reason: Annotated[str, Field(min_length=1, max_length=200)]


class ReminderIn(StrictModel):
    order_ids: Annotated[list[DbId], Field(min_length=1, max_length=500)]
    note: Note = ""


class OrderRead(ReadModel):
    id: int
    reference: str
    type_id: int
    category: str
    status: str
    is_open: bool
    subject: str
    channel: str
    patient_id: int | None
    caller_name: str
    caller_phone_masked: str
    department_id: int | None
    owner_id: int | None
    received_at: datetime
    reply_due_at: datetime | None
    resolve_due_at: datetime | None
    next_due_at: datetime | None
    replied_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    reply_on_time: bool | None
    resolve_on_time: bool | None
    paused_at: datetime | None
    escalation_level: int
    callback_due_at: datetime | None
    callback_attempts: int
    reopen_count: int
    satisfied: bool | None
    close_reason: str
    version: int


class TimelineRead(ReadModel):
    id: int
    at: datetime
    actor_name: str
    action: str
    from_status: str | None
    to_status: str | None
    note: str
    details: dict[str, Any]


class OrderDetail(OrderRead):
    description: str
    values: dict[str, Any]
    contact_ref: str | None
    callback_from: datetime | None
    callback_until: datetime | None
    co_department_ids: list[int]
    reply_text: str
    result_text: str
    evaluation_comment: str
    pause_reason: str
    extension_amount: int
    merged_into_id: int | None
    clock_started_at: datetime
    allowed_steps: list[str]
    timeline: list[TimelineRead]
