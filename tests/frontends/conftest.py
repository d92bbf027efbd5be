from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from peers import free_port, wait_port

HERE = Path(__file__).parent
RELAYGUARD = [sys.executable, "-c", "from relayguard.app.cli import main; main()"]


@dataclass
class Served:
    """A `relayguard serve` subprocess with its config file and ports."""

    config: Path
    ports: dict[str, int]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        logf = self.log.open("ab")
        self.proc = subprocess.Popen(
            [*RELAYGUARD, "--log-level", "INFO", "serve", "-c", str(self.config), "--no-uvloop"],
            stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=str(self.config.parent),
        )  # fmt: skip
        for port in self.ports.values():
            wait_port(port, 30.0)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def write_config(path: Path, ports: dict[str, int], extra: dict[str, str] | None = None) -> None:
    extra = extra or {}
    sections = "".join(
        f'[frontends.{name}]\nlisten = ["127.0.0.1:{port}"]\n{extra.get(name, "")}\n' for name, port in ports.items()
    )
    # Embedded storage (classifier database...) in the test's own directory, never the user's.
    data = path.parent / "data"
    path.write_text(
        f'[storage]\ndata_dir = "{data}"\n'
        '[frontends]\nplugins = ["forced_action_check:checks"]\nshutdown_grace = 20.0\n' + sections
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """relayguard serve with the milter and policy front ends (tests may rewrite the config first)."""
    ports = {"milter": free_port(), "policy": free_port()}
    cfg = tmp_path / "relayguard.toml"
    # 127.0.0.1 is the trusted submitter of the tests; customers (127.0.2.x) are limited to 5 RCPT.
    write_config(cfg, ports, {"policy": 'rate_limit = 5\nrate_exempt = ["127.0.0.1/32"]'})
    s = Served(cfg, ports, tmp_path / "relayguard.log")
    yield s
    s.kill()
