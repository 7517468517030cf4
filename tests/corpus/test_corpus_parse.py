"""The corpus against `parse_event` alone: no services, so a regression shows up first here.

`parse_event` promises never to raise: a payload that makes it raise fails a webhook request with
a 500 and, worse, fails a whole Kafka batch again and again (a stuck partition).
"""

from __future__ import annotations

import pytest

from common.domain.events import Origin, parse_event
from tools.corpus import Case, accepted_cases, rejected_cases


def with_known_bugs(cases: tuple[Case, ...]) -> list[object]:
    """The cases as parameters, the ones `parse_event` still gets wrong marked strict xfail."""
    return [
        pytest.param(c, id=c.name, marks=pytest.mark.xfail(strict=True, reason=c.known_bug))
        if c.known_bug
        else pytest.param(c, id=c.name)
        for c in cases
    ]


@pytest.mark.parametrize("case", with_known_bugs(rejected_cases()))
def test_every_bad_payload_is_invalid_without_raising(case: Case) -> None:
    item = parse_event(case.body, Origin.kafka("corpus", 0, 1))

    assert not item.is_valid, f"{case.name} was accepted as a valid movement"
    assert item.errors, "an invalid payload must say why"
    for error in item.errors:
        assert set(error) >= {"field", "message", "type"}
        # The reason is about the payload, never a copy of it (no megabytes echoed back).
        assert len(error["message"]) < 300


def test_the_corpus_is_big_enough_to_mean_something() -> None:
    assert len(rejected_cases()) >= 40


def test_odd_but_valid_payloads_are_accepted() -> None:
    for case in accepted_cases():
        item = parse_event(case.body, Origin.webhook())
        assert item.is_valid, (case.name, item.errors)
        data = item.envelope.data  # type: ignore[union-attr]
        assert (data.movement_id, data.warehouse_id, data.product_id) == (
            case.movement_id,
            case.warehouse_id,
            case.product_id,
        )
