"""What the evaluation commands share (`patientline kb eval`, `patientline assistant eval-…`): the
`--format` choice, figures printed as one JSON object or an aligned table, and bad input files ending the
command with their message and exit code 2 instead of a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from enum import StrEnum
from typing import Any

import typer

BAD_INPUT_EXIT = 2


class OutputFormat(StrEnum):
    json = "json"
    text = "text"


def show_figures(figures: Mapping[str, Any], labels: Mapping[str, str], output: OutputFormat) -> None:
    """JSON: the figures as they are. Text: one line per label, in the labels' order ("-" when absent)."""
    if output is OutputFormat.json:
        typer.echo(json.dumps(figures, ensure_ascii=False))
        return
    width = max(len(label) for label in labels.values())
    for key, label in labels.items():
        value = figures.get(key)
        shown = "-" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))
        typer.echo(f"{label:<{width}}  {shown}")


@contextmanager
def refusing(*kinds: type[Exception]) -> Iterator[None]:
    """Errors of these kinds (a bad file, a bad model) end the command with their message."""
    try:
        yield
    except kinds as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=BAD_INPUT_EXIT) from None
