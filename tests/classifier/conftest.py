from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from peers import free_port
from relayguard.config import load_config_text
from relayguard.config.schema import Settings
from relayguard.message.facts import MessageFacts
from relayguard.message.parse import parse_message

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples" / "corpus"


def settings_for(tmp: Path, extra: str = "") -> Settings:
    # Tests start from an empty model unless they ask for the starter.
    starter = "" if "starter" in extra else "starter = false\n"
    return load_config_text(f'[storage]\ndata_dir = "{tmp.as_posix()}"\n[classifier]\n{starter}{extra}')


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path)


@pytest.fixture
def make_settings() -> object:
    return settings_for


@pytest.fixture(scope="session")
def corpus() -> tuple[list[MessageFacts], list[MessageFacts]]:
    """(ham, spam) facts from the sample corpus shipped in the repository."""
    st = Settings()
    ham = [parse_message(p.read_bytes(), st) for p in sorted((SAMPLES / "ham").iterdir())]
    spam = [parse_message(p.read_bytes(), st) for p in sorted((SAMPLES / "spam").iterdir())]
    return ham, spam


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A private redis-server on its own port, stopped after the test."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server not installed (scripts/apt-packages.txt)")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
