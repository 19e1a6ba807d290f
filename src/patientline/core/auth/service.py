"""Accounts, sessions, lockout, API tokens. Keyword-only, session first, never commits."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import audit, clock, events
from patientline.core.auth.actor import Actor
from patientline.core.auth.events import AccountLockedOut, SessionsChanged
from patientline.core.auth.models import ApiToken, User, UserSession, user_departments, user_sites
from patientline.core.auth.passwords import check_policy, hash_password, needs_rehash, verify_password
from patientline.core.auth.permissions import Permission, Role, permissions_for
from patientline.core.config import Settings
from patientline.core.db import Base
from patientline.core.errors import (
    Conflict,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    TooManyAttempts,
    require_version,
)

TOKEN_PREFIX = "plt_"  # noqa: S105 - a public prefix, not a secret
_DUMMY_HASH = hash_password("timing-equaliser-0")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def user_snapshot(user: User, site_ids: list[int], department_ids: list[int]) -> dict[str, Any]:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "roles": sorted(user.roles),
        "is_active": user.is_active,
        "locale": user.locale,
        "site_ids": sorted(site_ids),
        "department_ids": sorted(department_ids),
    }


REQUIRED_ON_UPDATE = ("display_name", "roles", "is_active", "site_ids", "department_ids")

# ---- users -------------------------------------------------------------------------------------


def _validate_roles(roles: list[str]) -> list[str]:
    allowed = {r.value for r in Role}
    unknown = [r for r in roles if r not in allowed]
    if unknown or not roles:
        raise InvalidInput("Choose at least one valid role.", details={"roles": unknown or ["required"]})
    return sorted(set(roles))


async def get_user(session: AsyncSession, *, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.", details={"user_id": user_id})
    return user


async def user_scopes(session: AsyncSession, *, user_ids: list[int]) -> dict[int, tuple[list[int], list[int]]]:
    """Sites and departments each user is limited to, for several users in two queries."""
    scopes: dict[int, tuple[list[int], list[int]]] = {uid: ([], []) for uid in user_ids}
    for user_id, site_id in await session.execute(
        select(user_sites.c.user_id, user_sites.c.site_id).where(user_sites.c.user_id.in_(user_ids))
    ):
        scopes[user_id][0].append(site_id)
    for user_id, department_id in await session.execute(
        select(user_departments.c.user_id, user_departments.c.department_id).where(
            user_departments.c.user_id.in_(user_ids)
        )
    ):
        scopes[user_id][1].append(department_id)
    return scopes


async def user_scope(session: AsyncSession, *, user_id: int) -> tuple[list[int], list[int]]:
    return (await user_scopes(session, user_ids=[user_id]))[user_id]


async def _require_existing(session: AsyncSession, *, table: str, ids: list[int], field: str) -> None:
    """Scope rows point at directory records; core reads their ids only, by table name."""
    if not ids:
        return
    column = Base.metadata.tables[table].c.id
    found = set(await session.scalars(select(column).where(column.in_(ids))))
    if missing := sorted(set(ids) - found):
        raise InvalidInput(
            "Some referenced records do not exist.", error_id="unknown_reference", details={"missing": {field: missing}}
        )


async def _set_scope(session: AsyncSession, *, user_id: int, site_ids: list[int], department_ids: list[int]) -> None:
    await _require_existing(session, table="sites", ids=site_ids, field="site_ids")
    await _require_existing(session, table="departments", ids=department_ids, field="department_ids")
    await session.execute(delete(user_sites).where(user_sites.c.user_id == user_id))
    await session.execute(delete(user_departments).where(user_departments.c.user_id == user_id))
    if site_ids:
        await session.execute(insert(user_sites), [{"user_id": user_id, "site_id": s} for s in set(site_ids)])
    if department_ids:
        await session.execute(
            insert(user_departments), [{"user_id": user_id, "department_id": d} for d in set(department_ids)]
        )


async def find_user_id(session: AsyncSession, *, username: str) -> int | None:
    return await session.scalar(select(User.id).where(func.lower(User.username) == username.strip().lower()))


async def usernames(session: AsyncSession) -> dict[int, str]:
    return dict((await session.execute(select(User.id, User.username))).tuples().all())


async def list_users(
    session: AsyncSession, *, text: str | None = None, limit: int = 200, offset: int = 0
) -> list[User]:
    query = select(User).order_by(User.username).limit(limit).offset(offset)
    if text:
        pattern = f"%{text}%"
        query = query.where(User.username.ilike(pattern) | User.display_name.ilike(pattern))
    return list(await session.scalars(query))


async def create_user(
    session: AsyncSession,
    *,
    actor: Actor,
    settings: Settings,
    username: str,
    display_name: str,
    password: str,
    roles: list[str],
    email: str | None = None,
    site_ids: list[int] | None = None,
    department_ids: list[int] | None = None,
    must_change_password: bool = True,
    locale: str | None = None,
) -> User:
    username = username.strip().lower()
    if await session.scalar(select(User.id).where(func.lower(User.username) == username)):
        raise Conflict(
            "A user with this name already exists.", details={"username": username}, error_id="duplicate_username"
        )
    check_policy(password, username=username, min_length=settings.password_min_length)
    user = User(
        username=username,
        display_name=display_name.strip(),
        email=email,
        roles=_validate_roles(roles),
        password_hash=await asyncio.to_thread(hash_password, password),
        must_change_password=must_change_password,
        locale=locale,
        password_changed_at=clock.now(),
    )
    session.add(user)
    await session.flush()
    await _set_scope(session, user_id=user.id, site_ids=site_ids or [], department_ids=department_ids or [])
    audit.record(
        session,
        actor=actor,
        action="user.create",
        target_type="user",
        target_id=user.id,
        after=user_snapshot(user, site_ids or [], department_ids or []),
    )
    return user


async def update_user(
    session: AsyncSession,
    *,
    actor: Actor,
    user_id: int,
    expected_version: int,
    changes: dict[str, Any],
) -> User:
    """`changes` may hold display_name, email, roles, locale, site_ids, department_ids, is_active."""
    user = await get_user(session, user_id=user_id)
    require_version(expected=expected_version, current=user.version)
    if empty := sorted(k for k in REQUIRED_ON_UPDATE if k in changes and changes[k] is None):
        raise InvalidInput("Some fields cannot be empty.", details={k: ["required"] for k in empty})
    sites, departments = await user_scope(session, user_id=user_id)
    before = user_snapshot(user, sites, departments)
    if "roles" in changes:
        changes["roles"] = _validate_roles(changes["roles"])
    if changes.get("is_active") is False and user.id == actor.user_id:
        raise Conflict("You cannot disable your own account.", error_id="cannot_disable_self")
    for key in ("display_name", "email", "roles", "locale", "is_active"):
        if key in changes:
            setattr(user, key, changes[key])
    sites = changes.get("site_ids", sites)
    departments = changes.get("department_ids", departments)
    await _set_scope(session, user_id=user_id, site_ids=sites, department_ids=departments)
    if changes.get("is_active") is False:
        await revoke_sessions(session, user_id=user_id)
    await session.flush()
    old, new = audit.changed_fields(before, user_snapshot(user, sites, departments))
    audit.record(
        session, actor=actor, action="user.update", target_type="user", target_id=user.id, before=old, after=new
    )
    events.record(session, SessionsChanged.for_user(user.id))
    return user


async def reset_password(
    session: AsyncSession, *, actor: Actor, settings: Settings, user_id: int, new_password: str
) -> User:
    """An admin sets a one-time password; the user must choose a new one at next login."""
    user = await get_user(session, user_id=user_id)
    check_policy(new_password, username=user.username, min_length=settings.password_min_length)
    user.password_hash = await asyncio.to_thread(hash_password, new_password)
    user.must_change_password = True
    user.failed_logins = 0
    user.locked_until = None
    user.password_changed_at = clock.now()
    await revoke_sessions(session, user_id=user_id)
    audit.record(session, actor=actor, action="user.reset_password", target_type="user", target_id=user.id)
    return user


async def change_own_password(
    session: AsyncSession, *, actor: Actor, settings: Settings, current_password: str, new_password: str
) -> User:
    assert actor.user_id is not None  # noqa: S101 - only session actors reach this
    user = await get_user(session, user_id=actor.user_id)
    if not await asyncio.to_thread(verify_password, user.password_hash, current_password):
        raise InvalidInput(
            "The current password is not correct.", error_id="wrong_password", details={"current_password": ["wrong"]}
        )
    if current_password == new_password:
        raise InvalidInput(
            "Choose a password different from the current one.",
            error_id="same_password",
            details={"new_password": ["same_as_current"]},
        )
    check_policy(new_password, username=user.username, min_length=settings.password_min_length)
    user.password_hash = await asyncio.to_thread(hash_password, new_password)
    user.must_change_password = False
    user.password_changed_at = clock.now()
    await session.execute(
        delete(UserSession).where(UserSession.user_id == user.id, UserSession.token_hash != actor.session_hash)
    )
    audit.record(session, actor=actor, action="user.change_password", target_type="user", target_id=user.id)
    events.record(session, SessionsChanged.for_user(user.id))
    return user


# ---- login, lockout, sessions ------------------------------------------------------------------


async def authenticate(
    session: AsyncSession, *, settings: Settings, username: str, password: str, ip: str | None
) -> User:
    """Checks the password with lockout after repeated failures. Writes the failure count, so the
    caller commits even when this raises. Login bookkeeping is written with plain UPDATEs: it is not an
    edit of the account and must not make an administrator's open form stale."""
    user = await session.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))
    now = clock.now()
    if user is None:
        await asyncio.to_thread(verify_password, _DUMMY_HASH, password)  # same cost: no enumeration by timing
        raise NotAuthenticated("Wrong user name or password.", error_id="bad_credentials")
    if user.locked_until and user.locked_until > now:
        raise TooManyAttempts(
            "Too many failed attempts. This account is locked until {until}.",
            params={"until": user.locked_until.isoformat(timespec="minutes")},
            details={"locked_until": user.locked_until.isoformat()},
        )
    if not await asyncio.to_thread(verify_password, user.password_hash, password) or not user.is_active:
        await _count_failure(session, user=user, settings=settings, now=now, ip=ip)
        raise NotAuthenticated("Wrong user name or password.", error_id="bad_credentials")
    values: dict[str, Any] = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
    if needs_rehash(user.password_hash):
        values["password_hash"] = await asyncio.to_thread(hash_password, password)
    await session.execute(update(User).where(User.id == user.id).values(**values))
    await session.refresh(user)
    return user


async def _count_failure(
    session: AsyncSession, *, user: User, settings: Settings, now: datetime, ip: str | None
) -> None:
    """Counted in one UPDATE, so attempts sent in parallel cannot slip past the lockout."""
    failures = await session.scalar(
        update(User)
        .where(User.id == user.id)
        .values(failed_logins=User.failed_logins + 1)
        .returning(User.failed_logins)
    )
    system = Actor(
        user_id=None,
        username=user.username,
        display_name=user.display_name,
        roles=(),
        permissions=frozenset(),
        via="login",
        ip=ip,
    )
    audit.record(session, actor=system, action="auth.login_failed", target_type="user", target_id=user.id)
    if (failures or 0) < settings.lockout_failures:
        return
    locked_until = now + timedelta(minutes=settings.lockout_minutes)
    await session.execute(update(User).where(User.id == user.id).values(locked_until=locked_until, failed_logins=0))
    audit.record(
        session,
        actor=system,
        action="auth.locked_out",
        target_type="user",
        target_id=user.id,
        after={"locked_until": locked_until},
    )
    events.record(
        session,
        AccountLockedOut(
            user_id=user.id,
            username=user.username,
            locked_until=locked_until.isoformat(timespec="minutes"),
            audience=events.Audience(permission=Permission.MANAGE_USERS.value),
        ),
    )


async def start_session(
    session: AsyncSession, *, user: User, ip: str | None, user_agent: str | None
) -> tuple[str, UserSession]:
    """Returns the cookie token (shown once) and the stored session."""
    token = secrets.token_urlsafe(32)
    row = UserSession(
        token_hash=token_hash(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=clock.now(),
        last_seen_at=clock.now(),
        ip=ip,
        user_agent=(user_agent or "")[:300],
    )
    session.add(row)
    login = Actor(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        roles=tuple(user.roles),
        permissions=frozenset(),
        ip=ip,
    )
    audit.record(session, actor=login, action="auth.login", target_type="user", target_id=user.id)
    return token, row


def session_expired(row: UserSession, *, settings: Settings, now: datetime) -> bool:
    idle = now - row.last_seen_at > timedelta(minutes=settings.session_idle_minutes)
    absolute = now - row.created_at > timedelta(hours=settings.session_absolute_hours)
    return idle or absolute


async def resolve_session(session: AsyncSession, *, settings: Settings, token: str) -> tuple[UserSession, User]:
    hashed = token_hash(token)
    row = await session.get(UserSession, hashed)
    if row is None:
        raise NotAuthenticated("Please log in.", error_id="session_missing")
    if session_expired(row, settings=settings, now=clock.now()):  # the sweeper deletes the row
        raise NotAuthenticated("Your session has expired. Please log in again.", error_id="session_expired")
    user = await session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise NotAuthenticated("Please log in.", error_id="session_missing")
    return row, user


def touch_session(row: UserSession, *, now: datetime) -> bool:
    """Moves the idle deadline at most once a minute, so reads stay reads."""
    if now - row.last_seen_at >= timedelta(minutes=1):
        row.last_seen_at = now
        return True
    return False


async def end_session(session: AsyncSession, *, actor: Actor) -> None:
    """Logout: this session only."""
    await session.execute(delete(UserSession).where(UserSession.token_hash == actor.session_hash))
    if actor.user_id is not None:
        events.record(session, SessionsChanged.for_user(actor.user_id))


async def revoke_sessions(session: AsyncSession, *, user_id: int) -> None:
    await session.execute(delete(UserSession).where(UserSession.user_id == user_id))
    events.record(session, SessionsChanged.for_user(user_id))


async def purge_expired_sessions(session: AsyncSession, *, settings: Settings) -> int:
    now = clock.now()
    idle_cutoff = now - timedelta(minutes=settings.session_idle_minutes)
    absolute_cutoff = now - timedelta(hours=settings.session_absolute_hours)
    result = await session.execute(
        delete(UserSession).where((UserSession.last_seen_at < idle_cutoff) | (UserSession.created_at < absolute_cutoff))
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def actor_for(session: AsyncSession, *, user: User, **extra: Any) -> Actor:
    sites, departments = await user_scope(session, user_id=user.id)
    return Actor(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        roles=tuple(user.roles),
        permissions=permissions_for(user.roles),
        site_ids=frozenset(sites),
        department_ids=frozenset(departments),
        locale=user.locale,
        must_change_password=user.must_change_password,
        **extra,
    )


# ---- API tokens --------------------------------------------------------------------------------


def _validate_scopes(scopes: list[str]) -> list[str]:
    known = {p.value for p in Permission}
    unknown = [s for s in scopes if s not in known]
    if unknown or not scopes:
        raise InvalidInput("Choose at least one valid scope.", details={"scopes": unknown or ["required"]})
    return sorted(set(scopes))


async def create_token(
    session: AsyncSession,
    *,
    actor: Actor,
    name: str,
    scopes: list[str],
    user_id: int,
    expires_at: datetime | None = None,
) -> tuple[str, ApiToken]:
    """Returns the secret (shown once) and the stored token."""
    if actor.via != "session":
        raise PermissionDenied("API tokens are created by a person, not by another token.", error_id="token_by_token")
    owner = await get_user(session, user_id=user_id)
    scopes = _validate_scopes(scopes)
    beyond = sorted(set(scopes) - (permissions_for(owner.roles) & actor.permissions))
    if beyond:
        raise InvalidInput("A token cannot have scopes that its user or you do not have.", details={"scopes": beyond})
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name.strip(),
        prefix=secret[:12],
        token_hash=token_hash(secret),
        user_id=owner.id,
        scopes=scopes,
        expires_at=expires_at,
    )
    session.add(token)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="token.create",
        target_type="api_token",
        target_id=token.id,
        after={"name": token.name, "user_id": owner.id, "scopes": scopes, "expires_at": expires_at},
    )
    return secret, token


async def list_tokens(session: AsyncSession) -> list[ApiToken]:
    return list(await session.scalars(select(ApiToken).order_by(ApiToken.id.desc())))


async def revoke_token(session: AsyncSession, *, actor: Actor, token_id: int) -> ApiToken:
    token = await session.get(ApiToken, token_id)
    if token is None:
        raise NotFound("No such token.", details={"token_id": token_id})
    if token.revoked_at is None:
        token.revoked_at = clock.now()
        audit.record(session, actor=actor, action="token.revoke", target_type="api_token", target_id=token.id)
    return token


async def resolve_token(session: AsyncSession, *, secret: str) -> tuple[ApiToken, User]:
    token = await session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(secret)))
    now = clock.now()
    if token is None or token.revoked_at or (token.expires_at and token.expires_at <= now):
        raise NotAuthenticated("The API token is not valid.", error_id="bad_token")
    user = await session.get(User, token.user_id)
    if user is None or not user.is_active:
        raise NotAuthenticated("The API token is not valid.", error_id="bad_token")
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now
    return token, user
