"""Erlang C and Erlang A: what a number of agents achieves for a call load, and how many are needed.

Notation: calls arrive as a Poisson stream of rate λ (calls_per_hour / 3600 per second), handling
times are exponential with mean AHT (μ = 1/AHT), there are n agents, the offered traffic is
A = λ·AHT erlangs and T is the service-level threshold in seconds.

**Erlang C** (M/M/n, nobody abandons). The Erlang B blocking probability comes from the stable
recursion B(0) = 1, B(k) = A·B(k-1) / (k + A·B(k-1)), which never forms A^n or n! and so works for
thousands of agents. Then, when n > A:
    P(wait)  = C = n·B / (n - A·(1 - B))
    SL       = P(W ≤ T) = 1 - C·exp(-(n - A)·T / AHT)
    ASA      = C·AHT / (n - A)
    occupancy = A / n
When n ≤ A the queue grows without end: everybody waits, SL is 0 and ASA infinite.

**Erlang A** (M/M/n+M, Palm; Garnett, Mandelbaum and Reiman). Each waiting caller abandons after an
exponential patience of mean P (θ = 1/P). The number of calls in the system is a birth-death chain
with birth rate λ and death rate min(k, n)·μ + max(k - n, 0)·θ. Its stationary distribution, taken
relative to the state k = n:
  - the states below n weigh 1/B(n, A) - 1 together (the Erlang B identity above);
  - the state n + j (j callers waiting) weighs r_j = ∏_{i=1..j} λ / (nμ + iθ), summed until the terms
    are negligible (they fall geometrically once nμ + jθ > λ, so the chain is always stable).
An arriving call sees this distribution (Poisson arrivals see time averages). Finding j callers
waiting ahead of it, it reaches an agent after V = Σ_{i=0..j} Exp(nμ + iθ) (each phase ends when an
agent frees or one of those ahead abandons), unless its own patience runs out first. With α = nμ/θ,
Y = exp(-θV) has the Beta(α, j + 1) distribution (a product of independent Beta(α + i, 1) variables),
so with y = exp(-θT):
    P(answered | j)           = E[Y] = α / (α + j + 1)
    P(answered within T | j)  = E[Y; Y ≥ y] = α / (α + j + 1) · P(Beta(α + 1, j + 1) ≥ y)
                              = α / (α + j + 1) · P(NB > j)
    E[wait; answered | j]     = α / (α + j + 1) · Σ_{i=0..j} 1 / (nμ + θ + iθ)
where NB counts the failures before the (α + 1)-th success with success probability y (the
Beta / negative-binomial identity for an integer second parameter); its terms are built one from the
previous in log space, so nothing overflows when α is large. Weighting by the arrival distribution:
    abandon_rate          = Σ_j π_{n+j} · (j + 1) / (α + j + 1)
    service_level         = P(answered within T) / P(answered)   (over the calls answered)
    service_level_offered = P(answered within T)                 (over all calls offered)
    ASA                   = E[wait; answered] / P(answered)      (over the calls answered)
    occupancy             = λ·(1 - abandon_rate)·AHT / n
As the patience grows the figures tend to Erlang C's (NB tends to a Poisson count of completions).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

_NEGLIGIBLE = 1e-16
_MAX_WAITING_STATES = 2_000_000


@dataclass(frozen=True)
class ErlangResult:
    agents: int
    traffic_erlangs: float
    probability_wait: float
    service_level: float  # fraction of the calls answered that were answered within T
    asa_s: float  # average speed of answer of the calls answered; math.inf when the queue never clears
    occupancy: float  # fraction of the agents' time spent handling calls
    abandon_rate: float = 0.0  # Erlang A: fraction of the calls offered that abandon
    service_level_offered: float = 0.0  # answered within T over all calls offered (= service_level in Erlang C)

    @property
    def stable(self) -> bool:
        return math.isfinite(self.asa_s)


class Constraint(StrEnum):
    SERVICE_LEVEL = "service_level"
    OCCUPANCY = "occupancy"
    NONE = "none"  # no calls: no agent needed


@dataclass(frozen=True)
class Staffing:
    raw_agents: int  # on the phones at once to meet the target
    scheduled_agents: int  # on the roster, counting shrinkage (breaks, training, absence)
    achieved: ErlangResult  # what raw_agents achieve
    limited_by: Constraint  # which requirement set raw_agents


def erlang_b(agents: int, traffic_erlangs: float) -> float:
    """Blocking probability of n servers offered A erlangs, by the stable recursion."""
    blocking = 1.0
    for k in range(1, agents + 1):
        blocking = traffic_erlangs * blocking / (k + traffic_erlangs * blocking)
    return blocking


def erlang_c(agents: int, calls_per_hour: float, aht_s: float, sl_seconds: float = 20.0) -> ErlangResult:
    _check(agents, calls_per_hour, aht_s, sl_seconds)
    traffic = calls_per_hour * aht_s / 3600.0
    if traffic == 0.0:
        return _idle(agents)
    if agents <= traffic:
        return ErlangResult(agents, traffic, 1.0, 0.0, math.inf, 1.0, 0.0, 0.0)
    blocking = erlang_b(agents, traffic)
    p_wait = agents * blocking / (agents - traffic * (1.0 - blocking))
    service_level = 1.0 - p_wait * math.exp(-(agents - traffic) * sl_seconds / aht_s)
    asa = p_wait * aht_s / (agents - traffic)
    return ErlangResult(agents, traffic, p_wait, service_level, asa, traffic / agents, 0.0, service_level)


def erlang_a(
    agents: int, calls_per_hour: float, aht_s: float, patience_s: float, sl_seconds: float = 20.0
) -> ErlangResult:
    _check(agents, calls_per_hour, aht_s, sl_seconds)
    if not patience_s > 0:
        raise ValueError("patience_s must be positive")
    if math.isinf(patience_s):
        return erlang_c(agents, calls_per_hour, aht_s, sl_seconds)
    traffic = calls_per_hour * aht_s / 3600.0
    if traffic == 0.0:
        return _idle(agents)
    arrival, service, abandon = calls_per_hour / 3600.0, 1.0 / aht_s, 1.0 / patience_s
    waiting_weights = _waiting_state_weights(agents, arrival, service, abandon)
    below_n = 1.0 / erlang_b(agents, traffic) - 1.0
    p_at_n = 1.0 / (below_n + sum(waiting_weights))

    alpha = agents * service / abandon
    log_y = -abandon * sl_seconds
    log_failure = math.log(-math.expm1(log_y)) if sl_seconds > 0 else -math.inf
    nb_log_term = (alpha + 1.0) * log_y  # log P(NB = 0)
    nb_cdf = 0.0
    harmonic = 0.0
    p_abandon = p_within = wait_answered = 0.0
    for j, weight in enumerate(waiting_weights):
        p_state = p_at_n * weight
        p_answered_here = alpha / (alpha + j + 1.0)
        nb_cdf += math.exp(nb_log_term)
        harmonic += 1.0 / (agents * service + abandon * (j + 1.0))
        p_abandon += p_state * (1.0 - p_answered_here)
        p_within += p_state * p_answered_here * max(0.0, 1.0 - nb_cdf)
        wait_answered += p_state * p_answered_here * harmonic
        if log_failure > -math.inf:
            nb_log_term += math.log((alpha + 1.0 + j) / (j + 1.0)) + log_failure
        else:
            nb_log_term = -math.inf
    p_wait = min(1.0, p_at_n * sum(waiting_weights))
    p_within = _probability(p_within + 1.0 - p_wait)
    p_abandon = _probability(p_abandon)
    p_answered = 1.0 - p_abandon
    occupancy = arrival * p_answered * aht_s / agents if agents else 0.0
    return ErlangResult(
        agents=agents,
        traffic_erlangs=traffic,
        probability_wait=p_wait,
        service_level=_probability(p_within / p_answered) if p_answered > 0 else 0.0,
        asa_s=wait_answered / p_answered if p_answered > 0 else math.inf,
        occupancy=min(occupancy, 1.0),
        abandon_rate=p_abandon,
        service_level_offered=p_within,
    )


def agents_needed(
    calls_per_hour: float,
    aht_s: float,
    sl_target: float,
    sl_seconds: float,
    max_occupancy: float | None = None,
    shrinkage: float = 0.0,
    patience_s: float | None = None,
) -> Staffing:
    """The fewest agents meeting the service level and the occupancy ceiling.

    With patience (Erlang A) the target applies to the calls offered: over the calls answered it can be
    met by too few agents when callers give up before T, since the long waits then end in abandons.
    Without patience (Erlang C) both variants are the same.
    """
    if not 0.0 < sl_target < 1.0:
        raise ValueError("sl_target must be between 0 and 1 (exclusive)")
    if max_occupancy is not None and not 0.0 < max_occupancy <= 1.0:
        raise ValueError("max_occupancy must be in (0, 1]")
    if not 0.0 <= shrinkage < 1.0:
        raise ValueError("shrinkage must be in [0, 1)")
    model = _model(calls_per_hour, aht_s, sl_seconds, patience_s)
    if calls_per_hour == 0:
        return Staffing(0, 0, model(0), Constraint.NONE)
    traffic = calls_per_hour * aht_s / 3600.0
    # fewer agents surely fail: Erlang C needs more than the traffic, and with abandons no more than
    # n/AHT calls a second can be answered, so n < target × traffic answers too few in time
    surely_short = math.floor(traffic) if patience_s is None else math.ceil(sl_target * traffic) - 1
    for_service_level = _fewest(lambda n: model(n).service_level_offered >= sl_target, max(surely_short, 0))
    raw = for_service_level
    if max_occupancy is not None:  # occupancy falls as agents are added
        raw = _fewest(lambda n: model(n).occupancy <= max_occupancy, for_service_level - 1)
    limited_by = Constraint.SERVICE_LEVEL if raw == for_service_level else Constraint.OCCUPANCY
    scheduled = math.ceil(round(raw / (1.0 - shrinkage), 9))
    return Staffing(raw, scheduled, model(raw), limited_by)


def _model(
    calls_per_hour: float, aht_s: float, sl_seconds: float, patience_s: float | None
) -> Callable[[int], ErlangResult]:
    if patience_s is None:
        return lambda n: erlang_c(n, calls_per_hour, aht_s, sl_seconds)
    return lambda n: erlang_a(n, calls_per_hour, aht_s, patience_s, sl_seconds)


def _fewest(meets: Callable[[int], bool], above: int) -> int:
    """The smallest n > `above` for which a requirement that only gets easier with more agents holds."""
    step = 1
    high = above + step
    while not meets(high):
        above = high
        step *= 2
        high = above + step
    while high - above > 1:
        middle = (above + high) // 2
        if meets(middle):
            high = middle
        else:
            above = middle
    return high


def _waiting_state_weights(agents: int, arrival: float, service: float, abandon: float) -> list[float]:
    """r_j for j = 0, 1, … callers waiting, relative to the state with all agents busy and none waiting."""
    weights = [1.0]
    total = 1.0
    weight = 1.0
    j = 0
    while True:
        j += 1
        departure = agents * service + j * abandon
        weight *= arrival / departure
        weights.append(weight)
        total += weight
        if departure > arrival and weight < _NEGLIGIBLE * total:
            return weights
        if j > _MAX_WAITING_STATES:
            raise ValueError("load too far above what the agents can handle before callers abandon")


def _probability(value: float) -> float:
    """Rounding can carry a sum of probabilities a hair past its bounds."""
    return min(1.0, max(0.0, value))


def _idle(agents: int) -> ErlangResult:
    return ErlangResult(agents, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def _check(agents: int, calls_per_hour: float, aht_s: float, sl_seconds: float) -> None:
    if agents < 0:
        raise ValueError("agents must not be negative")
    if not calls_per_hour >= 0 or math.isinf(calls_per_hour):
        raise ValueError("calls_per_hour must be a finite number >= 0")
    if not aht_s > 0 or math.isinf(aht_s):
        raise ValueError("aht_s must be a finite number > 0")
    if not sl_seconds >= 0 or math.isinf(sl_seconds):
        raise ValueError("sl_seconds must be a finite number >= 0")
