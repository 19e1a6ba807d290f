"""Deadline policies and the arithmetic of deadlines: pure, no I/O.

A clock runs from receipt (or the last reopening). Pauses stop it: each pause gives back the time it
covered, measured in the period's own unit (calendar time, working time, or whole working days).
Approved extensions lengthen the result period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from patientline.core.i18n import gettext
from patientline.core.workcal import MAX_WORKING_DAYS, OFFICE_HOURS, DayStatus, WorkCalendar, WorkingHours


class Unit(StrEnum):
    HOURS = "hours"  # calendar hours, round the clock
    WORKING_HOURS = "working_hours"  # hours inside working hours on working days
    WORKING_DAYS = "working_days"  # due at 24:00 of the n-th working day after the start


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    amount: Annotated[int, Field(ge=1, le=MAX_WORKING_DAYS)]
    unit: Unit

    def describe(self) -> str:
        labels = {
            Unit.HOURS: gettext("{n} hours"),
            Unit.WORKING_HOURS: gettext("{n} working hours"),
            Unit.WORKING_DAYS: gettext("{n} working days"),
        }
        return labels[self.unit].format(n=self.amount)


class DeadlinePolicy(BaseModel):
    """A type's rules. The defaults are the seed hotlines' complaint policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    reply: Period | None = Period(amount=24, unit=Unit.HOURS)
    result: Period | None = Period(amount=5, unit=Unit.WORKING_DAYS)
    warn_at: Annotated[float, Field(gt=0, lt=1)] = 0.8
    escalate_after_hours: Annotated[list[Annotated[int, Field(ge=0, le=24 * 60)]], Field(max_length=3)] = [0, 24, 72]
    working_hours: str = str(OFFICE_HOURS)
    callback_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    callback_retry_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] = 60
    call_back_on_reply: bool = False
    auto_close_days: Annotated[int, Field(ge=0, le=90)] = 7  # 0: resolved orders wait for an evaluation

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        return str(WorkingHours.parse(value))

    @field_validator("escalate_after_hours")
    @classmethod
    def _ascending(cls, value: list[int]) -> list[int]:
        if value != sorted(value):
            raise ValueError(gettext("Escalation steps must be in ascending order."))
        return value

    @classmethod
    def of(cls, raw: dict[str, Any] | None) -> DeadlinePolicy:
        return cls.model_validate(raw or {})


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Deadlines:
    reply_due_at: datetime | None
    resolve_due_at: datetime | None


def due_at(
    period: Period,
    start: datetime,
    *,
    calendar: WorkCalendar,
    pauses: Sequence[Interval] = (),
    extra: int = 0,
    working_hours: WorkingHours = OFFICE_HOURS,
) -> datetime:
    """When `period` (plus `extra` of its unit) runs out, counting from `start`, with pauses given back."""
    amount = period.amount + extra
    if period.unit is Unit.WORKING_DAYS:
        days_back = sum(calendar.working_days_between(p.start, p.end) for p in pauses)
        return calendar.add_working_days(start, min(amount + days_back, MAX_WORKING_DAYS))
    if period.unit is Unit.HOURS:
        back = sum((p.end - p.start for p in pauses), timedelta(0))
        return (start + timedelta(hours=amount) + back).astimezone(calendar.tz)
    back = sum((calendar.working_time_between(p.start, p.end, working_hours) for p in pauses), timedelta(0))
    return calendar.add_working_hours(start, timedelta(hours=amount) + back, working_hours)


def deadlines(
    policy: DeadlinePolicy,
    start: datetime,
    *,
    calendar: WorkCalendar,
    pauses: Sequence[Interval],
    extension: int = 0,
) -> Deadlines:
    hours = WorkingHours.parse(policy.working_hours)

    def compute(period: Period | None, extra: int) -> datetime | None:
        if period is None:
            return None
        due = due_at(period, start, calendar=calendar, pauses=pauses, extra=extra, working_hours=hours)
        return due.astimezone(UTC)  # as the database gives it back

    return Deadlines(compute(policy.reply, 0), compute(policy.result, extension))


def warning_at(start: datetime, due: datetime, fraction: float) -> datetime:
    """The due-soon moment: `fraction` of the way from the start to the deadline."""
    return start + (due - start) * fraction


@dataclass(frozen=True)
class Explanation:
    """Why a deadline fell where it did."""

    start: datetime
    period: str
    due_at: datetime | None
    days: list[DayStatus]
    fallback_years: list[int]
    pauses: list[Interval]


def explain(
    period: Period, start: datetime, due: datetime | None, *, calendar: WorkCalendar, pauses: Sequence[Interval]
) -> Explanation:
    days = calendar.explain(start, due) if due is not None and period.unit is not Unit.HOURS else []
    years = calendar.fallback_years(start, due) if due is not None and period.unit is not Unit.HOURS else []
    return Explanation(start, period.describe(), due, days, years, list(pauses))
