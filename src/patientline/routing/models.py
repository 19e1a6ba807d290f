"""Routing tables: queues and their members, agents' routing profiles and presence, the tasks the
router assigns, and the append-only queue log every metric is computed from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patientline.core import clock
from patientline.core.db import Base, IdMixin, TimestampMixin, VersionMixin


class QueueKind:
    SKILL_GROUP = "skill_group"
    DEPARTMENT_SEATS = "department_seats"  # a department's seat group
    EXPERT_CENTRE = "expert_centre"  # shared across sites
    ALL = (SKILL_GROUP, DEPARTMENT_SEATS, EXPERT_CENTRE)


class TaskState:
    WAITING = "waiting"
    OFFERED = "offered"
    ACTIVE = "active"
    DONE = "done"
    ABANDONED = "abandoned"
    EXPIRED = "expired"
    LIVE = (WAITING, OFFERED, ACTIVE)


class RoutingQueue(IdMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "routing_queues"
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32), default=QueueKind.SKILL_GROUP)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))  # empty: all sites
    skill: Mapped[str | None] = mapped_column(String(32))  # a directory skill code (BEST_SKILL)
    hours: Mapped[str] = mapped_column(String(100), default="00:00-24:00")  # e.g. "08:00-12:00,13:30-17:30"
    working_days_only: Mapped[bool] = mapped_column(Boolean, default=False)  # closed on holidays and weekends
    priority: Mapped[int] = mapped_column(Integer, default=0)
    strategy: Mapped[str] = mapped_column(String(32), default="longest_idle")
    sl_seconds: Mapped[int] = mapped_column(Integer, default=20)
    sl_target: Mapped[float] = mapped_column(Float, default=0.8)
    short_abandon_s: Mapped[int] = mapped_column(Integer, default=5)
    max_wait_s: Mapped[int | None] = mapped_column(Integer)
    overflow_queue_id: Mapped[int | None] = mapped_column(ForeignKey("routing_queues.id", ondelete="SET NULL"))
    overflow_threshold: Mapped[int | None] = mapped_column(Integer)
    widen_after_s: Mapped[list[int]] = mapped_column(JSON, default=list)
    aging_per_minute: Mapped[float] = mapped_column(Float, default=0.0)
    vip_priority: Mapped[int] = mapped_column(Integer, default=5)  # added to a VIP caller's task
    wrap_up: Mapped[str] = mapped_column(String(16), default="mandatory")
    wrap_up_s: Mapped[int] = mapped_column(Integer, default=30)
    callback_offer: Mapped[bool] = mapped_column(Boolean, default=True)  # may keep the place and hang up
    alert_waiting: Mapped[int | None] = mapped_column(Integer)  # wallboard alert from this many waiting
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class QueueMember(Base):
    __tablename__ = "routing_queue_members"
    queue_id: Mapped[int] = mapped_column(ForeignKey("routing_queues.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    tier: Mapped[int] = mapped_column(Integer, default=1)


class AgentProfile(TimestampMixin, VersionMixin, Base):
    """How an agent can be routed to: capacities per channel (skills come from the directory's staff)."""

    __tablename__ = "routing_agent_profiles"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    capacities: Mapped[dict[str, int]] = mapped_column(JSON, default=lambda: {"voice": 1, "chat": 3, "callback": 1})
    extension: Mapped[str | None] = mapped_column(String(32), unique=True)  # SIP extension (voice)
    auto_answer: Mapped[bool] = mapped_column(Boolean, default=False)


class AgentState(Base):
    """An agent's presence as the router last set it: what a restart rebuilds from."""

    __tablename__ = "routing_agent_state"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    presence: Mapped[str] = mapped_column(String(16), default="offline")  # offline, ready, not_ready
    status: Mapped[str] = mapped_column(String(16), default="offline")  # what the bar and wallboard show
    reason: Mapped[str | None] = mapped_column(String(32))
    since: Mapped[datetime] = mapped_column(default=clock.now)
    idle_since: Mapped[datetime | None] = mapped_column()  # longest-idle order after a restart
    handled_today: Mapped[int] = mapped_column(Integer, default=0)
    missed_offers: Mapped[int] = mapped_column(Integer, default=0)


class RoutingTask(IdMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "routing_tasks"
    channel: Mapped[str] = mapped_column(String(16))
    queue_id: Mapped[int] = mapped_column(ForeignKey("routing_queues.id", ondelete="RESTRICT"))
    state: Mapped[str] = mapped_column(String(16), default=TaskState.WAITING)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    is_vip: Mapped[bool] = mapped_column(Boolean, default=False)
    entered_at: Mapped[datetime] = mapped_column(default=clock.now)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    offered_at: Mapped[datetime | None] = mapped_column()
    accepted_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    kept_place: Mapped[bool] = mapped_column(Boolean, default=False)  # the patient hung up; call back
    external_ref: Mapped[str | None] = mapped_column(String(100))  # the channel's id (call, conversation)
    caller: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # masked number, patient id, name
    caller_phone: Mapped[str | None] = mapped_column(String(20))  # E.164, for the screen pop's lookup
    subject: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        Index("ix_routing_tasks_live", "state", "queue_id"),
        Index("ix_routing_tasks_external_ref", "channel", "external_ref"),
    )


class QueueLogEntry(Base):
    """Append-only: one line per thing that happened in a queue or to an agent (see docs/ROUTING.md)."""

    __tablename__ = "routing_queue_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    event: Mapped[str] = mapped_column(String(20))
    queue_id: Mapped[int | None] = mapped_column(Integer)
    task_id: Mapped[int | None] = mapped_column(Integer)
    agent_id: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str | None] = mapped_column(String(16))
    wait_s: Mapped[float | None] = mapped_column(Float)
    duration_s: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(String(32))
    by_id: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_routing_queue_log_queue_at", "queue_id", "at"),
        Index("ix_routing_queue_log_agent_at", "agent_id", "at"),
    )
