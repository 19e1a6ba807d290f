"""Editors' pages: the item list by category and status, the item editor with preview, revisions and
diffs, the review queue, candidates, synonyms and the category tree. Forms post JSON to the API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BeforeValidator
from pydantic import Field as Constraint
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.validation import MAX_ID, PathId
from patientline.directory import service as directory
from patientline.knowledge import candidates, images, service
from patientline.knowledge.models import Item, ItemStatus
from patientline.web.deps import CurrentActor, OptionalActor, Session, app_state
from patientline.web.templating import render

router = APIRouter(include_in_schema=False)

FilterId = Annotated[Annotated[int, Constraint(ge=1, le=MAX_ID)] | None, BeforeValidator(lambda v: v or None), Query()]
StatusFilter = Annotated[str | None, BeforeValidator(lambda v: v if v in set(ItemStatus) else None), Query()]
STATUS_LABELS = {
    "draft": "Draft",
    "in_review": "In review",
    "published": "Published",
    "archived": "Archived",
}


async def _status_counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Item.status, func.count()).group_by(Item.status))
    return {status: count for status, count in rows.tuples()}


async def _choices(session: AsyncSession) -> dict[str, Any]:
    tree = await service.CategoryTree.load(session)
    return {
        "tree": tree.walk(),
        "categories": [(row.id, tree.path(row.id)) for row, _ in tree.walk()],
        "departments": await directory.department_choices(session),
        "sites": await directory.site_choices(session),
    }


@router.get("/kb/edit")
async def item_list(
    request: Request,
    actor: CurrentActor,
    session: Session,
    q: Annotated[str | None, Query(max_length=100)] = None,
    status: StatusFilter = None,
    category_id: FilterId = None,
) -> Response:
    actor.require(Permission.EDIT_KNOWLEDGE)
    where = service.ItemFilter(q=q, status=status, category_id=category_id, limit=200)
    rows, total = await service.list_items(session, where=where)
    tree = await service.CategoryTree.load(session)
    context = {
        "rows": rows,
        "total": total,
        "q": q or "",
        "status": status,
        "category_id": category_id,
        "tree": tree.walk(),
        "paths": {row.id: tree.path(row.id) for row in tree.by_id.values()},
        "counts": await _status_counts(session),
        "status_labels": STATUS_LABELS,
        "open_candidates": await candidates.open_count(session),
    }
    template = "knowledge/item_rows.html" if request.headers.get("hx-request") else "knowledge/items.html"
    return render(request, template, context)


@router.get("/kb/edit/new")
async def new_item(
    request: Request,
    actor: CurrentActor,
    session: Session,
    candidate: FilterId = None,
    category_id: FilterId = None,
) -> Response:
    actor.require(Permission.EDIT_KNOWLEDGE)
    source = await candidates.get_candidate(session, candidate) if candidate else None
    defaults = {
        "question": source.text if source else "",
        "category_id": category_id,
        "public": True,
        "owner_department_id": next(iter(sorted(actor.department_ids)), None),
    }
    context = await _choices(session) | {"row": None, "values": defaults, "candidate": source, "can_edit": True}
    return render(request, "knowledge/item_form.html", context)


@router.get("/kb/edit/{item_id}")
async def edit_item(request: Request, item_id: PathId, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.READ_KNOWLEDGE)
    row = await service.get_item(session, item_id)
    history = await service.revisions(session, item_id=item_id)
    context = await _choices(session) | {
        "row": row,
        "values": service.content_of(row),
        "variants": await service.variants_of(session, item_id),
        "revisions": history,
        "live_number": next((r.number for r in history if r.id == row.live_revision_id), None),
        "steps": service.allowed_steps(row, actor),
        "step_labels": service.STEP_LABELS,
        "status_labels": STATUS_LABELS,
        "feedback": await service.feedback_for(session, item_id=item_id),
        "can_edit": service.may_edit(actor, row.owner_department_id),
        "candidate": None,
    }
    return render(request, "knowledge/item_form.html", context)


@router.get("/kb/edit/{item_id}/diff")
async def diff_page(
    request: Request,
    item_id: PathId,
    actor: CurrentActor,
    session: Session,
    from_: Annotated[int, Query(alias="from", ge=1, le=100_000)],
    to: Annotated[int, Query(ge=1, le=100_000)],
) -> Response:
    actor.require(Permission.READ_KNOWLEDGE)
    row = await service.get_item(session, item_id)
    diff = await service.diff_revisions(session, item_id=item_id, first=from_, second=to)
    context = {
        "row": row,
        "before": diff.before,
        "after": diff.after,
        "changes": diff.changes,
        "can_edit": service.may_edit(actor, row.owner_department_id),
    }
    return render(request, "knowledge/diff.html", context)


@router.get("/kb/candidates")
async def candidate_list(
    request: Request,
    actor: CurrentActor,
    session: Session,
    status: Annotated[str, Query(pattern="^(open|attached|created|dismissed)$")] = "open",
) -> Response:
    actor.require(Permission.EDIT_KNOWLEDGE)
    rows = await candidates.list_candidates(session, where=candidates.CandidateFilter(status=status))
    hinted = {row.suggested_item_id or row.item_id for row in rows} - {None}
    questions = dict((await session.execute(select(Item.id, Item.question).where(Item.id.in_(hinted)))).tuples().all())
    context = {"rows": rows, "status": status, "questions": questions}
    return render(request, "knowledge/candidates.html", context)


@router.get("/kb/synonyms")
async def synonym_list(request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.READ_KNOWLEDGE)
    context = {
        "rows": await service.synonym_groups(session),
        "can_edit": actor.can(Permission.REVIEW_KNOWLEDGE),
    }
    return render(request, "knowledge/synonyms.html", context)


@router.get("/kb/categories")
async def category_list(request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.READ_KNOWLEDGE)
    tree = await service.CategoryTree.load(session)
    counts = dict((await session.execute(select(Item.category_id, func.count()).group_by(Item.category_id))).tuples())
    context = {
        "tree": tree.walk(),
        "counts": counts,
        "can_edit": actor.can(Permission.REVIEW_KNOWLEDGE),
    }
    return render(request, "knowledge/categories.html", context)


def _reader(actor: Actor | None) -> Actor | None:
    return actor if actor is not None and actor.can(Permission.READ_KNOWLEDGE) else None


@router.get("/kb/images/{image_id}")
async def image(request: Request, image_id: PathId, actor: OptionalActor, session: Session) -> Response:
    today = clock.today(app_state(request).settings.timezone)
    row = await images.load(session, image_id=image_id, actor=_reader(actor), today=today)
    return Response(
        row.data,
        media_type=row.content_type,
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
