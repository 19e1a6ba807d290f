"""One error shape everywhere: `{"error_id", "message", "details"}` for the API and htmx, a readable
page for browsers. Bad input never produces a 500 or a stack trace."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from patientline.core.errors import DomainError
from patientline.core.i18n import gettext
from patientline.core.validation import field_message
from patientline.web.responses import FastJSONResponse
from patientline.web.templating import render

log = logging.getLogger(__name__)

HTTP_ERROR_IDS = {404: "not_found", 405: "method_not_allowed", 401: "not_authenticated", 403: "permission_denied"}
HTTP_MESSAGES = {
    404: "The page or record you asked for does not exist.",
    405: "This action is not allowed here.",
    401: "Please log in.",
    403: "You do not have permission to do this.",
}


def wants_json(request: Request) -> bool:
    path = request.url.path
    return (
        path.startswith(("/api/", "/healthz", "/readyz"))
        or "hx-request" in request.headers
        or "application/json" in request.headers.get("accept", "")
    )


def error_response(request: Request, status: int, body: dict[str, Any]) -> Response:
    if wants_json(request):
        response: Response = FastJSONResponse(body, status_code=status)
    elif status == 401:
        response = RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    elif body["error_id"] == "password_change_required":
        response = RedirectResponse("/password", status_code=303)
    else:
        response = render(request, "error.html", {"status": status, "error": body}, status_code=status)
    if getattr(request.state, "clear_session_cookie", False):
        response.delete_cookie("pl_session")
    return response


def _without_body(location: tuple[Any, ...]) -> tuple[Any, ...]:
    """('body', 'values', 'body') -> ('values', 'body'): only the leading part names the request's body."""
    return location[1:] if location[:1] == ("body",) else location


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {
            "field": ".".join(str(p) for p in _without_body(tuple(err.get("loc", ())))),
            "problem": err.get("type"),
            "message": field_message(err),
        }
        for err in exc.errors()
    ]


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        return error_response(request, exc.status_code, exc.body(gettext))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        details = _validation_details(exc)
        if any(d["problem"] == "json_invalid" for d in details):
            body = {
                "error_id": "malformed_json",
                "message": gettext("The request body is not valid JSON."),
                "details": details,
            }
            return error_response(request, 400, body)
        body = {
            "error_id": "invalid_input",
            "message": gettext("Some fields are missing or not valid."),
            "details": details,
        }
        return error_response(request, 422, body)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        status = exc.status_code
        message = HTTP_MESSAGES.get(status, str(exc.detail))
        body = {"error_id": HTTP_ERROR_IDS.get(status, "http_error"), "message": gettext(message), "details": None}
        return error_response(request, status, body)

    @app.exception_handler(StaleDataError)
    async def stale(request: Request, exc: StaleDataError) -> Response:
        body = {
            "error_id": "stale_version",
            "message": gettext("This record was changed by someone else; reload and try again."),
            "details": None,
        }
        return error_response(request, 409, body)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", extra={"path": request.url.path})
        body = {
            "error_id": "internal_error",
            "message": gettext("Something went wrong on our side. The error has been logged."),
            "details": {"request_id": getattr(request.state, "request_id", None)},
        }
        return error_response(request, 500, body)
