"""Knowledge API: categories, items and their workflow, revisions and diffs, variants, candidates,
synonyms, feedback, favourites, search; and the public search the FAQ portal and the bot use."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Query, Request, Response, UploadFile
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.errors import NotFound
from patientline.core.validation import MAX_ID, PathId, QueryId, StrictModel, Version
from patientline.knowledge import candidates, images, service
from patientline.knowledge.live_index import Filters, LiveSearch
from patientline.knowledge.models import Item
from patientline.knowledge.schemas import (
    AnswerHtml,
    CandidateAttach,
    CandidateCreate,
    CandidateDecision,
    CandidateRead,
    CategoryCreate,
    CategoryRead,
    CategoryUpdate,
    FeedbackCreate,
    FeedbackRead,
    ItemCreate,
    ItemDetail,
    ItemRead,
    ItemUpdate,
    RestoreRequest,
    RevisionRead,
    SearchAnswer,
    SearchHit,
    SynonymCreate,
    SynonymRead,
    SynonymUpdate,
    Transition,
    VariantCreate,
    VariantRead,
)
from patientline.knowledge.search import SearchResult, highlight_html
from patientline.web.deps import CurrentActor, Session, app_state
from patientline.web.responses import FastJSONResponse

router = APIRouter(prefix="/api/kb", tags=["knowledge"])
public_router = APIRouter(prefix="/api/public/kb", tags=["knowledge (public)"])

SearchText = Annotated[str, Query(min_length=1, max_length=200)]
Limit = Annotated[int, Query(ge=1, le=50)]
RECENT_DAYS = 7


def _json(model: type[BaseModel], row: Any, status_code: int = 200) -> FastJSONResponse:
    return FastJSONResponse(model.model_validate(row).model_dump(mode="json"), status_code=status_code)


def live_search(request: Request) -> LiveSearch:
    search: LiveSearch = app_state(request).knowledge
    return search


# ---- categories ------------------------------------------------------------------------------


@router.get("/categories", response_model=list[CategoryRead], summary="The category tree, depth first")
async def list_categories(actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.READ_KNOWLEDGE)
    tree = await service.CategoryTree.load(session)
    rows = [CategoryRead.model_validate(row).model_dump(mode="json") | {"depth": depth} for row, depth in tree.walk()]
    return FastJSONResponse(rows)


@router.post("/categories", response_model=CategoryRead, status_code=201, summary="Create a category")
async def create_category(body: CategoryCreate, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await service.create_category(session, actor=actor, values=body.model_dump())
        return _json(CategoryRead, row, 201)


@router.patch("/categories/{category_id}", response_model=CategoryRead, summary="Change a category")
async def update_category(category_id: PathId, body: CategoryUpdate, actor: CurrentActor, session: Session) -> Response:
    changes = body.model_dump(exclude_unset=True, exclude={"version"})
    async with session.begin():
        row = await service.update_category(
            session, actor=actor, category_id=category_id, expected_version=body.version, changes=changes
        )
        return _json(CategoryRead, row)


@router.delete("/categories/{category_id}", status_code=204, summary="Delete an empty category")
async def delete_category(category_id: PathId, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        await service.delete_category(session, actor=actor, category_id=category_id)
    return Response(status_code=204)


# ---- items -----------------------------------------------------------------------------------


async def item_detail(session: AsyncSession, actor: Actor, row: Any) -> dict[str, Any]:
    data = ItemRead.model_validate(row).model_dump(mode="json")
    variants = [
        VariantRead.model_validate(v).model_dump(mode="json") for v in await service.variants_of(session, row.id)
    ]
    return data | {"variants": variants, "allowed_transitions": service.allowed_steps(row, actor)}


@router.get("/items", summary="Items (working copies) with filters")
async def list_items(
    actor: CurrentActor,
    session: Session,
    q: Annotated[str | None, Query(max_length=100)] = None,
    status: Literal["draft", "in_review", "published", "archived"] | None = None,
    category_id: QueryId = None,
    owner_department_id: QueryId = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> Response:
    actor.require(Permission.READ_KNOWLEDGE)
    where = service.ItemFilter(q, status, category_id, owner_department_id, limit, offset)
    rows, total = await service.list_items(session, where=where)
    return FastJSONResponse(
        {"total": total, "items": [ItemRead.model_validate(row).model_dump(mode="json") for row in rows]}
    )


@router.post("/items", response_model=ItemDetail, status_code=201, summary="Create a draft item")
async def create_item(body: ItemCreate, actor: CurrentActor, session: Session) -> Response:
    values = body.model_dump(exclude={"variants", "note"})
    async with session.begin():
        row = await service.create_item(session, actor=actor, values=values, variants=body.variants, note=body.note)
        return FastJSONResponse(await item_detail(session, actor, row), status_code=201)


@router.get("/items/{item_id}", response_model=ItemDetail, summary="An item with its variants and next steps")
async def get_item(item_id: PathId, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.READ_KNOWLEDGE)
    row = await service.get_item(session, item_id)
    return FastJSONResponse(await item_detail(session, actor, row))


@router.put("/items/{item_id}", response_model=ItemDetail, summary="Save the working copy (a new revision)")
async def update_item(item_id: PathId, body: ItemUpdate, actor: CurrentActor, session: Session) -> Response:
    values = body.model_dump(exclude={"version", "note"})
    async with session.begin():
        row = await service.update_item(
            session, actor=actor, item_id=item_id, expected_version=body.version, values=values, note=body.note
        )
        return FastJSONResponse(await item_detail(session, actor, row))


Step = Literal["submit", "withdraw", "return", "publish", "archive", "reopen"]


@router.post("/items/{item_id}/transitions/{step}", response_model=ItemDetail, summary="Move through review")
async def transition(item_id: PathId, step: Step, body: Transition, actor: CurrentActor, session: Session) -> Response:
    """draft -> in_review (submit) -> published (publish) or back to draft (return, withdraw);
    archive from any of them, reopen an archived item. Other moves answer 409 with the allowed ones."""
    async with session.begin():
        row = await service.transition(
            session, actor=actor, item_id=item_id, step_name=step, expected_version=body.version, note=body.note
        )
        return FastJSONResponse(await item_detail(session, actor, row))


@router.get("/items/{item_id}/revisions", response_model=list[RevisionRead], summary="Every saved version")
async def list_revisions(item_id: PathId, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.READ_KNOWLEDGE)
    rows = await service.revisions(session, item_id=item_id)
    return FastJSONResponse([RevisionRead.model_validate(r).model_dump(mode="json") for r in rows])


@router.get("/items/{item_id}/diff", summary="What changed between two revisions")
async def diff(
    item_id: PathId,
    actor: CurrentActor,
    session: Session,
    from_: Annotated[int, Query(alias="from", ge=1, le=100_000)],
    to: Annotated[int, Query(ge=1, le=100_000)],
) -> Response:
    actor.require(Permission.READ_KNOWLEDGE)
    diff = await service.diff_revisions(session, item_id=item_id, first=from_, second=to)
    return FastJSONResponse({"from": from_, "to": to, "changes": [asdict(change) for change in diff.changes]})


@router.post("/items/{item_id}/restore", response_model=ItemDetail, summary="Make an old revision the working copy")
async def restore(item_id: PathId, body: RestoreRequest, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await service.restore(
            session, actor=actor, item_id=item_id, expected_version=body.version, number=body.revision
        )
        return FastJSONResponse(await item_detail(session, actor, row))


@router.post("/items/{item_id}/variants", response_model=VariantRead, status_code=201, summary="Add a variant")
async def add_variant(item_id: PathId, body: VariantCreate, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await service.add_variant(session, actor=actor, item_id=item_id, text=body.text)
        return _json(VariantRead, row, 201)


@router.delete("/items/{item_id}/variants/{variant_id}", status_code=204, summary="Remove a variant")
async def remove_variant(item_id: PathId, variant_id: PathId, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        await service.remove_variant(session, actor=actor, item_id=item_id, variant_id=variant_id)
    return Response(status_code=204)


@router.post("/items/{item_id}/feedback", response_model=FeedbackRead, status_code=201, summary="Helpful or outdated")
async def add_feedback(item_id: PathId, body: FeedbackCreate, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await service.add_feedback(session, actor=actor, item_id=item_id, kind=body.kind, comment=body.comment)
        return _json(FeedbackRead, row, 201)


@router.get("/feedback", response_model=list[FeedbackRead], summary="Feedback, newest first")
async def list_feedback(
    actor: CurrentActor, session: Session, item_id: QueryId = None, open_only: bool = False
) -> Response:
    actor.require(Permission.EDIT_KNOWLEDGE)
    rows = await service.feedback_for(
        session, item_id=item_id, open_only=open_only, departments=service.feedback_scope(actor)
    )
    return FastJSONResponse([FeedbackRead.model_validate(r).model_dump(mode="json") for r in rows])


@router.post("/feedback/{feedback_id}/resolve", response_model=FeedbackRead, summary="Mark feedback as dealt with")
async def resolve_feedback(feedback_id: PathId, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await service.resolve_feedback(session, actor=actor, feedback_id=feedback_id)
        return _json(FeedbackRead, row)


@router.put("/items/{item_id}/favourite", status_code=204, summary="Pin an item")
async def pin(item_id: PathId, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        await service.set_favourite(session, actor=actor, item_id=item_id, on=True)
    return Response(status_code=204)


@router.delete("/items/{item_id}/favourite", status_code=204, summary="Unpin an item")
async def unpin(item_id: PathId, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        await service.set_favourite(session, actor=actor, item_id=item_id, on=False)
    return Response(status_code=204)


class PreviewRequest(StrictModel):
    answer_html: AnswerHtml


@router.post("/preview", summary="An answer as it will be stored: sanitised HTML")
async def preview(body: PreviewRequest, actor: CurrentActor) -> Response:
    actor.require(Permission.EDIT_KNOWLEDGE)
    return FastJSONResponse({"html": body.answer_html})


# ---- search ----------------------------------------------------------------------------------


def search_answer(search: LiveSearch, text: str, result: SearchResult) -> dict[str, Any]:
    recent = clock.now() - timedelta(days=RECENT_DAYS)
    hits = []
    for hit in result.hits:
        item = search.items.get(int(hit.doc_id))
        if item is None:
            continue
        content = item.content
        hits.append(
            SearchHit(
                item_id=item.item_id,
                score=round(hit.score, 4),
                confidence=round(hit.confidence, 4),
                question=item.question,
                matched=hit.matched,
                highlighted=highlight_html(hit.matched, result),
                spoken=content.get("spoken", ""),
                category_id=content["category_id"],
                category_path=search.tree.path(int(content["category_id"])),
                public=bool(content.get("public", True)),
                published_at=item.published_at,
                recent=item.published_at is not None and item.published_at >= recent,
            ).model_dump(mode="json")
        )
    return {"query": text, "no_good_match": result.no_good_match, "hits": hits}


@router.get("/search", response_model=SearchAnswer, summary="Search the live knowledge base")
async def search(
    request: Request,
    actor: CurrentActor,
    session: Session,
    q: SearchText,
    category_id: QueryId = None,
    site_id: QueryId = None,
    on: date | None = None,
    limit: Limit = 10,
    final: bool = False,
) -> Response:
    """`final=true` marks the query the agent settled on: when nothing matched well, it is collected as
    a candidate representative question."""
    actor.require(Permission.READ_KNOWLEDGE)
    engine = live_search(request)
    result = await engine.search(q, limit=limit, filters=Filters(category_id, site_id, on))
    if final and result.no_good_match:
        await candidates.record_miss(session, actor=actor, text=q, source="search_miss")
    return FastJSONResponse(search_answer(engine, q, result))


@public_router.get("/search", response_model=SearchAnswer, summary="Search published public answers (no login)")
async def public_search(request: Request, q: SearchText, site_id: QueryId = None, limit: Limit = 5) -> Response:
    engine = live_search(request)
    result = await engine.search(q, limit=limit, filters=Filters(site_id=site_id, public_only=True))
    return FastJSONResponse(search_answer(engine, q, result))


# ---- candidates ------------------------------------------------------------------------------


@router.post("/candidates", response_model=CandidateRead, status_code=201, summary="Add a caller's wording")
async def suggest(body: CandidateCreate, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await candidates.suggest(
            session, actor=actor, text=body.text, source=body.source, context=body.context, item_id=body.item_id
        )
        return _json(CandidateRead, row, 201)


@router.get("/candidates", response_model=list[CandidateRead], summary="Candidates, most heard first")
async def list_candidates(
    actor: CurrentActor,
    session: Session,
    status: Literal["open", "attached", "created", "dismissed"] = "open",
    source: Literal["agent", "search_miss", "bot", "portal"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> Response:
    actor.require(Permission.EDIT_KNOWLEDGE)
    rows = await candidates.list_candidates(
        session, where=candidates.CandidateFilter(status=status, source=source, limit=limit, offset=offset)
    )
    return FastJSONResponse([CandidateRead.model_validate(r).model_dump(mode="json") for r in rows])


@router.post("/candidates/{candidate_id}/attach", response_model=CandidateRead, summary="Make it an item's variant")
async def attach(candidate_id: PathId, body: CandidateAttach, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await candidates.attach(
            session, actor=actor, candidate_id=candidate_id, expected_version=body.version, item_id=body.item_id
        )
        return _json(CandidateRead, row)


class CandidateToItem(ItemCreate):
    candidate_version: Version


@router.post(
    "/candidates/{candidate_id}/item", response_model=ItemDetail, status_code=201, summary="Make a new item of it"
)
async def create_from(candidate_id: PathId, body: CandidateToItem, actor: CurrentActor, session: Session) -> Response:
    values = body.model_dump(exclude={"variants", "note", "candidate_version"})
    async with session.begin():
        row = await candidates.create_item_from(
            session, actor=actor, candidate_id=candidate_id, expected_version=body.candidate_version, values=values
        )
        return FastJSONResponse(await item_detail(session, actor, row), status_code=201)


@router.post("/candidates/{candidate_id}/dismiss", response_model=CandidateRead, summary="Not worth keeping")
async def dismiss(candidate_id: PathId, body: CandidateDecision, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await candidates.dismiss(session, actor=actor, candidate_id=candidate_id, expected_version=body.version)
        return _json(CandidateRead, row)


# ---- synonyms --------------------------------------------------------------------------------


@router.get("/synonyms", response_model=list[SynonymRead], summary="Synonym groups")
async def list_synonyms(actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.READ_KNOWLEDGE)
    rows = await service.synonym_groups(session)
    return FastJSONResponse([SynonymRead.model_validate(r).model_dump(mode="json") for r in rows])


@router.post("/synonyms", response_model=SynonymRead, status_code=201, summary="Add a synonym group")
async def create_synonyms(body: SynonymCreate, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await service.create_synonyms(session, actor=actor, values=body.model_dump())
        return _json(SynonymRead, row, 201)


@router.put("/synonyms/{group_id}", response_model=SynonymRead, summary="Change a synonym group")
async def update_synonyms(group_id: PathId, body: SynonymUpdate, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await service.update_synonyms(
            session,
            actor=actor,
            group_id=group_id,
            expected_version=body.version,
            values=body.model_dump(exclude={"version"}),
        )
        return _json(SynonymRead, row)


@router.delete("/synonyms/{group_id}", status_code=204, summary="Remove a synonym group")
async def delete_synonyms(group_id: PathId, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        await service.delete_synonyms(session, actor=actor, group_id=group_id)
    return Response(status_code=204)


# ---- images ----------------------------------------------------------------------------------


@router.post("/images", response_model=images.ImageRead, status_code=201, summary="Upload a picture for answers")
async def upload_image(
    actor: CurrentActor,
    session: Session,
    file: Annotated[UploadFile, File(description="PNG, JPEG, GIF or WebP, at most 1 MB")],
    item_id: QueryId = None,
) -> Response:
    raw = await file.read(images.MAX_BYTES + 1)
    async with session.begin():
        row = await images.store(session, actor=actor, filename=file.filename or "image", raw=raw, item_id=item_id)
        return FastJSONResponse(images.ImageRead.of(row).model_dump(mode="json"), status_code=201)


# ---- live answers for the agent panel and the FAQ portal -------------------------------------
# What callers hear, never the working copy: the live revision of published items.

RECENT_LIMIT = 20


class LiveRead(BaseModel):
    item_id: int
    question: str
    answer_html: str
    spoken: str
    tags: list[str]
    category_id: int
    category_path: str
    valid_from: date | None
    valid_to: date | None
    published_at: datetime | None
    recent: bool
    variants: list[str]
    site_ids: list[int]
    department_ids: list[int]
    public: bool


def live_view(item: service.LiveItem, tree: service.CategoryTree) -> dict[str, Any]:
    content = item.content
    category_id = int(content["category_id"])
    published = item.published_at
    return {
        "item_id": item.item_id,
        "question": item.question,
        "answer_html": content.get("answer_html", ""),
        "spoken": content.get("spoken", ""),
        "tags": list(content.get("tags", [])),
        "category_id": category_id,
        "category_path": tree.path(category_id),
        "valid_from": content.get("valid_from"),
        "valid_to": content.get("valid_to"),
        "published_at": published,
        "recent": published is not None and published >= clock.now() - timedelta(days=RECENT_DAYS),
        "variants": list(item.variants),
        "site_ids": list(content.get("site_ids", [])),
        "department_ids": list(content.get("department_ids", [])),
        "public": bool(content.get("public", True)),
    }


async def live_views(session: AsyncSession, item_ids: list[int]) -> list[dict[str, Any]]:
    """Live summaries in the order asked for; items that are not live are left out."""
    if not item_ids:
        return []
    found = {item.item_id: item for item in await service.live_items(session, item_ids)}
    tree = await service.CategoryTree.load(session)
    return [live_view(found[item_id], tree) for item_id in item_ids if item_id in found]


async def live_one(session: AsyncSession, item_id: int, *, public_on: date | None = None) -> dict[str, Any]:
    """A live item; with `public_on`, only a public one valid on that day (the public never sees the
    rest, not even that it exists)."""
    found = await service.live_items(session, [item_id])
    hidden = public_on is not None and (
        not found or not found[0].content.get("public", True) or not found[0].valid_on(public_on)
    )
    if not found or hidden:
        raise NotFound("This knowledge item does not exist.", details={"item_id": item_id})
    return live_view(found[0], await service.CategoryTree.load(session))


async def recently_published(session: AsyncSession, *, limit: int = RECENT_LIMIT) -> list[dict[str, Any]]:
    query = (
        select(Item.id)
        .where(Item.live_revision_id.is_not(None), Item.published_at.is_not(None))
        .order_by(Item.published_at.desc(), Item.id.desc())
        .limit(limit)
    )
    return await live_views(session, list(await session.scalars(query)))


async def pinned(session: AsyncSession, actor: Actor) -> list[dict[str, Any]]:
    return await live_views(session, await service.favourite_ids(session, user_id=actor.user_id))


@router.get("/live/{item_id}", response_model=LiveRead, summary="The live answer of a published item")
async def get_live(item_id: PathId, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.READ_KNOWLEDGE)
    return FastJSONResponse(await live_one(session, item_id))


@router.get("/recent", response_model=list[LiveRead], summary="The latest published answers")
async def list_recent(actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.READ_KNOWLEDGE)
    return FastJSONResponse(await recently_published(session))


@router.get("/favourites", response_model=list[LiveRead], summary="The caller's pinned answers, live")
async def list_favourites(actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.READ_KNOWLEDGE)
    return FastJSONResponse(await pinned(session, actor))


@public_router.get("/items/{item_id}", response_model=LiveRead, summary="A public published answer (no login)")
async def get_public(item_id: PathId, request: Request, session: Session) -> Response:
    today = clock.today(app_state(request).settings.timezone)
    return FastJSONResponse(await live_one(session, item_id, public_on=today))
