"""Doctors and clinic timetables at the API: what comes in (strict) and what goes out."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field, StringConstraints

from patientline.core.validation import Code, DbId, Name, ReadModel, StrictModel, Version
from patientline.knowledge.models import HalfDay
from patientline.knowledge.timetables import ChangeKind

Title = Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)]
Speciality = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
Introduction = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]
ClinicKind = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
Room = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Weekday = Annotated[int, Field(ge=1, le=7, strict=True)]


# ---- doctors ---------------------------------------------------------------------------------


class DoctorCreate(StrictModel):
    code: Code
    name: Name
    title: Title = ""
    site_id: DbId
    department_id: DbId
    speciality: Speciality = ""
    introduction: Introduction = ""
    is_active: bool = True


class DoctorUpdate(StrictModel):
    version: Version
    code: Code | None = None
    name: Name | None = None
    title: Title | None = None
    site_id: DbId | None = None
    department_id: DbId | None = None
    speciality: Speciality | None = None
    introduction: Introduction | None = None
    is_active: bool | None = None


class DoctorDeactivate(StrictModel):
    version: Version | None = None


class DoctorRead(ReadModel):
    id: int
    code: str
    name: str
    title: str
    site_id: int
    department_id: int
    speciality: str
    introduction: str
    is_active: bool
    version: int


# ---- weekly sessions -------------------------------------------------------------------------


class SessionIn(StrictModel):
    weekday: Weekday
    half_day: HalfDay
    kind: ClinicKind = "普通门诊"
    room: Room = ""
    note: Text200 = ""


class SessionsPut(StrictModel):
    """The whole weekly set; what is not listed is dropped. `version` is the doctor's."""

    version: Version
    sessions: list[SessionIn] = Field(max_length=21)


class SessionRead(ReadModel):
    weekday: int
    half_day: str
    kind: str
    room: str
    note: str


# ---- stops and substitutions -----------------------------------------------------------------


class ChangeCreate(StrictModel):
    day: date
    half_day: HalfDay | None = None  # None: the whole day
    kind: ChangeKind
    substitute_id: DbId | None = None
    reason: Text200 = ""


class ChangeRead(ReadModel):
    id: int
    doctor_id: int
    day: date
    half_day: str | None
    kind: str
    substitute_id: int | None
    substitute_name: str = ""
    reason: str
    created_by_id: int | None


class DoctorDetail(DoctorRead):
    sessions: list[SessionRead]
    changes: list[ChangeRead]  # from today on


# ---- what the timetable says -----------------------------------------------------------------


class AvailabilityRead(ReadModel):
    day: date
    weekday: int
    half_day: str
    status: str  # in | stopped | substituted | not_scheduled
    kind: str
    room: str
    note: str
    reason: str
    change_id: int | None
    substitute_id: int | None
    substitute_name: str
    substitute_title: str


class AvailabilityAnswer(ReadModel):
    doctor_id: int
    answer: str  # one sentence, for people and the bot
    slots: list[AvailabilityRead]


class WeekDoctorRead(ReadModel):
    id: int
    code: str
    name: str
    title: str
    department_id: int
    slots: list[AvailabilityRead]


class WeekDepartmentRead(ReadModel):
    id: int
    name: str
    site_id: int
    site_name: str
    doctors: list[WeekDoctorRead]


class WeekRead(ReadModel):
    start: date
    end: date
    days: list[date]
    departments: list[WeekDepartmentRead]
