"""Scoring is pure configuration; the pipeline turns failures into _FAIL symbols and respects stages."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from relayguard.checks.api import Check, CheckContext, Hit, Stage, SymbolDef
from relayguard.config import load_config_text
from relayguard.core.actions import Action
from relayguard.message.facts import MessageFacts
from relayguard.message.parse import parse_message
from relayguard.pipeline import Pipeline
from relayguard.scoring.verdict import Scorer

CFG = """
[actions]
reject = 10
add_header = 5
greylist = -1
[groups.g]
max_score = 4
[scores]
A = 3
B = 3
C = 6
D = 1
"""


def defs(*names: str, group: str = "g") -> dict[str, SymbolDef]:
    return {n: SymbolDef(n, group, n) for n in names}


def test_thresholds_and_required_score() -> None:
    s = Scorer.from_settings(load_config_text(CFG))
    assert s.required_score == 10
    v = s.score([Hit("C")], defs("C", group="other"))
    assert v.action is Action.ADD_HEADER and v.score == 6
    v = s.score([Hit("C"), Hit("C", ("again",)), Hit("A")], {**defs("C", group="other"), **defs("A", group="x")})
    assert v.score == 9 and v.action is Action.ADD_HEADER
    assert v.symbols["C"].options == ("again",)


def test_group_cap_scales_the_group() -> None:
    s = Scorer.from_settings(load_config_text(CFG))
    v = s.score([Hit("A"), Hit("B")], defs("A", "B"))
    assert abs(v.score - 4.0) < 1e-9
    assert abs(v.symbols["A"].score - 2.0) < 1e-9


def test_factor_and_unknown_symbol_scores_zero() -> None:
    s = Scorer.from_settings(load_config_text(CFG))
    v = s.score([Hit("D", factor=0.5), Hit("NOT_CONFIGURED")], defs("D", group="y"))
    assert v.symbols["D"].score == 0.5
    assert v.symbols["NOT_CONFIGURED"].score == 0.0


def test_forced_action_wins_and_carries_message() -> None:
    s = Scorer.from_settings(load_config_text(CFG))
    v = s.score([Hit("D", force_action=Action.QUARANTINE, message="held for review")], defs("D"))
    assert v.action is Action.QUARANTINE and v.message == "held for review" and v.forced_by == "D"


class Slow(Check):
    name = "SLOW"
    symbols = (SymbolDef("SLOW_HIT", "t", "never reached"),)
    timeout = 0.05

    async def run(self, facts: MessageFacts, ctx: CheckContext) -> Sequence[Hit]:
        await asyncio.sleep(10)
        return [Hit("SLOW_HIT")]


class Broken(Check):
    name = "BROKEN"
    symbols = ()

    async def run(self, facts: MessageFacts, ctx: CheckContext) -> Sequence[Hit]:
        raise RuntimeError("secret internal detail")


class Liar(Check):
    name = "LIAR"
    symbols = (SymbolDef("LIAR_OK", "t", "declared"),)

    async def run(self, facts: MessageFacts, ctx: CheckContext) -> Sequence[Hit]:
        return [Hit("LIAR_OK"), Hit("NOT_DECLARED")]


class Decider(Check):
    name = "DECIDER"
    stage = Stage.PRE
    symbols = (SymbolDef("HELD", "t", "pre-filter decided"),)

    async def run(self, facts: MessageFacts, ctx: CheckContext) -> Sequence[Hit]:
        return [Hit("HELD", force_action=Action.QUARANTINE)]


class Post(Check):
    name = "POST"
    stage = Stage.POST
    symbols = (SymbolDef("SAW", "t", "post-filter saw earlier hits"),)

    async def run(self, facts: MessageFacts, ctx: CheckContext) -> Sequence[Hit]:
        return [Hit("SAW", tuple(sorted(h.symbol for h in ctx.hits)))]


def facts() -> MessageFacts:
    return parse_message(b"Subject: x\n\nbody\n", load_config_text(CFG))


async def test_timeout_and_exception_become_fail_symbols() -> None:
    p = Pipeline(load_config_text(CFG), [Slow(), Broken(), Liar()])
    v = await p.check(facts())
    assert v.symbols["SLOW_FAIL"].options == ("timeout",)
    assert v.symbols["BROKEN_FAIL"].options == ("RuntimeError",)
    assert "secret" not in str(v.as_json())
    assert "LIAR_OK" in v.symbols and "NOT_DECLARED" not in v.symbols


async def test_prefilter_decision_skips_later_stages() -> None:
    p = Pipeline(load_config_text(CFG), [Decider(), Post(), Liar()])
    v = await p.check(facts())
    assert v.action is Action.QUARANTINE
    assert set(v.symbols) == {"HELD"}


async def test_post_filter_sees_normal_hits() -> None:
    p = Pipeline(load_config_text(CFG), [Post(), Liar()])
    v = await p.check(facts())
    assert "LIAR_OK" in v.symbols["SAW"].options


def test_declared_symbols_include_fail_and_parser_symbols() -> None:
    p = Pipeline(load_config_text(CFG), [Liar()])
    names = {d.name for d in p.symbol_defs()}
    assert {"LIAR_OK", "LIAR_FAIL", "NUL_BYTES", "MIME_MALFORMED"} <= names
