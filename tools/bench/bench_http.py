"""HTTP benchmark of the local app with wrk: GET stock (cache warm, cache off) and webhook events/s.

    DATABASE_URL=postgresql://warehouse:warehouse@127.0.0.1:5432/api_dev \\
    REDIS_URL=redis://127.0.0.1:6379/2 .venv/bin/python tools/bench/bench_http.py [--workers 2]

Not a pytest test (no test_ prefix). It migrates DATABASE_URL, starts uvicorn itself (cache on,
then a second one with CACHE_ENABLED=false), seeds stock through the webhook, and runs wrk with a
Lua script whose `done` hook prints requests/s and latency percentiles as JSON. Before the runs it
checks one connection's latency: several uvicorn workers have left Nagle's algorithm on (uvicorn
issue #3149), which shows as ~40 ms per request on one keep-alive connection.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from common.adapters.db import connect  # noqa: E402
from common.adapters.migrate import migrate  # noqa: E402
from tools.chaos.procs import free_port  # noqa: E402
from tools.corpus import dump, envelope  # noqa: E402

LUA_DONE = r"""
done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "seconds": %.3f, "rps": %.1f, "p50_ms": %.3f, "p90_ms": %.3f,'
    .. ' "p99_ms": %.3f, "max_ms": %.3f, "non_2xx": %d, "socket_errors": %d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""

LUA_GET = r"""
paths = {%(paths)s}
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""

# Distinct valid arrivals: a fresh movement id per request, spread over many stock rows so the
# run measures ingestion rather than one row lock.
LUA_WEBHOOK = r"""
local warehouses = {%(warehouses)s}
local products = {%(products)s}
local counter = 0
local function uuid4()
  return (string.gsub("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", "[xy]", function(c)
    local v = (c == "x") and math.random(0, 15) or math.random(8, 11)
    return string.format("%%x", v)
  end))
end
setup = function(thread) thread:set("id", tostring(math.random(1, 1e9))) end
init = function(args) math.randomseed(os.time() + tonumber(id)) end
request = function()
  counter = counter + 1
  local body = string.format(
    '{"id":"%%s","source":"WH-BENCH","specversion":"1.0","type":"ru.retail.warehouses.movement",'
    .. '"data":{"movement_id":"%%s","warehouse_id":"%%s","product_id":"%%s","event":"arrival",'
    .. '"quantity":1,"timestamp":"2025-02-18T12:12:56Z"}}',
    uuid4(), uuid4(), warehouses[math.random(#warehouses)], products[math.random(#products)])
  return wrk.format("POST", "/api/v1/kafka/webhook", {["Content-Type"] = "application/json"}, body)
end
"""


def start_uvicorn(env: dict[str, str], workers: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "functions.local_app.main:app", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--no-access-log", "--http", "httptools",
               "--loop", "uvloop", "--workers", str(workers)]  # fmt: skip
    full_env = {**os.environ, "APP_MODE": "webhook_only", "POWERTOOLS_METRICS_DISABLED": "true", **env}
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError(f"uvicorn did not start:\n{log.read_text()}")


def cpu_seconds(root_pid: int) -> float:
    """User+system CPU of a process and its descendants (uvicorn workers), from /proc.

    On a shared machine wall-clock rates move with everyone else's load; CPU per request does not.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(cpu.get(pid, 0.0) for pid in tree)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def measured(
    pid: int, url: str, script: str, *, connections: int, threads: int, seconds: int
) -> dict[str, Any]:
    """A wrk run plus the app's CPU time per request over it."""
    before = cpu_seconds(pid)
    result = wrk(url, script, connections=connections, threads=threads, seconds=seconds)
    result["cpu_us_per_req"] = (cpu_seconds(pid) - before) / max(result["requests"], 1) * 1e6
    return result


def wrk(url: str, script: str, *, connections: int, threads: int, seconds: int) -> dict[str, Any]:
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script + LUA_DONE)
    try:
        result = subprocess.run(
            [binary, "-t", str(min(threads, connections)), "-c", str(connections), "-d", f"{seconds}s",
             "--timeout", "10s", "-s", lua.name, url],  # fmt: skip
            capture_output=True, text=True, timeout=seconds + 60, check=True,
        )  # fmt: skip
    finally:
        os.unlink(lua.name)
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("BENCH_JSON "))
    summary: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    return summary


def seed_stock(url: str, pairs: int) -> list[str]:
    """`pairs` stocked (warehouse, product) pairs; their GET paths."""
    paths = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(pairs):
            w, p = str(uuid.uuid4()), str(uuid.uuid4())
            env = envelope(event="arrival", warehouse_id=w, product_id=p, quantity=1000)
            assert client.post("/api/v1/kafka/webhook", content=dump(env)).status_code == 200
            paths.append(f"/api/v1/warehouse/{w}/products/{p}")
        for path in paths:  # warm the cache (no effect with the cache off)
            assert client.get(path).status_code == 200
    return paths


def row(name: str, r: dict[str, Any]) -> str:
    return (f"{name:<34} {r['rps']:>8.0f} {r['p50_ms']:>8.2f} {r['p90_ms']:>8.2f} {r['p99_ms']:>8.2f}"
            f" {r['cpu_us_per_req']:>8.0f} {r['non_2xx']:>8d} {r['socket_errors']:>8d}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument("--pairs", type=int, default=200, help="stock pairs the GET run spreads over")
    args = parser.parse_args()

    with connect() as conn:
        migrate(conn)
    logs = Path(tempfile.mkdtemp(prefix="bench-http-"))
    results: dict[str, dict[str, Any]] = {}
    warehouses = ", ".join(f'"{uuid.uuid4()}"' for _ in range(256))
    products = ", ".join(f'"{uuid.uuid4()}"' for _ in range(16))

    for cache in ("on", "off"):
        env = {"CACHE_ENABLED": "true" if cache == "on" else "false", "DB_POOL_MAX": "16"}
        process, url = start_uvicorn(env, args.workers, logs / f"uvicorn-cache-{cache}.log")
        try:
            paths = seed_stock(url, args.pairs)
            get_script = LUA_GET % {"paths": ", ".join(f'"{p}"' for p in paths)}
            one = measured(process.pid, url, get_script, connections=1, threads=1, seconds=3)
            results[f"GET stock, 1 connection, cache {cache}"] = one
            if one["p50_ms"] > 20:
                print(f"warning: one connection p50 {one['p50_ms']:.1f} ms: Nagle left on?", file=sys.stderr)
            results[f"GET stock, {args.connections} conns, cache {cache}"] = measured(
                process.pid,
                url,
                get_script,
                connections=args.connections,
                threads=args.threads,
                seconds=args.seconds,
            )
            if cache == "on":
                webhook_script = LUA_WEBHOOK % {"warehouses": warehouses, "products": products}
                results["webhook, 1 connection"] = measured(
                    process.pid, url, webhook_script, connections=1, threads=1, seconds=3
                )
                results[f"webhook, {args.connections} conns"] = measured(
                    process.pid,
                    url,
                    webhook_script,
                    connections=args.connections,
                    threads=args.threads,
                    seconds=args.seconds,
                )
        finally:
            stop(process)

    print(
        f"\nuvicorn --workers {args.workers} --http httptools --loop uvloop; wrk -t{args.threads}, "
        f"{args.seconds}s runs; {os.cpu_count()} CPUs shared by wrk, the app, PostgreSQL and Redis"
    )
    header = ("run", "req/s", "p50 ms", "p90 ms", "p99 ms", "cpu us", "non2xx", "sockerr")
    print(f"{header[0]:<34} " + " ".join(f"{h:>8}" for h in header[1:]))
    for name, result in results.items():
        print(row(name, result))
    print(f"(uvicorn logs in {logs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
