"""Pure ASGI middleware (cheap on the hot path): request ids, body size limit, security headers,
metrics."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from patientline.core.i18n import current_locale, gettext, pick_locale
from patientline.core.observability import HTTP_LATENCY, HTTP_REQUESTS, request_id_var

access_log = logging.getLogger("patientline.access")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
        b"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'",
    ),
]


def _security_headers(own: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The house headers; a page with its own content policy (the chat, which hospitals may frame) keeps
    it and decides its framing there."""
    if any(name.lower() == b"content-security-policy" for name, _ in own):
        return [(name, value) for name, value in SECURITY_HEADERS
                if name not in (b"content-security-policy", b"x-frame-options")]  # fmt: skip
    return SECURITY_HEADERS


class _Exchange:
    """What the middleware learns about one request while the app handles it."""

    def __init__(self) -> None:
        self.status = 500
        self.too_large = False
        self.started = False


# evidence (phone photos, recordings) and pictures patients send in a chat
UPLOAD_PATHS = re.compile(
    r"^/(api/)?workorders/\d+/attachments$|^/api/chat/[0-9a-f]{32}/images$|^/api/voice/prompts(/\d+/audio)?$"
)


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int, default_locale: str) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes
        self.default_locale = default_locale

    def _limit(self, scope: Scope) -> int:
        return self.max_upload_bytes if UPLOAD_PATHS.match(scope.get("path", "")) else self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex[:16]
        token = request_id_var.set(request_id)
        current_locale.set(pick_locale(_cookie(scope, "pl_lang"), self.default_locale))
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        exchange = _Exchange()
        declared = _header(scope, b"content-length")
        limit = self._limit(scope)
        try:
            if declared and declared.isdigit() and int(declared) > limit:
                exchange.too_large = True
            else:
                receive = self._limited(receive, exchange, limit)
                await self.app(scope, receive, self._sending(send, request_id, exchange))
        except Exception:
            if not exchange.too_large:
                raise
        finally:
            if exchange.too_large and not exchange.started:
                await self._too_large(send, request_id)
                exchange.status = 413
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            elapsed = time.perf_counter() - started
            HTTP_REQUESTS.labels(scope["method"], path, str(exchange.status)).inc()
            HTTP_LATENCY.labels(scope["method"], path).observe(elapsed)
            # the route template, never the path or query: they may hold a phone number or a name
            access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "route": path,
                    "status": exchange.status,
                    "ms": round(elapsed * 1000, 1),
                },
            )
            request_id_var.reset(token)

    @staticmethod
    def _limited(receive: Receive, exchange: _Exchange, limit: int) -> Receive:
        """Counts the body as it streams in; past the limit the app sees the client leave, and its answer
        is replaced by the 413."""
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            if exchange.too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exchange.too_large = True
                    return {"type": "http.disconnect"}
            return message

        return limited

    @staticmethod
    def _sending(send: Send, request_id: str, exchange: _Exchange) -> Send:
        async def wrapped(message: Message) -> None:
            if exchange.too_large:
                return
            if message["type"] == "http.response.start":
                exchange.status, exchange.started = message["status"], True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(_security_headers(headers))
                message = {**message, "headers": headers}
            await send(message)

        return wrapped

    async def _too_large(self, send: Send, request_id: str) -> None:
        body = orjson.dumps(
            {
                "error_id": "payload_too_large",
                "message": gettext("The request is larger than {limit} bytes.").format(limit=self.max_body_bytes),
                "details": {"max_bytes": self.max_body_bytes},
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            decoded: Any = value.decode("latin-1")
            return str(decoded)
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    for part in raw.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None
