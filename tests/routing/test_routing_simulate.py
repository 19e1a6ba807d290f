"""The simulator drives the real router core and agrees with Erlang C (nobody hangs up) and Erlang A.

Loads are chosen where tens of thousands of simulated calls pin the service level down to a few
tenths of a point (its spread over seeds, measured: 0.2–0.5 points), well inside the tolerances.
"""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from patientline.cli import app
from patientline.routing.erlang import erlang_a, erlang_c
from patientline.routing.simulate import Scenario, simulate


@pytest.mark.parametrize(
    ("agents", "calls_per_hour", "aht_s", "calls"),
    [(2, 60, 60, 40_000), (3, 100, 60, 40_000), (3, 120, 60, 60_000)],  # occupancy 0.50, 0.56, 0.67
)
def test_without_patience_the_simulation_agrees_with_erlang_c(
    agents: int, calls_per_hour: float, aht_s: float, calls: int
) -> None:
    outcome = simulate(Scenario(agents, calls_per_hour, aht_s, hours=calls / calls_per_hour, seed=7))
    expected = erlang_c(agents, calls_per_hour, aht_s, 20.0)
    assert abs(outcome.service_level - expected.service_level) < 0.02
    assert abs(outcome.occupancy - expected.occupancy) < 0.01
    assert outcome.asa_s == pytest.approx(expected.asa_s, rel=0.1)
    assert outcome.abandoned == 0 and outcome.service_level_offered == outcome.service_level


@pytest.mark.parametrize(
    ("agents", "calls_per_hour", "aht_s", "patience_s"),
    [(2, 80, 60, 60), (3, 200, 60, 30), (14, 200, 180, 120)],  # abandon rates about 16 %, 30 % and 2 %
)
def test_with_patience_the_simulation_agrees_with_erlang_a(
    agents: int, calls_per_hour: float, aht_s: float, patience_s: float
) -> None:
    outcome = simulate(Scenario(agents, calls_per_hour, aht_s, hours=25_000 / calls_per_hour, seed=7,
                                patience_s=patience_s))  # fmt: skip
    expected = erlang_a(agents, calls_per_hour, aht_s, patience_s, 20.0)
    assert abs(outcome.service_level - expected.service_level) < 0.03
    assert abs(outcome.service_level_offered - expected.service_level_offered) < 0.03
    assert abs(outcome.abandon_rate - expected.abandon_rate) < 0.02
    assert abs(outcome.occupancy - expected.occupancy) < 0.02
    assert outcome.abandoned > 0 and outcome.offered == outcome.answered + outcome.abandoned


def test_the_published_example_fourteen_agents() -> None:
    """200 calls an hour, AHT 180 s, 14 agents: Erlang C says 88.8 % within 20 s, ASA 7.8 s."""
    outcome = simulate(Scenario(14, 200, 180, hours=200, seed=7))
    assert outcome.offered == pytest.approx(200 * 200, rel=0.03)
    assert abs(outcome.service_level - 0.888) < 0.03
    assert outcome.asa_s == pytest.approx(7.8, abs=1.5)
    assert outcome.occupancy == pytest.approx(0.714, abs=0.015)


def test_the_same_seed_gives_the_same_figures_and_another_seed_others() -> None:
    scenario = Scenario(3, 120, 60, hours=20, seed=11, patience_s=60)
    assert simulate(scenario) == simulate(scenario)
    assert simulate(Scenario(3, 120, 60, hours=20, seed=12, patience_s=60)) != simulate(scenario)


def test_the_warm_up_is_not_counted() -> None:
    cold = simulate(Scenario(3, 120, 60, hours=5, seed=3, warmup_hours=0))
    warm = simulate(Scenario(3, 120, 60, hours=5, seed=3, warmup_hours=2))
    assert cold.offered == pytest.approx(600, rel=0.15) and warm.offered == pytest.approx(600, rel=0.15)
    assert cold.offered != warm.offered  # another stretch of the same arrival stream


def test_ringing_before_the_answer_adds_to_the_wait() -> None:
    quick = simulate(Scenario(6, 60, 60, hours=30, seed=5))
    ringing = simulate(Scenario(6, 60, 60, hours=30, seed=5, answer_after_s=8))
    assert quick.asa_s < 0.5 and ringing.asa_s == pytest.approx(8, abs=0.5)
    assert ringing.service_level > 0.95


def test_too_few_agents_never_catch_up() -> None:
    outcome = simulate(Scenario(2, 150, 60, hours=10, seed=1))  # 2.5 erlangs on 2 agents
    assert outcome.service_level < 0.2 and outcome.occupancy > 0.98


@pytest.mark.parametrize(
    "bad",
    [
        dict(agents=0),
        dict(calls_per_hour=0),
        dict(aht_s=-1),
        dict(hours=0),
        dict(patience_s=0),
        dict(sl_seconds=-1),
        dict(answer_after_s=-2),
    ],
)
def test_bad_scenarios_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Scenario(**{"agents": 2, "calls_per_hour": 60, "aht_s": 60, "hours": 1, **bad})  # type: ignore[arg-type]


def test_the_command_prints_one_json_object_with_erlang_alongside() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["routing", "simulate", "--agents", "14", "--calls-per-hour", "200", "--aht", "180",
                                 "--hours", "30", "--seed", "2", "--format", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    for key in ("service_level", "asa_s", "abandon_rate", "occupancy", "offered", "answered", "service_level_offered"):
        assert isinstance(figures[key], int | float) and math.isfinite(figures[key])
    assert figures["abandon_rate"] == 0 and figures["sl_seconds"] == 20
    assert figures["erlang_c"]["service_level"] == pytest.approx(0.888, abs=0.001)
    again = runner.invoke(app, ["routing", "simulate", "--agents", "14", "--calls-per-hour", "200", "--aht", "180",
                                "--hours", "30", "--seed", "2"])  # fmt: skip
    assert json.loads(again.output) == figures


def test_the_command_with_patience_and_as_text() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["routing", "simulate", "--agents", "3", "--calls-per-hour", "150", "--aht", "60",
                                 "--patience", "45", "--sl-seconds", "10", "--hours", "20",
                                 "--format", "text"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Erlang A" in result.output and "abandon_rate" in result.output
    refused = runner.invoke(app, ["routing", "simulate", "--agents", "0", "--calls-per-hour", "150", "--aht", "60",
                                  "--hours", "1"])  # fmt: skip
    assert refused.exit_code != 0
