"""SpamAssassin Bayes (sa-learn's engine, driven in one Perl process) and Rspamd Bayes (a private rspamd
and redis-server on loopback), behind the same interface as the other contestants."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx

from bench.accuracy.corpus import Msg
from bench.accuracy.cpu import pid_cpu, pids_cpu, tree_pids
from bench.lib.peers import free_port, wait_port

HERE = Path(__file__).resolve().parent




class SaBayes:
    """Mail::SpamAssassin with only the Bayes plugin and 23_bayes.cf loaded, network tests off,
    bayes_auto_expire 0, bayes_min_{spam,ham}_num 1 (it answers from the first message, like the
    others), its own home directory. Learning is what sa-learn does (Mail::SpamAssassin->learn)."""

    name = "sa-bayes"

    def __init__(self, workdir: Path) -> None:
        rules = workdir / "rules"
        rules.mkdir(parents=True)
        shutil.copy("/usr/share/spamassassin/23_bayes.cf", rules)
        (rules / "init.pre").write_text(
            "loadplugin Mail::SpamAssassin::Plugin::Check\nloadplugin Mail::SpamAssassin::Plugin::Bayes\n"
        )
        self.proc = subprocess.Popen(
            ["perl", str(HERE / "sa" / "sa_bayes.pl"), str(workdir), str(rules)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )

    def _ask(self, line: str) -> str:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def version(self) -> str:
        out = subprocess.run(["spamassassin", "-V"], capture_output=True, text=True).stdout
        m = re.search(r"version (\S+)", out)
        return m.group(1) if m else "?"

    def learn(self, msgs: list[Msg]) -> None:
        for m in msgs:
            self._ask(f"learn {'spam' if m.label else 'ham'} {m.path}")

    def classify(self, msgs: list[Msg]) -> list[float]:
        return [float(self._ask(f"classify {m.path}")) for m in msgs]

    classify_cpu = 0.0  # CPU seconds spent classifying during `online` (learning is the rest)

    def online(self, msgs: list[Msg]) -> list[float]:
        out = []
        for m in msgs:
            t = self.cpu()
            out.append(float(self._ask(f"classify {m.path}")))
            self.classify_cpu += self.cpu() - t
            self._ask(f"learn {'spam' if m.label else 'ham'} {m.path}")
        return out

    def cpu(self) -> float:
        return pid_cpu(self.proc.pid)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_NETWORK_MODULES = (
    "phishing", "once_received", "rbl", "surbl", "fuzzy_check", "spf", "dkim", "dmarc", "arc", "asn",
    "emails", "url_redirector", "neural", "replies", "ratelimit", "greylist", "mx_check", "dcc",
    "metadata_exporter", "clickhouse", "history_redis", "reputation", "url_reputation", "elastic",
    "external_services", "antivirus", "maillist", "milter_headers", "p0f", "dkim_signing", "arc_signing",
)


class RspamdBayes:
    """rspamd 3.x with its own config overrides, a private redis-server, the resolver pointed at an unused
    local port, network modules disabled (phishing and once_received included), min_learns 1, and
    learning through the controller with `Learn-Type: bulk` (otherwise rspamd skips messages its Bayes
    already classifies right)."""

    name = "rspamd-bayes"

    def __init__(self, workdir: Path) -> None:
        self.work = workdir
        rport, nport, cport, pport = free_port(), free_port(), free_port(), free_port()
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_port(rport, 300.0, self.redis, "redis-server")
        local = workdir / "local"
        (local / "local.d").mkdir(parents=True)
        (local / "override.d").mkdir()
        for d in ("run", "log"):
            (workdir / d).mkdir()
        # Hyperscan databases are compiled into DBDIR on first start (slow on a busy machine): keep them.
        dbdir = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "relayguard-bench" / "rspamd-db"
        dbdir.mkdir(parents=True, exist_ok=True)
        ov = local / "override.d"
        ld = local / "local.d"
        (ov / "worker-normal.inc").write_text(f'bind_socket = "127.0.0.1:{nport}";\ncount = 1;\n')
        (ov / "worker-controller.inc").write_text(f'bind_socket = "127.0.0.1:{cport}";\ncount = 1;\n'
                                                  'secure_ip = "127.0.0.1";\n')
        (ov / "worker-proxy.inc").write_text(f'bind_socket = "127.0.0.1:{pport}";\ncount = 1;\n')
        (ov / "worker-fuzzy.inc").write_text("count = -1;\n")
        dead_dns = free_port()  # nothing listens there: lookups fail fast, nothing leaves the machine
        (ld / "options.inc").write_text(
            f'dns {{ nameserver = ["127.0.0.1:{dead_dns}"]; timeout = 0.1s; retransmits = 1; }}\n'
        )
        (ld / "redis.conf").write_text(f'servers = "127.0.0.1:{rport}";\n')
        (ld / "classifier-bayes.conf").write_text(
            f'backend = "redis";\nservers = "127.0.0.1:{rport}";\nmin_learns = 1;\nautolearn = false;\n'
        )
        (ld / "logging.inc").write_text('level = "error";\n')
        for mod in _NETWORK_MODULES:
            (ld / f"{mod}.conf").write_text("enabled = false;\n")
        self.proc = subprocess.Popen(
            ["rspamd", "-f", "-i", "-c", "/etc/rspamd/rspamd.conf",
             "--var", f"LOCAL_CONFDIR={local}", "--var", f"RUNDIR={workdir / 'run'}",
             "--var", f"DBDIR={dbdir}", "--var", f"LOGDIR={workdir / 'log'}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ},
        )
        try:
            wait_port(nport, 300.0, self.proc, "rspamd normal worker")
            wait_port(cport, 300.0, self.proc, "rspamd controller")
        except BaseException:
            self.http = httpx.Client()
            self.close()
            raise
        self.check_url = f"http://127.0.0.1:{nport}/checkv2"
        self.ctl = f"http://127.0.0.1:{cport}"
        self.http = httpx.Client(timeout=60.0)

    def version(self) -> str:
        out = subprocess.run(["rspamd", "--version"], capture_output=True, text=True).stdout
        m = re.search(r"version (\S+)", out)
        return m.group(1) if m else "?"

    def _learn_one(self, m: Msg) -> None:
        self.http.post(f"{self.ctl}/{'learnspam' if m.label else 'learnham'}", content=m.raw,
                       headers={"Learn-Type": "bulk"})

    def _classify_one(self, m: Msg) -> float:
        r = self.http.post(self.check_url, content=m.raw)
        sym = json.loads(r.text).get("symbols", {})
        for name, spam in (("BAYES_SPAM", True), ("BAYES_HAM", False)):
            s = sym.get(name)
            if s:
                opts = s.get("options") or []
                pct = next((float(o.rstrip("%")) / 100 for o in opts if o.endswith("%")), None)
                if pct is None:
                    return 0.99 if spam else 0.01
                return pct if spam else 1.0 - pct
        return 0.5

    def learn(self, msgs: list[Msg]) -> None:
        for m in msgs:
            self._learn_one(m)

    def classify(self, msgs: list[Msg]) -> list[float]:
        return [self._classify_one(m) for m in msgs]

    classify_cpu = 0.0

    def online(self, msgs: list[Msg]) -> list[float]:
        out = []
        for m in msgs:
            t = self.cpu()
            out.append(self._classify_one(m))
            self.classify_cpu += self.cpu() - t
            self._learn_one(m)
        return out

    def cpu(self) -> float:
        # rspamd's main process and workers, plus the redis-server holding its Bayes tokens.
        return pids_cpu(tree_pids(self.proc.pid)) + pid_cpu(self.redis.pid)

    def close(self) -> None:
        self.http.close()
        for p in (self.proc, self.redis):
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
