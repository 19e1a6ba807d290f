"""Complement naive Bayes over TF-IDF weighted character unigrams and bigrams of Chinese, and words
and word pairs of English: the learnt part of
triage (labels: the departments) and of the emergency guard (labels: emergency, calm). Shipped as
n-gram counts (gzip JSON), trained by `patientline assistant train-triage` / `train-emergency`."""

from __future__ import annotations

import gzip
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from patientline.knowledge.search.text import fold

MODEL_VERSION = 2  # 2: English read as words, not letters
SMOOTHING = 0.3
MAX_GRAM = 2
IGNORED = re.compile(r"[\s\d\W_]+")
ENGLISH_WORD = re.compile(r"[a-z]+")
WORD = "w:"  # marks a word apart from a run of letters


class ModelError(ValueError):
    """An unusable model file or training data; the message says what."""


def grams(text: str) -> Counter[str]:
    """Character unigrams and bigrams of the folded text's runs of Chinese (digits and punctuation dropped),
    and its English words and pairs of neighbouring words: English letters mean nothing one by one."""
    found: Counter[str] = Counter()
    for run in IGNORED.split(text):
        if run.isascii():
            continue
        for size in range(1, MAX_GRAM + 1):
            found.update(run[i : i + size] for i in range(len(run) - size + 1))
    words = ENGLISH_WORD.findall(text)
    found.update(WORD + word for word in words)
    found.update(f"{WORD}{first}_{second}" for first, second in pairwise(words))
    return found


@dataclass
class ComplementBayes:
    """Complement naive Bayes over TF-IDF weighted character n-grams: each label (a department, or
    emergency and calm) is scored by how unlike the other labels' messages the text is, which holds up
    when some labels have few examples. Stored as counts; the weights are derived when loaded."""

    document_frequency: dict[str, int]
    documents: int
    weight_by_department: dict[str, dict[str, float]]  # by label: summed TF-IDF weight of each n-gram

    @classmethod
    def train(cls, examples: Iterable[tuple[str, str]]) -> ComplementBayes:
        """From (label, text) pairs."""
        counted = [(label, grams(fold(text))) for label, text in examples]
        frequency: Counter[str] = Counter()
        for _, counts in counted:
            frequency.update(counts.keys())
        by_department: dict[str, Counter[str]] = defaultdict(Counter)
        for department, counts in counted:
            by_department[department].update(_tf_idf(counts, frequency, len(counted)))
        return cls(dict(frequency), len(counted), {department: dict(w) for department, w in by_department.items()})

    def __post_init__(self) -> None:
        self._all: Counter[str] = Counter()
        for weights in self.weight_by_department.values():
            self._all.update(weights)
        total = sum(self._all.values()) + SMOOTHING * len(self.document_frequency)
        self._complement_total = {
            department: total - sum(weights.values()) for department, weights in self.weight_by_department.items()
        }

    def log_likelihoods(self, text: str) -> dict[str, float]:
        vector = _tf_idf(grams(text), self.document_frequency, self.documents)
        if not vector:
            return {}
        mass = sum(vector.values())
        scores = {}
        for department, weights in self.weight_by_department.items():
            complement = sum(
                weight * math.log(self._all[gram] + SMOOTHING - weights.get(gram, 0.0))
                for gram, weight in vector.items()
            )
            scores[department] = mass * math.log(self._complement_total[department]) - complement
        return scores

    def to_json(self) -> dict[str, Any]:
        return {
            "version": MODEL_VERSION,
            "documents": self.documents,
            "document_frequency": self.document_frequency,
            "weights": {
                department: {gram: round(weight, 5) for gram, weight in weights.items()}
                for department, weights in sorted(self.weight_by_department.items())
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], *, labels: Collection[str]) -> ComplementBayes:
        if data.get("version") != MODEL_VERSION:
            raise ModelError(f"model version {data.get('version')!r}, expected {MODEL_VERSION}")
        if unknown := set(data["weights"]) - set(labels):
            raise ModelError(f"the model names unknown labels: {', '.join(sorted(unknown))}")
        counts, documents, weights = data["document_frequency"], data["documents"], data["weights"]
        if not (
            _numbers_by_gram(counts) and isinstance(documents, int) and all(map(_numbers_by_gram, weights.values()))
        ):
            raise ModelError("the model holds values of the wrong kind")
        return cls(counts, documents, weights)

    def save(self, path: Path) -> None:
        try:
            path.write_bytes(gzip.compress(json.dumps(self.to_json(), ensure_ascii=False).encode(), mtime=0))
        except OSError as error:
            raise ModelError(f"{path}: cannot write the model ({error.strerror})") from None

    @classmethod
    def load(cls, path: Path, *, labels: Collection[str]) -> ComplementBayes:
        try:
            return cls.from_json(json.loads(gzip.decompress(path.read_bytes())), labels=labels)
        except ModelError:
            raise
        except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ModelError(f"{path}: not a model of this kind ({error})") from None


def _tf_idf(counts: Counter[str], frequency: Mapping[str, int], documents: int) -> dict[str, float]:
    """Sublinear TF times smoothed IDF, L2-normalised; n-grams never seen in training are dropped."""
    weights = {
        gram: (1 + math.log(count)) * (math.log((1 + documents) / (1 + seen)) + 1)
        for gram, count in counts.items()
        if (seen := frequency.get(gram))
    }
    norm = math.sqrt(sum(weight * weight for weight in weights.values())) or 1.0
    return {gram: weight / norm for gram, weight in weights.items()}


def _numbers_by_gram(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(gram, str) and isinstance(number, int | float) for gram, number in value.items()
    )
