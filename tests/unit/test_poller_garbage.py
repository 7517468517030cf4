"""The standalone poller's collection between batches (functions/local_app/poller/garbage.py).

Automatic collection is off while it runs, so these check that cycles are still collected: a young
one after the loop iteration it was made in, an old one by the periodic full collection, and that
stopping gives the process its automatic collection back.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from functions.local_app.poller.garbage import FULL_EVERY_SECONDS, BetweenBatches


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


@pytest.fixture
def clock() -> Iterator[list[float]]:
    now = [1000.0]
    yield now
    gc.enable()


def test_a_cycle_made_during_an_iteration_is_gone_after_it(clock: list[float]) -> None:
    garbage = BetweenBatches(lambda: clock[0])
    garbage.start()
    assert not gc.isenabled()
    ref = weakref.ref(Node())
    assert ref() is not None  # automatic collection is off: nothing freed it yet
    garbage.after_iteration()
    assert ref() is None


def test_an_old_cycle_is_collected_by_the_periodic_full_collection(clock: list[float]) -> None:
    garbage = BetweenBatches(lambda: clock[0])
    garbage.start()
    node = Node()
    ref = weakref.ref(node)
    garbage.after_iteration()
    garbage.after_iteration()  # survived two collections of the young generations: it is old now
    del node
    garbage.after_iteration()
    assert ref() is not None  # the young collections do not walk the old generation
    clock[0] += FULL_EVERY_SECONDS
    garbage.after_iteration()
    assert ref() is None


def test_stopping_gives_the_process_its_automatic_collection_back(clock: list[float]) -> None:
    garbage = BetweenBatches(lambda: clock[0])
    garbage.start()
    garbage.stop()
    assert gc.isenabled()
