"""A configured text that carries its own enhanced status code is not sent with a second one."""

from __future__ import annotations

from relayguard.frontends.milter_server import _reply


def test_text_with_its_own_status_code() -> None:
    r = _reply("550", "5.7.1", "5.7.0 Sending from this account is blocked")
    assert (r.code, r.status, r.text) == ("550", "5.7.0", "Sending from this account is blocked")


def test_plain_text_gets_the_default_code() -> None:
    r = _reply("550", "5.7.1", "spam")
    assert (r.status, r.text) == ("5.7.1", "spam")


def test_a_code_of_another_class_is_left_in_the_text() -> None:
    r = _reply("451", "4.7.1", "5.7.1 blocked")
    assert (r.status, r.text) == ("4.7.1", "5.7.1 blocked")
