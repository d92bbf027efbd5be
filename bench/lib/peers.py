"""Start the anchors (SpamAssassin's spamd, Rspamd) privately on loopback, pinned to one core.

Each server gets its own directory, its own port on 127.0.0.1 and no network checks: spamd runs with
-L (local tests only); Rspamd's resolver points at an unused local port and its network modules are off
(see ../shared/bench/README.md for why each one).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from bench.lib import proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(
    port: int, timeout: float, proc_: subprocess.Popen[bytes] | None = None, what: str = "server"
) -> None:
    """Until something accepts on 127.0.0.1:port; with `proc_`, give up as soon as that process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc_ is not None and proc_.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc_.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{what}: nothing listening on 127.0.0.1:{port} after {timeout:.0f}s")


class Server:
    name = "server"

    def __init__(self, workdir: Path, core: int | None) -> None:
        self.dir = workdir
        self.core = core
        self.port = free_port()
        self.p: subprocess.Popen[bytes] | None = None

    def _pin(self, argv: list[str]) -> list[str]:
        return ["taskset", "-c", str(self.core), *argv] if self.core is not None and shutil.which("taskset") else argv

    def cpu(self) -> float:
        assert self.p is not None
        return proc.cpu_seconds(self.p.pid)

    def peak_rss(self) -> float:
        assert self.p is not None
        return proc.peak_rss_mib(self.p.pid)

    def stop(self) -> None:
        if self.p is not None and self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


class Spamd(Server):
    name = "SpamAssassin"

    def __init__(self, workdir: Path, core: int | None, children: int = 2, extra_cf: str = "") -> None:
        super().__init__(workdir, core)
        self.children = children
        self.extra_cf = extra_cf

    # -L: local tests only. A subclass that answers DNS lists itself turns it off.
    local_only = True

    def write_site(self, site: Path) -> None:
        """The site configuration: Debian's rules, then ours (no Bayes, no network tests)."""
        for f in Path("/etc/spamassassin").glob("*"):
            if f.is_file():
                shutil.copy(f, site / f.name)
        (site / "zz_bench.cf").write_text(
            "use_bayes 0\nskip_rbl_checks 1\nuse_razor2 0\nuse_pyzor 0\nuse_dcc 0\ndns_available no\n" + self.extra_cf
        )

    def start(self, timeout: float = 180) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        site = self.dir / "site"
        site.mkdir(exist_ok=True)
        self.write_site(site)
        argv = [
            "spamd", *(["-L"] if self.local_only else []), "-x", "-u", "nobody", "-i", "127.0.0.1",
            "-A", "127.0.0.1", "-p", str(self.port),
            f"--max-children={self.children}", f"--min-children={self.children}", f"--siteconfigpath={site}",
            f"--pidfile={self.dir / 'spamd.pid'}", "-s", str(self.dir / "spamd.log"),
        ]  # fmt: skip
        self.p = subprocess.Popen(self._pin(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, timeout, self.p)

    def client(self, path: Path) -> list[str]:
        return ["spamc", "-p", str(self.port), "-c"]


class Rspamd(Server):
    name = "Rspamd"

    def __init__(self, workdir: Path, core: int | None, extra_local: dict[str, str] | None = None) -> None:
        super().__init__(workdir, core)
        self.extra_local = extra_local or {}

    def start(self, timeout: float = 300) -> None:
        d = self.dir
        for sub in ("local.d", "override.d", "run", "db", "log"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        other = free_port()
        (d / "override.d" / "worker-normal.inc").write_text(f'bind_socket = "127.0.0.1:{self.port}";\ncount = 1;\n')
        (d / "override.d" / "worker-controller.inc").write_text(f'bind_socket = "127.0.0.1:{other}";\ncount = 1;\n')
        (d / "override.d" / "worker-proxy.inc").write_text(f'bind_socket = "127.0.0.1:{free_port()}";\ncount = 0;\n')
        # An unused local port as resolver: nothing leaves the machine, lookups fail fast.
        (d / "override.d" / "options.inc").write_text(
            'dns { nameserver = ["127.0.0.1:1"]; timeout = 0.1s; retransmits = 0; }\n'
        )
        (d / "override.d" / "logging.inc").write_text(
            f'type = "file"; filename = "{d}/log/rspamd.log"; level = "error";\n'
        )
        for module in (
            "phishing",
            "once_received",
            "rbl",
            "fuzzy_check",
            "surbl",
            "emails",
            "asn",
            "dkim_signing",
            "arc",
            "spf",
            "dkim",
            "dmarc",
            "neural",
            "ratelimit",
            "replies",
            "greylist",
            "url_redirector",
            "multimap",
            "history_redis",
            "mx_check",
            "reputation",
            "known_senders",
        ):
            (d / "local.d" / f"{module}.conf").write_text("enabled = false;\n")
        (d / "local.d" / "classifier-bayes.conf").write_text("enabled = false;\n")
        for name, text in self.extra_local.items():
            (d / "local.d" / name).write_text(text)
        argv = [
            "rspamd",
            "-f",
            "-i",
            "-u",
            "root",
            "-g",
            "root",
            "-c",
            "/etc/rspamd/rspamd.conf",
            f"--var=LOCAL_CONFDIR={d}",
            f"--var=RUNDIR={d}/run",
            f"--var=DBDIR={d}/db",
            f"--var=LOGDIR={d}/log",
        ]
        self.p = subprocess.Popen(self._pin(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, timeout, self.p)
