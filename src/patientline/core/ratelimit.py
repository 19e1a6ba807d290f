"""How often one key (an address, a chat session) may do something in a sliding window. In memory,
per process; the least recently seen keys are forgotten first, so the memory stays bounded."""

from __future__ import annotations

from collections import OrderedDict

from patientline.core import clock


class Budget:
    def __init__(self, limit: int, *, window_s: float = 3600.0, keys: int = 10_000) -> None:
        self.limit, self.window_s, self.keys = limit, window_s, keys
        self.spent: OrderedDict[str, list[float]] = OrderedDict()

    def allow(self, key: str) -> bool:
        """Spends one unit of `key`'s budget if any is left."""
        now = clock.now().timestamp()
        recent = [t for t in self.spent.pop(key, []) if now - t < self.window_s]
        allowed = len(recent) < self.limit
        self.spent[key] = [*recent, now] if allowed else recent
        while len(self.spent) > self.keys:
            self.spent.popitem(last=False)
        return allowed
