"""The starter model shipped in the package, so a fresh install gives verdicts.

`data/starter.model` was learned (online, every message in date order) from the Apache SpamAssassin
public corpus (https://spamassassin.apache.org/old/publiccorpus/; the corpus is distributed under
PDDL-1.0 / CC0 terms), with `bench/accuracy/make_starter.py`, then pruned to its strongest features to
stay small. It knows 2002-era mail: learn your own ham and spam on top of it.
"""

from __future__ import annotations

import logging
from importlib import resources

import numpy as np

from relayguard.classifier.exchange import FormatError, decode
from relayguard.classifier.features import FEATURES_VERSION
from relayguard.classifier.store import ModelDump, Store, today

log = logging.getLogger("relayguard.classifier")

STARTER_NAME = "starter.model"


def load_starter() -> ModelDump | None:
    try:
        data = resources.files("relayguard.classifier").joinpath("data", STARTER_NAME).read_bytes()
    except (FileNotFoundError, OSError):
        return None
    try:
        dump = decode(data)
    except FormatError as e:
        log.warning("starter model unreadable, not used: %s", e)
        return None
    if dump.info.features_version != FEATURES_VERSION:
        log.warning("starter model is for features version %d, not used", dump.info.features_version)
        return None
    return dump


def seed_if_empty(store: Store) -> bool:
    """Load the starter model into a store that has no model yet. True when it did."""
    if store.info() is not None:
        return False
    dump = load_starter()
    if dump is None:
        return False
    # Start the expiry clock at installation, not at the day the starter was built.
    days = np.full(len(dump.buckets), today(), dtype=np.uint32)
    store.load(ModelDump(dump.info, dump.buckets, dump.weights, dump.counts, days, dump.accs, ()))
    log.info("classifier seeded from the starter model (%d spam, %d ham learned)", dump.info.n_spam, dump.info.n_ham)
    return True
