"""Staff quizzes: what the API takes and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from patientline.core.i18n import gettext
from patientline.core.validation import MAX_ID, DbId, StrictModel

MAX_QUESTIONS = 50

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
QuestionKey = Annotated[int, Field(ge=1, le=MAX_ID)]  # JSON object keys are strings: "12" is read as 12
Choice = Annotated[int, Field(ge=0, le=100)]


def _unique(values: list[int]) -> list[int]:
    return list(dict.fromkeys(values))


def _plausible_due(value: datetime | None) -> datetime | None:
    if value is not None and not 2000 <= value.year <= 2100:
        raise ValueError(gettext("Choose a due date between the years 2000 and 2100."))
    return value


class QuizCreate(StrictModel):
    title: Title
    category_ids: Annotated[list[DbId], Field(max_length=50), AfterValidator(_unique)] = []
    count: Annotated[int, Field(ge=1, le=MAX_QUESTIONS)] = 10
    include_timetable: bool = False
    due_at: Annotated[datetime | None, AfterValidator(_plausible_due)] = None  # naive: the hospital's local time
    seed: Annotated[int, Field(ge=0, le=MAX_ID)] | None = None  # the same seed and base give the same quiz


class AssignRequest(StrictModel):
    user_ids: Annotated[list[DbId], Field(max_length=1000), AfterValidator(_unique)] = []
    team_ids: Annotated[list[DbId], Field(max_length=100), AfterValidator(_unique)] = []


class SubmitRequest(StrictModel):
    answers: Annotated[dict[QuestionKey, Choice], Field(max_length=MAX_QUESTIONS)]


class QuestionRead(BaseModel):
    """A question as the person taking the quiz sees it before submitting."""

    id: int
    position: int
    kind: str
    prompt: str
    choices: list[str]


class QuestionWithAnswer(QuestionRead):
    """With the right choice: for managers, and for the assignee once submitted."""

    correct: int
    item_id: int | None
    category_id: int | None
    choice: int | None = None  # the assignee's answer, once submitted
    link: str | None = None  # where to read up on a wrong answer


class QuizRead(BaseModel):
    id: int
    title: str
    category_ids: list[int]
    due_at: datetime | None
    created_by_id: int | None
    created_at: datetime
    question_count: int


class QuizSummaryRead(QuizRead):
    assigned: int
    submitted: int
    overdue: int
    average: int | None


class AssignmentRead(BaseModel):
    id: int
    quiz_id: int
    title: str
    user_id: int
    assigned_at: datetime
    due_at: datetime | None
    submitted_at: datetime | None
    correct_count: int | None
    question_count: int
    score: int | None  # per cent
    overdue: bool


class QuizDetail(QuizRead):
    """Questions carry `correct` for managers and for an assignee who has submitted; not otherwise."""

    questions: list[QuestionWithAnswer | QuestionRead]
    assignment: AssignmentRead | None


class SheetRead(BaseModel):
    """One person's quiz: the questions, and after submission the answers, marks and links."""

    assignment: AssignmentRead
    questions: list[QuestionWithAnswer | QuestionRead]


class AssignResult(BaseModel):
    added: list[int]
    already: list[int]
    without_login: int


class AssigneeRead(BaseModel):
    assignment_id: int
    user_id: int
    username: str
    display_name: str
    assigned_at: datetime
    submitted_at: datetime | None
    correct_count: int | None
    question_count: int
    score: int | None
    overdue: bool


class QuizResultsRead(BaseModel):
    quiz: QuizRead
    assigned: int
    submitted: int
    overdue: int
    average: int | None
    assignees: list[AssigneeRead]


class AreaRead(BaseModel):
    area_id: int | None  # null: the clinic timetable
    name: str
    answered: int
    correct: int
    rate: float


class ProgressPoint(BaseModel):
    submitted_at: datetime
    quiz_id: int
    title: str
    score: int


class UserBrief(BaseModel):
    id: int
    username: str
    display_name: str


class PersonResultsRead(BaseModel):
    user: UserBrief
    assignments: list[AssignmentRead]
    progress: list[ProgressPoint]
    areas: list[AreaRead]  # weakest first


class MemberRead(BaseModel):
    user: UserBrief
    assigned: int
    submitted: int
    overdue: int
    average: int | None
    last: int | None


class TeamBrief(BaseModel):
    id: int
    code: str
    name: str


class TeamResultsRead(BaseModel):
    team: TeamBrief
    members: list[MemberRead]
    areas: list[AreaRead]
    without_login: int
