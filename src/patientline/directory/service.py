"""Directory operations: sites, departments (a tree), teams, skills, staff.

Every write checks references, refuses duplicate codes (409) and stale versions (409), writes an
audit row with before/after, and records a `DirectoryChanged` event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import audit, clock, events
from patientline.core.auth.actor import Actor
from patientline.core.auth.models import User
from patientline.core.db import flush_or_conflict
from patientline.core.errors import Conflict, InvalidInput, NotFound, require_version
from patientline.directory.events import DIRECTORY_READERS, DirectoryChanged
from patientline.directory.models import Department, Site, Skill, Staff, StaffSkill, Team, TeamMember

Entity = Site | Department | Team | Skill | Staff


@dataclass(frozen=True)
class Kind:
    name: str
    model: type[Any]
    references: dict[str, type[Any]]  # field -> model it must point at

    def snapshot(self, row: Any) -> dict[str, Any]:
        columns = [c.key for c in self.model.__table__.columns if c.key not in ("created_at", "updated_at")]
        return {key: getattr(row, key) for key in columns}


SITES = Kind("site", Site, {})
DEPARTMENTS = Kind("department", Department, {"site_id": Site, "parent_id": Department})
TEAMS = Kind("team", Team, {"site_id": Site, "department_id": Department})
SKILLS = Kind("skill", Skill, {})
STAFF = Kind("staff", Staff, {"site_id": Site, "department_id": Department, "user_id": User})
KINDS = {k.name: k for k in (SITES, DEPARTMENTS, TEAMS, SKILLS, STAFF)}


async def get(session: AsyncSession, *, kind: Kind, entity_id: int) -> Any:
    row = await session.get(kind.model, entity_id)
    if row is None:
        raise NotFound("No such {kind}.", params={"kind": kind.name}, details={"id": entity_id})
    return row


@dataclass(frozen=True)
class ListFilter:
    """What a list asks for; hashable, so it doubles as a cache key."""

    text: str | None = None
    site_id: int | None = None
    department_id: int | None = None
    active: bool | None = None
    limit: int = 500
    offset: int = 0


ALL = ListFilter(limit=100_000)


def _list_query(query: Any, model: Any, where: ListFilter) -> Any:
    query = query.order_by(model.code).limit(where.limit).offset(where.offset)
    if where.text:
        pattern = f"%{where.text}%"
        query = query.where(model.name.ilike(pattern) | model.code.ilike(pattern))
    if where.site_id is not None and hasattr(model, "site_id"):
        query = query.where(model.site_id == where.site_id)
    if where.department_id is not None and hasattr(model, "department_id"):
        query = query.where(model.department_id == where.department_id)
    if where.active is not None:
        query = query.where(model.is_active.is_(where.active))
    return query


async def list_entities(session: AsyncSession, *, kind: Kind, where: ListFilter = ALL) -> list[Any]:
    return list(await session.scalars(_list_query(select(kind.model), kind.model, where)))


async def list_records(
    session: AsyncSession, *, kind: Kind, fields: list[str], where: ListFilter = ALL
) -> list[dict[str, Any]]:
    """The same list as plain dicts of `fields` (what the API sends): no ORM objects to build."""
    model = kind.model
    columns = [model.__table__.c[name] for name in fields if name in model.__table__.c]
    rows = [dict(row) for row in (await session.execute(_list_query(select(*columns), model, where))).mappings()]
    if kind is STAFF:
        links = await staff_links_for(session, staff_ids=[row["id"] for row in rows])
        for row in rows:
            row |= links[row["id"]]
    return rows


async def count(session: AsyncSession, *, kind: Kind) -> int:
    return int(await session.scalar(select(func.count()).select_from(kind.model)) or 0)


async def find_by_code(session: AsyncSession, *, kind: Kind, code: str) -> Any | None:
    return await session.scalar(select(kind.model).where(func.lower(kind.model.code) == code.lower()))


async def _check_code_free(session: AsyncSession, *, kind: Kind, code: str, own_id: int | None) -> None:
    existing = await find_by_code(session, kind=kind, code=code)
    if existing is not None and existing.id != own_id:
        raise Conflict(
            "The code {code} is already used by another {kind}.",
            params={"code": code, "kind": kind.name},
            details={"code": code, "existing_id": existing.id},
            error_id="duplicate_code",
        )


async def _check_references(session: AsyncSession, *, kind: Kind, values: dict[str, Any]) -> None:
    missing = {}
    for field, target in kind.references.items():
        ref = values.get(field)
        if ref is not None and await session.get(target, ref) is None:
            missing[field] = ref
    if missing:
        raise InvalidInput(
            "Some referenced records do not exist.", details={"missing": missing}, error_id="unknown_reference"
        )


async def _check_tree(session: AsyncSession, *, department_id: int | None, parent_id: int | None) -> None:
    """A department cannot sit under itself or under one of its own descendants."""
    seen: set[int] = set()
    current = parent_id
    while current is not None:
        if current == department_id or current in seen:
            raise InvalidInput(
                "A department cannot be placed under itself or its own sub-department.",
                details={"parent_id": parent_id},
                error_id="department_cycle",
            )
        seen.add(current)
        current = await session.scalar(select(Department.parent_id).where(Department.id == current))


def _publish(session: AsyncSession, *, kind: Kind, row: Any, change: str) -> None:
    events.record(
        session,
        DirectoryChanged(entity=kind.name, entity_id=row.id, change=change, name=row.name, audience=DIRECTORY_READERS),
    )


async def create(session: AsyncSession, *, actor: Actor, kind: Kind, values: dict[str, Any]) -> Any:
    extra = _split_staff_links(values) if kind is STAFF else {}
    await _check_code_free(session, kind=kind, code=values["code"], own_id=None)
    await _check_references(session, kind=kind, values=values)
    row = kind.model(**values, version=1)
    session.add(row)
    await flush_or_conflict(session)
    if extra:
        await _set_staff_links(session, staff_id=row.id, **extra)
    audit.record(
        session,
        actor=actor,
        action=f"directory.{kind.name}.create",
        target_type=kind.name,
        target_id=row.id,
        after=kind.snapshot(row) | extra,
    )
    _publish(session, kind=kind, row=row, change="created")
    return row


async def update(
    session: AsyncSession, *, actor: Actor, kind: Kind, entity_id: int, expected_version: int, changes: dict[str, Any]
) -> Any:
    row = await get(session, kind=kind, entity_id=entity_id)
    require_version(expected=expected_version, current=row.version)
    extra = _split_staff_links(changes) if kind is STAFF else {}
    before = kind.snapshot(row) | (await staff_links(session, staff_id=row.id) if extra else {})
    if "code" in changes and changes["code"] is not None:
        await _check_code_free(session, kind=kind, code=changes["code"], own_id=row.id)
    await _check_references(session, kind=kind, values=changes)
    if kind is DEPARTMENTS and "parent_id" in changes:
        await _check_tree(session, department_id=row.id, parent_id=changes["parent_id"])
    for key, value in changes.items():
        if value is None and not _nullable(kind, key):
            raise InvalidInput("The field {field} cannot be empty.", params={"field": key}, details={key: ["required"]})
        setattr(row, key, value)
    if any(before[key] != value for key, value in extra.items()):
        row.updated_at = clock.now()  # skills and teams are part of the record: a change bumps its version
    await flush_or_conflict(session)
    if extra:
        await _set_staff_links(session, staff_id=row.id, **extra)
    old, new = audit.changed_fields(before, kind.snapshot(row) | extra)
    if not new:
        return row  # saved unchanged: no new version, no audit row, no event
    audit.record(
        session,
        actor=actor,
        action=f"directory.{kind.name}.update",
        target_type=kind.name,
        target_id=row.id,
        before=old,
        after=new,
    )
    _publish(session, kind=kind, row=row, change="updated")
    return row


async def remove(session: AsyncSession, *, actor: Actor, kind: Kind, entity_id: int) -> None:
    """Deletes a record nothing refers to; otherwise 409 (deactivate it instead)."""
    row = await get(session, kind=kind, entity_id=entity_id)
    before = kind.snapshot(row)
    try:
        async with session.begin_nested():
            await session.delete(row)
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "This {kind} is still in use; deactivate it instead.", params={"kind": kind.name}, error_id="in_use"
        ) from exc
    audit.record(
        session,
        actor=actor,
        action=f"directory.{kind.name}.delete",
        target_type=kind.name,
        target_id=entity_id,
        before=before,
    )
    _publish(session, kind=kind, row=row, change="deleted")


def _nullable(kind: Kind, key: str) -> bool:
    column = kind.model.__table__.columns.get(key)
    return bool(column is not None and column.nullable)


# ---- staff links: skills with levels and team membership -------------------------------------


def _split_staff_links(values: dict[str, Any]) -> dict[str, Any]:
    """Takes skills and team_ids out of `values`, in the order `staff_links` reads them back."""
    links: dict[str, Any] = {
        key: values.pop(key) for key in ("skills", "team_ids") if key in values and values[key] is not None
    }
    if "skills" in links:
        levels = {s["skill_id"]: s["level"] for s in links["skills"]}
        links["skills"] = [{"skill_id": k, "level": levels[k]} for k in sorted(levels)]
    if "team_ids" in links:
        links["team_ids"] = sorted(set(links["team_ids"]))
    return links


async def _set_staff_links(
    session: AsyncSession,
    *,
    staff_id: int,
    skills: list[dict[str, int]] | None = None,
    team_ids: list[int] | None = None,
) -> None:
    if skills is not None:
        skill_ids = [s["skill_id"] for s in skills]
        known = set(await session.scalars(select(Skill.id).where(Skill.id.in_(skill_ids))))
        if missing := sorted(set(skill_ids) - known):
            raise InvalidInput(
                "Some referenced records do not exist.",
                details={"missing": {"skills": missing}},
                error_id="unknown_reference",
            )
        await session.execute(delete(StaffSkill).where(StaffSkill.staff_id == staff_id))
        if skills:
            levels = {s["skill_id"]: s["level"] for s in skills}
            await session.execute(
                insert(StaffSkill), [{"staff_id": staff_id, "skill_id": k, "level": v} for k, v in levels.items()]
            )
    if team_ids is not None:
        known = set(await session.scalars(select(Team.id).where(Team.id.in_(team_ids))))
        if missing := sorted(set(team_ids) - known):
            raise InvalidInput(
                "Some referenced records do not exist.",
                details={"missing": {"team_ids": missing}},
                error_id="unknown_reference",
            )
        await session.execute(delete(TeamMember).where(TeamMember.staff_id == staff_id))
        if team_ids:
            await session.execute(insert(TeamMember), [{"team_id": t, "staff_id": staff_id} for t in set(team_ids)])


async def staff_links_for(session: AsyncSession, *, staff_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Skills with levels and team ids of several staff members in two queries."""
    links: dict[int, dict[str, Any]] = {sid: {"skills": [], "team_ids": []} for sid in staff_ids}
    if not staff_ids:
        return links
    skills = await session.execute(
        select(StaffSkill.staff_id, StaffSkill.skill_id, StaffSkill.level)
        .where(StaffSkill.staff_id.in_(staff_ids))
        .order_by(StaffSkill.skill_id)
    )
    for staff_id, skill_id, level in skills:
        links[staff_id]["skills"].append({"skill_id": skill_id, "level": level})
    teams = await session.execute(
        select(TeamMember.staff_id, TeamMember.team_id)
        .where(TeamMember.staff_id.in_(staff_ids))
        .order_by(TeamMember.team_id)
    )
    for staff_id, team_id in teams:
        links[staff_id]["team_ids"].append(team_id)
    return links


async def staff_links(session: AsyncSession, *, staff_id: int) -> dict[str, Any]:
    return (await staff_links_for(session, staff_ids=[staff_id]))[staff_id]


def department_tree(departments: list[Department]) -> list[tuple[Department, int]]:
    """Departments in tree order with their depth, roots sorted by code."""
    children: dict[int | None, list[Department]] = {}
    for dep in departments:
        children.setdefault(dep.parent_id, []).append(dep)
    known = {d.id for d in departments}
    roots = [d for d in departments if d.parent_id is None or d.parent_id not in known]
    ordered: list[tuple[Department, int]] = []

    def walk(node: Department, depth: int) -> None:
        ordered.append((node, depth))
        for child in sorted(children.get(node.id, []), key=lambda d: d.code):
            walk(child, depth + 1)

    for root in sorted(roots, key=lambda d: d.code):
        walk(root, 0)
    return ordered


async def site_choices(session: AsyncSession) -> list[tuple[int, str]]:
    return [(site.id, site.name) for site in await list_entities(session, kind=SITES)]


async def department_choices(session: AsyncSession) -> list[tuple[int, str]]:
    """Departments for a select box: in tree order, indented, with their site (names repeat across sites)."""
    sites = dict(await site_choices(session))
    ordered = department_tree(await list_entities(session, kind=DEPARTMENTS))
    return [(dep.id, f"{'　' * depth}{dep.name}（{sites.get(dep.site_id, '')}）") for dep, depth in ordered]


async def people_of(session: AsyncSession, *, kind: Kind, entity_id: int) -> list[Staff]:
    """Who belongs to a team, or who handles a department's work; nobody for other kinds."""
    if kind is TEAMS:
        query = select(Staff).join(TeamMember, TeamMember.staff_id == Staff.id).where(TeamMember.team_id == entity_id)
    elif kind is DEPARTMENTS:
        query = select(Staff).where(Staff.department_id == entity_id, Staff.is_handler.is_(True))
    else:
        return []
    return list(await session.scalars(query.where(Staff.is_active.is_(True)).order_by(Staff.name)))
