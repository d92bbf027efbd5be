"""`relayguard simulate`: an ISP in a box, built from real mail, replayed through the real decision path.

The mail is split by the seed: the content classifier learns only the training part; only the rest is
replayed, so no message is judged by a model that learned it. From the replay part:

* every ham message belongs to one ordinary customer, sent at that customer's own rate (log-normal
  rates, office-hours skew), to 1-3 of its contacts;
* legitimate shared content: bulk senders mail a newsletter to hundreds of recipients (one VERP copy per
  recipient, minutes apart), mailing-list servers fan each post out to their subscribers, and a few
  popular messages are forwarded by several customers;
* K infected customers, from a moment of their own, send a shared campaign (a handful of spam templates
  with hash-buster words appended, plus other spam) between their normal mail: half fast (a message every
  few seconds), half slow (a few an hour, under any fixed limit), with forged senders and many recipient
  domains.

About a third of the customers have no SASL login: they are known by their address, from RADIUS
accounting records (IPv4 addresses reassigned every day, so an address changes hands) or by a delegated
IPv6 /56 within which their devices' addresses rotate.

Every message is parsed once (`parse_message`) and its facts reused, with each sending's own envelope,
through the pipeline the relay runs (`build_pipeline`: the default checks + the outbound check and
updater) on a simulated clock. The fixed-rate baseline (10/minute, 150/day per customer) sees the same
stream in the same run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relayguard.checks.api import Check
from relayguard.config import load_config, load_config_text
from relayguard.config.schema import Settings
from relayguard.core.actions import Action
from relayguard.core.clock import ManualClock
from relayguard.message.facts import Envelope, MessageFacts
from relayguard.outbound.baseline import FixedRateLimit
from relayguard.outbound.detector import CAMPAIGN_MATCH, SUSPECT, OutboundCheck, OutboundDetector, OutboundUpdater
from relayguard.outbound.identity import IdentityResolver, LeaseHistory
from relayguard.outbound.verdicts import ClassifierVerdicts, StandInNaiveBayes

log = logging.getLogger("relayguard.outbound")

T0 = 1_700_000_000.0  # the simulated epoch (a Tuesday, 22:13 UTC; only differences matter)
DAY = 86400.0
MAX_BYTES = 256 * 1024  # corpus files larger than this are skipped (attachments say little here)
STOPPING = {Action.SOFT_REJECT, Action.REJECT, Action.QUARANTINE, Action.DISCARD}
OUTBOUND_SYMBOLS = {SUSPECT.name, CAMPAIGN_MATCH.name}
COMMON_DOMAINS = ["gmail.example", "yahoo.example", "outlook.example", "aol.example", "gmx.example", "web.example"]
HASH_BUSTER = "alpha bravo delta echo golf hotel india kilo lima mike oscar papa romeo sierra tango zulu".split()


@dataclass(frozen=True)
class SimConfig:
    ham_dir: Path
    spam_dir: Path
    customers: int = 1000
    infected: int = 20
    seed: int = 1
    days: float = 2.0
    train_fraction: float = 0.5
    templates: int = 5
    max_messages: int = 0  # per corpus side, 0 = all (tests use a few)
    config: Path | None = None  # an operator's configuration file (e.g. other [outbound] values)


@dataclass
class Customer:
    idx: int
    name: str
    kind: str  # "login", "dhcp4", "v6"
    role: str  # "ordinary", "bulk", "list", "fast", "slow"
    address: str
    helo: str
    contacts: list[str]
    home: str  # login customers: their home address; v6: their /56
    infected_at: float | None = None


@dataclass(order=True)
class Event:
    t: float
    seq: int
    customer: int = field(compare=False)
    msg: int = field(compare=False)  # index into the parsed replay messages
    spam: bool = field(compare=False)  # part of an infection (what the detector must stop)
    rcpt: tuple[str, ...] = field(compare=False, default=())
    mail_from: str = field(compare=False, default="")
    helo: str = field(compare=False, default="")
    bust: str = field(compare=False, default="")  # hash-buster words appended to the text


@dataclass
class SystemTally:
    """Outcomes for one detection system (relayguard or the baseline) over the same stream."""

    detected_at: dict[int, float] = field(default_factory=dict)
    leaked: dict[int, int] = field(default_factory=dict)
    legit_flagged: set[int] = field(default_factory=set)
    legit_delayed: int = 0


def _read_dir(path: Path, limit: int) -> list[tuple[str, bytes]]:
    out = []
    for p in sorted(path.iterdir()):
        if not p.is_file() or p.name.startswith(".") or p.name == "cmds":
            continue
        data = p.read_bytes()
        if len(data) > MAX_BYTES or not data.strip():
            continue
        out.append((p.name, data))
        if limit and len(out) >= limit:
            break
    return out


def default_corpus(repo_root: Path) -> tuple[Path, Path]:
    """The shared corpus beside the repository when present, else the sample shipped in it."""
    shared = repo_root.parent / "shared" / "data" / "corpus" / "spamassassin-public"
    if (shared / "ham").is_dir() and (shared / "spam").is_dir():
        return shared / "ham", shared / "spam"
    sample = repo_root / "samples" / "corpus"
    return sample / "ham", sample / "spam"


def _pctl(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q * (len(s) - 1))))
    return float(s[k])


class Simulation:
    def __init__(self, cfg: SimConfig, progress: Callable[[int, int], None] | None = None) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.progress = progress
        self._tmp = tempfile.TemporaryDirectory(prefix="relayguard-sim-")
        self.settings = self._settings()
        self.clock = ManualClock(T0)
        self.notes: list[str] = []

    def _settings(self) -> Settings:
        # A private data dir: the classifier database learns only this run's training split, and the
        # starter model is off (it may have learned the very messages replayed here). Generous time
        # budgets: on a loaded machine a real-time timeout would make a run depend on the load instead of
        # the seed (the clock the detector sees is simulated anyway).
        base = load_config(self.cfg.config) if self.cfg.config else load_config_text("", "defaults")
        d = Path(self._tmp.name)
        return base.model_copy(
            update={
                "storage": base.storage.model_copy(update={"data_dir": str(d)}),
                "classifier": base.classifier.model_copy(update={"starter": False, "min_learned": 1}),
                "pipeline": base.pipeline.model_copy(update={"budget": 600.0, "check_timeout": 600.0}),
            }
        )

    # ------------------------------------------------------------------ corpus and classifier

    def load(self, parse: Callable[[bytes], MessageFacts], tick: Callable[[], None]) -> None:
        cfg = self.cfg
        ham = _read_dir(cfg.ham_dir, cfg.max_messages)
        spam = _read_dir(cfg.spam_dir, cfg.max_messages)
        if len(ham) < 4 or len(spam) < 4:
            raise ValueError(f"need at least 4 ham and 4 spam messages (got {len(ham)} and {len(spam)})")
        self.rng.shuffle(ham)
        self.rng.shuffle(spam)
        nh = max(2, int(len(ham) * cfg.train_fraction))
        ns = max(2, int(len(spam) * cfg.train_fraction))
        self.train = [(d, False) for _, d in ham[:nh]] + [(d, True) for _, d in spam[:ns]]
        self.rng.shuffle(self.train)  # online learners must not see all ham, then all spam
        replay_raw = [(d, False) for _, d in ham[nh:]] + [(d, True) for _, d in spam[ns:]]
        self.train_facts: list[tuple[MessageFacts, bool]] = []
        for d, s in self.train:
            self.train_facts.append((parse(d), s))
            tick()
        self.replay: list[MessageFacts] = []
        self.replay_is_spam: list[bool] = []
        for d, s in replay_raw:
            self.replay.append(parse(d))
            self.replay_is_spam.append(s)
            tick()

    def train_classifier(self, tick: Callable[[], None]) -> Any:
        """The built-in classifier when it loads and learns; the stand-in otherwise."""
        try:
            from relayguard.classifier.api import Classifier

            clf = Classifier.open(self.settings)
            with clf.batch():
                for f, s in self.train_facts:
                    clf.learn(f, s)
                    tick()
            self.verdicts: Any = ClassifierVerdicts(clf)
            return self.verdicts
        except Exception as exc:  # the classifier is optional for the simulator, not for a relay
            log.warning("built-in classifier unavailable (%s: %s); using the stand-in", type(exc).__name__, exc)
            self.notes.append(f"built-in classifier unavailable ({type(exc).__name__}); stand-in naive Bayes used")
            nb = StandInNaiveBayes()
            for f, s in self.train_facts:
                nb.learn(f, s)
                tick()
            self.verdicts = nb
            return nb

    # ------------------------------------------------------------------ the world

    def build_world(self) -> None:
        cfg, rng = self.cfg, self.rng
        n = cfg.customers
        duration = cfg.days * DAY
        self.duration = duration
        domains = [f"isp-{i}.example" for i in range(max(20, n // 20))]
        far = [f"d{i}.example" for i in range(5000)]

        def contacts() -> list[str]:
            k = rng.randint(3, 25)
            out = []
            for j in range(k):
                dom = rng.choice(COMMON_DOMAINS) if rng.random() < 0.6 else rng.choice(far)
                out.append(f"friend{rng.randrange(10**6)}.{j}@{dom}")
            return out

        self.customers: list[Customer] = []
        for i in range(n):
            r = rng.random()
            kind = "login" if r < 0.65 else ("dhcp4" if r < 0.9 else "v6")
            name = f"c{i:05d}"
            dom = rng.choice(domains)
            home = (
                f"100.{64 + (i // 65536) % 64}.{(i // 256) % 256}.{i % 256}"
                if kind == "login"
                else (f"2001:db8:{i // 256:x}:{(i % 256) << 8:x}::/56" if kind == "v6" else "")
            )
            self.customers.append(
                Customer(i, name, kind, "ordinary", f"{name}@{dom}", f"host-{name}.{dom}", contacts(), home)
            )
        ordinary = list(range(n))
        rng.shuffle(ordinary)
        n_bulk = max(2, n // 100)
        n_list = max(1, n // 200)
        n_inf = min(cfg.infected, max(0, n - n_bulk - n_list))
        for c in ordinary[:n_bulk]:
            self.customers[c].role = "bulk"
        for c in ordinary[n_bulk : n_bulk + n_list]:
            self.customers[c].role = "list"
        infected = ordinary[n_bulk + n_list : n_bulk + n_list + n_inf]
        for j, c in enumerate(infected):
            self.customers[c].role = "fast" if j % 2 == 0 else "slow"

        ham = [i for i, s in enumerate(self.replay_is_spam) if not s]
        spam = [i for i, s in enumerate(self.replay_is_spam) if s]
        rng.shuffle(ham)
        rng.shuffle(spam)
        events: list[Event] = []
        seq = 0

        def add(
            t: float,
            cust: int,
            msg: int,
            is_spam: bool,
            rcpt: tuple[str, ...],
            mail_from: str,
            helo: str,
            bust: str = "",
        ) -> None:
            nonlocal seq
            if 0 <= t < duration:
                events.append(Event(T0 + t, seq, cust, msg, is_spam, rcpt, mail_from, helo, bust))
                seq += 1

        def office_time() -> float:
            day = rng.randrange(max(1, int(cfg.days)))
            hour = rng.choices(
                range(24), weights=[1, 1, 1, 1, 1, 2, 4, 8, 10, 10, 10, 10, 9, 10, 10, 10, 9, 8, 7, 7, 6, 5, 3, 2]
            )[0]
            return day * DAY + hour * 3600 + rng.random() * 3600

        # Shared legitimate content first takes its share of ham.
        take = iter(ham)
        newsletters = [(c, next(take, None)) for c in ordinary[:n_bulk] for _ in range(rng.randint(1, 2))]
        lists = [(c, [next(take, None) for _ in range(rng.randint(4, 10))]) for c in ordinary[n_bulk : n_bulk + n_list]]
        forwards = [next(take, None) for _ in range(max(3, n // 100))]
        rest = list(take)

        for c, msg in newsletters:
            if msg is None:
                continue
            cu = self.customers[c]
            t = office_time()
            gap = rng.uniform(2, 10)
            for r in range(rng.randint(150, 600)):
                dom = rng.choice(COMMON_DOMAINS) if rng.random() < 0.5 else rng.choice(far)
                to = f"sub{rng.randrange(10**6)}@{dom}"
                bounce = f"news+{to.replace('@', '=')}@{cu.address.split('@')[1]}"
                add(t + r * gap, c, msg, False, (to,), bounce, cu.helo)
        for c, posts in lists:
            cu = self.customers[c]
            subs = [
                f"member{rng.randrange(10**6)}@{rng.choice(COMMON_DOMAINS + far[:200])}"
                for _ in range(rng.randint(30, 120))
            ]
            for msg in posts:
                if msg is None:
                    continue
                t = rng.uniform(0, duration)
                for k, to in enumerate(subs):
                    add(
                        t + k * rng.uniform(0.2, 2),
                        c,
                        msg,
                        False,
                        (to,),
                        f"list-bounces+{to.replace('@', '=')}@{cu.address.split('@')[1]}",
                        cu.helo,
                    )
        for msg in forwards:
            if msg is None:
                continue
            t = office_time()
            for c in rng.sample(range(n), rng.randint(2, 6)):
                cu = self.customers[c]
                if cu.role in ("bulk", "list"):
                    continue
                add(
                    t + rng.uniform(0, 12 * 3600), c, msg, False, tuple(rng.sample(cu.contacts, 1)), cu.address, cu.helo
                )

        # Each remaining ham message belongs to one customer, chosen by the customers' own rates.
        weights = [rng.lognormvariate(0.0, 1.2) for _ in range(n)]
        for msg in rest:
            c = rng.choices(range(n), weights=weights)[0]
            cu = self.customers[c]
            rcpt = tuple(rng.sample(cu.contacts, min(len(cu.contacts), rng.choice([1, 1, 1, 2, 3]))))
            add(office_time(), c, msg, False, rcpt, cu.address, cu.helo)

        # The campaign: a few spam templates shared by every infected customer, plus other spam.
        templates = spam[: cfg.templates]
        others = spam[cfg.templates :] or templates
        for c in infected:
            cu = self.customers[c]
            start = rng.uniform(0.2, 0.6) * duration
            cu.infected_at = T0 + start
            fast = cu.role == "fast"
            t = start
            budget = 300 if fast else 200
            for _ in range(budget):
                t += rng.expovariate(1 / rng.uniform(3, 30)) if fast else rng.expovariate(1 / rng.uniform(900, 1800))
                if t >= duration:
                    break
                msg = rng.choice(templates) if rng.random() < 0.7 else rng.choice(others)
                rcpt = tuple(f"u{rng.randrange(10**7)}@{rng.choice(far)}" for _ in range(rng.randint(1, 5)))
                forged = f"{rng.choice(HASH_BUSTER)}{rng.randrange(10**4)}@{rng.choice(far)}"
                helo = cu.helo if rng.random() < 0.5 else f"{rng.choice(HASH_BUSTER)}{rng.randrange(999)}"
                bust = " ".join(rng.choice(HASH_BUSTER) + str(rng.randrange(1000)) for _ in range(rng.randint(3, 8)))
                add(t, c, msg, True, rcpt, forged, helo, bust)
        events.sort()
        self.events = events

    def _leases(self) -> LeaseHistory:
        """RADIUS accounting for the address-only customers: IPv4 reassigned daily, IPv6 /56 delegated."""
        rng = random.Random(self.cfg.seed + 7)
        leases = LeaseHistory()
        lines: list[str] = []
        v4 = [c for c in self.customers if c.kind == "dhcp4"]
        days = int(self.cfg.days) + 1
        self._v4_at: dict[tuple[int, int], str] = {}
        for d in range(days):
            pool = list(range(len(v4)))
            rng.shuffle(pool)
            for c, slot in zip(v4, pool, strict=True):
                ip = f"198.18.{slot // 250}.{slot % 250 + 1}"
                self._v4_at[(c.idx, d)] = ip
                start, stop = T0 + d * DAY, T0 + (d + 1) * DAY  # [start, stop): no gap at midnight
                lines.append(
                    f"Acct-Status-Type=Start User-Name={c.name} Framed-IP-Address={ip} Event-Timestamp={start:.0f}"
                )
                lines.append(
                    f"Acct-Status-Type=Stop User-Name={c.name} Framed-IP-Address={ip} Event-Timestamp={stop:.0f}"
                )
        for c in self.customers:
            if c.kind == "v6":
                lines.append(
                    f"Acct-Status-Type=Start User-Name={c.name} Delegated-IPv6-Prefix={c.home} Event-Timestamp={T0:.0f}"
                )
        lines.sort(key=lambda line: float(line.rsplit("=", 1)[1]))
        leases.load_lines(lines, "simulated RADIUS accounting")
        return leases

    def _envelope(self, ev: Event) -> Envelope:
        cu = self.customers[ev.customer]
        if cu.kind == "login":
            return Envelope(
                ev.mail_from, ev.rcpt, ev.helo, cu.home, None, cu.name, None, "relay.isp.example", "ESMTPSA"
            )
        if cu.kind == "dhcp4":
            ip = self._v4_at[(cu.idx, int((ev.t - T0) // DAY))]
        else:
            net = cu.home.split("/")[0].rstrip(":")
            ip = f"{net}:{ev.seq % 200:x}:{(ev.seq * 7919) % 65536:x}::{(ev.seq % 4096) + 1:x}"
        return Envelope(ev.mail_from, ev.rcpt, ev.helo, ip, None, None, None, "relay.isp.example", "ESMTP")

    def expected_identity(self, cu: Customer) -> str:
        return f"login:{cu.name}" if cu.kind == "login" else f"sub:{cu.name}"

    # ------------------------------------------------------------------ the replay

    def _pipeline(self, detector: OutboundDetector, verdicts: Any) -> Any:
        from relayguard.pipeline import Pipeline

        check = OutboundCheck(detector)
        updater = OutboundUpdater(detector, verdicts)
        checks: list[Check] = []
        try:
            from relayguard.app.build import default_checks

            checks = default_checks(self.settings)
        except Exception as exc:
            log.warning("default checks unavailable (%s); outbound check only", exc)
            self.notes.append(f"default checks unavailable ({type(exc).__name__}); outbound check only")
        # The relay's own customers are not judged by where mail came from on the Internet (DNS lists,
        # SPF/DKIM): those checks need a network the simulator does not have, and would only add timeouts.
        dropped = sorted(c.name for c in checks if type(c).__module__.startswith("relayguard.inbound"))
        if dropped:
            self.notes.append("inbound network checks left out: " + ", ".join(dropped))
        checks = [c for c in checks if not type(c).__module__.startswith("relayguard.inbound")]
        pipe = Pipeline(self.settings, [*checks, check], [updater])
        # The pipeline's classifier check shares the simulator's model and cache (one classify per text).
        shared = isinstance(verdicts, ClassifierVerdicts)
        for c in pipe.checks:
            if shared and isinstance(c, Check) and c.name == "CLASSIFIER" and hasattr(c, "classifier"):
                c.classifier = verdicts
        return pipe, updater

    async def replay_all(self, tick: Callable[[], None]) -> dict[str, Any]:
        detector = OutboundDetector(
            self.settings.outbound.model_copy(update={"ipv6_prefix": 56}),
            self.clock,
            identity=IdentityResolver(leases=self._leases(), ipv6_prefix=56),
        )
        pipe, updater = self._pipeline(detector, self.verdicts)
        ours, base = SystemTally(), SystemTally()
        limiter = FixedRateLimit()
        wrong_identity = 0
        content_stops_legit = 0
        for ev in self.events:
            self.clock.set(ev.t)
            cu = self.customers[ev.customer]
            base_facts = self.replay[ev.msg]
            facts = dataclasses.replace(base_facts, envelope=self._envelope(ev))
            if ev.bust:
                facts = dataclasses.replace(facts, text=facts.text + "\n" + ev.bust)
            updater.last = None
            verdict = await pipe.process(facts)
            stopped = verdict.action in STOPPING
            by_outbound = verdict.forced_by in OUTBOUND_SYMBOLS
            allowed = limiter.allow(self.expected_identity(cu), ev.t)
            if ev.spam:
                # Leaked: spam accepted before the system detected the customer (content-stopped spam
                # is stopped in both systems alike).
                if not stopped and ev.customer not in ours.detected_at:
                    ours.leaked[ev.customer] = ours.leaked.get(ev.customer, 0) + 1
                if not allowed:
                    base.detected_at.setdefault(ev.customer, ev.t)
                elif not (stopped and not by_outbound) and ev.customer not in base.detected_at:
                    base.leaked[ev.customer] = base.leaked.get(ev.customer, 0) + 1
            elif cu.infected_at is None:
                if stopped and by_outbound:
                    ours.legit_delayed += 1
                    ours.legit_flagged.add(ev.customer)
                    sym = verdict.symbols.get(verdict.forced_by or "")
                    log.info(
                        "legit %s (%s) held: %s %s", cu.name, cu.role, verdict.forced_by, sym.options if sym else ""
                    )
                elif stopped:
                    content_stops_legit += 1
                if not allowed:
                    base.legit_delayed += 1
                    base.legit_flagged.add(ev.customer)
            # Detection takes effect from the next message: the one that tipped the test was accepted.
            out = updater.last
            if out is not None:
                if out.identity.customer != self.expected_identity(cu):
                    wrong_identity += 1
                    log.info("identity %s for %s at %.0f", out.identity, cu.name, ev.t - T0)
                for who in out.newly_compromised:
                    idx = self._by_identity.get(who)
                    if idx is not None:
                        ours.detected_at.setdefault(idx, ev.t)
            tick()
        for who in detector.store.customers():
            st = detector.store.get(who)
            idx = self._by_identity.get(who)
            if st is not None and st.compromised and idx is not None and self.customers[idx].infected_at is None:
                ours.legit_flagged.add(idx)
        self.detector = detector
        return self._report(ours, base, wrong_identity, content_stops_legit)

    def _tally(self, t: SystemTally) -> dict[str, Any]:
        infected = [c for c in self.customers if c.infected_at is not None and self._sent_spam.get(c.idx)]
        detected = [c for c in infected if c.idx in t.detected_at]
        leaked = [float(t.leaked.get(c.idx, 0)) for c in infected]
        ttd = [t.detected_at[c.idx] - (c.infected_at or 0.0) for c in detected]
        return {
            "infected_total": len(infected),
            "infected_detected": len(detected),
            "leaked": {
                "median": statistics.median(leaked) if leaked else 0,
                "p95": _pctl(leaked, 0.95),
                "max": max(leaked, default=0),
            },
            "legit_flagged": len(t.legit_flagged),
            "legit_messages_delayed": t.legit_delayed,
            "time_to_detect": {
                "median": round(statistics.median(ttd), 1) if ttd else None,
                "max": round(max(ttd), 1) if ttd else None,
            },
            "slow_infected": sum(1 for c in infected if c.role == "slow"),
            "slow_detected": sum(1 for c in detected if c.role == "slow"),
        }

    def _report(self, ours: SystemTally, base: SystemTally, wrong_identity: int, content_legit: int) -> dict[str, Any]:
        common = {
            "training_messages": len(self.train),
            "replayed_messages": len(self.events),
        }
        rep: dict[str, Any] = {**self._tally(ours), **common}
        rep["baseline"] = {**self._tally(base), **common, "limit": "10/minute, 150/day per customer"}
        rep["seed"] = self.cfg.seed
        rep["customers"] = self.cfg.customers
        rep["simulated_days"] = self.cfg.days
        rep["templates"] = self.cfg.templates
        rep["distinct_replay_messages"] = len(self.replay)
        rep["verdict_source"] = getattr(self.verdicts, "name", type(self.verdicts).__name__)
        rep["identity_mismatches"] = wrong_identity
        rep["legit_messages_stopped_by_content"] = content_legit
        rep["campaigns"] = self.detector.campaigns.campaign_count()
        if self.notes:
            rep["notes"] = self.notes
        return rep

    def run(self, parse: Callable[[bytes], MessageFacts] | None = None, progress: Any = None) -> dict[str, Any]:
        """Load, train, build the world and replay; `progress` is an optional rich Progress."""
        from relayguard.message.parse import parse_message

        def do_parse(raw: bytes) -> MessageFacts:
            return parse_message(raw, self.settings)

        p = parse or do_parse
        step = _Steps(progress)
        cfg = self.cfg
        n_files = sum(1 for _ in cfg.ham_dir.iterdir()) + sum(1 for _ in cfg.spam_dir.iterdir())
        if cfg.max_messages:
            n_files = min(n_files, 2 * cfg.max_messages)
        step.start("parse", n_files)
        self.load(p, step.tick)
        step.start("train", len(self.train_facts))
        self.train_classifier(step.tick)
        self.build_world()
        self._by_identity = {self.expected_identity(c): c.idx for c in self.customers}
        self._sent_spam: dict[int, int] = {}
        for ev in self.events:
            if ev.spam:
                self._sent_spam[ev.customer] = self._sent_spam.get(ev.customer, 0) + 1
        step.start("replay", len(self.events))
        try:
            return asyncio.run(self.replay_all(step.tick))
        finally:
            self._tmp.cleanup()


class _Steps:
    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.task: Any = None
        self._n = 0

    def start(self, name: str, total: int) -> None:
        if self.progress is None:
            return
        if self.task is not None:
            self.progress.update(self.task, completed=self.progress.tasks[-1].total, visible=False)
        self.task = self.progress.add_task(name, total=total)
        self._n = 0

    def tick(self) -> None:
        if self.progress is None:
            return
        self._n += 1
        if self._n % 50 == 0:
            self.progress.update(self.task, completed=self._n)
