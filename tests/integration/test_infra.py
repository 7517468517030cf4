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
# cfn-lint, aws-sam-translator and check-jsonschema live in their own locked environment (made by
# `stack.sh venv`), never in the test environment: there they would pick the runtime's pydantic.
LINT_VENV = ROOT / "tools" / "lint" / ".venv"

# Parameters holding a Secrets Manager ARN: the only things a role may call GetSecretValue on.
SECRET_PARAMETERS = (
    "DbSecretArn",
    "KafkaSaslSecretArn",
    "WebhookTokenSecretArn",
    "OperatorTokenSecretArn",
)
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
    ("GET", "/api/v1/rejected-events/{rejected_event_id}"): "ListFunction",
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
            "/ui/dead-letters/rows",
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
    """A console script of the lint environment (tools/lint/.venv)."""
    candidate = LINT_VENV / "bin" / name
    if not candidate.is_file():
        pytest.fail(f"{candidate} is missing: make the lint environment with `make venv`")
    return candidate


def in_lint_env(code: str, *args: str) -> Any:
    """Run `code` with the lint environment's Python; it prints one JSON document, returned parsed."""
    done = subprocess.run(
        [str(venv_tool("python")), "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "AWS_DEFAULT_REGION": "eu-central-1"},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# ------------------------------------------------------------------------------------ template


# The template as cfn-lint reads it (short-form intrinsics like !Ref expanded), as JSON.
DECODE = """
import json, sys
from cfnlint.decode import decode
parsed, matches = decode(sys.argv[1])
print(json.dumps({"template": parsed, "matches": [str(m) for m in matches or []]}))
"""


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    decoded = in_lint_env(DECODE, str(TEMPLATE))
    assert not decoded["matches"], decoded["matches"]
    return decoded["template"]


@pytest.fixture(scope="module")
def resources(template) -> dict[str, Any]:
    return template["Resources"]


def sam_function_schema() -> dict[str, Any]:
    """cfn-lint's JSON schema of AWS::Serverless::Function (its event types are under definitions)."""
    package = in_lint_env(
        "import json, pathlib, cfnlint; print(json.dumps(str(pathlib.Path(cfnlint.__file__).parent)))"
    )
    schemas = Path(package) / "data" / "schemas"
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
        # Built by infra/lambda/Makefile from the repository root: only what the handler imports.
        assert props["CodeUri"] == "infra/lambda"
        assert function["Metadata"] == {"BuildMethod": "makefile", "WorkingDirectory": "."}
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


# The real SAM transform, offline: CodeUri swapped for a dummy S3 URI, no managed policy lookup.
TRANSFORM = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    def load(self):
        raise AssertionError("managed policy lookup attempted (needs AWS)")


with open(sys.argv[1], encoding="utf-8") as fh:
    parsed = yaml_parse(fh.read())
for resource in parsed["Resources"].values():
    if resource["Type"] == "AWS::Serverless::Function":
        resource["Properties"]["CodeUri"] = "s3://placeholder/code.zip"
print(json.dumps(transform(parsed, {}, NoManagedPolicies())["Resources"]))
"""


def test_sam_transform_expands_the_template() -> None:
    """The real SAM translator (what CloudFormation runs) accepts the template, offline."""
    expanded = in_lint_env(TRANSFORM, str(TEMPLATE))

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
    # An outage is retried, not skipped: 10000 is the most Lambda accepts beside an on-failure
    # destination (-1 with a destination would mean 10); -1 drops the destination instead.
    retries = params[props["MaximumRetryAttempts"]["Ref"]]
    assert (retries["Default"], retries["MinValue"], retries["MaxValue"]) == (10000, -1, 10000)
    assert props["MaximumRecordAgeInSeconds"] == -1
    assert template["Conditions"]["KafkaRetriesUntilExpiry"] == {
        "Fn::Equals": [{"Ref": "KafkaMaxRetryAttempts"}, -1]
    }
    assert props["DestinationConfig"] == {
        "Fn::If": [
            "KafkaRetriesUntilExpiry",
            {"Ref": "AWS::NoValue"},
            {"OnFailure": {"Destination": {"Fn::GetAtt": ["IngestFailureQueue", "Arn"]}}},
        ]
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
    assert params["RedisUrl"]["NoEcho"] is True


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
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
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
            assert statement["Resource"] in [{"Ref": p} for p in SECRET_PARAMETERS], owner
        if any(a.startswith("sqs:") for a in actions):
            assert statement["Resource"] == {"Fn::GetAtt": ["IngestFailureQueue", "Arn"]}
    secret_readers = {o for o, s in statements if s["Resource"] == {"Ref": "DbSecretArn"}}
    assert secret_readers == {
        "IngestFunctionPolicy",
        "HttpFunctionRole",
        "WebhookFunctionRole",
        "OperatorFunctionRole",
        "DatabaseProxyRole",
        "RedrivePolicy",
    }
    kafka_actions = {a for o, s in statements if o.startswith("IngestMsk") for a in s["Action"]}
    assert {"kafka:DescribeClusterV2", "kafka:GetBootstrapBrokers", "kafka-cluster:ReadData"} <= kafka_actions
    for role in ("IngestFunctionRole", "HttpFunctionRole", "WebhookFunctionRole", "OperatorFunctionRole"):
        managed = [p["Fn::Sub"] for p in resources[role]["Properties"]["ManagedPolicyArns"]]
        assert any(p.endswith("service-role/AWSLambdaVPCAccessExecutionRole") for p in managed), role


def test_on_failure_queue(resources) -> None:
    queue = resources["IngestFailureQueue"]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["SqsManagedSseEnabled"] is True


# ------------------------------------------------ template: ready for a real AWS account (#13)
#
# CloudFormation resolves Fn::If, conditions and rules from parameter values; `deployed()` does the
# same offline for the subset the template uses, so a test can check what a given set of
# parameters actually deploys (which authorizer, which variables, which resources).

NO_VALUE = object()
# Values for the parameters without a default, as a deploy would pass them.
REQUIRED_PARAMETERS = {
    "SubnetIds": "subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa2",
    "SecurityGroupIds": "sg-0aaaaaaaaaaaaaaa1",
    "DbSecretArn": "arn:aws:secretsmanager:eu-central-1:111122223333:secret:warehouse-stock/db-AbCdEf",
    "WebhookTokenSecretArn": "arn:aws:secretsmanager:eu-central-1:111122223333:secret:ws/webhook-AbCdEf",
    "MskClusterArn": "arn:aws:kafka:eu-central-1:111122223333:cluster/warehouse/0c1f2e3d-1",
    # OperatorAuth=Token, the default, needs the operator token's secret.
    "OperatorTokenSecretArn": "arn:aws:secretsmanager:eu-central-1:111122223333:secret:ws/operator-AbCdEf",
}
OPERATOR_SECRET = "arn:aws:secretsmanager:eu-central-1:111122223333:secret:ws/operator-AbCdEf"
OPERATOR_ROUTES = {
    ("GET", "/api/v1/rejected-events"): "ListFunction",
    ("GET", "/api/v1/rejected-events/{rejected_event_id}"): "ListFunction",
    ("POST", "/api/v1/rejected-events/{rejected_event_id}/replay"): "ReplayFunction",
    ("GET", "/ui/dead-letters/rows"): "ConsoleFunction",  # the console's dead-letter rows
}
HTTP_FUNCTIONS = sorted(set(ROUTES.values()))


class Deployed:
    """The template's conditions, rules and resolved values under one set of parameter values."""

    def __init__(self, template: dict[str, Any], **overrides: str) -> None:
        self.template = template
        self.params: dict[str, Any] = {}
        for name, spec in template["Parameters"].items():
            value = overrides.get(name, REQUIRED_PARAMETERS.get(name, spec.get("Default")))
            assert value is not None, f"no value for parameter {name}"
            value = str(value)
            is_list = spec["Type"] == "CommaDelimitedList" or spec["Type"].startswith("List<")
            self.params[name] = value.split(",") if is_list else value
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self._conditions[name]

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [r for r in (self.resolve(x) for x in node) if r is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return NO_VALUE
                return self.params.get(arg, node)  # resources and pseudo parameters stay symbolic
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::Equals":
                left, right = (self.resolve(x) for x in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(x) for x in arg)
            if key == "Fn::Or":
                return any(self.resolve(x) for x in arg)
            if key == "Fn::Join":
                separator, items = arg
                items = self.resolve(items)
                if all(isinstance(i, str) for i in items):
                    return separator.join(items)
        resolved = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def failed_rules(self) -> list[str]:
        """AssertDescriptions of the rules CloudFormation would refuse these parameters with."""
        failed = []
        for rule in self.template.get("Rules", {}).values():
            if "RuleCondition" in rule and not self.resolve(rule["RuleCondition"]):
                continue
            failed += [a["AssertDescription"] for a in rule["Assertions"] if not self.resolve(a["Assert"])]
        return failed

    def resources(self) -> dict[str, Any]:
        return {
            name: self.resolve(r)
            for name, r in self.template["Resources"].items()
            if "Condition" not in r or self.condition(r["Condition"])
        }

    def environment(self, function: str) -> dict[str, Any]:
        """A function's variables: Globals merged with its own, as SAM does."""
        variables = dict(self.template["Globals"]["Function"]["Environment"]["Variables"])
        own = self.template["Resources"][function]["Properties"].get("Environment", {})
        variables.update(own.get("Variables", {}))
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in variables.items()) if v is not NO_VALUE}

    def operations(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The HttpApi DefinitionBody's operations, resolved: (METHOD, path) -> operation."""
        body = self.resolve(self.template["Resources"]["HttpApi"]["Properties"]["DefinitionBody"])
        return {
            (method.upper(), path): op for path, item in body["paths"].items() for method, op in item.items()
        }

    def security_schemes(self) -> dict[str, Any]:
        body = self.resolve(self.template["Resources"]["HttpApi"]["Properties"]["DefinitionBody"])
        return body.get("components", {}).get("securitySchemes", {})


def test_deployed_resolver_resolves_conditions_and_rules(template) -> None:
    """The offline resolver the tests below rely on gets a known case right both ways."""
    msk = Deployed(template)
    assert msk.condition("UseMsk") and not msk.condition("UseSelfManagedKafka")
    assert msk.failed_rules() == []
    no_cluster = Deployed(template, MskClusterArn="")
    assert no_cluster.failed_rules() == ["MskClusterArn is required when KafkaSource is MSK"]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_runs_python_3_13_or_later(template, resources, name) -> None:
    """Lambda deprecates python3.11 on 2027-06-30; 3.13 and 3.14 are supported into 2029."""
    runtime = resources[name]["Properties"].get("Runtime", template["Globals"]["Function"]["Runtime"])
    match = re.fullmatch(r"python3\.(\d+)", runtime)
    assert match and int(match.group(1)) >= 13, f"{name}: {runtime}"


def test_tokens_are_only_secret_arns_never_plain_parameters_or_variables(template) -> None:
    params = template["Parameters"]
    # No token, password or URL-with-credentials parameter except the cache's (which has none in
    # a default deploy); tokens are Secrets Manager ARNs, shown and logged harmlessly.
    assert [name for name, spec in params.items() if spec.get("NoEcho")] == ["RedisUrl"]
    token_params = sorted(name for name in params if "Token" in name)
    assert token_params == ["OperatorTokenSecretArn", "WebhookTokenSecretArn"]
    for name in token_params:
        assert params[name]["AllowedPattern"].endswith(r":secret:.+$"), name
    deployed = Deployed(template, OperatorAuth="Token", OperatorTokenSecretArn=OPERATOR_SECRET)
    for function in FUNCTIONS:
        env = deployed.environment(function)
        assert not {"WEBHOOK_TOKEN", "OPERATOR_TOKEN"} & set(env), function
        assert env.get("WEBHOOK_TOKEN_SECRET_ARN") == (
            REQUIRED_PARAMETERS["WebhookTokenSecretArn"] if function == "WebhookFunction" else None
        ), function
        operator = function in OPERATOR_ROUTES.values()
        assert env.get("OPERATOR_TOKEN_SECRET_ARN") == (OPERATOR_SECRET if operator else None), function


def test_every_stage_requires_a_webhook_token_secret(template) -> None:
    rule = template["Rules"]["WebhookTokenRequired"]
    assert "RuleCondition" not in rule  # dev included
    message = "WebhookTokenSecretArn is required for every stage (the webhook writes stock)"
    for stage in template["Parameters"]["Stage"]["AllowedValues"]:
        assert Deployed(template, Stage=stage, WebhookTokenSecretArn="").failed_rules() == [message]
        assert Deployed(template, Stage=stage).failed_rules() == []


@pytest.mark.parametrize(
    ("overrides", "refused"),
    [
        (
            {"OperatorAuth": "Token", "OperatorTokenSecretArn": ""},
            ["OperatorTokenSecretArn is required when OperatorAuth is Token"],
        ),
        ({}, []),
        (
            {"OperatorAuth": "Token", "OperatorTokenSecretArn": REQUIRED_PARAMETERS["WebhookTokenSecretArn"]},
            ["the operator token must not be the producers' webhook token"],
        ),
        ({"OperatorAuth": "Token", "OperatorTokenSecretArn": OPERATOR_SECRET}, []),
        (
            {"OperatorAuth": "JWT"},
            [
                "OperatorJwtIssuer is required when OperatorAuth is JWT",
                "OperatorJwtAudience is required when OperatorAuth is JWT",
            ],
        ),
        (
            {"OperatorAuth": "JWT", "OperatorJwtIssuer": "https://idp.example", "OperatorJwtAudience": "ops"},
            [],
        ),
        ({"DbProxy": "Create"}, ["DbProxy=Create needs DbProxyTargetInstanceId or DbProxyTargetClusterId"]),
        (
            {"DbProxy": "Create", "DbProxyTargetInstanceId": "db1", "DbProxyTargetClusterId": "c1"},
            ["give DbProxyTargetInstanceId or DbProxyTargetClusterId, not both"],
        ),
        ({"DbProxy": "Create", "DbProxyTargetClusterId": "c1"}, []),
        ({"DbProxy": "Existing"}, ["ExistingDbProxyEndpoint is required when DbProxy is Existing"]),
    ],
)
def test_rules_refuse_incomplete_configurations(template, overrides, refused) -> None:
    assert Deployed(template, **overrides).failed_rules() == refused


@pytest.mark.parametrize("mode", ["IAM", "JWT", "Token"])
def test_operator_routes_are_authorized_in_every_mode(template, mode) -> None:
    """IAM and JWT: an authorizer on exactly the operator routes, the app trusts it; Token: the app
    checks the operator bearer token. The webhook and the reads never carry a gateway authorizer."""
    overrides = {"OperatorAuth": mode}
    if mode == "JWT":
        overrides |= {"OperatorJwtIssuer": "https://idp.example/pool", "OperatorJwtAudience": "operators"}
    if mode == "Token":
        overrides |= {"OperatorTokenSecretArn": OPERATOR_SECRET}
    deployed = Deployed(template, **overrides)
    assert deployed.failed_rules() == []
    operations, schemes = deployed.operations(), deployed.security_schemes()
    # The body declares the operator operations only; SAM adds every route's integration to it.
    assert set(operations) == set(OPERATOR_ROUTES)
    assert {key: ROUTES[key] for key in OPERATOR_ROUTES} == OPERATOR_ROUTES
    for function in HTTP_FUNCTIONS:
        env = deployed.environment(function)
        if function in OPERATOR_ROUTES.values():
            assert env["OPERATOR_AUTH"] == ("token" if mode == "Token" else "gateway"), function
        else:
            assert "OPERATOR_AUTH" not in env, function
    if mode == "Token":
        assert all("security" not in op for op in operations.values())
        assert schemes == {}
        return
    assert all(op["security"] == [{"OperatorAuthorizer": []}] for op in operations.values())
    scheme = schemes["OperatorAuthorizer"]
    if mode == "IAM":
        assert scheme == {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            "x-amazon-apigateway-authtype": "awsSigv4",
        }
    else:
        assert scheme["type"] == "oauth2"
        assert scheme["x-amazon-apigateway-authorizer"] == {
            "type": "jwt",
            "identitySource": "$request.header.Authorization",
            "jwtConfiguration": {"issuer": "https://idp.example/pool", "audience": ["operators"]},
        }


def test_default_deploy_leaves_no_operator_route_open(template) -> None:
    """The default, Token, works from a browser and from scripts: the functions require the operator
    token (one secret, required at deploy), and a deploy without it is refused."""
    assert template["Parameters"]["OperatorAuth"]["Default"] == "Token"
    without = Deployed(template, OperatorTokenSecretArn="")
    assert without.failed_rules() == ["OperatorTokenSecretArn is required when OperatorAuth is Token"]
    deployed = Deployed(template)
    for function in set(OPERATOR_ROUTES.values()):
        assert deployed.environment(function)["OPERATOR_AUTH"] == "token", function
        assert deployed.environment(function)["OPERATOR_TOKEN_SECRET_ARN"] == OPERATOR_SECRET, function


def test_iam_mode_hands_out_exactly_the_operator_routes(template) -> None:
    deployed = Deployed(template, OperatorAuth="IAM")
    assert all(op["security"] == [{"OperatorAuthorizer": []}] for op in deployed.operations().values())
    # IAM callers get exactly the operator routes from the policy the stack hands out.
    policy = deployed.resources()["OperatorInvokePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (statement,) = policy
    assert statement["Action"] == "execute-api:Invoke"
    arns = sorted(r["Fn::Sub"].rpartition("${HttpApi}/")[2] for r in statement["Resource"])
    assert arns == [
        "*/GET/api/v1/rejected-events",
        "*/GET/api/v1/rejected-events/*",
        "*/GET/ui/dead-letters/rows",
        "*/POST/api/v1/rejected-events/*/replay",
    ]


# The real SAM transform, offline: no managed policy look-up (it would need AWS).
SAM_TRANSFORM = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicies:
    def load(self):
        raise AssertionError("managed policy lookup attempted (needs AWS)")

parsed = yaml_parse(open(sys.argv[1]).read())
for resource in parsed["Resources"].values():
    if resource["Type"] == "AWS::Serverless::Function":
        resource["Properties"]["CodeUri"] = "s3://placeholder/code.zip"
expanded = transform(parsed, {}, NoManagedPolicies())
expanded["Parameters"] = parsed["Parameters"]
print(json.dumps(expanded, default=str))
"""


def test_sam_keeps_the_operator_authorizer_when_it_merges_the_routes() -> None:
    """The real translator merges each event's integration into the DefinitionBody operations and
    keeps their conditional `security`; the other routes get no authorizer."""
    expanded = in_lint_env(SAM_TRANSFORM, str(TEMPLATE))
    (api,) = [r for r in expanded["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    body = api["Properties"]["Body"]
    for (method, path), function in ROUTES.items():
        op = body["paths"][path][method.lower()]
        assert f"${{{function}.Arn}}" in op["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
        if (method, path) in OPERATOR_ROUTES:
            assert op["security"] == {
                "Fn::If": ["OperatorAuthByToken", {"Ref": "AWS::NoValue"}, [{"OperatorAuthorizer": []}]]
            }
        else:
            assert "security" not in op, (method, path)
    # ...and CloudFormation resolves that body into the authorizer of the chosen mode.
    assert (
        Deployed(expanded, OperatorAuth="IAM").resolve(body["components"])["securitySchemes"][
            "OperatorAuthorizer"
        ]["x-amazon-apigateway-authtype"]
        == "awsSigv4"
    )


def _secret_access(deployed: Deployed) -> dict[str, set[str]]:
    """Role (or managed policy) -> the secret parameters it may read, under these parameters."""
    resources = deployed.resources()
    access: dict[str, set[str]] = {}

    def add(owner: str, document: dict[str, Any]) -> None:
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "secretsmanager:GetSecretValue" in actions:
                value = statement["Resource"]
                name = next(p for p in SECRET_PARAMETERS if deployed.params[p] == value)
                access.setdefault(owner, set()).add(name)

    for name, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                add(name, policy["PolicyDocument"])
        elif resource["Type"] == "AWS::IAM::Policy":
            for role in props["Roles"]:
                add(role["Ref"], props["PolicyDocument"])
        elif resource["Type"] == "AWS::IAM::ManagedPolicy":
            add(name, props["PolicyDocument"])
    return access


def test_each_role_reads_only_the_secrets_it_needs(template, resources) -> None:
    roles = {name: resources[name]["Properties"]["Role"]["Fn::GetAtt"][0] for name in FUNCTIONS}
    assert roles == {
        "IngestFunction": "IngestFunctionRole",
        "WebhookFunction": "WebhookFunctionRole",
        "GetMovementFunction": "HttpFunctionRole",
        "GetStockFunction": "HttpFunctionRole",
        "ListFunction": "OperatorFunctionRole",
        "ReplayFunction": "OperatorFunctionRole",
        "ConsoleFunction": "OperatorFunctionRole",
    }
    sasl = "arn:aws:secretsmanager:eu-central-1:111122223333:secret:ws/kafka-AbCdEf"
    token_mode = Deployed(template, OperatorAuth="Token", OperatorTokenSecretArn=OPERATOR_SECRET)
    token_mode.params["KafkaSaslSecretArn"] = sasl
    assert _secret_access(token_mode) == {
        "IngestFunctionRole": {"DbSecretArn", "KafkaSaslSecretArn"},
        "WebhookFunctionRole": {"DbSecretArn", "WebhookTokenSecretArn"},
        "OperatorFunctionRole": {"DbSecretArn", "OperatorTokenSecretArn"},
        "HttpFunctionRole": {"DbSecretArn"},
        "RedrivePolicy": {"DbSecretArn", "KafkaSaslSecretArn"},
    }
    # With a gateway authorizer nobody reads an operator token; the proxy role exists only with
    # the proxy and reads the database secret alone.
    default = _secret_access(
        Deployed(template, OperatorAuth="IAM", DbProxy="Create", DbProxyTargetInstanceId="db1")
    )
    assert default["OperatorFunctionRole"] == {"DbSecretArn"}
    assert default["DatabaseProxyRole"] == {"DbSecretArn"}
    assert "OperatorTokenSecretArn" not in set().union(*default.values())


def test_alarms_cover_every_function_the_api_the_consumer_lag_and_the_queue(template, resources) -> None:
    alarms = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    watched = {
        (p["Namespace"], p["MetricName"], p["Dimensions"][0]["Name"], json.dumps(p["Dimensions"][0]["Value"]))
        for p in alarms.values()
        if "MetricName" in p
    }
    for function in FUNCTIONS:
        for metric in ("Errors", "Throttles"):
            assert ("AWS/Lambda", metric, "FunctionName", json.dumps({"Ref": function})) in watched
    # HTTP APIs publish `5xx` (not REST's 5XXError) by ApiId.
    assert ("AWS/ApiGateway", "5xx", "ApiId", json.dumps({"Ref": "HttpApi"})) in watched
    assert ("AWS/Lambda", "OffsetLag", "FunctionName", json.dumps({"Ref": "IngestFunction"})) in watched
    assert (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        json.dumps({"Fn::GetAtt": ["IngestFailureQueue", "QueueName"]}),
    ) in watched
    # + the API's 5xx, the lag, the mapping's state, the dead letters, a failing batch's age, the queue
    assert len(alarms) == 2 * len(FUNCTIONS) + 6
    for name, props in alarms.items():
        for key in ("AlarmActions", "OKActions"):
            assert props[key] == {
                "Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
            }, name
    silent, notified = (
        Deployed(template).resources(),
        Deployed(template, AlarmTopicArn="arn:aws:sns:eu-central-1:111122223333:ops").resources(),
    )
    assert "AlarmActions" not in silent["HttpApi5xxAlarm"]["Properties"]
    assert notified["HttpApi5xxAlarm"]["Properties"]["AlarmActions"] == [
        "arn:aws:sns:eu-central-1:111122223333:ops"
    ]


def test_a_batch_failing_for_long_alarms_on_the_metric_the_handler_emits(template, resources) -> None:
    from common.adapters import observability

    alarm = resources["IngestFailedBatchAgeAlarm"]["Properties"]
    environment = template["Globals"]["Function"]["Environment"]["Variables"]
    assert alarm["MetricName"] == observability.KAFKA_FAILED_BATCH_RECORD_AGE
    namespace = environment["POWERTOOLS_METRICS_NAMESPACE"]
    assert alarm["Namespace"] == namespace == observability.DEFAULT_NAMESPACE
    assert alarm["Dimensions"] == [{"Name": "service", "Value": environment["POWERTOOLS_SERVICE_NAME"]}]
    assert alarm["Statistic"] == "Maximum" and alarm["TreatMissingData"] == "notBreaching"
    default_retention = template["Parameters"]["KafkaRetentionHours"]["Default"] * 3600
    assert template["Parameters"]["FailedBatchRecordAgeAlarmSeconds"]["Default"] <= default_retention / 4


def test_offset_lag_alarm_fires_within_minutes(template, resources) -> None:
    alarm = resources["IngestOffsetLagAlarm"]["Properties"]
    assert alarm["Statistic"] == "Minimum" and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == {"Ref": "KafkaOffsetLagAlarmThreshold"}
    # Above the threshold every minute for 5 minutes (it took ~14 h at the defaults before).
    assert alarm["Period"] * alarm["EvaluationPeriods"] == 300
    assert alarm["DatapointsToAlarm"] == alarm["EvaluationPeriods"]
    assert template["Parameters"]["KafkaOffsetLagAlarmThreshold"]["Default"] >= 1000


def test_a_mapping_that_stops_polling_alarms(resources) -> None:
    """A mapping not Enabled publishes no OffsetLag: missing data for 10 minutes is the alarm."""
    alarm = resources["IngestEventSourceMappingStateAlarm"]["Properties"]
    assert (alarm["MetricName"], alarm["Statistic"], alarm["TreatMissingData"]) == (
        "OffsetLag",
        "SampleCount",
        "breaching",
    )
    assert alarm["Period"] * alarm["EvaluationPeriods"] == 600


def test_dead_letter_alarm_sums_the_metrics_the_handlers_emit(template, resources) -> None:
    from common.adapters import observability

    alarm = resources["DeadLetterRateAlarm"]["Properties"]
    environment = template["Globals"]["Function"]["Environment"]["Variables"]
    stats = [m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m]
    kept = set()
    for stat in stats:
        metric = stat["Metric"]
        assert metric["Namespace"] == environment["POWERTOOLS_METRICS_NAMESPACE"]
        assert metric["MetricName"] == observability.EVENTS
        dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        # The dimension set of the EMF line record_outcomes writes, in full.
        assert set(dims) == {"outcome", "reason", "origin", "service"}
        assert dims["outcome"] == "rejected" and dims["service"] == environment["POWERTOOLS_SERVICE_NAME"]
        kept.add((dims["origin"], dims["reason"]))
    assert kept == {
        ("kafka", "invalid"),
        ("kafka", "conflict"),
        ("kafka", "insufficient_stock"),
        ("webhook", "conflict"),
        ("webhook", "insufficient_stock"),
    }
    (expression,) = [m for m in alarm["Metrics"] if m.get("ReturnData")]
    assert all(stat_id in expression["Expression"] for stat_id in (m["Id"] for m in alarm["Metrics"][1:]))


def test_dashboard_shows_the_lag_the_errors_and_the_alarms(resources) -> None:
    body, variables = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for needle in ("OffsetLag", "Errors", "Throttles", "warehouse_events_total", "5xx",
                   "ApproximateNumberOfMessagesVisible", "${DeadLetterRateAlarm.Arn}"):  # fmt: skip
        assert needle in body, needle
    rendered = re.sub(r"\$\{[^}]+\}", "1", body)
    assert len(json.loads(rendered)["widgets"]) >= 8


@pytest.mark.parametrize(
    ("mode", "endpoint"),
    [
        ("None", ""),
        ("Create", {"Fn::GetAtt": ["DatabaseProxy", "Endpoint"]}),
        ("Existing", "proxy.proxy-abc.eu-central-1.rds.amazonaws.com"),
    ],
)
def test_rds_proxy_is_optional_and_wired_to_db_proxy_endpoint(template, mode, endpoint) -> None:
    overrides = {"DbProxy": mode}
    if mode == "Create":
        overrides["DbProxyTargetInstanceId"] = "warehouse-db"
    if mode == "Existing":
        overrides["ExistingDbProxyEndpoint"] = endpoint
    deployed = Deployed(template, **overrides)
    assert deployed.failed_rules() == []
    for function in FUNCTIONS:
        assert deployed.environment(function)["DB_PROXY_ENDPOINT"] == endpoint, function
    created = {n for n, r in deployed.resources().items() if r["Type"].startswith("AWS::RDS::")}
    assert created == ({"DatabaseProxy", "DatabaseProxyTargetGroup"} if mode == "Create" else set())
    if mode == "Create":
        resources = deployed.resources()
        proxy = resources["DatabaseProxy"]["Properties"]
        assert proxy["EngineFamily"] == "POSTGRESQL" and proxy["RequireTLS"] is True
        assert proxy["Auth"][0]["SecretArn"] == REQUIRED_PARAMETERS["DbSecretArn"]
        targets = resources["DatabaseProxyTargetGroup"]["Properties"]
        assert targets["DBInstanceIdentifiers"] == ["warehouse-db"] and "DBClusterIdentifiers" not in targets


def test_connections_per_container_default_to_one(template) -> None:
    params = template["Parameters"]
    assert (params["DbPoolMax"]["Default"], params["DbPoolMax"]["MaxValue"]) == (1, 2)
    assert Deployed(template).environment("ListFunction")["DB_POOL_MAX"] == "1"
    concurrency = template["Globals"]["Function"]["ReservedConcurrentExecutions"]
    assert Deployed(template).resolve(concurrency) is NO_VALUE  # unset unless asked for
    assert Deployed(template, FunctionReservedConcurrency="20").resolve(concurrency) == "20"


def test_statement_timeouts_end_before_the_function_does(template, resources) -> None:
    deployed = Deployed(template)
    for function in FUNCTIONS:
        timeout = resources[function]["Properties"].get("Timeout", template["Globals"]["Function"]["Timeout"])
        statement_ms = int(deployed.environment(function)["DB_STATEMENT_TIMEOUT_MS"])
        assert 0 < statement_ms < timeout * 1000, function


def test_redrive_has_the_queue_url_and_a_least_privilege_policy(template, resources) -> None:
    outputs = template["Outputs"]
    assert outputs["IngestFailureQueueUrl"]["Value"] == {"Ref": "IngestFailureQueue"}
    assert outputs["RedrivePolicyArn"]["Value"] == {"Ref": "RedrivePolicy"}
    statements = resources["RedrivePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    sqs = next(s for s in statements if s.get("Sid") == "ConsumeOnFailureQueue")
    assert sorted(sqs["Action"]) == [
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
    ]
    assert sqs["Resource"] == {"Fn::GetAtt": ["IngestFailureQueue", "Arn"]}
    # The mapping keeps the on-failure destination (10000 retries by default) ...
    esm = Deployed(template).resources()["IngestMskEventSourceMapping"]["Properties"]
    assert esm["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["IngestFailureQueue", "Arn"]
    }
    # ... and drops it only when retrying until expiry, which Lambda caps at 10 beside one.
    forever = Deployed(template, KafkaMaxRetryAttempts="-1").resources()["IngestMskEventSourceMapping"]
    assert "DestinationConfig" not in forever["Properties"]


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
    # Every other setting reaches the container through .env, which the app service reads.
    assert compose["services"]["app"]["env_file"] == [{"path": ".env", "required": False}]
    readme = (ROOT / "README.md").read_text()
    configuration = readme[readme.index("## Configuration") : readme.index("## Operator commands")]
    settings = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)`", configuration, re.M))
    settings |= {
        n for pair in re.findall(r"^\| `([A-Z0-9_]+)`, `([A-Z0-9_]+)`", configuration, re.M) for n in pair
    }
    assert len(settings) > 40
    assert settings <= documented, f"README settings missing from .env.example: {settings - documented}"


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR:-default}` interpolation (the only form the file uses), `$$` kept."""

    def one(match: re.Match[str]) -> str:
        return env.get(match.group(1)) or match.group(2)

    return re.sub(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*):-([^}]*)\}", one, value)


def test_compose_publishes_every_port_on_localhost_unless_told_otherwise(compose) -> None:
    published = {
        name: service["ports"] for name, service in compose["services"].items() if service.get("ports")
    }
    assert set(published) == {"postgres", "redis", "kafka", "app"}
    for name, ports in published.items():
        for port in ports:
            assert isinstance(port, str) and port.startswith("${BIND_ADDRESS:-127.0.0.1}:"), (name, port)
            host_ip, host_port, container_port = _interpolate(port, {}).split(":")
            assert host_ip == "127.0.0.1" and host_port and container_port, (name, port)
            assert _interpolate(port, {"BIND_ADDRESS": "0.0.0.0"}).startswith("0.0.0.0:")


def test_compose_redis_requires_a_password_the_app_sends(compose) -> None:
    redis, app = compose["services"]["redis"], compose["services"]["app"]
    assert redis["environment"]["REDIS_PASSWORD"] == "${REDIS_PASSWORD:-warehouse-dev-only}"
    command = " ".join(redis["command"])
    assert '--requirepass "$$REDIS_PASSWORD"' in command
    # The app authenticates with the same value, whatever REDIS_PASSWORD is set to.
    for env in ({}, {"REDIS_PASSWORD": "0123abcd"}):
        password = _interpolate(redis["environment"]["REDIS_PASSWORD"], env)
        assert _interpolate(app["environment"]["REDIS_URL"], env) == f"redis://:{password}@redis:6379/0"
    assert "grep -q PONG" in redis["healthcheck"]["test"][1]


def test_compose_redis_command_and_healthcheck_work_on_a_real_redis_server(compose, tmp_path) -> None:
    """The Compose command and healthcheck, run by a shell as the container would (on a unix
    socket here, not a port): unauthenticated clients are refused, the healthcheck passes with the
    password and fails without it (a bare `redis-cli ping` would exit 0 on NOAUTH)."""
    if not (shutil.which("redis-server") and shutil.which("redis-cli")):
        pytest.skip("redis-server / redis-cli not installed")
    redis = compose["services"]["redis"]
    shell, flag, command = redis["command"]
    command = command.replace("$$", "$")
    check = redis["healthcheck"]["test"][1].replace("$$", "$")
    socket_path = tmp_path / "redis.sock"
    local = f" --port 0 --unixsocket {socket_path} --dir {tmp_path}"
    env = {**os.environ, "REDIS_PASSWORD": "not-the-default-0123"}
    server = subprocess.Popen([shell, flag, command + local], env=env, stdout=subprocess.DEVNULL)
    try:
        cli = ["redis-cli", "-s", str(socket_path)]
        for _ in range(100):
            if socket_path.exists():
                break
            server.poll()
            assert server.returncode is None, "redis-server exited"
            subprocess.run(["sleep", "0.05"], check=True)
        anonymous = subprocess.run([*cli, "ping"], capture_output=True, text=True, timeout=10)
        assert "NOAUTH" in anonymous.stdout + anonymous.stderr
        check_here = check.replace("redis-cli", " ".join(cli))
        assert subprocess.run(["sh", "-c", check_here], env=env, timeout=10).returncode == 0
        wrong = {**env, "REDIS_PASSWORD": "wrong"}
        assert (
            subprocess.run(["sh", "-c", check_here], env=wrong, timeout=10, capture_output=True).returncode
            != 0
        )
        saved = subprocess.run(
            [*cli, "config", "get", "save"],
            env={**env, "REDISCLI_AUTH": env["REDIS_PASSWORD"]},
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert saved.stdout.split() == ["save"]  # no persistence: a cache only
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_compose_names_its_development_only_credentials() -> None:
    header = COMPOSE.read_text().split("\nname:", 1)[0]
    assert "DEVELOPMENT-ONLY CREDENTIALS" in header
    for variable in (
        "POSTGRES_PASSWORD",
        "REDIS_PASSWORD",
        "WEBHOOK_TOKEN",
        "OPERATOR_TOKEN",
        "BIND_ADDRESS",
    ):
        assert variable in header, variable


# ---------------------------------------------------------------------------------- Dockerfile


def test_dockerfile_is_pinned_non_root_and_runs_the_entrypoint() -> None:
    lines = [
        line.strip()
        for line in DOCKERFILE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    froms = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert len(froms) == 1 and re.fullmatch(r"python:3\.13\.\d+-slim-[a-z]+", froms[0]), froms
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    user_at = max(i for i, line in enumerate(lines) if line.startswith("USER "))
    assert not any(line.startswith(("RUN ", "COPY ", "ADD ")) for line in lines[user_at:]), (
        "USER must come last"
    )
    for copied in ("common/", "functions/", "infra/docker/"):
        assert any(line.startswith("COPY ") and copied in line for line in lines), copied
    # Dependencies from the lock: the pinned uv (hash-checked), then the runtime and the local app's
    # group only (no dev tools), without the project (its code is copied as it is).
    text = DOCKERFILE.read_text()
    assert re.search(r"pip install [^\n]*--require-hashes -r /tmp/uv-requirements\.txt", text)
    assert "COPY tools/uv/requirements.txt /tmp/uv-requirements.txt" in lines
    assert "COPY pyproject.toml uv.lock ./" in lines
    sync = re.search(r"uv sync ([^\\\n&]*)", text)
    assert sync and set(sync.group(1).split()) == {
        "--frozen",
        "--no-default-groups",
        "--group",
        "local",
        "--no-install-project",
    }, sync
    assert lines[-1] == 'ENTRYPOINT ["/app/infra/docker/entrypoint.sh"]'
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*")] == "*" and "**/.env" in ignore  # deny by default, never .env
    for needed in ("pyproject.toml", "uv.lock", "tools/uv/requirements.txt"):
        assert f"!{needed}" in ignore, needed


def test_entrypoint_waits_migrates_and_execs_uvicorn() -> None:
    text = "\n".join(line for line in ENTRYPOINT.read_text().splitlines() if not line.startswith("#"))
    assert os.access(ENTRYPOINT, os.X_OK)
    subprocess.run(["bash", "-n", str(ENTRYPOINT)], check=True)
    wait_at, migrate_at, uvicorn_at = (
        text.index("infra/docker/wait_for.py"),
        text.index("warehouse-stock migrate"),
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
        # sam build and the artifact check: tests/lambda/test_artifacts.py
        "LINT_INFRA_SKIP_BUILD": "1",
        "LINT_VENV": str(LINT_VENV),
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


def test_lint_infra_script_fails_on_a_cfn_lint_error_in_either_template(tmp_path) -> None:
    """Any cfn-lint error fails the run, in the template and in its SAM transform: here a runtime
    whose creation AWS has disabled (cfn-lint's lifecycle data says so)."""
    broken = tmp_path / "template.yaml"
    broken.write_text(
        'AWSTemplateFormatVersion: "2010-09-09"\n'
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  Fn:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        "      CodeUri: .\n"
        "      Handler: functions.get_stock.handler.handler\n"
        "      Runtime: python3.7\n"
    )

    result = _lint({"LINT_INFRA_SKIP_CFN": "0", "TEMPLATE": str(broken)})

    assert result.returncode == 1, result.stdout + result.stderr
    assert ":E2531:" in result.stdout
    assert "cfn-lint reported errors" in result.stderr
    assert "cfn-lint of the transformed template reported errors" in result.stderr
