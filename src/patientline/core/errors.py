"""Domain errors: an HTTP status, a stable `error_id`, a message people can read, and details."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class DomainError(Exception):
    status_code = 400
    error_id = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        error_id: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        """`message` is an English msgid with `{name}` placeholders filled from `params` after translation."""
        super().__init__(message)
        self.message = message
        self.params = params or {}
        self.details = details
        if error_id:
            self.error_id = error_id

    def localized_message(self, gettext: Callable[[str], str]) -> str:
        return gettext(self.message).format(**self.params)

    def body(self, gettext: Callable[[str], str] = str) -> dict[str, Any]:
        return {"error_id": self.error_id, "message": self.localized_message(gettext), "details": self.details}


class InvalidInput(DomainError):
    status_code = 422
    error_id = "invalid_input"


class NotAuthenticated(DomainError):
    status_code = 401
    error_id = "not_authenticated"


class PermissionDenied(DomainError):
    status_code = 403
    error_id = "permission_denied"


class NotFound(DomainError):
    status_code = 404
    error_id = "not_found"


class Conflict(DomainError):
    status_code = 409
    error_id = "conflict"


class StaleVersion(Conflict):
    error_id = "stale_version"

    def __init__(self, *, expected: int, current: int) -> None:
        super().__init__(
            "This record was changed by someone else; reload and try again.",
            details={"expected_version": expected, "current_version": current},
        )


class PayloadTooLarge(DomainError):
    status_code = 413
    error_id = "payload_too_large"


class TooManyAttempts(DomainError):
    status_code = 429
    error_id = "locked_out"


def require_version(*, expected: int, current: int) -> None:
    if expected != current:
        raise StaleVersion(expected=expected, current=current)
