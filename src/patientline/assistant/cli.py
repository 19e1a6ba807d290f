"""`patientline assistant …`: the triage model and the emergency guard from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from patientline.knowledge.cli import OutputFormat

assistant_app = typer.Typer(help="The self-service assistant: triage and the emergency guard.", no_args_is_help=True)

LABELS = {
    "accuracy_at_1": "accuracy@1 (also counted)",
    "accuracy_at_3": "accuracy@3 (also counted)",
    "macro_f1": "macro-F1 (first choice)",
    "recall": "recall (emergencies caught)",
    "false_alarm_rate": "false-alarm rate",
    "n": "lines",
}


@assistant_app.callback()
def _assistant() -> None:
    """The self-service assistant."""


@assistant_app.command("eval-triage")
def eval_triage(
    file: Annotated[Path, typer.Option(help="JSON lines: text, department, optional age, sex, also")],
    model: Annotated[Path | None, typer.Option(help="a model from train-triage instead of the shipped one")] = None,
    output: Annotated[OutputFormat, typer.Option("--format", help="json or text")] = OutputFormat.json,
) -> None:
    """Measure triage (the same ranking the product uses) on labelled messages."""
    from patientline.assistant.evaluate import evaluate_triage, read_triage_examples
    from patientline.assistant.triage import ComplementBayes, Triage, TriageError, default_triage, read_lexicon

    with _input_errors(TriageError):
        triage = default_triage() if model is None else Triage(ComplementBayes.load(model), read_lexicon())
        _show(evaluate_triage(triage, read_triage_examples(file)), output)


@assistant_app.command("eval-emergency")
def eval_emergency(
    file: Annotated[Path, typer.Option(help="JSON lines: text, emergency (true or false)")],
    output: Annotated[OutputFormat, typer.Option("--format", help="json or text")] = OutputFormat.json,
) -> None:
    """Measure the emergency guard on labelled messages."""
    from patientline.assistant.evaluate import evaluate_emergency

    with _input_errors():
        _show(evaluate_emergency(file), output)


@assistant_app.command("train-triage")
def train_triage(
    file: Annotated[list[Path], typer.Option(help="JSON lines: text, department (age, sex, also ignored); repeat")],
    out: Annotated[Path, typer.Option(help="where to write the model (gzip JSON)")],
) -> None:
    """Learn the triage model's n-gram counts from labelled messages."""
    from patientline.assistant.evaluate import read_triage_examples
    from patientline.assistant.triage import ComplementBayes, TriageError

    with _input_errors(TriageError):
        examples = [example for path in file for example, _ in read_triage_examples(path)]
        ComplementBayes.train(examples).save(out)
    typer.echo(f"{len(examples)} messages over {len({e.department for e in examples})} departments -> {out}")


class _input_errors:
    """Bad input files end the command with their message and exit code 2, not a traceback."""

    def __init__(self, *extra: type[Exception]) -> None:
        from patientline.knowledge.search.evaluate import EvalInputError

        self.kinds: tuple[type[Exception], ...] = (EvalInputError, *extra)

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _trace: Any) -> None:
        if error is not None and isinstance(error, self.kinds):
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(code=2) from None


def _show(figures: dict[str, Any], output: OutputFormat) -> None:
    if output is OutputFormat.json:
        typer.echo(json.dumps(figures, ensure_ascii=False))
        return
    width = max(len(LABELS[key]) for key in figures)
    for key, value in figures.items():
        shown = "-" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))
        typer.echo(f"{LABELS[key]:<{width}}  {shown}")
