"""Deadline arithmetic (pure): the seed hotlines' 24 hours and 5 working days across Spring Festival and
National Day with their make-up workdays, pauses given back in the period's own unit, reopenings."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from wo_base import local

from patientline.core.workcal import OFFICE_HOURS, WorkCalendar
from patientline.workorders.policy import DeadlinePolicy, Interval, Period, Unit, deadlines, due_at, warning_at

CALENDAR = WorkCalendar()
COMPLAINT = DeadlinePolicy()
FIVE_DAYS = Period(amount=5, unit=Unit.WORKING_DAYS)

# naive bounds are what hypothesis wants; the package covers these years
moments = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 20), timezones=st.just(UTC))  # noqa: DTZ001


def test_spring_festival_counts_the_make_up_saturday_and_skips_the_holiday() -> None:
    received = local(2026, 2, 13, 10, 0)  # Friday before 春节; Saturday 14 February is a make-up workday
    due = deadlines(COMPLAINT, received, calendar=CALENDAR, pauses=[])
    assert due.reply_due_at == local(2026, 2, 14, 10, 0)
    assert due.resolve_due_at == local(2026, 2, 28, 0, 0)  # 24:00 of Friday 27 February


def test_national_day_week_is_skipped_and_the_october_make_up_saturday_counts() -> None:
    received = local(2026, 9, 30, 15, 0)
    due = deadlines(COMPLAINT, received, calendar=CALENDAR, pauses=[])
    assert due.resolve_due_at == local(2026, 10, 14, 0, 0)  # 8, 9, 10 (Saturday), 12, 13 October
    skipped = CALENDAR.explain(received, due.resolve_due_at)  # type: ignore[arg-type]
    assert {day.day.day for day in skipped if not day.is_working_day} >= {1, 2, 3, 4, 5, 6, 7, 11}
    assert any(day.is_working_day and day.day.day == 10 for day in skipped)


def test_an_admin_override_moves_the_deadline() -> None:
    received = local(2026, 11, 23, 9, 0)  # Monday
    plain = due_at(FIVE_DAYS, received, calendar=CALENDAR)
    assert plain == local(2026, 12, 1, 0, 0)
    closed_wednesday = WorkCalendar({local(2026, 11, 25).date(): (False, "停电检修")})
    assert due_at(FIVE_DAYS, received, calendar=closed_wednesday) == local(2026, 12, 2, 0, 0)


def test_a_pause_gives_back_the_working_days_it_covered() -> None:
    received = local(2026, 11, 23, 9, 0)
    over_the_weekend = Interval(local(2026, 11, 27, 10, 0), local(2026, 11, 30, 10, 0))  # Fri -> Mon
    assert due_at(FIVE_DAYS, received, calendar=CALENDAR, pauses=[over_the_weekend]) == local(2026, 12, 2, 0, 0)
    same_day = Interval(local(2026, 11, 24, 9, 0), local(2026, 11, 24, 17, 0))
    assert due_at(FIVE_DAYS, received, calendar=CALENDAR, pauses=[same_day]) == local(2026, 12, 1, 0, 0)


def test_calendar_hours_and_working_hours_give_back_their_own_time() -> None:
    received = local(2026, 11, 23, 9, 0)
    pause = Interval(local(2026, 11, 23, 12, 0), local(2026, 11, 23, 15, 0))  # 3 h, of which 1.5 working
    day = Period(amount=24, unit=Unit.HOURS)
    assert due_at(day, received, calendar=CALENDAR, pauses=[pause]) == local(2026, 11, 24, 12, 0)
    eight = Period(amount=8, unit=Unit.WORKING_HOURS)
    assert due_at(eight, received, calendar=CALENDAR) == local(2026, 11, 24, 9, 0)
    assert due_at(eight, received, calendar=CALENDAR, pauses=[pause]) == local(2026, 11, 24, 10, 30)


def test_the_warning_point_is_eighty_percent_of_the_way() -> None:
    received = local(2026, 11, 23, 0, 0)
    assert warning_at(received, received + timedelta(hours=24), 0.8) == local(2026, 11, 23, 19, 12)


@settings(max_examples=150, deadline=None)
@given(received=moments)
def test_five_working_days_always_end_at_midnight_after_a_working_day(received: datetime) -> None:
    due = due_at(FIVE_DAYS, received, calendar=CALENDAR)
    local_due = due.astimezone(CALENDAR.tz)
    assert local_due.time() == time(0)
    assert CALENDAR.is_working_day(local_due.date() - timedelta(days=1))
    assert CALENDAR.working_days_between(received, due) == 5


@settings(max_examples=150, deadline=None)
@given(
    received=moments,
    pauses=st.lists(st.tuples(st.integers(0, 20 * 24), st.integers(1, 6 * 24)), max_size=3),
)
def test_pauses_never_shorten_a_deadline_and_add_exactly_what_they_covered(
    received: datetime, pauses: list[tuple[int, int]]
) -> None:
    intervals, cursor = [], received
    for gap_hours, length_hours in pauses:
        start = cursor + timedelta(hours=gap_hours)
        intervals.append(Interval(start, start + timedelta(hours=length_hours)))
        cursor = start + timedelta(hours=length_hours)
    plain = due_at(FIVE_DAYS, received, calendar=CALENDAR)
    paused = due_at(FIVE_DAYS, received, calendar=CALENDAR, pauses=intervals)
    covered = sum(CALENDAR.working_days_between(p.start, p.end) for p in intervals)
    assert paused >= plain
    assert CALENDAR.working_days_between(received, paused) == 5 + covered
    hours = Period(amount=24, unit=Unit.HOURS)
    total = sum((p.end - p.start for p in intervals), timedelta(0))
    assert due_at(hours, received, calendar=CALENDAR, pauses=intervals) == received + timedelta(hours=24) + total
    working = Period(amount=8, unit=Unit.WORKING_HOURS)
    due = due_at(working, received, calendar=CALENDAR, pauses=intervals)
    given_back = sum((CALENDAR.working_time_between(p.start, p.end, OFFICE_HOURS) for p in intervals), timedelta(0))
    assert CALENDAR.working_time_between(received, due) == timedelta(hours=8) + given_back


@settings(max_examples=100, deadline=None)
@given(received=moments, reopened_after_hours=st.integers(1, 60 * 24))
def test_a_reopening_starts_a_fresh_clock(received: datetime, reopened_after_hours: int) -> None:
    reopened = received + timedelta(hours=reopened_after_hours)
    due = deadlines(COMPLAINT, reopened, calendar=CALENDAR, pauses=[])
    assert due.reply_due_at == reopened + timedelta(hours=24)
    assert due.resolve_due_at == CALENDAR.add_working_days(reopened, 5)
    assert due.resolve_due_at is not None and due.resolve_due_at > reopened


def test_an_extension_adds_to_the_result_period_only() -> None:
    received = local(2026, 11, 23, 9, 0)
    extended = deadlines(COMPLAINT, received, calendar=CALENDAR, pauses=[], extension=3)
    assert extended.reply_due_at == local(2026, 11, 24, 9, 0)
    assert extended.resolve_due_at == local(2026, 12, 4, 0, 0)
