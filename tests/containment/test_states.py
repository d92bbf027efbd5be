from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relayguard.containment.states import (
    Actor,
    ContainmentState,
    Transition,
    TransitionError,
    action_for,
    check_transition,
    log_transition,
    make_transition,
)
from relayguard.core.actions import Action

S = ContainmentState


def test_each_state_in_every_front_ends_words() -> None:
    assert action_for(S.NORMAL).policy == "DUNNO"
    assert action_for(S.WATCHED).policy == "DUNNO"
    assert action_for(S.THROTTLED).policy == "DUNNO"  # within its allowance
    t = action_for(S.THROTTLED, over_throttle=True)
    assert (t.policy, t.milter, t.pipeline) == ("DEFER_IF_PERMIT", "tempfail", Action.SOFT_REJECT)
    h = action_for(S.HELD)
    assert (h.policy, h.milter, h.pipeline) == ("HOLD", "quarantine", Action.QUARANTINE)
    b = action_for(S.BLOCKED)
    assert (b.policy, b.milter, b.pipeline) == ("REJECT", "reject", Action.REJECT)
    assert b.text.startswith("5.7.1")


def test_whitelisted_is_dunno_never_ok() -> None:
    for over in (False, True):
        a = action_for(S.WHITELISTED, over_throttle=over)
        assert a.policy == "DUNNO" and a.milter == "accept" and a.pipeline is None
    assert all(action_for(s, over_throttle=True).policy != "OK" for s in S)


def test_detection_only_escalates() -> None:
    check_transition(S.NORMAL, S.WATCHED, Actor.DETECTION)
    check_transition(S.WATCHED, S.HELD, Actor.DETECTION)
    with pytest.raises(TransitionError):
        check_transition(S.HELD, S.THROTTLED, Actor.DETECTION)
    with pytest.raises(TransitionError):
        check_transition(S.WHITELISTED, S.BLOCKED, Actor.DETECTION)
    with pytest.raises(TransitionError):
        check_transition(S.NORMAL, S.WHITELISTED, Actor.DETECTION)


@given(st.sampled_from(list(S)), st.sampled_from(list(S)), st.sampled_from(list(Actor)))
def test_transition_rules(old: S, new: S, actor: Actor) -> None:
    try:
        check_transition(old, new, actor)
    except TransitionError:
        allowed = False
    else:
        allowed = True
    if old == new:
        assert not allowed
    elif actor is Actor.OPERATOR:
        assert allowed  # every step is reversible by an operator
    elif actor is Actor.DETECTION:
        assert allowed == (old is not S.WHITELISTED and new is not S.WHITELISTED and new.level > old.level)
    else:
        assert allowed == (new is not S.WHITELISTED and new.level < old.level)


def test_transition_log_line_is_greppable(caplog: pytest.LogCaptureFixture) -> None:
    tr = make_transition(
        "login:alice",
        S.WATCHED,
        S.HELD,
        100.0,
        Actor.DETECTION,
        "sequential test: compromised",
        {"sprt": {"llr": 4.7, "upper": 4.6}, "campaigns": [3]},
        "relay1",
    )
    with caplog.at_level(logging.INFO, logger="relayguard.containment"):
        log_transition(tr)
    line = caplog.records[-1].getMessage()
    assert 'customer="login:alice" from=watched to=held by=detection relay=relay1' in line
    assert json.loads(line.split("evidence=", 1)[1]) == {"campaigns": [3], "sprt": {"llr": 4.7, "upper": 4.6}}
    assert caplog.records[-1].levelno == logging.WARNING
    assert Transition.from_dict(tr.to_dict()) == tr
