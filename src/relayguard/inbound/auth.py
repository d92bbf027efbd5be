"""SPF (pyspf), DKIM (dkimpy), DMARC alignment and policy, and the Authentication-Results header.

Every lookup goes through the shared Resolver. Both libraries are synchronous, so neither is allowed
to touch the network itself:

* dkimpy takes a `dnsfunc`; we fetch each signature's key record asynchronously first, then hand
  dkimpy a function that answers from what we fetched.
* pyspf resolves through its module-level `DNSLookup`; we route that (once, at import) to a function
  chosen per task through a ContextVar, so other users of pyspf in the process are unaffected. The
  evaluation is run against our cache; names it asked for that were not there are fetched together,
  and it runs again, until a run needs nothing new (SPF allows 10 DNS mechanisms, so few rounds). Each
  run is pure CPU on cached data, so no thread is needed and the final run is exactly pyspf's answer.

The check emits symbols whose options carry the RFC 8601 properties (`smtp.mailfrom=...`,
`header.d=...`, `header.from=...`), so `authentication_results()` can rebuild the header from any
verdict and `with_authentication_results()` can put it on the verdict for the front ends.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import authres
import authres.dmarc
import dkim
import spf

from relayguard.checks.api import Check, CheckContext, Hit, Stage, SymbolDef
from relayguard.core.netset import is_private, parse_ip
from relayguard.inbound.resolver import DnsAnswer, Resolver
from relayguard.inbound.settings import InboundSettings
from relayguard.message.facts import MessageFacts
from relayguard.message.parse import strip_mbox_from
from relayguard.message.urls import registrable_domain
from relayguard.scoring.verdict import Verdict

log = logging.getLogger("relayguard.inbound")

MAX_SPF_ROUNDS = 12
_SPF_LOOKUP: contextvars.ContextVar[Callable[[str, str], list[Any]] | None] = contextvars.ContextVar(
    "relayguard_spf_lookup", default=None
)
_ORIGINAL_DNSLOOKUP = spf.DNSLookup


def _dispatch(name: str, qtype: str, strict: bool = True, timeout: float = 20) -> list[Any]:
    fn = _SPF_LOOKUP.get()
    if fn is None:  # someone else's pyspf call: their resolver, untouched
        return list(_ORIGINAL_DNSLOOKUP(name, qtype, strict, timeout))
    return fn(name, qtype)


spf.DNSLookup = _dispatch


def _spf_records(name: str, qtype: str, ans: DnsAnswer) -> list[Any]:
    """A DnsAnswer in the shape pyspf's DNSLookup returns (see spf.DNSLookup_dnspython)."""
    if not ans.ok:
        raise spf.TempError(f"DNS {ans.error} for {name} {qtype}")
    out: list[Any] = []
    for r in ans.records:
        if qtype in ("A", "AAAA"):
            out.append(((name, qtype), r.address))  # type: ignore[attr-defined]
        elif qtype == "MX":
            out.append(((name, qtype), (r.preference, r.exchange)))  # type: ignore[attr-defined]
        elif qtype == "PTR":
            out.append(((name, qtype), r.target.to_text(True)))  # type: ignore[attr-defined]
        elif qtype in ("TXT", "SPF"):
            out.append(((name, qtype), r.strings))  # type: ignore[attr-defined]
    return out


@dataclass(frozen=True, slots=True)
class SpfResult:
    result: str  # pass fail softfail neutral none temperror permerror
    identity: str  # "mailfrom" or "helo"
    domain: str | None
    sender: str
    explanation: str = ""


@dataclass(frozen=True, slots=True)
class DkimResult:
    result: str  # pass fail temperror permerror
    domain: str
    selector: str
    reason: str = ""


# Rspamd's symbol names, which relayguard's front ends already read to write Authentication-Results
# (relayguard.frontends.result_headers): result -> symbol, per method.
SPF_SYMBOLS = {
    "pass": "R_SPF_ALLOW", "fail": "R_SPF_FAIL", "softfail": "R_SPF_SOFTFAIL", "neutral": "R_SPF_NEUTRAL",
    "none": "R_SPF_NA", "temperror": "R_SPF_DNSFAIL", "permerror": "R_SPF_PERMFAIL",
}  # fmt: skip
DKIM_SYMBOLS = {
    "pass": "R_DKIM_ALLOW", "fail": "R_DKIM_REJECT", "temperror": "R_DKIM_TEMPFAIL", "permerror": "R_DKIM_PERMFAIL",
    "none": "R_DKIM_NA",
}  # fmt: skip
DMARC_SYMBOLS = {
    "pass": "DMARC_POLICY_ALLOW", "reject": "DMARC_POLICY_REJECT", "quarantine": "DMARC_POLICY_QUARANTINE",
    "fail_none": "DMARC_POLICY_SOFTFAIL", "none": "DMARC_NA", "temperror": "DMARC_DNSFAIL",
    "permerror": "DMARC_BAD_POLICY",
}  # fmt: skip
# symbol -> (RFC 8601 method, result)
AUTH_RESULTS: dict[str, tuple[str, str]] = {
    **{sym: ("spf", res) for res, sym in SPF_SYMBOLS.items()},
    **{sym: ("dkim", res) for res, sym in DKIM_SYMBOLS.items()},
    **{
        sym: ("dmarc", "fail" if res in ("reject", "quarantine", "fail_none") else res)
        for res, sym in DMARC_SYMBOLS.items()
    },
}
_DESCRIBE = {
    "DMARC_POLICY_ALLOW": "DMARC pass: SPF or DKIM aligned with the From domain",
    "DMARC_POLICY_REJECT": "DMARC fail; the domain asks receivers to reject",
    "DMARC_POLICY_QUARANTINE": "DMARC fail; the domain asks for quarantine",
    "DMARC_POLICY_SOFTFAIL": "DMARC fail; the domain's policy is none",
    "DMARC_NA": "No DMARC record for the From domain",
    "DMARC_DNSFAIL": "DMARC record lookup failed",
    "DMARC_BAD_POLICY": "DMARC cannot apply (From header or record broken)",
}

_TAG = re.compile(r"(?:^|;)\s*([a-z]+)\s*=\s*([^;]*)", re.IGNORECASE)


def parse_tags(value: str) -> dict[str, str]:
    """`k=v; k2=v2` (DKIM-Signature, DMARC records) -> lower-case keys, whitespace-free values."""
    return {m.group(1).lower(): re.sub(r"\s+", "", m.group(2)) for m in _TAG.finditer(value)}


def _domain_of(addr: str) -> str | None:
    a = addr.strip().strip("<>").rstrip(".")
    if "@" not in a:
        return None
    d = a.rpartition("@")[2].lower()
    return d or None


def from_domain(facts: MessageFacts) -> tuple[str | None, str]:
    """The RFC5322.From domain DMARC is about, or (None, why not)."""
    from email.utils import getaddresses

    values = facts.header_values("From")
    if len(values) != 1:
        return None, "no From" if not values else "several From headers"
    addrs = [a for _n, a in getaddresses(values) if a]
    domains = {d for d in (_domain_of(a) for a in addrs) if d}
    if len(domains) != 1:
        return None, "From has no single domain"
    return domains.pop(), ""


def aligned(a: str | None, b: str | None, mode: str) -> bool:
    if not a or not b:
        return False
    a, b = a.lower().rstrip("."), b.lower().rstrip(".")
    if mode == "s":
        return a == b
    ra, rb = registrable_domain(a), registrable_domain(b)
    return ra is not None and ra == rb


class AuthCheck(Check):
    """SPF, DKIM and DMARC for one message, sharing one resolver and one deadline."""

    name = "AUTH"
    stage = Stage.NORMAL

    def __init__(self, settings: InboundSettings, resolver: Resolver, timeout: float) -> None:
        self.settings = settings
        self.resolver = resolver
        self.query_timeout = timeout
        # SPF may need a few dependent rounds; DMARC waits for both.
        self.budget = timeout * 4
        self.timeout = self.budget + 1.0
        self.do_spf = settings.spf
        self.do_dkim = settings.dkim
        self.do_dmarc = settings.dmarc
        syms: list[SymbolDef] = []
        if self.do_spf:
            syms += [SymbolDef(v, "spf", f"SPF {k} (RFC 7208)") for k, v in SPF_SYMBOLS.items()]
        if self.do_dkim:
            syms += [SymbolDef(v, "dkim", f"DKIM {k} (RFC 6376)") for k, v in DKIM_SYMBOLS.items()]
        if self.do_dmarc:
            syms += [SymbolDef(v, "dmarc", _DESCRIBE[v]) for v in DMARC_SYMBOLS.values()]
        self.symbols = tuple(syms)

    # -- SPF -----------------------------------------------------------------------------------------

    def spf_inputs(self, facts: MessageFacts) -> tuple[str, str, str] | None:
        """(ip, mail_from, helo): the session's when a front end gave it, else the last external hop
        and Return-Path (scanning a stored message, as SpamAssassin does)."""
        env = facts.envelope
        if env.client_ip:
            return env.client_ip, env.mail_from or "", env.helo or ""
        le = facts.chain.last_external
        if le is None or not le.ip:
            return None
        rp = facts.header("Return-Path") or ""
        return le.ip, rp.strip().strip("<>"), le.helo or ""

    async def spf(self, facts: MessageFacts, deadline: float) -> SpfResult | None:
        inputs = self.spf_inputs(facts)
        if inputs is None:
            return None
        ip, sender, helo = inputs
        addr = parse_ip(ip)
        if addr is None or is_private(addr):
            return None
        identity = "mailfrom" if sender else "helo"
        domain = _domain_of(sender) if sender else (helo.lower() or None)
        fetched: dict[tuple[str, str], DnsAnswer] = {}
        missing: list[tuple[str, str]] = []

        def lookup(name: str, qtype: str) -> list[Any]:
            key = (name.lower().rstrip("."), qtype)
            ans = fetched.get(key) or self.resolver.cached(key[0], qtype)
            if ans is None:
                missing.append(key)
                return []
            return _spf_records(name, qtype, ans)

        result, expl = "temperror", "too many rounds"
        for _ in range(MAX_SPF_ROUNDS):
            missing.clear()
            token = _SPF_LOOKUP.set(lookup)
            try:
                q = spf.query(i=str(addr), s=sender, h=helo, timeout=self.query_timeout)
                result, _code, expl = q.check()
            finally:
                _SPF_LOOKUP.reset(token)
            if not missing:
                break
            todo = list(dict.fromkeys(missing))
            answers = await asyncio.gather(
                *(self.resolver.query(n, t, timeout=self.query_timeout, deadline=deadline) for n, t in todo)
            )
            fetched.update(zip(todo, answers, strict=True))
        return SpfResult(result, identity, domain, sender or helo, expl)

    # -- DKIM ----------------------------------------------------------------------------------------

    async def dkim(self, facts: MessageFacts, deadline: float) -> list[DkimResult]:
        sigs = [h.value for h in facts.headers if h.name.lower() == "dkim-signature"]
        sigs = sigs[: self.settings.max_dkim_signatures]
        if not sigs:
            return []
        tags = [parse_tags(s) for s in sigs]
        names = {f"{t.get('s', '')}._domainkey.{t.get('d', '')}".lower() for t in tags if t.get("s") and t.get("d")}
        keys = dict(
            zip(
                names,
                await asyncio.gather(
                    *(self.resolver.query(n, "TXT", timeout=self.query_timeout, deadline=deadline) for n in names)
                ),
                strict=True,
            )
        )

        def dnsfunc(name: bytes | str, timeout: float = 5) -> bytes | None:
            n = (name.decode("ascii", "replace") if isinstance(name, bytes) else name).lower().rstrip(".")
            ans = keys.get(n)
            if ans is None or not ans.ok:
                return None
            texts = ans.texts()
            return texts[0] if texts else None

        message = strip_mbox_from(facts.raw)
        d = dkim.DKIM(message, minkey=self.settings.dkim_minkey, logger=log)
        out: list[DkimResult] = []
        for idx, t in enumerate(tags):
            domain, selector = t.get("d", "").lower(), t.get("s", "").lower()
            if not domain or not selector:
                out.append(DkimResult("permerror", domain or "?", selector, "d= or s= missing"))
                continue
            ans = keys[f"{selector}._domainkey.{domain}"]
            if not ans.ok:
                out.append(DkimResult("temperror", domain, selector, f"key lookup {ans.error}"))
                continue
            if not ans.texts():
                out.append(DkimResult("permerror", domain, selector, "no key record"))
                continue
            try:
                ok = d.verify(idx=idx, dnsfunc=dnsfunc)
            except dkim.ValidationError as exc:
                # A body changed in transit is a signature that does not verify (fail); the other
                # validation errors are signatures that cannot be checked at all (permerror).
                res = "fail" if "body hash mismatch" in str(exc) else "permerror"
                out.append(DkimResult(res, domain, selector, str(exc)[:120]))
                continue
            except dkim.DKIMException as exc:
                out.append(DkimResult("permerror", domain, selector, str(exc)[:120]))
                continue
            except Exception as exc:  # dkimpy on hostile input: never the check's failure
                out.append(DkimResult("permerror", domain, selector, type(exc).__name__))
                continue
            out.append(DkimResult("pass" if ok else "fail", domain, selector))
        return out

    # -- DMARC ---------------------------------------------------------------------------------------

    async def dmarc_record(self, domain: str, deadline: float) -> tuple[dict[str, str] | None, str | None, bool]:
        """(tags, error, from_org): the record for the From domain, else for its organizational domain."""
        org = registrable_domain(domain)
        candidates = [domain] + ([org] if org and org != domain else [])
        for i, d in enumerate(candidates):
            ans = await self.resolver.query(f"_dmarc.{d}", "TXT", timeout=self.query_timeout, deadline=deadline)
            if not ans.ok:
                return None, ans.error, False
            recs = [t for t in ans.texts() if t.lower().startswith(b"v=dmarc1")]
            if len(recs) == 1:
                return parse_tags(recs[0].decode("utf-8", "replace")), None, i > 0
            if len(recs) > 1:
                return None, "several DMARC records", False
        return None, None, False

    @staticmethod
    def dmarc_evaluate(
        fdomain: str, tags: Mapping[str, str], from_org: bool, spf_res: SpfResult | None, dkims: Sequence[DkimResult]
    ) -> tuple[str, str]:
        """(DMARC_SYMBOLS key, option) for a domain with a record."""
        policy = tags.get("p", "").lower()
        if from_org and tags.get("sp"):
            policy = tags["sp"].lower()
        if policy not in ("none", "quarantine", "reject"):
            return "permerror", f"bad policy p={policy or '(missing)'}"
        spf_ok = (
            spf_res is not None
            and spf_res.result == "pass"
            and aligned(spf_res.domain, fdomain, tags.get("aspf", "r").lower()[:1])
        )
        dkim_ok = any(
            r.result == "pass" and aligned(r.domain, fdomain, tags.get("adkim", "r").lower()[:1]) for r in dkims
        )
        if spf_ok or dkim_ok:
            return "pass", "spf" if spf_ok else "dkim"
        return {"none": "fail_none", "quarantine": "quarantine", "reject": "reject"}[policy], f"policy={policy}"

    # -- the check -----------------------------------------------------------------------------------

    async def run(self, facts: MessageFacts, ctx: CheckContext) -> Sequence[Hit]:
        deadline = self.resolver.now() + self.budget
        need_spf = self.do_spf or self.do_dmarc
        need_dkim = self.do_dkim or self.do_dmarc
        fdomain, why = from_domain(facts) if self.do_dmarc else (None, "")

        async def nothing_spf() -> SpfResult | None:
            return None

        async def nothing_dkim() -> list[DkimResult]:
            return []

        async def nothing_dmarc() -> tuple[dict[str, str] | None, str | None, bool]:
            return None, None, False

        spf_res, dkims, (tags, derr, from_org) = await asyncio.gather(
            self.spf(facts, deadline) if need_spf else nothing_spf(),
            self.dkim(facts, deadline) if need_dkim else nothing_dkim(),
            self.dmarc_record(fdomain, deadline) if fdomain else nothing_dmarc(),
        )
        hits: list[Hit] = []
        if self.do_spf and spf_res is not None:
            prop = "smtp.mailfrom" if spf_res.identity == "mailfrom" else "smtp.helo"
            sym = SPF_SYMBOLS.get(spf_res.result, SPF_SYMBOLS["permerror"])
            hits.append(Hit(sym, (f"{prop}={spf_res.sender}",)))
        if self.do_dkim:
            if not dkims:
                hits.append(Hit(DKIM_SYMBOLS["none"]))
            by: dict[str, list[str]] = {}
            for r in dkims:
                by.setdefault(DKIM_SYMBOLS[r.result], []).append(f"header.d={r.domain}")
            hits += [Hit(s, tuple(dict.fromkeys(o))) for s, o in by.items()]
        if self.do_dmarc:
            hits.append(self._dmarc_hit(fdomain, why, tags, derr, from_org, spf_res, dkims))
        return hits

    def _dmarc_hit(
        self,
        fdomain: str | None,
        why: str,
        tags: dict[str, str] | None,
        derr: str | None,
        from_org: bool,
        spf_res: SpfResult | None,
        dkims: Sequence[DkimResult],
    ) -> Hit:
        if fdomain is None:
            return Hit(DMARC_SYMBOLS["permerror"], (why,))
        hf = f"header.from={fdomain}"
        if derr is not None:
            return Hit(DMARC_SYMBOLS["temperror"], (hf, derr))
        if tags is None:
            return Hit(DMARC_SYMBOLS["none"], (hf,))
        key, note = self.dmarc_evaluate(fdomain, tags, from_org, spf_res, dkims)
        return Hit(DMARC_SYMBOLS[key], (hf, note))


# -- Authentication-Results (RFC 8601) -----------------------------------------------------------------


def _prop(options: Sequence[str], key: str) -> list[str]:
    return [o.partition("=")[2] for o in options if o.startswith(key + "=")]


def authentication_results(verdict: Verdict, authserv_id: str = "") -> str | None:
    """The Authentication-Results header value for a verdict's SPF/DKIM/DMARC symbols, or None."""
    results: list[Any] = []
    for name, sym in verdict.symbols.items():
        if name not in AUTH_RESULTS:
            continue
        method, res = AUTH_RESULTS[name]
        if method == "spf":
            mf = _prop(sym.options, "smtp.mailfrom")
            helo = _prop(sym.options, "smtp.helo")
            results.append(
                authres.SPFAuthenticationResult(
                    result=res, smtp_mailfrom=mf[0] if mf else None, smtp_helo=helo[0] if helo else None
                )
            )
        elif method == "dkim":
            ds: list[str | None] = [*_prop(sym.options, "header.d")] or [None]
            results += [authres.DKIMAuthenticationResult(result=res, header_d=d) for d in ds]
        else:
            hf = _prop(sym.options, "header.from")
            results.append(authres.dmarc.DMARCAuthenticationResult(result=res, header_from=hf[0] if hf else None))
    if not results:
        return None
    order = {"spf": 0, "dkim": 1, "dmarc": 2}
    results.sort(key=lambda r: order.get(r.method, 9))
    header = authres.AuthenticationResultsHeader(authserv_id=authserv_id or socket.getfqdn(), results=results)
    return str(header).partition(": ")[2]


def with_authentication_results(verdict: Verdict, authserv_id: str = "") -> Verdict:
    """The verdict with an Authentication-Results header added to `headers` (for the front ends)."""
    value = authentication_results(verdict, authserv_id)
    if value is None:
        return verdict
    return dataclasses.replace(verdict, headers=(*verdict.headers, ("Authentication-Results", value)))
