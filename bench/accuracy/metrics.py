"""(1-ROCA)%, spam caught at fixed false-positive rates, misjudged ham."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scores:
    one_minus_roca_pct: float
    caught_at_01: float  # share of spam above the threshold that lets <= 0.1% of ham through
    caught_at_1: float
    fp_at_half: int  # ham scored >= 0.5
    fn_at_half: int  # spam scored < 0.5


def one_minus_roca(labels: list[bool], scores: list[float]) -> float:
    """100 * (1 - area under the ROC curve); ties count half (Mann-Whitney)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # average ranks for ties
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    auc = (ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return 100.0 * (1.0 - auc)


def caught_at(labels: list[bool], scores: list[float], fp_rate: float) -> float:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    ham = np.sort(s[~y])[::-1]
    allowed = int(np.floor(fp_rate * len(ham)))
    # Threshold strictly above the (allowed+1)-th highest ham score.
    thr = ham[allowed] if allowed < len(ham) else -np.inf
    return float((s[y] > thr).mean()) if y.any() else float("nan")


def evaluate(labels: list[bool], scores: list[float]) -> Scores:
    s = np.asarray(scores)
    y = np.asarray(labels, dtype=bool)
    return Scores(
        one_minus_roca(labels, scores),
        caught_at(labels, scores, 0.001),
        caught_at(labels, scores, 0.01),
        int((s[~y] >= 0.5).sum()),
        int((s[y] < 0.5).sum()),
    )
