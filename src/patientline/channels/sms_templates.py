"""SMS templates: `{variable}` placeholders that must be declared, rendering, and their upkeep
(audited, optimistic locking by version). Callers name templates by code, so a code never changes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from string import Formatter
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.channels.models import SmsMessage, SmsTemplate
from patientline.core import audit
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.db import flush_or_conflict
from patientline.core.errors import Conflict, InvalidInput, NotFound, require_version
from patientline.core.validation import CONTROL_CHARACTERS

MAX_BODY = 500
MAX_VALUE = 200
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
AUDITED = ("code", "name", "body", "variables", "provider_template_code", "audience", "is_active")


def placeholders(body: str) -> list[str]:
    """The names in `{name}`; `{{` and `}}` are literal braces."""
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in Formatter().parse(body) if name is not None]
    except ValueError as exc:
        raise InvalidInput(
            "A brace is not closed; write {{ or }} for a brace itself.", details={"body": ["braces"]}
        ) from exc
    for name, spec, conversion in fields:
        if not NAME.fullmatch(name) or spec or conversion:
            raise InvalidInput(
                "Write placeholders as {{name}} with letters, digits and _ only.", details={"body": ["placeholder"]}
            )
    return list(dict.fromkeys(name for name, _, _ in fields))


def check(body: str, variables: list[str]) -> None:
    if not body.strip():
        raise InvalidInput("Write the text of the template.", details={"body": ["required"]})
    if len(body) > MAX_BODY:
        raise InvalidInput(
            "Keep the text to {limit} characters.", params={"limit": MAX_BODY}, details={"body": ["too_long"]}
        )
    undeclared = [name for name in placeholders(body) if name not in variables]
    if undeclared:
        raise InvalidInput(
            "Declare every placeholder as a variable: {names}.",
            params={"names": ", ".join(undeclared)},
            details={"variables": undeclared},
        )


def render(template: SmsTemplate, variables: Mapping[str, object]) -> tuple[str, dict[str, str]]:
    """The text and the declared variables it used; a missing or unusable value is a 422."""
    values: dict[str, str] = {}
    for name in template.variables:
        if name in variables and variables[name] is not None:
            values[name] = _value(name, str(variables[name]).strip())
    missing = [name for name in placeholders(template.body) if not values.get(name)]
    if missing:
        raise InvalidInput(
            "The template {template} needs values for: {names}.",
            params={"template": template.code, "names": ", ".join(missing)},
            details={"variables": missing},
        )
    return template.body.format_map(values), values


def _value(name: str, value: str) -> str:
    if len(value) > MAX_VALUE or CONTROL_CHARACTERS.search(value):
        raise InvalidInput(
            "The value of {name} is too long or holds control characters.",
            params={"name": name},
            details={"variables": [name]},
        )
    return value


async def list_templates(session: AsyncSession) -> list[SmsTemplate]:
    return list(await session.scalars(select(SmsTemplate).order_by(SmsTemplate.code)))


async def get_template(session: AsyncSession, *, template_id: int) -> SmsTemplate:
    row = await session.get(SmsTemplate, template_id)
    if row is None:
        raise NotFound("This SMS template does not exist.", details={"template_id": template_id})
    return row


async def find_template(session: AsyncSession, *, code: str) -> SmsTemplate | None:
    return await session.scalar(select(SmsTemplate).where(SmsTemplate.code == code))


def _snapshot(row: SmsTemplate) -> dict[str, Any]:
    return {key: getattr(row, key) for key in AUDITED}


async def create_template(session: AsyncSession, *, actor: Actor, values: dict[str, Any]) -> SmsTemplate:
    actor.require(Permission.MANAGE_MESSAGING)
    check(values["body"], values.get("variables", []))
    if await find_template(session, code=values["code"]) is not None:
        raise Conflict(
            "An SMS template with this code exists already.", error_id="duplicate_code", details={"code": ["taken"]}
        )
    row = SmsTemplate(**values, version=1)
    session.add(row)
    await flush_or_conflict(session)
    audit.record(
        session,
        actor=actor,
        action="sms.template.create",
        target_type="sms_template",
        target_id=row.id,
        after=_snapshot(row),
    )
    return row


async def update_template(
    session: AsyncSession, *, actor: Actor, template_id: int, expected_version: int, values: dict[str, Any]
) -> SmsTemplate:
    actor.require(Permission.MANAGE_MESSAGING)
    row = await get_template(session, template_id=template_id)
    require_version(expected=expected_version, current=row.version)
    check(values.get("body", row.body), values.get("variables", row.variables))
    before = _snapshot(row)
    for key, value in values.items():
        setattr(row, key, value)
    await flush_or_conflict(session)
    old, new = audit.changed_fields(before, _snapshot(row))
    audit.record(
        session,
        actor=actor,
        action="sms.template.update",
        target_type="sms_template",
        target_id=row.id,
        before=old,
        after=new,
    )
    return row


async def delete_template(session: AsyncSession, *, actor: Actor, template_id: int) -> None:
    """Only a template nothing was sent with: history keeps its code, so deactivate a used one."""
    actor.require(Permission.MANAGE_MESSAGING)
    row = await get_template(session, template_id=template_id)
    if await session.scalar(select(exists().where(SmsMessage.template_code == row.code))):
        raise Conflict("Messages were sent with this template; deactivate it instead.", error_id="template_in_use")
    before = _snapshot(row)
    await session.delete(row)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="sms.template.delete",
        target_type="sms_template",
        target_id=template_id,
        before=before,
    )
