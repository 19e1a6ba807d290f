"""IVR flows: the working draft of each flow and every version ever published (CH1)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from patientline.core.db import Base, IdMixin, TimestampMixin, VersionMixin


class IvrFlow(IdMixin, TimestampMixin, VersionMixin, Base):
    """A flow callers meet when they dial `number` (the hotline's number as the SIP front sees it)."""

    __tablename__ = "ivr_flows"
    name: Mapped[str] = mapped_column(String(100), unique=True)
    number: Mapped[str | None] = mapped_column(String(20), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    draft: Mapped[dict[str, Any]] = mapped_column(JSON)  # a FlowDefinition, maybe not publishable yet
    live_version: Mapped[int | None] = mapped_column(Integer)  # the published version callers meet


class IvrFlowVersion(IdMixin, Base):
    """A published definition, kept unchanged: calls name the version they went through."""

    __tablename__ = "ivr_flow_versions"
    __table_args__ = (UniqueConstraint("flow_id", "number"),)
    flow_id: Mapped[int] = mapped_column(ForeignKey("ivr_flows.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(String(200), default="")
    published_at: Mapped[datetime] = mapped_column()
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class VoiceCall(IdMixin, Base):
    """One phone call through the hotline: its times, the flow it met, where it went, who answered,
    how it ended, its legs and transfers, and its recording (a file under `var/voice/recordings`)."""

    __tablename__ = "voice_calls"
    sip_call_id: Mapped[str] = mapped_column(String(200), index=True)
    direction: Mapped[str] = mapped_column(String(8), default="inbound")
    dialled: Mapped[str] = mapped_column(String(40), default="")  # the hotline's number (outbound: the one shown)
    caller: Mapped[str] = mapped_column(String(40), default="")  # the outside party's number, E.164 when it is one
    worker: Mapped[str] = mapped_column(String(40), default="")
    flow_id: Mapped[int | None] = mapped_column(ForeignKey("ivr_flows.id", ondelete="SET NULL"))
    flow_version: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(index=True)
    answered_at: Mapped[datetime | None] = mapped_column()
    queued_at: Mapped[datetime | None] = mapped_column()
    connected_at: Mapped[datetime | None] = mapped_column()  # an agent answered
    ended_at: Mapped[datetime | None] = mapped_column()
    outcome: Mapped[str] = mapped_column(String(16), default="")  # queue, callback, voicemail, number, hangup
    end_reason: Mapped[str] = mapped_column(String(32), default="")  # caller_hung_up, agent_hung_up, worker_failed…
    ivr: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # path, keys, collected digits
    events: Mapped[list[Any]] = mapped_column(JSON, default=list)  # legs and transfers, in order, with times
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("routing_queues.id", ondelete="SET NULL"))
    routing_task_id: Mapped[int | None] = mapped_column(Integer, index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id", ondelete="SET NULL"))
    recording: Mapped[str | None] = mapped_column(String(300))  # relative to the recordings directory
    recording_seconds: Mapped[float | None] = mapped_column()


class VoiceSelfTest(IdMixin, Base):
    """One synthetic call into the hotline (CH6): did the line answer, was a prompt heard, did the IVR
    reach a queue. `problem` is empty when it passed."""

    __tablename__ = "voice_self_tests"
    started_at: Mapped[datetime] = mapped_column(index=True)
    ok: Mapped[bool] = mapped_column()
    problem: Mapped[str] = mapped_column(String(32), default="")  # not_answered, no_prompt, no_queue, …
    number: Mapped[str] = mapped_column(String(20), default="")
    answer_ms: Mapped[int | None] = mapped_column(Integer)
    prompt_level: Mapped[float | None] = mapped_column()  # RMS of what the caller heard
    outcome: Mapped[str] = mapped_column(String(16), default="")  # where the IVR sent the call
    ivr_path: Mapped[list[Any]] = mapped_column(JSON, default=list)
    alarm: Mapped[str] = mapped_column(String(200), default="")  # texted:<message>, no_oncall_phone, not_texted:<why>


class VoicePhoneSecret(Base):
    """A staff member's desk-phone password for the SIP front, kept only as its digest `ha1`
    (MD5 of user:realm:password, what the registrar checks a REGISTER against)."""

    __tablename__ = "voice_phone_secrets"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    ha1: Mapped[str] = mapped_column(String(32))
    realm: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column()
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class VoicePrompt(IdMixin, TimestampMixin, VersionMixin, Base):
    """A recorded prompt a flow can play (an uploaded WAV), kept converted to the telephone's 8 kHz mono
    16-bit WAV in the database, so any node takes the upload and the phone line plays it from a copy
    on disk named by `sha256`."""

    __tablename__ = "voice_prompts"
    name: Mapped[str] = mapped_column(String(100), unique=True)
    words: Mapped[str] = mapped_column(Text, default="")  # what it says, for the editor and the record
    filename: Mapped[str] = mapped_column(String(200))  # as uploaded
    seconds: Mapped[float] = mapped_column()
    sha256: Mapped[str] = mapped_column(String(64))
    audio: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
