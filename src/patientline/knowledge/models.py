"""Knowledge base tables: categories, items with every revision, representative-question candidates,
synonyms, feedback and favourites, images; doctors and clinic timetables; staff quizzes."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from patientline.core import clock
from patientline.core.db import Base, IdMixin, TimestampMixin, VersionMixin


class ItemStatus(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    PUBLISHED = "published"
    ARCHIVED = "archived"


class Category(IdMixin, TimestampMixin, VersionMixin, Base):
    """A node of the tree domain -> area -> sub-item."""

    __tablename__ = "kb_categories"
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("kb_categories.id", ondelete="RESTRICT"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    description: Mapped[str] = mapped_column(Text, default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class Item(IdMixin, TimestampMixin, VersionMixin, Base):
    """The working copy of a knowledge item. `status` describes the working copy; the answer callers
    hear is the live revision (`live_revision_id`), which stays in place while a new draft is edited
    and reviewed."""

    __tablename__ = "kb_items"
    key: Mapped[str | None] = mapped_column(String(64), unique=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("kb_categories.id", ondelete="RESTRICT"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=ItemStatus.DRAFT.value, index=True)
    question: Mapped[str] = mapped_column(String(200))
    answer_html: Mapped[str] = mapped_column(Text, default="")
    spoken: Mapped[str] = mapped_column(String(200), default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    department_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    site_ids: Mapped[list[int]] = mapped_column(JSON, default=list)  # empty: every site
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    owner_department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="RESTRICT"), index=True
    )
    revision: Mapped[int] = mapped_column(Integer, default=1)  # number of the working copy's revision
    live_revision_id: Mapped[int | None] = mapped_column(Integer, index=True)  # kb_revisions.id
    published_at: Mapped[datetime | None] = mapped_column()
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    review_note: Mapped[str] = mapped_column(Text, default="")


class Revision(IdMixin, Base):
    """Every saved version of an item, kept forever; `content` holds the fields a diff compares."""

    __tablename__ = "kb_revisions"
    __table_args__ = (UniqueConstraint("item_id", "number"),)
    item_id: Mapped[int] = mapped_column(ForeignKey("kb_items.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(String(500), default="")
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    published_at: Mapped[datetime | None] = mapped_column()


class Variant(IdMixin, Base):
    """A representative question: a caller's wording of the item's question. Variants help search and
    go live at once (KB2); they are not answers, so they need no review."""

    __tablename__ = "kb_variants"
    __table_args__ = (UniqueConstraint("item_id", "text"),)
    item_id: Mapped[int] = mapped_column(ForeignKey("kb_items.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16), default="editor")  # editor | candidate | import
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class CandidateStatus(StrEnum):
    OPEN = "open"
    ATTACHED = "attached"
    CREATED = "created"
    DISMISSED = "dismissed"


class Candidate(IdMixin, TimestampMixin, VersionMixin, Base):
    """A caller's wording waiting for an editor; near-duplicates share one candidate and count up."""

    __tablename__ = "kb_candidates"
    text: Mapped[str] = mapped_column(String(200))
    signature: Mapped[str] = mapped_column(String(200), index=True)  # normalised text
    source: Mapped[str] = mapped_column(String(16), default="agent")  # agent | search_miss | bot | portal
    status: Mapped[str] = mapped_column(String(16), default=CandidateStatus.OPEN.value, index=True)
    count: Mapped[int] = mapped_column(Integer, default=1)
    last_seen_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("kb_items.id", ondelete="SET NULL"))
    suggested_item_id: Mapped[int | None] = mapped_column(ForeignKey("kb_items.id", ondelete="SET NULL"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class CandidateSighting(IdMixin, Base):
    """One occurrence of a candidate: who heard it, where, in which words."""

    __tablename__ = "kb_candidate_sightings"
    candidate_id: Mapped[int] = mapped_column(ForeignKey("kb_candidates.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))
    context: Mapped[str] = mapped_column(String(100), default="")  # e.g. "contact:123"
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    seen_at: Mapped[datetime] = mapped_column(default=clock.now)


class SynonymGroup(IdMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "kb_synonyms"
    terms: Mapped[list[str]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(String(200), default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class Feedback(IdMixin, Base):
    """An agent's 'helpful' or 'outdated' mark; outdated marks reach the owner department."""

    __tablename__ = "kb_feedback"
    item_id: Mapped[int] = mapped_column(ForeignKey("kb_items.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # helpful | outdated
    comment: Mapped[str] = mapped_column(String(500), default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    resolved_at: Mapped[datetime | None] = mapped_column()
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Favourite(Base):
    __tablename__ = "kb_favourites"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("kb_items.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class Image(IdMixin, Base):
    """A picture used in answers (floor maps). Kept in the database so every node serves it."""

    __tablename__ = "kb_images"
    item_id: Mapped[int | None] = mapped_column(ForeignKey("kb_items.id", ondelete="SET NULL"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


# --- Doctors and clinic timetables -------------------------------------------------------------


class HalfDay(StrEnum):
    MORNING = "am"  # 上午
    AFTERNOON = "pm"  # 下午
    NIGHT = "night"  # 夜间


class Doctor(IdMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "kb_doctors"
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    title: Mapped[str] = mapped_column(String(50), default="")
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="RESTRICT"), index=True)
    speciality: Mapped[str] = mapped_column(String(500), default="")
    introduction: Mapped[str] = mapped_column(Text, default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class ClinicSession(IdMixin, TimestampMixin, VersionMixin, Base):
    """A doctor's regular weekly clinic: weekday (1 = Monday) and half-day."""

    __tablename__ = "kb_clinic_sessions"
    __table_args__ = (UniqueConstraint("doctor_id", "weekday", "half_day"),)
    doctor_id: Mapped[int] = mapped_column(ForeignKey("kb_doctors.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)
    half_day: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(20), default="普通门诊")
    room: Mapped[str] = mapped_column(String(100), default="")
    note: Mapped[str] = mapped_column(String(200), default="")


class ClinicChange(IdMixin, TimestampMixin, Base):
    """A temporary stop (停诊) or a substitution on one date; `half_day` empty means the whole day."""

    __tablename__ = "kb_clinic_changes"
    doctor_id: Mapped[int] = mapped_column(ForeignKey("kb_doctors.id", ondelete="CASCADE"), index=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    half_day: Mapped[str | None] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(16))  # stop | substitute
    substitute_id: Mapped[int | None] = mapped_column(ForeignKey("kb_doctors.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


# --- Staff quizzes ------------------------------------------------------------------------------


class Quiz(IdMixin, TimestampMixin, Base):
    __tablename__ = "kb_quizzes"
    title: Mapped[str] = mapped_column(String(200))
    category_ids: Mapped[list[int]] = mapped_column(JSON, default=list)  # empty: the whole base
    due_at: Mapped[datetime | None] = mapped_column()
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    is_closed: Mapped[bool] = mapped_column(Boolean, default=False)


class QuizQuestion(IdMixin, Base):
    __tablename__ = "kb_quiz_questions"
    quiz_id: Mapped[int] = mapped_column(ForeignKey("kb_quizzes.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # answer | timetable
    prompt: Mapped[str] = mapped_column(Text)
    choices: Mapped[list[str]] = mapped_column(JSON)
    correct: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("kb_items.id", ondelete="SET NULL"))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("kb_categories.id", ondelete="SET NULL"))


class QuizAssignment(IdMixin, Base):
    __tablename__ = "kb_quiz_assignments"
    __table_args__ = (UniqueConstraint("quiz_id", "user_id"),)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("kb_quizzes.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    assigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    assigned_at: Mapped[datetime] = mapped_column(default=clock.now)
    submitted_at: Mapped[datetime | None] = mapped_column()
    correct_count: Mapped[int | None] = mapped_column(Integer)
    question_count: Mapped[int] = mapped_column(Integer, default=0)


class QuizAnswer(IdMixin, Base):
    __tablename__ = "kb_quiz_answers"
    __table_args__ = (UniqueConstraint("assignment_id", "question_id"),)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("kb_quiz_assignments.id", ondelete="CASCADE"), index=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("kb_quiz_questions.id", ondelete="CASCADE"))
    choice: Mapped[int] = mapped_column(Integer)
    is_correct: Mapped[bool] = mapped_column(Boolean)
