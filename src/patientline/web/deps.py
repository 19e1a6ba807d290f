"""Request-scoped dependencies: the database session, the acting user, CSRF, the locale."""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock
from patientline.core.auth import service as auth
from patientline.core.auth.actor import Actor
from patientline.core.errors import DomainError, NotAuthenticated, PermissionDenied
from patientline.core.i18n import current_locale, pick_locale
from patientline.web.state import AppState

SESSION_COOKIE = "pl_session"
LOCALE_COOKIE = "pl_lang"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PASSWORD_CHANGE_PATHS = ("/password", "/api/auth/password", "/logout", "/api/auth/logout", "/api/auth/me")


class PasswordChangeRequired(DomainError):
    status_code = 403
    error_id = "password_change_required"


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.pl
    return state


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with app_state(request).db.sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(db_session)]


def safe_next(target: str | None) -> str:
    """A local path to go back to after a login or a language switch, never another site."""
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _actor_from_token(request: Request, session: AsyncSession, secret: str) -> Actor:
    async with session.begin():
        token, user = await auth.resolve_token(session, secret=secret)
        actor = await auth.actor_for(
            session, user=user, via="token", ip=client_ip(request), request_id=request.state.request_id
        )
    # an integration has no password to change: the token is what the administrator handed out
    return dataclasses.replace(
        actor, permissions=actor.permissions & frozenset(token.scopes), must_change_password=False
    )


async def _actor_from_cookie(request: Request, session: AsyncSession, token: str) -> Actor:
    state = app_state(request)
    hashed, now = auth.token_hash(token), clock.now()
    cached = state.sessions.get(hashed, now=now)
    if cached is None:
        generation = state.sessions.generation
        async with session.begin():
            try:
                row, user = await auth.resolve_session(session, settings=state.settings, token=token)
            except NotAuthenticated:
                request.state.clear_session_cookie = True
                raise
            auth.touch_session(row, now=now)
            cached = await auth.actor_for(session, user=user, csrf_token=row.csrf_token, session_hash=row.token_hash)
        state.sessions.put(hashed, cached, last_seen_at=row.last_seen_at, generation=generation)
    return dataclasses.replace(cached, ip=client_ip(request), request_id=request.state.request_id)


async def _check_csrf(request: Request, actor: Actor) -> None:
    if request.method not in UNSAFE_METHODS or actor.via != "session":
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not actor.csrf_token or not hmac.compare_digest(sent, actor.csrf_token):
        raise PermissionDenied("The form has expired. Reload the page and try again.", error_id="csrf_failed")


async def optional_actor(request: Request, session: Session) -> Actor | None:
    if hasattr(request.state, "actor"):
        cached: Actor | None = request.state.actor
        return cached
    header = request.headers.get("authorization", "")
    actor: Actor | None = None
    if header.lower().startswith("bearer "):
        actor = await _actor_from_token(request, session, header[7:].strip())
    elif cookie := request.cookies.get(SESSION_COOKIE):
        try:
            actor = await _actor_from_cookie(request, session, cookie)
        except NotAuthenticated:
            actor = None
    request.state.actor = actor
    if actor is not None:
        current_locale.set(
            pick_locale(request.cookies.get(LOCALE_COOKIE), actor.locale, app_state(request).settings.default_locale)
        )
    return actor


async def any_actor(request: Request, session: Session) -> Actor:
    """Logged in, CSRF-checked; may still owe a password change."""
    actor = await optional_actor(request, session)
    if actor is None:
        raise NotAuthenticated("Please log in.")
    await _check_csrf(request, actor)
    return actor


async def current_actor(actor: Annotated[Actor, Depends(any_actor)], request: Request) -> Actor:
    if actor.must_change_password and not request.url.path.startswith(PASSWORD_CHANGE_PATHS):
        raise PasswordChangeRequired("Please choose a new password before you continue.")
    return actor


CurrentActor = Annotated[Actor, Depends(current_actor)]
AnyActor = Annotated[Actor, Depends(any_actor)]
OptionalActor = Annotated[Actor | None, Depends(optional_actor)]
