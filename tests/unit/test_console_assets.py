"""The vendored front-end assets: unchanged since vendored, complete, and what the pages name."""

from __future__ import annotations

import asyncio
import re
import subprocess
from typing import Any
from uuid import UUID

import pytest

from common.reads.stock import product_prefix_range
from functions.console.assets import STATIC_DIR
from functions.http.offline_docs import REDOC_ASSETS, SWAGGER_UI_ASSETS
from tests.e2e.support import PROJECT_ROOT
from tools.corpus import STATIC_SPELLINGS

VENDOR = STATIC_DIR / "vendor"
TEMPLATES = PROJECT_ROOT / "functions" / "console" / "templates"


def test_vendored_files_match_their_recorded_sha256_sums() -> None:
    result = subprocess.run(
        ["bash", str(PROJECT_ROOT / "infra/scripts/vendor-assets.sh"), "--check"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    listed = {line.split()[1] for line in (VENDOR / "SHA256SUMS").read_text().splitlines()}
    # Every package travels with its licence.
    for package in {name.split("/")[0] for name in listed}:
        assert f"{package}/LICENSE" in listed, package


def test_the_docs_and_the_templates_name_only_vendored_files_that_exist() -> None:
    named = [f"{SWAGGER_UI_ASSETS}/swagger-ui-bundle.js", f"{SWAGGER_UI_ASSETS}/swagger-ui.css",
             f"{REDOC_ASSETS}/redoc.standalone.js", f"{SWAGGER_UI_ASSETS}/favicon-32x32.png"]  # fmt: skip
    for template in TEMPLATES.glob("*.html"):
        named += re.findall(r'"(/static/vendor/[^"]+)"', template.read_text())
    assert len(named) > 4
    for url in named:
        assert (STATIC_DIR / url.removeprefix("/static/")).is_file(), url


def test_no_vendored_file_loads_from_a_cdn() -> None:
    """The one URL ReDoc fetched at run time (its credit's logo) is patched out, and says so."""
    bundle = (VENDOR / REDOC_ASSETS.rsplit("/", 1)[1] / "redoc.standalone.js").read_text()
    assert "cdn.redoc.ly" not in bundle
    assert (VENDOR / REDOC_ASSETS.rsplit("/", 1)[1] / "PATCHED.txt").is_file()
    for path in VENDOR.rglob("*.css"):
        assert not re.search(r"url\(\s*['\"]?https?://", path.read_text()), path


def test_product_prefix_is_a_uuid_range() -> None:
    assert product_prefix_range(" 4705-204F ") == (
        UUID("4705204f-0000-0000-0000-000000000000"),
        UUID("4705204f-ffff-ffff-ffff-ffffffffffff"),
    )
    whole = UUID("4705204f-498f-4f96-b4ba-df17fb56bf55")
    assert product_prefix_range(str(whole)) == (whole, whole)
    assert product_prefix_range("") is None
    for bad in ("xyz", "4705204f498f4f96b4badf17fb56bf55aa", "47%"):
        with pytest.raises(ValueError):
            product_prefix_range(bad)


def _raw_get(app: Any, path: str) -> int:
    """GET `path` exactly as spelled (no client normalises it), through the app; the status."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"accept-encoding", b"gzip")], "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return int(next(m for m in sent if m["type"] == "http.response.start")["status"])


def test_a_static_file_has_one_spelling_and_the_cache_stays_bounded() -> None:
    """`vendor/./x`, `vendor//x`, ... (the corpus) are 404s, so no spelling caches another copy."""
    from functions.console import assets
    from functions.http.app import make_app

    app = make_app([assets.router], lambda_mode=True)
    file = "swagger-ui-dist@5.35.0/swagger-ui-bundle.js"
    assert _raw_get(app, f"/static/vendor/{file}") == 200
    cached = len(assets._assets)
    for spelling in STATIC_SPELLINGS:
        for n in range(3):  # a spelling repeated, or made longer, is no new entry either
            path = "/static/" + spelling.format(f=file).replace("/./", "/" + "./" * (n + 1), 1)
            assert _raw_get(app, path) == 404, path
    assert len(assets._assets) == cached
    assert cached <= len([p for p in STATIC_DIR.rglob("*") if p.is_file()]) <= assets.MAX_CACHED
