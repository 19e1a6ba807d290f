"""Routing configuration: queues, their members with tiers, and agents' profiles (capacities per
channel). Every change is checked, audited and announced (`routing.configured`) so the node running
the router applies it to the live core. Also the readers that turn these rows into the core's
configuration."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import audit, events
from patientline.core.auth.actor import Actor
from patientline.core.auth.models import User
from patientline.core.auth.permissions import Permission, permissions_for
from patientline.core.db import flush_or_conflict
from patientline.core.errors import Conflict, InvalidInput, NotFound, require_version
from patientline.core.i18n import N_, gettext
from patientline.directory.models import Site, Skill, Staff, StaffSkill, Team
from patientline.routing import core
from patientline.routing.events import CONFIGURERS, RoutingConfigured
from patientline.routing.models import AgentProfile, QueueMember, RoutingQueue, RoutingTask, TaskState
from patientline.routing.schemas import MemberIn, ProfileIn, QueueCreate, QueueMembership, QueueUpdate

DEFAULT_CAPACITIES = {"voice": 1, "chat": 3, "callback": 1}
QUEUE_COLUMNS = tuple(QueueCreate.model_fields)


def _problem(field: str, problem: str, message: str) -> dict[str, str]:
    return {"field": field, "problem": problem, "message": gettext(message)}


def _announce(session: AsyncSession, what: Literal["queue", "members", "profile"], id_: int) -> None:
    events.record(session, RoutingConfigured(what=what, id=id_, audience=CONFIGURERS))


# --- queues ----------------------------------------------------------------------------------------


def queue_snapshot(row: RoutingQueue) -> dict[str, Any]:
    return {key: getattr(row, key) for key in QUEUE_COLUMNS}


async def contact_handlers(session: AsyncSession) -> list[User]:
    """Active users who handle contacts, by name: the people a queue can route to and a call can reach."""
    users = await session.scalars(select(User).where(User.is_active.is_(True)).order_by(User.display_name))
    return [user for user in users if Permission.HANDLE_CONTACTS in permissions_for(user.roles)]


async def list_queues(session: AsyncSession) -> list[RoutingQueue]:
    return list(await session.scalars(select(RoutingQueue).order_by(RoutingQueue.code)))


async def get_queue(session: AsyncSession, *, queue_id: int) -> RoutingQueue:
    row = await session.get(RoutingQueue, queue_id)
    if row is None:
        raise NotFound("No such queue.", details={"id": queue_id})
    return row


async def _check_queue(session: AsyncSession, data: QueueCreate, own_id: int | None) -> None:
    existing = await session.scalar(select(RoutingQueue).where(func.lower(RoutingQueue.code) == data.code.lower()))
    if existing is not None and existing.id != own_id:
        raise Conflict("A queue with code {code} exists already.", params={"code": data.code},
                       details={"code": data.code, "existing_id": existing.id}, error_id="duplicate_code")  # fmt: skip
    problems = await _reference_problems(session, data) + await _overflow_problems(session, data, own_id)
    if problems:
        raise InvalidInput("Some fields are missing or not valid.", details=problems)


async def _reference_problems(session: AsyncSession, data: QueueCreate) -> list[dict[str, str]]:
    problems = []
    if data.team_id is not None and await session.get(Team, data.team_id) is None:
        problems.append(_problem("team_id", "unknown_team", N_("No such team.")))
    if data.site_id is not None and await session.get(Site, data.site_id) is None:
        problems.append(_problem("site_id", "unknown_site", N_("No such site.")))
    if data.skill is not None and await session.scalar(select(Skill.id).where(Skill.code == data.skill)) is None:
        problems.append(_problem("skill", "unknown_skill", N_("No such skill in the directory.")))
    if data.strategy == "best_skill" and data.skill is None:
        problems.append(_problem("skill", "missing", N_("Best skill routing needs the skill to rank agents by.")))
    return problems


async def _overflow_problems(session: AsyncSession, data: QueueCreate, own_id: int | None) -> list[dict[str, str]]:
    if data.overflow_queue_id is None:
        if data.overflow_threshold is not None:
            return [_problem("overflow_threshold", "no_overflow_queue", N_("Choose the queue to overflow to."))]
        return []
    if data.overflow_queue_id == own_id:
        return [_problem("overflow_queue_id", "self", N_("A queue cannot overflow to itself."))]
    seen: set[int] = set()
    current: int | None = data.overflow_queue_id
    while current is not None and current not in seen:
        seen.add(current)
        target = await session.get(RoutingQueue, current)
        if target is None:
            return [_problem("overflow_queue_id", "unknown_queue", N_("No such queue."))]
        if target.overflow_queue_id == own_id and own_id is not None:
            return [_problem("overflow_queue_id", "cycle", N_("Overflow would lead back to this queue."))]
        current = target.overflow_queue_id
    return []


def _apply(row: RoutingQueue, data: QueueCreate) -> None:
    for key in QUEUE_COLUMNS:
        setattr(row, key, getattr(data, key))


async def create_queue(session: AsyncSession, *, actor: Actor, data: QueueCreate) -> RoutingQueue:
    actor.require(Permission.CONFIGURE_ROUTING)
    await _check_queue(session, data, None)
    row = RoutingQueue()
    _apply(row, data)
    session.add(row)
    await flush_or_conflict(session)
    audit.record(session, actor=actor, action="routing.queue.create", target_type="routing_queue", target_id=row.id,
                 after=queue_snapshot(row))  # fmt: skip
    _announce(session, "queue", row.id)
    return row


async def update_queue(session: AsyncSession, *, actor: Actor, queue_id: int, data: QueueUpdate) -> RoutingQueue:
    actor.require(Permission.CONFIGURE_ROUTING)
    row = await get_queue(session, queue_id=queue_id)
    require_version(expected=data.version, current=row.version)
    await _check_queue(session, data, row.id)
    before = queue_snapshot(row)
    _apply(row, data)
    old, new = audit.changed_fields(before, queue_snapshot(row))
    if not new:
        return row  # saved unchanged: no new version
    await flush_or_conflict(session)
    audit.record(session, actor=actor, action="routing.queue.update", target_type="routing_queue", target_id=row.id,
                 before=old, after=new)  # fmt: skip
    _announce(session, "queue", row.id)
    return row


async def delete_queue(session: AsyncSession, *, actor: Actor, queue_id: int, version: int) -> None:
    """Only a queue that never held a task and that no other queue overflows to; otherwise deactivate it."""
    actor.require(Permission.CONFIGURE_ROUTING)
    row = await get_queue(session, queue_id=queue_id)
    require_version(expected=version, current=row.version)
    live = select(func.count()).where(RoutingTask.queue_id == queue_id, RoutingTask.state.in_(TaskState.LIVE))
    if await session.scalar(live):
        raise Conflict("Tasks are waiting in this queue.", error_id="queue_not_empty")
    if await session.scalar(select(func.count()).where(RoutingTask.queue_id == queue_id)):
        raise Conflict("This queue has handled tasks; deactivate it instead.", error_id="queue_in_use")
    feeders = list(await session.scalars(select(RoutingQueue.code).where(RoutingQueue.overflow_queue_id == queue_id)))
    if feeders:
        raise Conflict("Other queues overflow to this one: {codes}.", params={"codes": ", ".join(feeders)},
                       details={"queues": feeders}, error_id="queue_is_overflow_target")  # fmt: skip
    before = queue_snapshot(row)
    await session.delete(row)
    await flush_or_conflict(session)
    audit.record(session, actor=actor, action="routing.queue.delete", target_type="routing_queue",
                 target_id=queue_id, before=before)  # fmt: skip
    _announce(session, "queue", queue_id)


# --- members ---------------------------------------------------------------------------------------


async def list_members(session: AsyncSession, *, queue_id: int) -> list[dict[str, Any]]:
    await get_queue(session, queue_id=queue_id)
    rows = await session.execute(
        select(QueueMember.user_id, User.display_name, QueueMember.tier)
        .join(User, User.id == QueueMember.user_id)
        .where(QueueMember.queue_id == queue_id)
        .order_by(QueueMember.tier, User.display_name)
    )
    return [{"user_id": user_id, "name": name, "tier": tier} for user_id, name, tier in rows]


async def set_members(
    session: AsyncSession, *, actor: Actor, queue_id: int, members: list[MemberIn]
) -> list[dict[str, Any]]:
    """Replaces the queue's members with these users at these tiers."""
    actor.require(Permission.CONFIGURE_ROUTING)
    await get_queue(session, queue_id=queue_id)
    await _check_members(session, members)
    before = {m["user_id"]: m["tier"] for m in await list_members(session, queue_id=queue_id)}
    after = {m.user_id: m.tier for m in members}
    await session.execute(delete(QueueMember).where(QueueMember.queue_id == queue_id))
    if members:
        await session.execute(insert(QueueMember), [{"queue_id": queue_id, "user_id": u, "tier": t}
                                                     for u, t in after.items()])  # fmt: skip
    everyone = sorted(before.keys() | after.keys())
    old, new = audit.changed_fields({str(u): before.get(u) for u in everyone}, {str(u): after.get(u) for u in everyone})
    audit.record(session, actor=actor, action="routing.queue.members", target_type="routing_queue",
                 target_id=queue_id, before=old, after=new)  # fmt: skip
    _announce(session, "members", queue_id)
    for user_id in before.keys() | after.keys():
        if before.get(user_id) != after.get(user_id):
            _announce(session, "profile", user_id)
    return await list_members(session, queue_id=queue_id)


async def _check_members(session: AsyncSession, members: list[MemberIn]) -> None:
    problems = []
    seen: set[int] = set()
    wanted = [m.user_id for m in members]
    active = set(await session.scalars(select(User.id).where(User.id.in_(wanted), User.is_active.is_(True))))
    for index, member in enumerate(members):
        if member.user_id in seen:
            problems.append(_problem(f"{index}.user_id", "duplicate", N_("This user is listed twice.")))
        elif member.user_id not in active:
            problems.append(_problem(f"{index}.user_id", "unknown_user", N_("No such active user.")))
        seen.add(member.user_id)
    if problems:
        raise InvalidInput("Some fields are missing or not valid.", details=problems)


# --- agents' profiles ------------------------------------------------------------------------------


async def _user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.", details={"id": user_id})
    return user


async def skills_of(session: AsyncSession, *, user_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Skill code -> level from the directory's staff records of these users."""
    ids = list(user_ids)
    found: dict[int, dict[str, int]] = {user_id: {} for user_id in ids}
    if not ids:
        return found
    rows = await session.execute(
        select(Staff.user_id, Skill.code, StaffSkill.level)
        .join(StaffSkill, StaffSkill.staff_id == Staff.id)
        .join(Skill, Skill.id == StaffSkill.skill_id)
        .where(Staff.user_id.in_(ids), Staff.is_active.is_(True), Skill.is_active.is_(True))
    )
    for user_id, code, level in rows:
        found[user_id or 0][code] = level  # the query asked for these users: never None
    return found


async def memberships(session: AsyncSession, *, user_ids: Iterable[int]) -> dict[int, list[QueueMembership]]:
    ids = list(user_ids)
    found: dict[int, list[QueueMembership]] = {user_id: [] for user_id in ids}
    if not ids:
        return found
    rows = await session.execute(
        select(QueueMember.user_id, RoutingQueue.id, RoutingQueue.code, RoutingQueue.name, QueueMember.tier)
        .join(RoutingQueue, RoutingQueue.id == QueueMember.queue_id)
        .where(QueueMember.user_id.in_(ids))
        .order_by(QueueMember.tier, RoutingQueue.code)
    )
    for user_id, queue_id, code, name, tier in rows:
        found[user_id].append(QueueMembership(queue_id=queue_id, code=code, name=name, tier=tier))
    return found


async def get_profile(session: AsyncSession, *, user_id: int) -> dict[str, Any]:
    user = await _user(session, user_id)
    row = await session.get(AgentProfile, user_id)
    return {
        "user_id": user_id,
        "name": user.display_name,
        "capacities": dict(row.capacities) if row else dict(DEFAULT_CAPACITIES),
        "extension": row.extension if row else None,
        "auto_answer": row.auto_answer if row else False,
        "skills": (await skills_of(session, user_ids=[user_id]))[user_id],
        "queues": (await memberships(session, user_ids=[user_id]))[user_id],
        "version": row.version if row else None,
    }


async def set_profile(session: AsyncSession, *, actor: Actor, user_id: int, data: ProfileIn) -> dict[str, Any]:
    actor.require(Permission.CONFIGURE_ROUTING)
    await _user(session, user_id)
    row = await session.get(AgentProfile, user_id)
    values = {"capacities": dict(data.capacities), "extension": data.extension, "auto_answer": data.auto_answer}
    if row is None:
        before = None
        row = AgentProfile(user_id=user_id, **values)
        session.add(row)
    else:
        if data.version is None:
            raise InvalidInput("Send the version you edited.",
                               details=[_problem("version", "missing", N_("This field is required."))])  # fmt: skip
        require_version(expected=data.version, current=row.version)
        before = {"capacities": row.capacities, "extension": row.extension, "auto_answer": row.auto_answer}
        for key, value in values.items():
            setattr(row, key, value)
    await flush_or_conflict(session)
    audit.record(session, actor=actor, action="routing.profile.set", target_type="user", target_id=user_id,
                 before=before, after=values)  # fmt: skip
    _announce(session, "profile", user_id)
    return await get_profile(session, user_id=user_id)


# --- the core's configuration ------------------------------------------------------------------------


def queue_config(row: RoutingQueue) -> core.QueueConfig:
    return core.QueueConfig(
        id=row.id,
        priority=row.priority,
        strategy=core.Strategy(row.strategy),
        skill=row.skill,
        widen_after_s=tuple(float(s) for s in row.widen_after_s),
        aging_per_minute=row.aging_per_minute,
        max_wait_s=float(row.max_wait_s) if row.max_wait_s is not None else None,
        overflow_queue=row.overflow_queue_id,
        overflow_threshold=row.overflow_threshold,
        wrap_up=core.WrapUpPolicy(row.wrap_up),
        wrap_up_s=float(row.wrap_up_s),
    )


async def agent_profiles(
    session: AsyncSession, *, user_ids: Iterable[int], handled_today: dict[int, int] | None = None
) -> dict[int, core.AgentProfile]:
    """The core's view of these agents: capacities, directory skills, queue tiers."""
    ids = list(user_ids)
    if not ids:
        return {}
    query = select(AgentProfile.user_id, AgentProfile.capacities).where(AgentProfile.user_id.in_(ids))
    capacities = dict((await session.execute(query)).tuples().all())
    skills = await skills_of(session, user_ids=ids)
    queues = await memberships(session, user_ids=ids)
    return {
        user_id: core.AgentProfile(
            id=user_id,
            capacities=dict(capacities.get(user_id) or DEFAULT_CAPACITIES),
            skills=skills[user_id],
            queues={m.queue_id: m.tier for m in queues[user_id]},
            handled_today=(handled_today or {}).get(user_id, 0),
        )
        for user_id in ids
    }
