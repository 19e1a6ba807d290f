"""`patientline kb eval` on small files."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from patientline.cli import app

runner = CliRunner()


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n", encoding="utf-8")
    return path


def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    corpus = write_jsonl(
        tmp_path / "corpus.jsonl",
        [
            {"id": "F1", "question": "怎么预约挂号？"},
            {"id": "F2", "question": "住院押金要交多少？"},
            {"id": 3, "text": "医院有停车场吗？"},
        ],
    )
    variants = write_jsonl(tmp_path / "variants.jsonl", [{"query": "车停在哪里", "match_id": 3}])
    queries = write_jsonl(
        tmp_path / "queries.jsonl",
        [
            {"query": "掛號怎麼預約", "match_id": "F1"},
            {"query": "住院押今交多少钱", "match_id": "F2"},
            {"query": "车停哪里", "match_id": "3"},
            {"query": "你们能做试管婴儿吗", "match_id": None},
        ],
    )
    return corpus, variants, queries


def test_eval_prints_one_json_object(tmp_path: Path) -> None:
    corpus, variants, queries = files(tmp_path)
    result = runner.invoke(
        app, ["kb", "eval", "--corpus", str(corpus), "--variants", str(variants), "--queries", str(queries)]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["n"] == 4
    assert figures["p_at_1"] == 1.0
    assert figures["mrr_at_10"] == 1.0
    assert figures["no_match_accuracy"] == 1.0
    assert figures["answer_accuracy"] == 1.0
    assert figures["latency_ms_p95"] >= figures["latency_ms_p50"] >= 0


def test_eval_text_format(tmp_path: Path) -> None:
    corpus, _, queries = files(tmp_path)
    result = runner.invoke(app, ["kb", "eval", "--corpus", str(corpus), "--queries", str(queries), "--format", "text"])
    assert result.exit_code == 0, result.output
    assert "P@1" in result.stdout
    assert "no-good-match rate" in result.stdout


def test_missing_file_exits_2_with_a_message(tmp_path: Path) -> None:
    _, _, queries = files(tmp_path)
    result = runner.invoke(app, ["kb", "eval", "--corpus", str(tmp_path / "nope.jsonl"), "--queries", str(queries)])
    assert result.exit_code == 2
    assert "no such file" in result.stderr
    assert "Traceback" not in result.output


def test_malformed_lines_exit_2_and_say_where(tmp_path: Path) -> None:
    corpus, _, _ = files(tmp_path)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"query": "挂号", "match_id": "F1"}\n{not json\n', encoding="utf-8")
    result = runner.invoke(app, ["kb", "eval", "--corpus", str(corpus), "--queries", str(broken)])
    assert result.exit_code == 2
    assert "broken.jsonl:2" in result.stderr

    no_query = write_jsonl(tmp_path / "noquery.jsonl", [{"text": "挂号", "match_id": "F1"}])
    result = runner.invoke(app, ["kb", "eval", "--corpus", str(corpus), "--queries", str(no_query)])
    assert result.exit_code == 2
    assert "'query'" in result.stderr

    no_id = write_jsonl(tmp_path / "noid.jsonl", [{"question": "挂号"}])
    result = runner.invoke(app, ["kb", "eval", "--corpus", str(no_id), "--queries", str(no_query)])
    assert result.exit_code == 2
    assert "'id'" in result.stderr
