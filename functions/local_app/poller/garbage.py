"""The standalone poller's garbage collected between batches, not in the middle of them.

A batch of 1,000 records allocates tens of thousands of container objects that live until the
batch is committed, so the collector's automatic runs (every 2,000 allocations) walk them again
and again while they are all still alive, and promote them to older generations that are walked
again later: ~2-4 us of the poller's ~47 us per event (tools.bench.focused.poller with automatic
collection off). Between two loop iterations the batch is gone, its objects freed by their
reference counts, so collecting the young generations there finds almost nothing to walk.

Automatic collection is process-wide, so this is only for the poller's own process
(`__main__.prepare`), never a poller running inside another application. Cycles are still
collected: the young generations after every iteration (a poll that found nothing returns after
the poll timeout, and a failing one backs off at most `max_backoff`), the whole unfrozen heap
every FULL_EVERY_SECONDS.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

FULL_EVERY_SECONDS = 60.0


class BetweenBatches:
    """Automatic collection off from `start` to `stop`; `after_iteration` collects instead."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._full_at = clock()
        self._was_enabled = True

    def start(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._full_at = self._clock()

    def after_iteration(self) -> None:
        now = self._clock()
        if now - self._full_at >= FULL_EVERY_SECONDS:
            self._full_at = now
            gc.collect()
        else:
            gc.collect(1)

    def stop(self) -> None:
        if self._was_enabled:
            gc.enable()
