"""Queue figures from the queue log: offered, answered, abandoned, service level, ASA, AHT, wrap-up,
occupancy, longest wait, for a period or per 15/30/60-minute interval.

What counts (every contact counted once per queue, in the interval in which its outcome happened):
- **offered**: contacts whose outcome in the queue fell in the period: answered (`accept`),
  abandoned (`abandon`) or expired at the queue's maximum wait (`expire`). A contact transferred out
  while waiting (`transfer`, overflow or moved) is offered to the queue it went to, not this one.
- **short abandons**: abandons after waiting less than the queue's threshold (misdials, hang-ups on
  the greeting); they count in `abandoned` but not in the service level's denominator.
- **service_level** = answered within T / answered (the share of the calls answered that were answered
  within T); **service_level_with_abandons** = answered within T / (answered + abandoned that are not
  short + expired).
- **ASA**: mean wait of the answered contacts; **longest wait**: of any answered, abandoned or
  expired contact. **AHT** = talk (`complete.duration_s`) + wrap-up (`wrap_end.duration_s`) per
  contact completed; `avg_wrap_s` is the wrap-up per contact completed (AHT = talk + wrap).
  A `wrap_end` without a queue belongs to the queue of the agent's last completed contact.
- **occupancy** = busy / (busy + idle) of the agents, where busy is the time with at least one
  contact or a wrap-up (accept to complete, then the wrap-up) and idle the time logged in, not paused
  and not busy; paused time counts in neither. The periods come from the lines' durations (a
  complete's talk, a wrap_end's wrap, an unpause's pause) and login/logout; an agent seen without a
  login in the period was logged in from its start. For one queue, the agents are those who answered
  a contact of it in the period, with all their time (an agent's idle time cannot be split by queue).

The functions here are pure; `load_entries` and `contacts_per_interval` read the table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.routing.models import QueueLogEntry

INTERVAL_MINUTES = (15, 30, 60)
_OUTCOMES = frozenset({"accept", "abandon", "expire"})
Span = tuple[float, float]


class LogLine(Protocol):
    """A queue-log line: a `QueueLogEntry` row or an `Entry`."""

    @property
    def at(self) -> datetime: ...
    @property
    def event(self) -> str: ...
    @property
    def queue_id(self) -> int | None: ...
    @property
    def task_id(self) -> int | None: ...
    @property
    def agent_id(self) -> int | None: ...
    @property
    def wait_s(self) -> float | None: ...
    @property
    def duration_s(self) -> float | None: ...
    @property
    def reason(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Entry:
    at: datetime
    event: str
    queue_id: int | None = None
    task_id: int | None = None
    agent_id: int | None = None
    channel: str | None = None
    wait_s: float | None = None
    duration_s: float | None = None
    reason: str | None = None
    by_id: int | None = None


@dataclass(frozen=True)
class QueueMetrics:
    entered: int = 0
    offered: int = 0
    answered: int = 0
    answered_in_time: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    expired: int = 0
    transferred_out: int = 0
    handled: int = 0  # completed
    service_level: float | None = None
    service_level_with_abandons: float | None = None
    abandon_rate: float | None = None  # abandoned (not short) / offered (not short abandons)
    asa_s: float | None = None
    aht_s: float | None = None
    avg_talk_s: float | None = None
    avg_wrap_s: float | None = None
    longest_wait_s: float | None = None
    occupancy: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def is_empty(self) -> bool:
        return not (self.entered or self.offered or self.handled or self.transferred_out)


@dataclass(frozen=True)
class IntervalMetrics:
    start: datetime
    end: datetime
    metrics: QueueMetrics

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), **self.metrics.to_dict()}


class _Tally:
    """Counts and sums of one queue's lines, turned into QueueMetrics at the end."""

    def __init__(self, sl_seconds: float, short_abandon_s: float) -> None:
        self.sl_seconds, self.short_abandon_s = sl_seconds, short_abandon_s
        self.entered = self.answered = self.in_time = self.abandoned = self.short = self.expired = 0
        self.transferred = self.handled = 0
        self.wait_answered = self.talk = self.wrap = 0.0
        self.longest: float | None = None

    def add(self, line: LogLine) -> None:
        event, wait = line.event, line.wait_s or 0.0
        if event in _OUTCOMES:
            self.longest = wait if self.longest is None else max(self.longest, wait)
        if event == "enter":
            self.entered += 1
        elif event == "accept":
            self.answered += 1
            self.wait_answered += wait
            self.in_time += wait <= self.sl_seconds
        elif event == "abandon":
            self.abandoned += 1
            self.short += wait < self.short_abandon_s
        elif event == "expire":
            self.expired += 1
        elif event == "transfer" and line.reason != "agent":
            self.transferred += 1
        elif event == "complete":
            self.handled += 1
            self.talk += line.duration_s or 0.0
        elif event == "wrap_end":
            self.wrap += line.duration_s or 0.0

    def result(self, occupancy: float | None) -> QueueMetrics:
        offered = self.answered + self.abandoned + self.expired
        counted = offered - self.short
        return QueueMetrics(
            entered=self.entered,
            offered=offered,
            answered=self.answered,
            answered_in_time=self.in_time,
            abandoned=self.abandoned,
            short_abandoned=self.short,
            expired=self.expired,
            transferred_out=self.transferred,
            handled=self.handled,
            service_level=_ratio(self.in_time, self.answered),
            service_level_with_abandons=_ratio(self.in_time, counted),
            abandon_rate=_ratio(self.abandoned - self.short + self.expired, counted),
            asa_s=_ratio(self.wait_answered, self.answered),
            aht_s=_ratio(self.talk + self.wrap, self.handled),
            avg_talk_s=_ratio(self.talk, self.handled),
            avg_wrap_s=_ratio(self.wrap, self.handled),
            longest_wait_s=self.longest,
            occupancy=occupancy,
        )


def summarise(
    entries: Iterable[LogLine],
    *,
    sl_seconds: float,
    short_abandon_s: float,
    queue_id: int | None = None,
    period: tuple[datetime, datetime] | None = None,
) -> QueueMetrics:
    """One queue's figures (all queues' when `queue_id` is None) over all the period's entries.

    Pass every line of the period, not only the queue's: occupancy needs the agents' own lines. The
    period bounds the agents' time (default: from the first line to the last)."""
    lines = sorted(entries, key=lambda line: line.at)
    if not lines and period is None:
        return QueueMetrics()
    start, end = period or (lines[0].at, lines[-1].at)
    tally = _Tally(sl_seconds, short_abandon_s)
    for line in _queue_lines(lines, queue_id):
        if start <= line.at < end or (period is None and line.at == end):
            tally.add(line)
    busy, idle = _agent_time(lines, _agents_of(lines, queue_id), start.timestamp(), end.timestamp())
    return tally.result(_occupancy(_length(busy), _length(idle)))


def by_interval(
    entries: Iterable[LogLine],
    start: datetime,
    end: datetime,
    minutes: int,
    *,
    sl_seconds: float,
    short_abandon_s: float,
    queue_id: int | None = None,
) -> list[IntervalMetrics]:
    """The figures of each `minutes`-long interval from `start` (an interval's outcomes by their time)."""
    if minutes not in INTERVAL_MINUTES:
        raise ValueError(f"minutes must be one of {INTERVAL_MINUTES}")
    if end <= start:
        return []
    width = minutes * 60.0
    count = -int(-(end - start).total_seconds() // width)
    lines = sorted(entries, key=lambda line: line.at)
    tallies = [_Tally(sl_seconds, short_abandon_s) for _ in range(count)]
    origin = start.timestamp()
    for line in _queue_lines(lines, queue_id):
        if start <= line.at < end:
            tallies[int((line.at.timestamp() - origin) // width)].add(line)
    busy, idle = _agent_time(lines, _agents_of(lines, queue_id), origin, end.timestamp())
    busy_per, idle_per = _spread(busy, origin, width, count), _spread(idle, origin, width, count)
    result = []
    for index, tally in enumerate(tallies):
        first = start + timedelta(seconds=index * width)
        last = min(end, first + timedelta(seconds=width))
        result.append(IntervalMetrics(first, last, tally.result(_occupancy(busy_per[index], idle_per[index]))))
    return result


def _queue_lines(lines: Sequence[LogLine], queue_id: int | None) -> Iterable[LogLine]:
    """The queue's lines; a wrap_end without a queue goes with the agent's last completed contact."""
    last_queue_of_agent: dict[int | None, int | None] = {}
    for line in lines:
        queue = line.queue_id
        if line.event == "complete":
            last_queue_of_agent[line.agent_id] = queue
        elif line.event == "wrap_end" and queue is None:
            queue = last_queue_of_agent.get(line.agent_id)
        if queue is None and line.event != "wrap_end":
            continue
        if queue_id is None or queue == queue_id:
            yield line


def _agents_of(lines: Sequence[LogLine], queue_id: int | None) -> set[int]:
    if queue_id is None:
        return {line.agent_id for line in lines if line.agent_id is not None}
    return {line.agent_id for line in lines if line.event == "accept" and line.queue_id == queue_id and line.agent_id}


def _agent_time(lines: Sequence[LogLine], agents: set[int], start: float, end: float) -> tuple[list[Span], list[Span]]:
    """Busy and idle spans of the agents (each agent's spans merged; agents' spans side by side)."""
    per_agent: dict[int, list[LogLine]] = defaultdict(list)
    for line in lines:
        if line.agent_id in agents:
            per_agent[line.agent_id].append(line)
    busy: list[Span] = []
    idle: list[Span] = []
    for own in per_agent.values():
        agent_busy, agent_paused, logged_in = _timeline(own, start, end)
        not_idle = _union(agent_busy + agent_paused)
        busy += agent_busy
        idle += _subtract(logged_in, not_idle)
    return busy, idle


def _timeline(lines: Sequence[LogLine], start: float, end: float) -> tuple[list[Span], list[Span], list[Span]]:
    """One agent's busy, paused and logged-in spans within [start, end)."""
    busy: list[Span] = []
    paused: list[Span] = []
    logged_in: list[Span] = []
    accepted_at: dict[int | None, float] = {}
    pause_since: float | None = None
    first_session_line = next((line.event for line in lines if line.event in ("login", "logout")), None)
    login_since: float | None = None if first_session_line == "login" else start
    for line in lines:
        at, event, duration = line.at.timestamp(), line.event, line.duration_s
        if event == "login" and login_since is None:
            login_since = at
        elif event == "logout" and login_since is not None:
            logged_in.append((login_since, at))
            login_since = None
        elif event == "accept":
            accepted_at[line.task_id] = at
        elif event == "complete":  # an agent's transfer logs a complete first
            since = accepted_at.pop(line.task_id, start)
            busy.append((at - duration if duration is not None else since, at))
        elif event == "wrap_end" and duration is not None:
            busy.append((at - duration, at))
        elif event == "pause":
            pause_since = at
        elif event == "unpause":
            since = pause_since if pause_since is not None else start
            paused.append((at - duration if duration is not None else since, at))
            pause_since = None
    busy += [(since, end) for since in accepted_at.values()]
    if pause_since is not None:
        paused.append((pause_since, end))
    if login_since is not None:
        logged_in.append((login_since, end))
    clip = _clipper(start, end)
    return clip(busy), clip(paused), clip(logged_in)


def _clipper(start: float, end: float) -> Callable[[list[Span]], list[Span]]:
    def clip(spans: list[Span]) -> list[Span]:
        return _union([(max(a, start), min(b, end)) for a, b in spans if min(b, end) > max(a, start)])

    return clip


def _union(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        elif b > a:
            merged.append((a, b))
    return merged


def _subtract(spans: list[Span], holes: list[Span]) -> list[Span]:
    """Both sorted and merged."""
    result: list[Span] = []
    index = 0
    for a, b in spans:
        while index < len(holes) and holes[index][1] <= a:
            index += 1
        cursor, scan = a, index
        while scan < len(holes) and holes[scan][0] < b:
            if holes[scan][0] > cursor:
                result.append((cursor, holes[scan][0]))
            cursor = max(cursor, holes[scan][1])
            scan += 1
        if cursor < b:
            result.append((cursor, b))
    return result


def _length(spans: list[Span]) -> float:
    return sum(b - a for a, b in spans)


def _spread(spans: list[Span], origin: float, width: float, count: int) -> list[float]:
    """How much of the spans falls in each interval."""
    totals = [0.0] * count
    for a, b in spans:
        index = max(0, int((a - origin) // width))
        while index < count and origin + index * width < b:
            low, high = origin + index * width, origin + (index + 1) * width
            totals[index] += max(0.0, min(b, high) - max(a, low))
            index += 1
    return totals


def _occupancy(busy: float, idle: float) -> float | None:
    return busy / (busy + idle) if busy + idle > 0 else None


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


# --- reading the log --------------------------------------------------------------------------------


async def load_entries(
    session: AsyncSession, start: datetime, end: datetime, queue_id: int | None = None
) -> list[Entry]:
    """The lines of [start, end) in order; for one queue, its lines and every line of its agents."""
    where = [QueueLogEntry.at >= start, QueueLogEntry.at < end]
    if queue_id is not None:
        agents = select(QueueLogEntry.agent_id).where(
            *where, QueueLogEntry.event == "accept", QueueLogEntry.queue_id == queue_id
        )
        where.append(or_(QueueLogEntry.queue_id == queue_id, QueueLogEntry.agent_id.in_(agents)))
    columns = (
        QueueLogEntry.at, QueueLogEntry.event, QueueLogEntry.queue_id, QueueLogEntry.task_id, QueueLogEntry.agent_id,
        QueueLogEntry.channel, QueueLogEntry.wait_s, QueueLogEntry.duration_s, QueueLogEntry.reason,
        QueueLogEntry.by_id,
    )  # fmt: skip
    rows = await session.execute(select(*columns).where(*where).order_by(QueueLogEntry.at, QueueLogEntry.id))
    return [Entry(**row._asdict()) for row in rows]


def local_day_start(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(), ZoneInfo(timezone)).astimezone(UTC)


async def contacts_per_interval(
    session: AsyncSession,
    *,
    timezone: str,
    today: date,
    weeks: int = 4,
    queue_id: int | None = None,
    minutes: int = 30,
) -> dict[int, list[float]]:
    """Contacts entering per interval of the day, averaged per weekday (0 = Monday) over the `weeks`
    full weeks before `today`, in the hospital's time."""
    if minutes not in INTERVAL_MINUTES:
        raise ValueError(f"minutes must be one of {INTERVAL_MINUTES}")
    zone = ZoneInfo(timezone)
    query = select(QueueLogEntry.at).where(
        QueueLogEntry.event == "enter",
        QueueLogEntry.at >= local_day_start(today - timedelta(weeks=weeks), timezone),
        QueueLogEntry.at < local_day_start(today, timezone),
    )
    if queue_id is not None:
        query = query.where(QueueLogEntry.queue_id == queue_id)
    per_day = 24 * 60 // minutes
    counts = {weekday: [0] * per_day for weekday in range(7)}
    for (at,) in await session.execute(query):
        local = at.astimezone(zone)
        counts[local.weekday()][(local.hour * 60 + local.minute) // minutes] += 1
    return {weekday: [count / weeks for count in row] for weekday, row in counts.items()}
