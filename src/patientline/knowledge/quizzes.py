"""Staff quizzes: multiple-choice questions generated from the published knowledge base and the clinic
timetable, assigned to people and teams, taken once and scored; results by quiz, person and team.

A question's wrong choices come from other items of the same area (then the same domain, then anywhere),
so they read like real answers and a guess by topic does not give the right one away.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import audit, clock, events
from patientline.core.auth.actor import Actor
from patientline.core.auth.models import User
from patientline.core.auth.permissions import Permission
from patientline.core.config import get_settings
from patientline.core.db import flush_or_conflict
from patientline.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from patientline.core.events import Audience, Notification
from patientline.core.i18n import N_, gettext
from patientline.directory.models import Department, Staff, Team, TeamMember
from patientline.knowledge.models import ClinicSession, Doctor, Quiz, QuizAnswer, QuizAssignment, QuizQuestion
from patientline.knowledge.sanitize import plain_text
from patientline.knowledge.service import CategoryTree, live_items
from patientline.knowledge.timetables import HALF_DAY_LABELS, HALF_DAYS, WEEKDAY_LABELS

CHOICES = 4
ANSWER_LENGTH = 120
TIMETABLE_SHARE = 0.3  # of the questions, when timetable questions are asked for
ITEM_LINK = "/kb?item={item_id}"  # the agent panel opened on the item
TAKE_LINK = "/kb/quizzes/take/{assignment_id}"
SENTENCE_END = re.compile(r"[。！？；!?;]")


class Kind:
    ANSWER = "answer"
    TIMETABLE = "timetable"


# ---- what a question is made of --------------------------------------------------------------


def shorten(text: str, limit: int = ANSWER_LENGTH) -> str:
    """At most `limit` characters, ending at a sentence when one ends in the second half."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    ends = [m.end() for m in SENTENCE_END.finditer(head)]
    if ends and ends[-1] >= limit // 2:
        return head[: ends[-1]]
    return head[: limit - 1].rstrip() + "…"


def answer_text(content: Mapping[str, Any]) -> str:
    """What an agent says: the spoken answer, or the written one as short plain text."""
    spoken = " ".join(str(content.get("spoken") or "").split())
    return spoken or shorten(plain_text(str(content.get("answer_html") or "")))


@dataclass(frozen=True)
class Source:
    """A published item as quiz material."""

    item_id: int
    category_id: int
    question: str
    answer: str
    area_id: int
    domain_id: int


@dataclass(frozen=True)
class Draft:
    kind: str
    prompt: str
    right: str
    wrong: tuple[str, ...]
    item_id: int | None = None
    category_id: int | None = None

    def question(self, *, quiz_id: int, position: int, rng: random.Random) -> QuizQuestion:
        choices = [self.right, *self.wrong]
        rng.shuffle(choices)
        return QuizQuestion(
            quiz_id=quiz_id, position=position, kind=self.kind, prompt=self.prompt, choices=choices,
            correct=choices.index(self.right), item_id=self.item_id, category_id=self.category_id,
        )  # fmt: skip


async def _sources(session: AsyncSession, tree: CategoryTree) -> list[Source]:
    today = clock.today(get_settings().timezone)  # the hospital's day, as answers' validity means it
    sources = []
    for live in await live_items(session):
        category_id = int(live.content["category_id"])
        answer = answer_text(live.content)
        if not answer or not live.valid_on(today):
            continue
        chain = tree.ancestors(category_id)
        domain_id = chain[-1] if chain else category_id
        sources.append(Source(live.item_id, category_id, live.question, answer, tree.area_of(category_id), domain_id))
    return sorted(sources, key=lambda s: s.item_id)  # the seed alone decides the quiz


def _distractors(source: Source, tiers: Iterable[Sequence[Source]], rng: random.Random) -> tuple[str, ...] | None:
    picked: list[str] = []
    for tier in tiers:
        texts = [s.answer for s in tier if s.item_id != source.item_id]
        rng.shuffle(texts)
        for text in texts:
            if text != source.answer and text not in picked:
                picked.append(text)
            if len(picked) == CHOICES - 1:
                return tuple(picked)
    return None


def _answer_drafts(
    sources: Sequence[Source], in_scope: Sequence[Source], needed: int, rng: random.Random
) -> list[Draft] | None:
    """`needed` questions from `in_scope`, or None when the base cannot fill them."""
    by_area: dict[int, list[Source]] = defaultdict(list)
    by_domain: dict[int, list[Source]] = defaultdict(list)
    for s in sources:
        by_area[s.area_id].append(s)
        by_domain[s.domain_id].append(s)
    drafts: list[Draft] = []
    for source in rng.sample(list(in_scope), len(in_scope)):
        if len(drafts) == needed:
            break
        same_domain = [s for s in by_domain[source.domain_id] if s.area_id != source.area_id]
        elsewhere = [s for s in sources if s.domain_id != source.domain_id]
        wrong = _distractors(source, (by_area[source.area_id], same_domain, elsewhere), rng)
        if wrong is not None:
            drafts.append(Draft(Kind.ANSWER, source.question, source.answer, wrong, source.item_id, source.category_id))
    return drafts if len(drafts) == needed else None


# ---- timetable questions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Clinic:
    doctor_id: int
    doctor: str
    department_id: int
    department: str
    weekday: int
    half_day: str
    kind: str


def slot_label(weekday: int, half_day: str) -> str:
    return gettext("{weekday} {half_day}").format(
        weekday=gettext(WEEKDAY_LABELS[weekday]), half_day=gettext(HALF_DAY_LABELS[half_day])
    )


def slots_label(slots: Iterable[tuple[int, str]]) -> str:
    ordered = sorted(set(slots), key=lambda s: (s[0], HALF_DAYS.index(s[1])))
    return gettext(", ").join(slot_label(*slot) for slot in ordered)


async def _clinics(session: AsyncSession) -> list[Clinic]:
    rows = await session.execute(
        select(ClinicSession, Doctor.name, Doctor.department_id, Department.name)
        .join(Doctor, Doctor.id == ClinicSession.doctor_id)
        .join(Department, Department.id == Doctor.department_id)
        .where(Doctor.is_active.is_(True))
        .order_by(ClinicSession.id)
    )
    return [
        Clinic(row.doctor_id, doctor, department_id, department, row.weekday, row.half_day, row.kind)
        for row, doctor, department_id, department in rows
    ]


def _who_question(clinic: Clinic, clinics: Sequence[Clinic], rng: random.Random) -> Draft | None:
    """Which doctor holds, say, the expert clinic of Gastroenterology on Tuesday afternoon? The wrong
    choices are doctors who are not in then, colleagues from the department first."""
    busy = {c.doctor for c in clinics if (c.weekday, c.half_day) == (clinic.weekday, clinic.half_day)
            and c.department_id == clinic.department_id}  # fmt: skip
    colleagues = sorted({c.doctor for c in clinics if c.department_id == clinic.department_id} - busy)
    others = sorted({c.doctor for c in clinics if c.department_id != clinic.department_id} - busy - set(colleagues))
    rng.shuffle(colleagues)
    rng.shuffle(others)
    wrong = (colleagues + others)[: CHOICES - 1]
    if len(wrong) < CHOICES - 1:
        return None
    prompt = gettext("Which doctor holds the {kind} of {department} on {when}?").format(
        kind=clinic.kind, department=clinic.department, when=slot_label(clinic.weekday, clinic.half_day)
    )
    return Draft(Kind.TIMETABLE, prompt, clinic.doctor, tuple(wrong))


def _when_question(own: Sequence[Clinic], rng: random.Random) -> Draft | None:
    """When does a doctor hold clinics? The wrong choices are the same week moved by some days."""
    slots = {(c.weekday, c.half_day) for c in own}
    right = slots_label(slots)
    moved: list[str] = []
    for shift in range(1, 7):
        label = slots_label(((weekday - 1 + shift) % 7 + 1, half_day) for weekday, half_day in slots)
        if label != right and label not in moved:
            moved.append(label)
    if len(moved) < CHOICES - 1:
        return None
    prompt = gettext("When does Dr {doctor} of {department} hold clinics?").format(
        doctor=own[0].doctor, department=own[0].department
    )
    return Draft(Kind.TIMETABLE, prompt, right, tuple(rng.sample(moved, CHOICES - 1)))


async def _timetable_drafts(session: AsyncSession, rng: random.Random) -> list[Draft]:
    clinics = await _clinics(session)
    by_doctor: dict[int, list[Clinic]] = defaultdict(list)
    for clinic in clinics:
        by_doctor[clinic.doctor_id].append(clinic)
    made = [_who_question(c, clinics, rng) for c in clinics]
    made += [_when_question(own, rng) for own in by_doctor.values()]
    unique = {draft.prompt: draft for draft in made if draft is not None}
    return rng.sample(list(unique.values()), len(unique))


def _timetable_count(count: int, available: int) -> int:
    return min(available, count, max(1, round(count * TIMETABLE_SHARE)))


# ---- creating a quiz -------------------------------------------------------------------------


def _check_categories(tree: CategoryTree, category_ids: Sequence[int]) -> None:
    unknown = sorted(set(category_ids) - set(tree.by_id))
    if unknown:
        raise InvalidInput("Some referenced records do not exist.", details={"category_ids": unknown})


def _in_scope(tree: CategoryTree, sources: Sequence[Source], category_ids: Sequence[int]) -> list[Source]:
    chosen = set(category_ids)
    return [s for s in sources if not chosen or chosen & set(tree.ancestors(s.category_id))]


def _too_few(count: int, available: int) -> InvalidInput:
    return InvalidInput(
        "The knowledge base has only {available} published items to ask about in these categories; "
        "ask for fewer questions or choose more categories.",
        params={"available": available},
        details={"count": count, "available": available},
        error_id="too_few_items",
    )


async def generate(
    session: AsyncSession,
    *,
    actor: Actor,
    title: str,
    category_ids: Sequence[int],
    count: int,
    include_timetable: bool,
    due_at: datetime | None,
    seed: int | None = None,
) -> Quiz:
    actor.require(Permission.MANAGE_QUIZZES)
    if count < 1:
        raise InvalidInput("Ask at least one question.", details={"count": count})
    tree = await CategoryTree.load(session)
    _check_categories(tree, category_ids)
    rng = random.Random(seed)  # noqa: S311 - shuffles choices, guards nothing
    timetable = await _timetable_drafts(session, rng) if include_timetable else []
    timetable = timetable[: _timetable_count(count, len(timetable))]
    sources = await _sources(session, tree)
    in_scope = _in_scope(tree, sources, category_ids)
    answers = _answer_drafts(sources, in_scope, count - len(timetable), rng)
    if answers is None:
        raise _too_few(count, len(in_scope) + len(timetable))
    drafts = rng.sample(answers + timetable, count)
    quiz = Quiz(title=title, category_ids=list(category_ids), due_at=due_at, created_by_id=actor.user_id)
    session.add(quiz)
    await session.flush()
    session.add_all(d.question(quiz_id=quiz.id, position=n, rng=rng) for n, d in enumerate(drafts, start=1))
    await session.flush()
    audit.record(
        session, actor=actor, action="knowledge.quiz.create", target_type="kb_quiz", target_id=quiz.id,
        after={"title": title, "category_ids": list(category_ids), "count": count,
               "include_timetable": include_timetable, "due_at": due_at},
    )  # fmt: skip
    return quiz


# ---- reading quizzes -------------------------------------------------------------------------


async def get_quiz(session: AsyncSession, quiz_id: int) -> Quiz:
    quiz = await session.get(Quiz, quiz_id)
    if quiz is None:
        raise NotFound("This quiz does not exist.", details={"quiz_id": quiz_id})
    return quiz


async def questions_of(session: AsyncSession, quiz_id: int) -> list[QuizQuestion]:
    query = select(QuizQuestion).where(QuizQuestion.quiz_id == quiz_id).order_by(QuizQuestion.position)
    return list(await session.scalars(query))


def score_of(correct: int | None, count: int) -> int | None:
    """Per cent, or None before the quiz is submitted."""
    if correct is None or not count:
        return None
    return round(100 * correct / count)


def is_overdue(assignment: QuizAssignment, quiz: Quiz, now: datetime) -> bool:
    return assignment.submitted_at is None and quiz.due_at is not None and now > quiz.due_at


@dataclass(frozen=True)
class QuizSummary:
    quiz: Quiz
    questions: int
    assigned: int
    submitted: int
    overdue: int
    average: int | None


async def list_quizzes(session: AsyncSession, *, actor: Actor) -> list[QuizSummary]:
    actor.require(Permission.MANAGE_QUIZZES)
    quizzes = list(await session.scalars(select(Quiz).order_by(Quiz.created_at.desc(), Quiz.id.desc())))
    counted = await session.execute(select(QuizQuestion.quiz_id, func.count()).group_by(QuizQuestion.quiz_id))
    questions = {quiz_id: count for quiz_id, count in counted}
    totals = {
        quiz_id: (assigned, submitted, correct, asked)
        for quiz_id, assigned, submitted, correct, asked in await session.execute(
            select(
                QuizAssignment.quiz_id,
                func.count(),
                func.count(QuizAssignment.submitted_at),
                func.sum(QuizAssignment.correct_count),
                func.sum(QuizAssignment.question_count).filter(QuizAssignment.submitted_at.is_not(None)),
            ).group_by(QuizAssignment.quiz_id)
        )
    }
    now = clock.now()
    summaries = []
    for quiz in quizzes:
        assigned, submitted, correct, asked = totals.get(quiz.id, (0, 0, None, 0))
        late = quiz.due_at is not None and now > quiz.due_at
        overdue = assigned - submitted if late else 0
        average = score_of(correct, asked or 0)
        summaries.append(QuizSummary(quiz, questions.get(quiz.id, 0), assigned, submitted, overdue, average))
    return summaries


@dataclass(frozen=True)
class Sheet:
    """A quiz as one person takes it; `answers` (question id -> choice) once submitted."""

    quiz: Quiz
    assignment: QuizAssignment | None
    questions: list[QuizQuestion]
    answers: dict[int, int]
    reveal: bool  # show the right answers

    @property
    def submitted(self) -> bool:
        return self.assignment is not None and self.assignment.submitted_at is not None

    @property
    def score(self) -> int | None:
        if self.assignment is None:
            return None
        return score_of(self.assignment.correct_count, self.assignment.question_count)

    def link_for(self, question: QuizQuestion) -> str | None:
        """Where to read up on a question answered wrongly."""
        wrong = self.answers.get(question.id) != question.correct
        if not self.submitted or not wrong or question.item_id is None:
            return None
        return ITEM_LINK.format(item_id=question.item_id)


async def _answers_of(session: AsyncSession, assignment: QuizAssignment | None) -> dict[int, int]:
    if assignment is None or assignment.submitted_at is None:
        return {}
    rows = await session.execute(
        select(QuizAnswer.question_id, QuizAnswer.choice).where(QuizAnswer.assignment_id == assignment.id)
    )
    return {question_id: choice for question_id, choice in rows}


async def _own_assignment(session: AsyncSession, *, quiz_id: int, user_id: int | None) -> QuizAssignment | None:
    if user_id is None:
        return None
    return await session.scalar(
        select(QuizAssignment).where(QuizAssignment.quiz_id == quiz_id, QuizAssignment.user_id == user_id)
    )


async def quiz_sheet(session: AsyncSession, *, actor: Actor, quiz_id: int) -> Sheet:
    """Managers see every quiz with its answers; assignees their own, answers only once submitted."""
    actor.require(Permission.READ_KNOWLEDGE)
    quiz = await get_quiz(session, quiz_id)
    assignment = await _own_assignment(session, quiz_id=quiz_id, user_id=actor.user_id)
    manager = actor.can(Permission.MANAGE_QUIZZES)
    if assignment is None and not manager:
        raise NotFound("This quiz does not exist.", details={"quiz_id": quiz_id})
    submitted = assignment is not None and assignment.submitted_at is not None
    return Sheet(quiz, assignment, await questions_of(session, quiz_id), await _answers_of(session, assignment),
                 reveal=manager or submitted)  # fmt: skip


async def get_assignment(session: AsyncSession, assignment_id: int) -> QuizAssignment:
    assignment = await session.get(QuizAssignment, assignment_id)
    if assignment is None:
        raise NotFound("This quiz assignment does not exist.", details={"assignment_id": assignment_id})
    return assignment


async def assignment_sheet(session: AsyncSession, *, actor: Actor, assignment_id: int) -> Sheet:
    """An assignment as its assignee (or a manager) sees it."""
    actor.require(Permission.READ_KNOWLEDGE)
    assignment = await get_assignment(session, assignment_id)
    manager = actor.can(Permission.MANAGE_QUIZZES)
    if assignment.user_id != actor.user_id and not manager:
        raise NotFound("This quiz assignment does not exist.", details={"assignment_id": assignment_id})
    quiz = await get_quiz(session, assignment.quiz_id)
    return Sheet(quiz, assignment, await questions_of(session, quiz.id), await _answers_of(session, assignment),
                 reveal=manager or assignment.submitted_at is not None)  # fmt: skip


# ---- assigning -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assigned:
    added: list[int]  # user ids newly assigned
    already: list[int]  # assigned before
    without_login: int  # team members who have no user account


async def _check_users(session: AsyncSession, user_ids: Sequence[int]) -> None:
    found = set(await session.scalars(select(User.id).where(User.id.in_(user_ids), User.is_active.is_(True))))
    if missing := sorted(set(user_ids) - found):
        raise InvalidInput("Some referenced records do not exist.", details={"user_ids": missing})


async def _team_users(session: AsyncSession, team_ids: Sequence[int]) -> tuple[set[int], int]:
    """The active users of the teams' active members, and how many members have no login."""
    found = set(await session.scalars(select(Team.id).where(Team.id.in_(team_ids))))
    if missing := sorted(set(team_ids) - found):
        raise InvalidInput("Some referenced records do not exist.", details={"team_ids": missing})
    rows = await session.execute(
        select(Staff.id, User.id)
        .join(TeamMember, TeamMember.staff_id == Staff.id)
        .outerjoin(User, (User.id == Staff.user_id) & User.is_active.is_(True))
        .where(TeamMember.team_id.in_(team_ids), Staff.is_active.is_(True))
    )
    users: set[int] = set()
    without_login: set[int] = set()
    for staff_id, user_id in rows:
        if user_id is None:
            without_login.add(staff_id)
        else:
            users.add(user_id)
    return users, len(without_login)


def _notify(session: AsyncSession, quiz: Quiz, assignment: QuizAssignment) -> None:
    events.record(
        session,
        Notification(
            title=N_("A quiz was assigned to you"), body=quiz.title,
            link=TAKE_LINK.format(assignment_id=assignment.id), audience=Audience(user_id=assignment.user_id),
        ),
    )  # fmt: skip


async def assign(
    session: AsyncSession,
    *,
    actor: Actor,
    quiz_id: int,
    user_ids: Sequence[int] = (),
    team_ids: Sequence[int] = (),
) -> Assigned:
    """Teams stand for their members at this moment: people who join later are not assigned. Assigning
    someone twice changes nothing."""
    actor.require(Permission.MANAGE_QUIZZES)
    quiz = await get_quiz(session, quiz_id)
    if not user_ids and not team_ids:
        raise InvalidInput("Choose the people or teams to assign the quiz to.", details={"user_ids": ["required"]})
    await _check_users(session, user_ids)
    members, without_login = await _team_users(session, team_ids)
    wanted = set(user_ids) | members
    already = set(
        await session.scalars(
            select(QuizAssignment.user_id).where(QuizAssignment.quiz_id == quiz_id, QuizAssignment.user_id.in_(wanted))
        )
    )
    count = len(await questions_of(session, quiz_id))
    now = clock.now()
    added = [
        QuizAssignment(
            quiz_id=quiz_id, user_id=user_id, assigned_by_id=actor.user_id, assigned_at=now, question_count=count
        )
        for user_id in sorted(wanted - already)
    ]
    session.add_all(added)
    await flush_or_conflict(session)
    for assignment in added:
        _notify(session, quiz, assignment)
    if added:
        audit.record(
            session, actor=actor, action="knowledge.quiz.assign", target_type="kb_quiz", target_id=quiz_id,
            after={"user_ids": [a.user_id for a in added], "team_ids": list(team_ids)},
        )  # fmt: skip
    return Assigned([a.user_id for a in added], sorted(already), without_login)


async def my_assignments(session: AsyncSession, *, actor: Actor) -> list[tuple[QuizAssignment, Quiz]]:
    """The actor's quizzes: open ones first (soonest due), then the submitted ones, newest first."""
    actor.require(Permission.READ_KNOWLEDGE)
    if actor.user_id is None:
        return []
    rows = list((await session.execute(_assignments_query().where(QuizAssignment.user_id == actor.user_id))).tuples())
    return sorted(rows, key=_open_first)


def _assignments_query() -> Any:
    return select(QuizAssignment, Quiz).join(Quiz, Quiz.id == QuizAssignment.quiz_id)


def _open_first(row: tuple[QuizAssignment, Quiz]) -> tuple[Any, ...]:
    assignment, quiz = row
    if assignment.submitted_at is None:
        return (0, quiz.due_at is None, quiz.due_at or assignment.assigned_at, assignment.id)
    return (1, 0, -assignment.submitted_at.timestamp(), -assignment.id)


# ---- submitting ------------------------------------------------------------------------------


def _check_answers(questions: Sequence[QuizQuestion], answers: Mapping[int, int]) -> None:
    by_id = {q.id: q for q in questions}
    if unknown := sorted(set(answers) - set(by_id)):
        raise InvalidInput(
            "Some answers are for questions that are not in this quiz.", details={"unknown_question_ids": unknown}
        )
    if out_of_range := sorted(q for q, choice in answers.items() if not 0 <= choice < len(by_id[q].choices)):
        raise InvalidInput("Some answers are not one of the choices.", details={"out_of_range": out_of_range})
    if missing := sorted(set(by_id) - set(answers)):
        raise InvalidInput("Answer every question before you submit.", details={"missing_question_ids": missing})


async def submit(session: AsyncSession, *, actor: Actor, assignment_id: int, answers: Mapping[int, int]) -> Sheet:
    """Scores the assignee's answers once; the result shows the right answers and where to read up."""
    actor.require(Permission.READ_KNOWLEDGE)
    assignment = await get_assignment(session, assignment_id)
    if assignment.user_id != actor.user_id:
        raise PermissionDenied("Only the person this quiz was assigned to can submit it.")
    if assignment.submitted_at is not None:
        raise _already_submitted(assignment)
    questions = await questions_of(session, assignment.quiz_id)
    _check_answers(questions, answers)
    marks = {q.id: answers[q.id] == q.correct for q in questions}
    correct = sum(marks.values())
    # one conditional UPDATE, so two submissions racing each other cannot both count
    claimed = await session.scalar(
        update(QuizAssignment)
        .where(QuizAssignment.id == assignment_id, QuizAssignment.submitted_at.is_(None))
        .values(submitted_at=clock.now(), correct_count=correct, question_count=len(questions))
        .returning(QuizAssignment.id)
    )
    if claimed is None:
        raise _already_submitted(assignment)
    session.add_all(
        QuizAnswer(assignment_id=assignment_id, question_id=q, choice=answers[q], is_correct=ok)
        for q, ok in marks.items()
    )
    await session.flush()
    await session.refresh(assignment)
    audit.record(
        session, actor=actor, action="knowledge.quiz.submit", target_type="kb_quiz", target_id=assignment.quiz_id,
        after={"assignment_id": assignment_id, "correct": correct, "questions": len(questions)},
    )  # fmt: skip
    return await assignment_sheet(session, actor=actor, assignment_id=assignment_id)


def _already_submitted(assignment: QuizAssignment) -> Conflict:
    return Conflict(
        "This quiz has already been submitted.",
        error_id="already_submitted",
        details={"assignment_id": assignment.id},
    )


# ---- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssigneeRow:
    assignment: QuizAssignment
    user: User
    overdue: bool

    @property
    def score(self) -> int | None:
        return score_of(self.assignment.correct_count, self.assignment.question_count)


@dataclass(frozen=True)
class QuizResults:
    quiz: Quiz
    questions: list[QuizQuestion]
    rows: list[AssigneeRow]

    @property
    def submitted(self) -> int:
        return sum(1 for r in self.rows if r.assignment.submitted_at is not None)

    @property
    def overdue(self) -> int:
        return sum(1 for r in self.rows if r.overdue)

    @property
    def average(self) -> int | None:
        scores = [r.score for r in self.rows if r.score is not None]
        return round(sum(scores) / len(scores)) if scores else None


async def quiz_results(session: AsyncSession, *, actor: Actor, quiz_id: int) -> QuizResults:
    actor.require(Permission.MANAGE_QUIZZES)
    quiz = await get_quiz(session, quiz_id)
    rows = await session.execute(
        select(QuizAssignment, User)
        .join(User, User.id == QuizAssignment.user_id)
        .where(QuizAssignment.quiz_id == quiz_id)
        .order_by(User.display_name, User.id)
    )
    now = clock.now()
    assignees = [AssigneeRow(a, user, is_overdue(a, quiz, now)) for a, user in rows.tuples()]
    return QuizResults(quiz, await questions_of(session, quiz_id), assignees)


@dataclass(frozen=True)
class AreaScore:
    area_id: int | None  # None: the clinic timetable
    name: str
    answered: int
    correct: int

    @property
    def rate(self) -> float:
        return round(self.correct / self.answered, 3) if self.answered else 0.0


async def weak_areas(session: AsyncSession, *, user_ids: Iterable[int]) -> list[AreaScore]:
    """Submitted answers grouped by the area of their item (the timetable as one area); weakest first."""
    rows = await session.execute(
        select(QuizQuestion.kind, QuizQuestion.category_id, QuizAnswer.is_correct)
        .join(QuizAnswer, QuizAnswer.question_id == QuizQuestion.id)
        .join(QuizAssignment, QuizAssignment.id == QuizAnswer.assignment_id)
        .where(QuizAssignment.user_id.in_(list(user_ids)))
    )
    tree = await CategoryTree.load(session)
    tally: dict[int | None, list[int]] = defaultdict(lambda: [0, 0])
    for kind, category_id, is_correct in rows:
        area = tree.area_of(category_id) if kind == Kind.ANSWER and category_id in tree.by_id else None
        tally[area][0] += 1
        tally[area][1] += int(is_correct)
    areas = [AreaScore(area, _area_name(tree, area), answered, right) for area, (answered, right) in tally.items()]
    return sorted(areas, key=lambda a: (a.rate, -a.answered, a.name))


def _area_name(tree: CategoryTree, area_id: int | None) -> str:
    return tree.path(area_id) if area_id is not None else gettext("Clinic timetable")


@dataclass(frozen=True)
class PersonRow:
    assignment: QuizAssignment
    quiz: Quiz
    overdue: bool

    @property
    def score(self) -> int | None:
        return score_of(self.assignment.correct_count, self.assignment.question_count)


@dataclass(frozen=True)
class PersonResults:
    user: User
    rows: list[PersonRow]  # open first, then submitted newest first
    areas: list[AreaScore]

    @property
    def progress(self) -> list[PersonRow]:
        """Submitted quizzes in the order they were taken."""
        done = [r for r in self.rows if r.assignment.submitted_at is not None]
        return sorted(done, key=_taken_at)


async def person_results(session: AsyncSession, *, actor: Actor, user_id: int) -> PersonResults:
    """Managers see everyone's results, others their own."""
    actor.require(Permission.READ_KNOWLEDGE)
    if user_id != actor.user_id and not actor.can(Permission.MANAGE_QUIZZES):
        raise PermissionDenied("You may see only your own quiz results.")
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("This user does not exist.", details={"user_id": user_id})
    rows = list((await session.execute(_assignments_query().where(QuizAssignment.user_id == user_id))).tuples())
    now = clock.now()
    person_rows = [PersonRow(a, quiz, is_overdue(a, quiz, now)) for a, quiz in sorted(rows, key=_open_first)]
    return PersonResults(user, person_rows, await weak_areas(session, user_ids=[user_id]))


@dataclass(frozen=True)
class MemberRow:
    user: User
    assigned: int
    submitted: int
    overdue: int
    average: int | None
    last: int | None  # the score of the latest submitted quiz


@dataclass(frozen=True)
class TeamResults:
    team: Team
    members: list[MemberRow]
    areas: list[AreaScore]
    without_login: int


async def team_results(session: AsyncSession, *, actor: Actor, team_id: int) -> TeamResults:
    actor.require(Permission.MANAGE_QUIZZES)
    team = await session.get(Team, team_id)
    if team is None:
        raise NotFound("This team does not exist.", details={"team_id": team_id})
    user_ids, without_login = await _team_users(session, [team_id])
    users = list(await session.scalars(select(User).where(User.id.in_(user_ids)).order_by(User.display_name)))
    rows = (await session.execute(_assignments_query().where(QuizAssignment.user_id.in_(user_ids)))).tuples()
    by_user: dict[int, list[PersonRow]] = defaultdict(list)
    now = clock.now()
    for assignment, quiz in rows:
        by_user[assignment.user_id].append(PersonRow(assignment, quiz, is_overdue(assignment, quiz, now)))
    members = [_member_row(user, by_user[user.id]) for user in users]
    return TeamResults(team, members, await weak_areas(session, user_ids=user_ids), without_login)


def _taken_at(row: PersonRow) -> datetime:
    return row.assignment.submitted_at or row.assignment.assigned_at


def _member_row(user: User, rows: Sequence[PersonRow]) -> MemberRow:
    done = sorted((r for r in rows if r.score is not None), key=_taken_at)
    scores = [r.score for r in done if r.score is not None]
    return MemberRow(
        user, len(rows), len(done), sum(r.overdue for r in rows),
        round(sum(scores) / len(scores)) if scores else None, scores[-1] if scores else None,
    )  # fmt: skip
