"""In-memory multi-field BM25 index over knowledge items.

Every text of an item (its question, each representative question, its names, its extra text) is a
*unit* scored on its own; an item scores as its best unit, weighted by the unit's field. Units are
scored with BM25 over several kinds of terms (see `lexicon`), each kind with its own weight and
average length.

Consistency for readers in other threads: an upsert first appends the new units' postings, then
publishes the item's new entry with one dict assignment. A unit counts only while the entry it was
made for is the item's current entry, so a reader sees the old item or the new one, never a mix.
Superseded units stay in the postings (ignored) until the owner replaces the index with
`compacted()` (see `needs_compaction`).
"""

from __future__ import annotations

import gc
import heapq
import itertools
import math
import threading
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from operator import itemgetter
from typing import Literal

from patientline.knowledge.search import confidence
from patientline.knowledge.search.lexicon import BIGRAM, CHAR, NAME, PINYIN, WORD, Lexicon
from patientline.knowledge.search.text import char_pinyin, is_cjk, name_pinyin

DocId = int | str
Field = Literal["question", "variant", "name", "extra"]

# Importance of each kind of term, and of each field. Tuned on the tuning half of the dev sets
# (bench/knowledge.py tune); see docs/SEARCH.md.
TERM_WEIGHTS: dict[str, float] = {WORD: 1.0, BIGRAM: 0.7, CHAR: 0.5, PINYIN: 0.45, NAME: 2.0}
FIELD_WEIGHTS: dict[str, float] = {"question": 1.0, "variant": 0.8, "name": 1.0, "extra": 0.4}
K1 = 1.2
B = 0.6
# Terms in more than this share of units (and at least COMMON_MIN_DF) only add to the best
# CANDIDATES units that the rarer terms found.
COMMON_SHARE = 0.01
COMMON_MIN_DF = 300
CANDIDATES = 300
COMPACT_MIN_DEAD = 2000
OTHER_UNITS_SHARE = 0.3
RERANK_DEPTH = 20
RERANK_WEIGHT = 0.5


@dataclass(frozen=True, slots=True)
class Document:
    """A knowledge item as the search engine sees it."""

    id: DocId
    question: str
    variants: tuple[str, ...] | list[str] = ()
    names: tuple[str, ...] | list[str] = ()
    extra: str = ""
    category_ids: tuple[int, ...] = ()
    site_ids: tuple[int, ...] = ()
    valid_from: date | None = None
    valid_to: date | None = None
    public: bool = True


@dataclass(frozen=True, slots=True)
class SearchQuery:
    text: str
    limit: int = 10
    category_id: int | None = None
    site_id: int | None = None
    on: date | None = None
    public_only: bool = False


@dataclass(frozen=True, slots=True)
class Hit:
    doc_id: DocId
    score: float
    confidence: float
    matched: str
    field: Field


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: list[Hit]
    no_good_match: bool
    # Words of the query, their rewritten forms and synonyms: pass the result to `highlight`.
    terms: tuple[str, ...] = ()
    threshold: float = field(default=confidence.THRESHOLD)


class _Entry:
    """The current version of an item: its document and the ids of its units."""

    __slots__ = ("document", "unit_ids")

    def __init__(self, document: Document, unit_ids: tuple[int, ...]) -> None:
        self.document = document
        self.unit_ids = unit_ids


class _Unit:
    """One searchable text of an item. Its terms are not kept (they would be most of the index's
    memory); the postings hold them, and the few units a search reports are analysed again."""

    __slots__ = ("entry", "field", "id", "text", "weight")

    def __init__(self, unit_id: int, entry: _Entry, field: Field, text: str) -> None:
        self.id = unit_id
        self.entry = entry
        self.field: Field = field
        self.text = text
        self.weight = FIELD_WEIGHTS[field]


def _kind(term: str) -> str:
    return term[0]


class SearchIndex:
    """Searchable knowledge items. `build` for a bulk load, `upsert`/`remove` on every publish."""

    def __init__(self, lexicon: Lexicon | None = None) -> None:
        self.lexicon = lexicon or Lexicon.default()
        self._entries: dict[DocId, _Entry] = {}
        self._units: dict[int, _Unit] = {}
        self._postings: dict[str, tuple[array[int], array[float]]] = {}
        self._next_unit = 0
        self._length_sum: dict[str, float] = {}
        self._length_count: dict[str, int] = {}
        self._dead_units = 0
        self._maps: dict[str, tuple[array[int], dict[int, float]]] = {}

    # ---- writing -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._entries

    def build(self, documents: Iterable[Document]) -> None:
        """Replace the whole content with `documents` (the last one wins for a repeated id)."""
        latest = {document.id: document for document in documents}
        fresh = SearchIndex(self.lexicon)
        with _collector_paused():
            fresh._load(latest.values())
        # Swap everything at once: readers see the old content or the new one.
        self.__dict__.update(fresh.__dict__)

    def upsert(self, document: Document) -> None:
        """Add or replace one item; the next search sees it."""
        texts = self._analyse(document)
        entry = _Entry(document, ())
        units, terms_of = self._make_units(entry, texts)
        entry.unit_ids = tuple(units)
        self._add_postings(terms_of)
        self._units.update(units)
        previous = self._entries.get(document.id)
        self._entries[document.id] = entry
        if previous is not None:
            self._retire(previous)

    def remove(self, doc_id: DocId) -> bool:
        """Remove an item; False when it was not there."""
        previous = self._entries.pop(doc_id, None)
        if previous is None:
            return False
        self._retire(previous)
        return True

    def with_lexicon(self, lexicon: Lexicon) -> SearchIndex:
        """A new index with the same items analysed by `lexicon` (after a synonyms change)."""
        index = SearchIndex(lexicon)
        index.build(entry.document for entry in self._entries.values())
        return index

    def rebuild(self, lexicon: Lexicon | None = None) -> None:
        """Re-analyse every item in place, with `lexicon` when given."""
        if lexicon is not None:
            fresh = self.with_lexicon(lexicon)
            self.__dict__.update(fresh.__dict__)
        else:
            self.build([entry.document for entry in self._entries.values()])

    def documents(self) -> list[Document]:
        return [entry.document for entry in self._entries.values()]

    def _analyse(self, document: Document) -> list[tuple[Field, str, dict[str, float]]]:
        out: list[tuple[Field, str, dict[str, float]]] = []
        analyse = self.lexicon.analyse_document
        if document.question.strip():
            out.append(("question", document.question, analyse(document.question)))
        for variant in dict.fromkeys(v for v in document.variants if v.strip()):
            out.append(("variant", variant, analyse(variant)))
        for name in dict.fromkeys(n for n in document.names if n.strip()):
            out.append(("name", name, self._name_terms(name)))
        if document.extra.strip():
            out.append(("extra", document.extra, analyse(document.extra)))
        return out

    def _name_terms(self, name: str) -> dict[str, float]:
        terms = self.lexicon.analyse_document(name)
        full, initials = name_pinyin(name)
        for key in (full, initials):
            if len(key) > 1:
                terms[NAME + key] = 1.0
        return terms

    def _make_units(
        self, entry: _Entry, texts: list[tuple[Field, str, dict[str, float]]], *, count_lengths: bool = True
    ) -> tuple[dict[int, _Unit], dict[int, dict[str, float]]]:
        units: dict[int, _Unit] = {}
        terms_of: dict[int, dict[str, float]] = {}
        for field_name, text, terms in texts:
            units[self._next_unit] = _Unit(self._next_unit, entry, field_name, text)
            terms_of[self._next_unit] = terms
            self._next_unit += 1
            if count_lengths:
                self._count_lengths(terms)
        return units, terms_of

    def _count_lengths(self, terms: dict[str, float]) -> None:
        """Average lengths per kind of term are over the units that have that kind (few units have
        name terms, and an average over all units would make each of them look very long)."""
        for kind in {_kind(term) for term in terms}:
            self._length_count[kind] = self._length_count.get(kind, 0) + 1
        for term, tf in terms.items():
            kind = _kind(term)
            self._length_sum[kind] = self._length_sum.get(kind, 0.0) + tf

    def _unit_postings(self, terms_of: dict[int, dict[str, float]]) -> dict[str, tuple[list[int], list[float]]]:
        """BM25 term-frequency parts (idf is applied at query time, since it changes)."""
        averages = {kind: total / max(1, self._length_count[kind]) for kind, total in self._length_sum.items()}
        grouped: dict[str, tuple[list[int], list[float]]] = {}
        for unit_id, terms in terms_of.items():
            lengths: dict[str, float] = {}
            for term, tf in terms.items():
                lengths[_kind(term)] = lengths.get(_kind(term), 0.0) + tf
            for term, tf in terms.items():
                kind = _kind(term)
                norm = K1 * (1 - B + B * lengths[kind] / max(averages.get(kind, 1.0), 1e-9))
                ids, weights = grouped.setdefault(term, ([], []))
                ids.append(unit_id)
                weights.append(tf * (K1 + 1) / (tf + norm))
        return grouped

    def _load(self, documents: Iterable[Document]) -> None:
        """Bulk load into an empty index, streaming: unit ids go straight into compact arrays (holding
        every text's term dict at once would need several times the index's memory) and become BM25
        parts once the average lengths are known."""
        ids_of: dict[str, array[int]] = {}
        repeated: dict[tuple[str, int], float] = {}  # (term, unit) -> tf, for the few tf > 1
        unit_lengths: list[dict[str, float]] = []
        for document in documents:
            entry = _Entry(document, ())
            units, terms_of = self._make_units(entry, self._analyse(document), count_lengths=False)
            entry.unit_ids = tuple(units)
            self._units.update(units)
            self._entries[document.id] = entry
            for unit_id, terms in terms_of.items():
                distinct = Counter(map(itemgetter(0), terms))  # distinct terms per kind
                lengths = {kind: float(count) for kind, count in distinct.items()}
                for term, tf in terms.items():
                    ids = ids_of.get(term)
                    if ids is None:
                        ids = ids_of[term] = array("i")
                    ids.append(unit_id)
                    if tf != 1.0:
                        repeated[term, unit_id] = tf
                        lengths[term[0]] += tf - 1
                unit_lengths.append(lengths)
        self._count_all_lengths(unit_lengths)
        once = self._single_occurrence_parts(unit_lengths)
        for term, ids in ids_of.items():
            weights = array("f", map(once[term[0]].__getitem__, ids))
            self._postings[term] = (ids, weights)
        for (term, unit_id), tf in repeated.items():
            ids, weights = self._postings[term]
            norm = (K1 + 1) / once[term[0]][unit_id] - 1  # the unit's length norm, back from its tf=1 part
            weights[bisect_left(ids, unit_id)] = tf * (K1 + 1) / (tf + norm)

    def _count_all_lengths(self, unit_lengths: list[dict[str, float]]) -> None:
        for lengths in unit_lengths:
            for kind, length in lengths.items():
                self._length_sum[kind] = self._length_sum.get(kind, 0.0) + length
                self._length_count[kind] = self._length_count.get(kind, 0) + 1

    def _single_occurrence_parts(self, unit_lengths: list[dict[str, float]]) -> dict[str, list[float]]:
        """kind -> per unit, the BM25 tf part of a term that occurs once (most terms do)."""
        parts: dict[str, list[float]] = {}
        for kind, total in self._length_sum.items():
            scale = B * self._length_count[kind] / max(total, 1e-9)
            parts[kind] = [(K1 + 1) / (1 + K1 * (1 - B + scale * lengths.get(kind, 0.0))) for lengths in unit_lengths]
        return parts

    def _add_postings(self, terms_of: dict[int, dict[str, float]]) -> None:
        for term, (ids, weights) in self._unit_postings(terms_of).items():
            current = self._postings.get(term)
            if current is None:
                self._postings[term] = (array("i", ids), array("f", weights))
            else:
                # New arrays, assigned at once: a reader iterating the old pair is not disturbed.
                self._postings[term] = (current[0] + array("i", ids), current[1] + array("f", weights))

    def _retire(self, entry: _Entry) -> None:
        for unit_id in entry.unit_ids:
            self._units.pop(unit_id, None)
        self._dead_units += len(entry.unit_ids)

    @property
    def needs_compaction(self) -> bool:
        """Superseded units (still in the postings, skipped by searches) have piled up: time to
        replace this index with `compacted()`. Never done inside `upsert`, where it would be a pause
        of seconds at 10,000 items."""
        return self._dead_units > max(COMPACT_MIN_DEAD, len(self._units) // 4)

    def compacted(self) -> SearchIndex:
        """A fresh index of the current items without superseded units. Safe to run in another thread
        while this index is searched and updated: it copies the item list at once and does not
        touch this index again (changes made meanwhile must be applied to the result too)."""
        documents = [entry.document for entry in list(self._entries.values())]
        fresh = SearchIndex(self.lexicon)
        with _collector_paused():
            fresh._load(documents)
        return fresh

    # ---- searching ---------------------------------------------------------------------------

    def search(self, query: SearchQuery) -> SearchResult:
        analysis = self.lexicon.analyse_query(query.text)
        ranked = self._ranked(analysis.terms, query, max(query.limit, 2))
        hits = self._hits(ranked, analysis.terms, query.limit)
        no_good_match = not hits or hits[0].confidence < confidence.THRESHOLD
        return SearchResult(hits=hits, no_good_match=no_good_match, terms=analysis.surface_words)

    def explain_top(self, text: str) -> tuple[confidence.Features | None, DocId | None]:
        """The confidence features of the best item for `text`, and its id (for calibration)."""
        analysis = self.lexicon.analyse_query(text)
        ranked = self._ranked(analysis.terms, SearchQuery(text=text), 2)
        if not ranked:
            return None, None
        runner_up = ranked[1][0] if len(ranked) > 1 else 0.0
        features = self.confidence_features(analysis.terms, ranked[0][1], ranked[0][0], runner_up)
        return features, ranked[0][1].entry.document.id

    def _ranked(self, query_terms: dict[str, float], query: SearchQuery, count: int) -> list[tuple[float, _Unit]]:
        """The best `count` items (score, best unit): BM25, then the first RERANK_DEPTH re-scored by
        how much of the query's topic their best text covers (BM25 alone lets many matches of
        common words beat the one rare topic word that matters)."""
        best = self._best_units(self._score_units(query_terms), query)
        ranked = heapq.nlargest(max(count, RERANK_DEPTH), best.values(), key=lambda pair: pair[0])
        if RERANK_WEIGHT:
            ranked = [
                (score * (1 + RERANK_WEIGHT * self.topic_coverage(query_terms, self._membership(unit))), unit)
                for score, unit in ranked
            ]
            ranked.sort(key=lambda pair: -pair[0])
        return ranked[:count]

    def idf(self, term: str) -> float:
        postings = self._postings.get(term)
        df = len(postings[0]) if postings is not None else 0
        total = max(1, len(self._units) + self._dead_units)
        return math.log(1 + (total - df + 0.5) / (df + 0.5))

    def _score_units(self, query_terms: dict[str, float]) -> dict[int, float]:
        """BM25 in two steps: the rarer terms find candidate units and score them; the common terms
        (intent words such as 怎么 or 多少钱 among them) then add to the best candidates only, so a
        search never walks a posting list that covers a large share of the index."""
        present = [
            (term, weight, self._postings[term]) for term, weight in query_terms.items() if term in self._postings
        ]
        present.sort(key=lambda item: len(item[2][0]))
        common = max(COMMON_MIN_DF, int((len(self._units) + self._dead_units) * COMMON_SHARE))
        scores: dict[int, float] = {}
        later: list[tuple[str, float, array[int], array[float]]] = []
        for term, weight, (ids, tf_parts) in present:
            factor = weight * TERM_WEIGHTS[_kind(term)] * self.idf(term)
            if len(ids) <= common or not scores:
                _add_all(scores, ids, tf_parts, factor)
            else:
                later.append((term, factor, ids, tf_parts))
        if later:
            if len(scores) > CANDIDATES:
                scores = dict(heapq.nlargest(CANDIDATES, scores.items(), key=lambda pair: pair[1]))
            for term, factor, ids, tf_parts in later:
                parts = self._posting_map(term, ids, tf_parts)
                for unit_id in scores:
                    part = parts.get(unit_id)
                    if part is not None:
                        scores[unit_id] += part * factor
        return scores

    def _posting_map(self, term: str, ids: array[int], tf_parts: array[float]) -> dict[int, float]:
        """unit id -> tf part of a common term, cached until its postings change."""
        cached = self._maps.get(term)
        if cached is None or cached[0] is not ids:
            cached = (ids, dict(zip(ids, tf_parts, strict=True)))
            self._maps[term] = cached
        return cached[1]

    def _best_units(self, scores: dict[int, float], query: SearchQuery) -> dict[DocId, tuple[float, _Unit]]:
        """Each visible item's score and best unit: the best unit's field-weighted score plus a share
        of its other units' scores (an item whose several texts all fit is a safer answer)."""
        best: dict[DocId, tuple[float, _Unit]] = {}
        totals: dict[DocId, float] = {}
        units = self._units
        entries = self._entries
        allowed: dict[DocId, bool] = {}
        for unit_id, raw in scores.items():
            unit = units.get(unit_id)
            if unit is None:
                continue
            document = unit.entry.document
            if entries.get(document.id) is not unit.entry:
                continue
            ok = allowed.get(document.id)
            if ok is None:
                ok = allowed[document.id] = _visible(document, query)
            if not ok:
                continue
            score = raw * unit.weight
            totals[document.id] = totals.get(document.id, 0.0) + score
            current = best.get(document.id)
            if current is None or score > current[0]:
                best[document.id] = (score, unit)
        return {
            doc_id: (score + OTHER_UNITS_SHARE * (totals[doc_id] - score), unit)
            for doc_id, (score, unit) in best.items()
        }

    def _hits(self, ranked: list[tuple[float, _Unit]], query_terms: dict[str, float], limit: int) -> list[Hit]:
        hits: list[Hit] = []
        idf_cache: dict[str, float] = {}
        for position, (score, unit) in enumerate(ranked[:limit]):
            others = [s for i, (s, _) in enumerate(ranked) if i != position]
            features = self.confidence_features(query_terms, unit, score, max(others, default=0.0), idf_cache)
            hits.append(
                Hit(
                    doc_id=unit.entry.document.id,
                    score=round(score, 4),
                    confidence=confidence.estimate(features),
                    matched=unit.text,
                    field=unit.field,
                )
            )
        return hits

    def confidence_features(
        self,
        query_terms: dict[str, float],
        unit: _Unit,
        score: float,
        runner_up: float,
        idf_cache: dict[str, float] | None = None,
    ) -> confidence.Features:
        """How much of the query the unit explains, the lead over the next item, and how much of the
        query's topic the unit covers. Read from the postings: the unit is not analysed again."""
        idf_of = self._cached_idf(idf_cache if idf_cache is not None else {})
        has = self._membership(unit)
        query_mass = matched_mass = 0.0
        for term, weight in query_terms.items():
            importance = weight * TERM_WEIGHTS[_kind(term)] * idf_of(term)
            query_mass += importance
            if has(term):
                matched_mass += importance
        return confidence.Features(
            query_coverage=matched_mass / query_mass if query_mass else 0.0,
            margin=(score - runner_up) / score if score > 0 else 0.0,
            topic_coverage=self.topic_coverage(query_terms, has),
        )

    def topic_coverage(self, query_terms: dict[str, float], has: Callable[[str], bool]) -> float:
        """Share of the query's topic-word weight found in a unit (`has`: does the unit have this
        term); 0 when the query has no topic words (怎么办 alone answers nothing). Needs no corpus
        statistics, so it holds in a base of one item."""
        topic = self.lexicon.topic_words(query_terms)
        total = sum(weight for _, weight in topic)
        if total <= 0:
            return 0.0
        return sum(weight * _word_coverage(word, has) for word, weight in topic) / total

    def _membership(self, unit: _Unit) -> Callable[[str], bool]:
        """term -> does `unit` have it: a binary search in the term's postings (ids ascending)."""
        postings = self._postings
        unit_id = unit.id

        def has(term: str) -> bool:
            posting = postings.get(term)
            if posting is None:
                return False
            ids = posting[0]
            position = bisect_left(ids, unit_id)
            return position < len(ids) and ids[position] == unit_id

        return has

    def _cached_idf(self, cache: dict[str, float]) -> Callable[[str], float]:
        def idf_of(term: str) -> float:
            value = cache.get(term)
            if value is None:
                value = cache[term] = self.idf(term)
            return value

        return idf_of


def _word_coverage(word: str, has: Callable[[str], bool]) -> float:
    """1 when the unit has the word; else the share of its character bigrams (or toneless pinyin
    bigrams: homophones) the unit has, since segmentation differs (挂号 inside 预约挂号)."""
    if has(WORD + word) or has(NAME + word):
        return 1.0
    characters = [c for c in word if is_cjk(c)]
    if len(characters) != len(word) or not characters:
        return 0.0
    if len(characters) == 1:
        return 1.0 if has(CHAR + word) else 0.0
    pairs = list(itertools.pairwise(characters))
    by_characters = sum(has(BIGRAM + a + b) for a, b in pairs)
    by_sound = sum(has(PINYIN + (char_pinyin(a) or a) + " " + (char_pinyin(b) or b)) for a, b in pairs)
    return max(by_characters, by_sound) / len(pairs)


_collector_lock = threading.Lock()
_collector_pauses = 0
_collector_was_enabled = False


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during a bulk load: the load makes millions of objects and
    none of them form cycles, but the collector would walk the growing heap again and again (about a
    tenth of the build time at 10,000 items). Loads in several threads share one pause."""
    global _collector_pauses, _collector_was_enabled
    with _collector_lock:
        if _collector_pauses == 0:
            _collector_was_enabled = gc.isenabled()
            gc.disable()
        _collector_pauses += 1
    try:
        yield
    finally:
        with _collector_lock:
            _collector_pauses -= 1
            if _collector_pauses == 0 and _collector_was_enabled:
                gc.enable()


def _add_all(scores: dict[int, float], ids: array[int], tf_parts: array[float], factor: float) -> None:
    get = scores.get
    for unit_id, part in zip(ids, tf_parts, strict=True):
        scores[unit_id] = get(unit_id, 0.0) + part * factor


def _visible(document: Document, query: SearchQuery) -> bool:
    if query.public_only and not document.public:
        return False
    if query.category_id is not None and query.category_id not in document.category_ids:
        return False
    if query.site_id is not None and document.site_ids and query.site_id not in document.site_ids:
        return False
    if query.on is not None:
        if document.valid_from is not None and query.on < document.valid_from:
            return False
        if document.valid_to is not None and query.on > document.valid_to:
            return False
    return True
