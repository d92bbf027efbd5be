"""Build the starter model shipped in src/relayguard/classifier/data/starter.model.

    .venv/bin/python -m bench.accuracy.make_starter [CORPUS] [--keep 150000]

Learns every message of the Apache SpamAssassin public corpus (PDDL-1.0 / CC0) online in delivery
order, with spam and ham mixed as they come, verdict headers stripped; then keeps the `--keep`
features with the largest weights (the rest of the model is mostly rare tokens that say little) so the
file stays under 2 MB. Per-message records are not shipped.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.accuracy.corpus import load
from bench.accuracy.run import DEFAULT_CORPUS, REPO
from relayguard.classifier.api import Classifier
from relayguard.classifier.exchange import encode
from relayguard.classifier.store import ModelDump, SqliteStore
from relayguard.config.schema import Settings
from relayguard.message.parse import parse_message

OUT = REPO / "src" / "relayguard" / "classifier" / "data" / "starter.model"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--keep", type=int, default=150_000)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="rg-starter-"))
    try:
        msgs = load(a.corpus, base, None)
        st = Settings()
        clf = Classifier(SqliteStore(base / "c.sqlite"))
        with clf.batch():
            for m in msgs:
                clf.learn(parse_message(m.raw, st), m.label)
        d = clf.store.dump(with_records=False)
        keep = np.sort(np.argsort(-np.abs(d.weights))[: a.keep])
        pruned = ModelDump(d.info, d.buckets[keep], d.weights[keep], d.counts[keep],
                           np.zeros(len(keep), np.uint32), d.accs[keep], ())
        data = encode(pruned, level=9)
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_bytes(data)
        print(f"{a.out.name}: {len(d.buckets)} features learned, {len(keep)} kept, {len(data):,} bytes; "
              f"{d.info.n_spam} spam, {d.info.n_ham} ham", file=sys.stderr)
        clf.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
