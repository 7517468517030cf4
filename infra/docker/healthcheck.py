"""Container healthcheck of the local app: exit 0 when it answers HTTP, 1 otherwise.

GET http://127.0.0.1:${APP_PORT}${HEALTHCHECK_PATH:-/health} must return 2xx. If the app has no
such route (404), /openapi.json answering 2xx counts as healthy: uvicorn is serving the app.
Standard library only, so the check costs no import of the application.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def status(url: str, timeout: float = 3.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - fixed local URL
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def main() -> int:
    base = f"http://127.0.0.1:{os.environ.get('APP_PORT', '8000')}"
    code = status(base + os.environ.get("HEALTHCHECK_PATH", "/health"))
    if code == 404:
        code = status(base + "/openapi.json")
    return 0 if 200 <= code < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
