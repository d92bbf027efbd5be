from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayguard.protocols import rspamd_http as rh
from relayguard.protocols.errors import RemoteProtocolError


def test_headers_map_to_envelope() -> None:
    req = rh.parse_check_headers(
        {
            "ip": ["IPv6:2001:db8::1"], "helo": ["pc1"], "hostname": ["h.isp.example"], "from": ["<a@isp.example>"],
            "rcpt": ["<b@x.example>", "c@y.example, <d@z.example>"], "user": ["cust1"], "queue-id": ["4AB"],
            "settings-id": ["outbound"], "pass": ["all"],
        }
    )  # fmt: skip
    assert req.ip == "2001:db8::1" and req.mail_from == "a@isp.example" and req.user == "cust1"
    assert req.rcpt == ("b@x.example", "c@y.example", "d@z.example")
    assert (req.queue_id, req.settings_id, req.pass_all, req.helo) == ("4AB", "outbound", True, "pc1")
    assert rh.parse_check_headers({}) == rh.CheckRequest()


def test_bounds() -> None:
    with pytest.raises(RemoteProtocolError):
        rh.parse_check_headers({"helo": ["x" * 5000]})
    with pytest.raises(RemoteProtocolError):
        rh.parse_check_headers({"rcpt": [",".join(f"r{i}@x" for i in range(10_001))]})


def test_reply_and_milter_block() -> None:
    block = rh.milter_block([("X-A", "1"), ("X-B", "2"), ("X-A", "3")], ["X-Spam"], "quarantine")
    assert block["add_headers"] == {"X-A": [{"value": "1", "order": 0}, {"value": "3", "order": 2}],
                                    "X-B": {"value": "2", "order": 1}}  # fmt: skip
    assert block["remove_headers"] == {"X-Spam": 0} and block["reject"] == "quarantine"
    reply = rh.check_reply(
        score=7.1234, required_score=15, action="add header", symbols=[rh.SymbolOut("S", 7.1234, "d", ("o",))],
        thresholds={"reject": 15.0}, message_id="<m@x>", milter=block,
    )  # fmt: skip
    assert reply["score"] == 7.123 and reply["message-id"] == "m@x"
    assert reply["symbols"] == {"S": {"name": "S", "score": 7.123, "metric_score": 7.123, "description": "d",
                                      "options": ["o"]}}  # fmt: skip
    json.dumps(reply)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from((*rh.KNOWN_HEADERS, "x")), st.lists(st.text(max_size=3000), max_size=4)))
def test_fuzz_headers(headers: dict[str, list[str]]) -> None:
    try:
        req = rh.parse_check_headers(headers)
    except RemoteProtocolError:
        return
    assert len(req.rcpt) <= rh.MAX_RCPTS
