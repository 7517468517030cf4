#!/usr/bin/env bash
# make lint-infra: check the deployment artefacts offline, without AWS or Docker.
#
#   1. cfn-lint template.yaml                      (SAM schemas bundled with cfn-lint), then the
#      real SAM transform (aws-sam-translator) and cfn-lint of its output
#   2. docker-compose.yml against the Compose Specification JSON schema vendored in
#      infra/compose-spec.schema.json               (check-jsonschema, no network)
#   3. every Compose service has a healthcheck, or says why not (x-healthcheck-reason)
#   4. Dockerfile: base image pinned to a full version, a non-root USER
#   5. shell scripts: bash -n, and shellcheck when it is installed
#   6. packaging: `sam build` with the real AWS SAM CLI (no Docker), then every function's unzipped
#      size and contents against infra/lambda/contents.toml (infra/scripts/sam-build.sh; skipped
#      with LINT_INFRA_SKIP_BUILD=1)
#
# Exit status: non-zero when any step found an error (any cfn-lint error, of either template,
# fails the run). cfn-lint warnings are printed but only fail the run with LINT_INFRA_STRICT=1.
#
# The tools come from the lint environment, tools/lint/.venv (locked in tools/lint/uv.lock, made by
# `bash infra/scripts/stack.sh venv`; `make lint-infra` does that first): cfn-lint stays at the
# locked release, whose data carries the runtimes' deprecation dates.
# Environment: LINT_VENV (default tools/lint/.venv), LINT_INFRA_STRICT, LINT_INFRA_SKIP_CFN=1
# (skip step 1), TEMPLATE, COMPOSE_FILE_TO_LINT, DOCKERFILE (alternative paths, for tests).
#
# The vendored schema is check-jsonschema's copy of compose-spec/compose-spec schema/compose-spec.json
# (Apache-2.0); refresh it with:
#   cp tools/lint/.venv/lib/python3.13/site-packages/check_jsonschema/builtin_schemas/vendor/compose-spec.json \
#      infra/compose-spec.schema.json
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 2

LINT_VENV=${LINT_VENV:-tools/lint/.venv}
BIN="$LINT_VENV/bin"
TEMPLATE=${TEMPLATE:-template.yaml}
COMPOSE=${COMPOSE_FILE_TO_LINT:-docker-compose.yml}
DOCKERFILE=${DOCKERFILE:-Dockerfile}
SCHEMA=infra/compose-spec.schema.json

failures=0
fail() { echo "lint-infra: FAIL: $*" >&2; failures=$((failures + 1)); }
step() { printf '\n== %s\n' "$*"; }

for tool in python cfn-lint check-jsonschema; do
    if [[ ! -x $BIN/$tool ]]; then
        echo "lint-infra: $BIN/$tool is missing; make the lint environment with" \
            "\`bash infra/scripts/stack.sh venv\` (or run \`make lint-infra\`)" >&2
        exit 2
    fi
done

# 1. CloudFormation / SAM ----------------------------------------------------------------------
if [[ ${LINT_INFRA_SKIP_CFN:-0} == 1 ]]; then
    step "cfn-lint $TEMPLATE: skipped (LINT_INFRA_SKIP_CFN=1)"
else
    step "cfn-lint $TEMPLATE"
    "$BIN/cfn-lint" --format parseable -- "$TEMPLATE"
    rc=$?
    # cfn-lint's exit code is a bit mask: 2 errors, 4 warnings, 8 informational; 1 = it crashed.
    if (( rc & 1 || rc & 2 )); then
        fail "cfn-lint reported errors (exit $rc)"
    elif (( rc & 4 )); then
        if [[ ${LINT_INFRA_STRICT:-0} == 1 ]]; then
            fail "cfn-lint reported warnings (exit $rc, LINT_INFRA_STRICT=1)"
        else
            echo "cfn-lint: warnings only (exit $rc); LINT_INFRA_STRICT=1 makes them fatal"
        fi
    else
        echo "cfn-lint: no findings"
    fi
fi

# 1b. The real SAM transform ---------------------------------------------------------------------
# cfn-lint validates SAM resources against its own schemas but no longer runs the transform; the
# translator (the code CloudFormation runs) catches what those schemas let through. The expanded
# template is linted again. Offline: CodeUri is swapped for a dummy S3 URI, no AWS call is made.
if [[ ${LINT_INFRA_SKIP_CFN:-0} == 1 ]]; then
    step "SAM transform: skipped (LINT_INFRA_SKIP_CFN=1)"
elif ! "$BIN/python" -c "import samtranslator" 2>/dev/null; then
    step "SAM transform"
    fail "aws-sam-translator is not importable in $LINT_VENV (tools/lint/uv.lock has it)"
else
    step "SAM transform of $TEMPLATE, then cfn-lint of the result"
    expanded=$(mktemp --suffix=.json)
    if AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-eu-central-1} "$BIN/python" - "$TEMPLATE" "$expanded" <<'PY'
import json
import sys

from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The template names managed policies by ARN, so the translator must never look one up."""

    def load(self):
        raise RuntimeError("managed policy lookup attempted (needs AWS); use policy ARNs")


with open(sys.argv[1], encoding="utf-8") as fh:
    template = yaml_parse(fh.read())
for resource in template.get("Resources", {}).values():
    if resource.get("Type") == "AWS::Serverless::Function":
        resource.setdefault("Properties", {})["CodeUri"] = "s3://placeholder/code.zip"
try:
    expanded = transform(template, {}, NoManagedPolicies())
except InvalidDocumentException as exc:
    for cause in exc.causes:
        print(f"lint-infra: SAM transform: {cause.message}", file=sys.stderr)
    sys.exit(1)
with open(sys.argv[2], "w", encoding="utf-8") as fh:
    json.dump(expanded, fh)
print(f"SAM transform: {len(expanded['Resources'])} CloudFormation resources")
PY
    then
        "$BIN/cfn-lint" --format parseable -- "$expanded"
        rc=$?
        if (( rc & 1 || rc & 2 )); then
            fail "cfn-lint of the transformed template reported errors (exit $rc)"
        elif (( rc & 4 )) && [[ ${LINT_INFRA_STRICT:-0} == 1 ]]; then
            fail "cfn-lint of the transformed template reported warnings (exit $rc)"
        else
            echo "cfn-lint (transformed): exit $rc"
        fi
    else
        fail "the SAM transform rejected $TEMPLATE"
    fi
    rm -f "$expanded"
fi

# 2. Compose file against the Compose Specification -------------------------------------------
step "check-jsonschema $COMPOSE (schema $SCHEMA)"
if ! "$BIN/check-jsonschema" --schemafile "$SCHEMA" "$COMPOSE"; then
    fail "$COMPOSE does not match the Compose Specification"
fi

# 3 and 4. Healthchecks, Dockerfile ------------------------------------------------------------
step "healthchecks in $COMPOSE, base image and USER in $DOCKERFILE"
if ! "$BIN/python" - "$COMPOSE" "$DOCKERFILE" <<'PY'
import re
import sys

import yaml

compose_path, dockerfile_path = sys.argv[1], sys.argv[2]
problems = []

with open(compose_path, encoding="utf-8") as fh:
    compose = yaml.safe_load(fh) or {}
services = compose.get("services") or {}
if not services:
    problems.append(f"{compose_path}: no services")
for name, service in services.items():
    service = service or {}
    check = service.get("healthcheck") or {}
    disabled = str(check.get("disable", "false")).lower() == "true" or check.get("test") in (["NONE"], "NONE")
    has_check = bool(check.get("test")) and not disabled
    reason = str(service.get("x-healthcheck-reason") or "").strip()
    if has_check:
        print(f"  {name}: healthcheck {check['test'] if isinstance(check['test'], str) else ' '.join(check['test'])[:70]}")
    elif reason:
        print(f"  {name}: no healthcheck, because: {' '.join(reason.split())[:90]}")
    else:
        problems.append(f"{compose_path}: service {name!r} has neither a healthcheck nor an x-healthcheck-reason")

with open(dockerfile_path, encoding="utf-8") as fh:
    lines = [line.strip() for line in fh if line.strip() and not line.lstrip().startswith("#")]
froms = [line.split()[1] for line in lines if line.upper().startswith("FROM ")]
if not froms:
    problems.append(f"{dockerfile_path}: no FROM")
for image in froms:
    # name:MAJOR.MINOR.PATCH[-variant] or a digest; never :latest or a bare major/minor tag.
    if not re.search(r"(@sha256:[0-9a-f]{64}$)|(:\d+\.\d+\.\d+[\w.-]*$)", image):
        problems.append(f"{dockerfile_path}: base image {image!r} is not pinned to a full version or digest")
users = [line.split(None, 1)[1] for line in lines if line.upper().startswith("USER ")]
if not users:
    problems.append(f"{dockerfile_path}: no USER (the app would run as root)")
elif users[-1].split(":")[0] in ("root", "0"):
    problems.append(f"{dockerfile_path}: the final USER is root")
else:
    print(f"  {dockerfile_path}: FROM {', '.join(froms)}; USER {users[-1]}")

for problem in problems:
    print(f"lint-infra: {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
then
    fail "healthcheck / Dockerfile checks"
fi

# 5. Shell scripts -----------------------------------------------------------------------------
step "shell scripts"
shell_scripts=(infra/docker/entrypoint.sh infra/scripts/*.sh infra/lambda/*.sh .ci/run)
for script in "${shell_scripts[@]}"; do
    bash -n "$script" || fail "bash -n $script"
done
if command -v shellcheck >/dev/null 2>&1; then
    # -x: follow the `source`d stack-*.sh files (their `# shellcheck source=` paths are from the root)
    shellcheck -x "${shell_scripts[@]}" || fail "shellcheck"
    echo "shellcheck: ${shell_scripts[*]} ok"
else
    echo "shellcheck not installed (apt-get install shellcheck); bash -n only"
fi

# 6. What `sam deploy` ships -------------------------------------------------------------------
if [[ ${LINT_INFRA_SKIP_BUILD:-0} == 1 ]]; then
    step "sam build and the artifact check: skipped (LINT_INFRA_SKIP_BUILD=1)"
else
    step "sam build, then each function's size and contents (infra/lambda/contents.toml)"
    bash infra/scripts/sam-build.sh || fail "sam build or the artifact check (infra/scripts/sam-build.sh)"
fi

echo
if (( failures )); then
    echo "lint-infra: $failures check(s) failed" >&2
    exit 1
fi
echo "lint-infra: all checks passed"
