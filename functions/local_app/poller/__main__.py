"""The standalone poller process: `python -m functions.local_app.poller`."""

from __future__ import annotations

import logging
import signal
import sys

from common.adapters import kafka_settings as kafka_client
from common.adapters.config import get_settings
from functions.local_app.poller.loop import Poller

logger = logging.getLogger("functions.local_app.poller")  # one logger for the package


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
    poller = Poller(settings)

    def _on_signal(signum: int, _frame: object) -> None:
        logger.info("signal %s received, stopping after the current batch", signal.Signals(signum).name)
        poller.request_stop()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    poller.run()
    from common.adapters.db import close_pool
    from common.dead_letters.outbox import close_producer

    close_producer()
    close_pool()
    return 0


if __name__ == "__main__":
    sys.exit(main())
