"""A per-process cache of rendered read answers for reference data (the directory) that everyone reads
and few change.

Entries are dropped when the data's change events arrive (from any node, through the event bus) and
expire after `ttl_seconds` in any case, which bounds what a writer outside the bus (a CLI run without
Redis) could leave stale. A generation counter keeps a read that raced with a change from storing its
outdated answer.
"""

from __future__ import annotations

import time
from collections.abc import Hashable

from patientline.core.events import Published


class ReadCache:
    def __init__(self, *, invalidated_by: frozenset[str], ttl_seconds: float = 30.0, max_entries: int = 512) -> None:
        self.invalidated_by = invalidated_by
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.generation = 0
        self._entries: dict[Hashable, tuple[float, bytes]] = {}

    def get(self, key: Hashable) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] > self.ttl_seconds:
            return None
        return entry[1]

    def put(self, key: Hashable, body: bytes, *, generation: int) -> None:
        """`generation` is the value read before the data was: if a change came since, nothing is stored."""
        if generation != self.generation:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (time.monotonic(), body)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

    def on_event(self, published: Published) -> None:
        if published.type in self.invalidated_by:
            self.clear()
