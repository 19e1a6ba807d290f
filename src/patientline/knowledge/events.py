from __future__ import annotations

from typing import ClassVar

from patientline.core.auth.permissions import Permission
from patientline.core.events import Audience, Event

KNOWLEDGE_READERS = Audience(permission=Permission.READ_KNOWLEDGE.value)
KNOWLEDGE_REVIEWERS = Audience(permission=Permission.REVIEW_KNOWLEDGE.value)


class ItemChanged(Event):
    """Any change to an item; `live` tells whether the answer callers hear changed (publish, archive,
    variants of a live item), which is what search indexes follow."""

    type: ClassVar[str] = "knowledge.item"
    item_id: int
    change: str  # created | updated | submitted | published | returned | archived | variants
    question: str
    status: str
    live: bool


class SynonymsChanged(Event):
    type: ClassVar[str] = "knowledge.synonyms"
    group_id: int


class CandidatesChanged(Event):
    type: ClassVar[str] = "knowledge.candidates"
    candidate_id: int
    count: int


class TreeChanged(Event):
    """The category tree changed: search filters and paths follow."""

    type: ClassVar[str] = "knowledge.tree"
    category_id: int
