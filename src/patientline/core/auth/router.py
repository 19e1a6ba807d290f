"""Login, logout, who am I, own password, users (admin) and API tokens (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core.auth import service
from patientline.core.auth.actor import Actor
from patientline.core.auth.models import User
from patientline.core.auth.permissions import Permission
from patientline.core.auth.schemas import (
    LoginIn,
    MeRead,
    PasswordChangeIn,
    PasswordResetIn,
    TokenCreate,
    TokenCreated,
    TokenRead,
    UserCreate,
    UserRead,
    UserUpdate,
)
from patientline.core.config import Settings
from patientline.core.errors import DomainError
from patientline.core.validation import MAX_ID, PathId
from patientline.web.deps import SESSION_COOKIE, AnyActor, CurrentActor, Session, app_state, client_ip

router = APIRouter(prefix="/api", tags=["auth"])


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        max_age=settings.session_absolute_hours * 3600,
        path="/",
    )


async def login(request: Request, session: AsyncSession, *, username: str, password: str) -> tuple[str, Actor]:
    """Checks the credentials and opens a session. A failed attempt is committed too, so that the
    lockout counts it, and then re-raised."""
    settings = app_state(request).settings
    transaction = await session.begin()
    try:
        user = await service.authenticate(
            session, settings=settings, username=username, password=password, ip=client_ip(request)
        )
        token, row = await service.start_session(
            session, user=user, ip=client_ip(request), user_agent=request.headers.get("user-agent")
        )
        actor = await service.actor_for(session, user=user, csrf_token=row.csrf_token, session_hash=row.token_hash)
    except DomainError:
        await transaction.commit()  # the failure count and its audit row
        raise
    except BaseException:
        await transaction.rollback()
        raise
    await transaction.commit()
    return token, actor


@router.post("/auth/login", response_model=MeRead)
async def api_login(body: LoginIn, request: Request, response: Response, session: Session) -> MeRead:
    token, actor = await login(request, session, username=body.username, password=body.password)
    set_session_cookie(response, token, app_state(request).settings)
    return _me(actor)


def _me(actor: Actor) -> MeRead:
    return MeRead(
        id=actor.user_id,
        username=actor.username,
        display_name=actor.display_name,
        roles=list(actor.roles),
        permissions=sorted(actor.permissions),
        site_ids=sorted(actor.site_ids),
        department_ids=sorted(actor.department_ids),
        must_change_password=actor.must_change_password,
        csrf_token=actor.csrf_token,
        via=actor.via,
    )


@router.post("/auth/logout", status_code=204)
async def api_logout(actor: AnyActor, session: Session, response: Response) -> Response:
    if actor.session_hash:
        async with session.begin():
            await service.end_session(session, actor=actor)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/auth/me", response_model=MeRead)
async def api_me(actor: AnyActor) -> MeRead:
    return _me(actor)


@router.post("/auth/password", status_code=204)
async def api_change_password(body: PasswordChangeIn, actor: AnyActor, request: Request, session: Session) -> Response:
    async with session.begin():
        await service.change_own_password(
            session,
            actor=actor,
            settings=app_state(request).settings,
            current_password=body.current_password,
            new_password=body.new_password,
        )
    return Response(status_code=204)


# ---- users -------------------------------------------------------------------------------------


def _user_read(user: User, scope: tuple[list[int], list[int]]) -> UserRead:
    sites, departments = sorted(scope[0]), sorted(scope[1])
    return UserRead.model_validate(user).model_copy(update={"site_ids": sites, "department_ids": departments})


async def user_read(session: AsyncSession, user: User) -> UserRead:
    return _user_read(user, await service.user_scope(session, user_id=user.id))


@router.get("/users", response_model=list[UserRead])
async def api_list_users(
    actor: CurrentActor,
    session: Session,
    q: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[UserRead]:
    actor.require(Permission.MANAGE_USERS)
    users = await service.list_users(session, text=q, limit=limit, offset=offset)
    scopes = await service.user_scopes(session, user_ids=[u.id for u in users])
    return [_user_read(u, scopes[u.id]) for u in users]


@router.post("/users", response_model=UserRead, status_code=201)
async def api_create_user(body: UserCreate, actor: CurrentActor, request: Request, session: Session) -> UserRead:
    actor.require(Permission.MANAGE_USERS)
    async with session.begin():
        user = await service.create_user(
            session,
            actor=actor,
            settings=app_state(request).settings,
            username=body.username,
            display_name=body.display_name,
            password=body.password,
            roles=[r.value for r in body.roles],
            email=body.email,
            site_ids=body.site_ids,
            department_ids=body.department_ids,
            locale=body.locale,
        )
        return await user_read(session, user)


@router.get("/users/{user_id}", response_model=UserRead)
async def api_get_user(user_id: PathId, actor: CurrentActor, session: Session) -> UserRead:
    actor.require(Permission.MANAGE_USERS)
    return await user_read(session, await service.get_user(session, user_id=user_id))


@router.patch("/users/{user_id}", response_model=UserRead)
async def api_update_user(user_id: PathId, body: UserUpdate, actor: CurrentActor, session: Session) -> UserRead:
    actor.require(Permission.MANAGE_USERS)
    changes = body.model_dump(exclude_unset=True, exclude={"version"})
    if "roles" in changes and changes["roles"] is not None:
        changes["roles"] = [str(r) for r in changes["roles"]]
    async with session.begin():
        user = await service.update_user(
            session, actor=actor, user_id=user_id, expected_version=body.version, changes=changes
        )
        return await user_read(session, user)


@router.post("/users/{user_id}/reset-password", response_model=UserRead)
async def api_reset_password(
    user_id: PathId, body: PasswordResetIn, actor: CurrentActor, request: Request, session: Session
) -> UserRead:
    actor.require(Permission.MANAGE_USERS)
    async with session.begin():
        user = await service.reset_password(
            session, actor=actor, settings=app_state(request).settings, user_id=user_id, new_password=body.new_password
        )
        return await user_read(session, user)


# ---- API tokens --------------------------------------------------------------------------------


@router.get("/tokens", response_model=list[TokenRead])
async def api_list_tokens(actor: CurrentActor, session: Session) -> list[TokenRead]:
    actor.require(Permission.MANAGE_TOKENS)
    return [TokenRead.model_validate(t) for t in await service.list_tokens(session)]


@router.post("/tokens", response_model=TokenCreated, status_code=201)
async def api_create_token(body: TokenCreate, actor: CurrentActor, session: Session) -> TokenCreated:
    """The secret is shown in this answer only; store it in the integration's configuration."""
    actor.require(Permission.MANAGE_TOKENS)
    async with session.begin():
        secret, token = await service.create_token(
            session,
            actor=actor,
            name=body.name,
            scopes=[s.value for s in body.scopes],
            user_id=body.user_id or actor.user_id or 0,
            expires_at=body.expires_at,
        )
        return TokenCreated.model_validate({**TokenRead.model_validate(token).model_dump(), "secret": secret})


@router.delete("/tokens/{token_id}", response_model=TokenRead)
async def api_revoke_token(token_id: PathId, actor: CurrentActor, session: Session) -> TokenRead:
    actor.require(Permission.MANAGE_TOKENS)
    async with session.begin():
        return TokenRead.model_validate(await service.revoke_token(session, actor=actor, token_id=token_id))
