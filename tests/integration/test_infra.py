"""The deployment artefacts, checked offline: no AWS account, no Docker engine, no network.

template.yaml (cfn-lint, functions, routes, event source mappings, IAM), docker-compose.yml
(Compose Specification schema, healthchecks, dependencies, settings), the Dockerfile, the container
entry point and infra/scripts/lint-infra.sh itself.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TEMPLATE = ROOT / "template.yaml"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA = ROOT / "infra" / "compose-spec.schema.json"
ENTRYPOINT = ROOT / "infra" / "docker" / "entrypoint.sh"
WAIT_FOR = ROOT / "infra" / "docker" / "wait_for.py"
LINT_SCRIPT = ROOT / "infra" / "scripts" / "lint-infra.sh"

FUNCTIONS = {
    "IngestFunction": "functions.ingest_kafka.handler.handler",
    "WebhookFunction": "functions.webhook.handler.handler",
    "GetMovementFunction": "functions.get_movement.handler.handler",
    "GetStockFunction": "functions.get_stock.handler.handler",
    "ListFunction": "functions.list_resources.handler.handler",
    "ReplayFunction": "functions.replay.handler.handler",
    "ConsoleFunction": "functions.console.handler.handler",
}
ROUTES = {
    ("POST", "/api/v1/kafka/webhook"): "WebhookFunction",
    ("GET", "/api/v1/movements/{movement_id}"): "GetMovementFunction",
    ("GET", "/api/v1/warehouse/{warehouse_id}/products/{product_id}"): "GetStockFunction",
    ("GET", "/api/v1/warehouse/{warehouse_id}/products"): "ListFunction",
    ("GET", "/api/v1/movements"): "ListFunction",
    ("GET", "/api/v1/rejected-events"): "ListFunction",
    ("POST", "/api/v1/rejected-events/{rejected_event_id}/replay"): "ReplayFunction",
    **{
        ("GET", path): "ConsoleFunction"
        for path in (
            "/ui",
            "/ui/go",
            "/ui/warehouses",
            "/ui/warehouses/{warehouse_id}",
            "/ui/movements",
            "/ui/movements/{movement_id}",
            "/ui/losses",
            "/ui/dead-letters",
            "/static/{path+}",
            "/docs",
            "/redoc",
            "/openapi.json",
            "/api/v1/stats/summary",
            "/api/v1/reports/routes",
        )
    },
}


def api_gateway_path(path: str) -> str:
    """A FastAPI route path as an HTTP API route: `{x:path}` is the greedy `{x+}`, and no route may
    end in "/" (API Gateway routes /ui/ to the /ui route)."""
    path = re.sub(r"\{(\w+):path\}", r"{\1+}", path)
    return path.rstrip("/") if len(path) > 1 else path


def venv_tool(name: str) -> Path:
    """A console script of the running interpreter's environment, else of the repository's .venv."""
    for candidate in (Path(sys.executable).parent / name, ROOT / ".venv" / "bin" / name):
        if candidate.is_file():
            return candidate
    pytest.skip(f"{name} is not installed (requirements-dev.txt)")


# ------------------------------------------------------------------------------------ template


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from cfnlint.decode import decode

    parsed, matches = decode(str(TEMPLATE))
    assert not matches, [str(m) for m in matches]
    return parsed


@pytest.fixture(scope="module")
def resources(template) -> dict[str, Any]:
    return template["Resources"]


def sam_function_schema() -> dict[str, Any]:
    """cfn-lint's JSON schema of AWS::Serverless::Function (its event types are under definitions)."""
    import cfnlint

    schemas = Path(cfnlint.__file__).parent / "data" / "schemas"
    digest = json.loads((schemas / "providers" / "sam.json").read_text())["AWS::Serverless::Function"]
    return json.loads((schemas / "resources" / f"{digest}.json").read_text())


def test_cfn_lint_finds_no_errors_and_no_warnings() -> None:
    result = subprocess.run(
        [str(venv_tool("cfn-lint")), "--format", "json", "--", str(TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode in (0, 2, 4, 6, 8, 10, 12, 14), result.stderr  # 1 = cfn-lint crashed
    findings = json.loads(result.stdout or "[]")
    summary = [f"{f['Rule']['Id']} {f['Message']} ({f['Location']['Path']})" for f in findings]
    assert [s for f, s in zip(findings, summary, strict=True) if f["Level"] == "Error"] == []
    assert [s for f, s in zip(findings, summary, strict=True) if f["Level"] == "Warning"] == []


def test_template_is_sam_with_the_six_functions(template, resources) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    functions = {name: r for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    assert set(functions) == set(FUNCTIONS)
    for name, function in functions.items():
        props = function["Properties"]
        assert props["Handler"] == FUNCTIONS[name]
        # Packaged from the repository root so `common/` travels with every handler.
        assert props["CodeUri"] == "."
        assert "Role" in props, f"{name} must use its least-privilege role"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_handler_is_importable_and_serves_the_template_routes(resources, name) -> None:
    """The handler exists and is callable; an HTTP function's router has exactly its template routes."""
    module_name, _, attr = FUNCTIONS[name].rpartition(".")
    package = module_name.rpartition(".")[0]
    if not (ROOT / Path(*module_name.split("."))).with_suffix(".py").exists():
        pytest.skip(f"{module_name} is not written yet")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, attr))
    events = resources[name]["Properties"].get("Events") or {}
    declared = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in events.values()}
    if not (ROOT / Path(*package.split(".")) / "routes.py").exists():
        assert name == "IngestFunction" and not declared
        return
    routes_module = importlib.import_module(f"{package}.routes")
    # A function serving more than its router (the console: docs and schema) names its routers.
    lambda_routers = getattr(routes_module, "lambda_routers", None)
    routers = lambda_routers() if lambda_routers is not None else [routes_module.router]
    served = {
        (method, api_gateway_path(route.path))
        for router in routers
        for route in router.routes
        for method in route.methods
    }
    assert served == declared


def test_globals_runtime_matches_the_dockerfile_and_environment(template) -> None:
    function_globals = template["Globals"]["Function"]
    runtime = function_globals["Runtime"]
    base = re.search(r"^FROM\s+python:(\d+\.\d+)\.", DOCKERFILE.read_text(), re.M)
    assert base and runtime == f"python{base.group(1)}"
    assert function_globals["Architectures"] == ["x86_64"]
    env = function_globals["Environment"]["Variables"]
    for key in (
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "LOG_LEVEL",
        "DB_SECRET_ARN",
        "REDIS_URL",
        "CACHE_TTL_SECONDS",
    ):
        assert key in env, key
    assert env["DB_SECRET_ARN"] == {"Ref": "DbSecretArn"}
    # The URL comes from the secret; the empty DATABASE_URL exists only for `sam local --env-vars`.
    assert env["DATABASE_URL"] == ""
    assert function_globals["VpcConfig"] == {
        "SubnetIds": {"Ref": "SubnetIds"},
        "SecurityGroupIds": {"Ref": "SecurityGroupIds"},
    }


def test_http_api_routes_are_exact(resources) -> None:
    event_schema = sam_function_schema()["definitions"]["HttpApiEventProperties"]
    from jsonschema import Draft7Validator

    validator = Draft7Validator(event_schema)
    routes: dict[tuple[str, str], str] = {}
    for name in FUNCTIONS:
        for event_name, event in (resources[name]["Properties"].get("Events") or {}).items():
            assert event["Type"] == "HttpApi", f"{name}.{event_name}"
            props = event["Properties"]
            errors = [e.message for e in validator.iter_errors(props)]
            assert errors == [], f"{name}.{event_name}: {errors}"
            assert props["ApiId"] == {"Ref": "HttpApi"}
            assert props["PayloadFormatVersion"] == "2.0"
            key = (props["Method"], props["Path"])
            assert key not in routes, f"route {key} declared twice"
            routes[key] = name
    assert routes == ROUTES
    assert resources["HttpApi"]["Type"] == "AWS::Serverless::HttpApi"
    # The $default stage: no stage prefix in rawPath for Mangum to strip.
    assert "StageName" not in resources["HttpApi"]["Properties"]


def test_sam_transform_expands_the_template(monkeypatch) -> None:
    """The real SAM translator (what CloudFormation runs) accepts the template, offline."""
    pytest.importorskip("samtranslator", reason="aws-sam-translator is not installed")
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    class NoManagedPolicies:
        def load(self):
            raise AssertionError("managed policy lookup attempted (needs AWS)")

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    parsed = yaml_parse(TEMPLATE.read_text())
    for resource in parsed["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://placeholder/code.zip"
    expanded = transform(parsed, {}, NoManagedPolicies())["Resources"]

    functions = {name for name, r in expanded.items() if r["Type"] == "AWS::Lambda::Function"}
    assert functions == set(FUNCTIONS)
    (api,) = [r for r in expanded.values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    paths = api["Properties"]["Body"]["paths"]
    routes = {(method.upper(), path) for path, methods in paths.items() for method in methods}
    assert routes == set(ROUTES)
    permissions = [r for r in expanded.values() if r["Type"] == "AWS::Lambda::Permission"]
    assert len(permissions) == len(ROUTES)


def test_sample_api_events_match_template_routes() -> None:
    """infra/events/apigw_*.json (for `sam local invoke`) are payload 2.0 events of declared routes."""
    samples = sorted((ROOT / "infra" / "events").glob("apigw_*.json"))
    if not samples:
        pytest.skip("no infra/events/apigw_*.json yet")
    for sample in samples:
        event = json.loads(sample.read_text())
        assert event["version"] == "2.0", sample.name
        method, _, path = event["routeKey"].partition(" ")
        assert (method, path) in ROUTES, f"{sample.name}: {event['routeKey']} is not a template route"
        assert event["requestContext"]["http"]["method"] == method, sample.name


def test_api_url_output(template) -> None:
    url = template["Outputs"]["ApiUrl"]["Value"]["Fn::Sub"]
    assert url.startswith("https://${HttpApi}.execute-api.${AWS::Region}.")


@pytest.mark.parametrize(
    ("resource", "condition"),
    [
        ("IngestMskEventSourceMapping", "UseMsk"),
        ("IngestSelfManagedKafkaEventSourceMapping", "UseSelfManagedKafka"),
    ],
)
def test_kafka_event_source_mappings(template, resources, resource, condition) -> None:
    esm = resources[resource]
    assert esm["Type"] == "AWS::Lambda::EventSourceMapping"
    assert esm["Condition"] == condition
    props = esm["Properties"]
    params = template["Parameters"]
    assert props["FunctionName"] == {"Ref": "IngestFunction"}
    assert props["Topics"] == [{"Ref": "KafkaTopic"}]
    assert params["KafkaTopic"]["Default"] == "warehouse-movements"
    assert props["StartingPosition"] == "TRIM_HORIZON"
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    assert props["BatchSize"] == {"Ref": "KafkaBatchSize"}
    assert props["MaximumBatchingWindowInSeconds"] == {"Ref": "KafkaMaxBatchingWindowSeconds"}
    # Bounded retries: an infinite (-1) value would block a partition behind a poison record.
    retries = params[props["MaximumRetryAttempts"]["Ref"]]
    assert retries["MinValue"] >= 0 and 0 <= retries["Default"] <= 100
    assert props["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["IngestFailureQueue", "Arn"]}}
    }
    assert props["ProvisionedPollerConfig"]["MaximumPollers"] == {"Ref": "KafkaMaxPollers"}
    if condition == "UseMsk":
        assert props["EventSourceArn"] == {"Ref": "MskClusterArn"}
        assert props["AmazonManagedKafkaEventSourceConfig"]["ConsumerGroupId"] == {
            "Ref": "KafkaConsumerGroupId"
        }
    else:
        assert "EventSourceArn" not in props
        assert props["SelfManagedEventSource"]["Endpoints"]["KafkaBootstrapServers"] == {
            "Fn::Split": [",", {"Ref": "SelfManagedKafkaBootstrapServers"}]
        }
        assert props["SelfManagedKafkaEventSourceConfig"]["ConsumerGroupId"] == {
            "Ref": "KafkaConsumerGroupId"
        }
        types = {c["Type"] for c in props["SourceAccessConfigurations"] if "Type" in c}
        assert {"VPC_SUBNET", "VPC_SECURITY_GROUP"} <= types


def test_kafka_source_is_chosen_by_parameter(template) -> None:
    params, conditions = template["Parameters"], template["Conditions"]
    assert params["KafkaSource"]["AllowedValues"] == ["MSK", "SelfManaged"]
    assert {"Fn::Equals": [{"Ref": "KafkaSource"}, "MSK"]} in conditions["UseMsk"]["Fn::And"]
    assert {"Fn::Equals": [{"Ref": "KafkaSource"}, "SelfManaged"]} in conditions["UseSelfManagedKafka"][
        "Fn::And"
    ]
    for secret_param in ("WebhookToken", "RedisUrl"):
        assert params[secret_param]["NoEcho"] is True


def _statements(resources) -> list[tuple[str, dict[str, Any]]]:
    """Every IAM statement of the template's roles and policies, Fn::If branches unwrapped."""
    found: list[tuple[str, dict[str, Any]]] = []

    def add(owner: str, statements: list[Any]) -> None:
        for statement in statements:
            if "Fn::If" in statement:
                statement = statement["Fn::If"][1]
            if statement != {"Ref": "AWS::NoValue"}:
                found.append((owner, statement))

    for name, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy":
            add(name, props["PolicyDocument"]["Statement"])
        elif resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                add(name, policy["PolicyDocument"]["Statement"])
    return found


def test_iam_is_least_privilege(resources) -> None:
    statements = _statements(resources)
    assert statements
    for owner, statement in statements:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all(a != "*" and not a.endswith(":*") for a in actions), (owner, actions)
        if statement["Resource"] == "*":
            # Only describe calls, which have no resource-level permissions.
            assert all(a.startswith("ec2:Describe") for a in actions), (owner, actions)
        if "secretsmanager:GetSecretValue" in actions:
            assert statement["Resource"] in ({"Ref": "DbSecretArn"}, {"Ref": "KafkaSaslSecretArn"}), owner
        if "sqs:SendMessage" in actions:
            assert statement["Resource"] == {"Fn::GetAtt": ["IngestFailureQueue", "Arn"]}
    secret_readers = {o for o, s in statements if s["Resource"] == {"Ref": "DbSecretArn"}}
    assert secret_readers == {"IngestFunctionPolicy", "HttpFunctionRole"}
    kafka_actions = {a for o, s in statements if o.startswith("IngestMsk") for a in s["Action"]}
    assert {"kafka:DescribeClusterV2", "kafka:GetBootstrapBrokers", "kafka-cluster:ReadData"} <= kafka_actions
    for role in ("IngestFunctionRole", "HttpFunctionRole"):
        managed = [p["Fn::Sub"] for p in resources[role]["Properties"]["ManagedPolicyArns"]]
        assert any(p.endswith("service-role/AWSLambdaVPCAccessExecutionRole") for p in managed), role


def test_on_failure_queue(resources) -> None:
    queue = resources["IngestFailureQueue"]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["SqsManagedSseEnabled"] is True


# ------------------------------------------------------------------------------------- compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_matches_the_vendored_compose_specification(compose) -> None:
    from jsonschema import Draft202012Validator

    schema = json.loads(SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    assert [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose)] == []
    # ...and the validator does reject a wrong file.
    broken = json.loads(json.dumps(compose))
    broken["services"]["app"]["not_a_compose_key"] = True
    broken["services"]["redis"]["healthcheck"]["retries"] = [3]
    assert len(list(validator.iter_errors(broken))) >= 2


def test_every_service_has_a_healthcheck_or_a_reason(compose) -> None:
    for name, service in compose["services"].items():
        check = service.get("healthcheck") or {}
        if check.get("test") and not check.get("disable"):
            continue
        assert str(service.get("x-healthcheck-reason", "")).strip(), f"{name}: no healthcheck and no reason"
    for name in ("postgres", "redis", "kafka", "app"):
        assert compose["services"][name]["healthcheck"]["test"], name


def test_compose_services_images_and_dependencies(compose) -> None:
    services = compose["services"]
    assert services["postgres"]["image"] == "postgres:16-alpine"
    assert services["redis"]["image"] == "redis:7-alpine"
    assert services["kafka"]["image"] == "apache/kafka:4.1.1"
    assert services["kafka-init"]["image"] == "apache/kafka:4.1.1"
    assert services["app"]["build"]["dockerfile"] == "Dockerfile"
    assert services["app"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "kafka": {"condition": "service_healthy"},
        "kafka-init": {"condition": "service_completed_successfully"},
    }
    assert services["kafka-init"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    kafka_env = services["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka_env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    init_script = services["kafka-init"]["command"][0]
    assert (
        "--create --if-not-exists" in init_script
        and '--partitions "$${KAFKA_TOPIC_PARTITIONS}"' in init_script
    )
    assert services["kafka-init"]["environment"]["KAFKA_TOPIC_PARTITIONS"] == "${KAFKA_TOPIC_PARTITIONS:-3}"
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "pgdata" in compose["volumes"]


def test_compose_interpolations_all_have_defaults() -> None:
    text = "\n".join(
        line.split(" #")[0] for line in COMPOSE.read_text().splitlines() if not line.lstrip().startswith("#")
    )
    # `$$` is a literal dollar for the container's shell; every `${VAR...}` left must carry a default.
    references = re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}", text)
    assert references
    assert [name for name, rest in references if not rest.startswith((":-", "-"))] == []


def test_app_settings_follow_env_example(compose) -> None:
    env_example = ROOT / ".env.example"
    if not env_example.exists():
        pytest.skip(".env.example is not written yet")
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", env_example.read_text(), re.M))
    app_env = compose["services"]["app"]["environment"]
    # Addresses inside the Compose network are fixed; everything else is `${VAR:-default}`.
    fixed = {"DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "APP_HOST"}
    for key, value in app_env.items():
        if key in fixed:
            continue
        assert value == f"${{{key}:-{value.split(':-', 1)[1]}" if ":-" in value else False, (key, value)
        assert key in documented | {"WAIT_TIMEOUT_SECONDS"}, f"{key} is not in .env.example"
    for key in ("KAFKA_TOPIC", "CACHE_TTL_SECONDS", "WEBHOOK_TOKEN", "APP_PORT", "LOG_LEVEL"):
        assert key in app_env


# ---------------------------------------------------------------------------------- Dockerfile


def test_dockerfile_is_pinned_non_root_and_runs_the_entrypoint() -> None:
    lines = [
        line.strip()
        for line in DOCKERFILE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    froms = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert len(froms) == 1 and re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", froms[0]), froms
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    user_at = max(i for i, line in enumerate(lines) if line.startswith("USER "))
    assert not any(line.startswith(("RUN ", "COPY ", "ADD ")) for line in lines[user_at:]), (
        "USER must come last"
    )
    for copied in ("common/", "functions/", "infra/docker/"):
        assert any(line.startswith("COPY ") and copied in line for line in lines), copied
    assert any(line.startswith("RUN pip install") and "-r requirements.txt" in line for line in lines)
    assert lines[-1] == 'ENTRYPOINT ["/app/infra/docker/entrypoint.sh"]'
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*")] == "*" and "**/.env" in ignore  # deny by default, never .env


def test_entrypoint_waits_migrates_and_execs_uvicorn() -> None:
    text = "\n".join(line for line in ENTRYPOINT.read_text().splitlines() if not line.startswith("#"))
    assert os.access(ENTRYPOINT, os.X_OK)
    subprocess.run(["bash", "-n", str(ENTRYPOINT)], check=True)
    wait_at, migrate_at, uvicorn_at = (
        text.index("infra/docker/wait_for.py"),
        text.index("python -m common.migrate"),
        text.index("exec uvicorn functions.local_app.main:app"),
    )
    assert wait_at < migrate_at < uvicorn_at
    assert "--host 0.0.0.0" in text and '--port "${APP_PORT:-8000}"' in text


def test_entrypoint_execs_a_given_command(tmp_path) -> None:
    env = {
        **os.environ,
        "WAIT_FOR": "",
        "SKIP_MIGRATIONS": "1",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    result = subprocess.run(
        ["bash", str(ENTRYPOINT), "python", "-c", "print('replaced by exec')"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "replaced by exec"


def test_wait_for_succeeds_when_ports_listen_and_times_out_when_not() -> None:
    listeners = [socket.create_server(("127.0.0.1", 0)) for _ in range(3)]
    try:
        ports = [s.getsockname()[1] for s in listeners]
        env = {
            **os.environ,
            "DATABASE_URL": f"postgresql://u:never-printed@127.0.0.1:{ports[0]}/db",
            "REDIS_URL": f"redis://127.0.0.1:{ports[1]}/0",
            "CACHE_ENABLED": "true",
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:1,127.0.0.1:{ports[2]}",
        }
        up = subprocess.run(
            [sys.executable, str(WAIT_FOR), "--timeout", "5"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert up.returncode == 0, up.stderr
        assert "never-printed" not in up.stdout + up.stderr
    finally:
        for s in listeners:
            s.close()
    closed = subprocess.run(
        [sys.executable, str(WAIT_FOR), "--timeout", "0.5", "postgres"],
        env={**env, "DATABASE_URL": f"postgresql://u:p@127.0.0.1:{ports[0]}/db"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert closed.returncode == 1
    assert "gave up on postgres" in closed.stderr


# ------------------------------------------------------------------------------ lint-infra.sh


def _lint(env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "LINT_INFRA_SKIP_CFN": "1",
        "VENV": str(Path(sys.executable).parent.parent),
        **env_extra,
    }
    return subprocess.run(
        ["bash", str(LINT_SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_lint_infra_script_passes_on_the_repository() -> None:
    venv_tool("check-jsonschema")
    result = _lint({})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lint-infra: all checks passed" in result.stdout


def test_lint_infra_script_fails_on_a_service_without_healthcheck(tmp_path, compose) -> None:
    venv_tool("check-jsonschema")
    broken = json.loads(json.dumps(compose))
    del broken["services"]["redis"]["healthcheck"]
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    root_dockerfile = tmp_path / "Dockerfile"
    shutil.copy(DOCKERFILE, root_dockerfile)
    root_dockerfile.write_text(DOCKERFILE.read_text().replace("USER app:app", "USER root"))

    result = _lint({"COMPOSE_FILE_TO_LINT": str(path), "DOCKERFILE": str(root_dockerfile)})

    assert result.returncode == 1
    assert "service 'redis' has neither a healthcheck nor an x-healthcheck-reason" in result.stderr
    assert "the final USER is root" in result.stderr
