from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from patientline.core.auth.cache import SessionCache
from patientline.core.config import Settings
from patientline.core.db import Database
from patientline.core.events import Bus, Keyed
from patientline.core.jobs import Worker
from patientline.core.ratelimit import Budget
from patientline.core.readcache import ReadCache
from patientline.directory.events import DirectoryChanged
from patientline.knowledge.live_index import LiveSearch
from patientline.patients.gateway import HisGateway
from patientline.routing.engine import Engine

if TYPE_CHECKING:
    from patientline.patients.mllp import MllpServer
    from patientline.voice.controller import VoiceRole


@dataclass
class AppState:
    settings: Settings
    db: Database
    bus: Bus
    sessions: SessionCache = field(default_factory=SessionCache)
    directory_cache: ReadCache = field(
        default_factory=lambda: ReadCache(invalidated_by=frozenset({DirectoryChanged.type}))
    )
    knowledge: LiveSearch = field(default_factory=LiveSearch)
    worker: Worker | None = None
    routing: Engine | None = None  # the router role: the ACD engine (routing/engine.py)
    voice: VoiceRole | None = None  # the voice role: Kamailio, media workers, the IVR (voice/controller.py)
    hl7: MllpServer | None = None  # the worker role with hl7_listen set: the HL7 v2 listener (patients/mllp.py)
    his: HisGateway = field(default_factory=lambda: HisGateway(None))  # the HIS port (patients/gateway.py)
    budgets: dict[str, Budget] = field(default_factory=dict)  # rate limits by name (core/ratelimit.py)
    fanouts: dict[str, Keyed] = field(default_factory=dict)  # event fan-outs by name (core/events.py)
