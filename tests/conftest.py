from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Tests never read or write the operator's data directory: every embedded database (classifier,
# listings, incidents) goes to a fresh temporary XDG_DATA_HOME for this test session. Set at import
# time, before any test module builds a pipeline.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="relayguard-test-data-")

import pytest

from peers import pg_dsn_fixture, pg_server_fixture, redis_server_fixture
from relayguard.config import Settings, load_config

# Real peers every test directory can ask for (see tests/peers.py).
redis_server = pytest.fixture(redis_server_fixture)
pg_server = pytest.fixture(scope="session")(pg_server_fixture)
pg_dsn = pytest.fixture(pg_dsn_fixture)


ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "corpus"


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_config()


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES
