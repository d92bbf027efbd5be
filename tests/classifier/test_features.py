from __future__ import annotations

import numpy as np

from relayguard.classifier.api import strip_verdict_headers
from relayguard.classifier.features import FeatureExtractor, is_verdict_header
from relayguard.config.schema import Settings
from relayguard.message.parse import parse_message

MSG = (
    b"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: cheap pills today\r\n"
    b"Message-ID: <1@mail.example.org>\r\n"
    b"Content-Type: text/html\r\n\r\n"
    b"<p>Buy <b>cheap</b> pills at <a href='http://shop.pills.example.com/x'>our shop</a></p>\r\n"
)
VERDICTS = (
    b"X-Spam-Status: Yes, score=17.2 required=5.0 tests=BAYES_99\r\n"
    b"X-Spam-Flag: YES\r\nX-Virus-Scanned: clean\r\nX-DSPAM-Result: Spam\r\n"
    b"X-Bogosity: Spam, tests=bogofilter\r\nX-Rspamd-Score: 15\r\nx-spam-level: *****\r\n"
    b"X-Spam-Report: \r\n\t* 3.5 BAYES_99 body\r\n\t* 2.0 URIBL\r\n"
)


def facts(raw: bytes):  # type: ignore[no-untyped-def]
    return parse_message(raw, Settings())


def test_verdict_headers_are_never_features() -> None:
    fx = FeatureExtractor()
    plain = facts(MSG)
    marked = facts(VERDICTS + MSG)
    assert np.array_equal(fx.indices(plain), fx.indices(marked))
    assert not any("spam" in t.split(":")[1] for t in fx.tokens(marked) if t.startswith("H:"))


def test_is_verdict_header() -> None:
    for name in ("X-Spam-Status", "x-spam-flag", "X-Virus-Scanned", "X-DSPAM-Result", "X-Bogosity",
                 "X-Rspamd-Score", "X-Microsoft-Antispam"):
        assert is_verdict_header(name)
    for name in ("Subject", "X-Mailer", "Received", "List-Id"):
        assert not is_verdict_header(name)


def test_strip_verdict_headers_keeps_the_rest() -> None:
    out = strip_verdict_headers(VERDICTS + MSG)
    assert out == MSG
    # A body line that looks like a header is not touched.
    body_like = MSG + b"X-Spam-Flag: YES\r\n"
    assert strip_verdict_headers(body_like) == body_like


def test_tokens_cover_headers_html_text_and_urls() -> None:
    toks = FeatureExtractor().tokens(facts(MSG))
    assert "s:cheap" in toks
    assert "h:from:@example.org" in toks
    assert "u:d:example.com" in toks
    assert "m:html_only" in toks
    words = FeatureExtractor().body_words(facts(MSG))
    assert "pills" in words and "<b>" not in words


def test_indices_are_stable_sorted_and_in_range() -> None:
    fx = FeatureExtractor(bits=18)
    a = fx.indices(facts(MSG))
    b = FeatureExtractor(bits=18).indices(facts(MSG))
    assert np.array_equal(a, b)
    assert np.all(np.diff(a.astype(np.int64)) > 0)
    assert int(a.max()) < 1 << 18
    # The same message always hashes the same way (CRC-32, not Python's salted hash).
    assert len(a) > 10


def test_word_pairs_add_features() -> None:
    f = facts(MSG)
    assert len(FeatureExtractor(osb_window=2).indices(f)) > len(FeatureExtractor(osb_window=0).indices(f))


def test_empty_message() -> None:
    idx = FeatureExtractor().indices(facts(b"\r\n"))
    assert len(idx) >= 1
