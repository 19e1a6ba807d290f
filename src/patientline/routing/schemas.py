"""Routing API shapes: queue configuration, members, agents' profiles, tasks coming in, and the live
views of agents and queues."""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from patientline.core.i18n import gettext
from patientline.core.masking import mask_phone
from patientline.core.validation import Code, DbId, Name, Phone, ReadModel, StrictModel, Version
from patientline.core.workcal import InvalidCalendarInput, WorkingHours

ChannelName = Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[a-z][a-z0-9_]*$")]
QueueKindName = Literal["skill_group", "department_seats", "expert_centre"]
StrategyName = Literal["longest_idle", "fewest_today", "round_robin", "best_skill"]
WrapUpName = Literal["none", "mandatory", "on_request"]
PauseReason = Literal["break", "meal", "training", "meeting", "other"]
Priority = Annotated[int, Field(ge=-100, le=100, strict=True)]
MAX_TIERS = 5
MAX_CAPACITY = 20
WaitSeconds = Annotated[int, Field(ge=1, le=86400, strict=True)]


class QueueCreate(StrictModel):
    code: Code
    name: Name
    kind: QueueKindName = "skill_group"
    team_id: DbId | None = None
    site_id: DbId | None = None
    skill: Code | None = None
    hours: Annotated[str, Field(min_length=1, max_length=100)] = "00:00-24:00"
    working_days_only: bool = False
    priority: Priority = 0
    strategy: StrategyName = "longest_idle"
    sl_seconds: Annotated[int, Field(ge=1, le=3600, strict=True)] = 20
    sl_target: Annotated[float, Field(gt=0, le=1)] = 0.8
    short_abandon_s: Annotated[int, Field(ge=0, le=600, strict=True)] = 5
    max_wait_s: Annotated[int, Field(ge=10, le=86400, strict=True)] | None = None
    overflow_queue_id: DbId | None = None
    overflow_threshold: Annotated[int, Field(ge=1, le=10000, strict=True)] | None = None
    widen_after_s: Annotated[list[WaitSeconds], Field(max_length=MAX_TIERS - 1)] = []
    aging_per_minute: Annotated[float, Field(ge=0, le=100)] = 0.0
    vip_priority: Annotated[int, Field(ge=0, le=100, strict=True)] = 5
    wrap_up: WrapUpName = "mandatory"
    wrap_up_s: Annotated[int, Field(ge=0, le=3600, strict=True)] = 30
    callback_offer: bool = True
    alert_waiting: Annotated[int, Field(ge=1, le=10000, strict=True)] | None = None
    is_active: bool = True

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        try:
            return str(WorkingHours.parse(value))
        except InvalidCalendarInput as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("widen_after_s")
    @classmethod
    def _ascending(cls, value: list[int]) -> list[int]:
        if any(later <= earlier for earlier, later in pairwise(value)):
            raise ValueError(gettext("Each tier must open later than the one before."))
        return value

    @field_validator("wrap_up_s")
    @classmethod
    def _wrap_up_length(cls, value: int, info: ValidationInfo) -> int:
        if info.data.get("wrap_up", "none") != "none" and value < 1:
            raise ValueError(gettext("A wrap-up needs a length of at least one second."))
        return value


class QueueUpdate(QueueCreate):
    version: Version


class QueueRead(ReadModel):
    id: int
    code: str
    name: str
    kind: str
    team_id: int | None
    site_id: int | None
    skill: str | None
    hours: str
    working_days_only: bool
    priority: int
    strategy: str
    sl_seconds: int
    sl_target: float
    short_abandon_s: int
    max_wait_s: int | None
    overflow_queue_id: int | None
    overflow_threshold: int | None
    widen_after_s: list[int]
    aging_per_minute: float
    vip_priority: int
    wrap_up: str
    wrap_up_s: int
    callback_offer: bool
    alert_waiting: int | None
    is_active: bool
    version: int


class MemberIn(StrictModel):
    user_id: DbId
    tier: Annotated[int, Field(ge=1, le=MAX_TIERS, strict=True)] = 1


class MemberRead(ReadModel):
    user_id: int
    name: str
    tier: int


class ProfileIn(StrictModel):
    capacities: Annotated[dict[ChannelName, Annotated[int, Field(ge=0, le=MAX_CAPACITY, strict=True)]],
                          Field(max_length=10)]  # fmt: skip
    extension: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[0-9*#]+$")] | None = None
    auto_answer: bool = False
    version: Version | None = None


class QueueMembership(ReadModel):
    queue_id: int
    code: str
    name: str
    tier: int


class ProfileRead(ReadModel):
    user_id: int
    name: str
    capacities: dict[str, int]
    extension: str | None
    auto_answer: bool
    skills: dict[str, int]  # from the directory's staff record
    queues: list[QueueMembership]
    version: int | None  # none until the profile is first saved


# --- work ------------------------------------------------------------------------------------------


class Caller(StrictModel):
    """Who is waiting, as the agent sees it when the offer rings; the number is kept masked only."""

    name: Annotated[str, Field(max_length=100)] = ""
    phone: Phone = None
    patient_id: DbId | None = None

    def shown(self) -> dict[str, Any]:
        return {"name": self.name, "phone_masked": mask_phone(self.phone), "patient_id": self.patient_id}


class TaskCreate(StrictModel):
    queue_id: DbId
    channel: ChannelName
    priority: Priority = 0
    vip: bool = False
    caller: Caller = Caller()
    subject: Annotated[str, Field(max_length=200)] = ""
    external_ref: Annotated[str, Field(min_length=1, max_length=100)] | None = None  # the call's or chat's id


class NotReadyIn(StrictModel):
    reason: PauseReason = "other"


class CompleteIn(StrictModel):
    wrap_up: bool = False


class QueueTarget(StrictModel):
    queue_id: DbId


class PriorityIn(StrictModel):
    priority: Priority


class TaskRead(ReadModel):
    id: int
    queue_id: int
    channel: str
    state: str
    priority: int
    is_vip: bool
    entered_at: str
    agent_id: int | None
    external_ref: str | None
    caller: dict[str, Any]
    subject: str
    position: int | None = None
