"""Who is acting: a user through a browser session, an integration through an API token, or the system."""

from __future__ import annotations

from dataclasses import dataclass, field

from patientline.core.errors import PermissionDenied


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    username: str
    display_name: str
    roles: tuple[str, ...]
    permissions: frozenset[str]
    site_ids: frozenset[int] = field(default_factory=frozenset)
    department_ids: frozenset[int] = field(default_factory=frozenset)
    via: str = "session"  # session | token | system
    ip: str | None = None
    request_id: str | None = None
    locale: str | None = None
    must_change_password: bool = False
    csrf_token: str | None = None
    session_hash: str | None = None

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def require(self, permission: str) -> None:
        if not self.can(permission):
            raise PermissionDenied("You do not have permission to do this.", details={"permission": permission})

    @property
    def is_unscoped(self) -> bool:
        """Users with no site or department scope see the whole hospital."""
        return not self.site_ids and not self.department_ids

    def sees(self, *, site_id: int | None = None, department_id: int | None = None) -> bool:
        if self.is_unscoped:
            return True
        if department_id is not None and department_id in self.department_ids:
            return True
        return site_id is not None and site_id in self.site_ids


SYSTEM = Actor(user_id=None, username="system", display_name="System", roles=(), permissions=frozenset(), via="system")
