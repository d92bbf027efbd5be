"""Property tests for what parses untrusted or operator input: DNS answers on the wire, list blocks,
answer codes, query names. Hostile input may be refused, never crash anything else."""

from __future__ import annotations

import contextlib
import ipaddress

import dns.message
import dns.rcode
import dns.rrset
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from relayguard.inbound import dnswire
from relayguard.inbound.dnsbl_lists import (
    SHIPPED,
    CompiledList,
    ListSpec,
    domain_query_name,
    ip_query_name,
    parse_code_range,
    shipped,
)
from relayguard.inbound.resolver import answer_from_decoded, answer_from_message
from relayguard.inbound.settings import InboundSettings

QNAME = "4.3.2.1.zen.rbl.test"


@given(st.binary(max_size=600), st.integers(0, 0xFFFF))
def test_decoder_refuses_garbage_with_wire_error_only(data, qid):
    with contextlib.suppress(dnswire.WireError):
        dnswire.decode_response(data, qid, QNAME, dnswire.TYPE_A)


def _response(addresses: list[str], ttl: int, rcode: int, soa: tuple[int, int] | None, qid: int) -> bytes:
    q = dns.message.make_query(QNAME, "A")
    q.id = qid
    r = dns.message.make_response(q)
    r.set_rcode(dns.rcode.Rcode.make(rcode))
    if addresses:
        r.answer.append(dns.rrset.from_text(QNAME + ".", ttl, "IN", "A", *addresses))
    if soa is not None:
        r.authority.append(dns.rrset.from_text("zen.rbl.test.", soa[0], "IN", "SOA", f"ns. host. 1 2 3 4 {soa[1]}"))
    return r.to_wire()


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=60, deadline=None)
@given(
    st.lists(st.ip_addresses(v=4).map(str), max_size=5, unique=True),
    st.integers(0, 2**31 - 1),
    st.sampled_from([0, 2, 3, 5]),
    st.none() | st.tuples(st.integers(0, 100_000), st.integers(0, 100_000)),
    st.integers(0, 0xFFFF),
    st.data(),
)
def test_decoder_agrees_with_dnspython(addresses, ttl, rcode, soa, qid, data):
    wire = _response(addresses if rcode == 0 else [], ttl, rcode, soa, qid)
    ours = answer_from_decoded(QNAME, 1, dnswire.decode_response(wire, qid, QNAME, dnswire.TYPE_A))
    theirs = answer_from_message(QNAME, 1, dns.message.from_wire(wire))
    assert (ours.rcode, ours.error, ours.ttl) == (theirs.rcode, theirs.error, theirs.ttl)
    assert sorted(ours.addresses()) == sorted(theirs.addresses())
    # Any single-byte corruption is either still a message or a WireError, nothing else.
    i = data.draw(st.integers(0, len(wire) - 1))
    bad = wire[:i] + bytes([data.draw(st.integers(0, 255))]) + wire[i + 1 :]
    with contextlib.suppress(dnswire.WireError):
        dnswire.decode_response(bad, qid, QNAME, dnswire.TYPE_A)


def test_decoder_refuses_an_answer_to_another_question_and_pointer_loops():
    wire = _response(["127.0.0.2"], 60, 0, None, 7)
    with pytest.raises(dnswire.WireError):
        dnswire.decode_response(wire, 7, "5.3.2.1.zen.rbl.test", dnswire.TYPE_A)
    with pytest.raises(dnswire.WireError):
        dnswire.decode_response(wire, 8, QNAME, dnswire.TYPE_A)
    loop = bytes(12) + b"\xc0\x0c"  # a name that points at itself
    loop = b"\x00\x07\x80\x00\x00\x01" + bytes(6) + b"\xc0\x0c\x00\x01\x00\x01"
    with pytest.raises(dnswire.WireError):
        dnswire.decode_response(loop, 7, QNAME, dnswire.TYPE_A)


def test_txt_strings_are_kept_apart_and_joined_by_texts():
    q = dns.message.make_query("sel._domainkey.sender.example", "TXT")
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text("sel._domainkey.sender.example.", 60, "IN", "TXT", '"v=DKIM1; " "p=abc"'))
    d = dnswire.decode_response(r.to_wire(), q.id, "sel._domainkey.sender.example", dnswire.TYPE_TXT)
    a = answer_from_decoded("sel._domainkey.sender.example.", 16, d)
    assert a.texts() == [b"v=DKIM1; p=abc"]


# -- list configuration ----------------------------------------------------------------------------------

_words = st.text(alphabet=st.characters(codec="ascii"), max_size=20)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 300)
    | _words
    | st.sampled_from(
        ["127.0.0.2", "127.0.0.4-127.0.0.7", "untrusted", "url", "domain", "ip", "RBL_X", "x.test", "127.0.0.1:53"]
    )
)
_rule = st.fixed_dictionaries(
    {"symbol": st.sampled_from(["RBL_X", "bad", ""])},
    optional={
        "codes": st.lists(_scalars, max_size=3),
        "bitmask": st.integers(-1, 300),
        "on": st.lists(_scalars, max_size=2),
    },
)
_values = _scalars | st.lists(_scalars, max_size=3) | st.lists(_rule, max_size=2)
_keys = st.sampled_from(
    ["name", "zone", "kind", "query", "rules", "errors", "ipv6", "timeout", "nameservers", "monitor_listed", "x"]
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=8))
def test_list_blocks_validate_or_refuse_cleanly(data):
    try:
        spec = ListSpec.model_validate(data)
    except ValidationError:
        return
    CompiledList.build(spec)  # whatever validates must compile


@given(st.sampled_from(sorted(SHIPPED)), st.dictionaries(_keys, _values, max_size=3))
def test_overrides_of_shipped_blocks_validate_or_refuse_cleanly(name, over):
    with contextlib.suppress(ValidationError):
        InboundSettings.model_validate({"use": [name], "override": {name: over}})


@given(st.text(max_size=40))
def test_code_ranges_parse_or_raise_value_error(text):
    try:
        lo, hi = parse_code_range(text)
    except ValueError:
        return
    assert 0 <= lo <= hi < 2**32


@given(st.text(max_size=40) | st.ip_addresses().map(str))
def test_interpret_never_raises_and_errors_never_list(answer):
    lst = CompiledList.build(shipped("spamhaus_zen"))
    m = lst.interpret(answer)
    assert m.kind in ("listed", "error", "unknown")
    try:
        addr = ipaddress.IPv4Address(answer)
    except ValueError:
        assert m.kind == "error"
        return
    if addr in ipaddress.IPv4Network("127.255.255.0/24") or addr not in ipaddress.IPv4Network("127.0.0.0/8"):
        assert m.kind == "error"


@given(st.ip_addresses())
def test_query_names_reverse_the_address(addr):
    q = ip_query_name(str(addr), "zen.rbl.test")
    assert q is not None and q.endswith(".zen.rbl.test")
    labels = q[: -len(".zen.rbl.test")].split(".")
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped  # ::ffff:a.b.c.d is asked as the IPv4 address it is
    if addr.version == 4:
        assert ".".join(reversed(labels)) == str(addr)
    else:
        assert len(labels) == 32
        assert ipaddress.IPv6Address(int("".join(reversed(labels)), 16)) == addr


@given(st.text(max_size=80))
def test_domain_query_names_are_valid_or_none(text):
    q = domain_query_name(text, "dbl.rbl.test")
    if q is not None:
        dnswire.encode_name(q)  # encodable: every label 1-63 octets, the whole under 255


def test_shipped_blocks_all_validate_and_keep_spamhaus_semantics():
    for name in SHIPPED:
        shipped(name)
    zen = CompiledList.build(shipped("spamhaus_zen"))
    by = {r.symbol: r for r in zen.rules}
    assert by["RBL_SPAMHAUS_XBL"].on == {"lastexternal"}
    assert by["RBL_SPAMHAUS_PBL"].on == {"lastexternal"} and by["RBL_SPAMHAUS_PBL"].skip_authenticated
    assert by["RBL_SPAMHAUS_SBL"].on == {"untrusted"}
    assert zen.interpret("127.255.255.254").kind == "error"
    assert zen.interpret("127.0.0.4").rules == (by["RBL_SPAMHAUS_XBL"],)
    dbl = CompiledList.build(shipped("spamhaus_dbl"))
    assert dbl.interpret("127.0.1.255").kind == "error"
    uribl = CompiledList.build(shipped("uribl_multi"))
    assert {r.symbol for r in uribl.interpret("127.0.0.6").rules} == {"URIBL_BLACK", "URIBL_GREY"}
    assert uribl.interpret("127.0.0.1").kind == "error"


def test_config_errors_are_readable():
    with pytest.raises(ValidationError, match="not a ip selector"):
        ListSpec.model_validate(
            {
                "name": "X_BL",
                "zone": "x.test",
                "query": ["url"],
                "rules": [{"symbol": "X_LISTED", "codes": ["127.0.0.2"]}],
            }
        )
    with pytest.raises(ValidationError, match="no shipped list"):
        InboundSettings.model_validate({"use": ["spamhaus_zne"]})
    with pytest.raises(ValidationError, match="used by both"):
        InboundSettings.model_validate({"use": ["spamhaus_zen"], "lists": [shipped("spamhaus_zen").model_dump()]})
