"""Compromised-customer detection: identity -> windows -> sequential test, with campaign correlation.

Two faces on the pipeline, as Rspamd's ratelimit has them:

* `OutboundCheck`, a pre-filter that only reads state: a customer already found compromised gets
  OUTBOUND_SUSPECT with the configured containment action (hold by default) and the SPRT's explanation; a
  message matching a live campaign gets CAMPAIGN_MATCH, whoever sends it.
* `OutboundUpdater`, after the verdict: charges the windows, steps the customer's SPRT with the message's
  content verdict and behavioural evidence, feeds the campaign index, and marks customers compromised.

Where the content verdict comes from is a `VerdictSource` (message facts -> spam probability): the
built-in classifier, or a score-derived probability from the pipeline's own verdict (Rspamd /
SpamAssassin style scores). The simulator plugs in the classifier trained on its training split.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from relayguard.checks.api import Hit, Stage, SymbolDef, SyncCheck, Updater
from relayguard.config.schema import Settings
from relayguard.core.actions import Action
from relayguard.core.clock import Clock, SystemClock
from relayguard.message.facts import MessageFacts
from relayguard.outbound.campaign import CampaignIndex, Fingerprinter
from relayguard.outbound.identity import (
    Identity,
    IdentityResolver,
    LeaseHistory,
    LoginNetworks,
    StaticAssignments,
)
from relayguard.outbound.settings import OutboundSettings
from relayguard.outbound.sprt import Decision, Evidence, Sprt, SprtParams
from relayguard.outbound.state import CustomerState, MemoryStateStore, SqliteStateStore, StateFactory, StateStore
from relayguard.outbound.windows import Observation
from relayguard.scoring.verdict import Verdict

log = logging.getLogger("relayguard.outbound")

GROUP = "outbound"
SUSPECT = SymbolDef("OUTBOUND_SUSPECT", GROUP, "The sending customer was found compromised (SPRT crossed its bound)")
CAMPAIGN_MATCH = SymbolDef("CAMPAIGN_MATCH", GROUP, "The message matches a spam campaign seen from several customers")
WATCH = SymbolDef("OUTBOUND_WATCH", GROUP, "The sending customer's SPRT leans towards compromised")
MANY_NETWORKS = SymbolDef("LOGIN_MANY_NETWORKS", GROUP, "The SASL login is used from many client networks at once")


class VerdictSource(Protocol):
    """Message facts -> probability that the message is spam (None: no opinion)."""

    def spam_probability(self, facts: MessageFacts) -> float | None: ...


def probability_from_verdict(verdict: Verdict, add_header: float = 6.0) -> float:
    """A score-based verdict as a probability: logistic, 0.5 at the add-header threshold, 2 points wide.

    Used when no classifier is wired in, so Rspamd- or SpamAssassin-style scores still feed the test.
    """
    x = (verdict.score - add_header) / 2.0
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


def _domain(addr: str | None) -> str:
    if not addr:
        return ""
    a = addr.strip().strip("<>").lower()
    return a.rpartition("@")[2] if "@" in a else ""


def _normalise_sender(addr: str | None) -> str:
    """Envelope sender without VERP/sub-address tags, so a list's bounce addresses count as one."""
    if not addr:
        return ""
    a = addr.strip().strip("<>").lower()
    local, at, dom = a.rpartition("@")
    if not at:
        return a
    for sep in ("+", "="):
        local = local.split(sep, 1)[0]
    return f"{local}@{dom}"


def _from_domain(facts: MessageFacts) -> str:
    raw = facts.header("From") or ""
    if "<" in raw and ">" in raw:
        raw = raw[raw.rfind("<") + 1 : raw.rfind(">")]
    return _domain(raw.split()[-1] if raw.split() else "")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the updater did with one message (the simulator and tests read this)."""

    identity: Identity
    decision: Decision | None  # None when the message was a copy (no new evidence) or had no verdict
    campaign: int | None  # the campaign it matched or formed
    newly_compromised: tuple[str, ...]  # customers found compromised by this message (incl. via campaign)


class OutboundDetector:
    def __init__(
        self,
        settings: OutboundSettings | None = None,
        clock: Clock | None = None,
        store: StateStore | None = None,
        identity: IdentityResolver | None = None,
    ) -> None:
        s = settings or OutboundSettings()
        self.settings = s
        self.clock: Clock = clock or SystemClock()
        self.factory = StateFactory(max(s.windows), s.max_events, s.max_distinct, s.baseline_halflife / 3600)
        self.store: StateStore = store or MemoryStateStore()
        self.identity = identity or IdentityResolver(ipv6_prefix=s.ipv6_prefix)
        self.logins = LoginNetworks(s.login_network_window)
        self.sprt = Sprt(SprtParams(s.alpha, s.beta, s.theta0, s.theta1))
        self.fingerprinter = Fingerprinter(s.campaign_num_perm, s.campaign_shingle)
        self.campaigns = CampaignIndex(
            k=s.campaign_k,
            window=s.campaign_window,
            ttl=s.campaign_ttl,
            threshold=s.campaign_threshold,
            num_perm=s.campaign_num_perm,
            min_spam=s.campaign_min_spam,
            max_clusters=s.max_campaign_clusters,
        )

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> OutboundDetector:
        s = settings.outbound
        static = StaticAssignments.load(s.static_assignments) if s.static_assignments else None
        leases = LeaseHistory(s.lease_history)
        if s.lease_file:
            with open(s.lease_file, encoding="utf-8", errors="replace") as fh:
                leases.load_lines(fh, s.lease_file)
        store: StateStore
        if s.state == "sqlite":
            path = s.state_path or str(settings.storage.data_path() / "outbound.sqlite3")
            factory = StateFactory(max(s.windows), s.max_events, s.max_distinct, s.baseline_halflife / 3600)
            store = SqliteStateStore(Path(path), factory)
        else:
            store = MemoryStateStore()
        return cls(s, clock, store, IdentityResolver(static, leases, s.ipv6_prefix))

    # ------------------------------------------------------------------ reading (pre-filter)

    def identify(self, facts: MessageFacts, t: float | None = None) -> Identity:
        return self.identity.resolve(facts.envelope, self.clock.now() if t is None else t)

    def precheck(self, facts: MessageFacts) -> list[Hit]:
        s = self.settings
        now = self.clock.now()
        ident = self.identify(facts, now)
        hits: list[Hit] = []
        state = self.store.get(ident.customer)
        if state is not None and state.compromised:
            hits.append(
                Hit(SUSPECT.name, (ident.customer, state.sprt.reason or ""), 1.0, s.suspect_action, s.suspect_message)
            )
        elif state is not None and state.sprt.llr >= self.sprt.params.upper / 2:
            hits.append(Hit(WATCH.name, (ident.customer, f"llr={state.sprt.llr:.2f}")))
        m = self.campaigns.match(self.fingerprinter.fingerprint(facts), now)
        if m is not None:
            c = m.cluster
            # Near-identical text is a verdict; sharing uncommon URL domains is strong evidence only
            # (the updater counts it), so it never holds a message by itself.
            force = m.kind == "text" and s.campaign_action is not Action.NO_ACTION
            hits.append(
                Hit(
                    CAMPAIGN_MATCH.name,
                    (f"campaign#{c.cid}", f"by {m.kind}", f"{len(c.members)} customers", f"p={c.mean_p:.2f}"),
                    1.0,
                    s.campaign_action if force else None,
                    "5.7.1 Message matches a spam campaign" if force else None,
                )
            )
        if ident.source == "sasl":
            n = self.logins.count(ident.customer, now)
            if n >= s.login_networks_suspect:
                hits.append(Hit(MANY_NETWORKS.name, (ident.customer, f"{n} networks")))
        return hits

    def state_of(self, customer: str) -> CustomerState | None:
        return self.store.get(customer)

    def customer_report(self, customer: str) -> dict[str, object] | None:
        """What the abuse desk needs: every configured window, the baseline and the test, with numbers."""
        state = self.store.get(customer)
        if state is None:
            return None
        now = self.clock.now()
        p = self.sprt.params
        return {
            "customer": customer,
            "messages": state.messages,
            "windows": [state.windows.stats(now, w).as_dict() for w in sorted(self.settings.windows)],
            "usual_per_hour": round(state.baseline.expected_per_hour(self.settings.baseline_prior_per_hour), 2),
            "sprt": {
                "llr": round(state.sprt.llr, 3),
                "upper": round(p.upper, 3),
                "lower": round(p.lower, 3),
                "restarts": state.sprt.restarts,
                "compromised_at": state.sprt.compromised_at,
                "reason": state.sprt.reason,
            },
            "campaigns": list(state.campaigns),
        }

    # ------------------------------------------------------------------ after the verdict

    def observe(self, facts: MessageFacts, spam_p: float | None) -> Outcome:
        s = self.settings
        now = self.clock.now()
        ident = self.identify(facts, now)
        state = self.store.get(ident.customer) or self.factory.new()
        env = facts.envelope
        fp = self.fingerprinter.fingerprint(facts)
        matched = self.campaigns.match(fp, now)
        cluster, formed = self.campaigns.observe(fp, ident.customer, now, spam_p)
        newly: list[str] = []

        # Charge the windows first so behaviour evidence includes this message.
        rcpt_domains = tuple(sorted({_domain(r) for r in env.rcpt_to if _domain(r)}))
        state.windows.add(
            Observation(
                now,
                max(1, len(env.rcpt_to)),
                rcpt_domains,
                _normalise_sender(env.mail_from),
                _from_domain(facts),
                (env.helo or "").lower(),
                facts.size,
                spam_p,
            )
        )
        state.baseline.observe(now)
        state.messages += 1
        networks = 0
        if ident.source == "sasl":
            networks = self.logins.observe(ident.customer, ident.network, now)

        body = fp.body_key.hex()
        copy = body in state.bodies and state.bodies[body] >= now - s.repeat_window
        state.bodies[body] = now
        self._prune_bodies(state, now)

        evidence: list[Evidence] = []
        p_eff = spam_p
        if matched is not None:
            floor = s.campaign_spam_p if matched.kind == "text" else matched.cluster.mean_p
            p_eff = max(spam_p or 0.0, floor)
        if formed is not None:
            evidence.append(Evidence("campaign", s.campaign_member_llr, formed.explanation))
        decision: Decision | None = None
        if p_eff is not None and (not copy or matched is not None):
            # A copy of a body this customer already sent is not a new observation (a newsletter to
            # 500 recipients is one piece of evidence, not 500); a campaign match always is.
            detail = f"p={p_eff:.2f}" + (
                f", matches campaign #{matched.cluster.cid} by {matched.kind}" if matched is not None else ""
            )
            evidence.append(Evidence("content", self.sprt.params.content_llr(p_eff), detail))
            evidence.extend(self._behaviour(state, now, p_eff, networks))
        if evidence:
            was = state.compromised
            decision = self.sprt.step(state.sprt, now, evidence)
            if decision.outcome == "compromised" and not was:
                newly.append(ident.customer)
                log.warning("customer %s compromised: %s", ident.customer, decision.explanation)
        if cluster is not None and cluster.cid not in state.campaigns and formed is not None:
            state.campaigns.append(cluster.cid)
        self.store.put(ident.customer, state)

        if formed is not None:
            for member in formed.members:
                if member == ident.customer:
                    continue
                newly.extend(self._campaign_member(member, formed.cluster, now, formed.explanation))
        campaign = formed.cluster if formed is not None else (matched.cluster.cid if matched is not None else None)
        return Outcome(ident, decision, campaign, tuple(newly))

    def _campaign_member(self, customer: str, cid: int, now: float, why: str) -> list[str]:
        state = self.store.get(customer)
        if state is None or cid in state.campaigns:
            return []
        state.campaigns.append(cid)
        was = state.compromised
        d = self.sprt.step(state.sprt, now, [Evidence("campaign", self.settings.campaign_member_llr, why)])
        self.store.put(customer, state)
        if d.outcome == "compromised" and not was:
            log.warning("customer %s compromised: %s", customer, d.explanation)
            return [customer]
        return []

    def _behaviour(self, state: CustomerState, now: float, p: float, networks: int) -> list[Evidence]:
        """Behavioural evidence for this step, weighted by the content's spam probability and capped.

        Bursts and wide recipient spreads are common among honest bulk senders too, so behaviour only
        corroborates what the content suggests: each term is scaled by p, and the sum is capped at
        max_behaviour_llr, below the weight of one clear ham verdict.
        """
        s = self.settings
        hour = state.windows.stats(now, 3600.0)
        out: list[Evidence] = []
        usual = state.baseline.expected_per_hour(s.baseline_prior_per_hour)
        if hour.messages > s.burst_factor * usual:
            out.append(Evidence("burst", s.burst_llr * p, f"{hour.messages} msgs/h vs usual {usual:.1f}/h"))
        if hour.rcpt_domains >= s.domain_spread:
            out.append(Evidence("domain_spread", s.domain_spread_llr * p, f"{hour.rcpt_domains} recipient domains/h"))
        churn = max(hour.env_senders, hour.from_domains, hour.helos)
        if churn >= s.sender_churn:
            out.append(
                Evidence(
                    "sender_churn",
                    s.sender_churn_llr * p,
                    f"{hour.env_senders} senders, {hour.from_domains} From domains, {hour.helos} HELOs/h",
                )
            )
        if hour.recipients >= 5 and hour.rejected / (hour.recipients + hour.rejected) >= s.rejected_ratio:
            out.append(
                Evidence(
                    "rejected", s.rejected_llr * p, f"{hour.rejected} rejected of {hour.recipients + hour.rejected}"
                )
            )
        if networks >= s.login_networks_suspect:
            out.append(Evidence("login_networks", s.login_networks_llr * p, f"{networks} client networks"))
        total = sum(e.llr for e in out)
        if total > s.max_behaviour_llr > 0:
            scale = s.max_behaviour_llr / total
            out = [Evidence(e.name, e.llr * scale, e.detail + " (capped)") for e in out]
        return out

    def record_rejected(self, facts: MessageFacts, n: int = 1) -> None:
        """A front end reports recipients refused at RCPT time (unknown users: a spammer's list)."""
        now = self.clock.now()
        ident = self.identify(facts, now)
        state = self.store.get(ident.customer) or self.factory.new()
        state.windows.add_rejected(now, n)
        self.store.put(ident.customer, state)

    def _prune_bodies(self, state: CustomerState, now: float) -> None:
        horizon = now - self.settings.repeat_window
        if len(state.bodies) > self.settings.max_distinct:
            for k in sorted(state.bodies, key=state.bodies.__getitem__)[: len(state.bodies) // 2]:
                del state.bodies[k]
        for k in [k for k, t in state.bodies.items() if t < horizon]:
            del state.bodies[k]

    def release(self, customer: str) -> bool:
        """The abuse desk cleaned the customer: start its test again (containment proper is issue 8)."""
        state = self.store.get(customer)
        if state is None:
            return False
        Sprt.clear(state.sprt)
        self.store.put(customer, state)
        return True


class OutboundCheck(SyncCheck):
    name = "OUTBOUND"
    stage = Stage.PRE
    symbols = (SUSPECT, CAMPAIGN_MATCH, WATCH, MANY_NETWORKS)

    def __init__(self, detector: OutboundDetector) -> None:
        self.detector = detector

    def evaluate(self, facts: MessageFacts) -> Sequence[Hit]:
        return self.detector.precheck(facts)


class OutboundUpdater(Updater):
    name = "OUTBOUND"

    def __init__(
        self, detector: OutboundDetector, source: VerdictSource | None = None, add_header: float = 6.0
    ) -> None:
        self.detector = detector
        self.source = source
        self.add_header = add_header
        self.last: Outcome | None = None

    async def update(self, facts: MessageFacts, verdict: Verdict) -> None:
        if self.source is not None:
            p = self.source.spam_probability(facts)
        else:
            p = probability_from_verdict(verdict, self.add_header)
        self.last = self.detector.observe(facts, p)
