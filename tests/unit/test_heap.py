"""Start-up set aside from the garbage collector (bots.heap), once per process."""

from __future__ import annotations

import gc

from bots.heap import set_start_up_aside


def test_start_up_is_frozen_once_and_what_comes_after_is_still_collected() -> None:
    set_start_up_aside()
    frozen = gc.get_freeze_count()
    assert frozen > 10_000, "the imports' objects are out of the collector's reach"
    later = [object() for _ in range(1_000)]
    set_start_up_aside()
    assert gc.get_freeze_count() == frozen, "a second call freezes nothing more"
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle, later
    assert gc.collect() >= 1, "a cycle made after start-up is still found"
