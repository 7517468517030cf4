"""Row 7 of `make bench`: each function's `sam build` artifact under the Lambda runtime protocol.

The first invoke (cold: the runtime's start, the handler's import, the first connection) and the
median of `cfg.runs` x 10 warm invokes, per function, with the sample events of infra/events/,
against the bench's database and Redis (tools/bench/lambda_invoke.py does the work).
"""

from __future__ import annotations

import os
from unittest import mock

from tools.bench import lambda_invoke
from tools.bench.harness import LOG_DIR, Config, Report, Row, log


def run(cfg: Config, report: Report) -> None:
    log("lambda: sam build (skipped when nothing changed), then every function under aws-lambda-rie")
    lambda_invoke.build()
    with mock.patch.dict(os.environ, {"DATABASE_URL": cfg.database_url, "REDIS_URL": cfg.redis_url}):
        table = lambda_invoke.bench(cfg.runs * 10, LOG_DIR / "lambda")
    report.raw["lambda_runtime"] = table
    for function, cold_ms, warm_ms, warm_max_ms in table:
        report.add(
            Row(
                f"7. {function} under aws-lambda-rie",
                f"cold {cold_ms:,.0f} ms, warm {warm_ms:,.1f} ms",
                note=f"warm max {warm_max_ms:,.1f} ms over {cfg.runs * 10} invokes",
            )
        )
