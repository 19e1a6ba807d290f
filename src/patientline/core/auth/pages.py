"""Login, logout and password pages (plain forms, so they work before any script loads)."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from patientline.core.auth import service
from patientline.core.auth.router import login, set_session_cookie
from patientline.core.errors import DomainError
from patientline.core.i18n import gettext
from patientline.web.deps import SESSION_COOKIE, AnyActor, OptionalActor, Session, app_state, safe_next
from patientline.web.templating import render

router = APIRouter(include_in_schema=False)

LOGIN_CSRF_COOKIE = "pl_csrf"


def _login_page(
    request: Request,
    *,
    error: str | None = None,
    username: str = "",
    next_: str = "/",
    status: int = 200,
    notice: str | None = None,
) -> Response:
    csrf = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        {"error": error, "username": username, "next": next_, "csrf_token": csrf, "notice": notice},
        status_code=status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="strict", secure=app_state(request).settings.secure_cookies
    )
    return response


@router.get("/login")
async def login_page(request: Request, actor: OptionalActor, next: str = "/") -> Response:
    if actor is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    notice = gettext("Your session has ended. Please log in again.") if request.query_params.get("ended") else None
    return _login_page(request, next_=safe_next(next), notice=notice)


@router.post("/login")
async def login_submit(
    request: Request,
    session: Session,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, csrf_token):
        return _login_page(
            request,
            error=gettext("The form has expired. Please try again."),
            username=username,
            next_=safe_next(next),
            status=403,
        )
    if not username or not password:
        return _login_page(
            request,
            error=gettext("Enter your user name and password."),
            username=username,
            next_=safe_next(next),
            status=422,
        )
    try:
        token, actor = await login(request, session, username=username, password=password)
    except DomainError as exc:
        return _login_page(
            request,
            error=exc.localized_message(gettext),
            username=username,
            next_=safe_next(next),
            status=exc.status_code,
        )
    target = "/password" if actor.must_change_password else safe_next(next)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, token, app_state(request).settings)
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
async def logout(actor: AnyActor, session: Session) -> Response:
    if actor.session_hash:
        async with session.begin():
            await service.end_session(session, actor=actor)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/password")
async def password_page(request: Request, actor: AnyActor) -> Response:
    return render(request, "password.html", {"min_length": app_state(request).settings.password_min_length})


@router.post("/password")
async def password_submit(
    request: Request,
    actor: AnyActor,
    session: Session,
    current_password: Annotated[str, Form(max_length=200)] = "",
    new_password: Annotated[str, Form(max_length=200)] = "",
    confirm_password: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    settings = app_state(request).settings
    context = {"min_length": settings.password_min_length}
    if new_password != confirm_password:
        return render(
            request, "password.html", context | {"error": gettext("The two new passwords differ.")}, status_code=422
        )
    try:
        async with session.begin():
            await service.change_own_password(
                session, actor=actor, settings=settings, current_password=current_password, new_password=new_password
            )
    except DomainError as exc:
        return render(
            request, "password.html", context | {"error": exc.localized_message(gettext)}, status_code=exc.status_code
        )
    return RedirectResponse("/", status_code=303)
