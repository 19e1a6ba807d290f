"""`patientline kb …`: knowledge-base tools for the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from patientline.core.figures_cli import OutputFormat, refusing, show_figures

kb_app = typer.Typer(help="The knowledge base.", no_args_is_help=True)


@kb_app.callback()
def _kb() -> None:
    """The knowledge base."""


@kb_app.command("eval")
def eval_search(
    corpus: Annotated[Path, typer.Option(help="JSON lines with `id` and `question` (or `text`)")],
    queries: Annotated[Path, typer.Option(help="JSON lines with `query` and `match_id` (null: no answer)")],
    variants: Annotated[
        Path | None, typer.Option(help="JSON lines with `query` and `match_id`, indexed as representative questions")
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--format", help="json or text")] = OutputFormat.json,
) -> None:
    """Measure the search pipeline (the same one the product uses) on labelled queries."""
    from patientline.knowledge.search import EvalInputError, evaluate_files

    with refusing(EvalInputError):
        figures = evaluate_files(corpus, queries, variants)
    show_figures(figures, LABELS, output)


LABELS = {
    "p_at_1": "P@1 (answerable queries)",
    "mrr_at_10": "MRR@10 (answerable queries)",
    "answer_accuracy": "answer accuracy (all queries)",
    "no_match_accuracy": "no-good-match rate (unanswerable queries)",
    "n": "queries",
    "n_matched": "answerable",
    "n_null": "unanswerable",
    "latency_ms_p50": "search latency p50 (ms)",
    "latency_ms_p95": "search latency p95 (ms)",
}
