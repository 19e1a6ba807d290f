"""Calibrated confidence of a hit: a logistic model over how much of the query the hit covers, its
lead over the next item and how much of the query's topic it covers, fitted on the tuning half of the
dev sets (bench/knowledge.py --fit), with a floor on topic coverage that holds in a base of any size.

It estimates the probability that the hit answers the caller's question. Below THRESHOLD the
search says "no good match", so the bot asks again or hands over instead of answering the wrong
question."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Features:
    query_coverage: float  # share of the query's term weight (idf-weighted) found in the matched text
    margin: float  # (score - next item's score) / score
    # share of the query's topic words (not 怎么/在哪里/多少钱) found in the matched text, weighted by
    # their rarity in general Chinese: independent of the base, so it holds in a base of one item
    topic_coverage: float

    def vector(self) -> tuple[float, float, float]:
        return (self.query_coverage, self.margin, self.topic_coverage)


# Fitted coefficients (bias, query_coverage, margin, topic_coverage); see docs/SEARCH.md.
COEFFICIENTS: tuple[float, ...] = (-4.345, 4.735, 2.045, 3.9)
THRESHOLD = 0.16
# Below this topic coverage a hit is never confident, whatever the other features say: in a small
# base the lead over the next item and the idf-weighted coverages mean little (with one item the lead
# is always 1), and sharing only 怎么 or 在哪里 with a question is not answering it.
MIN_TOPIC_COVERAGE = 0.25


def estimate(features: Features, coefficients: tuple[float, ...] = COEFFICIENTS) -> float:
    bias, *weights = coefficients
    z = bias + sum(w * x for w, x in zip(weights, features.vector(), strict=True))
    probability = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
    if features.topic_coverage < MIN_TOPIC_COVERAGE:
        probability = min(probability, THRESHOLD / 2)
    return round(probability, 4)
