from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Tests never read or write the operator's data directory: every embedded database (classifier,
# listings, incidents) goes to a fresh temporary XDG_DATA_HOME for this test session. Set at import
# time, before any test module builds a pipeline.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="relayguard-test-data-")

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
