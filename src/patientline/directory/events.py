from __future__ import annotations

from typing import ClassVar

from patientline.core.auth.permissions import Permission
from patientline.core.events import Audience, Event

DIRECTORY_READERS = Audience(permission=Permission.READ_DIRECTORY.value)


class DirectoryChanged(Event):
    type: ClassVar[str] = "directory.changed"
    entity: str
    entity_id: int
    change: str  # created | updated | deleted
    name: str
