"""Events the accounts raise."""

from __future__ import annotations

from typing import ClassVar

from patientline.core.events import Audience, Event


class SessionsChanged(Event):
    type: ClassVar[str] = "auth.sessions_changed"
    user_id: int

    @classmethod
    def for_user(cls, user_id: int) -> SessionsChanged:
        return cls(user_id=user_id, audience=Audience(user_id=user_id))


class AccountLockedOut(Event):
    """For administrators' notification trays."""

    type: ClassVar[str] = "auth.locked_out"
    user_id: int
    username: str
    locked_until: str
