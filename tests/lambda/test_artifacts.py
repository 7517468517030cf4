"""What `sam deploy` ships, run as Lambda runs it.

`sam build` (the real AWS SAM CLI, infra/scripts/sam-build.sh: built when an input changed, then
each artifact's size and contents checked), then every function started from its artifact folder
under the Runtime Interface Emulator with the Runtime Interface Client and its template handler
(tools/bench/lambda_invoke.py), and invoked over the emulator's HTTP API with the sample events of
infra/events/ against the test database and Redis. A function importing a module its artifact
lacks fails here (test_a_missing_module_fails_the_invoke shows the harness notices).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.e2e.support import REDIS_URL
from tools.bench.lambda_invoke import (
    BUILD_DIR,
    EmulatedFunction,
    Invocation,
    build,
    function_environment,
    handlers,
    load_event,
    runtime,
)

WEBHOOK_TOKEN = "artifact-webhook-token"
OPERATOR_TOKEN = "artifact-operator-token"
OPERATOR = {"authorization": f"Bearer {OPERATOR_TOKEN}"}
W = "9383008f-72c3-4d4d-bb95-396631537fac"
P = "0c11f209-da2c-4204-9440-39c745ad9ec3"
M = "e9df3213-87c1-4c89-ac99-4aab250d1c18"
SAMPLE_MOVEMENT = "c6290746-790e-43fa-8270-014dc90e02e0"
ROOT = Path(__file__).resolve().parents[2]
LINT_PYTHON = ROOT / "tools" / "lint" / ".venv" / "bin" / "python"
PACKAGE_PY = ROOT / "infra" / "lambda" / "package.py"


class Functions:
    """The seven functions, each started on first use and kept for the module; their times."""

    def __init__(self, environment: dict[str, str], log_dir: Path) -> None:
        self.rie, self.python = runtime()
        self.handlers = handlers()
        self.environment = environment
        self.log_dir = log_dir
        self.running: dict[str, EmulatedFunction] = {}
        self.times: dict[str, list[float]] = {}

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Invocation:
        function = self.running.get(logical_id)
        if function is None:
            function = EmulatedFunction(
                logical_id, self.handlers[logical_id], BUILD_DIR / logical_id, self.environment,
                self.rie, self.python, self.log_dir / f"{logical_id}.log",
            )  # fmt: skip
            function.start()
            self.running[logical_id] = function
        answer = function.invoke(event)
        assert answer.error is None, f"{logical_id}: {answer.result}\n{function.tail()}"
        self.times.setdefault(logical_id, []).append(answer.seconds)
        return answer

    def stop(self) -> None:
        for function in self.running.values():
            function.stop()


@pytest.fixture(scope="module")
def built() -> str:
    return build()


@pytest.fixture(scope="module")
def functions(
    built: str, database_url: str, request: pytest.FixtureRequest, tmp_path_factory: Any
) -> Iterator[Functions]:
    environment = function_environment() | {
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "WEBHOOK_TOKEN": WEBHOOK_TOKEN,
        "OPERATOR_TOKEN": OPERATOR_TOKEN,
        "POWERTOOLS_METRICS_NAMESPACE": "WarehouseTest",
    }
    running = Functions(environment, tmp_path_factory.mktemp("lambda-logs"))
    yield running
    running.stop()
    lines = ["", "Lambda artifacts under aws-lambda-rie + awslambdaric (first invoke = cold start):"]
    lines += [f"  {line}" for line in built.splitlines()]
    for name, seconds in running.times.items():
        warm = sorted(seconds[1:])
        median = f"{warm[len(warm) // 2] * 1000:.0f} ms" if warm else "-"
        lines.append(f"  {name:<22} cold {seconds[0] * 1000:>6.0f} ms  warm median {median}")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if capture is not None and reporter is not None:
        with capture.global_and_fixture_disabled():
            for line in lines:
                reporter.write_line(line)


def http_event(template: str, method: str, path: str, *, query: str = "", body: bytes | None = None,
               headers: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Another request in the shape of a sample event."""
    event = copy.deepcopy(load_event(template))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["requestId"] = uuid.uuid4().hex[:16] + "="
    event["rawQueryString"] = query
    event.pop("queryStringParameters", None)
    event.pop("pathParameters", None)
    event["headers"] = {k: v for k, v in event["headers"].items() if k != "authorization"}
    event["headers"].update(headers or {})
    if body is None:
        event.pop("body", None)
        event["headers"].pop("content-length", None)
    else:
        event["body"] = body.decode()
        event["headers"]["content-length"] = str(len(body))
    return event


def envelope(event: str, warehouse: str, product: str, quantity: int) -> bytes:
    body = json.loads(load_event("apigw_webhook.json")["body"])
    body["data"] |= {"movement_id": str(uuid.uuid4()), "warehouse_id": warehouse, "product_id": product,
                     "event": event, "quantity": quantity}  # fmt: skip
    return json.dumps(body).encode()


def webhook(functions: Functions, payload: bytes) -> tuple[int, Any]:
    event = http_event("apigw_webhook.json", "POST", "/api/v1/kafka/webhook", body=payload,
                       headers={"authorization": f"Bearer {WEBHOOK_TOKEN}"})  # fmt: skip
    status, _, body = functions.invoke("WebhookFunction", event).http()
    return status, json.loads(body)


def stock(functions: Functions, warehouse: str, product: str) -> int:
    event = http_event("apigw_get_stock.json", "GET", f"/api/v1/warehouse/{warehouse}/products/{product}")
    status, _, body = functions.invoke("GetStockFunction", event).http()
    assert status == 200, body
    return int(json.loads(body)["quantity"])


# --------------------------------------------------------------------------------- the answers


def test_ingest_applies_the_sample_kafka_batches_and_parks_the_poison_record(functions, clean_db) -> None:
    for name in ("msk.json", "self_managed_kafka.json"):
        event = load_event(name)
        topic = f"artifact-{uuid.uuid4().hex[:8]}"  # offsets of this test's own
        event["records"] = {
            f"{topic}-{key.rsplit('-', 1)[1]}": [{**r, "topic": topic} for r in chunk]
            for key, chunk in event["records"].items()
        }
        answer = functions.invoke("IngestFunction", event)
        assert answer.result == {"batchItemFailures": []}
        with psycopg.connect(clean_db) as conn:
            departed, arrived = conn.execute(
                "SELECT departed_quantity, arrived_quantity FROM movements WHERE movement_id = %s",
                (SAMPLE_MOVEMENT,),
            ).fetchone()  # type: ignore[misc]
            parked = conn.execute(
                "SELECT reason FROM rejected_events WHERE kafka_topic = %s", (topic,)
            ).fetchall()
        assert (departed, arrived) == (100, 98)
        assert parked == [("invalid",)]


def test_webhook_and_each_read_answer_as_in_process(functions) -> None:
    sample = load_event("apigw_webhook.json")
    sample["headers"]["authorization"] = f"Bearer {WEBHOOK_TOKEN}"
    status, _, body = functions.invoke("WebhookFunction", sample).http()
    assert status == 200, body
    applied = json.loads(body)
    assert applied["status"] in {"applied", "duplicate"} and applied["quantity"] == 98
    # A producer without the token is refused (the function started in Lambda mode, token set).
    refused = http_event("apigw_webhook.json", "POST", "/api/v1/kafka/webhook", body=sample["body"].encode())
    assert functions.invoke("WebhookFunction", refused).http()[0] == 401

    status, headers, body = functions.invoke("GetStockFunction", load_event("apigw_get_stock.json")).http()
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body)["quantity"] == applied["stock"] >= 98

    status, _, body = functions.invoke("GetMovementFunction", load_event("apigw_get_movement.json")).http()
    assert status == 200
    movement = json.loads(body)
    assert (movement["movement_id"], movement["status"], movement["arrived_quantity"]) == (
        M,
        "arrival_only",
        98,
    )

    status, _, body = functions.invoke("ListFunction", load_event("apigw_list_stock.json")).http()
    assert status == 200
    assert P in {item["product_id"] for item in json.loads(body)["items"]}


def test_dead_letters_listed_shown_in_the_console_and_replayed(functions) -> None:
    warehouse, product = str(uuid.uuid4()), str(uuid.uuid4())
    status, refused = webhook(functions, envelope("departure", warehouse, product, 5))
    assert status == 409 and refused["reason"] == "insufficient_stock"
    dead = refused["rejected_event_id"]

    listing = copy.deepcopy(load_event("apigw_list_rejected_events.json"))
    listing["headers"] |= OPERATOR
    status, _, body = functions.invoke("ListFunction", listing).http()
    assert status == 200, body
    assert dead in {item["id"] for item in json.loads(body)["items"]}
    listing["headers"].pop("authorization")
    assert functions.invoke("ListFunction", listing).http()[0] == 401

    rows = copy.deepcopy(load_event("apigw_console_dead_letters.json"))
    rows["headers"] |= OPERATOR | {"accept-encoding": "identity"}
    status, headers, body = functions.invoke("ConsoleFunction", rows).http()
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert product in body.decode()  # the raw payload's preview
    page = http_event(
        "apigw_get_stock.json", "GET", "/ui/dead-letters", headers={"accept-encoding": "identity"}
    )
    status, _, body = functions.invoke("ConsoleFunction", page).http()
    assert status == 200 and b"/ui/dead-letters/rows" in body

    assert webhook(functions, envelope("arrival", warehouse, product, 12))[0] == 200
    replay = copy.deepcopy(load_event("apigw_replay.json"))
    path = f"/api/v1/rejected-events/{dead}/replay"
    replay["rawPath"] = replay["requestContext"]["http"]["path"] = path
    replay["pathParameters"] = {"rejected_event_id": str(dead)}
    replay["headers"] |= OPERATOR
    status, _, body = functions.invoke("ReplayFunction", replay).http()
    assert status == 200, body
    assert json.loads(body)["status"] == "applied"
    assert stock(functions, warehouse, product) == 12 - 5


def test_console_dead_letter_page_with_the_default_operator_auth(functions) -> None:
    """docs/deployment.md's default, OperatorAuth=Token: the functions get OPERATOR_AUTH=token and the
    operator token (from OperatorTokenSecretArn in AWS); the operator opens /ui/dead-letters, types
    the token into its box, and the page's script fetches the rows with it as a bearer token."""
    template = (Path(__file__).resolve().parents[2] / "template.yaml").read_text()
    assert "    Default: Token\n    AllowedValues: [Token, JWT, IAM]" in template
    warehouse, product = str(uuid.uuid4()), str(uuid.uuid4())
    assert webhook(functions, envelope("departure", warehouse, product, 3))[0] == 409

    identity = {"accept-encoding": "identity"}
    page = http_event("apigw_get_stock.json", "GET", "/ui/dead-letters", headers=identity)
    status, _, body = functions.invoke("ConsoleFunction", page).http()
    assert status == 200
    html = body.decode()
    assert 'data-src="/ui/dead-letters/rows' in html and 'data-token-required="true"' in html
    assert 'type="password" id="operator-token"' in html
    (src,) = re.findall(r'<script src="([^"]*dead_letters[^"]*)"', html)
    script = http_event(
        "apigw_get_stock.json", "GET", src.split("?")[0], query=src.partition("?")[2], headers=identity
    )
    status, _, body = functions.invoke("ConsoleFunction", script).http()
    assert status == 200 and b'"Bearer " + token()' in body and b"sessionStorage" in body

    rows = load_event("apigw_console_dead_letters.json")
    for refused in ({}, {"authorization": "Bearer not-the-token"}):
        asked = copy.deepcopy(rows)
        asked["headers"] = {k: v for k, v in asked["headers"].items() if k != "authorization"} | refused
        assert functions.invoke("ConsoleFunction", asked).http()[0] == 401
    rows["headers"] |= OPERATOR | identity
    status, _, body = functions.invoke("ConsoleFunction", rows).http()
    assert status == 200 and product in body.decode()


def test_every_function_was_run_from_its_artifact(functions) -> None:
    """All seven ran (the tests above), each from its own folder: no checkout on its path."""
    assert set(functions.running) == set(handlers())
    for name, function in functions.running.items():
        assert function.artifact == BUILD_DIR / name
        assert not (function.artifact / "tests").exists() and not (function.artifact / "tools").exists()


def test_a_missing_module_fails_the_invoke(built, tmp_path, database_url) -> None:
    """The harness notices an artifact that lacks a module its handler imports."""
    artifact = tmp_path / "GetStockFunction"
    subprocess.run(["cp", "-al", str(BUILD_DIR / "GetStockFunction"), str(artifact)], check=True)
    subprocess.run(["rm", "-rf", str(artifact / "redis")], check=True)
    rie, python = runtime()
    env = function_environment() | {"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL}
    with EmulatedFunction(
        "GetStockFunction", handlers()["GetStockFunction"], artifact, env, rie, python, tmp_path / "log"
    ) as function:
        answer = function.invoke(load_event("apigw_get_stock.json"))
    assert answer.error == "Runtime.ImportModuleError", answer.result
    assert "redis" in json.dumps(answer.result)


def test_the_packaging_check_refuses_what_must_not_ship(built, tmp_path) -> None:
    """infra/lambda/package.py check (make lint-infra) fails on a test file, an unlisted
    distribution, a source without bytecode, the console's assets outside the console, and a
    function over its budget; and passes on the build as it is."""
    build_dir = tmp_path / "build"
    subprocess.run(["cp", "-al", str(BUILD_DIR), str(build_dir)], check=True)
    checker = [str(LINT_PYTHON), str(PACKAGE_PY), "check", str(build_dir)]
    assert subprocess.run(checker, capture_output=True, timeout=300).returncode == 0

    stock = build_dir / "GetStockFunction"
    (stock / "tests").mkdir()
    (stock / "tests" / "test_x.py").write_text("x = 1\n")
    (stock / "uvicorn-0.54.0.dist-info").mkdir()
    (stock / "uvicorn-0.54.0.dist-info" / "RECORD").write_text("uvicorn/__init__.py,,\n")
    (stock / "common" / "late.py").write_text("y = 2\n")
    vendor = stock / "functions" / "console" / "static" / "vendor"
    vendor.mkdir(parents=True)
    (vendor / "redoc.standalone.js").write_text("//")
    with (build_dir / "IngestFunction" / "ballast.bin").open("wb") as fh:
        fh.truncate(100_000_000)  # sparse: 100 MB as Lambda would count it
    done = subprocess.run(checker, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    for expected in (
        "GetStockFunction: tests/test_x.py must not be shipped",
        "GetStockFunction: distribution uvicorn is not on its allow-list",
        "GetStockFunction: common/late.py has no compiled bytecode",
        "GetStockFunction: functions/console/static/vendor/redoc.standalone.js must not be shipped",
        "IngestFunction: 17",  # 100 MB over its ~77 MB: "IngestFunction: 17x.x MB unzipped, over its budget"
    ):
        assert any(line.startswith(f"package.py check: {expected}") for line in done.stderr.splitlines()), (
            expected,
            done.stderr,
        )
