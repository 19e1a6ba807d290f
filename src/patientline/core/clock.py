"""The one source of "now". Tests move time with `clock.set_now` / `clock.advance`."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

_frozen: datetime | None = None


def now() -> datetime:
    """Timezone-aware UTC."""
    return _frozen if _frozen is not None else datetime.now(UTC)


def set_now(moment: datetime | None) -> None:
    global _frozen
    if moment is not None and moment.tzinfo is None:
        raise ValueError("clock needs an aware datetime")
    _frozen = moment.astimezone(UTC) if moment else None


def frozen() -> datetime | None:
    """The moment tests (or a demo loader) fixed, if any."""
    return _frozen


def advance(delta: timedelta) -> None:
    set_now(now() + delta)


def monotonic() -> float:
    """For durations inside one process (not affected by `set_now`)."""
    return time.monotonic()


def today(timezone: str) -> date:
    """The calendar day now at the hospital (`timezone` is the settings' IANA name)."""
    return now().astimezone(ZoneInfo(timezone)).date()
