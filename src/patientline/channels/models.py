"""SMS and email: templates, the outbox (one row per message, delivered by jobs), the provider
references receipts are matched by, the numbers that opted out; and web chats with their messages and pictures."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
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
    """Patient messages obey quiet hours and the rate limit; one-time codes the patient has just asked
    for go out at once but have their own rate limit; staff messages (a department's new order, an
    escalation) are work and go out at once."""

    PATIENT = "patient"
    CODE = "code"
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


class ChatState(StrEnum):
    BOT = "bot"  # the assistant answers
    QUEUED = "queued"  # waiting for a person
    AGENT = "agent"  # a person answers
    CLOSED = "closed"


class ChatConversation(IdMixin, TimestampMixin, Base):
    """One web chat. The patient's browser holds `public_id` and a secret whose hash is kept here;
    `last_seq` numbers the messages (raised by one atomic UPDATE per message)."""

    __tablename__ = "chat_conversations"
    __table_args__ = (Index("ix_chat_conversations_state", "state", "last_activity_at"),)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=ChatState.BOT.value)
    locale: Mapped[str] = mapped_column(String(8), default="zh_CN")
    ip: Mapped[str] = mapped_column(String(64), default="")
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    patient_read_seq: Mapped[int] = mapped_column(Integer, default=0)
    agent_read_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_activity_at: Mapped[datetime] = mapped_column(default=clock.now)
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164, once verified by a code
    phone_verified_at: Mapped[datetime | None] = mapped_column()
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id", ondelete="SET NULL"))
    code_phone: Mapped[str | None] = mapped_column(String(20))  # the number a one-time code went to
    code_hash: Mapped[str | None] = mapped_column(String(64))
    code_expires_at: Mapped[datetime | None] = mapped_column()
    code_attempts: Mapped[int] = mapped_column(Integer, default=0)
    dialog: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the bot's open question, if any
    intent: Mapped[str] = mapped_column(String(16), default="")
    emergency_at: Mapped[datetime | None] = mapped_column()
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("routing_queues.id", ondelete="SET NULL"))
    routing_task_id: Mapped[int | None] = mapped_column(Integer, index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    taken_over_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    work_order_id: Mapped[int | None] = mapped_column(Integer)
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_comment: Mapped[str] = mapped_column(String(500), default="")
    closed_at: Mapped[datetime | None] = mapped_column()
    closed_by: Mapped[str] = mapped_column(String(16), default="")  # patient, agent, idle


class ChatMessage(IdMixin, Base):
    __tablename__ = "chat_messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        UniqueConstraint("conversation_id", "client_id"),
    )
    conversation_id: Mapped[int] = mapped_column(ForeignKey("chat_conversations.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    client_id: Mapped[str | None] = mapped_column(String(64))  # the patient's own id: a resend is not a second message
    sender: Mapped[str] = mapped_column(String(8))  # patient, bot, agent, system
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16), default="text")  # text, image, answer, choices, emergency, ...
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class ChatImage(IdMixin, Base):
    """A picture a patient sent; served at an unguessable address (`key`) to the chat's two sides."""

    __tablename__ = "chat_images"
    conversation_id: Mapped[int] = mapped_column(ForeignKey("chat_conversations.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(43), unique=True)
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
