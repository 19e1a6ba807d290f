"""What people see of the router: the offer and tasks in the agent bar, agents and queues on the
wallboard with today's figures and the alerts that call for a supervisor."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any

from patientline.routing import core, metrics
from patientline.routing.store import LiveTask, QueueInfo, iso

SHOWN_STATUSES = ("ready", "offered", "busy", "wrap_up", "not_ready")  # a queue's agents by status
SL_ALERT_MIN_ANSWERED = 10  # before that many answers today a service level says little
LINE_RESOLUTION = timedelta(milliseconds=1)


def offer_json(task: LiveTask, queue: QueueInfo | None, expires_at: float | None) -> dict[str, Any]:
    return {"task_id": task.id, "queue_id": task.queue_id, "queue_name": queue.name if queue else "",
            "channel": task.channel, "caller": task.caller, "subject": task.subject,
            "expires_at": iso(expires_at)}  # fmt: skip


def task_json(task: LiveTask, queue: QueueInfo | None, *, position: int | None = None) -> dict[str, Any]:
    return {
        "id": task.id, "queue_id": task.queue_id, "queue_name": queue.name if queue else "",
        "wrap_up": queue.wrap_up if queue else "none",
        "channel": task.channel, "state": task.state, "priority": task.priority, "is_vip": task.is_vip,
        "entered_at": task.entered_at.isoformat(), "agent_id": task.agent_id,
        "accepted_at": task.accepted_at.isoformat() if task.accepted_at else None,
        "ended_at": task.ended_at.isoformat() if task.ended_at else None,
        "external_ref": task.external_ref, "caller": task.caller, "subject": task.subject,
        "kept_place": task.kept_place, "position": position,
    }  # fmt: skip


def agent_json(view: core.AgentView, name: str) -> dict[str, Any]:
    return {"user_id": view.id, "name": name, "status": view.status.value,
            "reason": view.reason.value if view.reason else None, "since": iso(view.since),
            "tasks": len(view.active), "handled_today": view.handled_today}  # fmt: skip


def offline_agent_json(user_id: int, name: str, handled_today: int) -> dict[str, Any]:
    return {"user_id": user_id, "name": name, "status": "offline", "reason": None, "since": None, "tasks": 0,
            "handled_today": handled_today}  # fmt: skip


def queue_json(info: QueueInfo, stats: core.QueueView, today: metrics.QueueMetrics) -> dict[str, Any]:
    return {
        "id": info.id,
        "code": info.code,
        "name": info.name,
        "waiting": stats.waiting,
        "ringing": stats.ringing,
        "longest_wait_s": round(stats.longest_wait_s, 1),
        "agents": {status: stats.agents.get(core.Status(status), 0) for status in SHOWN_STATUSES},
        "today": today.to_dict(),
        "sl_target": info.sl_target,
        "sl_seconds": info.sl_seconds,
        "alerts": alerts(info, stats, today),
    }


def alerts(info: QueueInfo, stats: core.QueueView, today: metrics.QueueMetrics) -> list[str]:
    """Why a queue needs a supervisor's eye: `service_level` today below target (once ten contacts
    were answered), `waiting` as many as the queue's alert threshold, `longest_wait` a patient waiting
    past half the queue's maximum wait."""
    raised = []
    level = today.service_level
    if today.answered >= SL_ALERT_MIN_ANSWERED and level is not None and level < info.sl_target:
        raised.append("service_level")
    if info.alert_waiting is not None and stats.waiting >= info.alert_waiting:
        raised.append("waiting")
    if info.max_wait_s is not None and stats.longest_wait_s > info.max_wait_s / 2:
        raised.append("longest_wait")
    return raised


class Today:
    """The day's queue-log lines in memory (the leader writes every line, so it has them all) and each
    queue's figures from them. The figures are computed in a thread, apart from the commands, and again
    only when lines were added (at most every `REFRESH_S`) or a minute passed (the agents' time)."""

    REFRESH_S = 5.0
    DRIFT_S = 60.0

    def __init__(self, day: date, timezone: str, lines: list[metrics.Entry] | None = None) -> None:
        self.day = day
        self.timezone = timezone
        self.lines: list[metrics.Entry] = lines or []
        self._figures: dict[int, tuple[float, int, metrics.QueueMetrics]] = {}  # at, lines seen, figures
        self._refreshing = asyncio.Lock()

    @property
    def start(self) -> datetime:
        return metrics.local_day_start(self.day, self.timezone)

    def add(self, lines: list[metrics.Entry]) -> None:
        self.lines.extend(lines)

    def handled_by(self, agent_id: int) -> int:
        return sum(1 for line in self.lines if line.event == "accept" and line.agent_id == agent_id)

    def handled(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for line in self.lines:
            if line.event == "accept" and line.agent_id is not None:
                counts[line.agent_id] = counts.get(line.agent_id, 0) + 1
        return counts

    def next_day(self, day: date) -> None:
        self.day = day
        start = self.start
        self.lines = [line for line in self.lines if line.at >= start]
        self._figures.clear()

    def forget(self, queue_id: int) -> None:
        self._figures.pop(queue_id, None)

    def figures(self, queue_id: int) -> metrics.QueueMetrics:
        """The latest figures computed (empty before the first)."""
        known = self._figures.get(queue_id)
        return known[2] if known is not None else metrics.QueueMetrics()

    def _stale(self, queue_id: int, at: float, max_age: float) -> bool:
        known = self._figures.get(queue_id)
        if known is None:
            return True
        age = at - known[0]
        return (known[1] != len(self.lines) and age >= max_age) or age >= self.DRIFT_S

    async def refresh(self, queues: list[QueueInfo], now: datetime, *, max_age: float = REFRESH_S) -> list[int]:
        """Computes again the figures that are out of date; returns the queues whose figures were."""
        at = now.timestamp()
        async with self._refreshing:  # one at a time: a second caller finds the figures fresh
            due = [info for info in queues if self._stale(info.id, at, max_age)]
            if not due:
                return []
            lines = list(self.lines)
            period = (self.start, max(now, self.start) + LINE_RESOLUTION)  # the lines written this instant count
            results = await asyncio.to_thread(_summarise, lines, due, period)
            for info, figures in zip(due, results, strict=True):
                self._figures[info.id] = (at, len(lines), figures)
            return [info.id for info in due]


def _summarise(
    lines: list[metrics.Entry], queues: list[QueueInfo], period: tuple[datetime, datetime]
) -> list[metrics.QueueMetrics]:
    figures = []
    for info in queues:
        rules = {"sl_seconds": info.sl_seconds, "short_abandon_s": info.short_abandon_s}
        figures.append(metrics.summarise(lines, queue_id=info.id, period=period, **rules))
    return figures
