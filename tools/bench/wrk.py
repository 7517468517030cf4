"""wrk, the HTTP rows' load generator: its Lua scripts, one run, and what a run measured.

The scripts count every answer (2xx or not) and their `done` hook prints the numbers as JSON on a
BENCH_JSON line. WEBHOOK_LUA makes every request a distinct valid movement event; STOCK_LUA picks a
random path from a file (the stock keys, or the no-op's one path).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass

from tools.bench.harness import OUT_DIR, log

WEBHOOK_LUA = r"""
-- Distinct valid events: alternately an arrival and a 1-unit departure of a new movement on one
-- of the pre-stocked keys (so no departure can ever be refused). Ids: nonce-thread-counter.
counter, ok2xx, bad = 0, 0, 0
local keys, threads = {}, {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
end

function init(args)
  for line in io.lines(args[1]) do
    local w, p = line:match("(%S+) (%S+)")
    keys[#keys + 1] = {w, p}
  end
  nonce = args[2]
  math.randomseed(tid * 7919 + os.time())
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local k = keys[math.random(#keys)]
  local id = string.format("%s-%04x-4000-8000-%012x", nonce, tid, counter)
  local kind, qty = "arrival", math.random(1, 100)
  if counter % 2 == 0 then kind, qty = "departure", 1 end
  local body = string.format(
    '{"id":"%s","source":"WH-0001","specversion":"1.0","type":"ru.retail.warehouses.movement",' ..
    '"datacontenttype":"application/json","time":1739865600000,"subject":"WH-0001:%s",' ..
    '"destination":"ru.retail.warehouses","data":{"movement_id":"%s","warehouse_id":"%s",' ..
    '"timestamp":"2025-02-18T08:00:00Z","event":"%s","product_id":"%s","quantity":%d}}',
    id, kind:upper(), id, k[1], kind, k[2], qty)
  return wrk.format(nil, nil, nil, body)
end
"""

STOCK_LUA = r"""
-- GET stock on the existing keys, picked at random.
counter, ok2xx, bad = 0, 0, 0
local paths, threads = {}, {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
end

function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  math.randomseed(tid * 7919 + os.time())
end

function request()
  counter = counter + 1
  return wrk.format("GET", paths[math.random(#paths)])
end
"""

COMMON_LUA = r"""
function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok2xx = ok2xx + 1
  else
    bad = bad + 1
    if bad <= 3 then io.stderr:write("non-2xx " .. status .. ": " .. (body or ""):sub(1, 300) .. "\n") end
  end
end

function done(summary, latency, requests)
  local generated, good, nbad = 0, 0, 0
  for _, t in ipairs(threads) do
    generated = generated + t:get("counter")
    good = good + t:get("ok2xx")
    nbad = nbad + t:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"generated":%d,"ok2xx":%d,"non2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    generated, good, nbad, e.connect, e.read, e.write, e.timeout))
end
"""


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    generated: int
    ok2xx: int
    non2xx: int
    socket_errors: int
    server_cpu_ms: float = float("nan")  # the server's processes (all workers) CPU per request
    postgres_cpu_ms: float = float("nan")
    redis_cpu_ms: float = float("nan")
    events_per_transaction: float = float("nan")  # webhook runs: log rows per inserting transaction


def ensure_wrk() -> str:
    """wrk's path, installing Debian's package when it is missing (we run as root)."""
    import shutil

    found = shutil.which("wrk")
    if found:
        return found
    log("wrk not found: apt-get install -y wrk")
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, capture_output=True, timeout=300)
    found = shutil.which("wrk")
    if not found:
        subprocess.run(["apt-get", "update"], check=False, capture_output=True, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True, timeout=300)
        found = shutil.which("wrk") or "wrk"
    return found


def run_wrk(
    url: str, script: str, args: list[str], *, connections: int, seconds: float, threads: int = 2
) -> WrkResult:
    """One wrk run; the Lua `done` hook prints the numbers as JSON on a BENCH_JSON line."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", dir=OUT_DIR, delete=False) as f:
        f.write(script + COMMON_LUA)
        lua = f.name
    try:
        cmd = [
            ensure_wrk(),
            f"-t{min(threads, connections)}",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            lua,
            url,
            "--",
            *args,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    finally:
        os.unlink(lua)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    if proc.stderr.strip():
        log("wrk: " + proc.stderr.strip()[:500])
    data = json.loads(line.split(" ", 1)[1])
    return WrkResult(
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        requests=data["requests"],
        generated=data["generated"],
        ok2xx=data["ok2xx"],
        non2xx=data["non2xx"],
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
    )


def paths_file(name: str, paths: list[str]) -> str:
    """A file of request paths, one a line, for STOCK_LUA."""
    path = OUT_DIR / f"paths-{name}.txt"
    path.write_text("\n".join(paths) + "\n")
    return str(path)
