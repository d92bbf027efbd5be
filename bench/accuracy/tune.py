"""Choose the learner and the features by measurement (in memory, online protocol, no storage).

    .venv/bin/python -m bench.accuracy.tune [CORPUS] [--limit N]

Compares online logistic regression (several rates, feature sets) with Robinson/Fisher chi-square
combining on the same hashed features, on the same messages in the same order as bench.accuracy.run.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench.accuracy.corpus import load
from bench.accuracy.metrics import evaluate
from bench.accuracy.run import DEFAULT_CORPUS
from relayguard.classifier.features import FeatureExtractor
from relayguard.config.schema import Settings
from relayguard.message.parse import parse_message

Idx = npt.NDArray[np.uint32]


def lr_online(bits: int, rate: float) -> Callable[[Idx, bool], float]:
    w = np.zeros(1 << bits, dtype=np.float32)

    def step(idx: Idx, y: bool) -> float:
        n = max(len(idx), 1)
        z = float(w[idx].sum(dtype=np.float64)) / math.sqrt(n)
        p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
        w[idx] += np.float32(rate * ((1.0 if y else 0.0) - p) / math.sqrt(n))
        return p

    return step


def fisher_online(bits: int, s: float = 1.0, x: float = 0.5, min_dev: float = 0.1) -> Callable[[Idx, bool], float]:
    """Robinson's f(w) with Fisher's chi-square combining (bogofilter/SpamBayes style)."""
    from scipy.stats import chi2  # type: ignore[import-untyped]

    ns = np.zeros(1 << bits, dtype=np.float32)
    nh = np.zeros(1 << bits, dtype=np.float32)
    tot = [0, 0]

    def step(idx: Idx, y: bool) -> float:
        if tot[0] and tot[1]:
            a = ns[idx] / tot[1]
            b = nh[idx] / tot[0]
            n = ns[idx] + nh[idx]
            with np.errstate(invalid="ignore", divide="ignore"):
                pw = np.where(a + b > 0, a / (a + b), x)
            f = (s * x + n * pw) / (s + n)
            f = f[np.abs(f - 0.5) > min_dev]
            if len(f):
                f = np.clip(f, 1e-6, 1 - 1e-6)
                k = 2 * len(f)
                sp = 1 - chi2.cdf(-2 * np.log(f).sum(), k)  # low when many spammy tokens... S
                hp = 1 - chi2.cdf(-2 * np.log(1 - f).sum(), k)
                p = (1 + sp - hp) / 2  # Robinson's I = (1 + H - S) / 2, H from the spammy product
            else:
                p = 0.5
        else:
            p = 0.5
        if y:
            ns[idx] += 1
            tot[1] += 1
        else:
            nh[idx] += 1
            tot[0] += 1
        return float(p)

    return step


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--variants", default="all")
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="rg-tune-"))
    try:
        msgs = load(a.corpus, base, a.limit)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    st = Settings()
    t = time.process_time()
    facts = [parse_message(m.raw, st) for m in msgs]
    print(f"parsed {len(facts)} in {time.process_time() - t:.1f}s cpu", file=sys.stderr)
    labels = [m.label for m in msgs]
    extractors = {
        "full": FeatureExtractor(),
        "no-osb": FeatureExtractor(osb_window=0),
        "osb1": FeatureExtractor(osb_window=1),
        "osb2": FeatureExtractor(osb_window=2),
        "no-osb-20": FeatureExtractor(bits=20, osb_window=0),
        "osb2-20": FeatureExtractor(bits=20, osb_window=2),
        "no-hdr-words": FeatureExtractor(header_words=False),
        "words1000": FeatureExtractor(max_body_words=1000),
        "words500": FeatureExtractor(max_body_words=500),
    }
    idx_cache: dict[str, list[Idx]] = {}
    variants: list[tuple[str, str, Callable[[], Callable[[Idx, bool], float]]]] = []
    for r in (2.0, 5.0, 10.0, 20.0, 50.0):
        variants.append((f"lr{r}", "full", lambda r=r: lr_online(22, r)))
    for e in ("no-osb", "no-hdr-words", "words1000", "words500"):
        variants.append(("lr10", e, lambda: lr_online(22, 10.0)))
    variants.append(("fisher", "full", lambda: fisher_online(22)))
    for r in (5.0, 20.0, 30.0, 50.0):
        variants.append((f"lr{r}", "no-osb", lambda r=r: lr_online(22, r)))
        variants.append((f"lr{r}", "osb1", lambda r=r: lr_online(22, r)))
    variants.append(("lr20", "osb2", lambda: lr_online(22, 20.0)))
    for r in (10.0, 15.0, 30.0):
        variants.append((f"lr{r}", "osb2", lambda r=r: lr_online(22, r)))
    variants.append(("lr20", "osb2-20", lambda: lr_online(20, 20.0)))
    variants.append(("lr20", "no-osb-20", lambda: lr_online(20, 20.0)))
    variants.append(("fisher", "no-osb", lambda: fisher_online(22)))
    for name, ex, make in variants:
        if a.variants != "all" and not any(f"{name}/{ex}".startswith(v) for v in a.variants.split(",")):
            continue
        if ex not in idx_cache:
            t = time.process_time()
            idx_cache[ex] = [extractors[ex].indices(f) for f in facts]
            print(f"features {ex}: {1000 * (time.process_time() - t) / len(facts):.2f} ms/msg, "
                  f"{np.mean([len(i) for i in idx_cache[ex]]):.0f}/msg", file=sys.stderr)
        step = make()
        t = time.process_time()
        scores = [step(i, y) for i, y in zip(idx_cache[ex], labels, strict=True)]
        el = time.process_time() - t
        s = evaluate(labels, scores)
        print(f"{name:8} {ex:13} (1-ROCA)%={s.one_minus_roca_pct:.4f} @0.1%={100 * s.caught_at_01:.1f} "
              f"@1%={100 * s.caught_at_1:.1f} fp={s.fp_at_half} fn={s.fn_at_half} "
              f"{1000 * el / len(facts):.2f} ms/msg", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
