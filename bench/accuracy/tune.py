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


def lr_variant(bits: int, rate: float, thick: float = 0.0, adagrad: bool = False) -> Callable[[Idx, bool], float]:
    """Train only when |y - p| > thick (a thick threshold); AdaGrad per-bucket rates when asked."""
    w = np.zeros(1 << bits, dtype=np.float32)
    g2 = np.zeros(1 << bits, dtype=np.float32) if adagrad else None

    def step(idx: Idx, y: bool) -> float:
        n = max(len(idx), 1)
        z = float(w[idx].sum(dtype=np.float64)) / math.sqrt(n)
        p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
        err = (1.0 if y else 0.0) - p
        if abs(err) > thick:
            g = err / math.sqrt(n)
            if g2 is not None:
                g2[idx] += np.float32(g * g)
                w[idx] += (rate * g / np.sqrt(g2[idx] + 1e-6)).astype(np.float32)
            else:
                w[idx] += np.float32(rate * g)
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


def frozen_score(step: Callable[[Idx, bool], float], idx: Idx) -> float:
    """The model's probability without learning: learners expose their weights via the closure."""
    cells = dict(zip(step.__code__.co_freevars, step.__closure__ or (), strict=True))
    w = cells["w"].cell_contents
    n = max(len(idx), 1)
    z = float(w[idx].sum(dtype=np.float64)) / math.sqrt(n)
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--variants", default="all")
    ap.add_argument("--protocol", default="online", choices=["online", "split"])
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
    from bench.accuracy.corpus import split

    train_names = {m.name for m in split(msgs)[0]}
    extractors = {
        "full": FeatureExtractor(),
        "no-osb": FeatureExtractor(osb_window=0),
        "osb1": FeatureExtractor(osb_window=1),
        "osb2": FeatureExtractor(osb_window=2),
        "no-osb-20": FeatureExtractor(bits=20, osb_window=0),
        "osb2-20": FeatureExtractor(bits=20, osb_window=2),
        "osb2-allhdr": FeatureExtractor(osb_window=2, all_header_words=True),
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
    variants.append(("lr20", "osb2-allhdr", lambda: lr_online(22, 20.0)))
    for t in (0.1, 0.25, 0.4):
        variants.append((f"thick{t}", "osb2", lambda t=t: lr_variant(22, 20.0, thick=t)))
    for r in (0.05, 0.1, 0.3, 1.0, 1.5, 2.0, 3.0, 5.0):
        variants.append((f"adagrad{r}", "osb2", lambda r=r: lr_variant(22, r, adagrad=True)))
    for ex in ("no-osb", "osb1", "full", "osb2-allhdr", "osb2-20"):
        variants.append(("ag1.0", ex, lambda ex=ex: lr_variant(22 if ex != "osb2-20" else 20, 1.0, adagrad=True)))
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
        if a.protocol == "online":
            scores = [step(i, y) for i, y in zip(idx_cache[ex], labels, strict=True)]
            judged = labels
        else:
            tr = [k for k, m in enumerate(msgs) if m.name in train_names]
            te = [k for k, m in enumerate(msgs) if m.name not in train_names]
            for k in tr:
                step(idx_cache[ex][k], labels[k])
            # classify without learning: a step with a zero-size index set would learn nothing, so
            # score by calling with the label and undoing is not needed: use a frozen copy instead.
            scores = [frozen_score(step, idx_cache[ex][k]) for k in te]
            judged = [labels[k] for k in te]
        el = time.process_time() - t
        s = evaluate(judged, scores)
        print(f"{name:8} {ex:13} (1-ROCA)%={s.one_minus_roca_pct:.4f} @0.1%={100 * s.caught_at_01:.1f} "
              f"@1%={100 * s.caught_at_1:.1f} fp={s.fp_at_half} fn={s.fn_at_half} "
              f"{1000 * el / len(facts):.2f} ms/msg", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
