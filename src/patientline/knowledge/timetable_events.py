"""What the timetable service announces, so pages and caches on every node learn of a change."""

from __future__ import annotations

from typing import ClassVar

from patientline.core.auth.permissions import Permission
from patientline.core.events import Audience, Event

TIMETABLE_READERS = Audience(permission=Permission.READ_KNOWLEDGE.value)


class TimetableChanged(Event):
    type: ClassVar[str] = "timetable.changed"
    doctor_id: int
    department_id: int
    name: str
    # created | updated | deactivated | sessions | change_added | change_removed
    change: str
