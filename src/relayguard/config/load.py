"""Load and validate configuration: defaults first, then the operator's file on top."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from relayguard.config.schema import Settings
from relayguard.core.errors import ConfigError


def default_text() -> str:
    return resources.files("relayguard.config").joinpath("default.toml").read_text(encoding="utf-8")


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"TOML syntax: {exc}"]) from None


def _line_of(text: str, loc: tuple[int | str, ...]) -> int | None:
    """Best-effort line number of `section.key` in the operator's TOML, so errors point at it."""
    if not loc:
        return None
    section = str(loc[0])
    key = str(loc[1]) if len(loc) > 1 else None
    in_section = False
    section_line = None
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("["):
            name = stripped.strip("[]").strip()
            in_section = name == section or name.startswith(section + ".")
            if in_section and section_line is None:
                section_line = n
            continue
        if in_section and key is not None and stripped.split("=", 1)[0].strip().strip('"') == key:
            return n
    return section_line


def load_config_text(text: str, source: str = "<config>") -> Settings:
    """Validate `text` over the defaults; ConfigError lists every problem as `section.key: what`."""
    data = _merge(_parse(default_text(), "default.toml"), _parse(text, source))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (typo? see `relayguard config show` for the valid keys)"
            line = _line_of(text, tuple(err["loc"]))
            problems.append(f"{where}: {msg}" + (f" (line {line})" if line else ""))
        raise ConfigError(source, problems) from None


def load_config(path: str | Path | None = None) -> Settings:
    """The defaults, or the defaults overridden by the TOML file at `path`."""
    if path is None:
        return load_config_text("", "defaults")
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), [f"cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError(str(p), ["not UTF-8 text"]) from None
    return load_config_text(text, str(p))
