"""`patientline assistant …`: the triage model and the emergency guard from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from patientline.core.figures_cli import OutputFormat, refusing, show_figures

assistant_app = typer.Typer(help="The self-service assistant: triage and the emergency guard.", no_args_is_help=True)

TRIAGE_LABELS = {
    "accuracy_at_1": "accuracy@1 (also counted)",
    "accuracy_at_3": "accuracy@3 (also counted)",
    "macro_f1": "macro-F1 (first choice)",
    "n": "lines",
}
EMERGENCY_LABELS = {"recall": "recall (emergencies caught)", "false_alarm_rate": "false-alarm rate", "n": "lines"}


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
    from patientline.assistant.bayes import ComplementBayes, ModelError
    from patientline.assistant.evaluate import evaluate_triage, read_triage_examples
    from patientline.assistant.triage import DEPARTMENTS, Triage, default_triage, read_lexicon
    from patientline.knowledge.search.evaluate import EvalInputError

    with refusing(EvalInputError, ModelError):
        triage = (
            default_triage()
            if model is None
            else Triage(ComplementBayes.load(model, labels=DEPARTMENTS), read_lexicon())
        )
        figures = evaluate_triage(triage, read_triage_examples(file))
    show_figures(figures, TRIAGE_LABELS, output)


@assistant_app.command("eval-emergency")
def eval_emergency(
    file: Annotated[Path, typer.Option(help="JSON lines: text, emergency (true or false)")],
    model: Annotated[Path | None, typer.Option(help="a model from train-emergency instead of the shipped one")] = None,
    signs_only: Annotated[bool, typer.Option("--signs-only", help="the signs without the learnt opinion")] = False,
    output: Annotated[OutputFormat, typer.Option("--format", help="json or text")] = OutputFormat.json,
) -> None:
    """Measure the emergency guard on labelled messages."""
    from patientline.assistant.bayes import ComplementBayes, ModelError
    from patientline.assistant.emergency import LABELS, Guard, default_guard
    from patientline.assistant.evaluate import evaluate_emergency
    from patientline.knowledge.search.evaluate import EvalInputError

    with refusing(EvalInputError, ModelError):
        if signs_only:
            guard = Guard(None)
        else:
            guard = default_guard() if model is None else Guard(ComplementBayes.load(model, labels=LABELS))
        figures = evaluate_emergency(file, guard)
    show_figures(figures, EMERGENCY_LABELS, output)


@assistant_app.command("train-triage")
def train_triage(
    file: Annotated[list[Path], typer.Option(help="JSON lines: text, department (age, sex, also ignored); repeat")],
    out: Annotated[Path, typer.Option(help="where to write the model (gzip JSON)")],
) -> None:
    """Learn the triage model's n-gram counts from labelled messages."""
    from patientline.assistant.bayes import ComplementBayes, ModelError
    from patientline.assistant.evaluate import read_triage_examples
    from patientline.knowledge.search.evaluate import EvalInputError

    with refusing(EvalInputError, ModelError):
        examples = [example for path in file for example, _ in read_triage_examples(path)]
        ComplementBayes.train((e.department, e.text) for e in examples).save(out)
    typer.echo(f"{len(examples)} messages over {len({e.department for e in examples})} departments -> {out}")


@assistant_app.command("train-emergency")
def train_emergency(
    file: Annotated[list[Path], typer.Option(help="JSON lines: text, emergency (true or false); repeat")],
    out: Annotated[Path, typer.Option(help="where to write the model (gzip JSON)")],
    triage_file: Annotated[
        list[Path] | None, typer.Option(help="triage JSON lines as ordinary messages (急诊科: an emergency); repeat")
    ] = None,
) -> None:
    """Learn the emergency guard's second opinion from labelled messages."""
    from patientline.assistant.bayes import ComplementBayes, ModelError
    from patientline.assistant.emergency import CALM, EMERGENCY
    from patientline.assistant.evaluate import read_emergency_examples, read_triage_examples
    from patientline.assistant.triage import EMERGENCY as EMERGENCY_DEPARTMENT
    from patientline.knowledge.search.evaluate import EvalInputError

    with refusing(EvalInputError, ModelError):
        examples = [example for path in file for example in read_emergency_examples(path)]
        examples += [
            (example.text, example.department == EMERGENCY_DEPARTMENT)
            for path in triage_file or []
            for example, _ in read_triage_examples(path)
        ]
        ComplementBayes.train((EMERGENCY if urgent else CALM, text) for text, urgent in examples).save(out)
    urgent = sum(1 for _, is_urgent in examples if is_urgent)
    typer.echo(f"{len(examples)} messages, {urgent} emergencies -> {out}")
