"""Shapes of the IVR flow API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from patientline.core.i18n import gettext
from patientline.core.validation import MAX_ID, Name, ReadModel, StrictModel
from patientline.voice.flows import FlowDefinition

HotlineNumber = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9]{3,20}$")]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
Version = Annotated[int, Field(ge=1)]
ConsultEnding = Literal["complete", "conference", "cancel"]
SupervisionMode = Literal["listen", "whisper", "barge", "take_over", "leave"]


class FlowCreate(StrictModel):
    name: Name
    number: HotlineNumber | None = None
    description: Description = ""
    draft: FlowDefinition | None = None  # empty: a greeting and a goodbye to start from


class FlowUpdate(StrictModel):
    version: Version
    name: Name | None = None
    number: HotlineNumber | None = None
    description: Description | None = None
    draft: FlowDefinition | None = None


class PublishIn(StrictModel):
    version: Version
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""


class GoLiveIn(StrictModel):
    """Put an earlier published version back in front of callers."""

    version: Version
    number: Annotated[int, Field(ge=1)]


class FlowRead(ReadModel):
    id: int
    name: str
    number: str | None
    description: str
    draft: dict[str, Any]
    live_version: int | None
    version: int
    updated_at: datetime
    problems: list[dict[str, Any]] = []


PromptWords = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]


class RecordedPromptUpdate(StrictModel):
    version: Version
    name: Name | None = None
    words: PromptWords | None = None


class RecordedPromptRead(ReadModel):
    id: int
    name: str
    words: str
    filename: str
    seconds: float
    version: int
    updated_at: datetime
    played_by: list[str] = []  # the flows whose draft or live version plays it
    audio_url: str = ""


class FlowVersionRead(ReadModel):
    number: int
    note: str
    published_at: datetime
    published_by_id: int | None
    definition: dict[str, Any]


class CallRead(ReadModel):
    """A phone call as the call log shows it (the caller's number masked)."""

    id: int
    direction: str
    dialled: str
    caller_masked: str
    started_at: datetime
    answered_at: datetime | None
    queued_at: datetime | None
    connected_at: datetime | None
    ended_at: datetime | None
    outcome: str
    end_reason: str
    ivr: dict[str, Any]
    events: list[Any]
    flow_id: int | None
    flow_version: int | None
    queue_id: int | None
    routing_task_id: int | None
    agent_id: int | None
    contact_id: int | None
    work_order_id: int | None
    recording_seconds: float | None


class LiveCallRead(ReadModel):
    """A call on the line now: where it is (`stage`), who talks with the caller, and how."""

    id: str
    direction: str
    stage: str
    dialled: str
    caller_masked: str
    started_at: datetime
    queue_id: int | None
    task_id: int | None
    agent_id: int | None
    ivr_path: list[str]
    talker: str | None
    hold: bool
    third: str | None
    watch: str | None
    supervisor_id: int | None
    contact_id: int | None


class OutboundIn(StrictModel):
    """Whom to call: a number, a patient's phone on file (`patient_phone_id`), or the caller of
    `work_order_id`; and the number the patient sees (`caller_id`, else the line's default)."""

    number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=32)] | None = None
    patient_phone_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    patient_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    work_order_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    caller_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)] | None = None


class PhoneSetupRead(ReadModel):
    """How a staff member's desk phone registers: as `username` at `registrar`, in `realm`, with the
    password (shown once, right after it is set)."""

    user_id: int
    username: str
    registrar: str
    realm: str
    has_password: bool
    updated_at: datetime | None
    password: str | None = None


class CallerIdsRead(ReadModel):
    """The numbers an agent may show on an outbound call (`withheld`: none), the default first."""

    caller_ids: list[str]
    trunk: bool


class SelfTestRead(ReadModel):
    """One test call into the line: passed (`ok`) or the problem it found, and what it measured."""

    id: int
    started_at: datetime
    ok: bool
    problem: str
    problem_text: str
    number: str
    answer_ms: int | None
    prompt_level: float | None
    outcome: str
    ivr_path: list[str]
    alarm: str
    alarm_text: str


class HoldIn(StrictModel):
    on: bool


Target = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class TransferIn(StrictModel):
    """A queue, or a colleague's user name or an outside phone number: one of the two."""

    queue_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    target: Target | None = None

    @model_validator(mode="after")
    def _one_target(self) -> TransferIn:
        if (self.queue_id is None) == (self.target is None):
            raise ValueError(gettext("Transfer to a queue or to a colleague or number, one of the two."))
        return self


class TransferQueue(ReadModel):
    id: int
    name: str
    kind: str  # skill_group, department_seats, expert_centre
    open: bool


class Colleague(ReadModel):
    user_id: int
    username: str
    name: str
    status: str  # the routing status: ready, busy, not_ready, offline…


class TransferTargetsRead(ReadModel):
    """Where an agent can pass a call: the active queues and the colleagues who handle contacts."""

    queues: list[TransferQueue]
    colleagues: list[Colleague]


class ConsultIn(StrictModel):
    """A colleague's user name or an outside phone number."""

    target: Target


class ConsultEndIn(StrictModel):
    how: ConsultEnding


class SuperviseIn(StrictModel):
    mode: SupervisionMode
