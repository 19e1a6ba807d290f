from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from patientline.core.validation import Code, DbId, Name, Phone, ReadModel, StrictModel, Version
from patientline.core.workcal import WorkingHours
from patientline.directory.models import TRIAGE_DEPARTMENTS, DepartmentKind, TeamKind

Text200 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Text2000 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]


def _triage_department(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if value not in TRIAGE_DEPARTMENTS:
        raise ValueError(f"not one of the triage departments ({'、'.join(TRIAGE_DEPARTMENTS)})")
    return value


TriageDepartment = Annotated[str | None, AfterValidator(_triage_department)]


def _opening_hours(value: str) -> str:
    return str(WorkingHours.parse(value))


OpeningHours = Annotated[str, AfterValidator(_opening_hours)]


# ---- sites -----------------------------------------------------------------------------------


class SiteCreate(StrictModel):
    code: Code
    name: Name
    address: Text200 = ""
    phone: Phone = None
    hours: OpeningHours = "08:00-12:00,13:30-17:30"
    is_active: bool = True


class SiteUpdate(StrictModel):
    version: Version
    code: Code | None = None
    name: Name | None = None
    address: Text200 | None = None
    phone: Phone = None
    hours: OpeningHours | None = None
    is_active: bool | None = None


class SiteRead(ReadModel):
    id: int
    code: str
    name: str
    address: str
    phone: str | None
    hours: str
    is_active: bool
    version: int


# ---- departments -----------------------------------------------------------------------------


class DepartmentCreate(StrictModel):
    code: Code
    name: Name
    site_id: DbId
    parent_id: DbId | None = None
    kind: DepartmentKind = DepartmentKind.CLINICAL
    location: Text200 = ""
    phone: Phone = None
    hours: Text200 = ""
    description: Text2000 = ""
    is_active: bool = True
    triage_department: TriageDepartment = None


class DepartmentUpdate(StrictModel):
    version: Version
    code: Code | None = None
    name: Name | None = None
    site_id: DbId | None = None
    parent_id: DbId | None = None
    kind: DepartmentKind | None = None
    location: Text200 | None = None
    phone: Phone = None
    hours: Text200 | None = None
    description: Text2000 | None = None
    is_active: bool | None = None
    triage_department: TriageDepartment = None


class DepartmentRead(ReadModel):
    id: int
    code: str
    name: str
    site_id: int
    parent_id: int | None
    kind: str
    location: str
    phone: str | None
    hours: str
    description: str
    is_active: bool
    triage_department: str | None
    version: int


# ---- teams and skills ------------------------------------------------------------------------


class TeamCreate(StrictModel):
    code: Code
    name: Name
    kind: TeamKind = TeamKind.SKILL_GROUP
    site_id: DbId | None = None
    department_id: DbId | None = None
    description: Text2000 = ""
    is_active: bool = True


class TeamUpdate(StrictModel):
    version: Version
    code: Code | None = None
    name: Name | None = None
    kind: TeamKind | None = None
    site_id: DbId | None = None
    department_id: DbId | None = None
    description: Text2000 | None = None
    is_active: bool | None = None


class TeamRead(ReadModel):
    id: int
    code: str
    name: str
    kind: str
    site_id: int | None
    department_id: int | None
    description: str
    is_active: bool
    version: int


class SkillCreate(StrictModel):
    code: Code
    name: Name
    description: Text2000 = ""
    is_active: bool = True


class SkillUpdate(StrictModel):
    version: Version
    code: Code | None = None
    name: Name | None = None
    description: Text2000 | None = None
    is_active: bool | None = None


class SkillRead(ReadModel):
    id: int
    code: str
    name: str
    description: str
    is_active: bool
    version: int


# ---- staff -----------------------------------------------------------------------------------


class SkillLevel(StrictModel):
    skill_id: DbId
    level: int = Field(ge=1, le=5)


class StaffCreate(StrictModel):
    code: Code
    name: Name
    user_id: DbId | None = None
    site_id: DbId | None = None
    department_id: DbId | None = None
    title: Text200 = ""
    phone: Phone = None
    email: Annotated[str, StringConstraints(max_length=200, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    is_handler: bool = False
    is_active: bool = True
    skills: list[SkillLevel] = []
    team_ids: list[DbId] = []


class StaffUpdate(StrictModel):
    version: Version
    code: Code | None = None
    name: Name | None = None
    user_id: DbId | None = None
    site_id: DbId | None = None
    department_id: DbId | None = None
    title: Text200 | None = None
    phone: Phone = None
    email: Annotated[str, StringConstraints(max_length=200, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    is_handler: bool | None = None
    is_active: bool | None = None
    skills: list[SkillLevel] | None = None
    team_ids: list[DbId] | None = None


class StaffRead(ReadModel):
    id: int
    code: str
    name: str
    user_id: int | None
    site_id: int | None
    department_id: int | None
    title: str
    phone: str | None
    email: str | None
    is_handler: bool
    is_active: bool
    version: int
    skills: list[SkillLevel] = []
    team_ids: list[int] = []
