"""The public patient FAQ at /faq: search, browse by category, one page per answer, the clinic timetable.

No login and no tracking: these pages set no cookie (the language is a `?lang=en` link, not a cookie),
load nothing from elsewhere and need no script. Only public published answers valid today are shown;
everything else answers the same "not found" page, so the public cannot tell an internal answer exists.
A search that finds nothing good is collected as a candidate question for the editors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.errors import NotFound
from patientline.core.i18n import current_locale, gettext
from patientline.core.ratelimit import Budget
from patientline.core.validation import PathId
from patientline.directory.pages import FilterId
from patientline.knowledge import candidates, timetables
from patientline.knowledge.live_index import Filters, LiveSearch
from patientline.knowledge.router import live_one, live_search, search_answer
from patientline.knowledge.service import CategoryTree, LiveItem
from patientline.web.deps import Session, app_state
from patientline.web.templating import templates

router = APIRouter(prefix="/faq", include_in_schema=False)

PORTAL = Actor(
    user_id=None,
    username="portal",
    display_name="FAQ portal",
    roles=(),
    permissions=frozenset({Permission.READ_KNOWLEDGE}),
    via="system",
)
HOTLINE = "8585"
RESULT_LIMIT = 8
RELATED_LIMIT = 5
TIMETABLE_WEEKS_AHEAD = 4

Lang = Annotated[str | None, Query(max_length=10)]
SearchBox = Annotated[str, Query(max_length=500)]


# ---- language and links ----------------------------------------------------------------------


def portal_locale(lang: str | None) -> str:
    """Chinese unless the link asks for English; the staff's language cookie does not apply here."""
    locale = "en" if lang == "en" else "zh_CN"
    current_locale.set(locale)
    return locale


def link_maker(locale: str) -> Callable[..., str]:
    """`url("/faq/items/3", q="…")`: portal links that keep the chosen language."""

    def url(path: str, **params: Any) -> str:
        query = {key: value for key, value in params.items() if value not in (None, "")}
        if locale == "en":
            query["lang"] = "en"
        return f"{path}?{urlencode(query)}" if query else path

    return url


def language_switch(request: Request, locale: str) -> str:
    """The same page in the other language."""
    params = [(key, value) for key, value in request.query_params.multi_items() if key != "lang"]
    if locale == "zh_CN":
        params.append(("lang", "en"))
    return request.url.path + (f"?{urlencode(params)}" if params else "")


def page(request: Request, name: str, locale: str, context: dict[str, Any], *, status_code: int = 200) -> Response:
    base = {
        "locale": locale,
        "url": link_maker(locale),
        "switch_url": language_switch(request, locale),
        "hotline": HOTLINE,
    }
    return templates.TemplateResponse(request, name, base | context, status_code=status_code)


def not_found(request: Request, locale: str) -> Response:
    return page(request, "knowledge/portal_missing.html", locale, {}, status_code=404)


# ---- what the public may see -----------------------------------------------------------------


def hospital_today(request: Request) -> date:
    return clock.today(app_state(request).settings.timezone)


@dataclass(frozen=True)
class PublicView:
    """The public, currently valid live items and the category tree, from the search index's memory."""

    items: list[LiveItem]
    tree: CategoryTree

    @classmethod
    async def load(cls, engine: LiveSearch, today: date) -> PublicView:
        await engine.ready()
        visible = [i for i in engine.items.values() if i.content.get("public", True) and i.valid_on(today)]
        return cls(sorted(visible, key=lambda i: i.question), engine.tree)

    def category_of(self, item: LiveItem) -> int:
        return int(item.content["category_id"])

    def count_under(self, category_id: int) -> int:
        return sum(1 for item in self.items if category_id in self.tree.ancestors(self.category_of(item)))

    def children(self, parent_id: int | None) -> list[tuple[Any, int]]:
        """Sub-categories holding public answers, with how many, in display order."""
        rows = sorted(self.tree.children(parent_id), key=lambda r: (r.position, r.code))
        counted = [(row, self.count_under(row.id)) for row in rows if row.is_active]
        return [(row, count) for row, count in counted if count]

    def directly_in(self, category_id: int) -> list[LiveItem]:
        return [item for item in self.items if self.category_of(item) == category_id]

    def trail(self, category_id: int) -> list[Any]:
        """The category and its parents, root first, for breadcrumbs."""
        return [self.tree.by_id[c] for c in reversed(self.tree.ancestors(category_id))]


# ---- pages -----------------------------------------------------------------------------------


MISSES = Budget(10)  # missed searches one address may add to the candidates per hour


async def _search(request: Request, session: AsyncSession, text: str) -> dict[str, Any]:
    engine = live_search(request)
    result = await engine.search(text, limit=RESULT_LIMIT, filters=Filters(public_only=True))
    if result.no_good_match and MISSES.allow(request.client.host if request.client else ""):
        await candidates.record_miss(session, actor=PORTAL, text=text, source="portal")
    return search_answer(engine, text, result)


@router.get("")
async def home(request: Request, session: Session, q: SearchBox = "", lang: Lang = None) -> Response:
    locale = portal_locale(lang)
    text = q.strip()[:200]
    context: dict[str, Any] = {"q": text, "results": None, "domains": []}
    if text:
        context["results"] = await _search(request, session, text)
    else:
        view = await PublicView.load(live_search(request), hospital_today(request))
        context["domains"] = [(domain, count, view.children(domain.id)) for domain, count in view.children(None)]
    return page(request, "knowledge/portal.html", locale, context)


@router.get("/categories/{category_id}")
async def category(category_id: PathId, request: Request, lang: Lang = None) -> Response:
    locale = portal_locale(lang)
    view = await PublicView.load(live_search(request), hospital_today(request))
    if category_id not in view.tree.by_id or not view.count_under(category_id):
        return not_found(request, locale)
    context = {
        "trail": view.trail(category_id),
        "children": view.children(category_id),
        "items": view.directly_in(category_id),
    }
    return page(request, "knowledge/portal_category.html", locale, context)


@router.get("/items/{item_id}")
async def item(item_id: PathId, request: Request, session: Session, lang: Lang = None) -> Response:
    locale = portal_locale(lang)
    today = hospital_today(request)
    try:
        answer = await live_one(session, item_id, public_on=today)
    except NotFound:
        return not_found(request, locale)
    view = await PublicView.load(live_search(request), today)
    related = [i for i in view.directly_in(answer["category_id"]) if i.item_id != item_id][:RELATED_LIMIT]
    context = {"answer": answer, "trail": view.trail(answer["category_id"]), "related": related}
    return page(request, "knowledge/portal_item.html", locale, context)


def weekday_label(day: date) -> str:
    return gettext(timetables.WEEKDAY_LABELS[day.isoweekday()])


def half_day_label(half_day: str) -> str:
    return gettext(timetables.HALF_DAY_LABELS.get(half_day, half_day))


def status_label(status: str) -> str:
    return gettext(timetables.STATUS_LABELS.get(status, status))


@router.get("/timetable")
async def timetable(
    request: Request,
    session: Session,
    start: date | None = None,
    department_id: FilterId = None,
    lang: Lang = None,
) -> Response:
    """Seven days of clinics from today (or a later day within a few weeks), read-only."""
    locale = portal_locale(lang)
    today = hospital_today(request)
    last_start = today + timedelta(weeks=TIMETABLE_WEEKS_AHEAD)
    first = min(max(start or today, today), last_start)
    everything = await timetables.week(session, start=first)
    shown = [d for d in everything.departments if department_id is None or d.id == department_id]
    context = {
        "week": everything,
        "departments": shown,
        "all_departments": everything.departments,
        "department_id": department_id,
        "earlier": first - timedelta(days=7) if first > today else None,
        "later": first + timedelta(days=7) if first < last_start else None,
        "weekday_label": weekday_label,
        "half_day_label": half_day_label,
        "status_label": status_label,
    }
    return page(request, "knowledge/portal_timetable.html", locale, context)
