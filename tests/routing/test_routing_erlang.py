"""Erlang C and Erlang A: the published worked example, Erlang B against its textbook value and the
closed formula, hundreds of agents, the limits (no calls, too few agents, endless patience), and
Erlang A against an independent simulation of the M/M/n+M queue and Little's law for abandons."""

from __future__ import annotations

import heapq
import math
import random

import pytest

from patientline.routing.erlang import Constraint, agents_needed, erlang_a, erlang_b, erlang_c


def test_the_published_worked_example() -> None:
    """200 calls an hour, 180 s handling, 80 % in 20 s: 14 agents, 20 on the roster at 30 % shrinkage."""
    result = erlang_c(14, 200, 180, 20)
    assert result.traffic_erlangs == pytest.approx(10.0)
    assert result.probability_wait == pytest.approx(0.1741, abs=5e-4)
    assert result.service_level == pytest.approx(0.888, abs=1e-3)
    assert result.asa_s == pytest.approx(7.8, abs=0.05)
    assert result.occupancy == pytest.approx(10 / 14)
    assert erlang_c(13, 200, 180, 20).service_level < 0.8

    staffing = agents_needed(200, 180, 0.8, 20, shrinkage=0.3)
    assert (staffing.raw_agents, staffing.scheduled_agents) == (14, 20)  # 14 / 0.7 is 20, not 21
    assert staffing.limited_by is Constraint.SERVICE_LEVEL
    assert staffing.achieved == result


def _erlang_b_closed(n: int, a: float) -> float:
    logs = [k * math.log(a) - math.lgamma(k + 1) for k in range(n + 1)]
    top = max(logs)
    terms = [math.exp(x - top) for x in logs]
    return terms[-1] / sum(terms)


def test_erlang_b_matches_the_textbook_and_the_closed_formula() -> None:
    assert erlang_b(30, 25.0) == pytest.approx(0.0529, abs=5e-4)  # "30 lines, 25 erlangs: about 5 %"
    for n, a in ((1, 0.5), (5, 3.0), (12, 10.0), (40, 33.3)):
        assert erlang_b(n, a) == pytest.approx(_erlang_b_closed(n, a), rel=1e-9)


def test_hundreds_of_agents_stay_finite_and_match_the_log_space_formula() -> None:
    n, calls, aht = 800, 15_000, 180.0  # 750 erlangs
    a = calls * aht / 3600
    blocking = _erlang_b_closed(n, a)
    expected_wait = n * blocking / (n - a * (1 - blocking))
    result = erlang_c(n, calls, aht, 20)
    assert result.probability_wait == pytest.approx(expected_wait, rel=1e-6)
    assert 0.0 < result.service_level < 1.0
    staffing = agents_needed(calls, aht, 0.8, 20)
    assert erlang_c(staffing.raw_agents, calls, aht, 20).service_level >= 0.8
    assert erlang_c(staffing.raw_agents - 1, calls, aht, 20).service_level < 0.8


def test_limits() -> None:
    idle = erlang_c(3, 0, 180, 20)
    assert (idle.probability_wait, idle.service_level, idle.asa_s, idle.occupancy) == (0.0, 1.0, 0.0, 0.0)
    overloaded = erlang_c(10, 200, 180, 20)  # 10 agents for 10 erlangs: the queue never clears
    assert (overloaded.probability_wait, overloaded.service_level, overloaded.stable) == (1.0, 0.0, False)
    assert math.isinf(overloaded.asa_s)
    nobody = erlang_a(0, 200, 180, 60, 20)
    assert (nobody.abandon_rate, nobody.service_level_offered, nobody.occupancy) == (1.0, 0.0, 0.0)
    assert agents_needed(0, 180, 0.8, 20).raw_agents == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda: erlang_c(-1, 200, 180, 20),
        lambda: erlang_c(5, -1, 180, 20),
        lambda: erlang_c(5, 200, 0, 20),
        lambda: erlang_c(5, 200, 180, -1),
        lambda: erlang_c(5, math.nan, 180, 20),
        lambda: erlang_a(5, 200, 180, 0, 20),
        lambda: agents_needed(200, 180, 1.0, 20),
        lambda: agents_needed(200, 180, 0.8, 20, max_occupancy=0),
        lambda: agents_needed(200, 180, 0.8, 20, shrinkage=1.0),
    ],
)
def test_bad_input_is_refused(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]


def test_occupancy_ceiling_can_set_the_number() -> None:
    staffing = agents_needed(200, 180, 0.8, 20, max_occupancy=0.5)
    assert staffing.raw_agents == 20
    assert staffing.limited_by is Constraint.OCCUPANCY
    assert staffing.achieved.occupancy == pytest.approx(0.5)
    assert agents_needed(200, 180, 0.8, 20, max_occupancy=0.85).raw_agents == 14


def test_erlang_a_tends_to_erlang_c_as_patience_grows() -> None:
    c = erlang_c(14, 200, 180, 20)
    a = erlang_a(14, 200, 180, 1e8, 20)
    assert a.service_level == pytest.approx(c.service_level, abs=1e-5)
    assert a.asa_s == pytest.approx(c.asa_s, rel=1e-4)
    assert a.probability_wait == pytest.approx(c.probability_wait, abs=1e-5)
    assert a.abandon_rate < 1e-6
    assert erlang_a(14, 200, 180, math.inf, 20) == c


def test_erlang_a_abandons_follow_littles_law() -> None:
    """Abandons per second = θ × mean number waiting, the latter from the chain summed independently."""
    n, calls, aht, patience = 9, 200, 180.0, 90.0
    lam, mu, theta = calls / 3600, 1 / aht, 1 / patience
    weights = [math.exp(k * math.log(lam / mu) - math.lgamma(k + 1)) for k in range(n + 1)]
    for j in range(1, 400):
        weights.append(weights[-1] * lam / (n * mu + j * theta))
    total = sum(weights)
    mean_waiting = sum((k - n) * w for k, w in enumerate(weights) if k > n) / total
    assert erlang_a(n, calls, aht, patience, 20).abandon_rate == pytest.approx(theta * mean_waiting / lam, rel=1e-9)


def _simulate_mmn_m(
    n: int, calls_per_hour: float, aht: float, patience: float, t: float, calls: int
) -> dict[str, float]:
    """FCFS queue with impatient callers: a caller reaches the first agent to free up unless their
    patience ends first; those who leave take no agent time."""
    rng = random.Random(20261122)
    free_at = [0.0] * n
    now = 0.0
    answered = within = abandoned = 0
    total_wait = 0.0
    for _ in range(calls):
        now += rng.expovariate(calls_per_hour / 3600)
        start = max(now, free_at[0])
        if start - now > rng.expovariate(1 / patience):
            abandoned += 1
            continue
        heapq.heapreplace(free_at, start + rng.expovariate(1 / aht))
        answered += 1
        total_wait += start - now
        within += start - now <= t
    return {
        "service_level": within / answered,
        "service_level_offered": within / calls,
        "asa_s": total_wait / answered,
        "abandon_rate": abandoned / calls,
    }


@pytest.mark.parametrize(
    ("n", "calls", "aht", "patience"), [(12, 200, 180, 120), (10, 200, 180, 60), (45, 900, 180, 300)]
)
def test_erlang_a_agrees_with_a_simulation(n: int, calls: float, aht: float, patience: float) -> None:
    simulated = _simulate_mmn_m(n, calls, aht, patience, 20, 150_000)
    model = erlang_a(n, calls, aht, patience, 20)
    assert model.service_level == pytest.approx(simulated["service_level"], abs=0.015)
    assert model.service_level_offered == pytest.approx(simulated["service_level_offered"], abs=0.015)
    assert model.abandon_rate == pytest.approx(simulated["abandon_rate"], abs=0.006)
    assert model.asa_s == pytest.approx(simulated["asa_s"], rel=0.06)


def test_erlang_a_staffing_counts_abandons_against_the_target() -> None:
    """Callers who give up within 10 s keep every answered call quick: the target is over calls offered."""
    staffing = agents_needed(200, 180, 0.8, 20, patience_s=10)
    assert staffing.achieved.service_level_offered >= 0.8
    assert erlang_a(staffing.raw_agents - 1, 200, 180, 10, 20).service_level_offered < 0.8
    assert erlang_a(3, 200, 180, 10, 20).service_level > 0.8  # answered-only would be met by 3 agents
    assert staffing.raw_agents <= agents_needed(200, 180, 0.8, 20).raw_agents


def test_service_level_at_zero_seconds_is_the_share_answered_at_once() -> None:
    result = erlang_a(12, 200, 180, 120, 0)
    assert result.service_level_offered == pytest.approx(1 - result.probability_wait)
