"""Work-order tables: configurable types, the orders with their deadline columns, the timeline,
pauses, extensions, evidence, links, co-handling departments, callback attempts, raised alerts and
the departments' notification contacts."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from patientline.core import clock
from patientline.core.db import Base, IdMixin, TimestampMixin, VersionMixin


class Status(StrEnum):
    NEW = "new"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    REPLIED = "replied"
    RESOLVED = "resolved"
    CLOSED = "closed"
    RETURNED = "returned"  # the department said "not ours"; the centre redispatches
    MERGED = "merged"  # a duplicate folded into another order


OPEN_STATUSES = frozenset(
    {Status.NEW, Status.DISPATCHED, Status.ACCEPTED, Status.REPLIED, Status.RESOLVED, Status.RETURNED}
)


class TypeGroup(StrEnum):
    CALLBACK = "callback"
    COMPLAINT = "complaint"
    FEEDBACK = "feedback"  # suggestion, praise, report
    SERVICE = "service"  # equipment rental, family doctor, caregiver, meals


class CallOutcome(StrEnum):
    REACHED = "reached"
    NO_ANSWER = "no_answer"
    WRONG_NUMBER = "wrong_number"
    VOICEMAIL = "voicemail"


class ExtensionStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"


class WorkOrderType(IdMixin, TimestampMixin, VersionMixin, Base):
    """What admins configure: the form, categories, default department, deadline policy, SMS templates."""

    __tablename__ = "wo_types"
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    group: Mapped[str] = mapped_column(String(16), default=TypeGroup.CALLBACK.value)
    description: Mapped[str] = mapped_column(Text, default="")
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    default_department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id", ondelete="SET NULL"))
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sms_templates: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # moment -> template code
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class WorkOrder(IdMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "work_orders"
    __table_args__ = (
        # The supervision list reads only indexes: the page in due order (NULLS LAST), the counts, and
        # the per-department counts (open, overdue, soon, escalated; by type) from the first one.
        Index(
            "ix_work_orders_open_department_due",
            "is_open",
            "department_id",
            "next_due_at",
            "paused_at",
            "escalation_level",
            "type_id",
        ),
        Index("ix_work_orders_open_due", "is_open", "next_due_at", "paused_at"),
        Index("ix_work_orders_open_type_due", "is_open", "type_id", "next_due_at"),
        Index("ix_work_orders_alert", "is_open", "next_alert_at"),  # the sweep's batch, in order
        Index("ix_work_orders_callback", "callback_due_at"),
        Index("ix_work_orders_received", "received_at"),
        Index("ix_work_orders_resolved", "resolved_at"),  # reports: orders resolved per day
    )
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    client_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    type_id: Mapped[int] = mapped_column(ForeignKey("wo_types.id", ondelete="RESTRICT"), index=True)
    category: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(16), default=Status.NEW.value, index=True)
    is_open: Mapped[bool] = mapped_column(Boolean, default=True)
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the type's form
    channel: Mapped[str] = mapped_column(String(16), default="phone")
    patient_id: Mapped[int | None] = mapped_column(Integer, index=True)
    caller_name: Mapped[str] = mapped_column(String(100), default="")
    caller_phone: Mapped[str | None] = mapped_column(String(20), index=True)  # E.164
    contact_ref: Mapped[str | None] = mapped_column(String(64), index=True)  # the contact it came from
    callback_from: Mapped[datetime | None] = mapped_column()  # the patient's desired window
    callback_until: Mapped[datetime | None] = mapped_column()
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id", ondelete="RESTRICT"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    received_at: Mapped[datetime] = mapped_column(default=clock.now)
    clock_started_at: Mapped[datetime] = mapped_column(default=clock.now)  # receipt, or the last reopening
    dispatched_at: Mapped[datetime | None] = mapped_column()
    accepted_at: Mapped[datetime | None] = mapped_column()
    replied_at: Mapped[datetime | None] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    reply_due_at: Mapped[datetime | None] = mapped_column()
    resolve_due_at: Mapped[datetime | None] = mapped_column()
    next_due_at: Mapped[datetime | None] = mapped_column()  # the deadline that matters now
    next_alert_at: Mapped[datetime | None] = mapped_column()  # when the sweeper next has work here
    reply_on_time: Mapped[bool | None] = mapped_column(Boolean)
    resolve_on_time: Mapped[bool | None] = mapped_column(Boolean)
    paused_at: Mapped[datetime | None] = mapped_column()
    pause_reason: Mapped[str] = mapped_column(String(200), default="")
    extension_amount: Mapped[int] = mapped_column(Integer, default=0)  # in the result period's unit
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    escalated_at: Mapped[datetime | None] = mapped_column()
    alerts_raised: Mapped[list[str]] = mapped_column(JSON, default=list)  # in this clock run
    reply_text: Mapped[str] = mapped_column(Text, default="")
    result_text: Mapped[str] = mapped_column(Text, default="")
    satisfied: Mapped[bool | None] = mapped_column(Boolean)
    evaluation_comment: Mapped[str] = mapped_column(Text, default="")
    close_reason: Mapped[str] = mapped_column(String(32), default="")
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    return_count: Mapped[int] = mapped_column(Integer, default=0)
    merged_into_id: Mapped[int | None] = mapped_column(Integer, index=True)
    callback_due_at: Mapped[datetime | None] = mapped_column()
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0)


class ReferenceCounter(Base):
    """The per-day sequence behind WO-20261122-0042."""

    __tablename__ = "wo_reference_counters"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class TimelineEntry(IdMixin, Base):
    """One line of an order's history: who, when, what, a note, attachments."""

    __tablename__ = "wo_timeline"
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=clock.now)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str] = mapped_column(String(100), default="")
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Pause(IdMixin, Base):
    """Waiting for the patient: the clock stops from `started_at` to `ended_at`."""

    __tablename__ = "wo_pauses"
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    reason: Mapped[str] = mapped_column(String(200))
    started_by_id: Mapped[int | None] = mapped_column(Integer)


class Extension(IdMixin, Base):
    __tablename__ = "wo_extensions"
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    amount: Mapped[int] = mapped_column(Integer)  # in the result period's unit
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=ExtensionStatus.PENDING.value, index=True)
    requested_by_id: Mapped[int | None] = mapped_column(Integer)
    requested_at: Mapped[datetime] = mapped_column(default=clock.now)
    decided_by_id: Mapped[int | None] = mapped_column(Integer)
    decided_at: Mapped[datetime | None] = mapped_column()
    decision_note: Mapped[str] = mapped_column(Text, default="")


class Attachment(IdMixin, Base):
    """Evidence, kept in the database so every node serves it."""

    __tablename__ = "wo_attachments"
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    timeline_id: Mapped[int | None] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by_id: Mapped[int | None] = mapped_column(Integer)
    uploaded_at: Mapped[datetime] = mapped_column(default=clock.now)


class Link(IdMixin, Base):
    """A related order (stored once per pair, from the lower id) or a contact reference."""

    __tablename__ = "wo_links"
    __table_args__ = (UniqueConstraint("order_id", "kind", "target"),)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # order | contact
    target: Mapped[str] = mapped_column(String(64), index=True)
    created_by_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class CoHandler(Base):
    __tablename__ = "wo_co_handlers"
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), primary_key=True)
    department_id: Mapped[int] = mapped_column(
        ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class CallbackAttempt(IdMixin, Base):
    __tablename__ = "wo_callback_attempts"
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=clock.now)
    agent_id: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")


class Alert(IdMixin, Base):
    """A warning or breach raised once: the unique key makes a sweep that runs twice raise one."""

    __tablename__ = "wo_alerts"
    key: Mapped[str] = mapped_column(String(100), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    level: Mapped[int] = mapped_column(Integer, default=0)
    raised_at: Mapped[datetime] = mapped_column(default=clock.now)


class DepartmentContact(TimestampMixin, VersionMixin, Base):
    """Where a department's new work and escalations are also sent, besides the in-app tray."""

    __tablename__ = "wo_department_contacts"
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True)
    sms_phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(200))
    head_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
