#!/usr/bin/env bash
# The packaging check: `sam build` with the real AWS SAM CLI (tools/lint/.venv, locked in
# tools/lint/uv.lock), no Docker, then every artifact's unzipped size and contents held to
# infra/lambda/contents.toml (infra/lambda/package.py check).
#
#   sam-build.sh           build when an input changed since the last build, then check
#   sam-build.sh --force   build anyway, then check
#
# Each function is built by infra/lambda/Makefile (BuildMethod makefile), so SAM never looks for
# a python3.13 on the PATH and copies nothing of the checkout; details in template.yaml's header.
# Inputs (their digest is kept in .aws-sam/build/.inputs.sha256): template.yaml, requirements.txt,
# uv.lock, infra/lambda/ and every file under common/ and functions/ (bytecode caches excluded).
# Run by `make lint-infra` and by tests/lambda/test_artifacts.py (which then runs the artifacts).
set -euo pipefail

# shellcheck source=infra/scripts/stack-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/stack-env.sh"
# shellcheck source=infra/scripts/stack-common.sh
source "$REPO_ROOT/infra/scripts/stack-common.sh"
# shellcheck source=infra/scripts/stack-python.sh
source "$REPO_ROOT/infra/scripts/stack-python.sh"
cd "$REPO_ROOT"

BUILD_DIR=.aws-sam/build
SAM=$LINT_VENV/bin/sam
[[ -x $SAM ]] || die "$SAM is missing: make venv"

inputs_digest() {
    find template.yaml requirements.txt uv.lock infra/lambda common functions -type f \
        -not -path '*/__pycache__/*' -not -name '*.pyc' -print0 |
        LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

# One build at a time per checkout (make lint-infra and the test may meet).
mkdir -p .aws-sam
exec 6>>.aws-sam/build.lock
flock -w 900 6 || die "gave up waiting for .aws-sam/build.lock"

want=$(inputs_digest)
if [[ ${1:-} != --force && -f $BUILD_DIR/.inputs.sha256 && $(cat "$BUILD_DIR/.inputs.sha256") == "$want" ]]; then
    log "sam build: inputs unchanged since the last build, kept $BUILD_DIR"
else
    log "sam build ($("$SAM" --version)), every function through infra/lambda/Makefile"
    started=$SECONDS
    rm -f "$BUILD_DIR/.inputs.sha256"
    SAM_CLI_TELEMETRY=0 "$SAM" build --parallel --build-dir "$BUILD_DIR" --template-file template.yaml \
        >.aws-sam/build.log 2>&1 || { tail -n 40 .aws-sam/build.log >&2; die "sam build failed (.aws-sam/build.log)"; }
    printf '%s\n' "$want" >"$BUILD_DIR/.inputs.sha256"
    log "sam build: $((SECONDS - started)) s"
fi
"$LINT_VENV/bin/python" infra/lambda/package.py check "$BUILD_DIR"
