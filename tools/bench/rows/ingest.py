"""Rows 1, 2 and 2b: the Kafka ingest handler in process, against bare SQL on the same stream.

1. `functions.ingest_kafka.handler.handler` on MSK events of `--batch` records built in advance,
   fresh keys per run, a realistic mix (tools/bench/workload.py); only the handler calls are timed;
2. the ceiling: the same stream shape applied by bare set-based SQL (tools/bench/ceiling_sql.py),
   JSON decoded by PostgreSQL, and row 1 as a share of it;
2b. the same with the fields decoded in advance and COPYed as columns: the database's writes
   alone, the ceiling of the Kafka drain (row 3d) too.

Each run is checked against the database before its number is used.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from tools.bench import ceiling_sql
from tools.bench.cpu import pg_backend_cpu
from tools.bench.harness import (
    LOG_DIR,
    Config,
    Report,
    Row,
    check_state,
    log,
    med,
    spread,
    stdout_to,
    truncate,
)
from tools.bench.rows import cold_start
from tools.bench.workload import Workload, generate, msk_events

TARGETS = {"ingest_share": 0.70}


@dataclass
class IngestRun:
    eps: float
    python_us: float  # this process's CPU per event
    postgres_us: float  # the database backends' CPU per event


class Measure:
    """Times one way of applying a stream and checks the tables after it."""

    def __init__(self, cfg: Config) -> None:
        import psycopg

        from common.adapters.db import get_pool

        self.cfg = cfg
        self.results: dict[str, list[IngestRun]] = {"handler": [], "ceiling": [], "columns": []}
        # Connections opened before any clock or CPU counter starts, and kept: their backends' CPU
        # is what pg_backend_cpu counts (a backend that exits within a run would take its CPU with it).
        get_pool().wait()
        self.sql_conn = psycopg.connect(cfg.database_url, autocommit=True)

    def close(self) -> None:
        self.sql_conn.close()

    def __call__(self, kind: str, work: Workload, apply: Callable[[], None]) -> None:
        truncate()
        # The input built in advance (3 x 100,000 events, millions of objects) is no part of the
        # handler's work, but every full collection the handler's allocations trigger would walk it:
        # frozen, it is left out (measured: 185 -> 130 us Python CPU per event, 4,000 -> 5,100/s).
        gc.collect()
        gc.freeze()
        cpu, pg = time.process_time(), pg_backend_cpu(self.cfg.database_url)
        started = time.perf_counter()
        try:
            apply()
        finally:
            seconds = time.perf_counter() - started
            gc.unfreeze()
        cpu, pg = time.process_time() - cpu, pg_backend_cpu(self.cfg.database_url) - pg
        problems = check_state(work)
        if problems:
            raise RuntimeError(f"{kind} run left a wrong state: " + "; ".join(problems))
        n = len(work.values)
        self.results[kind].append(IngestRun(n / seconds, 1e6 * cpu / n, 1e6 * pg / n))
        log(
            f"  {kind:8} {n / seconds:8,.0f} events/s  ({1e6 * cpu / n:.0f} us Python + "
            f"{1e6 * pg / n:.0f} us PostgreSQL CPU per event)"
        )

    def sql(self, batches: list[Any], decoded: bool) -> None:
        ceiling_sql.apply_batches(self.sql_conn, batches, decoded=decoded)

    def median(self, kind: str, attr: str) -> float:
        return med([getattr(r, attr) for r in self.results[kind]])

    def cpu(self, kind: str) -> str:
        return (
            f"CPU per event: {self.median(kind, 'python_us'):.0f} us Python + "
            f"{self.median(kind, 'postgres_us'):.0f} us PostgreSQL"
        )


def _columns(cfg: Config, work: Workload, topic: str) -> list[Any]:
    return [ceiling_sql.decoded_rows(e) for e in msk_events(work, topic=topic, batch_size=cfg.batch)]


def run(cfg: Config, report: Report) -> None:
    from functions.ingest_kafka.handler import handler

    measure = Measure(cfg)
    mix = ""
    try:
        for run in range(cfg.runs):
            seed = int(cfg.nonce, 16) + run
            log(f"ingest run {run + 1}/{cfg.runs}: generating 3 x {cfg.events:,} events")
            # One stream shape, three disjoint key sets: the handler, bare SQL on JSON, bare SQL on columns.
            work_h, work_c, work_d = (generate(cfg.events, seed=seed) for _ in range(3))
            mix = work_h.mix()
            events = msk_events(work_h, topic=f"bench-ingest-{cfg.nonce}", batch_size=cfg.batch)
            staged = [
                ceiling_sql.staged_rows(e)
                for e in msk_events(work_c, topic=f"bench-ceiling-{cfg.nonce}", batch_size=cfg.batch)
            ]
            columns = _columns(cfg, work_d, f"bench-columns-{cfg.nonce}")

            def run_handler(events: list[dict[str, Any]] = events) -> None:
                with stdout_to(LOG_DIR / "ingest-handler.log"):
                    for event in events:
                        handler(event, cold_start.FakeContext())

            steps: list[tuple[str, Workload, Callable[[], None]]] = [
                ("handler", work_h, run_handler),
                ("ceiling", work_c, partial(measure.sql, staged, False)),
                ("columns", work_d, partial(measure.sql, columns, True)),
            ]
            for kind, work, apply in steps[run % 3 :] + steps[: run % 3]:  # rotated: drift hits all alike
                measure(kind, work, apply)
    finally:
        measure.close()
    m = measure.median
    h, c, d = m("handler", "eps"), m("ceiling", "eps"), m("columns", "eps")
    share = h / c
    report.raw["ingest"] = {k: [asdict(r) for r in v] for k, v in measure.results.items()} | {"mix": mix}
    report.add(
        Row(
            f"1. ingest handler, {cfg.events:,} events in batches of {cfg.batch:,}",
            f"{h:,.0f} events/s",
            note=f"{spread([r.eps for r in measure.results['handler']])}; {mix}; {measure.cpu('handler')}",
        )
    )
    report.add(
        Row(
            "2. bare SQL ceiling, JSON decoded by PostgreSQL (COPY + set-based upserts); row 1 / row 2",
            f"{c:,.0f} events/s; {100 * share:.0f} %",
            f">= {100 * TARGETS['ingest_share']:.0f} %",
            "met" if share >= TARGETS["ingest_share"] else "MISSED",
            f"{spread([r.eps for r in measure.results['ceiling']])}; {measure.cpu('ceiling')}",
        )
    )
    _add_columns_row(cfg, report, measure, f"; row 1 / row 2b {100 * h / d:.0f} %")


def _add_columns_row(cfg: Config, report: Report, measure: Measure, extra: str = "") -> None:
    d = measure.median("columns", "eps")
    report.raw["columns_ceiling_eps"] = [r.eps for r in measure.results["columns"]]
    report.add(
        Row(
            f"2b. bare SQL, fields decoded in advance (COPY + set-based: the database's writes alone), "
            f"{cfg.events:,} events",
            f"{d:,.0f} events/s" + extra,
            note=f"{spread([r.eps for r in measure.results['columns']])}; {measure.cpu('columns')}",
        )
    )


def columns_ceiling(cfg: Config, report: Report) -> list[float]:
    """Row 2b's runs (events/s): those of this run's ingest rows, else measured now (and row 2b
    added), so a row compared with it always has its ceiling from the same run."""
    if "columns_ceiling_eps" not in report.raw:
        measure = Measure(cfg)
        try:
            for run in range(cfg.runs):
                log(f"bare SQL ceiling (row 2b) run {run + 1}/{cfg.runs}: {cfg.events:,} events")
                work = generate(cfg.events, seed=int(cfg.nonce, 16) + 100 + run)
                columns = _columns(cfg, work, f"bench-columns-{cfg.nonce}")
                measure("columns", work, partial(measure.sql, columns, True))
        finally:
            measure.close()
        _add_columns_row(cfg, report, measure)
    return list(report.raw["columns_ceiling_eps"])
