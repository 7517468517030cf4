"""The outcome vocabulary, spelled once: what can become of an event, and why it was refused.

Every layer (ledger, dead letters, HTTP answers, metrics, the console) uses these names, so a
status or reason is never a bare string literal anywhere else. They are `StrEnum`s: each member
*is* its string, so it goes into SQL, JSON and metric labels unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from typing_extensions import TypedDict

if TYPE_CHECKING:
    from common.domain.movement import MovementData


class Status(StrEnum):
    """What became of one event (or of one replay of a dead letter)."""

    APPLIED = "applied"  # changed the stock now
    DUPLICATE = "duplicate"  # already in the ledger: an identical earlier delivery, or a parked record again
    REJECTED = "rejected"  # refused, with a Reason; kept as a dead letter


class Reason(StrEnum):
    """Why an event was refused."""

    INVALID = "invalid"  # fails validation (or is bytes the database cannot store)
    CONFLICT = "conflict"  # the same half was applied with other content, or the halves disagree
    INSUFFICIENT_STOCK = "insufficient_stock"  # a departure larger than the stock on hand


class FieldError(TypedDict):
    """One problem with an input: `field` is dotted (`data.quantity`) or a parameter name."""

    field: str
    message: str
    type: str


def field_error(name: str, message: str, kind: str) -> FieldError:
    return {"field": name, "message": message, "type": kind}


def dotted_field(loc: Sequence[int | str], *, whole: str = "body") -> str:
    """A validation error's location as one dotted name (`data.quantity`); `whole` when it is
    about the whole input. The one spelling of field names in every error we answer."""
    return ".".join(str(part) for part in loc) or whole


def describe_errors(errors: list[FieldError]) -> str:
    """The errors as one line: `data.quantity: must be >= 1; id: ...`."""
    return "; ".join(f"{e['field']}: {e['message']}" for e in errors)


@dataclass(frozen=True)
class Outcome:
    """What became of one event. `stock` is the (warehouse, product) stock right after it.

    `redelivered` marks a Kafka record an earlier delivery already decided (parked): its status
    stays what it was, so a redelivery never changes the books, and counts treat it as a repeat.
    """

    status: Status
    event: MovementData | None = None
    reason: Reason | None = None
    detail: str | None = None
    errors: list[FieldError] = field(default_factory=list)
    stock: int | None = None
    rejected_event_id: int | None = None
    redelivered: bool = False

    @property
    def counted_as(self) -> tuple[Status, Reason | None]:
        """The (outcome, reason) this delivery is counted under in metrics and outcome counts."""
        if self.redelivered:
            return Status.DUPLICATE, None
        return self.status, self.reason
