"""Offline evaluation of triage and the emergency guard on JSON-lines files (`patientline assistant
eval-triage` / `eval-emergency`, the tests and the quality figures in docs/ASSISTANT.md)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from patientline.assistant.emergency import Guard
from patientline.assistant.triage import DEPARTMENTS, Example, Triage
from patientline.knowledge.search.evaluate import EvalInputError, numbered_jsonl

SEXES = ("男", "女")


def read_triage_examples(path: Path) -> list[tuple[Example, frozenset[str]]]:
    """Lines of `text`, `department`, optional `age`, `sex` and `also`: each as an example and the set of
    departments counted right for it."""
    labelled = []
    for number, row in numbered_jsonl(path):
        where = f"{path}:{number}"
        example = Example(
            text=_text(row, where),
            department=_department(row.get("department"), where),
            age=_age(row.get("age"), where),
            sex=_sex(row.get("sex"), where),
        )
        also = row.get("also") or []
        if not isinstance(also, list):
            raise EvalInputError(f"{where}: 'also' must be a list of departments")
        labelled.append((example, frozenset([example.department, *(_department(d, where) for d in also)])))
    return labelled


def evaluate_triage(triage: Triage, labelled: list[tuple[Example, frozenset[str]]]) -> dict[str, Any]:
    """accuracy@1 and @3 (a department in `also` counts), macro-F1 of the first choice on `department`."""
    at_1 = at_3 = 0
    predicted: list[tuple[str, str]] = []
    for example, right in labelled:
        ranked = [s.department for s in triage.rank(example.text, age=example.age, sex=example.sex)[:3]]
        at_1 += bool(ranked) and ranked[0] in right
        at_3 += bool(right.intersection(ranked))
        predicted.append((example.department, ranked[0] if ranked else ""))
    n = len(labelled)
    return {"accuracy_at_1": at_1 / n, "accuracy_at_3": at_3 / n, "macro_f1": macro_f1(predicted), "n": n}


def macro_f1(pairs: list[tuple[str, str]]) -> float:
    """Mean F1 over the departments that occur as gold or as prediction."""
    true_positive: Counter[str] = Counter()
    gold: Counter[str] = Counter()
    guessed: Counter[str] = Counter()
    for expected, got in pairs:
        gold[expected] += 1
        guessed[got] += 1
        true_positive[expected] += expected == got
    labels = (set(gold) | set(guessed)) - {""}
    scores = []
    for label in labels:
        precision = true_positive[label] / guessed[label] if guessed[label] else 0.0
        recall = true_positive[label] / gold[label] if gold[label] else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(scores) / len(scores) if scores else 0.0


def read_emergency_examples(path: Path) -> list[tuple[str, bool]]:
    """Lines of `text` and `emergency` (true or false)."""
    examples = []
    for number, row in numbered_jsonl(path):
        where = f"{path}:{number}"
        expected = row.get("emergency")
        if not isinstance(expected, bool):
            raise EvalInputError(f"{where}: 'emergency' must be true or false")
        examples.append((_text(row, where), expected))
    return examples


def evaluate_emergency(path: Path, guard: Guard) -> dict[str, Any]:
    """recall on the emergencies, false-alarm rate on the rest."""
    caught = alarms = emergencies = others = 0
    for text, expected in read_emergency_examples(path):
        raised = guard.alarm(text) is not None
        emergencies += expected
        others += not expected
        caught += expected and raised
        alarms += raised and not expected
    return {
        "recall": caught / emergencies if emergencies else None,
        "false_alarm_rate": alarms / others if others else None,
        "n": emergencies + others,
    }


def _text(row: dict[str, Any], where: str) -> str:
    value = row.get("text")
    if not isinstance(value, str) or not value.strip():
        raise EvalInputError(f"{where}: needs a non-empty 'text'")
    return value


def _department(value: Any, where: str) -> str:
    if value not in DEPARTMENTS:
        raise EvalInputError(f"{where}: unknown department {value!r}")
    return str(value)


def _age(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 130:
        raise EvalInputError(f"{where}: 'age' must be a whole number of years from 0 to 130, or null")
    return value


def _sex(value: Any, where: str) -> str | None:
    if value is None or value in SEXES:
        return str(value) if value else None
    raise EvalInputError(f"{where}: 'sex' must be 男, 女 or null")
