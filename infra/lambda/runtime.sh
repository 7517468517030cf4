#!/usr/bin/env bash
# What tests/lambda/test_artifacts.py runs the built functions with, as Lambda's python3.13 image
# does: the Runtime Interface Emulator (aws-lambda-rie, built with `go install` from the Go module
# proxy at a pinned version) and the Runtime Interface Client (awslambdaric, hash-pinned in
# infra/lambda/runtime-requirements.txt) in a venv of its own, so a function finds nothing but its
# artifact and the runtime client. Idempotent; kept in $STACK_DIR/lambda/. Prints two lines:
#   RIE=<path to aws-lambda-rie>
#   RUNTIME_PYTHON=<path to the runtime venv's python>
set -euo pipefail

# shellcheck source=infra/scripts/stack-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/stack-env.sh"
# shellcheck source=infra/scripts/stack-common.sh
source "$REPO_ROOT/infra/scripts/stack-common.sh"
# shellcheck source=infra/scripts/stack-python.sh
source "$REPO_ROOT/infra/scripts/stack-python.sh"
cd "$REPO_ROOT"

# github.com/aws/aws-lambda-runtime-interface-emulator publishes no module tags: the pseudo-version
# of its main branch on 2026-10-30 (go list -m ...@latest), pinned (go.sum checks it).
RIE_VERSION=v0.0.0-20261030222936-bef5c4ba774d
HOME_DIR=$STACK_DIR/lambda
RIE_DIR=$HOME_DIR/rie-$RIE_VERSION
RUNTIME_VENV=$HOME_DIR/runtime-venv
mkdir -p "$HOME_DIR"
exec 5>>"$HOME_DIR/runtime.lock"
flock -w 900 5 || die "gave up waiting for $HOME_DIR/runtime.lock"

if [[ ! -x $RIE_DIR/aws-lambda-rie ]]; then
    go=$(command -v go || true)
    [[ -n $go ]] || go=/usr/local/go/bin/go
    [[ -x $go ]] || die "Go is needed to build aws-lambda-rie (go install); put \`go\` on the PATH"
    log "aws-lambda-rie: go install ...@$RIE_VERSION (once, into $RIE_DIR)"
    GOBIN=$RIE_DIR.tmp GOFLAGS=-mod=mod "$go" install \
        "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$RIE_VERSION" ||
        die "go install aws-lambda-rie failed"
    rm -rf "$RIE_DIR" && mv "$RIE_DIR.tmp" "$RIE_DIR"
fi

want=$(sha256sum infra/lambda/runtime-requirements.txt | cut -d' ' -f1)
if [[ ! -f $RUNTIME_VENV/.requirements.sha256 || $(cat "$RUNTIME_VENV/.requirements.sha256") != "$want" ]]; then
    python=$(find_python) || die "CPython 3.13 not found (set PYTHON=/path/to/python3.13)"
    ensure_uv "$python"
    log "runtime venv: awslambdaric into $RUNTIME_VENV"
    rm -rf "$RUNTIME_VENV"
    "$UV" venv --quiet --python "$python" "$RUNTIME_VENV" || die "uv venv $RUNTIME_VENV failed"
    "$UV" pip install --quiet --python "$RUNTIME_VENV/bin/python" --require-hashes --only-binary :all: \
        -r infra/lambda/runtime-requirements.txt || die "installing awslambdaric failed"
    printf '%s\n' "$want" >"$RUNTIME_VENV/.requirements.sha256"
fi
printf 'RIE=%s\nRUNTIME_PYTHON=%s\n' "$RIE_DIR/aws-lambda-rie" "$RUNTIME_VENV/bin/python"
