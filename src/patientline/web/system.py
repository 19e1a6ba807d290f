"""Health, readiness, metrics, the live event stream and the language switch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from patientline.core import clock, events, jobs
from patientline.core.auth.actor import Actor
from patientline.core.auth.events import SessionsChanged
from patientline.core.i18n import SUPPORTED
from patientline.core.observability import EVENTS_DELIVERED, SSE_CLIENTS
from patientline.core.validation import MAX_ID, id_from_header
from patientline.web.deps import LOCALE_COOKIE, CurrentActor, app_state, safe_next
from patientline.web.responses import FastJSONResponse
from patientline.web.state import AppState

router = APIRouter(tags=["system"])

HEARTBEAT_STALE = timedelta(seconds=30)
SSE_KEEPALIVE_SECONDS = 15.0
REPLAY_PAGE = 1000
SSE_MAX_SECONDS = 600.0  # the browser reconnects (with Last-Event-ID), which checks the session again


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """Ready for traffic: database answers, Redis answers when configured, a worker is alive."""
    state = app_state(request)
    checks: dict[str, str] = {}
    try:
        async with state.db.sessions() as session:
            await session.execute(text("SELECT 1"))
            last_beat = await jobs.latest_heartbeat(session)
        checks["database"] = "ok"
        fresh = last_beat is not None and clock.now() - last_beat < HEARTBEAT_STALE
        checks["worker"] = "ok" if fresh else "stale"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
        checks["worker"] = "unknown"
    if state.settings.redis_url:
        checks["redis"] = await _redis_check(state.settings.redis_url)
    ready = all(v == "ok" for v in checks.values())
    return FastJSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks}, status_code=200 if ready else 503
    )


async def _redis_check(url: str) -> str:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url, socket_timeout=2)
    try:
        await client.ping()
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    finally:
        await client.aclose()


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def visible_to(actor: Actor, item: events.Published) -> bool:
    audience = item.audience
    if audience.user_id is not None:
        return audience.user_id == actor.user_id
    if audience.permission is not None and not actor.can(audience.permission):
        return False
    if audience.site_id is None and audience.department_id is None:
        return True
    return actor.sees(site_id=audience.site_id, department_id=audience.department_id)


@router.get("/api/events", response_class=StreamingResponse)
async def event_stream(
    request: Request,
    actor: CurrentActor,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    since: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="replay after this id (for clients without headers)")
    ] = None,
) -> StreamingResponse:
    """Server-sent events the user may see. A reconnect with `Last-Event-ID` replays what was missed."""
    state = app_state(request)
    after = since if since is not None else id_from_header(last_event_id)
    if after is None:
        async with state.db.sessions() as session:
            after = await events.last_event_id(session)

    async def body() -> AsyncIterator[bytes]:
        def ends_stream(item: events.Published) -> bool:
            return item.type == SessionsChanged.type and item.payload["user_id"] == actor.user_id

        def wanted(item: events.Published) -> bool:
            return ends_stream(item) or visible_to(actor, item)

        subscription = events.Subscription(state.bus, wanted=wanted)  # before the replay: nothing falls between
        SSE_CLIENTS.inc()
        replayed: set[int] = set()
        ends_at = clock.monotonic() + SSE_MAX_SECONDS
        try:
            yield b"retry: 2000\n\n"
            async for item in _replay(state, after or 0):
                replayed.add(item.id)
                if visible_to(actor, item):
                    yield item.sse_frame
            while not subscription.overflowed and clock.monotonic() < ends_at:
                try:
                    async with asyncio.timeout(SSE_KEEPALIVE_SECONDS):
                        item = await subscription.queue.get()
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                if ends_stream(item):
                    break  # logged out, disabled or given other rights: reconnecting checks again
                if item.id not in replayed:
                    EVENTS_DELIVERED.inc()
                    yield item.sse_frame
        finally:
            subscription.close()
            SSE_CLIENTS.dec()

    return StreamingResponse(
        body(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )


async def _replay(state: AppState, after_id: int) -> AsyncIterator[events.Published]:
    """Everything logged after `after_id`, page by page until caught up."""
    while True:
        async with state.db.sessions() as session:
            page = await events.replay(session, after_id=after_id, limit=REPLAY_PAGE)
        for item in page:
            yield item
        if len(page) < REPLAY_PAGE:
            return
        after_id = page[-1].id


@router.get("/lang/{locale}", include_in_schema=False)
async def switch_language(locale: str, request: Request, next: str = "/") -> Response:
    response = RedirectResponse(safe_next(next), status_code=303)
    if locale in SUPPORTED:
        response.set_cookie(LOCALE_COOKIE, locale, max_age=365 * 86400, samesite="lax", httponly=True)
    return response
