"""`patientline kb …`: knowledge-base tools for the command line."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

kb_app = typer.Typer(help="The knowledge base.", no_args_is_help=True)


class OutputFormat(StrEnum):
    json = "json"
    text = "text"


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

    try:
        figures = evaluate_files(corpus, queries, variants)
    except EvalInputError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from None
    if output is OutputFormat.json:
        typer.echo(json.dumps(figures, ensure_ascii=False))
    else:
        typer.echo(_as_text(figures))


def _as_text(figures: dict[str, Any]) -> str:
    labels = {
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
    width = max(len(label) for label in labels.values())
    lines = []
    for key, label in labels.items():
        value = figures.get(key)
        shown = "-" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))
        lines.append(f"{label:<{width}}  {shown}")
    return "\n".join(lines)
