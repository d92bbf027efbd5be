"""Message facts -> hashed feature indices.

Tokens are strings with a namespace prefix (`s:` subject word, `h:from:` header word, `u:d:` URL
domain ...), hashed with CRC-32 (stable across processes and machines, fast in C) into a 2**bits space.
Body words additionally give orthogonal sparse bigrams (OSB, as in CRM114 and Rspamd): every pair of
a word and one of the next four words, keyed by their distance. Pairs are combined from the word hashes
with numpy, so their cost does not grow with Python string work.

Other filters' verdict headers are never features: a model that learns `X-Spam-Flag: YES` learns the
other filter, and is useless (or poisoned) wherever that filter is absent or wrong.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from relayguard.message.facts import MessageFacts

# Bump when tokens or hashing change: a model learned with other features is meaningless.
FEATURES_VERSION = 3

# Verdicts, scores and traces of other filters (lower-case prefixes).
VERDICT_HEADER_PREFIXES: tuple[str, ...] = (
    "x-spam",
    "x-virus",
    "x-dspam",
    "x-bogosity",
    "x-rspamd",
    "x-crm114",
    "x-amavis",
    "x-mailscanner",
    "x-barracuda",
    "x-ironport-anti-spam",
    "x-proofpoint-spam",
    "x-microsoft-antispam",
    "x-forefront-antispam",
    "x-ms-exchange-organization-scl",
    "x-ham-report",
    "x-quarantine",
    "x-greylist",
    "x-policyd",
    "x-relayguard",
    "x-sa-",
    "x-antivirus",
    "x-filtered-by",
    "x-pmx",
    "x-cmae",
    "x-junk",
)

# Headers whose values are noise for content (unique ids, dates) or already covered elsewhere.
_SKIP_HEADERS = frozenset(
    {
        "date",
        "message-id",
        "content-length",
        "lines",
        "status",
        "x-status",
        "x-keywords",
        "x-uid",
        "x-uidl",
        "delivery-date",
        "content-transfer-encoding",
        "mime-version",
        "references",
        "in-reply-to",
    }
)
# Headers read word by word (the rest give only their presence and a short shape token).
_WORD_HEADERS = frozenset(
    {
        "subject",
        "from",
        "to",
        "cc",
        "reply-to",
        "return-path",
        "sender",
        "x-mailer",
        "user-agent",
        "content-type",
        "received",
        "list-id",
        "list-unsubscribe",
        "organization",
        "x-mailing-list",
        "precedence",
        "x-originating-ip",
        "errors-to",
        "x-priority",
        "x-msmail-priority",
        "importance",
    }
)

_WORD_RE = re.compile(r"[\w$€£¥!'.@-]+")
_STRIP = "'.-!@"
_MAX_WORD = 30
# Multipliers for combining two word hashes into a pair hash (odd 32-bit constants).
_PAIR_A = np.uint64(0x9E3779B1)
_PAIR_B = np.uint64(0x85EBCA77)
_PAIR_K = np.uint64(0xC2B2AE3D)


def is_verdict_header(name: str) -> bool:
    return name.lower().startswith(VERDICT_HEADER_PREFIXES)


def words(text: str, limit: int) -> list[str]:
    out: list[str] = []
    for w in _WORD_RE.findall(text.lower()):
        w = w.strip(_STRIP)
        if not w:
            continue
        if len(w) > _MAX_WORD:
            # Long runs (base64 junk, hashes) are kept as a shape, not as themselves.
            w = f"long:{w[:6]}:{len(w) // 10}"
        out.append(w)
        if len(out) >= limit:
            break
    return out


def _h(token: str) -> int:
    return zlib.crc32(token.encode("utf-8", "surrogatepass"))


def _bucket(n: int) -> str:
    """A coarse logarithmic bucket for counts and sizes."""
    return str(n.bit_length())


class FeatureExtractor:
    """Stateless apart from its knobs: safe to share between threads."""

    def __init__(
        self,
        bits: int = 22,
        max_body_words: int = 3000,
        osb_window: int = 2,
        header_words: bool = True,
        all_header_words: bool = False,
    ) -> None:
        self.bits = bits
        self.mask = (1 << bits) - 1
        self.max_body_words = max_body_words
        self.osb_window = osb_window
        self.header_words = header_words
        self.all_header_words = all_header_words

    # -- tokens ---------------------------------------------------------------------------------------
    def tokens(self, facts: MessageFacts) -> list[str]:
        """Every non-pair token, namespaced. Useful for explanations and tests."""
        toks: list[str] = ["\x00bias"]
        for h in facts.headers:
            name = h.name.lower()
            if name.startswith(VERDICT_HEADER_PREFIXES) or name in _SKIP_HEADERS:
                continue
            toks.append(f"H:{name}")
            if self.header_words and (name in _WORD_HEADERS or self.all_header_words):
                toks.extend(f"h:{name}:{w}" for w in words(h.value, 60))
                if name in ("from", "reply-to", "return-path", "sender", "to"):
                    toks.extend(f"h:{name}:@{d}" for d in _domains(h.value))
        mid = facts.message_id
        if mid:
            for d in _domains(mid):
                toks.append(f"mid:{d}")
        toks.extend(f"s:{w}" for w in words(facts.subject, 40))
        toks.append(f"m:ct:{facts.content_type.lower()}")
        toks.append(f"m:parts:{_bucket(facts.parts)}")
        # Text length, not message size: the size moves with headers that are not features (X-Spam-*).
        toks.append(f"m:tlen:{_bucket(len(facts.text) + len(facts.html_text))}")
        if facts.html and not facts.text:
            toks.append("m:html_only")
        for name, _opt in facts.defects:
            toks.append(f"m:defect:{name}")
        for u in facts.urls[:100]:
            toks.append(f"u:h:{u.host.lower()}")
            if u.domain:
                toks.append(f"u:d:{u.domain.lower()}")
            toks.append(f"u:src:{u.source}")
        toks.append(f"m:urls:{_bucket(len(facts.urls))}")
        for a in facts.attachments[:20]:
            toks.append(f"a:ct:{a.content_type.lower()}")
            if a.filename and "." in a.filename:
                toks.append(f"a:ext:{a.filename.rsplit('.', 1)[1].lower()[:10]}")
        return toks

    def body_words(self, facts: MessageFacts) -> list[str]:
        return words(facts.body_text, self.max_body_words)

    # -- hashing --------------------------------------------------------------------------------------
    def indices(self, facts: MessageFacts) -> npt.NDArray[np.uint32]:
        """Sorted unique feature indices (binary features: presence, not counts)."""
        singles = [_h(t) for t in self.tokens(facts)]
        bw = self.body_words(facts)
        wh = np.fromiter((_h(w) for w in bw), dtype=np.uint64, count=len(bw))
        parts: list[npt.NDArray[np.uint64]] = [np.asarray(singles, dtype=np.uint64), wh]
        if self.osb_window and len(wh) > 1:
            a_all = wh * _PAIR_A
            b_all = wh * _PAIR_B
            for k in range(1, self.osb_window + 1):
                if len(wh) <= k:
                    break
                parts.append((a_all[:-k] ^ b_all[k:]) + np.uint64(k) * _PAIR_K)
        allh = np.concatenate(parts)
        # Fold 64 bits down, then mask: the high bits of the products carry most of the mixing.
        allh = (allh ^ (allh >> np.uint64(29))) & np.uint64(self.mask)
        # sort + mask is several times faster than np.unique's hash path on these small arrays
        out = np.sort(allh.astype(np.uint32))
        if len(out) > 1:
            out = out[np.concatenate(([True], out[1:] != out[:-1]))]
        return out


def _domains(value: str) -> Iterable[str]:
    for m in re.finditer(r"@([a-z0-9.-]+\.[a-z]{2,})", value.lower()):
        d = m.group(1).strip(".")
        yield d
        parts = d.split(".")
        if len(parts) > 2:
            yield ".".join(parts[-2:])
