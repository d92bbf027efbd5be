"""`relayguard serve` and `dnsbl serve` freeze their heap after start-up (and reloads), keeping no
reload garbage."""

from __future__ import annotations

import gc
import weakref

from relayguard.core.heap import settle_heap


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_settle_heap_freezes_and_a_later_settle_frees_cycles_left_behind() -> None:
    try:
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle: only the collector can free it
        gone = weakref.ref(a)
        settle_heap()
        assert gc.get_freeze_count() > 0 and gone() is not None
        del a, b  # garbage now, but frozen (what the old pipeline is after a reload)
        gc.collect()
        assert gone() is not None  # frozen objects are out of the collector's sight...
        settle_heap()
        assert gone() is None  # ...until the next settle, which unfreezes first
    finally:
        gc.unfreeze()
