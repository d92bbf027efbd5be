from __future__ import annotations

import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relayguard.protocols import rspamc_legacy as legacy
from relayguard.protocols import spamd as sp
from relayguard.protocols.errors import NEED_DATA, RemoteProtocolError

MSG = b"Subject: hi\r\n\r\nbody\r\n"


def parse(data: bytes, eof: bool = True, max_bytes: int = 1 << 20) -> sp.Request | sp.ConnectionClosed:
    c = sp.SpamdConnection(max_bytes)
    c.receive_data(data)
    if eof:
        c.receive_data(b"")
    ev = c.next_event()
    assert ev is not NEED_DATA
    assert isinstance(ev, sp.Request | sp.ConnectionClosed)
    return ev


@pytest.mark.parametrize("version", ["1.2", "1.3", "1.4", "1.5"])
@pytest.mark.parametrize("command", ["CHECK", "SYMBOLS", "REPORT", "REPORT_IFSPAM", "PROCESS", "HEADERS"])
def test_requests_with_length(command: str, version: str) -> None:
    req = parse(sp.encode_request(command, MSG, version, {"User": "bob"}), eof=False)
    assert isinstance(req, sp.Request)
    assert (req.command, req.protocol, req.version_text, req.body) == (command, "SPAMC", version, MSG)
    assert req.header("user") == "bob"


def test_spamc_1_0_has_no_headers_and_ends_at_eof() -> None:
    req = parse(b"CHECK SPAMC/1.0\r\n" + MSG)
    assert isinstance(req, sp.Request) and req.body == MSG and req.headers == ()


def test_ping_old_and_new() -> None:
    assert isinstance(parse(b"PING SPAMC/1.2\r\n", eof=False), sp.Request)
    c = sp.SpamdConnection()
    c.receive_data(b"PING SPAMC/1.5\r\n")
    assert c.next_event() is NEED_DATA  # 1.5 sends an (empty) header block
    c.receive_data(b"\r\n")
    assert isinstance(c.next_event(), sp.Request)


def test_compressed_body_and_bomb() -> None:
    z = zlib.compress(MSG)
    req = parse(sp.encode_request("CHECK", z, headers={"Compress": "zlib"}), eof=False)
    assert isinstance(req, sp.Request) and req.body == MSG
    bomb = zlib.compress(b"a" * 100_000)
    with pytest.raises(sp.SpamdProtocolError) as e:
        parse(sp.encode_request("CHECK", bomb, headers={"Compress": "zlib"}), max_bytes=10_000)
    assert e.value.code == sp.ExitCode.EX_DATAERR


def test_rspamc_legacy_request_as_exim_sends_it() -> None:
    exim = (
        b"CHECK RSPAMC/1.3\r\nContent-length: %d\r\nQueue-Id: 1abc-000001-XY\r\nFrom: <s@isp.example>\r\n"
        b"Recipient-Number: 2\r\nRcpt: <a@x.example>\r\nRcpt: <b@y.example>\r\nHelo: pc1\r\n"
        b"Hostname: host1.isp.example\r\nIP: 198.18.0.1\r\nUser: cust1\r\n\r\n" % len(MSG)
    ) + MSG
    req = parse(exim, eof=False)
    assert isinstance(req, sp.Request) and req.protocol == "RSPAMC"
    env = legacy.envelope(req)
    assert env.rcpt_to == ("a@x.example", "b@y.example")
    assert (env.mail_from, env.ip, env.user, env.queue_id) == ("s@isp.example", "198.18.0.1", "cust1", "1abc-000001-XY")
    reply = legacy.check_reply(True, 16.2, 15.0, 15.0, "reject", {"A": (1.5, ["x", "y"]), "B": (0.0, [])})
    assert reply.startswith(b"RSPAMD/1.3 0 EX_OK\r\nMetric: default; True; 16.20 / 15.00 / 15.00\r\nAction: reject\r\n")
    assert b"Symbol: A(1.50); x,y\r\n" in reply


def test_reply_layouts_match_spamd() -> None:
    def req(cmd: str, v: str) -> sp.Request:
        r = parse(sp.encode_request(cmd, MSG, v), eof=False)
        assert isinstance(r, sp.Request)
        return r

    assert (
        sp.check_reply(req("CHECK", "1.5"), True, 7.25, 5.0) == b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 7.2 / 5.0\r\n\r\n"
    )
    # Exim's default variant sends REPORT SPAMC/1.2 and parses "Spam: %s ; %lf / %lf\r\n\r\n"
    assert sp.check_reply(req("REPORT", "1.2"), False, 1.0, 5.0, report="r") == (
        b"SPAMD/1.1 0 EX_OK\r\nSpam: False ; 1.0 / 5.0\r\n\r\nr"
    )
    assert sp.check_reply(req("SYMBOLS", "1.5"), False, 1.0, 5.0, symbols=["A", "B"]) == (
        b"SPAMD/1.1 0 EX_OK\r\nContent-length: 3\r\nSpam: False ; 1.0 / 5.0\r\n\r\nA,B"
    )
    assert sp.check_reply(req("REPORT_IFSPAM", "1.5"), False, 1.0, 5.0, report="r").endswith(
        b"Spam: No ; 1.0 / 5.0\r\n\r\n"
    )
    assert sp.check_reply(req("HEADERS", "1.5"), False, 1.0, 5.0, processed=b"A: b\r\n\r\nbody") == (
        b"SPAMD/1.1 0 EX_OK\r\nContent-length: 8\r\nSpam: False ; 1.0 / 5.0\r\n\r\nA: b\r\n\r\n"
    )
    assert sp.check_reply(req("PROCESS", "1.2"), False, 1.0, 5.0, processed=b"x") == (
        b"SPAMD/1.1 0 EX_OK\r\nContent-length: 1\r\n\r\nx"
    )
    assert sp.error_reply(sp.ExitCode.EX_TEMPFAIL) == b"SPAMD/1.0 75 Temporary failure: (try again later)\r\n"


def test_tell_headers() -> None:
    r = parse(sp.encode_request("TELL", MSG, headers={"Message-class": "spam", "Set": "local"}), eof=False)
    assert isinstance(r, sp.Request)
    assert sp.tell_headers(r) == ("spam", {"local"}, set())
    bad = parse(sp.encode_request("TELL", MSG, headers={"Set": "local", "Remove": "local"}), eof=False)
    assert isinstance(bad, sp.Request)
    with pytest.raises(sp.SpamdProtocolError):
        sp.tell_headers(bad)


@pytest.mark.parametrize(
    "data",
    [
        b"HELLO SPAMC/1.5\r\n\r\n",
        b"CHECK FOO/1.5\r\n\r\n",
        b"CHECK SPAMC/x\r\n\r\n",
        b"CHECK SPAMC/1.5\r\nno colon\r\n\r\n",
        b"CHECK SPAMC/1.5\r\nContent-length: -1\r\n\r\n",
        b"CHECK SPAMC/1.5\r\nContent-length: 100\r\n\r\nshort",
        b"CHECK SPAMC/1.5\r\nCompress: zlib\r\n\r\n",
        b"CHECK SPAMC/1.5\r\nContent-length: 5\r\nCompress: zlib\r\n\r\nnotz!",
        b"X" * 600,
        b"CHECK SPAMC/1.5\r\n" + b"A: b\r\n" * 300 + b"\r\n",
    ],
)
def test_bad_requests(data: bytes) -> None:
    with pytest.raises(sp.SpamdProtocolError):
        parse(data)


def test_closed_without_request() -> None:
    assert isinstance(parse(b""), sp.ConnectionClosed)


def test_too_large_refused_before_reading_it() -> None:
    c = sp.SpamdConnection(max_message_bytes=1000)
    c.receive_data(b"CHECK SPAMC/1.5\r\nContent-length: 5000\r\n\r\n")
    with pytest.raises(sp.SpamdProtocolError):
        c.next_event()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.binary(max_size=200), max_size=10),
    st.sampled_from([b"", b"CHECK SPAMC/1.5\r\n", b"CHECK RSPAMC/1.3\r\n"]),
)
def test_fuzz_never_crashes(chunks: list[bytes], prefix: bytes) -> None:
    c = sp.SpamdConnection(max_message_bytes=2048)
    try:
        for chunk in [prefix, *chunks]:
            if chunk:
                c.receive_data(chunk)
            if c.next_event() is not NEED_DATA:
                return
        c.receive_data(b"")
        c.next_event()
    except RemoteProtocolError:
        pass
