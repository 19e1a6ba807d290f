"""Knowledge items: the category tree, items with every revision kept, the review workflow, variants,
feedback and favourites, synonyms. The only writers of these tables."""

from __future__ import annotations

import difflib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from patientline.core import audit, clock, events
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.db import flush_or_conflict
from patientline.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, require_version
from patientline.core.events import Audience, Notification
from patientline.core.i18n import N_
from patientline.directory.models import Department, Site
from patientline.knowledge.events import KNOWLEDGE_READERS, ItemChanged, SynonymsChanged, TreeChanged
from patientline.knowledge.models import (
    Category,
    Favourite,
    Feedback,
    Item,
    ItemStatus,
    Revision,
    SynonymGroup,
    Variant,
)
from patientline.knowledge.sanitize import plain_text

CONTENT_FIELDS = (
    "category_id",
    "question",
    "answer_html",
    "spoken",
    "tags",
    "department_ids",
    "site_ids",
    "public",
    "valid_from",
    "valid_to",
    "owner_department_id",
)
TEXT_FIELDS = ("question", "answer_html", "spoken")


# ---- categories ------------------------------------------------------------------------------


def _category_snapshot(row: Category) -> dict[str, Any]:
    return {k: getattr(row, k) for k in ("code", "name", "parent_id", "position", "description", "is_active")}


async def categories(session: AsyncSession) -> list[Category]:
    return list(await session.scalars(select(Category).order_by(Category.position, Category.code)))


async def get_category(session: AsyncSession, category_id: int) -> Category:
    row = await session.get(Category, category_id)
    if row is None:
        raise NotFound("This category does not exist.", details={"category_id": category_id})
    return row


async def _check_category_parent(session: AsyncSession, *, category_id: int | None, parent_id: int | None) -> None:
    seen: set[int] = set()
    current = parent_id
    while current is not None:
        if current == category_id or current in seen:
            raise InvalidInput(
                "A category cannot be placed under itself or its own sub-categories.",
                details={"parent_id": ["cycle"]},
            )
        seen.add(current)
        current = (await get_category(session, current)).parent_id


async def create_category(session: AsyncSession, *, actor: Actor, values: dict[str, Any]) -> Category:
    actor.require(Permission.REVIEW_KNOWLEDGE)
    await _check_category_parent(session, category_id=None, parent_id=values.get("parent_id"))
    await _check_category_code(session, code=values["code"], own_id=None)
    row = Category(**values, version=1)
    session.add(row)
    await flush_or_conflict(session)
    audit.record(
        session, actor=actor, action="knowledge.category.create", target_type="kb_category", target_id=row.id,
        after=_category_snapshot(row),
    )  # fmt: skip
    _tree_changed(session, row.id)
    return row


async def _check_category_code(session: AsyncSession, *, code: str, own_id: int | None) -> None:
    other = await session.scalar(select(Category.id).where(Category.code == code))
    if other is not None and other != own_id:
        raise Conflict("The code {code} is already in use.", params={"code": code}, details={"code": ["taken"]})


async def update_category(
    session: AsyncSession, *, actor: Actor, category_id: int, expected_version: int, changes: dict[str, Any]
) -> Category:
    actor.require(Permission.REVIEW_KNOWLEDGE)
    row = await get_category(session, category_id)
    require_version(expected=expected_version, current=row.version)
    if "parent_id" in changes:
        await _check_category_parent(session, category_id=row.id, parent_id=changes["parent_id"])
    if changes.get("code"):
        await _check_category_code(session, code=changes["code"], own_id=row.id)
    before = _category_snapshot(row)
    for key, value in changes.items():
        if value is None and key != "parent_id":
            raise InvalidInput("The field {field} cannot be empty.", params={"field": key}, details={key: ["required"]})
        setattr(row, key, value)
    await flush_or_conflict(session)
    old, new = audit.changed_fields(before, _category_snapshot(row))
    if new:
        audit.record(
            session, actor=actor, action="knowledge.category.update", target_type="kb_category",
            target_id=row.id, before=old, after=new,
        )  # fmt: skip
        _tree_changed(session, row.id)
    return row


async def delete_category(session: AsyncSession, *, actor: Actor, category_id: int) -> None:
    actor.require(Permission.REVIEW_KNOWLEDGE)
    row = await get_category(session, category_id)
    children = await session.scalar(select(func.count()).where(Category.parent_id == row.id))
    working = await session.scalar(select(func.count()).where(Item.category_id == row.id)) or 0
    live = sum(1 for item in await live_items(session) if item.content.get("category_id") == row.id)
    items = working + live  # a live answer may still sit where its edited draft no longer does
    if children or items:
        raise Conflict(
            "This category still holds sub-categories or items; move them or deactivate it instead.",
            error_id="in_use",
            details={"children": children, "items": items},
        )
    before = _category_snapshot(row)
    await session.delete(row)
    await session.flush()
    audit.record(
        session, actor=actor, action="knowledge.category.delete", target_type="kb_category", target_id=category_id,
        before=before,
    )  # fmt: skip
    _tree_changed(session, category_id)


def _tree_changed(session: AsyncSession, category_id: int) -> None:
    events.record(session, TreeChanged(category_id=category_id, audience=KNOWLEDGE_READERS))


@dataclass(frozen=True)
class CategoryTree:
    """The whole tree in memory (a few hundred rows): paths, ancestors and leaves."""

    by_id: dict[int, Category]

    @classmethod
    async def load(cls, session: AsyncSession) -> CategoryTree:
        return cls({row.id: row for row in await categories(session)})

    def ancestors(self, category_id: int) -> tuple[int, ...]:
        """The category and everything above it, nearest first."""
        chain: list[int] = []
        current: int | None = category_id
        while current is not None and current in self.by_id and current not in chain:
            chain.append(current)
            current = self.by_id[current].parent_id
        return tuple(chain)

    def path(self, category_id: int) -> str:
        return " / ".join(self.by_id[c].name for c in reversed(self.ancestors(category_id)))

    def children(self, parent_id: int | None) -> list[Category]:
        return [row for row in self.by_id.values() if row.parent_id == parent_id]

    def walk(self) -> list[tuple[Category, int]]:
        """Depth-first, with depth, in display order."""
        ordered: list[tuple[Category, int]] = []

        def visit(parent_id: int | None, depth: int) -> None:
            for row in sorted(self.children(parent_id), key=lambda r: (r.position, r.code)):
                ordered.append((row, depth))
                visit(row.id, depth + 1)

        visit(None, 0)
        return ordered

    def area_of(self, category_id: int) -> int:
        """The second level (domain -> area): what quizzes and reports group by."""
        chain = self.ancestors(category_id)
        return chain[-2] if len(chain) >= 2 else chain[-1] if chain else category_id


# ---- items -----------------------------------------------------------------------------------


async def get_item(session: AsyncSession, item_id: int) -> Item:
    row = await session.get(Item, item_id)
    if row is None:
        raise NotFound("This knowledge item does not exist.", details={"item_id": item_id})
    return row


def content_of(row: Item) -> dict[str, Any]:
    return {field: _jsonable(getattr(row, field)) for field in CONTENT_FIELDS}


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return list(value)
    return value


def _from_content(content: dict[str, Any]) -> dict[str, Any]:
    values = dict(content)
    for key in ("valid_from", "valid_to"):
        if isinstance(values.get(key), str):  # a revision's content; the API hands over dates
            values[key] = date.fromisoformat(values[key])
    return values


def may_edit(actor: Actor, owner_department_id: int | None) -> bool:
    """Reviewers edit everything; department editors the items their departments own."""
    if actor.can(Permission.REVIEW_KNOWLEDGE):
        return True
    if not actor.can(Permission.EDIT_KNOWLEDGE):
        return False
    return actor.is_unscoped or (owner_department_id is not None and owner_department_id in actor.department_ids)


def _require_edit(actor: Actor, owner_department_id: int | None) -> None:
    actor.require(Permission.EDIT_KNOWLEDGE)
    if not may_edit(actor, owner_department_id):
        raise PermissionDenied(
            "You may edit only items your departments own.",
            details={"owner_department_id": owner_department_id},
        )


async def _check_references(session: AsyncSession, values: dict[str, Any]) -> None:
    problems: dict[str, list[str]] = {}
    if await session.get(Category, values["category_id"]) is None:
        problems["category_id"] = ["unknown"]
    departments = set(values.get("department_ids") or []) | (
        {values["owner_department_id"]} if values.get("owner_department_id") else set()
    )
    if departments:
        found = set(await session.scalars(select(Department.id).where(Department.id.in_(departments))))
        if departments - found:
            problems["department_ids"] = ["unknown"]
    sites = set(values.get("site_ids") or [])
    if sites:
        found = set(await session.scalars(select(Site.id).where(Site.id.in_(sites))))
        if sites - found:
            problems["site_ids"] = ["unknown"]
    if problems:
        raise InvalidInput("Some referenced records do not exist.", details=problems)


async def _assign_key(session: AsyncSession, row: Item) -> None:
    """Every item gets a key, so that it can be exported and imported back. Written without the ORM's
    version counter: a new item starts at version 1."""
    key = f"KB{row.id:05d}"
    if await session.scalar(select(Item.id).where(Item.key == key)) is not None:  # an imported key took it
        key = f"{key}-{secrets.token_hex(3)}"
    await session.execute(update(Item).where(Item.id == row.id).values(key=key))
    set_committed_value(row, "key", key)


def _publish_change(session: AsyncSession, row: Item, change: str, *, live: bool) -> None:
    events.record(
        session,
        ItemChanged(
            item_id=row.id, change=change, question=row.question, status=row.status, live=live,
            audience=KNOWLEDGE_READERS,
        ),
    )  # fmt: skip


async def _save_revision(session: AsyncSession, *, actor: Actor, row: Item, note: str) -> Revision:
    revision = Revision(
        item_id=row.id, number=row.revision, content=content_of(row), note=note, author_id=actor.user_id,
        created_at=clock.now(),
    )  # fmt: skip
    session.add(revision)
    await session.flush()
    return revision


async def create_item(
    session: AsyncSession, *, actor: Actor, values: dict[str, Any], variants: Sequence[str] = (), note: str = ""
) -> Item:
    actor.require(Permission.EDIT_KNOWLEDGE)
    if not actor.can(Permission.REVIEW_KNOWLEDGE) and not actor.is_unscoped and not values.get("owner_department_id"):
        raise InvalidInput("Choose the department that owns this item.", details={"owner_department_id": ["required"]})
    _require_edit(actor, values.get("owner_department_id"))
    await _check_references(session, values)
    key = values.pop("key", None) or None
    if key and await session.scalar(select(Item.id).where(Item.key == key)) is not None:
        raise Conflict("The key {key} is already in use.", params={"key": key}, details={"key": ["taken"]})
    row = Item(**_from_content(values), key=key, status=ItemStatus.DRAFT.value, revision=1, author_id=actor.user_id,
               version=1)  # fmt: skip
    session.add(row)
    await flush_or_conflict(session)
    if row.key is None:
        await _assign_key(session, row)
    await _save_revision(session, actor=actor, row=row, note=note)
    for text in variants:
        session.add(Variant(item_id=row.id, text=text, source="editor", created_by_id=actor.user_id))
    await flush_or_conflict(session)
    audit.record(
        session, actor=actor, action="knowledge.item.create", target_type="kb_item", target_id=row.id,
        after=content_of(row) | {"variants": list(variants)},
    )  # fmt: skip
    _publish_change(session, row, "created", live=False)
    return row


async def update_item(
    session: AsyncSession, *, actor: Actor, item_id: int, expected_version: int, values: dict[str, Any], note: str = ""
) -> Item:
    """Saves the working copy; a change of content is a new revision and sends the item back to draft
    (the live revision, if any, stays live until the new one is published)."""
    row = await get_item(session, item_id)
    require_version(expected=expected_version, current=row.version)
    _require_edit(actor, row.owner_department_id)
    if values.get("owner_department_id") != row.owner_department_id:
        _require_edit(actor, values.get("owner_department_id"))
    await _check_references(session, values)
    before = content_of(row)
    for key, value in _from_content(values).items():
        setattr(row, key, value)
    old, new = audit.changed_fields(before, content_of(row))
    if not new:
        return row
    row.revision += 1
    row.status = ItemStatus.DRAFT.value
    row.author_id = actor.user_id
    await flush_or_conflict(session)
    await _save_revision(session, actor=actor, row=row, note=note)
    audit.record(
        session, actor=actor, action="knowledge.item.update", target_type="kb_item", target_id=row.id,
        before=old, after=new | {"revision": row.revision},
    )  # fmt: skip
    _publish_change(session, row, "updated", live=False)
    return row


@dataclass(frozen=True)
class Step:
    name: str
    sources: frozenset[str]
    target: str
    permission: Permission


STEPS = {
    step.name: step
    for step in (
        Step("submit", frozenset({ItemStatus.DRAFT}), ItemStatus.IN_REVIEW, Permission.EDIT_KNOWLEDGE),
        Step("withdraw", frozenset({ItemStatus.IN_REVIEW}), ItemStatus.DRAFT, Permission.EDIT_KNOWLEDGE),
        Step("return", frozenset({ItemStatus.IN_REVIEW}), ItemStatus.DRAFT, Permission.REVIEW_KNOWLEDGE),
        Step("publish", frozenset({ItemStatus.IN_REVIEW}), ItemStatus.PUBLISHED, Permission.REVIEW_KNOWLEDGE),
        Step(
            "archive",
            frozenset({ItemStatus.DRAFT, ItemStatus.IN_REVIEW, ItemStatus.PUBLISHED}),
            ItemStatus.ARCHIVED,
            Permission.REVIEW_KNOWLEDGE,
        ),
        Step("reopen", frozenset({ItemStatus.ARCHIVED}), ItemStatus.DRAFT, Permission.EDIT_KNOWLEDGE),
    )
}
STEP_LABELS = {
    "submit": N_("Submit for review"),
    "withdraw": N_("Withdraw from review"),
    "return": N_("Return to the editor"),
    "publish": N_("Publish"),
    "archive": N_("Archive"),
    "reopen": N_("Reopen as draft"),
}


def allowed_steps(row: Item, actor: Actor | None = None) -> list[str]:
    return [
        step.name
        for step in STEPS.values()
        if row.status in step.sources
        and (actor is None or (actor.can(step.permission) and may_edit(actor, row.owner_department_id)))
    ]


async def transition(
    session: AsyncSession, *, actor: Actor, item_id: int, step_name: str, expected_version: int, note: str = ""
) -> Item:
    row = await get_item(session, item_id)
    require_version(expected=expected_version, current=row.version)
    step = STEPS.get(step_name)
    if step is None or row.status not in step.sources:
        raise Conflict(
            "This item cannot go that way from {status}.",
            params={"status": row.status},
            error_id="invalid_transition",
            details={"status": row.status, "allowed": allowed_steps(row)},
        )
    actor.require(step.permission)
    _require_edit(actor, row.owner_department_id)
    before = {"status": row.status, "live_revision_id": row.live_revision_id}
    row.status = str(step.target)
    live = False
    if step.name == "publish":
        await _make_live(session, actor=actor, row=row)
        live = True
    elif step.name == "archive":
        live = row.live_revision_id is not None
        row.live_revision_id = None
    if step.name in ("publish", "return"):
        row.reviewer_id = actor.user_id
        row.review_note = note
    await flush_or_conflict(session)
    audit.record(
        session, actor=actor, action=f"knowledge.item.{step.name}", target_type="kb_item", target_id=row.id,
        before=before, after={"status": row.status, "live_revision_id": row.live_revision_id}, reason=note or None,
    )  # fmt: skip
    _publish_change(session, row, step.name, live=live)
    if step.name == "submit":
        _notify_reviewers(session, row)
    return row


async def _make_live(session: AsyncSession, *, actor: Actor, row: Item) -> None:
    revision = await session.scalar(select(Revision).where(Revision.item_id == row.id, Revision.number == row.revision))
    if revision is None:  # pragma: no cover - every save writes its revision
        raise Conflict("This item has no saved revision to publish.")
    now = clock.now()
    revision.reviewer_id = actor.user_id
    revision.published_at = now
    row.live_revision_id = revision.id
    row.published_at = now


def _notify_reviewers(session: AsyncSession, row: Item) -> None:
    events.record(
        session,
        Notification(
            title=N_("A knowledge item waits for review"), body=row.question, link=f"/kb/edit/{row.id}",
            audience=Audience(permission=Permission.REVIEW_KNOWLEDGE.value),
        ),
    )  # fmt: skip


async def publish_now(session: AsyncSession, *, actor: Actor, item_id: int, note: str = "") -> Item:
    """Submit and publish in one go: for reviewers' own edits, imports and the demo."""
    row = await get_item(session, item_id)
    if row.status == ItemStatus.DRAFT:
        row = await transition(
            session, actor=actor, item_id=item_id, step_name="submit", expected_version=row.version, note=note
        )
    if row.status == ItemStatus.IN_REVIEW:
        row = await transition(
            session, actor=actor, item_id=item_id, step_name="publish", expected_version=row.version, note=note
        )
    return row


async def restore(session: AsyncSession, *, actor: Actor, item_id: int, expected_version: int, number: int) -> Item:
    """Makes an old revision the working copy again (as a new revision, so nothing is lost)."""
    revision = await get_revision(session, item_id=item_id, number=number)
    values = _from_content(revision.content)
    return await update_item(
        session, actor=actor, item_id=item_id, expected_version=expected_version, values=values,
        note=f"restore {number}",
    )  # fmt: skip


async def revisions(session: AsyncSession, *, item_id: int) -> list[Revision]:
    await get_item(session, item_id)
    return list(
        await session.scalars(select(Revision).where(Revision.item_id == item_id).order_by(Revision.number.desc()))
    )


async def get_revision(session: AsyncSession, *, item_id: int, number: int) -> Revision:
    revision = await session.scalar(select(Revision).where(Revision.item_id == item_id, Revision.number == number))
    if revision is None:
        raise NotFound("This revision does not exist.", details={"item_id": item_id, "revision": number})
    return revision


@dataclass(frozen=True)
class FieldDiff:
    field: str
    before: Any
    after: Any
    pieces: list[tuple[str, str]]  # (equal | insert | delete, text) for text fields


def diff_contents(before: dict[str, Any], after: dict[str, Any]) -> list[FieldDiff]:
    changes: list[FieldDiff] = []
    for field in CONTENT_FIELDS:
        old, new = before.get(field), after.get(field)
        if old == new:
            continue
        pieces = _text_diff(str(old or ""), str(new or "")) if field in TEXT_FIELDS else []
        changes.append(FieldDiff(field, old, new, pieces))
    return changes


@dataclass(frozen=True)
class RevisionDiff:
    before: Revision
    after: Revision
    changes: list[FieldDiff]


async def diff_revisions(session: AsyncSession, *, item_id: int, first: int, second: int) -> RevisionDiff:
    before = await get_revision(session, item_id=item_id, number=first)
    after = await get_revision(session, item_id=item_id, number=second)
    return RevisionDiff(before, after, diff_contents(before.content, after.content))


def _text_diff(old: str, new: str) -> list[tuple[str, str]]:
    """Character-level: Chinese has no spaces to split words on."""
    a, b = plain_text(old) if "<" in old else old, plain_text(new) if "<" in new else new
    pieces: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            pieces.append(("equal", a[i1:i2]))
            continue
        if i2 > i1:
            pieces.append(("delete", a[i1:i2]))
        if j2 > j1:
            pieces.append(("insert", b[j1:j2]))
    return pieces


# ---- variants --------------------------------------------------------------------------------


async def variants_of(session: AsyncSession, item_id: int) -> list[Variant]:
    return list(await session.scalars(select(Variant).where(Variant.item_id == item_id).order_by(Variant.id)))


async def add_variant(
    session: AsyncSession, *, actor: Actor, item_id: int, text: str, source: str = "editor"
) -> Variant:
    row = await get_item(session, item_id)
    _require_edit(actor, row.owner_department_id)
    existing = await session.scalar(select(Variant).where(Variant.item_id == item_id, Variant.text == text))
    if existing is not None:
        return existing
    variant = Variant(item_id=item_id, text=text, source=source, created_by_id=actor.user_id, created_at=clock.now())
    session.add(variant)
    await flush_or_conflict(session)
    audit.record(
        session, actor=actor, action="knowledge.variant.add", target_type="kb_item", target_id=item_id,
        after={"variant": text, "source": source},
    )  # fmt: skip
    _publish_change(session, row, "variants", live=row.live_revision_id is not None)
    return variant


async def remove_variant(session: AsyncSession, *, actor: Actor, item_id: int, variant_id: int) -> None:
    row = await get_item(session, item_id)
    _require_edit(actor, row.owner_department_id)
    variant = await session.get(Variant, variant_id)
    if variant is None or variant.item_id != item_id:
        raise NotFound("This representative question does not exist.", details={"variant_id": variant_id})
    await session.delete(variant)
    await session.flush()
    audit.record(
        session, actor=actor, action="knowledge.variant.remove", target_type="kb_item", target_id=item_id,
        before={"variant": variant.text},
    )  # fmt: skip
    _publish_change(session, row, "variants", live=row.live_revision_id is not None)


# ---- listing and live content ----------------------------------------------------------------


@dataclass(frozen=True)
class ItemFilter:
    q: str | None = None
    status: str | None = None
    category_id: int | None = None
    owner_department_id: int | None = None
    limit: int = 200
    offset: int = 0


async def list_items(session: AsyncSession, *, where: ItemFilter = ItemFilter()) -> tuple[list[Item], int]:
    query = select(Item)
    if where.q:
        pattern = f"%{where.q}%"
        query = query.where(or_(Item.question.ilike(pattern), Item.key.ilike(pattern)))
    if where.status:
        query = query.where(Item.status == where.status)
    if where.category_id:
        tree = await CategoryTree.load(session)
        inside = [c for c in tree.by_id if where.category_id in tree.ancestors(c)]
        query = query.where(Item.category_id.in_(inside))
    if where.owner_department_id:
        query = query.where(Item.owner_department_id == where.owner_department_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.scalars(
        query.order_by(Item.updated_at.desc(), Item.id.desc()).limit(where.limit).offset(where.offset)
    )
    return list(rows), int(total)


@dataclass(frozen=True)
class LiveItem:
    """What callers hear: the live revision of a published item and its variants."""

    item_id: int
    content: dict[str, Any]
    variants: tuple[str, ...]
    published_at: datetime | None

    @property
    def question(self) -> str:
        return str(self.content["question"])

    def valid_on(self, day: date) -> bool:
        start, end = self.content.get("valid_from"), self.content.get("valid_to")
        return (not start or date.fromisoformat(start) <= day) and (not end or day <= date.fromisoformat(end))


async def live_items(session: AsyncSession, item_ids: Iterable[int] | None = None) -> list[LiveItem]:
    query = (
        select(Item.id, Revision.content, Item.published_at)
        .join(Revision, Revision.id == Item.live_revision_id)
        .where(Item.live_revision_id.is_not(None))
    )
    if item_ids is not None:
        query = query.where(Item.id.in_(list(item_ids)))
    rows = (await session.execute(query)).all()
    variants: dict[int, list[str]] = {row.id: [] for row in rows}
    if rows:
        found = await session.execute(
            select(Variant.item_id, Variant.text).where(Variant.item_id.in_(list(variants))).order_by(Variant.id)
        )
        for item_id, text in found:
            variants[item_id].append(text)
    return [LiveItem(row.id, row.content, tuple(variants[row.id]), row.published_at) for row in rows]


# ---- feedback and favourites -----------------------------------------------------------------


async def add_feedback(session: AsyncSession, *, actor: Actor, item_id: int, kind: str, comment: str) -> Feedback:
    actor.require(Permission.READ_KNOWLEDGE)
    row = await get_item(session, item_id)
    feedback = Feedback(item_id=item_id, revision=row.revision, kind=kind, comment=comment, user_id=actor.user_id,
                        created_at=clock.now())  # fmt: skip
    session.add(feedback)
    await session.flush()
    if kind == "outdated":
        events.record(
            session,
            Notification(
                title=N_("An answer was marked outdated"), body=f"{row.question} — {comment}".strip(" —"),
                link=f"/kb/edit/{row.id}", level="warning",
                audience=Audience(permission=Permission.EDIT_KNOWLEDGE.value, department_id=row.owner_department_id),
            ),
        )  # fmt: skip
    return feedback


def feedback_scope(actor: Actor) -> frozenset[int] | None:
    """The owner departments whose feedback an editor sees; None: all of them."""
    return None if actor.can(Permission.REVIEW_KNOWLEDGE) or actor.is_unscoped else actor.department_ids


async def feedback_for(
    session: AsyncSession,
    *,
    item_id: int | None = None,
    open_only: bool = False,
    departments: frozenset[int] | None = None,
) -> list[Feedback]:
    query = select(Feedback).order_by(Feedback.created_at.desc()).limit(500)
    if departments is not None:
        owned = select(Item.id).where(Item.owner_department_id.in_(departments))
        query = query.where(Feedback.item_id.in_(owned))
    if item_id is not None:
        query = query.where(Feedback.item_id == item_id)
    if open_only:
        query = query.where(Feedback.kind == "outdated", Feedback.resolved_at.is_(None))
    return list(await session.scalars(query))


async def resolve_feedback(session: AsyncSession, *, actor: Actor, feedback_id: int) -> Feedback:
    feedback = await session.get(Feedback, feedback_id)
    if feedback is None:
        raise NotFound("This feedback does not exist.", details={"feedback_id": feedback_id})
    item = await get_item(session, feedback.item_id)
    _require_edit(actor, item.owner_department_id)
    if feedback.resolved_at is None:
        feedback.resolved_at = clock.now()
        feedback.resolved_by_id = actor.user_id
        await session.flush()
    return feedback


async def helpful_counts(session: AsyncSession, item_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {}
    if not item_ids:
        return counts
    rows = await session.execute(
        select(Feedback.item_id, Feedback.kind, func.count())
        .where(Feedback.item_id.in_(list(item_ids)))
        .group_by(Feedback.item_id, Feedback.kind)
    )
    for item_id, kind, count in rows:
        counts.setdefault(item_id, {})[kind] = count
    return counts


async def set_favourite(session: AsyncSession, *, actor: Actor, item_id: int, on: bool) -> None:
    actor.require(Permission.READ_KNOWLEDGE)
    if actor.user_id is None:
        raise PermissionDenied("Favourites belong to a person; sign in as one.")
    await get_item(session, item_id)
    await session.execute(delete(Favourite).where(Favourite.user_id == actor.user_id, Favourite.item_id == item_id))
    if on:
        session.add(Favourite(user_id=actor.user_id, item_id=item_id, created_at=clock.now()))
    await session.flush()


async def favourite_ids(session: AsyncSession, *, user_id: int | None) -> list[int]:
    if user_id is None:
        return []
    return list(
        await session.scalars(
            select(Favourite.item_id).where(Favourite.user_id == user_id).order_by(Favourite.created_at.desc())
        )
    )


# ---- synonyms --------------------------------------------------------------------------------


async def synonym_groups(session: AsyncSession, *, active_only: bool = False) -> list[SynonymGroup]:
    query = select(SynonymGroup).order_by(SynonymGroup.id)
    if active_only:
        query = query.where(SynonymGroup.is_active.is_(True))
    return list(await session.scalars(query))


async def _get_synonyms(session: AsyncSession, group_id: int) -> SynonymGroup:
    row = await session.get(SynonymGroup, group_id)
    if row is None:
        raise NotFound("This synonym group does not exist.", details={"group_id": group_id})
    return row


def _synonyms_changed(session: AsyncSession, group_id: int) -> None:
    events.record(session, SynonymsChanged(group_id=group_id, audience=KNOWLEDGE_READERS))


async def create_synonyms(session: AsyncSession, *, actor: Actor, values: dict[str, Any]) -> SynonymGroup:
    actor.require(Permission.REVIEW_KNOWLEDGE)
    row = SynonymGroup(**values, version=1)
    session.add(row)
    await session.flush()
    audit.record(session, actor=actor, action="knowledge.synonyms.create", target_type="kb_synonyms",
                 target_id=row.id, after=values)  # fmt: skip
    _synonyms_changed(session, row.id)
    return row


async def update_synonyms(
    session: AsyncSession, *, actor: Actor, group_id: int, expected_version: int, values: dict[str, Any]
) -> SynonymGroup:
    actor.require(Permission.REVIEW_KNOWLEDGE)
    row = await _get_synonyms(session, group_id)
    require_version(expected=expected_version, current=row.version)
    before = {"terms": row.terms, "note": row.note, "is_active": row.is_active}
    for key, value in values.items():
        setattr(row, key, value)
    await flush_or_conflict(session)
    audit.record(session, actor=actor, action="knowledge.synonyms.update", target_type="kb_synonyms",
                 target_id=row.id, before=before, after=values)  # fmt: skip
    _synonyms_changed(session, row.id)
    return row


async def delete_synonyms(session: AsyncSession, *, actor: Actor, group_id: int) -> None:
    actor.require(Permission.REVIEW_KNOWLEDGE)
    row = await _get_synonyms(session, group_id)
    before = {"terms": row.terms, "note": row.note}
    await session.delete(row)
    await session.flush()
    audit.record(session, actor=actor, action="knowledge.synonyms.delete", target_type="kb_synonyms",
                 target_id=group_id, before=before)  # fmt: skip
    _synonyms_changed(session, group_id)
