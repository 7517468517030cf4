"""The bad-input corpus: named payloads every entry point must refuse cleanly.

Each `Case` is raw bytes as they would arrive in a webhook body or a Kafka record value. The rule
the corpus enforces everywhere: a bad payload is refused with a reason (HTTP 4xx with a JSON body,
or parked in `rejected_events`), it never becomes a 5xx, a traceback, or a stuck Kafka partition.

`accepted_cases()` holds the odd-but-valid payloads (an ignored 900 KiB extra field, a braced UUID,
...): they must be applied exactly once, which is as much a user-visible promise as the refusals.

Used by tests/corpus/ and the fault suite; builders return fresh ids on every call so repeated runs
against the same database never collide. By concept: `envelopes` (a valid envelope and the ways
to damage it), `rejected` (the refused payloads), `accepted` (the odd-but-valid ones),
`http_inputs` (requests beyond the body: headers, query parameters, paths).
"""

from __future__ import annotations

from tools.corpus.accepted import AcceptedCase, accepted_cases
from tools.corpus.envelopes import KIB, MIB, dump, envelope, valid_arrival
from tools.corpus.http_inputs import (
    CONSOLE_LIMIT_PAGES,
    CONSOLE_TIME_PARAMETERS,
    CROSS_SITE_HEADERS,
    EDGE_OF_RANGE_TIMES,
    STATIC_SPELLINGS,
    UNICODE_DIGIT_LIMITS,
    WEBHOOK_CONTENT_TYPES,
)
from tools.corpus.rejected import DEPTH, KNOWN_BUGS, WEBHOOK_LIMIT, Case, rejected_cases

__all__ = [
    "CONSOLE_LIMIT_PAGES",
    "CONSOLE_TIME_PARAMETERS",
    "CROSS_SITE_HEADERS",
    "DEPTH",
    "EDGE_OF_RANGE_TIMES",
    "KIB",
    "KNOWN_BUGS",
    "MIB",
    "STATIC_SPELLINGS",
    "UNICODE_DIGIT_LIMITS",
    "WEBHOOK_CONTENT_TYPES",
    "WEBHOOK_LIMIT",
    "AcceptedCase",
    "Case",
    "accepted_cases",
    "dump",
    "envelope",
    "rejected_cases",
    "valid_arrival",
]
