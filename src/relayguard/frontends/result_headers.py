"""The headers a front end adds for a verdict: score and symbols, and Authentication-Results.

Spellings follow what downstream filters already read: SpamAssassin's `X-Spam-Status` and `X-Spam-Flag`
(Sieve scripts, MUAs), Rspamd's `X-Spamd-Result` layout (`default: False [score / required]; SYM(w)[opts]`)
and RFC 8601 `Authentication-Results` with the SASL login as `auth=pass smtp.auth=...`.
"""

from __future__ import annotations

from collections.abc import Iterable

from relayguard.config.schema import ActionSettings
from relayguard.core.actions import Action
from relayguard.scoring.verdict import Verdict

SPAM_ACTIONS = frozenset(
    {Action.ADD_HEADER, Action.REWRITE_SUBJECT, Action.SOFT_REJECT, Action.REJECT, Action.QUARANTINE, Action.DISCARD}
)

# Symbol names (Rspamd's spelling, used by relayguard's auth checks) -> (method, result).
_AUTH_SYMBOLS: dict[str, tuple[str, str]] = {
    "R_SPF_ALLOW": ("spf", "pass"), "R_SPF_FAIL": ("spf", "fail"), "R_SPF_SOFTFAIL": ("spf", "softfail"),
    "R_SPF_NEUTRAL": ("spf", "neutral"), "R_SPF_NA": ("spf", "none"), "R_SPF_DNSFAIL": ("spf", "temperror"),
    "R_SPF_PERMFAIL": ("spf", "permerror"),
    "R_DKIM_ALLOW": ("dkim", "pass"), "R_DKIM_REJECT": ("dkim", "fail"), "R_DKIM_TEMPFAIL": ("dkim", "temperror"),
    "R_DKIM_PERMFAIL": ("dkim", "permerror"), "R_DKIM_NA": ("dkim", "none"),
    "DMARC_POLICY_ALLOW": ("dmarc", "pass"), "DMARC_POLICY_REJECT": ("dmarc", "fail"),
    "DMARC_POLICY_QUARANTINE": ("dmarc", "fail"), "DMARC_POLICY_SOFTFAIL": ("dmarc", "fail"),
    "DMARC_NA": ("dmarc", "none"), "DMARC_DNSFAIL": ("dmarc", "temperror"),
}  # fmt: skip


def is_spam(verdict: Verdict) -> bool:
    return verdict.action in SPAM_ACTIONS


def fold(parts: Iterable[str], first: str, width: int = 78) -> str:
    """Join parts with spaces, folding (CRLF + tab) so no line grows past `width` where avoidable."""
    out = first
    line = len(first)
    for p in parts:
        if line + 1 + len(p) > width and line > 0:
            out += "\r\n\t" + p
            line = 8 + len(p)
        else:
            out += (" " if out else "") + p
            line += 1 + len(p)
    return out


def spam_threshold(actions: ActionSettings) -> float:
    """The lowest score that flags a message as spam (SpamAssassin's "required"): add header or above."""
    a = actions
    candidates = [t for t in (a.add_header, a.rewrite_subject, a.soft_reject, a.reject) if t >= 0]
    return min(candidates) if candidates else 0.0


def spam_status(verdict: Verdict, required: float | None = None) -> str:
    tests = ",".join(sorted(verdict.symbols)) or "none"
    flag = "Yes" if is_spam(verdict) else "No"
    req = verdict.required_score if required is None else required
    return f"{flag}, score={verdict.score:.2f} required={req:.2f} tests={tests}"


def spamd_result(verdict: Verdict) -> str:
    head = f"default: {is_spam(verdict)} [{verdict.score:.2f} / {verdict.required_score:.2f}];"
    syms = []
    for name, s in sorted(verdict.symbols.items()):
        opts = ",".join(o.replace(";", ",")[:60] for o in s.options[:5])
        syms.append(f"{name}({s.score:.2f})[{opts}];" if opts else f"{name}({s.score:.2f});")
    if syms:
        syms[-1] = syms[-1].rstrip(";")
    else:
        head = head.rstrip(";")
    return fold(syms, head)


def authentication_results(verdict: Verdict, authserv_id: str, sasl_username: str | None) -> str:
    results = []
    if sasl_username:
        results.append(f"auth=pass smtp.auth={_quote(sasl_username)}")
    seen = set()
    for name in sorted(verdict.symbols):
        m = _AUTH_SYMBOLS.get(name)
        if m and m[0] not in seen:
            seen.add(m[0])
            results.append(f"{m[0]}={m[1]}")
    if not results:
        return f"{authserv_id}; none"
    return fold([r + ";" for r in results[:-1]] + [results[-1]], f"{authserv_id};")


def _quote(value: str) -> str:
    if all(c.isalnum() or c in "!#$%&'*+-/=?^_`{|}~.@" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def result_headers(
    verdict: Verdict, authserv_id: str, sasl_username: str | None = None, spam_required: float | None = None
) -> list[tuple[str, str]]:
    """`spam_required`: the threshold X-Spam-Status shows (SpamAssassin's meaning); default the verdict's."""
    out = [
        ("X-Spamd-Result", spamd_result(verdict)),
        ("X-Spam-Status", spam_status(verdict, spam_required)),
    ]
    if is_spam(verdict):
        out.append(("X-Spam-Flag", "YES"))
    out.append(("Authentication-Results", authentication_results(verdict, authserv_id, sasl_username)))
    out.extend(verdict.headers)
    return out
