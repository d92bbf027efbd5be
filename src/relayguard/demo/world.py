"""The demo's ISP in a box: customers, what each of them submits, and the content classifier.

Everything is drawn from one `random.Random(seed)`, so a seed gives the same customers, the same
messages in the same order, and (the processing being sequential) the same outcome.

The shipped sample is split as the simulator splits it: the classifier learns one half, the customers
send the other half, so no message is judged by a model that learned it. Legitimate customers send ham;
infected customers send a little ham of their own and then a spam campaign (a few templates with
hash-buster words appended, as spamware does) with forged senders to many domains.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("relayguard.demo")

ISP_DOMAIN = "isp.example"
MAX_BYTES = 128 * 1024
# Postfix's SMTP client folds lines over 998 bytes (and the sink refuses them): such a message could not
# be checked "intact" byte for byte, so the demo leaves the few of them out of the replay.
MAX_LINE = 990
# Trace headers a desktop mail client never writes: a fresh submission carries none of them.
TRACE = re.compile(
    rb"^(received|return-path|delivered-to|x-original-to|envelope-to|message-id|x-spam-[\w-]*|x-virus-[\w-]*"
    rb"|status|x-status|x-uid|x-keywords|x-mozilla-status2?|content-length|lines|x-loop)$",
    re.IGNORECASE,
)
HASH_BUSTER = "alpha bravo delta echo golf hotel india kilo lima mike oscar papa romeo sierra tango zulu".split()
MAX_CUSTOMERS = 250  # one 127.0.1.x address each


@dataclass(frozen=True)
class Customer:
    idx: int
    login: str
    password: str
    address: str  # the source address it submits from (127.0.1.x)
    infected: bool
    false_alarm: bool = False  # a legitimate customer the abuse desk holds by mistake

    @property
    def identity(self) -> str:
        """The customer as outbound detection and containment key it (SASL login)."""
        return f"login:{self.login}"

    @property
    def helo(self) -> str:
        return f"desktop-{self.idx:02d}.{ISP_DOMAIN}"


@dataclass(frozen=True)
class Submission:
    seq: int
    customer: int
    spam: bool
    mail_from: str
    rcpt_to: tuple[str, ...]
    message_id: str  # without angle brackets; unique per submission
    data: bytes  # the message as the customer's machine submits it (LF line ends)

    @property
    def digest(self) -> str:
        return body_digest(self.data)


def split_message(data: bytes) -> tuple[list[bytes], bytes]:
    """Header lines (folded continuations joined to their header) and the body."""
    data = data.replace(b"\r\n", b"\n")
    head, sep, body = data.partition(b"\n\n")
    if not sep:
        head, body = data, b""
    headers: list[bytes] = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and headers:
            headers[-1] += b"\n" + line
        elif line:
            headers.append(line)
    return headers, body


def body_digest(data: bytes) -> str:
    """SHA-256 of the body with line ends normalised and trailing white space dropped: what "intact" means."""
    _, body = split_message(data)
    return hashlib.sha256(body.rstrip()).hexdigest()[:16]


def fresh_submission(original: bytes, message_id: str, extra_text: str = "") -> bytes:
    """`original` without trace headers, with its own Message-ID; `extra_text` appended to the body."""
    headers, body = split_message(original)
    kept = [h for h in headers if not TRACE.match(h.split(b":", 1)[0].strip())]
    kept.append(f"Message-ID: <{message_id}>".encode())
    if extra_text:
        body = body.rstrip(b"\n") + b"\n" + extra_text.encode() + b"\n"
    return b"\n".join(kept) + b"\n\n" + body


def _usable(data: bytes) -> bool:
    if len(data) > MAX_BYTES or not data.strip():
        return False
    return all(len(line) <= MAX_LINE for line in data.replace(b"\r\n", b"\n").split(b"\n"))


def read_corpus(path: Path) -> list[bytes]:
    out = []
    for p in sorted(path.iterdir()):
        if p.is_file() and not p.name.startswith(".") and p.name != "cmds":
            data = p.read_bytes()
            if _usable(data):
                out.append(data)
    return out


@dataclass
class World:
    seed: int
    customers: list[Customer]
    plan: list[Submission]
    train: list[tuple[bytes, bool]]
    notes: list[str] = field(default_factory=list)

    def customer_of(self, sub: Submission) -> Customer:
        return self.customers[sub.customer]


def build_world(
    samples: Path,
    customers: int = 30,
    infected: int = 4,
    seed: int = 1,
    false_alarm: bool = True,
    campaign: tuple[int, int] = (8, 12),
    templates: int = 3,
) -> World:
    if not 1 <= customers <= MAX_CUSTOMERS:
        raise ValueError(f"--customers must be 1..{MAX_CUSTOMERS}")
    if not 0 <= infected <= customers:
        raise ValueError("--infected must be between 0 and --customers")
    rng = random.Random(seed)
    ham = read_corpus(samples / "ham")
    spam = read_corpus(samples / "spam")
    if len(ham) < 4 or len(spam) < 4:
        raise ValueError(f"need at least 4 ham and 4 spam messages in {samples}/{{ham,spam}}")
    rng.shuffle(ham)
    rng.shuffle(spam)
    nh, ns = len(ham) // 2, len(spam) // 2
    train = [(d, False) for d in ham[:nh]] + [(d, True) for d in spam[:ns]]
    rng.shuffle(train)  # an online learner must not see all ham first
    ham_pool, spam_pool = ham[nh:], spam[ns:]

    bad = set(rng.sample(range(customers), infected))
    legit = [i for i in range(customers) if i not in bad]
    alarm = rng.choice(legit) if false_alarm and legit else -1
    people = [
        Customer(
            i, f"c{i + 1:02d}@{ISP_DOMAIN}", f"pw-{rng.getrandbits(32):08x}", f"127.0.1.{i + 1}", i in bad, i == alarm
        )
        for i in range(customers)
    ]

    # (sort key, customer, spam, original bytes, hash-buster text)
    events: list[tuple[float, int, bool, bytes, str]] = []
    next_ham = 0

    def take_ham() -> bytes:
        nonlocal next_ham
        d = ham_pool[next_ham % len(ham_pool)]
        next_ham += 1
        return d

    campaign_templates = spam_pool[: max(1, min(templates, len(spam_pool)))]
    for c in people:
        for _ in range(rng.randint(1, 2) if c.infected else rng.randint(1, 3)):
            events.append((rng.random(), c.idx, False, take_ham(), ""))
        if c.infected:
            # a fast bot: from a moment of its own, a message every few ticks; mostly the campaign's
            # templates, some other spam, each copy made different by hash-buster words
            start = rng.uniform(0.05, 0.4)
            for j in range(rng.randint(*campaign)):
                tmpl = rng.choice(campaign_templates) if rng.random() < 0.75 else rng.choice(spam_pool)
                bust = " ".join(rng.sample(HASH_BUSTER, 4))
                events.append((start + j * rng.uniform(0.01, 0.05), c.idx, True, tmpl, bust))
    events.sort(key=lambda e: (e[0], e[1]))

    plan: list[Submission] = []
    for seq, (_, ci, is_spam, original, bust) in enumerate(events):
        c = people[ci]
        mid = f"demo-{seed}-{seq:04d}@{'bulk' if is_spam else 'mail'}.{ISP_DOMAIN}"
        if is_spam:
            # forged senders, 1-4 recipients at many domains
            word = rng.choice(["info", "sales", "offers", "admin"])
            sender = f"{word}{rng.randint(1, 999)}@promo{rng.randint(1, 50)}.example"
            rcpts = tuple(
                f"user{rng.randint(1, 9999)}@mx{rng.randint(1, 200)}.example" for _ in range(rng.randint(1, 4))
            )
        else:
            sender = c.login
            rcpts = tuple(
                f"friend{rng.randint(1, 40)}@neighbour{rng.randint(1, 5)}.example" for _ in range(rng.randint(1, 2))
            )
        plan.append(Submission(seq, ci, is_spam, sender, rcpts, mid, fresh_submission(original, mid, bust)))
    return World(seed, people, plan, train)


def train_classifier(settings: Any, train: list[tuple[bytes, bool]], parse: Any) -> Any:
    """The built-in classifier learning the training half (in the demo's private data dir); the
    simulator's small naive Bayes stand-in when the classifier cannot be loaded."""
    from relayguard.outbound.verdicts import ClassifierVerdicts, StandInNaiveBayes

    facts = [(parse(d), s) for d, s in train]
    try:
        from relayguard.classifier.api import Classifier

        clf = Classifier.open(settings)
        with clf.batch():
            for f, s in facts:
                clf.learn(f, s)
        return ClassifierVerdicts(clf)
    except Exception as exc:  # the demo must run even when the classifier cannot start
        log.warning("built-in classifier unavailable (%s: %s); using the stand-in", type(exc).__name__, exc)
        nb = StandInNaiveBayes()
        for f, s in facts:
            nb.learn(f, s)
        return nb
