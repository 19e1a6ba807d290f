"""A short-lived, per-process cache of resolved browser sessions.

Resolving a session costs several queries; an agent's screen makes many requests a minute. An entry
lives at most `ttl_seconds` and never past the moment the idle deadline must be moved (once a
minute), so the database stays the authority. Logout, password and role changes and deactivation
raise `SessionsChanged` after commit, which drops the user's entries on every node (through the
event bus); the TTL bounds what a lost message could cost.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from patientline.core.auth.actor import Actor
from patientline.core.auth.events import SessionsChanged
from patientline.core.events import Published

TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class CachedSession:
    actor: Actor
    last_seen_at: datetime
    fetched_at: float


class SessionCache:
    def __init__(self, ttl_seconds: float = 5.0, max_entries: int = 20_000) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[str, CachedSession] = {}
        self.generation = 0

    def get(self, token_hash: str, *, now: datetime) -> Actor | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        fresh = time.monotonic() - entry.fetched_at < self.ttl_seconds
        if fresh and now - entry.last_seen_at < TOUCH_INTERVAL:
            return entry.actor
        del self._entries[token_hash]
        return None

    def put(self, token_hash: str, actor: Actor, *, last_seen_at: datetime, generation: int) -> None:
        """`generation` is the value read before the session was: if a change came since, nothing is stored."""
        if generation != self.generation:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        stored = dataclasses.replace(actor, ip=None, request_id=None)
        self._entries[token_hash] = CachedSession(stored, last_seen_at, time.monotonic())

    def forget_user(self, user_id: int) -> None:
        self.generation += 1
        for key in [k for k, v in self._entries.items() if v.actor.user_id == user_id]:
            del self._entries[key]

    def on_event(self, published: Published) -> None:
        if published.type == SessionsChanged.type:
            self.forget_user(int(published.payload["user_id"]))
