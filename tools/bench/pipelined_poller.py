"""What-if for the Kafka rows (`--whatif-pipelined-poller`): the local poller with `ApplyAhead`.

The poller (functions/local_app/poller.py) is another engineer's; this subclass shows, and lets the
benchmark measure, what it gains from decoding batch N+1 while batch N commits
(common/kafka_pipeline.py), without changing it: only its one-iteration step and its close are
replaced. Everything else (connecting, backoff, lag, signals) is the poller's own.

    python -m tools.bench.pipelined_poller      (what `serve --poller` starts for the what-if)
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from typing import Any

from common.config import get_settings
from common.kafka_batch import cluster_of
from common.kafka_pipeline import ApplyAhead, ApplyFailed, decode_polled
from functions.local_app import poller as base

logger = logging.getLogger(__name__)


class PipelinedPoller(base.Poller):
    """The poller, with the apply of batch N overlapping the poll and decode of batch N+1."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ahead = ApplyAhead()
        # The cluster name the MSK-shaped events carry, so record identities are the poller's own.
        self._cluster = cluster_of(base.build_event({}, self.settings.kafka_bootstrap_servers))

    def _step(self) -> None:
        consumer = self._consumer
        polled = consumer.poll(
            timeout_ms=self.settings.kafka_poll_timeout_ms, max_records=self.settings.kafka_batch_size
        )
        decoded = decode_polled(polled, self._cluster) if polled else None
        try:
            self._collect()
        except ApplyFailed as failed:
            self._rewind(polled)  # polled after the failed batch, never applied: read again too
            self._rewind(failed.token)  # last: where a partition is in both, its earlier offset wins
            raise base._BatchFailed from None
        if decoded is not None:
            self._ahead.submit(decoded, token=polled)
        self._maybe_report_lag()

    def _collect(self) -> None:
        """Wait for the batch in flight and commit it; ApplyFailed (nothing committed) if it failed."""
        try:
            finished = self._ahead.wait()
        except ApplyFailed as failed:
            self.failures += 1
            self.last_error = str(failed)
            logger.warning("kafka batch failed, will retry from the same offsets: %s", failed)
            raise
        if finished is None:
            return
        polled = finished.token
        self.batches += 1
        self.records += sum(len(b) for b in polled.values())
        try:
            self._consumer.commit(offsets=self._commit_offsets(polled), timeout_ms=base.REQUEST_BUDGET_MS)
        except Exception as exc:
            logger.warning("offset commit failed after a successful batch (will be redelivered): %s", exc)
        self._set_running()

    def _close(self, *, leave: bool) -> None:
        if self._ahead.busy and self._consumer is not None:
            # A failed batch is not committed: it comes again to whoever owns the partition next.
            with contextlib.suppress(ApplyFailed):
                self._collect()
        super()._close(leave=leave)


def main() -> int:
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    poller = PipelinedPoller(settings)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: poller.request_stop())
    poller.run()
    from common.db import close_pool

    close_pool()
    return 0


if __name__ == "__main__":
    sys.exit(main())
