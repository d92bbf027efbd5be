from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relayguard.protocols.errors import NEED_DATA, LocalProtocolError, RemoteProtocolError
from relayguard.protocols.policy import (
    KNOWN_ATTRIBUTES,
    ConnectionClosed,
    PolicyAction,
    PolicyConnection,
    PolicyReply,
    PolicyRequest,
    encode_request,
    parse_reply,
)


def req(**attrs: str) -> bytes:
    base = {"request": "smtpd_access_policy", "protocol_state": "RCPT", "instance": "1.2.3"}
    base.update(attrs)
    return encode_request(base)


def events(conn: PolicyConnection) -> list[object]:
    out: list[object] = []
    for _ in range(1000):
        ev = conn.next_event()
        if ev is NEED_DATA:
            break
        out.append(ev)
        if isinstance(ev, ConnectionClosed):
            break
    return out


def test_full_request_every_attribute() -> None:
    attrs = {name: f"v-{name}" for name in KNOWN_ATTRIBUTES}
    attrs["request"] = "smtpd_access_policy"
    attrs["ccert_subject"] = "CN=a=b, O=x"  # '=' inside a value
    c = PolicyConnection()
    c.receive_data(encode_request(attrs))
    (ev,) = events(c)
    assert isinstance(ev, PolicyRequest)
    assert dict(ev.attrs) == attrs
    assert ev.get("missing") == ""


def test_byte_at_a_time_and_reuse() -> None:
    c = PolicyConnection()
    data = req(sasl_username="u1") + req(sasl_username="u2", instance="9")
    got: list[object] = []
    for i in range(len(data)):
        c.receive_data(data[i : i + 1])
        got.extend(events(c))
    assert [e.sasl_username for e in got if isinstance(e, PolicyRequest)] == ["u1", "u2"]
    c.receive_data(b"")
    assert isinstance(c.next_event(), ConnectionClosed)


def test_instance_ties_requests_of_one_message() -> None:
    c = PolicyConnection()
    for state in ("CONNECT", "EHLO", "MAIL", "RCPT", "RCPT", "DATA", "END-OF-MESSAGE"):
        c.receive_data(req(protocol_state=state, instance="aa"))
    c.receive_data(req(protocol_state="MAIL", instance="bb"))
    evs = [e for e in events(c) if isinstance(e, PolicyRequest)]
    assert [e.new_instance for e in evs] == [True] + [False] * 6 + [True]
    assert evs[-2].state == "END-OF-MESSAGE"


def test_reply_encoding_and_no_ok() -> None:
    assert PolicyReply(PolicyAction.DUNNO).to_bytes() == b"action=DUNNO\n\n"
    r = PolicyReply(PolicyAction.REJECT, "5.7.1 no\nmore\r\x00 lines")
    assert r.to_bytes() == b"action=REJECT 5.7.1 no more lines\n\n"
    assert PolicyReply(PolicyAction.PREPEND, "X-Relayguard: rate=3").to_bytes().startswith(b"action=PREPEND X-")
    with pytest.raises(LocalProtocolError):
        PolicyReply(PolicyAction.PREPEND, "not a header")
    assert "OK" not in PolicyAction.__members__
    assert parse_reply(b"action=defer_if_permit 4.7.1 slow down\n\n").action is PolicyAction.DEFER_IF_PERMIT


def test_send_requires_a_request() -> None:
    c = PolicyConnection()
    with pytest.raises(LocalProtocolError):
        c.send(PolicyReply(PolicyAction.DUNNO))
    c.receive_data(req())
    events(c)
    assert c.send(PolicyReply(PolicyAction.DUNNO)) == b"action=DUNNO\n\n"


@pytest.mark.parametrize(
    "data",
    [
        b"\n\n",
        b"garbage\n\n",
        b"=x\n\n",
        b"protocol_state=RCPT\n\n",  # no request=
        b"request=other\n\n",
        b"request=smtpd_access_policy\n=1\n\n",
    ],
)
def test_bad_requests_are_remote_errors(data: bytes) -> None:
    c = PolicyConnection()
    c.receive_data(data)
    with pytest.raises(RemoteProtocolError):
        c.next_event()


def test_bounded_request_size_and_attribute_count() -> None:
    c = PolicyConnection(max_request_bytes=1024)
    c.receive_data(b"a=" + b"x" * 2000)
    with pytest.raises(RemoteProtocolError, match="larger"):
        c.next_event()
    c = PolicyConnection(max_attributes=10)
    c.receive_data(b"request=smtpd_access_policy\n" + b"".join(b"a%d=1\n" % i for i in range(20)) + b"\n")
    with pytest.raises(RemoteProtocolError, match="attributes"):
        c.next_event()


def test_eof_mid_request() -> None:
    c = PolicyConnection()
    c.receive_data(b"request=smtpd_access_policy\n")
    c.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        c.next_event()


def test_utf8_values_with_bad_bytes_are_replaced() -> None:
    c = PolicyConnection()
    c.receive_data(b"request=smtpd_access_policy\nhelo_name=h\xc3\xa9\xff\n\n")
    ev = c.next_event()
    assert isinstance(ev, PolicyRequest)
    assert ev.get("helo_name") == "h\u00e9\ufffd"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=200), max_size=20))
def test_fuzz_never_crashes(chunks: list[bytes]) -> None:
    c = PolicyConnection(max_request_bytes=2048)
    closed = False
    try:
        for chunk in [*chunks, b""]:
            c.receive_data(chunk)
            for _ in range(100):
                ev = c.next_event()
                if ev is NEED_DATA:
                    break
                if isinstance(ev, ConnectionClosed):
                    closed = True
                    break
                assert isinstance(ev, PolicyRequest)
                c.send(PolicyReply(PolicyAction.DUNNO))
            if closed:
                break
    except RemoteProtocolError:
        pass
    assert c.buffered <= 2048 + 200


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"[a-z_]{1,20}", fullmatch=True),
        st.text(st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), max_size=50),
        max_size=30,
    )
)
def test_fuzz_roundtrip(attrs: dict[str, str]) -> None:
    attrs = {**attrs, "request": "smtpd_access_policy"}
    c = PolicyConnection()
    c.receive_data(encode_request(attrs))
    ev = c.next_event()
    assert isinstance(ev, PolicyRequest)
    assert dict(ev.attrs) == attrs


def _reference_parse(raw: bytes) -> dict[str, str] | None:
    """The request grammar written plainly (one line at a time): None where a request is refused."""
    text = raw.decode("utf-8", "replace").replace("\r\n", "\n")
    lines = text.split("\n")
    if len(lines) > 256 or any("=" not in line for line in lines):
        return None
    attrs = dict(line.split("=", 1) for line in lines)
    if "" in attrs or attrs.get("request") != "smtpd_access_policy":
        return None
    return attrs


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.text(alphabet="ab=\r\xe9_", min_size=1, max_size=8), max_size=12),
    st.booleans(),
    st.booleans(),
)
def test_fast_and_line_by_line_parses_agree(lines: list[str], with_request: bool, last: bool) -> None:
    """Simple requests (one "=" per line) take the one-split path, the others the per-line one: same
    attributes, same refusals."""
    if with_request:
        lines = [*lines, "request=smtpd_access_policy"] if last else ["request=smtpd_access_policy", *lines]
    raw = "\n".join(lines).encode()
    if not raw or raw.endswith(b"\n") or b"\n\n" in raw:
        return  # not one request block
    c = PolicyConnection()
    c.receive_data(raw + b"\n\n")
    want = _reference_parse(raw)
    if want is None:
        with pytest.raises(RemoteProtocolError):
            c.next_event()
        return
    ev = c.next_event()
    assert isinstance(ev, PolicyRequest)
    assert dict(ev.attrs) == want
