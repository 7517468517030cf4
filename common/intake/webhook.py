"""One event over HTTP: parse the body the webhook read, apply it in the next group commit, count it.

The webhook route is glue like the Kafka handler: it checks the caller and reads the body, calls
`receive`, and shapes the answer. Parsing is the Kafka path's (`parse_event`), and the outcome
metrics are recorded here for the webhook as `common.intake.kafka_records` records them for Kafka.
"""

from __future__ import annotations

import asyncio

from common.adapters.observability import record_outcomes
from common.domain.events import Origin, parse_event
from common.domain.outcomes import Outcome, Reason, Status
from common.intake.group_commit import ingest_one

# A body up to this size is parsed on the event loop (~30 us); a larger one in a thread.
INLINE_PARSE_BYTES = 16 * 1024


async def receive(raw: bytes) -> Outcome:
    """What became of the event in `raw`: rejected `invalid` (with the field errors; not stored),
    or the ledger's outcome once the group commit it joined has committed."""
    origin = Origin.webhook()
    if len(raw) <= INLINE_PARSE_BYTES:
        item = parse_event(raw, origin)
    else:
        item = await asyncio.to_thread(parse_event, raw, origin)
    if not item.is_valid:
        outcome = Outcome(Status.REJECTED, reason=Reason.INVALID, errors=item.errors)
    else:
        outcome = await ingest_one(item)
    record_outcomes([outcome], origin.kind)
    return outcome
