"""The standalone poller with a `poll()` that never returns once asked: a wedge, on purpose.

The first poller process that finds the file named by WAREHOUSE_TEST_WEDGE removes it and blocks
in `poll()` for good (as kafka-python's fetcher did on an undecodable batch); the supervisor's
watchdog must notice and start a fresh one, which does not wedge.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from kafka import KafkaConsumer

_poll = KafkaConsumer.poll


def _poll_or_wedge(self: Any, *args: Any, **kwargs: Any) -> Any:
    path = os.environ["WAREHOUSE_TEST_WEDGE"]
    try:
        os.remove(path)
    except FileNotFoundError:
        return _poll(self, *args, **kwargs)
    while True:  # never returns
        time.sleep(3600)


KafkaConsumer.poll = _poll_or_wedge

from functions.local_app.poller.__main__ import main  # noqa: E402  (after poll() is replaced)

sys.exit(main())
