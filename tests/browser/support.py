"""What the browser tests share: the operator token, the seeded week's ids, the page wrapper."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.support import PROJECT_ROOT, WEBHOOK, body

TOKEN = "console-operator-token"
PRODUCER_TOKEN = "console-producer-token"
SCREENSHOTS = PROJECT_ROOT / ("docs/console" if os.environ.get("CONSOLE_SCREENSHOTS") == "1"
                              else ".stack/console-screenshots")  # fmt: skip


@dataclass
class Week:
    """The ids of what `console_data` put in the database."""

    warehouses: dict[str, str]
    products: list[str]
    codes: dict[str, str] = field(default_factory=dict)  # warehouse name -> code
    delivered: list[str] = field(default_factory=list)
    in_transit: list[str] = field(default_factory=list)
    dead_letters: list[int] = field(default_factory=list)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def post(api: httpx.Client, env: dict[str, Any], expect: int = 200) -> dict[str, Any]:
    response = api.post(WEBHOOK, content=body(env))
    assert response.status_code == expect, response.text
    return response.json()


@dataclass
class Console:
    """One test's page, with what it saw: console errors, page errors, requests to other hosts."""

    page: Any
    base_url: str
    errors: list[str] = field(default_factory=list)
    offsite: list[str] = field(default_factory=list)
    expected_errors: list[str] = field(default_factory=list)

    def goto(self, path: str) -> Any:
        response = self.page.goto(self.base_url + path, wait_until="networkidle")
        assert response is not None and response.status == 200, (path, response and response.status)
        return response

    def expect_error(self, text: str) -> None:
        """A console error this test provokes on purpose (e.g. the 401 of a replay without token)."""
        self.expected_errors.append(text)

    def check(self) -> None:
        unexpected = [e for e in self.errors if not any(x in e for x in self.expected_errors)]
        assert self.offsite == [], f"requests left the machine: {self.offsite}"
        assert unexpected == [], f"console errors: {unexpected}"

    def screenshot(self, name: str, *, full_page: bool = False) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path
