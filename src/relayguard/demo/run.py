"""The end-to-end demo: customers -> the ISP's relay (relayguard) -> the Internet -> a neighbour's MX.

1. Customers submit, in a seeded order; infected ones run a spam campaign between their own mail. The
   relay's relayguard judges each message, outbound detection finds the infected customers and
   containment holds their mail (Postfix's hold queue), then blocks them after `block_after_held`
   held messages and lists their addresses in the exploited-hosts zone its own DNSBL serves.
2. The abuse desk releases the legitimate customers that were held (a mistaken complaint, and any
   false positive of detection): their held mail leaves, and is checked byte for byte.
3. Every message that reached the Internet is replayed to a neighbour's relayguard, which trusts the
   ISP's relays and asks the published zone about the hop where each message entered the ISP: the
   spam that left before containment is refused, the neighbours' mail flows.
4. Accounting: every submitted message is delivered, held or refused with a reason, and the relay's
   replies, its queue, the Internet's mailbox and the decision log must all agree. Anything else is a
   problem and the demo exits non-zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relayguard.config import load_config, load_config_text
from relayguard.config.schema import Settings
from relayguard.containment.decisions import normalise_message_id
from relayguard.containment.service import Containment
from relayguard.containment.states import ContainmentState
from relayguard.core.actions import Action
from relayguard.demo.receiver import ZONE, DnsblThread, Receiver
from relayguard.demo.relay import RELAY_NAME, EmbeddedRelay, Relay, Reply, relay_pipeline
from relayguard.demo.world import Customer, Submission, World, body_digest, build_world, train_classifier
from relayguard.message.parse import parse_message
from relayguard.outbound.detector import OutboundDetector

log = logging.getLogger("relayguard.demo")

Progress = Callable[[str, int, int], None]  # (phase, done, total)
BLOCK_AFTER_HELD = 3
REFUSING = {Action.REJECT, Action.SOFT_REJECT, Action.DISCARD}


@dataclass(frozen=True)
class DemoConfig:
    samples: Path
    customers: int = 30
    infected: int = 4
    seed: int = 1
    mode: str = "auto"  # auto | postfix | embedded
    false_alarm: bool = True
    config: Path | None = None
    workdir: Path | None = None  # default: a temporary directory, removed afterwards


@dataclass
class Fate:
    sub: Submission
    reply: Reply | None = None
    relay: str = ""  # delivered | held | refused | deferred | unaccounted
    released: bool = False
    intact: bool | None = None
    receiver: str = ""  # accepted | refused
    receiver_reason: str = ""


@dataclass
class CustomerStory:
    customer: Customer
    first_spam_at: float | None = None
    spam_before_containment: int = 0
    contained_at: float | None = None
    contained_after: int | None = None  # spam messages submitted when containment came
    state: str = "normal"
    listed: bool = False


def resolve_mode(mode: str) -> tuple[str, str]:
    """(mode, why) for --mode auto|postfix|embedded."""
    from relayguard.demo.postfix import available

    if mode == "embedded":
        return "embedded", "asked for"
    why = available()
    if mode == "postfix":
        if why is not None:
            raise RuntimeError(f"--mode postfix: {why}")
        return "postfix", "asked for"
    return ("embedded", why) if why is not None else ("postfix", "Postfix is installed")


def relay_settings(base: Settings, data_dir: Path) -> Settings:
    from relayguard.containment.factory import containment_settings

    cs = containment_settings(base).model_copy(
        update={
            "relay": RELAY_NAME,
            "store": "sqlite",
            "shared_state": "memory",
            "sqlite_path": str(data_dir / "containment.sqlite3"),
            "listing_zone": ZONE,
            "listing_store": "sqlite",
            "listing_database": str(data_dir / "dnsbl.sqlite3"),
            "list_on_block": True,
            "block_after_held": BLOCK_AFTER_HELD,
        }
    )
    return base.model_copy(
        update={
            "storage": base.storage.model_copy(update={"data_dir": str(data_dir)}),
            # the classifier learns this run's training half only (the starter model may know the rest)
            "classifier": base.classifier.model_copy(update={"starter": False, "min_learned": 1}),
            # containment alone decides what happens to a suspect customer's mail (docs/containment.md)
            "outbound": base.outbound.model_copy(update={"suspect_action": "no action"}),
            # a loaded machine must not turn a seed's outcome into a timeout
            "pipeline": base.pipeline.model_copy(update={"budget": 120.0, "check_timeout": 120.0}),
            "containment": cs,
        }
    )


class Demo:
    def __init__(self, cfg: DemoConfig, progress: Progress | None = None) -> None:
        self.cfg = cfg
        self.progress = progress or (lambda phase, done, total: None)
        self.problems: list[str] = []
        self.notes: list[str] = []

    async def run(self) -> dict[str, Any]:
        cfg = self.cfg
        mode, why = resolve_mode(cfg.mode)
        self.notes.append(f"mode {mode} ({why})")
        own_tmp = cfg.workdir is None
        root = Path(tempfile.mkdtemp(prefix="relayguard-demo-")) if cfg.workdir is None else cfg.workdir
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o755)  # Postfix's unprivileged daemons must reach its queue below
        try:
            return await self._run(mode, root)
        finally:
            if own_tmp:
                shutil.rmtree(root, ignore_errors=True)

    async def _run(self, mode: str, root: Path) -> dict[str, Any]:
        cfg = self.cfg
        t_start = time.monotonic()
        self.progress("building the world", 0, 1)
        world = build_world(cfg.samples, cfg.customers, cfg.infected, cfg.seed, cfg.false_alarm)
        base = load_config(str(cfg.config)) if cfg.config else load_config_text("", "defaults")
        data = root / "relay"
        data.mkdir(exist_ok=True)
        settings = relay_settings(base, data)
        self.progress("training the classifier", 0, len(world.train))
        verdicts = train_classifier(settings, world.train, lambda d: parse_message(d, settings))
        self.notes.append(
            f"classifier: {getattr(verdicts, 'name', type(verdicts).__name__)} learned {len(world.train)} messages; "
            f"customers send the other half of the sample"
        )
        dnsbl = DnsblThread(data / "dnsbl.sqlite3")
        dnsbl.start()
        relay: Relay | None = None
        containment: Containment | None = None
        try:
            from relayguard.containment.factory import build

            detector = OutboundDetector.from_settings(settings)
            containment = build(settings, on_release=[detector.release])
            pipeline = relay_pipeline(settings, containment, detector, verdicts)
            if mode == "postfix":
                from relayguard.demo.relay import PostfixRelay

                relay = PostfixRelay(root / "postfix", settings, pipeline, containment, world.customers)
            else:
                relay = EmbeddedRelay(settings, pipeline, containment)
            return await self._story(world, relay, containment, dnsbl, root, mode, t_start)
        finally:
            if relay is not None:
                relay.close()
            if containment is not None:
                with contextlib.suppress(Exception):
                    containment.store.close()
                if containment.listings is not None and hasattr(containment.listings, "close"):
                    containment.listings.close()
            dnsbl.stop()

    # ---------------------------------------------------------------------------------------- the story

    async def _story(self, world: World, relay: Relay, c: Containment, dnsbl: DnsblThread, root: Path, mode: str,
                     t_start: float) -> dict[str, Any]:  # fmt: skip
        fates = [Fate(s) for s in world.plan]
        stories = [CustomerStory(cu) for cu in world.customers]
        alarm = [cu for cu in world.customers if cu.false_alarm]
        for cu in alarm:
            # the abuse desk acts on a complaint that will prove mistaken: the customer's mail waits
            c.command("hold", cu.identity, actor="abuse-desk", reason="complaint (later found mistaken)")
        c.poll()

        # 1. submissions
        spam_sent: Counter[int] = Counter()
        total = len(fates)
        for i, f in enumerate(fates):
            cu = world.customer_of(f.sub)
            st = stories[cu.idx]
            if f.sub.spam:
                spam_sent[cu.idx] += 1
                if st.first_spam_at is None:
                    st.first_spam_at = time.monotonic()
            f.reply = await relay.submit(f.sub, cu)
            if cu.infected and st.contained_at is None and c.shared.get_state(cu.identity).state.contained:
                st.contained_at = time.monotonic()
                st.contained_after = spam_sent[cu.idx]
            self.progress("customers submitting", i + 1, total)
        self.progress("waiting for the relay's queue", 0, 1)
        if not await relay.settle():
            self.problems.append("the relay's queue did not empty within 60 s")

        # 2. what happened at the relay
        self._relay_fates(fates, relay, c)
        infected_before_release = {s.customer.idx: c.shared.get_state(s.customer.identity).state for s in stories}

        # 3. the abuse desk releases legitimate customers that were held
        to_release = sorted(
            {world.customers[f.sub.customer].identity for f in fates
             if f.relay == "held" and not world.customers[f.sub.customer].infected}
            | {cu.identity for cu in world.customers if not cu.infected and
               c.shared.get_state(cu.identity).state.contained}
        )  # fmt: skip
        for who in to_release:
            c.command("release", who, actor="abuse-desk", reason="legitimate mail: false positive")
        released_qids: list[str] = []
        for r in c.poll():
            released_qids += r.released
        if to_release:
            self.progress("releasing held legitimate mail", 0, 1)
            await self._wait_released(relay, fates, set(to_release), world)
        self._relay_fates(fates, relay, c, after_release=True)

        # 4. the published zone agrees with containment (blocked customers listed, released ones delisted),
        # then the receiver
        receiver = Receiver(root / "receiver", dnsbl.port, ["127.0.0.1"])
        self.progress("waiting for the zone to publish", 0, 1)
        await self._wait_zone(receiver, stories, c)
        delivered = relay.delivered()
        replay = [f for f in fates if f.relay == "delivered"]
        for i, f in enumerate(replay):
            v = await receiver.check(delivered[normalise_message_id(f.sub.message_id)], "127.0.0.1")
            if v.action in REFUSING:
                f.receiver = "refused"
                sym = v.symbols.get("RBL_ISP_EXPLOITED")
                f.receiver_reason = (
                    f"RBL_ISP_EXPLOITED {','.join(sym.options)}" if sym else f"{v.action.value} score {v.score:.1f}"
                )
            else:
                f.receiver = "accepted"
            self.progress("the neighbour's MX checks what left the ISP", i + 1, len(replay))

        for s in stories:
            s.state = c.shared.get_state(s.customer.identity).state.value
            s.spam_before_containment = sum(
                1 for f in fates if f.sub.customer == s.customer.idx and f.sub.spam and f.relay == "delivered"
            )
        self._check_accounting(fates, relay, c, world)
        return self._report(world, fates, stories, mode, time.monotonic() - t_start, infected_before_release,
                            released_qids)  # fmt: skip

    def _relay_fates(self, fates: list[Fate], relay: Relay, c: Containment, after_release: bool = False) -> None:
        delivered = relay.delivered()
        held_mids: set[str] = set()
        for qid in relay.held_queue_ids():
            for d in c.store.by_queue_id(qid):
                if d.message_id:
                    held_mids.add(normalise_message_id(d.message_id))
        for f in fates:
            mid = normalise_message_id(f.sub.message_id)
            r = f.reply
            if r is None:
                f.relay = "unaccounted"
            elif not r.accepted:
                f.relay = "deferred" if 400 <= r.code < 500 else "refused"
            elif mid in delivered:
                if after_release and f.relay == "held":
                    f.released = True
                    f.intact = body_digest(delivered[mid]) == f.sub.digest
                f.relay = "delivered"
            elif mid in held_mids:
                f.relay = "held"
            else:
                f.relay = "unaccounted"

    async def _wait_released(self, relay: Relay, fates: list[Fate], who: set[str], world: World) -> None:
        want = {normalise_message_id(f.sub.message_id) for f in fates
                if f.relay == "held" and world.customers[f.sub.customer].identity in who}  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            await relay.settle()
            if want <= set(relay.delivered()):
                return
            await asyncio.sleep(0.3)
        self.problems.append(f"{len(want - set(relay.delivered()))} released messages did not leave within 60 s")

    async def _wait_zone(self, receiver: Receiver, stories: list[CustomerStory], c: Containment) -> None:
        want = {s.customer.address: c.shared.get_state(s.customer.identity).state is ContainmentState.BLOCKED
                for s in stories}  # fmt: skip
        deadline = time.monotonic() + 15
        while True:
            got = dict(zip(want, await asyncio.gather(*(receiver.listed(a) for a in want)), strict=True))
            if got == want or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        for s in stories:
            s.listed = got[s.customer.address]
            if s.listed != want[s.customer.address]:
                what = "blocked but not listed" if want[s.customer.address] else "listed but not blocked"
                self.problems.append(f"{s.customer.login} ({s.customer.address}) is {what} in the zone")

    # ---------------------------------------------------------------------------------------- accounting

    def _check_accounting(self, fates: list[Fate], relay: Relay, c: Containment, world: World) -> None:
        p = self.problems
        for f in fates:
            if f.relay == "unaccounted":
                p.append(f"message {f.sub.message_id} of {world.customer_of(f.sub).login} is unaccounted for")
            if f.released and not f.intact:
                p.append(f"released message {f.sub.message_id} did not arrive intact")
        ours = {normalise_message_id(f.sub.message_id) for f in fates}
        delivered = relay.delivered()
        n_delivered = sum(1 for f in fates if f.relay == "delivered")
        stray = set(delivered) - ours
        if stray:
            p.append(f"{len(stray)} messages reached the Internet that no customer submitted")
        if len(delivered) - len(stray) != n_delivered:
            p.append(f"the Internet got {len(delivered) - len(stray)} messages, the accounting says {n_delivered}")
        if relay.deliveries() != len(delivered):
            p.append(f"{relay.deliveries() - len(delivered)} messages reached the Internet more than once")
        held_q = relay.held_queue_ids()
        n_held = sum(1 for f in fates if f.relay == "held")
        if len(held_q) != n_held:
            p.append(f"the hold queue has {len(held_q)} messages, the accounting says {n_held}")
        logged = sum(len(c.store.held_unreleased(cu.identity, RELAY_NAME)) for cu in world.customers)
        if logged != n_held:
            p.append(f"the decision log knows {logged} held messages, the accounting says {n_held}")
        for f in fates:
            if f.relay == "refused" and not (f.reply and f.reply.text.strip()):
                p.append(f"message {f.sub.message_id} refused without a reason")

    # ---------------------------------------------------------------------------------------- report

    def _report(self, world: World, fates: list[Fate], stories: list[CustomerStory], mode: str, elapsed: float,
                states_before: dict[int, ContainmentState], released_qids: list[str]) -> dict[str, Any]:  # fmt: skip
        per: list[dict[str, Any]] = []
        for s in stories:
            cu = s.customer
            mine = [f for f in fates if f.sub.customer == cu.idx]
            role = "infected" if cu.infected else ("legit, mistaken complaint" if cu.false_alarm else "legit")
            per.append(
                {
                    "customer": cu.login,
                    "address": cu.address,
                    "role": role,
                    "submitted": len(mine),
                    "spam": sum(f.sub.spam for f in mine),
                    "delivered": sum(f.relay == "delivered" and not f.released for f in mine),
                    "released": sum(f.released for f in mine),
                    "held": sum(f.relay == "held" for f in mine),
                    "refused": sum(f.relay == "refused" for f in mine),
                    "deferred": sum(f.relay == "deferred" for f in mine),
                    "receiver_refused": sum(f.receiver == "refused" for f in mine),
                    "state_after_run": states_before[cu.idx].value,
                    "state": s.state,
                    "listed": s.listed,
                    "contained_after_spam": s.contained_after,
                    "seconds_to_containment": (
                        round(s.contained_at - s.first_spam_at, 2)
                        if s.contained_at is not None and s.first_spam_at is not None
                        else None
                    ),
                    "spam_left_before_containment": s.spam_before_containment if cu.infected else 0,
                }
            )
        infected = [p for p in per if p["role"] == "infected"]
        contained = [p for p in infected if p["contained_after_spam"] is not None]
        legit_fates = [f for f in fates if not world.customer_of(f.sub).infected]
        spam_fates = [f for f in fates if f.sub.spam]
        refusal_reasons = Counter(
            (f.reply.text if f.reply else "")[:90] for f in fates if f.relay in ("refused", "deferred")
        )
        receiver_reasons = Counter(f.receiver_reason.split(" ")[0] for f in fates if f.receiver == "refused")
        totals = {
            "submitted": len(fates),
            "delivered": sum(f.relay == "delivered" and not f.released for f in fates),
            "released_then_delivered": sum(f.released for f in fates),
            "held": sum(f.relay == "held" for f in fates),
            "refused": sum(f.relay == "refused" for f in fates),
            "deferred": sum(f.relay == "deferred" for f in fates),
            "unaccounted": sum(f.relay == "unaccounted" for f in fates),
        }
        seconds = sorted(p["seconds_to_containment"] for p in contained if p["seconds_to_containment"] is not None)
        left = sorted(p["spam_left_before_containment"] for p in infected)
        return {
            "mode": mode,
            "seed": world.seed,
            "customers": len(world.customers),
            "infected": len(infected),
            "infected_contained": len(contained),
            "infected_listed": sum(1 for p in infected if p["listed"]),
            "messages": totals,
            "legit": {
                "submitted": len(legit_fates),
                "refused_or_deferred_at_relay": sum(f.relay in ("refused", "deferred") for f in legit_fates),
                "held_then_released": sum(f.released for f in legit_fates),
                "released_intact": sum(bool(f.intact) for f in legit_fates),
                "still_held": sum(f.relay == "held" for f in legit_fates),
                "refused_by_receiver": sum(f.receiver == "refused" for f in legit_fates),
            },
            "spam": {
                "submitted": len(spam_fates),
                "left_the_isp": sum(f.relay == "delivered" for f in spam_fates),
                "held": sum(f.relay == "held" for f in spam_fates),
                "refused_at_relay": sum(f.relay == "refused" for f in spam_fates),
                "refused_by_receiver": sum(f.receiver == "refused" for f in spam_fates),
            },
            "receiver": {
                "replayed": sum(1 for f in fates if f.receiver),
                "accepted": sum(f.receiver == "accepted" for f in fates),
                "refused": sum(f.receiver == "refused" for f in fates),
                "reasons": dict(receiver_reasons),
                "example": next(
                    (
                        f"{f.sub.message_id} from {world.customer_of(f.sub).login}: {f.receiver_reason}"
                        for f in fates
                        if f.receiver == "refused" and f.sub.spam
                    ),
                    "",
                ),
            },
            "relay_refusal_reasons": dict(refusal_reasons),
            "time_to_containment_s": {
                "median": seconds[len(seconds) // 2] if seconds else None,
                "max": seconds[-1] if seconds else None,
            },
            "spam_left_before_containment": {
                "median": left[len(left) // 2] if left else None,
                "max": left[-1] if left else None,
            },
            "released_queue_ids": len(released_qids),
            "per_customer": per,
            "elapsed_s": round(elapsed, 1),
            "notes": self.notes,
            "problems": self.problems,
            "ok": not self.problems,
        }


def run_demo(cfg: DemoConfig, progress: Progress | None = None) -> dict[str, Any]:
    return asyncio.run(Demo(cfg, progress).run())
