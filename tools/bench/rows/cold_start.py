"""Cold start of each Lambda handler module: a fresh interpreter imports it and serves one event.

`measure_all` runs, for every `functions/*/handler.py`, a new Python process that times (with
`time.perf_counter`, inside the child, so the interpreter's own start-up is reported apart) the
import of the module and its first invocation with the module's sample event from
`infra/events/`. The first invocation includes what Lambda's first request pays too: the
connection pool's first connection, the Redis client, Pydantic's lazily built validators.

Row 6 of `make bench` (`run`); alone: `python -m tools.bench.rows.cold_start [--runs 3]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the harness imports the service: a measured child must not
    from tools.bench.harness import Config, Report

ROOT = Path(__file__).resolve().parents[3]
EVENTS_DIR = ROOT / "infra" / "events"


@dataclass(frozen=True)
class ColdStart:
    module: str
    event: str
    interpreter_ms: float
    import_ms: float
    first_call_ms: float
    status: str

    @property
    def total_ms(self) -> float:
        return self.import_ms + self.first_call_ms


class FakeContext:
    """The attributes Powertools and Mangum read from a Lambda context."""

    function_name = "bench-cold-start"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-central-1:000000000000:function:bench-cold-start"
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/bench-cold-start"
    log_stream_name = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def handler_modules() -> list[str]:
    return sorted(f"functions.{p.parent.name}.handler" for p in (ROOT / "functions").glob("*/handler.py"))


def sample_event(module: str) -> Path | None:
    """The module's sample event in infra/events/: `apigw_<function>*.json` for the HTTP functions
    (`apigw_list_*` for list_resources), `msk.json` for Kafka ingestion."""
    name = module.split(".")[1]
    patterns = [f"{name}*.json", f"apigw_{name}*.json", f"apigw_{name.split('_')[0]}_*.json"]
    if name == "ingest_kafka":
        patterns.insert(0, "msk.json")
    for pattern in patterns:
        found = sorted(EVENTS_DIR.glob(pattern))
        if found:
            return found[0]
    return None


# Functions without a sample event of their own: (method, route, path, body) for an HTTP API v2
# event made from another function's sample. Say so in the output: the file is not in infra/events/.
SYNTHESIZED = {
    "console": ("GET", "/ui", "/ui/"),  # the overview page (/ui itself redirects there)
    "replay": (
        "POST",
        "/api/v1/rejected-events/{rejected_event_id}/replay",
        "/api/v1/rejected-events/1/replay",
    ),
}


def synthesized_event(module: str, out_dir: Path) -> Path | None:
    """An HTTP API v2 event for `module` from apigw_get_stock.json's envelope, when SYNTHESIZED has it."""
    name = module.split(".")[1]
    template = EVENTS_DIR / "apigw_get_stock.json"
    if name not in SYNTHESIZED or not template.is_file():
        return None
    method, route, path = SYNTHESIZED[name]
    event = json.loads(template.read_text())
    parameters = {"rejected_event_id": "1"} if "{rejected_event_id}" in route else {}
    event.update(routeKey=f"{method} {route}", rawPath=path, pathParameters=parameters)
    event["requestContext"].update(routeKey=f"{method} {route}")
    event["requestContext"]["http"].update(method=method, path=path)
    target = out_dir / f"synthesized_{name}.json"
    target.write_text(json.dumps(event))
    return target


def _child(module: str, event_path: str, out: str, started_ns: int) -> None:
    """Inside the fresh interpreter: import, then one invocation, each timed."""
    import importlib

    interpreter_ms = (time.time_ns() - started_ns) / 1e6
    t0 = time.perf_counter()
    mod = importlib.import_module(module)
    t1 = time.perf_counter()
    event = json.loads(Path(event_path).read_text())
    answer: Any = mod.handler(event, FakeContext())
    t2 = time.perf_counter()
    status = str(answer.get("statusCode", "ok")) if isinstance(answer, dict) else type(answer).__name__
    Path(out).write_text(
        json.dumps(
            {
                "interpreter_ms": interpreter_ms,
                "import_ms": (t1 - t0) * 1000,
                "first_call_ms": (t2 - t1) * 1000,
                "status": status,
            }
        )
    )


def measure(module: str, event: Path, env: dict[str, str], *, timeout: float = 60.0) -> ColdStart:
    """One fresh process for `module`; its handler output goes to a log, not to our stdout."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "tools.bench.rows.cold_start", "--child", module, str(event), str(out),
               str(time.time_ns())]  # fmt: skip
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=timeout, check=False)
        if proc.returncode != 0 or not out.exists():
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
            return ColdStart(module, event.name, 0, 0, 0, "failed: " + " | ".join(tail))
        data = json.loads(out.read_text())
    return ColdStart(
        module, event.name, data["interpreter_ms"], data["import_ms"], data["first_call_ms"], data["status"]
    )


def measure_all(env: dict[str, str], runs: int = 3) -> list[tuple[ColdStart, list[ColdStart]]]:
    """Per handler module: (the median run by total, all runs)."""
    results: list[tuple[ColdStart, list[ColdStart]]] = []
    tmp = Path(tempfile.mkdtemp(prefix="cold-start-"))
    for module in handler_modules():
        event = sample_event(module) or synthesized_event(module, tmp)
        if event is None:
            results.append((ColdStart(module, "-", 0, 0, 0, "no sample event in infra/events/"), []))
            continue
        samples = [measure(module, event, env) for _ in range(runs)]
        ok = [s for s in samples if not s.status.startswith("failed")]
        if not ok:
            results.append((samples[-1], samples))
            continue
        median_total = statistics.median_low([s.total_ms for s in ok])
        results.append((next(s for s in ok if s.total_ms == median_total), samples))
    shutil.rmtree(tmp, ignore_errors=True)
    return results


def run(cfg: Config, report: Report) -> None:
    """Row 6 of `make bench`: every handler module, the median of `cfg.runs` fresh processes."""
    from tools.bench.harness import Row, child_env

    results = measure_all(child_env(cfg, LOG_LEVEL="WARNING"), runs=cfg.runs)
    report.raw["cold_start"] = [[asdict(best), [asdict(s) for s in runs]] for best, runs in results]
    for best, _runs in results:
        name = best.module.removeprefix("functions.").removesuffix(".handler")
        if best.status.startswith(("failed", "no sample")):
            report.add(Row(f"6. cold start {name}", best.status))
            continue
        report.add(
            Row(
                f"6. cold start {name} ({best.event})",
                f"{best.total_ms:,.0f} ms",
                note=f"import {best.import_ms:,.0f} + first call {best.first_call_ms:,.0f} ms "
                f"(+ interpreter {best.interpreter_ms:,.0f} ms); answer {best.status}",
            )
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--child", nargs=4, metavar=("MODULE", "EVENT", "OUT", "STARTED_NS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        module, event, out, started = args.child
        _child(module, event, out, int(started))
        return 0
    for best, _ in measure_all(dict(os.environ), args.runs):
        print(
            f"{best.module:40} {best.event:28} import {best.import_ms:7.1f} ms  first call "
            f"{best.first_call_ms:7.1f} ms  ({best.status})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
