"""Queue figures from hand-made queue logs: every count, ratio and time worked out by hand below, per
period and per interval; occupancy with pauses, logins, concurrent chats and agents seen without a
login; the loader and the history of arrivals on both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from patientline.routing.metrics import (
    Entry,
    QueueMetrics,
    by_interval,
    contacts_per_interval,
    load_entries,
    local_day_start,
    summarise,
)
from patientline.routing.models import QueueLogEntry

START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
END = START + timedelta(hours=1)
RULES = {"sl_seconds": 20, "short_abandon_s": 5}


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def line(minutes: float, event: str, **fields: Any) -> Entry:
    return Entry(at=at(minutes), event=event, **fields)


# Queue 1, agent 7: two calls answered (10 s and 30 s waits), each with 30 s of wrap-up, a 10-minute
# break; a short abandon (3 s), an abandon after 40 s, one expired after 300 s, one overflowed away.
# Queue 2, agent 8: one call answered and still being talked at the end.
LOG = [
    line(0, "login", agent_id=7),
    line(0, "enter", queue_id=1, task_id=1, channel="voice"),
    line(1 / 6, "accept", queue_id=1, task_id=1, agent_id=7, wait_s=10),
    line(19 / 6, "complete", queue_id=1, task_id=1, agent_id=7, duration_s=180),
    line(22 / 6, "wrap_end", agent_id=7, duration_s=30),  # no queue: the agent's last contact's
    line(4.95, "enter", queue_id=1, task_id=3),
    line(5, "abandon", queue_id=1, task_id=3, wait_s=3),
    line(5 + 1 / 3, "enter", queue_id=1, task_id=4),
    line(6, "abandon", queue_id=1, task_id=4, wait_s=40),
    line(10, "pause", agent_id=7, reason="break"),
    line(11, "enter", queue_id=1, task_id=6),
    line(12, "transfer", queue_id=1, task_id=6, wait_s=60, reason="overflow"),
    line(12, "enter", queue_id=2, task_id=6),
    line(20, "unpause", agent_id=7, duration_s=600),
    line(20, "enter", queue_id=1, task_id=2),
    line(20.5, "accept", queue_id=1, task_id=2, agent_id=7, wait_s=30),
    line(22.5, "complete", queue_id=1, task_id=2, agent_id=7, duration_s=120),
    line(23, "wrap_end", queue_id=1, agent_id=7, duration_s=30),
    line(30, "logout", agent_id=7),
    line(35, "enter", queue_id=1, task_id=5),
    line(40, "expire", queue_id=1, task_id=5, wait_s=300),
    line(40, "login", agent_id=8),
    line(50, "accept", queue_id=2, task_id=6, agent_id=8, wait_s=38 * 60),
]


def test_one_queue_over_the_hour() -> None:
    figures = summarise(LOG, queue_id=1, period=(START, END), **RULES)
    assert figures == QueueMetrics(
        entered=6,
        offered=5,  # 2 answered + 2 abandoned + 1 expired; the overflowed call is queue 2's
        answered=2,
        answered_in_time=1,
        abandoned=2,
        short_abandoned=1,
        expired=1,
        transferred_out=1,
        handled=2,
        service_level=0.5,  # 1 of 2 answered within 20 s
        service_level_with_abandons=0.25,  # 1 / (2 answered + 1 long abandon + 1 expired)
        abandon_rate=0.5,
        asa_s=20.0,
        aht_s=180.0,  # (180 + 120 talk + 60 wrap) / 2
        avg_talk_s=150.0,
        avg_wrap_s=30.0,
        longest_wait_s=300.0,
        occupancy=pytest.approx(0.3),  # busy 360 s / (busy 360 + idle 840): 30 min in, 10 min paused
    )


def test_the_other_queue_and_all_queues() -> None:
    other = summarise(LOG, queue_id=2, period=(START, END), **RULES)
    assert (other.entered, other.offered, other.answered, other.service_level) == (1, 1, 1, 0.0)
    assert other.handled == 0 and other.aht_s is None
    assert other.occupancy == pytest.approx(0.5)  # agent 8: logged in at 10:40, idle 10 min, then talking
    everything = summarise(LOG, period=(START, END), **RULES)
    assert (everything.entered, everything.offered, everything.answered) == (7, 6, 3)
    # agents 7 and 8: busy 360 + 600, idle 840 + 600 (agent 8 logged in at 10:40, talking from 10:50)
    assert everything.occupancy == pytest.approx(960 / (960 + 1440))


def test_per_interval() -> None:
    halves = by_interval(LOG, START, END, 30, queue_id=1, **RULES)
    assert [(i.start, i.end) for i in halves] == [(at(0), at(30)), (at(30), at(60))]
    first, second = (i.metrics for i in halves)
    assert (first.offered, first.answered, first.abandoned, first.expired, first.entered) == (4, 2, 2, 0, 5)
    assert (second.offered, second.expired, second.entered, second.longest_wait_s) == (1, 1, 1, 300.0)
    assert first.occupancy == pytest.approx(0.3)
    assert second.occupancy is None  # agent 7 logged out: no time to count

    quarters = [i.metrics for i in by_interval(LOG, START, END, 15, queue_id=1, **RULES)]
    assert len(quarters) == 4
    assert quarters[0].occupancy == pytest.approx(210 / (210 + 390))  # paused 10:10-10:15
    assert quarters[1].occupancy == pytest.approx(150 / (150 + 450))  # paused 10:15-10:20
    assert [q.offered for q in quarters] == [3, 1, 1, 0]
    assert by_interval(LOG, START, END, 60, **RULES)[0].metrics.offered == 6


def test_agent_seen_without_login_was_logged_in_from_the_start_and_chats_overlap() -> None:
    log = [
        line(5, "accept", queue_id=3, task_id=1, agent_id=9, channel="chat"),
        line(10, "accept", queue_id=3, task_id=2, agent_id=9, channel="chat"),
        line(20, "complete", queue_id=3, task_id=1, agent_id=9, duration_s=15 * 60),
        line(25, "complete", queue_id=3, task_id=2, agent_id=9, duration_s=15 * 60),
    ]
    figures = summarise(log, queue_id=3, period=(START, START + timedelta(minutes=30)), **RULES)
    assert figures.occupancy == pytest.approx(20 / 30)  # busy 10:05-10:25 (one span), idle 10 min
    assert figures.aht_s == 900.0


def test_an_agent_passing_a_call_on_is_busy_until_then() -> None:
    """As the router logs it: the call completes in its queue, then is transferred by the agent."""
    log = [
        line(0, "login", agent_id=5),
        line(0, "pause", agent_id=5, reason="other"),
        line(10, "unpause", agent_id=5, duration_s=600),
        line(20, "accept", queue_id=1, task_id=1, agent_id=5, wait_s=0),
        line(30, "complete", queue_id=1, task_id=1, agent_id=5, duration_s=600),
        line(30, "transfer", queue_id=1, task_id=1, agent_id=5, wait_s=1800, reason="agent"),
        line(30, "enter", queue_id=2, task_id=1),
    ]
    figures = summarise(log, queue_id=1, period=(START, END), **RULES)
    assert figures.occupancy == pytest.approx(10 / 50)  # paused 10 min, busy 10 of the other 50
    assert (figures.handled, figures.transferred_out, figures.aht_s) == (1, 0, 600.0)


def test_a_pause_still_open_and_a_call_still_going_at_the_end() -> None:
    log = [
        line(0, "login", agent_id=5),
        line(10, "accept", queue_id=1, task_id=1, agent_id=5, wait_s=0),
        line(40, "pause", agent_id=5, reason="meal"),
    ]
    figures = summarise(log, queue_id=1, period=(START, END), **RULES)
    # busy 10:10-11:00 = 50 min, paused after (nothing left), idle 10:00-10:10
    assert figures.occupancy == pytest.approx(50 / 60)
    assert figures.handled == 0 and figures.answered == 1 and figures.service_level == 1.0


def test_nothing_happened() -> None:
    empty = summarise([], **RULES)
    assert empty == QueueMetrics() and empty.is_empty
    assert empty.service_level is None and empty.occupancy is None
    rows = by_interval([], START, END, 15, **RULES)
    assert len(rows) == 4 and all(row.metrics.is_empty for row in rows)
    assert by_interval(LOG, END, START, 15, **RULES) == []
    with pytest.raises(ValueError):
        by_interval(LOG, START, END, 20, **RULES)


def test_summarise_without_a_period_spans_its_lines() -> None:
    figures = summarise(LOG, queue_id=1, **RULES)
    assert figures.offered == 5 and figures.expired == 1
    assert summarise(LOG[:3], **RULES).to_dict()["answered"] == 1


async def _write(db: Any, lines: list[Entry]) -> None:
    async with db.sessions() as session, session.begin():
        session.add_all(
            QueueLogEntry(
                at=entry.at, event=entry.event, queue_id=entry.queue_id, task_id=entry.task_id,
                agent_id=entry.agent_id, channel=entry.channel, wait_s=entry.wait_s, duration_s=entry.duration_s,
                reason=entry.reason, by_id=entry.by_id,
            )
            for entry in lines
        )  # fmt: skip


async def test_loader_reads_a_queue_with_its_agents_lines(db: Any) -> None:
    await _write(db, [*LOG, line(-5, "enter", queue_id=1, task_id=99), line(61, "enter", queue_id=1, task_id=98)])
    async with db.sessions() as session:
        everything = await load_entries(session, START, END)
        queue_one = await load_entries(session, START, END, queue_id=1)
    assert everything == sorted(LOG, key=lambda entry: entry.at)
    assert all(entry.at.tzinfo is not None for entry in everything)
    assert {entry.agent_id for entry in queue_one if entry.queue_id is None} == {7}  # not agent 8's login
    assert summarise(queue_one, queue_id=1, period=(START, END), **RULES) == summarise(
        LOG, queue_id=1, period=(START, END), **RULES
    )


async def test_contacts_per_interval_averages_each_weekday(db: Any) -> None:
    today = date(2026, 11, 23)  # a Monday
    timezone = "Asia/Shanghai"
    monday_0815 = local_day_start(date(2026, 11, 16), timezone) + timedelta(hours=8, minutes=15)
    lines = [Entry(at=monday_0815 - timedelta(weeks=w), event="enter", queue_id=1) for w in range(4)]
    lines += [Entry(at=monday_0815 + timedelta(minutes=20), event="enter", queue_id=2)]  # 08:35, queue 2
    lines += [Entry(at=monday_0815 - timedelta(weeks=4), event="enter", queue_id=1)]  # five weeks back
    lines += [Entry(at=monday_0815 + timedelta(weeks=1), event="enter", queue_id=1)]  # today: not history
    lines += [Entry(at=monday_0815 + timedelta(days=1), event="accept", queue_id=1)]  # not an arrival
    await _write(db, lines)
    async with db.sessions() as session:
        all_queues = await contacts_per_interval(session, timezone=timezone, today=today, weeks=4)
        queue_one = await contacts_per_interval(session, timezone=timezone, today=today, weeks=4, queue_id=1)
        hourly = await contacts_per_interval(session, timezone=timezone, today=today, weeks=2, minutes=60)
    assert sorted(all_queues) == list(range(7)) and all(len(row) == 48 for row in all_queues.values())
    assert all_queues[0][16] == 1.0  # 08:00-08:30 on Mondays: 4 in 4 weeks
    assert all_queues[0][17] == 0.25  # 08:30-09:00: 1 in 4 weeks
    assert queue_one[0][17] == 0.0
    assert sum(sum(row) for weekday, row in all_queues.items() if weekday) == 0
    assert len(hourly[0]) == 24 and hourly[0][8] == 1.5  # two weeks: 08:15 and 08:35 last Monday, 08:15 before


def test_the_figures_of_a_log_the_router_core_wrote() -> None:
    """The real core's lines for a known half-hour: two calls answered (10 s and 30 s) with 30 s of
    mandatory wrap-up, a break, a meeting with two callers giving up (after 3 s and 40 s), a logout."""
    from patientline.routing import core

    router = core.Router(core.RouterConfig())
    effects: list[core.Effect] = []
    effects += router.set_queue(core.QueueConfig(id=1, wrap_up=core.WrapUpPolicy.MANDATORY, wrap_up_s=30), 0)
    effects += router.login(core.AgentProfile(id=7, capacities={"voice": 1}, queues={1: 1}), 0)
    steps = [
        (60, lambda t: router.ready(7, t)),
        (100, lambda t: router.submit(core.TaskSpec(1, 1, "voice"), t)),
        (110, lambda t: router.accept(1, 7, t)),
        (290, lambda t: router.complete(1, t)),
        (320, router.tick),
        (400, lambda t: router.submit(core.TaskSpec(2, 1, "voice"), t)),
        (430, lambda t: router.accept(2, 7, t)),
        (550, lambda t: router.complete(2, t)),
        (580, router.tick),
        (600, lambda t: router.not_ready(7, core.Reason.BREAK, t)),
        (900, lambda t: router.ready(7, t)),
        (1000, lambda t: router.not_ready(7, core.Reason.MEETING, t)),
        (1000, lambda t: router.submit(core.TaskSpec(3, 1, "voice"), t)),
        (1003, lambda t: router.abandon(3, t)),
        (1010, lambda t: router.submit(core.TaskSpec(4, 1, "voice"), t)),
        (1050, lambda t: router.abandon(4, t)),
        (1100, lambda t: router.ready(7, t)),
        (1200, lambda t: router.logout(7, t)),
    ]
    for moment, step in steps:
        effects += step(moment)
    log = [
        Entry(at=START + timedelta(seconds=e.at), event=e.event, queue_id=e.queue, task_id=e.task, agent_id=e.agent,
              channel=e.channel, wait_s=e.wait_s, duration_s=e.duration_s, reason=e.reason, by_id=e.by)
        for e in effects
        if isinstance(e, core.Logged)
    ]  # fmt: skip
    figures = summarise(log, queue_id=1, period=(START, START + timedelta(minutes=30)), **RULES)
    assert (figures.entered, figures.offered, figures.answered, figures.answered_in_time) == (4, 4, 2, 1)
    assert (figures.abandoned, figures.short_abandoned, figures.handled) == (2, 1, 2)
    assert (figures.service_level, figures.service_level_with_abandons) == (0.5, pytest.approx(1 / 3))
    assert (figures.asa_s, figures.aht_s, figures.avg_wrap_s, figures.longest_wait_s) == (20, 180, 30, 40)
    # logged in 1200 s; paused 60 + 300 + 100; busy 210 + 150 (talk and wrap-up); idle the other 380
    assert figures.occupancy == pytest.approx(360 / (360 + 380))
