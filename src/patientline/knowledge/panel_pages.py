"""The agent knowledge panel at /kb, the page agents keep open during calls: search as they type, the live
answer beside the results, pinned and recently changed answers. `?embed=1` renders it without the staff
layout, for the contact workbench.

The fragments under /kb/panel/ are what the page's script swaps in (htmx); the whole page renders the
same state from the query string, so a reload or a link shows what the agent saw."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BeforeValidator
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.validation import PathId
from patientline.directory.pages import FilterId
from patientline.directory.service import site_choices
from patientline.knowledge import service
from patientline.knowledge.live_index import Filters
from patientline.knowledge.router import live_one, live_search, pinned, recently_published, search_answer
from patientline.web.deps import CurrentActor, Session
from patientline.web.templating import render

router = APIRouter(prefix="/kb", include_in_schema=False)

RESULT_LIMIT = 10
SearchBox = Annotated[str, Query(max_length=200)]
# answers valid on another day (a holiday timetable asked about in advance); the form sends `on=` for today
OnDay = Annotated[date | None, BeforeValidator(lambda v: v or None), Query()]


async def _side(session: AsyncSession, actor: Actor) -> dict[str, Any]:
    return {"pinned": await pinned(session, actor), "recent": await recently_published(session)}


async def _results(request: Request, q: str, filters: Filters) -> dict[str, Any] | None:
    """The search answer for the box, or None when it is empty (the page then invites typing)."""
    text = q.strip()
    if not text:
        return None
    engine = live_search(request)
    result = await engine.search(text, limit=RESULT_LIMIT, filters=filters)
    return search_answer(engine, text, result)


async def _answer(session: AsyncSession, actor: Actor, item_id: int) -> dict[str, Any]:
    favourites = await service.favourite_ids(session, user_id=actor.user_id)
    return {"answer": await live_one(session, item_id), "is_pinned": item_id in favourites}


async def _filter_choices(session: AsyncSession) -> dict[str, Any]:
    tree = await service.CategoryTree.load(session)
    categories = [(row.id, row.name, depth) for row, depth in tree.walk() if row.is_active]
    return {"categories": categories, "sites": await site_choices(session)}


@router.get("")
async def panel(
    request: Request,
    actor: CurrentActor,
    session: Session,
    q: SearchBox = "",
    category_id: FilterId = None,
    site_id: FilterId = None,
    on: OnDay = None,
    item: FilterId = None,
    embed: bool = False,
) -> Response:
    actor.require(Permission.READ_KNOWLEDGE)
    context: dict[str, Any] = {
        "embed": embed,
        "q": q,
        "category_id": category_id,
        "site_id": site_id,
        "on": on,
        "results": await _results(request, q, Filters(category_id, site_id, on)),
        "answer": None,
    }
    context |= await _filter_choices(session)
    context |= await _side(session, actor)
    if item is not None:
        context |= await _answer(session, actor, item)
    return render(request, "knowledge/panel.html", context)


@router.get("/panel/results")
async def results_fragment(
    request: Request,
    actor: CurrentActor,
    q: SearchBox = "",
    category_id: FilterId = None,
    site_id: FilterId = None,
    on: OnDay = None,
    embed: bool = False,
) -> Response:
    actor.require(Permission.READ_KNOWLEDGE)
    results = await _results(request, q, Filters(category_id, site_id, on))
    context = {"q": q.strip(), "results": results, "embed": embed, "swap_count": True}
    return render(request, "knowledge/panel_results.html", context)


@router.get("/panel/answer/{item_id}")
async def answer_fragment(item_id: PathId, request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.READ_KNOWLEDGE)
    return render(request, "knowledge/panel_answer.html", await _answer(session, actor, item_id))


@router.get("/panel/side")
async def side_fragment(request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.READ_KNOWLEDGE)
    return render(request, "knowledge/panel_side.html", await _side(session, actor))
