"""Where messages come from: files, directories (recursively), mbox files and Maildirs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Item:
    path: str
    index: int | None  # position inside an mbox or Maildir, None for a single-message file
    data: bytes | None  # None when unreadable
    error: str | None = None


class SourceError(Exception):
    """A path that could not be read at all."""


def _is_maildir(p: Path) -> bool:
    return (p / "cur").is_dir() and (p / "new").is_dir()


def _mbox_messages(data: bytes) -> list[bytes] | None:
    """Split an mbox; None when the file holds a single message (one or no `From ` line)."""
    if not data.startswith(b"From "):
        return None
    starts = [0]
    pos = 0
    while True:
        i = data.find(b"\nFrom ", pos)
        if i < 0:
            break
        # mboxo/mboxrd: a separator follows an empty line; "From " inside a body is quoted as ">From ".
        if (i >= 1 and data[i - 1 : i] == b"\n") or (i >= 2 and data[i - 2 : i] == b"\r\n"):
            starts.append(i + 1)
        pos = i + 1
    if len(starts) < 2:
        return None
    return [data[a:b] for a, b in zip(starts, [*starts[1:], len(data)], strict=True)]


def _read(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read()


def iter_messages(paths: list[str], errors: list[str]) -> Iterator[Item]:
    """Yield every message under `paths`; unreadable paths are appended to `errors` and skipped."""
    for top in paths:
        p = Path(top)
        if not p.exists():
            errors.append(f"{top}: no such file or directory")
            continue
        if p.is_dir():
            if _is_maildir(p):
                yield from _maildir(p, errors)
                continue
            for root, dirs, files in os.walk(
                p, onerror=lambda e: errors.append(f"{e.filename}: {e.strerror}")
            ):
                dirs.sort()
                rp = Path(root)
                if rp != p and _is_maildir(rp):
                    dirs[:] = []
                    yield from _maildir(rp, errors)
                    continue
                for name in sorted(files):
                    yield from _file(rp / name, errors)
        else:
            yield from _file(p, errors)


def _file(path: Path, errors: list[str]) -> Iterator[Item]:
    try:
        data = _read(path)
    except OSError as exc:
        errors.append(f"{path}: {exc.strerror or exc}")
        return
    parts = _mbox_messages(data)
    if parts is None:
        yield Item(str(path), None, data)
    else:
        for i, m in enumerate(parts):
            yield Item(str(path), i, m)


def _maildir(p: Path, errors: list[str]) -> Iterator[Item]:
    names: list[Path] = []
    for sub in ("new", "cur"):
        try:
            names += sorted((p / sub).iterdir())
        except OSError as exc:
            errors.append(f"{p / sub}: {exc.strerror or exc}")
    for i, f in enumerate(n for n in names if n.is_file()):
        try:
            yield Item(str(p), i, _read(f))
        except OSError as exc:
            errors.append(f"{f}: {exc.strerror or exc}")
