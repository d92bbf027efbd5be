from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relayguard.protocols import milter as m
from relayguard.protocols.errors import NEED_DATA, LocalProtocolError, RemoteProtocolError

MTA = m.MtaSide


def session(conn: m.MilterConnection, data: bytes) -> tuple[list[object], bytes]:
    """Feed `data`, answer every event as the server does (Continue), return events and reply bytes."""
    conn.receive_data(data)
    events: list[object] = []
    out = b""
    for _ in range(10_000):
        ev = conn.next_event()
        if ev is NEED_DATA:
            break
        events.append(ev)
        if isinstance(ev, m.OptionNegotiation):
            out += conn.negotiate()
        elif isinstance(ev, m.EndOfMessage):
            out += conn.end_of_message([m.AddHeader("X-Test", "1")], m.Accept())
        elif conn.awaiting_reply:
            out += conn.send(m.Continue())
        if isinstance(ev, m.Quit | m.ConnectionClosed):
            break
    return events, out


def full_message(mta: m.MtaSide) -> bytes:
    return b"".join(
        [
            mta.optneg(),
            MTA.macro("C", {"j": "relay.isp.example", "{client_addr}": "198.18.0.7"}),
            MTA.connect("host7.cust.isp.example", "198.18.0.7", 41000),
            MTA.helo("desktop-7"),
            MTA.macro("M", {"i": "4ABC", "{auth_authen}": "cust7@isp.example"}),
            MTA.mail("<cust7@isp.example>", "SIZE=100"),
            MTA.rcpt("<a@example.org>"),
            MTA.rcpt("<b@example.net>"),
            MTA.simple("T"),
            MTA.header("From", "cust7@isp.example"),
            MTA.header("Subject", "hello\n\tfolded"),
            MTA.simple("N"),
            MTA.simple("B", b"line 1\r\n"),
            MTA.simple("B", b"line 2\r\n"),
            MTA.simple("E"),
            MTA.simple("Q"),
        ]
    )


def test_full_session_collects_the_message() -> None:
    mta = m.MtaSide()
    conn = m.MilterConnection()
    events, out = session(conn, full_message(mta))
    eom = next(e for e in events if isinstance(e, m.EndOfMessage))
    tx = eom.transaction
    assert tx.connect == m.Connect("host7.cust.isp.example", "4", 41000, "198.18.0.7")
    assert tx.helo == "desktop-7"
    assert tx.mail_from == "<cust7@isp.example>"
    assert tx.rcpt_to == ("<a@example.org>", "<b@example.net>")
    assert tx.macro("{auth_authen}") == "cust7@isp.example" and tx.macro("i") == "4ABC"
    assert tx.macro("client_addr") == "198.18.0.7"
    assert tx.raw_message() == (b"From: cust7@isp.example\r\nSubject: hello\r\n\tfolded\r\n\r\nline 1\r\nline 2\r\n")
    replies = mta.feed(out)
    cmds = [c for c, _ in replies]
    # optneg, then continue for C H M R R T N B B (headers: no reply, the MTA offered NR_HDR and we
    # took it), then the header and accept at end of message
    assert cmds == ["O"] + ["c"] * 9 + ["h", "a"]
    version, actions, steps = struct.unpack_from(">III", replies[0][1])
    assert m.Steps(steps) & m.Steps.NR_HDR
    assert version == 6
    assert m.Actions(actions) & m.Actions.SETSYMLIST
    assert b"{auth_authen}" in replies[0][1]  # macro lists asked for
    assert isinstance(events[-1], m.Quit)


def test_negotiation_respects_what_the_mta_offers() -> None:
    mta = m.MtaSide(version=2, actions=m.Actions.ADDHDRS, steps=m.Steps(0))
    conn = m.MilterConnection()
    _, out = session(conn, mta.optneg())
    (reply,) = mta.feed(out)
    version, actions, _ = struct.unpack_from(">III", reply[1])
    assert (version, actions) == (2, int(m.Actions.ADDHDRS))
    assert len(reply[1]) == 12  # no macro lists without SETSYMLIST
    # quarantine was not negotiated: asking for it is our bug, caught before it reaches the MTA
    conn.receive_data(MTA.connect("h", "1.2.3.4") + MTA.mail("<a@b>") + MTA.simple("E"))
    while not isinstance(conn.next_event(), m.EndOfMessage):
        conn.send(m.Continue())
    with pytest.raises(LocalProtocolError):
        conn.end_of_message([m.Quarantine("x")], m.Accept())


def test_no_reply_steps_and_abort() -> None:
    mta = m.MtaSide(steps=m.Steps.NR_HDR | m.Steps.NR_MAIL | m.Steps.NR_BODY)
    conn = m.MilterConnection()
    _, out = session(conn, mta.optneg())
    # We decide at end of message only: every no-reply step the MTA offers is taken.
    assert conn.steps == m.Steps.NR_HDR | m.Steps.NR_MAIL | m.Steps.NR_BODY
    events, out = session(conn, MTA.mail("<x@y>") + MTA.header("A", "b") + MTA.simple("B", b"x") + MTA.rcpt("<r@s>"))
    assert [c for c, _ in mta.feed(out)] == ["c"]  # only RCPT is answered
    session(conn, MTA.simple("A"))
    events, _out = session(conn, MTA.mail("<a@b>") + MTA.simple("A") + MTA.mail("<c@d>") + MTA.simple("E"))
    eom = events[-1]
    assert isinstance(eom, m.EndOfMessage) and eom.transaction.mail_from == "<c@d>"
    assert isinstance(events[1], m.Abort)


def test_replies() -> None:
    assert m._reply_bytes(m.ReplyCode("550", "5.7.1", "spam 100%\r\nX: y")) == m.packet(
        b"y", b"550 5.7.1 spam 100%% X: y\0"
    )
    with pytest.raises(LocalProtocolError):
        m.ReplyCode("250", "2.0.0", "ok")
    with pytest.raises(LocalProtocolError):
        m.ReplyCode("550", "4.7.1", "mismatch")
    assert m._modification_bytes(m.AddHeader("X-A", "a\r\nInjected: b")) == m.packet(b"h", b"X-A\0a\n\tInjected: b\0")


def test_send_out_of_turn_is_local_error() -> None:
    conn = m.MilterConnection()
    with pytest.raises(LocalProtocolError):
        conn.send(m.Continue())
    conn.receive_data(m.MtaSide().optneg() + MTA.helo("x"))
    conn.next_event()
    with pytest.raises(LocalProtocolError):
        conn.next_event()  # negotiation not answered yet


@pytest.mark.parametrize(
    "data",
    [
        struct.pack(">I", 0),
        struct.pack(">I", 1 << 30) + b"O",  # refused from the length prefix alone
        m.packet(b"O", b"\0\0\0\6"),
        m.MtaSide().optneg() + m.packet(b"Z"),
        MTA.helo("before negotiation"),
        m.MtaSide().optneg() + m.packet(b"C", b"host\0"),
        m.MtaSide().optneg() + m.packet(b"C", b"host\0X"),
        m.MtaSide().optneg() + m.packet(b"M"),
    ],
)
def test_bad_packets(data: bytes) -> None:
    conn = m.MilterConnection()
    with pytest.raises(RemoteProtocolError):
        session(conn, data)


def test_body_is_bounded_but_message_still_delivered() -> None:
    conn = m.MilterConnection(max_message_bytes=2048)
    chunks = b"".join(MTA.simple("B", b"x" * 1000) for _ in range(10))
    events, _ = session(conn, m.MtaSide().optneg() + MTA.mail("<a@b>") + chunks + MTA.simple("E"))
    tx = events[-1].transaction  # type: ignore[attr-defined]
    assert tx.truncated and len(tx.body) <= 2048


def test_eof_mid_packet() -> None:
    conn = m.MilterConnection()
    conn.receive_data(m.MtaSide().optneg()[:7])
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=300), max_size=15), st.booleans())
def test_fuzz_never_crashes(chunks: list[bytes], prefix: bool) -> None:
    conn = m.MilterConnection(max_packet=4096, max_message_bytes=4096)
    data = (m.MtaSide().optneg() if prefix else b"") + b"".join(chunks)
    try:
        if data:
            session(conn, data)
        session(conn, b"")  # end of input
    except RemoteProtocolError:
        pass
    assert conn.buffered <= len(data)


packets = st.one_of(
    st.builds(MTA.helo, st.text(max_size=30)),
    st.builds(MTA.mail, st.text(max_size=30)),
    st.builds(MTA.rcpt, st.text(max_size=30)),
    st.builds(MTA.header, st.text(min_size=1, max_size=20), st.text(max_size=50)),
    st.builds(lambda b: MTA.simple("B", b), st.binary(max_size=100)),
    st.builds(lambda d: MTA.macro("M", d), st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=5)),
    st.sampled_from([MTA.simple("N"), MTA.simple("T"), MTA.simple("A"), MTA.simple("E")]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(packets, max_size=30))
def test_fuzz_well_formed_packets_any_order(pkts: list[bytes]) -> None:
    conn = m.MilterConnection()
    with contextlib.suppress(RemoteProtocolError):  # e.g. an empty header name
        session(conn, m.MtaSide().optneg() + b"".join(pkts))
