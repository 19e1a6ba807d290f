"""Staffing a day: contacts per half-hour -> agents needed per interval (Erlang C, or Erlang A with a
patience), and a 24/7 roster of shifts each staffed for the busiest interval it covers.

An interval's need is for agents on the phones at once (`raw_agents`); the roster adds shrinkage
(breaks, meals, training, absence): scheduled = ceil(raw / (1 - shrinkage)). A shift covers the
intervals that start within it (a shift may run past midnight, e.g. 22:00-06:00); its headcount is the
peak of those intervals, since the same people stay the whole shift. Intervals no shift covers are
reported, so a roster with a gap is visible.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from patientline.core.i18n import N_
from patientline.routing.erlang import Staffing, agents_needed

INTERVAL_MINUTES = 30
INTERVALS_PER_DAY = 24 * 60 // INTERVAL_MINUTES
DAY_MINUTES = 24 * 60


@dataclass(frozen=True)
class Shift:
    name: str
    start_minute: int  # from midnight
    end_minute: int  # 1440 = midnight at the end; at or before the start = the next day

    def covers(self, minute: int) -> bool:
        if self.start_minute < self.end_minute:
            return self.start_minute <= minute < self.end_minute
        return minute >= self.start_minute or minute < self.end_minute

    @property
    def hours(self) -> float:
        length = (self.end_minute - self.start_minute) % DAY_MINUTES or DAY_MINUTES
        return length / 60


DEFAULT_SHIFTS = (
    Shift(N_("Day shift"), 8 * 60, 16 * 60),
    Shift(N_("Evening shift"), 16 * 60, 24 * 60),
    Shift(N_("Night shift"), 0, 8 * 60),
)


@dataclass(frozen=True)
class Parameters:
    aht_s: float
    sl_target: float  # e.g. 0.8
    sl_seconds: float  # e.g. 20
    shrinkage: float = 0.0
    max_occupancy: float | None = None
    patience_s: float | None = None  # Erlang A when set


@dataclass(frozen=True)
class IntervalPlan:
    start_minute: int
    contacts: float
    staffing: Staffing

    @property
    def calls_per_hour(self) -> float:
        return self.contacts * 60 / INTERVAL_MINUTES


@dataclass(frozen=True)
class ShiftPlan:
    shift: Shift
    raw_agents: int  # the peak of its intervals
    scheduled_agents: int
    peak_minute: int | None  # where the peak is (the first such interval); None when it covers nothing
    contacts: float

    @property
    def agent_hours(self) -> float:
        return self.scheduled_agents * self.shift.hours


@dataclass(frozen=True)
class Plan:
    parameters: Parameters
    intervals: list[IntervalPlan]
    shifts: list[ShiftPlan]
    uncovered_minutes: list[int]  # intervals with contacts that no shift covers

    @property
    def total_contacts(self) -> float:
        return sum(interval.contacts for interval in self.intervals)

    @property
    def peak_raw_agents(self) -> int:
        return max((interval.staffing.raw_agents for interval in self.intervals), default=0)

    @property
    def peak_scheduled_agents(self) -> int:
        return max((interval.staffing.scheduled_agents for interval in self.intervals), default=0)

    @property
    def interval_agent_hours(self) -> float:
        """Agent hours if staffing followed the need interval by interval (scheduled)."""
        return sum(interval.staffing.scheduled_agents for interval in self.intervals) * INTERVAL_MINUTES / 60

    @property
    def roster_agents(self) -> int:
        return sum(shift.scheduled_agents for shift in self.shifts)

    @property
    def roster_agent_hours(self) -> float:
        return sum(shift.agent_hours for shift in self.shifts)


def plan_day(contacts: Sequence[float], parameters: Parameters, shifts: Sequence[Shift] = DEFAULT_SHIFTS) -> Plan:
    """Agents needed for each half-hour of a day (`contacts` has 48 values from 00:00) and per shift."""
    if len(contacts) != INTERVALS_PER_DAY:
        raise ValueError(f"contacts must have {INTERVALS_PER_DAY} values, one per half-hour from 00:00")
    intervals = [
        IntervalPlan(index * INTERVAL_MINUTES, float(count), _staffing(float(count), parameters))
        for index, count in enumerate(contacts)
    ]
    uncovered = [
        interval.start_minute
        for interval in intervals
        if interval.contacts > 0 and not any(shift.covers(interval.start_minute) for shift in shifts)
    ]
    return Plan(parameters, intervals, [_shift_plan(shift, intervals) for shift in shifts], uncovered)


def _shift_plan(shift: Shift, intervals: Sequence[IntervalPlan]) -> ShiftPlan:
    covered = [interval for interval in intervals if shift.covers(interval.start_minute)]
    if not covered:
        return ShiftPlan(shift, 0, 0, None, 0.0)
    peak = max(covered, key=lambda interval: (interval.staffing.scheduled_agents, -_order(shift, interval)))
    return ShiftPlan(
        shift,
        raw_agents=max(interval.staffing.raw_agents for interval in covered),
        scheduled_agents=peak.staffing.scheduled_agents,
        peak_minute=peak.start_minute if peak.staffing.scheduled_agents else None,
        contacts=sum(interval.contacts for interval in covered),
    )


def _order(shift: Shift, interval: IntervalPlan) -> int:
    """Minutes into the shift, so the first peak of a night shift is the one before midnight."""
    return (interval.start_minute - shift.start_minute) % DAY_MINUTES


def _staffing(contacts: float, parameters: Parameters) -> Staffing:
    return _cached_staffing(contacts * 60 / INTERVAL_MINUTES, parameters)


@lru_cache(maxsize=4096)
def _cached_staffing(calls_per_hour: float, parameters: Parameters) -> Staffing:
    """A day repeats its volumes (quiet nights): each one is computed once."""
    return agents_needed(
        calls_per_hour,
        parameters.aht_s,
        parameters.sl_target,
        parameters.sl_seconds,
        max_occupancy=parameters.max_occupancy,
        shrinkage=parameters.shrinkage,
        patience_s=parameters.patience_s,
    )


def clock_text(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def plan_csv(plan: Plan, headers: Sequence[str]) -> str:
    """The plan per half-hour; `headers` in the reader's language, in the order of the columns."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    for interval in plan.intervals:
        achieved = interval.staffing.achieved
        writer.writerow(
            [
                clock_text(interval.start_minute),
                clock_text(interval.start_minute + INTERVAL_MINUTES),
                _number(interval.contacts),
                interval.staffing.raw_agents,
                interval.staffing.scheduled_agents,
                _percent(achieved.service_level),
                _percent(achieved.service_level_offered),
                _number(achieved.asa_s) if math.isfinite(achieved.asa_s) else "",
                _percent(achieved.occupancy),
                _percent(achieved.abandon_rate),
            ]
        )
    return out.getvalue()


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _percent(value: float) -> str:
    return f"{value * 100:.1f}"
