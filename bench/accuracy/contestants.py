"""The contestants, each behind the same small interface.

`learn(msgs)` trains on messages in order, `classify(msgs)` returns spam scores in [0, 1], `online(msgs)`
classifies each message and then learns it with its true label (TREC's ideal-feedback protocol).
`cpu()` returns CPU seconds used so far by the contestant's own processes (for msgs/s per core).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Protocol

from bench.accuracy.corpus import Msg
from bench.accuracy.cpu import children_cpu, self_cpu
from relayguard.classifier.api import Classifier
from relayguard.classifier.settings import ClassifierSettings
from relayguard.classifier.store import SqliteStore
from relayguard.config.schema import Settings
from relayguard.message.parse import parse_message


class Contestant(Protocol):
    name: str

    def version(self) -> str: ...
    def learn(self, msgs: list[Msg]) -> None: ...
    def classify(self, msgs: list[Msg]) -> list[float]: ...
    def online(self, msgs: list[Msg]) -> list[float]: ...
    def cpu(self) -> float: ...
    def close(self) -> None: ...


class Relayguard:
    """In process: parse_message + features + model, as the check does (parsing is counted)."""

    name = "relayguard"

    def __init__(self, workdir: Path, **knobs: object) -> None:
        self.settings = Settings()
        cfg = ClassifierSettings(starter=False, min_learned=0, **knobs)  # type: ignore[arg-type]
        self.clf = Classifier(SqliteStore(workdir / "classifier.sqlite"), cfg)

    def version(self) -> str:
        from relayguard import __version__

        return __version__

    parse_cpu = 0.0  # CPU seconds inside parse_message (shared by every check in a real pipeline)

    def _facts(self, m: Msg):  # type: ignore[no-untyped-def]
        t = self_cpu()
        f = parse_message(m.raw, self.settings)
        self.parse_cpu += self_cpu() - t
        return f

    def learn(self, msgs: list[Msg]) -> None:
        with self.clf.batch():
            for m in msgs:
                self.clf.learn(self._facts(m), m.label)

    def classify(self, msgs: list[Msg]) -> list[float]:
        return [self.clf.classify(self._facts(m))[0] for m in msgs]

    def online(self, msgs: list[Msg]) -> list[float]:
        out: list[float] = []
        for i in range(0, len(msgs), 1000):
            with self.clf.batch():
                for m in msgs[i : i + 1000]:
                    f = self._facts(m)
                    idx = self.clf.extractor.indices(f)
                    out.append(self.clf.probability_of(idx))
                    self.clf.learn(f, m.label, idx=idx)
        return out

    def cpu(self) -> float:
        return self_cpu()

    def close(self) -> None:
        self.clf.close()


class Bogofilter:
    """bogofilter with its built-in defaults (-C: no config file), its own word list directory."""

    name = "bogofilter"
    _FMT = "--terse-format=%1.1c %0.12e"

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "bogofilter"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.base = ["bogofilter", "-C", "-d", str(self.dir)]

    def version(self) -> str:
        out = subprocess.run(["bogofilter", "-V"], capture_output=True, text=True).stdout
        return out.split("\n", 1)[0].replace("bogofilter version ", "")

    def learn(self, msgs: list[Msg]) -> None:
        for label, flag in ((True, "-s"), (False, "-n")):
            paths = [str(m.path) for m in msgs if m.label == label]
            for i in range(0, len(paths), 500):
                subprocess.run([*self.base, flag, "-B", *paths[i : i + 500]], check=True)

    def classify(self, msgs: list[Msg]) -> list[float]:
        out: list[float] = []
        paths = [str(m.path) for m in msgs]
        for i in range(0, len(paths), 500):
            r = subprocess.run([*self.base, self._FMT, "-t", "-B", *paths[i : i + 500]],
                               capture_output=True, text=True)
            lines = r.stdout.splitlines()
            assert len(lines) == len(paths[i : i + 500]), r.stderr
            out.extend(float(line.split()[-1]) for line in lines)
        return out

    def online(self, msgs: list[Msg]) -> list[float]:
        out: list[float] = []
        for m in msgs:
            r = subprocess.run([*self.base, self._FMT, "-t"], input=m.raw, capture_output=True)
            parts = r.stdout.split()
            # No word list yet (first message): bogofilter prints nothing; that is "unsure".
            out.append(float(parts[-1]) if parts else 0.5)
            subprocess.run([*self.base, "-s" if m.label else "-n"], input=m.raw, check=True)
        return out

    def cpu(self) -> float:
        return children_cpu()

    def close(self) -> None:
        pass


def tmpdir(base: Path, name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=base))
