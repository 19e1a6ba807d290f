"""Calibrated confidence of a hit: a logistic model over features that do not depend on the size or
wording of the knowledge base, fitted on the tuning half of the dev sets (bench/knowledge.py tune).

It estimates the probability that the hit answers the caller's question. Below THRESHOLD the
search says "no good match", so the bot asks again or hands over instead of answering the wrong
question."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Features:
    query_coverage: float  # share of the query's term weight found in the matched text
    unit_coverage: float  # share of the matched text's term weight found in the query
    margin: float  # (score - next item's score) / score

    def vector(self) -> tuple[float, float, float]:
        return (self.query_coverage, self.unit_coverage, self.margin)


# Fitted coefficients (bias, query_coverage, unit_coverage, margin); see docs/SEARCH.md.
COEFFICIENTS: tuple[float, float, float, float] = (-3.043, 6.586, -0.844, 3.278)
THRESHOLD = 0.25


def estimate(features: Features, coefficients: tuple[float, ...] = COEFFICIENTS) -> float:
    bias, *weights = coefficients
    z = bias + sum(w * x for w, x in zip(weights, features.vector(), strict=True))
    return round(1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z)))), 4)
