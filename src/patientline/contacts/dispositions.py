"""The disposition tree: admin-managed codes (consultation type, complaint, booking…) an agent codes
every contact with. At most three levels; codes are unique; a code in use is deactivated, never
deleted; a node counts as active only when it and all its ancestors are."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.contacts.models import ContactDisposition, DispositionCode
from patientline.contacts.schemas import DispositionCreate, DispositionUpdate, ReorderIn
from patientline.core import audit
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.db import flush_or_conflict
from patientline.core.errors import Conflict, InvalidInput, NotFound, require_version
from patientline.core.i18n import gettext

MAX_DEPTH = 3
AUDIT_TARGET = "disposition_code"


@dataclass
class Tree:
    """All codes in memory (a hotline has tens, at most a few hundred)."""

    by_id: dict[int, DispositionCode]
    children: dict[int | None, list[DispositionCode]] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: Iterable[DispositionCode]) -> Tree:
        tree = cls(by_id={row.id: row for row in rows})
        for row in tree.by_id.values():
            tree.children.setdefault(row.parent_id, []).append(row)
        for siblings in tree.children.values():
            siblings.sort(key=lambda r: (r.position, r.id))
        return tree

    def depth(self, code_id: int) -> int:
        """1 for a root."""
        depth, node = 1, self.by_id[code_id]
        while node.parent_id is not None and depth <= MAX_DEPTH + 1:
            node, depth = self.by_id[node.parent_id], depth + 1
        return depth

    def height(self, code_id: int) -> int:
        """1 for a leaf."""
        kids = self.children.get(code_id, [])
        return 1 + max((self.height(kid.id) for kid in kids), default=0)

    def subtree(self, code_id: int) -> list[int]:
        found: list[int] = []
        stack = [code_id]
        while stack:
            current = stack.pop()
            found.append(current)
            stack.extend(kid.id for kid in self.children.get(current, []))
        return found

    def ancestors(self, code_id: int) -> list[DispositionCode]:
        """From the root down to the code itself."""
        path: list[DispositionCode] = []
        node = self.by_id.get(code_id)
        while node is not None and len(path) <= MAX_DEPTH + 1:
            path.append(node)
            node = self.by_id.get(node.parent_id) if node.parent_id is not None else None
        return list(reversed(path))

    def effectively_active(self, code_id: int) -> bool:
        return code_id in self.by_id and all(node.is_active for node in self.ancestors(code_id))

    def path_name(self, code_id: int) -> str:
        return " / ".join(node.name for node in self.ancestors(code_id))

    def walk(self, parent_id: int | None = None, depth: int = 1) -> list[tuple[DispositionCode, int]]:
        """Depth-first in the tree's order, each with its depth."""
        rows: list[tuple[DispositionCode, int]] = []
        for row in self.children.get(parent_id, []):
            rows.append((row, depth))
            rows.extend(self.walk(row.id, depth + 1))
        return rows


async def load_tree(session: AsyncSession) -> Tree:
    return Tree.of(await session.scalars(select(DispositionCode)))


async def codes_in_use(session: AsyncSession) -> set[int]:
    return set(await session.scalars(select(ContactDisposition.code_id).distinct()))


async def get_code(session: AsyncSession, code_id: int) -> DispositionCode:
    row = await session.get(DispositionCode, code_id)
    if row is None:
        raise NotFound("No such disposition code.", details={"id": code_id})
    return row


async def find_code(session: AsyncSession, code: str) -> DispositionCode | None:
    return await session.scalar(select(DispositionCode).where(DispositionCode.code == code))


def _problem(field_: str, problem: str, message: str) -> dict[str, str]:
    return {"field": field_, "problem": problem, "message": message}


async def _require_unique(session: AsyncSession, code: str, own_id: int | None) -> None:
    other = await find_code(session, code)
    if other is not None and other.id != own_id:
        message = gettext("This code is taken.")
        raise Conflict("This code is taken.", error_id="code_taken", details=[_problem("code", "taken", message)])


def _check_place(tree: Tree, *, code_id: int | None, parent_id: int | None) -> None:
    """A parent that exists, is not the code or below it, and keeps the tree within three levels."""
    if parent_id is None:
        parent_depth = 0
    elif parent_id not in tree.by_id:
        message = gettext("Choose an existing parent code.")
        raise InvalidInput("Choose an existing parent code.", details=[_problem("parent_id", "unknown", message)])
    elif code_id is not None and parent_id in tree.subtree(code_id):
        message = gettext("A code cannot be placed under itself or its own sub-codes.")
        raise InvalidInput(
            "A code cannot be placed under itself or its own sub-codes.",
            error_id="disposition_cycle",
            details=[_problem("parent_id", "cycle", message)],
        )
    else:
        parent_depth = tree.depth(parent_id)
    height = tree.height(code_id) if code_id is not None else 1
    if parent_depth + height > MAX_DEPTH:
        message = gettext("The tree has at most three levels.")
        raise InvalidInput(
            "The tree has at most three levels.",
            error_id="disposition_too_deep",
            details=[_problem("parent_id", "depth", message)],
        )


def snapshot(row: DispositionCode) -> dict[str, object]:
    return {"code": row.code, "name": row.name, "parent_id": row.parent_id, "position": row.position,
            "is_active": row.is_active}  # fmt: skip


async def create_code(session: AsyncSession, *, actor: Actor, data: DispositionCreate) -> DispositionCode:
    actor.require(Permission.CONFIGURE_CONTACTS)
    tree = await load_tree(session)
    _check_place(tree, code_id=None, parent_id=data.parent_id)
    await _require_unique(session, data.code, None)
    siblings = tree.children.get(data.parent_id, [])
    position = data.position if data.position is not None else 1 + max((s.position for s in siblings), default=-1)
    row = DispositionCode(code=data.code, name=data.name, parent_id=data.parent_id, position=position, is_active=True)
    session.add(row)
    await flush_or_conflict(session)
    audit.record(session, actor=actor, action="contacts.disposition.create", target_type=AUDIT_TARGET,
                 target_id=row.id, after=snapshot(row))  # fmt: skip
    return row


async def update_code(session: AsyncSession, *, actor: Actor, code_id: int, data: DispositionUpdate) -> DispositionCode:
    actor.require(Permission.CONFIGURE_CONTACTS)
    row = await get_code(session, code_id)
    require_version(expected=data.version, current=row.version)
    before = snapshot(row)
    sent = data.model_fields_set
    if data.code is not None and data.code != row.code:
        await _require_unique(session, data.code, row.id)
        row.code = data.code
    if data.name is not None:
        row.name = data.name
    if "parent_id" in sent and data.parent_id != row.parent_id:
        tree = await load_tree(session)
        _check_place(tree, code_id=row.id, parent_id=data.parent_id)
        siblings = tree.children.get(data.parent_id, [])
        row.parent_id = data.parent_id
        row.position = 1 + max((s.position for s in siblings), default=-1)
    if data.is_active is not None:
        row.is_active = data.is_active
    old, new = audit.changed_fields(before, snapshot(row))
    if new:
        await flush_or_conflict(session)
        audit.record(session, actor=actor, action="contacts.disposition.update", target_type=AUDIT_TARGET,
                     target_id=row.id, before=old, after=new)  # fmt: skip
    return row


async def reorder(session: AsyncSession, *, actor: Actor, data: ReorderIn) -> list[DispositionCode]:
    """The siblings under `parent_id` in the order given; every sibling must be named once."""
    actor.require(Permission.CONFIGURE_CONTACTS)
    tree = await load_tree(session)
    if data.parent_id is not None and data.parent_id not in tree.by_id:
        raise NotFound("No such disposition code.", details={"id": data.parent_id})
    siblings = tree.children.get(data.parent_id, [])
    if sorted(data.ids) != sorted(row.id for row in siblings):
        message = gettext("Name every code at this level exactly once.")
        raise InvalidInput("Name every code at this level exactly once.",
                           details=[_problem("ids", "mismatch", message)])  # fmt: skip
    for position, code_id in enumerate(data.ids):
        tree.by_id[code_id].position = position
    await flush_or_conflict(session)
    audit.record(session, actor=actor, action="contacts.disposition.reorder", target_type=AUDIT_TARGET,
                 target_id=data.parent_id, after={"ids": data.ids})  # fmt: skip
    return [tree.by_id[code_id] for code_id in data.ids]


async def delete_code(session: AsyncSession, *, actor: Actor, code_id: int, expected_version: int) -> None:
    """Only a code nobody used and with no sub-codes; others are deactivated instead."""
    actor.require(Permission.CONFIGURE_CONTACTS)
    row = await get_code(session, code_id)
    require_version(expected=expected_version, current=row.version)
    children = await session.scalar(select(func.count()).where(DispositionCode.parent_id == row.id))
    if children:
        raise Conflict("Delete or move its sub-codes first.", error_id="disposition_has_children")
    used = await session.scalar(select(func.count()).where(ContactDisposition.code_id == row.id))
    if used:
        raise Conflict(
            "Contacts are coded with this code; deactivate it instead.",
            error_id="disposition_in_use",
            details={"contacts": int(used)},
        )
    before = snapshot(row)
    await session.delete(row)
    await flush_or_conflict(session)
    audit.record(session, actor=actor, action="contacts.disposition.delete", target_type=AUDIT_TARGET,
                 target_id=code_id, before=before)  # fmt: skip


async def check_choosable(session: AsyncSession, code_ids: list[int], *, tree: Tree | None = None) -> list[int]:
    """The codes an agent picked: they exist and are active (with their ancestors). Returns them de-duplicated."""
    tree = tree or await load_tree(session)
    wanted = list(dict.fromkeys(code_ids))
    bad = [code_id for code_id in wanted if not tree.effectively_active(code_id)]
    if bad:
        message = gettext("Choose active disposition codes.")
        raise InvalidInput(
            "Choose active disposition codes.",
            details=[_problem("disposition_ids", "inactive", message) | {"ids": ",".join(map(str, bad))}],
        )
    return wanted
