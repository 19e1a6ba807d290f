"""Highlighting: where the words of a query (as typed, as rewritten, and their synonyms) occur in a
stored text. Matching is on folded text (width, case, traditional -> simplified), and the spans point
into the original text."""

from __future__ import annotations

import html
from collections.abc import Iterable

from patientline.knowledge.search.index import SearchResult
from patientline.knowledge.search.text import fold, fold_char


def highlight(text: str, terms: SearchResult | Iterable[str]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping (start, end) character spans of `text` to mark. `terms` is a search
    result (its `terms`) or any words."""
    words = terms.terms if isinstance(terms, SearchResult) else tuple(terms)
    folded_chars: list[str] = []
    origin: list[int] = []
    for position, char in enumerate(text):
        for folded_char in fold_char(char):
            folded_chars.append(folded_char)
            origin.append(position)
    folded = "".join(folded_chars)
    spans: list[tuple[int, int]] = []
    for word in {fold(w).strip() for w in words}:
        if len(word) < 2:
            continue
        start = folded.find(word)
        while start >= 0:
            spans.append((origin[start], origin[start + len(word) - 1] + 1))
            start = folded.find(word, start + 1)
    return _merge(spans)


def highlight_html(text: str, terms: SearchResult | Iterable[str]) -> str:
    """`text` HTML-escaped, with the highlighted spans in <mark>…</mark>."""
    out: list[str] = []
    position = 0
    for start, end in highlight(text, terms):
        out.append(html.escape(text[position:start]))
        out.append("<mark>" + html.escape(text[start:end]) + "</mark>")
        position = end
    out.append(html.escape(text[position:]))
    return "".join(out)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
