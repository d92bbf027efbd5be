from __future__ import annotations

from pathlib import Path

import pytest

from relayguard.config import Settings, load_config

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "corpus"


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_config()


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES
