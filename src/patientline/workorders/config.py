"""What admins configure: work-order types (form, categories, default department, deadline policy, SMS
templates) and each department's notification contact. Changing a policy recomputes open orders."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.channels import sms_templates
from patientline.core import audit, jobs
from patientline.core.auth.actor import Actor
from patientline.core.auth.models import User
from patientline.core.auth.permissions import Permission
from patientline.core.db import flush_or_conflict
from patientline.core.errors import Conflict, InvalidInput, NotFound, require_version
from patientline.core.i18n import gettext
from patientline.directory.models import Department
from patientline.workorders import notify
from patientline.workorders.models import DepartmentContact, WorkOrderType
from patientline.workorders.scheduled import RECOMPUTE_JOB
from patientline.workorders.schemas import DepartmentContactIn, TypeCreate, TypeUpdate


def _snapshot(row: WorkOrderType) -> dict[str, Any]:
    columns = ("code", "name", "group", "fields", "categories", "default_department_id", "policy", "sms_templates",
               "position", "is_active")  # fmt: skip
    return {key: getattr(row, key) for key in columns}


async def list_types(session: AsyncSession, *, active_only: bool = False) -> list[WorkOrderType]:
    query = select(WorkOrderType).order_by(WorkOrderType.position, WorkOrderType.id)
    if active_only:
        query = query.where(WorkOrderType.is_active)
    return list(await session.scalars(query))


async def find_type(session: AsyncSession, code: str) -> WorkOrderType | None:
    return await session.scalar(select(WorkOrderType).where(WorkOrderType.code == code))


async def _check(session: AsyncSession, data: TypeCreate, own_id: int | None) -> None:
    existing = await find_type(session, data.code)
    if existing is not None and existing.id != own_id:
        raise Conflict("A type with code {code} exists already.", params={"code": data.code}, error_id="duplicate_code")
    if data.default_department_id is not None:
        department = await session.get(Department, data.default_department_id)
        if department is None or not department.is_active:
            raise InvalidInput(
                "Choose an active department.",
                details=[{"field": "default_department_id", "problem": "unknown_department",
                          "message": gettext("Choose an active department.")}],
            )  # fmt: skip
    await _check_templates(session, data)


async def _check_templates(session: AsyncSession, data: TypeCreate) -> None:
    problems = []
    for moment, code in data.sms_templates.items():
        template = await sms_templates.find_template(session, code=code)
        unknown = sorted(set(template.variables) - notify.VARIABLES) if template else []
        if template is None:
            message = gettext("There is no SMS template {code}.").format(code=code)
        elif unknown:
            message = gettext("Work orders cannot fill: {names}.").format(names=", ".join(unknown))
        else:
            continue
        problems.append({"field": f"sms_templates.{moment}", "problem": "template", "message": message})
    if problems:
        raise InvalidInput("Some SMS templates cannot be used for work orders.", details=problems)


def _values(data: TypeCreate) -> dict[str, Any]:
    values = data.model_dump(exclude={"version"}, mode="json")
    values["group"] = data.group.value
    return values


async def create_type(session: AsyncSession, *, actor: Actor, data: TypeCreate) -> WorkOrderType:
    actor.require(Permission.CONFIGURE_WORK_ORDERS)
    await _check(session, data, None)
    row = WorkOrderType(**_values(data))
    session.add(row)
    await flush_or_conflict(session)
    audit.record(session, actor=actor, action="workorders.type.create", target_type="wo_type", target_id=row.id,
                 after=_snapshot(row))  # fmt: skip
    return row


async def update_type(session: AsyncSession, *, actor: Actor, type_id: int, data: TypeUpdate) -> WorkOrderType:
    actor.require(Permission.CONFIGURE_WORK_ORDERS)
    row = await session.get(WorkOrderType, type_id)
    if row is None:
        raise NotFound("No such work-order type.", details={"id": type_id})
    require_version(expected=data.version, current=row.version)
    await _check(session, data, row.id)
    before = _snapshot(row)
    for key, value in _values(data).items():
        setattr(row, key, value)
    await flush_or_conflict(session)
    changed_before, changed_after = audit.changed_fields(before, _snapshot(row))
    audit.record(session, actor=actor, action="workorders.type.update", target_type="wo_type", target_id=row.id,
                 before=changed_before, after=changed_after)  # fmt: skip
    if before["policy"] != row.policy:
        await jobs.enqueue(session, kind=RECOMPUTE_JOB, payload={})
    return row


async def department_contacts(session: AsyncSession) -> list[DepartmentContact]:
    return list(await session.scalars(select(DepartmentContact).order_by(DepartmentContact.department_id)))


async def set_department_contact(
    session: AsyncSession, *, actor: Actor, department_id: int, data: DepartmentContactIn
) -> DepartmentContact:
    actor.require(Permission.CONFIGURE_WORK_ORDERS)
    if await session.get(Department, department_id) is None:
        raise NotFound("No such department.", details={"id": department_id})
    if data.head_user_id is not None and await session.get(User, data.head_user_id) is None:
        raise InvalidInput("No such user.", details=[{"field": "head_user_id", "problem": "unknown_user",
                                                      "message": gettext("No such user.")}])  # fmt: skip
    row = await session.get(DepartmentContact, department_id)
    before = None
    if row is None:
        row = DepartmentContact(department_id=department_id)
        session.add(row)
    else:
        if data.version is None:
            problem = {"field": "version", "problem": "missing", "message": gettext("This field is required.")}
            raise InvalidInput("Send the version you edited.", details=[problem])
        require_version(expected=data.version, current=row.version)
        before = {"sms_phone": row.sms_phone, "email": row.email, "head_user_id": row.head_user_id}
    row.sms_phone, row.email, row.head_user_id = data.sms_phone, data.email, data.head_user_id
    await flush_or_conflict(session)
    audit.record(session, actor=actor, action="workorders.department_contact.set", target_type="department",
                 target_id=department_id, before=before,
                 after={"sms_phone": row.sms_phone, "email": row.email, "head_user_id": row.head_user_id})  # fmt: skip
    return row
