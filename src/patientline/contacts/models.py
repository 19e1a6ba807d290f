"""Contact records (one per call, chat, message or callback attempt), the admin-managed tree of
disposition codes, links to knowledge items and work orders, and the shift handover log."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from patientline.core import clock
from patientline.core.db import Base, IdMixin, TimestampMixin, VersionMixin


class ContactChannel:
    VOICE = "voice"
    CHAT = "chat"
    SMS = "sms"
    EMAIL = "email"
    WECHAT = "wechat"
    CALLBACK = "callback"  # an outbound callback attempt
    WALK_IN = "walk_in"
    ALL = (VOICE, CHAT, SMS, EMAIL, WECHAT, CALLBACK, WALK_IN)


class Contact(IdMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "contacts"
    __table_args__ = (
        Index("ix_contacts_started", "started_at"),
        Index("ix_contacts_agent_started", "agent_id", "started_at"),
        Index("ix_contacts_patient_started", "patient_id", "started_at"),
    )
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(8), default="inbound")  # inbound, outbound
    status: Mapped[str] = mapped_column(String(8), default="open")  # open, closed
    started_at: Mapped[datetime] = mapped_column(default=clock.now)
    answered_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("routing_queues.id", ondelete="SET NULL"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id", ondelete="SET NULL"))
    verified_by: Mapped[str] = mapped_column(String(16), default="")  # birth_date, id_digits; empty: not verified
    phone: Mapped[str | None] = mapped_column(String(20), index=True)  # E.164; cleared by anonymisation
    caller_name: Mapped[str] = mapped_column(String(100), default="")
    routing_task_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    external_ref: Mapped[str | None] = mapped_column(String(100), index=True)  # the call's or chat's id
    subject: Mapped[str] = mapped_column(String(200), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    anonymised_at: Mapped[datetime | None] = mapped_column()


class DispositionCode(IdMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "disposition_codes"
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("disposition_codes.id", ondelete="RESTRICT"))
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class ContactDisposition(Base):
    __tablename__ = "contact_dispositions"
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("disposition_codes.id", ondelete="RESTRICT"), primary_key=True)


class ContactLink(IdMixin, Base):
    __tablename__ = "contact_links"
    __table_args__ = (UniqueConstraint("contact_id", "kind", "target_id"),)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # knowledge, workorder
    target_id: Mapped[int] = mapped_column(Integer)


class ShiftHandover(IdMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "shift_handovers"
    shift_date: Mapped[date] = mapped_column(Date, index=True)
    shift: Mapped[str] = mapped_column(String(16))  # day, evening, night
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    notes: Mapped[str] = mapped_column(Text, default="")
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    acknowledged_at: Mapped[datetime | None] = mapped_column()


class HandoverItem(IdMixin, Base):
    """A pending item handed to the next shift; ticked off by whoever finishes it."""

    __tablename__ = "handover_items"
    handover_id: Mapped[int] = mapped_column(ForeignKey("shift_handovers.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(String(500))
    done_at: Mapped[datetime | None] = mapped_column()
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
