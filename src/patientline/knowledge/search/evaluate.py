"""Offline evaluation of the search pipeline on JSON-lines files (`patientline kb eval`, the
benchmark and the tests all call `evaluate`)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patientline.knowledge.search.index import Document, SearchIndex, SearchQuery
from patientline.knowledge.search.lexicon import Lexicon

TOP_K = 10


class EvalInputError(ValueError):
    """A file given to the evaluation is missing or malformed; the message says where."""


@dataclass(frozen=True, slots=True)
class LabelledQuery:
    query: str
    match_id: str | None


def numbered_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """The JSON objects of a JSON-lines file with their line numbers (blank lines skipped, not renumbered)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise EvalInputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise EvalInputError(f"{path}: cannot read: {error}") from None
    rows: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise EvalInputError(f"{path}:{number}: not JSON: {error.msg}") from None
        if not isinstance(row, dict):
            raise EvalInputError(f"{path}:{number}: expected a JSON object")
        rows.append((number, row))
    if not rows:
        raise EvalInputError(f"{path}: no records")
    return rows


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [row for _, row in numbered_jsonl(path)]


def _text_field(row: dict[str, Any], names: Sequence[str], where: str) -> str:
    for name in names:
        value = row.get(name)
        if isinstance(value, str) and value.strip():
            return value
    raise EvalInputError(f"{where}: needs a non-empty {' or '.join(repr(n) for n in names)}")


def _id_field(row: dict[str, Any], name: str, where: str, *, nullable: bool) -> str | None:
    if name not in row:
        raise EvalInputError(f"{where}: needs {name!r}")
    value = row[name]
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
        raise EvalInputError(f"{where}: {name!r} must be a string or an integer{' or null' if nullable else ''}")
    return str(value)


def load_corpus(path: Path) -> list[tuple[str, str]]:
    """(id, question) pairs from lines with `id` and `question` (or `text`)."""
    out = []
    for number, row in numbered_jsonl(path):
        where = f"{path}: record {number}"
        doc_id = _id_field(row, "id", where, nullable=False) or ""
        out.append((doc_id, _text_field(row, ("question", "text"), where)))
    return out


def load_queries(path: Path) -> list[LabelledQuery]:
    """Lines with `query` and `match_id` (null: nothing in the corpus answers it)."""
    out = []
    for number, row in numbered_jsonl(path):
        where = f"{path}: record {number}"
        out.append(LabelledQuery(_text_field(row, ("query",), where), _id_field(row, "match_id", where, nullable=True)))
    return out


def build_documents(corpus: Iterable[tuple[str, str]], variants: Iterable[LabelledQuery] = ()) -> list[Document]:
    by_id: dict[str, list[str]] = {}
    for variant in variants:
        if variant.match_id is not None:
            by_id.setdefault(variant.match_id, []).append(variant.query)
    return [
        Document(id=doc_id, question=question, variants=tuple(by_id.get(doc_id, ()))) for doc_id, question in corpus
    ]


def evaluate(
    corpus: Iterable[tuple[str, str]],
    queries: Sequence[LabelledQuery],
    variants: Iterable[LabelledQuery] = (),
    lexicon: Lexicon | None = None,
) -> dict[str, Any]:
    """Index the corpus (with variants as representative questions) and score the queries."""
    index = SearchIndex(lexicon or Lexicon.default())
    index.build(build_documents(corpus, variants))
    return evaluate_index(index, queries)


def evaluate_index(index: SearchIndex, queries: Sequence[LabelledQuery]) -> dict[str, Any]:
    """p_at_1 and mrr_at_10 over queries that have an answer (ranking only); answer_accuracy over
    all queries (the top hit when it is confident enough, else "no good match"); no_match_accuracy
    over the queries without an answer."""
    ranks: list[int | None] = []
    answered_right = 0
    null_total = null_right = 0
    latencies: list[float] = []
    for labelled in queries:
        started = time.perf_counter()
        result = index.search(SearchQuery(text=labelled.query, limit=TOP_K))
        latencies.append((time.perf_counter() - started) * 1000)
        ids = [str(hit.doc_id) for hit in result.hits]
        if labelled.match_id is None:
            null_total += 1
            null_right += result.no_good_match
            answered_right += result.no_good_match
            continue
        rank = ids.index(labelled.match_id) + 1 if labelled.match_id in ids else None
        ranks.append(rank)
        answered_right += rank == 1 and not result.no_good_match
    latencies.sort()
    matched = len(ranks)
    return {
        "p_at_1": _ratio(sum(1 for r in ranks if r == 1), matched),
        "mrr_at_10": _ratio(sum(1 / r for r in ranks if r is not None), matched),
        "answer_accuracy": _ratio(answered_right, len(queries)),
        "no_match_accuracy": _ratio(null_right, null_total),
        "n": len(queries),
        "n_matched": matched,
        "n_null": null_total,
        "latency_ms_p50": round(_percentile(latencies, 50), 3),
        "latency_ms_p95": round(_percentile(latencies, 95), 3),
    }


def evaluate_files(corpus: Path, queries: Path, variants: Path | None = None) -> dict[str, Any]:
    """`evaluate` on files; raises EvalInputError for a missing or malformed file."""
    corpus_rows = load_corpus(corpus)
    query_rows = load_queries(queries)
    variant_rows = load_queries(variants) if variants is not None else []
    return evaluate(corpus_rows, query_rows, variant_rows)


def _ratio(part: float, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]
