"""The standalone poller process: `python -m functions.local_app.poller`.

SIGTERM/SIGINT stop it within a few seconds whatever it is doing: the signals are taken by a
thread of their own (`sigwait`, so a main thread stuck in a client call cannot miss them), which
asks the loop to stop (the batch in hand finishes and is committed) and, if the loop has not
ended STOP_GRACE_SECONDS later, ends the process. That is safe: offsets are committed only after
a batch was applied, so a batch cut short is read again and the ledger makes the repeat a no-op.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading

from common.adapters import kafka_settings as kafka_client
from common.adapters.config import Settings, get_settings
from functions.local_app.poller.garbage import BetweenBatches
from functions.local_app.poller.loop import Poller

logger = logging.getLogger("functions.local_app.poller")  # one logger for the package

STOP_GRACE_SECONDS = 4.0
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
# Set by the supervisor (functions/local_app/serve.py) when it restarts a stalled poller.
RESTARTED_STALLED_ENV = "WAREHOUSE_POLLER_RESTARTED_STALLED"


def _stop_on_signal(poller: Poller) -> None:
    """One thread waits for the stop signals (blocked in every thread by then) and stops the poller."""

    def wait() -> None:
        signum = signal.sigwait(STOP_SIGNALS)
        logger.info("signal %s received, stopping after the current batch", signal.Signals(signum).name)
        poller.request_stop()
        if poller.stopped.wait(STOP_GRACE_SECONDS):
            return
        logger.warning("the poller did not stop within %.0f s: ending the process", STOP_GRACE_SECONDS)
        logging.shutdown()
        os._exit(3)

    threading.Thread(target=wait, name="poller-signals", daemon=True).start()


def prepare(settings: Settings) -> Poller:
    """The poller, built once everything it runs is imported; then the start-up heap is frozen.

    `gc.freeze()` moves every object alive now (modules, pydantic's and psycopg's tables: most of
    the heap) out of the collector's reach: a batch of 1,000 records allocates tens of thousands
    of container objects, so collections run many times a batch, and each older-generation one
    would walk that heap again for nothing. And while it runs, the poller collects between
    batches instead of during them (`garbage.BetweenBatches`). Measured in
    tools.bench.focused.poller: see docs/performance.md.
    """
    _import_hot_path()
    poller = Poller(settings)
    poller.garbage = BetweenBatches()
    gc.collect()
    gc.freeze()
    return poller


def _import_hot_path() -> None:
    """What the first batch would import lazily, imported before the freeze."""
    import kafka  # noqa: F401
    import kafka.errors  # noqa: F401
    import kafka.structs  # noqa: F401

    import common.adapters.db  # noqa: F401
    import common.dead_letters.outbox  # noqa: F401


def main() -> int:
    """Standalone poller: `python -m functions.local_app.poller`."""
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    try:
        kafka_client.validate(settings)
    except kafka_client.KafkaClientConfigError as exc:
        logger.error("%s", exc)
        return 2
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # before any other thread starts
    poller = prepare(settings)
    _stop_on_signal(poller)
    if os.environ.pop(RESTARTED_STALLED_ENV, None):
        from common.adapters import observability

        observability.count_stall_restart()
    poller.run()
    from common.adapters.db import close_pool
    from common.dead_letters.outbox import close_producer

    close_producer()
    close_pool()
    return 0


if __name__ == "__main__":
    sys.exit(main())
