"""The same messages for every contestant: a deterministic sample of a corpus, mbox `From ` lines removed."""

from __future__ import annotations

import random
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CORPUS = REPO.parent / "shared" / "data" / "corpus" / "spamassassin-public"
FALLBACK_CORPUS = REPO / "samples" / "corpus"


def default_corpus() -> Path:
    return DEFAULT_CORPUS if DEFAULT_CORPUS.is_dir() else FALLBACK_CORPUS


def sample(corpus: Path, limit: int, seed: int = 1) -> list[tuple[Path, str]]:
    """(file, label) pairs, label from the parent folder name, a seeded shuffle cut to `limit`."""
    files = sorted((p, p.parent.name) for p in corpus.glob("*/*") if p.is_file())
    random.Random(seed).shuffle(files)
    return files[:limit] if limit > 0 else files


def materialise(files: list[tuple[Path, str]], out: Path) -> list[Path]:
    """Copy the messages into `out` without their mbox `From ` line (MTAs and spamc expect RFC 822)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (f, label) in enumerate(files):
        data = f.read_bytes()
        if data.startswith(b"From "):
            data = data.split(b"\n", 1)[1] if b"\n" in data else b""
        p = out / f"{i:05d}.{label}.eml"
        p.write_bytes(data)
        paths.append(p)
    return paths
