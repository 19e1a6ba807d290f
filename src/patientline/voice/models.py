"""IVR flows: the working draft of each flow and every version ever published (CH1)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
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
