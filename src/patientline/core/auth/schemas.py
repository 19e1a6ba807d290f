from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, FutureDatetime, StringConstraints

from patientline.core.auth.permissions import Permission, Role
from patientline.core.validation import DbId, ReadModel, StrictModel, Version

Username = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_lower=True, min_length=2, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
    ),
]
Password = Annotated[str, StringConstraints(min_length=1, max_length=200)]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Locale = Annotated[str, StringConstraints(pattern=r"^(zh_CN|en)$")]


class LoginIn(StrictModel):
    username: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    password: Password


class PasswordChangeIn(StrictModel):
    current_password: Password
    new_password: Password


class UserCreate(StrictModel):
    username: Username
    display_name: DisplayName
    password: Password
    roles: list[Role] = Field(min_length=1)
    email: Email | None = None
    locale: Locale | None = None
    site_ids: list[DbId] = []
    department_ids: list[DbId] = []


class UserUpdate(StrictModel):
    version: Version
    display_name: DisplayName | None = None
    email: Email | None = None
    roles: list[Role] | None = Field(default=None, min_length=1)
    locale: Locale | None = None
    is_active: bool | None = None
    site_ids: list[DbId] | None = None
    department_ids: list[DbId] | None = None


class PasswordResetIn(StrictModel):
    new_password: Password


class UserRead(ReadModel):
    id: int
    username: str
    display_name: str
    email: str | None
    roles: list[str]
    is_active: bool
    locale: str | None
    must_change_password: bool
    locked_until: datetime | None
    last_login_at: datetime | None
    version: int
    site_ids: list[int] = []
    department_ids: list[int] = []


class MeRead(StrictModel):
    id: int | None
    username: str
    display_name: str
    roles: list[str]
    permissions: list[str]
    site_ids: list[int]
    department_ids: list[int]
    must_change_password: bool
    csrf_token: str | None
    via: str


class TokenCreate(StrictModel):
    name: DisplayName
    scopes: list[Permission] = Field(min_length=1)
    user_id: DbId | None = None
    expires_at: FutureDatetime | None = None


class TokenRead(ReadModel):
    id: int
    name: str
    prefix: str
    user_id: int
    scopes: list[str]
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


class TokenCreated(TokenRead):
    secret: str
