"""The baseline of row 4b: the webhook with one ledger transaction per event (the peer-like design).

That is how the webhook worked before group commit, and how a straightforward service would: each
request runs its own transaction in the thread pool. Everything else is the benchmark app
(tools/bench/bench_asgi.py). Served as `tools.bench.peer_like:app`; the project's code is not
changed, only the route module's reference to the group commit is replaced in this process.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

import functions.webhook.routes as routes
from common.domain.events import IncomingEvent
from common.domain.outcomes import Outcome
from common.ledger.use_cases import ingest
from tools.bench.bench_asgi import app


async def ingest_alone(item: IncomingEvent) -> Outcome:
    """One event, one transaction, in a thread of the pool."""
    [outcome] = await run_in_threadpool(ingest, [item])
    return outcome


routes.ingest_one = ingest_alone  # type: ignore[attr-defined]  # an import there, not an export

__all__ = ["app", "ingest_alone"]
