"""Rows 4, 4a, 4b and 4c: the webhook under wrk, against a no-op POST on the same server.

4. the webhook at `--connections` on the app as `make run` serves it (group commit); after every
   run the database is checked: each 2xx event logged once, stock = seed + log for every key;
4a. one connection's latency against the baseline's;
4b. the baseline: the same app with one ledger transaction per event (tools/bench/peer_like.py);
4c. the ceiling: `POST /bench/noop` on the same server (same app and middleware, same workers),
    reading and JSON-parsing the very bodies wrk sends to the webhook, answering a constant
    (tools/bench/bench_asgi.py). Row 4 is given as a share of it.

The servers are up at once and their runs interleaved, so drift hits all alike.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tools.bench.harness import OUT_DIR, Config, Report, Row, db, log, med, spread, truncate, verdict
from tools.bench.servers import NOOP_PATH, WEBHOOK_PATH, Server, seed_stock_keys
from tools.bench.wrk import WEBHOOK_LUA, WrkResult

TARGETS = {"webhook_eps": 3_000, "webhook_p99_ms": 100.0, "webhook_share": 0.50}
SEED_QUANTITY = 10_000_000


def check_webhook(seeded: dict[tuple[str, str], int], result: WrkResult, nonce: str) -> tuple[int, list[str]]:
    """Exactly once: this run's 2xx events are each one log row, no more rows than requests were
    made, and every key's stock is its seed plus all the webhook events logged for it.

    The run's events are told apart by their movement ids, which start with its 8-hex-digit nonce.
    Returns the number of events this run applied, and the problems found. Also notes on `result`
    how many transactions applied them (distinct xmin of their log rows): group commit at work."""
    problems = []
    time.sleep(1.0)  # requests in flight when wrk stopped finish on the server
    with db() as conn:
        applied, distinct, transactions = conn.execute(
            "SELECT count(*), count(DISTINCT (movement_id, event)), count(DISTINCT xmin::text) "
            "FROM movement_events WHERE origin = 'webhook' AND movement_id::text LIKE %s",
            (f"{nonce}-%",),
        ).fetchone()
        result.events_per_transaction = applied / max(transactions, 1)
        rows = conn.execute(
            """
            SELECT s.warehouse_id::text, s.product_id::text, s.quantity,
                   coalesce(sum(CASE e.event WHEN 'arrival' THEN e.quantity ELSE -e.quantity END), 0)
            FROM stock s LEFT JOIN movement_events e
              ON e.warehouse_id = s.warehouse_id AND e.product_id = s.product_id AND e.origin = 'webhook'
            GROUP BY 1, 2, 3
            """
        ).fetchall()
        rejected = conn.execute("SELECT count(*) FROM rejected_events").fetchone()[0]
    if distinct != applied:
        problems.append(f"{applied - distinct} events logged more than once")
    if not result.ok2xx <= applied <= result.generated:
        problems.append(f"{applied} applied but {result.ok2xx} answered 2xx and {result.generated} generated")
    if result.non2xx or result.socket_errors:
        problems.append(f"{result.non2xx} non-2xx answers, {result.socket_errors} socket errors")
    if rejected:
        problems.append(f"{rejected} rejected events")
    wrong = sum(1 for w, p, q, delta in rows if q != seeded.get((w, p), 0) + delta)
    if wrong:
        problems.append(f"{wrong} stock rows differ from seed + logged events")
    return applied, problems


def run_webhook(
    server: Server, keys_file: Path, seeded: dict[tuple[str, str], int], nonce: str, **kwargs: Any
) -> tuple[WrkResult, int]:
    """One webhook wrk run, then the exactly-once checks; (result, events this run applied)."""
    result = server.wrk(WEBHOOK_PATH, WEBHOOK_LUA, [str(keys_file), nonce], **kwargs)
    applied, problems = check_webhook(seeded, result, nonce)
    if problems:
        raise RuntimeError("webhook run left a wrong state: " + "; ".join(problems))
    return result, applied


def cpu(result_of: dict[str, list[WrkResult]], name: str) -> str:
    """The CPU per request of each process kind, medians of the runs."""

    def m(attr: str) -> float:
        return med([getattr(r, attr) for r in result_of[name]])

    return (
        f"CPU per request: server workers {1000 * m('server_cpu_ms'):.0f} us + PostgreSQL "
        f"{1000 * m('postgres_cpu_ms'):.0f} us + Redis {1000 * m('redis_cpu_ms'):.0f} us"
    )


def latency(runs: list[WrkResult]) -> str:
    m = med([r.rps for r in runs]), med([r.p50_ms for r in runs]), med([r.p99_ms for r in runs])
    return f"{m[0]:,.0f}/s; {m[1]:.1f} / {m[2]:.1f} ms"


def run(cfg: Config, report: Report) -> None:
    truncate()
    keys = seed_stock_keys(1000, SEED_QUANTITY)
    seeded = dict.fromkeys(keys, SEED_QUANTITY)
    keys_file = OUT_DIR / "keys.txt"
    keys_file.write_text("".join(f"{w} {p}\n" for w, p in keys))
    secs, conns, workers = cfg.http_seconds, cfg.connections, cfg.http_workers
    runs: dict[str, list[WrkResult]] = {k: [] for k in ("webhook", "peer", "noop_post")}
    applied_total = 0
    nonces = iter(f"{cfg.nonce[:4]}{n:04x}" for n in range(1, 1 << 16))  # 8 hex digits: a run's ids
    with contextlib.ExitStack() as servers:
        app = servers.enter_context(Server(cfg, workers=workers, name="app"))
        peer = servers.enter_context(
            Server(cfg, workers=workers, app="tools.bench.peer_like:app", name="peer")
        )
        one = dict(connections=1, seconds=3, threads=1)
        single = {
            "webhook": run_webhook(app, keys_file, seeded, next(nonces), **one)[0],
            "webhook_peer": run_webhook(peer, keys_file, seeded, next(nonces), **one)[0],
        }
        report.raw["webhook_single_connection"] = {k: asdict(v) for k, v in single.items()}
        for run in range(cfg.runs):
            log(f"webhook run {run + 1}/{cfg.runs}")
            for name, server in (("webhook", app), ("peer", peer)):
                result, applied = run_webhook(
                    server, keys_file, seeded, next(nonces), connections=conns, seconds=secs
                )
                runs[name].append(result)
                applied_total += applied
                log(f"  {name} {result.rps:,.0f}/s p99 {result.p99_ms:.1f} ms, {applied:,} applied, checked")
            noop = app.wrk(
                NOOP_PATH, WEBHOOK_LUA, [str(keys_file), next(nonces)], connections=conns, seconds=secs
            )
            runs["noop_post"].append(noop)
            log(f"  noop POST {noop.rps:,.0f}/s p99 {noop.p99_ms:.1f} ms")
    for name, results in runs.items():
        report.raw[f"http_{name}"] = [asdict(r) for r in results]
        bad = [r for r in results if r.non2xx or r.socket_errors]
        if bad:
            raise RuntimeError(
                f"{name}: {bad[0].non2xx} non-2xx answers, {bad[0].socket_errors} socket errors"
            )
    add_rows(cfg, report, runs, single, applied_total)


def add_rows(
    cfg: Config, report: Report, runs: dict[str, list[WrkResult]], single: dict[str, WrkResult], applied: int
) -> None:
    def m(name: str, attr: str) -> float:
        return med([getattr(r, attr) for r in runs[name]])

    wh, peer, noop = m("webhook", "rps"), m("peer", "rps"), m("noop_post", "rps")
    share = wh / noop
    one, one_peer = single["webhook"].p50_ms, single["webhook_peer"].p50_ms
    report.add(
        Row(
            f"4. webhook, {cfg.connections} connections, {cfg.http_seconds:g} s, group commit: events/s, "
            "p50 / p99; / row 4c",
            latency(runs["webhook"]) + f"; {100 * share:.0f} % of the no-op POST; "
            f"{wh / peer:.1f} x the one-transaction-per-event baseline",
            f">= {TARGETS['webhook_eps']:,}/s, p99 < {TARGETS['webhook_p99_ms']:g} ms, "
            f">= {100 * TARGETS['webhook_share']:.0f} % of row 4c, all 2xx, each logged once",
            verdict(
                wh >= TARGETS["webhook_eps"]
                and m("webhook", "p99_ms") < TARGETS["webhook_p99_ms"]
                and share >= TARGETS["webhook_share"]
            ),
            f"{spread([r.rps for r in runs['webhook']])}; all 2xx; DB: {applied:,} applied by rows "
            f"4 and 4b, each logged once, stock = seed + log for every key; "
            f"{m('webhook', 'events_per_transaction'):.1f} events per transaction; {cpu(runs, 'webhook')}",
        )
    )
    report.add(
        Row(
            "4a. webhook, one connection: p50 / p99 (group commit vs one transaction per event)",
            f"{one:.2f} / {single['webhook'].p99_ms:.2f} ms vs "
            f"{one_peer:.2f} / {single['webhook_peer'].p99_ms:.2f} ms",
            "p50 <= baseline + 1 ms",
            verdict(one <= one_peer + 1.0),
            f"{single['webhook'].rps:,.0f} vs {single['webhook_peer'].rps:,.0f} requests/s on one connection",
        )
    )
    report.add(
        Row(
            "4b. baseline: webhook with one ledger transaction per event (the peer-like design)",
            latency(runs["peer"]),
            note=f"{spread([r.rps for r in runs['peer']])}; all 2xx, checked like row 4; {cpu(runs, 'peer')}",
        )
    )
    report.add(
        Row(
            f"4c. ceiling: POST /bench/noop reading and JSON-parsing the same bodies, same server "
            f"({cfg.http_workers} workers)",
            latency(runs["noop_post"]),
            note=f"{spread([r.rps for r in runs['noop_post']])}; all 2xx; {cpu(runs, 'noop_post')}",
        )
    )
