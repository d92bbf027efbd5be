"""The `[classifier]` configuration section."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class ClassifierSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    backend: Literal["sqlite", "redis"] = "sqlite"
    # SQLite file; empty means <[storage] data_dir>/classifier.sqlite.
    database: str = ""
    # Redis backend: empty means [storage] redis_url.
    redis_url: str = ""
    redis_prefix: str = "relayguard:classifier:"
    # Below this many learned spam *and* ham the check says CLASSIFIER_UNTRAINED instead of guessing.
    min_learned: Annotated[int, Field(ge=0)] = 200
    # Seed an empty database from the starter model shipped in the package.
    starter: bool = True
    # Probability at or above which CLASSIFIER_SPAM fires, at or below which CLASSIFIER_HAM fires.
    spam_threshold: Annotated[float, Field(gt=0.5, le=1.0)] = 0.9
    ham_threshold: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.1
    # Model knobs; hash_bits only applies when a database is created.
    hash_bits: Annotated[int, Field(ge=16, le=26)] = 22
    learning_rate: Annotated[float, Field(gt=0, le=1000)] = 1.0
    # Expiry of rare, old features (`relayguard learn --expire`).
    expire_min_count: Annotated[int, Field(ge=1)] = 2
    expire_days: Annotated[int, Field(ge=1)] = 180
    # External verdicts: empty means "not used".
    rspamd_url: str = ""  # e.g. "http://127.0.0.1:11333"
    rspamd_timeout: Annotated[float, Field(gt=0, le=120)] = 5.0
    spamd_address: str = ""  # e.g. "127.0.0.1:783"
    spamd_timeout: Annotated[float, Field(gt=0, le=120)] = 10.0
    spamd_user: str = ""

    def database_path(self, data_dir: Path) -> Path:
        if self.database:
            return Path(self.database).expanduser()
        return data_dir / "classifier.sqlite"
