"""Who may see and act on an order: the centre sees every order, a department its own and those it
co-handles; the responsible department's handlers do the department's steps."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.errors import NotFound, PermissionDenied
from patientline.workorders.models import CoHandler, WorkOrder

CENTRE_READERS = (Permission.CREATE_WORK_ORDERS, Permission.SUPERVISE, Permission.READ_WORK_ORDER_REPORTS)


def sees_everything(actor: Actor) -> bool:
    return any(actor.can(permission) for permission in CENTRE_READERS)


def is_department_handler(actor: Actor, department_id: int | None) -> bool:
    if not actor.can(Permission.HANDLE_DEPARTMENT_WORK) or department_id is None:
        return False
    return actor.is_unscoped or department_id in actor.department_ids


async def co_handlers(session: AsyncSession, order_id: int) -> list[int]:
    rows = await session.scalars(select(CoHandler.department_id).where(CoHandler.order_id == order_id))
    return sorted(rows)


async def require_read(session: AsyncSession, actor: Actor, order: WorkOrder) -> None:
    """Unseen orders answer 404, as if they did not exist."""
    if sees_everything(actor) or is_department_handler(actor, order.department_id):
        return
    if actor.can(Permission.HANDLE_DEPARTMENT_WORK):
        shared = await co_handlers(session, order.id)
        if any(is_department_handler(actor, department_id) for department_id in shared):
            return
    raise NotFound("No such work order.", details={"id": order.id})


def require_handler(actor: Actor, order: WorkOrder) -> None:
    if not is_department_handler(actor, order.department_id):
        raise PermissionDenied(
            "Only the responsible department's handlers can do this.",
            details={"permission": Permission.HANDLE_DEPARTMENT_WORK.value},
        )
