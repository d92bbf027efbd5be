"""Keeping the cyclic garbage collector off what a long-running server loaded at start-up."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """After start-up (and a reload): collect once, then move what survived (modules, configuration,
    models, zone data, listeners) out of the collector's sight. A server answering tens of thousands of
    requests a second would otherwise walk the whole start-up heap at every full collection: a pause of
    tens of milliseconds that every client waits through.

    Frozen objects are still freed by reference counting, but never as part of a garbage cycle: so
    everything is unfrozen first, and the collection also frees what a reload left behind in cycles
    (the old pipeline's)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
