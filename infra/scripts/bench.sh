#!/usr/bin/env bash
# `make bench`: bring the local stack up, then print the benchmark table (python -m tools.bench.run).
#
#   make bench                          every row, each the median of 3 runs (about 15-20 minutes)
#   make bench BENCH_ARGS="--soak"      also the poller's memory over 1,000,000 Kafka events
#   make bench BENCH_ARGS="--only kafka,drain --whatif-apply-ahead"   pollers applying ahead
#   bash infra/scripts/bench.sh --only ingest,cold --runs 5      arguments go to tools.bench.run
#
# Everything runs against 127.0.0.1 only: the benchmark's own database (`bench`, created and
# migrated by tools.bench.run), Redis database 5 and fresh Kafka topics. Tools it needs and installs
# when missing: wrk (Debian package) and, for the load generator's Kafka producer only, the
# `crc32c` wheel in .stack/bench/pylib (without it kafka-python checksums in pure Python and the
# producer, not the service, would be measured).
set -euo pipefail

# shellcheck source=infra/scripts/stack-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/stack-env.sh"
cd "$REPO_ROOT"

say() { printf '[bench] %s\n' "$*" >&2; }

if [[ -f infra/scripts/stack.sh ]]; then
    # A failed set-up step (say, a lock uv cannot install) need not stop a benchmark
    # of the services already running; the benchmark fails loudly if they are not.
    bash infra/scripts/stack.sh up || say "stack.sh up failed (see above): going on with what is running"
else
    say "infra/scripts/stack.sh not found: using the services already running"
fi

PY=$REPO_ROOT/.venv/bin/python
[[ -x $PY ]] || { say "no virtualenv at .venv (run make up)"; exit 1; }

if ! command -v wrk >/dev/null 2>&1; then
    say "installing wrk (apt-get)"
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null; }
fi

export BENCH_PYLIB=$STACK_DIR/bench/pylib
PYLIB=$BENCH_PYLIB
if ! "$PY" -c 'import crc32c' 2>/dev/null && [[ ! -d $PYLIB/crc32c ]]; then
    say "installing crc32c into $PYLIB (for the benchmark's Kafka producer only)"
    mkdir -p "$PYLIB"
    # .venv is made by uv and has no pip; its uv installs into the target directory.
    "$REPO_ROOT/.venv/bin/uv" pip install --quiet --python "$PY" --target "$PYLIB" crc32c ||
        say "crc32c unavailable: the producer will checksum in pure Python (slower load generator)"
fi

# loadtest.sh reuses this set-up with its own entry module.
# shellcheck disable=SC2086  # BENCH_ARGS is a list of options
exec "$PY" -m "${BENCH_MODULE:-tools.bench.run}" ${BENCH_ARGS:-} "$@"
