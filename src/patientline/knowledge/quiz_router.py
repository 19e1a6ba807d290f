"""Staff quizzes API: create (generate), list, read, assign, my assignments, submit, results by quiz,
person and team."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response

from patientline.core import clock
from patientline.core.validation import PathId
from patientline.knowledge import quizzes
from patientline.knowledge.models import Quiz, QuizAssignment, QuizQuestion
from patientline.knowledge.quiz_schemas import (
    AssignmentRead,
    AssignRequest,
    AssignResult,
    PersonResultsRead,
    QuizCreate,
    QuizDetail,
    QuizResultsRead,
    QuizSummaryRead,
    SheetRead,
    SubmitRequest,
    TeamResultsRead,
)
from patientline.web.deps import CurrentActor, Session, app_state
from patientline.web.responses import FastJSONResponse

router = APIRouter(prefix="/api/kb/quizzes", tags=["quizzes"])


def _hospital_time(value: datetime | None, timezone: str) -> datetime | None:
    """A due time typed without a zone (the form's date and time) is the hospital's local time."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=ZoneInfo(timezone))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def quiz_json(quiz: Quiz, question_count: int) -> dict[str, Any]:
    return {
        "id": quiz.id, "title": quiz.title, "category_ids": list(quiz.category_ids), "due_at": _iso(quiz.due_at),
        "created_by_id": quiz.created_by_id, "created_at": _iso(quiz.created_at), "question_count": question_count,
    }  # fmt: skip


def assignment_json(assignment: QuizAssignment, quiz: Quiz) -> dict[str, Any]:
    return {
        "id": assignment.id, "quiz_id": quiz.id, "title": quiz.title, "user_id": assignment.user_id,
        "assigned_at": _iso(assignment.assigned_at), "due_at": _iso(quiz.due_at),
        "submitted_at": _iso(assignment.submitted_at), "correct_count": assignment.correct_count,
        "question_count": assignment.question_count,
        "score": quizzes.score_of(assignment.correct_count, assignment.question_count),
        "overdue": quizzes.is_overdue(assignment, quiz, clock.now()),
    }  # fmt: skip


def question_json(question: QuizQuestion, sheet: quizzes.Sheet) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "id": question.id, "position": question.position, "kind": question.kind, "prompt": question.prompt,
        "choices": list(question.choices),
    }  # fmt: skip
    if not sheet.reveal:
        return shown
    return shown | {
        "correct": question.correct, "item_id": question.item_id, "category_id": question.category_id,
        "choice": sheet.answers.get(question.id), "link": sheet.link_for(question),
    }  # fmt: skip


def sheet_json(sheet: quizzes.Sheet) -> dict[str, Any]:
    return {
        "assignment": assignment_json(sheet.assignment, sheet.quiz) if sheet.assignment else None,
        "questions": [question_json(q, sheet) for q in sheet.questions],
    }


def user_json(user: Any) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "display_name": user.display_name}


def area_json(area: quizzes.AreaScore) -> dict[str, Any]:
    return {"area_id": area.area_id, "name": area.name, "answered": area.answered, "correct": area.correct,
            "rate": area.rate}  # fmt: skip


@router.post("", response_model=QuizDetail, status_code=201, summary="Generate a quiz from the published base")
async def create_quiz(body: QuizCreate, request: Request, actor: CurrentActor, session: Session) -> Response:
    """Questions come from published items of the chosen categories (and their sub-categories; none:
    the whole base) and, with `include_timetable`, from doctors' clinic sessions. 422 `too_few_items`
    when the base cannot fill `count` questions."""
    values = body.model_dump()
    values["due_at"] = _hospital_time(body.due_at, app_state(request).settings.timezone)
    async with session.begin():
        quiz = await quizzes.generate(session, actor=actor, **values)
        sheet = await quizzes.quiz_sheet(session, actor=actor, quiz_id=quiz.id)
        body_ = quiz_json(quiz, len(sheet.questions)) | sheet_json(sheet)
    return FastJSONResponse(body_, status_code=201)


@router.get("", response_model=list[QuizSummaryRead], summary="Every quiz with how far it got")
async def list_quizzes(actor: CurrentActor, session: Session) -> Response:
    summaries = await quizzes.list_quizzes(session, actor=actor)
    return FastJSONResponse([_summary_json(s) for s in summaries])


def _summary_json(summary: quizzes.QuizSummary) -> dict[str, Any]:
    return quiz_json(summary.quiz, summary.questions) | {
        "assigned": summary.assigned, "submitted": summary.submitted, "overdue": summary.overdue,
        "average": summary.average,
    }  # fmt: skip


@router.get("/mine", response_model=list[AssignmentRead], summary="The quizzes assigned to me")
async def my_assignments(actor: CurrentActor, session: Session) -> Response:
    rows = await quizzes.my_assignments(session, actor=actor)
    return FastJSONResponse([assignment_json(assignment, quiz) for assignment, quiz in rows])


@router.get("/{quiz_id:int}", response_model=QuizDetail, summary="A quiz and its questions")
async def get_quiz(quiz_id: PathId, actor: CurrentActor, session: Session) -> Response:
    """Managers see the right answers; the people it is assigned to see them only after submitting."""
    sheet = await quizzes.quiz_sheet(session, actor=actor, quiz_id=quiz_id)
    return FastJSONResponse(quiz_json(sheet.quiz, len(sheet.questions)) | sheet_json(sheet))


@router.post("/{quiz_id:int}/assignments", response_model=AssignResult, summary="Assign a quiz to people and teams")
async def assign(quiz_id: PathId, body: AssignRequest, actor: CurrentActor, session: Session) -> AssignResult:
    """Teams stand for their current members. Assigning someone again changes nothing (`already`)."""
    async with session.begin():
        done = await quizzes.assign(session, actor=actor, quiz_id=quiz_id, user_ids=body.user_ids,
                                    team_ids=body.team_ids)  # fmt: skip
    return AssignResult(added=done.added, already=done.already, without_login=done.without_login)


@router.get("/{quiz_id:int}/results", response_model=QuizResultsRead, summary="Everyone's results of a quiz")
async def quiz_results(quiz_id: PathId, actor: CurrentActor, session: Session) -> Response:
    results = await quizzes.quiz_results(session, actor=actor, quiz_id=quiz_id)
    assignees = [
        {
            "assignment_id": row.assignment.id,
            "user_id": row.user.id,
            "username": row.user.username,
            "display_name": row.user.display_name,
            "assigned_at": _iso(row.assignment.assigned_at),
            "submitted_at": _iso(row.assignment.submitted_at),
            "correct_count": row.assignment.correct_count,
            "question_count": row.assignment.question_count,
            "score": row.score,
            "overdue": row.overdue,
        }
        for row in results.rows
    ]
    return FastJSONResponse(
        {
            "quiz": quiz_json(results.quiz, len(results.questions)),
            "assigned": len(results.rows),
            "submitted": results.submitted,
            "overdue": results.overdue,
            "average": results.average,
            "assignees": assignees,
        }
    )


@router.get("/assignments/{assignment_id:int}", response_model=SheetRead, summary="One person's quiz")
async def get_assignment(assignment_id: PathId, actor: CurrentActor, session: Session) -> Response:
    sheet = await quizzes.assignment_sheet(session, actor=actor, assignment_id=assignment_id)
    return FastJSONResponse(sheet_json(sheet))


@router.post("/assignments/{assignment_id:int}/submit", response_model=SheetRead, summary="Submit my answers")
async def submit(assignment_id: PathId, body: SubmitRequest, actor: CurrentActor, session: Session) -> Response:
    """`answers` maps every question id to the index of the chosen choice (0 to 3). Only the assignee
    submits, once (409 `already_submitted` after). The answer shows the right choices and, for wrong
    answers, a link to the item to read."""
    async with session.begin():
        sheet = await quizzes.submit(session, actor=actor, assignment_id=assignment_id, answers=body.answers)
        return FastJSONResponse(sheet_json(sheet))


@router.get("/people/{user_id:int}", response_model=PersonResultsRead, summary="A person's results and weak areas")
async def person_results(user_id: PathId, actor: CurrentActor, session: Session) -> Response:
    """Everyone may see their own; managers everyone's. `areas` lists the weakest first."""
    results = await quizzes.person_results(session, actor=actor, user_id=user_id)
    progress = [
        {
            "submitted_at": _iso(row.assignment.submitted_at),
            "quiz_id": row.quiz.id,
            "title": row.quiz.title,
            "score": row.score,
        }
        for row in results.progress
    ]
    return FastJSONResponse(
        {
            "user": user_json(results.user),
            "assignments": [assignment_json(row.assignment, row.quiz) for row in results.rows],
            "progress": progress,
            "areas": [area_json(a) for a in results.areas],
        }
    )


@router.get("/teams/{team_id:int}", response_model=TeamResultsRead, summary="A team's results and weak areas")
async def team_results(team_id: PathId, actor: CurrentActor, session: Session) -> Response:
    results = await quizzes.team_results(session, actor=actor, team_id=team_id)
    members = [
        {
            "user": user_json(m.user),
            "assigned": m.assigned,
            "submitted": m.submitted,
            "overdue": m.overdue,
            "average": m.average,
            "last": m.last,
        }
        for m in results.members
    ]
    return FastJSONResponse(
        {
            "team": {"id": results.team.id, "code": results.team.code, "name": results.team.name},
            "members": members,
            "areas": [area_json(a) for a in results.areas],
            "without_login": results.without_login,
        }
    )
