"""The demo's quiz: generated from the demo knowledge base by a supervisor, assigned to the hotline
team, already taken by two agents so that the results pages have something to show."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock
from patientline.core.auth.models import User
from patientline.core.auth.service import actor_for
from patientline.core.config import Settings
from patientline.core.errors import InvalidInput
from patientline.directory import service as directory
from patientline.knowledge import quizzes
from patientline.knowledge.models import Quiz, QuizAssignment

TITLE = "热线组知识测验（第一期）"
QUESTIONS = 10
SEED = 8585
DUE_DAYS = 7
MISSES = {"agent01": 5, "agent02": 3}  # agent01 misses every fifth question, agent02 every third


async def _user(session: AsyncSession, username: str) -> User | None:
    return await session.scalar(select(User).where(User.username == username))


async def load_demo_quizzes(session: AsyncSession, *, settings: Settings) -> None:
    """Caller owns the transaction. Does nothing when the quiz exists already, or when the demo
    hospital or enough published items are missing."""
    if await session.scalar(select(Quiz.id).where(Quiz.title == TITLE)) is not None:
        return
    supervisor = await _user(session, "supervisor1")
    team = await directory.find_by_code(session, kind=directory.TEAMS, code="HOTLINE")
    if supervisor is None or team is None:
        return
    manager = await actor_for(session, user=supervisor)
    try:
        quiz = await quizzes.generate(
            session, actor=manager, title=TITLE, category_ids=[], count=QUESTIONS, include_timetable=True,
            due_at=clock.now() + timedelta(days=DUE_DAYS), seed=SEED,
        )  # fmt: skip
    except InvalidInput:
        return
    await quizzes.assign(session, actor=manager, quiz_id=quiz.id, team_ids=[team.id])
    for username, every in MISSES.items():
        await _take(session, quiz_id=quiz.id, username=username, miss_every=every)


async def _take(session: AsyncSession, *, quiz_id: int, username: str, miss_every: int) -> None:
    agent = await _user(session, username)
    if agent is None:
        return
    assignment = await session.scalar(
        select(QuizAssignment).where(QuizAssignment.quiz_id == quiz_id, QuizAssignment.user_id == agent.id)
    )
    if assignment is None:
        return
    questions = await quizzes.questions_of(session, quiz_id)
    answers = {
        q.id: (q.correct + 1) % len(q.choices) if n % miss_every == 0 else q.correct
        for n, q in enumerate(questions, start=1)
    }
    agent_actor = await actor_for(session, user=agent)
    await quizzes.submit(session, actor=agent_actor, assignment_id=assignment.id, answers=answers)
