"""Staff quiz pages: my quizzes and taking one (keys 1-4 pick a choice); for supervisors the quiz list,
a new quiz, assigning and results, a person's weak areas and progress, a team's results. Forms post
JSON to /api/kb/quizzes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from patientline.core import clock
from patientline.core.auth.models import User
from patientline.core.auth.permissions import Permission
from patientline.core.validation import PathId
from patientline.directory.models import Team
from patientline.knowledge import quizzes
from patientline.knowledge.service import CategoryTree
from patientline.web.deps import CurrentActor, Session, app_state
from patientline.web.templating import render

router = APIRouter(prefix="/kb/quizzes", include_in_schema=False)

DEFAULT_DUE_DAYS = 7
DEFAULT_DUE_HOUR = 18


@router.get("")
async def my_quizzes(request: Request, actor: CurrentActor, session: Session) -> Response:
    rows = await quizzes.my_assignments(session, actor=actor)
    now = clock.now()
    mine = [quizzes.PersonRow(assignment, quiz, quizzes.is_overdue(assignment, quiz, now)) for assignment, quiz in rows]
    return render(request, "knowledge/quiz_mine.html", {"rows": mine, **_tabs(actor, "mine")})


def _tabs(actor: Any, current: str) -> dict[str, Any]:
    return {"tab": current, "can_manage": actor.can(Permission.MANAGE_QUIZZES)}


@router.get("/take/{assignment_id:int}")
async def take(assignment_id: PathId, request: Request, actor: CurrentActor, session: Session) -> Response:
    """The form while the quiz is open for its assignee; the marked answers once submitted."""
    sheet = await quizzes.assignment_sheet(session, actor=actor, assignment_id=assignment_id)
    own = sheet.assignment is not None and sheet.assignment.user_id == actor.user_id
    context = {"sheet": sheet, "answering": own and not sheet.submitted, "own": own}
    return render(request, "knowledge/quiz_take.html", context)


@router.get("/manage")
async def manage(request: Request, actor: CurrentActor, session: Session) -> Response:
    summaries = await quizzes.list_quizzes(session, actor=actor)
    teams = list(await session.scalars(select(Team).where(Team.is_active.is_(True)).order_by(Team.code)))
    return render(
        request, "knowledge/quiz_manage.html", {"summaries": summaries, "teams": teams, **_tabs(actor, "manage")}
    )


@router.get("/new")
async def new_quiz(request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.MANAGE_QUIZZES)
    tree = await CategoryTree.load(session)
    categories = [(row.id, row.name, depth) for row, depth in tree.walk() if row.is_active]
    context = {"categories": categories, "due": _default_due(app_state(request).settings.timezone)}
    return render(request, "knowledge/quiz_new.html", context | _tabs(actor, "manage"))


def _default_due(timezone: str) -> str:
    """A week from today at the end of the working day, as a datetime-local input wants it."""
    day = clock.now().astimezone(ZoneInfo(timezone)) + timedelta(days=DEFAULT_DUE_DAYS)
    return day.replace(hour=DEFAULT_DUE_HOUR, minute=0, second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M")


@router.get("/{quiz_id:int}")
async def quiz_page(quiz_id: PathId, request: Request, actor: CurrentActor, session: Session) -> Response:
    """Results, assigning, and the questions with their answers."""
    results = await quizzes.quiz_results(session, actor=actor, quiz_id=quiz_id)
    users = list(await session.scalars(select(User).where(User.is_active.is_(True)).order_by(User.display_name)))
    teams = list(await session.scalars(select(Team).where(Team.is_active.is_(True)).order_by(Team.code)))
    context = {"results": results, "users": users, "teams": teams, **_tabs(actor, "manage")}
    return render(request, "knowledge/quiz_detail.html", context)


@dataclass(frozen=True)
class Chart:
    """A small line chart of scores drawn as SVG on the server (no script needed)."""

    width: int
    height: int
    points: list[tuple[float, float, int, str]]  # x, y, score, label

    @property
    def polyline(self) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in self.points)


CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 560, 180, 24


def progress_chart(rows: list[quizzes.PersonRow], timezone: str) -> Chart:
    inner_w, inner_h = CHART_WIDTH - 2 * CHART_PAD, CHART_HEIGHT - 2 * CHART_PAD
    step = inner_w / max(len(rows) - 1, 1)
    points = []
    for index, row in enumerate(rows):
        score = row.score or 0
        taken: datetime = row.assignment.submitted_at or row.assignment.assigned_at
        label = f"{taken.astimezone(ZoneInfo(timezone)):%m-%d} {row.quiz.title}"
        x = CHART_PAD + (step * index if len(rows) > 1 else inner_w / 2)
        points.append((x, CHART_PAD + inner_h * (1 - score / 100), score, label))
    return Chart(CHART_WIDTH, CHART_HEIGHT, points)


@router.get("/people/{user_id:int}")
async def person(user_id: PathId, request: Request, actor: CurrentActor, session: Session) -> Response:
    results = await quizzes.person_results(session, actor=actor, user_id=user_id)
    chart = progress_chart(results.progress, app_state(request).settings.timezone)
    context = {"results": results, "chart": chart, **_tabs(actor, "manage" if user_id != actor.user_id else "mine")}
    return render(request, "knowledge/quiz_person.html", context)


@router.get("/teams/{team_id:int}")
async def team(team_id: PathId, request: Request, actor: CurrentActor, session: Session) -> Response:
    results = await quizzes.team_results(session, actor=actor, team_id=team_id)
    return render(request, "knowledge/quiz_team.html", {"results": results, **_tabs(actor, "manage")})
