"""SMS and email: templates, the outbox (one row per message, delivered by jobs), the provider
references receipts are matched by, and the numbers that opted out."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from patientline.core import clock
from patientline.core.db import Base, IdMixin, TimestampMixin, VersionMixin


class SmsStatus(StrEnum):
    QUEUED = "queued"
    HELD = "held"  # quiet hours: its delivery job runs when they end
    SENDING = "sending"  # an attempt failed for a passing reason; it is retried
    SENT = "sent"  # the provider accepted it
    DELIVERED = "delivered"  # the handset has it (delivery receipt)
    FAILED = "failed"
    SUPPRESSED = "suppressed"  # never sent: see suppress_reason


OPEN_STATUSES = (SmsStatus.QUEUED, SmsStatus.HELD, SmsStatus.SENDING)


class SuppressReason(StrEnum):
    OPTED_OUT = "opted_out"
    RATE_LIMITED = "rate_limited"


class Audience(StrEnum):
    """Patient messages obey quiet hours and the rate limit; staff messages (a department's new
    order, an escalation) are work and go out at once."""

    PATIENT = "patient"
    STAFF = "staff"


class OptOutSource(StrEnum):
    AGENT = "agent"
    PATIENT_REPLY = "patient_reply"


class EmailStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class SmsTemplate(IdMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "sms_templates"
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)  # with {variable} placeholders
    variables: Mapped[list[str]] = mapped_column(JSON, default=list)
    provider_template_code: Mapped[str] = mapped_column(String(64), default="")  # e.g. SMS_123456 (cloud APIs)
    audience: Mapped[str] = mapped_column(String(16), default=Audience.PATIENT.value)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class SmsMessage(IdMixin, Base):
    __tablename__ = "sms_messages"
    __table_args__ = (
        Index("ix_sms_messages_related", "related_type", "related_id"),
        Index("ix_sms_messages_phone_created", "phone", "created_at"),
        Index("ix_sms_messages_patient_created", "patient_id", "created_at"),
    )
    phone: Mapped[str] = mapped_column(String(20))  # E.164
    patient_id: Mapped[int | None] = mapped_column(Integer)
    template_code: Mapped[str] = mapped_column(String(32), index=True)
    audience: Mapped[str] = mapped_column(String(16), default=Audience.PATIENT.value)
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    text: Mapped[str] = mapped_column(Text)  # what the recipient reads, signature included
    parts: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), index=True)
    suppress_reason: Mapped[str | None] = mapped_column(String(32))
    provider: Mapped[str | None] = mapped_column(String(16))
    provider_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    related_type: Mapped[str | None] = mapped_column(String(40))
    related_id: Mapped[int | None] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    send_after: Mapped[datetime | None] = mapped_column()  # the end of quiet hours for a held message
    sent_at: Mapped[datetime | None] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column()
    failed_at: Mapped[datetime | None] = mapped_column()


class SmsProviderRef(IdMixin, Base):
    """One provider id per message part (SMPP) or per message (cloud APIs): receipts name these."""

    __tablename__ = "sms_provider_refs"
    __table_args__ = (UniqueConstraint("provider", "ref"),)
    message_id: Mapped[int] = mapped_column(ForeignKey("sms_messages.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(100))
    part: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default=SmsStatus.SENT.value)  # sent | delivered | failed
    error: Mapped[str | None] = mapped_column(String(200))


class SmsOptOut(IdMixin, Base):
    __tablename__ = "sms_opt_outs"
    phone: Mapped[str] = mapped_column(String(20), unique=True)  # E.164
    reason: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class EmailMessage(IdMixin, Base):
    __tablename__ = "email_messages"
    __table_args__ = (Index("ix_email_messages_related", "related_type", "related_id"),)
    to: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    provider: Mapped[str | None] = mapped_column(String(16))
    provider_id: Mapped[str | None] = mapped_column(String(200))  # the Message-ID header
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    related_type: Mapped[str | None] = mapped_column(String(40))
    related_id: Mapped[int | None] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    sent_at: Mapped[datetime | None] = mapped_column()
    failed_at: Mapped[datetime | None] = mapped_column()
