"""Wait until the services the app needs accept TCP connections, or give up after a deadline.

    python infra/docker/wait_for.py [--timeout SECONDS] [postgres] [redis] [kafka]

Addresses come from the same settings the app uses (DATABASE_URL, REDIS_URL,
KAFKA_BOOTSTRAP_SERVERS via common.adapters.config), so the wait and the app can never disagree. Redis is
skipped when CACHE_ENABLED is false. Exit status 0 when all are reachable, 1 on timeout. Prints
host:port only, never a URL (which may carry a password).
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common.adapters.config import get_settings  # noqa: E402

SERVICES = ("postgres", "redis", "kafka")
DEFAULT_PORTS = {"postgres": 5432, "redis": 6379, "kafka": 9092}


def _url_address(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def _bootstrap_addresses(servers: str) -> list[tuple[str, int]]:
    addresses = []
    for server in filter(None, (s.strip() for s in servers.split(","))):
        host, _, port = server.rpartition(":") if ":" in server else (server, "", "")
        addresses.append((host.strip("[]") or server, int(port or DEFAULT_PORTS["kafka"])))
    return addresses


def targets(services: list[str]) -> dict[str, list[tuple[str, int]]]:
    """The addresses to probe per service; any one bootstrap server answering is enough for Kafka."""
    settings = get_settings()
    found: dict[str, list[tuple[str, int]]] = {}
    if "postgres" in services:
        found["postgres"] = [_url_address(settings.database_url, DEFAULT_PORTS["postgres"])]
    if "redis" in services and settings.cache_enabled:
        found["redis"] = [_url_address(settings.redis_url, DEFAULT_PORTS["redis"])]
    if "kafka" in services:
        found["kafka"] = _bootstrap_addresses(settings.kafka_bootstrap_servers)
    return found


def reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait(services: list[str], timeout: float, interval: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    pending = targets(services)
    while True:
        for name, addresses in list(pending.items()):
            if any(reachable(host, port) for host, port in addresses):
                shown = ", ".join(f"{host}:{port}" for host, port in addresses)
                print(f"wait_for: {name} is up ({shown})", flush=True)
                del pending[name]
        if not pending:
            return True
        if time.monotonic() >= deadline:
            for name, addresses in pending.items():
                shown = ", ".join(f"{host}:{port}" for host, port in addresses)
                print(f"wait_for: gave up on {name} ({shown}) after {timeout:.0f}s", file=sys.stderr)
            return False
        time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("services", nargs="*", help=f"any of {', '.join(SERVICES)} (default: all)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.services) - set(SERVICES))
    if unknown:
        parser.error(f"unknown service(s): {', '.join(unknown)}")
    return 0 if wait(args.services or list(SERVICES), args.timeout) else 1


if __name__ == "__main__":
    sys.exit(main())
