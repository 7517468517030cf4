"""Rows 5a-5e: GET stock under wrk, against same-run ceilings with the same worker count.

5a. GET stock on 1,000 existing keys at `--connections` on the `make run` server, cache warm
    (every key read once first), as a share of the bare ASGI callable (5e) and FastAPI's no-op (5d);
5b. the same with the cache off (CACHE_ENABLED=false, a server of its own);
5c. `GET /bench/noop`: a constant through the same app and middleware (tools/bench/bench_asgi.py);
5d. FastAPI's own async no-op route; 5e. a bare ASGI callable answering the constant.

One connection's latency first (uvicorn #3149: Nagle left on with several workers). The servers
of 5a and 5c-5e are up at once and their runs interleaved, so drift hits all alike.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict

from tools.bench.harness import Config, Report, Row, log, med, spread, truncate, verdict
from tools.bench.rows.webhook import cpu, latency
from tools.bench.servers import NOOP_PATH, STOCK_PATH, Server, seed_stock_keys, single_connection, warm_cache
from tools.bench.wrk import STOCK_LUA, WrkResult, paths_file

TARGETS = {"stock_p99_ms": 15.0, "stock_share": 0.50}


def run(cfg: Config, report: Report) -> None:
    truncate()
    keys = seed_stock_keys(1000, 1_000)
    stock_paths = paths_file("stock", [STOCK_PATH.format(w=w, p=p) for w, p in keys])
    noop_paths = paths_file("noop", [NOOP_PATH])
    secs, conns, workers = cfg.http_seconds, cfg.connections, cfg.http_workers
    runs: dict[str, list[WrkResult]] = {k: [] for k in ("warm", "noop", "fastapi", "bare", "cold")}
    with contextlib.ExitStack() as servers:
        app = servers.enter_context(Server(cfg, workers=workers, name="app"))
        fastapi = servers.enter_context(
            Server(
                cfg, workers=workers, app="tools.bench.bench_asgi:fastapi_noop", serve=False, name="fastapi"
            )
        )
        bare = servers.enter_context(
            Server(cfg, workers=workers, app="tools.bench.bench_asgi:bare_noop", serve=False, name="bare")
        )
        warm_cache(app.base, keys)
        single = {
            "stock": single_connection(app, "/", STOCK_LUA, [stock_paths]),
            "noop": single_connection(app, "/", STOCK_LUA, [noop_paths]),
        }
        report.raw["reads_single_connection"] = {k: asdict(v) for k, v in single.items()}
        log(
            "one connection, keep-alive, "
            + ", ".join(f"{k} p50 {v.p50_ms:.2f} ms" for k, v in single.items())
            + f" ({workers} worker(s))"
        )
        slow = {k: v.p50_ms for k, v in single.items() if v.p50_ms > 20}
        if slow:
            report.notes.append(
                f"one connection p50 above 20 ms {slow}: Nagle's algorithm left on (uvicorn #3149)?"
            )
        for run in range(cfg.runs):
            log(f"reads run {run + 1}/{cfg.runs}")
            for name, server, paths in (
                ("warm", app, stock_paths),
                ("noop", app, noop_paths),
                ("fastapi", fastapi, noop_paths),
                ("bare", bare, noop_paths),
            ):
                runs[name].append(server.wrk("/", STOCK_LUA, [paths], connections=conns, seconds=secs))
                log(f"  {name} {runs[name][-1].rps:,.0f}/s p99 {runs[name][-1].p99_ms:.1f} ms")
        fallbacks = app.cache_fallbacks()
    with Server(cfg, workers=workers, cache=False) as server:
        for run in range(cfg.runs):
            runs["cold"].append(server.wrk("/", STOCK_LUA, [stock_paths], connections=conns, seconds=secs))
            last = runs["cold"][-1]
            log(f"  stock, cache off, run {run + 1}: {last.rps:,.0f}/s p99 {last.p99_ms:.1f} ms")
    for name, results in runs.items():
        report.raw[f"http_{name}"] = [asdict(r) for r in results]
        bad = [r for r in results if r.non2xx or r.socket_errors]
        if bad:
            raise RuntimeError(
                f"{name}: {bad[0].non2xx} non-2xx answers, {bad[0].socket_errors} socket errors"
            )
    add_rows(cfg, report, runs, single, fallbacks)


def add_rows(
    cfg: Config,
    report: Report,
    runs: dict[str, list[WrkResult]],
    single: dict[str, WrkResult],
    fallbacks: int,
) -> None:
    def m(name: str, attr: str = "rps") -> float:
        return med([getattr(r, attr) for r in runs[name]])

    warm, fastapi, bare, noop = m("warm"), m("fastapi"), m("bare"), m("noop")
    share = warm / bare
    report.add(
        Row(
            f"5a. GET stock, cache warm, 1,000 keys, {cfg.connections} connections, make run "
            f"({cfg.http_workers} workers); / row 5e",
            latency(runs["warm"])
            + f"; {100 * share:.0f} % of bare ASGI, {100 * warm / fastapi:.0f} % of FastAPI's no-op",
            f">= {100 * TARGETS['stock_share']:.0f} % of bare ASGI (5e), "
            f"p99 < {TARGETS['stock_p99_ms']:g} ms",
            verdict(share >= TARGETS["stock_share"] and m("warm", "p99_ms") < TARGETS["stock_p99_ms"]),
            f"{spread([r.rps for r in runs['warm']])}; {cpu(runs, 'warm')}; one connection p50 "
            f"{single['stock'].p50_ms:.2f} ms"
            + (f"; Redis timed out and PostgreSQL answered in {fallbacks} 5-s periods" if fallbacks else ""),
        )
    )
    report.add(
        Row(
            "5b. GET stock, cache off (CACHE_ENABLED=false)",
            latency(runs["cold"]),
            note=f"{spread([r.rps for r in runs['cold']])}; {cpu(runs, 'cold')}",
        )
    )
    report.add(
        Row(
            "5c. same app and middleware, constant JSON from an async /bench/noop (through FastAPI)",
            latency(runs["noop"]) + f"; row 5a is {100 * warm / noop:.0f} % of it",
            note=f"{spread([r.rps for r in runs['noop']])}; {cpu(runs, 'noop')}; one connection p50 "
            f"{single['noop'].p50_ms:.2f} ms",
        )
    )
    report.add(
        Row(
            f"5d. ceiling: FastAPI's own async no-op route, {cfg.http_workers} uvicorn workers",
            latency(runs["fastapi"]),
            note=f"{spread([r.rps for r in runs['fastapi']])}; {cpu(runs, 'fastapi')}",
        )
    )
    report.add(
        Row(
            f"5e. ceiling: a bare ASGI callable answering the constant, {cfg.http_workers} uvicorn workers",
            latency(runs["bare"]) + f"; FastAPI's no-op is {100 * fastapi / bare:.0f} % of it",
            note=f"{spread([r.rps for r in runs['bare']])}; {cpu(runs, 'bare')}",
        )
    )
