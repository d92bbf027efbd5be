"""The end-to-end demo in front of a real, private Postfix on loopback: customers submit over SMTP with
SASL from 127.0.1.x, relayguard's milter decides, held mail waits in Postfix's hold queue and a release
(`postsuper -H`) delivers it intact; the accounting must agree with Postfix's queue and the sink."""

from __future__ import annotations

import pytest

from relayguard.demo.postfix import available
from relayguard.demo.run import DemoConfig, run_demo

from .test_demo_embedded import SAMPLES, assert_demo_story

pytestmark = pytest.mark.peer


def test_postfix_demo_accounts_for_every_message() -> None:
    why = available()
    if why is not None:
        pytest.fail(f"{why} (scripts/apt-packages.txt; the Postfix demo runs as root in CI)")
    # no pytest tmp_path: its parents are private to root, and Postfix's unprivileged daemons must reach
    # the queue; the demo makes its own world-readable temporary directory
    cfg = DemoConfig(SAMPLES, customers=16, infected=3, seed=3, mode="postfix")
    r = run_demo(cfg)
    assert r["mode"] == "postfix"
    assert_demo_story(r)
    # the same story as the in-process path for the same seed
    embedded = run_demo(DemoConfig(SAMPLES, customers=16, infected=3, seed=3, mode="embedded"))
    assert embedded["messages"] == r["messages"]
    assert embedded["spam"] == r["spam"] and embedded["legit"] == r["legit"]
