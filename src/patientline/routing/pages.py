"""Routing pages: the supervisor's wallboard and the administrator's queues (settings, members with
tiers, agents' routing profiles). The pages only read; their scripts send JSON to /api/routing and the
wallboard follows the live figures there. The agent bar lives in the shell (web/templates/layout.html)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core.auth.models import User
from patientline.core.auth.permissions import Permission
from patientline.core.i18n import N_
from patientline.core.validation import PathId
from patientline.directory import service as directory
from patientline.routing import service
from patientline.routing.models import AgentProfile, QueueMember, RoutingQueue
from patientline.routing.schemas import QueueCreate, QueueMembership, QueueRead
from patientline.web.deps import CurrentActor, Session
from patientline.web.templating import render

router = APIRouter(prefix="/routing", include_in_schema=False)

KIND_LABELS = {
    "skill_group": N_("Skill group"),
    "department_seats": N_("Department seat group"),
    "expert_centre": N_("Shared expert centre (all sites)"),
}
STRATEGY_LABELS = {
    "longest_idle": N_("Longest idle agent"),
    "fewest_today": N_("Fewest contacts today"),
    "round_robin": N_("Round robin"),
    "best_skill": N_("Best skill level"),
}
WRAP_UP_LABELS = {
    "none": N_("No wrap-up"),
    "mandatory": N_("Mandatory, for a set time"),
    "on_request": N_("When the agent asks, up to a set time"),
}
CHANNELS = ("voice", "chat", "callback")


@router.get("/wallboard")
async def wallboard_page(request: Request, actor: CurrentActor) -> Response:
    actor.require(Permission.SUPERVISE)
    return render(request, "routing/wallboard.html", {"can_configure": actor.can(Permission.CONFIGURE_ROUTING)})


# --- queue administration ----------------------------------------------------------------------------


async def _member_counts(session: AsyncSession) -> dict[int, int]:
    rows = await session.execute(select(QueueMember.queue_id, func.count()).group_by(QueueMember.queue_id))
    return {queue_id: count for queue_id, count in rows.tuples()}


def _profile_json(user: User, row: AgentProfile | None, queues: list[QueueMembership]) -> dict[str, Any]:
    """An agent's profile as the editor starts from: the defaults until one is saved."""
    return {
        "user_id": user.id,
        "name": user.display_name,
        "username": user.username,
        "capacities": dict(row.capacities) if row else dict(service.DEFAULT_CAPACITIES),
        "extension": row.extension if row else None,
        "auto_answer": row.auto_answer if row else False,
        "version": row.version if row else None,
        "queues": [m.model_dump() for m in queues],
    }


async def _profiles(session: AsyncSession, agents: list[User]) -> list[dict[str, Any]]:
    ids = [user.id for user in agents]
    rows = await session.scalars(select(AgentProfile).where(AgentProfile.user_id.in_(ids)))
    saved = {row.user_id: row for row in rows}
    queues = await service.memberships(session, user_ids=ids)
    return [_profile_json(user, saved.get(user.id), queues[user.id]) for user in agents]


@router.get("/queues")
async def queues_page(request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.CONFIGURE_ROUTING)
    queues = await service.list_queues(session)
    agents = await service.contact_handlers(session)
    return render(
        request,
        "routing/queues.html",
        {
            "queues": queues,
            "queue_names": {row.id: row.name for row in queues},
            "member_counts": await _member_counts(session),
            "profiles": await _profiles(session, agents),
            "channels": CHANNELS,
            "kind_labels": KIND_LABELS,
            "strategy_labels": STRATEGY_LABELS,
            "wrap_up_labels": WRAP_UP_LABELS,
        },
    )


def _new_queue() -> dict[str, Any]:
    fields = {name: field.get_default(call_default_factory=True) for name, field in QueueCreate.model_fields.items()}
    return fields | {"code": "", "name": "", "id": None, "version": None}


async def _skill_choices(session: AsyncSession) -> list[tuple[str, str]]:
    skills = await directory.list_entities(session, kind=directory.SKILLS)
    return [(skill.code, skill.name) for skill in skills if skill.is_active]


async def _queue_form(request: Request, session: AsyncSession, row: RoutingQueue | None) -> Response:
    queues = await service.list_queues(session)
    members = await service.list_members(session, queue_id=row.id) if row else []
    agents = await service.contact_handlers(session)
    data = {
        "queue": QueueRead.model_validate(row).model_dump(mode="json") if row else _new_queue(),
        "members": [{"user_id": m["user_id"], "tier": m["tier"]} for m in members],
        "agents": [{"id": user.id, "name": f"{user.display_name} ({user.username})"} for user in agents],
    }
    return render(
        request,
        "routing/queues_form.html",
        {
            "row": row,
            "data": data,
            "overflow_choices": [(q.id, f"{q.name} ({q.code})") for q in queues if row is None or q.id != row.id],
            "skills": await _skill_choices(session),
            "teams": [(t.id, t.name) for t in await directory.list_entities(session, kind=directory.TEAMS)],
            "sites": await directory.site_choices(session),
            "kind_labels": KIND_LABELS,
            "strategy_labels": STRATEGY_LABELS,
            "wrap_up_labels": WRAP_UP_LABELS,
        },
    )


@router.get("/queues/new")
async def new_queue_page(request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.CONFIGURE_ROUTING)
    return await _queue_form(request, session, None)


@router.get("/queues/{queue_id}")
async def edit_queue_page(queue_id: PathId, request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.CONFIGURE_ROUTING)
    return await _queue_form(request, session, await service.get_queue(session, queue_id=queue_id))
