"""Chinese search over knowledge items: normalisation, multi-field BM25, calibrated "no good match",
highlighting and the offline evaluation. Pure Python, in memory; see docs/SEARCH.md."""

from patientline.knowledge.search.evaluate import EvalInputError, evaluate, evaluate_files
from patientline.knowledge.search.highlight import highlight, highlight_html
from patientline.knowledge.search.index import Document, Hit, SearchIndex, SearchQuery, SearchResult
from patientline.knowledge.search.lexicon import Lexicon

__all__ = [
    "Document",
    "EvalInputError",
    "Hit",
    "Lexicon",
    "SearchIndex",
    "SearchQuery",
    "SearchResult",
    "evaluate",
    "evaluate_files",
    "highlight",
    "highlight_html",
]
