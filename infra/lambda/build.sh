#!/usr/bin/env bash
# One Lambda function's artifact, for `sam build` (infra/lambda/Makefile):
#   build.sh LOGICAL_ID ARTIFACTS_DIR
# The lint environment's CPython 3.13 (its `packaging` and SAM's YAML reader) runs package.py; the
# pinned uv installs requirements.txt's wheels for Lambda's platform once (.stack/lambda/).
set -euo pipefail

# shellcheck source=infra/scripts/stack-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/stack-env.sh"
# shellcheck source=infra/scripts/stack-common.sh
source "$REPO_ROOT/infra/scripts/stack-common.sh"
# shellcheck source=infra/scripts/stack-python.sh
source "$REPO_ROOT/infra/scripts/stack-python.sh"
cd "$REPO_ROOT"

(($# == 2)) || die "usage: build.sh LOGICAL_ID ARTIFACTS_DIR"
[[ -x $LINT_VENV/bin/python ]] || die "$LINT_VENV is missing: make venv"
ensure_uv "$LINT_VENV/bin/python"
UV=$UV exec "$LINT_VENV/bin/python" infra/lambda/package.py build "$1" "$2"
