"""The learner: online logistic regression on hashed binary features.

Chosen by measurement over Robinson/Fisher chi-square combining (see bench/RESULTS.md): the TREC
spam-track winners were online discriminative learners, and here too LR gives the better (1-ROCA)% at a
fraction of the cost (one gather and one scatter per message, no per-token probability tables).

The feature vector of a message is its set of active buckets scaled to unit length (each 1/sqrt(n)),
so long messages do not take larger steps than short ones. Learning one message adds the same scalar
`step = rate * (y - p) / sqrt(n)` to each of its buckets; remembering that scalar per message is what
makes forgetting it (or moving it to the other label) exact for its own contribution.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class LogisticModel:
    def __init__(self, rate: float = 0.5, clip: float = 30.0) -> None:
        self.rate = rate
        self.clip = clip

    def probability(self, weights: npt.NDArray[np.float32]) -> float:
        n = len(weights)
        if n == 0:
            return 0.5
        z = float(weights.sum(dtype=np.float64)) / math.sqrt(n)
        return sigmoid(max(-self.clip, min(self.clip, z)))

    def step(self, p: float, is_spam: bool, n: int) -> float:
        if n == 0:
            return 0.0
        return self.rate * ((1.0 if is_spam else 0.0) - p) / math.sqrt(n)


def confidence(p: float) -> float:
    """0 at p = 0.5, 1 at certainty either way."""
    return abs(2.0 * p - 1.0)
