"""The console pages' query parameters, fuzzed like Schemathesis fuzzes the API: no input answers 5xx.

The pages read their parameters by hand (they are not in /openapi.json, so Schemathesis never
reaches them). Hypothesis draws each page's parameters from arbitrary text and from values near
what the parsers accept (Unicode digits, times at the edges of the calendar with offsets,
durations, UUIDs, cursors); every answer must be below 500, and an HTML page.
"""

from __future__ import annotations

import os
import re
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.e2e.support import AppProcess

PAGES: dict[str, tuple[str, ...]] = {
    "/ui/": (),
    "/ui/warehouses": ("q", "limit", "cursor"),
    f"/ui/warehouses/{uuid.UUID(int=1)}": ("as_of", "limit", "cursor", "q"),
    "/ui/movements": ("status", "older_than", "limit", "cursor"),
    "/ui/losses": ("from", "to", "limit"),
    "/ui/dead-letters": ("reason", "movement_id", "unresolved", "limit", "cursor"),
    "/ui/go": ("id",),
}
NEAR: dict[str, list[str]] = {
    "limit": ["0", "1", "500", "501", "-1", "²", "١٢", "1e3", " 7", "9" * 30],
    "as_of": ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2025-02-18T14:00:00Z", "2025-13-01"],
    "from": ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2025-02-18", "yesterday"],
    "to": ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2025-02-18T14:00", "T"],
    "older_than": ["2h", "0h", "99999999999d", "-1h", "1y", "h"],
    "status": ["in_transit", "delivered", "arrival_only", "lost"],
    "reason": ["invalid", "conflict", "insufficient_stock", "bored"],
    "unresolved": ["1", "on", "true", "0"],
    "movement_id": [str(uuid.UUID(int=2)), "not-a-uuid", ""],
    "id": [str(uuid.UUID(int=3)), "x"],
    "cursor": ["", "AAAA", "x" * 201, "eyJrIjoiMSJ9"],
}
EXAMPLES = int(os.environ.get("CONSOLE_FUZZ_EXAMPLES", "40"))
OFFSET_AT_CALENDAR_EDGE = re.compile(r"^\s*(0001|9999)-.*[+-]\d\d:?\d\d\s*$")


def known_issue_20(params: dict[str, str]) -> bool:
    """The two console 500s issue 20 fixes (rows 6-7): a non-ASCII digit `limit`, and a year-1 or
    year-9999 time with an offset in as_of/from/to. Left out here until that fix lands; the lead
    removes this filter (and the xfail below) at merge."""
    limit = params.get("limit", "")
    if limit.isdigit() and not limit.isascii():
        return True
    return any(OFFSET_AT_CALENDAR_EDGE.match(params.get(name, "")) for name in ("as_of", "from", "to"))


def value_for(name: str) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(NEAR.get(name, [""])), st.text(max_size=40))


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    page = draw(st.sampled_from(sorted(PAGES)))
    names = draw(st.lists(st.sampled_from(PAGES[page]), unique=True)) if PAGES[page] else []
    return page, {name: draw(value_for(name)) for name in names}


@pytest.fixture(scope="module")
def client(app: AppProcess) -> Any:
    with httpx.Client(base_url=app.url, timeout=30) as c:
        yield c


def test_console_pages_never_answer_5xx(client: httpx.Client) -> None:
    @settings(
        max_examples=EXAMPLES * len(PAGES),
        deadline=None,
        derandomize=True,  # the same inputs every run: a failure reproduces
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(requests())
    def one(request: tuple[str, dict[str, str]]) -> None:
        page, params = request
        assume(not known_issue_20(params))
        response = client.get(page, params=params)
        assert response.status_code < 500, (page, params, response.status_code, response.text[:300])
        if response.status_code not in (303, 307, 308):
            assert response.headers["content-type"].startswith("text/html"), (page, params)

    one()


@pytest.mark.xfail(
    reason="issue 20 rows 6-7: fixed by the security helper's branch; remove at merge", strict=False
)
@pytest.mark.parametrize(
    ("page", "params"),
    [
        ("/ui/movements", {"limit": "²"}),
        ("/ui/losses", {"from": "0001-01-01T00:00:00+05:00"}),
        ("/ui/losses", {"to": "9999-12-31T23:59:59-05:00"}),
        (f"/ui/warehouses/{uuid.UUID(int=1)}", {"as_of": "0001-01-01T00:00:00+05:00"}),
    ],
)
def test_the_known_issue_20_inputs_answer_below_500(
    client: httpx.Client, page: str, params: dict[str, str]
) -> None:
    assert client.get(page, params=params).status_code < 500
