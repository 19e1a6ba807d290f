"""The router core's two heaps: a queue's waiting line and the timers.

Both delete lazily: an entry carries a token, and it is skipped when its owner's current token differs
(the task left the line, the offer was answered, the wrap-up ended early). Nothing is ever searched
for and removed, so every change costs O(log n).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from enum import IntEnum

IsCurrent = Callable[[int, int], bool]  # (owner id, token) -> the entry still stands


class WaitingLine:
    """One queue's waiting tasks: per channel, per priority level, a heap keyed by (entered_at, seq).

    Within one level every task gains score at the same rate, so the level's oldest task is its best
    and the first to pass a waiting-time threshold: looking at each level's head is enough.
    """

    __slots__ = ("_levels",)

    def __init__(self) -> None:
        self._levels: dict[str, dict[int, list[tuple[float, int, int, int]]]] = {}

    def push(self, *, channel: str, priority: int, entered_at: float, seq: int, task: int, token: int) -> None:
        level = self._levels.setdefault(channel, {}).setdefault(priority, [])
        heapq.heappush(level, (entered_at, seq, task, token))

    def channels(self) -> Iterator[tuple[str, dict[int, list[tuple[float, int, int, int]]]]]:
        return iter(self._levels.items())

    @staticmethod
    def heads(
        levels: dict[int, list[tuple[float, int, int, int]]], is_current: IsCurrent
    ) -> Iterator[tuple[int, float, int, int]]:
        """(priority, entered_at, seq, task) of each level's oldest current entry."""
        for priority, heap in levels.items():
            while heap:
                entered_at, seq, task, token = heap[0]
                if is_current(task, token):
                    yield priority, entered_at, seq, task
                    break
                heapq.heappop(heap)


class Timer(IntEnum):
    OFFER_TIMEOUT = 1  # owner: task, token: the offer's number
    WRAP_UP_END = 2  # owner: agent, token: the wrap-up's number
    MAX_WAIT = 3  # owner: task, token: its queue entry's number
    TIER_OPENS = 4  # owner: task, token: its queue entry's number


class Timers:
    """Moments the core must act at, earliest first; ties in the order they were set."""

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer, int, int]] = []
        self._seq = 0

    def set(self, at: float, kind: Timer, owner: int, token: int) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, kind, owner, token))

    def next_at(self, is_current: Callable[[Timer, int, int], bool]) -> float | None:
        heap = self._heap
        while heap:
            at, _, kind, owner, token = heap[0]
            if is_current(kind, owner, token):
                return at
            heapq.heappop(heap)
        return None

    def pop_due(self, now: float, is_current: Callable[[Timer, int, int], bool]) -> tuple[float, Timer, int] | None:
        """The earliest current timer due at or before `now`, removed; None when none is due."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, _, kind, owner, token = heapq.heappop(heap)
            if is_current(kind, owner, token):
                return at, kind, owner
        return None
