"""Symptom triage (分诊): a caller's words (+ age and sex) -> departments, best first, each with the words
that point there.

Three sources of evidence, added up per department:
- a **lexicon** of symptoms, diseases, findings, procedures and body parts, each pointing to the
  department a triage nurse would choose (and at most two defensible others), encoded by hand in
  `data/triage_lexicon.txt`;
- a **complement naive Bayes model** over TF-IDF weighted character unigrams and bigrams, learnt from
  labelled messages (`patientline assistant train-triage`; the shipped counts are in
  `data/triage_model.json.gz`), for the wording the lexicon does not know;
- **rules**: an emergency goes to 急诊科 first; a child under 14 to 儿科 unless the complaint is of
  the eyes, ears/nose/throat or teeth; 妇科 and 产科 only for women, 男科 only for men, 儿科 only for
  children. Age and sex come from the form when given, else from the words ("我爸七十二了").

The 30 departments are a standard list; `directory` maps them to the hospital's own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from patientline.assistant.bayes import ComplementBayes, ModelError
from patientline.assistant.cues import cues_of
from patientline.assistant.emergency import by_signs
from patientline.directory.models import TRIAGE_DEPARTMENTS
from patientline.knowledge.search.text import fold

DATA_DIR = Path(__file__).parent / "data"
LEXICON_FILE = DATA_DIR / "triage_lexicon.txt"
MODEL_FILE = DATA_DIR / "triage_model.json.gz"

DEPARTMENTS = TRIAGE_DEPARTMENTS
EMERGENCY = "急诊科"
PAEDIATRICS = "儿科"
CHILD_AGE_LIMIT = 14
ADULT_AGE = 18
CHILD_SPECIALTIES = frozenset({"眼科", "耳鼻咽喉科", "口腔科"})
WOMEN_ONLY = frozenset({"妇科", "产科"})
MEN_ONLY = frozenset({"男科"})
ADULTS_ONLY = frozenset({"产科", "男科"})

ALTERNATIVE_WEIGHT = 0.5
BODY_PART_WEIGHT = 0.5
LEXICON_WEIGHT = 1.0  # one lexicon term against the scaled log-odds of the model
MODEL_SHARPNESS = 3.0  # scales the model's log-likelihoods


class TriageError(ModelError):
    """Unusable triage input or data; the message says what."""


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    department: str
    age: int | None = None
    sex: str | None = None


@dataclass(frozen=True, slots=True)
class Suggestion:
    department: str
    score: float
    terms: tuple[str, ...]  # the words of the message that point here (empty: the model's judgement)


@dataclass(frozen=True, slots=True)
class Term:
    text: str
    departments: tuple[str, ...]
    body_part: bool

    def weights(self) -> Iterable[tuple[str, float]]:
        base = BODY_PART_WEIGHT if self.body_part else 1.0
        for position, department in enumerate(self.departments):
            yield department, base * (1.0 if position == 0 else ALTERNATIVE_WEIGHT)


# ---- lexicon -------------------------------------------------------------------------------------------


def read_lexicon(path: Path = LEXICON_FILE) -> list[Term]:
    """`term<TAB>department[<TAB>department…]` lines; a `# body parts` header starts the weaker terms."""
    terms: dict[str, Term] = {}
    body_part = False
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            body_part = body_part or line.lower().startswith("# body parts")
            continue
        text, *departments = (part.strip() for part in raw.split("\t"))
        if not departments or any(department not in DEPARTMENTS for department in departments):
            raise TriageError(f"{path.name}:{number}: expected a term and known departments, tab-separated")
        terms[fold(text)] = Term(fold(text), tuple(departments), body_part)
    return sorted(terms.values(), key=lambda term: -len(term.text))


def matched_terms(text: str, lexicon: list[Term]) -> list[Term]:
    """The lexicon's terms in `text`, longest first, none inside a longer one already matched."""
    taken = [False] * len(text)
    found: list[Term] = []
    for term in lexicon:
        start = text.find(term.text)
        while start >= 0:
            end = start + len(term.text)
            if not any(taken[start:end]):
                taken[start:end] = [True] * len(term.text)
                found.append(term)
                break
            start = text.find(term.text, start + 1)
    return found


# ---- triage --------------------------------------------------------------------------------------------


@dataclass
class Triage:
    model: ComplementBayes
    lexicon: list[Term]

    def rank(self, text: str, *, age: int | None = None, sex: str | None = None) -> list[Suggestion]:
        """The eligible departments, best first; none when the words give nothing to go on."""
        folded = fold(text)
        found = matched_terms(folded, self.lexicon)
        likelihoods = self.model.log_likelihoods(folded)
        if not found and not likelihoods:
            return []
        scores, terms = _evidence(likelihoods, found)
        cues = cues_of(folded, age=age, sex=sex)
        ranked = sorted(
            (Suggestion(department, round(score, 4), tuple(terms[department])) for department, score in scores.items()),
            key=lambda suggestion: -suggestion.score,
        )
        age = None if cues.age_guessed else cues.age  # "宝宝" alone may be a mother's unborn child (怀宝宝)
        ranked = [suggestion for suggestion in ranked if _eligible(suggestion.department, age, cues.sex)]
        if by_signs(folded):  # the signs only: the learnt opinion does not reorder departments
            return _second(ranked, EMERGENCY)
        if age is not None and age < CHILD_AGE_LIMIT:
            return _first(ranked, _child_specialty(found) or PAEDIATRICS)
        return ranked


def _evidence(likelihoods: dict[str, float], found: list[Term]) -> tuple[dict[str, float], dict[str, list[str]]]:
    best = max(likelihoods.values(), default=0.0)
    scores = {
        department: MODEL_SHARPNESS * (likelihoods.get(department, best - 5) - best) for department in DEPARTMENTS
    }
    terms: dict[str, list[str]] = {department: [] for department in DEPARTMENTS}
    for term in found:
        for department, weight in term.weights():
            scores[department] += LEXICON_WEIGHT * weight
            terms[department].append(term.text)
    return scores, terms


def _eligible(department: str, age: int | None, sex: str | None) -> bool:
    if department in WOMEN_ONLY and sex == "男":
        return False
    if department in MEN_ONLY and sex == "女":
        return False
    if age is not None and age < CHILD_AGE_LIMIT and department in ADULTS_ONLY:
        return False
    return not (department == PAEDIATRICS and age is not None and age >= ADULT_AGE)


def _child_specialty(found: list[Term]) -> str | None:
    """A child's eye, ENT or dental complaint stays there: more of the message's own terms (not body
    parts) belong to that specialty than to any other department ("孩子六岁，看黑板看不清" but not
    "孩子四岁，感冒鼻塞咳嗽")."""
    primary = Counter(
        term.departments[0] for term in found if not term.body_part and term.departments[0] != PAEDIATRICS
    )
    ranked = primary.most_common(2)
    if not ranked or ranked[0][0] not in CHILD_SPECIALTIES:
        return None
    return ranked[0][0] if len(ranked) == 1 or ranked[0][1] > ranked[1][1] else None


def _second(ranked: list[Suggestion], department: str) -> list[Suggestion]:
    """`department` right behind the best one, unless it is the best already. The emergency department
    does not push the specialty out of first place: the signs also fire on stories told in the past, and
    the alarm itself travels apart from the ranking (the chat's guard, `emergency` in the API's answer)."""
    if ranked and ranked[0].department == department:
        return ranked
    chosen = [suggestion for suggestion in ranked if suggestion.department == department]
    return ranked[:1] + chosen + [suggestion for suggestion in ranked[1:] if suggestion.department != department]


def _first(ranked: list[Suggestion], department: str) -> list[Suggestion]:
    chosen = [suggestion for suggestion in ranked if suggestion.department == department]
    return chosen + [suggestion for suggestion in ranked if suggestion.department != department]


@lru_cache(maxsize=1)
def default_triage() -> Triage:
    """The shipped lexicon and model, read once per process."""
    return Triage(ComplementBayes.load(MODEL_FILE, labels=DEPARTMENTS), read_lexicon())
