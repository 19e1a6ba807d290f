"""The working-day calendar: which days count, and deadlines in working days or working hours.

A day's status comes from, in order of precedence:
1. an admin **override** (`calendar_overrides`: one row per day, always wins);
2. the `chinesecalendar` package: statutory holidays and make-up workdays (调休) for the years it ships;
3. the **weekday fallback** (Mon–Fri work) for years neither covers; `year_coverage`, `DayStatus.reason`
   and `explain` say when an answer rests on it, so a supervisor knows the deadline is provisional.

`WorkCalendar` is pure (no I/O). `load` builds one from the table on every call (it is tiny).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar
from sqlalchemy import Date, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from patientline.core import audit, jobs
from patientline.core.auth.actor import Actor
from patientline.core.db import Base, IdMixin, TimestampMixin
from patientline.core.errors import Conflict, InvalidInput, NotFound
from patientline.core.i18n import N_, gettext

DEFAULT_TIMEZONE = "Asia/Shanghai"
MAX_WORKING_DAYS = 1000
"""Longest period `add_working_days` accepts (about four years): anything longer is a typo."""
_MAX_DAYS_SCANNED = 3700
"""`add_working_hours` gives up after scanning about ten years of days."""
NOTE_MAX_LENGTH = 200


class InvalidCalendarInput(InvalidInput, ValueError):
    """Bad calendar input: answers 422 through the API, and is a `ValueError` for plain callers."""

    def __str__(self) -> str:
        return self.localized_message(gettext)


class Coverage(StrEnum):
    PACKAGE = "package"  # chinesecalendar ships the year (overrides may still correct single days)
    OVERRIDES = "overrides"  # the package lacks the year; admins entered at least one day of it
    NONE = "none"  # nobody knows the year: Mon–Fri fallback


class DayReason(StrEnum):
    WORKING_DAY = "working day"
    WEEKEND = "weekend"
    STATUTORY_HOLIDAY = "statutory holiday"
    MAKE_UP_WORKDAY = "make-up workday"
    OVERRIDE = "override"
    WEEKDAY_FALLBACK = "weekday fallback (year not covered)"


@dataclass(frozen=True, slots=True)
class DayStatus:
    """Whether a local date is a working day, and why."""

    day: date
    is_working_day: bool
    reason: DayReason
    detail: str | None = None  # the holiday's name or the override's note

    @property
    def used_fallback(self) -> bool:
        return self.reason is DayReason.WEEKDAY_FALLBACK

    @property
    def label(self) -> str:
        return f"{self.reason.value}: {self.detail}" if self.detail else self.reason.value

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "is_working_day": self.is_working_day,
            "reason": self.reason.value,
            "detail": self.detail,
            "label": self.label,
        }


SkippedDay = DayStatus
"""What `explain` lists: each non-working day skipped, and each weekend/overridden day that counted."""


def _require_aware(moment: datetime, name: str) -> None:
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidCalendarInput(
            "{name} must be a timezone-aware datetime.", params={"name": name}, error_id="naive_datetime"
        )


def _require_date(day: date) -> None:
    if isinstance(day, datetime) or not isinstance(day, date):
        raise InvalidCalendarInput("A calendar day must be a date, not {kind}.", params={"kind": type(day).__name__})


# --- opening hours ---------------------------------------------------------------------------------

_WINDOW = re.compile(r"^\s*(\d{2}):(\d{2})\s*-\s*(\d{2}):(\d{2})\s*$")
MINUTES_PER_DAY = 24 * 60


def _minute_of_day(hours: str, minutes: str, *, is_end: bool) -> int | None:
    h, m = int(hours), int(minutes)
    if is_end and (h, m) == (24, 0):
        return MINUTES_PER_DAY
    return h * 60 + m if h < 24 and m < 60 else None


def _format_minute(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """A site's daily opening hours on working days: sorted, non-overlapping minute-of-day windows."""

    windows: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, text: str) -> WorkingHours:
        """Parse `"08:00-12:00,13:30-17:30"` (HH:MM, 24-hour; `24:00` allowed as an end)."""
        if not isinstance(text, str) or not text.strip():
            raise cls._invalid(text, N_("give at least one window such as 08:00-12:00"))
        windows = tuple(cls._parse_window(part, text) for part in text.split(","))
        for (_, previous_end), (start, _) in pairwise(windows):
            if start < previous_end:
                raise cls._invalid(text, N_("windows must be in order and must not overlap"))
        return cls(windows)

    @classmethod
    def _parse_window(cls, part: str, text: str) -> tuple[int, int]:
        match = _WINDOW.match(part)
        if not match:
            raise cls._invalid(text, N_("each window is HH:MM-HH:MM"))
        start = _minute_of_day(match[1], match[2], is_end=False)
        end = _minute_of_day(match[3], match[4], is_end=True)
        if start is None or end is None:
            raise cls._invalid(text, N_("hours run 00–23 (24:00 only as an end) and minutes 00–59"))
        if start >= end:
            raise cls._invalid(text, N_("each window must start before it ends"))
        return start, end

    @staticmethod
    def _invalid(text: object, why: str) -> InvalidCalendarInput:
        return InvalidCalendarInput(
            "Opening hours {text!r} are not valid: {why}.",
            params={"text": text, "why": gettext(why)},
            error_id="invalid_working_hours",
        )

    def __str__(self) -> str:
        return ",".join(f"{_format_minute(start)}-{_format_minute(end)}" for start, end in self.windows)

    @property
    def per_day(self) -> timedelta:
        return timedelta(minutes=sum(end - start for start, end in self.windows))


OFFICE_HOURS = WorkingHours.parse("08:00-12:00,13:30-17:30")
"""Default hospital office hours."""


def _to_timedelta(hours: float | timedelta) -> timedelta:
    if isinstance(hours, timedelta):
        amount = hours
    elif isinstance(hours, int | float) and not isinstance(hours, bool) and math.isfinite(hours):
        amount = timedelta(hours=hours)
    else:
        raise InvalidCalendarInput("Working hours must be a finite number or a timedelta.")
    if amount <= timedelta(0):
        raise InvalidCalendarInput("Working hours must be more than zero.")
    return amount


# --- the calendar ----------------------------------------------------------------------------------


class WorkCalendar:
    """Working days from overrides, then chinesecalendar, then Mon–Fri. Pure: no I/O."""

    def __init__(
        self,
        overrides: Mapping[date, tuple[bool, str]] | None = None,
        timezone: str = DEFAULT_TIMEZONE,
    ) -> None:
        try:
            self.tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidCalendarInput("Unknown timezone {tz!r}.", params={"tz": timezone}) from exc
        self.timezone = timezone
        self._overrides: dict[date, tuple[bool, str]] = dict(overrides or {})
        self._override_years = frozenset(day.year for day in self._overrides)
        self._package_years: dict[int, bool] = {}

    def __repr__(self) -> str:
        return f"WorkCalendar({len(self._overrides)} overrides, timezone={self.timezone!r})"

    # coverage

    def _package_covers(self, year: int) -> bool:
        if year not in self._package_years:
            try:
                chinese_calendar.get_holiday_detail(date(year, 1, 1))
            except NotImplementedError:
                self._package_years[year] = False
            else:
                self._package_years[year] = True
        return self._package_years[year]

    def year_coverage(self, year: int) -> Coverage:
        if self._package_covers(year):
            return Coverage.PACKAGE
        return Coverage.OVERRIDES if year in self._override_years else Coverage.NONE

    def covered(self, year: int) -> bool:
        return self.year_coverage(year) is not Coverage.NONE

    # single days

    def day_status(self, day: date) -> DayStatus:
        _require_date(day)
        return self._status(day)

    def is_working_day(self, day: date) -> bool:
        return self.day_status(day).is_working_day

    def _status(self, day: date) -> DayStatus:
        if day in self._overrides:
            is_working, note = self._overrides[day]
            return DayStatus(day, is_working, DayReason.OVERRIDE, note or None)
        coverage = self.year_coverage(day.year)
        if coverage is Coverage.PACKAGE:
            return self._package_status(day)
        is_weekday = day.weekday() < 5
        if coverage is Coverage.OVERRIDES:
            return DayStatus(day, is_weekday, DayReason.WORKING_DAY if is_weekday else DayReason.WEEKEND)
        return DayStatus(day, is_weekday, DayReason.WEEKDAY_FALLBACK)

    @staticmethod
    def _package_status(day: date) -> DayStatus:
        is_day_off, holiday_name = chinese_calendar.get_holiday_detail(day)
        is_weekend = day.weekday() >= 5
        if not is_day_off:
            if is_weekend:
                return DayStatus(day, True, DayReason.MAKE_UP_WORKDAY, holiday_name)
            return DayStatus(day, True, DayReason.WORKING_DAY)
        if holiday_name or not is_weekend:
            return DayStatus(day, False, DayReason.STATUTORY_HOLIDAY, holiday_name)
        return DayStatus(day, False, DayReason.WEEKEND)

    # ranges

    def local_date(self, moment: datetime) -> date:
        _require_aware(moment, "moment")
        return moment.astimezone(self.tz).date()

    def _local_midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=self.tz)

    def _counted_days(self, start: datetime, end: datetime, *, include_start_day: bool) -> list[date]:
        """Local dates after start's day (or from it) up to end's day; a 00:00 end stops the day before."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        if end < start:
            raise InvalidCalendarInput("The end of a period cannot be before its start.")
        local_end = end.astimezone(self.tz)
        last = local_end.date() - timedelta(days=1 if local_end.time() == time(0) else 0)
        first = self.local_date(start) + timedelta(days=0 if include_start_day else 1)
        return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Working days counted from start (its day excluded) to end (a 00:00 end excludes its day)."""
        days = self._counted_days(start, end, include_start_day=False)
        return sum(1 for day in days if self._status(day).is_working_day)

    def explain(self, start: datetime, end: datetime, *, include_start_day: bool = False) -> list[SkippedDay]:
        """Every non-working day between start and end, with its reason, plus the weekend or
        overridden days that did count (make-up workdays), so a supervisor sees why a deadline fell where
        it did. Days of uncovered years carry `DayReason.WEEKDAY_FALLBACK`; see also `fallback_years`."""
        days = self._counted_days(start, end, include_start_day=include_start_day)
        return [status for status in map(self._status, days) if self._is_notable(status)]

    @staticmethod
    def _is_notable(status: DayStatus) -> bool:
        if not status.is_working_day or status.reason is DayReason.OVERRIDE:
            return True
        return status.day.weekday() >= 5

    def fallback_years(self, start: datetime, end: datetime) -> list[int]:
        """Years in the period that nobody covers: answers there rest on the Mon–Fri fallback."""
        years = range(self.local_date(start).year, self.local_date(end).year + 1)
        return [year for year in years if not self.covered(year)]

    # deadlines

    def add_working_days(self, start: datetime, n: int) -> datetime:
        """Civil Code arts. 201 & 203: the start day does not count, and the period ends at 24:00 of the
        n-th working day — returned as 00:00 local time of the following day, in the calendar's zone."""
        _require_aware(start, "start")
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_WORKING_DAYS:
            raise InvalidCalendarInput(
                "A period in working days must be a whole number from 1 to {limit}.",
                params={"limit": MAX_WORKING_DAYS},
            )
        day = self.local_date(start)
        remaining = n
        while remaining:
            day += timedelta(days=1)
            if self._status(day).is_working_day:
                remaining -= 1
        return self._local_midnight(day + timedelta(days=1))

    def add_working_hours(
        self, start: datetime, hours: float | timedelta, site_hours: WorkingHours = OFFICE_HOURS
    ) -> datetime:
        """Count `hours` only inside `site_hours` on working days; returned in the calendar's zone. A result
        that uses up a window exactly is that window's end (e.g. 17:30), not the next opening."""
        _require_aware(start, "start")
        remaining = _to_timedelta(hours)
        cursor = start.astimezone(UTC)
        day = self.local_date(start)
        for _ in range(_MAX_DAYS_SCANNED):
            if self._status(day).is_working_day:
                for opens, closes in self._windows_utc(day, site_hours):
                    available = closes - max(opens, cursor)
                    if available <= timedelta(0):
                        continue
                    if remaining <= available:
                        return (max(opens, cursor) + remaining).astimezone(self.tz)
                    remaining -= available
            day += timedelta(days=1)
        raise InvalidCalendarInput("That many working hours reach more than ten years ahead.")

    def working_time_between(
        self, start: datetime, end: datetime, site_hours: WorkingHours = OFFICE_HOURS
    ) -> timedelta:
        """The time inside `site_hours` on working days between two moments (the inverse of add_working_hours)."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        total = timedelta(0)
        day, last = self.local_date(start), self.local_date(end)
        while day <= last:
            if self._status(day).is_working_day:
                for opens, closes in self._windows_utc(day, site_hours):
                    total += max(timedelta(0), min(closes, end) - max(opens, start))
            day += timedelta(days=1)
        return total

    def _windows_utc(self, day: date, site_hours: WorkingHours) -> Iterator[tuple[datetime, datetime]]:
        for start_minute, end_minute in site_hours.windows:
            yield self._moment_utc(day, start_minute), self._moment_utc(day, end_minute)

    def _moment_utc(self, day: date, minute_of_day: int) -> datetime:
        if minute_of_day == MINUTES_PER_DAY:
            return self._local_midnight(day + timedelta(days=1)).astimezone(UTC)
        wall = time(minute_of_day // 60, minute_of_day % 60)
        return datetime.combine(day, wall, tzinfo=self.tz).astimezone(UTC)


# --- storage ---------------------------------------------------------------------------------------


class CalendarOverride(IdMixin, TimestampMixin, Base):
    """An admin's word on one day; wins over the package. Also how a year the package lacks gets covered."""

    __tablename__ = "calendar_overrides"

    day: Mapped[date] = mapped_column(Date, unique=True)
    is_working_day: Mapped[bool]
    note: Mapped[str] = mapped_column(String(NOTE_MAX_LENGTH))
    created_by_id: Mapped[int | None] = mapped_column(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "day": self.day.isoformat(),
            "is_working_day": self.is_working_day,
            "note": self.note,
            "created_by_id": self.created_by_id,
        }


CHANGE_JOBS: list[str] = []
"""Job kinds that domains register to run after an override changes (e.g. recomputing deadlines)."""


async def _after_change(session: AsyncSession) -> None:
    for kind in CHANGE_JOBS:
        await jobs.enqueue(session, kind=kind, payload={})


async def load(session: AsyncSession, *, timezone: str = DEFAULT_TIMEZONE) -> WorkCalendar:
    """A calendar with every override in the table (read on each call: the table is tiny)."""
    rows = await list_overrides(session)
    return WorkCalendar({row.day: (row.is_working_day, row.note) for row in rows}, timezone)


async def list_overrides(session: AsyncSession, *, year: int | None = None) -> list[CalendarOverride]:
    query = select(CalendarOverride).order_by(CalendarOverride.day)
    if year is not None:
        query = query.where(CalendarOverride.day.between(date(year, 1, 1), date(year, 12, 31)))
    return list((await session.scalars(query)).all())


async def _find_override(session: AsyncSession, day: date) -> CalendarOverride | None:
    return await session.scalar(select(CalendarOverride).where(CalendarOverride.day == day))


def _clean_note(note: str) -> str:
    cleaned = note.strip() if isinstance(note, str) else ""
    if not cleaned or len(cleaned) > NOTE_MAX_LENGTH:
        raise InvalidCalendarInput(
            "Say why the day is overridden (1 to {limit} characters), e.g. 春节.",
            params={"limit": NOTE_MAX_LENGTH},
        )
    return cleaned


async def set_override(
    session: AsyncSession, *, actor: Actor, day: date, is_working_day: bool, note: str
) -> CalendarOverride:
    """Create or replace the override for `day`, with an audit row. Flushes, never commits."""
    _require_date(day)
    if not isinstance(is_working_day, bool):
        raise InvalidCalendarInput("is_working_day must be true or false.")
    cleaned_note = _clean_note(note)
    override = await _find_override(session, day)
    before = override.to_dict() if override else None
    if override is None:
        override = CalendarOverride(day=day, created_by_id=actor.user_id)
        session.add(override)
    override.is_working_day = is_working_day
    override.note = cleaned_note
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "Someone else changed the calendar for {day} at the same time; try again.",
            params={"day": day.isoformat()},
        ) from exc
    audit.record(
        session,
        actor=actor,
        action="calendar.override.set",
        target_type="calendar_day",
        target_id=day.isoformat(),
        before=before,
        after=override.to_dict(),
    )
    await _after_change(session)
    return override


async def delete_override(session: AsyncSession, *, actor: Actor, day: date) -> None:
    """Remove the override for `day`, with an audit row."""
    _require_date(day)
    override = await _find_override(session, day)
    if override is None:
        raise NotFound("No calendar override for {day}.", params={"day": day.isoformat()})
    before = override.to_dict()
    await session.delete(override)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="calendar.override.delete",
        target_type="calendar_day",
        target_id=day.isoformat(),
        before=before,
    )
    await _after_change(session)
