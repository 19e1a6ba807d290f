"""The patient index: people with their identifiers and phone numbers, safety flags, merges, the result
statuses the HIS reported and patients' wishes to hear of them, and the last HIS answers (degraded mode)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from patientline.core import clock
from patientline.core.db import Base, BulkInsertMixin, IdMixin, TimestampMixin, VersionMixin


class IdentifierKind:
    MRN = "mrn"  # medical-record number
    ID_CARD = "id_card"  # resident identity card (GB 11643)
    VISIT_CARD = "visit_card"  # the hospital's visit card
    HEALTH_CARD = "health_card"  # the resident health card
    INSURANCE = "insurance"  # medical insurance number
    ALL = (MRN, ID_CARD, VISIT_CARD, HEALTH_CARD, INSURANCE)


class FlagKind:
    ABUSIVE = "abusive"  # abusive or threatening caller: scripts, escalation, staff protection
    SAFETY = "safety"  # other risk the agent must know (e.g. self-harm history)
    ALL = (ABUSIVE, SAFETY)


class Patient(IdMixin, BulkInsertMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "patients"
    name: Mapped[str] = mapped_column(String(100), index=True)
    name_pinyin: Mapped[str] = mapped_column(String(200), default="", index=True)  # "wangxiaoming wxm"
    sex: Mapped[str] = mapped_column(String(8), default="unknown")  # male, female, unknown
    birth_date: Mapped[date | None] = mapped_column(Date)
    prospective: Mapped[bool] = mapped_column(Boolean, default=False)  # registered by an agent, no visit yet
    his_id: Mapped[str | None] = mapped_column(String(64), unique=True)  # the HIS's own id for the person
    his_synced_at: Mapped[datetime | None] = mapped_column()
    sms_opt_in: Mapped[bool] = mapped_column(Boolean, default=True)
    quiet_hours: Mapped[str] = mapped_column(String(11), default="")  # "21:00-08:00"; empty: the centre's
    language_note: Mapped[str] = mapped_column(String(100), default="")  # preferred language or dialect
    vip_level: Mapped[int] = mapped_column(Integer, default=0)  # 0: none
    vip_note: Mapped[str] = mapped_column(String(200), default="")
    vip_expert_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id", ondelete="SET NULL"), index=True)
    merged_at: Mapped[datetime | None] = mapped_column()


class PatientIdentifier(IdMixin, Base):
    __tablename__ = "patient_identifiers"
    __table_args__ = (UniqueConstraint("kind", "value"),)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(64))


class PatientPhone(IdMixin, Base):
    """One number may belong to several people (a family), so the number alone is not unique."""

    __tablename__ = "patient_phones"
    __table_args__ = (UniqueConstraint("patient_id", "phone"),)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    phone: Mapped[str] = mapped_column(String(20), index=True)  # E.164
    label: Mapped[str] = mapped_column(String(16), default="mobile")  # mobile, home, work, family


class PatientFlag(IdMixin, TimestampMixin, Base):
    __tablename__ = "patient_flags"
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(500))
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    cleared_at: Mapped[datetime | None] = mapped_column()
    cleared_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    clear_note: Mapped[str] = mapped_column(String(500), default="")


class PatientMerge(IdMixin, Base):
    """A duplicate folded into a survivor; the duplicate's row stays (pointing at the survivor) and its
    record as it was is kept here, so a merge never loses a patient."""

    __tablename__ = "patient_merges"
    survivor_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    merged_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=clock.now)
    by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(16), default="manual")  # manual, hl7 (ADT^A40)
    reason: Mapped[str] = mapped_column(String(500), default="")
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PatientResult(IdMixin, BulkInsertMixin, TimestampMixin, Base):
    """A lab or imaging order's status as the HIS/LIS reported it (ORU^R01 or FHIR DiagnosticReport)."""

    __tablename__ = "patient_results"
    __table_args__ = (UniqueConstraint("patient_id", "order_number"),)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    order_number: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    category: Mapped[str] = mapped_column(String(16), default="lab")  # lab, imaging
    status: Mapped[str] = mapped_column(String(16), default="registered")  # registered, preliminary, final…
    issued_at: Mapped[datetime | None] = mapped_column()
    conclusion: Mapped[str] = mapped_column(Text, default="")  # shown only when the centre allows it
    source: Mapped[str] = mapped_column(String(8), default="hl7")  # hl7, fhir


class ResultSubscription(IdMixin, TimestampMixin, Base):
    """One SMS when the order's result becomes available ("tell me when my result is ready")."""

    __tablename__ = "result_subscriptions"
    __table_args__ = (Index("ix_result_subscriptions_waiting", "status", "patient_id"),)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    order_number: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(20))  # E.164
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(12), default="waiting")  # waiting, sent, cancelled
    notified_at: Mapped[datetime | None] = mapped_column()
    sms_message_id: Mapped[int | None] = mapped_column(Integer)


class HisSnapshot(Base):
    """The last good HIS answer per patient and kind, shown with its age when the HIS is slow or down."""

    __tablename__ = "his_snapshots"
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # visits, appointments, results
    data: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    fetched_at: Mapped[datetime] = mapped_column(default=clock.now)


class Hl7Message(IdMixin, Base):
    """An HL7 v2 message the listener accepted (its effects committed), keyed by sender, control id and a
    digest of its content, with the ACK it was answered: a resend gets the same ACK and changes nothing."""

    __tablename__ = "hl7_messages"
    __table_args__ = (UniqueConstraint("sender", "control_id", "digest"),)
    sender: Mapped[str] = mapped_column(String(200))  # MSH-3 and MSH-4: sending application and facility
    control_id: Mapped[str] = mapped_column(String(200))  # MSH-10
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the segments after MSH, and MSH-9
    message_type: Mapped[str] = mapped_column(String(16))  # e.g. ADT^A01
    ack_code: Mapped[str] = mapped_column(String(2))  # AA (AE and AR change nothing and are not kept)
    ack: Mapped[str] = mapped_column(Text, default="")  # the ACK as sent (no patient data)
    received_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
