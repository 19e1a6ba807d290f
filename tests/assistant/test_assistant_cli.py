"""`patientline assistant eval-triage`, `eval-emergency`, `train-triage` and `train-emergency` on small
files, and their refusals of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patientline.cli import app

runner = CliRunner()
DATA = Path(__file__).parent / "data"


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n", encoding="utf-8")
    return path


def invoke(*args: str) -> dict[str, object]:
    result = runner.invoke(app, ["assistant", *args])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_eval_triage_counts_also_and_reports_every_figure(tmp_path: Path) -> None:
    file = write_jsonl(
        tmp_path / "triage.jsonl",
        [
            {"text": "牙疼好几天了，腮帮子都肿了", "department": "口腔科"},
            {"text": "孩子三岁，发烧咳嗽两天了", "department": "儿科", "age": 3, "sex": None},
            {"text": "膝盖疼，上下楼困难", "department": "康复科", "also": ["骨科"]},
        ],
    )
    figures = invoke("eval-triage", "--file", str(file), "--format", "json")
    assert figures == {"accuracy_at_1": 1.0, "accuracy_at_3": 1.0, "macro_f1": figures["macro_f1"], "n": 3}
    assert 0 < float(str(figures["macro_f1"])) < 1  # 康复科 is right only through `also`


def test_eval_emergency_reports_recall_and_false_alarms(tmp_path: Path) -> None:
    file = write_jsonl(
        tmp_path / "emergency.jsonl",
        [
            {"text": "我爸突然胸口剧痛，满头冷汗", "emergency": True},
            {"text": "孩子吃东西呛着了，脸都紫了", "emergency": True},
            {"text": "胸痛中心在几楼？", "emergency": False},
            {"text": "去年心梗放了支架，想约复查", "emergency": False},
        ],
    )
    assert invoke("eval-emergency", "--file", str(file)) == {"recall": 1.0, "false_alarm_rate": 0.0, "n": 4}
    table = runner.invoke(app, ["assistant", "eval-emergency", "--file", str(file), "--format", "text"])
    assert table.exit_code == 0 and "recall (emergencies caught)  1.000" in table.stdout


def test_a_model_trained_from_files_is_used_by_eval(tmp_path: Path) -> None:
    training = write_jsonl(
        tmp_path / "train.jsonl",
        [{"text": f"阿巴阿巴{i}号", "department": "中医科"} for i in range(3)]
        + [{"text": f"呜噜呜噜{i}号", "department": "皮肤科"} for i in range(3)],
    )
    model = tmp_path / "model.json.gz"
    result = runner.invoke(app, ["assistant", "train-triage", "--file", str(training), "--out", str(model)])
    assert result.exit_code == 0 and "6 messages over 2 departments" in result.stdout
    test = write_jsonl(tmp_path / "test.jsonl", [{"text": "呜噜呜噜", "department": "皮肤科"}])
    assert invoke("eval-triage", "--file", str(test), "--model", str(model))["accuracy_at_1"] == 1.0


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"text": "牙疼", "department": "牙科"}, "unknown department '牙科'"),
        ({"text": "牙疼", "department": "口腔科", "age": "三岁"}, "'age' must be a whole number"),
        ({"text": "牙疼", "department": "口腔科", "sex": "M"}, "'sex' must be 男, 女 or null"),
        ({"text": "", "department": "口腔科"}, "needs a non-empty 'text'"),
        ({"text": "牙疼", "department": "口腔科", "also": "骨科"}, "'also' must be a list"),
    ],
)
def test_eval_triage_refuses_bad_lines_with_where(tmp_path: Path, row: dict[str, object], message: str) -> None:
    file = tmp_path / "bad.jsonl"
    good = json.dumps({"text": "牙疼", "department": "口腔科"}, ensure_ascii=False)
    file.write_text(f"{good}\n\n{json.dumps(row, ensure_ascii=False)}\n", encoding="utf-8")  # a blank line 2
    result = runner.invoke(app, ["assistant", "eval-triage", "--file", str(file)])
    assert result.exit_code == 2
    assert f"{file}:3: " in result.stderr and message in result.stderr


def test_unreadable_inputs_are_refused(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["assistant", "eval-emergency", "--file", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 2 and "no such file" in missing.stderr
    (tmp_path / "broken.jsonl").write_text('{"text": "胸痛", "emergency": "yes"}\n', encoding="utf-8")
    broken = runner.invoke(app, ["assistant", "eval-emergency", "--file", str(tmp_path / "broken.jsonl")])
    assert broken.exit_code == 2 and "'emergency' must be true or false" in broken.stderr
    training = write_jsonl(tmp_path / "train.jsonl", [{"text": "牙疼", "department": "口腔科"}])
    nowhere = runner.invoke(
        app, ["assistant", "train-triage", "--file", str(training), "--out", str(tmp_path / "no" / "m.gz")]
    )
    assert nowhere.exit_code == 2 and "cannot write the model" in nowhere.stderr
    (tmp_path / "garbage.gz").write_bytes(b"not a model")
    test = write_jsonl(tmp_path / "t.jsonl", [{"text": "牙疼", "department": "口腔科"}])
    bad_model = runner.invoke(
        app, ["assistant", "eval-triage", "--file", str(test), "--model", str(tmp_path / "garbage.gz")]
    )
    assert bad_model.exit_code == 2 and "not a model" in bad_model.stderr


@pytest.mark.parametrize("number", (*range(1, 12), *range(13, 56)))
def test_the_guard_holds_on_the_phrase_sets_it_was_built_with(number: int) -> None:
    """Fifty-four sets of 220–240 phrases, each written independently; each was measured once unseen before the
    guard learnt from its misses (docs/ASSISTANT.md), so these hold what was learnt. Set 12 is in no training."""
    figures = invoke("eval-emergency", "--file", str(DATA / f"emergency_{number}.jsonl"))
    assert figures["recall"] == 1.0
    assert float(str(figures["false_alarm_rate"])) <= 0.10


@pytest.mark.parametrize("name", ["triage_callers", "triage_callers_2"])
def test_triage_holds_its_targets_on_callers_words(name: str) -> None:
    """Two sets written as callers speak by authors who saw neither the training examples nor the lexicon
    (docs/ASSISTANT.md: the first was never tuned on, the second chose the emergency and child rules)."""
    figures = invoke("eval-triage", "--file", str(DATA / f"{name}.jsonl"))
    assert float(str(figures["accuracy_at_1"])) >= 0.70
    assert float(str(figures["accuracy_at_3"])) >= 0.88


def test_the_learnt_opinion_is_trained_from_files_and_can_be_left_out(tmp_path: Path) -> None:
    urgent = ["外婆刚才突然说不出话，嘴也歪了", "孩子喝了洗衣液，现在一直吐", "我老公从梯子上摔下来叫不醒"]
    calm = ["请问神经内科周三有专家号吗", "洗衣液弄到衣服上怎么洗掉", "梯子在哪里可以借到"]
    training = write_jsonl(tmp_path / "train.jsonl", [{"text": t, "emergency": True} for t in urgent]
                           + [{"text": t, "emergency": False} for t in calm])  # fmt: skip
    model = tmp_path / "guard.json.gz"
    trained = runner.invoke(app, ["assistant", "train-emergency", "--file", str(training), "--out", str(model)])
    assert trained.exit_code == 0 and "6 messages, 3 emergencies" in trained.stdout
    # words no sign knows; the learnt opinion has seen its like
    test = write_jsonl(tmp_path / "t.jsonl", [{"text": "外婆刚才突然嘴也歪了说不清", "emergency": True}])
    assert invoke("eval-emergency", "--file", str(test), "--model", str(model))["recall"] == 1.0
    assert invoke("eval-emergency", "--file", str(test), "--signs-only")["n"] == 1
    (tmp_path / "garbage.gz").write_bytes(b"not a model")
    refused = runner.invoke(
        app, ["assistant", "eval-emergency", "--file", str(test), "--model", str(tmp_path / "garbage.gz")]
    )
    assert refused.exit_code == 2 and "not a model" in refused.stderr
    triage_model = tmp_path / "triage.json.gz"
    triage_training = write_jsonl(tmp_path / "tt.jsonl", [{"text": "牙疼", "department": "口腔科"}])
    runner.invoke(app, ["assistant", "train-triage", "--file", str(triage_training), "--out", str(triage_model)])
    wrong_kind = runner.invoke(app, ["assistant", "eval-emergency", "--file", str(test), "--model", str(triage_model)])
    assert wrong_kind.exit_code == 2 and "unknown labels" in wrong_kind.stderr
