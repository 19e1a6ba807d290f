from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from patientline.core.i18n import gettext
from patientline.core.validation import Code, DbId, Name, ReadModel, StrictModel, Version
from patientline.knowledge.sanitize import clean_html

Question = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200)]
Spoken = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
AnswerHtml = Annotated[str, StringConstraints(max_length=50_000), AfterValidator(clean_html)]


def _unique(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


# ---- categories ------------------------------------------------------------------------------


class CategoryCreate(StrictModel):
    code: Code
    name: Name
    parent_id: DbId | None = None
    position: Annotated[int, Field(ge=0, le=10_000)] = 0
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    is_active: bool = True


class CategoryUpdate(StrictModel):
    version: Version
    code: Code | None = None
    name: Name | None = None
    parent_id: DbId | None = None
    position: Annotated[int, Field(ge=0, le=10_000)] | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    is_active: bool | None = None


class CategoryRead(ReadModel):
    id: int
    code: str
    name: str
    parent_id: int | None
    position: int
    description: str
    is_active: bool
    version: int


# ---- items -----------------------------------------------------------------------------------


class ItemContent(StrictModel):
    """The reviewed part of an item: every save of it is a revision."""

    category_id: DbId
    question: Question
    answer_html: AnswerHtml = ""
    spoken: Spoken = ""
    tags: Annotated[list[Tag], Field(max_length=20), AfterValidator(_unique)] = []
    department_ids: Annotated[list[DbId], Field(max_length=50), AfterValidator(_unique)] = []
    site_ids: Annotated[list[DbId], Field(max_length=20), AfterValidator(_unique)] = []
    public: bool = True
    valid_from: date | None = None
    valid_to: date | None = None
    owner_department_id: DbId | None = None

    @model_validator(mode="after")
    def _validity(self) -> ItemContent:
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError(gettext("The end of validity is before its start."))
        return self


VariantText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200)]


class ItemCreate(ItemContent):
    key: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = None
    variants: Annotated[list[VariantText], Field(max_length=200), AfterValidator(_unique)] = []
    note: Note = ""


class ItemUpdate(ItemContent):
    version: Version
    note: Note = ""


class Transition(StrictModel):
    version: Version
    note: Note = ""


class RestoreRequest(StrictModel):
    version: Version
    revision: Annotated[int, Field(ge=1, le=100_000)]


class VariantCreate(StrictModel):
    text: VariantText


class VariantRead(ReadModel):
    id: int
    text: str
    source: str
    created_at: datetime


class ItemRead(ReadModel):
    id: int
    key: str | None
    category_id: int
    status: str
    question: str
    answer_html: str
    spoken: str
    tags: list[str]
    department_ids: list[int]
    site_ids: list[int]
    public: bool
    valid_from: date | None
    valid_to: date | None
    owner_department_id: int | None
    revision: int
    live_revision_id: int | None
    published_at: datetime | None
    author_id: int | None
    reviewer_id: int | None
    review_note: str
    created_at: datetime
    updated_at: datetime
    version: int


class ItemDetail(ItemRead):
    variants: list[VariantRead]
    allowed_transitions: list[str]


class RevisionRead(ReadModel):
    id: int
    number: int
    content: dict[str, Any]
    note: str
    author_id: int | None
    created_at: datetime
    reviewer_id: int | None
    published_at: datetime | None


# ---- candidates, synonyms, feedback ----------------------------------------------------------


class CandidateCreate(StrictModel):
    text: VariantText
    source: Literal["agent", "search_miss"] = "agent"
    context: Annotated[str, StringConstraints(max_length=100)] = ""
    item_id: DbId | None = None  # the item the agent had open, a hint for the editor


class CandidateAttach(StrictModel):
    version: Version
    item_id: DbId


class CandidateDecision(StrictModel):
    version: Version


class CandidateRead(ReadModel):
    id: int
    text: str
    source: str
    status: str
    count: int
    last_seen_at: datetime
    created_at: datetime
    item_id: int | None
    suggested_item_id: int | None
    version: int


SynonymTerm = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


class SynonymCreate(StrictModel):
    terms: Annotated[list[SynonymTerm], Field(min_length=2, max_length=20), AfterValidator(_unique)]
    note: Annotated[str, StringConstraints(max_length=200)] = ""
    is_active: bool = True

    @model_validator(mode="after")
    def _two_distinct(self) -> SynonymCreate:
        if len(self.terms) < 2:
            raise ValueError(gettext("A synonym group needs at least two different terms."))
        return self


class SynonymUpdate(SynonymCreate):
    version: Version


class SynonymRead(ReadModel):
    id: int
    terms: list[str]
    note: str
    is_active: bool
    version: int


class FeedbackCreate(StrictModel):
    kind: Literal["helpful", "outdated"]
    comment: Note = ""


class FeedbackRead(ReadModel):
    id: int
    item_id: int
    revision: int
    kind: str
    comment: str
    user_id: int | None
    created_at: datetime
    resolved_at: datetime | None


class SearchHit(ReadModel):
    item_id: int
    score: float
    confidence: float
    question: str
    matched: str
    highlighted: str
    spoken: str
    category_id: int
    category_path: str
    public: bool
    published_at: datetime | None
    recent: bool


class SearchAnswer(ReadModel):
    query: str
    no_good_match: bool
    hits: list[SearchHit]


ItemStatusName = Literal["draft", "in_review", "published", "archived"]
