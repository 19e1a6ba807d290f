from __future__ import annotations

from dataclasses import dataclass, field

from patientline.core.auth.cache import SessionCache
from patientline.core.config import Settings
from patientline.core.db import Database
from patientline.core.events import Bus
from patientline.core.jobs import Worker


@dataclass
class AppState:
    settings: Settings
    db: Database
    bus: Bus
    sessions: SessionCache = field(default_factory=SessionCache)
    worker: Worker | None = None
    started: bool = False
    extras: dict[str, object] = field(default_factory=dict)
