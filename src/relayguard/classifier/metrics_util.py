"""Small ranking helpers shared by tests and the accuracy bench."""

from __future__ import annotations

from collections.abc import Sequence


def auc(spam_scores: Sequence[float], ham_scores: Sequence[float]) -> float:
    """Probability that a random spam scores above a random ham (ties count half)."""
    if not spam_scores or not ham_scores:
        return float("nan")
    wins = 0.0
    hs = sorted(ham_scores)
    import bisect

    for s in spam_scores:
        lo = bisect.bisect_left(hs, s)
        hi = bisect.bisect_right(hs, s)
        wins += lo + (hi - lo) / 2
    return wins / (len(spam_scores) * len(hs))
