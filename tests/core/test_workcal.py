"""The working-day calendar: statutory holidays, make-up workdays, overrides, deadlines."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from patientline.core import clock, workcal
from patientline.core.audit import AuditEntry
from patientline.core.auth.actor import Actor
from patientline.core.db import Base
from patientline.core.errors import InvalidInput, NotFound
from patientline.core.i18n import current_locale
from patientline.core.jobs import Job
from patientline.core.workcal import (
    OFFICE_HOURS,
    CalendarOverride,
    Coverage,
    DayReason,
    WorkCalendar,
    WorkingHours,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
OVERRIDES_TABLE = Base.metadata.tables[CalendarOverride.__tablename__]
CALENDAR = WorkCalendar()


@pytest.fixture(autouse=True)
def english_messages() -> Iterator[None]:
    """The assertions below read the English messages."""
    token = current_locale.set("en")
    yield
    current_locale.reset(token)


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def deadline(start: datetime, n: int, calendar: WorkCalendar = CALENDAR) -> str:
    return calendar.add_working_days(start, n).isoformat()


# 2027 is not in chinesecalendar 1.11: an illustrative arrangement an admin might enter.
SPRING_FESTIVAL_2027 = {
    **{date(2027, 2, day): (False, "春节") for day in range(8, 13)},  # Mon 8 – Fri 12 February
    date(2027, 2, 20): (True, "春节调休"),  # Saturday make-up workday
}


# --- the package's 2026 arrangement, as the tests rely on it -----------------------------------------


@pytest.mark.parametrize(
    ("day", "is_working", "reason", "detail"),
    [
        (date(2026, 9, 20), True, DayReason.MAKE_UP_WORKDAY, "National Day"),  # Sunday
        (date(2026, 9, 25), False, DayReason.STATUTORY_HOLIDAY, "Mid-autumn Festival"),  # Friday
        (date(2026, 10, 1), False, DayReason.STATUTORY_HOLIDAY, "National Day"),
        (date(2026, 10, 7), False, DayReason.STATUTORY_HOLIDAY, "National Day"),
        (date(2026, 10, 8), True, DayReason.WORKING_DAY, None),
        (date(2026, 10, 10), True, DayReason.MAKE_UP_WORKDAY, "National Day"),  # Saturday
        (date(2026, 10, 11), False, DayReason.WEEKEND, None),
        (date(2026, 2, 14), True, DayReason.MAKE_UP_WORKDAY, "Spring Festival"),  # Saturday
        (date(2026, 2, 15), False, DayReason.STATUTORY_HOLIDAY, "Spring Festival"),
        (date(2026, 2, 23), False, DayReason.STATUTORY_HOLIDAY, "Spring Festival"),  # Monday
        (date(2026, 2, 28), True, DayReason.MAKE_UP_WORKDAY, "Spring Festival"),  # Saturday
        (date(2026, 1, 4), True, DayReason.MAKE_UP_WORKDAY, "New Year's Day"),  # Sunday
    ],
)
def test_day_status_from_the_package(day: date, is_working: bool, reason: DayReason, detail: str | None) -> None:
    status = CALENDAR.day_status(day)
    assert (status.is_working_day, status.reason, status.detail) == (is_working, reason, detail)
    assert CALENDAR.is_working_day(day) is is_working


# --- known deadlines -----------------------------------------------------------------------------


def test_received_the_day_before_national_day() -> None:
    # Oct 1–7 off; Thu 8, Fri 9, Sat 10 (make-up), Mon 12, Tue 13 → ends 24:00 on the 13th.
    assert deadline(local(2026, 9, 30, 10, 0), 5) == "2026-10-14T00:00:00+08:00"


def test_received_during_national_day() -> None:
    assert deadline(local(2026, 10, 3, 22, 15), 1) == "2026-10-09T00:00:00+08:00"


def test_received_on_a_make_up_workday_does_not_count_that_day() -> None:
    assert deadline(local(2026, 10, 10, 9, 0), 1) == "2026-10-13T00:00:00+08:00"  # Sun 11 off, Mon 12
    assert deadline(local(2026, 9, 20, 9, 0), 3) == "2026-09-24T00:00:00+08:00"  # Sunday make-up


def test_friday_evening_complaint_runs_past_the_weekend() -> None:
    assert deadline(local(2026, 11, 20, 19, 30), 1) == "2026-11-24T00:00:00+08:00"
    assert deadline(local(2026, 11, 20, 19, 30), 5) == "2026-11-28T00:00:00+08:00"


def test_the_start_day_is_the_local_date_not_the_utc_one() -> None:
    # Thursday 16:30 UTC is Friday 00:30 in Shanghai: Friday is the start day, Monday the first counted.
    start = datetime(2026, 11, 19, 16, 30, tzinfo=UTC)
    assert deadline(start, 1) == "2026-11-24T00:00:00+08:00"


def test_spring_festival_2026() -> None:
    # Sat 14 Feb is a make-up workday, 15–23 Feb off.
    assert deadline(local(2026, 2, 13, 15, 0), 3) == "2026-02-26T00:00:00+08:00"
    # Sat 28 Feb counts.
    assert deadline(local(2026, 2, 25, 11, 0), 3) == "2026-03-01T00:00:00+08:00"


def test_mid_autumn_and_national_day_fifteen_working_days() -> None:
    # Sun 20 make-up (1), 21–24 (5), 25–27 off, 28–30 (8), Oct 1–7 off, Oct 8–10 (11), Oct 12–15 (15).
    assert deadline(local(2026, 9, 18, 16, 0), 15) == "2026-10-16T00:00:00+08:00"


def test_result_is_in_the_calendar_timezone_whatever_the_input_zone() -> None:
    start = datetime(2026, 9, 30, 2, 0, tzinfo=UTC)
    result = CALENDAR.add_working_days(start, 5)
    assert result.tzinfo == SHANGHAI
    assert result == datetime(2026, 10, 13, 16, 0, tzinfo=UTC)


def test_explain_national_day() -> None:
    start = local(2026, 9, 30, 10, 0)
    days = CALENDAR.explain(start, CALENDAR.add_working_days(start, 5))
    assert [(d.day.isoformat(), d.is_working_day, d.label) for d in days] == [
        *[(f"2026-10-0{n}", False, "statutory holiday: National Day") for n in range(1, 8)],
        ("2026-10-10", True, "make-up workday: National Day"),
        ("2026-10-11", False, "weekend"),
    ]
    assert days[-1].to_dict() == {
        "day": "2026-10-11",
        "is_working_day": False,
        "reason": "weekend",
        "detail": None,
        "label": "weekend",
    }


def test_explain_range_includes_end_day_unless_end_is_midnight() -> None:
    saturday, sunday = date(2026, 11, 21), date(2026, 11, 22)
    friday = local(2026, 11, 20, 9, 0)
    assert [d.day for d in CALENDAR.explain(friday, local(2026, 11, 22, 0, 0))] == [saturday]
    assert [d.day for d in CALENDAR.explain(friday, local(2026, 11, 22, 0, 1))] == [saturday, sunday]
    assert CALENDAR.explain(local(2026, 11, 21, 9, 0), local(2026, 11, 21, 10, 0)) == []
    included = CALENDAR.explain(local(2026, 11, 21, 9, 0), local(2026, 11, 21, 10, 0), include_start_day=True)
    assert [d.day for d in included] == [saturday]


def test_working_days_between() -> None:
    start = local(2026, 9, 30, 10, 0)
    assert CALENDAR.working_days_between(start, local(2026, 10, 14)) == 5
    assert CALENDAR.working_days_between(start, start) == 0


# --- overrides and coverage ------------------------------------------------------------------------


def test_coverage_of_years() -> None:
    assert CALENDAR.year_coverage(2026) is Coverage.PACKAGE
    assert CALENDAR.year_coverage(2027) is Coverage.NONE
    assert CALENDAR.year_coverage(2003) is Coverage.NONE
    assert CALENDAR.covered(2026) and not CALENDAR.covered(2027)
    with_2027 = WorkCalendar(SPRING_FESTIVAL_2027)
    assert with_2027.year_coverage(2027) is Coverage.OVERRIDES and with_2027.covered(2027)
    assert WorkCalendar({date(2026, 5, 6): (False, "院庆")}).year_coverage(2026) is Coverage.PACKAGE


def test_uncovered_year_uses_the_weekday_fallback_and_says_so() -> None:
    start = local(2027, 2, 5, 10, 0)  # Friday
    assert CALENDAR.is_working_day(date(2027, 2, 8))
    assert CALENDAR.day_status(date(2027, 2, 8)).used_fallback
    assert deadline(start, 3) == "2027-02-11T00:00:00+08:00"
    days = CALENDAR.explain(start, CALENDAR.add_working_days(start, 3))
    assert [(d.day.day, d.reason) for d in days] == [
        (6, DayReason.WEEKDAY_FALLBACK),
        (7, DayReason.WEEKDAY_FALLBACK),
    ]
    assert days[0].label == "weekday fallback (year not covered)"
    assert CALENDAR.fallback_years(local(2026, 12, 30), local(2027, 1, 5)) == [2027]
    assert CALENDAR.fallback_years(local(2026, 9, 30), local(2026, 10, 14)) == []


def test_2027_overrides_are_honoured() -> None:
    calendar = WorkCalendar(SPRING_FESTIVAL_2027)
    # Sat 6, Sun 7 weekend; 8–12 Spring Festival; 13, 14 weekend; Mon 15, Tue 16, Wed 17.
    start = local(2027, 2, 5, 10, 0)
    assert deadline(start, 3, calendar) == "2027-02-18T00:00:00+08:00"
    # The make-up Saturday counts: Fri 19, Sat 20.
    assert deadline(local(2027, 2, 18, 10, 0), 2, calendar) == "2027-02-21T00:00:00+08:00"
    labels = [d.label for d in calendar.explain(start, calendar.add_working_days(start, 3))]
    assert labels == ["weekend", "weekend", *["override: 春节"] * 5, "weekend", "weekend"]
    assert calendar.fallback_years(start, local(2027, 3, 1)) == []


def test_overrides_win_over_the_package() -> None:
    calendar = WorkCalendar({date(2026, 10, 9): (False, "院庆"), date(2026, 10, 11): (True, "院庆补班")})
    assert not calendar.is_working_day(date(2026, 10, 9))
    assert calendar.is_working_day(date(2026, 10, 11))
    # Thu 8, Sat 10, Sun 11 (override), Mon 12, Tue 13.
    start = local(2026, 9, 30, 10, 0)
    assert deadline(start, 5, calendar) == "2026-10-14T00:00:00+08:00"
    assert deadline(start, 6, calendar) == "2026-10-15T00:00:00+08:00"
    labels = {d.day.day: d.label for d in calendar.explain(start, calendar.add_working_days(start, 6))}
    assert labels[9] == "override: 院庆" and labels[11] == "override: 院庆补班"
    assert calendar.day_status(date(2026, 10, 1)).reason is DayReason.STATUTORY_HOLIDAY


# --- working hours ---------------------------------------------------------------------------------


def test_working_hours_parse_and_format() -> None:
    hours = WorkingHours.parse(" 08:00-12:00 , 13:30-17:30 ")
    assert str(hours) == "08:00-12:00,13:30-17:30" == str(OFFICE_HOURS)
    assert hours == OFFICE_HOURS
    assert hours.per_day == timedelta(hours=8)
    assert str(WorkingHours.parse("00:00-24:00")) == "00:00-24:00"
    assert str(WorkingHours.parse("08:00-12:00,12:00-13:00")) == "08:00-12:00,12:00-13:00"


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "8:00-12:00",
        "08:00-12:60",
        "25:00-26:00",
        "24:00-24:00",
        "12:00-08:00",
        "08:00-08:00",
        "13:30-17:30,08:00-12:00",
        "08:00-12:00,11:00-13:00",
        "08:00-12:00,",
        "08:00~12:00",
        "0800-1200",
    ],
)
def test_malformed_working_hours_are_refused(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        WorkingHours.parse(text)
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.error_id == "invalid_working_hours"


def test_add_working_hours_known_cases() -> None:
    def add(start: datetime, hours: float | timedelta) -> str:
        return CALENDAR.add_working_hours(start, hours, OFFICE_HOURS).isoformat()

    assert add(local(2026, 11, 20, 9, 0), 2) == "2026-11-20T11:00:00+08:00"
    assert add(local(2026, 11, 20, 11, 0), 2) == "2026-11-20T14:30:00+08:00"  # lunch is skipped
    assert add(local(2026, 11, 20, 16, 30), 1) == "2026-11-20T17:30:00+08:00"  # ends at closing
    assert add(local(2026, 11, 20, 16, 30), 1.5) == "2026-11-23T08:30:00+08:00"  # over the weekend
    assert add(local(2026, 11, 20, 19, 0), timedelta(minutes=30)) == "2026-11-23T08:30:00+08:00"
    assert add(local(2026, 9, 30, 17, 0), 1) == "2026-10-08T08:30:00+08:00"  # over National Day
    assert add(local(2026, 10, 9, 17, 0), 1) == "2026-10-10T08:30:00+08:00"  # into the make-up Saturday
    clinic = WorkingHours.parse("00:00-24:00")
    assert CALENDAR.add_working_hours(local(2026, 11, 20, 23, 0), 2, clinic).isoformat() == (
        "2026-11-23T01:00:00+08:00"
    )


# --- bad input -------------------------------------------------------------------------------------

NAIVE = datetime(2026, 11, 20, 9, 0)  # noqa: DTZ001 - deliberately naive


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CALENDAR.add_working_days(NAIVE, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        CALENDAR.add_working_hours(NAIVE, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        CALENDAR.explain(NAIVE, local(2026, 11, 25))
    with pytest.raises(ValueError, match="timezone-aware"):
        CALENDAR.working_days_between(local(2026, 11, 20), NAIVE)


@pytest.mark.parametrize("n", [0, -1, workcal.MAX_WORKING_DAYS + 1, True, 1.5])
def test_bad_working_day_counts_are_refused(n: int) -> None:
    with pytest.raises(ValueError, match="whole number"):
        CALENDAR.add_working_days(local(2026, 11, 20), n)


@pytest.mark.parametrize("hours", [0, -1, float("nan"), float("inf"), timedelta(0), "2"])
def test_bad_working_hours_are_refused(hours: float) -> None:
    with pytest.raises(ValueError, match="Working hours"):
        CALENDAR.add_working_hours(local(2026, 11, 20), hours)


def test_other_bad_input() -> None:
    with pytest.raises(ValueError, match="before its start"):
        CALENDAR.explain(local(2026, 11, 20), local(2026, 11, 19))
    with pytest.raises(ValueError, match="must be a date"):
        CALENDAR.is_working_day(local(2026, 11, 20))  # a datetime is a date to the type checker
    with pytest.raises(ValueError, match="Unknown timezone"):
        WorkCalendar(timezone="Mars/Olympus_Mons")


# --- properties ------------------------------------------------------------------------------------

CALENDARS = st.sampled_from([CALENDAR, WorkCalendar(SPRING_FESTIVAL_2027), WorkCalendar(timezone="UTC")])
MOMENTS = st.datetimes(
    min_value=datetime(2025, 6, 1),  # noqa: DTZ001 - hypothesis bounds are naive; timezones below
    max_value=datetime(2027, 6, 1),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, SHANGHAI, ZoneInfo("America/New_York")]),
)
DAY_COUNTS = st.integers(min_value=1, max_value=40)


def days_in_between(first: date, last: date) -> list[date]:
    """Dates strictly after `first` and strictly before `last`."""
    return [first + timedelta(days=k) for k in range(1, (last - first).days)]


@given(calendar=CALENDARS, start=MOMENTS, n=DAY_COUNTS)
def test_add_working_days_properties(calendar: WorkCalendar, start: datetime, n: int) -> None:
    result = calendar.add_working_days(start, n)
    assert result.tzinfo == calendar.tz
    assert result.timetz().replace(tzinfo=None) == time(0)
    end_day = result.date()
    assert calendar.is_working_day(end_day - timedelta(days=1))
    start_day = start.astimezone(calendar.tz).date()
    assert sum(calendar.is_working_day(d) for d in days_in_between(start_day, end_day)) == n
    assert calendar.working_days_between(start, result) == n


@given(
    calendar=CALENDARS,
    start=MOMENTS,
    n=DAY_COUNTS,
    later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20)),
)
def test_add_working_days_is_monotonic(calendar: WorkCalendar, start: datetime, n: int, later: timedelta) -> None:
    assert calendar.add_working_days(start, n) < calendar.add_working_days(start, n + 1)
    assert calendar.add_working_days(start, n) <= calendar.add_working_days(start + later, n)


def counted_working_time(calendar: WorkCalendar, start: datetime, end: datetime, hours: WorkingHours) -> timedelta:
    """Brute force, independent of the implementation: overlap of [start, end] with every open window."""
    total = timedelta(0)
    day = start.astimezone(calendar.tz).date() - timedelta(days=1)
    while day <= end.astimezone(calendar.tz).date():
        if calendar.is_working_day(day):
            for opens_minute, closes_minute in hours.windows:
                midnight = datetime.combine(day, time(0), tzinfo=calendar.tz)
                opens = midnight + timedelta(minutes=opens_minute)
                closes = midnight + timedelta(minutes=closes_minute)
                total += max(timedelta(0), min(closes, end) - max(opens, start))
        day += timedelta(days=1)
    return total


def is_within_opening_hours(calendar: WorkCalendar, moment: datetime, hours: WorkingHours) -> bool:
    """Inside a window or on its edge; 00:00 may also be the 24:00 close of the day before."""
    local_moment = moment.astimezone(calendar.tz)
    minute = local_moment.hour * 60 + local_moment.minute + local_moment.second / 60
    candidates = [(local_moment.date(), minute)]
    if minute == 0:
        candidates.append((local_moment.date() - timedelta(days=1), 24 * 60))
    return any(
        calendar.is_working_day(day) and any(opens <= m <= closes for opens, closes in hours.windows)
        for day, m in candidates
    )


SITE_HOURS = st.sampled_from(
    [
        OFFICE_HOURS,
        WorkingHours.parse("00:00-24:00"),
        WorkingHours.parse("07:30-11:45,14:00-16:00,18:00-21:00"),
    ]
)


@settings(max_examples=150)
@given(
    calendar=st.sampled_from([CALENDAR, WorkCalendar(SPRING_FESTIVAL_2027)]),
    start=MOMENTS,
    amount=st.integers(min_value=1, max_value=60 * 60 * 24 * 10).map(lambda s: timedelta(seconds=s)),
    site_hours=SITE_HOURS,
)
def test_add_working_hours_properties(
    calendar: WorkCalendar, start: datetime, amount: timedelta, site_hours: WorkingHours
) -> None:
    result = calendar.add_working_hours(start, amount, site_hours)
    assert result > start
    assert result.tzinfo == calendar.tz
    assert is_within_opening_hours(calendar, result, site_hours)
    assert counted_working_time(calendar, start, result, site_hours) == amount


@given(
    calendar=CALENDARS,
    start=MOMENTS,
    span=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=45)),
)
def test_explain_lists_exactly_the_non_working_days(calendar: WorkCalendar, start: datetime, span: timedelta) -> None:
    end = start + span
    explained = calendar.explain(start, end)
    local_end = end.astimezone(calendar.tz)
    last = local_end.date() if local_end.time() != time(0) else local_end.date() - timedelta(days=1)
    in_range = days_in_between(start.astimezone(calendar.tz).date(), last + timedelta(days=1))
    non_working = [d for d in in_range if not calendar.is_working_day(d)]
    assert [status.day for status in explained if not status.is_working_day] == non_working
    for status in explained:
        assert status.is_working_day == calendar.is_working_day(status.day)
        if status.is_working_day:
            assert status.day.weekday() >= 5 or status.reason is DayReason.OVERRIDE
    listed = {status.day for status in explained}
    assert all(d.weekday() < 5 for d in in_range if calendar.is_working_day(d) and d not in listed)


# --- storage ---------------------------------------------------------------------------------------


def staff(user_id: int | None) -> Actor:
    return Actor(
        user_id=user_id, username=f"user{user_id}", display_name="x", roles=("admin",), permissions=frozenset()
    )


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[AsyncSession]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'workcal.db'}")
    async with engine.begin() as connection:
        tables = [OVERRIDES_TABLE, AuditEntry.__table__, Job.__table__]
        await connection.run_sync(Base.metadata.create_all, tables=tables)
    clock.set_now(datetime(2026, 11, 22, 9, 0, tzinfo=UTC))
    try:
        async with async_sessionmaker(engine, expire_on_commit=False)() as db_session:
            yield db_session
    finally:
        clock.set_now(None)
        await engine.dispose()


async def test_overrides_round_trip(session: AsyncSession) -> None:
    async with session.begin():
        assert not (await workcal.load(session)).covered(2027)
        for day, (is_working, note) in SPRING_FESTIVAL_2027.items():
            override = await workcal.set_override(
                session, day=day, is_working_day=is_working, note=f" {note} ", actor=staff(7)
            )
            assert override.id is not None and override.note == note
        await workcal.set_override(session, day=date(2026, 10, 9), is_working_day=False, note="院庆", actor=staff(7))

    async with session.begin():
        calendar = await workcal.load(session)
        assert calendar.year_coverage(2027) is Coverage.OVERRIDES
        assert deadline(local(2027, 2, 5, 10, 0), 3, calendar) == "2027-02-18T00:00:00+08:00"
        assert deadline(local(2026, 9, 30, 10, 0), 5, calendar) == "2026-10-15T00:00:00+08:00"
        assert [o.day for o in await workcal.list_overrides(session, year=2026)] == [date(2026, 10, 9)]
        assert len(await workcal.list_overrides(session, year=2027)) == 6
        assert len(await workcal.list_overrides(session)) == 7
        assert (await workcal.list_overrides(session, year=2030)) == []


async def test_set_override_upserts_and_reports_before(session: AsyncSession) -> None:
    async with session.begin():
        first = await workcal.set_override(
            session, day=date(2027, 2, 20), is_working_day=True, note="调休", actor=staff(1)
        )
    async with session.begin():
        second = await workcal.set_override(
            session, day=date(2027, 2, 20), is_working_day=False, note="取消调休", actor=staff(2)
        )
    assert second.id == first.id
    async with session.begin():
        trail = list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    assert [e.action for e in trail] == ["calendar.override.set"] * 2 and trail[1].actor_id == 2
    assert trail[1].before == {
        "id": first.id,
        "day": "2027-02-20",
        "is_working_day": True,
        "note": "调休",
        "created_by_id": 1,
    }
    assert second.to_dict()["is_working_day"] is False and second.created_by_id == 1
    assert second.created_at.tzinfo is not None
    async with session.begin():
        assert not (await workcal.load(session)).is_working_day(date(2027, 2, 20))


async def test_delete_override(session: AsyncSession) -> None:
    async with session.begin():
        await workcal.set_override(session, day=date(2027, 1, 1), is_working_day=False, note="元旦", actor=staff(None))
    async with session.begin():
        await workcal.delete_override(session, actor=staff(None), day=date(2027, 1, 1))
        deleted = await session.scalar(select(AuditEntry).where(AuditEntry.action == "calendar.override.delete"))
    assert deleted is not None and deleted.before is not None and deleted.before["note"] == "元旦"
    async with session.begin():
        assert await workcal.list_overrides(session) == []
        with pytest.raises(NotFound):
            await workcal.delete_override(session, actor=staff(None), day=date(2027, 1, 1))


@pytest.mark.parametrize(
    ("day", "note"),
    [
        (date(2027, 1, 1), ""),
        (date(2027, 1, 1), "   "),
        (date(2027, 1, 1), "x" * 201),
        (datetime(2027, 1, 1, tzinfo=UTC), "元旦"),
    ],
)
async def test_set_override_refuses_bad_input(session: AsyncSession, day: date, note: str) -> None:
    with pytest.raises(InvalidInput):
        await workcal.set_override(session, day=day, is_working_day=False, note=note, actor=staff(1))
    assert await workcal.list_overrides(session) == []
