"""The built Lambda artifacts run as Lambda runs them, and their cold and warm invoke times.

Each function's `sam build` artifact (.aws-sam/build/<LogicalId>, infra/scripts/sam-build.sh) is
started from its own folder under the Runtime Interface Emulator (aws-lambda-rie) with the Runtime
Interface Client (awslambdaric) and its handler string from template.yaml, the pair Lambda's
python3.13 image runs (infra/lambda/runtime.sh installs both). The function sees its artifact and
the runtime client, nothing of this checkout: a module its artifact lacks fails its first invoke.
Invokes go over the emulator's HTTP API (POST /2015-03-31/functions/function/invocations).

`python -m tools.bench.lambda_invoke [--runs N]` (make bench) starts each function, times its
first invoke (the cold start: the runtime's start, the handler's import, the first connection) and
N warm ones with the sample events of infra/events/, against the local PostgreSQL and Redis
(DATABASE_URL, REDIS_URL), and prints a table. tests/lambda/test_artifacts.py uses the same
`EmulatedFunction` to check the answers.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = ROOT / ".aws-sam" / "build"
EVENTS_DIR = ROOT / "infra" / "events"
INVOKE_PATH = "/2015-03-31/functions/function/invocations"

# The function -> the sample event its bench invokes (`make bench`).
BENCH_EVENTS = {
    "IngestFunction": "msk.json",
    "WebhookFunction": "apigw_webhook.json",
    "GetMovementFunction": "apigw_get_movement.json",
    "GetStockFunction": "apigw_get_stock.json",
    "ListFunction": "apigw_list_stock.json",
    "ReplayFunction": "apigw_replay.json",
    "ConsoleFunction": "apigw_console_dead_letters.json",
}


class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !If, ...) read as plain values."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


def handlers(template: Path = ROOT / "template.yaml") -> dict[str, str]:
    """LogicalId -> Handler of every function in the template."""
    resources = yaml.load(template.read_text(), Loader=_Loader)["Resources"]  # noqa: S506 (safe loader)
    return {
        name: str(r["Properties"]["Handler"])
        for name, r in resources.items()
        if r["Type"] == "AWS::Serverless::Function"
    }


def runtime() -> tuple[Path, Path]:
    """(aws-lambda-rie, the runtime venv's python), installed when missing (infra/lambda/runtime.sh)."""
    done = subprocess.run(
        ["bash", str(ROOT / "infra" / "lambda" / "runtime.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"infra/lambda/runtime.sh failed:\n{done.stderr[-3000:]}")
    paths = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return Path(paths["RIE"]), Path(paths["RUNTIME_PYTHON"])


def build() -> str:
    """`sam build` when an input changed, then the size and contents check; its output."""
    done = subprocess.run(
        ["bash", str(ROOT / "infra" / "scripts" / "sam-build.sh")],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"infra/scripts/sam-build.sh failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    return done.stdout


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text())
    return event


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Invocation:
    """One invoke: the function's result (or the runtime's error document) and its wall time."""

    result: Any
    seconds: float

    @property
    def error(self) -> str | None:
        """The runtime's errorType (Runtime.ImportModuleError, ...) when the invoke failed."""
        if isinstance(self.result, dict) and "errorType" in self.result:
            return str(self.result["errorType"])
        return None

    def http(self) -> tuple[int, dict[str, str], bytes]:
        """An HTTP function's answer: status, headers (lower-case names), body."""
        import base64

        assert self.error is None, self.result
        raw = self.result.get("body", "")
        body = base64.b64decode(raw) if self.result.get("isBase64Encoded") else raw.encode()
        headers = {k.lower(): v for k, v in (self.result.get("headers") or {}).items()}
        return int(self.result["statusCode"]), headers, body


@dataclass
class EmulatedFunction:
    """One built function under aws-lambda-rie + awslambdaric, started from its artifact folder."""

    logical_id: str
    handler: str
    artifact: Path
    environment: dict[str, str]
    rie: Path
    runtime_python: Path
    log: Path
    port: int = field(default_factory=_free_port)
    # The Runtime API the emulator serves to the runtime client (its default, 9001, is one port for
    # the whole machine: every emulated function gets its own).
    runtime_api_port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None
    _log_file: IO[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            # What Lambda sets for a python3.13 function (the emulator adds the rest).
            "LAMBDA_TASK_ROOT": str(self.artifact),
            "PYTHONPATH": str(self.artifact),
            "AWS_LAMBDA_FUNCTION_NAME": self.logical_id,
            "AWS_LAMBDA_FUNCTION_TIMEOUT": "120",
            "AWS_REGION": "eu-central-1",
            "AWS_DEFAULT_REGION": "eu-central-1",
            **self.environment,
        }
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log.open("ab")
        self.process = subprocess.Popen(
            [str(self.rie), "--runtime-interface-emulator-address", f"127.0.0.1:{self.port}",
             "--runtime-api-address", f"127.0.0.1:{self.runtime_api_port}",
             str(self.runtime_python), "-m", "awslambdaric", self.handler],
            cwd=self.artifact,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends the runtime with it
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"aws-lambda-rie exited: {self.tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"aws-lambda-rie did not listen on {self.port}: {self.tail()}")

    def invoke(self, event: dict[str, Any], timeout: float = 180) -> Invocation:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{INVOKE_PATH}", data=json.dumps(event).encode(), method="POST"
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:  # the emulator answers a crashed runtime with 5xx
            raw = exc.read()
        seconds = time.perf_counter() - started
        try:
            result = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            result = {"errorType": "NotJSON", "errorMessage": raw[:500].decode(errors="replace")}
        return Invocation(result, seconds)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()

    def __enter__(self) -> EmulatedFunction:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def function_environment() -> dict[str, str]:
    """The settings every emulated function gets: this machine's PostgreSQL and Redis, tokens."""
    env = {
        "DATABASE_URL": os.environ.get(
            "DATABASE_URL", "postgresql://warehouse:warehouse@127.0.0.1:5432/warehouse"
        ),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "POWERTOOLS_SERVICE_NAME": "warehouse-stock",
        "POWERTOOLS_METRICS_NAMESPACE": "WarehouseBench",
        "WEBHOOK_TOKEN": "bench-webhook-token",
        "OPERATOR_AUTH": "token",
        "OPERATOR_TOKEN": "bench-operator-token",
        "LOG_LEVEL": "WARNING",
    }
    return env


def bench(runs: int, log_dir: Path) -> list[tuple[str, float, float, float]]:
    """(function, cold ms, warm median ms, warm max ms) of each built function."""
    rie, python = runtime()
    table = []
    for logical_id, handler in handlers().items():
        event = load_event(BENCH_EVENTS[logical_id])
        event.setdefault("headers", {})
        if logical_id == "WebhookFunction":
            event["headers"]["authorization"] = "Bearer bench-webhook-token"
        elif "headers" in event and logical_id in ("ReplayFunction", "ConsoleFunction", "ListFunction"):
            event["headers"]["authorization"] = "Bearer bench-operator-token"
        with EmulatedFunction(
            logical_id, handler, BUILD_DIR / logical_id, function_environment(), rie, python,
            log_dir / f"{logical_id}.log",
        ) as function:  # fmt: skip
            cold = function.invoke(event)
            if cold.error:
                raise RuntimeError(f"{logical_id}: {cold.result}\n{function.tail()}")
            warm = [function.invoke(event).seconds for _ in range(runs)]
        table.append((logical_id, cold.seconds * 1000, statistics.median(warm) * 1000, max(warm) * 1000))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="warm invokes per function (default 20)")
    parser.add_argument("--no-build", action="store_true", help="use .aws-sam/build as it is")
    args = parser.parse_args(argv)
    if not args.no_build:
        print(build())
    rows = bench(args.runs, ROOT / ".stack" / "logs" / "lambda")
    print(f"{'function (aws-lambda-rie + awslambdaric)':<42}{'cold':>10}{'warm p50':>10}{'warm max':>10}")
    for name, cold, p50, worst in rows:
        print(f"{name:<42}{cold:>8.0f}ms{p50:>8.1f}ms{worst:>8.1f}ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
