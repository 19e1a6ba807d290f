from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patientline.core.db import Base, IdMixin, TimestampMixin, VersionMixin

# The standard departments triage suggests (the common registration departments of a Chinese tertiary
# general hospital); each of the hospital's departments may say which one it answers for.
TRIAGE_DEPARTMENTS = (
    "心内科", "呼吸内科", "消化内科", "神经内科", "内分泌科", "肾内科", "血液科", "风湿免疫科", "感染科",
    "普通外科", "骨科", "泌尿外科", "神经外科", "心胸外科", "乳腺外科", "肛肠外科", "整形外科", "妇科", "产科",
    "儿科", "眼科", "耳鼻咽喉科", "口腔科", "皮肤科", "精神心理科", "肿瘤科", "男科", "急诊科", "中医科", "康复科",
)  # fmt: skip


class DepartmentKind(StrEnum):
    CLINICAL = "clinical"
    MEDICAL_TECHNOLOGY = "medical_technology"
    ADMINISTRATIVE = "administrative"


class TeamKind(StrEnum):
    SKILL_GROUP = "skill_group"
    DEPARTMENT_SEATS = "department_seats"
    EXPERT_CENTRE = "expert_centre"


class Site(IdMixin, TimestampMixin, VersionMixin, Base):
    """A branch (院区) of the hospital."""

    __tablename__ = "sites"
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str | None] = mapped_column(String(32))
    hours: Mapped[str] = mapped_column(String(100), default="08:00-12:00,13:30-17:30")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class Department(IdMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "departments"
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[str] = mapped_column(String(32), default=DepartmentKind.CLINICAL.value)
    location: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str | None] = mapped_column(String(32))
    hours: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # which of TRIAGE_DEPARTMENTS this department answers for (none: triage matches it by name)
    triage_department: Mapped[str | None] = mapped_column(String(16))


class Team(IdMixin, TimestampMixin, VersionMixin, Base):
    """A team or skill group of agents; `site_id` empty means it spans sites (the expert centre)."""

    __tablename__ = "teams"
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32), default=TeamKind.SKILL_GROUP.value)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id", ondelete="RESTRICT"))
    description: Mapped[str] = mapped_column(Text, default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class Skill(IdMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "skills"
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class Staff(IdMixin, TimestampMixin, VersionMixin, Base):
    """A person who works at the hospital; linked to a user account when they log in."""

    __tablename__ = "staff"
    code: Mapped[str] = mapped_column(String(32), unique=True)  # employee number
    name: Mapped[str] = mapped_column(String(100), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), unique=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id", ondelete="RESTRICT"), index=True)
    title: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(200))
    is_handler: Mapped[bool] = mapped_column(Boolean, default=False)  # receives the department's work
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class StaffSkill(Base):
    __tablename__ = "staff_skills"
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True)
    skill_id: Mapped[int] = mapped_column(ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, default=1)  # 1 (learning) .. 5 (expert)


class TeamMember(Base):
    __tablename__ = "team_members"
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True)
    is_lead: Mapped[bool] = mapped_column(Boolean, default=False)
